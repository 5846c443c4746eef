//! Raw SVI: one expiry's total implied variance as a function of log-moneyness.
//!
//! Owns: [`SviParams`] and its constraints, the total variance `w(k)`, its first two derivatives
//! and Gatheral-Jacquier's butterfly density factor `g(k)`.
//! Never: fits anything (see `fit`), or accepts parameters that violate the constraints.
//! Bounds: `|a|`, `b`, `|m|`, `sigma` at most [`SVI_PARAM_ABS_MAX`] and `|k|` at most
//! [`LOG_MONEYNESS_ABS_MAX`], so `w(k)` and its derivatives are finite.
//!
//! `w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))`, with `k = ln(K / F)` and
//! `w = vol^2 * time_years`.

use crate::error::{Input, PricingError, SviConstraint};

/// Largest absolute value of `a`, `b`, `m` and `sigma`.
pub const SVI_PARAM_ABS_MAX: f64 = 1e8;
/// Largest absolute log-moneyness evaluated (`ln(LEVEL_MAX / LEVEL_MIN)` is about 69).
pub const LOG_MONEYNESS_ABS_MAX: f64 = 100.0;

/// Raw SVI parameters satisfying `b >= 0`, `|rho| < 1`, `sigma > 0` and a non-negative minimum
/// total variance `a + b sigma sqrt(1 - rho^2) >= 0`. Private fields: built only by
/// [`SviParams::new`].
#[derive(Copy, Clone, Debug, PartialEq, serde::Serialize)]
pub struct SviParams {
    a: f64,
    b: f64,
    rho: f64,
    m: f64,
    sigma: f64,
}

impl SviParams {
    /// Checks the raw-SVI constraints and the magnitude bound.
    pub fn new(a: f64, b: f64, rho: f64, m: f64, sigma: f64) -> Result<Self, PricingError> {
        let violation = |constraint| Err(PricingError::SviConstraint { constraint });
        if ![a, b, rho, m, sigma].iter().all(|v| v.is_finite()) {
            return violation(SviConstraint::NotFinite);
        }
        for value in [a, b, m, sigma] {
            if value.abs() > SVI_PARAM_ABS_MAX {
                return Err(PricingError::OutOfRange {
                    input: Input::SviParam,
                    min: -SVI_PARAM_ABS_MAX,
                    max: SVI_PARAM_ABS_MAX,
                });
            }
        }
        if b < 0.0 {
            return violation(SviConstraint::SlopeNegative);
        }
        if rho.abs() >= 1.0 {
            return violation(SviConstraint::CorrelationOutOfRange);
        }
        if sigma <= 0.0 {
            return violation(SviConstraint::CurvatureNotPositive);
        }
        let params = Self {
            a,
            b,
            rho,
            m,
            sigma,
        };
        if params.variance_min() < 0.0 {
            return violation(SviConstraint::MinimumVarianceNegative);
        }
        Ok(params)
    }

    /// Level `a`.
    pub const fn a(&self) -> f64 {
        self.a
    }

    /// Slope `b`.
    pub const fn b(&self) -> f64 {
        self.b
    }

    /// Correlation `rho`.
    pub const fn rho(&self) -> f64 {
        self.rho
    }

    /// Translation `m`.
    pub const fn m(&self) -> f64 {
        self.m
    }

    /// Curvature `sigma`.
    pub const fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Minimum total variance over all `k`: `a + b sigma sqrt(1 - rho^2)`.
    pub fn variance_min(&self) -> f64 {
        self.a + self.b * self.sigma * libm::sqrt(1.0 - self.rho * self.rho)
    }

    /// Total variance `w(k)`; errors for a non-finite `k` or `|k| > LOG_MONEYNESS_ABS_MAX`.
    pub fn total_variance(&self, k: f64) -> Result<f64, PricingError> {
        check_log_moneyness(k)?;
        Ok(self.total_variance_unchecked(k))
    }

    /// Implied volatility `sqrt(w(k) / time_years)` for a positive finite `time_years`.
    pub fn vol(&self, k: f64, time_years: f64) -> Result<f64, PricingError> {
        crate::error::check_positive(time_years, Input::TimeYears)?;
        let w = self.total_variance(k)?;
        crate::error::check_output(libm::sqrt(w / time_years), Input::Vol)
    }

    /// Gatheral-Jacquier's `g(k)`; the smile is free of butterfly arbitrage where `g >= 0`.
    /// Where `w(k) = 0` the factor is undefined and reported as negative infinity's stand-in,
    /// `f64::MIN`, so it counts as a violation without being NaN.
    pub fn butterfly_density(&self, k: f64) -> Result<f64, PricingError> {
        check_log_moneyness(k)?;
        Ok(self.butterfly_density_unchecked(k))
    }

    pub(crate) fn total_variance_unchecked(&self, k: f64) -> f64 {
        let x = k - self.m;
        let w = self.a + self.b * (self.rho * x + libm::sqrt(x * x + self.sigma * self.sigma));
        // Rounding can put w a few ulps under zero when the minimum variance is zero.
        w.max(0.0)
    }

    pub(crate) fn butterfly_density_unchecked(&self, k: f64) -> f64 {
        let w = self.total_variance_unchecked(k);
        if w <= 0.0 {
            return f64::MIN;
        }
        let x = k - self.m;
        let root = libm::sqrt(x * x + self.sigma * self.sigma);
        let w1 = self.b * (self.rho + x / root);
        let w2 = self.b * self.sigma * self.sigma / (root * root * root);
        let first = 1.0 - k * w1 / (2.0 * w);
        let g = first * first - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2;
        if g.is_finite() { g } else { f64::MIN }
    }
}

pub(crate) fn check_log_moneyness(k: f64) -> Result<f64, PricingError> {
    crate::error::check_range(
        k,
        Input::LogMoneyness,
        -LOG_MONEYNESS_ABS_MAX,
        LOG_MONEYNESS_ABS_MAX,
    )
}
