//! The gateway's own front door under one client that opens every connection it allows: the
//! per-client bound (`GatewayConfig::connections_per_client_max`, the same
//! `ConnectionSlots` the validator's API uses) keeps another client served.

use bulwark_exchange::{ExchangeParams, Genesis};
use bulwark_gateway::follower::FollowerConfig;
use bulwark_gateway::gateway::GatewayConfig;
use bulwark_gateway::run::{self, GatewaySetup};
use bulwark_types::{BlockLimits, BlockTime, PrivateKey};
use commonware_cryptography::Signer as _;
use commonware_utils::ordered::Set;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const CONNECTIONS_MAX: usize = 16;
const PER_CLIENT_MAX: usize = 4;

async fn start(per_client_max: usize) -> (run::RunningGateway, std::path::PathBuf) {
    let data_dir = std::env::temp_dir().join(format!(
        "bulwark-gateway-connections-{}-{per_client_max}",
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

/// `GET /api/v2/public/test` on `stream`: the answer's status, or 0 if the gateway closed the
/// connection without one.
async fn public_test(mut stream: TcpStream) -> u16 {
    let request = b"GET /api/v2/public/test HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n";
    // A connection closed on accept may refuse the write; its answer is then empty.
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    // Bounded: a gateway that kept the connection open would fail the test, not hang it.
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response));
    match read.await {
        Ok(_) => {}
        Err(_) => panic!("the gateway neither answered nor closed the connection"),
    }
    let text = String::from_utf8_lossy(&response);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
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
