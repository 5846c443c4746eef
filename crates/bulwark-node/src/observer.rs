//! The validator's part in the price oracle: it observes each tracked underlying from its own
//! price sources, signs the observation, and sends it to every validator; it keeps every
//! validator's newest observation of each underlying, so that whichever validator leads puts
//! the fresh ones in its block.
//!
//! Owns: [`ObservationPool`] (newest signed observation per validator and asset) and the
//! observe/send and receive loops on the observation channel. A validator reads all its
//! configured sources each round and observes only what a majority of them agree on
//! ([`bulwark_oracle::observe_sources`], [`ObserverConfig::quorum`]); otherwise it sends
//! nothing for that underlying and the oracle's quorum of validators decides without it.
//! Each observation's signature is verified once, on arrival; its verdict is remembered
//! ([`crate::verdicts`]) for the blocks that carry it.
//! Never: judges prices (the exchange's oracle step does, identically on every validator), or
//! keeps an observation from a non-validator or with a bad signature; a peer that sends
//! undecodable bytes is blocked.
//! Bounds: the pool holds at most one observation per (validator, asset); a message carries
//! at most [`BATCH_MAX`] observations; a validator reads 1 to [`SOURCES_MAX`] sources.

use crate::shared::{Shared, lock};
use bulwark_oracle::{PriceSource, SOURCES_MAX, SourceQuorum, observe_sources};
use bulwark_types::{AssetCode, BlockTime, PrivateKey, PublicKey, SignedObservation};
use bytes::Buf as _;
use commonware_codec::{Encode, Error as CodecError};
use commonware_cryptography::Signer as _;
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Handle, Spawner, Supervisor};
use rand_core::CryptoRng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Most observations in one message.
pub const BATCH_MAX: usize = 64;

/// Observation settings.
#[derive(Copy, Clone, Debug)]
pub struct ObserverConfig {
    /// How often this validator observes and sends.
    pub interval: Duration,
    /// Observations older than this (by their own timestamps, against the block's time) are
    /// not put in blocks; the oracle's own bound (`observation_age_ms_max`) or less.
    pub age_max: Duration,
    /// When this validator's sources make an observation: a majority of them answering and
    /// agreeing within a band ([`SourceQuorum::DEFAULT`]: 1%). With one source, that one.
    pub quorum: SourceQuorum,
}

/// The newest observation of each validator for each asset.
#[derive(Debug)]
pub struct ObservationPool {
    validators: Vec<PublicKey>,
    newest: BTreeMap<(PublicKey, AssetCode), SignedObservation>,
}

impl ObservationPool {
    pub fn new(mut validators: Vec<PublicKey>) -> Self {
        validators.sort();
        Self {
            validators,
            newest: BTreeMap::new(),
        }
    }

    /// Keeps `observation` if it comes from a validator and is newer than what the pool holds
    /// of that validator and asset. The caller has verified its signature.
    pub fn offer(&mut self, observation: SignedObservation) -> bool {
        let o = &observation.observation;
        if self.validators.binary_search(&o.validator).is_err() {
            return false;
        }
        let key = (o.validator.clone(), o.asset);
        if self
            .newest
            .get(&key)
            .is_some_and(|held| held.observation.observed_at_ms >= o.observed_at_ms)
        {
            return false;
        }
        self.newest.insert(key, observation);
        true
    }

    /// The observations a block at `time` should carry: every held one made within `age_max`
    /// before it (and not after it), in (validator, asset) order.
    pub fn fresh(&self, time: BlockTime, age_max: Duration) -> Vec<SignedObservation> {
        let now = time.millis();
        let oldest = now.saturating_sub(age_max.as_millis() as u64);
        self.newest
            .values()
            .filter(|s| (oldest..=now).contains(&s.observation.observed_at_ms))
            .cloned()
            .collect()
    }

    /// The proposer's duty for the observations a block carries, checked by every verifier:
    /// each from a validator, validly signed (`verdicts`, one per observation), and at most one
    /// per validator and underlying. [`ObservationPool::fresh`] always satisfies it; a block
    /// that breaks it gets no vote, so a leader cannot make every validator verify a block's
    /// worth of junk signatures, or weigh one validator's view twice.
    pub fn block_observations_valid(
        &self,
        observations: &[SignedObservation],
        verdicts: &[bool],
    ) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        observations.len() == verdicts.len()
            && observations.iter().zip(verdicts).all(|(s, valid)| {
                let o = &s.observation;
                *valid
                    && self.validators.binary_search(&o.validator).is_ok()
                    && seen.insert((o.validator.clone(), o.asset))
            })
    }

    pub fn len(&self) -> usize {
        self.newest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }
}

/// Starts observing and exchanging observations: each round, every underlying the exchange's
/// oracle tracks (read from the newest state) is observed from all of `sources` under
/// `config.quorum`. Panics on no source or more than [`SOURCES_MAX`] (a configuration bug).
#[allow(clippy::too_many_arguments)]
pub fn start<E, S, R, B>(
    context: E,
    shared: Arc<Shared>,
    signer: PrivateKey,
    mut sources: Vec<Box<dyn PriceSource + Send>>,
    (mut sender, mut receiver): (S, R),
    config: ObserverConfig,
    mut blocker: B,
) -> Vec<Handle<()>>
where
    E: Spawner + Clock + Supervisor + CryptoRng,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    assert!(
        (1..=SOURCES_MAX).contains(&sources.len()),
        "1 to {SOURCES_MAX} price sources"
    );
    let me = signer.public_key();
    let observe_shared = shared.clone();
    let observe = context.child("observe").spawn(move |context| async move {
        loop {
            context.sleep(config.interval).await;
            let now = crate::app::now_ms(&context);
            let assets: Vec<AssetCode> = {
                let chain = lock(&observe_shared.chain);
                match chain.newest().oracle_state() {
                    Some(state) => state.assets().map(|(a, _)| *a).collect(),
                    None => Vec::new(),
                }
            };
            let mut batch = Vec::with_capacity(assets.len());
            for asset in assets.into_iter().take(BATCH_MAX) {
                let mut views: Vec<&mut dyn PriceSource> = sources
                    .iter_mut()
                    .map(|s| s.as_mut() as &mut dyn PriceSource)
                    .collect();
                if let Some(observation) =
                    observe_sources(&me, asset, now, &mut views, config.quorum)
                {
                    batch.push(observation.sign(&signer));
                }
            }
            if batch.is_empty() {
                continue;
            }
            {
                // Signed here: valid, and known so when it comes back in a block.
                let mut verdicts = lock(&observe_shared.signatures);
                for observation in &batch {
                    verdicts.insert_observation(observation);
                }
                drop(verdicts);
                let mut pool = lock(&observe_shared.observations);
                for observation in &batch {
                    pool.offer(observation.clone());
                }
            }
            sender.send(Recipients::All, batch.encode(), false);
        }
    });
    let receive = context
        .child("observations_receive")
        .spawn(move |mut context| async move {
            while let Ok((peer, message)) = receiver.recv().await {
                let mut message = message;
                let batch = shared
                    .keys
                    .read_list(&mut message, BATCH_MAX, |k, b| k.read_signed_observation(b));
                let Ok(batch) = batch.and_then(|batch| {
                    if message.has_remaining() {
                        Err(CodecError::ExtraData(message.remaining()))
                    } else {
                        Ok(batch)
                    }
                }) else {
                    tracing::warn!(?peer, "undecodable observations; blocking the peer");
                    let _ = blocker.block(peer);
                    continue;
                };
                // Verified once, here: the verdict is remembered for the blocks that carry it.
                let verdicts = bulwark_types::observation::verify_batch(&mut context, &batch);
                {
                    let mut cache = lock(&shared.signatures);
                    for (observation, valid) in batch.iter().zip(&verdicts) {
                        if *valid {
                            cache.insert_observation(observation);
                        }
                    }
                }
                let mut pool = lock(&shared.observations);
                for (observation, valid) in batch.into_iter().zip(verdicts) {
                    if valid {
                        pool.offer(observation);
                    }
                }
            }
        });
    vec![observe, receive]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::{Observation, UnitPrice};

    fn observation(key: &PrivateKey, at_ms: u64) -> SignedObservation {
        Observation {
            validator: key.public_key(),
            asset: AssetCode::parse("BTC").unwrap(),
            price: UnitPrice::from_usdc(100_000),
            observed_at_ms: at_ms,
            sources: 1,
        }
        .sign(key)
    }

    #[test]
    fn the_pool_keeps_each_validators_newest_and_serves_the_fresh_ones() {
        let keys: Vec<PrivateKey> = (0..3).map(PrivateKey::from_seed).collect();
        let mut pool = ObservationPool::new(keys[..2].iter().map(|k| k.public_key()).collect());
        assert!(pool.offer(observation(&keys[0], 1_000)));
        assert!(!pool.offer(observation(&keys[0], 900)), "older than held");
        assert!(pool.offer(observation(&keys[0], 2_000)));
        assert!(!pool.offer(observation(&keys[2], 2_000)), "not a validator");
        assert!(pool.offer(observation(&keys[1], 500)));
        assert_eq!(pool.len(), 2);
        let fresh = pool.fresh(BlockTime::from_millis(3_000), Duration::from_millis(1_500));
        assert_eq!(fresh.len(), 1, "validator 1's is too old");
        assert_eq!(fresh[0].observation.observed_at_ms, 2_000);
        assert!(
            pool.fresh(BlockTime::from_millis(1_500), Duration::from_secs(5))
                .iter()
                .all(|o| o.observation.observed_at_ms <= 1_500),
            "none from after the block"
        );
    }

    #[test]
    fn a_block_s_observations_must_be_validators_valid_and_one_each() {
        let keys: Vec<PrivateKey> = (0..3).map(PrivateKey::from_seed).collect();
        let pool = ObservationPool::new(keys[..2].iter().map(|k| k.public_key()).collect());
        let honest = vec![observation(&keys[0], 1_000), observation(&keys[1], 1_000)];
        assert!(pool.block_observations_valid(&honest, &[true, true]));
        assert!(pool.block_observations_valid(&[], &[]));
        assert!(
            !pool.block_observations_valid(&honest, &[true, false]),
            "a bad signature"
        );
        let twice = vec![observation(&keys[0], 1_000), observation(&keys[0], 1_100)];
        assert!(
            !pool.block_observations_valid(&twice, &[true, true]),
            "one validator twice"
        );
        let stranger = vec![observation(&keys[2], 1_000)];
        assert!(
            !pool.block_observations_valid(&stranger, &[true]),
            "not a validator"
        );
        assert!(
            !pool.block_observations_valid(&honest, &[true]),
            "verdicts missing"
        );
    }
}
