//! Portfolio margins of known books against values computed by hand (and checked at 40 digits
//! by `tests/reference/hand_margins.py`, which prints every scenario).
//!
//! Common setup: BTC index 100,000 USDC on 2026-01-01 08:00 UTC, flat implied vol 60%, default
//! parameters at the 16% floor range. Options are 1 BTC per contract; the perpetual 0.001 BTC.
//! Black-76 with rate 0 on the index: `call = F N(d1) - K N(d2)`, `d1 = ln(F/K)/s + s/2`,
//! `s = vol sqrt(days / 365)`. A 30-day option's vol shocks have scale `sqrt(30/30) = 1`: up
//! `0.6 x 1.4 = 0.84`, down `0.6 x 0.75 = 0.45`; a 90-day one's `sqrt(30/90) = 0.577`: up
//! `0.7386`, down `0.5134`. Maintenance = worst weighted loss + 1% of the index per short option
//! + 1 micro-USDC per contract; initial = 1.25 x maintenance.
//!
//! The crate rounds each contract's scenario P&L to a micro-USDC (at most half a micro-USDC per
//! contract) and the weighted losses and the initial multiple up (at most one each), so the
//! assertions allow `contracts / 2 + 2` micro-USDC. Seen: 0 to 6 apart.

mod common;

use bulwark_risk::VolShift;
use bulwark_types::Money;
use common::*;

fn assert_close(actual: Money, expected_usdc: f64, contracts: i128, what: &str) {
    let expected = (expected_usdc * 1e6).round() as i128;
    let diff = (actual.micros() - expected).abs();
    assert!(
        diff <= contracts / 2 + 2,
        "{what}: {actual} USDC vs hand {expected_usdc:.6}, off by {diff} micro-USDC"
    );
}

fn name(expiry: &str, strike: u32, right: char) -> String {
    format!("BTC_USDC-{expiry}-{strike}-{right}")
}

#[test]
fn short_straddle() {
    // Short 1 call and 1 put at 100,000, 30 days.
    // Base: s = 0.6 sqrt(30/365) = 0.17201, d1 = 0.08601, d2 = -0.08601, N(d1) = 0.53427:
    //   call = put = 100,000 x (0.53427 - 0.46573) = 6,853.94; the straddle is worth 13,707.88.
    // Worst: index +16% (116,000) with vol up (0.84): s = 0.24082, d1 = 0.73672, d2 = 0.49590,
    //   call = 116,000 x 0.769354 - 100,000 x 0.690017 = 20,243.29, put = call - (F - K)
    //   = 4,243.29; straddle 24,486.59; loss 24,486.59 - 13,707.88 = 10,778.71.
    //   (-16% vol up loses 8,321.88; the extremes lose 19,178.45 at +32% and 18,414.68 at -32%,
    //   which count at 35%: 6,712.46 and 6,445.14.)
    // Add-on: 2 short options x 1% x 100,000 = 2,000. Allowance: 2 micro-USDC.
    // Maintenance: 10,778.705088 + 2,000 + 0.000002 = 12,778.705090; initial 15,973.381362.
    let margin = engine(1_600);
    let at = valuation(100_000);
    let call = option(&name(EXPIRY_30D, 100_000, 'C'), ONE_BTC);
    let put = option(&name(EXPIRY_30D, 100_000, 'P'), ONE_BTC);
    let account = account(&margin, &at, &[(call, 0.6, -1), (put, 0.6, -1)]);
    let requirement = margin.requirement(&account).unwrap();
    assert_close(requirement.maintenance, 12_778.705_090, 2, "maintenance");
    assert_close(requirement.initial, 15_973.381_362, 2, "initial");
    assert_eq!(requirement.short_option_addon, Money::from_usdc(2_000));
    assert_eq!(
        requirement.worst_scenario,
        Some(margin.grid().core_index(4, VolShift::Up))
    );
}

#[test]
fn covered_call() {
    // Long 1 BTC of perpetual (1,000 contracts of 0.001), short 1 call at 110,000, 30 days.
    // Base call: d1 = ln(100/110)/0.17201 + 0.08601 = -0.46807, d2 = -0.64009,
    //   call = 100,000 x 0.319866 - 110,000 x 0.261057 = 3,270.26.
    // Worst: index -16% (84,000) with vol up (0.84): perpetual loses 16,000; the call falls to
    //   d1 = ln(84/110)/0.24082 + 0.12041 = -0.99936, call = 84,000 x 0.15881 - 110,000 x
    //   0.107454 = 1,520.08, a gain of 1,750.18 on the short: loss 14,249.82.
    //   (The -32% extreme loses 32,000 - (3,270.26 - 11.44) = 28,741.17, x 35% = 10,059.41.)
    // Add-on: 1 short option x 1,000 = 1,000. Allowance: 1,001 micro-USDC.
    // Maintenance: 14,249.818484 + 1,000 + 0.001001 = 15,249.819485; initial 19,062.274357.
    let margin = engine(1_600);
    let at = valuation(100_000);
    let call = option(&name(EXPIRY_30D, 110_000, 'C'), ONE_BTC);
    let account = account(&margin, &at, &[(perpetual(), 0.6, 1_000), (call, 0.6, -1)]);
    let requirement = margin.requirement(&account).unwrap();
    assert_close(
        requirement.maintenance,
        15_249.819_485,
        1_001,
        "maintenance",
    );
    assert_close(requirement.initial, 19_062.274_357, 1_001, "initial");
    assert_eq!(
        requirement.worst_scenario,
        Some(margin.grid().core_index(-4, VolShift::Up))
    );
}

#[test]
fn calendar_spread() {
    // Short 1 call at 100,000 for 30 days, long 1 call at 100,000 for 90 days.
    // Base: near 6,853.94; far s = 0.6 sqrt(90/365) = 0.29794, d1 = 0.14897, N(d1) = 0.559211,
    //   far = 100,000 x (0.559211 - 0.440789) = 11,842.20. The spread is worth 4,988.25.
    // Worst: index -16% with vol down (near 0.45, far 0.5134, each scaled to its expiry):
    //   near d1 = ln(0.84)/0.12901 + 0.06451 = -1.28696, near = 84,000 x 0.0990548 - 100,000 x
    //   0.0783926 = 481.35; far d1 = ln(0.84)/0.25494 + 0.12747 = -0.55645, far = 84,000 x
    //   0.288953 - 100,000 x 0.208573 = 3,414.69. Spread 2,933.35: loss 2,054.91.
    //   (Vol up at -16% loses only 1,154.11: the far leg's vega wins; the -32% extreme loses
    //   3,926.32, x 35% = 1,374.21.)
    // Add-on: the short near call, 1,000. Allowance 2 micro-USDC.
    // Maintenance: 2,054.909287 + 1,000 + 0.000002 = 3,054.909289; initial 3,818.636611.
    let margin = engine(1_600);
    let at = valuation(100_000);
    let near = option(&name(EXPIRY_30D, 100_000, 'C'), ONE_BTC);
    let far = option(&name(EXPIRY_90D, 100_000, 'C'), ONE_BTC);
    let account = account(&margin, &at, &[(near, 0.6, -1), (far, 0.6, 1)]);
    let requirement = margin.requirement(&account).unwrap();
    assert_close(requirement.maintenance, 3_054.909_289, 2, "maintenance");
    assert_close(requirement.initial, 3_818.636_611, 2, "initial");
    assert_eq!(
        requirement.worst_scenario,
        Some(margin.grid().core_index(-4, VolShift::Down))
    );
}

#[test]
fn delta_hedged_long_calls() {
    // Long 10 calls at 100,000 for 30 days, hedged with the perpetual: delta N(0.08601) =
    // 0.534270 per call, 5.34270 BTC, so short 5,343 contracts of 0.001 BTC.
    // The book is long gamma and vega: moves make money, and the worst is no move with vol down
    // (0.45): s = 0.12901, d1 = 0.06451, call = 100,000 x (0.525716 - 0.474284) = 5,143.23,
    // 1,710.71 below the base 6,853.94, x 10 = 17,107.14. (At +-4% vol down it loses 15,048.43
    // and 14,265.24: the gamma gain is smaller than the vega loss.)
    // No short options: no add-on. Allowance 5,353 micro-USDC.
    // Maintenance: 17,107.138915 + 0.005353 = 17,107.144268; initial 21,383.930335.
    let margin = engine(1_600);
    let at = valuation(100_000);
    let call = option(&name(EXPIRY_30D, 100_000, 'C'), ONE_BTC);
    let account = account(&margin, &at, &[(call, 0.6, 10), (perpetual(), 0.6, -5_343)]);
    let requirement = margin.requirement(&account).unwrap();
    assert_close(
        requirement.maintenance,
        17_107.144_268,
        5_353,
        "maintenance",
    );
    assert_close(requirement.initial, 21_383.930_335, 5_353, "initial");
    assert_eq!(requirement.short_option_addon, Money::ZERO);
    assert_eq!(
        requirement.worst_scenario,
        Some(margin.grid().core_index(0, VolShift::Down))
    );
    // The hedge is what makes the book cheap: the calls alone lose most of their premium at
    // -16% with vol down, more than twice the hedged book's worst.
    let call = option(&name(EXPIRY_30D, 100_000, 'C'), ONE_BTC);
    let unhedged = common::account(&margin, &at, &[(call, 0.6, 10)]);
    let alone = margin.requirement(&unhedged).unwrap();
    assert!(alone.maintenance.micros() > 2 * requirement.maintenance.micros());
}
