//! Market maker protection, in the manner of Deribit's MMP: a market maker's quotes in one
//! underlying are pulled, and its quoting frozen, when they are filled too fast.
//!
//! Owns: each account's [`MmpState`] per underlying (set by `TxBody::SetMmp`), the window of
//! its maker fills, the trip, and the freeze. A trip cancels every resting (and waiting) order
//! of the account in instruments on that underlying and refuses new orders that would rest
//! there until the freeze ends (or `TxBody::ResetMmp`); orders that only take are allowed, so
//! the market maker can still hedge.
//! Never: undoes a fill: fills that happened before the trip stand. Trips are applied once
//! the order that caused them has finished matching.
//! Bounds: at most [`MmpState::WINDOW_MAX`] fills in a window (older ones are forgotten first,
//! which can only delay a trip that thousands of fills would make anyway); one state per
//! listed underlying.
//!
//! Delta: a perpetual contract's delta is its multiplier; an option's is Black-76's delta at
//! the volatility implied by its mark (`bulwark-pricing`, `f64` on `libm`, the same bits on
//! every validator), or its intrinsic delta (0 or 1) when no volatility is implied.

use crate::event::Event;
use crate::exchange::Exchange;
use crate::instrument::Instrument;
use bulwark_types::{
    AccountId, AssetCode, CancelReason, InstrumentId, InstrumentKind, MmpConfig, Qty, RejectReason,
    Right, Side,
};
use std::collections::VecDeque;

/// One account's protection in one underlying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmpState {
    pub config: MmpConfig,
    /// Maker fills within the window, oldest first: (block time ms, contracts, signed delta
    /// in units of the underlying times 10^8).
    window: VecDeque<(u64, i64, i64)>,
    /// Sums over `window`, kept as fills enter and leave it, so a fill costs O(1) amortised
    /// rather than a walk of the window. Derived: never encoded.
    contracts: i64,
    delta_e8: i128,
    /// While frozen: until when (`u64::MAX`: until reset).
    pub frozen_until_ms: Option<u64>,
}

impl MmpState {
    pub const WINDOW_MAX: usize = 1_024;

    pub fn new(config: MmpConfig) -> Self {
        Self {
            config,
            window: VecDeque::new(),
            contracts: 0,
            delta_e8: 0,
            frozen_until_ms: None,
        }
    }

    pub fn frozen(&self, now_ms: u64) -> bool {
        self.frozen_until_ms.is_some_and(|until| now_ms < until)
    }

    /// The fills in the window, oldest first.
    pub fn window(&self) -> &VecDeque<(u64, i64, i64)> {
        &self.window
    }

    /// Appends a fill to the window (recording, or restoring a snapshot in time order).
    pub fn push_fill(&mut self, fill: (u64, i64, i64)) {
        self.window.push_back(fill);
        self.contracts += fill.1;
        self.delta_e8 += i128::from(fill.2);
    }

    /// Forgets the window (a trip or a reset starts a fresh one).
    pub fn clear_window(&mut self) {
        self.window.clear();
        self.contracts = 0;
        self.delta_e8 = 0;
    }

    /// Records a maker fill; if the window's totals now exceed a limit, freezes and returns
    /// them (contracts, net delta e8).
    pub fn record(&mut self, now_ms: u64, qty: i64, delta_e8: i64) -> Option<(i64, i64)> {
        let horizon = now_ms.saturating_sub(self.config.interval_ms);
        while self.window.front().is_some_and(|(t, _, _)| *t < horizon)
            || self.window.len() >= Self::WINDOW_MAX
        {
            let (_, q, d) = self.window.pop_front().expect("non-empty");
            self.contracts -= q;
            self.delta_e8 -= i128::from(d);
        }
        self.push_fill((now_ms, qty, delta_e8));
        let (contracts, delta) = (self.contracts, self.delta_e8);
        let tripped = contracts > self.config.qty_limit.contracts()
            || delta.abs() > i128::from(self.config.delta_limit_e8);
        if !tripped {
            return None;
        }
        self.clear_window();
        self.frozen_until_ms = Some(match self.config.frozen_ms {
            0 => u64::MAX,
            ms => now_ms.saturating_add(ms),
        });
        let delta = i64::try_from(delta).unwrap_or(if delta > 0 { i64::MAX } else { i64::MIN });
        Some((contracts, delta))
    }
}

/// A trip waiting to be applied once the current order has finished matching.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct MmpTrip {
    account: AccountId,
    asset: AssetCode,
    contracts: i64,
    delta_e8: i64,
    frozen_until_ms: u64,
}

impl Exchange {
    pub(crate) fn set_mmp(
        &mut self,
        account: AccountId,
        asset: AssetCode,
        config: Option<MmpConfig>,
    ) -> Result<(), RejectReason> {
        if !self.instruments.has_asset(&asset) {
            return Err(RejectReason::InstrumentUnknown);
        }
        let holder = self.accounts.get_mut(account);
        match config {
            Some(config) => {
                holder.mmp.insert(asset, MmpState::new(config));
            }
            None => {
                holder.mmp.remove(&asset);
            }
        }
        Ok(())
    }

    pub(crate) fn reset_mmp(
        &mut self,
        account: AccountId,
        asset: AssetCode,
    ) -> Result<(), RejectReason> {
        let state = self
            .accounts
            .get_mut(account)
            .mmp
            .get_mut(&asset)
            .ok_or(RejectReason::MmpNotConfigured)?;
        state.frozen_until_ms = None;
        state.clear_window();
        Ok(())
    }

    /// Whether `account` may not rest new orders in `instrument` now.
    pub(crate) fn mmp_frozen(&self, account: AccountId, instrument: &Instrument) -> bool {
        self.accounts[account]
            .mmp
            .get(&instrument.spec.underlying())
            .is_some_and(|s| s.frozen(self.time.millis()))
    }

    /// Feeds one maker fill of `qty` contracts on `side` to the maker's protection.
    pub(crate) fn mmp_on_maker_fill(
        &mut self,
        account: AccountId,
        id: InstrumentId,
        side: Side,
        qty: Qty,
    ) {
        let now = self.time.millis();
        let instrument = &self.instruments[id.get() as usize];
        let asset = instrument.spec.underlying();
        let Some(state) = self.accounts[account].mmp.get(&asset) else {
            return;
        };
        if state.frozen(now) {
            return;
        }
        let per_contract = self.delta_per_contract_e8(instrument);
        let signed = if side == Side::Buy {
            qty.contracts()
        } else {
            -qty.contracts()
        };
        let delta_e8 = libm::round(per_contract * signed as f64);
        let delta_e8 = if delta_e8.is_finite() {
            delta_e8 as i64
        } else {
            0
        };
        let state = self
            .accounts
            .get_mut(account)
            .mmp
            .get_mut(&asset)
            .expect("checked above");
        if let Some((contracts, delta_e8)) = state.record(now, qty.contracts(), delta_e8) {
            let frozen_until_ms = state.frozen_until_ms.expect("a trip freezes");
            self.mmp_trips.push(MmpTrip {
                account,
                asset,
                contracts,
                delta_e8,
                frozen_until_ms,
            });
        }
    }

    /// Pulls the quotes of every account whose protection tripped.
    pub(crate) fn apply_mmp_trips(&mut self, events: &mut Vec<Event>) {
        let trips = std::mem::take(&mut self.mmp_trips);
        for trip in &trips {
            // Bounded by orders_open_max.
            let targets: Vec<(InstrumentId, bulwark_types::OrderId)> = self.accounts[trip.account]
                .client_orders
                .values()
                .filter(|(at, _)| {
                    self.instruments[at.get() as usize].spec.underlying() == trip.asset
                })
                .copied()
                .collect();
            for (at, order_id) in targets {
                let Some(resting) = self.instruments[at.get() as usize]
                    .book
                    .get(order_id)
                    .copied()
                else {
                    continue;
                };
                self.cancel_resting(at, &resting, CancelReason::MarketMakerProtection, events);
            }
            events.push(Event::MmpTriggered {
                account: trip.account,
                asset: trip.asset,
                contracts: Qty::from_contracts(trip.contracts),
                delta_e8: trip.delta_e8,
                frozen_until_ms: trip.frozen_until_ms,
            });
        }
        self.mmp_trips = trips;
        self.mmp_trips.clear();
    }

    /// Delta of one contract, in units of the underlying times 10^8.
    fn delta_per_contract_e8(&self, instrument: &Instrument) -> f64 {
        let multiplier = instrument.spec.multiplier.e8() as f64;
        match instrument.kind {
            InstrumentKind::Perpetual => multiplier,
            InstrumentKind::Option {
                strike,
                right,
                expiry_ms,
            } => multiplier * self.option_delta(instrument, strike.micros(), right, expiry_ms),
        }
    }

    fn option_delta(
        &self,
        instrument: &Instrument,
        strike_micros: i64,
        right: Right,
        expiry_ms: u64,
    ) -> f64 {
        use bulwark_pricing::Black76;
        let kind = crate::instrument::option_kind(right);
        let Some(index) = self.valuation_prices(instrument).index else {
            return 0.0;
        };
        let (forward, strike) = (index.micros() as f64 / 1e6, strike_micros as f64 / 1e6);
        let intrinsic = match right {
            Right::Call if forward > strike => 1.0,
            Right::Put if forward < strike => -1.0,
            _ => 0.0,
        };
        let years = crate::instrument::years_to_expiry(expiry_ms, self.time.millis());
        let Some(vol) = self.implied_vol(instrument) else {
            return intrinsic;
        };
        Black76::new(forward, strike, years, vol, 0.0)
            .and_then(|model| model.greeks(kind))
            .map_or(intrinsic, |g| g.delta)
    }
}
