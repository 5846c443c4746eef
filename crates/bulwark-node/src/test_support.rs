//! Unit-test helpers shared by this crate's modules: a genesis exchange, and what a forger
//! can do to a snapshot (the lab's `forgery` module, compiled here by path: one copy).

use bulwark_exchange::{Exchange, ExchangeParams, Genesis};
use bulwark_types::{BlockTime, PrivateKey};
use commonware_cryptography::Signer as _;

#[path = "../../bulwark-sim/src/forgery.rs"]
mod forgery;
pub use forgery::credit_fund;

/// The admin key of [`genesis_exchange`].
pub fn admin() -> PrivateKey {
    PrivateKey::from_seed(1)
}

/// The bridge key of [`genesis_exchange`].
pub fn bridge() -> PrivateKey {
    PrivateKey::from_seed(2)
}

/// An exchange at genesis with default parameters and no oracle, at time 1 s.
pub fn genesis_exchange() -> Exchange {
    let genesis = Genesis {
        admin: admin().public_key(),
        bridge: bridge().public_key(),
        params: ExchangeParams::defaults(),
        time: BlockTime::from_millis(1_000),
        oracle: None,
        custody: None,
    };
    Exchange::new(&genesis).expect("a valid genesis")
}
