//! The halted book and its reopening auction: hand-computed uncrossing prices, the execution
//! of a reopening, and a property test against a brute-force search over every price.

use bulwark_book::*;
use bulwark_types::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn order(id: u64, account: u64, side: Side, price: i64, qty: i64, tif: TimeInForce) -> NewOrder {
    NewOrder {
        order_id: OrderId::new(id),
        account: AccountId::new(account),
        client_order_id: ClientOrderId::new(id),
        side,
        price: Price::from_ticks(price),
        qty: Qty::from_contracts(qty),
        time_in_force: tif,
        post_only: false,
        reduce_only: false,
        self_trade: SelfTradePrevention::CancelMaker,
    }
}

const GTC: TimeInForce = TimeInForce::GoodTilCancelled;

fn curve(levels: &[(i64, i64)]) -> BTreeMap<Price, i64> {
    levels
        .iter()
        .map(|(p, q)| (Price::from_ticks(*p), *q))
        .collect()
}

fn price_of(bids: &[(i64, i64)], asks: &[(i64, i64)], reference: i64) -> Option<(i64, i64, i64)> {
    uncrossing_price(&curve(bids), &curve(asks), Price::from_ticks(reference))
        .map(|u| (u.price.ticks(), u.volume.contracts(), u.surplus))
}

fn fills(sink: &MatchSink) -> Vec<(u64, u64, i64, i64)> {
    sink.fills
        .iter()
        .map(|f| {
            (
                f.maker_order_id.get(),
                f.taker_order_id.get(),
                f.price.ticks(),
                f.qty.contracts(),
            )
        })
        .collect()
}

#[test]
fn hand_computed_uncrossing_prices() {
    // Bids 10@102 5@101 10@100; asks 5@99 10@100 10@101 10@103.
    //   price  demand (bids >= p)  supply (asks <= p)  volume  surplus
    //    99        25                  5                 5       20
    //   100        25                 15                15       10
    //   101        15                 25                15      -10
    //   102        10                 25                10      -15
    // 100 and 101 tie on volume (15) and |surplus| (10): the reference decides.
    let bids = [(102, 10), (101, 5), (100, 10)];
    let asks = [(99, 5), (100, 10), (101, 10), (103, 10)];
    assert_eq!(price_of(&bids, &asks, 101), Some((101, 15, -10)));
    assert_eq!(price_of(&bids, &asks, 100), Some((100, 15, 10)));
    assert_eq!(price_of(&bids, &asks, 90), Some((100, 15, 10)));

    // Volume first: bids 10@101; asks 4@100 6@101 -> 100 matches 4, 101 matches 10.
    assert_eq!(
        price_of(&[(101, 10)], &[(100, 4), (101, 6)], 100),
        Some((101, 10, 0))
    );

    // Surplus next: bids 5@102 5@100; asks 5@100 3@101.
    //   100: demand 10, supply 5 -> 5, surplus 5;  101: 5 vs 8 -> 5, -3;  102: 5 vs 8 -> 5, -3.
    // 101 and 102 tie on volume and |surplus|; the reference picks.
    let (bids, asks) = ([(102, 5), (100, 5)], [(100, 5), (101, 3)]);
    assert_eq!(price_of(&bids, &asks, 200), Some((102, 5, -3)));
    assert_eq!(price_of(&bids, &asks, 0), Some((101, 5, -3)));
    // 101 and 103 tie on everything and are equidistant from 102: the lower price.
    assert_eq!(price_of(&[(103, 4)], &[(101, 4)], 102), Some((101, 4, 0)));

    // Nothing crosses.
    assert_eq!(price_of(&[(100, 5)], &[(101, 5)], 100), None);
    assert_eq!(price_of(&[], &[(101, 5)], 100), None);
}

#[test]
fn a_halted_book_collects_orders_and_reopens_at_one_price_with_book_priority() {
    let mut book = Book::new(BookLimits::DEFAULT);
    let mut sink = MatchSink::default();
    // Resting before the halt: a bid 5@100 (account 1) and an ask 5@103 (account 2).
    book.place(&order(1, 1, Side::Buy, 100, 5, GTC), &mut sink)
        .unwrap();
    book.place(&order(2, 2, Side::Sell, 103, 5, GTC), &mut sink)
        .unwrap();
    book.halt();
    // During the halt: a panic seller and two buyers wait; nothing matches.
    for o in [
        order(3, 3, Side::Sell, 98, 8, GTC),
        order(4, 4, Side::Buy, 100, 2, GTC),
        order(5, 5, Side::Buy, 99, 4, GTC),
    ] {
        let placement = book.place(&o, &mut sink).unwrap();
        assert_eq!(
            placement,
            Placement {
                filled: Qty::ZERO,
                remainder: Remainder::Rested(o.qty)
            }
        );
    }
    assert!(sink.fills.is_empty());
    // Orders that must trade at once cannot: cancelled.
    let ioc = book
        .place(
            &order(6, 6, Side::Buy, 99, 1, TimeInForce::ImmediateOrCancel),
            &mut sink,
        )
        .unwrap();
    assert_eq!(
        ioc.remainder,
        Remainder::Cancelled {
            qty: Qty::from_contracts(1),
            reason: CancelReason::ImmediateOrCancel
        }
    );
    let fok = book
        .place(
            &order(7, 7, Side::Buy, 99, 1, TimeInForce::FillOrKill),
            &mut sink,
        )
        .unwrap();
    assert_eq!(
        fok.remainder,
        Remainder::Cancelled {
            qty: Qty::from_contracts(1),
            reason: CancelReason::FillOrKill
        }
    );
    assert_eq!(book.len(), 5);
    assert_eq!(
        book.get(OrderId::new(4)).map(|o| o.qty.contracts()),
        Some(2),
        "waiting orders can be found"
    );
    book.check_invariants().unwrap();

    // Bids 7@100 (the book's 5, then 2 that waited) and 4@99; asks 8@98 and 5@103.
    //   98: demand 11, supply 8 -> 8 (surplus 3); 99: 11 vs 8 -> 8 (3); 100: 7 vs 8 -> 7.
    //   98 and 99 tie; the reference, 99, picks 99.
    let indicative = book.indicative(Price::from_ticks(99)).unwrap();
    assert_eq!(
        (indicative.price.ticks(), indicative.volume.contracts()),
        (99, 8)
    );
    let outcome = book.reopen(Price::from_ticks(99), &mut sink);
    assert!(!book.is_halted());
    assert_eq!(outcome.uncross, Some(indicative));
    // Priority: the book's bid 1 first, then bid 4, then bid 5; the older order makes.
    assert_eq!(
        fills(&sink),
        vec![(1, 3, 99, 5), (3, 4, 99, 2), (3, 5, 99, 1)]
    );
    let placements: Vec<(u64, Placement)> = outcome
        .placements
        .iter()
        .map(|(o, p)| (o.order_id.get(), *p))
        .collect();
    assert_eq!(
        placements,
        vec![
            (
                3,
                Placement {
                    filled: Qty::from_contracts(8),
                    remainder: Remainder::None
                }
            ),
            (
                4,
                Placement {
                    filled: Qty::from_contracts(2),
                    remainder: Remainder::None
                }
            ),
            (
                5,
                Placement {
                    filled: Qty::from_contracts(1),
                    remainder: Remainder::Rested(Qty::from_contracts(3))
                }
            ),
        ]
    );
    assert!(
        book.get(OrderId::new(1)).is_none(),
        "the book's bid filled entirely"
    );
    assert_eq!(
        book.best_bid().map(|(p, q)| (p.ticks(), q.contracts())),
        Some((99, 3))
    );
    assert_eq!(
        book.best_ask().map(|(p, q)| (p.ticks(), q.contracts())),
        Some((103, 5))
    );
    book.check_invariants().unwrap();
}

#[test]
fn waiting_orders_can_be_cancelled_and_reduced() {
    let mut book = Book::new(BookLimits::DEFAULT);
    let mut sink = MatchSink::default();
    book.halt();
    book.place(&order(1, 1, Side::Buy, 100, 5, GTC), &mut sink)
        .unwrap();
    book.place(&order(2, 2, Side::Sell, 100, 5, GTC), &mut sink)
        .unwrap();
    assert_eq!(
        book.reduce(OrderId::new(1), Qty::from_contracts(3))
            .map(|o| o.qty.contracts()),
        Some(5)
    );
    assert_eq!(
        book.cancel(OrderId::new(2)).map(|o| o.order_id.get()),
        Some(2)
    );
    assert!(book.cancel(OrderId::new(2)).is_none());
    let outcome = book.reopen(Price::from_ticks(100), &mut sink);
    assert_eq!(outcome.uncross, None, "nothing left to cross");
    assert_eq!(
        book.best_bid().map(|(p, q)| (p.ticks(), q.contracts())),
        Some((100, 3))
    );
}

#[test]
fn self_trades_in_the_uncross_follow_the_newer_orders_policy() {
    let mut book = Book::new(BookLimits::DEFAULT);
    let mut sink = MatchSink::default();
    book.place(&order(1, 7, Side::Sell, 100, 5, GTC), &mut sink)
        .unwrap();
    book.halt();
    // Account 7 bids against its own resting ask; CancelMaker cancels the (older) ask.
    book.place(&order(2, 7, Side::Buy, 101, 5, GTC), &mut sink)
        .unwrap();
    book.place(&order(3, 8, Side::Sell, 101, 2, GTC), &mut sink)
        .unwrap();
    let outcome = book.reopen(Price::from_ticks(100), &mut sink);
    // The uncross price is 100 (5 against 5, no surplus); once the ask at 100 is cancelled
    // nothing matches there. The bid then rests at 101, and account 8's ask, which would
    // cross it, is cancelled rather than traded outside the auction.
    assert_eq!(outcome.uncross.map(|u| u.price.ticks()), Some(100));
    assert_eq!(
        sink.maker_cancels
            .iter()
            .map(|o| o.order_id.get())
            .collect::<Vec<_>>(),
        vec![1]
    );
    assert!(sink.fills.is_empty());
    assert_eq!(
        outcome.placements[0].1.remainder,
        Remainder::Rested(Qty::from_contracts(5))
    );
    assert_eq!(
        outcome.placements[1].1.remainder,
        Remainder::Cancelled {
            qty: Qty::from_contracts(2),
            reason: CancelReason::AuctionCrossed
        }
    );
    book.check_invariants().unwrap();
}

/// The most any single price could match, searched over every price in range.
fn brute_force_volume(orders: &[RestingOrder]) -> i64 {
    (0..=40)
        .map(|p| {
            let demand: i64 = orders
                .iter()
                .filter(|o| o.side == Side::Buy && o.price.ticks() >= p)
                .map(|o| o.qty.contracts())
                .sum();
            let supply: i64 = orders
                .iter()
                .filter(|o| o.side == Side::Sell && o.price.ticks() <= p)
                .map(|o| o.qty.contracts())
                .sum();
            demand.min(supply)
        })
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reopening_matches_the_most_at_one_price_and_leaves_a_sound_book(
        resting in proptest::collection::vec((any::<bool>(), 1i64..40, 1i64..10), 0..30),
        arriving in proptest::collection::vec((any::<bool>(), 1i64..40, 1i64..10), 0..30),
        reference in 1i64..40,
    ) {
        let mut book = Book::new(BookLimits::DEFAULT);
        let mut sink = MatchSink::default();
        let mut id = 0u64;
        for (buy, price, qty) in resting {
            id += 1;
            book.place(&order(id, id, if buy { Side::Buy } else { Side::Sell }, price, qty, GTC), &mut sink).unwrap();
        }
        book.halt();
        for (buy, price, qty) in arriving {
            id += 1;
            book.place(&order(id, id, if buy { Side::Buy } else { Side::Sell }, price, qty, GTC), &mut sink).unwrap();
        }
        book.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Every order takes part with its open quantity.
        let mut all: Vec<RestingOrder> = book.auction_orders().to_vec();
        all.extend(book.orders(Side::Buy).copied());
        all.extend(book.orders(Side::Sell).copied());
        let limits: BTreeMap<u64, RestingOrder> = all.iter().map(|o| (o.order_id.get(), *o)).collect();
        let contracts_before: i64 = all.iter().map(|o| o.qty.contracts()).sum();
        sink.clear();
        let outcome = book.reopen(Price::from_ticks(reference), &mut sink);
        let best = brute_force_volume(&all);
        let traded: i64 = sink.fills.iter().map(|f| f.qty.contracts()).sum();
        match outcome.uncross {
            None => prop_assert_eq!(best, 0),
            Some(u) => {
                prop_assert_eq!(u.volume.contracts(), best);
                prop_assert_eq!(traded, best, "all of the volume traded (no self-trades here)");
                prop_assert!(sink.fills.iter().all(|f| f.price == u.price), "one price for all");
            }
        }
        // No fill beyond a limit; no order filled beyond its quantity.
        let mut filled: BTreeMap<u64, i64> = BTreeMap::new();
        for f in &sink.fills {
            let maker_side = if f.taker_side == Side::Buy { Side::Sell } else { Side::Buy };
            for (id, side) in [(f.maker_order_id.get(), maker_side), (f.taker_order_id.get(), f.taker_side)] {
                let o = limits[&id];
                prop_assert_eq!(o.side, side);
                match side {
                    Side::Buy => prop_assert!(f.price <= o.price),
                    Side::Sell => prop_assert!(f.price >= o.price),
                }
                *filled.entry(id).or_insert(0) += f.qty.contracts();
            }
        }
        for (id, qty) in &filled {
            prop_assert!(*qty <= limits[id].qty.contracts());
        }
        for (o, placement) in &outcome.placements {
            let left = match placement.remainder {
                Remainder::None => 0,
                Remainder::Rested(q) | Remainder::Cancelled { qty: q, .. } => q.contracts(),
            };
            prop_assert_eq!(placement.filled.contracts() + left, o.qty.contracts());
            prop_assert_eq!(placement.filled.contracts(), filled.get(&o.order_id.get()).copied().unwrap_or(0));
            prop_assert!(!matches!(placement.remainder, Remainder::Cancelled { .. }), "nothing crosses without self-trades");
        }
        // Contracts are conserved: what rests now plus twice what traded is what there was.
        let resting_after: i64 = book.orders(Side::Buy).chain(book.orders(Side::Sell)).map(|o| o.qty.contracts()).sum();
        prop_assert_eq!(resting_after + 2 * traded, contracts_before);
        book.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
