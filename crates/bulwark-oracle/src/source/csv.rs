//! A replayed file of timestamped prices.
//!
//! Owns: parsing `timestamp_ms,asset,price` lines into per-asset price series, and answering
//! with the latest row at or before the time asked.
//! Never: opens files (the caller passes a `&str` or any `BufRead`), reads a clock, or parses a
//! price through a float: prices are decimal USDC with at most six decimals, parsed exactly.
//! Bounds: lines of at most [`CSV_LINE_BYTES_MAX`] bytes, at most `lines_max` lines, `rows_max`
//! rows and `assets_max` assets ([`CsvLimits`]). The first bad line stops parsing with a typed
//! error naming its 1-based line number.
//!
//! Grammar, one record per line (`\n` or `\r\n`):
//!
//! ```text
//! timestamp_ms,asset,price      optional header, first line only
//! # anything                    comment
//!                               blank line
//! 1700000000000,BTC,65000.25    a row: u64 ms, asset code, decimal USDC per unit
//! ```
//!
//! Each asset's timestamps must strictly increase (assets may interleave).

use super::{PriceSource, SourceQuote};
use bulwark_types::asset::AssetCodeError;
use bulwark_types::num::MICROS_PER_USDC;
use bulwark_types::{AssetCode, UnitPrice};
use std::collections::BTreeMap;
use std::io::BufRead;

/// Longest line accepted, in bytes, without its line ending. A row needs at most 20 + 10 +
/// 26 bytes and two commas; the rest is room for comments.
pub const CSV_LINE_BYTES_MAX: usize = 256;

/// The optional header line.
pub const CSV_HEADER: &str = "timestamp_ms,asset,price";

/// How much a replay file may hold. No `Default`: [`CsvLimits::DEFAULT`] documents its values.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CsvLimits {
    /// Most lines, comments and blanks included.
    pub lines_max: usize,
    /// Most price rows (16 bytes each in memory).
    pub rows_max: usize,
    /// Most distinct assets.
    pub assets_max: usize,
}

impl CsvLimits {
    /// A day of one-second prices for ten assets fits (864_000 rows); 16 MB of rows at most.
    pub const DEFAULT: Self = Self {
        lines_max: 2_000_000,
        rows_max: 1_000_000,
        assets_max: 64,
    };
}

/// Why a price text is not a decimal USDC amount.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceTextError {
    #[error("empty")]
    Empty,
    #[error("not digits with an optional '.' and 1 to 6 decimals")]
    NotDecimal,
    #[error("more than 6 decimals")]
    TooManyDecimals,
    #[error("too large for micro-USDC in i64")]
    TooLarge,
    #[error("zero")]
    Zero,
}

/// Why a replay file was refused. `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("line {line}: longer than {CSV_LINE_BYTES_MAX} bytes")]
    LineTooLong { line: u64 },
    #[error("line {line}: not UTF-8")]
    NotUtf8 { line: u64 },
    #[error("line {line}: expected three fields timestamp_ms,asset,price")]
    FieldCount { line: u64 },
    #[error("line {line}: timestamp is not a u64 of milliseconds")]
    BadTimestamp { line: u64 },
    #[error("line {line}: bad asset code: {reason}")]
    BadAsset { line: u64, reason: AssetCodeError },
    #[error("line {line}: bad price: {reason}")]
    BadPrice { line: u64, reason: PriceTextError },
    #[error("line {line}: timestamp not after the previous row of the same asset")]
    OutOfOrder { line: u64 },
    #[error("line {line}: more lines than the limit")]
    TooManyLines { line: u64 },
    #[error("line {line}: more rows than the limit")]
    TooManyRows { line: u64 },
    #[error("line {line}: more assets than the limit")]
    TooManyAssets { line: u64 },
    #[error("line {line}: read failed: {kind}")]
    Read { line: u64, kind: std::io::ErrorKind },
}

/// Recorded prices per asset, replayed by time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvReplay {
    series: BTreeMap<AssetCode, Vec<(u64, UnitPrice)>>,
    age_ms_max: Option<u64>,
}

impl CsvReplay {
    /// Parses replay text.
    pub fn parse(text: &str, limits: CsvLimits) -> Result<Self, CsvError> {
        Self::read(text.as_bytes(), limits)
    }

    /// Parses replay lines from any reader the caller opened.
    pub fn read(mut reader: impl BufRead, limits: CsvLimits) -> Result<Self, CsvError> {
        let mut series: BTreeMap<AssetCode, Vec<(u64, UnitPrice)>> = BTreeMap::new();
        let mut rows = 0usize;
        let mut line_bytes = Vec::with_capacity(CSV_LINE_BYTES_MAX + 2);
        let mut line = 0u64;
        while read_line(&mut reader, &mut line_bytes, line + 1)? {
            line += 1;
            if line > limits.lines_max as u64 {
                return Err(CsvError::TooManyLines { line });
            }
            let text = std::str::from_utf8(&line_bytes).map_err(|_| CsvError::NotUtf8 { line })?;
            if text.is_empty() || text.starts_with('#') || (line == 1 && text == CSV_HEADER) {
                continue;
            }
            let (at_ms, asset, price) = parse_row(text, line)?;
            rows += 1;
            if rows > limits.rows_max {
                return Err(CsvError::TooManyRows { line });
            }
            if !series.contains_key(&asset) && series.len() >= limits.assets_max {
                return Err(CsvError::TooManyAssets { line });
            }
            let rows_of_asset = series.entry(asset).or_default();
            if rows_of_asset.last().is_some_and(|(last, _)| *last >= at_ms) {
                return Err(CsvError::OutOfOrder { line });
            }
            rows_of_asset.push((at_ms, price));
        }
        Ok(Self {
            series,
            age_ms_max: None,
        })
    }

    /// Answers `None` when the latest row is more than `age_ms_max` older than the time asked:
    /// a gap in the recording reads as a silent source, not a frozen price.
    pub fn with_age_ms_max(mut self, age_ms_max: u64) -> Self {
        self.age_ms_max = Some(age_ms_max);
        self
    }

    /// The assets the file holds, in order.
    pub fn assets(&self) -> impl Iterator<Item = &AssetCode> {
        self.series.keys()
    }

    /// Rows of `asset`, in time order.
    pub fn rows(&self, asset: &AssetCode) -> &[(u64, UnitPrice)] {
        self.series
            .get(asset)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The latest row of `asset` at or before `now_ms` (a binary search: the answer does not
    /// depend on earlier calls).
    pub fn quote_at(&self, asset: &AssetCode, now_ms: u64) -> Option<SourceQuote> {
        let rows = self.series.get(asset)?;
        let after = rows.partition_point(|(at_ms, _)| *at_ms <= now_ms);
        let (at_ms, price) = *rows.get(after.checked_sub(1)?)?;
        debug_assert!(at_ms <= now_ms);
        if self.age_ms_max.is_some_and(|age| now_ms - at_ms > age) {
            return None;
        }
        Some(SourceQuote {
            price,
            observed_at_ms: at_ms,
        })
    }
}

impl PriceSource for CsvReplay {
    fn observe(&mut self, asset: AssetCode, now_ms: u64) -> Option<SourceQuote> {
        self.quote_at(&asset, now_ms)
    }
}

/// Reads one line into `out` without its line ending. Returns false at the end of input.
/// Never buffers more than `CSV_LINE_BYTES_MAX + 2` bytes of a line.
fn read_line(reader: &mut impl BufRead, out: &mut Vec<u8>, line: u64) -> Result<bool, CsvError> {
    out.clear();
    let cap = CSV_LINE_BYTES_MAX as u64 + 2; // content, '\r', '\n'
    let read = std::io::Read::take(&mut *reader, cap)
        .read_until(b'\n', out)
        .map_err(|e| CsvError::Read {
            line,
            kind: e.kind(),
        })?;
    if read == 0 {
        return Ok(false);
    }
    let ended = out.last() == Some(&b'\n');
    if ended {
        out.pop();
        if out.last() == Some(&b'\r') {
            out.pop();
        }
    }
    if out.len() > CSV_LINE_BYTES_MAX || (!ended && read as u64 == cap) {
        return Err(CsvError::LineTooLong { line });
    }
    Ok(true)
}

fn parse_row(text: &str, line: u64) -> Result<(u64, AssetCode, UnitPrice), CsvError> {
    let mut fields = text.split(',');
    let (Some(at), Some(asset), Some(price), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(CsvError::FieldCount { line });
    };
    let at_ms = parse_u64(at).ok_or(CsvError::BadTimestamp { line })?;
    let asset = AssetCode::parse(asset).map_err(|reason| CsvError::BadAsset { line, reason })?;
    let price = parse_price(price).map_err(|reason| CsvError::BadPrice { line, reason })?;
    Ok((at_ms, asset, price))
}

/// Digits only (no sign, no spaces), fitting a `u64`.
fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A positive decimal USDC amount with at most six decimals, as micro-USDC. Exact.
pub fn parse_price(text: &str) -> Result<UnitPrice, PriceTextError> {
    if text.is_empty() {
        return Err(PriceTextError::Empty);
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(PriceTextError::NotDecimal);
    }
    if text.contains('.') && fraction.is_empty() {
        return Err(PriceTextError::NotDecimal);
    }
    if fraction.len() > 6 {
        return Err(PriceTextError::TooManyDecimals);
    }
    // Leading zeros beyond 19 digits would still fit after trimming, but no price has them.
    if whole.len() > 19 {
        return Err(PriceTextError::TooLarge);
    }
    let whole: i64 = whole.parse().map_err(|_| PriceTextError::TooLarge)?;
    let mut micros_fraction: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| PriceTextError::NotDecimal)?
    };
    for _ in fraction.len()..6 {
        micros_fraction *= 10;
    }
    let micros = whole
        .checked_mul(MICROS_PER_USDC)
        .and_then(|m| m.checked_add(micros_fraction))
        .ok_or(PriceTextError::TooLarge)?;
    if micros == 0 {
        return Err(PriceTextError::Zero);
    }
    Ok(UnitPrice::from_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> AssetCode {
        AssetCode::parse("BTC").unwrap()
    }

    const SAMPLE: &str = "timestamp_ms,asset,price\n\
        # recorded 2024-03-05\n\
        1000,BTC,65000\n\
        1000,ETH,3500.5\r\n\
        \n\
        2000,BTC,64990.123456\n\
        3500,BTC,0.000001\n";

    #[test]
    fn replay_steps_to_the_latest_row_at_or_before_now() {
        let mut replay = CsvReplay::parse(SAMPLE, CsvLimits::DEFAULT).unwrap();
        assert_eq!(replay.assets().count(), 2);
        assert_eq!(replay.observe(btc(), 999), None);
        let at = |r: &mut CsvReplay, now| {
            r.observe(btc(), now)
                .map(|q| (q.observed_at_ms, q.price.micros()))
        };
        assert_eq!(at(&mut replay, 1_000), Some((1_000, 65_000_000_000)));
        assert_eq!(at(&mut replay, 1_999), Some((1_000, 65_000_000_000)));
        assert_eq!(at(&mut replay, 2_000), Some((2_000, 64_990_123_456)));
        assert_eq!(at(&mut replay, 9_999), Some((3_500, 1)));
        // Order of calls does not matter.
        assert_eq!(at(&mut replay, 1_500), Some((1_000, 65_000_000_000)));
        let eth = AssetCode::parse("ETH").unwrap();
        assert_eq!(
            replay.observe(eth, 1_000).unwrap().price.micros(),
            3_500_500_000
        );
        assert_eq!(
            replay.observe(AssetCode::parse("SOL").unwrap(), 5_000),
            None
        );
    }

    #[test]
    fn age_bound_turns_a_gap_into_silence() {
        let mut replay = CsvReplay::parse(SAMPLE, CsvLimits::DEFAULT)
            .unwrap()
            .with_age_ms_max(1_000);
        assert!(replay.observe(btc(), 3_000).is_some());
        assert_eq!(replay.observe(btc(), 3_001), None);
    }

    #[test]
    fn bad_lines_name_their_line_and_reason() {
        let cases: &[(&str, CsvError)] = &[
            ("1,BTC\n", CsvError::FieldCount { line: 1 }),
            ("1,BTC,1,2\n", CsvError::FieldCount { line: 1 }),
            ("# c\n-1,BTC,1\n", CsvError::BadTimestamp { line: 2 }),
            ("x,BTC,1\n", CsvError::BadTimestamp { line: 1 }),
            (
                "1,btc,1\n",
                CsvError::BadAsset {
                    line: 1,
                    reason: AssetCodeError::BadCharacter,
                },
            ),
            (
                "1,BTC,1.\n",
                CsvError::BadPrice {
                    line: 1,
                    reason: PriceTextError::NotDecimal,
                },
            ),
            (
                "1,BTC,-1\n",
                CsvError::BadPrice {
                    line: 1,
                    reason: PriceTextError::NotDecimal,
                },
            ),
            (
                "1,BTC,1e3\n",
                CsvError::BadPrice {
                    line: 1,
                    reason: PriceTextError::NotDecimal,
                },
            ),
            (
                "1,BTC, 1\n",
                CsvError::BadPrice {
                    line: 1,
                    reason: PriceTextError::NotDecimal,
                },
            ),
            (
                "1,BTC,0.0\n",
                CsvError::BadPrice {
                    line: 1,
                    reason: PriceTextError::Zero,
                },
            ),
            (
                "1,BTC,\n",
                CsvError::BadPrice {
                    line: 1,
                    reason: PriceTextError::Empty,
                },
            ),
            (
                "1,BTC,1.1234567\n",
                CsvError::BadPrice {
                    line: 1,
                    reason: PriceTextError::TooManyDecimals,
                },
            ),
            (
                "1,BTC,9223372036855\n",
                CsvError::BadPrice {
                    line: 1,
                    reason: PriceTextError::TooLarge,
                },
            ),
            ("5,BTC,1\n5,BTC,2\n", CsvError::OutOfOrder { line: 2 }),
            ("5,BTC,1\n4,BTC,2\n", CsvError::OutOfOrder { line: 2 }),
            (
                "timestamp_ms,asset,price\ntimestamp_ms,asset,price\n",
                CsvError::BadTimestamp { line: 2 },
            ),
        ];
        for (text, error) in cases {
            assert_eq!(
                CsvReplay::read(text.as_bytes(), CsvLimits::DEFAULT),
                Err(error.clone()),
                "{text:?}"
            );
        }
        assert_eq!(
            CsvReplay::read(&b"1,BTC,1\n\xff\n"[..], CsvLimits::DEFAULT),
            Err(CsvError::NotUtf8 { line: 2 })
        );
        // Largest price that fits: i64::MAX micros.
        assert_eq!(
            parse_price("9223372036854.775807").unwrap().micros(),
            i64::MAX
        );
        assert_eq!(
            parse_price("9223372036854.775808"),
            Err(PriceTextError::TooLarge)
        );
    }

    #[test]
    fn lines_longer_than_the_bound_are_refused_without_buffering_them() {
        let mut text = format!("1,BTC,1\n# {}\n", "x".repeat(CSV_LINE_BYTES_MAX - 2));
        assert!(
            CsvReplay::parse(&text, CsvLimits::DEFAULT).is_ok(),
            "exactly at the bound"
        );
        text.push_str(&format!("# {}\n", "x".repeat(CSV_LINE_BYTES_MAX - 1)));
        assert_eq!(
            CsvReplay::parse(&text, CsvLimits::DEFAULT),
            Err(CsvError::LineTooLong { line: 3 })
        );
        let endless = "x".repeat(10 * CSV_LINE_BYTES_MAX);
        assert_eq!(
            CsvReplay::parse(&endless, CsvLimits::DEFAULT),
            Err(CsvError::LineTooLong { line: 1 })
        );
        // A final line without a newline is fine.
        assert_eq!(
            CsvReplay::parse("1,BTC,2", CsvLimits::DEFAULT)
                .unwrap()
                .rows(&btc())
                .len(),
            1
        );
    }

    #[test]
    fn row_line_and_asset_limits_apply() {
        let limits = CsvLimits {
            lines_max: 3,
            rows_max: 2,
            assets_max: 1,
        };
        assert_eq!(
            CsvReplay::parse("1,BTC,1\n2,BTC,1\n3,BTC,1\n", limits),
            Err(CsvError::TooManyRows { line: 3 })
        );
        assert_eq!(
            CsvReplay::parse("1,BTC,1\n1,ETH,1\n", limits),
            Err(CsvError::TooManyAssets { line: 2 })
        );
        assert_eq!(
            CsvReplay::parse("#\n#\n#\n#\n", limits),
            Err(CsvError::TooManyLines { line: 4 })
        );
    }
}
