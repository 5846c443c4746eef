//! Option marks the exchange makes itself from a smile fitted to its own books: once a series
//! has a smile, a proposer's marks for it are ignored; a quote the robust fit distrusts does
//! not move the smile; an emptied book keeps its smile, aged, until it is too old; smiles
//! survive a snapshot.

mod common;

use bulwark_exchange::*;
use bulwark_pricing::{Black76, OptionKind};
use bulwark_types::*;
use common::*;
use rand_core::SeedableRng;

const STRIKES: [i64; 5] = [90_000, 95_000, 100_000, 105_000, 110_000];
/// The vol of the proposer's marks; the books quote 60%.
const PROPOSED_VOL: f64 = 0.55;
/// 27 Dec 2026 08:00 UTC.
const EXPIRY_MS: u64 = 1_798_358_400_000;

fn name(strike: i64, right: Right) -> String {
    let r = match right {
        Right::Call => "C",
        Right::Put => "P",
    };
    format!("BTC_USDC-27DEC26-{strike}-{r}")
}

fn series() -> Vec<(i64, Right)> {
    STRIKES
        .iter()
        .flat_map(|k| [(*k, Right::Call), (*k, Right::Put)])
        .collect()
}

/// Black-76 value in USDC per unit at the venue's clock, index 100,000.
fn model(v: &Venue, strike: i64, right: Right, vol: f64) -> f64 {
    let years = (EXPIRY_MS - v.time_ms) as f64 / (365.0 * 86_400_000.0);
    let kind = match right {
        Right::Call => OptionKind::Call,
        Right::Put => OptionKind::Put,
    };
    Black76::new(100_000.0, strike as f64, years, vol, 0.0)
        .unwrap()
        .price(kind)
        .unwrap()
}

/// Proposer marks for every option at `vol`, the perpetual at the index.
fn propose_marks(v: &mut Venue, vol: f64) {
    let names: Vec<(String, i64)> = series()
        .into_iter()
        .map(|(k, r)| (name(k, r), model(v, k, r, vol).round() as i64))
        .collect();
    let mut marks: Vec<(&str, i64)> = names.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    marks.push((BTC_PERP, 100_000));
    v.set_prices(100_000, &marks);
}

/// The three market makers: strike `i` is bid by `MAKERS[i % 3]` and offered by the next.
const MAKERS: [&str; 3] = ["alice", "bob", "carol"];

/// A venue listing the ten options of one expiry, proposer marks at 55% vol, and three
/// makers bidding and offering every option 2% either side of its 60% vol value.
fn quoted_venue() -> Venue {
    quoted_venue_with(|_, _| 1.0)
}

/// Quotes every option of the series 2% either side of its `vol` value times `skew`,
/// bid by `bidders[i % n]` and offered by `askers[i % n]` for the `i`th option.
fn quote_series(
    v: &mut Venue,
    vol: f64,
    skew: &dyn Fn(i64, Right) -> f64,
    bidders: &[&str],
    askers: &[&str],
) {
    for (i, (k, r)) in series().into_iter().enumerate() {
        let value = model(v, k, r, vol) * skew(k, r);
        let bid = ((value * 0.98) / 5.0).floor() as i64 * 5;
        let ask = ((value * 1.02) / 5.0).ceil() as i64 * 5;
        let n = name(k, r);
        let (bidder, asker) = (bidders[i % bidders.len()], askers[i % askers.len()]);
        assert_eq!(v.order(bidder, &n, Side::Buy, 1, bid).0, None, "{n} bid");
        assert_eq!(v.order(asker, &n, Side::Sell, 1, ask).0, None, "{n} ask");
    }
}

/// The standard venue with the ten options of the series listed and proposer marks at `vol`.
fn listed_series(vol: f64) -> Venue {
    let mut v = Venue::standard();
    let listings: Vec<_> = series()
        .into_iter()
        .filter(|(k, _)| *k != 100_000)
        .map(|(k, r)| v.admin_tx(TxBody::ListInstrument(spec(&name(k, r)))))
        .collect();
    v.block(listings);
    propose_marks(&mut v, vol);
    v.block(vec![]);
    v
}

/// [`quoted_venue`] with each quote's centre scaled by `skew(strike, right)`.
fn quoted_venue_with(skew: impl Fn(i64, Right) -> f64) -> Venue {
    let mut v = listed_series(PROPOSED_VOL);
    let askers = [MAKERS[1], MAKERS[2], MAKERS[0]];
    quote_series(&mut v, 0.6, &skew, &MAKERS, &askers);
    v
}

fn fitted(events: &[Event]) -> Vec<(u16, u16, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SmileFitted {
                quotes,
                outliers,
                vol_atm_bps,
                expiry_ms,
                ..
            } if *expiry_ms == EXPIRY_MS => Some((*quotes, *outliers, *vol_atm_bps)),
            _ => None,
        })
        .collect()
}

/// Runs blocks until a refit of the series lands; returns its (quotes, outliers, vol bps).
fn next_fit(v: &mut Venue) -> (u16, u16, u32) {
    for _ in 0..11 {
        let out = v.block(vec![]);
        if let Some(fit) = fitted(out.block_events()).pop() {
            return fit;
        }
    }
    panic!("no refit within a refit interval");
}

fn cancel_quotes(v: &mut Venue, who: &[&str]) {
    for name in who {
        let tx = v.tx(name, TxBody::CancelAll { instrument: None });
        assert_eq!(v.run(tx).0, None);
    }
}

fn not_fitted(events: &[Event]) -> Vec<(u16, u16)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SmileNotFitted { good, accounts, .. } => Some((*good, *accounts)),
            _ => None,
        })
        .collect()
}

fn mark(v: &Venue, strike: i64, right: Right) -> f64 {
    let id = v.id(&name(strike, right));
    let mark = v.exchange.instrument(id).unwrap().mark.unwrap();
    mark.micros() as f64 / 1e6
}

#[test]
fn a_series_with_two_sided_quotes_is_marked_from_its_fitted_smile() {
    let mut v = quoted_venue();
    let (quotes, outliers, vol_bps) = next_fit(&mut v);
    assert_eq!((quotes, outliers), (10, 0));
    assert!(
        (5_950..=6_050).contains(&vol_bps),
        "the quotes' 60% vol: {vol_bps}"
    );
    // Every option is marked near its 60% value, not the proposer's 55%.
    for (k, r) in series() {
        let (got, want, proposed) = (
            mark(&v, k, r),
            model(&v, k, r, 0.6),
            model(&v, k, r, PROPOSED_VOL),
        );
        assert!(
            (got - want).abs() <= 0.01 * want + 5.0,
            "{}: mark {got}, 60% value {want}",
            name(k, r)
        );
        if k == 100_000 {
            assert!((got - proposed).abs() > 0.05 * proposed, "{}", name(k, r));
        }
    }
    // The proposer's marks for this series are now ignored, each with its reason.
    let out = v.block(vec![]);
    let ignored = out
        .block_events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::PriceIgnored {
                    reason: event::PriceIgnoredReason::SurfaceGoverned,
                    ..
                }
            )
        })
        .count();
    assert_eq!(ignored, 10);
}

#[test]
fn a_quote_far_from_the_smile_is_flagged_and_does_not_move_it() {
    let (_, _, clean_bps) = next_fit(&mut quoted_venue());
    // The 95,000 call quoted 20% above its 60% value (inside the 30% band around the
    // proposer's mark): tight and two-sided, far from every other strike's vol.
    let mut v = quoted_venue_with(|k, r| {
        if (k, r) == (95_000, Right::Call) {
            1.2
        } else {
            1.0
        }
    });
    let (quotes, outliers, vol_bps) = next_fit(&mut v);
    assert_eq!(quotes, 10);
    assert!(outliers >= 1, "the off-smile quote is flagged");
    assert!(
        vol_bps.abs_diff(clean_bps) <= 50,
        "ATM vol within half a vol point: {clean_bps} -> {vol_bps}"
    );
    let (got, want) = (
        mark(&v, 95_000, Right::Call),
        model(&v, 95_000, Right::Call, 0.6),
    );
    assert!(
        (got - want).abs() <= 0.02 * want,
        "the 95,000 call is marked from the smile ({got}), not its quote (~{})",
        want * 1.2
    );
}

#[test]
fn an_emptied_series_keeps_its_smile_aged_until_it_is_too_old() {
    let mut v = quoted_venue();
    next_fit(&mut v);
    cancel_quotes(&mut v, &MAKERS);
    // Refits now find no quotes: no fit, the smile stands and marks keep following it.
    for _ in 0..12 {
        let out = v.block(vec![]);
        assert!(fitted(out.block_events()).is_empty());
    }
    let (got, want) = (
        mark(&v, 100_000, Right::Call),
        model(&v, 100_000, Right::Call, 0.6),
    );
    assert!((got - want).abs() <= 0.01 * want, "{got} vs {want}");
    // Past an hour the smile is dropped and proposers' marks apply again.
    v.time_ms += 3_600_000;
    let out = v.block(vec![]);
    assert!(out.block_events().iter().any(|e| matches!(
        e,
        Event::SmileDropped { expiry_ms, .. } if *expiry_ms == EXPIRY_MS
    )));
    let out = v.block(vec![]);
    assert!(!out.block_events().iter().any(|e| matches!(
        e,
        Event::PriceIgnored {
            reason: event::PriceIgnoredReason::SurfaceGoverned,
            ..
        }
    )));
    let proposed = model(&v, 100_000, Right::Call, PROPOSED_VOL);
    let got = mark(&v, 100_000, Right::Call);
    assert!(
        (got - proposed).abs() <= 0.01 * proposed + 5.0,
        "{got} vs {proposed}"
    );
}

#[test]
fn smiles_survive_a_snapshot() {
    let mut v = quoted_venue();
    next_fit(&mut v);
    replays_after_restore(&mut v, "seed-smiles");
}

/// Snapshots `v`, restores it, and checks that the restored exchange applies the next 12
/// blocks (a refit among them) exactly as the original does. With `BULWARK_FUZZ_SEED_DIR`
/// set, writes the snapshot there as a fuzzing seed named `seed`.
fn replays_after_restore(v: &mut Venue, seed: &str) -> Vec<BlockOutcome> {
    let bytes = v.exchange.snapshot();
    let mut restored = Exchange::restore(&bytes).unwrap();
    assert_eq!(restored.snapshot(), bytes);
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        let out = v.block(vec![]);
        let block = Block {
            height: restored.height().next(),
            time: BlockTime::from_millis(v.time_ms),
            prices: v.prices.clone(),
            observations: vec![],
            txs: vec![],
        };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let again = restored
            .apply_block(&block.check_signatures(&mut rng))
            .unwrap();
        assert_eq!(again, out);
        assert_eq!(restored.state_digest(), v.exchange.state_digest());
        outcomes.push(out);
    }
    if let Ok(dir) = std::env::var("BULWARK_FUZZ_SEED_DIR") {
        let body = &bytes[..bytes.len() - 32];
        std::fs::write(std::path::Path::new(&dir).join(seed), body).unwrap();
    }
    outcomes
}

/// Mango Markets, October 2022, on an option series: in a thin series one account is the only
/// quoter, on both sides of every strike, 25% above the honest value. It cannot make a smile
/// at all: a fit needs the quotes of three distinct accounts.
#[test]
fn one_account_quoting_a_thin_series_rich_makes_no_smile() {
    let mut v = listed_series(0.6);
    v.fund("mallory", 1_000_000);
    quote_series(&mut v, 0.6, &|_, _| 1.25, &["mallory"], &["mallory"]);
    let mut refused = Vec::new();
    for _ in 0..11 {
        let out = v.block(vec![]);
        assert!(
            fitted(out.block_events()).is_empty(),
            "no smile from one account"
        );
        refused.extend(not_fitted(out.block_events()));
    }
    assert_eq!(refused, vec![(10, 1)], "ten good quotes, one account");
    // Marks stay where the (trusted, oracle-less) feed put them, not 25% up.
    let (got, want) = (
        mark(&v, 100_000, Right::Call),
        model(&v, 100_000, Right::Call, 0.6),
    );
    assert!((got - want).abs() <= 0.01 * want + 5.0, "{got} vs {want}");
}

/// Each account's quotes weigh together as one quote per side: three accounts of an attacker
/// that take over an emptied series, quoting it all 25% rich, move the at-the-money vol at
/// most 10% of the previous smile's per refit (it used to jump to the quotes at once).
#[test]
fn an_attacker_with_three_accounts_moves_a_smile_only_a_bounded_step_per_refit() {
    let mut v = quoted_venue();
    let (_, _, before_bps) = next_fit(&mut v);
    cancel_quotes(&mut v, &MAKERS);
    let attackers = ["m1", "m2", "m3"];
    for name in attackers {
        v.fund(name, 1_000_000);
    }
    quote_series(&mut v, 0.6, &|_, _| 1.25, &attackers, &["m2", "m3", "m1"]);
    let mut steps = Vec::new();
    for _ in 0..3 {
        let out = loop {
            let out = v.block(vec![]);
            if out.block_events().iter().any(
                |e| matches!(e, Event::SmileFitted { expiry_ms, .. } if *expiry_ms == EXPIRY_MS),
            ) {
                break out;
            }
        };
        let (applied, asked) = out
            .block_events()
            .iter()
            .find_map(|e| match e {
                Event::SmileFitted {
                    vol_atm_bps,
                    vol_atm_fitted_bps,
                    ..
                } => Some((*vol_atm_bps, *vol_atm_fitted_bps)),
                _ => None,
            })
            .unwrap();
        steps.push((applied, asked));
    }
    // The quotes ask for about 72% at once; the first refit moves 10% (60% -> 66%), the next
    // covers the rest. Every quote on the way is one others can trade against.
    let mut previous = before_bps;
    assert!(steps[0].1 > previous + previous / 10, "{steps:?}");
    for (applied, asked) in &steps {
        let bound = previous + previous / 10;
        assert!(
            *applied <= bound + 2,
            "at most 10%: {previous} -> {applied} ({steps:?})"
        );
        if *asked <= bound {
            assert_eq!(applied, asked, "{steps:?}");
        } else {
            assert!(applied.abs_diff(bound) <= 2, "one whole step: {steps:?}");
        }
        previous = *applied;
    }
}

/// Quote prices (bid, ask) of option `(k, r)` 2% either side of its `vol` value, on the tick.
fn quote_prices(v: &Venue, k: i64, r: Right, vol: f64) -> (i64, i64) {
    let value = model(v, k, r, vol);
    (
        ((value * 0.98) / 5.0).floor() as i64 * 5,
        ((value * 1.02) / 5.0).ceil() as i64 * 5,
    )
}

/// A limit order as a transaction (for several in one block).
fn order_tx(v: &mut Venue, who: &str, k: i64, r: Right, side: Side, price: i64) -> SignedTx {
    static CLIENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(900_000);
    let client = CLIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let request = limit(
        v.id(&name(k, r)),
        side,
        1,
        UnitPrice::from_usdc(price),
        client,
    );
    v.tx(who, TxBody::PlaceOrder(request))
}

/// The makers' quotes of the whole series at `vol`, as transactions (bid by `MAKERS[i % 3]`,
/// offered by the next), preceded by their cancels.
fn requote_txs(v: &mut Venue, vol: f64) -> Vec<SignedTx> {
    let mut txs: Vec<SignedTx> = MAKERS
        .iter()
        .map(|who| v.tx(who, TxBody::CancelAll { instrument: None }))
        .collect();
    let askers = [MAKERS[1], MAKERS[2], MAKERS[0]];
    for (i, (k, r)) in series().into_iter().enumerate() {
        let (bid, ask) = quote_prices(v, k, r, vol);
        txs.push(order_tx(v, MAKERS[i % 3], k, r, Side::Buy, bid));
        txs.push(order_tx(v, askers[i % 3], k, r, Side::Sell, ask));
    }
    txs
}

/// The next refit's (applied ATM vol, the quotes' ATM vol, the trades' ATM vol), bps.
fn next_refit(v: &mut Venue) -> (u32, u32, Option<u32>) {
    for _ in 0..11 {
        let out = v.block(vec![]);
        if let Some(fit) = out.block_events().iter().find_map(|e| match e {
            Event::SmileFitted {
                vol_atm_bps,
                vol_atm_fitted_bps,
                vol_atm_traded_bps,
                expiry_ms,
                ..
            } if *expiry_ms == EXPIRY_MS => {
                Some((*vol_atm_bps, *vol_atm_fitted_bps, *vol_atm_traded_bps))
            }
            _ => None,
        }) {
            return fit;
        }
    }
    panic!("no refit within a refit interval");
}

/// A venue whose series has a 60% smile, the block right after its refit, with `takers`
/// funded: (venue, the smile's ATM vol in bps).
fn fitted_venue(takers: &[&str]) -> (Venue, u32) {
    let mut v = quoted_venue();
    for who in takers {
        v.fund(who, 1_000_000);
    }
    let (_, _, before) = next_fit(&mut v);
    (v, before)
}

/// The block's rejected transactions, after checking that its last `takers` (the trades)
/// were not among them. Far wing quotes may fall outside the options' 30% price band.
fn rejected(out: &BlockOutcome, takers: usize) -> usize {
    let taking = &out.txs[out.txs.len() - takers..];
    assert!(taking.iter().all(|t| t.rejection.is_none()), "{taking:?}");
    out.txs.iter().filter(|t| t.rejection.is_some()).count()
}

/// The makers requote the series at 70% and, in the same block, `buyer` takes the
/// at-the-money call's offer and `seller` hits the put's bid (both carol's): the block's
/// outcome, after checking that both trades printed.
fn reprice_at_70(v: &mut Venue, buyer: &str, seller: &str) -> BlockOutcome {
    let mut txs = requote_txs(v, 0.7);
    let (_, call_ask) = quote_prices(v, 100_000, Right::Call, 0.7);
    let (put_bid, _) = quote_prices(v, 100_000, Right::Put, 0.7);
    txs.push(order_tx(
        v,
        buyer,
        100_000,
        Right::Call,
        Side::Buy,
        call_ask,
    ));
    txs.push(order_tx(
        v,
        seller,
        100_000,
        Right::Put,
        Side::Sell,
        put_bid,
    ));
    let out = v.block(txs);
    assert!(rejected(&out, 2) <= 4, "most quotes stand");
    assert_eq!(trades(&out.events).len(), 2, "both quotes taken");
    out
}

/// A real repricing: the makers requote the series at 70% and traders buy the at-the-money
/// call and sell the put at the new quotes, three accounts in all. The next refit follows the
/// trades in one step, past the 10% step (66%) that quotes alone are held to.
#[test]
fn trades_among_three_accounts_at_the_new_quotes_let_one_refit_follow_them() {
    let (mut v, before) = fitted_venue(&["dave", "erin"]);
    // The call at 100,000 is offered by carol, the put bid by carol: dave, erin and carol.
    reprice_at_70(&mut v, "dave", "erin");
    let (applied, asked, traded) = next_refit(&mut v);
    let traded = traded.expect("three accounts traded");
    assert!(
        (6_800..=7_200).contains(&traded),
        "trades at ~70%: {traded}"
    );
    assert!((6_800..=7_200).contains(&asked), "quotes at ~70%: {asked}");
    assert!(
        applied > before + before / 10 + 150,
        "past one 10% step ({before} -> {applied})"
    );
    assert!(
        applied <= asked.max(traded) + 2,
        "no further than quotes and trades both ask: {applied}"
    );
}

/// The same repricing confirmed by trades between two accounts only (an attacker's pair
/// trading with itself at its own quotes) does not lift the bound: one 10% step.
#[test]
fn trades_between_two_accounts_do_not_confirm_a_move() {
    let (mut v, before) = fitted_venue(&["dave"]);
    reprice_at_70(&mut v, "dave", "dave");
    let (applied, asked, traded) = next_refit(&mut v);
    assert_eq!(traded, None, "dave and carol are two accounts");
    assert!(asked > before + before / 10, "{asked}");
    assert!(
        applied.abs_diff(before + before / 10) <= 2,
        "one step: {before} -> {applied}"
    );
}

/// Trades alone never move a smile: trades at 70% among four accounts while the makers keep
/// quoting 60% leave the smile where the quotes put it.
#[test]
fn trades_without_quotes_at_their_level_do_not_move_the_smile() {
    let (mut v, before) = fitted_venue(&["dave", "erin", "frank", "gina"]);
    let mut txs: Vec<SignedTx> = MAKERS
        .iter()
        .map(|who| v.tx(who, TxBody::CancelAll { instrument: None }))
        .collect();
    let (_, call_ask) = quote_prices(&v, 100_000, Right::Call, 0.7);
    let (put_bid, _) = quote_prices(&v, 100_000, Right::Put, 0.7);
    txs.push(order_tx(
        &mut v,
        "frank",
        100_000,
        Right::Call,
        Side::Sell,
        call_ask,
    ));
    txs.push(order_tx(
        &mut v,
        "dave",
        100_000,
        Right::Call,
        Side::Buy,
        call_ask,
    ));
    txs.push(order_tx(
        &mut v,
        "erin",
        100_000,
        Right::Put,
        Side::Buy,
        put_bid,
    ));
    txs.push(order_tx(
        &mut v,
        "gina",
        100_000,
        Right::Put,
        Side::Sell,
        put_bid,
    ));
    let requote = requote_txs(&mut v, 0.6);
    txs.extend(requote.into_iter().skip(MAKERS.len()));
    let out = v.block(txs);
    assert!(rejected(&out, 2) <= 4, "most quotes stand");
    assert_eq!(trades(&out.events).len(), 2);
    let (applied, asked, traded) = next_refit(&mut v);
    let traded = traded.expect("four accounts traded");
    assert!(traded > 6_700, "{traded}");
    assert!(
        asked.abs_diff(before) <= 100,
        "quotes still at 60%: {asked}"
    );
    assert_eq!(applied, asked, "the fit moves only toward its quotes");
}

/// Trades waiting for the next refit are state: a validator restored from a snapshot between
/// the trades and the refit confirms the same move.
#[test]
fn trades_awaiting_a_refit_survive_a_snapshot() {
    let (mut v, _) = fitted_venue(&["dave", "erin"]);
    reprice_at_70(&mut v, "dave", "erin");
    let outcomes = replays_after_restore(&mut v, "seed-prints");
    let confirmed = outcomes.iter().flat_map(|o| o.block_events()).any(|e| {
        matches!(
            e,
            Event::SmileFitted {
                vol_atm_traded_bps: Some(_),
                ..
            }
        )
    });
    assert!(confirmed, "the refit after the restore saw the trades");
}
