//! A validator's own disk: the runtime's storage, which the lab's `disk-fault` makes fail for
//! that validator alone.
//!
//! Owns: [`DiskFault`] (one validator's failure plan, shared with the lab), [`DiskBlob`] (the
//! runtime's blob behind that plan) and [`fail_stop`] (the validator's tasks run inside it: a
//! panic after its disk failed stops that task quietly; any other panic goes on to the
//! runtime, which aborts the run as before).
//! Never: fails anything while no plan is armed (every operation is forwarded unchanged), or
//! fails an operation of another validator (each has its own [`DiskFault`]); draws from the
//! runtime's randomness (its own ChaCha8 stream, seeded by the lab from the run's seed, so the
//! same seed fails the same operations).
//! Bounds: a failing write keeps at most a strict prefix of its bytes; once one operation has
//! failed, every later one fails too until the plan is disarmed (a failed disk stays failed:
//! the validator must stop, not go on over a half-written disk). While a plan is armed, each
//! blob keeps an undo record of what it wrote and resized since its last successful sync
//! (the bytes it overwrote, its length before), at most the bytes the validator writes in
//! the fault's window: [`DiskFault::lose_unsynced`] (the lab calls it at the heal, before the
//! restart, when the stopped validator's blobs are long closed) reopens those blobs and
//! undoes them, as a power cut loses what was never
//! synced; a torn write's kept prefix survives it (it reached the platter). A removal is
//! taken as durable at once.
//!
//! A plan may lie instead ([`DiskPlan::lie`]): a read it picks answers its bytes with one bit
//! flipped and what is stored stays true; or (a disk that rots) a write it picks stores its
//! bytes with one bit flipped, reports success, and every later read answers the flipped bit,
//! after the plan is disarmed too. Nothing fails; the disk counts as failed only once the
//! validator noticed (a panic after a lie, or on a disk that rotted, in [`fail_stop`]; a
//! typed refusal at startup, [`DiskFault::refused_by_validator`]).
//!
//! What it does not model: writes from before the plan was armed that were still unsynced
//! when it failed are kept (the runtime's memory storage keeps them; the `crash` fault has
//! the same limit).

use commonware_runtime::{
    Blob, BlobVersion, Error, Handle, IoBufs, IoBufsMut, ReadOptions, Storage, WriteOptions,
};
use rand::RngExt as _;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng as _;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which operations a [`DiskPlan`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskOps {
    /// Writes (`write_at`).
    Writes,
    /// Syncs (`sync`, `start_sync`, and a write's own sync).
    Syncs,
    /// Reads (`read_at`, `read_at_buf`, `read_many`, `start_read_many`).
    Reads,
    /// Writes and syncs.
    WritesAndSyncs,
    /// Every operation: open, read, write, resize, sync, remove, scan.
    All,
}

/// How a validator's disk fails while a fault is in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskPlan {
    pub ops: DiskOps,
    /// The chance, in percent (1 to 100), that each such operation fails.
    pub rate_percent: u8,
    /// A failing write keeps a prefix of its bytes (a torn write), of a length drawn below
    /// the write's; otherwise it writes nothing.
    pub torn: bool,
    /// Only operations on the validator's storage partitions whose name contains this fail
    /// (`snapshots`, `receipts`, `simplex`, `marshal`, `blocks`, `finalizations`); all of
    /// them if `None`. Once one has failed, every operation fails.
    pub partition: Option<String>,
    /// A disk that lies: a failing read answers its bytes with one bit flipped (drawn)
    /// instead of an error ([`DiskOps::Reads`]), or a failing write stores its bytes with one
    /// bit flipped and reports success ([`DiskOps::Writes`]: the disk rots, for good), and
    /// the disk goes on working. The validator stops only if it notices (a checksum, a
    /// digest): a panic of one of its tasks after a lie, or once its disk rotted, is taken
    /// as the disk's ([`fail_stop`] fails the disk then), as is the node's own typed halt.
    /// Only with [`DiskOps::Reads`] or [`DiskOps::Writes`].
    pub lie: bool,
}

/// Longest [`DiskPlan::partition`] filter.
pub const PARTITION_FILTER_MAX: usize = 64;

/// One storage operation, as a [`DiskPlan`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Open,
    Read,
    Write,
    Resize,
    Sync,
    Remove,
    Scan,
}

impl DiskOps {
    fn covers(self, op: Op) -> bool {
        match self {
            Self::Writes => op == Op::Write,
            Self::Syncs => op == Op::Sync,
            Self::Reads => op == Op::Read,
            Self::WritesAndSyncs => matches!(op, Op::Write | Op::Sync),
            Self::All => true,
        }
    }
}

struct Armed {
    plan: DiskPlan,
    rng: ChaCha8Rng,
}

/// One validator's disk faults: disarmed (nothing fails) until the lab arms a plan.
#[derive(Default)]
pub struct DiskFault {
    armed: Mutex<Option<Armed>>,
    /// Every blob opened through this disk that is still open or holds undo records (the
    /// others are dropped at each open), for [`DiskFault::lose_unsynced`].
    blobs: Mutex<Vec<Arc<BlobState>>>,
    /// Orders undo records across every blob (and every open of one file).
    seq: AtomicU64,
    /// An operation failed since the plan was armed: the disk is dead until disarmed.
    failed: AtomicBool,
    /// Operations failed since the plan was armed.
    failures: AtomicU64,
    /// Panics of this validator's tasks stopped after its disk failed, in all.
    panics_stopped: AtomicU64,
    /// Reads answered with a flipped bit, or writes stored with one, since the plan was
    /// armed.
    lies: AtomicU64,
    /// A write was stored with a bit flipped (see [`DiskFault::rotted`]).
    rotted: AtomicBool,
}

impl DiskFault {
    /// Arms `plan`, its failures drawn from a ChaCha8 stream of `seed`.
    pub fn arm(&self, plan: DiskPlan, seed: u64) {
        assert!(
            (1..=100).contains(&plan.rate_percent),
            "rate {}% out of bounds",
            plan.rate_percent
        );
        assert!(
            plan.partition
                .as_ref()
                .is_none_or(|p| !p.is_empty() && p.len() <= PARTITION_FILTER_MAX),
            "partition filter out of bounds"
        );
        assert!(
            !plan.lie || matches!(plan.ops, DiskOps::Reads | DiskOps::Writes),
            "only reads or writes lie"
        );
        self.failed.store(false, Ordering::SeqCst);
        self.failures.store(0, Ordering::SeqCst);
        self.lies.store(0, Ordering::SeqCst);
        *lock(&self.armed) = Some(Armed {
            plan,
            rng: ChaCha8Rng::seed_from_u64(seed),
        });
    }

    /// Disarms the plan: the disk works again (what it wrote stays written, and no undo
    /// record is kept any more).
    pub fn disarm(&self) {
        *lock(&self.armed) = None;
        self.failed.store(false, Ordering::SeqCst);
        // A later panic on the honest disk is a bug again, not the lie's (`fail_stop`).
        self.lies.store(0, Ordering::SeqCst);
        for blob in lock(&self.blobs).iter() {
            lock(&blob.undo).clear();
        }
    }

    /// Whether a plan is armed (its fault has not healed).
    pub fn armed(&self) -> bool {
        lock(&self.armed).is_some()
    }

    /// Whether a plan whose reads lie is armed.
    fn lying(&self) -> bool {
        lock(&self.armed)
            .as_ref()
            .is_some_and(|armed| armed.plan.lie)
    }

    /// Undoes every write and resize made since the last successful sync while the plan was
    /// armed, file by file (newest first, then the file cut back to its synced length),
    /// through `storage` (the runtime's own, under this disk): what a power cut loses. Call
    /// it once the validator has stopped and its tasks are gone (its blobs closed), before it
    /// restarts. Returns the files rolled back; a file still open, or that no longer opens,
    /// is left as it is (logged).
    pub async fn lose_unsynced<S: Storage>(&self, storage: &S) -> usize {
        let mut files: BTreeMap<(String, Vec<u8>), Vec<Undo>> = BTreeMap::new();
        for blob in lock(&self.blobs).iter() {
            let undo = std::mem::take(&mut *lock(&blob.undo));
            if !undo.is_empty() {
                let key = (blob.partition.clone(), blob.name.clone());
                files.entry(key).or_default().extend(undo);
            }
        }
        let mut rolled_back = 0;
        for ((partition, name), mut undo) in files {
            undo.sort_by_key(|u| u.seq);
            let synced_len = undo[0].len_before;
            let versions = BlobVersion::new(0)..=BlobVersion::new(u16::MAX);
            let blob = match storage.open_versioned(&partition, &name, versions).await {
                Ok((blob, _, _)) => blob,
                Err(error) => {
                    tracing::warn!(partition, %error, "unsynced writes not rolled back");
                    continue;
                }
            };
            for entry in undo.into_iter().rev() {
                if !entry.old.is_empty() {
                    let _ = blob
                        .write_at(entry.offset, entry.old, WriteOptions::default())
                        .await;
                }
            }
            let _ = blob.resize(synced_len).await;
            let _ = blob.sync().await;
            rolled_back += 1;
        }
        rolled_back
    }

    fn register(&self, blob: Arc<BlobState>) {
        let mut blobs = lock(&self.blobs);
        blobs.retain(|b| Arc::strong_count(b) > 1 || !lock(&b.undo).is_empty());
        blobs.push(blob);
    }

    /// Whether an operation failed since the plan was armed (the validator must stop).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Operations failed since the plan was armed.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// Panics of this validator's tasks [`fail_stop`] stopped, since it was created.
    pub fn panics_stopped(&self) -> u64 {
        self.panics_stopped.load(Ordering::SeqCst)
    }

    /// The validator refused its disk (a typed storage error at startup, as on a read that
    /// lied or bits that rotted): while a plan is armed, or once the disk rotted, the disk
    /// counts as failed from now on, so the lab stops the validator (and restarts it at the
    /// heal, or wipes a rotten disk whose fault healed). Otherwise it changes nothing.
    pub fn refused_by_validator(&self) {
        if self.armed() || self.rotted() {
            self.failed.store(true, Ordering::SeqCst);
        }
    }

    /// Reads answered with a flipped bit since the plan was armed.
    pub fn lies(&self) -> u64 {
        self.lies.load(Ordering::SeqCst)
    }

    /// Whether `op` (a read or a write) of `len` bytes on `partition` lies now: the bit to
    /// flip.
    fn lie(&self, op: Op, partition: &str, len: usize) -> Option<usize> {
        let mut armed = lock(&self.armed);
        let armed = armed.as_mut()?;
        let covered = armed.plan.lie
            && armed.plan.ops.covers(op)
            && len > 0
            && armed
                .plan
                .partition
                .as_ref()
                .is_none_or(|filter| partition.contains(filter.as_str()));
        if !covered || armed.rng.random_range(0..100u8) >= armed.plan.rate_percent {
            return None;
        }
        self.lies.fetch_add(1, Ordering::SeqCst);
        if op == Op::Write {
            self.rotted.store(true, Ordering::SeqCst);
        }
        Some(armed.rng.random_range(0..len * 8))
    }

    /// `bufs` as a lying read of `partition` answers them: unchanged, or one bit flipped.
    fn maybe_lie(&self, partition: &str, bufs: IoBufsMut) -> IoBufsMut {
        match self.lie(Op::Read, partition, bufs.len()) {
            None => bufs,
            Some(bit) => {
                let mut buf = bufs.coalesce();
                buf.as_mut()[bit / 8] ^= 1 << (bit % 8);
                IoBufsMut::from(buf)
            }
        }
    }

    /// `bufs` as a rotting disk stores them for a write to `partition`: unchanged, or one bit
    /// flipped (the write reports success; every later read answers the flipped bit).
    fn maybe_rot(&self, partition: &str, bufs: IoBufs) -> IoBufs {
        match self.lie(Op::Write, partition, bufs.len()) {
            None => bufs,
            Some(bit) => {
                let mut buf = bufs.coalesce().as_ref().to_vec();
                buf[bit / 8] ^= 1 << (bit % 8);
                IoBufs::from(buf)
            }
        }
    }

    /// Whether a write this disk stored with a bit flipped may still be on it: true from the
    /// first rotted write for good (the bits stay flipped after the plan is disarmed, until
    /// the lab wipes the disk, [`DiskFault::wiped`]).
    pub fn rotted(&self) -> bool {
        self.rotted.load(Ordering::SeqCst)
    }

    /// The validator's disk was wiped: a fresh disk, nothing on it rotted or failed.
    pub fn wiped(&self) {
        self.rotted.store(false, Ordering::SeqCst);
        self.failed.store(false, Ordering::SeqCst);
    }

    /// Whether `op` on `partition` fails now; for a failing write of `len` bytes, also how
    /// many of its first bytes are kept (`Some(0)` when nothing is).
    fn decide(&self, op: Op, partition: &str, len: usize) -> Option<usize> {
        let mut armed = lock(&self.armed);
        let armed = armed.as_mut()?;
        // A lying disk's reads answer (`lie`); it fails only once the validator noticed.
        let covered = !armed.plan.lie
            && armed.plan.ops.covers(op)
            && armed
                .plan
                .partition
                .as_ref()
                .is_none_or(|filter| partition.contains(filter.as_str()));
        let fails = self.failed()
            || (covered && armed.rng.random_range(0..100u8) < armed.plan.rate_percent);
        if !fails {
            return None;
        }
        self.failed.store(true, Ordering::SeqCst);
        self.failures.fetch_add(1, Ordering::SeqCst);
        let kept = if op == Op::Write && armed.plan.torn && len > 0 {
            armed.rng.random_range(0..len)
        } else {
            0
        };
        assert!(
            kept == 0 || kept < len,
            "a torn write keeps a strict prefix"
        );
        Some(kept)
    }

    fn check(&self, op: Op, partition: &str) -> Result<(), Error> {
        match self.decide(op, partition, 0) {
            None => Ok(()),
            Some(_) => Err(injected()),
        }
    }
}

fn injected() -> Error {
    std::io::Error::other("injected disk fault (the lab's disk-fault)").into()
}

/// Runs one task of a validator whose disk is `disk`: a panic once its disk has failed stops
/// this task (it never completes; the lab stops the whole validator at its next tick), as a
/// process stops on a fatal disk error; any other panic unwinds on, to the runtime. (A bug
/// that panics in this validator after its disk failed is taken for the disk's: it is
/// stopping anyway.)
pub async fn fail_stop<Fut: Future>(disk: &DiskFault, task: Fut) -> Fut::Output {
    use futures::FutureExt as _;
    match std::panic::AssertUnwindSafe(task).catch_unwind().await {
        Ok(output) => output,
        // A panic after a lie, or on a disk that rotted: the validator noticed it (a
        // checksum, a digest) and stops.
        Err(panic) if disk.failed() || disk.lies() > 0 || disk.rotted() => {
            disk.failed.store(true, Ordering::SeqCst);
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            disk.panics_stopped.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(
                message,
                "a task stopped on its failed disk (fail-stop, not a bug)"
            );
            futures::future::pending().await
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// One undo record of a blob: the bytes at `offset` before a write or a shrinking resize
/// changed them, and the blob's length before.
struct Undo {
    seq: u64,
    offset: u64,
    old: Vec<u8>,
    len_before: u64,
}

/// One open of a file: its length and its undo records since its last successful sync.
struct BlobState {
    partition: String,
    name: Vec<u8>,
    len: AtomicU64,
    undo: Mutex<Vec<Undo>>,
}

impl BlobState {
    fn record(&self, seq: u64, offset: u64, old: Vec<u8>, len_before: u64) {
        lock(&self.undo).push(Undo {
            seq,
            offset,
            old,
            len_before,
        });
    }

    /// A sync that began when the sequence stood at `seq` succeeded: what came before is
    /// durable.
    fn synced(&self, seq: u64) {
        lock(&self.undo).retain(|u| u.seq >= seq);
    }
}

/// A blob of a validator's disk: the runtime's, failing as its [`DiskFault`] says.
pub struct DiskBlob<B> {
    inner: Arc<B>,
    disk: Arc<DiskFault>,
    partition: Arc<str>,
    state: Arc<BlobState>,
}

impl<B> Clone for DiskBlob<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            disk: self.disk.clone(),
            partition: self.partition.clone(),
            state: self.state.clone(),
        }
    }
}

impl<B: Blob> DiskBlob<B> {
    /// `inner`, file `name` of length `len` in `partition` of `disk`.
    pub fn new(inner: B, disk: Arc<DiskFault>, partition: &str, name: &[u8], len: u64) -> Self {
        let state = Arc::new(BlobState {
            partition: partition.to_string(),
            name: name.to_vec(),
            len: AtomicU64::new(len),
            undo: Mutex::default(),
        });
        disk.register(state.clone());
        Self {
            inner: Arc::new(inner),
            disk,
            partition: partition.into(),
            state,
        }
    }
}

impl<B> DiskBlob<B> {
    fn check(&self, op: Op) -> Result<(), Error> {
        self.disk.check(op, &self.partition)
    }

    fn record(&self, offset: u64, old: Vec<u8>, len_before: u64) {
        let seq = self.disk.seq.fetch_add(1, Ordering::SeqCst);
        self.state.record(seq, offset, old, len_before);
    }

    fn seq(&self) -> u64 {
        self.disk.seq.load(Ordering::SeqCst)
    }
}

impl DiskFault {
    /// The storage side of the validator's context (`clock::SkewedContext`): an open, a
    /// removal or a scan.
    pub(crate) fn check_open(&self, partition: &str) -> Result<(), Error> {
        self.check(Op::Open, partition)
    }

    pub(crate) fn check_remove(&self, partition: &str) -> Result<(), Error> {
        self.check(Op::Remove, partition)
    }

    /// A file (or, with no name, a whole partition) was removed: nothing of it to undo.
    pub(crate) fn removed(&self, partition: &str, name: Option<&[u8]>) {
        for blob in lock(&self.blobs).iter() {
            if blob.partition == partition && name.is_none_or(|n| n == blob.name.as_slice()) {
                lock(&blob.undo).clear();
            }
        }
    }

    pub(crate) fn check_scan(&self, partition: &str) -> Result<(), Error> {
        self.check(Op::Scan, partition)
    }
}

impl<B: Blob> Blob for DiskBlob<B> {
    async fn read_at_buf(
        &self,
        offset: u64,
        len: usize,
        bufs: impl Into<IoBufsMut> + Send,
        options: ReadOptions,
    ) -> Result<IoBufsMut, Error> {
        self.check(Op::Read)?;
        let bufs = self.inner.read_at_buf(offset, len, bufs, options).await?;
        Ok(self.disk.maybe_lie(&self.partition, bufs))
    }

    async fn read_at(
        &self,
        offset: u64,
        len: usize,
        options: ReadOptions,
    ) -> Result<IoBufsMut, Error> {
        self.check(Op::Read)?;
        let bufs = self.inner.read_at(offset, len, options).await?;
        Ok(self.disk.maybe_lie(&self.partition, bufs))
    }

    fn read_many(
        &self,
        ranges: &[(u64, usize)],
        options: ReadOptions,
    ) -> impl futures::Stream<Item = Result<(usize, IoBufsMut), Error>> + Send {
        use futures::StreamExt as _;
        let (disk, partition) = (self.disk.clone(), self.partition.clone());
        match self.check(Op::Read) {
            Ok(()) => futures::future::Either::Left(self.inner.read_many(ranges, options).map(
                move |read| read.map(|(range, bufs)| (range, disk.maybe_lie(&partition, bufs))),
            )),
            Err(error) => {
                futures::future::Either::Right(futures::stream::once(async move { Err(error) }))
            }
        }
    }

    async fn start_read_many(
        &self,
        ranges: &[(u64, usize)],
        options: ReadOptions,
    ) -> Handle<Vec<IoBufsMut>> {
        match self.check(Op::Read) {
            // A lying disk answers once its reads are done, each perhaps with a bit flipped.
            Ok(()) if self.disk.lying() => {
                match self.inner.start_read_many(ranges, options).await.await {
                    Ok(reads) => Handle::ready(Ok(reads
                        .into_iter()
                        .map(|bufs| self.disk.maybe_lie(&self.partition, bufs))
                        .collect())),
                    Err(error) => Handle::ready(Err(error)),
                }
            }
            Ok(()) => self.inner.start_read_many(ranges, options).await,
            Err(error) => Handle::ready(Err(error)),
        }
    }

    async fn write_at(
        &self,
        offset: u64,
        bufs: impl Into<IoBufs> + Send,
        options: WriteOptions,
    ) -> Result<(), Error> {
        let bufs: IoBufs = bufs.into();
        let len = bufs.len();
        let end = offset
            .checked_add(len as u64)
            .ok_or(Error::OffsetOverflow)?;
        if let Some(kept) = self.disk.decide(Op::Write, &self.partition, len) {
            if kept > 0 {
                // A torn write: its prefix reached the disk, durably.
                let prefix = bufs.coalesce().slice(..kept);
                self.inner
                    .write_at(offset, prefix, WriteOptions::SYNC)
                    .await?;
                self.state
                    .len
                    .fetch_max(offset + kept as u64, Ordering::SeqCst);
            }
            return Err(injected());
        }
        let sync = options.contains(WriteOptions::SYNC);
        // What this write overwrites, kept while a plan is armed to undo it if it is never
        // synced (a write that syncs itself needs none, unless its sync fails).
        let undo = if self.disk.armed() {
            let len_before = self.state.len.load(Ordering::SeqCst);
            let overlap_end = end.min(len_before);
            let old = if offset < overlap_end {
                let read = self
                    .inner
                    .read_at(
                        offset,
                        (overlap_end - offset) as usize,
                        ReadOptions::default(),
                    )
                    .await?;
                read.coalesce().as_ref().to_vec()
            } else {
                Vec::new()
            };
            Some((old, len_before))
        } else {
            None
        };
        if sync && self.disk.decide(Op::Sync, &self.partition, 0).is_some() {
            // Written, not synced: undone if the validator stops.
            if let Some((old, len_before)) = undo {
                self.record(offset, old, len_before);
            }
            self.inner
                .write_at(offset, bufs, options.without(WriteOptions::SYNC))
                .await?;
            self.state.len.fetch_max(end, Ordering::SeqCst);
            return Err(injected());
        }
        if !sync && let Some((old, len_before)) = undo {
            self.record(offset, old, len_before);
        }
        let bufs = self.disk.maybe_rot(&self.partition, bufs);
        self.inner.write_at(offset, bufs, options).await?;
        self.state.len.fetch_max(end, Ordering::SeqCst);
        Ok(())
    }

    async fn resize(&self, len: u64) -> Result<(), Error> {
        self.check(Op::Resize)?;
        let len_before = self.state.len.load(Ordering::SeqCst);
        if self.disk.armed() {
            let old = if len < len_before {
                let read = self
                    .inner
                    .read_at(len, (len_before - len) as usize, ReadOptions::default())
                    .await?;
                read.coalesce().as_ref().to_vec()
            } else {
                Vec::new()
            };
            self.record(len, old, len_before);
        }
        self.inner.resize(len).await?;
        self.state.len.store(len, Ordering::SeqCst);
        Ok(())
    }

    async fn sync(&self) -> Result<(), Error> {
        self.check(Op::Sync)?;
        let seq = self.seq();
        self.inner.sync().await?;
        self.state.synced(seq);
        Ok(())
    }

    async fn start_sync(&self) -> Handle<()> {
        if let Err(error) = self.check(Op::Sync) {
            return Handle::ready(Err(error));
        }
        let seq = self.seq();
        let started = self.inner.start_sync().await;
        let state = self.state.clone();
        Handle::from_future(async move {
            started.await?;
            state.synced(seq);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ops: DiskOps, rate_percent: u8, torn: bool) -> DiskPlan {
        DiskPlan {
            ops,
            rate_percent,
            torn,
            partition: None,
            lie: false,
        }
    }

    #[test]
    fn a_disarmed_disk_fails_nothing() {
        let disk = DiskFault::default();
        for op in [Op::Open, Op::Read, Op::Write, Op::Sync, Op::Resize] {
            assert_eq!(disk.decide(op, "v-blocks", 100), None);
        }
        assert!(!disk.failed());
    }

    #[test]
    fn an_armed_disk_fails_only_its_operations_then_everything_until_disarmed() {
        let disk = DiskFault::default();
        disk.arm(plan(DiskOps::Syncs, 100, false), 1);
        assert_eq!(
            disk.decide(Op::Write, "v-blocks", 10),
            None,
            "writes are not in the plan"
        );
        assert_eq!(disk.decide(Op::Sync, "v-blocks", 0), Some(0));
        assert!(disk.failed());
        assert_eq!(
            disk.decide(Op::Read, "v-blocks", 10),
            Some(0),
            "a failed disk stays failed"
        );
        assert_eq!(disk.failures(), 2);
        disk.disarm();
        assert!(!disk.failed());
        assert_eq!(disk.decide(Op::Sync, "v-blocks", 0), None);
    }

    #[test]
    fn a_partition_filter_fails_only_that_partition_until_one_fails() {
        let disk = DiskFault::default();
        let mut only = plan(DiskOps::Writes, 100, false);
        only.partition = Some("snapshots".to_string());
        disk.arm(only, 1);
        assert_eq!(disk.decide(Op::Write, "v-blocks", 10), None);
        assert_eq!(disk.decide(Op::Write, "v-snapshots", 10), Some(0));
        assert_eq!(
            disk.decide(Op::Write, "v-blocks", 10),
            Some(0),
            "then all fail"
        );
    }

    #[test]
    fn failures_and_torn_prefixes_are_drawn_from_the_seed() {
        let draws = |seed: u64| {
            let disk = DiskFault::default();
            disk.arm(plan(DiskOps::Writes, 30, true), seed);
            let mut first = None;
            for i in 0..1_000usize {
                if let Some(kept) = disk.decide(Op::Write, "v-blocks", 4_096) {
                    assert!(kept < 4_096, "a strict prefix");
                    first = Some((i, kept));
                    break;
                }
            }
            first.expect("30% of 1,000 writes fail at least once")
        };
        assert_eq!(draws(7), draws(7), "the same seed, the same failure");
        assert!(
            (1..20).any(|seed| draws(seed) != draws(7)),
            "other seeds fail elsewhere"
        );
    }

    /// A power cut: writes and a shrinking resize since the blob's last sync are undone, a
    /// synced write is kept, and a torn write's prefix survives.
    #[test]
    fn a_lying_read_flips_one_bit_and_the_disk_goes_on_working() {
        use commonware_runtime::{Runner as _, Storage as _, deterministic};
        deterministic::Runner::default().start(|context| async move {
            let disk = Arc::new(DiskFault::default());
            let (inner, len) = context.open("p", b"b").await.expect("opens");
            let blob = DiskBlob::new(inner, disk.clone(), "p", b"b", len);
            let stored = vec![0x5au8; 64];
            blob.write_at(0, stored.clone(), WriteOptions::default())
                .await
                .expect("writes");
            let mut lying = plan(DiskOps::Reads, 100, false);
            lying.lie = true;
            disk.arm(lying, 7);
            for read in 1..=3u64 {
                let got = blob
                    .read_at(0, 64, ReadOptions::default())
                    .await
                    .expect("a lie is no error")
                    .coalesce()
                    .as_ref()
                    .to_vec();
                let flipped: u32 = got
                    .iter()
                    .zip(&stored)
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum();
                assert_eq!(flipped, 1, "one bit flipped");
                assert_eq!(disk.lies(), read);
            }
            // Writes and syncs work, and what is stored is true: only its reading lies.
            blob.write_at(64, vec![1u8; 8], WriteOptions::default())
                .await
                .expect("writes");
            blob.sync().await.expect("syncs");
            assert!(!disk.failed());
            let truth = blob
                .inner
                .read_at(0, 64, ReadOptions::default())
                .await
                .expect("reads");
            assert_eq!(truth.coalesce().as_ref(), stored.as_slice());
            // Noticing (a typed refusal) fails the disk while the plan is armed.
            disk.refused_by_validator();
            assert!(disk.failed());
            disk.disarm();
            assert_eq!(disk.lies(), 0, "a panic after the heal is no lie's");
            disk.refused_by_validator();
            assert!(!disk.failed(), "without a plan a refusal changes nothing");
        });
    }

    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        use commonware_runtime::{Runner as _, Storage as _, deterministic};
        deterministic::Runner::default().start(|context| async move {
            let disk = Arc::new(DiskFault::default());
            let open = async |disk: &Arc<DiskFault>| {
                let (inner, len) = context.open("p", b"b").await.expect("opens");
                DiskBlob::new(inner, disk.clone(), "p", b"b", len)
            };
            let read = |blob: DiskBlob<deterministic::Blob>, len: u64| async move {
                blob.inner
                    .read_at(0, len as usize, ReadOptions::default())
                    .await
                    .expect("reads")
                    .coalesce()
                    .as_ref()
                    .to_vec()
            };
            let blob = open(&disk).await;
            blob.write_at(0, vec![1u8; 8], WriteOptions::default())
                .await
                .expect("writes");
            blob.sync().await.expect("syncs");
            disk.arm(plan(DiskOps::Syncs, 100, false), 1);
            blob.write_at(4, vec![2u8; 8], WriteOptions::default())
                .await
                .expect("writes");
            blob.resize(6).await.expect("resizes");
            assert!(blob.sync().await.is_err(), "the sync fails");
            drop(blob);
            assert_eq!(disk.lose_unsynced(&context).await, 1);
            disk.disarm();
            let blob = open(&disk).await;
            assert_eq!(blob.state.len.load(Ordering::SeqCst), 8);
            assert_eq!(
                read(blob.clone(), 8).await,
                vec![1u8; 8],
                "the synced bytes"
            );

            let mut torn = plan(DiskOps::Writes, 100, true);
            torn.rate_percent = 100;
            disk.arm(torn, 3);
            assert!(
                blob.write_at(0, vec![3u8; 8], WriteOptions::default())
                    .await
                    .is_err()
            );
            drop(blob);
            disk.lose_unsynced(&context).await;
            disk.disarm();
            let after = read(open(&disk).await, 8).await;
            let kept = after.iter().take_while(|b| **b == 3).count();
            assert!(kept < 8, "a strict prefix");
            assert!(after[kept..].iter().all(|b| *b == 1), "{after:?}");
        });
    }
}
