//! The arguments and bodies of the node, devnet and client subcommands.

use crate::client::{self, PlaceOrder};
use crate::config;
use crate::deribit_client;
use crate::devnet::{self, DevnetOptions};
use crate::keys;
use crate::validator;
use anyhow::{Context, Result, bail, ensure};
use bulwark_types::{ClientOrderId, OrderId, OrderRef, Side, TimeInForce};
use clap::{Args, Subcommand, ValueEnum};
use commonware_cryptography::Signer;
use commonware_runtime::{Runner as _, Supervisor as _, tokio};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Logs to standard error, filtered by `RUST_LOG` (default: `default`).
pub fn init_logging(default: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Write the private key here (refuses to overwrite). Without it, both halves are printed.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the public key of an existing key file instead.
    #[arg(long, conflicts_with = "out")]
    pub show: Option<PathBuf>,
}

pub fn keygen(args: KeygenArgs) -> Result<()> {
    if let Some(path) = args.show {
        println!("{}", keys::public_hex(&keys::read_key(&path)?.public_key()));
        return Ok(());
    }
    let key = keys::generate();
    match args.out {
        Some(path) => {
            // One exclusive create: refuses any existing path, a dangling link included.
            keys::create_key(&path, &key)?;
            println!("{}", keys::public_hex(&key.public_key()));
            eprintln!(
                "private key written to {}; the line above is its public key",
                path.display()
            );
        }
        None => {
            use commonware_codec::Encode;
            println!("private {}", keys::hex(&key.encode()));
            println!("public  {}", keys::public_hex(&key.public_key()));
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct NodeArgs {
    /// The validator's configuration (see `crates/bulwark/src/config.rs` for the format).
    #[arg(long)]
    pub config: PathBuf,
}

pub fn node(args: NodeArgs) -> Result<()> {
    let file = config::read(&args.config)?;
    let plan = config::check(&file, &args.config, devnet::now_ms())?;
    std::fs::create_dir_all(&plan.data_dir)
        .with_context(|| format!("creating {}", plan.data_dir.display()))?;
    init_logging("info");
    let runtime = tokio::Config::new()
        .with_storage_directory(&plan.data_dir)
        .with_worker_threads(2);
    let api_listen = plan.setup.api_listen;
    tokio::Runner::new(runtime).start(|context| async move {
        let running = validator::start(context.child("validator"), plan.setup, "").await?;
        println!(
            "bulwark node: validator {} running; API http://{} (requested {api_listen}); data in {}",
            keys::public_hex(&running.public_key),
            running.api_addr,
            plan.data_dir.display()
        );
        devnet::shutdown_signal(&context, None).await;
        println!("stopping");
        devnet::stop(context).await;
        Ok(())
    })
}

#[derive(Args)]
pub struct DevnetArgs {
    /// Directory for the devnet's keys and data; reusing it resumes the same chain.
    #[arg(long, default_value = "devnet")]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Seed of the keys, the price walk and the bots. Demo keys follow from it.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First p2p port; validator i listens on this + i.
    #[arg(long, default_value_t = 30_400)]
    pub p2p_port: u16,
    /// First API port; validator i serves on this + i.
    #[arg(long, default_value_t = 8_080)]
    pub api_port: u16,
    /// Run without the trading bots.
    #[arg(long)]
    pub no_bots: bool,
    /// Do not start the gateway (the Deribit-compatible API) beside the validators.
    #[arg(long)]
    pub no_gateway: bool,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    pub seconds: Option<u64>,
}

pub fn devnet(args: DevnetArgs) -> Result<()> {
    init_logging("warn");
    devnet::run(DevnetOptions {
        dir: args.dir,
        validators: args.validators,
        seed: args.seed,
        p2p_port: args.p2p_port,
        api_port: args.api_port,
        bots: !args.no_bots,
        gateway: !args.no_gateway,
        duration: args.seconds.map(Duration::from_secs),
    })
}

#[derive(Copy, Clone, ValueEnum)]
pub enum SideArg {
    Buy,
    Sell,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum TifArg {
    /// Good till cancelled: rests until filled or cancelled.
    Gtc,
    /// Immediate or cancel: fills what it can now, the rest is cancelled.
    Ioc,
    /// Fill or kill: fills entirely now or not at all.
    Fok,
}

#[derive(Args)]
pub struct ApiArg {
    /// A validator's API, e.g. http://127.0.0.1:8080 (transactions signed with --key); or
    /// several, comma-separated: each transaction is handed to every one, so a validator that
    /// drops it does not stop it, and a read is believed only when f + 1 of the n named give
    /// the same answer (f = (n - 1) / 3, at least two once two are named: two of four), so
    /// one that lies is outvoted (`status` shows the first named).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Or a gateway's Deribit API, e.g. http://127.0.0.1:8084, the one traders' clients use:
    /// private calls are signed with --api-key and --api-secret.
    #[arg(long)]
    pub gateway: Option<String>,
    /// The API key's client id (from `bulwark apikey create`), with --gateway.
    #[arg(long, env = "BULWARK_API_KEY")]
    pub api_key: Option<String>,
    /// The API key's client secret, with --gateway.
    #[arg(long, env = "BULWARK_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<String>,
}

impl ApiArg {
    /// The gateway client when --gateway is given.
    fn gateway(&self) -> Result<Option<deribit_client::Gateway>> {
        let Some(base) = &self.gateway else {
            return Ok(None);
        };
        let key = match (&self.api_key, &self.api_secret) {
            (Some(client_id), Some(client_secret)) => Some(deribit_client::ApiKey {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            }),
            (None, None) => None,
            _ => bail!("give both --api-key and --api-secret"),
        };
        Ok(Some(deribit_client::Gateway {
            base: base.clone(),
            key,
        }))
    }
}

/// `--wait`: whole seconds in `0..=`[`client::WAIT_S_MAX`], refused by clap beyond.
fn wait_seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=client::WAIT_S_MAX)
}

#[derive(Subcommand)]
pub enum OrderCommand {
    /// Sign and submit an order, then wait for its finalized outcome.
    Place(PlaceArgs),
    /// Cancel one order (by --client-id or --order-id, with --instrument), or all of them.
    Cancel(CancelArgs),
}

#[derive(Args)]
pub struct PlaceArgs {
    #[command(flatten)]
    pub api: ApiArg,
    /// Key file of the account (or an agent of it); not with --gateway.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Deribit-style name, e.g. BTC_USDC-PERPETUAL or BTC_USDC-27DEC26-100000-C.
    #[arg(long)]
    pub instrument: String,
    #[arg(long, value_enum)]
    pub side: SideArg,
    /// Limit price in USDC per unit of the underlying (on the tick grid); omit for a market order
    /// (it fills within 0.5% of the mark in the perpetual, 10% in an option; the rest is
    /// cancelled).
    #[arg(long)]
    pub price: Option<String>,
    /// Contracts (through a validator's API).
    #[arg(long, conflicts_with = "amount")]
    pub qty: Option<i64>,
    /// Amount in the underlying's units, as Deribit counts it, e.g. 0.002 (through --gateway).
    #[arg(long)]
    pub amount: Option<String>,
    #[arg(long, value_enum, default_value = "gtc")]
    pub tif: TifArg,
    #[arg(long)]
    pub post_only: bool,
    #[arg(long)]
    pub reduce_only: bool,
    /// The account's own id for the order (default: the transaction's nonce).
    #[arg(long)]
    pub client_id: Option<u64>,
    /// Seconds to wait for the finalized outcome (at most 3600).
    #[arg(long, default_value_t = 10, value_parser = wait_seconds())]
    pub wait: u64,
}

#[derive(Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub api: ApiArg,
    /// Key file of the account (or an agent of it); not with --gateway.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Instrument of the order (or, with neither id, cancel all of this instrument's orders).
    #[arg(long)]
    pub instrument: Option<String>,
    #[arg(long, conflicts_with = "order_id")]
    pub client_id: Option<u64>,
    #[arg(long)]
    pub order_id: Option<u64>,
    /// Seconds to wait for the finalized outcome (at most 3600).
    #[arg(long, default_value_t = 10, value_parser = wait_seconds())]
    pub wait: u64,
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// The key file a validator-API command signs with.
fn key_file(key: Option<&PathBuf>) -> Result<bulwark_types::PrivateKey> {
    let Some(path) = key else {
        bail!("give --key FILE (or --gateway URL with --api-key and --api-secret)");
    };
    keys::read_key(path)
}

/// `order place` through a gateway: Deribit's `private/buy` or `private/sell`.
fn place_through(gateway: &deribit_client::Gateway, args: &PlaceArgs) -> Result<Value> {
    ensure!(
        args.key.is_none(),
        "--key signs for a validator's API; a gateway signs with the API key"
    );
    let Some(amount) = &args.amount else {
        bail!("through a gateway give --amount in the underlying's units (Deribit's), e.g. 0.001");
    };
    ensure!(
        args.client_id.is_none(),
        "--client-id is the validator API's; a gateway names orders by the exchange's id"
    );
    let mut params = vec![
        ("instrument_name", args.instrument.clone()),
        ("amount", amount.clone()),
    ];
    match &args.price {
        Some(price) => {
            params.push(("type", "limit".into()));
            params.push(("price", price.clone()));
        }
        None => params.push(("type", "market".into())),
    }
    params.push((
        "time_in_force",
        match args.tif {
            TifArg::Gtc => "good_til_cancelled",
            TifArg::Ioc => "immediate_or_cancel",
            TifArg::Fok => "fill_or_kill",
        }
        .into(),
    ));
    if args.post_only {
        params.push(("post_only", "true".into()));
    }
    if args.reduce_only {
        params.push(("reduce_only", "true".into()));
    }
    let method = match args.side {
        SideArg::Buy => "buy",
        SideArg::Sell => "sell",
    };
    gateway.private(method, &deribit_client::query(&params))
}

/// `order cancel` through a gateway: one order by id, an instrument's, or all.
fn cancel_through(gateway: &deribit_client::Gateway, args: &CancelArgs) -> Result<Value> {
    ensure!(
        args.key.is_none(),
        "--key signs for a validator's API; a gateway signs with the API key"
    );
    ensure!(
        args.client_id.is_none(),
        "through a gateway cancel by --order-id (the exchange's id)"
    );
    match (args.order_id, &args.instrument) {
        (Some(id), _) => gateway.private(
            "cancel",
            &deribit_client::query(&[("order_id", format!("BLW-{id}"))]),
        ),
        (None, Some(instrument)) => gateway.private(
            "cancel_all_by_instrument",
            &deribit_client::query(&[("instrument_name", instrument.clone())]),
        ),
        (None, None) => gateway.private("cancel_all", ""),
    }
}

pub fn order(command: OrderCommand) -> Result<()> {
    let through = match &command {
        OrderCommand::Place(args) => args.api.gateway()?,
        OrderCommand::Cancel(args) => args.api.gateway()?,
    };
    if let Some(gateway) = through {
        let answer = match &command {
            OrderCommand::Place(args) => place_through(&gateway, args)?,
            OrderCommand::Cancel(args) => cancel_through(&gateway, args)?,
        };
        print_json(&answer);
        return Ok(());
    }
    let outcome = match command {
        OrderCommand::Place(args) => {
            let key = key_file(args.key.as_ref())?;
            ensure!(
                args.amount.is_none(),
                "--amount is the gateway's; through a validator's API give --qty"
            );
            let Some(qty) = args.qty else {
                bail!("give --qty (contracts)");
            };
            ensure!(qty > 0, "--qty must be positive");
            let order = PlaceOrder {
                instrument: args.instrument,
                side: match args.side {
                    SideArg::Buy => Side::Buy,
                    SideArg::Sell => Side::Sell,
                },
                price_usdc: args.price,
                qty,
                time_in_force: match args.tif {
                    TifArg::Gtc => TimeInForce::GoodTilCancelled,
                    TifArg::Ioc => TimeInForce::ImmediateOrCancel,
                    TifArg::Fok => TimeInForce::FillOrKill,
                },
                post_only: args.post_only,
                reduce_only: args.reduce_only,
                client_order_id: args.client_id,
            };
            client::place(&args.api.api, &key, &order, Duration::from_secs(args.wait))?
        }
        OrderCommand::Cancel(args) => {
            let key = key_file(args.key.as_ref())?;
            let order = match (args.client_id, args.order_id) {
                (Some(id), _) => Some(OrderRef::Client(ClientOrderId::new(id))),
                (None, Some(id)) => Some(OrderRef::Exchange(OrderId::new(id))),
                (None, None) => None,
            };
            client::cancel(
                &args.api.api,
                &key,
                args.instrument.as_deref(),
                order,
                Duration::from_secs(args.wait),
            )?
        }
    };
    print_json(&outcome);
    if outcome["outcome"]["result"] == "rejected" {
        bail!(
            "the exchange rejected the transaction: {}",
            outcome["outcome"]["reason"]
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct WithdrawArgs {
    /// A validator's API, e.g. http://127.0.0.1:8080 (a gateway's API keys may not withdraw).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Key file of the account's owner (the exchange refuses an agent's withdrawal).
    #[arg(long)]
    pub key: PathBuf,
    /// USDC to withdraw, e.g. 250 or 250.5 (at most 6 decimals).
    #[arg(long, required_unless_present = "cancel", conflicts_with = "cancel")]
    pub amount: Option<String>,
    /// Cancel the account's withdrawal still held instead (its hold lifts at once).
    #[arg(long)]
    pub cancel: bool,
    /// Seconds to wait for the outcome: the transaction's, then the withdrawal's release (at
    /// most 3600).
    #[arg(long, default_value_t = 10, value_parser = wait_seconds())]
    pub wait: u64,
}

pub fn withdraw(args: WithdrawArgs) -> Result<()> {
    let key = keys::read_key(&args.key)?;
    let wait = Duration::from_secs(args.wait);
    let outcome = match &args.amount {
        Some(amount) => client::withdraw(&args.api, &key, client::parse_usdc(amount)?, wait)?,
        None => client::cancel_withdrawal(&args.api, &key, wait)?,
    };
    print_json(&outcome);
    if outcome["outcome"]["result"] == "rejected" {
        bail!(
            "the exchange rejected the transaction: {}",
            outcome["outcome"]["reason"]
        );
    }
    if outcome["withdrawal"]["state"] == "not_paid" {
        bail!(
            "the withdrawal was held, then its hold ended without payment (cancelled at its release, or by its owner)"
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub api: ApiArg,
    /// Key file of the account.
    #[arg(long, conflicts_with = "public_key")]
    pub key: Option<PathBuf>,
    /// Or the account's public key, hex.
    #[arg(long)]
    pub public_key: Option<String>,
}

pub fn account(args: AccountArgs) -> Result<()> {
    if let Some(gateway) = args.api.gateway()? {
        ensure!(
            args.key.is_none() && args.public_key.is_none(),
            "through a gateway the API key names the account"
        );
        print_json(&serde_json::json!({
            "summary": gateway.private("get_account_summary", "currency=USDC")?,
            "positions": gateway.private("get_positions", "currency=any")?,
            "open_orders": gateway.private("get_open_orders", "")?,
        }));
        return Ok(());
    }
    let public = match (args.key, args.public_key) {
        (Some(path), None) => keys::public_hex(&keys::read_key(&path)?.public_key()),
        (None, Some(hex)) => keys::public_hex(&keys::parse_public_key(&hex)?),
        _ => bail!("give --key FILE or --public-key HEX"),
    };
    print_json(&client::get_agreed(
        &args.api.api,
        &format!("/account/{public}"),
        &client::without_height,
    )?);
    Ok(())
}

#[derive(Args)]
pub struct BookArgs {
    #[command(flatten)]
    pub api: ApiArg,
    /// Instrument name, e.g. BTC_USDC-PERPETUAL.
    pub instrument: String,
    /// Levels per side.
    #[arg(long, default_value_t = 10)]
    pub depth: usize,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `book` through a gateway: Deribit's `public/get_order_book`, printed the same way.
fn book_through(gateway: &deribit_client::Gateway, args: &BookArgs) -> Result<()> {
    let book = gateway.public(
        "get_order_book",
        &deribit_client::query(&[
            ("instrument_name", args.instrument.clone()),
            ("depth", args.depth.to_string()),
        ]),
    )?;
    if args.json {
        print_json(&book);
        return Ok(());
    }
    println!(
        "{} ({}): mark {} index {} (amounts in the underlying)",
        book["instrument_name"].as_str().unwrap_or("?"),
        book["state"].as_str().unwrap_or("?"),
        book["mark_price"],
        book["index_price"]
    );
    let empty = Vec::new();
    let asks = book["asks"].as_array().unwrap_or(&empty);
    let bids = book["bids"].as_array().unwrap_or(&empty);
    println!("{:>16} {:>10}", "price", "amount");
    let row = |level: &Value, side: &str| println!("{:>16} {:>10}  {side}", level[0], level[1]);
    asks.iter().rev().for_each(|level| row(level, "ask"));
    println!("{:>16}", "----");
    bids.iter().for_each(|level| row(level, "bid"));
    Ok(())
}

pub fn book(args: BookArgs) -> Result<()> {
    if let Some(gateway) = args.api.gateway()? {
        return book_through(&gateway, &args);
    }
    let book = client::get_agreed(
        &args.api.api,
        &format!(
            "/book/{}?depth={}",
            client::path_segment(&args.instrument),
            args.depth
        ),
        &client::without_height,
    )?;
    if args.json {
        print_json(&book);
        return Ok(());
    }
    let instrument = &book["instrument"];
    println!(
        "{} ({}) at height {}: mark {} index {}",
        instrument["name"].as_str().unwrap_or("?"),
        instrument["status"].as_str().unwrap_or("?"),
        book["height"],
        instrument["mark"].as_str().unwrap_or("-"),
        book["index"].as_str().unwrap_or("-")
    );
    let empty = Vec::new();
    let asks = book["asks"].as_array().unwrap_or(&empty);
    let bids = book["bids"].as_array().unwrap_or(&empty);
    println!("{:>16} {:>10} {:>7}", "price", "qty", "orders");
    let row = |level: &Value, side: &str| {
        let price = level["price"].as_str().unwrap_or("?");
        println!(
            "{price:>16} {:>10} {:>7}  {side}",
            level["qty"].as_i64().unwrap_or(0),
            level["orders"].as_i64().unwrap_or(0)
        );
    };
    asks.iter().rev().for_each(|level| row(level, "ask"));
    println!("{:>16}", "----");
    bids.iter().for_each(|level| row(level, "bid"));
    Ok(())
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub api: ApiArg,
}

pub fn status(args: StatusArgs) -> Result<()> {
    if let Some(gateway) = args.api.gateway()? {
        print_json(&gateway.status()?);
        return Ok(());
    }
    print_json(&client::get_ok(&args.api.api, "/status")?);
    Ok(())
}
