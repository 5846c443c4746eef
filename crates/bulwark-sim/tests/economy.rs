//! The economy in the lab: market agents make a real book, each catalogue attack runs with
//! its attacker's profit measured and each protection under test switched off on the same
//! seed, and the same seed gives a byte-identical scorecard.

mod common;

use bulwark_sim::catalogue;
use bulwark_sim::economy::{Liar, Protection};
use bulwark_sim::{Scenario, Scorecard, score};
use common::{figures, run};

fn profit(card: &Scorecard) -> i64 {
    figures(card).attacker_profit_usdc.expect("an attacker")
}

#[test]
fn agents_make_hundreds_of_orders_per_block() {
    let scenario = catalogue::load("agents-market").expect("loads");
    let card = score(&scenario, 1, false).unwrap_or_else(|f| panic!("{f}"));
    println!("{}", card.table());
    let economy = card.economy.expect("an economy section");
    let mean = economy
        .agents
        .txs_per_block_mean
        .expect("blocks after funding");
    assert!(
        economy.agents.blocks >= 20,
        "{} blocks after funding",
        economy.agents.blocks
    );
    assert!(mean >= 100.0, "{mean} transactions per block");
    assert!(
        economy.agents.orders_submitted >= 100 * economy.agents.blocks,
        "{} orders over {} blocks",
        economy.agents.orders_submitted,
        economy.agents.blocks
    );
    // Every agent acts at once every 100 ms (two blocks' time), so how often a taker's order
    // meets the makers' fresh quotes depends on where the bursts fall in the blocks: seeds 1,
    // 2 and 3 traded 551, 1,511 and 1,638 times with the start-up timing of 2026-12-07 (seed
    // 1 traded 1,426 times before it).
    assert!(card.traffic.trades_executed > 500, "the book trades");
    // A fault-free market with an honest oracle: the index stays near the honest price.
    assert!(economy.figures.index_error_bps_max < 50);
    assert_eq!(economy.figures.bad_debt_usdc, 0);
}

#[test]
fn scenario_files_refuse_bad_agents_and_lies() {
    let base = catalogue::get("baseline").expect("exists").expect("parses");
    assert!(base.agents.is_empty() && base.economy.is_none());
    let refused = common::refusal;
    assert!(
        refused(
            "[[agents]]\nkind = \"noise\"\ncount = 1\ndeposit_usdc = 1\nsize = 1\nlevels = 3\n"
        )
        .contains("agents[0] (noise): `levels` does not apply")
    );
    assert!(
        refused("[[agents]]\nkind = \"market-maker\"\ncount = 1\ndeposit_usdc = 1\nsize = 1\n")
            .contains("agents[0] (market-maker): missing `levels`")
    );
    assert!(
        refused(
            "[[agents]]\nkind = \"noise\"\ncount = 1\ndeposit_usdc = 1\nsize = 1\ncolour = 1\n"
        )
        .contains("colour")
    );
    assert!(
        refused("[[agents]]\nkind = \"oracle\"\ncount = 1\ndeposit_usdc = 1\nsize = 1\n")
            .contains("oracle")
    );
    assert!(
        refused("[[lie]]\nvenue = 3\nat_s = 1.0\nfor_s = 1.0\nprice_bps = 5000\n")
            .contains("lie[0].venue: venue 3 does not exist")
    );
    assert!(
        refused("[[lie]]\nvalidators = [4]\nat_s = 1.0\nfor_s = 1.0\nprice_bps = 5000\n")
            .contains("lie[0].validators: validator 4 does not exist")
    );
    assert!(
        refused("[economy]\nprotections = [\"price-band\", \"price-band\"]\n")
            .contains("economy.protections[1]: price-band listed twice")
    );
    assert!(refused("[economy]\nprotections = [\"seatbelts\"]\n").contains("seatbelts"));
    assert!(
        refused("[economy]\nmove = [{ at_s = 1.0, ramp_s = 1.0, change_bps = -9500 }]\n")
            .contains("economy.move[0].change_bps")
    );
    assert!(refused("[economy]\ndepth_half_life_s = 0.5\n").contains("economy.depth_half_life_s"));
    assert!(refused("[economy]\nbackstop_depth_bps = -1\n").contains("economy.backstop_depth_bps"));
    assert!(
        refused("[economy]\nstale_quote_bps = 501\n")
            .contains("economy.stale_quote_bps: 501 is not within 0..=500")
    );
    let warm = Scenario::parse(&common::scenario_text(
        "[economy]\ndepth_half_life_s = 2.0\nbackstop_depth_bps = 30000\nstale_quote_bps = 50\n",
    ))
    .expect("parses")
    .economy
    .expect("an economy");
    assert_eq!(warm.depth_half_life_ms, Some(2_000));
    assert_eq!(warm.backstop_depth_bps, Some(30_000));
    assert_eq!(warm.stale_quote_bps, Some(50));
    let ok = Scenario::parse(&common::scenario_text(
        "[economy]\nvenues = 5\n[[lie]]\nvalidators = [1, 2]\nat_s = 1.0\nfor_s = 2.0\nprice_bps = 0\n",
    ))
    .expect("parses");
    assert_eq!(ok.economy.expect("an economy").lies.len(), 1);
}

/// Mango Markets: pushing the thin perpetual's trades and quotes 20% above the index. With the
/// band on, the mark stays within 2.5% of the index (half the band) and withdrawals leave out
/// unrealised gains, so the attack loses money (bound: profit at most 0). With the band off the
/// mark follows the pushed book and the attacker profits, if little: his bankrupt short, which
/// the backstop has no room for (the book never showed depth), is deleveraged against the
/// opposing longs at its bankruptcy price instead of the fund paying its deficit (5,558 before
/// the backstop's depth cap).
#[test]
fn a_mark_squeeze_does_not_pay_while_the_band_holds_the_mark() {
    let on = run("squeeze-perpetual", 1, None);
    let off = run("squeeze-perpetual", 1, Some(Protection::PriceBand));
    assert!(
        profit(&on) <= 0,
        "attacker profit {} with the band",
        profit(&on)
    );
    assert!(
        profit(&off) > profit(&on),
        "band off {} against on {}",
        profit(&off),
        profit(&on)
    );
    assert_eq!(figures(&on).bad_debt_usdc, 0);
}

/// Hyperliquid JELLY: a position far larger than the book, its short liquidated by a 30%
/// move. The backstop takes over only what the book has shown it can unwind (nothing, in a
/// 16-second run): the rest of the short is deleveraged at the mark against the most
/// profitable, most leveraged long, the attacker's own, so the attack does not pay (bound: at
/// most 2,000 USDC, what his long makes on the few contracts the book sold his short) and the
/// fund pays nothing. With risk limits off (tiers, open-interest cap and the backstop's cap)
/// the backstop takes the short and the fund pays the rise: more than 100,000 to the attacker.
/// The same seed gives a byte-identical scorecard.
#[test]
fn a_position_too_large_for_the_book_does_not_pay() {
    let on = run("backstop-whale", 1, None);
    let again = run("backstop-whale", 1, None);
    assert_eq!(on.to_json(), again.to_json(), "byte-identical scorecards");
    let off = run("backstop-whale", 1, Some(Protection::RiskLimits));
    let (on_profit, off_profit) = (profit(&on), profit(&off));
    assert!(
        on_profit <= 2_000,
        "attacker profit {on_profit} with risk limits"
    );
    assert!(
        off_profit > 100_000,
        "risk limits off {off_profit} against on {on_profit}"
    );
    let (f_on, f_off) = (figures(&on), figures(&off));
    assert_eq!(
        f_on.backstop_takeovers, 0,
        "no room: the book showed no depth"
    );
    assert!(f_on.auto_deleveraged > 0, "the short was deleveraged");
    assert_eq!(f_on.insurance_fund_drawdown_usdc, 0);
    assert!(
        f_off.backstop_takeovers > 0,
        "the short went to the backstop"
    );
    assert!(f_off.insurance_fund_drawdown_usdc > 100_000);
    assert_eq!(f_on.bad_debt_usdc, 0, "the fund covered every deficit");
}

/// JELLY on a venue that has traded for hours: the depth average is warm (half-life 1 s), so
/// the backstop has room for one book of the depth shown. With the makers' quotes resting
/// however far the index moves (`stale-quotes` off, as the venue ran until 2026-12-05) it
/// takes part of the short over at the mark and the fund carries that part through the rest of
/// the pump: seeds 1 to 5 gave the attacker +3,026, 1,509, 2,048, 1,215 and 3,076 USDC and drew
/// the fund down 650, 307, 397, 196 and 545. What the venue pays is bounded by that one book.
/// With the rule (the default), the quotes the pump left behind are cancelled before the
/// liquidation meets them, the book shown at the takeover is thin, and the backstop takes
/// nothing: seeds 1 to 5 gave the attacker -226, 531, 741, 197 and 1,822, and the fund nothing.
/// With risk limits off the backstop takes the whole short: more than 100,000.
#[test]
fn on_a_venue_with_depth_the_backstop_takes_one_book_of_a_whale_and_no_more() {
    let warm = catalogue::load("backstop-whale-warm").expect("a catalogue scenario");
    let kept = warm.with_protection_off(Protection::StaleQuotes);
    let cards = [
        common::score_scenario(&warm, 1),
        common::score_scenario(&kept, 1),
        common::score_scenario(&kept.with_protection_off(Protection::RiskLimits), 1),
    ];
    let [f_rule, f_on, f_off] = cards.each_ref().map(figures);
    let [rule, on, _] = &cards;
    assert!(
        f_on.backstop_takeovers > 0,
        "a warm book gives the backstop room"
    );
    // The makers quote 4 levels of up to 5 contracts each, three of them: at most 60 a side.
    // The backstop holds at most one book at a time, and sells into the book between
    // takeovers (seed 5 takes 65 in all): bound at two books.
    assert!(
        (1..=120).contains(&f_on.backstop_contracts),
        "{} contracts to the backstop",
        f_on.backstop_contracts
    );
    assert!(
        f_on.deleveraged_contracts > 2_000,
        "the rest of the short is deleveraged: {}",
        f_on.deleveraged_contracts
    );
    assert!(
        (1..=2_000).contains(&f_on.insurance_fund_drawdown_usdc),
        "the fund carries one book: {}",
        f_on.insurance_fund_drawdown_usdc
    );
    assert!(profit(on) <= 4_000, "attacker profit {}", profit(on));
    assert!(
        f_rule.backstop_contracts <= f_on.backstop_contracts
            && f_rule.insurance_fund_drawdown_usdc <= f_on.insurance_fund_drawdown_usdc
            && profit(rule) < profit(on),
        "quotes left behind cancelled: the backstop takes no more and the whale makes less ({} against {})",
        profit(rule),
        profit(on)
    );
    assert!(
        f_off.backstop_contracts > 5_000,
        "risk limits off: the whole short"
    );
    assert!(f_off.insurance_fund_drawdown_usdc > 100_000);
    for f in [f_rule, f_on, f_off] {
        assert_eq!(f.bad_debt_usdc, 0);
    }
}

/// A 20% flash crash through leveraged longs: they are called and liquidated, the fund covers
/// every deficit (no bad debt), and the index stays within the guard's lag of the honest price.
/// Seed 2: on seed 1, with the start-up timing of 2026-12-07, the leveraged traders built no
/// position before the crash (159 trades in the run; their immediate-or-cancel orders go out
/// with the makers' cancel and requote every 100 ms) and nobody could be called. Seeds 2 to 4
/// called 7 to 10 accounts.
#[test]
fn a_flash_crash_liquidates_without_bad_debt() {
    let on = run("liquidation-cascade", 2, None);
    let off = run("liquidation-cascade", 2, Some(Protection::OracleGuard));
    let (f_on, f_off) = (figures(&on), figures(&off));
    assert!(f_on.margin_calls > 0, "the crash called leveraged accounts");
    assert_eq!(f_on.bad_debt_usdc, 0);
    assert_eq!(f_off.bad_debt_usdc, 0);
    assert!(
        f_off.index_error_bps_max <= f_on.index_error_bps_max,
        "without the guard the index follows the crash at once"
    );
}

/// BitMEX, March 2020 (index constituents failing) with Compound's DAI, November 2020 (one
/// source printing a false price): of the three venues every validator reads, venue 0 prints
/// 60% of the price for 6 s and venue 1 fails for 4 s of them. Each validator observes only
/// what a majority of its venues agree on (the production `observe_sources`), so for the
/// overlap the two venues left, which disagree, make no observation: the validators abstain
/// and the index never takes the lie; nobody is called at a false price and the fund pays
/// nothing. Reading venue 0 alone (`venue-median` off) takes the lie for all 6 s.
#[test]
fn a_false_venue_does_not_reach_the_index_when_a_second_venue_fails() {
    let on = run("venue-false-price", 1, None);
    let off = run("venue-false-price", 1, Some(Protection::VenueMedian));
    let (f_on, f_off) = (figures(&on), figures(&off));
    assert!(
        f_on.index_error_bps_max < 100,
        "the lie reached the index: {} bps",
        f_on.index_error_bps_max
    );
    assert_eq!(
        (f_on.margin_calls, f_on.backstop_takeovers),
        (0, 0),
        "nobody called at a false price"
    );
    assert_eq!(f_on.insurance_fund_drawdown_usdc, 0);
    assert_eq!(f_on.bad_debt_usdc, 0);
    assert!(
        f_off.index_error_bps_max >= 3_000,
        "one venue read alone is lied to: {} bps",
        f_off.index_error_bps_max
    );
}

/// The same lie with the second venue failing for 9 s of its 10 (from 5 s to 14 s): the
/// validators abstain for longer than their last observations count (3 s in blocks, then 5 s
/// in the oracle), so the oracle goes stale rather than take the lie (liquidation pauses,
/// withdrawals wait; on seed 1 from 12.3 s to 14.2 s); when venue 1 is back, the two honest
/// venues outvote venue 0. The index never takes the lie and nobody is called.
#[test]
fn a_long_overlap_makes_the_oracle_stale_not_false() {
    let mut scenario = catalogue::get("venue-false-price")
        .expect("exists")
        .expect("parses");
    scenario.name = "venue-false-price-long".into();
    scenario.duration = bulwark_sim::scenario::RunLength::Seconds(18);
    let economy = scenario.economy.as_mut().expect("an economy");
    economy.lies[0].for_ms = 10_000;
    economy.lies[1].at_ms = 5_000;
    economy.lies[1].for_ms = 9_000;
    let f = figures(&common::score_scenario(&scenario, 1));
    assert!(
        f.index_error_bps_max < 100,
        "the lie reached the index: {} bps",
        f.index_error_bps_max
    );
    assert_eq!((f.margin_calls, f.backstop_takeovers), (0, 0));
    assert_eq!(f.insurance_fund_drawdown_usdc, 0);
}

/// f colluding validators (two of seven) report 130% of the price for 10 s, one of them also
/// keeping only the quorum's worth of the highest observations in the blocks it leads, while
/// their operator holds a long against his own short and the long asks every tick to withdraw
/// all it may: the index stays within the venues' noise and he takes nothing (seed 1: index
/// error max 5 bps, attacker -201 USDC, the fund untouched). With four of seven lying, beyond
/// f, the same run's index follows the lie (3,002 bps): the figure bounded here is the one a
/// broken quorum moves. (Even then the withdrawals, which leave out unrealised gains and wait
/// for later prices, paid him nothing: -500.)
#[test]
fn f_colluding_validators_withdrawing_on_their_lie_take_nothing() {
    let f = figures(&run("validators-lie-withdrawal", 1, None));
    assert!(
        f.index_error_bps_max < 50,
        "index error {} bps",
        f.index_error_bps_max
    );
    let profit = f.attacker_profit_usdc.expect("an attacker");
    assert!(profit <= 0, "the colluders' operator made {profit} USDC");
    assert_eq!(f.bad_debt_usdc, 0);
    assert_eq!(f.insurance_fund_drawdown_usdc, 0);

    let mut beyond = catalogue::load("validators-lie-withdrawal").expect("in the catalogue");
    for lie in &mut beyond.economy.as_mut().expect("an economy").lies {
        lie.liar = Liar::Validators(vec![3, 4, 5, 6]);
    }
    let broken = figures(&common::score_scenario(&beyond, 1));
    assert!(
        broken.index_error_bps_max > 1_000,
        "four of seven lying moved the index only {} bps",
        broken.index_error_bps_max
    );
}

/// f coordinated lying validators (one of four at 70%, then silent) do not move the index: it
/// is the median of the validators' observations.
#[test]
fn f_lying_validators_do_not_move_the_index() {
    let card = run("validators-lie", 1, None);
    let f = figures(&card);
    assert!(
        f.index_error_bps_max < 50,
        "index error {}",
        f.index_error_bps_max
    );
    assert_eq!(f.bad_debt_usdc, 0);
}
