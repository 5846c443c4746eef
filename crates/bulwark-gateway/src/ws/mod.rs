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
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The WebSocket transport's bounds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WsConfig {
    /// Most WebSocket connections open at once.
    pub connections_max: usize,
    /// Most WebSocket connections open at once from one address.
    pub connections_per_address_max: usize,
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
        connections_per_address_max: 32,
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
        assert!(self.connections_per_address_max <= self.connections_max);
        assert!(self.connections_per_address_max > 0 && self.subscriptions_max > 0);
        assert!(self.frame_bytes_max >= 1_024, "room for an auth request");
        assert!(self.queue_messages_max > 0 && self.in_flight_max > 0);
        assert!(
            self.queue_bytes_max >= 64 * 1_024,
            "room for the largest answer"
        );
        assert!(self.heartbeat_min <= self.heartbeat_max);
    }
}

/// Open WebSocket connections, in total and per address.
#[derive(Default)]
pub struct Slots {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a connection from `address`, or why not.
    fn admit(self: &Arc<Self>, address: IpAddr, config: &WsConfig) -> Result<Permit, &'static str> {
        let mut open = self.lock();
        if open.0 >= config.connections_max {
            return Err("too many WebSocket connections");
        }
        let mine = open.1.entry(address).or_insert(0);
        if *mine >= config.connections_per_address_max {
            return Err("too many WebSocket connections from this address");
        }
        *mine += 1;
        open.0 += 1;
        Ok(Permit {
            slots: self.clone(),
            address,
        })
    }

    /// Connections open now (total).
    pub fn open(&self) -> usize {
        self.lock().0
    }
}

/// One open connection's slot, given back when dropped.
pub struct Permit {
    slots: Arc<Slots>,
    address: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.0 -= 1;
        if let Some(mine) = open.1.get_mut(&self.address) {
            *mine -= 1;
            if *mine == 0 {
                open.1.remove(&self.address);
            }
        }
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
    let permit = match gateway.ws_slots().admit(peer.ip(), &config) {
        Ok(permit) => permit,
        Err(reason) => {
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
    fn connections_are_bounded_in_total_and_per_address() {
        let config = WsConfig {
            connections_max: 3,
            connections_per_address_max: 2,
            ..WsConfig::DEFAULT
        };
        config.assert();
        let slots = Arc::new(Slots::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.admit(a, &config).unwrap();
        let _second = slots.admit(a, &config).unwrap();
        assert!(slots.admit(a, &config).is_err(), "per address");
        let _third = slots.admit(b, &config).unwrap();
        assert!(slots.admit(b, &config).is_err(), "in total");
        drop(first);
        assert_eq!(slots.open(), 2);
        assert!(slots.admit(b, &config).is_ok(), "a slot given back");
    }

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
