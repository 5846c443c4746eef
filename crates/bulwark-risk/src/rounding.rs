//! The one place a model value (`f64`) becomes an integer of micro-USDC.
//!
//! Owns: the three conversions every caller of the model goes through: [`contract_micros`]
//! (scenario P&L of one contract, to nearest), [`value_micros_floor`] (values, toward negative
//! infinity) and [`charge_micros_ceil`] (charges and requirements, toward positive infinity).
//! Never: truncates silently, saturates, or accepts NaN, infinity or a magnitude beyond `2^53`
//! (where `f64` stops representing every integer).
//! Bounds: results within `+-2^53` micro-USDC ([`MICROS_ABS_MAX`]), about 9.0e9 USDC.
//!
//! Why per-contract rounding: account vectors are sums of `qty x contract vector` in integers,
//! so they are exact, independent of summation order, and an account updated fill by fill
//! equals one rebuilt from its positions bit for bit. The rounding error this introduces is at
//! most half a micro-USDC per contract; the requirement adds one micro-USDC per contract held
//! (the rounding allowance) so it still rounds against the account.

use crate::error::RiskError;

/// Largest absolute result: `2^53`, beyond which `f64` skips integers.
pub const MICROS_ABS_MAX: i64 = 1 << 53;

fn check(value: f64, what: &'static str) -> Result<f64, RiskError> {
    let limit = MICROS_ABS_MAX as f64;
    if !value.is_finite() || !(-limit..=limit).contains(&value) {
        return Err(RiskError::ValueOutOfRange { what });
    }
    Ok(value)
}

/// One contract's scenario P&L in micro-USDC, rounded to the nearest integer, halves away from
/// zero (`libm::round`, exact).
pub fn contract_micros(value: f64, what: &'static str) -> Result<i64, RiskError> {
    let rounded = check(libm::round(value), what)?;
    // Exact: an integer of magnitude <= 2^53.
    Ok(rounded as i64)
}

/// A value in micro-USDC, rounded toward negative infinity (the exchange's rule for values).
pub fn value_micros_floor(value: f64, what: &'static str) -> Result<i64, RiskError> {
    let rounded = check(libm::floor(value), what)?;
    Ok(rounded as i64)
}

/// A charge or requirement in micro-USDC, rounded toward positive infinity.
pub fn charge_micros_ceil(value: f64, what: &'static str) -> Result<i64, RiskError> {
    let rounded = check(libm::ceil(value), what)?;
    Ok(rounded as i64)
}

/// `a x bps / 10_000` rounded up, in `i128`.
pub(crate) fn mul_bps_ceil(a: i128, bps: u32) -> Result<i128, RiskError> {
    let product = a
        .checked_mul(i128::from(bps))
        .ok_or(RiskError::Overflow("bps product"))?;
    Ok(-((-product).div_euclid(i128::from(crate::params::BPS))))
}

/// `a x bps / 10_000` rounded down, in `i128`.
pub(crate) fn mul_bps_floor(a: i128, bps: u32) -> Result<i128, RiskError> {
    let product = a
        .checked_mul(i128::from(bps))
        .ok_or(RiskError::Overflow("bps product"))?;
    Ok(product.div_euclid(i128::from(crate::params::BPS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_conversion_rounds_its_own_way() {
        assert_eq!(contract_micros(2.5, "x"), Ok(3));
        assert_eq!(contract_micros(-2.5, "x"), Ok(-3));
        assert_eq!(value_micros_floor(-2.1, "x"), Ok(-3));
        assert_eq!(charge_micros_ceil(2.1, "x"), Ok(3));
        assert_eq!(charge_micros_ceil(-2.9, "x"), Ok(-2));
    }

    #[test]
    fn non_finite_and_huge_values_are_refused() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e17, -1e17] {
            assert!(contract_micros(bad, "x").is_err());
            assert!(value_micros_floor(bad, "x").is_err());
            assert!(charge_micros_ceil(bad, "x").is_err());
        }
        assert_eq!(
            contract_micros(MICROS_ABS_MAX as f64, "x"),
            Ok(MICROS_ABS_MAX)
        );
    }

    #[test]
    fn bps_products_round_up_and_down() {
        assert_eq!(mul_bps_ceil(10, 3_500), Ok(4));
        assert_eq!(mul_bps_floor(10, 3_500), Ok(3));
        assert_eq!(mul_bps_floor(-10, 3_500), Ok(-4));
        assert_eq!(mul_bps_ceil(-10, 3_500), Ok(-3));
        assert!(mul_bps_ceil(i128::MAX, 2).is_err());
    }
}
