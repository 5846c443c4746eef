//! A leader that breaks one proposer duty in every block it proposes, and is otherwise honest.
//!
//! Owns: the wrapped validator's proposals. It lets the honest application build each block,
//! then mutates the block's body (the duty its [`DutySwitch`] names) and re-digests it; it
//! verifies, votes and executes like an honest validator, so it agrees with the others on
//! every finalized block. Every honest verifier must refuse its broken blocks and name it.
//! Never: signs anything itself, or breaks a block when its switch is off.

use super::rewriter::{ProposalRewriter, Rewrite, with_body};
use bulwark_node::app::ExchangeApp;
use bulwark_node::block::ChainBlock;
use bulwark_node::mempool::cancels_first;
use bulwark_node::shared::{Shared, lock};
use bulwark_types::{Block as ExchangeBlock, BlockTime, Money, PrivateKey, TxBody, UnitPrice};
use commonware_cryptography::Signer as _;
use commonware_cryptography::sha256::Digest;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// Broken blocks a [`DutySwitch`] remembers; older ones are dropped.
pub const BROKEN_MAX: usize = 4_096;

/// A proposer duty every verifier checks.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Duty {
    /// Cancels come first: the breaker puts every cancel after the orders.
    CancelsFirst = 1,
    /// One observation per validator and underlying: the breaker repeats the first one.
    OneObservationPerValidator = 2,
    /// Block time not before the parent's: the breaker dates its block 1 ms before it.
    TimeNotBeforeParent = 3,
    /// Every transaction has a payer: the breaker adds a withdrawal by a key with no account.
    PayingSigners = 4,
    /// Every transaction's signature verifies: the breaker turns its block's last transaction
    /// into a large withdrawal under the same key, nonce and signature, so the forgery shares
    /// its (key, nonce) with a transaction the verifiers admitted and verified.
    TransactionsSigned = 5,
    /// Every observation is validly signed: the breaker reprices its block's first observation
    /// under the same signature, so the forgery shares its validator, underlying and time with
    /// an observation the verifiers verified on arrival.
    ObservationsSigned = 6,
    /// The block commits to the state after its parent: the breaker commits to another
    /// (its parent's digest with one bit flipped).
    CommittedState = 7,
}

impl Duty {
    pub const ALL: [Duty; 7] = [
        Duty::CancelsFirst,
        Duty::OneObservationPerValidator,
        Duty::TimeNotBeforeParent,
        Duty::PayingSigners,
        Duty::TransactionsSigned,
        Duty::ObservationsSigned,
        Duty::CommittedState,
    ];

    fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|d| *d as u8 == value)
    }

    /// Breaks this duty in `body`, whose parent's time is `parent_time`; false when the block
    /// gives no way to (no cancel behind another signer's order, no observation).
    pub fn break_in(self, body: &mut ExchangeBlock, parent_time: BlockTime) -> bool {
        match self {
            Duty::CancelsFirst => {
                // Orders first, cancels last: broken when some other signer's order now
                // precedes a cancel.
                body.txs.sort_by_key(|tx| tx.tx.body.is_cancel());
                !cancels_first(&body.txs)
            }
            Duty::OneObservationPerValidator => match body.observations.first().cloned() {
                Some(first) => {
                    body.observations.push(first);
                    true
                }
                None => false,
            },
            Duty::TimeNotBeforeParent => match parent_time.millis().checked_sub(1) {
                Some(before) => {
                    body.time = BlockTime::from_millis(before);
                    true
                }
                None => false,
            },
            Duty::PayingSigners => {
                // A throwaway key's withdrawal: validly signed, but nobody pays for it.
                let key = PrivateKey::from_seed(body.height.get() ^ 0x5eed);
                let tx = TxBody::Withdraw {
                    amount: Money::from_usdc(1),
                }
                .signed(&key, 1);
                body.txs.push(tx);
                true
            }
            Duty::TransactionsSigned => match body.txs.last_mut() {
                Some(last) => {
                    last.tx.body = TxBody::Withdraw {
                        amount: Money::from_usdc(1_000_000),
                    };
                    true
                }
                None => false,
            },
            Duty::ObservationsSigned => match body.observations.first_mut() {
                Some(first) => {
                    let price = first.observation.price.micros();
                    first.observation.price = UnitPrice::from_micros(price.saturating_mul(2));
                    true
                }
                None => false,
            },
            // Not in the body: see `DutyBreaker::broken`.
            Duty::CommittedState => true,
        }
    }
}

/// Turns a [`DutyBreaker`] on and off while it runs, and records the blocks it broke.
#[derive(Debug, Default)]
pub struct DutySwitch {
    /// 0: honest; otherwise a [`Duty`]'s discriminant.
    duty: AtomicU8,
    broken: Mutex<Vec<Digest>>,
}

impl DutySwitch {
    /// Breaks `duty` in every later proposal; `None` proposes honestly again.
    pub fn set(&self, duty: Option<Duty>) {
        self.duty
            .store(duty.map_or(0, |d| d as u8), Ordering::SeqCst);
    }

    pub fn duty(&self) -> Option<Duty> {
        Duty::from_u8(self.duty.load(Ordering::SeqCst))
    }

    /// Digests of the blocks broken so far (the newest [`BROKEN_MAX`]).
    pub fn broken(&self) -> Vec<Digest> {
        lock(&self.broken).clone()
    }

    fn record(&self, digest: Digest) {
        let mut broken = lock(&self.broken);
        if broken.len() == BROKEN_MAX {
            broken.remove(0);
        }
        broken.push(digest);
    }
}

/// A leader that breaks the duty its switch names (a [`Rewrite`] role).
#[derive(Clone)]
pub struct DutyBreaker {
    switch: Arc<DutySwitch>,
}

impl DutyBreaker {
    /// The wrapper `bulwark_node::engine::start_with` takes.
    pub fn wrapper(
        switch: Arc<DutySwitch>,
    ) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> ProposalRewriter<Self> {
        ProposalRewriter::wrapper(Self { switch })
    }
}

impl Rewrite for DutyBreaker {
    // The parent's time: `Duty::TimeNotBeforeParent` dates the block before it.
    const NEEDS_PARENT: bool = true;

    /// `honest` with the switch's duty broken, or `None` when it is off or cannot be broken.
    fn rewrite(&self, honest: &ChainBlock, parent: Option<&ChainBlock>) -> Option<ChainBlock> {
        let parent_time = parent?.time();
        let duty = self.switch.duty()?;
        let mut body = honest.body.clone();
        if !duty.break_in(&mut body, parent_time) {
            return None;
        }
        let mut state_digest = honest.state_digest;
        if duty == Duty::CommittedState {
            let mut bytes: [u8; 32] = state_digest.as_ref().try_into().expect("32 bytes");
            bytes[0] ^= 1;
            state_digest = bytes.into();
        }
        Some(with_body(honest, body, Some(state_digest)))
    }

    fn shipped(&self, digest: Digest) {
        self.switch.record(digest);
    }
}
