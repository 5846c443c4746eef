//! Property: no input makes a public function panic or return NaN; `Ok` results are sane
//! (requirements non-negative, initial at least maintenance, finite report numbers).
//!
//! Inputs mix NaN, infinities, zeros, negatives and huge values with values in the working
//! range: parameters, instrument terms, index, vols, times, quantities, equity and shocks.

mod common;

use bulwark_risk::{
    PortfolioMargin, PortfolioMarginParams, RealisedVol, ScenarioSet, ScenarioVector, Shock,
    StressPortfolio, StressPosition, Valuation, VolSurface, stress,
};
use bulwark_types::{InstrumentName, InstrumentSpec, Money, Multiplier, Qty, UnitPrice};
use common::*;
use proptest::prelude::*;

fn wild() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        Just(f64::MAX),
        any::<f64>(),
        -1e6..1e6_f64,
        0.0..3.0_f64,
    ]
}

fn wild_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(1),
        Just(-1),
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>(),
        -1_000_000..1_000_000_i64,
        1_000_000..1_000_000_000_000_i64,
    ]
}

fn wild_u32(typical: u32) -> impl Strategy<Value = u32> {
    prop_oneof![4 => Just(typical), 1 => Just(0u32), 1 => any::<u32>(), 2 => 0..2 * typical.max(1)]
}

/// Defaults three times in four, so that most cases reach the model; otherwise anything.
fn params() -> impl Strategy<Value = PortfolioMarginParams> {
    prop_oneof![3 => Just(PortfolioMarginParams::defaults()), 1 => wild_params()]
}

fn wild_params() -> impl Strategy<Value = PortfolioMarginParams> {
    let d = PortfolioMarginParams::defaults();
    (
        prop_oneof![4 => Just(d.move_points), 1 => any::<u8>()],
        wild_u32(d.range_min_bps),
        wild_u32(d.range_max_bps),
        wild_u32(d.vol_up_bps),
        wild_u32(d.vol_down_bps),
        wild_u32(d.vol_scale_max_bps),
        wild_u32(d.extreme_multiple_bps),
        wild_u32(d.extreme_cover_bps),
        wild_u32(d.initial_over_maintenance_bps),
        wild_u32(d.realised_vol_sample_max_bps),
        prop_oneof![4 => Just(d.realised_vol_sample_ms), 1 => any::<u64>()],
    )
        .prop_map(
            move |(
                points,
                min,
                max,
                up,
                down,
                scale_max,
                multiple,
                cover,
                initial,
                sample_max,
                sample_ms,
            )| {
                PortfolioMarginParams {
                    move_points: points,
                    range_min_bps: min,
                    range_max_bps: max,
                    vol_up_bps: up,
                    vol_down_bps: down,
                    vol_scale_max_bps: scale_max,
                    extreme_multiple_bps: multiple,
                    extreme_cover_bps: cover,
                    initial_over_maintenance_bps: initial,
                    realised_vol_sample_max_bps: sample_max,
                    realised_vol_sample_ms: sample_ms,
                    ..d
                }
            },
        )
}

fn spec() -> impl Strategy<Value = InstrumentSpec> {
    let names = prop_oneof![
        Just("BTC_USDC-PERPETUAL"),
        Just("BTC_USDC-31JAN26-100000-C"),
        Just("BTC_USDC-1JAN26-100000-P"),
        Just("BTC_USDC-31DEC99-5-C"),
        Just("BTC_USDC-2JAN26-0d5-P"),
        Just("ETH_USDC-31JAN26-3000-C"),
    ];
    let tick = prop_oneof![3 => Just(500_000i64), 1 => wild_i64()];
    let multiplier = prop_oneof![3 => Just(ONE_BTC / 100), 1 => wild_i64()];
    (names, tick, multiplier).prop_map(|(name, tick, multiplier)| InstrumentSpec {
        name: InstrumentName::parse(name).unwrap(),
        tick_size: UnitPrice::from_micros(tick),
        multiplier: Multiplier::from_e8(multiplier),
        lot_size: Qty::from_contracts(1),
        size_min: Qty::from_contracts(1),
    })
}

/// Mostly working-range vols, sometimes anything.
fn vol() -> impl Strategy<Value = f64> {
    prop_oneof![3 => 0.05..3.0_f64, 1 => wild()]
}

fn check_requirement(
    margin: &PortfolioMargin,
    account: &ScenarioVector,
) -> Result<(), TestCaseError> {
    if let Ok(r) = margin.requirement(account) {
        prop_assert!(r.maintenance >= Money::ZERO);
        prop_assert!(r.initial >= r.maintenance);
        prop_assert!(r.worst_loss >= Money::ZERO);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn margin_never_panics(
        params in params(),
        range in prop_oneof![3 => 1_600..3_200_u32, 1 => any::<u32>()],
        index in prop_oneof![3 => 1_000_000..1_000_000_000_000_i64, 1 => wild_i64()],
        time in prop_oneof![Just(now_ms()), any::<u64>()],
        specs in prop::collection::vec((spec(), vol(), wild_i64(), wild_i64()), 1..6),
        equity in prop_oneof![Just(0i128), any::<i128>(), -(1i128 << 40)..(1i128 << 40)],
    ) {
        let _ = params.check();
        let Ok(margin) = PortfolioMargin::new(params, range) else { return Ok(()) };
        let index = UnitPrice::from_micros(index);
        let valuation = Valuation { underlying: btc(), index, time_ms: time };
        let mut account = margin.empty_account(valuation);
        for (spec, vol, before, fill) in specs {
            let Ok(vector) = margin.contract_vector(&valuation, &spec, vol) else { continue };
            let before_state = account.clone();
            let (before, fill) = (Qty::from_contracts(before), Qty::from_contracts(fill));
            if account.apply_fill(&vector, before, fill).is_err() {
                prop_assert_eq!(&account, &before_state, "a failed fill changes nothing");
            }
            check_requirement(&margin, &account)?;
        }
        let _ = margin.summary(&account, Money::from_micros(equity));
    }

    #[test]
    fn realised_vol_never_panics(
        params in params(),
        prints in prop::collection::vec((wild_i64(), any::<u64>()), 0..30),
    ) {
        let Ok(mut rv) = RealisedVol::new(&params) else { return Ok(()) };
        for (index, time) in prints {
            let before = rv;
            if rv.update(&params, UnitPrice::from_micros(index), time).is_err() {
                prop_assert_eq!(rv, before, "a refused print changes nothing");
            }
            let range = rv.range_bps(&params);
            prop_assert!((params.range_min_bps..=params.range_max_bps).contains(&range));
            prop_assert!(rv.variance().is_finite());
        }
    }

    #[test]
    fn stress_never_panics(
        positions in prop::collection::vec((spec(), wild_i64()), 0..5),
        flat in vol(),
        index in prop_oneof![3 => 1_000_000..1_000_000_000_000_i64, 1 => wild_i64()],
        collateral in any::<i128>(),
        shocks in prop::collection::vec(
            (
                prop_oneof![3 => -95.0..100.0_f64, 1 => wild()],
                prop_oneof![3 => -100.0..300.0_f64, 1 => wild()],
            ),
            0..5,
        ),
    ) {
        let margin = engine(1_600);
        let portfolio = StressPortfolio {
            underlying: btc(),
            positions: positions
                .into_iter()
                .map(|(spec, qty)| StressPosition { spec, qty: Qty::from_contracts(qty) })
                .collect(),
            collateral: Money::from_micros(collateral),
            index: UnitPrice::from_micros(index),
            time_ms: now_ms(),
            vols: VolSurface::Flat(flat),
        };
        let shocks: Vec<Shock> = shocks
            .into_iter()
            .map(|(index_move_pct, vol_move_points)| Shock {
                name: "wild".into(),
                index_move_pct,
                vol_move_points,
                source: None,
            })
            .collect();
        let sets = [ScenarioSet::MarginGrid, ScenarioSet::Historical, ScenarioSet::Shocks(shocks)];
        for set in sets {
            if let Ok(report) = stress(&portfolio, &margin, &set) {
                for row in std::iter::once(&report.base).chain(&report.rows) {
                    let g = row.greeks;
                    let numbers = [g.delta, g.gamma, g.vega, g.theta, row.index_move_pct];
                    prop_assert!(numbers.iter().all(|x| x.is_finite()));
                    prop_assert!(row.maintenance_micros >= 0);
                    prop_assert!(row.initial_micros >= row.maintenance_micros);
                }
            }
        }
    }
}
