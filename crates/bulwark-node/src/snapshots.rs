//! Exchange snapshots on this validator's disk.
//!
//! Owns: writing the finalized state every `snapshot_interval` blocks and reading the newest
//! one back at startup. Stored through Commonware's `Metadata` (two blobs written
//! alternately, each with a checksum), so a crash mid-write leaves the previous snapshot
//! whole; the snapshot carries its own digest too, which `Exchange::restore` checks.
//! A failed storage write is fatal: the node cannot promise what it cannot persist.

use crate::sync::ServedSnapshot;
use bulwark_exchange::Exchange;
use commonware_codec::{RangeCfg, ReadExt};
use commonware_cryptography::sha256::Digest;
use commonware_runtime::{Clock, Metrics, Storage};
use commonware_storage::metadata::{Config, Metadata};
use commonware_utils::sequence::U64;

/// The one key under which the newest snapshot is kept.
const SNAPSHOT_KEY: u64 = 0;

/// Why the stored snapshot could not be used (startup then falls back to genesis and replay).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("stored snapshot is too short to hold its header")]
    Truncated,
    #[error("stored snapshot does not restore: {0}")]
    Restore(#[from] bulwark_exchange::SnapshotError),
    #[error("stored snapshot claims height {claimed} but restores height {restored}")]
    HeightMismatch { claimed: u64, restored: u64 },
}

/// The newest snapshot of the finalized state, on disk.
pub struct SnapshotStore<E: Storage + Clock + Metrics> {
    metadata: Option<Metadata<E, U64, Vec<u8>>>,
}

impl<E: Storage + Clock + Metrics> SnapshotStore<E> {
    /// Opens the store in `partition`, accepting snapshots up to `bytes_max`.
    pub async fn init(context: E, partition: String, bytes_max: usize) -> Self {
        let config = Config {
            partition,
            codec_config: (RangeCfg::new(0..=bytes_max), ()),
        };
        let metadata = Metadata::init(context, config)
            .await
            .expect("snapshot storage must open");
        Self {
            metadata: Some(metadata),
        }
    }

    /// The newest snapshot: the exchange state, the digest of the block it follows, and its
    /// bytes as served to syncing peers.
    pub fn load(&self) -> Option<Result<(Exchange, Digest, ServedSnapshot), LoadError>> {
        let bytes = self
            .metadata
            .as_ref()
            .expect("store open")
            .get(&U64::new(SNAPSHOT_KEY))?;
        Some(decode(bytes))
    }

    /// Persists the finalized state after block `digest`; returns once it is synced, with
    /// the snapshot as served to syncing peers.
    pub async fn save(&mut self, exchange: &Exchange, digest: Digest) -> ServedSnapshot {
        let snapshot = exchange.snapshot();
        let mut bytes = Vec::with_capacity(40 + snapshot.len());
        bytes.extend_from_slice(&exchange.height().get().to_be_bytes());
        bytes.extend_from_slice(digest.as_ref());
        bytes.extend_from_slice(&snapshot);
        let mut metadata = self.metadata.take().expect("store open");
        metadata.put(U64::new(SNAPSHOT_KEY), bytes);
        self.metadata = Some(
            metadata
                .sync()
                .await
                .expect("snapshot storage write failed"),
        );
        ServedSnapshot::new(exchange.height().get(), snapshot)
    }
}

fn decode(bytes: &[u8]) -> Result<(Exchange, Digest, ServedSnapshot), LoadError> {
    if bytes.len() < 8 + 32 {
        return Err(LoadError::Truncated);
    }
    let claimed = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let digest = Digest::read(&mut commonware_codec::Copying(&bytes[8..40]))
        .map_err(|_| LoadError::Truncated)?;
    let exchange = Exchange::restore(&bytes[40..])?;
    if exchange.height().get() != claimed {
        return Err(LoadError::HeightMismatch {
            claimed,
            restored: exchange.height().get(),
        });
    }
    let served = ServedSnapshot::new(claimed, bytes[40..].to_vec());
    Ok((exchange, digest, served))
}
