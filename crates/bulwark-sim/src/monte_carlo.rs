//! Monte Carlo of bad debt (`bulwark stress --monte-carlo --paths N`): seeded jump-diffusion
//! price paths, with volatility spikes that also withdraw the market maker's liquidity, driven
//! through the real exchange state machine's liquidation (the cascade's market, every
//! protection on), in parallel across cores. Each path checks the exchange's invariants (money
//! conserved, positions net to zero, no unreported deficit) at its end; the report is the
//! distribution of bad debt against the insurance fund and how often deleveraging fired.
//!
//! Owns: the path model ([`PathModel`]), the workers, the summary ([`MonteCarloReport`]).
//! Never: reaches into the exchange (paths run through [`crate::cascade::run_path`]).
//!
//! The path model, per one-second block: the index's log return is `sigma x Z` plus, with
//! probability `jump_per_block`, a jump drawn from `N(jump_mean, jump_sd)`; with probability
//! `spike_per_block` a volatility spike starts and lasts `spike_blocks`, multiplying sigma by
//! `spike_multiple` while the maker quotes a quarter of its levels at half size. Paths are a
//! function of `(seed, path number)` alone, so any path replays exactly.

use crate::cascade::{CascadeConfig, CascadeOutcome, PathStep, Protections, run_path};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most paths one run takes.
pub const PATHS_MAX: usize = 10_000_000;

/// How prices move, per one-second block.
#[derive(Copy, Clone, Debug, Serialize)]
pub struct PathModel {
    pub blocks: usize,
    /// Diffusion volatility per block (about 80% a year at 0.00016 per second).
    pub sigma: f64,
    pub jump_per_block: f64,
    pub jump_mean: f64,
    pub jump_sd: f64,
    pub spike_per_block: f64,
    pub spike_blocks: usize,
    pub spike_multiple: f64,
}

impl PathModel {
    /// One minute of a stressed market: 80%/yr diffusion, a 1-in-60 chance per second of a
    /// jump averaging -3% (sd 4%), volatility spikes of 5x for 10 s.
    pub const fn defaults() -> Self {
        Self {
            blocks: 60,
            sigma: 0.000_16,
            jump_per_block: 1.0 / 60.0,
            jump_mean: -0.03,
            jump_sd: 0.04,
            spike_per_block: 1.0 / 120.0,
            spike_blocks: 10,
            spike_multiple: 5.0,
        }
    }

    /// Path `n` of the run seeded `seed`, around the cascade's starting index.
    pub fn path(&self, config: &CascadeConfig, seed: u64, n: u64) -> Vec<PathStep> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut log_index = (crate::cascade::INDEX_USDC as f64).ln();
        let mut spike_left = 0usize;
        let mut steps = Vec::with_capacity(self.blocks);
        for _ in 0..self.blocks {
            if spike_left == 0 && rng.random_bool(self.spike_per_block) {
                spike_left = self.spike_blocks;
            }
            let sigma = if spike_left > 0 {
                self.sigma * self.spike_multiple
            } else {
                self.sigma
            };
            let mut change = sigma * normal(&mut rng);
            if rng.random_bool(self.jump_per_block) {
                change += self.jump_mean + self.jump_sd * normal(&mut rng);
            }
            log_index += change;
            let index = libm::exp(log_index).round().clamp(1_000.0, 10_000_000.0) as i64;
            let (levels, level_size) = if spike_left > 0 {
                ((config.levels / 4).max(1), (config.level_size / 2).max(1))
            } else {
                (config.levels, config.level_size)
            };
            steps.push(PathStep {
                index,
                levels,
                level_size,
            });
            spike_left = spike_left.saturating_sub(1);
        }
        steps
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random_range(0.0..1.0);
    libm::sqrt(-2.0 * libm::log(u)) * libm::cos(std::f64::consts::TAU * v)
}

/// What the run found.
#[derive(Clone, Debug, Serialize)]
pub struct MonteCarloReport {
    pub paths: usize,
    pub seed: u64,
    pub accounts: usize,
    pub fund_usdc: f64,
    pub model: PathModel,
    pub seconds: f64,
    pub paths_per_second: f64,
    pub bad_debt_mean_usdc: f64,
    pub bad_debt_var95_usdc: f64,
    pub bad_debt_var99_usdc: f64,
    pub bad_debt_worst_usdc: f64,
    /// The path with the worst bad debt (replay it with `--seed` and this path number).
    pub worst_path: u64,
    /// Paths whose bad debt exceeded the fund they started with.
    pub paths_beyond_fund: usize,
    /// Paths in which auto-deleveraging closed anything.
    pub paths_deleveraged: usize,
    pub fund_drawdown_worst_usdc: f64,
    /// Paths run to the end with the exchange's invariants (money conserved among them)
    /// checked at the path's end (and after every block in debug builds): a violation stops
    /// the whole run with a panic, so every path reported was checked and held.
    pub paths_checked: usize,
}

/// Runs `paths` paths on `threads` workers; `progress` is told of each finished path.
pub fn run(
    config: &CascadeConfig,
    model: &PathModel,
    paths: usize,
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> MonteCarloReport {
    assert!((1..=PATHS_MAX).contains(&paths), "paths bounded");
    let started = std::time::Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(u64, CascadeOutcome)>> = Mutex::new(Vec::with_capacity(paths));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= paths {
                        break;
                    }
                    let path = model.path(config, config.seed, n as u64);
                    // `run_path` checks the exchange's invariants at the end of the path and
                    // panics (failing the run) if money was not conserved.
                    let outcome = run_path(config, Protections::VARIANTS[0], &path);
                    results
                        .lock()
                        .expect("no worker panics holding it")
                        .push((n as u64, outcome));
                    progress();
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut results = results.into_inner().expect("workers finished");
    results.sort_by_key(|(n, _)| *n);
    summarise(config, model, paths, seconds, &results)
}

fn summarise(
    config: &CascadeConfig,
    model: &PathModel,
    paths: usize,
    seconds: f64,
    results: &[(u64, CascadeOutcome)],
) -> MonteCarloReport {
    let mut debts: Vec<f64> = results.iter().map(|(_, o)| o.bad_debt_usdc).collect();
    debts.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let i = ((debts.len() as f64 * q).ceil() as usize).clamp(1, debts.len()) - 1;
        debts[i]
    };
    let fund = config.insurance_usdc as f64;
    let (worst_path, worst) = results
        .iter()
        .map(|(n, o)| (*n, o.bad_debt_usdc))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .unwrap_or((0, 0.0));
    MonteCarloReport {
        paths,
        seed: config.seed,
        accounts: config.accounts,
        fund_usdc: fund,
        model: *model,
        seconds,
        paths_per_second: paths as f64 / seconds.max(1e-9),
        bad_debt_mean_usdc: debts.iter().sum::<f64>() / debts.len().max(1) as f64,
        bad_debt_var95_usdc: quantile(0.95),
        bad_debt_var99_usdc: quantile(0.99),
        bad_debt_worst_usdc: worst,
        worst_path,
        paths_beyond_fund: debts.iter().filter(|d| **d > fund).count(),
        paths_deleveraged: results
            .iter()
            .filter(|(_, o)| o.deleveraged_contracts > 0)
            .count(),
        fund_drawdown_worst_usdc: results
            .iter()
            .map(|(_, o)| o.insurance_fund_drawdown_usdc)
            .fold(0.0, f64::max),
        paths_checked: results.len(),
    }
}

/// The report as the command prints it.
pub fn table(report: &MonteCarloReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "monte carlo: {} paths of {} s, {} accounts at 2x-15x long, fund {:.0} USDC, seed {}",
        report.paths, report.model.blocks, report.accounts, report.fund_usdc, report.seed
    );
    let _ = writeln!(
        out,
        "jump-diffusion: sigma {}/s, jumps {:.4}/s of N({}, {}), vol spikes {:.4}/s x{} for {} s \
         (the maker quotes a quarter of its levels at half size during a spike)",
        report.model.sigma,
        report.model.jump_per_block,
        report.model.jump_mean,
        report.model.jump_sd,
        report.model.spike_per_block,
        report.model.spike_multiple,
        report.model.spike_blocks
    );
    let _ = writeln!(out);
    let rows = [
        ("bad debt, mean", report.bad_debt_mean_usdc),
        ("bad debt, VaR 95", report.bad_debt_var95_usdc),
        ("bad debt, VaR 99", report.bad_debt_var99_usdc),
        ("bad debt, worst", report.bad_debt_worst_usdc),
        ("fund drawdown, worst", report.fund_drawdown_worst_usdc),
    ];
    for (name, value) in rows {
        let _ = writeln!(
            out,
            "{name:<22} {value:>14.2} USDC  ({:.2}% of the fund)",
            100.0 * value / report.fund_usdc.max(1.0)
        );
    }
    let _ = writeln!(
        out,
        "{:<22} {:>14} of {} paths",
        "bad debt beyond fund", report.paths_beyond_fund, report.paths
    );
    let _ = writeln!(
        out,
        "{:<22} {:>14} of {} paths",
        "deleveraging fired", report.paths_deleveraged, report.paths
    );
    let _ = writeln!(
        out,
        "{:<22} {:>14} of {} paths (a violation stops the run)",
        "invariants held", report.paths_checked, report.paths
    );
    let _ = writeln!(out, "worst path: {}", report.worst_path);
    let _ = writeln!(
        out,
        "{} paths in {:.1} s: {:.1} paths/s",
        report.paths, report.seconds, report.paths_per_second
    );
    out
}

/// The Monte Carlo's population: the cascade's, at a tenth of the accounts and of the fund.
pub fn population(accounts: usize, seed: u64) -> CascadeConfig {
    CascadeConfig {
        accounts,
        seed,
        insurance_usdc: 100_000,
        ..CascadeConfig::defaults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_replay_from_their_seed_and_differ_between_numbers() {
        let config = population(10, 3);
        let model = PathModel::defaults();
        let a = model.path(&config, 3, 7);
        let b = model.path(&config, 3, 7);
        let c = model.path(&config, 3, 8);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
        assert_eq!(a.len(), model.blocks);
    }

    #[test]
    fn a_small_run_conserves_money_on_every_path_and_is_deterministic() {
        let config = population(10, 3);
        let model = PathModel {
            blocks: 20,
            ..PathModel::defaults()
        };
        let one = run(&config, &model, 6, 2, &|| {});
        let again = run(&config, &model, 6, 1, &|| {});
        // Two worker counts, one result: paths are functions of (seed, number) alone.
        assert_eq!(one.bad_debt_mean_usdc, again.bad_debt_mean_usdc);
        assert_eq!(one.bad_debt_worst_usdc, again.bad_debt_worst_usdc);
        assert!(one.bad_debt_var95_usdc <= one.bad_debt_worst_usdc);
    }
}
