//! The gateway's replica of the exchange: the finalized state after the last proven block,
//! replayed with the validators' own code, and the read model indexed from each block.
//!
//! Owns: applying proven blocks in order ([`Replica::apply`], through
//! `bulwark_node::chain::Chain::finalize`, which checks the state digest and state hash each
//! block commits to), the halt on a divergence, and the height watch that order submissions
//! wait on. Never: holds its lock across an `.await`; holds it while a block executes (the
//! block runs on the follower's copy, swapped in whole); applies an unproven block (the
//! follower only hands over proven ones).

use crate::dashboard::history::History;
use crate::feed::Feed;
use crate::index::ReadModel;
use bulwark_exchange::{ConfigError, Genesis};
use bulwark_node::block::ChainBlock;
use bulwark_node::chain::{Chain, FinalizeError};
use commonware_consensus::simplex::scheme::ed25519;
use commonware_cryptography::Digestible;
use commonware_cryptography::ed25519::PublicKey;
use commonware_cryptography::sha256::Digest;
use commonware_utils::ordered::Set;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// Most lies remembered for `/status`.
pub const LIES_KEPT: usize = 64;

/// Everything behind the replica's lock.
pub struct ReplicaState {
    pub chain: Chain,
    /// Why the follower stopped, if it did.
    pub halted: Option<String>,
    pub index: ReadModel,
    /// What the dashboard shows over time.
    pub history: History,
    /// The newest lies seen: (validator, what).
    pub lies: VecDeque<(String, String)>,
}

/// The replica, shared by the follower and the API.
pub struct Replica {
    verifier: ed25519::Scheme,
    state: Mutex<ReplicaState>,
    height: tokio::sync::watch::Sender<u64>,
    /// What each applied block changed, for subscribers (published under `state`'s lock).
    feed: Feed,
}

impl Replica {
    /// A replica at the genesis the validators start from (the same genesis block digest).
    pub fn from_genesis(
        namespace: &[u8],
        participants: Set<PublicKey>,
        genesis: &Genesis,
    ) -> Result<Self, ConfigError> {
        let (block, exchange) = bulwark_node::engine::genesis_block(&participants, genesis)?;
        let verifier = ed25519::Scheme::verifier(namespace, participants);
        let chain = Chain::new(exchange, block.digest());
        let index = ReadModel::new(chain.finalized());
        let (height, _) = tokio::sync::watch::channel(0);
        Ok(Self {
            verifier,
            state: Mutex::new(ReplicaState {
                chain,
                halted: None,
                index,
                history: History::default(),
                lies: VecDeque::new(),
            }),
            height,
            feed: Feed::new(),
        })
    }

    /// The subscription feed. Lock order: the replica's lock, then the feed's.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    pub fn verifier(&self) -> &ed25519::Scheme {
        &self.verifier
    }

    /// The lock; callers keep it briefly and never across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, ReplicaState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Height and digest of the last applied block.
    pub fn tip(&self) -> (u64, Digest) {
        let state = self.lock();
        (
            state.chain.finalized_height(),
            state.chain.finalized_digest(),
        )
    }

    /// Why the follower halted, if it did.
    pub fn halted(&self) -> Option<String> {
        self.lock().halted.clone()
    }

    pub fn halt(&self, reason: String) {
        self.lock().halted = Some(reason);
    }

    /// A receiver of the applied height (for waiting until a block is applied).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.height.subscribe()
    }

    pub fn record_lie(&self, validator: &str, lie: &str) {
        let mut state = self.lock();
        if state.lies.len() == LIES_KEPT {
            state.lies.pop_front();
        }
        state
            .lies
            .push_back((validator.to_string(), lie.to_string()));
    }

    /// Restarts the replica from a verified snapshot state: `exchange` after block `digest`.
    /// The read model starts empty there (history before it is not known here).
    pub fn restart_from(&self, exchange: bulwark_exchange::Exchange, digest: Digest) {
        let height = exchange.height().get();
        {
            let mut state = self.lock();
            state.index = ReadModel::new(&exchange);
            state.history.clear();
            state.chain = Chain::new(exchange, digest);
            self.feed.publish(state.chain.finalized(), &state.index);
        }
        self.height.send_replace(height);
    }

    /// Applies a proven block; a divergence (or any block that cannot be applied) halts the
    /// replica and is returned. The block executes off the replica's lock, on a copy of the
    /// finalized state (the chain shares it as an `Arc`, so the copy is made by the execution
    /// itself): readers go on reading the previous state meanwhile, and the lock is taken only
    /// to swap the new state in with what it indexes, so a reader sees a block whole or not at
    /// all and never waits for its execution. Only the follower applies blocks, one at a time.
    pub fn apply(&self, block: &ChainBlock) -> Result<(), FinalizeError> {
        let checked = block.body.clone().check_signatures(&mut rand::rng());
        let mut next = self.lock().chain.clone();
        let base = next.finalized_digest();
        let finalized = next.finalize(block, &checked);
        let height = {
            let mut state = self.lock();
            let state = &mut *state;
            assert_eq!(
                state.chain.finalized_digest(),
                base,
                "only the follower moves the replica, one block at a time"
            );
            match finalized {
                Ok(outcome) => {
                    state.chain = next;
                    state.index.record(block, &outcome, state.chain.finalized());
                    state
                        .history
                        .record(block, &checked, &outcome, state.chain.finalized());
                    self.feed.publish(state.chain.finalized(), &state.index);
                    state.chain.finalized_height()
                }
                Err(error) => {
                    state.halted = Some(error.to_string());
                    return Err(error);
                }
            }
        };
        self.height.send_replace(height);
        Ok(())
    }
}
