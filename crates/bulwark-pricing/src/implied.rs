//! Implied Black volatility by Jäckel's "Let's Be Rational", on `libm`.
//!
//! Owns: turning one discounted option price into the Black-76 volatility that reproduces it, and
//! saying precisely why when none does ([`PricingError::BelowIntrinsic`],
//! [`PricingError::AboveUpperBound`], [`PricingError::NoTimeValue`]).
//! Never: iterates without a bound (the method takes at most two Householder steps after a
//! rational initial guess), or calls a platform float function (see `lbr`).
//! Bounds: inputs in the domain of [`crate::Black76`]; the answer is any positive finite vol
//! (it may exceed `VOL_MAX` for a price close to its upper bound).
//!
//! Accuracy: Jäckel's method reaches the attainable precision, i.e. a relative vol error of a few
//! ulps times the condition number `kappa = b / (s db/ds)` of the normalised price `b` in total
//! volatility `s`. `kappa` is below 1 except close to the upper bound (very high total volatility)
//! where prices themselves no longer resolve the volatility.

use crate::black::{
    OptionKind, check_level, check_rate, check_time_years, intrinsic_value, upper_bound,
};
use crate::error::{Input, PricingError, check_output};
use crate::lbr;

/// The Black-76 volatility that reproduces a discounted option price.
///
/// `price` is discounted with `exp(-rate * time_years)`, like [`crate::Black76::price`].
/// Errors: invalid inputs as in [`crate::Black76::new`]; [`PricingError::BelowIntrinsic`] for a
/// price under discounted intrinsic value; [`PricingError::AboveUpperBound`] for a price at or
/// over the discounted forward (call) or strike (put); [`PricingError::NoTimeValue`] when the time
/// value is too small for a volatility to be resolved.
pub fn implied_vol(
    kind: OptionKind,
    forward: f64,
    strike: f64,
    time_years: f64,
    rate: f64,
    price: f64,
) -> Result<f64, PricingError> {
    let forward = check_level(forward, Input::Forward)?;
    let strike = check_level(strike, Input::Strike)?;
    let time_years = check_time_years(time_years)?;
    let rate = check_rate(rate)?;
    if !price.is_finite() {
        return Err(PricingError::NotFinite {
            input: Input::Price,
        });
    }
    let discount_factor = libm::exp(-rate * time_years);
    let intrinsic = intrinsic_value(kind, forward, strike, discount_factor);
    let bound = upper_bound(kind, forward, strike, discount_factor);
    if price < intrinsic {
        return Err(PricingError::BelowIntrinsic { price, intrinsic });
    }
    if price >= bound {
        return Err(PricingError::AboveUpperBound { price, bound });
    }
    let undiscounted = price / discount_factor;
    let solved = lbr::implied_black_volatility(
        undiscounted,
        forward,
        strike,
        time_years,
        kind == OptionKind::Call,
    );
    match solved {
        // Discounting can round an in-range price onto the bound or under intrinsic value.
        None => classify_unattainable(undiscounted, forward, strike, kind, price, intrinsic, bound),
        Some(vol) if vol.is_infinite() => Err(PricingError::AboveUpperBound { price, bound }),
        Some(vol) if vol <= 0.0 => Err(PricingError::NoTimeValue { price, intrinsic }),
        Some(vol) => {
            let vol = check_output(vol, Input::Vol)?;
            debug_assert!(vol > 0.0, "a solved volatility is positive");
            Ok(vol)
        }
    }
}

fn classify_unattainable(
    undiscounted: f64,
    forward: f64,
    strike: f64,
    kind: OptionKind,
    price: f64,
    intrinsic: f64,
    bound: f64,
) -> Result<f64, PricingError> {
    let intrinsic_undiscounted = intrinsic_value(kind, forward, strike, 1.0);
    if undiscounted < intrinsic_undiscounted {
        Err(PricingError::BelowIntrinsic { price, intrinsic })
    } else {
        Err(PricingError::AboveUpperBound { price, bound })
    }
}
