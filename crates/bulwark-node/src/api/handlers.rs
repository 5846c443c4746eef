//! Route handlers. Each takes its inputs as `Result`s of axum's extractors, so that every
//! rejection becomes a typed [`ApiError`] rather than axum's plain-text default.

use super::connections::ClientAddress;
use super::error::ApiError;
use super::views::{self, AccountView};
use super::{ApiState, metrics as node_metrics};
use crate::executor::hex;
use crate::mempool::TxDigest;
use crate::shared::{TxStatus, lock};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bulwark_exchange::{Exchange, MarkOrigin};
use bulwark_types::{AssetCode, InstrumentName, PublicKey, SignedTx, tx::TX_BYTES_MAX};
use commonware_codec::DecodeExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

type ApiResult = Result<Json<Value>, ApiError>;

/// Runs before every route: refuses a declared body over the limit before reading any of it,
/// bounds the request's time, and counts requests and error responses for `/metrics`.
pub async fn guard(State(api): State<ApiState>, request: Request, next: Next) -> Response {
    let counters = &api.inner.counters;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let config = api.inner.config;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let response = if declared.is_some_and(|len| len > config.body_bytes_max as u64) {
        ApiError::BodyTooLarge {
            limit: config.body_bytes_max,
        }
        .into_response()
    } else {
        match tokio::time::timeout(config.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::RequestTimeout.into_response(),
        }
    };
    if response.status().is_client_error() {
        counters.responses_4xx.fetch_add(1, Ordering::Relaxed);
    } else if response.status().is_server_error() {
        counters.responses_5xx.fetch_add(1, Ordering::Relaxed);
    }
    response
}

pub async fn route_unknown() -> ApiError {
    ApiError::RouteUnknown
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn body(api: &ApiState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge {
                limit: api.inner.config.body_bytes_max,
            }
        } else {
            ApiError::BodyUnreadable(rejection.body_text())
        }
    })
}

fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(value)| value)
        .map_err(|rejection| ApiError::PathInvalid(rejection.body_text()))
}

/// Decodes lower-case or upper-case hex of at most `bytes_max` bytes.
pub fn decode_hex(text: &str, bytes_max: usize) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() / 2 > bytes_max {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

fn decode_tx_hex(text: &str) -> Result<SignedTx, ApiError> {
    let bytes = decode_hex(text, TX_BYTES_MAX).ok_or(ApiError::EncodingInvalid {
        encoding: "hex (at most TX_BYTES_MAX bytes)",
    })?;
    SignedTx::decode(bytes).map_err(|e| ApiError::TxUndecodable(e.to_string()))
}

fn decode_tx_base64(text: &str) -> Result<SignedTx, ApiError> {
    // Four base64 characters carry three bytes; refuse anything longer than a largest tx.
    if text.len() > TX_BYTES_MAX.div_ceil(3) * 4 {
        return Err(ApiError::EncodingInvalid {
            encoding: "base64 (at most TX_BYTES_MAX bytes)",
        });
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| ApiError::EncodingInvalid { encoding: "base64" })?;
    SignedTx::decode(bytes).map_err(|e| ApiError::TxUndecodable(e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    tx: Option<String>,
    tx_base64: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    txs: Vec<String>,
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::JsonInvalid(e.to_string()))
}

fn refuse_if_halted(api: &ApiState) -> Result<(), ApiError> {
    match &lock(&api.inner.shared.status).halted {
        Some(reason) => Err(ApiError::NodeHalted(reason.clone())),
        None => Ok(()),
    }
}

/// Admits decoded transactions from `client`, with other requests' queued at the same moment,
/// clients in turns ([`super::admission`]); one result per transaction.
async fn admit(
    api: &ApiState,
    client: ClientAddress,
    txs: Vec<SignedTx>,
) -> Result<Vec<Result<TxDigest, ApiError>>, ApiError> {
    let counters = &api.inner.counters;
    counters
        .txs_received
        .fetch_add(txs.len() as u64, Ordering::Relaxed);
    if txs.is_empty() {
        return Ok(Vec::new());
    }
    let results = api
        .inner
        .admission
        .admit(client, txs)
        .await
        .map_err(|stopped| ApiError::NodeHalted(stopped.to_string()))?;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    counters
        .txs_admitted
        .fetch_add(admitted as u64, Ordering::Relaxed);
    Ok(results
        .into_iter()
        .map(|r| r.map_err(ApiError::Admit))
        .collect())
}

pub async fn submit_tx(
    State(api): State<ApiState>,
    Extension(client): Extension<ClientAddress>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let raw = body(&api, raw)?;
    let request: SubmitBody = parse_json(&raw)?;
    let tx = match (request.tx, request.tx_base64) {
        (Some(text), None) => decode_tx_hex(&text)?,
        (None, Some(text)) => decode_tx_base64(&text)?,
        _ => {
            return Err(ApiError::JsonInvalid(
                "give exactly one of `tx` (hex) and `tx_base64`".into(),
            ));
        }
    };
    refuse_if_halted(&api)?;
    let digest = admit(&api, client, vec![tx])
        .await?
        .pop()
        .expect("one result per transaction")?;
    Ok(Json(
        json!({"digest": hex(digest.as_ref()), "status": "pending"}),
    ))
}

pub async fn submit_txs(
    State(api): State<ApiState>,
    Extension(client): Extension<ClientAddress>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let raw = body(&api, raw)?;
    let request: BatchBody = parse_json(&raw)?;
    let max = api.inner.config.batch_txs_max;
    if request.txs.len() > max {
        return Err(ApiError::BatchTooLarge {
            max,
            got: request.txs.len(),
        });
    }
    if request.txs.is_empty() {
        return Err(ApiError::BatchEmpty);
    }
    refuse_if_halted(&api)?;
    let decoded: Vec<Result<SignedTx, ApiError>> =
        request.txs.iter().map(|t| decode_tx_hex(t)).collect();
    let valid: Vec<SignedTx> = decoded
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mut admitted = admit(&api, client, valid).await?.into_iter();
    let results: Vec<Value> = decoded
        .into_iter()
        .map(|r| {
            match r.and_then(|_| admitted.next().expect("one result per decoded transaction")) {
                Ok(digest) => json!({"digest": hex(digest.as_ref()), "status": "pending"}),
                Err(error) => error.to_json(),
            }
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

pub async fn tx_status(
    State(api): State<ApiState>,
    digest: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let text = path(digest)?;
    let digest = parse_digest(&text)?;
    let body = tx_status_json(&api, digest, &text)
        .await
        .ok_or(ApiError::TxUnknown)?;
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestsBody {
    digests: Vec<String>,
}

/// `POST /txs/status`: the status of each digest, in order, as `GET /tx/{digest}` gives it
/// (`"status": "unknown"` where that answers 404); at most `batch_txs_max` digests.
pub async fn txs_status(
    State(api): State<ApiState>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let raw = body(&api, raw)?;
    let request: DigestsBody = parse_json(&raw)?;
    let max = api.inner.config.batch_txs_max;
    if request.digests.len() > max {
        return Err(ApiError::BatchTooLarge {
            max,
            got: request.digests.len(),
        });
    }
    // Memory first; whatever it does not hold is asked of the durable receipts in one query.
    let mut results: Vec<Option<Value>> = Vec::with_capacity(request.digests.len());
    let mut on_disk: Vec<(usize, TxDigest)> = Vec::new();
    for (i, text) in request.digests.iter().enumerate() {
        match parse_digest(text) {
            Ok(digest) => {
                let held = held_tx_status(&api, digest, text);
                if held.is_none() {
                    on_disk.push((i, digest));
                }
                results.push(held);
            }
            Err(error) => results.push(Some(error.to_json())),
        }
    }
    let sender = lock(&api.inner.shared.receipt_queries).clone();
    if let (Some(sender), false) = (sender, on_disk.is_empty()) {
        let digests = on_disk.iter().map(|(_, d)| *d).collect();
        let found = crate::receipt_archive::lookup_many(sender, digests).await;
        for ((i, _), receipt) in on_disk.iter().zip(found) {
            results[*i] = receipt.map(|r| stored_json(&r, &request.digests[*i]));
        }
    }
    let results: Vec<Value> = results
        .into_iter()
        .zip(&request.digests)
        .map(|(result, text)| {
            result.unwrap_or_else(|| json!({"digest": text.to_lowercase(), "status": "unknown"}))
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

fn parse_digest(text: &str) -> Result<TxDigest, ApiError> {
    let bytes = decode_hex(text, 32)
        .filter(|b| b.len() == 32)
        .ok_or(ApiError::DigestInvalid)?;
    TxDigest::decode(bytes).map_err(|_| ApiError::DigestInvalid)
}

/// What this node knows of `digest`: from memory, else from its durable receipts; `None` if
/// nothing.
async fn tx_status_json(api: &ApiState, digest: TxDigest, text: &str) -> Option<Value> {
    match held_tx_status(api, digest, text) {
        Some(held) => Some(held),
        None => stored_tx_status(api, digest, text).await,
    }
}

/// What this node holds in memory of `digest`.
fn held_tx_status(api: &ApiState, digest: TxDigest, text: &str) -> Option<Value> {
    let status = lock(&api.inner.shared.receipts).get(&digest).cloned()?;
    let body = match status {
        TxStatus::Pending => json!({"digest": text.to_lowercase(), "status": "pending"}),
        TxStatus::Dropped { reason } => {
            json!({"digest": text.to_lowercase(), "status": "dropped", "reason": reason.code()})
        }
        TxStatus::Finalized {
            height,
            index,
            rejection,
            events,
        } => {
            let finalized = api.inner.shared.finalized_view();
            let state = &*finalized.state;
            let events: Vec<Value> = events.iter().map(|e| views::event_json(state, e)).collect();
            json!({"digest": text.to_lowercase(), "status": "finalized", "height": height, "index": index, "outcome": outcome_json(rejection), "events": events})
        }
    };
    Some(body)
}

fn outcome_json(rejection: Option<bulwark_types::RejectReason>) -> Value {
    match rejection {
        None => json!({"result": "applied"}),
        Some(reason) => {
            json!({"result": "rejected", "reason": reason.to_string(), "code": reason.code()})
        }
    }
}

/// A finalized transaction this node no longer holds in memory (it restarted since, or the
/// receipt aged out), answered from its durable receipts: height, index and outcome, without
/// events (`"events": null`; they are not stored).
async fn stored_tx_status(api: &ApiState, digest: TxDigest, text: &str) -> Option<Value> {
    let sender = lock(&api.inner.shared.receipt_queries).clone()?;
    let receipt = crate::receipt_archive::lookup(sender, digest).await?;
    Some(stored_json(&receipt, text))
}

fn stored_json(receipt: &crate::receipt_archive::StoredReceipt, text: &str) -> Value {
    json!({
        "digest": text.to_lowercase(),
        "status": "finalized",
        "height": receipt.height,
        "index": receipt.index,
        "outcome": outcome_json(receipt.rejection),
        "events": null,
        "note": "from this validator's durable receipts: events are not stored",
    })
}

pub async fn instruments(State(api): State<ApiState>) -> ApiResult {
    let finalized = api.inner.shared.finalized_view();
    let state = &*finalized.state;
    let list: Vec<_> = state
        .instruments()
        .iter()
        .map(views::instrument_view)
        .collect();
    Ok(Json(
        json!({"height": state.height().get(), "instruments": list}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookQuery {
    depth: Option<usize>,
}

pub async fn book(
    State(api): State<ApiState>,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<BookQuery>, QueryRejection>,
) -> ApiResult {
    let name = path(name)?;
    let query = query
        .map_err(|rejection| ApiError::QueryInvalid(rejection.body_text()))?
        .0;
    let depth = query.depth.unwrap_or(20);
    let depth_max = api.inner.config.book_depth_max;
    if depth == 0 || depth > depth_max {
        return Err(ApiError::QueryInvalid(format!(
            "depth must lie in 1..={depth_max}"
        )));
    }
    let name =
        InstrumentName::parse(&name).map_err(|e| ApiError::InstrumentNameInvalid(e.to_string()))?;
    let finalized = api.inner.shared.finalized_view();
    let state = &*finalized.state;
    let instrument = state
        .instrument_by_name(&name)
        .ok_or(ApiError::InstrumentUnknown)?;
    let view = views::book_view(state, instrument, depth);
    Ok(Json(serde_json::to_value(view).expect("views serialize")))
}

pub async fn prices(State(api): State<ApiState>) -> ApiResult {
    let finalized = api.inner.shared.finalized_view();
    let state = &*finalized.state;
    let assets: BTreeSet<AssetCode> = state
        .instruments()
        .iter()
        .map(|i| i.spec.underlying())
        .collect();
    let index: Vec<Value> = assets
        .iter()
        .map(
            |a| json!({"asset": a.as_str(), "price": state.index_price(*a).map(|p| p.to_string())}),
        )
        .collect();
    let marks: Vec<Value> = state
        .instruments()
        .iter()
        .map(|i| json!({"instrument": i.spec.name.to_string(), "status": views::status_name(i.status), "mark": i.mark.map(|m| m.to_string()), "mark_source": mark_source(state, i)}))
        .collect();
    let index_source = if state.oracle_state().is_some() {
        "oracle"
    } else {
        "leader-supplied"
    };
    Ok(Json(
        json!({"height": state.height().get(), "index_source": index_source, "index": index, "marks": marks}),
    ))
}

/// Who set an instrument's mark, as the API names it.
fn mark_source(state: &Exchange, instrument: &bulwark_exchange::Instrument) -> &'static str {
    match state.mark_origin(instrument) {
        MarkOrigin::Proposer => "leader-supplied",
        MarkOrigin::PerpetualMedian => "exchange: median of index + premium, mid, last trade",
        MarkOrigin::Smile { .. } => "exchange: smile fitted to the option books",
        MarkOrigin::Model { .. } => "exchange: Black-76 at the index and the model vol",
        MarkOrigin::Unmarked => "none: no proposer's mark is taken under the oracle",
    }
}

/// Each option series' smile: when it was fitted and its at-the-money vol.
fn smiles_status(state: &Exchange) -> Vec<Value> {
    let now = state.time().millis();
    state
        .smiles()
        .map(|((asset, expiry_ms), fitted)| {
            let svi = fitted.smile.params();
            let vol_atm = svi.vol(0.0, fitted.smile.time_years()).ok();
            json!({
                "underlying": asset.as_str(),
                "expiry_ms": expiry_ms,
                "fitted_at_ms": fitted.fitted_at_ms,
                "age_ms": now.saturating_sub(fitted.fitted_at_ms),
                "vol_atm": vol_atm,
            })
        })
        .collect()
}

fn parse_key(text: &str) -> Result<PublicKey, ApiError> {
    let bytes = decode_hex(text, 32)
        .filter(|b| b.len() == 32)
        .ok_or(ApiError::KeyInvalid)?;
    PublicKey::decode(bytes).map_err(|_| ApiError::KeyInvalid)
}

fn account_view(
    api: &ApiState,
    key: &PublicKey,
    with_details: bool,
) -> Result<AccountView, ApiError> {
    let finalized = api.inner.shared.finalized_view();
    let state = &*finalized.state;
    let nonce_last = api
        .inner
        .shared
        .newest_view()
        .nonce_last(key)
        .max(state.nonce_last(key));
    let nonce_pending_max = lock(&api.inner.shared.mempool).nonce_max(key);
    let binding = state.key_binding(key);
    if binding.is_none() && nonce_last.is_none() && nonce_pending_max.is_none() {
        return Err(ApiError::AccountUnknown);
    }
    let nonce_next = nonce_last
        .max(nonce_pending_max)
        .map_or(1, |n| n.saturating_add(1));
    let mut view = AccountView {
        height: state.height().get(),
        key: hex(key.as_ref()),
        role: binding.map_or("none", |(_, role)| views::role_name(role)),
        nonce_last,
        nonce_pending_max,
        nonce_next,
        account_id: None,
        owner: None,
        cash: None,
        balance: None,
        margin_mode: None,
        equity: None,
        margin_initial: None,
        margin_maintenance: None,
        available_funds: None,
        unrealised: None,
        premium_reserved: None,
        available_withdrawal_funds: None,
        withdrawal_pending: None,
        withdrawn: None,
        orders: Vec::new(),
        positions: Vec::new(),
    };
    let Some(account) = binding.and_then(|(id, _)| state.account(id)) else {
        return Ok(view);
    };
    view.account_id = Some(account.id.get());
    view.owner = Some(hex(account.owner.as_ref()));
    view.cash = Some(account.cash.to_string());
    view.withdrawn = Some(account.withdrawn.to_string());
    view.margin_mode = Some(match account.margin_mode {
        bulwark_exchange::MarginMode::Standard => "standard",
        bulwark_exchange::MarginMode::Portfolio => "portfolio",
    });
    if let Some(margin) = state.account_margin(account.id) {
        view.equity = Some(margin.equity.to_string());
        view.margin_initial = Some(margin.requirement.initial.to_string());
        view.margin_maintenance = Some(margin.requirement.maintenance.to_string());
        view.available_funds = Some(margin.available.to_string());
        view.unrealised = Some(margin.unrealised.to_string());
        view.premium_reserved = Some(margin.premium_reserved.to_string());
        view.available_withdrawal_funds = Some(
            margin
                .withdrawable
                .max(bulwark_types::Money::ZERO)
                .to_string(),
        );
        view.balance = Some(margin.balance.to_string());
    }
    view.withdrawal_pending = state.pending_withdrawal(account.id).map(|pending| {
        serde_json::json!({
            "amount": pending.amount.to_string(),
            "requested_ms": pending.requested_ms,
        })
    });
    view.positions = views::positions_view(state, account);
    if with_details {
        view.orders = views::orders_view(state, account);
    }
    Ok(view)
}

pub async fn account(
    State(api): State<ApiState>,
    key: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let key = parse_key(&path(key)?)?;
    let view = account_view(&api, &key, true)?;
    Ok(Json(serde_json::to_value(view).expect("views serialize")))
}

pub async fn positions(
    State(api): State<ApiState>,
    key: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let key = parse_key(&path(key)?)?;
    let view = account_view(&api, &key, false)?;
    Ok(Json(
        json!({"height": view.height, "key": view.key, "positions": view.positions}),
    ))
}

pub async fn status(State(api): State<ApiState>) -> ApiResult {
    // Lock order (shared.rs): the mempool before the status.
    let mempool_evicted = lock(&api.inner.shared.mempool).evicted();
    let status = lock(&api.inner.shared.status).clone();
    let gossip_forgers = api.inner.shared.forgers();
    let identity = &api.inner.identity;
    let mode = match &status.halted {
        Some(reason) => format!("halted: {reason}"),
        // Execution trails the finalized tip by more than a few blocks: say so.
        None if status.tip_height > status.finalized_height + 16 => "catching up".to_string(),
        None => "running".to_string(),
    };
    let peers_connected = (api.inner.telemetry.peers_connected)();
    Ok(Json(json!({
        "mode": mode,
        "node": identity.public_key,
        "validators": identity.participants.len(),
        "peers_connected": peers_connected,
        "peers_expected": identity.participants.len().saturating_sub(1),
        "finalized_height": status.finalized_height,
        "tip_height": status.tip_height,
        "state_digest": status.state_digest,
        "finalized_block": status.finalized_block,
        "view": status.view,
        "consensus_view": status.consensus_view,
        "leader": status.leader,
        "views_skipped": status.views_skipped,
        "faults_observed": status.faults_observed,
        "proposals_refused": status.proposals_refused,
        "refused": status.refused.iter().map(|(leader, (count, reason))| json!({"leader": leader, "proposals": count, "last_reason": reason})).collect::<Vec<_>>(),
        "gossip_dropped": status.gossip_dropped,
        "gossip_muted": status.gossip_muted,
        "gossip_forgers": gossip_forgers,
        "mempool_txs": status.mempool_txs,
        "mempool_evicted": mempool_evicted,
        "transactions_executed": status.transactions_executed,
        "blocks_kept": status.blocks_kept,
        "blocks_executed_at_finalization": status.blocks_executed,
        "blocks_finalized_on_certificate": status.blocks_finalized_on_certificate,
        "trades_executed": status.trades_executed,
        "runtime_sync_attempts": status.runtime_sync_attempts,
        "runtime_syncs": status.runtime_syncs,
        "runtime_sync_height": status.runtime_sync_height,
        "archive_gap": status.archive_gap,
        "consensus_start": status.consensus_start.as_ref().map(|start| json!({
            "journal_lost": start.journal_lost,
            "started_ms": start.started_ms,
            "floor": start.floor.as_ref().map(|floor| json!({
                "view": floor.view,
                "height": floor.height,
                "block_time_ms": floor.block_time_ms,
                "source": floor.source.as_str(),
            })),
        })),
        "oracle": oracle_status(&api),
        "risk": risk_status(&api),
    })))
}

/// The insurance fund and the backstop, in the finalized state.
fn risk_status(api: &ApiState) -> Value {
    let finalized = api.inner.shared.finalized_view();
    let state = &*finalized.state;
    let backstop = state.backstop().and_then(|id| state.account(id));
    json!({
        "insurance_fund": state.ledger().insurance_fund.to_string(),
        "backstop_account": backstop.map(|a| a.id.get()),
        "backstop_positions": backstop.map_or(0, |a| a.exposures.values().filter(|e| e.position != 0).count()),
    })
}

/// Which prices are agreed and which leader-supplied, and the oracle's health per asset.
fn oracle_status(api: &ApiState) -> Value {
    let finalized = api.inner.shared.finalized_view();
    let state = &*finalized.state;
    let Some(oracle) = state.oracle_state() else {
        return json!({
            "index": "leader-supplied",
            "marks": marks_status(state),
            "smiles": smiles_status(state),
            "health": "no oracle in this chain's genesis: each block's leader supplies the index from its own feed",
        });
    };
    let assets: Vec<Value> = oracle
        .assets()
        .map(|(asset, index)| {
            json!({
                "asset": asset.as_str(),
                "mode": format!("{:?}", index.mode()).to_lowercase(),
                "index": index.index().map(|p| p.to_string()),
                "median": index.raw().map(|p| p.to_string()),
                "updated_at_ms": index.updated_at_ms(),
            })
        })
        .collect();
    json!({
        "index": "oracle: median of 2f+1 validators' signed observations, deviation-guarded",
        "marks": marks_status(state),
        "smiles": smiles_status(state),
        "assets": assets,
    })
}

/// How many instruments' marks each source sets.
fn marks_status(state: &Exchange) -> Value {
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for instrument in state.instruments() {
        if instrument.status == bulwark_exchange::InstrumentStatus::Trading {
            *counts.entry(mark_source(state, instrument)).or_default() += 1;
        }
    }
    json!(counts)
}

pub async fn metrics(State(api): State<ApiState>) -> Response {
    let runtime = (api.inner.telemetry.encode)();
    let text = node_metrics::encode(
        &runtime,
        &api.inner.shared,
        &api.inner.counters,
        api.inner.admission.counters(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
