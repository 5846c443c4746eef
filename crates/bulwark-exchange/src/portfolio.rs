//! Portfolio margin in the exchange: `bulwark-risk`'s scenario grid behind the [`MarginModel`]
//! interface, for accounts that chose it.
//!
//! Owns: per underlying, the realised-vol estimate that sets the grid's range (replicated,
//! snapshotted) and the derived engine and contract vectors (one per trading instrument,
//! recomputed once per block from the index, the block time and each option's mark; never
//! snapshotted, rebuilt on restore); [`PortfolioMarginModel`], which sums an account's positions
//! over those vectors; the `SetMarginMode` transaction.
//! Never: prices an option inside the order path. Black-76 runs once per instrument per block
//! (40 prices on the default grid); an account's requirement is then integer sums of cached
//! vectors, `O(positions x scenarios)`, exact and in a fixed order.
//!
//! Vols: each option's vol is the one its mark implies (`bulwark-pricing`, on `libm`); an option
//! whose mark implies none (at intrinsic, no mark) takes the index's realised vol. An
//! instrument without a vector (no index yet, a vol outside the model's domain) is margined by
//! standard margin inside the same account, so no position goes unmargined.
//!
//! Perpetual positions beyond the first risk-limit tier pay standard margin's tier add-on on
//! top of the grid (`StandardMargin::size_addon`): the grid prices a move, not a position too
//! large for the book, and choosing portfolio margin does not escape the tiers.
//!
//! Resting orders count as if they filled, on the worse side per scenario
//! ([`bulwark_risk::ScenarioVector::add_open_orders`]), plus what they would lose against the
//! mark; they raise the initial requirement only, as in standard margin.

use crate::account::{Account, MarginMode};
use crate::event::Event;
use crate::exchange::Exchange;
use crate::instrument::{Instrument, InstrumentStatus};
use crate::margin::{ExposureView, MarginModel, MarginRequirement, StandardMargin, order_losses};
use bulwark_risk::{
    ContractVector, PortfolioMargin, PortfolioMarginParams, RealisedVol, ScenarioVector, Valuation,
};
use bulwark_types::{AccountId, AssetCode, InstrumentId, InstrumentKind, Money, Qty, RejectReason};
use std::collections::BTreeMap;

/// Portfolio margin state of one underlying.
#[derive(Clone, Debug)]
pub(crate) struct UnderlyingRisk {
    /// Replicated: updated with each block's index, snapshotted.
    pub(crate) realised: RealisedVol,
    /// Derived from the parameters and the realised vol's range.
    engine: PortfolioMargin,
    /// Derived: the valuation the vectors were computed at (`None` before an index exists).
    valuation: Option<Valuation>,
    /// Derived: one long contract of each trading instrument over the grid.
    vectors: BTreeMap<InstrumentId, ContractVector>,
}

impl UnderlyingRisk {
    pub(crate) fn new(params: &PortfolioMarginParams, realised: RealisedVol) -> Self {
        let engine = PortfolioMargin::new(*params, realised.range_bps(params))
            .expect("parameters were checked in genesis");
        Self {
            realised,
            engine,
            valuation: None,
            vectors: BTreeMap::new(),
        }
    }

    /// The grid's current price range, bps of the index either way.
    pub(crate) fn range_bps(&self) -> u32 {
        self.engine.grid().range_bps()
    }
}

/// Portfolio margin over the exchange's cached contract vectors.
pub struct PortfolioMarginModel<'a> {
    pub(crate) risk: &'a BTreeMap<AssetCode, UnderlyingRisk>,
    /// For instruments without a vector.
    pub(crate) standard: &'a StandardMargin,
}

/// One underlying's account vectors while a requirement is summed.
struct Sums<'r> {
    engine: &'r PortfolioMargin,
    /// Positions only: sets maintenance.
    positions: ScenarioVector,
    /// Instruments with resting orders: added to a copy of `positions` to set initial.
    orders: Vec<(&'r ContractVector, Qty, Qty, Qty)>,
    order_losses: Money,
}

impl MarginModel for PortfolioMarginModel<'_> {
    fn requirement<'a>(
        &self,
        exposures: &mut dyn Iterator<Item = ExposureView<'a>>,
    ) -> MarginRequirement {
        let mut sums: BTreeMap<AssetCode, Sums> = BTreeMap::new();
        let mut fallback = MarginRequirement::default();
        for view in exposures {
            if self.add(&mut sums, &view) {
                // The grid prices the move; a position too large for the book pays its tiers.
                fallback = fallback.plus(self.standard.size_addon(&view));
            } else {
                fallback = fallback.plus(self.standard.instrument_requirement(&view));
            }
        }
        sums.into_values().fold(fallback, |total, s| {
            let maintenance = s
                .engine
                .requirement(&s.positions)
                .expect("vectors share the engine's grid; sums bounded by position_max")
                .maintenance;
            let mut with_orders = s.positions;
            for (contract, position, bids, asks) in s.orders {
                with_orders
                    .add_open_orders(contract, position, bids, asks)
                    .expect("as above");
            }
            let initial = s
                .engine
                .requirement(&with_orders)
                .expect("as above")
                .initial
                .checked_add(s.order_losses)
                .expect("an underlying's initial margin and order losses (money bounds)");
            total.plus(MarginRequirement {
                initial: initial.max(maintenance),
                maintenance,
            })
        })
    }

    fn maintenance<'a>(&self, exposures: &mut dyn Iterator<Item = ExposureView<'a>>) -> Money {
        let mut sums: BTreeMap<AssetCode, Sums> = BTreeMap::new();
        let mut fallback = Money::ZERO;
        for view in exposures {
            let own = if self.add(&mut sums, &view) {
                self.standard.size_addon(&view).maintenance
            } else {
                self.standard.instrument_maintenance(&view)
            };
            fallback = fallback
                .checked_add(own)
                .expect("maintenance sums an account's positions (money bounds)");
        }
        sums.values().fold(fallback, |total, s| {
            let maintenance = s
                .engine
                .requirement(&s.positions)
                .expect("vectors share the engine's grid; sums bounded by position_max")
                .maintenance;
            total
                .checked_add(maintenance)
                .expect("maintenance sums an account's underlyings (money bounds)")
        })
    }
}

impl<'r> PortfolioMarginModel<'r> {
    /// Adds one instrument to its underlying's sums; `false` when it has no vector (the caller
    /// margins it by standard margin).
    fn add(&self, sums: &mut BTreeMap<AssetCode, Sums<'r>>, view: &ExposureView<'_>) -> bool {
        let asset = view.spec.underlying();
        let Some(risk) = self.risk.get(&asset) else {
            return false;
        };
        let (Some(valuation), Some(contract)) = (risk.valuation, risk.vectors.get(&view.id)) else {
            return false;
        };
        let Some(mark) = view.valuation_price() else {
            return false;
        };
        let entry = sums.entry(asset).or_insert_with(|| Sums {
            engine: &risk.engine,
            positions: risk.engine.empty_account(valuation),
            orders: Vec::new(),
            order_losses: Money::ZERO,
        });
        let e = view.exposure;
        let position = Qty::from_contracts(e.position);
        if e.position != 0 {
            let added = entry.positions.apply_fill(contract, Qty::ZERO, position);
            assert!(
                added.is_ok(),
                "one basis per underlying and sums bounded by position_max: {added:?}"
            );
        }
        if e.bids.qty == 0 && e.asks.qty == 0 {
            return true;
        }
        entry.orders.push((
            contract,
            position,
            Qty::from_contracts(e.bids.qty),
            Qty::from_contracts(e.asks.qty),
        ));
        let (bid_loss, ask_loss) = order_losses(view, mark);
        entry.order_losses = entry
            .order_losses
            .checked_add(bid_loss.max(ask_loss))
            .expect("order losses sum an account's resting orders (money bounds)");
        true
    }
}

impl Exchange {
    /// Takes this block's index of every underlying into its realised vol, then recomputes the
    /// contract vectors. Called once per block, after prices and marks.
    pub(crate) fn update_portfolio_risk(&mut self) {
        let Some(params) = self.params.portfolio else {
            return;
        };
        for (asset, index) in &self.index {
            let risk = self.portfolio.entry(*asset).or_insert_with(|| {
                UnderlyingRisk::new(
                    &params,
                    RealisedVol::new(&params).expect("parameters were checked in genesis"),
                )
            });
            // Errors only on a time before the last print, which block order rules out.
            let _ = risk.realised.update(&params, *index, self.time.millis());
        }
        self.revalue_portfolio();
    }

    /// Recomputes every underlying's engine (if its range moved) and contract vectors at the
    /// current index, block time and marks. Deterministic from replicated state, so a restored
    /// exchange rebuilds the same vectors.
    pub(crate) fn revalue_portfolio(&mut self) {
        let Some(params) = self.params.portfolio else {
            return;
        };
        let mut risk = std::mem::take(&mut self.portfolio);
        for (asset, entry) in &mut risk {
            let range = entry.realised.range_bps(&params);
            if range != entry.range_bps() {
                entry.engine =
                    PortfolioMargin::new(params, range).expect("range lies within the bounds");
            }
            entry.vectors.clear();
            entry.valuation = None;
            let Some(index) = self.index.get(asset).copied() else {
                continue;
            };
            let valuation = Valuation {
                underlying: *asset,
                index,
                time_ms: self.time.millis(),
            };
            entry.valuation = Some(valuation);
            let realised_vol = f64::from(entry.realised.vol_bps()) / 1e4;
            for instrument in self
                .instruments
                .iter()
                .filter(|i| i.status == InstrumentStatus::Trading && i.spec.underlying() == *asset)
            {
                let vol = self
                    .implied_vol(instrument)
                    .unwrap_or(realised_vol)
                    .clamp(bulwark_pricing::VOL_MIN, bulwark_pricing::VOL_MAX);
                if let Ok(vector) = entry
                    .engine
                    .contract_vector(&valuation, &instrument.spec, vol)
                {
                    entry.vectors.insert(instrument.id, vector);
                }
            }
        }
        self.portfolio = risk;
    }

    /// The vol an option's mark implies at the current index and block time, if any.
    pub(crate) fn implied_vol(&self, instrument: &Instrument) -> Option<f64> {
        use bulwark_pricing::implied_vol;
        let InstrumentKind::Option {
            strike,
            right,
            expiry_ms,
        } = instrument.kind
        else {
            return None;
        };
        let index = self.valuation_prices(instrument).index?;
        let mark = instrument.mark?;
        let years = crate::instrument::years_to_expiry(expiry_ms, self.time.millis());
        implied_vol(
            crate::instrument::option_kind(right),
            index.micros() as f64 / 1e6,
            strike.micros() as f64 / 1e6,
            years,
            0.0,
            mark.micros() as f64 / 1e6,
        )
        .ok()
    }

    /// Switches an account's margin method, if it meets the new method's initial margin (or
    /// the switch lowers what it must hold).
    pub(crate) fn set_margin_mode(
        &mut self,
        account: AccountId,
        portfolio: bool,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        if portfolio && self.params.portfolio.is_none() {
            return Err(RejectReason::PortfolioMarginUnavailable);
        }
        let mode = if portfolio {
            MarginMode::Portfolio
        } else {
            MarginMode::Standard
        };
        let holder = &self.accounts[account];
        if holder.margin_mode == mode {
            return Err(RejectReason::MarginModeUnchanged);
        }
        let before = self.margin_of(holder, None);
        let mut switched: Account = holder.clone();
        switched.margin_mode = mode;
        let after = self.margin_of(&switched, None);
        if after.requirement.initial > after.equity
            && after.requirement.initial > before.requirement.initial
        {
            let shortfall = after
                .requirement
                .initial
                .checked_sub(after.equity)
                .expect("initial margin and equity are account sums (money bounds)");
            return Err(RejectReason::MarginInsufficient { shortfall });
        }
        self.accounts.get_mut(account).margin_mode = mode;
        events.push(Event::MarginModeChanged { account, portfolio });
        Ok(())
    }

    /// The grid range portfolio margin uses for `asset` now, bps either way.
    pub fn portfolio_range_bps(&self, asset: AssetCode) -> Option<u32> {
        self.portfolio.get(&asset).map(UnderlyingRisk::range_bps)
    }
}
