//! `apply_block` with margin checks on every order, signatures checked beforehand: 8 blocks of
//! 4,096 transactions from 1,000 funded accounts (the `bulwark bench apply` stream).

use bulwark::workload::exchange::{self, ExchangeWorkloadConfig};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn apply_block(c: &mut Criterion) {
    let config = ExchangeWorkloadConfig {
        seed: 1,
        accounts: 1_000,
        txs_per_block: 4_096,
        blocks: 8,
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

criterion_group!(benches, apply_block);
criterion_main!(benches);
