//! `bulwark simulate`: run a resilience-lab scenario and print its scorecard (optionally as
//! JSON and as an HTML report), or sweep it over many seeds with a progress bar. The lab
//! itself is `bulwark-sim`; this is only the command.
//!
//! Bounds: a scenario file is read through `catalogue::load`, which stops after
//! [`catalogue::SCENARIO_BYTES_MAX`] bytes, so `/dev/zero`, a FIFO fed forever or a huge file is
//! refused without reading it whole.

use anyhow::{Context, Result, bail};
use bulwark_sim::catalogue::{self, CATALOGUE};
use bulwark_sim::sweep::{SeedOutcome, SweepConfig, sweep};
use bulwark_sim::{Scenario, report, score, score_compared};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SimulateArgs {
    #[command(subcommand)]
    pub command: Option<SimulateCommand>,
    /// A catalogue scenario's name (see --list), or a scenario file (TOML).
    #[arg(required_unless_present = "list")]
    pub scenario: Option<String>,
    /// List the catalogue's scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// The seed that drives the whole run (and draws a ranged scenario's faults); the same
    /// seed replays it exactly.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the scorecard (or, on a violation, the failure) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the scorecard as a self-contained HTML report with charts to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Skip the fault-free baseline run (the scorecard then has no baseline rate).
    #[arg(long)]
    pub no_baseline: bool,
    /// For an attack scenario, skip the comparison runs with each protection under test
    /// switched off.
    #[arg(long)]
    pub no_compare: bool,
}

#[derive(Subcommand, Debug)]
pub enum SimulateCommand {
    /// Run a scenario on many seeds in parallel, each drawing its faults from the scenario's
    /// ranges (a safety phase with faults, then a liveness phase with every fault healed);
    /// reports seeds per hour and every failing seed with the command that replays it.
    /// Exits non-zero if any seed failed. Build with `cargo build --profile sim -p bulwark`.
    Sweep(SweepArgs),
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// A catalogue scenario's name, or a scenario file (TOML).
    pub scenario: String,
    /// How many seeds to run.
    #[arg(long)]
    pub seeds: u64,
    /// Seeds run at once, each on its own thread (default: the available cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// The first seed; the sweep runs first-seed .. first-seed + seeds.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Also write the sweep's report (counts, failing seeds, the failures) as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Opens `path` for writing now (created if missing, never truncated), so that an output path
/// that cannot be written is refused before a run of minutes, not after it.
fn check_writable(path: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn write(path: &Path, text: String) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub fn run(args: SimulateArgs) -> Result<()> {
    // Quiet by default; `RUST_LOG` traces a replayed seed (the validators' and Commonware's
    // logs, in the run's order; their timestamps are wall time, not simulated time).
    crate::cli::init_logging("off");
    if let Some(SimulateCommand::Sweep(sweep_args)) = args.command {
        return run_sweep(sweep_args);
    }
    if args.list {
        for (name, text) in CATALOGUE {
            let scenario = Scenario::parse(text).expect("the catalogue parses (tested)");
            println!(
                "{name:<20} n={:<2} {}",
                scenario.validators, scenario.description
            );
        }
        return Ok(());
    }
    let name = args
        .scenario
        .expect("clap requires a scenario without --list");
    let scenario = catalogue::load(&name)?;
    for path in args.json.iter().chain(args.html.iter()) {
        check_writable(path)?;
    }
    let scored = if args.no_compare {
        score(&scenario, args.seed, !args.no_baseline)
    } else {
        score_compared(&scenario, args.seed, !args.no_baseline)
    };
    match scored {
        Ok(card) => {
            println!("{}", card.table());
            if let Some(path) = &args.json {
                write(path, card.to_json() + "\n")?;
            }
            if let Some(path) = &args.html {
                write(path, report::html(&card)?)?;
            }
            Ok(())
        }
        Err(failure) => {
            eprintln!("{failure}");
            eprintln!("replay: {}", failure.replay_command(&name));
            if let Some(path) = &args.json {
                let json = serde_json::to_string_pretty(&failure).expect("a failure serializes");
                write(path, json + "\n")?;
            }
            bail!(
                "scenario {name} failed on seed {}: {}",
                failure.seed,
                failure.violation
            )
        }
    }
}

fn run_sweep(args: SweepArgs) -> Result<()> {
    let scenario = catalogue::load(&args.scenario)?;
    if let Some(path) = &args.json {
        check_writable(path)?;
    }
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let config = SweepConfig {
        first_seed: args.first_seed,
        seeds: args.seeds,
        jobs,
    };
    let bar = indicatif::ProgressBar::new(args.seeds);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} seeds ({per_sec}, eta {eta}) {msg}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    let failed = std::sync::atomic::AtomicU64::new(0);
    let started = Instant::now();
    let report = sweep(&scenario, &config, &|outcome| {
        if let SeedOutcome::Failed(failure) = outcome {
            let count = failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            bar.println(format!(
                "seed {} FAILED: {}\n  replay: {}",
                failure.seed,
                failure.violation,
                failure.replay_command(&args.scenario)
            ));
            bar.set_message(format!("{count} failed"));
        }
        bar.inc(1);
    })?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let per_hour = report.seeds as f64 * 3_600.0 / elapsed.as_secs_f64().max(1e-9);
    println!(
        "sweep {}: {} seeds from {} on {} threads in {:.1} s: {:.0} seeds/hour; {} passed, {} failed",
        report.scenario,
        report.seeds,
        report.first_seed,
        jobs,
        elapsed.as_secs_f64(),
        per_hour,
        report.passed,
        report.failing_seeds.len()
    );
    if report.passed > 0 {
        println!(
            "passing seeds: {:.1} blocks and {:.1} simulated s per seed",
            report.blocks as f64 / report.passed as f64,
            report.simulated_ms as f64 / 1_000.0 / report.passed as f64
        );
    }
    for failure in &report.failures {
        println!(
            "FAILED seed {}: {} (height {}, {:.3} s)\n  replay: {}",
            failure.seed,
            failure.violation,
            failure.height,
            failure.at_ms as f64 / 1_000.0,
            failure.replay_command(&args.scenario)
        );
    }
    if report.failing_seeds.len() > report.failures.len() {
        println!("every failing seed: {:?}", report.failing_seeds);
    }
    if let Some(path) = &args.json {
        let mut json = serde_json::to_value(&report).expect("a sweep report serializes");
        json["wall_s"] = serde_json::json!(elapsed.as_secs_f64());
        json["seeds_per_hour"] = serde_json::json!(per_hour);
        json["jobs"] = serde_json::json!(jobs);
        let text = serde_json::to_string_pretty(&json).expect("json serializes");
        write(path, text + "\n")?;
    }
    if !report.failing_seeds.is_empty() {
        bail!(
            "sweep of {} failed on {} of {} seeds (first: seed {})",
            report.scenario,
            report.failing_seeds.len(),
            report.seeds,
            report.failing_seeds[0]
        );
    }
    Ok(())
}
