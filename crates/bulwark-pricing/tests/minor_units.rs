//! The rounding boundary to integer minor units.

use bulwark_pricing::{Input, MINOR_UNITS_ABS_MAX, PricingError, to_minor_units};

#[test]
fn halves_round_away_from_zero() {
    let cases = [
        (0.5, 1),
        (1.5, 2),
        (2.5, 3),
        (-0.5, -1),
        (-2.5, -3),
        (0.49, 0),
        (-0.49, 0),
    ];
    for (value, expected) in cases {
        assert_eq!(to_minor_units(value, 1), Ok(expected), "{value}");
    }
}

#[test]
fn scales_by_units_per_one() {
    assert_eq!(to_minor_units(12.345_678_9, 1_000_000), Ok(12_345_679));
    assert_eq!(to_minor_units(-0.000_000_5, 1_000_000), Ok(-1));
}

#[test]
fn rounds_the_f64_product_as_documented() {
    // 1.005 is 1.00499999999999989... in binary; the product is 100.49999999999999.
    assert_eq!(to_minor_units(1.005, 100), Ok(100));
}

#[test]
fn non_finite_values_are_refused() {
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            to_minor_units(value, 100),
            Err(PricingError::NotFinite {
                input: Input::Value
            })
        );
    }
}

#[test]
fn results_beyond_2_pow_53_are_refused() {
    assert!(matches!(
        to_minor_units(1e16, 1),
        Err(PricingError::OutOfRange { .. })
    ));
    assert_eq!(
        to_minor_units(MINOR_UNITS_ABS_MAX as f64, 1),
        Ok(MINOR_UNITS_ABS_MAX)
    );
    assert!(matches!(
        to_minor_units(1e12, 1_000_000),
        Err(PricingError::OutOfRange { .. })
    ));
}

#[test]
fn non_positive_units_are_refused() {
    assert_eq!(
        to_minor_units(1.0, 0),
        Err(PricingError::NotPositive {
            input: Input::UnitsPerOne
        })
    );
    assert_eq!(
        to_minor_units(1.0, -5),
        Err(PricingError::NotPositive {
            input: Input::UnitsPerOne
        })
    );
}
