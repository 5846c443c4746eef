//! The gateway end to end: `bulwark devnet` (four validators and a gateway, as processes
//! would run them), API keys created as the owner's `AuthoriseAgent`, and the Deribit API
//! driven over HTTP: orders placed, filled, edited and cancelled between two keys, account
//! summary and positions, and the contract's error codes (signature failures, a replay, a
//! pending key, bad parameters, post-only crossing, insufficient funds, the rate limit).

mod common;

use bulwark::gateway_cli;
use common::devnet::{Client, Devnet, bulwark_cli, http, now_ms, public};
use serde_json::{Value, json};
use std::time::Duration;

const PERP: &str = "BTC_USDC-PERPETUAL";

/// A price `bps` basis points from the index, on the perpetual's 0.5 tick.
fn price_near(index: f64, bps: i64) -> String {
    let raw = index * (10_000 + bps) as f64 / 10_000.0;
    format!("{:.1}", (raw * 2.0).round() / 2.0)
}

fn code_of(envelope: &Value) -> i64 {
    envelope["error"]["code"].as_i64().unwrap_or(0)
}

#[test]
fn deribit_api_end_to_end() {
    let devnet = Devnet::start("gateway-e2e");
    let api = devnet.apis[0].clone();
    let gateway = devnet.gateway.clone();
    let key = |i| bulwark::keys::read_key(&devnet.demo_key(i)).unwrap();

    // API keys: the owner signs the binding; the gateway answers once it is finalized.
    let created_a = gateway_cli::create(&gateway, &api, &key(0), Duration::from_secs(60)).unwrap();
    let created_b = gateway_cli::create(&gateway, &api, &key(1), Duration::from_secs(60)).unwrap();
    let a = Client {
        base: gateway.clone(),
        id: created_a.client_id.clone(),
        secret: created_a.client_secret.clone(),
    };
    let created_b_agent = created_b.agent.clone();
    let b = Client {
        base: gateway.clone(),
        id: created_b.client_id,
        secret: created_b.client_secret,
    };
    let listed = gateway_cli::list(&gateway, &{
        use commonware_cryptography::Signer as _;
        key(0).public_key()
    })
    .unwrap();
    assert_eq!(listed["keys"][0]["state"], "active", "{listed}");
    assert!(
        listed.to_string().find(&created_a.client_secret).is_none(),
        "no secrets listed"
    );

    // A key whose binding was never submitted stays pending: refused.
    let ask = |body: Value| {
        http(
            &gateway,
            "POST",
            "/gateway/v1/apikeys",
            &[("Content-Type", "application/json".into())],
            body.to_string().as_bytes(),
        )
    };
    let signed = |owner: &bulwark_types::PrivateKey,
                  signer: &bulwark_types::PrivateKey,
                  nonce: u64| {
        use commonware_cryptography::Signer as _;
        let ts = now_ms();
        let message = bulwark_gateway::keys::KeyRequest::message(&owner.public_key(), nonce, ts);
        let signature = signer.sign(bulwark_gateway::keys::KEY_REQUEST_NAMESPACE, &message);
        json!({
            "owner": bulwark::keys::public_hex(&owner.public_key()),
            "nonce": nonce,
            "ts": ts,
            "signature": bulwark_node::executor::hex(&commonware_codec::Encode::encode(&signature)),
        })
    };
    // Only the owner of an account with collateral may ask for a key: an unsigned request,
    // one signed by another key, and one for a key without an account are refused.
    let (status, refused) = ask(json!({"owner": bulwark::keys::public_hex(&{
        use commonware_cryptography::Signer as _;
        key(2).public_key()
    }), "nonce": 1}));
    assert_eq!(status, 400, "unsigned: {refused}");
    let (status, refused) = ask(signed(&key(2), &key(3), 1));
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("signature_invalid")),
        "{refused}"
    );
    let stranger =
        <bulwark_types::PrivateKey as commonware_cryptography::Signer>::from_seed(777_777);
    let (status, refused) = ask(signed(&stranger, &stranger, 1));
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("owner_without_account")),
        "{refused}"
    );
    let (status, pending) = ask(signed(&key(2), &key(2), 1));
    assert_eq!(status, 200, "{pending}");
    let (status, again) = ask(signed(&key(2), &key(2), 1));
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("already_pending")),
        "{again}"
    );
    let pending = Client {
        base: gateway.clone(),
        id: pending["client_id"].as_str().unwrap().into(),
        secret: pending["client_secret"].as_str().unwrap().into(),
    };
    assert_eq!(pending.code("get_account_summaries", ""), 13009);

    // Public calls.
    let (_, time) = public(&gateway, "get_time", "");
    assert!(time["result"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(time["jsonrpc"], "2.0");
    assert_eq!(time["testnet"], false);
    assert!(time["usIn"].as_u64().is_some() && time["usDiff"].as_u64().is_some());
    let (_, currencies) = public(&gateway, "get_currencies", "");
    let codes: Vec<&str> = currencies["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["currency"].as_str())
        .collect();
    assert!(
        codes.contains(&"BTC") && codes.contains(&"USDC"),
        "{codes:?}"
    );
    let (_, instruments) = public(&gateway, "get_instruments", "");
    let perp = instruments["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instrument_name"] == PERP)
        .expect("the perpetual is listed")
        .clone();
    assert_eq!(perp["counter_currency"], "USDC");
    assert_eq!(perp["settlement_currency"], "USDC");
    assert_eq!(perp["settlement_period"], "perpetual");
    assert_eq!(perp["min_trade_amount"], 0.001);
    assert_eq!(perp["tick_size"], 0.5);
    let options = public(&gateway, "get_instruments", "currency=BTC&kind=option").1["result"]
        .as_array()
        .unwrap()
        .len();
    assert!(options > 0, "options listed");
    // An unknown filter is refused, not read as "all" or "none".
    for query in ["kind=spaceship", "currency=DOGE", "currency=btc"] {
        assert_eq!(
            code_of(&public(&gateway, "get_instruments", query).1),
            -32602,
            "{query}"
        );
    }
    assert_eq!(
        public(&gateway, "get_instruments", "kind=spot").1["result"],
        json!([])
    );
    assert_eq!(
        code_of(&public(&gateway, "get_index_price", "index_name=btc_whatever_else").1),
        -32602
    );
    assert!(
        public(&gateway, "get_index_price", "index_name=btc_usd").1["result"]["index_price"]
            .is_number()
    );
    let (_, ticker) = public(&gateway, "ticker", &format!("instrument_name={PERP}"));
    let index = ticker["result"]["index_price"]
        .as_f64()
        .or(ticker["result"]["mark_price"].as_f64())
        .expect("an index or mark price");
    assert!(ticker["result"]["stats"].is_object());
    // Unknown instrument, missing parameter, unknown method, bad JSON, an id echoed by POST.
    let (status, unknown) = public(&gateway, "ticker", "instrument_name=ETH-NOPE");
    assert_eq!((status, code_of(&unknown)), (400, -32602));
    assert_eq!(unknown["error"]["data"]["param"], "instrument_name");
    let (_, missing) = public(&gateway, "get_order_book", "");
    assert_eq!(code_of(&missing), -32602);
    let (_, nothing) = public(&gateway, "no_such_method", "");
    assert_eq!(code_of(&nothing), -32601);
    let (_, parse) = http(&gateway, "POST", "/api/v2/public/get_time", &[], b"{nope");
    assert_eq!(code_of(&parse), -32700);
    let (status, posted) = http(
        &gateway,
        "POST",
        "/api/v2/public/get_time",
        &[],
        br#"{"jsonrpc":"2.0","id":42,"method":"public/get_time","params":{}}"#,
    );
    assert_eq!((status, posted["id"].as_i64()), (200, Some(42)), "{posted}");
    // A JSON-RPC body naming another method than its path, or params that are not an object.
    let (_, mismatch) = http(
        &gateway,
        "POST",
        "/api/v2/public/get_time",
        &[],
        br#"{"jsonrpc":"2.0","id":1,"method":"public/test"}"#,
    );
    assert_eq!(code_of(&mismatch), -32600, "{mismatch}");
    let (_, array) = http(
        &gateway,
        "POST",
        "/api/v2/public/get_time",
        &[],
        br#"{"jsonrpc":"2.0","id":1,"params":[1]}"#,
    );
    assert_eq!(code_of(&array), -32602, "{array}");
    // JSON-RPC's own members must be what they are: version 2.0, a string method.
    for body in [
        &br#"{"jsonrpc":"1.0","id":1,"method":"public/get_time"}"#[..],
        &br#"{"jsonrpc":"2.0","id":1,"method":5}"#[..],
    ] {
        let (_, refused) = http(&gateway, "POST", "/api/v2/public/get_time", &[], body);
        assert_eq!(code_of(&refused), -32600, "{refused}");
    }
    // Oversized requests: a request-target over 8 KiB, a body over 64 KiB.
    let long = format!("/api/v2/public/get_time?x={}", "a".repeat(9_000));
    let (status, oversized) = http(&gateway, "GET", &long, &[], b"");
    assert_eq!((status, code_of(&oversized)), (400, 11050), "{oversized}");
    let big = vec![b' '; 70_000];
    let (_, oversized) = http(&gateway, "POST", "/api/v2/public/get_time", &[], &big);
    assert_eq!(code_of(&oversized), 11050, "{oversized}");
    // Unknown query parameters are ignored.
    let (status, _) = public(&gateway, "get_time", "include_old=true&code=USDC");
    assert_eq!(status, 200);

    // Authentication failures.
    let target = "/api/v2/private/get_account_summaries";
    let (_, none) = http(&gateway, "GET", target, &[], b"");
    assert_eq!(code_of(&none), 13009);
    let stranger = Client {
        id: "nobody".into(),
        ..a.clone()
    };
    assert_eq!(stranger.code("get_account_summaries", ""), 13004);
    let wrong_secret = Client {
        secret: "wrong".into(),
        ..a.clone()
    };
    assert_eq!(wrong_secret.code("get_account_summaries", ""), 13009);
    let stale = a.header("GET", target, b"", now_ms() - 120_000);
    let (_, stale) = http(&gateway, "GET", target, &[("Authorization", stale)], b"");
    assert_eq!(code_of(&stale), 13009);
    // The same signed request twice: the second is a replay.
    let header = a.header("GET", target, b"", now_ms());
    let (first, _) = http(
        &gateway,
        "GET",
        target,
        &[("Authorization", header.clone())],
        b"",
    );
    let (_, replay) = http(&gateway, "GET", target, &[("Authorization", header)], b"");
    assert_eq!((first, code_of(&replay)), (200, 13009), "{replay}");
    // A signature over another query.
    let signed_for = "/api/v2/private/get_position?instrument_name=BTC_USDC-PERPETUAL";
    let header = a.header("GET", signed_for, b"", now_ms());
    let (_, tampered) = http(
        &gateway,
        "GET",
        "/api/v2/private/get_position?instrument_name=BTC_USDC-3DEC26-90000-C",
        &[("Authorization", header)],
        b"",
    );
    assert_eq!(code_of(&tampered), 13009);

    // Account summary.
    let summaries = a.ok("get_account_summaries", "");
    let usdc = &summaries["summaries"][0];
    assert_eq!(usdc["currency"], "USDC");
    assert_eq!(usdc["equity"], 1_000_000.0, "{usdc}");
    assert_eq!(usdc["available_funds"], 1_000_000.0);
    assert_eq!(usdc["available_withdrawal_funds"], 1_000_000.0);
    assert_eq!(
        a.ok("get_account_summary", "currency=USDC")["equity"],
        1_000_000.0
    );

    // Orders: A bids, B sells into it, A edits the rest, then cancels it.
    let bid = price_near(index, -50);
    let placed = a.ok(
        "buy",
        &format!("instrument_name={PERP}&amount=0.002&type=limit&price={bid}&label=a%20b"),
    );
    let order = &placed["order"];
    assert_eq!(order["order_state"], "open", "{placed}");
    assert_eq!(order["amount"], 0.002);
    assert_eq!(order["filled_amount"], 0.0);
    assert_eq!(placed["trades"], json!([]));
    let order_id = order["order_id"].as_str().unwrap().to_string();
    let sold = b.ok(
        "sell",
        &format!("instrument_name={PERP}&amount=0.001&type=limit&price={bid}"),
    );
    assert_eq!(sold["order"]["order_state"], "filled", "{sold}");
    let fill = &sold["trades"][0];
    assert_eq!(fill["liquidity"], "T");
    assert_eq!(fill["amount"], 0.001);
    assert_eq!(fill["price"].as_f64(), bid.parse::<f64>().ok());
    assert_eq!(fill["fee_currency"], "USDC");
    let state = a.ok("get_order_state", &format!("order_id={order_id}"));
    assert_eq!(state["filled_amount"], 0.001, "{state}");
    assert_eq!(state["average_price"].as_f64(), bid.parse::<f64>().ok());
    let maker = a.ok(
        "get_user_trades_by_instrument",
        &format!("instrument_name={PERP}&include_old=true"),
    );
    assert_eq!(maker["trades"][0]["liquidity"], "M", "{maker}");
    assert_eq!(maker["has_more"], false);
    // B cannot see A's order.
    assert_eq!(
        b.code("get_order_state", &format!("order_id={order_id}")),
        10004
    );
    let lower = price_near(index, -80);
    let edited = a.ok(
        "edit",
        &format!("order_id={order_id}&amount=0.003&price={lower}"),
    );
    assert_eq!(edited["order"]["order_id"], order_id.as_str());
    assert_eq!(edited["order"]["amount"], 0.003, "{edited}");
    assert_eq!(edited["order"]["price"].as_f64(), lower.parse::<f64>().ok());
    assert_eq!(edited["order"]["filled_amount"], 0.001);
    let open = a.ok("get_open_orders_by_currency", "currency=BTC");
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    let cancelled = a.ok("cancel", &format!("order_id={order_id}"));
    assert_eq!(cancelled["order_state"], "cancelled", "{cancelled}");
    assert_eq!(a.code("cancel", &format!("order_id={order_id}")), 11044);
    assert_eq!(a.code("get_order_state", "order_id=BLW-999999"), 10004);
    let history = a.ok(
        "get_order_history_by_instrument",
        &format!("count=1000&instrument_name={PERP}"),
    );
    assert_eq!(history[0]["order_id"], order_id.as_str(), "{history}");

    // Positions: A long 0.001, B short 0.001 (Deribit sends shorts negative).
    let positions = a.ok("get_positions", "");
    assert_eq!(positions.as_array().unwrap().len(), 1, "{positions}");
    assert_eq!(positions[0]["direction"], "buy");
    assert_eq!(positions[0]["size"], 0.001);
    let short = b.ok("get_position", &format!("instrument_name={PERP}"));
    assert_eq!(
        (short["direction"].as_str(), short["size"].as_f64()),
        (Some("sell"), Some(-0.001))
    );
    let after = a.ok("get_account_summaries", "");
    assert!(after["summaries"][0]["equity"].as_f64().unwrap() < 1_000_000.0 + 10.0);
    assert!(
        after["summaries"][0]["initial_margin"].as_f64().unwrap() > 0.0,
        "{after}"
    );

    // Refusals with the contract's codes.
    let q = |amount: &str, price: &str| {
        format!("instrument_name={PERP}&amount={amount}&type=limit&price={price}")
    };
    assert_eq!(a.code("buy", &q("0.0015", &bid)), 10008, "amount off step");
    assert_eq!(a.code("buy", &q("0", &bid)), 10008);
    assert_eq!(a.code("buy", &q("abc", &bid)), -32602);
    assert_eq!(
        a.code(
            "buy",
            &format!(
                "instrument_name={PERP}&amount=0.001&type=limit&price={:.2}",
                bid.parse::<f64>().unwrap() + 0.25
            )
        ),
        10043
    );
    assert_eq!(
        a.code(
            "buy",
            &format!("instrument_name={PERP}&type=limit&price={bid}")
        ),
        -32602
    );
    assert_eq!(
        a.code(
            "buy",
            &format!("instrument_name={PERP}&amount=0.001&type=stop_limit&price={bid}")
        ),
        -32602
    );
    assert_eq!(
        a.code(
            "buy",
            &format!("instrument_name={PERP}&amount=0.001&type=market&post_only=true")
        ),
        11049
    );
    assert_eq!(a.code("buy", &q("500", &bid)), 10009, "not enough funds");
    // Post-only that would take: rejected, nothing rests.
    let resting = a.ok("buy", &q("0.001", &bid));
    assert_eq!(resting["order"]["order_state"], "open");
    assert_eq!(
        b.code(
            "sell",
            &format!("{}&post_only=true&reject_post_only=true", q("0.001", &bid))
        ),
        11054
    );
    assert_eq!(
        b.ok(
            "get_open_orders_by_instrument",
            &format!("instrument_name={PERP}")
        ),
        json!([])
    );
    // IOC and FOK that cannot fill: success, cancelled, nothing filled.
    for tif in ["immediate_or_cancel", "fill_or_kill"] {
        let answer = b.ok(
            "sell",
            &format!(
                "{}&time_in_force={tif}",
                q("0.001", &price_near(index, 300))
            ),
        );
        assert_eq!(
            answer["order"]["order_state"], "cancelled",
            "{tif}: {answer}"
        );
        assert_eq!(answer["order"]["filled_amount"], 0.0);
        assert_eq!(answer["order"]["time_in_force"], tif);
    }
    // A market order takes the resting bid: price "market_price", the average price set.
    let market = b.ok(
        "sell",
        &format!("instrument_name={PERP}&amount=0.001&type=market"),
    );
    assert_eq!(market["order"]["price"], "market_price", "{market}");
    assert_eq!(market["order"]["order_state"], "filled", "{market}");
    assert_eq!(
        market["order"]["average_price"].as_f64(),
        bid.parse::<f64>().ok()
    );
    assert_eq!(market["trades"][0]["order_type"], "market");
    let resting = a.ok("buy", &q("0.001", &bid));
    assert_eq!(resting["order"]["order_state"], "open");
    // Orders of one key sent at once: each gets its own nonce, in order; all rest.
    let low = price_near(index, -100);
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| a.ok("buy", &q("0.001", &low))))
            .collect();
        for call in calls {
            let answer = call.join().unwrap();
            assert_eq!(answer["order"]["order_state"], "open", "{answer}");
        }
    });
    assert_eq!(a.ok("cancel_all", ""), json!(4));
    assert_eq!(
        a.ok(
            "cancel_all_by_instrument",
            &format!("instrument_name={PERP}")
        ),
        json!(0)
    );

    // Public trades and the book.
    let trades = public(
        &gateway,
        "get_last_trades_by_instrument",
        &format!("instrument_name={PERP}&include_old=true&count=5"),
    )
    .1;
    assert_eq!(trades["result"]["trades"][0]["amount"], 0.001, "{trades}");
    let book = public(
        &gateway,
        "get_order_book",
        &format!("instrument_name={PERP}&depth=3"),
    )
    .1;
    assert!(
        book["result"]["bids"].is_array() && book["result"]["change_id"].is_u64(),
        "{book}"
    );

    // A private JSON-RPC POST, signed over its body; the id is echoed.
    let body = br#"{"jsonrpc":"2.0","id":"q1","method":"private/get_position","params":{"instrument_name":"BTC_USDC-PERPETUAL"}}"#;
    let target = "/api/v2/private/get_position";
    let header = a.header("POST", target, body, now_ms());
    let (status, posted) = http(&gateway, "POST", target, &[("Authorization", header)], body);
    assert_eq!(
        (status, posted["id"].as_str()),
        (200, Some("q1")),
        "{posted}"
    );
    assert_eq!(
        posted["result"]["size"], 0.002,
        "the fill and the market sell"
    );

    // Revocation: the owner's RevokeAgent, once final, ends the key.
    let agent = bulwark::keys::parse_public_key(&created_b_agent).unwrap();
    gateway_cli::revoke(&api, &key(1), agent, Duration::from_secs(60)).unwrap();
    // The gateway may trail the validator that reported it final by a block or two.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let revoked = loop {
        let (_, answer) = b.get("get_account_summaries", "");
        if code_of(&answer) == 13009 || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code_of(&revoked), 13009, "{revoked}");
    assert!(
        revoked["error"]["data"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("revoked"),
        "{revoked}"
    );

    // The rate limit: a key's read budget (burst 100) runs out.
    let limited = (0..150)
        .map(|_| a.get("get_account_summaries", "").1)
        .filter(|body| code_of(body) == 10028)
        .count();
    assert!(limited > 0, "the key's rate limit was never hit");
    // A signed request its key's budget refused is not remembered as seen: sent again once the
    // budget refilled it is taken, and only then is a third sending a replay. (Remembered
    // before the budget was charged, a flood of refused requests filled the shared cache.)
    let target = "/api/v2/private/get_account_summaries";
    let header = a.header("GET", target, b"", now_ms());
    let send = || {
        http(
            &gateway,
            "GET",
            target,
            &[("Authorization", header.clone())],
            b"",
        )
        .1
    };
    while code_of(&a.get("get_account_summaries", "").1) != 10028 {}
    assert_eq!(code_of(&send()), 10028, "the key's budget is spent");
    std::thread::sleep(Duration::from_millis(500));
    let taken = send();
    assert!(
        taken["result"].is_object(),
        "taken once the budget refilled: {taken}"
    );
    assert_eq!(code_of(&send()), 13009, "then a replay");
    // The gateway's own status and key list are reads from the address's budget too (burst
    // 500): unbudgeted, each took the replica's lock as often as asked.
    let refused = (0..700)
        .map(|_| http(&gateway, "GET", "/gateway/v1/status", &[], b"").0)
        .filter(|status| *status == 429)
        .count();
    assert!(refused > 0, "the address's read budget was never hit");
}

/// `client`'s limit buy of 0.002 BTC on the perpetual through `gateway`, 3% under the index
/// (it rests): the answer, and how long the order call took.
fn resting_buy(gateway: &str, client: &Client) -> ((u16, Value), Duration) {
    let (_, ticker) = public(gateway, "ticker", &format!("instrument_name={PERP}"));
    let bid = price_near(ticker["result"]["index_price"].as_f64().unwrap(), -300);
    let started = std::time::Instant::now();
    let answer = client.get(
        "buy",
        &format!("instrument_name={PERP}&amount=0.002&type=limit&price={bid}"),
    );
    (answer, started.elapsed())
}

/// Hands a transaction a liar kept (its hex) to the validator at `api`, as the liar would
/// release it later: the validator's status and answer.
fn release(api: &str, tx: &str) -> (u16, Value) {
    http(
        api,
        "POST",
        "/tx",
        &[("Content-Type", "application/json".into())],
        json!({ "tx": tx }).to_string().as_bytes(),
    )
}

/// `bulwark gateway` as its own process, from a node configuration of the devnet's network:
/// it derives the same genesis and follows to the same blocks as the devnet's own gateway.
#[test]
fn a_standalone_gateway_follows_the_same_chain() {
    let devnet = Devnet::start("gateway-standalone");
    let (url, _child) = gateway_behind(&devnet, &devnet.apis, "standalone");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (ours, theirs) = loop {
        let (_, theirs) = http(&url, "GET", "/gateway/v1/status", &[], b"");
        let height = theirs["height"].as_u64().unwrap_or(0);
        if height >= 5 {
            // The devnet's gateway at the same height (it is at or past it).
            devnet.wait_height(height, Duration::from_secs(30));
            let (_, ours) = http(&devnet.gateway, "GET", "/gateway/v1/status", &[], b"");
            if ours["height"] == theirs["height"] {
                break (ours, theirs);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the standalone gateway did not follow: {theirs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ours["block"], theirs["block"]);
    assert_eq!(ours["state_digest"], theirs["state_digest"]);
    assert_eq!(theirs["lies"], json!([]));
}

#[test]
fn the_client_commands_trade_through_the_gateway_with_an_api_key() {
    let devnet = Devnet::start("gateway-cli");
    let api = devnet.apis[0].clone();
    let gateway = devnet.gateway.clone();
    let key = bulwark::keys::read_key(&devnet.demo_key(0)).unwrap();
    let created = gateway_cli::create(&gateway, &api, &key, Duration::from_secs(60)).unwrap();
    let credentials = [
        "--gateway",
        gateway.as_str(),
        "--api-key",
        created.client_id.as_str(),
        "--api-secret",
        created.client_secret.as_str(),
    ];
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&credentials);
        bulwark_cli(&all)
    };
    let (_, ticker) = public(&gateway, "ticker", &format!("instrument_name={PERP}"));
    let bid = price_near(ticker["result"]["index_price"].as_f64().unwrap(), -100);

    // Place, read back through book and account, cancel: all through the Deribit API.
    let (ok, placed, stderr) = with(&[
        "order",
        "place",
        "--instrument",
        PERP,
        "--side",
        "buy",
        "--amount",
        "0.003",
        "--price",
        &bid,
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(placed["order"]["order_state"], "open", "{placed}");
    let order_id = placed["order"]["order_id"].as_str().unwrap().to_string();
    let (ok, book, stderr) = with(&["book", PERP, "--json"]);
    assert!(ok, "{stderr}");
    assert_eq!(book["bids"][0][1], 0.003, "{book}");
    let (ok, account, stderr) = with(&["account"]);
    assert!(ok, "{stderr}");
    assert_eq!(account["summary"]["currency"], "USDC", "{account}");
    assert_eq!(account["open_orders"][0]["order_id"], order_id.as_str());
    let (ok, status, _) = with(&["status"]);
    assert!(ok && status["height"].as_u64().unwrap() > 0, "{status}");
    let numeric = order_id.trim_start_matches("BLW-");
    let (ok, cancelled, stderr) = with(&["order", "cancel", "--order-id", numeric]);
    assert!(ok, "{stderr}");
    assert_eq!(cancelled["order_state"], "cancelled", "{cancelled}");

    // Mistakes are named: a validator's --qty through a gateway, a wrong secret, no key.
    let (ok, _, stderr) = with(&[
        "order",
        "place",
        "--instrument",
        PERP,
        "--side",
        "buy",
        "--qty",
        "3",
        "--price",
        &bid,
    ]);
    assert!(!ok && stderr.contains("--amount"), "{stderr}");
    let (ok, _, stderr) = bulwark_cli(&[
        "account",
        "--gateway",
        &gateway,
        "--api-key",
        &created.client_id,
        "--api-secret",
        "not-the-secret",
    ]);
    assert!(!ok && stderr.contains("13009"), "{stderr}");
    let (ok, _, stderr) = bulwark_cli(&["account", "--gateway", &gateway]);
    assert!(!ok && stderr.contains("--api-key"), "{stderr}");
}

/// The attack on what a client reads: a validator named first that passes everything on to
/// an honest one but lies in what it reads back: every book names another instrument's id (an
/// option's), and every transaction is finalized and applied at once. The command line read
/// from the first validator it was given, so its perpetual order went to the option, reported
/// applied before anything executed. It now believes an answer only when two of the four gave
/// it alike: the order rests on the perpetual, and the account read through the liar shows it.
#[test]
fn a_validator_that_lies_in_what_the_command_line_reads_is_outvoted() {
    let devnet = Devnet::start("cli-liar");
    let honest = devnet.apis[1].clone();
    let (_, listed) = http(&honest, "GET", "/instruments", &[], b"");
    let other = listed["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|instrument| instrument["name"] != PERP)
        .map(|instrument| instrument["id"].clone())
        .unwrap();
    let relay = honest.clone();
    let liar = api_played_by(move |line, target, raw| {
        if line.starts_with("POST ") {
            let json_type = [("Content-Type", "application/json".to_string())];
            let (status, answer) = http(&relay, "POST", target, &json_type, raw);
            return (status, answer.to_string());
        }
        let (status, text) = common::devnet::http_text(&relay, target);
        let mut body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if target.starts_with("/book/") {
            body["instrument"]["id"] = other.clone();
        } else if target.starts_with("/tx/") {
            body = json!({"status": "finalized", "outcome": {"result": "applied"}});
        }
        (status, body.to_string())
    });
    let apis = format!("{liar},{honest},{},{}", devnet.apis[2], devnet.apis[3]);
    let (_, book) = http(&honest, "GET", &format!("/book/{PERP}"), &[], b"");
    let index: f64 = book["index"].as_str().unwrap().parse().unwrap();
    let bid = price_near(index, -100);
    let key_file = devnet.demo_key(0);
    let key = key_file.to_str().unwrap();
    let (ok, placed, stderr) = bulwark_cli(&[
        "order",
        "place",
        "--api",
        &apis,
        "--key",
        key,
        "--instrument",
        PERP,
        "--side",
        "buy",
        "--price",
        &bid,
        "--qty",
        "1",
        "--wait",
        "20",
    ]);
    assert!(ok, "{placed} {stderr}");
    assert_eq!(placed["status"], "finalized", "{placed}");
    assert_eq!(placed["outcome"]["result"], "applied", "{placed}");
    assert!(
        placed["events"].is_array(),
        "the honest answer, not the liar's: {placed}"
    );
    let (ok, account, stderr) = bulwark_cli(&["account", "--api", &apis, "--key", key]);
    assert!(ok, "{stderr}");
    let orders = account["orders"].as_array().unwrap();
    assert!(
        orders.iter().any(|order| order["instrument"] == PERP),
        "the order rests on the perpetual: {account}"
    );
    assert!(
        orders.iter().all(|order| order["instrument"] == PERP),
        "and on nothing else: {account}"
    );
}

/// A validator's API played by `answer`, which gets each request's line (`POST /tx HTTP/1.1`),
/// target and body and returns the status and JSON text to answer with. Returns its URL.
fn api_played_by(
    answer: impl Fn(&str, &str, &[u8]) -> (u16, String) + Clone + Send + 'static,
) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut raw = vec![0; length];
                let _ = reader.read_exact(&mut raw);
                let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, answer) = answer(&line, &target, &raw);
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    url
}

/// A Byzantine validator in a gateway's (or a client's) list: it answers the first `swallow`
/// transactions it is handed (`POST /txs` or `POST /tx`) "pending", keeps them and passes them
/// on to no one. With `relay`, it passes every later submission and every read on to that
/// honest validator and answers with its answer; without, it swallows every submission and
/// answers every read 503. Returns its URL and what it kept (the hex of each transaction).
fn byzantine_validator(
    swallow: usize,
    relay: Option<String>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = kept.clone();
    let url = api_played_by(move |line, target, raw| {
        let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
        let json_type = [("Content-Type", "application/json".to_string())];
        let one = line.starts_with("POST /tx ");
        if line.starts_with("POST /txs ") || one {
            let txs: Vec<String> = if one {
                body["tx"].as_str().map(String::from).into_iter().collect()
            } else {
                body["txs"]
                    .as_array()
                    .map(|txs| {
                        txs.iter()
                            .filter_map(|t| t.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let path = if one { "/tx" } else { "/txs" };
            let mut kept = keep.lock().unwrap();
            match &relay {
                Some(honest) if kept.len() >= swallow => {
                    drop(kept);
                    let (status, answer) = http(honest, "POST", path, &json_type, raw);
                    (status, answer.to_string())
                }
                _ => {
                    kept.extend(txs.iter().cloned());
                    let pending = json!({"digest": "00", "status": "pending"});
                    let answer = if one {
                        pending
                    } else {
                        json!({ "results": vec![pending; txs.len()] })
                    };
                    (200, answer.to_string())
                }
            }
        } else if let Some(honest) = &relay {
            common::devnet::http_text(honest, target)
        } else {
            let down = json!({"error": "unavailable", "code": "node_halted"});
            (503, down.to_string())
        }
    });
    (url, kept)
}

/// `bulwark gateway` as its own process, following and submitting to `validators` of the
/// devnet's network, under `name` in the devnet's directory; its URL once it follows.
fn gateway_behind(devnet: &Devnet, validators: &[String], name: &str) -> (String, Killed) {
    let config = devnet.node_config();
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listen.local_addr().unwrap();
    drop(listen);
    let child = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["gateway", "--genesis"])
            .arg(&config)
            .arg("--validators")
            .arg(validators.join(","))
            .args(["--listen", &addr.to_string(), "--data-dir"])
            .arg(devnet.dir.join(name))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let gateway = format!("http://{addr}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while http(&gateway, "GET", "/gateway/v1/status", &[], b"").1["height"]
        .as_u64()
        .unwrap_or(0)
        < 5
    {
        assert!(std::time::Instant::now() < deadline, "the gateway follows");
        std::thread::sleep(Duration::from_millis(50));
    }
    (gateway, child)
}

/// Kills the process when the test ends, passed or failed.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An API key of demo account `i` at `gateway`, bound through an honest validator.
fn key_at(devnet: &Devnet, gateway: &str, i: usize) -> Client {
    let owner = bulwark::keys::read_key(&devnet.demo_key(i)).unwrap();
    let created = gateway_cli::create(gateway, &devnet.apis[1], &owner, Duration::from_secs(60))
        .expect("a key through the gateway");
    Client {
        base: gateway.to_string(),
        id: created.client_id,
        secret: created.client_secret,
    }
}

/// The attack: a gateway lists a validator first that says "admitted" to every transaction
/// and drops it. Asking only the first validator that admits, every order of the gateway's
/// clients timed out (10040 after `order_wait`) while the liar kept their signed orders, free
/// to hand one to a leader later (nonces may skip), when the price has moved. The gateway now
/// hands each transaction to every validator it knows: the order executes through the honest
/// ones, and the copy the liar kept is spent (its nonce is stale) once it has.
#[test]
fn a_validator_that_swallows_submissions_neither_stops_nor_holds_orders() {
    let devnet = Devnet::start("gateway-swallower");
    let (liar, kept) = byzantine_validator(usize::MAX, None);
    let mut validators = vec![liar];
    validators.extend(devnet.apis.iter().cloned());
    let (gateway, _child) = gateway_behind(&devnet, &validators, "behind-a-liar");
    let client = key_at(&devnet, &gateway, 0);
    let ((status, placed), took) = resting_buy(&gateway, &client);
    assert_eq!(status, 200, "the order executes past the liar: {placed}");
    assert_eq!(placed["result"]["order"]["order_state"], "open", "{placed}");
    println!(
        "order answered in {} ms past the swallowing validator",
        took.as_millis()
    );
    // The status lists every validator's answers, each its own word: the liar "admitted" too.
    let (_, status) = http(&gateway, "GET", "/gateway/v1/status", &[], b"");
    let lanes = status["submissions"]
        .as_array()
        .expect("submissions in the status");
    assert_eq!(lanes.len(), validators.len(), "{status}");
    assert!(
        lanes.iter().all(|l| l["admitted"].as_u64() >= Some(1)),
        "{status}"
    );

    // The liar was asked and kept the order; handed to an honest validator now, its copy is
    // refused: the executed order spent its nonce.
    let withheld: Vec<String> = kept.lock().unwrap().clone();
    assert!(!withheld.is_empty(), "the liar was asked");
    for tx in withheld {
        let (status, answer) = release(&devnet.apis[2], &tx);
        assert_eq!(status, 409, "a withheld copy is spent: {answer}");
    }
}

/// What handing every transaction to every validator does not stop: no validator the gateway
/// knows passes the order on in time (here its one validator swallows the first transaction
/// and relays everything after). The order waits out `order_wait`, the client is told it "may
/// still execute", and the withholder keeps it, free to release it when the price has moved
/// (nonces may skip): released to an honest validator after the answer, it was admitted. Now
/// the gateway then spends the order's nonce with a transaction only a rejection can come of
/// (a cancel of no order) and answers once that is final: the order never executes, the
/// client is told so, and the withheld copy is stale.
#[test]
fn an_order_withheld_past_its_wait_is_settled_not_left_to_the_withholder() {
    let devnet = Devnet::start("gateway-withholder");
    let (withholder, kept) = byzantine_validator(1, Some(devnet.apis[1].clone()));
    let (gateway, _child) = gateway_behind(&devnet, &[withholder], "behind-a-withholder");
    let client = key_at(&devnet, &gateway, 0);
    let ((_, answer), took) = resting_buy(&gateway, &client);
    println!("answered in {} ms: {answer}", took.as_millis());
    assert_eq!(code_of(&answer), 10040, "{answer}");
    assert_eq!(
        answer["error"]["data"]["executed"],
        json!(false),
        "settled, not left open: {answer}"
    );
    let withheld: Vec<String> = kept.lock().unwrap().clone();
    assert_eq!(withheld.len(), 1, "the order was withheld");
    let (status, refused) = release(&devnet.apis[2], &withheld[0]);
    assert_eq!(status, 409, "released late, the order is stale: {refused}");
    let open = client.ok("get_open_orders_by_currency", "currency=USDC");
    assert_eq!(open, json!([]), "it never rested");
}

/// What the gateway and the command line sign expires: the nonce is the clock in microseconds
/// and executes only within a minute of the block's time, so whoever was handed a transaction
/// and kept it back (a validator that swallowed it, one a client talked to alone) cannot play it
/// a minute later. Through the real validators: one kept 61 s is refused at admission before
/// its signature is checked; one dated 2 minutes ahead is admitted and rejected by its block,
/// spending nothing; the command line's own transactions carry the clock.
#[test]
fn a_transaction_kept_back_past_a_minute_is_refused_by_the_validators() {
    use bulwark::client;
    use bulwark_types::TxBody;
    let devnet = Devnet::start("expiry");
    let api = devnet.apis[0].clone();
    let key = bulwark::keys::read_key(&devnet.demo_key(0)).unwrap();
    let cancel_all = TxBody::CancelAll { instrument: None };
    let started_ms = now_ms();

    let kept = client::sign(&key, (started_ms - 61_000) * 1_000, cancel_all.clone());
    let refused = client::submit(&api, &kept).unwrap_err().to_string();
    assert!(
        refused.contains("422") && refused.contains("tx_invalid") && refused.contains("expired"),
        "{refused}"
    );

    let ahead = client::sign(&key, (started_ms + 120_000) * 1_000, cancel_all);
    let outcome = client::submit_and_follow(&api, &ahead, Duration::from_secs(30)).unwrap();
    assert_eq!(outcome["status"], "finalized", "{outcome}");
    assert_eq!(outcome["outcome"]["result"], "rejected", "{outcome}");
    assert_eq!(outcome["outcome"]["code"], 9, "NonceAhead: {outcome}");

    let key_file = devnet.demo_key(0);
    let (ok, cancelled, stderr) = bulwark_cli(&[
        "order",
        "cancel",
        "--api",
        &api,
        "--key",
        key_file.to_str().unwrap(),
    ]);
    assert!(ok, "{cancelled} {stderr}");
    assert_eq!(cancelled["outcome"]["result"], "applied", "{cancelled}");
    let public_key = bulwark::keys::public_hex(&commonware_cryptography::Signer::public_key(&key));
    let (_, account) = http(&api, "GET", &format!("/account/{public_key}"), &[], b"");
    let next = account["nonce_next"].as_u64().unwrap();
    assert!(
        next > started_ms * 1_000 && next < (started_ms + 60_000) * 1_000,
        "the command line signed with the clock, and the nonce ahead was not spent: {next}"
    );
}

/// The attack on a client of validators' APIs: `bulwark order cancel --api LIAR,HONEST`, the
/// liar first, answering "pending" and dropping the transaction (reads it relays). The command
/// line handed its transaction to the first validator only: it waited out `--wait` with the
/// transaction pending, kept by the liar. It now hands it to every validator it is given and
/// follows it by its own digest: applied, and the copy the liar kept is stale.
#[test]
fn the_command_line_hands_its_transaction_to_every_validator_it_is_given() {
    let devnet = Devnet::start("cli-swallower");
    let (liar, kept) = byzantine_validator(usize::MAX, Some(devnet.apis[1].clone()));
    let apis = format!("{liar},{}", devnet.apis[2]);
    let key_file = devnet.demo_key(0);
    let started = std::time::Instant::now();
    let (ok, cancelled, stderr) = bulwark_cli(&[
        "order",
        "cancel",
        "--api",
        &apis,
        "--key",
        key_file.to_str().unwrap(),
        "--wait",
        "20",
    ]);
    println!("answered in {} ms", started.elapsed().as_millis());
    assert!(ok, "{cancelled} {stderr}");
    assert_eq!(cancelled["status"], "finalized", "{cancelled}");
    assert_eq!(cancelled["outcome"]["result"], "applied", "{cancelled}");
    let withheld: Vec<String> = kept.lock().unwrap().clone();
    assert_eq!(withheld.len(), 1, "the liar was handed it too");
    let (status, refused) = release(&devnet.apis[3], &withheld[0]);
    assert_eq!(status, 409, "released late, the copy is stale: {refused}");
}
