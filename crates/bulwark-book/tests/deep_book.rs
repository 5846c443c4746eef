//! A deep book must not make every block that touches it pay for all of it.
//!
//! The attack: a trader with a few hundred accounts rests the book's limit of orders
//! (`BookLimits::DEFAULT`, 100,000) in one instrument, one order per price level, then
//! touches that instrument with one small order in every block. Each validator copies the
//! exchange's state for every block it speculates on, and a copied book is copied again on
//! its first change (`Book` is copy-on-write). Were that copy of the whole book, the
//! attacker's one order a block would cost every validator megabytes of copying a block, per
//! deep book; a venue lists hundreds of instruments. The copy must cost what the change
//! touches, not what the book holds.
//!
//! Measured by what the change allocates (a counting allocator, this test binary's own), not
//! by time: deterministic, and it fails on any build that copies the whole book.

use bulwark_book::*;
use bulwark_types::counting_alloc::{Counting, allocated_by};
use bulwark_types::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn order(id: u64, account: u64, side: Side, ticks: i64, tif: TimeInForce) -> NewOrder {
    NewOrder {
        order_id: OrderId::new(id),
        account: AccountId::new(account),
        client_order_id: ClientOrderId::new(id),
        side,
        price: Price::from_ticks(ticks),
        qty: Qty::from_contracts(1),
        time_in_force: tif,
        post_only: false,
        reduce_only: false,
        self_trade: SelfTradePrevention::CancelTaker,
    }
}

/// The attacker's book: `BookLimits::DEFAULT.orders_max` bids, one per price level from
/// 1,000,000 ticks down, from 200 accounts (the venue's 500 open orders each).
fn deep_book() -> Book {
    let mut book = Book::new(BookLimits::DEFAULT);
    let mut sink = MatchSink::default();
    let n = BookLimits::DEFAULT.orders_max as u64;
    for id in 1..=n {
        let bid = order(
            id,
            id % 200,
            Side::Buy,
            1_000_000 - id as i64,
            TimeInForce::GoodTilCancelled,
        );
        book.place(&bid, &mut sink).expect("rests");
    }
    assert_eq!(book.len(), n as usize);
    book
}

/// The bound on what one block's touch may copy: a few kilobytes per structure the change
/// walks. The whole book is about 10 MB.
const TOUCH_BYTES_MAX: u64 = 256 * 1024;

/// A block's speculation: the state (and `book` in it) copied, then one of the attacker's
/// own bids (`cancel`) cancelled and one order placed far from the bids. The copy, and the
/// bytes all that allocated.
fn touch_a_copy(book: &Book, cancel: u64) -> (Book, u64) {
    let mut sink = MatchSink::default();
    allocated_by(|| {
        let mut copy = book.clone();
        let ask = order(
            10_000_000,
            999,
            Side::Sell,
            2_000_000,
            TimeInForce::GoodTilCancelled,
        );
        copy.cancel(OrderId::new(cancel)).expect("rests");
        let placed = copy.place(&ask, &mut sink).expect("placed");
        assert_eq!(placed.remainder, Remainder::Rested(Qty::from_contracts(1)));
        copy
    })
}

#[test]
fn one_order_in_a_copy_of_a_deep_book_copies_what_it_touches() {
    let book = deep_book();
    // The book is full, so the attacker cancels one of its bids to place.
    let (copy, copied) = touch_a_copy(&book, 50_000);
    assert!(
        copied <= TOUCH_BYTES_MAX,
        "touching a copy of a 100,000-order book allocated {copied} bytes (at most {TOUCH_BYTES_MAX})"
    );
    // The two are independent: the original kept its order and did not gain the ask.
    assert!(book.get(OrderId::new(50_000)).is_some());
    assert!(book.get(OrderId::new(10_000_000)).is_none());
    assert!(copy.get(OrderId::new(50_000)).is_none());
    assert_eq!(
        copy.best_ask().map(|(p, _)| p),
        Some(Price::from_ticks(2_000_000))
    );
    assert_eq!((book.len(), copy.len()), (100_000, 100_000));
    book.check_invariants().expect("a sound original");
    copy.check_invariants().expect("a sound copy");
}

#[test]
fn a_taker_sweeping_a_copy_of_a_deep_book_copies_what_it_took() {
    let book = deep_book();
    let mut sink = MatchSink::default();
    // A sell taking the 1,000 best bids (the fill limit), in a copy.
    let (copy, copied) = allocated_by(|| {
        let mut copy = book.clone();
        let mut taker = order(
            10_000_001,
            999,
            Side::Sell,
            1,
            TimeInForce::ImmediateOrCancel,
        );
        taker.qty = Qty::from_contracts(1_000);
        let placement = copy.place(&taker, &mut sink).expect("takes");
        assert_eq!(placement.filled, Qty::from_contracts(1_000));
        copy
    });
    // The fills themselves are in the sink (1,000 of them). The book's copying follows the
    // 1,000 orders removed: their chunks of the slab, their levels, and the index shards their
    // ids fall in (about 1,000 of 2,048). 1.4 MB; before: 16 MB.
    let fills_bytes = (sink.fills.capacity() * std::mem::size_of::<Fill>()) as u64;
    assert!(
        copied <= fills_bytes + 3 * 1024 * 1024,
        "a 1,000-fill sweep of a copy allocated {copied} bytes ({fills_bytes} of them fills)"
    );
    assert_eq!((book.len(), copy.len()), (100_000, 99_000));
    assert_eq!(
        book.best_bid().map(|(p, _)| p),
        Some(Price::from_ticks(999_999))
    );
    assert_eq!(
        copy.best_bid().map(|(p, _)| p),
        Some(Price::from_ticks(998_999))
    );
    book.check_invariants().expect("a sound original");
    copy.check_invariants().expect("a sound copy");
}

/// The attack's second act: the book filled once, then emptied to a hundred orders. A book's
/// slabs and index shards grew with it; had they kept their size, every later copy would
/// still cost a pointer per chunk and shard of the full book (about 54 KB of pointers
/// copied and as many reference counts touched, per block, per such book). A book that is
/// three-quarters vacant is rebuilt, so it costs what it holds.
#[test]
fn a_book_filled_once_and_emptied_costs_what_it_holds() {
    let mut book = deep_book();
    let n = BookLimits::DEFAULT.orders_max as u64;
    for id in 101..=n {
        book.cancel(OrderId::new(id)).expect("rests");
    }
    assert_eq!(book.len(), 100);
    let (copy, copied) = touch_a_copy(&book, 50);
    assert!(
        copied <= 8 * 1024,
        "touching a copy of a once-full book of 100 orders allocated {copied} bytes"
    );
    assert_eq!((book.len(), copy.len()), (100, 100));
    book.check_invariants().expect("a sound original");
    copy.check_invariants().expect("a sound copy");
}
