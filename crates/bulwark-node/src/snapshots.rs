//! Exchange snapshots on this validator's disk.
//!
//! Owns: writing the finalized state every `snapshot_interval` blocks and reading the newest
//! usable one back at startup. The two newest snapshots are kept, under two keys written in
//! turn, through Commonware's `Metadata` (two blobs written alternately, each with a
//! checksum), so a crash mid-write leaves the previous write whole, and a snapshot that no
//! longer restores (a bug, an upgrade that cannot read it) falls back to the one before.
//! The snapshot carries its own digest too, which `Exchange::restore` checks.
//! The executor writes it between blocks from the finalized state it just published: an
//! immutable `Arc` shared with the chain, encoded without a copy and without the chain's lock
//! (propose, verify and the API go on meanwhile).
//! A failed storage operation is fatal: the node cannot promise what it cannot persist. It is
//! a typed [`StorageError`], never a panic: the executor halts the validator on it (logged,
//! and shown by the status and the API as `storage failure: ...`), and startup returns it.

use crate::sync::ServedSnapshot;
use bulwark_exchange::Exchange;
use commonware_codec::{RangeCfg, ReadExt};
use commonware_cryptography::sha256::Digest;
use commonware_runtime::{Clock, Metrics, Storage};
use commonware_storage::metadata::{Config, Metadata};
use commonware_utils::sequence::U64;

/// The two keys the newest two snapshots are kept under, written in turn.
const SNAPSHOT_KEYS: [u64; 2] = [0, 1];

/// Why the stored snapshot could not be used (startup then falls back to genesis and replay).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("stored snapshot is too short to hold its header")]
    Truncated,
    #[error("stored snapshot of height {claimed} does not restore: {error}")]
    Restore {
        claimed: u64,
        error: bulwark_exchange::SnapshotError,
    },
    #[error("stored snapshot claims height {claimed} but restores height {restored}")]
    HeightMismatch { claimed: u64, restored: u64 },
}

/// A storage operation on this validator's own disk failed (snapshots, marshal's archives,
/// the receipt archive). The validator stops: it cannot promise what it cannot persist.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("snapshot storage: {0}")]
    Snapshots(#[from] commonware_storage::metadata::Error),
    #[error("snapshot storage was lost after an earlier failure")]
    SnapshotsGone,
    #[error("{archive} archive: {error}")]
    Archive {
        archive: &'static str,
        error: commonware_storage::archive::Error,
    },
    #[error("{0}")]
    Receipts(#[from] crate::receipt_archive::ReceiptArchiveError),
    #[error("{0}")]
    Layout(#[from] crate::layout::LayoutError),
}

/// What the disk holds: the newest snapshot that restores, and why newer ones did not.
pub struct Loaded {
    pub usable: Option<(Exchange, Digest, ServedSnapshot)>,
    /// Every stored snapshot that did not restore, newest first.
    pub unusable: Vec<LoadError>,
}

/// The newest snapshots of the finalized state, on disk.
pub struct SnapshotStore<E: Storage + Clock + Metrics> {
    metadata: Option<Metadata<E, U64, Vec<u8>>>,
}

impl<E: Storage + Clock + Metrics> SnapshotStore<E> {
    /// Opens the store in `partition`, accepting snapshots up to `bytes_max`.
    pub async fn init(
        context: E,
        partition: String,
        bytes_max: usize,
    ) -> Result<Self, StorageError> {
        let config = Config {
            partition,
            codec_config: (RangeCfg::new(0..=bytes_max), ()),
        };
        let metadata = Metadata::init(context, config).await?;
        Ok(Self {
            metadata: Some(metadata),
        })
    }

    /// The newest stored snapshot that restores (the exchange state, the digest of the block
    /// it follows, and its bytes as served to syncing peers), and what did not restore; nothing
    /// once a failed write lost the store.
    pub fn load(&self) -> Loaded {
        let mut loaded = Loaded {
            usable: None,
            unusable: Vec::new(),
        };
        let Some(metadata) = self.metadata.as_ref() else {
            return loaded;
        };
        let mut decoded: Vec<Result<(Exchange, Digest, ServedSnapshot), LoadError>> = SNAPSHOT_KEYS
            .iter()
            .filter_map(|key| metadata.get(&U64::new(*key)))
            .map(|bytes| decode(bytes))
            .collect();
        // Newest first: by the height each claims (a record too short to claim one, last).
        decoded.sort_by_key(|d| std::cmp::Reverse(claimed_height(d)));
        for result in decoded {
            match result {
                Ok(snapshot) if loaded.usable.is_none() => loaded.usable = Some(snapshot),
                Ok(_) => {}
                Err(error) => loaded.unusable.push(error),
            }
        }
        loaded
    }

    /// Persists the finalized state after block `digest` in place of the older of the two
    /// kept; returns once it is synced, with the snapshot as served to syncing peers.
    pub async fn save(
        &mut self,
        exchange: &Exchange,
        digest: Digest,
    ) -> Result<ServedSnapshot, StorageError> {
        let served = ServedSnapshot::new(exchange.height().get(), exchange.snapshot());
        self.save_served(&served, digest).await?;
        Ok(served)
    }

    /// Persists a snapshot already encoded (and hashed) as it is served: the state after
    /// block `digest`.
    pub async fn save_served(
        &mut self,
        served: &ServedSnapshot,
        digest: Digest,
    ) -> Result<(), StorageError> {
        let mut bytes = Vec::with_capacity(40 + served.bytes.len());
        bytes.extend_from_slice(&served.height.to_be_bytes());
        bytes.extend_from_slice(digest.as_ref());
        bytes.extend_from_slice(&served.bytes);
        self.put(bytes).await
    }

    /// Persists a state synced from peers under both keys, so the snapshot a damaged newest
    /// one falls back to is never one from before the sync: marshal's floor moved to this
    /// state and pruned the blocks below it, so an older state could not be replayed forward.
    pub async fn save_floor(
        &mut self,
        exchange: &Exchange,
        digest: Digest,
    ) -> Result<ServedSnapshot, StorageError> {
        self.save(exchange, digest).await?;
        let served = self.save(exchange, digest).await?;
        let loaded = self.load();
        assert!(
            loaded.usable.as_ref().map(|(e, _, _)| e.height()) == Some(exchange.height()),
            "the synced state is the newest stored"
        );
        Ok(served)
    }

    /// Writes a stored record over the older (or a missing) key. A failed sync loses the
    /// store (Commonware's `Metadata` is consumed by it): every later write fails too.
    async fn put(&mut self, record: Vec<u8>) -> Result<(), StorageError> {
        let mut metadata = self.metadata.take().ok_or(StorageError::SnapshotsGone)?;
        let height_of = |key: u64| {
            metadata
                .get(&U64::new(key))
                .and_then(|b| b.get(..8))
                .map(|h| u64::from_be_bytes(h.try_into().expect("8 bytes")))
        };
        let key = SNAPSHOT_KEYS
            .into_iter()
            .min_by_key(|key| height_of(*key).map_or((0, 0), |h| (1, h)))
            .expect("two keys");
        metadata.put(U64::new(key), record);
        self.metadata = Some(metadata.sync().await?);
        Ok(())
    }

    /// Unit-test builds only: overwrites the newest stored record (of two at one height, the
    /// one under the higher key) with `bytes`, as a disk fault or a bug would.
    #[cfg(test)]
    pub async fn corrupt_newest(&mut self, bytes: Vec<u8>) {
        let metadata = self.metadata.as_ref().expect("store open");
        let newest = SNAPSHOT_KEYS
            .into_iter()
            .filter_map(|key| {
                let height = metadata.get(&U64::new(key))?.get(..8)?;
                Some((u64::from_be_bytes(height.try_into().ok()?), key))
            })
            .max()
            .map(|(_, key)| key)
            .expect("a stored snapshot");
        let mut metadata = self.metadata.take().expect("store open");
        metadata.put(U64::new(newest), bytes);
        self.metadata = Some(metadata.sync().await.expect("written"));
    }
}

fn claimed_height(decoded: &Result<(Exchange, Digest, ServedSnapshot), LoadError>) -> u64 {
    match decoded {
        Ok((exchange, _, _)) => exchange.height().get(),
        Err(LoadError::HeightMismatch { claimed, .. }) => *claimed,
        Err(LoadError::Restore { claimed, .. }) => *claimed,
        Err(LoadError::Truncated) => 0,
    }
}

fn decode(bytes: &[u8]) -> Result<(Exchange, Digest, ServedSnapshot), LoadError> {
    if bytes.len() < 8 + 32 {
        return Err(LoadError::Truncated);
    }
    let claimed = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let digest = Digest::read(&mut commonware_codec::Copying(&bytes[8..40]))
        .map_err(|_| LoadError::Truncated)?;
    let exchange =
        Exchange::restore(&bytes[40..]).map_err(|error| LoadError::Restore { claimed, error })?;
    if exchange.height().get() != claimed {
        return Err(LoadError::HeightMismatch {
            claimed,
            restored: exchange.height().get(),
        });
    }
    let served = ServedSnapshot::new(claimed, bytes[40..].to_vec());
    Ok((exchange, digest, served))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::{Block, BlockTime, Height, PriceInputs};
    use commonware_cryptography::{Hasher as _, Sha256};
    use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn state_at(height: u64) -> Exchange {
        let mut exchange = crate::test_support::genesis_exchange();
        for h in 1..=height {
            let block = Block {
                height: Height::new(h),
                time: BlockTime::from_millis(1_000 + h),
                prices: PriceInputs::default(),
                observations: Vec::new(),
                txs: Vec::new(),
            };
            let checked = block.check_signatures(&mut ChaCha8Rng::seed_from_u64(h));
            exchange.apply_block(&checked).unwrap();
        }
        exchange
    }

    /// The two newest snapshots are kept; when the newest no longer restores, the one before
    /// is used and the failure reported; when none restores, nothing is, and that is reported
    /// too (startup then syncs from peers instead of replaying quietly from genesis).
    #[test]
    fn a_snapshot_that_does_not_restore_falls_back_to_the_previous_one() {
        deterministic::Runner::default().start(|context| async move {
            let mut store =
                SnapshotStore::init(context.child("snapshots"), "snapshots".into(), 1 << 20)
                    .await
                    .expect("opens");
            assert!(store.load().usable.is_none() && store.load().unusable.is_empty());
            for height in [1u64, 2, 3] {
                let digest = Sha256::hash(&[&height.to_be_bytes()]);
                store.save(&state_at(height), digest).await.expect("saves");
            }
            let loaded = store.load();
            let (newest, digest, served) = loaded.usable.expect("a snapshot");
            assert_eq!(newest.height().get(), 3);
            assert_eq!(digest, Sha256::hash(&[&3u64.to_be_bytes()]));
            assert_eq!(served.height, 3);

            // The newest is damaged (its snapshot no longer restores): height 2 is used.
            let mut damaged = 3u64.to_be_bytes().to_vec();
            damaged.extend_from_slice(digest.as_ref());
            damaged.extend_from_slice(b"not a snapshot at all, but long enough to try");
            store.corrupt_newest(damaged).await;
            let loaded = store.load();
            assert_eq!(loaded.usable.expect("the previous").0.height().get(), 2);
            assert!(matches!(
                loaded.unusable.as_slice(),
                [LoadError::Restore { claimed: 3, .. }]
            ));

            // Truncated instead: still the previous one.
            store.corrupt_newest(vec![0; 3]).await;
            let loaded = store.load();
            assert_eq!(loaded.usable.expect("the previous").0.height().get(), 2);
            assert!(matches!(loaded.unusable.as_slice(), [LoadError::Truncated]));

            // Both damaged: nothing usable, both reported.
            store.corrupt_newest(vec![1; 5]).await;
            let loaded = store.load();
            assert!(loaded.usable.is_none());
            assert_eq!(loaded.unusable.len(), 2);

            // Saving again replaces the older record and is used.
            store
                .save(&state_at(4), Sha256::hash(&[b"4"]))
                .await
                .expect("saves");
            assert_eq!(store.load().usable.unwrap().0.height().get(), 4);

            // A synced state is kept under both keys: a damaged copy falls back to the other,
            // never to the state from before the sync (its next blocks are pruned).
            store
                .save_floor(&state_at(9), Sha256::hash(&[b"9"]))
                .await
                .expect("saves");
            store.corrupt_newest(vec![2; 7]).await;
            let loaded = store.load();
            assert_eq!(loaded.usable.expect("the other copy").0.height().get(), 9);
            assert_eq!(loaded.unusable.len(), 1);
        });
    }

    /// A disk whose syncs fail: saving returns a typed error instead of panicking, and every
    /// later save says the store was lost; what was stored before is not claimed as saved.
    #[test]
    fn a_failed_snapshot_write_is_a_typed_error_not_a_panic() {
        deterministic::Runner::default().start(|context| async move {
            let mut store =
                SnapshotStore::init(context.child("snapshots"), "snapshots".into(), 1 << 20)
                    .await
                    .expect("opens");
            store
                .save(&state_at(1), Sha256::hash(&[b"1"]))
                .await
                .expect("saves");
            let every = commonware_utils::Probability::new(1, 1).expect("a probability");
            context.storage_fault_config().write().sync_rate = Some(every);
            let failed = store.save(&state_at(2), Sha256::hash(&[b"2"])).await;
            assert!(
                matches!(failed, Err(StorageError::Snapshots(_))),
                "{:?}",
                failed.err()
            );
            context.storage_fault_config().write().sync_rate = None;
            let again = store.save(&state_at(3), Sha256::hash(&[b"3"])).await;
            assert!(matches!(again, Err(StorageError::SnapshotsGone)));
            assert!(store.load().usable.is_none(), "a lost store claims nothing");
        });
    }
}
