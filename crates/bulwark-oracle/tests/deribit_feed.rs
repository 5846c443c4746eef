//! Deribit's websocket index channel as a price source, replayed from a capture of frames in
//! the exchange's documented format (`tests/captures/deribit_price_index.jsonl`: a subscription
//! answer, BTC and ETH index frames a second apart, a heartbeat, a replayed older frame after a
//! reconnect, an error answer, a negative price and a truncated frame). The capture was written
//! from Deribit's API v2 documentation, not recorded live: this machine has no network.

use bulwark_oracle::{DeribitIndexFeed, FeedError, Frame, Ingested, PriceSource, decode_frame};
use bulwark_types::{AssetCode, UnitPrice};
use proptest::prelude::*;

const CAPTURE: &str = include_str!("captures/deribit_price_index.jsonl");
const T0: u64 = 1_732_406_400_123;

fn asset(code: &str) -> AssetCode {
    AssetCode::parse(code).unwrap()
}

fn feed() -> DeribitIndexFeed {
    DeribitIndexFeed::new(
        vec![
            ("btc_usd".into(), asset("BTC")),
            ("eth_usd".into(), asset("ETH")),
        ],
        1_024,
        5_000,
    )
}

#[test]
fn a_captured_stream_replays_into_prices_and_typed_refusals() {
    let mut feed = feed();
    let mut prices = 0;
    let mut stale = 0;
    let mut remote = Vec::new();
    let mut errors = Vec::new();
    for line in CAPTURE.lines() {
        match feed.ingest(line) {
            Ok(Ingested::Price { .. }) => prices += 1,
            Ok(Ingested::Stale) => stale += 1,
            Ok(Ingested::Remote { code, message }) => remote.push((code, message)),
            Ok(Ingested::Ignored) => {}
            Err(e) => errors.push(e),
        }
    }
    assert_eq!((prices, stale), (16, 1));
    assert_eq!(remote, vec![(10_028, "too_many_requests".to_string())]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0], FeedError::BadPrice(-1.0));
    assert!(matches!(errors[1], FeedError::NotJson(_)));
    // The latest price at or before the time asked, stamped with Deribit's time.
    let btc = feed.observe(asset("BTC"), T0 + 2_500).unwrap();
    assert_eq!(btc.price, UnitPrice::from_micros(97_520_120_000));
    assert_eq!(btc.observed_at_ms, T0 + 2_000);
    let eth = feed.observe(asset("ETH"), T0 + 7_037).unwrap();
    assert_eq!(eth.price, UnitPrice::from_micros(3_394_000_000));
    // Nothing before the first frame, nothing older than the age bound, nothing untracked.
    assert_eq!(feed.observe(asset("BTC"), T0 - 1), None);
    assert_eq!(feed.observe(asset("BTC"), T0 + 7_000 + 5_001), None);
    assert_eq!(feed.observe(asset("SOL"), T0 + 1_000), None);
    // The subscription request names both channels.
    let request: serde_json::Value = serde_json::from_str(&feed.subscribe_request(1)).unwrap();
    assert_eq!(
        request["params"]["channels"],
        serde_json::json!(["deribit_price_index.btc_usd", "deribit_price_index.eth_usd"])
    );
}

#[test]
fn hostile_frames_are_refused_by_name() {
    let index = |data: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"deribit_price_index.btc_usd","data":{data}}}}}"#
        )
    };
    assert_eq!(
        decode_frame(&" ".repeat(70_000)),
        Err(FeedError::TooLong(70_000))
    );
    assert_eq!(decode_frame(r#"{"id":1}"#), Err(FeedError::NotJsonRpc));
    assert_eq!(
        decode_frame(&index(r#"{"index_name":"btc_usd","timestamp":1}"#)),
        Err(FeedError::Missing("data.price"))
    );
    assert_eq!(
        decode_frame(&index(
            r#"{"index_name":"btc_usd","price":1e300,"timestamp":1}"#
        )),
        Err(FeedError::BadPrice(1e300))
    );
    assert_eq!(
        decode_frame(&index(
            r#"{"index_name":"btc_usd","price":1e-9,"timestamp":1}"#
        )),
        Err(FeedError::BadPrice(1e-9))
    );
    assert_eq!(
        decode_frame(&index(
            r#"{"index_name":"btc_usd","price":5,"timestamp":-3}"#
        )),
        Err(FeedError::Missing("data.timestamp"))
    );
    assert!(matches!(
        decode_frame(&index(
            r#"{"index_name":"eth_usd","price":5,"timestamp":3}"#
        )),
        Err(FeedError::ChannelMismatch { .. })
    ));
    assert_eq!(
        decode_frame(&index(
            r#"{"index_name":"btc_usd","price":65000.5,"timestamp":3}"#
        )),
        Ok(Frame::Index {
            index_name: "btc_usd".into(),
            price: UnitPrice::from_micros(65_000_500_000),
            timestamp_ms: 3
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No text panics the decoder, and a refused frame leaves the feed's answers unchanged.
    #[test]
    fn any_text_is_decoded_or_refused_without_changing_the_feed(text in ".{0,400}") {
        let mut feed = feed();
        for line in CAPTURE.lines().take(9) {
            let _ = feed.ingest(line);
        }
        let before = feed.observe(asset("BTC"), T0 + 10_000);
        if feed.ingest(&text).is_err() {
            prop_assert_eq!(feed.observe(asset("BTC"), T0 + 10_000), before);
        }
    }
}
