//! The read model: what Deribit reports that the exchange state does not keep, indexed from
//! each finalized block's outcome (per-transaction results and events).
//!
//! Owns: each order's life (state, filled amount, average price, timestamps, fills), each
//! account's trades (with fee and liquidity), each instrument's public trades and 24-hour
//! statistics, and each transaction's result by digest (what an order submission waits for).
//! Everything is bounded: ring buffers of the sizes below, oldest dropped first.
//! Never: invents what the outcome does not say; grows without bound.

use bulwark_exchange::{BlockOutcome, Event, Exchange};
use bulwark_node::block::ChainBlock;
use bulwark_node::mempool::{TxDigest, tx_digest};
use bulwark_types::{
    AccountId, InstrumentId, Money, OrderId, OrderType, Price, Qty, RejectReason, Side,
    TimeInForce, TxBody,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Public trades kept per instrument.
pub const PUBLIC_TRADES_MAX: usize = 1_000;
/// Orders kept per account (open ones are never dropped while fewer than this are open).
pub const ORDERS_PER_ACCOUNT_MAX: usize = 2_000;
/// Trades kept per account.
pub const USER_TRADES_MAX: usize = 1_000;
/// Transaction results kept (by digest), for submissions waiting on their outcome.
pub const TX_RESULTS_MAX: usize = 65_536;
/// Fills kept per order.
pub const FILLS_PER_ORDER_MAX: usize = 64;
/// The statistics window (Deribit's 24 hours), ms.
pub const STATS_WINDOW_MS: u64 = 24 * 60 * 60 * 1_000;

/// How an order stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OrderState {
    Open,
    Filled,
    Cancelled,
}

/// One fill as one account saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fill {
    /// Sequence number of the trade, exchange-wide, from the first block this gateway applied.
    pub trade_seq: u64,
    pub instrument: InstrumentId,
    pub order_id: OrderId,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub fee: Money,
    /// True when this side's order was resting (maker).
    pub maker: bool,
    pub time_ms: u64,
    pub height: u64,
}

/// One order's life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRecord {
    pub order_id: OrderId,
    pub instrument: InstrumentId,
    pub account: AccountId,
    pub side: Side,
    /// Limit price in ticks; `None` for market orders.
    pub price: Option<Price>,
    /// Current order size (after amends), contracts.
    pub qty: Qty,
    pub filled: Qty,
    /// Sum of price ticks x contracts over fills (for the average price).
    pub notional_ticks: i128,
    pub state: OrderState,
    pub post_only: bool,
    pub reduce_only: bool,
    pub time_in_force: TimeInForce,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub fee: Money,
    pub fills: Vec<Fill>,
}

/// A public trade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicTrade {
    pub trade_seq: u64,
    pub price: Price,
    pub qty: Qty,
    pub taker_side: Side,
    pub time_ms: u64,
}

/// What a transaction did, for the submission waiting on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxResult {
    pub height: u64,
    pub rejection: Option<RejectReason>,
    /// The order the transaction placed, amended or cancelled, if any.
    pub order_id: Option<OrderId>,
    /// Orders cancelled by it (cancel and cancel-all).
    pub cancelled: u32,
}

/// The read model.
#[derive(Default)]
pub struct ReadModel {
    orders: HashMap<OrderId, OrderRecord>,
    /// Each account's orders, oldest first.
    by_account: HashMap<AccountId, VecDeque<OrderId>>,
    user_trades: HashMap<AccountId, VecDeque<Fill>>,
    public_trades: BTreeMap<InstrumentId, VecDeque<PublicTrade>>,
    tx_results: HashMap<TxDigest, TxResult>,
    tx_order: VecDeque<TxDigest>,
    trade_seq: u64,
}

impl ReadModel {
    /// An empty read model for a replica starting at `_genesis` (nothing to index yet).
    pub fn new(_genesis: &Exchange) -> Self {
        Self::default()
    }

    pub fn order(&self, id: OrderId) -> Option<&OrderRecord> {
        self.orders.get(&id)
    }

    /// An account's orders, newest first.
    pub fn orders_of(&self, account: AccountId) -> impl Iterator<Item = &OrderRecord> + '_ {
        self.by_account
            .get(&account)
            .into_iter()
            .flat_map(|ids| ids.iter().rev())
            .filter_map(|id| self.orders.get(id))
    }

    /// An account's fills, newest first.
    pub fn trades_of(&self, account: AccountId) -> impl Iterator<Item = &Fill> + '_ {
        self.user_trades
            .get(&account)
            .into_iter()
            .flat_map(|t| t.iter().rev())
    }

    /// An instrument's public trades, newest first.
    pub fn public_trades(
        &self,
        instrument: InstrumentId,
    ) -> impl Iterator<Item = &PublicTrade> + '_ {
        self.public_trades
            .get(&instrument)
            .into_iter()
            .flat_map(|t| t.iter().rev())
    }

    pub fn tx_result(&self, digest: &TxDigest) -> Option<&TxResult> {
        self.tx_results.get(digest)
    }

    /// Indexes one applied block.
    pub fn record(&mut self, block: &ChainBlock, outcome: &BlockOutcome, _after: &Exchange) {
        let time_ms = block.body.time.millis();
        let height = block.body.height.get();
        for event in outcome.block_events() {
            self.event(event, None, time_ms, height);
        }
        for (index, (tx, result)) in block.body.txs.iter().zip(&outcome.txs).enumerate() {
            let mut summary = TxResult {
                height,
                rejection: result.rejection,
                order_id: None,
                cancelled: 0,
            };
            for event in outcome.tx_events(index) {
                match event {
                    Event::OrderAccepted { order_id, .. }
                    | Event::OrderAmended { order_id, .. } => summary.order_id = Some(*order_id),
                    Event::OrderCancelled { order_id, .. } => {
                        summary.cancelled += 1;
                        if matches!(tx.tx.body, TxBody::CancelOrder { .. }) {
                            summary.order_id = Some(*order_id);
                        }
                    }
                    _ => {}
                }
                self.event(event, Some(&tx.tx.body), time_ms, height);
            }
            self.remember(tx_digest(tx), summary);
        }
        for event in outcome.end_events() {
            self.event(event, None, time_ms, height);
        }
    }

    fn remember(&mut self, digest: TxDigest, result: TxResult) {
        if self.tx_order.len() == TX_RESULTS_MAX
            && let Some(old) = self.tx_order.pop_front()
        {
            self.tx_results.remove(&old);
        }
        self.tx_order.push_back(digest);
        self.tx_results.insert(digest, result);
    }

    fn event(&mut self, event: &Event, body: Option<&TxBody>, time_ms: u64, height: u64) {
        match event {
            Event::OrderAccepted {
                instrument,
                order_id,
                account,
                side,
                price,
                qty,
                ..
            } => {
                let (post_only, reduce_only, time_in_force, limit) = match body {
                    Some(TxBody::PlaceOrder(request)) => match request.order_type {
                        OrderType::Limit {
                            time_in_force,
                            post_only,
                            ..
                        } => (post_only, request.reduce_only, time_in_force, true),
                        _ => (
                            false,
                            request.reduce_only,
                            TimeInForce::ImmediateOrCancel,
                            false,
                        ),
                    },
                    _ => (false, false, TimeInForce::GoodTilCancelled, true),
                };
                let record = OrderRecord {
                    order_id: *order_id,
                    instrument: *instrument,
                    account: *account,
                    side: *side,
                    price: limit.then_some(*price),
                    qty: *qty,
                    filled: Qty::from_contracts(0),
                    notional_ticks: 0,
                    state: OrderState::Open,
                    post_only,
                    reduce_only,
                    time_in_force,
                    created_ms: time_ms,
                    updated_ms: time_ms,
                    fee: Money::ZERO,
                    fills: Vec::new(),
                };
                self.insert_order(record);
            }
            Event::Trade(trade) => {
                self.trade_seq += 1;
                let seq = self.trade_seq;
                let trades = self.public_trades.entry(trade.instrument).or_default();
                if trades.len() == PUBLIC_TRADES_MAX {
                    trades.pop_front();
                }
                trades.push_back(PublicTrade {
                    trade_seq: seq,
                    price: trade.price,
                    qty: trade.qty,
                    taker_side: trade.taker_side,
                    time_ms,
                });
                let maker_side = match trade.taker_side {
                    Side::Buy => Side::Sell,
                    Side::Sell => Side::Buy,
                };
                for (account, order_id, side, fee, maker) in [
                    (
                        trade.maker_account,
                        trade.maker_order_id,
                        maker_side,
                        trade.maker_fee,
                        true,
                    ),
                    (
                        trade.taker_account,
                        trade.taker_order_id,
                        trade.taker_side,
                        trade.taker_fee,
                        false,
                    ),
                ] {
                    let fill = Fill {
                        trade_seq: seq,
                        instrument: trade.instrument,
                        order_id,
                        side,
                        price: trade.price,
                        qty: trade.qty,
                        fee,
                        maker,
                        time_ms,
                        height,
                    };
                    if let Some(order) = self.orders.get_mut(&order_id) {
                        order.filled = Qty::from_contracts(
                            order
                                .filled
                                .contracts()
                                .saturating_add(trade.qty.contracts()),
                        );
                        order.notional_ticks +=
                            i128::from(trade.price.ticks()) * i128::from(trade.qty.contracts());
                        order.fee = Money::from_micros(order.fee.micros() + fee.micros());
                        order.updated_ms = time_ms;
                        if order.filled >= order.qty {
                            order.state = OrderState::Filled;
                        }
                        if order.fills.len() < FILLS_PER_ORDER_MAX {
                            order.fills.push(fill.clone());
                        }
                    }
                    let trades = self.user_trades.entry(account).or_default();
                    if trades.len() == USER_TRADES_MAX {
                        trades.pop_front();
                    }
                    trades.push_back(fill);
                }
            }
            Event::OrderCancelled { order_id, .. } => {
                if let Some(order) = self.orders.get_mut(order_id) {
                    order.updated_ms = time_ms;
                    if order.state == OrderState::Open {
                        order.state = OrderState::Cancelled;
                    }
                }
            }
            Event::OrderAmended {
                order_id,
                price,
                qty,
                ..
            } => {
                if let Some(order) = self.orders.get_mut(order_id) {
                    order.updated_ms = time_ms;
                    order.price = Some(*price);
                    // The exchange's amend quantity is what stays open; Deribit's amount is
                    // the order's total, filled part included.
                    order.qty = Qty::from_contracts(
                        order.filled.contracts().saturating_add(qty.contracts()),
                    );
                }
            }
            _ => {}
        }
    }

    fn insert_order(&mut self, record: OrderRecord) {
        let ids = self.by_account.entry(record.account).or_default();
        if ids.len() >= ORDERS_PER_ACCOUNT_MAX {
            // Drop the oldest finished order; if all are open, the oldest.
            let finished = ids.iter().position(|id| {
                self.orders
                    .get(id)
                    .is_none_or(|o| o.state != OrderState::Open)
            });
            let at = finished.unwrap_or(0);
            if let Some(old) = ids.remove(at) {
                self.orders.remove(&old);
            }
        }
        ids.push_back(record.order_id);
        self.orders.insert(record.order_id, record);
    }
}
