//! The gateway's shared state: the replica, the validators it submits to, the API keys, the
//! agent keys' nonces, the replay cache and the rate limiter; and the one way a transaction
//! reaches the chain ([`Gateway::execute`]: sign with the key's agent, submit to every
//! validator ([`crate::submitter`]), wait for the finalized outcome).
//!
//! Never: answers an order before the block holding it is applied to the replica; waits
//! longer than [`GatewayConfig::order_wait`] and then [`GatewayConfig::settle_wait`] for the
//! transaction that spends an unanswered order's nonce; holds a lock across an `.await`.

use crate::dashboard::health::ClusterHealth;
use crate::deribit::auth::{ReplayCache, Tokens};
use crate::deribit::error::{self, RpcError};
use crate::index::TxResult;
use crate::keys::{ApiKey, KeyStore};
use crate::limits::{Limiter, RateLimits};
use crate::replica::Replica;
use crate::source::HttpValidator;
use crate::submitter::{Outcome, Refusal, Submitter};
use bulwark_node::api::connections::ConnectionSlots;
use bulwark_node::mempool::tx_digest;
use bulwark_types::{Nonce, PublicKey, SignedTx, Tx, TxBody};
use commonware_cryptography::Signer as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Gateway settings.
#[derive(Copy, Clone, Debug)]
pub struct GatewayConfig {
    /// How long an order call waits for its finalized outcome before settling it.
    pub order_wait: Duration,
    /// How long settling waits, past `order_wait`, for the transaction that spends an
    /// unanswered order's nonce ([`Gateway::execute`]); then `10040 retry`, the order's fate
    /// unknown. `order_wait` and this together stay within `request_timeout`.
    pub settle_wait: Duration,
    pub rates: RateLimits,
    /// Largest request body (POST JSON-RPC) read.
    pub body_bytes_max: usize,
    /// Longest request-target (path and query) accepted.
    pub target_bytes_max: usize,
    /// Most connections open at once (HTTP and WebSocket).
    pub connections_max: usize,
    /// Most connections open at once from one client (an IPv4 address or an IPv6 /64:
    /// `bulwark_node::api::connections::ClientAddress`); further ones are closed on accept.
    pub connections_per_client_max: usize,
    /// A request not answered within this is cut off (order calls wait `order_wait` within it).
    pub request_timeout: Duration,
    /// The kernel's send buffer per connection (`SO_SNDBUF`; Linux doubles it): with the
    /// WebSocket queue bounds, what a client that does not read can make the gateway hold.
    pub send_buffer_bytes: usize,
    /// The WebSocket transport's bounds.
    pub ws: crate::ws::WsConfig,
}

impl GatewayConfig {
    pub const DEFAULT: Self = Self {
        order_wait: Duration::from_secs(10),
        settle_wait: Duration::from_secs(4),
        rates: RateLimits::DEFAULT,
        body_bytes_max: 64 * 1024,
        target_bytes_max: 8 * 1024,
        connections_max: 1_024,
        connections_per_client_max: 128,
        request_timeout: Duration::from_secs(15),
        send_buffer_bytes: 256 * 1024,
        ws: crate::ws::WsConfig::DEFAULT,
    };
}

// An order call settles within the request's own bound.
const _: () = assert!(
    GatewayConfig::DEFAULT.order_wait.as_millis() + GatewayConfig::DEFAULT.settle_wait.as_millis()
        < GatewayConfig::DEFAULT.request_timeout.as_millis()
);

/// Milliseconds since the Unix epoch, by the machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Everything the API reads and the submissions share.
pub struct Gateway {
    pub replica: Arc<Replica>,
    pub validators: Vec<HttpValidator>,
    /// Hands each transaction to every validator.
    submitter: Submitter,
    pub config: GatewayConfig,
    keys: Mutex<KeyStore>,
    replay: Mutex<ReplayCache>,
    /// Last nonce this gateway signed with, per agent key.
    nonces: Mutex<HashMap<PublicKey, u64>>,
    /// Per agent key: held from choosing a nonce until a validator admitted the transaction,
    /// so one key's transactions are queued to every validator in nonce order (a higher nonce
    /// executed first would make a lower one stale). At most one entry per API key.
    submitting: Mutex<HashMap<PublicKey, Arc<tokio::sync::Mutex<()>>>>,
    limiter: Mutex<Limiter>,
    /// The validators' own reports of their health, for the dashboard.
    pub health: Arc<ClusterHealth>,
    /// The dashboard's newest rendered state.
    pub dashboard: crate::dashboard::Rendered,
    /// Bearer tokens `public/auth` issued.
    tokens: Mutex<Tokens>,
    /// Open WebSocket connections.
    ws_slots: ConnectionSlots,
}

impl Gateway {
    /// Call within a tokio runtime: it starts a submission lane per validator.
    pub fn new(
        replica: Arc<Replica>,
        validators: Vec<HttpValidator>,
        keys: KeyStore,
        config: GatewayConfig,
    ) -> Self {
        let health = Arc::new(ClusterHealth::new(
            validators.iter().map(|v| v.base().to_string()),
        ));
        Self {
            health,
            dashboard: crate::dashboard::Rendered::default(),
            replica,
            submitter: Submitter::start(&validators),
            validators,
            config,
            keys: Mutex::new(keys),
            replay: Mutex::new(ReplayCache::default()),
            nonces: Mutex::new(HashMap::new()),
            submitting: Mutex::new(HashMap::new()),
            limiter: Mutex::new(Limiter::default()),
            tokens: Mutex::new(Tokens::default()),
            ws_slots: ConnectionSlots::new(
                config.ws.connections_max,
                config.ws.connections_per_client_max,
            ),
        }
    }

    pub fn tokens(&self) -> MutexGuard<'_, Tokens> {
        lock(&self.tokens)
    }

    pub fn ws_slots(&self) -> &ConnectionSlots {
        &self.ws_slots
    }

    pub fn keys(&self) -> MutexGuard<'_, KeyStore> {
        lock(&self.keys)
    }

    pub fn replay(&self) -> MutexGuard<'_, ReplayCache> {
        lock(&self.replay)
    }

    pub fn limiter(&self) -> MutexGuard<'_, Limiter> {
        lock(&self.limiter)
    }

    /// The key's client id, if the key is known.
    pub fn key(&self, client_id: &str) -> Option<ApiKey> {
        self.keys().get(client_id).cloned()
    }

    /// The next nonce for `agent`: above the replica's last executed one, above the last this
    /// gateway used, and at least the clock in microseconds (so a restarted gateway never
    /// reuses a nonce of a transaction still in flight, and the transaction expires a minute
    /// after it: `bulwark_types::Nonce::time_check`). The exchange allows gaps.
    fn next_nonce(&self, agent: &PublicKey) -> u64 {
        let executed = self
            .replica
            .lock()
            .chain
            .finalized()
            .nonce_last(agent)
            .unwrap_or(0);
        let mut nonces = lock(&self.nonces);
        let used = nonces.get(agent).copied().unwrap_or(0);
        let clock = now_ms().saturating_mul(1_000);
        let next = executed.max(used).saturating_add(1).max(clock);
        nonces.insert(agent.clone(), next);
        next
    }

    /// Signs `body` with `key`'s agent, submits it, and waits until the replica has applied
    /// the block holding it. The result says whether the exchange applied or rejected it.
    ///
    /// Not final within [`GatewayConfig::order_wait`], the transaction is settled: every
    /// validator the gateway knows may have passed it on late or never, and whoever holds it
    /// could release it later (nonces may skip), when the price has moved. So the gateway
    /// spends its nonce with a transaction only a rejection can come of, a cancel of no order
    /// ([`spend_body`]), and answers when that is final: with the transaction's result if it
    /// executed first, else `10040` with `executed: false` (it never will). Past
    /// [`GatewayConfig::settle_wait`] as well: `10040`, fate unknown.
    pub async fn execute(&self, key: &ApiKey, body: TxBody) -> Result<TxResult, RpcError> {
        let turn = lock(&self.submitting)
            .entry(key.agent.public_key())
            .or_default()
            .clone();
        let mut heights = self.replica.subscribe();
        let tx = {
            let _turn = turn.lock().await;
            let tx = self.sign(key, body);
            self.submit(&tx).await?;
            tx
        };
        let order_wait = tokio::time::Instant::now() + self.config.order_wait;
        if let Some(result) = self.wait(&[&tx], &mut heights, order_wait).await?[0].clone() {
            return Ok(result);
        }
        let unknown =
            || error::retry("not finalized in time; the order may still execute: query its state");
        let spend = {
            let _turn = turn.lock().await;
            let spend = self.sign(key, spend_body());
            if self.submit(&spend).await.is_err() {
                return Err(unknown());
            }
            spend
        };
        let settle_wait = tokio::time::Instant::now() + self.config.settle_wait;
        let results = self.wait(&[&tx, &spend], &mut heights, settle_wait).await?;
        let never = || {
            let replica = self.replica.lock();
            replica.chain.finalized().can_never_execute(&tx.tx)
        };
        match &results[..] {
            // If it executed before the spending transaction, its result is known.
            [Some(result), _] => Ok(result.clone()),
            // The spending transaction is final, and it did spend the nonce (a rejection for
            // its nonce's time, with this gateway's clock a minute off the chain's, spends
            // nothing): the other can never execute.
            [None, Some(_)] if never() => Err(RpcError::new(error::RETRY, "retry").with_data(
                serde_json::json!({
                    "reason": "not finalized in time, and now never will be: its nonce is \
                               spent; place it again",
                    "executed": false,
                }),
            )),
            _ => Err(unknown()),
        }
    }

    /// `body` as `key`'s agent's next transaction, signed.
    fn sign(&self, key: &ApiKey, body: TxBody) -> SignedTx {
        let signer = key.agent.public_key();
        let nonce = self.next_nonce(&signer);
        Tx {
            signer,
            nonce: Nonce::new(nonce),
            body,
        }
        .sign(&key.agent)
    }

    /// Waits until the replica has applied one of `txs`, or until `deadline`; then each one's
    /// result, if applied.
    async fn wait(
        &self,
        txs: &[&SignedTx],
        heights: &mut tokio::sync::watch::Receiver<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Option<TxResult>>, RpcError> {
        let digests: Vec<_> = txs.iter().map(|tx| tx_digest(tx)).collect();
        loop {
            if let Some(reason) = self.replica.halted() {
                return Err(error::unavailable(&reason));
            }
            let results: Vec<Option<TxResult>> = {
                let replica = self.replica.lock();
                digests
                    .iter()
                    .map(|d| replica.index.tx_result(d).cloned())
                    .collect()
            };
            if results.iter().any(Option::is_some) {
                return Ok(results);
            }
            match tokio::time::timeout_at(deadline, heights.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(error::internal("the replica stopped")),
                Err(_) => return Ok(results),
            }
        }
    }

    /// Each validator's answers to this gateway's submissions so far ([`Submitter::report`]).
    pub fn submissions(&self) -> Vec<crate::submitter::LaneReport> {
        self.submitter.report()
    }

    /// Hands `tx` to every validator ([`Submitter`]); answers once one holds it, or with the
    /// refusal on its merits when none admits it.
    pub async fn submit(&self, tx: &SignedTx) -> Result<(), RpcError> {
        match self.submitter.submit(tx).await {
            Outcome::Admitted => Ok(()),
            Outcome::Refused(refusal) => Err(admission_error(&refusal)),
            Outcome::Busy(reason) => Err(RpcError::new(
                error::MATCHING_ENGINE_QUEUE_FULL,
                "matching_engine_queue_full",
            )
            .with_data(serde_json::json!({ "reason": reason }))),
        }
    }
}

/// What spends an unanswered transaction's nonce: a cancel of an order no account holds (no
/// exchange order id reaches `u64::MAX`), so only a rejection comes of it, and a rejection
/// changes nothing but the signer's nonce. A cancel goes first in its block, ahead of any
/// other account's orders, behind only this key's own lower nonces.
fn spend_body() -> TxBody {
    TxBody::CancelOrder {
        instrument: bulwark_types::InstrumentId::new(0),
        order: bulwark_types::OrderRef::Exchange(bulwark_types::OrderId::new(u64::MAX)),
    }
}

/// A validator mempool's refusal, as a Deribit error.
fn admission_error(refusal: &Refusal) -> RpcError {
    let code = refusal.code.as_str();
    let data = serde_json::json!({"reason": refusal.body["error"], "validator_code": code});
    match code {
        "signer_unknown" | "signature_invalid" => {
            error::unauthorized("the API key is not bound to an account").with_data(data)
        }
        "nonce_stale" | "duplicate" => RpcError::new(error::RETRY, "retry").with_data(data),
        "signer_queue_full" | "account_queue_full" | "mempool_full" => RpcError::new(
            error::MATCHING_ENGINE_QUEUE_FULL,
            "matching_engine_queue_full",
        )
        .with_data(data),
        _ => RpcError::new(error::BAD_ARGUMENTS, "bad_arguments").with_data(data),
    }
}
