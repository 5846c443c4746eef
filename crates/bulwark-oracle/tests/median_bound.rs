//! With n = 4 (f = 1) and n = 7 (f = 2), up to f Byzantine validators reporting anything at
//! all (zero, i64::MAX, negative, the honest price times ten, one coordinated value, plus
//! duplicates, stale and future-dated copies, forgeries in honest validators' names and
//! observations signed by strangers, in any block order) cannot move the index outside
//! `[min honest, max honest]`, and cannot make it stale while 2f + 1 honest validators report.
//!
//! The oracle computes its expectations from the generated honest prices alone; it never calls
//! the median or the filters it checks.

use bulwark_oracle::{
    AggregateContext, IndexOutcome, Observation, OracleConfig, SignedObservation, ValidatorSet,
    aggregate, verify_batch,
};
use bulwark_types::{AssetCode, BlockTime, PrivateKey, UnitPrice};
use commonware_cryptography::Signer;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW_MS: u64 = 1_700_000_000_000;

/// What the Byzantine validators report.
#[derive(Clone, Debug)]
enum Lie {
    Zero,
    Max,
    Min,
    One,
    HonestTimesTen,
    HonestDividedByTen,
    Value(i64),
}

/// Each Byzantine validator lies on its own, or all tell one coordinated lie.
#[derive(Clone, Debug)]
enum Plan {
    Independent(Vec<Lie>),
    Coordinated(Lie),
}

/// Junk the Byzantine validators (and a Byzantine leader) add to the block.
#[derive(Clone, Debug)]
struct Junk {
    duplicates: bool,
    stale_copies: bool,
    future_copies: bool,
    forged_in_honest_names: bool,
    strangers: bool,
}

#[derive(Clone, Debug)]
struct Case {
    byzantine: usize,
    absent_honest: usize,
    honest_prices: Vec<i64>,
    plan: Plan,
    junk: Junk,
    order_seed: u64,
}

fn lie() -> impl Strategy<Value = Lie> {
    prop_oneof![
        Just(Lie::Zero),
        Just(Lie::Max),
        Just(Lie::Min),
        Just(Lie::One),
        Just(Lie::HonestTimesTen),
        Just(Lie::HonestDividedByTen),
        any::<i64>().prop_map(Lie::Value),
    ]
}

fn case(n: usize) -> impl Strategy<Value = Case> {
    let f = (n - 1) / 3;
    (0..=f).prop_flat_map(move |byzantine| {
        let honest = n - byzantine;
        (
            Just(byzantine),
            0..honest,
            // Honest prices around 65,000 USDC, within 2% of each other, or anywhere positive.
            prop_oneof![
                prop::collection::vec(63_700_000_000i64..=66_300_000_000, honest),
                prop::collection::vec(1i64..=i64::MAX / 10, honest),
            ],
            prop_oneof![
                prop::collection::vec(lie(), byzantine).prop_map(Plan::Independent),
                lie().prop_map(Plan::Coordinated),
            ],
            (
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
            any::<u64>(),
        )
            .prop_map(
                |(byzantine, absent_honest, honest_prices, plan, junk, order_seed)| Case {
                    byzantine,
                    absent_honest,
                    honest_prices,
                    plan,
                    junk: Junk {
                        duplicates: junk.0,
                        stale_copies: junk.1,
                        future_copies: junk.2,
                        forged_in_honest_names: junk.3,
                        strangers: junk.4,
                    },
                    order_seed,
                },
            )
    })
}

fn btc() -> AssetCode {
    AssetCode::parse("BTC").unwrap()
}

fn observe(key: &PrivateKey, price: i64, observed_at_ms: u64) -> SignedObservation {
    Observation {
        validator: key.public_key(),
        asset: btc(),
        price: UnitPrice::from_micros(price),
        observed_at_ms,
        sources: 3,
    }
    .sign(key)
}

fn lie_price(lie: &Lie, honest_min: i64, honest_max: i64) -> i64 {
    match lie {
        Lie::Zero => 0,
        Lie::Max => i64::MAX,
        Lie::Min => i64::MIN,
        Lie::One => 1,
        Lie::HonestTimesTen => honest_max.saturating_mul(10),
        Lie::HonestDividedByTen => honest_min / 10,
        Lie::Value(v) => *v,
    }
}

/// A deterministic shuffle from the case's seed (Fisher-Yates over a splitmix sequence).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        items.swap(i, (z % (i as u64 + 1)) as usize);
    }
}

fn check(n: usize, case: Case) -> Result<(), TestCaseError> {
    let f = (n - 1) / 3;
    let keys: Vec<PrivateKey> = (0..n as u64)
        .map(|s| PrivateKey::from_seed(1_000 + s))
        .collect();
    let set = ValidatorSet::new(keys.iter().map(|k| k.public_key()).collect()).unwrap();
    let config = OracleConfig::GENESIS;
    let (byzantine_keys, honest_keys) = keys.split_at(case.byzantine);
    let present = honest_keys.len() - case.absent_honest;
    let honest_prices = &case.honest_prices[..present];
    let honest_min = *honest_prices.iter().min().unwrap();
    let honest_max = *honest_prices.iter().max().unwrap();

    let mut block: Vec<SignedObservation> = honest_keys[..present]
        .iter()
        .zip(honest_prices)
        .map(|(key, price)| observe(key, *price, NOW_MS - 300))
        .collect();
    let lies: Vec<Lie> = match &case.plan {
        Plan::Independent(lies) => lies.clone(),
        Plan::Coordinated(lie) => vec![lie.clone(); case.byzantine],
    };
    for (key, lie) in byzantine_keys.iter().zip(&lies) {
        let price = lie_price(lie, honest_min, honest_max);
        block.push(observe(key, price, NOW_MS));
        if case.junk.duplicates {
            block.push(observe(key, price.wrapping_neg(), NOW_MS));
            block.push(observe(key, i64::MAX - 1, NOW_MS - 1));
        }
        if case.junk.stale_copies {
            let stale = NOW_MS - config.observation_age_ms_max - 1;
            block.push(observe(key, i64::MAX, stale));
        }
        if case.junk.future_copies {
            let future = NOW_MS + config.observation_lead_ms_max + 1;
            block.push(observe(key, i64::MAX, future));
        }
    }
    if case.junk.forged_in_honest_names {
        for key in honest_keys {
            // A valid signature by a Byzantine key over an observation naming an honest one.
            let mut forged = observe(byzantine_keys.first().unwrap_or(&keys[0]), 1, NOW_MS);
            forged.observation.validator = key.public_key();
            block.push(forged);
        }
    }
    if case.junk.strangers {
        for seed in 0..(2 * f as u64 + 1) {
            block.push(observe(
                &PrivateKey::from_seed(9_000 + seed),
                i64::MAX,
                NOW_MS,
            ));
        }
    }
    shuffle(&mut block, case.order_seed);

    let mut rng = ChaCha20Rng::seed_from_u64(case.order_seed);
    let verdicts = verify_batch(&mut rng, &block);
    let context = AggregateContext {
        config: &config,
        validators: &set,
        block_time: BlockTime::from_millis(NOW_MS),
    };
    let result = aggregate(context, btc(), &block, &verdicts);

    let quorum = 2 * f + 1;
    if present >= quorum {
        prop_assert!(
            matches!(result.outcome, IndexOutcome::Median(_)),
            "{present} honest validators reported, quorum is {quorum}, got {:?}",
            result.outcome
        );
    }
    if let IndexOutcome::Median(stats) = result.outcome {
        let index = stats.price.micros();
        prop_assert!(
            honest_min <= index && index <= honest_max,
            "index {index} outside honest [{honest_min}, {honest_max}]"
        );
    }
    // At most one accepted observation per validator, whatever the junk.
    let mut validators: Vec<u32> = result.accepted.iter().map(|a| a.validator_index).collect();
    validators.sort_unstable();
    validators.dedup();
    prop_assert_eq!(validators.len(), result.accepted.len());
    prop_assert!(result.accepted.len() <= n);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn f1_of_n4_cannot_move_the_median_outside_the_honest_range(case in case(4)) {
        check(4, case)?;
    }

    #[test]
    fn f2_of_n7_cannot_move_the_median_outside_the_honest_range(case in case(7)) {
        check(7, case)?;
    }
}

/// The named attacks of the issue, by hand, for both cluster sizes: each must leave the index
/// inside the honest range.
#[test]
fn named_attacks_leave_the_index_in_the_honest_range() {
    let honest = [
        65_000_000_000i64,
        65_010_000_000,
        64_990_000_000,
        65_020_000_000,
        64_980_000_000,
    ];
    for n in [4usize, 7] {
        let f = (n - 1) / 3;
        for lie in [
            Lie::Zero,
            Lie::Max,
            Lie::HonestTimesTen,
            Lie::Value(70_000_000_000),
        ] {
            let case = Case {
                byzantine: f,
                absent_honest: 0,
                honest_prices: honest[..n - f].to_vec(),
                plan: Plan::Coordinated(lie),
                junk: Junk {
                    duplicates: true,
                    stale_copies: true,
                    future_copies: true,
                    forged_in_honest_names: true,
                    strangers: true,
                },
                order_seed: n as u64,
            };
            check(n, case).unwrap();
        }
    }
}
