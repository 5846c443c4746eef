//! A Bulwark cluster (4 validators unless asked for more) on Commonware's deterministic runtime
//! and simulated network, with traders submitting real signed transactions, and the checks
//! every scenario ends with.
//!
//! Each validator runs under its own supervising task, so a crash is an abort of that task
//! (its storage, kept by the runtime, survives) and a restart is a new task over the same
//! partitions. Traders submit to a "home" validator's mempool, which gossips to the others.

use bulwark_exchange::oracle::OracleGenesis;
use bulwark_exchange::{ExchangeParams, Genesis};
use bulwark_node::app::{AppConfig, now_ms};
use bulwark_node::engine::{self, Channels, Timeouts, ValidatorConfig};
use bulwark_node::executor::ExecutorConfig;
use bulwark_node::gossip::GossipConfig;
use bulwark_node::mempool::{MempoolLimits, TxDigest, tx_digest};
use bulwark_node::observer::ObserverConfig;
use bulwark_node::prices::RandomWalkFeed;
use bulwark_node::shared::{FinalizedRecord, Shared, lock};
use bulwark_node::sync::SyncConfig;
use bulwark_oracle::{MarketConfig, ObserverNoise, OracleConfig, SourceQuorum, SyntheticSource};
use bulwark_types::{
    AssetCode, BlockLimits, BlockTime, ClientOrderId, InstrumentId, InstrumentName, InstrumentSpec,
    Money, Multiplier, OrderRequest, PrivateKey, PublicKey, Qty, Side, SignedTx, TimeInForce,
    TxBody, UnitPrice,
};
use commonware_cryptography::Signer as _;
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{
    Clock, Handle, Metrics as _, Quota, Runner as _, Spawner, Supervisor as _, deterministic,
};
use commonware_utils::ordered::Set;
use commonware_utils::{NZU32, NZUsize};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Validators of [`Cluster::new`].
pub const VALIDATORS: usize = 4;
/// Most validators of [`Cluster::with_validators`].
pub const VALIDATORS_MAX: usize = 16;
/// Every validator of the cluster.
pub const ALL: [usize; VALIDATORS] = [0, 1, 2, 3];
pub const NAMESPACE: &[u8] = b"_BULWARK_TEST";
/// Traders of [`Cluster::start_traders`].
pub const TRADERS: usize = 16;
/// Most traders of [`Cluster::start_market`].
pub const TRADERS_MAX: usize = 256;
/// Submissions whose finalized outcome [`Traffic::pending`] waits for; more are not timed.
pub const PENDING_MAX: usize = 65_536;
const GOSSIP_BATCH_MAX: usize = 256;
/// Simulated seconds any wait may take before the scenario is declared stuck.
const WAIT_MAX: Duration = Duration::from_secs(900);

pub type Context = deterministic::Context;

// A child of this module, not of the crate, so that `bulwark-node`'s tests, which compile this
// file by path, compile it too (the crate re-exports it as `clock`).
#[path = "clock.rs"]
pub mod clock;
#[path = "disk.rs"]
pub mod disk;
use clock::{ClockSkew, SkewedContext};
use disk::DiskFault;

/// The context a validator runs under: the runtime's, with the validator's own clock
/// ([`clock`]).
pub type NodeContext = SkewedContext<Context>;
/// A validator's sender on the transaction gossip channel.
pub type GossipSender = simulated::Sender<PublicKey, Context>;
/// Something a validator runs beside itself, under its own context (so it dies with it), with
/// a clone of its gossip sender: the lab's flooder.
pub type Beside = Arc<dyn Fn(Context, GossipSender) + Send + Sync>;

/// Where a validator's shared state appears once it has started (None while crashed).
type Slot = Arc<Mutex<Option<Arc<Shared>>>>;

pub struct Cluster {
    pub context: Context,
    pub oracle: Oracle<PublicKey, Context>,
    pub signers: Vec<PrivateKey>,
    pub participants: Set<PublicKey>,
    pub genesis: Genesis,
    pub link: Link,
    pub slots: Vec<Slot>,
    pub tasks: Vec<Option<Handle<()>>>,
    /// Storage partition prefix per validator; a wiped validator gets a fresh one.
    pub prefixes: Vec<String>,
    pub admin: PrivateKey,
    pub bridge: PrivateKey,
    pub traffic: Arc<Mutex<Traffic>>,
    /// Each validator's clock offset (`clock-skew` faults set it; zero otherwise).
    pub clocks: Vec<Arc<ClockSkew>>,
    /// Each validator's disk (`disk-fault` faults arm it; nothing fails otherwise). It outlives
    /// the validator's crashes and restarts, as its storage does.
    pub disks: Vec<Arc<DiskFault>>,
    /// What each validator runs beside itself while it runs (each start and restart).
    pub beside: Vec<Option<Beside>>,
    /// The blocks' limits every validator proposes and verifies under (the venue's unless a
    /// scenario scales its blocks down).
    pub block_limits: BlockLimits,
}

/// What the traders did.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    pub submitted: u64,
    pub admitted: u64,
    /// Set to stop the traders.
    pub stop: bool,
    /// Admitted transactions not yet seen finalized, oldest first, at most [`PENDING_MAX`].
    /// The lab drains it to time submissions to their finalized outcome.
    pub pending: std::collections::VecDeque<Submission>,
}

/// An admitted transaction the lab times to its finalized outcome.
#[derive(Clone, Debug)]
pub struct Submission {
    pub digest: TxDigest,
    /// When it was admitted: ms since the Unix epoch of the runtime's clock.
    pub submitted_ms: u64,
    pub signer: PublicKey,
}

/// Archive retention for runtime-sync scenarios: 50 blocks below the newest snapshot (every
/// 25 blocks), sync threshold 25, so peers prune what a cut-off validator needs within a few
/// hundred blocks.
pub const RETENTION_SHORT: u64 = 50;

/// Tunes a validator's configuration to [`RETENTION_SHORT`].
pub fn short_retention(config: &mut ValidatorConfig) {
    config.executor = ExecutorConfig {
        snapshot_interval: 25,
        archive_retention: RETENTION_SHORT,
    };
    if let Some(sync) = config.sync.as_mut() {
        sync.threshold = 25;
    }
}

/// A link with `success_percent` of messages delivered.
pub fn link(latency_ms: u64, jitter_ms: u64, success_percent: u64) -> Link {
    Link {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(jitter_ms),
        success_rate: commonware_utils::Probability::new(success_percent, 100)
            .expect("a probability"),
    }
}

pub fn validator_key(i: usize) -> PrivateKey {
    PrivateKey::from_seed(100 + i as u64)
}

fn perpetual() -> InstrumentSpec {
    InstrumentSpec {
        name: InstrumentName::parse("BTC_USDC-PERPETUAL").expect("valid name"),
        tick_size: UnitPrice::from_micros(500_000),
        multiplier: Multiplier::from_e8(100_000),
        lot_size: Qty::from_contracts(1),
        size_min: Qty::from_contracts(1),
    }
}

pub fn btc() -> AssetCode {
    AssetCode::parse("BTC").expect("valid asset")
}

/// The signing key of the market's trader `t` (also its account's owner key).
pub fn trader_key(t: usize) -> PrivateKey {
    PrivateKey::from_seed(1_000 + t as u64)
}

impl Cluster {
    /// A cluster of [`VALIDATORS`] with every link up at `link`; no validator started yet.
    pub async fn new(context: Context, link: Link) -> Self {
        Self::with_validators(context, VALIDATORS, link).await
    }

    /// A cluster of `n` validators with every link up at `link`; none started yet.
    pub async fn with_validators(context: Context, n: usize, link: Link) -> Self {
        assert!((1..=VALIDATORS_MAX).contains(&n), "{n} validators");
        let signers: Vec<PrivateKey> = (0..n).map(validator_key).collect();
        let participants = Set::from_iter_dedup(signers.iter().map(|s| s.public_key()));
        let (admin, bridge) = (PrivateKey::from_seed(1), PrivateKey::from_seed(2));
        let genesis = Genesis {
            admin: admin.public_key(),
            bridge: bridge.public_key(),
            params: ExchangeParams::defaults(),
            time: BlockTime::from_millis(now_ms(&context)),
            oracle: Some(OracleGenesis {
                validators: signers.iter().map(|k| k.public_key()).collect(),
                config: OracleConfig::GENESIS,
            }),
            custody: None,
        };
        let max_size = engine::max_message_size(n as u32, &BlockLimits::DEFAULT, GOSSIP_BATCH_MAX);
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size,
                max_peers_per_set: NonZeroUsize::new(n).expect("at least one validator"),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            participants.iter().cloned(),
        )
        .await;
        network.start();
        let cluster = Self {
            context,
            oracle,
            signers,
            participants,
            genesis,
            link,
            slots: (0..n).map(|_| Slot::default()).collect(),
            tasks: (0..n).map(|_| None).collect(),
            prefixes: (0..n).map(|i| format!("validator-{i}")).collect(),
            admin,
            bridge,
            traffic: Arc::default(),
            clocks: (0..n).map(|_| Arc::default()).collect(),
            disks: (0..n).map(|_| Arc::default()).collect(),
            beside: vec![None; n],
            block_limits: BlockLimits::DEFAULT,
        };
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    cluster.set_link(i, j, true).await;
                }
            }
        }
        cluster
    }

    pub async fn set_link(&self, from: usize, to: usize, up: bool) {
        let link = up.then(|| self.link.clone());
        self.set_link_to(from, to, link).await;
    }

    /// Sets the link from `from` to `to` (replacing the one there), or cuts it with `None`.
    pub async fn set_link_to(&self, from: usize, to: usize, link: Option<Link>) {
        let (a, b) = (
            self.signers[from].public_key(),
            self.signers[to].public_key(),
        );
        // An existing link is replaced.
        let _ = self.oracle.remove_link(a.clone(), b.clone()).await;
        if let Some(link) = link {
            self.oracle.add_link(a, b, link).await.expect("link added");
        }
    }

    /// Cuts (or restores) every link between the two groups, both ways.
    pub async fn partition(&self, left: &[usize], right: &[usize], up: bool) {
        for &a in left {
            for &b in right {
                self.set_link(a, b, up).await;
                self.set_link(b, a, up).await;
            }
        }
    }

    pub fn validator_config(&self, i: usize) -> ValidatorConfig {
        ValidatorConfig {
            signer: self.signers[i].clone(),
            participants: self.participants.clone(),
            namespace: NAMESPACE.to_vec(),
            partition_prefix: self.prefixes[i].clone(),
            genesis: self.genesis.clone(),
            app: AppConfig {
                limits: self.block_limits,
                proposal_bytes_max: (512 << 10).min(self.block_limits.block_bytes_max()),
                block_interval_min: Duration::from_millis(50),
                time_drift_max: Duration::from_millis(500),
                time_lag_max: Duration::from_secs(5),
                speculation_depth_max: 32,
            },
            executor: ExecutorConfig {
                snapshot_interval: 25,
                archive_retention: 200,
            },
            mempool: MempoolLimits::DEFAULT,
            gossip: GossipConfig {
                batch_max: GOSSIP_BATCH_MAX,
                interval: Duration::from_millis(20),
                peer_txs_per_second: 20_000,
                // Peers' transactions admitted as they arrive, as when the lab's attack tables
                // were measured (a validator's default stages 128 for one batch verification,
                // `bulwark::validator`): staging moves when each block's transactions arrive,
                // and with it which blocks a Byzantine leader finds its targets in.
                stage_min: 1,
                stage_linger: Duration::ZERO,
            },
            timeouts: Timeouts::DEFAULT,
            mailbox_size: NZUsize!(1024),
            snapshot_bytes_max: 64 << 20,
            observer: ObserverConfig {
                interval: Duration::from_millis(250),
                age_max: Duration::from_secs(3),
                quorum: SourceQuorum::DEFAULT,
            },
            price_sources: vec![Box::new(
                self.honest_source()
                    .with_noise(ObserverNoise {
                        observer: i as u32,
                        noise_bps: 2,
                    })
                    .expect("valid noise"),
            )],
            sync: Some(SyncConfig {
                threshold: 100,
                attempts: 3,
                timeout: Duration::from_secs(2),
                stall: Duration::from_secs(5),
            }),
        }
    }

    /// The price source every validator observes before its own observation noise: the
    /// honest price a report compares the chain's index with.
    pub fn honest_source(&self) -> SyntheticSource {
        SyntheticSource::new(
            42,
            vec![MarketConfig::crypto(
                btc(),
                UnitPrice::from_usdc(100_000),
                self.genesis.time.millis(),
            )],
        )
        .expect("a valid market")
    }

    /// Starts (or restarts, over the same storage) honest validator `i`.
    pub fn start(&mut self, i: usize) {
        self.start_tuned_with(i, |_| {}, |app, _| app);
    }

    /// `start`, with `tune` applied to the validator's configuration first.
    pub fn start_tuned(&mut self, i: usize, tune: impl FnOnce(&mut ValidatorConfig)) {
        self.start_tuned_with(i, tune, |app, _| app);
    }

    /// Starts (or restarts) validator `i` with consensus driving `wrap(app, shared)` in place
    /// of its exchange application (see `bulwark_node::engine::start_with`): a Byzantine
    /// proposer of the lab's `byzantine` module.
    pub fn start_with<A, W>(&mut self, i: usize, wrap: W)
    where
        W: FnOnce(bulwark_node::app::ExchangeApp, Arc<Shared>) -> A + Send + 'static,
        A: commonware_consensus::Application<
                NodeContext,
                SigningScheme = commonware_consensus::simplex::scheme::ed25519::Scheme,
                Context = bulwark_node::block::Ctx,
                Block = bulwark_node::block::ChainBlock,
                Input = (),
            >,
    {
        self.start_tuned_with(i, |_| {}, wrap);
    }

    /// [`Self::start_with`] with `tune` applied to the validator's configuration first.
    pub fn start_tuned_with<A, W>(
        &mut self,
        i: usize,
        tune: impl FnOnce(&mut ValidatorConfig),
        wrap: W,
    ) where
        W: FnOnce(bulwark_node::app::ExchangeApp, Arc<Shared>) -> A + Send + 'static,
        A: commonware_consensus::Application<
                NodeContext,
                SigningScheme = commonware_consensus::simplex::scheme::ed25519::Scheme,
                Context = bulwark_node::block::Ctx,
                Block = bulwark_node::block::ChainBlock,
                Input = (),
            >,
    {
        assert!(self.tasks[i].is_none(), "validator {i} already running");
        let oracle = self.oracle.clone();
        let mut config = self.validator_config(i);
        tune(&mut config);
        let slot = self.slots[i].clone();
        let (skew, beside) = (self.clocks[i].clone(), self.beside[i].clone());
        let disk = self.disks[i].clone();
        let feed = RandomWalkFeed::new(
            btc(),
            7,
            self.genesis.time,
            UnitPrice::from_usdc(100_000),
            5,
        );
        let handle = self
            .context
            .child("validator")
            .with_attribute("index", i)
            .spawn(move |context| async move {
                let control = oracle.control(config.signer.public_key());
                let quota = Quota::per_second(NZU32!(4096));
                let mut registered = Vec::new();
                for channel in 0..8u64 {
                    registered.push(
                        control
                            .register(channel, quota)
                            .await
                            .expect("channel registers"),
                    );
                }
                let mut channels = registered.into_iter();
                let mut next = || channels.next().expect("eight channels");
                let channels = Channels {
                    votes: next(),
                    certificates: next(),
                    resolver: next(),
                    backfill: next(),
                    blocks: next(),
                    transactions: next(),
                    snapshots: next(),
                    observations: next(),
                };
                if let Some(beside) = beside {
                    beside(context.child("beside"), channels.transactions.0.clone());
                }
                let node = SkewedContext::new(context.child("node"), skew).with_disk(disk.clone());
                // Startup runs in this task, not one the node spawns: a panic of Commonware's
                // storage code here on a failed disk is a fail-stop too (`disk::fail_stop`).
                let started = engine::start_with(
                    node,
                    config,
                    channels,
                    control.clone(),
                    oracle.manager(),
                    Box::new(feed),
                    wrap,
                );
                let validator = match disk::fail_stop(&disk, started).await {
                    Ok(validator) => validator,
                    Err(error) => {
                        tracing::error!(index = i, %error, "validator did not start: its disk");
                        disk.refused_by_validator();
                        return;
                    }
                };
                *lock(&slot) = Some(validator.shared.clone());
                let (result, component, _) = futures::future::select_all(validator.handles).await;
                tracing::warn!(index = i, component, ?result, "validator component exited");
            });
        self.tasks[i] = Some(handle);
    }

    /// Aborts validator `i` and everything under it; its storage survives.
    pub async fn crash(&mut self, i: usize) {
        let handle = self.tasks[i].take().expect("validator running");
        *lock(&self.slots[i]) = None;
        handle.abort();
        let _ = handle.await;
    }

    /// Crashes validator `i` and gives it fresh, empty storage.
    pub async fn wipe(&mut self, i: usize) {
        self.crash(i).await;
        self.prefixes[i] = format!("{}-wiped", self.prefixes[i]);
        // A fresh disk holds nothing a rotting one stored.
        self.disks[i].wiped();
    }

    /// Wipes validator `i`'s disk and restarts it; waits until every validator is 40 heights
    /// past where the cluster stood and 40 past the first height the wiped validator executed
    /// (it starts consensus from a finalization of a block proposed after its restart: see
    /// `bulwark_node::engine::JOURNAL_LOST_WAIT`), stops the traders, checks agreement over
    /// at least 40 heights and returns that first height.
    pub async fn wipe_and_resync(&mut self, i: usize) -> u64 {
        self.wipe(i).await;
        self.start(i);
        let goal = self.heights().into_iter().max().expect("validators") + 40;
        let all = self.all();
        self.wait_until(&all, goal).await;
        let first = {
            let shared = self.shared(i).expect("restarted");
            let history = lock(&shared.history);
            history.front().expect("it executed blocks").height
        };
        self.wait_until(&all, first + 40).await;
        self.stop_traders();
        assert!(self.check_agreement(&all) >= 40);
        first
    }

    /// Cuts validator `i` off from every other validator until they have finalized `blocks`
    /// heights past where it stood, then heals the links; the height it stood at.
    pub async fn isolate_for(&self, i: usize, blocks: u64) -> u64 {
        let others: Vec<usize> = self.all().into_iter().filter(|k| *k != i).collect();
        self.partition(&[i], &others, false).await;
        let cut_at = self.finalized_height(i);
        self.wait_until(&others, cut_at + blocks).await;
        self.partition(&[i], &others, true).await;
        cut_at
    }

    /// How many validators the cluster has.
    pub fn n(&self) -> usize {
        self.signers.len()
    }

    /// Every validator's index.
    pub fn all(&self) -> Vec<usize> {
        (0..self.n()).collect()
    }

    /// The index of the validator with public key `key`.
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.signers.iter().position(|s| s.public_key() == *key)
    }

    pub fn shared(&self, i: usize) -> Option<Arc<Shared>> {
        lock(&self.slots[i]).clone()
    }

    pub fn finalized_height(&self, i: usize) -> u64 {
        self.shared(i)
            .map_or(0, |s| lock(&s.chain).finalized_height())
    }

    pub fn heights(&self) -> Vec<u64> {
        (0..self.n()).map(|i| self.finalized_height(i)).collect()
    }

    pub fn now_s(&self) -> f64 {
        now_ms(&self.context) as f64 / 1_000.0
    }

    /// Waits until every validator in `who` has executed `height`; panics if it takes longer
    /// than [`WAIT_MAX`] of simulated time.
    pub async fn wait_until(&self, who: &[usize], height: u64) {
        let deadline = self.context.current() + WAIT_MAX;
        while who.iter().any(|i| self.finalized_height(*i) < height) {
            assert!(
                self.context.current() < deadline,
                "stuck: waiting for {who:?} to reach {height}, heights {:?}, statuses {:?}",
                self.heights(),
                (0..self.n())
                    .map(|i| self.shared(i).map(|s| lock(&s.status).clone()))
                    .collect::<Vec<_>>()
            );
            self.context.sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts [`TRADERS`] traders: the admin lists the perpetual, the bridge funds every
    /// trader, then each trader places and cancels orders around the index every `interval`.
    pub fn start_traders(&self, seed: u64, interval: Duration) -> Handle<()> {
        self.start_market(seed, interval, TRADERS)
    }

    /// [`Cluster::start_traders`] with `traders` traders (at most [`TRADERS_MAX`]); trader `t`
    /// submits to validator `t mod n` and goes quiet while that validator is down.
    pub fn start_market(&self, seed: u64, interval: Duration, traders: usize) -> Handle<()> {
        assert!((1..=TRADERS_MAX).contains(&traders), "{traders} traders");
        let n = self.n();
        let slots = self.slots.clone();
        let traffic = self.traffic.clone();
        let (admin, bridge) = (self.admin.clone(), self.bridge.clone());
        self.context
            .child("traders")
            .spawn(move |context| async move {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let submit = |context: &mut Context, home: usize, txs: Vec<SignedTx>| {
                    let Some(shared) = lock(&slots[home % n]).clone() else {
                        return;
                    };
                    let digests: Vec<(TxDigest, PublicKey)> = txs
                        .iter()
                        .map(|tx| (tx_digest(tx), tx.tx.signer.clone()))
                        .collect();
                    let submitted = txs.len() as u64;
                    let results = shared.submit(txs, context, true);
                    let now = now_ms(context);
                    let mut traffic = lock(&traffic);
                    traffic.submitted += submitted;
                    for ((digest, signer), result) in digests.into_iter().zip(&results) {
                        if result.is_ok() {
                            traffic.admitted += 1;
                            if traffic.pending.len() < PENDING_MAX {
                                traffic.pending.push_back(Submission {
                                    digest,
                                    submitted_ms: now,
                                    signer,
                                });
                            }
                        }
                    }
                };
                let mut context = context;
                // Setup: retried until it is in a finalized state.
                let traders: Vec<PrivateKey> = (0..traders).map(trader_key).collect();
                let mut setup_nonce = 0u64;
                loop {
                    setup_nonce += 1;
                    let mut txs = vec![sign(
                        &admin,
                        setup_nonce,
                        TxBody::ListInstrument(perpetual()),
                    )];
                    for (i, trader) in traders.iter().enumerate() {
                        let body = TxBody::Deposit {
                            owner: trader.public_key(),
                            amount: Money::from_usdc(10_000_000),
                        };
                        // Above every nonce of the attempts before (at most TRADERS_MAX each).
                        txs.push(sign(&bridge, setup_nonce * 1_000 + i as u64, body));
                    }
                    // To the first validator that has started (none may have yet).
                    let home = loop {
                        match (0..n).find(|i| lock(&slots[*i]).is_some()) {
                            Some(home) => break home,
                            None => context.sleep(Duration::from_millis(10)).await,
                        }
                    };
                    submit(&mut context, home, txs.clone());
                    let ready = |shared: &Arc<Shared>| {
                        let chain = lock(&shared.chain);
                        let state = chain.finalized();
                        !state.instruments().is_empty()
                            && traders
                                .iter()
                                .all(|t| state.key_binding(&t.public_key()).is_some())
                    };
                    let mut waited = 0;
                    while waited < 50
                        && !(0..n).any(|i| lock(&slots[i]).as_ref().is_some_and(ready))
                    {
                        context.sleep(Duration::from_millis(100)).await;
                        waited += 1;
                    }
                    if waited < 50 {
                        break;
                    }
                    // Every retry uses higher nonces, so one that was lost is simply superseded.
                    setup_nonce += 1;
                }
                let mut nonces = vec![0u64; traders.len()];
                let mut client_ids = vec![0u64; traders.len()];
                while !lock(&traffic).stop {
                    let index = (0..n)
                        .find_map(|i| lock(&slots[i]).clone())
                        .and_then(|s| lock(&s.chain).finalized().index_price(btc()))
                        .unwrap_or(UnitPrice::from_usdc(100_000));
                    let index_ticks = index.micros() / 500_000;
                    for (t, key) in traders.iter().enumerate() {
                        nonces[t] += 1;
                        let body = if rng.random_range(0..10) == 0 {
                            TxBody::CancelAll { instrument: None }
                        } else {
                            client_ids[t] += 1;
                            let side = if rng.random_bool(0.5) {
                                Side::Buy
                            } else {
                                Side::Sell
                            };
                            let crossing = rng.random_range(0..10) < 3;
                            let offset: i64 = if crossing {
                                -2
                            } else {
                                rng.random_range(1..=20)
                            };
                            let ticks = match side {
                                Side::Buy => index_ticks - offset,
                                Side::Sell => index_ticks + offset,
                            };
                            TxBody::PlaceOrder(OrderRequest::limit(
                                InstrumentId::new(0),
                                ClientOrderId::new(client_ids[t]),
                                side,
                                Qty::from_contracts(rng.random_range(1..=5)),
                                UnitPrice::from_micros(ticks * 500_000),
                                if crossing {
                                    TimeInForce::ImmediateOrCancel
                                } else {
                                    TimeInForce::GoodTilCancelled
                                },
                            ))
                        };
                        submit(&mut context, t, vec![sign(key, nonces[t], body)]);
                    }
                    context.sleep(interval).await;
                }
            })
    }

    /// Checks that the validators in `who` agree on every finalized height they all executed
    /// (block, state digest after it, the digest of every transaction's outcome, and the hash
    /// of the whole state at every commitment height), that none halted, and returns how many
    /// heights were compared.
    pub fn check_agreement(&self, who: &[usize]) -> usize {
        let histories: Vec<BTreeMap<u64, FinalizedRecord>> = who
            .iter()
            .map(|i| {
                let shared = self.shared(*i).expect("validator running");
                let status = lock(&shared.status).clone();
                assert!(
                    status.halted.is_none(),
                    "validator {i} halted: {:?}",
                    status.halted
                );
                let history = lock(&shared.history);
                history.iter().map(|r| (r.height, r.clone())).collect()
            })
            .collect();
        let mut compared = 0;
        for (height, record) in &histories[0] {
            if histories.iter().all(|h| h.contains_key(height)) {
                for (k, history) in histories.iter().enumerate() {
                    assert_eq!(
                        &history[height], record,
                        "validator {} disagrees with validator {} at height {height}",
                        who[k], who[0]
                    );
                }
                compared += 1;
            }
        }
        // The states themselves: every record of a commitment height carries the state hash
        // each validator computed from its own finalized state (or it would have halted).
        let states = histories[0]
            .values()
            .filter(|r| {
                r.state_hash.is_some() && histories.iter().all(|h| h.contains_key(&r.height))
            })
            .count();
        assert!(
            compared < 2 * bulwark_node::commitment::STATE_HASH_INTERVAL as usize || states > 0,
            "{compared} common heights compared, yet no state hash among them"
        );
        compared
    }

    /// Total transactions and trades executed by validator `i`.
    pub fn executed(&self, i: usize) -> (u64, u64) {
        let shared = self.shared(i).expect("validator running");
        let status = lock(&shared.status);
        (status.transactions_executed, status.trades_executed)
    }

    pub fn stop_traders(&self) {
        lock(&self.traffic).stop = true;
    }

    /// Every validator any honest validator's p2p blocked (for Byzantine scenarios).
    pub async fn blocked(&self) -> Vec<(usize, usize)> {
        let index = |k: &PublicKey| {
            self.signers
                .iter()
                .position(|s| s.public_key() == *k)
                .expect("a validator")
        };
        self.oracle
            .blocked()
            .await
            .expect("oracle answers")
            .iter()
            .map(|(a, b)| (index(a), index(b)))
            .collect()
    }

    /// Evidence of Byzantine behaviour (conflicting votes) the validators `who` reported, in all.
    pub fn faults_observed(&self, who: &[usize]) -> u64 {
        who.iter()
            .map(|i| self.shared(*i).expect("a running validator"))
            .map(|shared| shared.status.lock().unwrap().faults_observed)
            .sum()
    }

    /// A metric line of validator `i`, for diagnostics.
    pub fn metrics(&self) -> String {
        self.context.encode()
    }
}

/// A registered channel of the simulated network.
pub type Channel = (
    simulated::Sender<PublicKey, Context>,
    simulated::Receiver<PublicKey>,
);

impl Cluster {
    /// Runs `behaviour` in place of validator `i` (a Byzantine mock, a garbage sender): with
    /// that validator's signing scheme and `channels` registered under its key.
    pub fn spawn_impostor<F, Fut>(
        &self,
        i: usize,
        channels: &'static [u64],
        behaviour: F,
    ) -> Handle<()>
    where
        F: FnOnce(
                Context,
                commonware_consensus::simplex::scheme::ed25519::Scheme,
                Vec<Channel>,
            ) -> Fut
            + Send
            + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let signer = self.signers[i].clone();
        let scheme = commonware_consensus::simplex::scheme::ed25519::Scheme::signer(
            NAMESPACE,
            self.participants.clone(),
            signer.clone(),
        )
        .expect("a participant");
        let oracle = self.oracle.clone();
        self.context
            .child("impostor")
            .with_attribute("index", i)
            .spawn(move |context| async move {
                let control = oracle.control(signer.public_key());
                let mut registered = Vec::with_capacity(channels.len());
                for channel in channels {
                    let quota = Quota::per_second(NZU32!(4096));
                    registered.push(control.register(*channel, quota).await.expect("registers"));
                }
                behaviour(context, scheme, registered).await;
            })
    }
}

pub fn sign(key: &PrivateKey, nonce: u64, body: TxBody) -> SignedTx {
    body.signed(key, nonce)
}

/// Runs `f` on a fresh deterministic runtime with `seed`, its clock starting at the Unix epoch.
pub fn run<F, Fut>(seed: u64, f: F)
where
    F: FnOnce(Context) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    run_from(seed, 0, f)
}

/// [`run`] with the runtime's clock starting `start_ms` milliseconds after the Unix epoch
/// (option expiries are dates from 2000 on, so a run that lists options starts in their era).
pub fn run_from<F, Fut>(seed: u64, start_ms: u64, f: F)
where
    F: FnOnce(Context) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_test_writer()
        .try_init();
    let config = deterministic::Config::new()
        .with_seed(seed)
        .with_start_time(std::time::UNIX_EPOCH + Duration::from_millis(start_ms))
        .with_timeout(Some(Duration::from_secs(24 * 3600)));
    deterministic::Runner::new(config).start(f);
}
