//! One asset's index from one block's observations: filter, quorum, median, outliers.
//!
//! Owns: the rule that turns a block's observations of one asset into an index price or a
//! [`IndexOutcome::Stale`] verdict, and the typed reason for every observation it drops.
//! Checks run in [`DropReason`] order; the first that fails names the drop. What survives is at
//! most one observation per validator; with at least `2f + 1` of them, the index is their
//! median, and each is flagged an outlier when it lies further from the median than
//! `max(k * MAD, floor_ppm * median)`.
//! Never: verifies signatures (the caller does, in batches, and passes the verdicts), reads a
//! clock (the block's time judges freshness), or keeps state (see [`crate::record`] and
//! [`crate::state`]).
//! Bounds: reads at most `observations_per_asset_max` observations; the rest are dropped as
//! [`DropReason::OverCapacity`]. Work is O(m log m) for m observations read.
//!
//! Safety argument: at most `f` validators are faulty and each contributes at most one
//! accepted observation, so among `m >= 2f + 1` accepted values at most `f` are faulty. In the
//! sorted list, ranks `f ..= m - 1 - f` are then each bounded below and above by honest
//! values; both middle ranks (`(m - 1) / 2` and `m / 2`) lie in that range, hence so does the
//! median, whatever the faulty values are. `tests/median_bound.rs` checks this by proptest.

use crate::config::{OracleConfig, PPM};
use crate::median::{distance, median_abs_deviation, median_sorted};
use crate::observation::{Observation, SignedObservation};
use crate::validators::ValidatorSet;
use bulwark_types::{AssetCode, BlockTime, PublicKey, UnitPrice};
use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, ReadExt, Write};

/// Why an observation did not count. Recorded per validator and shown by the API, so codes
/// are stable: append new variants, never renumber or reuse. Declaration order is check order.
#[repr(u16)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum DropReason {
    /// The oracle does not track this asset (checked per block by [`crate::state`]).
    #[error("the oracle does not track this asset")]
    AssetUnknown = 1,
    /// The block carried more observations of this asset than `observations_per_asset_max`.
    #[error("more observations of this asset than a block may carry")]
    OverCapacity = 2,
    /// The signer is not in the validator set.
    #[error("the signer is not a validator")]
    NotValidator = 3,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature = 4,
    /// The price is zero or negative.
    #[error("the price is not positive")]
    PriceNotPositive = 5,
    /// Fewer sources than `sources_min`.
    #[error("the observation combines too few sources")]
    TooFewSources = 6,
    /// Observed more than `observation_age_ms_max` before the block's time.
    #[error("the observation is older than the freshness bound")]
    Stale = 7,
    /// Observed more than `observation_lead_ms_max` after the block's time.
    #[error("the observation is dated after the block beyond the clock-skew bound")]
    FromFuture = 8,
    /// The validator already has an accepted observation of this asset in this block (the
    /// first in block order counts).
    #[error("a second observation from the same validator")]
    Duplicate = 9,
    /// Observed before the newest observation of the same validator and asset that an
    /// earlier block counted: the validator has replaced it, and only the block's leader
    /// chose to carry it (so it is not charged to the validator).
    #[error("the validator has since replaced this observation with one already counted")]
    Superseded = 10,
}

impl DropReason {
    /// Every reason, in check order.
    pub const ALL: [Self; 10] = [
        Self::AssetUnknown,
        Self::OverCapacity,
        Self::NotValidator,
        Self::BadSignature,
        Self::PriceNotPositive,
        Self::TooFewSources,
        Self::Stale,
        Self::FromFuture,
        Self::Duplicate,
        Self::Superseded,
    ];

    /// The stable wire code.
    pub const fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether the drop is charged to the validator the observation names. Only drops whose
    /// observation carries that validator's valid signature are: anyone can write a
    /// validator's key next to a bad signature, and the leader alone decides how many
    /// observations a block carries and which assets they name.
    pub const fn is_attributable(self) -> bool {
        matches!(
            self,
            Self::PriceNotPositive
                | Self::TooFewSources
                | Self::Stale
                | Self::FromFuture
                | Self::Duplicate
        )
    }

    fn slot(self) -> usize {
        usize::from(self.code() - 1)
    }
}

/// A count of drops for each [`DropReason`]. Counters saturate at `u64::MAX`, which one drop
/// per observation per block cannot reach.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounts([u64; DropReason::ALL.len()]);

impl DropCounts {
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.slot()]
    }

    pub fn add(&mut self, reason: DropReason, count: u64) {
        let slot = &mut self.0[reason.slot()];
        *slot = slot.saturating_add(count);
    }

    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |sum, c| sum.saturating_add(*c))
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for reason in DropReason::ALL {
            self.add(reason, other.get(reason));
        }
    }

    /// `(reason, count)` for every reason with a non-zero count, in check order.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .into_iter()
            .map(|r| (r, self.get(r)))
            .filter(|(_, c)| *c > 0)
    }
}

/// An observation that counted.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Its position in the block's observation list.
    pub position: u32,
    /// The validator's index in the [`ValidatorSet`].
    pub validator_index: u32,
    pub price: UnitPrice,
    pub observed_at_ms: u64,
    /// Further from the median than the outlier distance. Always false when the asset was
    /// stale (no median to measure from).
    pub outlier: bool,
}

/// An observation that did not count, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// Its position in the block's observation list.
    pub position: u32,
    /// The validator the observation names (proven only when the reason
    /// [`DropReason::is_attributable`]).
    pub validator: PublicKey,
    pub reason: DropReason,
}

/// The median of a quorum of fresh observations and the spread around it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MedianStats {
    /// The median, in micro-USDC per unit: the raw index before the deviation guard.
    pub price: UnitPrice,
    /// Median absolute deviation from `price`, in micro-USDC.
    pub mad_micros: u64,
    /// Distance beyond which an observation is an outlier, in micro-USDC.
    pub outlier_distance_micros: u64,
    /// Accepted observations, at least the quorum.
    pub accepted: u32,
    /// Accepted observations flagged as outliers.
    pub outliers: u32,
}

/// The verdict on one asset in one block.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IndexOutcome {
    /// At least `2f + 1` distinct validators' fresh observations: a new raw index.
    Median(MedianStats),
    /// Too few distinct fresh observations: the index must not move on this block's data.
    Stale { accepted: u32, quorum: u32 },
}

impl IndexOutcome {
    /// The raw index, when there is one.
    pub fn price(&self) -> Option<UnitPrice> {
        match self {
            Self::Median(stats) => Some(stats.price),
            Self::Stale { .. } => None,
        }
    }
}

/// Everything the aggregation of one asset in one block decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetAggregate {
    pub asset: AssetCode,
    pub outcome: IndexOutcome,
    /// Observations that counted, in block order.
    pub accepted: Vec<Accepted>,
    /// Observations that did not, in block order.
    pub dropped: Vec<Dropped>,
    /// `dropped` counted by reason.
    pub drop_counts: DropCounts,
}

/// The block-level inputs of an aggregation: who counts, and when the block is.
#[derive(Copy, Clone, Debug)]
pub struct AggregateContext<'a> {
    pub config: &'a OracleConfig,
    pub validators: &'a ValidatorSet,
    pub block_time: BlockTime,
}

/// Aggregates one asset's observations, all of which must name `asset` (the caller groups a
/// block's list by asset; [`crate::state::OracleState::apply_block`] does). `signature_valid`
/// holds one verdict per observation, from [`crate::observation::verify_batch`] or a cache.
pub fn aggregate(
    context: AggregateContext<'_>,
    asset: AssetCode,
    observations: &[SignedObservation],
    signature_valid: &[bool],
) -> AssetAggregate {
    assert_eq!(
        observations.len(),
        signature_valid.len(),
        "one verdict per observation"
    );
    let items = observations
        .iter()
        .zip(signature_valid)
        .enumerate()
        .map(|(i, (o, ok))| (position(i), &o.observation, *ok));
    aggregate_items(context, asset, &[], items)
}

pub(crate) fn position(index: usize) -> u32 {
    u32::try_from(index).expect("block lists are bounded far below 2^32")
}

/// [`aggregate`] over `(position, observation, signature verdict)` triples in block order.
/// `counted[i]`, where present, is the time (ms) of the newest observation of validator `i`
/// of this asset that an earlier block counted: an older one of that validator is stale.
pub(crate) fn aggregate_items<'o>(
    context: AggregateContext<'_>,
    asset: AssetCode,
    counted: &[u64],
    items: impl Iterator<Item = (u32, &'o Observation, bool)>,
) -> AssetAggregate {
    let read_max = context.config.observations_per_asset_max as usize;
    let mut seen = vec![false; context.validators.len()];
    let mut accepted = Vec::new();
    let mut dropped = Vec::new();
    let mut drop_counts = DropCounts::default();
    let mut read = 0usize;
    for (position, observation, signature_valid) in items {
        assert_eq!(observation.asset, asset, "grouped by asset");
        read += 1;
        let verdict = if read > read_max {
            Err(DropReason::OverCapacity)
        } else {
            check(context, observation, signature_valid, counted, &seen)
        };
        match verdict {
            Ok(validator_index) => {
                seen[validator_index] = true;
                accepted.push(Accepted {
                    position,
                    validator_index: position_of_validator(validator_index),
                    price: observation.price,
                    observed_at_ms: observation.observed_at_ms,
                    outlier: false,
                });
            }
            Err(reason) => {
                drop_counts.add(reason, 1);
                dropped.push(Dropped {
                    position,
                    validator: observation.validator.clone(),
                    reason,
                });
            }
        }
    }
    assert_eq!(
        accepted.len() + dropped.len(),
        read,
        "every observation judged once"
    );
    assert!(
        accepted.len() <= context.validators.len(),
        "one per validator"
    );
    let outcome = decide(context, &mut accepted);
    AssetAggregate {
        asset,
        outcome,
        accepted,
        dropped,
        drop_counts,
    }
}

fn position_of_validator(index: usize) -> u32 {
    u32::try_from(index).expect("validator sets are bounded by VALIDATORS_MAX")
}

/// The checks of one observation, in [`DropReason`] order. Returns the validator's index.
fn check(
    context: AggregateContext<'_>,
    observation: &Observation,
    signature_valid: bool,
    counted: &[u64],
    seen: &[bool],
) -> Result<usize, DropReason> {
    let config = context.config;
    let now_ms = context.block_time.millis();
    let Some(index) = context.validators.index_of(&observation.validator) else {
        return Err(DropReason::NotValidator);
    };
    if !signature_valid {
        return Err(DropReason::BadSignature);
    }
    if !observation.price.is_positive() {
        return Err(DropReason::PriceNotPositive);
    }
    if observation.sources < config.sources_min {
        return Err(DropReason::TooFewSources);
    }
    if observation.observed_at_ms < now_ms.saturating_sub(config.observation_age_ms_max) {
        return Err(DropReason::Stale);
    }
    if observation.observed_at_ms > now_ms.saturating_add(config.observation_lead_ms_max) {
        return Err(DropReason::FromFuture);
    }
    if seen[index] {
        return Err(DropReason::Duplicate);
    }
    // A leader may not bring back a price the validator has since replaced.
    if counted
        .get(index)
        .is_some_and(|newest| observation.observed_at_ms < *newest)
    {
        return Err(DropReason::Superseded);
    }
    Ok(index)
}

/// Quorum, median, MAD and outlier flags over the accepted observations.
fn decide(context: AggregateContext<'_>, accepted: &mut [Accepted]) -> IndexOutcome {
    let quorum = context.validators.quorum();
    if accepted.len() < quorum {
        return IndexOutcome::Stale {
            accepted: position(accepted.len()),
            quorum: position(quorum),
        };
    }
    let mut prices: Vec<i64> = accepted.iter().map(|a| a.price.micros()).collect();
    prices.sort_unstable();
    let median = median_sorted(&prices);
    assert!(median > 0, "the median of positive prices is positive");
    let mut scratch = Vec::with_capacity(prices.len());
    let mad = median_abs_deviation(&prices, median, &mut scratch);
    let distance_max = outlier_distance(context.config, median, mad);
    let mut outliers = 0u32;
    for a in accepted.iter_mut() {
        a.outlier = distance(a.price.micros(), median) > distance_max;
        outliers += u32::from(a.outlier);
    }
    // At least half the distances are at most the MAD, and the outlier distance is at least
    // the MAD (k >= 1): outliers are never a majority.
    assert!(
        (outliers as usize) * 2 <= accepted.len(),
        "k >= 1 MAD flags at most half"
    );
    IndexOutcome::Median(MedianStats {
        price: UnitPrice::from_micros(median),
        mad_micros: mad,
        outlier_distance_micros: distance_max,
        accepted: position(accepted.len()),
        outliers,
    })
}

/// `max(k * MAD, floor_ppm * median / 1e6)`, saturating at `u64::MAX`.
fn outlier_distance(config: &OracleConfig, median: i64, mad: u64) -> u64 {
    let by_mad = u128::from(mad) * u128::from(config.outlier_mad_multiple);
    let median = u128::try_from(median).expect("positive");
    let floor = median * u128::from(config.outlier_floor_ppm) / u128::from(PPM);
    u64::try_from(by_mad.max(floor)).unwrap_or(u64::MAX)
}

// ---- codec (drop counts live in the per-validator record, which snapshots carry) ----

impl Write for DropCounts {
    fn write(&self, buf: &mut impl BufMut) {
        for count in self.0 {
            count.write(buf);
        }
    }
}

impl FixedSize for DropCounts {
    const SIZE: usize = DropReason::ALL.len() * u64::SIZE;
}

impl Read for DropCounts {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let mut counts = [0u64; DropReason::ALL.len()];
        for count in &mut counts {
            *count = u64::read(buf)?;
        }
        Ok(Self(counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::PrivateKey;
    use commonware_cryptography::Signer;

    const T: u64 = 1_700_000_000_000;

    struct Fixture {
        keys: Vec<PrivateKey>,
        set: ValidatorSet,
        config: OracleConfig,
    }

    impl Fixture {
        fn new(n: u64) -> Self {
            let keys: Vec<PrivateKey> = (0..n).map(PrivateKey::from_seed).collect();
            let set = ValidatorSet::new(keys.iter().map(|k| k.public_key()).collect()).unwrap();
            Self {
                keys,
                set,
                config: OracleConfig::GENESIS,
            }
        }

        fn obs(&self, validator: usize, price: i64, age_ms: i64) -> SignedObservation {
            let key = &self.keys[validator];
            Observation {
                validator: key.public_key(),
                asset: btc(),
                price: UnitPrice::from_micros(price),
                observed_at_ms: (T as i64 - age_ms) as u64,
                sources: 2,
            }
            .sign(key)
        }

        fn run(&self, observations: &[SignedObservation]) -> AssetAggregate {
            let verdicts: Vec<bool> = observations.iter().map(SignedObservation::verify).collect();
            let context = AggregateContext {
                config: &self.config,
                validators: &self.set,
                block_time: BlockTime::from_millis(T),
            };
            aggregate(context, btc(), observations, &verdicts)
        }
    }

    fn btc() -> AssetCode {
        AssetCode::parse("BTC").unwrap()
    }

    fn reasons(agg: &AssetAggregate) -> Vec<(u32, DropReason)> {
        agg.dropped.iter().map(|d| (d.position, d.reason)).collect()
    }

    #[test]
    fn drop_codes_are_stable_and_dense() {
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(reason.code()), i + 1);
            assert_eq!(DropReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(DropReason::from_code(0), None);
        assert_eq!(DropReason::from_code(11), None);
    }

    #[test]
    fn odd_quorum_takes_the_middle_price() {
        let fx = Fixture::new(4);
        let agg = fx.run(&[fx.obs(0, 100, 0), fx.obs(1, 103, 10), fx.obs(2, 101, 20)]);
        assert_eq!(agg.outcome.price(), Some(UnitPrice::from_micros(101)));
        assert!(agg.dropped.is_empty());
    }

    #[test]
    fn even_count_takes_the_rounded_down_mean() {
        let fx = Fixture::new(4);
        let all: Vec<_> = [100, 103, 101, 110]
            .iter()
            .enumerate()
            .map(|(v, p)| fx.obs(v, *p, 0))
            .collect();
        // Sorted 100, 101, 103, 110: (101 + 103) / 2 = 102.
        assert_eq!(
            fx.run(&all).outcome.price(),
            Some(UnitPrice::from_micros(102))
        );
    }

    #[test]
    fn stale_and_future_observations_are_dropped_at_the_bounds() {
        let fx = Fixture::new(4);
        let age_max = fx.config.observation_age_ms_max as i64;
        let lead_max = fx.config.observation_lead_ms_max as i64;
        let agg = fx.run(&[
            fx.obs(0, 100, age_max),       // exactly at the bound: counts
            fx.obs(1, 100, age_max + 1),   // one ms older: stale
            fx.obs(2, 100, -lead_max),     // exactly at the lead bound: counts
            fx.obs(3, 100, -lead_max - 1), // beyond it: from the future
        ]);
        assert_eq!(
            reasons(&agg),
            vec![(1, DropReason::Stale), (3, DropReason::FromFuture)]
        );
        assert_eq!(
            agg.outcome,
            IndexOutcome::Stale {
                accepted: 2,
                quorum: 3
            }
        );
    }

    #[test]
    fn duplicate_keeps_the_first_fresh_one() {
        let fx = Fixture::new(4);
        let agg = fx.run(&[
            fx.obs(0, 100, 9_000), // stale: does not claim the validator's slot
            fx.obs(0, 200, 0),
            fx.obs(0, 300, 0),
            fx.obs(1, 200, 0),
            fx.obs(2, 200, 0),
        ]);
        assert_eq!(
            reasons(&agg),
            vec![(0, DropReason::Stale), (2, DropReason::Duplicate)]
        );
        assert_eq!(
            agg.accepted.iter().map(|a| a.position).collect::<Vec<_>>(),
            [1, 3, 4]
        );
        assert_eq!(agg.outcome.price(), Some(UnitPrice::from_micros(200)));
    }

    #[test]
    fn non_validator_and_bad_signature_are_dropped_before_anything_else() {
        let fx = Fixture::new(4);
        let stranger = PrivateKey::from_seed(99);
        let foreign = Observation {
            validator: stranger.public_key(),
            asset: btc(),
            price: UnitPrice::ZERO, // would also be refused, but membership is checked first
            observed_at_ms: T,
            sources: 1,
        }
        .sign(&stranger);
        let mut forged = fx.obs(1, 100, 0);
        forged.observation.price = UnitPrice::ZERO;
        let agg = fx.run(&[foreign, forged]);
        assert_eq!(
            reasons(&agg),
            vec![(0, DropReason::NotValidator), (1, DropReason::BadSignature)]
        );
        assert_eq!(agg.drop_counts.total(), 2);
    }

    #[test]
    fn bad_price_and_too_few_sources_are_dropped() {
        let mut fx = Fixture::new(4);
        fx.config.sources_min = 3;
        let mut few = fx.obs(2, 100, 0);
        few.observation.sources = 2;
        let few = few.observation.sign(&fx.keys[2]);
        let mut many = fx.obs(3, 100, 0);
        many.observation.sources = 3;
        let many = many.observation.sign(&fx.keys[3]);
        let agg = fx.run(&[few, many]);
        assert_eq!(reasons(&agg), vec![(0, DropReason::TooFewSources)]);
        fx.config.sources_min = 1;
        let agg = fx.run(&[fx.obs(0, 0, 0), fx.obs(1, -5, 0)]);
        assert_eq!(agg.drop_counts.get(DropReason::PriceNotPositive), 2);
    }

    #[test]
    fn observations_beyond_the_cap_are_dropped_unread() {
        let mut fx = Fixture::new(4);
        fx.config.observations_per_asset_max = 4;
        let list: Vec<_> = (0..4)
            .map(|v| fx.obs(v, 100, 0))
            .chain([fx.obs(0, 1, 0)])
            .collect();
        let agg = fx.run(&list);
        assert_eq!(reasons(&agg), vec![(4, DropReason::OverCapacity)]);
        assert_eq!(agg.accepted.len(), 4);
    }

    #[test]
    fn quorum_needs_two_f_plus_one_distinct_validators() {
        let fx = Fixture::new(7);
        let two_f: Vec<_> = (0..4).map(|v| fx.obs(v, 100, 0)).collect();
        assert_eq!(
            fx.run(&two_f).outcome,
            IndexOutcome::Stale {
                accepted: 4,
                quorum: 5
            }
        );
        // Duplicates do not make up the numbers.
        let padded: Vec<_> = two_f.iter().cloned().chain([fx.obs(0, 100, 0)]).collect();
        assert!(matches!(
            fx.run(&padded).outcome,
            IndexOutcome::Stale { .. }
        ));
        let quorum: Vec<_> = (0..5).map(|v| fx.obs(v, 100, 0)).collect();
        assert!(matches!(fx.run(&quorum).outcome, IndexOutcome::Median(_)));
    }

    #[test]
    fn zero_mad_flags_only_beyond_the_floor() {
        let fx = Fixture::new(7);
        let median = 1_000_000_000i64;
        let floor = median * i64::from(fx.config.outlier_floor_ppm) / 1_000_000;
        let prices = [
            median,
            median,
            median,
            median,
            median + floor,
            median + floor + 1,
            1,
        ];
        let list: Vec<_> = prices
            .iter()
            .enumerate()
            .map(|(v, p)| fx.obs(v, *p, 0))
            .collect();
        let agg = fx.run(&list);
        let IndexOutcome::Median(stats) = agg.outcome else {
            panic!("quorum met")
        };
        assert_eq!((stats.price.micros(), stats.mad_micros), (median, 0));
        assert_eq!(stats.outlier_distance_micros, floor as u64);
        let flagged: Vec<_> = agg
            .accepted
            .iter()
            .filter(|a| a.outlier)
            .map(|a| a.position)
            .collect();
        assert_eq!(flagged, vec![5, 6]);
        assert_eq!(stats.outliers, 2);
    }

    #[test]
    fn wide_honest_spread_flags_by_mad_multiple() {
        let fx = Fixture::new(7);
        // Median 1_000_000_000; distances 0, 1e7, 1e7, 2e7, 2e7, 3e7, 3e8: MAD 2e7, 5 MAD = 1e8.
        let prices = [
            1_000_000_000,
            990_000_000,
            1_010_000_000,
            980_000_000,
            1_020_000_000,
            1_030_000_000,
            1_300_000_000,
        ];
        let list: Vec<_> = prices
            .iter()
            .enumerate()
            .map(|(v, p)| fx.obs(v, *p, 0))
            .collect();
        let agg = fx.run(&list);
        let IndexOutcome::Median(stats) = agg.outcome else {
            panic!("quorum met")
        };
        assert_eq!(
            (stats.mad_micros, stats.outlier_distance_micros),
            (20_000_000, 100_000_000)
        );
        assert_eq!(agg.accepted.iter().filter(|a| a.outlier).count(), 1);
        assert!(agg.accepted[6].outlier);
    }
}
