//! The channels a WebSocket connection can subscribe to, and what their notifications carry.
//!
//! **Adding a channel** (a dashboard feed, say) is one entry in [`FAMILIES`]: a name prefix
//! and a parser that returns a [`Subscription`]. A subscription names the [`Interest`]s it
//! needs rendered (registered with the feed while it lives), its first notifications (read
//! from the replica under its lock when subscribing) and what each block's
//! [`BlockUpdate`] brings it. If it needs per-block data no part of [`BlockUpdate`] carries,
//! render that once per block in [`crate::feed::Feed::publish`] (and an [`Interest`] if it is
//! costly), never per subscriber.
//!
//! Intervals: `raw`, `100ms` and `agg2` are accepted; every notification follows a finalized
//! block (about every 120 ms on a devnet), so they differ only in that `raw` needs an
//! authenticated connection (as on Deribit) and `user.orders...raw` sends one order per
//! notification where the others send a list.
//! Book `change_id` is the height of the block the book is from; `prev_change_id` the
//! `change_id` of the subscriber's previous book notification.

use super::session::Auth;
use crate::deribit::error::{self, RpcError};
use crate::deribit::methods;
use crate::feed::{BlockUpdate, BookLevels, Interest, Tag, level_json};
use crate::index::ReadModel;
use bulwark_exchange::{Exchange, Instrument};
use bulwark_types::{AccountId, InstrumentId, InstrumentName};
use serde_json::{Value, json};

/// What a parser may read: the replica's state and the connection's authentication.
pub struct Context<'a> {
    pub exchange: &'a Exchange,
    pub auth: Option<&'a Auth>,
}

/// Parses a channel name's segments after its family's prefix.
pub type Parser = fn(&[&str], &Context<'_>) -> Result<Box<dyn Subscription>, RpcError>;

/// A family of channels: names starting `prefix.`.
pub struct Family {
    pub prefix: &'static str,
    pub parse: Parser,
}

/// Every channel family served. The one place a channel is registered.
pub const FAMILIES: &[Family] = &[
    Family {
        prefix: "book",
        parse: book,
    },
    Family {
        prefix: "trades",
        parse: trades,
    },
    Family {
        prefix: "ticker",
        parse: ticker,
    },
    Family {
        prefix: "quote",
        parse: quote,
    },
    Family {
        prefix: "user.orders",
        parse: user_orders,
    },
    Family {
        prefix: "user.trades",
        parse: user_trades,
    },
    Family {
        prefix: "user.portfolio",
        parse: user_portfolio,
    },
    Family {
        prefix: "bulwark",
        parse: bulwark_channel,
    },
];

/// One channel one connection is subscribed to.
pub trait Subscription: Send {
    /// What the feed must render for it while it lives.
    fn interests(&self) -> Vec<Interest>;
    /// The data of the notifications sent right after subscribing (called under the
    /// replica's lock, at the state `exchange` is in).
    fn snapshot(&mut self, exchange: &Exchange, index: &ReadModel) -> Vec<Value>;
    /// The data of the notifications one block brings (only blocks after the snapshot's).
    fn on_block(&mut self, update: &BlockUpdate) -> Vec<Value>;
}

/// Parses a channel name into a subscription, or the error to answer.
pub fn parse(name: &str, context: &Context<'_>) -> Result<Box<dyn Subscription>, RpcError> {
    let family = FAMILIES
        .iter()
        .filter(|f| {
            name.strip_prefix(f.prefix)
                .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|f| f.prefix.len())
        .ok_or_else(|| unknown(name, "unknown channel"))?;
    let rest = &name[family.prefix.len() + 1..];
    let segments: Vec<&str> = rest.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(unknown(name, "empty segment"));
    }
    (family.parse)(&segments, context).map_err(|mut error| {
        if error.code == error::INVALID_PARAMS {
            error = unknown(
                name,
                error
                    .data
                    .as_ref()
                    .and_then(|d| d["reason"].as_str())
                    .unwrap_or("malformed"),
            );
        }
        error
    })
}

fn unknown(channel: &str, reason: &str) -> RpcError {
    RpcError::new(error::INVALID_PARAMS, "Invalid params")
        .with_data(json!({"param": "channels", "channel": channel, "reason": reason}))
}

fn malformed(reason: &str) -> RpcError {
    RpcError::invalid_param("channels", reason)
}

fn needs_auth(channel_kind: &str) -> RpcError {
    RpcError::new(error::AUTHORIZATION_REQUIRED, "authorization_required").with_data(
        json!({"reason": format!("{channel_kind} needs an authenticated connection: call public/auth first")}),
    )
}

/// Checks an interval; `raw` needs authentication.
fn interval(text: &str, context: &Context<'_>) -> Result<bool, RpcError> {
    match text {
        "raw" if context.auth.is_none() => Err(needs_auth("a raw interval")),
        "raw" => Ok(true),
        "100ms" | "agg2" => Ok(false),
        _ => Err(malformed("interval must be raw, 100ms or agg2")),
    }
}

fn instrument<'a>(name: &str, context: &Context<'a>) -> Result<&'a Instrument, RpcError> {
    InstrumentName::parse(name)
        .ok()
        .and_then(|n| context.exchange.instrument_by_name(&n))
        .ok_or_else(|| malformed("unknown instrument"))
}

fn account(context: &Context<'_>) -> Result<AccountId, RpcError> {
    context
        .auth
        .map(|a| a.account)
        .ok_or_else(|| needs_auth("a user channel"))
}

/// Which instruments a channel covers.
#[derive(Clone, Debug)]
enum Scope {
    Instrument(InstrumentId),
    /// Deribit's `{kind}.{currency}`.
    KindCurrency(String, String),
}

impl Scope {
    fn parse(segments: &[&str], context: &Context<'_>) -> Result<Self, RpcError> {
        match segments {
            [name] => Ok(Self::Instrument(instrument(name, context)?.id)),
            [kind, currency] => {
                if !matches!(*kind, "any" | "future" | "option") {
                    return Err(malformed("kind must be any, future or option"));
                }
                Ok(Self::KindCurrency(
                    (*kind).to_string(),
                    currency.to_ascii_uppercase().replace("ANY", "any"),
                ))
            }
            _ => Err(malformed("expected {instrument} or {kind}.{currency}")),
        }
    }

    fn covers(&self, tag: &Tag) -> bool {
        match self {
            Self::Instrument(id) => tag.instrument == *id,
            Self::KindCurrency(kind, currency) => tag.matches(kind, currency),
        }
    }
}

// ---- book.{instrument}.{interval} and book.{instrument}.{group}.{depth}.{interval}

fn book(segments: &[&str], context: &Context<'_>) -> Result<Box<dyn Subscription>, RpcError> {
    match segments {
        [name, every] => {
            interval(every, context)?;
            let instrument = instrument(name, context)?;
            Ok(Box::new(BookChanges {
                instrument: instrument.id,
                name: instrument.spec.name.to_string(),
                last_change_id: 0,
            }))
        }
        [name, group, depth, every] => {
            interval(every, context)?;
            if *group != "none" {
                return Err(malformed("group must be none (no price grouping)"));
            }
            let depth = match *depth {
                "1" => 1,
                "10" => 10,
                "20" => 20,
                _ => return Err(malformed("depth must be 1, 10 or 20")),
            };
            let instrument = instrument(name, context)?;
            Ok(Box::new(BookTop {
                instrument: instrument.id,
                name: instrument.spec.name.to_string(),
                depth,
                last: None,
            }))
        }
        _ => Err(malformed("expected book.{instrument}.{interval}")),
    }
}

/// Deribit's book channel: a snapshot, then changes chained by `prev_change_id`.
struct BookChanges {
    instrument: InstrumentId,
    name: String,
    last_change_id: u64,
}

impl Subscription for BookChanges {
    fn interests(&self) -> Vec<Interest> {
        vec![Interest::Book(self.instrument)]
    }

    fn snapshot(&mut self, exchange: &Exchange, _index: &ReadModel) -> Vec<Value> {
        let Some(instrument) = exchange.instrument(self.instrument) else {
            return Vec::new();
        };
        let levels = BookLevels::of(instrument);
        let side = |levels: &[(bulwark_types::Price, bulwark_types::Qty)]| -> Vec<Value> {
            levels
                .iter()
                .map(|(p, q)| {
                    let mut entry = level_json(instrument, *p, *q);
                    if let Some(items) = entry.as_array_mut() {
                        items.insert(0, json!("new"));
                    }
                    entry
                })
                .collect()
        };
        self.last_change_id = exchange.height().get();
        vec![json!({
            "type": "snapshot",
            "timestamp": exchange.time().millis(),
            "instrument_name": self.name,
            "change_id": self.last_change_id,
            "bids": side(&levels.bids),
            "asks": side(&levels.asks),
        })]
    }

    fn on_block(&mut self, update: &BlockUpdate) -> Vec<Value> {
        let Some(change) = update.books.get(&self.instrument) else {
            return Vec::new();
        };
        let data = json!({
            "type": "change",
            "timestamp": update.time_ms,
            "instrument_name": self.name,
            "prev_change_id": self.last_change_id,
            "change_id": update.height,
            "bids": change.bids,
            "asks": change.asks,
        });
        self.last_change_id = update.height;
        vec![data]
    }
}

/// Levels as sent: (price, amount), best first.
type Rendered = Vec<(f64, f64)>;

/// The grouped book: the top `depth` levels, whole, when they change.
struct BookTop {
    instrument: InstrumentId,
    name: String,
    depth: usize,
    /// The bids and asks last sent.
    last: Option<(Rendered, Rendered)>,
}

impl BookTop {
    fn data(
        &mut self,
        change_id: u64,
        time_ms: u64,
        bids: &[(f64, f64)],
        asks: &[(f64, f64)],
    ) -> Vec<Value> {
        let top = (
            bids.iter().take(self.depth).copied().collect::<Vec<_>>(),
            asks.iter().take(self.depth).copied().collect::<Vec<_>>(),
        );
        if self.last.as_ref() == Some(&top) {
            return Vec::new();
        }
        let rows = |levels: &[(f64, f64)]| -> Vec<Value> {
            levels.iter().map(|(p, a)| json!([p, a])).collect()
        };
        let data = json!({
            "timestamp": time_ms,
            "instrument_name": self.name,
            "change_id": change_id,
            "bids": rows(&top.0),
            "asks": rows(&top.1),
        });
        self.last = Some(top);
        vec![data]
    }
}

fn rendered(
    instrument: &Instrument,
    levels: &[(bulwark_types::Price, bulwark_types::Qty)],
) -> Vec<(f64, f64)> {
    levels
        .iter()
        .map(|(p, q)| {
            (
                crate::deribit::convert::ticks_price(*p, &instrument.spec),
                crate::deribit::convert::qty_amount(*q, &instrument.spec),
            )
        })
        .collect()
}

impl Subscription for BookTop {
    fn interests(&self) -> Vec<Interest> {
        vec![Interest::Book(self.instrument)]
    }

    fn snapshot(&mut self, exchange: &Exchange, _index: &ReadModel) -> Vec<Value> {
        let Some(instrument) = exchange.instrument(self.instrument) else {
            return Vec::new();
        };
        let levels = BookLevels::of(instrument);
        let (bids, asks) = (
            rendered(instrument, &levels.bids),
            rendered(instrument, &levels.asks),
        );
        self.data(
            exchange.height().get(),
            exchange.time().millis(),
            &bids,
            &asks,
        )
    }

    fn on_block(&mut self, update: &BlockUpdate) -> Vec<Value> {
        match update.books.get(&self.instrument) {
            Some(change) => self.data(
                update.height,
                update.time_ms,
                &change.bids_rendered,
                &change.asks_rendered,
            ),
            None => Vec::new(),
        }
    }
}

// ---- quote.{instrument}

fn quote(segments: &[&str], context: &Context<'_>) -> Result<Box<dyn Subscription>, RpcError> {
    let [name] = segments else {
        return Err(malformed("expected quote.{instrument}"));
    };
    let instrument = instrument(name, context)?;
    Ok(Box::new(Quote {
        top: BookTop {
            instrument: instrument.id,
            name: instrument.spec.name.to_string(),
            depth: 1,
            last: None,
        },
    }))
}

/// Best bid and ask, when either changes.
struct Quote {
    top: BookTop,
}

impl Quote {
    fn reshape(data: Vec<Value>) -> Vec<Value> {
        data.into_iter()
            .map(|book| {
                let best = |side: &str| {
                    let level = &book[side][0];
                    (level[0].clone(), level.get(1).cloned().unwrap_or(json!(0)))
                };
                let (bid, bid_amount) = best("bids");
                let (ask, ask_amount) = best("asks");
                json!({
                    "timestamp": book["timestamp"],
                    "instrument_name": book["instrument_name"],
                    "best_bid_price": bid,
                    "best_bid_amount": bid_amount,
                    "best_ask_price": ask,
                    "best_ask_amount": ask_amount,
                })
            })
            .collect()
    }
}

impl Subscription for Quote {
    fn interests(&self) -> Vec<Interest> {
        self.top.interests()
    }

    fn snapshot(&mut self, exchange: &Exchange, index: &ReadModel) -> Vec<Value> {
        Self::reshape(self.top.snapshot(exchange, index))
    }

    fn on_block(&mut self, update: &BlockUpdate) -> Vec<Value> {
        Self::reshape(self.top.on_block(update))
    }
}

// ---- ticker.{instrument}.{interval}

fn ticker(segments: &[&str], context: &Context<'_>) -> Result<Box<dyn Subscription>, RpcError> {
    let [name, every] = segments else {
        return Err(malformed("expected ticker.{instrument}.{interval}"));
    };
    interval(every, context)?;
    Ok(Box::new(Ticker {
        instrument: instrument(name, context)?.id,
    }))
}

struct Ticker {
    instrument: InstrumentId,
}

impl Subscription for Ticker {
    fn interests(&self) -> Vec<Interest> {
        vec![Interest::Ticker(self.instrument)]
    }

    fn snapshot(&mut self, exchange: &Exchange, index: &ReadModel) -> Vec<Value> {
        exchange
            .instrument(self.instrument)
            .map(|i| methods::ticker(exchange, i, index.public_trades(i.id)))
            .into_iter()
            .collect()
    }

    fn on_block(&mut self, update: &BlockUpdate) -> Vec<Value> {
        update
            .tickers
            .get(&self.instrument)
            .cloned()
            .into_iter()
            .collect()
    }
}

// ---- trades.{instrument}.{interval} and trades.{kind}.{currency}.{interval}

fn trades(segments: &[&str], context: &Context<'_>) -> Result<Box<dyn Subscription>, RpcError> {
    let Some((every, scope)) = segments.split_last() else {
        return Err(malformed("expected trades.{instrument}.{interval}"));
    };
    interval(every, context)?;
    Ok(Box::new(Trades {
        scope: Scope::parse(scope, context)?,
    }))
}

struct Trades {
    scope: Scope,
}

impl Subscription for Trades {
    fn interests(&self) -> Vec<Interest> {
        Vec::new()
    }

    fn snapshot(&mut self, _exchange: &Exchange, _index: &ReadModel) -> Vec<Value> {
        Vec::new()
    }

    fn on_block(&mut self, update: &BlockUpdate) -> Vec<Value> {
        let list: Vec<Value> = update
            .trades
            .iter()
            .filter(|(tag, _)| self.scope.covers(tag))
            .map(|(_, trade)| trade.clone())
            .collect();
        if list.is_empty() {
            Vec::new()
        } else {
            vec![Value::Array(list)]
        }
    }
}

// ---- user.orders.{instrument}.{interval}, user.orders.{kind}.{currency}.{interval}

fn user_orders(
    segments: &[&str],
    context: &Context<'_>,
) -> Result<Box<dyn Subscription>, RpcError> {
    let account = account(context)?;
    let Some((every, scope)) = segments.split_last() else {
        return Err(malformed(
            "expected user.orders.{kind}.{currency}.{interval}",
        ));
    };
    let raw = interval(every, context)?;
    Ok(Box::new(UserRows {
        account,
        scope: Scope::parse(scope, context)?,
        orders: true,
        one_per_notification: raw,
    }))
}

// ---- user.trades.{instrument}.{interval}, user.trades.{kind}.{currency}.{interval}

fn user_trades(
    segments: &[&str],
    context: &Context<'_>,
) -> Result<Box<dyn Subscription>, RpcError> {
    let account = account(context)?;
    let Some((every, scope)) = segments.split_last() else {
        return Err(malformed(
            "expected user.trades.{kind}.{currency}.{interval}",
        ));
    };
    interval(every, context)?;
    Ok(Box::new(UserRows {
        account,
        scope: Scope::parse(scope, context)?,
        orders: false,
        one_per_notification: false,
    }))
}

/// One account's orders or fills in a block.
struct UserRows {
    account: AccountId,
    scope: Scope,
    /// Orders (else fills).
    orders: bool,
    /// Deribit's raw order channel sends each order alone; the others send lists.
    one_per_notification: bool,
}

impl Subscription for UserRows {
    fn interests(&self) -> Vec<Interest> {
        Vec::new()
    }

    fn snapshot(&mut self, _exchange: &Exchange, _index: &ReadModel) -> Vec<Value> {
        Vec::new()
    }

    fn on_block(&mut self, update: &BlockUpdate) -> Vec<Value> {
        let rows = if self.orders {
            &update.orders
        } else {
            &update.fills
        };
        let list: Vec<Value> = rows
            .iter()
            .filter(|(account, tag, _)| *account == self.account && self.scope.covers(tag))
            .map(|(_, _, row)| row.clone())
            .collect();
        if list.is_empty() {
            Vec::new()
        } else if self.one_per_notification {
            list
        } else {
            vec![Value::Array(list)]
        }
    }
}

// ---- user.portfolio.{currency}

fn user_portfolio(
    segments: &[&str],
    context: &Context<'_>,
) -> Result<Box<dyn Subscription>, RpcError> {
    let account = account(context)?;
    let [currency] = segments else {
        return Err(malformed("expected user.portfolio.{currency}"));
    };
    let currency = currency.to_ascii_uppercase();
    Ok(Box::new(Portfolio {
        account,
        // Accounts hold USDC only: any other currency is a constant zero summary.
        usdc: currency == "USDC" || currency == "ANY",
        currency,
    }))
}

struct Portfolio {
    account: AccountId,
    currency: String,
    usdc: bool,
}

impl Subscription for Portfolio {
    fn interests(&self) -> Vec<Interest> {
        if self.usdc {
            vec![Interest::Portfolio(self.account)]
        } else {
            Vec::new()
        }
    }

    fn snapshot(&mut self, exchange: &Exchange, _index: &ReadModel) -> Vec<Value> {
        let currency = if self.usdc { "USDC" } else { &self.currency };
        vec![methods::summary(exchange, self.account, currency)]
    }

    fn on_block(&mut self, update: &BlockUpdate) -> Vec<Value> {
        update
            .portfolios
            .get(&self.account)
            .cloned()
            .into_iter()
            .collect()
    }
}

/// `bulwark.dashboard`: the dashboard's state (`crate::dashboard::view::state`), at most once
/// a second while the chain moves. Public: it shows what the page at `/dashboard` shows.
fn bulwark_channel(
    segments: &[&str],
    _context: &Context<'_>,
) -> Result<Box<dyn Subscription>, RpcError> {
    match segments {
        ["dashboard"] => Ok(Box::new(Dashboard)),
        _ => Err(malformed("expected bulwark.dashboard")),
    }
}

struct Dashboard;

impl Subscription for Dashboard {
    fn interests(&self) -> Vec<Interest> {
        vec![Interest::Dashboard]
    }

    /// Nothing at once: the first state follows within a second (the page reads
    /// `/dashboard/v1/state` to start).
    fn snapshot(&mut self, _exchange: &Exchange, _index: &ReadModel) -> Vec<Value> {
        Vec::new()
    }

    fn on_block(&mut self, update: &BlockUpdate) -> Vec<Value> {
        update
            .dashboard
            .as_ref()
            .map(|state| Value::clone(state))
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context_parse(name: &str, auth: Option<&Auth>) -> Result<(), i64> {
        let exchange = crate::test_exchange(0);
        parse(
            name,
            &Context {
                exchange: &exchange,
                auth,
            },
        )
        .map(|_| ())
        .map_err(|e| e.code)
    }

    #[test]
    fn channel_names_are_checked_before_anything_is_subscribed() {
        // The test exchange lists nothing: every instrument is unknown.
        assert_eq!(
            context_parse("book.NOPE.100ms", None),
            Err(error::INVALID_PARAMS)
        );
        assert_eq!(context_parse("nothing.x", None), Err(error::INVALID_PARAMS));
        assert_eq!(
            context_parse("book..100ms", None),
            Err(error::INVALID_PARAMS)
        );
        assert_eq!(
            context_parse("trades.any.BTC.5s", None),
            Err(error::INVALID_PARAMS)
        );
        assert_eq!(
            context_parse("trades.any.BTC.raw", None),
            Err(error::AUTHORIZATION_REQUIRED)
        );
        assert_eq!(context_parse("trades.any.BTC.100ms", None), Ok(()));
        assert_eq!(
            context_parse("trades.spot.BTC.100ms", None),
            Err(error::INVALID_PARAMS)
        );
        assert_eq!(
            context_parse("user.orders.any.any.raw", None),
            Err(error::AUTHORIZATION_REQUIRED)
        );
        assert_eq!(
            context_parse("user.portfolio.usdc", None),
            Err(error::AUTHORIZATION_REQUIRED)
        );
        let auth = Auth {
            client_id: "c".into(),
            account: AccountId::new(0),
            agent: {
                use commonware_cryptography::Signer as _;
                bulwark_types::PrivateKey::from_seed(3).public_key()
            },
        };
        assert_eq!(
            context_parse("user.orders.any.any.raw", Some(&auth)),
            Ok(())
        );
        assert_eq!(
            context_parse("user.trades.option.BTC.100ms", Some(&auth)),
            Ok(())
        );
        assert_eq!(context_parse("user.portfolio.usdc", Some(&auth)), Ok(()));
        assert_eq!(
            context_parse("user.portfolio.usdc.x", Some(&auth)),
            Err(error::INVALID_PARAMS)
        );
    }
}
