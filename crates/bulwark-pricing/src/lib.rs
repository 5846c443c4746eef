//! Price options, invert implied volatility, fit robust smiles and mark options, bit-identically.
//!
//! Status: ALPHA. Numerical results are pinned by tests against QuantLib and mpmath; the JSON
//! lines schema may still change.
//!
//! # What it offers
//! - [`Black76`]: Black-76 prices and greeks (delta, gamma, vega, theta, rho, vanna, volga) on a
//!   forward, with Black-Scholes through [`Black76::from_spot`]. Invalid inputs are a
//!   [`PricingError`], never NaN.
//! - [`implied_vol`]: Jäckel's "Let's Be Rational" inversion, ported onto `libm`
//!   (module `lbr`); a price under intrinsic or over the upper bound is a typed error naming which.
//! - [`fit_smile`]: raw SVI ([`SviParams`]) fitted to quotes (vols or prices) by iteratively
//!   reweighted least squares with a Tukey or Huber loss ([`RobustLoss`]); every quote is
//!   reported with its fitted vol, residual and outlier reason ([`SmileFit`]).
//! - [`butterfly_violations`] and [`calendar_violations`]: static-arbitrage reports.
//! - [`ExpiryMarks`]: mark prices from a fresh smile or an aged previous one ([`AgeingRule`]),
//!   clamped between intrinsic value and the forward (call) or strike (put).
//! - [`to_minor_units`]: the one rounding boundary from `f64` to the exchange's integers.
//! - [`jsonl::answer_line`]: the request/answer core of `bulwark options`.
//!
//! # Architecture invariants
//! **Pure and deterministic:** no I/O, clock, threads or randomness; the same inputs give the
//! same bits on every machine. Transcendentals come from `libm` only (never `f64::exp`, `ln`,
//! `sqrt`, `powf` or `powi`), and no operation depends on hash or thread order.
//! **Never NaN:** every public function returns a typed error or finite values.
//! **Bounded:** every loop has a named maximum; inputs that grow (quotes, grid points, expiries,
//! JSON lines) have a `_MAX`.
//!
//! # Units
//! Forward, strike and prices share one currency unit; prices are discounted by
//! `exp(-rate * time_years)`. Time is in years, vol is decimal per square-root year (0.25 is
//! 25%), rate is continuously compounded per year. Log-moneyness is `k = ln(K / F)`, total
//! variance `w = vol^2 * time_years`. Ages are the caller's milliseconds.

mod arbitrage;
mod black;
mod error;
mod fit;
mod implied;
pub mod jsonl;
mod lbr;
mod marks;
mod minor_units;
mod svi;
mod svi_lsq;

pub use arbitrage::{
    ButterflyViolation, CALENDAR_VARIANCE_TOLERANCE, CalendarViolation, EXPIRIES_MAX,
    GRID_POINTS_MAX, LogMoneynessGrid, butterfly_violations, calendar_violations,
};
pub use black::{
    Black76, Greeks, LEVEL_MAX, LEVEL_MIN, OptionKind, RATE_ABS_MAX, TIME_YEARS_MAX,
    TIME_YEARS_MIN, VOL_MAX, VOL_MIN, forward_from_spot, intrinsic_value, upper_bound,
};
pub use error::{Input, PricingError, SviConstraint};
pub use fit::{
    FIT_GRID_POINTS, FittedQuote, HUBER_C, IRLS_ITERATIONS_MAX, OUTLIER_SCALES, OutlierReason,
    QUOTES_MAX, QUOTES_MIN, QuoteValue, RobustLoss, SCALE_VOL_MIN, SPREAD_VOL_MAX, SPREAD_VOL_REF,
    SmileFit, SmileQuote, TUKEY_C, WEIGHT_MAX, WEIGHT_MIN, fit_smile,
};
pub use implied::implied_vol;
pub use marks::{AgeingRule, ExpiryMarks, MarkPrice, MarkSource, Smile};
pub use minor_units::{MINOR_UNITS_ABS_MAX, to_minor_units};
pub use svi::{LOG_MONEYNESS_ABS_MAX, SVI_PARAM_ABS_MAX, SviParams};
pub use svi_lsq::{
    M_OUTSIDE_RANGE_MAX, NELDER_MEAD_ITERATIONS_MAX, RHO_ABS_MAX, SIGMA_MAX, SIGMA_MIN, SLOPE_MAX,
};
