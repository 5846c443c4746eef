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
use crate::commitment::{self, StateHash};
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

/// A finalized block commits to a state (its outcome chain, or its state hash) that is not
/// the one this node computed: the node's execution or state diverged from the network's.
/// Never silent: the node halts and reports this.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "state divergence at height {height}: block commits to {what} {committed}, this node computed {computed}"
)]
pub struct Divergence {
    pub height: u64,
    /// Which commitment differs: "state digest" (the outcome chain) or "state hash".
    pub what: &'static str,
    /// Hex of what the block commits to ("none" where it carries nothing).
    pub committed: String,
    /// Hex of what this node computed.
    pub computed: String,
}

/// Lower-case hex of an optional digest, "none" for none.
fn hex_of(digest: Option<&[u8]>) -> String {
    digest.map_or_else(
        || "none".to_string(),
        |d| d.iter().map(|b| format!("{b:02x}")).collect(),
    )
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
    #[error(
        "block carries state hash {committed:?} but the rule and its parent's state give {computed:?}"
    )]
    StateHashMismatch {
        committed: Option<StateHash>,
        computed: Option<StateHash>,
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
    /// The state hash due after the last block it was computed for (a leader's proposal and
    /// the verification of competing blocks on one parent share it).
    state_hash_cache: Option<(Digest, Option<StateHash>)>,
}

impl Chain {
    /// A chain whose last finalized block is `digest`, with `exchange` its post-state.
    pub fn new(exchange: Exchange, digest: Digest) -> Self {
        Self {
            finalized: exchange,
            finalized_digest: digest,
            head: None,
            state_hash_cache: None,
        }
    }

    /// The state hash a block on `parent` must carry (see [`crate::commitment`]), if this
    /// node holds the state after `parent`.
    pub fn state_hash_due(&mut self, parent: &Digest) -> Option<Option<StateHash>> {
        if let Some((cached, due)) = self.state_hash_cache
            && cached == *parent
        {
            return Some(due);
        }
        let due = commitment::expected_after(self.state_after(parent)?);
        self.state_hash_cache = Some((*parent, due));
        Some(due)
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
        let due = self
            .state_hash_due(&block.parent)
            .expect("parent state known");
        if due != block.state_hash {
            return Err(ExtendError::StateHashMismatch {
                committed: block.state_hash,
                computed: due,
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
                what: "state digest",
                committed: hex_of(Some(block.state_digest.as_ref())),
                computed: hex_of(Some(computed.as_ref())),
            }
            .into());
        }
        // Recomputed on the finalized state itself (not taken from the speculative head's
        // cache), so a finalized state that drifted from the speculative one is caught too.
        let due = commitment::expected_after(&self.finalized);
        if due != block.state_hash {
            return Err(Divergence {
                height,
                what: "state hash",
                committed: hex_of(block.state_hash.as_ref().map(|d| d.as_ref())),
                computed: hex_of(due.as_ref().map(|d| d.as_ref())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Ctx;
    use bulwark_types::{
        Block as ExchangeBlock, BlockTime, Height as ExchangeHeight, Money, Nonce, PriceInputs,
        PrivateKey, Tx, TxBody,
    };
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_cryptography::{Hasher, Sha256, Signer as _};
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn genesis() -> (Chain, PrivateKey) {
        let exchange = crate::test_support::genesis_exchange();
        let bridge = crate::test_support::bridge();
        (Chain::new(exchange, Sha256::hash(&[b"genesis"])), bridge)
    }

    /// A block on `parent` (whose post-state is `state`) depositing `usdc` to a fresh owner.
    fn block(
        state: &Exchange,
        parent: Digest,
        bridge: &PrivateKey,
        nonce: u64,
        usdc: i64,
    ) -> (ChainBlock, CheckedBlock) {
        let owner = PrivateKey::from_seed(10 + nonce).public_key();
        let tx = Tx {
            signer: bridge.public_key(),
            nonce: Nonce::new(nonce),
            body: TxBody::Deposit {
                owner,
                amount: Money::from_usdc(usdc),
            },
        }
        .sign(bridge);
        let body = ExchangeBlock {
            height: ExchangeHeight::new(state.height().get() + 1),
            time: BlockTime::from_millis(1_000 + 100 * nonce),
            prices: PriceInputs::default(),
            observations: Vec::new(),
            txs: vec![tx],
        };
        let context = Ctx {
            round: Round::new(Epoch::zero(), View::new(nonce)),
            leader: bridge.public_key(),
            parent: (View::zero(), parent),
        };
        let block = ChainBlock::new(
            context,
            parent,
            state.state_digest(),
            commitment::expected_after(state),
            body,
        );
        let checked = block
            .body
            .clone()
            .check_signatures(&mut ChaCha8Rng::seed_from_u64(nonce));
        (block, checked)
    }

    #[test]
    fn speculation_forks_from_the_finalized_state_and_finalization_checks_the_commitment() {
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let (a, checked_a) = block(chain.finalized(), root, &bridge, 1, 100);
        chain.extend(&a, &checked_a).unwrap();
        assert_eq!(chain.newest().height().get(), 1);
        // A competing block on the same parent replaces the head (a fork from finalized).
        let (b, checked_b) = block(chain.finalized(), root, &bridge, 1, 200);
        chain.extend(&b, &checked_b).unwrap();
        assert!(chain.state_after(&b.digest()).is_some());
        assert!(chain.state_after(&a.digest()).is_none());
        // A child of `b`.
        let b_state = chain.state_after(&b.digest()).unwrap().clone();
        let (c, checked_c) = block(&b_state, b.digest(), &bridge, 2, 300);
        chain.extend(&c, &checked_c).unwrap();

        // Finalizing `a` (the network chose it) works from the finalized state alone.
        let outcome = chain.finalize(&a, &checked_a).unwrap();
        assert_eq!(outcome.height.get(), 1);
        assert_eq!(chain.finalized_digest(), a.digest());
        // `c` builds on `b`, not on the finalized `a`.
        assert_eq!(
            chain.finalize(&c, &checked_c),
            Err(FinalizeError::NotNext { height: 2 })
        );
    }

    #[test]
    fn a_block_committing_to_another_state_is_refused_and_a_finalized_one_is_a_divergence() {
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let (good, checked) = block(chain.finalized(), root, &bridge, 1, 100);
        let lying = ChainBlock::new(
            good.context.clone(),
            root,
            Sha256::hash(&[b"another state"]),
            good.state_hash,
            good.body.clone(),
        );
        let before = chain.finalized().state_digest();
        assert!(matches!(
            chain.extend(&lying, &checked),
            Err(ExtendError::StateMismatch { .. })
        ));
        assert!(
            chain.state_after(&lying.digest()).is_none(),
            "nothing changed"
        );
        let Err(FinalizeError::Divergence(divergence)) = chain.finalize(&lying, &checked) else {
            panic!("a divergence")
        };
        assert_eq!(divergence.height, 1);
        assert_eq!(divergence.what, "state digest");
        assert_eq!(divergence.computed, hex_of(Some(before.as_ref())));
        assert_eq!(
            chain.finalized().state_digest(),
            before,
            "a divergent block is not applied"
        );
        let unknown_parent = ChainBlock::new(
            good.context.clone(),
            Sha256::hash(&[b"nowhere"]),
            before,
            good.state_hash,
            good.body.clone(),
        );
        assert!(matches!(
            chain.extend(&unknown_parent, &checked),
            Err(ExtendError::UnknownParent(_))
        ));
    }

    /// A state that differs in a field no event has touched yet (here: an account forged into
    /// the snapshot, as a lying sync peer would) keeps the same outcome chain, so the state
    /// digest cannot see it; the state hash does, at the next block that commits to it.
    #[test]
    fn a_state_differing_without_any_event_is_caught_by_the_state_hash() {
        let (mut honest, bridge) = genesis();
        let root = honest.finalized_digest();
        assert!(commitment::commits_after(0), "block 1 commits to genesis");
        let (good, checked) = block(honest.finalized(), root, &bridge, 1, 100);
        assert!(good.state_hash.is_some());
        // The same state with the insurance fund's bytes altered and the trailer recomputed:
        // restore accepts it (it is self-consistent), its outcome chain is the honest one.
        let forged = forge_fund(honest.finalized());
        assert_eq!(forged.state_digest(), honest.finalized().state_digest());
        let mut diverged = Chain::new(forged, root);
        assert!(matches!(
            diverged.extend(&good, &checked),
            Err(ExtendError::StateHashMismatch { .. })
        ));
        let Err(FinalizeError::Divergence(divergence)) = diverged.finalize(&good, &checked) else {
            panic!("a divergence")
        };
        assert_eq!(divergence.what, "state hash");
        assert_ne!(divergence.committed, divergence.computed);
        // The honest chain takes it; a block leaving the hash out, or adding one where none is
        // due, is refused.
        honest.extend(&good, &checked).unwrap();
        let without = ChainBlock::new(
            good.context.clone(),
            root,
            good.state_digest,
            None,
            good.body.clone(),
        );
        assert!(matches!(
            honest.extend(&without, &checked),
            Err(ExtendError::StateHashMismatch { .. })
        ));
        honest.finalize(&good, &checked).unwrap();
        let (next, checked_next) = block(honest.finalized(), good.digest(), &bridge, 2, 5);
        assert!(
            next.state_hash.is_none(),
            "height 1 is not a commitment height"
        );
        let extra = ChainBlock::new(
            next.context.clone(),
            next.parent,
            next.state_digest,
            Some(commitment::state_hash_of(honest.finalized())),
            next.body.clone(),
        );
        assert!(matches!(
            honest.extend(&extra, &checked_next),
            Err(ExtendError::StateHashMismatch { .. })
        ));
        honest.extend(&next, &checked_next).unwrap();
    }

    /// `state` with 1 USDC added to the insurance fund and to deposits (so the ledger still
    /// balances), re-encoded with a fresh trailer: what a forger can make of a snapshot.
    pub(crate) fn forge_fund(state: &Exchange) -> Exchange {
        let bytes = crate::test_support::credit_fund(&state.snapshot());
        Exchange::restore(&bytes).expect("a self-consistent forgery restores")
    }
}
