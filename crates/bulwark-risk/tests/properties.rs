//! Properties of the margin: incremental updates equal full revaluation, wider ranges never
//! lower the margin of books whose value is concave in the index, hedges are subadditive, and
//! the account summary's floor holds anywhere in its band.
//!
//! Portfolios are drawn from a fixed universe of 12 options (3 expiries, calls and puts, strikes
//! 80,000 to 120,000) and the perpetual, at index 100,000 and vols 30% to 150%. Case counts are
//! modest to keep the suite fast on two cores.

mod common;

use bulwark_pricing::{Black76, OptionKind};
use bulwark_risk::{
    ContractVector, PortfolioMargin, PortfolioMarginParams, ScenarioVector, YEAR_MS,
};
use bulwark_types::{InstrumentKind, InstrumentSpec, Money, Qty, Right, UnitPrice};
use common::*;
use proptest::prelude::*;

const EXPIRIES: [&str; 3] = ["8JAN26", "31JAN26", "27MAR26"];
const STRIKES: [u32; 4] = [80_000, 95_000, 105_000, 120_000];

/// The universe: index 0 is the perpetual, then expiry x strike x right.
fn universe() -> Vec<InstrumentSpec> {
    let mut specs = vec![perpetual()];
    for expiry in EXPIRIES {
        for (k, strike) in STRIKES.iter().enumerate() {
            // Alternate rights so each expiry has calls and puts on both sides of the index.
            let right = if k % 2 == 0 { 'P' } else { 'C' };
            specs.push(option(
                &format!("BTC_USDC-{expiry}-{strike}-{right}"),
                ONE_BTC / 100,
            ));
            let other = if right == 'P' { 'C' } else { 'P' };
            specs.push(option(
                &format!("BTC_USDC-{expiry}-{strike}-{other}"),
                ONE_BTC / 100,
            ));
        }
    }
    specs
}

fn vectors(margin: &PortfolioMargin, index_usdc: i64, vols: &[f64]) -> Vec<ContractVector> {
    let at = valuation(index_usdc);
    universe()
        .iter()
        .zip(vols)
        .map(|(spec, vol)| margin.contract_vector(&at, spec, *vol).unwrap())
        .collect()
}

fn vols() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.3..1.5_f64, 25)
}

/// Fills: (instrument, signed contracts).
fn fills() -> impl Strategy<Value = Vec<(usize, i64)>> {
    prop::collection::vec((0..25usize, -500..=500_i64), 1..60)
}

fn positions_of(fills: &[(usize, i64)]) -> Vec<i64> {
    let mut positions = vec![0i64; 25];
    for &(i, q) in fills {
        positions[i] += q;
    }
    positions
}

fn rebuilt(
    margin: &PortfolioMargin,
    vectors: &[ContractVector],
    positions: &[i64],
) -> ScenarioVector {
    ScenarioVector::rebuild(
        margin.grid(),
        *vectors[0].valuation(),
        vectors
            .iter()
            .zip(positions)
            .filter(|(_, q)| **q != 0)
            .map(|(v, q)| (v, Qty::from_contracts(*q))),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After any sequence of fills, the vector updated fill by fill equals the one rebuilt from
    /// the final positions (in either order), integer for integer, and so do the requirements.
    #[test]
    fn incremental_equals_full_revaluation(vols in vols(), fills in fills()) {
        let margin = engine(1_600);
        let vectors = vectors(&margin, 100_000, &vols);
        let mut incremental = margin.empty_account(*vectors[0].valuation());
        let mut positions = vec![0i64; 25];
        for &(i, q) in &fills {
            incremental
                .apply_fill(&vectors[i], Qty::from_contracts(positions[i]), Qty::from_contracts(q))
                .unwrap();
            positions[i] += q;
        }
        let full = rebuilt(&margin, &vectors, &positions);
        prop_assert_eq!(&incremental, &full);
        let reversed_order: Vec<(usize, i64)> =
            positions.iter().copied().enumerate().rev().filter(|(_, q)| *q != 0).collect();
        let reversed = ScenarioVector::rebuild(
            margin.grid(),
            *vectors[0].valuation(),
            reversed_order.iter().map(|&(i, q)| (&vectors[i], Qty::from_contracts(q))),
        )
        .unwrap();
        prop_assert_eq!(&reversed, &full);
        prop_assert_eq!(
            margin.requirement(&incremental).unwrap(),
            margin.requirement(&full).unwrap()
        );
    }

    /// Resting orders counted on the worse side per scenario cover whatever part of them
    /// fills: for any fill of any part of each instrument's bids or asks (one side per
    /// instrument), the requirement of the filled portfolio is at most the requirement with
    /// the orders counted.
    #[test]
    fn open_orders_cover_every_partial_fill(
        vols in vols(),
        positions in prop::collection::vec(-300..=300_i64, 25),
        orders in prop::collection::vec((0..25usize, 0..200_i64, 0..200_i64, 0..=100_i64, any::<bool>()), 1..8),
    ) {
        let margin = engine(1_600);
        let vectors = vectors(&margin, 100_000, &vols);
        let base = rebuilt(&margin, &vectors, &positions);
        let mut with_orders = base.clone();
        let mut filled = positions.clone();
        let mut seen = std::collections::BTreeSet::new();
        for &(i, bids, asks, pct, buy_side) in &orders {
            if !seen.insert(i) {
                continue;
            }
            with_orders
                .add_open_orders(
                    &vectors[i],
                    Qty::from_contracts(positions[i]),
                    Qty::from_contracts(bids),
                    Qty::from_contracts(asks),
                )
                .unwrap();
            filled[i] += if buy_side { bids * pct / 100 } else { -(asks * pct / 100) };
        }
        let counted = margin.requirement(&with_orders).unwrap();
        let after = margin.requirement(&rebuilt(&margin, &vectors, &filled)).unwrap();
        let nothing = margin.requirement(&base).unwrap();
        prop_assert!(after.maintenance <= counted.maintenance, "{after:?} > {counted:?}");
        prop_assert!(nothing.maintenance <= counted.maintenance);
    }

    /// A book whose value is concave in the index (short options, perpetuals either way) needs
    /// at least as much margin on a wider range: its loss in each vol state is convex in the
    /// move, so the outermost points dominate. Rounding may cost one micro-USDC per contract.
    #[test]
    fn wider_range_never_lowers_margin_of_concave_books(
        vols in vols(),
        shorts in prop::collection::vec((1..25usize, 1..200_i64), 1..10),
        perp in -2_000..2_000_i64,
        range in 1_600..3_000_u32,
        widen in 1..200_u32,
    ) {
        let narrow = engine(range);
        let wide = engine(range + widen);
        let mut positions = vec![0i64; 25];
        positions[0] = perp;
        for &(i, q) in &shorts {
            positions[i] -= q;
        }
        let m_narrow = margin_of(&narrow, &vols, &positions);
        let m_wide = margin_of(&wide, &vols, &positions);
        let contracts: i64 = positions.iter().map(|q| q.abs()).sum();
        prop_assert!(
            m_wide.micros() + i128::from(contracts) >= m_narrow.micros(),
            "range {range}: {m_narrow} > {m_wide} at +{widen} bps"
        );
    }

    /// Margin is subadditive: a book and a hedge together never need more than the two apart
    /// (worst losses add at most, add-ons and allowances net). Exact, since vectors are integers.
    #[test]
    fn adding_a_hedge_never_costs_more_than_the_sum(
        vols in vols(),
        book in fills(),
        hedge in fills(),
    ) {
        let margin = engine(1_600);
        let vectors = vectors(&margin, 100_000, &vols);
        let a = positions_of(&book);
        let b = positions_of(&hedge);
        let both: Vec<i64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let r = |p: &[i64]| margin.requirement(&rebuilt(&margin, &vectors, p)).unwrap();
        let (ra, rb, rab) = (r(&a), r(&b), r(&both));
        prop_assert!(rab.worst_loss.micros() <= ra.worst_loss.micros() + rb.worst_loss.micros());
        prop_assert!(rab.maintenance.micros() <= ra.maintenance.micros() + rb.maintenance.micros());
    }

    /// For an index anywhere in the summary's band (vols and time unchanged, equity moving with
    /// the model), equity minus a fresh maintenance is at least the summary's floor.
    #[test]
    fn summary_floor_holds_across_its_band(
        vols in vols(),
        book in fills(),
        cash in -1_000_000..1_000_000_i64,
        at in 0.0..=1.0_f64,
        range in 1_600..3_200_u32,
    ) {
        let margin = engine(range);
        let vectors0 = vectors(&margin, 100_000, &vols);
        let positions = positions_of(&book);
        let account0 = rebuilt(&margin, &vectors0, &positions);
        let equity0 = Money::from_usdc(cash);
        let summary = margin.summary(&account0, equity0).unwrap();
        let width = (summary.index_high - summary.index_low) as f64;
        let index1 = summary.index_low + (width * at) as i64;
        let inside = UnitPrice::from_micros(index1);
        prop_assert!(summary.is_safe_at(inside) || summary.excess_floor < 0);
        let vectors1: Vec<ContractVector> = universe()
            .iter()
            .zip(&vols)
            .map(|(spec, vol)| {
                let mut v = valuation(100_000);
                v.index = UnitPrice::from_micros(index1);
                margin.contract_vector(&v, spec, *vol).unwrap()
            })
            .collect();
        let m1 = margin.requirement(&rebuilt(&margin, &vectors1, &positions)).unwrap();
        let change: f64 = universe()
            .iter()
            .zip(&vols)
            .zip(&positions)
            .map(|((spec, vol), q)| {
                let units = *q as f64 * spec.multiplier.e8() as f64 / 1e8;
                units * (value(spec, index1 as f64, *vol) - value(spec, 1e11, *vol))
            })
            .sum();
        let equity1 = equity0.micros() + change.floor() as i128;
        let excess1 = equity1 - m1.maintenance.micros();
        prop_assert!(
            excess1 >= i128::from(summary.excess_floor),
            "at {index1}: fresh excess {excess1} below the floor {}",
            summary.excess_floor
        );
    }
}

fn margin_of(margin: &PortfolioMargin, vols: &[f64], positions: &[i64]) -> Money {
    let vectors = vectors(margin, 100_000, vols);
    margin
        .requirement(&rebuilt(margin, &vectors, positions))
        .unwrap()
        .maintenance
}

/// Value per unit at `index` (micro-USDC), independently of the crate: Black-76, rate 0.
fn value(spec: &InstrumentSpec, index: f64, vol: f64) -> f64 {
    match spec.kind() {
        InstrumentKind::Perpetual => index,
        InstrumentKind::Option {
            expiry_ms,
            strike,
            right,
        } => {
            let t = (expiry_ms - now_ms()) as f64 / YEAR_MS as f64;
            let kind = match right {
                Right::Call => OptionKind::Call,
                Right::Put => OptionKind::Put,
            };
            Black76::new(index, strike.micros() as f64, t, vol, 0.0)
                .unwrap()
                .price(kind)
                .unwrap()
        }
    }
}

/// A grid can step over a loss peak: a short butterfly loses most when the index lands on its
/// body. At a 20% range the grid's +10% point sits on the body (110,000); at 24% the points are
/// +6% and +12%, both off it, and the requirement falls. The monotonicity above is a theorem
/// only for concave books; for mixed books the grid is a discretisation, as SPAN's and Deribit's
/// are. (A remedy, not taken here: take the worst of the adaptive grid and the floor grid.)
#[test]
fn wider_range_can_step_over_the_loss_peak_of_a_mixed_book() {
    let params = PortfolioMarginParams::defaults();
    let body = option("BTC_USDC-3JAN26-110000-C", ONE_BTC);
    let low = option("BTC_USDC-3JAN26-100000-C", ONE_BTC);
    let high = option("BTC_USDC-3JAN26-120000-C", ONE_BTC);
    let book = [(low, 0.5, -1), (body, 0.5, 2), (high, 0.5, -1)];
    let at = valuation(100_000);
    let m = |range| {
        let margin = PortfolioMargin::new(params, range).unwrap();
        margin.requirement(&account(&margin, &at, &book)).unwrap()
    };
    let (on_peak, off_peak) = (m(2_000), m(2_400));
    assert!(
        off_peak.maintenance < on_peak.maintenance,
        "{on_peak:?} vs {off_peak:?}"
    );
}
