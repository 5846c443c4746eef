//! Deliberate bugs the lab must catch, for testing the lab itself.
//!
//! Never: part of a validator. Each acts on a running validator's shared state from outside,
//! as a bug inside it would. The conservation error and the believed proposer marks need a
//! hook in the state machine, which only the `deliberate-bugs` feature (turned on by this
//! crate's own tests) compiles.

use crate::forgery::credit_fund;
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

/// A snapshot restore that drops a field: the validator's finalized state is replaced by a
/// restore of its own snapshot that lost the next order id and rebuilt it from the book (see
/// [`drop_order_id_next`]). The state restores and passes every invariant; the next order it
/// accepts gets an id another validator gave an earlier order, so its outcomes, and the state
/// digest its next block commits to, differ. Returns false when nothing was lost (the newest
/// order still rests): the lab tries again at its next tick.
pub fn restore_drops_field(shared: &Shared) -> bool {
    let mut chain = lock(&shared.chain);
    let Some(forged) = drop_order_id_next(&chain.finalized().snapshot()) else {
        return false;
    };
    let forged = Exchange::restore(&forged).expect("the rebuilt id restores");
    let digest = chain.finalized_digest();
    *chain = Chain::new(forged, digest);
    true
}

/// A conservation error in the state machine, on every validator alike (so they still agree
/// with each other): 1 USDC appears in the insurance fund of each one's finalized state from
/// nowhere. Only the money invariant sees it.
#[cfg(feature = "deliberate-bugs")]
pub fn conservation_error(shared: &Shared) {
    let mut chain = lock(&shared.chain);
    let mut minted = chain.finalized().clone();
    minted.deliberate_bug_mint_into_fund(bulwark_types::Money::from_usdc(1));
    let digest = chain.finalized_digest();
    *chain = Chain::new(minted, digest);
}

/// A mark a proposer sets, believed by the state machine of every validator alike (so they
/// still agree with each other): from the next block on, each one's state takes the
/// perpetual marks a block's price inputs give, where the exchange marks perpetuals itself.
/// Only a proposer that puts marks in its blocks (`ByzantineRole::MarkProposer`) moves
/// anything; the lab's band invariant (`crate::mark_band`) sees the stray mark.
#[cfg(feature = "deliberate-bugs")]
pub fn proposer_marks_believed(shared: &Shared) {
    let mut chain = lock(&shared.chain);
    let mut believing = chain.finalized().clone();
    believing.deliberate_bug_believe_proposer_marks();
    let digest = chain.finalized_digest();
    *chain = Chain::new(believing, digest);
}

/// Where the next order id sits in `snapshot` of `state`: right after the outcome chain's
/// digest (32 bytes, unique in the encoding); an 8-byte big-endian integer.
fn order_id_next_at(snapshot: &[u8], state: &Exchange) -> usize {
    let digest = state.state_digest();
    snapshot
        .windows(digest.as_ref().len())
        .position(|w| w == digest.as_ref())
        .expect("the digest is in the snapshot")
        + 32
}

/// `snapshot` with its next order id replaced by `next` and its trailer recomputed.
fn with_order_id_next(snapshot: &[u8], at: usize, next: u64) -> Vec<u8> {
    let mut body = snapshot[..snapshot.len() - 32].to_vec();
    body[at..at + 8].copy_from_slice(&next.to_be_bytes());
    let trailer = Sha256::hash(&[&body]);
    body.extend_from_slice(trailer.as_ref());
    body
}

/// A restore that drops the next order id and rebuilds it from the book: `snapshot` with the
/// lowest next order id its own restore accepts (one past the newest resting order), which is
/// below the true one whenever the newest orders have since filled or been cancelled. The
/// result restores, balances, and passes every invariant; only the ids of later orders differ.
/// `None` when the rebuilt id equals the true one (nothing is lost at this height).
pub fn drop_order_id_next(snapshot: &[u8]) -> Option<Vec<u8>> {
    let state = Exchange::restore(snapshot).expect("an honest snapshot");
    let at = order_id_next_at(snapshot, &state);
    let truth = u64::from_be_bytes(snapshot[at..at + 8].try_into().expect("8 bytes"));
    // Restore accepts every id above the newest resting order's: find the lowest, in at most
    // 64 restores.
    let (mut low, mut high) = (0u64, truth);
    while low < high {
        let mid = low + (high - low) / 2;
        if Exchange::restore(&with_order_id_next(snapshot, at, mid)).is_ok() {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    (low < truth).then(|| with_order_id_next(snapshot, at, low))
}
