//! Sweeps: one scenario on many seeds, in parallel across cores, each seed drawing its own
//! faults from the scenario's ranges (as TigerBeetle's VOPR and FoundationDB's simulation do):
//! a safety phase with the faults, then a liveness phase with every fault healed (see
//! [`crate::lab`]).
//!
//! Owns: handing seeds to worker threads and collecting what each found. Each seed is its own
//! deterministic runtime on its own thread, so seeds never share state, and a failing seed
//! replays alone with `bulwark simulate <scenario> --seed S`.
//! Never: reads the wall clock (the caller times the sweep), or stops at the first failure.
//! Bounds: at most [`SEEDS_MAX`] seeds and [`JOBS_MAX`] threads; at most [`FAILURES_KEPT`]
//! failures kept in full (the rest counted). A seed whose run panics is a failing seed.

use crate::lab::{self, Failure};
use crate::scenario::Scenario;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most seeds in one sweep.
pub const SEEDS_MAX: u64 = 10_000_000;
/// Most worker threads.
pub const JOBS_MAX: usize = 256;
/// Failures kept in full; further failing seeds are counted and named only.
pub const FAILURES_KEPT: usize = 64;

/// Which seeds, on how many threads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SweepConfig {
    pub first_seed: u64,
    pub seeds: u64,
    pub jobs: usize,
}

/// Why a sweep did not start.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    #[error("seeds: {0} is not within 1..={SEEDS_MAX}")]
    Seeds(u64),
    #[error("jobs: {0} is not within 1..={JOBS_MAX}")]
    Jobs(usize),
    #[error("first seed {first} plus {seeds} seeds overflows a u64")]
    Overflow { first: u64, seeds: u64 },
}

/// What one seed found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeedOutcome {
    Passed {
        seed: u64,
        height: u64,
        simulated_ms: u64,
    },
    Failed(Box<Failure>),
}

impl SeedOutcome {
    pub fn seed(&self) -> u64 {
        match self {
            Self::Passed { seed, .. } => *seed,
            Self::Failed(failure) => failure.seed,
        }
    }
}

/// What a sweep found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub scenario: String,
    pub first_seed: u64,
    pub seeds: u64,
    pub passed: u64,
    /// Every failing seed, in seed order.
    pub failing_seeds: Vec<u64>,
    /// The first [`FAILURES_KEPT`] failures in full, in seed order.
    pub failures: Vec<Failure>,
    /// Heights finalized and simulated milliseconds, summed over the passing seeds.
    pub blocks: u64,
    pub simulated_ms: u64,
}

/// Runs `scenario` on seeds `first_seed..first_seed + seeds` on `jobs` threads, calling
/// `progress` (from the worker threads) as each seed finishes.
pub fn sweep(
    scenario: &Scenario,
    config: &SweepConfig,
    progress: &(dyn Fn(&SeedOutcome) + Sync),
) -> Result<SweepReport, SweepError> {
    if !(1..=SEEDS_MAX).contains(&config.seeds) {
        return Err(SweepError::Seeds(config.seeds));
    }
    if !(1..=JOBS_MAX).contains(&config.jobs) {
        return Err(SweepError::Jobs(config.jobs));
    }
    // The last seed run is `first_seed + seeds - 1` (`seeds` is at least 1 here).
    if config.first_seed.checked_add(config.seeds - 1).is_none() {
        return Err(SweepError::Overflow {
            first: config.first_seed,
            seeds: config.seeds,
        });
    }
    let next = AtomicU64::new(0);
    let tally = Mutex::new(SweepReport {
        scenario: scenario.name.clone(),
        first_seed: config.first_seed,
        seeds: config.seeds,
        passed: 0,
        failing_seeds: Vec::new(),
        failures: Vec::new(),
        blocks: 0,
        simulated_ms: 0,
    });
    let kept: Mutex<BTreeMap<u64, Failure>> = Mutex::new(BTreeMap::new());
    let jobs = config
        .jobs
        .min(usize::try_from(config.seeds).unwrap_or(usize::MAX));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= config.seeds {
                        break;
                    }
                    let outcome = run_seed(scenario, config.first_seed + index);
                    progress(&outcome);
                    let mut report = tally.lock().expect("not poisoned");
                    match outcome {
                        SeedOutcome::Passed {
                            height,
                            simulated_ms,
                            ..
                        } => {
                            report.passed += 1;
                            report.blocks += height;
                            report.simulated_ms += simulated_ms;
                        }
                        SeedOutcome::Failed(failure) => {
                            report.failing_seeds.push(failure.seed);
                            // The lowest seeds' failures are kept in full.
                            let mut kept = kept.lock().expect("not poisoned");
                            kept.insert(failure.seed, *failure);
                            if kept.len() > FAILURES_KEPT {
                                kept.pop_last();
                            }
                        }
                    }
                }
            });
        }
    });
    let mut report = tally.into_inner().expect("not poisoned");
    report.failing_seeds.sort_unstable();
    report.failures = kept
        .into_inner()
        .expect("not poisoned")
        .into_values()
        .collect();
    assert_eq!(
        report.passed + report.failing_seeds.len() as u64,
        config.seeds,
        "every seed ran once"
    );
    Ok(report)
}

/// One seed's run; a panic inside it is a failure of that seed ([`lab::simulate`] reports
/// it as [`crate::lab::Violation::Panicked`] with the timeline up to it).
pub fn run_seed(scenario: &Scenario, seed: u64) -> SeedOutcome {
    match lab::simulate(scenario, seed) {
        Ok(measured) => SeedOutcome::Passed {
            seed,
            height: measured.height,
            simulated_ms: measured.elapsed_ms,
        },
        Err(failure) => SeedOutcome::Failed(Box::new(failure)),
    }
}
