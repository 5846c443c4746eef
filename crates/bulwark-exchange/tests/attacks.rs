//! Attacks on the venue's money, each written as the attacker's transactions through
//! `apply_block`: the attacker ends with no more than an honest trader would, and nobody else
//! (nor the insurance fund) pays for it. One test per attack of issue 13 (economic
//! integrity); a property test drives random attacker streams.
//!
//! Figures: the standard venue (see `common`) lists a call and a put of 0.01 BTC per
//! contract marked at 5,000 (50 USDC a contract) and a perpetual of 0.001 BTC per contract,
//! with the index at 100,000. Option fees are 3 bps of the underlying's notional (0.3 USDC a
//! contract), perpetual taker fees 5 bps.

mod common;

use bulwark_exchange::*;
use bulwark_types::*;
use common::*;
use commonware_cryptography::Signer;
use proptest::prelude::*;

fn usdc(amount: i64) -> Money {
    Money::from_usdc(amount)
}

fn margin(v: &mut Venue, name: &str) -> AccountMargin {
    let id = v.account(name);
    v.exchange.account_margin(id).unwrap()
}

/// The next blocks' index and perpetual mark at `index`, the call at `call`, the put at 5,000.
fn prices(v: &mut Venue, index: i64, call: i64) {
    v.set_prices(
        index,
        &[(BTC_PERP, index), (BTC_CALL, call), (BTC_PUT, 5_000)],
    );
}

fn withdraw(v: &mut Venue, name: &str, amount: Money) -> Option<RejectReason> {
    let tx = v.tx(name, TxBody::Withdraw { amount });
    v.run(tx).0
}

/// Cash less the open perpetual flows: the money an account has realised.
fn realised_balance(v: &Venue, id: AccountId) -> Money {
    let account = v.exchange.account(id).unwrap();
    account
        .exposures
        .iter()
        .filter(|(i, _)| !v.exchange.instrument(**i).unwrap().is_option())
        .fold(account.cash, |sum, (_, e)| sum.checked_add(e.cost).unwrap())
}

// ---- options bought on credit ----

#[test]
fn options_cannot_be_bought_on_credit_nor_their_value_withdrawn() {
    let mut v = Venue::standard();
    v.fund("mallory", 1_000);
    assert_eq!(v.order("carol", BTC_CALL, Side::Sell, 2_000, 5_000).0, None);
    // 2,000 calls cost 100,000 USDC of premium: with 1,000 USDC, refused (the account view
    // used to report 999,090 available after such a purchase).
    let (rejection, _) = v.order("mallory", BTC_CALL, Side::Buy, 2_000, 5_000);
    let Some(RejectReason::PremiumNotCovered { shortfall }) = rejection else {
        panic!("refused for its premium: {rejection:?}")
    };
    // 100,000 premium + 600 fee - 1,000 cash.
    assert_eq!(shortfall, usdc(99_600));
    // 19 calls (950 premium, 5.70 fee) fit; one more does not.
    assert_eq!(v.order("mallory", BTC_CALL, Side::Buy, 19, 5_000).0, None);
    assert_eq!(v.position("mallory", BTC_CALL), 19);
    assert!(matches!(
        v.order("mallory", BTC_CALL, Side::Buy, 1, 5_000).0,
        Some(RejectReason::PremiumNotCovered { .. })
    ));
    assert!(!v.cash("mallory").is_negative(), "premium paid in cash");
    let m = margin(&mut v, "mallory");
    assert_eq!(
        m.withdrawable,
        v.cash("mallory"),
        "only cash is withdrawable"
    );
    assert_eq!(m.withdrawable, Money::from_micros(44_300_000));
    // The mark doubles: equity rises by 950, withdrawable funds do not.
    prices(&mut v, 100_000, 10_000);
    v.block(vec![]);
    let m = margin(&mut v, "mallory");
    assert_eq!(m.equity, Money::from_micros(1_944_300_000));
    assert_eq!(m.withdrawable, Money::from_micros(44_300_000));
    assert_eq!(
        withdraw(&mut v, "mallory", usdc(45)),
        Some(RejectReason::WithdrawalExceedsAvailable {
            shortfall: Money::from_micros(700_000)
        })
    );
    assert_eq!(
        withdraw(&mut v, "mallory", Money::from_micros(44_300_000)),
        None
    );
    let id = v.account("mallory");
    assert_eq!(
        v.until_withdrawal_settles("mallory"),
        Event::Withdrawn {
            account: id,
            amount: Money::from_micros(44_300_000)
        },
        "paid at its release: the cash was still there"
    );
    assert_eq!(v.cash("mallory"), Money::ZERO);
    // Selling the calls at the new price realises the gain: then it may leave.
    let tx = v.tx("carol", TxBody::CancelAll { instrument: None });
    v.run(tx);
    assert_eq!(v.order("alice", BTC_CALL, Side::Buy, 19, 10_000).0, None);
    assert_eq!(v.order("mallory", BTC_CALL, Side::Sell, 19, 10_000).0, None);
    let m = margin(&mut v, "mallory");
    assert_eq!(v.position("mallory", BTC_CALL), 0, "{m:?}");
    assert_eq!(m.withdrawable, v.cash("mallory"));
    assert!(m.withdrawable > usdc(1_800), "{m:?}");
}

#[test]
fn an_option_buyer_pays_the_fee_from_cash_too() {
    let mut v = Venue::standard();
    v.fund("mallory", 50);
    assert_eq!(v.order("carol", BTC_CALL, Side::Sell, 10, 5_000).0, None);
    // 50 USDC of premium leaves nothing for the 0.30 fee.
    assert_eq!(
        v.order("mallory", BTC_CALL, Side::Buy, 1, 5_000).0,
        Some(RejectReason::PremiumNotCovered {
            shortfall: Money::from_micros(300_000)
        })
    );
    let owner = v.key("mallory").public_key();
    let tx = v.bridge_tx(TxBody::Deposit {
        owner,
        amount: Money::from_micros(300_000),
    });
    v.run(tx);
    assert_eq!(v.order("mallory", BTC_CALL, Side::Buy, 1, 5_000).0, None);
    assert_eq!(v.cash("mallory"), Money::ZERO, "never below zero");
}

/// The premium rule holds for amends too: a resting bid for one call amended to 2,000.
#[test]
fn an_amended_option_bid_pays_its_premium_from_cash_too() {
    let mut v = Venue::standard();
    v.fund("mallory", 1_000);
    assert_eq!(v.order("mallory", BTC_CALL, Side::Buy, 1, 4_500).0, None);
    let call = v.id(BTC_CALL);
    let id = v.account("mallory");
    let open = v.exchange.account(id).unwrap();
    let (&client, _) = open.client_orders.iter().next().expect("the bid rests");
    let amend = |qty| TxBody::AmendOrder {
        instrument: call,
        order: OrderRef::Client(client),
        price: UnitPrice::from_usdc(4_500),
        qty: Qty::from_contracts(qty),
    };
    let tx = v.tx("mallory", amend(2_000));
    assert!(matches!(
        v.run(tx).0,
        Some(RejectReason::PremiumNotCovered { .. })
    ));
    let tx = v.tx("mallory", amend(20));
    assert_eq!(v.run(tx).0, None, "45 USDC a contract: 20 fit in 1,000");
}

#[test]
fn buying_back_a_short_option_needs_no_fresh_cash() {
    let mut v = Venue::standard();
    v.fund("mallory", 300);
    assert_eq!(v.order("alice", BTC_CALL, Side::Buy, 1, 5_000).0, None);
    assert_eq!(v.order("mallory", BTC_CALL, Side::Sell, 1, 5_000).0, None);
    assert_eq!(v.position("mallory", BTC_CALL), -1);
    // The short's margin ties up its cash; a buy that closes it reserves no premium.
    assert_eq!(v.order("carol", BTC_CALL, Side::Sell, 1, 5_000).0, None);
    assert_eq!(v.order("mallory", BTC_CALL, Side::Buy, 1, 5_000).0, None);
    assert_eq!(v.position("mallory", BTC_CALL), 0);
}

// ---- perpetual gains and a pumped mark (Mango Markets, October 2022) ----

#[test]
fn unrealised_perpetual_profit_never_leaves() {
    let mut v = Venue::standard();
    v.fund("mallory", 10_000);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 100, 100_000).0, None);
    assert_eq!(
        v.order("mallory", BTC_PERP, Side::Buy, 100, 100_000).0,
        None
    );
    // The mark rises 5%: 500 USDC of unrealised profit.
    prices(&mut v, 105_000, 5_000);
    v.block(vec![]);
    let m = margin(&mut v, "mallory");
    let id = v.account("mallory");
    assert_eq!(m.unrealised, usdc(500));
    assert!(m.withdrawable <= realised_balance(&v, id));
    // Fee 5 USDC, initial margin 2% of 10,500.
    assert_eq!(m.withdrawable, usdc(10_000 - 5 - 210));
    assert!(matches!(
        withdraw(&mut v, "mallory", usdc(10_200)),
        Some(RejectReason::WithdrawalExceedsAvailable { .. })
    ));
    // Closing at the higher price against a real bid realises it.
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 100, 105_000).0, None);
    assert_eq!(
        v.order("mallory", BTC_PERP, Side::Sell, 100, 105_000).0,
        None
    );
    let m = margin(&mut v, "mallory");
    assert_eq!(m.unrealised, Money::ZERO);
    assert_eq!(withdraw(&mut v, "mallory", usdc(10_480)), None);
}

#[test]
fn two_accounts_and_a_pumped_mark_take_out_nothing_they_did_not_bring() {
    let mut v = Venue::standard();
    v.fund("m-long", 5_000);
    v.fund("m-short", 5_000);
    // The attacker takes both sides of 400 contracts (0.4 BTC) with itself.
    assert_eq!(
        v.order("m-short", BTC_PERP, Side::Sell, 400, 100_000).0,
        None
    );
    assert_eq!(v.order("m-long", BTC_PERP, Side::Buy, 400, 100_000).0, None);
    // The mark is pumped 5%: the long shows 2,000 USDC of profit, the short the loss.
    prices(&mut v, 105_000, 5_000);
    v.block(vec![]);
    let long = margin(&mut v, "m-long");
    let short = margin(&mut v, "m-short");
    assert_eq!(long.unrealised, usdc(2_000));
    let taken = [("m-long", long), ("m-short", short)]
        .into_iter()
        .map(|(name, m)| {
            let most = m.withdrawable.max(Money::ZERO);
            if most.is_positive() {
                assert_eq!(withdraw(&mut v, name, most), None);
            }
            most
        })
        .fold(Money::ZERO, |sum, m| sum.checked_add(m).unwrap());
    // Everything the two accounts could take out is less than they deposited.
    assert!(taken < usdc(10_000), "took {taken}");
    // The pump reverts: neither account owes anyone; the fund is untouched.
    prices(&mut v, 100_000, 5_000);
    v.block(vec![]);
    for name in ["m-long", "m-short"] {
        assert!(!margin(&mut v, name).equity.is_negative(), "{name}");
    }
    assert_eq!(v.exchange.ledger().insurance_fund, Money::ZERO);
}

// ---- withdrawal gates ----

/// dave: 1,000 USDC, long 400 perpetual contracts (0.4 BTC, 40x) at 100,000 from bob.
fn leveraged(v: &mut Venue, name: &str) {
    v.fund(name, 1_000);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 400, 100_000).0, None);
    assert_eq!(v.order(name, BTC_PERP, Side::Buy, 400, 100_000).0, None);
}

#[test]
fn no_withdrawal_while_the_account_is_below_maintenance() {
    let mut v = Venue::standard();
    leveraged(&mut v, "dave");
    // Down 1.5%: equity about 380, maintenance 394. The withdrawal takes no liquidity, so it
    // runs before the block's liquidation pass.
    prices(&mut v, 98_500, 5_000);
    assert_eq!(
        withdraw(&mut v, "dave", usdc(1)),
        Some(RejectReason::WithdrawalDuringLiquidation)
    );
}

#[test]
fn withdrawals_wait_while_queued_deficits_exceed_the_fund() {
    let mut params = ExchangeParams::defaults();
    let mut liquidation = params.liquidation.unwrap();
    liquidation.bankruptcies_per_block_max = 1;
    params.liquidation = Some(liquidation);
    let mut v = Venue::standard_with(params);
    leveraged(&mut v, "dave");
    leveraged(&mut v, "erin");
    // Down 3% in one block: both bankrupt; the block's budget closes out one, the other's
    // deficit waits, and the fund (empty) cannot cover it.
    prices(&mut v, 97_000, 5_000);
    let out = v.block(vec![]);
    assert!(
        out.liquidation_events()
            .iter()
            .any(|e| matches!(e, Event::LiquidationQueued { equity, .. } if equity.is_negative()))
    );
    assert!(v.exchange.withdrawals_suspended());
    // carol, flat and rich, waits too: money leaving now would be paid by whoever stays. (A
    // withdrawal takes no liquidity: it runs before its block's liquidation pass.)
    assert_eq!(
        withdraw(&mut v, "carol", usdc(1)),
        Some(RejectReason::WithdrawalsSuspended)
    );
    // That block's pass closed out the second account: withdrawals resume.
    assert!(!v.exchange.withdrawals_suspended());
    assert_eq!(withdraw(&mut v, "carol", usdc(1)), None);
}

// ---- agent keys ----

#[test]
fn an_agent_key_cannot_be_squatted() {
    let mut v = Venue::standard();
    v.fund("mallory", 100);
    let dave = v.key("dave");
    // mallory sees a deposit for dave's new key pending and tries to bind the key first,
    // with a proof it made itself...
    let forged = mallory_binds(&mut v, &dave, |v, nonce| {
        let mallory = v.key("mallory");
        TxBody::authorise_agent(&mallory, &mallory.public_key(), nonce)
    });
    assert_eq!(forged, Some(RejectReason::AgentProofInvalid));
    // ...or with a proof dave really signed, for another owner's transaction.
    let replayed = mallory_binds(&mut v, &dave, |v, nonce| {
        let alice = v.key("alice").public_key();
        TxBody::authorise_agent(&dave, &alice, nonce)
    });
    assert_eq!(replayed, Some(RejectReason::AgentProofInvalid));
    // dave's deposit opens his own account.
    v.fund("dave", 500);
    assert_eq!(v.cash("dave"), usdc(500));
    let (account, role) = v.exchange.key_binding(&dave.public_key()).unwrap();
    assert_eq!(role, KeyRole::Owner);
    assert_ne!(account, v.account("mallory"));
}

/// mallory's `AuthoriseAgent` of `victim`'s key, its proof made by `proof(venue, nonce)`,
/// with the agent field set to the victim's key.
fn mallory_binds(
    v: &mut Venue,
    victim: &PrivateKey,
    proof: impl Fn(&mut Venue, u64) -> TxBody,
) -> Option<RejectReason> {
    let mallory = v.key("mallory");
    let nonce = v.exchange.nonce_last(&mallory.public_key()).unwrap_or(0) + 1;
    let TxBody::AuthoriseAgent { proof, .. } = proof(v, nonce) else {
        unreachable!()
    };
    let body = TxBody::AuthoriseAgent {
        agent: victim.public_key(),
        proof,
    };
    let tx = v.signed(&mallory, body);
    v.run(tx).0
}

// ---- funding from the whole interval ----

#[test]
fn a_mark_pushed_just_before_the_hour_barely_moves_funding() {
    let mut v = Venue::standard();
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 100, 100_000).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 100, 100_000).0, None);
    // Blocks every 10 s with the mark on the index, until the last block before the hour,
    // when the mark is pushed 0.8% up (a wash trade and a quote).
    let hour_ms = START_MS + 3_600_000;
    let mut rates = Vec::new();
    while v.time_ms + 10_000 < hour_ms {
        v.time_ms += 9_000;
        let out = v.block(vec![]);
        rates.extend(funding_rates(&out));
    }
    v.set_prices(
        100_000,
        &[(BTC_PERP, 100_800), (BTC_CALL, 5_000), (BTC_PUT, 5_000)],
    );
    while rates.is_empty() {
        v.time_ms = v.time_ms.max(hour_ms - 1_000);
        let out = v.block(vec![]);
        rates.extend(funding_rates(&out));
    }
    // One sample of 0.8% would pay 1,000 ppm an hour, clamped to 750; the hour's average
    // premium pays about a three-hundredth of that.
    assert_eq!(rates.len(), 1);
    assert!(rates[0] > 0 && rates[0] <= 5, "rate {} ppm", rates[0]);
}

fn funding_rates(out: &BlockOutcome) -> Vec<i64> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::FundingPaid { rate_ppm, .. } => Some(*rate_ppm),
            _ => None,
        })
        .collect()
}

// ---- insurance fund and deleveraging ----

#[test]
fn an_empty_fund_does_not_deleverage_healthy_traders_for_an_unfilled_step() {
    let mut v = Venue::standard();
    leveraged(&mut v, "dave");
    // No bids at all: the step cannot fill, the fund is empty, nobody is bankrupt.
    prices(&mut v, 98_500, 5_000);
    let out = v.block(vec![]);
    let end = out.liquidation_events();
    assert!(
        end.iter()
            .any(|e| matches!(e, Event::LiquidationStep { filled, .. } if filled.is_zero()))
    );
    assert!(
        !end.iter().any(|e| matches!(e, Event::Deleveraged { .. })),
        "bob, healthy, keeps his position: {end:?}"
    );
    assert_eq!(v.position("bob", BTC_PERP), -400);
    assert!(
        end.iter()
            .any(|e| matches!(e, Event::LiquidationQueued { equity, .. } if equity.is_positive()))
    );
    // A bid arrives: it only rests, so its block's liquidation pass runs after it, and that
    // step fills through the book.
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 400, 98_500).0, None);
    assert!(v.position("dave", BTC_PERP) < 400);
}

// ---- risk limits sized to the book ----
//
// On the standard venue the perpetual's book is empty, so its depth reference is the floor:
// 100,000 USDC of notional, 1,000 contracts at 100,000. A margin tier is one depth (1,000
// contracts); each tier beyond the first adds 2% initial and 1% maintenance on the contracts
// in it. Open interest is capped at ten depths: 10,000 contracts.

fn perp_open_interest(v: &Venue) -> i64 {
    v.exchange
        .instrument(v.id(BTC_PERP))
        .unwrap()
        .open_interest()
}

fn longs(v: &Venue) -> i64 {
    let perp = v.id(BTC_PERP);
    v.exchange.accounts().map(|a| a.position(perp).max(0)).sum()
}

#[test]
fn a_whale_far_beyond_the_book_pays_tiered_margin() {
    let mut v = Venue::standard();
    let perp = v.exchange.instrument(v.id(BTC_PERP)).unwrap();
    assert_eq!(perp.depth.reference, 1_000, "an empty book: the floor");
    v.fund("mallory", 20_000);
    assert_eq!(
        v.order("carol", BTC_PERP, Side::Sell, 5_000, 100_000).0,
        None
    );
    // 5,000 contracts (500,000 USDC, 25x on 20,000) would need 10,250 at a flat 2% and the
    // fee; five books deep they need 2% + the tiers' 0, 2, 4, 6 and 8% on each thousand:
    // 10,000 + 20,000.
    let (rejection, _) = v.order("mallory", BTC_PERP, Side::Buy, 5_000, 100_000);
    let Some(RejectReason::MarginInsufficient { shortfall }) = rejection else {
        panic!("a whale five books deep is refused: {rejection:?}");
    };
    assert_eq!(shortfall, usdc(30_000 + 250 - 20_000));
    // Three books deep fits: 3,000 contracts need 6,000 + (0 + 2 + 4)% x 100,000 = 12,000
    // initial and 3,000 + (0 + 1 + 2)% x 100,000 = 6,000 maintenance.
    assert_eq!(
        v.order("mallory", BTC_PERP, Side::Buy, 3_000, 100_000).0,
        None
    );
    assert_eq!(v.position("mallory", BTC_PERP), 3_000);
    let m = margin(&mut v, "mallory");
    assert_eq!(m.requirement.initial, usdc(12_000));
    assert_eq!(m.requirement.maintenance, usdc(6_000));
    // The same position under flat rates needs half: 6,000 and 3,000.
    let mut flat = ExchangeParams::defaults();
    flat.risk_limits = None;
    let mut w = Venue::standard_with(flat);
    w.fund("mallory", 20_000);
    assert_eq!(
        w.order("carol", BTC_PERP, Side::Sell, 3_000, 100_000).0,
        None
    );
    assert_eq!(
        w.order("mallory", BTC_PERP, Side::Buy, 3_000, 100_000).0,
        None
    );
    let m = margin(&mut w, "mallory");
    assert_eq!(
        (m.requirement.initial, m.requirement.maintenance),
        (usdc(6_000), usdc(3_000))
    );
    // Choosing portfolio margin does not escape the tiers: the add-on stays on top of the grid.
    let tx = v.tx("mallory", TxBody::SetMarginMode { portfolio: true });
    let _ = v.run(tx);
    let m = margin(&mut v, "mallory");
    assert!(m.requirement.maintenance >= usdc(3_000), "{m:?}");
}

#[test]
fn the_open_interest_cap_refuses_opening_orders_but_never_reducing_ones() {
    let mut v = Venue::standard();
    v.fund("dave", 1_000_000);
    // alice offers 12,000 contracts: resting opens nothing yet, so she is not refused.
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 12_000, 100_000).0,
        None
    );
    assert_eq!(v.order("bob", BTC_PERP, Side::Buy, 9_000, 100_000).0, None);
    assert_eq!(perp_open_interest(&v), 9_000);
    // 2,000 more would take open interest to 11,000, past the cap of 10,000.
    assert_eq!(
        v.order("carol", BTC_PERP, Side::Buy, 2_000, 100_000).0,
        Some(RejectReason::OpenInterestCap)
    );
    assert_eq!(
        v.order("carol", BTC_PERP, Side::Buy, 1_000, 100_000).0,
        None
    );
    assert_eq!(perp_open_interest(&v), 10_000);
    // At the cap: a bid that would rest (below the offer) still rests; one that takes is
    // refused.
    assert_eq!(v.order("dave", BTC_PERP, Side::Buy, 10, 99_000).0, None);
    assert_eq!(
        v.order("dave", BTC_PERP, Side::Buy, 10, 100_000).0,
        Some(RejectReason::OpenInterestCap)
    );
    // alice buys back part of her short from bob: both reduce, and neither is refused.
    let tx = v.tx("alice", TxBody::CancelAll { instrument: None });
    assert_eq!(v.run(tx).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 500, 99_500).0, None);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 500, 99_500).0, None);
    assert_eq!(v.position("bob", BTC_PERP), 8_500);
    assert_eq!(perp_open_interest(&v), 9_500);
    // dave's resting bid at 99,000 is hit by bob reducing: open interest is unchanged.
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 10, 99_000).0, None);
    assert_eq!(v.position("dave", BTC_PERP), 10);
    assert_eq!(perp_open_interest(&v), 9_500);
    assert_eq!(perp_open_interest(&v), longs(&v));
}

#[test]
fn open_interest_stays_the_sum_of_longs_through_liquidation_and_deleveraging() {
    let mut v = Venue::standard();
    leveraged(&mut v, "dave");
    leveraged(&mut v, "erin");
    assert_eq!(perp_open_interest(&v), 800);
    // A thin bid, then a fall: steps through the book, the rest (the book never showed depth
    // the backstop could unwind into) deleveraged at the mark against bob's short, and
    // deleveraging for the deficits.
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 50, 98_500).0, None);
    let mut deleveraged = false;
    for index in [98_500, 97_000, 95_000, 94_000] {
        prices(&mut v, index, 5_000);
        let out = v.block(vec![]);
        deleveraged |= out
            .events
            .iter()
            .any(|e| matches!(e, Event::Deleveraged { .. }));
        assert_eq!(perp_open_interest(&v), longs(&v));
        assert_eq!(v.exchange.check_invariants(), Ok(()));
    }
    assert!(deleveraged, "the fall went through deleveraging");
    for name in ["dave", "erin"] {
        let m = margin(&mut v, name);
        assert!(
            v.position(name, BTC_PERP) == 0 || m.equity >= m.requirement.maintenance,
            "{name} is flat or back above maintenance: {m:?}"
        );
    }
    let snapshot = v.exchange.snapshot();
    let restored = Exchange::restore(&snapshot).unwrap();
    let perp = v.id(BTC_PERP);
    assert_eq!(
        restored.instrument(perp).unwrap().open_interest(),
        perp_open_interest(&v),
        "restore rebuilds open interest from the positions"
    );
}

// ---- a position too large for the book (Hyperliquid JELLY, March 2025) ----
//
// The attacker opens 3,000 contracts (300,000 USDC) between two accounts, thirty times what
// the book shows, and the price rises 30% a thousand a block. His short falls below
// maintenance at about +3%; the book takes almost nothing of it. Handed to the backstop at
// the mark, the insurance fund would carry it through the rest of the rise while his long
// keeps the gain. The backstop takes only what the book has shown it can unwind; the rest is
// deleveraged at the mark against the most profitable, most leveraged longs.

/// The insurance fund funded with 1,000,000 USDC, a thin honest book (alice: 10 contracts
/// each side, 1% from the index), and the attacker's `long` and `short` (20,000 USDC each,
/// `long` with `long_usdc`) holding 3,000 contracts against each other at 100,000.
fn whale(v: &mut Venue, long: &str, long_usdc: i64) {
    let tx = v.bridge_tx(TxBody::FundInsurance {
        amount: usdc(1_000_000),
    });
    assert_eq!(v.run(tx).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 10, 99_000).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Sell, 10, 101_000).0, None);
    v.fund(long, long_usdc);
    v.fund("short", 20_000);
    assert_eq!(
        v.order("short", BTC_PERP, Side::Sell, 3_000, 100_000).0,
        None
    );
    assert_eq!(v.order(long, BTC_PERP, Side::Buy, 3_000, 100_000).0, None);
    assert_eq!(v.position(long, BTC_PERP), 3_000);
    assert_eq!(v.position("short", BTC_PERP), -3_000);
}

/// The index and the perpetual's mark rise from 100,000 by 1,000 a block to 130,000.
fn rise(v: &mut Venue) -> Vec<Event> {
    let mut events = Vec::new();
    for step in 1..=30 {
        prices(v, 100_000 + 1_000 * step, 5_000);
        events.extend(v.block(vec![]).liquidation_events().iter().cloned());
    }
    events
}

fn equity(v: &mut Venue, name: &str) -> Money {
    margin(v, name).equity
}

/// The attacker's accounts' equity together.
fn equity_of<S: AsRef<str>>(v: &mut Venue, names: &[S]) -> Money {
    names.iter().fold(Money::ZERO, |total, name| {
        total.checked_add(equity(v, name.as_ref())).unwrap()
    })
}

/// Contracts the backstop took over in `events`.
fn backstop_took(events: &[Event]) -> i64 {
    events
        .iter()
        .filter_map(|e| match e {
            Event::BackstopTakeover { position, .. } => Some(position.abs()),
            _ => None,
        })
        .sum()
}

#[test]
fn a_position_too_large_for_the_book_is_not_the_funds_to_carry() {
    let mut v = Venue::standard();
    whale(&mut v, "long", 20_000);
    let fund = v.exchange.ledger().insurance_fund;
    let events = rise(&mut v);
    let attacker = equity_of(&mut v, &["long", "short"]);
    // Before: the backstop took about 2,800 contracts of the short as the price passed
    // 102,000 to 110,000 and the fund paid the rest of the rise (about 60,000); the attacker
    // ended at 109,852 on his 40,000. Now he keeps at most what anyone buying alice's ask
    // would: her 10 contracts at 101,000, up 29,000 each BTC, 290 (less his fees).
    assert!(
        attacker <= usdc(40_000 + 290),
        "the attacker gains nothing from the fund: {attacker:?}"
    );
    assert!(
        v.exchange.ledger().insurance_fund >= fund,
        "the fund pays nothing: {:?} from {fund:?}",
        v.exchange.ledger().insurance_fund
    );
    assert_eq!(
        backstop_took(&events),
        0,
        "the book showed no depth to unwind into"
    );
    // The short was deleveraged against the long (the most profitable, most leveraged): the
    // two positions closed against each other at the mark.
    let (short, long) = (v.account("short"), v.account("long"));
    assert!(events.iter().any(|e| matches!(e,
        Event::Deleveraged { account, counterparty, charged, .. }
            if *account == short && *counterparty == long && *charged == Money::ZERO)));
    assert_eq!(v.position("short", BTC_PERP), 0);
    assert!(
        v.position("long", BTC_PERP) <= 20,
        "only what the book took stays long"
    );
    assert_eq!(v.exchange.check_invariants(), Ok(()));
}

#[test]
fn a_whale_long_ranked_last_for_deleveraging_still_gains_nothing() {
    // The long sits in an account with 5,000,000 USDC, so its leverage ranks it below erin,
    // an honest 5x long (1,000 USDC, 50 contracts from carol): erin is deleveraged first.
    let mut v = Venue::standard();
    v.fund("erin", 1_000);
    assert_eq!(v.order("carol", BTC_PERP, Side::Sell, 50, 100_000).0, None);
    assert_eq!(v.order("erin", BTC_PERP, Side::Buy, 50, 100_000).0, None);
    let erin_before = equity(&mut v, "erin");
    whale(&mut v, "rich", 5_000_000);
    let fund = v.exchange.ledger().insurance_fund;
    let events = rise(&mut v);
    let attacker = equity_of(&mut v, &["rich", "short"]);
    // Deleveraging erin first leaves the attacker long her 50 contracts (and alice's 10)
    // against carol and alice, the honest shorts: he keeps their rise after erin was closed,
    // at most 60 contracts x 0.001 x 30,000 = 1,800, which erin would otherwise have kept.
    // That is bounded by the honest longs' size, not by his 3,000 (before: +69,852).
    assert!(
        attacker <= usdc(5_020_000 + 1_800),
        "the attacker gains nothing from the fund: {attacker:?}"
    );
    assert!(v.exchange.ledger().insurance_fund >= fund);
    // erin was closed at the mark first: she lost her position, not money (she keeps the
    // rise up to the block she was closed in).
    let erin = v.account("erin");
    assert!(events.iter().any(|e| matches!(e,
        Event::Deleveraged { counterparty, charged, .. }
            if *counterparty == erin && *charged == Money::ZERO)));
    assert_eq!(v.position("erin", BTC_PERP), 0);
    assert!(equity(&mut v, "erin") > erin_before);
    assert_eq!(v.exchange.check_invariants(), Ok(()));
}

#[test]
fn a_whale_short_spread_over_ten_accounts_gains_nothing_either() {
    // The short split into ten accounts of 300 contracts (2,000 USDC each, each inside the
    // first margin tier): the backstop's room is one per instrument, not per account.
    let mut v = Venue::standard();
    let tx = v.bridge_tx(TxBody::FundInsurance {
        amount: usdc(1_000_000),
    });
    assert_eq!(v.run(tx).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 10, 99_000).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Sell, 10, 101_000).0, None);
    v.fund("long", 20_000);
    let shorts: Vec<String> = (0..10).map(|n| format!("short{n}")).collect();
    for short in &shorts {
        v.fund(short, 2_000);
        assert_eq!(v.order(short, BTC_PERP, Side::Sell, 300, 100_000).0, None);
        assert_eq!(v.order("long", BTC_PERP, Side::Buy, 300, 100_000).0, None);
    }
    assert_eq!(v.position("long", BTC_PERP), 3_000);
    let fund = v.exchange.ledger().insurance_fund;
    let events = rise(&mut v);
    let attacker = equity(&mut v, "long")
        .checked_add(equity_of(&mut v, &shorts))
        .unwrap();
    assert_eq!(backstop_took(&events), 0);
    assert!(v.exchange.ledger().insurance_fund >= fund);
    assert!(
        attacker <= usdc(40_000 + 290),
        "the attacker gains nothing from the fund: {attacker:?}"
    );
}

#[test]
fn depth_rested_then_withdrawn_does_not_make_room_in_the_backstop() {
    // The attacker first rests 3,000 contracts each side, 1% from the index, for ten minutes
    // (two half-lives: the depth average climbs to about 1,900), cancels them, and only then
    // opens and pumps. The average lags the cancellation by minutes; the backstop's room
    // follows the book as last sampled, so it is gone with the quotes.
    let mut v = Venue::standard();
    v.fund("quoter", 1_000_000);
    assert_eq!(
        v.order("quoter", BTC_PERP, Side::Buy, 3_000, 99_000).0,
        None
    );
    assert_eq!(
        v.order("quoter", BTC_PERP, Side::Sell, 3_000, 101_000).0,
        None
    );
    for _ in 0..600 {
        v.block(vec![]);
    }
    let perp = v.id(BTC_PERP);
    let average = v.exchange.instrument(perp).unwrap().depth.average();
    assert!(average > 1_500, "{average}");
    let tx = v.tx("quoter", TxBody::CancelAll { instrument: None });
    assert_eq!(v.run(tx).0, None);
    whale(&mut v, "long", 20_000);
    let fund = v.exchange.ledger().insurance_fund;
    let events = rise(&mut v);
    let attacker = equity_of(&mut v, &["long", "short", "quoter"]);
    // Before: the backstop took about 1,800 contracts (the lagging average) and the fund
    // paid their rise.
    let took = backstop_took(&events);
    assert!(took <= 10, "{took}");
    assert!(v.exchange.ledger().insurance_fund >= fund);
    assert!(
        attacker <= usdc(1_040_000 + 290),
        "the attacker gains nothing from the fund: {attacker:?}"
    );
}

// ---- random attacker streams ----

#[derive(Clone, Debug)]
enum Op {
    /// The attacker trades with itself: `seller` rests, the other takes.
    SelfTrade {
        perp: bool,
        qty: i64,
        offset_bps: i64,
    },
    /// A quote from an attacker account or an honest one.
    Quote {
        who: usize,
        perp: bool,
        buy: bool,
        qty: i64,
        offset_bps: i64,
    },
    /// The proposer moves the marks (the attacker pumping them).
    Pump { perp_bps: i64, call_bps: i64 },
    /// An attacker account withdraws a share of its funds, or far more.
    Withdraw { who: usize, per_mille: i64 },
    /// An attacker binds a key it does not hold.
    Squat { who: usize },
}

const ATTACKERS: [&str; 2] = ["m1", "m2"];
const EVERYONE: [&str; 5] = ["m1", "m2", "alice", "bob", "carol"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), 1i64..200, -400i64..400).prop_map(|(perp, qty, offset_bps)| {
            Op::SelfTrade {
                perp,
                qty,
                offset_bps,
            }
        }),
        (
            0usize..5,
            any::<bool>(),
            any::<bool>(),
            1i64..300,
            -400i64..400
        )
            .prop_map(|(who, perp, buy, qty, offset_bps)| Op::Quote {
                who,
                perp,
                buy,
                qty,
                offset_bps,
            }),
        (-450i64..450, -2_500i64..2_500)
            .prop_map(|(perp_bps, call_bps)| Op::Pump { perp_bps, call_bps }),
        (0usize..2, 1i64..3_000).prop_map(|(who, per_mille)| Op::Withdraw { who, per_mille }),
        (0usize..2).prop_map(|who| Op::Squat { who }),
    ]
}

fn price_at(base: i64, offset_bps: i64, tick: i64) -> i64 {
    let raw = base + base * offset_bps / 10_000;
    (raw / tick).max(1) * tick
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the attacker does, no account's withdrawable funds exceed its realised
    /// balance (deposits, realised profit and premium received, less premium paid, fees and
    /// withdrawals), every withdrawal paid is within the funds measured before its block (with
    /// what a held withdrawal holds back), and nobody's
    /// key is bound without its holder.
    #[test]
    fn attacker_streams_take_out_only_realised_money(ops in proptest::collection::vec(op(), 1..40)) {
        let mut v = Venue::standard();
        for name in ATTACKERS {
            v.fund(name, 20_000);
        }
        let (mut perp_mark, mut call_mark) = (100_000i64, 5_000i64);
        for op in ops {
            // What may leave in this block: the funds measured before it, and a withdrawal
            // asked for earlier and held until now (paid only if the account still covers it).
            let before: Vec<Money> = ATTACKERS
                .iter()
                .map(|name| {
                    let id = v.account(name);
                    let held = v.exchange.pending_withdrawal(id).map_or(Money::ZERO, |p| p.amount);
                    margin(&mut v, name).withdrawable.checked_add(held).unwrap()
                })
                .collect();
            let txs = match op {
                Op::SelfTrade { perp, qty, offset_bps } => {
                    let (name, base, tick) = if perp {
                        (BTC_PERP, perp_mark, 1)
                    } else {
                        (BTC_CALL, call_mark, 5)
                    };
                    let price = UnitPrice::from_usdc(price_at(base, offset_bps, tick));
                    let id = v.id(name);
                    let client = v.exchange.height().get() * 10;
                    vec![
                        v.tx("m1", TxBody::PlaceOrder(limit(id, Side::Sell, qty, price, client))),
                        v.tx("m2", TxBody::PlaceOrder(limit(id, Side::Buy, qty, price, client + 1))),
                    ]
                }
                Op::Quote { who, perp, buy, qty, offset_bps } => {
                    let (name, base, tick) = if perp {
                        (BTC_PERP, perp_mark, 1)
                    } else {
                        (BTC_CALL, call_mark, 5)
                    };
                    let price = UnitPrice::from_usdc(price_at(base, offset_bps, tick));
                    let id = v.id(name);
                    let side = if buy { Side::Buy } else { Side::Sell };
                    let client = v.exchange.height().get() * 10 + 5;
                    vec![v.tx(EVERYONE[who], TxBody::PlaceOrder(limit(id, side, qty, price, client)))]
                }
                Op::Pump { perp_bps, call_bps } => {
                    perp_mark = price_at(100_000, perp_bps, 1);
                    call_mark = price_at(5_000, call_bps, 5);
                    v.set_prices(
                        perp_mark,
                        &[(BTC_PERP, perp_mark), (BTC_CALL, call_mark), (BTC_PUT, 5_000)],
                    );
                    vec![]
                }
                Op::Withdraw { who, per_mille } => {
                    let most = before[who].max(Money::from_micros(1));
                    let amount = Money::from_micros(most.micros() * i128::from(per_mille) / 1_000)
                        .max(Money::from_micros(1));
                    vec![v.tx(ATTACKERS[who], TxBody::Withdraw { amount })]
                }
                Op::Squat { who } => {
                    let victim = v.key("victim");
                    let attacker = v.key(ATTACKERS[who]);
                    let nonce = v.exchange.nonce_last(&attacker.public_key()).unwrap_or(0) + 1;
                    let TxBody::AuthoriseAgent { proof, .. } =
                        TxBody::authorise_agent(&attacker, &attacker.public_key(), nonce)
                    else {
                        unreachable!()
                    };
                    let body = TxBody::AuthoriseAgent { agent: victim.public_key(), proof };
                    vec![v.signed(&attacker, body)]
                }
            };
            let out = v.block(txs);
            for (n, name) in ATTACKERS.iter().enumerate() {
                let id = v.account(name);
                let withdrawn: i128 = out
                    .events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Withdrawn { account, amount } if *account == id => Some(amount.micros()),
                        _ => None,
                    })
                    .sum();
                prop_assert!(withdrawn <= before[n].micros().max(0), "{name} withdrew {withdrawn}");
            }
            for id in v.exchange.accounts().map(|a| a.id).collect::<Vec<_>>() {
                let m = v.exchange.account_margin(id).unwrap();
                prop_assert!(m.withdrawable <= realised_balance(&v, id));
                if let Some(a) = v.exchange.account(id)
                    && a.exposures.iter().all(|(i, _)| v.exchange.instrument(*i).unwrap().is_option())
                {
                    prop_assert!(m.withdrawable <= a.cash);
                }
            }
            let victim = v.key("victim").public_key();
            prop_assert_eq!(v.exchange.key_binding(&victim), None);
        }
    }
}

// ---- open interest over random order streams ----

#[derive(Clone, Debug)]
enum Flow {
    /// A trader's perpetual order: resting or immediate, `offset_bps` from the mark.
    Order {
        who: usize,
        buy: bool,
        qty: i64,
        offset_bps: i64,
        immediate: bool,
    },
    /// The index and mark move (liquidations, backstop, deleveraging follow).
    Move { bps: i64 },
    /// A trader cancels everything.
    Cancel { who: usize },
}

const TRADERS: [&str; 5] = ["alice", "bob", "carol", "t1", "t2"];

fn flow() -> impl Strategy<Value = Flow> {
    prop_oneof![
        4 => (0usize..5, any::<bool>(), 1i64..4_000, -300i64..300, any::<bool>()).prop_map(
            |(who, buy, qty, offset_bps, immediate)| Flow::Order {
                who,
                buy,
                qty,
                offset_bps,
                immediate,
            }
        ),
        1 => (-600i64..600).prop_map(|bps| Flow::Move { bps }),
        1 => (0usize..5).prop_map(|who| Flow::Cancel { who }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Whatever trades, is liquidated, taken over by the backstop or deleveraged, the open
    /// interest the instrument tracks is the sum of the long positions after every block, and
    /// an order refused for the cap could have opened past it.
    #[test]
    fn tracked_open_interest_is_the_sum_of_longs(flows in proptest::collection::vec(flow(), 1..60)) {
        let mut v = Venue::standard();
        v.fund("t1", 30_000);
        v.fund("t2", 5_000);
        let perp = v.id(BTC_PERP);
        let mut mark = 100_000i64;
        for (n, f) in flows.into_iter().enumerate() {
            let mut ordered = 0;
            let txs = match f {
                Flow::Order { who, buy, qty, offset_bps, immediate } => {
                    ordered = qty;
                    let price = UnitPrice::from_usdc(price_at(mark, offset_bps, 1));
                    let side = if buy { Side::Buy } else { Side::Sell };
                    let mut request = limit(perp, side, qty, price, 1_000 + n as u64);
                    if immediate {
                        request = OrderRequest::limit(
                            perp,
                            ClientOrderId::new(1_000 + n as u64),
                            side,
                            Qty::from_contracts(qty),
                            price,
                            TimeInForce::ImmediateOrCancel,
                        );
                    }
                    vec![v.tx(TRADERS[who], TxBody::PlaceOrder(request))]
                }
                Flow::Move { bps } => {
                    mark = price_at(mark, bps, 1).max(50_000);
                    prices(&mut v, mark, 5_000);
                    vec![]
                }
                Flow::Cancel { who } => {
                    vec![v.tx(TRADERS[who], TxBody::CancelAll { instrument: None })]
                }
            };
            let before = perp_open_interest(&v);
            let out = v.block(txs);
            if out.txs.first().and_then(|t| t.rejection) == Some(RejectReason::OpenInterestCap) {
                // What an order opens is at most its size.
                let cap = 10 * v.exchange.instrument(perp).unwrap().depth.reference;
                prop_assert!(before + ordered > cap, "refused within the cap: {before} + {ordered} of {cap}");
            }
            prop_assert_eq!(perp_open_interest(&v), longs(&v));
        }
    }
}
