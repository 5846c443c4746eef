//! Where a validator's observations come from.
//!
//! Owns: the [`PriceSource`] trait, the [`SourceQuote`] a source returns, and
//! [`observe_sources`], which combines several sources into one [`Observation`].
//! Implementations: [`csv::CsvReplay`] (a recorded file of timestamped prices),
//! [`synthetic::SyntheticSource`] (a seeded market with jumps and scripted crashes) and
//! [`deribit::DeribitIndexFeed`] (Deribit's websocket index channel, frame by frame).
//! Never: I/O, clocks or entropy. The caller hands over the text and the time; a source's
//! answer depends only on what it was built from and on `now_ms`, never on how often or in
//! which order it was asked, so every validator and every run of the lab see the same market.
//! Bounds: [`SOURCES_MAX`] sources per observation.

pub mod csv;
pub mod deribit;
pub mod synthetic;

use crate::median::median_sorted;
use crate::observation::Observation;
use bulwark_types::{AssetCode, PublicKey, UnitPrice};

/// Most sources one observation combines (its `sources` field is a `u8`).
pub const SOURCES_MAX: usize = u8::MAX as usize;

/// A price as one source saw it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SourceQuote {
    /// Micro-USDC per unit of the underlying; positive.
    pub price: UnitPrice,
    /// When the source's price was made, in milliseconds since the Unix epoch; at most the
    /// `now_ms` it was asked at.
    pub observed_at_ms: u64,
}

/// Somewhere a validator reads prices from.
pub trait PriceSource {
    /// The latest price of `asset` at or before `now_ms`, or `None` when the source has none
    /// (unknown asset, before its first price, after its end, or older than its age bound).
    /// Takes `&mut self` so that a source may cache work; the answer must not depend on it.
    fn observe(&mut self, asset: AssetCode, now_ms: u64) -> Option<SourceQuote>;
}

/// One validator's observation of `asset` at `now_ms` from all its sources: the median of the
/// sources that have a price (rounded down for an even count), stamped with the oldest of
/// their times (the observation is as fresh as its stalest input). `None` when no source has
/// a price. Panics on more than [`SOURCES_MAX`] sources (a configuration bug).
pub fn observe_sources(
    validator: &PublicKey,
    asset: AssetCode,
    now_ms: u64,
    sources: &mut [&mut dyn PriceSource],
) -> Option<Observation> {
    assert!(
        sources.len() <= SOURCES_MAX,
        "at most {SOURCES_MAX} sources"
    );
    let quotes: Vec<SourceQuote> = sources
        .iter_mut()
        .filter_map(|s| s.observe(asset, now_ms))
        .filter(|q| q.price.is_positive() && q.observed_at_ms <= now_ms)
        .collect();
    let oldest_ms = quotes.iter().map(|q| q.observed_at_ms).min()?;
    let mut prices: Vec<i64> = quotes.iter().map(|q| q.price.micros()).collect();
    prices.sort_unstable();
    Some(Observation {
        validator: validator.clone(),
        asset,
        price: UnitPrice::from_micros(median_sorted(&prices)),
        observed_at_ms: oldest_ms,
        sources: u8::try_from(quotes.len()).expect("bounded by SOURCES_MAX"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::PrivateKey;
    use commonware_cryptography::Signer;

    struct Fixed(Option<SourceQuote>);

    impl PriceSource for Fixed {
        fn observe(&mut self, _: AssetCode, _: u64) -> Option<SourceQuote> {
            self.0
        }
    }

    fn quote(price: i64, at: u64) -> Fixed {
        Fixed(Some(SourceQuote {
            price: UnitPrice::from_micros(price),
            observed_at_ms: at,
        }))
    }

    #[test]
    fn sources_combine_by_median_and_oldest_time() {
        let key = PrivateKey::from_seed(1).public_key();
        let btc = AssetCode::parse("BTC").unwrap();
        let (mut a, mut b, mut c, mut none) =
            (quote(100, 50), quote(300, 40), quote(110, 60), Fixed(None));
        let mut future = quote(1, 1_000);
        let o = observe_sources(
            &key,
            btc,
            100,
            &mut [&mut a, &mut b, &mut none, &mut c, &mut future],
        )
        .unwrap();
        assert_eq!(
            (o.price.micros(), o.observed_at_ms, o.sources),
            (110, 40, 3)
        );
        assert_eq!(observe_sources(&key, btc, 100, &mut [&mut none]), None);
    }
}
