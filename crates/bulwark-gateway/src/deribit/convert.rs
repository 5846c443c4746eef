//! Exact conversion between the exchange's integer units and Deribit's decimal figures.
//!
//! The exchange counts contracts (each `multiplier` 1e-8 units of the underlying, traded in
//! multiples of `lot_size`), prices in ticks of `tick_size` micro-USDC, and money in
//! micro-USDC. Deribit (and ccxt) speak decimal base-currency amounts (`0.002` BTC) and decimal
//! USDC prices. Inbound, a decimal is parsed exactly (no floats) and refused unless it lies on
//! the instrument's step (amount: `lot_size x multiplier`; price: `tick_size`). Outbound, an
//! integer becomes a JSON number through `f64`: exact for every figure with at most 15
//! significant digits (prices below 10^9 USDC with 6 decimals), which is what ccxt parses.

use bulwark_types::{InstrumentSpec, Money, Price, Qty, UnitPrice};

/// Underlying units have 8 decimals (`UNDERLYING_SCALE`).
pub const AMOUNT_DECIMALS: u32 = 8;
/// USDC has 6 decimals.
pub const USDC_DECIMALS: u32 = 6;

/// Why a decimal was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("not a decimal number")]
    Malformed,
    #[error("more decimal places than the unit has")]
    TooPrecise,
    #[error("out of range")]
    OutOfRange,
    #[error("not a multiple of the step")]
    OffStep,
    #[error("must be positive")]
    NotPositive,
}

/// Parses a plain decimal (`"123"`, `"0.002"`, `"-1.5"`, `"1."`; no exponent, at most 40
/// characters) into an integer of `decimals` decimal places, exactly.
pub fn parse_decimal(text: &str, decimals: u32) -> Result<i128, DecimalError> {
    if text.is_empty() || text.len() > 40 {
        return Err(DecimalError::Malformed);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(DecimalError::Malformed);
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > decimals as usize {
        return Err(DecimalError::TooPrecise);
    }
    let mut value: i128 = 0;
    for b in whole.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(b - b'0')))
            .ok_or(DecimalError::OutOfRange)?;
    }
    for i in 0..decimals as usize {
        let digit = fraction.as_bytes().get(i).map_or(0, |b| b - b'0');
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(digit)))
            .ok_or(DecimalError::OutOfRange)?;
    }
    Ok(if negative { -value } else { value })
}

/// A Deribit amount (base currency) as contracts of `spec`, refused unless positive and a
/// multiple of the lot.
pub fn amount_to_qty(text: &str, spec: &InstrumentSpec) -> Result<Qty, DecimalError> {
    let e8 = parse_decimal(text, AMOUNT_DECIMALS)?;
    if e8 <= 0 {
        return Err(DecimalError::NotPositive);
    }
    let per_contract = i128::from(spec.multiplier.e8());
    let step = per_contract * i128::from(spec.lot_size.contracts().max(1));
    if step <= 0 || e8 % step != 0 {
        return Err(DecimalError::OffStep);
    }
    let contracts = i64::try_from(e8 / per_contract).map_err(|_| DecimalError::OutOfRange)?;
    // Larger than any order may be: refused here, as the exchange would refuse it.
    if contracts > bulwark_types::order::QTY_MAX {
        return Err(DecimalError::OutOfRange);
    }
    Ok(Qty::from_contracts(contracts))
}

/// A Deribit price (USDC per unit) as ticks of `spec`, refused unless positive and on tick.
pub fn price_to_ticks(
    text: &str,
    spec: &InstrumentSpec,
) -> Result<(UnitPrice, Price), DecimalError> {
    let micros = parse_decimal(text, USDC_DECIMALS)?;
    if micros <= 0 {
        return Err(DecimalError::NotPositive);
    }
    let micros = i64::try_from(micros).map_err(|_| DecimalError::OutOfRange)?;
    let unit = UnitPrice::from_micros(micros);
    let ticks = unit.to_ticks(spec.tick_size).ok_or(DecimalError::OffStep)?;
    Ok((unit, ticks))
}

/// Contracts of `spec` as a Deribit amount in base currency.
pub fn qty_amount(qty: Qty, spec: &InstrumentSpec) -> f64 {
    let e8 = i128::from(qty.contracts()) * i128::from(spec.multiplier.e8());
    e8 as f64 / 1e8
}

/// Signed contracts (a position) as a Deribit amount.
pub fn contracts_amount(contracts: i64, spec: &InstrumentSpec) -> f64 {
    qty_amount(Qty::from_contracts(contracts), spec)
}

/// Ticks of `spec` as a USDC price.
pub fn ticks_price(price: Price, spec: &InstrumentSpec) -> f64 {
    let micros = i128::from(price.ticks()) * i128::from(spec.tick_size.micros());
    micros as f64 / 1e6
}

/// A unit price as USDC.
pub fn unit_price(price: UnitPrice) -> f64 {
    price.micros() as f64 / 1e6
}

/// Money as USDC.
pub fn money(amount: Money) -> f64 {
    amount.micros() as f64 / 1e6
}

/// The smallest order, as a Deribit amount (`min_trade_amount`, ccxt's amount step).
pub fn min_trade_amount(spec: &InstrumentSpec) -> f64 {
    qty_amount(
        Qty::from_contracts(spec.lot_size.contracts().max(spec.size_min.contracts())),
        spec,
    )
}

/// The amount step (`lot_size` contracts) as a Deribit amount.
pub fn amount_step(spec: &InstrumentSpec) -> f64 {
    qty_amount(spec.lot_size, spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::{InstrumentName, Multiplier};

    fn perp() -> InstrumentSpec {
        InstrumentSpec {
            name: InstrumentName::parse("BTC_USDC-PERPETUAL").unwrap(),
            tick_size: UnitPrice::from_micros(500_000),
            multiplier: Multiplier::from_e8(100_000),
            lot_size: Qty::from_contracts(1),
            size_min: Qty::from_contracts(1),
        }
    }

    #[test]
    fn decimals_parse_exactly_or_not_at_all() {
        assert_eq!(parse_decimal("0.002", 8), Ok(200_000));
        assert_eq!(parse_decimal("60010.5", 6), Ok(60_010_500_000));
        assert_eq!(parse_decimal("1.", 6), Ok(1_000_000));
        assert_eq!(parse_decimal(".5", 6), Ok(500_000));
        assert_eq!(parse_decimal("-1.25", 6), Ok(-1_250_000));
        assert_eq!(parse_decimal("1.1000000", 2), Ok(110));
        assert_eq!(parse_decimal("0.0000001", 6), Err(DecimalError::TooPrecise));
        for bad in ["", ".", "1e3", "1,5", "abc", "1.2.3", "--1", " 1", "0x10"] {
            assert_eq!(parse_decimal(bad, 6), Err(DecimalError::Malformed), "{bad}");
        }
        assert_eq!(
            parse_decimal(&"9".repeat(39), 6),
            Err(DecimalError::OutOfRange)
        );
    }

    #[test]
    fn amounts_and_prices_round_trip_on_their_steps() {
        let spec = perp();
        assert_eq!(amount_to_qty("0.002", &spec), Ok(Qty::from_contracts(2)));
        assert_eq!(amount_to_qty("1", &spec), Ok(Qty::from_contracts(1_000)));
        assert_eq!(amount_to_qty("0.0015", &spec), Err(DecimalError::OffStep));
        assert_eq!(amount_to_qty("0", &spec), Err(DecimalError::NotPositive));
        // More contracts than any order may have (the exchange's QTY_MAX): refused here.
        assert_eq!(
            amount_to_qty("9223372036854775.807", &spec),
            Err(DecimalError::OutOfRange)
        );
        let largest = format!("{}", bulwark_types::order::QTY_MAX / 1_000);
        assert!(amount_to_qty(&largest, &spec).is_ok());
        assert_eq!(
            amount_to_qty(&format!("{largest}.001"), &spec),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(
            amount_to_qty("-0.001", &spec),
            Err(DecimalError::NotPositive)
        );
        assert_eq!(qty_amount(Qty::from_contracts(2), &spec), 0.002);
        assert_eq!(min_trade_amount(&spec), 0.001);
        let (unit, ticks) = price_to_ticks("60010.5", &spec).unwrap();
        assert_eq!(unit.micros(), 60_010_500_000);
        assert_eq!(ticks, Price::from_ticks(120_021));
        assert_eq!(ticks_price(ticks, &spec), 60010.5);
        assert_eq!(
            price_to_ticks("60010.25", &spec),
            Err(DecimalError::OffStep)
        );
        assert_eq!(price_to_ticks("0", &spec), Err(DecimalError::NotPositive));
        assert_eq!(money(Money::from_micros(-1_500_000)), -1.5);
    }
}
