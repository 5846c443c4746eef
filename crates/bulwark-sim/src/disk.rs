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
//! the validator must stop, not go on over a half-written disk).
//!
//! What it does not model: writes that were not synced are not lost when the validator stops
//! (the runtime's memory storage keeps them; the `crash` fault has the same limit). A torn
//! write, a failed sync and a failed open are.

use commonware_runtime::{Blob, Error, Handle, IoBufs, IoBufsMut, ReadOptions, WriteOptions};
use rand::RngExt as _;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Which operations a [`DiskPlan`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskOps {
    /// Writes (`write_at`).
    Writes,
    /// Syncs (`sync`, `start_sync`, and a write's own sync).
    Syncs,
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
    /// An operation failed since the plan was armed: the disk is dead until disarmed.
    failed: AtomicBool,
    /// Operations failed since the plan was armed.
    failures: AtomicU64,
    /// Panics of this validator's tasks stopped after its disk failed, in all.
    panics_stopped: AtomicU64,
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
        self.failed.store(false, Ordering::SeqCst);
        self.failures.store(0, Ordering::SeqCst);
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Armed {
            plan,
            rng: ChaCha8Rng::seed_from_u64(seed),
        });
    }

    /// Disarms the plan: the disk works again (what it wrote stays written).
    pub fn disarm(&self) {
        *self.armed.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.failed.store(false, Ordering::SeqCst);
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

    /// Whether `op` on `partition` fails now; for a failing write of `len` bytes, also how
    /// many of its first bytes are kept (`Some(0)` when nothing is).
    fn decide(&self, op: Op, partition: &str, len: usize) -> Option<usize> {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        let armed = armed.as_mut()?;
        let covered = armed.plan.ops.covers(op)
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
/// process stops on a fatal disk error; any other panic unwinds on, to the runtime.
pub async fn fail_stop<Fut: Future>(disk: &DiskFault, task: Fut) -> Fut::Output {
    use futures::FutureExt as _;
    match std::panic::AssertUnwindSafe(task).catch_unwind().await {
        Ok(output) => output,
        Err(panic) if disk.failed() => {
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

/// A blob of a validator's disk: the runtime's, failing as its [`DiskFault`] says.
pub struct DiskBlob<B> {
    inner: B,
    disk: std::sync::Arc<DiskFault>,
    partition: std::sync::Arc<str>,
}

impl<B: Clone> Clone for DiskBlob<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            disk: self.disk.clone(),
            partition: self.partition.clone(),
        }
    }
}

impl<B> DiskBlob<B> {
    pub fn new(inner: B, disk: std::sync::Arc<DiskFault>, partition: &str) -> Self {
        Self {
            inner,
            disk,
            partition: partition.into(),
        }
    }

    fn check(&self, op: Op) -> Result<(), Error> {
        self.disk.check(op, &self.partition)
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
        self.inner.read_at_buf(offset, len, bufs, options).await
    }

    async fn read_at(
        &self,
        offset: u64,
        len: usize,
        options: ReadOptions,
    ) -> Result<IoBufsMut, Error> {
        self.check(Op::Read)?;
        self.inner.read_at(offset, len, options).await
    }

    fn read_many(
        &self,
        ranges: &[(u64, usize)],
        options: ReadOptions,
    ) -> impl futures::Stream<Item = Result<(usize, IoBufsMut), Error>> + Send {
        match self.check(Op::Read) {
            Ok(()) => futures::future::Either::Left(self.inner.read_many(ranges, options)),
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
        if let Some(kept) = self.disk.decide(Op::Write, &self.partition, len) {
            if kept > 0 {
                let prefix = bufs.coalesce().slice(..kept);
                self.inner
                    .write_at(offset, prefix, options.without(WriteOptions::SYNC))
                    .await?;
            }
            return Err(injected());
        }
        if options.contains(WriteOptions::SYNC)
            && self.disk.decide(Op::Sync, &self.partition, 0).is_some()
        {
            // Written, not synced.
            self.inner
                .write_at(offset, bufs, options.without(WriteOptions::SYNC))
                .await?;
            return Err(injected());
        }
        self.inner.write_at(offset, bufs, options).await
    }

    async fn resize(&self, len: u64) -> Result<(), Error> {
        self.check(Op::Resize)?;
        self.inner.resize(len).await
    }

    async fn sync(&self) -> Result<(), Error> {
        self.check(Op::Sync)?;
        self.inner.sync().await
    }

    async fn start_sync(&self) -> Handle<()> {
        match self.check(Op::Sync) {
            Ok(()) => self.inner.start_sync().await,
            Err(error) => Handle::ready(Err(error)),
        }
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
}
