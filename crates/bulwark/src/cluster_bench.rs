//! `bulwark bench cluster`: a devnet's validators in one process under a stream of signed
//! orders, measuring what a client sees.
//!
//! Setup (untimed): the devnet's listings, `accounts` funded traders, and `orders` signed
//! perpetual orders (75% limit orders resting near the mark, 20% cancels of the trader's
//! earlier orders by client id, 5% immediate-or-cancel orders that cross), signed before
//! timing. Then the orders go to the validators' mempools in round-robin batches every 5 ms
//! (at most a hundredth of the rate each) at the target rate, through `Shared::submit` (what
//! the API does after decoding), and a watcher reads each validator's receipts for the orders
//! it took the moment that validator announces a newly executed finalized block
//! (`Shared::finalized_heights`; until 2026-12-04 it polled every 5 ms, which added up to 5 ms
//! and a wake-up to every latency measured).
//! Figures: finalized orders per second (first submission to last finalization), latency from
//! submission to the finalized outcome on the validator that took the order (p50, p99), and
//! process CPU time (user + system, `getrusage`) divided by finalized orders and validators.
//! Every validator runs on the same 2 worker threads, so the last figure is the cost one
//! validator would pay per order on a machine of its own.
//!
//! `--flood`: beside the honest traders, a flooder with `--flood-keys` keys (one of them a
//! funded account, the rest throwaway keys with no account) submits every transaction it
//! signed, round-robin to the validators, as fast as the validators take them, for as long as
//! the honest orders run. The figures stay the honest orders'; the flooder's line says what
//! became of its transactions. Run it with and without `--flood` at the same rate to compare.
//!
//! `--deep-book N`: before timing, N more bids rest in the perpetual, from N / 500 accounts of
//! their own (the venue's open-order limit), one contract each, from 300 ticks below the mark
//! down (inside the band), set up like the deposits. Every block of the timed phase trades in
//! that book; a validator that copied a book whole for each block it speculates on paid for
//! all N orders in every block (`bulwark-book` `tests/deep_book.rs`).

use crate::devnet::{self, DevnetFile};
use crate::genesis;
use crate::keys::{self, DevnetKey};
use crate::validator::{self, NodeSettings, RunningValidator};
use anyhow::{Context as _, Result, ensure};
use bulwark_node::mempool::TxDigest;
use bulwark_node::shared::{Shared, TxStatus, lock};
use bulwark_types::{
    ClientOrderId, InstrumentId, Money, OrderRef, OrderRequest, PrivateKey, PublicKey, Qty, Side,
    SignedTx, TimeInForce, TxBody, UnitPrice,
};
use clap::Args;
use commonware_cryptography::Signer;
use commonware_runtime::{Clock as _, Runner as _, Spawner as _, Supervisor as _, tokio};
use futures::FutureExt as _;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Clone, Debug)]
pub struct ClusterBenchArgs {
    /// Signed orders to submit.
    #[arg(long, default_value_t = 60_000)]
    pub orders: usize,
    /// Target submission rate, orders per second.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Funded trading accounts.
    #[arg(long, default_value_t = 2_000)]
    pub accounts: usize,
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Least time between blocks, milliseconds.
    #[arg(long, default_value_t = 50)]
    pub block_interval_ms: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Storage directory (default: a fresh temporary one, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value_t = 31_400)]
    pub p2p_port: u16,
    #[arg(long, default_value_t = 9_080)]
    pub api_port: u16,
    /// Add a flooder (see the module docs).
    #[arg(long)]
    pub flood: bool,
    /// Rest this many bids in the perpetual before timing, from more accounts (500 open
    /// orders each), below the honest orders but inside the price band: a deep book that
    /// every block trading in the perpetual changes (see the module docs).
    #[arg(long, default_value_t = 0)]
    pub deep_book: usize,
    /// Keys the flooder signs with (one funded, the rest without an account).
    #[arg(long, default_value_t = 1_000)]
    pub flood_keys: usize,
    /// Transactions the flooder signs per key.
    #[arg(long, default_value_t = 40)]
    pub flood_per_key: usize,
}

/// What became of the flooder's transactions.
#[derive(Default, Debug)]
struct FloodFigures {
    attempted: u64,
    admitted: u64,
    /// Refused before any signature check: the signer has no account.
    unknown_signer: u64,
    /// Refused for the account's or signer's share of the pool.
    over_share: u64,
    other_refusals: u64,
}

/// The flooder's transactions: resting orders far from the mark. Key 0 is funded and signs
/// `20 * per_key`; every other key has no account and signs `per_key`. The funded key's
/// transactions are spread through the others'.
fn sign_flood(keys: &[PrivateKey], per_key: usize) -> Vec<SignedTx> {
    let perpetual = InstrumentId::new(0);
    let tick = genesis::perpetual_spec().tick_size.micros();
    let far_ticks = genesis::INDEX_START_USDC * 1_000_000 / tick / 2;
    let order = |key: &PrivateKey, nonce: u64| {
        let body = TxBody::PlaceOrder(OrderRequest::limit(
            perpetual,
            ClientOrderId::new(nonce),
            Side::Buy,
            Qty::from_contracts(1),
            UnitPrice::from_micros(far_ticks * tick),
            TimeInForce::GoodTilCancelled,
        ));
        genesis::sign(key, nonce, body)
    };
    let Some((funded, throwaway)) = keys.split_first() else {
        return Vec::new();
    };
    let mut funded_txs = (1..=(20 * per_key) as u64).map(|nonce| order(funded, nonce));
    let mut txs = Vec::with_capacity(keys.len() * per_key + 20 * per_key);
    for nonce in 1..=per_key as u64 {
        for (i, key) in throwaway.iter().enumerate() {
            if i % 50 == 0 {
                txs.extend(funded_txs.next());
            }
            txs.push(order(key, nonce));
        }
    }
    txs.extend(funded_txs);
    txs
}

/// Submits `txs` round-robin to the validators in batches of 1,000 every 5 ms, cycling, until
/// `stop`.
async fn flood(
    context: tokio::Context,
    validators: Vec<Arc<Shared>>,
    txs: Vec<SignedTx>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> FloodFigures {
    use bulwark_node::mempool::AdmitError;
    use std::sync::atomic::Ordering;
    let mut figures = FloodFigures::default();
    for (target, batch) in txs.chunks(1_000).cycle().enumerate() {
        if stop.load(Ordering::Relaxed) || batch.is_empty() {
            break;
        }
        for result in
            validators[target % validators.len()].submit(batch.to_vec(), &mut rand::rng(), true)
        {
            figures.attempted += 1;
            match result {
                Ok(_) => figures.admitted += 1,
                Err(AdmitError::UnknownSigner) => figures.unknown_signer += 1,
                Err(AdmitError::SignerQueueFull(_) | AdmitError::AccountQueueFull(_)) => {
                    figures.over_share += 1
                }
                Err(_) => figures.other_refusals += 1,
            }
        }
        context.sleep(Duration::from_millis(5)).await;
    }
    figures
}

/// Process CPU time (user + system) so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

struct Trader {
    key: PrivateKey,
    nonce: u64,
    client_order_id: u64,
    resting: Vec<u64>,
}

/// The perpetual's orders, signed: each trader's in nonce order, with the trader's index.
fn sign_orders(seed: u64, traders: &mut [Trader], count: usize) -> Vec<(usize, SignedTx)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xbe4c);
    let perpetual = InstrumentId::new(0);
    let tick = genesis::perpetual_spec().tick_size.micros();
    let mark_ticks = genesis::INDEX_START_USDC * 1_000_000 / tick;
    (0..count)
        .map(|_| {
            let who = rng.random_range(0..traders.len());
            let trader = &mut traders[who];
            let roll = rng.random_range(0..100);
            let body = if roll < 20 && !trader.resting.is_empty() {
                let id = trader
                    .resting
                    .swap_remove(rng.random_range(0..trader.resting.len()));
                TxBody::CancelOrder {
                    instrument: perpetual,
                    order: OrderRef::Client(ClientOrderId::new(id)),
                }
            } else {
                let side = if rng.random_bool(0.5) {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let crossing = roll >= 95;
                let offset = if crossing {
                    -20
                } else {
                    rng.random_range(1..=200)
                };
                let ticks = match side {
                    Side::Buy => mark_ticks - offset,
                    Side::Sell => mark_ticks + offset,
                };
                trader.client_order_id += 1;
                if !crossing {
                    trader.resting.push(trader.client_order_id);
                }
                TxBody::PlaceOrder(OrderRequest::limit(
                    perpetual,
                    ClientOrderId::new(trader.client_order_id),
                    side,
                    Qty::from_contracts(rng.random_range(1..=10)),
                    UnitPrice::from_micros(ticks * tick),
                    if crossing {
                        TimeInForce::ImmediateOrCancel
                    } else {
                        TimeInForce::GoodTilCancelled
                    },
                ))
            };
            trader.nonce += 1;
            (who, genesis::sign(&trader.key, trader.nonce, body))
        })
        .collect()
}

/// Open orders one account may hold (`ExchangeParams::defaults().orders_open_max`).
const DEEP_BOOK_PER_ACCOUNT: usize = 500;

/// The deep book's bids, signed: `count` of them from `keys`, [`DEEP_BOOK_PER_ACCOUNT`] each,
/// in rounds of at most 100 per key (the mempool's share of one signer), each round in
/// nonce order.
fn sign_deep_book(keys: &[PrivateKey], count: usize) -> Vec<Vec<(PublicKey, u64, SignedTx)>> {
    let perpetual = InstrumentId::new(0);
    let tick = genesis::perpetual_spec().tick_size.micros();
    let mark_ticks = genesis::INDEX_START_USDC * 1_000_000 / tick;
    let mut rounds: Vec<Vec<(PublicKey, u64, SignedTx)>> = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let orders = DEEP_BOOK_PER_ACCOUNT.min(count - k * DEEP_BOOK_PER_ACCOUNT);
        for n in 0..orders {
            let depth = ((k * DEEP_BOOK_PER_ACCOUNT + n) % 2_000) as i64;
            let body = TxBody::PlaceOrder(OrderRequest::limit(
                perpetual,
                ClientOrderId::new(n as u64 + 1),
                Side::Buy,
                Qty::from_contracts(1),
                UnitPrice::from_micros((mark_ticks - 300 - depth) * tick),
                TimeInForce::GoodTilCancelled,
            ));
            let nonce = n as u64 + 1;
            let round = n / 100;
            if rounds.len() <= round {
                rounds.push(Vec::new());
            }
            rounds[round].push((key.public_key(), nonce, genesis::sign(key, nonce, body)));
        }
    }
    rounds
}

/// Waits until validator 0 has executed `bridge_nonce` deposits; false on timeout.
async fn wait_for_setup(
    context: &tokio::Context,
    shared: &Shared,
    required: &[(PublicKey, u64)],
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let done = {
            let finalized = shared.finalized_view();
            let state = &*finalized.state;
            required
                .iter()
                .all(|(key, nonce)| state.nonce_last(key).unwrap_or(0) >= *nonce)
        };
        if done {
            return true;
        }
        context.sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// What one run measured.
struct Figures {
    submitted: usize,
    refused: usize,
    finalized: usize,
    rejected: usize,
    /// Left a mempool without executing (a later nonce of the signer executed first).
    dropped: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    cpu: Duration,
    height: u64,
    /// Validator 0's finalized blocks from the first submission to the end.
    blocks_timed: u64,
    /// Validator 0's finalized blocks whose speculative state it kept, and those it executed
    /// at finalization.
    blocks_kept: u64,
    blocks_executed: u64,
    /// Of those, the blocks finalized on consensus's certificate before marshal delivered them.
    blocks_on_certificate: u64,
}

/// How often the bench submits what its schedule says is due.
const SUBMIT_TICK: Duration = Duration::from_millis(5);

/// Submits `orders` at `rate`, each trader's to one validator (trader `t` to validator
/// `t mod n`: a client keeps to one API, since nonces sent to different validators could
/// overtake one another), and follows them to finality.
async fn drive(
    context: &tokio::Context,
    validators: &[Arc<Shared>],
    orders: Vec<(usize, SignedTx)>,
    rate: u64,
) -> Figures {
    let per_tick = (rate as usize / 100).max(1);
    let mut outstanding: Vec<Vec<(TxDigest, Instant)>> = vec![Vec::new(); validators.len()];
    let mut seen_heights: Vec<u64> = vec![0; validators.len()];
    let (mut submitted, mut refused, mut finalized, mut rejected) = (0, 0, 0, 0);
    let mut dropped = 0;
    let mut latencies = Vec::with_capacity(orders.len());
    let height_start = lock(&validators[0].status).finalized_height;
    let cpu_start = cpu_time();
    let start = Instant::now();
    let mut last_final = start;
    let mut queue = orders.into_iter().peekable();
    let deadline_after_submit = Duration::from_secs(30);
    let mut submit_done: Option<Instant> = None;
    let mut heights: Vec<_> = validators.iter().map(|v| v.finalized_heights()).collect();
    let mut next_tick = start;
    loop {
        // Submit what the schedule says is due by now, on the submission tick.
        let due = if Instant::now() >= next_tick {
            next_tick = Instant::now() + SUBMIT_TICK;
            ((start.elapsed().as_micros() as u64 * rate) / 1_000_000) as usize
        } else {
            0
        };
        while submitted + refused < due && queue.peek().is_some() {
            let mut batches: Vec<Vec<SignedTx>> = vec![Vec::new(); validators.len()];
            for (who, tx) in queue.by_ref().take(per_tick.min(due - submitted - refused)) {
                batches[who % validators.len()].push(tx);
            }
            let now = Instant::now();
            for (target, batch) in batches
                .into_iter()
                .enumerate()
                .filter(|(_, b)| !b.is_empty())
            {
                for result in validators[target].submit(batch, &mut rand::rng(), true) {
                    match result {
                        Ok(digest) => {
                            outstanding[target].push((digest, now));
                            submitted += 1;
                        }
                        Err(_) => refused += 1,
                    }
                }
            }
        }
        if queue.peek().is_none() && submit_done.is_none() {
            submit_done = Some(Instant::now());
        }
        // Collect finalized outcomes: a validator's receipts are read only when its finalized
        // height moved (the bench's own polling is not a validator's cost, yet it runs in the
        // process whose CPU time is measured).
        for (i, shared) in validators.iter().enumerate() {
            let height = lock(&shared.status).finalized_height;
            if height == seen_heights[i] && submit_done.is_none() {
                continue;
            }
            seen_heights[i] = height;
            let receipts = lock(&shared.receipts);
            let now = Instant::now();
            outstanding[i].retain(|(digest, at)| match receipts.get(digest) {
                Some(TxStatus::Finalized { rejection, .. }) => {
                    latencies.push(now - *at);
                    finalized += 1;
                    rejected += usize::from(rejection.is_some());
                    last_final = now;
                    false
                }
                Some(TxStatus::Dropped { .. }) => {
                    dropped += 1;
                    false
                }
                _ => true,
            });
        }
        let pending: usize = outstanding.iter().map(Vec::len).sum();
        if let Some(done) = submit_done {
            if pending == 0 || done.elapsed() > deadline_after_submit {
                break;
            }
        }
        // Submissions keep their 5 ms schedule; receipts are read as soon as a validator
        // announces a finalized block.
        let tick = next_tick.saturating_duration_since(Instant::now());
        let announced = futures::future::select_all(
            heights
                .iter_mut()
                .map(|receiver| Box::pin(receiver.changed())),
        );
        futures::select_biased! {
            _ = announced.fuse() => {}
            _ = context.sleep(tick).fuse() => {}
        }
    }
    let cpu = cpu_time().saturating_sub(cpu_start);
    latencies.sort();
    let (height, blocks_kept, blocks_executed, blocks_on_certificate) = {
        let status = lock(&validators[0].status);
        (
            status.finalized_height,
            status.blocks_kept,
            status.blocks_executed,
            status.blocks_finalized_on_certificate,
        )
    };
    Figures {
        blocks_kept,
        blocks_executed,
        blocks_on_certificate,
        submitted,
        refused,
        finalized,
        rejected,
        dropped,
        elapsed: last_final - start,
        latencies,
        cpu,
        height,
        blocks_timed: height.saturating_sub(height_start),
    }
}

pub fn run(args: ClusterBenchArgs) -> Result<()> {
    ensure!(
        args.accounts > 0 && args.orders > 0 && args.rate > 0,
        "need accounts, orders and a rate"
    );
    ensure!(
        (1..=16).contains(&args.validators),
        "--validators must lie in 1..=16"
    );
    crate::cli::init_logging("error");
    let (dir, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("bulwark-bench-cluster-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let pinned = DevnetFile {
        seed: args.seed,
        validators: args.validators,
        genesis_time_ms: devnet::now_ms() / 1_000 * 1_000,
        p2p_port: args.p2p_port,
        api_port: args.api_port,
    };
    let settings = NodeSettings {
        block_interval: Duration::from_millis(args.block_interval_ms),
        ..NodeSettings::DEFAULT
    };
    let setups = devnet::setups(&pinned, settings)?;
    let runtime = tokio::Config::new()
        .with_storage_directory(dir.join("data"))
        .with_worker_threads(2);
    let (figures, flood_figures) = tokio::Runner::new(runtime).start(|context| async move {
        let mut validators: Vec<RunningValidator> = Vec::new();
        for (i, setup) in setups.into_iter().enumerate() {
            let child = context.child("validator").with_attribute("validator", i);
            validators.push(validator::start(child, setup, &format!("validator=\"{i}\"")).await?);
        }
        let shareds: Vec<Arc<Shared>> = validators.iter().map(|v| v.shared.clone()).collect();
        eprintln!(
            "{} validators up; listing instruments and funding {} accounts",
            shareds.len(),
            args.accounts
        );
        let operators = devnet::operators(args.seed, pinned.validators);
        let mut traders: Vec<Trader> = (0..args.accounts as u64)
            .map(|i| Trader {
                key: keys::devnet_key(args.seed, DevnetKey::Bot(1_000 + i)),
                nonce: 0,
                client_order_id: 0,
                resting: Vec::new(),
            })
            .collect();
        let flood_keys: Vec<PrivateKey> = (0..args.flood_keys as u64)
            .map(|i| keys::devnet_key(args.seed, DevnetKey::Bot(1_000_000 + i)))
            .collect();
        let deep_keys: Vec<PrivateKey> = (0..args.deep_book.div_ceil(DEEP_BOOK_PER_ACCOUNT) as u64)
            .map(|i| keys::devnet_key(args.seed, DevnetKey::Bot(2_000_000 + i)))
            .collect();
        let mut funded: Vec<_> = traders
            .iter()
            .map(|t| (t.key.public_key(), Money::from_usdc(10_000_000)))
            .collect();
        if args.flood
            && let Some(first) = flood_keys.first()
        {
            funded.push((first.public_key(), Money::from_usdc(10_000_000)));
        }
        funded.extend(
            deep_keys
                .iter()
                .map(|key| (key.public_key(), Money::from_usdc(10_000_000))),
        );
        let setup = genesis::Setup {
            listings: vec![genesis::perpetual_spec()],
            deposits: funded,
            insurance: None,
        };
        let txs = setup.txs(&operators);
        // Each action is one transaction per attesting custodian, and the mempool holds at most
        // `per_signer_max` of one signer's transactions at once: 200 actions at a time.
        let per_action = txs.len() / (setup.listings.len() + setup.deposits.len()).max(1);
        let mut actions = 0;
        for chunk in txs.chunks(200 * per_action.max(1)) {
            let refused: Vec<String> = shareds[0]
                .submit(chunk.to_vec(), &mut rand::rng(), true)
                .into_iter()
                .filter_map(|result| result.err().map(|error| error.to_string()))
                .collect();
            ensure!(
                refused.is_empty(),
                "{} setup transactions refused, the first: {}",
                refused.len(),
                refused[0]
            );
            actions += (chunk.len() / per_action.max(1)) as u64;
            let required: Vec<(PublicKey, u64)> = setup
                .last_nonces(&operators)
                .into_iter()
                .map(|(key, _)| (key, actions))
                .collect();
            let setup_ok =
                wait_for_setup(&context, &shareds[0], &required, Duration::from_secs(60)).await;
            ensure!(
                setup_ok,
                "the cluster did not execute the setup within 60 s: {}",
                devnet::progress(&shareds)
            );
        }
        if args.deep_book > 0 {
            eprintln!(
                "resting {} bids from {} accounts (--deep-book)",
                args.deep_book,
                deep_keys.len()
            );
            for round in sign_deep_book(&deep_keys, args.deep_book) {
                let required: Vec<(PublicKey, u64)> = round
                    .iter()
                    .map(|(key, nonce, _)| (key.clone(), *nonce))
                    .collect();
                let txs: Vec<SignedTx> = round.into_iter().map(|(_, _, tx)| tx).collect();
                for chunk in txs.chunks(10_000) {
                    let refused = shareds[0]
                        .submit(chunk.to_vec(), &mut rand::rng(), true)
                        .into_iter()
                        .filter(Result::is_err)
                        .count();
                    ensure!(refused == 0, "{refused} deep-book orders refused");
                }
                let done =
                    wait_for_setup(&context, &shareds[0], &required, Duration::from_secs(120))
                        .await;
                ensure!(
                    done,
                    "the cluster did not rest the deep book within 120 s: {}",
                    devnet::progress(&shareds)
                );
            }
            let resting = {
                let finalized = shareds[0].finalized_view();
                finalized
                    .state
                    .instrument(InstrumentId::new(0))
                    .map_or(0, |perpetual| perpetual.book.len())
            };
            ensure!(
                resting >= args.deep_book,
                "only {resting} orders rest in the perpetual after the deep book's setup"
            );
            eprintln!("the perpetual's book holds {resting} orders");
        }
        // Let every validator catch up with the setup, so the first orders meet funded accounts.
        context.sleep(Duration::from_secs(1)).await;
        eprintln!("signing {} orders", args.orders);
        let orders = sign_orders(args.seed, &mut traders, args.orders);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flooder = if args.flood {
            eprintln!(
                "signing the flooder's {} transactions from {} keys",
                (args.flood_keys + 19) * args.flood_per_key,
                args.flood_keys
            );
            let txs = sign_flood(&flood_keys, args.flood_per_key);
            let (validators, stop) = (shareds.clone(), stop.clone());
            Some(
                context
                    .child("flooder")
                    .spawn(move |context| flood(context, validators, txs, stop)),
            )
        } else {
            None
        };
        eprintln!("submitting at {} orders/s", args.rate);
        let figures = drive(&context, &shareds, orders, args.rate).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let flood_figures = match flooder {
            Some(handle) => Some(
                handle
                    .await
                    .map_err(|e| anyhow::anyhow!("flooder: {e:?}"))?,
            ),
            None => None,
        };
        devnet::stop(context).await;
        Ok::<_, anyhow::Error>((figures, flood_figures))
    })?;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Some(flood) = &flood_figures {
        println!(
            "flooder ({} keys, 1 funded): {} submitted, {} admitted, {} refused as unknown signers before any signature check, {} over its account's share, {} otherwise refused",
            args.flood_keys,
            flood.attempted,
            flood.admitted,
            flood.unknown_signer,
            flood.over_share,
            flood.other_refusals
        );
    }
    report(&args, &figures);
    Ok(())
}

fn report(args: &ClusterBenchArgs, f: &Figures) {
    let per_second = f.finalized as f64 / f.elapsed.as_secs_f64().max(1e-9);
    let cpu_per_order =
        f.cpu.as_secs_f64() * 1e6 / (f.finalized.max(1) as f64) / args.validators as f64;
    println!(
        "validator 0's finalized blocks: {} kept from speculation, {} executed at finalization; {} finalized on their certificate before marshal delivered them",
        f.blocks_kept, f.blocks_executed, f.blocks_on_certificate
    );
    println!(
        "orders: {} submitted, {} refused by mempools, {} finalized ({} rejected by the exchange), {} dropped, in {:.2} s; height {}, {} blocks while timed ({:.0} orders a block)",
        f.submitted,
        f.refused,
        f.finalized,
        f.rejected,
        f.dropped,
        f.elapsed.as_secs_f64(),
        f.height,
        f.blocks_timed,
        f.finalized as f64 / f.blocks_timed.max(1) as f64
    );
    println!(
        "target rate: {} orders/s over {} validators (block interval {} ms)",
        args.rate, args.validators, args.block_interval_ms
    );
    println!("finalized: {per_second:.0} orders/s");
    println!(
        "latency submission to finalized outcome: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&f.latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&f.latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "cpu: {cpu_per_order:.1} us per order per validator ({:.2} s process CPU)",
        f.cpu.as_secs_f64()
    );
}
