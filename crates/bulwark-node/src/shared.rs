//! State one validator's tasks share: the chain, the mempool, verified signatures, receipts
//! of executed transactions, status for the API, and the published views readers use.
//!
//! Lock order, to rule out deadlock: `admitting`, then `chain`, then `mempool`, then
//! `signatures`, then `receipts`, then `status`, then `outbox`, then `history`, then
//! `snapshot`, then `observations`, then `receipt_queries`, then `published`. No lock is held
//! across an `.await` (on the deterministic runtime that would freeze the whole simulation).
//! `staged` and `forgers` are leaves, held only to push, take or look up.
//!
//! Readers (the API) never take `chain`, which propose, verify and the executor need: they
//! take `published` for as long as it takes to clone an `Arc`, and read an immutable state the
//! chain shares with them. The executor publishes the finalized state after each finalized
//! block has been applied whole (a reader never sees half a block), and propose and verify
//! publish the newest speculative state after each block they execute.

use crate::chain::Chain;
use crate::mempool::{AdmitError, Mempool, Payer, TxDigest, tx_digest};
use crate::observer::ObservationPool;
use crate::receipt_archive::ReceiptQuery;
use crate::sync::ServedSnapshot;
use crate::verdicts::Verdicts;
use bulwark_exchange::{BlockOutcome, Event, Exchange, StateDigest};
use bulwark_types::{KeyCache, PublicKey, RejectReason, SignedTx, tx::verify_batch};
use commonware_cryptography::sha256::Digest;
use rand_core::CryptoRng;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// What became of a transaction this node heard of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// In this node's mempool.
    Pending,
    /// Left the mempool without executing, and never will.
    Dropped { reason: DropReason },
    /// Executed in a finalized block.
    Finalized {
        height: u64,
        index: u32,
        rejection: Option<RejectReason>,
        events: TxEvents,
    },
}

/// A finalized transaction's events: its range of one array holding the events of every
/// transaction of its block, which the block's receipts share. (Each held a copy of its own
/// until 2026-12-06: an allocation per transaction per validator, and as many to free when
/// forgotten.) Only the transactions' events are held, not the block's own (prices,
/// funding, settlement), so a quiet chain's receipts, one transaction a block, hold what
/// they held before.
#[derive(Clone)]
pub struct TxEvents {
    block: Arc<[Event]>,
    start: u32,
    end: u32,
}

impl TxEvents {
    /// Every transaction's events of the block whose outcome is `outcome`, in block order,
    /// sharing one allocation.
    pub fn of_block(outcome: &BlockOutcome) -> Vec<TxEvents> {
        let mut events = Vec::new();
        let mut ends = Vec::with_capacity(outcome.txs.len());
        for index in 0..outcome.txs.len() {
            events.extend_from_slice(outcome.tx_events(index));
            ends.push(events.len() as u32);
        }
        let block: Arc<[Event]> = events.into();
        let starts = std::iter::once(0).chain(ends.iter().copied());
        starts
            .zip(ends.iter().copied())
            .map(|(start, end)| TxEvents {
                block: Arc::clone(&block),
                start,
                end,
            })
            .collect()
    }
}

impl std::ops::Deref for TxEvents {
    type Target = [Event];
    fn deref(&self) -> &[Event] {
        &self.block[self.start as usize..self.end as usize]
    }
}

impl PartialEq for TxEvents {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for TxEvents {}

impl std::fmt::Debug for TxEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Why a pending transaction will never execute.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A higher nonce of its signer executed first (it was sent to another validator, or
    /// reordered), so this nonce can no longer be used.
    NonceSuperseded,
    /// It waited longer than the mempool keeps transactions.
    Expired,
    /// The pool was full and its account held the most pending: it made room for another.
    Evicted,
}

/// Who pays for `signer`'s transactions in `state`: an operator key, or the account it owns or
/// trades for if that account has collateral (cash, a position or an open order).
pub fn payer_of(
    state: &bulwark_exchange::Exchange,
    signer: &PublicKey,
) -> Result<Payer, AdmitError> {
    if state.is_operator(signer) {
        return Ok(Payer::Operator);
    }
    let (id, role) = state.key_binding(signer).ok_or(AdmitError::UnknownSigner)?;
    if role == bulwark_exchange::KeyRole::Revoked {
        return Err(AdmitError::UnknownSigner);
    }
    let account = state.account(id).ok_or(AdmitError::UnknownSigner)?;
    let collateral = account.cash > bulwark_types::Money::ZERO
        || !account.exposures.is_empty()
        || !account.client_orders.is_empty();
    if collateral {
        Ok(Payer::Account(id))
    } else {
        Err(AdmitError::UnknownSigner)
    }
}

impl DropReason {
    pub const fn code(self) -> &'static str {
        match self {
            DropReason::NonceSuperseded => "nonce_superseded",
            DropReason::Expired => "expired",
            DropReason::Evicted => "evicted",
        }
    }
}

/// Recent transaction statuses by digest. Bounded: the oldest are forgotten first. Looked up
/// by digest (a hash map: digests are uniformly distributed already); iterated only unordered.
#[derive(Debug)]
pub struct Receipts {
    statuses: HashMap<TxDigest, TxStatus>,
    order: VecDeque<TxDigest>,
    capacity: usize,
}

impl Receipts {
    pub fn new(capacity: usize) -> Self {
        Self {
            statuses: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn get(&self, digest: &TxDigest) -> Option<&TxStatus> {
        self.statuses.get(digest)
    }

    /// Every status held, in no particular order (a hash map's).
    pub fn iter(&self) -> impl Iterator<Item = (&TxDigest, &TxStatus)> {
        self.statuses.iter()
    }

    pub fn record(&mut self, digest: TxDigest, status: TxStatus) {
        if self.statuses.insert(digest, status).is_none() {
            self.order.push_back(digest);
            if self.order.len() > self.capacity {
                let oldest = self.order.pop_front().expect("non-empty");
                self.statuses.remove(&oldest);
            }
        }
    }

    /// Marks a transaction that is still pending as dropped (a finalized one stays finalized).
    pub fn drop_pending(&mut self, digest: &TxDigest, reason: DropReason) {
        if let Some(status @ TxStatus::Pending) = self.statuses.get_mut(digest) {
            *status = TxStatus::Dropped { reason };
        }
    }

    /// Records the outcome of every transaction of a finalized block, whose [`tx_digest`]s
    /// are `digests` (in block order).
    pub fn record_block(&mut self, height: u64, digests: &[TxDigest], outcome: &BlockOutcome) {
        assert_eq!(
            digests.len(),
            outcome.txs.len(),
            "one outcome per transaction"
        );
        let events = TxEvents::of_block(outcome);
        for ((index, digest), events) in digests.iter().enumerate().zip(events) {
            let status = TxStatus::Finalized {
                height,
                index: index as u32,
                rejection: outcome.txs[index].rejection,
                events,
            };
            self.record(*digest, status);
        }
    }
}

/// What the API reports about this validator.
#[derive(Clone, Debug, Default)]
pub struct NodeStatus {
    pub finalized_height: u64,
    /// Hex of the last finalized block's digest.
    pub finalized_block: String,
    /// Hex of the exchange state digest after that block.
    pub state_digest: String,
    /// View of the last finalized block.
    pub view: u64,
    /// Hex of the last finalized block's proposer.
    pub leader: String,
    /// Highest finalized height consensus has reported (may run ahead of execution).
    pub tip_height: u64,
    /// Highest view consensus has certified (notarized, finalized or skipped).
    pub consensus_view: u64,
    /// Views skipped by a nullification (a leader that was down or too slow).
    pub views_skipped: u64,
    /// Evidence of Byzantine behaviour (conflicting votes) seen from peers.
    pub faults_observed: u64,
    /// Gossiped transactions dropped unread because their peer was over its budget.
    pub gossip_dropped: u64,
    /// Gossip messages (batches) dropped unread because their peer had gossiped a forged
    /// signature before (`Shared::is_forger`).
    pub gossip_muted: u64,
    /// Proposals this node refused to vote for (a proposer duty broken, a bad signature, a
    /// block that does not apply), per proposer (hex key): how many, and the last reason. At
    /// most [`REFUSED_LEADERS_MAX`] proposers are named; further ones are counted only.
    pub proposals_refused: u64,
    pub refused: std::collections::BTreeMap<String, (u64, String)>,
    pub mempool_txs: usize,
    pub transactions_executed: u64,
    pub trades_executed: u64,
    /// Finalized blocks whose speculative state this node kept (not executed again).
    pub blocks_kept: u64,
    /// Finalized blocks this node executed at finalization (never speculated here, or their
    /// speculative state was forgotten).
    pub blocks_executed: u64,
    /// Finalized blocks this node finalized on consensus's certificate, before marshal
    /// delivered them (each is also counted as kept or executed).
    pub blocks_finalized_on_certificate: u64,
    /// Why the node halted, if it did.
    pub halted: Option<String>,
    /// A finalized block this node's own archive should hold and does not (its disk lost
    /// it): the node cannot execute past it and waits for a state sync from its peers,
    /// which the snapshot actor starts at once. Cleared when a synced state is installed.
    pub archive_gap: Option<u64>,
    /// State syncs started while running (execution stalled far behind consensus).
    pub runtime_sync_attempts: u64,
    /// Verified snapshots installed while running, and the height of the last one.
    pub runtime_syncs: u64,
    pub runtime_sync_height: Option<u64>,
    /// Where consensus started in this process (set once, at start).
    pub consensus_start: Option<ConsensusStart>,
    /// The liquidation engine's work in the blocks this process executed.
    pub liquidations: LiquidationTally,
    /// Perpetual funding paid in the blocks this process executed.
    pub funding: FundingTally,
}

/// Where a node's consensus started when its process started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusStart {
    /// The node found no consensus journal (a new validator, or one whose disk was lost): it
    /// may have voted before, so it starts from a finalization no view it voted in comes after
    /// (`engine::JOURNAL_LOST_WAIT`).
    pub journal_lost: bool,
    /// This node's clock at start, Unix milliseconds.
    pub started_ms: u64,
    /// The finalization simplex started from; `None`: its own journal, or genesis.
    pub floor: Option<ConsensusFloor>,
}

/// A finalization a node's consensus started from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusFloor {
    pub view: u64,
    /// The finalized block's height.
    pub height: u64,
    /// The finalized block's time, Unix milliseconds, where the node saw the block.
    pub block_time_ms: Option<u64>,
    pub source: FloorSource,
}

/// Where a node learnt the finalization its consensus started from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FloorSource {
    /// The finalization of the block after the snapshot its state came from.
    Snapshot,
    /// The newest finalized block its peers showed, checked (a quorum's signatures naming it).
    PeersNewest,
}

impl FloorSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FloorSource::Snapshot => "snapshot",
            FloorSource::PeersNewest => "peers_newest_finalized",
        }
    }
}

/// Perpetual funding, counted from the `FundingPaid` events of finalized blocks since this
/// process started (a restart counts afresh).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FundingTally {
    pub payments: u64,
    /// Sum over the payments of what one long contract paid (negative: received),
    /// micro-USDC. An account holding `q` contracts through every payment paid `q` times it.
    pub per_contract_micros: i128,
}

impl FundingTally {
    /// Counts the funding events of one block's outcome.
    pub fn count(&mut self, outcome: &bulwark_exchange::BlockOutcome) {
        for event in &outcome.events {
            if let bulwark_exchange::Event::FundingPaid { per_contract, .. } = event {
                self.payments += 1;
                self.per_contract_micros += per_contract.micros();
            }
        }
    }
}

/// What the liquidation engine did, counted from the events of finalized blocks since this
/// process started (a restart counts afresh).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LiquidationTally {
    pub margin_calls: u64,
    pub steps: u64,
    pub backstop_takeovers: u64,
    /// Positions closed by auto-deleveraging.
    pub deleveraged: u64,
    /// Contracts the liquidation steps sold or bought through the book, passed to the
    /// backstop, and closed by auto-deleveraging: how a liquidation's volume was absorbed.
    pub stepped_contracts: u64,
    pub backstop_contracts: u64,
    pub deleveraged_contracts: u64,
    /// Negative balances made whole.
    pub deficits_covered: u64,
    /// Micro-USDC of those deficits paid by the insurance fund, by deleveraged
    /// counterparties, and left uncovered (carried by the fund).
    pub from_fund_micros: i128,
    pub from_deleveraging_micros: i128,
    pub uncovered_micros: i128,
}

impl LiquidationTally {
    /// Counts the liquidation events of one block's outcome.
    pub fn count(&mut self, outcome: &bulwark_exchange::BlockOutcome) {
        use bulwark_exchange::Event;
        for event in &outcome.events {
            match event {
                Event::MarginCall { .. } => self.margin_calls += 1,
                Event::LiquidationStep { filled, .. } => {
                    self.steps += 1;
                    self.stepped_contracts += filled.contracts().unsigned_abs();
                }
                Event::BackstopTakeover { position, .. } => {
                    self.backstop_takeovers += 1;
                    self.backstop_contracts += position.unsigned_abs();
                }
                Event::Deleveraged { position, .. } => {
                    self.deleveraged += 1;
                    self.deleveraged_contracts += position.unsigned_abs();
                }
                Event::DeficitCovered {
                    from_fund,
                    from_deleveraging,
                    uncovered,
                    ..
                } => {
                    self.deficits_covered += 1;
                    self.from_fund_micros += from_fund.micros();
                    self.from_deleveraging_micros += from_deleveraging.micros();
                    self.uncovered_micros += uncovered.micros();
                }
                _ => {}
            }
        }
    }
}

/// Most proposers [`NodeStatus::refused`] names.
pub const REFUSED_LEADERS_MAX: usize = 64;

/// One finalized block as this node executed it: what replicas compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedRecord {
    pub height: u64,
    /// Digest of the block.
    pub block: Digest,
    /// Exchange state digest after executing it.
    pub state_after: StateDigest,
    /// SHA-256 of the encoded `BlockOutcome`: every transaction's verdict and events.
    pub outcome: Digest,
    /// The hash of the whole state before the block, where the block commits to one: this
    /// node computed it from its own finalized state and found it equal (or halted).
    pub state_hash: Option<crate::commitment::StateHash>,
    pub txs: u32,
}

/// The finalized state as readers see it: immutable, swapped whole after each block.
#[derive(Clone, Debug)]
pub struct FinalizedView {
    pub height: u64,
    /// Digest of the last finalized block.
    pub block: Digest,
    /// The exchange state after it.
    pub state: Arc<Exchange>,
}

impl FinalizedView {
    fn of(chain: &Chain) -> Self {
        Self {
            height: chain.finalized_height(),
            block: chain.finalized_digest(),
            state: chain.finalized_shared(),
        }
    }
}

/// The states published to readers.
#[derive(Debug)]
pub struct Published {
    finalized: Arc<FinalizedView>,
    /// The newest state this node holds (speculative, or the finalized one).
    newest: Arc<Exchange>,
}

/// How many finalized blocks [`Shared::history`] remembers.
pub const HISTORY_MAX: usize = 4_096;

/// Transactions this node accepted from its own clients, waiting to be gossiped to peers.
pub const OUTBOX_MAX: usize = 65_536;

/// The gossip task's number for a peer (its order of first delivery), so that a staged
/// transaction remembers who sent it without holding the peer's key.
pub type PeerTag = u32;

/// Peers' transactions waiting to be admitted, who sent each, and when the oldest arrived.
#[derive(Debug, Default)]
struct Staged {
    txs: Vec<(PeerTag, SignedTx)>,
    since_ms: u64,
}

/// Everything one validator's tasks share.
#[derive(Debug)]
pub struct Shared {
    pub chain: Mutex<Chain>,
    pub mempool: Mutex<Mempool>,
    /// Signature verdicts: each signature verified once per node (see [`crate::verdicts`]).
    pub signatures: Mutex<Verdicts>,
    /// Public keys decoded before, by their bytes, at most [`KEYS_MAX`]: gossip, observations
    /// and every block this validator decodes share them (see `bulwark_types::keys`).
    pub keys: KeyCache,
    pub receipts: Mutex<Receipts>,
    pub status: Mutex<NodeStatus>,
    pub outbox: Mutex<VecDeque<SignedTx>>,
    /// Peers' gossiped transactions waiting, unverified, to be admitted in one batch (see
    /// `gossip.rs`); bounded there by `GossipConfig::stage_min` plus one coalesced delivery.
    staged: Mutex<Staged>,
    /// Held while staged transactions are admitted, so that two admissions (the gossip task's
    /// and a proposal's) keep the order the transactions arrived in.
    admitting: Mutex<()>,
    /// Peers whose gossip carried a forged signature. An honest validator gossips only what it
    /// admitted, signature verified, so one forgery is proof; their gossip is dropped unread
    /// from then on (`gossip.rs`). Bounded by the validator set.
    forgers: Mutex<BTreeSet<PeerTag>>,
    /// The newest finalized blocks this node executed, oldest first, at most [`HISTORY_MAX`].
    pub history: Mutex<VecDeque<FinalizedRecord>>,
    /// The newest snapshot on this validator's disk, as served to syncing peers.
    pub snapshot: Mutex<Option<ServedSnapshot>>,
    /// Every validator's newest signed price observation per asset, for the blocks this
    /// validator proposes.
    pub observations: Mutex<ObservationPool>,
    /// When this validator first saw each recent view notarized, by its own clock: the time
    /// a block's lag is judged against when its verification runs late.
    pub notarizations: Mutex<crate::app::Notarizations>,
    /// Where the API asks for receipts this node stored on disk (those it no longer holds in
    /// `receipts`, e.g. after a restart); `None` until the engine starts the archive's task.
    pub receipt_queries: Mutex<Option<futures::channel::mpsc::Sender<ReceiptQuery>>>,
    /// What readers see (see the module doc); a leaf lock, held only to clone or swap.
    published: Mutex<Published>,
    /// The height `status.finalized_height` names, announced after it changes: what a
    /// follower's long poll for the next block waits on (`GET /blocks/{h}?wait_ms=`).
    finalized_heights: tokio::sync::watch::Sender<u64>,
    /// Unit-test builds only: see `Executor::inject_fault`.
    #[cfg(test)]
    pub fault_drop_last_tx_at: std::sync::atomic::AtomicU64,
    /// Unit-test builds only: makes this validator's snapshot server forge or withhold its
    /// snapshot (1 to 3, `sync::forge_for_test`) or lie about its newest finalized block (4
    /// and 5, `sync::forge_newest_for_test`).
    #[cfg(test)]
    pub fault_forge_snapshot: std::sync::atomic::AtomicU8,
    /// Unit-test builds only: see `Executor::inject_state_fault`.
    #[cfg(test)]
    pub fault_forge_state_at: std::sync::atomic::AtomicU64,
    /// Unit-test builds only: see `Executor::inject_conflicting_delivery`.
    #[cfg(test)]
    pub fault_conflicting_delivery_from: std::sync::atomic::AtomicU64,
}

/// Public keys a validator keeps decoded: every trader of a busy exchange (about 9 MiB).
pub const KEYS_MAX: usize = 32_768;

/// Locks a mutex, treating poisoning (a panic while held) as fatal corruption.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .expect("a task panicked while holding node state")
}

impl Shared {
    pub fn new(chain: Chain, mempool: Mempool, signature_cache: usize, receipts: usize) -> Self {
        let published = Published {
            finalized: Arc::new(FinalizedView::of(&chain)),
            newest: chain.newest_shared(),
        };
        Self {
            published: Mutex::new(published),
            finalized_heights: tokio::sync::watch::Sender::new(0),
            chain: Mutex::new(chain),
            mempool: Mutex::new(mempool),
            signatures: Mutex::new(Verdicts::new(signature_cache)),
            keys: KeyCache::new(KEYS_MAX),
            receipts: Mutex::new(Receipts::new(receipts)),
            status: Mutex::new(NodeStatus::default()),
            outbox: Mutex::new(VecDeque::new()),
            staged: Mutex::new(Staged::default()),
            admitting: Mutex::new(()),
            forgers: Mutex::new(BTreeSet::new()),
            history: Mutex::new(VecDeque::new()),
            snapshot: Mutex::new(None),
            observations: Mutex::new(ObservationPool::new(Vec::new())),
            notarizations: Mutex::new(crate::app::Notarizations::default()),
            receipt_queries: Mutex::new(None),
            #[cfg(test)]
            fault_drop_last_tx_at: std::sync::atomic::AtomicU64::new(0),
            #[cfg(test)]
            fault_forge_snapshot: std::sync::atomic::AtomicU8::new(0),
            #[cfg(test)]
            fault_forge_state_at: std::sync::atomic::AtomicU64::new(0),
            #[cfg(test)]
            fault_conflicting_delivery_from: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The latest published finalized state: never half a block, never the chain's lock.
    pub fn finalized_view(&self) -> Arc<FinalizedView> {
        Arc::clone(&lock(&self.published).finalized)
    }

    /// The latest published newest state (speculative, or finalized if none is newer).
    pub fn newest_view(&self) -> Arc<Exchange> {
        Arc::clone(&lock(&self.published).newest)
    }

    /// Publishes the chain's finalized state (and its newest) to readers and returns it. The
    /// executor calls this after each finalized block and whenever it replaces the chain.
    pub fn publish_finalized(&self) -> Arc<FinalizedView> {
        let (finalized, newest) = {
            let chain = lock(&self.chain);
            (Arc::new(FinalizedView::of(&chain)), chain.newest_shared())
        };
        let replaced = {
            let mut published = lock(&self.published);
            // Only the executor writes the finalized state, and it never moves back (a synced
            // state installs only above the executed height).
            assert!(
                finalized.height >= published.finalized.height,
                "the finalized view never moves back"
            );
            (
                std::mem::replace(&mut published.finalized, Arc::clone(&finalized)),
                std::mem::replace(&mut published.newest, newest),
            )
        };
        // The states replaced are freed here, not under the lock the API's readers take: the
        // last holder of a state frees every part no newer state shares (each part the next
        // block copied to change it): 0.4 to 0.9 ms a block at 10,000 orders a second
        // (profiles of 2026-12-07, night).
        drop(replaced);
        finalized
    }

    /// Records in `status` that this node has executed the finalized block `block` (hex) at
    /// `height`, leaving `state_digest` (hex), with `more` of the block's figures; then wakes
    /// the API's requests waiting for that block (after the status says so, which they read).
    /// The only way the executor moves `status.finalized_height`.
    pub fn record_finalized(
        &self,
        height: u64,
        block: String,
        state_digest: String,
        more: impl FnOnce(&mut NodeStatus),
    ) {
        {
            let mut status = lock(&self.status);
            status.finalized_height = height;
            status.finalized_block = block;
            status.state_digest = state_digest;
            more(&mut status);
        }
        self.announce_finalized(height);
    }

    /// A receiver that changes each time this node announces a newer executed finalized
    /// height (its receipts are recorded by then): what a waiter wakes on instead of polling.
    pub fn finalized_heights(&self) -> tokio::sync::watch::Receiver<u64> {
        self.finalized_heights.subscribe()
    }

    /// Wakes the API's requests waiting for blocks up to `height`; never moves back.
    fn announce_finalized(&self, height: u64) {
        self.finalized_heights.send_if_modified(|announced| {
            let moved = height > *announced;
            *announced = (*announced).max(height);
            moved
        });
    }

    /// Waits at most `wait` until this node has executed the finalized block at `height`;
    /// true if it has. Cancel-safe; holds no lock while waiting.
    pub async fn wait_finalized(&self, height: u64, wait: std::time::Duration) -> bool {
        let mut heights = self.finalized_heights.subscribe();
        tokio::time::timeout(wait, heights.wait_for(|announced| *announced >= height))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// Publishes `chain`'s newest state (the caller holds the chain's lock: `published` comes
    /// after it in the lock order). Propose and verify call this after extending.
    pub fn publish_newest(&self, chain: &Chain) {
        lock(&self.published).newest = chain.newest_shared();
    }

    /// Stages peers' transactions, each with its sender, for admission (`now_ms` dates the
    /// oldest); returns how many are staged.
    pub fn stage(&self, txs: Vec<(PeerTag, SignedTx)>, now_ms: u64) -> usize {
        let mut staged = lock(&self.staged);
        if staged.txs.is_empty() {
            staged.since_ms = now_ms;
        }
        staged.txs.extend(txs);
        staged.txs.len()
    }

    /// Whether `peer`'s gossip carried a forged signature (its gossip is then dropped unread).
    pub fn is_forger(&self, peer: PeerTag) -> bool {
        lock(&self.forgers).contains(&peer)
    }

    /// How many peers' gossip carried a forged signature.
    pub fn forgers(&self) -> usize {
        lock(&self.forgers).len()
    }

    /// When the oldest staged transaction was staged, if any is.
    pub fn staged_since(&self) -> Option<u64> {
        let staged = lock(&self.staged);
        (!staged.txs.is_empty()).then_some(staged.since_ms)
    }

    /// Admits every staged transaction, their signatures verified as one batch (those verified
    /// before, in a block, are found by their digest); returns how many were admitted.
    pub fn admit_staged(&self, rng: &mut impl CryptoRng) -> usize {
        let _order = lock(&self.admitting);
        let staged = std::mem::take(&mut lock(&self.staged).txs);
        let (senders, txs): (Vec<PeerTag>, Vec<SignedTx>) = staged.into_iter().unzip();
        if txs.is_empty() {
            return 0;
        }
        let results = self.submit(txs, rng, false);
        let refused = results.iter().filter(|r| r.is_err()).count();
        if refused > 0 {
            tracing::trace!(refused, "gossiped transactions refused");
        }
        let forged = senders
            .iter()
            .zip(&results)
            .filter(|(_, result)| matches!(result, Err(AdmitError::SignatureInvalid)))
            .map(|(sender, _)| *sender);
        let mut forgers = lock(&self.forgers);
        for sender in forged {
            if forgers.insert(sender) {
                tracing::warn!(
                    peer = sender,
                    "gossip carried a forged signature: the peer's gossip is dropped from now on"
                );
            }
        }
        results.len() - refused
    }

    /// Admits transactions to the mempool: charges each to its signer's account in the newest
    /// state this node holds (a key with no account with collateral, and no operator key, is
    /// refused before its signature is checked, so throwaway keys cost this node nothing, and
    /// so is a time nonce already expired at that state's time: no later block can take it),
    /// verifies the remaining signatures not seen before (in one batch), checks nonces, and
    /// queues those from this node's own clients (`gossip`) for its peers.
    ///
    /// A time nonce ahead of the newest state by more than the window is admitted: the chain
    /// may have stalled while the signer's clock ran on, and the block that takes it rejects it
    /// if it is still ahead.
    pub fn submit(
        &self,
        txs: Vec<SignedTx>,
        rng: &mut impl CryptoRng,
        gossip: bool,
    ) -> Vec<Result<TxDigest, AdmitError>> {
        let payers: Vec<Result<Payer, AdmitError>> = {
            let chain = lock(&self.chain);
            let newest = chain.newest();
            txs.iter()
                .map(|tx| match tx.tx.nonce.time_check(newest.time()) {
                    Err(RejectReason::NonceExpired) => {
                        Err(AdmitError::Invalid(RejectReason::NonceExpired))
                    }
                    _ => payer_of(newest, &tx.tx.signer),
                })
                .collect()
        };
        // Only admissible transactions are hashed: a flood of keys without an account costs
        // this node a lookup each, no hash and no signature check.
        let digests: Vec<Option<TxDigest>> = txs
            .iter()
            .zip(&payers)
            .map(|(tx, payer)| payer.is_ok().then(|| tx_digest(tx)))
            .collect();
        let unknown: Vec<usize> = {
            let cache = lock(&self.signatures);
            (0..txs.len())
                .filter(|i| digests[*i].is_some_and(|d| !cache.tx_valid(&d)))
                .collect()
        };
        let batch: Vec<&SignedTx> = unknown.iter().map(|i| &txs[*i]).collect();
        let mut valid: Vec<bool> = payers.iter().map(Result::is_ok).collect();
        for (i, ok) in unknown.iter().zip(verify_batch(rng, &batch)) {
            valid[*i] = ok;
        }
        let chain = lock(&self.chain);
        let newest = chain.newest();
        let height = newest.height().get();
        let mut mempool = lock(&self.mempool);
        let mut results = Vec::with_capacity(txs.len());
        let mut accepted = Vec::new();
        let mut evicted = Vec::new();
        for (i, tx) in txs.into_iter().enumerate() {
            let (payer, digest) = match (&payers[i], digests[i]) {
                (Ok(payer), Some(digest)) => (*payer, digest),
                (Err(error), _) => {
                    results.push(Err(error.clone()));
                    continue;
                }
                (Ok(_), None) => unreachable!("every admissible transaction is hashed"),
            };
            let nonce_last = newest.nonce_last(&tx.tx.signer);
            // Only transactions to gossip are kept beside the pool's copy.
            let outgoing = gossip.then(|| tx.clone());
            match mempool.admit(tx, digest, valid[i], nonce_last, height, payer) {
                Ok(gone) => {
                    evicted.extend(gone);
                    accepted.push((digest, outgoing));
                    results.push(Ok(digest));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let mempool_txs = mempool.len();
        drop(mempool);
        drop(chain);
        let mut cache = lock(&self.signatures);
        for (digest, ok) in digests.iter().zip(&valid) {
            if let (Some(digest), true) = (digest, ok) {
                cache.insert_tx(*digest);
            }
        }
        drop(cache);
        let mut receipts = lock(&self.receipts);
        for (digest, _) in &accepted {
            receipts.record(*digest, TxStatus::Pending);
        }
        for digest in &evicted {
            receipts.drop_pending(digest, DropReason::Evicted);
        }
        drop(receipts);
        lock(&self.status).mempool_txs = mempool_txs;
        if gossip {
            let mut outbox = lock(&self.outbox);
            for tx in accepted.into_iter().filter_map(|(_, tx)| tx) {
                if outbox.len() < OUTBOX_MAX {
                    outbox.push_back(tx);
                }
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::MempoolLimits;
    use bulwark_types::{Money, TxBody};
    use commonware_cryptography::{Hasher as _, Sha256};
    use rand_core::SeedableRng;

    /// Shared state over `state`, with default mempool limits.
    fn shared_on(state: Exchange) -> Shared {
        Shared::new(
            Chain::new(state, Sha256::hash(&[b"genesis"])),
            Mempool::new(MempoolLimits::DEFAULT),
            1_024,
            1_024,
        )
    }

    /// A finalized transaction's receipt holds exactly its own events, from one array of its
    /// block's transactions' events that every receipt of the block shares.
    #[test]
    fn receipts_hold_each_transaction_its_own_events() {
        use bulwark_types::{Block, BlockTime, Height, PriceInputs, PrivateKey};
        use commonware_cryptography::Signer as _;
        let mut state = crate::test_support::genesis_exchange();
        let bridge = crate::test_support::bridge();
        let deposits: Vec<SignedTx> = (1..=3u64)
            .map(|i| {
                TxBody::Deposit {
                    owner: PrivateKey::from_seed(i).public_key(),
                    amount: Money::from_usdc(100 * i as i64),
                }
                .signed(&bridge, i)
            })
            .collect();
        let block = Block {
            height: Height::new(1),
            time: BlockTime::from_millis(2_000),
            prices: PriceInputs::default(),
            observations: vec![],
            txs: deposits.clone(),
        };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let outcome = state
            .apply_block(&block.check_signatures(&mut rng))
            .unwrap();
        let digests: Vec<TxDigest> = deposits.iter().map(tx_digest).collect();
        let mut receipts = Receipts::new(16);
        receipts.record_block(1, &digests, &outcome);
        let events = |digest: &TxDigest| match receipts.get(digest) {
            Some(TxStatus::Finalized { events, .. }) => events.to_vec(),
            other => panic!("finalized, not {other:?}"),
        };
        for (index, digest) in digests.iter().enumerate() {
            assert!(!outcome.tx_events(index).is_empty(), "a deposit has events");
            assert_eq!(
                events(digest),
                outcome.tx_events(index),
                "transaction {index}"
            );
        }
        assert_ne!(events(&digests[0]), events(&digests[1]));
        let shared: Vec<&Arc<[Event]>> = digests
            .iter()
            .map(|digest| match receipts.get(digest) {
                Some(TxStatus::Finalized { events, .. }) => &events.block,
                _ => unreachable!("checked above"),
            })
            .collect();
        assert!(
            shared.iter().all(|block| Arc::ptr_eq(block, shared[0])),
            "one allocation for the block"
        );
        let held: usize = (0..digests.len()).map(|i| outcome.tx_events(i).len()).sum();
        assert_eq!(
            shared[0].len(),
            held,
            "the transactions' events, not the block's own"
        );
    }

    /// Gossip waits staged and unverified, dated by its oldest; its admission takes everything
    /// staged, verifies every signature, names the peer that sent a forgery (and no other),
    /// and refuses a forgery among honest transactions
    /// without refusing them.
    #[test]
    fn staged_gossip_is_admitted_only_verified() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let (state, trader) = crate::test_support::exchange_with_funded_trader(77);
        let shared = shared_on(state);
        let withdraw = |nonce: u64| {
            TxBody::Withdraw {
                amount: Money::from_usdc(1),
            }
            .signed(&trader, nonce)
        };
        let honest: Vec<SignedTx> = (1..=20).map(withdraw).collect();
        let mut forged = withdraw(21);
        forged.signature = honest[0].signature.clone();

        // Peer 0 sends ten honest transactions, peer 1 the other ten, peer 2 the forgery.
        let from = |peer: PeerTag, txs: &[SignedTx]| -> Vec<(PeerTag, SignedTx)> {
            txs.iter().map(|tx| (peer, tx.clone())).collect()
        };
        assert_eq!(shared.staged_since(), None);
        assert_eq!(shared.admit_staged(&mut rng), 0, "nothing staged");
        assert_eq!(shared.stage(from(0, &honest[..10]), 5), 10);
        assert_eq!(shared.stage(Vec::new(), 7), 10);
        assert_eq!(
            shared.stage(
                [from(1, &honest[10..]), from(2, &[forged.clone()])].concat(),
                9
            ),
            21
        );
        assert_eq!(shared.staged_since(), Some(5), "dated by the oldest");
        assert_eq!(lock(&shared.mempool).len(), 0, "staged is not admitted");

        assert_eq!(shared.admit_staged(&mut rng), 20);
        assert_eq!(shared.staged_since(), None);
        assert_eq!(lock(&shared.mempool).len(), 20);
        let receipts = lock(&shared.receipts);
        for tx in &honest {
            assert_eq!(receipts.get(&tx_digest(tx)), Some(&TxStatus::Pending));
        }
        assert_eq!(receipts.get(&tx_digest(&forged)), None, "never admitted");
        drop(receipts);
        assert!(!lock(&shared.signatures).tx_valid(&tx_digest(&forged)));
        assert_eq!(shared.admit_staged(&mut rng), 0);
        // The forgery is proof against its sender only.
        assert!(shared.is_forger(2));
        assert!(!shared.is_forger(0) && !shared.is_forger(1));
        assert_eq!(shared.forgers(), 1);
    }

    /// A transaction whose time nonce expired at the newest state's time can never execute:
    /// refused before its signature is checked (a flood of them costs no verification). One
    /// within the window is admitted, and so is one ahead of it (the chain may have stalled
    /// while the signer's clock ran on; the block rejects it if it is still ahead).
    #[test]
    fn a_time_nonce_already_expired_is_refused_unverified() {
        const NOW_MS: u64 = 1_780_000_000_000;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
        let (state, trader) = crate::test_support::exchange_with_funded_trader_at(78, NOW_MS);
        let shared = shared_on(state);
        let signed_at = |ms: u64| {
            TxBody::Withdraw {
                amount: Money::from_usdc(1),
            }
            .signed(&trader, ms * 1_000)
        };
        let expired = signed_at(NOW_MS - 60_001);
        let edge = signed_at(NOW_MS - 60_000);
        let ahead = signed_at(NOW_MS + 120_000);
        let results = shared.submit(vec![expired.clone(), edge, ahead], &mut rng, false);
        assert_eq!(
            results[0],
            Err(AdmitError::Invalid(RejectReason::NonceExpired))
        );
        assert!(results[1].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(
            !lock(&shared.signatures).tx_valid(&tx_digest(&expired)),
            "never verified"
        );
        assert_eq!(lock(&shared.mempool).len(), 2);
    }
}
