//! End to end on the library: four validators watch one seeded synthetic market that falls
//! 30% in 5 s and recovers over 60 s; three are honest (each with its own 2 bps noise), one
//! reports ten times the price. Every block, each validator signs what it sees and the leader
//! carries all four observations into `OracleState::apply_block`.
//!
//! Shows: the oracle never goes stale; the liar is flagged an outlier in every block and the
//! honest validators never are; the guarded index never moves more than the guard allows in a
//! block, lags the crash, and is back on the market price after the recovery.

use bulwark_oracle::{
    Crash, GuardConfig, GuardVerdict, MarketConfig, ObserverNoise, OracleConfig, OracleMode,
    OracleState, PriceSource, SignedObservation, SourceQuorum, SyntheticSource, ValidatorSet,
    observe_sources, verify_batch,
};
use bulwark_types::{AssetCode, BlockTime, PrivateKey, UnitPrice};
use commonware_cryptography::Signer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const T0: u64 = 1_700_000_000_000;
const BLOCK_MS: u64 = 1_000;
const BLOCKS: u64 = 180;

#[test]
fn crash_is_followed_at_a_bounded_rate_and_the_liar_is_flagged() {
    let btc = AssetCode::parse("BTC").unwrap();
    let mut market = MarketConfig::crypto(btc, UnitPrice::from_usdc(65_000), T0);
    market.crashes.push(Crash {
        start_ms: T0 + 60_000,
        fall_ms: 5_000,
        hold_ms: 0,
        recover_ms: 60_000,
        depth_bps: 3_000,
    });
    let keys: Vec<PrivateKey> = (0..4).map(|s| PrivateKey::from_seed(500 + s)).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| k.public_key()).collect()).unwrap();
    let liar = keys[3].public_key();
    let mut views: Vec<SyntheticSource> = (0..4u32)
        .map(|observer| {
            SyntheticSource::new(2024, vec![market.clone()])
                .unwrap()
                .with_noise(ObserverNoise {
                    observer,
                    noise_bps: 2,
                })
                .unwrap()
        })
        .collect();
    let mut truth = SyntheticSource::new(2024, vec![market]).unwrap();
    let config = OracleConfig::GENESIS;
    config.check_for(&set).unwrap();
    let mut state = OracleState::new();
    state.track(&config, btc).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);

    let mut previous_index: Option<UnitPrice> = None;
    let mut deepest_gap_ppm = 0i128;
    for block in 1..=BLOCKS {
        let block_ms = T0 + block * BLOCK_MS;
        let seen_ms = block_ms - 200;
        let observations: Vec<SignedObservation> = keys
            .iter()
            .zip(&mut views)
            .map(|(key, view)| {
                let mut observation = observe_sources(
                    &key.public_key(),
                    btc,
                    seen_ms,
                    &mut [view],
                    SourceQuorum::DEFAULT,
                )
                .unwrap();
                if key.public_key() == liar {
                    observation.price =
                        UnitPrice::from_micros(observation.price.micros().saturating_mul(10));
                }
                observation.sign(key)
            })
            .collect();
        let verdicts = verify_batch(&mut rng, &observations);
        let outcome = state.apply_block(
            &config,
            &set,
            BlockTime::from_millis(block_ms),
            &observations,
            &verdicts,
        );
        let asset = &outcome.assets[0];
        assert_eq!(asset.mode, OracleMode::Fresh, "block {block}");
        let liar_index = set.index_of(&liar).unwrap() as u32;
        for accepted in &asset.aggregate.accepted {
            assert_eq!(accepted.outlier, accepted.validator_index == liar_index);
        }
        let step = asset.guard.unwrap();
        if let Some(previous) = previous_index {
            let moved = (step.index.micros() - previous.micros()).unsigned_abs() as u128;
            let allowed = previous.micros() as u128
                * u128::from(GuardConfig::GENESIS.move_ppm_per_block + 5_000)
                / 1_000_000;
            assert!(
                moved <= allowed.max(1),
                "block {block}: moved {moved} > {allowed}"
            );
        }
        previous_index = Some(step.index);
        let market_price = truth.observe(btc, seen_ms).unwrap().price.micros();
        let gap_ppm =
            i128::from(step.index.micros() - market_price) * 1_000_000 / i128::from(market_price);
        deepest_gap_ppm = deepest_gap_ppm.max(gap_ppm);
        if block == 66 {
            // At the bottom the market is 30% down; the guard has followed only part of it.
            assert!(matches!(step.verdict, GuardVerdict::Clamped { .. }));
            assert!(gap_ppm > 100_000, "index lags the crash by {gap_ppm} ppm");
        }
    }
    // Well after the recovery the index is the market price again, within the noise.
    let end_market = truth
        .observe(btc, T0 + BLOCKS * BLOCK_MS - 200)
        .unwrap()
        .price
        .micros();
    let end_index = state.index(&btc).unwrap().micros();
    assert!((end_index - end_market).abs() * 10_000 <= end_market * 5);
    assert!(deepest_gap_ppm > 100_000);

    let records = state.records();
    assert_eq!(records.get(&liar).unwrap().outliers, BLOCKS);
    for key in &keys[..3] {
        let record = records.get(&key.public_key()).unwrap();
        assert_eq!(
            (record.accepted, record.outliers, record.absent),
            (BLOCKS, 0, 0)
        );
    }
}
