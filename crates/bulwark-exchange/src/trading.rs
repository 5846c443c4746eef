//! Orders: admission (the stateful checks, in precedence order), execution through the book,
//! and the money and positions each fill moves.
//!
//! Admission decides everything that can fail before anything changes, so a rejected order
//! leaves no trace but its spent nonce. Execution cannot fail.

use crate::account::{Account, Exposure};
use crate::event::{Event, Trade};
use crate::exchange::Exchange;
use crate::instrument::{Instrument, InstrumentStatus};
use crate::ledger::Pocket;
use crate::margin::bps_ceil;
use crate::params::BPS;
use bulwark_book::{Fill, NewOrder, Remainder, RestingOrder};
use bulwark_types::num::{mul_div_ceil, mul_div_floor};
use bulwark_types::{
    AccountId, CancelReason, ClientOrderId, InstrumentId, InstrumentKind, Money, OrderId, OrderRef,
    OrderRequest, OrderType, Price, Qty, RejectReason, SelfTradePrevention, Side, TimeInForce,
    TxBody, UnitPrice,
};
use std::collections::{BTreeMap, BTreeSet};

/// An order's terms before admission: from a new order request, or from an amend.
#[derive(Copy, Clone, Debug)]
struct OrderTerms {
    instrument: InstrumentId,
    client_order_id: ClientOrderId,
    side: Side,
    qty: Qty,
    /// `None` for a market order.
    price: Option<UnitPrice>,
    time_in_force: TimeInForce,
    post_only: bool,
    reduce_only: bool,
    self_trade: SelfTradePrevention,
}

impl OrderTerms {
    fn from_request(request: &OrderRequest) -> Self {
        let (price, time_in_force, post_only) = match request.order_type {
            OrderType::Limit {
                price,
                time_in_force,
                post_only,
            } => (Some(price), time_in_force, post_only),
            OrderType::Market => (None, TimeInForce::ImmediateOrCancel, false),
        };
        Self {
            instrument: request.instrument,
            client_order_id: request.client_order_id,
            side: request.side,
            qty: request.qty,
            price,
            time_in_force,
            post_only,
            reduce_only: request.reduce_only,
            self_trade: request.self_trade,
        }
    }
}

/// What an order asks of the band: a limit to check against it, a market order's reach, or
/// the band's far edge (the liquidation engine's orders).
#[derive(Copy, Clone)]
enum Asked {
    Limit(Price),
    Market,
    BandEdge,
}

/// Lowest and highest price (ticks) an order may carry: the band around the mark.
pub(crate) fn band_ticks(
    mark: UnitPrice,
    tick_size: UnitPrice,
    width_bps: i64,
    width_ticks_min: i64,
) -> (Price, Price) {
    let (mark, tick) = (i128::from(mark.micros()), i128::from(tick_size.micros()));
    let width = mul_div_floor(mark, i128::from(width_bps), i128::from(BPS))
        .max(i128::from(width_ticks_min) * tick);
    let low = mul_div_ceil(mark - width, 1, tick).max(1);
    let high = mul_div_floor(mark + width, 1, tick);
    let clamp = |ticks: i128| Price::from_ticks(i64::try_from(ticks).unwrap_or(i64::MAX));
    (clamp(low), clamp(high))
}

/// What a cancel would cancel in a state ([`Exchange::cancel_target`]): one open order, or an
/// account's open orders in one instrument (`Some`) or in all (`None`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CancelTarget {
    Order(InstrumentId, OrderId),
    Orders(Option<InstrumentId>),
}

impl Exchange {
    pub(crate) fn place_order(
        &mut self,
        account: AccountId,
        request: &OrderRequest,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let mut order = self.admit(account, &OrderTerms::from_request(request), None)?;
        order.order_id = self.next_order_id();
        self.execute(request.instrument, order, true, events);
        Ok(())
    }

    /// The stateful checks, in [`RejectReason`] order. `replacing` is the resting order an
    /// amend replaces: it is treated as gone.
    fn admit(
        &self,
        account: AccountId,
        terms: &OrderTerms,
        replacing: Option<&RestingOrder>,
    ) -> Result<NewOrder, RejectReason> {
        let instrument = self
            .instruments
            .get(terms.instrument.get() as usize)
            .ok_or(RejectReason::InstrumentUnknown)?;
        if instrument.status != InstrumentStatus::Trading {
            return Err(RejectReason::InstrumentNotTrading);
        }
        let spec = &instrument.spec;
        let limit = match terms.price {
            Some(price) => Some(
                price
                    .to_ticks(spec.tick_size)
                    .ok_or(RejectReason::PriceNotOnTick)?,
            ),
            None => None,
        };
        if terms.qty.contracts() % spec.lot_size.contracts() != 0 {
            return Err(RejectReason::QtyNotMultipleOfLot);
        }
        if terms.qty < spec.size_min {
            return Err(RejectReason::QtyBelowMinimum);
        }
        let price = self.price_within_band(instrument, terms.side, limit)?;
        if terms.post_only && self.would_cross(instrument, terms.side, price) {
            return Err(RejectReason::PostOnlyWouldCross);
        }
        let holder = &self.accounts[account];
        let mut exposure = holder
            .exposures
            .get(&terms.instrument)
            .copied()
            .unwrap_or_default();
        if let Some(old) = replacing {
            exposure.open_mut(old.side).remove(old.price, old.qty, true);
            if old.reduce_only {
                exposure.reduce_only_qty -= old.qty.contracts();
            }
        }
        self.check_account_terms(holder, terms, replacing.is_some(), &exposure)?;
        if !self.oracle_fresh(spec.underlying()) {
            // Degraded: only orders that cut the position may trade.
            let position = exposure.position;
            let reduces = (terms.side == Side::Buy && position < 0)
                || (terms.side == Side::Sell && position > 0);
            if !reduces || terms.qty.contracts() > position.abs() {
                return Err(RejectReason::OracleStale);
            }
        }
        if terms.time_in_force == TimeInForce::GoodTilCancelled
            && self.mmp_frozen(account, instrument)
        {
            return Err(RejectReason::MmpFrozen);
        }
        let position = exposure.position;
        exposure.open_mut(terms.side).add(price, terms.qty);
        let fee = self.fee_bound(instrument, price, terms.qty);
        self.check_position_limit(&exposure)?;
        // A market order, one that crosses, or one into a halted book's auction may trade on
        // arrival; others only rest.
        let may_take = terms.price.is_none()
            || instrument.book.is_halted()
            || self.would_cross(instrument, terms.side, price);
        self.check_open_interest(instrument, terms.side, terms.qty, position, may_take)?;
        self.check_margin(holder, terms.instrument, &exposure, fee)?;
        Ok(NewOrder {
            order_id: OrderId::new(u64::MAX), // assigned by the caller once admitted
            account,
            client_order_id: terms.client_order_id,
            side: terms.side,
            price,
            qty: terms.qty,
            time_in_force: terms.time_in_force,
            post_only: terms.post_only,
            reduce_only: terms.reduce_only,
            self_trade: terms.self_trade,
        })
    }

    /// The order's price in ticks, checked against the band around the mark. A market order
    /// gets as its limit its reach from the mark (`PriceBand::market_reach_bps`, within the
    /// band), so it can never sweep past it.
    pub(crate) fn price_within_band(
        &self,
        instrument: &Instrument,
        side: Side,
        limit: Option<Price>,
    ) -> Result<Price, RejectReason> {
        self.band_price(instrument, side, limit.map_or(Asked::Market, Asked::Limit))
    }

    /// The band's far edge on `side`: where the liquidation engine's orders reach (a market
    /// order reaches less far, [`Self::price_within_band`]).
    pub(crate) fn band_edge(
        &self,
        instrument: &Instrument,
        side: Side,
    ) -> Result<Price, RejectReason> {
        self.band_price(instrument, side, Asked::BandEdge)
    }

    fn band_price(
        &self,
        instrument: &Instrument,
        side: Side,
        asked: Asked,
    ) -> Result<Price, RejectReason> {
        let prices = self.valuation_prices(instrument);
        let (mark, band) = if instrument.is_option() {
            prices.index.ok_or(RejectReason::IndexPriceUnavailable)?;
            (instrument.mark, self.params.band_option)
        } else {
            let mut band = self.params.band_perpetual;
            if let Some(scaling) = self.params.band_vol {
                let sigma = self
                    .index
                    .variance(&instrument.spec.underlying())
                    .map_or(0, |r| r.sigma_bps(scaling.horizon_ms));
                let scaled = sigma.saturating_mul(scaling.sigmas_x100) / 100;
                band.width_bps = band.width_bps.max(scaled.min(scaling.width_max_bps));
            }
            (instrument.mark.or(prices.index), band)
        };
        let mark = mark.ok_or(RejectReason::MarkPriceUnavailable)?;
        // A limit order may be priced anywhere in the band; a market order's limit is its
        // reach, within the band (`PriceBand::market_reach_bps`).
        let width_bps = match asked {
            Asked::Limit(_) | Asked::BandEdge => band.width_bps,
            Asked::Market => band.market_reach_bps.min(band.width_bps),
        };
        let (low, high) = band_ticks(
            mark,
            instrument.spec.tick_size,
            width_bps,
            band.width_ticks_min,
        );
        match (asked, side) {
            (Asked::Limit(price), _) if price < low || price > high => {
                Err(RejectReason::PriceOutsideBand)
            }
            (Asked::Limit(price), _) => Ok(price),
            (Asked::Market | Asked::BandEdge, Side::Buy) => Ok(high),
            (Asked::Market | Asked::BandEdge, Side::Sell) => Ok(low),
        }
    }

    /// The prices (ticks) a market order in `instrument` sells down to and buys up to now:
    /// `PriceBand::market_reach_bps` around the mark. `None` for an unknown instrument, or
    /// one with no mark or index to centre the band on.
    pub fn market_limits(&self, instrument: InstrumentId) -> Option<(Price, Price)> {
        let instrument = self.instruments.get(instrument.get() as usize)?;
        Some((
            self.price_within_band(instrument, Side::Sell, None).ok()?,
            self.price_within_band(instrument, Side::Buy, None).ok()?,
        ))
    }

    /// Whether `body` may take liquidity from a book now: an order whose limit crosses the
    /// opposite side, a market order, or an amend (which may reprice across). The block's
    /// liquidation pass runs before the first such transaction
    /// (`LiquidationParams::before_orders`), so nothing in a block removes liquidity ahead
    /// of it; cancels and orders that only rest may come first.
    pub(crate) fn may_take(&self, body: &TxBody) -> bool {
        match body {
            TxBody::PlaceOrder(request) => {
                let Some(instrument) = self.instruments.get(request.instrument.get() as usize)
                else {
                    return false;
                };
                match request.order_type {
                    OrderType::Market => true,
                    OrderType::Limit {
                        post_only: true, ..
                    } => false,
                    OrderType::Limit { price, .. } => price
                        .to_ticks(instrument.spec.tick_size)
                        .is_none_or(|price| self.would_cross(instrument, request.side, price)),
                }
            }
            TxBody::AmendOrder { .. } => true,
            _ => false,
        }
    }

    fn would_cross(&self, instrument: &Instrument, side: Side, price: Price) -> bool {
        if instrument.book.is_halted() {
            // Nothing takes while halted: a post-only order waits for the auction.
            return false;
        }
        match side {
            Side::Buy => instrument
                .book
                .best_ask()
                .is_some_and(|(ask, _)| ask <= price),
            Side::Sell => instrument
                .book
                .best_bid()
                .is_some_and(|(bid, _)| bid >= price),
        }
    }

    fn check_account_terms(
        &self,
        holder: &Account,
        terms: &OrderTerms,
        amend: bool,
        exposure: &Exposure,
    ) -> Result<(), RejectReason> {
        if terms.reduce_only {
            let position = exposure.position;
            let reduces = (terms.side == Side::Buy && position < 0)
                || (terms.side == Side::Sell && position > 0);
            if !reduces || terms.qty.contracts() > position.abs() - exposure.reduce_only_qty {
                return Err(RejectReason::ReduceOnlyWouldIncrease);
            }
        }
        if !amend && holder.client_orders.contains_key(&terms.client_order_id) {
            return Err(RejectReason::ClientOrderIdInUse);
        }
        let may_rest = terms.time_in_force == TimeInForce::GoodTilCancelled;
        if !amend && may_rest && holder.orders_open() >= self.params.orders_open_max as usize {
            return Err(RejectReason::OpenOrderLimit);
        }
        Ok(())
    }

    /// Position limit with the order counted as resting (`exposure`).
    fn check_position_limit(&self, exposure: &Exposure) -> Result<(), RejectReason> {
        let max = self.params.position_max.contracts();
        if (exposure.position + exposure.bids.qty).abs() > max
            || (exposure.position - exposure.asks.qty).abs() > max
        {
            return Err(RejectReason::PositionLimit);
        }
        Ok(())
    }

    /// Initial margin and premium with the order counted as resting (`exposure`); `fee` is
    /// the most the order can pay in fees, held back from both, as is a pending withdrawal.
    ///
    /// An account below its initial margin may still cut its risk. An order that opens or
    /// increases a long option position must find its premium and fee in realised funds
    /// (`withdrawable`): unrealised gains and long options' value never pay for options.
    fn check_margin(
        &self,
        holder: &Account,
        instrument: InstrumentId,
        exposure: &Exposure,
        fee: Money,
    ) -> Result<(), RejectReason> {
        let after = self.margin_of(holder, Some((instrument, exposure)));
        let before = self.margin_of(holder, None);
        // A pending withdrawal's amount is held back from new risk until it is paid.
        let required = after
            .requirement
            .initial
            .checked_add(fee)
            .and_then(|r| r.checked_add(self.withdrawal_held(holder.id)))
            .expect("initial margin, one order's fee and a withdrawal (money bounds)");
        if required > after.equity && after.requirement.initial > before.requirement.initial {
            let shortfall = required
                .checked_sub(after.equity)
                .expect("initial margin, fee and equity are account sums (money bounds)");
            return Err(RejectReason::MarginInsufficient { shortfall });
        }
        if after.premium_reserved > before.premium_reserved {
            // `premium_reserved` already holds the most this order could pay in fees.
            if after.withdrawable.is_negative() {
                let shortfall = Money::from_micros(-after.withdrawable.micros());
                return Err(RejectReason::PremiumNotCovered { shortfall });
            }
        }
        Ok(())
    }

    /// Runs an admitted order through the book and books everything it did.
    pub(crate) fn execute(
        &mut self,
        instrument: InstrumentId,
        order: NewOrder,
        announce: bool,
        events: &mut Vec<Event>,
    ) {
        if announce {
            events.push(Event::OrderAccepted {
                instrument,
                order_id: order.order_id,
                account: order.account,
                client_order_id: order.client_order_id,
                side: order.side,
                price: order.price,
                qty: order.qty,
            });
        }
        let mut sink = std::mem::take(&mut self.sink);
        sink.clear();
        let placement = self.instruments[instrument.get() as usize]
            .book
            .place(&order, &mut sink)
            .expect("admission ruled out crossing post-only orders; order ids are fresh");
        // Forced selling (liquidation and backstop orders) trades, but its prints do not feed
        // the perpetual's mark: a liquidation cannot lower the mark that liquidates the next.
        let forced = order.client_order_id == crate::liquidation::LIQUIDATION_CLIENT_ORDER_ID;
        for fill in &sink.fills {
            self.book_fill(instrument, fill, Some(fill.price), events);
            if !forced {
                self.instruments[instrument.get() as usize]
                    .mark_inputs
                    .last_trade = Some(fill.price);
                self.record_option_print(instrument, fill);
            }
        }
        for maker in &sink.maker_cancels {
            self.release(maker.account, instrument, maker, maker.qty, true);
            events.push(cancelled(
                instrument,
                maker,
                maker.qty,
                CancelReason::SelfTrade,
            ));
        }
        match placement.remainder {
            Remainder::None => {}
            Remainder::Rested(qty) => {
                let holder = self.accounts.get_mut(order.account);
                let exposure = holder.exposures.entry(instrument).or_default();
                exposure.open_mut(order.side).add(order.price, qty);
                if order.reduce_only {
                    exposure.reduce_only_qty += qty.contracts();
                }
                holder
                    .client_orders
                    .insert(order.client_order_id, (instrument, order.order_id));
            }
            Remainder::Cancelled { qty, reason } => events.push(Event::OrderCancelled {
                instrument,
                order_id: order.order_id,
                account: order.account,
                qty,
                reason,
            }),
        }
        self.enforce_reduce_only(order.account, instrument, events);
        for fill in &sink.fills {
            self.enforce_reduce_only(fill.maker_account, instrument, events);
            self.accounts.get_mut(fill.maker_account).tidy(instrument);
        }
        for maker in &sink.maker_cancels {
            self.accounts.get_mut(maker.account).tidy(instrument);
        }
        self.accounts.get_mut(order.account).tidy(instrument);
        self.check_breaker(instrument, &sink.fills, events);
        self.sink = sink;
        self.apply_mmp_trips(events);
    }

    /// Feeds an order's fills to the instrument's circuit breaker; halts the instrument if
    /// they moved the price too far within the window. Checked once the order has finished
    /// matching: the price band around the mark already bounds how far one order can sweep.
    fn check_breaker(&mut self, id: InstrumentId, fills: &[Fill], events: &mut Vec<Event>) {
        let now = self.time.millis();
        let instrument = &mut self.instruments[id.get() as usize];
        let Some(breaker) = self.params.breaker(instrument.is_option()) else {
            return;
        };
        if fills.is_empty() || instrument.book.is_halted() {
            return;
        }
        let mut tripped = None;
        for fill in fills {
            if let Some(range) = instrument.breaker.record(now, fill.price, &breaker) {
                tripped = Some(range);
            }
        }
        let Some((low, high)) = tripped else { return };
        let until_ms = now.saturating_add(breaker.halt_ms);
        instrument.book.halt();
        instrument.breaker.forget();
        instrument.breaker.halted_until_ms = Some(until_ms);
        events.push(Event::InstrumentHalted {
            instrument: id,
            low,
            high,
            until_ms,
        });
    }

    /// Reopens every halted instrument whose halt is over, through its call auction.
    pub(crate) fn reopen_due(&mut self, events: &mut Vec<Event>) {
        let now = self.time.millis();
        let due: Vec<InstrumentId> = self
            .instruments
            .iter()
            .filter(|i| i.breaker.halted_until_ms.is_some_and(|until| until <= now))
            .map(|i| i.id)
            .collect();
        for id in due {
            self.reopen(id, events);
        }
    }

    /// Uncrosses a halted instrument's book at the auction price and books the result.
    /// Orders that waited were counted as resting; they are taken out of their accounts'
    /// totals first, then whatever of them rests again is put back.
    fn reopen(&mut self, id: InstrumentId, events: &mut Vec<Event>) {
        let instrument = &self.instruments[id.get() as usize];
        let tick = instrument.spec.tick_size.micros();
        let reference = instrument
            .mark
            .or(self.valuation_prices(instrument).index)
            .map_or(Price::from_ticks(0), |p| {
                Price::from_ticks(p.micros() / tick)
            });
        // The prices the orders that rested before the halt are counted at in their accounts'
        // totals: they fill at the auction price, but leave the totals at their own.
        let rested: BTreeMap<OrderId, Price> = [Side::Buy, Side::Sell]
            .into_iter()
            .flat_map(|side| instrument.book.orders(side))
            .map(|o| (o.order_id, o.price))
            .collect();
        let waiting: Vec<RestingOrder> = instrument.book.auction_orders().to_vec();
        for order in &waiting {
            self.release(order.account, id, order, order.qty, true);
        }
        let mut sink = std::mem::take(&mut self.sink);
        sink.clear();
        let instrument = &mut self.instruments[id.get() as usize];
        let outcome = instrument.book.reopen(reference, &mut sink);
        instrument.breaker.halted_until_ms = None;
        if let Some(uncross) = outcome.uncross {
            // The auction price opens a fresh window.
            if let Some(breaker) = self.params.breaker(instrument.is_option()) {
                instrument
                    .breaker
                    .record(self.time.millis(), uncross.price, &breaker);
            }
        }
        for fill in &sink.fills {
            let maker_rested_at = rested.get(&fill.maker_order_id).copied();
            self.book_fill(id, fill, maker_rested_at, events);
            self.instruments[id.get() as usize].mark_inputs.last_trade = Some(fill.price);
            self.record_option_print(id, fill);
        }
        for maker in &sink.maker_cancels {
            self.release(maker.account, id, maker, maker.qty, true);
            events.push(cancelled(id, maker, maker.qty, CancelReason::SelfTrade));
        }
        for (order, placement) in &outcome.placements {
            match placement.remainder {
                Remainder::None => {}
                Remainder::Rested(qty) => {
                    let holder = self.accounts.get_mut(order.account);
                    let exposure = holder.exposures.entry(id).or_default();
                    exposure.open_mut(order.side).add(order.price, qty);
                    if order.reduce_only {
                        exposure.reduce_only_qty += qty.contracts();
                    }
                    holder
                        .client_orders
                        .insert(order.client_order_id, (id, order.order_id));
                }
                Remainder::Cancelled { qty, reason } => {
                    events.push(cancelled(id, order, qty, reason));
                }
            }
        }
        events.push(Event::InstrumentReopened {
            instrument: id,
            price: outcome.uncross.map(|u| u.price),
            volume: Qty::from_contracts(sink.fills.iter().map(|f| f.qty.contracts()).sum()),
        });
        let mut touched: BTreeSet<AccountId> = waiting.iter().map(|o| o.account).collect();
        touched.extend(sink.fills.iter().map(|f| f.maker_account));
        touched.extend(sink.maker_cancels.iter().map(|o| o.account));
        for account in touched {
            self.enforce_reduce_only(account, id, events);
            self.accounts.get_mut(account).tidy(id);
        }
        self.sink = sink;
        self.apply_mmp_trips(events);
    }

    /// Moves premium and fees for one fill and updates both positions. `maker_rested_at`: the
    /// price at which the maker is counted among its account's resting orders: the fill's
    /// price in continuous trading; its own limit in a reopening auction, where it fills at
    /// the auction price; `None` for an order that waited in that auction (taken out of the
    /// totals before the uncross).
    fn book_fill(
        &mut self,
        instrument: InstrumentId,
        fill: &Fill,
        maker_rested_at: Option<Price>,
        events: &mut Vec<Event>,
    ) {
        let (premium, taker_fee, maker_fee) = self.fill_money(instrument, fill);
        let qty = fill.qty.contracts();
        let sign = fill.taker_side.sign();
        let signed_premium = Money::from_micros(premium.micros() * i128::from(sign));
        let (taker, maker) = (
            Pocket::Account(fill.taker_account),
            Pocket::Account(fill.maker_account),
        );
        self.transfer(taker, maker, signed_premium);
        self.transfer(taker, Pocket::Fees, taker_fee);
        self.transfer(maker, Pocket::Fees, maker_fee);
        let taker = self.accounts.get_mut(fill.taker_account);
        let taker_exposure = taker.exposures.entry(instrument).or_default();
        let taker_before = taker_exposure.position;
        taker_exposure.apply_fill(sign * qty, signed_premium);
        let taker_position = taker_exposure.position;

        let maker = self.accounts.get_mut(fill.maker_account);
        let maker_exposure = maker.exposures.entry(instrument).or_default();
        let maker_before = maker_exposure.position;
        maker_exposure.apply_fill(-sign * qty, Money::from_micros(-signed_premium.micros()));
        let closed = fill.maker_qty_left.is_zero();
        if let Some(rested_at) = maker_rested_at {
            maker_exposure
                .open_mut(fill.taker_side.opposite())
                .remove(rested_at, fill.qty, closed);
            if fill.maker_reduce_only {
                maker_exposure.reduce_only_qty -= qty;
            }
        }
        let maker_position = maker_exposure.position;
        if closed && maker_rested_at.is_some() {
            maker.client_orders.remove(&fill.maker_client_order_id);
        }

        self.mmp_on_maker_fill(
            fill.maker_account,
            instrument,
            fill.taker_side.opposite(),
            fill.qty,
        );
        let target = &mut self.instruments[instrument.get() as usize];
        target.position_changed(fill.taker_account, taker_before, taker_position);
        target.position_changed(fill.maker_account, maker_before, maker_position);
        events.push(Event::Trade(Trade {
            instrument,
            price: fill.price,
            qty: fill.qty,
            taker_side: fill.taker_side,
            maker_order_id: fill.maker_order_id,
            maker_account: fill.maker_account,
            taker_order_id: fill.taker_order_id,
            taker_account: fill.taker_account,
            maker_fee,
            taker_fee,
        }));
    }

    /// Premium (price x qty x tick value) and the taker's and maker's fees of a fill.
    ///
    /// Perpetual fees are a fraction of the premium (the notional). Option fees are a fraction
    /// of the underlying's notional, capped at a fraction of the premium, as Deribit charges.
    /// Charges round up and rebates round down, so the exchange never pays out a rounding.
    fn fill_money(&self, instrument: InstrumentId, fill: &Fill) -> (Money, Money, Money) {
        let instrument = &self.instruments[instrument.get() as usize];
        self.trade_money(instrument, fill.price, fill.qty)
    }

    /// Premium and the taker's and maker's fees of `qty` contracts traded at `price` (see
    /// [`Self::fill_money`]).
    pub(crate) fn trade_money(
        &self,
        instrument: &Instrument,
        price: Price,
        qty: Qty,
    ) -> (Money, Money, Money) {
        let tick_value = instrument.spec.tick_value().micros();
        let premium = Money::from_micros(
            i128::from(price.ticks()) * i128::from(qty.contracts()) * tick_value,
        );
        let (schedule, base, cap) = match instrument.kind {
            InstrumentKind::Perpetual => (self.params.fees_perpetual, premium, None),
            InstrumentKind::Option { strike, .. } => {
                let underlying = self.valuation_prices(instrument).index.unwrap_or(strike);
                let base = instrument.spec.multiplier.value(qty, underlying);
                (self.params.fees_option, base, Some(premium))
            }
        };
        let fee = |bps: i32| {
            let magnitude = |amount: Money, bps: i64, up: bool| {
                if up {
                    bps_ceil(amount, bps)
                } else {
                    Money::from_micros(mul_div_floor(
                        amount.micros(),
                        i128::from(bps),
                        i128::from(BPS),
                    ))
                }
            };
            let charge = bps >= 0;
            let mut fee = magnitude(base, i64::from(bps.unsigned_abs()), charge);
            if let Some(premium) = cap {
                fee = fee.min(magnitude(
                    premium,
                    i64::from(schedule.premium_cap_bps),
                    charge,
                ));
            }
            if charge {
                fee
            } else {
                Money::from_micros(-fee.micros())
            }
        };
        (premium, fee(schedule.taker_bps), fee(schedule.maker_bps))
    }

    /// The taker's and the maker's fee of `qty` contracts of `instrument` traded at `price`
    /// now (an option's is on the underlying at the index, capped by its premium). `None`
    /// for an unknown instrument.
    pub fn trade_fees(
        &self,
        instrument: InstrumentId,
        price: Price,
        qty: Qty,
    ) -> Option<(Money, Money)> {
        let instrument = self.instruments.get(instrument.get() as usize)?;
        let (_, taker, maker) = self.trade_money(instrument, price, qty);
        Some((taker, maker))
    }

    /// The most an order of `qty` at `price` can pay in fees, whether it takes or rests and is
    /// taken: what admission holds back for it.
    pub(crate) fn fee_bound(&self, instrument: &Instrument, price: Price, qty: Qty) -> Money {
        let (_, taker, maker) = self.trade_money(instrument, price, qty);
        taker.max(maker).max(Money::ZERO)
    }

    /// Forgets `qty` of a resting order in the account's totals; `closed` when it left the book.
    fn release(
        &mut self,
        account: AccountId,
        instrument: InstrumentId,
        order: &RestingOrder,
        qty: Qty,
        closed: bool,
    ) {
        let holder = self.accounts.get_mut(account);
        let exposure = holder
            .exposures
            .get_mut(&instrument)
            .expect("a resting order has an exposure entry");
        exposure
            .open_mut(order.side)
            .remove(order.price, qty, closed);
        if order.reduce_only {
            exposure.reduce_only_qty -= qty.contracts();
        }
        if closed {
            holder.client_orders.remove(&order.client_order_id);
        }
    }

    /// What `body`, a transaction charged to `account`, would cancel in this state: `None`
    /// when it is not a cancel or would cancel nothing (no such open order of the account, no
    /// open order in that instrument, no such account). The proposer's selection puts cancels
    /// of something first (`bulwark_node::mempool::Mempool::select`).
    pub fn cancel_target(&self, account: AccountId, body: &TxBody) -> Option<CancelTarget> {
        match *body {
            TxBody::CancelOrder { instrument, order } => self
                .open_order(account, instrument, order)
                .map(|id| CancelTarget::Order(instrument, id)),
            TxBody::CancelAll { instrument } => {
                let holder = self.account(account)?;
                let open = match instrument {
                    None => holder.orders_open() > 0,
                    Some(instrument) => holder
                        .exposures
                        .get(&instrument)
                        .is_some_and(|e| e.bids.count + e.asks.count > 0),
                };
                open.then_some(CancelTarget::Orders(instrument))
            }
            _ => None,
        }
    }

    /// The open order of `account` that a cancel naming `order` in `instrument` would cancel
    /// in this state, if any (`None` for an account this state does not hold, too).
    fn open_order(
        &self,
        account: AccountId,
        instrument: InstrumentId,
        order: OrderRef,
    ) -> Option<OrderId> {
        self.account(account)?;
        self.resolve(account, instrument, order)
            .ok()
            .map(|resting| resting.order_id)
    }

    /// Finds an open order of `account` in `instrument`.
    fn resolve(
        &self,
        account: AccountId,
        instrument: InstrumentId,
        order: OrderRef,
    ) -> Result<RestingOrder, RejectReason> {
        let target = self
            .instruments
            .get(instrument.get() as usize)
            .ok_or(RejectReason::InstrumentUnknown)?;
        let order_id = match order {
            OrderRef::Exchange(id) => id,
            OrderRef::Client(client) => match self.accounts[account].client_orders.get(&client) {
                Some((at, id)) if *at == instrument => *id,
                _ => return Err(RejectReason::OrderUnknown),
            },
        };
        match target.book.get(order_id) {
            Some(resting) if resting.account == account => Ok(*resting),
            _ => Err(RejectReason::OrderUnknown),
        }
    }

    pub(crate) fn cancel_order(
        &mut self,
        account: AccountId,
        instrument: InstrumentId,
        order: OrderRef,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let resting = self.resolve(account, instrument, order)?;
        self.cancel_resting(instrument, &resting, CancelReason::Requested, events);
        Ok(())
    }

    /// Removes a resting order from its book and the account's totals, with an event.
    pub(crate) fn cancel_resting(
        &mut self,
        instrument: InstrumentId,
        resting: &RestingOrder,
        reason: CancelReason,
        events: &mut Vec<Event>,
    ) {
        let removed = self.instruments[instrument.get() as usize]
            .book
            .cancel(resting.order_id);
        assert_eq!(
            removed.as_ref(),
            Some(resting),
            "the order rests where the account says"
        );
        self.release(resting.account, instrument, resting, resting.qty, true);
        self.accounts.get_mut(resting.account).tidy(instrument);
        events.push(cancelled(instrument, resting, resting.qty, reason));
    }

    pub(crate) fn cancel_all(
        &mut self,
        account: AccountId,
        instrument: Option<InstrumentId>,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        if let Some(id) = instrument {
            self.instruments
                .get(id.get() as usize)
                .ok_or(RejectReason::InstrumentUnknown)?;
        }
        self.cancel_all_for(account, instrument, CancelReason::Requested, events);
        Ok(())
    }

    /// Cancels every open order of `account` (in one instrument, or in all) for `reason`.
    pub(crate) fn cancel_all_for(
        &mut self,
        account: AccountId,
        instrument: Option<InstrumentId>,
        reason: CancelReason,
        events: &mut Vec<Event>,
    ) {
        // Bounded by orders_open_max.
        let targets: Vec<(InstrumentId, OrderId)> = self.accounts[account]
            .client_orders
            .values()
            .filter(|(at, _)| instrument.is_none_or(|want| *at == want))
            .copied()
            .collect();
        for (at, order_id) in targets {
            let resting = *self.instruments[at.get() as usize]
                .book
                .get(order_id)
                .expect("indexed orders rest");
            self.cancel_resting(at, &resting, reason, events);
        }
    }

    pub(crate) fn amend_order(
        &mut self,
        account: AccountId,
        instrument: InstrumentId,
        order: OrderRef,
        price: UnitPrice,
        qty: Qty,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let old = self.resolve(account, instrument, order)?;
        let spec = self.instruments[instrument.get() as usize].spec;
        let new_price = price
            .to_ticks(spec.tick_size)
            .ok_or(RejectReason::PriceNotOnTick)?;
        if new_price == old.price && qty == old.qty {
            return Err(RejectReason::AmendUnchanged);
        }
        if new_price == old.price && qty < old.qty {
            // Smaller at the same price: keeps its place in the queue and needs no margin.
            if qty.contracts() % spec.lot_size.contracts() != 0 {
                return Err(RejectReason::QtyNotMultipleOfLot);
            }
            if qty < spec.size_min {
                return Err(RejectReason::QtyBelowMinimum);
            }
            self.instruments[instrument.get() as usize]
                .book
                .reduce(old.order_id, qty);
            self.release(
                account,
                instrument,
                &old,
                Qty::from_contracts(old.qty.contracts() - qty.contracts()),
                false,
            );
            events.push(amended(instrument, &old, new_price, qty, true));
            return Ok(());
        }
        let terms = OrderTerms {
            instrument,
            client_order_id: old.client_order_id,
            side: old.side,
            qty,
            price: Some(price),
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: old.post_only,
            reduce_only: old.reduce_only,
            self_trade: old.self_trade,
        };
        let mut replacement = self.admit(account, &terms, Some(&old))?;
        replacement.order_id = old.order_id;
        self.instruments[instrument.get() as usize]
            .book
            .cancel(old.order_id)
            .expect("resolved orders rest");
        self.release(account, instrument, &old, old.qty, true);
        events.push(amended(instrument, &old, new_price, qty, false));
        self.execute(instrument, replacement, false, events);
        Ok(())
    }

    /// Keeps an account's resting reduce-only orders within its position after the position
    /// changed: trims the newest first, cancelling what no longer reduces anything.
    pub(crate) fn enforce_reduce_only(
        &mut self,
        account: AccountId,
        instrument: InstrumentId,
        events: &mut Vec<Event>,
    ) {
        let holder = &self.accounts[account];
        let Some(exposure) = holder.exposures.get(&instrument) else {
            return;
        };
        if exposure.reduce_only_qty == 0 {
            return;
        }
        let book = &self.instruments[instrument.get() as usize].book;
        // Bounded by orders_open_max.
        let mut orders: Vec<RestingOrder> = holder
            .client_orders
            .values()
            .filter(|(at, _)| *at == instrument)
            .filter_map(|(_, id)| book.get(*id).copied())
            .filter(|o| o.reduce_only)
            .collect();
        orders.sort_by_key(|o| std::cmp::Reverse(o.order_id));
        let position = exposure.position;
        let reduces = |side: Side| {
            (side == Side::Buy && position < 0) || (side == Side::Sell && position > 0)
        };
        let allowed = orders
            .first()
            .map_or(0, |o| if reduces(o.side) { position.abs() } else { 0 });
        let mut excess = exposure.reduce_only_qty - allowed;
        for order in orders {
            if excess <= 0 {
                break;
            }
            if order.qty.contracts() <= excess {
                excess -= order.qty.contracts();
                self.cancel_resting(instrument, &order, CancelReason::ReduceOnly, events);
            } else {
                let keep = Qty::from_contracts(order.qty.contracts() - excess);
                self.instruments[instrument.get() as usize]
                    .book
                    .reduce(order.order_id, keep);
                let cut = Qty::from_contracts(excess);
                self.release(account, instrument, &order, cut, false);
                events.push(cancelled(instrument, &order, cut, CancelReason::ReduceOnly));
                excess = 0;
            }
        }
    }
}

fn cancelled(
    instrument: InstrumentId,
    order: &RestingOrder,
    qty: Qty,
    reason: CancelReason,
) -> Event {
    Event::OrderCancelled {
        instrument,
        order_id: order.order_id,
        account: order.account,
        qty,
        reason,
    }
}

fn amended(
    instrument: InstrumentId,
    order: &RestingOrder,
    price: Price,
    qty: Qty,
    priority_kept: bool,
) -> Event {
    Event::OrderAmended {
        instrument,
        order_id: order.order_id,
        account: order.account,
        price,
        qty,
        priority_kept,
    }
}
