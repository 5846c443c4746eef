//! Where a validator's observations come from.
//!
//! Owns: the [`PriceSource`] trait, the [`SourceQuote`] a source returns, and
//! [`observe_sources`], which combines several sources into one [`Observation`] only when a
//! majority of them agree ([`SourceQuorum`]).
//! Implementations: [`csv::CsvReplay`] (a recorded file of timestamped prices),
//! [`synthetic::SyntheticSource`] (a seeded market with jumps and scripted crashes) and
//! [`deribit::DeribitIndexFeed`] (Deribit's websocket index channel, frame by frame).
//! Never: I/O, clocks or entropy. The caller hands over the text and the time; a source's
//! answer depends only on what it was built from and on `now_ms`, never on how often or in
//! which order it was asked, so every validator and every run of the lab see the same market.
//! Never reports a price that fewer than a majority of the configured sources support.
//! Bounds: [`SOURCES_MAX`] sources per observation; [`AGREE_BPS_MAX`].

pub mod csv;
pub mod deribit;
pub mod synthetic;

use crate::median::median_sorted;
use crate::observation::Observation;
use bulwark_types::{AssetCode, PublicKey, UnitPrice};

/// Most sources one observation combines (its `sources` field is a `u8`).
pub const SOURCES_MAX: usize = u8::MAX as usize;

/// Widest agreement band [`SourceQuorum::agree_bps`] may be: 10%. Wider, "agreement" would
/// let a lying source move the observation by more than the oracle's deviation guard lets
/// the index move in a block (at most 5% by default), and the check would mean little.
pub const AGREE_BPS_MAX: u32 = 1_000;

const BPS: u128 = 10_000;

/// When a validator's sources are trusted to make an observation. Not replicated: each
/// validator applies it to its own sources before it signs; the oracle's quorum of validators
/// then bounds what a minority of validators can do.
///
/// A validator observes only when MORE THAN HALF of its configured sources (answering or not)
/// give a fresh price, and the price it reports is supported: more than half of the
/// configured sources lie within `agree_bps` of the answers' median, and it reports the
/// median of those ([`observe_sources`]). Otherwise it abstains, and the oracle's
/// staleness rules take over (liquidation pauses, withdrawals wait) instead of a validator
/// signing a price a minority of its sources made. One configured source: that source alone
/// is the majority.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SourceQuorum {
    /// How far, in basis points of the sources' median, a source may be from it and still
    /// support it. Default 100 (1%). Honest venues of a liquid index quote within a few tens
    /// of basis points of each other even in fast markets (their spread is what arbitrage
    /// leaves), so 1% keeps an honest majority observing through ordinary fast markets (in a
    /// crash of several percent a second, quotes made a few hundred milliseconds apart can
    /// differ by more, and the validator abstains until they agree again); and it is the most a
    /// source lying inside the band can move the observation while the honest sources answer
    /// (twice that while some have failed), the same 1% the deviation guard lets the index
    /// move in any one block. Every validator reads the same venues, so the validators'
    /// median does not dilute a venue's lie: this band is the whole of its influence.
    pub agree_bps: u32,
    /// Oldest quote that counts, in milliseconds before `now_ms`; an older one is treated as
    /// no answer (a venue frozen on an old price is a failed venue, not a vote). Default
    /// 2_000: twice the one-second cadence of an exchange's index feed (Deribit's), and well
    /// inside the oracle's genesis `observation_age_ms_max` (5_000). The observation is
    /// stamped with its oldest quote, so one source answering with old timestamps ages it by
    /// at most this; a bound near the observation's own age limit would let a single venue
    /// make every validator's observations too old to count.
    pub age_ms_max: u64,
}

impl SourceQuorum {
    /// The documented defaults (see each field).
    pub const DEFAULT: Self = Self {
        agree_bps: 100,
        age_ms_max: 2_000,
    };
}

impl Default for SourceQuorum {
    fn default() -> Self {
        Self::DEFAULT
    }
}

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

/// One validator's observation of `asset` at `now_ms` from all its configured `sources`, or
/// `None` when they do not make a quorum (see [`SourceQuorum`]):
///
/// 1. A source answers when it gives a positive price made at or before `now_ms` and at most
///    `quorum.age_ms_max` before it. Fewer than a majority of `sources.len()` answering:
///    `None`.
/// 2. `m`, the median of the answers (for an even count the rounded-down mean of the middle
///    two). The cluster: the answers within `quorum.agree_bps` of `m`. Fewer than a majority
///    of `sources.len()` in it: `None`.
/// 3. The observation is the cluster's median, stamped with its oldest time (as fresh as its
///    stalest input), `sources` the cluster's size.
///
/// What a minority of lying sources can do: never make the observation on their own (the
/// cluster is a majority of the configured sources, so it holds an honest one). While the
/// honest sources are a majority of those answering, `m` lies within the honest prices, so a
/// liar outside the band is left out of the cluster and one inside it moves the observation
/// at most `agree_bps` beyond the honest prices; when failures leave the honest ones fewer,
/// the cluster still holds one, so the observation is within `2 * agree_bps` of it, or there
/// is none. A lie joined by a failure that leaves a tie (the BitMEX case: one of three lying,
/// one failed) has no majority cluster: `None`.
///
/// Panics on more than [`SOURCES_MAX`] sources or `agree_bps` above [`AGREE_BPS_MAX`]
/// (configuration bugs).
pub fn observe_sources(
    validator: &PublicKey,
    asset: AssetCode,
    now_ms: u64,
    sources: &mut [&mut dyn PriceSource],
    quorum: SourceQuorum,
) -> Option<Observation> {
    assert!(
        sources.len() <= SOURCES_MAX,
        "at most {SOURCES_MAX} sources"
    );
    assert!(
        quorum.agree_bps <= AGREE_BPS_MAX,
        "agree_bps at most {AGREE_BPS_MAX}"
    );
    // More than half of the configured sources, answering or not.
    let majority = sources.len() / 2 + 1;
    let oldest_allowed_ms = now_ms.saturating_sub(quorum.age_ms_max);
    let mut quotes: Vec<SourceQuote> = sources
        .iter_mut()
        .filter_map(|s| s.observe(asset, now_ms))
        .filter(|q| {
            q.price.is_positive() && (oldest_allowed_ms..=now_ms).contains(&q.observed_at_ms)
        })
        .collect();
    if quotes.len() < majority {
        return None;
    }
    quotes.sort_unstable_by_key(|q| q.price.micros());
    let prices: Vec<i64> = quotes.iter().map(|q| q.price.micros()).collect();
    let center = median_sorted(&prices);
    assert!(center > 0, "the median of positive prices is positive");
    let band = u128::from(center.unsigned_abs()) * u128::from(quorum.agree_bps);
    let cluster: Vec<&SourceQuote> = quotes
        .iter()
        .filter(|q| u128::from(q.price.micros().abs_diff(center)) * BPS <= band)
        .collect();
    if cluster.len() < majority {
        return None;
    }
    // Sorted by price, as `quotes` is.
    let cluster_prices: Vec<i64> = cluster.iter().map(|q| q.price.micros()).collect();
    let price = median_sorted(&cluster_prices);
    let oldest_ms = cluster
        .iter()
        .map(|q| q.observed_at_ms)
        .min()
        .expect("a majority is at least one");
    assert!(cluster_prices[0] <= price && price <= cluster_prices[cluster_prices.len() - 1]);
    Some(Observation {
        validator: validator.clone(),
        asset,
        price: UnitPrice::from_micros(price),
        observed_at_ms: oldest_ms,
        sources: u8::try_from(cluster.len()).expect("bounded by SOURCES_MAX"),
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

    const NOW: u64 = 10_000;
    const P: i64 = 100_000_000_000;

    fn btc() -> AssetCode {
        AssetCode::parse("BTC").unwrap()
    }

    /// Observes `BTC` at [`NOW`] with the default quorum from `sources`: price, time, count.
    fn observe(sources: &mut [Fixed]) -> Option<(i64, u64, u8)> {
        let key = PrivateKey::from_seed(1).public_key();
        let mut refs: Vec<&mut dyn PriceSource> = sources
            .iter_mut()
            .map(|s| s as &mut dyn PriceSource)
            .collect();
        observe_sources(&key, btc(), NOW, &mut refs, SourceQuorum::DEFAULT)
            .map(|o| (o.price.micros(), o.observed_at_ms, o.sources))
    }

    #[test]
    fn agreeing_sources_combine_by_median_and_oldest_time() {
        // Five configured, three answer (a majority): one has no price, one is from the future.
        let got = observe(&mut [
            quote(100_000, 9_950),
            quote(100_400, 9_940),
            Fixed(None),
            quote(100_200, 9_960),
            quote(1, NOW + 1),
        ]);
        assert_eq!(got, Some((100_200, 9_940, 3)));
        // A far outlier is left out of the cluster: neither its price nor its older time
        // counts, and the count is the cluster's.
        let got = observe(&mut [
            quote(100_000, 9_950),
            quote(300_000, 9_940),
            quote(100_100, 9_970),
            quote(100_200, 9_960),
            Fixed(None),
        ]);
        assert_eq!(got, Some((100_100, 9_950, 3)));
    }

    /// BitMEX, March 2020, with Compound's false print: of three venues, one prints 60% of the
    /// price and another has failed. The two left are a majority that does not agree, so the
    /// validator abstains instead of reporting the lie (or the midpoint of lie and truth).
    #[test]
    fn one_venue_lying_while_another_fails_is_not_observed() {
        let lie = P / 10 * 6;
        assert_eq!(
            observe(&mut [quote(lie, NOW), Fixed(None), quote(P, NOW)]),
            None
        );
        assert_eq!(
            observe(&mut [quote(P, NOW), Fixed(None), quote(lie, NOW)]),
            None,
            "whichever order"
        );
        // With the third venue back, the two honest ones outvote it.
        assert_eq!(
            observe(&mut [quote(lie, NOW), quote(P + 10, NOW), quote(P, NOW)]),
            Some((P + 5, NOW, 2))
        );
    }

    #[test]
    fn fewer_than_a_majority_of_configured_sources_answering_is_not_observed() {
        assert_eq!(
            observe(&mut [quote(P, NOW), Fixed(None), Fixed(None)]),
            None,
            "one of three, however honest"
        );
        assert_eq!(
            observe(&mut [quote(P, NOW), quote(P, NOW), Fixed(None), Fixed(None)]),
            None,
            "two of four is not more than half"
        );
        assert_eq!(
            observe(&mut [quote(P, NOW), quote(P, NOW), quote(P, NOW), Fixed(None)]),
            Some((P, NOW, 3))
        );
        assert_eq!(observe(&mut []), None, "no sources");
    }

    #[test]
    fn one_configured_source_is_its_own_majority() {
        assert_eq!(observe(&mut [quote(P, NOW - 5)]), Some((P, NOW - 5, 1)));
        assert_eq!(observe(&mut [Fixed(None)]), None);
    }

    /// Two of five lying in the same direction: the three honest ones are the cluster. With one
    /// honest venue failed as well, two against two: no majority agrees, no observation.
    #[test]
    fn two_of_five_lying_together_do_not_move_it() {
        let low = P / 2;
        assert_eq!(
            observe(&mut [
                quote(low, NOW),
                quote(P + 20, NOW),
                quote(low, NOW),
                quote(P, NOW),
                quote(P + 10, NOW),
            ]),
            Some((P + 10, NOW, 3))
        );
        assert_eq!(
            observe(&mut [
                quote(low, NOW),
                quote(P + 20, NOW),
                quote(low, NOW),
                Fixed(None),
                quote(P + 10, NOW),
            ]),
            None
        );
        // Two liars just inside the band, three honest: the median stays an honest price.
        let near = P - P / 10_000 * 90;
        assert_eq!(
            observe(&mut [
                quote(near, NOW),
                quote(P, NOW),
                quote(near, NOW),
                quote(P, NOW),
                quote(P, NOW),
            ]),
            Some((P, NOW, 5))
        );
    }

    /// A source lying by less than the band cannot be told from noise: its influence is
    /// bounded by the band, and by nothing smaller.
    #[test]
    fn a_lie_inside_the_band_moves_it_at_most_the_band() {
        let band = P / 10_000 * i64::from(SourceQuorum::DEFAULT.agree_bps);
        let near = P + band;
        // Honest ones answering: the median of three is honest.
        assert_eq!(
            observe(&mut [quote(near, NOW), quote(P, NOW), quote(P, NOW)]),
            Some((P, NOW, 3))
        );
        // One honest failed: lie and truth agree, their midpoint is reported, half the band.
        let (price, _, _) =
            observe(&mut [quote(near, NOW), Fixed(None), quote(P, NOW)]).expect("they agree");
        assert_eq!(price, P + band / 2);
        // Just outside the band (from their midpoint), the two no longer agree.
        let far = P + 2 * band + 3 * (P / 10_000);
        assert_eq!(
            observe(&mut [quote(far, NOW), Fixed(None), quote(P, NOW)]),
            None
        );
    }

    #[test]
    fn stale_and_future_quotes_are_no_answer() {
        let old = NOW - SourceQuorum::DEFAULT.age_ms_max - 1;
        let edge = NOW - SourceQuorum::DEFAULT.age_ms_max;
        assert_eq!(
            observe(&mut [quote(P, old), quote(P, NOW - 10), quote(P, NOW - 20)]),
            Some((P, NOW - 20, 2)),
            "a frozen venue is a failed one, and does not age the observation"
        );
        assert_eq!(
            observe(&mut [quote(P, old), quote(P, old), quote(P, NOW)]),
            None,
            "two of three stale"
        );
        assert_eq!(
            observe(&mut [quote(P, old), quote(P, old), quote(P, old)]),
            None,
            "all stale"
        );
        assert_eq!(
            observe(&mut [quote(P, edge), quote(P, NOW + 1), quote(P, NOW + 1)]),
            None,
            "two from the future"
        );
        assert_eq!(
            observe(&mut [quote(P, edge), quote(P, NOW + 1), quote(P, NOW)]),
            Some((P, edge, 2)),
            "exactly the age bound counts"
        );
        assert_eq!(
            observe(&mut [quote(0, NOW), quote(-P, NOW), quote(P, NOW)]),
            None,
            "non-positive prices are no answer"
        );
    }

    #[test]
    fn extreme_prices_do_not_overflow() {
        assert_eq!(
            observe(&mut [
                quote(i64::MAX, NOW),
                quote(i64::MAX - 1, NOW),
                quote(1, NOW)
            ]),
            Some((i64::MAX - 1, NOW, 2))
        );
        assert_eq!(
            observe(&mut [quote(1, NOW), quote(1, NOW), quote(i64::MAX, NOW)]),
            Some((1, NOW, 2))
        );
    }

    #[test]
    #[should_panic(expected = "agree_bps at most")]
    fn a_band_beyond_the_maximum_is_a_configuration_bug() {
        let key = PrivateKey::from_seed(1).public_key();
        let mut a = quote(P, NOW);
        let quorum = SourceQuorum {
            agree_bps: AGREE_BPS_MAX + 1,
            ..SourceQuorum::DEFAULT
        };
        let _ = observe_sources(&key, btc(), NOW, &mut [&mut a], quorum);
    }
}
