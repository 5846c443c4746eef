//! One WebSocket connection: reads requests, answers them (through the shared dispatcher for
//! every method but the connection's own), forwards the feed to its subscriptions, keeps the
//! heartbeat, and on its end cancels the key's orders if asked to.
//!
//! Owns: the connection's authentication ([`Auth`]), subscriptions, heartbeat, cancel-on-
//! disconnect flag, and its outgoing queue (bounded in messages and bytes; a client that
//! does not read is sent a close frame with the reason and dropped, and so is one whose feed
//! receiver lags). A writer task drains the queue; everything else runs on the session task.
//! Never: waits on the socket to read the next request (requests run beside the loop, at most
//! [`WsConfig::in_flight_max`] at once); holds the replica's lock across an `.await`.

use super::WsConfig;
use super::channels::{self, Subscription};
use crate::deribit::error::{self, RpcError};
use crate::deribit::methods::{self, Params};
use crate::feed::{BlockUpdate, Interest};
use crate::gateway::Gateway;
use crate::limits::Budget;
use crate::server::{envelope_body, grant, now_us, principal};
use bulwark_node::api::connections::ConnectionSlot;
use bulwark_types::{AccountId, TxBody};
use futures::stream::{FuturesUnordered, SplitSink, SplitStream};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Socket = WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;
type Answer = Pin<Box<dyn Future<Output = (Value, u64, Result<Value, RpcError>)> + Send>>;

/// The API key a connection authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub client_id: String,
    pub account: AccountId,
    /// The key's agent (a block revoking it ends the connection).
    pub agent: bulwark_types::PublicKey,
}

/// Why the server ends a connection: the close frame's code and reason (at most 123 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closing {
    pub code: u16,
    pub reason: String,
    /// Whether what is queued is written before the close frame (not for a client that
    /// does not read: its queue is dropped).
    pub flush: bool,
}

impl Closing {
    fn new(code: CloseCode, reason: &str) -> Self {
        // A close frame's reason is at most 123 bytes; ours are ASCII, cut on a character
        // boundary anyway.
        let mut reason = reason.to_string();
        let mut end = reason.len().min(120);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        Self {
            code: u16::from(code),
            flush: !reason.starts_with("slow_consumer"),
            reason,
        }
    }
}

/// Close reasons clients can match on.
pub const REASON_SLOW: &str = "slow_consumer: outgoing queue full, the client reads too slowly";
pub const REASON_LAGGED: &str = "slow_consumer: fell behind the block feed";
pub const REASON_HEARTBEAT: &str = "heartbeat: no public/test answer to test_request";
pub const REASON_OVERSIZED: &str = "message_too_big: frame over the gateway's bound";
pub const REASON_PROTOCOL: &str = "protocol_error: a frame broke RFC 6455";
pub const REASON_NOT_UTF8: &str = "invalid_payload: a text message that is not UTF-8";
pub const REASON_REVOKED: &str = "api_key_revoked: the owner's RevokeAgent is final";

struct Subscribed {
    subscription: Box<dyn Subscription>,
    interests: Vec<Interest>,
    /// The height its snapshot was taken at: blocks at or below it are in the snapshot.
    since: u64,
}

struct Session {
    gateway: Arc<Gateway>,
    config: WsConfig,
    address: String,
    out: mpsc::Sender<String>,
    queued_bytes: Arc<AtomicUsize>,
    closing: Option<Closing>,
    auth: Option<Auth>,
    subscriptions: BTreeMap<String, Subscribed>,
    heartbeat: Option<tokio::time::Interval>,
    /// A `test_request` was sent and not yet answered by `public/test`.
    heartbeat_awaited: bool,
    cancel_on_disconnect: bool,
    /// Snapshot notifications of a subscription, sent right after its answer.
    deferred: Vec<(String, Value)>,
}

/// Runs the connection until it ends.
pub(super) async fn run(
    gateway: Arc<Gateway>,
    socket: Socket,
    peer: SocketAddr,
    permit: ConnectionSlot,
) {
    let config = gateway.config.ws;
    let (sink, mut stream) = socket.split();
    let (out, out_receiver) = mpsc::channel(config.queue_messages_max);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let (close, close_receiver) = watch::channel(None::<Closing>);
    let writer = tokio::spawn(write_loop(
        sink,
        out_receiver,
        queued_bytes.clone(),
        close_receiver,
        config,
    ));
    // Created before any snapshot this connection takes (see `crate::feed`).
    let mut updates = gateway.replica.feed().subscribe();
    let mut session = Session {
        gateway,
        config,
        address: crate::server::Peer(peer).client(),
        out,
        queued_bytes,
        closing: None,
        auth: None,
        subscriptions: BTreeMap::new(),
        heartbeat: None,
        heartbeat_awaited: false,
        cancel_on_disconnect: false,
        deferred: Vec::new(),
    };
    let mut answers: FuturesUnordered<Answer> = FuturesUnordered::new();
    loop {
        let heartbeat = async {
            match session.heartbeat.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = stream.next() => {
                if !session.frame(frame, &mut answers) {
                    break;
                }
            }
            update = updates.recv() => match update {
                Ok(update) => session.block(&update),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    session.close(CloseCode::Policy, REASON_LAGGED);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = heartbeat => session.heartbeat_tick(),
            Some((id, us_in, outcome)) = answers.next(), if !answers.is_empty() => {
                session.answer(id, us_in, outcome);
            }
        }
        if let Some(closing) = session.closing.clone() {
            let _ = close.send(Some(closing));
            break;
        }
    }
    // Ends the writer: a close frame (with the reason, if the server closes) and goodbye.
    let server_closed = close.borrow().is_some();
    if !server_closed {
        let _ = close.send(Some(Closing::new(CloseCode::Normal, "")));
    }
    session.finish();
    drop(session);
    if server_closed {
        drain_until_closed(&mut stream, config).await;
    }
    drop(stream);
    let _ = writer.await;
    drop(permit);
}

/// After the server's close frame: reads (and drops) what the client still sends until it
/// answers the close, at most the close timeout. A socket closed with unread input is reset,
/// and a reset loses the close frame (and its reason) before the client reads it.
async fn drain_until_closed(stream: &mut SplitStream<Socket>, config: WsConfig) {
    let _ = tokio::time::timeout(config.close_timeout, async {
        while let Some(Ok(message)) = stream.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
}

/// Writes queued messages until told to close; then the close frame, within the close
/// timeout (a client that does not read loses it with the socket).
async fn write_loop(
    mut sink: SplitSink<Socket, Message>,
    mut queue: mpsc::Receiver<String>,
    queued_bytes: Arc<AtomicUsize>,
    mut close: watch::Receiver<Option<Closing>>,
    config: WsConfig,
) {
    loop {
        let text = tokio::select! {
            biased;
            _ = close.changed() => break,
            text = queue.recv() => match text {
                Some(text) => text,
                None => break,
            },
        };
        let size = text.len();
        let sent = tokio::select! {
            biased;
            _ = close.changed() => break,
            sent = sink.send(Message::text(text)) => sent,
        };
        queued_bytes.fetch_sub(size, Ordering::Relaxed);
        if sent.is_err() {
            return;
        }
    }
    let closing = close.borrow().clone();
    let flush = closing.as_ref().is_some_and(|c| c.flush);
    let frame = closing.map(|c| CloseFrame {
        code: CloseCode::from(c.code),
        reason: c.reason.into(),
    });
    let _ = tokio::time::timeout(config.close_timeout, async {
        while flush && let Ok(text) = queue.try_recv() {
            if sink.send(Message::text(text)).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(frame)).await;
        let _ = sink.close().await;
    })
    .await;
}

/// The answer to a request the session handles itself.
enum Handled {
    Now(Result<Value, RpcError>),
    /// Answered later, beside the loop (dispatched methods).
    Later(Answer),
    /// Answered, then the connection closes (`private/logout`).
    Close(Result<Value, RpcError>),
}

impl Session {
    /// One read from the socket; false when the connection is over.
    fn frame(
        &mut self,
        frame: Option<Result<Message, WsError>>,
        answers: &mut FuturesUnordered<Answer>,
    ) -> bool {
        match frame {
            Some(Ok(Message::Text(text))) => self.request(text.as_str(), answers),
            Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.request(text, answers),
                Err(_) => self.answer(Value::Null, now_us(), Err(error::parse_error())),
            },
            Some(Ok(Message::Close(_))) | None => return false,
            // Pings and pongs: tungstenite answers pings itself.
            Some(Ok(_)) => {}
            Some(Err(WsError::Capacity(_))) => {
                let error = RpcError::new(error::BAD_REQUEST, "bad_request").with_data(json!({
                    "reason": format!("message over {} bytes", self.config.frame_bytes_max)
                }));
                self.answer(Value::Null, now_us(), Err(error));
                self.close(CloseCode::Size, REASON_OVERSIZED);
            }
            // RFC 6455 section 7.4.1: a frame that breaks the protocol is answered with 1002,
            // a text message that is not UTF-8 with 1007, so the client learns which it was.
            Some(Err(WsError::Protocol(error))) => {
                tracing::trace!(%error, "WebSocket protocol error");
                self.close(CloseCode::Protocol, REASON_PROTOCOL);
            }
            Some(Err(WsError::Utf8(_))) => self.close(CloseCode::Invalid, REASON_NOT_UTF8),
            Some(Err(error)) => {
                tracing::trace!(%error, "WebSocket read failed");
                return false;
            }
        }
        true
    }

    /// Queues a message; a full queue ends the connection (the client reads too slowly).
    fn send(&mut self, text: String) {
        if self.closing.is_some() {
            return;
        }
        let size = text.len();
        let queued = self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size;
        if queued > self.config.queue_bytes_max || self.out.try_send(text).is_err() {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            self.close(CloseCode::Policy, REASON_SLOW);
        }
    }

    fn close(&mut self, code: CloseCode, reason: &str) {
        if self.closing.is_none() {
            self.closing = Some(Closing::new(code, reason));
        }
    }

    fn answer(&mut self, id: Value, us_in: u64, outcome: Result<Value, RpcError>) {
        let (_, body) = envelope_body(us_in, Some(&id), outcome);
        self.send(body.to_string());
    }

    fn notify(&mut self, channel: &str, data: Value) {
        let text = json!({
            "jsonrpc": "2.0",
            "method": "subscription",
            "params": {"channel": channel, "data": data},
        })
        .to_string();
        self.send(text);
    }

    /// One text frame: a JSON-RPC request.
    fn request(&mut self, text: &str, answers: &mut FuturesUnordered<Answer>) {
        let us_in = now_us();
        let (id, method, params) = match parse_request(text) {
            Ok(request) => request,
            Err((id, error)) => {
                // A frame that is no request still costs the address a read credit.
                let outcome = if self.charge(false) {
                    Err(error)
                } else {
                    Err(error::too_many_requests())
                };
                return self.answer(id, us_in, outcome);
            }
        };
        let method = method.as_str();
        let engine = methods::is_engine_call(method);
        if !self.charge(engine) {
            return self.answer(id, us_in, Err(error::too_many_requests()));
        }
        match self.handle(method, &params, engine, answers.len()) {
            Handled::Now(outcome) => {
                self.answer(id, us_in, outcome);
                for (channel, data) in std::mem::take(&mut self.deferred) {
                    self.notify(&channel, data);
                }
            }
            Handled::Close(outcome) => {
                self.answer(id, us_in, outcome);
                self.close(CloseCode::Normal, "logout");
            }
            Handled::Later(future) => {
                let id = id.clone();
                answers.push(Box::pin(async move {
                    let outcome = future.await;
                    (id, us_in, outcome.2)
                }));
            }
        }
    }

    /// Takes one request from the address's credits (the matching engine's or the reads').
    fn charge(&self, engine: bool) -> bool {
        let rates = self.gateway.config.rates;
        let (budget, rate) = if engine {
            (Budget::Engine, rates.address_engine)
        } else {
            (Budget::Reads, rates.address_reads)
        };
        self.gateway
            .limiter()
            .take(&self.address, budget, rate, Instant::now())
    }

    fn handle(&mut self, method: &str, params: &Params, engine: bool, in_flight: usize) -> Handled {
        match method {
            "public/auth" => Handled::Now(self.authenticate(params)),
            "public/hello" | "public/test" => {
                if method == "public/test" {
                    self.heartbeat_awaited = false;
                }
                Handled::Now(Ok(json!({"version": env!("CARGO_PKG_VERSION")})))
            }
            "private/subscribe" | "private/unsubscribe" | "private/unsubscribe_all"
                if self.auth.is_none() =>
            {
                Handled::Now(Err(not_authenticated()))
            }
            "public/subscribe" | "private/subscribe" => Handled::Now(self.subscribe(params)),
            "public/unsubscribe" | "private/unsubscribe" => Handled::Now(self.unsubscribe(params)),
            "public/unsubscribe_all" | "private/unsubscribe_all" => {
                let names: Vec<String> = self.subscriptions.keys().cloned().collect();
                for name in names {
                    self.drop_subscription(&name);
                }
                Handled::Now(Ok(json!("ok")))
            }
            "public/set_heartbeat" => Handled::Now(self.set_heartbeat(params)),
            "public/disable_heartbeat" => {
                self.heartbeat = None;
                self.heartbeat_awaited = false;
                Handled::Now(Ok(json!("ok")))
            }
            "private/enable_cancel_on_disconnect"
            | "private/disable_cancel_on_disconnect"
            | "private/get_cancel_on_disconnect" => {
                Handled::Now(self.cancel_on_disconnect(method, params))
            }
            "private/logout" => match self.auth {
                Some(_) => Handled::Close(Ok(json!("ok"))),
                None => Handled::Now(Err(not_authenticated())),
            },
            _ => {
                if in_flight >= self.config.in_flight_max {
                    return Handled::Now(Err(error::too_many_requests().with_data(json!({
                        "reason": format!("at most {} requests in flight per connection", self.config.in_flight_max)
                    }))));
                }
                let principal = if method.starts_with("private/") {
                    let Some(auth) = &self.auth else {
                        return Handled::Now(Err(not_authenticated()));
                    };
                    match principal(&self.gateway, &auth.client_id, engine) {
                        Ok(principal) => Some(principal),
                        Err(error) => return Handled::Now(Err(error)),
                    }
                } else {
                    None
                };
                let gateway = self.gateway.clone();
                let method = method.to_string();
                let params = params.clone();
                Handled::Later(Box::pin(async move {
                    let call = methods::dispatch(&gateway, &method, &params, principal.as_ref());
                    // The HTTP transport's bound on one request (order calls wait within it).
                    let outcome = tokio::time::timeout(gateway.config.request_timeout, call)
                        .await
                        .unwrap_or_else(|_| Err(error::retry("request timed out")));
                    (Value::Null, 0, outcome)
                }))
            }
        }
    }

    /// `public/auth`: binds the connection to an API key (and issues bearer tokens). A
    /// connection stays bound to its first key: authenticating it again with that key (a
    /// refresh) is fine, with another key it is refused. Its `user.*` subscriptions and
    /// cancel-on-disconnect belong to the first key's account, and the revocation of that key
    /// is what closes it; switching keys would carry them to another key's authority (a holder
    /// of a revoked key could keep reading its account's orders, and cancel-on-disconnect would
    /// cancel the second account's orders instead of the first's).
    fn authenticate(&mut self, params: &Params) -> Result<Value, RpcError> {
        let (principal, answer) = grant(&self.gateway, params)?;
        if let Some(bound) = &self.auth
            && bound.client_id != principal.key.stored.client_id
        {
            return Err(RpcError::new(error::FORBIDDEN, "forbidden").with_data(json!({
                "reason": format!(
                    "this connection is authenticated as {}; open another connection for another key",
                    bound.client_id
                )
            })));
        }
        self.auth = Some(Auth {
            client_id: principal.key.stored.client_id.clone(),
            account: principal.account,
            agent: {
                use commonware_cryptography::Signer as _;
                principal.key.agent.public_key()
            },
        });
        Ok(answer)
    }

    fn channel_names(params: &Params) -> Result<Vec<String>, RpcError> {
        let Some(Value::Array(list)) = params.0.get("channels") else {
            return Err(RpcError::missing_param("channels"));
        };
        list.iter()
            .map(|c| {
                c.as_str()
                    .filter(|c| c.len() <= 128)
                    .map(str::to_string)
                    .ok_or_else(|| RpcError::invalid_param("channels", "a list of channel names"))
            })
            .collect()
    }

    /// Subscribes to every channel named, or (any name bad) to none.
    fn subscribe(&mut self, params: &Params) -> Result<Value, RpcError> {
        let mut names = Self::channel_names(params)?;
        names.sort();
        names.dedup();
        let fresh: Vec<&String> = names
            .iter()
            .filter(|n| !self.subscriptions.contains_key(*n))
            .collect();
        if self.subscriptions.len() + fresh.len() > self.config.subscriptions_max {
            return Err(RpcError::new(error::BAD_REQUEST, "bad_request").with_data(json!({
                "reason": format!("at most {} subscriptions per connection", self.config.subscriptions_max)
            })));
        }
        let mut notifications = Vec::new();
        {
            let state = self.gateway.replica.lock();
            let exchange = state.chain.finalized();
            let context = channels::Context {
                exchange,
                auth: self.auth.as_ref(),
            };
            let parsed = fresh
                .iter()
                .map(|name| Ok(((*name).clone(), channels::parse(name, &context)?)))
                .collect::<Result<Vec<_>, RpcError>>()?;
            let feed = self.gateway.replica.feed();
            for (name, mut subscription) in parsed {
                let interests = subscription.interests();
                for interest in &interests {
                    feed.register(*interest, exchange);
                }
                for data in subscription.snapshot(exchange, &state.index) {
                    notifications.push((name.clone(), data));
                }
                self.subscriptions.insert(
                    name,
                    Subscribed {
                        subscription,
                        interests,
                        since: exchange.height().get(),
                    },
                );
            }
        }
        // The answer goes first, the snapshots right after it (`request` sends them).
        self.deferred = notifications;
        Ok(json!(names))
    }

    fn drop_subscription(&mut self, name: &str) -> bool {
        let Some(subscribed) = self.subscriptions.remove(name) else {
            return false;
        };
        let feed = self.gateway.replica.feed();
        for interest in subscribed.interests {
            feed.unregister(interest);
        }
        true
    }

    fn unsubscribe(&mut self, params: &Params) -> Result<Value, RpcError> {
        let names = Self::channel_names(params)?;
        let removed: Vec<String> = names
            .into_iter()
            .filter(|name| self.drop_subscription(name))
            .collect();
        Ok(json!(removed))
    }

    fn set_heartbeat(&mut self, params: &Params) -> Result<Value, RpcError> {
        let seconds = params
            .integer("interval")?
            .ok_or_else(|| RpcError::missing_param("interval"))?;
        let interval = std::time::Duration::from_secs(seconds);
        if interval < self.config.heartbeat_min || interval > self.config.heartbeat_max {
            return Err(RpcError::invalid_param(
                "interval",
                &format!(
                    "between {} and {} seconds",
                    self.config.heartbeat_min.as_secs(),
                    self.config.heartbeat_max.as_secs()
                ),
            ));
        }
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.heartbeat = Some(timer);
        self.heartbeat_awaited = false;
        Ok(json!("ok"))
    }

    /// Each interval: a `test_request`, unless the last one is unanswered (then goodbye).
    fn heartbeat_tick(&mut self) {
        if self.heartbeat_awaited {
            self.close(CloseCode::Policy, REASON_HEARTBEAT);
            return;
        }
        self.heartbeat_awaited = true;
        self.send(
            json!({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})
                .to_string(),
        );
    }

    fn cancel_on_disconnect(&mut self, method: &str, params: &Params) -> Result<Value, RpcError> {
        if self.auth.is_none() {
            return Err(not_authenticated());
        }
        match params.text("scope").as_deref() {
            None | Some("connection") => {}
            Some("account") => {
                return Err(RpcError::invalid_param(
                    "scope",
                    "only connection scope is supported",
                ));
            }
            Some(_) => return Err(RpcError::invalid_param("scope", "connection")),
        }
        match method {
            "private/enable_cancel_on_disconnect" => self.cancel_on_disconnect = true,
            "private/disable_cancel_on_disconnect" => self.cancel_on_disconnect = false,
            _ => {
                return Ok(json!({"scope": "connection", "enabled": self.cancel_on_disconnect}));
            }
        }
        Ok(json!("ok"))
    }

    /// One block's update, to every subscription it concerns.
    fn block(&mut self, update: &BlockUpdate) {
        if let Some(auth) = &self.auth
            && update.revoked_agents.contains(&auth.agent)
        {
            // Nothing more for a revoked key: not even this block's notifications.
            self.cancel_on_disconnect = false;
            self.close(CloseCode::Policy, REASON_REVOKED);
            return;
        }
        let mut notifications = Vec::new();
        for (name, subscribed) in &mut self.subscriptions {
            if update.height <= subscribed.since {
                continue;
            }
            for data in subscribed.subscription.on_block(update) {
                notifications.push((name.clone(), data));
            }
        }
        for (channel, data) in notifications {
            self.notify(&channel, data);
        }
    }

    /// The connection ended: interests dropped; the key's orders cancelled if asked.
    fn finish(&mut self) {
        let names: Vec<String> = self.subscriptions.keys().cloned().collect();
        for name in names {
            self.drop_subscription(&name);
        }
        if !self.cancel_on_disconnect {
            return;
        }
        let Some(auth) = self.auth.clone() else {
            return;
        };
        let gateway = self.gateway.clone();
        tokio::spawn(async move {
            let Some(key) = gateway.key(&auth.client_id) else {
                return;
            };
            match gateway
                .execute(&key, TxBody::CancelAll { instrument: None })
                .await
            {
                Ok(result) => tracing::info!(
                    client_id = auth.client_id,
                    cancelled = result.cancelled,
                    "cancel on disconnect"
                ),
                Err(error) => tracing::warn!(
                    client_id = auth.client_id,
                    code = error.code,
                    "cancel on disconnect failed"
                ),
            }
        });
    }
}

/// A frame's `id` (`null` if none), `method` and `params`, or the `id` and the error to answer.
fn parse_request(text: &str) -> Result<(Value, String, Params), (Value, RpcError)> {
    let request = crate::server::request_object(text.as_bytes())
        .map_err(|(id, refused)| (id.unwrap_or(Value::Null), refused))?;
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return Err((
            id,
            RpcError::new(error::INVALID_REQUEST, "Invalid Request")
                .with_data(json!({"reason": "method must be a string"})),
        ));
    };
    let params = match request.get("params") {
        None | Some(Value::Null) => Params::default(),
        Some(Value::Object(map)) => Params(map.clone()),
        Some(_) => {
            return Err((id, RpcError::invalid_param("params", "must be an object")));
        }
    };
    Ok((id, method.to_string(), params))
}

fn not_authenticated() -> RpcError {
    RpcError::new(error::AUTHORIZATION_REQUIRED, "authorization_required")
        .with_data(json!({"reason": "call public/auth on this connection first"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_that_are_not_requests_get_json_rpc_codes_and_their_id() {
        let code = |text: &str| {
            parse_request(text)
                .map(|_| ())
                .map_err(|(id, e)| (id, e.code))
        };
        assert_eq!(code("{nope"), Err((Value::Null, error::PARSE_ERROR)));
        assert_eq!(code("[1]"), Err((Value::Null, error::INVALID_REQUEST)));
        assert_eq!(code(r#"{"id":3}"#), Err((json!(3), error::INVALID_REQUEST)));
        assert_eq!(
            code(r#"{"id":"x","method":7}"#),
            Err((json!("x"), error::INVALID_REQUEST))
        );
        assert_eq!(
            code(r#"{"id":4,"method":"public/test","params":[]}"#),
            Err((json!(4), error::INVALID_PARAMS))
        );
        // A member twice is refused (`crate::strict_json`), with the id when `id` is unique.
        let amounts = r#"{"id":6,"method":"private/buy","params":{"amount":1,"amount":1000}}"#;
        assert_eq!(code(amounts), Err((json!(6), error::INVALID_REQUEST)));
        assert_eq!(
            code(r#"{"id":6,"id":7,"method":"public/test"}"#),
            Err((Value::Null, error::INVALID_REQUEST))
        );
        let (id, method, params) =
            parse_request(r#"{"jsonrpc":"2.0","id":5,"method":"public/ticker","params":{"a":1}}"#)
                .unwrap();
        assert_eq!(
            (id, method.as_str(), params.text("a")),
            (json!(5), "public/ticker", Some("1".into()))
        );
        assert!(
            parse_request(r#"{"method":"public/test"}"#)
                .unwrap()
                .0
                .is_null()
        );
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let long = Closing::new(CloseCode::Policy, &"é".repeat(100));
        assert!(long.reason.len() <= 123 && long.flush);
        assert!(
            !Closing::new(CloseCode::Policy, REASON_SLOW).flush,
            "a slow reader's queue is dropped"
        );
        for reason in [
            REASON_SLOW,
            REASON_LAGGED,
            REASON_HEARTBEAT,
            REASON_OVERSIZED,
            REASON_REVOKED,
            REASON_PROTOCOL,
            REASON_NOT_UTF8,
        ] {
            assert!(reason.len() <= 123, "{reason}");
        }
    }
}
