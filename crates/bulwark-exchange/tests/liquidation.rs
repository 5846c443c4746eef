//! Liquidation and portfolio margin through the state machine: stepwise reduction through the
//! book, the backstop and the insurance fund, deficit cover by auto-deleveraging, and the
//! account's choice of margin method. Every block also runs the exchange's invariants
//! (money conserved, positions net to zero, no unreported negative equity).

mod common;

use bulwark_exchange::*;
use bulwark_types::*;
use common::*;
use proptest::prelude::*;

fn liquidation_events(outcome: &BlockOutcome) -> Vec<Event> {
    outcome.liquidation_events().to_vec()
}

fn perp_index(v: &mut Venue, usdc: i64) -> BlockOutcome {
    v.set_prices(
        usdc,
        &[(BTC_PERP, usdc), (BTC_CALL, 5_000), (BTC_PUT, 5_000)],
    );
    v.block(vec![])
}

/// The defaults with the backstop's depth cap off: the backstop takes over whatever the book
/// does not (these tests' books never rest depth for minutes, so with the cap on it would
/// take nothing; see `backstop_cap`).
fn uncapped() -> ExchangeParams {
    let mut params = ExchangeParams::defaults();
    params.risk_limits.as_mut().unwrap().backstop_depth_bps = 0;
    params
}

/// `params` with resting quotes kept whatever the index does. A test that steps the index
/// 1.5% or more in one block and liquidates into bids the step left behind needs them: the
/// default cancels those first (`PriceBand::stale_quote_bps`, see `oracle.rs`
/// `quotes_the_index_left_behind_are_cancelled_before_the_block_trades`).
fn quotes_kept(mut params: ExchangeParams) -> ExchangeParams {
    params.band_perpetual.stale_quote_bps = 0;
    params
}

/// dave: 1,000 USDC, long 400 perpetual contracts (0.4 BTC) at 100,000 from bob.
fn leveraged_dave() -> Venue {
    leveraged_dave_with(ExchangeParams::defaults())
}

fn leveraged_dave_with(params: ExchangeParams) -> Venue {
    let mut v = Venue::standard_with(params);
    v.fund("dave", 1_000);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 400, 100_000).0, None);
    assert_eq!(v.order("dave", BTC_PERP, Side::Buy, 400, 100_000).0, None);
    assert_eq!(v.position("dave", BTC_PERP), 400);
    v
}

#[test]
fn an_account_below_maintenance_is_cut_a_step_per_block_through_the_book() {
    let mut v = leveraged_dave();
    let dave = v.account("dave");
    // dave also rests an order: liquidation cancels it first.
    assert_eq!(v.order("dave", BTC_PERP, Side::Sell, 10, 101_000).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 1_000, 98_500).0, None);
    // Down 1.5%: equity 980 - 600 = 380 < maintenance 1% of 39,400.
    let out = perp_index(&mut v, 98_500);
    let end = liquidation_events(&out);
    assert!(matches!(end[0], Event::MarginCall { account, .. } if account == dave));
    assert!(end.iter().any(|e| matches!(e,
        Event::OrderCancelled { account, reason: CancelReason::Liquidation, .. } if *account == dave)));
    let step = end
        .iter()
        .find_map(|e| match e {
            Event::LiquidationStep {
                account,
                qty,
                filled,
                fee,
                side,
                ..
            } if *account == dave => Some((*qty, *filled, *fee, *side)),
            _ => None,
        })
        .expect("a step");
    // A quarter of 400 would leave dave just under maintenance for the next tick to sink:
    // the step is what brings maintenance down to equity / 2.5 (restore_bps 25,000):
    // 1% x 0.001 BTC x 98,500 x (400 - cut) <= 380 / 2.5, so a cut of 246.
    assert_eq!(
        step.0,
        Qty::from_contracts(246),
        "restores 2.5x maintenance"
    );
    assert_eq!(step.1, Qty::from_contracts(246), "alice's bid absorbs it");
    assert_eq!(step.3, Side::Sell);
    // 0.5% of 246 contracts x 0.001 BTC x 98,500.
    assert_eq!(step.2, Money::from_micros(121_155_000));
    assert_eq!(v.exchange.ledger().insurance_fund, step.2);
    assert_eq!(v.position("dave", BTC_PERP), 154);
    let m = v.exchange.account_margin(dave).unwrap();
    assert!(
        m.equity >= m.requirement.maintenance,
        "one step restores it"
    );
    // Following blocks continue, never more than a quarter (rounded up) at a time, until dave
    // is back above maintenance or flat.
    let mut position = 154;
    for _ in 0..20 {
        perp_index(&mut v, 98_500);
        let now = v.position("dave", BTC_PERP);
        assert!(position - now <= (position + 3) / 4, "{position} -> {now}");
        position = now;
        let m = v.exchange.account_margin(dave).unwrap();
        if m.equity >= m.requirement.maintenance {
            break;
        }
    }
    let m = v.exchange.account_margin(dave).unwrap();
    assert!(position == 0 || m.equity >= m.requirement.maintenance);
    assert!(
        position > 0,
        "stepping stops once maintenance is met: {position}"
    );
}

#[test]
fn a_bankrupt_account_with_an_empty_fund_is_deleveraged_against_the_profitable_side() {
    let mut v = leveraged_dave();
    let (dave, bob) = (v.account("dave"), v.account("bob"));
    let carol_cash = v.cash("carol");
    let bob_cash = v.cash("bob");
    // Down 5%: dave loses 2,000 on 980 of equity.
    let out = perp_index(&mut v, 95_000);
    let end = liquidation_events(&out);
    let deleveraged: Vec<_> = end
        .iter()
        .filter_map(|e| match e {
            Event::Deleveraged {
                account,
                counterparty,
                position,
                charged,
                price,
                ..
            } => Some((*account, *counterparty, *position, *charged, *price)),
            _ => None,
        })
        .collect();
    assert_eq!(
        deleveraged,
        vec![(
            dave,
            bob,
            400,
            Money::from_usdc(1_020),
            UnitPrice::from_usdc(95_000)
        )]
    );
    assert!(end.contains(&Event::DeficitCovered {
        account: dave,
        from_fund: Money::ZERO,
        from_deleveraging: Money::from_usdc(1_020),
        uncovered: Money::ZERO,
    }));
    assert_eq!(v.position("dave", BTC_PERP), 0);
    assert_eq!(v.position("bob", BTC_PERP), 0);
    assert_eq!(v.exchange.account_margin(dave).unwrap().equity, Money::ZERO);
    // bob received dave's 400 contracts at 95,000 (paying 38,000 to close his short) and
    // paid the 1,020 deficit.
    assert_eq!(
        v.cash("bob"),
        bob_cash
            .checked_sub(Money::from_usdc(38_000 + 1_020))
            .unwrap()
    );
    assert_eq!(
        v.cash("carol"),
        carol_cash,
        "no position, no share of the loss"
    );
}

#[test]
fn a_funded_insurance_fund_takes_a_bankrupt_position_through_the_backstop() {
    let mut v = leveraged_dave_with(uncapped());
    let (dave, bob) = (v.account("dave"), v.account("bob"));
    let tx = v.tx(
        "bob",
        TxBody::FundInsurance {
            amount: Money::from_usdc(10_000),
        },
    );
    assert_eq!(v.run(tx).0, Some(RejectReason::NotBridge));
    let tx = v.bridge_tx(TxBody::FundInsurance {
        amount: Money::from_usdc(10_000),
    });
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    assert_eq!(
        events,
        vec![Event::InsuranceFunded {
            amount: Money::from_usdc(10_000),
            fund: Money::from_usdc(10_000)
        }]
    );
    let bob_cash = v.cash("bob");
    let out = perp_index(&mut v, 95_000);
    let end = liquidation_events(&out);
    assert!(end.contains(&Event::BackstopTakeover {
        account: dave,
        instrument: v.id(BTC_PERP),
        position: 400,
        price: UnitPrice::from_usdc(95_000),
    }));
    assert!(end.contains(&Event::DeficitCovered {
        account: dave,
        from_fund: Money::from_usdc(1_020),
        from_deleveraging: Money::ZERO,
        uncovered: Money::ZERO,
    }));
    assert!(!end.iter().any(|e| matches!(e, Event::Deleveraged { .. })));
    assert_eq!(v.cash("bob"), bob_cash, "the fund paid, not the other side");
    assert_eq!(v.position("bob", BTC_PERP), -400);
    assert_eq!(
        v.exchange.ledger().insurance_fund,
        Money::from_usdc(10_000 - 1_020)
    );
    let _ = bob;
}

#[test]
fn a_bankrupt_position_beyond_the_backstops_room_is_deleveraged_at_the_bankruptcy_price() {
    // The same crash with the backstop capped at the depth the book has shown (none): the
    // fund covers the deficit but does not inherit the position. bob takes dave's 400
    // contracts at 95,000 and pays the deficit: closing at dave's bankruptcy price.
    let mut v = leveraged_dave();
    let (dave, bob) = (v.account("dave"), v.account("bob"));
    let tx = v.bridge_tx(TxBody::FundInsurance {
        amount: Money::from_usdc(10_000),
    });
    assert_eq!(v.run(tx).0, None);
    let out = perp_index(&mut v, 95_000);
    let end = liquidation_events(&out);
    assert!(
        !end.iter()
            .any(|e| matches!(e, Event::BackstopTakeover { .. }))
    );
    assert!(end.contains(&Event::Deleveraged {
        account: dave,
        counterparty: bob,
        instrument: v.id(BTC_PERP),
        position: 400,
        price: UnitPrice::from_usdc(95_000),
        charged: Money::from_usdc(1_020),
    }));
    assert!(end.contains(&Event::DeficitCovered {
        account: dave,
        from_fund: Money::ZERO,
        from_deleveraging: Money::from_usdc(1_020),
        uncovered: Money::ZERO,
    }));
    assert_eq!(v.exchange.ledger().insurance_fund, Money::from_usdc(10_000));
    assert_eq!(v.position("bob", BTC_PERP), 0);
    assert_eq!(v.exchange.account_margin(dave).unwrap().equity, Money::ZERO);
}

#[test]
fn the_backstop_takes_over_what_the_book_has_shown_and_deleverages_the_rest() {
    let mut v = Venue::standard_with(quotes_kept(ExchangeParams::defaults()));
    let perp = v.id(BTC_PERP);
    // alice quotes 100 contracts each side, 1% from the index, for five minutes (one
    // half-life, taken a second at a time): the depth average reaches about two fifths.
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 100, 99_000).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Sell, 100, 101_000).0, None);
    for _ in 0..300 {
        v.block(vec![]);
    }
    let average = v.exchange.instrument(perp).unwrap().depth.average();
    assert!((35..=45).contains(&average), "{average}");
    let tx = v.bridge_tx(TxBody::FundInsurance {
        amount: Money::from_usdc(10_000),
    });
    assert_eq!(v.run(tx).0, None);
    v.fund("dave", 1_000);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 400, 100_000).0, None);
    assert_eq!(v.order("dave", BTC_PERP, Side::Buy, 400, 100_000).0, None);
    let (dave, bob) = (v.account("dave"), v.account("bob"));
    // Down 1.5%: dave's step of 246 (see the first test) sells 100 to alice's bid; of the
    // other 146 the backstop takes what the book has shown (the depth average, below the last
    // sample of 100: one book at
    // `backstop_depth_bps` 10,000) and the rest closes at the mark against bob's short,
    // charging nobody (dave is solvent).
    let out = perp_index(&mut v, 98_500);
    let end = liquidation_events(&out);
    let average = v.exchange.instrument(perp).unwrap().depth.shown();
    assert_eq!(
        average,
        v.exchange.instrument(perp).unwrap().depth.average(),
        "alice's 100 still rested when the block sampled the book"
    );
    assert!(end.iter().any(|e| matches!(e,
        Event::LiquidationStep { account, qty, filled, .. }
            if *account == dave && qty.contracts() == 246 && filled.contracts() == 100)));
    let backstop = v.exchange.backstop().expect("opened");
    assert_eq!(
        v.exchange.account(backstop).unwrap().position(perp),
        average
    );
    assert!(end.contains(&Event::BackstopTakeover {
        account: dave,
        instrument: perp,
        position: average,
        price: UnitPrice::from_usdc(98_500),
    }));
    assert!(end.contains(&Event::Deleveraged {
        account: dave,
        counterparty: bob,
        instrument: perp,
        position: 146 - average,
        price: UnitPrice::from_usdc(98_500),
        charged: Money::ZERO,
    }));
    assert_eq!(v.position("dave", BTC_PERP), 154);
    assert_eq!(v.position("bob", BTC_PERP), -400 + 146 - average);
    // Full, the backstop takes nothing more of the same side.
    v.fund("erin", 1_000);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 400, 98_500).0, None);
    assert_eq!(v.order("erin", BTC_PERP, Side::Buy, 400, 98_500).0, None);
    let out = perp_index(&mut v, 97_000);
    let erin = v.account("erin");
    assert!(!liquidation_events(&out).iter().any(|e| matches!(e,
        Event::BackstopTakeover { account, .. } if *account == erin)));
    assert!(v.exchange.account(backstop).unwrap().position(perp) <= average);
}

#[test]
fn the_fund_covers_a_deficit_through_the_backstop_which_then_unwinds_into_the_book() {
    // Whole positions per step, so erin's liquidation fills the fund in one block.
    let mut params = quotes_kept(uncapped());
    params.liquidation.as_mut().unwrap().step_bps = 10_000;
    let mut v = Venue::standard_with(params);
    v.fund("dave", 1_000);
    v.fund("erin", 1_990);
    for (name, qty) in [("dave", 400), ("erin", 600)] {
        assert_eq!(v.order("bob", BTC_PERP, Side::Sell, qty, 100_000).0, None);
        assert_eq!(v.order(name, BTC_PERP, Side::Buy, qty, 100_000).0, None);
    }
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 5_000, 97_000).0, None);
    let (dave, erin) = (v.account("dave"), v.account("erin"));
    // At 97,400 dave is at -60 (bankrupt, the fund is empty: deleveraged); erin at 400 is
    // below her 584 maintenance and sold into alice's bids, paying the fee into the fund.
    let out = perp_index(&mut v, 97_400);
    let end = liquidation_events(&out);
    assert!(end.contains(&Event::DeficitCovered {
        account: dave,
        from_fund: Money::ZERO,
        from_deleveraging: Money::from_usdc(60),
        uncovered: Money::ZERO,
    }));
    assert!(end.iter().any(|e| matches!(e,
        Event::LiquidationStep { account, filled, .. } if *account == erin && filled.contracts() == 600)));
    let fund = v.exchange.ledger().insurance_fund;
    assert!(fund.is_positive());
    // frank's deficit at 94,000 is smaller than the fund: the backstop takes his position.
    v.fund("frank", 100);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 40, 97_400).0, None);
    assert_eq!(v.order("frank", BTC_PERP, Side::Buy, 40, 97_400).0, None);
    let frank = v.account("frank");
    let fund_before = v.exchange.ledger().insurance_fund;
    let out = perp_index(&mut v, 94_000);
    let end = liquidation_events(&out);
    assert!(
        end.iter().any(|e| matches!(e,
            Event::BackstopTakeover { account, position: 40, .. } if *account == frank)),
        "{end:?}"
    );
    let from_fund = end
        .iter()
        .find_map(|e| match e {
            Event::DeficitCovered {
                account, from_fund, ..
            } if *account == frank => Some(*from_fund),
            _ => None,
        })
        .expect("frank closed out");
    assert!(from_fund.is_positive() && from_fund <= fund_before);
    assert_eq!(
        v.exchange.account_margin(frank).unwrap().equity,
        Money::ZERO
    );
    let backstop = v.exchange.backstop().expect("opened");
    let perp = v.id(BTC_PERP);
    // The backstop offers its position to the book, a tenth per block, and its profit and
    // loss lands in the fund.
    let mut sold = false;
    let mut marked = false;
    for _ in 0..10 {
        let out = perp_index(&mut v, 94_000);
        sold |= out
            .trades()
            .any(|t| t.taker_account == backstop && t.taker_side == Side::Sell);
        marked |= out
            .liquidation_events()
            .iter()
            .any(|e| matches!(e, Event::InsuranceFundMarked { .. }));
    }
    assert!(sold && marked, "the backstop unwinds through the book");
    assert!(v.exchange.account(backstop).unwrap().position(perp) < 40);
}

#[test]
fn with_liquidation_off_a_crash_leaves_the_deficit_where_it_fell() {
    // Turned off, the same crash leaves dave underwater and nobody else touched.
    let mut params = ExchangeParams::defaults();
    params.liquidation = None;
    let mut v = Venue::standard_with(params);
    v.fund("dave", 1_000);
    v.order("bob", BTC_PERP, Side::Sell, 400, 100_000);
    v.order("dave", BTC_PERP, Side::Buy, 400, 100_000);
    let out = perp_index(&mut v, 95_000);
    assert!(out.liquidation_events().is_empty());
    let dave = v.account("dave");
    assert!(
        v.exchange
            .account_margin(dave)
            .unwrap()
            .equity
            .is_negative()
    );
}

// ---- portfolio margin ----

/// alice holds a conversion: long 10 calls, short 10 puts (strike 100,000) and short 100
/// perpetual contracts: 0.1 BTC long synthetically, 0.1 BTC short in the perpetual.
fn hedged_alice() -> Venue {
    hedged_alice_with(ExchangeParams::defaults())
}

fn hedged_alice_with(params: ExchangeParams) -> Venue {
    let mut v = Venue::standard_with(params);
    for (side, instrument, qty, price) in [
        (Side::Sell, BTC_CALL, 10, 5_000),
        (Side::Buy, BTC_PUT, 10, 5_000),
        (Side::Buy, BTC_PERP, 100, 100_000),
    ] {
        assert_eq!(v.order("bob", instrument, side, qty, price).0, None);
        assert_eq!(
            v.order("alice", instrument, side.opposite(), qty, price).0,
            None
        );
    }
    v
}

#[test]
fn portfolio_margin_charges_a_hedged_book_a_fraction_of_standard_margin() {
    let mut v = hedged_alice();
    let alice = v.account("alice");
    let standard = v.exchange.account_margin(alice).unwrap().requirement;
    let tx = v.tx("alice", TxBody::SetMarginMode { portfolio: true });
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    assert!(events.contains(&Event::MarginModeChanged {
        account: alice,
        portfolio: true
    }));
    let portfolio = v.exchange.account_margin(alice).unwrap().requirement;
    // Short put add-on: 1% x 100,000 x 0.01 BTC x 10 = 100 USDC; the synthetic long and the
    // short perpetual cancel in every scenario (same vol for call and put).
    assert!(
        portfolio.maintenance >= Money::from_usdc(100)
            && portfolio.maintenance < Money::from_usdc(110),
        "{portfolio:?}"
    );
    assert!(
        portfolio.initial.micros() * 5 < standard.initial.micros(),
        "{portfolio:?} vs {standard:?}"
    );
    let tx = v.tx("alice", TxBody::SetMarginMode { portfolio: true });
    assert_eq!(v.run(tx).0, Some(RejectReason::MarginModeUnchanged));
}

#[test]
fn portfolio_margin_refuses_orders_beyond_initial_with_the_shortfall() {
    let mut v = Venue::standard();
    v.fund("dave", 100);
    let tx = v.tx("dave", TxBody::SetMarginMode { portfolio: true });
    assert_eq!(v.run(tx).0, None);
    let (rejection, _) = v.order("dave", BTC_PUT, Side::Sell, 10, 5_000);
    match rejection {
        Some(RejectReason::MarginInsufficient { shortfall }) => {
            assert!(shortfall.is_positive())
        }
        other => panic!("expected a margin rejection, got {other:?}"),
    }
}

#[test]
fn portfolio_margin_is_refused_where_it_is_not_offered() {
    let mut params = ExchangeParams::defaults();
    params.portfolio = None;
    let mut v = Venue::with_params(params);
    v.fund("dave", 100);
    let tx = v.tx("dave", TxBody::SetMarginMode { portfolio: true });
    assert_eq!(v.run(tx).0, Some(RejectReason::PortfolioMarginUnavailable));
    let tx = v.tx("dave", TxBody::SetMarginMode { portfolio: false });
    assert_eq!(v.run(tx).0, Some(RejectReason::MarginModeUnchanged));
}

#[test]
fn portfolio_state_survives_a_snapshot() {
    let mut v = hedged_alice();
    let tx = v.tx("alice", TxBody::SetMarginMode { portfolio: true });
    assert_eq!(v.run(tx).0, None);
    for index in [99_000, 97_000, 101_000] {
        perp_index(&mut v, index);
    }
    let alice = v.account("alice");
    let restored = Exchange::restore(&v.exchange.snapshot()).unwrap();
    assert_eq!(restored.snapshot(), v.exchange.snapshot());
    assert_eq!(
        restored.account_margin(alice),
        v.exchange.account_margin(alice)
    );
}

// ---- property: crashes through liquidation keep every invariant ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random leveraged populations (longs and shorts in the perpetual and the options) through
    /// random index paths: every block keeps the invariants (checked inside `Venue::block`,
    /// including that no negative equity goes unreported), and an account holding nothing
    /// never loses money to anyone else's liquidation.
    #[test]
    fn random_books_through_random_crashes_keep_every_invariant(
        traders in prop::collection::vec((200i64..5_000, -600i64..600, -20i64..20), 2..8),
        depth in 0i64..3_000,
        path in prop::collection::vec(-1_200i64..1_200, 1..12),
        portfolio in any::<bool>(),
    ) {
        let mut v = Venue::standard();
        v.fund("mm", 10_000_000);
        // A market maker's resting bids and asks around the index give liquidations a book.
        if depth > 0 {
            v.order("mm", BTC_PERP, Side::Buy, depth, 98_000);
            v.order("mm", BTC_PERP, Side::Sell, depth, 102_000);
        }
        for (n, (cash, perp, puts)) in traders.iter().enumerate() {
            let name = format!("t{n}");
            v.fund(&name, *cash);
            if portfolio && n % 2 == 0 {
                let tx = v.tx(&name, TxBody::SetMarginMode { portfolio: true });
                v.run(tx);
            }
            if *perp != 0 {
                let side = if *perp > 0 { Side::Buy } else { Side::Sell };
                v.order("bob", BTC_PERP, side.opposite(), perp.abs(), 100_000);
                v.order(&name, BTC_PERP, side, perp.abs(), 100_000);
            }
            if *puts != 0 {
                let side = if *puts > 0 { Side::Buy } else { Side::Sell };
                v.order("carol", BTC_PUT, side.opposite(), puts.abs(), 5_000);
                v.order(&name, BTC_PUT, side, puts.abs(), 5_000);
            }
        }
        v.fund("idle", 5_000);
        let idle = v.account("idle");
        let mut index = 100_000i64;
        for step_bps in path {
            index = (index * (10_000 + step_bps) / 10_000).max(1_000);
            // Puts move with the index, staying above intrinsic.
            let put = (100_000 - index).max(0) + 3_000;
            v.set_prices(index, &[(BTC_PERP, index), (BTC_CALL, 3_000), (BTC_PUT, put)]);
            let outcome = v.block(vec![]);
            v.exchange.check_deficits(outcome.liquidation_events()).unwrap();
            prop_assert_eq!(v.exchange.account(idle).unwrap().cash, Money::from_usdc(5_000));
        }
    }
}

/// A state with a backstop holding a position, a funded insurance fund, a portfolio-margined
/// account and resting orders restores to itself. With `BULWARK_FUZZ_SEED_DIR` set, its body
/// (without the digest, which the fuzz target appends) is written there as the
/// `snapshot_restore` seed.
#[test]
fn a_state_after_liquidation_restores_to_itself() {
    let mut v = hedged_alice_with(uncapped());
    let tx = v.tx("alice", TxBody::SetMarginMode { portfolio: true });
    assert_eq!(v.run(tx).0, None);
    v.fund("dave", 1_000);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 400, 100_000).0, None);
    assert_eq!(v.order("dave", BTC_PERP, Side::Buy, 400, 100_000).0, None);
    let tx = v.bridge_tx(TxBody::FundInsurance {
        amount: Money::from_usdc(10_000),
    });
    assert_eq!(v.run(tx).0, None);
    assert_eq!(v.order("carol", BTC_PERP, Side::Buy, 10, 95_500).0, None);
    perp_index(&mut v, 95_000);
    let backstop = v
        .exchange
        .backstop()
        .expect("dave's position went to the backstop");
    assert!(
        v.exchange
            .account(backstop)
            .unwrap()
            .position(v.id(BTC_PERP))
            > 0
    );
    let bytes = v.exchange.snapshot();
    let restored = Exchange::restore(&bytes).unwrap();
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.backstop(), Some(backstop));
    if let Ok(dir) = std::env::var("BULWARK_FUZZ_SEED_DIR") {
        let body = &bytes[..bytes.len() - 32];
        std::fs::write(std::path::Path::new(&dir).join("seed-0"), body).unwrap();
    }
}

#[test]
fn liquidation_orders_are_throttled_per_instrument_per_block() {
    let mut params = uncapped();
    params
        .liquidation
        .as_mut()
        .unwrap()
        .orders_per_instrument_max = 1;
    let mut v = Venue::standard_with(params);
    for name in ["dave", "erin"] {
        v.fund(name, 1_000);
        assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 400, 100_000).0, None);
        assert_eq!(v.order(name, BTC_PERP, Side::Buy, 400, 100_000).0, None);
    }
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 1_000, 98_500).0, None);
    let steps = |outcome: &BlockOutcome| {
        outcome
            .liquidation_events()
            .iter()
            .filter(|e| matches!(e, Event::LiquidationStep { .. }))
            .count()
    };
    // Both are below maintenance at 98,500; the book takes one liquidation order a block.
    let first = perp_index(&mut v, 98_500);
    let calls = first
        .liquidation_events()
        .iter()
        .filter(|e| matches!(e, Event::MarginCall { .. }))
        .count();
    // One step trades through the book; the other account's step does not wait while it
    // sinks: the book has had its order, so the step passes to the backstop at the mark (the
    // first step's fee put something in the fund to back it).
    let filled: Vec<i64> = first
        .liquidation_events()
        .iter()
        .filter_map(|e| match e {
            Event::LiquidationStep { filled, .. } => Some(filled.contracts()),
            _ => None,
        })
        .collect();
    assert_eq!((calls, steps(&first)), (2, 2));
    assert_eq!(filled.iter().filter(|f| **f > 0).count(), 1, "{filled:?}");
    assert!(
        first
            .liquidation_events()
            .iter()
            .any(|e| matches!(e, Event::BackstopTakeover { .. }))
    );
    assert_eq!(
        v.position("dave", BTC_PERP) + v.position("erin", BTC_PERP),
        2 * 154
    );
}

/// Funding moves a holder's cash without a trade, so the liquidation pass's screen (which
/// skips accounts proven above maintenance) must count it: an account drained by funding
/// alone is margin-called in the block its equity falls below maintenance, not later.
#[test]
fn an_account_drained_by_funding_alone_is_margin_called_on_time() {
    let mut v = leveraged_dave();
    let dave = v.account("dave");
    // Mark 98,700: equity 1,000 - 520 = 480 over maintenance 1% x 39,480 = 394.80.
    // Index 97,700: a 1.02% premium, so longs pay the clamped 750 ppm each hourly interval,
    // 29.61 USDC for dave's 400 contracts.
    v.set_prices(
        97_700,
        &[(BTC_PERP, 98_700), (BTC_CALL, 5_000), (BTC_PUT, 5_000)],
    );
    let mut called_at = None;
    let mut paid = Money::ZERO;
    for block in 0..12 {
        v.time_ms += 3_600_000;
        let out = v.block(vec![]);
        for e in &out.events {
            if let Event::FundingPaid { per_contract, .. } = e {
                paid = paid.checked_add(*per_contract).unwrap();
            }
        }
        if out
            .liquidation_events()
            .iter()
            .any(|e| matches!(e, Event::MarginCall { account, .. } if *account == dave))
        {
            called_at = Some(block);
            break;
        }
        let m = v.exchange.account_margin(dave).unwrap();
        assert!(
            m.equity >= m.requirement.maintenance,
            "block {block}: below maintenance ({} < {}) without a margin call",
            m.equity,
            m.requirement.maintenance
        );
    }
    // 85.20 of slack: 3 payments of 0.074 per contract (29.61 for 400) cross it.
    assert_eq!(paid, Money::from_micros(222_075));
    assert_eq!(called_at, Some(2));
}

/// A proposer orders its block and sees the liquidation orders it will end with. With the
/// pass after the block's transactions (as before 2026-12-05), its own account (carol) takes
/// the bids a liquidation order would meet and bids the contracts back at the order's limit,
/// 2.5% under the mark: dave's liquidation sells to her there. The pass runs on the block's
/// prices right before the block's first transaction that may take liquidity (carol's): dave's
/// order meets the book the previous block left, less the stale bid bob pulled and plus the
/// bid he requoted, and sells at bob's and alice's bids.
#[test]
fn a_proposer_s_orders_cannot_come_ahead_of_the_liquidation_pass() {
    for before_orders in [true, false] {
        let mut params = ExchangeParams::defaults();
        params.liquidation.as_mut().unwrap().before_orders = before_orders;
        let mut v = leveraged_dave_with(params);
        let (dave, carol) = (v.account("dave"), v.account("carol"));
        let (alice, bob) = (v.account("alice"), v.account("bob"));
        // A thin book: alice bids 100 contracts at 98,400; bob 10 at 98,450.
        assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 100, 98_400).0, None);
        assert_eq!(v.order("bob", BTC_PERP, Side::Buy, 10, 98_450).0, None);
        // The next block marks 1.5% down: dave falls below maintenance. bob pulls his bid at
        // its front (cancels come first) and requotes 10 at 98,420; carol's two orders ride
        // in it.
        mark_down_to_98_500(&mut v);
        let perp = v.id(BTC_PERP);
        let pull = v.tx(
            "bob",
            TxBody::CancelAll {
                instrument: Some(perp),
            },
        );
        let requote = limit(perp, Side::Buy, 10, UnitPrice::from_usdc(98_420), 3);
        let requote = v.tx("bob", TxBody::PlaceOrder(requote));
        let take = OrderRequest::limit(
            perp,
            ClientOrderId::new(1),
            Side::Sell,
            Qty::from_contracts(110),
            UnitPrice::from_usdc(98_400),
            TimeInForce::ImmediateOrCancel,
        );
        let take = v.tx("carol", TxBody::PlaceOrder(take));
        let offer = limit(perp, Side::Buy, 110, UnitPrice::from_usdc(96_100), 2);
        let offer = v.tx("carol", TxBody::PlaceOrder(offer));
        let out = v.block(vec![pull, requote, take, offer]);
        assert!(out.txs.iter().all(|tx| tx.rejection.is_none()));
        let sold: Vec<(AccountId, i64)> = out
            .trades()
            .filter(|t| t.taker_account == dave)
            .map(|t| (t.maker_account, t.price.ticks() / 2))
            .collect();
        let pass = out.liquidation_events();
        assert!(
            pass.iter()
                .any(|e| matches!(e, Event::LiquidationStep { account, .. } if *account == dave))
        );
        if before_orders {
            assert_eq!(out.liquidation_at, 2, "before carol's take");
            assert_eq!(sold, [(bob, 98_420), (alice, 98_400)]);
            // Each transaction's events are its own: the pass's are not carol's.
            assert!(
                !out.tx_events(2)
                    .iter()
                    .any(|e| matches!(e, Event::LiquidationStep { .. }))
            );
        } else {
            assert_eq!(out.liquidation_at, 4);
            assert_eq!(sold, [(carol, 96_100)], "the proposer's sandwich");
        }
    }
}

/// An amend may reprice across the book, so it counts as taking: a proposer cannot take the
/// bids ahead of the pass by amending a resting ask of its own into them.
#[test]
fn an_amend_across_the_book_cannot_come_ahead_of_the_liquidation_pass() {
    let mut v = leveraged_dave();
    let (dave, alice) = (v.account("dave"), v.account("alice"));
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 100, 98_400).0, None);
    let (rejection, events) = v.order("carol", BTC_PERP, Side::Sell, 100, 103_000);
    assert_eq!(rejection, None);
    let ask = events
        .iter()
        .find_map(|e| match e {
            Event::OrderAccepted { order_id, .. } => Some(*order_id),
            _ => None,
        })
        .expect("carol's ask rests");
    mark_down_to_98_500(&mut v);
    let perp = v.id(BTC_PERP);
    let amend = v.tx(
        "carol",
        TxBody::AmendOrder {
            instrument: perp,
            order: OrderRef::Exchange(ask),
            price: UnitPrice::from_usdc(98_400),
            qty: Qty::from_contracts(100),
        },
    );
    let out = v.block(vec![amend]);
    assert_eq!(out.liquidation_at, 0, "the pass runs before the amend");
    assert_liquidation_sold_only_to(&out, dave, alice);
}

/// The attacker's other routes around the rule: a market order counts as taking, an order
/// that only rests does not. carol's resting bid may come before the pass; her market sell
/// runs after it, so dave's liquidation sells to alice's bid before carol can take it.
#[test]
fn a_market_order_runs_after_the_liquidation_pass_and_a_resting_order_before_it() {
    let mut v = leveraged_dave();
    let (dave, alice) = (v.account("dave"), v.account("alice"));
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 100, 98_400).0, None);
    mark_down_to_98_500(&mut v);
    let perp = v.id(BTC_PERP);
    let rest = limit(perp, Side::Buy, 10, UnitPrice::from_usdc(95_000), 7);
    let rest = v.tx("carol", TxBody::PlaceOrder(rest));
    let mut market = limit(perp, Side::Sell, 100, UnitPrice::from_usdc(98_400), 8);
    market.order_type = OrderType::Market;
    let market = v.tx("carol", TxBody::PlaceOrder(market));
    let out = v.block(vec![rest, market]);
    assert!(out.txs.iter().all(|tx| tx.rejection.is_none()));
    assert_eq!(
        out.liquidation_at, 1,
        "after the resting bid, before the market sell"
    );
    assert_liquidation_sold_only_to(&out, dave, alice);
}

/// The next block marks 1.5% down (the perpetual at 98,500): `leveraged_dave`'s dave falls
/// below maintenance.
fn mark_down_to_98_500(v: &mut Venue) {
    v.set_prices(
        98_500,
        &[(BTC_PERP, 98_500), (BTC_CALL, 5_000), (BTC_PUT, 5_000)],
    );
}

/// `liquidated`'s orders in `out` traded, all of them with `maker`.
fn assert_liquidation_sold_only_to(out: &BlockOutcome, liquidated: AccountId, maker: AccountId) {
    let makers: Vec<AccountId> = out
        .trades()
        .filter(|t| t.taker_account == liquidated)
        .map(|t| t.maker_account)
        .collect();
    assert!(
        !makers.is_empty() && makers.iter().all(|m| *m == maker),
        "{makers:?}"
    );
}
