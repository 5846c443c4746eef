//! Cost of the oracle's per-block work for one asset with 100 validators (f = 33): aggregating
//! 100 observations (given verdicts), batch-verifying their signatures, and the whole
//! `OracleState::apply_block` step with the guard and the per-validator record.
//!
//! Run: `cargo bench -p bulwark-oracle`. Keys and prices come from fixed seeds, so every run
//! measures the same work.

use std::hint::black_box;

use bulwark_oracle::{
    AggregateContext, Observation, OracleConfig, OracleState, SignedObservation, ValidatorSet,
    aggregate, verify_batch,
};
use bulwark_types::{AssetCode, BlockTime, PrivateKey, UnitPrice};
use commonware_cryptography::Signer;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const VALIDATORS: u64 = 100;
const NOW_MS: u64 = 1_700_000_000_000;

fn block() -> (ValidatorSet, Vec<SignedObservation>) {
    let keys: Vec<PrivateKey> = (0..VALIDATORS).map(PrivateKey::from_seed).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| k.public_key()).collect()).unwrap();
    let asset = AssetCode::parse("BTC").unwrap();
    let observations = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            // Spread of +-0.5% around 65,000 USDC, with a few liars far off.
            let spread = (i as i64 * 7_919) % 650_000_000 - 325_000_000;
            let price = if i % 17 == 0 {
                1
            } else {
                65_000_000_000 + spread
            };
            Observation {
                validator: key.public_key(),
                asset,
                price: UnitPrice::from_micros(price),
                observed_at_ms: NOW_MS - (i as u64 % 3_000),
                sources: 3,
            }
            .sign(key)
        })
        .collect();
    (set, observations)
}

fn bench(c: &mut Criterion) {
    let (set, observations) = block();
    let config = OracleConfig::GENESIS;
    let verdicts = vec![true; observations.len()];
    let asset = AssetCode::parse("BTC").unwrap();
    let mut group = c.benchmark_group("oracle");
    group.throughput(Throughput::Elements(observations.len() as u64));
    group.bench_function("aggregate_100", |b| {
        let context = AggregateContext {
            config: &config,
            validators: &set,
            block_time: BlockTime::from_millis(NOW_MS),
        };
        b.iter(|| aggregate(context, asset, black_box(&observations), &verdicts));
    });
    group.bench_function("apply_block_100", |b| {
        let mut state = OracleState::new();
        state.track(&config, asset).unwrap();
        let mut block_ms = NOW_MS;
        b.iter(|| {
            block_ms += 1;
            state.apply_block(
                &config,
                &set,
                BlockTime::from_millis(block_ms.min(NOW_MS + 1_000)),
                black_box(&observations),
                &verdicts,
            )
        });
    });
    group.sample_size(20);
    group.bench_function("verify_batch_100", |b| {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        b.iter(|| verify_batch(&mut rng, black_box(&observations)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
