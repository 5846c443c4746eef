//! Account vectors and summaries: stale vectors are refused, inconsistent fills change
//! nothing, summaries flag exactly the accounts that need a look, and the sweep is bounded.

mod common;

use bulwark_risk::{AccountSummary, RiskError, ScenarioVector, sweep};
use bulwark_types::{Money, Qty, UnitPrice};
use common::*;

#[test]
fn a_vector_from_another_valuation_or_grid_is_refused() {
    let margin = engine(1_600);
    let call = option("BTC_USDC-31JAN26-100000-C", ONE_BTC);
    let today = margin
        .contract_vector(&valuation(100_000), &call, 0.6)
        .unwrap();
    let moved = margin
        .contract_vector(&valuation(101_000), &call, 0.6)
        .unwrap();
    let mut account = margin.empty_account(valuation(100_000));
    account
        .apply_fill(&today, Qty::ZERO, Qty::from_contracts(-3))
        .unwrap();
    let before = account.clone();
    assert_eq!(
        account.apply_fill(&moved, Qty::from_contracts(-3), Qty::from_contracts(1)),
        Err(RiskError::BasisMismatch)
    );
    assert_eq!(account, before);
    let wider = engine(2_000);
    assert_eq!(wider.requirement(&account), Err(RiskError::BasisMismatch));
    // Closing a position that was never opened cannot be this account's.
    assert_eq!(
        account.apply_fill(&today, Qty::from_contracts(5), Qty::from_contracts(-5)),
        Err(RiskError::PositionInconsistent)
    );
    assert_eq!(account, before);
}

#[test]
fn flipping_a_position_moves_the_add_on_with_it() {
    let margin = engine(1_600);
    let put = option("BTC_USDC-31JAN26-90000-P", ONE_BTC);
    let vector = margin
        .contract_vector(&valuation(100_000), &put, 0.6)
        .unwrap();
    let mut account = margin.empty_account(valuation(100_000));
    account
        .apply_fill(&vector, Qty::ZERO, Qty::from_contracts(2))
        .unwrap();
    assert_eq!(
        margin.requirement(&account).unwrap().short_option_addon,
        Money::ZERO
    );
    account
        .apply_fill(&vector, Qty::from_contracts(2), Qty::from_contracts(-5))
        .unwrap();
    // Short 3 now: 3 x 1% x 100,000.
    let requirement = margin.requirement(&account).unwrap();
    assert_eq!(requirement.short_option_addon, Money::from_usdc(3_000));
    assert_eq!(requirement.rounding_allowance, Money::from_micros(3));
    let rebuilt = ScenarioVector::rebuild(
        margin.grid(),
        valuation(100_000),
        [(&vector, Qty::from_contracts(-3))],
    )
    .unwrap();
    assert_eq!(account, rebuilt);
}

#[test]
fn summaries_flag_accounts_outside_their_band_or_without_cushion() {
    let margin = engine(1_600);
    let at = valuation(100_000);
    let call = option("BTC_USDC-31JAN26-100000-C", ONE_BTC);
    let put = option("BTC_USDC-31JAN26-100000-P", ONE_BTC);
    let straddle = account(&margin, &at, &[(call, 0.6, -1), (put, 0.6, -1)]);
    // Maintenance is 12,778.71: 50,000 of equity is a wide cushion, 13,000 is not enough to
    // cover the band's worst (the floor accounts for the index moving 3.44% first).
    let rich = margin.summary(&straddle, Money::from_usdc(50_000)).unwrap();
    let thin = margin.summary(&straddle, Money::from_usdc(13_000)).unwrap();
    assert!(rich.excess_floor > 0 && thin.excess_floor < 0);
    assert_eq!(
        (rich.index_low, rich.index_high),
        (96_560_000_000, 103_440_000_000)
    );
    assert!(rich.is_safe_at(UnitPrice::from_usdc(100_000)));
    assert!(rich.is_safe_at(UnitPrice::from_usdc(103_440)));
    assert!(!rich.is_safe_at(UnitPrice::from_micros(103_440_000_001)));
    assert!(!thin.is_safe_at(UnitPrice::from_usdc(100_000)));
    assert!(!AccountSummary::UNKNOWN.is_safe_at(UnitPrice::from_usdc(100_000)));

    let summaries = [rich, thin, rich, AccountSummary::UNKNOWN, rich];
    let mut flagged = Vec::new();
    let outcome = sweep(&summaries, UnitPrice::from_usdc(100_000), &mut flagged, 10);
    assert_eq!(flagged, [1, 3]);
    assert_eq!(
        (outcome.checked, outcome.flagged, outcome.truncated),
        (5, 2, false)
    );
    let outcome = sweep(&summaries, UnitPrice::from_usdc(100_000), &mut flagged, 1);
    assert_eq!(flagged, [1]);
    assert_eq!((outcome.checked, outcome.truncated), (3, true));
    // The index leaves the band: every account needs a look.
    sweep(&summaries, UnitPrice::from_usdc(110_000), &mut flagged, 10);
    assert_eq!(flagged, [0, 1, 2, 3, 4]);
}
