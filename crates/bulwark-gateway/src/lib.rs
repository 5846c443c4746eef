//! The Bulwark gateway: a non-voting follower of the chain and, on top of its replica, an API
//! that existing Deribit clients speak.
//!
//! Status: ALPHA.
//!
//! Trust: nothing one validator says is believed. [`follower`] fetches each finalized block
//! with the quorum's certificate, verifies it against the validator set, and applies it to the
//! [`replica`] with the validators' own execution code, halting if the block's committed state
//! digest or state hash differs from what it computed. The [`index`] keeps what Deribit
//! reports that the exchange state does not (orders' histories, trades).
//! [`source`] talks to the validators' HTTP API.

pub mod deribit;
pub mod follower;
pub mod gateway;
pub mod index;
pub mod keys;
pub mod limits;
pub mod replica;
pub mod run;
pub mod server;
pub mod source;
