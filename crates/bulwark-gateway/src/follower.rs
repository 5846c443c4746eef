//! The non-voting follower: fetches each next finalized block from one of the validators,
//! believes it only with the quorum's proof, and applies it with the node's own execution.
//!
//! Owns: the rule for what counts as proof ([`Proof::offer`]) and the fetch loop ([`run`]).
//! A block is proven when it carries a simplex finalization that verifies against the
//! validator set (ed25519, the validators' namespace, epoch 0) and names the block's digest,
//! or when it is the ancestor, by parent links, of such a block (marshal archives a block
//! without its own certificate when it learned it through a descendant's). Each block must be
//! the next height and extend the previous one. A validator that serves anything else is a
//! liar: logged, and not asked again for [`FollowerConfig::liar_timeout`].
//! Proven blocks are applied through [`crate::replica::Replica::apply`], which runs
//! `bulwark_node::chain::Chain::finalize`: a block whose committed state digest or state hash
//! differs from the replica's halts the follower (with the reason kept for `/status`).
//! A validator that no longer holds the next block (pruned) is asked for its snapshot: it is
//! believed only if it hashes to the state hash that the proven block after it commits to, and
//! restores to the outcome digest that block names ([`check_snapshot`]); the replica then
//! restarts there (the read model's history starts there too).
//! The next block is asked for with a long poll ([`FollowerConfig::wait`]): the validator
//! answers the moment it has executed it, so the replica (and every Deribit client's order
//! result) trails the validators by a request's round trip rather than a polling interval. A
//! validator that is slow to answer, honest but behind or withholding, is hedged: after
//! [`FollowerConfig::hedge`] the next validator is asked as well and the first answer wins,
//! which also makes its sender the one asked first from then on.
//! Never: applies a block on one validator's word; holds more than
//! [`UNCERTIFIED_MAX`] unproven blocks; panics on what a validator sends.

use crate::replica::Replica;
use crate::source::{BlockSource, FetchError, Fetched};
use bulwark_node::block::ChainBlock;
use bulwark_node::sync::BlockFinalization;
use commonware_consensus::simplex::scheme::ed25519;
use commonware_consensus::types::Epoch;
use commonware_consensus::{Epochable as _, Heightable};
use commonware_cryptography::Digestible;
use commonware_cryptography::sha256::Digest;
use commonware_parallel::Sequential;
use rand_core::CryptoRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most blocks held awaiting a certified descendant.
pub const UNCERTIFIED_MAX: usize = 64;

/// Why a validator's answer was refused: each one is that validator lying (or broken).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Lie {
    #[error("served block {got} when asked for block {asked}")]
    WrongHeight { asked: u64, got: u64 },
    #[error("block {height} does not extend the previous block")]
    NotExtending { height: u64 },
    #[error("certificate of block {height} is for epoch {epoch}, not 0")]
    WrongEpoch { height: u64, epoch: u64 },
    #[error("certificate of block {height} does not verify against the validator set")]
    BadCertificate { height: u64 },
    #[error("certificate of block {height} finalizes another digest than the block's")]
    PayloadMismatch { height: u64 },
    #[error("more than {UNCERTIFIED_MAX} blocks served without a certificate")]
    TooManyUncertified,
}

/// The proof rule, and the unproven blocks awaiting a certified descendant.
pub struct Proof {
    verifier: ed25519::Scheme,
    uncertified: Vec<ChainBlock>,
}

impl Proof {
    pub fn new(verifier: ed25519::Scheme) -> Self {
        Self {
            verifier,
            uncertified: Vec::new(),
        }
    }

    /// The height to ask for next, after the replica's tip at `tip_height`.
    pub fn next_height(&self, tip_height: u64) -> u64 {
        tip_height + 1 + self.uncertified.len() as u64
    }

    /// Forgets unproven blocks (they came from a validator now distrusted).
    pub fn forget(&mut self) {
        self.uncertified.clear();
    }

    /// Offers a block fetched for [`Self::next_height`] on top of the replica's tip. Returns
    /// the blocks now proven, in height order (possibly none: the block awaits a certified
    /// descendant), or the lie. On a lie the unproven blocks are forgotten too.
    pub fn offer(
        &mut self,
        rng: &mut impl CryptoRng,
        tip_height: u64,
        tip_digest: Digest,
        fetched: Fetched,
    ) -> Result<Vec<ChainBlock>, Lie> {
        let result = self.check(rng, tip_height, tip_digest, fetched);
        if result.is_err() {
            self.forget();
        }
        result
    }

    fn check(
        &mut self,
        rng: &mut impl CryptoRng,
        tip_height: u64,
        tip_digest: Digest,
        fetched: Fetched,
    ) -> Result<Vec<ChainBlock>, Lie> {
        let asked = self.next_height(tip_height);
        let block = fetched.block;
        let height = block.height().get();
        if height != asked {
            return Err(Lie::WrongHeight { asked, got: height });
        }
        let previous = self.uncertified.last().map_or(tip_digest, |b| b.digest());
        if block.parent != previous {
            return Err(Lie::NotExtending { height });
        }
        match fetched.finalization {
            Some(finalization) => {
                check_certificate(rng, &self.verifier, &block, &finalization)?;
                let mut proven = std::mem::take(&mut self.uncertified);
                proven.push(block);
                Ok(proven)
            }
            None if self.uncertified.len() < UNCERTIFIED_MAX => {
                self.uncertified.push(block);
                Ok(Vec::new())
            }
            None => Err(Lie::TooManyUncertified),
        }
    }
}

/// Checks that `finalization` is the quorum's certificate over `block`'s digest.
pub fn check_certificate(
    rng: &mut impl CryptoRng,
    verifier: &ed25519::Scheme,
    block: &ChainBlock,
    finalization: &BlockFinalization,
) -> Result<(), Lie> {
    let height = block.height().get();
    if finalization.epoch() != Epoch::zero() {
        return Err(Lie::WrongEpoch {
            height,
            epoch: finalization.epoch().get(),
        });
    }
    if finalization.proposal.payload != block.digest() {
        return Err(Lie::PayloadMismatch { height });
    }
    if !finalization.verify(rng, verifier, &Sequential) {
        return Err(Lie::BadCertificate { height });
    }
    Ok(())
}

/// Why a validator's snapshot was refused: each one is that validator lying (or broken).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotLie {
    #[error("block {0} after the snapshot carries no state hash")]
    Uncommitted(u64),
    #[error("snapshot does not hash to the state hash block {0} commits to")]
    HashMismatch(u64),
    #[error("snapshot does not restore: {0}")]
    Restore(String),
    #[error("snapshot restores to height {restored}, served as {served}")]
    HeightMismatch { restored: u64, served: u64 },
    #[error("restored state's outcome digest differs from the one block {0} commits to")]
    DigestMismatch(u64),
    #[error("block after the snapshot: {0}")]
    Block(#[from] Lie),
}

/// Checks snapshot `bytes`, served as the state at `height`, against `next`: the proven block
/// `height + 1`, which commits to the state hash (snapshots are taken at heights the chain
/// commits after) and the outcome digest of the state after its parent.
pub fn check_snapshot(
    height: u64,
    bytes: &[u8],
    next: &ChainBlock,
) -> Result<bulwark_exchange::Exchange, SnapshotLie> {
    let block = next.height().get();
    let committed = next.state_hash.ok_or(SnapshotLie::Uncommitted(block))?;
    if bulwark_node::commitment::state_hash(bytes) != committed {
        return Err(SnapshotLie::HashMismatch(block));
    }
    let exchange = bulwark_exchange::Exchange::restore(bytes)
        .map_err(|e| SnapshotLie::Restore(e.to_string()))?;
    let restored = exchange.height().get();
    if restored != height || restored.checked_add(1) != Some(block) {
        return Err(SnapshotLie::HeightMismatch {
            restored,
            served: height,
        });
    }
    if exchange.state_digest() != next.state_digest {
        return Err(SnapshotLie::DigestMismatch(block));
    }
    Ok(exchange)
}

/// Why a bootstrap from a snapshot did not happen.
#[derive(Debug, thiserror::Error)]
enum BootstrapError {
    #[error("fetch failed: {0}")]
    Fetch(#[from] FetchError),
    #[error("the validator has no snapshot ahead of this replica")]
    NoSnapshot,
    #[error("the blocks after the snapshot are not finalized there yet")]
    NotYet,
    #[error(transparent)]
    Lie(#[from] SnapshotLie),
    #[error("a proven block after the snapshot does not apply: {0}")]
    Apply(#[from] bulwark_node::chain::FinalizeError),
    #[error("the bootstrap task failed: {0}")]
    Task(String),
}

/// Why applying blocks off the async workers failed.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Finalize(#[from] bulwark_node::chain::FinalizeError),
    #[error("the execution task failed: {0}")]
    Task(String),
}

/// Applies proven blocks on a blocking thread: execution (signature checks, matching, margin)
/// is CPU work that must not hold up the runtime's async workers, which a devnet shares with
/// its validators' consensus.
async fn apply_blocking(replica: &Arc<Replica>, blocks: Vec<ChainBlock>) -> Result<(), ApplyError> {
    if blocks.is_empty() {
        return Ok(());
    }
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || {
        for block in &blocks {
            replica.apply(block)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| ApplyError::Task(e.to_string()))?
}

/// Restarts `replica` from `source`'s snapshot, proven by the certified blocks after it.
async fn bootstrap(
    replica: &Arc<Replica>,
    source: &dyn BlockSource,
) -> Result<u64, BootstrapError> {
    let Some((height, bytes)) = source.snapshot().await? else {
        return Err(BootstrapError::NoSnapshot);
    };
    if height <= replica.tip().0 {
        return Err(BootstrapError::NoSnapshot);
    }
    // Block `height + 1` names the digest of block `height`; it, and that digest, are proven
    // once it (or a parent-linked descendant) carries a certificate.
    let first = source
        .fetch(height + 1, Duration::ZERO)
        .await?
        .ok_or(BootstrapError::NotYet)?;
    let parent = first.block.parent;
    let mut proof = Proof::new(replica.verifier().clone());
    let mut proven = proof
        .offer(&mut rand::rng(), height, parent, first)
        .map_err(SnapshotLie::from)?;
    while proven.is_empty() {
        let next = source
            .fetch(proof.next_height(height), Duration::ZERO)
            .await?
            .ok_or(BootstrapError::NotYet)?;
        proven = proof
            .offer(&mut rand::rng(), height, parent, next)
            .map_err(SnapshotLie::from)?;
    }
    // Hashing, restoring and replaying are CPU work: off the async workers.
    let task_replica = replica.clone();
    tokio::task::spawn_blocking(move || -> Result<(), BootstrapError> {
        let exchange = check_snapshot(height, &bytes, &proven[0])?;
        task_replica.restart_from(exchange, parent);
        for block in &proven {
            task_replica.apply(block)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| BootstrapError::Task(e.to_string()))??;
    Ok(replica.tip().0)
}

/// Follower settings.
#[derive(Copy, Clone, Debug)]
pub struct FollowerConfig {
    /// How long a validator is asked to hold the question for a block it has not finalized
    /// yet (a long poll: it answers the moment it has; at most the validators'
    /// `BLOCK_WAIT_MAX_MS`). Zero polls instead.
    pub wait: Duration,
    /// A validator that has not answered within this is not waited for alone: the next one is
    /// asked too, and the first answer is taken. Bounds what one slow or withholding
    /// validator costs each block (it stops being the one asked first once another answers).
    pub hedge: Duration,
    /// Wait this long before asking again when every validator answered at once that it has
    /// no next block yet (validators that predate long polls).
    pub poll: Duration,
    /// A validator caught lying is not asked again for this long.
    pub liar_timeout: Duration,
    /// A validator that failed to answer (network, 5xx) is skipped for this long.
    pub failure_backoff: Duration,
}

impl FollowerConfig {
    pub const DEFAULT: Self = Self {
        wait: Duration::from_secs(1),
        hedge: Duration::from_millis(250),
        poll: Duration::from_millis(50),
        liar_timeout: Duration::from_secs(60),
        failure_backoff: Duration::from_secs(1),
    };
}

/// One validator as the follower sees it.
struct Peer {
    source: Box<dyn BlockSource>,
    /// Not asked before this instant.
    benched_until: Option<Instant>,
    lies: u64,
}

/// Asks `peers[first]` for block `height`, letting it wait up to `config.wait`; if it has not
/// answered within `config.hedge`, asks `peers[second]` too. Returns the first block either
/// serves and whose it is (the other question is dropped). An answer without a block ("not
/// yet", or a failure) does not end the other's wait: a validator hedged in that says "not
/// yet" at once cannot cut short the question to one about to answer. When neither serves a
/// block, the answer returned is `first`'s.
async fn fetch_hedged(
    peers: &[Peer],
    first: usize,
    second: Option<usize>,
    height: u64,
    config: &FollowerConfig,
) -> (usize, Result<Option<Fetched>, FetchError>) {
    let mut asked = peers[first].source.fetch(height, config.wait);
    let Some(second) = second else {
        return (first, asked.await);
    };
    tokio::select! {
        answer = &mut asked => return (first, answer),
        () = tokio::time::sleep(config.hedge) => {}
    }
    let mut hedged = peers[second].source.fetch(height, config.wait);
    tokio::select! {
        answer = &mut asked => match answer {
            Ok(Some(_)) => (first, answer),
            failed => match hedged.await {
                served @ Ok(Some(_)) => (second, served),
                _ => (first, failed),
            },
        },
        answer = &mut hedged => match answer {
            Ok(Some(_)) => (second, answer),
            _ => (first, asked.await),
        },
    }
}

/// Follows the chain from `sources` into `replica` until the replica halts (a divergence) or
/// the process ends. Rotates to the next validator after any failure, lie or empty answer.
pub async fn run(
    replica: Arc<Replica>,
    sources: Vec<Box<dyn BlockSource>>,
    config: FollowerConfig,
) {
    if sources.is_empty() {
        replica.halt("no validators to follow".to_string());
        return;
    }
    let mut peers: Vec<Peer> = sources
        .into_iter()
        .map(|source| Peer {
            source,
            benched_until: None,
            lies: 0,
        })
        .collect();
    let mut proof = Proof::new(replica.verifier().clone());
    let mut current = 0usize;
    // Empty answers from every validator in a row: then wait `poll`.
    let mut empty_streak = 0usize;
    loop {
        if replica.halted().is_some() {
            return;
        }
        let now = Instant::now();
        // The next validator not benched, starting at `current`.
        let Some(index) = (0..peers.len())
            .map(|k| (current + k) % peers.len())
            .find(|&i| peers[i].benched_until.is_none_or(|until| until <= now))
        else {
            tokio::time::sleep(config.poll).await;
            continue;
        };
        let (tip_height, tip_digest) = replica.tip();
        let height = proof.next_height(tip_height);
        // Unproven blocks must be completed by the validator that served them: no second
        // validator is asked while any are held.
        let second = if proof.uncertified.is_empty() {
            (1..peers.len())
                .map(|k| (index + k) % peers.len())
                .find(|&i| peers[i].benched_until.is_none_or(|until| until <= now))
        } else {
            None
        };
        let (answered, fetched) = fetch_hedged(&peers, index, second, height, &config).await;
        current = answered;
        let now = Instant::now();
        let peer = &mut peers[answered];
        match fetched {
            Ok(Some(fetched)) => {
                empty_streak = 0;
                let offered = proof.offer(&mut rand::rng(), tip_height, tip_digest, fetched);
                match offered {
                    Ok(proven) => {
                        if let Err(error) = apply_blocking(&replica, proven).await {
                            tracing::error!(%error, "follower halted");
                            if replica.halted().is_none() {
                                replica.halt(error.to_string());
                            }
                            return;
                        }
                    }
                    Err(lie) => {
                        peer.lies += 1;
                        peer.benched_until = Some(now + config.liar_timeout);
                        tracing::warn!(validator = %peer.source.name(), %lie, lies = peer.lies,
                            "validator served a block without valid proof; not asking it for a while");
                        replica.record_lie(peer.source.name(), &lie.to_string());
                        current += 1;
                    }
                }
            }
            Ok(None) => {
                // Not finalized there yet. Unproven blocks must be completed by the same
                // validator (another may hold a different, equally unproven, ancestry view).
                if !proof.uncertified.is_empty() {
                    proof.forget();
                }
                empty_streak += 1;
                current += 1;
                if empty_streak >= peers.len() {
                    empty_streak = 0;
                    tokio::time::sleep(config.poll).await;
                }
            }
            Err(error) => {
                proof.forget();
                if let FetchError::Pruned(_) = error {
                    tracing::warn!(validator = %peer.source.name(), height,
                        "validator no longer holds the block this gateway needs; trying its snapshot");
                    match bootstrap(&replica, peer.source.as_ref()).await {
                        Ok(height) => {
                            tracing::info!(validator = %peer.source.name(), height,
                                "replica restarted from a snapshot proven by the chain");
                            continue;
                        }
                        Err(BootstrapError::Lie(lie)) => {
                            peer.lies += 1;
                            peer.benched_until = Some(now + config.liar_timeout);
                            tracing::warn!(validator = %peer.source.name(), %lie,
                                "validator served a snapshot without valid proof");
                            replica.record_lie(peer.source.name(), &lie.to_string());
                            current += 1;
                            continue;
                        }
                        Err(BootstrapError::Apply(error)) => {
                            tracing::error!(%error, "follower halted");
                            return;
                        }
                        Err(BootstrapError::Task(error)) => {
                            tracing::error!(%error, "bootstrap task failed; follower stops");
                            replica.halt(error);
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(validator = %peer.source.name(), %error, "no snapshot bootstrap");
                        }
                    }
                } else {
                    tracing::debug!(validator = %peer.source.name(), %error, "fetch failed");
                }
                peer.benched_until = Some(now + config.failure_backoff);
                current += 1;
            }
        }
    }
}
