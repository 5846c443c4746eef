//! The book against a deliberately naive model: random streams of orders, cancels and reduces
//! must produce the same fills, cancellations and resting orders in both, and keep every
//! structural invariant. The model shares no code with the book: it keeps one `Vec` of resting
//! orders and finds the best maker by scanning.

use bulwark_book::*;
use bulwark_types::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct ModelOrder {
    id: u64,
    account: u64,
    side: Side,
    price: i64,
    qty: i64,
    seq: u64,
}

#[derive(Default)]
struct Model {
    resting: Vec<ModelOrder>,
    seq: u64,
    fills_max: u32,
    orders_max: usize,
}

#[derive(Debug, PartialEq)]
enum Event {
    Fill { maker: u64, price: i64, qty: i64 },
    SelfTradeCancel(u64),
    Rested(i64),
    Cancelled(i64, CancelReason),
    RejectPostOnly,
}

impl Model {
    fn best_maker(&self, side: Side, limit: i64) -> Option<usize> {
        let crossing = |o: &&ModelOrder| {
            o.side != side
                && if side == Side::Buy {
                    o.price <= limit
                } else {
                    o.price >= limit
                }
        };
        let key = |o: &ModelOrder| (if side == Side::Buy { o.price } else { -o.price }, o.seq);
        self.resting
            .iter()
            .filter(crossing)
            .min_by_key(|o| key(o))
            .map(|best| self.resting.iter().position(|o| o.id == best.id).unwrap())
    }

    #[allow(clippy::too_many_arguments)] // mirrors NewOrder's fields
    fn place(
        &mut self,
        id: u64,
        account: u64,
        side: Side,
        price: i64,
        qty: i64,
        tif: TimeInForce,
        post_only: bool,
        stp: SelfTradePrevention,
    ) -> Vec<Event> {
        if post_only && self.best_maker(side, price).is_some() {
            return vec![Event::RejectPostOnly];
        }
        if tif == TimeInForce::FillOrKill {
            // Dry run on a copy.
            let mut copy = Model {
                resting: self.resting.clone(),
                seq: self.seq,
                fills_max: self.fills_max,
                orders_max: self.orders_max,
            };
            let events = copy.take(id, account, side, price, qty, stp);
            let filled: i64 = events
                .iter()
                .map(|e| {
                    if let Event::Fill { qty, .. } = e {
                        *qty
                    } else {
                        0
                    }
                })
                .sum();
            if filled < qty {
                return vec![Event::Cancelled(qty, CancelReason::FillOrKill)];
            }
        }
        let mut events = self.take(id, account, side, price, qty, stp);
        let filled: i64 = events
            .iter()
            .map(|e| {
                if let Event::Fill { qty, .. } = e {
                    *qty
                } else {
                    0
                }
            })
            .sum();
        let stopped = events.iter().any(|e| matches!(e, Event::Cancelled(..)));
        let left = qty - filled;
        if left > 0 && !stopped {
            match tif {
                TimeInForce::GoodTilCancelled if self.resting.len() >= self.orders_max => {
                    events.push(Event::Cancelled(left, CancelReason::BookFull))
                }
                TimeInForce::GoodTilCancelled => {
                    self.seq += 1;
                    self.resting.push(ModelOrder {
                        id,
                        account,
                        side,
                        price,
                        qty: left,
                        seq: self.seq,
                    });
                    events.push(Event::Rested(left));
                }
                _ => events.push(Event::Cancelled(left, CancelReason::ImmediateOrCancel)),
            }
        }
        events
    }

    fn take(
        &mut self,
        _id: u64,
        account: u64,
        side: Side,
        limit: i64,
        qty: i64,
        stp: SelfTradePrevention,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let mut remaining = qty;
        let mut fills = 0;
        while remaining > 0 {
            let Some(i) = self.best_maker(side, limit) else {
                break;
            };
            let maker = self.resting[i].clone();
            if maker.account == account {
                if stp != SelfTradePrevention::CancelTaker {
                    self.resting.remove(i);
                    events.push(Event::SelfTradeCancel(maker.id));
                }
                if stp != SelfTradePrevention::CancelMaker {
                    events.push(Event::Cancelled(remaining, CancelReason::SelfTrade));
                    return events;
                }
                continue;
            }
            let q = remaining.min(maker.qty);
            remaining -= q;
            self.resting[i].qty -= q;
            if self.resting[i].qty == 0 {
                self.resting.remove(i);
            }
            events.push(Event::Fill {
                maker: maker.id,
                price: maker.price,
                qty: q,
            });
            fills += 1;
            if fills >= self.fills_max && remaining > 0 {
                events.push(Event::Cancelled(remaining, CancelReason::MatchLimit));
                return events;
            }
        }
        events
    }
}

#[derive(Clone, Debug)]
enum Op {
    Place {
        account: u64,
        buy: bool,
        price: i64,
        qty: i64,
        tif: u8,
        post_only: bool,
        stp: u8,
    },
    Cancel(usize),
    Reduce(usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..4, any::<bool>(), 95i64..106, 1i64..8, 0u8..3, any::<bool>(), 0u8..3).prop_map(
            |(account, buy, price, qty, tif, post_only, stp)| Op::Place { account, buy, price, qty, tif, post_only: post_only && tif == 0, stp }
        ),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => (any::<usize>(), 1i64..4).prop_map(|(i, q)| Op::Reduce(i, q)),
    ]
}

fn events_of(sink: &MatchSink, placement: Result<Placement, BookReject>) -> Vec<Event> {
    let placement = match placement {
        Ok(p) => p,
        Err(BookReject::PostOnlyWouldCross) => return vec![Event::RejectPostOnly],
        Err(e) => panic!("unexpected {e}"),
    };
    // The book reports fills and self-trade cancels in separate lists; the model interleaves
    // them in walk order. Compare each kind in order.
    let mut events: Vec<Event> = sink
        .fills
        .iter()
        .map(|f| Event::Fill {
            maker: f.maker_order_id.get(),
            price: f.price.ticks(),
            qty: f.qty.contracts(),
        })
        .collect();
    events.extend(
        sink.maker_cancels
            .iter()
            .map(|o| Event::SelfTradeCancel(o.order_id.get())),
    );
    match placement.remainder {
        Remainder::None => {}
        Remainder::Rested(q) => events.push(Event::Rested(q.contracts())),
        Remainder::Cancelled { qty, reason } => {
            events.push(Event::Cancelled(qty.contracts(), reason))
        }
    }
    events
}

fn normalise(mut events: Vec<Event>) -> Vec<Event> {
    // Fills first (in order), then self-trade cancels (in order), then the remainder.
    let rank = |e: &Event| match e {
        Event::Fill { .. } => 0,
        Event::SelfTradeCancel(_) => 1,
        _ => 2,
    };
    events.sort_by_key(rank); // stable: keeps each kind's order
    events
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn book_matches_the_naive_model(ops in proptest::collection::vec(op(), 1..120), fills_max in 1u32..6, orders_max in 3u32..40) {
        let limits = BookLimits { orders_max, fills_per_match_max: fills_max };
        let mut book = Book::new(limits);
        let mut model = Model { fills_max, orders_max: orders_max as usize, ..Model::default() };
        let mut sink = MatchSink::default();
        for (n, op) in ops.into_iter().enumerate() {
            let id = n as u64;
            match op {
                Op::Place { account, buy, price, qty, tif, post_only, stp } => {
                    let side = if buy { Side::Buy } else { Side::Sell };
                    let tif = [TimeInForce::GoodTilCancelled, TimeInForce::ImmediateOrCancel, TimeInForce::FillOrKill][tif as usize];
                    let stp = [SelfTradePrevention::CancelMaker, SelfTradePrevention::CancelTaker, SelfTradePrevention::CancelBoth][stp as usize];
                    let order = NewOrder {
                        order_id: OrderId::new(id), account: AccountId::new(account), client_order_id: ClientOrderId::new(id),
                        side, price: Price::from_ticks(price), qty: Qty::from_contracts(qty), time_in_force: tif, post_only,
                        reduce_only: false, self_trade: stp,
                    };
                    sink.clear();
                    let placement = book.place(&order, &mut sink);
                    let got = normalise(events_of(&sink, placement));
                    let want = normalise(model.place(id, account, side, price, qty, tif, post_only, stp));
                    prop_assert_eq!(got, want, "order {}", id);
                }
                Op::Cancel(i) => {
                    if model.resting.is_empty() { continue; }
                    let target = model.resting[i % model.resting.len()].id;
                    model.resting.retain(|o| o.id != target);
                    prop_assert!(book.cancel(OrderId::new(target)).is_some());
                }
                Op::Reduce(i, q) => {
                    if model.resting.is_empty() { continue; }
                    let k = i % model.resting.len();
                    if model.resting[k].qty <= q { continue; }
                    model.resting[k].qty = q;
                    prop_assert!(book.reduce(OrderId::new(model.resting[k].id), Qty::from_contracts(q)).is_some());
                }
            }
            book.check_invariants().unwrap();
            // Same resting orders, in the same priority order.
            for side in [Side::Buy, Side::Sell] {
                let got: Vec<(u64, i64, i64)> = book.orders(side).map(|o| (o.order_id.get(), o.price.ticks(), o.qty.contracts())).collect();
                let mut want: Vec<&ModelOrder> = model.resting.iter().filter(|o| o.side == side).collect();
                want.sort_by_key(|o| (if side == Side::Buy { -o.price } else { o.price }, o.seq));
                let want: Vec<(u64, i64, i64)> = want.iter().map(|o| (o.id, o.price, o.qty)).collect();
                prop_assert_eq!(book.orders_count(side), want.len());
                prop_assert_eq!(got, want);
            }
        }
    }
}
