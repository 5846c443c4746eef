//! An exchange whose index comes from the validators' signed observations: quorum, liars,
//! the deviation guard, the proposer's index ignored, and the stale mode's degraded trading.

mod common;

use bulwark_exchange::event::PriceIgnoredReason;
use bulwark_exchange::oracle::OracleGenesis;
use bulwark_exchange::*;
use bulwark_oracle::OracleConfig;
use bulwark_types::*;
use common::*;
use commonware_cryptography::Signer;

fn validators() -> Vec<PrivateKey> {
    (0..4).map(|i| PrivateKey::from_seed(500 + i)).collect()
}

/// A venue whose oracle is the four validators above, with the perpetual listed and alice,
/// bob and carol funded; no observation yet.
fn venue() -> Venue {
    let oracle = OracleGenesis {
        validators: validators().iter().map(|k| k.public_key()).collect(),
        config: OracleConfig::GENESIS,
    };
    let mut v = Venue::with_genesis(ExchangeParams::defaults(), Some(oracle));
    let listing = v.admin_tx(TxBody::ListInstrument(spec(BTC_PERP)));
    v.block(vec![listing]);
    for name in ["alice", "bob", "carol"] {
        v.fund(name, 1_000_000);
    }
    v
}

/// Observations at `usdc` by the validators in `who`, made at the next block's time.
fn observe(v: &mut Venue, who: &[(usize, i64)]) {
    let keys = validators();
    v.observations = who
        .iter()
        .map(|(i, usdc)| {
            Observation {
                validator: keys[*i].public_key(),
                asset: btc(),
                price: UnitPrice::from_usdc(*usdc),
                observed_at_ms: v.time_ms + 1_000,
                sources: 3,
            }
            .sign(&keys[*i])
        })
        .collect();
}

/// A block whose proposer marks `instrument` at `usdc`; whether the exchange ignored the mark
/// because the oracle governs it.
fn propose_mark(v: &mut Venue, instrument: &str, usdc: i64) -> bool {
    v.prices = PriceInputs::new(
        vec![],
        vec![MarkPrice {
            instrument: v.id(instrument),
            price: UnitPrice::from_usdc(usdc),
        }],
        vec![],
    )
    .unwrap();
    let outcome = v.block(vec![]);
    outcome.events.iter().any(|e| {
        matches!(
            e,
            Event::PriceIgnored {
                reason: PriceIgnoredReason::OracleGoverned,
                ..
            }
        )
    })
}

fn mode_changes(outcome: &BlockOutcome) -> Vec<bool> {
    outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Event::OracleModeChanged { fresh, .. } => Some(*fresh),
            _ => None,
        })
        .collect()
}

#[test]
fn a_quorum_sets_the_index_and_a_liar_cannot_move_it() {
    let mut v = venue();
    assert!(
        !v.exchange.oracle_fresh(btc()),
        "stale until the first quorum"
    );
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Buy, 1, 100_000).0,
        Some(RejectReason::MarkPriceUnavailable),
        "no index at all yet"
    );

    // Three honest validators and one that reports ten times the price.
    observe(
        &mut v,
        &[(0, 100_000), (1, 100_010), (2, 99_990), (3, 1_000_000)],
    );
    let outcome = v.block(vec![]);
    assert_eq!(mode_changes(&outcome), vec![true]);
    // Median of four: the mean of the middle two, 100,000 and 100,010.
    assert_eq!(
        v.exchange.index_price(btc()),
        Some(UnitPrice::from_usdc(100_005))
    );
    assert!(v.exchange.oracle_fresh(btc()));
    // The proposer's own index is not taken.
    v.set_prices(50_000, &[(BTC_PERP, 100_000)]);
    let outcome = v.block(vec![]);
    assert!(outcome.events.iter().any(|e| matches!(
        e,
        Event::PriceIgnored {
            reason: PriceIgnoredReason::OracleGoverned,
            ..
        }
    )));
    assert_eq!(
        v.exchange.index_price(btc()),
        Some(UnitPrice::from_usdc(100_005))
    );
    // Trading works while fresh.
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 2, 100_000).0, None);
    assert_eq!(
        trades(&v.order("bob", BTC_PERP, Side::Sell, 2, 100_000).1).len(),
        1
    );
    // The liar is on record.
    let state = v.exchange.oracle_state().unwrap();
    let liar = state.records().get(&validators()[3].public_key()).unwrap();
    assert!(liar.outliers > 0);
    let restored = Exchange::restore(&v.exchange.snapshot()).unwrap();
    assert_eq!(restored.snapshot(), v.exchange.snapshot());
}

#[test]
fn a_one_block_spike_is_clamped_by_the_guard() {
    let mut v = venue();
    observe(&mut v, &[(0, 100_000), (1, 100_000), (2, 100_000)]);
    v.block(vec![]);
    // Everyone sees 130,000 one second later: the index may move 1% + 0.5%/s.
    observe(&mut v, &[(0, 130_000), (1, 130_000), (2, 130_000)]);
    let outcome = v.block(vec![]);
    assert!(
        outcome
            .events
            .iter()
            .any(|e| matches!(e, Event::IndexClamped { .. }))
    );
    assert_eq!(
        v.exchange.index_price(btc()),
        Some(UnitPrice::from_usdc(101_500))
    );
}

#[test]
fn without_a_quorum_only_risk_reducing_orders_trade_and_funding_pauses() {
    let mut v = venue();
    observe(&mut v, &[(0, 100_000), (1, 100_000), (2, 100_000)]);
    v.block(vec![]);
    v.prices = PriceInputs::new(
        vec![],
        vec![MarkPrice {
            instrument: v.id(BTC_PERP),
            price: UnitPrice::from_usdc(100_000),
        }],
        vec![],
    )
    .unwrap();
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 3, 100_000).0, None);
    assert_eq!(
        trades(&v.order("bob", BTC_PERP, Side::Sell, 3, 100_000).1).len(),
        1
    );
    v.order("alice", BTC_PERP, Side::Sell, 1, 100_500);

    // Only two validators report: below the quorum of three. Staleness is judged over the
    // observation age (5 s), not per block: it comes once the last quorum is older.
    observe(&mut v, &[(0, 100_000), (1, 100_000)]);
    let outcome = v.block(vec![]);
    assert_eq!(mode_changes(&outcome), Vec::<bool>::new());
    v.time_ms += 5_000;
    observe(&mut v, &[(0, 100_000), (1, 100_000)]);
    let outcome = v.block(vec![]);
    assert_eq!(mode_changes(&outcome), vec![false]);
    // Adding risk is refused; cutting it is not; cancels always work.
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Buy, 1, 100_000).0,
        Some(RejectReason::OracleStale)
    );
    assert_eq!(
        v.order("carol", BTC_PERP, Side::Sell, 1, 100_000).0,
        Some(RejectReason::OracleStale)
    );
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 2, 100_500).0,
        None,
        "alice is long 3"
    );
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 4, 100_500).0,
        Some(RejectReason::OracleStale),
        "more than her position"
    );
    let tx = v.tx("alice", TxBody::CancelAll { instrument: None });
    assert_eq!(v.run(tx).0, None);
    // No funding while stale, however long.
    v.time_ms += 2 * 3_600_000;
    let outcome = v.block(vec![]);
    assert!(
        !outcome
            .events
            .iter()
            .any(|e| matches!(e, Event::FundingPaid { .. }))
    );

    // A quorum again: fresh, and trading resumes.
    observe(&mut v, &[(0, 100_000), (1, 100_000), (3, 100_000)]);
    let outcome = v.block(vec![]);
    assert_eq!(mode_changes(&outcome), vec![true]);
    assert_eq!(v.order("carol", BTC_PERP, Side::Sell, 1, 100_000).0, None);
}

fn mark(v: &Venue) -> i64 {
    v.exchange
        .instrument(v.id(BTC_PERP))
        .unwrap()
        .mark
        .unwrap()
        .micros()
        / 1_000_000
}

#[test]
fn the_exchange_marks_the_perpetual_itself_within_half_a_band_of_the_index() {
    let mut v = venue();
    observe(&mut v, &[(0, 100_000), (1, 100_000), (2, 100_000)]);
    // The proposer's mark is not taken.
    assert!(propose_mark(&mut v, BTC_PERP, 150_000));
    assert_eq!(mark(&v), 100_000, "no book, no trade: the index");
    // A book quoted well above the index, and a trade there: mid and last trade pull the mark
    // up, but never beyond half the 5% band (2.5%).
    v.order("alice", BTC_PERP, Side::Buy, 1, 104_900);
    v.order("bob", BTC_PERP, Side::Sell, 1, 104_990);
    v.order("carol", BTC_PERP, Side::Sell, 1, 104_950);
    v.order("alice", BTC_PERP, Side::Buy, 1, 104_950);
    for _ in 0..3 {
        v.block(vec![]);
    }
    assert_eq!(mark(&v), 102_500);
}

#[test]
fn options_settle_on_the_index_average_of_their_last_half_hour() {
    let mut v = venue();
    // Expires 2026-11-25 08:00 UTC.
    let call = "BTC_USDC-25NOV26-100000-C";
    let listing = v.admin_tx(TxBody::ListInstrument(spec(call)));
    v.block(vec![listing]);
    let expiry = ExpiryDate::new(2026, 11, 25).unwrap().expiry_millis();
    observe(&mut v, &[(0, 100_000), (1, 100_000), (2, 100_000)]);
    v.prices = PriceInputs::new(
        vec![],
        vec![MarkPrice {
            instrument: v.id(call),
            price: UnitPrice::from_usdc(3_000),
        }],
        vec![],
    )
    .unwrap();
    v.block(vec![]);
    v.order("alice", call, Side::Buy, 1, 3_000);
    v.order("bob", call, Side::Sell, 1, 3_000);
    // Forty minutes before expiry, then a block a minute: the index holds at 100,000 until
    // fifteen minutes before expiry and at 102,000 after.
    v.time_ms = expiry - 40 * 60_000;
    let mut settled = None;
    while settled.is_none() {
        let usdc = if v.time_ms + 1_000 < expiry - 15 * 60_000 {
            100_000
        } else {
            102_000
        };
        observe(&mut v, &[(0, usdc), (1, usdc), (2, usdc)]);
        let outcome = v.block(vec![]);
        settled = outcome.events.iter().find_map(|e| match e {
            Event::InstrumentSettled { price, .. } => Some(price.micros() / 1_000_000),
            _ => None,
        });
        v.time_ms += 59_000;
        assert!(
            v.time_ms < expiry + 5 * 60_000,
            "settles at the first block after expiry"
        );
    }
    // Half the window at each price: about 101,000, not the last print.
    let price = settled.unwrap();
    assert!((100_900..=101_100).contains(&price), "{price}");
    assert_eq!(v.position("alice", call), 0, "settled positions are closed");
}

/// Observations of every validator at `usdc`, made at the next block's time.
fn all_observe(v: &mut Venue, usdc: i64) {
    observe(v, &[(0, usdc), (1, usdc), (2, usdc), (3, usdc)]);
}

#[test]
fn a_leader_that_leaves_out_the_observations_changes_nothing() {
    let mut v = venue();
    all_observe(&mut v, 100_000);
    v.block(vec![]);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 5, 100_000).0, None);
    // The next leaders carry no observations: one block, then another, change nothing.
    v.observations.clear();
    let outcome = v.block(vec![]);
    assert_eq!(mode_changes(&outcome), Vec::<bool>::new());
    assert!(v.exchange.oracle_fresh(btc()));
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Buy, 1, 100_000).0,
        None,
        "risk-adding orders still trade"
    );
    // Only a quorum older than the observation age (5 s) makes the index stale.
    v.time_ms += 3_000;
    let outcome = v.block(vec![]);
    assert_eq!(mode_changes(&outcome), vec![false]);
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Buy, 1, 100_000).0,
        Some(RejectReason::OracleStale)
    );
}

#[test]
fn no_withdrawal_of_an_account_priced_at_a_stale_index() {
    let mut v = venue();
    all_observe(&mut v, 100_000);
    v.block(vec![]);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 100, 100_000).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 100, 100_000).0, None);
    v.observations.clear();
    v.time_ms += 10_000;
    v.block(vec![]);
    assert!(!v.exchange.oracle_fresh(btc()));
    // alice's margin is measured at an index nobody is agreeing on: she waits.
    let tx = v.tx(
        "alice",
        TxBody::Withdraw {
            amount: Money::from_usdc(1),
        },
    );
    assert_eq!(v.run(tx).0, Some(RejectReason::WithdrawalOracleStale));
    // carol holds nothing on that underlying.
    let tx = v.tx(
        "carol",
        TxBody::Withdraw {
            amount: Money::from_usdc(1),
        },
    );
    assert_eq!(v.run(tx).0, None);
    // The quorum returns: so do alice's withdrawals.
    all_observe(&mut v, 100_000);
    let tx = v.tx(
        "alice",
        TxBody::Withdraw {
            amount: Money::from_usdc(1),
        },
    );
    assert_eq!(v.run(tx).0, None);
}

/// The validators agree on a crash; the deviation guard lets the index follow at a bounded
/// rate. Margin measured at the lagging index overstates a losing long: had alice withdrawn
/// then, the loss the fresh index shows a few blocks later would be the insurance fund's (the
/// lab's `oracle-outage-withdrawal` attack). She waits until the index has caught up.
#[test]
fn withdrawals_wait_while_the_guard_holds_the_index_back_from_a_crash() {
    let mut v = venue();
    all_observe(&mut v, 100_000);
    v.block(vec![]);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 100, 100_000).0, None);
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 100, 100_000).0, None);
    let withdraw = |v: &mut Venue, who: &str| {
        let tx = v.tx(
            who,
            TxBody::Withdraw {
                amount: Money::from_usdc(1),
            },
        );
        v.run(tx).0
    };
    let btc_index = |v: &Venue| {
        let asset = *v.exchange.oracle_state().unwrap().asset(&btc()).unwrap();
        (asset.index().unwrap(), asset.raw().unwrap())
    };
    all_observe(&mut v, 80_000);
    v.block(vec![]);
    let (index, median) = btc_index(&v);
    assert_eq!(median, UnitPrice::from_usdc(80_000));
    assert!(index > UnitPrice::from_usdc(90_000), "{index:?}");
    assert!(v.exchange.oracle_fresh(btc()));
    // Fresh, but not where the validators are: alice (long) and bob (short) wait.
    assert_eq!(
        withdraw(&mut v, "alice"),
        Some(RejectReason::WithdrawalIndexCatchingUp)
    );
    assert_eq!(
        withdraw(&mut v, "bob"),
        Some(RejectReason::WithdrawalIndexCatchingUp)
    );
    // carol holds nothing on that underlying.
    assert_eq!(withdraw(&mut v, "carol"), None);
    // Once the index has caught up, withdrawals are judged at it again.
    for _ in 0..64 {
        all_observe(&mut v, 80_000);
        v.block(vec![]);
        let (index, median) = btc_index(&v);
        if index == median {
            break;
        }
    }
    assert_eq!(btc_index(&v).0, UnitPrice::from_usdc(80_000));
    all_observe(&mut v, 80_000);
    assert_eq!(withdraw(&mut v, "bob"), None);
    assert_ne!(
        withdraw(&mut v, "alice"),
        Some(RejectReason::WithdrawalIndexCatchingUp)
    );
}

/// A call on `expiry_day` November 2026 (08:00 UTC), listed; alice long one from bob.
fn listed_call(v: &mut Venue, name: &str) {
    let listing = v.admin_tx(TxBody::ListInstrument(spec(name)));
    v.block(vec![listing]);
    all_observe(v, 100_000);
    v.prices = PriceInputs::new(
        vec![],
        vec![MarkPrice {
            instrument: v.id(name),
            price: UnitPrice::from_usdc(3_000),
        }],
        vec![],
    )
    .unwrap();
    v.block(vec![]);
    // Under the oracle the proposer's mark is ignored: the exchange's model marks the call
    // (Black-76 at 60% vol, no smile yet). Trade at that mark, on the 5 USDC tick.
    let mark = v.exchange.instrument(v.id(name)).unwrap().mark.unwrap();
    let price = mark.micros() / 5_000_000 * 5;
    assert!((500..3_000).contains(&price), "{price}");
    assert_eq!(v.order("alice", name, Side::Buy, 1, price).0, None);
    assert_eq!(v.order("bob", name, Side::Sell, 1, price).0, None);
    assert_eq!(v.position("alice", name), 1);
}

#[test]
fn a_halt_across_expiry_settles_on_the_first_half_hour_after_the_restart() {
    let mut v = venue();
    let call = "BTC_USDC-25NOV26-100000-C";
    listed_call(&mut v, call);
    let expiry = ExpiryDate::new(2026, 11, 25).unwrap().expiry_millis();
    // Live at 100,000 from forty to ten minutes before expiry, a block every 2 s...
    v.time_ms = expiry - 40 * 60_000;
    while v.time_ms < expiry - 10 * 60_000 {
        v.time_ms += 1_000;
        all_observe(&mut v, 100_000);
        v.block(vec![]);
    }
    // ...then the chain halts for fifty minutes, across expiry, and restarts with the index
    // at 110,000. The 30 minutes before expiry were not agreed throughout.
    v.time_ms = expiry + 40 * 60_000;
    let restart_ms = v.time_ms + 1_000;
    let mut settled = None;
    let mut blocks = 0;
    while settled.is_none() {
        all_observe(&mut v, 110_000);
        let outcome = v.block(vec![]);
        settled = outcome.events.iter().find_map(|e| match e {
            Event::InstrumentSettled { price, .. } => Some((v.time_ms, price.micros())),
            _ => None,
        });
        v.time_ms += 1_000;
        blocks += 1;
        assert!(blocks < 2_000, "settles, never stays unsettled");
    }
    let (at_ms, price) = settled.unwrap();
    // 30 minutes of agreed index after the restart (the guard lets it climb from 100,000 to
    // 110,000 within its first few blocks).
    assert!(at_ms >= restart_ms + 30 * 60_000, "{at_ms}");
    assert!(at_ms < restart_ms + 30 * 60_000 + 5_000, "{at_ms}");
    assert!(
        (109_900_000_000..=110_000_000_000).contains(&price),
        "{price}"
    );
    assert_eq!(v.position("alice", call), 0, "settled positions are closed");
    assert_eq!(v.position("bob", call), 0);
    // The history keeps only what settlement needed, and snapshots carry it.
    let restored = Exchange::restore(&v.exchange.snapshot()).unwrap();
    assert_eq!(restored.snapshot(), v.exchange.snapshot());
}

#[test]
fn a_short_gap_at_expiry_still_settles_on_the_half_hour_before_it() {
    let mut v = venue();
    let call = "BTC_USDC-25NOV26-100000-C";
    listed_call(&mut v, call);
    let expiry = ExpiryDate::new(2026, 11, 25).unwrap().expiry_millis();
    v.time_ms = expiry - 31 * 60_000;
    let mut settled = None;
    while settled.is_none() {
        all_observe(&mut v, 100_000);
        let outcome = v.block(vec![]);
        settled = outcome.events.iter().find_map(|e| match e {
            Event::InstrumentSettled { price, .. } => Some(price.micros()),
            _ => None,
        });
        // Blocks every 30 s, with a 45 s pause right before expiry.
        v.time_ms += if v.time_ms + 50_000 > expiry {
            44_000
        } else {
            29_000
        };
        assert!(
            v.time_ms < expiry + 2 * 60_000,
            "settles at the first block after expiry"
        );
    }
    assert_eq!(settled, Some(100_000_000_000));
}

/// One validator used to set the mark of any option without a smile (a new listing), anywhere
/// between intrinsic value and the index, and so liquidate honest shorts in one block. Under
/// the oracle the exchange marks such a series itself: Black-76 at the agreed index and the
/// model vol; a proposer's mark is ignored.
#[test]
fn a_leader_cannot_set_an_option_mark() {
    let mut v = venue();
    let call = "BTC_USDC-25NOV26-100000-C";
    let listing = v.admin_tx(TxBody::ListInstrument(spec(call)));
    v.block(vec![listing]);
    // The leader proposes the call at 40,000 (the index is 100,000: its bound).
    all_observe(&mut v, 100_000);
    assert!(propose_mark(&mut v, call, 40_000));
    let instrument = v.exchange.instrument(v.id(call)).unwrap();
    assert_eq!(
        v.exchange.mark_origin(instrument),
        MarkOrigin::Model { vol_bps: 6_000 }
    );
    let mark = instrument.mark.unwrap().micros() as f64 / 1e6;
    let expiry = ExpiryDate::new(2026, 11, 25).unwrap().expiry_millis();
    let years = (expiry - v.time_ms) as f64 / (365.0 * 86_400_000.0);
    let want = bulwark_pricing::Black76::new(100_000.0, 100_000.0, years, 0.6, 0.0)
        .unwrap()
        .price(bulwark_pricing::OptionKind::Call)
        .unwrap();
    assert!(
        (mark - want).abs() < 1.0,
        "mark {mark}, Black-76 at 60% {want}"
    );
}

/// Three accounts quoting a brand-new series 25% above its model marks cannot place its first
/// smile where they like either: the first fit moves the ATM vol at most 10% from the model
/// vol (60%) that marked the series before.
#[test]
fn three_accounts_cannot_place_a_new_series_first_smile_anywhere() {
    let mut v = venue();
    let strikes = [96_000, 98_000, 100_000, 102_000, 104_000];
    let names: Vec<String> = strikes
        .iter()
        .flat_map(|k| ["C", "P"].map(|r| format!("BTC_USDC-25NOV26-{k}-{r}")))
        .collect();
    let listings: Vec<_> = names
        .iter()
        .map(|n| v.admin_tx(TxBody::ListInstrument(spec(n))))
        .collect();
    v.block(listings);
    all_observe(&mut v, 100_000);
    v.block(vec![]);
    let makers = ["alice", "bob", "carol"];
    for (i, name) in names.iter().enumerate() {
        let mark = v.exchange.instrument(v.id(name)).unwrap().mark.unwrap();
        let rich = mark.micros() as f64 / 1e6 * 1.25;
        let (bid, ask) = (
            (rich * 0.98 / 5.0).floor() as i64 * 5,
            (rich * 1.02 / 5.0).ceil() as i64 * 5,
        );
        if bid < 50 {
            continue;
        }
        all_observe(&mut v, 100_000);
        assert_eq!(
            v.order(makers[i % 3], name, Side::Buy, 1, bid).0,
            None,
            "{name}"
        );
        all_observe(&mut v, 100_000);
        assert_eq!(
            v.order(makers[(i + 1) % 3], name, Side::Sell, 1, ask).0,
            None,
            "{name}"
        );
    }
    let fit = (0..30).find_map(|_| {
        all_observe(&mut v, 100_000);
        v.block(vec![]).events.iter().find_map(|e| match e {
            Event::SmileFitted {
                vol_atm_bps,
                vol_atm_fitted_bps,
                ..
            } => Some((*vol_atm_bps, *vol_atm_fitted_bps)),
            _ => None,
        })
    });
    let (applied, asked) = fit.expect("a fit within three refits");
    assert!(asked > 6_602, "the quotes ask for more than 10%: {asked}");
    assert!(applied <= 6_602, "one step from the model's 60%: {applied}");
}

/// dave: 1,000 USDC, long 100 perpetual contracts at 100,000 from bob on an oracle venue
/// whose validators observe 100,000; he asks to withdraw `usdc` (accepted, held).
fn held_withdrawal(usdc: i64) -> (Venue, AccountId) {
    let mut v = venue();
    v.fund("dave", 1_000);
    all_observe(&mut v, 100_000);
    v.block(vec![]);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 100, 100_000).0, None);
    assert_eq!(v.order("dave", BTC_PERP, Side::Buy, 100, 100_000).0, None);
    // Initial margin 2% of 10,000 = 200, fee 5: 795 withdrawable.
    let dave = v.account("dave");
    assert_eq!(
        v.exchange.account_margin(dave).unwrap().withdrawable,
        Money::from_usdc(795)
    );
    let tx = v.tx(
        "dave",
        TxBody::Withdraw {
            amount: Money::from_usdc(usdc),
        },
    );
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None);
    assert_eq!(
        events,
        vec![Event::WithdrawalRequested {
            account: dave,
            amount: Money::from_usdc(usdc)
        }]
    );
    (v, dave)
}

/// Held until prices observed after the request: while the blocks carry only observations
/// made before it, nothing leaves, the held amount backs no new risk and no second
/// withdrawal; the next quorum of new observations pays it.
#[test]
fn a_held_withdrawal_waits_for_prices_observed_after_it() {
    let (mut v, dave) = held_withdrawal(795);
    for _ in 0..2 {
        v.block(vec![]);
        assert!(v.exchange.oracle_fresh(btc()));
        assert_eq!(v.exchange.ledger().withdrawals, Money::ZERO);
    }
    let margin = v.exchange.account_margin(dave).unwrap();
    assert_eq!(
        (margin.available, margin.withdrawable),
        (Money::ZERO, Money::ZERO)
    );
    let again = v.tx(
        "dave",
        TxBody::Withdraw {
            amount: Money::from_usdc(1),
        },
    );
    assert_eq!(v.run(again).0, Some(RejectReason::WithdrawalPending));
    assert_eq!(
        v.order("dave", BTC_PERP, Side::Buy, 10, 100_000)
            .0
            .map(|r| r.code()),
        Some(90),
        "the held money does not back new risk"
    );
    all_observe(&mut v, 100_000);
    v.assert_withdrawal_paid("dave", 795);
}

/// dave cancels his held withdrawal (the oracle has not yet observed after it): the hold lifts
/// at once, nothing is paid when fresh prices come, and he may ask again. The rule an
/// attacker would lean on: the cancel names no account, so another trader's cancel reaches
/// only his own (none here), and dave's agent, which trades for him, may not cancel what only
/// the owner may ask for.
#[test]
fn a_held_withdrawal_its_owner_cancels_lifts_its_hold_and_pays_nothing() {
    let (mut v, dave) = held_withdrawal(795);
    let other = v.tx("carol", TxBody::CancelWithdrawal);
    assert_eq!(v.run(other).0, Some(RejectReason::NoWithdrawalPending));
    let authorise = v.authorise_tx("dave", "dave-bot");
    assert_eq!(v.run(authorise).0, None);
    let by_agent = v.tx("dave-bot", TxBody::CancelWithdrawal);
    assert_eq!(v.run(by_agent).0, Some(RejectReason::NotOwner));
    assert!(v.exchange.pending_withdrawal(dave).is_some(), "still held");

    let cancel = v.tx("dave", TxBody::CancelWithdrawal);
    let (rejection, events) = v.run(cancel);
    assert_eq!(rejection, None);
    assert_eq!(
        events,
        vec![Event::WithdrawalCancelled {
            account: dave,
            amount: Money::from_usdc(795),
            reason: RejectReason::WithdrawalCancelledByOwner,
        }]
    );
    assert_eq!(v.exchange.pending_withdrawal(dave), None);
    assert_eq!(
        v.exchange.account_margin(dave).unwrap().withdrawable,
        Money::from_usdc(795),
        "the hold lifted"
    );
    all_observe(&mut v, 100_000);
    assert_eq!(v.exchange.ledger().withdrawals, Money::ZERO, "nothing paid");
    let again = v.tx("dave", TxBody::CancelWithdrawal);
    assert_eq!(v.run(again).0, Some(RejectReason::NoWithdrawalPending));
    let ask = v.tx(
        "dave",
        TxBody::Withdraw {
            amount: Money::from_usdc(100),
        },
    );
    assert_eq!(v.run(ask).0, None, "he may ask again");
}

/// The race a trader might try: the cancel rides in the very block whose fresh prices release
/// the withdrawal. A block's transactions come before its releases, so the cancel wins and
/// nothing leaves; the same block without it pays (the control, on the same venue state).
#[test]
fn a_cancel_in_the_block_that_would_pay_the_withdrawal_wins() {
    let (mut paid, dave) = held_withdrawal(795);
    all_observe(&mut paid, 100_000);
    let outcome = paid.block(vec![]);
    assert!(
        outcome.end_events().contains(&Event::Withdrawn {
            account: dave,
            amount: Money::from_usdc(795)
        }),
        "the control: this block pays it"
    );

    let (mut v, dave) = held_withdrawal(795);
    all_observe(&mut v, 100_000);
    let cancel = v.tx("dave", TxBody::CancelWithdrawal);
    let outcome = v.block(vec![cancel]);
    assert!(
        !outcome
            .end_events()
            .iter()
            .any(|e| matches!(e, Event::Withdrawn { .. })),
        "nothing paid"
    );
    assert_eq!(v.exchange.ledger().withdrawals, Money::ZERO);
    assert_eq!(v.exchange.pending_withdrawal(dave), None);
}

/// The prices observed after the request show a 1% fall: dave no longer covers his request,
/// so it is cancelled with the shortfall, the hold lifts and the money stays to margin the
/// position.
#[test]
fn a_held_withdrawal_the_account_no_longer_covers_is_cancelled() {
    let (mut v, dave) = held_withdrawal(795);
    all_observe(&mut v, 99_000);
    let Event::WithdrawalCancelled {
        account,
        amount,
        reason,
    } = v.until_withdrawal_settles("dave")
    else {
        panic!("paid a withdrawal the account no longer covers")
    };
    assert_eq!((account, amount), (dave, Money::from_usdc(795)));
    assert!(
        matches!(reason, RejectReason::WithdrawalExceedsAvailable { shortfall } if shortfall.is_positive()),
        "{reason:?}"
    );
    assert_eq!(v.exchange.ledger().withdrawals, Money::ZERO);
    assert_eq!(v.exchange.pending_withdrawal(dave), None);
    assert!(
        v.exchange
            .account_margin(dave)
            .unwrap()
            .available
            .is_positive()
    );
}

/// carol holds nothing the oracle prices: her withdrawal is paid at the end of its block.
#[test]
fn an_account_without_positions_is_paid_in_the_requests_block() {
    let mut v = venue();
    all_observe(&mut v, 100_000);
    v.block(vec![]);
    let tx = v.tx(
        "carol",
        TxBody::Withdraw {
            amount: Money::from_usdc(10),
        },
    );
    assert_eq!(v.run(tx).0, None);
    let carol = v.account("carol");
    assert!(
        v.last
            .as_ref()
            .unwrap()
            .end_events()
            .contains(&Event::Withdrawn {
                account: carol,
                amount: Money::from_usdc(10)
            })
    );
}

/// The lab's `oracle-outage-early-withdrawal`, on the state machine, with an honest
/// counterparty: the validators' sources fall silent, and for up to twice the observation
/// age the exchange still calls the oracle fresh at the last quorum. The attacker reads the
/// venues, sees the crash, and asks at once to withdraw all his long may at the frozen index;
/// then the quorum returns at 80,000 for 40 blocks. Returns what left the venue, the
/// withdrawal's end (`Withdrawn` or `WithdrawalCancelled`), and the honest short's equity and
/// the insurance fund at the end.
fn withdraw_at_a_frozen_index(held: bool) -> (Money, Event, Money, Money) {
    let mut params = ExchangeParams::defaults();
    params.withdrawals_held = held;
    let oracle = OracleGenesis {
        validators: validators().iter().map(|k| k.public_key()).collect(),
        config: OracleConfig::GENESIS,
    };
    let mut v = Venue::with_genesis(params, Some(oracle));
    let listing = v.admin_tx(TxBody::ListInstrument(spec(BTC_PERP)));
    v.block(vec![listing]);
    v.fund("bob", 1_000_000);
    v.fund("mallory", 1_000);
    all_observe(&mut v, 100_000);
    v.block(vec![]);
    assert_eq!(v.order("bob", BTC_PERP, Side::Sell, 100, 100_000).0, None);
    assert_eq!(
        v.order("mallory", BTC_PERP, Side::Buy, 100, 100_000).0,
        None
    );
    // The sources fall silent (the blocks carry the last observations until they are too
    // old, then none): the index stands at 100,000 and the oracle is fresh; the true price is
    // already 80,000.
    assert!(v.exchange.oracle_fresh(btc()));
    let mallory = v.account("mallory");
    let asked = v.exchange.account_margin(mallory).unwrap().withdrawable;
    assert!(asked > Money::from_usdc(700), "{asked:?}");
    let tx = v.tx("mallory", TxBody::Withdraw { amount: asked });
    let (rejection, events) = v.run(tx);
    assert_eq!(rejection, None, "asked while the oracle is fresh");
    let settled = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::Withdrawn { account, .. } | Event::WithdrawalCancelled { account, .. }
                if *account == mallory =>
            {
                Some(e.clone())
            }
            _ => None,
        })
    };
    let mut end = settled(&events);
    v.observations.clear();
    for _ in 0..6 {
        let outcome = v.block(vec![]);
        end = end.or(settled(&outcome.events));
    }
    assert!(!v.exchange.oracle_fresh(btc()));
    if held {
        assert_eq!(end, None, "nothing paid at the frozen index");
    }
    // The quorum returns with the crash; each block's observations are made for it.
    for _ in 0..40 {
        all_observe(&mut v, 80_000);
        let outcome = v.block(vec![]);
        end = end.or(settled(&outcome.events));
    }
    let bob = v.account("bob");
    (
        v.exchange.ledger().withdrawals,
        end.expect("the withdrawal settled"),
        v.exchange.account_margin(bob).unwrap().equity,
        v.exchange.ledger().insurance_fund,
    )
}

/// Held and judged at prices observed after it was asked for, the raid pays nothing: the
/// frozen index never pays it (the blocks carry no observation made after it), and at the
/// first quorum of new observations the index shows the crash, mallory's long is gone
/// (liquidated) and the withdrawal is cancelled. Unheld (same venue and blocks,
/// `withdrawals_held = false`) the money leaves at the frozen index, and her deficit grows by
/// it: collected from bob, the honest short on the other side (an outage's deficit is
/// deleveraged before the fund pays), who ends poorer by about what she took.
#[test]
fn a_withdrawal_asked_at_a_frozen_index_is_judged_at_prices_observed_after_it() {
    let (left, end, bob_held, fund_held) = withdraw_at_a_frozen_index(true);
    assert_eq!(left, Money::ZERO, "nothing left the venue: {end:?}");
    assert!(
        matches!(end, Event::WithdrawalCancelled { .. }),
        "cancelled at the release: {end:?}"
    );
    let (left, end, bob_unheld, fund_unheld) = withdraw_at_a_frozen_index(false);
    assert!(
        left > Money::from_usdc(700),
        "unheld: paid at once ({end:?})"
    );
    let honest_loss = bob_held
        .checked_add(fund_held)
        .unwrap()
        .checked_sub(bob_unheld.checked_add(fund_unheld).unwrap())
        .unwrap();
    eprintln!(
        "unheld: {left} USDC left at the frozen index; bob and the fund {honest_loss} poorer"
    );
    assert!(
        honest_loss > Money::from_usdc(700),
        "unheld, what she took is bob's or the fund's: {honest_loss:?}"
    );
}

/// A peer's snapshot that holds a withdrawal for an account that was never opened, one of
/// nothing, or one asked for in its future, is refused with its reason; the held withdrawal survives an honest round trip.
#[test]
fn forged_pending_withdrawals_are_refused() {
    let (v, dave) = held_withdrawal(795);
    assert_eq!(
        v.exchange.pending_withdrawal(dave).map(|p| p.amount),
        Some(Money::from_usdc(795))
    );
    let snapshot = v.exchange.snapshot();
    let restored = Exchange::restore(&snapshot).unwrap();
    assert_eq!(
        restored.pending_withdrawal(dave),
        v.exchange.pending_withdrawal(dave)
    );
    // Before the digest: one pending entry of account (8), amount (16), asked at (8), then
    // the oracle outages' two empty lists (8 + 8).
    let entry = snapshot.len() - 32 - 16 - 32;
    assert_eq!(snapshot[entry..entry + 8], dave.get().to_be_bytes());
    let mut ghost = snapshot.clone();
    ghost[entry..entry + 8].copy_from_slice(&999u64.to_be_bytes());
    assert!(matches!(
        Exchange::restore(&redigest(ghost)),
        Err(SnapshotError::NotCanonical(_))
    ));
    let mut nothing = snapshot.clone();
    nothing[entry + 8..entry + 24].copy_from_slice(&0i128.to_be_bytes());
    assert!(matches!(
        Exchange::restore(&redigest(nothing)),
        Err(SnapshotError::NotCanonical(_))
    ));
    // Asked for after the state's own time: a peer postponing the check of fresh prices.
    let mut future = snapshot.clone();
    future[entry + 24..entry + 32].copy_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(
        Exchange::restore(&redigest(future)),
        Err(SnapshotError::NotCanonical(_))
    ));
}

// ---- a gap across an oracle outage (issue 15, finding a) ----

/// [`venue`] without risk limits (500 contracts stay in the base tier), the insurance fund
/// holding 1,000,000 USDC, the index fresh at 100,000, and the attacker's straddle: his
/// `mallory_long` (`long_usdc` deposited) bought 500 perpetuals at 100,000 from his
/// `mallory_short` (`short_usdc`). The position is 50,000 USDC of notional, so the long's
/// 1,500 USDC is 3% margin: a 20% fall takes 10,000 from it.
fn straddled(long_usdc: i64, short_usdc: i64) -> Venue {
    let oracle = OracleGenesis {
        validators: validators().iter().map(|k| k.public_key()).collect(),
        config: OracleConfig::GENESIS,
    };
    let params = ExchangeParams {
        risk_limits: None,
        ..ExchangeParams::defaults()
    };
    let mut v = Venue::with_genesis(params, Some(oracle));
    let listing = v.admin_tx(TxBody::ListInstrument(spec(BTC_PERP)));
    v.block(vec![listing]);
    for (name, usdc) in [
        ("alice", 1_000_000),
        ("bob", 1_000_000),
        ("carol", 1_000_000),
        ("mallory_long", long_usdc),
        ("mallory_short", short_usdc),
    ] {
        all_observe(&mut v, 100_000);
        v.fund(name, usdc);
    }
    all_observe(&mut v, 100_000);
    let tx = v.bridge_tx(TxBody::FundInsurance {
        amount: Money::from_usdc(1_000_000),
    });
    assert_eq!(v.run(tx).0, None);
    all_observe(&mut v, 100_000);
    assert_eq!(
        v.order("mallory_short", BTC_PERP, Side::Sell, 500, 100_000)
            .0,
        None
    );
    all_observe(&mut v, 100_000);
    let (rejection, events) = v.order("mallory_long", BTC_PERP, Side::Buy, 500, 100_000);
    assert_eq!(rejection, None);
    assert_eq!(trades(&events).len(), 1);
    v
}

/// The validators' sources fall silent for 10 s while the true price falls to `usdc`; then
/// the quorum returns there and the deviation guard walks the index down to it. Returns
/// every event of those blocks.
fn outage_gap(v: &mut Venue, usdc: i64) -> Vec<Event> {
    v.observations.clear();
    v.time_ms += 10_000;
    let mut events = v.block(vec![]).events;
    assert!(!v.exchange.oracle_fresh(btc()));
    for _ in 0..64 {
        // The open outage (and any deficit it queued) survives a snapshot, canonically.
        let snapshot = v.exchange.snapshot();
        let restored = Exchange::restore(&snapshot).unwrap();
        assert_eq!(restored.snapshot(), snapshot);
        all_observe(v, usdc);
        events.extend(v.block(vec![]).events);
        if v.exchange.index_settled(btc()) {
            break;
        }
    }
    assert_eq!(
        v.exchange.index_price(btc()),
        Some(UnitPrice::from_usdc(usdc))
    );
    // One more fresh, settled block: nothing is left queued.
    all_observe(v, usdc);
    events.extend(v.block(vec![]).events);
    events
}

fn equity(v: &mut Venue, name: &str) -> Money {
    let id = v.account(name);
    v.exchange.account_margin(id).unwrap().equity
}

/// What deleveraging charged `name` in `events`.
fn charged(v: &mut Venue, events: &[Event], name: &str) -> Money {
    let id = v.account(name);
    events
        .iter()
        .filter_map(|e| match e {
            Event::Deleveraged {
                counterparty,
                charged,
                ..
            } if *counterparty == id => Some(*charged),
            _ => None,
        })
        .fold(Money::ZERO, |sum, c| sum.checked_add(c).unwrap())
}

/// The attack (the lab's `oracle-outage-withdrawal`, seed 1, at exchange level): a straddle
/// across an oracle outage. Liquidation waits while the index is stale; when the quorum
/// returns the long is bankrupt. Its deficit is the gap, and the gap is the opposing side's
/// gain, which here is the attacker's own short: deleveraging collects it from the short
/// before the fund would pay. The attacker ends with no more than he deposited, the fund as
/// it was. Liquidation waits until the guard has walked the index to the validators' median
/// (before, the long was stepped while the index walked: the book was empty, so the backstop
/// took the position at the lagging mark and the fund lost the rest of the walk).
/// The attacker's next move is the test below.
#[test]
fn a_straddle_across_an_oracle_outage_pays_the_attacker_nothing() {
    let mut v = straddled(1_500, 1_500);
    let fund = v.exchange.ledger().insurance_fund;
    let events = outage_gap(&mut v, 80_000);
    let covered: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::DeficitCovered {
                from_fund,
                from_deleveraging,
                uncovered,
                ..
            } => Some((*from_fund, *from_deleveraging, *uncovered)),
            _ => None,
        })
        .collect();
    assert_eq!(covered.len(), 1, "{events:?}");
    let (from_fund, from_deleveraging, uncovered) = covered[0];
    assert_eq!((from_fund, uncovered), (Money::ZERO, Money::ZERO));
    assert!(from_deleveraging.is_positive());
    assert_eq!(charged(&mut v, &events, "mallory_short"), from_deleveraging);
    assert_eq!(v.position("mallory_long", BTC_PERP), 0);
    assert_eq!(v.position("mallory_short", BTC_PERP), 0);
    let attacker = equity(&mut v, "mallory_long")
        .checked_add(equity(&mut v, "mallory_short"))
        .unwrap();
    assert!(attacker <= Money::from_usdc(3_000), "{attacker}");
    assert_eq!(v.exchange.ledger().insurance_fund, fund);
}

/// The attacker's next move: his winning short ranks last for deleveraging (ten times the
/// capital of an honest short of the same size, so a tenth of its leverage), and dave, who
/// sold as many perpetuals to bob before the outage, is deleveraged instead. The fund still
/// pays nothing; the attacker keeps the long's deficit, and dave pays it out of his gain
/// during the outage.
///
/// What it costs honest accounts: a holder of the opposing side gives back part of what it
/// gained since the last fresh mark. A bankrupt account with one position is charged, per
/// contract, the distance from its bankruptcy price to the mark, and its bankruptcy price lies
/// between the last fresh mark (where it was solvent) and the mark now: so no counterparty
/// pays more than its gain since the last fresh mark. A bankrupt account with several
/// positions spreads its deficit over them by value (`deleverage_all`), not by where its loss
/// came from; there a counterparty of a position that lost little can be charged more than
/// its own gain on that instrument (never more than its equity).
///
/// Measured here (a 20% fall, the long with 3% margin; `cargo test -p bulwark-exchange --test
/// oracle -- ranked_last --nocapture`): dave charged 7,525 USDC of his 9,000 USDC gain since
/// the last fresh mark (he keeps 1,475), the attacker 7,500 up, the fund unchanged (before
/// this rule the fund lost 7,525 and dave kept his gain). Deleveraging ranks by profit x
/// leverage, so capital buys the attacker the last place; charging the whole opposing side
/// pro rata would cut his take to his honest counterparts' share of the open interest, and
/// only margin for the gap (an outage's worth of move) removes it.
#[test]
fn an_attacker_ranked_last_for_deleveraging_shifts_the_gap_to_honest_winners_not_the_fund() {
    let mut v = straddled(1_500, 50_000);
    all_observe(&mut v, 100_000);
    v.fund("dave", 5_000);
    all_observe(&mut v, 100_000);
    assert_eq!(v.order("dave", BTC_PERP, Side::Sell, 500, 100_000).0, None);
    all_observe(&mut v, 100_000);
    let (rejection, events) = v.order("bob", BTC_PERP, Side::Buy, 500, 100_000);
    assert_eq!(rejection, None);
    assert_eq!(trades(&events).len(), 1);
    let fund = v.exchange.ledger().insurance_fund;
    let dave_before = equity(&mut v, "dave");
    let deposits = Money::from_usdc(1_500 + 50_000);

    let events = outage_gap(&mut v, 80_000);
    let dave_charged = charged(&mut v, &events, "dave");
    let attacker = equity(&mut v, "mallory_long")
        .checked_add(equity(&mut v, "mallory_short"))
        .unwrap();
    let profit = attacker.checked_sub(deposits).unwrap();
    let dave_gain = equity(&mut v, "dave").checked_sub(dave_before).unwrap();
    println!(
        "attacker profit {profit}, dave charged {dave_charged}, dave's gain after the charge \
         {dave_gain}, fund change {}",
        v.exchange
            .ledger()
            .insurance_fund
            .checked_sub(fund)
            .unwrap()
    );
    assert_eq!(
        v.exchange.ledger().insurance_fund,
        fund,
        "the fund pays nothing"
    );
    assert_eq!(
        charged(&mut v, &events, "mallory_short"),
        Money::ZERO,
        "the attacker's short ranks last"
    );
    assert!(dave_charged.is_positive(), "dave pays the gap");
    assert!(
        !dave_gain.is_negative(),
        "dave keeps part of his gain since the last fresh mark: {dave_gain}"
    );
    assert!(profit.is_positive() && profit <= dave_charged, "{profit}");
}

/// Normal gaps keep the present policy: the same straddle through the same 20% fall with a
/// quorum every block (no outage). Liquidation acts while the guard walks the index down; the
/// long is stepped, the empty book passes it to the backstop at the mark, and the fund carries
/// what is left of the fall. Nobody is deleveraged.
///
/// A residual this change does not address: the fund loses 7,525 USDC here, as much as the
/// outage cost it before, the attacker's short keeping the gain. The gap is the guard's lag
/// (blocks 1 s apart: the index may move 1.5% a block while the validators' median stands 20%
/// lower), and the backstop takes the long at a mark the median has already left. At the
/// lab's 20 blocks a second the guard allows about 20% a second and the lag is short; a venue
/// with slower blocks would want the outage rule (wait until settled, deleverage first) for
/// any walk of the guard.
#[test]
fn a_fall_with_the_oracle_fresh_throughout_keeps_the_fund_policy() {
    let mut v = straddled(1_500, 1_500);
    let fund = v.exchange.ledger().insurance_fund;
    let mut events = Vec::new();
    for _ in 0..64 {
        all_observe(&mut v, 80_000);
        events.extend(v.block(vec![]).events);
        assert!(v.exchange.oracle_fresh(btc()));
        if v.exchange.index_settled(btc()) {
            break;
        }
    }
    assert_eq!(
        v.exchange.index_price(btc()),
        Some(UnitPrice::from_usdc(80_000))
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Deleveraged { .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::BackstopTakeover { .. })),
        "{events:?}"
    );
    assert_eq!(v.position("mallory_long", BTC_PERP), 0);
    let drawdown = fund
        .checked_sub(v.exchange.ledger().insurance_fund)
        .unwrap();
    println!("fund drawdown with the oracle fresh throughout: {drawdown}");
}

/// A snapshot taken while the guard walks the index after an outage carries the open outage
/// and the attacker's long, queued with the deficit it made (the snapshot's last entry before
/// its digest); a forged entry naming an account that does not exist is refused.
#[test]
fn a_snapshot_carries_the_outage_and_refuses_a_forged_outage_deficit() {
    let mut v = straddled(1_500, 1_500);
    let long = v.account("mallory_long");
    v.observations.clear();
    v.time_ms += 10_000;
    v.block(vec![]);
    // The guard walks the index down; the long goes bankrupt on the way and waits.
    let mut queued = false;
    for _ in 0..64 {
        all_observe(&mut v, 80_000);
        let outcome = v.block(vec![]);
        queued = outcome.events.iter().any(|e| {
            matches!(e, Event::LiquidationQueued { account, equity }
                if *account == long && equity.is_negative())
        });
        if queued || v.exchange.index_settled(btc()) {
            break;
        }
    }
    assert!(queued && !v.exchange.index_settled(btc()));
    let snapshot = v.exchange.snapshot();
    let body = snapshot.len() - 32;
    let last: [u8; 8] = snapshot[body - 8..body].try_into().unwrap();
    assert_eq!(
        u64::from_be_bytes(last),
        long.get(),
        "the long's deficit is remembered"
    );
    assert_eq!(Exchange::restore(&snapshot).unwrap().snapshot(), snapshot);
    let mut forged = snapshot.clone();
    forged[body - 8..body].copy_from_slice(&u64::MAX.to_be_bytes());
    assert!(Exchange::restore(&redigest(forged)).is_err());
}

/// Orders of `account` resting in `instrument`'s book, by price (micro-USDC).
fn resting_prices(v: &mut Venue, name: &str, instrument: &str) -> Vec<i64> {
    let (account, id) = (v.account(name), v.id(instrument));
    let instrument = v.exchange.instrument(id).unwrap();
    let tick = instrument.spec.tick_size.micros();
    let mut prices: Vec<i64> = [Side::Buy, Side::Sell]
        .into_iter()
        .flat_map(|side| instrument.book.orders(side))
        .filter(|order| order.account == account)
        .map(|order| order.price.ticks() * tick)
        .collect();
    prices.sort_unstable();
    prices
}

/// A leader can leave a market maker's cancel out of its block and take the quote the
/// block's index has left behind (the lab's `quote-sniper`: +20,430 USDC in 24 s on seed 1).
/// So when a block sets the index, a resting perpetual order that the index has left behind
/// by more than `PriceBand::stale_quote_bps` (0.2%: a bid the index's fall left above it by
/// more, an ask its rise left below it by more) is cancelled before anything in the block
/// trades; one within 0.2% rests, and so do orders on the side the index moved toward and a
/// bid already that far above the index before the move (a premium, not a stale quote).
#[test]
fn quotes_the_index_left_behind_are_cancelled_before_the_block_trades() {
    let mut v = venue();
    observe(&mut v, &[(0, 100_000), (1, 100_000), (2, 100_000)]);
    v.block(vec![]);
    assert_eq!(
        v.exchange.params().band_perpetual.stale_quote_bps,
        20,
        "0.2% by default"
    );
    for (name, side, price) in [
        ("alice", Side::Buy, 99_990),
        ("alice", Side::Buy, 99_900),
        ("alice", Side::Sell, 100_500),
        ("bob", Side::Buy, 99_000),
        // 0.3% above the index already: a bid at a premium, not one the move leaves behind.
        ("carol", Side::Buy, 100_300),
    ] {
        assert_eq!(v.order(name, BTC_PERP, side, 1, price).0, None);
    }
    // The validators see the price fall 0.5%; the index follows as the guard allows.
    observe(&mut v, &[(0, 99_500), (1, 99_500), (2, 99_500)]);
    let outcome = v.block(vec![]);
    let index = v.exchange.index_price(btc()).unwrap().micros() / 1_000_000;
    assert!(
        (99_500..99_790).contains(&index),
        "the index fell past 99,990 less 0.2%: {index}"
    );
    let cancelled: Vec<(AccountId, CancelReason)> = outcome
        .block_events()
        .iter()
        .filter_map(|e| match e {
            Event::OrderCancelled {
                account, reason, ..
            } => Some((*account, *reason)),
            _ => None,
        })
        .collect();
    let alice = v.account("alice");
    let left_behind = [99_990, 99_900]
        .iter()
        .filter(|bid| **bid * 10_000 > index * 10_020)
        .count();
    assert!(left_behind >= 1);
    assert_eq!(
        cancelled,
        vec![(alice, CancelReason::IndexMoved); left_behind],
        "alice's bids more than 0.2% above the index {index}, and nothing else, among the block's own events"
    );
    let kept: Vec<i64> = [99_990, 99_900, 100_500]
        .into_iter()
        .filter(|price| !(*price * 10_000 > index * 10_020 && *price < 100_000))
        .map(|usdc| usdc * 1_000_000)
        .collect();
    assert_eq!(resting_prices(&mut v, "alice", BTC_PERP), kept);
    assert_eq!(
        resting_prices(&mut v, "bob", BTC_PERP),
        vec![99_000_000_000],
        "a bid below the index rests"
    );
    assert_eq!(
        resting_prices(&mut v, "carol", BTC_PERP),
        vec![100_300_000_000],
        "a bid that was that far through the index before the move rests"
    );
    // Switched off (0), the same move leaves every quote resting.
    let mut params = ExchangeParams::defaults();
    params.band_perpetual.stale_quote_bps = 0;
    assert!(params.check().is_ok());
    params.band_perpetual.stale_quote_bps = params.band_perpetual.width_bps + 1;
    assert!(params.check().is_err(), "at most the band");
    let mut params = ExchangeParams::defaults();
    params.band_option.stale_quote_bps = 20;
    assert!(
        params.check().is_err(),
        "options have no such rule: a genesis may not claim one"
    );
}
