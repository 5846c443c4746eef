//! An account's scenario P&L vector for one underlying, kept up to date fill by fill.
//!
//! Owns: [`ScenarioVector`]: per scenario, the sum over positions of `qty x` the contract's
//! scenario P&L, plus the sums the requirement and the guard add on top (short option add-on,
//! convexity allowance, contracts held). Everything is an `i128` of micro-USDC, so the vector
//! updated after each fill equals the one rebuilt from the positions, exactly, in any order.
//! Never: adds a contract vector from another valuation or grid ([`RiskError::BasisMismatch`]);
//! wraps (every sum is checked).
//! Bounds: one entry per grid scenario; an update costs one multiply-add per scenario.
//!
//! The vector is valid for the valuation its contract vectors were computed at. When prices or
//! vols move, the exchange recomputes the contract vectors and rebuilds the account vector with
//! [`ScenarioVector::rebuild`] (O(positions x scenarios)); between price updates, fills use
//! [`ScenarioVector::apply_fill`] (O(scenarios)).

use crate::contract::{Basis, ContractVector, Valuation};
use crate::error::RiskError;
use crate::grid::ScenarioGrid;
use bulwark_types::Qty;

/// Most positions one account may hold in one underlying, for [`ScenarioVector::rebuild`].
pub const POSITIONS_MAX: usize = 10_000;

/// An account's scenario P&L and charges in one underlying, micro-USDC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioVector {
    pub(crate) basis: Basis,
    /// Sum of `qty x contract P&L`, per scenario.
    pub(crate) pnl: Vec<i128>,
    /// Sum of `short contracts x add-on` at the valuation's index.
    pub(crate) addon: i128,
    /// The same at the top of the guard band.
    pub(crate) addon_band: i128,
    /// Sum of `long contracts x convexity allowance`.
    pub(crate) convexity: i128,
    /// Sum of `|qty|` over positions: the rounding allowance in micro-USDC.
    pub(crate) contracts: i128,
}

impl ScenarioVector {
    /// An empty account (no positions) on `grid` at `valuation`.
    pub fn new(grid: &ScenarioGrid, valuation: Valuation) -> Self {
        Self {
            basis: Basis {
                valuation,
                range_bps: grid.range_bps(),
                len: grid.len(),
            },
            pnl: vec![0; grid.len()],
            addon: 0,
            addon_band: 0,
            convexity: 0,
            contracts: 0,
        }
    }

    /// Full revaluation: the vector of `positions`, each a contract vector and a signed
    /// position, one entry per instrument (a repeated instrument is charged as two positions:
    /// its add-on and allowance do not net). At most [`POSITIONS_MAX`] positions.
    pub fn rebuild<'a>(
        grid: &ScenarioGrid,
        valuation: Valuation,
        positions: impl IntoIterator<Item = (&'a ContractVector, Qty)>,
    ) -> Result<Self, RiskError> {
        let mut vector = Self::new(grid, valuation);
        for (count, (contract, qty)) in positions.into_iter().enumerate() {
            if count >= POSITIONS_MAX {
                return Err(RiskError::TooMany {
                    what: "positions",
                    count: count + 1,
                    max: POSITIONS_MAX,
                });
            }
            vector.apply_fill(contract, Qty::ZERO, qty)?;
        }
        Ok(vector)
    }

    /// Books a fill of `fill` contracts (signed: positive bought) of the instrument whose
    /// vector is `contract`, held at `position_before` contracts before the fill. On error the
    /// vector is unchanged. Errors: another basis; a total that would go negative
    /// ([`RiskError::PositionInconsistent`]); overflow.
    pub fn apply_fill(
        &mut self,
        contract: &ContractVector,
        position_before: Qty,
        fill: Qty,
    ) -> Result<(), RiskError> {
        if contract.basis != self.basis {
            return Err(RiskError::BasisMismatch);
        }
        debug_assert_eq!(contract.pnl.len(), self.pnl.len(), "bases fix the length");
        let before = i128::from(position_before.contracts());
        let q = i128::from(fill.contracts());
        let after = before + q;
        let shorts = |p: i128| (-p).max(0);
        let longs = |p: i128| p.max(0);
        let overflow = RiskError::Overflow("account vector");
        // Compute the charges first so that an overflow leaves the vector as it was.
        let addon = checked_step(
            self.addon,
            contract.addon_short,
            shorts(after) - shorts(before),
        )?;
        let addon_band = checked_step(
            self.addon_band,
            contract.addon_short_band,
            shorts(after) - shorts(before),
        )?;
        let convexity = checked_step(
            self.convexity,
            contract.convexity_long,
            longs(after) - longs(before),
        )?;
        let contracts = self
            .contracts
            .checked_add(after.abs() - before.abs())
            .ok_or(overflow)?;
        // Each total is a sum of non-negative terms, one per position: a negative total means
        // `position_before` was not this account's.
        if contracts < 0 || addon < 0 || addon_band < 0 || convexity < 0 {
            return Err(RiskError::PositionInconsistent);
        }
        // |q| < 2^64 and |pnl| <= 2^53: each product fits i128; only the sums can overflow.
        self.add_per_scenario(contract, |per| q * i128::from(per))?;
        self.addon = addon;
        self.addon_band = addon_band;
        self.convexity = convexity;
        self.contracts = contracts;
        Ok(())
    }

    /// Adds `step(contract P&L)` to each scenario, or nothing if any sum would overflow.
    fn add_per_scenario(
        &mut self,
        contract: &ContractVector,
        step: impl Fn(i64) -> i128,
    ) -> Result<(), RiskError> {
        let fits = self
            .pnl
            .iter()
            .zip(&contract.pnl)
            .all(|(total, &per)| total.checked_add(step(per)).is_some());
        if !fits {
            return Err(RiskError::Overflow("account vector"));
        }
        for (total, &per) in self.pnl.iter_mut().zip(&contract.pnl) {
            *total += step(per);
        }
        Ok(())
    }

    /// Counts an instrument's resting orders as if they filled, on the worse side: per
    /// scenario the lesser P&L of "all `bids` fill" and "all `asks` fill" from `position`, and
    /// the larger of the two sides' charges. Taking each scenario's worse side on its own bounds
    /// every combination of fills from below, so the requirement of the result covers whatever
    /// part of the orders fills. `bids` and `asks` are open contracts (non-negative). On error
    /// the vector is unchanged.
    pub fn add_open_orders(
        &mut self,
        contract: &ContractVector,
        position: Qty,
        bids: Qty,
        asks: Qty,
    ) -> Result<(), RiskError> {
        if contract.basis != self.basis {
            return Err(RiskError::BasisMismatch);
        }
        if bids.contracts() < 0 || asks.contracts() < 0 {
            return Err(RiskError::PositionInconsistent);
        }
        let overflow = RiskError::Overflow("account vector");
        let before = i128::from(position.contracts());
        let (bid, ask) = (i128::from(bids.contracts()), i128::from(asks.contracts()));
        let shorts = |p: i128| (-p).max(0);
        let longs = |p: i128| p.max(0);
        let worse = |f: &dyn Fn(i128) -> i128| {
            (f(before + bid) - f(before)).max(f(before - ask) - f(before))
        };
        let addon = checked_step(self.addon, contract.addon_short, worse(&shorts))?;
        let addon_band = checked_step(self.addon_band, contract.addon_short_band, worse(&shorts))?;
        let convexity = checked_step(self.convexity, contract.convexity_long, worse(&longs))?;
        let contracts = self
            .contracts
            .checked_add(worse(&|p: i128| p.abs()))
            .ok_or(overflow)?;
        self.add_per_scenario(contract, |per| {
            (bid * i128::from(per)).min(-ask * i128::from(per))
        })?;
        self.addon = addon;
        self.addon_band = addon_band;
        self.convexity = convexity;
        self.contracts = contracts;
        Ok(())
    }

    /// Scenario P&L of the account, micro-USDC, in grid order.
    pub fn pnl(&self) -> &[i128] {
        &self.pnl
    }

    /// The valuation the vector belongs to.
    pub const fn valuation(&self) -> &Valuation {
        &self.basis.valuation
    }

    /// Contracts held, summed in absolute value.
    pub const fn contracts(&self) -> i128 {
        self.contracts
    }
}

fn checked_step(total: i128, per: i64, count: i128) -> Result<i128, RiskError> {
    count
        .checked_mul(i128::from(per))
        .and_then(|step| total.checked_add(step))
        .ok_or(RiskError::Overflow("account charges"))
}
