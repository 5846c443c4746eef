//! The Deribit websocket frame decoder on hostile text: never panics; an index frame's price
//! is positive; a feed that refuses a frame answers as before it.
#![no_main]

use bulwark_oracle::{DeribitIndexFeed, Frame, PriceSource, decode_frame};
use bulwark_types::AssetCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Frame::Index { price, .. }) = decode_frame(text) {
        assert!(price.is_positive(), "an index price is positive");
    }
    let btc = AssetCode::parse("BTC").expect("valid");
    let mut feed = DeribitIndexFeed::new(vec![("btc_usd".into(), btc)], 4, 60_000);
    let seed = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"deribit_price_index.btc_usd","data":{"index_name":"btc_usd","price":97520.12,"timestamp":1000}}}"#;
    feed.ingest(seed).expect("a valid frame");
    let before = feed.observe(btc, 2_000);
    if feed.ingest(text).is_err() {
        assert_eq!(feed.observe(btc, 2_000), before, "a refused frame changes nothing");
    }
});
