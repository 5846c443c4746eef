//! What a forger can do to a snapshot, for the tests of the defences against it (the lab's
//! deliberate bugs, and `bulwark-node`'s unit tests, which compile this file by path: it may
//! name only `bulwark_exchange` and Commonware).

use bulwark_exchange::Exchange;
use commonware_cryptography::{Hasher as _, Sha256};

/// What a forger can do to a snapshot: `snapshot` with 1 USDC more in the insurance fund and in deposits (so the ledger still
/// balances), its outcome chain untouched, and its own trailer recomputed so that it restores.
pub fn credit_fund(snapshot: &[u8]) -> Vec<u8> {
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
