//! Snapshot restore on hostile bytes: the fuzzer's input is taken as a snapshot body and given
//! a valid digest, so it reaches the decoder and the invariant checks. Never panics; whatever
//! restores passes every invariant and snapshots back to the same bytes.
#![no_main]

use bulwark_exchange::Exchange;
use commonware_cryptography::{Hasher, Sha256};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    let digest = Sha256::hash(&[data]);
    bytes.extend_from_slice(digest.as_ref());
    if let Ok(exchange) = Exchange::restore(&bytes) {
        exchange.check_invariants().expect("restored state is consistent");
        assert_eq!(exchange.snapshot(), bytes, "restore then snapshot is the identity");
    }
});
