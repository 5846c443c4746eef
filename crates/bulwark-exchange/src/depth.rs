//! Risk limits sized to the book: the perpetual's margin tiers and open-interest cap follow the
//! depth its book has shown (parameters and rules in [`crate::params::RiskLimitParams`]).
//!
//! Owns: sampling each perpetual's book depth once per block into its [`DepthState`]
//! average, refreshing the depth reference, the tier length margin reads
//! ([`Exchange::tier_contracts`]), the open-interest admission check
//! ([`Exchange::check_open_interest`]), and how much more the liquidation backstop may take
//! over ([`Exchange::backstop_room`]).
//! Never: moves money or positions, or refuses an order that only reduces a position.
//!
//! Why depth: a venue can only liquidate what its book can absorb. A position several books
//! deep cannot be unwound near the mark, so it pays more margin for each book's worth (and is
//! liquidated earlier, since maintenance rises with it too); open interest many books deep
//! turns a crash into deficits no fund covers, so it is capped. The average moves with a
//! half-life of minutes and the reference only once per `refresh_ms`, so quotes flashed for a
//! block move neither, and the liquidation screen re-measures holders only when tiers move.
//!
//! Known limit: orders waiting in a halted book's auction are each checked against the open
//! interest when they arrive, not against each other, so the uncross can take open interest
//! past the cap by what they open together (bounded by what one auction matches).

use crate::exchange::Exchange;
use crate::instrument::{DepthState, Instrument, InstrumentStatus};
use crate::params::{BPS, RiskLimitParams};
use bulwark_types::num::{mul_div_ceil, mul_div_floor};
use bulwark_types::{Qty, RejectReason, Side, UnitPrice};

impl Exchange {
    /// Samples every trading perpetual's book depth into its average (the book as the last
    /// block left it, at this block's mark) and refreshes the depth reference when block time
    /// crossed a multiple of `refresh_ms` (or on the first sample). Called once per block,
    /// after prices and marks.
    pub(crate) fn sample_depth(&mut self) {
        let Some(limits) = self.params.risk_limits else {
            return;
        };
        let now = self.time.millis();
        for i in 0..self.instruments.len() {
            let instrument = &self.instruments[i];
            if instrument.is_option() || instrument.status != InstrumentStatus::Trading {
                continue;
            }
            let Some(mark) = instrument.mark.or(self.valuation_prices(instrument).index) else {
                continue;
            };
            let depth = book_depth(instrument, mark, limits.depth_band_bps);
            let floor = floor_contracts(instrument, mark, limits.depth_floor_usdc);
            let state = &mut self.instruments[i].depth;
            let refresh_due = state.reference == 0
                || state
                    .sampled_at_ms
                    .is_none_or(|at| at / limits.refresh_ms != now / limits.refresh_ms);
            state.sample(now, depth, limits.depth_half_life_ms);
            if refresh_due {
                state.reference = state.average().max(floor);
            }
            assert!(
                state.reference >= 1,
                "a sampled perpetual has a positive depth reference"
            );
        }
    }

    /// Contracts in one margin tier of `instrument` (0: no tiers: an option, risk limits off,
    /// or no depth reference yet, which only an instrument that never had a price lacks).
    pub(crate) fn tier_contracts(&self, instrument: &Instrument) -> i64 {
        let Some(limits) = self.params.risk_limits else {
            return 0;
        };
        tier_contracts(&limits, instrument)
    }

    /// Refuses an order that could trade on arrival (`may_take`) and would take open
    /// interest past the instrument's cap by what it opens: the contracts by which it would
    /// open or increase `position` (the account's, before the order). An order that opens
    /// nothing always passes. A resting order raises open interest only when a taker that
    /// opens meets it, and that taker is checked here.
    pub(crate) fn check_open_interest(
        &self,
        instrument: &Instrument,
        side: Side,
        qty: Qty,
        position: i64,
        may_take: bool,
    ) -> Result<(), RejectReason> {
        let Some(limits) = self.params.risk_limits else {
            return Ok(());
        };
        if !may_take || instrument.is_option() || limits.open_interest_depth_bps == 0 {
            return Ok(());
        }
        let opening = opening_contracts(side, qty.contracts(), position);
        if opening == 0 {
            return Ok(());
        }
        let cap = open_interest_cap(&limits, &instrument.depth);
        let after = i128::from(instrument.open_interest()) + i128::from(opening);
        if after > i128::from(cap) {
            return Err(RejectReason::OpenInterestCap);
        }
        Ok(())
    }

    /// Contracts of `instrument` the backstop, holding `held`, may still take over on the
    /// side `sign` (the sign of the position it would receive): up to `backstop_depth_bps`
    /// of the depth the book has shown ([`DepthState::shown`]: the lesser of the average and
    /// the last sample) on that side, plus whatever it holds on the other (taking that over
    /// reduces it). Unbounded (`i64::MAX`) for options, with risk limits off or the cap at 0.
    /// Not the reference: its floor is depth no book has shown, and the backstop must sell
    /// what it takes into the book. Not the average alone: it lags quotes cancelled just
    /// before an attack by minutes.
    pub(crate) fn backstop_room(&self, instrument: &Instrument, held: i64, sign: i64) -> i64 {
        assert!(sign == 1 || sign == -1, "a side is a sign");
        let Some(limits) = self.params.risk_limits else {
            return i64::MAX;
        };
        if instrument.is_option() || limits.backstop_depth_bps == 0 {
            return i64::MAX;
        }
        let cap = mul_div_floor(
            i128::from(instrument.depth.shown()),
            i128::from(limits.backstop_depth_bps),
            i128::from(BPS),
        );
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let room = if held.signum() == sign {
            cap.saturating_sub(held.abs()).max(0)
        } else {
            cap.saturating_add(held.abs())
        };
        assert!(room >= 0, "room is a count of contracts");
        room
    }
}

/// Contracts of an order of `qty` on `side` that open or increase a position of `position`.
pub fn opening_contracts(side: Side, qty: i64, position: i64) -> i64 {
    debug_assert!(qty >= 0, "quantities are positive");
    let opening = match side {
        Side::Buy => position.saturating_add(qty).max(0) - position.max(0),
        Side::Sell => position.saturating_neg().saturating_add(qty).max(0) - (-position).max(0),
    };
    debug_assert!(
        (0..=qty).contains(&opening),
        "an order opens at most its size"
    );
    opening
}

/// Contracts in one tier of `instrument` under `limits` (0 before a depth reference exists).
pub(crate) fn tier_contracts(limits: &RiskLimitParams, instrument: &Instrument) -> i64 {
    let reference = instrument.depth.reference;
    if instrument.is_option() || reference <= 0 {
        return 0;
    }
    let tier = mul_div_floor(
        i128::from(reference),
        i128::from(limits.tier_depth_bps),
        i128::from(BPS),
    );
    i64::try_from(tier).unwrap_or(i64::MAX).max(1)
}

/// The open-interest cap, contracts (`i64::MAX` when off).
pub fn open_interest_cap(limits: &RiskLimitParams, depth: &DepthState) -> i64 {
    if limits.open_interest_depth_bps == 0 {
        return i64::MAX;
    }
    let cap = mul_div_floor(
        i128::from(depth.reference),
        i128::from(limits.open_interest_depth_bps),
        i128::from(BPS),
    );
    i64::try_from(cap).unwrap_or(i64::MAX)
}

/// Open contracts resting within `band_bps` of `mark` on the thinner side of the book.
fn book_depth(instrument: &Instrument, mark: UnitPrice, band_bps: i64) -> i64 {
    let (low, high) = crate::trading::band_ticks(mark, instrument.spec.tick_size, band_bps, 1);
    let bids = instrument.book.qty_within(Side::Buy, low);
    let asks = instrument.book.qty_within(Side::Sell, high);
    bids.min(asks)
}

/// `floor_usdc` of notional at `mark`, in contracts (rounded up, at least one).
fn floor_contracts(instrument: &Instrument, mark: UnitPrice, floor_usdc: i64) -> i64 {
    let one = instrument
        .spec
        .multiplier
        .value(Qty::from_contracts(1), mark)
        .micros()
        .max(1);
    let contracts = mul_div_ceil(i128::from(floor_usdc), 1_000_000, one);
    i64::try_from(contracts).unwrap_or(i64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_counts_only_what_opens_or_increases() {
        assert_eq!(opening_contracts(Side::Buy, 5, 0), 5);
        assert_eq!(opening_contracts(Side::Buy, 5, 3), 5);
        assert_eq!(opening_contracts(Side::Buy, 5, -3), 2);
        assert_eq!(opening_contracts(Side::Buy, 5, -8), 0);
        assert_eq!(opening_contracts(Side::Sell, 5, 8), 0);
        assert_eq!(opening_contracts(Side::Sell, 5, 2), 3);
        assert_eq!(opening_contracts(Side::Sell, 5, -2), 5);
    }

    #[test]
    fn the_depth_average_moves_toward_each_sample_by_its_age() {
        let mut depth = DepthState::default();
        depth.sample(0, 1_000, 300_000);
        assert_eq!(depth.average(), 0, "the first sample starts the clock");
        depth.sample(300_000, 1_000, 300_000);
        assert_eq!(depth.average(), 500, "one half-life: half way");
        depth.sample(450_000, 1_000, 300_000);
        assert_eq!(
            depth.average(),
            625,
            "half a half-life: a quarter of the gap, linearly"
        );
        depth.sample(450_000 + 3_600_000, 0, 300_000);
        assert_eq!(
            depth.average_milli,
            625_000 / 4_096,
            "an hour of empty book: twelve halvings"
        );
        assert_eq!(depth.average(), 0);
        depth.sample(450_000 + 3_600_000 + 100 * 86_400_000, 7, 300_000);
        assert_eq!(
            depth.average(),
            7,
            "beyond 62 halvings the old average is gone"
        );
    }
}
