//! The dashboard end to end: `bulwark devnet` (four validators and a gateway), a trade made
//! through the Deribit API, then the dashboard's state, its charts, and the page itself as a
//! real browser renders it (headless Chromium, which `.ci/run` installs).

mod common;

use bulwark::gateway_cli;
use common::devnet::{Client, Devnet, http, http_text, public};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const PERP: &str = "BTC_USDC-PERPETUAL";

/// A Chromium binary: `BULWARK_CHROMIUM`, else the usual names on the path.
fn chromium() -> Option<String> {
    if let Ok(path) = std::env::var("BULWARK_CHROMIUM") {
        return Some(path);
    }
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .into_iter()
    .find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .map(str::to_string)
}

/// The page's DOM after Chromium loaded it and ran its script for `budget_ms` of virtual time.
fn rendered_dom(browser: &str, url: &str, budget_ms: u64) -> String {
    let profile = std::env::temp_dir().join(format!("bulwark-chromium-{}", std::process::id()));
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--virtual-time-budget={budget_ms}"),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Subscribes to `bulwark.dashboard` and returns the replica heights of its notifications
/// (each a whole dashboard state), read until one is past the first: the chain moves, or the
/// 30 s deadline fails the test. A state is rendered once a second, so two in a row can show
/// one height while a block is slow (seen in CI: [31, 31]).
fn dashboard_over_websocket(gateway: &str) -> Vec<u64> {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("{}/ws/api/v2", gateway.replacen("http://", "ws://", 1));
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        for (id, channel) in [(2, "bulwark.nothing"), (1, "bulwark.dashboard")] {
            let subscribe = serde_json::json!({"jsonrpc": "2.0", "id": id,
                "method": "public/subscribe", "params": {"channels": [channel]}});
            socket
                .send(Message::Text(subscribe.to_string().into()))
                .await
                .unwrap();
        }
        let mut heights = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while heights.len() < 2 || heights.last() <= heights.first() {
            let frame = tokio::time::timeout_at(deadline, socket.next())
                .await
                .expect("dashboard notifications within 30 s")
                .expect("the connection stays open")
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["id"] == 2 {
                assert!(
                    message["error"]["code"].is_i64(),
                    "an unknown channel: {message}"
                );
                continue;
            }
            if message["id"] == 1 {
                assert_eq!(message["result"], serde_json::json!(["bulwark.dashboard"]));
                continue;
            }
            if message["params"]["channel"] == "bulwark.dashboard" {
                let data = &message["params"]["data"];
                assert_eq!(data["cluster"]["validators"].as_array().unwrap().len(), 4);
                heights.push(data["replica"]["height"].as_u64().unwrap());
            }
        }
        heights
    })
}

fn state(devnet: &Devnet) -> Value {
    let (status, state) = http(&devnet.gateway, "GET", "/dashboard/v1/state", &[], b"");
    assert_eq!(status, 200, "{state}");
    state
}

#[test]
fn the_dashboard_shows_the_cluster_the_oracle_the_books_and_the_risk() {
    let devnet = Devnet::start("dashboard");
    let api = devnet.apis[0].clone();
    let gateway = devnet.gateway.clone();
    let key = |i| bulwark::keys::read_key(&devnet.demo_key(i)).unwrap();
    let client = |i| {
        let created =
            gateway_cli::create(&gateway, &api, &key(i), Duration::from_secs(60)).unwrap();
        Client {
            base: gateway.clone(),
            id: created.client_id,
            secret: created.client_secret,
        }
    };
    let (a, b) = (client(0), client(1));

    // A resting bid and ask on the perpetual, and a trade.
    let (_, ticker) = public(&gateway, "ticker", &format!("instrument_name={PERP}"));
    let index = ticker["result"]["index_price"].as_f64().unwrap();
    let near = |bps: f64| {
        format!(
            "{:.1}",
            (index * (1.0 + bps / 10_000.0) * 2.0).round() / 2.0
        )
    };
    let order = |side: &str, who: &Client, amount: &str, price: &str| {
        who.ok(
            side,
            &format!("instrument_name={PERP}&amount={amount}&type=limit&price={price}"),
        )
    };
    order("buy", &a, "0.003", &near(-30.0));
    order("sell", &a, "0.002", &near(40.0));
    let sold = order("sell", &b, "0.001", &near(-30.0));
    assert_eq!(sold["order"]["order_state"], "filled", "{sold}");

    // The state: every validator reachable, its digest checked against the gateway's replay.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut agreed = [false; 4];
    let mut last = Value::Null;
    let finalized = |state: &Value| state["cluster"]["validators"][0]["finalized_height"].as_u64();
    // Wait for every digest check and for a few blocks past the trade: a fast machine
    // verifies all four digests before the fifth block is finalized.
    while !(agreed.iter().all(|a| *a) && finalized(&last).is_some_and(|h| h >= 5))
        && Instant::now() < deadline
    {
        last = state(&devnet);
        let validators = last["cluster"]["validators"].as_array().unwrap();
        assert_eq!(validators.len(), 4, "{last}");
        for (i, v) in validators.iter().enumerate() {
            assert_ne!(v["digest_check"], "differs", "an honest validator: {v}");
            agreed[i] |= v["digest_check"] == "agrees";
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        agreed.iter().all(|a| *a),
        "every validator's digest verified: {last}"
    );
    let v0 = &last["cluster"]["validators"][0];
    assert_eq!(v0["mode"], "running", "{v0}");
    assert!(v0["finalized_height"].as_u64().unwrap() >= 5, "{v0}");
    assert_eq!(v0["peers_expected"], 3);

    // The oracle: each of the four validators' observations, none an outlier.
    let btc = last["oracle"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["asset"] == "BTC")
        .expect("BTC tracked")
        .clone();
    assert_eq!(btc["mode"], "fresh", "{btc}");
    let observations = btc["observations"].as_array().unwrap();
    assert_eq!(observations.len(), 4, "{btc}");
    for o in observations {
        assert_eq!(o["outlier"], false, "{o}");
        assert!(o["deviation_bps"].as_f64().unwrap().abs() < 100.0, "{o}");
    }

    // The book and the trade.
    let perp = last["markets"]["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["instrument_name"] == PERP)
        .expect("the perpetual is shown")
        .clone();
    assert_eq!(perp["mode"], "normal");
    assert_eq!(perp["bids"][0][1], 0.002, "{perp}");
    assert_eq!(perp["asks"][0][1], 0.002, "{perp}");
    assert_eq!(perp["trades"][0]["amount"], 0.001, "{perp}");
    assert_eq!(perp["trades"][0]["direction"], "sell");
    // Risk, modes and smiles are there, and consistent with the API.
    assert!(last["risk"]["insurance_fund"].as_f64().unwrap() > 0.0);
    assert_eq!(last["modes"]["oracle"][0]["mode"], "fresh");
    assert!(
        last["modes"]["instruments"]["normal"].as_u64().unwrap() > 1,
        "{}",
        last["modes"]
    );
    let series = last["smiles"].as_array().unwrap();
    assert!(!series.is_empty(), "the devnet lists options");

    // Charts: SVG drawn on the server; unknown series and assets answered 404.
    let (status, svg) = http_text(&gateway, "/dashboard/v1/charts/fund.svg");
    assert_eq!(status, 200);
    assert!(
        svg.starts_with("<svg") && svg.contains("Insurance fund"),
        "{svg}"
    );
    let (status, svg) = http_text(&gateway, "/dashboard/v1/charts/index.svg?asset=BTC");
    assert_eq!(status, 200);
    assert!(svg.contains("BTC index"), "{svg}");
    assert_eq!(
        http_text(
            &gateway,
            "/dashboard/v1/charts/index.svg?asset=not%20an%20asset"
        )
        .0,
        404
    );
    let expiry = series[0]["expiry_ms"].as_u64().unwrap();
    let (status, svg) = http_text(
        &gateway,
        &format!("/dashboard/v1/charts/smile.svg?underlying=BTC&expiry_ms={expiry}"),
    );
    assert_eq!(status, 200, "{svg}");
    assert_eq!(
        http_text(
            &gateway,
            "/dashboard/v1/charts/smile.svg?underlying=BTC&expiry_ms=1"
        )
        .0,
        404
    );

    // Live: the same state over the WebSocket channel `bulwark.dashboard`, newer each time.
    let heights = dashboard_over_websocket(&gateway);
    assert!(
        heights.windows(2).all(|w| w[1] >= w[0]),
        "never older: {heights:?}"
    );
    assert!(heights[0] >= last["replica"]["height"].as_u64().unwrap());

    // The page, as a browser renders it.
    let (status, page) = http_text(&gateway, "/dashboard");
    assert_eq!(status, 200);
    assert!(page.contains("<title>Bulwark dashboard</title>"));
    match chromium() {
        Some(browser) => {
            let dom = rendered_dom(&browser, &format!("{gateway}/dashboard"), 8_000);
            let height: u64 = dom
                .split("data-height=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .and_then(|h| h.parse().ok())
                .unwrap_or(0);
            assert!(height >= 5, "the page rendered the state: {dom}");
            let cluster = dom
                .split("id=\"cluster\"")
                .nth(1)
                .and_then(|rest| rest.split("</table>").next())
                .unwrap_or("");
            assert_eq!(
                cluster.matches("<tr>").count(),
                1 + 4,
                "a header and four validators: {cluster}"
            );
            assert!(cluster.contains("✓"), "digests verified: {cluster}");
            assert!(dom.contains(PERP), "the book: {dom}");
            assert!(dom.contains("BTC index"), "the oracle: {dom}");
            assert!(
                dom.contains("data-live=\"ws\""),
                "live updates over the WebSocket"
            );
        }
        None if std::env::var_os("CI").is_some() => {
            panic!("Chromium is required in CI (.ci/run installs it with apt)")
        }
        None => eprintln!("no Chromium on this machine: the rendered page is not checked"),
    }

    // The address's read budget bounds the dashboard like the API.
    let refused = (0..700)
        .filter(|_| http_text(&gateway, "/dashboard").0 == 429)
        .count();
    assert!(refused > 0, "the read budget applies");
}
