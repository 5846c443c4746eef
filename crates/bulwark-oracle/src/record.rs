//! The per-validator oracle record the API shows: what each validator contributed, how often it
//! was an outlier, and which of its observations were dropped and why.
//!
//! Owns: one [`ValidatorRecord`] per validator key that has been in a set, plus counts of drops
//! that prove nothing about the validator they name ([`ValidatorRecords::unattributed`]).
//! Never: punishes anyone (slashing or exclusion would be a governance decision on this data),
//! nor creates entries for keys outside the validator set, so a flood of observations from
//! strangers cannot grow replicated state.
//! Bounds: at most one entry per member of the current set ([`VALIDATORS_MAX`]); every counter
//! saturates at `u64::MAX`, which one increment per asset per block cannot reach.

use crate::aggregate::{AssetAggregate, DropCounts, IndexOutcome};
use crate::validators::{VALIDATORS_MAX, ValidatorSet};
use bulwark_types::{BlockTime, PublicKey};
use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, RangeCfg, Read, ReadExt, Write,
};
use std::collections::BTreeMap;

/// One validator's oracle history, summed over every asset and block since it joined the set.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidatorRecord {
    /// Observations that passed every check.
    pub accepted: u64,
    /// Accepted observations flagged as outliers (only counted when the asset met quorum).
    pub outliers: u64,
    /// Aggregations (one asset in one block) in which it had no accepted observation.
    pub absent: u64,
    /// Its own signed observations that were dropped, by reason (attributable reasons only).
    pub drops: DropCounts,
    /// Block time of its last accepted observation, in milliseconds; 0 before the first.
    pub last_accepted_ms: u64,
}

/// The record of every validator, keyed by its public key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidatorRecords {
    by_validator: BTreeMap<PublicKey, ValidatorRecord>,
    unattributed: DropCounts,
}

impl ValidatorRecords {
    pub fn new() -> Self {
        Self::default()
    }

    /// The record of `validator`, if it has ever been counted.
    pub fn get(&self, validator: &PublicKey) -> Option<&ValidatorRecord> {
        self.by_validator.get(validator)
    }

    /// Every record, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&PublicKey, &ValidatorRecord)> {
        self.by_validator.iter()
    }

    /// Drops that cannot be pinned on the validator they name: not a validator, bad signature,
    /// over capacity, unknown asset.
    pub fn unattributed(&self) -> &DropCounts {
        &self.unattributed
    }

    /// Adds one aggregation's results. `validators` must be the set it was computed with.
    pub fn record(
        &mut self,
        validators: &ValidatorSet,
        block_time: BlockTime,
        aggregate: &AssetAggregate,
    ) {
        let mut present = vec![false; validators.len()];
        let quorate = matches!(aggregate.outcome, IndexOutcome::Median(_));
        for accepted in &aggregate.accepted {
            let index = accepted.validator_index as usize;
            present[index] = true;
            let record = self.entry(&validators.keys()[index]);
            record.accepted = record.accepted.saturating_add(1);
            record.last_accepted_ms = block_time.millis();
            if quorate && accepted.outlier {
                record.outliers = record.outliers.saturating_add(1);
            }
        }
        for dropped in &aggregate.dropped {
            if dropped.reason.is_attributable() {
                assert!(
                    validators.index_of(&dropped.validator).is_some(),
                    "attributable drops are validators' own signed observations"
                );
                self.entry(&dropped.validator).drops.add(dropped.reason, 1);
            } else {
                self.unattributed.add(dropped.reason, 1);
            }
        }
        for (key, _) in validators.keys().iter().zip(&present).filter(|(_, p)| !**p) {
            let record = self.entry(key);
            record.absent = record.absent.saturating_add(1);
        }
        // After a set change, departed validators' records go: the map never outgrows the set.
        if self.by_validator.len() > validators.len() {
            self.retain(validators);
        }
        assert!(
            self.by_validator.len() <= validators.len(),
            "one record per validator"
        );
    }

    /// Counts drops made before aggregation (observations of untracked assets).
    pub fn record_unattributed(&mut self, drops: &DropCounts) {
        self.unattributed.merge(drops);
    }

    /// Forgets validators no longer in `validators`. [`Self::record`] does this by itself on the
    /// first aggregation after a set change.
    pub fn retain(&mut self, validators: &ValidatorSet) {
        self.by_validator
            .retain(|key, _| validators.index_of(key).is_some());
        assert!(self.by_validator.len() <= validators.len());
    }

    fn entry(&mut self, key: &PublicKey) -> &mut ValidatorRecord {
        self.by_validator.entry(key.clone()).or_default()
    }
}

// ---- codec (the records are replicated state and go into snapshots) ----

impl Write for ValidatorRecord {
    fn write(&self, buf: &mut impl BufMut) {
        self.accepted.write(buf);
        self.outliers.write(buf);
        self.absent.write(buf);
        self.drops.write(buf);
        self.last_accepted_ms.write(buf);
    }
}

impl FixedSize for ValidatorRecord {
    const SIZE: usize = 3 * u64::SIZE + DropCounts::SIZE + u64::SIZE;
}

impl Read for ValidatorRecord {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            accepted: u64::read(buf)?,
            outliers: u64::read(buf)?,
            absent: u64::read(buf)?,
            drops: DropCounts::read(buf)?,
            last_accepted_ms: u64::read(buf)?,
        })
    }
}

impl Write for ValidatorRecords {
    fn write(&self, buf: &mut impl BufMut) {
        self.by_validator.write(buf);
        self.unattributed.write(buf);
    }
}

impl EncodeSize for ValidatorRecords {
    fn encode_size(&self) -> usize {
        self.by_validator.encode_size() + DropCounts::SIZE
    }
}

impl Read for ValidatorRecords {
    type Cfg = ();
    /// Keys must be strictly increasing (commonware's map decoder refuses anything else), and
    /// at most [`VALIDATORS_MAX`].
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let range = RangeCfg::new(0..=VALIDATORS_MAX);
        Ok(Self {
            by_validator: BTreeMap::read_cfg(buf, &(range, ((), ())))?,
            unattributed: DropCounts::read(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Accepted, DropReason, Dropped, MedianStats};
    use bulwark_types::{AssetCode, PrivateKey, UnitPrice};
    use commonware_codec::{DecodeExt, Encode};
    use commonware_cryptography::Signer;

    fn set(n: u64) -> ValidatorSet {
        ValidatorSet::new(
            (0..n)
                .map(|s| PrivateKey::from_seed(s).public_key())
                .collect(),
        )
        .unwrap()
    }

    fn accepted(validator_index: u32, outlier: bool) -> Accepted {
        Accepted {
            position: validator_index,
            validator_index,
            price: UnitPrice::from_micros(1),
            observed_at_ms: 0,
            outlier,
        }
    }

    #[test]
    fn record_counts_accepted_outliers_absent_and_drops() {
        let validators = set(4);
        let stranger = PrivateKey::from_seed(50).public_key();
        let aggregate = AssetAggregate {
            asset: AssetCode::parse("ETH").unwrap(),
            outcome: IndexOutcome::Median(MedianStats {
                price: UnitPrice::from_micros(1),
                mad_micros: 0,
                outlier_distance_micros: 0,
                accepted: 3,
                outliers: 1,
            }),
            accepted: vec![accepted(0, false), accepted(1, true), accepted(2, false)],
            dropped: vec![
                Dropped {
                    position: 3,
                    validator: validators.keys()[1].clone(),
                    reason: DropReason::Duplicate,
                },
                Dropped {
                    position: 4,
                    validator: stranger.clone(),
                    reason: DropReason::NotValidator,
                },
            ],
            drop_counts: DropCounts::default(),
        };
        let mut records = ValidatorRecords::new();
        records.record(&validators, BlockTime::from_millis(77), &aggregate);
        let r1 = records.get(&validators.keys()[1]).unwrap();
        assert_eq!((r1.accepted, r1.outliers, r1.absent), (1, 1, 0));
        assert_eq!(r1.drops.get(DropReason::Duplicate), 1);
        assert_eq!(r1.last_accepted_ms, 77);
        let r3 = records.get(&validators.keys()[3]).unwrap();
        assert_eq!((r3.accepted, r3.absent, r3.last_accepted_ms), (0, 1, 0));
        assert_eq!(records.get(&stranger), None, "strangers get no entry");
        assert_eq!(records.unattributed().get(DropReason::NotValidator), 1);

        let back = ValidatorRecords::decode(records.encode()).unwrap();
        assert_eq!(back, records);

        records.retain(&set(2));
        assert_eq!(records.iter().count(), 2);
    }

    #[test]
    fn outliers_are_not_counted_when_the_asset_is_stale() {
        let validators = set(4);
        let aggregate = AssetAggregate {
            asset: AssetCode::parse("ETH").unwrap(),
            outcome: IndexOutcome::Stale {
                accepted: 1,
                quorum: 3,
            },
            accepted: vec![accepted(0, true)],
            dropped: Vec::new(),
            drop_counts: DropCounts::default(),
        };
        let mut records = ValidatorRecords::new();
        records.record(&validators, BlockTime::from_millis(1), &aggregate);
        assert_eq!(records.get(&validators.keys()[0]).unwrap().outliers, 0);
    }
}
