//! The validator's HTTP JSON API: submit signed transactions, follow them to their finalized
//! outcome, read books, accounts, positions and prices, and watch the node (`/status`,
//! Prometheus `/metrics`).
//!
//! Owns: the routes, their input validation and their typed errors ([`ApiError`]); the JSON
//! views of exchange state ([`views`]). Reads come from the node's [`Shared`] state under short
//! locks (never across an `.await`), so they keep answering while consensus stalls.
//! Never: panics on input (every extractor's rejection becomes a typed 4xx), trusts a length
//! the client states, or reads a body past [`ApiConfig::body_bytes_max`] (enforced on every
//! route, before any parsing). Unlike the rest of this crate it runs on tokio (axum).
//!
//! Routes (keys and digests are 64 lower-case hex characters):
//! - `POST /tx` `{"tx": "<hex of SignedTx codec bytes>"}` or `{"tx_base64": "..."}`: the
//!   mempool's verdict: `{"digest", "status": "pending"}`, or an error (`signature_invalid`,
//!   `nonce_stale`, `duplicate`, ...).
//! - `POST /txs` `{"txs": ["<hex>", ...]}` (at most [`ApiConfig::batch_txs_max`]): one result
//!   per transaction, in order.
//! - `POST /txs/status` `{"digests": ["<hex>", ...]}` (at most `batch_txs_max`): each
//!   digest's status as `GET /tx/{digest}` gives it, `unknown` where that answers 404.
//! - `GET /tx/{digest}`: `pending`, `finalized` (height, index, `applied` or `rejected` with
//!   the reason and its code, events), or 404 `tx_unknown`. A finalized transaction this
//!   node no longer holds in memory (it restarted since) comes from its durable receipts
//!   (`receipt_archive.rs`) with `"events": null` and a `note` saying so.
//! - `GET /instruments`, `GET /book/{name}?depth=N`, `GET /prices`.
//! - `GET /account/{key}` (balances, margin, open orders, positions, nonces), `GET /positions/{key}`.
//! - `GET /status`, `GET /metrics`.
//! - `GET /blocks/latest`, `GET /blocks/{height}`: finalized blocks with their finalization
//!   certificate, hex (see [`blocks`]); served once [`ApiState::serve_blocks`] names a source.
//! - `GET /snapshot`: the newest snapshot this node serves, binary, height in `x-bulwark-height`.

mod admission;
pub mod blocks;
pub mod connections;
pub mod error;
mod handlers;
mod metrics;
pub mod views;

#[cfg(test)]
mod tests;

pub use blocks::FinalizedBlocks;
pub use error::ApiError;
pub use handlers::decode_hex;

use crate::shared::Shared;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// API settings. Node-local.
#[derive(Copy, Clone, Debug)]
pub struct ApiConfig {
    /// Largest request body read, on every route. A batch of `batch_txs_max` hex transactions
    /// must fit: 1,024 x 2 x 250 bytes is about 0.5 MB. A larger `Content-Length` is refused
    /// before any of the body is read.
    pub body_bytes_max: usize,
    /// Most transactions in one `POST /txs`.
    pub batch_txs_max: usize,
    /// Most levels per side `GET /book` returns.
    pub book_depth_max: usize,
    /// Most connections open at once; further ones are closed on accept.
    pub connections_max: usize,
    /// Most connections open at once from one client (an IPv4 address or an IPv6 /64,
    /// [`connections::ClientAddress`]); further ones are closed on accept. A gateway is one
    /// client to the validators it serves from: this bounds how many of its users' requests
    /// it has in flight at one validator (it tries the next when refused).
    pub connections_per_client_max: usize,
    /// A connection that has not sent a whole request head within this is closed.
    pub header_read_timeout: Duration,
    /// A request (body included) not answered within this gets `408 request_timeout`.
    pub request_timeout: Duration,
}

impl ApiConfig {
    pub const DEFAULT: Self = Self {
        body_bytes_max: 1 << 20,
        batch_txs_max: 1_024,
        book_depth_max: 500,
        connections_max: 1_024,
        connections_per_client_max: 128,
        header_read_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
    };
}

/// Who this node is, for `/status`.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    /// Hex of this validator's public key.
    pub public_key: String,
    /// Hex of every validator's public key, in the participant set's order.
    pub participants: Vec<String>,
}

/// Where the node's runtime metrics and peer count come from (the binary supplies these from
/// the Commonware runtime context and its p2p metrics).
#[derive(Clone)]
pub struct Telemetry {
    /// The runtime's metrics as Prometheus (OpenMetrics) text.
    pub encode: Arc<dyn Fn() -> String + Send + Sync>,
    /// Peers this validator is connected to, if the network reports it.
    pub peers_connected: Arc<dyn Fn() -> Option<usize> + Send + Sync>,
}

impl Telemetry {
    /// No runtime metrics and an unknown peer count (tests).
    pub fn none() -> Self {
        Self {
            encode: Arc::new(String::new),
            peers_connected: Arc::new(|| None),
        }
    }
}

/// Counters the API keeps about itself.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    responses_4xx: AtomicU64,
    responses_5xx: AtomicU64,
    txs_received: AtomicU64,
    txs_admitted: AtomicU64,
}

struct Inner {
    shared: Arc<Shared>,
    /// The one way request handlers admit transactions.
    admission: admission::Admission,
    config: ApiConfig,
    identity: NodeIdentity,
    telemetry: Telemetry,
    counters: Counters,
    /// Where `/blocks` reads from; unset, those routes answer `503 blocks_unavailable`.
    blocks: std::sync::OnceLock<Arc<dyn FinalizedBlocks>>,
}

/// Everything a request handler reads. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

impl ApiState {
    pub fn new(
        shared: Arc<Shared>,
        config: ApiConfig,
        identity: NodeIdentity,
        telemetry: Telemetry,
    ) -> Self {
        assert!(
            config.body_bytes_max > 0 && config.batch_txs_max > 0 && config.book_depth_max > 0,
            "API bounds positive"
        );
        assert!(
            0 < config.connections_per_client_max
                && config.connections_per_client_max <= config.connections_max,
            "0 < connections per client <= connections"
        );
        Self {
            inner: Arc::new(Inner {
                admission: admission::Admission::start(Arc::clone(&shared)),
                shared,
                config,
                identity,
                telemetry,
                counters: Counters::default(),
                blocks: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Serves `/blocks` from `source` (marshal's mailbox on a validator). Only the first call
    /// takes effect.
    pub fn serve_blocks(&self, source: Arc<dyn FinalizedBlocks>) {
        let _ = self.inner.blocks.set(source);
    }
}

/// The API's routes over `state`, with the body limit on every route.
pub fn router(state: ApiState) -> Router {
    let limit = state.inner.config.body_bytes_max;
    Router::new()
        .route("/tx", post(handlers::submit_tx))
        .route("/txs", post(handlers::submit_txs))
        .route("/tx/{digest}", get(handlers::tx_status))
        .route("/txs/status", post(handlers::txs_status))
        .route("/instruments", get(handlers::instruments))
        .route("/book/{name}", get(handlers::book))
        .route("/prices", get(handlers::prices))
        .route("/account/{key}", get(handlers::account))
        .route("/positions/{key}", get(handlers::positions))
        .route("/status", get(handlers::status))
        .route("/metrics", get(handlers::metrics))
        .route("/blocks/latest", get(blocks::latest))
        .route("/blocks/{height}", get(blocks::block))
        .route("/snapshot", get(blocks::snapshot))
        .fallback(handlers::route_unknown)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            handlers::guard,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves: HTTP/1.1, each connection its own
/// task, at most [`ApiConfig::connections_max`] at once and
/// [`ApiConfig::connections_per_client_max`] from one client, request heads within
/// [`ApiConfig::header_read_timeout`]. Each request carries its client's
/// [`connections::ClientAddress`] (admission serves clients in turns).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.inner.config;
    let router = router(state);
    let slots = connections::ConnectionSlots::new(
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
                // Out of descriptors or a connection reset before accept: wait, then go on.
                tracing::debug!(%error, "API accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            Err(refused) => {
                tracing::debug!(%peer, %refused, "API connection closed on accept");
                drop(stream);
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(
            router.clone().layer(axum::Extension(slot.client())),
        );
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(config.header_read_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::trace!(%error, "API connection ended with an error");
            }
            drop(slot);
        });
    }
}
