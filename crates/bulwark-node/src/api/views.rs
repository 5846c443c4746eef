//! JSON views of exchange state and events, as the API serves them.
//!
//! Units: money and every price are decimal strings of USDC with six decimals (`"100000.000000"`;
//! exact, where JSON numbers would not be); book prices are also given in ticks; quantities are
//! contracts (integers); keys and digests are lower-case hex.

use crate::executor::hex;
use bulwark_exchange::{Account, Event, Exchange, Instrument, InstrumentStatus, KeyRole};
use bulwark_types::{InstrumentId, InstrumentKind, Price, Qty, Side, UnitPrice};
use serde::Serialize;
use serde_json::{Value, json};

/// One instrument's terms, life cycle and prices.
#[derive(Serialize)]
pub struct InstrumentView {
    pub id: u32,
    pub name: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub tick_size: String,
    /// Underlying units per contract, decimal.
    pub multiplier: String,
    pub lot_size: i64,
    pub size_min: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strike: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_ms: Option<u64>,
    pub mark: Option<String>,
    pub best_bid: Option<String>,
    pub best_ask: Option<String>,
    pub resting_orders: usize,
}

pub fn status_name(status: InstrumentStatus) -> &'static str {
    match status {
        InstrumentStatus::Trading => "trading",
        InstrumentStatus::Expired => "expired",
        InstrumentStatus::Settled => "settled",
    }
}

pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// The unit price of `price` ticks of the instrument, as a decimal string.
pub fn tick_price(instrument: &Instrument, price: Price) -> String {
    UnitPrice::from_ticks(price, instrument.spec.tick_size)
        .map_or_else(|_| format!("{} ticks", price.ticks()), |p| p.to_string())
}

pub fn instrument_view(instrument: &Instrument) -> InstrumentView {
    let (kind, strike, expiry_ms) = match instrument.kind {
        InstrumentKind::Perpetual => ("perpetual", None, None),
        InstrumentKind::Option {
            expiry_ms,
            strike,
            right,
        } => {
            let kind = match right {
                bulwark_types::Right::Call => "call",
                bulwark_types::Right::Put => "put",
            };
            (kind, Some(strike.to_string()), Some(expiry_ms))
        }
    };
    let e8 = instrument.spec.multiplier.e8();
    InstrumentView {
        id: instrument.id.get(),
        name: instrument.spec.name.to_string(),
        kind,
        status: status_name(instrument.status),
        tick_size: instrument.spec.tick_size.to_string(),
        multiplier: format!("{}.{:08}", e8 / 100_000_000, e8 % 100_000_000),
        lot_size: instrument.spec.lot_size.contracts(),
        size_min: instrument.spec.size_min.contracts(),
        strike,
        expiry_ms,
        mark: instrument.mark.map(|m| m.to_string()),
        best_bid: instrument
            .book
            .best_bid()
            .map(|(p, _)| tick_price(instrument, p)),
        best_ask: instrument
            .book
            .best_ask()
            .map(|(p, _)| tick_price(instrument, p)),
        resting_orders: instrument.book.len(),
    }
}

/// One aggregated price level.
#[derive(Serialize)]
pub struct LevelView {
    pub price: String,
    pub price_ticks: i64,
    pub qty: i64,
    pub orders: u32,
}

/// An instrument's book, aggregated by price, best first.
#[derive(Serialize)]
pub struct BookView {
    pub height: u64,
    pub instrument: InstrumentView,
    pub index: Option<String>,
    pub bids: Vec<LevelView>,
    pub asks: Vec<LevelView>,
}

pub fn book_view(state: &Exchange, instrument: &Instrument, depth: usize) -> BookView {
    let levels = |side| {
        instrument
            .book
            .depth(side, depth)
            .into_iter()
            .map(|(price, qty, orders): (Price, Qty, u32)| LevelView {
                price: tick_price(instrument, price),
                price_ticks: price.ticks(),
                qty: qty.contracts(),
                orders,
            })
            .collect()
    };
    BookView {
        height: state.height().get(),
        instrument: instrument_view(instrument),
        index: state
            .index_price(instrument.spec.underlying())
            .map(|p| p.to_string()),
        bids: levels(Side::Buy),
        asks: levels(Side::Sell),
    }
}

/// One position with its value at the mark.
#[derive(Serialize)]
pub struct PositionView {
    pub instrument: String,
    /// Contracts; negative when short.
    pub position: i64,
    /// Premium paid for the open position (negative: received).
    pub cost: String,
    pub mark: Option<String>,
    /// `position x mark x multiplier`, rounded down.
    pub value: Option<String>,
    /// `value - cost`.
    pub unrealised_pnl: Option<String>,
    pub realised_pnl: String,
    pub open_bids: i64,
    pub open_asks: i64,
}

pub fn positions_view(state: &Exchange, account: &Account) -> Vec<PositionView> {
    account
        .exposures
        .iter()
        .filter_map(|(id, exposure)| {
            let instrument = state.instrument(*id)?;
            let value = instrument.mark.map(|mark| {
                instrument
                    .spec
                    .multiplier
                    .value(Qty::from_contracts(exposure.position), mark)
            });
            Some(PositionView {
                instrument: instrument.spec.name.to_string(),
                position: exposure.position,
                cost: exposure.cost.to_string(),
                mark: instrument.mark.map(|m| m.to_string()),
                value: value.map(|v| v.to_string()),
                unrealised_pnl: value
                    .and_then(|v| v.checked_sub(exposure.cost).ok())
                    .map(|p| p.to_string()),
                realised_pnl: exposure.realised_pnl.to_string(),
                open_bids: exposure.bids.qty,
                open_asks: exposure.asks.qty,
            })
        })
        .collect()
}

/// One resting order.
#[derive(Serialize)]
pub struct OrderView {
    pub instrument: String,
    pub order_id: u64,
    pub client_order_id: u64,
    pub side: &'static str,
    pub price: String,
    /// Contracts still open.
    pub qty: i64,
    pub reduce_only: bool,
    pub post_only: bool,
}

pub fn orders_view(state: &Exchange, account: &Account) -> Vec<OrderView> {
    account
        .client_orders
        .values()
        .filter_map(|(instrument_id, order_id)| {
            let instrument = state.instrument(*instrument_id)?;
            let order = instrument.book.get(*order_id)?;
            Some(OrderView {
                instrument: instrument.spec.name.to_string(),
                order_id: order.order_id.get(),
                client_order_id: order.client_order_id.get(),
                side: side_name(order.side),
                price: tick_price(instrument, order.price),
                qty: order.qty.contracts(),
                reduce_only: order.reduce_only,
                post_only: order.post_only,
            })
        })
        .collect()
}

/// An account as its key sees it.
#[derive(Serialize)]
pub struct AccountView {
    pub height: u64,
    pub key: String,
    /// Role of the key: owner, agent, revoked, or `none` for a key the exchange knows only by
    /// its nonce (the bridge, the admin).
    pub role: &'static str,
    /// Last nonce this key used in the newest state this node holds (finalized or speculative).
    pub nonce_last: Option<u64>,
    /// Highest nonce of this key waiting in this node's mempool.
    pub nonce_pending_max: Option<u64>,
    /// The nonce to sign the key's next transaction with.
    pub nonce_next: u64,
    pub account_id: Option<u64>,
    pub owner: Option<String>,
    /// Settlement-currency cash. Fills move each trade's whole premium through it (the
    /// perpetual's too), so a perpetual long shows it low; `balance` is what was realised.
    pub cash: Option<String>,
    /// Deribit's `balance`: cash less the open perpetual positions' premium flows, i.e.
    /// deposits less withdrawals, plus realised profit, option premium received less paid,
    /// funding and settlement, less fees.
    pub balance: Option<String>,
    /// `standard` or `portfolio`.
    pub margin_mode: Option<&'static str>,
    /// Balance plus every position at its valuation price.
    pub equity: Option<String>,
    pub margin_initial: Option<String>,
    pub margin_maintenance: Option<String>,
    /// Deribit's `available_funds`: equity above initial margin, what new risk may use.
    pub available_funds: Option<String>,
    /// What is not realised money: long options' value and perpetuals' unrealised gains.
    pub unrealised: Option<String>,
    /// Premium (and the most in fees) that resting option bids would pay from realised funds.
    pub premium_reserved: Option<String>,
    /// Deribit's `available_withdrawal_funds`: `available_funds - unrealised -
    /// premium_reserved`, never below zero; what may leave, and what pays option premium.
    pub available_withdrawal_funds: Option<String>,
    /// The account's withdrawal held until its release, if any: `{amount, requested_ms}`
    /// (held back from `available_funds`; paid at the end of the first block whose prices
    /// were observed after `requested_ms`, if the account still covers it there).
    pub withdrawal_pending: Option<Value>,
    /// Every withdrawal paid out of this account so far (a client that asked for one sees it
    /// paid when this grows by its amount and `withdrawal_pending` is gone).
    pub withdrawn: Option<String>,
    pub orders: Vec<OrderView>,
    pub positions: Vec<PositionView>,
}

pub fn role_name(role: KeyRole) -> &'static str {
    match role {
        KeyRole::Owner => "owner",
        KeyRole::Agent => "agent",
        KeyRole::Revoked => "revoked",
    }
}

/// `IndexClamped` -> `index_clamped`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn instrument_name(state: &Exchange, id: InstrumentId) -> String {
    state
        .instrument(id)
        .map_or_else(|| format!("#{}", id.get()), |i| i.spec.name.to_string())
}

fn price_of(state: &Exchange, id: InstrumentId, price: Price) -> String {
    state.instrument(id).map_or_else(
        || format!("{} ticks", price.ticks()),
        |i| tick_price(i, price),
    )
}

/// One event, with instrument ids resolved to names and prices to USDC.
pub fn event_json(state: &Exchange, event: &Event) -> Value {
    match event {
        Event::AccountOpened { account, owner } => {
            json!({"type": "account_opened", "account": account.get(), "owner": hex(owner.as_ref())})
        }
        Event::Deposited { account, amount } => {
            json!({"type": "deposited", "account": account.get(), "amount": amount.to_string()})
        }
        Event::Withdrawn { account, amount } => {
            json!({"type": "withdrawn", "account": account.get(), "amount": amount.to_string()})
        }
        Event::WithdrawalRequested { account, amount } => json!({
            "type": "withdrawal_requested", "account": account.get(), "amount": amount.to_string(),
        }),
        Event::WithdrawalCancelled {
            account,
            amount,
            reason,
        } => json!({
            "type": "withdrawal_cancelled", "account": account.get(),
            "amount": amount.to_string(), "reason": reason.to_string(), "code": reason.code(),
        }),
        Event::AgentAuthorised { account, agent } => {
            json!({"type": "agent_authorised", "account": account.get(), "agent": hex(agent.as_ref())})
        }
        Event::AccountAbsorbed {
            account,
            into,
            amount,
        } => {
            json!({"type": "account_absorbed", "account": account.get(), "into": into.get(), "amount": amount.to_string()})
        }
        Event::AgentRevoked { account, agent } => {
            json!({"type": "agent_revoked", "account": account.get(), "agent": hex(agent.as_ref())})
        }
        Event::InstrumentListed { instrument, spec } => {
            json!({"type": "instrument_listed", "instrument": instrument.get(), "name": spec.name.to_string()})
        }
        Event::OrderAccepted {
            instrument,
            order_id,
            account,
            client_order_id,
            side,
            price,
            qty,
        } => json!({
            "type": "order_accepted", "instrument": instrument_name(state, *instrument), "order_id": order_id.get(),
            "account": account.get(), "client_order_id": client_order_id.get(), "side": side_name(*side),
            "price": price_of(state, *instrument, *price), "qty": qty.contracts(),
        }),
        Event::Trade(trade) => json!({
            "type": "trade", "instrument": instrument_name(state, trade.instrument), "price": price_of(state, trade.instrument, trade.price),
            "qty": trade.qty.contracts(), "taker_side": side_name(trade.taker_side),
            "maker_order_id": trade.maker_order_id.get(), "maker_account": trade.maker_account.get(),
            "taker_order_id": trade.taker_order_id.get(), "taker_account": trade.taker_account.get(),
            "maker_fee": trade.maker_fee.to_string(), "taker_fee": trade.taker_fee.to_string(),
        }),
        Event::OrderCancelled {
            instrument,
            order_id,
            account,
            qty,
            reason,
        } => json!({
            "type": "order_cancelled", "instrument": instrument_name(state, *instrument), "order_id": order_id.get(),
            "account": account.get(), "qty": qty.contracts(), "reason": format!("{reason:?}"),
        }),
        Event::OrderAmended {
            instrument,
            order_id,
            account,
            price,
            qty,
            priority_kept,
        } => json!({
            "type": "order_amended", "instrument": instrument_name(state, *instrument), "order_id": order_id.get(),
            "account": account.get(), "price": price_of(state, *instrument, *price), "qty": qty.contracts(), "priority_kept": priority_kept,
        }),
        Event::PriceIgnored { input, reason } => {
            json!({"type": "price_ignored", "input": format!("{input:?}"), "reason": format!("{reason:?}")})
        }
        Event::MarkClamped {
            instrument,
            supplied,
            applied,
        } => json!({
            "type": "mark_clamped", "instrument": instrument_name(state, *instrument), "supplied": supplied.to_string(), "applied": applied.to_string(),
        }),
        Event::FundingPaid {
            instrument,
            rate_ppm,
            per_contract,
            mark,
            index,
        } => json!({
            "type": "funding_paid", "instrument": instrument_name(state, *instrument), "rate_ppm": rate_ppm,
            "per_contract": per_contract.to_string(), "mark": mark.to_string(), "index": index.to_string(),
        }),
        Event::InstrumentExpired { instrument } => {
            json!({"type": "instrument_expired", "instrument": instrument_name(state, *instrument)})
        }
        Event::PositionSettled {
            instrument,
            account,
            position,
            amount,
        } => json!({
            "type": "position_settled", "instrument": instrument_name(state, *instrument), "account": account.get(),
            "position": position, "amount": amount.to_string(),
        }),
        Event::InstrumentSettled { instrument, price } => {
            json!({"type": "instrument_settled", "instrument": instrument_name(state, *instrument), "price": price.to_string()})
        }
        Event::InstrumentHalted {
            instrument,
            low,
            high,
            until_ms,
        } => json!({
            "type": "instrument_halted", "instrument": instrument_name(state, *instrument),
            "low": price_of(state, *instrument, *low), "high": price_of(state, *instrument, *high), "until_ms": until_ms,
        }),
        Event::InstrumentReopened {
            instrument,
            price,
            volume,
        } => json!({
            "type": "instrument_reopened", "instrument": instrument_name(state, *instrument),
            "price": price.map(|p| price_of(state, *instrument, p)), "volume": volume.contracts(),
        }),
        Event::MmpTriggered {
            account,
            asset,
            contracts,
            delta_e8,
            frozen_until_ms,
        } => json!({
            "type": "mmp_triggered", "account": account.get(), "asset": asset.as_str(), "contracts": contracts.contracts(),
            "delta_e8": delta_e8, "frozen_until_ms": frozen_until_ms,
        }),
        // Events without a view of their own yet (the exchange keeps gaining kinds): the
        // variant's name as the type, and its debug form.
        other => {
            let detail = format!("{other:?}");
            let name = detail.split([' ', '(', '{']).next().unwrap_or("event");
            json!({"type": snake_case(name), "detail": detail})
        }
    }
}
