//! A public exchange's websocket feed as a price source: Deribit's `deribit_price_index`
//! channel (its index of spot exchanges, pushed about once a second).
//!
//! Owns: decoding one websocket text frame of Deribit's JSON-RPC 2.0 API
//! ([`decode_frame`]) and [`DeribitIndexFeed`], which keeps each tracked index's recent
//! prices and answers [`PriceSource::observe`] from them.
//! Never: opens a socket or reads a clock. The caller (`bulwark feed deribit`, or a test
//! replaying a capture) hands over each frame's text as it arrives; the answer depends only on
//! the frames ingested and `now_ms`, and a quote is stamped with Deribit's own timestamp.
//! Bounds: frames of at most [`FRAME_BYTES_MAX`] bytes; at most `history_max` prices kept per
//! index (oldest dropped); a price older than `age_ms_max` at `now_ms` is not offered.
//!
//! Frames (Deribit API v2, `public/subscribe` to `deribit_price_index.btc_usd`):
//!
//! ```text
//! {"jsonrpc":"2.0","method":"subscription","params":{"channel":"deribit_price_index.btc_usd",
//!   "data":{"index_name":"btc_usd","price":97520.12,"timestamp":1732406400123}}}
//! ```
//!
//! A subscription's answer, heartbeats and other channels decode to [`Frame::Other`]; an
//! error answer to [`Frame::Remote`]; anything else is a typed [`FeedError`]. A bad frame
//! never disturbs what was ingested before it. Deribit's indices are in USD, taken 1:1 as
//! USDC. Prices are rounded to the micro-unit.

use super::{PriceSource, SourceQuote};
use bulwark_types::{AssetCode, UnitPrice};
use std::collections::{BTreeMap, VecDeque};

/// Longest frame accepted, bytes (an index frame is about 170).
pub const FRAME_BYTES_MAX: usize = 64 * 1024;

/// The channel prefix of Deribit's price indices.
pub const INDEX_CHANNEL_PREFIX: &str = "deribit_price_index.";

/// Highest price accepted, USD (far above any index; keeps micro-units inside `i64`).
const PRICE_MAX_USD: f64 = 1e12;

/// Why a frame was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FeedError {
    #[error("frame of {0} bytes exceeds {FRAME_BYTES_MAX}")]
    TooLong(usize),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON-RPC 2.0 message")]
    NotJsonRpc,
    #[error("index frame without {0}")]
    Missing(&'static str),
    #[error("index price {0} is not a positive finite number below 1e12")]
    BadPrice(f64),
    #[error("index_name {index_name} does not match channel {channel}")]
    ChannelMismatch { channel: String, index_name: String },
}

/// What one frame says.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A price of index `index_name` at Deribit's `timestamp_ms`.
    Index {
        index_name: String,
        price: UnitPrice,
        timestamp_ms: u64,
    },
    /// An error answer from the exchange.
    Remote { code: i64, message: String },
    /// Anything else valid: a subscription's answer, a heartbeat, another channel.
    Other,
}

/// Decodes one websocket text frame.
pub fn decode_frame(text: &str) -> Result<Frame, FeedError> {
    if text.len() > FRAME_BYTES_MAX {
        return Err(FeedError::TooLong(text.len()));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| FeedError::NotJson(e.to_string()))?;
    if value.get("jsonrpc").and_then(|v| v.as_str()) != Some("2.0") {
        return Err(FeedError::NotJsonRpc);
    }
    if let Some(error) = value.get("error") {
        return Ok(Frame::Remote {
            code: error.get("code").and_then(|c| c.as_i64()).unwrap_or(0),
            message: error
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .chars()
                .take(256)
                .collect(),
        });
    }
    if value.get("method").and_then(|m| m.as_str()) != Some("subscription") {
        return Ok(Frame::Other);
    }
    let params = value.get("params").ok_or(FeedError::Missing("params"))?;
    let channel = params
        .get("channel")
        .and_then(|c| c.as_str())
        .ok_or(FeedError::Missing("params.channel"))?;
    let Some(channel_index) = channel.strip_prefix(INDEX_CHANNEL_PREFIX) else {
        return Ok(Frame::Other);
    };
    let data = params
        .get("data")
        .ok_or(FeedError::Missing("params.data"))?;
    let index_name = data
        .get("index_name")
        .and_then(|n| n.as_str())
        .ok_or(FeedError::Missing("data.index_name"))?;
    if index_name != channel_index {
        return Err(FeedError::ChannelMismatch {
            channel: channel.chars().take(64).collect(),
            index_name: index_name.chars().take(64).collect(),
        });
    }
    let price = data
        .get("price")
        .and_then(|p| p.as_f64())
        .ok_or(FeedError::Missing("data.price"))?;
    if !(price.is_finite() && price > 0.0 && price < PRICE_MAX_USD) {
        return Err(FeedError::BadPrice(price));
    }
    let micros = libm::round(price * 1e6);
    if micros < 1.0 {
        return Err(FeedError::BadPrice(price));
    }
    let timestamp_ms = data
        .get("timestamp")
        .and_then(|t| t.as_u64())
        .ok_or(FeedError::Missing("data.timestamp"))?;
    Ok(Frame::Index {
        index_name: index_name.to_owned(),
        price: UnitPrice::from_micros(micros as i64),
        timestamp_ms,
    })
}

/// Deribit's index prices as a [`PriceSource`] (see the module doc).
#[derive(Clone, Debug)]
pub struct DeribitIndexFeed {
    /// Index name (`btc_usd`) to the asset it prices.
    indices: BTreeMap<String, AssetCode>,
    /// Per asset, (timestamp, price) in increasing timestamps, at most `history_max`.
    history: BTreeMap<AssetCode, VecDeque<(u64, UnitPrice)>>,
    history_max: usize,
    age_ms_max: u64,
}

/// What [`DeribitIndexFeed::ingest`] did with a frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Ingested {
    /// A new price of `asset`.
    Price { asset: AssetCode, at_ms: u64 },
    /// An index price not newer than the last one kept (a replay or reordering): dropped.
    Stale,
    /// A price of an index this feed does not track, or a frame that carries none.
    Ignored,
    /// The exchange answered with an error.
    Remote { code: i64, message: String },
}

impl DeribitIndexFeed {
    /// A feed of `indices` (Deribit index name, asset), keeping `history_max` prices each and
    /// offering none older than `age_ms_max`.
    pub fn new(indices: Vec<(String, AssetCode)>, history_max: usize, age_ms_max: u64) -> Self {
        assert!(history_max > 0, "a feed keeps at least one price");
        Self {
            indices: indices.into_iter().collect(),
            history: BTreeMap::new(),
            history_max,
            age_ms_max,
        }
    }

    /// The `public/subscribe` request for this feed's channels, to send once connected.
    pub fn subscribe_request(&self, id: u64) -> String {
        let channels: Vec<String> = self
            .indices
            .keys()
            .map(|name| format!("{INDEX_CHANNEL_PREFIX}{name}"))
            .collect();
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "public/subscribe",
            "params": { "channels": channels },
        })
        .to_string()
    }

    /// Takes one frame's text. A bad frame is an error and changes nothing.
    pub fn ingest(&mut self, text: &str) -> Result<Ingested, FeedError> {
        match decode_frame(text)? {
            Frame::Other => Ok(Ingested::Ignored),
            Frame::Remote { code, message } => Ok(Ingested::Remote { code, message }),
            Frame::Index {
                index_name,
                price,
                timestamp_ms,
            } => {
                let Some(asset) = self.indices.get(&index_name).copied() else {
                    return Ok(Ingested::Ignored);
                };
                let prices = self.history.entry(asset).or_default();
                if prices.back().is_some_and(|(at, _)| *at >= timestamp_ms) {
                    return Ok(Ingested::Stale);
                }
                if prices.len() == self.history_max {
                    prices.pop_front();
                }
                prices.push_back((timestamp_ms, price));
                Ok(Ingested::Price {
                    asset,
                    at_ms: timestamp_ms,
                })
            }
        }
    }
}

impl PriceSource for DeribitIndexFeed {
    fn observe(&mut self, asset: AssetCode, now_ms: u64) -> Option<SourceQuote> {
        let prices = self.history.get(&asset)?;
        // The latest price at or before `now_ms` (timestamps increase).
        let at = prices.partition_point(|(t, _)| *t <= now_ms);
        let (observed_at_ms, price) = *prices.get(at.checked_sub(1)?)?;
        (now_ms - observed_at_ms <= self.age_ms_max).then_some(SourceQuote {
            price,
            observed_at_ms,
        })
    }
}
