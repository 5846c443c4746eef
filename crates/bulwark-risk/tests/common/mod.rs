//! Instruments and portfolios shared by the integration tests.
#![allow(dead_code)]

use bulwark_risk::{
    ContractVector, PortfolioMargin, PortfolioMarginParams, ScenarioVector, Valuation,
};
use bulwark_types::{
    AssetCode, ExpiryDate, InstrumentName, InstrumentSpec, Multiplier, Qty, UnitPrice,
};

/// 2026-01-01 08:00 UTC: the valuation time of the hand-computed cases.
pub fn now_ms() -> u64 {
    ExpiryDate::new(2026, 1, 1).unwrap().expiry_millis()
}

pub fn btc() -> AssetCode {
    AssetCode::parse("BTC").unwrap()
}

/// An option named like `BTC_USDC-31JAN26-100000-C`, multiplier `multiplier_e8`, 5 USDC ticks.
pub fn option(name: &str, multiplier_e8: i64) -> InstrumentSpec {
    let spec = InstrumentSpec {
        name: InstrumentName::parse(name).unwrap(),
        tick_size: UnitPrice::from_usdc(5),
        multiplier: Multiplier::from_e8(multiplier_e8),
        lot_size: Qty::from_contracts(1),
        size_min: Qty::from_contracts(1),
    };
    spec.check().unwrap();
    spec
}

/// The BTC perpetual: 0.001 BTC per contract, 0.5 USDC ticks.
pub fn perpetual() -> InstrumentSpec {
    let spec = InstrumentSpec {
        name: InstrumentName::parse("BTC_USDC-PERPETUAL").unwrap(),
        tick_size: UnitPrice::from_micros(500_000),
        multiplier: Multiplier::from_e8(100_000),
        lot_size: Qty::from_contracts(1),
        size_min: Qty::from_contracts(1),
    };
    spec.check().unwrap();
    spec
}

pub fn valuation(index_usdc: i64) -> Valuation {
    Valuation {
        underlying: btc(),
        index: UnitPrice::from_usdc(index_usdc),
        time_ms: now_ms(),
    }
}

pub fn engine(range_bps: u32) -> PortfolioMargin {
    PortfolioMargin::new(PortfolioMarginParams::defaults(), range_bps).unwrap()
}

/// The account vector of `positions` (spec, vol, contracts) at `valuation`.
pub fn account(
    margin: &PortfolioMargin,
    valuation: &Valuation,
    positions: &[(InstrumentSpec, f64, i64)],
) -> ScenarioVector {
    let vectors: Vec<ContractVector> = positions
        .iter()
        .map(|(spec, vol, _)| margin.contract_vector(valuation, spec, *vol).unwrap())
        .collect();
    ScenarioVector::rebuild(
        margin.grid(),
        *valuation,
        vectors
            .iter()
            .zip(positions)
            .map(|(v, (_, _, qty))| (v, Qty::from_contracts(*qty))),
    )
    .unwrap()
}

/// Thirty 24-hour days after `now_ms()`: 2026-01-31. Ninety: 2026-04-01.
pub const EXPIRY_30D: &str = "31JAN26";
pub const EXPIRY_90D: &str = "1APR26";
/// One BTC per contract.
pub const ONE_BTC: i64 = 100_000_000;
