//! One validator on the tokio runtime: authenticated TCP p2p (`lookup`, peers at known
//! addresses), the node from `bulwark_node::engine::start`, and its HTTP API.
//!
//! Owns: the node-local settings every `bulwark` command uses (`NodeSettings`), channel
//! quotas, the p2p handshake, and the API's telemetry (runtime metrics, connected peers).
//! Used by `bulwark node` (one per process) and by `bulwark devnet` and `bulwark bench
//! cluster` (several in one process, each with its own network, ports and partitions).

use anyhow::{Context as _, Result};
use bulwark_exchange::Genesis;
use bulwark_node::api::{self, ApiConfig, ApiState, NodeIdentity, Telemetry};
use bulwark_node::app::AppConfig;
use bulwark_node::engine::{self, Channels, Timeouts, ValidatorConfig};
use bulwark_node::executor::ExecutorConfig;
use bulwark_node::gossip::GossipConfig;
use bulwark_node::mempool::MempoolLimits;
use bulwark_node::observer::ObserverConfig;
use bulwark_node::prices::{PriceFeed, RandomWalkFeed, SmileFeed, SmileParams};
use bulwark_node::shared::Shared;
use bulwark_node::sync::SyncConfig;
use bulwark_oracle::{MarketConfig, ObserverNoise, SourceQuorum, SyntheticSource};
use bulwark_types::{AssetCode, BlockLimits, PrivateKey, PublicKey, UnitPrice, tx::TX_BYTES_MAX};
use commonware_cryptography::{ChaCha20Poly1305, Signer};
use commonware_p2p::{Address, AddressableManager as _, authenticated::lookup};
use commonware_runtime::{Handle, Metrics as _, Quota, Spawner as _, Supervisor as _, tokio};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::ordered::{Map, Set};
use commonware_utils::{NZU32, NZUsize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Node-local settings that are not part of the chain's identity. Every validator of a
/// network should use the same `limits` (they bound what a peer's block may hold).
#[derive(Copy, Clone, Debug)]
pub struct NodeSettings {
    /// Least time between a block and its parent.
    pub block_interval: Duration,
    pub limits: BlockLimits,
    pub mempool: MempoolLimits,
    pub snapshot_interval: u64,
    pub api: ApiConfig,
}

impl NodeSettings {
    /// 100 ms blocks of up to 4,096 transactions; snapshots every 100 blocks.
    pub const DEFAULT: Self = Self {
        block_interval: Duration::from_millis(100),
        limits: BlockLimits::DEFAULT,
        mempool: MempoolLimits::DEFAULT,
        snapshot_interval: 100,
        api: ApiConfig::DEFAULT,
    };
}

/// Where prices come from. Index: each validator observes a seeded synthetic BTC market
/// (`bulwark_oracle::SyntheticSource`, with its own noise) and the oracle in the state machine
/// takes the median of 2f+1 signed observations. Marks: the leader's Black-76 feed from that
/// index (leader-supplied; see `bulwark_node::prices` for the trust gap).
#[derive(Copy, Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSettings {
    /// Seed of the synthetic market (and of the marks' fallback walk); the same everywhere.
    pub seed: u64,
    /// Where the market starts, whole USDC per BTC.
    pub index_start_usdc: i64,
    /// Each validator's observation noise, basis points (standard deviation), at most 1,000.
    pub noise_bps: u32,
}

/// How long the synthetic market runs after genesis: after it the oracle goes stale (and the
/// exchange accepts only position-reducing orders). 180 days of 250 ms steps.
const MARKET_HORIZON_MS: u64 = 180 * 86_400_000;

impl PriceSettings {
    /// The leader's feed: option marks on a smile from the agreed index.
    pub fn feed(&self, genesis: &Genesis, limits: &BlockLimits) -> Box<dyn PriceFeed> {
        let btc = AssetCode::parse("BTC").expect("valid asset code");
        let walk = RandomWalkFeed::new(
            btc,
            self.seed,
            genesis.time,
            UnitPrice::from_usdc(self.index_start_usdc),
            5,
        );
        Box::new(SmileFeed::new(walk, SmileParams::DEVNET, limits.prices_max))
    }

    /// Validator `observer`'s view of the market.
    pub fn source(&self, genesis: &Genesis, observer: u32) -> Result<SyntheticSource> {
        let btc = AssetCode::parse("BTC").expect("valid asset code");
        let mut market = MarketConfig::crypto(
            btc,
            UnitPrice::from_usdc(self.index_start_usdc),
            genesis.time.millis(),
        );
        market.horizon_ms = MARKET_HORIZON_MS;
        let source = SyntheticSource::new(self.seed, vec![market])
            .map_err(|e| anyhow::anyhow!("synthetic market: {e}"))?;
        source
            .with_noise(ObserverNoise {
                observer,
                noise_bps: self.noise_bps,
            })
            .map_err(|e| anyhow::anyhow!("observer noise: {e}"))
    }
}

/// What distinguishes one validator of a network.
/// Commonware's two p2p presets.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum P2pPreset {
    /// Public addresses only, one handshake per IP every 5 s, peers blocked for 4 hours:
    /// what a validator on the internet runs.
    Production,
    /// Loopback and private addresses admitted, loose per-IP handshake limits (every devnet
    /// peer shares 127.0.0.1): devnets, benches and tests on one machine only.
    Local,
}

pub struct ValidatorSetup {
    pub signer: PrivateKey,
    /// Every validator's key and p2p address (this one's included).
    pub peers: Vec<(PublicKey, SocketAddr)>,
    pub p2p_listen: SocketAddr,
    pub api_listen: SocketAddr,
    /// The network's name: separates its consensus and p2p messages from any other network's.
    pub namespace: String,
    pub genesis: Genesis,
    pub prices: PriceSettings,
    /// Prefix of this validator's storage partitions; stable across restarts.
    pub partition_prefix: String,
    pub settings: NodeSettings,
    /// Ask peers for a snapshot at startup when far behind. A network whose validators all
    /// start together (a devnet) gains nothing: nobody answers until its own startup ends.
    pub state_sync: bool,
    /// Which p2p settings: chosen explicitly, never by default.
    pub p2p_preset: P2pPreset,
}

/// A running validator.
pub struct RunningValidator {
    pub shared: Arc<Shared>,
    pub public_key: PublicKey,
    pub api_addr: SocketAddr,
    pub handles: Vec<Handle<()>>,
}

/// The consensus configuration of one validator from its setup.
pub fn validator_config(
    setup: &ValidatorSetup,
    participants: Set<PublicKey>,
) -> Result<ValidatorConfig> {
    let limits = setup.settings.limits;
    let observer = participants
        .position(&setup.signer.public_key())
        .context("signer among the validators")?;
    Ok(ValidatorConfig {
        signer: setup.signer.clone(),
        participants,
        namespace: setup.namespace.as_bytes().to_vec(),
        partition_prefix: setup.partition_prefix.clone(),
        genesis: setup.genesis.clone(),
        app: AppConfig {
            limits,
            proposal_bytes_max: limits.txs_max * TX_BYTES_MAX,
            block_interval_min: setup.settings.block_interval,
            time_drift_max: Duration::from_millis(500),
            time_lag_max: Duration::from_secs(5),
            speculation_depth_max: 8,
        },
        executor: ExecutorConfig {
            snapshot_interval: setup.settings.snapshot_interval,
            archive_retention: 1_000,
        },
        mempool: setup.settings.mempool,
        gossip: GossipConfig {
            batch_max: GOSSIP_BATCH_MAX,
            // Three quarters of a client's orders reach the next leader only by gossip: 5 ms
            // rather than 10 took 2,000/s p99 from 76.9-82.5 ms down to 71.5-74.2 ms, at the
            // same CPU per order within the noise (2026-12-07, README "Performance").
            interval: Duration::from_millis(5),
            // Four times what a validator's clients can push at the bench's default rate.
            peer_txs_per_second: 40_000,
            // Past about 96 signatures a batch takes the cheaper multi-scalar algorithm; a
            // proposal admits whatever is staged first. (256 and 50 ms save a little more CPU
            // at 10,000 orders/s and add 4 to 5 ms of latency at 2,000/s.)
            stage_min: 128,
            stage_linger: Duration::from_millis(20),
        },
        timeouts: Timeouts::DEFAULT,
        mailbox_size: NZUsize!(1_024),
        snapshot_bytes_max: 512 << 20,
        // A validator more than 500 blocks behind its peers (or with a wiped disk) fetches
        // their snapshot instead of replaying; the archive keeps 1,000 blocks for the rest.
        // While running, the same: a validator whose execution stalls for 10 s more than 500
        // blocks behind what consensus finalized (its peers pruned what it needs) syncs too.
        sync: setup.state_sync.then_some(SyncConfig {
            threshold: 500,
            attempts: 3,
            timeout: Duration::from_secs(2),
            stall: Duration::from_secs(10),
        }),
        // Observe every 250 ms (the market's step); the oracle counts observations up to 5 s old.
        observer: ObserverConfig {
            interval: Duration::from_millis(250),
            age_max: Duration::from_secs(3),
            // One source (the synthetic market): it is its own majority.
            quorum: SourceQuorum::DEFAULT,
        },
        price_sources: vec![Box::new(
            setup
                .prices
                .source(&setup.genesis, u32::try_from(observer)?)?,
        )],
    })
}

/// Transactions per gossip message: 256 x 250 bytes is 64 KB.
const GOSSIP_BATCH_MAX: usize = 256;

/// Counts this validator's connected peers in the runtime's metrics: the p2p tracker keeps
/// one `..._connected` sample per connected peer, labelled with the network's attributes.
fn connected_peers(metrics: &str, label: &str) -> usize {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.split('{')
                .next()
                .is_some_and(|name| name.ends_with("_connected") && name.contains("network"))
        })
        .filter(|line| line.contains(label))
        .count()
}

/// Starts one validator under `context` (give each validator of a process its own child,
/// with an attribute). `label` picks this validator's samples out of the process's metrics
/// for the API's peer count (`validator="0"`); empty when it is alone in its process.
pub async fn start(
    context: tokio::Context,
    setup: ValidatorSetup,
    label: &str,
) -> Result<RunningValidator> {
    let me = setup.signer.public_key();
    let participants = Set::from_iter_dedup(setup.peers.iter().map(|(key, _)| key.clone()));
    anyhow::ensure!(
        participants.len() == setup.peers.len(),
        "validator keys must be distinct"
    );
    anyhow::ensure!(
        participants.position(&me).is_some(),
        "this validator's key is not among the validators"
    );
    let config = validator_config(&setup, participants.clone())?;
    let n = u32::try_from(setup.peers.len()).context("too many validators")?;
    let max_message = engine::max_message_size(n, &config.app.limits, config.gossip.batch_max);

    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: setup.signer.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    // `local` admits loopback and private addresses and rate-limits handshakes per IP loosely
    // (every devnet peer shares 127.0.0.1); `recommended` refuses them without a word.
    let p2p_namespace = format!("{}-p2p", setup.namespace);
    let preset = match setup.p2p_preset {
        P2pPreset::Production => lookup::Config::recommended,
        P2pPreset::Local => lookup::Config::local,
    };
    let p2p = preset(
        handshake,
        p2p_namespace.as_bytes(),
        setup.p2p_listen,
        NZUsize!(setup.peers.len().max(1)),
        max_message,
        NZUsize!(1_024),
    );
    let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p);
    let addresses: Map<PublicKey, Address> = Map::from_iter_dedup(
        setup
            .peers
            .iter()
            .map(|(key, addr)| (key.clone(), Address::from(*addr))),
    );
    let _ = oracle.track(0, addresses);

    // Per peer and direction. Consensus needs a few messages per view; blocks and backfill
    // carry up to a megabyte each; gossip flushes every 10 ms.
    let consensus = Quota::per_second(NZU32!(1_024));
    let bulk = Quota::per_second(NZU32!(256));
    let channels = Channels {
        votes: network.register(engine::CHANNEL_VOTES, consensus),
        certificates: network.register(engine::CHANNEL_CERTIFICATES, consensus),
        resolver: network.register(engine::CHANNEL_RESOLVER, consensus),
        backfill: network.register(engine::CHANNEL_BACKFILL, bulk),
        blocks: network.register(engine::CHANNEL_BLOCKS, bulk),
        transactions: network.register(engine::CHANNEL_TRANSACTIONS, bulk),
        snapshots: network.register(engine::CHANNEL_SNAPSHOTS, bulk),
        observations: network.register(engine::CHANNEL_OBSERVATIONS, consensus),
    };
    let mut handles = vec![network.start()];

    let feed = setup.prices.feed(&setup.genesis, &config.app.limits);
    let validator = engine::start(
        context.child("engine"),
        config,
        channels,
        oracle.clone(),
        oracle,
        feed,
    )
    .await
    .context("starting the validator (its disk)")?;
    handles.extend(validator.handles);

    let listener = ::tokio::net::TcpListener::bind(setup.api_listen)
        .await
        .with_context(|| format!("binding the API to {}", setup.api_listen))?;
    let api_addr = listener.local_addr()?;
    let metrics_context = context.child("api_metrics");
    let peers_context = context.child("api_peers");
    let peers_label = label.to_string();
    let telemetry = Telemetry {
        encode: Arc::new(move || metrics_context.encode()),
        peers_connected: Arc::new(move || {
            Some(connected_peers(&peers_context.encode(), &peers_label))
        }),
    };
    let identity = NodeIdentity {
        public_key: crate::keys::public_hex(&me),
        participants: participants.iter().map(crate::keys::public_hex).collect(),
    };
    let state = ApiState::new(
        validator.shared.clone(),
        setup.settings.api,
        identity,
        telemetry,
    );
    state.serve_blocks(Arc::new(validator.marshal));
    handles.push(context.child("api").spawn(move |_| async move {
        if let Err(error) = api::serve(listener, state, std::future::pending()).await {
            tracing::error!(%error, "API server stopped");
        }
    }));
    Ok(RunningValidator {
        shared: validator.shared,
        public_key: me,
        api_addr,
        handles,
    })
}
