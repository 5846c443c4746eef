//! Cost of judging one full block's signatures: 4,096 transactions (one signer each, as many
//! traders' orders) and 1,024 validators' price observations, the most `BlockLimits::DEFAULT`
//! admits.
//!
//! - `cold`: nothing known, every signature batch-verified (a block full of transactions this
//!   validator never saw).
//! - `looked_up`: every signature verified before (on admission, on arrival); each
//!   transaction's and observation's verdict is found by the SHA-256 of its signed encoding in
//!   a set, as a validator does for another leader's block.
//! - `carried`: the verdicts travel with the block (a validator's own proposal, or a block it
//!   verified and now finalizes): nothing is hashed or verified.
//!
//! Run: `cargo bench -p bulwark-types --bench signatures`. Keys and orders come from fixed
//! seeds, so every run measures the same work.

use std::collections::HashSet;
use std::hint::black_box;

use bulwark_types::tx::verify_batch;
use bulwark_types::{
    AssetCode, Block, BlockLimits, BlockTime, ClientOrderId, Height, InstrumentId, KeyCache,
    Observation, OrderRequest, PriceInputs, PrivateKey, Qty, Side, SignedObservation, SignedTx,
    TimeInForce, TxBody, UnitPrice,
};
use commonware_codec::{Decode, Encode};
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Hasher, Sha256, Signer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const TXS: u64 = 4_096;
const OBSERVATIONS: u64 = 1_024;

fn block() -> Block {
    let txs: Vec<SignedTx> = (0..TXS)
        .map(|i| {
            let key = PrivateKey::from_seed(i);
            let order = OrderRequest::limit(
                InstrumentId::new(1),
                ClientOrderId::new(i),
                if i % 2 == 0 { Side::Buy } else { Side::Sell },
                Qty::from_contracts(1),
                UnitPrice::from_usdc(100 + (i % 7) as i64),
                TimeInForce::GoodTilCancelled,
            );
            TxBody::PlaceOrder(order).signed(&key, 1)
        })
        .collect();
    let assets = ["BTC", "ETH", "SOL", "XRP"].map(|a| AssetCode::parse(a).expect("asset"));
    let observations: Vec<SignedObservation> = (0..OBSERVATIONS)
        .map(|i| {
            let key = PrivateKey::from_seed(1_000_000 + i / 4);
            Observation {
                validator: key.public_key(),
                asset: assets[(i % 4) as usize],
                price: UnitPrice::from_usdc(65_000 + i as i64),
                observed_at_ms: 1_700_000_000_000,
                sources: 3,
            }
            .sign(&key)
        })
        .collect();
    Block {
        height: Height::new(1),
        time: BlockTime::from_millis(1_700_000_000_100),
        prices: PriceInputs::default(),
        observations,
        txs,
    }
}

fn digest(encoded: &[u8]) -> Digest {
    Sha256::hash(&[encoded])
}

fn signatures(c: &mut Criterion) {
    let block = block();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let known: HashSet<Digest> = block
        .txs
        .iter()
        .map(|t| digest(&t.encode()))
        .chain(block.observations.iter().map(|o| digest(&o.encode())))
        .collect();
    assert!(
        block
            .clone()
            .check_signatures(&mut rng)
            .all_signatures_valid()
    );

    let mut group = c.benchmark_group("block_4096_txs_1024_observations");
    group.throughput(Throughput::Elements(TXS));
    group.sample_size(10);
    group.bench_function("cold", |b| {
        b.iter(|| black_box(block.clone().check_signatures(&mut rng)))
    });
    group.bench_function("looked_up", |b| {
        b.iter(|| {
            let txs: Vec<bool> = block
                .txs
                .iter()
                .map(|t| known.contains(&digest(&t.encode())))
                .collect();
            let observations: Vec<bool> = block
                .observations
                .iter()
                .map(|o| known.contains(&digest(&o.encode())))
                .collect();
            black_box(
                block
                    .clone()
                    .check_signatures_cached(&mut rng, &txs, &observations),
            )
        })
    });
    let all_txs = vec![true; block.txs.len()];
    let all_observations = vec![true; block.observations.len()];
    group.bench_function("carried", |b| {
        b.iter(|| {
            black_box(
                block
                    .clone()
                    .check_signatures_cached(&mut rng, &all_txs, &all_observations),
            )
        })
    });
    group.finish();
}

/// Cost of decoding the same block from its bytes (as a validator does for a block from the
/// broadcast or its archives): `plain` decompresses every signer's and observer's key,
/// `keyed` finds them in a warm [`KeyCache`] (the traders' keys were decoded before, from
/// their gossiped transactions).
fn decoding(c: &mut Criterion) {
    let block = block();
    let bytes = block.encode();
    let limits = BlockLimits::DEFAULT;
    let keys = KeyCache::new(1 << 15);
    let warm = Block::read_keyed(&mut bytes.clone(), &limits, &keys).expect("decodes");
    assert_eq!(warm, block);
    let mut group = c.benchmark_group("decode_block_4096_txs_1024_observations");
    group.throughput(Throughput::Elements(TXS));
    group.sample_size(10);
    group.bench_function("plain", |b| {
        b.iter(|| black_box(Block::decode_cfg(bytes.clone(), &limits).expect("decodes")))
    });
    group.bench_function("keyed", |b| {
        b.iter(|| {
            black_box(Block::read_keyed(&mut bytes.clone(), &limits, &keys).expect("decodes"))
        })
    });
    group.finish();
}

/// Cost of one signature in a batch of `n` (as admission verifies what one client request or
/// one gossip message brings): the batch equation's multiscalar multiplication is cheaper per
/// signature the more signatures share it.
fn batch_sizes(c: &mut Criterion) {
    let block = block();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let mut group = c.benchmark_group("verify_batch_per_size");
    group.sample_size(10);
    for n in [1usize, 16, 32, 64, 128, 256, 512, 1_024] {
        let txs = &block.txs[..n];
        assert!(verify_batch(&mut rng, txs).iter().all(|ok| *ok));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("{n}"), |b| {
            b.iter(|| black_box(verify_batch(&mut rng, txs)))
        });
    }
    group.finish();
    // One bad signature among 256: the failed batch is halved until it is found.
    let mut txs = block.txs[..256].to_vec();
    txs[100].signature = txs[101].signature.clone();
    assert_eq!(
        verify_batch(&mut rng, &txs)
            .iter()
            .filter(|ok| !**ok)
            .count(),
        1
    );
    let mut group = c.benchmark_group("verify_batch_one_bad");
    group.sample_size(10);
    group.throughput(Throughput::Elements(256));
    group.bench_function("256", |b| {
        b.iter(|| black_box(verify_batch(&mut rng, &txs)))
    });
    group.finish();
    // A staged batch of 128 (a validator's gossip admission) clean, with one forgery, and all
    // forged: what a peer gossiping forgeries costs a validator that keeps verifying them
    // (validators mute such a peer after its first, `bulwark_node::gossip`).
    let mut group = c.benchmark_group("verify_batch_128_forged");
    group.sample_size(10);
    group.throughput(Throughput::Elements(128));
    for forged in [0usize, 1, 128] {
        let mut txs = block.txs[..128].to_vec();
        for (tx, other) in txs.iter_mut().zip(&block.txs[128..]).take(forged) {
            tx.signature = other.signature.clone();
        }
        assert_eq!(
            verify_batch(&mut rng, &txs)
                .iter()
                .filter(|ok| !**ok)
                .count(),
            forged
        );
        group.bench_function(format!("{forged}"), |b| {
            b.iter(|| black_box(verify_batch(&mut rng, &txs)))
        });
    }
    group.finish();
}

criterion_group!(benches, signatures, decoding, batch_sizes);
criterion_main!(benches);
