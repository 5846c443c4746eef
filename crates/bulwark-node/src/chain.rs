//! The node's view of the chain: the exchange state after the last finalized block, and a
//! speculative head: the state after the newest block this node proposed or verified.
//!
//! Owns: which exchange state belongs to which block digest, and the two ways a state moves:
//! speculatively (propose and verify extend the head, possibly on a fork) and for good (each
//! finalized block, in order, on the finalized state, after checking the state digest the
//! block commits to).
//! Never: performs I/O or waits; callers hold the lock only briefly and never across an await.
//!
//! Why two states: a leader may build on a parent that is notarized but not yet finalized,
//! and a block commits to the state after its parent, so verifying it needs that parent
//! executed. Executing once more at finalization costs about a microsecond per transaction
//! and keeps the finalized state free of anything a fork could undo.

use crate::block::ChainBlock;
use bulwark_exchange::{BlockError, BlockOutcome, Exchange, StateDigest};
use bulwark_types::CheckedBlock;
use commonware_consensus::Heightable;
use commonware_cryptography::Digestible;
use commonware_cryptography::sha256::Digest;

/// The state after one block, ahead of (or equal to) the finalized state.
#[derive(Clone, Debug)]
struct Head {
    digest: Digest,
    exchange: Exchange,
}

/// A finalized block's committed state digest is not the one this node computed: the node's
/// execution diverged from the network's. Never silent: the node halts and reports this.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "state divergence at height {height}: block commits to {committed:?}, this node computed {computed:?}"
)]
pub struct Divergence {
    pub height: u64,
    pub committed: StateDigest,
    pub computed: StateDigest,
}

/// Why a block cannot extend a known state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtendError {
    #[error("the state after parent {0:?} is not known here")]
    UnknownParent(Digest),
    #[error("block commits to state {committed:?} but its parent's state is {computed:?}")]
    StateMismatch {
        committed: StateDigest,
        computed: StateDigest,
    },
    #[error("block cannot be applied: {0}")]
    Block(#[from] BlockError),
}

/// Why a finalized block could not be executed. Both are fatal for this node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FinalizeError {
    #[error(transparent)]
    Divergence(#[from] Divergence),
    #[error("finalized block at height {height} does not extend the last finalized block")]
    NotNext { height: u64 },
    #[error("finalized block at height {height} cannot be applied: {error}")]
    Block { height: u64, error: BlockError },
}

/// The finalized state and the speculative head.
#[derive(Clone, Debug)]
pub struct Chain {
    finalized: Exchange,
    finalized_digest: Digest,
    head: Option<Head>,
}

impl Chain {
    /// A chain whose last finalized block is `digest`, with `exchange` its post-state.
    pub fn new(exchange: Exchange, digest: Digest) -> Self {
        Self {
            finalized: exchange,
            finalized_digest: digest,
            head: None,
        }
    }

    pub fn finalized(&self) -> &Exchange {
        &self.finalized
    }

    pub fn finalized_digest(&self) -> Digest {
        self.finalized_digest
    }

    pub fn finalized_height(&self) -> u64 {
        self.finalized.height().get()
    }

    /// The state after block `digest`, if this node holds it.
    pub fn state_after(&self, digest: &Digest) -> Option<&Exchange> {
        match &self.head {
            Some(head) if head.digest == *digest => Some(&head.exchange),
            _ if self.finalized_digest == *digest => Some(&self.finalized),
            _ => None,
        }
    }

    /// The newest state this node holds: the head if there is one, else the finalized state.
    pub fn newest(&self) -> &Exchange {
        self.head.as_ref().map_or(&self.finalized, |h| &h.exchange)
    }

    /// Applies `block` on the state after its parent, which becomes the new head. Checks the
    /// state digest the block commits to first; on any error nothing changes.
    pub fn extend(
        &mut self,
        block: &ChainBlock,
        checked: &CheckedBlock,
    ) -> Result<BlockOutcome, ExtendError> {
        let parent = self
            .state_after(&block.parent)
            .ok_or(ExtendError::UnknownParent(block.parent))?;
        let computed = parent.state_digest();
        if computed != block.state_digest {
            return Err(ExtendError::StateMismatch {
                committed: block.state_digest,
                computed,
            });
        }
        if self.head.as_ref().is_none_or(|h| h.digest != block.parent) {
            // The parent is the finalized block: fork a fresh head from it.
            self.head = Some(Head {
                digest: block.parent,
                exchange: self.finalized.clone(),
            });
        }
        let head = self.head.as_mut().expect("set above");
        // On error apply_block changes nothing, so the head stays a valid state of the parent.
        let outcome = head.exchange.apply_block(checked)?;
        head.digest = block.digest();
        Ok(outcome)
    }

    /// Executes the next finalized block on the finalized state.
    pub fn finalize(
        &mut self,
        block: &ChainBlock,
        checked: &CheckedBlock,
    ) -> Result<BlockOutcome, FinalizeError> {
        let height = block.height().get();
        if block.parent != self.finalized_digest || height != self.finalized_height() + 1 {
            return Err(FinalizeError::NotNext { height });
        }
        let computed = self.finalized.state_digest();
        if computed != block.state_digest {
            return Err(Divergence {
                height,
                committed: block.state_digest,
                computed,
            }
            .into());
        }
        let outcome = self
            .finalized
            .apply_block(checked)
            .map_err(|error| FinalizeError::Block { height, error })?;
        self.finalized_digest = block.digest();
        // A head at or below the finalized height adds nothing; drop it (it is rebuilt on demand).
        if self
            .head
            .as_ref()
            .is_some_and(|h| h.exchange.height().get() <= height)
        {
            self.head = None;
        }
        Ok(outcome)
    }
}
