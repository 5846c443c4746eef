//! `bulwark node` as four operating-system processes on 127.0.0.1.
//!
//! - `sigkill_restart_and_agreement`: under a stream of signed orders, one validator is killed
//!   with SIGKILL; the other three keep finalizing; the killed one restarts on its data
//!   directory and catches up; all four report the same state digest at the same heights.
//! - `garbage_on_peer_and_api_ports_then_reads_while_stalled`: garbage, oversized frames and
//!   half-open connections hit one validator's p2p and API ports; it keeps finalizing with its
//!   peers. Then two validators die: without a quorum nothing finalizes, and the survivors'
//!   APIs still answer reads and admit transactions.
//!
//! Waits are on progress (heights reported by `/status`) with generous failsafe deadlines,
//! never on elapsed time alone; no performance is asserted.

use bulwark::client;
use bulwark::config::{self, GenesisFile, NodeFile, ValidatorEntry};
use bulwark::genesis;
use bulwark::keys;
use bulwark::validator::{P2pPreset, PriceSettings};
use bulwark_types::{
    ClientOrderId, InstrumentId, Money, OrderRequest, PrivateKey, Qty, Side, SignedTx, TimeInForce,
    TxBody, UnitPrice,
};
use commonware_codec::Encode;
use commonware_cryptography::Signer;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const VALIDATORS: usize = 4;
const TRADERS: usize = 12;

/// Ports the kernel hands out now; free until someone binds them (tests bind soon after).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

struct Cluster {
    dir: PathBuf,
    configs: Vec<PathBuf>,
    apis: Vec<String>,
    p2p: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
    /// The validators' keys: custodians by default, 3 of 4 deposit and list.
    signers: Vec<PrivateKey>,
}

impl Cluster {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("bulwark-cluster-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ports = free_ports(2 * VALIDATORS);
        let p2p: Vec<SocketAddr> = ports[..VALIDATORS]
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect();
        let api: Vec<SocketAddr> = ports[VALIDATORS..]
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect();
        let signers: Vec<PrivateKey> = (0..VALIDATORS).map(|_| keys::generate()).collect();
        let (admin, bridge) = (keys::generate(), keys::generate());
        let validators: Vec<ValidatorEntry> = signers
            .iter()
            .zip(&p2p)
            .map(|(s, addr)| ValidatorEntry {
                public_key: keys::public_hex(&s.public_key()),
                address: *addr,
            })
            .collect();
        let now_ms = bulwark::devnet::now_ms();
        let mut configs = Vec::new();
        for (i, signer) in signers.iter().enumerate() {
            let key_file = PathBuf::from(format!("validator-{i}.key"));
            keys::write_key(&dir.join(&key_file), signer).unwrap();
            let file = NodeFile {
                namespace: format!("bulwark-test-{}", std::process::id()),
                key_file,
                data_dir: PathBuf::from(format!("data-{i}")),
                api_listen: api[i],
                p2p_listen: None,
                block_interval_ms: Some(100),
                // Four processes on 127.0.0.1: the production preset would refuse them.
                p2p_preset: Some(P2pPreset::Local),
                genesis: GenesisFile {
                    time_ms: now_ms - 1_000,
                    admin: keys::public_hex(&admin.public_key()),
                    bridge: keys::public_hex(&bridge.public_key()),
                    // The default: the validators, 2f + 1 of them, deposit and list.
                    custodians: None,
                    custody_threshold: None,
                },
                prices: PriceSettings {
                    seed: 3,
                    index_start_usdc: genesis::INDEX_START_USDC,
                    noise_bps: 2,
                },
                validators: validators.clone(),
            };
            let path = dir.join(format!("validator-{i}.toml"));
            config::write(&path, &file).unwrap();
            configs.push(path);
        }
        let apis = api.iter().map(|a| format!("http://{a}")).collect();
        let mut cluster = Cluster {
            dir,
            configs,
            apis,
            p2p,
            children: Vec::new(),
            signers,
        };
        for i in 0..VALIDATORS {
            let child = cluster.spawn(i);
            cluster.children.push(Some(child));
        }
        cluster
    }

    fn spawn(&self, i: usize) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("validator-{i}.log")))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["node", "--config"])
            .arg(&self.configs[i])
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("bulwark node starts")
    }

    fn kill(&mut self, i: usize) {
        let mut child = self.children[i].take().expect("running");
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
    }

    fn restart(&mut self, i: usize) {
        assert!(self.children[i].is_none(), "validator {i} is running");
        self.children[i] = Some(self.spawn(i));
    }

    fn status(&self, i: usize) -> Option<Value> {
        client::request(&self.apis[i], "GET", "/status", None)
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    }

    fn height(&self, i: usize) -> u64 {
        self.status(i)
            .and_then(|s| s["finalized_height"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until `done` holds, failing with the validators' logs after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            if Instant::now() > deadline {
                self.dump_logs();
                panic!(
                    "timed out waiting for {what}; heights {:?}",
                    (0..VALIDATORS).map(|i| self.height(i)).collect::<Vec<_>>()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn dump_logs(&self) {
        for i in 0..VALIDATORS {
            let log = std::fs::read_to_string(self.dir.join(format!("validator-{i}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("---- validator {i} log (last lines) ----");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }

    fn submit(&self, i: usize, txs: &[SignedTx]) -> Option<Value> {
        submit(&self.apis[i], txs)
    }
}

fn submit(api: &str, txs: &[SignedTx]) -> Option<Value> {
    let body = json!({ "txs": txs.iter().map(|t| keys::hex(&t.encode())).collect::<Vec<_>>() });
    client::request(api, "POST", "/txs", Some(&body))
        .ok()
        .map(|r| r.body)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Lists the perpetual and funds the traders, each attested by three of the four validators
/// (the default custody); waits until validator 0 executed both.
fn setup(cluster: &Cluster, traders: &[PrivateKey]) {
    let setup = genesis::Setup {
        listings: vec![genesis::perpetual_spec()],
        deposits: traders
            .iter()
            .map(|t| (t.public_key(), Money::from_usdc(1_000_000)))
            .collect(),
        insurance: None,
    };
    let operators = genesis::Operators::Custodians {
        keys: cluster.signers.clone(),
        threshold: 3,
    };
    let answer = cluster
        .submit(0, &setup.txs(&operators))
        .expect("API answers");
    assert!(
        answer["results"]
            .as_array()
            .is_some_and(|r| r.iter().all(|x| x["status"] == "pending")),
        "{answer}"
    );
    let last = setup.last_nonces(&operators);
    cluster.wait_for("setup to execute", Duration::from_secs(60), |c| {
        last.iter().all(|(key, nonce)| {
            let key = keys::public_hex(key);
            client::get_ok(&c.apis[0], &format!("/account/{key}"))
                .is_ok_and(|a| a["nonce_last"].as_u64() == Some(*nonce))
        })
    });
}

/// Sends limit orders near the mark from the traders (trader t to validator t % 3) until told
/// to stop; counts what the mempools admitted.
fn load(
    apis: Vec<String>,
    traders: Vec<PrivateKey>,
    stop: Arc<AtomicBool>,
    admitted: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut nonces = vec![0u64; traders.len()];
        let mut round: i64 = 0;
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            for (t, trader) in traders.iter().enumerate() {
                let side = if (round + t as i64) % 2 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                nonces[t] += 1;
                // Every fourth round crosses with immediate-or-cancel orders 50 ticks through
                // the starting index; the others rest 1 to 40 ticks behind it; every 40th
                // round clears the trader's orders (the open-order cap stays far off).
                let crossing = round % 4 == 0;
                let ticks = if crossing {
                    -50
                } else {
                    1 + (round * 7 + t as i64 * 13) % 40
                };
                let price = genesis::INDEX_START_USDC * 1_000_000 - ticks * 500_000 * side.sign();
                let order = if round % 40 == 0 {
                    TxBody::CancelAll { instrument: None }
                } else {
                    TxBody::PlaceOrder(OrderRequest::limit(
                        InstrumentId::new(0),
                        ClientOrderId::new(nonces[t]),
                        side,
                        Qty::from_contracts(1 + (round % 3)),
                        UnitPrice::from_micros(price),
                        if crossing {
                            TimeInForce::ImmediateOrCancel
                        } else {
                            TimeInForce::GoodTilCancelled
                        },
                    ))
                };
                let tx = genesis::sign(trader, nonces[t], order);
                if let Some(answer) = submit(&apis[t % 3], &[tx]) {
                    if answer["results"][0]["status"] == "pending" {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Polls every validator until some heights were seen by all; returns height -> digests.
fn digests_seen_by_all(cluster: &Cluster, limit: Duration) -> BTreeMap<u64, Vec<String>> {
    let mut seen: Vec<BTreeMap<u64, String>> = vec![BTreeMap::new(); VALIDATORS];
    let deadline = Instant::now() + limit;
    loop {
        for (i, map) in seen.iter_mut().enumerate() {
            if let Some(status) = cluster.status(i) {
                if let (Some(h), Some(d)) = (
                    status["finalized_height"].as_u64(),
                    status["state_digest"].as_str(),
                ) {
                    map.insert(h, d.to_string());
                }
            }
        }
        let common: BTreeMap<u64, Vec<String>> = seen[0]
            .keys()
            .filter(|h| seen.iter().all(|m| m.contains_key(h)))
            .map(|h| (*h, seen.iter().map(|m| m[h].clone()).collect()))
            .collect();
        if common.len() >= 3 || Instant::now() > deadline {
            return common;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sigkill_restart_and_agreement() {
    let mut cluster = Cluster::new("restart");
    cluster.wait_for("all four to finalize", Duration::from_secs(60), |c| {
        (0..VALIDATORS).all(|i| c.height(i) >= 3)
    });
    let traders: Vec<PrivateKey> = (0..TRADERS).map(|_| keys::generate()).collect();
    setup(&cluster, &traders);

    let (stop, admitted) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let loader = load(
        cluster.apis.clone(),
        traders,
        stop.clone(),
        admitted.clone(),
    );
    let start = cluster.height(0);
    cluster.wait_for("load to finalize", Duration::from_secs(60), |c| {
        c.height(0) >= start + 20
    });

    // SIGKILL validator 3 under load; the other three keep finalizing.
    let killed_at = cluster.height(0);
    cluster.kill(3);
    cluster.wait_for(
        "three to finalize without the fourth",
        Duration::from_secs(60),
        |c| (0..3).all(|i| c.height(i) >= killed_at + 30),
    );

    // Restart it on the same data directory: it catches up with the others.
    let before_restart = cluster.height(0);
    cluster.restart(3);
    cluster.wait_for(
        "the restarted validator to catch up",
        Duration::from_secs(90),
        |c| c.height(3) >= before_restart + 10,
    );

    stop.store(true, Ordering::Relaxed);
    loader.join().unwrap();
    assert!(
        admitted.load(Ordering::Relaxed) > 100,
        "the load was admitted"
    );

    let common = digests_seen_by_all(&cluster, Duration::from_secs(30));
    assert!(
        !common.is_empty(),
        "no height was observed on all four validators"
    );
    for (height, digests) in &common {
        assert!(
            digests.iter().all(|d| d == &digests[0]),
            "validators disagree at height {height}: {digests:?}"
        );
    }
    let trades: u64 = cluster
        .status(0)
        .and_then(|s| s["trades_executed"].as_u64())
        .unwrap_or(0);
    assert!(trades > 0, "the load traded");
    eprintln!(
        "agreed at heights {:?}; {} orders admitted; validator 0 executed {trades} trades",
        common.keys().collect::<Vec<_>>(),
        admitted.load(Ordering::Relaxed)
    );
}

fn garbage(addr: SocketAddr, bytes: &[u8]) {
    if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = stream.write_all(bytes);
    }
}

#[test]
fn garbage_on_peer_and_api_ports_then_reads_while_stalled() {
    let mut cluster = Cluster::new("garbage");
    cluster.wait_for("all four to finalize", Duration::from_secs(60), |c| {
        (0..VALIDATORS).all(|i| c.height(i) >= 3)
    });
    let target = cluster.p2p[1];
    let api: SocketAddr = cluster.apis[1]
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let before = cluster.height(1);
    let mut frames: Vec<Vec<u8>> = vec![
        b"\x00\x00\x00\x05hello".to_vec(),
        vec![0xff; 4],
        [&[0xff, 0xff, 0xff, 0x7f][..], &[0xab; 4_096]].concat(),
        vec![0x41; 3 << 20],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    ];
    frames.extend((0..20u8).map(|i| (0..512).map(|j| (i as usize * 31 + j * 7) as u8).collect()));
    for frame in &frames {
        garbage(target, frame);
        garbage(api, frame);
    }
    // Half-open connections that never finish a handshake.
    let idle: Vec<_> = (0..64)
        .filter_map(|_| TcpStream::connect(target).ok())
        .collect();
    cluster.wait_for(
        "the attacked validator to keep finalizing",
        Duration::from_secs(60),
        |c| c.height(1) >= before + 30,
    );
    drop(idle);
    let status = cluster.status(1).expect("API still answers");
    assert_eq!(status["mode"], "running");
    assert!(
        status["peers_connected"].as_u64().is_some_and(|p| p >= 2),
        "{status}"
    );
    let response =
        client::request(&cluster.apis[1], "POST", "/tx", Some(&json!({"tx": "zz"}))).unwrap();
    assert_eq!(
        (response.status, response.body["code"].as_str()),
        (400, Some("encoding_invalid"))
    );

    // Two of four down: no quorum, consensus stalls; the survivors' APIs keep answering reads
    // and keep taking transactions into their mempools.
    cluster.kill(2);
    cluster.kill(3);
    for i in 0..2 {
        let status = cluster.status(i).expect("status answers while stalled");
        assert_eq!(status["mode"], "running", "{status}");
        assert!(client::get_ok(&cluster.apis[i], "/instruments").is_ok());
        assert!(client::get_ok(&cluster.apis[i], "/prices").is_ok());
    }
    let setup = genesis::Setup {
        deposits: vec![(keys::generate().public_key(), Money::from_usdc(1))],
        ..genesis::Setup::default()
    };
    let operators = genesis::Operators::Custodians {
        keys: cluster.signers.clone(),
        threshold: 3,
    };
    let answer = cluster
        .submit(0, &setup.txs(&operators)[..1])
        .expect("API answers");
    assert_eq!(answer["results"][0]["status"], "pending", "{answer}");
}
