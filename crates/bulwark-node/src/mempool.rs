//! The mempool: signed transactions waiting for a block.
//!
//! Owns: admission at the door (stateless checks, signature verdict, nonce freshness,
//! duplicates, per-signer, per-account and global bounds), block selection (cancels first, but
//! those that cannot cancel an open order in at most an eighth of a block and all in at most
//! half while anything else waits; each signer's transactions in nonce order, otherwise the
//! payers taking turns, each account's share capped), eviction when full, and pruning once
//! transactions are executed or too old.
//! Never: executes anything, or iterates a hash map (selection must be reproducible; a
//! proposal's turns look payers up in one, never iterate it).
//!
//! Spam costs the spammer: every transaction is charged to its [`Payer`], the account its
//! signer owns or trades for in the newest state this node holds (keys with no account are
//! refused before their signature is checked, in `Shared::submit`). An account's keys share
//! `per_account_max` places in the pool and `per_account_block_max` places in a block, so
//! a thousand agent keys buy no more room than one; and a full pool makes room for an account
//! holding fewer transactions by evicting the newest transaction of the account holding the
//! most, so a flooder fills only its own share.
//! Bounds: at most `txs_max` transactions and `bytes_max` encoded bytes in total,
//! `per_signer_max` per signer and `per_account_max` per account. Per block: the expiry
//! sweep reads only the expired arrivals and one more; a proposal still reads every pending
//! transaction (its payer's turns and the leading cancels), about 17 ms for 100,000 on this
//! project's VM (`cargo bench -p bulwark-node --bench mempool`).

use bulwark_exchange::CancelTarget;
use bulwark_types::{AccountId, BlockLimits, PublicKey, RejectReason, SignedTx, SignerKey, TxBody};
use commonware_codec::EncodeSize;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Hasher, Sha256};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque, btree_map};

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
    /// Pending transactions of one account's keys (owner and agents) together.
    pub per_account_max: usize,
    /// Transactions of one account's keys in one block this node proposes.
    pub per_account_block_max: usize,
    /// Transactions still pending this many blocks after admission are dropped.
    pub age_blocks_max: u64,
}

impl MempoolLimits {
    /// 100,000 transactions (about 25 MB), 256 per signer, 1,024 per account and 512 of an
    /// account in one block, one minute of blocks at 10/s.
    pub const DEFAULT: Self = Self {
        txs_max: 100_000,
        bytes_max: 32 << 20,
        per_signer_max: 256,
        per_account_max: 1_024,
        per_account_block_max: 512,
        age_blocks_max: 600,
    };
}

/// Who a transaction is charged to, in pool and block room: from the newest state.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Payer {
    /// The exchange's operator keys (bridge, admin): bounded per signer only, never evicted.
    Operator,
    /// The account the signer owns or trades for.
    Account(AccountId),
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
    #[error("this account's keys already have {0} transactions pending")]
    AccountQueueFull(usize),
    #[error("the signer has no account with collateral and is not an operator key")]
    UnknownSigner,
    #[error("the mempool is full; retry later")]
    PoolFull,
}

#[derive(Clone, Debug)]
struct Pending {
    tx: SignedTx,
    /// [`tx_digest`] of `tx`, computed once by the caller at admission.
    digest: TxDigest,
    bytes: usize,
    seq: u64,
    payer: Payer,
}

/// A pending transaction's place in arrival order, with what a proposal's turns and the
/// per-block expiry read of it, so neither looks the transaction up.
#[derive(Copy, Clone, Debug)]
struct Arrival {
    signer: SignerKey,
    nonce: u64,
    payer: Payer,
    /// The height it counts its age from: never below an earlier arrival's, so the oldest
    /// arrivals are the first to expire.
    admitted_at: u64,
}

/// One account's pending transactions: how many, and how many each of its keys holds (a key
/// may hold some charged to another account, admitted before the key changed hands).
#[derive(Clone, Debug, Default)]
struct AccountPending {
    count: usize,
    signers: BTreeMap<SignerKey, usize>,
}

/// Pending transactions, by signer and nonce, with their arrival order and payers.
#[derive(Clone, Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    /// Each signer's queue by nonce. Boxed: a signed transaction is 544 bytes; held by value,
    /// every queue opened (most hold one or two) allocated a B-tree leaf of about 6.8 KB, and
    /// every removal from its front moved the rest along.
    by_signer: BTreeMap<SignerKey, BTreeMap<u64, Box<Pending>>>,
    arrival: BTreeMap<u64, Arrival>,
    /// The highest height an arrival was admitted at (`Arrival::admitted_at`).
    admitted_at_max: u64,
    /// Every account with pending transactions (one lookup per admission and per removal).
    accounts: BTreeMap<AccountId, AccountPending>,
    /// The account holding the most, for eviction: a heap holding, for every account in
    /// `accounts`, an entry at or above its count. An admission pushes the account's new
    /// count; a removal touches nothing, and a stale top is corrected when eviction looks
    /// (`largest_account`). Rebuilt from `accounts` when it holds more than twice as many
    /// entries (`bound_largest`).
    largest: BinaryHeap<(usize, AccountId)>,
    seq: u64,
    bytes: usize,
    evicted: u64,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Self {
        assert!(
            limits.txs_max > 0 && limits.bytes_max > 0 && limits.per_signer_max > 0,
            "mempool bounds positive"
        );
        assert!(
            limits.per_account_max > 0
                && (1..=Self::BLOCK_TXS_PER_ACCOUNT_MAX).contains(&limits.per_account_block_max)
                && (1..=Self::BLOCK_TXS_PER_ACCOUNT_MAX).contains(&limits.per_signer_max),
            "per-account and per-signer bounds positive and within the block rule"
        );
        Self {
            limits,
            by_signer: BTreeMap::new(),
            arrival: BTreeMap::new(),
            admitted_at_max: 0,
            accounts: BTreeMap::new(),
            largest: BinaryHeap::new(),
            seq: 0,
            bytes: 0,
            evicted: 0,
        }
    }

    /// Transactions evicted to make room since startup.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Pending transactions charged to `account`.
    pub fn account_pending(&self, account: AccountId) -> usize {
        self.accounts.get(&account).map_or(0, |a| a.count)
    }

    /// Counts an admitted transaction of `account` signed by `signer`.
    fn count_account(&mut self, account: AccountId, signer: SignerKey) {
        let pending = self.accounts.entry(account).or_default();
        pending.count += 1;
        *pending.signers.entry(signer).or_insert(0) += 1;
        self.largest.push((pending.count, account));
        self.bound_largest();
    }

    /// Rebuilds the heap from the accounts once it holds more than twice as many entries (plus
    /// a margin): amortized, each rebuild of n entries follows at least about n/2 admissions
    /// or the departure of about half the accounts.
    fn bound_largest(&mut self) {
        if self.largest.len() > 2 * self.accounts.len() + 64 {
            self.largest = self
                .accounts
                .iter()
                .map(|(account, pending)| (pending.count, *account))
                .collect();
        }
    }

    /// Uncounts a removed transaction of `account` signed by `signer`.
    fn uncount_account(&mut self, account: AccountId, signer: SignerKey) {
        let btree_map::Entry::Occupied(mut entry) = self.accounts.entry(account) else {
            panic!("an account's transaction is counted on admission");
        };
        let pending = entry.get_mut();
        pending.count = pending.count.checked_sub(1).expect("counted on admission");
        let btree_map::Entry::Occupied(mut held) = pending.signers.entry(signer) else {
            panic!("a signer's transaction is counted on admission");
        };
        *held.get_mut() -= 1;
        if *held.get() == 0 {
            held.remove();
        }
        if pending.count == 0 {
            assert!(pending.signers.is_empty(), "no count, no signer");
            entry.remove();
            self.bound_largest();
        }
    }

    /// The account holding the most pending transactions (the larger id among equals), and
    /// how many; corrects the heap's stale tops on the way.
    fn largest_account(&mut self) -> Option<(usize, AccountId)> {
        // Bounded: each round pops an entry, and the heap holds finitely many.
        while let Some(&(count, account)) = self.largest.peek() {
            let now = self.account_pending(account);
            // An admission pushed every count the account reached, so none is above its top.
            assert!(
                now <= count,
                "the heap holds every account at or above its count"
            );
            if now == count {
                return Some((count, account));
            }
            self.largest.pop();
            if now > 0 {
                self.largest.push((now, account));
            }
        }
        None
    }

    /// Unlinks a transaction already taken out of its signer's queue; drops the signer's
    /// queue if it emptied. Returns its digest.
    fn unlink(&mut self, signer: SignerKey, pending: &Pending) -> TxDigest {
        self.arrival.remove(&pending.seq);
        self.bytes -= pending.bytes;
        let emptied = self.by_signer.get(&signer).is_some_and(BTreeMap::is_empty);
        if emptied {
            self.by_signer.remove(&signer);
        }
        if let Payer::Account(account) = pending.payer {
            self.uncount_account(account, signer);
        }
        debug_assert_eq!(
            pending.digest,
            tx_digest(&pending.tx),
            "digest kept since admission"
        );
        pending.digest
    }

    /// Evicts the newest transaction of the account holding the most pending, if that
    /// account holds more than `payer` would after admission; returns the evicted digest.
    fn evict_for(&mut self, payer: Payer) -> Option<TxDigest> {
        let (largest, account) = self.largest_account()?;
        let mine = match payer {
            Payer::Operator => 0,
            Payer::Account(own) if own == account => return None,
            Payer::Account(own) => self.account_pending(own),
        };
        if largest <= mine + 1 {
            return None;
        }
        // Its signer with the longest queue gives up its highest nonce (no gap is left).
        let signer = self
            .accounts
            .get(&account)?
            .signers
            .keys()
            .max_by_key(|s| self.by_signer.get(*s).map_or(0, BTreeMap::len))
            .copied()?;
        let (_, pending) = self.by_signer.get_mut(&signer)?.pop_last()?;
        self.evicted += 1;
        Some(self.unlink(signer, &pending))
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
            .get(&SignerKey::of(signer))
            .and_then(|q| q.keys().next_back().copied())
    }

    /// Admits a transaction whose signature verdict and [`tx_digest`] the caller computed
    /// (the verdict in a batch).
    /// `nonce_last` is the signer's last executed nonce in the newest state this node knows,
    /// `payer` who the signer is there. Returns the digests of transactions evicted to make
    /// room (they will never execute from this node's pool).
    pub fn admit(
        &mut self,
        tx: SignedTx,
        digest: TxDigest,
        signature_valid: bool,
        nonce_last: Option<u64>,
        height: u64,
        payer: Payer,
    ) -> Result<Vec<TxDigest>, AdmitError> {
        if !signature_valid {
            return Err(AdmitError::SignatureInvalid);
        }
        tx.tx.body.check().map_err(AdmitError::Invalid)?;
        let nonce = tx.tx.nonce.get();
        if let Some(last) = nonce_last.filter(|last| nonce <= *last) {
            return Err(AdmitError::NonceStale { nonce, last });
        }
        let signer = SignerKey::of(&tx.tx.signer);
        let queue = self.by_signer.get(&signer);
        let queue_len = queue.map_or(0, BTreeMap::len);
        if queue.is_some_and(|q| q.contains_key(&nonce)) {
            return Err(AdmitError::Duplicate);
        }
        if queue_len >= self.limits.per_signer_max {
            return Err(AdmitError::SignerQueueFull(queue_len));
        }
        if let Payer::Account(account) = payer {
            let pending = self.account_pending(account);
            if pending >= self.limits.per_account_max {
                return Err(AdmitError::AccountQueueFull(pending));
            }
        }
        let bytes = tx.encode_size();
        let mut evicted = Vec::new();
        // Bounded: each round frees one transaction; a transaction is at most TX_BYTES_MAX,
        // so a few rounds free room for any one.
        for _ in 0..8 {
            if self.arrival.len() < self.limits.txs_max
                && self.bytes + bytes <= self.limits.bytes_max
            {
                break;
            }
            match self.evict_for(payer) {
                Some(digest) => evicted.push(digest),
                None => break,
            }
        }
        if self.arrival.len() >= self.limits.txs_max || self.bytes + bytes > self.limits.bytes_max {
            return Err(AdmitError::PoolFull);
        }
        self.seq += 1;
        // The newest state's height can step back when this node's speculative head moves to
        // another fork; an arrival then counts its age from the highest height admitted at,
        // a block or two later, so that arrival order is expiry order.
        self.admitted_at_max = self.admitted_at_max.max(height);
        self.arrival.insert(
            self.seq,
            Arrival {
                signer,
                nonce,
                payer,
                admitted_at: self.admitted_at_max,
            },
        );
        self.bytes += bytes;
        let pending = Box::new(Pending {
            tx,
            digest,
            bytes,
            seq: self.seq,
            payer,
        });
        self.by_signer
            .entry(signer)
            .or_default()
            .insert(nonce, pending);
        if let Payer::Account(account) = payer {
            self.count_account(account, signer);
        }
        Ok(evicted)
    }

    /// The network's rule every verifier checks: a block carries at most this many transactions
    /// charged to one account (an honest proposer takes at most `per_account_block_max`, which
    /// may not exceed it).
    pub const BLOCK_TXS_PER_ACCOUNT_MAX: usize = 1_024;

    /// Transactions for the next block, within `limits` and `bytes_max`.
    ///
    /// First the leading cancels (each signer's run of cancels before its first other
    /// transaction), so market makers' cancels land before new orders, as Hyperliquid orders
    /// its actions: the payers (accounts, each operator key) take turns, one cancel a turn,
    /// each payer's signers in order of their first arrival. The cancels that would cancel
    /// something in the block's state go first (`cancel_target`, `Exchange::cancel_target`: an open
    /// order of the account, or its open orders in an instrument; a signer's, up to its first
    /// that would not, and each target once per account); then, in turns again, the others
    /// (cancels of nothing, repeats, and operator keys'), at most an eighth of the block
    /// ([`Self::empty_cancels_max`]). The leading cancels take at
    /// most half the block while anything else waits ([`Self::cancel_lane_max`]). Then the
    /// rest, the payers taking turns, each turn its next arrival, each signer's in nonce order.
    /// Then, if room is left, the leading cancels held back, placed after the other leading
    /// cancels, and their signers' other transactions. Each account's keys take at most
    /// `per_account_block_max` in all.
    ///
    /// A cancel of nothing costs nothing, so without the bounds a few throwaway accounts could
    /// fill every block with cancels and no one could place an order (test
    /// `a_cancel_flood_takes_an_eighth_of_a_block_and_honest_traders_keep_their_place`); with
    /// them, the flood comes after every cancel that can cancel something, cannot touch the
    /// half of the block left to everything else, and fills only the room nothing else
    /// wants. A signer whose leading cancels did not all fit sends nothing else in this block
    /// (its later nonces wait behind them), so the verifiers' cancels-first rule
    /// ([`cancels_first`]) holds.
    ///
    /// Transactions at or below a signer's `nonce_last` are skipped, and so are the
    /// transactions of a signer that `payer_now` (given the payer it was admitted under) says
    /// no longer has one: the block's state decides, as every verifier's does
    /// ([`block_payers_valid`]). Nothing is removed. Every transaction returned was admitted
    /// with a valid signature (see [`Self::admit`]): a proposal built from them carries that
    /// verdict ([`crate::verdicts::carry_own_proposal`]).
    pub fn select(
        &self,
        limits: &BlockLimits,
        bytes_max: usize,
        nonce_last: impl Fn(&PublicKey) -> Option<u64>,
        payer_now: impl Fn(&PublicKey, Payer) -> Option<Payer>,
        cancel_target: impl Fn(AccountId, &TxBody) -> Option<CancelTarget>,
    ) -> Vec<SignedTx> {
        let mut block = Selection {
            pool: self,
            txs_max: limits.txs_max,
            bytes_max,
            nonce_last,
            payer_now,
            chosen: Vec::new(),
            bytes: 0,
            taken: BTreeMap::new(),
            held: BTreeSet::new(),
            shares: BTreeMap::new(),
        };
        let [mut lanes, mut late_lanes] = block.leading_cancels(cancel_target);
        let lane_max = Self::cancel_lane_max(limits);
        if !block.lane_turns(&mut lanes, lane_max) {
            return block.chosen;
        }
        let late_max = lane_max.min(block.chosen.len() + Self::empty_cancels_max(limits));
        if !block.lane_turns(&mut late_lanes, late_max) {
            return block.chosen;
        }
        // Leading cancels the lane had no room for hold their signers back: nothing of theirs
        // may precede them.
        let lane_held: BTreeSet<SignerKey> = lanes
            .iter()
            .chain(&late_lanes)
            .flatten()
            .map(|(signer, _)| *signer)
            .filter(|signer| !block.held.contains(signer))
            .collect();
        block.held.extend(lane_held.iter().copied());
        let lane_end = block.chosen.len();
        if !block.other_turns() || lane_held.is_empty() {
            return block.chosen;
        }
        // Room left: the held-back leading cancels, after the other leading cancels (ahead of
        // everything else, as the rule wants), then those signers' other transactions.
        block.held.retain(|signer| !lane_held.contains(signer));
        let late_start = block.chosen.len();
        let room = block.lane_turns(&mut lanes, usize::MAX)
            && block.lane_turns(&mut late_lanes, usize::MAX);
        let late = block.chosen.split_off(late_start);
        block.chosen.splice(lane_end..lane_end, late);
        if room {
            block.other_turns();
        }
        block.chosen
    }

    /// Most leading cancels [`Self::select`] puts in a block before anything else has had its
    /// turn: half the block (at least one).
    pub fn cancel_lane_max(limits: &BlockLimits) -> usize {
        (limits.txs_max / 2).max(1)
    }

    /// Most leading cancels that target nothing not already targeted by their account's
    /// cancels in this block (cancels of nothing, repeats, operator keys')
    /// [`Self::select`] puts in a block before anything else has had its turn: an eighth of
    /// the block (at least one).
    pub fn empty_cancels_max(limits: &BlockLimits) -> usize {
        (limits.txs_max / 8).max(1)
    }

    /// Drops every transaction of `signer` at or below `nonce` (executed, or made stale);
    /// returns the digests of those dropped.
    pub fn prune_signer(&mut self, signer: &PublicKey, nonce: u64) -> Vec<TxDigest> {
        let signer = SignerKey::of(signer);
        let Some(queue) = self.by_signer.get_mut(&signer) else {
            return Vec::new();
        };
        // Taken from the front, in place: usually one transaction or none.
        let mut gone = Vec::new();
        while let Some(entry) = queue.first_entry()
            && *entry.key() <= nonce
        {
            gone.push(entry.remove());
        }
        gone.into_iter()
            .map(|pending| self.unlink(signer, &pending))
            .collect()
    }

    /// Drops transactions executed in a block (`digests` are their [`tx_digest`]s, in block
    /// order) and everything of theirs they made stale; returns the digests of the stale ones
    /// (pending transactions that will never execute: a higher nonce of their signer executed
    /// first).
    pub fn prune_executed(&mut self, txs: &[SignedTx], digests: &[TxDigest]) -> Vec<TxDigest> {
        assert_eq!(
            txs.len(),
            digests.len(),
            "one digest per executed transaction"
        );
        let executed: std::collections::HashSet<&TxDigest> = digests.iter().collect();
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
    /// their digests. Runs every block, so it reads only the expired arrivals and the first
    /// that is not: arrival order is expiry order (`Arrival::admitted_at`). A pool held full
    /// (100,000) cost every validator a scan of the whole pool per block before.
    pub fn evict_old(&mut self, height: u64) -> Vec<TxDigest> {
        let mut evicted = Vec::new();
        let cutoff = height.saturating_sub(self.limits.age_blocks_max);
        let old: Vec<(SignerKey, u64)> = self
            .arrival
            .values()
            .take_while(|arrival| arrival.admitted_at < cutoff)
            .map(|arrival| (arrival.signer, arrival.nonce))
            .collect();
        for (signer, nonce) in old {
            let removed = self
                .by_signer
                .get_mut(&signer)
                .and_then(|queue| queue.remove(&nonce));
            if let Some(pending) = removed {
                evicted.push(self.unlink(signer, &pending));
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
        for (seq, arrival) in &self.arrival {
            let pending = &self.by_signer[&arrival.signer][&arrival.nonce];
            assert!(
                pending.seq == *seq && pending.payer == arrival.payer,
                "an arrival names its pending transaction"
            );
        }
        assert!(
            self.arrival
                .values()
                .zip(self.arrival.values().skip(1))
                .all(|(a, b)| a.admitted_at <= b.admitted_at),
            "arrival order is expiry order"
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
        let mut per_account: BTreeMap<AccountId, usize> = BTreeMap::new();
        for pending in self.by_signer.values().flat_map(|q| q.values()) {
            if let Payer::Account(account) = pending.payer {
                *per_account.entry(account).or_insert(0) += 1;
            }
        }
        let counted: BTreeMap<AccountId, usize> = self
            .accounts
            .iter()
            .map(|(account, pending)| (*account, pending.count))
            .collect();
        assert_eq!(per_account, counted, "account counts match");
        for (account, pending) in &self.accounts {
            let mut holding: BTreeMap<SignerKey, usize> = BTreeMap::new();
            for (signer, queue) in &self.by_signer {
                let n = queue
                    .values()
                    .filter(|p| p.payer == Payer::Account(*account))
                    .count();
                if n > 0 {
                    holding.insert(*signer, n);
                }
            }
            assert_eq!(
                holding, pending.signers,
                "each key's count within its account"
            );
        }
        let mut top: BTreeMap<AccountId, usize> = BTreeMap::new();
        for (count, account) in &self.largest {
            let entry = top.entry(*account).or_insert(0);
            *entry = (*entry).max(*count);
        }
        assert!(
            counted
                .iter()
                .all(|(account, count)| top.get(account).is_some_and(|t| t >= count)),
            "the heap holds every account at or above its count"
        );
        assert!(
            self.largest.len() <= 2 * self.accounts.len() + 64,
            "the heap is bounded"
        );
        assert!(
            per_account
                .values()
                .all(|n| *n <= self.limits.per_account_max)
        );
    }
}

/// Operators' keys are each their own payer; an account's keys share one.
fn payer_key(payer: Payer, signer: SignerKey) -> (Payer, SignerKey) {
    match payer {
        Payer::Operator => (payer, signer),
        Payer::Account(_) => (payer, SignerKey::from_bytes([0; 32])),
    }
}

/// Per payer, its queue of (signer, nonce) taking turns.
type Turns = Vec<VecDeque<(SignerKey, u64)>>;

/// What [`Selection::take`] made of one transaction. Full: the block is done. Over its
/// account's share: that signer waits (its later nonces with it), others go on.
enum Take {
    Taken,
    Full,
    OverShare,
}

/// One block being chosen by [`Mempool::select`]: the only way a transaction gets into it is
/// [`Selection::take`], which keeps the block's bounds and each account's share.
struct Selection<'a, N, P> {
    pool: &'a Mempool,
    txs_max: usize,
    bytes_max: usize,
    nonce_last: N,
    payer_now: P,
    chosen: Vec<SignedTx>,
    bytes: usize,
    /// Next nonce to take per signer, so a signer's transactions stay in order.
    taken: BTreeMap<SignerKey, u64>,
    /// Signers held back for the rest of this selection: by their account's share, or with
    /// leading cancels the lane had no room for.
    held: BTreeSet<SignerKey>,
    shares: BTreeMap<AccountId, usize>,
}

impl<N, P> Selection<'_, N, P>
where
    N: Fn(&PublicKey) -> Option<u64>,
    P: Fn(&PublicKey, Payer) -> Option<Payer>,
{
    fn fresh(&self, signer: &PublicKey, nonce: u64) -> bool {
        (self.nonce_last)(signer).is_none_or(|last| nonce > last)
    }

    /// Puts `p` in the block if its bounds and `p`'s account's share allow.
    fn take(&mut self, p: &Pending) -> Take {
        if self.chosen.len() >= self.txs_max || self.bytes + p.bytes > self.bytes_max {
            return Take::Full;
        }
        let Some(payer) = (self.payer_now)(&p.tx.tx.signer, p.payer) else {
            return Take::OverShare;
        };
        if let Payer::Account(account) = payer {
            let share = self.shares.entry(account).or_insert(0);
            if *share >= self.pool.limits.per_account_block_max {
                return Take::OverShare;
            }
            *share += 1;
        }
        self.bytes += p.bytes;
        self.chosen.push(p.tx.clone());
        Take::Taken
    }

    /// The leading cancels, per payer in order of its first signer's first arrival: each
    /// payer's signers in order of their first arrival, each signer's fresh cancels in nonce
    /// order up to its first other transaction. In the first lanes a signer's cancels that
    /// would cancel something (`cancel_target`) not yet targeted by its account's cancels, up
    /// to its first that would not; the rest, and operator keys' (which hold no orders), in
    /// the second. A signer's cancels in the first lanes come before its cancels in the
    /// second, in nonce order, so taking the first lanes before the second keeps its order.
    fn leading_cancels(
        &self,
        cancel_target: impl Fn(AccountId, &TxBody) -> Option<CancelTarget>,
    ) -> [Turns; 2] {
        let by_signer = &self.pool.by_signer;
        let mut signers: Vec<(&SignerKey, u64)> = by_signer
            .iter()
            .filter_map(|(signer, q)| q.values().map(|p| p.seq).min().map(|seq| (signer, seq)))
            .collect();
        signers.sort_by_key(|(_, seq)| *seq);
        let (mut lanes, mut late_lanes): (Turns, Turns) = (Vec::new(), Vec::new());
        // Per payer: its lane in each, and what its cancels in the first lanes target.
        let mut lane_of: BTreeMap<(Payer, SignerKey), (usize, BTreeSet<CancelTarget>)> =
            BTreeMap::new();
        for (signer, _) in &signers {
            // Whether this signer's cancels still go in the first lanes.
            let mut first = true;
            for (nonce, pending) in &by_signer[*signer] {
                if !self.fresh(&pending.tx.tx.signer, *nonce) {
                    continue;
                }
                if !pending.tx.tx.body.is_cancel() {
                    break;
                }
                let (lane, targets) = lane_of
                    .entry(payer_key(pending.payer, **signer))
                    .or_insert_with(|| {
                        lanes.push(VecDeque::new());
                        late_lanes.push(VecDeque::new());
                        (lanes.len() - 1, BTreeSet::new())
                    });
                first = first
                    && match pending.payer {
                        Payer::Account(account) => cancel_target(account, &pending.tx.tx.body)
                            .is_some_and(|target| targets.insert(target)),
                        Payer::Operator => false,
                    };
                if first {
                    lanes[*lane].push_back((**signer, *nonce));
                } else {
                    late_lanes[*lane].push_back((**signer, *nonce));
                }
            }
        }
        lanes.retain(|lane| !lane.is_empty());
        late_lanes.retain(|lane| !lane.is_empty());
        [lanes, late_lanes]
    }

    /// The payers take turns, one leading cancel a turn, until the block holds `lane_max` (or
    /// the lanes are empty). Returns false when the block is full.
    fn lane_turns(&mut self, lanes: &mut Turns, lane_max: usize) -> bool {
        // Bounded: each pass takes at least one entry off every lane it visits.
        while !lanes.is_empty() {
            for lane in lanes.iter_mut() {
                if self.chosen.len() >= lane_max {
                    return true;
                }
                while let Some((signer, nonce)) = lane.pop_front() {
                    if self.held.contains(&signer) {
                        continue;
                    }
                    let pending = &self.pool.by_signer[&signer][&nonce];
                    match self.take(pending) {
                        Take::Taken => {
                            self.taken.insert(signer, nonce + 1);
                        }
                        Take::Full => return false,
                        Take::OverShare => {
                            self.held.insert(signer);
                            continue;
                        }
                    }
                    break;
                }
            }
            lanes.retain(|lane| !lane.is_empty());
        }
        true
    }

    /// Everything else: the payers take turns, in the order of their first arrival, each turn
    /// its next arrival (which pulls in its signer's lower nonces first). A trader with many
    /// accounts, each within its share, cannot crowd out accounts with one transaction by
    /// arriving first: while the block has room for a round, every payer is in it. Returns
    /// false when the block is full.
    fn other_turns(&mut self) -> bool {
        let pool = self.pool;
        let mut turns: Turns = Vec::new();
        // Every arrival is read once per proposal: no lookup of its transaction, and its
        // payer's turn found by hash (a pool held full, 100,000, took 40 ms per proposal on
        // this project's VM with two ordered-map lookups per arrival).
        let mut turn_of: HashMap<(Payer, SignerKey), usize> = HashMap::new();
        for arrival in pool.arrival.values() {
            let turn = *turn_of
                .entry(payer_key(arrival.payer, arrival.signer))
                .or_insert_with(|| {
                    turns.push(VecDeque::new());
                    turns.len() - 1
                });
            turns[turn].push_back((arrival.signer, arrival.nonce));
        }
        drop(turn_of);
        // Bounded: each pass takes at least one arrival off every queue it visits.
        while !turns.is_empty() {
            for queue in &mut turns {
                // This payer's next arrival that still has something to take.
                while let Some((signer, nonce)) = queue.pop_front() {
                    let from = self.taken.get(&signer).copied().unwrap_or(0);
                    if nonce < from || self.held.contains(&signer) {
                        continue;
                    }
                    for (n, pending) in pool.by_signer[&signer].range(from..=nonce) {
                        if !self.fresh(&pending.tx.tx.signer, *n) {
                            continue;
                        }
                        match self.take(pending) {
                            Take::Taken => {}
                            Take::Full => return false,
                            Take::OverShare => {
                                self.held.insert(signer);
                                break;
                            }
                        }
                        self.taken.insert(signer, n + 1);
                    }
                    break;
                }
            }
            turns.retain(|queue| !queue.is_empty());
        }
        true
    }
}

/// Whether every transaction of a block is chargeable in `state`, the state its block applies
/// to: its signer is an operator key or a key of an account holding collateral, and no account
/// (nor operator key) is charged more than [`Mempool::BLOCK_TXS_PER_ACCOUNT_MAX`] of them (an
/// honest proposer takes at most `per_signer_max`, 256, of one key). A leader cannot fill a
/// block with keys that have no account (each costing every validator a signature check) or
/// with one account's transactions. The reason names the first that is not.
pub fn block_payers_valid(
    state: &bulwark_exchange::Exchange,
    txs: &[SignedTx],
) -> Result<(), String> {
    let mut shares: BTreeMap<AccountId, usize> = BTreeMap::new();
    let mut operator_shares: BTreeMap<&PublicKey, usize> = BTreeMap::new();
    for tx in txs {
        match crate::shared::payer_of(state, &tx.tx.signer) {
            Err(_) => {
                return Err(format!(
                    "a transaction of {}, a key with no account holding collateral",
                    crate::executor::hex(tx.tx.signer.as_ref())
                ));
            }
            Ok(Payer::Operator) => {
                // An operator or custodian key is charged to itself: a leader that is also a
                // custodian cannot fill its block with its own attestations either.
                let share = operator_shares.entry(&tx.tx.signer).or_insert(0);
                *share += 1;
                if *share > Mempool::BLOCK_TXS_PER_ACCOUNT_MAX {
                    return Err(format!(
                        "more than {} transactions of operator key {}",
                        Mempool::BLOCK_TXS_PER_ACCOUNT_MAX,
                        crate::executor::hex(tx.tx.signer.as_ref())
                    ));
                }
            }
            Ok(Payer::Account(account)) => {
                let share = shares.entry(account).or_insert(0);
                *share += 1;
                if *share > Mempool::BLOCK_TXS_PER_ACCOUNT_MAX {
                    return Err(format!(
                        "more than {} transactions of account {}",
                        Mempool::BLOCK_TXS_PER_ACCOUNT_MAX,
                        account.get()
                    ));
                }
            }
        }
    }
    Ok(())
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
    use bulwark_types::{InstrumentId, Nonce, OrderId, PrivateKey, Tx, TxBody};
    use commonware_cryptography::Signer;

    impl Mempool {
        /// [`Mempool::admit`], hashing the transaction as `Shared::submit` does.
        fn admit_hashed(
            &mut self,
            tx: SignedTx,
            signature_valid: bool,
            nonce_last: Option<u64>,
            height: u64,
            payer: Payer,
        ) -> Result<Vec<TxDigest>, AdmitError> {
            let digest = tx_digest(&tx);
            self.admit(tx, digest, signature_valid, nonce_last, height, payer)
        }
    }

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
            per_account_max: 100,
            per_account_block_max: 100,
            age_blocks_max: 10,
        };
        let mut pool = Mempool::new(limits);
        assert_eq!(
            pool.admit_hashed(tx(1, 5, false), false, None, 0, Payer::Operator),
            Err(AdmitError::SignatureInvalid)
        );
        assert_eq!(
            pool.admit_hashed(tx(1, 5, false), true, Some(5), 0, Payer::Operator),
            Err(AdmitError::NonceStale { nonce: 5, last: 5 })
        );
        assert_eq!(
            pool.admit_hashed(tx(1, 6, false), true, Some(5), 0, Payer::Operator),
            Ok(vec![])
        );
        assert_eq!(
            pool.admit_hashed(tx(1, 6, false), true, Some(5), 0, Payer::Operator),
            Err(AdmitError::Duplicate)
        );
        assert_eq!(
            pool.admit_hashed(tx(1, 7, false), true, Some(5), 0, Payer::Operator),
            Ok(vec![])
        );
        assert_eq!(
            pool.admit_hashed(tx(1, 8, false), true, Some(5), 0, Payer::Operator),
            Err(AdmitError::SignerQueueFull(2))
        );
        assert_eq!(
            pool.admit_hashed(tx(2, 1, false), true, None, 0, Payer::Operator),
            Ok(vec![])
        );
        assert_eq!(
            pool.admit_hashed(tx(3, 1, false), true, None, 0, Payer::Operator),
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
            pool.admit_hashed(t.clone(), true, None, 0, Payer::Operator)
                .unwrap();
        }
        pool.select(
            &BlockLimits::DEFAULT,
            1 << 20,
            |_| None,
            |_, p| Some(p),
            |_, _| None,
        )
    }

    #[test]
    fn selection_puts_leading_cancels_first_and_keeps_nonce_order() {
        let chosen = mixed_selection(&[]);
        let s = |seed: u64| PrivateKey::from_seed(seed).public_key().as_ref()[0] as u64;
        // Signer 2's cancel jumps ahead; then the payers (each operator key its own) take
        // turns in the order they first arrived, so signer 1's cancel, its second turn, stays
        // behind its own order.
        assert_eq!(
            nonces(&chosen),
            vec![(s(2), 1), (s(1), 1), (s(2), 2), (s(3), 1), (s(1), 2)]
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

    /// The attack: cancels go first in every block and a cancel of nothing costs nothing, so
    /// eight throwaway accounts (one funded key each) keep 256 cancels each in the pool. Had
    /// the leading cancels no bound, they would fill every block and an honest trader, arriving
    /// after the flood, would place no order and cancel nothing while it lasts.
    #[test]
    fn a_cancel_flood_takes_an_eighth_of_a_block_and_honest_traders_keep_their_place() {
        let account = |n: u32| Payer::Account(AccountId::new(n.into()));
        let mut pool = Mempool::new(MempoolLimits::DEFAULT);
        for flooder in 0..8u64 {
            for nonce in 1..=256 {
                pool.admit_hashed(
                    tx(100 + flooder, nonce, true),
                    true,
                    None,
                    0,
                    account(100 + flooder as u32),
                )
                .unwrap();
            }
        }
        // An honest market maker cancels (and then quotes); 150 honest traders place an order
        // each.
        pool.admit_hashed(tx(1, 1, true), true, None, 0, account(1))
            .unwrap();
        pool.admit_hashed(tx(1, 2, false), true, None, 0, account(1))
            .unwrap();
        for trader in 1_000..1_150 {
            pool.admit_hashed(tx(trader, 1, false), true, None, 0, account(trader as u32))
                .unwrap();
        }
        let limits = BlockLimits {
            txs_max: 256,
            prices_max: 1,
            observations_max: 1,
        };
        // The market maker has an order open; the flooders have none.
        let open = |a: AccountId, _: &TxBody| {
            (a == AccountId::new(1)).then_some(CancelTarget::Orders(None))
        };
        let chosen = pool.select(&limits, 1 << 20, |_| None, |_, p| Some(p), open);
        assert!(cancels_first(&chosen));
        let flooders: BTreeSet<PublicKey> = (100..108)
            .map(|seed| PrivateKey::from_seed(seed).public_key())
            .collect();
        let flood = |txs: &[SignedTx]| {
            txs.iter()
                .filter(|t| flooders.contains(&t.tx.signer))
                .count()
        };
        // First the market maker's cancel (it can cancel something), then the flood's, an
        // eighth of the block (32), then every honest transaction (151), then the flood again
        // in the room left (72), after its first 32.
        let market_maker = PrivateKey::from_seed(1).public_key();
        assert_eq!(chosen[0].tx.signer, market_maker);
        assert_eq!(flood(&chosen[1..33]), 32);
        assert_eq!(flood(&chosen[33..105]), 72);
        assert_eq!(chosen[105].tx.signer, market_maker);
        assert_eq!(flood(&chosen[105..]), 0);
        assert_eq!(
            chosen.len(),
            256,
            "every honest transaction and the flood in what is left"
        );
        // Without the room: 400 traders' orders. The flood has its eighth and no more.
        for trader in 1_150..1_400 {
            pool.admit_hashed(tx(trader, 1, false), true, None, 0, account(trader as u32))
                .unwrap();
        }
        let chosen = pool.select(&limits, 1 << 20, |_| None, |_, p| Some(p), open);
        assert!(cancels_first(&chosen));
        assert_eq!(flood(&chosen), 32);
        assert_eq!(chosen.len(), 256);
        // Flooders with orders open: each account's first cancel-all would cancel them, its
        // repeats nothing more. Their first cancels share the first round with the market
        // maker's; the repeats have the eighth.
        let chosen = pool.select(
            &limits,
            1 << 20,
            |_| None,
            |_, p| Some(p),
            |_, _| Some(CancelTarget::Orders(None)),
        );
        assert!(cancels_first(&chosen));
        assert_eq!(chosen[8].tx.signer, market_maker, "in the first round");
        assert_eq!(flood(&chosen), 8 + 32);
        // Flooders whose every cancel names another open order of theirs (an account may
        // hold 500): they share half the block with the market maker, and the other half
        // stays the honest traders'.
        let named = std::cell::Cell::new(0u64);
        let chosen = pool.select(
            &limits,
            1 << 20,
            |_| None,
            |_, p| Some(p),
            |_, _| {
                named.set(named.get() + 1);
                let order = OrderId::new(named.get());
                Some(CancelTarget::Order(InstrumentId::new(1), order))
            },
        );
        assert!(cancels_first(&chosen));
        assert_eq!(flood(&chosen), 127);
        assert_eq!(chosen[8].tx.signer, market_maker, "in the first round");
        assert!(chosen[128..].iter().all(|t| !t.tx.body.is_cancel()));
        // With no flood, the honest cancels are not held to half a block: 300 cancels of one
        // market maker's two keys fill a block of 256 that has no orders waiting.
        let mut pool = Mempool::new(MempoolLimits::DEFAULT);
        for (seed, nonce) in (1..=150).flat_map(|n| [(1, n), (3, n)]) {
            pool.admit_hashed(tx(seed, nonce, true), true, None, 0, account(1))
                .unwrap();
        }
        let chosen = pool.select(&limits, 1 << 20, |_| None, |_, p| Some(p), |_, _| None);
        assert_eq!(chosen.len(), 256);
        assert!(cancels_first(&chosen));
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
                // Signers 1 to 4 are two accounts' keys (two each); 5 is an operator key.
                let payer = match signer {
                    5 => Payer::Operator,
                    s => Payer::Account(AccountId::new(s % 2 + 1)),
                };
                let _ = pool.admit_hashed(tx(signer, *nonce, cancel), true, None, 0, payer);
            }
            // What the cancels would cancel: nothing; their account's orders (so each account's
            // first cancel is a cancel of something); a different order each; a different
            // order every other one, nothing in between.
            let named = std::cell::Cell::new(0u64);
            let targets: [&Target<'_>; 4] = [
                &|_, _| None,
                &|_, _| Some(CancelTarget::Orders(None)),
                &|_, _| {
                    named.set(named.get() + 1);
                    Some(CancelTarget::Order(InstrumentId::new(1), OrderId::new(named.get())))
                },
                &|_, _| {
                    named.set(named.get() + 1);
                    let order = OrderId::new(named.get());
                    (named.get() % 2 == 0).then_some(CancelTarget::Order(InstrumentId::new(1), order))
                },
            ];
            for (txs_max, target) in [1usize, 2, 7, 64].into_iter().flat_map(|m| targets.map(|t| (m, t))) {
                let limits = BlockLimits { txs_max, prices_max: 1, observations_max: 1 };
                for bytes_max in [200usize, 1 << 20] {
                    let chosen =
                        pool.select(&limits, bytes_max, |_| None, |_, p| Some(p), target);
                    proptest::prop_assert!(cancels_first(&chosen));
                    proptest::prop_assert!(chosen.len() <= txs_max);
                    // Each signer's transactions are its first nonces, in order, none twice.
                    let mut last = std::collections::BTreeMap::new();
                    for t in &chosen {
                        let seen = last.entry(t.tx.signer.clone()).or_insert(0u64);
                        proptest::prop_assert_eq!(t.tx.nonce.get(), *seen + 1);
                        *seen += 1;
                    }
                    // A block with room holds everything.
                    if bytes_max > 200 && pool.len() <= txs_max {
                        proptest::prop_assert_eq!(chosen.len(), pool.len());
                    }
                }
            }
        }
    }

    /// What a cancel would cancel, as `Mempool::select` asks it.
    type Target<'a> = dyn Fn(AccountId, &TxBody) -> Option<CancelTarget> + 'a;

    fn any_cancel() -> impl proptest::strategy::Strategy<Value = bool> {
        proptest::prelude::any::<bool>()
    }

    #[test]
    fn selection_respects_limits_and_skips_executed_nonces() {
        let mut pool = Mempool::new(MempoolLimits::DEFAULT);
        for n in 1..=5 {
            pool.admit_hashed(tx(1, n, false), true, None, 0, Payer::Operator)
                .unwrap();
        }
        let limits = BlockLimits {
            txs_max: 2,
            prices_max: 1,
            observations_max: 1,
        };
        let chosen = pool.select(&limits, 1 << 20, |_| Some(2), |_, p| Some(p), |_, _| None);
        assert_eq!(
            chosen.iter().map(|t| t.tx.nonce.get()).collect::<Vec<_>>(),
            vec![3, 4]
        );
        // Nonces 1 and 2 were executed elsewhere (the state says 2): executing 3 and 4 drops
        // them as superseded, but not 3 and 4 themselves.
        let digests: Vec<TxDigest> = chosen.iter().map(tx_digest).collect();
        let superseded = pool.prune_executed(&chosen, &digests);
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
        pool.admit_hashed(tx(1, 2, false), true, None, 0, Payer::Operator)
            .unwrap();
        pool.admit_hashed(tx(4, 1, false), true, None, 0, Payer::Operator)
            .unwrap();
        pool.admit_hashed(tx(1, 1, false), true, None, 0, Payer::Operator)
            .unwrap();
        let chosen = pool.select(
            &BlockLimits::DEFAULT,
            1 << 20,
            |_| None,
            |_, p| Some(p),
            |_, _| None,
        );
        let order: Vec<u64> = chosen.iter().map(|t| t.tx.nonce.get()).collect();
        assert_eq!(
            order,
            vec![1, 2, 1],
            "signer 1's nonce 1 is pulled ahead of its nonce 2"
        );
    }

    /// A pool whose transactions expire 5 blocks after admission.
    fn aging_pool() -> Mempool {
        Mempool::new(MempoolLimits {
            age_blocks_max: 5,
            ..MempoolLimits::DEFAULT
        })
    }

    #[test]
    fn old_transactions_are_evicted() {
        let mut pool = aging_pool();
        pool.admit_hashed(tx(1, 1, false), true, None, 0, Payer::Operator)
            .unwrap();
        pool.admit_hashed(tx(2, 1, false), true, None, 4, Payer::Operator)
            .unwrap();
        assert_eq!(pool.evict_old(6), vec![tx_digest(&tx(1, 1, false))]);
        assert_eq!(pool.len(), 1);
        pool.check();
    }

    /// The newest state's height steps back when the node's speculative head moves to another
    /// fork: a transaction admitted then counts its age from the highest height admitted at,
    /// so that expiry stays a walk from the oldest arrival (an arrival expiring before an
    /// older one would be missed by it).
    #[test]
    fn an_arrival_after_the_head_stepped_back_expires_with_the_one_before_it() {
        let mut pool = aging_pool();
        pool.admit_hashed(tx(1, 1, false), true, None, 10, Payer::Operator)
            .unwrap();
        pool.admit_hashed(tx(2, 1, false), true, None, 8, Payer::Operator)
            .unwrap();
        pool.check();
        assert!(pool.evict_old(15).is_empty(), "neither is older than 10");
        assert_eq!(
            pool.evict_old(16),
            vec![tx_digest(&tx(1, 1, false)), tx_digest(&tx(2, 1, false))]
        );
        assert!(pool.is_empty());
        pool.check();
    }

    /// The attack behind the expiry walk: a trader queues his accounts' transactions first,
    /// then takes the accounts' collateral away (or revokes the keys), so that no proposal
    /// can charge them (`payer_now` refuses) and they sit in every pool for `age_blocks_max`
    /// blocks. Honest accounts arriving after them are still selected, his never, and each
    /// block's expiry walk reaches his only when they are due.
    #[test]
    fn transactions_no_proposal_can_charge_wait_out_their_age_and_hold_no_one_back() {
        let mut pool = aging_pool();
        // Keys 1 to 3: the attacker's three accounts, 20 each; keys 10 and 11: honest.
        for nonce in 1..=20 {
            for key in 1..=3u64 {
                pool.admit_hashed(tx(key, nonce, false), true, None, 1, account(key as u32))
                    .unwrap();
            }
        }
        for key in [10u64, 11] {
            pool.admit_hashed(tx(key, 1, false), true, None, 2, account(key as u32))
                .unwrap();
        }
        let attacker = |signer: &PublicKey| {
            (1..=3).any(|key| *signer == PrivateKey::from_seed(key).public_key())
        };
        for height in 2..=6 {
            let block = pool.select(
                &BlockLimits::DEFAULT,
                1 << 20,
                |_| None,
                |signer, payer| (!attacker(signer)).then_some(payer),
                |_, _| None,
            );
            if height == 2 {
                assert_eq!(block.len(), 2, "both honest transactions, behind 60 of his");
            }
            assert!(block.iter().all(|t| !attacker(&t.tx.signer)));
            let digests: Vec<TxDigest> = block.iter().map(tx_digest).collect();
            pool.prune_executed(&block, &digests);
            assert!(
                pool.evict_old(height).is_empty(),
                "none due before height 7"
            );
            pool.check();
        }
        assert_eq!(pool.len(), 60, "his wait in the pool");
        assert_eq!(pool.evict_old(7).len(), 60, "and are gone when due");
        assert!(pool.is_empty());
        pool.check();
    }

    fn account(n: u32) -> Payer {
        Payer::Account(AccountId::new(n.into()))
    }

    /// One account's thousand keys are one account: they share its pool places.
    #[test]
    fn an_account_s_keys_share_one_limit() {
        let mut pool = Mempool::new(MempoolLimits {
            per_account_max: 10,
            ..MempoolLimits::DEFAULT
        });
        for key in 0..10 {
            pool.admit_hashed(tx(100 + key, 1, false), true, None, 0, account(1))
                .unwrap();
        }
        assert_eq!(
            pool.admit_hashed(tx(200, 1, false), true, None, 0, account(1)),
            Err(AdmitError::AccountQueueFull(10))
        );
        // Another account is unaffected.
        pool.admit_hashed(tx(201, 1, false), true, None, 0, account(2))
            .unwrap();
        pool.check();
    }

    /// A flooder that fills the pool holds only until someone else needs room: the newest
    /// transaction of the account holding the most is evicted for an account holding fewer,
    /// never for itself, never leaving a nonce gap, and never an operator's.
    #[test]
    fn a_full_pool_evicts_the_largest_account_s_newest_for_a_smaller_one() {
        let mut pool = Mempool::new(MempoolLimits {
            txs_max: 40,
            ..MempoolLimits::DEFAULT
        });
        pool.admit_hashed(tx(1, 1, false), true, None, 0, Payer::Operator)
            .unwrap();
        for key in 0..13u64 {
            for nonce in 1..=3 {
                pool.admit_hashed(tx(100 + key, nonce, false), true, None, 0, account(7))
                    .unwrap();
            }
        }
        assert_eq!(pool.len(), 40);
        // The flooder cannot make room for itself.
        assert_eq!(
            pool.admit_hashed(tx(300, 1, false), true, None, 0, account(7)),
            Err(AdmitError::PoolFull)
        );
        // An honest trader can, twice.
        for nonce in 1..=2 {
            let evicted = pool
                .admit_hashed(tx(400, nonce, false), true, None, 0, account(9))
                .unwrap();
            assert_eq!(evicted.len(), 1);
        }
        assert_eq!(pool.evicted(), 2);
        assert_eq!(pool.account_pending(AccountId::new(9u32.into())), 2);
        assert_eq!(pool.account_pending(AccountId::new(7u32.into())), 37);
        // No signer of the flooder lost anything but its highest nonces.
        for key in 0..13u64 {
            let signer = PrivateKey::from_seed(100 + key).public_key();
            let held: Vec<u64> = pool.by_signer[&SignerKey::of(&signer)]
                .keys()
                .copied()
                .collect();
            assert!(held == vec![1, 2, 3] || held == vec![1, 2], "{held:?}");
        }
        assert_eq!(
            pool.nonce_max(&PrivateKey::from_seed(1).public_key()),
            Some(1)
        );
        pool.check();
    }

    /// The account eviction takes from stays the largest, and its bookkeeping bounded, while
    /// accounts come and go: a hundred accounts leave, one grows, and a newcomer to the full
    /// pool evicts that one's newest transaction.
    #[test]
    fn eviction_finds_the_largest_account_after_accounts_come_and_go() {
        let mut pool = Mempool::new(MempoolLimits {
            txs_max: 100,
            ..MempoolLimits::DEFAULT
        });
        for n in 0..100u64 {
            pool.admit_hashed(tx(100 + n, 1, false), true, None, 0, account(n as u32))
                .unwrap();
        }
        pool.check();
        for n in 1..100u64 {
            pool.prune_signer(&PrivateKey::from_seed(100 + n).public_key(), 1);
            pool.check();
        }
        for nonce in 2..=6 {
            pool.admit_hashed(tx(100, nonce, false), true, None, 0, account(0))
                .unwrap();
        }
        for n in 0..94u64 {
            pool.admit_hashed(
                tx(300 + n, 1, false),
                true,
                None,
                0,
                account(300 + n as u32),
            )
            .unwrap();
        }
        assert_eq!(pool.len(), 100);
        pool.check();
        let evicted = pool
            .admit_hashed(tx(500, 1, false), true, None, 0, account(500))
            .unwrap();
        assert_eq!(evicted, vec![tx_digest(&tx(100, 6, false))]);
        assert_eq!(pool.account_pending(AccountId::new(0u32.into())), 5);
        pool.check();
    }

    /// A block this node proposes holds at most `per_account_block_max` of one account, so a
    /// flooder arriving first does not crowd later traders out of the block.
    #[test]
    fn a_block_holds_at_most_an_account_s_share() {
        let mut pool = Mempool::new(MempoolLimits {
            per_account_block_max: 5,
            ..MempoolLimits::DEFAULT
        });
        for key in 0..4u64 {
            for nonce in 1..=5 {
                let cancel = nonce == 1;
                pool.admit_hashed(tx(100 + key, nonce, cancel), true, None, 0, account(7))
                    .unwrap();
            }
        }
        for key in 0..3u64 {
            pool.admit_hashed(
                tx(200 + key, 1, false),
                true,
                None,
                0,
                account(8 + key as u32),
            )
            .unwrap();
        }
        let block = pool.select(
            &BlockLimits::DEFAULT,
            1 << 20,
            |_| None,
            |_, p| Some(p),
            |_, _| None,
        );
        let flooder = block
            .iter()
            .filter(|t| (100..104).any(|k| t.tx.signer == PrivateKey::from_seed(k).public_key()))
            .count();
        assert_eq!(flooder, 5);
        assert_eq!(block.len(), 8, "every other account's transaction is in");
        assert!(cancels_first(&block));
        // Each signer's nonces are in order and start at its first.
        let mut next: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for t in &block {
            let expected = next.entry(t.tx.signer.clone()).or_insert(1);
            assert_eq!(t.tx.nonce.get(), *expected);
            *expected += 1;
        }
    }

    /// A trader with many accounts, each within its share, arriving first: accounts take turns
    /// in a block, so ten accounts with one transaction each are all in the next block,
    /// however many of the spammer's arrived before them. (By arrival alone, the spammer's
    /// twenty accounts filled the block and the ten waited, block after block, for as long
    /// as the spammer kept its accounts' queues full.)
    #[test]
    fn many_accounts_arriving_first_do_not_crowd_one_transaction_accounts_out() {
        let mut pool = Mempool::new(MempoolLimits::DEFAULT);
        for spammer in 0..20u64 {
            for nonce in 1..=8 {
                pool.admit_hashed(
                    tx(300 + spammer, nonce, false),
                    true,
                    None,
                    0,
                    account(100 + spammer as u32),
                )
                .unwrap();
            }
        }
        for honest in 0..10u64 {
            pool.admit_hashed(
                tx(400 + honest, 1, false),
                true,
                None,
                0,
                account(200 + honest as u32),
            )
            .unwrap();
        }
        let limits = BlockLimits {
            txs_max: 40,
            ..BlockLimits::DEFAULT
        };
        let block = pool.select(&limits, 1 << 20, |_| None, |_, p| Some(p), |_, _| None);
        assert_eq!(block.len(), 40);
        let honest = block
            .iter()
            .filter(|t| (400..410).any(|k| t.tx.signer == PrivateKey::from_seed(k).public_key()))
            .count();
        assert_eq!(honest, 10, "every one-transaction account is in the block");
        // Each spammer account got its turns: two each (the first 20 turns, then 10 more).
        let mut next: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for t in &block {
            let expected = next.entry(t.tx.signer.clone()).or_insert(1);
            assert_eq!(t.tx.nonce.get(), *expected, "a signer's nonces in order");
            *expected += 1;
        }
    }

    proptest::proptest! {
        /// Whatever mix of accounts, admissions, evictions, prunes and expiries, the pool's
        /// bookkeeping holds and no account exceeds its bound.
        #[test]
        fn bookkeeping_holds_under_any_mix(
            ops in proptest::collection::vec((0u64..24, 1u64..6, 0u8..12), 1..300)
        ) {
            let mut pool = Mempool::new(MempoolLimits {
                txs_max: 30,
                per_signer_max: 4,
                per_account_max: 12,
                per_account_block_max: 3,
                age_blocks_max: 5,
                ..MempoolLimits::DEFAULT
            });
            for (i, (key, nonce, op)) in ops.into_iter().enumerate() {
                // A key belongs to one account (or is an operator's); ops 10 and 11 admit it
                // as the next one's, as if it changed hands after its earlier admissions.
                let owner = if op >= 10 { key + 1 } else { key };
                let payer = match owner % 4 {
                    0 => Payer::Operator,
                    n => account(n as u32),
                };
                match op {
                    0 => {
                        pool.prune_signer(&PrivateKey::from_seed(key).public_key(), nonce);
                    }
                    1 => {
                        // Heights advance one every four operations.
                        pool.evict_old(i as u64 / 4);
                        let cutoff = (i as u64 / 4).saturating_sub(pool.limits.age_blocks_max);
                        proptest::prop_assert!(
                            pool.arrival.values().all(|a| a.admitted_at >= cutoff),
                            "nothing due is left"
                        );
                    }
                    _ => {
                        let _ = pool.admit_hashed(tx(key, nonce, op == 2), true, None, i as u64 / 4, payer);
                    }
                }
                pool.check();
                let block = pool.select(&BlockLimits::DEFAULT, 1 << 20, |_| None, |_, p| Some(p), |_, _| None);
                proptest::prop_assert!(cancels_first(&block));
            }
        }
    }

    /// A block is chargeable only if every signer pays from an account with collateral (or is
    /// an operator key), at most `BLOCK_TXS_PER_ACCOUNT_MAX` to one account.
    #[test]
    fn a_block_of_keys_without_accounts_or_too_much_of_one_account_is_refused() {
        use bulwark_types::Money;
        let (state, trader) = crate::test_support::exchange_with_funded_trader(77);
        let bridge = crate::test_support::bridge();
        let withdraw = |key: &PrivateKey, nonce: u64| {
            TxBody::Withdraw {
                amount: Money::from_usdc(1),
            }
            .signed(key, nonce)
        };
        let operator = TxBody::FundInsurance {
            amount: Money::from_usdc(1),
        }
        .signed(&bridge, 2);
        assert_eq!(
            block_payers_valid(&state, &[operator.clone(), withdraw(&trader, 1)]),
            Ok(())
        );
        let stranger = PrivateKey::from_seed(78);
        let refused = block_payers_valid(&state, &[withdraw(&trader, 1), withdraw(&stranger, 1)]);
        assert!(refused.unwrap_err().contains("no account"));
        let full: Vec<SignedTx> = (1..=Mempool::BLOCK_TXS_PER_ACCOUNT_MAX as u64)
            .map(|n| withdraw(&trader, n))
            .collect();
        assert_eq!(block_payers_valid(&state, &full), Ok(()));
        let mut over = full;
        over.push(withdraw(&trader, 5_000));
        assert!(
            block_payers_valid(&state, &over)
                .unwrap_err()
                .contains("more than 1024")
        );
        // The bridge (an operator key) is held to the same share.
        let stuffed: Vec<SignedTx> = (1..=Mempool::BLOCK_TXS_PER_ACCOUNT_MAX as u64 + 1)
            .map(|n| {
                TxBody::FundInsurance {
                    amount: Money::from_usdc(1),
                }
                .signed(&bridge, n)
            })
            .collect();
        assert!(block_payers_valid(&state, &stuffed[1..]).is_ok());
        assert!(
            block_payers_valid(&state, &stuffed)
                .unwrap_err()
                .contains("operator key")
        );
    }
}
