//! Instrument specifications: what an admin lists, and the contract terms the exchange trades.
//!
//! Owns: tick size, contract multiplier, lot size and minimum size of each instrument, and the
//! checks that make those terms usable (a tick must be worth a whole number of micro-USDC).
//! Never: holds mutable state (life cycle, marks and books live in `bulwark-exchange`).

use crate::asset::AssetCode;
use crate::name::{InstrumentName, NameKind, Right};
use crate::num::{Money, Multiplier, Qty, UNDERLYING_SCALE, UnitPrice};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};

/// Largest tick size accepted, in micro-USDC per underlying unit (1,000,000 USDC).
pub const TICK_SIZE_MAX: i64 = 1_000_000_000_000;
/// Largest contract multiplier accepted: 10,000 underlying units per contract.
pub const MULTIPLIER_E8_MAX: i64 = 10_000 * UNDERLYING_SCALE;
/// Largest lot size or minimum size accepted, in contracts.
pub const LOT_SIZE_MAX: i64 = 1_000_000;

/// Why an instrument specification cannot be listed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[repr(u8)]
pub enum SpecError {
    #[error("tick size must be positive and at most {TICK_SIZE_MAX} micro-USDC")]
    TickSize = 1,
    #[error("contract multiplier must be positive and at most {MULTIPLIER_E8_MAX} (1e-8 units)")]
    Multiplier = 2,
    #[error("lot size must be between 1 and {LOT_SIZE_MAX} contracts")]
    LotSize = 3,
    #[error("minimum size must be a positive multiple of the lot size, at most {LOT_SIZE_MAX}")]
    SizeMin = 4,
    #[error("one tick on one contract must be worth a whole, positive number of micro-USDC")]
    TickValue = 5,
    #[error("option strike must lie on the tick grid")]
    StrikeOffTick = 6,
}

/// What an instrument is, with the terms its name implies.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InstrumentKind {
    /// A perpetual swap on the index of its underlying, with periodic funding.
    Perpetual,
    /// A European option, cash-settled in USDC at expiry against the settlement price.
    Option {
        /// Expiry instant, milliseconds since the Unix epoch (08:00 UTC on the expiry date).
        expiry_ms: u64,
        strike: UnitPrice,
        right: Right,
    },
}

/// The contract terms of one instrument, as listed by the admin.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InstrumentSpec {
    pub name: InstrumentName,
    /// Smallest price increment, in micro-USDC per underlying unit. One [`crate::Price`] tick.
    pub tick_size: UnitPrice,
    /// Underlying per contract (the contract multiplier), in 1e-8 underlying units.
    pub multiplier: Multiplier,
    /// Order sizes must be multiples of this many contracts.
    pub lot_size: Qty,
    /// Smallest order size, in contracts; a multiple of `lot_size`.
    pub size_min: Qty,
}

impl InstrumentSpec {
    /// Deribit's linear USDC terms for an instrument of any name: perpetuals tick 0.5 USDC
    /// with 0.001 underlying per contract, options tick 5 USDC with 0.01 per contract; one
    /// contract lots. The devnet lists these, and the lab's simulations trade them.
    pub fn linear(name: InstrumentName) -> Self {
        let (tick_size, multiplier) = match name.kind() {
            NameKind::Perpetual => (
                UnitPrice::from_micros(500_000),
                Multiplier::from_e8(100_000),
            ),
            NameKind::Option { .. } => (UnitPrice::from_usdc(5), Multiplier::from_e8(1_000_000)),
        };
        Self {
            name,
            tick_size,
            multiplier,
            lot_size: Qty::from_contracts(1),
            size_min: Qty::from_contracts(1),
        }
    }

    /// Checks the terms; the exchange lists only specs that pass.
    pub fn check(&self) -> Result<(), SpecError> {
        if !(1..=TICK_SIZE_MAX).contains(&self.tick_size.micros()) {
            return Err(SpecError::TickSize);
        }
        if !(1..=MULTIPLIER_E8_MAX).contains(&self.multiplier.e8()) {
            return Err(SpecError::Multiplier);
        }
        let lot = self.lot_size.contracts();
        if !(1..=LOT_SIZE_MAX).contains(&lot) {
            return Err(SpecError::LotSize);
        }
        let min = self.size_min.contracts();
        if !(1..=LOT_SIZE_MAX).contains(&min) || min % lot != 0 {
            return Err(SpecError::SizeMin);
        }
        let tick_e8 = i128::from(self.tick_size.micros()) * i128::from(self.multiplier.e8());
        if tick_e8 % i128::from(UNDERLYING_SCALE) != 0 || tick_e8 == 0 {
            return Err(SpecError::TickValue);
        }
        if let InstrumentKind::Option { strike, .. } = self.kind() {
            if strike.micros() % self.tick_size.micros() != 0 {
                return Err(SpecError::StrikeOffTick);
            }
        }
        Ok(())
    }

    pub fn underlying(&self) -> AssetCode {
        self.name.base()
    }

    pub fn kind(&self) -> InstrumentKind {
        match self.name.kind() {
            NameKind::Perpetual => InstrumentKind::Perpetual,
            NameKind::Option {
                expiry,
                strike,
                right,
            } => InstrumentKind::Option {
                expiry_ms: expiry.expiry_millis(),
                strike,
                right,
            },
        }
    }

    /// Micro-USDC that one tick is worth on one contract. Exact for a checked spec.
    pub fn tick_value(&self) -> Money {
        let tick_e8 = i128::from(self.tick_size.micros()) * i128::from(self.multiplier.e8());
        Money::from_micros(tick_e8 / i128::from(UNDERLYING_SCALE))
    }
}

impl Write for InstrumentSpec {
    fn write(&self, buf: &mut impl BufMut) {
        self.name.write(buf);
        self.tick_size.write(buf);
        self.multiplier.write(buf);
        self.lot_size.write(buf);
        self.size_min.write(buf);
    }
}

impl EncodeSize for InstrumentSpec {
    fn encode_size(&self) -> usize {
        self.name.encode_size() + 4 * 8
    }
}

impl Read for InstrumentSpec {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            name: InstrumentName::read(buf)?,
            tick_size: UnitPrice::read(buf)?,
            multiplier: Multiplier::read(buf)?,
            lot_size: Qty::read(buf)?,
            size_min: Qty::read(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, tick_micros: i64, multiplier_e8: i64) -> InstrumentSpec {
        InstrumentSpec {
            name: InstrumentName::parse(name).unwrap(),
            tick_size: UnitPrice::from_micros(tick_micros),
            multiplier: Multiplier::from_e8(multiplier_e8),
            lot_size: Qty::from_contracts(1),
            size_min: Qty::from_contracts(1),
        }
    }

    #[test]
    fn tick_value_of_deribit_like_terms() {
        // Perpetual: 0.5 USDC tick on 0.001 BTC = 0.0005 USDC = 500 micro-USDC.
        let perp = spec("BTC_USDC-PERPETUAL", 500_000, 100_000);
        assert_eq!(perp.check(), Ok(()));
        assert_eq!(perp.tick_value(), Money::from_micros(500));
        // Option: 5 USDC tick on 0.01 BTC = 0.05 USDC.
        let option = spec("BTC_USDC-27DEC26-100000-C", 5_000_000, 1_000_000);
        assert_eq!(option.check(), Ok(()));
        assert_eq!(option.tick_value(), Money::from_micros(50_000));
    }

    #[test]
    fn fractional_tick_value_is_refused() {
        // 1 micro-USDC tick on 0.001 BTC is worth 0.001 micro-USDC.
        assert_eq!(
            spec("BTC_USDC-PERPETUAL", 1, 100_000).check(),
            Err(SpecError::TickValue)
        );
    }

    #[test]
    fn bad_terms_are_refused_with_their_reason() {
        assert_eq!(
            spec("BTC_USDC-PERPETUAL", 0, 100_000).check(),
            Err(SpecError::TickSize)
        );
        assert_eq!(
            spec("BTC_USDC-PERPETUAL", 500_000, 0).check(),
            Err(SpecError::Multiplier)
        );
        let mut s = spec("BTC_USDC-PERPETUAL", 500_000, 100_000);
        s.lot_size = Qty::from_contracts(10);
        s.size_min = Qty::from_contracts(15);
        assert_eq!(s.check(), Err(SpecError::SizeMin));
        s.lot_size = Qty::ZERO;
        assert_eq!(s.check(), Err(SpecError::LotSize));
        assert_eq!(
            spec("BTC_USDC-27DEC26-100001-C", 5_000_000, 1_000_000).check(),
            Err(SpecError::StrikeOffTick)
        );
    }
}
