//! Fixed-point numbers of the exchange: prices in ticks, quantities in contracts, money in
//! micro-USDC, and per-unit prices of the underlying.
//!
//! Owns: the integer representation and checked arithmetic of every amount in replicated state.
//! Never: floats, wrapping arithmetic, `From<integer>` conversions (constructors are explicit so
//! that a unit is always chosen on purpose).
//! Bounds: every product that can overflow `i64` is computed in `i128`; an overflow is a typed
//! [`ArithError`], never a wrap.

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, ReadExt, Write};

/// An arithmetic operation left the range of its type. Carries the operation's name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArithError {
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    #[error("division by zero in {0}")]
    DivisionByZero(&'static str),
}

/// Micro-units of the settlement currency (USDC) in one whole unit: 1 USDC = 1_000_000.
pub const MICROS_PER_USDC: i64 = 1_000_000;

/// Fixed-point scale of underlying quantities: a contract multiplier of 1 BTC is `100_000_000`.
pub const UNDERLYING_SCALE: i64 = 100_000_000;

macro_rules! fixed_codec {
    ($name:ident, $inner:ty) => {
        impl Write for $name {
            fn write(&self, buf: &mut impl BufMut) {
                self.0.write(buf);
            }
        }
        impl FixedSize for $name {
            const SIZE: usize = <$inner>::SIZE;
        }
        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                Ok(Self(<$inner>::read(buf)?))
            }
        }
    };
}

/// An order book price in ticks of its instrument's tick size. Never a float.
///
/// The book compares prices only within one instrument, so a tick needs no global meaning;
/// [`UnitPrice`] is the currency amount a price stands for.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(i64);

impl Price {
    pub const ZERO: Self = Self(0);

    pub const fn from_ticks(ticks: i64) -> Self {
        Self(ticks)
    }

    pub const fn ticks(self) -> i64 {
        self.0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}t", self.0)
    }
}

fixed_codec!(Price, i64);

/// A number of contracts. Order sizes are positive; a position's size is signed (short < 0).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Qty(i64);

impl Qty {
    pub const ZERO: Self = Self(0);

    pub const fn from_contracts(contracts: i64) -> Self {
        Self(contracts)
    }

    pub const fn contracts(self) -> i64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn abs(self) -> Self {
        Self(
            self.0
                .checked_abs()
                .expect("quantities are bounded far below i64::MAX"),
        )
    }

    pub fn checked_add(self, other: Self) -> Result<Self, ArithError> {
        self.0
            .checked_add(other.0)
            .map(Self)
            .ok_or(ArithError::Overflow("qty add"))
    }

    pub fn checked_sub(self, other: Self) -> Result<Self, ArithError> {
        self.0
            .checked_sub(other.0)
            .map(Self)
            .ok_or(ArithError::Overflow("qty sub"))
    }

    pub fn checked_neg(self) -> Result<Self, ArithError> {
        self.0
            .checked_neg()
            .map(Self)
            .ok_or(ArithError::Overflow("qty neg"))
    }

    pub fn min(self, other: Self) -> Self {
        Self(self.0.min(other.0))
    }
}

impl std::fmt::Display for Qty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

fixed_codec!(Qty, i64);

/// An amount of the settlement currency in micro-USDC (1 USDC = 1_000_000). Signed: a cash
/// balance may be negative while positions carry its value.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i128);

impl Money {
    pub const ZERO: Self = Self(0);

    pub const fn from_micros(micros: i128) -> Self {
        Self(micros)
    }

    /// Whole USDC, for configuration and tests.
    pub const fn from_usdc(usdc: i64) -> Self {
        Self(usdc as i128 * MICROS_PER_USDC as i128)
    }

    pub const fn micros(self) -> i128 {
        self.0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn checked_add(self, other: Self) -> Result<Self, ArithError> {
        self.0
            .checked_add(other.0)
            .map(Self)
            .ok_or(ArithError::Overflow("money add"))
    }

    pub fn checked_sub(self, other: Self) -> Result<Self, ArithError> {
        self.0
            .checked_sub(other.0)
            .map(Self)
            .ok_or(ArithError::Overflow("money sub"))
    }

    pub fn checked_mul(self, factor: i128) -> Result<Self, ArithError> {
        self.0
            .checked_mul(factor)
            .map(Self)
            .ok_or(ArithError::Overflow("money mul"))
    }

    pub fn max(self, other: Self) -> Self {
        Self(self.0.max(other.0))
    }

    pub fn min(self, other: Self) -> Self {
        Self(self.0.min(other.0))
    }
}

impl std::fmt::Display for Money {
    /// Formats as USDC with six decimals: `-12.500000`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scale = i128::from(MICROS_PER_USDC);
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let scale_abs = scale.unsigned_abs();
        write!(f, "{sign}{}.{:06}", abs / scale_abs, abs % scale_abs)
    }
}

fixed_codec!(Money, i128);

/// A currency price for one whole unit of the underlying (one BTC), in micro-USDC.
///
/// Index prices, mark prices, strikes, settlement prices and tick sizes are `UnitPrice`s.
/// `i64` holds up to 9.2e12 USDC per unit.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitPrice(i64);

impl UnitPrice {
    pub const ZERO: Self = Self(0);

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Whole USDC per unit, for configuration and tests.
    pub const fn from_usdc(usdc: i64) -> Self {
        Self(usdc * MICROS_PER_USDC)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// The book price of this unit price on a grid of `tick_size`, if it lies on the grid.
    pub fn to_ticks(self, tick_size: UnitPrice) -> Option<Price> {
        if tick_size.0 <= 0 || self.0 % tick_size.0 != 0 {
            return None;
        }
        Some(Price(self.0 / tick_size.0))
    }

    /// The unit price of `price` ticks of `tick_size`.
    pub fn from_ticks(price: Price, tick_size: UnitPrice) -> Result<Self, ArithError> {
        price
            .0
            .checked_mul(tick_size.0)
            .map(Self)
            .ok_or(ArithError::Overflow("ticks to unit price"))
    }
}

impl std::fmt::Display for UnitPrice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Money::from_micros(i128::from(self.0)).fmt(f)
    }
}

fixed_codec!(UnitPrice, i64);

/// Underlying per contract, in 1e-8 units of the underlying (`UNDERLYING_SCALE`): Deribit's
/// linear BTC options have a multiplier of 0.01 BTC = `1_000_000`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Multiplier(i64);

impl Multiplier {
    pub const fn from_e8(e8: i64) -> Self {
        Self(e8)
    }

    pub const fn e8(self) -> i64 {
        self.0
    }

    /// Money value of `contracts` at `unit_price` per underlying unit, rounded toward negative
    /// infinity (the one rounding rule for values: a short's liability rounds up in magnitude).
    pub fn value(self, contracts: Qty, unit_price: UnitPrice) -> Money {
        // |contracts| <= 2^63, |unit_price| <= 2^63, multiplier <= 2^40 (checked at listing):
        // the product of the first two fits i128; the third is applied after a division.
        let per_unit = i128::from(contracts.0) * i128::from(unit_price.0);
        Money(mul_div_floor(
            per_unit,
            i128::from(self.0),
            i128::from(UNDERLYING_SCALE),
        ))
    }

    /// Money value like [`Self::value`], rounded toward positive infinity (for requirements).
    pub fn value_ceil(self, contracts: Qty, unit_price: UnitPrice) -> Money {
        let per_unit = i128::from(contracts.0) * i128::from(unit_price.0);
        Money(mul_div_ceil(
            per_unit,
            i128::from(self.0),
            i128::from(UNDERLYING_SCALE),
        ))
    }
}

fixed_codec!(Multiplier, i64);

/// `a * b / d` rounded toward negative infinity, without overflowing when `a * b` would.
///
/// Precondition: `d > 0` and `|b| <= d * 2^24` (multipliers and basis points are small), so the
/// split `a = q * d + r` keeps both partial products in range for amounts below 2^100.
pub fn mul_div_floor(a: i128, b: i128, d: i128) -> i128 {
    assert!(d > 0, "divisor must be positive");
    // Fast path: margin and fee arithmetic on ordinary sizes fits in 64 bits, where one
    // hardware division costs a few nanoseconds instead of a 128-bit software division.
    if let (Ok(a), Ok(b), Ok(d)) = (i64::try_from(a), i64::try_from(b), i64::try_from(d)) {
        if let Some(product) = a.checked_mul(b) {
            return i128::from(product.div_euclid(d));
        }
    }
    let q = a.div_euclid(d);
    let r = a.rem_euclid(d);
    q * b + (r * b).div_euclid(d)
}

/// `a * b / d` rounded toward positive infinity; same preconditions as [`mul_div_floor`].
pub fn mul_div_ceil(a: i128, b: i128, d: i128) -> i128 {
    -mul_div_floor(-a, b, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    #[test]
    fn money_formats_as_usdc_with_six_decimals() {
        assert_eq!(Money::from_micros(-12_500_000).to_string(), "-12.500000");
        assert_eq!(Money::from_micros(7).to_string(), "0.000007");
        assert_eq!(Money::from_usdc(3).to_string(), "3.000000");
    }

    #[test]
    fn unit_price_to_ticks_requires_grid() {
        let tick = UnitPrice::from_micros(500_000);
        assert_eq!(
            UnitPrice::from_usdc(100).to_ticks(tick),
            Some(Price::from_ticks(200))
        );
        assert_eq!(UnitPrice::from_micros(100_250_000).to_ticks(tick), None);
        assert_eq!(UnitPrice::from_usdc(1).to_ticks(UnitPrice::ZERO), None);
    }

    #[test]
    fn multiplier_value_rounds_floor_and_ceil() {
        // 0.01 BTC at 3 micro-USDC: 0.03 micro, floors to 0 and ceils to 1.
        let m = Multiplier::from_e8(1_000_000);
        assert_eq!(
            m.value(Qty::from_contracts(1), UnitPrice::from_micros(3)),
            Money::ZERO
        );
        assert_eq!(
            m.value_ceil(Qty::from_contracts(1), UnitPrice::from_micros(3)),
            Money::from_micros(1)
        );
        assert_eq!(
            m.value(Qty::from_contracts(-1), UnitPrice::from_micros(3)),
            Money::from_micros(-1)
        );
        // 2 contracts of 0.01 BTC at 100,000 USDC = 2,000 USDC.
        assert_eq!(
            m.value(Qty::from_contracts(2), UnitPrice::from_usdc(100_000)),
            Money::from_usdc(2_000)
        );
    }

    #[test]
    fn mul_div_matches_wide_arithmetic() {
        for (a, b, d) in [
            (7i128, 3i128, 2i128),
            (-7, 3, 2),
            (i64::MAX as i128 * 1000, 9_999, 10_000),
            (-5, 1, 3),
        ] {
            let exact = a * b;
            assert_eq!(mul_div_floor(a, b, d), exact.div_euclid(d));
            assert_eq!(mul_div_ceil(a, b, d), -((-exact).div_euclid(d)));
        }
    }

    #[test]
    fn checked_ops_report_overflow() {
        assert_eq!(
            Qty::from_contracts(i64::MAX).checked_add(Qty::from_contracts(1)),
            Err(ArithError::Overflow("qty add"))
        );
        assert!(
            Money::from_micros(i128::MAX)
                .checked_add(Money::from_micros(1))
                .is_err()
        );
    }

    #[test]
    fn numbers_round_trip_through_codec() {
        let m = Money::from_micros(-123_456_789_012_345_678_901);
        assert_eq!(Money::decode(m.encode()).unwrap(), m);
        let p = Price::from_ticks(-5);
        assert_eq!(Price::decode(p.encode()).unwrap(), p);
    }
}
