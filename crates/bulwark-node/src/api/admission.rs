//! Submissions of concurrent requests admitted together, clients in turns.
//!
//! A Deribit client (through the gateway) sends one order per request. Admitted one request at
//! a time, each order's signature would be verified alone, the dearest way: about 40 us on this
//! project's VM, against about 13 us each in a batch of 64 and 9 us in one of 256 (`cargo bench
//! -p bulwark-types --bench signatures`, group `verify_batch_per_size`). So request handlers do
//! not call `Shared::submit` themselves: they queue their transactions here, and one thread
//! admits what is queued at that moment in one call (one batch verification of the signatures
//! not seen before), then answers each request with its own results.
//!
//! Clients take turns ([`ClientAddress`], as the connection slots count them): each admission
//! takes one request from each client with requests waiting, then a second from each, and so
//! on. In arrival order, a client that queued a thousand full requests (each up to 1,024
//! transactions, whose signatures the thread must check) made everyone else wait a thousand
//! admissions, a second or more; in turns, another client's request waits at most for the
//! admission running when it came and the requests of the clients ahead of it in one turn.
//!
//! A request that times out (`ApiConfig::request_timeout`) while queued may still be admitted
//! after its client got the timeout, as with any answer lost on the way: the transaction's
//! digest answers `GET /tx/{digest}` either way.
//!
//! Owns: the admission thread and its queue.
//! Never: waits for more requests to arrive (a request alone is admitted at once; batches form
//! only from requests that came while the previous admission ran), reorders one request's
//! transactions or one client's requests, or answers a request with another's results. The
//! thread runs no async code, so verification never occupies the API's tokio workers.
//! Bounds: at most [`QUEUE_MAX`] requests wait (a handler awaits room; one client has at most
//! its connection slots' worth, since HTTP/1.1 gives each connection one request at a time);
//! one admission takes whole requests up to [`ADMISSION_TXS_MAX`] transactions (a larger
//! request is admitted alone).

use super::connections::ClientAddress;
use crate::mempool::{AdmitError, TxDigest};
use crate::shared::{Shared, lock};
use bulwark_types::SignedTx;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Requests waiting for the admission thread.
pub const QUEUE_MAX: usize = 1_024;

/// Most transactions one admission gathers from several requests: the gain of a larger batch
/// verification is small past a few hundred signatures, and the requests' latency grows.
pub const ADMISSION_TXS_MAX: usize = 1_024;

type Results = Vec<Result<TxDigest, AdmitError>>;

struct Request {
    txs: Vec<SignedTx>,
    reply: oneshot::Sender<Results>,
    /// The request's place in the queue, given back when the thread takes it.
    _room: OwnedSemaphorePermit,
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

/// Requests waiting, by client, and the order clients are served in.
#[derive(Default)]
struct Turns {
    waiting: HashMap<ClientAddress, VecDeque<Request>>,
    /// Every client with requests waiting, once, the next to be served first.
    order: VecDeque<ClientAddress>,
    /// Set when the thread ended or the last handle went: nothing more is queued.
    closed: bool,
}

impl Turns {
    fn push(&mut self, client: ClientAddress, request: Request) {
        let queue = self.waiting.entry(client).or_default();
        if queue.is_empty() {
            self.order.push_back(client);
        }
        queue.push_back(request);
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The next admission: clients in turns, one request each a turn, whole requests up to
    /// `txs_max` transactions (or one larger request alone).
    fn take(&mut self, txs_max: usize) -> Vec<Request> {
        let mut taken: Vec<Request> = Vec::new();
        let mut count = 0;
        // Bounded: each pass takes one of at most QUEUE_MAX requests or stops.
        while let Some(client) = self.order.pop_front() {
            let queue = self
                .waiting
                .get_mut(&client)
                .expect("a client in the order has requests waiting");
            let next = queue.front().expect("no empty queue is kept").txs.len();
            if !taken.is_empty() && count + next > txs_max {
                // Its turn is not over: it goes first in the next admission.
                self.order.push_front(client);
                break;
            }
            taken.push(queue.pop_front().expect("checked above"));
            count += next;
            if queue.is_empty() {
                self.waiting.remove(&client);
            } else {
                self.order.push_back(client);
            }
            if count >= txs_max {
                break;
            }
        }
        assert_eq!(
            self.order.len(),
            self.waiting.len(),
            "each waiting client once"
        );
        taken
    }
}

struct Queue {
    turns: Mutex<Turns>,
    /// Signalled when a request is queued or the queue is closed.
    arrived: Condvar,
    /// [`QUEUE_MAX`] places; a handler awaits one before queueing.
    room: Arc<Semaphore>,
}

impl Queue {
    fn close(&self) {
        let mut turns = lock(&self.turns);
        turns.closed = true;
        self.arrived.notify_all();
    }
}

/// The queue to the admission thread. The thread ends when the last handle is dropped.
pub struct Admission {
    queue: Arc<Queue>,
    counters: Arc<AdmissionCounters>,
}

impl Admission {
    /// Starts the admission thread for `shared`.
    pub fn start(shared: Arc<Shared>) -> Self {
        let queue = Arc::new(Queue {
            turns: Mutex::default(),
            arrived: Condvar::new(),
            room: Arc::new(Semaphore::new(QUEUE_MAX)),
        });
        let counters = Arc::new(AdmissionCounters::default());
        let (thread_queue, thread_counters) = (Arc::clone(&queue), Arc::clone(&counters));
        std::thread::Builder::new()
            .name("bulwark-admission".into())
            .spawn(move || {
                // However the thread ends (a panic included), what waits is answered with
                // `AdmissionStopped` (its reply dropped) and nothing more is queued.
                struct Stopped(Arc<Queue>);
                impl Drop for Stopped {
                    fn drop(&mut self) {
                        self.0.close();
                        lock(&self.0.turns).waiting.clear();
                    }
                }
                let stopped = Stopped(thread_queue);
                run(&shared, &stopped.0, &thread_counters);
            })
            .expect("the OS starts the admission thread");
        Self { queue, counters }
    }

    /// Admits `txs` from `client` (with whatever other requests are queued); one result per
    /// transaction, in order.
    pub async fn admit(
        &self,
        client: ClientAddress,
        txs: Vec<SignedTx>,
    ) -> Result<Results, AdmissionStopped> {
        let room = Arc::clone(&self.queue.room)
            .acquire_owned()
            .await
            .expect("the queue's room is never closed");
        let (reply, answer) = oneshot::channel();
        {
            let mut turns = lock(&self.queue.turns);
            if turns.closed {
                return Err(AdmissionStopped);
            }
            turns.push(
                client,
                Request {
                    txs,
                    reply,
                    _room: room,
                },
            );
        }
        self.queue.arrived.notify_one();
        answer.await.map_err(|_| AdmissionStopped)
    }

    pub fn counters(&self) -> &AdmissionCounters {
        &self.counters
    }

    /// Requests queued now, waiting for an admission. Counted in the queue itself, not from
    /// its room: a handler holds its place a moment before its request is in the queue, and
    /// a test that waited on the room could release the admission thread before the last
    /// request was queued (a third admission where two were due, seen once in CI).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        lock(&self.queue.turns)
            .waiting
            .values()
            .map(VecDeque::len)
            .sum()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.queue.close();
    }
}

fn run(shared: &Shared, queue: &Queue, counters: &AdmissionCounters) {
    let mut rng = rand::rng();
    loop {
        let requests = {
            let mut turns = lock(&queue.turns);
            while turns.is_empty() && !turns.closed {
                turns = queue.arrived.wait(turns).unwrap_or_else(|p| p.into_inner());
            }
            if turns.closed {
                return;
            }
            turns.take(ADMISSION_TXS_MAX)
        };
        assert!(
            !requests.is_empty(),
            "a queue with clients waiting gives a request"
        );
        let lengths: Vec<usize> = requests.iter().map(|r| r.txs.len()).collect();
        let mut replies = Vec::with_capacity(requests.len());
        let mut txs = Vec::with_capacity(lengths.iter().sum());
        for request in requests {
            txs.extend(request.txs);
            replies.push(request.reply);
            // The request's place in the queue (`_room`) is given back here.
        }
        let count = txs.len();
        counters.admissions.fetch_add(1, Ordering::Relaxed);
        counters
            .requests
            .fetch_add(replies.len() as u64, Ordering::Relaxed);
        let results = shared.submit(txs, &mut rng, true);
        assert_eq!(results.len(), count, "one result per transaction");
        let mut results = results.into_iter();
        for (reply, length) in replies.into_iter().zip(lengths) {
            let own: Results = results.by_ref().take(length).collect();
            // A handler that went away (its client disconnected) needs no answer.
            let _ = reply.send(own);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn client(last: u8) -> ClientAddress {
        ClientAddress::of(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    /// A request of `len` empty transaction slots (the queue only counts them), tagged by
    /// its reply channel's receiver, returned for the test to identify the request.
    fn request(len: usize, room: &Arc<Semaphore>) -> (Request, oneshot::Receiver<Results>) {
        use commonware_cryptography::Signer as _;
        let (reply, answer) = oneshot::channel();
        let key = bulwark_types::PrivateKey::from_seed(1);
        let tx = bulwark_types::Tx {
            signer: key.public_key(),
            nonce: bulwark_types::Nonce::new(1),
            body: bulwark_types::TxBody::CancelAll { instrument: None },
        }
        .sign(&key);
        let request = Request {
            txs: vec![tx; len],
            reply,
            _room: Arc::clone(room).try_acquire_owned().unwrap(),
        };
        (request, answer)
    }

    #[test]
    fn a_client_that_queued_many_requests_does_not_make_another_wait_behind_them() {
        let room = Arc::new(Semaphore::new(QUEUE_MAX));
        let mut turns = Turns::default();
        let flooder = client(2);
        let mut flood = Vec::new();
        for _ in 0..40 {
            let (request, answer) = request(100, &room);
            turns.push(flooder, request);
            flood.push(answer);
        }
        let (honest, mut honest_answer) = request(1, &room);
        turns.push(client(1), honest);
        // Arrival order would take the flooder's first ten requests, then nine more, ...,
        // and the honest request in the fifth admission.
        let first = turns.take(1_000);
        assert_eq!(
            first.iter().map(|r| r.txs.len()).collect::<Vec<_>>(),
            vec![100, 1, 100, 100, 100, 100, 100, 100, 100, 100],
            "the flooder's first request, the honest one, then the flooder's up to the cap"
        );
        assert_eq!(
            room.available_permits(),
            QUEUE_MAX - 41,
            "places held until the requests taken are dropped"
        );
        let mut first = first;
        let _ = first.remove(1).reply.send(Vec::new());
        assert!(
            honest_answer.try_recv().is_ok(),
            "the second request taken is the honest client's"
        );
        drop(first);
        assert_eq!(room.available_permits(), QUEUE_MAX - 31);
        // The flooder's other requests drain, ten an admission.
        let mut left = 31;
        while !turns.is_empty() {
            let taken = turns.take(1_000);
            assert!(taken.len() <= 10 && !taken.is_empty());
            left -= taken.len();
        }
        assert_eq!(left, 0);
    }

    #[test]
    fn a_client_whose_request_does_not_fit_goes_first_in_the_next_admission() {
        let room = Arc::new(Semaphore::new(QUEUE_MAX));
        let mut turns = Turns::default();
        let (a1, _) = request(600, &room);
        let (b1, _) = request(600, &room);
        let (c1, _) = request(10, &room);
        let (big, _) = request(3_000, &room);
        turns.push(client(1), a1);
        turns.push(client(2), b1);
        turns.push(client(3), c1);
        turns.push(client(4), big);
        let lengths = |taken: Vec<Request>| taken.iter().map(|r| r.txs.len()).collect::<Vec<_>>();
        assert_eq!(lengths(turns.take(1_024)), vec![600]);
        assert_eq!(lengths(turns.take(1_024)), vec![600, 10]);
        assert_eq!(
            lengths(turns.take(1_024)),
            vec![3_000],
            "a larger request alone"
        );
        assert!(turns.is_empty());
        assert!(turns.waiting.is_empty());
    }
}
