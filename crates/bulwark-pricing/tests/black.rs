//! Black-76 prices and greeks against independent reference values.
//!
//! Source of every number in `REFERENCE`: `tests/reference/black76_reference.py` (run with
//! QuantLib 1.44 and mpmath 1.3.0; output in `tests/reference/black76_reference.txt`). Each value
//! is the mpmath closed form at 60 digits, rounded to 17 significant digits, and the script
//! asserts QuantLib's `AnalyticEuropeanEngine` over a `BlackProcess` agrees (price to 1e-12, delta,
//! gamma, vega, theta and rho + dividendRho to 1e-9; QuantLib has no vanna or volga).

use bulwark_pricing::{Black76, Greeks, Input, OptionKind, PricingError};

/// (kind, forward, strike, time in years, vol, rate, [price, delta, gamma, vega, theta, rho,
/// vanna, volga]).
type Case = (OptionKind, f64, f64, f64, f64, f64, [f64; 8]);

#[rustfmt::skip]
#[allow(
    clippy::excessive_precision,
    clippy::eq_op,
    reason = "values and `days / 365.0` exactly as the reference script printed them"
)]
const REFERENCE: [Case; 16] = [
    (OptionKind::Call, 100.0, 100.0, 365.0 / 365.0, 0.2, 0.05, [7.5770821464272729, 5.1350012298249337e-1, 1.8879647164532512e-2, 3.7759294329065026e+1, -3.3970753255851391, -7.5770821464272729, 1.8879647164532513e-1, -1.8879647164532514]),
    (OptionKind::Put, 100.0, 100.0, 365.0 / 365.0, 0.2, 0.05, [7.5770821464272729, -4.3772930151822064e-1, 1.8879647164532512e-2, 3.7759294329065026e+1, -3.3970753255851391, -7.5770821464272729, 1.8879647164532513e-1, -1.8879647164532514]),
    (OptionKind::Call, 100.0, 120.0, 182.0 / 365.0, 0.35, 0.01, [3.5934155704757358, 2.6822474170285359e-1, 1.3301162122788252e-2, 2.321326101977018e+1, -8.1110276445030458, -1.7917852981550245, 8.0894875806900418e-1, 3.5080747242017915e+1]),
    (OptionKind::Put, 100.0, 80.0, 182.0 / 365.0, 0.35, 0.01, [2.187167110233046, -1.5158254869638294e-1, 9.4842274232425588e-3, 1.6551925667412355e+1, -5.7872176256337361, -1.0905874357874366, -5.2191013986121291e-1, 3.7828739915201731e+1]),
    (OptionKind::Call, 100.0, 60.0, 30.0 / 365.0, 0.5, 0.03, [3.9901992258688205e+1, 9.973987805520315e-1, 3.7481346330611004e-5, 1.5403293012579864e-2, 1.1502080848473823, -3.2796158020839618, -3.7522699587217991e-3, 3.9106127219128845e-1]),
    (OptionKind::Put, 100.0, 140.0, 30.0 / 365.0, 0.5, 0.03, [3.9955266753057648e+1, -9.8613070259883877e-1, 2.0844023225392229e-3, 8.5660369419420116e-1, -1.4068449005822993, -3.2839945276485736, 1.4455172076761565e-1, 9.4305040750558611]),
    (OptionKind::Call, 60000.0, 75000.0, 7.0 / 365.0, 0.8, 0.0, [6.0675922554922765e+1, 2.507069545963266e-2, 8.8131698293314263e-6, 4.8677672262827829e+2, -1.0152771643389804e+4, -1.1636478298204367, 1.5155162374248866e-1, 2.4665772967856859e+3]),
    (OptionKind::Put, 60000.0, 45000.0, 7.0 / 365.0, 0.8, 0.0, [8.5054050591336013, -3.9998236991477239e-3, 1.7821718067714102e-6, 9.8434475683593514e+1, -2.0530619214006647e+3, -1.6311735729845264e-1, -3.7632128615421779e-2, 8.2927774564955536e+2]),
    (OptionKind::Call, 3000.0, 3100.0, 1.0 / 365.0, 1.2, 0.05, [3.6586817342153593e+1, 3.1179955028801607e-1, 1.8768181950017305e-3, 5.5533250701421065e+1, -1.2159952562744105e+4, -1.0023785573192765e-1, 1.6310688199625086e-1, 1.2566251698933928e+1]),
    (OptionKind::Put, 3000.0, 2900.0, 1.0 / 365.0, 1.2, 0.05, [3.4410857171130392e+1, -2.8391156980882266e-1, 1.7982889790796643e-3, 5.3209646504274998e+1, -1.1651192041577667e+4, -9.4276321016795595e-2, -1.4354369246281458e-1, 1.2873771471921895e+1]),
    (OptionKind::Call, 1.0, 1.5, 1825.0 / 365.0, 0.25, -0.005, [9.3951804875760525e-2, 3.3616741880310843e-1, 6.6249901992800098e-1, 8.2812377491000123e-1, -2.1172853397128833e-2, -4.6975902437880262e-1, 1.4885428344016401, 1.4838694535961527]),
    (OptionKind::Put, 1.0, 0.5, 1825.0 / 365.0, 0.25, -0.005, [2.0388084690274022e-2, -6.5953292947135705e-2, 2.3067994680150678e-1, 2.8834993350188347e-1, -7.3106887609984569e-3, -1.0194042345137011e-1, -4.9540565219778865e-1, 1.6831846568410502]),
    (OptionKind::Call, 100.0, 100.0, 730.0 / 365.0, 2.5, 0.02, [8.8671269662112966e+1, 9.2375106788672643e-1, 2.2724699658381048e-4, 1.1362349829190524e+1, -5.3280432500018181, -1.7734253932422593e+2, 5.681174914595262e-2, -1.4202937286488155e+1]),
    (OptionKind::Put, 100.0, 250.0, 730.0 / 365.0, 2.5, 0.02, [2.2876041220737187e+2, -6.3124265071777911e-2, 3.4744255234362413e-4, 1.7372127617181207e+1, -6.2823715165908166, -4.5752082441474374e+2, 9.9594973708752585e-2, -2.1248425373164941e+1]),
    (OptionKind::Call, 100.0, 90.0, 91.0 / 365.0, 0.05, 0.04, [9.9007757614693814, 9.9006552763381216e-1, 2.036574269982729e-5, 2.5387432680606623e-3, 3.9577645867502742e-1, -2.468412587106065, -4.2787965888765261e-3, 9.0429935115951798e-1]),
    (OptionKind::Put, 100.0, 110.0, 91.0 / 365.0, 0.05, 0.04, [9.9008105261323817, -9.900068049139601e-1, 1.1353014662381887e-4, 1.4152388140777422e-2, 3.9461329421249754e-1, -2.468421254460402, 2.1711919316558969e-2, 4.1252010962876445]),
];

const RELATIVE_TOLERANCE: f64 = 1e-10;

fn as_array(greeks: &Greeks) -> [f64; 8] {
    [
        greeks.price,
        greeks.delta,
        greeks.gamma,
        greeks.vega,
        greeks.theta,
        greeks.rho,
        greeks.vanna,
        greeks.volga,
    ]
}

#[test]
fn prices_and_greeks_match_quantlib_and_mpmath_to_1e_10_relative() {
    const NAMES: [&str; 8] = [
        "price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga",
    ];
    let mut worst = 0.0_f64;
    for (kind, forward, strike, time_years, vol, rate, expected) in REFERENCE {
        let model = Black76::new(forward, strike, time_years, vol, rate).unwrap();
        let got = as_array(&model.greeks(kind).unwrap());
        for i in 0..8 {
            let error = ((got[i] - expected[i]) / expected[i]).abs();
            worst = worst.max(error);
            assert!(
                error <= RELATIVE_TOLERANCE,
                "{kind:?} F={forward} K={strike} T={time_years} vol={vol} r={rate}: {} got {} want {} (rel {error:e})",
                NAMES[i],
                got[i],
                expected[i]
            );
        }
    }
    eprintln!("worst relative error over the reference table: {worst:e}");
}

#[test]
fn price_method_agrees_with_greeks_price() {
    for (kind, forward, strike, time_years, vol, rate, _) in REFERENCE {
        let model = Black76::new(forward, strike, time_years, vol, rate).unwrap();
        assert_eq!(
            model.price(kind).unwrap(),
            model.greeks(kind).unwrap().price
        );
    }
}

#[test]
fn put_call_parity_holds_on_the_forward() {
    for (_, forward, strike, time_years, vol, rate, _) in REFERENCE {
        let model = Black76::new(forward, strike, time_years, vol, rate).unwrap();
        let parity = model.price(OptionKind::Call).unwrap() - model.price(OptionKind::Put).unwrap();
        let expected = model.discount_factor() * (forward - strike);
        assert!((parity - expected).abs() <= 1e-12 * forward.max(strike));
    }
}

#[test]
fn invalid_inputs_are_typed_errors() {
    let cases = [
        (
            Black76::new(0.0, 100.0, 1.0, 0.2, 0.0),
            PricingError::NotPositive {
                input: Input::Forward,
            },
        ),
        (
            Black76::new(-1.0, 100.0, 1.0, 0.2, 0.0),
            PricingError::NotPositive {
                input: Input::Forward,
            },
        ),
        (
            Black76::new(100.0, -5.0, 1.0, 0.2, 0.0),
            PricingError::NotPositive {
                input: Input::Strike,
            },
        ),
        (
            Black76::new(100.0, 100.0, 0.0, 0.2, 0.0),
            PricingError::NotPositive {
                input: Input::TimeYears,
            },
        ),
        (
            Black76::new(100.0, 100.0, 1.0, -0.2, 0.0),
            PricingError::NotPositive { input: Input::Vol },
        ),
        (
            Black76::new(f64::NAN, 100.0, 1.0, 0.2, 0.0),
            PricingError::NotFinite {
                input: Input::Forward,
            },
        ),
        (
            Black76::new(100.0, f64::INFINITY, 1.0, 0.2, 0.0),
            PricingError::NotFinite {
                input: Input::Strike,
            },
        ),
        (
            Black76::new(100.0, 100.0, f64::NAN, 0.2, 0.0),
            PricingError::NotFinite {
                input: Input::TimeYears,
            },
        ),
        (
            Black76::new(100.0, 100.0, 1.0, f64::NEG_INFINITY, 0.0),
            PricingError::NotFinite { input: Input::Vol },
        ),
        (
            Black76::new(100.0, 100.0, 1.0, 0.2, f64::NAN),
            PricingError::NotFinite { input: Input::Rate },
        ),
    ];
    for (result, expected) in cases {
        assert_eq!(result, Err(expected));
    }
}

#[test]
fn inputs_outside_the_domain_are_out_of_range() {
    let error = Black76::new(100.0, 100.0, 1.0, 0.2, 5.0).unwrap_err();
    assert!(matches!(
        error,
        PricingError::OutOfRange {
            input: Input::Rate,
            ..
        }
    ));
    let error = Black76::new(1e300, 100.0, 1.0, 0.2, 0.0).unwrap_err();
    assert!(matches!(
        error,
        PricingError::OutOfRange {
            input: Input::Forward,
            ..
        }
    ));
}

#[test]
fn black_scholes_from_spot_uses_the_carry_forward() {
    // Forward 100 * exp((0.05 - 0.02) * 1) = 103.0454533953516855... (mpmath, 30 digits).
    let model = Black76::from_spot(100.0, 100.0, 1.0, 0.2, 0.05, 0.02).unwrap();
    assert!((model.forward() - 103.045_453_395_351_69).abs() <= 1e-12 * 103.0);
}
