//! Deliberate bugs the lab must catch, for testing the lab itself.
//!
//! Never: part of a validator. Each acts on a running validator's shared state from outside,
//! as a bug inside it would.

use bulwark_exchange::Exchange;
use bulwark_node::chain::Chain;
use bulwark_node::shared::{Shared, lock};
use commonware_cryptography::{Hasher as _, Sha256};

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

/// `snapshot` with 1 USDC more in the insurance fund and in deposits, its own trailer
/// recomputed so that it restores (as `bulwark-node`'s test support forges one).
fn credit_fund(snapshot: &[u8]) -> Vec<u8> {
    let state = Exchange::restore(snapshot).expect("an honest snapshot");
    // The ledger follows the outcome chain's digest (32 bytes, unique in the encoding) and
    // the next order id (8 bytes): deposits, withdrawals, fees, fund, as 16-byte integers.
    let digest = state.state_digest();
    let at = snapshot
        .windows(digest.as_ref().len())
        .position(|w| w == digest.as_ref())
        .expect("the digest is in the snapshot")
        + 32
        + 8;
    let mut body = snapshot[..snapshot.len() - 32].to_vec();
    for field in [at, at + 48] {
        let bytes: [u8; 16] = body[field..field + 16].try_into().expect("16 bytes");
        let value = i128::from_be_bytes(bytes) + 1_000_000;
        body[field..field + 16].copy_from_slice(&value.to_be_bytes());
    }
    let trailer = Sha256::hash(&[&body]);
    body.extend_from_slice(trailer.as_ref());
    body
}
