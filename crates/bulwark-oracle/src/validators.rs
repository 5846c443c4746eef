//! The validator set whose observations count, and the quorum it implies.
//!
//! Owns: the sorted, duplicate-free list of validator keys, `f = (n - 1) / 3` and the quorum
//! `2f + 1` of distinct fresh observations an index update needs.
//! Never: decides who the validators are (consensus configuration does) or changes mid-block.
//! Bounds: at most [`VALIDATORS_MAX`] keys.

use bulwark_types::PublicKey;

/// Most validators in one set. Simplex clusters of this size already spend most of a block's
/// time on votes; the bound keeps per-block oracle work and the per-validator record small.
pub const VALIDATORS_MAX: usize = 1_024;

/// Why a list of keys is not a validator set.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("a validator set needs at least one key")]
    Empty,
    #[error("a validator set holds at most {VALIDATORS_MAX} keys")]
    TooMany,
    #[error("a key appears twice in the validator set")]
    Duplicate,
}

/// The validators of the current epoch, sorted by key.
///
/// `n` may exceed `3f + 1` (then `f = (n - 1) / 3` still holds and the quorum is `2f + 1`).
/// With at most `f` faulty validators, any `2f + 1` distinct observations hold at least
/// `f + 1` honest ones: a strict majority, which is what makes their median safe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    keys: Vec<PublicKey>,
}

impl ValidatorSet {
    /// Sorts the keys and checks them.
    pub fn new(mut keys: Vec<PublicKey>) -> Result<Self, ValidatorSetError> {
        if keys.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if keys.len() > VALIDATORS_MAX {
            return Err(ValidatorSetError::TooMany);
        }
        keys.sort();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(ValidatorSetError::Duplicate);
        }
        Ok(Self { keys })
    }

    /// The keys, in ascending order; a validator's index is its position here.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Number of validators, `n`.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a set holds at least one key. Present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Most faulty validators tolerated: `f = (n - 1) / 3`.
    pub fn faults_max(&self) -> usize {
        (self.keys.len() - 1) / 3
    }

    /// Distinct fresh observations an index update needs: `2f + 1`.
    pub fn quorum(&self) -> usize {
        let quorum = 2 * self.faults_max() + 1;
        debug_assert!(quorum <= self.keys.len(), "n >= 3f + 1 >= 2f + 1");
        quorum
    }

    /// The index of `key` in the set, if it is a validator.
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.keys.binary_search(key).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::PrivateKey;
    use commonware_cryptography::Signer;

    fn keys(n: u64) -> Vec<PublicKey> {
        (0..n)
            .map(|s| PrivateKey::from_seed(s).public_key())
            .collect()
    }

    #[test]
    fn quorum_is_two_f_plus_one() {
        for (n, f) in [(1, 0), (3, 0), (4, 1), (6, 1), (7, 2), (10, 3), (100, 33)] {
            let set = ValidatorSet::new(keys(n)).unwrap();
            assert_eq!(
                (set.len(), set.faults_max(), set.quorum()),
                (n as usize, f, 2 * f + 1)
            );
        }
    }

    #[test]
    fn set_is_sorted_and_refuses_duplicates_and_empty() {
        let set = ValidatorSet::new(keys(7)).unwrap();
        assert!(set.keys().windows(2).all(|w| w[0] < w[1]));
        for (i, key) in set.keys().iter().enumerate() {
            assert_eq!(set.index_of(key), Some(i));
        }
        assert_eq!(set.index_of(&PrivateKey::from_seed(99).public_key()), None);
        let mut twice = keys(3);
        twice.push(twice[0].clone());
        assert_eq!(ValidatorSet::new(twice), Err(ValidatorSetError::Duplicate));
        assert_eq!(ValidatorSet::new(Vec::new()), Err(ValidatorSetError::Empty));
    }
}
