//! The call auction that reopens a halted instrument: while a book is halted, good-til-cancelled
//! orders wait without matching; at reopening they are uncrossed together with the orders that
//! rested before the halt, at the one price that matches the most.
//!
//! Owns: the halted mode of [`Book`] ([`Book::halt`], [`Book::reopen`]), the waiting orders, and
//! the uncrossing price ([`uncrossing_price`]).
//! Never: leaves the book crossed, fills an order beyond its quantity or at a price worse than
//! its limit, or decides when to halt (the exchange's circuit breaker does).
//! Bounds: the book and its auction together hold at most `orders_max` orders; reopening is
//! O(n log n) in the orders taking part, and finding its price O(levels).
//!
//! While halted, an immediate-or-cancel or fill-or-kill order is cancelled at once (nothing
//! trades during a halt); a good-til-cancelled order, post-only or not, waits in the auction and
//! counts as resting (it can be cancelled, reduced or amended as usual).
//!
//! The uncrossing price, as on Xetra and Euronext: among the limit prices of all orders, the
//! one that maximises the executable volume `min(bids at or above it, asks at or below it)`;
//! ties go to the smallest surplus `|bids - asks|`, then to the price nearest the reference
//! (the exchange passes the mark), then to the lower price. Every match is at that price.
//! Priority within each side is price, then time: the book's resting orders before orders
//! that arrived during the halt, which go in arrival order. Of two matched orders the older
//! is the maker: one that rested before the halt, else the earlier arrival. Self-trade prevention applies as in continuous trading,
//! under the newer order's policy. What is left of each waiting order then rests. Without
//! self-trade prevention nothing left can cross (a crossing pair would have matched at a price
//! with more volume); a remainder that would cross because a self-trade was prevented is
//! cancelled (`CancelReason::AuctionCrossed`).

use crate::book::BookState;
use crate::order::{Fill, MatchSink, Placement, Remainder, RestingOrder};
use bulwark_types::{CancelReason, OrderId, Price, Qty, SelfTradePrevention, Side};
use std::collections::BTreeMap;

/// Orders waiting while a book is halted, in arrival order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CallAuction {
    pub(crate) orders: Vec<RestingOrder>,
}

impl CallAuction {
    pub(crate) fn position(&self, order_id: OrderId) -> Option<usize> {
        self.orders.iter().position(|o| o.order_id == order_id)
    }
}

/// The price an uncross happens at, and what it matches.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Uncross {
    pub price: Price,
    /// Contracts that cross at `price` (before self-trade prevention).
    pub volume: Qty,
    /// Bids at or above `price` minus asks at or below it: positive when buyers are left over.
    pub surplus: i64,
}

/// What reopening did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuctionOutcome {
    /// `None` when nothing crossed.
    pub uncross: Option<Uncross>,
    /// Each waiting order's result, in arrival order: what it filled at the uncross and
    /// whether its remainder now rests or was cancelled.
    pub placements: Vec<(RestingOrder, Placement)>,
}

/// An order taking part in an uncross.
#[derive(Copy, Clone, Debug)]
struct Participant {
    order: RestingOrder,
    /// Index into the auction's orders, or `None` for an order that rested before the halt.
    auction: Option<usize>,
    /// What is left of it.
    open: i64,
}

impl Participant {
    /// Which of two matched orders is older: an order that rested before the halt is older
    /// than any that waited, and waiting orders are as old as their arrival. (Order ids do
    /// not say it: an order amended during the halt keeps its id but waits as a new arrival.)
    fn age(&self) -> (bool, usize) {
        match self.auction {
            None => (false, 0),
            Some(arrival) => (true, arrival),
        }
    }
}

/// Both sides in priority order: price (best first), then book orders in their queue order,
/// then auction orders in arrival order.
fn participants(
    book: &BookState,
    auction: &[RestingOrder],
) -> (Vec<Participant>, Vec<Participant>) {
    let mut sides = (Vec::new(), Vec::new());
    for side in [Side::Buy, Side::Sell] {
        let list = if side == Side::Buy {
            &mut sides.0
        } else {
            &mut sides.1
        };
        list.extend(book.orders(side).map(|o| Participant {
            order: *o,
            auction: None,
            open: o.qty.contracts(),
        }));
        list.extend(
            auction
                .iter()
                .enumerate()
                .filter(|(_, o)| o.side == side)
                .map(|(i, o)| Participant {
                    order: *o,
                    auction: Some(i),
                    open: o.qty.contracts(),
                }),
        );
        // Stable: equal prices keep book-then-arrival order.
        match side {
            Side::Buy => list.sort_by_key(|p| std::cmp::Reverse(p.order.price)),
            Side::Sell => list.sort_by_key(|p| p.order.price),
        }
    }
    sides
}

/// Aggregated quantity per price.
fn levels(side: &[Participant]) -> BTreeMap<Price, i64> {
    let mut levels = BTreeMap::new();
    for p in side {
        *levels.entry(p.order.price).or_insert(0) += p.open;
    }
    levels
}

/// The uncrossing price of aggregated bids and asks (quantity per price), or `None` if
/// nothing crosses. See the module documentation for the rule.
pub fn uncrossing_price(
    bids: &BTreeMap<Price, i64>,
    asks: &BTreeMap<Price, i64>,
    reference: Price,
) -> Option<Uncross> {
    let (Some((&best_bid, _)), Some((&best_ask, _))) =
        (bids.last_key_value(), asks.first_key_value())
    else {
        return None;
    };
    if best_bid < best_ask {
        return None;
    }
    // Candidates: every limit price inside the crossed range [best ask, best bid].
    let candidates: Vec<Price> = {
        let mut prices: Vec<Price> = bids
            .range(best_ask..=best_bid)
            .map(|(p, _)| *p)
            .chain(asks.range(best_ask..=best_bid).map(|(p, _)| *p))
            .collect();
        prices.sort();
        prices.dedup();
        prices
    };
    // Demand at each candidate (bids at or above it) by a sweep from the top, supply (asks at
    // or below it) by a sweep from the bottom: O(levels + candidates).
    let mut demand = vec![0i64; candidates.len()];
    let mut bid_levels = bids.iter().rev().peekable();
    let mut running = 0i64;
    for (i, price) in candidates.iter().enumerate().rev() {
        while let Some((_, qty)) = bid_levels.next_if(|(p, _)| *p >= price) {
            running += qty;
        }
        demand[i] = running;
    }
    let mut supply = vec![0i64; candidates.len()];
    let mut ask_levels = asks.iter().peekable();
    running = 0;
    for (i, price) in candidates.iter().enumerate() {
        while let Some((_, qty)) = ask_levels.next_if(|(p, _)| *p <= price) {
            running += qty;
        }
        supply[i] = running;
    }
    let mut best: Option<(Uncross, i64)> = None;
    for (i, price) in candidates.into_iter().enumerate() {
        let volume = demand[i].min(supply[i]);
        let surplus = demand[i] - supply[i];
        let distance = (price.ticks() - reference.ticks()).abs();
        let candidate = Uncross {
            price,
            volume: Qty::from_contracts(volume),
            surplus,
        };
        let better = match &best {
            None => true,
            Some((b, b_distance)) => {
                (volume, -surplus.abs(), -distance)
                    > (b.volume.contracts(), -b.surplus.abs(), -*b_distance)
            }
        };
        // Candidates ascend, so a tie on every key keeps the lower price.
        if better {
            best = Some((candidate, distance));
        }
    }
    best.map(|(u, _)| u).filter(|u| u.volume.is_positive())
}

impl BookState {
    /// Halts the book: from now on good-til-cancelled orders wait for [`Self::reopen`] and
    /// nothing matches. Halting a halted book changes nothing.
    pub fn halt(&mut self) {
        if self.auction.is_none() {
            self.auction = Some(CallAuction::default());
        }
    }

    pub fn is_halted(&self) -> bool {
        self.auction.is_some()
    }

    /// The orders waiting in the auction, in arrival order (empty unless halted).
    pub fn auction_orders(&self) -> &[RestingOrder] {
        self.auction.as_ref().map_or(&[], |a| a.orders.as_slice())
    }

    /// The price and volume the auction would uncross at now (`None` unless halted and
    /// something crosses), for display.
    pub fn indicative(&self, reference: Price) -> Option<Uncross> {
        let auction = self.auction.as_ref()?;
        let (bids, asks) = participants(self, &auction.orders);
        uncrossing_price(&levels(&bids), &levels(&asks), reference)
    }

    /// Ends a halt: matches the orders that rested before it and those that waited, at the
    /// uncrossing price (`reference` breaks ties, see the module docs), then rests what is left
    /// of each waiting order. Fills and self-trade cancellations of orders that rested before
    /// the halt go to `sink`. Reopening a book that is not halted does nothing.
    pub fn reopen(&mut self, reference: Price, sink: &mut MatchSink) -> AuctionOutcome {
        let Some(auction) = self.auction.take() else {
            return AuctionOutcome::default();
        };
        let (mut bids, mut asks) = participants(self, &auction.orders);
        let uncross = uncrossing_price(&levels(&bids), &levels(&asks), reference);
        let mut filled = vec![0i64; auction.orders.len()];
        let mut self_traded = vec![false; auction.orders.len()];
        if let Some(Uncross { price, .. }) = uncross {
            let (mut b, mut a) = (0usize, 0usize);
            while b < bids.len()
                && a < asks.len()
                && bids[b].order.price >= price
                && asks[a].order.price <= price
            {
                let (bid, ask) = (&mut bids[b], &mut asks[a]);
                if bid.open == 0 {
                    b += 1;
                    continue;
                }
                if ask.open == 0 {
                    a += 1;
                    continue;
                }
                let newer_is_bid = bid.age() > ask.age();
                if bid.order.account == ask.order.account {
                    let policy = if newer_is_bid {
                        bid.order.self_trade
                    } else {
                        ask.order.self_trade
                    };
                    let (cancel_bid, cancel_ask) = match (policy, newer_is_bid) {
                        (SelfTradePrevention::CancelBoth, _) => (true, true),
                        (SelfTradePrevention::CancelMaker, true)
                        | (SelfTradePrevention::CancelTaker, false) => (false, true),
                        (SelfTradePrevention::CancelMaker, false)
                        | (SelfTradePrevention::CancelTaker, true) => (true, false),
                    };
                    for (cancel, participant) in [(cancel_bid, &mut *bid), (cancel_ask, &mut *ask)]
                    {
                        if cancel {
                            match participant.auction {
                                Some(i) => self_traded[i] = true,
                                None => {
                                    let mut order = self
                                        .cancel(participant.order.order_id)
                                        .expect("book order rests");
                                    order.qty = Qty::from_contracts(participant.open);
                                    sink.maker_cancels.push(order);
                                }
                            }
                            participant.open = 0;
                        }
                    }
                    continue;
                }
                let qty = bid.open.min(ask.open);
                bid.open -= qty;
                ask.open -= qty;
                let (maker, taker) = if newer_is_bid {
                    (&*ask, &*bid)
                } else {
                    (&*bid, &*ask)
                };
                sink.fills.push(Fill {
                    maker_order_id: maker.order.order_id,
                    maker_account: maker.order.account,
                    maker_client_order_id: maker.order.client_order_id,
                    maker_reduce_only: maker.order.reduce_only,
                    taker_order_id: taker.order.order_id,
                    taker_account: taker.order.account,
                    taker_side: taker.order.side,
                    price,
                    qty: Qty::from_contracts(qty),
                    maker_qty_left: Qty::from_contracts(maker.open),
                });
                for participant in [&*bid, &*ask] {
                    if let Some(i) = participant.auction {
                        filled[i] += qty;
                    }
                }
            }
            // Orders that rested before the halt: what matched leaves the book (a partial
            // fill keeps its place in the queue).
            for participant in bids
                .iter()
                .chain(asks.iter())
                .filter(|p| p.auction.is_none())
            {
                let Some(resting) = self.get(participant.order.order_id).copied() else {
                    continue;
                };
                if participant.open == 0 {
                    self.cancel(resting.order_id);
                } else if participant.open < resting.qty.contracts() {
                    self.reduce(resting.order_id, Qty::from_contracts(participant.open));
                }
            }
        }
        let mut placements = Vec::with_capacity(auction.orders.len());
        for (i, order) in auction.orders.iter().enumerate() {
            let left = order.qty.contracts() - filled[i];
            let done = Qty::from_contracts(filled[i]);
            let remainder = if left == 0 {
                Remainder::None
            } else if self_traded[i] {
                Remainder::Cancelled {
                    qty: Qty::from_contracts(left),
                    reason: CancelReason::SelfTrade,
                }
            } else if self.crosses_opposite(order.side, order.price) {
                Remainder::Cancelled {
                    qty: Qty::from_contracts(left),
                    reason: CancelReason::AuctionCrossed,
                }
            } else {
                self.rest(RestingOrder {
                    qty: Qty::from_contracts(left),
                    ..*order
                });
                Remainder::Rested(Qty::from_contracts(left))
            };
            placements.push((
                *order,
                Placement {
                    filled: done,
                    remainder,
                },
            ));
        }
        AuctionOutcome {
            uncross,
            placements,
        }
    }
}
