//! Finalized blocks with their proof, for followers (the gateway) that trust no single
//! validator: `GET /blocks/{height}` answers the block's codec bytes and the simplex
//! finalization (the quorum's certificate over the block's digest) that finalized it, both as
//! lower-case hex; `GET /blocks/latest` answers the newest height this node has executed.
//!
//! Owns: reading both from marshal's archives through [`FinalizedBlocks`] (the node passes its
//! marshal mailbox; tests pass a map). A height above this node's executed tip is
//! `404 block_not_finalized`; one at or below it that the archive no longer holds (pruned
//! below the retention) is `410 block_pruned`. A block whose own finalization is not archived
//! (marshal learned it through a descendant's certificate) is answered with
//! `"finalization": null`: the follower then proves it through the next block's parent link.
//! `GET /blocks/{height}?wait_ms=N` is a long poll: a block not yet executed here is waited for,
//! at most `N` milliseconds (at most [`BLOCK_WAIT_MAX_MS`]), and answered the moment the
//! executor has applied it, so a follower sees each block as soon as this node does instead of
//! a polling interval later. Waiting holds no lock; it holds the request's connection, which
//! the API's `connections_max` and `request_timeout` bound as for any slow client.
//! `GET /snapshot` answers this node's newest served snapshot (`Exchange::snapshot` bytes,
//! `application/octet-stream`, its height in `x-bulwark-height`): a follower that starts after
//! the archive was pruned checks it against the state hash block `height + 1` commits to.
//! Never: trusts or re-checks what it serves (the follower verifies), panics on a height.

use super::ApiState;
use super::error::ApiError;
use crate::block::ChainBlock;
use crate::executor::{MarshalMailbox, hex};
use crate::shared::lock;
use crate::sync::BlockFinalization;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use commonware_codec::Encode;
use commonware_consensus::types::Height;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

/// Longest wait a `GET /blocks/{height}?wait_ms=` asks for that is honoured; a longer one is
/// cut to this (well inside the API's 10 s request timeout, and a client's own).
pub const BLOCK_WAIT_MAX_MS: u64 = 2_000;

/// The query of `GET /blocks/{height}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockQuery {
    /// Milliseconds to wait for a block this node has not executed yet (0: answer at once).
    wait_ms: Option<u64>,
}

/// Where the API reads finalized blocks and their certificates from.
pub trait FinalizedBlocks: Send + Sync + 'static {
    /// The finalized block at `height`, if archived.
    fn block(&self, height: u64) -> BoxFuture<'static, Option<ChainBlock>>;
    /// The finalization of the block at `height`, if archived.
    fn finalization(&self, height: u64) -> BoxFuture<'static, Option<BlockFinalization>>;
}

impl FinalizedBlocks for MarshalMailbox {
    fn block(&self, height: u64) -> BoxFuture<'static, Option<ChainBlock>> {
        let marshal = self.clone();
        Box::pin(async move {
            marshal
                .get_block(Height::new(height))
                .await
                .map(|block| block.inner().clone())
        })
    }

    fn finalization(&self, height: u64) -> BoxFuture<'static, Option<BlockFinalization>> {
        let marshal = self.clone();
        Box::pin(async move { marshal.get_finalization(Height::new(height)).await })
    }
}

/// `GET /blocks/latest`.
pub async fn latest(State(api): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let status = lock(&api.inner.shared.status);
    Ok(Json(json!({
        "height": status.finalized_height,
        "block": status.finalized_block,
    })))
}

/// `GET /blocks/{height}`.
pub async fn block(
    State(api): State<ApiState>,
    height: Result<Path<u64>, PathRejection>,
    query: Result<Query<BlockQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(height) = height.map_err(|r| ApiError::PathInvalid(r.body_text()))?;
    let Query(query) = query.map_err(|r| ApiError::QueryInvalid(r.body_text()))?;
    let Some(source) = api.inner.blocks.get().cloned() else {
        return Err(ApiError::BlocksUnavailable);
    };
    let executed = lock(&api.inner.shared.status).finalized_height;
    if height > executed {
        let wait = query.wait_ms.unwrap_or(0).min(BLOCK_WAIT_MAX_MS);
        let shared = &api.inner.shared;
        if wait == 0
            || !shared
                .wait_finalized(height, Duration::from_millis(wait))
                .await
        {
            let executed = lock(&shared.status).finalized_height;
            return Err(ApiError::BlockNotFinalized { height, executed });
        }
    }
    let Some(block) = source.block(height).await else {
        return Err(ApiError::BlockPruned { height });
    };
    let finalization = source.finalization(height).await;
    Ok(Json(json!({
        "height": height,
        "block": hex(&block.encode()),
        "finalization": finalization.map(|f| hex(&f.encode())),
    })))
}

/// `GET /snapshot`.
pub async fn snapshot(State(api): State<ApiState>) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let served = lock(&api.inner.shared.snapshot).clone();
    let Some(served) = served else {
        return Err(ApiError::SnapshotUnavailable);
    };
    let bytes = axum::body::Bytes::from(served.bytes.as_ref().clone());
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_string(),
            ),
            (
                axum::http::HeaderName::from_static("x-bulwark-height"),
                served.height.to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}
