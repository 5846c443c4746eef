//! Margin: what an account's positions and resting orders require, and what its equity is.
//!
//! Owns: the [`MarginModel`] interface that every margin method implements (standard margin
//! here; portfolio margin, `bulwark-risk`'s scenario grid, plugs in behind the same trait in
//! module `portfolio`), and [`StandardMargin`], Deribit's rules for linear products.
//! Never: mutates state, or rounds in the account's favour: requirements round up, values
//! down (see [`bulwark_types::Multiplier::value`]).
//!
//! Resting orders reserve margin as if they filled: for each instrument the requirement is the
//! worse of "all bids fill" and "all asks fill", plus what those fills would lose against the
//! mark. Order losses are taken per side in aggregate (`max(0, premium - value at mark)`), which
//! equals the per-order sum whenever a side's orders all lie on one side of the mark.

use crate::account::Exposure;
use crate::params::{BPS, StandardMarginParams};
use bulwark_types::num::{mul_div_ceil, mul_div_floor};
use bulwark_types::{InstrumentId, InstrumentKind, InstrumentSpec, Money, Qty, Right, UnitPrice};

/// Collateral an account must hold. `initial` gates new risk; falling below `maintenance`
/// makes the account liquidatable.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MarginRequirement {
    pub initial: Money,
    pub maintenance: Money,
}

impl MarginRequirement {
    pub fn plus(self, other: Self) -> Self {
        Self {
            initial: self
                .initial
                .checked_add(other.initial)
                .expect("requirements bounded"),
            maintenance: self
                .maintenance
                .checked_add(other.maintenance)
                .expect("requirements bounded"),
        }
    }
}

/// Prices an exposure is valued at.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ValuationPrices {
    /// Index price of the underlying, if one has been agreed.
    pub index: Option<UnitPrice>,
    /// Mark price of the instrument, if one has been agreed.
    pub mark: Option<UnitPrice>,
}

/// One instrument of an account, as a margin model sees it.
#[derive(Copy, Clone, Debug)]
pub struct ExposureView<'a> {
    pub id: InstrumentId,
    pub spec: &'a InstrumentSpec,
    pub kind: InstrumentKind,
    pub exposure: &'a Exposure,
    pub prices: ValuationPrices,
    /// Perpetuals under risk limits: contracts in one margin tier (the instrument's depth
    /// reference times the tier size); 0 when the instrument has no tiers.
    pub tier_contracts: i64,
}

impl ExposureView<'_> {
    /// The price a position is valued at: the mark; for an option without one, its intrinsic
    /// value (a floor of its worth); for a perpetual without one, the index.
    pub fn valuation_price(&self) -> Option<UnitPrice> {
        valuation_price(self.kind, self.prices)
    }

    /// Value of the position at the valuation price (zero if none is known: no position can
    /// exist without one, since trading requires a mark).
    pub fn position_value(&self) -> Money {
        match self.valuation_price() {
            Some(price) => self
                .spec
                .multiplier
                .value(Qty::from_contracts(self.exposure.position), price),
            None => Money::ZERO,
        }
    }
}

/// The price a position in an instrument of `kind` is valued at (see
/// [`ExposureView::valuation_price`]).
pub fn valuation_price(kind: InstrumentKind, prices: ValuationPrices) -> Option<UnitPrice> {
    if let Some(mark) = prices.mark {
        return Some(mark);
    }
    let index = prices.index?;
    Some(match kind {
        InstrumentKind::Perpetual => index,
        InstrumentKind::Option { strike, right, .. } => intrinsic(right, strike, index),
    })
}

/// Intrinsic value per unit of underlying of an option at `index`.
pub fn intrinsic(right: Right, strike: UnitPrice, index: UnitPrice) -> UnitPrice {
    let value = match right {
        Right::Call => index.micros() - strike.micros(),
        Right::Put => strike.micros() - index.micros(),
    };
    UnitPrice::from_micros(value.max(0))
}

/// A margin method. Implementations must be pure and deterministic: every validator computes
/// the same requirement from the same state.
pub trait MarginModel {
    /// The requirement of one account holding `exposures` (every instrument in which it has a
    /// position or resting orders).
    fn requirement<'a>(
        &self,
        exposures: &mut dyn Iterator<Item = ExposureView<'a>>,
    ) -> MarginRequirement;

    /// The maintenance requirement alone (positions only), for the liquidation pass, which
    /// measures every account every block. Must equal `requirement(..).maintenance`.
    fn maintenance<'a>(&self, exposures: &mut dyn Iterator<Item = ExposureView<'a>>) -> Money {
        self.requirement(exposures).maintenance
    }
}

/// Deribit-style standard margin for linear (USDC) perpetuals and options, per instrument.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StandardMargin {
    pub params: StandardMarginParams,
    /// The perpetual's margin tiers; `None`: flat rates.
    pub tiers: Option<RiskTiers>,
}

/// The perpetual's risk-limit tiers (from [`crate::params::RiskLimitParams`]): each tier of a
/// position beyond the first adds `initial_step_bps` and `maintenance_step_bps` to the rates
/// of the contracts in it, up to `tiers_max` steps. The tier length (contracts) comes with each
/// [`ExposureView`], since it follows the instrument's book.
///
/// Bracketed like an income tax, the requirement is continuous and increasing in the position,
/// and for a fixed position linear in the mark at a per-unit rate of at most the base rate
/// plus `tiers_max` steps (what the liquidation screen bounds drift with).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RiskTiers {
    pub initial_step_bps: i64,
    pub maintenance_step_bps: i64,
    pub tiers_max: u32,
}

impl StandardMargin {
    /// Standard margin under `params`: its rates, and the perpetual's tiers when risk limits
    /// are on.
    pub fn new(params: &crate::params::ExchangeParams) -> Self {
        Self {
            params: params.margin,
            tiers: params.risk_limits.map(|limits| RiskTiers {
                initial_step_bps: limits.tier_initial_step_bps,
                maintenance_step_bps: limits.tier_maintenance_step_bps,
                tiers_max: limits.tiers_max,
            }),
        }
    }
}

impl RiskTiers {
    /// `sum over the contracts of min(tier index, tiers_max)` for a position of `contracts`
    /// (either sign) in tiers of `tier_contracts`: the steps the position pays for, in
    /// contracts. Zero within the first tier, or without tiers (`tier_contracts <= 0`).
    pub fn steps_contracts(&self, contracts: i64, tier_contracts: i64) -> i128 {
        if tier_contracts <= 0 || self.tiers_max == 0 {
            return 0;
        }
        let size = i128::from(contracts.unsigned_abs());
        let tier = i128::from(tier_contracts);
        let (full, part) = (size / tier, size % tier);
        let k = i128::from(self.tiers_max);
        // sum_{i < full} min(i, k): every full tier's index, capped.
        let full_steps = if full <= k + 1 {
            full * (full - 1).max(0) / 2
        } else {
            k * (k + 1) / 2 + (full - 1 - k) * k
        };
        let steps = tier * full_steps + full.min(k) * part;
        debug_assert!(
            steps >= 0 && steps <= size * k,
            "each contract pays at most k steps"
        );
        steps
    }

    /// What `steps_contracts` of tier steps at `step_bps` cost at `mark`, rounded up.
    fn addon(&self, view: &ExposureView<'_>, steps_contracts: i128, step_bps: i64) -> Money {
        if steps_contracts == 0 || step_bps == 0 {
            return Money::ZERO;
        }
        // step x steps <= |contracts| x 100% (checked in genesis), and |contracts| and the
        // mark fit in 63 bits: the product fits in i128 before the multiplier's division.
        let mark = view
            .valuation_price()
            .expect("positions and orders exist only where a price is known");
        let per_unit = steps_contracts
            .checked_mul(i128::from(step_bps))
            .and_then(|bps| bps.checked_mul(i128::from(mark.micros())))
            .expect("tier steps bounded by the position and 100%");
        Money::from_micros(mul_div_ceil(
            per_unit,
            i128::from(view.spec.multiplier.e8()),
            i128::from(BPS) * i128::from(bulwark_types::num::UNDERLYING_SCALE),
        ))
    }
}

impl MarginModel for StandardMargin {
    fn requirement<'a>(
        &self,
        exposures: &mut dyn Iterator<Item = ExposureView<'a>>,
    ) -> MarginRequirement {
        exposures.fold(MarginRequirement::default(), |total, view| {
            total.plus(self.instrument_requirement(&view))
        })
    }

    fn maintenance<'a>(&self, exposures: &mut dyn Iterator<Item = ExposureView<'a>>) -> Money {
        exposures.fold(Money::ZERO, |total, view| {
            total
                .checked_add(self.instrument_maintenance(&view))
                .expect("requirements bounded")
        })
    }
}

impl StandardMargin {
    /// The maintenance requirement of one instrument's position: the same figure as
    /// [`Self::instrument_requirement`]'s, without pricing the resting orders.
    pub fn instrument_maintenance(&self, view: &ExposureView<'_>) -> Money {
        let position = view.exposure.position;
        if position == 0 {
            return Money::ZERO;
        }
        let mark = view
            .valuation_price()
            .expect("positions exist only where a price is known");
        let m = view.spec.multiplier;
        match view.kind {
            InstrumentKind::Perpetual => bps_ceil(
                m.value_ceil(Qty::from_contracts(position.abs()), mark),
                self.params.perpetual_maintenance_bps,
            )
            .checked_add(self.tier_addon(view, position, false))
            .expect("one perpetual's maintenance (money bounds)"),
            InstrumentKind::Option { strike, right, .. } if position < 0 => {
                let underlying = view.prices.index.unwrap_or(strike);
                let (_, per_maintenance) =
                    self.short_option_per_unit(right, strike, underlying, mark);
                m.value_ceil(Qty::from_contracts(-position), per_maintenance)
            }
            InstrumentKind::Option { .. } => Money::ZERO,
        }
    }

    /// The requirement of one instrument's position and resting orders.
    pub fn instrument_requirement(&self, view: &ExposureView<'_>) -> MarginRequirement {
        let Some(mark) = view.valuation_price() else {
            assert!(
                view.exposure.position == 0
                    && view.exposure.bids.count == 0
                    && view.exposure.asks.count == 0,
                "positions and orders exist only where a price is known"
            );
            return MarginRequirement::default();
        };
        let e = view.exposure;
        let m = view.spec.multiplier;
        let (bid_loss, ask_loss) = order_losses(view, mark);
        let if_bids_fill = e.position + e.bids.qty;
        let if_asks_fill = e.position - e.asks.qty;
        match view.kind {
            InstrumentKind::Perpetual => {
                let p = &self.params;
                let notional =
                    |contracts: i64| m.value_ceil(Qty::from_contracts(contracts.abs()), mark);
                let initial_if = |contracts: i64, loss: Money| {
                    bps_ceil(notional(contracts), p.perpetual_initial_bps)
                        .checked_add(self.tier_addon(view, contracts, true))
                        .and_then(|m| m.checked_add(loss))
                        .expect("one perpetual's initial margin and order loss (money bounds)")
                };
                let initial =
                    initial_if(if_bids_fill, bid_loss).max(initial_if(if_asks_fill, ask_loss));
                MarginRequirement {
                    initial,
                    maintenance: bps_ceil(notional(e.position), p.perpetual_maintenance_bps)
                        .checked_add(self.tier_addon(view, e.position, false))
                        .expect("one perpetual's maintenance (money bounds)"),
                }
            }
            InstrumentKind::Option { strike, right, .. } => {
                // Without an index the underlying is taken at the strike (no OTM credit).
                let underlying = view.prices.index.unwrap_or(strike);
                let (per_initial, per_maintenance) =
                    self.short_option_per_unit(right, strike, underlying, mark);
                let shorts = |contracts: i64| Qty::from_contracts((-contracts).max(0));
                let initial = m
                    .value_ceil(shorts(if_bids_fill), per_initial)
                    .checked_add(bid_loss)
                    .expect("one short option's initial margin and order loss (money bounds)")
                    .max(
                        m.value_ceil(shorts(if_asks_fill), per_initial)
                            .checked_add(ask_loss)
                            .expect(
                                "one short option's initial margin and order loss (money bounds)",
                            ),
                    );
                MarginRequirement {
                    initial,
                    maintenance: m.value_ceil(shorts(e.position), per_maintenance),
                }
            }
        }
    }

    /// What a perpetual position of `contracts` pays above the base rate for its size (its
    /// tiers beyond the first): initial when `initial`, else maintenance. Zero for options,
    /// without tiers, and within the first tier.
    pub fn tier_addon(&self, view: &ExposureView<'_>, contracts: i64, initial: bool) -> Money {
        let Some(tiers) = self.tiers else {
            return Money::ZERO;
        };
        if !matches!(view.kind, InstrumentKind::Perpetual) {
            return Money::ZERO;
        }
        let steps = tiers.steps_contracts(contracts, view.tier_contracts);
        let step_bps = if initial {
            tiers.initial_step_bps
        } else {
            tiers.maintenance_step_bps
        };
        tiers.addon(view, steps, step_bps)
    }

    /// The size add-on of one instrument for a margin method that prices the rest itself
    /// (portfolio margin): the tier add-on of the position (maintenance) and of the worse of
    /// "all bids fill" and "all asks fill" (initial).
    pub fn size_addon(&self, view: &ExposureView<'_>) -> MarginRequirement {
        let e = view.exposure;
        let initial = self
            .tier_addon(view, e.position + e.bids.qty, true)
            .max(self.tier_addon(view, e.position - e.asks.qty, true));
        MarginRequirement {
            initial,
            maintenance: self.tier_addon(view, e.position, false),
        }
    }

    /// The highest maintenance rate a perpetual contract can pay (the base rate plus every
    /// tier step), bps: the slope of maintenance in the mark for a fixed position.
    pub fn perpetual_maintenance_bps_max(&self) -> i64 {
        let steps = self.tiers.map_or(0, |t| {
            t.maintenance_step_bps
                .saturating_mul(i64::from(t.tiers_max))
        });
        self.params.perpetual_maintenance_bps.saturating_add(steps)
    }

    /// Initial and maintenance margin of one short option per unit of underlying.
    pub fn short_option_per_unit(
        &self,
        right: Right,
        strike: UnitPrice,
        underlying: UnitPrice,
        mark: UnitPrice,
    ) -> (UnitPrice, UnitPrice) {
        let p = &self.params;
        let u = i128::from(underlying.micros());
        let otm = i128::from(match right {
            Right::Call => (strike.micros() - underlying.micros()).max(0),
            Right::Put => (underlying.micros() - strike.micros()).max(0),
        });
        // max(base - OTM/U, min), kept in bps of U; the requirement rounds up.
        let otm_bps = if u > 0 {
            mul_div_floor(otm, i128::from(BPS), u)
        } else {
            0
        };
        let rate_bps = (i128::from(p.option_initial_base_bps) - otm_bps)
            .max(i128::from(p.option_initial_min_bps));
        let per = |bps: i128| {
            let base = mul_div_ceil(u, bps, i128::from(BPS));
            UnitPrice::from_micros(
                i64::try_from(base + i128::from(mark.micros())).expect("below PRICE_MAX x 2"),
            )
        };
        (per(rate_bps), per(i128::from(p.option_maintenance_bps)))
    }
}

/// What an instrument's resting bids and asks would lose against `mark` if they all filled
/// (each never negative): a bid above the mark pays more than the position is worth.
pub fn order_losses(view: &ExposureView<'_>, mark: UnitPrice) -> (Money, Money) {
    let e = view.exposure;
    let m = view.spec.multiplier;
    let tick_value = view.spec.tick_value().micros();
    let bid_premium = Money::from_micros(e.bids.notional_ticks * tick_value);
    let ask_premium = Money::from_micros(e.asks.notional_ticks * tick_value);
    let bid_loss = bid_premium
        .checked_sub(m.value(Qty::from_contracts(e.bids.qty), mark))
        .expect("resting bids' premium and value (money bounds)")
        .max(Money::ZERO);
    let ask_loss = m
        .value_ceil(Qty::from_contracts(e.asks.qty), mark)
        .checked_sub(ask_premium)
        .expect("resting asks' value and premium (money bounds)")
        .max(Money::ZERO);
    (bid_loss, ask_loss)
}

/// `amount x bps / 10_000`, rounded up.
pub fn bps_ceil(amount: Money, bps: i64) -> Money {
    Money::from_micros(bulwark_types::num::mul_div_ceil(
        amount.micros(),
        i128::from(bps),
        i128::from(BPS),
    ))
}

/// The part of a position's value that is not realised money: a long option's whole value
/// (its premium was paid; what it is worth now is a mark, not cash), a perpetual's unrealised
/// gain over what was paid for it. Zero for short options and losing perpetuals: their value
/// already lowers equity.
pub fn unrealised_value(view: &ExposureView<'_>) -> Money {
    let position = view.exposure.position;
    if position == 0 {
        return Money::ZERO;
    }
    let value = view.position_value();
    match view.kind {
        InstrumentKind::Option { .. } => value.max(Money::ZERO),
        InstrumentKind::Perpetual => value
            .checked_sub(view.exposure.cost)
            .expect("one perpetual's value and cost (money bounds)")
            .max(Money::ZERO),
    }
}

/// Equity of an account: cash plus its positions at their valuation prices.
pub fn equity<'a>(cash: Money, exposures: impl Iterator<Item = ExposureView<'a>>) -> Money {
    exposures.fold(cash, |sum, view| {
        sum.checked_add(view.position_value())
            .expect("equity sums an account's positions (money bounds)")
    })
}
