//! Attack the whole venue on a simulated network and score how it held.
//!
//! Status: ALPHA.
//!
//! The resilience lab runs real Bulwark validators (`bulwark-node`: simplex consensus, marshal,
//! the executor, the exchange state machine) on Commonware's deterministic runtime and
//! simulated network, with traders submitting signed orders, and injects faults from a
//! script. Everything is driven by one seed: the same seed replays the same run, message for
//! message.
//!
//! - [`cluster`]: the harness: a cluster of validators with links, crash and restart from the
//!   runtime's storage, wipe (state sync), impostors running Commonware's Byzantine mocks,
//!   traders, and the agreement check.
//! - [`byzantine`]: Bulwark's own Byzantine validators, reaching a validator only through the
//!   harness (`bulwark_node::engine::start_with`).

pub mod byzantine;
pub mod cluster;
