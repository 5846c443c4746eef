//! One rule per test: authentication, admission, matching money, margin, agents, transfers,
//! funding, expiry and settlement.

mod common;

use bulwark_exchange::*;
use bulwark_types::*;
use common::*;
use commonware_cryptography::Signer;

// ---- authentication ----

#[test]
fn deposit_opens_an_account_and_credits_it() {
    let mut v = Venue::standard();
    let dave = v.key("dave").public_key();
    let tx = v.bridge_tx(TxBody::Deposit {
        owner: dave.clone(),
        amount: Money::from_usdc(50),
    });
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    let id = v.exchange.key_binding(&dave).unwrap().0;
    assert_eq!(
        events[0],
        Event::AccountOpened {
            account: id,
            owner: dave
        }
    );
    assert_eq!(v.cash("dave"), Money::from_usdc(50));
    assert_eq!(v.exchange.ledger().deposits, Money::from_usdc(3_000_050));
}

#[test]
fn only_the_bridge_may_deposit_and_only_the_admin_may_list() {
    let mut v = Venue::standard();
    let alice = v.key("alice").public_key();
    let tx = v.tx(
        "alice",
        TxBody::Deposit {
            owner: alice,
            amount: Money::from_usdc(1),
        },
    );
    assert_eq!(v.run(tx).0, Some(RejectReason::NotBridge));
    let tx = v.tx("alice", TxBody::ListInstrument(spec("ETH_USDC-PERPETUAL")));
    assert_eq!(v.run(tx).0, Some(RejectReason::NotAdmin));
}

#[test]
fn unknown_signer_is_rejected() {
    let mut v = Venue::standard();
    let tx = v.tx("stranger", TxBody::CancelAll { instrument: None });
    assert_eq!(v.run(tx).0, Some(RejectReason::SignerUnknown));
}

#[test]
fn replayed_transaction_is_rejected_by_its_nonce() {
    let mut v = Venue::standard();
    let tx = v.tx("alice", TxBody::CancelAll { instrument: None });
    assert_eq!(v.run(tx.clone()).0, None);
    assert_eq!(v.run(tx).0, Some(RejectReason::NonceNotIncreasing));
}

/// `name`'s limit buy on the perpetual signed with the clock nonce of `at_ms` (what the
/// gateway and the command line sign with).
fn clock_signed_buy(v: &mut Venue, name: &str, at_ms: u64, price_usdc: i64) -> SignedTx {
    let key = v.key(name);
    let request = limit(
        v.id(BTC_PERP),
        Side::Buy,
        1,
        UnitPrice::from_usdc(price_usdc),
        at_ms,
    );
    Tx {
        signer: key.public_key(),
        nonce: Nonce::new(at_ms * 1_000),
        body: TxBody::PlaceOrder(request),
    }
    .sign(&key)
}

/// The attack: whoever was handed a signed order (a validator, a relay) keeps it back, since
/// nonces may skip and the signer's later transactions do not spend it, and plays it once the
/// price has moved. Signed with the clock, it expires a minute after its time.
#[test]
fn a_clock_signed_order_kept_back_past_a_minute_is_refused_and_spends_nothing() {
    let mut v = Venue::standard();
    let bob = v.key("bob").public_key();
    let signed_at = v.exchange.time().millis() + 1_000;
    // The kept order has the higher nonce: the one executed before it does not make it stale.
    let on_time = clock_signed_buy(&mut v, "bob", signed_at, 100_000);
    let kept = clock_signed_buy(&mut v, "bob", signed_at + 1, 100_000);
    for _ in 0..60 {
        v.block(vec![]);
    }
    // 60 s after its time, the edge: still on time.
    assert_eq!(v.exchange.time().millis(), signed_at + 59_000);
    assert_eq!(v.run(on_time).0, None, "within the minute it executes");
    let nonce_after = v.exchange.nonce_last(&bob);
    v.block(vec![]);
    assert_eq!(v.run(kept.clone()).0, Some(RejectReason::NonceExpired));
    assert_eq!(v.exchange.nonce_last(&bob), nonce_after, "nothing spent");
    // ...and never: not in any later block either.
    for _ in 0..3 {
        assert_eq!(v.run(kept.clone()).0, Some(RejectReason::NonceExpired));
    }
    let now = v.exchange.time().millis() + 1_000;
    let fresh = clock_signed_buy(&mut v, "bob", now, 100_000);
    assert_eq!(
        v.run(fresh).0,
        None,
        "the signer's next clock nonce executes"
    );
}

/// What the gateway reads to tell a client its unanswered order never will execute
/// (`Exchange::can_never_execute`): the same nonce rules `apply_tx` applies.
#[test]
fn a_transaction_can_never_execute_once_its_nonce_is_used_or_its_time_expired() {
    let mut v = Venue::standard();
    let now = v.exchange.time().millis() + 1_000;
    let used = clock_signed_buy(&mut v, "bob", now, 100_000);
    let later = clock_signed_buy(&mut v, "bob", now + 1, 100_000);
    let ahead = clock_signed_buy(&mut v, "bob", now + 120_000, 100_000);
    for tx in [&used, &later, &ahead] {
        assert!(!v.exchange.can_never_execute(&tx.tx));
    }
    assert_eq!(v.run(later.clone()).0, None);
    assert!(
        v.exchange.can_never_execute(&used.tx),
        "below the used nonce"
    );
    assert!(
        v.exchange.can_never_execute(&later.tx),
        "its own nonce, used"
    );
    assert!(
        !v.exchange.can_never_execute(&ahead.tx),
        "ahead: may still execute"
    );
    let kept = clock_signed_buy(&mut v, "carol", now, 100_000);
    for _ in 0..61 {
        v.block(vec![]);
    }
    assert!(v.exchange.can_never_execute(&kept.tx), "expired");
    assert_eq!(v.run(kept).0, Some(RejectReason::NonceExpired));
}

#[test]
fn a_clock_nonce_more_than_a_minute_ahead_is_refused_and_a_counter_never_expires() {
    let mut v = Venue::standard();
    let carol = v.key("carol").public_key();
    let block_ms = v.exchange.time().millis() + 1_000;
    let ahead = clock_signed_buy(&mut v, "carol", block_ms + 60_001, 100_000);
    assert_eq!(v.run(ahead).0, Some(RejectReason::NonceAhead));
    assert_eq!(v.exchange.nonce_last(&carol), None, "nothing spent");
    // A counter nonce (below `Nonce::TIME_FLOOR`) signed now still executes a day later.
    let counter = v.tx("carol", TxBody::CancelAll { instrument: None });
    for _ in 0..100 {
        v.block(vec![]);
    }
    v.time_ms += 86_400_000;
    assert_eq!(v.run(counter).0, None);
}

#[test]
fn forged_signature_is_rejected_and_spends_no_nonce() {
    let mut v = Venue::standard();
    let mut tx = v.tx("alice", TxBody::CancelAll { instrument: None });
    let mallory = PrivateKey::from_seed(666);
    tx.signature = mallory.sign(bulwark_types::tx::TX_NAMESPACE, b"something else");
    assert_eq!(v.run(tx.clone()).0, Some(RejectReason::SignatureInvalid));
    let alice = v.key("alice");
    assert_eq!(v.exchange.nonce_last(&alice.public_key()), None);
    let honest = tx.tx.sign(&alice);
    assert_eq!(v.run(honest).0, None, "the same nonce is still free");
}

// ---- listing ----

#[test]
fn listing_rejects_duplicates_bad_terms_and_past_expiries() {
    let mut v = Venue::standard();
    let tx = v.admin_tx(TxBody::ListInstrument(spec(BTC_PERP)));
    assert_eq!(v.run(tx).0, Some(RejectReason::InstrumentExists));
    let mut bad = spec("ETH_USDC-PERPETUAL");
    bad.tick_size = UnitPrice::from_micros(1);
    let tx = v.admin_tx(TxBody::ListInstrument(bad));
    assert_eq!(
        v.run(tx).0,
        Some(RejectReason::InstrumentSpecInvalid(SpecError::TickValue))
    );
    let tx = v.admin_tx(TxBody::ListInstrument(spec("BTC_USDC-1JAN26-90000-C")));
    assert_eq!(v.run(tx).0, Some(RejectReason::InstrumentNotTrading));
}

// ---- admission ----

#[test]
fn order_terms_are_checked_in_order() {
    let mut v = Venue::standard();
    let perp = v.id(BTC_PERP);
    let cases: &[(OrderRequest, RejectReason)] = &[
        (
            limit(
                InstrumentId::new(99),
                Side::Buy,
                1,
                UnitPrice::from_usdc(100_000),
                1,
            ),
            RejectReason::InstrumentUnknown,
        ),
        (
            limit(
                perp,
                Side::Buy,
                1,
                UnitPrice::from_micros(100_000_250_000),
                1,
            ),
            RejectReason::PriceNotOnTick,
        ),
        (
            limit(perp, Side::Buy, 1, UnitPrice::from_usdc(90_000), 1),
            RejectReason::PriceOutsideBand,
        ),
        (
            limit(perp, Side::Sell, 1, UnitPrice::from_usdc(110_000), 1),
            RejectReason::PriceOutsideBand,
        ),
        (
            limit(perp, Side::Buy, 0, UnitPrice::from_usdc(100_000), 1),
            RejectReason::QtyNotPositive,
        ),
    ];
    for (request, reason) in cases {
        let tx = v.tx("alice", TxBody::PlaceOrder(*request));
        assert_eq!(v.run(tx).0, Some(*reason), "{request:?}");
    }
}

#[test]
fn lot_and_minimum_size_are_enforced() {
    let mut v = Venue::new();
    let mut terms = spec(BTC_PERP);
    terms.lot_size = Qty::from_contracts(5);
    terms.size_min = Qty::from_contracts(10);
    let tx = v.admin_tx(TxBody::ListInstrument(terms));
    v.run(tx);
    v.set_prices(100_000, &[(BTC_PERP, 100_000)]);
    v.fund("alice", 1_000_000);
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Buy, 7, 100_000).0,
        Some(RejectReason::QtyNotMultipleOfLot)
    );
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Buy, 5, 100_000).0,
        Some(RejectReason::QtyBelowMinimum)
    );
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 10, 100_000).0, None);
}

#[test]
fn options_need_an_index_and_a_mark() {
    let mut v = Venue::new();
    let tx = v.admin_tx(TxBody::ListInstrument(spec(BTC_CALL)));
    v.run(tx);
    v.fund("alice", 1_000_000);
    assert_eq!(
        v.order("alice", BTC_CALL, Side::Buy, 1, 5_000).0,
        Some(RejectReason::IndexPriceUnavailable)
    );
    v.set_prices(100_000, &[]);
    assert_eq!(
        v.order("alice", BTC_CALL, Side::Buy, 1, 5_000).0,
        Some(RejectReason::MarkPriceUnavailable)
    );
    v.set_prices(100_000, &[(BTC_CALL, 5_000)]);
    assert_eq!(v.order("alice", BTC_CALL, Side::Buy, 1, 5_000).0, None);
}

/// What a cancel would cancel, which the proposer's selection puts first: only an open
/// order of the canceller's own account, named by its id or its client id in its instrument,
/// or a cancel-all where the account has orders open; never another account's order, an
/// order already gone, or anything for an account the state does not hold.
#[test]
fn a_cancel_targets_only_an_open_order_of_its_own_account() {
    let mut v = Venue::standard();
    let (perp, call) = (v.id(BTC_PERP), v.id(BTC_CALL));
    let request = limit(perp, Side::Buy, 1, UnitPrice::from_usdc(99_000), 41);
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    assert_eq!(v.run(tx).0, None);
    let (alice, bob) = (v.account("alice"), v.account("bob"));
    let client = ClientOrderId::new(41);
    let (_, id) = *v
        .exchange
        .account(alice)
        .unwrap()
        .client_orders
        .get(&client)
        .unwrap();
    let cancel = |instrument, order| TxBody::CancelOrder { instrument, order };
    let all = |instrument| TxBody::CancelAll { instrument };
    let stranger = AccountId::new(999);
    let order = Some(CancelTarget::Order(perp, id));
    let withdraw = TxBody::Withdraw {
        amount: Money::from_usdc(1),
    };
    for (account, body, target) in [
        (alice, cancel(perp, OrderRef::Client(client)), order),
        (alice, cancel(perp, OrderRef::Exchange(id)), order),
        (bob, cancel(perp, OrderRef::Exchange(id)), None),
        (alice, cancel(call, OrderRef::Client(client)), None),
        (alice, all(None), Some(CancelTarget::Orders(None))),
        (
            alice,
            all(Some(perp)),
            Some(CancelTarget::Orders(Some(perp))),
        ),
        (alice, all(Some(call)), None),
        (bob, all(None), None),
        (stranger, cancel(perp, OrderRef::Exchange(id)), None),
        (stranger, all(None), None),
        (alice, withdraw, None),
    ] {
        assert_eq!(v.exchange.cancel_target(account, &body), target, "{body:?}");
    }
    let tx = v.tx("alice", cancel(perp, OrderRef::Client(client)));
    assert_eq!(v.run(tx).0, None);
    assert_eq!(
        v.exchange
            .cancel_target(alice, &cancel(perp, OrderRef::Exchange(id))),
        None
    );
    assert_eq!(v.exchange.cancel_target(alice, &all(None)), None);
}

#[test]
fn post_only_that_would_cross_is_rejected() {
    let mut v = Venue::standard();
    v.order("bob", BTC_PERP, Side::Sell, 1, 100_000);
    let mut request = limit(
        v.id(BTC_PERP),
        Side::Buy,
        1,
        UnitPrice::from_usdc(100_000),
        7,
    );
    request.order_type = OrderType::Limit {
        price: UnitPrice::from_usdc(100_000),
        time_in_force: TimeInForce::GoodTilCancelled,
        post_only: true,
    };
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    assert_eq!(v.run(tx).0, Some(RejectReason::PostOnlyWouldCross));
}

#[test]
fn reduce_only_may_not_open_or_exceed_the_position() {
    let mut v = Venue::standard();
    let perp = v.id(BTC_PERP);
    let mut request = limit(perp, Side::Sell, 1, UnitPrice::from_usdc(100_000), 1);
    request.reduce_only = true;
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    assert_eq!(
        v.run(tx).0,
        Some(RejectReason::ReduceOnlyWouldIncrease),
        "no position to reduce"
    );
    v.order("bob", BTC_PERP, Side::Sell, 3, 100_000);
    v.order("alice", BTC_PERP, Side::Buy, 3, 100_000);
    request.qty = Qty::from_contracts(4);
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    assert_eq!(
        v.run(tx).0,
        Some(RejectReason::ReduceOnlyWouldIncrease),
        "more than the position"
    );
    request.qty = Qty::from_contracts(3);
    request.client_order_id = ClientOrderId::new(2);
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    assert_eq!(v.run(tx).0, None);
    request.qty = Qty::from_contracts(1);
    request.client_order_id = ClientOrderId::new(3);
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    assert_eq!(
        v.run(tx).0,
        Some(RejectReason::ReduceOnlyWouldIncrease),
        "resting reduce-only counts"
    );
}

#[test]
fn resting_reduce_only_shrinks_when_the_position_does() {
    let mut v = Venue::standard();
    let perp = v.id(BTC_PERP);
    v.order("bob", BTC_PERP, Side::Sell, 3, 100_000);
    v.order("alice", BTC_PERP, Side::Buy, 3, 100_000);
    let mut request = limit(perp, Side::Sell, 3, UnitPrice::from_usdc(101_000), 50);
    request.reduce_only = true;
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    assert_eq!(v.run(tx).0, None);
    // Alice sells 2 elsewhere: her position is 1, so her reduce-only order shrinks to 1.
    v.order("carol", BTC_PERP, Side::Buy, 2, 100_000);
    let (rejection, events) = v.order("alice", BTC_PERP, Side::Sell, 2, 100_000);
    assert_eq!(rejection, None);
    assert!(events.iter().any(|e| matches!(e, Event::OrderCancelled { qty, reason: CancelReason::ReduceOnly, .. } if qty.contracts() == 2)));
    assert_eq!(v.position("alice", BTC_PERP), 1);
}

#[test]
fn client_order_ids_are_unique_among_open_orders() {
    let mut v = Venue::standard();
    let perp = v.id(BTC_PERP);
    let request = limit(perp, Side::Buy, 1, UnitPrice::from_usdc(99_000), 5);
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    assert_eq!(v.run(tx).0, None);
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    assert_eq!(v.run(tx).0, Some(RejectReason::ClientOrderIdInUse));
}

#[test]
fn open_order_cap_is_enforced() {
    let mut params = ExchangeParams::defaults();
    params.orders_open_max = 2;
    let mut v = Venue::with_params(params);
    let tx = v.admin_tx(TxBody::ListInstrument(spec(BTC_PERP)));
    v.run(tx);
    v.set_prices(100_000, &[]);
    v.fund("alice", 1_000_000);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 1, 99_000).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 1, 99_001).0, None);
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Buy, 1, 99_002).0,
        Some(RejectReason::OpenOrderLimit)
    );
}

#[test]
fn position_limit_counts_resting_orders() {
    let mut params = ExchangeParams::defaults();
    params.position_max = Qty::from_contracts(10);
    let mut v = Venue::with_params(params);
    let tx = v.admin_tx(TxBody::ListInstrument(spec(BTC_PERP)));
    v.run(tx);
    v.set_prices(100_000, &[]);
    v.fund("alice", 1_000_000);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 6, 99_000).0, None);
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Buy, 5, 99_000).0,
        Some(RejectReason::PositionLimit)
    );
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 10, 101_000).0,
        None,
        "the other side is separate"
    );
}

// ---- margin ----

#[test]
fn order_beyond_initial_margin_is_rejected_with_the_shortfall() {
    let mut v = Venue::standard();
    v.fund("dave", 1_000);
    // 1,000 perpetual contracts of 0.001 BTC at 100,000 = 100,000 USDC notional; 2% = 2,000.
    let (rejection, _) = v.order("dave", BTC_PERP, Side::Buy, 1_000, 99_000);
    // Notional at mark 100,000; the order's 1,000 USDC loss above mark is not counted (it
    // buys below mark), so the requirement is exactly 2,000, plus the most the order can pay
    // in fees (5 bps of 99,000 = 49.50): the shortfall is 1,049.50.
    assert_eq!(
        rejection,
        Some(RejectReason::MarginInsufficient {
            shortfall: Money::from_micros(1_049_500_000)
        })
    );
    // 500 contracts need exactly 1,000 of margin, and 24.75 of fees beyond that.
    assert_eq!(
        v.order("dave", BTC_PERP, Side::Buy, 500, 99_000).0,
        Some(RejectReason::MarginInsufficient {
            shortfall: Money::from_micros(24_750_000)
        })
    );
    assert_eq!(v.order("dave", BTC_PERP, Side::Buy, 480, 99_000).0, None);
}

#[test]
fn short_call_standard_margin_matches_deribit_formula() {
    // Hand computation, Deribit linear option: short 1 call (0.01 BTC), strike 100,000,
    // index 95,000, mark 2,000. OTM = 5,000 = 5.263% of U: rate = max(15% - 5.263%, 10%) = 10%.
    // Initial per BTC = 0.10 x 95,000 + 2,000 = 11,500 -> 115 USDC for 0.01 BTC.
    // Maintenance per BTC = 0.075 x 95,000 + 2,000 = 9,125 -> 91.25 USDC.
    let mut v = Venue::standard();
    v.set_prices(
        95_000,
        &[(BTC_PERP, 95_000), (BTC_CALL, 2_000), (BTC_PUT, 7_000)],
    );
    v.order("bob", BTC_CALL, Side::Buy, 1, 2_000);
    v.order("alice", BTC_CALL, Side::Sell, 1, 2_000);
    let alice = v.account("alice");
    let margin = v.exchange.account_margin(alice).unwrap();
    assert_eq!(margin.requirement.initial, Money::from_usdc(115));
    assert_eq!(
        margin.requirement.maintenance,
        Money::from_micros(91_250_000)
    );
}

#[test]
fn in_the_money_short_put_uses_the_full_base_rate() {
    // Short put strike 100,000 at index 95,000 is 5,000 in the money: OTM = 0, rate 15%.
    // Initial per BTC = 0.15 x 95,000 + 7,000 = 21,250 -> 212.5 USDC for 0.01 BTC.
    let mut v = Venue::standard();
    v.set_prices(
        95_000,
        &[(BTC_PERP, 95_000), (BTC_CALL, 2_000), (BTC_PUT, 7_000)],
    );
    v.order("bob", BTC_PUT, Side::Buy, 1, 7_000);
    v.order("alice", BTC_PUT, Side::Sell, 1, 7_000);
    let alice = v.account("alice");
    assert_eq!(
        v.exchange
            .account_margin(alice)
            .unwrap()
            .requirement
            .initial,
        Money::from_micros(212_500_000)
    );
}

#[test]
fn under_margined_account_may_still_reduce_risk() {
    let mut v = Venue::standard();
    v.fund("dave", 1_000);
    v.order("bob", BTC_PERP, Side::Sell, 400, 100_000);
    assert_eq!(v.order("dave", BTC_PERP, Side::Buy, 400, 100_000).0, None);
    // The index falls 1%: dave's equity drops by 400 USDC, below initial margin (2% of
    // 39,600) but above maintenance (1%), so he is not liquidated.
    v.set_prices(
        99_000,
        &[(BTC_PERP, 99_000), (BTC_CALL, 4_000), (BTC_PUT, 6_000)],
    );
    v.block(vec![]);
    let dave = v.account("dave");
    let m = v.exchange.account_margin(dave).unwrap();
    assert!(m.equity < m.requirement.initial);
    assert!(m.equity > m.requirement.maintenance);
    assert_eq!(
        v.order("dave", BTC_PERP, Side::Buy, 1, 99_000)
            .0
            .map(|r| r.code()),
        Some(90),
        "adding is refused"
    );
    assert_eq!(
        v.order("dave", BTC_PERP, Side::Sell, 100, 99_000).0,
        None,
        "reducing is allowed"
    );
}

#[test]
fn withdrawal_is_limited_to_available_funds() {
    let mut v = Venue::standard();
    v.fund("dave", 1_000);
    v.order("bob", BTC_PERP, Side::Sell, 100, 100_000);
    v.order("dave", BTC_PERP, Side::Buy, 100, 100_000);
    // Requirement: 2% of 10,000 USDC = 200; fee 0.05% of 10,000 = 5 -> equity 995, available 795.
    let tx = v.tx(
        "dave",
        TxBody::Withdraw {
            amount: Money::from_usdc(800),
        },
    );
    assert_eq!(
        v.run(tx).0,
        Some(RejectReason::WithdrawalExceedsAvailable {
            shortfall: Money::from_usdc(5)
        })
    );
    let tx = v.tx(
        "dave",
        TxBody::Withdraw {
            amount: Money::from_usdc(795),
        },
    );
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    let dave = v.account("dave");
    assert_eq!(
        events,
        vec![Event::WithdrawalRequested {
            account: dave,
            amount: Money::from_usdc(795)
        }]
    );
    // One trusted feed: the block's prices are the ones to judge at, so the withdrawal is
    // paid at the end of its own block (an oracle's venue waits for later observations:
    // `tests/oracle.rs`).
    v.assert_withdrawal_paid("dave", 795);
}

/// With `withdrawals_held = false` (the lab's comparison run) the transaction pays at once.
#[test]
fn unheld_a_withdrawal_is_paid_by_its_transaction() {
    let mut params = ExchangeParams::defaults();
    params.withdrawals_held = false;
    let mut v = Venue::standard_with(params);
    v.fund("dave", 1_000);
    let tx = v.tx(
        "dave",
        TxBody::Withdraw {
            amount: Money::from_usdc(600),
        },
    );
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    let dave = v.account("dave");
    assert_eq!(
        events,
        vec![Event::Withdrawn {
            account: dave,
            amount: Money::from_usdc(600)
        }]
    );
    assert_eq!(v.exchange.ledger().withdrawals, Money::from_usdc(600));
}

// ---- matching money ----

#[test]
fn option_fill_moves_premium_and_fees_exactly() {
    let mut v = Venue::standard();
    let (alice0, bob0) = (v.cash("alice"), v.cash("bob"));
    v.order("alice", BTC_CALL, Side::Sell, 10, 5_000);
    let (_, events) = v.order("bob", BTC_CALL, Side::Buy, 10, 5_000);
    let t = trades(&events);
    assert_eq!(t.len(), 1);
    // Premium: 10 contracts x 0.01 BTC x 5,000 = 500 USDC.
    // Fee: 0.03% of underlying 10 x 0.01 x 100,000 = 10,000 -> 3 USDC; cap 12.5% x 500 = 62.5.
    assert_eq!(t[0].taker_fee, Money::from_usdc(3));
    assert_eq!(t[0].maker_fee, Money::from_usdc(3));
    assert_eq!(
        v.cash("bob"),
        bob0.checked_sub(Money::from_usdc(503)).unwrap()
    );
    assert_eq!(
        v.cash("alice"),
        alice0.checked_add(Money::from_usdc(497)).unwrap()
    );
    assert_eq!(v.exchange.ledger().fees, Money::from_usdc(6));
}

#[test]
fn option_fee_is_capped_at_its_share_of_the_premium() {
    let mut v = Venue::standard();
    v.set_prices(
        100_000,
        &[(BTC_PERP, 100_000), (BTC_CALL, 20), (BTC_PUT, 5_000)],
    );
    v.order("alice", BTC_CALL, Side::Sell, 10, 20);
    let (_, events) = v.order("bob", BTC_CALL, Side::Buy, 10, 20);
    // Premium 10 x 0.01 x 20 = 2 USDC; cap 12.5% = 0.25 USDC, below the 3 USDC underlying fee.
    assert_eq!(trades(&events)[0].taker_fee, Money::from_micros(250_000));
}

#[test]
fn maker_rebate_is_paid_from_the_taker_fee() {
    let mut params = ExchangeParams::defaults();
    params.fees_perpetual.maker_bps = -1;
    let mut v = Venue::with_params(params);
    let tx = v.admin_tx(TxBody::ListInstrument(spec(BTC_PERP)));
    v.run(tx);
    v.set_prices(100_000, &[]);
    v.fund("alice", 100_000);
    v.fund("bob", 100_000);
    v.order("alice", BTC_PERP, Side::Sell, 100, 100_000);
    let (_, events) = v.order("bob", BTC_PERP, Side::Buy, 100, 100_000);
    // Notional 10,000 USDC: taker 0.05% = 5, maker rebate 0.01% = 1.
    let t = trades(&events)[0];
    assert_eq!(
        (t.taker_fee, t.maker_fee),
        (Money::from_usdc(5), Money::from_usdc(-1))
    );
    assert_eq!(v.exchange.ledger().fees, Money::from_usdc(4));
}

/// Asks resting at `asks` (USDC) in `instrument`, then alice's market buy of 5 contracts:
/// the prices it traded at and the instrument's market limits, in USDC. The rest of the
/// order (3) is cancelled, never rests, and the third ask is left.
fn market_buy_of_five(
    v: &mut Venue,
    instrument: &str,
    asks: [(&str, i64); 3],
) -> (Vec<i64>, Option<(i64, i64)>) {
    for (name, usdc) in asks {
        v.order(name, instrument, Side::Sell, 1, usdc);
    }
    let id = v.id(instrument);
    let request = OrderRequest {
        order_type: OrderType::Market,
        ..limit(id, Side::Buy, 5, UnitPrice::ZERO, 9)
    };
    let tx = v.tx("alice", TxBody::PlaceOrder(request));
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    let tick = v.exchange.instrument(id).unwrap().spec.tick_size.micros();
    let usdc = |ticks: i64| ticks * tick / 1_000_000;
    let prices = trades(&events)
        .iter()
        .map(|t| usdc(t.price.ticks()))
        .collect();
    assert!(events.iter().any(|e| matches!(e, Event::OrderCancelled { qty, reason: CancelReason::ImmediateOrCancel, .. } if qty.contracts() == 3)));
    assert_eq!(v.exchange.instrument(id).unwrap().book.len(), 1);
    let limits = v
        .exchange
        .market_limits(id)
        .map(|(low, high)| (usdc(low.ticks()), usdc(high.ticks())));
    (prices, limits)
}

/// A market order fills within its reach of the mark (0.5% for the perpetual), not to the
/// band's edge (5%), where a limit order may still be priced: a leader that takes the book
/// ahead of it and offers the contracts back can sell to it at that reach and no further.
#[test]
fn market_order_trades_only_within_its_reach_of_the_mark() {
    let mut v = Venue::standard();
    // Reach: 0.5% of 100,000 -> up to 100,500. Two asks fill; the ask at 101,000 (1%,
    // inside the 5% band) stays.
    let asks = [("bob", 100_400), ("bob", 100_500), ("carol", 101_000)];
    let (prices, limits) = market_buy_of_five(&mut v, BTC_PERP, asks);
    assert_eq!(prices, [100_400, 100_500]);
    assert_eq!(limits, Some((99_500, 100_500)));
    // A limit order may still be priced at the band's edge, and takes the rest.
    let (rejection, events) = v.order("alice", BTC_PERP, Side::Buy, 1, 105_000);
    assert_eq!(rejection, None);
    assert_eq!(trades(&events).len(), 1);
}

/// An option's market order fills within 10% of its mark, not to its band's 30%.
#[test]
fn an_option_market_order_trades_only_within_its_reach_of_the_mark() {
    let mut v = Venue::standard();
    // The call's mark is 5,000 USDC, its tick 5: up to 5,500.
    let asks = [("bob", 5_400), ("bob", 5_500), ("carol", 5_600)];
    let (prices, limits) = market_buy_of_five(&mut v, BTC_CALL, asks);
    assert_eq!(prices, [5_400, 5_500]);
    assert_eq!(limits, Some((4_500, 5_500)));
    // A limit order may still be priced up to the band's edge (6,500), and takes the rest.
    let (rejection, events) = v.order("alice", BTC_CALL, Side::Buy, 1, 6_000);
    assert_eq!(rejection, None);
    assert_eq!(trades(&events).len(), 1);
}

#[test]
fn self_trade_prevention_cancels_the_resting_order() {
    let mut v = Venue::standard();
    v.order("alice", BTC_PERP, Side::Sell, 2, 100_000);
    let (rejection, events) = v.order("alice", BTC_PERP, Side::Buy, 2, 100_000);
    assert_eq!(rejection, None);
    assert!(trades(&events).is_empty());
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OrderCancelled {
            reason: CancelReason::SelfTrade,
            ..
        }
    )));
    assert_eq!(v.position("alice", BTC_PERP), 0);
}

// ---- cancel and amend ----

#[test]
fn cancel_by_client_id_and_cancel_all_by_instrument() {
    let mut v = Venue::standard();
    let (perp, call) = (v.id(BTC_PERP), v.id(BTC_CALL));
    for (i, (instrument, price)) in [(perp, 99_000), (perp, 98_000), (call, 4_000)]
        .into_iter()
        .enumerate()
    {
        let tx = v.tx(
            "alice",
            TxBody::PlaceOrder(limit(
                instrument,
                Side::Buy,
                1,
                UnitPrice::from_usdc(price),
                100 + i as u64,
            )),
        );
        assert_eq!(v.run(tx).0, None);
    }
    let tx = v.tx(
        "alice",
        TxBody::CancelOrder {
            instrument: perp,
            order: OrderRef::Client(ClientOrderId::new(100)),
        },
    );
    assert_eq!(v.run(tx).0, None);
    let tx = v.tx(
        "alice",
        TxBody::CancelOrder {
            instrument: call,
            order: OrderRef::Client(ClientOrderId::new(101)),
        },
    );
    assert_eq!(
        v.run(tx).0,
        Some(RejectReason::OrderUnknown),
        "wrong instrument"
    );
    let tx = v.tx(
        "alice",
        TxBody::CancelAll {
            instrument: Some(perp),
        },
    );
    let (_, events) = v.run(tx);
    assert_eq!(events.len(), 1);
    let alice = v.account("alice");
    assert_eq!(v.exchange.account(alice).unwrap().orders_open(), 1);
    let tx = v.tx("alice", TxBody::CancelAll { instrument: None });
    v.run(tx);
    assert_eq!(v.exchange.account(alice).unwrap().orders_open(), 0);
}

#[test]
fn cancelling_another_accounts_order_is_refused() {
    let mut v = Venue::standard();
    let (_, events) = v.order("bob", BTC_PERP, Side::Buy, 1, 99_000);
    let Event::OrderAccepted { order_id, .. } = events[0] else {
        panic!("accepted")
    };
    let tx = v.tx(
        "alice",
        TxBody::CancelOrder {
            instrument: v.id(BTC_PERP),
            order: OrderRef::Exchange(order_id),
        },
    );
    assert_eq!(v.run(tx).0, Some(RejectReason::OrderUnknown));
}

#[test]
fn amend_down_keeps_priority_and_amend_up_loses_it() {
    let mut v = Venue::standard();
    let perp = v.id(BTC_PERP);
    let tx = v.tx(
        "alice",
        TxBody::PlaceOrder(limit(perp, Side::Buy, 5, UnitPrice::from_usdc(99_000), 1)),
    );
    v.run(tx);
    v.order("bob", BTC_PERP, Side::Buy, 5, 99_000);
    let amend = |qty| TxBody::AmendOrder {
        instrument: perp,
        order: OrderRef::Client(ClientOrderId::new(1)),
        price: UnitPrice::from_usdc(99_000),
        qty: Qty::from_contracts(qty),
    };
    let tx = v.tx("alice", amend(3));
    let (_, events) = v.run(tx);
    assert!(matches!(
        events[0],
        Event::OrderAmended {
            priority_kept: true,
            ..
        }
    ));
    let (_, events) = v.order("carol", BTC_PERP, Side::Sell, 1, 99_000);
    let alice = v.account("alice");
    assert_eq!(trades(&events)[0].maker_account, alice, "alice still first");
    let tx = v.tx("alice", amend(4));
    let (_, events) = v.run(tx);
    assert!(matches!(
        events[0],
        Event::OrderAmended {
            priority_kept: false,
            ..
        }
    ));
    let (_, events) = v.order("carol", BTC_PERP, Side::Sell, 1, 99_000);
    assert_ne!(
        trades(&events)[0].maker_account,
        alice,
        "alice went to the back"
    );
    let tx = v.tx("alice", amend(4));
    assert_eq!(v.run(tx).0, Some(RejectReason::AmendUnchanged));
}

#[test]
fn amend_across_the_spread_trades() {
    let mut v = Venue::standard();
    let perp = v.id(BTC_PERP);
    v.order("bob", BTC_PERP, Side::Sell, 2, 100_000);
    let tx = v.tx(
        "alice",
        TxBody::PlaceOrder(limit(perp, Side::Buy, 2, UnitPrice::from_usdc(99_000), 1)),
    );
    v.run(tx);
    let tx = v.tx(
        "alice",
        TxBody::AmendOrder {
            instrument: perp,
            order: OrderRef::Client(ClientOrderId::new(1)),
            price: UnitPrice::from_usdc(100_000),
            qty: Qty::from_contracts(2),
        },
    );
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    assert_eq!(trades(&events).len(), 1);
    assert_eq!(v.position("alice", BTC_PERP), 2);
}

// ---- agents ----

#[test]
fn agent_trades_but_never_withdraws_and_stays_spent_after_revocation() {
    let mut v = Venue::standard();
    let agent = v.key("alice-bot").public_key();
    let tx = v.authorise_tx("alice", "alice-bot");
    assert_eq!(v.run(tx).0, None);
    let perp = v.id(BTC_PERP);
    let tx = v.tx(
        "alice-bot",
        TxBody::PlaceOrder(limit(perp, Side::Buy, 1, UnitPrice::from_usdc(99_000), 1)),
    );
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    let alice = v.account("alice");
    assert!(matches!(events[0], Event::OrderAccepted { account, .. } if account == alice));
    let tx = v.tx(
        "alice-bot",
        TxBody::Withdraw {
            amount: Money::from_usdc(1),
        },
    );
    assert_eq!(v.run(tx).0, Some(RejectReason::NotOwner));
    let old = v.tx("alice-bot", TxBody::CancelAll { instrument: None });
    let tx = v.tx(
        "alice",
        TxBody::RevokeAgent {
            agent: agent.clone(),
        },
    );
    assert_eq!(v.run(tx).0, None);
    let tx = v.tx("alice-bot", TxBody::CancelAll { instrument: None });
    assert_eq!(v.run(tx).0, Some(RejectReason::AgentRevoked));
    let tx = v.authorise_tx("alice", "alice-bot");
    assert_eq!(v.run(tx).0, None);
    assert_eq!(
        v.run(old).0,
        Some(RejectReason::NonceNotIncreasing),
        "a re-authorised agent's old transactions stay spent"
    );
}

#[test]
fn a_key_that_acted_serves_one_account() {
    let mut v = Venue::standard();
    // Bob acted: an order rests on his account.
    assert_eq!(v.order("bob", BTC_PERP, Side::Buy, 1, 99_000).0, None);
    // Carol's only transaction was refused, but it spent her key's nonce.
    let stranger = v.key("stranger").public_key();
    let tx = v.tx("carol", TxBody::RevokeAgent { agent: stranger });
    assert_eq!(v.run(tx).0, Some(RejectReason::AgentUnknown));
    let (bob_cash, carol_cash) = (v.cash("bob"), v.cash("carol"));
    for name in ["bob", "carol"] {
        let tx = v.authorise_tx("alice", name);
        assert_eq!(v.run(tx).0, Some(RejectReason::KeyInUse), "{name}");
        let key = v.key(name).public_key();
        assert_eq!(
            v.exchange.key_binding(&key).map(|(_, role)| role),
            Some(KeyRole::Owner)
        );
    }
    assert_eq!((v.cash("bob"), v.cash("carol")), (bob_cash, carol_cash));
    // Nor is an owner its own agent.
    let tx = v.authorise_tx("alice", "alice");
    assert_eq!(v.run(tx).0, Some(RejectReason::KeyInUse));
}

#[test]
fn an_account_only_deposits_reached_is_absorbed_when_its_key_consents_to_serve() {
    let mut v = Venue::standard();
    v.fund("dave", 70);
    v.fund("dave", 30);
    let dave = v.key("dave").public_key();
    let (alice, closed) = (v.account("alice"), v.account("dave"));
    let alice_cash = v.cash("alice");
    let ledger = v.exchange.ledger();
    let tx = v.authorise_tx("alice", "dave");
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    assert_eq!(
        events,
        vec![
            Event::AccountAbsorbed {
                account: closed,
                into: alice,
                amount: Money::from_usdc(100),
            },
            Event::AgentAuthorised {
                account: alice,
                agent: dave.clone(),
            },
        ]
    );
    assert_eq!(v.exchange.key_binding(&dave), Some((alice, KeyRole::Agent)));
    assert_eq!(
        v.cash("alice"),
        alice_cash.checked_add(Money::from_usdc(100)).unwrap()
    );
    let left = v.exchange.account(closed).unwrap();
    assert_eq!((left.cash, left.agents), (Money::ZERO, 0));
    assert_eq!(
        v.exchange.ledger(),
        ledger,
        "money moved between accounts only"
    );
    // The closed account stays closed: the key is an agent key now.
    let tx = v.bridge_tx(TxBody::Deposit {
        owner: dave.clone(),
        amount: Money::from_usdc(5),
    });
    assert_eq!(v.run(tx).0, Some(RejectReason::KeyInUse));
    assert_eq!(v.exchange.account(closed).unwrap().cash, Money::ZERO);
    // The key trades for alice, and never withdraws.
    let (rejection, events) = v.order("dave", BTC_PERP, Side::Buy, 1, 99_000);
    assert_eq!(rejection, None);
    assert!(matches!(events[0], Event::OrderAccepted { account, .. } if account == alice));
    let tx = v.tx(
        "dave",
        TxBody::Withdraw {
            amount: Money::from_usdc(1),
        },
    );
    assert_eq!(v.run(tx).0, Some(RejectReason::NotOwner));
    // Revoked, it is alice's to authorise again, and still no one else's.
    let tx = v.tx(
        "alice",
        TxBody::RevokeAgent {
            agent: dave.clone(),
        },
    );
    assert_eq!(v.run(tx).0, None);
    let tx = v.authorise_tx("bob", "dave");
    assert_eq!(v.run(tx).0, Some(RejectReason::KeyInUse));
    let tx = v.authorise_tx("alice", "dave");
    assert_eq!(v.run(tx).0, None);
    assert_eq!(v.exchange.key_binding(&dave), Some((alice, KeyRole::Agent)));
}

#[test]
fn a_refused_absorption_changes_nothing() {
    let mut params = ExchangeParams::defaults();
    params.agents_max = 1;
    let mut v = Venue::standard_with(params);
    let tx = v.authorise_tx("alice", "alice-bot");
    assert_eq!(v.run(tx).0, None);
    v.fund("dave", 100);
    let (alice_cash, closed) = (v.cash("alice"), v.account("dave"));
    let tx = v.authorise_tx("alice", "dave");
    assert_eq!(v.run(tx), (Some(RejectReason::AgentLimit), vec![]));
    let dave = v.key("dave").public_key();
    assert_eq!(
        v.exchange.key_binding(&dave),
        Some((closed, KeyRole::Owner))
    );
    assert_eq!(v.cash("dave"), Money::from_usdc(100));
    assert_eq!(v.cash("alice"), alice_cash);
}

// ---- funding, expiry, settlement ----

#[test]
fn funding_moves_cash_from_longs_to_shorts_and_conserves_it() {
    let mut v = Venue::standard();
    // Mark 0.8% over index for the whole hour (funding pays the interval's average
    // premium): 8,000 ppm per 8 h -> 1,000 ppm per hour, clamped to 750 ppm.
    v.set_prices(
        100_000,
        &[(BTC_PERP, 100_800), (BTC_CALL, 5_000), (BTC_PUT, 5_000)],
    );
    v.order("bob", BTC_PERP, Side::Sell, 100, 100_000);
    v.order("alice", BTC_PERP, Side::Buy, 100, 100_000);
    let (alice0, bob0) = (v.cash("alice"), v.cash("bob"));
    v.time_ms += 3_600_000;
    let outcome = v.block(vec![]);
    let funding = outcome.block_events().iter().find_map(|e| {
        if let Event::FundingPaid {
            rate_ppm,
            per_contract,
            ..
        } = e
        {
            Some((*rate_ppm, *per_contract))
        } else {
            None
        }
    });
    // One contract is 0.001 BTC x 100,800 = 100.8 USDC; 750 ppm of it = 0.0756 USDC.
    assert_eq!(funding, Some((750, Money::from_micros(75_600))));
    assert_eq!(
        v.cash("alice"),
        alice0.checked_sub(Money::from_micros(7_560_000)).unwrap()
    );
    assert_eq!(
        v.cash("bob"),
        bob0.checked_add(Money::from_micros(7_560_000)).unwrap()
    );
}

#[test]
fn expiry_cancels_orders_and_settlement_pays_intrinsic_value() {
    let mut v = Venue::standard();
    v.order("alice", BTC_CALL, Side::Sell, 2, 5_000);
    v.order("bob", BTC_CALL, Side::Buy, 2, 5_000);
    v.order("carol", BTC_CALL, Side::Buy, 1, 4_000);
    let (alice0, bob0) = (v.cash("alice"), v.cash("bob"));
    let expiry = ExpiryDate::new(2026, 12, 27).unwrap();
    v.time_ms = expiry.expiry_millis();
    let outcome = v.block(vec![]);
    let call = v.id(BTC_CALL);
    assert!(
        outcome
            .block_events()
            .contains(&Event::InstrumentExpired { instrument: call })
    );
    assert!(outcome.block_events().iter().any(|e| matches!(
        e,
        Event::OrderCancelled {
            reason: CancelReason::Expired,
            ..
        }
    )));
    assert_eq!(
        v.order("carol", BTC_CALL, Side::Buy, 1, 4_000).0,
        Some(RejectReason::InstrumentNotTrading)
    );
    // Settle at 112,000: intrinsic 12,000 per BTC -> 120 USDC per contract of 0.01 BTC.
    let settlement = SettlementPrice {
        asset: btc(),
        expiry,
        price: UnitPrice::from_usdc(112_000),
    };
    v.prices = PriceInputs::new(v.prices.index().to_vec(), vec![], vec![settlement]).unwrap();
    let outcome = v.block(vec![]);
    assert!(outcome.block_events().contains(&Event::InstrumentSettled {
        instrument: call,
        price: UnitPrice::from_usdc(112_000)
    }));
    assert_eq!(
        v.cash("bob"),
        bob0.checked_add(Money::from_usdc(240)).unwrap()
    );
    assert_eq!(
        v.cash("alice"),
        alice0.checked_sub(Money::from_usdc(240)).unwrap()
    );
    assert_eq!(v.position("alice", BTC_CALL), 0);
    assert_eq!(
        v.exchange.instrument(call).unwrap().status,
        InstrumentStatus::Settled
    );
}

#[test]
fn settlement_price_before_expiry_is_ignored() {
    let mut v = Venue::standard();
    let settlement = SettlementPrice {
        asset: btc(),
        expiry: ExpiryDate::new(2026, 12, 27).unwrap(),
        price: UnitPrice::from_usdc(1),
    };
    v.prices = PriceInputs::new(v.prices.index().to_vec(), vec![], vec![settlement]).unwrap();
    let outcome = v.block(vec![]);
    assert!(
        outcome
            .block_events()
            .iter()
            .any(|e| matches!(e, Event::PriceIgnored { .. }))
    );
    assert_eq!(
        v.exchange.instrument(v.id(BTC_CALL)).unwrap().status,
        InstrumentStatus::Trading
    );
}

#[test]
fn option_mark_is_clamped_between_intrinsic_and_its_bound() {
    let mut v = Venue::standard();
    // Call strike 100,000 at index 110,000: intrinsic 10,000; a mark of 1,000 is raised.
    v.set_prices(110_000, &[(BTC_CALL, 1_000)]);
    let outcome = v.block(vec![]);
    let call = v.id(BTC_CALL);
    assert!(outcome.block_events().contains(&Event::MarkClamped {
        instrument: call,
        supplied: UnitPrice::from_usdc(1_000),
        applied: UnitPrice::from_usdc(10_000)
    }));
}

// ---- blocks ----

#[test]
fn block_out_of_order_or_back_in_time_is_refused_without_change() {
    let mut v = Venue::standard();
    let digest = v.exchange.state_digest();
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
    let skip = Block {
        height: Height::new(v.exchange.height().get() + 2),
        time: BlockTime::from_millis(v.time_ms + 1),
        prices: PriceInputs::default(),
        observations: Vec::new(),
        txs: vec![],
    };
    assert!(matches!(
        v.exchange.apply_block(&skip.check_signatures(&mut rng)),
        Err(BlockError::HeightNotNext { .. })
    ));
    let back = Block {
        height: v.exchange.height().next(),
        time: BlockTime::from_millis(v.time_ms - 1),
        prices: PriceInputs::default(),
        observations: Vec::new(),
        txs: vec![],
    };
    assert!(matches!(
        v.exchange.apply_block(&back.check_signatures(&mut rng)),
        Err(BlockError::TimeWentBackwards { .. })
    ));
    assert_eq!(v.exchange.state_digest(), digest);
}

// ---- circuit breaker and reopening auction ----

fn ticks(v: &Venue, usdc: i64) -> Price {
    let tick = v
        .exchange
        .instrument(v.id(BTC_PERP))
        .unwrap()
        .spec
        .tick_size;
    UnitPrice::from_usdc(usdc).to_ticks(tick).unwrap()
}

#[test]
fn a_crash_halts_the_perpetual_and_it_reopens_through_the_auction() {
    let mut v = Venue::standard();
    let trade = |v: &mut Venue, usdc: i64| {
        v.order("alice", BTC_PERP, Side::Sell, 1, usdc);
        v.order("bob", BTC_PERP, Side::Buy, 1, usdc).1
    };
    assert_eq!(trades(&trade(&mut v, 100_000)).len(), 1);
    v.set_prices(94_000, &[(BTC_PERP, 94_000)]);
    let events = trade(&mut v, 95_000);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::InstrumentHalted { .. })),
        "a 5% move is allowed"
    );
    v.set_prices(89_000, &[(BTC_PERP, 89_000)]);
    // 100,000 to 89,000 within five minutes: 12.4% > 10%.
    let events = trade(&mut v, 89_000);
    let halted_until = v.time_ms + 60_000;
    assert!(events.contains(&Event::InstrumentHalted {
        instrument: v.id(BTC_PERP),
        low: ticks(&v, 89_000),
        high: ticks(&v, 100_000),
        until_ms: halted_until,
    }));

    // While halted nothing trades: orders wait, immediate ones are cancelled.
    let (rejection, events) = v.order("carol", BTC_PERP, Side::Buy, 2, 90_000);
    assert_eq!(rejection, None);
    assert!(trades(&events).is_empty());
    let (_, events) = v.order("alice", BTC_PERP, Side::Sell, 1, 89_500);
    assert!(trades(&events).is_empty(), "crossing orders wait too");
    let mut ioc = limit(
        v.id(BTC_PERP),
        Side::Sell,
        1,
        UnitPrice::from_usdc(89_000),
        77,
    );
    ioc.order_type = OrderType::Limit {
        price: UnitPrice::from_usdc(89_000),
        time_in_force: TimeInForce::ImmediateOrCancel,
        post_only: false,
    };
    let tx = v.tx("bob", TxBody::PlaceOrder(ioc));
    let (_, events) = v.run(tx);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OrderCancelled {
            reason: CancelReason::ImmediateOrCancel,
            ..
        }
    )));

    // A snapshot taken during the halt restores the waiting orders and the halt.
    let restored = Exchange::restore(&v.exchange.snapshot()).unwrap();
    assert_eq!(restored.snapshot(), v.exchange.snapshot());

    // Reopening: bids 2@90,000, ask 1@89,500. Both prices match 1 with a surplus of 1; the
    // mark (89,000) picks 89,500. Carol's bid arrived first, so it makes.
    let mut reopened = None;
    while reopened.is_none() {
        let outcome = v.block(vec![]);
        assert!(
            v.time_ms <= halted_until + 1_000,
            "reopens at the first block after the halt"
        );
        reopened = outcome.events.iter().find_map(|e| match e {
            Event::InstrumentReopened { price, volume, .. } => Some((*price, *volume)),
            _ => None,
        });
        if reopened.is_some() {
            let t = trades(&outcome.events);
            assert_eq!(t.len(), 1);
            assert_eq!((t[0].price, t[0].qty.contracts()), (ticks(&v, 89_500), 1));
            assert_eq!(t[0].maker_account, v.account("carol"));
        }
    }
    assert_eq!(
        reopened,
        Some((Some(ticks(&v, 89_500)), Qty::from_contracts(1)))
    );
    assert!(v.time_ms >= halted_until);
    assert_eq!(v.position("carol", BTC_PERP), 1);
    assert_eq!(v.position("alice", BTC_PERP), -4);
    // Carol's other contract rests, and continuous trading is back.
    let (_, events) = v.order("alice", BTC_PERP, Side::Sell, 1, 90_000);
    assert_eq!(trades(&events).len(), 1);
    assert_eq!(v.position("carol", BTC_PERP), 2);
}

// ---- market maker protection ----

fn set_mmp(v: &mut Venue, name: &str, frozen_ms: u64, qty_limit: i64, delta_limit_e8: i64) {
    let config = MmpConfig {
        interval_ms: 10_000,
        frozen_ms,
        qty_limit: Qty::from_contracts(qty_limit),
        delta_limit_e8,
    };
    let tx = v.tx(
        name,
        TxBody::SetMmp {
            asset: btc(),
            config: Some(config),
        },
    );
    assert_eq!(v.run(tx).0, None);
}

fn mmp_event(events: &[Event]) -> Option<(i64, i64, u64)> {
    events.iter().find_map(|e| match e {
        Event::MmpTriggered {
            contracts,
            delta_e8,
            frozen_until_ms,
            ..
        } => Some((contracts.contracts(), *delta_e8, *frozen_until_ms)),
        _ => None,
    })
}

#[test]
fn market_maker_protection_pulls_quotes_and_freezes_after_too_many_fills() {
    let mut v = Venue::standard();
    set_mmp(&mut v, "alice", 30_000, 5, i64::MAX);
    v.order("alice", BTC_PERP, Side::Sell, 3, 100_100);
    v.order("alice", BTC_PERP, Side::Sell, 3, 100_200);
    v.order("alice", BTC_PERP, Side::Buy, 2, 99_000);
    v.order("alice", BTC_CALL, Side::Sell, 1, 5_500);
    let (_, events) = v.order("bob", BTC_PERP, Side::Buy, 4, 100_200);
    assert_eq!(
        mmp_event(&events),
        None,
        "4 contracts within the limit of 5"
    );
    let (_, events) = v.order("bob", BTC_PERP, Side::Buy, 2, 100_200);
    let frozen_until = v.time_ms + 30_000;
    assert_eq!(trades(&events).len(), 1, "the fill that trips stands");
    let (contracts, _, until) = mmp_event(&events).expect("tripped at 6 contracts");
    assert_eq!((contracts, until), (6, frozen_until));
    // Every other quote in the underlying was pulled: the perpetual bid and the call.
    let pulled = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::OrderCancelled {
                    reason: CancelReason::MarketMakerProtection,
                    ..
                }
            )
        })
        .count();
    assert_eq!(pulled, 2);
    let alice = v.account("alice");
    assert_eq!(v.exchange.account(alice).unwrap().orders_open(), 0);

    // Frozen: resting orders are refused, taking orders (to hedge) are not.
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Buy, 1, 99_000).0,
        Some(RejectReason::MmpFrozen)
    );
    let mut ioc = limit(
        v.id(BTC_PERP),
        Side::Buy,
        1,
        UnitPrice::from_usdc(99_000),
        500,
    );
    ioc.order_type = OrderType::Limit {
        price: UnitPrice::from_usdc(99_000),
        time_in_force: TimeInForce::ImmediateOrCancel,
        post_only: false,
    };
    let tx = v.tx("alice", TxBody::PlaceOrder(ioc));
    assert_eq!(v.run(tx).0, None);
    // The freeze ends by itself.
    while v.time_ms < frozen_until {
        v.block(vec![]);
    }
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 1, 99_000).0, None);

    // A snapshot keeps the protection.
    let restored = Exchange::restore(&v.exchange.snapshot()).unwrap();
    assert_eq!(restored.snapshot(), v.exchange.snapshot());
}

#[test]
fn an_indefinite_freeze_lasts_until_reset_and_option_fills_count_their_delta() {
    let mut v = Venue::standard();
    // The at-the-money call (index 100,000, strike 100,000, mark 5,000, about a month left)
    // has a delta a little above one half; the limit is 1.5 calls' worth of delta.
    let call_multiplier_e8 = 1_000_000;
    set_mmp(&mut v, "alice", 0, 1_000, call_multiplier_e8 * 3 / 2);
    v.order("alice", BTC_CALL, Side::Sell, 5, 5_000);
    let (_, events) = v.order("bob", BTC_CALL, Side::Buy, 2, 5_000);
    assert_eq!(
        mmp_event(&events),
        None,
        "two calls: about 1.07 calls of delta"
    );
    let (_, events) = v.order("bob", BTC_CALL, Side::Buy, 1, 5_000);
    let (contracts, delta_e8, until) =
        mmp_event(&events).expect("three calls: about 1.6 calls of delta");
    assert_eq!((contracts, until), (3, u64::MAX));
    // Alice sold: negative delta, between 0.5 and 0.6 per call.
    assert!(
        delta_e8 < -3 * call_multiplier_e8 / 2 && delta_e8 > -3 * call_multiplier_e8 * 6 / 10,
        "{delta_e8}"
    );
    for _ in 0..5 {
        v.block(vec![]);
    }
    assert_eq!(
        v.order("alice", BTC_CALL, Side::Sell, 1, 5_000).0,
        Some(RejectReason::MmpFrozen)
    );
    let tx = v.tx("alice", TxBody::ResetMmp { asset: btc() });
    assert_eq!(v.run(tx).0, None);
    assert_eq!(v.order("alice", BTC_CALL, Side::Sell, 1, 5_000).0, None);
    // Resetting what was never set is refused; so is protection on an unlisted asset.
    let tx = v.tx("bob", TxBody::ResetMmp { asset: btc() });
    assert_eq!(v.run(tx).0, Some(RejectReason::MmpNotConfigured));
    let tx = v.tx(
        "bob",
        TxBody::SetMmp {
            asset: AssetCode::parse("ETH").unwrap(),
            config: None,
        },
    );
    assert_eq!(v.run(tx).0, Some(RejectReason::InstrumentUnknown));
}

#[test]
fn the_perpetual_band_widens_with_realised_volatility() {
    let mut v = Venue::standard();
    v.block(vec![]);
    // Calm: the band is the fixed 5%.
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 1, 92_000).0,
        Some(RejectReason::PriceOutsideBand)
    );
    // The index falls 2% a second for five seconds.
    let mut price = 100_000i64;
    for _ in 0..5 {
        price = price * 98 / 100;
        v.set_prices(price, &[(BTC_PERP, price)]);
        v.block(vec![]);
    }
    // Realised variance is now about 330 bps² a second: a five-minute standard deviation of
    // about 3.2%, so four of them make a band of about 12.6% instead of 5%.
    let eight_percent_below = price * 92 / 100 / 10 * 10;
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 1, eight_percent_below)
            .0,
        None
    );
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 1, price * 86 / 100 / 10 * 10)
            .0,
        Some(RejectReason::PriceOutsideBand)
    );
    // It never exceeds the cap, however violent the moves.
    for _ in 0..20 {
        price = price * 70 / 100;
        v.set_prices(price, &[(BTC_PERP, price)]);
        v.block(vec![]);
    }
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 1, price * 79 / 100)
            .0,
        Some(RejectReason::PriceOutsideBand)
    );
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 1, price * 81 / 100)
            .0,
        None
    );
}

// ---- the state copied per block ----

/// A validator applies each block to a copy of its parent's state. The copy shares every
/// instrument's book until the block changes it (`bulwark_book::Book` is copied on write), so
/// a block copies the books it trades in, not the book of every listed instrument. Fails if a
/// per-block pass changes (or asks to change) every book.
#[test]
fn a_copied_state_copies_only_the_books_its_block_changes() {
    let mut v = Venue::standard();
    v.order("alice", BTC_CALL, Side::Sell, 1, 5_100);
    v.order("bob", BTC_PERP, Side::Sell, 1, 100_500);
    let parent = v.exchange.clone();
    let (rejection, _) = v.order("carol", BTC_PERP, Side::Buy, 1, 99_000);
    assert_eq!(rejection, None);
    let book = |exchange: &Exchange, name: &str| {
        exchange
            .instrument(v.id(name))
            .expect("listed")
            .book
            .clone()
    };
    for name in [BTC_CALL, BTC_PUT] {
        assert!(
            book(&v.exchange, name).shares_state_with(&book(&parent, name)),
            "{name}: untouched by the block, so not copied"
        );
    }
    let (perp, perp_before) = (book(&v.exchange, BTC_PERP), book(&parent, BTC_PERP));
    assert!(
        !perp.shares_state_with(&perp_before),
        "the block's order copied its book"
    );
    assert_eq!(
        (perp_before.len(), perp.len()),
        (1, 2),
        "the parent's book kept as it was"
    );
}
