//! `apply_block` with margin checks on every order, signatures checked beforehand: 8 blocks of
//! 4,096 transactions from 1,000 funded accounts (the `bulwark bench apply` stream).
//!
//! Group `venue`: an options venue's state copied for every block, as a validator speculates
//! (each block applied to a copy of its parent's state, the parent then dropped). The perpetual
//! and 200 options (50 strikes, two expiries, calls and puts) with books built by 256 blocks
//! of 64 transactions; timed: 8 more such blocks, each on a copy. A block of 64 trades in at
//! most 64 of the 201 books.
//!
//! Group `open_orders`: 20 accounts that keep hundreds of orders open each, as market makers
//! do, each block applied to a copy (what a copy of an account holding many orders costs).

use bulwark::workload::exchange::{self, ExchangeWorkloadConfig};
use bulwark_exchange::Exchange;
use bulwark_types::CheckedBlock;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn apply_block(c: &mut Criterion) {
    let config = ExchangeWorkloadConfig {
        seed: 1,
        accounts: 1_000,
        txs_per_block: 4_096,
        blocks: 8,
        option_strikes: 2,
    };
    let workload = exchange::generate(config);
    let prepared = exchange::prepared_exchange(&workload);
    let mut group = c.benchmark_group("exchange");
    group.throughput(Throughput::Elements(
        (config.txs_per_block * config.blocks) as u64,
    ));
    group.sample_size(20);
    group.bench_function("apply_block_4096_txs_margin_checked", |b| {
        b.iter_batched_ref(
            || prepared.clone(),
            |exchange| exchange::apply_trading(exchange, &workload.trading),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Applies each block to a copy of its parent's state, the parent then dropped, as a validator
/// speculates; returns the last state.
fn on_copies(mut state: Exchange, blocks: &[CheckedBlock]) -> Exchange {
    for block in blocks {
        let mut next = state.clone();
        next.apply_block(block).expect("trading blocks apply");
        state = next;
    }
    state
}

/// Blocks before timing in the groups that build their books first.
const WARM_UP: usize = 256;

/// Times 8 blocks of 64 transactions of a workload of `accounts` and `option_strikes`, each
/// block on a copy of its parent's state, after [`WARM_UP`] such blocks applied untimed.
fn copies_after_warm_up(
    c: &mut Criterion,
    group: &str,
    name: &str,
    accounts: usize,
    option_strikes: usize,
) {
    let config = ExchangeWorkloadConfig {
        seed: 1,
        accounts,
        txs_per_block: 64,
        blocks: WARM_UP + 8,
        option_strikes,
    };
    let workload = exchange::generate(config);
    let (warm_up, timed) = workload.trading.split_at(WARM_UP);
    let mut built = exchange::prepared_exchange(&workload);
    exchange::apply_trading(&mut built, warm_up);
    let open: usize = built.accounts().map(|a| a.orders_open()).sum();
    eprintln!("{group}: {open} open orders over {accounts} traders before timing");
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(timed.len() as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || built.clone(),
            |state| on_copies(state, timed),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn venue(c: &mut Criterion) {
    copies_after_warm_up(
        c,
        "venue",
        "copy_and_apply_8_blocks_of_64_txs_201_instruments",
        1_000,
        50,
    );
}

/// Accounts that keep many orders open, as market makers do: 20 accounts trade 256 blocks of
/// 64 transactions before timing (most of their limit orders rest), then 8 more such blocks,
/// each on a copy. Nearly every transaction changes its account, so each block copies the
/// accounts it touches with every open order they hold.
fn open_orders(c: &mut Criterion) {
    copies_after_warm_up(
        c,
        "open_orders",
        "copy_and_apply_8_blocks_of_64_txs_20_accounts",
        20,
        2,
    );
}

fn accounts(c: &mut Criterion) {
    let mut group = c.benchmark_group("accounts");
    group.sample_size(10);
    for accounts in [1_000usize, 100_000] {
        let config = ExchangeWorkloadConfig {
            seed: 1,
            accounts,
            txs_per_block: 64,
            blocks: 8,
            option_strikes: 2,
        };
        let workload = exchange::generate(config);
        let built = exchange::prepared_exchange(&workload);
        group.throughput(Throughput::Elements(
            (config.txs_per_block * config.blocks) as u64,
        ));
        group.bench_function(
            format!("{accounts}/copy_and_apply_8_blocks_of_64_txs"),
            |b| {
                b.iter_batched(
                    || built.clone(),
                    |state| on_copies(state, &workload.trading),
                    BatchSize::LargeInput,
                )
            },
        );
    }
    group.finish();
}

criterion_group!(benches, apply_block, venue, open_orders, accounts);
criterion_main!(benches);
