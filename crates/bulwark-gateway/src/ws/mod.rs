//! The WebSocket transport: Deribit's JSON-RPC 2.0 over WebSocket at `/ws/api/v2`.
//!
//! Every HTTP method answers here too, through the same dispatcher
//! ([`crate::deribit::methods::dispatch`]); the connection adds what only a connection can
//! have (handled in [`session`]): `public/auth` (grants `client_credentials`,
//! `client_signature`, `refresh_token`), after which private calls act for that API key;
//! subscriptions (`public/subscribe`, `private/subscribe`, `public/unsubscribe`,
//! `private/unsubscribe`, `public/unsubscribe_all`, `private/unsubscribe_all`) to the channels
//! of [`channels::FAMILIES`], driven by the finalized blocks the replica applies
//! ([`crate::feed`]); heartbeats (`public/set_heartbeat`, `public/disable_heartbeat`,
//! `public/test`); `public/hello`; cancel-on-disconnect
//! (`private/enable_cancel_on_disconnect`, `private/disable_cancel_on_disconnect`,
//! `private/get_cancel_on_disconnect`, scope `connection`); `private/logout`.
//!
//! Owns: the upgrade (tokio-tungstenite's framing over hyper's upgraded connection), the
//! connection bounds ([`WsConfig`]: in total and per address, frame size, subscriptions,
//! requests in flight, the outgoing queue in messages and bytes).
//! Never: lets one connection's outgoing queue grow past its bound (the client is sent a
//! close frame with the reason and dropped); answers anything but Deribit's envelope to a
//! frame it can read; panics on a frame.

pub mod channels;
pub mod session;

use crate::deribit::error::{self, RpcError};
use crate::gateway::Gateway;
use crate::server::Peer;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark_node::api::connections::SlotRefused;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The WebSocket transport's bounds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WsConfig {
    /// Most WebSocket connections open at once.
    pub connections_max: usize,
    /// Most WebSocket connections open at once from one client (an IPv4 address or an IPv6
    /// /64: `bulwark_node::api::connections::ClientAddress`).
    pub connections_per_client_max: usize,
    /// Most channels one connection is subscribed to.
    pub subscriptions_max: usize,
    /// Largest frame (and message) read; a larger one is answered `11050` and the
    /// connection closed (1009).
    pub frame_bytes_max: usize,
    /// Most messages waiting to be written to one connection.
    pub queue_messages_max: usize,
    /// Most bytes waiting to be written to one connection.
    pub queue_bytes_max: usize,
    /// Most requests of one connection being answered at once (orders wait for finality).
    pub in_flight_max: usize,
    /// Shortest heartbeat interval a client may ask for (Deribit's: 10 s).
    pub heartbeat_min: Duration,
    /// Longest heartbeat interval a client may ask for.
    pub heartbeat_max: Duration,
    /// How long the closing frame may take to reach a client before the socket is dropped.
    pub close_timeout: Duration,
}

impl WsConfig {
    pub const DEFAULT: Self = Self {
        connections_max: 512,
        connections_per_client_max: 32,
        subscriptions_max: 256,
        frame_bytes_max: 32 * 1024,
        queue_messages_max: 1_024,
        queue_bytes_max: 1 << 20,
        in_flight_max: 8,
        heartbeat_min: Duration::from_secs(10),
        heartbeat_max: Duration::from_secs(3_600),
        close_timeout: Duration::from_secs(10),
    };

    /// Checks relations between the fields.
    pub fn assert(&self) {
        assert!(self.connections_per_client_max <= self.connections_max);
        assert!(self.connections_per_client_max > 0 && self.subscriptions_max > 0);
        assert!(self.frame_bytes_max >= 1_024, "room for an auth request");
        assert!(self.queue_messages_max > 0 && self.in_flight_max > 0);
        assert!(
            self.queue_bytes_max >= 64 * 1_024,
            "room for the largest answer"
        );
        assert!(self.heartbeat_min <= self.heartbeat_max);
    }
}

fn refuse(status: StatusCode, error: RpcError) -> Response {
    let body = json!({"jsonrpc": "2.0", "error": error.to_json(), "testnet": false});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The key a WebSocket handshake carries, if the request is one.
fn handshake_key(headers: &HeaderMap) -> Option<&HeaderValue> {
    let has = |name, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return None;
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return None;
    }
    headers.get(header::SEC_WEBSOCKET_KEY)
}

/// `GET /ws/api/v2`: the upgrade. Refused with an envelope (HTTP 400 `11050` for a request
/// that is not a WebSocket handshake, 429 `10028` past the connection bounds).
pub async fn upgrade(
    State(gateway): State<Arc<Gateway>>,
    Extension(Peer(peer)): Extension<Peer>,
    mut request: Request,
) -> Response {
    let Some(key) = handshake_key(request.headers()).cloned() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            RpcError::new(error::BAD_REQUEST, "bad_request")
                .with_data(json!({"reason": "expected a WebSocket handshake (version 13)"})),
        );
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            RpcError::new(error::BAD_REQUEST, "bad_request")
                .with_data(json!({"reason": "this connection cannot be upgraded"})),
        );
    };
    let config = gateway.config.ws;
    let permit = match gateway.ws_slots().take(peer.ip()) {
        Ok(permit) => permit,
        Err(refused) => {
            let reason = match refused {
                SlotRefused::Full => "too many WebSocket connections",
                SlotRefused::ClientFull => "too many WebSocket connections from this client",
            };
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                error::too_many_requests().with_data(json!({"reason": reason})),
            );
        }
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                return;
            }
        };
        let frames = WebSocketConfig::default()
            .max_message_size(Some(config.frame_bytes_max))
            .max_frame_size(Some(config.frame_bytes_max));
        let socket = WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            Role::Server,
            Some(frames),
        )
        .await;
        session::run(gateway, socket, peer, permit).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_version_13_upgrades_are_handshakes() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("abc"));
        assert!(handshake_key(&headers).is_none(), "no version");
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        assert!(handshake_key(&headers).is_some());
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(handshake_key(&headers).is_none());
    }
}
