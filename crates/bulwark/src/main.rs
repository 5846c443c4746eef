//! `bulwark`: run validators and local networks, trade against them, price options, and
//! run the benchmarks.

use anyhow::{Context, Result};
use bulwark::workload::{exchange, matching};
use bulwark::{cli, cluster_bench};
use clap::{Parser, Subcommand};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;

/// Every allocation of the binary (validators, gateway, lab) goes through mimalloc: glibc's
/// allocator took about a tenth of a validator's CPU under load, part of it in futex waits on
/// its arena locks. Transparent huge pages are off for the process (built without mimalloc's
/// `madvise`, and `no_transparent_huge_pages` for kernels that use them unasked): with them
/// every first touch of mimalloc's 2 MiB-aligned memory zeroed a whole huge page, a tenth of
/// the CPU again (README, performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Create an ed25519 key: writes it to --out (hex, mode 0600) and prints the public key.
    Keygen(cli::KeygenArgs),
    /// Run one validator from a configuration file (TOML, or JSON if it ends in .json).
    Node(cli::NodeArgs),
    /// A local network: validators in this process on 127.0.0.1, a BTC perpetual and
    /// options, bots that trade; prints where the APIs are. Ctrl-C stops; run again to resume.
    Devnet(cli::DevnetArgs),
    /// A gateway: a non-voting follower of a network's finalized blocks (each checked against
    /// the validators' certificates) serving the Deribit-compatible API.
    Gateway(bulwark::gateway_cli::GatewayArgs),
    /// Create, list or revoke API keys (agent keys of an account) at a gateway.
    #[command(subcommand)]
    Apikey(bulwark::gateway_cli::ApikeyCommand),
    /// Place or cancel orders through a validator's API.
    #[command(subcommand)]
    Order(cli::OrderCommand),
    /// Withdraw USDC from an account with its owner's key (--amount), held until prices
    /// observed after the request pass it, then paid; or cancel a held one (--cancel).
    Withdraw(cli::WithdrawArgs),
    /// Show an account: balances, margin, open orders, positions.
    Account(cli::AccountArgs),
    /// Show an instrument's order book.
    Book(cli::BookArgs),
    /// Show a validator's status.
    Status(cli::StatusArgs),
    /// Stress a portfolio under the margin grid, your own shocks or historical crashes
    /// (--portfolio FILE [--shocks FILE | --historical] [--json] [--plot FILE.svg]); or run the
    /// cascade analysis of leveraged accounts through a crash, each protection on and off
    /// (--cascade).
    Stress(bulwark::stress::StressArgs),
    /// Kill -9 soak: 4 validator processes under an order load, a random one killed with
    /// SIGKILL and restarted again and again; checks every finalized transaction on every
    /// validator and times each rejoin ([--cycles N] [--seed S] [--rate R] [--dir D]).
    Soak(bulwark::soak::SoakArgs),
    /// The resilience lab: run a scenario (a catalogue name or a TOML file) on real validators
    /// over a simulated network, faults from its timeline, invariants checked every block,
    /// and print the scorecard ([--seed S] [--json PATH] [--html PATH] [--no-baseline]; --list
    /// names the catalogue). Exits non-zero on a violation, printing the seed and timeline to
    /// replay it. `simulate sweep <scenario> --seeds N [--jobs J] [--first-seed S] [--json F]`
    /// runs many seeds in parallel, each drawing the scenario's ranged faults.
    Simulate(bulwark::simulate::SimulateArgs),
    /// Follow a public exchange's price index over its websocket, as a validator's price
    /// source would read it; optionally record the frames as a capture.
    #[command(subcommand)]
    Feed(Feed),
}

#[derive(Subcommand)]
enum Feed {
    /// Deribit's `deribit_price_index` channel (--index btc_usd=BTC, repeatable; --seconds N;
    /// --record FILE appends every frame).
    Deribit(bulwark::feed::FeedArgs),
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
    /// Validators in one process on 127.0.0.1 (as `bulwark devnet`) under a stream of signed
    /// orders at a target rate: finalized orders per second, submission-to-finalized latency
    /// (p50, p99) and CPU time per order per validator, printed as the last lines.
    Cluster(cluster_bench::ClusterBenchArgs),
}

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", message(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: many errors already say their cause
/// in their own message, and the chain would say it again.
fn message(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

/// Asks the kernel not to back this process's memory with transparent huge pages (for a
/// system set to `always`; with `madvise` nothing here asks for them). Best effort: a kernel
/// that refuses leaves the process as it was, slower, not wrong.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
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
        Command::Bench(Bench::Cluster(args)) => cluster_bench::run(args),
        Command::Keygen(args) => cli::keygen(args),
        Command::Node(args) => cli::node(args),
        Command::Devnet(args) => cli::devnet(args),
        Command::Gateway(args) => bulwark::gateway_cli::gateway(args),
        Command::Apikey(command) => bulwark::gateway_cli::apikey(command),
        Command::Order(command) => cli::order(command),
        Command::Withdraw(args) => cli::withdraw(args),
        Command::Account(args) => cli::account(args),
        Command::Book(args) => cli::book(args),
        Command::Status(args) => cli::status(args),
        Command::Stress(args) => bulwark::stress::run(args),
        Command::Soak(args) => bulwark::soak::run_command(args),
        Command::Simulate(args) => bulwark::simulate::run(args),
        Command::Feed(Feed::Deribit(args)) => bulwark::feed::run(args),
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
        option_strikes: 2,
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

#[cfg(test)]
mod tests {
    use super::message;

    #[derive(Debug, thiserror::Error)]
    #[error("line 3: {source}")]
    struct SaysItsCause {
        source: std::io::Error,
    }

    #[test]
    fn an_error_s_causes_are_printed_once_each() {
        let io = || std::io::Error::other("disk on fire");
        let said = anyhow::Error::new(SaysItsCause { source: io() }).context("reading x.jsonl");
        assert_eq!(message(&said), "reading x.jsonl: line 3: disk on fire");
        let plain = anyhow::Error::new(io()).context("opening x");
        assert_eq!(message(&plain), "opening x: disk on fire");
    }
}
