//! The call auction that reopens a halted instrument: orders collected during the halt are
//! uncrossed together with the book's resting orders at the one price that matches the most.
//!
//! Owns: [`CallAuction`] (the orders received while halted, in arrival order), the uncrossing
//! price ([`uncrossing_price`]) and [`Book::uncross`], which executes it.
//! Never: leaves the book crossed (what remains after the uncross is placed through the
//! ordinary matching path), fills an order beyond its quantity or at a price worse than its
//! limit, or decides when to halt (the exchange's circuit breaker does).
//! Bounds: an auction holds at most the book's free capacity (`orders_max` minus resting
//! orders when the order arrives); the uncross is O(n log n) in the orders taking part, and
//! finding its price O(levels).
//!
//! The uncrossing price, as on Xetra and Euronext: among the limit prices of all orders, the
//! one that maximises the executable volume `min(bids at or above it, asks at or below it)`;
//! ties go to the smallest surplus `|bids - asks|`, then to the price nearest the reference
//! (the exchange passes the mark), then to the lower price. Every match is at that price.
//! Priority within each side is price, then time: the book's resting orders before orders
//! that arrived during the halt, which go in arrival order. Of two matched orders the older
//! (smaller order id) is the maker. Self-trade prevention applies as in continuous trading,
//! under the newer order's policy. Fill-or-kill orders cannot join an auction (nothing fills
//! at once while halted); immediate-or-cancel orders take part in the uncross and their rest is
//! cancelled; good-til-cancelled remainders are then placed in arrival order.

use crate::book::Book;
use crate::order::{Fill, MatchSink, NewOrder, Placement, Remainder, RestingOrder};
use bulwark_types::{CancelReason, OrderId, Price, Qty, SelfTradePrevention, Side, TimeInForce};
use std::collections::BTreeMap;

/// Why an auction refused an order; nothing changed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuctionReject {
    #[error("a fill-or-kill order cannot wait in a halted instrument's auction")]
    FillOrKill,
    #[error("order id already rests in the book or the auction")]
    OrderIdInUse,
    #[error("the book and its auction hold as many orders as the book may")]
    Full,
}

/// Orders received while an instrument is halted, in arrival order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallAuction {
    orders: Vec<NewOrder>,
}

/// The price an uncross happens at, and what it matches.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Uncross {
    pub price: Price,
    /// Contracts matched at `price` (before self-trade prevention).
    pub volume: Qty,
    /// Bids at or above `price` minus asks at or below it: positive when buyers are left over.
    pub surplus: i64,
}

/// What reopening did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuctionOutcome {
    /// `None` when nothing crossed.
    pub uncross: Option<Uncross>,
    /// Each auction order's result, in arrival order.
    pub placements: Vec<(OrderId, Placement)>,
}

impl CallAuction {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// The orders, in arrival order.
    pub fn orders(&self) -> &[NewOrder] {
        &self.orders
    }

    pub fn get(&self, order_id: OrderId) -> Option<&NewOrder> {
        self.orders.iter().find(|o| o.order_id == order_id)
    }

    /// Takes an order into the auction. Nothing matches until [`Book::uncross`].
    pub fn add(&mut self, order: NewOrder, book: &Book) -> Result<(), AuctionReject> {
        assert!(
            order.qty.is_positive(),
            "admission passes only positive quantities"
        );
        if order.time_in_force == TimeInForce::FillOrKill {
            return Err(AuctionReject::FillOrKill);
        }
        if book.get(order.order_id).is_some() || self.get(order.order_id).is_some() {
            return Err(AuctionReject::OrderIdInUse);
        }
        if book.len() + self.orders.len() >= book.limits().orders_max as usize {
            return Err(AuctionReject::Full);
        }
        self.orders.push(order);
        Ok(())
    }

    /// Removes an order from the auction; `None` if it is not there.
    pub fn cancel(&mut self, order_id: OrderId) -> Option<NewOrder> {
        let at = self.orders.iter().position(|o| o.order_id == order_id)?;
        Some(self.orders.remove(at))
    }

    /// Lowers an auction order's quantity to `qty` (positive, below the current).
    pub fn reduce(&mut self, order_id: OrderId, qty: Qty) -> Option<NewOrder> {
        let order = self.orders.iter_mut().find(|o| o.order_id == order_id)?;
        assert!(
            qty.is_positive() && qty < order.qty,
            "reduce keeps 0 < qty < current"
        );
        let before = *order;
        order.qty = qty;
        Some(before)
    }

    /// The price and volume the auction would uncross at now, for display.
    pub fn indicative(&self, book: &Book, reference: Price) -> Option<Uncross> {
        let (bids, asks) = participants(book, &self.orders);
        uncrossing_price(&levels(&bids), &levels(&asks), reference)
    }
}

/// An order taking part in an uncross.
#[derive(Copy, Clone, Debug)]
struct Participant {
    order: RestingOrder,
    /// Index into the auction's orders, or `None` for a book order.
    auction: Option<usize>,
    /// What is left of it.
    open: i64,
    self_trade: SelfTradePrevention,
}

/// Both sides in priority order: price (best first), then book orders in their queue order,
/// then auction orders in arrival order.
fn participants(book: &Book, auction: &[NewOrder]) -> (Vec<Participant>, Vec<Participant>) {
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
            self_trade: o.self_trade,
        }));
        list.extend(
            auction
                .iter()
                .enumerate()
                .filter(|(_, o)| o.side == side)
                .map(|(i, o)| Participant {
                    order: RestingOrder {
                        order_id: o.order_id,
                        account: o.account,
                        client_order_id: o.client_order_id,
                        side: o.side,
                        price: o.price,
                        qty: o.qty,
                        reduce_only: o.reduce_only,
                        post_only: o.post_only,
                        self_trade: o.self_trade,
                    },
                    auction: Some(i),
                    open: o.qty.contracts(),
                    self_trade: o.self_trade,
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

impl Book {
    /// Reopens after a halt: matches the book's resting orders and the auction's at the
    /// uncrossing price (`reference` breaks ties, see the module docs), then places what is
    /// left of each good-til-cancelled auction order through ordinary matching, in arrival
    /// order. Fills and self-trade cancellations of book orders go to `sink`.
    pub fn uncross(
        &mut self,
        auction: CallAuction,
        reference: Price,
        sink: &mut MatchSink,
    ) -> AuctionOutcome {
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
                let (newer_is_bid, policy) = if bid.order.order_id > ask.order.order_id {
                    (true, bid.self_trade)
                } else {
                    (false, ask.self_trade)
                };
                if bid.order.account == ask.order.account {
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
            // Book orders: what matched leaves the book (a partial fill keeps its priority).
            for participant in bids
                .iter()
                .chain(asks.iter())
                .filter(|p| p.auction.is_none())
            {
                let Some(resting) = self.get(participant.order.order_id) else {
                    continue;
                };
                if participant.open == 0 {
                    self.cancel(resting.order_id);
                } else if participant.open < resting.qty.contracts() {
                    self.reduce(
                        participant.order.order_id,
                        Qty::from_contracts(participant.open),
                    );
                }
            }
        }
        let mut placements = Vec::with_capacity(auction.orders.len());
        for (i, order) in auction.orders.iter().enumerate() {
            let left = order.qty.contracts() - filled[i];
            let done = Qty::from_contracts(filled[i]);
            let placement = if left == 0 {
                Placement {
                    filled: done,
                    remainder: Remainder::None,
                }
            } else if self_traded[i] {
                Placement {
                    filled: done,
                    remainder: Remainder::Cancelled {
                        qty: Qty::from_contracts(left),
                        reason: CancelReason::SelfTrade,
                    },
                }
            } else if order.time_in_force == TimeInForce::ImmediateOrCancel {
                Placement {
                    filled: done,
                    remainder: Remainder::Cancelled {
                        qty: Qty::from_contracts(left),
                        reason: CancelReason::ImmediateOrCancel,
                    },
                }
            } else {
                let rest = NewOrder {
                    qty: Qty::from_contracts(left),
                    ..*order
                };
                match self.place(&rest, sink) {
                    Ok(p) => Placement {
                        filled: Qty::from_contracts(done.contracts() + p.filled.contracts()),
                        remainder: p.remainder,
                    },
                    // A post-only remainder that would now cross: cancelled, as a post-only
                    // order that would take is refused.
                    Err(_) => Placement {
                        filled: done,
                        remainder: Remainder::Cancelled {
                            qty: Qty::from_contracts(left),
                            reason: CancelReason::PostOnly,
                        },
                    },
                }
            };
            placements.push((order.order_id, placement));
        }
        AuctionOutcome {
            uncross,
            placements,
        }
    }
}
