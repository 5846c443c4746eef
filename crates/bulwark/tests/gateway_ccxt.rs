//! The CCXT Deribit client itself (Python, `ccxt==4.5.90`) against a devnet's gateway: loads
//! markets, reads tickers and books, places, edits, cancels and fills orders, reads balance
//! and positions, deposits and withdrawals (`crates/bulwark-gateway/tests/ccxt/test_ccxt.py`);
//! then ccxt.pro (bundled in the same package) over the WebSocket: tickers, order books, trades, and the user's orders,
//! trades and balance after its own `public/auth` (`test_ccxt_pro.py`).
//! Last, a short run of the latency measurement users run (`latency.py`, five orders placed
//! and cancelled), so that tool keeps working; its figures are not judged here.
//!
//! The virtual environment lives in `<target dir>/ccxt-venv` (`.ci/run` creates it before the
//! tests); if it is missing this test creates it with `python3 -m venv` and installs
//! `requirements.txt` from PyPI. Without Python the test fails and says so.

mod common;

use common::devnet::Devnet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The target directory this test binary was built in (`<target>/debug/deps/<binary>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("the binary sits in <target>/<profile>/deps")
        .to_path_buf()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's Python, created and filled if missing.
fn venv_python() -> PathBuf {
    let venv = target_dir().join("ccxt-venv");
    let python = venv.join("bin").join("python");
    let requirements = repo().join("crates/bulwark-gateway/tests/ccxt/requirements.txt");
    let ready = Command::new(&python)
        .args([
            "-c",
            "import ccxt, sys; sys.exit(0 if ccxt.__version__ == '4.5.90' else 1)",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if ready {
        return python;
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status();
    match created {
        Err(error) => panic!(
            "the CCXT test needs Python 3 (python3 with the venv module) on PATH: {error}; \
             install it (apt-get install python3 python3-venv) or run .ci/run"
        ),
        Ok(status) => assert!(
            status.success(),
            "python3 -m venv {} failed",
            venv.display()
        ),
    }
    let installed = Command::new(venv.join("bin").join("pip"))
        .args(["install", "-q", "-r"])
        .arg(&requirements)
        .status()
        .expect("pip runs");
    assert!(
        installed.success(),
        "pip install -r {} failed (is PyPI reachable?)",
        requirements.display()
    );
    python
}

#[test]
fn ccxt_deribit_client_trades_on_the_gateway() {
    let python = venv_python();
    let devnet = Devnet::start("gateway-ccxt");
    let api = devnet.apis[0].clone();
    let key = |i| bulwark::keys::read_key(&devnet.demo_key(i)).unwrap();
    let wait = Duration::from_secs(60);
    let a = bulwark::gateway_cli::create(&devnet.gateway, &api, &key(0), wait).unwrap();
    let b = bulwark::gateway_cli::create(&devnet.gateway, &api, &key(1), wait).unwrap();
    // The REST client, then ccxt.pro's WebSocket client on the same devnet and keys, then a
    // short run of the latency measurement (as key B), each with what its output must hold.
    let scripts: [(&str, &[&str], &[&str]); 3] = [
        ("test_ccxt.py", &[], &["ccxt ok"]),
        ("test_ccxt_pro.py", &[], &["ccxt.pro ok"]),
        ("latency.py", &["5"], &["place: n=5 ", "cancel: n=5 "]),
    ];
    for (script, args, expected) in scripts {
        let output = Command::new(&python)
            .arg(
                repo()
                    .join("crates/bulwark-gateway/tests/ccxt")
                    .join(script),
            )
            .args(args)
            .env("BULWARK_GATEWAY", &devnet.gateway)
            .env("KEY_A_ID", &a.client_id)
            .env("KEY_A_SECRET", &a.client_secret)
            .env("KEY_B_ID", &b.client_id)
            .env("KEY_B_SECRET", &b.client_secret)
            .env("KEY_ID", &b.client_id)
            .env("KEY_SECRET", &b.client_secret)
            .output()
            .expect("the CCXT script runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && expected.iter().all(|e| stdout.contains(e)),
            "{script} failed:\n{stdout}\n{stderr}"
        );
    }
}
