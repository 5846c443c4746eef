//! The gateway's submissions against fake validators' APIs (axum on 127.0.0.1): one
//! validator's answer never decides alone while another may still admit, and a slow
//! validator receives one key's transactions in the order they were submitted.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use bulwark_gateway::source::HttpValidator;
use bulwark_gateway::submitter::{Outcome, Submitter};
use bulwark_types::{BlockLimits, Money, PrivateKey, SignedTx, TxBody};
use commonware_codec::Encode as _;
use commonware_consensus::simplex::scheme::ed25519;
use commonware_cryptography::Signer as _;
use commonware_utils::ordered::Set;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a fake validator answers every transaction of a batch.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Admits, after this long, or three times as long every other request (so requests in
    /// flight together would be answered out of order).
    Admit(Duration),
    /// Refuses with this code, at once.
    Refuse(&'static str),
    /// Answers the whole request 503.
    Down,
    /// Admits, in batches of at most this many (a larger one is refused whole, as a
    /// validator with a lower `batch_txs_max` does).
    AdmitUpTo(usize),
}

#[derive(Clone)]
struct Fake {
    behaviour: Behaviour,
    /// Every transaction received, hex, in the order its request was answered.
    seen: Arc<Mutex<Vec<String>>>,
    requests: Arc<std::sync::atomic::AtomicU64>,
}

async fn txs(State(fake): State<Fake>, body: Bytes) -> (axum::http::StatusCode, String) {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let txs: Vec<String> = body["txs"]
        .as_array()
        .map(|txs| {
            txs.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let result = match fake.behaviour {
        Behaviour::Admit(after) => {
            let request = fake
                .requests
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(after * (1 + 2 * (request % 2) as u32)).await;
            json!({"digest": "00", "status": "pending"})
        }
        Behaviour::Refuse(code) => json!({"error": "refused", "code": code}),
        Behaviour::AdmitUpTo(max) if txs.len() > max => {
            let refused = json!({"error": "batch too large", "code": "batch_too_large"});
            return (axum::http::StatusCode::BAD_REQUEST, refused.to_string());
        }
        Behaviour::AdmitUpTo(_) => json!({"digest": "00", "status": "pending"}),
        Behaviour::Down => {
            let down = json!({"error": "halted", "code": "node_halted"});
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                down.to_string(),
            );
        }
    };
    fake.seen.lock().unwrap().extend(txs.iter().cloned());
    let results = vec![result; txs.len()];
    (
        axum::http::StatusCode::OK,
        json!({ "results": results }).to_string(),
    )
}

/// Starts a fake validator; returns its client and what it receives.
async fn fake(behaviour: Behaviour) -> (HttpValidator, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().route("/txs", post(txs)).with_state(Fake {
        behaviour,
        seen: seen.clone(),
        requests: Arc::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let keys: Vec<PrivateKey> = (0..4).map(PrivateKey::from_seed).collect();
    let participants = Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
    let verifier = ed25519::Scheme::verifier(b"fake", participants);
    let client = HttpValidator::new(
        &format!("http://{addr}"),
        BlockLimits::DEFAULT,
        &verifier,
        4,
        Duration::from_secs(5),
    )
    .unwrap();
    (client, seen)
}

fn order(nonce: u64) -> SignedTx {
    TxBody::Withdraw {
        amount: Money::from_usdc(1),
    }
    .signed(&PrivateKey::from_seed(7), nonce)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_refusal_does_not_decide_while_another_validator_admits() {
    let (liar, _) = fake(Behaviour::Refuse("signature_invalid")).await;
    let (honest, seen) = fake(Behaviour::Admit(Duration::from_millis(50))).await;
    let submitter = Submitter::start(&[liar, honest]);
    // The liar answers at once, the honest validator 50 ms later: the admission decides.
    assert_eq!(submitter.submit(&order(1)).await, Outcome::Admitted);
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Each validator's answer is counted as its word, for `/gateway/v1/status`.
    let report = submitter.report();
    assert_eq!(
        [0, 1].map(|i| (
            report[i].admitted,
            report[i].refused,
            report[i].busy,
            report[i].queued
        )),
        [(0, 1, 0, 0), (1, 0, 0, 0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_decides_only_when_no_validator_admits() {
    let (refusing, _) = fake(Behaviour::Refuse("nonce_stale")).await;
    let (down, _) = fake(Behaviour::Down).await;
    let submitter = Submitter::start(&[down.clone(), refusing]);
    match submitter.submit(&order(1)).await {
        Outcome::Refused(refusal) => assert_eq!(refusal.code, "nonce_stale"),
        other => panic!("the merit refusal: {other:?}"),
    }
    // Only down, full or halted validators: busy, never a refusal of the transaction.
    let (full, _) = fake(Behaviour::Refuse("mempool_full")).await;
    let submitter = Submitter::start(&[down, full]);
    assert!(matches!(
        submitter.submit(&order(2)).await,
        Outcome::Busy(_)
    ));
    assert_eq!(submitter.report().iter().map(|r| r.busy).sum::<u64>(), 2);
    // A validator holding it already has it: admitted.
    let (holding, _) = fake(Behaviour::Refuse("duplicate")).await;
    assert_eq!(
        Submitter::start(&[holding]).submit(&order(3)).await,
        Outcome::Admitted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_validator_receives_one_key_s_transactions_in_submission_order() {
    let (fast, fast_seen) = fake(Behaviour::Admit(Duration::ZERO)).await;
    let (slow, slow_seen) = fake(Behaviour::Admit(Duration::from_millis(20))).await;
    let submitter = Submitter::start(&[fast, slow]);
    let orders: Vec<SignedTx> = (1..=60).map(order).collect();
    // Each submission returns on the fast validator's admission, while the slow one's lane
    // still holds earlier ones: it must deliver them in order all the same.
    for tx in &orders {
        assert_eq!(submitter.submit(tx).await, Outcome::Admitted);
    }
    let expected: Vec<String> = orders
        .iter()
        .map(|tx| bulwark_node::executor::hex(&tx.encode()))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while slow_seen.lock().unwrap().len() < orders.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow lane delivers"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Each validator's arrivals as submission numbers: 1, 2, ... 60 when in order.
    let order_of = |seen: &[String]| -> Vec<usize> {
        seen.iter()
            .map(|hex| {
                1 + expected
                    .iter()
                    .position(|e| e == hex)
                    .expect("a submitted one")
            })
            .collect()
    };
    let in_order: Vec<usize> = (1..=orders.len()).collect();
    assert_eq!(order_of(&fast_seen.lock().unwrap()), in_order);
    assert_eq!(order_of(&slow_seen.lock().unwrap()), in_order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_with_smaller_batches_gets_every_transaction_in_smaller_ones() {
    let (small, seen) = fake(Behaviour::AdmitUpTo(3)).await;
    let submitter = Arc::new(Submitter::start(&[small]));
    // Submitted together, so the lane's first batch holds more than three.
    let orders: Vec<SignedTx> = (1..=40).map(order).collect();
    let outcomes = futures::future::join_all(orders.iter().map(|tx| {
        let submitter = submitter.clone();
        async move { submitter.submit(tx).await }
    }))
    .await;
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Admitted),
        "{outcomes:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), orders.len());
}
