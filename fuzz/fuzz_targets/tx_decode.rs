//! The transaction decoder on hostile bytes: never panics; whatever decodes re-encodes to the
//! same bytes (one transaction, one encoding), stays within the size bound, and passes or fails
//! signature verification without panicking.
#![no_main]

use bulwark_types::SignedTx;
use bulwark_types::tx::TX_BYTES_MAX;
use commonware_codec::{Copying, DecodeExt, Encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = SignedTx::decode(Copying(data)) {
        let encoded = tx.encode();
        assert_eq!(&encoded[..], data, "decoding is canonical");
        assert!(encoded.len() <= TX_BYTES_MAX, "decoded transactions respect TX_BYTES_MAX");
        let _ = tx.verify();
        let _ = tx.tx.body.check();
    }
});
