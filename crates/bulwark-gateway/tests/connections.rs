//! The gateway's own front door, with no validator behind it: under one client that opens
//! every connection it allows, the per-client bound (`GatewayConfig::connections_per_client_max`,
//! the same `ConnectionSlots` the validator's API uses) keeps another client served; requests
//! that say one thing twice are refused over HTTP and WebSocket; WebSocket frames that break
//! the protocol are answered with RFC 6455's close codes.

use bulwark_exchange::{ExchangeParams, Genesis};
use bulwark_gateway::follower::FollowerConfig;
use bulwark_gateway::gateway::GatewayConfig;
use bulwark_gateway::run::{self, GatewaySetup};
use bulwark_types::{BlockLimits, BlockTime, PrivateKey};
use commonware_cryptography::Signer as _;
use commonware_utils::ordered::Set;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

const CONNECTIONS_MAX: usize = 16;
const PER_CLIENT_MAX: usize = 4;

async fn start(per_client_max: usize) -> (run::RunningGateway, std::path::PathBuf) {
    // One directory per gateway: this file's tests run at once.
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let started = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let data_dir = std::env::temp_dir().join(format!(
        "bulwark-gateway-connections-{}-{started}",
        std::process::id()
    ));
    let setup = GatewaySetup {
        namespace: b"bulwark-gateway-connections-test".to_vec(),
        participants: Set::from_iter_dedup(
            (0..4).map(|i| PrivateKey::from_seed(10 + i).public_key()),
        ),
        genesis: Genesis {
            admin: PrivateKey::from_seed(1).public_key(),
            bridge: PrivateKey::from_seed(2).public_key(),
            params: ExchangeParams::defaults(),
            time: BlockTime::from_millis(1_000),
            oracle: None,
            custody: None,
        },
        limits: BlockLimits::DEFAULT,
        // No validator answers there: the server is what is under test, not the follower.
        validators: vec!["http://127.0.0.1:9".into()],
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.clone(),
        config: GatewayConfig {
            connections_max: CONNECTIONS_MAX,
            connections_per_client_max: per_client_max,
            ..GatewayConfig::DEFAULT
        },
        follower: FollowerConfig::DEFAULT,
    };
    (run::start(setup).await.expect("gateway starts"), data_dir)
}

/// A connection to `addr` from 127.0.0.`client` (Linux routes all of 127/8 to loopback).
async fn connect_from(client: u8, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, client], 0)))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// Sends one HTTP/1.1 request (`Connection: close`) on `stream`: the answer's status (0 if the
/// gateway closed the connection without one) and its body.
async fn http(mut stream: TcpStream, method: &str, target: &str, body: &str) -> (u16, String) {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // A connection closed on accept may refuse the write; its answer is then empty.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    // Bounded: a gateway that kept the connection open would fail the test, not hang it.
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response));
    match read.await {
        Ok(_) => {}
        Err(_) => panic!("the gateway neither answered nor closed the connection"),
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// `GET /api/v2/public/test` on `stream`: the answer's status, or 0 if the gateway closed the
/// connection without one.
async fn public_test(stream: TcpStream) -> u16 {
    http(stream, "GET", "/api/v2/public/test", "").await.0
}

/// The attack: one client opens every connection the gateway allows and holds them idle, so
/// every other client's connection is closed on accept. With the per-client bound the
/// flooder's connections past it are closed, its first ones are served, and another client is
/// served. With the bound at the total (off), the other client's request is closed unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holding_every_connection_does_not_lock_the_others_out_of_the_gateway() {
    for (per_client_max, bounded) in [(PER_CLIENT_MAX, true), (CONNECTIONS_MAX, false)] {
        let (gateway, data_dir) = start(per_client_max).await;
        let addr = gateway.addr;
        let mut held = Vec::new();
        for _ in 0..CONNECTIONS_MAX {
            held.push(connect_from(2, addr).await);
        }
        let honest = public_test(connect_from(1, addr).await).await;
        if bounded {
            assert_eq!(honest, 200, "another client is served");
            let last = held.pop().unwrap();
            assert_eq!(
                public_test(last).await,
                0,
                "past the flooder's bound: closed"
            );
            let first = held.remove(0);
            assert_eq!(public_test(first).await, 200, "within its bound: served");
        } else {
            assert_eq!(
                honest, 0,
                "without the bound the flooder locks everyone out"
            );
        }
        drop(held);
        let _ = std::fs::remove_dir_all(data_dir);
    }
}

/// The attack: a request that names a field twice, `{"amount": 1, "amount": 1000}`. Parsers
/// disagree on which one counts (serde_json's `Value` takes the last, many take the first), so
/// whatever checked, logged or signed-off the request on its way (a client's risk layer, a
/// proxy) may have read another order than the one the gateway would place. Refused, over HTTP
/// (body and query string) and WebSocket, naming the field; the id is kept so a client matching
/// answers by id gets its answer; the same request without the duplicate is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_names_a_field_twice_is_refused_not_guessed() {
    let (gateway, data_dir) = start(PER_CLIENT_MAX).await;
    let addr = gateway.addr;
    let twice = r#"{"jsonrpc":"2.0","id":42,"method":"public/test","params":{"expected_result":"a","expected_result":"b"}}"#;
    let once =
        r#"{"jsonrpc":"2.0","id":42,"method":"public/test","params":{"expected_result":"a"}}"#;
    let post = |body: &'static str| async move {
        let (status, text) = http(
            connect_from(1, addr).await,
            "POST",
            "/api/v2/public/test",
            body,
        )
        .await;
        let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, answer)
    };
    let (_, refused) = post(twice).await;
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert_eq!(refused["id"], 42, "{refused}");
    let reason = refused["error"]["data"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("expected_result"), "{refused}");
    let (status, served) = post(once).await;
    assert_eq!((status, served["error"].is_null()), (200, true), "{served}");

    let query = "/api/v2/public/test?expected_result=a&expected_result=b";
    let (_, text) = http(connect_from(1, addr).await, "GET", query, "").await;
    let refused: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert_eq!(
        refused["error"]["data"]["param"], "expected_result",
        "{refused}"
    );

    let mut ws = websocket(addr).await;
    ws.send(Message::text(twice)).await.unwrap();
    let refused = next_json(&mut ws).await;
    assert_eq!(
        (refused["id"].clone(), refused["error"]["code"].clone()),
        (json!(42), json!(-32600)),
        "{refused}"
    );
    ws.send(Message::text(once)).await.unwrap();
    let served = next_json(&mut ws).await;
    assert!(
        served["error"].is_null() && served["id"] == 42,
        "the connection stays open: {served}"
    );
    drop(gateway);
    let _ = std::fs::remove_dir_all(data_dir);
}

/// RFC 6455 section 7.4.1: a text message that is not UTF-8 closes with 1007, a frame that
/// breaks the protocol (here a continuation with nothing to continue) with 1002, so the client
/// learns what it did (the gateway used to close both with 1000, "normal"). A valid request
/// on another connection is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frames_that_break_the_protocol_close_with_its_codes() {
    let (gateway, data_dir) = start(PER_CLIENT_MAX).await;
    let addr = gateway.addr;
    let not_utf8 = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    let orphan = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Continue), true);
    for (frame, code) in [
        (not_utf8, CloseCode::Invalid),
        (orphan, CloseCode::Protocol),
    ] {
        let mut ws = websocket(addr).await;
        ws.send(Message::Frame(frame)).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(message) = ws.next().await {
                match message {
                    Ok(Message::Close(frame)) => return frame.map(|f| f.code),
                    Ok(_) => {}
                    Err(error) => panic!("before the close frame: {error}"),
                }
            }
            None
        })
        .await
        .expect("the gateway closes");
        assert_eq!(closed, Some(code));
    }
    let mut ws = websocket(addr).await;
    ws.send(Message::text(
        r#"{"jsonrpc":"2.0","id":1,"method":"public/test"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["id"], 1);
    drop(gateway);
    let _ = std::fs::remove_dir_all(data_dir);
}

type WebSocket = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn websocket(addr: SocketAddr) -> WebSocket {
    let url = format!("ws://{addr}/ws/api/v2");
    let (ws, _) = tokio_tungstenite::client_async(url, connect_from(1, addr).await)
        .await
        .expect("WebSocket handshake");
    ws
}

/// The next text message as JSON, within 20 s.
async fn next_json(ws: &mut WebSocket) -> Value {
    let next = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(_)) => {}
                other => panic!("no answer: {other:?}"),
            }
        }
    });
    next.await.expect("an answer within 20 s")
}
