//! `bulwark withdraw` against a running `bulwark devnet`: money leaves only with the owner's
//! key and only what the account has; a held withdrawal's release is followed to its end; a
//! cancel with nothing held, a key with no account and an amount beyond the available funds
//! are refused with the exchange's reason and a non-zero exit. The gateway's Deribit API shows
//! the account's deposits and withdrawals and refuses an API key's withdrawal.

mod common;

use common::devnet::{Client, Devnet, bulwark_cli};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A decimal USDC string of the API (`"12.500000"`) as micro-USDC.
fn micros(text: &Value) -> i128 {
    let text = text.as_str().unwrap_or_else(|| panic!("a decimal: {text}"));
    bulwark_gateway::deribit::convert::parse_decimal(text, 6).expect("a decimal")
}

#[test]
fn the_withdraw_command_pays_the_owner_what_the_account_has_and_no_more() {
    let devnet = Devnet::start("withdraw-cli");
    let api = devnet.apis[0].as_str();
    let key = devnet.demo_key(1);
    let key = key.to_str().unwrap();
    let account = |label: &str| {
        let (ok, view, stderr) = bulwark_cli(&["account", "--api", api, "--key", key]);
        assert!(ok, "{label}: bulwark account: {stderr}");
        view
    };
    let before = account("before");
    let withdrawn_before = micros(&before["withdrawn"]);
    let available = micros(&before["available_withdrawal_funds"]);
    assert!(
        available > 250_000_000,
        "the demo account is funded: {before}"
    );

    // 250.5 USDC: held, released at prices observed after the request, paid.
    let (ok, paid, stderr) = bulwark_cli(&[
        "withdraw", "--api", api, "--key", key, "--amount", "250.5", "--wait", "30",
    ]);
    assert!(ok, "{paid} {stderr}");
    assert_eq!(paid["outcome"]["result"], "applied", "{paid}");
    assert_eq!(paid["withdrawal"]["state"], "paid", "{paid}");
    let after = account("after");
    assert_eq!(
        micros(&after["withdrawn"]) - withdrawn_before,
        250_500_000,
        "{after}"
    );
    assert!(after["withdrawal_pending"].is_null(), "{after}");

    // More than the account may take: refused by the exchange, nothing leaves.
    let too_much = format!("{}", (available / 1_000_000) + 1_000);
    let (ok, refused, _) = bulwark_cli(&[
        "withdraw", "--api", api, "--key", key, "--amount", &too_much, "--wait", "30",
    ]);
    assert!(!ok, "an overdraft exits non-zero: {refused}");
    assert_eq!(refused["outcome"]["result"], "rejected", "{refused}");
    assert_eq!(refused["outcome"]["code"], 91, "{refused}");
    assert_eq!(account("refused")["withdrawn"], after["withdrawn"]);

    // Nothing held: the cancel is refused with the exchange's reason.
    let (ok, cancel, _) = bulwark_cli(&[
        "withdraw", "--api", api, "--key", key, "--cancel", "--wait", "30",
    ]);
    assert!(!ok, "{cancel}");
    assert_eq!(cancel["outcome"]["code"], 89, "{cancel}");

    // A key that owns no account is told so before anything is signed.
    let stranger = devnet.dir.join("stranger.key");
    let (ok, _, stderr) = bulwark_cli(&["keygen", "--out", stranger.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = bulwark_cli(&[
        "withdraw",
        "--api",
        api,
        "--key",
        stranger.to_str().unwrap(),
        "--amount",
        "1",
    ]);
    assert!(!ok);
    assert!(stderr.contains("knows no account"), "{stderr}");

    // The gateway shows the payment in Deribit's shape to an API key of the account, and
    // refuses that key's withdrawal (an agent's) before anything is signed.
    let owner = bulwark::keys::read_key(&devnet.demo_key(1)).unwrap();
    let created =
        bulwark::gateway_cli::create(&devnet.gateway, api, &owner, Duration::from_secs(60))
            .unwrap();
    let client = Client {
        base: devnet.gateway.clone(),
        id: created.client_id,
        secret: created.client_secret,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let withdrawals = loop {
        let withdrawals = client.ok("get_withdrawals", "currency=USDC");
        if withdrawals["count"] == 1 || Instant::now() > deadline {
            break withdrawals;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(withdrawals["count"], 1, "{withdrawals}");
    let shown = &withdrawals["data"][0];
    assert_eq!(shown["state"], "completed", "{withdrawals}");
    assert_eq!(shown["amount"], 250.5, "{withdrawals}");
    assert_eq!(shown["currency"], "USDC", "{withdrawals}");
    let deposits = client.ok("get_deposits", "currency=USDC&count=5");
    assert!(deposits["count"].as_u64() >= Some(1), "{deposits}");
    assert_eq!(deposits["data"][0]["state"], "completed", "{deposits}");
    assert_eq!(client.ok("get_withdrawals", "currency=BTC")["count"], 0);
    assert_eq!(client.code("get_withdrawals", ""), -32602);
    assert_eq!(
        client.code("withdraw", "currency=USDC&address=x&amount=1"),
        13021
    );
    assert_eq!(
        client.code("cancel_withdrawal", "currency=USDC&id=1"),
        13021
    );
    assert_eq!(
        account("after the gateway")["withdrawn"],
        after["withdrawn"]
    );

    // Bad amounts never reach the network.
    for amount in ["0", "-5", "1.0000001", "abc"] {
        let (ok, _, stderr) =
            bulwark_cli(&["withdraw", "--api", api, "--key", key, "--amount", amount]);
        assert!(!ok, "{amount}: {stderr}");
    }
}
