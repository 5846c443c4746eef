//! Margin portfolios on a scenario grid, keep account risk current fill by fill, screen accounts
//! for liquidation cheaply, and stress-test portfolios.
//!
//! Status: ALPHA. Parameters and report fields may still change. `bulwark-exchange` runs its
//! portfolio margin on this crate.
//!
//! # What it offers
//! - [`PortfolioMarginParams`]: every parameter, with `defaults()` and their sources, and a
//!   `check()` returning [`ParamsError`].
//! - [`ScenarioGrid`]: index moves over `+-range` (9 points by default, Deribit's) times vol up,
//!   unchanged and down; two extreme moves counted at 35% (SPAN's cover); guard scenarios for
//!   the account summary.
//! - [`RealisedVol`]: an exponentially weighted realised-vol estimate of the index, in integers,
//!   and the adaptive range that follows from it.
//! - [`ContractVector`]: one instrument revalued over the grid (Black-76 for options, linear for
//!   perpetuals), in integer micro-USDC per contract.
//! - [`ScenarioVector`]: an account's scenario P&L, updated after a fill in O(scenarios)
//!   ([`ScenarioVector::apply_fill`]) or rebuilt from positions ([`ScenarioVector::rebuild`]);
//!   both give the same integers.
//! - [`PortfolioMargin`]: the engine of one underlying and range: contract vectors, the
//!   [`PortfolioRequirement`] of an account vector, and its [`AccountSummary`].
//! - [`AccountSummary`] and [`sweep`]: three integers per account that make the block's
//!   liquidation screen two comparisons per account.
//! - [`stress`]: a [`StressPortfolio`] under a [`ScenarioSet`] (the margin grid, a user's
//!   [`Shock`]s, or [`historical_shocks`]), reported per scenario as a [`StressReport`].
//!
//! # Architecture invariants
//! **Pure and deterministic:** no I/O, clock, threads or randomness; transcendentals come from
//! `libm` only (`clippy.toml` forbids the platform's), and sums run in a fixed order.
//! **Integers after one boundary:** a contract's scenario P&L is rounded once to micro-USDC
//! (module `rounding`); everything after (account vectors, requirements, summaries) is checked
//! integer arithmetic, so an account updated fill by fill equals one rebuilt from its positions,
//! bit for bit, and requirements round up.
//! **Never NaN, never a panic on input:** bad inputs are a typed [`RiskError`].
//! **Bounded:** grids have at most [`SCENARIOS_MAX`] scenarios, rebuilds at most
//! [`POSITIONS_MAX`] positions, stress tests [`STRESS_POSITIONS_MAX`] positions and
//! [`SHOCKS_MAX`] shocks.
//!
//! # Units
//! Money is micro-USDC ([`bulwark_types::Money`]); index, strikes and option values are
//! micro-USDC per unit of underlying; vols are decimal (0.6 is 60%); time is milliseconds since
//! the Unix epoch, and time to expiry is measured in 365-day years. The forward of every expiry
//! is the index (rate 0).

mod contract;
mod error;
mod grid;
mod historical;
mod margin;
mod model;
mod params;
mod realised_vol;
mod rounding;
mod stress;
mod summary;
mod vector;

pub use contract::{ContractVector, Valuation};
pub use error::{ParamsError, RiskError};
pub use grid::{SCENARIOS_MAX, Scenario, ScenarioGrid, ScenarioRole, VolShift};
pub use historical::historical_shocks;
pub use margin::{PortfolioMargin, PortfolioRequirement};
pub use model::{shifted_vol, vol_scale};
pub use params::{BPS, DAY_MS, MOVE_POINTS_MAX, PortfolioMarginParams, YEAR_MS};
pub use realised_vol::RealisedVol;
pub use rounding::{MICROS_ABS_MAX, charge_micros_ceil, contract_micros, value_micros_floor};
pub use stress::{
    PortfolioGreeks, SHOCK_NAME_BYTES_MAX, SHOCKS_MAX, STRESS_POSITIONS_MAX, STRESS_VOL_FLOOR,
    ScenarioSet, Shock, StressPortfolio, StressPosition, StressReport, StressRow, VolMove,
    VolPoint, VolSurface, portfolio_vector, stress,
};
pub use summary::{AccountSummary, SweepOutcome, sweep};
pub use vector::{POSITIONS_MAX, ScenarioVector};
