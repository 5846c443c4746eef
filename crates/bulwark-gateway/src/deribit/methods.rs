//! The method dispatcher: one Deribit JSON-RPC call in, its `result` (or error) out,
//! independent of the transport (HTTP GET, HTTP POST, and later WebSocket all call
//! [`dispatch`]).
//!
//! Owns: every method of the contract's section 6 and the JSON shapes of section 7, built
//! from the replica's state (books, accounts, margins) and the read model (orders, trades).
//! Never: reports a figure the exchange does not have (such fields are absent or `null`,
//! listed in the crate README); holds the replica's lock across an `.await`.

use super::convert::{self, DecimalError};
use super::error::{self, RpcError};
use crate::gateway::{Gateway, now_ms};
use crate::index::{
    Fill, OrderRecord, OrderState, PublicTrade, STATS_WINDOW_MS, WithdrawalRecord, WithdrawalState,
};
use crate::keys::ApiKey;
use bulwark_exchange::{Exchange, Instrument, InstrumentStatus};
use bulwark_types::{
    AccountId, ClientOrderId, InstrumentKind, InstrumentName, InstrumentSpec, OrderId, OrderRef,
    OrderRequest, OrderType, Right, Side, TimeInForce, TxBody, UnitPrice,
};
use serde_json::{Map, Value, json};

/// Perpetuals have no expiry; Deribit reports this far-future date (3000-01-01).
const PERPETUAL_EXPIRY_MS: u64 = 32_503_680_000_000;
/// Most rows any list call returns.
pub const COUNT_MAX: usize = 1_000;
/// Most book levels per side returned.
pub const DEPTH_MAX: usize = 1_000;

/// A call's parameters: query-string values (strings) or JSON-RPC `params` (any JSON).
#[derive(Clone, Debug, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// A parameter as text, if present (numbers and booleans as their JSON text).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            // A JSON number as plain decimal digits: serde_json writes a float in exponent
            // form (`1e-5`), which the decimal parsers refuse; Rust's `Display` of an `f64`
            // is the shortest exact decimal, never in exponent form.
            Value::Number(n) => Some(match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => u.to_string(),
                (None, Some(i), _) => i.to_string(),
                (None, None, Some(f)) => format!("{f}"),
                (None, None, None) => n.to_string(),
            }),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn required(&self, name: &str) -> Result<String, RpcError> {
        self.text(name).ok_or_else(|| RpcError::missing_param(name))
    }

    pub fn flag(&self, name: &str, default: bool) -> Result<bool, RpcError> {
        match self.text(name).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(RpcError::invalid_param(name, "must be true or false")),
        }
    }

    pub fn integer(&self, name: &str) -> Result<Option<u64>, RpcError> {
        self.text(name)
            .map(|t| {
                t.parse::<u64>()
                    .map_err(|_| RpcError::invalid_param(name, "must be a non-negative integer"))
            })
            .transpose()
    }

    /// `count`, defaulting to `default`, at most [`COUNT_MAX`].
    fn count(&self, default: usize) -> Result<usize, RpcError> {
        match self.integer("count")? {
            None => Ok(default),
            Some(0) => Err(RpcError::invalid_param("count", "must be at least 1")),
            Some(n) if n as usize > COUNT_MAX => {
                Err(RpcError::invalid_param("count", "must be at most 1000"))
            }
            Some(n) => Ok(n as usize),
        }
    }
}

/// Who a private call acts for.
#[derive(Clone)]
pub struct Principal {
    pub key: ApiKey,
    pub account: AccountId,
}

/// Whether `method` calls the matching engine (the rate limiter charges it separately).
pub fn is_engine_call(method: &str) -> bool {
    matches!(
        method,
        "private/buy"
            | "private/sell"
            | "private/edit"
            | "private/cancel"
            | "private/cancel_all"
            | "private/cancel_all_by_instrument"
            | "private/cancel_all_by_currency"
    )
}

/// Runs one call. `principal` is `Some` exactly for authenticated private calls.
pub async fn dispatch(
    gateway: &Gateway,
    method: &str,
    params: &Params,
    principal: Option<&Principal>,
) -> Result<Value, RpcError> {
    if let Some(private) = method.strip_prefix("private/") {
        let Some(principal) = principal else {
            return Err(RpcError::new(
                error::AUTHORIZATION_REQUIRED,
                "authorization_required",
            ));
        };
        return private_call(gateway, private, params, principal).await;
    }
    let Some(public) = method.strip_prefix("public/") else {
        return Err(error::method_not_found());
    };
    if let Some(reason) = gateway.replica.halted() {
        if public != "get_time" && public != "status" && public != "test" {
            return Err(error::unavailable(&reason));
        }
    }
    let state = gateway.replica.lock();
    let exchange = state.chain.finalized();
    let index = &state.index;
    match public {
        "get_time" => Ok(json!(now_ms())),
        "test" => Ok(json!({"version": env!("CARGO_PKG_VERSION")})),
        "status" => Ok(json!({
            "locked": if state.halted.is_some() { "true" } else { "false" },
            "locked_indices": [],
        })),
        "get_currencies" => Ok(currencies(exchange)),
        "get_instruments" => {
            let (currency, kind) = filters(exchange, params, false)?;
            let expired = params.flag("expired", false)?;
            let list: Vec<Value> = exchange
                .instruments()
                .iter()
                .filter(|i| currency_matches(i, &currency) && kind_matches(i, &kind))
                .filter(|i| (i.status != InstrumentStatus::Trading) == expired)
                .map(instrument_json)
                .collect();
            Ok(Value::Array(list))
        }
        "ticker" => {
            let instrument = instrument_param(exchange, params)?;
            Ok(ticker(
                exchange,
                instrument,
                index.public_trades(instrument.id),
            ))
        }
        "get_order_book" => {
            let instrument = instrument_param(exchange, params)?;
            let depth = match params.integer("depth")? {
                None => 5,
                Some(0) => return Err(RpcError::invalid_param("depth", "must be at least 1")),
                Some(n) => (n as usize).min(DEPTH_MAX),
            };
            let spec = &instrument.spec;
            let levels = |side| -> Vec<Value> {
                instrument
                    .book
                    .depth(side, depth)
                    .into_iter()
                    .map(|(price, qty, _)| {
                        json!([
                            convert::ticks_price(price, spec),
                            convert::qty_amount(qty, spec)
                        ])
                    })
                    .collect()
            };
            let mut book = ticker(exchange, instrument, index.public_trades(instrument.id));
            book["bids"] = Value::Array(levels(Side::Buy));
            book["asks"] = Value::Array(levels(Side::Sell));
            book["change_id"] = json!(exchange.height().get());
            Ok(book)
        }
        "get_last_trades_by_instrument" | "get_last_trades_by_instrument_and_time" => {
            let instrument = instrument_param(exchange, params)?;
            let count = params.count(10)?;
            let (start, end) = if public.ends_with("_and_time") {
                time_range(params, true)?
            } else {
                (0, u64::MAX)
            };
            let spec = &instrument.spec;
            let mut matching = index
                .public_trades(instrument.id)
                .filter(|t| (start..=end).contains(&t.time_ms));
            let trades: Vec<Value> = matching
                .by_ref()
                .take(count)
                .map(|t| public_trade_json(t, spec))
                .collect();
            let has_more = matching.next().is_some();
            Ok(json!({"trades": trades, "has_more": has_more}))
        }
        "get_book_summary_by_currency" => {
            let (currency, kind) = filters(exchange, params, true)?;
            let list: Vec<Value> = exchange
                .instruments()
                .iter()
                .filter(|i| i.status == InstrumentStatus::Trading)
                .filter(|i| currency_matches(i, &currency) && kind_matches(i, &kind))
                .map(|i| book_summary(exchange, i, index.public_trades(i.id)))
                .collect();
            Ok(Value::Array(list))
        }
        "get_book_summary_by_instrument" => {
            let instrument = instrument_param(exchange, params)?;
            Ok(json!([book_summary(
                exchange,
                instrument,
                index.public_trades(instrument.id)
            )]))
        }
        "get_index_price" => {
            let name = params.required("index_name")?;
            // Deribit's index names: `<base>_usd` and `<base>_usdc`, lower case.
            let base = name
                .strip_suffix("_usdc")
                .or_else(|| name.strip_suffix("_usd"))
                .filter(|base| !base.contains('_') && *base == base.to_ascii_lowercase())
                .ok_or_else(|| RpcError::invalid_param("index_name", "<base>_usd or <base>_usdc"))?
                .to_ascii_uppercase();
            let asset = bulwark_types::AssetCode::parse(&base)
                .map_err(|_| RpcError::invalid_param("index_name", "unknown index"))?;
            let price = exchange
                .index_price(asset)
                .ok_or_else(|| RpcError::invalid_param("index_name", "no index price known"))?;
            Ok(json!({
                "index_price": convert::unit_price(price),
                "estimated_delivery_price": convert::unit_price(price),
            }))
        }
        _ => Err(error::method_not_found()),
    }
}

/// `start_timestamp` (required when `start_required`) and `end_timestamp` (default: now).
fn time_range(params: &Params, start_required: bool) -> Result<(u64, u64), RpcError> {
    let start = match params.integer("start_timestamp")? {
        Some(start) => start,
        None if start_required => return Err(RpcError::missing_param("start_timestamp")),
        None => 0,
    };
    let end = params.integer("end_timestamp")?.unwrap_or(u64::MAX);
    Ok((start, end))
}

fn currencies(exchange: &Exchange) -> Value {
    let mut codes: Vec<String> = exchange
        .instruments()
        .iter()
        .map(|i| i.spec.name.base().as_str().to_string())
        .collect();
    codes.push("BTC".into());
    codes.sort();
    codes.dedup();
    let mut list: Vec<Value> = codes
        .into_iter()
        .filter(|c| c != "USDC")
        .map(|c| json!({"currency": c, "currency_long": c}))
        .collect();
    list.push(json!({"currency": "USDC", "currency_long": "USD Coin"}));
    Value::Array(list)
}

/// `currency=BTC` matches BTC-underlying instruments; `USDC` (the settlement currency) and
/// `any` match all.
pub(crate) fn currency_matches(instrument: &Instrument, currency: &str) -> bool {
    currency == "any" || currency == "USDC" || instrument.spec.name.base().as_str() == currency
}

pub(crate) fn kind_matches(instrument: &Instrument, kind: &str) -> bool {
    match kind {
        "future" => !instrument.is_option(),
        "option" => instrument.is_option(),
        "any" => true,
        // Deribit's spot and combo kinds: none listed here.
        _ => false,
    }
}

/// Deribit's instrument kinds.
const KINDS: [&str; 6] = [
    "any",
    "future",
    "option",
    "spot",
    "future_combo",
    "option_combo",
];

/// A request's `currency` and `kind` filters (`currency` required or defaulting to `any`,
/// `kind` defaulting to `any`), refused unless a currency this venue knows (upper case, as
/// Deribit's) and one of Deribit's kinds: an unknown filter is a mistake to answer, not "all"
/// or "none".
fn filters(
    exchange: &Exchange,
    params: &Params,
    currency_required: bool,
) -> Result<(String, String), RpcError> {
    let currency = if currency_required {
        params.required("currency")?
    } else {
        params.text("currency").unwrap_or_else(|| "any".into())
    };
    let known = currency == "any"
        || currency == "USDC"
        || currency == "BTC"
        || exchange
            .instruments()
            .iter()
            .any(|i| i.spec.name.base().as_str() == currency);
    if !known {
        return Err(RpcError::invalid_param(
            "currency",
            "a currency of public/get_currencies, or any",
        ));
    }
    let kind = params.text("kind").unwrap_or_else(|| "any".into());
    if !KINDS.contains(&kind.as_str()) {
        return Err(RpcError::invalid_param(
            "kind",
            "future, option, spot, future_combo, option_combo or any",
        ));
    }
    Ok((currency, kind))
}

pub(crate) fn instrument_param<'a>(
    exchange: &'a Exchange,
    params: &Params,
) -> Result<&'a Instrument, RpcError> {
    let name = params.required("instrument_name")?;
    InstrumentName::parse(&name)
        .ok()
        .and_then(|n| exchange.instrument_by_name(&n))
        .ok_or_else(|| RpcError::invalid_param("instrument_name", "wrong format"))
}

pub fn instrument_json(instrument: &Instrument) -> Value {
    let spec = &instrument.spec;
    let base = spec.name.base().as_str().to_string();
    let mut value = json!({
        "instrument_name": spec.name.to_string(),
        "base_currency": base,
        "counter_currency": "USDC",
        "quote_currency": "USDC",
        "settlement_currency": "USDC",
        "instrument_type": "linear",
        "price_index": format!("{}_usdc", base.to_ascii_lowercase()),
        "is_active": instrument.status == InstrumentStatus::Trading,
        "tick_size": convert::unit_price(spec.tick_size),
        "tick_size_steps": [],
        "min_trade_amount": convert::min_trade_amount(spec),
        "contract_size": 1,
        "instrument_id": instrument.id.get(),
    });
    match instrument.kind {
        InstrumentKind::Perpetual => {
            value["kind"] = json!("future");
            value["future_type"] = json!("linear");
            value["settlement_period"] = json!("perpetual");
            value["expiration_timestamp"] = json!(PERPETUAL_EXPIRY_MS);
        }
        InstrumentKind::Option {
            expiry_ms,
            strike,
            right,
        } => {
            value["kind"] = json!("option");
            value["option_type"] = json!(match right {
                Right::Call => "call",
                Right::Put => "put",
            });
            value["strike"] = json!(convert::unit_price(strike));
            value["settlement_period"] = json!("month");
            value["expiration_timestamp"] = json!(expiry_ms);
        }
    }
    value
}

/// 24-hour statistics from the public trades the gateway has seen (newest first).
fn stats<'a>(
    now_ms: u64,
    spec: &InstrumentSpec,
    trades: impl Iterator<Item = &'a PublicTrade>,
) -> (Value, Option<f64>) {
    let (mut high, mut low) = (None::<f64>, None::<f64>);
    // Summed exactly (contracts, and ticks x contracts), converted once.
    let (mut contracts, mut notional_ticks) = (0i128, 0i128);
    let mut last = None;
    for trade in trades {
        let price = convert::ticks_price(trade.price, spec);
        if last.is_none() {
            last = Some(price);
        }
        if trade.time_ms.saturating_add(STATS_WINDOW_MS) < now_ms {
            break;
        }
        high = Some(high.map_or(price, |h| h.max(price)));
        low = Some(low.map_or(price, |l| l.min(price)));
        contracts += i128::from(trade.qty.contracts());
        notional_ticks += i128::from(trade.qty.contracts()) * i128::from(trade.price.ticks());
    }
    let multiplier = i128::from(spec.multiplier.e8());
    let volume = (contracts * multiplier) as f64 / 1e8;
    let volume_usd =
        (notional_ticks * multiplier * i128::from(spec.tick_size.micros())) as f64 / 1e14;
    (
        json!({"high": high, "low": low, "volume": volume, "volume_usd": volume_usd, "price_change": null}),
        last,
    )
}

pub(crate) fn ticker<'a>(
    exchange: &Exchange,
    instrument: &Instrument,
    trades: impl Iterator<Item = &'a PublicTrade>,
) -> Value {
    let spec = &instrument.spec;
    let now = exchange.time().millis();
    let (stats, last) = stats(now, spec, trades);
    let best = |level: Option<(bulwark_types::Price, bulwark_types::Qty)>| match level {
        Some((price, qty)) => (
            json!(convert::ticks_price(price, spec)),
            json!(convert::qty_amount(qty, spec)),
        ),
        None => (Value::Null, json!(0)),
    };
    let (bid, bid_amount) = best(instrument.book.best_bid());
    let (ask, ask_amount) = best(instrument.book.best_ask());
    let index = exchange.index_price(spec.name.base());
    json!({
        "instrument_name": spec.name.to_string(),
        "timestamp": now,
        "state": if instrument.status == InstrumentStatus::Trading { "open" } else { "closed" },
        "best_bid_price": bid,
        "best_bid_amount": bid_amount,
        "best_ask_price": ask,
        "best_ask_amount": ask_amount,
        "last_price": last,
        "mark_price": instrument.mark.map(convert::unit_price),
        "index_price": index.map(convert::unit_price),
        "open_interest": convert::contracts_amount(instrument.open_interest(), spec),
        "stats": stats,
    })
}

fn book_summary<'a>(
    exchange: &Exchange,
    instrument: &Instrument,
    trades: impl Iterator<Item = &'a PublicTrade>,
) -> Value {
    let ticker = ticker(exchange, instrument, trades);
    let mid = match (
        ticker["best_bid_price"].as_f64(),
        ticker["best_ask_price"].as_f64(),
    ) {
        (Some(bid), Some(ask)) => json!((bid + ask) / 2.0),
        _ => Value::Null,
    };
    json!({
        "instrument_name": ticker["instrument_name"],
        "base_currency": instrument.spec.name.base().as_str(),
        "quote_currency": "USDC",
        "bid_price": ticker["best_bid_price"],
        "ask_price": ticker["best_ask_price"],
        "mid_price": mid,
        "mark_price": ticker["mark_price"],
        "last": ticker["last_price"],
        "high": ticker["stats"]["high"],
        "low": ticker["stats"]["low"],
        "volume": ticker["stats"]["volume"],
        "volume_usd": ticker["stats"]["volume_usd"],
        "open_interest": ticker["open_interest"],
        "creation_timestamp": ticker["timestamp"],
        "estimated_delivery_price": ticker["index_price"],
        "underlying_price": ticker["index_price"],
        "price_change": null,
    })
}

fn direction(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

pub(crate) fn public_trade_json(trade: &PublicTrade, spec: &InstrumentSpec) -> Value {
    json!({
        "trade_id": format!("BLW-T{}", trade.trade_seq),
        "trade_seq": trade.trade_seq,
        "instrument_name": spec.name.to_string(),
        "timestamp": trade.time_ms,
        "direction": direction(trade.taker_side),
        "price": convert::ticks_price(trade.price, spec),
        "amount": convert::qty_amount(trade.qty, spec),
        "tick_direction": 0,
    })
}

fn order_id_text(id: OrderId) -> String {
    format!("BLW-{}", id.get())
}

fn parse_order_id(params: &Params) -> Result<OrderId, RpcError> {
    let text = params.required("order_id")?;
    let digits = text.strip_prefix("BLW-").unwrap_or(&text);
    digits
        .parse::<u64>()
        .map(OrderId::new)
        .map_err(|_| RpcError::invalid_param("order_id", "wrong format"))
}

pub(crate) fn order_json(order: &OrderRecord, spec: &InstrumentSpec) -> Value {
    let filled = convert::qty_amount(order.filled, spec);
    let average = if order.filled.contracts() > 0 {
        order.notional_ticks as f64 * spec.tick_size.micros() as f64
            / 1e6
            / order.filled.contracts() as f64
    } else {
        0.0
    };
    json!({
        "order_id": order_id_text(order.order_id),
        "instrument_name": spec.name.to_string(),
        "direction": direction(order.side),
        "order_type": if order.price.is_some() { "limit" } else { "market" },
        "order_state": match order.state {
            OrderState::Open => "open",
            OrderState::Filled => "filled",
            OrderState::Cancelled => "cancelled",
        },
        "amount": convert::qty_amount(order.qty, spec),
        "filled_amount": filled,
        "price": order.price.map_or(json!("market_price"), |p| json!(convert::ticks_price(p, spec))),
        "average_price": average,
        "time_in_force": match order.time_in_force {
            TimeInForce::GoodTilCancelled => "good_til_cancelled",
            TimeInForce::ImmediateOrCancel => "immediate_or_cancel",
            TimeInForce::FillOrKill => "fill_or_kill",
        },
        "post_only": order.post_only,
        "reduce_only": order.reduce_only,
        "label": "",
        "creation_timestamp": order.created_ms,
        "last_update_timestamp": order.updated_ms,
        "commission": convert::money(order.fee),
        "replaced": order.amended,
        "is_liquidation": order.liquidation,
    })
}

pub(crate) fn user_trade_json(
    fill: &Fill,
    spec: &InstrumentSpec,
    order: Option<&OrderRecord>,
) -> Value {
    json!({
        "trade_id": format!("BLW-T{}", fill.trade_seq),
        "trade_seq": fill.trade_seq,
        "instrument_name": spec.name.to_string(),
        "timestamp": fill.time_ms,
        "direction": direction(fill.side),
        "price": convert::ticks_price(fill.price, spec),
        "amount": convert::qty_amount(fill.qty, spec),
        "order_id": order_id_text(fill.order_id),
        "order_type": order.map_or("limit", |o| if o.price.is_some() { "limit" } else { "market" }),
        "liquidity": if fill.maker { "M" } else { "T" },
        "fee": convert::money(fill.fee),
        "fee_currency": "USDC",
        "state": order.map_or("filled", |o| match o.state {
            OrderState::Open => "open",
            OrderState::Filled => "filled",
            OrderState::Cancelled => "cancelled",
        }),
    })
}

/// The account summary in USDC, from the replica's margin view.
pub(crate) fn summary(exchange: &Exchange, account: AccountId, currency: &str) -> Value {
    if currency != "USDC" {
        // Accounts hold USDC only: in any other currency they hold nothing.
        return json!({
            "currency": currency, "equity": 0, "balance": 0, "margin_balance": 0,
            "available_funds": 0, "available_withdrawal_funds": 0,
            "initial_margin": 0, "maintenance_margin": 0,
        });
    }
    let Some(margin) = exchange.account_margin(account) else {
        return json!({"currency": "USDC"});
    };
    let portfolio = exchange
        .account(account)
        .is_some_and(|a| a.margin_mode == bulwark_exchange::MarginMode::Portfolio);
    json!({
        "currency": "USDC",
        "equity": convert::money(margin.equity),
        "margin_balance": convert::money(margin.equity),
        "balance": convert::money(margin.balance),
        "available_funds": convert::money(margin.available),
        "available_withdrawal_funds": convert::money(margin.withdrawable.max(bulwark_types::Money::ZERO)),
        "initial_margin": convert::money(margin.requirement.initial),
        "maintenance_margin": convert::money(margin.requirement.maintenance),
        "portfolio_margining_enabled": portfolio,
        "margin_model": if portfolio { "cross_pm" } else { "cross_sm" },
    })
}

fn position_json(exchange: &Exchange, instrument: &Instrument, account: AccountId) -> Value {
    let spec = &instrument.spec;
    let exposure = exchange
        .account(account)
        .and_then(|a| a.exposures.get(&instrument.id).copied())
        .unwrap_or_default();
    let size = convert::contracts_amount(exposure.position, spec);
    let average = if exposure.position != 0 {
        convert::money(exposure.cost) / size
    } else {
        0.0
    };
    let value = instrument.mark.map(|mark| {
        spec.multiplier
            .value(bulwark_types::Qty::from_contracts(exposure.position), mark)
    });
    let floating = value.and_then(|v| v.checked_sub(exposure.cost).ok());
    json!({
        "instrument_name": spec.name.to_string(),
        "kind": if instrument.is_option() { "option" } else { "future" },
        "direction": match exposure.position.signum() { 1 => "buy", -1 => "sell", _ => "zero" },
        "size": size,
        "size_currency": size,
        "average_price": average,
        "mark_price": instrument.mark.map(convert::unit_price),
        "index_price": exchange.index_price(spec.name.base()).map(convert::unit_price),
        "floating_profit_loss": floating.map(convert::money),
        "realized_profit_loss": convert::money(exposure.realised_pnl),
        "total_profit_loss": floating.map(|f| convert::money(f) + convert::money(exposure.realised_pnl)),
        // The exchange margins accounts, not positions: no per-position figures exist.
        "initial_margin": null,
        "maintenance_margin": null,
        "leverage": null,
        "estimated_liquidation_price": null,
    })
}

fn amount_error(param: &str, error: DecimalError) -> RpcError {
    match error {
        DecimalError::Malformed | DecimalError::TooPrecise => {
            RpcError::invalid_param(param, &error.to_string())
        }
        DecimalError::NotPositive | DecimalError::OffStep | DecimalError::OutOfRange
            if param == "amount" =>
        {
            RpcError::new(error::INVALID_AMOUNT, "invalid_amount")
                .with_data(json!({"param": param, "reason": error.to_string()}))
        }
        DecimalError::OutOfRange => RpcError::invalid_param(param, &error.to_string()),
        DecimalError::OffStep => RpcError::new(error::PRICE_WRONG_TICK, "price_wrong_tick")
            .with_data(json!({"param": param, "reason": error.to_string()})),
        DecimalError::NotPositive => RpcError::new(error::PRICE_TOO_LOW, "price_too_low")
            .with_data(json!({"param": param, "reason": error.to_string()})),
    }
}

/// An order of the principal's account, or `10004 order_not_found`.
fn own_order(
    gateway: &Gateway,
    principal: &Principal,
    id: OrderId,
) -> Result<OrderRecord, RpcError> {
    let state = gateway.replica.lock();
    state
        .index
        .order(id)
        .filter(|o| o.account == principal.account)
        .cloned()
        .ok_or_else(error::order_not_found)
}

/// The order as the block left it, with its fills: `{"order", "trades"}`.
fn order_with_trades(gateway: &Gateway, id: OrderId) -> Result<Value, RpcError> {
    let state = gateway.replica.lock();
    let order = state
        .index
        .order(id)
        .ok_or_else(|| error::internal("the order's outcome is not indexed"))?;
    let instrument = state
        .chain
        .finalized()
        .instrument(order.instrument)
        .ok_or_else(|| error::internal("instrument missing"))?;
    let trades: Vec<Value> = order
        .fills
        .iter()
        .map(|f| user_trade_json(f, &instrument.spec, Some(order)))
        .collect();
    Ok(json!({"order": order_json(order, &instrument.spec), "trades": trades}))
}

async fn private_call(
    gateway: &Gateway,
    method: &str,
    params: &Params,
    principal: &Principal,
) -> Result<Value, RpcError> {
    if let Some(reason) = gateway.replica.halted() {
        return Err(error::unavailable(&reason));
    }
    match method {
        "buy" | "sell" => {
            let side = if method == "buy" {
                Side::Buy
            } else {
                Side::Sell
            };
            let request = {
                let state = gateway.replica.lock();
                order_request(state.chain.finalized(), params, side)?
            };
            let result = gateway
                .execute(&principal.key, TxBody::PlaceOrder(request))
                .await?;
            if let Some(reason) = result.rejection {
                return Err(error::reject_error(&reason));
            }
            let id = result
                .order_id
                .ok_or_else(|| error::internal("the order left no trace in its block"))?;
            order_with_trades(gateway, id)
        }
        "edit" => {
            let id = parse_order_id(params)?;
            let order = own_order(gateway, principal, id)?;
            if order.state != OrderState::Open {
                return Err(RpcError::new(error::NOT_OPEN_ORDER, "not_open_order"));
            }
            let body = {
                let state = gateway.replica.lock();
                let instrument = state
                    .chain
                    .finalized()
                    .instrument(order.instrument)
                    .ok_or_else(|| error::internal("instrument missing"))?;
                let spec = &instrument.spec;
                let amount = params.required("amount")?;
                let total =
                    convert::amount_to_qty(&amount, spec).map_err(|e| amount_error("amount", e))?;
                let remaining = total.contracts() - order.filled.contracts();
                if remaining <= 0 {
                    return Err(
                        RpcError::new(error::INVALID_AMOUNT, "invalid_amount").with_data(
                            json!({"param": "amount", "reason": "not above the filled amount"}),
                        ),
                    );
                }
                let price = match params.text("price") {
                    Some(text) => {
                        convert::price_to_ticks(&text, spec)
                            .map_err(|e| amount_error("price", e))?
                            .0
                    }
                    None => match order.price {
                        Some(ticks) => UnitPrice::from_ticks(ticks, spec.tick_size)
                            .map_err(|_| error::internal("price out of range"))?,
                        None => return Err(RpcError::new(error::NOT_OPEN_ORDER, "not_open_order")),
                    },
                };
                TxBody::AmendOrder {
                    instrument: order.instrument,
                    order: OrderRef::Exchange(id),
                    price,
                    qty: bulwark_types::Qty::from_contracts(remaining),
                }
            };
            let result = gateway.execute(&principal.key, body).await?;
            if let Some(reason) = result.rejection {
                return Err(error::reject_error(&reason));
            }
            order_with_trades(gateway, id)
        }
        "cancel" => {
            let id = parse_order_id(params)?;
            let order = own_order(gateway, principal, id)?;
            if order.state != OrderState::Open {
                return Err(RpcError::new(error::NOT_OPEN_ORDER, "not_open_order"));
            }
            let result = gateway
                .execute(
                    &principal.key,
                    TxBody::CancelOrder {
                        instrument: order.instrument,
                        order: OrderRef::Exchange(id),
                    },
                )
                .await?;
            if let Some(reason) = result.rejection {
                return Err(error::reject_error(&reason));
            }
            order_with_trades(gateway, id).map(|v| v["order"].clone())
        }
        // An API key is an agent key, and the exchange lets only an account's owner move money
        // out (`RejectReason::NotOwner`): refused here, before anything is signed.
        "withdraw" | "cancel_withdrawal" => Err(RpcError::new(error::FORBIDDEN, "forbidden")
            .with_data(json!({
                "reason": "an API key is an agent of the account and may not withdraw; the account's owner signs withdrawals with its own key (`bulwark withdraw`)",
            }))),
        "cancel_all" | "cancel_all_by_instrument" => {
            let instrument = if method == "cancel_all_by_instrument" {
                let state = gateway.replica.lock();
                Some(instrument_param(state.chain.finalized(), params)?.id)
            } else {
                None
            };
            let result = gateway
                .execute(&principal.key, TxBody::CancelAll { instrument })
                .await?;
            if let Some(reason) = result.rejection {
                return Err(error::reject_error(&reason));
            }
            Ok(json!(result.cancelled))
        }
        _ => private_read(gateway, method, params, principal),
    }
}

/// The order a `buy`/`sell` asks for.
fn order_request(
    exchange: &Exchange,
    params: &Params,
    side: Side,
) -> Result<OrderRequest, RpcError> {
    let instrument = instrument_param(exchange, params)?;
    let spec = &instrument.spec;
    let amount = params.required("amount")?;
    let qty = convert::amount_to_qty(&amount, spec).map_err(|e| amount_error("amount", e))?;
    let kind = params.text("type").unwrap_or_else(|| "limit".into());
    let post_only = params.flag("post_only", false)?;
    let reduce_only = params.flag("reduce_only", false)?;
    let time_in_force = match params.text("time_in_force").as_deref() {
        None | Some("good_til_cancelled") => TimeInForce::GoodTilCancelled,
        Some("immediate_or_cancel") => TimeInForce::ImmediateOrCancel,
        Some("fill_or_kill") => TimeInForce::FillOrKill,
        Some(_) => {
            return Err(RpcError::invalid_param(
                "time_in_force",
                "good_til_cancelled, immediate_or_cancel or fill_or_kill",
            ));
        }
    };
    let client_order_id = ClientOrderId::new({
        use rand::RngExt as _;
        rand::rng().random::<u64>()
    });
    let order_type = match kind.as_str() {
        "limit" => {
            let text = params.required("price")?;
            let (price, _) =
                convert::price_to_ticks(&text, spec).map_err(|e| amount_error("price", e))?;
            if post_only && time_in_force != TimeInForce::GoodTilCancelled {
                return Err(RpcError::new(error::BAD_ARGUMENTS, "bad_arguments").with_data(
                    json!({"param": "post_only", "reason": "post-only orders rest: good_til_cancelled only"}),
                ));
            }
            OrderType::Limit {
                price,
                time_in_force,
                post_only,
            }
        }
        "market" => {
            if post_only {
                return Err(RpcError::new(error::BAD_ARGUMENTS, "bad_arguments")
                    .with_data(json!({"param": "post_only", "reason": "a market order takes"})));
            }
            OrderType::Market
        }
        _ => return Err(RpcError::invalid_param("type", "limit or market")),
    };
    Ok(OrderRequest {
        instrument: instrument.id,
        client_order_id,
        side,
        qty,
        order_type,
        reduce_only,
        self_trade: bulwark_types::SelfTradePrevention::CancelMaker,
    })
}

fn private_read(
    gateway: &Gateway,
    method: &str,
    params: &Params,
    principal: &Principal,
) -> Result<Value, RpcError> {
    let state = gateway.replica.lock();
    let exchange = state.chain.finalized();
    let index = &state.index;
    let account = principal.account;
    let spec_of = |id| exchange.instrument(id).map(|i| &i.spec);
    match method {
        "get_account_summaries" => Ok(json!({"summaries": [summary(exchange, account, "USDC")]})),
        "get_account_summary" => {
            let currency = params.text("currency").unwrap_or_else(|| "USDC".into());
            Ok(summary(exchange, account, &currency))
        }
        "get_order_state" => {
            let id = parse_order_id(params)?;
            let order = index
                .order(id)
                .filter(|o| o.account == account)
                .ok_or_else(error::order_not_found)?;
            let spec = spec_of(order.instrument).ok_or_else(|| error::internal("instrument"))?;
            Ok(order_json(order, spec))
        }
        "get_open_orders_by_instrument" | "get_open_orders_by_currency" | "get_open_orders" => {
            let filter = instrument_filter(exchange, params, method.ends_with("_by_instrument"))?;
            let list: Vec<Value> = index
                .orders_of(account)
                .filter(|o| o.state == OrderState::Open && filter(o.instrument))
                .filter_map(|o| Some(order_json(o, spec_of(o.instrument)?)))
                .collect();
            Ok(Value::Array(list))
        }
        "get_order_history_by_instrument" | "get_order_history_by_currency" => {
            let filter = instrument_filter(exchange, params, method.ends_with("_by_instrument"))?;
            let count = params.count(20)?;
            let offset = params.integer("offset")?.unwrap_or(0) as usize;
            let unfilled = params.flag("include_unfilled", false)?;
            let list: Vec<Value> = index
                .orders_of(account)
                .filter(|o| o.state != OrderState::Open && filter(o.instrument))
                .filter(|o| unfilled || o.filled.contracts() > 0)
                .skip(offset)
                .take(count)
                .filter_map(|o| Some(order_json(o, spec_of(o.instrument)?)))
                .collect();
            Ok(Value::Array(list))
        }
        "get_user_trades_by_instrument"
        | "get_user_trades_by_currency"
        | "get_user_trades_by_instrument_and_time"
        | "get_user_trades_by_currency_and_time"
        | "get_user_trades_by_order" => {
            let by_order = if method == "get_user_trades_by_order" {
                Some(parse_order_id(params)?)
            } else {
                None
            };
            let filter = instrument_filter(
                exchange,
                params,
                method.starts_with("get_user_trades_by_instrument"),
            )?;
            let count = params.count(10)?;
            let (start, end) = time_range(params, false)?;
            let mut matching = index.trades_of(account).filter(|t| {
                filter(t.instrument)
                    && (start..=end).contains(&t.time_ms)
                    && by_order.is_none_or(|id| t.order_id == id)
            });
            let trades: Vec<Value> = matching
                .by_ref()
                .take(count)
                .filter_map(|t| {
                    Some(user_trade_json(
                        t,
                        spec_of(t.instrument)?,
                        index.order(t.order_id),
                    ))
                })
                .collect();
            let has_more = matching.next().is_some();
            if by_order.is_some() {
                return Ok(Value::Array(trades));
            }
            Ok(json!({"trades": trades, "has_more": has_more}))
        }
        "get_positions" => {
            let (currency, kind) = filters(exchange, params, false)?;
            let Some(holder) = exchange.account(account) else {
                return Ok(json!([]));
            };
            let list: Vec<Value> = holder
                .exposures
                .iter()
                .filter(|(_, e)| e.position != 0)
                .filter_map(|(id, _)| exchange.instrument(*id))
                .filter(|i| currency_matches(i, &currency) && kind_matches(i, &kind))
                .map(|i| position_json(exchange, i, account))
                .collect();
            Ok(Value::Array(list))
        }
        "get_position" => {
            let instrument = instrument_param(exchange, params)?;
            Ok(position_json(exchange, instrument, account))
        }
        "get_withdrawals" | "get_deposits" => {
            let currency = params.required("currency")?;
            let count = params.count(10)?;
            let offset = params.integer("offset")?.unwrap_or(0) as usize;
            // The venue settles in USDC alone: another currency has no transfers.
            let ours = currency.eq_ignore_ascii_case("USDC");
            let (total, data): (usize, Vec<Value>) = match (ours, method) {
                (false, _) => (0, Vec::new()),
                (true, "get_withdrawals") => (
                    index.withdrawals_of(account).count(),
                    index
                        .withdrawals_of(account)
                        .skip(offset)
                        .take(count)
                        .map(withdrawal_json)
                        .collect(),
                ),
                (true, _) => (
                    index.deposits_of(account).count(),
                    index
                        .deposits_of(account)
                        .skip(offset)
                        .take(count)
                        .map(|d| {
                            json!({
                                "address": "",
                                "amount": convert::money(d.amount),
                                "currency": "USDC",
                                "received_timestamp": d.time_ms,
                                "updated_timestamp": d.time_ms,
                                "state": "completed",
                                "transaction_id": Value::Null,
                                "block": d.height,
                            })
                        })
                        .collect(),
                ),
            };
            Ok(json!({"count": total, "data": data}))
        }
        _ => Err(error::method_not_found()),
    }
}

/// One withdrawal in Deribit's shape. States: held until its release is Deribit's
/// `confirmed` (asked for and waiting to be sent), paid is `completed`, cancelled by its owner
/// `cancelled`, cancelled at its release (the account no longer covered it) `rejected`, with
/// the exchange's reason.
fn withdrawal_json(withdrawal: &WithdrawalRecord) -> Value {
    let (state, reason) = match withdrawal.state {
        WithdrawalState::Held => ("confirmed", None),
        WithdrawalState::Paid => ("completed", None),
        WithdrawalState::Cancelled(
            reason @ bulwark_types::RejectReason::WithdrawalCancelledByOwner,
        ) => ("cancelled", Some(reason)),
        WithdrawalState::Cancelled(reason) => ("rejected", Some(reason)),
    };
    json!({
        "id": withdrawal.id,
        "address": "",
        "amount": convert::money(withdrawal.amount),
        "currency": "USDC",
        "fee": 0.0,
        "priority": 1.0,
        "state": state,
        "reason": reason.map(|r| r.to_string()),
        "created_timestamp": withdrawal.created_ms,
        "updated_timestamp": withdrawal.updated_ms,
        "confirmed_timestamp": withdrawal.created_ms,
        "transaction_id": Value::Null,
    })
}

/// A filter over instrument ids: by `instrument_name` (required when `by_instrument`), else
/// by `currency` (default `any`) and `kind`.
fn instrument_filter<'a>(
    exchange: &'a Exchange,
    params: &Params,
    by_instrument: bool,
) -> Result<Box<dyn Fn(bulwark_types::InstrumentId) -> bool + 'a>, RpcError> {
    if by_instrument {
        let id = instrument_param(exchange, params)?.id;
        return Ok(Box::new(move |other| other == id));
    }
    let (currency, kind) = filters(exchange, params, false)?;
    Ok(Box::new(move |id| {
        exchange
            .instrument(id)
            .is_some_and(|i| currency_matches(i, &currency) && kind_matches(i, &kind))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A number sent as JSON reads as the decimal a client meant, whatever form serde_json
    /// would print it in: `1e-5` was refused as "not a decimal number" while `"0.00001"` was
    /// accepted.
    #[test]
    fn json_numbers_read_as_plain_decimals() {
        let params: Params = Params(
            serde_json::from_str::<serde_json::Map<String, Value>>(
                r#"{"a": 1e-5, "b": 0.001, "c": 12, "d": -3, "e": 1e30, "f": 0.30000000000000004, "g": "0.1"}"#,
            )
            .unwrap(),
        );
        let text = |name: &str| params.text(name).unwrap();
        assert_eq!(text("a"), "0.00001");
        assert_eq!(text("b"), "0.001");
        assert_eq!(text("c"), "12");
        assert_eq!(text("d"), "-3");
        assert_eq!(text("e"), "1000000000000000000000000000000");
        assert_eq!(
            text("f"),
            "0.30000000000000004",
            "float noise stays visible"
        );
        assert_eq!(text("g"), "0.1");
        assert!(convert::parse_decimal(&text("a"), 8).is_ok());
    }
}
