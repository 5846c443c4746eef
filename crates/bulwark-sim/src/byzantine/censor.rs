//! A leader that censors one account: it leaves every transaction that account's key signs
//! out of the blocks it proposes, and is otherwise honest.
//!
//! Owns: the wrapped validator's proposals. It lets the honest application build each block,
//! removes the censored key's transactions and re-digests it. A block without some pending
//! transactions breaks no rule (a leader chooses what to include, within the limits), so
//! honest verifiers accept it: the defence is that the censored transactions are in every
//! validator's mempool (gossip) and the next honest leader includes them. The lab measures
//! that they all still finalize, and how much later.
//! Never: signs anything itself, or changes anything but which transactions a block holds.

use super::rewriter::{ProposalRewriter, Rewrite, with_body};
use bulwark_node::app::ExchangeApp;
use bulwark_node::block::ChainBlock;
use bulwark_node::shared::Shared;
use bulwark_types::PublicKey;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a [`Censor`] left out, for the lab to report.
#[derive(Debug, Default)]
pub struct CensorLog {
    /// Transactions of the censored key removed from this leader's proposals.
    removed: AtomicU64,
    /// Proposals that held at least one of them.
    blocks: AtomicU64,
}

impl CensorLog {
    pub fn removed(&self) -> u64 {
        self.removed.load(Ordering::SeqCst)
    }

    pub fn blocks(&self) -> u64 {
        self.blocks.load(Ordering::SeqCst)
    }
}

/// A leader that censors `target` (a [`Rewrite`] role).
#[derive(Clone)]
pub struct Censor {
    target: PublicKey,
    log: Arc<CensorLog>,
}

impl Censor {
    /// The wrapper `bulwark_node::engine::start_with` takes.
    pub fn wrapper(
        target: PublicKey,
        log: Arc<CensorLog>,
    ) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> ProposalRewriter<Self> {
        ProposalRewriter::wrapper(Self { target, log })
    }
}

impl Rewrite for Censor {
    /// `honest` without the censored key's transactions, or `None` when it holds none.
    fn rewrite(&self, honest: &ChainBlock, _parent: Option<&ChainBlock>) -> Option<ChainBlock> {
        let before = honest.body.txs.len();
        let mut body = honest.body.clone();
        body.txs.retain(|tx| tx.tx.signer != self.target);
        let removed = before - body.txs.len();
        if removed == 0 {
            return None;
        }
        self.log.removed.fetch_add(removed as u64, Ordering::SeqCst);
        self.log.blocks.fetch_add(1, Ordering::SeqCst);
        Some(with_body(honest, body, None))
    }
}
