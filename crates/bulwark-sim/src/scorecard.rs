//! The scorecard of a run: safety, liveness against the fault-free baseline of the same seed,
//! latency. Printed as a table, written as JSON; the same seed gives byte-identical JSON.
//!
//! Owns: turning [`Measured`] runs into figures. Rates are rounded to thousandths so the
//! JSON is stable; nothing in it depends on the wall clock or the machine.

use crate::lab::{
    self, ConsensusEvidence, Failure, FaultWindow, Measured, Recovery, TimelineEntry,
};
use crate::scenario::Scenario;
use crate::series::Series;
use serde::Serialize;
use std::fmt::Write as _;

/// How a scenario held, on one seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scorecard {
    pub scenario: String,
    pub seed: u64,
    pub validators: usize,
    pub safety: Safety,
    pub liveness: Liveness,
    pub latency: Latency,
    pub traffic: Traffic,
    /// What the honest validators saw of Byzantine behaviour.
    pub consensus: ConsensusEvidence,
    pub timeline: Vec<TimelineEntry>,
    /// When each fault was in force.
    pub fault_windows: Vec<FaultWindow>,
    /// What the lab sampled over time (the HTML report's charts).
    pub series: Series,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Safety {
    /// Violations found (a run with one stops and is reported as a [`Failure`] instead, so a
    /// scorecard's list is empty; kept for the sweeps, which score failing seeds too).
    pub violations: Vec<String>,
    /// Finalized records compared between validators (block, state digest, outcome, state
    /// hash), each against the first reported at its height.
    pub heights_compared: u64,
    /// Finalized states checked against the exchange's invariants.
    pub state_checks: u64,
    /// Heights executed between two reads (a catch-up), whose states the lab did not check.
    pub states_unchecked: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Liveness {
    /// The highest height executed.
    pub height: u64,
    pub simulated_ms: u64,
    pub blocks_per_s: f64,
    /// The same scenario and seed with no fault and no Byzantine validator.
    pub baseline_blocks_per_s: Option<f64>,
    /// `blocks_per_s` as a percentage of the baseline's.
    pub of_baseline_percent: Option<f64>,
    /// The longest time with no new finalized block, in simulated milliseconds.
    pub longest_stall_ms: u64,
    pub recoveries: Vec<Recovery>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// Submissions timed from admission to their finalized outcome.
    pub samples: u64,
    /// Admitted submissions never seen finalized (dropped, or still waiting at the end).
    pub untimed: u64,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Traffic {
    pub submitted: u64,
    pub admitted: u64,
    pub transactions_executed: u64,
    pub trades_executed: u64,
}

/// Runs `scenario` on `seed` and, if `baseline`, its fault-free version on the same seed,
/// and scores the run against it.
pub fn score(scenario: &Scenario, seed: u64, baseline: bool) -> Result<Scorecard, Failure> {
    let measured = lab::simulate(scenario, seed)?;
    let baseline = if baseline {
        Some(lab::simulate(&scenario.fault_free(), seed)?)
    } else {
        None
    };
    Ok(Scorecard::new(scenario, seed, &measured, baseline.as_ref()))
}

fn rate(measured: &Measured) -> f64 {
    if measured.elapsed_ms == 0 {
        return 0.0;
    }
    round3(measured.height as f64 * 1_000.0 / measured.elapsed_ms as f64)
}

fn round3(x: f64) -> f64 {
    (x * 1_000.0).round() / 1_000.0
}

/// The `q`-th percentile (nearest rank) of `sorted`.
fn percentile(sorted: &[u64], q: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() as u64 * q).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

impl Scorecard {
    pub fn new(
        scenario: &Scenario,
        seed: u64,
        measured: &Measured,
        baseline: Option<&Measured>,
    ) -> Self {
        let blocks_per_s = rate(measured);
        let baseline_blocks_per_s = baseline.map(rate);
        let mut previous = 0;
        let mut longest_stall_ms = 0;
        for ms in measured.first_seen_ms.values() {
            longest_stall_ms = longest_stall_ms.max(ms - previous);
            previous = *ms;
        }
        longest_stall_ms = longest_stall_ms.max(measured.elapsed_ms.saturating_sub(previous));
        let mut sorted = measured.latencies_ms.clone();
        sorted.sort_unstable();
        Self {
            scenario: scenario.name.clone(),
            seed,
            validators: scenario.validators,
            safety: Safety {
                violations: Vec::new(),
                heights_compared: measured.heights_compared,
                state_checks: measured.state_checks,
                states_unchecked: measured.states_unchecked,
            },
            liveness: Liveness {
                height: measured.height,
                simulated_ms: measured.elapsed_ms,
                blocks_per_s,
                baseline_blocks_per_s,
                of_baseline_percent: baseline_blocks_per_s
                    .filter(|b| *b > 0.0)
                    .map(|b| round3(blocks_per_s * 100.0 / b)),
                longest_stall_ms,
                recoveries: measured.recoveries.clone(),
            },
            latency: Latency {
                samples: sorted.len() as u64,
                untimed: measured.untimed,
                p50_ms: percentile(&sorted, 50),
                p99_ms: percentile(&sorted, 99),
                max_ms: sorted.last().copied(),
            },
            traffic: Traffic {
                submitted: measured.submitted,
                admitted: measured.admitted,
                transactions_executed: measured.transactions_executed,
                trades_executed: measured.trades_executed,
            },
            consensus: measured.consensus.clone(),
            timeline: measured.timeline.clone(),
            fault_windows: measured.fault_windows.clone(),
            series: measured.series.clone(),
        }
    }

    /// The scorecard as pretty JSON (stable: the same run gives the same bytes).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a scorecard serializes")
    }

    /// The scorecard as a table for a terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let line = "-".repeat(64);
        let _ = writeln!(
            out,
            "scenario {}  seed {}  validators {}",
            self.scenario, self.seed, self.validators
        );
        let _ = writeln!(out, "{line}");
        for (name, value) in self.rows() {
            let _ = writeln!(out, "{name:<32}{value:>32}");
        }
        let _ = write!(out, "{line}");
        out
    }

    /// The table's rows: a figure's name (`section: what`) and its value.
    pub fn rows(&self) -> Vec<(String, String)> {
        let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
        let rows: Vec<(&str, String)> = vec![
            (
                "safety: violations",
                self.safety.violations.len().to_string(),
            ),
            (
                "safety: heights compared",
                self.safety.heights_compared.to_string(),
            ),
            (
                "safety: states checked",
                self.safety.state_checks.to_string(),
            ),
            (
                "safety: states unchecked",
                self.safety.states_unchecked.to_string(),
            ),
            ("liveness: height", self.liveness.height.to_string()),
            (
                "liveness: simulated",
                format!("{:.3} s", self.liveness.simulated_ms as f64 / 1_000.0),
            ),
            (
                "liveness: blocks/s",
                format!("{:.3}", self.liveness.blocks_per_s),
            ),
            (
                "liveness: baseline blocks/s",
                self.liveness
                    .baseline_blocks_per_s
                    .map_or("-".to_string(), |b| format!("{b:.3}")),
            ),
            (
                "liveness: of baseline",
                self.liveness
                    .of_baseline_percent
                    .map_or("-".to_string(), |p| format!("{p:.1}%")),
            ),
            (
                "liveness: longest stall",
                format!("{} ms", self.liveness.longest_stall_ms),
            ),
            ("latency: samples", self.latency.samples.to_string()),
            ("latency: untimed", self.latency.untimed.to_string()),
            ("latency: p50", ms(self.latency.p50_ms)),
            ("latency: p99", ms(self.latency.p99_ms)),
            ("latency: max", ms(self.latency.max_ms)),
            (
                "traffic: submitted/admitted",
                format!("{}/{}", self.traffic.submitted, self.traffic.admitted),
            ),
            (
                "traffic: txs/trades executed",
                format!(
                    "{}/{}",
                    self.traffic.transactions_executed, self.traffic.trades_executed
                ),
            ),
            (
                "consensus: views skipped (max)",
                self.consensus.views_skipped_max.to_string(),
            ),
            (
                "consensus: conflicts reported",
                self.consensus.faults_observed.to_string(),
            ),
            (
                "consensus: proposals refused",
                format!(
                    "{} (proposers {:?})",
                    self.consensus.proposals_refused, self.consensus.refused_proposers
                ),
            ),
            (
                "consensus: blocked (by, whom)",
                format!("{:?}", self.consensus.blocked),
            ),
        ];
        let mut out: Vec<(String, String)> = rows
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        for r in &self.liveness.recoveries {
            out.push((
                format!("recovery: fault[{}] {}", r.fault, r.kind),
                format!("{} ms after heal", r.recovered_after_ms),
            ));
        }
        out
    }
}
