//! The realised-vol estimator and the adaptive range: calm keeps the floor, a crash widens the
//! range within its bounds, the state is integer and pinned bit for bit.

use bulwark_risk::{PortfolioMarginParams, RealisedVol, RiskError};
use bulwark_types::UnitPrice;

const MINUTE_MS: u64 = 60_000;

fn usdc(x: i64) -> UnitPrice {
    UnitPrice::from_usdc(x)
}

#[test]
fn calm_markets_keep_the_floor_and_decay_the_estimate() {
    let params = PortfolioMarginParams::defaults();
    let mut rv = RealisedVol::new(&params).unwrap();
    // A day of 5-minute samples with the index flat: the variance halves (one half-life).
    for i in 0..=288 {
        rv.update(&params, usdc(100_000), i * 5 * MINUTE_MS)
            .unwrap();
    }
    let (variance_e12, _, _) = rv.parts();
    assert!(
        (variance_e12 as f64 / 0.36e12 - 0.5).abs() < 0.01,
        "{variance_e12}"
    );
    assert_eq!(rv.range_bps(&params), params.range_min_bps);
}

#[test]
fn a_crash_widens_the_range_up_to_its_cap() {
    let params = PortfolioMarginParams::defaults();
    let mut rv = RealisedVol::new(&params).unwrap();
    rv.update(&params, usdc(100_000), 0).unwrap();
    // -10% in five minutes: a sample of about 3,600% annualised vol, capped at 1,000%; the
    // estimate jumps by alpha = 1 - 2^(-5/1440) of it.
    assert!(rv.update(&params, usdc(90_000), 5 * MINUTE_MS).unwrap());
    let after_one = rv.range_bps(&params);
    assert!(after_one > params.range_min_bps, "{after_one}");
    // Keep crashing 3% every 5 minutes for an hour: the range reaches its cap and stays there.
    let mut index = 90_000;
    for i in 2..=13 {
        index = index * 97 / 100;
        rv.update(&params, usdc(index), i * 5 * MINUTE_MS).unwrap();
        assert!(rv.range_bps(&params) <= params.range_max_bps);
    }
    assert_eq!(rv.range_bps(&params), params.range_max_bps);
}

#[test]
fn prints_between_samples_are_ignored_and_time_never_goes_back() {
    let params = PortfolioMarginParams::defaults();
    let mut rv = RealisedVol::new(&params).unwrap();
    assert!(
        !rv.update(&params, usdc(100_000), 1_000).unwrap(),
        "first print seeds"
    );
    assert!(
        !rv.update(&params, usdc(50_000), 2_000).unwrap(),
        "inside the interval"
    );
    let before = rv;
    assert_eq!(
        rv.update(&params, usdc(100_000), 1_500),
        Err(RiskError::TimeBackwards {
            time_ms: 1_500,
            previous_ms: 2_000
        })
    );
    assert_eq!(rv, before);
    assert_eq!(
        rv.update(&params, UnitPrice::ZERO, 3_000),
        Err(RiskError::IndexNotPositive)
    );
    // The sample compares with the last sample (100,000 at 1 s), not the ignored print.
    assert!(
        rv.update(&params, usdc(100_000), 1_000 + 5 * MINUTE_MS)
            .unwrap()
    );
    assert!(
        rv.vol_bps() < 6_000,
        "an unchanged index lowers the estimate"
    );
}

#[test]
fn the_state_is_integer_and_pinned() {
    // The same prints give the same integer state on every machine: libm's log and exp2 only.
    let params = PortfolioMarginParams::defaults();
    let mut rv = RealisedVol::new(&params).unwrap();
    let prints = [100_000, 101_250, 99_800, 97_300, 98_900, 103_100, 102_000];
    for (i, index) in prints.into_iter().enumerate() {
        rv.update(&params, usdc(index), i as u64 * 7 * MINUTE_MS)
            .unwrap();
    }
    let (variance_e12, sample, print_last) = rv.parts();
    assert_eq!(variance_e12, PINNED_VARIANCE_E12);
    assert_eq!(sample, Some((usdc(102_000), 42 * MINUTE_MS)));
    assert_eq!(print_last, Some(42 * MINUTE_MS));
    let restored = RealisedVol::from_parts(&params, variance_e12, sample, print_last).unwrap();
    assert_eq!(restored, rv);
    assert!(RealisedVol::from_parts(&params, u64::MAX, None, None).is_err());
    assert!(RealisedVol::from_parts(&params, 0, Some((usdc(1), 10)), Some(5)).is_err());
}

/// Cross-checked with CPython's `math` (the same update in binary64): 1.034937 a year, 101.7% vol.
const PINNED_VARIANCE_E12: u64 = 1_034_937_445_386;
