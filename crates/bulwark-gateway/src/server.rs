//! The gateway's HTTP transport (axum on hyper, HTTP/1.1).
//!
//! Routes:
//! - `GET /api/v2/{public|private}/{method}?query` and `POST` of a JSON-RPC body
//!   (`{"jsonrpc":"2.0","id":..,"method":..,"params":{..}}`) on the same paths: Deribit's
//!   envelope `{"jsonrpc":"2.0","result"|"error",usIn,usOut,usDiff,testnet:false}` (plus `id`
//!   when the request carried one), HTTP 400 on errors.
//! - `POST /gateway/v1/apikeys` `{"owner": "<hex>", "nonce": N}`: a pending API key
//!   (`client_id`, `client_secret`, `agent`, `proof`); `GET /gateway/v1/apikeys?owner=<hex>`:
//!   that owner's keys and their state (never secrets).
//! - `GET /gateway/v1/status`: the replica's height, halt and the lies seen.
//! - `GET /ws/api/v2`: the WebSocket transport ([`crate::ws`]).
//!
//! Owns: authentication of private calls (`deri-hmac-sha256` over the raw request-target
//! and body, replay cache; or `Authorization: bearer <access_token>` from `public/auth`;
//! key state, `principal`), rate limits per address and per key, and the bounds:
//! body ([`GatewayConfig::body_bytes_max`]), request-target, connections, request time.
//! Never: decodes the target before checking a signature; lets a panic or a rejection reach
//! the client as anything but the envelope.

use crate::deribit::auth;
use crate::deribit::error::{self, RpcError};
use crate::deribit::methods::{self, Params, Principal};
use crate::gateway::{Gateway, GatewayConfig, now_ms};
use crate::keys::{KeyState, proof_hex};
use crate::limits::Budget;
use crate::strict_json::{self, JsonError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use commonware_codec::DecodeExt as _;
use commonware_cryptography::Signer as _;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq as _;

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The peer's address, as the connection loop attaches it.
#[derive(Copy, Clone, Debug)]
pub struct Peer(pub SocketAddr);

impl Peer {
    /// The client the peer counts as for per-address credits and pending keys: its IPv4
    /// address, or its IPv6 /64 (one host can send from every address of its /64; counted
    /// singly, each would bring fresh credits, and their buckets would fill the limiter's
    /// table until new clients were refused).
    pub fn client(&self) -> String {
        bulwark_node::api::connections::ClientAddress::of(self.0.ip()).to_string()
    }
}

/// The Deribit envelope around a result or an error.
fn envelope(us_in: u64, id: Option<&Value>, outcome: Result<Value, RpcError>) -> Response {
    let (status, body) = envelope_body(us_in, id, outcome);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The envelope's status and JSON.
pub(crate) fn envelope_body(
    us_in: u64,
    id: Option<&Value>,
    outcome: Result<Value, RpcError>,
) -> (StatusCode, Value) {
    let us_out = now_us();
    let mut body = json!({
        "jsonrpc": "2.0",
        "usIn": us_in,
        "usOut": us_out,
        "usDiff": us_out.saturating_sub(us_in),
        "testnet": false,
    });
    if let Some(id) = id {
        body["id"] = id.clone();
    }
    let status = match outcome {
        Ok(result) => {
            body["result"] = result;
            StatusCode::OK
        }
        Err(error) => {
            body["error"] = error.to_json();
            StatusCode::BAD_REQUEST
        }
    };
    (status, body)
}

/// The routes over `gateway`.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let limit = gateway.config.body_bytes_max;
    Router::new()
        .route("/api/v2/{scope}/{method}", get(rpc).post(rpc))
        .route("/gateway/v1/apikeys", post(create_key).get(list_keys))
        .route("/gateway/v1/status", get(status))
        .merge(crate::dashboard::routes())
        .route("/ws/api/v2", get(crate::ws::upgrade))
        .fallback(|| async { envelope(now_us(), None, Err(error::method_not_found())) })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(gateway)
}

/// Parses a raw query string (RFC 3986 percent-encoding, `+` as space) into parameters.
fn parse_query(query: &str) -> Result<Params, RpcError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| RpcError::new(error::INVALID_REQUEST, "Invalid Request"))?;
    let mut map = Map::new();
    for (key, value) in pairs {
        // `amount=1&amount=1000` is refused, not read as either (see `crate::strict_json`).
        if map.contains_key(&key) {
            return Err(RpcError::invalid_param(&key, "given twice"));
        }
        map.insert(key, Value::String(value));
    }
    Ok(Params(map))
}

/// A JSON-RPC request's bytes read as one object, strictly (`crate::strict_json`: a member
/// twice is refused). The error comes with the request's `id` when it can still be told (a
/// duplicate elsewhere than `id` itself), so a client matching answers by id gets this one.
pub(crate) fn request_object(
    bytes: &[u8],
) -> Result<Map<String, Value>, (Option<Value>, RpcError)> {
    match strict_json::parse(bytes) {
        Ok(Value::Object(request)) => Ok(request),
        Ok(_) => Err((
            None,
            RpcError::new(error::INVALID_REQUEST, "Invalid Request"),
        )),
        Err(JsonError::Syntax(_)) => Err((None, error::parse_error())),
        Err(JsonError::DuplicateMember(name)) => {
            let id = (name != "id")
                .then(|| serde_json::from_slice::<Value>(bytes).ok())
                .flatten()
                .and_then(|request| request.get("id").cloned());
            let refused = RpcError::new(error::INVALID_REQUEST, "Invalid Request")
                .with_data(json!({"reason": JsonError::DuplicateMember(name).to_string()}));
            Err((id, refused))
        }
    }
}

async fn rpc(
    State(gateway): State<Arc<Gateway>>,
    Extension(Peer(peer)): Extension<Peer>,
    Path((scope, name)): Path<(String, String)>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let us_in = now_us();
    let Ok(body) = body else {
        return envelope(
            us_in,
            None,
            Err(RpcError::new(error::BAD_REQUEST, "bad_request")
                .with_data(json!({"reason": "body too large or unreadable"}))),
        );
    };
    let config = gateway.config;
    // The request-target exactly as received: what the client signed.
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
    let mut id = None;
    let outcome = async {
        if target.len() > config.target_bytes_max {
            return Err(RpcError::new(error::BAD_REQUEST, "bad_request")
                .with_data(json!({"reason": "request-target too long"})));
        }
        if body.len() > config.body_bytes_max {
            return Err(RpcError::new(error::BAD_REQUEST, "bad_request")
                .with_data(json!({"reason": "body too large"})));
        }
        if scope != "public" && scope != "private" {
            return Err(error::method_not_found());
        }
        let method = format!("{scope}/{name}");
        let engine = methods::is_engine_call(&method);
        let budget = if engine {
            Budget::Engine
        } else {
            Budget::Reads
        };
        let address = Peer(peer).client();
        let rate = if engine {
            config.rates.address_engine
        } else {
            config.rates.address_reads
        };
        if !gateway
            .limiter()
            .take(&address, budget, rate, Instant::now())
        {
            return Err(error::too_many_requests());
        }
        let params = if http_method == Method::POST {
            let request = request_object(&body).map_err(|(named, refused)| {
                id = named;
                refused
            })?;
            id = request.get("id").cloned();
            // JSON-RPC 2.0's members, when present, are what they must be.
            if request
                .get("jsonrpc")
                .is_some_and(|version| version != "2.0")
            {
                return Err(RpcError::new(error::INVALID_REQUEST, "Invalid Request")
                    .with_data(json!({"reason": "jsonrpc must be \"2.0\""})));
            }
            if request
                .get("method")
                .is_some_and(|named| !named.is_string())
            {
                return Err(RpcError::new(error::INVALID_REQUEST, "Invalid Request")
                    .with_data(json!({"reason": "method must be a string"})));
            }
            if let Some(named) = request.get("method").and_then(Value::as_str)
                && named != method
            {
                return Err(RpcError::new(error::INVALID_REQUEST, "Invalid Request")
                    .with_data(json!({"reason": "method differs from the path"})));
            }
            match request.get("params") {
                None | Some(Value::Null) => Params::default(),
                Some(Value::Object(map)) => Params(map.clone()),
                Some(_) => return Err(RpcError::invalid_param("params", "must be an object")),
            }
        } else {
            parse_query(uri.query().unwrap_or(""))?
        };
        let principal = if scope == "private" {
            Some(authenticate(
                &gateway,
                &headers,
                http_method.as_str(),
                &target,
                &body,
                engine,
            )?)
        } else {
            None
        };
        if method == "public/auth" {
            return grant(&gateway, &params).map(|(_, answer)| answer);
        }
        methods::dispatch(&gateway, &method, &params, principal.as_ref()).await
    }
    .await;
    envelope(us_in, id.as_ref(), outcome)
}

/// Checks a private request's credentials (a `deri-hmac-sha256` signature, or a bearer
/// access token from `public/auth`) and key; charges the key's rate budget.
fn authenticate(
    gateway: &Gateway,
    headers: &HeaderMap,
    method: &str,
    target: &str,
    body: &[u8],
    engine: bool,
) -> Result<Principal, RpcError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| error::unauthorized("no Authorization header"))?
        .to_str()
        .map_err(|_| error::unauthorized("Authorization header is not text"))?;
    if let Some(token) = header
        .strip_prefix("bearer ")
        .or_else(|| header.strip_prefix("Bearer "))
    {
        let client_id = gateway
            .tokens()
            .access(token.trim(), now_ms())
            .ok_or_else(|| error::unauthorized("unknown or expired access token"))?;
        return principal(gateway, &client_id, engine);
    }
    let signature = auth::parse_header(header)?;
    let key = gateway
        .key(&signature.client_id)
        .ok_or_else(error::invalid_credentials)?;
    auth::verify(
        &signature,
        &key.stored.client_secret,
        method,
        target,
        body,
        now_ms(),
    )?;
    // A replay is refused before it costs the key anything (whoever replays a captured
    // request must not drain its key's budget); a fresh signature is remembered only once the
    // key's rate budget paid for it, so the shared cache fills no faster than the keys' budgets
    // allow (the address budget alone let a few addresses with one key fill it, and then every
    // signed request from anyone was refused).
    let replayed = || error::unauthorized("signature already used (replay)");
    if gateway.replay().contains(&signature) {
        return Err(replayed());
    }
    let principal = principal(gateway, &signature.client_id, engine)?;
    match gateway.replay().admit(&signature, now_ms()) {
        auth::Replay::Fresh => Ok(principal),
        auth::Replay::Replayed => Err(replayed()),
        auth::Replay::Full => Err(error::too_many_requests()),
    }
}

/// `public/auth` (HTTP and WebSocket): the grant's API key as a [`Principal`] and the answer
/// (bearer tokens). Grants: `client_credentials` (`client_id`, `client_secret`, compared in
/// constant time), `client_signature` (`client_id`, `timestamp` ms, `nonce`, `data`,
/// `signature` = hex HMAC-SHA256 over `timestamp\nnonce\ndata`, timestamp within 60 s; a
/// `(client_id, timestamp, nonce)` used before is a replay), `refresh_token` (each spent once).
/// Unknown client or wrong secret: `13004`; bad, stale or replayed signature, spent token,
/// pending or revoked key: `13009`.
pub(crate) fn grant(gateway: &Gateway, params: &Params) -> Result<(Principal, Value), RpcError> {
    let grant = params.required("grant_type")?;
    let now = now_ms();
    // A `client_signature` grant's marker, remembered once the key's budget paid for it.
    let mut signed: Option<auth::Signature> = None;
    let client_id = match grant.as_str() {
        "client_credentials" => {
            let client_id = params.required("client_id")?;
            let secret = params.required("client_secret")?;
            let key = gateway
                .key(&client_id)
                .ok_or_else(error::invalid_credentials)?;
            let same = key.stored.client_secret.as_bytes().ct_eq(secret.as_bytes());
            if !bool::from(same) {
                return Err(error::invalid_credentials());
            }
            client_id
        }
        "client_signature" => {
            let seen = signature_grant(gateway, params, now)?;
            let client_id = seen.client_id.clone();
            signed = Some(seen);
            client_id
        }
        "refresh_token" => {
            let token = params.required("refresh_token")?;
            gateway
                .tokens()
                .spend_refresh(&token, now)
                .ok_or_else(|| error::unauthorized("unknown, spent or expired refresh token"))?
        }
        _ => {
            return Err(RpcError::invalid_param(
                "grant_type",
                "client_credentials, client_signature or refresh_token",
            ));
        }
    };
    let principal = principal(gateway, &client_id, false)?;
    if let Some(seen) = signed {
        match gateway.replay().admit(&seen, now) {
            auth::Replay::Fresh => {}
            auth::Replay::Replayed => return Err(grant_replayed()),
            auth::Replay::Full => return Err(error::too_many_requests()),
        }
    }
    let issued = gateway
        .tokens()
        .issue(&client_id, now)
        .ok_or_else(error::too_many_requests)?;
    let answer = json!({
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "expires_in": issued.expires_in_s,
        "token_type": "bearer",
        "scope": "connection mainaccount trade:read_write account:read wallet:none",
        "enabled_features": [],
    });
    Ok((principal, answer))
}

fn grant_replayed() -> RpcError {
    error::unauthorized("timestamp and nonce already used (replay)")
}

/// A `client_signature` grant's replay marker (its client id, timestamp and nonce), once its
/// signature and timestamp are checked and it is not a replay; the caller remembers it once
/// the key's budget paid for the grant.
fn signature_grant(
    gateway: &Gateway,
    params: &Params,
    now: u64,
) -> Result<auth::Signature, RpcError> {
    let client_id = params.required("client_id")?;
    let ts = params
        .integer("timestamp")?
        .ok_or_else(|| RpcError::missing_param("timestamp"))?;
    let sig = params.required("signature")?;
    let nonce = params.text("nonce").unwrap_or_default();
    let data = params.text("data").unwrap_or_default();
    if nonce.len() > 64 || data.len() > 1_024 || sig.len() != 64 {
        return Err(error::unauthorized(
            "overlong nonce or data, or signature not 64 hex characters",
        ));
    }
    let key = gateway
        .key(&client_id)
        .ok_or_else(error::invalid_credentials)?;
    auth::verify_grant(&key.stored.client_secret, ts, &nonce, &data, &sig, now)?;
    // A grant's (client, timestamp, nonce) is used once, whatever it signed; the marker keeps
    // it apart from HTTP request signatures in the same cache.
    let seen = auth::Signature {
        client_id: client_id.clone(),
        ts,
        nonce,
        sig: "public/auth".into(),
    };
    if gateway.replay().contains(&seen) {
        return Err(grant_replayed());
    }
    Ok(seen)
}

/// Who an authenticated API key acts for: its account while the key is active (read from the
/// replica on every call, so a revocation takes effect at once); charges the key's rate
/// budget. The one place every transport turns a key into a [`Principal`].
pub(crate) fn principal(
    gateway: &Gateway,
    client_id: &str,
    engine: bool,
) -> Result<Principal, RpcError> {
    let key = gateway
        .key(client_id)
        .ok_or_else(error::invalid_credentials)?;
    let state = {
        let replica = gateway.replica.lock();
        key.state(replica.chain.finalized())
    };
    let account = match state {
        KeyState::Active(account) => account,
        KeyState::Pending => {
            return Err(error::unauthorized(
                "API key pending: the owner's AuthoriseAgent is not finalized",
            ));
        }
        KeyState::Revoked => return Err(error::unauthorized("API key revoked")),
    };
    let rates = gateway.config.rates;
    let (budget, rate) = if engine {
        (Budget::Engine, rates.key_engine)
    } else {
        (Budget::Reads, rates.key_reads)
    };
    if !gateway
        .limiter()
        .take(client_id, budget, rate, Instant::now())
    {
        return Err(error::too_many_requests());
    }
    Ok(Principal { key, account })
}

fn plain_error(status: StatusCode, code: &str, message: String) -> Response {
    (status, axum::Json(json!({"error": message, "code": code}))).into_response()
}

async fn create_key(
    State(gateway): State<Arc<Gateway>>,
    Extension(Peer(peer)): Extension<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "body too large or unreadable".into(),
        );
    };
    if body.len() > 4_096 {
        return plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "at most 4096 bytes".into(),
        );
    }
    let address = Peer(peer).client();
    if !gateway.limiter().take(
        &address,
        Budget::Engine,
        gateway.config.rates.address_engine,
        Instant::now(),
    ) {
        return plain_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "slow down".into(),
        );
    }
    let request = match strict_json::parse(&body) {
        Ok(value) => value,
        Err(e) => return plain_error(StatusCode::BAD_REQUEST, "json_invalid", e.to_string()),
    };
    let (Some(owner), Some(nonce), Some(ts), Some(signature)) = (
        request["owner"].as_str(),
        request["nonce"].as_u64(),
        request["ts"].as_u64(),
        request["signature"].as_str(),
    ) else {
        return plain_error(
            StatusCode::BAD_REQUEST,
            "json_invalid",
            "expected {\"owner\": \"<hex public key>\", \"nonce\": <the owner's AuthoriseAgent nonce>, \"ts\": <ms>, \"signature\": \"<hex of the owner's signature of the request>\"}".into(),
        );
    };
    let request = match crate::keys::KeyRequest::parse(owner, nonce, ts, signature) {
        Ok(request) => request,
        Err(error) => return key_error(error),
    };
    // Lock order: the key store, then (briefly) the replica; the file is written without the
    // replica's lock.
    let created = {
        let mut keys = gateway.keys();
        let (pending, funded) = {
            let replica = gateway.replica.lock();
            let state = replica.chain.finalized();
            (
                keys.pending_ids(state),
                crate::keys::owner_funded(state, &request.owner),
            )
        };
        keys.create(&request, funded, &address, &pending, now_ms())
    };
    match created {
        Ok(key) => axum::Json(json!({
            "client_id": key.stored.client_id,
            "client_secret": key.stored.client_secret,
            "agent": bulwark_node::executor::hex(key.agent.public_key().as_ref()),
            "proof": proof_hex(&key),
            "owner": key.stored.owner,
            "nonce": key.stored.nonce,
            "state": "pending",
        }))
        .into_response(),
        Err(error) => key_error(error),
    }
}

/// The answer to a key request the store refused.
fn key_error(error: crate::keys::KeyError) -> Response {
    use crate::keys::KeyError;
    let (status, code) = match &error {
        KeyError::OwnerInvalid => (StatusCode::BAD_REQUEST, "owner_invalid"),
        KeyError::SignatureInvalid => (StatusCode::UNAUTHORIZED, "signature_invalid"),
        KeyError::RequestStale => (StatusCode::UNAUTHORIZED, "request_stale"),
        KeyError::OwnerWithoutAccount => (StatusCode::FORBIDDEN, "owner_without_account"),
        KeyError::AlreadyPending => (StatusCode::CONFLICT, "already_pending"),
        KeyError::TooManyPending | KeyError::Full => {
            (StatusCode::TOO_MANY_REQUESTS, "too_many_pending")
        }
        KeyError::File { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "key_store"),
    };
    plain_error(status, code, error.to_string())
}

async fn list_keys(
    State(gateway): State<Arc<Gateway>>,
    Extension(peer): Extension<Peer>,
    uri: Uri,
) -> Response {
    // Each answer reads the key store and the replica: from the address's read budget, as
    // every other read (unbudgeted, 700 came in 60 ms, each taking the replica's lock).
    if !crate::dashboard::admit(&gateway, &peer) {
        return crate::dashboard::refused();
    }
    let params = match parse_query(uri.query().unwrap_or("")) {
        Ok(params) => params,
        Err(_) => return plain_error(StatusCode::BAD_REQUEST, "query_invalid", "bad query".into()),
    };
    let Some(owner) = params
        .text("owner")
        .and_then(|o| bulwark_node::api::decode_hex(&o, 32))
        .and_then(|b| bulwark_types::PublicKey::decode(b).ok())
    else {
        return plain_error(
            StatusCode::BAD_REQUEST,
            "owner_invalid",
            "owner=<hex public key>".into(),
        );
    };
    // Lock order: the key store, then the replica.
    let keys = gateway.keys();
    let replica = gateway.replica.lock();
    let list: Vec<Value> = keys
        .of_owner(&owner)
        .map(|k| {
            let state = match k.state(replica.chain.finalized()) {
                KeyState::Pending => "pending",
                KeyState::Active(_) => "active",
                KeyState::Revoked => "revoked",
            };
            json!({
                "client_id": k.stored.client_id,
                "agent": bulwark_node::executor::hex(k.agent.public_key().as_ref()),
                "nonce": k.stored.nonce,
                "created_ms": k.stored.created_ms,
                "state": state,
            })
        })
        .collect();
    axum::Json(json!({"keys": list})).into_response()
}

async fn status(State(gateway): State<Arc<Gateway>>, Extension(peer): Extension<Peer>) -> Response {
    if !crate::dashboard::admit(&gateway, &peer) {
        return crate::dashboard::refused();
    }
    let replica = gateway.replica.lock();
    let lies: Vec<Value> = replica
        .lies
        .iter()
        .map(|(validator, lie)| json!({"validator": validator, "lie": lie}))
        .collect();
    axum::Json(json!({
        "height": replica.chain.finalized_height(),
        "block": bulwark_node::executor::hex(replica.chain.finalized_digest().as_ref()),
        "state_digest": bulwark_node::executor::hex(replica.chain.finalized().state_digest().as_ref()),
        "time_ms": replica.chain.finalized().time().millis(),
        "halted": replica.halted,
        "lies": lies,
        "submissions": gateway.submissions(),
    }))
    .into_response()
}

/// Serves the API on `listener` until `shutdown`: each connection its own task, at most
/// [`GatewayConfig::connections_max`] at once and [`GatewayConfig::connections_per_client_max`]
/// from one client (further ones closed on accept), heads within 10 s, each request answered
/// within [`GatewayConfig::request_timeout`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config: GatewayConfig = gateway.config;
    let app = router(gateway).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(config.request_timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => envelope(now_us(), None, Err(error::retry("request timed out"))),
            }
        },
    ));
    let slots = bulwark_node::api::connections::ConnectionSlots::new(
        config.connections_max,
        config.connections_per_client_max,
    );
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return Ok(()),
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "gateway accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            Err(refused) => {
                tracing::debug!(%peer, %refused, "gateway connection closed on accept");
                drop(stream);
                continue;
            }
        };
        // Bounds what the kernel holds for a client that does not read (the host's default
        // may grow it to megabytes); the WebSocket queue bounds the rest.
        if let Err(error) =
            socket2::SockRef::from(&stream).set_send_buffer_size(config.send_buffer_bytes)
        {
            tracing::debug!(%error, "setting the send buffer failed");
        }
        let service =
            hyper_util::service::TowerToHyperService::new(app.clone().layer(Extension(Peer(peer))));
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                // `/ws/api/v2` takes the connection over (its own bounds apply from there).
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::trace!(%error, "gateway connection ended with an error");
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attack: one IPv6 host sends each request from another address of its /64. Keyed
    /// by the whole address, each brought a fresh bucket (the per-address rate bounded
    /// nothing), and 65,536 of them filled the limiter's table, after which every new client
    /// was refused. Keyed by the /64, the host has one budget and others keep theirs.
    #[test]
    fn an_ipv6_host_rotating_addresses_in_its_slash_64_has_one_budget() {
        use crate::limits::{BUCKETS_MAX, Limiter, RateLimits};
        use std::net::{IpAddr, Ipv6Addr};
        let mut limiter = Limiter::default();
        let rate = RateLimits::DEFAULT.address_engine;
        let now = std::time::Instant::now();
        let host = |i: u64| {
            let address = Ipv6Addr::from_bits((0x2001_0db8_0001_0002u128 << 64) | u128::from(i));
            Peer(SocketAddr::new(IpAddr::V6(address), 443))
        };
        let admitted = (0..BUCKETS_MAX as u64 + 1_000)
            .filter(|i| limiter.take(&host(*i).client(), Budget::Engine, rate, now))
            .count();
        assert_eq!(admitted, rate.burst as usize, "one budget for the /64");
        let other = Peer("203.0.113.7:5000".parse().unwrap());
        assert!(
            limiter.take(&other.client(), Budget::Engine, rate, now),
            "another client still has its credits"
        );
    }

    #[test]
    fn queries_decode_rfc3986_and_malformed_ones_are_refused() {
        let params =
            parse_query("instrument_name=BTC-PERPETUAL&amount=0.01&label=a%20b%2Fc%3Ad&x=1+2")
                .unwrap();
        assert_eq!(params.text("label").as_deref(), Some("a b/c:d"));
        assert_eq!(params.text("amount").as_deref(), Some("0.01"));
        assert_eq!(params.text("x").as_deref(), Some("1 2"));
        assert_eq!(parse_query("").unwrap().0.len(), 0);
    }

    #[test]
    fn the_envelope_carries_integer_codes_and_http_400() {
        let (status, body) = envelope_body(5, Some(&json!(7)), Err(error::too_many_requests()));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], json!(10028));
        assert!(body["error"]["code"].is_i64());
        assert_eq!(body["error"]["message"], "too_many_requests");
        assert_eq!(
            (body["id"].clone(), body["jsonrpc"].clone()),
            (json!(7), json!("2.0"))
        );
        assert_eq!(body["testnet"], false);
        assert!(body["usOut"].as_u64().unwrap() >= 5 && body.get("result").is_none());
        let (status, body) = envelope_body(5, None, Ok(json!(1)));
        assert_eq!((status, body["result"].clone()), (StatusCode::OK, json!(1)));
        assert!(body.get("id").is_none() && body.get("error").is_none());
    }
}
