//! A cluster of `bulwark node` operating-system processes on 127.0.0.1, for the soak and the
//! multi-process tests.
//!
//! Owns: the cluster's directory (configs, keys, data directories, one log per validator), the
//! child processes (spawned, killed with SIGKILL, restarted on the same data directory, and
//! killed when the cluster is dropped), and the setup of a listing and deposits by the
//! validators' custody attestations.
//! Never: asserts or panics on what a validator answers (every failure is an `Err` naming it);
//! removes a directory it did not create; waits without a deadline.

use crate::client;
use crate::config::{self, GenesisFile, NodeFile, ValidatorEntry};
use crate::genesis;
use crate::keys;
use crate::validator::{P2pPreset, PriceSettings};
use anyhow::{Context, Result, bail, ensure};
use bulwark_types::{Money, PrivateKey, SignedTx};
use commonware_codec::Encode;
use commonware_cryptography::Signer;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Validators in a process cluster: n = 3f + 1 with f = 1.
pub const VALIDATORS: usize = 4;

/// Ports the kernel hands out now; free until someone binds them (the nodes bind soon after).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .context("binding a free port")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// How to start a process cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Directory for configs, keys, data and logs; created, and removed on drop if `remove`.
    pub dir: PathBuf,
    /// The `bulwark` executable to run as `bulwark node --config ...`.
    pub executable: PathBuf,
    /// Minimum time between blocks, in milliseconds.
    pub block_interval_ms: u64,
    /// Remove `dir` when the cluster is dropped (not while panicking, to keep the logs).
    pub remove: bool,
}

/// Four `bulwark node` processes on 127.0.0.1 over authenticated TCP (`P2pPreset::Local`).
pub struct ProcessCluster {
    config: ClusterConfig,
    node_configs: Vec<PathBuf>,
    /// Each validator's API base URL.
    pub apis: Vec<String>,
    /// Each validator's p2p address.
    pub p2p: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
    /// The validators' keys: custodians by default, 3 of 4 deposit and list.
    pub signers: Vec<PrivateKey>,
}

impl ProcessCluster {
    /// Writes a fresh cluster's keys and configs under `config.dir` and starts every validator.
    pub fn start(config: ClusterConfig) -> Result<Self> {
        let dir = &config.dir;
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ports = free_ports(2 * VALIDATORS)?;
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
        let now_ms = crate::devnet::now_ms();
        let namespace = format!("bulwark-cluster-{}-{now_ms}", std::process::id());
        let mut node_configs = Vec::new();
        for (i, signer) in signers.iter().enumerate() {
            let key_file = PathBuf::from(format!("validator-{i}.key"));
            keys::write_key(&dir.join(&key_file), signer)?;
            let file = NodeFile {
                namespace: namespace.clone(),
                key_file,
                data_dir: PathBuf::from(format!("data-{i}")),
                api_listen: api[i],
                p2p_listen: None,
                block_interval_ms: Some(config.block_interval_ms),
                api_connections_per_client_max: None,
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
            config::write(&path, &file)?;
            node_configs.push(path);
        }
        let apis = api.iter().map(|a| format!("http://{a}")).collect();
        let mut cluster = ProcessCluster {
            config,
            node_configs,
            apis,
            p2p,
            children: Vec::new(),
            signers,
        };
        for i in 0..VALIDATORS {
            let child = cluster.spawn(i)?;
            cluster.children.push(Some(child));
        }
        Ok(cluster)
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    fn spawn(&self, i: usize) -> Result<Child> {
        let log_path = self.config.dir.join(format!("validator-{i}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        Command::new(&self.config.executable)
            .args(["node", "--config"])
            .arg(&self.node_configs[i])
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.config.executable.display()))
    }

    /// Whether validator `i`'s process is running (as far as this cluster started it).
    pub fn running(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// Kills validator `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let mut child = self.children[i]
            .take()
            .with_context(|| format!("validator {i} is not running"))?;
        child.kill().context("SIGKILL")?; // SIGKILL on Unix
        child.wait().context("reaping a killed validator")?;
        Ok(())
    }

    /// Starts validator `i` again on its data directory.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        ensure!(self.children[i].is_none(), "validator {i} is running");
        self.children[i] = Some(self.spawn(i)?);
        Ok(())
    }

    /// Validator `i`'s `/status`, if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        client::request(&self.apis[i], "GET", "/status", None)
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    }

    /// Validator `i`'s finalized height and state digest, if it answers.
    pub fn finalized(&self, i: usize) -> Option<(u64, String)> {
        let status = self.status(i)?;
        Some((
            status["finalized_height"].as_u64()?,
            status["state_digest"].as_str()?.to_string(),
        ))
    }

    /// Validator `i`'s finalized height; 0 if it does not answer.
    pub fn height(&self, i: usize) -> u64 {
        self.finalized(i).map_or(0, |(h, _)| h)
    }

    /// Every validator's finalized height (0 for one that does not answer).
    pub fn heights(&self) -> Vec<u64> {
        (0..VALIDATORS).map(|i| self.height(i)).collect()
    }

    /// Waits until `done` holds, polling every 50 ms; an error after `limit`.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + limit;
        while !done(self) {
            if Instant::now() > deadline {
                bail!(
                    "timed out after {limit:?} waiting for {what}; heights {:?}; logs in {}",
                    self.heights(),
                    self.config.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// The last `lines` lines of every validator's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for i in 0..VALIDATORS {
            let log = std::fs::read_to_string(self.config.dir.join(format!("validator-{i}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(lines).collect();
            out.push_str(&format!("---- validator {i} log (last lines) ----\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Posts `txs` to validator `i`'s `POST /txs`; the answer, if any.
    pub fn submit(&self, i: usize, txs: &[SignedTx]) -> Option<Value> {
        submit(&self.apis[i], txs)
    }

    /// Lists the perpetual and funds `traders` with 1,000,000 USDC each, attested by three of
    /// the four validators (the default custody); waits until validator 0 executed all of it.
    pub fn setup(&self, traders: &[PrivateKey], limit: Duration) -> Result<()> {
        let setup = genesis::Setup {
            listings: vec![genesis::perpetual_spec()],
            deposits: traders
                .iter()
                .map(|t| (t.public_key(), Money::from_usdc(1_000_000)))
                .collect(),
            insurance: None,
        };
        let operators = genesis::Custodians {
            keys: self.signers.clone(),
            threshold: 3,
        };
        let answer = self
            .submit(0, &setup.txs(&operators))
            .context("validator 0's API does not answer")?;
        let all_pending = answer["results"]
            .as_array()
            .is_some_and(|r| r.iter().all(|x| x["status"] == "pending"));
        ensure!(all_pending, "setup refused: {answer}");
        let last = setup.last_nonces(&operators);
        self.wait_for("setup to execute", limit, |c| {
            last.iter().all(|(key, nonce)| {
                let key = keys::public_hex(key);
                client::get_ok(&c.apis[0], &format!("/account/{key}"))
                    .is_ok_and(|a| a["nonce_last"].as_u64() == Some(*nonce))
            })
        })
    }
}

/// Posts `txs` to `api`'s `POST /txs`; the answer, if any.
pub fn submit(api: &str, txs: &[SignedTx]) -> Option<Value> {
    let body = json!({ "txs": txs.iter().map(|t| keys::hex(&t.encode())).collect::<Vec<_>>() });
    client::request(api, "POST", "/txs", Some(&body))
        .ok()
        .map(|r| r.body)
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.config.remove && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.config.dir);
        }
    }
}
