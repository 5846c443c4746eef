//! Why a pricing call refused its inputs or could not produce a value.
//!
//! Owns: [`PricingError`], the single error type of every public function in this crate, and
//! [`Input`], which names the offending argument.
//! Never: carries a `String`; every variant is data a caller can match on.
//! Bounds: none needed (plain `Copy` data).

use std::fmt;

/// Which argument of a call an error is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// Forward price of the underlying for the option's expiry.
    Forward,
    /// Strike price.
    Strike,
    /// Time to expiry in years.
    TimeYears,
    /// Black volatility, decimal per square-root year (0.2 is 20%).
    Vol,
    /// Continuously compounded discount rate per year.
    Rate,
    /// Option price (discounted, in the same currency as forward and strike).
    Price,
    /// Spot price of the underlying.
    Spot,
    /// Continuously compounded dividend or carry yield per year.
    Yield,
    /// A quote's weight in a smile fit.
    Weight,
    /// Number of minor units in one unit of currency.
    UnitsPerOne,
    /// A value to be rounded to minor units.
    Value,
    /// One of the raw SVI parameters.
    SviParam,
    /// Log-moneyness `ln(K/F)`.
    LogMoneyness,
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Forward => "forward",
            Self::Strike => "strike",
            Self::TimeYears => "time",
            Self::Vol => "vol",
            Self::Rate => "rate",
            Self::Price => "price",
            Self::Spot => "spot",
            Self::Yield => "yield",
            Self::Weight => "weight",
            Self::UnitsPerOne => "units_per_one",
            Self::Value => "value",
            Self::SviParam => "svi parameter",
            Self::LogMoneyness => "log-moneyness",
        };
        f.write_str(name)
    }
}

/// Why a pricing call failed. Declaration order is check order within a call: inputs are
/// validated (not finite, then sign, then range) before any model is evaluated.
#[derive(Copy, Clone, Debug, PartialEq, thiserror::Error)]
pub enum PricingError {
    /// An input was NaN or infinite.
    #[error("{input} must be finite")]
    NotFinite { input: Input },
    /// An input that must be strictly positive was zero or negative.
    #[error("{input} must be positive")]
    NotPositive { input: Input },
    /// An input was outside the documented domain `[min, max]`.
    #[error("{input} must lie in [{min}, {max}]")]
    OutOfRange { input: Input, min: f64, max: f64 },
    /// An option price below its discounted intrinsic value: no volatility produces it.
    #[error("price {price} is below intrinsic value {intrinsic}")]
    BelowIntrinsic { price: f64, intrinsic: f64 },
    /// An option price at or above its model upper bound (discounted forward for a call,
    /// discounted strike for a put): no finite volatility produces it.
    #[error("price {price} is at or above the upper bound {bound}")]
    AboveUpperBound { price: f64, bound: f64 },
    /// A price equal to intrinsic value (to the solver's resolution): the volatility is zero and
    /// carries no information.
    #[error("price {price} has no time value over intrinsic {intrinsic}")]
    NoTimeValue { price: f64, intrinsic: f64 },
    /// Invalid SVI parameters (violating b >= 0, |rho| < 1, sigma > 0 or a non-negative minimum
    /// total variance).
    #[error("SVI parameters violate {constraint}")]
    SviConstraint { constraint: SviConstraint },
    /// A log-moneyness grid needs finite `k_min < k_max` within the SVI bound and between 2 and
    /// `GRID_POINTS_MAX` points.
    #[error("invalid grid: k from {k_min} to {k_max} in {points} points")]
    InvalidGrid {
        k_min: f64,
        k_max: f64,
        points: usize,
    },
    /// Too many expiries in one calendar check.
    #[error("{count} expiries exceed the maximum {max}")]
    TooManyExpiries { count: usize, max: usize },
    /// Too many quotes in one fit request.
    #[error("{count} quotes exceed the maximum {max}")]
    TooManyQuotes { count: usize, max: usize },
    /// Too few usable quotes remain after validation to fit a smile.
    #[error("{usable} usable quotes, a fit needs at least {min}")]
    TooFewQuotes { usable: usize, min: usize },
    /// A fallback smile is older than the ageing rule allows.
    #[error("previous smile is {age_ms} ms old, the maximum is {age_ms_max} ms")]
    SmileTooOld { age_ms: u64, age_ms_max: u64 },
    /// Neither a usable fresh fit nor a previous smile was available for an expiry.
    #[error("no smile is available for this expiry")]
    NoSmile,
    /// The model produced a non-finite number for inputs inside its documented domain.
    /// Never expected; reported rather than returned as NaN.
    #[error("the model produced a non-finite {input}")]
    NonFiniteResult { input: Input },
}

impl PricingError {
    /// Stable snake-case code of the variant, used by the JSON lines answers.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotFinite { .. } => "not_finite",
            Self::NotPositive { .. } => "not_positive",
            Self::OutOfRange { .. } => "out_of_range",
            Self::BelowIntrinsic { .. } => "below_intrinsic",
            Self::AboveUpperBound { .. } => "above_upper_bound",
            Self::NoTimeValue { .. } => "no_time_value",
            Self::SviConstraint { .. } => "svi_constraint",
            Self::InvalidGrid { .. } => "invalid_grid",
            Self::TooManyExpiries { .. } => "too_many_expiries",
            Self::TooManyQuotes { .. } => "too_many_quotes",
            Self::TooFewQuotes { .. } => "too_few_quotes",
            Self::SmileTooOld { .. } => "smile_too_old",
            Self::NoSmile => "no_smile",
            Self::NonFiniteResult { .. } => "non_finite_result",
        }
    }
}

/// Which raw-SVI constraint a parameter set violates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SviConstraint {
    /// `b >= 0`.
    SlopeNegative,
    /// `|rho| < 1`.
    CorrelationOutOfRange,
    /// `sigma > 0`.
    CurvatureNotPositive,
    /// `a + b sigma sqrt(1 - rho^2) >= 0` (minimum total variance).
    MinimumVarianceNegative,
    /// A parameter was NaN or infinite.
    NotFinite,
}

impl fmt::Display for SviConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::SlopeNegative => "b >= 0",
            Self::CorrelationOutOfRange => "|rho| < 1",
            Self::CurvatureNotPositive => "sigma > 0",
            Self::MinimumVarianceNegative => "a + b sigma sqrt(1 - rho^2) >= 0",
            Self::NotFinite => "finiteness",
        };
        f.write_str(text)
    }
}

/// Checks `value` is finite and strictly positive.
pub(crate) fn check_positive(value: f64, input: Input) -> Result<f64, PricingError> {
    if !value.is_finite() {
        return Err(PricingError::NotFinite { input });
    }
    if value <= 0.0 {
        return Err(PricingError::NotPositive { input });
    }
    Ok(value)
}

/// Checks `value` is finite and inside `[min, max]`.
pub(crate) fn check_range(
    value: f64,
    input: Input,
    min: f64,
    max: f64,
) -> Result<f64, PricingError> {
    debug_assert!(min <= max, "range bounds are ordered");
    if !value.is_finite() {
        return Err(PricingError::NotFinite { input });
    }
    if !(min..=max).contains(&value) {
        return Err(PricingError::OutOfRange { input, min, max });
    }
    Ok(value)
}

/// Checks a model output is finite, turning a NaN or infinity into a typed error.
pub(crate) fn check_output(value: f64, input: Input) -> Result<f64, PricingError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(PricingError::NonFiniteResult { input })
    }
}
