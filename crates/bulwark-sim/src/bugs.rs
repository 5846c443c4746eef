//! Deliberate bugs the lab must catch, for testing the lab itself.
//!
//! Never: part of a validator. Each acts on a running validator's shared state from outside,
//! as a bug inside it would.

use crate::forgery::credit_fund;
use bulwark_exchange::Exchange;
use bulwark_node::chain::Chain;
use bulwark_node::shared::{Shared, lock};

/// A state change applied on one validator only: its finalized state gets 1 USDC more in the
/// insurance fund and in deposits (so its own ledger still balances), its outcome chain
/// untouched. No event shows it; the state hash the chain commits to every
/// `STATE_HASH_INTERVAL` blocks does, and the validator halts there.
pub fn fork_state(shared: &Shared) {
    let mut chain = lock(&shared.chain);
    let forged = credit_fund(&chain.finalized().snapshot());
    let forged = Exchange::restore(&forged).expect("a forged snapshot that balances restores");
    let digest = chain.finalized_digest();
    *chain = Chain::new(forged, digest);
}
