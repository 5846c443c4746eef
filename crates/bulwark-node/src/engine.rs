//! Wiring of one validator: p2p channels, block broadcast and backfill, marshal's archives,
//! the executor, the mempool gossip, and simplex consensus over the exchange application.
//!
//! Generic over the runtime and the p2p implementation, so the same code runs on the
//! deterministic runtime with the simulated network and on tokio with authenticated TCP.

use crate::app::{AppConfig, ExchangeApp};
use crate::block::{BlockCodec, ChainBlock, Ctx};
use crate::chain::Chain;
use crate::executor::{Executor, ExecutorConfig, FinalizedFeed, initial_chain};
use crate::gossip::{self, GossipConfig};
use crate::leaders::LeaderSchedule;
use crate::mempool::{Mempool, MempoolLimits};
use crate::observer::{ObservationPool, ObserverConfig};
use crate::prices::PriceFeed;
use crate::receipt_archive::{self, ReceiptArchive};
use crate::shared::{ConsensusFloor, ConsensusStart, FloorSource, Shared, lock};
use crate::snapshots::{SnapshotStore, StorageError};
use crate::sync::{self, SyncConfig};
use bulwark_exchange::{Exchange, Genesis};
use bulwark_types::BlockLimits;
use commonware_broadcast::buffered;
use commonware_consensus::marshal::{
    self, core::Actor as MarshalActor, resolver::p2p as marshal_resolver,
};
use commonware_consensus::simplex::config::{ForwardPolicy, SkipBudget, SkipPolicy};
use commonware_consensus::simplex::{self, scheme::ed25519};
use commonware_consensus::types::{Epoch, FixedEpocher, ViewDelta};
use commonware_consensus::{Application, Heightable as _, Reporter, Reporters, Viewable as _};
use commonware_cryptography::certificate::{
    ConstantProvider, Membership, Scheme as _, Verifier as _,
};
use commonware_cryptography::ed25519::{PrivateKey, PublicKey};
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digested, Digestible, Signer as _};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage, Supervisor};
use commonware_storage::archive::prunable;
use commonware_storage::translator::EightCap;
use commonware_utils::ordered::Set;
use commonware_utils::{NZDuration, NZU16, NZU64, NZUsize, Participant};
use rand_core::CryptoRng;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

/// Channel ids; identical on every validator.
pub const CHANNEL_VOTES: u64 = 0;
pub const CHANNEL_CERTIFICATES: u64 = 1;
pub const CHANNEL_RESOLVER: u64 = 2;
pub const CHANNEL_BACKFILL: u64 = 3;
pub const CHANNEL_BLOCKS: u64 = 4;
pub const CHANNEL_TRANSACTIONS: u64 = 5;
pub const CHANNEL_SNAPSHOTS: u64 = 6;
pub const CHANNEL_OBSERVATIONS: u64 = 7;

/// One (sender, receiver) pair per channel.
pub struct Channels<S, R> {
    pub votes: (S, R),
    pub certificates: (S, R),
    pub resolver: (S, R),
    pub backfill: (S, R),
    pub blocks: (S, R),
    pub transactions: (S, R),
    pub snapshots: (S, R),
    pub observations: (S, R),
}

/// Consensus timing. Node-local; the defaults ran well on loopback and 50 ms simulated links.
#[derive(Copy, Clone, Debug)]
pub struct Timeouts {
    pub leader: Duration,
    pub certification: Duration,
    pub retry: Duration,
    pub skip: Duration,
}

impl Timeouts {
    pub const DEFAULT: Self = Self {
        leader: Duration::from_secs(1),
        certification: Duration::from_secs(2),
        retry: Duration::from_secs(5),
        skip: Duration::from_secs(10),
    };
}

/// Everything one validator needs to start. No `Default`: every field is chosen on purpose.
pub struct ValidatorConfig {
    pub signer: PrivateKey,
    /// Every validator's key; the same set, in the same order, on every validator.
    pub participants: Set<PublicKey>,
    /// Domain separation of this network's consensus messages.
    pub namespace: Vec<u8>,
    /// Prefix of every storage partition; unique per validator, stable across restarts.
    pub partition_prefix: String,
    pub genesis: Genesis,
    pub app: AppConfig,
    pub executor: ExecutorConfig,
    pub mempool: MempoolLimits,
    pub gossip: GossipConfig,
    pub timeouts: Timeouts,
    pub mailbox_size: NonZeroUsize,
    /// Largest snapshot this validator will store, load or fetch.
    pub snapshot_bytes_max: usize,
    /// Whether (and how) to fetch a peer's snapshot at startup when far behind, and while
    /// running when execution stalls far behind consensus (see `sync`); `None` always starts
    /// from the local disk and never syncs while running (it relies on peers still holding
    /// every block after it).
    pub sync: Option<SyncConfig>,
    /// How often this validator observes prices for the oracle.
    pub observer: ObserverConfig,
    /// Where this validator's price observations come from: 1 to
    /// [`bulwark_oracle::SOURCES_MAX`] sources, combined under `observer.quorum`
    /// (a majority of them must answer and agree).
    pub price_sources: Vec<Box<dyn bulwark_oracle::PriceSource + Send>>,
}

impl ValidatorConfig {
    /// Checks relations between fields; a bad configuration stops startup.
    pub fn assert(&self) {
        assert!(
            self.participants
                .position(&self.signer.public_key())
                .is_some(),
            "signer must be a participant"
        );
        assert!(
            self.timeouts.certification > self.timeouts.leader,
            "certification timeout exceeds leader timeout"
        );
        assert!(
            self.timeouts.skip > self.timeouts.certification
                && self.timeouts.skip > self.timeouts.retry,
            "skip timeout exceeds the others"
        );
        assert!(
            self.app.limits.txs_max > 0 && self.app.proposal_bytes_max > 0,
            "blocks carry transactions"
        );
        assert!(
            self.app.proposal_bytes_max <= self.app.limits.block_bytes_max(),
            "proposal bytes within the block bound"
        );
        assert!(!self.partition_prefix.is_empty(), "partition prefix set");
        assert!(
            (1..=bulwark_oracle::SOURCES_MAX).contains(&self.price_sources.len()),
            "1 to {} price sources",
            bulwark_oracle::SOURCES_MAX
        );
        assert!(
            u128::from(self.observer.quorum.age_ms_max) < self.observer.age_max.as_millis(),
            "an observation made of the oldest quotes a source may give still goes in blocks"
        );
        assert!(
            self.observer.quorum.agree_bps <= bulwark_oracle::AGREE_BPS_MAX,
            "source agreement band at most {} bps",
            bulwark_oracle::AGREE_BPS_MAX
        );
        assert!(
            self.executor.snapshot_interval > 0
                && self.executor.snapshot_interval % crate::commitment::STATE_HASH_INTERVAL == 0,
            "snapshots are taken at heights the chain commits to (multiples of {})",
            crate::commitment::STATE_HASH_INTERVAL
        );
        if let Some(sync) = &self.sync {
            // A validator that does not sync (within the threshold) must find every block
            // after its snapshot still archived at its peers.
            assert!(
                self.executor.archive_retention >= sync.threshold + self.executor.snapshot_interval,
                "archive retention covers the sync threshold plus a snapshot interval"
            );
            assert!(sync.attempts > 0, "state sync makes at least one attempt");
            assert!(!sync.stall.is_zero(), "a runtime sync waits for a stall");
        }
    }
}

/// The genesis block every validator must agree on.
pub fn genesis_block(
    participants: &Set<PublicKey>,
    genesis: &Genesis,
) -> Result<(ChainBlock, Exchange), bulwark_exchange::ConfigError> {
    let exchange = Exchange::new(genesis)?;
    let leader = participants
        .iter()
        .next()
        .expect("at least one participant")
        .clone();
    Ok((
        ChainBlock::genesis(leader, exchange.state_digest(), genesis.time),
        exchange,
    ))
}

/// Largest message any component sends, for the p2p configuration.
pub fn max_message_size(participants: u32, limits: &BlockLimits, gossip_batch_max: usize) -> u32 {
    let simplex = simplex::max_payload_size::<ed25519::Scheme, Digest>(participants);
    let marshal = marshal::max_payload_size::<
        marshal::standard::Standard<ChainBlock>,
        ed25519::Scheme,
    >(participants, &BlockCodec::uncached(*limits));
    let gossip = 5 + gossip_batch_max * bulwark_types::tx::TX_BYTES_MAX;
    let snapshots = crate::sync::max_message_size(limits, participants);
    let observations =
        5 + crate::observer::BATCH_MAX * bulwark_types::observation::SIGNED_OBSERVATION_BYTES_MAX;
    commonware_p2p::max_message_size(&[simplex, marshal, gossip, snapshots, observations])
}

/// Watches consensus activity for the node status (views finalized, faults seen), records
/// when this validator first saw each view notarized (see [`crate::app::Notarizations`]), and
/// hands each finalization's block digest to the executor, which finalizes a block it holds
/// speculatively at once instead of waiting for marshal to store and deliver it
/// ([`crate::executor`]).
pub struct ConsensusMonitor<C> {
    shared: Arc<Shared>,
    clock: Arc<C>,
    /// This validator's index among the participants: its own votes.
    me: Option<Participant>,
    /// Blocks whose finalization certificate simplex verified, to the executor. Bounded; a
    /// full queue drops the digest (marshal still delivers the block).
    finalized: futures::channel::mpsc::Sender<Digest>,
}

impl<C> Clone for ConsensusMonitor<C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            clock: self.clock.clone(),
            me: self.me,
            finalized: self.finalized.clone(),
        }
    }
}

impl<C: Clock> Reporter for ConsensusMonitor<C> {
    type Activity = simplex::types::Activity<ed25519::Scheme, Digest>;
    fn report(&mut self, activity: Self::Activity) -> commonware_actor::Feedback {
        use simplex::types::Activity;
        let view = activity.view().get();
        match &activity {
            Activity::Notarization(_) => {
                let now = crate::app::now_ms(self.clock.as_ref());
                lock(&self.shared.notarizations).record_notarization(view, now);
            }
            Activity::Notarize(vote) if Some(vote.attestation.signer) == self.me => {
                let now = crate::app::now_ms(self.clock.as_ref());
                lock(&self.shared.notarizations).record_own_vote(view, now);
            }
            // Simplex reports only certificates it verified: 2f+1 validators' signatures.
            Activity::Finalization(finalization) => {
                let _ = self.finalized.try_send(finalization.proposal.payload);
            }
            _ => {}
        }
        let mut status = lock(&self.shared.status);
        match activity {
            Activity::ConflictingNotarize(_)
            | Activity::ConflictingFinalize(_)
            | Activity::NullifyFinalize(_) => {
                status.faults_observed += 1;
                drop(status);
                tracing::warn!(view, "consensus fault observed from a peer");
            }
            Activity::Nullification(_) => {
                status.views_skipped += 1;
                status.consensus_view = status.consensus_view.max(view);
            }
            Activity::Notarization(_) | Activity::Finalization(_) => {
                status.consensus_view = status.consensus_view.max(view);
            }
            _ => {}
        }
        commonware_actor::Feedback::Ok
    }
}

/// A running validator.
pub struct Validator {
    pub shared: Arc<Shared>,
    /// Marshal's mailbox: finalized blocks and certificates by height (the API serves them).
    pub marshal: crate::executor::MarshalMailbox,
    pub handles: Vec<Handle<()>>,
}

/// Starts every actor of one validator under `context`. A failure of its own disk while
/// opening or writing its storage (snapshots, marshal's archives, receipts) is returned, not
/// a panic: the validator does not start.
pub async fn start<E, S, R, B, P>(
    context: E,
    config: ValidatorConfig,
    channels: Channels<S, R>,
    blocker: B,
    peer_provider: P,
    feed: Box<dyn PriceFeed>,
) -> Result<Validator, StorageError>
where
    E: Spawner + Clock + Metrics + Storage + Supervisor + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
{
    start_with(
        context,
        config,
        channels,
        blocker,
        peer_provider,
        feed,
        |app, _| app,
    )
    .await
}

/// [`start`], with consensus driving `wrap(app, shared)` in place of the exchange
/// application `app`. The resilience lab (`bulwark-sim`) wraps it in a Byzantine proposer
/// that mutates honest proposals; a validator started by [`start`] drives `app` itself.
///
/// **Architecture invariant:** nothing in this crate wraps the application: no configuration,
/// API or message reaches `wrap`, so a production validator has no path that turns a fault on.
#[allow(clippy::too_many_arguments)]
pub async fn start_with<E, S, R, B, P, A, W>(
    context: E,
    config: ValidatorConfig,
    channels: Channels<S, R>,
    blocker: B,
    peer_provider: P,
    feed: Box<dyn PriceFeed>,
    wrap: W,
) -> Result<Validator, StorageError>
where
    E: Spawner + Clock + Metrics + Storage + Supervisor + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    W: FnOnce(ExchangeApp, Arc<Shared>) -> A,
    A: Application<
            E,
            SigningScheme = ed25519::Scheme,
            Context = Ctx,
            Block = ChainBlock,
            Input = (),
        >,
{
    config.assert();
    let me = config.signer.public_key();
    let scheme = ed25519::Scheme::signer(
        &config.namespace,
        config.participants.clone(),
        config.signer.clone(),
    )
    .expect("signer is a participant");
    let epocher = FixedEpocher::new(NZU64!(u64::MAX)); // one epoch forever: a static validator set
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(1024));
    let (genesis, genesis_exchange) =
        genesis_block(&config.participants, &config.genesis).expect("genesis is valid");
    let genesis_digest = genesis.digest();
    let prefix = config.partition_prefix.clone();
    let limits = config.app.limits;
    // A validator without its consensus journal (new, or wiped) may have voted before in the
    // views it would replay: see `JOURNAL_LOST_WAIT`.
    let started_ms = crate::app::now_ms(&context);
    let journal_lost = matches!(
        context.scan(&simplex_partition(&prefix)).await,
        Err(commonware_runtime::Error::PartitionMissing(_))
    );
    // Read before anything here creates a partition: what a directory holds tells a fresh one
    // from one written before the layout was recorded.
    let layout = crate::layout::open(
        context.child("layout"),
        &prefix,
        NZU64!(MARSHAL_CACHE_SECTION_VIEWS),
        &[
            simplex_partition(&prefix),
            archive_config(&prefix, "blocks", page_cache.clone(), ()).key_partition,
        ],
    )
    .await?;

    // Durable state first: the newest snapshot, else genesis.
    let mut store = SnapshotStore::init(
        context.child("snapshots"),
        format!("{prefix}-snapshots"),
        config.snapshot_bytes_max,
    )
    .await?;
    let initial = initial_chain(&store, Chain::new(genesis_exchange, genesis_digest));
    let (mut chain, mut served) = (initial.chain, initial.served);
    let (mut snapshot_sender, mut snapshot_receiver) = channels.snapshots;
    let mut sync_floor = None;
    // With no usable local snapshot, sync whatever the distance, and with at least one try.
    // Nor, without a consensus journal, whatever the distance: replaying from an older state
    // would start consensus in views this validator may have voted in.
    let sync_config = match (config.sync, initial.lost_local_state) {
        (Some(sync), lost) if lost || journal_lost => Some(SyncConfig {
            threshold: 0,
            ..sync
        }),
        (None, true) => Some(SyncConfig {
            threshold: 0,
            attempts: 3,
            timeout: Duration::from_secs(2),
            stall: Duration::from_secs(10),
        }),
        (sync, _) => sync,
    };
    // Where simplex starts if not at the snapshot's finalization: see `JOURNAL_LOST_WAIT`.
    let mut consensus_floor = None;
    let mut floor_shown = None;
    if let Some(sync_config) = sync_config {
        let mut sync_context = context.child("sync");
        let mut sync_blocker = blocker.clone();
        // The newest finalized block the peers showed (with their snapshot answers, then
        // when asked again below), and how many answered.
        let mut shown = sync::PeersShown::default();
        let synced = sync::fetch(
            &mut sync_context,
            &mut snapshot_sender,
            &mut snapshot_receiver,
            &mut sync_blocker,
            &scheme,
            limits,
            config.snapshot_bytes_max as u64,
            chain.finalized_height(),
            sync_config,
            &mut shown,
        )
        .await;
        if let Some(synced) = synced {
            let (exchange, block_digest, finalization) = synced.into_parts();
            served = Some(store.save_floor(&exchange, block_digest).await?);
            chain = Chain::new(exchange, block_digest);
            sync_floor = Some(finalization);
        } else if initial.lost_local_state {
            tracing::error!(
                "no usable local snapshot and no peer snapshot: replaying from genesis, which \
                 halts if peers have pruned the blocks it needs"
            );
        }
        if journal_lost {
            // Joining a running chain without a consensus journal: start consensus from the
            // finalization of a block proposed since this start, so simplex never re-enters
            // a view this validator may have voted in before it lost its journal (a wiped
            // validator re-voting differently is an equivocator to its peers: `sweep-200`
            // seeds 89 and 2402). The state comes from the snapshot (or genesis) below it;
            // marshal backfills the blocks between.
            let wait_end = sync_context.current() + JOURNAL_LOST_WAIT;
            let enough = sync::answers_enough(&scheme);
            loop {
                match &shown.newest {
                    Some(newest) if newest.block.time().millis() > started_ms => break,
                    // All but f peers answered and none showed a finalized block: a chain
                    // that has not started (every validator of a new network starts without
                    // a journal), so no vote to contradict. Never concluded from silence: a
                    // validator that restarts cut off from its honest peers, or hearing only
                    // f liars saying "nothing", waits for them.
                    None if shown.answered >= enough => break,
                    _ => {}
                }
                if sync_context.current() >= wait_end {
                    match &shown.newest {
                        Some(newest) => tracing::warn!(
                            height = newest.block.height().get(),
                            "no block finalized since this start: starting consensus from an \
                             older one, where this validator may contradict votes it cast \
                             before losing its journal"
                        ),
                        None => tracing::warn!(
                            answered = shown.answered,
                            "too few peers answered to tell a new network from a running \
                             one: starting consensus without knowing where the chain stands, \
                             where this validator may contradict votes it cast before losing \
                             its journal"
                        ),
                    }
                    break;
                }
                sync_context.sleep(JOURNAL_LOST_RETRY).await;
                sync::newest_finalized(
                    &mut sync_context,
                    &mut snapshot_sender,
                    &mut snapshot_receiver,
                    &mut sync_blocker,
                    &scheme,
                    limits,
                    sync_config.timeout,
                    &mut shown,
                )
                .await;
            }
            let newest = shown.newest.filter(|newest| {
                sync_floor
                    .as_ref()
                    .is_none_or(|floor| floor.view() < newest.finalization.view())
            });
            if let Some(newest) = &newest {
                tracing::info!(
                    view = newest.finalization.view().get(),
                    height = newest.block.height().get(),
                    "consensus starts from a peer's newest finalization"
                );
                floor_shown = Some(ConsensusFloor {
                    view: newest.finalization.view().get(),
                    height: newest.block.height().get(),
                    block_time_ms: Some(newest.block.time().millis()),
                    source: FloorSource::PeersNewest,
                });
            }
            consensus_floor = newest.map(|newest| newest.finalization);
        }
    }
    let consensus_start = ConsensusStart {
        journal_lost,
        started_ms,
        floor: floor_shown.or_else(|| {
            sync_floor.as_ref().map(|floor| ConsensusFloor {
                view: floor.view().get(),
                height: chain.finalized_height() + 1,
                block_time_ms: None,
                source: FloorSource::Snapshot,
            })
        }),
    };
    let shared = Arc::new(Shared::new(
        chain,
        Mempool::new(config.mempool),
        1 << 20,
        1 << 18,
    ));
    *lock(&shared.snapshot) = served;
    lock(&shared.status).consensus_start = Some(consensus_start);
    *lock(&shared.observations) =
        ObservationPool::new(config.participants.iter().cloned().collect());
    let block_codec = BlockCodec {
        limits,
        keys: shared.keys.clone(),
    };
    let mut handles = Vec::new();

    let (resolver_rx, resolver) = marshal_resolver::init(
        context.child("marshal_resolver"),
        marshal_resolver::Config {
            public_key: me.clone(),
            peer_provider: peer_provider.clone(),
            blocker: blocker.clone(),
            mailbox_size: config.mailbox_size,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );
    let (broadcast_engine, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: config.mailbox_size,
            deque_size: 16,
            priority: false,
            codec_config: block_codec.clone(),
            peer_provider,
            strategy: Sequential,
        },
    );
    handles.push(broadcast_engine.start(channels.blocks));

    // Prunable, so `archive_retention` holds: an immutable archive ignores marshal's prune
    // and would keep every block for ever.
    let finalizations = prunable::Archive::init(
        context.child("finalizations"),
        // Unbounded is safe here only because the archive reads this validator's own disk.
        archive_config(
            &prefix,
            "finalizations",
            page_cache.clone(),
            ed25519::Scheme::certificate_codec_config_unbounded(),
        ),
    )
    .await
    .map_err(|error| StorageError::Archive {
        archive: "finalizations",
        error,
    })?;
    let blocks = prunable::Archive::init(
        context.child("blocks"),
        archive_config(&prefix, "blocks", page_cache.clone(), block_codec.clone()),
    )
    .await
    .map_err(|error| StorageError::Archive {
        archive: "blocks",
        error,
    })?;

    let (actor, marshal_mailbox, floor) = MarshalActor::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::<ed25519::Scheme, Epoch>::new(scheme.clone()),
            epocher: epocher.clone(),
            start: match &sync_floor {
                Some(finalization) => marshal::Start::Floor(finalization.clone()),
                None => marshal::Start::Genesis(Digested::precomputed(genesis, genesis_digest)),
            },
            partition_prefix: format!("{prefix}-marshal"),
            mailbox_size: config.mailbox_size,
            view_retention: ViewDelta::new(10),
            prunable_items_per_section: layout.marshal_cache_section_views,
            page_cache: page_cache.clone(),
            replay_buffer: NZUsize!(1024 * 1024),
            key_write_buffer: NZUsize!(1024 * 1024),
            value_write_buffer: NZUsize!(1024 * 1024),
            block_codec_config: block_codec,
            max_repair: NZUsize!(16),
            max_pending_acks: NZUsize!(16),
            strategy: Sequential,
        },
    )
    .await;
    tracing::info!(processed = ?floor.processed().map(|p| p.height()), "marshal initialized");
    let (finalized_feed, finalized_blocks) = FinalizedFeed::new(shared.clone());
    handles.push(actor.start(finalized_feed, buffer, (resolver_rx, resolver)));

    let receipts = ReceiptArchive::init(context.child("receipts"), &prefix).await?;
    let (receipt_queries, receipt_query_rx) = receipt_archive::query_channel();
    *lock(&shared.receipt_queries) = Some(receipt_queries);
    handles.push(receipt_archive::serve(
        context.child("receipt_lookups"),
        receipts.clone(),
        receipt_query_rx,
    ));
    let executor = Executor::new(
        context.child("executor"),
        shared.clone(),
        store,
        marshal_mailbox.clone(),
        config.executor,
        receipts,
    );
    let marshal_for_api = marshal_mailbox.clone();
    // Capacity 1: the snapshot actor hands over at most one synced state at a time.
    let (installs, synced_states) = futures::channel::mpsc::channel(1);
    let (certified_sender, certified) =
        futures::channel::mpsc::channel(crate::executor::CERTIFIED_MAX);
    handles.push(
        context
            .child("executor_task")
            .spawn(move |_| executor.run(finalized_blocks, synced_states, certified)),
    );
    handles.extend(gossip::start(
        context.child("gossip"),
        shared.clone(),
        channels.transactions,
        config.gossip,
        blocker.clone(),
    ));

    // Without a sync configuration the node never syncs while running either.
    let runtime_sync = config.sync.map(|sync_config| sync::RuntimeSync {
        config: sync_config,
        scheme: scheme.clone(),
        snapshot_bytes_max: config.snapshot_bytes_max as u64,
        gap_max: config.executor.archive_retention + config.executor.snapshot_interval,
        installs,
    });
    handles.push(sync::serve(
        context.child("sync"),
        shared.clone(),
        marshal_mailbox.clone(),
        (snapshot_sender, snapshot_receiver),
        limits,
        scheme.certificate_codec_config(),
        blocker.clone(),
        runtime_sync,
    ));

    handles.extend(crate::observer::start(
        context.child("observer"),
        shared.clone(),
        config.signer.clone(),
        config.price_sources,
        channels.observations,
        config.observer,
        blocker.clone(),
    ));

    let app = wrap(
        ExchangeApp::new(shared.clone(), feed, config.app, config.observer.age_max),
        shared.clone(),
    );
    // Inline, not Deferred: a validator votes to notarize only a block its verify accepted.
    // Verify judges the block's time by this validator's clock, and honest clocks differ.
    // Deferred votes first and judges for certification, where two honest validators
    // certifying a notarized block and two refusing it left a view that could be neither
    // finalized nor nullified, for good (`tests/sweep.rs`
    // `honest_validators_judging_a_block_s_time_differently_do_not_stop_the_chain`).
    let wrapper =
        marshal::standard::Inline::new(context.child("inline"), app, marshal_mailbox, epocher);
    lock(&shared.notarizations).record_start(crate::app::now_ms(&context));
    let monitor = ConsensusMonitor {
        shared: shared.clone(),
        clock: Arc::new(context.child("consensus_monitor")),
        me: match scheme.me() {
            Some(Membership::Signer(me) | Membership::Member(me)) => Some(me),
            None => None,
        },
        finalized: certified_sender,
    };
    let engine = simplex::Engine::new(
        context.child("simplex"),
        simplex::Config {
            scheme,
            elector: LeaderSchedule::default(),
            blocker,
            automaton: wrapper.clone(),
            relay: wrapper.clone(),
            reporter: Reporters::from((wrapper, monitor)),
            strategy: Sequential,
            partition: simplex_partition(&prefix),
            mailbox_size: config.mailbox_size,
            epoch: Epoch::zero(),
            floor: match consensus_floor.or(sync_floor) {
                Some(finalization) => simplex::Floor::Finalized(finalization),
                None => simplex::Floor::Genesis(genesis_digest),
            },
            replay_buffer: NZUsize!(1024 * 1024),
            write_buffer: NZUsize!(1024 * 1024),
            page_cache,
            leader_timeout: config.timeouts.leader,
            certification_timeout: config.timeouts.certification,
            timeout_retry: config.timeouts.retry,
            view_retention: ViewDelta::new(10),
            skip: SkipPolicy::Enabled {
                timeout: config.timeouts.skip,
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NZDuration!(Duration::from_secs(1)),
            fetch_retry_delay: Duration::from_millis(100),
            forward: ForwardPolicy::SilentLeader,
            track_historical_votes: false,
        },
    );
    handles.push(engine.start(channels.votes, channels.certificates, channels.resolver));
    Ok(Validator {
        shared,
        marshal: marshal_for_api,
        handles,
    })
}

/// Views per section of marshal's cache of blocks and certificates not yet finalized. Each new
/// section opens a blob per archive (ten, each created and its directory synced) and pruning
/// removes the old ones; at 10 views a section that work fell on every tenth block and held
/// it: those blocks' orders took 15 ms longer on average (`bulwark bench cluster` at 2,000
/// orders a second). At 100 it falls on one block in 100 and the cache keeps at most 110
/// views. Fixed for the life of the data: a directory keeps the value it was first written
/// with ([`crate::layout`]).
pub const MARSHAL_CACHE_SECTION_VIEWS: u64 = 100;

/// Heights per section of marshal's archives: the granularity of pruning, fixed for the life
/// of the data. At most this many blocks beyond `archive_retention` stay on disk; 1,000
/// retained blocks are 16 sections (one blob each per partition).
pub const ARCHIVE_SECTION_BLOCKS: u64 = 64;

/// How long a validator without its consensus journal that joins a running chain waits for a
/// block finalized since it started (asking its peers for their newest finalized block every
/// `JOURNAL_LOST_RETRY`, [`sync::newest_finalized`]) before it starts simplex from that
/// block's finalization. Past it (a chain that cannot move without this validator), it starts
/// from the newest it has seen: liveness before the risk of contradicting its own lost votes.
/// It starts at once only if all but f peers answer and none shows a finalized block (a new
/// network); silence, or f liars saying "nothing is finalized", make it ask again (a
/// validator restarted cut off from its honest peers would otherwise start from an older
/// snapshot a liar served, in views it may have voted in: `divergence.rs`
/// `a_wiped_validator_cut_off_from_its_honest_peers_waits_for_them`).
/// Its state meanwhile is its peers' newest snapshot, whatever its age, and marshal backfills
/// from there (until 2026-12-05 it waited for a snapshot of a block proposed since its start:
/// up to a snapshot interval, and for good where the chain had no snapshot yet, seed 2402).
pub const JOURNAL_LOST_WAIT: Duration = Duration::from_secs(30);
const JOURNAL_LOST_RETRY: Duration = Duration::from_millis(500);

/// Simplex's journal partition (one epoch, for ever: a static validator set).
fn simplex_partition(prefix: &str) -> String {
    format!("{prefix}-simplex-epoch0")
}

/// Configuration of one of marshal's prunable archives (finalized blocks, or their
/// finalizations, by height and digest), under this validator's prefix.
fn archive_config<C>(
    prefix: &str,
    name: &str,
    page_cache: CacheRef,
    codec_config: C,
) -> prunable::Config<EightCap, C> {
    prunable::Config {
        translator: EightCap,
        metadata_partition: format!("{prefix}-{name}-pruned-metadata"),
        key_partition: format!("{prefix}-{name}-pruned-key"),
        key_page_cache: page_cache,
        value_partition: format!("{prefix}-{name}-pruned-value"),
        compression: None,
        codec_config,
        items_per_section: NZU64!(ARCHIVE_SECTION_BLOCKS),
        key_write_buffer: NZUsize!(1024 * 1024),
        value_write_buffer: NZUsize!(1024 * 1024),
        replay_buffer: NZUsize!(1024 * 1024),
    }
}
