//! `bulwark node` as four operating-system processes on 127.0.0.1.
//!
//! - `sigkill_restart_and_agreement`: a short slice of `bulwark soak` (3 cycles): under a
//!   stream of signed orders, a random validator is killed with SIGKILL and restarted on its
//!   data directory, again and again; it rejoins each time, every transaction ever reported
//!   finalized is still reported by every validator with the same height, index and outcome,
//!   and reported state digests agree at common heights.
//! - `garbage_on_peer_and_api_ports_then_reads_while_stalled`: garbage, oversized frames and
//!   half-open connections hit one validator's p2p and API ports; it keeps finalizing with its
//!   peers. Then two validators die: without a quorum nothing finalizes, and the survivors'
//!   APIs still answer reads and admit transactions.
//!
//! Waits are on progress (heights reported by `/status`) with generous failsafe deadlines,
//! never on elapsed time alone; no performance is asserted.

use bulwark::client;
use bulwark::genesis;
use bulwark::keys;
use bulwark::process_cluster::{ClusterConfig, ProcessCluster, VALIDATORS};
use bulwark::soak::{self, SoakConfig};
use bulwark_types::Money;
use commonware_cryptography::Signer;
use serde_json::json;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn cluster_config(name: &str) -> ClusterConfig {
    ClusterConfig {
        dir: std::env::temp_dir().join(format!("bulwark-cluster-{name}-{}", std::process::id())),
        executable: env!("CARGO_BIN_EXE_bulwark").into(),
        block_interval_ms: 100,
        remove: true,
    }
}

/// Waits until `done` holds; on a timeout, prints the validators' logs and fails.
fn wait_for(
    cluster: &ProcessCluster,
    what: &str,
    limit: Duration,
    done: impl FnMut(&ProcessCluster) -> bool,
) {
    if let Err(error) = cluster.wait_for(what, limit, done) {
        eprintln!("{}", cluster.log_tails(30));
        panic!("{error:#}");
    }
}

#[test]
fn sigkill_restart_and_agreement() {
    let config = SoakConfig {
        cycles: 3,
        seed: 7,
        rate_per_s: 40,
        cluster: cluster_config("soak"),
        kill_wait_ms_min: 1_000,
        kill_wait_ms_max: 3_000,
        down_ms_max: 2_000,
    };
    let report = soak::run(&config, |r| eprintln!("cycle {}: {r:?}", r.cycles)).unwrap();
    eprint!("{}", report.summary());
    assert_eq!(report.cycles, 3);
    assert_eq!(
        report.rejoin_ms.len(),
        3,
        "every restarted validator rejoined"
    );
    assert!(report.admitted > 100, "the load was admitted");
    assert!(
        report.txs_checked > 50,
        "transactions finalized and were checked"
    );
    assert_eq!(report.lost, 0, "a finalized transaction was lost");
    assert!(report.heights_compared >= 10, "heights were compared");
    assert_eq!(report.disagreements, 0, "validators disagreed or halted");
}

fn garbage(addr: SocketAddr, bytes: &[u8]) {
    if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = stream.write_all(bytes);
    }
}

#[test]
fn garbage_on_peer_and_api_ports_then_reads_while_stalled() {
    let mut cluster = ProcessCluster::start(cluster_config("garbage")).unwrap();
    wait_for(
        &cluster,
        "all four to finalize",
        Duration::from_secs(60),
        |c| (0..VALIDATORS).all(|i| c.height(i) >= 3),
    );
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
    wait_for(
        &cluster,
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
    cluster.kill(2).unwrap();
    cluster.kill(3).unwrap();
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
    let operators = genesis::Custodians {
        keys: cluster.signers.clone(),
        threshold: 3,
    };
    let answer = cluster
        .submit(0, &setup.txs(&operators)[..1])
        .expect("API answers");
    assert_eq!(answer["results"][0]["status"], "pending", "{answer}");
}
