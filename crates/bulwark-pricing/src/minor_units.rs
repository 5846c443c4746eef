//! The one place a model value becomes an integer the exchange may store.
//!
//! Owns: [`to_minor_units`], the rounding rule every caller of this crate uses.
//! Never: truncates silently, saturates, or accepts a value whose product with the unit count is
//! not exactly representable as an integer in `f64`.
//! Bounds: results within `+-2^53` ([`MINOR_UNITS_ABS_MAX`]), where every integer is an `f64`.

use crate::error::{Input, PricingError};

/// Largest absolute result: `2^53`, beyond which `f64` skips integers.
pub const MINOR_UNITS_ABS_MAX: i64 = 1 << 53;

/// Rounds `value * units_per_one` to the nearest integer, halves away from zero.
///
/// `units_per_one` is how many minor units make one unit of `value`'s currency (1_000_000 for
/// micro-USDC). The product is one IEEE multiplication, so the rounding applies to the `f64`
/// product: `1.005 * 100` is `100.49999999999999` and rounds to 100. Errors: `units_per_one` not
/// positive; `value` NaN or infinite; a result beyond [`MINOR_UNITS_ABS_MAX`].
pub fn to_minor_units(value: f64, units_per_one: i64) -> Result<i64, PricingError> {
    if units_per_one <= 0 {
        return Err(PricingError::NotPositive {
            input: Input::UnitsPerOne,
        });
    }
    if units_per_one > MINOR_UNITS_ABS_MAX {
        return Err(PricingError::OutOfRange {
            input: Input::UnitsPerOne,
            min: 1.0,
            max: MINOR_UNITS_ABS_MAX as f64,
        });
    }
    if !value.is_finite() {
        return Err(PricingError::NotFinite {
            input: Input::Value,
        });
    }
    // Exact: units_per_one <= 2^53 is representable.
    let product = value * units_per_one as f64;
    // libm::round rounds halves away from zero, exactly.
    let rounded = libm::round(product);
    let limit = MINOR_UNITS_ABS_MAX as f64;
    if !(-limit..=limit).contains(&rounded) {
        return Err(PricingError::OutOfRange {
            input: Input::Value,
            min: -limit / units_per_one as f64,
            max: limit / units_per_one as f64,
        });
    }
    // Exact: `rounded` is an integer with magnitude <= 2^53.
    let minor = rounded as i64;
    debug_assert!(
        minor.abs() <= MINOR_UNITS_ABS_MAX,
        "result is inside the exact range"
    );
    Ok(minor)
}
