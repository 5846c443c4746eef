//! The block decoder under tight limits: never panics, never exceeds its limits, and whatever
//! decodes re-encodes to the same bytes.
#![no_main]

use bulwark_types::{Block, BlockLimits};
use commonware_codec::{Copying, Decode, Encode};
use libfuzzer_sys::fuzz_target;

const LIMITS: BlockLimits = BlockLimits {
    txs_max: 8,
    prices_max: 8,
    observations_max: 8,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode_cfg(Copying(data), &LIMITS) {
        assert!(block.txs.len() <= LIMITS.txs_max);
        assert!(block.prices.marks().len() <= LIMITS.prices_max);
        assert_eq!(&block.encode()[..], data, "decoding is canonical");
    }
});
