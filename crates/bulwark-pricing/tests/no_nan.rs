//! Property: no input makes a public function panic or return NaN (or infinity) inside `Ok`.
//!
//! Inputs mix NaN, infinities, signed zeros, negatives, huge and tiny magnitudes with values in the
//! working range. Case counts are modest to keep the suite fast on two cores.

use bulwark_pricing::jsonl::answer_line;
use bulwark_pricing::{
    AgeingRule, Black76, ExpiryMarks, LogMoneynessGrid, OptionKind, QuoteValue, RobustLoss, Smile,
    SmileQuote, SviParams, butterfly_violations, calendar_violations, fit_smile, implied_vol,
    to_minor_units,
};
use proptest::prelude::*;

fn wild() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(5e-324),
        any::<f64>(),
        -1e300..1e300_f64,
        1e-300..1e-200_f64,
        -2.0..2.0_f64,
        0.0..200.0_f64,
    ]
}

/// Mostly-valid values around a scale, with a chance of anything.
fn near(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    prop_oneof![4 => lo..hi, 1 => wild()]
}

fn kind() -> impl Strategy<Value = OptionKind> {
    prop_oneof![Just(OptionKind::Call), Just(OptionKind::Put)]
}

fn finite(values: &[f64]) -> bool {
    values.iter().all(|v| v.is_finite())
}

fn quote() -> impl Strategy<Value = SmileQuote> {
    (
        near(50.0, 150.0),
        near(0.05, 1.5),
        near(0.0, 30.0),
        kind(),
        any::<bool>(),
        any::<u8>(),
        near(0.0, 2.0),
    )
        .prop_map(
            |(strike, vol, price, kind, by_price, flags, weight)| SmileQuote {
                strike,
                value: if by_price {
                    QuoteValue::Price { kind, price }
                } else {
                    QuoteValue::Vol(vol)
                },
                bid_ask: (flags & 1 == 1)
                    .then_some((price * 0.9, price * (1.0 + (flags >> 4) as f64 * 0.01))),
                weight: (flags & 2 == 2).then_some(weight),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn greeks_are_finite_or_an_error(
        forward in near(1.0, 1e5), strike in near(1.0, 1e5), time in near(1e-4, 10.0),
        vol in near(0.01, 5.0), rate in near(-0.1, 0.2), kind in kind(),
    ) {
        if let Ok(model) = Black76::new(forward, strike, time, vol, rate) {
            if let Ok(price) = model.price(kind) {
                prop_assert!(price.is_finite() && price >= 0.0);
            }
            if let Ok(g) = model.greeks(kind) {
                prop_assert!(finite(&[g.price, g.delta, g.gamma, g.vega, g.theta, g.rho, g.vanna, g.volga]));
            }
        }
    }

    #[test]
    fn greeks_are_finite_at_the_edges_of_the_domain(
        forward in prop_oneof![Just(1e-15), Just(1e15), 1e-15..1e15_f64],
        strike in prop_oneof![Just(1e-15), Just(1e15), 1e-15..1e15_f64],
        time in prop_oneof![Just(1e-9), Just(100.0), 1e-9..100.0_f64],
        vol in prop_oneof![Just(1e-6), Just(100.0), 1e-6..100.0_f64],
        rate in prop_oneof![Just(-1.0), Just(1.0), -1.0..1.0_f64],
        kind in kind(),
    ) {
        let model = Black76::new(forward, strike, time, vol, rate).unwrap();
        let g = model.greeks(kind).unwrap();
        prop_assert!(finite(&[g.price, g.delta, g.gamma, g.vega, g.theta, g.rho, g.vanna, g.volga]));
        let fast = model.price_absolute(kind).unwrap();
        prop_assert!(fast.is_finite() && fast >= 0.0);
    }

    /// The scenario grid's textbook price agrees with Jäckel's to a few parts in 1e15 of the
    /// larger of forward and strike: far below the micro-unit a P&L is rounded to.
    #[test]
    fn the_absolute_price_matches_the_precise_one(
        forward in 1.0..1e7_f64, moneyness in 0.2..5.0_f64, time in 1e-4..5.0_f64,
        vol in 0.01..5.0_f64, kind in kind(),
    ) {
        let strike = forward * moneyness;
        let model = Black76::new(forward, strike, time, vol, 0.0).unwrap();
        let (fast, precise) = (model.price_absolute(kind).unwrap(), model.price(kind).unwrap());
        prop_assert!(
            (fast - precise).abs() <= 1e-14 * forward.max(strike),
            "{fast} vs {precise}"
        );
    }

    #[test]
    fn implied_vol_is_finite_or_an_error(
        forward in near(1.0, 1e5), strike in near(1.0, 1e5), time in near(1e-4, 10.0),
        rate in near(-0.1, 0.2), price in near(0.0, 1e5), kind in kind(),
    ) {
        if let Ok(vol) = implied_vol(kind, forward, strike, time, rate, price) {
            prop_assert!(vol.is_finite() && vol > 0.0);
        }
    }

    #[test]
    fn svi_evaluations_are_finite_or_an_error(
        a in near(-0.1, 0.5), b in near(0.0, 2.0), rho in near(-1.0, 1.0), m in near(-1.0, 1.0),
        sigma in near(0.0, 2.0), k in wild(), time in wild(),
    ) {
        if let Ok(params) = SviParams::new(a, b, rho, m, sigma) {
            if let Ok(w) = params.total_variance(k) { prop_assert!(w.is_finite() && w >= 0.0); }
            if let Ok(v) = params.vol(k, time) { prop_assert!(v.is_finite()); }
            if let Ok(g) = params.butterfly_density(k) { prop_assert!(g.is_finite()); }
            if let Ok(grid) = LogMoneynessGrid::new(k.min(0.0) - 1.0, k.max(0.0) + 1.0, 51) {
                for v in butterfly_violations(&params, &grid) {
                    prop_assert!(v.density.is_finite() && v.log_moneyness.is_finite());
                }
                if let Ok(report) = calendar_violations(&[(time, params), (1.0, params)], &grid) {
                    for v in report { prop_assert!(v.total_variance_later.is_finite()); }
                }
            }
        }
    }

    #[test]
    fn minor_units_never_panic(value in wild(), units in any::<i64>()) {
        if let Ok(minor) = to_minor_units(value, units) {
            prop_assert!(minor.unsigned_abs() <= 1 << 53);
        }
    }

    #[test]
    fn marks_are_finite_and_bounded_or_an_error(
        strike in near(1.0, 300.0), forward in near(50.0, 150.0), time in near(0.01, 2.0),
        rate in near(-0.05, 0.1), age_ms in any::<u64>(), kind in kind(),
    ) {
        let params = SviParams::new(0.01, 0.1, -0.3, 0.0, 0.2).unwrap();
        let smile = Smile::new(params, 100.0, 0.5).unwrap();
        let rule = AgeingRule { age_ms_max: u64::MAX / 2, flatten_half_life_ms: 60_000, good_quotes_min: 5 };
        if let Ok(marks) = ExpiryMarks::aged(smile, age_ms, &rule, forward, time, rate)
            && let Ok(mark) = marks.mark(strike, kind)
        {
            prop_assert!(mark.price.is_finite() && mark.vol.is_finite() && mark.price >= 0.0);
        }
    }

    #[test]
    fn answer_line_never_panics_on_arbitrary_text(line in ".{0,200}") {
        let out = answer_line(&line);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
    }

    #[test]
    fn answer_line_never_panics_on_wild_numbers(
        op in prop_oneof![Just("price"), Just("iv")], f in wild(), k in wild(), t in wild(),
        v in wild(), r in wild(),
    ) {
        // JSON has no NaN or infinity: serde_json writes them as null, which must be refused.
        let line = serde_json::json!({"op": op, "kind": "call", "forward": f, "strike": k,
            "time": t, "vol": v, "price": v, "rate": r}).to_string();
        let out: serde_json::Value = serde_json::from_str(&answer_line(&line)).unwrap();
        prop_assert!(out.is_object());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fits_are_finite_or_an_error(
        forward in near(50.0, 150.0), time in near(0.01, 2.0), rate in near(-0.05, 0.1),
        quotes in proptest::collection::vec(quote(), 0..24), loss in prop_oneof![
            Just(RobustLoss::Tukey), Just(RobustLoss::Huber), Just(RobustLoss::LeastSquares)],
    ) {
        if let Ok(fit) = fit_smile(forward, time, rate, &quotes, loss) {
            let p = fit.params;
            prop_assert!(finite(&[p.a(), p.b(), p.rho(), p.m(), p.sigma(), fit.scale_vol, fit.vol_atm()]));
            prop_assert_eq!(fit.quotes.len(), quotes.len());
            for q in &fit.quotes {
                let optional = [q.strike, q.log_moneyness, q.vol_market, q.vol_fitted, q.residual_vol];
                prop_assert!(optional.iter().flatten().all(|v| v.is_finite()));
                prop_assert!(q.weight.is_finite() && q.weight >= 0.0);
            }
        }
    }
}
