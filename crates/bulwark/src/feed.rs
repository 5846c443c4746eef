//! `bulwark feed deribit`: reads Deribit's public websocket index channel live, prints each
//! index price as the oracle's source would offer it, and can record the raw frames as a
//! capture for replay tests (`bulwark_oracle::DeribitIndexFeed`).
//!
//! Owns: the socket (connect over `ws://` or `wss://` with rustls and the webpki roots,
//! subscribe, read text frames, answer pings), the recording, and the printing.
//! Never: trusts a frame: each goes through `DeribitIndexFeed::ingest`, which refuses bad
//! ones by name; a refused frame is reported and the stream goes on.
//! Bounds: frames above `bulwark_oracle::source::deribit::FRAME_BYTES_MAX` are refused by the
//! socket layer too; the run stops after `--seconds` or `--frames`.

use anyhow::{Context, Result, bail};
use bulwark_oracle::source::deribit::FRAME_BYTES_MAX;
use bulwark_oracle::{DeribitIndexFeed, Ingested, PriceSource};
use bulwark_types::AssetCode;
use clap::Args;
use futures::{SinkExt, StreamExt};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Deribit's production websocket endpoint (API v2).
pub const DERIBIT_URL: &str = "wss://www.deribit.com/ws/api/v2";

/// Longest `--seconds` (a week): an instant that far ahead always exists, so the deadline
/// never overflows.
pub const SECONDS_MAX: u64 = 7 * 24 * 3_600;

#[derive(Args, Clone, Debug)]
pub struct FeedArgs {
    /// Websocket endpoint.
    #[arg(long, default_value = DERIBIT_URL)]
    pub url: String,
    /// Index to follow as NAME=ASSET (Deribit index name, Bulwark asset); repeatable.
    #[arg(long = "index", default_values_t = vec!["btc_usd=BTC".to_string()])]
    pub indices: Vec<String>,
    /// Stop after this many seconds (at most a week).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=SECONDS_MAX))]
    pub seconds: u64,
    /// Stop after this many frames.
    #[arg(long)]
    pub frames: Option<u64>,
    /// Append every frame received, one per line, to this file (a capture to replay).
    #[arg(long)]
    pub record: Option<PathBuf>,
}

/// What a run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedSummary {
    pub frames: u64,
    pub prices: u64,
    pub stale: u64,
    pub refused: u64,
    pub remote_errors: u64,
}

fn parse_indices(indices: &[String]) -> Result<Vec<(String, AssetCode)>> {
    indices
        .iter()
        .map(|pair| {
            let (name, asset) = pair
                .split_once('=')
                .with_context(|| format!("--index {pair}: expected NAME=ASSET"))?;
            let asset =
                AssetCode::parse(asset).map_err(|e| anyhow::anyhow!("--index {pair}: {e}"))?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                bail!("--index {pair}: index names are letters, digits and underscores");
            }
            Ok((name.to_string(), asset))
        })
        .collect()
}

/// Makes ring the process's TLS crypto provider (rustls refuses `wss://` without one); a
/// provider installed before is kept.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `bulwark feed deribit`.
pub fn run(args: FeedArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut stdout = std::io::stdout().lock();
    let summary = runtime.block_on(follow(&args, &mut stdout))?;
    eprintln!(
        "{} frames: {} prices, {} stale, {} refused, {} error answers",
        summary.frames, summary.prices, summary.stale, summary.refused, summary.remote_errors
    );
    Ok(())
}

/// Connects, subscribes and follows the feed until `args.seconds` or `args.frames`; one line
/// per price or refusal to `out`.
pub async fn follow(args: &FeedArgs, out: &mut impl Write) -> Result<FeedSummary> {
    let indices = parse_indices(&args.indices)?;
    install_tls_provider();
    let mut feed = DeribitIndexFeed::new(indices, 4_096, 60_000);
    let mut record = match &args.record {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        )),
        None => None,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(FRAME_BYTES_MAX))
        .max_frame_size(Some(FRAME_BYTES_MAX));
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(args.url.as_str(), Some(config), false),
    )
    .await
    .with_context(|| format!("connecting to {}: timed out", args.url))?
    .with_context(|| format!("connecting to {}", args.url))?;
    socket
        .send(Message::text(feed.subscribe_request(1)))
        .await
        .context("subscribing")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.seconds.min(SECONDS_MAX));
    let mut summary = FeedSummary::default();
    while args.frames.is_none_or(|max| summary.frames < max) {
        let next = tokio::time::timeout_at(deadline, socket.next()).await;
        let Ok(Some(message)) = next else {
            break;
        };
        let text = match message.context("reading the feed")? {
            Message::Text(text) => text,
            Message::Close(_) => break,
            // Pings are answered by the library; binary frames carry nothing of ours.
            _ => continue,
        };
        summary.frames += 1;
        if let Some(record) = record.as_mut() {
            writeln!(record, "{}", text.as_str().replace('\n', " ")).context("recording")?;
        }
        match feed.ingest(text.as_str()) {
            Ok(Ingested::Price { asset, at_ms }) => {
                summary.prices += 1;
                let quote = feed.observe(asset, at_ms).expect("just ingested");
                writeln!(out, "{at_ms} {asset} {}", quote.price)?;
            }
            Ok(Ingested::Stale) => summary.stale += 1,
            Ok(Ingested::Ignored) => {}
            Ok(Ingested::Remote { code, message }) => {
                summary.remote_errors += 1;
                writeln!(out, "error answer {code}: {message}")?;
            }
            Err(e) => {
                summary.refused += 1;
                writeln!(out, "refused frame: {e}")?;
            }
        }
    }
    if let Some(mut record) = record {
        record.flush().context("recording")?;
    }
    let _ = socket.close(None).await;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const CAPTURE: &str =
        include_str!("../../bulwark-oracle/tests/captures/deribit_price_index.jsonl");

    /// A local websocket server that waits for the subscription, then sends the capture.
    async fn serve_capture() -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
            let subscribe = match socket.next().await.unwrap().unwrap() {
                Message::Text(text) => text.to_string(),
                other => panic!("expected the subscription, got {other:?}"),
            };
            for line in CAPTURE.lines() {
                socket.send(Message::text(line)).await.unwrap();
            }
            let _ = socket.close(None).await;
            subscribe
        });
        (url, server)
    }

    #[tokio::test]
    async fn the_client_subscribes_follows_a_served_capture_and_records_it() {
        let (url, server) = serve_capture().await;
        let dir = std::env::temp_dir().join(format!("bulwark-feed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let record = dir.join("capture.jsonl");
        let _ = std::fs::remove_file(&record);
        let args = FeedArgs {
            url,
            indices: vec!["btc_usd=BTC".into(), "eth_usd=ETH".into()],
            seconds: 20,
            frames: None,
            record: Some(record.clone()),
        };
        let mut out = Vec::new();
        let summary = follow(&args, &mut out).await.unwrap();
        let subscribe: serde_json::Value = serde_json::from_str(&server.await.unwrap()).unwrap();
        assert_eq!(subscribe["method"], "public/subscribe");
        assert_eq!(
            summary,
            FeedSummary {
                frames: CAPTURE.lines().count() as u64,
                prices: 16,
                stale: 1,
                refused: 2,
                remote_errors: 1,
            }
        );
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("1732406400123 BTC 97512.370000\n"), "{out}");
        assert_eq!(std::fs::read_to_string(&record).unwrap(), CAPTURE);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `wss://` needs a crypto provider: without one rustls panics on the first connection.
    #[test]
    fn a_tls_client_configuration_can_be_built() {
        install_tls_provider();
        let roots = rustls::RootCertStore::empty();
        let _ = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
    }

    #[test]
    fn bad_index_arguments_are_refused() {
        assert!(parse_indices(&["btc_usd".into()]).is_err());
        assert!(parse_indices(&["btc usd=BTC".into()]).is_err());
        assert!(parse_indices(&["btc_usd=".into()]).is_err());
        assert_eq!(
            parse_indices(&["btc_usd=BTC".into()]).unwrap(),
            vec![("btc_usd".to_string(), AssetCode::parse("BTC").unwrap())]
        );
    }
}
