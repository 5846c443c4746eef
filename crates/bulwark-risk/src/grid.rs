//! The scenario grid: which index moves and volatility shifts a portfolio is revalued under.
//!
//! Owns: [`ScenarioGrid`], the fixed order of its [`Scenario`]s, and the guard band around the
//! index that the account summary ([`crate::AccountSummary`]) relies on.
//! Never: depends on a portfolio (the grid is a function of the parameters and the range only),
//! or changes order (vectors are indexed by position in the grid).
//! Bounds: at most [`SCENARIOS_MAX`] scenarios (`3 x (MOVE_POINTS_MAX + 2) + 6`).
//!
//! Layout, with `n = (move_points - 1) / 2`, `step = range / n`, `e = range x extreme_multiple`:
//! 1. core, `3 x move_points` scenarios: moves `j x step` for `j = -n..=n`, each with the vol
//!    down, unchanged and up (in that order). Their loss counts in full.
//! 2. extreme, 2 scenarios: moves `-e` and `+e`, vol unchanged; loss counts at
//!    `extreme_cover_bps` (SPAN's 35%).
//! 3. guard core, 6 scenarios: moves `-(n+1) step` and `+(n+1) step`, three vols each.
//! 4. guard extreme, 4 scenarios: moves `(1-h)(1-e)-1`, `(1+h)(1-e)-1`, `(1-h)(1+e)-1`,
//!    `(1+h)(1+e)-1`, vol unchanged, where `h` is the guard band.
//!
//! Groups 1 and 2 make the requirement; 3 and 4 never count toward it. They let the account
//! summary bound what a fresh requirement would be anywhere in the band `index x (1 +- h)`,
//! with `h = floor(step / (1 + range))` in bps: for an index `S1` in the band, every core move
//! from `S1` lands between the extended grid's outermost points, and every extreme move from
//! `S1` lands between two guard extreme points.

use crate::error::RiskError;
use crate::params::{BPS, MOVE_POINTS_MAX, PortfolioMarginParams};

/// Most scenarios in a grid.
pub const SCENARIOS_MAX: usize = 3 * (MOVE_POINTS_MAX as usize + 2) + 6;

/// How a scenario moves implied volatility.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolShift {
    /// Down by `vol_down_bps` (relative) times the expiry's scale.
    Down,
    /// Unchanged.
    Unchanged,
    /// Up by `vol_up_bps` (relative) times the expiry's scale.
    Up,
}

/// What a scenario is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioRole {
    /// A grid move within the range; loss counts in full.
    Core,
    /// An extreme move; loss counts at the cover fraction.
    Extreme,
    /// One step beyond the range, for the account summary's guard only.
    GuardCore,
    /// An extreme move shifted by the guard band, for the account summary's guard only.
    GuardExtreme,
}

/// One scenario of the grid.
#[derive(Copy, Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scenario {
    /// Index move as a fraction: `-0.16` is -16%.
    pub index_move: f64,
    /// `ln(1 + index_move)`, computed once with the grid: a scenario's log-moneyness is the
    /// base's plus this, so pricing a contract's scenarios takes no logarithm each.
    pub log_growth: f64,
    pub vol_shift: VolShift,
    pub role: ScenarioRole,
    /// Part of this scenario's loss that counts toward the requirement, bps: 10_000 for core,
    /// `extreme_cover_bps` for extreme, 0 for guard scenarios.
    pub cover_bps: u32,
}

/// The scenarios of one price range, in the fixed order of the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioGrid {
    range_bps: u32,
    move_points: u8,
    band_bps: u32,
    scenarios: Vec<Scenario>,
}

const SHIFTS: [VolShift; 3] = [VolShift::Down, VolShift::Unchanged, VolShift::Up];

impl ScenarioGrid {
    /// The grid of `params` at a price range of `range_bps` either way, which must lie in
    /// `[range_min_bps, range_max_bps]`.
    pub fn new(params: &PortfolioMarginParams, range_bps: u32) -> Result<Self, RiskError> {
        params.check()?;
        if !(params.range_min_bps..=params.range_max_bps).contains(&range_bps) {
            return Err(RiskError::RangeOutOfBounds {
                range_bps,
                min: params.range_min_bps,
                max: params.range_max_bps,
            });
        }
        let n = i64::from(params.move_points / 2);
        let range = i64::from(range_bps);
        let bps = i64::from(BPS);
        let move_of = |j: i64| (j * range) as f64 / (n * bps) as f64;
        // h = floor(step / (1 + range)) in bps, step = range / n.
        let band_bps = u32::try_from(range * bps / (n * (bps + range))).expect("below range");
        let extreme = (u64::from(range_bps) * u64::from(params.extreme_multiple_bps)) as f64 / 1e8;
        let band = f64::from(band_bps) / f64::from(BPS);
        let mut scenarios = Vec::with_capacity(3 * usize::from(params.move_points) + 12);
        let core = |index_move: f64, vol_shift, role, cover_bps| Scenario {
            index_move,
            log_growth: libm::log1p(index_move),
            vol_shift,
            role,
            cover_bps,
        };
        for j in -n..=n {
            for shift in SHIFTS {
                scenarios.push(core(move_of(j), shift, ScenarioRole::Core, BPS));
            }
        }
        for index_move in [-extreme, extreme] {
            scenarios.push(core(
                index_move,
                VolShift::Unchanged,
                ScenarioRole::Extreme,
                params.extreme_cover_bps,
            ));
        }
        for j in [-(n + 1), n + 1] {
            for shift in SHIFTS {
                scenarios.push(core(move_of(j), shift, ScenarioRole::GuardCore, 0));
            }
        }
        for (e, h) in [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)] {
            let index_move = (1.0 + h * band) * (1.0 + e * extreme) - 1.0;
            scenarios.push(core(
                index_move,
                VolShift::Unchanged,
                ScenarioRole::GuardExtreme,
                0,
            ));
        }
        assert!(
            scenarios.len() <= SCENARIOS_MAX,
            "bounded by MOVE_POINTS_MAX"
        );
        assert!(
            scenarios.iter().all(|s| s.index_move > -1.0),
            "check() keeps every scenario's index positive"
        );
        Ok(Self {
            range_bps,
            move_points: params.move_points,
            band_bps,
            scenarios,
        })
    }

    /// The price range either way, bps.
    pub const fn range_bps(&self) -> u32 {
        self.range_bps
    }

    /// Index moves within the range (odd).
    pub const fn move_points(&self) -> u8 {
        self.move_points
    }

    /// Half-width of the guard band around the index, bps.
    pub const fn band_bps(&self) -> u32 {
        self.band_bps
    }

    /// Every scenario, in the order of the module doc.
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// Number of scenarios (the length of every vector on this grid).
    pub fn len(&self) -> usize {
        self.scenarios.len()
    }

    /// A grid is never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.scenarios.is_empty()
    }

    /// Scenarios that count toward the requirement: core and extreme.
    pub fn margin_len(&self) -> usize {
        3 * usize::from(self.move_points) + 2
    }

    /// Position of the core scenario `j` steps from zero (`-n..=n`) with `shift`.
    pub fn core_index(&self, j: i32, shift: VolShift) -> usize {
        let n = i32::from(self.move_points / 2);
        assert!((-n..=n).contains(&j), "core step within the range");
        let v = match shift {
            VolShift::Down => 0,
            VolShift::Unchanged => 1,
            VolShift::Up => 2,
        };
        usize::try_from(j + n).expect("non-negative") * 3 + v
    }
}
