//! Book behaviour, one scenario per test, written as small tables run through [`check`].
//!
//! Each line is a command and, after `=>`, what it must produce, separated by `;`:
//!
//! ```text
//! buy  t1 103 x12 [ioc|fok|post] [@acct] [stp=maker|taker|both]
//!                 => fill m1 101 x5; stp m3; rest t1 103 x2; cancel t1 x2 ioc; reject post-only
//! cancel m1       => cancelled m1 | unknown
//! reduce m1 x3    => ok
//! ```
//! An order's account is its name unless `@acct` names another. A line without `=>` must
//! produce nothing but a rest of its whole size.

use bulwark_book::*;
use bulwark_types::*;
use std::collections::BTreeMap;

struct Harness {
    book: Book,
    ids: BTreeMap<String, u64>,
    names: BTreeMap<u64, String>,
    accounts: BTreeMap<String, u64>,
}

impl Harness {
    fn new(limits: BookLimits) -> Self {
        Self {
            book: Book::new(limits),
            ids: BTreeMap::new(),
            names: BTreeMap::new(),
            accounts: BTreeMap::new(),
        }
    }

    fn id(&mut self, name: &str) -> u64 {
        let next = self.ids.len() as u64;
        let id = *self.ids.entry(name.to_string()).or_insert(next);
        self.names.insert(id, name.to_string());
        id
    }

    fn account(&mut self, name: &str) -> AccountId {
        let next = self.accounts.len() as u64;
        AccountId::new(*self.accounts.entry(name.to_string()).or_insert(next))
    }

    fn name(&self, id: OrderId) -> &str {
        &self.names[&id.get()]
    }

    fn run(&mut self, line: &str) -> Vec<String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "buy" | "sell" => self.place(&words),
            "cancel" => {
                let id = OrderId::new(self.id(words[1]));
                match self.book.cancel(id) {
                    Some(o) => vec![format!("cancelled {}", self.name(o.order_id))],
                    None => vec!["unknown".into()],
                }
            }
            "reduce" => {
                let id = OrderId::new(self.id(words[1]));
                let qty = Qty::from_contracts(words[2].trim_start_matches('x').parse().unwrap());
                match self.book.reduce(id, qty) {
                    Some(_) => vec!["ok".into()],
                    None => vec!["unknown".into()],
                }
            }
            other => panic!("unknown command {other}"),
        }
    }

    fn place(&mut self, words: &[&str]) -> Vec<String> {
        let side = if words[0] == "buy" {
            Side::Buy
        } else {
            Side::Sell
        };
        let name = words[1];
        let price = Price::from_ticks(words[2].parse().unwrap());
        let qty = Qty::from_contracts(words[3].trim_start_matches('x').parse().unwrap());
        let (mut tif, mut post_only, mut stp, mut account) = (
            TimeInForce::GoodTilCancelled,
            false,
            SelfTradePrevention::CancelMaker,
            name.to_string(),
        );
        for flag in &words[4..] {
            match *flag {
                "ioc" => tif = TimeInForce::ImmediateOrCancel,
                "fok" => tif = TimeInForce::FillOrKill,
                "post" => post_only = true,
                "stp=maker" => stp = SelfTradePrevention::CancelMaker,
                "stp=taker" => stp = SelfTradePrevention::CancelTaker,
                "stp=both" => stp = SelfTradePrevention::CancelBoth,
                acct if acct.starts_with('@') => account = acct[1..].to_string(),
                other => panic!("unknown flag {other}"),
            }
        }
        let order = NewOrder {
            order_id: OrderId::new(self.id(name)),
            account: self.account(&account),
            client_order_id: ClientOrderId::new(0),
            side,
            price,
            qty,
            time_in_force: tif,
            post_only,
            reduce_only: false,
            self_trade: stp,
        };
        let mut sink = MatchSink::default();
        let placement = match self.book.place(&order, &mut sink) {
            Ok(p) => p,
            Err(BookReject::PostOnlyWouldCross) => return vec!["reject post-only".into()],
            Err(BookReject::OrderIdInUse) => return vec!["reject duplicate".into()],
        };
        let mut out = Vec::new();
        for f in &sink.fills {
            out.push(format!(
                "fill {} {} x{}",
                self.name(f.maker_order_id),
                f.price.ticks(),
                f.qty
            ));
        }
        for c in &sink.maker_cancels {
            out.push(format!("stp {}", self.name(c.order_id)));
        }
        match placement.remainder {
            Remainder::None => {}
            Remainder::Rested(q) => out.push(format!("rest {name} {} x{q}", price.ticks())),
            Remainder::Cancelled { qty, reason } => {
                let why = match reason {
                    CancelReason::ImmediateOrCancel => "ioc",
                    CancelReason::FillOrKill => "fok",
                    CancelReason::SelfTrade => "stp",
                    CancelReason::MatchLimit => "match-limit",
                    CancelReason::BookFull => "book-full",
                    other => panic!("book never cancels for {other:?}"),
                };
                out.push(format!("cancel {name} x{qty} {why}"));
            }
        }
        out
    }
}

fn check_with(limits: BookLimits, script: &str) -> Harness {
    let mut h = Harness::new(limits);
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (command, expected) = match line.split_once("=>") {
            Some((c, e)) => (
                c.trim(),
                e.split(';')
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>(),
            ),
            None => {
                let w: Vec<&str> = line.split_whitespace().collect();
                (line, vec![format!("rest {} {} {}", w[1], w[2], w[3])])
            }
        };
        let got = h.run(command);
        assert_eq!(got, expected, "after `{command}`");
        h.book.check_invariants().unwrap();
    }
    h
}

fn check(script: &str) -> Harness {
    check_with(BookLimits::DEFAULT, script)
}

#[test]
fn taker_sweeps_best_price_first_then_rests_remainder() {
    check(
        "
        sell m1 101 x5
        sell m2 102 x5
        buy  t1 103 x12  => fill m1 101 x5; fill m2 102 x5; rest t1 103 x2
        ",
    );
}

#[test]
fn equal_prices_fill_in_arrival_order() {
    check(
        "
        buy m1 100 x3
        buy m2 100 x3
        buy m3 100 x3
        sell t1 100 x7 => fill m1 100 x3; fill m2 100 x3; fill m3 100 x1
        sell t2 99 x1 => fill m3 100 x1
        ",
    );
}

#[test]
fn trades_happen_at_the_makers_price() {
    check(
        "
        sell m1 100 x1
        buy t1 250 x1 => fill m1 100 x1
        ",
    );
}

#[test]
fn limit_that_does_not_cross_rests() {
    let h = check(
        "
        sell m1 105 x5
        buy t1 104 x5
        ",
    );
    assert_eq!(
        h.book.best_bid(),
        Some((Price::from_ticks(104), Qty::from_contracts(5)))
    );
    assert_eq!(
        h.book.best_ask(),
        Some((Price::from_ticks(105), Qty::from_contracts(5)))
    );
}

#[test]
fn immediate_or_cancel_cancels_what_does_not_fill() {
    check(
        "
        sell m1 101 x2
        buy t1 101 x5 ioc => fill m1 101 x2; cancel t1 x3 ioc
        buy t2 101 x5 ioc => cancel t2 x5 ioc
        ",
    );
}

#[test]
fn fill_or_kill_fills_entirely_or_leaves_the_book_untouched() {
    check(
        "
        sell m1 101 x2
        sell m2 102 x2
        buy t1 101 x3 fok => cancel t1 x3 fok
        buy t2 102 x3 fok => fill m1 101 x2; fill m2 102 x1
        buy t3 102 x1 fok => fill m2 102 x1
        ",
    );
}

#[test]
fn post_only_that_would_cross_is_rejected_and_one_that_does_not_rests() {
    check(
        "
        sell m1 101 x2
        buy p1 101 x1 post => reject post-only
        buy p2 100 x1 post
        sell p3 100 x1 post => reject post-only
        ",
    );
}

#[test]
fn self_trade_cancel_maker_removes_own_order_and_keeps_matching() {
    check(
        "
        sell m1 100 x2 @alice
        sell m2 100 x2 @bob
        buy t1 100 x3 @alice stp=maker => fill m2 100 x2; stp m1; rest t1 100 x1
        ",
    );
}

#[test]
fn self_trade_cancel_taker_keeps_own_order_and_cancels_incoming_rest() {
    check(
        "
        sell m1 100 x2 @bob
        sell m2 100 x2 @alice
        sell m3 100 x2 @bob
        buy t1 100 x5 @alice stp=taker => fill m1 100 x2; cancel t1 x3 stp
        cancel m2 => cancelled m2
        ",
    );
}

#[test]
fn self_trade_cancel_both_removes_both() {
    check(
        "
        sell m1 100 x2 @alice
        buy t1 100 x5 @alice stp=both => stp m1; cancel t1 x5 stp
        cancel m1 => unknown
        ",
    );
}

#[test]
fn fill_or_kill_does_not_count_own_orders_it_would_stop_at() {
    check(
        "
        sell m1 100 x2 @bob
        sell m2 100 x2 @alice
        sell m3 100 x2 @bob
        buy t1 100 x4 fok @alice stp=taker => cancel t1 x4 fok
        buy t2 100 x4 fok @alice stp=maker => fill m1 100 x2; fill m3 100 x2; stp m2
        ",
    );
}

#[test]
fn cancel_removes_the_order_and_a_second_cancel_finds_nothing() {
    let h = check(
        "
        buy m1 100 x2
        buy m2 100 x3
        cancel m1 => cancelled m1
        cancel m1 => unknown
        sell t1 100 x3 => fill m2 100 x3
        ",
    );
    assert!(h.book.is_empty());
}

#[test]
fn reduce_keeps_time_priority() {
    check(
        "
        buy m1 100 x5
        buy m2 100 x5
        reduce m1 x1 => ok
        sell t1 100 x2 => fill m1 100 x1; fill m2 100 x1
        ",
    );
}

#[test]
fn match_limit_cancels_the_rest_of_a_sweeping_taker() {
    let limits = BookLimits {
        orders_max: 100,
        fills_per_match_max: 2,
    };
    check_with(
        limits,
        "
        sell m1 100 x1
        sell m2 101 x1
        sell m3 102 x1
        buy t1 105 x3 => fill m1 100 x1; fill m2 101 x1; cancel t1 x1 match-limit
        ",
    );
}

#[test]
fn full_book_cancels_a_remainder_instead_of_resting_it() {
    let limits = BookLimits {
        orders_max: 2,
        fills_per_match_max: 10,
    };
    check_with(
        limits,
        "
        buy m1 100 x1
        buy m2 99 x1
        buy m3 98 x1 => cancel m3 x1 book-full
        sell t1 100 x1 => fill m1 100 x1
        buy m4 98 x1
        ",
    );
}

#[test]
fn duplicate_order_id_is_refused() {
    check(
        "
        buy m1 100 x1
        buy m1 99 x1 => reject duplicate
        ",
    );
}

#[test]
fn depth_and_priority_iteration_are_best_first() {
    let h = check(
        "
        buy b1 99 x1
        buy b2 100 x2
        buy b3 100 x3
        sell a1 102 x4
        sell a2 101 x5
        ",
    );
    let depth = h.book.depth(Side::Buy, 10);
    assert_eq!(
        depth,
        vec![
            (Price::from_ticks(100), Qty::from_contracts(5), 2),
            (Price::from_ticks(99), Qty::from_contracts(1), 1)
        ]
    );
    let bids: Vec<u64> = h.book.orders(Side::Buy).map(|o| o.order_id.get()).collect();
    assert_eq!(bids, vec![1, 2, 0]);
    let asks: Vec<u64> = h
        .book
        .orders(Side::Sell)
        .map(|o| o.order_id.get())
        .collect();
    assert_eq!(asks, vec![4, 3]);
}

#[test]
fn restore_refuses_crossing_and_duplicate_orders() {
    let mut book = Book::new(BookLimits::DEFAULT);
    let order = |id: u64, side, price: i64| RestingOrder {
        order_id: OrderId::new(id),
        account: AccountId::new(id),
        client_order_id: ClientOrderId::new(0),
        side,
        price: Price::from_ticks(price),
        qty: Qty::from_contracts(1),
        reduce_only: false,
        post_only: false,
        self_trade: SelfTradePrevention::CancelMaker,
    };
    book.restore(order(1, Side::Buy, 100)).unwrap();
    assert!(book.restore(order(1, Side::Sell, 200)).is_err());
    assert!(book.restore(order(2, Side::Sell, 100)).is_err());
    assert!(
        book.restore(RestingOrder {
            qty: Qty::ZERO,
            ..order(3, Side::Sell, 101)
        })
        .is_err()
    );
    book.restore(order(4, Side::Sell, 101)).unwrap();
    book.check_invariants().unwrap();
}
