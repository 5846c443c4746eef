//! `bulwark`: run the exchange's benchmarks, price options, and (soon) run validators.

use anyhow::{Context, Result};
use bulwark::workload::{exchange, matching};
use clap::{Parser, Subcommand};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "bulwark",
    version,
    about = "An options exchange that keeps trading when parts of it fail or lie"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Performance benchmarks users can run themselves (build with --release).
    #[command(subcommand)]
    Bench(Bench),
    /// Price options, invert implied volatility and fit smiles: JSON lines on standard input,
    /// one JSON answer line per request on standard output, in order (schema in
    /// `crates/bulwark-pricing/src/jsonl.rs`).
    Options,
}

#[derive(Subcommand)]
enum Bench {
    /// Matching alone on one book of 10,000 resting orders: 70% new, 25% cancels, 5% crossing.
    /// The last line reads `matching: N ops/s`.
    Matching {
        /// Operations to time after the book is built.
        #[arg(long, default_value_t = 5_000_000)]
        ops: usize,
        /// Seed of the generated stream.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Replay this file of JSON lines instead of generating a stream; its first 10,000
        /// lines build the book and are not timed.
        #[arg(long, conflicts_with_all = ["ops", "seed"])]
        replay: Option<PathBuf>,
        /// Write the generated stream to this file (the --replay format), so that other
        /// engines can be measured on the identical stream.
        #[arg(long, conflicts_with = "replay")]
        write: Option<PathBuf>,
    },
    /// `apply_block` with margin checks on every order (signatures checked before timing).
    /// The last line reads `apply_block: N txs/s`.
    Apply {
        /// Trading transactions to time.
        #[arg(long, default_value_t = 200_000)]
        txs: usize,
        /// Funded trading accounts.
        #[arg(long, default_value_t = 1_000)]
        accounts: usize,
        /// Transactions per block.
        #[arg(long, default_value_t = 4_096)]
        block_txs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bench(Bench::Matching {
            ops,
            seed,
            replay,
            write,
        }) => bench_matching(ops, seed, replay, write),
        Command::Bench(Bench::Apply {
            txs,
            accounts,
            block_txs,
            seed,
        }) => bench_apply(txs, accounts, block_txs, seed),
        Command::Options => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            bulwark::options::serve(stdin, stdout).context("bulwark options")?;
            Ok(())
        }
    }
}

fn bench_matching(
    ops: usize,
    seed: u64,
    replay: Option<PathBuf>,
    write: Option<PathBuf>,
) -> Result<()> {
    let stream = match &replay {
        Some(path) => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            matching::read_replay(BufReader::new(file))
                .with_context(|| format!("reading {}", path.display()))?
        }
        None => {
            eprintln!(
                "generating {} setup and {ops} timed operations (seed {seed})",
                matching::SETUP_ORDERS
            );
            matching::generate(seed, ops)
        }
    };
    if let Some(path) = &write {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        matching::write_replay(&stream, BufWriter::new(file))?;
        eprintln!("wrote {} operations to {}", stream.len(), path.display());
    }
    let report = matching::run(&stream);
    println!(
        "timed operations: {} in {:.3} s",
        report.ops_timed,
        report.elapsed.as_secs_f64()
    );
    println!(
        "resting orders: {}, filled lots: {}",
        report.resting_after, report.filled_lots
    );
    println!("matching: {:.0} ops/s", report.ops_per_second());
    Ok(())
}

fn bench_apply(txs: usize, accounts: usize, block_txs: usize, seed: u64) -> Result<()> {
    anyhow::ensure!(
        accounts > 0 && block_txs > 0 && txs >= block_txs,
        "need accounts, and txs >= block_txs > 0"
    );
    let config = exchange::ExchangeWorkloadConfig {
        seed,
        accounts,
        txs_per_block: block_txs,
        blocks: txs / block_txs,
    };
    eprintln!(
        "signing and checking {} transactions ({} accounts) ...",
        config.blocks * block_txs,
        accounts
    );
    let workload = exchange::generate(config);
    let report = exchange::run(&workload);
    println!(
        "transactions: {} in {:.3} s ({} trades, {} rejected)",
        report.txs,
        report.elapsed.as_secs_f64(),
        report.trades,
        report.rejected
    );
    println!("apply_block: {:.0} txs/s", report.txs_per_second());
    Ok(())
}
