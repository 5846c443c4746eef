//! Batch signature verification that finds the bad signatures by halving.
//!
//! Owns: [`verify_bisecting`], the one batch verifier behind transactions' and observations'
//! `verify_batch`.
//! Never: returns a verdict the single check would not give: a batch that passes has no bad
//! signature (the batch equation is sound), and below [`BISECT_MIN`] every entry of a failed
//! batch is checked alone.
//! Bounds: at most two ranges per level of a halving tree of depth log2(n) wait at once; one
//! bad signature among `n` costs about 2 log2(n) batch verifications of shrinking halves
//! (about two of `n` in all), not `n` single checks.

use commonware_cryptography::ed25519::{PublicKey, Signature};
use commonware_cryptography::{BatchEntry, BatchVerifier, Verifier};
use commonware_parallel::Sequential;
use rand_core::CryptoRng;
use std::ops::Range;

/// A failed batch smaller than this is checked one signature at a time.
pub const BISECT_MIN: usize = 8;

/// One signature to judge: the signer, the signature and the signed message's encoding.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) key: &'a PublicKey,
    pub(crate) signature: &'a Signature,
    pub(crate) message: &'a [u8],
}

/// Which of `entries` carry a valid signature under `namespace`, in order. The whole list is
/// verified as one batch; a failed batch is halved and each half verified as a batch in turn,
/// down to [`BISECT_MIN`] entries, below which each is checked alone. Randomness (`rng`)
/// blinds the batch equations only; the verdicts do not depend on it.
pub(crate) fn verify_bisecting(
    rng: &mut impl CryptoRng,
    namespace: &[u8],
    entries: &[Entry<'_>],
) -> Vec<bool> {
    let mut verdicts = vec![false; entries.len()];
    let mut ranges: Vec<Range<usize>> = Vec::with_capacity(64);
    ranges.push(0..entries.len());
    while let Some(range) = ranges.pop() {
        if range.is_empty() {
            continue;
        }
        let whole = range.len() == entries.len();
        if whole || range.len() >= BISECT_MIN {
            let valid = PublicKey::verify_batch(
                rng,
                &entries[range.clone()],
                |_, e| BatchEntry {
                    namespace,
                    message: e.message,
                    public_key: e.key,
                    signature: e.signature,
                },
                &Sequential,
            );
            if valid {
                verdicts[range].fill(true);
                continue;
            }
            if range.len() >= BISECT_MIN {
                let middle = range.start + range.len() / 2;
                ranges.push(middle..range.end);
                ranges.push(range.start..middle);
                continue;
            }
        }
        for i in range {
            let e = entries[i];
            verdicts[i] = e.key.verify(namespace, e.message, e.signature);
        }
        debug_assert!(
            ranges.len() <= 2 * (usize::BITS as usize),
            "a halving tree's frontier"
        );
    }
    verdicts
}
