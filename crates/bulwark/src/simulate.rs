//! `bulwark simulate`: run a resilience-lab scenario and print its scorecard. The lab itself
//! is `bulwark-sim`; this is only the command.

use anyhow::{Context, Result, bail};
use bulwark_sim::catalogue::{self, CATALOGUE};
use bulwark_sim::{Scenario, score, score_compared};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// A catalogue scenario's name (see --list), or a scenario file (TOML).
    #[arg(required_unless_present = "list")]
    pub scenario: Option<String>,
    /// List the catalogue's scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// The seed that drives the whole run; the same seed replays it exactly.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the scorecard (or, on a violation, the failure) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Skip the fault-free baseline run (the scorecard then has no baseline rate).
    #[arg(long)]
    pub no_baseline: bool,
    /// For an attack scenario, skip the comparison runs with each protection under test
    /// switched off.
    #[arg(long)]
    pub no_compare: bool,
}

pub fn run(args: SimulateArgs) -> Result<()> {
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
    let scored = if args.no_compare {
        score(&scenario, args.seed, !args.no_baseline)
    } else {
        score_compared(&scenario, args.seed, !args.no_baseline)
    };
    match scored {
        Ok(card) => {
            println!("{}", card.table());
            if let Some(path) = &args.json {
                std::fs::write(path, card.to_json() + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Err(failure) => {
            eprintln!("{failure}");
            eprintln!("replay: {}", failure.replay_command(&name));
            if let Some(path) = &args.json {
                let json = serde_json::to_string_pretty(&failure).expect("a failure serializes");
                std::fs::write(path, json + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            bail!(
                "scenario {name} failed on seed {}: {}",
                failure.seed,
                failure.violation
            )
        }
    }
}
