//! The client commands: talk to a validator's HTTP API, sign with a key file.
//!
//! Owns: a minimal HTTP/1.1 client (plain `http://` only, bounded responses and timeouts),
//! and the commands `order place`, `order cancel`, `withdraw`, `account`, `book`, `status`. A
//! transaction is signed with the clock in microseconds as its nonce, or the nonce the API
//! reports as the key's next if that is higher (`nonce_next`: above its last executed nonce
//! and above anything of it still pending), so it expires a minute after it is signed.
//! `api` may name several validators, comma-separated: each transaction is handed to every one
//! ([`submit`]), so a validator that says it admitted a transaction and drops it does not stop
//! it, and what the client reads (an instrument's id and tick size, an account's nonce and
//! withdrawals, a transaction's outcome, the `account` and `book` views) is believed only when
//! `f + 1` of the `n` named gave the same answer ([`read_agreed`], `f = (n - 1) / 3`), so one
//! lying validator among four cannot send an order to another instrument, price it in the wrong
//! ticks, or report an order or withdrawal executed that was not. `status` is one validator's
//! account of itself and comes from the first named.
//!
//! Never: panics on what an API answers (a buggy or hostile one, or a proxy, must not crash
//! the client: [`AnswerError`]), puts a caller's text into a request unescaped (path segments
//! are percent-encoded, the URL and headers refused with a line break), or loses the digest of
//! a transaction it submitted (an error while following it names the digest).
//! Bounds: responses of at most [`RESPONSE_BYTES_MAX`] bytes; waits of at most [`WAIT_S_MAX`].

use crate::keys;
use anyhow::{Context, Result, bail, ensure};
use bulwark_types::{
    ClientOrderId, InstrumentId, Money, OrderRef, OrderRequest, OrderType, PrivateKey, Qty,
    SelfTradePrevention, Side, SignedTx, TimeInForce, TxBody, UnitPrice,
};
use commonware_codec::Encode;
use commonware_cryptography::Signer;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest response read.
const RESPONSE_BYTES_MAX: u64 = 16 << 20;

/// Longest wait for a transaction's outcome, seconds (`--wait`): an hour. A transaction not
/// finalized by then is better asked about later with `GET /tx/<digest>`; longer waits are cut
/// to this (the command line refuses them).
pub const WAIT_S_MAX: u64 = 3_600;

/// An answer of the API the client cannot use.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(
        "the API reports tick size {tick} micro-USDC for {instrument:?}: a tick size must be positive"
    )]
    TickNotPositive { instrument: String, tick: i64 },
    #[error(
        "the API reports instrument id {id} for {instrument:?}, beyond the exchange's 32-bit ids"
    )]
    InstrumentIdOutOfRange { instrument: String, id: u64 },
    #[error(
        "{answered} of the {named} validators named answered {path} and no {needed} of them gave \
         the same answer in {rounds} tries (at most {agreeing} did): one may be lying, or the \
         chain moved between every try"
    )]
    NoAgreement {
        path: String,
        named: usize,
        answered: usize,
        needed: usize,
        agreeing: usize,
        rounds: u32,
    },
    #[error(
        "only {answered} of the {named} validators named answered {path}; {needed} must give the \
         same answer before it is believed (first failure: {failure})"
    )]
    TooFewAnswered {
        path: String,
        named: usize,
        answered: usize,
        needed: usize,
        failure: String,
    },
}

/// The instant `wait` from now, `wait` cut to [`WAIT_S_MAX`] (so adding never overflows).
fn deadline_after(wait: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    let wait = wait.min(Duration::from_secs(WAIT_S_MAX));
    now.checked_add(wait).unwrap_or(now)
}

/// `text` as one path segment or query value: every byte outside `[A-Za-z0-9_-]` is
/// percent-encoded, so a line break, space, `/`, `?`, `#` or `..` cannot change the request.
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A response: status code and JSON body (or the body as a string when it is not JSON).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

/// Splits `http://host:port[/prefix]` into the address and path prefix.
fn parse_url(api: &str) -> Result<(String, String)> {
    ensure!(
        api.chars().all(|c| c.is_ascii_graphic()),
        "the API URL {api:?} holds a space, line break or other character a request cannot carry"
    );
    let rest = api
        .strip_prefix("http://")
        .context("the API URL must start with http://")?;
    let (host, prefix) = rest
        .split_once('/')
        .map_or((rest, String::new()), |(h, p)| {
            (h, format!("/{}", p.trim_end_matches('/')))
        });
    ensure!(!host.is_empty(), "the API URL names no host");
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok((host, if prefix == "/" { String::new() } else { prefix }))
}

/// One request with `Connection: close`; reads the whole response. To the first validator
/// when `api` names several.
pub fn request(api: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Response> {
    request_with(api, method, path, &[], body)
}

/// The validators `api` names, comma-separated.
fn validators(api: &str) -> impl Iterator<Item = &str> {
    api.split(',')
        .map(str::trim)
        .filter(|base| !base.is_empty())
}

/// How many of `named` validators must give the same answer before the client believes it:
/// `f + 1`, where `f = (named - 1) / 3` is the most of them consensus allows to be Byzantine,
/// and at least two whenever two or more are named. Among any `f + 1` at least one is honest,
/// and an honest validator answers from a state the chain finalized, so an answer `f + 1` gave
/// is true of some finalized state; `f` liars agreeing are not enough. Two or three named
/// would give `f = 0`, the first answer to arrive, and a liar that answers fastest would be
/// believed wherever it stands in the list: two must agree (the named are part of a larger
/// set whose `f` is at least one). With one validator named, its answer is taken.
pub fn agreement(named: usize) -> usize {
    let needed = named.saturating_sub(1) / 3 + 1;
    if named >= 2 { needed.max(2) } else { needed }
}

/// Tries of [`read_agreed`] before it gives up on validators that answer but do not agree.
const READ_ROUNDS: u32 = 20;

/// Pause between two tries of [`read_agreed`]: about two blocks, so validators that answered
/// from neighbouring heights have reached the same one.
const READ_RETRY: Duration = Duration::from_millis(100);

/// The part of a state view two validators must agree on: all of it but the height it was read
/// at (validators a block apart give the same account or book at different heights).
pub fn without_height(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("height");
    }
    body
}

/// Sends one request (`method`, `path`, `body`) to each of `bases` at once, each on its own
/// thread, and returns the answers as they arrive, tagged with the base's index. Not joined: a
/// validator that hangs holds only its own thread, up to the request's timeouts, and its late
/// answer goes nowhere once the receiver is dropped. At most one answer per base.
fn ask_every(
    bases: &[&str],
    method: &'static str,
    path: &str,
    body: Option<&Value>,
) -> std::sync::mpsc::Receiver<(usize, Result<Response>)> {
    let (sender, answers) = std::sync::mpsc::channel();
    for (i, base) in bases.iter().enumerate() {
        let (sender, base, path, body) = (
            sender.clone(),
            base.to_string(),
            path.to_string(),
            body.cloned(),
        );
        std::thread::spawn(move || {
            let _ = sender.send((i, request(&base, method, &path, body.as_ref())));
        });
    }
    answers
}

/// One try of a read of `path` (GET) from every validator `api` names, at once. `Some` answer
/// once [`agreement`] of them gave the same status and the same `compared` part of the body
/// (the first such answer to arrive; validators still answering are not waited for); `None`
/// when every validator answered or failed and no answer reached the agreement; an
/// [`AnswerError::TooFewAnswered`] when too few answered at all for any to.
fn read_round(
    api: &str,
    path: &str,
    compared: &dyn Fn(&Value) -> Value,
) -> Result<(Option<Response>, usize, usize)> {
    let bases: Vec<&str> = validators(api).collect();
    ensure!(!bases.is_empty(), "no API given");
    let needed = agreement(bases.len());
    let mut groups: Vec<(u16, String, usize)> = Vec::new();
    let mut answered = 0;
    let mut failure: Option<anyhow::Error> = None;
    let mut agreeing = 0;
    let mut outcome = None;
    // Bounded: one answer per validator, each within the request's timeouts.
    for (_, answer) in ask_every(&bases, "GET", path, None) {
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                failure.get_or_insert(error);
                continue;
            }
        };
        answered += 1;
        let key = compared(&response.body).to_string();
        let count = match groups
            .iter_mut()
            .find(|(status, k, _)| *status == response.status && *k == key)
        {
            Some(group) => {
                group.2 += 1;
                group.2
            }
            None => {
                groups.push((response.status, key, 1));
                1
            }
        };
        agreeing = agreeing.max(count);
        if count >= needed {
            outcome = Some(response);
            break;
        }
    }
    if outcome.is_none() && answered < needed {
        return Err(AnswerError::TooFewAnswered {
            path: path.to_string(),
            named: bases.len(),
            answered,
            needed,
            failure: failure.map_or_else(|| "none".into(), |e| format!("{e:#}")),
        }
        .into());
    }
    Ok((outcome, answered, agreeing))
}

/// Reads `path` (GET) from every validator `api` names and returns the answer [`agreement`] of
/// them gave (status, and the `compared` part of the body), trying again [`READ_RETRY`] later,
/// up to [`READ_ROUNDS`] times, while they answer but disagree. A lying validator is outvoted;
/// one that is down or hangs is not needed while enough others answer.
pub fn read_agreed(api: &str, path: &str, compared: &dyn Fn(&Value) -> Value) -> Result<Response> {
    let mut most = (0, 0);
    for round in 0..READ_ROUNDS {
        if round > 0 {
            std::thread::sleep(READ_RETRY);
        }
        let (answer, answered, agreeing) = read_round(api, path, compared)?;
        if let Some(answer) = answer {
            return Ok(answer);
        }
        most = (most.0.max(answered), most.1.max(agreeing));
    }
    let named = validators(api).count();
    Err(AnswerError::NoAgreement {
        path: path.to_string(),
        named,
        answered: most.0,
        needed: agreement(named),
        agreeing: most.1,
        rounds: READ_ROUNDS,
    }
    .into())
}

/// [`read_agreed`] on a successful answer's body; an error answer (agreed) becomes an error
/// naming its code.
pub fn get_agreed(api: &str, path: &str, compared: &dyn Fn(&Value) -> Value) -> Result<Value> {
    ok(read_agreed(api, path, compared)?)
}

/// [`request`] with extra headers (`name`, `value`; neither may hold a line break).
pub fn request_with(
    api: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<Response> {
    ensure!(
        headers
            .iter()
            .all(|(n, v)| !n.contains(['\r', '\n']) && !v.contains(['\r', '\n'])),
        "a header holds a line break"
    );
    ensure!(
        path.starts_with('/') && path.chars().all(|c| c.is_ascii_graphic()),
        "the request path {path:?} holds a space, line break or other character a request cannot carry"
    );
    let api = validators(api).next().context("no API given")?;
    let (host, prefix) = parse_url(api)?;
    let addr = host
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .context("no address")?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {api}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream
        .take(RESPONSE_BYTES_MAX)
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the answer from {api}"))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the answer has no HTTP head")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the answer has no status")?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body)?;
    }
    let text = String::from_utf8_lossy(&body).to_string();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(data.len() >= size, "truncated chunk");
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// A successful answer's body; an error answer becomes an error naming its code.
pub fn get_ok(api: &str, path: &str) -> Result<Value> {
    ok(request(api, "GET", path, None)?)
}

fn ok(response: Response) -> Result<Value> {
    if (200..300).contains(&response.status) {
        return Ok(response.body);
    }
    let code = response.body["code"].as_str().unwrap_or("?");
    let error = response.body["error"]
        .as_str()
        .map_or_else(|| response.body.to_string(), str::to_string);
    bail!("the API refused ({} {code}): {error}", response.status)
}

/// Hands one signed transaction to every validator `api` names, at once; returns the first
/// admission's answer, or when none admits, the first validator's refusal. A validator's
/// "admitted" is a claim no one can check: handed to one that drops it, the transaction would
/// wait unexecuted, kept by that validator to play within its minute. The others' answers are
/// not waited for once one admits (their requests go on while the caller follows the
/// transaction).
pub fn submit(api: &str, tx: &SignedTx) -> Result<Value> {
    let body = serde_json::json!({ "tx": keys::hex(&tx.encode()) });
    let bases: Vec<&str> = validators(api).collect();
    ensure!(!bases.is_empty(), "no API given");
    let mut refusals: Vec<Option<anyhow::Error>> = bases.iter().map(|_| None).collect();
    // Bounded: one answer per validator, each within the request's timeouts.
    for (i, answer) in ask_every(&bases, "POST", "/tx", Some(&body)) {
        match answer.and_then(ok) {
            Ok(admitted) => return Ok(admitted),
            Err(refusal) => refusals[i] = Some(refusal),
        }
    }
    let first = refusals.into_iter().flatten().next();
    Err(first.unwrap_or_else(|| anyhow::anyhow!("no validator answered")))
}

/// The nonce to sign `key`'s next transaction with: the clock in microseconds, or the next
/// the validator expects if that is higher. A clock nonce makes the transaction expire a
/// minute after it is signed (`bulwark_types::Nonce::time_check`), so a validator that was
/// handed it and kept it back cannot play it later, when the price has moved.
pub fn next_nonce(api: &str, key: &PrivateKey) -> Result<u64> {
    let response = read_agreed(
        api,
        &format!("/account/{}", keys::public_hex(&key.public_key())),
        &without_height,
    )?;
    if response.status == 404 {
        return Ok(clock_nonce().max(1));
    }
    signing_nonce(&ok(response)?)
}

/// The nonce to sign the next transaction with, from an account view already read: the
/// clock, or the view's `nonce_next` if higher ([`next_nonce`]).
fn signing_nonce(view: &Value) -> Result<u64> {
    Ok(nonce_in(view)?.max(clock_nonce()))
}

/// This machine's clock in microseconds since the Unix epoch: a time nonce.
fn clock_nonce() -> u64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros());
    u64::try_from(micros).unwrap_or(u64::MAX)
}

/// Looks an instrument up by name: (id, tick size in micro-USDC).
/// The tick size is positive (an [`AnswerError`] otherwise), so it can divide a price.
pub fn instrument(api: &str, name: &str) -> Result<(InstrumentId, i64)> {
    // Only the instrument's id and tick size are compared: the book's levels and marks move.
    let book = get_agreed(
        api,
        &format!("/book/{}?depth=1", path_segment(name)),
        &|body| serde_json::json!([body["instrument"]["id"], body["instrument"]["tick_size"]]),
    )?;
    instrument_in(&book, name)
}

/// The instrument's id and tick size (micro-USDC, positive) in a book answer.
fn instrument_in(book: &Value, name: &str) -> Result<(InstrumentId, i64)> {
    let id = book["instrument"]["id"]
        .as_u64()
        .context("the API gave no instrument id")?;
    let id = u32::try_from(id).map_err(|_| AnswerError::InstrumentIdOutOfRange {
        instrument: name.to_string(),
        id,
    })?;
    let tick_text = book["instrument"]["tick_size"]
        .as_str()
        .context("the API gave no tick size")?;
    let tick = parse_usdc(tick_text).context("the API's tick size")?;
    if tick <= 0 {
        return Err(AnswerError::TickNotPositive {
            instrument: name.to_string(),
            tick,
        }
        .into());
    }
    Ok((InstrumentId::new(id), tick))
}

/// Parses a decimal USDC amount (`99000`, `99000.5`) into micro-USDC, exactly.
pub fn parse_usdc(text: &str) -> Result<i64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    ensure!(
        !whole.is_empty() && whole.chars().all(|c| c.is_ascii_digit()),
        "`{text}` is not a positive decimal"
    );
    ensure!(
        frac.len() <= 6 && frac.chars().all(|c| c.is_ascii_digit()),
        "`{text}`: at most 6 decimals"
    );
    let whole: i64 = whole.parse().context("amount too large")?;
    let frac: i64 = format!("{frac:0<6}").parse().unwrap_or(0);
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .context("amount too large")
}

pub fn sign(key: &PrivateKey, nonce: u64, body: TxBody) -> SignedTx {
    body.signed(key, nonce)
}

/// What `order place` asks for.
pub struct PlaceOrder {
    pub instrument: String,
    pub side: Side,
    pub price_usdc: Option<String>,
    pub qty: i64,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub reduce_only: bool,
    pub client_order_id: Option<u64>,
}

/// Signs and submits an order, then waits (up to `wait`) for its finalized outcome.
pub fn place(api: &str, key: &PrivateKey, order: &PlaceOrder, wait: Duration) -> Result<Value> {
    let (id, tick) = instrument(api, &order.instrument)?;
    let order_type = match &order.price_usdc {
        Some(price) => {
            let micros = parse_usdc(price)?;
            // `instrument` checked that the tick is positive.
            ensure!(
                micros > 0 && micros.checked_rem(tick) == Some(0),
                "price must be a positive multiple of the tick size ({} USDC)",
                UnitPrice::from_micros(tick)
            );
            OrderType::Limit {
                price: UnitPrice::from_micros(micros),
                time_in_force: order.time_in_force,
                post_only: order.post_only,
            }
        }
        None => OrderType::Market,
    };
    let nonce = next_nonce(api, key)?;
    let request = OrderRequest {
        instrument: id,
        client_order_id: ClientOrderId::new(order.client_order_id.unwrap_or(nonce)),
        side: order.side,
        qty: Qty::from_contracts(order.qty),
        order_type,
        reduce_only: order.reduce_only,
        self_trade: SelfTradePrevention::CancelTaker,
    };
    submit_and_follow(api, &sign(key, nonce, TxBody::PlaceOrder(request)), wait)
}

/// Signs and submits a cancel of one order (by client or exchange order id), or of all.
pub fn cancel(
    api: &str,
    key: &PrivateKey,
    instrument: Option<&str>,
    order: Option<OrderRef>,
    wait: Duration,
) -> Result<Value> {
    let id = instrument
        .map(|name| instrument_id(api, name))
        .transpose()?;
    let body = match (id, order) {
        (Some(instrument), Some(order)) => TxBody::CancelOrder { instrument, order },
        (None, Some(_)) => bail!("cancelling one order needs --instrument"),
        (instrument, None) => TxBody::CancelAll { instrument },
    };
    let nonce = next_nonce(api, key)?;
    submit_and_follow(api, &sign(key, nonce, body), wait)
}

/// The account `key` owns or trades for, as the API shows it; an error when it has none.
fn account_of(api: &str, key: &PrivateKey) -> Result<Value> {
    let public = keys::public_hex(&key.public_key());
    let response = read_agreed(api, &format!("/account/{public}"), &without_height)?;
    ensure!(
        response.status != 404,
        "the exchange knows no account for key {public}"
    );
    let view = ok(response)?;
    ensure!(
        view["account_id"].is_u64(),
        "key {public} is bound to no account (role {})",
        view["role"]
    );
    Ok(view)
}

/// An amount of micro-USDC the API wrote as a decimal string (`"12.500000"`, `"-3.000000"`).
fn money_field(view: &Value, field: &str) -> Result<i128> {
    let text = view[field]
        .as_str()
        .with_context(|| format!("the API gave no `{field}`"))?;
    bulwark_gateway::deribit::convert::parse_decimal(text, 6)
        .with_context(|| format!("`{field}` is `{text}`"))
}

/// The nonce to sign the next transaction with, from an account view already read.
fn nonce_in(view: &Value) -> Result<u64> {
    view["nonce_next"]
        .as_u64()
        .context("the API gave no nonce_next")
}

/// Signs and submits a withdrawal of `amount` micro-USDC with the owner's key, waits for its
/// transaction to finalize, then (while the exchange holds it until prices observed after the
/// request: `bulwark_exchange::withdrawals`) for its release, all within `wait`. The answer
/// has the transaction's outcome and `withdrawal.state`: `paid` (the account's `withdrawn`
/// grew by the amount), `not_paid` (the hold ended without payment: the account no longer
/// covered it at its release, or its owner cancelled it), or `held` (still waiting at the
/// deadline; `bulwark account` shows it).
pub fn withdraw(api: &str, key: &PrivateKey, amount: i64, wait: Duration) -> Result<Value> {
    ensure!(amount > 0, "the amount must be positive");
    let deadline = deadline_after(wait);
    let before = account_of(api, key)?;
    let withdrawn_before = money_field(&before, "withdrawn")?;
    let nonce = signing_nonce(&before)?;
    let body = TxBody::Withdraw {
        amount: Money::from_micros(i128::from(amount)),
    };
    let mut answer = submit_and_follow(api, &sign(key, nonce, body), wait)?;
    if answer["outcome"]["result"] != "applied" {
        return Ok(answer);
    }
    let digest = answer["digest"]
        .as_str()
        .unwrap_or("?")
        .escape_debug()
        .to_string();
    let state = loop {
        let view = account_of(api, key).with_context(|| {
            format!(
                "the withdrawal's transaction {digest} was applied; following the withdrawal \
                 failed: see `bulwark account`"
            )
        })?;
        if view["withdrawal_pending"].is_null() {
            let paid = money_field(&view, "withdrawn")? - withdrawn_before;
            break serde_json::json!({
                "state": if paid >= i128::from(amount) { "paid" } else { "not_paid" },
                "amount": Money::from_micros(i128::from(amount)).to_string(),
                "withdrawn": view["withdrawn"],
                "height": view["height"],
            });
        }
        if std::time::Instant::now() >= deadline {
            break serde_json::json!({
                "state": "held",
                "amount": Money::from_micros(i128::from(amount)).to_string(),
                "pending": view["withdrawal_pending"],
                "height": view["height"],
                "note": "held until the account passes at prices observed after the request; see `bulwark account`",
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    answer["withdrawal"] = state;
    Ok(answer)
}

/// Signs and submits the cancellation of the account's withdrawal still held (owner's key),
/// then waits for its finalized outcome.
pub fn cancel_withdrawal(api: &str, key: &PrivateKey, wait: Duration) -> Result<Value> {
    let nonce = signing_nonce(&account_of(api, key)?)?;
    submit_and_follow(api, &sign(key, nonce, TxBody::CancelWithdrawal), wait)
}

fn instrument_id(api: &str, name: &str) -> Result<InstrumentId> {
    Ok(instrument(api, name)?.0)
}

/// Submits `tx` and polls its status until finalized (or dropped) or `wait` passes. Follows
/// the transaction by its own digest, not the one a validator's answer names, and believes a
/// status only when [`agreement`] of the validators `api` names gave it (a single liar's
/// "finalized, applied" would otherwise end the wait on an order that never executed).
pub fn submit_and_follow(api: &str, tx: &SignedTx, wait: Duration) -> Result<Value> {
    submit(api, tx)?;
    let digest = keys::hex(bulwark_node::mempool::tx_digest(tx).as_ref());
    let deadline = deadline_after(wait);
    loop {
        let path = format!("/tx/{}", path_segment(&digest));
        let (agreed, _, _) = read_round(api, &path, &|body| body.clone()).with_context(|| {
            let digest = digest.escape_debug();
            format!(
                "transaction {digest} was submitted; following it failed: ask again with \
                     GET /tx/{digest}"
            )
        })?;
        if let Some(status) = agreed.filter(|status| {
            status.status == 200
                && matches!(
                    status.body["status"].as_str(),
                    Some("finalized" | "dropped")
                )
        }) {
            return Ok(status.body);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(
                serde_json::json!({"digest": digest, "status": "pending", "note": "not finalized yet; ask again with GET /tx/<digest>"}),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// Request heads a fake API received, in order.
    type Seen = Arc<Mutex<Vec<String>>>;

    /// A fake API on 127.0.0.1 answering each request (`METHOD PATH`) with `answer`'s status
    /// and body, or by closing the connection when it gives `None`. Returns its URL and the
    /// request heads it received. The server thread lives as long as the test process.
    fn fake_api(answer: impl Fn(&str) -> Option<(u16, String)> + Send + 'static) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut raw = Vec::new();
                let mut byte = [0u8; 1];
                while !raw.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    raw.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&raw).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = stream.read_exact(&mut body);
                let line = head.lines().next().unwrap_or("").to_string();
                log.lock().unwrap().push(head);
                let target = line.rsplit_once(' ').map_or(line.as_str(), |(t, _)| t);
                if let Some((status, body)) = answer(target) {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            }
        });
        (url, seen)
    }

    /// A book answer for an instrument with `id` and `tick_size`.
    fn book(id: u64, tick_size: &str) -> String {
        serde_json::json!({"instrument": {"id": id, "tick_size": tick_size}}).to_string()
    }

    /// The answers of a healthy API to an order: the book, a fresh account, the submission
    /// (naming digest `d1`, which the client must not follow) and its finalized status.
    fn healthy(target: &str) -> Option<(u16, String)> {
        let body = match target {
            t if t.starts_with("GET /book/") => book(1, "0.5"),
            t if t.starts_with("GET /account/") => {
                r#"{"account_id":1,"nonce_next":1,"withdrawn":"0.000000","withdrawal_pending":null}"#
                    .into()
            }
            // A digest the client must not follow: it follows its transaction's own.
            "POST /tx" => r#"{"digest":"d1","status":"pending"}"#.into(),
            t if t.starts_with("GET /tx/") && t.len() == "GET /tx/".len() + 64 => {
                r#"{"status":"finalized","outcome":{"result":"applied"}}"#.into()
            }
            _ => return Some((404, r#"{"code":"not_found"}"#.into())),
        };
        Some((200, body))
    }

    fn order(instrument: &str) -> PlaceOrder {
        PlaceOrder {
            instrument: instrument.into(),
            side: Side::Buy,
            price_usdc: Some("100".into()),
            qty: 1,
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: false,
            reduce_only: false,
            client_order_id: None,
        }
    }

    #[test]
    fn a_tick_size_of_zero_from_the_api_is_a_typed_error_not_a_division_by_zero() {
        let key = keys::generate();
        for (tick, id, expected) in [("0", 1, "tick size 0"), ("0.000000", 1, "tick size 0")] {
            let (api, _) = fake_api(move |target| match target {
                t if t.starts_with("GET /book/") => Some((200, book(id, tick))),
                t => healthy(t),
            });
            let error = place(
                &api,
                &key,
                &order("BTC_USDC-PERPETUAL"),
                Duration::from_secs(1),
            )
            .unwrap_err();
            assert!(
                matches!(
                    error.downcast_ref::<AnswerError>(),
                    Some(AnswerError::TickNotPositive { tick: 0, .. })
                ),
                "{error:#}"
            );
            assert!(format!("{error:#}").contains(expected), "{error:#}");
        }
        let (api, _) = fake_api(|target| match target {
            t if t.starts_with("GET /book/") => Some((200, book(1 << 32, "0.5"))),
            t => healthy(t),
        });
        let error = instrument(&api, "BTC_USDC-PERPETUAL").unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<AnswerError>(),
                Some(AnswerError::InstrumentIdOutOfRange {
                    id: 4_294_967_296,
                    ..
                })
            ),
            "{error:#}"
        );
    }

    #[test]
    fn a_wait_beyond_what_an_instant_holds_is_cut_not_a_panic() {
        let key = keys::generate();
        let (api, _) = fake_api(healthy);
        let placed = place(&api, &key, &order("BTC_USDC-PERPETUAL"), Duration::MAX).unwrap();
        assert_eq!(placed["status"], "finalized", "{placed}");
        let cancelled = cancel(&api, &key, None, None, Duration::MAX).unwrap();
        assert_eq!(cancelled["status"], "finalized", "{cancelled}");
        let withdrawn = withdraw(&api, &key, 1_000_000, Duration::MAX).unwrap();
        assert_eq!(withdrawn["withdrawal"]["state"], "not_paid", "{withdrawn}");
        let cut = deadline_after(Duration::MAX) - std::time::Instant::now();
        assert!(cut <= Duration::from_secs(WAIT_S_MAX), "{cut:?}");
    }

    #[test]
    fn a_failure_while_following_a_submitted_transaction_names_its_digest() {
        let key = keys::generate();
        // The API takes the order, then drops every status request.
        let (api, _) = fake_api(|target| match target {
            t if t.starts_with("GET /tx/") => None,
            t => healthy(t),
        });
        let error = place(
            &api,
            &key,
            &order("BTC_USDC-PERPETUAL"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        let message = format!("{error:#}");
        let digest = message
            .split_once("transaction ")
            .and_then(|(_, rest)| rest.split_once(" was submitted"))
            .map(|(digest, _)| digest.to_string())
            .unwrap_or_default();
        assert!(
            digest.len() == 64
                && digest.chars().all(|c| c.is_ascii_hexdigit())
                && message.contains(&format!("GET /tx/{digest}")),
            "{message}"
        );
    }

    /// The URL of a port nothing listens on: connecting is refused at once.
    fn down() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    /// An API that lies: another instrument's id and a tick a hundred times larger, a nonce
    /// far ahead and a withdrawal paid, and every transaction finalized and applied at once.
    fn liar(target: &str) -> Option<(u16, String)> {
        let body = match target {
            t if t.starts_with("GET /book/") => book(2, "50"),
            t if t.starts_with("GET /account/") => {
                r#"{"account_id":9,"nonce_next":9000000000000000000,"withdrawn":"5.000000","withdrawal_pending":null}"#
                    .into()
            }
            t if t.starts_with("GET /tx/") => {
                r#"{"status":"finalized","outcome":{"result":"applied"}}"#.into()
            }
            t => return healthy(t),
        };
        Some((200, body))
    }

    /// An honest API whose chain has not yet finalized the client's transaction.
    fn honest_pending(target: &str) -> Option<(u16, String)> {
        match target {
            t if t.starts_with("GET /tx/") => Some((200, r#"{"status":"pending"}"#.into())),
            t => healthy(t),
        }
    }

    #[test]
    fn one_lying_validator_of_four_is_outvoted_on_what_the_command_line_reads() {
        let key = keys::generate();
        let apis = [
            fake_api(liar).0,
            fake_api(honest_pending).0,
            fake_api(honest_pending).0,
            fake_api(honest_pending).0,
        ]
        .join(",");
        // Named first, the liar was the one read: its id put the order on another instrument.
        assert_eq!(
            instrument(&apis, "BTC_USDC-PERPETUAL").unwrap(),
            (InstrumentId::new(1), 500_000)
        );
        let nonce = next_nonce(&apis, &key).unwrap();
        assert!(nonce < 9_000_000_000_000_000_000, "{nonce}");
        // Its "finalized, applied" alone does not end the wait: the honest three say pending.
        let placed = place(
            &apis,
            &key,
            &order("BTC_USDC-PERPETUAL"),
            Duration::from_millis(500),
        )
        .unwrap();
        assert_eq!(placed["status"], "pending", "{placed}");
        let withdrawn = withdraw(&apis, &key, 1_000_000, Duration::from_millis(500)).unwrap();
        assert_eq!(withdrawn["status"], "pending", "{withdrawn}");
        // Named alone, it is believed: one validator is all the client was given.
        let alone = fake_api(liar).0;
        assert_eq!(
            instrument(&alone, "BTC_USDC-PERPETUAL").unwrap().0,
            InstrumentId::new(2)
        );
    }

    #[test]
    fn validators_down_are_not_needed_while_enough_others_agree() {
        // Two of four agreeing is enough: one down, one lying.
        let apis = [
            down(),
            fake_api(liar).0,
            fake_api(healthy).0,
            fake_api(healthy).0,
        ]
        .join(",");
        assert_eq!(
            instrument(&apis, "BTC_USDC-PERPETUAL").unwrap().0,
            InstrumentId::new(1)
        );
        // Two named, one lying: whichever answered first was believed; now neither is.
        let apis = [fake_api(healthy).0, fake_api(liar).0].join(",");
        let error = instrument(&apis, "BTC_USDC-PERPETUAL").unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<AnswerError>(),
                Some(AnswerError::NoAgreement { needed: 2, .. })
            ),
            "{error:#}"
        );
        // One answer of four is not enough, whoever gives it: a typed error naming the count.
        let apis = [down(), down(), down(), fake_api(healthy).0].join(",");
        let error = instrument(&apis, "BTC_USDC-PERPETUAL").unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<AnswerError>(),
                Some(AnswerError::TooFewAnswered {
                    named: 4,
                    answered: 1,
                    needed: 2,
                    ..
                })
            ),
            "{error:#}"
        );
    }

    #[test]
    fn validators_that_never_agree_are_a_typed_error_not_a_guess() {
        let apis: Vec<String> = (1..=4)
            .map(|id| {
                fake_api(move |target| match target {
                    t if t.starts_with("GET /book/") => Some((200, book(id, "0.5"))),
                    t => healthy(t),
                })
                .0
            })
            .collect();
        let error = instrument(&apis.join(","), "BTC_USDC-PERPETUAL").unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<AnswerError>(),
                Some(AnswerError::NoAgreement {
                    named: 4,
                    answered: 4,
                    needed: 2,
                    agreeing: 1,
                    ..
                })
            ),
            "{error:#}"
        );
        assert_eq!(
            [1, 2, 3, 4, 5, 7, 10].map(agreement),
            [1, 2, 2, 2, 2, 3, 4],
            "f + 1 of n named, f = (n - 1) / 3, and two once two are named"
        );
    }

    #[test]
    fn a_name_goes_into_the_request_percent_encoded() {
        let key = keys::generate();
        let (api, seen) = fake_api(|target| match target {
            // Nothing resolves the hostile name: the API refuses it as it would any unknown.
            t if t.starts_with("GET /book/BTC_USDC-PERPETUAL?") => healthy(t),
            _ => Some((400, r#"{"code":"instrument_name_invalid"}"#.into())),
        });
        let hostile = "BTC HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /evil";
        assert!(place(&api, &key, &order(hostile), Duration::from_secs(1)).is_err());
        assert!(place(&api, &key, &order("../../status"), Duration::from_secs(1)).is_err());
        let heads = seen.lock().unwrap().clone();
        assert_eq!(heads.len(), 2, "{heads:?}");
        assert!(
            heads[0].starts_with(
                "GET /book/BTC%20HTTP%2F1%2E1%0D%0AX-Injected%3A%20yes%0D%0A%0D%0AGET%20%2Fevil?depth=1 HTTP/1.1\r\n"
            ),
            "{heads:?}"
        );
        assert!(!heads[0].contains("X-Injected: yes"), "{heads:?}");
        assert!(
            heads[1].starts_with("GET /book/%2E%2E%2F%2E%2E%2Fstatus?depth=1 HTTP/1.1\r\n"),
            "{heads:?}"
        );
        assert_eq!(
            path_segment("BTC_USDC-25DEC26-100000-C"),
            "BTC_USDC-25DEC26-100000-C"
        );
        assert_eq!(path_segment("a b/é"), "a%20b%2F%C3%A9");
        for bad in ["http://h/pre fix", "http://h\r\nX: y", "http://h:80/\u{7f}"] {
            assert!(parse_url(bad).is_err(), "{bad:?}");
        }
        let error = request(&api, "GET", "/x y", None).unwrap_err();
        assert!(error.to_string().contains("request path"), "{error}");
    }

    #[test]
    fn usdc_amounts_parse_exactly() {
        assert_eq!(parse_usdc("99000").unwrap(), 99_000_000_000);
        assert_eq!(parse_usdc("0.5").unwrap(), 500_000);
        assert_eq!(parse_usdc("1.000001").unwrap(), 1_000_001);
        for bad in [
            "",
            "-1",
            "1.0000001",
            "1e5",
            "abc",
            ".5",
            "99999999999999999999",
        ] {
            assert!(parse_usdc(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_and_responses_parse() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080").unwrap(),
            ("127.0.0.1:8080".into(), String::new())
        );
        assert_eq!(
            parse_url("http://h/api/").unwrap(),
            ("h:80".into(), "/api".into())
        );
        assert!(parse_url("https://h").is_err());
        let raw =
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\r\n{\"code\":\"x\"}";
        let response = parse_response(raw).unwrap();
        assert_eq!(
            (response.status, response.body["code"].as_str()),
            (404, Some("x"))
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().body["a"], 1);
    }
}
