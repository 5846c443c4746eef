//! The scorecard of a run: safety, liveness against the fault-free baseline of the same seed,
//! latency, and for a run with agents or an economy the economy's integrity (index error
//! against the honest price, bad debt, insurance fund drawdown, auto-deleveraging, losses of
//! agents that are not attackers, the attacker's profit) with, for an attack, each protection
//! under test switched off on the same seed. Printed as a table, written as JSON; the same
//! seed gives byte-identical JSON.
//!
//! Owns: turning [`Measured`] runs into figures. Rates are rounded to thousandths so the
//! JSON is stable; nothing in it depends on the wall clock or the machine.

use crate::agents::AgentKind;
use crate::economy::tally::EconomyMeasured;
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
    /// Latency of every submission but the attacker agents', and how many of them finalized
    /// per block.
    pub latency_honest: HonestLatency,
    /// With a censoring leader: the latency of the censored traders' submissions (also in
    /// `latency_honest`; `untimed` is the run's, everyone's).
    pub latency_censored: Option<Latency>,
    pub traffic: Traffic,
    /// What the honest validators saw of Byzantine behaviour.
    pub consensus: ConsensusEvidence,
    /// The economy's integrity, for a scenario with agents or an economy section.
    pub economy: Option<EconomySection>,
    pub timeline: Vec<TimelineEntry>,
    /// When each fault was in force.
    pub fault_windows: Vec<FaultWindow>,
    /// What the lab sampled over time (the HTML report's charts).
    pub series: Series,
}

/// The economy's integrity over a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EconomySection {
    /// Protections switched off in this run.
    pub switched_off: Vec<String>,
    pub figures: EconomyFigures,
    /// Agent transactions per block once the agents were funded.
    pub agents: AgentActivity,
    /// Profit (equity and withdrawals less deposits) by agent kind.
    pub by_kind: Vec<KindResult>,
    /// For an attack: the same seed with protections switched off, one row each (the first
    /// row is this run, everything on).
    pub comparison: Vec<ComparisonRow>,
}

/// The figures the comparison rows repeat.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EconomyFigures {
    /// The index the exchange used against the honest price, over every height measured.
    pub index_error_bps_max: u64,
    pub index_error_bps_mean: Option<f64>,
    pub insurance_fund_max_usdc: i64,
    pub insurance_fund_end_usdc: i64,
    /// The largest fall of the fund from its highest.
    pub insurance_fund_drawdown_usdc: i64,
    /// Deficits nobody covered at the end (the fund below zero, negative equity still open).
    pub bad_debt_usdc: i64,
    pub margin_calls: u64,
    pub backstop_takeovers: u64,
    pub auto_deleveraged: u64,
    /// Contracts liquidations moved through the book, to the backstop and by
    /// auto-deleveraging (the counts above are events: a step, a takeover, one counterparty).
    pub stepped_contracts: u64,
    pub backstop_contracts: u64,
    pub deleveraged_contracts: u64,
    /// Deficits of bankrupt accounts made whole: by the insurance fund, and by the
    /// counterparties deleveraged against them (each charged its share: the bankruptcy price).
    pub deficits_from_fund_usdc: i64,
    pub deficits_from_deleveraging_usdc: i64,
    /// Losses of agent accounts that are not attackers (the sum of their negative profits).
    pub innocent_losses_usdc: i64,
    /// The attackers' profit: equity at the end plus withdrawals less deposits (`None`
    /// without an attacker).
    pub attacker_profit_usdc: Option<i64>,
    pub attacker_withdrawn_usdc: Option<i64>,
    /// The attackers' perpetual funding, micro-USDC (negative: paid; part of the profit),
    /// and what the other agents received (negative: paid).
    pub attacker_funding_micros: Option<i64>,
    pub innocent_funding_micros: i64,
    /// Withdrawals refused on a stale oracle, and the USDC they asked for.
    pub withdrawals_refused_stale: u64,
    pub withdrawals_refused_stale_usdc: i64,
    /// The highest at-the-money vol of any option smile the exchange fitted, bps (`None`
    /// without options or before the first fit).
    pub smile_vol_atm_max_bps: Option<u64>,
    /// Perpetual funding every agent account paid, summed (what changed hands), micro-USDC.
    pub funding_paid_micros: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentActivity {
    pub orders_submitted: u64,
    pub txs_submitted: u64,
    pub txs_admitted: u64,
    pub blocks: u64,
    pub txs_per_block_mean: Option<f64>,
    pub txs_per_block_max: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KindResult {
    pub kind: AgentKind,
    pub accounts: u64,
    pub profit_usdc: i64,
}

/// One protection switched off, on the same seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// The protection switched off ("none" for the run with every protection on).
    pub switched_off: String,
    /// The figures, or the violation that stopped the run.
    pub figures: Option<EconomyFigures>,
    pub violation: Option<String>,
}

impl EconomyFigures {
    fn new(e: &EconomyMeasured) -> Self {
        let attackers: Vec<_> = e
            .end
            .accounts
            .iter()
            .filter(|a| a.kind.is_attacker())
            .collect();
        let innocent: i64 = e
            .end
            .accounts
            .iter()
            .filter(|a| !a.kind.is_attacker())
            .map(|a| (-a.profit_usdc).max(0))
            .sum();
        Self {
            index_error_bps_max: e.index_error_bps_max,
            index_error_bps_mean: e.index_error_bps_mean_x100.map(|m| m as f64 / 100.0),
            insurance_fund_max_usdc: e.fund_max_usdc,
            insurance_fund_end_usdc: e.end.insurance_fund_usdc,
            insurance_fund_drawdown_usdc: e.fund_drawdown_usdc,
            bad_debt_usdc: e.end.bad_debt_usdc,
            margin_calls: e.end.liquidations.margin_calls,
            backstop_takeovers: e.end.liquidations.backstop_takeovers,
            auto_deleveraged: e.end.liquidations.auto_deleveraged,
            stepped_contracts: e.end.liquidations.stepped_contracts,
            backstop_contracts: e.end.liquidations.backstop_contracts,
            deleveraged_contracts: e.end.liquidations.deleveraged_contracts,
            deficits_from_fund_usdc: e.end.liquidations.deficits_from_fund_usdc,
            deficits_from_deleveraging_usdc: e.end.liquidations.deficits_from_deleveraging_usdc,
            innocent_losses_usdc: innocent,
            attacker_profit_usdc: (!attackers.is_empty())
                .then(|| attackers.iter().map(|a| a.profit_usdc).sum()),
            attacker_withdrawn_usdc: (!attackers.is_empty())
                .then(|| attackers.iter().map(|a| a.withdrawn_usdc).sum()),
            attacker_funding_micros: (!attackers.is_empty())
                .then(|| attackers.iter().map(|a| a.funding_micros).sum()),
            innocent_funding_micros: e
                .end
                .accounts
                .iter()
                .filter(|a| !a.kind.is_attacker())
                .map(|a| a.funding_micros)
                .sum(),
            withdrawals_refused_stale: e.end.withdrawals_refused_stale,
            withdrawals_refused_stale_usdc: e.end.withdrawals_refused_stale_usdc,
            smile_vol_atm_max_bps: e.smile_vol_atm_max_bps,
            funding_paid_micros: e
                .end
                .accounts
                .iter()
                .map(|a| (-a.funding_micros).max(0))
                .sum(),
        }
    }
}

/// Micro-USDC as USDC with two decimals.
fn usdc_cents(micros: i64) -> String {
    let cents = micros / 10_000;
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

impl EconomySection {
    fn new(scenario: &Scenario, e: &EconomyMeasured) -> Self {
        let mut by_kind: Vec<KindResult> = Vec::new();
        for account in &e.end.accounts {
            match by_kind.iter_mut().find(|k| k.kind == account.kind) {
                Some(k) => {
                    k.accounts += 1;
                    k.profit_usdc += account.profit_usdc;
                }
                None => by_kind.push(KindResult {
                    kind: account.kind,
                    accounts: 1,
                    profit_usdc: account.profit_usdc,
                }),
            }
        }
        let figures = EconomyFigures::new(e);
        Self {
            switched_off: scenario
                .economy
                .iter()
                .flat_map(|e| e.switched_off.iter().map(|p| p.name().to_string()))
                .collect(),
            comparison: Vec::new(),
            agents: AgentActivity {
                orders_submitted: e.orders_submitted,
                txs_submitted: e.agent_txs_submitted,
                txs_admitted: e.agent_txs_admitted,
                blocks: e.blocks_after_funding,
                txs_per_block_mean: (e.blocks_after_funding > 0)
                    .then(|| round3(e.txs_after_funding as f64 / e.blocks_after_funding as f64)),
                txs_per_block_max: e.txs_per_block_max,
            },
            by_kind,
            figures,
        }
    }
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
    /// To a tenth of a millisecond.
    pub mean_ms: Option<f64>,
}

impl Latency {
    /// Of `sorted` latencies (ms, ascending); `untimed` as counted for the run.
    fn of(sorted: &[u64], untimed: u64) -> Self {
        debug_assert!(sorted.is_sorted(), "sorted latencies");
        Self {
            samples: sorted.len() as u64,
            untimed,
            p50_ms: percentile(sorted, 50),
            p99_ms: percentile(sorted, 99),
            max_ms: sorted.last().copied(),
            mean_ms: (!sorted.is_empty()).then(|| {
                let total: u64 = sorted.iter().sum();
                (total as f64 / sorted.len() as f64 * 10.0).round() / 10.0
            }),
        }
    }
}

/// [`Latency`] of the honest submissions (everyone's but the attacker agents'; its `untimed`
/// is the run's, everyone's).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HonestLatency {
    pub latency: Latency,
    /// Honest submissions finalized, per block of the run.
    pub finalized_per_block: Option<f64>,
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

/// [`score`], then for an attack (a scenario whose economy lists protections under test) the
/// same seed once more with each protection switched off, as the economy's comparison rows.
pub fn score_compared(
    scenario: &Scenario,
    seed: u64,
    baseline: bool,
) -> Result<Scorecard, Failure> {
    let mut card = score(scenario, seed, baseline)?;
    let protections = scenario
        .economy
        .as_ref()
        .map_or(Vec::new(), |e| e.protections.clone());
    if let Some(economy) = card.economy.as_mut()
        && !protections.is_empty()
    {
        economy.comparison.push(ComparisonRow {
            switched_off: "none".to_string(),
            figures: Some(economy.figures.clone()),
            violation: None,
        });
        for protection in protections {
            let off = scenario.with_protection_off(protection);
            let row = match lab::simulate(&off, seed) {
                Ok(measured) => ComparisonRow {
                    switched_off: protection.name().to_string(),
                    figures: measured.economy.as_ref().map(EconomyFigures::new),
                    violation: None,
                },
                Err(failure) => ComparisonRow {
                    switched_off: protection.name().to_string(),
                    figures: None,
                    violation: Some(failure.violation.to_string()),
                },
            };
            economy.comparison.push(row);
        }
    }
    Ok(card)
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
        let mut honest = measured.latencies_honest_ms.clone();
        honest.sort_unstable();
        let censored = measured.latencies_censored_ms.as_ref().map(|latencies| {
            let mut sorted = latencies.clone();
            sorted.sort_unstable();
            Latency::of(&sorted, measured.untimed)
        });
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
            latency: Latency::of(&sorted, measured.untimed),
            latency_honest: HonestLatency {
                latency: Latency::of(&honest, measured.untimed),
                finalized_per_block: (measured.height > 0)
                    .then(|| round3(honest.len() as f64 / measured.height as f64)),
            },
            latency_censored: censored,
            traffic: Traffic {
                submitted: measured.submitted,
                admitted: measured.admitted,
                transactions_executed: measured.transactions_executed,
                trades_executed: measured.trades_executed,
            },
            consensus: measured.consensus.clone(),
            economy: measured
                .economy
                .as_ref()
                .map(|e| EconomySection::new(scenario, e)),
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
        if let Some(economy) = &self.economy {
            economy.comparison_table(&mut out);
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
                "latency (honest): p50",
                ms(self.latency_honest.latency.p50_ms),
            ),
            (
                "latency (honest): p99",
                ms(self.latency_honest.latency.p99_ms),
            ),
            (
                "honest: finalized/block",
                self.latency_honest
                    .finalized_per_block
                    .map_or("-".to_string(), |f| format!("{f:.1}")),
            ),
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
        // What a Byzantine leader did, where one did anything (the JSON has every count).
        for (name, count) in [
            (
                "consensus: observations withheld",
                self.consensus.observations_withheld,
            ),
            (
                "consensus: censored txs removed",
                self.consensus.censored_removed,
            ),
            ("consensus: marks proposed", self.consensus.marks_proposed),
        ] {
            if count > 0 {
                out.push((name.to_string(), count.to_string()));
            }
        }
        if let Some(censored) = &self.latency_censored {
            out.push((
                "latency (censored trader): samples".to_string(),
                censored.samples.to_string(),
            ));
            for (name, value) in [
                ("p50", censored.p50_ms),
                ("p99", censored.p99_ms),
                ("max", censored.max_ms),
            ] {
                out.push((format!("latency (censored trader): {name}"), ms(value)));
            }
            let mean =
                |latency: &Latency| latency.mean_ms.map_or("-".into(), |m| format!("{m:.1} ms"));
            out.push((
                "latency (censored trader): mean (honest)".to_string(),
                format!(
                    "{} ({})",
                    mean(censored),
                    mean(&self.latency_honest.latency)
                ),
            ));
        }
        if self.consensus.sandwiches > 0 {
            out.push((
                "consensus: sandwiches (liquidation) contracts".to_string(),
                format!(
                    "{} ({}) {}",
                    self.consensus.sandwiches,
                    self.consensus.liquidation_sandwiches,
                    self.consensus.sandwich_contracts
                ),
            ));
        }
        if self.consensus.snipes > 0 {
            out.push((
                "consensus: snipes contracts, txs held back, edge USDC".to_string(),
                format!(
                    "{} {}, {}, {}",
                    self.consensus.snipes,
                    self.consensus.snipe_contracts,
                    self.consensus.snipe_held_back,
                    self.consensus.snipe_edge_usdc
                ),
            ));
        }
        for r in &self.liveness.recoveries {
            out.push((
                format!("recovery: fault[{}] {}", r.fault, r.kind),
                format!("{} ms after heal", r.recovered_after_ms),
            ));
        }
        if let Some(economy) = &self.economy {
            out.extend(economy.rows());
        }
        out
    }
}

fn usdc_or_dash(v: Option<i64>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

impl EconomySection {
    /// The economy's rows of the scorecard's table (`economy: ...`, `agents: ...`).
    fn rows(&self) -> Vec<(String, String)> {
        let f = &self.figures;
        let rows: Vec<(&str, String)> = vec![
            (
                "economy: switched off",
                if self.switched_off.is_empty() {
                    "none".to_string()
                } else {
                    self.switched_off.join(", ")
                },
            ),
            (
                "economy: index error max/mean",
                format!(
                    "{} / {} bps",
                    f.index_error_bps_max,
                    f.index_error_bps_mean
                        .map_or("-".to_string(), |m| format!("{m:.2}"))
                ),
            ),
            (
                "economy: fund max/end USDC",
                format!(
                    "{} / {}",
                    f.insurance_fund_max_usdc, f.insurance_fund_end_usdc
                ),
            ),
            (
                "economy: fund drawdown USDC",
                f.insurance_fund_drawdown_usdc.to_string(),
            ),
            ("economy: bad debt USDC", f.bad_debt_usdc.to_string()),
            (
                "economy: calls/backstop/ADL",
                format!(
                    "{} / {} / {}",
                    f.margin_calls, f.backstop_takeovers, f.auto_deleveraged
                ),
            ),
            (
                "economy: contracts book/backstop/ADL",
                format!(
                    "{} / {} / {}",
                    f.stepped_contracts, f.backstop_contracts, f.deleveraged_contracts
                ),
            ),
            (
                "economy: deficits paid fund/ADL USDC",
                format!(
                    "{} / {}",
                    f.deficits_from_fund_usdc, f.deficits_from_deleveraging_usdc
                ),
            ),
            (
                "economy: innocent losses USDC",
                f.innocent_losses_usdc.to_string(),
            ),
            (
                "economy: attacker profit USDC",
                usdc_or_dash(f.attacker_profit_usdc),
            ),
            (
                "economy: attacker withdrew USDC",
                usdc_or_dash(f.attacker_withdrawn_usdc),
            ),
            (
                "agents: orders submitted",
                self.agents.orders_submitted.to_string(),
            ),
            (
                "agents: txs/block mean/max",
                format!(
                    "{} / {}",
                    self.agents
                        .txs_per_block_mean
                        .map_or("-".to_string(), |m| format!("{m:.1}")),
                    self.agents.txs_per_block_max
                ),
            ),
        ];
        let mut rows: Vec<(String, String)> = rows
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        if let Some(funding) = f.attacker_funding_micros.filter(|m| *m != 0) {
            rows.push((
                "economy: funding attacker/others USDC".to_string(),
                format!(
                    "{} / {}",
                    usdc_cents(funding),
                    usdc_cents(f.innocent_funding_micros)
                ),
            ));
        }
        if f.funding_paid_micros != 0 {
            rows.push((
                "economy: funding paid USDC".to_string(),
                usdc_cents(f.funding_paid_micros),
            ));
        }
        if let Some(vol) = f.smile_vol_atm_max_bps {
            rows.push((
                "economy: smile ATM vol max".to_string(),
                format!("{vol} bps"),
            ));
        }
        if f.withdrawals_refused_stale > 0 {
            rows.push((
                "economy: withdrawals refused stale".to_string(),
                format!(
                    "{} ({} USDC asked)",
                    f.withdrawals_refused_stale, f.withdrawals_refused_stale_usdc
                ),
            ));
        }
        rows.extend(self.by_kind.iter().map(|k| {
            (
                format!("agents: {} ({})", k.kind.name(), k.accounts),
                format!("{} USDC", k.profit_usdc),
            )
        }));
        rows
    }

    /// The attack's comparison runs, one line per protection switched off.
    fn comparison_table(&self, out: &mut String) {
        if !self.comparison.is_empty() {
            let _ = writeln!(
                out,
                "protection off     attacker  bad debt  drawdown   ADL  innocent  idx max"
            );
            for row in &self.comparison {
                match (&row.figures, &row.violation) {
                    (Some(f), _) => {
                        let _ = writeln!(
                            out,
                            "{:<16}{:>11}{:>10}{:>10}{:>6}{:>10}{:>9}",
                            row.switched_off,
                            usdc_or_dash(f.attacker_profit_usdc),
                            f.bad_debt_usdc,
                            f.insurance_fund_drawdown_usdc,
                            f.auto_deleveraged,
                            f.innocent_losses_usdc,
                            f.index_error_bps_max
                        );
                    }
                    (None, violation) => {
                        let _ = writeln!(
                            out,
                            "{:<16} violation: {}",
                            row.switched_off,
                            violation.as_deref().unwrap_or("no economy measured")
                        );
                    }
                }
            }
            let smiles = |r: &ComparisonRow| {
                r.figures
                    .as_ref()
                    .is_some_and(|f| f.smile_vol_atm_max_bps.is_some())
            };
            if self.comparison.iter().any(smiles) {
                let _ = writeln!(out, "protection off   smile ATM vol max bps");
                for row in &self.comparison {
                    let Some(f) = &row.figures else { continue };
                    let _ = writeln!(
                        out,
                        "{:<16}{:>22}",
                        row.switched_off,
                        f.smile_vol_atm_max_bps
                            .map_or("-".to_string(), |v| v.to_string())
                    );
                }
            }
            let funded = |r: &ComparisonRow| {
                r.figures
                    .as_ref()
                    .is_some_and(|f| f.attacker_funding_micros.is_some_and(|m| m != 0))
            };
            if self.comparison.iter().any(funded) {
                let _ = writeln!(
                    out,
                    "protection off   attacker funding  others' funding USDC"
                );
                for row in &self.comparison {
                    let Some(f) = &row.figures else { continue };
                    let _ = writeln!(
                        out,
                        "{:<16}{:>17}{:>22}",
                        row.switched_off,
                        usdc_cents(f.attacker_funding_micros.unwrap_or(0)),
                        usdc_cents(f.innocent_funding_micros)
                    );
                }
            }
        }
    }
}
