//! Cost of admitting 256 orders of 256 traders (one each, as a Deribit client sends them
//! through the gateway: one order per request), on a node that has seen none of them:
//!
//! - `one_request_each`: 256 admissions of one transaction (what every `POST /tx` did before
//!   the API's admission queue: a single signature verification each).
//! - `queued_together`: one admission of all 256 (what the admission queue does with requests
//!   that arrive while the previous admission runs: one batch verification).
//!
//! Both include the whole of `Shared::submit`: payer lookup, digest, verification, mempool.
//! Run: `cargo bench -p bulwark-node --bench admission`. Keys come from fixed seeds.

use std::sync::Arc;

use bulwark_exchange::{Exchange, ExchangeParams, Genesis};
use bulwark_node::chain::Chain;
use bulwark_node::mempool::{Mempool, MempoolLimits};
use bulwark_node::shared::Shared;
use bulwark_types::{Block, BlockTime, Height, Money, PriceInputs, PrivateKey, SignedTx, TxBody};
use commonware_cryptography::{Hasher, Sha256, Signer};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const TRADERS: u64 = 256;

fn traders() -> Vec<PrivateKey> {
    (0..TRADERS)
        .map(|i| PrivateKey::from_seed(100 + i))
        .collect()
}

/// A node whose state funds every trader, with an empty pool and no verdicts cached.
fn node(traders: &[PrivateKey]) -> Arc<Shared> {
    let admin = PrivateKey::from_seed(1);
    let bridge = PrivateKey::from_seed(2);
    let genesis = Genesis {
        admin: admin.public_key(),
        bridge: bridge.public_key(),
        params: ExchangeParams::defaults(),
        time: BlockTime::from_millis(1_000),
        oracle: None,
        custody: None,
    };
    let mut exchange = Exchange::new(&genesis).expect("a valid genesis");
    let txs: Vec<SignedTx> = traders
        .iter()
        .enumerate()
        .map(|(i, trader)| {
            TxBody::Deposit {
                owner: trader.public_key(),
                amount: Money::from_usdc(1_000),
            }
            .signed(&bridge, i as u64 + 1)
        })
        .collect();
    let block = Block {
        height: Height::new(1),
        time: BlockTime::from_millis(2_000),
        prices: PriceInputs::default(),
        observations: Vec::new(),
        txs,
    };
    let checked = block.check_signatures(&mut ChaCha8Rng::seed_from_u64(0));
    exchange.apply_block(&checked).expect("the deposits apply");
    let chain = Chain::new(exchange, Sha256::hash(&[b"block one"]));
    Arc::new(Shared::new(
        chain,
        Mempool::new(MempoolLimits::DEFAULT),
        4_096,
        4_096,
    ))
}

fn bench(c: &mut Criterion) {
    let traders = traders();
    let orders: Vec<SignedTx> = traders
        .iter()
        .map(|trader| TxBody::CancelAll { instrument: None }.signed(trader, 1))
        .collect();
    let mut group = c.benchmark_group("admission_256_single_orders");
    group.throughput(Throughput::Elements(TRADERS));
    group.sample_size(20);
    group.bench_function("one_request_each", |b| {
        b.iter_batched(
            || (node(&traders), orders.clone()),
            |(shared, orders)| {
                let mut rng = ChaCha8Rng::seed_from_u64(1);
                for order in orders {
                    let result = shared.submit(vec![order], &mut rng, true);
                    assert!(result[0].is_ok(), "admitted");
                }
                shared
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("queued_together", |b| {
        b.iter_batched(
            || (node(&traders), orders.clone()),
            |(shared, orders)| {
                let mut rng = ChaCha8Rng::seed_from_u64(1);
                let results = shared.submit(orders, &mut rng, true);
                assert!(results.iter().all(Result::is_ok), "admitted");
                shared
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
