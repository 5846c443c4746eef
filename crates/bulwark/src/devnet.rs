//! `bulwark devnet`: a local network of validators in one process on 127.0.0.1, a market, and
//! bots that trade on it.
//!
//! Owns: the devnet directory (`devnet.toml` pins the seed, validator count, genesis time and
//! ports, so a restart resumes the same chain; `keys/` holds the derived keys; `data/` the
//! validators' storage), the setup transactions (listings and deposits, submitted as ordinary
//! signed transactions at every start: their fixed nonces make repeats harmless), the bots,
//! and the progress line.
//! Never: stops without asking the runtime to stop first (Ctrl-C signals every task, waits for
//! them, then exits); a storage write interrupted anyway is recovered on restart, as after a
//! crash.

use crate::bots::{Bot, Strategy};
use crate::genesis;
use crate::keys::{self, DevnetKey};
use crate::validator::{self, NodeSettings, PriceSettings, RunningValidator, ValidatorSetup};
use anyhow::{Context as _, Result, bail, ensure};
use bulwark_node::shared::{Shared, lock};
use bulwark_types::{Money, PrivateKey, PublicKey};
use commonware_cryptography::Signer;
use commonware_runtime::{Clock as _, Runner as _, Spawner as _, Supervisor as _, tokio};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Demo accounts for people, funded with 1,000,000 USDC each.
pub const DEMO_ACCOUNTS: u64 = 4;
const DEMO_FUNDS_USDC: i64 = 1_000_000;
/// Three makers: a smile needs the quotes of three distinct accounts (`accounts_min`).
const MAKERS: u64 = 3;
const TAKERS: u64 = 2;

/// What `devnet.toml` pins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetFile {
    pub seed: u64,
    pub validators: usize,
    pub genesis_time_ms: u64,
    pub p2p_port: u16,
    pub api_port: u16,
}

/// `bulwark devnet`'s options.
#[derive(Clone, Debug)]
pub struct DevnetOptions {
    pub dir: PathBuf,
    pub validators: usize,
    pub seed: u64,
    pub p2p_port: u16,
    pub api_port: u16,
    pub bots: bool,
    /// Start a gateway beside the validators.
    pub gateway: bool,
    /// Stop by itself after this long (for scripts); `None` runs until Ctrl-C.
    pub duration: Option<Duration>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Loads `devnet.toml`, or pins a new devnet there.
fn pin(options: &DevnetOptions) -> Result<DevnetFile> {
    let path = options.dir.join("devnet.toml");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let pinned: DevnetFile =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        if pinned.seed != options.seed || pinned.validators != options.validators {
            bail!(
                "{} holds a devnet with seed {} and {} validators; run with --seed {} --validators {}, or use another --dir",
                options.dir.display(),
                pinned.seed,
                pinned.validators,
                pinned.seed,
                pinned.validators
            );
        }
        return Ok(pinned);
    }
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("creating {}", options.dir.display()))?;
    // Whole seconds, so the genesis date (and so the option strip) reads plainly.
    let pinned = DevnetFile {
        seed: options.seed,
        validators: options.validators,
        genesis_time_ms: now_ms() / 1_000 * 1_000,
        p2p_port: options.p2p_port,
        api_port: options.api_port,
    };
    std::fs::write(&path, toml::to_string(&pinned)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(pinned)
}

fn local(port: u16, offset: usize) -> Result<SocketAddr> {
    let port = port
        .checked_add(u16::try_from(offset)?)
        .context("port out of range")?;
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// Writes the devnet's keys under `dir/keys` and returns the demo key paths.
fn write_keys(dir: &Path, pinned: &DevnetFile) -> Result<Vec<PathBuf>> {
    let keys_dir = dir.join("keys");
    for i in 0..pinned.validators as u64 {
        keys::write_key(
            &keys_dir.join(format!("validator-{i}.key")),
            &keys::devnet_key(pinned.seed, DevnetKey::Validator(i)),
        )?;
    }
    keys::write_key(
        &keys_dir.join("admin.key"),
        &keys::devnet_key(pinned.seed, DevnetKey::Admin),
    )?;
    keys::write_key(
        &keys_dir.join("bridge.key"),
        &keys::devnet_key(pinned.seed, DevnetKey::Bridge),
    )?;
    let mut demo = Vec::new();
    for i in 0..DEMO_ACCOUNTS {
        let path = keys_dir.join(format!("demo-{i}.key"));
        keys::write_key(&path, &keys::devnet_key(pinned.seed, DevnetKey::Demo(i)))?;
        demo.push(path);
    }
    Ok(demo)
}

/// The validators' setups.
pub fn setups(pinned: &DevnetFile, settings: NodeSettings) -> Result<Vec<ValidatorSetup>> {
    let admin = keys::devnet_key(pinned.seed, DevnetKey::Admin).public_key();
    let bridge = keys::devnet_key(pinned.seed, DevnetKey::Bridge).public_key();
    let signers: Vec<_> = (0..pinned.validators as u64)
        .map(|i| keys::devnet_key(pinned.seed, DevnetKey::Validator(i)))
        .collect();
    let validators: Vec<PublicKey> = signers.iter().map(|s| s.public_key()).collect();
    // The validators observe prices for the oracle and, 2f + 1 of them, attest every deposit
    // and listing: no single key mints or lists.
    let genesis = genesis::genesis_with_custody(
        &admin,
        &bridge,
        pinned.genesis_time_ms,
        Some(validators.clone()),
        Some(genesis::validator_custody(validators)),
    );
    let peers: Vec<(PublicKey, SocketAddr)> = signers
        .iter()
        .enumerate()
        .map(|(i, s)| Ok((s.public_key(), local(pinned.p2p_port, i)?)))
        .collect::<Result<_>>()?;
    let prices = PriceSettings {
        seed: pinned.seed,
        index_start_usdc: genesis::INDEX_START_USDC,
        noise_bps: 2,
    };
    signers
        .into_iter()
        .enumerate()
        .map(|(i, signer)| {
            Ok(ValidatorSetup {
                signer,
                peers: peers.clone(),
                p2p_listen: peers[i].1,
                api_listen: local(pinned.api_port, i)?,
                namespace: format!("bulwark-devnet-{}", pinned.seed),
                genesis: genesis.clone(),
                prices,
                partition_prefix: format!("validator-{i}"),
                settings,
                state_sync: false,
                p2p_preset: crate::validator::P2pPreset::Local,
            })
        })
        .collect()
}

/// What the devnet's insurance fund starts with.
pub const INSURANCE_FUND_USDC: i64 = 1_000_000;

/// Who puts money and instruments into a devnet of `validators` validators: 2f + 1 of the
/// validators, by attestation (the genesis of [`setups`]).
pub fn operators(seed: u64, validators: usize) -> genesis::Custodians {
    let keys: Vec<PrivateKey> = (0..validators as u64)
        .map(|i| keys::devnet_key(seed, DevnetKey::Validator(i)))
        .collect();
    let threshold = genesis::bft_threshold(keys.len());
    genesis::Custodians { keys, threshold }
}

/// Submits the listings, deposits (demo accounts and bots) and the insurance fund's capital,
/// each attested by 2f + 1 validators, to `shared`.
pub fn submit_setup(shared: &Shared, seed: u64, genesis_ms: u64, validators: usize) -> usize {
    let mut funded: Vec<(PublicKey, Money)> = (0..DEMO_ACCOUNTS)
        .map(|i| {
            (
                keys::devnet_key(seed, DevnetKey::Demo(i)).public_key(),
                Money::from_usdc(DEMO_FUNDS_USDC),
            )
        })
        .collect();
    for i in 0..MAKERS + TAKERS {
        funded.push((
            keys::devnet_key(seed, DevnetKey::Bot(i)).public_key(),
            Money::from_usdc(10_000_000),
        ));
    }
    let setup = genesis::Setup {
        listings: genesis::instruments(genesis_ms),
        deposits: funded,
        // Capital of the insurance fund that backs the backstop.
        insurance: Some(Money::from_usdc(INSURANCE_FUND_USDC)),
    };
    let txs = setup.txs(&operators(seed, validators));
    shared
        .submit(txs, &mut rand::rng(), true)
        .iter()
        .filter(|r| r.is_ok())
        .count()
}

/// The devnet's bots: market makers, then takers.
pub fn bots(seed: u64) -> Vec<Bot> {
    let mut bots = Vec::new();
    for i in 0..MAKERS {
        let strategy = Strategy::MarketMaker {
            spread_bps: 10 + 10 * i as i64,
            // One option spread for all: with the jitter, each maker is best on about a third
            // of the strikes, so every series' smile has the three accounts a fit needs.
            option_spread_bps: 500,
            size_max: 10,
        };
        let key = keys::devnet_key(seed, DevnetKey::Bot(i));
        bots.push(Bot::new(
            format!("maker-{i}"),
            key,
            strategy,
            Duration::from_millis(1_500),
            seed ^ i,
        ));
    }
    for i in MAKERS..MAKERS + TAKERS {
        let key = keys::devnet_key(seed, DevnetKey::Bot(i));
        bots.push(Bot::new(
            format!("taker-{i}"),
            key,
            Strategy::Taker { size_max: 3 },
            Duration::from_millis(700),
            seed ^ i,
        ));
    }
    bots
}

/// One line of progress: validator 0's view of the chain, and every validator's height.
pub fn progress(validators: &[Arc<Shared>]) -> String {
    let heights: Vec<String> = validators
        .iter()
        .map(|v| lock(&v.status).finalized_height.to_string())
        .collect();
    let status = lock(&validators[0].status).clone();
    let index = {
        let chain = lock(&validators[0].chain);
        chain
            .finalized()
            .index_price(genesis::btc())
            .map_or("-".to_string(), |p| p.to_string())
    };
    let mode = status
        .halted
        .map_or(String::new(), |reason| format!(" | HALTED: {reason}"));
    format!(
        "height {} [{}] | view {} | this run: txs {} trades {} | mempool {} | BTC index {}{mode}",
        status.finalized_height,
        heights.join(" "),
        status.consensus_view,
        status.transactions_executed,
        status.trades_executed,
        status.mempool_txs,
        index
    )
}

/// Waits for Ctrl-C (or SIGTERM), or for `duration` to pass.
pub async fn shutdown_signal(context: &tokio::Context, duration: Option<Duration>) {
    let timer = async {
        match duration {
            Some(d) => context.sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let terminate = async {
        #[cfg(unix)]
        if let Ok(mut signal) =
            ::tokio::signal::unix::signal(::tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    ::tokio::select! {
        _ = ::tokio::signal::ctrl_c() => {}
        _ = terminate => {}
        _ = timer => {}
    }
}

/// Asks every task to stop, waits a bounded time for them, then lets the runner end.
pub async fn stop(context: tokio::Context) {
    if let Err(error) = context.stop(0, Some(Duration::from_secs(10))).await {
        eprintln!("some tasks did not stop within 10 s ({error}); exiting anyway");
    }
}

/// Runs the devnet until Ctrl-C.
pub fn run(options: DevnetOptions) -> Result<()> {
    ensure!(
        (1..=16).contains(&options.validators),
        "--validators must lie in 1..=16 (4 tolerates one fault)"
    );
    let pinned = pin(&options)?;
    let demo = write_keys(&options.dir, &pinned)?;
    let data = options.dir.join("data");
    let setups = setups(&pinned, NodeSettings::DEFAULT)?;
    let gateway_setup = crate::gateway_cli::setup(
        &setups[0].namespace,
        &setups
            .iter()
            .map(|s| s.signer.public_key())
            .collect::<Vec<_>>(),
        setups[0].genesis.clone(),
        Vec::new(),
        local(pinned.api_port, pinned.validators)?,
        options.dir.join("gateway"),
    );
    let runtime = tokio::Config::new()
        .with_storage_directory(&data)
        .with_worker_threads(2);
    tokio::Runner::new(runtime).start(|context| async move {
        let mut validators = Vec::new();
        for (i, setup) in setups.into_iter().enumerate() {
            let child = context.child("validator").with_attribute("validator", i);
            let running = validator::start(child, setup, &format!("validator=\"{i}\""))
                .await
                .with_context(|| format!("starting validator {i}"))?;
            validators.push(running);
        }
        let gateway = if options.gateway {
            let setup = bulwark_gateway::run::GatewaySetup {
                validators: validators
                    .iter()
                    .map(|v| format!("http://{}", v.api_addr))
                    .collect(),
                ..gateway_setup
            };
            // On its own thread and runtime: replaying blocks and serving clients must not hold
            // up the validators' consensus tasks on this process's two workers.
            let addr = bulwark_gateway::run::start_on_own_thread(setup)
                .context("starting the gateway")?;
            Some(addr)
        } else {
            None
        };
        print_banner(&options, &pinned, &validators, &demo);
        if let Some(addr) = gateway {
            print_gateway(addr, &validators[0], &demo[0]);
        }
        let submitted = submit_setup(
            &validators[0].shared,
            pinned.seed,
            pinned.genesis_time_ms,
            pinned.validators,
        );
        if submitted > 0 {
            println!(
                "submitted {submitted} setup transactions (listings, deposits, insurance fund) to validator 0"
            );
        }
        if options.bots {
            for (i, bot) in bots(pinned.seed).into_iter().enumerate() {
                // Spread the bots over the validators' mempools.
                let shared = validators[i % validators.len()].shared.clone();
                context
                    .child("bot")
                    .with_attribute("bot", i)
                    .spawn(move |context| bot.run(context, shared));
            }
        }
        let shareds: Vec<Arc<Shared>> = validators.iter().map(|v| v.shared.clone()).collect();
        let progress_task = {
            let shareds = shareds.clone();
            context.child("progress").spawn(move |context| async move {
                loop {
                    context.sleep(Duration::from_secs(2)).await;
                    println!("{}", progress(&shareds));
                }
            })
        };
        shutdown_signal(&context, options.duration).await;
        println!(
            "stopping: asking every task to finish (data stays in {})",
            options.dir.display()
        );
        progress_task.abort();
        println!("last: {}", progress(&shareds));
        stop(context).await;
        Ok(())
    })
}

fn print_gateway(addr: SocketAddr, validator: &RunningValidator, demo: &Path) {
    println!("  gateway (Deribit JSON-RPC, for ccxt and other Deribit clients): http://{addr}");
    println!("    WebSocket JSON-RPC and subscriptions: ws://{addr}/ws/api/v2");
    println!(
        "    bulwark apikey create --gateway http://{addr} --api http://{} --key {}",
        validator.api_addr,
        demo.display()
    );
    println!(
        "    bulwark order place --gateway http://{addr} --api-key ID --api-secret SECRET --instrument BTC_USDC-PERPETUAL --side buy --price 99000 --amount 0.002"
    );
    println!("  dashboard: http://{addr}/dashboard");
}

fn print_banner(
    options: &DevnetOptions,
    pinned: &DevnetFile,
    validators: &[RunningValidator],
    demo: &[PathBuf],
) {
    println!(
        "bulwark devnet: {} validators on 127.0.0.1 (seed {}), data in {}",
        validators.len(),
        pinned.seed,
        options.dir.display()
    );
    for (i, v) in validators.iter().enumerate() {
        println!(
            "  validator {i}: API http://{}  p2p 127.0.0.1:{}  key {}",
            v.api_addr,
            pinned.p2p_port as usize + i,
            &keys::public_hex(&v.public_key)[..16]
        );
    }
    println!("  demo accounts ({DEMO_FUNDS_USDC} USDC each):");
    for path in demo {
        println!("    {}", path.display());
    }
    let first = format!("http://{}", validators[0].api_addr);
    // Every validator: the client believes a read when f + 1 of them agree, and hands each
    // transaction to all of them.
    let api = validators
        .iter()
        .map(|v| format!("http://{}", v.api_addr))
        .collect::<Vec<_>>()
        .join(",");
    println!("  try:");
    println!("    bulwark status --api {first}");
    println!("    bulwark book --api {api} BTC_USDC-PERPETUAL");
    println!(
        "    bulwark account --api {api} --key {}",
        demo[0].display()
    );
    println!(
        "    bulwark order place --api {api} --key {} --instrument BTC_USDC-PERPETUAL --side buy --price 99000 --qty 1",
        demo[0].display()
    );
    println!(
        "    bulwark withdraw --api {api} --key {} --amount 100",
        demo[0].display()
    );
    println!(
        "  Ctrl-C stops; `bulwark devnet --dir {}` resumes.",
        options.dir.display()
    );
}
