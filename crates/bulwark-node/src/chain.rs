//! The node's view of the chain: the exchange state after the last finalized block, and the
//! speculative states after the blocks this node proposed, verified or replayed on top of it,
//! kept per block digest.
//!
//! Owns: which exchange state belongs to which block digest, and the two ways a state moves:
//! speculatively (propose and verify execute a block on the state after its parent, which may
//! be the finalized block or any speculative one: forks included) and for good (each
//! finalized block, in order, after checking the state digest and state hash the block
//! commits to against the finalized state it extends).
//! Never: performs I/O or waits; callers hold the lock only briefly and never across an await.
//! Never: mutates a state once it is finalized or kept for a digest: each is an `Arc`, shared
//! read-only with whoever holds it (the API's published view, a snapshot being written).
//!
//! Why speculative states: a leader may build on a parent that is notarized but not yet
//! finalized, and a block commits to the state after its parent, so verifying it needs that
//! parent executed. Each speculative block is executed once, on a copy of its parent's state,
//! and the parent's state is kept, so a competing block on the same parent (an equivocating
//! leader, a fork after a skipped view) executes on it directly instead of replaying from the
//! finalized state. When a block finalizes and this node holds its speculative state, that
//! state becomes the finalized state as it is (the block is not executed again); the
//! commitments the block carries are still checked against the finalized state it extends,
//! and the kept state's own commitments are checked when its child finalizes, as for an
//! executed one. Finalizing height `h` forgets every speculative state at or below `h` and
//! every one that does not descend from the finalized block (it can never finalize).
//! Bounded: at most [`SPECULATIVE_STATES_MAX`] speculative states are held; past that the
//! oldest-inserted is forgotten, which costs only time: a child of it is replayed from the
//! nearest state held (`app.rs` `ensure_state`), and the block itself is executed on the
//! finalized state if it finalizes.

use crate::block::ChainBlock;
use crate::commitment::{self, StateHash};
use bulwark_exchange::{BlockError, BlockOutcome, Exchange, StateDigest};
use bulwark_types::CheckedBlock;
use commonware_consensus::Heightable;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digested, Digestible};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Most speculative states a node holds at once. The honest chain needs one per block between
/// the finalized block and the newest notarized one (`AppConfig::speculation_depth_max` bounds
/// that distance); forks add a few. A leader proposing many forks can push honest states out,
/// never grow this: each state is a whole exchange.
pub const SPECULATIVE_STATES_MAX: usize = 16;

/// The state after one block that is not finalized (yet), with the block and what executing it
/// did.
#[derive(Clone, Debug)]
struct Speculative {
    /// Shared with consensus (marshal holds the same allocation): the executor can finalize
    /// the block from here the moment its finalization certificate arrives
    /// ([`Chain::next_held`]).
    block: Digested<ChainBlock>,
    state: Arc<Exchange>,
    outcome: BlockOutcome,
    /// Insertion order, for forgetting the oldest past [`SPECULATIVE_STATES_MAX`].
    inserted: u64,
}

impl Speculative {
    /// The block's parent, which its state was executed on.
    fn parent(&self) -> Digest {
        self.block.inner().parent
    }

    fn height(&self) -> u64 {
        self.state.height().get()
    }
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

/// The finalized state and the speculative states above it.
#[derive(Clone, Debug)]
pub struct Chain {
    finalized: Arc<Exchange>,
    finalized_digest: Digest,
    /// Speculative states by block digest, at most [`SPECULATIVE_STATES_MAX`], all above the
    /// finalized height.
    speculative: BTreeMap<Digest, Speculative>,
    /// The block extended last, while its state is held: the newest state (admission reads it).
    head: Option<Digest>,
    /// How many speculative states were ever inserted (orders them for forgetting).
    inserted: u64,
    /// State hashes already computed, by the block whose post-state they hash, each with the
    /// very state it was computed on: reused only for that allocation (`Arc::ptr_eq`), so a
    /// state executed again for the same digest is hashed again. Filled where a hash is due
    /// (a proposal, a verification) and ahead of time by the executor
    /// ([`Chain::record_state_hash`]); at most [`HASHED_MAX`], and only for states still held.
    hashed: VecDeque<Hashed>,
}

/// A state hash and the state it was computed on.
#[derive(Clone, Debug)]
struct Hashed {
    digest: Digest,
    state: Arc<Exchange>,
    hash: StateHash,
}

/// State hashes a chain remembers: the one after the finalized block and a few competing
/// speculative ones.
pub const HASHED_MAX: usize = 4;

impl Chain {
    /// A chain whose last finalized block is `digest`, with `exchange` its post-state.
    pub fn new(exchange: Exchange, digest: Digest) -> Self {
        Self {
            finalized: Arc::new(exchange),
            finalized_digest: digest,
            speculative: BTreeMap::new(),
            head: None,
            inserted: 0,
            hashed: VecDeque::new(),
        }
    }

    /// The state hash a block on `parent` must carry (see [`crate::commitment`]), if this
    /// node holds the state after `parent`.
    pub fn state_hash_due(&mut self, parent: &Digest) -> Option<Option<StateHash>> {
        let state = Arc::clone(self.state_shared(parent)?);
        if !commitment::commits_after(state.height().get()) {
            return Some(None);
        }
        if let Some(hash) = self.hash_known(parent, &state) {
            return Some(Some(hash));
        }
        let hash = commitment::state_hash_of(&state);
        self.remember_hash(*parent, state, hash);
        Some(Some(hash))
    }

    /// Records `hash` as the state hash of `state`, the state after block `digest`, computed
    /// off the lock (the executor does so for each finalized state that a child must commit
    /// to, in the time before that child is proposed). Ignored unless `state` is the very
    /// state held for `digest`.
    pub fn record_state_hash(&mut self, digest: Digest, state: &Arc<Exchange>, hash: StateHash) {
        let held = self
            .state_shared(&digest)
            .is_some_and(|held| Arc::ptr_eq(held, state));
        if held && self.hash_known(&digest, state).is_none() {
            self.remember_hash(digest, Arc::clone(state), hash);
        }
    }

    /// The state hash of `state` (held for `digest`), if computed on that very state.
    fn hash_known(&self, digest: &Digest, state: &Arc<Exchange>) -> Option<StateHash> {
        self.hashed
            .iter()
            .find(|h| h.digest == *digest && Arc::ptr_eq(&h.state, state))
            .map(|h| h.hash)
    }

    fn remember_hash(&mut self, digest: Digest, state: Arc<Exchange>, hash: StateHash) {
        if self.hashed.len() == HASHED_MAX {
            self.hashed.pop_front();
        }
        self.hashed.push_back(Hashed {
            digest,
            state,
            hash,
        });
        assert!(self.hashed.len() <= HASHED_MAX);
    }

    pub fn finalized(&self) -> &Exchange {
        &self.finalized
    }

    /// The finalized state, shared: it never changes, so a reader (the published view, a
    /// snapshot being encoded) may keep it without holding the chain's lock.
    pub fn finalized_shared(&self) -> Arc<Exchange> {
        Arc::clone(&self.finalized)
    }

    pub fn finalized_digest(&self) -> Digest {
        self.finalized_digest
    }

    pub fn finalized_height(&self) -> u64 {
        self.finalized.height().get()
    }

    /// How many speculative states this node holds.
    pub fn speculative_len(&self) -> usize {
        self.speculative.len()
    }

    /// The state after block `digest`, if this node holds it.
    pub fn state_after(&self, digest: &Digest) -> Option<&Exchange> {
        self.state_shared(digest).map(|s| &**s)
    }

    fn state_shared(&self, digest: &Digest) -> Option<&Arc<Exchange>> {
        match self.speculative.get(digest) {
            Some(speculative) => Some(&speculative.state),
            None if self.finalized_digest == *digest => Some(&self.finalized),
            None => None,
        }
    }

    /// The newest state this node holds: after the block extended last if it is still held,
    /// else the finalized state.
    pub fn newest(&self) -> &Exchange {
        self.head
            .and_then(|digest| self.speculative.get(&digest))
            .map_or(&self.finalized, |s| &s.state)
    }

    /// The newest state, shared (see [`Chain::newest`]).
    pub fn newest_shared(&self) -> Arc<Exchange> {
        let newest = self.head.and_then(|digest| self.speculative.get(&digest));
        Arc::clone(newest.map_or(&self.finalized, |s| &s.state))
    }

    /// Forgets the speculative state after `digest`, if held: it is recomputed if needed.
    pub fn forget(&mut self, digest: &Digest) {
        self.speculative.remove(digest);
        self.hashed.retain(|h| h.digest != *digest);
        if self.head == Some(*digest) {
            self.head = None;
        }
    }

    /// Executes `block` on a copy of the state after its parent and keeps the result under the
    /// block's digest (the parent's state stays held too); the block becomes the head. A block
    /// whose state is already held is not executed again. Checks the state digest and state
    /// hash the block commits to first; on any error nothing changes.
    pub fn extend(
        &mut self,
        digested: &Digested<ChainBlock>,
        checked: &CheckedBlock,
    ) -> Result<(), ExtendError> {
        let digest = digested.digest();
        let block = digested.inner();
        debug_assert_eq!(
            digest,
            block.digest(),
            "a block is held under its own digest"
        );
        if self.speculative.contains_key(&digest) {
            self.head = Some(digest);
            return Ok(());
        }
        let parent = self
            .state_shared(&block.parent)
            .ok_or(ExtendError::UnknownParent(block.parent))?;
        let computed = parent.state_digest();
        if computed != block.state_digest {
            return Err(ExtendError::StateMismatch {
                committed: block.state_digest,
                computed,
            });
        }
        let parent = Arc::clone(parent);
        let due = self
            .state_hash_due(&block.parent)
            .expect("parent state known");
        if due != block.state_hash {
            return Err(ExtendError::StateHashMismatch {
                committed: block.state_hash,
                computed: due,
            });
        }
        // On error the copy is dropped: the parent's state is untouched either way.
        let mut state = Exchange::clone(&parent);
        let outcome = state.apply_block(checked)?;
        let height = state.height().get();
        assert_eq!(height, parent.height().get() + 1, "a block extends by one");
        assert!(
            height > self.finalized_height(),
            "speculation is above finality"
        );
        self.inserted += 1;
        self.speculative.insert(
            digest,
            Speculative {
                block: digested.clone(),
                state: Arc::new(state),
                outcome,
                inserted: self.inserted,
            },
        );
        self.head = Some(digest);
        while self.speculative.len() > SPECULATIVE_STATES_MAX {
            let oldest = self
                .speculative
                .iter()
                .min_by_key(|(_, s)| s.inserted)
                .map(|(d, _)| *d)
                .expect("non-empty");
            assert_ne!(oldest, digest, "the newest state is not the oldest");
            self.forget(&oldest);
        }
        Ok(())
    }

    /// The block `digest`, if this node holds its speculative state and that state extends the
    /// finalized block: the next block, ready for [`Chain::finalize_kept`] without waiting for
    /// marshal to deliver it.
    pub fn next_held(&self, digest: &Digest) -> Option<Digested<ChainBlock>> {
        self.speculative
            .get(digest)
            .filter(|s| s.parent() == self.finalized_digest)
            .map(|s| s.block.clone())
    }

    /// Finalizes the next block if this node holds its speculative state: that state becomes
    /// the finalized state, after the block's commitments are checked against the finalized
    /// state it extends, and what executing it did is returned. `Ok(None)` (nothing changed)
    /// if no speculative state of the block is held: execute it with [`Chain::finalize`].
    pub fn finalize_kept(
        &mut self,
        block: &ChainBlock,
    ) -> Result<Option<BlockOutcome>, FinalizeError> {
        let digest = block.digest();
        if !self.speculative.contains_key(&digest) {
            return Ok(None);
        }
        self.check_next(block)?;
        let kept = self.speculative.remove(&digest).expect("held");
        // Held under the block's digest, which commits to its parent: it was executed on the
        // state after the finalized block (the checks above passed on that very state).
        assert_eq!(
            kept.parent(),
            self.finalized_digest,
            "kept state extends finality"
        );
        assert_eq!(
            kept.height(),
            self.finalized_height() + 1,
            "kept state is next"
        );
        self.finalized = kept.state;
        self.finalized_digest = digest;
        self.prune();
        Ok(Some(kept.outcome))
    }

    /// Finalizes the next block: keeps its speculative state if held (see
    /// [`Chain::finalize_kept`]), else executes it on the finalized state.
    pub fn finalize(
        &mut self,
        block: &ChainBlock,
        checked: &CheckedBlock,
    ) -> Result<BlockOutcome, FinalizeError> {
        if let Some(outcome) = self.finalize_kept(block)? {
            return Ok(outcome);
        }
        self.check_next(block)?;
        let height = block.height().get();
        // Copies the state first only if a reader still holds it; on error apply_block changes
        // nothing, so the finalized state stays the one after the finalized block.
        let outcome = Arc::make_mut(&mut self.finalized)
            .apply_block(checked)
            .map_err(|error| FinalizeError::Block { height, error })?;
        assert_eq!(self.finalized_height(), height, "a block extends by one");
        self.finalized_digest = block.digest();
        self.prune();
        Ok(outcome)
    }

    /// Whether `block` is the next block and commits to the finalized state: its state digest
    /// and state hash, computed on the finalized state itself (a hash remembered is used only
    /// if it was computed on this very state, not on another execution of the same block), so
    /// a finalized state that drifted from the network's is caught.
    fn check_next(&self, block: &ChainBlock) -> Result<(), FinalizeError> {
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
        let due = commitment::commits_after(self.finalized_height()).then(|| {
            self.hash_known(&self.finalized_digest, &self.finalized)
                .unwrap_or_else(|| commitment::state_hash_of(&self.finalized))
        });
        if due != block.state_hash {
            return Err(Divergence {
                height,
                what: "state hash",
                committed: hex_of(block.state_hash.as_ref().map(|d| d.as_ref())),
                computed: hex_of(due.as_ref().map(|d| d.as_ref())),
            }
            .into());
        }
        Ok(())
    }

    /// Forgets every speculative state that can no longer finalize: at or below the finalized
    /// height, or not descending from the finalized block (one whose ancestor was forgotten
    /// cannot be shown to descend, and goes too).
    fn prune(&mut self) {
        let finalized_height = self.finalized_height();
        let mut by_height: Vec<(u64, Digest, Digest)> = self
            .speculative
            .iter()
            .map(|(digest, s)| (s.height(), *digest, s.parent()))
            .collect();
        by_height.sort_unstable();
        let mut alive = BTreeSet::from([self.finalized_digest]);
        for (height, digest, parent) in by_height {
            if height > finalized_height && alive.contains(&parent) {
                alive.insert(digest);
            } else {
                self.speculative.remove(&digest);
            }
        }
        if self
            .head
            .is_some_and(|d| !self.speculative.contains_key(&d))
        {
            self.head = None;
        }
        let hashed = std::mem::take(&mut self.hashed);
        self.hashed = hashed
            .into_iter()
            .filter(|h| {
                self.state_shared(&h.digest)
                    .is_some_and(|held| Arc::ptr_eq(held, &h.state))
            })
            .collect();
        assert!(self.speculative.len() <= SPECULATIVE_STATES_MAX);
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
    use commonware_codec::Encode;
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

    /// `block` as consensus hands it over.
    fn held(block: &ChainBlock) -> Digested<ChainBlock> {
        Digested::precomputed(block.clone(), block.digest())
    }

    #[test]
    fn speculation_forks_from_the_finalized_state_and_finalization_checks_the_commitment() {
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let (a, checked_a) = block(chain.finalized(), root, &bridge, 1, 100);
        chain.extend(&held(&a), &checked_a).unwrap();
        assert_eq!(chain.newest().height().get(), 1);
        // A competing block on the same parent becomes the head; both states are held.
        let (b, checked_b) = block(chain.finalized(), root, &bridge, 1, 200);
        chain.extend(&held(&b), &checked_b).unwrap();
        assert!(chain.state_after(&b.digest()).is_some());
        assert!(chain.state_after(&a.digest()).is_some());
        assert_eq!(chain.speculative_len(), 2);
        // A child of `b`.
        let b_state = chain.state_after(&b.digest()).unwrap().clone();
        let (c, checked_c) = block(&b_state, b.digest(), &bridge, 2, 300);
        chain.extend(&held(&c), &checked_c).unwrap();

        // Finalizing `a` (the network chose it) works from the finalized state alone.
        let outcome = chain.finalize(&a, &checked_a).unwrap();
        assert_eq!(outcome.height.get(), 1);
        assert_eq!(chain.finalized_digest(), a.digest());
        // `b` and its child `c` can never finalize now: forgotten.
        assert_eq!(chain.speculative_len(), 0);
        assert_eq!(chain.newest().height().get(), 1, "the head went with them");
        // `c` builds on `b`, not on the finalized `a`.
        assert_eq!(
            chain.finalize(&c, &checked_c),
            Err(FinalizeError::NotNext { height: 2 })
        );
    }

    /// What finalizing `block` by executing it on a fresh chain at `state` gives.
    fn executed(
        state: &Exchange,
        root: Digest,
        block: &ChainBlock,
        checked: &CheckedBlock,
    ) -> (BlockOutcome, StateDigest) {
        let mut fresh = Chain::new(state.clone(), root);
        let outcome = fresh.finalize(block, checked).unwrap();
        (outcome, fresh.finalized().state_digest())
    }

    #[test]
    fn a_finalized_speculative_block_is_kept_not_executed_again() {
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let genesis_state = chain.finalized().clone();
        let (a, checked_a) = block(chain.finalized(), root, &bridge, 1, 100);
        chain.extend(&held(&a), &checked_a).unwrap();
        let speculative: *const Exchange = chain.state_after(&a.digest()).unwrap();
        // Extending again with the same block executes nothing: the same state stays.
        chain.extend(&held(&a), &checked_a).unwrap();
        assert!(std::ptr::eq(
            chain.state_after(&a.digest()).unwrap(),
            speculative
        ));
        let published = chain.finalized_shared();
        let outcome = chain.finalize_kept(&a).unwrap().expect("kept");
        assert!(
            std::ptr::eq(chain.finalized(), speculative),
            "the speculative state itself became the finalized state"
        );
        assert_eq!(chain.speculative_len(), 0);
        assert_eq!(chain.finalized_digest(), a.digest());
        // What execution at finalization would have given.
        assert_eq!(
            executed(&genesis_state, root, &a, &checked_a),
            (outcome, chain.finalized().state_digest())
        );
        // A reader holding the previous finalized state still sees it, whole.
        assert_eq!(published.height().get(), 0);
        assert_eq!(published.state_digest(), genesis_state.state_digest());
        // A block this node never speculated: nothing kept, nothing changed.
        let (b, checked_b) = block(chain.finalized(), a.digest(), &bridge, 2, 5);
        assert_eq!(chain.finalize_kept(&b), Ok(None));
        assert_eq!(chain.finalized_digest(), a.digest());
        chain.finalize(&b, &checked_b).unwrap();
        assert_eq!(chain.finalized_height(), 2);
    }

    /// What the executor may finalize on a finalization certificate before marshal delivers
    /// the block: only a block held here whose state extends the finalized block. A certified
    /// block whose parent is not finalized here yet waits (finalizing it would skip its
    /// parent), and so does one never speculated here.
    #[test]
    fn only_a_held_block_on_the_finalized_state_is_ready_on_its_certificate() {
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let (a, checked_a) = block(chain.finalized(), root, &bridge, 1, 100);
        let (fork, checked_fork) = block(chain.finalized(), root, &bridge, 1, 7);
        chain.extend(&held(&a), &checked_a).unwrap();
        chain.extend(&held(&fork), &checked_fork).unwrap();
        let a_state = chain.state_after(&a.digest()).unwrap().clone();
        let (b, checked_b) = block(&a_state, a.digest(), &bridge, 2, 10);
        chain.extend(&held(&b), &checked_b).unwrap();
        let (c, _) = block(
            chain.state_after(&b.digest()).unwrap(),
            b.digest(),
            &bridge,
            3,
            1,
        );
        assert_eq!(
            chain.next_held(&a.digest()).map(|h| h.digest()),
            Some(a.digest())
        );
        assert_eq!(
            chain.next_held(&fork.digest()).map(|h| h.digest()),
            Some(fork.digest())
        );
        assert!(
            chain.next_held(&b.digest()).is_none(),
            "its parent is not finalized"
        );
        assert!(
            chain.next_held(&c.digest()).is_none(),
            "never speculated here"
        );
        let ready = chain.next_held(&a.digest()).unwrap();
        assert!(chain.finalize_kept(ready.inner()).unwrap().is_some());
        assert_eq!(
            chain.next_held(&b.digest()).map(|h| h.digest()),
            Some(b.digest())
        );
        assert!(
            chain.next_held(&fork.digest()).is_none(),
            "the losing fork is gone"
        );
        assert!(chain.next_held(&a.digest()).is_none(), "finalized already");
    }

    /// An equivocating leader proposes two blocks at one height: each executes on the state
    /// after their common parent (which stays held), children build on either, and finalizing
    /// one forgets the other with all its descendants while keeping the winner's children.
    #[test]
    fn an_equivocating_leader_forks_from_the_parent_state_and_the_loser_is_pruned() {
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let (p, checked_p) = block(chain.finalized(), root, &bridge, 1, 100);
        chain.extend(&held(&p), &checked_p).unwrap();
        let p_state = chain.state_after(&p.digest()).unwrap().clone();
        let (a, checked_a) = block(&p_state, p.digest(), &bridge, 2, 10);
        let (b, checked_b) = block(&p_state, p.digest(), &bridge, 2, 20);
        chain.extend(&held(&a), &checked_a).unwrap();
        chain.extend(&held(&b), &checked_b).unwrap();
        assert_ne!(
            chain.state_after(&a.digest()).unwrap().state_digest(),
            chain.state_after(&b.digest()).unwrap().state_digest()
        );
        assert_eq!(
            chain.state_after(&p.digest()).unwrap().state_digest(),
            p_state.state_digest(),
            "the parent's state is untouched by its children"
        );
        let a_state = chain.state_after(&a.digest()).unwrap().clone();
        let b_state = chain.state_after(&b.digest()).unwrap().clone();
        let (a_child, checked_a_child) = block(&a_state, a.digest(), &bridge, 3, 1);
        let (b_child, checked_b_child) = block(&b_state, b.digest(), &bridge, 3, 2);
        chain.extend(&held(&a_child), &checked_a_child).unwrap();
        chain.extend(&held(&b_child), &checked_b_child).unwrap();
        assert_eq!(chain.speculative_len(), 5);

        chain.finalize_kept(&p).unwrap().expect("kept");
        assert_eq!(chain.speculative_len(), 4, "both forks descend from p");
        chain.finalize_kept(&b).unwrap().expect("kept");
        assert_eq!(
            chain.speculative_len(),
            1,
            "a and its child can never finalize"
        );
        assert!(chain.state_after(&a.digest()).is_none());
        assert!(chain.state_after(&a_child.digest()).is_none());
        assert_eq!(
            chain.newest().state_digest(),
            chain.state_after(&b_child.digest()).unwrap().state_digest(),
            "the head is b's child, which extends the finalized block"
        );
        // The loser's child finalizing would be a fork of finalized history: refused.
        assert_eq!(
            chain.finalize(&a_child, &checked_a_child),
            Err(FinalizeError::NotNext { height: 3 })
        );
        chain.finalize_kept(&b_child).unwrap().expect("kept");
        assert_eq!(chain.finalized_height(), 3);
        assert_eq!(chain.speculative_len(), 0);
    }

    /// A leader proposing fork after fork cannot grow the states held past the bound; a
    /// forgotten block that finalizes is executed on the finalized state instead.
    #[test]
    fn forks_are_bounded_and_a_forgotten_one_is_executed_at_finalization() {
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let forks: Vec<(ChainBlock, CheckedBlock)> = (0..SPECULATIVE_STATES_MAX as i64 + 8)
            .map(|i| block(chain.finalized(), root, &bridge, 1, 100 + i))
            .collect();
        for (fork, checked) in &forks {
            chain.extend(&held(fork), checked).unwrap();
            assert!(chain.speculative_len() <= SPECULATIVE_STATES_MAX);
        }
        assert_eq!(chain.speculative_len(), SPECULATIVE_STATES_MAX);
        let (first, checked_first) = &forks[0];
        let (last, _) = forks.last().unwrap();
        assert!(
            chain.state_after(&first.digest()).is_none(),
            "oldest forgotten"
        );
        assert!(chain.state_after(&last.digest()).is_some(), "newest held");
        assert_eq!(chain.finalize_kept(first), Ok(None));
        let expected = executed(chain.finalized(), root, first, checked_first);
        let outcome = chain.finalize(first, checked_first).unwrap();
        assert_eq!(expected, (outcome, chain.finalized().state_digest()));
        assert_eq!(chain.speculative_len(), 0, "every other fork is dead");
    }

    /// A block verified on a speculative parent that a competing finalization makes stale is
    /// forgotten with it, and nothing can extend the stale state any more.
    #[test]
    fn a_state_verified_on_a_parent_that_loses_finalization_goes_stale() {
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let (a, checked_a) = block(chain.finalized(), root, &bridge, 1, 100);
        let (b, checked_b) = block(chain.finalized(), root, &bridge, 1, 200);
        chain.extend(&held(&a), &checked_a).unwrap();
        let a_state = chain.state_after(&a.digest()).unwrap().clone();
        let (c, checked_c) = block(&a_state, a.digest(), &bridge, 2, 300);
        chain.extend(&held(&c), &checked_c).unwrap();
        // The network finalized `b`, which this node never saw before.
        let expected = executed(chain.finalized(), root, &b, &checked_b);
        let outcome = chain.finalize(&b, &checked_b).unwrap();
        assert_eq!(expected, (outcome, chain.finalized().state_digest()));
        assert_eq!(chain.speculative_len(), 0);
        assert_eq!(
            chain.newest().state_digest(),
            chain.finalized().state_digest()
        );
        let (d, checked_d) = block(
            chain.state_after(&b.digest()).unwrap(),
            b.digest(),
            &bridge,
            2,
            5,
        );
        let (on_c, checked_on_c) = {
            let c_state = {
                let mut s = a_state.clone();
                s.apply_block(&checked_c).unwrap();
                s
            };
            block(&c_state, c.digest(), &bridge, 3, 7)
        };
        assert_eq!(
            chain.extend(&held(&on_c), &checked_on_c),
            Err(ExtendError::UnknownParent(c.digest()))
        );
        chain.extend(&held(&d), &checked_d).unwrap();
        chain.finalize_kept(&d).unwrap().expect("kept");
    }

    /// The commitments a kept block carries are checked against the finalized state it
    /// extends, not against the state it was speculated on: if the two differ (here the
    /// parent's speculative state was forgotten and the parent executed differently at
    /// finalization, as a non-deterministic bug would), the node halts instead of keeping.
    #[test]
    fn a_kept_state_is_refused_when_the_finalized_state_it_extends_diverged() {
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let (a, checked_a) = block(chain.finalized(), root, &bridge, 1, 100);
        chain.extend(&held(&a), &checked_a).unwrap();
        let a_state = chain.state_after(&a.digest()).unwrap().clone();
        let (b, checked_b) = block(&a_state, a.digest(), &bridge, 2, 5);
        chain.extend(&held(&b), &checked_b).unwrap();
        chain.forget(&a.digest());
        // `a` executes here with its deposit's signature refused.
        let mut body = a.body.clone();
        let stranger = PrivateKey::from_seed(u64::MAX);
        body.txs[0].signature =
            stranger.sign(bulwark_types::tx::TX_NAMESPACE, &body.txs[0].tx.encode());
        let faulty = body.check_signatures(&mut ChaCha8Rng::seed_from_u64(9));
        chain.finalize(&a, &faulty).unwrap();
        let Err(FinalizeError::Divergence(divergence)) = chain.finalize_kept(&b) else {
            panic!("a divergence")
        };
        assert_eq!(divergence.what, "state digest");
        assert_eq!(chain.finalized_digest(), a.digest(), "b was not kept");
        assert!(chain.state_after(&b.digest()).is_some(), "nothing changed");
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
            chain.extend(&held(&lying), &checked),
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
            chain.extend(&held(&unknown_parent), &checked),
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
        let divergence = refused_for_its_state_hash(&mut diverged, &good, &checked);
        assert_ne!(divergence.committed, divergence.computed);
        // The honest chain takes it; a block leaving the hash out, or adding one where none is
        // due, is refused.
        honest.extend(&held(&good), &checked).unwrap();
        let without = ChainBlock::new(
            good.context.clone(),
            root,
            good.state_digest,
            None,
            good.body.clone(),
        );
        assert!(matches!(
            honest.extend(&held(&without), &checked),
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
            honest.extend(&held(&extra), &checked_next),
            Err(ExtendError::StateHashMismatch { .. })
        ));
        honest.extend(&held(&next), &checked_next).unwrap();
    }

    /// Asserts that `chain` refuses `block` for its state hash, at verification (no vote) and
    /// at finalization (a divergence, returned).
    fn refused_for_its_state_hash(
        chain: &mut Chain,
        block: &ChainBlock,
        checked: &CheckedBlock,
    ) -> Divergence {
        assert!(matches!(
            chain.extend(&held(block), checked),
            Err(ExtendError::StateHashMismatch { .. })
        ));
        let Err(FinalizeError::Divergence(divergence)) = chain.finalize(block, checked) else {
            panic!("a divergence")
        };
        assert_eq!(divergence.what, "state hash");
        divergence
    }

    /// A state hash recorded ahead (the executor's, computed off the lock) serves the next
    /// block's proposal, verification and finalization check, but only for the very state it
    /// was computed on. The record is believed, so a wrong one shows where it is used.
    #[test]
    fn a_state_hash_recorded_ahead_serves_only_the_state_it_was_computed_on() {
        let wrong = Sha256::hash(&[b"not the state hash"]);
        let (mut chain, bridge) = genesis();
        let root = chain.finalized_digest();
        let state = chain.finalized_shared();
        let (good, checked) = block(&state, root, &bridge, 1, 100);
        // For another copy of the same state (another execution of the block), or for a
        // block whose state is not held: ignored, the hash is computed on the state.
        chain.record_state_hash(root, &Arc::new(Exchange::clone(&state)), wrong);
        chain.record_state_hash(good.digest(), &state, wrong);
        assert_eq!(chain.state_hash_due(&root), Some(good.state_hash));
        chain.extend(&held(&good), &checked).unwrap();
        chain.finalize(&good, &checked).unwrap();

        // Recorded for the state held: used by verification and by the finalization check.
        let (mut chain, _) = genesis();
        chain.record_state_hash(root, &chain.finalized_shared(), wrong);
        assert_eq!(chain.state_hash_due(&root), Some(Some(wrong)));
        refused_for_its_state_hash(&mut chain, &good, &checked);

        // At most `HASHED_MAX` remembered, and only for states still held: finalizing one
        // of competing blocks drops the others' hashes with their states.
        let (mut chain, _) = genesis();
        for usdc in 100..100 + 2 * HASHED_MAX as i64 {
            let (competing, checked) = block(chain.finalized(), root, &bridge, 1, usdc);
            chain.extend(&held(&competing), &checked).unwrap();
            let held = Arc::clone(chain.state_shared(&competing.digest()).unwrap());
            chain.record_state_hash(competing.digest(), &held, wrong);
            assert!(chain.hashed.len() <= HASHED_MAX);
        }
        chain.finalize(&good, &checked).unwrap();
        assert!(chain.hashed.iter().all(|h| h.digest == good.digest()));
    }

    /// `state` with 1 USDC added to the insurance fund and to deposits (so the ledger still
    /// balances), re-encoded with a fresh trailer: what a forger can make of a snapshot.
    pub(crate) fn forge_fund(state: &Exchange) -> Exchange {
        let bytes = crate::test_support::credit_fund(&state.snapshot());
        Exchange::restore(&bytes).expect("a self-consistent forgery restores")
    }
}
