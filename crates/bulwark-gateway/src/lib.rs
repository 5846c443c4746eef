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

pub mod dashboard;
pub mod deribit;
pub mod feed;
pub mod follower;
pub mod gateway;
pub mod index;
pub mod keys;
pub mod limits;
pub mod replica;
pub mod run;
pub mod server;
pub mod source;
pub mod strict_json;
pub mod submitter;
pub mod ws;

/// Unit-test helpers: an exchange at genesis (admin key seed 1, bridge seed 2, default
/// parameters, no oracle, no custody) at `time_ms`.
#[cfg(test)]
pub(crate) fn test_exchange(time_ms: u64) -> bulwark_exchange::Exchange {
    use commonware_cryptography::Signer as _;
    bulwark_exchange::Exchange::new(&bulwark_exchange::Genesis {
        admin: bulwark_types::PrivateKey::from_seed(1).public_key(),
        bridge: bulwark_types::PrivateKey::from_seed(2).public_key(),
        params: bulwark_exchange::ExchangeParams::defaults(),
        time: bulwark_types::BlockTime::from_millis(time_ms),
        oracle: None,
        custody: None,
    })
    .expect("a valid genesis")
}
