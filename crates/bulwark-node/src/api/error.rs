//! Typed API errors: every refusal is an HTTP status and a JSON body
//! `{"error": "<sentence>", "code": "<stable_snake_case>"}`, plus the reject reason's wire code
//! where the exchange or mempool gave one. Codes are part of the API: append, never rename.

use crate::mempool::AdmitError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the API refused a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("request body could not be read: {0}")]
    BodyUnreadable(String),
    #[error("request body is not valid JSON of the expected shape: {0}")]
    JsonInvalid(String),
    #[error("transaction encoding is not valid {encoding}")]
    EncodingInvalid { encoding: &'static str },
    #[error("transaction bytes do not decode: {0}")]
    TxUndecodable(String),
    #[error("a batch holds at most {max} transactions, got {got}")]
    BatchTooLarge { max: usize, got: usize },
    #[error("a batch holds at least one transaction")]
    BatchEmpty,
    #[error("public key must be 64 hex characters of a valid ed25519 key")]
    KeyInvalid,
    #[error("transaction digest must be 64 hex characters")]
    DigestInvalid,
    #[error("instrument name is not valid: {0}")]
    InstrumentNameInvalid(String),
    #[error("query parameter is not valid: {0}")]
    QueryInvalid(String),
    #[error("path is not valid: {0}")]
    PathInvalid(String),
    #[error("no instrument is listed under this name")]
    InstrumentUnknown,
    #[error("no account or key is known under this public key")]
    AccountUnknown,
    #[error("this node has no record of a transaction with this digest")]
    TxUnknown,
    #[error("no such route")]
    RouteUnknown,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("mempool refused the transaction: {0}")]
    Admit(AdmitError),
    #[error("this node halted and takes no transactions: {0}")]
    NodeHalted(String),
    #[error("the request was not completed in time")]
    RequestTimeout,
    #[error("block {height} is not finalized here yet (executed up to {executed})")]
    BlockNotFinalized { height: u64, executed: u64 },
    #[error("block {height} is no longer archived here (pruned)")]
    BlockPruned { height: u64 },
    #[error("this node does not serve finalized blocks")]
    BlocksUnavailable,
    #[error("this node holds no snapshot yet")]
    SnapshotUnavailable,
}

/// The JSON body of an error.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    code: &'a str,
    /// The exchange's stable reject code, when the refusal came from a stateless check.
    #[serde(skip_serializing_if = "Option::is_none")]
    reject_code: Option<u16>,
}

impl ApiError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BodyUnreadable(_) => "body_unreadable",
            ApiError::JsonInvalid(_) => "json_invalid",
            ApiError::EncodingInvalid { .. } => "encoding_invalid",
            ApiError::TxUndecodable(_) => "tx_undecodable",
            ApiError::BatchTooLarge { .. } => "batch_too_large",
            ApiError::BatchEmpty => "batch_empty",
            ApiError::KeyInvalid => "key_invalid",
            ApiError::DigestInvalid => "digest_invalid",
            ApiError::InstrumentNameInvalid(_) => "instrument_name_invalid",
            ApiError::QueryInvalid(_) => "query_invalid",
            ApiError::PathInvalid(_) => "path_invalid",
            ApiError::InstrumentUnknown => "instrument_unknown",
            ApiError::AccountUnknown => "account_unknown",
            ApiError::TxUnknown => "tx_unknown",
            ApiError::RouteUnknown => "route_unknown",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Admit(e) => admit_code(e),
            ApiError::NodeHalted(_) => "node_halted",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::BlockNotFinalized { .. } => "block_not_finalized",
            ApiError::BlockPruned { .. } => "block_pruned",
            ApiError::BlocksUnavailable => "blocks_unavailable",
            ApiError::SnapshotUnavailable => "snapshot_unavailable",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InstrumentUnknown
            | ApiError::AccountUnknown
            | ApiError::TxUnknown
            | ApiError::RouteUnknown
            | ApiError::BlockNotFinalized { .. }
            | ApiError::SnapshotUnavailable => StatusCode::NOT_FOUND,
            ApiError::BlockPruned { .. } => StatusCode::GONE,
            ApiError::BlocksUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Admit(AdmitError::SignatureInvalid | AdmitError::Invalid(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Admit(AdmitError::NonceStale { .. } | AdmitError::Duplicate) => {
                StatusCode::CONFLICT
            }
            ApiError::Admit(AdmitError::SignerQueueFull(_) | AdmitError::AccountQueueFull(_)) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Admit(AdmitError::UnknownSigner) => StatusCode::FORBIDDEN,
            ApiError::Admit(AdmitError::PoolFull) | ApiError::NodeHalted(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn reject_code(&self) -> Option<u16> {
        match self {
            ApiError::Admit(AdmitError::Invalid(reason)) => Some(reason.code()),
            _ => None,
        }
    }

    /// The JSON body, for places that report several results at once.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(ErrorBody {
            error: self.to_string(),
            code: self.code(),
            reject_code: self.reject_code(),
        })
        .expect("error bodies serialize")
    }
}

/// Stable codes of the mempool's refusals.
pub fn admit_code(error: &AdmitError) -> &'static str {
    match error {
        AdmitError::SignatureInvalid => "signature_invalid",
        AdmitError::Invalid(_) => "tx_invalid",
        AdmitError::NonceStale { .. } => "nonce_stale",
        AdmitError::Duplicate => "duplicate",
        AdmitError::SignerQueueFull(_) => "signer_queue_full",
        AdmitError::AccountQueueFull(_) => "account_queue_full",
        AdmitError::UnknownSigner => "signer_unknown",
        AdmitError::PoolFull => "mempool_full",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.to_json())).into_response()
    }
}
