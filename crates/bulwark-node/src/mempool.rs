//! The mempool: signed transactions waiting for a block.
//!
//! Owns: admission at the door (stateless checks, signature verdict, nonce freshness,
//! duplicates, per-signer and global bounds), block selection (cancels first, each signer's
//! transactions in nonce order, otherwise arrival order), and pruning once transactions are
//! executed or too old.
//! Never: executes anything, or iterates a hash map (selection must be reproducible).
//! Bounds: at most `txs_max` transactions and `bytes_max` encoded bytes in total, and
//! `per_signer_max` per signer; a full pool refuses new transactions rather than evicting.

use bulwark_types::{BlockLimits, PublicKey, RejectReason, SignedTx};
use commonware_codec::EncodeSize;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Hasher, Sha256};
use std::collections::BTreeMap;

/// A transaction's identity: SHA-256 of its encoding (signature included).
pub type TxDigest = Digest;

pub fn tx_digest(tx: &SignedTx) -> TxDigest {
    Sha256::hash(&[&commonware_codec::Encode::encode(tx)])
}

/// Bounds of one validator's mempool. Node-local (not replicated).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    pub txs_max: usize,
    pub bytes_max: usize,
    pub per_signer_max: usize,
    /// Transactions still pending this many blocks after admission are dropped.
    pub age_blocks_max: u64,
}

impl MempoolLimits {
    /// 100,000 transactions (about 25 MB), 256 per signer, one minute of blocks at 10/s.
    pub const DEFAULT: Self = Self {
        txs_max: 100_000,
        bytes_max: 32 << 20,
        per_signer_max: 256,
        age_blocks_max: 600,
    };
}

/// Why the mempool refused a transaction. Each is a clear answer for the API client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("signature does not verify")]
    SignatureInvalid,
    #[error("rejected before execution: {0}")]
    Invalid(RejectReason),
    #[error("nonce {nonce} is not above the signer's last executed nonce {last}")]
    NonceStale { nonce: u64, last: u64 },
    #[error("a transaction with this signer and nonce is already pending")]
    Duplicate,
    #[error("this signer already has {0} transactions pending")]
    SignerQueueFull(usize),
    #[error("the mempool is full; retry later")]
    PoolFull,
}

#[derive(Clone, Debug)]
struct Pending {
    tx: SignedTx,
    bytes: usize,
    seq: u64,
    admitted_at: u64,
}

/// Pending transactions, by signer and nonce, with their arrival order.
#[derive(Clone, Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    by_signer: BTreeMap<PublicKey, BTreeMap<u64, Pending>>,
    arrival: BTreeMap<u64, (PublicKey, u64)>,
    seq: u64,
    bytes: usize,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Self {
        assert!(
            limits.txs_max > 0 && limits.bytes_max > 0 && limits.per_signer_max > 0,
            "mempool bounds positive"
        );
        Self {
            limits,
            by_signer: BTreeMap::new(),
            arrival: BTreeMap::new(),
            seq: 0,
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.arrival.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arrival.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Highest nonce of `signer` waiting in the pool (the API derives a client's next nonce).
    pub fn nonce_max(&self, signer: &PublicKey) -> Option<u64> {
        self.by_signer
            .get(signer)
            .and_then(|q| q.keys().next_back().copied())
    }

    /// Admits a transaction whose signature verdict the caller computed (in a batch).
    /// `nonce_last` is the signer's last executed nonce in the newest state this node knows.
    pub fn admit(
        &mut self,
        tx: SignedTx,
        signature_valid: bool,
        nonce_last: Option<u64>,
        height: u64,
    ) -> Result<(), AdmitError> {
        if !signature_valid {
            return Err(AdmitError::SignatureInvalid);
        }
        tx.tx.body.check().map_err(AdmitError::Invalid)?;
        let nonce = tx.tx.nonce.get();
        if let Some(last) = nonce_last.filter(|last| nonce <= *last) {
            return Err(AdmitError::NonceStale { nonce, last });
        }
        let queue_len = self.by_signer.get(&tx.tx.signer).map_or(0, BTreeMap::len);
        if self
            .by_signer
            .get(&tx.tx.signer)
            .is_some_and(|q| q.contains_key(&nonce))
        {
            return Err(AdmitError::Duplicate);
        }
        if queue_len >= self.limits.per_signer_max {
            return Err(AdmitError::SignerQueueFull(queue_len));
        }
        let bytes = tx.encode_size();
        if self.arrival.len() >= self.limits.txs_max || self.bytes + bytes > self.limits.bytes_max {
            return Err(AdmitError::PoolFull);
        }
        self.seq += 1;
        self.arrival.insert(self.seq, (tx.tx.signer.clone(), nonce));
        self.bytes += bytes;
        let pending = Pending {
            tx,
            bytes,
            seq: self.seq,
            admitted_at: height,
        };
        self.by_signer
            .entry(pending.tx.tx.signer.clone())
            .or_default()
            .insert(nonce, pending);
        Ok(())
    }

    /// Transactions for the next block, within `limits` and `bytes_max`: first every signer's
    /// leading run of cancels (so market makers' cancels land before new orders, as
    /// Hyperliquid orders its actions), then the rest in arrival order, each signer's in nonce
    /// order. Transactions at or below a signer's `nonce_last` are skipped. Nothing is removed.
    pub fn select(
        &self,
        limits: &BlockLimits,
        bytes_max: usize,
        nonce_last: impl Fn(&PublicKey) -> Option<u64>,
    ) -> Vec<SignedTx> {
        let mut chosen: Vec<SignedTx> = Vec::new();
        let mut bytes = 0usize;
        // Next nonce to take per signer (the key), so a signer's transactions stay in order.
        let mut taken: BTreeMap<&PublicKey, u64> = BTreeMap::new();
        let fresh =
            |signer: &PublicKey, nonce: u64| nonce_last(signer).is_none_or(|last| nonce > last);
        let take = |p: &Pending, chosen: &mut Vec<SignedTx>, bytes: &mut usize| -> bool {
            if chosen.len() >= limits.txs_max || *bytes + p.bytes > bytes_max {
                return false;
            }
            *bytes += p.bytes;
            chosen.push(p.tx.clone());
            true
        };
        // Leading cancels, signers in order of their first arrival.
        let mut signers: Vec<(&PublicKey, u64)> = self
            .by_signer
            .iter()
            .filter_map(|(signer, q)| q.values().map(|p| p.seq).min().map(|seq| (signer, seq)))
            .collect();
        signers.sort_by_key(|(_, seq)| *seq);
        for (signer, _) in &signers {
            for (nonce, pending) in &self.by_signer[*signer] {
                if !fresh(signer, *nonce) {
                    continue;
                }
                if !pending.tx.tx.body.is_cancel() || !take(pending, &mut chosen, &mut bytes) {
                    break;
                }
                taken.insert(signer, nonce + 1);
            }
        }
        // Everything else, by arrival; an arrival pulls in its signer's lower nonces first.
        for (signer, nonce) in self.arrival.values() {
            let from = taken.get(signer).copied().unwrap_or(0);
            if *nonce < from {
                continue;
            }
            for (n, pending) in self.by_signer[signer].range(from..=*nonce) {
                if !fresh(signer, *n) {
                    continue;
                }
                if !take(pending, &mut chosen, &mut bytes) {
                    return chosen;
                }
                taken.insert(signer, n + 1);
            }
        }
        chosen
    }

    /// Drops every transaction of `signer` at or below `nonce` (executed, or made stale);
    /// returns the digests of those dropped.
    pub fn prune_signer(&mut self, signer: &PublicKey, nonce: u64) -> Vec<TxDigest> {
        let Some(queue) = self.by_signer.get_mut(signer) else {
            return Vec::new();
        };
        let keep = queue.split_off(&(nonce.saturating_add(1)));
        let mut dropped = Vec::new();
        for pending in std::mem::replace(queue, keep).into_values() {
            self.arrival.remove(&pending.seq);
            self.bytes -= pending.bytes;
            dropped.push(tx_digest(&pending.tx));
        }
        if self.by_signer[signer].is_empty() {
            self.by_signer.remove(signer);
        }
        dropped
    }

    /// Drops transactions executed in a block and everything of theirs they made stale;
    /// returns the digests of the stale ones (pending transactions that will never execute:
    /// a higher nonce of their signer executed first).
    pub fn prune_executed(&mut self, txs: &[SignedTx]) -> Vec<TxDigest> {
        let executed: std::collections::BTreeSet<TxDigest> = txs.iter().map(tx_digest).collect();
        let mut stale = Vec::new();
        for tx in txs {
            stale.extend(
                self.prune_signer(&tx.tx.signer, tx.tx.nonce.get())
                    .into_iter()
                    .filter(|d| !executed.contains(d)),
            );
        }
        stale
    }

    /// Drops transactions admitted more than `age_blocks_max` blocks before `height`; returns
    /// their digests.
    pub fn evict_old(&mut self, height: u64) -> Vec<TxDigest> {
        let mut evicted = Vec::new();
        let cutoff = height.saturating_sub(self.limits.age_blocks_max);
        let old: Vec<(PublicKey, u64)> = self
            .by_signer
            .iter()
            .flat_map(|(signer, q)| {
                q.iter()
                    .filter(|(_, p)| p.admitted_at < cutoff)
                    .map(move |(n, _)| (signer.clone(), *n))
            })
            .collect();
        for (signer, nonce) in old {
            if let Some(queue) = self.by_signer.get_mut(&signer) {
                if let Some(pending) = queue.remove(&nonce) {
                    self.arrival.remove(&pending.seq);
                    self.bytes -= pending.bytes;
                    evicted.push(tx_digest(&pending.tx));
                }
                if queue.is_empty() {
                    self.by_signer.remove(&signer);
                }
            }
        }
        evicted
    }

    /// Checks the pool's bookkeeping; for tests.
    pub fn check(&self) {
        let count: usize = self.by_signer.values().map(BTreeMap::len).sum();
        let bytes: usize = self
            .by_signer
            .values()
            .flat_map(|q| q.values())
            .map(|p| p.bytes)
            .sum();
        assert_eq!(
            count,
            self.arrival.len(),
            "arrival index covers every pending transaction"
        );
        assert_eq!(bytes, self.bytes, "byte total matches");
        assert!(
            count <= self.limits.txs_max && bytes <= self.limits.bytes_max,
            "within bounds"
        );
        assert!(
            self.by_signer
                .values()
                .all(|q| !q.is_empty() && q.len() <= self.limits.per_signer_max)
        );
    }
}

/// The proposer's duty of order that every verifier checks: cancels first. A cancel may
/// follow a transaction that is not a cancel only behind a non-cancel of its own signer (its
/// nonce order keeps it there), so a leader cannot hold market makers' cancels back while it
/// runs orders against their stale quotes. [`Mempool::select`] always satisfies it.
pub fn cancels_first(txs: &[SignedTx]) -> bool {
    let mut ordered: std::collections::BTreeSet<&PublicKey> = std::collections::BTreeSet::new();
    for tx in txs {
        if tx.tx.body.is_cancel() {
            if !ordered.is_empty() && !ordered.contains(&tx.tx.signer) {
                return false;
            }
        } else {
            ordered.insert(&tx.tx.signer);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::{Nonce, PrivateKey, Tx, TxBody};
    use commonware_cryptography::Signer;

    fn tx(seed: u64, nonce: u64, cancel: bool) -> SignedTx {
        let key = PrivateKey::from_seed(seed);
        let body = if cancel {
            TxBody::CancelAll { instrument: None }
        } else {
            TxBody::Withdraw {
                amount: bulwark_types::Money::from_usdc(1),
            }
        };
        Tx {
            signer: key.public_key(),
            nonce: Nonce::new(nonce),
            body,
        }
        .sign(&key)
    }

    fn nonces(txs: &[SignedTx]) -> Vec<(u64, u64)> {
        txs.iter()
            .map(|t| (t.tx.signer.as_ref()[0] as u64, t.tx.nonce.get()))
            .collect()
    }

    #[test]
    fn admission_refuses_stale_duplicate_and_overfull() {
        let limits = MempoolLimits {
            txs_max: 3,
            bytes_max: 1 << 20,
            per_signer_max: 2,
            age_blocks_max: 10,
        };
        let mut pool = Mempool::new(limits);
        assert_eq!(
            pool.admit(tx(1, 5, false), false, None, 0),
            Err(AdmitError::SignatureInvalid)
        );
        assert_eq!(
            pool.admit(tx(1, 5, false), true, Some(5), 0),
            Err(AdmitError::NonceStale { nonce: 5, last: 5 })
        );
        assert_eq!(pool.admit(tx(1, 6, false), true, Some(5), 0), Ok(()));
        assert_eq!(
            pool.admit(tx(1, 6, false), true, Some(5), 0),
            Err(AdmitError::Duplicate)
        );
        assert_eq!(pool.admit(tx(1, 7, false), true, Some(5), 0), Ok(()));
        assert_eq!(
            pool.admit(tx(1, 8, false), true, Some(5), 0),
            Err(AdmitError::SignerQueueFull(2))
        );
        assert_eq!(pool.admit(tx(2, 1, false), true, None, 0), Ok(()));
        assert_eq!(
            pool.admit(tx(3, 1, false), true, None, 0),
            Err(AdmitError::PoolFull)
        );
        pool.check();
    }

    /// Signer 1 sends an order then a cancel; signer 2 a cancel; signer 3 an order; signer 2
    /// an order; then `more`. Returns the default selection.
    fn mixed_selection(more: &[SignedTx]) -> Vec<SignedTx> {
        let mut pool = Mempool::new(MempoolLimits::DEFAULT);
        let base = [
            tx(1, 1, false),
            tx(1, 2, true),
            tx(2, 1, true),
            tx(3, 1, false),
            tx(2, 2, false),
        ];
        for t in base.iter().chain(more) {
            pool.admit(t.clone(), true, None, 0).unwrap();
        }
        pool.select(&BlockLimits::DEFAULT, 1 << 20, |_| None)
    }

    #[test]
    fn selection_puts_leading_cancels_first_and_keeps_nonce_order() {
        let chosen = mixed_selection(&[]);
        let s = |seed: u64| PrivateKey::from_seed(seed).public_key().as_ref()[0] as u64;
        // Signer 2's cancel jumps ahead; signer 1's cancel stays behind its own order.
        assert_eq!(
            nonces(&chosen),
            vec![(s(2), 1), (s(1), 1), (s(1), 2), (s(3), 1), (s(2), 2)]
        );
    }

    #[test]
    fn selections_put_cancels_first_and_a_leader_holding_one_back_breaks_the_rule() {
        let chosen = mixed_selection(&[tx(4, 1, true)]);
        assert!(cancels_first(&chosen));
        // A leader that moves signer 4's cancel behind signer 3's order.
        let mut held_back = chosen.clone();
        let at = held_back
            .iter()
            .position(|t| t.tx.signer == PrivateKey::from_seed(4).public_key())
            .unwrap();
        let cancel = held_back.remove(at);
        held_back.push(cancel);
        assert!(!cancels_first(&held_back));
        assert!(cancels_first(&[]));
    }

    proptest::proptest! {
        /// Whatever the mempool holds, its selection passes the verifiers' cancels-first check.
        #[test]
        fn every_selection_passes_the_cancels_first_check(
            txs in proptest::collection::vec((1u64..6, any_cancel()), 0..40),
        ) {
            let mut pool = Mempool::new(MempoolLimits::DEFAULT);
            let mut next = std::collections::BTreeMap::new();
            for (signer, cancel) in txs {
                let nonce = next.entry(signer).or_insert(0u64);
                *nonce += 1;
                let _ = pool.admit(tx(signer, *nonce, cancel), true, None, 0);
            }
            let limits = BlockLimits { txs_max: 7, prices_max: 1, observations_max: 1 };
            for bytes_max in [200usize, 1 << 20] {
                let chosen = pool.select(&limits, bytes_max, |_| None);
                proptest::prop_assert!(cancels_first(&chosen));
            }
        }
    }

    fn any_cancel() -> impl proptest::strategy::Strategy<Value = bool> {
        proptest::prelude::any::<bool>()
    }

    #[test]
    fn selection_respects_limits_and_skips_executed_nonces() {
        let mut pool = Mempool::new(MempoolLimits::DEFAULT);
        for n in 1..=5 {
            pool.admit(tx(1, n, false), true, None, 0).unwrap();
        }
        let limits = BlockLimits {
            txs_max: 2,
            prices_max: 1,
            observations_max: 1,
        };
        let chosen = pool.select(&limits, 1 << 20, |_| Some(2));
        assert_eq!(
            chosen.iter().map(|t| t.tx.nonce.get()).collect::<Vec<_>>(),
            vec![3, 4]
        );
        // Nonces 1 and 2 were executed elsewhere (the state says 2): executing 3 and 4 drops
        // them as superseded, but not 3 and 4 themselves.
        let superseded = pool.prune_executed(&chosen);
        assert_eq!(
            superseded,
            vec![tx_digest(&tx(1, 1, false)), tx_digest(&tx(1, 2, false))]
        );
        assert_eq!(pool.len(), 1);
        pool.check();
    }

    #[test]
    fn a_later_nonce_arriving_first_waits_for_its_predecessor() {
        let mut pool = Mempool::new(MempoolLimits::DEFAULT);
        pool.admit(tx(1, 2, false), true, None, 0).unwrap();
        pool.admit(tx(4, 1, false), true, None, 0).unwrap();
        pool.admit(tx(1, 1, false), true, None, 0).unwrap();
        let chosen = pool.select(&BlockLimits::DEFAULT, 1 << 20, |_| None);
        let order: Vec<u64> = chosen.iter().map(|t| t.tx.nonce.get()).collect();
        assert_eq!(
            order,
            vec![1, 2, 1],
            "signer 1's nonce 1 is pulled ahead of its nonce 2"
        );
    }

    #[test]
    fn old_transactions_are_evicted() {
        let mut pool = Mempool::new(MempoolLimits {
            age_blocks_max: 5,
            ..MempoolLimits::DEFAULT
        });
        pool.admit(tx(1, 1, false), true, None, 0).unwrap();
        pool.admit(tx(2, 1, false), true, None, 4).unwrap();
        assert_eq!(pool.evict_old(6), vec![tx_digest(&tx(1, 1, false))]);
        assert_eq!(pool.len(), 1);
        pool.check();
    }
}
