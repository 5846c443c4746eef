//! Mark prices: fresh smiles, the aged fallback and its rule, and the no-arbitrage bounds.

use bulwark_pricing::{
    AgeingRule, Black76, ExpiryMarks, MarkSource, OptionKind, PricingError, QuoteValue, RobustLoss,
    Smile, SmileQuote, SviParams, fit_smile,
};

const FORWARD: f64 = 100.0;
const TIME_YEARS: f64 = 0.25;
const RATE: f64 = 0.02;

fn smile() -> Smile {
    let params = SviParams::new(0.01, 0.1, -0.3, 0.0, 0.2).unwrap();
    Smile::new(params, FORWARD, TIME_YEARS).unwrap()
}

fn rule() -> AgeingRule {
    AgeingRule {
        age_ms_max: 600_000,
        flatten_half_life_ms: 60_000,
        good_quotes_min: 8,
    }
}

#[test]
fn fresh_mark_is_the_black_price_at_the_smile_vol() {
    let marks = ExpiryMarks::fresh(smile(), RATE).unwrap();
    let strike = 110.0;
    let vol = smile()
        .params()
        .vol(libm::log(strike / FORWARD), TIME_YEARS)
        .unwrap();
    let expected = Black76::new(FORWARD, strike, TIME_YEARS, vol, RATE)
        .unwrap()
        .price(OptionKind::Call)
        .unwrap();
    let mark = marks.mark(strike, OptionKind::Call).unwrap();
    assert_eq!(mark.price, expected);
    assert_eq!(mark.vol, vol);
    assert_eq!(mark.source, MarkSource::Fitted);
    assert!(!mark.clamped);
}

#[test]
fn marks_stay_between_intrinsic_and_the_forward_or_strike() {
    let marks = ExpiryMarks::fresh(smile(), RATE).unwrap();
    let discount = libm::exp(-RATE * TIME_YEARS);
    for i in 0..200 {
        let strike = 1.0 + 2.0 * i as f64;
        for kind in [OptionKind::Call, OptionKind::Put] {
            let mark = marks.mark(strike, kind).unwrap();
            let intrinsic = discount * (kind.sign() * (FORWARD - strike)).max(0.0);
            let bound = discount
                * if kind == OptionKind::Call {
                    FORWARD
                } else {
                    strike
                };
            assert!(
                mark.price >= intrinsic && mark.price <= bound,
                "{kind:?} {strike}: {mark:?}"
            );
        }
    }
}

#[test]
fn aged_smile_at_age_zero_marks_like_the_previous_smile() {
    let fresh = ExpiryMarks::fresh(smile(), RATE).unwrap();
    let aged = ExpiryMarks::aged(smile(), 0, &rule(), FORWARD, TIME_YEARS, RATE).unwrap();
    for strike in [70.0, 100.0, 130.0] {
        assert_eq!(fresh.vol(strike).unwrap(), aged.vol(strike).unwrap());
    }
}

#[test]
fn aged_smile_shape_halves_at_the_half_life_and_keeps_the_atm_level() {
    let fresh = ExpiryMarks::fresh(smile(), RATE).unwrap();
    let aged = ExpiryMarks::aged(smile(), 60_000, &rule(), FORWARD, TIME_YEARS, RATE).unwrap();
    let atm = fresh.vol(FORWARD).unwrap();
    assert_eq!(aged.vol(FORWARD).unwrap(), atm);
    for strike in [70.0, 130.0] {
        let expected = atm + 0.5 * (fresh.vol(strike).unwrap() - atm);
        assert!((aged.vol(strike).unwrap() - expected).abs() < 1e-15);
    }
    assert!(matches!(
        aged.source(),
        MarkSource::Aged { age_ms: 60_000, .. }
    ));
}

#[test]
fn aged_smile_older_than_the_maximum_is_refused() {
    let error =
        ExpiryMarks::aged(smile(), 600_001, &rule(), FORWARD, TIME_YEARS, RATE).unwrap_err();
    assert_eq!(
        error,
        PricingError::SmileTooOld {
            age_ms: 600_001,
            age_ms_max: 600_000
        }
    );
}

#[test]
fn aged_smile_is_read_at_the_current_forward() {
    // The forward moved from 100 to 105: strike 105 is now at the money.
    let aged = ExpiryMarks::aged(smile(), 0, &rule(), 105.0, TIME_YEARS, RATE).unwrap();
    let fresh = ExpiryMarks::fresh(smile(), RATE).unwrap();
    assert_eq!(aged.vol(105.0).unwrap(), fresh.vol(FORWARD).unwrap());
}

fn quotes(count: usize) -> Vec<SmileQuote> {
    (0..count)
        .map(|i| {
            let strike = 80.0 + 40.0 * i as f64 / (count - 1) as f64;
            let vol = smile()
                .params()
                .vol(libm::log(strike / FORWARD), TIME_YEARS)
                .unwrap();
            SmileQuote {
                strike,
                value: QuoteValue::Vol(vol),
                bid_ask: None,
                weight: None,
            }
        })
        .collect()
}

#[test]
fn select_uses_a_fresh_fit_with_enough_good_quotes() {
    let fit = fit_smile(FORWARD, TIME_YEARS, RATE, &quotes(12), RobustLoss::Tukey).unwrap();
    let marks = ExpiryMarks::select(
        Some(&fit),
        Some((smile(), 1_000)),
        &rule(),
        FORWARD,
        TIME_YEARS,
        RATE,
    )
    .unwrap();
    assert_eq!(marks.source(), MarkSource::Fitted);
}

#[test]
fn select_falls_back_to_the_aged_smile_when_too_few_quotes_are_good() {
    let fit = fit_smile(FORWARD, TIME_YEARS, RATE, &quotes(6), RobustLoss::Tukey).unwrap();
    let marks = ExpiryMarks::select(
        Some(&fit),
        Some((smile(), 1_000)),
        &rule(),
        FORWARD,
        TIME_YEARS,
        RATE,
    )
    .unwrap();
    assert!(matches!(
        marks.source(),
        MarkSource::Aged { age_ms: 1_000, .. }
    ));
}

#[test]
fn select_without_fit_or_previous_smile_has_no_smile() {
    let error = ExpiryMarks::select(None, None, &rule(), FORWARD, TIME_YEARS, RATE).unwrap_err();
    assert_eq!(error, PricingError::NoSmile);
}

#[test]
fn invalid_strike_is_a_typed_error() {
    let marks = ExpiryMarks::fresh(smile(), RATE).unwrap();
    assert!(marks.mark(f64::NAN, OptionKind::Call).is_err());
    assert!(marks.mark(-1.0, OptionKind::Put).is_err());
}
