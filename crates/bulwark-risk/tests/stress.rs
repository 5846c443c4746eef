//! Stress tests: each scenario set on known books, with value changes, requirements and greeks
//! checked against what the book must do.

mod common;

use bulwark_risk::{
    PortfolioGreeks, RiskError, ScenarioSet, Shock, StressPortfolio, StressPosition, StressReport,
    VolMove, VolPoint, VolShift, VolSurface, historical_shocks, portfolio_vector, stress,
};
use bulwark_types::{InstrumentKind, InstrumentSpec, Money, Qty, UnitPrice};
use common::*;

fn portfolio(positions: &[(InstrumentSpec, i64)], collateral_usdc: i64) -> StressPortfolio {
    StressPortfolio {
        underlying: btc(),
        positions: positions
            .iter()
            .map(|(spec, qty)| StressPosition {
                spec: *spec,
                qty: Qty::from_contracts(*qty),
            })
            .collect(),
        collateral: Money::from_usdc(collateral_usdc),
        index: UnitPrice::from_usdc(100_000),
        time_ms: now_ms(),
        vols: VolSurface::Flat(0.6),
    }
}

fn straddle() -> Vec<(InstrumentSpec, i64)> {
    vec![
        (option("BTC_USDC-31JAN26-100000-C", ONE_BTC), -1),
        (option("BTC_USDC-31JAN26-100000-P", ONE_BTC), -1),
    ]
}

fn assert_serialize<T: serde::Serialize>(_: &T) {}

#[test]
fn margin_grid_rows_match_the_requirement_and_the_vector() {
    let margin = engine(1_600);
    let book = portfolio(&straddle(), 50_000);
    let report = stress(&book, &margin, &ScenarioSet::MarginGrid).unwrap();
    assert_serialize(&report);
    assert_eq!(report.rows.len(), margin.grid().margin_len());
    assert_eq!(report.range_bps, 1_600);
    // The base row is the book as it stands: its requirement is the hand-computed 12,778.71,
    // and equity is 50,000 of cash less the two options' 13,707.88 of value.
    let base = &report.base;
    assert_eq!(base.value_change_micros, 0);
    assert!((base.maintenance_micros - 12_778_705_090).abs() <= 12);
    assert!((base.equity_micros - (50_000_000_000 - 13_707_881_436)).abs() <= 2);
    // Each grid row's value change is the account vector's entry (which rounds per contract).
    let vector = portfolio_vector(&book, &margin).unwrap();
    for (row, pnl) in report.rows.iter().zip(vector.pnl()) {
        assert!(
            (row.value_change_micros - pnl).abs() <= 2,
            "{}",
            row.scenario
        );
    }
    // In value, the +32% extreme loses most (19,178.45); it counts at 35% in the requirement,
    // whose worst is +16% vol up.
    let worst = report
        .rows
        .iter()
        .min_by_key(|r| r.value_change_micros)
        .unwrap();
    assert_eq!(worst.scenario, "grid +32.00% vol unchanged");
    assert_eq!(worst.vol_move, VolMove::Grid(VolShift::Unchanged));
    assert_eq!(worst.cover_pct, 35.0);
    assert!((worst.value_change_micros + 19_178_454_023).abs() <= 2);
    assert_eq!(report.rows[0].cover_pct, 100.0);
}

#[test]
fn historical_shocks_name_their_sources_and_hurt_a_short_straddle() {
    let shocks = historical_shocks();
    assert_eq!(shocks.len(), 3);
    for shock in &shocks {
        let source = shock.source.as_deref().unwrap();
        assert!(source.starts_with("APPROXIMATE."), "{}", shock.name);
        assert!(shock.index_move_pct < 0.0 && shock.vol_move_points > 0.0);
    }
    let margin = engine(1_600);
    let report = stress(
        &portfolio(&straddle(), 50_000),
        &margin,
        &ScenarioSet::Historical,
    )
    .unwrap();
    // Black Thursday: the index at 61,000, the put 39,000 in the money with vol at 160%.
    let black_thursday = &report.rows[0];
    assert_eq!(black_thursday.index_micros, 61_000_000_000);
    assert!(black_thursday.value_change_micros < -30_000_000_000);
    assert!(
        black_thursday.liquidatable,
        "50,000 of cash cannot carry it"
    );
    // Short straddle: short gamma, short vega, long theta, and short delta after a fall.
    let g = black_thursday.greeks;
    assert!(g.delta > 0.0, "the short put's delta dominates: {g:?}");
    assert!(g.gamma < 0.0 && g.vega < 0.0 && g.theta > 0.0, "{g:?}");
    for row in &report.rows {
        assert!(matches!(row.vol_move, VolMove::Points(p) if p > 0.0));
    }
}

#[test]
fn a_user_shock_moves_a_perpetual_linearly() {
    // Long 1 BTC of perpetual: -10% loses exactly 10,000 USDC; delta is 1 BTC, the rest zero.
    let margin = engine(1_600);
    let shock = Shock {
        name: "down ten".into(),
        index_move_pct: -10.0,
        vol_move_points: 50.0,
        source: None,
    };
    let report = stress(
        &portfolio(&[(perpetual(), 1_000)], 20_000),
        &margin,
        &ScenarioSet::Shocks(vec![shock]),
    )
    .unwrap();
    let row = &report.rows[0];
    assert_eq!(row.value_change_micros, -10_000_000_000);
    assert_eq!(
        row.greeks,
        PortfolioGreeks {
            delta: 1.0,
            ..PortfolioGreeks::default()
        }
    );
    // 20,000 of cash + 100,000 of perpetual at the base; maintenance is the -16% move at the
    // shocked index of 90,000 plus the allowance: 14,400.001.
    assert_eq!(row.equity_micros, 110_000_000_000);
    assert_eq!(row.maintenance_micros, 14_400_001_000);
    assert!(!row.liquidatable);
}

#[test]
fn vols_come_from_points_by_strike_then_by_expiry() {
    let margin = engine(1_600);
    let call = option("BTC_USDC-31JAN26-100000-C", ONE_BTC);
    let InstrumentKind::Option { expiry_ms, .. } = call.kind() else {
        unreachable!()
    };
    let mut book = portfolio(&[(call, 1)], 10_000);
    let at = |vols: Vec<VolPoint>, book: &mut StressPortfolio| -> Result<StressReport, RiskError> {
        book.vols = VolSurface::Points(vols);
        stress(book, &margin, &ScenarioSet::Historical)
    };
    let expiry_only = VolPoint {
        expiry_ms,
        strike: None,
        vol: 0.6,
    };
    let by_strike = VolPoint {
        expiry_ms,
        strike: Some(UnitPrice::from_usdc(100_000)),
        vol: 0.9,
    };
    let flat = at(vec![expiry_only], &mut book).unwrap();
    let strike = at(vec![expiry_only, by_strike], &mut book).unwrap();
    // A long call at 90% vol is worth more than at 60%: equity (cash + value) is higher.
    assert!(strike.base.equity_micros > flat.base.equity_micros);
    assert_eq!(
        at(vec![], &mut book).unwrap_err(),
        RiskError::VolMissing { expiry_ms }
    );
}

#[test]
fn bad_shocks_and_portfolios_are_typed_errors() {
    let margin = engine(1_600);
    let book = portfolio(&straddle(), 50_000);
    let shock = |pct: f64, points: f64| {
        ScenarioSet::Shocks(vec![Shock {
            name: "x".into(),
            index_move_pct: pct,
            vol_move_points: points,
            source: None,
        }])
    };
    for set in [shock(-100.0, 0.0), shock(f64::NAN, 0.0), shock(0.0, 1e9)] {
        assert!(matches!(
            stress(&book, &margin, &set),
            Err(RiskError::ShockInvalid { .. })
        ));
    }
    let mut eth = book.clone();
    eth.positions[0].spec = option("ETH_USDC-31JAN26-3000-C", ONE_BTC);
    assert_eq!(
        stress(&eth, &margin, &ScenarioSet::Historical).unwrap_err(),
        RiskError::UnderlyingMismatch
    );
    let mut nan_vol = book.clone();
    nan_vol.vols = VolSurface::Flat(f64::NAN);
    assert!(matches!(
        stress(&nan_vol, &margin, &ScenarioSet::Historical),
        Err(RiskError::VolInvalid { .. })
    ));
    let mut zero = book;
    zero.index = UnitPrice::ZERO;
    assert_eq!(
        stress(&zero, &margin, &ScenarioSet::MarginGrid).unwrap_err(),
        RiskError::IndexNotPositive
    );
}

#[test]
fn a_large_vol_fall_is_floored_at_one_percent() {
    // -1000 points would take 60% below zero; the shocked vol is clamped to 1%, and a long
    // call then is worth about its (zero) intrinsic value at the money plus a little.
    let margin = engine(1_600);
    let book = portfolio(&[(option("BTC_USDC-31JAN26-100000-C", ONE_BTC), 1)], 10_000);
    let set = ScenarioSet::Shocks(vec![Shock {
        name: "vol crush".into(),
        index_move_pct: 0.0,
        vol_move_points: -1_000.0,
        source: Some("test".into()),
    }]);
    let row = &stress(&book, &margin, &set).unwrap().rows[0];
    // At 1% vol the 30-day ATM call is worth 100,000 x 0.01 x sqrt(30/365) x 0.3989 = 114.4.
    let value_after = 6_853_940_718 + row.value_change_micros;
    assert!((value_after - 114_360_000).abs() < 200_000, "{value_after}");
}
