//! `bulwark soak`: a kill -9 soak on real processes.
//!
//! Four `bulwark node` processes (this executable) run on 127.0.0.1 under a steady stream of
//! signed orders from a load thread. Each cycle waits a seeded random time, kills a seeded
//! random validator with SIGKILL, leaves it down a seeded random time, restarts it on its data
//! directory and measures its rejoin: the time from the restart until it reports a finalized
//! height above the highest the others had reached at the restart. Then it checks:
//! - every transaction reported finalized since the last check (learned by polling the
//!   submitted digests through `POST /txs/status`) is reported by every validator with the
//!   same height, index and outcome, and every transaction reported finalized so far is by the
//!   validator restarted this cycle (what a kill could lose); one that is unknown or different
//!   anywhere is lost. So a cycle's check costs what finalized during the cycle plus one
//!   validator's full history, not the whole history on every validator; after the last cycle
//!   everything is checked on every validator once more;
//! - the state digests the validators reported (`/status`, polled throughout) agree at every
//!   height two or more of them reported, and no validator halted (compared as they arrive).
//!
//! Owns: the process cluster for the run, the load thread, the record of finalized receipts,
//! the rejoin measurements, the report.
//! Never: counts a transaction that was never reported finalized as lost (a transaction sent to
//! a validator killed before it gossiped it may never finalize); waits without a deadline.
//! Bounds: at most `SUBMITTED_MAX` transactions tracked; `HEIGHTS_KEPT_MAX` heights of
//! reported digests; every wait has a failsafe deadline.

use crate::genesis;
use crate::keys;
use crate::process_cluster::{self, ClusterConfig, ProcessCluster, VALIDATORS};
use anyhow::{Context, Result, bail, ensure};
use bulwark_types::{
    ClientOrderId, InstrumentId, OrderRequest, PrivateKey, Qty, Side, TimeInForce, TxBody,
    UnitPrice,
};
use clap::Args;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Traders in the load; each signs its own orders with rising nonces.
const TRADERS: usize = 12;
/// Transactions tracked at most; beyond it the load goes on but is not recorded.
const SUBMITTED_MAX: usize = 1_000_000;
/// Heights of reported state digests kept (the lowest are dropped first, after comparing).
const HEIGHTS_KEPT_MAX: usize = 100_000;
/// Digests per `POST /txs/status` (a quarter of the API's batch bound: one read of the disk
/// each, well inside the request timeout).
const STATUS_BATCH_MAX: usize = 256;
/// A submitted transaction not seen finalized after this many cycles is given up on (never
/// finalized; not lost: nobody reported it finalized).
const PENDING_CYCLES_MAX: u32 = 5;
/// How long a restarted validator may take to rejoin before the soak fails.
const REJOIN_LIMIT: Duration = Duration::from_secs(60);
/// How long the final check waits for every validator to execute the newest receipt.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

#[derive(Args, Clone, Debug)]
pub struct SoakArgs {
    /// Kill-and-restart cycles to run.
    #[arg(long, default_value_t = 100)]
    pub cycles: u32,
    /// Seed of the kill times, victims and down times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Orders per second the load sends, all traders together.
    #[arg(long, default_value_t = 40)]
    pub rate: u32,
    /// Directory for the cluster's configs, data and logs (default: a fresh one under the
    /// system's temporary directory). Kept after the run.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Everything a soak run needs.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub cycles: u32,
    pub seed: u64,
    /// Orders per second, all traders together; at least 1.
    pub rate_per_s: u32,
    pub cluster: ClusterConfig,
    /// A cycle waits uniformly between these before its kill, in milliseconds.
    pub kill_wait_ms_min: u64,
    pub kill_wait_ms_max: u64,
    /// The killed validator stays down uniformly up to this, in milliseconds.
    pub down_ms_max: u64,
}

/// One finalized transaction as the first validator that reported it finalized did.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Receipt {
    height: u64,
    index: u64,
    /// `applied`, or `rejected:<code>`.
    outcome: String,
}

impl Receipt {
    fn from_json(value: &Value) -> Option<Self> {
        if value["status"] != "finalized" {
            return None;
        }
        let outcome = &value["outcome"];
        let outcome = match outcome["result"].as_str()? {
            "applied" => "applied".to_string(),
            other => format!("{other}:{}", outcome["code"]),
        };
        Some(Self {
            height: value["height"].as_u64()?,
            index: value["index"].as_u64()?,
            outcome,
        })
    }
}

/// What a soak run found.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    pub cycles: u32,
    /// Transactions reported finalized, each checked on every validator (after the cycle it
    /// finalized in, after each restart of a validator, and at the end).
    pub txs_checked: u64,
    /// Receipt lookups the last cycle's check made, all validators together (grows with the
    /// cycle's load and one validator's history, not with every validator's).
    pub lookups_last_cycle: u64,
    /// The validator killed and restarted in the last cycle.
    pub victim_last_cycle: usize,
    /// Transactions reported finalized that some validator later did not report, or reported
    /// differently.
    pub lost: u64,
    /// Heights at which two or more validators reported a state digest, compared.
    pub heights_compared: u64,
    /// Heights at which reported state digests differed, plus validators seen halted.
    pub disagreements: u64,
    /// Orders the validators admitted.
    pub admitted: u64,
    /// Each cycle's rejoin time, in milliseconds.
    pub rejoin_ms: Vec<u64>,
}

impl SoakReport {
    /// The `q`-th quantile (0..=100) of the rejoin times, nearest rank; 0 when none.
    pub fn rejoin_percentile_ms(&self, q: u64) -> u64 {
        let mut sorted = self.rejoin_ms.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return 0;
        }
        let rank = (q * sorted.len() as u64).div_ceil(100).max(1);
        sorted[(rank - 1) as usize]
    }

    /// Nothing lost, every digest agreed, no validator halted.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.disagreements == 0
    }

    /// The report's last lines.
    pub fn summary(&self) -> String {
        format!(
            "cycles run: {}\ntransactions checked: {}\nlost: {}\nstate digests compared at {} heights, disagreements: {}\nrejoin p50: {} ms\nrejoin p99: {} ms\n",
            self.cycles,
            self.txs_checked,
            self.lost,
            self.heights_compared,
            self.disagreements,
            self.rejoin_percentile_ms(50),
            self.rejoin_percentile_ms(99),
        )
    }
}

/// Reported state digests at one height, compared as each validator's report arrives.
struct HeightDigests {
    /// The first digest reported at this height.
    first: String,
    /// Bit `i`: validator `i` reported this height.
    reporters: u8,
    /// Some reported digest differs from `first`.
    differ: bool,
}

/// The state the soak carries from cycle to cycle.
struct Ledger {
    /// Submitted, not yet seen finalized: digest -> cycles waited.
    pending: BTreeMap<String, u32>,
    /// Reported finalized: digest -> the first report.
    finalized: BTreeMap<String, Receipt>,
    /// Reported finalized since the last check; not yet checked anywhere.
    fresh: Vec<String>,
    /// Per validator: finalized transactions it had not yet executed when last checked (it
    /// had just rejoined); checked on it next time.
    deferred: Vec<Vec<String>>,
    /// Per validator: restarted since its last check, so everything is checked on it.
    restarted: Vec<bool>,
    /// Digests found lost (counted once each).
    lost: BTreeMap<String, String>,
    /// Height -> the digests reported there, at most `HEIGHTS_KEPT_MAX` heights.
    digests: BTreeMap<u64, HeightDigests>,
    /// Heights two or more validators reported, counted once each when the second arrived.
    heights_compared: u64,
    /// Heights where reported digests differed, counted once each.
    heights_differing: u64,
    /// Halts seen, counted once per validator.
    halted: Vec<bool>,
}

impl Ledger {
    fn new() -> Self {
        Self {
            pending: BTreeMap::new(),
            finalized: BTreeMap::new(),
            fresh: Vec::new(),
            deferred: vec![Vec::new(); VALIDATORS],
            restarted: vec![false; VALIDATORS],
            lost: BTreeMap::new(),
            digests: BTreeMap::new(),
            heights_compared: 0,
            heights_differing: 0,
            halted: vec![false; VALIDATORS],
        }
    }

    /// Records every running validator's reported height and state digest.
    fn poll_status(&mut self, cluster: &ProcessCluster) {
        for i in 0..VALIDATORS {
            if !cluster.running(i) {
                continue;
            }
            let Some(status) = cluster.status(i) else {
                continue;
            };
            if status["mode"]
                .as_str()
                .is_some_and(|m| m.starts_with("halted"))
            {
                self.halted[i] = true;
            }
            if let (Some(h), Some(d)) = (
                status["finalized_height"].as_u64(),
                status["state_digest"].as_str(),
            ) && h > 0
            {
                self.record_digest(i, h, d);
            }
        }
    }

    /// Compares validator `i`'s digest `digest` at `height` with the others' there.
    fn record_digest(&mut self, i: usize, height: u64, digest: &str) {
        let bit = 1u8 << i;
        let Some(entry) = self.digests.get_mut(&height) else {
            self.digests.insert(
                height,
                HeightDigests {
                    first: digest.to_string(),
                    reporters: bit,
                    differ: false,
                },
            );
            if self.digests.len() > HEIGHTS_KEPT_MAX {
                self.digests.pop_first();
            }
            return;
        };
        if entry.reporters & bit == 0 && entry.reporters.count_ones() == 1 {
            self.heights_compared += 1;
        }
        entry.reporters |= bit;
        if entry.first != digest && !entry.differ {
            entry.differ = true;
            self.heights_differing += 1;
        }
    }

    /// Heights compared and disagreements (differing digests, halted validators).
    fn agreement(&self) -> (u64, u64) {
        let halted = self.halted.iter().filter(|h| **h).count() as u64;
        (self.heights_compared, self.heights_differing + halted)
    }
}

/// Statuses of `digests` from validator `api`, in order; `None` if it did not answer.
fn statuses(api: &str, digests: &[String]) -> Option<Vec<Value>> {
    let mut out = Vec::with_capacity(digests.len());
    for chunk in digests.chunks(STATUS_BATCH_MAX) {
        let body = json!({ "digests": chunk });
        let response = crate::client::request(api, "POST", "/txs/status", Some(&body)).ok()?;
        if response.status != 200 {
            return None;
        }
        let results = response.body["results"].as_array()?;
        if results.len() != chunk.len() {
            return None;
        }
        out.extend(results.iter().cloned());
    }
    Some(out)
}

/// `statuses`, tried up to 3 times a second apart (a validator may be busy replaying).
fn statuses_retried(api: &str, digests: &[String]) -> Option<Vec<Value>> {
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        if let Some(answers) = statuses(api, digests) {
            return Some(answers);
        }
    }
    None
}

/// Sends orders near the index from the traders at `rate_per_s` until `stop`; records the
/// digests the validators admitted into `submitted`.
fn load(
    apis: Vec<String>,
    traders: Vec<PrivateKey>,
    rate_per_s: u32,
    stop: Arc<AtomicBool>,
    submitted: Arc<Mutex<Vec<String>>>,
    admitted: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let gap = Duration::from_secs_f64(1.0 / f64::from(rate_per_s.max(1)));
        let mut nonces = vec![0u64; traders.len()];
        let mut round: i64 = 0;
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            for (t, trader) in traders.iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                nonces[t] += 1;
                let tx = genesis::sign(trader, nonces[t], order(round, t, nonces[t]));
                // Trader t's home validator first, then the next ones if it is down.
                for k in 0..VALIDATORS {
                    let api = &apis[(t + round as usize + k) % VALIDATORS];
                    let Some(answer) = process_cluster::submit(api, std::slice::from_ref(&tx))
                    else {
                        continue;
                    };
                    let result = &answer["results"][0];
                    if result["status"] == "pending"
                        && let Some(digest) = result["digest"].as_str()
                    {
                        admitted.fetch_add(1, Ordering::Relaxed);
                        let mut submitted = submitted.lock().expect("load lock");
                        if submitted.len() < SUBMITTED_MAX {
                            submitted.push(digest.to_string());
                        }
                    }
                    break;
                }
                next += gap;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        }
    })
}

/// Trader `t`'s order in `round`: every fourth round crosses with an immediate-or-cancel order
/// 50 ticks through the starting index, the others rest 1 to 40 ticks behind it, and every
/// 40th round cancels the trader's orders (the open-order cap stays far off).
fn order(round: i64, t: usize, nonce: u64) -> TxBody {
    let side = if (round + t as i64) % 2 == 0 {
        Side::Buy
    } else {
        Side::Sell
    };
    let crossing = round % 4 == 0;
    let ticks = if crossing {
        -50
    } else {
        1 + (round * 7 + t as i64 * 13) % 40
    };
    let price = genesis::INDEX_START_USDC * 1_000_000 - ticks * 500_000 * side.sign();
    if round % 40 == 0 {
        return TxBody::CancelAll { instrument: None };
    }
    TxBody::PlaceOrder(OrderRequest::limit(
        InstrumentId::new(0),
        ClientOrderId::new(nonce),
        side,
        Qty::from_contracts(1 + (round % 3)),
        UnitPrice::from_micros(price),
        if crossing {
            TimeInForce::ImmediateOrCancel
        } else {
            TimeInForce::GoodTilCancelled
        },
    ))
}

/// Runs the soak; `on_cycle` is called after each cycle with the report so far.
pub fn run(config: &SoakConfig, mut on_cycle: impl FnMut(&SoakReport)) -> Result<SoakReport> {
    let mut cluster = ProcessCluster::start(config.cluster.clone())?;
    let result = soak(config, &mut cluster, &mut on_cycle);
    if result.is_err() {
        eprintln!("{}", cluster.log_tails(20));
    }
    result
}

fn soak(
    config: &SoakConfig,
    cluster: &mut ProcessCluster,
    on_cycle: &mut impl FnMut(&SoakReport),
) -> Result<SoakReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    cluster.wait_for("all four to finalize", Duration::from_secs(60), |c| {
        c.heights().iter().all(|h| *h >= 3)
    })?;
    let traders: Vec<PrivateKey> = (0..TRADERS).map(|_| keys::generate()).collect();
    cluster.setup(&traders, Duration::from_secs(60))?;
    let stop = Arc::new(AtomicBool::new(false));
    let submitted = Arc::new(Mutex::new(Vec::new()));
    let admitted = Arc::new(AtomicU64::new(0));
    let loader = load(
        cluster.apis.clone(),
        traders,
        config.rate_per_s,
        stop.clone(),
        submitted.clone(),
        admitted.clone(),
    );
    let outcome = cycles(config, cluster, &mut rng, &submitted, &admitted, on_cycle);
    stop.store(true, Ordering::Relaxed);
    if loader.join().is_err() {
        bail!("the load thread panicked");
    }
    outcome
}

fn cycles(
    config: &SoakConfig,
    cluster: &mut ProcessCluster,
    rng: &mut ChaCha8Rng,
    submitted: &Mutex<Vec<String>>,
    admitted: &AtomicU64,
    on_cycle: &mut impl FnMut(&SoakReport),
) -> Result<SoakReport> {
    let mut ledger = Ledger::new();
    let mut report = SoakReport::default();
    for _ in 0..config.cycles {
        let wait_ms = rng.random_range(config.kill_wait_ms_min..=config.kill_wait_ms_max);
        poll_for(&mut ledger, cluster, Duration::from_millis(wait_ms));
        let victim = rng.random_range(0..VALIDATORS);
        cluster.kill(victim)?;
        let down_ms = rng.random_range(0..=config.down_ms_max);
        poll_for(&mut ledger, cluster, Duration::from_millis(down_ms));
        ledger.restarted[victim] = true;
        let rejoin = restart_and_rejoin(&mut ledger, cluster, victim)?;
        report.rejoin_ms.push(rejoin.as_millis() as u64);
        learn_finalized(&mut ledger, cluster, submitted)?;
        report.lookups_last_cycle = check(&mut ledger, cluster)?;
        report.victim_last_cycle = victim;
        report.cycles += 1;
        ledger.poll_status(cluster);
        update(&mut report, &ledger, admitted);
        on_cycle(&report);
    }
    final_check(&mut ledger, cluster, submitted)?;
    ledger.poll_status(cluster);
    update(&mut report, &ledger, admitted);
    for (digest, why) in ledger.lost.iter().take(20) {
        eprintln!("lost {digest}: {why}");
    }
    Ok(report)
}

/// Copies the ledger's totals into the report.
fn update(report: &mut SoakReport, ledger: &Ledger, admitted: &AtomicU64) {
    let (compared, disagreements) = ledger.agreement();
    report.txs_checked = ledger.finalized.len() as u64;
    report.lost = ledger.lost.len() as u64;
    report.heights_compared = compared;
    report.disagreements = disagreements;
    report.admitted = admitted.load(Ordering::Relaxed);
}

/// After the last cycle: learns what finalized since, waits (bounded) until every validator
/// executed the newest receipt, and checks every finalized transaction on every validator.
fn final_check(
    ledger: &mut Ledger,
    cluster: &ProcessCluster,
    submitted: &Mutex<Vec<String>>,
) -> Result<()> {
    learn_finalized(ledger, cluster, submitted)?;
    let newest = ledger
        .finalized
        .values()
        .map(|r| r.height)
        .max()
        .unwrap_or(0);
    cluster.wait_for(
        "every validator to execute the newest receipt",
        CATCH_UP_LIMIT,
        |c| c.heights().iter().all(|h| *h >= newest),
    )?;
    ledger.fresh.clear();
    ledger.restarted = vec![true; VALIDATORS];
    check(ledger, cluster)?;
    let unchecked: usize = ledger.deferred.iter().map(Vec::len).sum();
    ensure!(
        unchecked == 0,
        "{unchecked} receipts were left unchecked at the end"
    );
    Ok(())
}

/// Polls statuses for `duration`, every 20 ms.
fn poll_for(ledger: &mut Ledger, cluster: &ProcessCluster, duration: Duration) {
    let end = Instant::now() + duration;
    loop {
        ledger.poll_status(cluster);
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Restarts `victim` and waits until it finalizes a height above the others' highest at the
/// restart; the time that took.
fn restart_and_rejoin(
    ledger: &mut Ledger,
    cluster: &mut ProcessCluster,
    victim: usize,
) -> Result<Duration> {
    let target = (0..VALIDATORS)
        .filter(|i| *i != victim)
        .map(|i| cluster.height(i))
        .max()
        .unwrap_or(0);
    cluster.restart(victim)?;
    let started = Instant::now();
    loop {
        if let Some((height, _)) = cluster.finalized(victim)
            && height > target
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > REJOIN_LIMIT {
            bail!(
                "validator {victim} did not rejoin within {REJOIN_LIMIT:?} (target height {target})"
            );
        }
        ledger.poll_status(cluster);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Takes what the load submitted since last time into `pending`, then learns which pending
/// transactions finalized (into `finalized` and `fresh`).
fn learn_finalized(
    ledger: &mut Ledger,
    cluster: &ProcessCluster,
    submitted: &Mutex<Vec<String>>,
) -> Result<()> {
    let submitted: Vec<String> = std::mem::take(&mut *submitted.lock().expect("load lock"));
    for digest in submitted {
        ledger.pending.insert(digest, 0);
    }
    let pending: Vec<String> = ledger.pending.keys().cloned().collect();
    let answers = (0..VALIDATORS)
        .find_map(|i| statuses(&cluster.apis[i], &pending))
        .context("no validator answered POST /txs/status")?;
    for (digest, answer) in pending.iter().zip(&answers) {
        if let Some(receipt) = Receipt::from_json(answer) {
            ledger.pending.remove(digest);
            if ledger.finalized.insert(digest.clone(), receipt).is_none() {
                ledger.fresh.push(digest.clone());
            }
        } else if answer["status"] == "dropped" {
            ledger.pending.remove(digest);
        } else if let Some(waited) = ledger.pending.get_mut(digest) {
            *waited += 1;
            if *waited > PENDING_CYCLES_MAX {
                ledger.pending.remove(digest);
            }
        }
    }
    Ok(())
}

/// Checks on each validator the transactions finalized since the last check and those it had
/// not executed at its last check, or, on a validator restarted since its last check,
/// everything finalized so far. The receipt lookups made.
fn check(ledger: &mut Ledger, cluster: &ProcessCluster) -> Result<u64> {
    let fresh = std::mem::take(&mut ledger.fresh);
    let mut lookups = 0u64;
    for i in 0..VALIDATORS {
        let mut digests = std::mem::take(&mut ledger.deferred[i]);
        if ledger.restarted[i] {
            digests = ledger.finalized.keys().cloned().collect();
        } else {
            digests.extend(fresh.iter().cloned());
        }
        lookups += digests.len() as u64;
        ledger.deferred[i] = check_on(ledger, cluster, i, &digests)?;
        ledger.restarted[i] = false;
    }
    Ok(lookups)
}

/// Checks `digests` (all finalized) on validator `i`; those above the height it had executed
/// when asked are returned, to be checked next time.
fn check_on(
    ledger: &mut Ledger,
    cluster: &ProcessCluster,
    i: usize,
    digests: &[String],
) -> Result<Vec<String>> {
    // A validator is held only to the heights it executed before it was asked: one that just
    // rejoined may not have executed the newest receipts yet (checked next time).
    let executed = cluster
        .finalized(i)
        .with_context(|| format!("validator {i} did not answer /status"))?
        .0;
    let answers = statuses_retried(&cluster.apis[i], digests)
        .with_context(|| format!("validator {i} did not answer POST /txs/status"))?;
    let mut later = Vec::new();
    for (digest, answer) in digests.iter().zip(&answers) {
        let expected = &ledger.finalized[digest];
        if expected.height > executed {
            later.push(digest.clone());
            continue;
        }
        match Receipt::from_json(answer) {
            Some(found) if &found == expected => {}
            found => {
                ledger.lost.entry(digest.clone()).or_insert_with(|| {
                    format!("validator {i} reports {found:?}, expected {expected:?}: {answer}")
                });
            }
        }
    }
    Ok(later)
}

/// `bulwark soak`: runs the soak with a progress bar; its last lines are the report. An error
/// (so a nonzero exit) if anything was lost or disagreed.
pub fn run_command(args: SoakArgs) -> Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("bulwark-soak-{}", std::process::id()))
    });
    let config = SoakConfig {
        cycles: args.cycles,
        seed: args.seed,
        rate_per_s: args.rate.max(1),
        cluster: ClusterConfig {
            dir: dir.clone(),
            executable: std::env::current_exe().context("finding this executable")?,
            block_interval_ms: 50,
            remove: false,
        },
        kill_wait_ms_min: 500,
        kill_wait_ms_max: 4_000,
        down_ms_max: 2_000,
    };
    let bar = indicatif::ProgressBar::new(u64::from(args.cycles));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} cycles {msg}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    // A bar on a terminal; one line per cycle otherwise (a log file, CI).
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let report = run(&config, |report| {
        let line = format!(
            "checked {} (+{} lookups) lost {} disagreements {} rejoin p50 {} ms p99 {} ms",
            report.txs_checked,
            report.lookups_last_cycle,
            report.lost,
            report.disagreements,
            report.rejoin_percentile_ms(50),
            report.rejoin_percentile_ms(99)
        );
        if tty {
            bar.set_position(u64::from(report.cycles));
            bar.set_message(line);
        } else {
            eprintln!(
                "cycle {}/{} [{:.0} s] killed {}, rejoined in {} ms; {line}",
                report.cycles,
                args.cycles,
                started.elapsed().as_secs_f64(),
                report.victim_last_cycle,
                report.rejoin_ms.last().copied().unwrap_or(0),
            );
        }
    })?;
    bar.finish_and_clear();
    println!(
        "soak: seed {}, rate {}/s, {} orders admitted, {:.0} s, data in {}",
        args.seed,
        config.rate_per_s,
        report.admitted,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    print!("{}", report.summary());
    if !report.passed() {
        bail!(
            "soak failed: {} lost, {} disagreements",
            report.lost,
            report.disagreements
        );
    }
    Ok(())
}
