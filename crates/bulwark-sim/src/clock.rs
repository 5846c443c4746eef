//! A validator's own clock: the deterministic runtime's, offset by a skew the lab sets while
//! the validator runs (the `clock-skew` fault).
//!
//! Owns: [`ClockSkew`] (one validator's offset, shared with the lab) and [`SkewedContext`],
//! the runtime context every validator of the lab runs under. The node reads time only
//! through its context (`bulwark_node::app::now_ms`: block times, the lag and drift rules,
//! observation times, gossip budgets, sync deadlines), so the offset reaches every place a
//! real validator's clock would. Sleeps keep their length; a sleep until a time of this clock
//! wakes when this clock reaches it.
//! Its storage is the runtime's behind the validator's own [`DiskFault`] (the `disk-fault`
//! fault: see `disk`), and every task it spawns runs inside [`fail_stop`], so a panic on a
//! failed disk stops that validator alone.
//! Never: skews anything but time (spawning, metrics and randomness are the runtime's,
//! forwarded; storage too while no disk fault is armed), or moves the runtime's own clock (the network, the other validators
//! and the lab keep the true time).
//! Bounds: an offset is at most [`SKEW_MS_MAX`] either way; the scenario refuses more than
//! the node's lag bound.

use super::disk::{DiskBlob, DiskFault, fail_stop};
use commonware_runtime::telemetry::metrics::{Metric, Registered};
use commonware_runtime::{Clock, Error, Handle, Metrics, Name, Spawner, Storage, Supervisor};
use governor::clock::{Clock as GovernorClock, ReasonablyRealtime};
use rand::{TryCryptoRng, TryRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

/// The largest offset a [`ClockSkew`] holds, either way: an hour, far beyond any bound a
/// validator tolerates (the scenario checks the real bound).
pub const SKEW_MS_MAX: i64 = 3_600_000;

/// One validator's clock offset from the true time, in milliseconds (positive: ahead).
#[derive(Debug, Default)]
pub struct ClockSkew {
    offset_ms: AtomicI64,
}

impl ClockSkew {
    pub fn set(&self, offset_ms: i64) {
        assert!(
            offset_ms.abs() <= SKEW_MS_MAX,
            "skew {offset_ms} ms out of bounds"
        );
        self.offset_ms.store(offset_ms, Ordering::SeqCst);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    /// `true_time` as this clock reads it.
    fn skewed(&self, true_time: SystemTime) -> SystemTime {
        shift(true_time, self.offset_ms())
    }

    /// The true time at which this clock reads `skewed_time`.
    fn unskewed(&self, skewed_time: SystemTime) -> SystemTime {
        shift(skewed_time, -self.offset_ms())
    }
}

/// `time` moved by `offset_ms`; unchanged where the move would leave `SystemTime`'s range.
fn shift(time: SystemTime, offset_ms: i64) -> SystemTime {
    let by = Duration::from_millis(offset_ms.unsigned_abs());
    let moved = if offset_ms >= 0 {
        time.checked_add(by)
    } else {
        time.checked_sub(by)
    };
    moved.unwrap_or(time)
}

/// A runtime context whose clock is offset by a [`ClockSkew`] and whose storage fails as its
/// [`DiskFault`] says; everything else forwarded.
#[derive(Clone)]
pub struct SkewedContext<E> {
    inner: E,
    skew: Arc<ClockSkew>,
    disk: Arc<DiskFault>,
}

impl<E> SkewedContext<E> {
    /// A context with `skew` and a disk that never fails.
    pub fn new(inner: E, skew: Arc<ClockSkew>) -> Self {
        Self {
            inner,
            skew,
            disk: Arc::default(),
        }
    }

    /// The same context over the disk `disk` (shared with the lab, which arms its faults).
    pub fn with_disk(self, disk: Arc<DiskFault>) -> Self {
        Self { disk, ..self }
    }
}

impl<E: Supervisor> Supervisor for SkewedContext<E> {
    fn name(&self) -> Name {
        self.inner.name()
    }

    fn child(&self, label: &'static str) -> Self {
        Self {
            inner: self.inner.child(label),
            skew: self.skew.clone(),
            disk: self.disk.clone(),
        }
    }

    fn with_attribute(self, key: &'static str, value: impl std::fmt::Display) -> Self {
        Self {
            inner: self.inner.with_attribute(key, value),
            skew: self.skew,
            disk: self.disk,
        }
    }
}

impl<E: Clock> Clock for SkewedContext<E> {
    fn current(&self) -> SystemTime {
        self.skew.skewed(self.inner.current())
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static + use<E> {
        self.inner.sleep(duration)
    }

    fn sleep_until(
        &self,
        deadline: SystemTime,
    ) -> impl Future<Output = ()> + Send + 'static + use<E> {
        self.inner.sleep_until(self.skew.unskewed(deadline))
    }
}

impl<E: Clock> GovernorClock for SkewedContext<E> {
    type Instant = SystemTime;

    fn now(&self) -> Self::Instant {
        self.current()
    }
}

impl<E: Clock> ReasonablyRealtime for SkewedContext<E> {}

impl<E: Metrics> Metrics for SkewedContext<E> {
    fn register<N: Into<String>, H: Into<String>, M: Metric>(
        &self,
        name: N,
        help: H,
        metric: M,
    ) -> Registered<M> {
        self.inner.register(name, help, metric)
    }

    fn encode(&self) -> String {
        self.inner.encode()
    }
}

impl<E: Spawner> Spawner for SkewedContext<E> {
    fn shared(mut self, blocking: bool) -> Self {
        self.inner = self.inner.shared(blocking);
        self
    }

    fn dedicated(mut self) -> Self {
        self.inner = self.inner.dedicated();
        self
    }

    fn spawn<F, Fut, T>(self, f: F) -> Handle<T>
    where
        F: FnOnce(Self) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (skew, disk) = (self.skew, self.disk);
        self.inner.spawn(move |inner| {
            let task = f(Self {
                inner,
                skew,
                disk: disk.clone(),
            });
            async move { fail_stop(&disk, task).await }
        })
    }

    async fn stop(self, value: i32, timeout: Option<Duration>) -> Result<(), Error> {
        self.inner.stop(value, timeout).await
    }

    fn stopped(&self) -> commonware_runtime::signal::Signal {
        self.inner.stopped()
    }
}

impl<E: Storage> Storage for SkewedContext<E> {
    type Blob = DiskBlob<E::Blob>;

    async fn open_versioned(
        &self,
        partition: &str,
        name: &[u8],
        versions: std::ops::RangeInclusive<commonware_runtime::BlobVersion>,
    ) -> Result<(Self::Blob, u64, commonware_runtime::BlobVersion), Error> {
        self.disk.check_open(partition)?;
        let (blob, len, version) = self.inner.open_versioned(partition, name, versions).await?;
        Ok((
            DiskBlob::new(blob, self.disk.clone(), partition, name, len),
            len,
            version,
        ))
    }

    async fn remove(&self, partition: &str, name: Option<&[u8]>) -> Result<(), Error> {
        self.disk.check_remove(partition)?;
        self.inner.remove(partition, name).await?;
        self.disk.removed(partition, name);
        Ok(())
    }

    async fn scan(&self, partition: &str) -> Result<Vec<Vec<u8>>, Error> {
        self.disk.check_scan(partition)?;
        self.inner.scan(partition).await
    }
}

impl<E: TryRng> TryRng for SkewedContext<E> {
    type Error = E::Error;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.inner.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.inner.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        self.inner.try_fill_bytes(dest)
    }
}

impl<E: TryCryptoRng> TryCryptoRng for SkewedContext<E> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skewed_clock_reads_ahead_or_behind_and_maps_deadlines_back() {
        let skew = ClockSkew::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(skew.skewed(t), t, "no skew by default");
        skew.set(-4_000);
        assert_eq!(skew.skewed(t), t - Duration::from_secs(4));
        assert_eq!(skew.unskewed(skew.skewed(t)), t);
        skew.set(250);
        assert_eq!(skew.skewed(t), t + Duration::from_millis(250));
        assert_eq!(skew.unskewed(t), t - Duration::from_millis(250));
    }
}
