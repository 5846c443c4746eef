//! Submissions of concurrent requests admitted together.
//!
//! A Deribit client (through the gateway) sends one order per request. Admitted one request at
//! a time, each order's signature would be verified alone, the dearest way: about 40 us on this
//! project's VM, against about 13 us each in a batch of 64 and 9 us in one of 256 (`cargo bench
//! -p bulwark-types --bench signatures`, group `verify_batch_per_size`). So request handlers do
//! not call `Shared::submit` themselves: they queue their transactions here, and one thread
//! admits everything queued at that moment in one call (one batch verification of the
//! signatures not seen before), then answers each request with its own results.
//!
//! A request that times out (`ApiConfig::request_timeout`) while queued may still be admitted
//! after its client got the timeout, as with any answer lost on the way: the transaction's
//! digest answers `GET /tx/{digest}` either way.
//!
//! Owns: the admission thread and its queue.
//! Never: waits for more requests to arrive (a request alone is admitted at once; batches form
//! only from requests that came while the previous admission ran), reorders one request's
//! transactions, or answers a request with another's results. The thread runs no async code, so
//! verification never occupies the API's tokio workers.
//! Bounds: at most [`QUEUE_MAX`] requests wait (a handler awaits room, and HTTP/1.1 gives each
//! of the API's `connections_max` connections one request at a time); one admission takes
//! whole requests up to [`ADMISSION_TXS_MAX`] transactions (a larger request is admitted
//! alone).

use crate::mempool::{AdmitError, TxDigest};
use crate::shared::Shared;
use bulwark_types::SignedTx;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the admission thread.
pub const QUEUE_MAX: usize = 1_024;

/// Most transactions one admission gathers from several requests: the gain of a larger batch
/// verification is small past a few hundred signatures, and the requests' latency grows.
pub const ADMISSION_TXS_MAX: usize = 1_024;

type Results = Vec<Result<TxDigest, AdmitError>>;

struct Request {
    txs: Vec<SignedTx>,
    reply: oneshot::Sender<Results>,
}

/// The admission thread stopped (it panicked on an internal fault); the node cannot admit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the node's admission thread stopped")]
pub struct AdmissionStopped;

/// How requests have been admitted since startup.
#[derive(Debug, Default)]
pub struct AdmissionCounters {
    /// Calls to `Shared::submit` (each one batch verification at most).
    pub admissions: AtomicU64,
    /// Requests taken off the queue into an admission.
    pub requests: AtomicU64,
}

/// The queue to the admission thread. The thread ends when the last handle is dropped.
pub struct Admission {
    queue: mpsc::Sender<Request>,
    counters: Arc<AdmissionCounters>,
}

impl Admission {
    /// Starts the admission thread for `shared`.
    pub fn start(shared: Arc<Shared>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_MAX);
        let counters = Arc::new(AdmissionCounters::default());
        let thread_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("bulwark-admission".into())
            .spawn(move || run(&shared, receiver, &thread_counters))
            .expect("the OS starts the admission thread");
        Self { queue, counters }
    }

    /// Admits `txs` (with whatever other requests are queued); one result per transaction,
    /// in order.
    pub async fn admit(&self, txs: Vec<SignedTx>) -> Result<Results, AdmissionStopped> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request { txs, reply })
            .await
            .map_err(|_| AdmissionStopped)?;
        answer.await.map_err(|_| AdmissionStopped)
    }

    pub fn counters(&self) -> &AdmissionCounters {
        &self.counters
    }

    /// Requests the queue has room for now.
    #[cfg(test)]
    pub fn queue_room(&self) -> usize {
        self.queue.capacity()
    }
}

fn run(shared: &Shared, mut receiver: mpsc::Receiver<Request>, counters: &AdmissionCounters) {
    let mut rng = rand::rng();
    let mut next = receiver.blocking_recv();
    while let Some(first) = next.take() {
        let mut requests = vec![first];
        let mut count = requests[0].txs.len();
        // Bounded: every request taken adds at least nothing and at most the cap; the queue
        // holds at most QUEUE_MAX, and the loop stops at ADMISSION_TXS_MAX.
        while count < ADMISSION_TXS_MAX {
            let Ok(request) = receiver.try_recv() else {
                break;
            };
            if count + request.txs.len() > ADMISSION_TXS_MAX {
                next = Some(request);
                break;
            }
            count += request.txs.len();
            requests.push(request);
        }
        let lengths: Vec<usize> = requests.iter().map(|r| r.txs.len()).collect();
        let txs: Vec<SignedTx> = requests
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.txs))
            .collect();
        assert_eq!(txs.len(), count, "every request's transactions gathered");
        counters.admissions.fetch_add(1, Ordering::Relaxed);
        counters
            .requests
            .fetch_add(requests.len() as u64, Ordering::Relaxed);
        let results = shared.submit(txs, &mut rng, true);
        assert_eq!(results.len(), count, "one result per transaction");
        let mut results = results.into_iter();
        for (request, length) in requests.into_iter().zip(lengths) {
            let own: Results = results.by_ref().take(length).collect();
            // A handler that went away (its client disconnected) needs no answer.
            let _ = request.reply.send(own);
        }
        if next.is_none() {
            next = receiver.blocking_recv();
        }
    }
}
