//! A leader that dates its blocks where honest verifiers' verdicts part, and is otherwise
//! honest.
//!
//! Owns: the wrapped validator's proposals. It lets the honest application build each block,
//! then moves the block's time `ahead_ms` past the time the honest application gave it (its
//! clock) and re-digests it. A verifier refuses a block dated more than twice the drift bound
//! ahead of its own clock and waits for its clock when the block is ahead by less
//! (`bulwark_node::app::block_time_acceptable`); with `ahead_ms` just past that bound, a
//! verifier that receives the block within about one network hop judges it too far ahead,
//! one that receives it later accepts it after a wait. The aim is the split that stopped the
//! chain for good while validators voted before they verified: some honest validators
//! certifying a notarized block and others refusing it.
//! Never: signs anything itself, or changes anything but the block's time.

use super::rewriter::{ProposalRewriter, Rewrite, with_body};
use bulwark_node::app::ExchangeApp;
use bulwark_node::block::ChainBlock;
use bulwark_node::shared::Shared;
use bulwark_types::BlockTime;
use commonware_cryptography::sha256::Digest;
use std::sync::{Arc, Mutex};

/// Blocks a [`TimeSplitter`] remembers shipping; older ones are dropped.
pub const SHIPPED_MAX: usize = 4_096;

/// A leader dating its blocks `ahead_ms` past its clock (a [`Rewrite`] role).
#[derive(Clone)]
pub struct TimeSplitter {
    ahead_ms: u64,
    shipped: Arc<Mutex<Vec<Digest>>>,
}

impl TimeSplitter {
    /// The role, and the list of the blocks it ships (newest last, at most [`SHIPPED_MAX`]).
    pub fn new(ahead_ms: u64) -> (Self, Arc<Mutex<Vec<Digest>>>) {
        let shipped = Arc::new(Mutex::new(Vec::new()));
        let role = Self {
            ahead_ms,
            shipped: shipped.clone(),
        };
        (role, shipped)
    }

    /// The wrapper `bulwark_node::engine::start_with` takes.
    pub fn wrapper(self) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> ProposalRewriter<Self> {
        ProposalRewriter::wrapper(self)
    }
}

impl Rewrite for TimeSplitter {
    fn rewrite(&self, honest: &ChainBlock, _parent: Option<&ChainBlock>) -> Option<ChainBlock> {
        let mut body = honest.body.clone();
        body.time = BlockTime::from_millis(body.time.millis().checked_add(self.ahead_ms)?);
        Some(with_body(honest, body, None))
    }

    fn shipped(&self, digest: Digest) {
        let mut shipped = self.shipped.lock().expect("not poisoned");
        if shipped.len() == SHIPPED_MAX {
            shipped.remove(0);
        }
        shipped.push(digest);
    }
}
