//! Execution of finalized blocks: marshal hands them over in height order; this finalizes
//! each (keeping the state this node already computed for it speculatively, else executing it
//! on the finalized state: see [`crate::chain`]), publishes the finalized state to readers,
//! records receipts, prunes the mempool, snapshots, and acknowledges.
//!
//! Owns: the finalized state's progress and its durability. On startup it restores the newest
//! snapshot and replays the finalized blocks after it from marshal's archive, so a crash at
//! any moment loses nothing that was finalized. A block whose committed state digest differs
//! from this node's halts the node, loudly: the height and both digests go to the log and to
//! the status the API shows; the node stops voting and stops acknowledging.
//! While running, it also installs a state the snapshot actor synced from peers (see
//! [`crate::sync`]), between two blocks: persists it (under both snapshot keys), makes it the
//! finalized state, and moves marshal's floor to the block after it, so marshal delivers from
//! there instead of asking peers for the pruned blocks in between. The task, the shared
//! state and the API stay the same; only the state inside them jumps forward.
//!
//! Finalized on the certificate: marshal stores each finalized block and its finalization and
//! syncs them to disk before it delivers the block (its durability barrier), which took 3 to 6
//! ms a block at 10,000 orders/s on a 2-core VM. The finalization certificate is proof enough
//! that the block is final: simplex verified 2f+1 validators' signatures on it, and at least
//! f+1 honest ones hold the block. So when consensus reports a finalization
//! ([`crate::engine::ConsensusMonitor`]) whose block this node holds speculatively on its
//! finalized state ([`Chain::next_held`]), this task finalizes it at once; marshal's later
//! delivery of the same height is acknowledged without executing it again, and a different
//! block delivered at a height finalized here halts the node (two blocks finalized at one
//! height: consensus itself failed). Nothing acknowledged can be lost: a crash before marshal
//! stored the block replays it after restart from marshal's archive or its peers, to the same
//! outcome, and receipts are rebuilt by that replay as they are for any block above the newest
//! snapshot.
//! Never: blocks inside `Reporter::report` (it only forwards to this task's queue, which
//! marshal bounds: it hands over at most `max_pending_acks` unacknowledged blocks); installs a
//! synced state at or below the executed height, or on a halted node; takes a state that did
//! not pass [`crate::sync::fetch`]'s checks (only it builds a [`Synced`]).

use crate::block::ChainBlock;
use crate::chain::{Chain, FinalizeError};
use crate::commitment;
use crate::mempool::{TxDigest, tx_digest};
use crate::receipt_archive::{RECEIPT_RETENTION_BLOCKS, ReceiptArchive};
use crate::shared::{DropReason, FinalizedRecord, HISTORY_MAX, Shared, lock};
use crate::snapshots::{SnapshotStore, StorageError};
use crate::sync::{ServedSnapshot, Synced};
use bulwark_exchange::{BlockOutcome, StateDigest};
use bulwark_types::CheckedBlock;
use commonware_actor::Feedback;
use commonware_codec::Encode;
use commonware_consensus::marshal::{Update, core::Mailbox, standard::Standard};
use commonware_consensus::simplex::scheme::ed25519;
use commonware_consensus::types::Height;
use commonware_consensus::{Heightable, Reporter};
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digested, Digestible};
use commonware_cryptography::{Hasher, Sha256};
use commonware_runtime::{Clock, Metrics, Storage};
use commonware_utils::Acknowledgement;
use commonware_utils::acknowledgement::Exact;
use futures::StreamExt;
use futures::channel::mpsc;
use rand_core::CryptoRng;
use std::sync::Arc;

/// The marshal mailbox type of a Bulwark validator.
pub type MarshalMailbox = Mailbox<ed25519::Scheme, Standard<ChainBlock>>;

/// Forwards marshal's finalized blocks to the executor task; records the finalized tip.
#[derive(Clone)]
pub struct FinalizedFeed {
    sender: mpsc::UnboundedSender<(Digested<ChainBlock>, Exact)>,
    shared: Arc<Shared>,
}

impl FinalizedFeed {
    pub fn new(
        shared: Arc<Shared>,
    ) -> (Self, mpsc::UnboundedReceiver<(Digested<ChainBlock>, Exact)>) {
        let (sender, receiver) = mpsc::unbounded();
        (Self { sender, shared }, receiver)
    }
}

impl Reporter for FinalizedFeed {
    type Activity = Update<ChainBlock>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match activity {
            Update::Tip(_, height, _) => {
                let mut status = lock(&self.shared.status);
                status.tip_height = status.tip_height.max(height.get());
            }
            Update::Block(block, ack) => {
                // Unbounded by type, bounded in practice by marshal's max_pending_acks.
                if self.sender.unbounded_send((block, ack)).is_err() {
                    tracing::error!("executor is gone; finalized block dropped");
                }
            }
        }
        Feedback::Ok
    }
}

/// Finalized block digests from consensus waiting for this node to hold their block on its
/// finalized state (the executor's queue, and what it remembers of them): the oldest is
/// forgotten first, and marshal delivers whatever is forgotten.
pub const CERTIFIED_MAX: usize = 16;

/// Executor settings.
#[derive(Copy, Clone, Debug)]
pub struct ExecutorConfig {
    /// Snapshot the finalized state every this many blocks.
    pub snapshot_interval: u64,
    /// Keep this many finalized blocks below the newest snapshot in marshal's archive (peers
    /// that fell behind backfill from them); prune older ones.
    pub archive_retention: u64,
}

/// Applies finalized blocks in order.
pub struct Executor<E: Storage + Clock + Metrics + CryptoRng> {
    context: E,
    shared: Arc<Shared>,
    store: SnapshotStore<E>,
    marshal: MarshalMailbox,
    config: ExecutorConfig,
    /// Durable receipts: written with each block, synced before each snapshot (a crash loses
    /// only those of blocks above the newest snapshot, which its replay rebuilds).
    receipts: ReceiptArchive<E>,
    /// Blocks consensus reported finalized that this node has not finalized yet, oldest first,
    /// at most [`CERTIFIED_MAX`].
    certified: std::collections::VecDeque<Digest>,
}

/// A halted executor's end: never acknowledge `ack` (marshal then stops delivering); hold it
/// rather than drop it, and stay parked.
async fn park_holding(ack: Exact) {
    let _held = ack;
    park().await;
}

/// A halted executor's end when it holds no acknowledgement: parked for good.
async fn park() {
    futures::future::pending::<()>().await;
}

impl<E: Storage + Clock + Metrics + CryptoRng> Executor<E> {
    pub fn new(
        context: E,
        shared: Arc<Shared>,
        store: SnapshotStore<E>,
        marshal: MarshalMailbox,
        config: ExecutorConfig,
        receipts: ReceiptArchive<E>,
    ) -> Self {
        assert!(config.snapshot_interval > 0, "snapshot interval positive");
        Self {
            context,
            shared,
            store,
            marshal,
            config,
            receipts,
            certified: std::collections::VecDeque::new(),
        }
    }

    /// Catches up from the archive, then executes blocks as marshal delivers them (or as
    /// consensus certifies them final, when this node holds them: `certified`) and installs
    /// states synced from peers as the snapshot actor hands them over.
    pub async fn run(
        mut self,
        mut blocks: mpsc::UnboundedReceiver<(Digested<ChainBlock>, Exact)>,
        installs: mpsc::Receiver<Synced>,
        certified: mpsc::Receiver<Digest>,
    ) {
        if !self.replay_archive().await {
            return;
        }
        let mut installs = Some(installs);
        let mut certified = Some(certified);
        loop {
            let next = commonware_macros::select! {
                block = blocks.next() => block.map(Next::Block),
                synced = next_or_pending(&mut installs) => Some(synced.map_or(Next::NoMoreSyncs, |s| Next::Synced(Box::new(s)))),
                digest = next_or_pending(&mut certified) => Some(digest.map_or(Next::NoMoreCertified, Next::Certified)),
            };
            let (block, ack) = match next {
                None => return,
                Some(Next::Block(delivered)) => delivered,
                Some(Next::Certified(digest)) => {
                    if self.certified.len() == CERTIFIED_MAX {
                        self.certified.pop_front();
                    }
                    self.certified.push_back(digest);
                    if !self.execute_certified().await {
                        return park().await;
                    }
                    continue;
                }
                Some(Next::NoMoreCertified) => {
                    certified = None;
                    continue;
                }
                Some(Next::Synced(synced)) => {
                    if !self.install(*synced).await {
                        // Its disk failed: halted, parked like a divergence.
                        return park().await;
                    }
                    continue;
                }
                // The snapshot actor is gone (its task ended): keep executing blocks.
                Some(Next::NoMoreSyncs) => {
                    installs = None;
                    continue;
                }
            };
            let height = block.height().get();
            let executed = lock(&self.shared.chain).finalized_height();
            if height <= executed {
                // Finalized here on its certificate, or redelivered after a restart: already
                // applied, unless it is not the block applied at that height.
                let delivered = block.digest();
                #[cfg(test)]
                let delivered = self.inject_conflicting_delivery(height, delivered);
                if let Some(applied) = self.applied_at(height)
                    && applied != delivered
                {
                    self.halt(format!(
                        "marshal delivered block {} at height {height}, where block {} was \
                         finalized: two blocks finalized at one height",
                        hex(delivered.as_ref()),
                        hex(applied.as_ref())
                    ));
                    return park_holding(ack).await;
                }
                ack.acknowledge();
                continue;
            }
            if height > executed + 1 {
                // Past an archive gap: only a synced state at or above the block's parent
                // lets it execute. Hold it unacknowledged (marshal delivers nothing more)
                // until one is installed.
                let missing = executed + 1;
                let Some(installs) = installs.as_mut() else {
                    self.halt(format!(
                        "finalized block {missing} missing and no state sync to cross the gap"
                    ));
                    return park_holding(ack).await;
                };
                while lock(&self.shared.chain).finalized_height() + 1 < height {
                    let Some(synced) = installs.next().await else {
                        self.halt(format!(
                            "finalized block {missing} missing and state sync stopped"
                        ));
                        return park_holding(ack).await;
                    };
                    if !self.install(synced).await {
                        return park_holding(ack).await;
                    }
                }
                if height <= lock(&self.shared.chain).finalized_height() {
                    ack.acknowledge();
                    continue;
                }
            }
            if !self.execute(&block).await {
                return park_holding(ack).await;
            }
            ack.acknowledge();
            // Its certificate, if it came first while the block was not held here, can no
            // longer match anything.
            self.certified.retain(|digest| *digest != block.digest());
            // A certified block may have waited for this one, its parent.
            if !self.execute_certified().await {
                return park().await;
            }
        }
    }

    /// Finalizes, in order, every block consensus certified final that this node holds
    /// speculatively on its finalized state. False if the node halted.
    async fn execute_certified(&mut self) -> bool {
        loop {
            let next = {
                let chain = lock(&self.shared.chain);
                self.certified
                    .iter()
                    .find_map(|digest| chain.next_held(digest))
            };
            let Some(block) = next else {
                return true;
            };
            self.certified.retain(|digest| *digest != block.digest());
            if !self.execute(&block).await {
                return false;
            }
            lock(&self.shared.status).blocks_finalized_on_certificate += 1;
        }
    }

    /// The block this node finalized at `height`, while its record is in the recent history.
    fn applied_at(&self, height: u64) -> Option<Digest> {
        lock(&self.shared.history)
            .iter()
            .rev()
            .find(|record| record.height == height)
            .map(|record| record.block)
    }

    /// Installs a state synced from peers while running, if it is above the executed height
    /// and the node has not halted; then marshal delivers from the block after it. False if
    /// it could not be persisted (the node halted).
    async fn install(&mut self, synced: Synced) -> bool {
        let height = synced.height();
        let executed = lock(&self.shared.chain).finalized_height();
        if height <= executed || lock(&self.shared.status).halted.is_some() {
            tracing::info!(
                height,
                executed,
                "synced state not needed any more; dropped"
            );
            return true;
        }
        let (exchange, digest, finalization) = synced.into_parts();
        // The receipts of the blocks executed here so far are on disk before the synced state
        // is saved: after it, no replay would rebuild them.
        if let Err(error) = self.receipts.sync().await {
            self.storage_failure(height, error.into());
            return false;
        }
        let served = match self.store.save_floor(&exchange, digest).await {
            Ok(served) => served,
            Err(error) => {
                self.storage_failure(height, error);
                return false;
            }
        };
        let state_digest = exchange.state_digest();
        *lock(&self.shared.chain) = Chain::new(exchange, digest);
        self.shared.publish_finalized();
        *lock(&self.shared.snapshot) = Some(served);
        self.shared.record_finalized(
            height,
            hex(digest.as_ref()),
            hex(state_digest.as_ref()),
            |status| {
                status.runtime_syncs += 1;
                status.runtime_sync_height = Some(height);
                status.archive_gap = None;
            },
        );
        // The finalization of block `height + 1` passed `sync::check_manifest`, as marshal
        // requires of a floor. Marshal marks `height` processed and delivers from `height + 1`.
        self.marshal.set_floor(finalization);
        tracing::warn!(
            from = executed,
            to = height,
            "installed a verified snapshot while running; following consensus from there"
        );
        assert_eq!(
            lock(&self.shared.chain).finalized_height(),
            height,
            "the synced state is the finalized state"
        );
        true
    }

    /// Applies finalized blocks stored after the snapshot this node restored from.
    async fn replay_archive(&mut self) -> bool {
        let Some(processed) = self.marshal.get_processed().await else {
            return true;
        };
        let from = lock(&self.shared.chain).finalized_height() + 1;
        let to = processed.height().get();
        if from <= to {
            tracing::info!(from, to, "replaying finalized blocks after the snapshot");
        }
        for height in from..=to {
            let Some(block) = self.marshal.get_block(Height::new(height)).await else {
                // Marshal counts it processed, so it will not fetch it again: the disk lost
                // it (or lied when it was read). The state here is sound, only behind; a
                // verified snapshot from peers moves it past the gap.
                tracing::error!(
                    height,
                    "finalized block missing from the archive; waiting for a state sync"
                );
                lock(&self.shared.status).archive_gap = Some(height);
                return true;
            };
            let digest = block.digest();
            if !self.execute(&Digested::precomputed(block, digest)).await {
                return false;
            }
        }
        true
    }

    /// Finalizes one block, keeping the state this node computed for it speculatively if it
    /// holds one (the block is not executed again), else executing it; false if the node
    /// halted.
    async fn execute(&mut self, block: &Digested<ChainBlock>) -> bool {
        let block = block.inner();
        let height = block.height().get();
        #[cfg(test)]
        self.inject_state_fault(height);
        let faulty = self.inject_fault(block);
        let kept = {
            let mut chain = lock(&self.shared.chain);
            if faulty.is_some() {
                // The fault is in execution: the block must run here, not be kept.
                chain.forget(&block.digest());
            }
            chain.finalize_kept(block)
        };
        let result = match kept {
            Ok(Some(outcome)) => Ok((outcome, true)),
            Ok(None) => {
                // Not speculated here (a replay, a block this node did not vote for, a state
                // forgotten past the bound): execute it on the finalized state.
                let checked = faulty.unwrap_or_else(|| self.check_signatures(block));
                lock(&self.shared.chain)
                    .finalize(block, &checked)
                    .map(|outcome| (outcome, false))
            }
            Err(error) => Err(error),
        };
        let (outcome, kept) = match result {
            Ok(done) => done,
            Err(FinalizeError::Divergence(divergence)) => {
                tracing::error!(
                    height = divergence.height,
                    committed = ?divergence.committed,
                    computed = ?divergence.computed,
                    "STATE DIVERGENCE: this validator's state differs from the finalized chain; halting"
                );
                self.halt(divergence.to_string());
                return false;
            }
            Err(error) => {
                tracing::error!(height, %error, "cannot execute finalized block; halting");
                self.halt(error.to_string());
                return false;
            }
        };
        let txs = &block.body.txs;
        // Hashed once here for the receipt archive, the mempool and the receipts.
        let digests: Vec<TxDigest> = txs.iter().map(tx_digest).collect();
        // The pool drops what this block executed before the state that executed it is
        // published: a client that sends its next transactions the moment it reads its nonces
        // finalized must not find its queue still full of executed ones (`SignerQueueFull`).
        let (superseded, expired) = {
            let mut mempool = lock(&self.shared.mempool);
            (
                mempool.prune_executed(txs, &digests),
                mempool.evict_old(height),
            )
        };
        let finalized = self.shared.publish_finalized();
        let state_after = finalized.state.state_digest();
        // Written, not synced: a crash that loses them replays this block (it is above the
        // newest snapshot, which is written only after the receipts below it are synced).
        // A failure halts before the block is acknowledged: a restart replays it.
        if let Err(error) = self.receipts.record_block(height, &digests, &outcome).await {
            self.storage_failure(height, error.into());
            return false;
        }
        {
            let mut receipts = lock(&self.shared.receipts);
            receipts.record_block(height, &digests, &outcome);
            for digest in &superseded {
                receipts.drop_pending(digest, DropReason::NonceSuperseded);
            }
            for digest in &expired {
                receipts.drop_pending(digest, DropReason::Expired);
            }
        }
        self.update_status(
            block,
            state_after,
            txs.len() as u64,
            outcome.trades().count() as u64,
            kept,
        );
        lock(&self.shared.status).liquidations.count(&outcome);
        lock(&self.shared.status).funding.count(&outcome);
        self.record_history(block, state_after, &outcome);
        // The state hash the next block must carry is computed now, off the chain's lock and
        // in the time before that block is proposed, so its proposal, its verifications and
        // its finalization find it (`Chain::record_state_hash`) instead of each hashing the
        // whole state on the way of its orders. A snapshot due is the same encoding.
        let committed = commitment::commits_after(height).then(|| {
            let served = ServedSnapshot::new(height, finalized.state.snapshot());
            lock(&self.shared.chain).record_state_hash(
                finalized.block,
                &finalized.state,
                served.hash,
            );
            served
        });
        if height % self.config.snapshot_interval == 0 {
            let served = committed.expect("snapshot heights are state hash heights (engine.rs)");
            // The receipts this snapshot covers are on disk before it: no replay rebuilds them.
            if let Err(error) = self.receipts.sync().await {
                self.storage_failure(height, error.into());
                return false;
            }
            // The published state is immutable: encoded above, off the chain's lock, uncopied.
            if let Err(error) = self.store.save_served(&served, finalized.block).await {
                self.storage_failure(height, error);
                return false;
            }
            *lock(&self.shared.snapshot) = Some(served);
            if let Some(floor) = height.checked_sub(self.config.archive_retention) {
                self.marshal.prune(Height::new(floor));
            }
            let receipt_retention = self.config.archive_retention.max(RECEIPT_RETENTION_BLOCKS);
            if let Some(floor) = height.checked_sub(receipt_retention)
                && let Err(error) = self.receipts.prune(floor).await
            {
                self.storage_failure(height, error.into());
                return false;
            }
        }
        true
    }

    /// Unit-test builds only: simulates a non-deterministic execution bug. The first block at
    /// or after `Shared::fault_drop_last_tx_at` that has transactions is executed with its last
    /// transaction's signature replaced by a stranger's, so that transaction is refused here
    /// while every other validator executes it. Returns the faulty verdicts to execute.
    #[cfg(test)]
    fn inject_fault(&mut self, block: &ChainBlock) -> Option<CheckedBlock> {
        use commonware_cryptography::Signer as _;
        use std::sync::atomic::Ordering;
        let at = self.shared.fault_drop_last_tx_at.load(Ordering::SeqCst);
        if at == 0 || block.height().get() < at || block.body.txs.is_empty() {
            return None;
        }
        self.shared.fault_drop_last_tx_at.store(0, Ordering::SeqCst);
        let mut body = block.body.clone();
        let last = body.txs.last_mut().expect("non-empty");
        let stranger = bulwark_types::PrivateKey::from_seed(u64::MAX);
        last.signature = stranger.sign(bulwark_types::tx::TX_NAMESPACE, &last.tx.encode());
        tracing::warn!(
            height = block.height().get(),
            "fault injected: a transaction executes differently here"
        );
        Some(body.check_signatures(&mut self.context))
    }

    /// Unit-test builds only: simulates consensus failing (more than f Byzantine validators
    /// finalizing two blocks at one height). The first marshal delivery at or after
    /// `Shared::fault_conflicting_delivery_from` of a height this node already finalized (on
    /// the certificate) is given another digest than its block's, as if marshal had delivered
    /// a different block there. Returns the digest the delivery is taken to have.
    #[cfg(test)]
    fn inject_conflicting_delivery(&mut self, height: u64, delivered: Digest) -> Digest {
        use std::sync::atomic::Ordering;
        let from = self
            .shared
            .fault_conflicting_delivery_from
            .load(Ordering::SeqCst);
        if from == 0 || height < from {
            return delivered;
        }
        self.shared
            .fault_conflicting_delivery_from
            .store(0, Ordering::SeqCst);
        tracing::warn!(
            height,
            "fault injected: marshal delivers another block here"
        );
        Sha256::hash(&[delivered.as_ref(), b"another block"])
    }

    /// Outside unit tests no fault is injected.
    #[cfg(not(test))]
    fn inject_fault(&mut self, _block: &ChainBlock) -> Option<CheckedBlock> {
        None
    }

    /// Unit-test builds only: simulates a state that differs where no event shows it (a
    /// restore bug, a dropped field, a forged dormant balance). Before executing block
    /// `Shared::fault_forge_state_at`, the finalized state gets 1 USDC more in its insurance
    /// fund and deposits, its outcome chain untouched.
    #[cfg(test)]
    fn inject_state_fault(&mut self, height: u64) {
        use std::sync::atomic::Ordering;
        if self.shared.fault_forge_state_at.load(Ordering::SeqCst) != height {
            return;
        }
        self.shared.fault_forge_state_at.store(0, Ordering::SeqCst);
        let mut chain = lock(&self.shared.chain);
        let forged = crate::test_support::credit_fund(&chain.finalized().snapshot());
        let forged = bulwark_exchange::Exchange::restore(&forged).expect("restores");
        *chain = Chain::new(forged, chain.finalized_digest());
        drop(chain);
        self.shared.publish_finalized();
        tracing::warn!(height, "fault injected: this node's state differs silently");
    }

    fn check_signatures(&mut self, block: &ChainBlock) -> CheckedBlock {
        crate::verdicts::check_block(&self.shared.signatures, &mut self.context, block)
    }

    fn update_status(
        &self,
        block: &ChainBlock,
        state_digest: StateDigest,
        txs: u64,
        trades: u64,
        kept: bool,
    ) {
        let mempool_txs = lock(&self.shared.mempool).len();
        self.shared.record_finalized(
            block.height().get(),
            hex(block.digest().as_ref()),
            hex(state_digest.as_ref()),
            |status| {
                status.view = block.context.round.view().get();
                status.leader = hex(block.context.leader.as_ref());
                status.mempool_txs = mempool_txs;
                status.transactions_executed += txs;
                status.trades_executed += trades;
                if kept {
                    status.blocks_kept += 1;
                } else {
                    status.blocks_executed += 1;
                }
            },
        );
    }

    fn record_history(&self, block: &ChainBlock, state_after: StateDigest, outcome: &BlockOutcome) {
        let record = FinalizedRecord {
            height: block.height().get(),
            block: block.digest(),
            state_after,
            outcome: Sha256::hash(&[&outcome.encode()]),
            state_hash: block.state_hash,
            txs: block.body.txs.len() as u32,
        };
        let mut history = lock(&self.shared.history);
        if history.len() == HISTORY_MAX {
            history.pop_front();
        }
        history.push_back(record);
    }

    fn halt(&self, reason: String) {
        lock(&self.shared.status).halted = Some(reason);
    }

    /// This validator's own disk failed: it halts, logged and typed, never acknowledging the
    /// block (a restart replays it from marshal's archive). A validator that cannot persist
    /// must not go on as if it had; a panic here would take down whatever shares its process.
    fn storage_failure(&self, height: u64, error: StorageError) {
        tracing::error!(
            height,
            %error,
            "STORAGE FAILURE: this validator's disk failed; halting"
        );
        self.halt(format!("storage failure at height {height}: {error}"));
    }
}

/// What the executor's loop received.
enum Next {
    Block((Digested<ChainBlock>, Exact)),
    Synced(Box<Synced>),
    NoMoreSyncs,
    /// A block consensus certified final (its digest), possibly before marshal delivers it.
    Certified(Digest),
    NoMoreCertified,
}

/// The next item of `stream`, or never if there is no stream (any more).
async fn next_or_pending<S: futures::Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream {
        Some(stream) => stream.next().await,
        None => futures::future::pending().await,
    }
}

/// Where a validator starts from.
pub struct InitialChain {
    pub chain: Chain,
    /// The snapshot to serve to syncing peers, if any.
    pub served: Option<ServedSnapshot>,
    /// The disk held snapshots but none restores: the node must not quietly replay from
    /// genesis (peers may have pruned those blocks), so it syncs from peers whatever its height.
    pub lost_local_state: bool,
}

/// Builds the chain a validator starts from: the newest stored snapshot that restores (the
/// previous one if the newest does not), else genesis.
pub fn initial_chain<E: Storage + Clock + Metrics>(
    store: &SnapshotStore<E>,
    genesis: Chain,
) -> InitialChain {
    let loaded = store.load();
    for error in &loaded.unusable {
        tracing::error!(%error, "stored snapshot unusable");
    }
    match loaded.usable {
        Some((exchange, digest, served)) => {
            tracing::info!(
                height = exchange.height().get(),
                fell_back = !loaded.unusable.is_empty(),
                "restored state from snapshot"
            );
            InitialChain {
                chain: Chain::new(exchange, digest),
                served: Some(served),
                lost_local_state: false,
            }
        }
        None => InitialChain {
            chain: genesis,
            served: None,
            lost_local_state: !loaded.unusable.is_empty(),
        },
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
