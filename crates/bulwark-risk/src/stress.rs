//! Stress tests: a portfolio revalued under scenario sets, with its value change, margin
//! requirement and greeks per scenario, as serde-serializable reports.
//!
//! Owns: the portfolio a stress test takes ([`StressPortfolio`], [`VolSurface`]), user and
//! historical shocks ([`Shock`]), the scenario sets ([`ScenarioSet`]) and the report
//! ([`StressReport`], [`StressRow`], [`PortfolioGreeks`]); [`stress`] runs one set.
//! Never: reads files or prints (the command line does); returns NaN (every input is validated,
//! every sum checked finite).
//! Bounds: at most [`STRESS_POSITIONS_MAX`] positions, [`SHOCKS_MAX`] shocks and
//! [`SHOCK_NAME_BYTES_MAX`] bytes per shock name; index moves in `[-95%, +1000%]`, vol moves in
//! `[-1000, +1000]` points; a shock never takes a vol below [`STRESS_VOL_FLOOR`] (or below
//! the current vol, if lower) nor above `VOL_MAX`.
//!
//! Per scenario: the index moves to `S1 = S0 (1 + move)` and every option's vol moves (by the
//! grid's expiry-scaled relative shift, or by a number of vol points); the value change is
//! `sum qty x multiplier x (V(S1, vol1) - V(S0, vol0))`, rounded down to a micro-USDC; the
//! requirement is the portfolio margin recomputed at the shocked index and vols (same range);
//! the greeks are taken at the shocked state. Equity is `collateral + value of the positions`,
//! where `collateral` is the account's cash (premiums already paid or received), as the exchange
//! counts it.

use crate::contract::Valuation;
use crate::error::RiskError;
use crate::grid::VolShift;
use crate::margin::PortfolioMargin;
use crate::model::{InstrumentModel, check_vol, shifted_vol, vol_scale};
use crate::rounding::value_micros_floor;
use crate::vector::ScenarioVector;
use bulwark_pricing::VOL_MAX;
use bulwark_types::num::UNDERLYING_SCALE;
use bulwark_types::{AssetCode, InstrumentKind, InstrumentSpec, Money, Qty, UnitPrice};

/// Most positions in a stress portfolio.
pub const STRESS_POSITIONS_MAX: usize = 1_000;
/// Most shocks in one user set.
pub const SHOCKS_MAX: usize = 1_000;
/// Longest shock name, bytes.
pub const SHOCK_NAME_BYTES_MAX: usize = 128;
/// Lowest vol a shock can leave an option at: 1%.
pub const STRESS_VOL_FLOOR: f64 = 0.01;

/// One point of a vol surface: an expiry, and a strike or the whole expiry.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct VolPoint {
    /// Expiry, milliseconds since the Unix epoch (as [`InstrumentKind::Option`] has it).
    pub expiry_ms: u64,
    /// The strike this vol is for; `None` for every strike of the expiry without its own.
    pub strike: Option<UnitPrice>,
    /// Implied vol, decimal (0.6 is 60%).
    pub vol: f64,
}

/// Implied vols of a stress portfolio's options.
#[derive(Clone, Debug, PartialEq)]
pub enum VolSurface {
    /// One vol for every option.
    Flat(f64),
    /// An option takes the point with its expiry and strike, else the one with its expiry
    /// and no strike; without either it is an error ([`RiskError::VolMissing`]).
    Points(Vec<VolPoint>),
}

impl VolSurface {
    fn vol_of(&self, expiry_ms: u64, strike: UnitPrice) -> Result<f64, RiskError> {
        let vol = match self {
            Self::Flat(vol) => *vol,
            Self::Points(points) => {
                let exact = points
                    .iter()
                    .find(|p| p.expiry_ms == expiry_ms && p.strike == Some(strike));
                let expiry = || {
                    points
                        .iter()
                        .find(|p| p.expiry_ms == expiry_ms && p.strike.is_none())
                };
                exact
                    .or_else(expiry)
                    .ok_or(RiskError::VolMissing { expiry_ms })?
                    .vol
            }
        };
        check_vol(vol)
    }
}

/// One position of a stress portfolio.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct StressPosition {
    pub spec: InstrumentSpec,
    /// Signed contracts (short < 0).
    pub qty: Qty,
}

/// A portfolio in one underlying, as a stress test takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct StressPortfolio {
    pub underlying: AssetCode,
    pub positions: Vec<StressPosition>,
    /// The account's cash, micro-USDC (premiums already paid or received).
    pub collateral: Money,
    /// Index price, micro-USDC per unit; positive.
    pub index: UnitPrice,
    /// Valuation time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub vols: VolSurface,
}

/// A user's or a historical shock: the index moves by a percentage and every option's vol by a
/// number of vol points.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shock {
    pub name: String,
    /// Index move in percent: -39.0 is -39%. In `[-95, 1000]`.
    pub index_move_pct: f64,
    /// Vol move in vol points, added to each option's vol: +100.0 takes 60% to 160%. In
    /// `[-1000, 1000]`.
    pub vol_move_points: f64,
    /// Where the numbers come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Which scenarios to run.
#[derive(Clone, Debug, PartialEq)]
pub enum ScenarioSet {
    /// The margin grid's scenarios (core, extreme; not the guard ones), each with its cover.
    MarginGrid,
    /// The user's shocks.
    Shocks(Vec<Shock>),
    /// [`crate::historical_shocks`].
    Historical,
}

/// How a row moved vols.
#[derive(Copy, Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolMove {
    /// By this many vol points.
    Points(f64),
    /// By the grid's relative, expiry-scaled shift.
    Grid(VolShift),
}

/// Portfolio greeks in trading units.
#[derive(Copy, Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PortfolioGreeks {
    /// Units of underlying (BTC) per unit move of the index: the delta-equivalent position.
    pub delta: f64,
    /// Change of delta per 1 USDC move of the index, units of underlying.
    pub gamma: f64,
    /// USDC per one vol point (0.01) up in every option's vol.
    pub vega: f64,
    /// USDC per calendar day passing, index and vols fixed.
    pub theta: f64,
}

/// One scenario's outcome. Money fields are micro-USDC.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StressRow {
    pub scenario: String,
    pub index_move_pct: f64,
    pub vol_move: VolMove,
    /// Part of this scenario's loss the margin grid counts, percent (100 but for extremes).
    pub cover_pct: f64,
    pub index_micros: i64,
    pub value_change_micros: i128,
    pub equity_micros: i128,
    pub initial_micros: i128,
    pub maintenance_micros: i128,
    /// Equity minus maintenance.
    pub excess_micros: i128,
    /// Equity below maintenance.
    pub liquidatable: bool,
    pub greeks: PortfolioGreeks,
}

/// A stress test's result: the unshocked portfolio and one row per scenario, in set order.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StressReport {
    pub underlying: String,
    /// The margin grid's range either way, bps.
    pub range_bps: u32,
    pub base: StressRow,
    pub rows: Vec<StressRow>,
}

/// One scenario as the runner applies it.
struct Move {
    name: String,
    index_move: f64,
    vol_move: VolMove,
    cover_bps: u32,
}

/// A validated position: its model, multiplier (units per contract) and vol.
struct Priced {
    spec: InstrumentSpec,
    qty: Qty,
    model: InstrumentModel,
    multiplier: f64,
    vol: f64,
    scale: f64,
}

/// Runs `set` on `portfolio`, margining with `margin` (its parameters and range).
pub fn stress(
    portfolio: &StressPortfolio,
    margin: &PortfolioMargin,
    set: &ScenarioSet,
) -> Result<StressReport, RiskError> {
    let priced = validate(portfolio, margin)?;
    let moves = moves_of(set, margin)?;
    let base_move = Move {
        name: "base".to_string(),
        index_move: 0.0,
        vol_move: VolMove::Points(0.0),
        cover_bps: crate::params::BPS,
    };
    let base = row(portfolio, margin, &priced, &base_move)?;
    let rows = moves
        .iter()
        .map(|m| row(portfolio, margin, &priced, m))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StressReport {
        underlying: portfolio.underlying.to_string(),
        range_bps: margin.grid().range_bps(),
        base,
        rows,
    })
}

fn validate(
    portfolio: &StressPortfolio,
    margin: &PortfolioMargin,
) -> Result<Vec<Priced>, RiskError> {
    if portfolio.positions.len() > STRESS_POSITIONS_MAX {
        return Err(RiskError::TooMany {
            what: "stress positions",
            count: portfolio.positions.len(),
            max: STRESS_POSITIONS_MAX,
        });
    }
    if !portfolio.index.is_positive() {
        return Err(RiskError::IndexNotPositive);
    }
    let mut priced = Vec::with_capacity(portfolio.positions.len());
    for position in &portfolio.positions {
        if position.spec.underlying() != portfolio.underlying {
            return Err(RiskError::UnderlyingMismatch);
        }
        let model = InstrumentModel::new(&position.spec, portfolio.time_ms);
        let (vol, scale) = match (position.spec.kind(), model) {
            (
                InstrumentKind::Option {
                    expiry_ms, strike, ..
                },
                InstrumentModel::Option { time_ms, .. },
            ) => (
                portfolio.vols.vol_of(expiry_ms, strike)?,
                vol_scale(margin.params(), time_ms),
            ),
            // Perpetuals carry no vol; any valid number keeps the contract vector's checks quiet.
            _ => (1.0, 1.0),
        };
        priced.push(Priced {
            spec: position.spec,
            qty: position.qty,
            model,
            multiplier: position.spec.multiplier.e8() as f64 / UNDERLYING_SCALE as f64,
            vol,
            scale,
        });
    }
    Ok(priced)
}

fn moves_of(set: &ScenarioSet, margin: &PortfolioMargin) -> Result<Vec<Move>, RiskError> {
    let grid = margin.grid();
    let shocks = match set {
        ScenarioSet::MarginGrid => {
            let scenarios = &grid.scenarios()[..grid.margin_len()];
            return Ok(scenarios
                .iter()
                .map(|s| Move {
                    name: format!(
                        "grid {:+.2}% vol {}",
                        s.index_move * 100.0,
                        match s.vol_shift {
                            VolShift::Down => "down",
                            VolShift::Unchanged => "unchanged",
                            VolShift::Up => "up",
                        }
                    ),
                    index_move: s.index_move,
                    vol_move: VolMove::Grid(s.vol_shift),
                    cover_bps: s.cover_bps,
                })
                .collect());
        }
        ScenarioSet::Shocks(shocks) => shocks.clone(),
        ScenarioSet::Historical => crate::historical::historical_shocks(),
    };
    if shocks.len() > SHOCKS_MAX {
        return Err(RiskError::TooMany {
            what: "shocks",
            count: shocks.len(),
            max: SHOCKS_MAX,
        });
    }
    shocks
        .into_iter()
        .map(|shock| {
            if shock.name.len() > SHOCK_NAME_BYTES_MAX {
                return Err(RiskError::TooMany {
                    what: "shock name bytes",
                    count: shock.name.len(),
                    max: SHOCK_NAME_BYTES_MAX,
                });
            }
            let index_move_pct = in_range("index_move_pct", shock.index_move_pct, -95.0, 1_000.0)?;
            let points = in_range("vol_move_points", shock.vol_move_points, -1_000.0, 1_000.0)?;
            Ok(Move {
                name: shock.name,
                index_move: index_move_pct / 100.0,
                vol_move: VolMove::Points(points),
                cover_bps: crate::params::BPS,
            })
        })
        .collect()
}

fn in_range(field: &'static str, value: f64, min: f64, max: f64) -> Result<f64, RiskError> {
    if !value.is_finite() || !(min..=max).contains(&value) {
        return Err(RiskError::ShockInvalid {
            field,
            value: if value.is_finite() { value } else { 0.0 },
            min,
            max,
        });
    }
    Ok(value)
}

fn row(
    portfolio: &StressPortfolio,
    margin: &PortfolioMargin,
    priced: &[Priced],
    shock: &Move,
) -> Result<StressRow, RiskError> {
    let index0 = portfolio.index.micros() as f64;
    let index1 = libm::round(index0 * (1.0 + shock.index_move));
    // Positive since moves are above -95%; at most 11 x i64::MAX before this check.
    if !(1.0..=i64::MAX as f64).contains(&index1) {
        return Err(RiskError::ValueOutOfRange {
            what: "shocked index",
        });
    }
    let valuation = Valuation {
        underlying: portfolio.underlying,
        index: UnitPrice::from_micros(index1 as i64),
        time_ms: portfolio.time_ms,
    };
    let revalued = revalue(margin, priced, &valuation, index0, shock.vol_move)?;
    let value0 = value_micros_floor(revalued.value0, "portfolio value")?;
    let value_change = i128::from(value_micros_floor(revalued.change, "value change")?);
    let requirement = margin.requirement(&revalued.account)?;
    let overflow = RiskError::Overflow("stress equity");
    let equity = portfolio
        .collateral
        .micros()
        .checked_add(i128::from(value0))
        .and_then(|e| e.checked_add(value_change))
        .ok_or(overflow)?;
    let maintenance = requirement.maintenance.micros();
    Ok(StressRow {
        scenario: shock.name.clone(),
        index_move_pct: shock.index_move * 100.0,
        vol_move: shock.vol_move,
        cover_pct: f64::from(shock.cover_bps) / 100.0,
        index_micros: valuation.index.micros(),
        value_change_micros: value_change,
        equity_micros: equity,
        initial_micros: requirement.initial.micros(),
        maintenance_micros: maintenance,
        excess_micros: equity.checked_sub(maintenance).ok_or(overflow)?,
        liquidatable: equity < maintenance,
        greeks: revalued.greeks,
    })
}

/// A portfolio revalued at one shocked state: its account vector there, its value before
/// (micro-USDC, unrounded), the change, and the greeks there.
struct Revalued {
    account: ScenarioVector,
    value0: f64,
    change: f64,
    greeks: PortfolioGreeks,
}

fn revalue(
    margin: &PortfolioMargin,
    priced: &[Priced],
    valuation: &Valuation,
    index0: f64,
    vol_move: VolMove,
) -> Result<Revalued, RiskError> {
    let index1 = valuation.index.micros() as f64;
    let mut account = margin.empty_account(*valuation);
    let (mut value0, mut change) = (0.0, 0.0);
    let mut greeks = PortfolioGreeks::default();
    for p in priced {
        let vol1 = match vol_move {
            VolMove::Grid(shift) => shifted_vol(margin.params(), p.vol, p.scale, shift),
            // A fall stops at the floor, or at the current vol if that is lower already.
            VolMove::Points(points) => (p.vol + points / 100.0)
                .max(STRESS_VOL_FLOOR.min(p.vol))
                .min(VOL_MAX),
        };
        let contract = margin.contract_vector(valuation, &p.spec, vol1)?;
        account.apply_fill(&contract, Qty::ZERO, p.qty)?;
        let size = p.qty.contracts() as f64 * p.multiplier;
        let before = p.model.value(index0, p.vol)?;
        let after = p.model.greeks(index1, vol1)?;
        value0 += size * before;
        change += size * (after.value - before);
        // Gamma per micro-USDC to per USDC; vega per 1.00 of vol to USDC per point; theta per
        // year to USDC per day.
        greeks.delta += size * after.delta;
        greeks.gamma += size * after.gamma * 1e6;
        greeks.vega += size * after.vega / 100.0 / 1e6;
        greeks.theta += size * after.theta / 365.0 / 1e6;
    }
    let finite = [greeks.delta, greeks.gamma, greeks.vega, greeks.theta]
        .iter()
        .all(|g| g.is_finite());
    if !finite {
        return Err(RiskError::ValueOutOfRange { what: "greeks" });
    }
    Ok(Revalued {
        account,
        value0,
        change,
        greeks,
    })
}

/// Rebuilds the account vector of a stress portfolio at its own (unshocked) state, for callers
/// that want the margin without a report.
pub fn portfolio_vector(
    portfolio: &StressPortfolio,
    margin: &PortfolioMargin,
) -> Result<ScenarioVector, RiskError> {
    let priced = validate(portfolio, margin)?;
    let valuation = Valuation {
        underlying: portfolio.underlying,
        index: portfolio.index,
        time_ms: portfolio.time_ms,
    };
    let mut account = margin.empty_account(valuation);
    for p in &priced {
        let contract = margin.contract_vector(&valuation, &p.spec, p.vol)?;
        account.apply_fill(&contract, Qty::ZERO, p.qty)?;
    }
    Ok(account)
}
