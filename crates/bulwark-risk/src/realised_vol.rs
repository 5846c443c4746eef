//! An exponentially weighted estimate of the index's realised volatility, and the adaptive
//! price range of the margin grid that follows from it.
//!
//! Owns: [`RealisedVol`], a small integer state updated once per index print, and the rule
//! from its variance to the grid's range ([`RealisedVol::range_bps`]).
//! Never: stores a float (the state is an integer variance, so snapshots and digests stay
//! integer); uses a platform float function (log, exp2 and sqrt are `libm`'s); lets one print
//! make the state non-finite (a sample's contribution is capped).
//! Bounds: the variance lies in `[0, sample_max^2]`; the range in
//! `[range_min_bps, range_max_bps]`.
//!
//! The update, for a sample of index `S` taken `dt` after the previous sample `S0`:
//! `r = ln(S / S0)`, `x = min(r^2 / dt_years, sample_max^2)` (an annualised variance),
//! `alpha = 1 - 2^(-dt / half_life)`, `var <- var + alpha (x - var)`. Weights decay with time,
//! not with the number of prints, so irregular block times weigh correctly. Prints closer than
//! `realised_vol_sample_ms` to the last sample are ignored (the estimator samples the index).
//! The range is `range_sigmas x sqrt(var / 365)` (daily standard deviations), rounded up to a
//! basis point and clamped.

use crate::error::RiskError;
use crate::params::{BPS, PortfolioMarginParams, YEAR_MS};
use bulwark_types::UnitPrice;

/// Fixed-point scale of the stored annualised variance.
const VARIANCE_SCALE: f64 = 1e12;

/// Realised volatility of one index, updated per print. Integer state: replicated and
/// snapshotted as it is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RealisedVol {
    /// Annualised variance times 1e12.
    variance_e12: u64,
    /// The last sample taken: index and time.
    sample: Option<(UnitPrice, u64)>,
    /// Time of the last print seen, to refuse prints that go back in time.
    print_last_ms: Option<u64>,
}

impl RealisedVol {
    /// A fresh estimator at `realised_vol_initial_bps`, with no sample yet.
    pub fn new(params: &PortfolioMarginParams) -> Result<Self, RiskError> {
        params.check()?;
        let vol = f64::from(params.realised_vol_initial_bps) / f64::from(BPS);
        Ok(Self {
            variance_e12: variance_to_e12(vol * vol),
            sample: None,
            print_last_ms: None,
        })
    }

    /// Restores a state from its parts (for snapshots), refusing impossible ones.
    pub fn from_parts(
        params: &PortfolioMarginParams,
        variance_e12: u64,
        sample: Option<(UnitPrice, u64)>,
        print_last_ms: Option<u64>,
    ) -> Result<Self, RiskError> {
        params.check()?;
        let cap = f64::from(params.realised_vol_sample_max_bps) / f64::from(BPS);
        if variance_e12 > variance_to_e12(cap * cap) {
            return Err(RiskError::ValueOutOfRange {
                what: "realised variance",
            });
        }
        if let Some((index, sample_ms)) = sample {
            if !index.is_positive() {
                return Err(RiskError::IndexNotPositive);
            }
            let previous_ms = print_last_ms.unwrap_or(0);
            if sample_ms > previous_ms {
                return Err(RiskError::TimeBackwards {
                    time_ms: previous_ms,
                    previous_ms: sample_ms,
                });
            }
        }
        Ok(Self {
            variance_e12,
            sample,
            print_last_ms,
        })
    }

    /// The state's parts: variance (x 1e12), last sample, last print time.
    pub const fn parts(&self) -> (u64, Option<(UnitPrice, u64)>, Option<u64>) {
        (self.variance_e12, self.sample, self.print_last_ms)
    }

    /// Takes one index print. Returns whether it was used as a sample. Errors (the state is then
    /// unchanged): parameters that fail their check; a non-positive index; a time before the
    /// previous print.
    pub fn update(
        &mut self,
        params: &PortfolioMarginParams,
        index: UnitPrice,
        time_ms: u64,
    ) -> Result<bool, RiskError> {
        params.check()?;
        if !index.is_positive() {
            return Err(RiskError::IndexNotPositive);
        }
        if let Some(previous_ms) = self.print_last_ms {
            if time_ms < previous_ms {
                return Err(RiskError::TimeBackwards {
                    time_ms,
                    previous_ms,
                });
            }
        }
        self.print_last_ms = Some(time_ms);
        let Some((index_last, sample_ms)) = self.sample else {
            self.sample = Some((index, time_ms));
            return Ok(false);
        };
        let dt_ms = time_ms - sample_ms;
        if dt_ms < params.realised_vol_sample_ms {
            return Ok(false);
        }
        let r = libm::log(index.micros() as f64 / index_last.micros() as f64);
        let dt_years = dt_ms as f64 / YEAR_MS as f64;
        let cap = f64::from(params.realised_vol_sample_max_bps) / f64::from(BPS);
        // r is at most ln(2^63) in magnitude and dt_years at least 3e-8: finite.
        let sample = (r * r / dt_years).min(cap * cap);
        let alpha =
            1.0 - libm::exp2(-(dt_ms as f64) / params.realised_vol_half_life_ms.max(1) as f64);
        let variance = self.variance();
        let updated = variance + alpha * (sample - variance);
        // A convex combination of two values in [0, cap^2]; the clamp only absorbs the last bit
        // of rounding.
        debug_assert!((0.0..=1.0).contains(&alpha), "alpha is a weight");
        self.variance_e12 = variance_to_e12(updated.clamp(0.0, cap * cap));
        self.sample = Some((index, time_ms));
        Ok(true)
    }

    /// Annualised variance.
    pub fn variance(&self) -> f64 {
        self.variance_e12 as f64 / VARIANCE_SCALE
    }

    /// Annualised volatility in basis points, rounded to nearest.
    pub fn vol_bps(&self) -> u32 {
        let bps = libm::round(libm::sqrt(self.variance()) * f64::from(BPS));
        // The variance is at most 1e4 (10_000% vol): 1e6 bps fits u32.
        bps as u32
    }

    /// The grid's price range for this realised vol: `range_sigmas` daily standard deviations,
    /// rounded up to a basis point, clamped to `[range_min_bps, range_max_bps]`.
    pub fn range_bps(&self, params: &PortfolioMarginParams) -> u32 {
        let daily = libm::sqrt(self.variance() / 365.0);
        let sigmas = f64::from(params.range_sigmas_bps) / f64::from(BPS);
        let range = libm::ceil(sigmas * daily * f64::from(BPS));
        let clamped = range.clamp(
            f64::from(params.range_min_bps),
            f64::from(params.range_max_bps),
        );
        // Clamped into u32 bounds above.
        clamped as u32
    }
}

fn variance_to_e12(variance: f64) -> u64 {
    debug_assert!(
        variance.is_finite() && variance >= 0.0,
        "variance is finite"
    );
    // Variance <= 1e4 by the cap (10_000% vol), so the product stays below 2^63.
    libm::round(variance * VARIANCE_SCALE) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_initial_vol_and_the_range_floor() {
        let params = PortfolioMarginParams::defaults();
        let rv = RealisedVol::new(&params).unwrap();
        assert_eq!(rv.vol_bps(), 6_000);
        // 4 x 0.6 / sqrt(365) = 12.6% < 16%.
        assert_eq!(rv.range_bps(&params), 1_600);
    }
}
