//! The subscription feed: what each finalized block the replica applies changed, rendered once
//! and broadcast to every subscriber (the WebSocket sessions, [`crate::ws`]).
//!
//! Owns: the broadcast of [`BlockUpdate`]s (bounded: [`FEED_BLOCKS_MAX`] blocks; a receiver
//! that falls further behind is told it lagged, and its session drops the client), the
//! interest subscribers registered (what is costly to render is rendered only while someone
//! listens: books, tickers, portfolios), and the last published books, tickers and portfolios
//! that the next block is compared with (book changes are diffs from them).
//! Never: renders on a subscriber's behalf (every block is rendered once, under the replica's
//! lock, in [`Feed::publish`]); blocks the replica (a send never waits).
//!
//! Consistency: [`Feed::publish`] runs inside [`crate::replica::Replica::apply`], under the
//! replica's lock, right after the block is indexed. A subscriber that takes its snapshot under
//! the same lock, with a receiver created before, therefore gets exactly the updates after its
//! snapshot's height (it skips those at or below it).

use crate::deribit::convert;
use crate::deribit::methods;
use crate::index::ReadModel;
use bulwark_exchange::{Exchange, Instrument};
use bulwark_types::{AccountId, InstrumentId, Price, Qty, Side};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Blocks the broadcast holds for a slow receiver before it lags (about 8 s of blocks).
pub const FEED_BLOCKS_MAX: usize = 64;
/// Levels per side a book update carries (the HTTP API's `get_order_book` depth bound).
pub const BOOK_LEVELS_MAX: usize = methods::DEPTH_MAX;

/// Data rendered only while someone is subscribed to it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Interest {
    /// An instrument's book levels (book, grouped book and quote channels).
    Book(InstrumentId),
    Ticker(InstrumentId),
    /// An account's summary (`user.portfolio`).
    Portfolio(AccountId),
    /// The dashboard's state (`bulwark.dashboard`), rendered at most once a second by the
    /// dashboard's own task (`crate::dashboard::publish`) and carried by the next update.
    Dashboard,
}

/// One side's levels, best first: (price ticks, contracts).
pub type Levels = Vec<(Price, Qty)>;

/// A book's levels, each side best first, at most [`BOOK_LEVELS_MAX`] per side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookLevels {
    pub bids: Levels,
    pub asks: Levels,
}

impl BookLevels {
    pub fn of(instrument: &Instrument) -> Self {
        let side = |side| {
            instrument
                .book
                .depth(side, BOOK_LEVELS_MAX)
                .into_iter()
                .map(|(price, qty, _)| (price, qty))
                .collect()
        };
        Self {
            bids: side(Side::Buy),
            asks: side(Side::Sell),
        }
    }
}

/// Which instrument an order or trade is in, for the channels' kind and currency filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub instrument: InstrumentId,
    /// The underlying (`BTC`).
    pub base: String,
    pub option: bool,
}

impl Tag {
    fn of(instrument: &Instrument) -> Self {
        Self {
            instrument: instrument.id,
            base: instrument.spec.name.base().as_str().to_string(),
            option: instrument.is_option(),
        }
    }

    /// Deribit's `{kind}.{currency}` filter: kind `any`, `future` or `option`; currency the
    /// underlying, or `any`/`USDC` (the settlement currency of everything) for all.
    pub fn matches(&self, kind: &str, currency: &str) -> bool {
        let kind_ok = match kind {
            "any" => true,
            "future" => !self.option,
            "option" => self.option,
            _ => false,
        };
        kind_ok && (currency == "any" || currency == "USDC" || currency == self.base)
    }
}

/// A book that changed in the block: its levels now and Deribit's change entries
/// (`["new"|"change"|"delete", price, amount]`) from the last published levels.
#[derive(Clone, Debug)]
pub struct BookChange {
    pub instrument_name: String,
    pub levels: Arc<BookLevels>,
    /// JSON arrays of change entries, bids then asks.
    pub bids: Value,
    pub asks: Value,
    /// Rendered levels (price, amount) in the instrument's units, best first.
    pub bids_rendered: Vec<(f64, f64)>,
    pub asks_rendered: Vec<(f64, f64)>,
}

/// What one applied block changed, rendered once for every subscriber.
#[derive(Clone, Debug, Default)]
pub struct BlockUpdate {
    pub height: u64,
    pub time_ms: u64,
    /// Books of interest that changed.
    pub books: HashMap<InstrumentId, BookChange>,
    /// Tickers of interest that changed (besides their timestamp).
    pub tickers: HashMap<InstrumentId, Value>,
    /// Summaries of interest that changed.
    pub portfolios: HashMap<AccountId, Value>,
    /// The block's public trades, in order.
    pub trades: Vec<(Tag, Value)>,
    /// Orders the block touched, as they stand after it, with their account.
    pub orders: Vec<(AccountId, Tag, Value)>,
    /// The block's fills, with the account that made each.
    pub fills: Vec<(AccountId, Tag, Value)>,
    /// API keys (agent keys) the block revoked: their connections end.
    pub revoked_agents: Vec<bulwark_types::PublicKey>,
    /// The dashboard's newest state, when one was rendered since the last update.
    pub dashboard: Option<Arc<Value>>,
}

#[derive(Default)]
struct FeedState {
    interest: HashMap<Interest, usize>,
    books: HashMap<InstrumentId, Arc<BookLevels>>,
    tickers: HashMap<InstrumentId, Value>,
    portfolios: HashMap<AccountId, Value>,
    /// A dashboard state rendered and not yet carried by an update.
    dashboard: Option<Arc<Value>>,
}

/// The broadcast and what it remembers between blocks.
pub struct Feed {
    sender: broadcast::Sender<Arc<BlockUpdate>>,
    state: Mutex<FeedState>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

/// A ticker without its timestamp (which moves every block): what "changed" compares.
fn ticker_essence(ticker: &Value) -> Value {
    let mut essence = ticker.clone();
    if let Some(map) = essence.as_object_mut() {
        map.remove("timestamp");
    }
    essence
}

/// Deribit's change entries for one side, from `before` to `after` (both best first).
fn side_changes(before: &Levels, after: &Levels, render: impl Fn(Price, Qty) -> Value) -> Value {
    let old: HashMap<Price, Qty> = before.iter().copied().collect();
    let new: HashMap<Price, Qty> = after.iter().copied().collect();
    let mut entries = Vec::new();
    for (price, _) in before {
        if !new.contains_key(price) {
            entries.push(("delete", *price, Qty::from_contracts(0)));
        }
    }
    for (price, qty) in after {
        match old.get(price) {
            None => entries.push(("new", *price, *qty)),
            Some(was) if was != qty => entries.push(("change", *price, *qty)),
            Some(_) => {}
        }
    }
    Value::Array(
        entries
            .into_iter()
            .map(|(what, price, qty)| {
                let mut entry = render(price, qty);
                if let Some(items) = entry.as_array_mut() {
                    items.insert(0, json!(what));
                }
                entry
            })
            .collect(),
    )
}

/// `[price, amount]` in the instrument's units.
pub fn level_json(instrument: &Instrument, price: Price, qty: Qty) -> Value {
    json!([
        convert::ticks_price(price, &instrument.spec),
        convert::qty_amount(qty, &instrument.spec)
    ])
}

/// A book change's entries from `before` to `after`.
pub fn book_change(
    instrument: &Instrument,
    before: &BookLevels,
    after: Arc<BookLevels>,
) -> BookChange {
    let render = |price, qty| level_json(instrument, price, qty);
    let rendered = |levels: &Levels| {
        levels
            .iter()
            .map(|(p, q)| {
                (
                    convert::ticks_price(*p, &instrument.spec),
                    convert::qty_amount(*q, &instrument.spec),
                )
            })
            .collect()
    };
    BookChange {
        instrument_name: instrument.spec.name.to_string(),
        bids: side_changes(&before.bids, &after.bids, render),
        asks: side_changes(&before.asks, &after.asks, render),
        bids_rendered: rendered(&after.bids),
        asks_rendered: rendered(&after.asks),
        levels: after,
    }
}

impl Feed {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(FEED_BLOCKS_MAX);
        Self {
            sender,
            state: Mutex::new(FeedState::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A receiver of every update from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BlockUpdate>> {
        self.sender.subscribe()
    }

    /// Registers one subscriber's interest. Call it with the replica's lock held, `exchange`
    /// the replica's state, so the next update is a change from what the caller's snapshot
    /// shows.
    pub fn register(&self, interest: Interest, exchange: &Exchange) {
        let mut state = self.state();
        let count = state.interest.entry(interest).or_insert(0);
        *count += 1;
        if *count > 1 {
            return;
        }
        if let Interest::Book(id) = interest
            && let Some(instrument) = exchange.instrument(id)
        {
            state.books.insert(id, Arc::new(BookLevels::of(instrument)));
        }
    }

    /// Drops one subscriber's interest; what nobody listens to any more is forgotten.
    pub fn unregister(&self, interest: Interest) {
        let mut state = self.state();
        let Some(count) = state.interest.get_mut(&interest) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        state.interest.remove(&interest);
        match interest {
            Interest::Book(id) => {
                state.books.remove(&id);
            }
            Interest::Ticker(id) => {
                state.tickers.remove(&id);
            }
            Interest::Portfolio(account) => {
                state.portfolios.remove(&account);
            }
            Interest::Dashboard => state.dashboard = None,
        }
    }

    /// Hands over a rendered dashboard state for the next update to carry (the newest wins);
    /// ignored while nobody subscribes to it.
    pub fn offer_dashboard(&self, rendered: Arc<Value>) {
        let mut state = self.state();
        if state.interest.contains_key(&Interest::Dashboard) {
            state.dashboard = Some(rendered);
        }
    }

    /// How many subscribers hold `interest` (tests, status).
    pub fn interest(&self, interest: Interest) -> usize {
        self.state().interest.get(&interest).copied().unwrap_or(0)
    }

    /// Renders and broadcasts what the block the replica just applied changed. Called under
    /// the replica's lock; never waits.
    pub fn publish(&self, exchange: &Exchange, index: &ReadModel) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let mut update = BlockUpdate {
            height: exchange.height().get(),
            time_ms: exchange.time().millis(),
            ..BlockUpdate::default()
        };
        self.render_interests(exchange, index, &mut update);
        render_rows(exchange, index, &mut update);
        // No receiver (all sessions gone between the check and now) is not an error.
        let _ = self.sender.send(Arc::new(update));
    }

    /// Books, tickers and summaries someone listens to, where they changed.
    fn render_interests(&self, exchange: &Exchange, index: &ReadModel, update: &mut BlockUpdate) {
        let mut state = self.state();
        let state = &mut *state;
        let interests: Vec<Interest> = state.interest.keys().copied().collect();
        for interest in interests {
            match interest {
                Interest::Book(id) => {
                    let Some(instrument) = exchange.instrument(id) else {
                        continue;
                    };
                    let now = BookLevels::of(instrument);
                    let before = state.books.get(&id).cloned().unwrap_or_default();
                    if *before != now {
                        let now = Arc::new(now);
                        state.books.insert(id, now.clone());
                        update
                            .books
                            .insert(id, book_change(instrument, &before, now));
                    }
                }
                Interest::Ticker(id) => {
                    let Some(instrument) = exchange.instrument(id) else {
                        continue;
                    };
                    let ticker = methods::ticker(exchange, instrument, index.public_trades(id));
                    let essence = ticker_essence(&ticker);
                    if state.tickers.get(&id) != Some(&essence) {
                        state.tickers.insert(id, essence);
                        update.tickers.insert(id, ticker);
                    }
                }
                Interest::Dashboard => update.dashboard = state.dashboard.take(),
                Interest::Portfolio(account) => {
                    let summary = methods::summary(exchange, account, "USDC");
                    if state.portfolios.get(&account) != Some(&summary) {
                        state.portfolios.insert(account, summary.clone());
                        update.portfolios.insert(account, summary);
                    }
                }
            }
        }
    }
}

/// The block's trades, touched orders, fills and revoked keys (bounded by the block).
fn render_rows(exchange: &Exchange, index: &ReadModel, update: &mut BlockUpdate) {
    let changes = index.last_block();
    for (id, trade) in &changes.public_trades {
        if let Some(instrument) = exchange.instrument(*id) {
            let trade = methods::public_trade_json(trade, &instrument.spec);
            update.trades.push((Tag::of(instrument), trade));
        }
    }
    for order_id in &changes.orders {
        let Some(order) = index.order(*order_id) else {
            continue;
        };
        if let Some(instrument) = exchange.instrument(order.instrument) {
            let row = methods::order_json(order, &instrument.spec);
            update
                .orders
                .push((order.account, Tag::of(instrument), row));
        }
    }
    for (account, fill) in &changes.fills {
        if let Some(instrument) = exchange.instrument(fill.instrument) {
            let row = methods::user_trade_json(fill, &instrument.spec, index.order(fill.order_id));
            update.fills.push((*account, Tag::of(instrument), row));
        }
    }
    update.revoked_agents = changes.revoked_agents.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(pairs: &[(i64, i64)]) -> Levels {
        pairs
            .iter()
            .map(|(p, q)| (Price::from_ticks(*p), Qty::from_contracts(*q)))
            .collect()
    }

    #[test]
    fn book_changes_list_new_changed_and_deleted_levels() {
        let render = |p: Price, q: Qty| json!([p.ticks(), q.contracts()]);
        let before = levels(&[(100, 5), (99, 3), (98, 1)]);
        let after = levels(&[(101, 2), (100, 5), (98, 4)]);
        let changes = side_changes(&before, &after, render);
        assert_eq!(
            changes,
            json!([["delete", 99, 0], ["new", 101, 2], ["change", 98, 4]])
        );
        assert_eq!(side_changes(&after, &after, render), json!([]));
    }

    #[test]
    fn tags_filter_by_kind_and_currency_as_deribit_does() {
        let tag = Tag {
            instrument: InstrumentId::new(0),
            base: "BTC".into(),
            option: true,
        };
        assert!(tag.matches("any", "any") && tag.matches("option", "BTC"));
        assert!(tag.matches("option", "USDC"));
        assert!(!tag.matches("future", "BTC") && !tag.matches("option", "ETH"));
        assert!(!tag.matches("spot", "BTC"));
    }

    #[test]
    fn tickers_compare_without_their_timestamp() {
        let a = json!({"timestamp": 1, "mark_price": 5});
        let b = json!({"timestamp": 2, "mark_price": 5});
        assert_eq!(ticker_essence(&a), ticker_essence(&b));
    }
}
