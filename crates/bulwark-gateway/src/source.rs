//! Talking to validators over their HTTP API: fetch a finalized block with its certificate
//! (`GET /blocks/{h}`), the newest height (`GET /blocks/latest`), and submit signed
//! transactions (`POST /txs`).
//!
//! Owns: decoding what a validator sends into typed values, with every length bounded before
//! it is read ([`response_bytes_max`]). Never: trusts what it decodes (the follower checks the
//! proof), or waits without a timeout.

use bulwark_node::api::blocks::BLOCK_WAIT_MAX_MS;
use bulwark_node::block::{BlockCodec, ChainBlock};
use bulwark_node::sync::BlockFinalization;
use bulwark_types::{BlockLimits, SignedTx};
use commonware_codec::{Copying, Decode as _, Encode as _};
use commonware_consensus::BoundedBlock as _;
use commonware_consensus::simplex::scheme::ed25519;
use commonware_cryptography::certificate::Verifier as _;
use futures::future::BoxFuture;
use serde_json::Value;
use std::time::Duration;

/// A block and, where the validator archives it, the certificate that finalized it.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub block: ChainBlock,
    pub finalization: Option<BlockFinalization>,
}

/// Why a fetch gave nothing usable. None of these is a lie: the validator may be down, slow or
/// behind; undecodable bytes are treated as a failure too (a lie needs a decodable claim).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Http(String),
    #[error("validator answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("block {0} is pruned at this validator")]
    Pruned(u64),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("response is not what the API promises: {0}")]
    Malformed(String),
}

/// Where the follower fetches blocks from (a validator's API; a map in tests).
pub trait BlockSource: Send + Sync {
    /// A short name for logs (the validator's URL).
    fn name(&self) -> &str;
    /// The finalized block at `height`; `Ok(None)` if the validator has not finalized it yet.
    /// A validator that has not may hold the question up to `wait` (a long poll) and answer
    /// the moment it has; a source that cannot wait answers at once.
    fn fetch(
        &self,
        height: u64,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Option<Fetched>, FetchError>>;
    /// The validator's newest snapshot: its height and `Exchange::snapshot` bytes (unchecked).
    fn snapshot(&self) -> SnapshotAnswer<'_> {
        Box::pin(async { Ok(None) })
    }
}

/// A snapshot fetch: its height and bytes (unchecked), `None` if the validator holds none.
pub type SnapshotAnswer<'a> = BoxFuture<'a, Result<Option<(u64, Vec<u8>)>, FetchError>>;

/// Largest snapshot fetched (the validators' own bound is of this order).
pub const SNAPSHOT_BYTES_MAX: usize = 1 << 30;

/// Largest `/blocks/{h}` response read: the hex of the largest block and certificate, and slack.
pub fn response_bytes_max(limits: &BlockLimits, validators: usize) -> usize {
    let certificate = 64 + validators * 80;
    2 * (ChainBlock::max_encode_size(&BlockCodec::uncached(*limits)) + certificate) + 4_096
}

/// A validator's HTTP API.
#[derive(Clone)]
pub struct HttpValidator {
    base: String,
    client: reqwest::Client,
    limits: BlockLimits,
    certificate: <BlockFinalization as commonware_codec::Read>::Cfg,
    bytes_max: usize,
}

impl HttpValidator {
    /// `base` is `http://host:port` (no trailing slash needed).
    pub fn new(
        base: &str,
        limits: BlockLimits,
        verifier: &ed25519::Scheme,
        validators: usize,
        timeout: Duration,
    ) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| FetchError::Http(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            client,
            limits,
            certificate: verifier.certificate_codec_config(),
            bytes_max: response_bytes_max(&limits, validators),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Reads a response body of at most `max` bytes.
    async fn read(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, FetchError> {
        if response
            .content_length()
            .is_some_and(|len| len > max as u64)
        {
            return Err(FetchError::TooLarge(max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?
        {
            if body.len() + chunk.len() > max {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn get_json(&self, path: &str, max: usize) -> Result<(u16, Value), FetchError> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let status = response.status().as_u16();
        let body = Self::read(response, max).await?;
        let value = serde_json::from_slice(&body)
            .map_err(|e| FetchError::Malformed(format!("not JSON: {e}")))?;
        Ok((status, value))
    }

    async fn fetch_block(
        &self,
        height: u64,
        wait: Duration,
    ) -> Result<Option<Fetched>, FetchError> {
        // A validator honours at most `BLOCK_WAIT_MAX_MS`, well inside this client's timeout;
        // one that predates long polls ignores the query and answers at once.
        let wait_ms = wait.as_millis().min(u128::from(BLOCK_WAIT_MAX_MS));
        let path = if wait_ms == 0 {
            format!("/blocks/{height}")
        } else {
            format!("/blocks/{height}?wait_ms={wait_ms}")
        };
        let (status, body) = self.get_json(&path, self.bytes_max).await?;
        match status {
            200 => {}
            404 => return Ok(None),
            410 => return Err(FetchError::Pruned(height)),
            status => {
                return Err(FetchError::Status {
                    status,
                    body: truncate(&body.to_string()),
                });
            }
        }
        let block_hex = body["block"]
            .as_str()
            .ok_or_else(|| FetchError::Malformed("no block".into()))?;
        let bytes = bulwark_node::api::decode_hex(block_hex, self.bytes_max)
            .ok_or_else(|| FetchError::Malformed("block is not hex".into()))?;
        let block = ChainBlock::decode_cfg(
            Copying(bytes.as_slice()),
            &BlockCodec::uncached(self.limits),
        )
        .map_err(|e| FetchError::Malformed(format!("block does not decode: {e}")))?;
        let finalization = match &body["finalization"] {
            Value::Null => None,
            Value::String(text) => {
                let bytes = bulwark_node::api::decode_hex(text, self.bytes_max)
                    .ok_or_else(|| FetchError::Malformed("certificate is not hex".into()))?;
                Some(
                    BlockFinalization::decode_cfg(Copying(bytes.as_slice()), &self.certificate)
                        .map_err(|e| {
                            FetchError::Malformed(format!("certificate does not decode: {e}"))
                        })?,
                )
            }
            _ => return Err(FetchError::Malformed("certificate is not a string".into())),
        };
        Ok(Some(Fetched {
            block,
            finalization,
        }))
    }

    async fn fetch_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, FetchError> {
        let response = self
            .client
            .get(format!("{}/snapshot", self.base))
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let height = response
            .headers()
            .get("x-bulwark-height")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body = Self::read(response, SNAPSHOT_BYTES_MAX).await?;
        if status != 200 {
            return Err(FetchError::Status {
                status,
                body: truncate(&String::from_utf8_lossy(&body)),
            });
        }
        let height = height.ok_or_else(|| FetchError::Malformed("no x-bulwark-height".into()))?;
        Ok(Some((height, body)))
    }

    /// The newest height the validator has executed.
    pub async fn latest(&self) -> Result<u64, FetchError> {
        let (status, body) = self.get_json("/blocks/latest", 4_096).await?;
        if status != 200 {
            return Err(FetchError::Status {
                status,
                body: truncate(&body.to_string()),
            });
        }
        body["height"]
            .as_u64()
            .ok_or_else(|| FetchError::Malformed("no height".into()))
    }

    /// The validator's `GET /status` answer (its own word), read up to `max` bytes.
    pub async fn status(&self, max: usize) -> Result<Value, FetchError> {
        let (status, body) = self.get_json("/status", max).await?;
        if status != 200 {
            return Err(FetchError::Status {
                status,
                body: truncate(&body.to_string()),
            });
        }
        Ok(body)
    }

    /// Submits signed transactions in one `POST /txs`: one result per transaction, in order
    /// (a refusal with the validator's code), or why the request as a whole gave nothing.
    pub async fn submit_batch(
        &self,
        txs: &[&SignedTx],
    ) -> Result<Vec<Result<(), crate::submitter::Refusal>>, FetchError> {
        let hex: Vec<String> = txs
            .iter()
            .map(|tx| bulwark_node::executor::hex(&tx.encode()))
            .collect();
        let body = serde_json::json!({ "txs": hex });
        let response = self
            .client
            .post(format!("{}/txs", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let status = response.status().as_u16();
        // About a hundred bytes a result; slack for a long refusal reason.
        let body = Self::read(response, 64 * 1024 + 1_024 * txs.len()).await?;
        if status != 200 {
            return Err(FetchError::Status {
                status,
                body: truncate(&String::from_utf8_lossy(&body)),
            });
        }
        crate::submitter::batch_answer(&body, txs.len())
    }
}

pub(crate) fn truncate(text: &str) -> String {
    text.chars().take(256).collect()
}

impl BlockSource for HttpValidator {
    fn name(&self) -> &str {
        &self.base
    }

    fn fetch(
        &self,
        height: u64,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Option<Fetched>, FetchError>> {
        Box::pin(self.fetch_block(height, wait))
    }

    fn snapshot(&self) -> SnapshotAnswer<'_> {
        Box::pin(self.fetch_snapshot())
    }
}
