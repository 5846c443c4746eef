//! `bulwark gateway` (a non-voting follower serving the Deribit-compatible API) and
//! `bulwark apikey create|list|revoke` (API keys are agent keys: the owner signs the binding).

use crate::client;
use crate::config::{self, NodeFile};
use crate::keys;
use anyhow::{Context, Result, bail, ensure};
use bulwark_exchange::Genesis;
use bulwark_gateway::follower::FollowerConfig;
use bulwark_gateway::gateway::GatewayConfig;
use bulwark_gateway::run::GatewaySetup;
use bulwark_types::{PublicKey, Signature, TxBody};
use clap::{Args, Subcommand};
use commonware_codec::DecodeExt as _;
use commonware_cryptography::Signer as _;
use commonware_utils::ordered::Set;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct GatewayArgs {
    /// A validator configuration file of the network (as `bulwark node` reads): its
    /// namespace, `[genesis]` and `[[validators]]` are used; its key file is not read.
    #[arg(long)]
    pub genesis: PathBuf,
    /// Validators' API URLs, comma-separated (http://host:port,...).
    #[arg(long, value_delimiter = ',', required = true)]
    pub validators: Vec<String>,
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Where the API keys are kept (apikeys.json, mode 0600).
    #[arg(long, default_value = "gateway")]
    pub data_dir: PathBuf,
}

/// The network a node configuration describes: namespace, validator set and genesis, as the
/// validators build them (`config::check`), without the validator's own key.
pub fn network(file: &NodeFile) -> Result<(String, Vec<PublicKey>, Genesis)> {
    ensure!(!file.validators.is_empty(), "validators: none listed");
    let validators = file
        .validators
        .iter()
        .enumerate()
        .map(|(i, v)| {
            keys::parse_public_key(&v.public_key).with_context(|| format!("validators[{i}]"))
        })
        .collect::<Result<Vec<_>>>()?;
    let genesis = config::genesis_of(file, validators.clone())?;
    Ok((file.namespace.clone(), validators, genesis))
}

/// The setup of a gateway following `validators` (API URLs) of the network.
pub fn setup(
    namespace: &str,
    participants: &[PublicKey],
    genesis: Genesis,
    validators: Vec<String>,
    listen: SocketAddr,
    data_dir: PathBuf,
) -> GatewaySetup {
    GatewaySetup {
        namespace: namespace.as_bytes().to_vec(),
        participants: Set::from_iter_dedup(participants.iter().cloned()),
        genesis,
        limits: crate::validator::NodeSettings::DEFAULT.limits,
        validators,
        listen,
        data_dir,
        config: GatewayConfig::DEFAULT,
        follower: FollowerConfig::DEFAULT,
    }
}

pub fn gateway(args: GatewayArgs) -> Result<()> {
    let file = config::read(&args.genesis)?;
    let (namespace, validators, genesis) = network(&file)?;
    crate::cli::init_logging("info");
    let runtime = ::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let running = bulwark_gateway::run::start(setup(
            &namespace,
            &validators,
            genesis,
            args.validators,
            args.listen,
            args.data_dir.clone(),
        ))
        .await?;
        println!(
            "bulwark gateway: Deribit-compatible API on http://{} (keys in {})",
            running.addr,
            args.data_dir.display()
        );
        ::tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        println!("stopping");
        Ok(())
    })
}

#[derive(Subcommand)]
pub enum ApikeyCommand {
    /// Create an API key for the account of --key: ask the gateway for a pending agent key,
    /// sign the AuthoriseAgent binding it, submit it, wait until the gateway sees it final,
    /// and print the client id and secret.
    Create(ApikeyCreateArgs),
    /// List the API keys of --key's account at the gateway (no secrets).
    List(ApikeyListArgs),
    /// Revoke an API key: sign RevokeAgent for its agent key and wait until it is final.
    Revoke(ApikeyRevokeArgs),
}

#[derive(Args)]
pub struct ApikeyCreateArgs {
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    pub gateway: String,
    /// A validator's API, to submit the owner's transaction to.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// The account owner's key file.
    #[arg(long)]
    pub key: PathBuf,
}

#[derive(Args)]
pub struct ApikeyListArgs {
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    pub gateway: String,
    #[arg(long)]
    pub key: PathBuf,
}

#[derive(Args)]
pub struct ApikeyRevokeArgs {
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    pub gateway: String,
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    #[arg(long)]
    pub key: PathBuf,
    /// The client id of the key to revoke.
    #[arg(long)]
    pub client_id: String,
}

pub fn apikey(command: ApikeyCommand) -> Result<()> {
    match command {
        ApikeyCommand::Create(args) => {
            let owner = keys::read_key(&args.key)?;
            let created = create(&args.gateway, &args.api, &owner, Duration::from_secs(30))?;
            println!("client_id     {}", created.client_id);
            println!("client_secret {}", created.client_secret);
            println!("agent         {}", created.agent);
            Ok(())
        }
        ApikeyCommand::List(args) => {
            let owner = keys::read_key(&args.key)?;
            let list = list(&args.gateway, &owner.public_key())?;
            println!("{}", serde_json::to_string_pretty(&list)?);
            Ok(())
        }
        ApikeyCommand::Revoke(args) => {
            let owner = keys::read_key(&args.key)?;
            let list = list(&args.gateway, &owner.public_key())?;
            let agent = list["keys"]
                .as_array()
                .and_then(|keys| {
                    keys.iter()
                        .find(|k| k["client_id"].as_str() == Some(args.client_id.as_str()))
                })
                .and_then(|k| k["agent"].as_str())
                .context("no key of this account at the gateway has this client id")?;
            let agent = keys::parse_public_key(agent)?;
            revoke(&args.api, &owner, agent, Duration::from_secs(30))?;
            println!("revoked {}", args.client_id);
            Ok(())
        }
    }
}

/// A created, active API key.
#[derive(Clone, Debug)]
pub struct CreatedKey {
    pub client_id: String,
    pub client_secret: String,
    pub agent: String,
}

/// The owner's keys at the gateway.
pub fn list(gateway: &str, owner: &PublicKey) -> Result<Value> {
    client::get_ok(
        gateway,
        &format!("/gateway/v1/apikeys?owner={}", keys::public_hex(owner)),
    )
}

/// Asks `gateway` for a pending key, signs and submits the binding through the validator at
/// `api`, and waits (at most `wait`) until the gateway reports the key active.
pub fn create(
    gateway: &str,
    api: &str,
    owner: &bulwark_types::PrivateKey,
    wait: Duration,
) -> Result<CreatedKey> {
    let nonce = client::next_nonce(api, owner)?;
    let response = client::request(
        gateway,
        "POST",
        "/gateway/v1/apikeys",
        Some(&{
            // Only the owner may ask: the request carries its signature, of the current time.
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("the clock is before 1970")?
                .as_millis() as u64;
            let request = bulwark_gateway::keys::KeyRequest::sign(owner, nonce, ts);
            json!({
                "owner": keys::public_hex(&owner.public_key()),
                "nonce": nonce,
                "ts": ts,
                "signature": bulwark_node::executor::hex(&commonware_codec::Encode::encode(&request.signature)),
            })
        }),
    )?;
    ensure!(
        response.status == 200,
        "the gateway refused: {}",
        response.body
    );
    let body = response.body;
    let field = |name: &str| -> Result<String> {
        body[name]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("the gateway's answer has no {name}"))
    };
    let created = CreatedKey {
        client_id: field("client_id")?,
        client_secret: field("client_secret")?,
        agent: field("agent")?,
    };
    let agent = keys::parse_public_key(&created.agent)?;
    let proof_bytes = keys::unhex(&field("proof")?, 64).context("the proof is 64 bytes of hex")?;
    let proof = Signature::decode(proof_bytes)
        .map_err(|e| anyhow::anyhow!("the proof does not decode: {e}"))?;
    ensure!(
        bulwark_types::tx::agent_proof_valid(
            &agent,
            &owner.public_key(),
            bulwark_types::Nonce::new(nonce),
            &proof
        ),
        "the gateway's proof of possession does not verify"
    );
    let tx = client::sign(owner, nonce, TxBody::AuthoriseAgent { agent, proof });
    let outcome = client::submit_and_follow(api, &tx, wait)?;
    ensure_applied(&outcome, "binding")?;
    let deadline = Instant::now() + wait;
    loop {
        let list = list(gateway, &owner.public_key())?;
        let state = list["keys"]
            .as_array()
            .and_then(|keys| {
                keys.iter()
                    .find(|k| k["client_id"].as_str() == Some(created.client_id.as_str()))
            })
            .and_then(|k| k["state"].as_str())
            .unwrap_or("unknown")
            .to_string();
        if state == "active" {
            return Ok(created);
        }
        ensure!(
            Instant::now() < deadline,
            "the key is still {state} at the gateway after {wait:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Signs and submits `RevokeAgent` for `agent`, waiting for its finalized outcome.
pub fn revoke(
    api: &str,
    owner: &bulwark_types::PrivateKey,
    agent: PublicKey,
    wait: Duration,
) -> Result<()> {
    let nonce = client::next_nonce(api, owner)?;
    let tx = client::sign(owner, nonce, TxBody::RevokeAgent { agent });
    let outcome = client::submit_and_follow(api, &tx, wait)?;
    ensure_applied(&outcome, "revocation")?;
    Ok(())
}

/// Fails unless a followed transaction finalized and applied.
fn ensure_applied(outcome: &Value, what: &str) -> Result<()> {
    if outcome["status"].as_str() != Some("finalized") {
        bail!("the {what} did not finalize: {outcome}");
    }
    if outcome["outcome"]["result"].as_str() != Some("applied") {
        bail!("the exchange rejected the {what}: {outcome}");
    }
    Ok(())
}
