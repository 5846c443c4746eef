//! Per-contract scenario P&L vectors: one instrument revalued over the whole grid, once per
//! valuation, shared by every account that holds it.
//!
//! Owns: [`ContractVector`] (integer micro-USDC P&L of one long contract per scenario, its
//! short-option add-on and its convexity allowance) and [`Valuation`] (the index and time all
//! vectors of one underlying are computed at).
//! Never: mixes valuations (a vector remembers its basis; an account refuses a vector from
//! another basis with [`RiskError::BasisMismatch`]); returns NaN.
//! Bounds: one entry per grid scenario (at most [`crate::SCENARIOS_MAX`]); each entry within
//! `+-2^53` micro-USDC.
//!
//! Cost: one Black-76 price per scenario (39 on the default grid) plus one for the base, so
//! the exchange computes each listed instrument's vector once per price update, and an
//! account's requirement after a fill costs a vector addition, not a revaluation.

use crate::error::RiskError;
use crate::grid::{ScenarioGrid, VolShift};
use crate::model::{FRAC_1_SQRT_2PI, InstrumentModel, check_vol, shifted_vol, vol_scale};
use crate::params::{BPS, PortfolioMarginParams};
use crate::rounding::{charge_micros_ceil, contract_micros};
use bulwark_pricing::{Black76, TIME_YEARS_MIN};
use bulwark_types::num::UNDERLYING_SCALE;
use bulwark_types::num::{mul_div_ceil, mul_div_floor};
use bulwark_types::{AssetCode, InstrumentSpec, UnitPrice};

/// What every contract vector of one underlying is computed at: the index and the valuation
/// time (for time to expiry). Vols are per instrument.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Valuation {
    pub underlying: AssetCode,
    /// Index price, micro-USDC per unit; positive.
    pub index: UnitPrice,
    /// Valuation time, milliseconds since the Unix epoch (a block's time).
    pub time_ms: u64,
}

impl Valuation {
    /// The guard band's upper index: `floor(index x (1 + h))`.
    pub(crate) fn index_high(&self, band_bps: u32) -> i64 {
        let high = mul_div_floor(
            i128::from(self.index.micros()),
            i128::from(BPS + band_bps),
            i128::from(BPS),
        );
        i64::try_from(high).unwrap_or(i64::MAX)
    }

    /// The guard band's lower index: `ceil(index x (1 - h))`.
    pub(crate) fn index_low(&self, band_bps: u32) -> i64 {
        let low = mul_div_ceil(
            i128::from(self.index.micros()),
            i128::from(BPS - band_bps),
            i128::from(BPS),
        );
        i64::try_from(low).expect("below the index")
    }
}

/// What vectors must share to be added: the valuation and the grid.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Basis {
    pub valuation: Valuation,
    pub range_bps: u32,
    pub len: usize,
}

/// Scenario P&L of one long contract of one instrument, with its charges, in micro-USDC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractVector {
    pub(crate) basis: Basis,
    /// P&L of one long contract per scenario, in grid order.
    pub(crate) pnl: Vec<i64>,
    /// Add-on per short contract at the valuation's index (0 for perpetuals).
    pub(crate) addon_short: i64,
    /// Add-on per short contract at the top of the guard band.
    pub(crate) addon_short_band: i64,
    /// Bound on how far one long contract's P&L can sag below the straight line between
    /// neighbouring guard points (0 for perpetuals, which are linear).
    pub(crate) convexity_long: i64,
}

impl ContractVector {
    /// P&L of one long contract per scenario, micro-USDC, in grid order.
    pub fn pnl(&self) -> &[i64] {
        &self.pnl
    }

    /// Add-on charged per short contract, micro-USDC.
    pub const fn addon_short(&self) -> i64 {
        self.addon_short
    }

    /// The valuation this vector was computed at.
    pub const fn valuation(&self) -> &Valuation {
        &self.basis.valuation
    }

    /// Revalues one contract of `spec` over `grid` at `valuation`, with implied vol `vol`
    /// (ignored for perpetuals). Errors: terms that fail their check; another underlying; a
    /// non-positive index; a vol that is not finite or outside the pricing domain (options); a
    /// model failure; a value beyond `2^53` micro-USDC.
    pub fn compute(
        params: &PortfolioMarginParams,
        grid: &ScenarioGrid,
        valuation: &Valuation,
        spec: &InstrumentSpec,
        vol: f64,
    ) -> Result<Self, RiskError> {
        spec.check()?;
        if spec.underlying() != valuation.underlying {
            return Err(RiskError::UnderlyingMismatch);
        }
        if !valuation.index.is_positive() {
            return Err(RiskError::IndexNotPositive);
        }
        let model = InstrumentModel::new(spec, valuation.time_ms);
        let multiplier = spec.multiplier.e8() as f64 / UNDERLYING_SCALE as f64;
        let index = valuation.index.micros() as f64;
        let basis = Basis {
            valuation: *valuation,
            range_bps: grid.range_bps(),
            len: grid.len(),
        };
        let InstrumentModel::Option { time_ms, .. } = model else {
            let pnl = grid
                .scenarios()
                .iter()
                .map(|s| contract_micros(s.index_move * index * multiplier, "perpetual P&L"))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Self {
                basis,
                pnl,
                addon_short: 0,
                addon_short_band: 0,
                convexity_long: 0,
            });
        };
        let vol = check_vol(vol)?;
        let scale = vol_scale(params, time_ms);
        let vols = [
            shifted_vol(params, vol, scale, VolShift::Down),
            vol,
            shifted_vol(params, vol, scale, VolShift::Up),
        ];
        debug_assert!(
            vols[0] <= vols[1] && vols[1] <= vols[2],
            "shifts are ordered"
        );
        let pnl = option_pnl(grid, &model, index, vols, multiplier)?;
        let convexity = convexity_bound(params, grid, &model, index, vols[0]) * multiplier;
        let vector = Self {
            basis,
            pnl,
            addon_short: short_addon(params, spec, valuation.index.micros())?,
            addon_short_band: short_addon(params, spec, valuation.index_high(grid.band_bps()))?,
            convexity_long: charge_micros_ceil(convexity, "convexity allowance")?,
        };
        assert_eq!(vector.pnl.len(), grid.len(), "one entry per scenario");
        Ok(vector)
    }
}

/// One long contract's P&L per scenario, from the option's value at the shifted index and vol
/// (`vols`: down, unchanged, up) less its base value.
fn option_pnl(
    grid: &ScenarioGrid,
    model: &InstrumentModel,
    index: f64,
    vols: [f64; 3],
    multiplier: f64,
) -> Result<Vec<i64>, RiskError> {
    let base = model.value(index, vols[1])?;
    // One Black-76 model per vol, at the base index; each scenario prices its moved index
    // from it at `ln(index / K) + ln(1 + move)` (expiring options, valued at intrinsic, go
    // through the model instead).
    let priced = match *model {
        InstrumentModel::Option {
            kind,
            strike,
            time_years,
            ..
        } if time_years >= TIME_YEARS_MIN => Some((
            kind,
            libm::log(index / strike),
            [
                Black76::new(index, strike, time_years, vols[0], 0.0)?,
                Black76::new(index, strike, time_years, vols[1], 0.0)?,
                Black76::new(index, strike, time_years, vols[2], 0.0)?,
            ],
        )),
        _ => None,
    };
    let mut pnl = Vec::with_capacity(grid.len());
    for scenario in grid.scenarios() {
        // The unmoved, unshifted scenario is the base itself: P&L exactly zero, no pricing.
        if scenario.index_move == 0.0 && scenario.vol_shift == VolShift::Unchanged {
            pnl.push(0);
            continue;
        }
        let shift = match scenario.vol_shift {
            VolShift::Down => 0,
            VolShift::Unchanged => 1,
            VolShift::Up => 2,
        };
        let forward = index * (1.0 + scenario.index_move);
        let value = match &priced {
            Some((kind, base_x, models)) => models[shift].price_absolute_at_forward(
                *kind,
                forward,
                base_x + scenario.log_growth,
            )?,
            None => model.value(forward, vols[shift])?,
        };
        pnl.push(contract_micros((value - base) * multiplier, "option P&L")?);
    }
    Ok(pnl)
}

/// The add-on per short contract at `index_micros`: `bps x index x multiplier`, rounded up.
/// Exact in `i128`: bps <= 1e4, index < 2^63 and a checked multiplier <= 1e12.
fn short_addon(
    params: &PortfolioMarginParams,
    spec: &InstrumentSpec,
    index_micros: i64,
) -> Result<i64, RiskError> {
    let product = i128::from(params.short_option_addon_bps)
        * i128::from(index_micros)
        * i128::from(spec.multiplier.e8());
    let micros = mul_div_ceil(product, 1, i128::from(BPS) * i128::from(UNDERLYING_SCALE));
    debug_assert!(micros >= 0, "an add-on is a charge");
    i64::try_from(micros).map_err(|_| RiskError::Overflow("short option add-on"))
}

/// How far below the chord between neighbouring guard points one long unit's value can sag,
/// micro-USDC per unit.
///
/// On an interval of width `W` starting at index `F_low`, a convex value with second derivative
/// at most `G` lies at most `G W^2 / 8` below its chord; Black-76 gamma is at most
/// `1 / (sqrt(2 pi) F vol sqrt(T))` (the density's peak), largest at the lowest index and the
/// lowest vol the grid uses. A convex value whose slope changes by at most 1 over the interval
/// (delta lies in [0, 1] for a call, [-1, 0] for a put) lies at most `W / 4` below it. The
/// intervals are a core step (`step x S`, from `S (1 - range - step)`) and the two guard
/// extreme intervals (`2 h (1 -+ e) S`, from `S (1 - h)(1 -+ e)`).
fn convexity_bound(
    params: &PortfolioMarginParams,
    grid: &ScenarioGrid,
    model: &InstrumentModel,
    index: f64,
    vol_min: f64,
) -> f64 {
    let InstrumentModel::Option { time_years, .. } = *model else {
        return 0.0;
    };
    let range = f64::from(grid.range_bps()) / f64::from(BPS);
    let step = range / f64::from(grid.move_points() / 2);
    let band = f64::from(grid.band_bps()) / f64::from(BPS);
    let extreme = f64::from(grid.range_bps()) * f64::from(params.extreme_multiple_bps) / 1e8;
    let intervals = [
        (step * index, index * (1.0 - range - step)),
        (
            2.0 * band * (1.0 - extreme) * index,
            index * (1.0 - band) * (1.0 - extreme),
        ),
        (
            2.0 * band * (1.0 + extreme) * index,
            index * (1.0 - band) * (1.0 + extreme),
        ),
    ];
    let sqrt_t = libm::sqrt(time_years);
    let mut bound: f64 = 0.0;
    for (width, low) in intervals {
        let slope_bound = width / 4.0;
        let gap = if time_years < TIME_YEARS_MIN {
            slope_bound
        } else {
            let gamma_max = FRAC_1_SQRT_2PI / (low * vol_min * sqrt_t);
            (gamma_max * width * width / 8.0).min(slope_bound)
        };
        bound = bound.max(gap);
    }
    debug_assert!(
        bound.is_finite() && bound >= 0.0,
        "a finite, non-negative bound"
    );
    bound
}
