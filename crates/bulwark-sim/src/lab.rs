//! The scenario runner: a cluster on one seed, the timeline's faults applied as they come due,
//! every finalized block checked on every honest validator, and the measurements a
//! [`crate::scorecard::Scorecard`] is made of.
//!
//! Owns: the run's network model (which links are cut, storms, slow validators), the
//! validators' roles, the safety checks and the liveness and latency measurements.
//! Never: panics on a violation (it stops the run and returns a [`Failure`] naming the seed
//! and the timeline that replays it), or reads the wall clock.
//! Bounds: the run lasts the scenario's duration and until every fault has healed and been
//! recovered from (the safety phase), then its liveness phase (every fault healed: the
//! scenario's `liveness.blocks` more blocks within `liveness.within_ms`); a stall of
//! [`STALL_MAX_MS`] with no fault active, a recovery longer than [`RECOVERY_MAX_MS`], or a
//! liveness phase that misses its bound, is a liveness violation.
//!
//! A scenario's ranged faults are drawn from the seed first ([`Scenario::drawn`]), so the
//! same seed replays the same faults. Every [`crate::series::SAMPLE_MS`] the lab also samples
//! the finalized state for a report ([`crate::series::Series`]).
//!
//! Checks: every [`TICK_MS`] of simulated time, each running validator that is not an
//! impostor is read: a halt (the node's own divergence check fired) is a violation; every
//! finalized record it added (block, state digest after it, outcome digest, state hash) must
//! equal the first record any validator reported at that height (no two finalized blocks at
//! one height, identical state at common heights); and its finalized state must pass the
//! exchange's invariants (money conserved, positions net to zero, books sound:
//! `Exchange::check_invariants`) at each new height the lab sees. Blocks a validator executes
//! between two reads (a catch-up) are compared by record; their states are checked by the
//! exchange's own assertions in debug builds. At each new finalized height of the first
//! running honest validator the economy's invariants are checked too (no deficit no event
//! covered, no order or position the rules reject: `economy::tally::check`) and, for a run
//! with agents or an economy, its measurements taken (index against the honest price,
//! insurance fund, transactions per block).

use crate::agents::{self, Roster};
use crate::bugs;
use crate::byzantine::{
    Censor, CensorLog, DutyBreaker, DutySwitch, Flood, FrontRunLog, FrontRunner, MarkProposer,
    QuoteSniper, SnipeLog, Withhold, WithholdLog, Withholder, mocks,
};
use crate::cluster::{self, Cluster, Context};
use crate::disk::DiskPlan;
use crate::economy::Economy;
use crate::economy::prices::{Truth, venue_sources};
use crate::economy::tally::{self, EconomyMeasured, EconomyTally};
use crate::scenario::{
    ByzantineRole, DiskFails, FaultAction, LinkModel, RunLength, Scenario, Trigger,
};
use crate::series::{self, PricePoint, Sample, Series};
use bulwark_node::app::now_ms;
use bulwark_node::executor::hex;
use bulwark_node::shared::{FinalizedRecord, TxStatus, lock};
use bulwark_oracle::{PriceSource as _, SyntheticSource};
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Handle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the lab reads the validators, in simulated milliseconds.
pub const TICK_MS: u64 = 10;
/// No new finalized block for this long, with no fault active, is a liveness violation.
pub const STALL_MAX_MS: u64 = 60_000;
/// A fault whose cluster has not recovered this long after it healed is a violation.
pub const RECOVERY_MAX_MS: u64 = 120_000;
/// A submission not finalized this long after it was admitted is no longer timed.
pub const LATENCY_WAIT_MAX_MS: u64 = 120_000;
/// Timeline entries kept for a report.
pub const TIMELINE_MAX: usize = 1_024;
/// Mixed into the run's seed before a `disk-fault` draws its failures.
const DISK_SALT: u64 = 0xd15c_fa17_0000_0001;

/// What broke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Violation {
    #[error("two finalized blocks at height {height}: validators {first} and {second}")]
    ConflictingBlocks {
        height: u64,
        first: usize,
        second: usize,
    },
    #[error("validators {first} and {second} disagree at height {height} on the {what}")]
    Divergence {
        height: u64,
        first: usize,
        second: usize,
        what: &'static str,
    },
    #[error("validator {validator} at height {height}: {what}")]
    Invariant {
        validator: usize,
        height: u64,
        what: String,
    },
    #[error("validator {validator} halted: {reason}")]
    Halted { validator: usize, reason: String },
    #[error("the run panicked (a validator's own assertion): {message}")]
    Panicked { message: String },
    #[error("no block finalized for {stalled_ms} ms after height {height}, with no fault active")]
    Stalled { height: u64, stalled_ms: u64 },
    #[error(
        "fault[{fault}] healed at {healed_at_ms} ms; the cluster had not recovered {RECOVERY_MAX_MS} ms later"
    )]
    NotRecovered { fault: usize, healed_at_ms: u64 },
    #[error(
        "liveness phase: every fault healed at height {from_height}, yet {blocks} more blocks \
         were not finalized within {within_ms} ms (height {height})"
    )]
    NotLive {
        from_height: u64,
        blocks: u64,
        within_ms: u64,
        height: u64,
    },
}

/// One thing that happened in a run, for the timeline a report prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// Simulated milliseconds since the run began.
    pub at_ms: u64,
    /// The highest height any validator had executed.
    pub height: u64,
    pub event: String,
}

/// A run stopped by a violation: everything needed to replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub scenario: String,
    pub seed: u64,
    pub at_ms: u64,
    pub height: u64,
    pub violation: Violation,
    pub timeline: Vec<TimelineEntry>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "SAFETY OR LIVENESS VIOLATION in scenario `{}`, seed {}, at {:.3} s (height {}):",
            self.scenario,
            self.seed,
            self.at_ms as f64 / 1_000.0,
            self.height
        )?;
        writeln!(f, "  {}", self.violation)?;
        writeln!(f, "timeline:")?;
        for entry in &self.timeline {
            writeln!(
                f,
                "  {:>9.3} s  height {:>6}  {}",
                entry.at_ms as f64 / 1_000.0,
                entry.height,
                entry.event
            )?;
        }
        write!(f, "replay: the same scenario with seed {}", self.seed)
    }
}

impl Failure {
    /// The command that replays this run, given how the scenario was named (a catalogue
    /// name or a file path).
    pub fn replay_command(&self, scenario: &str) -> String {
        format!("bulwark simulate {scenario} --seed {}", self.seed)
    }
}

impl std::error::Error for Failure {}

/// How long the cluster took to recover from one fault once it healed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recovery {
    pub fault: usize,
    pub kind: &'static str,
    pub started_at_ms: u64,
    pub healed_at_ms: u64,
    /// From the heal until every running honest validator executed a height above the
    /// highest any validator had at the heal.
    pub recovered_after_ms: u64,
}

/// When one fault of the timeline was in force, for a report's shading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultWindow {
    pub fault: usize,
    pub kind: &'static str,
    pub from_ms: u64,
    /// `None` for a fault still in force at the end (one that never heals).
    pub to_ms: Option<u64>,
}

/// What the honest validators saw of Byzantine behaviour, at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConsensusEvidence {
    /// The most views any running honest validator saw skipped by a nullification.
    pub views_skipped_max: u64,
    /// Conflicting votes reported, summed over the running honest validators.
    pub faults_observed: u64,
    /// Proposals refused (a proposer duty broken), summed over the running honest validators.
    pub proposals_refused: u64,
    /// Validators named as the proposer of a refused block, by any running honest validator.
    pub refused_proposers: Vec<usize>,
    /// (blocker, blocked) pairs of the simulated network's blocks.
    pub blocked: Vec<(usize, usize)>,
    /// Transactions censoring leaders left out of their proposals (each may be counted
    /// again at each of its later proposals while it waits).
    pub censored_removed: u64,
    /// Observations withholding leaders left out of their proposals.
    #[serde(skip_serializing_if = "is_zero")]
    pub observations_withheld: u64,
    /// Perpetual marks mark-proposing leaders put in their proposals.
    #[serde(skip_serializing_if = "is_zero")]
    pub marks_proposed: u64,
    /// Sandwiches front-running leaders put in their proposals (around a taker, or around
    /// liquidation orders that run after their block's transactions), and the contracts
    /// their orders ahead of the targets tried to take.
    #[serde(skip_serializing_if = "is_zero")]
    pub sandwiches: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub sandwich_contracts: u64,
    /// Of `sandwiches`, those around liquidation orders.
    #[serde(skip_serializing_if = "is_zero")]
    pub liquidation_sandwiches: u64,
    /// Blocks in which quote-sniping leaders took stale quotes, the contracts their orders
    /// tried to take, the other signers' transactions they left out of those blocks, and the
    /// snipes' edge against the index each block set, in USDC before fees (what the makers
    /// lost against that index).
    #[serde(skip_serializing_if = "is_zero")]
    pub snipes: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub snipe_contracts: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub snipe_held_back: u64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub snipe_edge_usdc: i64,
    /// Peers' gossiped transactions dropped unread over their budget, summed over the running
    /// honest validators.
    #[serde(skip_serializing_if = "is_zero")]
    pub gossip_dropped: u64,
    /// Peers' gossip messages dropped unread because the peer had gossiped a forged signature
    /// (`Shared::is_forger`), summed over the running honest validators.
    #[serde(skip_serializing_if = "is_zero")]
    pub gossip_muted: u64,
    /// The most transactions any running validator that does not flood held in its mempool
    /// at any tick, in a run with a flooder (zero otherwise).
    #[serde(skip_serializing_if = "is_zero")]
    pub mempool_txs_max: u64,
    /// Junk transactions flooders sent (each message to every peer counted once).
    #[serde(skip_serializing_if = "is_zero")]
    pub flood_sent: u64,
}

fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// What a run measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measured {
    pub height: u64,
    /// Simulated milliseconds the run lasted.
    pub elapsed_ms: u64,
    /// Simulated milliseconds at which each height was first seen executed, by height.
    pub first_seen_ms: BTreeMap<u64, u64>,
    pub heights_compared: u64,
    pub state_checks: u64,
    /// Heights some validator executed between two reads, whose state the lab did not check
    /// (the exchange's own assertions did, in debug builds).
    pub states_unchecked: u64,
    /// What the honest validators saw of Byzantine behaviour.
    pub consensus: ConsensusEvidence,
    /// Submission to finalized outcome, in milliseconds, in the order observed.
    pub latencies_ms: Vec<u64>,
    /// The same, of every submission but the attacker agents' (traders, honest agents, the
    /// bridge).
    pub latencies_honest_ms: Vec<u64>,
    /// With a censoring leader: the same, of the submissions of the traders it censors (also in
    /// `latencies_honest_ms`).
    pub latencies_censored_ms: Option<Vec<u64>>,
    /// Admitted submissions never seen finalized (dropped, or still waiting at the end).
    pub untimed: u64,
    pub recoveries: Vec<Recovery>,
    pub submitted: u64,
    pub admitted: u64,
    pub transactions_executed: u64,
    pub trades_executed: u64,
    pub timeline: Vec<TimelineEntry>,
    /// The economy's measurements, for a scenario with agents or an economy section.
    pub economy: Option<EconomyMeasured>,
    /// What the lab sampled of the finalized state over time.
    pub series: Series,
    /// When each fault that fired was in force.
    pub fault_windows: Vec<FaultWindow>,
}

/// Runs `scenario` on `seed`; a violation stops it.
///
/// A panic anywhere in the run (a validator's own assertion, as the exchange's invariant walk
/// after each block in debug builds) is a violation too: the run stops with
/// [`Violation::Panicked`], the seed, and the timeline up to the panic.
pub fn simulate(scenario: &Scenario, seed: u64) -> Result<Measured, Failure> {
    let result = Arc::new(Mutex::new(None));
    let out = result.clone();
    let scenario = scenario.drawn(seed);
    let journal = Arc::new(Mutex::new(Journal::default()));
    let lab_journal = journal.clone();
    let lab_scenario = scenario.clone();
    // Option expiries are dates: a run that lists options starts in their era.
    let start_ms = scenario
        .economy
        .as_ref()
        .and_then(|e| e.options.as_ref())
        .map_or(0, |_| crate::economy::options::OPTIONS_EPOCH_MS);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cluster::run_from(seed, start_ms, move |context| async move {
            let lab = Lab::start(context, lab_scenario, seed, lab_journal).await;
            let outcome = lab.run().await;
            *out.lock().expect("not poisoned") = Some(outcome);
        })
    }));
    if let Err(payload) = run {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_string());
        let journal = journal.lock().unwrap_or_else(|p| p.into_inner());
        return Err(Failure {
            scenario: scenario.name.clone(),
            seed,
            at_ms: journal.at_ms,
            height: journal.height,
            violation: Violation::Panicked { message },
            timeline: journal.timeline.clone(),
        });
    }
    let outcome = result.lock().expect("not poisoned").take();
    outcome.expect("the run finished")
}

/// The honest price the samples set the index against: the cluster's price source without
/// its noise, or, with an economy, its scripted truth (moves included, lies not).
enum HonestPrice {
    Market(SyntheticSource),
    Scripted(Box<Truth>),
}

impl HonestPrice {
    fn micros(&mut self, asset: bulwark_types::AssetCode, at_ms: u64) -> Option<i64> {
        match self {
            Self::Market(source) => source.observe(asset, at_ms).map(|q| q.price.micros()),
            Self::Scripted(truth) => (asset == crate::cluster::btc())
                .then(|| truth.price(at_ms))
                .flatten()
                .map(|p| p.micros()),
        }
    }
}

/// The timeline and where the run was, kept outside the simulated runtime so that a panic
/// inside it still leaves them to report.
#[derive(Default)]
struct Journal {
    at_ms: u64,
    height: u64,
    timeline: Vec<TimelineEntry>,
}

#[derive(Clone)]
enum Role {
    Honest,
    Breaker(Arc<DutySwitch>),
    Censor(bulwark_types::PublicKey, Arc<CensorLog>),
    Withholder(Withhold, Option<u64>, Arc<WithholdLog>),
    MarkProposer(u32, Arc<std::sync::atomic::AtomicU64>),
    FrontRunner(bulwark_types::PrivateKey, Arc<FrontRunLog>),
    /// The attacker's account, and whether it also withholds observations.
    QuoteSniper(bulwark_types::PrivateKey, bool, Arc<SnipeLog>),
    Impostor,
}

/// A fault of the timeline once it fired.
struct Fired {
    at_ms: u64,
    heal_at_ms: Option<u64>,
    /// Links this fault cut (each counted once in [`Net::cuts`]).
    cuts: Vec<(usize, usize)>,
    /// For a flapping partition: whether its cuts are in force, and when it next toggles.
    flap: Option<(bool, u64)>,
    healed: bool,
    /// Highest height at the heal, and when the cluster had since recovered.
    recovery_target: Option<u64>,
    recovered_at_ms: Option<u64>,
}

/// The links as faults left them.
#[derive(Default)]
struct Net {
    /// How many active faults cut each directed link.
    cuts: BTreeMap<(usize, usize), u32>,
    /// Active link storms, newest last (the newest applies).
    storms: Vec<(usize, LinkModel)>,
    /// Extra latency per slow validator, in milliseconds.
    slow: BTreeMap<usize, u64>,
}

/// Safety checks across validators.
struct Checker {
    /// The first record seen at each height, and which validator reported it.
    canonical: BTreeMap<u64, (FinalizedRecord, usize)>,
    /// Newest height compared, per validator.
    compared: Vec<u64>,
    /// Newest height whose state was checked, per validator.
    checked: Vec<u64>,
    heights_compared: u64,
    state_checks: u64,
    states_unchecked: u64,
}

struct Lab {
    scenario: Scenario,
    seed: u64,
    cluster: Cluster,
    roles: Vec<Role>,
    /// The traders censoring leaders leave out (their latency is timed apart).
    censored: Vec<bulwark_types::PublicKey>,
    down: Vec<bool>,
    /// Validators a failed disk stopped (a `disk-fault`'s heal restarts them).
    disk_stopped: Vec<bool>,
    net: Net,
    start_ms: u64,
    fired: Vec<Option<Fired>>,
    checker: Checker,
    first_seen_ms: BTreeMap<u64, u64>,
    height: u64,
    last_progress_ms: u64,
    latencies_ms: Vec<u64>,
    latencies_honest_ms: Vec<u64>,
    latencies_censored_ms: Vec<u64>,
    untimed: u64,
    /// The timeline, shared with [`simulate`] outside the runtime.
    journal: Arc<Mutex<Journal>>,
    consensus: ConsensusEvidence,
    /// Validators the `restore-drops-field` bug waits to be planted on (see
    /// [`Lab::restore_bug_due`]).
    restore_bug_waiting: Vec<usize>,
    /// Report samples, and how many of `latencies_ms` the last sample had seen.
    series: Series,
    latency_cursor: usize,
    /// The honest price, for the samples.
    honest: HonestPrice,
    /// Where the liveness phase began: the height and the time.
    liveness_from: Option<(u64, u64)>,
    _impostors: Vec<Handle<()>>,
    _traders: Option<Handle<()>>,
    /// The economy and its agents (module `economy`, module `agents`).
    market: EconomyRun,
    /// The most transactions a validator that does not flood held in its mempool, sampled
    /// every tick of a run with a flooder.
    mempool_txs_max: u64,
    /// Which validators flood, and what they sent.
    flooders: Vec<bool>,
    flood_sent: Arc<std::sync::atomic::AtomicU64>,
}

/// The economy of a run: the price source every validator reads, the measurements and the
/// agents.
struct EconomyRun {
    /// The scripted price source's setup: the market seed, the genesis time, the economy.
    prices: Option<(u64, u64, Economy)>,
    tally: Option<EconomyTally>,
    roster: Arc<Mutex<Roster>>,
    /// Newest height the economic invariants were checked at.
    checked: u64,
    _agents: Option<Handle<()>>,
}

impl EconomyRun {
    /// Tunes validator `i`'s configuration to read the scripted price source.
    fn tune(&self, i: usize) -> impl FnOnce(&mut bulwark_node::engine::ValidatorConfig) + use<> {
        let prices = self.prices.clone();
        move |config| {
            if let Some((seed, start_ms, economy)) = prices {
                config.price_sources = venue_sources(seed, start_ms, &economy, i);
            }
        }
    }
}

fn link_of(model: &LinkModel, extra_ms: u64) -> commonware_p2p::simulated::Link {
    cluster::link(
        model.latency_ms + extra_ms,
        model.jitter_ms,
        model.success_percent,
    )
}

impl Lab {
    async fn start(
        context: Context,
        scenario: Scenario,
        seed: u64,
        journal: Arc<Mutex<Journal>>,
    ) -> Self {
        let n = scenario.validators;
        let start_ms = now_ms(&context);
        let mut cluster = Cluster::with_validators(context, n, link_of(&scenario.link, 0)).await;
        cluster.block_limits.txs_max = scenario.block_txs_max;
        let market_seed = seed.wrapping_mul(0x2545_f491_4f6c_dd1d).wrapping_add(7);
        let genesis_ms = cluster.genesis.time.millis();
        let economy = scenario
            .economy
            .clone()
            .or_else(|| (!scenario.agents.is_empty()).then(Economy::default));
        if let Some(economy) = &economy {
            economy.apply_genesis(&mut cluster.genesis);
            for protection in &economy.switched_off {
                protection.switch_off(&mut cluster.genesis);
            }
        }
        let mut market = EconomyRun {
            prices: economy.clone().map(|e| (market_seed, genesis_ms, e)),
            tally: economy
                .clone()
                .map(|e| EconomyTally::new(Truth::new(market_seed, genesis_ms, e))),
            roster: Arc::default(),
            checked: 0,
            _agents: None,
        };
        let mut roles = vec![Role::Honest; n];
        let mut impostors = Vec::new();
        let flood_sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut flooders = vec![false; n];
        for role in &scenario.byzantine {
            match *role {
                ByzantineRole::Mock { validator, mock } => {
                    roles[validator] = Role::Impostor;
                    impostors.push(mocks::spawn(&cluster, validator, mock));
                }
                ByzantineRole::DutyBreaker { validator, duty } => {
                    let switch = Arc::new(DutySwitch::default());
                    switch.set(Some(duty));
                    roles[validator] = Role::Breaker(switch);
                }
                ByzantineRole::Censor { validator, trader } => {
                    let target = cluster::trader_key(trader).public_key();
                    roles[validator] = Role::Censor(target, Arc::new(CensorLog::default()));
                }
                ByzantineRole::Withholder {
                    validator,
                    withhold,
                    around_ms,
                } => {
                    roles[validator] = Role::Withholder(withhold, around_ms, Arc::default());
                }
                ByzantineRole::MarkProposer {
                    validator,
                    mark_bps,
                } => {
                    roles[validator] = Role::MarkProposer(mark_bps, Arc::default());
                }
                ByzantineRole::Flooder {
                    validator,
                    txs_per_second,
                } => {
                    // Otherwise honest: the cluster starts its flooding loop beside it.
                    let flood = Flood {
                        txs_per_second,
                        forgeries: true,
                    };
                    cluster.beside[validator] = Some(flood.beside(validator, flood_sent.clone()));
                    flooders[validator] = true;
                }
                ByzantineRole::FrontRunner { validator } => {
                    let key = crate::agents::front_runner_key(&scenario.agents)
                        .expect("a scenario with a front-runner lists its account (scenario.rs)");
                    roles[validator] = Role::FrontRunner(key, Arc::default());
                }
                ByzantineRole::QuoteSniper {
                    validator,
                    withhold_observations,
                } => {
                    let key = crate::agents::front_runner_key(&scenario.agents)
                        .expect("a scenario with a quote sniper lists its account (scenario.rs)");
                    roles[validator] =
                        Role::QuoteSniper(key, withhold_observations, Arc::default());
                }
            }
        }
        for (i, role) in roles.iter().enumerate() {
            match role {
                Role::Honest => cluster.start_tuned(i, market.tune(i)),
                Role::Breaker(switch) => {
                    cluster.start_tuned_with(
                        i,
                        market.tune(i),
                        DutyBreaker::wrapper(switch.clone()),
                    );
                }
                Role::Censor(target, log) => {
                    cluster.start_with(i, Censor::wrapper(target.clone(), log.clone()));
                }
                Role::Withholder(withhold, around_ms, log) => cluster.start_tuned_with(
                    i,
                    market.tune(i),
                    Withholder::wrapper(*withhold, n, *around_ms, log.clone()),
                ),
                Role::MarkProposer(mark_bps, proposed) => cluster.start_tuned_with(
                    i,
                    market.tune(i),
                    MarkProposer::wrapper(*mark_bps, proposed.clone()),
                ),
                Role::FrontRunner(key, log) => cluster.start_tuned_with(
                    i,
                    market.tune(i),
                    FrontRunner::wrapper(key.clone(), log.clone()),
                ),
                Role::QuoteSniper(key, withhold, log) => cluster.start_tuned_with(
                    i,
                    market.tune(i),
                    QuoteSniper::wrapper(key.clone(), *withhold, log.clone()),
                ),
                Role::Impostor => {}
            }
        }
        let traders = cluster.start_market(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1),
            Duration::from_millis(scenario.market.order_interval_ms),
            scenario.market.traders,
        );
        if !scenario.agents.is_empty() {
            market._agents = Some(agents::start(
                &cluster.context,
                cluster.slots.clone(),
                (cluster.admin.clone(), cluster.bridge.clone()),
                cluster.traffic.clone(),
                market.roster.clone(),
                scenario.agents.clone(),
                economy.clone().unwrap_or_default(),
                scenario.market.traders,
                start_ms,
                seed.wrapping_mul(0xd6e8_feb8_6659_fd93).wrapping_add(3),
            ));
        }
        let honest = match &economy {
            Some(e) => {
                HonestPrice::Scripted(Box::new(Truth::new(market_seed, genesis_ms, e.clone())))
            }
            None => HonestPrice::Market(cluster.honest_source()),
        };
        let mut lab = Self {
            series: Series::default(),
            latency_cursor: 0,
            honest,
            liveness_from: None,
            seed,
            cluster,
            down: vec![false; n],
            disk_stopped: vec![false; n],
            net: Net::default(),
            start_ms,
            fired: scenario.faults.iter().map(|_| None).collect(),
            checker: Checker {
                canonical: BTreeMap::new(),
                compared: vec![0; n],
                checked: vec![0; n],
                heights_compared: 0,
                state_checks: 0,
                states_unchecked: 0,
            },
            first_seen_ms: BTreeMap::new(),
            height: 0,
            last_progress_ms: 0,
            latencies_ms: Vec::new(),
            latencies_honest_ms: Vec::new(),
            latencies_censored_ms: Vec::new(),
            untimed: 0,
            journal,
            consensus: ConsensusEvidence::default(),
            restore_bug_waiting: Vec::new(),
            _impostors: impostors,
            _traders: Some(traders),
            market,
            mempool_txs_max: 0,
            flooders,
            flood_sent,
            censored: roles
                .iter()
                .filter_map(|role| match role {
                    Role::Censor(target, _) => Some(target.clone()),
                    _ => None,
                })
                .collect(),
            roles,
            scenario,
        };
        let byzantine: Vec<String> = lab
            .scenario
            .byzantine
            .iter()
            .map(|b| format!("{b:?}"))
            .collect();
        lab.note(format!(
            "start: {} validators, {} traders every {} ms, link {:?}, byzantine {byzantine:?}",
            n,
            lab.scenario.market.traders,
            lab.scenario.market.order_interval_ms,
            lab.scenario.link
        ));
        for draw in lab.scenario.draws.clone() {
            let fault = &lab.scenario.faults[draw.fault];
            let drawn = format!(
                "fault[{}] drawn from the seed: {:?} at {:?}, heals after {:?} ms",
                draw.fault, fault.action, fault.start, fault.heal_after_ms
            );
            lab.note(drawn);
        }
        lab
    }

    fn now(&self) -> u64 {
        now_ms(&self.cluster.context) - self.start_ms
    }

    fn note(&mut self, event: String) {
        let (at_ms, height) = (self.now(), self.height);
        let mut journal = lock(&self.journal);
        (journal.at_ms, journal.height) = (at_ms, height);
        if journal.timeline.len() < TIMELINE_MAX {
            journal.timeline.push(TimelineEntry {
                at_ms,
                height,
                event,
            });
        }
    }

    /// Where the run is, for the report of a panic.
    fn journal_tick(&self) {
        let (at_ms, height) = (self.now(), self.height);
        let mut journal = lock(&self.journal);
        (journal.at_ms, journal.height) = (at_ms, height);
    }

    fn failure(&self, violation: Violation) -> Failure {
        Failure {
            scenario: self.scenario.name.clone(),
            seed: self.seed,
            at_ms: self.now(),
            height: self.height,
            violation,
            timeline: lock(&self.journal).timeline.clone(),
        }
    }

    /// Validators whose execution the lab checks now: running, and not impostors.
    fn checked(&self) -> Vec<usize> {
        (0..self.scenario.validators)
            .filter(|i| !self.down[*i] && !matches!(self.roles[*i], Role::Impostor))
            .collect()
    }

    async fn run(mut self) -> Result<Measured, Failure> {
        loop {
            self.journal_tick();
            self.faults_due().await;
            self.disk_stops().await;
            if !self.restore_bug_waiting.is_empty() {
                self.restore_bug_due();
            }
            if let Err(violation) = self.check() {
                return Err(self.failure(violation));
            }
            if let Err(violation) = self.check_economy() {
                return Err(self.failure(violation));
            }
            let progressed = self.observe_progress();
            if progressed {
                self.time_submissions();
            }
            if let Err(violation) = self.liveness() {
                return Err(self.failure(violation));
            }
            self.sample_if_due();
            match self.liveness_phase() {
                Ok(true) => break,
                Ok(false) => {}
                Err(violation) => return Err(self.failure(violation)),
            }
            self.cluster
                .context
                .sleep(Duration::from_millis(TICK_MS))
                .await;
        }
        self.note("end".to_string());
        self.consensus = self.evidence().await;
        Ok(self.measured())
    }

    fn done(&self) -> bool {
        let long_enough = match self.scenario.duration {
            RunLength::Blocks(blocks) => self.height >= blocks,
            RunLength::Seconds(seconds) => self.now() >= seconds * 1_000,
        };
        long_enough
            && self.fired.iter().all(|f| {
                f.as_ref()
                    .is_some_and(|f| f.heal_at_ms.is_none() || f.recovered_at_ms.is_some())
            })
    }

    /// Starts, toggles and heals the faults that are due.
    async fn faults_due(&mut self) {
        let now = self.now();
        for index in 0..self.scenario.faults.len() {
            let fault = self.scenario.faults[index].clone();
            match &self.fired[index] {
                None => {
                    let due = match fault.start {
                        Trigger::Height(height) => self.height >= height,
                        Trigger::Millis(ms) => now >= ms,
                    };
                    if due {
                        self.note(format!("fault[{index}] starts: {:?}", fault.action));
                        let cuts = self.begin(index, &fault.action).await;
                        let flap = match fault.action {
                            FaultAction::Flapping { period_ms, .. } => {
                                Some((true, now + period_ms))
                            }
                            _ => None,
                        };
                        self.fired[index] = Some(Fired {
                            at_ms: now,
                            heal_at_ms: fault.heal_after_ms.map(|h| now + h),
                            cuts,
                            flap,
                            healed: false,
                            recovery_target: None,
                            recovered_at_ms: None,
                        });
                    }
                }
                Some(fired) if !fired.healed => {
                    if fired.heal_at_ms.is_some_and(|at| now >= at) {
                        self.heal(index, &fault.action).await;
                        self.note(format!("fault[{index}] heals ({})", fault.action.kind()));
                    } else if let (Some((on, next)), FaultAction::Flapping { period_ms, .. }) =
                        (fired.flap, &fault.action)
                        && now >= next
                    {
                        self.flap(index, !on, now + period_ms).await;
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Applies a fault; returns the links it cut.
    async fn begin(&mut self, index: usize, action: &FaultAction) -> Vec<(usize, usize)> {
        let n = self.scenario.validators;
        let cuts = match action {
            FaultAction::Crash { validator } | FaultAction::Wipe { validator } => {
                let validator = *validator;
                if !self.down[validator] {
                    if matches!(action, FaultAction::Wipe { .. }) {
                        self.cluster.wipe(validator).await;
                    } else {
                        self.cluster.crash(validator).await;
                    }
                    self.down[validator] = true;
                }
                Vec::new()
            }
            FaultAction::Partition { groups } | FaultAction::Flapping { groups, .. } => {
                between(groups)
            }
            FaultAction::IsolateLeader => {
                let leader = self.leader();
                self.note(format!("fault[{index}]: the leader is validator {leader}"));
                (0..n)
                    .filter(|o| *o != leader)
                    .flat_map(|o| [(leader, o), (o, leader)])
                    .collect()
            }
            FaultAction::OneWay { from, to } => to.iter().map(|t| (*from, *t)).collect(),
            FaultAction::LinkStorm { link } => {
                self.net.storms.push((index, *link));
                Vec::new()
            }
            FaultAction::Slow {
                validator,
                latency_ms,
            } => {
                *self.net.slow.entry(*validator).or_default() += latency_ms;
                Vec::new()
            }
            FaultAction::ForkState { validator } => {
                if let Some(shared) = self.cluster.shared(*validator) {
                    bugs::fork_state(&shared);
                }
                Vec::new()
            }
            FaultAction::RestoreDropsField { validator } => {
                self.restore_bug_waiting.push(*validator);
                self.restore_bug_due();
                Vec::new()
            }
            FaultAction::ConservationError => {
                self.conservation_error();
                Vec::new()
            }
            FaultAction::ClockSkew {
                validator,
                offset_ms,
            } => {
                self.cluster.clocks[*validator].set(*offset_ms);
                Vec::new()
            }
            FaultAction::ProposerMarksBelieved => {
                self.proposer_marks_believed();
                Vec::new()
            }
            FaultAction::DiskFault {
                validator,
                fails,
                rate_percent,
                torn,
                partition,
                lie,
            } => {
                let plan = DiskPlan {
                    ops: fails.ops(),
                    rate_percent: *rate_percent,
                    torn: *torn,
                    partition: partition.clone(),
                    lie: *lie,
                };
                // Its own stream per fault, from the run's seed: the same seed fails the same
                // operations.
                let seed = self.seed ^ DISK_SALT ^ ((index as u64) << 32);
                self.cluster.disks[*validator].arm(plan, seed);
                Vec::new()
            }
        };
        for cut in &cuts {
            *self.net.cuts.entry(*cut).or_default() += 1;
        }
        self.apply_links().await;
        cuts
    }

    /// Stops every running validator whose disk failed since the last tick, as a crash: its
    /// tasks that panicked on the failed disk were stopped already (`disk::fail_stop`), this
    /// stops the rest. Its `disk-fault`'s heal restarts it from that disk, once the disk has
    /// lost what it wrote since its last sync in the fault's window (a power cut:
    /// `DiskFault::lose_unsynced`).
    async fn disk_stops(&mut self) {
        for validator in 0..self.scenario.validators {
            let disk = self.cluster.disks[validator].clone();
            if self.down[validator] || self.cluster.tasks[validator].is_none() {
                continue;
            }
            // The node's own typed stop, if it got there first (`storage failure at ...`).
            let halted = self
                .cluster
                .shared(validator)
                .and_then(|shared| lock(&shared.status).halted.clone());
            // A disk that lied stops its validator once the validator noticed: a task
            // panicked on it (`fail_stop` failed the disk) or the node halted itself.
            let noticed_a_lie = (disk.lies() > 0 || disk.rotted()) && halted.is_some();
            if !(disk.failed() || noticed_a_lie) {
                continue;
            }
            // Its disk rotted and the fault has healed: no heal is left to restart it, and a
            // restart from that disk would stop on the same flipped bits (seed 11 of
            // `disk-rots`: marshal panics reading a rotten finalized block at every start).
            // The operator's remedy: wipe the disk and let the validator state sync.
            let rotted_for_good = disk.rotted() && !disk.armed();
            if rotted_for_good {
                self.cluster.wipe(validator).await;
            } else {
                self.cluster.crash(validator).await;
            }
            self.down[validator] = true;
            // A wiped validator restarts below, not at its fault's heal.
            self.disk_stopped[validator] = !rotted_for_good;
            self.note(format!(
                "validator {validator} stopped: its disk failed ({} operations failed, {} reads \
                 or writes lied, {} tasks stopped on it{}): a fail-stop",
                disk.failures(),
                disk.lies(),
                disk.panics_stopped(),
                halted.map_or(String::new(), |reason| format!(", halted: {reason}"))
            ));
            if rotted_for_good {
                self.note(format!(
                    "validator {validator}'s disk rotted and its fault has healed: wiped, it \
                     restarts empty and state syncs (an operator's remedy)"
                ));
                self.restart(validator);
            }
        }
    }

    /// Plants the snapshot-restore bug on each validator waiting for it whose restore would
    /// lose something now (its newest order no longer rests); the others wait for a later
    /// tick.
    fn restore_bug_due(&mut self) {
        let waiting = std::mem::take(&mut self.restore_bug_waiting);
        self.restore_bug_waiting = waiting
            .into_iter()
            .filter(|validator| {
                !self
                    .cluster
                    .shared(*validator)
                    .is_some_and(|shared| bugs::restore_drops_field(&shared))
            })
            .collect();
    }

    #[cfg(feature = "deliberate-bugs")]
    fn conservation_error(&mut self) {
        for validator in self.checked() {
            if let Some(shared) = self.cluster.shared(validator) {
                bugs::conservation_error(&shared);
            }
        }
    }

    #[cfg(not(feature = "deliberate-bugs"))]
    fn conservation_error(&mut self) {
        unreachable!("the scenario refuses a conservation-error fault in this build");
    }

    #[cfg(feature = "deliberate-bugs")]
    fn proposer_marks_believed(&mut self) {
        for validator in self.checked() {
            if let Some(shared) = self.cluster.shared(validator) {
                bugs::proposer_marks_believed(&shared);
            }
        }
    }

    #[cfg(not(feature = "deliberate-bugs"))]
    fn proposer_marks_believed(&mut self) {
        unreachable!("the scenario refuses a proposer-marks-believed fault in this build");
    }

    async fn heal(&mut self, index: usize, action: &FaultAction) {
        let fired = self.fired[index].as_mut().expect("fired");
        fired.healed = true;
        fired.recovery_target = Some(self.height);
        let in_force = fired.flap.is_none_or(|(on, _)| on);
        let cuts = std::mem::take(&mut fired.cuts);
        if in_force {
            self.uncut(&cuts);
        }
        match action {
            FaultAction::Crash { validator } | FaultAction::Wipe { validator } => {
                let validator = *validator;
                if self.down[validator] {
                    self.restart(validator);
                }
            }
            FaultAction::LinkStorm { .. } => self.net.storms.retain(|(i, _)| *i != index),
            FaultAction::ClockSkew { validator, .. } => self.cluster.clocks[*validator].set(0),
            FaultAction::DiskFault {
                validator,
                lie,
                fails,
                ..
            } => {
                let validator = *validator;
                let disk = self.cluster.disks[validator].clone();
                let (failures, lies) = (disk.failures(), disk.lies());
                let lied = if *lie && *fails == DiskFails::Writes {
                    format!("{lies} writes stored a flipped bit, which stays")
                } else {
                    format!("{lies} reads lied")
                };
                if *lie {
                    self.note(format!("validator {validator}'s disk stops lying: {lied}"));
                }
                // Its tasks were aborted ticks ago: every blob it held is closed.
                let lost = disk.lose_unsynced(&self.cluster.context).await;
                disk.disarm();
                if self.down[validator] && self.disk_stopped[validator] {
                    self.disk_stopped[validator] = false;
                    self.note(format!(
                        "validator {validator} restarts from its disk ({failures} operations \
                         had failed, {lied}; writes not synced before lost in {lost} files)"
                    ));
                    self.restart(validator);
                }
            }
            FaultAction::Slow {
                validator,
                latency_ms,
            } => {
                let slow = self.net.slow.entry(*validator).or_default();
                *slow -= latency_ms;
                if *slow == 0 {
                    self.net.slow.remove(validator);
                }
            }
            _ => {}
        }
        self.apply_links().await;
    }

    async fn flap(&mut self, index: usize, on: bool, next_ms: u64) {
        let fired = self.fired[index].as_mut().expect("fired");
        fired.flap = Some((on, next_ms));
        let cuts = fired.cuts.clone();
        if on {
            for cut in &cuts {
                *self.net.cuts.entry(*cut).or_default() += 1;
            }
        } else {
            self.uncut(&cuts);
        }
        self.note(format!(
            "fault[{index}] flaps: partition {}",
            if on { "cut" } else { "restored" }
        ));
        self.apply_links().await;
    }

    fn uncut(&mut self, cuts: &[(usize, usize)]) {
        for cut in cuts {
            let count = self.net.cuts.get_mut(cut).expect("a cut link");
            *count -= 1;
            if *count == 0 {
                self.net.cuts.remove(cut);
            }
        }
    }

    fn restart(&mut self, validator: usize) {
        match &self.roles[validator] {
            Role::Honest => self
                .cluster
                .start_tuned(validator, self.market.tune(validator)),
            Role::Breaker(switch) => {
                let switch = switch.clone();
                self.cluster.start_tuned_with(
                    validator,
                    self.market.tune(validator),
                    DutyBreaker::wrapper(switch),
                );
            }
            Role::Censor(target, log) => {
                let (target, log) = (target.clone(), log.clone());
                self.cluster
                    .start_with(validator, Censor::wrapper(target, log));
            }
            Role::Withholder(withhold, around_ms, log) => {
                let wrap = Withholder::wrapper(
                    *withhold,
                    self.scenario.validators,
                    *around_ms,
                    log.clone(),
                );
                self.cluster
                    .start_tuned_with(validator, self.market.tune(validator), wrap);
            }
            Role::MarkProposer(mark_bps, proposed) => {
                let wrap = MarkProposer::wrapper(*mark_bps, proposed.clone());
                self.cluster
                    .start_tuned_with(validator, self.market.tune(validator), wrap);
            }
            Role::FrontRunner(key, log) => {
                let wrap = FrontRunner::wrapper(key.clone(), log.clone());
                self.cluster
                    .start_tuned_with(validator, self.market.tune(validator), wrap);
            }
            Role::QuoteSniper(key, withhold, log) => {
                let wrap = QuoteSniper::wrapper(key.clone(), *withhold, log.clone());
                self.cluster
                    .start_tuned_with(validator, self.market.tune(validator), wrap);
            }
            Role::Impostor => unreachable!("the scenario refuses to crash an impostor"),
        }
        self.down[validator] = false;
    }

    /// Sets every directed link as the active faults say.
    async fn apply_links(&self) {
        let n = self.scenario.validators;
        let model = self
            .net
            .storms
            .last()
            .map_or(self.scenario.link, |(_, storm)| *storm);
        for a in 0..n {
            for b in (0..n).filter(|b| *b != a) {
                let link = (!self.net.cuts.contains_key(&(a, b))).then(|| {
                    let extra = self.net.slow.get(&a).copied().unwrap_or(0)
                        + self.net.slow.get(&b).copied().unwrap_or(0);
                    link_of(&model, extra)
                });
                self.cluster.set_link_to(a, b, link).await;
            }
        }
    }

    /// The proposer of the newest finalized block (validator 0 before any).
    fn leader(&self) -> usize {
        let newest = self
            .checked()
            .into_iter()
            .filter_map(|i| self.cluster.shared(i))
            .map(|s| lock(&s.status).clone())
            .max_by_key(|s| s.finalized_height);
        newest
            .and_then(|status| {
                self.cluster
                    .signers
                    .iter()
                    .position(|k| hex(k.public_key().as_ref()) == status.leader)
            })
            .unwrap_or(0)
    }

    /// The safety checks of one tick.
    fn check(&mut self) -> Result<(), Violation> {
        for i in self.checked() {
            let Some(shared) = self.cluster.shared(i) else {
                continue;
            };
            if let Some(reason) = lock(&shared.status).halted.clone() {
                return Err(Violation::Halted {
                    validator: i,
                    reason,
                });
            }
            let records: Vec<FinalizedRecord> = lock(&shared.history)
                .iter()
                .filter(|r| r.height > self.checker.compared[i])
                .cloned()
                .collect();
            for record in records {
                self.checker.compare(i, record)?;
            }
            if self.flooders.iter().any(|f| *f) && !self.flooders[i] {
                let txs = lock(&shared.mempool).len() as u64;
                self.mempool_txs_max = self.mempool_txs_max.max(txs);
            }
            let (height, result) = {
                let chain = lock(&shared.chain);
                let state = chain.finalized();
                let height = chain.finalized_height();
                if height > self.checker.checked[i] {
                    let checked = state.check_invariants().map_err(|v| v.to_string());
                    (
                        height,
                        Some(checked.and_then(|()| crate::mark_band::check(state))),
                    )
                } else {
                    (height, None)
                }
            };
            if let Some(result) = result {
                // A restarted validator replays from its snapshot: only heights past the
                // newest checked one were skipped.
                let skipped = height.saturating_sub(self.checker.checked[i] + 1);
                self.checker.states_unchecked += skipped;
                self.checker.checked[i] = height;
                self.checker.state_checks += 1;
                result.map_err(|what| Violation::Invariant {
                    validator: i,
                    height,
                    what,
                })?;
            }
        }
        Ok(())
    }

    /// What the running honest validators saw of Byzantine behaviour.
    async fn evidence(&self) -> ConsensusEvidence {
        let honest: Vec<usize> = self
            .checked()
            .into_iter()
            .filter(|i| matches!(self.roles[*i], Role::Honest))
            .collect();
        let mut evidence = ConsensusEvidence::default();
        let keys: Vec<String> = self
            .cluster
            .signers
            .iter()
            .map(|k| hex(k.public_key().as_ref()))
            .collect();
        for i in &honest {
            let Some(shared) = self.cluster.shared(*i) else {
                continue;
            };
            let status = lock(&shared.status).clone();
            evidence.views_skipped_max = evidence.views_skipped_max.max(status.views_skipped);
            evidence.faults_observed += status.faults_observed;
            evidence.proposals_refused += status.proposals_refused;
            for key in status.refused.keys() {
                if let Some(v) = keys.iter().position(|k| k == key) {
                    evidence.refused_proposers.push(v);
                }
            }
        }
        evidence.refused_proposers.sort_unstable();
        evidence.refused_proposers.dedup();
        evidence.blocked = self.cluster.blocked().await;
        evidence.censored_removed = self
            .roles
            .iter()
            .map(|role| match role {
                Role::Censor(_, log) => log.removed(),
                _ => 0,
            })
            .sum();
        evidence.blocked.sort_unstable();
        for role in &self.roles {
            match role {
                Role::Withholder(_, _, log) => evidence.observations_withheld += log.dropped(),
                Role::MarkProposer(_, proposed) => {
                    evidence.marks_proposed += proposed.load(std::sync::atomic::Ordering::SeqCst);
                }
                Role::FrontRunner(_, log) => {
                    evidence.sandwiches += log.sandwiches();
                    evidence.sandwich_contracts += log.contracts();
                    evidence.liquidation_sandwiches += log.liquidations();
                }
                Role::QuoteSniper(_, _, log) => {
                    evidence.observations_withheld += log.observations_withheld();
                    evidence.snipes += log.snipes();
                    evidence.snipe_contracts += log.contracts();
                    evidence.snipe_held_back += log.held_back();
                    evidence.snipe_edge_usdc += log.edge_usdc();
                }
                _ => {}
            }
        }
        for i in &honest {
            if let Some(shared) = self.cluster.shared(*i) {
                evidence.gossip_dropped += lock(&shared.status).gossip_dropped;
                evidence.gossip_muted += lock(&shared.status).gossip_muted;
            }
        }
        evidence.mempool_txs_max = self.mempool_txs_max;
        evidence.flood_sent = self.flood_sent.load(std::sync::atomic::Ordering::SeqCst);
        evidence
    }

    /// Records new heights; true if the cluster finalized any since the last tick.
    fn observe_progress(&mut self) -> bool {
        let now = self.now();
        let top = self
            .checked()
            .into_iter()
            .map(|i| self.cluster.finalized_height(i))
            .max()
            .unwrap_or(0);
        if top <= self.height {
            return false;
        }
        for height in self.height + 1..=top {
            self.first_seen_ms.insert(height, now);
        }
        self.height = top;
        self.last_progress_ms = now;
        true
    }

    /// Times the submissions now finalized on any running validator: everyone's, apart the
    /// honest ones (all but the attacker agents', which wait in `Roster::attack_pending`), and
    /// apart again those of the traders a censoring leader leaves out.
    fn time_submissions(&mut self) {
        let now_abs = now_ms(&self.cluster.context);
        let shared: Vec<_> = self
            .checked()
            .into_iter()
            .filter_map(|i| self.cluster.shared(i))
            .collect();
        let censored = &self.censored;
        let mut traffic = lock(&self.cluster.traffic);
        let mut roster = lock(&self.market.roster);
        for honest in [true, false] {
            let queue = if honest {
                &mut traffic.pending
            } else {
                &mut roster.attack_pending
            };
            let pending = std::mem::take(queue);
            for submission in pending {
                let submitted_ms = submission.submitted_ms;
                let status =
                    shared
                        .iter()
                        .find_map(|s| match lock(&s.receipts).get(&submission.digest) {
                            Some(TxStatus::Finalized { .. }) => Some(true),
                            Some(TxStatus::Dropped { .. }) => Some(false),
                            _ => None,
                        });
                match status {
                    Some(true) => {
                        self.latencies_ms.push(now_abs - submitted_ms);
                        if honest {
                            self.latencies_honest_ms.push(now_abs - submitted_ms);
                        }
                        if censored.contains(&submission.signer) {
                            self.latencies_censored_ms.push(now_abs - submitted_ms);
                        }
                    }
                    Some(false) => self.untimed += 1,
                    None if now_abs - submitted_ms > LATENCY_WAIT_MAX_MS => self.untimed += 1,
                    None => queue.push_back(submission),
                }
            }
        }
    }

    /// Stalls and recoveries.
    fn liveness(&mut self) -> Result<(), Violation> {
        let now = self.now();
        let checked = self.checked();
        let heights: Vec<u64> = checked
            .iter()
            .map(|i| self.cluster.finalized_height(*i))
            .collect();
        let mut active = false;
        for (index, fired) in self.fired.iter_mut().enumerate() {
            let Some(fired) = fired else { continue };
            if fired.heal_at_ms.is_some() && !fired.healed {
                active = true;
            }
            let (Some(target), None) = (fired.recovery_target, fired.recovered_at_ms) else {
                continue;
            };
            let healed_at_ms = fired.heal_at_ms.expect("healed");
            if heights.iter().all(|h| *h > target) {
                fired.recovered_at_ms = Some(now);
            } else if now - healed_at_ms > RECOVERY_MAX_MS {
                return Err(Violation::NotRecovered {
                    fault: index,
                    healed_at_ms,
                });
            }
        }
        if !active && now - self.last_progress_ms > STALL_MAX_MS {
            return Err(Violation::Stalled {
                height: self.height,
                stalled_ms: now - self.last_progress_ms,
            });
        }
        Ok(())
    }

    fn measured(mut self) -> Measured {
        let now = self.now();
        let recoveries = self
            .fired
            .iter()
            .enumerate()
            .filter_map(|(index, fired)| {
                let fired = fired.as_ref()?;
                let healed_at_ms = fired.heal_at_ms?;
                let recovered_at = fired.recovered_at_ms?;
                Some(Recovery {
                    fault: index,
                    kind: self.scenario.faults[index].action.kind(),
                    started_at_ms: fired.at_ms,
                    healed_at_ms,
                    recovered_after_ms: recovered_at.saturating_sub(healed_at_ms),
                })
            })
            .collect();
        let (transactions_executed, trades_executed) = self
            .checked()
            .first()
            .map_or((0, 0), |i| self.cluster.executed(*i));
        let traffic = lock(&self.cluster.traffic).clone();
        self.untimed += traffic.pending.len() as u64;
        self.untimed += lock(&self.market.roster).attack_pending.len() as u64;
        let economy = self.market.tally.as_ref().map(|tally| {
            let shared = self.checked().first().and_then(|i| self.cluster.shared(*i));
            tally.measured(shared.as_deref(), &lock(&self.market.roster))
        });
        let fault_windows = self.fault_windows();
        Measured {
            height: self.height,
            elapsed_ms: now,
            first_seen_ms: std::mem::take(&mut self.first_seen_ms),
            heights_compared: self.checker.heights_compared,
            state_checks: self.checker.state_checks,
            states_unchecked: self.checker.states_unchecked,
            consensus: self.consensus.clone(),
            latencies_ms: std::mem::take(&mut self.latencies_ms),
            latencies_honest_ms: std::mem::take(&mut self.latencies_honest_ms),
            latencies_censored_ms: (!self.censored.is_empty())
                .then(|| std::mem::take(&mut self.latencies_censored_ms)),
            untimed: self.untimed,
            recoveries,
            submitted: traffic.submitted,
            admitted: traffic.admitted,
            transactions_executed,
            trades_executed,
            timeline: std::mem::take(&mut lock(&self.journal).timeline),
            economy,
            series: std::mem::take(&mut self.series),
            fault_windows,
        }
    }

    /// The economy's checks and measurements of one tick, on the first running honest
    /// validator: at each new finalized height, no uncovered deficit and no order the rules
    /// reject (`economy::tally::check`), then index error, insurance fund and block sizes.
    fn check_economy(&mut self) -> Result<(), Violation> {
        let Some(i) = self.checked().first().copied() else {
            return Ok(());
        };
        let Some(shared) = self.cluster.shared(i) else {
            return Ok(());
        };
        let (height, result) = {
            let chain = lock(&shared.chain);
            let height = chain.finalized_height();
            if height > self.market.checked {
                (height, Some(tally::check(chain.finalized())))
            } else {
                (height, None)
            }
        };
        if let Some(result) = result {
            self.market.checked = height;
            result.map_err(|what| Violation::Invariant {
                validator: i,
                height,
                what,
            })?;
        }
        let funded = lock(&self.market.roster).funded_at_ms.is_some();
        if let Some(tally) = self.market.tally.as_mut() {
            tally.observe(&shared, funded);
            tally.observe_funding(i, &shared, &lock(&self.market.roster));
        }
        Ok(())
    }
}

/// The liveness phase and the report's samples.
impl Lab {
    /// Once the safety phase is over (the duration reached, every fault healed and recovered
    /// from), starts the liveness phase; true when it finalized its blocks in time.
    fn liveness_phase(&mut self) -> Result<bool, Violation> {
        if !self.done() {
            return Ok(false);
        }
        let phase = self.scenario.liveness;
        let Some((from_height, from_ms)) = self.liveness_from else {
            self.liveness_from = Some((self.height, self.now()));
            self.note(format!(
                "liveness phase: every fault healed; {} more blocks due within {} ms",
                phase.blocks, phase.within_ms
            ));
            return Ok(false);
        };
        if self.height >= from_height + phase.blocks {
            return Ok(true);
        }
        if self.now() - from_ms > phase.within_ms {
            return Err(Violation::NotLive {
                from_height,
                blocks: phase.blocks,
                within_ms: phase.within_ms,
                height: self.height,
            });
        }
        Ok(false)
    }

    /// Samples the finalized state of the validator furthest ahead, if a sample is due.
    fn sample_if_due(&mut self) {
        let now = self.now();
        if now < self.series.next_due_ms() {
            return;
        }
        let newest = self
            .checked()
            .into_iter()
            .filter_map(|i| self.cluster.shared(i))
            .max_by_key(|s| lock(&s.chain).finalized_height());
        let (transactions, liquidations, insurance_fund_micros, indices) = match &newest {
            None => (0, 0, 0, Vec::new()),
            Some(shared) => {
                let status = lock(&shared.status);
                let chain = lock(&shared.chain);
                let state = chain.finalized();
                let mut assets: Vec<_> = state
                    .instruments()
                    .iter()
                    .map(|i| i.spec.underlying())
                    .collect();
                assets.sort_unstable();
                assets.dedup();
                assets.truncate(series::ASSETS_MAX);
                let indices: Vec<_> = assets
                    .into_iter()
                    .map(|asset| (asset, state.index_price(asset).map(|p| p.micros())))
                    .collect();
                (
                    status.transactions_executed,
                    status.liquidations.steps,
                    state
                        .ledger()
                        .insurance_fund
                        .micros()
                        .clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                    indices,
                )
            }
        };
        let at_abs = now_ms(&self.cluster.context);
        let prices = indices
            .into_iter()
            .map(|(asset, index_micros)| PricePoint {
                asset: asset.to_string(),
                index_micros,
                honest_micros: self.honest.micros(asset, at_abs),
            })
            .collect();
        let window = &self.latencies_ms[self.latency_cursor..];
        let sample = Sample {
            at_ms: now,
            height: self.height,
            transactions,
            liquidations,
            insurance_fund_micros,
            prices,
            latency_count: window.len() as u64,
            latency_sum_ms: window.iter().sum(),
            latency_max_ms: window.iter().copied().max().unwrap_or(0),
        };
        self.latency_cursor = self.latencies_ms.len();
        self.series.push(sample);
    }

    /// When each fault that fired was in force.
    fn fault_windows(&self) -> Vec<FaultWindow> {
        self.fired
            .iter()
            .enumerate()
            .filter_map(|(fault, fired)| {
                let fired = fired.as_ref()?;
                Some(FaultWindow {
                    fault,
                    kind: self.scenario.faults[fault].action.kind(),
                    from_ms: fired.at_ms,
                    to_ms: fired.heal_at_ms.filter(|_| fired.healed),
                })
            })
            .collect()
    }
}

/// Every directed link between different groups.
fn between(groups: &[Vec<usize>]) -> Vec<(usize, usize)> {
    let mut cuts = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for other in groups.iter().skip(g + 1) {
            for a in group {
                for b in other {
                    cuts.push((*a, *b));
                    cuts.push((*b, *a));
                }
            }
        }
    }
    cuts
}

impl Checker {
    fn compare(&mut self, validator: usize, record: FinalizedRecord) -> Result<(), Violation> {
        let height = record.height;
        self.compared[validator] = self.compared[validator].max(height);
        match self.canonical.get(&height) {
            None => {
                self.canonical.insert(height, (record, validator));
            }
            Some((first, by)) => {
                let what = if first.block != record.block {
                    return Err(Violation::ConflictingBlocks {
                        height,
                        first: *by,
                        second: validator,
                    });
                } else if first.state_after != record.state_after {
                    "state digest after the block"
                } else if first.outcome != record.outcome {
                    "outcome of the block"
                } else if first.state_hash != record.state_hash {
                    "state hash"
                } else {
                    self.heights_compared += 1;
                    return Ok(());
                };
                return Err(Violation::Divergence {
                    height,
                    first: *by,
                    second: validator,
                    what,
                });
            }
        }
        Ok(())
    }
}
