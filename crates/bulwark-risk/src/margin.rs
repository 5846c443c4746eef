//! Portfolio margin: the requirement of an account's scenario vector.
//!
//! Owns: [`PortfolioMargin`] (parameters plus the grid of one range: the engine the exchange
//! holds per underlying) and [`PortfolioRequirement`] (initial, maintenance and their parts).
//! Never: floats after the contract vectors (the requirement is integer arithmetic on integer
//! vectors, rounded up); a requirement below zero or an initial below maintenance.
//! Bounds: O(margin scenarios) per requirement (29 on the default grid).
//!
//! Maintenance = worst weighted scenario loss + short option add-on + rounding allowance, where
//! a scenario's loss is `max(0, -pnl)`, weighted by its cover (100% core, 35% extreme, rounded
//! up). Initial = maintenance x `initial_over_maintenance`, rounded up.

use crate::contract::{ContractVector, Valuation};
use crate::error::RiskError;
use crate::grid::{ScenarioGrid, ScenarioRole};
use crate::params::{BPS, PortfolioMarginParams};
use crate::rounding::mul_bps_ceil;
use crate::summary::AccountSummary;
use crate::vector::ScenarioVector;
use bulwark_types::{InstrumentSpec, Money};

/// Collateral an account must hold under portfolio margin, with its parts, micro-USDC.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PortfolioRequirement {
    /// Gates new risk: an order that would leave equity below it is refused.
    pub initial: Money,
    /// Below it the account is liquidatable.
    pub maintenance: Money,
    /// The worst scenario's loss after its cover weight (never negative).
    pub worst_loss: Money,
    /// Position in the grid of the worst scenario; `None` when no scenario loses.
    pub worst_scenario: Option<usize>,
    /// Sum over short option contracts of the per-contract add-on.
    pub short_option_addon: Money,
    /// One micro-USDC per contract held: covers the per-contract rounding of the vectors.
    pub rounding_allowance: Money,
}

/// The portfolio margin engine of one underlying at one price range.
#[derive(Clone, Debug, PartialEq)]
pub struct PortfolioMargin {
    params: PortfolioMarginParams,
    grid: ScenarioGrid,
}

impl PortfolioMargin {
    /// Checks `params` and builds the grid at `range_bps` (for instance
    /// [`crate::RealisedVol::range_bps`]).
    pub fn new(params: PortfolioMarginParams, range_bps: u32) -> Result<Self, RiskError> {
        let grid = ScenarioGrid::new(&params, range_bps)?;
        Ok(Self { params, grid })
    }

    pub const fn params(&self) -> &PortfolioMarginParams {
        &self.params
    }

    pub const fn grid(&self) -> &ScenarioGrid {
        &self.grid
    }

    /// One contract of `spec` revalued over the grid (see [`ContractVector::compute`]).
    pub fn contract_vector(
        &self,
        valuation: &Valuation,
        spec: &InstrumentSpec,
        vol: f64,
    ) -> Result<ContractVector, RiskError> {
        ContractVector::compute(&self.params, &self.grid, valuation, spec, vol)
    }

    /// An account without positions at `valuation`.
    pub fn empty_account(&self, valuation: Valuation) -> ScenarioVector {
        ScenarioVector::new(&self.grid, valuation)
    }

    /// The requirement of `account`. Errors: a vector from another grid; overflow.
    pub fn requirement(&self, account: &ScenarioVector) -> Result<PortfolioRequirement, RiskError> {
        self.check_grid(account)?;
        let mut worst: i128 = 0;
        let mut worst_scenario = None;
        let scenarios = &self.grid.scenarios()[..self.grid.margin_len()];
        for (k, (scenario, &pnl)) in scenarios.iter().zip(&account.pnl).enumerate() {
            debug_assert!(
                matches!(scenario.role, ScenarioRole::Core | ScenarioRole::Extreme),
                "margin scenarios come first"
            );
            let loss = if pnl < 0 {
                pnl.checked_neg()
                    .ok_or(RiskError::Overflow("scenario loss"))?
            } else {
                0
            };
            let weighted = if scenario.cover_bps == BPS {
                loss
            } else {
                mul_bps_ceil(loss, scenario.cover_bps)?
            };
            // Strictly greater: the first worst scenario in grid order wins ties.
            if weighted > worst {
                worst = weighted;
                worst_scenario = Some(k);
            }
        }
        let overflow = RiskError::Overflow("requirement");
        let maintenance = worst
            .checked_add(account.addon)
            .and_then(|m| m.checked_add(account.contracts))
            .ok_or(overflow)?;
        let initial = mul_bps_ceil(maintenance, self.params.initial_over_maintenance_bps)?;
        assert!(
            maintenance >= 0 && initial >= maintenance,
            "0 <= maintenance <= initial"
        );
        Ok(PortfolioRequirement {
            initial: Money::from_micros(initial),
            maintenance: Money::from_micros(maintenance),
            worst_loss: Money::from_micros(worst),
            worst_scenario,
            short_option_addon: Money::from_micros(account.addon),
            rounding_allowance: Money::from_micros(account.contracts),
        })
    }

    /// The account's summary for the liquidation sweep, given its equity at the valuation's
    /// prices (see [`AccountSummary`]).
    pub fn summary(
        &self,
        account: &ScenarioVector,
        equity: Money,
    ) -> Result<AccountSummary, RiskError> {
        self.check_grid(account)?;
        AccountSummary::compute(&self.params, &self.grid, account, equity)
    }

    fn check_grid(&self, account: &ScenarioVector) -> Result<(), RiskError> {
        if account.basis.range_bps != self.grid.range_bps() || account.pnl.len() != self.grid.len()
        {
            return Err(RiskError::BasisMismatch);
        }
        Ok(())
    }
}
