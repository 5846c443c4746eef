//! Attack the whole venue on a simulated network and score how it held.
//!
//! Status: ALPHA.
//!
//! The resilience lab runs real Bulwark validators (`bulwark-node`: simplex consensus, marshal,
//! the executor, the exchange state machine) on Commonware's deterministic runtime and
//! simulated network, with traders submitting signed orders, and injects faults from a
//! scenario's timeline. One seed drives everything: the same seed replays the same run,
//! message for message, and gives the same scorecard, byte for byte.
//!
//! - [`scenario`]: scenario files (TOML), validated with errors that name the field.
//! - [`catalogue`]: the named scenarios shipped in the binary.
//! - [`lab`]: the runner: faults as they come due, safety checks every tick on every honest
//!   validator, liveness and latency measurements; a violation stops the run with a
//!   [`lab::Failure`] that names the seed and the timeline.
//! - [`scorecard`]: safety, liveness against the fault-free baseline, latency; table and JSON.
//! - [`cluster`]: the harness: validators with links, crash and restart from the runtime's
//!   storage, wipe (state sync), impostors running Commonware's Byzantine mocks, traders,
//!   and the agreement check.
//! - [`byzantine`]: Byzantine validators: Bulwark's own, reaching a validator only through
//!   the harness (`bulwark_node::engine::start_with`), and Commonware's mocks.
//! - [`clock`]: a validator's own clock, offset by a `clock-skew` fault.
//! - [`disk`]: a validator's own disk, failing, lying or rotting under a `disk-fault`; a
//!   panic on a failed, lying or rotten disk stops that validator alone (fail-stop), any other
//!   panic is still the run's.
//! - [`mark_band`]: the invariant that a perpetual's mark stays within the band around its
//!   index.
//! - [`bugs`]: deliberate bugs, for testing that the lab catches them.
//! - [`cascade`]: `bulwark stress --cascade`: leveraged accounts taken through a crash on the
//!   exchange state machine (no consensus), each protection on and off.
//! - [`monte_carlo`]: `bulwark stress --monte-carlo`: many seeded crash paths of the cascade
//!   population, across threads, summarised as distributions.
//! - [`agents`]: seeded market agents (market makers, noise, leveraged, arbitrageur) and
//!   attackers, trading through validators' mempools on what a validator's state shows.
//! - [`economy`]: the honest price path and the lies told about it, the protections a
//!   comparison run switches off, and the economic measurements and invariants.
//! - [`sweep`]: one scenario on many seeds in parallel, faults drawn from its ranges per seed.
//! - [`series`]: what the lab samples over time; [`report`]: the self-contained HTML report.

pub mod agents;
pub mod bugs;
pub mod byzantine;
pub mod cascade;
pub mod catalogue;
pub mod cluster;
pub mod economy;
pub mod forgery;
pub mod lab;
pub mod mark_band;
pub mod monte_carlo;
pub mod report;
pub mod scenario;
pub mod scorecard;
pub mod series;
pub mod sweep;

pub use cluster::{clock, disk};
pub use lab::{Failure, Violation, simulate};
pub use scenario::{Scenario, ScenarioError};
pub use scorecard::{Scorecard, score, score_compared};
