//! The API against hostile input, over real TCP: every bad request gets a typed 4xx and the
//! server keeps answering.

use super::*;
use crate::chain::Chain;
use crate::mempool::{Mempool, MempoolLimits};
use crate::shared::lock;
use base64::Engine as _;
use bulwark_exchange::{Exchange, ExchangeParams, Genesis};
use bulwark_types::{
    Block, BlockTime, Height, InstrumentName, InstrumentSpec, Money, Multiplier, Nonce,
    PriceInputs, PrivateKey, Qty, SignedTx, Tx, TxBody, UnitPrice,
};
use commonware_codec::Encode;
use commonware_cryptography::{Hasher, Sha256, Signer};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde_json::Value;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BODY_MAX: usize = 4_096;

fn keys() -> (PrivateKey, PrivateKey, PrivateKey) {
    (
        PrivateKey::from_seed(1),
        PrivateKey::from_seed(2),
        PrivateKey::from_seed(3),
    )
}

fn sign(key: &PrivateKey, nonce: u64, body: TxBody) -> SignedTx {
    Tx {
        signer: key.public_key(),
        nonce: Nonce::new(nonce),
        body,
    }
    .sign(key)
}

fn deposit(bridge: &PrivateKey, nonce: u64, owner: &PrivateKey) -> SignedTx {
    sign(
        bridge,
        nonce,
        TxBody::Deposit {
            owner: owner.public_key(),
            amount: Money::from_usdc(1_000),
        },
    )
}

fn hex_of(tx: &SignedTx) -> String {
    crate::executor::hex(&tx.encode())
}

/// A node state after one block that lists the perpetual and funds the trader.
fn shared() -> Arc<Shared> {
    let (admin, bridge, trader) = keys();
    let mut exchange = Exchange::new(&genesis()).unwrap();
    let spec = InstrumentSpec {
        name: InstrumentName::parse("BTC_USDC-PERPETUAL").unwrap(),
        tick_size: UnitPrice::from_micros(500_000),
        multiplier: Multiplier::from_e8(100_000),
        lot_size: Qty::from_contracts(1),
        size_min: Qty::from_contracts(1),
    };
    let txs = vec![
        sign(&admin, 1, TxBody::ListInstrument(spec)),
        deposit(&bridge, 1, &trader),
    ];
    let block = Block {
        height: Height::new(1),
        time: BlockTime::from_millis(2_000),
        prices: PriceInputs::default(),
        observations: Vec::new(),
        txs,
    };
    let checked = block.check_signatures(&mut ChaCha8Rng::seed_from_u64(0));
    exchange.apply_block(&checked).unwrap();
    let chain = Chain::new(exchange, Sha256::hash(&[b"block one"]));
    Arc::new(Shared::new(
        chain,
        Mempool::new(MempoolLimits::DEFAULT),
        1_024,
        1_024,
    ))
}

struct Server {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    state: ApiState,
}

/// The tests' API settings: small bounds, short timeouts.
const CONFIG: ApiConfig = ApiConfig {
    body_bytes_max: BODY_MAX,
    batch_txs_max: 4,
    book_depth_max: 50,
    connections_max: 64,
    connections_per_client_max: 48,
    header_read_timeout: std::time::Duration::from_secs(1),
    request_timeout: std::time::Duration::from_secs(1),
};

async fn start() -> Server {
    start_with(CONFIG).await
}

async fn start_with(config: ApiConfig) -> Server {
    let shared = shared();
    let identity = NodeIdentity {
        public_key: "00".repeat(32),
        participants: vec!["00".repeat(32); 4],
    };
    let state = ApiState::new(shared.clone(), config, identity, Telemetry::none());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state.clone(), std::future::pending()));
    Server {
        addr,
        shared,
        state,
    }
}

/// Sends raw bytes, returns (status, body as JSON or a string).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, Value) {
    raw_on(TcpStream::connect(addr).await.unwrap(), request).await
}

/// A connection to `addr` from the loopback address `127.0.0.{client}` (Linux routes all of
/// 127/8 to the loopback interface): another client, as the server counts them.
async fn connect_from(client: u8, addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, client], 0)))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// Sends raw bytes on `stream`, returns (status, body as JSON or a string); status 0 when
/// the server closed the connection without an answer.
async fn raw_on(mut stream: TcpStream, request: &[u8]) -> (u16, Value) {
    // The server may answer (and close) before reading everything; a failed write is fine.
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    // Bounded: a server that kept the connection open would fail the test, not hang it.
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await;
    let head = String::from_utf8_lossy(&request[..request.len().min(60)]);
    assert!(
        read.is_ok(),
        "server kept the connection open after {head:?}, answering {:?}",
        String::from_utf8_lossy(&response)
    );
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

async fn request(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    raw(addr, &http(method, path, body)).await
}

/// One HTTP/1.1 request that closes its connection.
fn http(method: &str, path: &str, body: &str) -> Vec<u8> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body.as_bytes()].concat()
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test]
async fn malformed_json_and_encodings_are_typed_400s() {
    let server = start().await;
    for (body, expected) in [
        ("{not json", "json_invalid"),
        ("[1,2,3]", "json_invalid"),
        (r#"{"tx": "ab", "extra": 1}"#, "json_invalid"),
        (r#"{}"#, "json_invalid"),
        (r#"{"tx": "zz"}"#, "encoding_invalid"),
        (r#"{"tx": "abc"}"#, "encoding_invalid"),
        (r#"{"tx_base64": "!!!"}"#, "encoding_invalid"),
        (r#"{"tx": "00ff00ff"}"#, "tx_undecodable"),
        (r#"{"tx": ""}"#, "tx_undecodable"),
    ] {
        let (status, response) = request(server.addr, "POST", "/tx", body).await;
        assert_eq!((status, code(&response)), (400, expected), "{body}");
        assert!(response["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (status, response) = request(server.addr, "POST", "/tx", "\u{0}\u{1}garbage").await;
    assert_eq!((status, code(&response)), (400, "json_invalid"));
    // Regression: the fuzzer's transaction with a multi-byte character in an instrument name
    // panicked the API worker; it is a typed refusal, and the server goes on answering.
    let hostile = include_bytes!("../../../../fuzz/seeds/tx_decode/regression-multibyte-expiry");
    let body = format!(r#"{{"tx": "{}"}}"#, crate::executor::hex(hostile));
    let (status, response) = request(server.addr, "POST", "/tx", &body).await;
    assert_eq!((status, code(&response)), (400, "tx_undecodable"));
    let (status, _) = request(server.addr, "GET", "/status", "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_parsing() {
    let server = start().await;
    let big = format!(r#"{{"tx": "{}"}}"#, "a".repeat(BODY_MAX * 2));
    let (status, response) = request(server.addr, "POST", "/tx", &big).await;
    assert_eq!((status, code(&response)), (413, "body_too_large"));
    // A body that claims to be huge is refused without being read.
    let head =
        "POST /txs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n{";
    let (status, response) = raw(server.addr, head.as_bytes()).await;
    assert_eq!((status, code(&response)), (413, "body_too_large"));
    // Chunked, without a length, past the limit.
    let chunk = "b".repeat(BODY_MAX);
    let chunked = format!(
        "POST /tx HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    let (status, response) = raw(server.addr, chunked.as_bytes()).await;
    assert_eq!((status, code(&response)), (413, "body_too_large"));
    // Batches beyond their count.
    let (admin, bridge, trader) = keys();
    let _ = admin;
    let txs: Vec<String> = (2..8)
        .map(|n| format!("\"{}\"", hex_of(&deposit(&bridge, n, &trader))))
        .collect();
    let (status, response) = request(
        server.addr,
        "POST",
        "/txs",
        &format!(r#"{{"txs": [{}]}}"#, txs.join(",")),
    )
    .await;
    assert_eq!((status, code(&response)), (400, "batch_too_large"));
    let (status, response) = request(server.addr, "POST", "/txs", r#"{"txs": []}"#).await;
    assert_eq!((status, code(&response)), (400, "batch_empty"));
}

#[tokio::test]
async fn bad_signatures_and_replays_are_refused_and_good_ones_admitted() {
    let server = start().await;
    let (_, bridge, trader) = keys();
    // A valid signature over different contents.
    let mut forged = deposit(&bridge, 2, &trader);
    forged.signature = deposit(&bridge, 3, &trader).signature;
    let (status, response) = request(
        server.addr,
        "POST",
        "/tx",
        &format!(r#"{{"tx": "{}"}}"#, hex_of(&forged)),
    )
    .await;
    assert_eq!((status, code(&response)), (422, "signature_invalid"));
    // Replay of the deposit the genesis block already executed (nonce 1).
    let executed = deposit(&bridge, 1, &trader);
    let (status, response) = request(
        server.addr,
        "POST",
        "/tx",
        &format!(r#"{{"tx": "{}"}}"#, hex_of(&executed)),
    )
    .await;
    assert_eq!((status, code(&response)), (409, "nonce_stale"));
    // Stateless checks of the body: a zero deposit.
    let zero = sign(
        &bridge,
        9,
        TxBody::Deposit {
            owner: trader.public_key(),
            amount: Money::ZERO,
        },
    );
    let (status, response) = request(
        server.addr,
        "POST",
        "/tx",
        &format!(r#"{{"tx": "{}"}}"#, hex_of(&zero)),
    )
    .await;
    assert_eq!((status, code(&response)), (422, "tx_invalid"));
    assert!(response["reject_code"].as_u64().is_some());
    // A good one is pending, and its replay while pending is a duplicate.
    let good = deposit(&bridge, 2, &trader);
    let (status, response) = request(
        server.addr,
        "POST",
        "/tx",
        &format!(r#"{{"tx": "{}"}}"#, hex_of(&good)),
    )
    .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["status"], "pending");
    let digest = response["digest"].as_str().unwrap().to_string();
    let (status, response) = request(
        server.addr,
        "POST",
        "/tx",
        &format!(r#"{{"tx": "{}"}}"#, hex_of(&good)),
    )
    .await;
    assert_eq!((status, code(&response)), (409, "duplicate"));
    let (status, response) = request(server.addr, "GET", &format!("/tx/{digest}"), "").await;
    assert_eq!(
        (status, response["status"].as_str()),
        (200, Some("pending"))
    );
    // Base64 works too; the batch route reports each transaction on its own.
    let b64 =
        base64::engine::general_purpose::STANDARD.encode(deposit(&bridge, 3, &trader).encode());
    let (status, _) = request(
        server.addr,
        "POST",
        "/tx",
        &format!(r#"{{"tx_base64": "{b64}"}}"#),
    )
    .await;
    assert_eq!(status, 200);
    let batch = format!(
        r#"{{"txs": ["{}", "nothex", "{}"]}}"#,
        hex_of(&deposit(&bridge, 4, &trader)),
        hex_of(&forged)
    );
    let (status, response) = request(server.addr, "POST", "/txs", &batch).await;
    assert_eq!(status, 200);
    let results = response["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "pending");
    assert_eq!(code(&results[1]), "encoding_invalid");
    assert_eq!(code(&results[2]), "signature_invalid");
    assert_eq!(lock(&server.shared.mempool).len(), 3);
}

#[tokio::test]
async fn reads_validate_their_inputs() {
    let server = start().await;
    let (_, _, trader) = keys();
    let key = crate::executor::hex(trader.public_key().as_ref());
    let cases: Vec<(String, u16, &str)> = vec![
        ("/book/NOT-A-NAME".into(), 400, "instrument_name_invalid"),
        ("/book/ETH_USDC-PERPETUAL".into(), 404, "instrument_unknown"),
        (
            "/book/BTC_USDC-PERPETUAL?depth=0".into(),
            400,
            "query_invalid",
        ),
        (
            "/book/BTC_USDC-PERPETUAL?depth=99999".into(),
            400,
            "query_invalid",
        ),
        (
            "/book/BTC_USDC-PERPETUAL?depth=abc".into(),
            400,
            "query_invalid",
        ),
        ("/account/xyz".into(), 400, "key_invalid"),
        (format!("/account/{}", "ab".repeat(40)), 400, "key_invalid"),
        (
            format!(
                "/account/{}",
                crate::executor::hex(PrivateKey::from_seed(99).public_key().as_ref())
            ),
            404,
            "account_unknown",
        ),
        ("/tx/1234".into(), 400, "digest_invalid"),
        (format!("/tx/{}", "00".repeat(32)), 404, "tx_unknown"),
        ("/nowhere".into(), 404, "route_unknown"),
    ];
    for (path, status, expected) in cases {
        let (got, response) = request(server.addr, "GET", &path, "").await;
        assert_eq!((got, code(&response)), (status, expected), "{path}");
    }
    let (status, response) = request(server.addr, "DELETE", "/status", "").await;
    assert_eq!((status, code(&response)), (405, "method_not_allowed"));
    let (status, response) =
        request(server.addr, "GET", "/book/BTC_USDC-PERPETUAL?depth=5", "").await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["instrument"]["name"], "BTC_USDC-PERPETUAL");
    let (status, response) = request(server.addr, "GET", &format!("/account/{key}"), "").await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(
        (response["cash"].as_str(), response["nonce_next"].as_u64()),
        (Some("1000.000000"), Some(1))
    );
    let (status, response) = request(server.addr, "GET", "/status", "").await;
    assert_eq!((status, response["mode"].as_str()), (200, Some("running")));
    // No oracle and no option quotes: every trading instrument's mark is the leader's.
    assert!(
        response["oracle"]["marks"]["leader-supplied"].as_u64() > Some(0),
        "{response}"
    );
    assert_eq!(response["oracle"]["smiles"], serde_json::json!([]));
    // No peer has forged: nothing muted, reported as zeros (not absent).
    assert_eq!(
        (&response["gossip_muted"], &response["gossip_forgers"]),
        (&serde_json::json!(0), &serde_json::json!(0)),
        "{response}"
    );
    let (status, response) = request(server.addr, "GET", "/metrics", "").await;
    let text = response.as_str().unwrap_or_default();
    assert_eq!(status, 200);
    assert!(
        text.contains("bulwark_finalized_height 0") && text.ends_with("# EOF\n"),
        "{text}"
    );
}

#[tokio::test]
async fn garbage_on_the_port_does_not_stop_the_server() {
    let server = start().await;
    for garbage in [
        &b"\x00\x01\x02\xff\xfe"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /tx HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        &[b'A'; 70_000],
    ] {
        let _ = raw(server.addr, garbage).await;
    }
    // A body that never arrives times out; the server answers others meanwhile.
    let slow = "POST /tx HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{";
    let (status, response) = raw(server.addr, slow.as_bytes()).await;
    assert_eq!((status, code(&response)), (408, "request_timeout"));
    let (status, _) = request(server.addr, "GET", "/status", "").await;
    assert_eq!(status, 200);
}

/// A block source holding one block at height 1, without its finalization.
struct OneBlock(crate::block::ChainBlock);

impl FinalizedBlocks for OneBlock {
    fn block(
        &self,
        height: u64,
    ) -> futures::future::BoxFuture<'static, Option<crate::block::ChainBlock>> {
        let block = (height == 1).then(|| self.0.clone());
        Box::pin(async move { block })
    }

    fn finalization(
        &self,
        _height: u64,
    ) -> futures::future::BoxFuture<'static, Option<crate::sync::BlockFinalization>> {
        Box::pin(async { None })
    }
}

#[tokio::test]
async fn blocks_are_served_by_height_and_missing_ones_are_typed() {
    let server = start().await;
    // No source named yet: 503, not a panic.
    let (status, response) = request(server.addr, "GET", "/blocks/1", "").await;
    assert_eq!((status, code(&response)), (503, "blocks_unavailable"));

    let shared = server.shared.clone();
    let config = ApiConfig::DEFAULT;
    let identity = NodeIdentity {
        public_key: "00".repeat(32),
        participants: vec!["00".repeat(32); 4],
    };
    let state = ApiState::new(shared.clone(), config, identity, Telemetry::none());
    let leader = PrivateKey::from_seed(9).public_key();
    let genesis =
        crate::block::ChainBlock::genesis(leader, Sha256::hash(&[b"s"]), BlockTime::from_millis(1));
    state.serve_blocks(Arc::new(OneBlock(genesis.clone())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state, std::future::pending()));
    lock(&shared.status).finalized_height = 2;

    let (status, response) = request(addr, "GET", "/blocks/1", "").await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["height"], 1);
    assert_eq!(
        response["block"].as_str().unwrap(),
        crate::executor::hex(&genesis.encode())
    );
    assert!(response["finalization"].is_null());
    let (status, response) = request(addr, "GET", "/blocks/2", "").await;
    assert_eq!((status, code(&response)), (410, "block_pruned"));
    let (status, response) = request(addr, "GET", "/blocks/3", "").await;
    assert_eq!((status, code(&response)), (404, "block_not_finalized"));
    let (status, response) = request(addr, "GET", "/blocks/-1", "").await;
    assert_eq!((status, code(&response)), (400, "path_invalid"));
    let (status, response) = request(addr, "GET", "/blocks/latest", "").await;
    assert_eq!((status, response["height"].as_u64()), (200, Some(2)));

    // The snapshot: none yet, then its bytes and height.
    let (status, response) = request(addr, "GET", "/snapshot", "").await;
    assert_eq!((status, code(&response)), (404, "snapshot_unavailable"));
    *lock(&shared.snapshot) = Some(crate::sync::ServedSnapshot::new(7, b"state".to_vec()));
    let head = "GET /snapshot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("x-bulwark-height: 7"), "{text}");
    assert!(text.ends_with("\r\n\r\nstate"), "{text}");
}

/// A follower's long poll (`?wait_ms=`) is answered the moment the executor announces the
/// block, not at the end of its wait; a wait that ends first is the usual typed 404; a bad
/// wait is a typed 400.
#[tokio::test]
async fn a_long_poll_for_a_block_is_answered_when_the_node_executes_it() {
    let shared = shared();
    let identity = NodeIdentity {
        public_key: "00".repeat(32),
        participants: vec!["00".repeat(32); 4],
    };
    let state = ApiState::new(
        shared.clone(),
        ApiConfig::DEFAULT,
        identity,
        Telemetry::none(),
    );
    let leader = PrivateKey::from_seed(9).public_key();
    let genesis =
        crate::block::ChainBlock::genesis(leader, Sha256::hash(&[b"s"]), BlockTime::from_millis(1));
    state.serve_blocks(Arc::new(OneBlock(genesis)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state, std::future::pending()));

    for (query, expected) in [
        ("wait_ms=soon", "query_invalid"),
        ("wait_ms=-1", "query_invalid"),
        ("wait=5", "query_invalid"),
    ] {
        let (status, response) = request(addr, "GET", &format!("/blocks/1?{query}"), "").await;
        assert_eq!((status, code(&response)), (400, expected), "{query}");
    }
    // Nothing executed, a short wait: the usual 404 once it ends.
    let (status, response) = request(addr, "GET", "/blocks/1?wait_ms=20", "").await;
    assert_eq!((status, code(&response)), (404, "block_not_finalized"));

    // A wait longer than the cap is cut to it, not refused; it is answered when block 1 is
    // executed here.
    let polled = tokio::spawn(async move {
        request(addr, "GET", &format!("/blocks/1?wait_ms={}", u64::MAX), "").await
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!polled.is_finished(), "the poll waits for the block");
    shared.record_finalized(1, String::new(), String::new(), |_| {});
    let (status, response) = tokio::time::timeout(std::time::Duration::from_secs(1), polled)
        .await
        .expect("answered at the announcement, long before the cap")
        .unwrap();
    assert_eq!(
        (status, response["height"].as_u64()),
        (200, Some(1)),
        "{response}"
    );
    // What waits see never moves back.
    shared.record_finalized(0, String::new(), String::new(), |_| {});
    assert!(shared.wait_finalized(1, std::time::Duration::ZERO).await);
}

#[tokio::test]
async fn a_receipt_only_on_disk_is_served_without_events_and_batches_answer_each_digest() {
    use crate::receipt_archive::{StoredReceipt, query_channel};
    use bulwark_types::RejectReason;
    use futures::StreamExt;
    let server = start().await;
    let on_disk = Sha256::hash(&[b"finalized before a restart"]);
    let (sender, mut queries) = query_channel();
    *lock(&server.shared.receipt_queries) = Some(sender);
    // Stands in for the archive task: knows one receipt.
    tokio::spawn(async move {
        while let Some(query) = queries.next().await {
            let found = query
                .digests
                .iter()
                .map(|d| {
                    (*d == on_disk).then_some(StoredReceipt {
                        height: 9,
                        index: 2,
                        rejection: Some(RejectReason::NonceNotIncreasing),
                    })
                })
                .collect();
            let _ = query.reply.send(found);
        }
    });
    let text = crate::executor::hex(on_disk.as_ref());
    let (status, body) = request(server.addr, "GET", &format!("/tx/{text}"), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["status"].as_str(),
            body["height"].as_u64(),
            body["index"].as_u64()
        ),
        (Some("finalized"), Some(9), Some(2))
    );
    assert_eq!(body["outcome"]["result"], "rejected");
    assert!(body["events"].is_null(), "{body}");
    let unknown = "00".repeat(32);
    let batch = format!(r#"{{"digests": ["{text}", "{unknown}", "zz"]}}"#);
    let (status, body) = request(server.addr, "POST", "/txs/status", &batch).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["height"], 9);
    assert_eq!(results[1]["status"], "unknown");
    assert_eq!(code(&results[2]), "digest_invalid");
    let five = format!(
        r#"{{"digests": [{}]}}"#,
        vec![format!("\"{unknown}\""); 5].join(",")
    );
    let (status, body) = request(server.addr, "POST", "/txs/status", &five).await;
    assert_eq!((status, code(&body)), (400, "batch_too_large"));
}

/// The chain's lock held by another thread (as verify and the executor hold it while they
/// execute a block) until released.
struct ChainHeld {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl ChainHeld {
    /// Returns once the other thread holds the lock.
    fn by_another_thread(shared: &Arc<Shared>) -> Self {
        let (locked_sender, locked) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let shared = shared.clone();
        let holder = std::thread::spawn(move || {
            let _chain = lock(&shared.chain);
            locked_sender.send(()).unwrap();
            released.recv().unwrap();
        });
        locked.recv().unwrap();
        Self { release, holder }
    }

    fn release(self) {
        self.release.send(()).unwrap();
        self.holder.join().unwrap();
    }
}

/// State reads are served from the published finalized state: they answer while another task
/// holds the chain's lock (as verify and the executor do while they execute a block). Before
/// the published view, each of these waited for that lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_reads_answer_while_the_chain_is_locked() {
    let server = start().await;
    let (_, _, trader) = keys();
    let key = crate::executor::hex(trader.public_key().as_ref());
    let chain_held = ChainHeld::by_another_thread(&server.shared);
    let paths = [
        "/instruments".to_string(),
        "/book/BTC_USDC-PERPETUAL".to_string(),
        "/prices".to_string(),
        format!("/account/{key}"),
        format!("/positions/{key}"),
        "/status".to_string(),
    ];
    for path in &paths {
        let (status, body) = request(server.addr, "GET", path, "").await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, account) = request(server.addr, "GET", &format!("/account/{key}"), "").await;
    assert_eq!(account["nonce_next"], 1, "{account}");
    chain_held.release();
}

/// Single-transaction requests (as a Deribit client sends through the gateway) that arrive
/// while an admission runs are admitted together, in one batch verification; each request gets
/// its own transaction's answer, and a forged signature among them is refused alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_transaction_requests_are_admitted_together() {
    const WAITING: u64 = 32;
    const FORGED: u64 = 17;
    let server = start().await;
    let (_, _, trader) = keys();
    let cancel = |nonce| sign(&trader, nonce, TxBody::CancelAll { instrument: None });
    let submit = |tx: SignedTx| {
        let addr = server.addr;
        tokio::spawn(async move {
            let body = format!(r#"{{"tx": "{}"}}"#, hex_of(&tx));
            request(addr, "POST", "/tx", &body).await
        })
    };
    // The first admission waits on the chain's lock (as it would behind a block's execution)
    // while the other requests arrive.
    let chain_held = ChainHeld::by_another_thread(&server.shared);
    let first = submit(cancel(1));
    let admission = &server.state.inner.admission;
    let queued = || admission.queued();
    let taken = || admission.counters().requests.load(Ordering::Relaxed);
    // Bounded wait for a condition (not a timing assertion): the first request is taken.
    for _ in 0..10_000 {
        if taken() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let mut txs = Vec::new();
    let mut answers = Vec::new();
    for nonce in 2..2 + WAITING {
        let tx = if nonce == FORGED {
            // The trader's transaction with another transaction's signature.
            SignedTx {
                tx: cancel(nonce).tx,
                signature: cancel(nonce + 1_000).signature,
            }
        } else {
            cancel(nonce)
        };
        txs.push(tx.clone());
        answers.push(submit(tx));
    }
    for _ in 0..10_000 {
        if queued() == WAITING as usize {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(
        queued(),
        WAITING as usize,
        "every request queued behind the first"
    );
    chain_held.release();
    let (status, body) = first.await.unwrap();
    assert_eq!(status, 200, "{body}");
    for (tx, answer) in txs.iter().zip(answers) {
        let (status, body) = answer.await.unwrap();
        if tx.tx.nonce.get() == FORGED {
            assert_eq!((status, code(&body)), (422, "signature_invalid"), "{body}");
        } else {
            assert_eq!(status, 200, "{body}");
            let own = crate::executor::hex(crate::mempool::tx_digest(tx).as_ref());
            assert_eq!(
                body["digest"], own,
                "each request answered with its own digest"
            );
        }
    }
    assert_eq!(taken(), 1 + WAITING);
    assert_eq!(
        admission.counters().admissions.load(Ordering::Relaxed),
        2,
        "the first request alone, then everything that queued behind it in one admission"
    );
}

#[test]
fn absorbed_accounts_and_held_withdrawals_have_their_own_event_views() {
    let exchange = Exchange::new(&genesis()).unwrap();
    let (one, three) = (
        bulwark_types::AccountId::new(1),
        bulwark_types::AccountId::new(3),
    );
    let view = |event| views::event_json(&exchange, &event);
    let absorbed = view(bulwark_exchange::Event::AccountAbsorbed {
        account: three,
        into: one,
        amount: Money::from_usdc(1),
    });
    assert_eq!(absorbed["type"], "account_absorbed", "{absorbed}");
    let requested = view(bulwark_exchange::Event::WithdrawalRequested {
        account: one,
        amount: Money::from_usdc(5),
    });
    assert_eq!(requested["type"], "withdrawal_requested", "{requested}");
    assert_eq!(requested["amount"], "5.000000", "{requested}");
    let cancelled = view(bulwark_exchange::Event::WithdrawalCancelled {
        account: one,
        amount: Money::from_usdc(5),
        reason: bulwark_types::RejectReason::WithdrawalDuringLiquidation,
    });
    assert_eq!(cancelled["type"], "withdrawal_cancelled", "{cancelled}");
    assert_eq!(cancelled["code"], 80, "{cancelled}");
}

/// The genesis of these tests: the default parameters, no oracle, no custodians.
fn genesis() -> Genesis {
    let (admin, bridge, _) = keys();
    Genesis {
        admin: admin.public_key(),
        bridge: bridge.public_key(),
        params: ExchangeParams::defaults(),
        time: BlockTime::from_millis(1_000),
        oracle: None,
        custody: None,
    }
}

/// The attack: one client opens every connection the API allows and holds them (here idle;
/// as well one slow request on each), so every other client's connection is closed on accept
/// until it lets go. Each client now holds at most `connections_per_client_max`: the
/// flooder's connections past it are closed, and another client is still served. Before the
/// bound, the honest request below was closed unanswered (status 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holding_every_connection_does_not_lock_the_others_out() {
    let server = start_with(ApiConfig {
        header_read_timeout: std::time::Duration::from_secs(30),
        request_timeout: std::time::Duration::from_secs(30),
        ..CONFIG
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..CONFIG.connections_max {
        held.push(connect_from(2, server.addr).await);
    }
    // Bounded wait for a condition (not a timing assertion): the server has accepted (and
    // closed or kept) every one of them once another client's request is answered.
    let (status, body) = raw_on(
        connect_from(1, server.addr).await,
        &http("GET", "/status", ""),
    )
    .await;
    assert_eq!(status, 200, "another client is served: {body}");
    // The flooder's connections past its bound were closed unanswered; the first ones are
    // served.
    let last = held.pop().unwrap();
    assert_eq!(raw_on(last, &http("GET", "/status", "")).await.0, 0);
    let first = held.remove(0);
    assert_eq!(raw_on(first, &http("GET", "/status", "")).await.0, 200);
}

/// The attack: one client queues full batches on all its connections, so the admission
/// thread, which takes requests in the order they came, checks every one of its signatures
/// before anyone else's transaction. Clients now take turns: another client's request,
/// queued behind sixteen of the flooder's, is admitted in the next admission, while most of
/// the flood still waits. Before, it was answered after every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_does_not_make_another_wait_behind_its_requests() {
    const BATCH: usize = 256;
    const FLOOD: usize = 16;
    let server = start_with(ApiConfig {
        body_bytes_max: 1 << 20,
        batch_txs_max: BATCH,
        header_read_timeout: std::time::Duration::from_secs(30),
        request_timeout: std::time::Duration::from_secs(30),
        ..CONFIG
    })
    .await;
    let (_, _, trader) = keys();
    let mut nonce = 0;
    let mut batch = || {
        let txs: Vec<String> = (0..BATCH)
            .map(|_| {
                nonce += 1;
                let tx = sign(&trader, nonce, TxBody::CancelAll { instrument: None });
                format!("\"{}\"", hex_of(&tx))
            })
            .collect();
        format!(r#"{{"txs": [{}]}}"#, txs.join(","))
    };
    let send = |client: u8, path: &'static str, body: String| {
        let addr = server.addr;
        tokio::spawn(async move {
            let request = http("POST", path, &body);
            let (status, body) = raw_on(connect_from(client, addr).await, &request).await;
            (status, body, std::time::Instant::now())
        })
    };
    let admission = &server.state.inner.admission;
    let queued = || admission.queued();
    let taken = || admission.counters().requests.load(Ordering::Relaxed);
    // Bounded wait for a condition (not a timing assertion).
    let until = async |condition: &dyn Fn() -> bool| {
        for _ in 0..10_000 {
            if condition() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("the condition never held");
    };
    // The flooder's first admission waits on the chain's lock (as behind a block's
    // execution) while the rest of its requests queue, then the honest one.
    let chain_held = ChainHeld::by_another_thread(&server.shared);
    let mut flood = vec![send(2, "/txs", batch())];
    until(&|| taken() == 1).await;
    for _ in 1..FLOOD {
        flood.push(send(2, "/txs", batch()));
    }
    until(&|| queued() == FLOOD - 1).await;
    // Any other client's transaction (this key has no account: a quick refusal).
    let honest_tx = sign(
        &PrivateKey::from_seed(9),
        1,
        TxBody::CancelAll { instrument: None },
    );
    let honest = send(1, "/tx", format!(r#"{{"tx": "{}"}}"#, hex_of(&honest_tx)));
    until(&|| queued() == FLOOD).await;
    chain_held.release();
    let (status, body, honest_at) = honest.await.unwrap();
    assert_ne!(status, 0, "answered: {body}");
    let mut after = 0;
    for request in flood {
        let (status, body, at) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        after += usize::from(at > honest_at);
    }
    // In turns: the flooder's first request (alone), then its second, the honest one and
    // two more (1,024 transactions at most), then four at a time: 12 answered after.
    assert!(
        after >= FLOOD / 2,
        "the honest request waited behind the flood: {after} of {FLOOD} answered after it"
    );
}
