//! Index prices and what is derived from their sequence.
//!
//! Owns: each underlying's latest index price, its recent history (the samples settlement
//! averages, under an oracle) and its realised variance (what scales the perpetual band).
//! Never: takes a price without feeding it to the history and the variance that follow it:
//! [`IndexPrices::record`] is the only way a price enters, so settlement and the band see
//! every print the marks saw. Never decides whether a price is trusted (the oracle and
//! `Exchange::apply_prices` do) or which underlyings are listed.
//! Bounds: one entry per listed underlying; a history keeps at most `IndexHistory::SAMPLES_MAX`
//! samples.

use crate::instrument::{IndexHistory, RealisedVariance};
use bulwark_types::{AssetCode, UnitPrice};
use std::collections::BTreeMap;

/// The index prices (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct IndexPrices {
    latest: BTreeMap<AssetCode, UnitPrice>,
    /// Each index's last thirty minutes (longer while an expiry waits for its settlement
    /// price), under an oracle only.
    history: BTreeMap<AssetCode, IndexHistory>,
    /// Realised variance of each index, when the band is volatility-scaled.
    variance: BTreeMap<AssetCode, RealisedVariance>,
}

impl IndexPrices {
    /// The prices, histories and variances a snapshot recorded.
    pub(crate) fn restored(
        latest: BTreeMap<AssetCode, UnitPrice>,
        history: BTreeMap<AssetCode, IndexHistory>,
        variance: BTreeMap<AssetCode, RealisedVariance>,
    ) -> Self {
        Self {
            latest,
            history,
            variance,
        }
    }

    /// Takes `price` as `asset`'s index at `now_ms`. `history` is `Some(keep_from_ms)` when
    /// settlement reads the history (under an oracle): samples before `keep_from_ms` (or
    /// older than the window, without one) are dropped. `variance_half_life_ms` is set when
    /// the band scales with realised variance.
    pub(crate) fn record(
        &mut self,
        asset: AssetCode,
        price: UnitPrice,
        now_ms: u64,
        history: Option<Option<u64>>,
        variance_half_life_ms: Option<u64>,
    ) {
        self.latest.insert(asset, price);
        if let Some(keep_from_ms) = history {
            self.history
                .entry(asset)
                .or_default()
                .record(now_ms, price, keep_from_ms);
        }
        if let Some(half_life_ms) = variance_half_life_ms {
            self.variance
                .entry(asset)
                .or_default()
                .update(now_ms, price, half_life_ms);
        }
    }

    // ---- reads ----

    /// Each underlying's latest index price.
    pub(crate) fn latest(&self) -> &BTreeMap<AssetCode, UnitPrice> {
        &self.latest
    }

    /// `asset`'s latest index price, if it has one.
    pub(crate) fn get(&self, asset: &AssetCode) -> Option<&UnitPrice> {
        self.latest.get(asset)
    }

    pub(crate) fn len(&self) -> usize {
        self.latest.len()
    }

    /// `asset`'s recent history, if one is kept.
    pub(crate) fn history(&self, asset: &AssetCode) -> Option<&IndexHistory> {
        self.history.get(asset)
    }

    /// Every history kept, by underlying.
    pub(crate) fn histories(&self) -> &BTreeMap<AssetCode, IndexHistory> {
        &self.history
    }

    /// `asset`'s realised variance, if tracked.
    pub(crate) fn variance(&self, asset: &AssetCode) -> Option<&RealisedVariance> {
        self.variance.get(asset)
    }

    /// Every realised variance tracked, by underlying.
    pub(crate) fn variances(&self) -> &BTreeMap<AssetCode, RealisedVariance> {
        &self.variance
    }
}

/// Every underlying with an index price, in order.
impl<'a> IntoIterator for &'a IndexPrices {
    type Item = (&'a AssetCode, &'a UnitPrice);
    type IntoIter = std::collections::btree_map::Iter<'a, AssetCode, UnitPrice>;

    fn into_iter(self) -> Self::IntoIter {
        self.latest.iter()
    }
}
