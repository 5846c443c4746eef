//! State sync: a validator that is new, wiped, or too far behind its peers fetches a recent
//! snapshot from them instead of replaying the chain from genesis (which peers have pruned).
//!
//! Owns: the snapshot protocol on its own p2p channel, both sides of it.
//! - A serving validator answers a manifest request with its newest snapshot (the state after
//!   height `H`) described by its length and SHA-256, together with block `H + 1` and that
//!   block's finalization certificate; then serves the snapshot in chunks.
//! - A syncing validator trusts nothing a peer says until it checks it: the finalization must
//!   carry a quorum of the validators' signatures over block `H + 1`'s digest, which the block
//!   must hash to; the assembled bytes must hash to the manifest's SHA-256; and the restored
//!   state must have height `H` and the state digest block `H + 1` commits to (the state after
//!   its parent), with `H + 1`'s parent as the block it follows. Only then does it install the
//!   state, persist it, and start marshal and simplex from that finalization, so marshal
//!   delivers from `H + 1` on.
//!
//! Never: lets a peer make it allocate more than `snapshot_bytes_max` for a snapshot or more
//! than a chunk per message; waits forever (every request has a deadline and a bounded number
//! of attempts; a cluster with no snapshot anywhere starts from genesis).

use crate::block::ChainBlock;
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
use commonware_consensus::{Epochable as _, Heightable};
use commonware_cryptography::certificate::{Scheme as _, Verifier as _};
use commonware_cryptography::ed25519::PublicKey;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digestible, Hasher, Sha256};
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Handle, Spawner, Supervisor};
use rand_core::CryptoRng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of snapshot in one chunk message.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// A finalization of a Bulwark block.
pub type BlockFinalization = Finalization<ed25519::Scheme, Digest>;

/// The newest snapshot this validator holds, as it serves it.
#[derive(Clone, Debug)]
pub struct ServedSnapshot {
    /// Height of the state.
    pub height: u64,
    /// `Exchange::snapshot` bytes.
    pub bytes: Arc<Vec<u8>>,
    pub hash: Digest,
}

impl ServedSnapshot {
    pub fn new(height: u64, bytes: Vec<u8>) -> Self {
        let hash = Sha256::hash(&[&bytes]);
        Self {
            height,
            bytes: Arc::new(bytes),
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
    pub snapshot_hash: Digest,
    /// Block `height + 1`: it commits to the snapshot's state digest.
    pub next_block: ChainBlock,
    /// Finalization of `next_block`.
    pub finalization: BlockFinalization,
}

/// The messages of the snapshot channel.
#[derive(Clone, Debug)]
pub enum Message {
    ManifestRequest,
    /// `None`: no snapshot to offer yet.
    Manifest(Option<Box<Manifest>>),
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
}

impl Write for Message {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Message::ManifestRequest => 0u8.write(buf),
            Message::Manifest(manifest) => {
                1u8.write(buf);
                match manifest {
                    None => 0u8.write(buf),
                    Some(m) => {
                        1u8.write(buf);
                        m.height.write(buf);
                        m.snapshot_len.write(buf);
                        m.snapshot_hash.write(buf);
                        m.next_block.write(buf);
                        m.finalization.write(buf);
                    }
                }
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
        }
    }
}

impl EncodeSize for Message {
    fn encode_size(&self) -> usize {
        1 + match self {
            Message::ManifestRequest => 0,
            Message::Manifest(None) => 1,
            Message::Manifest(Some(m)) => {
                1 + 8 + 8 + Digest::SIZE + m.next_block.encode_size() + m.finalization.encode_size()
            }
            Message::ChunkRequest { .. } => 8 + 4,
            Message::Chunk { bytes, .. } => 8 + 4 + bytes.encode_size(),
        }
    }
}

impl Read for Message {
    type Cfg = (BlockLimits, <BlockFinalization as Read>::Cfg);
    fn read_cfg(buf: &mut impl Buf, (limits, certificate): &Self::Cfg) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(Message::ManifestRequest),
            1 => match u8::read(buf)? {
                0 => Ok(Message::Manifest(None)),
                1 => {
                    let height = u64::read(buf)?;
                    let snapshot_len = u64::read(buf)?;
                    let snapshot_hash = Digest::read(buf)?;
                    let next_block = ChainBlock::read_cfg(buf, limits)?;
                    let finalization = BlockFinalization::read_cfg(buf, certificate)?;
                    Ok(Message::Manifest(Some(Box::new(Manifest {
                        height,
                        snapshot_len,
                        snapshot_hash,
                        next_block,
                        finalization,
                    }))))
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
            _ => Err(CodecError::Invalid("sync::Message", "tag")),
        }
    }
}

/// Largest snapshot-channel message.
pub fn max_message_size(limits: &BlockLimits, participants: u32) -> usize {
    let certificate = simplex_certificate_bytes_max(participants);
    let manifest = 2 + 8 + 8 + Digest::SIZE + ChainBlock::max_encode_size(limits) + certificate;
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
    /// Rounds of manifest requests before giving up (an answer of "no snapshot" from every
    /// peer also ends the search).
    pub attempts: u32,
    /// How long to wait for answers to one request.
    pub timeout: Duration,
}

/// A snapshot fetched from a peer and checked against the finalized chain.
pub struct Synced {
    pub exchange: Exchange,
    /// Digest of the block the snapshot's state follows (block `H`).
    pub block_digest: Digest,
    /// Finalization of block `H + 1`: where marshal and simplex start.
    pub finalization: BlockFinalization,
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
    #[error("assembled snapshot does not hash to the manifest's")]
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
    if manifest.snapshot_len > snapshot_bytes_max {
        return Err(OfferError::TooLarge(manifest.snapshot_len));
    }
    Ok(())
}

/// Checks assembled snapshot bytes against a checked manifest and restores them.
pub fn restore_offer(manifest: &Manifest, bytes: &[u8]) -> Result<Exchange, OfferError> {
    if Sha256::hash(&[bytes]) != manifest.snapshot_hash {
        return Err(OfferError::HashMismatch);
    }
    let exchange = Exchange::restore(bytes)?;
    let restored = exchange.height().get();
    if restored != manifest.height || exchange.state_digest() != manifest.next_block.state_digest {
        return Err(OfferError::StateMismatch { restored });
    }
    Ok(exchange)
}

/// Asks peers for their newest snapshot and, if one is more than `threshold` blocks ahead
/// of `local_height`, fetches, checks and restores it.
#[allow(clippy::too_many_arguments)]
pub async fn fetch<E, S, R>(
    context: &mut E,
    sender: &mut S,
    receiver: &mut R,
    scheme: &ed25519::Scheme,
    limits: BlockLimits,
    snapshot_bytes_max: u64,
    local_height: u64,
    config: SyncConfig,
) -> Option<Synced>
where
    E: Clock + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let cfg = (limits, scheme.certificate_codec_config());
    let others = scheme.participants().len().saturating_sub(1);
    for attempt in 0..config.attempts {
        // 1. Manifests from whoever answers in time.
        sender.send(Recipients::All, Message::ManifestRequest.encode(), false);
        let mut offers: BTreeMap<PublicKey, Box<Manifest>> = BTreeMap::new();
        let mut answered = 0usize;
        let deadline = context.current() + config.timeout;
        while answered < others {
            let Some((peer, message)) = receive(context, sender, receiver, &cfg, deadline).await
            else {
                break;
            };
            match message {
                Message::Manifest(None) => answered += 1,
                Message::Manifest(Some(manifest)) => {
                    answered += 1;
                    match check_manifest(context, scheme, &manifest, snapshot_bytes_max) {
                        Ok(()) => {
                            offers.insert(peer, manifest);
                        }
                        Err(error) => tracing::warn!(?peer, %error, "refused a snapshot offer"),
                    }
                }
                _ => {}
            }
        }
        let best = offers.values().map(|m| m.height).max();
        let Some(height) = best else {
            if answered >= others {
                tracing::info!("no peer holds a snapshot; starting from local state");
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
        // 2. Chunks, from any peer offering that exact snapshot.
        let manifest = offers
            .values()
            .find(|m| m.height == height)
            .expect("best exists")
            .clone();
        let sources: Vec<PublicKey> = offers
            .iter()
            .filter(|(_, m)| m.height == height && m.snapshot_hash == manifest.snapshot_hash)
            .map(|(p, _)| p.clone())
            .collect();
        match fetch_chunks(
            context,
            sender,
            receiver,
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
                Err(error) => tracing::warn!(%error, height, "fetched snapshot refused"),
            },
            None => tracing::info!(height, "snapshot chunks did not arrive; retrying"),
        }
    }
    tracing::warn!("state sync gave up; starting from local state");
    None
}

async fn fetch_chunks<E, S, R>(
    context: &mut E,
    sender: &mut S,
    receiver: &mut R,
    cfg: &<Message as Read>::Cfg,
    manifest: &Manifest,
    sources: &[PublicKey],
    timeout: Duration,
) -> Option<Vec<u8>>
where
    E: Clock + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let len = usize::try_from(manifest.snapshot_len).ok()?;
    let chunks = len.div_ceil(CHUNK_BYTES).max(1);
    let mut bytes = Vec::with_capacity(len);
    for index in 0..chunks {
        let expected = CHUNK_BYTES.min(len - index * CHUNK_BYTES);
        let mut got = None;
        // Try each source in turn, twice around.
        for source in sources.iter().chain(sources.iter()) {
            let request = Message::ChunkRequest {
                height: manifest.height,
                index: index as u32,
            };
            sender.send(Recipients::One(source.clone()), request.encode(), true);
            let deadline = context.current() + timeout;
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
                    got = bytes.filter(|b| b.len() == expected);
                    break;
                }
            }
            if got.is_some() {
                break;
            }
        }
        bytes.extend_from_slice(&got?);
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
                    Message::Manifest(None).encode(),
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
            Ok(message) => return Some((peer, message)),
            Err(error) => {
                tracing::debug!(?peer, %error, "undecodable snapshot-channel message dropped")
            }
        }
    }
}

/// Serves this validator's newest snapshot to syncing peers. A peer whose request does not
/// decode is blocked: honest validators never send one.
#[allow(clippy::too_many_arguments)]
pub fn serve<E, S, R, B>(
    context: E,
    shared: Arc<Shared>,
    marshal: MarshalMailbox,
    (mut sender, mut receiver): (S, R),
    limits: BlockLimits,
    certificate: <BlockFinalization as Read>::Cfg,
    mut blocker: B,
) -> Handle<()>
where
    E: Spawner + Clock + Supervisor,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    context.child("snapshot_server").spawn(move |_| async move {
        use commonware_codec::Decode as _;
        let cfg = (limits, certificate);
        while let Ok((peer, bytes)) = receiver.recv().await {
            let Ok(message) = Message::decode_cfg(bytes, &cfg) else {
                tracing::warn!(
                    ?peer,
                    "undecodable snapshot-channel message; blocking the peer"
                );
                let _ = blocker.block(peer);
                continue;
            };
            let snapshot = lock(&shared.snapshot).clone();
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
                                    Some(Box::new(Manifest {
                                        next_block: Arc::unwrap_or_clone(Arc::<ChainBlock>::from(
                                            next_block,
                                        )),
                                        height: snapshot.height,
                                        snapshot_len: snapshot.bytes.len() as u64,
                                        snapshot_hash: snapshot.hash,
                                        finalization,
                                    }))
                                }
                                // The next block is not finalized (or not archived) yet.
                                _ => None,
                            }
                        }
                    };
                    Message::Manifest(manifest)
                }
                Message::ChunkRequest { height, index } => {
                    let chunk = snapshot.filter(|s| s.height == height).and_then(|s| {
                        let start = (index as usize).checked_mul(CHUNK_BYTES)?;
                        (start < s.bytes.len() || (start == 0 && s.bytes.is_empty())).then(|| {
                            s.bytes[start..(start + CHUNK_BYTES).min(s.bytes.len())].to_vec()
                        })
                    });
                    Message::Chunk {
                        height,
                        index,
                        bytes: chunk,
                    }
                }
                // Answers are for syncing validators; a running one ignores them.
                Message::Manifest(_) | Message::Chunk { .. } => continue,
            };
            sender.send(Recipients::One(peer), answer.encode(), false);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_exchange::{ExchangeParams, Genesis};
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
        let genesis = Genesis {
            admin: PrivateKey::from_seed(1).public_key(),
            bridge: PrivateKey::from_seed(2).public_key(),
            params: ExchangeParams::defaults(),
            time: BlockTime::from_millis(1_000),
            oracle: None,
        };
        Exchange::new(&genesis).unwrap()
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
        ChainBlock::new(context, parent, state.state_digest(), body)
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
        let manifest = Manifest {
            height: 0,
            snapshot_len: bytes.len() as u64,
            snapshot_hash: Sha256::hash(&[&bytes]),
            next_block,
            finalization,
        };
        (manifest, bytes)
    }

    fn cfg(scheme: &ed25519::Scheme) -> <Message as Read>::Cfg {
        (BlockLimits::DEFAULT, scheme.certificate_codec_config())
    }

    #[test]
    fn an_honest_offer_checks_restores_and_survives_the_wire() {
        let signers = schemes(NAMESPACE);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (manifest, bytes) = honest(&signers);
        let wire = Message::Manifest(Some(Box::new(manifest.clone()))).encode();
        assert!(wire.len() <= max_message_size(&BlockLimits::DEFAULT, 4));
        let Message::Manifest(Some(decoded)) =
            Message::decode_cfg(wire, &cfg(&signers[3])).unwrap()
        else {
            panic!("a manifest")
        };
        check_manifest(&mut rng, &signers[3], &decoded, 1 << 20).unwrap();
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

        // Bytes that are not the advertised snapshot.
        let mut tampered = bytes.clone();
        tampered[10] ^= 1;
        assert!(matches!(
            restore_offer(&manifest, &tampered),
            Err(OfferError::HashMismatch)
        ));

        // A self-consistent snapshot of another state than the block commits to.
        let other = {
            let mut genesis_other = exchange();
            let checked = block_after(&genesis_other, Sha256::hash(&[b"block 0"]))
                .body
                .check_signatures(&mut rng);
            genesis_other.apply_block(&checked).unwrap();
            genesis_other.snapshot()
        };
        let mut lying = manifest.clone();
        lying.snapshot_hash = Sha256::hash(&[&other]);
        lying.snapshot_len = other.len() as u64;
        assert!(matches!(
            restore_offer(&lying, &other),
            Err(OfferError::StateMismatch { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let signers = schemes(NAMESPACE);
            let _ = Message::decode_cfg(commonware_codec::Copying(bytes.as_slice()), &cfg(&signers[0]));
        }
    }
}
