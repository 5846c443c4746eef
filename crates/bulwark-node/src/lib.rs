//! Run a Bulwark validator: the exchange state machine replicated by simplex consensus.
//!
//! Status: ALPHA.
//!
//! A validator is a set of Commonware actors wired together in [`engine::start`]: simplex
//! consensus votes on blocks that [`app::ExchangeApp`] builds and verifies; marshal delivers
//! finalized blocks in order to the [`executor::Executor`], which applies them to the exchange,
//! snapshots it, and halts loudly on divergence; the [`mempool::Mempool`] holds transactions
//! that clients submit (through [`shared::Shared::submit`]) or peers gossip.
//!
//! Generic over the runtime: the same code runs on Commonware's deterministic runtime with a
//! simulated network (the tests) and on tokio with authenticated TCP (the `bulwark` binary).

pub mod api;
pub mod app;
pub mod block;
pub mod chain;
pub mod commitment;
pub mod engine;
pub mod executor;
pub mod gossip;
pub mod layout;
pub mod leaders;
pub mod mempool;
pub mod observer;
pub mod prices;
pub mod receipt_archive;
pub mod shared;
pub mod snapshots;
pub mod sync;
pub mod verdicts;

// Lets the resilience lab's cluster harness name this crate from inside it.
extern crate self as bulwark_node;

/// The resilience lab's deterministic cluster harness (`bulwark-sim`'s `cluster` module, which
/// names only this crate and Commonware's), compiled into the unit tests of `divergence`: the
/// faults they inject live inside the executor and the snapshot server, in `cfg(test)` builds
/// only, so those tests cannot run from the lab until the faults move into it.
#[cfg(test)]
#[allow(dead_code, reason = "the divergence tests use part of the harness")]
#[path = "../../bulwark-sim/src/cluster.rs"]
mod common;
#[cfg(test)]
mod divergence;
#[cfg(test)]
mod test_support;
