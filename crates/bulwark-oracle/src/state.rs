//! The oracle's replicated state and its block step: every tracked asset's guarded index and
//! mode, and the per-validator record.
//!
//! Owns: which assets the oracle tracks, each one's [`DeviationGuard`], last raw median and
//! [`OracleMode`], and the [`ValidatorRecords`]. [`OracleState::apply_block`] groups a block's
//! observations by asset (dropping those of untracked assets), aggregates each tracked asset,
//! records the results per validator, and passes each new median through the guard.
//! Never: verifies signatures (verdicts come in), reads a clock (time is the block's), or
//! decides what a stale oracle means for trading (the exchange turns reduce-only).
//! Bounds: at most `assets_max` tracked assets; per block, O(m log m) for m observations.
//!
//! Leaders are expected to carry each validator's latest observation of each asset in every
//! block while it is fresh. An asset is stale only when no block has carried a quorum (`2f + 1`
//! validators' observations) within `observation_age_ms_max` of block time: one leader that
//! leaves the observations out of its block changes nothing.

use crate::aggregate::{
    AggregateContext, AssetAggregate, DropCounts, DropReason, Dropped, IndexOutcome,
    aggregate_items, position,
};
use crate::config::OracleConfig;
use crate::guard::{DeviationGuard, GuardStep};
use crate::observation::SignedObservation;
use crate::record::ValidatorRecords;
use crate::validators::{VALIDATORS_MAX, ValidatorSet};
use bulwark_types::{AssetCode, BlockTime, PublicKey, UnitPrice};
use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, RangeCfg, Read, ReadExt, Write,
};
use std::collections::BTreeMap;

/// Whether an asset's index is live.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OracleMode {
    /// A block carried a quorum of fresh observations within the last
    /// `observation_age_ms_max` of block time.
    Fresh,
    /// None has for longer (or none ever has): the index must not be trusted for risk-adding
    /// trades.
    Stale,
}

/// Why the oracle refused to track an asset.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the oracle already tracks assets_max assets")]
    TooManyAssets,
}

/// One tracked asset.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AssetIndex {
    guard: DeviationGuard,
    raw: Option<UnitPrice>,
    mode: OracleMode,
    /// The oldest observation time (ms) among those the last median counted; 0 before any.
    observed_since_ms: u64,
}

impl AssetIndex {
    const fn new() -> Self {
        Self {
            guard: DeviationGuard::new(),
            raw: None,
            mode: OracleMode::Stale,
            observed_since_ms: 0,
        }
    }

    /// When the observations behind the last median were made: the oldest of them (ms), once
    /// a first quorum has arrived. Every price in that median was observed at or after it,
    /// so a state machine that must judge something at prices observed after time `t` waits
    /// for a fresh index with `observed_since_ms() > t`.
    pub fn observed_since_ms(&self) -> Option<u64> {
        self.raw.map(|_| self.observed_since_ms)
    }

    /// The guarded index the exchange uses, once a first quorum has arrived.
    pub fn index(&self) -> Option<UnitPrice> {
        self.guard.index()
    }

    /// The last raw median, before the guard.
    pub fn raw(&self) -> Option<UnitPrice> {
        self.raw
    }

    pub fn mode(&self) -> OracleMode {
        self.mode
    }

    /// Block time (ms) the index last moved on a quorum.
    pub fn updated_at_ms(&self) -> Option<u64> {
        self.guard.updated_at_ms()
    }
}

/// What one block did to one asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetOutcome {
    pub aggregate: AssetAggregate,
    /// The guard's step, when the block carried a quorum.
    pub guard: Option<GuardStep>,
    pub mode: OracleMode,
    /// Whether `mode` differs from the previous block's: each change is an exchange event.
    pub mode_changed: bool,
}

/// What one block did to the oracle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OracleOutcome {
    /// One entry per tracked asset, in asset order (with no observations, an asset is stale).
    pub assets: Vec<AssetOutcome>,
    /// Observations of assets the oracle does not track.
    pub untracked: Vec<Dropped>,
}

/// The oracle's replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OracleState {
    assets: BTreeMap<AssetCode, AssetIndex>,
    records: ValidatorRecords,
    /// Per tracked asset and validator, the time (ms) of the newest of its observations a
    /// block has counted: an older one is stale however young, so a leader cannot carry a
    /// price the validator has since replaced. At most one entry per tracked asset and key
    /// ever in the validator set, like [`ValidatorRecords`].
    counted: BTreeMap<(AssetCode, PublicKey), u64>,
}

impl OracleState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts tracking `asset` (stale until its first quorum). Tracking twice is a no-op.
    pub fn track(&mut self, config: &OracleConfig, asset: AssetCode) -> Result<(), StateError> {
        if self.assets.contains_key(&asset) {
            return Ok(());
        }
        if self.assets.len() >= config.assets_max as usize {
            return Err(StateError::TooManyAssets);
        }
        self.assets.insert(asset, AssetIndex::new());
        Ok(())
    }

    pub fn asset(&self, asset: &AssetCode) -> Option<&AssetIndex> {
        self.assets.get(asset)
    }

    /// Every tracked asset, in order.
    pub fn assets(&self) -> impl Iterator<Item = (&AssetCode, &AssetIndex)> {
        self.assets.iter()
    }

    /// The guarded index of `asset`, if tracked and ever quorate.
    pub fn index(&self, asset: &AssetCode) -> Option<UnitPrice> {
        self.assets.get(asset).and_then(AssetIndex::index)
    }

    pub fn records(&self) -> &ValidatorRecords {
        &self.records
    }

    /// Applies one block's observations. `signature_valid[i]` is the verdict on
    /// `observations[i]` (from [`crate::observation::verify_batch`] or a verdict cache).
    pub fn apply_block(
        &mut self,
        config: &OracleConfig,
        validators: &ValidatorSet,
        block_time: BlockTime,
        observations: &[SignedObservation],
        signature_valid: &[bool],
    ) -> OracleOutcome {
        assert_eq!(
            observations.len(),
            signature_valid.len(),
            "one verdict per observation"
        );
        let (groups, untracked) = self.group(observations);
        let mut untracked_counts = DropCounts::default();
        untracked_counts.add(DropReason::AssetUnknown, untracked.len() as u64);
        self.records.record_unattributed(&untracked_counts);
        let context = AggregateContext {
            config,
            validators,
            block_time,
        };
        let mut assets = Vec::with_capacity(self.assets.len());
        for (asset, state) in &mut self.assets {
            let positions = groups.get(asset).map(Vec::as_slice).unwrap_or_default();
            let items = positions.iter().map(|p| {
                let i = *p as usize;
                (*p, &observations[i].observation, signature_valid[i])
            });
            let counted: Vec<u64> = validators
                .keys()
                .iter()
                .map(|key| {
                    self.counted
                        .get(&(*asset, key.clone()))
                        .copied()
                        .unwrap_or(0)
                })
                .collect();
            let aggregate = aggregate_items(context, *asset, &counted, items);
            for accepted in &aggregate.accepted {
                let key = &validators.keys()[accepted.validator_index as usize];
                let newest = self.counted.entry((*asset, key.clone())).or_insert(0);
                assert!(
                    accepted.observed_at_ms >= *newest,
                    "an accepted observation is no older than its validator's newest counted"
                );
                *newest = accepted.observed_at_ms;
            }
            self.records.record(validators, block_time, &aggregate);
            let guard = aggregate.outcome.price().map(|raw| {
                state.raw = Some(raw);
                state.observed_since_ms = aggregate
                    .accepted
                    .iter()
                    .map(|a| a.observed_at_ms)
                    .min()
                    .expect("a median has a quorum of accepted observations");
                state.guard.step(&config.guard, raw, block_time)
            });
            // Staleness is judged over a window of time, not per block: a block without a
            // quorum (a leader that withheld observations) changes nothing while the last
            // quorum is within `observation_age_ms_max`, the same age an observation may have.
            let quorum_recent = state.guard.updated_at_ms().is_some_and(|at| {
                block_time.millis().saturating_sub(at) <= config.observation_age_ms_max
            });
            let mode = match aggregate.outcome {
                IndexOutcome::Median(_) => OracleMode::Fresh,
                IndexOutcome::Stale { .. } if quorum_recent => OracleMode::Fresh,
                IndexOutcome::Stale { .. } => OracleMode::Stale,
            };
            let mode_changed = mode != state.mode;
            state.mode = mode;
            assets.push(AssetOutcome {
                aggregate,
                guard,
                mode,
                mode_changed,
            });
        }
        let judged: usize = untracked.len()
            + assets
                .iter()
                .map(|a| a.aggregate.accepted.len() + a.aggregate.dropped.len())
                .sum::<usize>();
        assert_eq!(judged, observations.len(), "every observation judged once");
        OracleOutcome { assets, untracked }
    }

    /// Positions of each tracked asset's observations, in block order, and the drops of
    /// untracked ones.
    fn group(
        &self,
        observations: &[SignedObservation],
    ) -> (BTreeMap<AssetCode, Vec<u32>>, Vec<Dropped>) {
        let mut groups: BTreeMap<AssetCode, Vec<u32>> = BTreeMap::new();
        let mut untracked = Vec::new();
        for (i, signed) in observations.iter().enumerate() {
            let observation = &signed.observation;
            if self.assets.contains_key(&observation.asset) {
                groups
                    .entry(observation.asset)
                    .or_default()
                    .push(position(i));
            } else {
                untracked.push(Dropped {
                    position: position(i),
                    validator: observation.validator.clone(),
                    reason: DropReason::AssetUnknown,
                });
            }
        }
        (groups, untracked)
    }
}

// ---- codec (replicated state: snapshots carry it) ----

impl Write for OracleMode {
    fn write(&self, buf: &mut impl BufMut) {
        u8::from(*self == OracleMode::Fresh).write(buf);
    }
}

impl FixedSize for OracleMode {
    const SIZE: usize = 1;
}

impl Read for OracleMode {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(OracleMode::Stale),
            1 => Ok(OracleMode::Fresh),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

impl Write for AssetIndex {
    fn write(&self, buf: &mut impl BufMut) {
        self.guard.write(buf);
        // Zero stands for "no median yet": medians are always positive.
        self.raw.unwrap_or(UnitPrice::ZERO).write(buf);
        self.mode.write(buf);
        self.observed_since_ms.write(buf);
    }
}

impl FixedSize for AssetIndex {
    const SIZE: usize = DeviationGuard::SIZE + UnitPrice::SIZE + OracleMode::SIZE + u64::SIZE;
}

impl Read for AssetIndex {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let guard = DeviationGuard::read(buf)?;
        let raw = UnitPrice::read(buf)?;
        let mode = OracleMode::read(buf)?;
        let observed_since_ms = u64::read(buf)?;
        let raw = match raw {
            UnitPrice::ZERO => None,
            p if p.is_positive() => Some(p),
            _ => return Err(CodecError::Invalid("AssetIndex", "negative median")),
        };
        // A median and a guarded index arrive together; a fresh asset has both.
        if raw.is_some() != guard.index().is_some()
            || (mode == OracleMode::Fresh && raw.is_none())
            || (raw.is_none() && observed_since_ms != 0)
        {
            return Err(CodecError::Invalid("AssetIndex", "inconsistent fields"));
        }
        Ok(Self {
            guard,
            raw,
            mode,
            observed_since_ms,
        })
    }
}

impl Write for OracleState {
    fn write(&self, buf: &mut impl BufMut) {
        self.assets.write(buf);
        self.records.write(buf);
        self.counted.write(buf);
    }
}

impl EncodeSize for OracleState {
    fn encode_size(&self) -> usize {
        self.assets.encode_size() + self.records.encode_size() + self.counted.encode_size()
    }
}

impl Read for OracleState {
    /// Most tracked assets (`OracleConfig::assets_max`).
    type Cfg = usize;
    fn read_cfg(buf: &mut impl Buf, assets_max: &usize) -> Result<Self, CodecError> {
        let range = RangeCfg::new(0..=*assets_max);
        let assets: BTreeMap<AssetCode, AssetIndex> = BTreeMap::read_cfg(buf, &(range, ((), ())))?;
        let records = ValidatorRecords::read(buf)?;
        let counted_max = assets.len().saturating_mul(VALIDATORS_MAX);
        let counted: BTreeMap<(AssetCode, PublicKey), u64> =
            BTreeMap::read_cfg(buf, &(RangeCfg::new(0..=counted_max), (((), ()), ())))?;
        // Only tracked assets have counted observations, and only from keys with a record.
        if counted
            .keys()
            .any(|(asset, key)| !assets.contains_key(asset) || records.get(key).is_none())
        {
            return Err(CodecError::Invalid(
                "OracleState",
                "a counted observation of an untracked asset or an unknown validator",
            ));
        }
        Ok(Self {
            assets,
            records,
            counted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::GuardVerdict;
    use crate::observation::{Observation, verify_batch};
    use bulwark_types::PrivateKey;
    use commonware_codec::{Decode, Encode};
    use commonware_cryptography::Signer;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const T: u64 = 1_700_000_000_000;

    fn asset(code: &str) -> AssetCode {
        AssetCode::parse(code).unwrap()
    }

    fn signed(key: &PrivateKey, code: &str, price: i64, at_ms: u64) -> SignedObservation {
        Observation {
            validator: key.public_key(),
            asset: asset(code),
            price: UnitPrice::from_micros(price),
            observed_at_ms: at_ms,
            sources: 1,
        }
        .sign(key)
    }

    struct Cluster {
        keys: Vec<PrivateKey>,
        set: ValidatorSet,
        config: OracleConfig,
        state: OracleState,
    }

    impl Cluster {
        fn new(n: u64) -> Self {
            let keys: Vec<PrivateKey> = (0..n).map(PrivateKey::from_seed).collect();
            let set = ValidatorSet::new(keys.iter().map(|k| k.public_key()).collect()).unwrap();
            let config = OracleConfig::GENESIS;
            config.check_for(&set).unwrap();
            let mut state = OracleState::new();
            state.track(&config, asset("BTC")).unwrap();
            state.track(&config, asset("ETH")).unwrap();
            Self {
                keys,
                set,
                config,
                state,
            }
        }

        fn block(&mut self, at_ms: u64, observations: &[SignedObservation]) -> OracleOutcome {
            let mut rng = ChaCha20Rng::seed_from_u64(at_ms);
            let verdicts = verify_batch(&mut rng, observations);
            self.state.apply_block(
                &self.config,
                &self.set,
                BlockTime::from_millis(at_ms),
                observations,
                &verdicts,
            )
        }
    }

    /// The median remembers when its observations were made (the oldest of them), kept
    /// through blocks without a quorum and through an encoding round trip.
    #[test]
    fn the_last_median_remembers_its_oldest_observation() {
        let mut c = Cluster::new(4);
        let k = c.keys.clone();
        let btc = asset("BTC");
        assert_eq!(c.state.asset(&btc).unwrap().observed_since_ms(), None);
        let list = [
            signed(&k[0], "BTC", 100, T - 3_000),
            signed(&k[1], "BTC", 101, T - 1_000),
            signed(&k[2], "BTC", 102, T),
        ];
        c.block(T, &list);
        assert_eq!(
            c.state.asset(&btc).unwrap().observed_since_ms(),
            Some(T - 3_000)
        );
        // A block without a quorum keeps it.
        c.block(T + 1_000, &list[..1]);
        assert_eq!(
            c.state.asset(&btc).unwrap().observed_since_ms(),
            Some(T - 3_000)
        );
        let later = [
            signed(&k[0], "BTC", 100, T + 1_500),
            signed(&k[1], "BTC", 101, T + 1_800),
            signed(&k[3], "BTC", 102, T + 2_000),
        ];
        c.block(T + 2_000, &later);
        assert_eq!(
            c.state.asset(&btc).unwrap().observed_since_ms(),
            Some(T + 1_500)
        );
        let bytes = c.state.encode();
        let decoded = OracleState::decode_cfg(bytes, &64).unwrap();
        assert_eq!(decoded, c.state);
    }

    /// A leader chooses which of each validator's signed observations its block carries. One
    /// that carries older ones than the chain has already counted, validly signed and still
    /// within the freshness bound, would set the index back to where it stood seconds ago: in
    /// a fall, up by as much as the guard lets one block move it, for every mark, liquidation
    /// and withdrawal in its block. An observation older than the newest of its validator and
    /// asset the chain has counted is dropped as superseded (not charged to the validator:
    /// the leader chose it), so the index stays; the same
    /// observation carried again (every honest block does, until the next arrives) counts.
    #[test]
    fn a_leader_replaying_older_observations_cannot_move_the_index_back() {
        let mut c = Cluster::new(4);
        let k = c.keys.clone();
        let btc = asset("BTC");
        let before: Vec<_> = (0..3)
            .map(|i| signed(&k[i], "BTC", 1_000_000, T - 1_000))
            .collect();
        c.block(T - 1_000, &before);
        let fallen: Vec<_> = (0..3).map(|i| signed(&k[i], "BTC", 995_000, T)).collect();
        c.block(T, &fallen);
        let index = |c: &Cluster| c.state.asset(&btc).unwrap().index().unwrap().micros();
        assert_eq!(index(&c), 995_000);
        // The replay: the observations of a second ago, 0.5% higher.
        let outcome = c.block(T + 100, &before);
        assert_eq!(index(&c), 995_000, "the index did not move back");
        let aggregate = &outcome.assets[0].aggregate;
        assert_eq!(
            aggregate.outcome,
            IndexOutcome::Stale {
                accepted: 0,
                quorum: 3
            }
        );
        assert_eq!(aggregate.drop_counts.get(DropReason::Superseded), 3);
        assert!(
            !DropReason::Superseded.is_attributable(),
            "the leader's doing"
        );
        // The newest counted, carried again, counts: honest blocks repeat observations.
        let outcome = c.block(T + 150, &fallen);
        assert!(matches!(
            outcome.assets[0].aggregate.outcome,
            IndexOutcome::Median(_)
        ));
        // Mixed with one newer observation, still no quorum of counted ones.
        let mut mixed = before.clone();
        mixed[0] = signed(&k[0], "BTC", 990_000, T + 150);
        c.block(T + 200, &mixed);
        assert_eq!(index(&c), 995_000);
        // A validator's observation older than its newest counted one, but fresher than
        // another validator's, is still dropped: the bound is per validator.
        let late = [
            signed(&k[0], "BTC", 995_000, T + 100),
            signed(&k[1], "BTC", 995_000, T),
            signed(&k[3], "BTC", 995_000, T - 500),
        ];
        let outcome = c.block(T + 400, &late);
        assert_eq!(
            outcome.assets[0]
                .aggregate
                .drop_counts
                .get(DropReason::Superseded),
            1
        );
        assert!(matches!(
            outcome.assets[0].aggregate.outcome,
            IndexOutcome::Stale { .. }
        ));
        let bytes = c.state.encode();
        assert_eq!(OracleState::decode_cfg(bytes, &64).unwrap(), c.state);
    }

    /// A snapshot's counted observations must name a tracked asset and a validator with a
    /// record; anything else is refused, not believed.
    #[test]
    fn a_snapshot_naming_counted_observations_of_strangers_is_refused() {
        let mut c = Cluster::new(4);
        let k = c.keys.clone();
        let list: Vec<_> = (0..3).map(|i| signed(&k[i], "BTC", 1_000, T)).collect();
        c.block(T, &list);
        let valid = c.state.encode();
        assert!(OracleState::decode_cfg(valid, &64).is_ok());
        let forged = |asset: AssetCode, key: PublicKey| {
            let mut bytes = c.state.assets.encode().to_vec();
            bytes.extend_from_slice(&c.state.records.encode());
            let counted = BTreeMap::from([((asset, key), T)]);
            bytes.extend_from_slice(&counted.encode());
            OracleState::decode_cfg(bytes::Bytes::from(bytes), &64)
        };
        assert!(
            forged(asset("SOL"), k[0].public_key()).is_err(),
            "untracked asset"
        );
        let stranger = PrivateKey::from_seed(99).public_key();
        assert!(forged(asset("BTC"), stranger).is_err(), "no record");
        assert!(forged(asset("BTC"), k[1].public_key()).is_ok());
    }

    #[test]
    fn block_groups_by_asset_and_drops_untracked() {
        let mut c = Cluster::new(4);
        let k = c.keys.clone();
        let list = [
            signed(&k[0], "BTC", 100, T),
            signed(&k[0], "ETH", 10, T),
            signed(&k[1], "BTC", 102, T),
            signed(&k[2], "SOL", 1, T),
            signed(&k[2], "BTC", 101, T),
        ];
        let outcome = c.block(T, &list);
        assert_eq!(outcome.untracked.len(), 1);
        assert_eq!(outcome.untracked[0].position, 3);
        let [btc, eth] = &outcome.assets[..] else {
            panic!("two tracked assets")
        };
        assert_eq!(btc.aggregate.asset, asset("BTC"));
        assert_eq!(btc.guard.unwrap().verdict, GuardVerdict::Initial);
        assert_eq!((btc.mode, btc.mode_changed), (OracleMode::Fresh, true));
        assert_eq!((eth.mode, eth.mode_changed), (OracleMode::Stale, false));
        assert_eq!(
            c.state.index(&asset("BTC")),
            Some(UnitPrice::from_micros(101))
        );
        assert_eq!(c.state.index(&asset("ETH")), None);
        assert_eq!(
            c.state
                .records()
                .unattributed()
                .get(DropReason::AssetUnknown),
            1
        );
        // Validator 3 sent nothing: absent for both assets.
        let absent = c
            .state
            .records()
            .get(&c.set.keys()[c.set.index_of(&k[3].public_key()).unwrap()]);
        assert_eq!(absent.unwrap().absent, 2);
    }

    #[test]
    fn losing_quorum_turns_stale_and_keeps_the_index_then_recovers() {
        let mut c = Cluster::new(4);
        let k = c.keys.clone();
        let quorum: Vec<_> = (0..3).map(|v| signed(&k[v], "BTC", 1_000_000, T)).collect();
        c.block(T, &quorum);
        // A block without a quorum (a leader that left observations out) changes nothing
        // while the last quorum is within the observation age.
        let outcome = c.block(T + 1_000, &quorum[..2]);
        assert_eq!(
            (outcome.assets[0].mode, outcome.assets[0].mode_changed),
            (OracleMode::Fresh, false)
        );
        let outcome = c.block(T + 5_000, &[]);
        assert_eq!(outcome.assets[0].mode, OracleMode::Fresh);
        // Past it, the asset is stale.
        let outcome = c.block(T + 5_001, &quorum[..2]);
        assert_eq!(
            (outcome.assets[0].mode, outcome.assets[0].mode_changed),
            (OracleMode::Stale, true)
        );
        assert_eq!(outcome.assets[0].guard, None);
        assert_eq!(
            c.state.index(&asset("BTC")),
            Some(UnitPrice::from_micros(1_000_000))
        );
        // The same observations, now 6 s old, are stale even with all of them.
        let outcome = c.block(T + 6_000, &quorum);
        assert_eq!(
            outcome.assets[0]
                .aggregate
                .drop_counts
                .get(DropReason::Stale),
            3
        );
        let fresh: Vec<_> = (0..4)
            .map(|v| signed(&k[v], "BTC", 1_001_000, T + 6_500))
            .collect();
        let outcome = c.block(T + 7_000, &fresh);
        assert_eq!(
            (outcome.assets[0].mode, outcome.assets[0].mode_changed),
            (OracleMode::Fresh, true)
        );
        assert_eq!(
            c.state.index(&asset("BTC")),
            Some(UnitPrice::from_micros(1_001_000))
        );
    }

    #[test]
    fn state_round_trips_through_its_codec() {
        let mut c = Cluster::new(4);
        let k = c.keys.clone();
        let list: Vec<_> = (0..4)
            .map(|v| signed(&k[v], "ETH", 3_000 + v as i64, T))
            .collect();
        c.block(T, &list);
        let bytes = c.state.encode();
        assert_eq!(
            OracleState::decode_cfg(bytes.clone(), &64).unwrap(),
            c.state
        );
        assert!(
            OracleState::decode_cfg(bytes, &1).is_err(),
            "assets bound applies"
        );
    }

    #[test]
    fn tracking_is_bounded_and_idempotent() {
        let config = OracleConfig {
            assets_max: 1,
            ..OracleConfig::GENESIS
        };
        let mut state = OracleState::new();
        state.track(&config, asset("BTC")).unwrap();
        state.track(&config, asset("BTC")).unwrap();
        assert_eq!(
            state.track(&config, asset("ETH")),
            Err(StateError::TooManyAssets)
        );
    }
}
