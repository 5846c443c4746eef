//! Static-arbitrage checks of fitted smiles: butterfly within an expiry, calendar across expiries.
//!
//! Owns: [`LogMoneynessGrid`], and the violation reports [`ButterflyViolation`] and
//! [`CalendarViolation`].
//! Never: repairs a smile or hides a violation; it reports every grid point that fails.
//! Bounds: at most [`GRID_POINTS_MAX`] grid points and [`EXPIRIES_MAX`] expiries per check, so a
//! report holds at most `GRID_POINTS_MAX * (EXPIRIES_MAX - 1)` entries.
//!
//! Butterfly: Gatheral and Jacquier (2014), "Arbitrage-free SVI volatility surfaces", Lemma 2.2:
//! the density implied by `w(k)` is non-negative iff
//! `g(k) = (1 - k w'/(2w))^2 - (w'^2/4)(1/w + 1/4) + w''/2 >= 0`.
//! Calendar: total variance at fixed log-moneyness must not decrease with expiry (their Lemma 2.1
//! for zero rates and dividends, i.e. in forward moneyness).

use crate::error::PricingError;
use crate::svi::{LOG_MONEYNESS_ABS_MAX, SviParams};

/// Most points in one grid. 1_001 points cost about 20 us per smile.
pub const GRID_POINTS_MAX: usize = 1_001;
/// Most expiries in one calendar check.
pub const EXPIRIES_MAX: usize = 64;
/// Total variance may fall by this much between expiries before it counts as a violation
/// (absorbs rounding, not arbitrage: 1e-12 of variance is 1e-6 vol points at one year).
pub const CALENDAR_VARIANCE_TOLERANCE: f64 = 1e-12;

/// Evenly spaced log-moneyness points `k_min, ..., k_max`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct LogMoneynessGrid {
    k_min: f64,
    k_max: f64,
    points: usize,
}

impl LogMoneynessGrid {
    /// Requires finite `k_min < k_max` within `+-LOG_MONEYNESS_ABS_MAX` and
    /// `2 <= points <= GRID_POINTS_MAX`.
    pub fn new(k_min: f64, k_max: f64, points: usize) -> Result<Self, PricingError> {
        let in_bound = |k: f64| k.is_finite() && k.abs() <= LOG_MONEYNESS_ABS_MAX;
        let valid = in_bound(k_min)
            && in_bound(k_max)
            && k_min < k_max
            && (2..=GRID_POINTS_MAX).contains(&points);
        if !valid {
            return Err(PricingError::InvalidGrid {
                k_min,
                k_max,
                points,
            });
        }
        Ok(Self {
            k_min,
            k_max,
            points,
        })
    }

    /// The `index`-th point (`index < points`); the last one is exactly `k_max`.
    pub(crate) fn point(&self, index: usize) -> f64 {
        assert!(index < self.points, "grid index in range");
        if index + 1 == self.points {
            return self.k_max;
        }
        let step = (self.k_max - self.k_min) / (self.points - 1) as f64;
        self.k_min + step * index as f64
    }

    /// Number of points.
    pub const fn points(&self) -> usize {
        self.points
    }
}

/// A grid point where the smile's implied density is negative.
#[derive(Copy, Clone, Debug, PartialEq, serde::Serialize)]
pub struct ButterflyViolation {
    /// Log-moneyness `ln(K/F)` of the grid point.
    pub log_moneyness: f64,
    /// `g(k)`, negative (`f64::MIN` where the total variance is zero).
    pub density: f64,
}

/// A grid point where a later expiry has less total variance than an earlier one.
#[derive(Copy, Clone, Debug, PartialEq, serde::Serialize)]
pub struct CalendarViolation {
    /// Log-moneyness `ln(K/F)` of the grid point.
    pub log_moneyness: f64,
    /// Time to the earlier expiry, in years.
    pub time_years_earlier: f64,
    /// Time to the later expiry, in years.
    pub time_years_later: f64,
    /// Total variance of the earlier expiry at this point.
    pub total_variance_earlier: f64,
    /// Total variance of the later expiry at this point (smaller: the violation).
    pub total_variance_later: f64,
}

/// Every grid point where `g(k) < 0`, in grid order.
pub fn butterfly_violations(
    params: &SviParams,
    grid: &LogMoneynessGrid,
) -> Vec<ButterflyViolation> {
    let mut violations = Vec::new();
    for index in 0..grid.points() {
        let k = grid.point(index);
        let density = params.butterfly_density_unchecked(k);
        if density < 0.0 {
            violations.push(ButterflyViolation {
                log_moneyness: k,
                density,
            });
        }
    }
    debug_assert!(violations.len() <= GRID_POINTS_MAX);
    violations
}

/// Every (consecutive expiry pair, grid point) where total variance falls with expiry by more than
/// [`CALENDAR_VARIANCE_TOLERANCE`]. `expiries` are `(time_years, params)` in any order; they are
/// compared in increasing time (ties keep input order). Non-positive or non-finite times error.
pub fn calendar_violations(
    expiries: &[(f64, SviParams)],
    grid: &LogMoneynessGrid,
) -> Result<Vec<CalendarViolation>, PricingError> {
    if expiries.len() > EXPIRIES_MAX {
        return Err(PricingError::TooManyExpiries {
            count: expiries.len(),
            max: EXPIRIES_MAX,
        });
    }
    for (time_years, _) in expiries {
        crate::error::check_positive(*time_years, crate::error::Input::TimeYears)?;
    }
    let mut sorted: Vec<&(f64, SviParams)> = expiries.iter().collect();
    // Stable sort on a total order: deterministic for equal times.
    sorted.sort_by(|left, right| left.0.total_cmp(&right.0));
    let mut violations = Vec::new();
    for pair in sorted.windows(2) {
        let (time_earlier, earlier) = pair[0];
        let (time_later, later) = pair[1];
        for index in 0..grid.points() {
            let k = grid.point(index);
            let w_earlier = earlier.total_variance_unchecked(k);
            let w_later = later.total_variance_unchecked(k);
            if w_later < w_earlier - CALENDAR_VARIANCE_TOLERANCE {
                violations.push(CalendarViolation {
                    log_moneyness: k,
                    time_years_earlier: *time_earlier,
                    time_years_later: *time_later,
                    total_variance_earlier: w_earlier,
                    total_variance_later: w_later,
                });
            }
        }
    }
    Ok(violations)
}
