//! The state commitment: a hash of the whole replicated state, carried in blocks.
//!
//! Owns: how the exchange's state is hashed, and at which heights blocks commit to it.
//! The state is hashed through its canonical snapshot ([`Exchange::snapshot`]: one state, one
//! encoding; `Exchange::restore` refuses any other), cut into [`CHUNK_BYTES`] chunks. The
//! [`StateHash`] is SHA-256 over a domain tag, the snapshot's length and every chunk's SHA-256,
//! so a syncing validator can check each chunk on arrival, and blame the peer that sent a bad
//! one, against a list whose root a finalized block commits to.
//!
//! Which blocks commit: every block whose parent's height is a multiple of
//! [`STATE_HASH_INTERVAL`] carries the state hash of the state after its parent, and no other
//! block carries one. This is a rule of the chain (changing it forks): every verifier
//! recomputes it and refuses a block that breaks it, and every validator checks it again on
//! its finalized state, halting on a difference. A difference in state between honest
//! validators therefore halts the one that differs within `STATE_HASH_INTERVAL + 1` blocks,
//! even if it has not yet produced a different event.
//!
//! Never: hashes anything but the canonical snapshot; reads a hash off the wire as proof.

use bulwark_exchange::Exchange;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Hasher, Sha256};

/// Blocks after heights that are multiples of this commit to the state hash.
pub const STATE_HASH_INTERVAL: u64 = 25;

/// Bytes of snapshot in one chunk (of the hash, and of a state-sync message).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Domain separation of state hashes.
const STATE_HASH_NAMESPACE: &[u8] = b"_BULWARK_STATE_V1";

/// SHA-256 over the domain tag, the snapshot's length and its chunks' hashes.
pub type StateHash = Digest;

/// Whether the block after `parent_height` carries the state hash.
pub fn commits_after(parent_height: u64) -> bool {
    parent_height % STATE_HASH_INTERVAL == 0
}

/// How many chunks a snapshot of `len` bytes has (an empty snapshot is one empty chunk).
pub fn chunk_count(len: u64) -> u64 {
    len.div_ceil(CHUNK_BYTES as u64).max(1)
}

/// The SHA-256 of each chunk of `snapshot`.
pub fn chunk_hashes(snapshot: &[u8]) -> Vec<Digest> {
    if snapshot.is_empty() {
        return vec![Sha256::hash(&[])];
    }
    snapshot
        .chunks(CHUNK_BYTES)
        .map(|chunk| Sha256::hash(&[chunk]))
        .collect()
}

/// The state hash of a snapshot of `len` bytes whose chunks hash to `chunks`.
pub fn root(len: u64, chunks: &[Digest]) -> StateHash {
    let mut list = Vec::with_capacity(chunks.len() * 32);
    for chunk in chunks {
        list.extend_from_slice(chunk.as_ref());
    }
    Sha256::hash(&[STATE_HASH_NAMESPACE, &len.to_be_bytes(), &list])
}

/// The state hash of snapshot bytes.
pub fn state_hash(snapshot: &[u8]) -> StateHash {
    root(snapshot.len() as u64, &chunk_hashes(snapshot))
}

/// The state hash of an exchange state.
pub fn state_hash_of(exchange: &Exchange) -> StateHash {
    state_hash(&exchange.snapshot())
}

/// The state hash a block on `parent` must carry: `Some` exactly when it commits.
pub fn expected_after(parent: &Exchange) -> Option<StateHash> {
    commits_after(parent.height().get()).then(|| state_hash_of(parent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_hash_covers_every_byte_and_the_length() {
        let bytes: Vec<u8> = (0..(CHUNK_BYTES * 2 + 7)).map(|i| i as u8).collect();
        let hash = state_hash(&bytes);
        assert_eq!(
            chunk_hashes(&bytes).len() as u64,
            chunk_count(bytes.len() as u64)
        );
        for at in [0, CHUNK_BYTES - 1, CHUNK_BYTES, bytes.len() - 1] {
            let mut altered = bytes.clone();
            altered[at] ^= 1;
            assert_ne!(state_hash(&altered), hash, "byte {at} is covered");
        }
        // Moving bytes between chunks changes it too.
        assert_ne!(state_hash(&bytes[..bytes.len() - 1]), hash);
        assert_ne!(state_hash(&[]), state_hash(&[0]));
    }

    proptest! {
        #[test]
        fn root_of_the_chunk_hashes_is_the_state_hash(len in 0usize..(3 * CHUNK_BYTES)) {
            let bytes = vec![7u8; len];
            let chunks = chunk_hashes(&bytes);
            prop_assert_eq!(chunks.len() as u64, chunk_count(len as u64));
            prop_assert_eq!(root(len as u64, &chunks), state_hash(&bytes));
        }
    }
}
