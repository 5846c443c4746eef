//! `bulwark withdraw` against a running `bulwark devnet`: money leaves only with the owner's
//! key and only what the account has; a held withdrawal's release is followed to its end; a
//! cancel with nothing held, a key with no account and an amount beyond the available funds
//! are refused with the exchange's reason and a non-zero exit.

mod common;

use common::devnet::Devnet;
use serde_json::Value;

/// Runs `bulwark ARGS`: (exit status success, stdout as JSON or as a string, stderr).
fn bulwark_cli(args: &[&str]) -> (bool, Value, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(args)
        .output()
        .expect("bulwark runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout.clone()));
    (
        output.status.success(),
        json,
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// A decimal USDC string of the API (`"12.500000"`) as micro-USDC.
fn micros(text: &Value) -> i128 {
    let text = text.as_str().unwrap_or_else(|| panic!("a decimal: {text}"));
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let whole: i128 = whole.parse().unwrap();
    let frac: i128 = format!("{frac:0<6}").parse().unwrap();
    whole * 1_000_000 + whole.signum() * frac
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

    // Bad amounts never reach the network.
    for amount in ["0", "-5", "1.0000001", "abc"] {
        let (ok, _, stderr) =
            bulwark_cli(&["withdraw", "--api", api, "--key", key, "--amount", amount]);
        assert!(!ok, "{amount}: {stderr}");
    }
}
