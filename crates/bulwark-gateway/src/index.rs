//! The read model: what Deribit reports that the exchange state does not keep, indexed from
//! each finalized block's outcome (per-transaction results and events).
//!
//! Owns: each order's life (state, filled amount, average price, timestamps, fills), each
//! account's trades (with fee and liquidity), its deposits and its withdrawals (held, paid,
//! cancelled), each instrument's public trades and 24-hour statistics, and each transaction's
//! result by digest (what an order submission waits for).
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
/// Deposits kept per account, and withdrawals kept per account.
pub const TRANSFERS_PER_ACCOUNT_MAX: usize = 200;
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
    /// Whether an amend changed it (Deribit's `replaced`).
    pub amended: bool,
    /// Whether the liquidation engine placed it.
    pub liquidation: bool,
}

/// How a withdrawal stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WithdrawalState {
    /// Accepted and held until prices observed after it pass the account.
    Held,
    /// Paid: the money left the venue.
    Paid,
    /// Not paid, and the hold lifted: by its owner (`WithdrawalCancelledByOwner`) or at its
    /// release (the account no longer covered it).
    Cancelled(RejectReason),
}

/// One withdrawal of one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawalRecord {
    /// Sequence number, gateway-wide, from the first block this gateway applied.
    pub id: u64,
    pub amount: Money,
    pub state: WithdrawalState,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// One deposit credited to one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositRecord {
    pub amount: Money,
    pub time_ms: u64,
    pub height: u64,
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
    deposits: HashMap<AccountId, VecDeque<DepositRecord>>,
    withdrawals: HashMap<AccountId, VecDeque<WithdrawalRecord>>,
    withdrawal_seq: u64,
    /// What the last recorded block changed (for the subscription feed).
    last_block: BlockChanges,
}

/// What one block changed in the read model, for subscribers ([`crate::feed`]). Bounded by
/// the block's events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockChanges {
    /// Orders accepted, filled, amended or cancelled in the block, in first-touch order,
    /// each once.
    pub orders: Vec<OrderId>,
    /// The block's public trades, in order.
    pub public_trades: Vec<(InstrumentId, PublicTrade)>,
    /// The block's fills, one per side of each trade, with the account that made it.
    pub fills: Vec<(AccountId, Fill)>,
    /// Agent keys (API keys) revoked in the block.
    pub revoked_agents: Vec<bulwark_types::PublicKey>,
    seen: std::collections::HashSet<OrderId>,
}

impl BlockChanges {
    fn touch(&mut self, order: OrderId) {
        if self.seen.insert(order) {
            self.orders.push(order);
        }
    }
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

    /// An account's deposits, newest first.
    pub fn deposits_of(&self, account: AccountId) -> impl Iterator<Item = &DepositRecord> + '_ {
        self.deposits
            .get(&account)
            .into_iter()
            .flat_map(|d| d.iter().rev())
    }

    /// An account's withdrawals, newest first.
    pub fn withdrawals_of(
        &self,
        account: AccountId,
    ) -> impl Iterator<Item = &WithdrawalRecord> + '_ {
        self.withdrawals
            .get(&account)
            .into_iter()
            .flat_map(|w| w.iter().rev())
    }

    pub fn tx_result(&self, digest: &TxDigest) -> Option<&TxResult> {
        self.tx_results.get(digest)
    }

    /// What the last recorded block changed.
    pub fn last_block(&self) -> &BlockChanges {
        &self.last_block
    }

    /// Indexes one applied block.
    pub fn record(&mut self, block: &ChainBlock, outcome: &BlockOutcome, _after: &Exchange) {
        let time_ms = block.body.time.millis();
        let height = block.body.height.get();
        self.last_block = BlockChanges::default();
        for event in outcome.block_events() {
            self.event(event, None, time_ms, height);
        }
        for (index, (tx, result)) in block.body.txs.iter().zip(&outcome.txs).enumerate() {
            if index == outcome.liquidation_at as usize {
                for event in outcome.liquidation_events() {
                    self.event(event, None, time_ms, height);
                }
            }
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
        if outcome.liquidation_at as usize >= outcome.txs.len() {
            for event in outcome.liquidation_events() {
                self.event(event, None, time_ms, height);
            }
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
                client_order_id,
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
                    amended: false,
                    liquidation: *client_order_id
                        == bulwark_exchange::liquidation::LIQUIDATION_CLIENT_ORDER_ID,
                };
                self.last_block.touch(*order_id);
                self.insert_order(record);
            }
            Event::Trade(trade) => {
                self.trade_seq += 1;
                let seq = self.trade_seq;
                let trades = self.public_trades.entry(trade.instrument).or_default();
                if trades.len() == PUBLIC_TRADES_MAX {
                    trades.pop_front();
                }
                let public = PublicTrade {
                    trade_seq: seq,
                    price: trade.price,
                    qty: trade.qty,
                    taker_side: trade.taker_side,
                    time_ms,
                };
                trades.push_back(public.clone());
                self.last_block
                    .public_trades
                    .push((trade.instrument, public));
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
                    self.last_block.touch(order_id);
                    self.last_block.fills.push((account, fill.clone()));
                    let trades = self.user_trades.entry(account).or_default();
                    if trades.len() == USER_TRADES_MAX {
                        trades.pop_front();
                    }
                    trades.push_back(fill);
                }
            }
            Event::OrderCancelled { order_id, .. } => {
                self.last_block.touch(*order_id);
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
                self.last_block.touch(*order_id);
                if let Some(order) = self.orders.get_mut(order_id) {
                    order.updated_ms = time_ms;
                    order.amended = true;
                    order.price = Some(*price);
                    // The exchange's amend quantity is what stays open; Deribit's amount is
                    // the order's total, filled part included.
                    order.qty = Qty::from_contracts(
                        order.filled.contracts().saturating_add(qty.contracts()),
                    );
                }
            }
            Event::AgentRevoked { agent, .. } => {
                self.last_block.revoked_agents.push(agent.clone());
            }
            Event::Deposited { account, amount } => {
                let list = self.deposits.entry(*account).or_default();
                if list.len() == TRANSFERS_PER_ACCOUNT_MAX {
                    list.pop_front();
                }
                list.push_back(DepositRecord {
                    amount: *amount,
                    time_ms,
                    height,
                });
            }
            Event::WithdrawalRequested { account, amount } => {
                self.withdrawal_settled(*account, *amount, WithdrawalState::Held, time_ms);
            }
            Event::Withdrawn { account, amount } => {
                self.withdrawal_settled(*account, *amount, WithdrawalState::Paid, time_ms);
            }
            Event::WithdrawalCancelled {
                account,
                amount,
                reason,
            } => {
                let state = WithdrawalState::Cancelled(*reason);
                self.withdrawal_settled(*account, *amount, state, time_ms);
            }
            _ => {}
        }
    }

    /// A withdrawal event: a held one (at most one per account: the exchange's rule) moves to
    /// `state`; a request, or a payment or cancellation of one this gateway never saw held
    /// (paid at once, or held before the gateway's first block), is a new record.
    fn withdrawal_settled(
        &mut self,
        account: AccountId,
        amount: Money,
        state: WithdrawalState,
        time_ms: u64,
    ) {
        let list = self.withdrawals.entry(account).or_default();
        if state != WithdrawalState::Held
            && let Some(held) = list
                .iter_mut()
                .rev()
                .find(|w| w.state == WithdrawalState::Held && w.amount == amount)
        {
            held.state = state;
            held.updated_ms = time_ms;
            return;
        }
        if list.len() == TRANSFERS_PER_ACCOUNT_MAX {
            // Drop the oldest settled one; the held one (if any) stays.
            let at = list
                .iter()
                .position(|w| w.state != WithdrawalState::Held)
                .unwrap_or(0);
            list.remove(at);
        }
        self.withdrawal_seq += 1;
        list.push_back(WithdrawalRecord {
            id: self.withdrawal_seq,
            amount,
            state,
            created_ms: time_ms,
            updated_ms: time_ms,
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_exchange::{Trade, TxOutcome};
    use bulwark_node::block::Ctx;
    use bulwark_types::{
        Block, BlockTime, CancelReason, ClientOrderId, Height, InstrumentId, Nonce, OrderRef,
        OrderRequest, PriceInputs, PrivateKey, SignedTx, Tx, UnitPrice,
    };
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_cryptography::{Hasher, Sha256, Signer as _};

    const PERP: InstrumentId = InstrumentId::new(0);

    fn tx(seed: u64, nonce: u64, body: TxBody) -> SignedTx {
        let key = PrivateKey::from_seed(seed);
        Tx {
            signer: key.public_key(),
            nonce: Nonce::new(nonce),
            body,
        }
        .sign(&key)
    }

    fn place(seed: u64, side: Side, qty: i64, post_only: bool) -> SignedTx {
        let mut request = OrderRequest::limit(
            PERP,
            ClientOrderId::new(seed),
            side,
            Qty::from_contracts(qty),
            UnitPrice::from_usdc(100),
            TimeInForce::GoodTilCancelled,
        );
        if let OrderType::Limit { post_only: p, .. } = &mut request.order_type {
            *p = post_only;
        }
        tx(seed, 1, TxBody::PlaceOrder(request))
    }

    fn block(height: u64, txs: Vec<SignedTx>) -> ChainBlock {
        let leader = PrivateKey::from_seed(99).public_key();
        let parent = Sha256::hash(&[&height.to_be_bytes()]);
        ChainBlock::new(
            Ctx {
                round: Round::new(Epoch::zero(), View::new(height)),
                leader,
                parent: (View::zero(), parent),
            },
            parent,
            parent,
            None,
            Block {
                height: Height::new(height),
                time: BlockTime::from_millis(1_000 * height),
                prices: PriceInputs::default(),
                observations: Vec::new(),
                txs,
            },
        )
    }

    /// An outcome whose transactions produced `per_tx` events each, and `block` events first.
    fn outcome(
        height: u64,
        block: Vec<Event>,
        per_tx: Vec<(Option<RejectReason>, Vec<Event>)>,
    ) -> BlockOutcome {
        let block_events_end = block.len() as u32;
        let mut events = block;
        let mut txs = Vec::new();
        for (rejection, tx_events) in per_tx {
            events.extend(tx_events);
            txs.push(TxOutcome {
                rejection,
                events_end: events.len() as u32,
            });
        }
        BlockOutcome {
            height: Height::new(height),
            events,
            liquidation_at: 0,
            liquidation_end: block_events_end,
            block_events_end,
            txs,
        }
    }

    fn accepted(id: u64, account: u64, side: Side, qty: i64) -> Event {
        Event::OrderAccepted {
            instrument: PERP,
            order_id: OrderId::new(id),
            account: AccountId::new(account),
            client_order_id: ClientOrderId::new(id),
            side,
            price: Price::from_ticks(200),
            qty: Qty::from_contracts(qty),
        }
    }

    fn trade(maker: (u64, u64), taker: (u64, u64), qty: i64, ticks: i64) -> Event {
        Event::Trade(Trade {
            instrument: PERP,
            price: Price::from_ticks(ticks),
            qty: Qty::from_contracts(qty),
            taker_side: Side::Sell,
            maker_order_id: OrderId::new(maker.0),
            maker_account: AccountId::new(maker.1),
            taker_order_id: OrderId::new(taker.0),
            taker_account: AccountId::new(taker.1),
            maker_fee: Money::from_micros(-10),
            taker_fee: Money::from_micros(50),
        })
    }

    #[test]
    fn an_order_s_life_is_indexed_from_its_events() {
        let genesis = crate::test_exchange(0);
        let mut model = ReadModel::new(&genesis);
        // Block 1: account 0 bids 5 post-only; account 1 sells 2 into it.
        let bid = place(10, Side::Buy, 5, true);
        let sell = place(11, Side::Sell, 2, false);
        let first = block(1, vec![bid.clone(), sell.clone()]);
        model.record(
            &first,
            &outcome(
                1,
                Vec::new(),
                vec![
                    (None, vec![accepted(1, 0, Side::Buy, 5)]),
                    (
                        None,
                        vec![accepted(2, 1, Side::Sell, 2), trade((1, 0), (2, 1), 2, 200)],
                    ),
                ],
            ),
            &genesis,
        );
        let order = model.order(OrderId::new(1)).unwrap();
        assert_eq!(
            (order.state, order.filled, order.post_only),
            (OrderState::Open, Qty::from_contracts(2), true)
        );
        assert_eq!(order.created_ms, 1_000);
        assert_eq!(order.fee, Money::from_micros(-10));
        assert_eq!(
            model.order(OrderId::new(2)).unwrap().state,
            OrderState::Filled
        );
        let fills: Vec<&Fill> = model.trades_of(AccountId::new(0)).collect();
        assert_eq!(
            (fills.len(), fills[0].maker, fills[0].side),
            (1, true, Side::Buy)
        );
        assert!(!model.trades_of(AccountId::new(1)).next().unwrap().maker);
        assert_eq!(model.public_trades(PERP).count(), 1);
        let result = model.tx_result(&tx_digest(&sell)).unwrap();
        assert_eq!((result.height, result.order_id), (1, Some(OrderId::new(2))));

        // Block 2: the rest (3) amended to 4 open; a rejected cancel; then a cancel.
        let amend = tx(
            10,
            2,
            TxBody::AmendOrder {
                instrument: PERP,
                order: OrderRef::Exchange(OrderId::new(1)),
                price: UnitPrice::from_usdc(100),
                qty: Qty::from_contracts(4),
            },
        );
        let bad_cancel = tx(
            11,
            2,
            TxBody::CancelOrder {
                instrument: PERP,
                order: OrderRef::Exchange(OrderId::new(9)),
            },
        );
        let cancel = tx(
            10,
            3,
            TxBody::CancelOrder {
                instrument: PERP,
                order: OrderRef::Exchange(OrderId::new(1)),
            },
        );
        let second = block(2, vec![amend, bad_cancel.clone(), cancel.clone()]);
        model.record(
            &second,
            &outcome(
                2,
                Vec::new(),
                vec![
                    (
                        None,
                        vec![Event::OrderAmended {
                            instrument: PERP,
                            order_id: OrderId::new(1),
                            account: AccountId::new(0),
                            price: Price::from_ticks(199),
                            qty: Qty::from_contracts(4),
                            priority_kept: false,
                        }],
                    ),
                    (Some(RejectReason::OrderUnknown), Vec::new()),
                    (
                        None,
                        vec![Event::OrderCancelled {
                            instrument: PERP,
                            order_id: OrderId::new(1),
                            account: AccountId::new(0),
                            qty: Qty::from_contracts(4),
                            reason: CancelReason::Requested,
                        }],
                    ),
                ],
            ),
            &genesis,
        );
        let order = model.order(OrderId::new(1)).unwrap();
        assert_eq!(
            order.qty,
            Qty::from_contracts(6),
            "filled 2 plus 4 still open"
        );
        assert_eq!(order.price, Some(Price::from_ticks(199)));
        assert!(order.amended && !order.liquidation);
        assert_eq!(
            (order.state, order.updated_ms),
            (OrderState::Cancelled, 2_000)
        );
        assert_eq!(
            model.tx_result(&tx_digest(&bad_cancel)).unwrap().rejection,
            Some(RejectReason::OrderUnknown)
        );
        let cancelled = model.tx_result(&tx_digest(&cancel)).unwrap();
        assert_eq!(
            (cancelled.cancelled, cancelled.order_id),
            (1, Some(OrderId::new(1)))
        );
        assert_eq!(model.orders_of(AccountId::new(0)).count(), 1);
    }

    /// The liquidation pass runs before a block's first transaction that may take liquidity:
    /// its events sit between the transactions' before it and that one's, are indexed once,
    /// and are nobody's transaction's.
    #[test]
    fn the_liquidation_pass_between_transactions_is_indexed_once_as_nobody_s() {
        let genesis = crate::test_exchange(0);
        let mut model = ReadModel::new(&genesis);
        let bid = place(10, Side::Buy, 5, false);
        model.record(
            &block(1, vec![bid]),
            &outcome(
                1,
                Vec::new(),
                vec![(None, vec![accepted(1, 0, Side::Buy, 5)])],
            ),
            &genesis,
        );
        // Block 2: a cancel (rejected), the pass (account 2's resting order cancelled, its
        // liquidation order 7 sells 2 into the bid), then account 1 sells 1.
        let cancel = tx(
            12,
            1,
            TxBody::CancelOrder {
                instrument: PERP,
                order: OrderRef::Exchange(OrderId::new(9)),
            },
        );
        let sell = place(11, Side::Sell, 1, false);
        let pass = vec![
            Event::OrderCancelled {
                instrument: PERP,
                order_id: OrderId::new(6),
                account: AccountId::new(2),
                qty: Qty::from_contracts(1),
                reason: CancelReason::Liquidation,
            },
            accepted(7, 2, Side::Sell, 2),
            trade((1, 0), (7, 2), 2, 200),
        ];
        let sold = vec![accepted(8, 1, Side::Sell, 1), trade((1, 0), (8, 1), 1, 200)];
        let mut events = pass.clone();
        let liquidation_end = events.len() as u32;
        events.extend(sold);
        let second = BlockOutcome {
            height: Height::new(2),
            events,
            liquidation_at: 1,
            liquidation_end,
            block_events_end: 0,
            txs: vec![
                TxOutcome {
                    rejection: Some(RejectReason::OrderUnknown),
                    events_end: 0,
                },
                TxOutcome {
                    rejection: None,
                    events_end: liquidation_end + 2,
                },
            ],
        };
        assert_eq!(second.liquidation_events(), &pass[..]);
        assert!(second.tx_events(0).is_empty());
        assert_eq!(second.tx_events(1).len(), 2);
        model.record(&block(2, vec![cancel, sell.clone()]), &second, &genesis);
        assert_eq!(model.public_trades(PERP).count(), 2, "each fill once");
        assert_eq!(
            model.order(OrderId::new(1)).unwrap().filled,
            Qty::from_contracts(3)
        );
        let result = model.tx_result(&tx_digest(&sell)).unwrap();
        assert_eq!(
            (result.order_id, result.cancelled),
            (Some(OrderId::new(8)), 0),
            "the pass's cancel is not the seller's"
        );
    }

    #[test]
    fn trade_histories_are_bounded() {
        let genesis = crate::test_exchange(0);
        let mut model = ReadModel::new(&genesis);
        let trades: Vec<Event> = (0..PUBLIC_TRADES_MAX as u64 + 50)
            .map(|i| trade((1_000 + i, 0), (5_000 + i, 1), 1, 200 + i as i64))
            .collect();
        model.record(
            &block(1, Vec::new()),
            &outcome(1, trades, Vec::new()),
            &genesis,
        );
        assert_eq!(model.public_trades(PERP).count(), PUBLIC_TRADES_MAX);
        assert_eq!(model.trades_of(AccountId::new(0)).count(), USER_TRADES_MAX);
        // Newest first.
        let newest = model.public_trades(PERP).next().unwrap();
        assert_eq!(newest.trade_seq, PUBLIC_TRADES_MAX as u64 + 50);
    }

    #[test]
    fn deposits_and_withdrawals_are_followed_from_request_to_end_and_bounded() {
        let genesis = crate::test_exchange(0);
        let mut model = ReadModel::new(&genesis);
        let a = AccountId::new(0);
        let usdc = Money::from_usdc;
        let with_end = |mut outcome: BlockOutcome, end: Vec<Event>| {
            outcome.events.extend(end);
            outcome
        };
        // Block 1: a deposit (a block event), a withdrawal asked for (a transaction's event).
        model.record(
            &block(1, vec![tx(1, 1, TxBody::Withdraw { amount: usdc(100) })]),
            &outcome(
                1,
                vec![Event::Deposited {
                    account: a,
                    amount: usdc(1_000),
                }],
                vec![(
                    None,
                    vec![Event::WithdrawalRequested {
                        account: a,
                        amount: usdc(100),
                    }],
                )],
            ),
            &genesis,
        );
        let held = model.withdrawals_of(a).next().unwrap().clone();
        assert_eq!(held.state, WithdrawalState::Held);
        assert_eq!((held.created_ms, held.updated_ms), (1_000, 1_000));
        let deposit = model.deposits_of(a).next().unwrap();
        assert_eq!((deposit.amount, deposit.height), (usdc(1_000), 1));
        // Block 2: paid at the block's end. The same record, now paid.
        let paid = Event::Withdrawn {
            account: a,
            amount: usdc(100),
        };
        model.record(
            &block(2, Vec::new()),
            &with_end(outcome(2, Vec::new(), Vec::new()), vec![paid]),
            &genesis,
        );
        let list: Vec<_> = model.withdrawals_of(a).cloned().collect();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].state, WithdrawalState::Paid);
        assert_eq!((list[0].id, list[0].updated_ms), (held.id, 2_000));
        // Block 3: another asked for and cancelled at its release, with the reason.
        let reason = RejectReason::WithdrawalExceedsAvailable { shortfall: usdc(5) };
        model.record(
            &block(3, vec![tx(1, 2, TxBody::Withdraw { amount: usdc(50) })]),
            &with_end(
                outcome(
                    3,
                    Vec::new(),
                    vec![(
                        None,
                        vec![Event::WithdrawalRequested {
                            account: a,
                            amount: usdc(50),
                        }],
                    )],
                ),
                vec![Event::WithdrawalCancelled {
                    account: a,
                    amount: usdc(50),
                    reason,
                }],
            ),
            &genesis,
        );
        let newest = model.withdrawals_of(a).next().unwrap();
        assert_eq!(newest.state, WithdrawalState::Cancelled(reason));
        assert_eq!(model.withdrawals_of(a).count(), 2);
        assert_eq!(
            model.withdrawals_of(AccountId::new(1)).count(),
            0,
            "nobody else's"
        );

        // Bounded: one held, then more paid at once than the bound; the held one stays.
        let b = AccountId::new(2);
        let request = Event::WithdrawalRequested {
            account: b,
            amount: usdc(1),
        };
        let paid_at_once: Vec<Event> = (0..TRANSFERS_PER_ACCOUNT_MAX as i64 + 10)
            .map(|i| Event::Withdrawn {
                account: b,
                amount: usdc(2 + i),
            })
            .chain(
                (0..TRANSFERS_PER_ACCOUNT_MAX + 10).map(|_| Event::Deposited {
                    account: b,
                    amount: usdc(3),
                }),
            )
            .collect();
        model.record(
            &block(4, Vec::new()),
            &outcome(
                4,
                std::iter::once(request).chain(paid_at_once).collect(),
                Vec::new(),
            ),
            &genesis,
        );
        let list: Vec<_> = model.withdrawals_of(b).collect();
        assert_eq!(list.len(), TRANSFERS_PER_ACCOUNT_MAX);
        assert_eq!(model.deposits_of(b).count(), TRANSFERS_PER_ACCOUNT_MAX);
        assert!(list.iter().any(|w| w.state == WithdrawalState::Held));
        assert_eq!(
            list[0].amount,
            usdc(2 + TRANSFERS_PER_ACCOUNT_MAX as i64 + 9),
            "newest first"
        );
    }
}
