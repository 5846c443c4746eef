//! Instrument names in Deribit's grammar for linear, USDC-settled instruments.
//!
//! ```text
//! name      = base "_USDC-" ( "PERPETUAL" | expiry "-" strike "-" right )
//! base      = 1*10( A-Z / 0-9 )              ; at least one letter
//! expiry    = day month year                 ; 5JAN27, 27DEC26: day without a leading zero
//! month     = "JAN" / "FEB" / ... / "DEC"
//! year      = 2DIGIT                         ; 20YY
//! strike    = int [ "d" frac ]               ; 100000, 0d625 ("d" is the decimal point)
//! int       = "0" / (1-9 *DIGIT)             ; no leading zeros
//! frac      = 1*6DIGIT                       ; no trailing zero, at most micro-USDC precision
//! right     = "C" / "P"
//! ```
//!
//! Owns: parsing and canonical formatting. `format(parse(s)) == s` for every accepted `s`, so
//! one instrument has exactly one name; anything else is rejected with a [`NameError`] naming
//! the part at fault. Options expire at 08:00 UTC on their expiry date, as Deribit's do.
//! Never: accepts inverse (`BTC-PERPETUAL`) or non-USDC (`BTC_USDT-...`) names, or futures.

use crate::asset::{AssetCode, AssetCodeError};
use crate::num::{MICROS_PER_USDC, UnitPrice};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};

/// The only settlement currency: names carry it as `_USDC`.
pub const SETTLEMENT_CURRENCY: &str = "USDC";

/// Longest instrument name accepted, in bytes.
pub const NAME_LEN_MAX: usize = 48;

/// Options expire at this hour of their expiry date, UTC (Deribit's convention).
pub const EXPIRY_HOUR_UTC: u64 = 8;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Why a string is not an instrument name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is longer than {NAME_LEN_MAX} bytes")]
    TooLong,
    #[error("name holds a character outside ASCII")]
    NotAscii,
    #[error("name lacks the `_USDC` settlement part (inverse instruments are not listed)")]
    NotLinear,
    #[error("settlement currency must be USDC")]
    SettlementUnsupported,
    #[error("base asset: {0}")]
    Base(AssetCodeError),
    #[error("futures with an expiry are not listed; use the perpetual or an option")]
    FutureUnsupported,
    #[error("expected `PERPETUAL` or `expiry-strike-right`")]
    Shape,
    #[error("expiry date must read like 27DEC26 (day without leading zero, month, two-digit year)")]
    ExpiryFormat,
    #[error("expiry date does not exist in the calendar")]
    ExpiryNotADate,
    #[error(
        "strike must be a positive number like 100000 or 0d625, without leading or trailing zeros"
    )]
    StrikeFormat,
    #[error("strike has more than 6 decimals")]
    StrikePrecision,
    #[error("strike is too large")]
    StrikeTooLarge,
    #[error("option right must be C or P")]
    Right,
}

/// Call or put.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Right {
    Call,
    Put,
}

impl Right {
    pub const fn letter(self) -> char {
        match self {
            Right::Call => 'C',
            Right::Put => 'P',
        }
    }
}

/// A calendar date on which options expire.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpiryDate {
    year: u16,
    month: u8,
    day: u8,
}

impl ExpiryDate {
    /// A date, if it exists in the (proleptic Gregorian) calendar between 2000 and 2099.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        if !(2000..=2099).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        (day <= days_in_month(year, month)).then_some(Self { year, month, day })
    }

    pub const fn year(self) -> u16 {
        self.year
    }

    pub const fn month(self) -> u8 {
        self.month
    }

    pub const fn day(self) -> u8 {
        self.day
    }

    /// Milliseconds since the Unix epoch of 08:00 UTC on this date: the moment of expiry.
    /// Parses Deribit's expiry part, as in `27DEC26` (day without a leading zero).
    pub fn parse(text: &str) -> Result<Self, NameError> {
        parse_expiry(text)
    }

    pub fn expiry_millis(self) -> u64 {
        let days = days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        );
        let days = u64::try_from(days).expect("years from 2000 lie after the epoch");
        (days * 24 + EXPIRY_HOUR_UTC) * 3_600_000
    }
}

impl std::fmt::Display for ExpiryDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let month = MONTHS[usize::from(self.month - 1)];
        write!(f, "{}{}{:02}", self.day, month, self.year % 100)
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What kind of instrument a name denotes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameKind {
    Perpetual,
    Option {
        expiry: ExpiryDate,
        strike: UnitPrice,
        right: Right,
    },
}

/// A parsed, canonical instrument name such as `BTC_USDC-27DEC26-100000-C`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstrumentName {
    base: AssetCode,
    kind: NameKind,
}

impl InstrumentName {
    pub const fn perpetual(base: AssetCode) -> Self {
        Self {
            base,
            kind: NameKind::Perpetual,
        }
    }

    pub fn option(
        base: AssetCode,
        expiry: ExpiryDate,
        strike: UnitPrice,
        right: Right,
    ) -> Result<Self, NameError> {
        if !strike.is_positive() {
            return Err(NameError::StrikeFormat);
        }
        Ok(Self {
            base,
            kind: NameKind::Option {
                expiry,
                strike,
                right,
            },
        })
    }

    pub const fn base(&self) -> AssetCode {
        self.base
    }

    pub const fn kind(&self) -> NameKind {
        self.kind
    }

    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.len() > NAME_LEN_MAX {
            return Err(NameError::TooLong);
        }
        if !name.is_ascii() {
            return Err(NameError::NotAscii);
        }
        let (pair, rest) = name.split_once('-').ok_or(NameError::Shape)?;
        let (base, quote) = pair.split_once('_').ok_or(NameError::NotLinear)?;
        if quote != SETTLEMENT_CURRENCY {
            return Err(NameError::SettlementUnsupported);
        }
        let base = AssetCode::parse(base).map_err(NameError::Base)?;
        if rest == "PERPETUAL" {
            return Ok(Self::perpetual(base));
        }
        if rest.starts_with("PERPETUAL") {
            return Err(NameError::Shape);
        }
        let mut parts = rest.split('-');
        let (Some(expiry), strike, right, None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(NameError::Shape);
        };
        let expiry = parse_expiry(expiry)?;
        let (Some(strike), Some(right)) = (strike, right) else {
            return Err(if strike.is_none() {
                NameError::FutureUnsupported
            } else {
                NameError::Shape
            });
        };
        let strike = parse_strike(strike)?;
        let right = match right {
            "C" => Right::Call,
            "P" => Right::Put,
            _ => return Err(NameError::Right),
        };
        Self::option(base, expiry, strike, right)
    }
}

fn parse_expiry(text: &str) -> Result<ExpiryDate, NameError> {
    // Work on bytes only: the text is untrusted and may hold multi-byte characters, where a
    // `str` slice at a byte index would panic.
    let bytes = text.as_bytes();
    let day_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=2).contains(&day_len) || bytes[0] == b'0' || bytes.len() != day_len + 5 {
        return Err(NameError::ExpiryFormat);
    }
    let (day_text, rest) = bytes.split_at(day_len);
    let (month_text, year_text) = rest.split_at(3);
    let day = ascii_number(day_text).ok_or(NameError::ExpiryFormat)?;
    let month = MONTHS
        .iter()
        .position(|m| m.as_bytes() == month_text)
        .ok_or(NameError::ExpiryFormat)?;
    let year = ascii_number(year_text).ok_or(NameError::ExpiryFormat)?;
    let (Ok(day), Ok(year)) = (u8::try_from(day), u16::try_from(year)) else {
        return Err(NameError::ExpiryFormat);
    };
    ExpiryDate::new(2000 + year, month as u8 + 1, day).ok_or(NameError::ExpiryNotADate)
}

/// The value of one or two ASCII digits; `None` for anything else.
fn ascii_number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0')),
    )
}

fn parse_strike(text: &str) -> Result<UnitPrice, NameError> {
    let (int, frac) = match text.split_once('d') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || (int.len() > 1 && int.starts_with('0')) {
        return Err(NameError::StrikeFormat);
    }
    if int.len() > 12 {
        return Err(NameError::StrikeTooLarge);
    }
    let whole: i64 = int.parse().map_err(|_| NameError::StrikeFormat)?;
    let mut micros = whole * MICROS_PER_USDC;
    if let Some(frac) = frac {
        if !digits(frac) || frac.ends_with('0') {
            return Err(NameError::StrikeFormat);
        }
        if frac.len() > 6 {
            return Err(NameError::StrikePrecision);
        }
        let scale = 10i64.pow(6 - frac.len() as u32);
        micros += frac.parse::<i64>().map_err(|_| NameError::StrikeFormat)? * scale;
    }
    if micros <= 0 {
        return Err(NameError::StrikeFormat);
    }
    Ok(UnitPrice::from_micros(micros))
}

fn format_strike(strike: UnitPrice, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let micros = strike.micros();
    let whole = micros / MICROS_PER_USDC;
    let frac = micros % MICROS_PER_USDC;
    if frac == 0 {
        return write!(f, "{whole}");
    }
    let frac = format!("{frac:06}");
    write!(f, "{whole}d{}", frac.trim_end_matches('0'))
}

impl std::fmt::Display for InstrumentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{SETTLEMENT_CURRENCY}-", self.base)?;
        match self.kind {
            NameKind::Perpetual => f.write_str("PERPETUAL"),
            NameKind::Option {
                expiry,
                strike,
                right,
            } => {
                write!(f, "{expiry}-")?;
                format_strike(strike, f)?;
                write!(f, "-{}", right.letter())
            }
        }
    }
}

impl std::str::FromStr for InstrumentName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Write for InstrumentName {
    fn write(&self, buf: &mut impl BufMut) {
        let text = self.to_string();
        (text.len() as u8).write(buf);
        buf.put_slice(text.as_bytes());
    }
}

impl EncodeSize for InstrumentName {
    fn encode_size(&self) -> usize {
        1 + self.to_string().len()
    }
}

impl Read for InstrumentName {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let len = usize::from(u8::read(buf)?);
        if len > NAME_LEN_MAX {
            return Err(CodecError::InvalidLength(len));
        }
        if buf.remaining() < len {
            return Err(CodecError::EndOfBuffer);
        }
        let mut raw = [0u8; NAME_LEN_MAX];
        buf.copy_to_slice(&mut raw[..len]);
        let text = std::str::from_utf8(&raw[..len])
            .map_err(|_| CodecError::Invalid("InstrumentName", "not UTF-8"))?;
        Self::parse(text)
            .map_err(|_| CodecError::Invalid("InstrumentName", "not a canonical instrument name"))
    }
}
