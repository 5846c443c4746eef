//! The valuation model behind every scenario: Black-76 on the index for options, linear for
//! perpetuals, and the expiry-scaled volatility shocks.
//!
//! Owns: the per-unit value and greeks of one instrument at a given index and vol
//! ([`InstrumentModel`]), the vol-shock scale `sqrt(30 days / T)` clamped ([`vol_scale`]) and
//! the shifted vols ([`shifted_vol`]).
//! Never: returns NaN (inputs are validated; the pricing crate returns typed errors); calls a
//! platform float function.
//! Bounds: vols are clamped into the pricing crate's `[VOL_MIN, VOL_MAX]`; a time to expiry
//! below `TIME_YEARS_MIN` is valued at intrinsic.
//!
//! Conventions: prices and the index are in micro-USDC per unit of underlying. The forward of
//! every expiry is the index (no carry, rate 0), as for the USDC-settled options the exchange
//! lists against its index. Time to expiry is in 365-day years.

use crate::error::RiskError;
use crate::grid::VolShift;
use crate::params::{BPS, DAY_MS, PortfolioMarginParams, YEAR_MS};
use bulwark_pricing::{Black76, OptionKind, TIME_YEARS_MIN, VOL_MAX, VOL_MIN};
use bulwark_types::{InstrumentKind, InstrumentSpec, Right};

/// `1 / sqrt(2 pi)`: the peak of the standard normal density.
pub(crate) const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Thirty days in milliseconds: the tenor at which vol shocks have their nominal size.
const SHOCK_TENOR_MS: u64 = 30 * DAY_MS;

/// One instrument as the model sees it at a valuation time.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) enum InstrumentModel {
    Perpetual,
    Option {
        kind: OptionKind,
        /// Strike, micro-USDC per unit.
        strike: f64,
        /// Time to expiry in years; zero at or after expiry.
        time_years: f64,
        /// Time to expiry in milliseconds (saturating at zero).
        time_ms: u64,
    },
}

/// Price and sensitivities of one unit of underlying's worth of an instrument.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub(crate) struct UnitGreeks {
    /// Value, micro-USDC per unit.
    pub value: f64,
    /// `dV/dS`, units of underlying per unit.
    pub delta: f64,
    /// `d2V/dS2`, per micro-USDC.
    pub gamma: f64,
    /// `dV/dsigma`, micro-USDC per 1.00 of vol.
    pub vega: f64,
    /// `dV/dt`, micro-USDC per year.
    pub theta: f64,
}

impl InstrumentModel {
    pub(crate) fn new(spec: &InstrumentSpec, time_ms: u64) -> Self {
        match spec.kind() {
            InstrumentKind::Perpetual => Self::Perpetual,
            InstrumentKind::Option {
                expiry_ms,
                strike,
                right,
            } => {
                let remaining_ms = expiry_ms.saturating_sub(time_ms);
                Self::Option {
                    kind: match right {
                        Right::Call => OptionKind::Call,
                        Right::Put => OptionKind::Put,
                    },
                    strike: strike.micros() as f64,
                    time_years: remaining_ms as f64 / YEAR_MS as f64,
                    time_ms: remaining_ms,
                }
            }
        }
    }

    /// Value per unit at index `forward` and `vol`.
    pub(crate) fn value(&self, forward: f64, vol: f64) -> Result<f64, RiskError> {
        match *self {
            Self::Perpetual => Ok(forward),
            Self::Option {
                kind,
                strike,
                time_years,
                ..
            } => {
                if time_years < TIME_YEARS_MIN {
                    return Ok((kind.sign() * (forward - strike)).max(0.0));
                }
                // Absolute precision is what a P&L rounded to micro-USDC needs.
                Ok(Black76::new(forward, strike, time_years, vol, 0.0)?.price_absolute(kind)?)
            }
        }
    }

    /// Value and greeks per unit at index `forward` and `vol`.
    pub(crate) fn greeks(&self, forward: f64, vol: f64) -> Result<UnitGreeks, RiskError> {
        match *self {
            Self::Perpetual => Ok(UnitGreeks {
                value: forward,
                delta: 1.0,
                ..UnitGreeks::default()
            }),
            Self::Option {
                kind,
                strike,
                time_years,
                ..
            } => {
                if time_years < TIME_YEARS_MIN {
                    let in_the_money = kind.sign() * (forward - strike) > 0.0;
                    return Ok(UnitGreeks {
                        value: (kind.sign() * (forward - strike)).max(0.0),
                        delta: if in_the_money { kind.sign() } else { 0.0 },
                        ..UnitGreeks::default()
                    });
                }
                let g = Black76::new(forward, strike, time_years, vol, 0.0)?.greeks(kind)?;
                Ok(UnitGreeks {
                    value: g.price,
                    delta: g.delta,
                    gamma: g.gamma,
                    vega: g.vega,
                    theta: g.theta,
                })
            }
        }
    }
}

/// Checks a vol input: finite and inside the pricing domain.
pub(crate) fn check_vol(vol: f64) -> Result<f64, RiskError> {
    if !vol.is_finite() || !(VOL_MIN..=VOL_MAX).contains(&vol) {
        return Err(RiskError::VolInvalid {
            vol: if vol.is_finite() { vol } else { 0.0 },
            min: VOL_MIN,
            max: VOL_MAX,
        });
    }
    Ok(vol)
}

/// The vol-shock scale of an expiry `time_ms` away: `sqrt(30 days / T)`, clamped to
/// `[vol_scale_min, vol_scale_max]`; at or after expiry, the maximum.
///
/// Deribit's earlier rule scaled its vol shock by `sqrt(30 / days to expiry)`: short-dated
/// implied vol moves more than long-dated. The clamp keeps the shock finite near expiry and
/// non-zero far out.
pub fn vol_scale(params: &PortfolioMarginParams, time_ms: u64) -> f64 {
    let max = f64::from(params.vol_scale_max_bps) / f64::from(BPS);
    let min = f64::from(params.vol_scale_min_bps) / f64::from(BPS);
    if time_ms == 0 {
        return max;
    }
    libm::sqrt(SHOCK_TENOR_MS as f64 / time_ms as f64).clamp(min, max)
}

/// `vol` after `shift` at `scale`: `vol x (1 + up x scale)` or `vol x (1 - down x scale)`,
/// clamped into `[VOL_MIN, VOL_MAX]`.
pub fn shifted_vol(params: &PortfolioMarginParams, vol: f64, scale: f64, shift: VolShift) -> f64 {
    let factor = match shift {
        VolShift::Unchanged => return vol,
        VolShift::Up => 1.0 + f64::from(params.vol_up_bps) / f64::from(BPS) * scale,
        VolShift::Down => 1.0 - f64::from(params.vol_down_bps) / f64::from(BPS) * scale,
    };
    (vol * factor).clamp(VOL_MIN, VOL_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vol_scale_is_one_at_thirty_days_and_clamped() {
        let params = PortfolioMarginParams::defaults();
        assert_eq!(vol_scale(&params, 30 * DAY_MS), 1.0);
        assert_eq!(vol_scale(&params, 120 * DAY_MS), 0.5);
        assert_eq!(vol_scale(&params, 0), 3.0);
        assert_eq!(vol_scale(&params, DAY_MS), 3.0);
        assert_eq!(vol_scale(&params, 3_650 * DAY_MS), 0.25);
    }

    #[test]
    fn shifted_vols_follow_the_documented_factors() {
        let params = PortfolioMarginParams::defaults();
        assert_eq!(shifted_vol(&params, 0.6, 1.0, VolShift::Up), 0.6 * 1.4);
        assert_eq!(shifted_vol(&params, 0.6, 1.0, VolShift::Down), 0.6 * 0.75);
        assert_eq!(shifted_vol(&params, 0.6, 1.0, VolShift::Unchanged), 0.6);
        // At the largest scale the vol falls to a quarter.
        assert_eq!(shifted_vol(&params, 0.8, 3.0, VolShift::Down), 0.8 * 0.25);
    }
}
