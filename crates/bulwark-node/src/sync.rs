//! State sync: a validator that is new, wiped, or too far behind its peers fetches a recent
//! snapshot from them instead of replaying the chain from genesis (which peers have pruned).
//!
//! Owns: the snapshot protocol on its own p2p channel, both sides of it.
//! - A serving validator answers a manifest request with its newest snapshot (the state after
//!   height `H`, a multiple of the state-hash interval) described by its length and its
//!   chunks' SHA-256, together with block `H + 1` and that block's finalization certificate;
//!   then serves the snapshot in chunks.
//! - A syncing validator trusts nothing a peer says until it checks it: the finalization must
//!   carry a quorum of the validators' signatures over block `H + 1`'s digest, which the block
//!   must hash to; the chunk list must hash to the state hash block `H + 1` commits to (see
//!   [`crate::commitment`]), so the snapshot's bytes are fixed by the finalized chain and not
//!   by the peer; every chunk must hash to its entry on arrival; and the restored state must
//!   have height `H` and the outcome chain block `H + 1` commits to. Only then does it install
//!   the state, persist it, and start marshal and simplex from that finalization, so marshal
//!   delivers from `H + 1` on.
//! - Blame: a peer whose offer fails a check, or who sends a chunk that does not hash to its
//!   entry, has lied (an honest peer never does either) and is blocked. A peer that offered a
//!   snapshot and then stays silent past the timeout when asked for one of its chunks, while
//!   another peer offering the same snapshot sends that chunk in time, is asked nothing more
//!   in that fetch but not blocked: silence proves nothing (a lossy link drops an honest
//!   peer's answer; blocking on it once cut a wiped validator off from all three of its
//!   peers, `sweep-200` seed 1379), and skipping bounds what a withholder costs to one timeout
//!   a fetch. An honest peer that replaced its snapshot answers "no longer held", which only
//!   skips it. Offers are ranked by their verified height.
//! - Every manifest answer also shows the server's newest finalized block with its
//!   finalization (checked like an offer's). A validator that lost its consensus journal
//!   starts simplex from one proposed since it started, above the snapshot marshal starts
//!   from, asking again ([`newest_finalized`]) while it waits for one.
//! - While running: the same actor watches the node's progress. When consensus reports
//!   finalized heights more than `threshold` above the executed height and either execution
//!   has not advanced for `stall` (marshal asks peers for blocks they do not serve) or the gap
//!   exceeds what peers are configured to keep (`archive_retention` plus a snapshot
//!   interval), it runs the same
//!   [`fetch`] for a snapshot above the executed height and hands the [`Synced`] state to the
//!   executor, which installs it and moves marshal's floor to it (see
//!   [`crate::executor::Executor`]). Consensus, marshal and the API keep running throughout.
//!
//! - Serving is budgeted per peer ([`AnswerBudget`]): a peer asking again and again for what
//!   it was already sent (a dozen bytes a request, a chunk or two blocks an answer) gets
//!   silence once past twice the snapshot a minute, or 8 manifests and newest blocks a second.
//!
//! Never: lets a peer make it allocate more than `snapshot_bytes_max` for a snapshot or more
//! than a chunk per message; waits forever (every request has a deadline and a bounded number
//! of attempts; a cluster with no snapshot anywhere starts from genesis); builds a [`Synced`]
//! anywhere but at the end of [`fetch`]'s checks (its fields are private to this module, so
//! nothing else can hand the executor an unverified state); retries a failed runtime sync
//! sooner than `stall` later; falls back to genesis while running.

use crate::block::{BlockCodec, ChainBlock};
use crate::commitment::{self, StateHash};
use crate::executor::MarshalMailbox;
use crate::shared::{Shared, lock};
use bulwark_exchange::Exchange;
use bulwark_types::BlockLimits;
use bytes::BufMut;
use commonware_codec::{
    Buf, Encode, EncodeSize, Error as CodecError, FixedSize as _, RangeCfg, Read, ReadExt, Write,
};
use commonware_consensus::BoundedBlock as _;
use commonware_consensus::simplex::scheme::ed25519;
use commonware_consensus::simplex::types::Finalization;
use commonware_consensus::types::{Epoch, Height};
use commonware_consensus::{Epochable as _, Heightable, Viewable as _};
use commonware_cryptography::certificate::{Scheme as _, Verifier as _};
use commonware_cryptography::ed25519::PublicKey;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digestible, Hasher, Sha256};
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Handle, Spawner, Supervisor};
use commonware_utils::N3f1;
use commonware_utils::ordered::Quorum as _;
use rand_core::CryptoRng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub use crate::commitment::CHUNK_BYTES;

/// Most chunks a manifest may list: snapshots up to 1 GiB.
pub const CHUNKS_MAX: usize = 4_096;

/// How often a manifest request goes out again to peers that have not answered it.
const MANIFEST_RESEND: Duration = Duration::from_millis(250);

/// How long the last f peers get to answer a manifest request once all the others have: a
/// silent peer (crashed, or Byzantine) costs the start this, not a whole `timeout` per attempt.
const MANIFEST_GRACE: Duration = Duration::from_millis(500);

/// How long a peer's chunk budget takes to refill from empty: a peer may fetch the snapshot
/// twice a minute.
pub const CHUNK_REFILL: Duration = Duration::from_secs(60);

/// Most manifest and newest-block requests a server answers one peer at once, and a second
/// after that (an honest syncer asks for a manifest every 250 ms until it is answered, and
/// for the newest block every 500 ms while it waits).
pub const REQUESTS_BURST: u64 = 16;
pub const REQUESTS_PER_S: u64 = 8;

/// Most peers whose budget a server tracks at once (the channel admits only the validators;
/// the bound holds whatever the set's size).
const ANSWER_PEERS_MAX: usize = 1_024;

/// What one peer may take in snapshot-channel answers, per peer. Chunks: a bucket of bytes
/// holding twice the snapshot, refilled in [`CHUNK_REFILL`]: an honest syncing peer takes the
/// snapshot once (and a retry) and never waits on it. Manifests and newest blocks (each
/// carries up to two blocks): a bucket of [`REQUESTS_BURST`] answers refilled at
/// [`REQUESTS_PER_S`]. Without it, a peer asking again and again (a dozen bytes a request)
/// drew an answer per request up to the channel's quota (256 a second in `bulwark node`):
/// 64 MiB a second of chunks, or two blocks an answer. Unanswered requests are silence, which
/// an honest syncer already reads as "ask another peer".
#[derive(Debug, Default)]
pub struct AnswerBudget {
    /// Per peer: chunk bytes left, requests left (in thousandths), and when both were last
    /// brought up to date.
    peers: BTreeMap<PublicKey, Bucket>,
}

#[derive(Debug, Copy, Clone)]
struct Bucket {
    chunk_bytes: u64,
    requests_milli: u64,
    at: std::time::SystemTime,
}

/// What an answer draws on.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum Draw {
    /// A chunk of this many bytes.
    Chunk(u64),
    /// A manifest or a newest block.
    Request,
}

impl AnswerBudget {
    /// The chunk bucket's size for a server whose snapshot is `snapshot_len` bytes.
    pub fn chunk_capacity(snapshot_len: u64) -> u64 {
        snapshot_len.saturating_mul(2).max(CHUNK_BYTES as u64)
    }

    /// Whether `peer` may take `draw` now (its chunk bucket holding `chunk_capacity`); if
    /// so, it is charged. A chunk larger than what is left empties the bucket: a peer past
    /// its budget waits a refill, and the server builds nothing for it meanwhile.
    pub fn take(
        &mut self,
        peer: &PublicKey,
        now: std::time::SystemTime,
        draw: Draw,
        chunk_capacity: u64,
    ) -> bool {
        let Some(bucket) = self.refilled(peer, now, chunk_capacity) else {
            return false;
        };
        match draw {
            Draw::Chunk(bytes) if bucket.chunk_bytes < bytes => {
                bucket.chunk_bytes = 0;
                false
            }
            Draw::Chunk(bytes) => {
                bucket.chunk_bytes -= bytes;
                true
            }
            Draw::Request if bucket.requests_milli < 1_000 => false,
            Draw::Request => {
                bucket.requests_milli -= 1_000;
                true
            }
        }
    }

    /// Whether `peer` has nothing left for `draw` now (any chunk, or a request): the server
    /// need not build its answer.
    pub fn exhausted(
        &mut self,
        peer: &PublicKey,
        now: std::time::SystemTime,
        draw: Draw,
        chunk_capacity: u64,
    ) -> bool {
        self.refilled(peer, now, chunk_capacity)
            .is_none_or(|bucket| match draw {
                Draw::Chunk(_) => bucket.chunk_bytes == 0,
                Draw::Request => bucket.requests_milli < 1_000,
            })
    }

    /// `peer`'s buckets brought up to `now`; `None` when the server tracks as many peers as
    /// it may and none of them has been idle long enough to be full again.
    fn refilled(
        &mut self,
        peer: &PublicKey,
        now: std::time::SystemTime,
        chunk_capacity: u64,
    ) -> Option<&mut Bucket> {
        if !self.peers.contains_key(peer) && self.peers.len() >= ANSWER_PEERS_MAX {
            // Peers idle for a whole refill are full again: forgetting them changes nothing.
            self.peers
                .retain(|_, b| now.duration_since(b.at).unwrap_or_default() < CHUNK_REFILL);
            if self.peers.len() >= ANSWER_PEERS_MAX {
                return None;
            }
        }
        let bucket = self.peers.entry(peer.clone()).or_insert(Bucket {
            chunk_bytes: chunk_capacity,
            requests_milli: REQUESTS_BURST * 1_000,
            at: now,
        });
        let elapsed_ms = now
            .duration_since(bucket.at)
            .unwrap_or_default()
            .as_millis();
        let chunk_refill = u128::from(chunk_capacity) * elapsed_ms / CHUNK_REFILL.as_millis();
        bucket.chunk_bytes = u64::try_from(u128::from(bucket.chunk_bytes) + chunk_refill)
            .unwrap_or(u64::MAX)
            .min(chunk_capacity);
        let request_refill = u128::from(REQUESTS_PER_S) * elapsed_ms;
        bucket.requests_milli = u64::try_from(u128::from(bucket.requests_milli) + request_refill)
            .unwrap_or(u64::MAX)
            .min(REQUESTS_BURST * 1_000);
        // A clock stepping back refills nothing now and counts nothing twice later.
        bucket.at = bucket.at.max(now);
        Some(bucket)
    }
}

/// A finalization of a Bulwark block.
pub type BlockFinalization = Finalization<ed25519::Scheme, Digest>;

/// The newest snapshot this validator holds, as it serves it.
#[derive(Clone, Debug)]
pub struct ServedSnapshot {
    /// Height of the state.
    pub height: u64,
    /// `Exchange::snapshot` bytes.
    pub bytes: Arc<Vec<u8>>,
    /// SHA-256 of each chunk.
    pub chunk_hashes: Arc<Vec<Digest>>,
    /// The state hash: what block `height + 1` commits to.
    pub hash: StateHash,
}

impl ServedSnapshot {
    pub fn new(height: u64, bytes: Vec<u8>) -> Self {
        let chunk_hashes = commitment::chunk_hashes(&bytes);
        let hash = commitment::root(bytes.len() as u64, &chunk_hashes);
        Self {
            height,
            bytes: Arc::new(bytes),
            chunk_hashes: Arc::new(chunk_hashes),
            hash,
        }
    }
}

/// Describes a snapshot on offer and proves which state it must restore to.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Height of the state in the snapshot.
    pub height: u64,
    pub snapshot_len: u64,
    /// SHA-256 of each chunk; their root is the state hash `next_block` commits to.
    pub chunk_hashes: Vec<Digest>,
    /// Block `height + 1`: it commits to the snapshot's state hash and state digest.
    pub next_block: ChainBlock,
    /// Finalization of `next_block`.
    pub finalization: BlockFinalization,
}

/// The messages of the snapshot channel.
#[derive(Clone, Debug)]
pub enum Message {
    ManifestRequest,
    /// The newest snapshot on offer (`None`: none yet) and the newest finalized block (`None`:
    /// nothing finalized yet, or the peer is syncing), so one round tells a validator that
    /// lost its consensus journal both where to take its state and where consensus stands.
    Manifest(Option<Box<Manifest>>, Option<Arc<NewestFinalized>>),
    ChunkRequest {
        height: u64,
        index: u32,
    },
    /// `None`: the peer no longer holds a snapshot at that height.
    Chunk {
        height: u64,
        index: u32,
        bytes: Option<Vec<u8>>,
    },
    /// Asks for the peer's newest finalized block (see [`newest_finalized`]).
    NewestRequest,
    /// `None`: nothing finalized yet (a chain that has not started), or the peer is syncing.
    Newest(Option<Arc<NewestFinalized>>),
}

/// A peer's newest finalized block with the finalization that proves it: what a validator
/// that lost its consensus journal starts consensus from (see [`newest_finalized`]).
#[derive(Clone, Debug)]
pub struct NewestFinalized {
    pub block: ChainBlock,
    pub finalization: BlockFinalization,
}

impl NewestFinalized {
    /// Whether the finalization verifies (a quorum of this epoch's validators signed it) and
    /// names `block`.
    pub fn check(
        &self,
        rng: &mut impl CryptoRng,
        scheme: &ed25519::Scheme,
    ) -> Result<(), OfferError> {
        if self.finalization.epoch() != Epoch::zero() {
            return Err(OfferError::WrongEpoch);
        }
        if !self.finalization.verify(rng, scheme, &Sequential) {
            return Err(OfferError::BadFinalization);
        }
        if self.finalization.proposal.payload != self.block.digest() {
            return Err(OfferError::BlockMismatch);
        }
        Ok(())
    }
}

impl Write for Message {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Message::ManifestRequest => 0u8.write(buf),
            Message::Manifest(manifest, newest) => {
                1u8.write(buf);
                match manifest {
                    None => 0u8.write(buf),
                    Some(m) => {
                        1u8.write(buf);
                        m.height.write(buf);
                        m.snapshot_len.write(buf);
                        m.chunk_hashes.write(buf);
                        m.next_block.write(buf);
                        m.finalization.write(buf);
                    }
                }
                write_newest(newest, buf);
            }
            Message::ChunkRequest { height, index } => {
                2u8.write(buf);
                height.write(buf);
                index.write(buf);
            }
            Message::Chunk {
                height,
                index,
                bytes,
            } => {
                3u8.write(buf);
                height.write(buf);
                index.write(buf);
                bytes.write(buf);
            }
            Message::NewestRequest => 4u8.write(buf),
            Message::Newest(newest) => {
                5u8.write(buf);
                write_newest(newest, buf);
            }
        }
    }
}

fn write_newest(newest: &Option<Arc<NewestFinalized>>, buf: &mut impl BufMut) {
    match newest {
        None => 0u8.write(buf),
        Some(n) => {
            1u8.write(buf);
            n.block.write(buf);
            n.finalization.write(buf);
        }
    }
}

fn newest_size(newest: &Option<Arc<NewestFinalized>>) -> usize {
    1 + newest
        .as_ref()
        .map_or(0, |n| n.block.encode_size() + n.finalization.encode_size())
}

fn read_newest(
    buf: &mut impl Buf,
    limits: &BlockLimits,
    certificate: &<BlockFinalization as Read>::Cfg,
) -> Result<Option<Arc<NewestFinalized>>, CodecError> {
    match u8::read(buf)? {
        0 => Ok(None),
        1 => {
            let block = ChainBlock::read_cfg(buf, &BlockCodec::uncached(*limits))?;
            let finalization = BlockFinalization::read_cfg(buf, certificate)?;
            Ok(Some(Arc::new(NewestFinalized {
                block,
                finalization,
            })))
        }
        _ => Err(CodecError::Invalid("sync::Message", "newest presence")),
    }
}

impl EncodeSize for Message {
    fn encode_size(&self) -> usize {
        1 + match self {
            Message::ManifestRequest => 0,
            Message::Manifest(None, newest) => 1 + newest_size(newest),
            Message::Manifest(Some(m), newest) => {
                1 + 8
                    + 8
                    + m.chunk_hashes.encode_size()
                    + m.next_block.encode_size()
                    + m.finalization.encode_size()
                    + newest_size(newest)
            }
            Message::ChunkRequest { .. } => 8 + 4,
            Message::Chunk { bytes, .. } => 8 + 4 + bytes.encode_size(),
            Message::NewestRequest => 0,
            Message::Newest(newest) => newest_size(newest),
        }
    }
}

impl Read for Message {
    type Cfg = (BlockLimits, <BlockFinalization as Read>::Cfg);
    fn read_cfg(buf: &mut impl Buf, (limits, certificate): &Self::Cfg) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(Message::ManifestRequest),
            1 => match u8::read(buf)? {
                0 => Ok(Message::Manifest(
                    None,
                    read_newest(buf, limits, certificate)?,
                )),
                1 => {
                    let height = u64::read(buf)?;
                    let snapshot_len = u64::read(buf)?;
                    let chunk_hashes =
                        Vec::<Digest>::read_cfg(buf, &(RangeCfg::new(1..=CHUNKS_MAX), ()))?;
                    let next_block = ChainBlock::read_cfg(buf, &BlockCodec::uncached(*limits))?;
                    let finalization = BlockFinalization::read_cfg(buf, certificate)?;
                    let manifest = Box::new(Manifest {
                        height,
                        snapshot_len,
                        chunk_hashes,
                        next_block,
                        finalization,
                    });
                    Ok(Message::Manifest(
                        Some(manifest),
                        read_newest(buf, limits, certificate)?,
                    ))
                }
                _ => Err(CodecError::Invalid("sync::Message", "manifest presence")),
            },
            2 => Ok(Message::ChunkRequest {
                height: u64::read(buf)?,
                index: u32::read(buf)?,
            }),
            3 => {
                let height = u64::read(buf)?;
                let index = u32::read(buf)?;
                let bytes =
                    Option::<Vec<u8>>::read_cfg(buf, &(RangeCfg::new(0..=CHUNK_BYTES), ()))?;
                Ok(Message::Chunk {
                    height,
                    index,
                    bytes,
                })
            }
            4 => Ok(Message::NewestRequest),
            5 => Ok(Message::Newest(read_newest(buf, limits, certificate)?)),
            _ => Err(CodecError::Invalid("sync::Message", "tag")),
        }
    }
}

/// Largest snapshot-channel message.
pub fn max_message_size(limits: &BlockLimits, participants: u32) -> usize {
    let certificate = simplex_certificate_bytes_max(participants);
    let block = ChainBlock::max_encode_size(&BlockCodec::uncached(*limits));
    // A manifest and a newest finalized block.
    let manifest =
        2 + 8 + 8 + 5 + CHUNKS_MAX * Digest::SIZE + block + certificate + 1 + block + certificate;
    let chunk = 1 + 8 + 4 + 1 + 5 + CHUNK_BYTES;
    manifest.max(chunk)
}

fn simplex_certificate_bytes_max(participants: u32) -> usize {
    // The finalization is the largest certificate simplex sends.
    commonware_consensus::simplex::max_payload_size::<ed25519::Scheme, Digest>(participants)
}

/// State-sync settings.
#[derive(Copy, Clone, Debug)]
pub struct SyncConfig {
    /// Sync from a peer's snapshot only when it is this many blocks ahead of the local state
    /// (closer than that, replay and backfill are cheaper).
    pub threshold: u64,
    /// Rounds of manifest requests before giving up (an answer of "no snapshot" from all but
    /// f peers, after a short grace for the rest, also ends the search).
    pub attempts: u32,
    /// How long to wait for answers to one request.
    pub timeout: Duration,
    /// While running: how long execution must make no progress, with consensus reporting
    /// heights more than `threshold` ahead, before this node syncs from a snapshot (backfill
    /// has failed: peers pruned what it needs); also the wait between runtime attempts.
    pub stall: Duration,
}

/// A snapshot fetched from a peer and checked against the finalized chain. Built only by
/// [`fetch`] after every check passed: its fields are private to this module.
pub struct Synced {
    exchange: Exchange,
    /// Digest of the block the snapshot's state follows (block `H`).
    block_digest: Digest,
    /// Finalization of block `H + 1`: where marshal and simplex start.
    finalization: BlockFinalization,
}

impl Synced {
    /// Height `H` of the synced state.
    pub fn height(&self) -> u64 {
        self.exchange.height().get()
    }

    /// Time of block `H`, milliseconds.
    pub fn time_ms(&self) -> u64 {
        self.exchange.time().millis()
    }

    /// The state, the digest of block `H`, and the finalization of block `H + 1`.
    pub fn into_parts(self) -> (Exchange, Digest, BlockFinalization) {
        (self.exchange, self.block_digest, self.finalization)
    }
}

/// Why a peer's offer was refused.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("finalization does not verify")]
    BadFinalization,
    #[error("finalization is for another epoch")]
    WrongEpoch,
    #[error("block does not hash to the finalized digest")]
    BlockMismatch,
    #[error("block height {block} does not follow snapshot height {snapshot}")]
    HeightMismatch { block: u64, snapshot: u64 },
    #[error("snapshot of {0} bytes exceeds the bound")]
    TooLarge(u64),
    #[error("block {0} commits to no state hash: no snapshot can be checked against it")]
    Uncommitted(u64),
    #[error("manifest lists {listed} chunks for a snapshot of {expected}")]
    ChunkCount { listed: usize, expected: u64 },
    #[error("the manifest's chunks do not hash to the state hash the finalized block commits to")]
    HashMismatch,
    #[error("snapshot does not restore: {0}")]
    Restore(#[from] bulwark_exchange::SnapshotError),
    #[error("restored state at height {restored} disagrees with the committed digest")]
    StateMismatch { restored: u64 },
}

/// Checks a manifest's proof: the finalization verifies and names `next_block`.
pub fn check_manifest(
    rng: &mut impl CryptoRng,
    scheme: &ed25519::Scheme,
    manifest: &Manifest,
    snapshot_bytes_max: u64,
) -> Result<(), OfferError> {
    let finalization = &manifest.finalization;
    if finalization.epoch() != Epoch::zero() {
        return Err(OfferError::WrongEpoch);
    }
    if !finalization.verify(rng, scheme, &Sequential) {
        return Err(OfferError::BadFinalization);
    }
    if finalization.proposal.payload != manifest.next_block.digest() {
        return Err(OfferError::BlockMismatch);
    }
    let block = manifest.next_block.height().get();
    if manifest.height.checked_add(1) != Some(block) {
        return Err(OfferError::HeightMismatch {
            block,
            snapshot: manifest.height,
        });
    }
    let Some(committed) = manifest.next_block.state_hash else {
        return Err(OfferError::Uncommitted(block));
    };
    let expected = commitment::chunk_count(manifest.snapshot_len);
    if manifest.chunk_hashes.len() as u64 != expected {
        return Err(OfferError::ChunkCount {
            listed: manifest.chunk_hashes.len(),
            expected,
        });
    }
    if commitment::root(manifest.snapshot_len, &manifest.chunk_hashes) != committed {
        return Err(OfferError::HashMismatch);
    }
    if manifest.snapshot_len > snapshot_bytes_max {
        return Err(OfferError::TooLarge(manifest.snapshot_len));
    }
    Ok(())
}

impl OfferError {
    /// Whether only a lying peer sends such an offer (an honest one never does): it is
    /// blocked. An offer too large for this node's bound is not a lie.
    pub fn is_a_lie(&self) -> bool {
        !matches!(self, OfferError::TooLarge(_))
    }
}

/// Whether `bytes` is chunk `index` of the snapshot `manifest` describes.
pub fn chunk_valid(manifest: &Manifest, index: usize, bytes: &[u8]) -> bool {
    let len = manifest.snapshot_len as usize;
    let expected = CHUNK_BYTES.min(len.saturating_sub(index * CHUNK_BYTES));
    bytes.len() == expected
        && manifest
            .chunk_hashes
            .get(index)
            .is_some_and(|hash| *hash == Sha256::hash(&[bytes]))
}

/// Checks assembled snapshot bytes against a checked manifest and restores them.
pub fn restore_offer(manifest: &Manifest, bytes: &[u8]) -> Result<Exchange, OfferError> {
    if Some(commitment::state_hash(bytes)) != manifest.next_block.state_hash {
        return Err(OfferError::HashMismatch);
    }
    let exchange = Exchange::restore(bytes)?;
    let restored = exchange.height().get();
    if restored != manifest.height || exchange.state_digest() != manifest.next_block.state_digest {
        return Err(OfferError::StateMismatch { restored });
    }
    Ok(exchange)
}

/// What a starting validator learned from its peers' answers about where the chain stands.
#[derive(Debug, Default)]
pub struct PeersShown {
    /// The highest newest finalized block a peer showed whose finalization checks.
    pub newest: Option<NewestFinalized>,
    /// Peers that answered the last round of requests. Silence proves nothing (a cut link,
    /// a peer down), so only answers count as a peer's word: "nothing is finalized" is
    /// believed from all but f peers answering so ([`answers_enough`]), never from silence.
    pub answered: usize,
}

/// Asks peers for their newest snapshot and, if one is more than `threshold` blocks ahead
/// of `local_height`, fetches, checks and restores it. Peers caught lying are blocked. The
/// highest of the newest finalized blocks the peers showed with their answers that checks
/// goes into `shown.newest` (kept if none is higher), and how many answered the last round
/// into `shown.answered`.
#[allow(clippy::too_many_arguments)]
pub async fn fetch<E, S, R, B>(
    context: &mut E,
    sender: &mut S,
    receiver: &mut R,
    blocker: &mut B,
    scheme: &ed25519::Scheme,
    limits: BlockLimits,
    snapshot_bytes_max: u64,
    local_height: u64,
    config: SyncConfig,
    shown: &mut PeersShown,
) -> Option<Synced>
where
    E: Clock + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let cfg = (limits, scheme.certificate_codec_config());
    // An offer missed by not waiting for the last f peers is not lost: a running node that
    // falls far behind syncs then (`RuntimeSync`).
    let enough = answers_enough(scheme);
    for attempt in 0..config.attempts {
        // 1. Manifests from whoever answers in time.
        let mut offers: BTreeMap<PublicKey, Box<Manifest>> = BTreeMap::new();
        let answered = ask_everyone(
            context,
            sender,
            receiver,
            &cfg,
            scheme,
            Message::ManifestRequest,
            config.timeout,
            |context, peer, message| match message {
                Message::Manifest(None, newest) => {
                    keep_newest(context, scheme, blocker, peer, newest, &mut shown.newest);
                    true
                }
                Message::Manifest(Some(manifest), newest) => {
                    keep_newest(
                        context,
                        scheme,
                        blocker,
                        peer.clone(),
                        newest,
                        &mut shown.newest,
                    );
                    match check_manifest(context, scheme, &manifest, snapshot_bytes_max) {
                        Ok(()) => {
                            offers.insert(peer, manifest);
                        }
                        Err(error) if error.is_a_lie() => {
                            tracing::warn!(?peer, %error, "forged snapshot offer; blocking the peer");
                            let _ = blocker.block(peer);
                        }
                        Err(error) => tracing::warn!(?peer, %error, "refused a snapshot offer"),
                    }
                    true
                }
                _ => false,
            },
        )
        .await;
        shown.answered = answered;
        // Ranked by verified height: every offer left has a finalized next block.
        let best = offers.values().map(|m| m.height).max();
        let Some(height) = best else {
            if answered >= enough {
                tracing::info!(
                    answered,
                    "no peer holds a snapshot; starting from local state"
                );
                return None;
            }
            tracing::info!(attempt, answered, "no snapshot offer yet");
            continue;
        };
        if height <= local_height.saturating_add(config.threshold) {
            tracing::info!(
                height,
                local_height,
                "peers' snapshots are not far enough ahead to sync"
            );
            return None;
        }
        // 2. Chunks, from any peer offering that height: the finalized block fixes the bytes,
        // so every honest offer at one height lists the same chunks.
        let manifest = offers
            .values()
            .find(|m| m.height == height)
            .expect("best exists")
            .clone();
        let sources: Vec<PublicKey> = offers
            .iter()
            .filter(|(_, m)| m.height == height)
            .map(|(p, _)| p.clone())
            .collect();
        match fetch_chunks(
            context,
            sender,
            receiver,
            blocker,
            &cfg,
            &manifest,
            &sources,
            config.timeout,
        )
        .await
        {
            Some(bytes) => match restore_offer(&manifest, &bytes) {
                Ok(exchange) => {
                    tracing::info!(height, "state synced from peers' snapshot");
                    return Some(Synced {
                        exchange,
                        block_digest: manifest.next_block.parent,
                        finalization: manifest.finalization,
                    });
                }
                // Every chunk matched the committed hash: these are the bytes the network
                // committed to, so no peer is to blame; this build cannot restore them.
                Err(error) => tracing::error!(%error, height, "committed snapshot refused"),
            },
            None => tracing::info!(height, "snapshot chunks did not arrive; retrying"),
        }
    }
    tracing::warn!("state sync gave up; starting from local state");
    None
}

/// Asks every peer for its newest finalized block and keeps in `shown.newest` the highest one
/// whose finalization verifies and names it (left as it is if no peer shows a higher one:
/// none has finalized anything, or none answered in `timeout`), and in `shown.answered` how
/// many answered. Waits as [`fetch`] waits for manifests: for every peer, or for all but f
/// and a short grace. A peer whose answer fails the check has lied and is blocked; a silent
/// one is not.
///
/// A validator that lost its consensus journal starts simplex from such a finalization of a
/// block proposed after it started (see `engine::JOURNAL_LOST_WAIT`): no view it voted in
/// before the loss is open any more.
#[allow(clippy::too_many_arguments)]
pub async fn newest_finalized<E, S, R, B>(
    context: &mut E,
    sender: &mut S,
    receiver: &mut R,
    blocker: &mut B,
    scheme: &ed25519::Scheme,
    limits: BlockLimits,
    timeout: Duration,
    shown: &mut PeersShown,
) where
    E: Clock + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let cfg = (limits, scheme.certificate_codec_config());
    shown.answered = ask_everyone(
        context,
        sender,
        receiver,
        &cfg,
        scheme,
        Message::NewestRequest,
        timeout,
        |context, peer, message| match message {
            Message::Newest(newest) => {
                keep_newest(context, scheme, blocker, peer, newest, &mut shown.newest);
                true
            }
            _ => false,
        },
    )
    .await;
}

/// All the other validators but f. With n = 3f + 1, at most f of the others are faulty: once
/// all but f have answered, at least one honest answer is in (f >= 1), and waiting longer for
/// the rest only lets a silent peer hold this node's start.
pub fn answers_enough(scheme: &ed25519::Scheme) -> usize {
    let others = scheme.participants().len().saturating_sub(1);
    others - scheme.participants().max_faults::<N3f1>() as usize
}

/// Sends `request` to every other validator, again every `MANIFEST_RESEND` to those that have
/// not answered (at startup the connections are still being dialled, and a request sent
/// before a peer is connected is lost), and hands each peer's first answer to `answer`, which
/// says whether the message was an answer to `request` at all. Stops when every peer has
/// answered, or all but f have and the rest had `MANIFEST_GRACE` more, or at `timeout`.
/// Returns how many peers answered.
#[allow(clippy::too_many_arguments)]
async fn ask_everyone<E, S, R>(
    context: &mut E,
    sender: &mut S,
    receiver: &mut R,
    cfg: &<Message as Read>::Cfg,
    scheme: &ed25519::Scheme,
    request: Message,
    timeout: Duration,
    mut answer: impl FnMut(&mut E, PublicKey, Message) -> bool,
) -> usize
where
    E: Clock + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let others = scheme.participants().len().saturating_sub(1);
    let enough = answers_enough(scheme);
    let request = request.encode();
    let mut answered_by: BTreeSet<PublicKey> = BTreeSet::new();
    let deadline = context.current() + timeout;
    let mut resend_at = context.current();
    // When all but f had answered, plus the grace the rest get.
    let mut grace_end: Option<std::time::SystemTime> = None;
    while answered_by.len() < others {
        let now = context.current();
        if answered_by.len() >= enough {
            let end = *grace_end.get_or_insert(now + MANIFEST_GRACE);
            if now >= end {
                break;
            }
        }
        if now >= deadline {
            break;
        }
        if now >= resend_at {
            let me = scheme.me().map(|m| usize::from(m.index()));
            let waiting: Vec<PublicKey> = scheme
                .participants()
                .iter()
                .enumerate()
                .filter(|(i, p)| Some(*i) != me && !answered_by.contains(*p))
                .map(|(_, p)| p.clone())
                .collect();
            sender.send(Recipients::Some(waiting), request.clone(), false);
            resend_at = now + MANIFEST_RESEND;
        }
        let until = grace_end
            .map_or(resend_at, |end| resend_at.min(end))
            .min(deadline);
        let Some((peer, message)) = receive(context, sender, receiver, cfg, until).await else {
            continue;
        };
        if answered_by.contains(&peer) {
            continue;
        }
        if answer(context, peer.clone(), message) {
            answered_by.insert(peer);
        }
    }
    answered_by.len()
}

/// Keeps `shown` (a peer's newest finalized block) in `best` if it checks and is higher;
/// blocks the peer if it does not check (a finalization is a quorum's signatures: only a liar
/// shows a bad one).
fn keep_newest<B: Blocker<PublicKey = PublicKey>>(
    rng: &mut impl CryptoRng,
    scheme: &ed25519::Scheme,
    blocker: &mut B,
    peer: PublicKey,
    shown: Option<Arc<NewestFinalized>>,
    best: &mut Option<NewestFinalized>,
) {
    let Some(shown) = shown else { return };
    match shown.check(rng, scheme) {
        Ok(()) => {
            if best
                .as_ref()
                .is_none_or(|b| b.finalization.view() < shown.finalization.view())
            {
                *best = Some(Arc::unwrap_or_clone(shown));
            }
        }
        Err(error) => {
            tracing::warn!(?peer, %error, "forged newest finalization; blocking the peer");
            let _ = blocker.block(peer);
        }
    }
}

/// Fetches every chunk of `manifest`, each checked against its hash on arrival. Chunk `i` is
/// asked of the sources in turn starting from source `i` (so load spreads and one slow peer
/// does not decide), twice around; a source that sends a chunk that does not hash to its
/// entry is blocked and asked nothing more. One that stayed silent on a chunk another source
/// then sent within the timeout is asked nothing more in this fetch, and not blocked: it may
/// have withheld the chunk, or the link may have lost the request or the answer, and nothing
/// tells the two apart.
#[allow(clippy::too_many_arguments)]
async fn fetch_chunks<E, S, R, B>(
    context: &mut E,
    sender: &mut S,
    receiver: &mut R,
    blocker: &mut B,
    cfg: &<Message as Read>::Cfg,
    manifest: &Manifest,
    sources: &[PublicKey],
    timeout: Duration,
) -> Option<Vec<u8>>
where
    E: Clock + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let len = usize::try_from(manifest.snapshot_len).ok()?;
    let chunks = manifest.chunk_hashes.len();
    // Sources asked nothing more: those that lied (blocked) and those that stayed silent.
    let mut skipped: Vec<PublicKey> = Vec::new();
    let mut bytes = Vec::with_capacity(len);
    for index in 0..chunks {
        let mut got = None;
        // Sources that stayed silent on this chunk (at most one entry per source).
        let mut silent: Vec<PublicKey> = Vec::new();
        for turn in 0..2 * sources.len() {
            let source = &sources[(index + turn) % sources.len()];
            if skipped.contains(source) {
                continue;
            }
            let request = Message::ChunkRequest {
                height: manifest.height,
                index: index as u32,
            };
            sender.send(Recipients::One(source.clone()), request.encode(), true);
            let deadline = context.current() + timeout;
            let mut answered = false;
            while let Some((peer, message)) =
                receive(context, sender, receiver, cfg, deadline).await
            {
                if let Message::Chunk {
                    height,
                    index: i,
                    bytes,
                } = message
                    && peer == *source
                    && height == manifest.height
                    && i as usize == index
                {
                    answered = true;
                    match bytes {
                        Some(chunk) if chunk_valid(manifest, index, &chunk) => got = Some(chunk),
                        Some(_) => {
                            tracing::warn!(
                                ?peer,
                                index,
                                "snapshot chunk does not hash to the committed list; blocking the peer"
                            );
                            let _ = blocker.block(peer);
                            skipped.push(source.clone());
                        }
                        // It no longer holds that snapshot (it took a newer one): not a lie.
                        None => tracing::info!(?peer, index, "peer no longer holds the snapshot"),
                    }
                    break;
                }
            }
            if got.is_some() {
                break;
            }
            if !answered && !silent.contains(source) {
                silent.push(source.clone());
            }
            tracing::info!(
                ?source,
                index,
                "no valid chunk from this peer; asking the next"
            );
        }
        let chunk = got?;
        // Another source answered in time: the silent ones withheld what they offered, or
        // their link lost it. Not proof enough to block a peer; enough to ask it no more here.
        for peer in silent {
            if !skipped.contains(&peer) {
                tracing::info!(
                    ?peer,
                    index,
                    "offered a snapshot but its chunk did not come while another peer's did; \
                     asking it nothing more in this fetch"
                );
                skipped.push(peer);
            }
        }
        bytes.extend_from_slice(&chunk);
    }
    Some(bytes)
}

/// The next answer before `deadline`. Undecodable messages are dropped; requests from other
/// syncing validators are answered "nothing to offer" (a validator that is syncing serves
/// nothing), so a cluster booting together learns at once that no snapshot exists.
async fn receive<E, S, R>(
    context: &mut E,
    sender: &mut S,
    receiver: &mut R,
    cfg: &<Message as Read>::Cfg,
    deadline: std::time::SystemTime,
) -> Option<(PublicKey, Message)>
where
    E: Clock,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    use commonware_codec::Decode as _;
    loop {
        let message = commonware_macros::select! {
            _ = context.sleep_until(deadline) => None,
            received = receiver.recv() => received.ok(),
        };
        let (peer, bytes) = message?;
        match Message::decode_cfg(bytes, cfg) {
            Ok(Message::ManifestRequest) => {
                sender.send(
                    Recipients::One(peer),
                    Message::Manifest(None, None).encode(),
                    false,
                );
            }
            Ok(Message::ChunkRequest { height, index }) => {
                let answer = Message::Chunk {
                    height,
                    index,
                    bytes: None,
                };
                sender.send(Recipients::One(peer), answer.encode(), false);
            }
            Ok(Message::NewestRequest) => {
                sender.send(Recipients::One(peer), Message::Newest(None).encode(), false);
            }
            Ok(message) => return Some((peer, message)),
            Err(error) => {
                tracing::debug!(?peer, %error, "undecodable snapshot-channel message dropped")
            }
        }
    }
}

/// How often the snapshot actor checks whether this running node fell behind.
const BEHIND_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// What a running validator needs to sync when it falls behind what peers can backfill.
pub struct RuntimeSync {
    pub config: SyncConfig,
    /// This validator's scheme: verifies the finalization behind every offer.
    pub scheme: ed25519::Scheme,
    pub snapshot_bytes_max: u64,
    /// A gap between the executed height and consensus' beyond which peers may have pruned
    /// the next block (their archive retention plus a snapshot interval): sync at once.
    pub gap_max: u64,
    /// To the executor, which installs a synced state between blocks. Capacity 1: at most one
    /// synced state waits, and the actor syncs again only `stall` later.
    pub installs: futures::channel::mpsc::Sender<Synced>,
}

/// Whether a running node with execution at `executed` and consensus at `tip`, whose
/// execution has not moved for `stalled_for`, fell behind what backfill can repair: more than
/// `threshold` behind, and either stalled for `stall` (backfill fails) or more than `gap_max`
/// behind (peers may have pruned the next block; a snapshot is cheaper anyway).
pub fn fell_behind(
    executed: u64,
    tip: u64,
    stalled_for: Duration,
    gap_max: u64,
    config: &SyncConfig,
) -> bool {
    let gap = tip.saturating_sub(executed);
    gap > config.threshold && (stalled_for >= config.stall || gap > gap_max)
}

/// The snapshot actor's record of this node's progress.
struct Progress {
    /// Executed height last seen, and since when it has been that, behind.
    executed: u64,
    since: std::time::SystemTime,
    /// No runtime sync before this.
    next_attempt: std::time::SystemTime,
}

impl Progress {
    /// Records `executed` and `tip` at `now`; whether a runtime sync is due. The stall is
    /// timed from when the node was first seen behind without moving: time spent cut off,
    /// with no newer height known, does not count.
    fn sync_due(
        &mut self,
        now: std::time::SystemTime,
        executed: u64,
        tip: u64,
        gap_max: u64,
        config: &SyncConfig,
    ) -> bool {
        let behind = tip > executed.saturating_add(config.threshold);
        if executed != self.executed || !behind {
            self.executed = executed;
            self.since = now;
        }
        let stalled_for = now.duration_since(self.since).unwrap_or_default();
        now >= self.next_attempt && fell_behind(executed, tip, stalled_for, gap_max, config)
    }
}

/// Serves this validator's newest snapshot to syncing peers and, with `runtime`, syncs this
/// validator while it runs when it falls behind what its peers can backfill. A peer whose
/// request does not decode is blocked: honest validators never send one.
#[allow(clippy::too_many_arguments)]
pub fn serve<E, S, R, B>(
    context: E,
    shared: Arc<Shared>,
    marshal: MarshalMailbox,
    (mut sender, mut receiver): (S, R),
    limits: BlockLimits,
    certificate: <BlockFinalization as Read>::Cfg,
    mut blocker: B,
    mut runtime: Option<RuntimeSync>,
) -> Handle<()>
where
    E: Spawner + Clock + Supervisor + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    context
        .child("snapshot_server")
        .spawn(move |mut context| async move {
            use commonware_codec::Decode as _;
            let cfg = (limits, certificate);
            let now = context.current();
            let mut progress = Progress {
                executed: lock(&shared.chain).finalized_height(),
                since: now,
                next_attempt: now,
            };
            let mut next_check = now + BEHIND_CHECK_INTERVAL;
            let mut newest_served: NewestServed = None;
            let mut budget = AnswerBudget::default();
            loop {
                let received = commonware_macros::select! {
                    _ = context.sleep_until(next_check) => None,
                    received = receiver.recv() => Some(received),
                };
                let Some(received) = received else {
                    next_check = context.current() + BEHIND_CHECK_INTERVAL;
                    if let Some(runtime) = runtime.as_mut() {
                        sync_if_behind(
                            &mut context,
                            &shared,
                            runtime,
                            &mut progress,
                            (&mut sender, &mut receiver),
                            &mut blocker,
                            limits,
                        )
                        .await;
                    }
                    continue;
                };
                let Ok((peer, bytes)) = received else {
                    return;
                };
                let Ok(message) = Message::decode_cfg(bytes, &cfg) else {
                    tracing::warn!(
                        ?peer,
                        "undecodable snapshot-channel message; blocking the peer"
                    );
                    let _ = blocker.block(peer);
                    continue;
                };
                let snapshot_len = lock(&shared.snapshot)
                    .as_ref()
                    .map_or(0, |s| s.bytes.len() as u64);
                let capacity = AnswerBudget::chunk_capacity(snapshot_len);
                let chunk = matches!(message, Message::ChunkRequest { .. });
                let draw = |bytes| {
                    if chunk {
                        Draw::Chunk(bytes)
                    } else {
                        Draw::Request
                    }
                };
                if budget.exhausted(&peer, context.current(), draw(0), capacity) {
                    continue;
                }
                if let Some(answer) = answer(&shared, &marshal, &mut newest_served, message).await {
                    let encoded = answer.encode();
                    let draw = draw(encoded.len() as u64);
                    if budget.take(&peer, context.current(), draw, capacity) {
                        sender.send(Recipients::One(peer), encoded, false);
                    } else {
                        tracing::debug!(?peer, "snapshot-channel answer over the peer's budget");
                    }
                }
            }
        })
}

/// A running node's check: if it fell behind (see [`fell_behind`]), fetch a snapshot above
/// its executed height with [`fetch`]'s checks and hand it to the executor.
async fn sync_if_behind<E, S, R, B>(
    context: &mut E,
    shared: &Shared,
    runtime: &mut RuntimeSync,
    progress: &mut Progress,
    (sender, receiver): (&mut S, &mut R),
    blocker: &mut B,
    limits: BlockLimits,
) where
    E: Clock + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let executed = lock(&shared.chain).finalized_height();
    let (tip, halted, archive_gap) = {
        let status = lock(&shared.status);
        (
            status.tip_height,
            status.halted.is_some(),
            status.archive_gap,
        )
    };
    // A halted node stays halted: its state diverged, and only an operator may judge why.
    let now = context.current();
    tracing::trace!(executed, tip, "runtime sync check");
    // A node whose archive lost a finalized block cannot backfill it (marshal counts it
    // processed): it syncs as soon as consensus shows anything above it.
    let gap_due = archive_gap.is_some() && tip > executed && now >= progress.next_attempt;
    let due = progress.sync_due(now, executed, tip, runtime.gap_max, &runtime.config);
    if halted || !(gap_due || due) {
        return;
    }
    lock(&shared.status).runtime_sync_attempts += 1;
    tracing::warn!(
        executed,
        tip,
        "execution stalled far behind consensus: state sync while running"
    );
    // Any verified snapshot above the executed height helps: peers keep the blocks after it.
    let config = SyncConfig {
        threshold: 0,
        ..runtime.config
    };
    let synced = fetch(
        context,
        sender,
        receiver,
        blocker,
        &runtime.scheme,
        limits,
        runtime.snapshot_bytes_max,
        executed,
        config,
        // A running validator has its consensus journal: where consensus stands is not needed.
        &mut PeersShown::default(),
    )
    .await;
    progress.next_attempt = context.current() + runtime.config.stall;
    match synced {
        Some(synced) => {
            let height = synced.height();
            if runtime.installs.try_send(synced).is_err() {
                tracing::warn!(height, "the executor has a synced state waiting; dropped");
            }
        }
        None => tracing::warn!(
            executed,
            "state sync while running found nothing; will retry"
        ),
    }
}

/// This server's answer to `message`, if any.
/// How far below its newest finalized height a server looks for a block whose finalization
/// it stored (a block finalized only as an ancestor of a later one has none of its own).
const NEWEST_LOOKBACK: u64 = 8;

/// The newest finalized block this server showed last, by marshal's latest finalized height
/// then: a peer asking again and again (up to its channel quota) costs one marshal lookup a
/// request while that height stands, not a walk, and the block is shared into each answer,
/// not copied.
type NewestServed = Option<(u64, Option<Arc<NewestFinalized>>)>;

/// This server's newest finalized block that it holds with a finalization of its own.
async fn newest_to_serve(
    marshal: &MarshalMailbox,
    served: &mut NewestServed,
) -> Option<Arc<NewestFinalized>> {
    let (latest, _) = marshal
        .get_info(commonware_consensus::marshal::Identifier::Latest)
        .await?;
    let latest = latest.get();
    if let Some((height, newest)) = served
        && *height == latest
    {
        return newest.clone();
    }
    let newest = newest_at_or_below(marshal, latest).await;
    *served = Some((latest, newest.clone()));
    newest
}

async fn newest_at_or_below(marshal: &MarshalMailbox, latest: u64) -> Option<Arc<NewestFinalized>> {
    for height in (latest.saturating_sub(NEWEST_LOOKBACK)..=latest).rev() {
        if height == 0 {
            break;
        }
        let height = Height::new(height);
        if let (Some(block), Some(finalization)) = (
            marshal.get_block(height).await,
            marshal.get_finalization(height).await,
        ) {
            return Some(Arc::new(NewestFinalized {
                block: Arc::unwrap_or_clone(Arc::<ChainBlock>::from(block)),
                finalization,
            }));
        }
    }
    None
}

async fn answer(
    shared: &Shared,
    marshal: &MarshalMailbox,
    newest_served: &mut NewestServed,
    message: Message,
) -> Option<Message> {
    let snapshot = lock(&shared.snapshot).clone();
    // What this server lists and what it sends: the same snapshot, unless a test made it a
    // forger (or a withholder: it then answers no chunk request).
    #[cfg(test)]
    let (listed, sent) = forge_for_test(shared, &snapshot);
    #[cfg(test)]
    if matches!(message, Message::ChunkRequest { .. })
        && shared
            .fault_forge_snapshot
            .load(std::sync::atomic::Ordering::SeqCst)
            == 3
    {
        return None;
    }
    #[cfg(not(test))]
    let (listed, sent) = (snapshot.clone(), snapshot.clone());
    let answer = match message {
        Message::ManifestRequest => {
            let manifest = match snapshot {
                None => None,
                Some(snapshot) => {
                    let next = Height::new(snapshot.height + 1);
                    match (
                        marshal.get_block(next).await,
                        marshal.get_finalization(next).await,
                    ) {
                        (Some(next_block), Some(finalization)) => {
                            let next_block =
                                Arc::unwrap_or_clone(Arc::<ChainBlock>::from(next_block));
                            // Offer only what the chain committed to.
                            (next_block.state_hash == Some(snapshot.hash)).then(|| {
                                Box::new(Manifest {
                                    next_block,
                                    height: snapshot.height,
                                    snapshot_len: snapshot.bytes.len() as u64,
                                    chunk_hashes: listed
                                        .map_or_else(Vec::new, |l| l.chunk_hashes.to_vec()),
                                    finalization,
                                })
                            })
                        }
                        // The next block is not finalized (or not archived) yet.
                        _ => None,
                    }
                }
            };
            Message::Manifest(manifest, newest_to_serve(marshal, newest_served).await)
        }
        Message::ChunkRequest { height, index } => {
            let chunk = sent.filter(|s| s.height == height).and_then(|s| {
                let start = (index as usize).checked_mul(CHUNK_BYTES)?;
                (start < s.bytes.len() || (start == 0 && s.bytes.is_empty()))
                    .then(|| s.bytes[start..(start + CHUNK_BYTES).min(s.bytes.len())].to_vec())
            });
            Message::Chunk {
                height,
                index,
                bytes: chunk,
            }
        }
        Message::NewestRequest => Message::Newest(newest_to_serve(marshal, newest_served).await),
        // Answers are for a node that is syncing, which reads them in [`fetch`] and
        // [`newest_finalized`].
        Message::Manifest(..) | Message::Chunk { .. } | Message::Newest(_) => return None,
    };
    #[cfg(test)]
    let answer = forge_newest_for_test(shared, marshal, answer).await;
    Some(answer)
}

/// Unit-test builds only: how a forging server (`Shared::fault_forge_snapshot`) lists and
/// sends its snapshot. 1: it lists and sends a forged state (the insurance fund credited,
/// the snapshot's own trailer recomputed); 2: it lists the honest chunks but sends forged ones;
/// 3: it lists the honest chunks and answers no chunk request (`answer`).
#[cfg(test)]
fn forge_for_test(
    shared: &Shared,
    honest: &Option<ServedSnapshot>,
) -> (Option<ServedSnapshot>, Option<ServedSnapshot>) {
    use std::sync::atomic::Ordering;
    let mode = shared.fault_forge_snapshot.load(Ordering::SeqCst);
    let forged = || {
        honest
            .as_ref()
            .map(|h| ServedSnapshot::new(h.height, crate::test_support::credit_fund(&h.bytes)))
    };
    match mode {
        1 => (forged(), forged()),
        2 => (honest.clone(), forged()),
        _ => (honest.clone(), honest.clone()),
    }
}

/// Unit-test builds only: how a lying server (`Shared::fault_forge_snapshot`) shows its
/// newest finalized block, in snapshot answers and when asked for it. 4: the block below its
/// newest under the newest's finalization (a lie that would start a journal-lost validator's
/// consensus at a block it may have voted past); 5: nothing finalized (a lie that, believed,
/// would let it start at once from an older snapshot).
#[cfg(test)]
async fn forge_newest_for_test(
    shared: &Shared,
    marshal: &MarshalMailbox,
    answer: Message,
) -> Message {
    let mode = shared
        .fault_forge_snapshot
        .load(std::sync::atomic::Ordering::SeqCst);
    let forge = async |newest: Option<Arc<NewestFinalized>>| match (mode, newest) {
        (5, _) => None,
        (4, Some(newest)) => {
            let below = Height::new(newest.block.height().get().saturating_sub(1));
            match marshal.get_block(below).await {
                Some(block) => Some(Arc::new(NewestFinalized {
                    block: Arc::unwrap_or_clone(Arc::<ChainBlock>::from(block)),
                    finalization: newest.finalization.clone(),
                })),
                None => Some(newest),
            }
        }
        (_, newest) => newest,
    };
    match answer {
        Message::Manifest(manifest, newest) => Message::Manifest(manifest, forge(newest).await),
        Message::Newest(newest) => Message::Newest(forge(newest).await),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::{Block as ExchangeBlock, BlockTime, Height as ExchangeHeight, PriceInputs};
    use commonware_codec::Decode as _;
    use commonware_consensus::simplex::types::{Finalize, Proposal};
    use commonware_consensus::types::{Round, View};
    use commonware_cryptography::Signer as _;
    use commonware_cryptography::ed25519::PrivateKey;
    use commonware_utils::non_empty;
    use commonware_utils::ordered::Set;
    use proptest::prelude::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    const NAMESPACE: &[u8] = b"_BULWARK_SYNC_TEST";

    fn schemes(namespace: &[u8]) -> Vec<ed25519::Scheme> {
        let keys: Vec<PrivateKey> = (0..4).map(|i| PrivateKey::from_seed(100 + i)).collect();
        let participants = Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
        keys.into_iter()
            .map(|k| ed25519::Scheme::signer(namespace, participants.clone(), k).unwrap())
            .collect()
    }

    fn exchange() -> Exchange {
        crate::test_support::genesis_exchange()
    }

    fn block_after(state: &Exchange, parent: Digest) -> ChainBlock {
        let leader = PrivateKey::from_seed(100).public_key();
        let context = crate::block::Ctx {
            round: Round::new(Epoch::zero(), View::new(1)),
            leader,
            parent: (View::zero(), parent),
        };
        let body = ExchangeBlock {
            height: ExchangeHeight::new(state.height().get() + 1),
            time: BlockTime::from_millis(2_000),
            prices: PriceInputs::default(),
            observations: Vec::new(),
            txs: Vec::new(),
        };
        ChainBlock::new(
            context,
            parent,
            state.state_digest(),
            commitment::expected_after(state),
            body,
        )
    }

    fn finalize(signers: &[ed25519::Scheme], digest: Digest) -> BlockFinalization {
        let proposal = Proposal::new(
            Round::new(Epoch::zero(), View::new(1)),
            View::zero(),
            digest,
        );
        let votes: Vec<_> = signers
            .iter()
            .take(3)
            .map(|s| Finalize::sign(s, proposal.clone()).unwrap())
            .collect();
        BlockFinalization::from_finalizes(&signers[0], non_empty![@&votes], &Sequential).unwrap()
    }

    /// A manifest for the genesis state, and its snapshot bytes.
    fn honest(signers: &[ed25519::Scheme]) -> (Manifest, Vec<u8>) {
        let state = exchange();
        let bytes = state.snapshot();
        let next_block = block_after(&state, Sha256::hash(&[b"block 0"]));
        let finalization = finalize(signers, next_block.digest());
        (manifest_for(&bytes, next_block, finalization), bytes)
    }

    /// What a server lists for `bytes` (honest or not) under a real finalized block.
    fn manifest_for(
        bytes: &[u8],
        next_block: ChainBlock,
        finalization: BlockFinalization,
    ) -> Manifest {
        Manifest {
            height: next_block.height().get() - 1,
            snapshot_len: bytes.len() as u64,
            chunk_hashes: commitment::chunk_hashes(bytes),
            next_block,
            finalization,
        }
    }

    fn cfg(scheme: &ed25519::Scheme) -> <Message as Read>::Cfg {
        (BlockLimits::DEFAULT, scheme.certificate_codec_config())
    }

    /// The answer budget: a peer takes its chunk bucket (twice the snapshot) and its requests
    /// (16 at once), then gets nothing until the refill; another peer's buckets are its own;
    /// an oversized chunk empties the bucket, so the server builds nothing more for it.
    #[test]
    fn a_peer_takes_its_answer_budget_and_then_waits_for_the_refill() {
        let start = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |ms: u64| start + Duration::from_millis(ms);
        let [greedy, other] = [1u64, 2].map(|s| PrivateKey::from_seed(s).public_key());
        let capacity = AnswerBudget::chunk_capacity(1 << 20);
        assert_eq!(capacity, 2 << 20);
        assert_eq!(
            AnswerBudget::chunk_capacity(10),
            CHUNK_BYTES as u64,
            "at least a chunk"
        );
        let mut budget = AnswerBudget::default();
        let chunk = Draw::Chunk(CHUNK_BYTES as u64);
        let mut taken = 0;
        while budget.take(&greedy, at(0), chunk, capacity) {
            taken += 1;
        }
        assert_eq!(taken, 8, "twice a 1 MiB snapshot in 256 KiB chunks");
        assert!(budget.exhausted(&greedy, at(0), chunk, capacity));
        assert!(
            budget.take(&other, at(0), chunk, capacity),
            "its own bucket"
        );
        // A quarter of the refill brings back a quarter of the bucket: two chunks.
        let quarter = CHUNK_REFILL.as_millis() as u64 / 4;
        assert!(budget.take(&greedy, at(quarter), chunk, capacity));
        assert!(budget.take(&greedy, at(quarter), chunk, capacity));
        assert!(!budget.take(&greedy, at(quarter), chunk, capacity));
        // Past what is left, a chunk empties the bucket.
        assert!(!budget.take(&other, at(0), Draw::Chunk(capacity), capacity));
        assert!(budget.exhausted(&other, at(0), chunk, capacity));
        // Requests: 16 at once, then 8 a second.
        let mut requests = 0;
        while budget.take(&greedy, at(quarter), Draw::Request, capacity) {
            requests += 1;
        }
        assert_eq!(requests, REQUESTS_BURST);
        assert!(budget.exhausted(&greedy, at(quarter), Draw::Request, capacity));
        let mut later = 0;
        while budget.take(&greedy, at(quarter + 1_000), Draw::Request, capacity) {
            later += 1;
        }
        assert_eq!(later, REQUESTS_PER_S);
        // A clock that steps back refills nothing and charges as usual.
        assert!(!budget.take(&greedy, at(0), Draw::Request, capacity));
    }

    #[test]
    fn an_honest_offer_checks_restores_and_survives_the_wire() {
        let signers = schemes(NAMESPACE);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (manifest, bytes) = honest(&signers);
        // With it, the server's newest finalized block (here the same block).
        let newest = NewestFinalized {
            block: manifest.next_block.clone(),
            finalization: manifest.finalization.clone(),
        };
        let wire =
            Message::Manifest(Some(Box::new(manifest.clone())), Some(Arc::new(newest))).encode();
        assert!(wire.len() <= max_message_size(&BlockLimits::DEFAULT, 4));
        let Message::Manifest(Some(decoded), Some(shown)) =
            Message::decode_cfg(wire, &cfg(&signers[3])).unwrap()
        else {
            panic!("a manifest and a newest finalized block")
        };
        check_manifest(&mut rng, &signers[3], &decoded, 1 << 20).unwrap();
        shown.check(&mut rng, &signers[3]).unwrap();
        let restored = restore_offer(&decoded, &bytes).unwrap();
        assert_eq!(restored.state_digest(), exchange().state_digest());
    }

    #[test]
    fn forged_offers_are_refused_with_the_reason() {
        let signers = schemes(NAMESPACE);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (manifest, bytes) = honest(&signers);

        // Signed by another network's validators.
        let strangers = schemes(b"_ANOTHER_NETWORK");
        let mut forged = manifest.clone();
        forged.finalization = finalize(&strangers, manifest.next_block.digest());
        assert!(matches!(
            check_manifest(&mut rng, &signers[0], &forged, 1 << 20),
            Err(OfferError::BadFinalization)
        ));

        // A genuine finalization, but of another block than the one shown.
        let mut forged = manifest.clone();
        forged.next_block = block_after(&exchange(), Sha256::hash(&[b"another parent"]));
        assert!(matches!(
            check_manifest(&mut rng, &signers[0], &forged, 1 << 20),
            Err(OfferError::BlockMismatch)
        ));

        // A height that the block does not follow.
        let mut forged = manifest.clone();
        forged.height = 7;
        assert!(matches!(
            check_manifest(&mut rng, &signers[0], &forged, 1 << 20),
            Err(OfferError::HeightMismatch { .. })
        ));

        // Too large to accept.
        assert!(matches!(
            check_manifest(&mut rng, &signers[0], &manifest, 16),
            Err(OfferError::TooLarge(_))
        ));

        // Bytes that are not the advertised snapshot: chunk by chunk, and as a whole.
        let mut tampered = bytes.clone();
        tampered[10] ^= 1;
        assert!(!chunk_valid(&manifest, 0, &tampered));
        assert!(chunk_valid(&manifest, 0, &bytes));
        assert!(matches!(
            restore_offer(&manifest, &tampered),
            Err(OfferError::HashMismatch)
        ));

        // The attack: a snapshot of the same height with a balance changed, its own
        // trailer recomputed and its outcome-chain field kept, listed under the genuine
        // finalized block. It restores by itself, and has the committed outcome chain, but
        // its chunks do not hash to the state hash the finalized block commits to.
        let forged = crate::test_support::credit_fund(&bytes);
        let restored = Exchange::restore(&forged).unwrap();
        assert_eq!(restored.state_digest(), manifest.next_block.state_digest);
        let lying = manifest_for(
            &forged,
            manifest.next_block.clone(),
            manifest.finalization.clone(),
        );
        let refused = check_manifest(&mut rng, &signers[0], &lying, 1 << 20).unwrap_err();
        assert!(matches!(refused, OfferError::HashMismatch) && refused.is_a_lie());
        assert!(matches!(
            restore_offer(&manifest, &forged),
            Err(OfferError::HashMismatch)
        ));
        // A chunk list of the wrong length.
        let mut short = manifest.clone();
        short.chunk_hashes.push(Sha256::hash(&[b"more"]));
        assert!(matches!(
            check_manifest(&mut rng, &signers[0], &short, 1 << 20),
            Err(OfferError::ChunkCount { .. })
        ));

        // A genuine block that commits to no state hash (height 1 is not a commitment
        // height): nothing can be checked against it, so it backs no offer.
        let mut later = exchange();
        later
            .apply_block(&manifest.next_block.body.clone().check_signatures(&mut rng))
            .unwrap();
        let uncommitted = block_after(&later, manifest.next_block.digest());
        assert!(uncommitted.state_hash.is_none());
        let finalization = finalize(&signers, uncommitted.digest());
        let unverifiable = manifest_for(&later.snapshot(), uncommitted, finalization);
        assert!(matches!(
            check_manifest(&mut rng, &signers[0], &unverifiable, 1 << 20),
            Err(OfferError::Uncommitted(2))
        ));
    }

    /// A peer's newest finalized block (what a validator that lost its consensus journal
    /// starts consensus from) survives the wire and checks; one signed by strangers, or
    /// shown with another block than the one finalized, is refused as a lie.
    #[test]
    fn a_newest_finalized_block_checks_and_a_forged_one_is_refused() {
        let signers = schemes(NAMESPACE);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let block = block_after(&exchange(), Sha256::hash(&[b"block 0"]));
        let newest = NewestFinalized {
            finalization: finalize(&signers, block.digest()),
            block,
        };
        let wire = Message::Newest(Some(Arc::new(newest.clone()))).encode();
        assert!(wire.len() <= max_message_size(&BlockLimits::DEFAULT, 4));
        let Message::Newest(Some(decoded)) = Message::decode_cfg(wire, &cfg(&signers[3])).unwrap()
        else {
            panic!("a newest finalized block")
        };
        decoded.check(&mut rng, &signers[3]).unwrap();
        for empty in [
            Message::NewestRequest,
            Message::Newest(None),
            Message::Manifest(None, None),
        ] {
            let decoded = Message::decode_cfg(empty.encode(), &cfg(&signers[0])).unwrap();
            assert_eq!(
                std::mem::discriminant(&decoded),
                std::mem::discriminant(&empty)
            );
        }

        let strangers = schemes(b"_ANOTHER_NETWORK");
        let mut forged = newest.clone();
        forged.finalization = finalize(&strangers, newest.block.digest());
        assert!(matches!(
            forged.check(&mut rng, &signers[0]),
            Err(OfferError::BadFinalization)
        ));
        let mut forged = newest;
        forged.block = block_after(&exchange(), Sha256::hash(&[b"another parent"]));
        assert!(matches!(
            forged.check(&mut rng, &signers[0]),
            Err(OfferError::BlockMismatch)
        ));
    }

    /// When a running node syncs: far behind (more than `threshold`), and either stalled for
    /// `stall` or further behind than peers keep blocks (`gap_max`); never when close.
    #[test]
    fn a_running_node_syncs_only_far_behind_and_stalled_or_past_what_peers_keep() {
        let config = SyncConfig {
            threshold: 25,
            attempts: 3,
            timeout: Duration::from_secs(2),
            stall: Duration::from_secs(5),
        };
        let (short, long) = (Duration::from_secs(1), Duration::from_secs(5));
        // (executed, tip, stalled for, gap_max) => sync?
        let table = [
            (100, 125, long, 75, false),  // within the threshold, however long
            (100, 126, short, 75, false), // behind, but backfill is moving
            (100, 126, long, 75, true),   // behind and stalled
            (100, 176, short, 75, true),  // past what peers keep: at once
            (100, 175, short, 75, false), // just within it
            (200, 100, long, 75, false),  // ahead of the tip (it lags the executor)
        ];
        for (executed, tip, stalled_for, gap_max, expected) in table {
            assert_eq!(
                fell_behind(executed, tip, stalled_for, gap_max, &config),
                expected,
                "executed {executed}, tip {tip}, stalled {stalled_for:?}, gap_max {gap_max}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let signers = schemes(NAMESPACE);
            let _ = Message::decode_cfg(commonware_codec::Copying(bytes.as_slice()), &cfg(&signers[0]));
        }
    }
}
