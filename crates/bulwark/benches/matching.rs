//! Matching alone on one book of 10,000 resting orders: the `bulwark bench matching` stream
//! (70% new passive orders, 25% cancels, 5% crossing), timed per operation.
//!
//! `book_copy`: what a block pays for a book it changes. A validator copies the exchange's
//! state (every book in it) for each block it speculates on; the copy and the block's changes
//! to it are timed together, and the copy is dropped inside the timing as the chain drops it.
//! `deep_N/touch` is the attack of `bulwark-book`'s `tests/deep_book.rs`: N orders at N prices,
//! one cancel and one order a block. `mixed_10000/block_500` is a busy block: 500 operations of
//! the stream above on a copy of its 10,000-order book.

use bulwark::workload::matching;
use bulwark_book::{Book, BookLimits, MatchSink, NewOrder};
use bulwark_types::{
    AccountId, ClientOrderId, OrderId, Price, Qty, SelfTradePrevention, Side, TimeInForce,
};
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

fn bid(id: u64, ticks: i64) -> NewOrder {
    NewOrder {
        order_id: OrderId::new(id),
        account: AccountId::new(id % 200),
        client_order_id: ClientOrderId::new(id),
        side: Side::Buy,
        price: Price::from_ticks(ticks),
        qty: Qty::from_contracts(1),
        time_in_force: TimeInForce::GoodTilCancelled,
        post_only: false,
        reduce_only: false,
        self_trade: SelfTradePrevention::CancelTaker,
    }
}

fn book_copy(c: &mut Criterion) {
    let mut group = c.benchmark_group("book_copy");
    group.sample_size(20);
    for depth in [1_000u64, 100_000] {
        let mut book = Book::new(BookLimits::DEFAULT);
        let mut sink = MatchSink::default();
        for id in 1..=depth {
            book.place(&bid(id, 1_000_000 - id as i64), &mut sink)
                .expect("rests");
        }
        let mut next = 0u64;
        group.bench_function(format!("deep_{depth}/touch"), |b| {
            b.iter(|| {
                next += 1;
                let mut copy = book.clone();
                copy.cancel(OrderId::new(1 + next % depth)).expect("rests");
                copy.place(&bid(depth + next, 1), &mut sink)
                    .expect("placed");
                sink.fills.clear();
                drop(copy);
            })
        });
    }
    let ops = matching::generate(1, 500);
    let book = matching::setup_book(&ops);
    let block = &ops[matching::SETUP_ORDERS..];
    group.bench_function("mixed_10000/block_500", |b| {
        b.iter(|| {
            let mut copy = book.clone();
            matching::replay(&mut copy, block);
            drop(copy);
        })
    });
    group.finish();
}

criterion_group!(benches, matching, book_copy);
criterion_main!(benches);
