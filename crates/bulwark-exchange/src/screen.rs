//! The liquidation screen: a proven lower bound on each account's margin slack (equity minus
//! maintenance), so the block's liquidation pass measures only the accounts that could be below
//! maintenance instead of every account every block.
//!
//! Owns: one 32-byte [`ScreenRow`] per account (a floor of its slack and the positions that
//! floor depends on), the valuation prices the floors were taken at, and the per-contract
//! drift bound of every instrument between two passes.
//! Never: changes what the pass decides. An account is skipped only when its floor, lowered
//! by the most its positions could have lost since, is still non-negative, which implies the
//! exact measurement would have found equity at or above maintenance. The screen is derived
//! state: it is not snapshotted, a restored exchange starts with every row unknown, and two
//! replicas with different screens reach the same outcome.
//!
//! Why the bound holds (standard margin, the only method screened):
//! - Slack is `cash + sum(value of each position) - sum(maintenance of each position)`.
//!   Value is linear in the position at the valuation price; for a fixed position,
//!   maintenance is linear in the prices at a per-unit rate (perpetual: at most `mm_bps` plus
//!   every risk-limit tier step, of the mark; short option: the mark plus `mm_bps` of the
//!   index). Each evaluation rounds at most three times per position.
//! - So between two passes a position of `q` contracts moves slack by at most
//!   `|q| x d`, where `d` is the instrument's drift per contract: the change of the per-unit
//!   value and maintenance rate (rounded up, plus 2 micro-USDC per unit for the rounding of
//!   the per-unit rates) times the multiplier, plus the funding paid per contract between the
//!   passes. A floor keeps a cushion of [`ROUNDING_CUSHION`] per position for the rounding
//!   of the two exact evaluations it spans.
//! - Any other change to an account (a fill, a transfer, a fee, a settlement, a liquidation
//!   step, a margin-mode switch) goes through `Accounts::get_mut`, which marks its row
//!   unknown; the next pass measures it exactly.
//! - An instrument whose index or mark appeared or vanished between passes, or whose margin
//!   tier length moved (its depth reference was refreshed), has no bound: every row holding
//!   it is measured.
//!
//! Accounts under portfolio margin, with more than [`LEGS_MAX`] positions, or with a position
//! above `u32::MAX` contracts are measured every pass (their rows say so).
//!
//! In debug builds (and with the `verify` feature) `Exchange::check_screen`, run with the
//! deficit check after every block, measures every screened account and fails if a floor is
//! above the exact slack.

use crate::account::Account;
use crate::margin::{StandardMargin, ValuationPrices, valuation_price};
use crate::params::BPS;
use bulwark_types::num::mul_div_ceil;
use bulwark_types::{AccountId, ChunkedVec, InstrumentKind, Money, Multiplier, Qty, UnitPrice};

/// Positions a screened row can carry.
pub const LEGS_MAX: usize = 2;

/// Micro-USDC per position a floor is lowered by when taken: the rounding of the exact
/// evaluation it was taken from and of the one it stands in for (at most 3 each).
pub const ROUNDING_CUSHION: i64 = 8;

/// Drift of an instrument whose prices appeared or vanished: nothing is known.
const UNBOUNDED: u64 = u64::MAX;

/// What the screen knows of one account.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
enum RowState {
    /// Changed since it was last measured (or never measured): measure it.
    #[default]
    Unknown,
    /// Measure it every pass (portfolio margin, many positions, huge positions).
    Unscreened,
    /// `slack` is a floor of its slack at the screen's reference prices.
    Screened,
}

/// Rows per chunk of the screen (4 KB).
const ROWS_PER_CHUNK: usize = 128;

/// One account's floor: 32 bytes, so a pass over 100,000 rows reads 3.2 MB in order.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct ScreenRow {
    /// Floor of equity minus maintenance, micro-USDC.
    slack: i64,
    /// (instrument, |contracts|) of each position; `legs` of them are used.
    positions: [(u32, u32); LEGS_MAX],
    legs: u8,
    state: RowState,
}

/// The screen (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct LiquidationScreen {
    /// By account id; an account beyond the end is unknown. In chunks shared with the copies
    /// of the state until written (a `Vec` was copied whole for every speculated block: 3.2 MB
    /// at 100,000 accounts); a pass writes only the rows whose floor moved.
    rows: ChunkedVec<ScreenRow, ROWS_PER_CHUNK>,
    /// The valuation prices of the last pass, by instrument id: floors are taken at these.
    prices: Vec<ValuationPrices>,
    /// |funding per contract| paid since the last pass, micro-USDC, by instrument id.
    funding: Vec<u64>,
    /// This pass's drift bound per contract, micro-USDC, by instrument id (scratch).
    drift: Vec<u64>,
    /// The margin tier length of each instrument at the last pass, by instrument id: when it
    /// moves, maintenance moves without a price move, so the instrument's holders are measured.
    tiers: Vec<i64>,
}

impl LiquidationScreen {
    /// Marks an account's row unknown: it changed, so its floor no longer holds.
    #[inline]
    pub(crate) fn touch(&mut self, id: AccountId) {
        if let Some(row) = self.rows.get_mut(id.get() as usize) {
            row.state = RowState::Unknown;
        }
    }

    /// Records funding paid on an instrument between passes (each holder's cash moved by
    /// `per_contract` times its position).
    pub(crate) fn funding_paid(&mut self, instrument: usize, per_contract: Money) {
        if self.funding.len() <= instrument {
            self.funding.resize(instrument + 1, 0);
        }
        let paid = u64::try_from(per_contract.micros().unsigned_abs()).unwrap_or(UNBOUNDED);
        self.funding[instrument] = self.funding[instrument].saturating_add(paid);
    }

    /// Starts a pass at `prices` over `accounts` accounts: computes each instrument's drift
    /// since the last pass, and makes `prices` (and each instrument's margin tier length) the
    /// new reference.
    pub(crate) fn begin_pass(
        &mut self,
        accounts: usize,
        prices: &[ValuationPrices],
        instruments: impl Iterator<Item = (InstrumentKind, Multiplier, i64)>,
        margin: &StandardMargin,
    ) {
        while self.rows.len() < accounts {
            self.rows.push(ScreenRow::default());
        }
        self.drift.clear();
        let mut tiers = Vec::with_capacity(prices.len());
        for (i, (kind, multiplier, tier)) in instruments.enumerate() {
            tiers.push(tier);
            let tier_moved = self.tiers.get(i).is_some_and(|before| *before != tier);
            let drift = match self.prices.get(i) {
                _ if tier_moved => UNBOUNDED,
                Some(before) => unit_drift(kind, *before, prices[i], margin)
                    .map(|unit| {
                        let per_contract = multiplier
                            .value_ceil(Qty::from_contracts(1), unit)
                            .micros()
                            .saturating_add(1);
                        u64::try_from(per_contract).unwrap_or(UNBOUNDED)
                    })
                    .unwrap_or(UNBOUNDED),
                None => UNBOUNDED,
            };
            let funding = self.funding.get(i).copied().unwrap_or(0);
            self.drift.push(drift.saturating_add(funding));
        }
        self.funding.clear();
        self.prices.clear();
        self.prices.extend_from_slice(prices);
        self.tiers = tiers;
        debug_assert_eq!(
            self.tiers.len(),
            self.prices.len(),
            "one tier per instrument"
        );
    }

    /// Whether the account is proven at or above maintenance at this pass's prices. Lowers
    /// its floor by this pass's drift; `false` means "measure it".
    #[inline]
    pub(crate) fn proven_safe(&mut self, id: AccountId) -> bool {
        let drift = &self.drift;
        let at = id.get() as usize;
        let Some(row) = self.rows.get(at) else {
            return false;
        };
        if row.state != RowState::Screened {
            return false;
        }
        let mut slack = row.slack;
        for &(instrument, contracts) in &row.positions[..usize::from(row.legs)] {
            let d = drift.get(instrument as usize).copied().unwrap_or(UNBOUNDED);
            let loss = i64::try_from(u64::from(contracts).saturating_mul(d)).unwrap_or(i64::MAX);
            slack = slack.saturating_sub(loss);
        }
        let moved = slack != row.slack;
        if slack < 0 {
            self.rows[at].state = RowState::Unknown;
            return false;
        }
        // Unmoved (no drift on its legs), the row and its chunk stay shared with the parent's.
        if moved {
            self.rows[at].slack = slack;
        }
        true
    }

    /// Records an exact measurement of `account` at this pass's prices.
    pub(crate) fn record(&mut self, account: &Account, equity: Money, maintenance: Money) {
        let Some(row) = self.rows.get_mut(account.id.get() as usize) else {
            return;
        };
        *row = ScreenRow {
            state: RowState::Unscreened,
            ..ScreenRow::default()
        };
        if account.margin_mode != crate::account::MarginMode::Standard {
            return;
        }
        let mut legs = 0usize;
        for (instrument, exposure) in &account.exposures {
            if exposure.position == 0 {
                continue;
            }
            let Ok(contracts) = u32::try_from(exposure.position.unsigned_abs()) else {
                return;
            };
            if legs == LEGS_MAX {
                return;
            }
            row.positions[legs] = (instrument.get(), contracts);
            legs += 1;
        }
        let slack = equity
            .checked_sub(maintenance)
            .expect("equity and maintenance are account sums (money bounds)")
            .micros()
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX));
        let cushion = ROUNDING_CUSHION * legs as i64;
        row.slack = i64::try_from(slack)
            .expect("clamped")
            .saturating_sub(cushion);
        row.legs = u8::try_from(legs).expect("at most LEGS_MAX");
        row.state = RowState::Screened;
    }

    /// Every screened account's floor (for the debug check, at [`Self::reference_prices`]).
    pub(crate) fn floors(&self) -> impl Iterator<Item = (AccountId, i64)> + '_ {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, row)| row.state == RowState::Screened)
            .map(|(i, row)| (AccountId::new(i as u64), row.slack))
    }

    /// The prices the floors were taken at.
    pub(crate) fn reference_prices(&self) -> &[ValuationPrices] {
        &self.prices
    }
}

/// The most one unit of underlying of a position can move slack between `before` and
/// `after` (micro-USDC per unit), or `None` when a price appeared or vanished.
fn unit_drift(
    kind: InstrumentKind,
    before: ValuationPrices,
    after: ValuationPrices,
    margin: &StandardMargin,
) -> Option<UnitPrice> {
    let (Some(index_before), Some(index_after)) = (before.index, after.index) else {
        return None;
    };
    if before.mark.is_some() != after.mark.is_some() {
        return None;
    }
    let value_before = valuation_price(kind, before)?;
    let value_after = valuation_price(kind, after)?;
    let value_move = i128::from(value_after.micros().abs_diff(value_before.micros()));
    let unit = match kind {
        // Value moves by the mark's move, maintenance by at most the highest tier's rate of it
        // (for a fixed position and tier length, tiered maintenance is linear in the mark).
        InstrumentKind::Perpetual => {
            let rate = i128::from(margin.perpetual_maintenance_bps_max());
            value_move + mul_div_ceil(value_move, rate, i128::from(BPS)) + 2
        }
        // A long moves by the mark's move; a short by the mark's move in value and again in
        // maintenance, plus mm_bps of the index's move.
        InstrumentKind::Option { .. } => {
            let index_move = i128::from(index_after.micros().abs_diff(index_before.micros()));
            let rate = i128::from(margin.params.option_maintenance_bps);
            2 * value_move + mul_div_ceil(index_move, rate, i128::from(BPS)) + 2
        }
    };
    i64::try_from(unit).ok().map(UnitPrice::from_micros)
}
