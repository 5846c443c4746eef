//! Matching alone on one book of 10,000 resting orders: the `bulwark bench matching` stream
//! (70% new passive orders, 25% cancels, 5% crossing), timed per operation.

use bulwark::workload::matching;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const TIMED_OPS: usize = 200_000;

fn matching(c: &mut Criterion) {
    let ops = matching::generate(1, TIMED_OPS);
    let book = matching::setup_book(&ops);
    let timed = &ops[matching::SETUP_ORDERS..];
    let mut group = c.benchmark_group("book");
    group.throughput(Throughput::Elements(timed.len() as u64));
    group.sample_size(20);
    group.bench_function("mixed_70_new_25_cancel_5_cross", |b| {
        b.iter_batched_ref(
            || book.clone(),
            |book| matching::replay(book, timed),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
