//! Cost of one validator's mempool through one full block: 4,096 orders from 1,024 accounts
//! (four each, nonces 1 to 4, arriving in turns as gossip brings them) are admitted, a block
//! is selected from them, and the block's transactions are pruned as executed.
//!
//! - `admit`: admission of all 4,096, signature verdicts and digests given (as
//!   `Shared::submit` computes them in a batch before taking the pool's lock).
//! - `select`: choosing a block (`BlockLimits::DEFAULT`) from those 4,096 pending.
//! - `prune`: dropping the block's transactions once executed.
//! - `cycle`: the three in a row, from an empty pool (the block's digests given, as the
//!   executor computes them once per finalized block).
//!
//! Group `mempool_full_pool`: the pool at its bound, 100,000 transactions of 1,000 accounts
//! (100 each, as a flood of valid orders leaves it), and what a block costs then:
//! - `evict_old`: the per-block sweep of transactions past their age, none due.
//! - `select`: choosing a block.
//!
//! Run: `cargo bench -p bulwark-node --bench mempool`. Keys and orders come from fixed seeds.

use std::hint::black_box;

use bulwark_node::mempool::{Mempool, MempoolLimits, Payer, TxDigest, tx_digest};
use bulwark_types::{
    AccountId, BlockLimits, ClientOrderId, InstrumentId, OrderRequest, PrivateKey, Qty, Side,
    SignedTx, TimeInForce, TxBody, UnitPrice,
};
use commonware_cryptography::Signer;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const ACCOUNTS: u64 = 1_024;
const PER_ACCOUNT: u64 = 4;

struct Arrival {
    tx: SignedTx,
    digest: TxDigest,
    payer: Payer,
}

/// `per_account` orders of each of `accounts` accounts in arrival order: every account's
/// first, then every account's second, and so on.
fn arrivals(accounts: u64, per_account: u64) -> Vec<Arrival> {
    let keys: Vec<PrivateKey> = (0..accounts).map(PrivateKey::from_seed).collect();
    (1..=per_account)
        .flat_map(|nonce| {
            keys.iter().enumerate().map(move |(i, key)| {
                let order = OrderRequest::limit(
                    InstrumentId::new(1),
                    ClientOrderId::new(nonce),
                    if i % 2 == 0 { Side::Buy } else { Side::Sell },
                    Qty::from_contracts(1),
                    UnitPrice::from_usdc(100 + (i % 7) as i64),
                    TimeInForce::GoodTilCancelled,
                );
                let tx = TxBody::PlaceOrder(order).signed(key, nonce);
                let digest = tx_digest(&tx);
                let payer = Payer::Account(AccountId::new((i as u32).into()));
                Arrival { tx, digest, payer }
            })
        })
        .collect()
}

fn admit(pool: &mut Mempool, arrivals: Vec<Arrival>) {
    for arrival in arrivals {
        pool.admit(arrival.tx, arrival.digest, true, None, 1, arrival.payer)
            .expect("admitted");
    }
}

fn select(pool: &Mempool) -> Vec<SignedTx> {
    pool.select(
        &BlockLimits::DEFAULT,
        BlockLimits::DEFAULT.block_bytes_max(),
        |_| None,
        |_, payer| Some(payer),
        |_, _| None,
    )
}

fn copies(arrivals: &[Arrival]) -> Vec<Arrival> {
    arrivals
        .iter()
        .map(|a| Arrival {
            tx: a.tx.clone(),
            digest: a.digest,
            payer: a.payer,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let arrivals = arrivals(ACCOUNTS, PER_ACCOUNT);
    let full = {
        let mut pool = Mempool::new(MempoolLimits::DEFAULT);
        admit(&mut pool, copies(&arrivals));
        pool
    };
    let block = select(&full);
    assert_eq!(block.len(), arrivals.len(), "the whole pool fits one block");
    let digests: Vec<TxDigest> = block.iter().map(tx_digest).collect();

    let mut group = c.benchmark_group("mempool_4096_orders_1024_accounts");
    group.throughput(Throughput::Elements(arrivals.len() as u64));
    group.sample_size(20);
    group.bench_function("admit", |b| {
        b.iter_batched(
            || (Mempool::new(MempoolLimits::DEFAULT), copies(&arrivals)),
            |(mut pool, arrivals)| {
                admit(&mut pool, arrivals);
                pool
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("select", |b| b.iter(|| black_box(select(&full))));
    group.bench_function("prune", |b| {
        b.iter_batched(
            || full.clone(),
            |mut pool| {
                pool.prune_executed(&block, &digests);
                pool
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("cycle", |b| {
        b.iter_batched(
            || (Mempool::new(MempoolLimits::DEFAULT), copies(&arrivals)),
            |(mut pool, arrivals)| {
                admit(&mut pool, arrivals);
                let selected = select(&pool);
                debug_assert_eq!(selected, block, "the same pool selects the same block");
                let stale = pool.prune_executed(&selected, &digests);
                assert!(
                    stale.is_empty() && pool.is_empty(),
                    "the block emptied the pool"
                );
                pool
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn bench_full(c: &mut Criterion) {
    let mut pool = Mempool::new(MempoolLimits::DEFAULT);
    admit(&mut pool, arrivals(1_000, 100));
    assert_eq!(
        pool.len(),
        MempoolLimits::DEFAULT.txs_max,
        "the pool is full"
    );
    let mut group = c.benchmark_group("mempool_full_pool");
    group.sample_size(20);
    group.bench_function("evict_old", |b| {
        b.iter_batched(
            || pool.clone(),
            |mut pool| {
                let evicted = pool.evict_old(black_box(100));
                assert!(evicted.is_empty(), "nothing is due");
                pool
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("select", |b| b.iter(|| black_box(select(&pool))));
    group.finish();
}

criterion_group!(benches, bench, bench_full);
criterion_main!(benches);
