//! Account summaries for the block's liquidation sweep: a whole account reduced to three
//! integers, so that finding the accounts that need a look costs two comparisons each.
//!
//! Owns: [`AccountSummary`] (a guaranteed floor of equity minus maintenance over a band of index
//! prices), its derivation from an account vector, and [`sweep`].
//! Never: declares an account liquidatable (the sweep only flags accounts to revalue; the
//! exchange decides on a fresh requirement); reads anything but the summary in the sweep.
//! Bounds: the sweep is one pass over a slice, and flags at most `flagged_max` accounts.
//!
//! # The guarantee
//! A summary is computed at a valuation (index `S0`, time, vols) from the account's scenario
//! vector and its equity `E0`. For every index `S1` in `[index_low, index_high]` (the guard band,
//! `S0 x (1 +- h)`), with time and vols unchanged and marks moving with the model, a fresh
//! requirement `M1` at `S1` satisfies `E1 - M1 >= excess_floor`, where `E1 = E0 + V(S1) - V(S0)`.
//! So while the index stays in the band and `excess_floor >= 0`, the account cannot be below
//! maintenance, and the sweep skips it.
//!
//! Why it holds (`P` is the account's P&L relative to `V(S0)`, `w` the extreme cover):
//! - `E1 - M1` is the least of `E1` (no scenario loses), `E0 + P_k(S1 (1 + m))` over core
//!   scenarios `k` with move `m`, and `E0 + (1 - w) P(S1) + w P(S1 (1 +- e))` over the two
//!   extremes; minus the add-on and the rounding allowance at `S1`.
//! - `S1 (1 + m)` lies between the extended grid's outer points `S0 (1 +- (range + step))`
//!   (the guard core scenarios), `S1` between `S0 (1 +- step)`, and `S1 (1 +- e)` between two
//!   guard extreme points, by the choice of `h` (see [`crate::ScenarioGrid`]).
//! - Between two neighbouring points, `P` is at least the lesser of its two values minus the
//!   convexity allowance (how far a long option's value can sag below its chord; short options
//!   are concave and lie above it). So each term is bounded below by grid values.
//! - The add-on at `S1` is at most the add-on at `index_high`; vector rounding is at most half a
//!   micro-USDC per contract at each of `S0` and `S1`.
//!
//! Hence `excess_floor = E0 + min(min core and guard core P, min band P, (1 - w) min band P + w
//! min guard extreme P) - add-on at the band top - convexity allowance - 3 x contracts`, with
//! each `w` product rounded down.
//!
//! What the exchange must do to keep the guarantee: rebuild an account's summary after it
//! trades, and every summary of an underlying when vols, the valuation time or the grid's range
//! are refreshed (or when marks leave the model). Accounts holding several underlyings keep one band per
//! underlying (work left to the integration).

use crate::error::RiskError;
use crate::grid::{ScenarioGrid, ScenarioRole, VolShift};
use crate::params::{BPS, PortfolioMarginParams};
use crate::rounding::mul_bps_floor;
use crate::vector::ScenarioVector;
use bulwark_types::{Money, UnitPrice};

/// What the liquidation sweep keeps per account: a floor of equity minus maintenance, valid
/// while the index stays in `[index_low, index_high]` (micro-USDC). 24 bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccountSummary {
    /// Lower bound of equity minus maintenance over the band, micro-USDC; saturates at the
    /// `i64` bounds (only its sign matters to the sweep).
    pub excess_floor: i64,
    /// Lowest index of the band, micro-USDC per unit.
    pub index_low: i64,
    /// Highest index of the band, micro-USDC per unit.
    pub index_high: i64,
}

impl AccountSummary {
    /// A summary that is never safe: for accounts not yet evaluated.
    pub const UNKNOWN: Self = Self {
        excess_floor: i64::MIN,
        index_low: i64::MAX,
        index_high: i64::MIN,
    };

    /// Whether the account is certainly above maintenance at `index` (see the module doc).
    #[inline]
    pub fn is_safe_at(&self, index: UnitPrice) -> bool {
        let index = index.micros();
        self.excess_floor >= 0 && self.index_low <= index && index <= self.index_high
    }

    pub(crate) fn compute(
        params: &PortfolioMarginParams,
        grid: &ScenarioGrid,
        account: &ScenarioVector,
        equity: Money,
    ) -> Result<Self, RiskError> {
        let pnl = &account.pnl;
        let mut min_core = i128::MAX;
        let mut min_guard_extreme = i128::MAX;
        for (scenario, &value) in grid.scenarios().iter().zip(pnl) {
            match scenario.role {
                ScenarioRole::Core | ScenarioRole::GuardCore => min_core = min_core.min(value),
                ScenarioRole::GuardExtreme => min_guard_extreme = min_guard_extreme.min(value),
                ScenarioRole::Extreme => {}
            }
        }
        let min_band = (-1..=1)
            .map(|j| pnl[grid.core_index(j, VolShift::Unchanged)])
            .min()
            .expect("three points");
        debug_assert_eq!(
            pnl[grid.core_index(0, VolShift::Unchanged)],
            0,
            "no move, no P&L"
        );
        let cover = params.extreme_cover_bps;
        let extreme_term = mul_bps_floor(min_band, BPS - cover)?
            .checked_add(mul_bps_floor(min_guard_extreme, cover)?)
            .ok_or(RiskError::Overflow("summary"))?;
        let floor_pnl = min_core.min(min_band).min(extreme_term);
        let charges = account
            .addon_band
            .checked_add(account.convexity)
            .and_then(|c| c.checked_add(account.contracts.checked_mul(3)?))
            .ok_or(RiskError::Overflow("summary"))?;
        let excess = equity
            .micros()
            .checked_add(floor_pnl)
            .and_then(|e| e.checked_sub(charges))
            .ok_or(RiskError::Overflow("summary"))?;
        let valuation = account.valuation();
        Ok(Self {
            excess_floor: i64::try_from(excess).unwrap_or(if excess < 0 {
                i64::MIN
            } else {
                i64::MAX
            }),
            index_low: valuation.index_low(grid.band_bps()),
            index_high: valuation.index_high(grid.band_bps()),
        })
    }
}

/// What one sweep found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Accounts looked at.
    pub checked: usize,
    /// Accounts flagged for revaluation (not necessarily liquidatable).
    pub flagged: usize,
    /// Whether more accounts needed flagging than `flagged_max` allowed; the sweep stopped at
    /// the last one it could flag.
    pub truncated: bool,
}

/// Flags, in order, the accounts whose summary is not safe at `index`: their positions in
/// `summaries` go to `flagged` (cleared first), at most `flagged_max` of them.
pub fn sweep(
    summaries: &[AccountSummary],
    index: UnitPrice,
    flagged: &mut Vec<usize>,
    flagged_max: usize,
) -> SweepOutcome {
    flagged.clear();
    for (position, summary) in summaries.iter().enumerate() {
        if summary.is_safe_at(index) {
            continue;
        }
        if flagged.len() == flagged_max {
            return SweepOutcome {
                checked: position,
                flagged: flagged.len(),
                truncated: true,
            };
        }
        flagged.push(position);
    }
    SweepOutcome {
        checked: summaries.len(),
        flagged: flagged.len(),
        truncated: false,
    }
}
