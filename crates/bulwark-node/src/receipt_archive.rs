//! Durable receipts: every finalized transaction's height, index in its block and outcome, on
//! this validator's disk, so a validator restarted after a `kill -9` still answers
//! `GET /tx/{digest}` for transactions finalized before its restart.
//!
//! Owns: a Commonware prunable archive (`{prefix}-receipts-*` partitions) keyed by transaction
//! digest and indexed by block height (every transaction of a block at the block's height), and
//! the task that answers lookups from the API through a bounded queue.
//! Never: holds events (they are rebuilt from nothing after a restart, so a durable receipt
//! carries none), stores anything not finalized, or lets a snapshot be written before the
//! receipts of the blocks it covers are synced to disk (the executor awaits
//! [`ReceiptArchive::sync`] first). Receipts of blocks above the newest snapshot are written
//! but not synced: a crash may lose them, and the restarted validator rebuilds them, because it
//! replays every finalized block above the snapshot it restores. (A sync per block cost two
//! fsyncs a block on each validator, on the path to every acknowledgement.)
//! Bounds: one receipt per transaction of a finalized block (at most the block's `txs_max`);
//! about 70 bytes of disk and 40 bytes of memory per retained receipt; receipts below
//! `newest snapshot - max(archive_retention, RECEIPT_RETENTION_BLOCKS)` are pruned at each
//! snapshot, so a validator keeps at least every receipt its snapshots and archive cover.

use crate::mempool::TxDigest;
use bulwark_exchange::BlockOutcome;
use bulwark_types::RejectReason;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Metrics, Spawner, Storage};
use commonware_storage::archive::{Archive as _, Identifier, MultiArchive as _, prunable};
use commonware_storage::translator::EightCap;
use commonware_utils::{NZU16, NZU64, NZUsize};
use futures::channel::{mpsc, oneshot};
use futures::lock::Mutex as AsyncMutex;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;

/// Keep at least this many blocks of receipts (more if the archive of blocks keeps more):
/// 100,000 blocks is about 3 hours at 10 blocks a second.
pub const RECEIPT_RETENTION_BLOCKS: u64 = 100_000;

/// Lookups the API may have waiting for the archive task.
pub const RECEIPT_QUERIES_MAX: usize = 256;

/// One finalized transaction's place and verdict, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReceipt {
    pub height: u64,
    /// Position in its block.
    pub index: u32,
    /// Why it was refused; `None` if it applied.
    pub rejection: Option<RejectReason>,
}

impl Write for StoredReceipt {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.index.write(buf);
        self.rejection.write(buf);
    }
}

impl EncodeSize for StoredReceipt {
    fn encode_size(&self) -> usize {
        8 + 4 + self.rejection.encode_size()
    }
}

impl Read for StoredReceipt {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            height: u64::read(buf)?,
            index: u32::read(buf)?,
            rejection: Option::<RejectReason>::read(buf)?,
        })
    }
}

/// A lookup from the API: the stored receipt of each of `digests` (at most
/// `RECEIPT_DIGESTS_PER_QUERY_MAX`), if any, goes back on `reply`, in order.
pub struct ReceiptQuery {
    pub digests: Vec<TxDigest>,
    pub reply: oneshot::Sender<Vec<Option<StoredReceipt>>>,
}

/// Digests in one query: the API's batch bound.
pub const RECEIPT_DIGESTS_PER_QUERY_MAX: usize = 1_024;

type Inner<E> = prunable::Archive<EightCap, E, TxDigest, StoredReceipt>;

/// A failed write or read of the receipt archive. Fatal to the validator, like marshal's.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptArchiveError {
    #[error("receipt archive: {0}")]
    Storage(#[from] commonware_storage::archive::Error),
    #[error("receipt archive was lost after an earlier failure")]
    Gone,
    #[error("receipt archive sync: {0}")]
    Sync(commonware_runtime::Error),
}

/// The receipt archive, shared by the executor (writes) and the lookup task (reads).
pub struct ReceiptArchive<E: Storage + Clock + Metrics> {
    inner: Arc<AsyncMutex<Option<Inner<E>>>>,
}

impl<E: Storage + Clock + Metrics> Clone for ReceiptArchive<E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Storage + Clock + Metrics> ReceiptArchive<E> {
    /// Opens (or creates) the archive under `prefix`. A disk that cannot be read stops startup
    /// (the error, not a panic).
    pub async fn init(context: E, prefix: &str) -> Result<Self, ReceiptArchiveError> {
        let config = prunable::Config {
            translator: EightCap,
            metadata_partition: format!("{prefix}-receipts-metadata"),
            key_partition: format!("{prefix}-receipts-key"),
            key_page_cache: CacheRef::new(NZU16!(4096), NZUsize!(64)),
            value_partition: format!("{prefix}-receipts-value"),
            compression: None,
            codec_config: (),
            // Sections of 1,024 heights: the granularity of pruning.
            items_per_section: NZU64!(1024),
            key_write_buffer: NZUsize!(256 * 1024),
            value_write_buffer: NZUsize!(256 * 1024),
            replay_buffer: NZUsize!(1024 * 1024),
        };
        let archive = Inner::init(context, config).await?;
        Ok(Self {
            inner: Arc::new(AsyncMutex::new(Some(archive))),
        })
    }

    /// Stores the receipt of every transaction of the finalized block at `height` (by their
    /// [`tx_digest`]s `digests`, in block order), unsynced (see the module docs). A receipt
    /// already stored (the block was executed before a crash, and is replayed) is not stored
    /// twice.
    pub async fn record_block(
        &self,
        height: u64,
        digests: &[TxDigest],
        outcome: &BlockOutcome,
    ) -> Result<(), ReceiptArchiveError> {
        assert_eq!(
            digests.len(),
            outcome.txs.len(),
            "one outcome per transaction"
        );
        if digests.is_empty() {
            return Ok(());
        }
        let mut guard = self.inner.lock().await;
        let mut archive = guard.take().ok_or(ReceiptArchiveError::Gone)?;
        // Only a replayed block can find its height already stored.
        let replayed = archive.last_index().is_some_and(|last| last >= height);
        for (index, &digest) in digests.iter().enumerate() {
            if replayed && archive.has_at(height, &digest).await? {
                continue;
            }
            let receipt = StoredReceipt {
                height,
                index: index as u32,
                rejection: outcome.txs[index].rejection,
            };
            archive = archive.put_multi(height, digest, &receipt).await?;
        }
        *guard = Some(archive);
        Ok(())
    }

    /// Syncs every receipt stored so far to disk (before a snapshot covering them is written).
    pub async fn sync(&self) -> Result<(), ReceiptArchiveError> {
        let mut guard = self.inner.lock().await;
        let archive = guard.take().ok_or(ReceiptArchiveError::Gone)?;
        // Wait for the disk outside the lock, so lookups are not held up by the fsync.
        let (archive, synced) = archive.start_sync().await?;
        *guard = Some(archive);
        drop(guard);
        synced.await.map_err(ReceiptArchiveError::Sync)
    }

    /// Forgets receipts of blocks below `floor` (rounded down to a section of 1,024 heights).
    pub async fn prune(&self, floor: u64) -> Result<(), ReceiptArchiveError> {
        let mut guard = self.inner.lock().await;
        let archive = guard.take().ok_or(ReceiptArchiveError::Gone)?;
        *guard = Some(archive.prune(floor).await?);
        Ok(())
    }

    /// The stored receipt of `digest`, if this validator has one.
    pub async fn get(
        &self,
        digest: &TxDigest,
    ) -> Result<Option<StoredReceipt>, ReceiptArchiveError> {
        Ok(self.get_many(std::slice::from_ref(digest)).await?.remove(0))
    }

    /// The stored receipt of each of `digests`, in order, under one hold of the lock.
    pub async fn get_many(
        &self,
        digests: &[TxDigest],
    ) -> Result<Vec<Option<StoredReceipt>>, ReceiptArchiveError> {
        let guard = self.inner.lock().await;
        let archive = guard.as_ref().ok_or(ReceiptArchiveError::Gone)?;
        let mut found = Vec::with_capacity(digests.len());
        for digest in digests {
            found.push(archive.get(Identifier::Key(digest)).await?);
        }
        Ok(found)
    }
}

/// The queue the API sends lookups on, and the task end that answers them.
pub fn query_channel() -> (mpsc::Sender<ReceiptQuery>, mpsc::Receiver<ReceiptQuery>) {
    mpsc::channel(RECEIPT_QUERIES_MAX)
}

/// Answers the API's lookups from the archive until every sender is gone. A read failure
/// answers "unknown" and is logged; it never stops the validator.
pub fn serve<E: Storage + Clock + Metrics + Spawner>(
    context: E,
    archive: ReceiptArchive<E>,
    mut queries: mpsc::Receiver<ReceiptQuery>,
) -> commonware_runtime::Handle<()> {
    context.spawn(move |_| async move {
        while let Some(query) = queries.next().await {
            let digests = &query.digests[..query.digests.len().min(RECEIPT_DIGESTS_PER_QUERY_MAX)];
            let found = match archive.get_many(digests).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::error!(%error, "receipt lookup failed");
                    vec![None; digests.len()]
                }
            };
            // The asker may have timed out and gone; nothing to do then.
            let _ = query.reply.send(found);
        }
    })
}

/// Asks the lookup task for `digest`'s stored receipt; `None` if it has none or is gone.
pub async fn lookup(sender: mpsc::Sender<ReceiptQuery>, digest: TxDigest) -> Option<StoredReceipt> {
    lookup_many(sender, vec![digest]).await.pop().flatten()
}

/// Asks the lookup task for each of `digests`' stored receipts, in order (at most
/// `RECEIPT_DIGESTS_PER_QUERY_MAX`; `None` for the rest, and for all if the task is gone).
pub async fn lookup_many(
    mut sender: mpsc::Sender<ReceiptQuery>,
    digests: Vec<TxDigest>,
) -> Vec<Option<StoredReceipt>> {
    let count = digests.len();
    let (reply, answer) = oneshot::channel();
    if sender.send(ReceiptQuery { digests, reply }).await.is_err() {
        return vec![None; count];
    }
    let mut found = answer.await.unwrap_or_default();
    found.resize(count, None);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};
    use commonware_cryptography::{Hasher, Sha256};
    use commonware_runtime::{Runner, Supervisor as _, deterministic};

    #[test]
    fn stored_receipt_round_trips_with_and_without_rejection() {
        for rejection in [None, Some(RejectReason::NonceNotIncreasing)] {
            let receipt = StoredReceipt {
                height: 7,
                index: 3,
                rejection,
            };
            let bytes = receipt.encode();
            assert_eq!(bytes.len(), receipt.encode_size());
            assert_eq!(StoredReceipt::decode(bytes).expect("decodes"), receipt);
        }
    }

    #[test]
    fn receipts_survive_reopening_and_prune_by_height() {
        deterministic::Runner::default().start(|context| async move {
            let digest = Sha256::hash(&[b"tx"]);
            let receipt = StoredReceipt {
                height: 5,
                index: 1,
                rejection: None,
            };
            {
                let archive = ReceiptArchive::init(context.child("a"), "v0")
                    .await
                    .expect("opens");
                let mut guard = archive.inner.lock().await;
                let inner = guard.take().expect("open");
                let inner = inner.put_multi(5, digest, &receipt).await.expect("put");
                *guard = Some(inner.sync().await.expect("sync"));
            }
            let archive = ReceiptArchive::init(context.child("b"), "v0")
                .await
                .expect("opens");
            assert_eq!(archive.get(&digest).await.expect("reads"), Some(receipt));
            archive.prune(2_048).await.expect("prunes");
            assert_eq!(archive.get(&digest).await.expect("reads"), None);
        });
    }
}
