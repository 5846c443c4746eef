//! The client commands' way in through a gateway: the same Deribit JSON-RPC API (over HTTP
//! GET, `deri-hmac-sha256`-signed with an API key) that ccxt and other Deribit clients use.
//! An API key is an agent key of the account: it trades and reads, never withdraws.
//!
//! Owns: signing private calls (a fresh nonce per request) and turning Deribit's error
//! envelope into an error naming its code.

use crate::client;
use anyhow::{Result, bail};
use bulwark_gateway::deribit::auth;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// An API key's credentials, as `bulwark apikey create` printed them.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub client_id: String,
    pub client_secret: String,
}

/// A gateway, with an API key for private calls.
pub struct Gateway {
    pub base: String,
    pub key: Option<ApiKey>,
}

static NONCE: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `key=value&...` with values percent-encoded.
pub fn query(params: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(params).unwrap_or_default()
}

impl Gateway {
    fn target(scope: &str, method: &str, query: &str) -> String {
        if query.is_empty() {
            format!("/api/v2/{scope}/{method}")
        } else {
            format!("/api/v2/{scope}/{method}?{query}")
        }
    }

    /// The `result` of a Deribit envelope, or its error.
    fn result(method: &str, response: client::Response) -> Result<Value> {
        let body = response.body;
        if let Some(result) = body.get("result") {
            return Ok(result.clone());
        }
        match body.get("error") {
            Some(error) => bail!(
                "{method}: error {} {}{}",
                error["code"],
                error["message"].as_str().unwrap_or(""),
                error
                    .get("data")
                    .map_or(String::new(), |data| format!(" ({data})"))
            ),
            None => bail!(
                "{method}: HTTP {} without an envelope: {body}",
                response.status
            ),
        }
    }

    /// A public method.
    pub fn public(&self, method: &str, query: &str) -> Result<Value> {
        let target = Self::target("public", method, query);
        Self::result(
            method,
            client::request_with(&self.base, "GET", &target, &[], None)?,
        )
    }

    /// A private method, signed with the API key.
    pub fn private(&self, method: &str, query: &str) -> Result<Value> {
        let Some(key) = &self.key else {
            bail!("{method} is private: give --api-key and --api-secret (bulwark apikey create)");
        };
        let target = Self::target("private", method, query);
        let ts = now_ms();
        let nonce = format!("{ts}-{}", NONCE.fetch_add(1, Ordering::Relaxed));
        let signature = auth::sign(
            &key.client_secret,
            &auth::signed_string(ts, &nonce, "GET", &target, b""),
        );
        let header = format!(
            "deri-hmac-sha256 id={},ts={ts},sig={signature},nonce={nonce}",
            key.client_id
        );
        Self::result(
            method,
            client::request_with(
                &self.base,
                "GET",
                &target,
                &[("Authorization", header.as_str())],
                None,
            )?,
        )
    }

    /// The gateway's own status (height, halt, lies seen).
    pub fn status(&self) -> Result<Value> {
        client::get_ok(&self.base, "/gateway/v1/status")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            query(&[
                ("instrument_name", "BTC_USDC-PERPETUAL".into()),
                ("label", "a b&c".into())
            ]),
            "instrument_name=BTC_USDC-PERPETUAL&label=a+b%26c"
        );
    }

    #[test]
    fn a_private_call_without_a_key_names_what_is_missing() {
        let gateway = Gateway {
            base: "http://127.0.0.1:1".into(),
            key: None,
        };
        let error = gateway.private("buy", "").unwrap_err().to_string();
        assert!(error.contains("--api-key"), "{error}");
    }
}
