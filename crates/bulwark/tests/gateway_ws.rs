//! The gateway's WebSocket API end to end, against `bulwark devnet` (four validators and a
//! gateway), with tokio-tungstenite as the client: `public/auth` by both grants (and refresh),
//! a bad and a replayed signature, the bearer token on HTTP, book, trades, ticker and quote
//! notifications after orders placed and filled over the WebSocket, user channels that reach
//! their own key only, heartbeats (answered: kept; unanswered: disconnected),
//! cancel-on-disconnect checked through the HTTP API, malformed and oversized frames, the
//! per-connection and per-address bounds, and a slow reader dropped with a reason.

mod common;

use bulwark_gateway::deribit::auth;
use common::devnet::{Client, Devnet, http, now_ms, public};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const PERP: &str = "BTC_USDC-PERPETUAL";
/// Longest wait for anything a block brings.
const BLOCKS_WAIT: Duration = Duration::from_secs(30);

/// A WebSocket JSON-RPC client: calls wait for their answer; notifications that arrive
/// meanwhile are kept for [`Ws::next_on`].
struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    id: u64,
    notifications: VecDeque<Value>,
    /// The close frame, once one came: (code, reason).
    closed: Option<(u16, String)>,
}

fn ws_url(gateway: &str) -> String {
    format!("{}/ws/api/v2", gateway.replace("http://", "ws://"))
}

impl Ws {
    async fn connect(gateway: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(ws_url(gateway))
            .await
            .expect("the WebSocket handshake succeeds");
        Self {
            socket,
            id: 0,
            notifications: VecDeque::new(),
            closed: None,
        }
    }

    async fn send_text(&mut self, text: String) {
        self.socket.send(Message::text(text)).await.unwrap();
    }

    /// The next JSON frame (or `None` once the server closed), within `limit`.
    async fn frame(&mut self, limit: Duration) -> Option<Value> {
        loop {
            let next = tokio::time::timeout(limit, self.socket.next())
                .await
                .expect("a frame within the wait");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    self.closed = Some(frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    }));
                    return None;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    eprintln!("read error: {error}");
                    return None;
                }
                None => return None,
            }
        }
    }

    /// A call's whole answer.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let id = self.id;
        self.send_text(
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        )
        .await;
        self.answer(id).await
    }

    async fn answer(&mut self, id: u64) -> Value {
        loop {
            let frame = self
                .frame(BLOCKS_WAIT)
                .await
                .unwrap_or_else(|| panic!("closed before answering {id}: {:?}", self.closed));
            if frame["id"] == json!(id) {
                return frame;
            }
            if frame.get("method").is_some() {
                self.notifications.push_back(frame);
            }
        }
    }

    async fn ok(&mut self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params.clone()).await;
        assert!(answer.get("error").is_none(), "{method} {params}: {answer}");
        answer["result"].clone()
    }

    async fn code(&mut self, method: &str, params: Value) -> i64 {
        let answer = self.call(method, params.clone()).await;
        answer["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("{method} {params} should fail: {answer}"))
    }

    /// The next notification on `channel` whose data satisfies `wanted` (others on it and
    /// elsewhere are kept or skipped as `keep` says).
    async fn next_on(&mut self, channel: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + BLOCKS_WAIT;
        loop {
            if let Some(at) = self
                .notifications
                .iter()
                .position(|n| n["params"]["channel"] == channel && wanted(&n["params"]["data"]))
            {
                return self.notifications.remove(at).unwrap()["params"]["data"].clone();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "no wanted notification on {channel}");
            match self.frame(left).await {
                Some(frame) if frame.get("method").is_some() => {
                    self.notifications.push_back(frame);
                }
                Some(_) => {}
                None => panic!("closed waiting on {channel}: {:?}", self.closed),
            }
        }
    }

    /// Every notification on `channel` that arrived so far (read for `settle` first).
    async fn drain(&mut self, channel: &str, settle: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + settle;
        while let Ok(next) = tokio::time::timeout_at(deadline, self.socket.next()).await {
            if let Some(Ok(Message::Text(text))) = next {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                if frame.get("method").is_some() {
                    self.notifications.push_back(frame);
                }
            }
        }
        let (on, other): (Vec<Value>, Vec<Value>) = self
            .notifications
            .drain(..)
            .partition(|n| n["params"]["channel"] == channel);
        self.notifications = other.into();
        on.into_iter()
            .map(|n| n["params"]["data"].clone())
            .collect()
    }

    /// Reads until the server's close frame; its (code, reason).
    async fn until_closed(&mut self, what: &str, limit: Duration) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.closed.is_none() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "{what}: the server did not close");
            if self.frame(left).await.is_none() && self.closed.is_none() {
                panic!("{what}: the connection ended without a close frame");
            }
        }
        self.closed.clone().unwrap()
    }
}

/// `public/auth` `client_signature` parameters for a key.
fn signature_grant(id: &str, secret: &str, ts: u64, nonce: &str) -> Value {
    let signature = auth::sign(secret, &auth::auth_string(ts, nonce, ""));
    json!({"grant_type": "client_signature", "client_id": id, "timestamp": ts,
           "nonce": nonce, "data": "", "signature": signature})
}

fn price_near(index: f64, bps: i64) -> f64 {
    let raw = index * (10_000 + bps) as f64 / 10_000.0;
    (raw * 2.0).round() / 2.0
}

/// Runs blocking work (the HTTP helpers) off the runtime's workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

/// A connection that sets a 10 s heartbeat and answers `test_request` stays open; one that
/// does not answer is closed with the reason.
async fn heartbeats(gateway: String) {
    let mut answering = Ws::connect(&gateway).await;
    let mut silent = Ws::connect(&gateway).await;
    assert_eq!(
        answering
            .code("public/set_heartbeat", json!({"interval": 1}))
            .await,
        -32602,
        "below Deribit's 10 s minimum"
    );
    assert_eq!(
        answering
            .ok("public/set_heartbeat", json!({"interval": 10}))
            .await,
        "ok"
    );
    assert_eq!(
        silent
            .ok("public/set_heartbeat", json!({"interval": 10}))
            .await,
        "ok"
    );
    let answerer = tokio::spawn(async move {
        for _ in 0..2 {
            let frame = loop {
                let frame = answering
                    .frame(Duration::from_secs(15))
                    .await
                    .expect("open while answering");
                if frame["method"] == "heartbeat" {
                    break frame;
                }
            };
            assert_eq!(frame["params"]["type"], "test_request", "{frame}");
            answering.ok("public/test", json!({})).await;
        }
        answering.ok("public/get_time", json!({})).await;
    });
    let (code, reason) = silent
        .until_closed("heartbeat", Duration::from_secs(30))
        .await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.starts_with("heartbeat"), "{reason}");
    answerer.await.expect("the answering connection stays open");
}

#[test]
fn websocket_api_end_to_end() {
    let devnet = Devnet::start("gateway-ws");
    let api = devnet.apis[0].clone();
    let gateway = devnet.gateway.clone();
    let key = |i| bulwark::keys::read_key(&devnet.demo_key(i)).unwrap();
    let wait = Duration::from_secs(60);
    let a = bulwark::gateway_cli::create(&gateway, &api, &key(0), wait).unwrap();
    let b = bulwark::gateway_cli::create(&gateway, &api, &key(1), wait).unwrap();
    let key_b = key(1);
    let http_a = Client {
        base: gateway.clone(),
        id: a.client_id.clone(),
        secret: a.client_secret.clone(),
    };
    let (_, ticker) = public(&gateway, "ticker", &format!("instrument_name={PERP}"));
    let index = ticker["result"]["index_price"]
        .as_f64()
        .or(ticker["result"]["mark_price"].as_f64())
        .expect("an index or mark price");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let heartbeat = tokio::spawn(heartbeats(gateway.clone()));

        // Connection-level calls and malformed requests.
        let mut public_ws = Ws::connect(&gateway).await;
        assert!(public_ws.ok("public/hello", json!({"client_name": "t"})).await["version"].is_string());
        assert!(public_ws.ok("public/get_time", json!({})).await.as_u64().unwrap() > 1_700_000_000_000);
        let answer = public_ws.call("public/ticker", json!({"instrument_name": PERP})).await;
        assert_eq!((answer["id"].as_u64(), answer["jsonrpc"].as_str()), (Some(public_ws.id), Some("2.0")));
        assert_eq!(answer["result"]["instrument_name"], PERP, "the HTTP dispatcher answers: {answer}");
        public_ws.send_text("{nope".into()).await;
        let parse = public_ws.frame(BLOCKS_WAIT).await.unwrap();
        assert_eq!((parse["error"]["code"].as_i64(), &parse["id"]), (Some(-32700), &Value::Null), "{parse}");
        public_ws.send_text("[1,2]".into()).await;
        assert_eq!(public_ws.frame(BLOCKS_WAIT).await.unwrap()["error"]["code"], -32600);
        public_ws.send_text(r#"{"jsonrpc":"2.0","id":7,"params":{}}"#.into()).await;
        let no_method = public_ws.frame(BLOCKS_WAIT).await.unwrap();
        assert_eq!((no_method["error"]["code"].as_i64(), no_method["id"].as_i64()), (Some(-32600), Some(7)));
        assert_eq!(public_ws.code("public/nothing", json!({})).await, -32601);
        assert_eq!(public_ws.code("public/ticker", json!({})).await, -32602);
        let answer = public_ws.call("public/ticker", json!([1])).await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert_eq!(public_ws.code("private/get_account_summaries", json!({})).await, 10000);
        assert_eq!(public_ws.code("private/enable_cancel_on_disconnect", json!({})).await, 10000);

        // Authentication: wrong secret, unknown client, bad and stale signatures, a replay.
        let mut ws_a = Ws::connect(&gateway).await;
        let credentials = |id: &str, secret: &str| {
            json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret})
        };
        assert_eq!(ws_a.code("public/auth", credentials(&a.client_id, "wrong")).await, 13004);
        assert_eq!(ws_a.code("public/auth", credentials("nobody", "x")).await, 13004);
        let ts = now_ms();
        let mut bad = signature_grant(&a.client_id, &a.client_secret, ts, "n1");
        bad["signature"] = json!("ab".repeat(32));
        assert_eq!(ws_a.code("public/auth", bad).await, 13009);
        let stale = signature_grant(&a.client_id, &a.client_secret, ts - 120_000, "n2");
        assert_eq!(ws_a.code("public/auth", stale).await, 13009);
        let grant = signature_grant(&a.client_id, &a.client_secret, ts, &ts.to_string());
        let authed = ws_a.ok("public/auth", grant.clone()).await;
        assert_eq!(authed["token_type"], "bearer", "{authed}");
        assert!(authed["access_token"].as_str().unwrap().len() >= 32);
        assert_eq!(authed["expires_in"], 900);
        let mut replayer = Ws::connect(&gateway).await;
        assert_eq!(replayer.code("public/auth", grant).await, 13009, "a replayed signature");
        // A connection stays bound to its first key: the same key again (a refresh) is fine,
        // another key is refused (its subscriptions and cancel-on-disconnect are A's).
        assert_eq!(ws_a.code("public/auth", credentials(&b.client_id, &b.client_secret)).await, 13021);
        ws_a.ok("public/auth", credentials(&a.client_id, &a.client_secret)).await;
        // The refresh grant, once.
        let refresh = authed["refresh_token"].clone();
        let refreshed = replayer
            .ok("public/auth", json!({"grant_type": "refresh_token", "refresh_token": refresh}))
            .await;
        assert_ne!(refreshed["access_token"], authed["access_token"]);
        assert_eq!(
            replayer
                .code("public/auth", json!({"grant_type": "refresh_token", "refresh_token": refresh}))
                .await,
            13009,
            "a refresh token is spent once"
        );
        assert_eq!(replayer.code("public/auth", json!({"grant_type": "password"})).await, -32602);
        // The access token on HTTP private calls; a made-up one refused.
        let bearer = format!("bearer {}", authed["access_token"].as_str().unwrap());
        let gateway_http = gateway.clone();
        let (status, summaries) = blocking(move || {
            http(
                &gateway_http,
                "GET",
                "/api/v2/private/get_account_summaries",
                &[("Authorization", bearer)],
                b"",
            )
        })
        .await;
        assert_eq!(status, 200, "{summaries}");
        assert_eq!(summaries["result"]["summaries"][0]["currency"], "USDC");
        let gateway_http = gateway.clone();
        let (_, refused) = blocking(move || {
            http(
                &gateway_http,
                "GET",
                "/api/v2/private/get_account_summaries",
                &[("Authorization", "bearer 00ff".to_string())],
                b"",
            )
        })
        .await;
        assert_eq!(refused["error"]["code"], 13009, "{refused}");
        // public/auth over HTTP too (a GET with the grant in the query).
        let (gateway_http, id, secret) = (gateway.clone(), a.client_id.clone(), a.client_secret.clone());
        let (status, over_http) = blocking(move || {
            public(
                &gateway_http,
                "auth",
                &format!("grant_type=client_credentials&client_id={id}&client_secret={secret}"),
            )
        })
        .await;
        assert_eq!(status, 200, "{over_http}");
        assert_eq!(over_http["result"]["token_type"], "bearer");
        let mut ws_b = Ws::connect(&gateway).await;
        ws_b.ok("public/auth", credentials(&b.client_id, &b.client_secret)).await;

        // Subscriptions: public channels need no auth, raw intervals and user channels do.
        assert_eq!(
            public_ws.code("public/subscribe", json!({"channels": [format!("trades.{PERP}.raw")]})).await,
            10000
        );
        assert_eq!(
            public_ws.code("public/subscribe", json!({"channels": ["user.orders.any.any.100ms"]})).await,
            10000
        );
        assert_eq!(
            public_ws.code("public/subscribe", json!({"channels": ["book.NOPE-PERPETUAL.100ms"]})).await,
            -32602
        );
        assert_eq!(public_ws.code("public/subscribe", json!({"channels": "x"})).await, -32602);
        assert_eq!(
            public_ws.code("private/subscribe", json!({"channels": [format!("ticker.{PERP}.100ms")]})).await,
            10000
        );
        let channels = [
            format!("book.{PERP}.100ms"),
            format!("book.{PERP}.none.10.100ms"),
            format!("trades.{PERP}.100ms"),
            format!("ticker.{PERP}.100ms"),
            format!("quote.{PERP}"),
        ];
        let subscribed = public_ws.ok("public/subscribe", json!({"channels": channels})).await;
        assert_eq!(subscribed.as_array().unwrap().len(), 5, "{subscribed}");
        let snapshot = public_ws.next_on(&channels[0], |_| true).await;
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        let mut change_id = snapshot["change_id"].as_u64().unwrap();
        let first_ticker = public_ws.next_on(&channels[3], |_| true).await;
        assert_eq!(first_ticker["instrument_name"], PERP);
        let user_channels = [
            "user.orders.any.any.raw".to_string(),
            "user.trades.any.any.raw".to_string(),
            "user.portfolio.usdc".to_string(),
            format!("user.orders.{PERP}.100ms"),
        ];
        ws_a.ok("private/subscribe", json!({"channels": user_channels})).await;
        ws_b.ok("private/subscribe", json!({"channels": user_channels})).await;
        let portfolio = ws_a.next_on("user.portfolio.usdc", |_| true).await;
        assert_eq!(portfolio["currency"], "USDC", "{portfolio}");
        assert!(portfolio["equity"].as_f64().unwrap() > 0.0);

        // A bids over the WebSocket; B sells into it over the WebSocket.
        let bid = price_near(index, -50);
        let placed = ws_a
            .ok("private/buy", json!({"instrument_name": PERP, "amount": 0.002, "type": "limit", "price": bid}))
            .await;
        assert_eq!(placed["order"]["order_state"], "open", "{placed}");
        let order_a = placed["order"]["order_id"].as_str().unwrap().to_string();
        let sold = ws_b
            .ok("private/sell", json!({"instrument_name": PERP, "amount": 0.001, "type": "limit", "price": bid}))
            .await;
        assert_eq!(sold["order"]["order_state"], "filled", "{sold}");
        let order_b = sold["order"]["order_id"].as_str().unwrap().to_string();

        // The book: changes chained by prev_change_id, the bid's level new then changed.
        let mut saw_level = false;
        while !saw_level {
            let change = public_ws.next_on(&channels[0], |_| true).await;
            assert_eq!(change["type"], "change", "{change}");
            assert_eq!(change["prev_change_id"].as_u64(), Some(change_id), "{change}");
            change_id = change["change_id"].as_u64().unwrap();
            saw_level = change["bids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|entry| entry[1].as_f64() == Some(bid) && entry[0] != "delete");
        }
        let grouped = public_ws.next_on(&channels[1], |d| d["bids"].as_array().is_some_and(|b| !b.is_empty())).await;
        assert_eq!(grouped["bids"][0][0].as_f64(), Some(bid), "{grouped}");
        let trades = public_ws.next_on(&channels[2], |_| true).await;
        assert_eq!(trades[0]["amount"], 0.001, "{trades}");
        assert_eq!(trades[0]["price"].as_f64(), Some(bid));
        assert_eq!(trades[0]["direction"], "sell");
        let quote = public_ws
            .next_on(&channels[4], |d| d["best_bid_price"].as_f64() == Some(bid) && d["best_bid_amount"] == 0.001)
            .await;
        assert_eq!(quote["instrument_name"], PERP, "{quote}");
        let ticker = public_ws.next_on(&channels[3], |d| d["last_price"].as_f64() == Some(bid)).await;
        assert_eq!(ticker["best_bid_price"].as_f64(), Some(bid), "{ticker}");

        // User channels: each key sees its own order, fill and portfolio.
        let mine = ws_a
            .next_on("user.orders.any.any.raw", |o| o["order_id"] == order_a.as_str() && o["filled_amount"] == 0.001)
            .await;
        assert_eq!(mine["order_state"], "open", "{mine}");
        let listed = ws_a
            .next_on(&format!("user.orders.{PERP}.100ms"), |list| list.as_array().is_some_and(|l| l.iter().any(|o| o["order_id"] == order_a.as_str())))
            .await;
        assert!(listed.is_array());
        let fill = ws_a.next_on("user.trades.any.any.raw", |_| true).await;
        assert_eq!((fill[0]["liquidity"].as_str(), fill[0]["order_id"].as_str()), (Some("M"), Some(order_a.as_str())), "{fill}");
        let after = ws_a.next_on("user.portfolio.usdc", |p| p["initial_margin"].as_f64().is_some_and(|m| m > 0.0)).await;
        assert_eq!(after["currency"], "USDC");
        let theirs = ws_b.next_on("user.trades.any.any.raw", |_| true).await;
        assert_eq!(theirs[0]["liquidity"], "T", "{theirs}");
        let b_orders = ws_b.drain("user.orders.any.any.raw", Duration::from_secs(2)).await;
        assert!(b_orders.iter().any(|o| o["order_id"] == order_b.as_str()), "{b_orders:?}");
        assert!(
            b_orders.iter().all(|o| o["order_id"] != order_a.as_str()),
            "B never sees A's order: {b_orders:?}"
        );
        let b_trades = ws_b.drain("user.trades.any.any.raw", Duration::ZERO).await;
        assert!(b_trades.iter().flat_map(|l| l.as_array().unwrap()).all(|t| t["liquidity"] == "T"));
        assert!(public_ws.drain("user.orders.any.any.raw", Duration::ZERO).await.is_empty());
        // Unsubscribing.
        assert_eq!(
            ws_b.ok("private/unsubscribe", json!({"channels": ["user.portfolio.usdc", "nothing"]})).await,
            json!(["user.portfolio.usdc"])
        );
        assert_eq!(ws_b.ok("public/unsubscribe_all", json!({})).await, "ok");

        // Cancel on disconnect: A's orders from a connection that asked for it, then dropped.
        let mut cod = Ws::connect(&gateway).await;
        cod.ok("public/auth", credentials(&a.client_id, &a.client_secret)).await;
        assert_eq!(cod.code("private/enable_cancel_on_disconnect", json!({"scope": "account"})).await, -32602);
        assert_eq!(cod.ok("private/enable_cancel_on_disconnect", json!({"scope": "connection"})).await, "ok");
        assert_eq!(
            cod.ok("private/get_cancel_on_disconnect", json!({})).await,
            json!({"scope": "connection", "enabled": true})
        );
        let low = price_near(index, -100);
        for _ in 0..2 {
            let resting = cod
                .ok("private/buy", json!({"instrument_name": PERP, "amount": 0.001, "type": "limit", "price": low}))
                .await;
            assert_eq!(resting["order"]["order_state"], "open");
        }
        let open_now = {
            let http_a = http_a.clone();
            blocking(move || http_a.ok("get_open_orders_by_instrument", &format!("instrument_name={PERP}"))).await
        };
        assert_eq!(open_now.as_array().unwrap().len(), 3, "A's rest and two more: {open_now}");
        cod.socket.close(None).await.unwrap();
        drop(cod);
        let deadline = tokio::time::Instant::now() + BLOCKS_WAIT;
        loop {
            let http_a = http_a.clone();
            let open = blocking(move || http_a.ok("get_open_orders_by_instrument", &format!("instrument_name={PERP}"))).await;
            if open == json!([]) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "orders still open: {open}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Oversized frames: 11050, then a close with 1009.
        let mut big = Ws::connect(&gateway).await;
        big.send_text(format!(r#"{{"jsonrpc":"2.0","id":1,"method":"public/test","params":{{"x":"{}"}}}}"#, "a".repeat(40_000))).await;
        let refused = big.frame(BLOCKS_WAIT).await.expect("an answer before the close");
        assert_eq!(refused["error"]["code"], 11050, "{refused}");
        let (code, reason) = big.until_closed("oversized", BLOCKS_WAIT).await;
        assert_eq!(code, 1009, "{reason}");
        drop(big);

        // A connection's subscriptions are bounded.
        let many: Vec<String> = (0..300).map(|i| format!("trades.x{i}.100ms")).collect();
        let answer = public_ws.call("public/subscribe", json!({"channels": many})).await;
        assert_eq!(answer["error"]["code"], 11050, "{answer}");

        // Requests draw on the key's and the address's credits as over HTTP: a key's read
        // budget (burst 100) runs out.
        let limited = async {
            for _ in 0..400 {
                let answer = ws_a.call("private/get_account_summaries", json!({})).await;
                if answer["error"]["code"] == 10028 {
                    return true;
                }
            }
            false
        };
        assert!(limited.await, "the key's rate limit was never hit over the WebSocket");

        heartbeat.await.unwrap();

        // Connections per address: 32 (Deribit's); the handshake past it is refused (429).
        let mut held = Vec::new();
        let refused = loop {
            match tokio_tungstenite::connect_async(ws_url(&gateway)).await {
                Ok((socket, _)) => held.push(socket),
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => break response.status().as_u16(),
                Err(error) => panic!("unexpected handshake error {error}"),
            }
            assert!(held.len() <= 40, "no per-address bound");
        };
        assert_eq!(refused, 429);
        // public_ws, ws_a, ws_b, replayer and the held ones (connections closed a moment ago
        // may still hold their slots while their close completes).
        assert!(held.len() + 4 <= 32 && held.len() >= 20, "{}", held.len());
        drop(held);

        // A revoked key's connection ends with the reason once the revocation is final.
        let agent = bulwark::keys::parse_public_key(&b.agent).unwrap();
        let (api_revoke, owner_b) = (api.clone(), key_b);
        blocking(move || bulwark::gateway_cli::revoke(&api_revoke, &owner_b, agent, Duration::from_secs(60)).unwrap()).await;
        let (code, reason) = ws_b.until_closed("revoked", BLOCKS_WAIT).await;
        assert_eq!(code, 1008, "{reason}");
        assert!(reason.starts_with("api_key_revoked"), "{reason}");

        // A slow reader (a 4 KiB receive buffer): requests keep coming, answers are never
        // read; the server closes with the reason once the connection's queue is full.
        let host = gateway.trim_start_matches("http://").parse().unwrap();
        let mut stream = None;
        for _ in 0..50 {
            // The per-address slots the dropped connections held come back as they close.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4_096).unwrap();
            let tcp = socket.connect(host).await.unwrap();
            match tokio_tungstenite::client_async(ws_url(&gateway), MaybeTlsStream::Plain(tcp)).await {
                Ok((ws, _)) => {
                    stream = Some(ws);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let mut slow = Ws {
            socket: stream.expect("a slot for the slow reader"),
            id: 0,
            notifications: VecDeque::new(),
            closed: None,
        };
        let request = r#"{"jsonrpc":"2.0","id":1,"method":"public/get_instruments","params":{}}"#;
        let flood_until = tokio::time::Instant::now() + Duration::from_secs(4);
        while tokio::time::Instant::now() < flood_until {
            let sent = tokio::time::timeout(Duration::from_millis(500), slow.socket.send(Message::text(request))).await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut read = 0usize;
        let (code, reason) = loop {
            match tokio::time::timeout(Duration::from_secs(60), slow.socket.next()).await.expect("a frame") {
                Some(Ok(Message::Text(text))) => read += text.len(),
                Some(Ok(Message::Close(Some(frame)))) => break (u16::from(frame.code), frame.reason.to_string()),
                other => panic!("slow reader: {other:?} after {read} bytes"),
            }
        };
        // What reached the client before the close: the kernel's buffers (the gateway sets
        // its send buffer), never the queue the server dropped.
        assert!(read < 2 << 20, "{read} bytes buffered for a client that did not read");
        assert_eq!(code, 1008, "{reason}");
        assert!(reason.starts_with("slow_consumer: outgoing queue full"), "{reason}");
    });
}
