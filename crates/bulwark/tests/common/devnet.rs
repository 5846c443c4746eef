//! A `bulwark devnet` process (4 validators and a gateway, no bots) on free ports, and a
//! minimal Deribit client signing with `deri-hmac-sha256`.

#![allow(dead_code)]

use bulwark_gateway::deribit::auth;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

static PORT_RUNS: AtomicU64 = AtomicU64::new(0);

/// `count` consecutive free ports from a pseudo-random base (distinct per call within a
/// process, so tests running in parallel do not pick the same run).
fn free_run(count: u16, salt: u64) -> u16 {
    let salt = salt + 1_000 * PORT_RUNS.fetch_add(1, Ordering::SeqCst);
    for attempt in 0..200u64 {
        let seed = (std::process::id() as u64)
            .wrapping_mul(7_919)
            .wrapping_add(salt * 1_000_003 + attempt * 104_729);
        // Below the ephemeral range (32768+), where outgoing connections take ports.
        // In slots of 10 ports: runs of at most 10 in different slots never overlap.
        assert!(count <= 10);
        let base = 20_000 + 10 * (seed % 1_200) as u16;
        let free = (0..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free port run");
}

pub struct Devnet {
    pub dir: PathBuf,
    pub gateway: String,
    pub apis: Vec<String>,
    child: Child,
}

impl Devnet {
    /// Starts a devnet and waits until its gateway follows a few blocks.
    pub fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("bulwark-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p2p = free_run(4, 1);
        let api = free_run(5, 2);
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args([
                "devnet",
                "--dir",
                dir.to_str().unwrap(),
                "--no-bots",
                "--seconds",
                "900",
                "--p2p-port",
                &p2p.to_string(),
                "--api-port",
                &api.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(
                    std::env::temp_dir().join(format!("bulwark-{name}-{}.log", std::process::id())),
                )
                .map_or_else(|_| Stdio::null(), Stdio::from),
            )
            .spawn()
            .expect("bulwark devnet starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut gateway = None;
        let mut apis = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while gateway.is_none() && Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(at) = line.find("gateway (Deribit") {
                gateway = line[at..].split_whitespace().last().map(str::to_string);
            }
            if line.trim_start().starts_with("validator ")
                && let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://"))
            {
                apis.push(url.to_string());
            }
        }
        // Keep draining stdout so the devnet never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let gateway = gateway.expect("the devnet prints its gateway URL");
        let devnet = Self {
            dir,
            gateway,
            apis,
            child,
        };
        devnet.wait_height(5, Duration::from_secs(120));
        devnet
    }

    pub fn height(&self) -> u64 {
        let (_, body) = http(&self.gateway, "GET", "/gateway/v1/status", &[], b"");
        body["height"].as_u64().unwrap_or(0)
    }

    pub fn wait_height(&self, height: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.height() < height {
            assert!(
                Instant::now() < deadline,
                "the gateway did not reach height {height}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A node configuration of this devnet's network (for `bulwark gateway --genesis`): the
    /// namespace, genesis and validators the devnet pinned; key file and data dir unused.
    pub fn node_config(&self) -> PathBuf {
        use commonware_cryptography::Signer as _;
        let pinned = std::fs::read_to_string(self.dir.join("devnet.toml")).unwrap();
        let field = |name: &str| -> u64 {
            pinned
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} = ")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} in devnet.toml"))
        };
        let public = |file: &str| {
            let key = bulwark::keys::read_key(&self.dir.join("keys").join(file)).unwrap();
            bulwark::keys::public_hex(&key.public_key())
        };
        let mut text = format!(
            "namespace = \"bulwark-devnet-{}\"\nkey_file = \"unused.key\"\ndata_dir = \"unused\"\n\
             api_listen = \"127.0.0.1:1\"\n\n[genesis]\ntime_ms = {}\nadmin = \"{}\"\nbridge = \"{}\"\n\n\
             [prices]\nseed = 1\nindex_start_usdc = 100000\nnoise_bps = 2\n",
            field("seed"),
            field("genesis_time_ms"),
            public("admin.key"),
            public("bridge.key"),
        );
        let p2p = field("p2p_port");
        for i in 0..field("validators") {
            text.push_str(&format!(
                "\n[[validators]]\npublic_key = \"{}\"\naddress = \"127.0.0.1:{}\"\n",
                public(&format!("validator-{i}.key")),
                p2p + i
            ));
        }
        let path = self.dir.join("node.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn demo_key(&self, i: usize) -> PathBuf {
        self.dir.join("keys").join(format!("demo-{i}.key"))
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        // The devnet's log, kept only while it runs (a failing test shows what it needs).
        let _ = std::fs::remove_file(self.dir.with_extension("log"));
    }
}

/// One HTTP/1.1 request with `Connection: close`: (status, body text); status 0 when nothing
/// listens.
fn request(
    base: &str,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let host = base.trim_start_matches("http://");
    let Ok(mut stream) = TcpStream::connect(host) else {
        return (0, String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// One HTTP/1.1 request with `Connection: close`: (status, JSON body or Null); status 0 when
/// nothing listens.
pub fn http(
    base: &str,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value) {
    let (status, text) = request(base, method, target, headers, body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A GET answered as text (pages, charts): (status, body).
pub fn http_text(base: &str, target: &str) -> (u16, String) {
    request(base, "GET", target, &[], b"")
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A Deribit client of one API key.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub id: String,
    pub secret: String,
}

impl Client {
    /// The `Authorization` header for a request.
    pub fn header(&self, method: &str, target: &str, body: &[u8], ts: u64) -> String {
        let nonce = format!("{ts}-{}", NONCE.fetch_add(1, Ordering::SeqCst));
        let sig = auth::sign(
            &self.secret,
            &auth::signed_string(ts, &nonce, method, target, body),
        );
        format!(
            "deri-hmac-sha256 id={},ts={ts},sig={sig},nonce={nonce}",
            self.id
        )
    }

    /// A signed private GET: (HTTP status, whole envelope).
    pub fn get(&self, method: &str, query: &str) -> (u16, Value) {
        let target = if query.is_empty() {
            format!("/api/v2/private/{method}")
        } else {
            format!("/api/v2/private/{method}?{query}")
        };
        let header = self.header("GET", &target, b"", now_ms());
        http(
            &self.base,
            "GET",
            &target,
            &[("Authorization", header)],
            b"",
        )
    }

    /// The `result` of a signed private GET; panics on an error.
    pub fn ok(&self, method: &str, query: &str) -> Value {
        let (status, body) = self.get(method, query);
        assert_eq!(status, 200, "{method}?{query}: {body}");
        body["result"].clone()
    }

    /// The error code of a signed private GET; panics on success.
    pub fn code(&self, method: &str, query: &str) -> i64 {
        let (status, body) = self.get(method, query);
        assert_eq!(status, 400, "{method}?{query} should fail: {body}");
        body["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("integer code in {body}"))
    }
}

/// A public GET's envelope.
pub fn public(base: &str, method: &str, query: &str) -> (u16, Value) {
    let target = if query.is_empty() {
        format!("/api/v2/public/{method}")
    } else {
        format!("/api/v2/public/{method}?{query}")
    };
    http(base, "GET", &target, &[], b"")
}

/// Runs `bulwark ARGS` and returns its stdout parsed as JSON (or the text as a string).
pub fn bulwark_cli(args: &[&str]) -> (bool, Value, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(args)
        .env_remove("BULWARK_API_KEY")
        .env_remove("BULWARK_API_SECRET")
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
