//! The dashboard: a web page served by the gateway for the people who run the venue and the
//! risk teams who watch it. No build toolchain at run time: one HTML file with its script
//! inline ([`PAGE`]), charts drawn as SVG on the server by `plotters` ([`charts`]).
//!
//! What it shows: cluster health as each validator reports it (heights, views, leader, peers,
//! state digests checked against this gateway's own, faults and refused proposals per leader),
//! each book's depth and recent trades, the index against every validator's newest proven
//! observation with outlier flags, each option series' fitted smile with its books' quotes
//! (flagged by the same robust fit), the insurance fund and liquidations over time, and the
//! oracle and market modes.
//!
//! Routes: `GET /dashboard` (the page), `GET /dashboard/v1/state` (the JSON it renders, see
//! [`view::state`]), `GET /dashboard/v1/charts/{fund|index|smile}.svg`. Live updates: the page
//! subscribes to the WebSocket channel `bulwark.dashboard` when the gateway serves one, and
//! otherwise reads the state once a second.
//!
//! Owns: the history ([`history::History`], in the replica, recorded per proven block) and the
//! cluster reports ([`health::ClusterHealth`], read by a background task). Never: lets a page
//! request reach a validator; answers beyond the address's read budget (`10028`).

pub mod charts;
pub mod health;
pub mod history;
pub mod view;

use crate::deribit::error;
use crate::gateway::Gateway;
use crate::limits::Budget;
use crate::server::Peer;
use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bulwark_types::AssetCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The page.
pub const PAGE: &str = include_str!("page.html");

/// The dashboard's routes over `gateway`.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/", get(page))
        .route("/dashboard/v1/state", get(state))
        .route("/dashboard/v1/charts/fund.svg", get(fund_chart))
        .route("/dashboard/v1/charts/index.svg", get(index_chart))
        .route("/dashboard/v1/charts/smile.svg", get(smile_chart))
}

/// Takes one read from the address's budget; false when it is spent.
pub(crate) fn admit(gateway: &Gateway, peer: &Peer) -> bool {
    gateway.limiter().take(
        &peer.client(),
        Budget::Reads,
        gateway.config.rates.address_reads,
        Instant::now(),
    )
}

/// The answer to a request over the address's budget.
pub(crate) fn refused() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({"error": error::too_many_requests().to_json()})),
    )
        .into_response()
}

async fn page(State(gateway): State<Arc<Gateway>>, Extension(peer): Extension<Peer>) -> Response {
    if !admit(&gateway, &peer) {
        return refused();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// How long a rendered state is served again: rendering holds the replica's lock (it fits
/// each series' quotes), so however many pages and subscribers ask, it runs at most once in
/// this long.
pub const RENDER_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The newest rendered state and when it was rendered.
#[derive(Default)]
pub struct Rendered {
    newest: std::sync::Mutex<Option<(Instant, Arc<Value>)>>,
}

/// The state document (what the page and the WebSocket channel carry), at most
/// [`RENDER_REUSE`] old.
pub fn state_json(gateway: &Gateway) -> Arc<Value> {
    let mut newest = gateway
        .dashboard
        .newest
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((at, state)) = &*newest
        && at.elapsed() < RENDER_REUSE
    {
        return state.clone();
    }
    let reports = gateway.health.reports();
    let state = Arc::new(view::state(gateway, &reports));
    *newest = Some((Instant::now(), state.clone()));
    state
}

/// How often the dashboard's state is rendered for the WebSocket channel.
pub const PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Renders the dashboard's state once each [`PUBLISH_INTERVAL`] while someone subscribes to
/// `bulwark.dashboard` (once for all of them) and hands it to the feed, whose next update
/// carries it.
pub async fn publish(gateway: Arc<Gateway>) {
    let mut ticker = tokio::time::interval(PUBLISH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let feed = gateway.replica.feed();
        if feed.interest(crate::feed::Interest::Dashboard) == 0 {
            continue;
        }
        feed.offer_dashboard(state_json(&gateway));
    }
}

async fn state(State(gateway): State<Arc<Gateway>>, Extension(peer): Extension<Peer>) -> Response {
    if !admit(&gateway, &peer) {
        return refused();
    }
    // Serialized from the shared render, not a deep copy of it per request.
    let body = serde_json::to_string(&*state_json(&gateway)).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn svg(outcome: Result<String, charts::ChartError>) -> Response {
    match outcome {
        Ok(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            svg,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// A copy of the per-block samples: charts are drawn after the replica's lock is released.
fn samples(gateway: &Gateway) -> Vec<history::Sample> {
    gateway.replica.lock().history.samples().cloned().collect()
}

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, what.to_string()).into_response()
}

async fn fund_chart(
    State(gateway): State<Arc<Gateway>>,
    Extension(peer): Extension<Peer>,
) -> Response {
    if !admit(&gateway, &peer) {
        return refused();
    }
    svg(charts::insurance_fund(&samples(&gateway)))
}

async fn index_chart(
    State(gateway): State<Arc<Gateway>>,
    Extension(peer): Extension<Peer>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !admit(&gateway, &peer) {
        return refused();
    }
    let Some(asset) = query
        .get("asset")
        .and_then(|a| AssetCode::parse(a.as_str()).ok())
    else {
        return not_found("asset: an underlying's code, such as BTC");
    };
    svg(charts::index(&samples(&gateway), asset))
}

async fn smile_chart(
    State(gateway): State<Arc<Gateway>>,
    Extension(peer): Extension<Peer>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !admit(&gateway, &peer) {
        return refused();
    }
    let underlying = query.get("underlying").cloned().unwrap_or_default();
    let Some(expiry_ms) = query.get("expiry_ms").and_then(|e| e.parse::<u64>().ok()) else {
        return not_found("expiry_ms: the series' expiry in ms");
    };
    let state = state_json(&gateway);
    let Some(series) = state["smiles"].as_array().and_then(|all| {
        all.iter()
            .find(|s| s["underlying"] == underlying.as_str() && s["expiry_ms"] == expiry_ms)
    }) else {
        return not_found("no such option series");
    };
    svg(charts::smile(series))
}
