//! The book: two ladders of price levels over one arena of resting orders.
//!
//! Layout: every resting order lives in a slot of `nodes` (a slab with a free list threaded
//! through its vacant slots) and is linked into the FIFO queue of its price level; the levels
//! live in a second slab, `levels`, and each order's node names its level, so a cancel, a fill
//! or a reduce changes its level without a search; each side keeps an ordered map from price
//! to level, read to find a price's level and the best one, and written only when a level
//! opens or empties; `index` maps an order id to its slot for O(1) cancels. The hash maps are
//! used for lookups only, never iterated, so their order cannot leak into replicated state. A
//! book three-quarters vacant is rebuilt from its orders (`compact_if_sparse`), so its slabs
//! and shards follow what it holds.
//!
//! Copies share structure. A validator copies the exchange's state, and so every book a block
//! changes, for each block it speculates on. Each part is built so that a copy and its first
//! changes cost what the changes touch, not what the book holds: the slab is in chunks of
//! [`CHUNK_NODES`] behind their own `Arc`s, the index in shards behind theirs (one per
//! [`INDEX_SHARD_ORDERS`] orders), and the ladders are `imbl`'s persistent ordered maps.
//! Before (2026-12-07), one order placed in a copy of a book of 100,000 resting orders at
//! 100,000 prices allocated 37 MB: a trader with 200 accounts could fill a book and make every
//! block that touches it copy all of it on every validator (`tests/deep_book.rs`).

use crate::auction::{AuctionOutcome, CallAuction};
use crate::order::{BookReject, Fill, MatchSink, NewOrder, Placement, Remainder, RestingOrder};
use bulwark_types::{
    CancelReason, ChunkedVec, OrderId, Price, Qty, SelfTradePrevention, Side, TimeInForce,
};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Sentinel for "no slot" in the intrusive lists.
const NIL: u32 = u32::MAX;

/// Bounds on one book. Replicated (part of the exchange parameters): every validator must use
/// the same, since they decide when orders are cancelled.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BookLimits {
    /// Most orders resting in the book; a remainder that would exceed it is cancelled.
    pub orders_max: u32,
    /// Most fills one incoming order may make; the rest of it is cancelled. Bounds the work
    /// and the events of a single transaction.
    pub fills_per_match_max: u32,
}

impl BookLimits {
    /// 100,000 resting orders per book (about 8 MB); 1,000 fills per taker.
    pub const DEFAULT: Self = Self {
        orders_max: 100_000,
        fills_per_match_max: 1_000,
    };
}

/// The book's internal structure disagrees with itself: a bug, never bad input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("order book corrupt: {0}")]
pub struct BookCorruption(pub String);

#[derive(Copy, Clone, Debug)]
struct Node {
    order: RestingOrder,
    prev: u32,
    next: u32,
    /// The slot in `levels` of the order's price level (unused while the node is vacant).
    level: u32,
}

/// One price level: the FIFO queue of its orders. A vacant level (`count` 0) threads the
/// vacant levels' list through `head`.
#[derive(Copy, Clone, Debug)]
struct Level {
    head: u32,
    tail: u32,
    /// Sum of the open quantity of the level's orders.
    qty: i64,
    count: u32,
}

impl Level {
    /// A level with no orders: just opened, or vacant (then `head` names the next vacant).
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        qty: 0,
        count: 0,
    };
}

/// Slots below which a sparse book is not rebuilt (`BookState::compact_if_sparse`): a copy of
/// it costs at most 128 chunk pointers.
pub const COMPACT_SLOTS_MIN: usize = 4_096;

/// Levels per chunk of the levels' slab (about 1.5 KB a chunk).
pub const CHUNK_LEVELS: usize = 64;

/// The slab of price levels, its chunks shared between copies until written.
type Levels = ChunkedVec<Level, CHUNK_LEVELS>;

/// Slots per chunk of the slab: a change to a copied book copies the chunks it writes (about
/// 2 KB each), and a copy of the book copies one pointer per chunk.
pub const CHUNK_NODES: usize = 32;

/// The slab of resting orders, its chunks shared between copies until written.
type Slots = ChunkedVec<Node, CHUNK_NODES>;

/// Orders per shard of the order index before its shards double: a change to a copied book
/// copies the shard it writes (about 2 KB at most), and a copy of the book copies one pointer
/// per shard (one for a book of at most this many orders).
pub const INDEX_SHARD_ORDERS: usize = 64;

/// Order id to slot, in a power of two of hash maps shared between copies until one of them
/// writes to the shard. Order ids are spread over the shards by a multiplicative hash, so the
/// exchange's consecutive ids land in different shards. The shards double (every entry moved
/// once) when the index passes [`INDEX_SHARD_ORDERS`] a shard; they never halve, so a book
/// that emptied keeps a pointer a shard of its largest size.
#[derive(Clone, Debug)]
struct OrderIndex {
    shards: Vec<Arc<FxHashMap<OrderId, u32>>>,
    len: usize,
}

/// The shard of `order_id` among `shards` (a power of two).
fn shard_of(order_id: OrderId, shards: usize) -> usize {
    debug_assert!(shards.is_power_of_two());
    match shards.trailing_zeros() {
        0 => 0,
        bits => (order_id.get().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize,
    }
}

impl OrderIndex {
    fn new() -> Self {
        Self {
            shards: vec![Arc::new(FxHashMap::default())],
            len: 0,
        }
    }

    fn shard(&self, order_id: OrderId) -> usize {
        shard_of(order_id, self.shards.len())
    }

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, order_id: &OrderId) -> Option<&u32> {
        self.shards[self.shard(*order_id)].get(order_id)
    }

    fn contains_key(&self, order_id: &OrderId) -> bool {
        self.get(order_id).is_some()
    }

    fn insert(&mut self, order_id: OrderId, slot: u32) -> Option<u32> {
        let at = self.shard(order_id);
        let previous = Arc::make_mut(&mut self.shards[at]).insert(order_id, slot);
        if previous.is_none() {
            self.len += 1;
            if self.len > self.shards.len() * INDEX_SHARD_ORDERS {
                self.double();
            }
        }
        previous
    }

    fn remove(&mut self, order_id: &OrderId) -> Option<u32> {
        let at = self.shard(*order_id);
        let shard = &mut self.shards[at];
        let removed = if let Some(own) = Arc::get_mut(shard) {
            own.remove(order_id)
        } else if shard.contains_key(order_id) {
            Arc::make_mut(shard).remove(order_id)
        } else {
            // A shared shard without the id is not copied.
            return None;
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Twice the shards, every entry moved to its new one. Bounded: the book holds at most
    /// `orders_max` (below `u32::MAX`) orders, so at most 2^23 shards.
    fn double(&mut self) {
        let entries: Vec<(OrderId, u32)> = self
            .shards
            .iter()
            .flat_map(|shard| shard.iter().map(|(id, slot)| (*id, *slot)))
            .collect();
        let count = self.shards.len() * 2;
        let mut shards = vec![FxHashMap::default(); count];
        for (id, slot) in entries {
            shards[shard_of(id, count)].insert(id, slot);
        }
        self.shards = shards.into_iter().map(Arc::new).collect();
        debug_assert_eq!(
            self.shards.iter().map(|shard| shard.len()).sum::<usize>(),
            self.len
        );
    }
}

/// One side's price levels, by price, each to its slot in `levels`. Bids are best at the
/// highest price, asks at the lowest. A persistent map: a copy shares its nodes until one of
/// the two changes them, which happens only when a level opens or empties.
type Ladder = imbl::OrdMap<Price, u32>;

/// The orders of one book and their structure, shared by a [`Book`]'s copies until one of
/// them changes. Reached only through [`Book`]: read through a shared reference, changed
/// through `Book`'s methods, which copy it first if another book shares it.
#[derive(Clone, Debug)]
pub struct BookState {
    limits: BookLimits,
    nodes: Slots,
    /// The first vacant slot of the slab (`NIL` if none); each vacant slot's `next` names
    /// the following one.
    free_head: u32,
    /// Vacant slots, the length of the list from `free_head`.
    free_len: usize,
    index: OrderIndex,
    levels: Levels,
    /// The first vacant level (`NIL` if none); each vacant level's `head` names the next.
    free_level: u32,
    bids: Ladder,
    asks: Ladder,
    /// While halted: the orders waiting for the reopening auction (see `auction.rs`).
    pub(crate) auction: Option<CallAuction>,
}

/// A price-time priority limit order book for one instrument.
///
/// Copied on write. A copy shares its original's [`BookState`] until either changes; the
/// first change copies it. The exchange's state, with every listed instrument's book in it,
/// is copied for every block a validator speculates on: a block copies the books it changes,
/// not every book of every instrument (an options venue lists hundreds). Reads go through
/// `Deref` to the state; every change goes through the methods here, the only way to a
/// `&mut BookState`.
#[derive(Clone, Debug)]
pub struct Book(Arc<BookState>);

impl std::ops::Deref for Book {
    type Target = BookState;
    fn deref(&self) -> &BookState {
        &self.0
    }
}

impl Book {
    pub fn new(limits: BookLimits) -> Self {
        Self(Arc::new(BookState::new(limits)))
    }

    /// This book's own state, copied first if another book shares it.
    fn state_mut(&mut self) -> &mut BookState {
        Arc::make_mut(&mut self.0)
    }

    /// Whether a change would copy the state: another book shares it.
    fn shared(&mut self) -> bool {
        Arc::get_mut(&mut self.0).is_none()
    }

    /// [`BookState::place`].
    pub fn place(
        &mut self,
        order: &NewOrder,
        sink: &mut MatchSink,
    ) -> Result<Placement, BookReject> {
        self.state_mut().place(order, sink)
    }

    /// [`BookState::cancel`]; a shared book without the order is not copied. (The order is
    /// looked up first only then: a book of its own finds it once.)
    pub fn cancel(&mut self, order_id: OrderId) -> Option<RestingOrder> {
        if self.shared() && self.0.get(order_id).is_none() {
            return None;
        }
        self.state_mut().cancel(order_id)
    }

    /// [`BookState::reduce`]; a shared book without the order is not copied.
    pub fn reduce(&mut self, order_id: OrderId, qty: Qty) -> Option<RestingOrder> {
        if self.shared() && self.0.get(order_id).is_none() {
            return None;
        }
        self.state_mut().reduce(order_id, qty)
    }

    /// [`BookState::restore`].
    pub fn restore(&mut self, order: RestingOrder) -> Result<(), BookCorruption> {
        self.state_mut().restore(order)
    }

    /// [`BookState::restore_waiting`].
    pub fn restore_waiting(&mut self, order: RestingOrder) -> Result<(), BookCorruption> {
        self.state_mut().restore_waiting(order)
    }

    /// [`BookState::halt`]; a halted book is not copied.
    pub fn halt(&mut self) {
        if !self.0.is_halted() {
            self.state_mut().halt();
        }
    }

    /// [`BookState::reopen`]; a book that is not halted is not copied.
    pub fn reopen(&mut self, reference: Price, sink: &mut MatchSink) -> AuctionOutcome {
        if !self.0.is_halted() {
            return AuctionOutcome::default();
        }
        self.state_mut().reopen(reference, sink)
    }

    /// Whether `self` and `other` share one state (neither changed since one was copied from
    /// the other).
    pub fn shares_state_with(&self, other: &Book) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Whether a taker on `side` with limit `limit` trades against a level at `level_price`.
#[inline]
fn crosses(side: Side, limit: Price, level_price: Price) -> bool {
    match side {
        Side::Buy => level_price <= limit,
        Side::Sell => level_price >= limit,
    }
}

impl BookState {
    pub(crate) fn new(limits: BookLimits) -> Self {
        assert!(
            limits.orders_max > 0 && limits.orders_max < NIL,
            "orders_max in 1..u32::MAX"
        );
        assert!(
            limits.fills_per_match_max > 0,
            "fills_per_match_max positive"
        );
        Self {
            limits,
            nodes: Slots::default(),
            free_head: NIL,
            free_len: 0,
            index: OrderIndex::new(),
            levels: Levels::default(),
            free_level: NIL,
            bids: Ladder::new(),
            asks: Ladder::new(),
            auction: None,
        }
    }

    pub fn limits(&self) -> BookLimits {
        self.limits
    }

    /// Number of resting orders, those waiting in a halted book's auction included.
    pub fn len(&self) -> usize {
        self.index.len() + self.auction_orders().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn best_bid(&self) -> Option<(Price, Qty)> {
        self.bids
            .get_max()
            .map(|(p, l)| (*p, Qty::from_contracts(self.levels[*l as usize].qty)))
    }

    pub fn best_ask(&self) -> Option<(Price, Qty)> {
        self.asks
            .get_min()
            .map(|(p, l)| (*p, Qty::from_contracts(self.levels[*l as usize].qty)))
    }

    /// A resting order, or one waiting in a halted book's auction.
    pub fn get(&self, order_id: OrderId) -> Option<&RestingOrder> {
        match self.index.get(&order_id) {
            Some(slot) => Some(&self.nodes[*slot as usize].order),
            None => self
                .auction_orders()
                .iter()
                .find(|o| o.order_id == order_id),
        }
    }

    /// Up to `levels_max` levels of one side, best first: price, open quantity, order count.
    pub fn depth(&self, side: Side, levels_max: usize) -> Vec<(Price, Qty, u32)> {
        let view = |(p, l): (&Price, &u32)| {
            let level = &self.levels[*l as usize];
            (*p, Qty::from_contracts(level.qty), level.count)
        };
        match side {
            Side::Buy => self.bids.iter().rev().take(levels_max).map(view).collect(),
            Side::Sell => self.asks.iter().take(levels_max).map(view).collect(),
        }
    }

    /// Open contracts resting on one side at `limit` or better (bids at or above it, asks at
    /// or below it): the depth a taker on the other side could reach by `limit`. Orders
    /// waiting in a halted book's auction are not counted. Visits each level in range once.
    pub fn qty_within(&self, side: Side, limit: Price) -> i64 {
        let levels: Box<dyn Iterator<Item = &Level>> = match side {
            Side::Buy => Box::new(
                self.bids
                    .range(limit..)
                    .map(|(_, l)| &self.levels[*l as usize]),
            ),
            Side::Sell => Box::new(
                self.asks
                    .range(..=limit)
                    .map(|(_, l)| &self.levels[*l as usize]),
            ),
        };
        levels.fold(0i64, |sum, level| {
            debug_assert!(level.qty > 0, "levels hold open quantity");
            sum.saturating_add(level.qty)
        })
    }

    /// One side's levels, best price first.
    fn side_levels(&self, side: Side) -> Box<dyn Iterator<Item = &Level> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.values().rev().map(|l| &self.levels[*l as usize])),
            Side::Sell => Box::new(self.asks.values().map(|l| &self.levels[*l as usize])),
        }
    }

    /// How many orders rest on `side`: as many as [`Self::orders`] yields, counted from the
    /// levels' counts without walking the orders.
    pub fn orders_count(&self, side: Side) -> usize {
        self.side_levels(side)
            .map(|level| level.count as usize)
            .sum()
    }

    /// Every resting order of one side in priority order: best price first, then arrival.
    /// Orders waiting in a halted book's auction are not among them (see `auction_orders`).
    pub fn orders(&self, side: Side) -> impl Iterator<Item = &RestingOrder> + '_ {
        self.side_levels(side).flat_map(move |level| LevelIter {
            nodes: &self.nodes,
            cursor: level.head,
        })
    }

    /// Places an order: matches what crosses, then rests, cancels or kills the remainder as
    /// its time in force says. Fills and self-trade cancellations are appended to `sink`.
    pub fn place(
        &mut self,
        order: &NewOrder,
        sink: &mut MatchSink,
    ) -> Result<Placement, BookReject> {
        assert!(
            order.qty.is_positive(),
            "admission passes only positive quantities"
        );
        if self.get(order.order_id).is_some() {
            return Err(BookReject::OrderIdInUse);
        }
        if self.auction.is_some() {
            return Ok(self.wait(order));
        }
        if order.post_only && self.best_opposite_crosses(order.side, order.price) {
            return Err(BookReject::PostOnlyWouldCross);
        }
        if order.time_in_force == TimeInForce::FillOrKill
            && self.fillable(order) < order.qty.contracts()
        {
            let remainder = Remainder::Cancelled {
                qty: order.qty,
                reason: CancelReason::FillOrKill,
            };
            return Ok(Placement {
                filled: Qty::ZERO,
                remainder,
            });
        }
        let fills_before = sink.fills.len();
        let (filled, stop) = self.take(order, sink);
        self.compact_if_sparse();
        debug_assert_eq!(
            sink.fills[fills_before..]
                .iter()
                .map(|f| f.qty.contracts())
                .sum::<i64>(),
            filled,
            "fills add up to the filled quantity"
        );
        let left = order.qty.contracts() - filled;
        assert!(left >= 0, "a taker never fills more than it asked");
        let remainder = if left == 0 {
            Remainder::None
        } else if let Some(reason) = stop {
            Remainder::Cancelled {
                qty: Qty::from_contracts(left),
                reason,
            }
        } else {
            match order.time_in_force {
                TimeInForce::GoodTilCancelled if self.len() >= self.limits.orders_max as usize => {
                    Remainder::Cancelled {
                        qty: Qty::from_contracts(left),
                        reason: CancelReason::BookFull,
                    }
                }
                TimeInForce::GoodTilCancelled => {
                    self.rest(RestingOrder {
                        order_id: order.order_id,
                        account: order.account,
                        client_order_id: order.client_order_id,
                        side: order.side,
                        price: order.price,
                        qty: Qty::from_contracts(left),
                        reduce_only: order.reduce_only,
                        post_only: order.post_only,
                        self_trade: order.self_trade,
                    });
                    Remainder::Rested(Qty::from_contracts(left))
                }
                TimeInForce::ImmediateOrCancel => Remainder::Cancelled {
                    qty: Qty::from_contracts(left),
                    reason: CancelReason::ImmediateOrCancel,
                },
                TimeInForce::FillOrKill => {
                    unreachable!("a fill-or-kill order that passed the check fills entirely")
                }
            }
        };
        Ok(Placement {
            filled: Qty::from_contracts(filled),
            remainder,
        })
    }

    /// A halted book's answer to a new order: good-til-cancelled orders wait, others are
    /// cancelled at once (nothing trades during a halt).
    fn wait(&mut self, order: &NewOrder) -> Placement {
        let cancelled = |reason| Placement {
            filled: Qty::ZERO,
            remainder: Remainder::Cancelled {
                qty: order.qty,
                reason,
            },
        };
        match order.time_in_force {
            TimeInForce::FillOrKill => cancelled(CancelReason::FillOrKill),
            TimeInForce::ImmediateOrCancel => cancelled(CancelReason::ImmediateOrCancel),
            TimeInForce::GoodTilCancelled if self.len() >= self.limits.orders_max as usize => {
                cancelled(CancelReason::BookFull)
            }
            TimeInForce::GoodTilCancelled => {
                let auction = self.auction.as_mut().expect("waiting only while halted");
                auction.orders.push(RestingOrder {
                    order_id: order.order_id,
                    account: order.account,
                    client_order_id: order.client_order_id,
                    side: order.side,
                    price: order.price,
                    qty: order.qty,
                    reduce_only: order.reduce_only,
                    post_only: order.post_only,
                    self_trade: order.self_trade,
                });
                Placement {
                    filled: Qty::ZERO,
                    remainder: Remainder::Rested(order.qty),
                }
            }
        }
    }

    /// Removes a resting (or waiting) order; `None` if it is not here.
    pub fn cancel(&mut self, order_id: OrderId) -> Option<RestingOrder> {
        let Some(slot) = self.index.remove(&order_id) else {
            let auction = self.auction.as_mut()?;
            let at = auction.position(order_id)?;
            return Some(auction.orders.remove(at));
        };
        let Node { order, level, .. } = self.nodes[slot as usize];
        let emptied = {
            let queue = &mut self.levels[level as usize];
            unlink(&mut self.nodes, queue, slot);
            queue.qty -= order.qty.contracts();
            queue.count == 0
        };
        if emptied {
            self.close_level(order.side, order.price, level);
        }
        vacate(
            &mut self.nodes,
            &mut self.free_head,
            &mut self.free_len,
            slot,
        );
        self.compact_if_sparse();
        Some(order)
    }

    /// Rebuilds the book from its resting orders, in priority order, once at least three
    /// quarters of its slots are vacant and it has at least [`COMPACT_SLOTS_MIN`]. Slabs and
    /// index shards never shrink otherwise, and a copy of a book costs a pointer per chunk and
    /// per shard: a book filled once to `orders_max` and emptied would cost every block that
    /// touches it what the full book did (test
    /// `an_emptied_book_is_compacted_and_its_copies_cost_what_it_holds`). Amortized O(1) per
    /// removal: a rebuild of n orders follows at least 3n removals since the book held 4n
    /// (test `churning_a_book_at_the_rebuild_threshold_rebuilds_at_most_a_third_of_its_removals`).
    /// Nothing outside the book sees slots, so priority, levels and totals are as before.
    fn compact_if_sparse(&mut self) {
        let slots = self.nodes.len();
        if slots < COMPACT_SLOTS_MIN || self.index.len() * 4 > slots {
            return;
        }
        let mut compact = BookState::new(self.limits);
        for side in [Side::Buy, Side::Sell] {
            for order in self.orders(side) {
                compact.rest(*order);
            }
        }
        compact.auction = self.auction.take();
        debug_assert_eq!(compact.len(), self.len() + compact.auction_orders().len());
        *self = compact;
    }

    /// Lowers a resting order's open quantity to `qty` (positive, below the current), keeping
    /// its time priority. Returns the order as it was, or `None` if it does not rest here.
    pub fn reduce(&mut self, order_id: OrderId, qty: Qty) -> Option<RestingOrder> {
        let Some(slot) = self.index.get(&order_id).copied() else {
            let auction = self.auction.as_mut()?;
            let at = auction.position(order_id)?;
            let order = &mut auction.orders[at];
            let before = *order;
            assert!(
                qty.is_positive() && qty < before.qty,
                "reduce keeps 0 < qty < current"
            );
            order.qty = qty;
            return Some(before);
        };
        let node = &mut self.nodes[slot as usize];
        let (before, level) = (node.order, node.level);
        assert!(
            qty.is_positive() && qty < before.qty,
            "reduce keeps 0 < qty < current"
        );
        node.order.qty = qty;
        self.levels[level as usize].qty -= before.qty.contracts() - qty.contracts();
        Some(before)
    }

    /// Puts an order at the back of its price level without matching: for restoring a
    /// snapshot, whose orders arrive in priority order. Refuses an order that would cross or
    /// whose id already rests.
    pub fn restore(&mut self, order: RestingOrder) -> Result<(), BookCorruption> {
        if !order.qty.is_positive() || !order.price.is_positive() {
            return Err(BookCorruption(format!(
                "restored order {} has no size or price",
                order.order_id
            )));
        }
        if self.index.contains_key(&order.order_id) {
            return Err(BookCorruption(format!(
                "order {} restored twice",
                order.order_id
            )));
        }
        if self.best_opposite_crosses(order.side, order.price) {
            return Err(BookCorruption(format!(
                "restored order {} crosses the book",
                order.order_id
            )));
        }
        if self.len() >= self.limits.orders_max as usize {
            return Err(BookCorruption("restored book exceeds orders_max".into()));
        }
        self.rest(order);
        Ok(())
    }

    /// Puts an order back into a halted book's auction, for restoring a snapshot, whose
    /// waiting orders arrive in arrival order.
    pub fn restore_waiting(&mut self, order: RestingOrder) -> Result<(), BookCorruption> {
        if !self.is_halted() {
            return Err(BookCorruption(format!(
                "order {} waits in a book that is not halted",
                order.order_id
            )));
        }
        if !order.qty.is_positive() || !order.price.is_positive() {
            return Err(BookCorruption(format!(
                "waiting order {} has no size or price",
                order.order_id
            )));
        }
        if self.get(order.order_id).is_some() {
            return Err(BookCorruption(format!(
                "order {} restored twice",
                order.order_id
            )));
        }
        if self.len() >= self.limits.orders_max as usize {
            return Err(BookCorruption("restored book exceeds orders_max".into()));
        }
        self.auction.as_mut().expect("halted").orders.push(order);
        Ok(())
    }

    pub(crate) fn crosses_opposite(&self, side: Side, price: Price) -> bool {
        self.best_opposite_crosses(side, price)
    }

    fn best_opposite_crosses(&self, side: Side, price: Price) -> bool {
        let best = match side {
            Side::Buy => self.asks.get_min(),
            Side::Sell => self.bids.get_max(),
        };
        best.is_some_and(|(p, _)| crosses(side, price, *p))
    }

    pub(crate) fn rest(&mut self, order: RestingOrder) {
        let level = self.open_level(order.side, order.price);
        let node = Node {
            order,
            prev: NIL,
            next: NIL,
            level,
        };
        let slot = if self.free_head == NIL {
            let slot = u32::try_from(self.nodes.len()).expect("slots bounded by orders_max");
            self.nodes.push(node);
            slot
        } else {
            let slot = self.free_head;
            self.free_head = self.nodes[slot as usize].next;
            self.free_len -= 1;
            self.nodes[slot as usize] = node;
            slot
        };
        let level = &mut self.levels[level as usize];
        if level.tail == NIL {
            level.head = slot;
        } else {
            self.nodes[level.tail as usize].next = slot;
            self.nodes[slot as usize].prev = level.tail;
        }
        level.tail = slot;
        level.qty += order.qty.contracts();
        level.count += 1;
        let previous = self.index.insert(order.order_id, slot);
        debug_assert!(previous.is_none(), "order ids rest once");
    }

    /// The slot of the level at `price` on `side`, opened (empty) if there is none.
    fn open_level(&mut self, side: Side, price: Price) -> u32 {
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if let Some(level) = ladder.get(&price) {
            return *level;
        }
        let level = if self.free_level == NIL {
            let level = u32::try_from(self.levels.len()).expect("levels bounded by orders_max");
            self.levels.push(Level::EMPTY);
            level
        } else {
            let level = self.free_level;
            let vacant = &mut self.levels[level as usize];
            debug_assert_eq!(vacant.count, 0, "a vacant level is empty");
            self.free_level = vacant.head;
            *vacant = Level::EMPTY;
            level
        };
        ladder.insert(price, level);
        level
    }

    /// Takes the emptied level at `price` on `side` out of its ladder and vacates its slot.
    fn close_level(&mut self, side: Side, price: Price, level: u32) {
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let removed = ladder.remove(&price);
        debug_assert_eq!(removed, Some(level), "the ladder names the level");
        let vacant = &mut self.levels[level as usize];
        debug_assert!(
            vacant.count == 0 && vacant.qty == 0,
            "only an empty level closes"
        );
        *vacant = Level {
            head: self.free_level,
            ..Level::EMPTY
        };
        self.free_level = level;
    }

    /// How much a fill-or-kill order could fill right now, walking what `take` would walk.
    fn fillable(&self, order: &NewOrder) -> i64 {
        match order.side {
            Side::Buy => self.fillable_in(order, self.asks.iter()),
            Side::Sell => self.fillable_in(order, self.bids.iter().rev()),
        }
    }

    fn fillable_in<'a>(
        &self,
        order: &NewOrder,
        levels: impl Iterator<Item = (&'a Price, &'a u32)>,
    ) -> i64 {
        let wanted = order.qty.contracts();
        let mut sum = 0i64;
        let mut fills = 0u32;
        for (price, level) in levels {
            if !crosses(order.side, order.price, *price) {
                break;
            }
            for maker in (LevelIter {
                nodes: &self.nodes,
                cursor: self.levels[*level as usize].head,
            }) {
                if maker.account == order.account {
                    if order.self_trade == SelfTradePrevention::CancelMaker {
                        continue;
                    }
                    return sum;
                }
                sum += maker.qty.contracts().min(wanted - sum);
                fills += 1;
                if sum >= wanted || fills >= self.limits.fills_per_match_max {
                    return sum;
                }
            }
        }
        sum
    }

    /// Matches `order` against the opposite side. Returns the quantity filled and, if matching
    /// stopped before the order's limit was reached, why the rest must be cancelled.
    fn take(&mut self, order: &NewOrder, sink: &mut MatchSink) -> (i64, Option<CancelReason>) {
        let limits = self.limits;
        let maker_side = order.side.opposite();
        let mut remaining = order.qty.contracts();
        let mut fills = 0u32;
        let mut stop = None;
        while remaining > 0 && stop.is_none() {
            let best = match maker_side {
                Side::Sell => self.asks.get_min(),
                Side::Buy => self.bids.get_max(),
            };
            let Some(&(price, level_slot)) = best else {
                break;
            };
            if !crosses(order.side, order.price, price) {
                break;
            }
            let BookState {
                nodes,
                free_head,
                free_len,
                index,
                levels,
                ..
            } = &mut *self;
            let level = &mut levels[level_slot as usize];
            let mut cursor = level.head;
            while cursor != NIL && remaining > 0 {
                let slot = cursor;
                let maker = nodes[slot as usize].order;
                cursor = nodes[slot as usize].next;
                if maker.account == order.account {
                    if order.self_trade != SelfTradePrevention::CancelTaker {
                        unlink(nodes, level, slot);
                        level.qty -= maker.qty.contracts();
                        index.remove(&maker.order_id);
                        vacate(nodes, free_head, free_len, slot);
                        sink.maker_cancels.push(maker);
                    }
                    if order.self_trade != SelfTradePrevention::CancelMaker {
                        stop = Some(CancelReason::SelfTrade);
                        break;
                    }
                    continue;
                }
                let qty = remaining.min(maker.qty.contracts());
                let left = maker.qty.contracts() - qty;
                remaining -= qty;
                level.qty -= qty;
                if left == 0 {
                    unlink(nodes, level, slot);
                    index.remove(&maker.order_id);
                    vacate(nodes, free_head, free_len, slot);
                } else {
                    nodes[slot as usize].order.qty = Qty::from_contracts(left);
                }
                sink.fills.push(Fill {
                    maker_order_id: maker.order_id,
                    maker_account: maker.account,
                    maker_client_order_id: maker.client_order_id,
                    maker_reduce_only: maker.reduce_only,
                    taker_order_id: order.order_id,
                    taker_account: order.account,
                    taker_side: order.side,
                    price,
                    qty: Qty::from_contracts(qty),
                    maker_qty_left: Qty::from_contracts(left),
                });
                fills += 1;
                if fills >= limits.fills_per_match_max && remaining > 0 {
                    stop = Some(CancelReason::MatchLimit);
                    break;
                }
            }
            if level.count == 0 {
                self.close_level(maker_side, price, level_slot);
            }
        }
        (order.qty.contracts() - remaining, stop)
    }

    /// Checks every structural invariant; O(orders). Used after each block in tests and
    /// debug builds, and on snapshot restore.
    pub fn check_invariants(&self) -> Result<(), BookCorruption> {
        let corrupt = |what: String| Err(BookCorruption(what));
        if let (Some((bid, _)), Some((ask, _))) = (self.best_bid(), self.best_ask()) {
            if bid >= ask {
                return corrupt(format!("crossed: best bid {bid} >= best ask {ask}"));
            }
        }
        let mut seen = 0usize;
        let mut levels_seen = 0usize;
        for (side, ladder) in [(Side::Buy, &self.bids), (Side::Sell, &self.asks)] {
            for (price, level_slot) in ladder {
                let Some(level) = self.levels.get(*level_slot as usize) else {
                    return corrupt(format!("level {price} names no slot"));
                };
                levels_seen += 1;
                let (mut qty, mut count, mut prev) = (0i64, 0u32, NIL);
                let mut cursor = level.head;
                while cursor != NIL {
                    let node = &self.nodes[cursor as usize];
                    let o = &node.order;
                    if node.prev != prev
                        || node.level != *level_slot
                        || o.side != side
                        || o.price != *price
                        || !o.qty.is_positive()
                    {
                        return corrupt(format!("order {} misplaced in level {price}", o.order_id));
                    }
                    if self.index.get(&o.order_id) != Some(&cursor) {
                        return corrupt(format!("order {} missing from the index", o.order_id));
                    }
                    qty += o.qty.contracts();
                    count += 1;
                    prev = cursor;
                    cursor = node.next;
                    if count as usize > self.nodes.len() {
                        return corrupt(format!("cycle in level {price}"));
                    }
                }
                if level.tail != prev || level.qty != qty || level.count != count || count == 0 {
                    return corrupt(format!("level {price} totals disagree with its orders"));
                }
                seen += count as usize;
            }
        }
        if seen != self.index.len() || seen + self.free_len != self.nodes.len() {
            return corrupt("index, slots and levels disagree on the order count".into());
        }
        let (mut vacant, mut cursor) = (0usize, self.free_head);
        while cursor != NIL {
            if cursor as usize >= self.nodes.len() || vacant >= self.free_len {
                return corrupt("the vacant slots' list runs past its length".into());
            }
            vacant += 1;
            cursor = self.nodes[cursor as usize].next;
        }
        if vacant != self.free_len {
            return corrupt("the vacant slots' list is shorter than its length".into());
        }
        // Every level slot is named by one ladder entry or is on the vacant levels' list.
        let (mut vacant_levels, mut cursor) = (0usize, self.free_level);
        while cursor != NIL {
            match self.levels.get(cursor as usize) {
                Some(level)
                    if level.count == 0 && levels_seen + vacant_levels < self.levels.len() =>
                {
                    vacant_levels += 1;
                    cursor = level.head;
                }
                _ => return corrupt("the vacant levels' list is malformed".into()),
            }
        }
        if levels_seen + vacant_levels != self.levels.len() {
            return corrupt("ladders and vacant levels disagree with the level slots".into());
        }
        let waiting = self.auction_orders();
        for (i, o) in waiting.iter().enumerate() {
            if !o.qty.is_positive()
                || !o.price.is_positive()
                || self.index.contains_key(&o.order_id)
                || waiting[..i].iter().any(|p| p.order_id == o.order_id)
            {
                return corrupt(format!(
                    "waiting order {} malformed or duplicated",
                    o.order_id
                ));
            }
        }
        if self.len() > self.limits.orders_max as usize {
            return corrupt("more orders than orders_max".into());
        }
        Ok(())
    }
}

/// Puts `slot`, already unlinked from its level, at the head of the vacant slots' list.
fn vacate(nodes: &mut Slots, free_head: &mut u32, free_len: &mut usize, slot: u32) {
    let node = &mut nodes[slot as usize];
    node.prev = NIL;
    node.next = *free_head;
    *free_head = slot;
    *free_len += 1;
}

/// Removes `slot` from its level's queue; the caller adjusts the level's quantity.
fn unlink(nodes: &mut Slots, level: &mut Level, slot: u32) {
    let (prev, next) = (nodes[slot as usize].prev, nodes[slot as usize].next);
    if prev == NIL {
        level.head = next;
    } else {
        nodes[prev as usize].next = next;
    }
    if next == NIL {
        level.tail = prev;
    } else {
        nodes[next as usize].prev = prev;
    }
    level.count -= 1;
}

struct LevelIter<'a> {
    nodes: &'a Slots,
    cursor: u32,
}

impl<'a> Iterator for LevelIter<'a> {
    type Item = &'a RestingOrder;
    fn next(&mut self) -> Option<Self::Item> {
        if self.cursor == NIL {
            return None;
        }
        let node = &self.nodes[self.cursor as usize];
        self.cursor = node.next;
        Some(&node.order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::{AccountId, ClientOrderId};

    fn resting(id: u64) -> RestingOrder {
        RestingOrder {
            order_id: OrderId::new(id),
            account: AccountId::new(1),
            client_order_id: ClientOrderId::new(id),
            side: Side::Buy,
            price: Price::from_ticks(100 + (id % 7) as i64),
            qty: Qty::from_contracts(1),
            reduce_only: false,
            post_only: false,
            self_trade: SelfTradePrevention::CancelTaker,
        }
    }

    /// Chunks of the slab, and shards of the index, that `a` and `b` do not share.
    fn unshared(a: &BookState, b: &BookState) -> (usize, usize) {
        let chunks = (0..a.nodes.chunk_count())
            .filter(|chunk| !a.nodes.shares_chunk(&b.nodes, *chunk))
            .count();
        let shards = a
            .index
            .shards
            .iter()
            .zip(&b.index.shards)
            .filter(|(x, y)| !Arc::ptr_eq(x, y))
            .count();
        (chunks, shards)
    }

    #[test]
    fn a_change_to_a_copied_book_copies_the_chunks_and_shard_it_writes() {
        let mut book = BookState::new(BookLimits::DEFAULT);
        for id in 1..=1_000 {
            book.rest(resting(id));
        }
        assert_eq!(book.nodes.len(), 1_000);
        assert_eq!(book.nodes.chunk_count(), 1_000usize.div_ceil(CHUNK_NODES));
        let mut copy = book.clone();
        assert_eq!(unshared(&book, &copy), (0, 0), "a copy shares everything");
        // A cancel writes the order's slot and its two neighbours in the level's queue (each
        // may sit in another chunk), and one shard of the index.
        copy.cancel(OrderId::new(500)).expect("rests");
        let (chunks, shards) = unshared(&book, &copy);
        assert!(
            (1..=3).contains(&chunks) && shards == 1,
            "{chunks} chunks, {shards} shards"
        );
        // Resting reuses the vacated slot and links it behind its level's tail.
        let mut again = book.clone();
        again.cancel(OrderId::new(500)).expect("rests");
        again.rest(resting(1_001));
        assert_eq!(again.nodes.len(), 1_000, "the vacated slot is reused");
        let (chunks, shards) = unshared(&book, &again);
        assert!(
            chunks <= 5 && shards <= 2,
            "{chunks} chunks, {shards} shards"
        );
        // The levels' slab: the cancel changed one level, in one chunk of the copy.
        let levels = (0..copy.levels.chunk_count())
            .filter(|chunk| !copy.levels.shares_chunk(&book.levels, *chunk))
            .count();
        assert_eq!(levels, 1, "one level's chunk written");
        for state in [&book, &copy, &again] {
            state.check_invariants().expect("sound");
        }
        assert_eq!(book.len(), 1_000, "the original is untouched");
        assert!(book.get(OrderId::new(500)).is_some());
    }

    #[test]
    fn an_emptied_level_s_slot_is_reused_and_its_order_finds_it_without_a_search() {
        let mut book = BookState::new(BookLimits::DEFAULT);
        // A level opened and emptied at a new price each time: one slot, reused.
        for id in 1..=1_000u64 {
            let mut order = resting(id);
            order.price = Price::from_ticks(1_000 + id as i64);
            book.rest(order);
            assert_eq!(book.levels.len(), 1, "the vacant level is reused");
            book.check_invariants().expect("sound");
            book.cancel(OrderId::new(id)).expect("rests");
        }
        assert!(book.bids.is_empty() && book.free_level == 0);
        // Two prices, interleaved: a reduce and a cancel change the order's own level.
        for id in 1..=4 {
            for id in [id * 7, id * 7 + 1] {
                book.rest(RestingOrder {
                    qty: Qty::from_contracts(2),
                    ..resting(id)
                });
            }
        }
        assert_eq!(book.levels.len(), 2);
        book.reduce(OrderId::new(14), Qty::from_contracts(1));
        book.cancel(OrderId::new(8)).expect("rests");
        assert_eq!(
            book.depth(Side::Buy, 10),
            vec![
                (Price::from_ticks(101), Qty::from_contracts(6), 3),
                (Price::from_ticks(100), Qty::from_contracts(7), 4),
            ]
        );
        book.check_invariants().expect("sound");
    }

    #[test]
    fn an_emptied_book_is_compacted_and_its_copies_cost_what_it_holds() {
        let mut book = BookState::new(BookLimits::DEFAULT);
        for id in 1..=8_192 {
            book.rest(resting(id));
        }
        let before: Vec<RestingOrder> = book.orders(Side::Buy).copied().collect();
        // Cancelled down to 100 orders: rebuilt once a quarter were left (2,048 slots), and
        // not again below `COMPACT_SLOTS_MIN`.
        for id in 101..=8_192 {
            book.cancel(OrderId::new(id)).expect("rests");
        }
        assert_eq!(book.len(), 100);
        assert_eq!(book.nodes.len(), 2_048, "rebuilt at a quarter full");
        assert!(book.index.shards.len() <= 2_048 / INDEX_SHARD_ORDERS);
        assert!(book.levels.len() <= 7);
        book.check_invariants().expect("sound");
        // Priority is as it was: the same orders, in the same order.
        let kept: Vec<RestingOrder> = before
            .into_iter()
            .filter(|o| o.order_id.get() <= 100)
            .collect();
        assert_eq!(book.orders(Side::Buy).copied().collect::<Vec<_>>(), kept);
        assert_eq!(
            book.depth(Side::Buy, 10).iter().map(|l| l.2).sum::<u32>(),
            100
        );

        // A taker that sweeps most of a book rebuilds it before its remainder rests.
        let mut book = Book::new(BookLimits {
            fills_per_match_max: 5_000,
            ..BookLimits::DEFAULT
        });
        let mut sink = MatchSink::default();
        for id in 1..=5_000 {
            book.place(&sell(id, 1_000 + id as i64), &mut sink)
                .expect("rests");
        }
        let taker = NewOrder {
            side: Side::Buy,
            qty: Qty::from_contracts(4_001),
            account: AccountId::new(3),
            ..sell(10_000, 5_000)
        };
        let placed = book.place(&taker, &mut sink).expect("takes");
        assert_eq!(placed.filled, Qty::from_contracts(4_000));
        assert_eq!(placed.remainder, Remainder::Rested(Qty::from_contracts(1)));
        assert_eq!(
            book.nodes.len(),
            1_001,
            "rebuilt, then the remainder rested"
        );
        assert_eq!(
            book.best_ask().map(|(p, _)| p),
            Some(Price::from_ticks(5_001))
        );
        assert_eq!(
            book.best_bid().map(|(p, _)| p),
            Some(Price::from_ticks(5_000))
        );
        book.check_invariants().expect("sound");
    }

    /// The attack on the rebuild: churn a book around the threshold so that validators
    /// rebuild it again and again. Each round rests 3,200 orders beside 1,000 that stay and
    /// cancels them all; the slab never shrinks except by a rebuild, so one is seen as the
    /// slot count falling. Every rebuild copies the orders left at that moment, and the
    /// amortization bound says those copies add up to at most a third of the removals.
    #[test]
    fn churning_a_book_at_the_rebuild_threshold_rebuilds_at_most_a_third_of_its_removals() {
        let mut book = BookState::new(BookLimits::DEFAULT);
        for id in 1..=1_000 {
            book.rest(resting(id));
        }
        let (mut next, mut removals, mut rebuilds, mut rebuilt) = (1_001u64, 0usize, 0, 0);
        for _ in 0..20 {
            let round = next..next + 3_200;
            next = round.end;
            for id in round.clone() {
                book.rest(resting(id));
            }
            for id in round {
                let slots = book.nodes.len();
                book.cancel(OrderId::new(id)).expect("rests");
                removals += 1;
                if book.nodes.len() < slots {
                    rebuilds += 1;
                    rebuilt += book.len();
                }
            }
        }
        assert_eq!(
            rebuilds, 20,
            "one rebuild a round: the attack does force them"
        );
        assert!(
            rebuilt * 3 <= removals,
            "{rebuilt} orders copied by {rebuilds} rebuilds for {removals} removals"
        );
        assert_eq!(book.len(), 1_000);
        book.check_invariants().expect("sound");
    }

    fn sell(id: u64, price: i64) -> NewOrder {
        NewOrder {
            order_id: OrderId::new(id),
            account: AccountId::new(2),
            client_order_id: ClientOrderId::new(id),
            side: Side::Sell,
            price: Price::from_ticks(price),
            qty: Qty::from_contracts(1),
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: false,
            reduce_only: false,
            self_trade: SelfTradePrevention::CancelTaker,
        }
    }

    #[test]
    fn a_copy_shares_its_orders_until_one_of_the_two_changes() {
        let mut book = Book::new(BookLimits::DEFAULT);
        let mut sink = MatchSink::default();
        for id in 1..=100 {
            book.place(&sell(id, 200 + id as i64), &mut sink)
                .expect("rests");
        }
        let mut copy = book.clone();
        assert!(copy.shares_state_with(&book), "a copy is a reference");
        // What changes nothing copies nothing.
        assert_eq!(copy.cancel(OrderId::new(1_000)), None);
        assert_eq!(
            copy.reduce(OrderId::new(1_000), Qty::from_contracts(1)),
            None
        );
        assert_eq!(
            copy.reopen(Price::from_ticks(250), &mut sink),
            AuctionOutcome::default()
        );
        assert!(
            copy.shares_state_with(&book),
            "nothing to change, nothing copied"
        );
        // The first change copies; the original keeps its orders.
        let cancelled = copy.cancel(OrderId::new(7)).expect("rests in the copy");
        assert_eq!(cancelled.order_id, OrderId::new(7));
        assert!(!copy.shares_state_with(&book), "changed, so copied");
        assert_eq!((book.len(), copy.len()), (100, 99));
        assert!(book.get(OrderId::new(7)).is_some(), "the original keeps it");
        // A change to the original leaves the copy as it was.
        book.halt();
        assert!(book.is_halted() && !copy.is_halted());
        book.check_invariants().expect("a sound original");
        copy.check_invariants().expect("a sound copy");
    }
}
