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

/// [`genesis_exchange`] after a block depositing 1,000 USDC to the key of `trader_seed`: an
/// account with collateral, whose key the mempool admits. Returns the state and that key.
pub fn exchange_with_funded_trader(trader_seed: u64) -> (Exchange, PrivateKey) {
    exchange_with_funded_trader_at(trader_seed, 2_000)
}

/// [`exchange_with_funded_trader`] with the deposit's block at `time_ms`.
pub fn exchange_with_funded_trader_at(trader_seed: u64, time_ms: u64) -> (Exchange, PrivateKey) {
    use bulwark_types::{Block, Height, Money, PriceInputs, TxBody};
    use rand_core::SeedableRng as _;
    let mut state = genesis_exchange();
    let trader = PrivateKey::from_seed(trader_seed);
    let deposit = TxBody::Deposit {
        owner: trader.public_key(),
        amount: Money::from_usdc(1_000),
    }
    .signed(&bridge(), 1);
    let block = Block {
        height: Height::new(1),
        time: BlockTime::from_millis(time_ms),
        prices: PriceInputs::default(),
        observations: vec![],
        txs: vec![deposit],
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    Exchange::apply_block(&mut state, &block.check_signatures(&mut rng))
        .expect("a deposit from the bridge applies");
    (state, trader)
}
