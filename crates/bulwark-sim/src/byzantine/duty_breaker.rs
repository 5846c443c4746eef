//! A leader that breaks one proposer duty in every block it proposes, and is otherwise honest.
//!
//! Owns: the wrapped validator's proposals. It lets the honest application build each block,
//! then mutates the block's body (the duty its [`DutySwitch`] names) and re-digests it; it
//! verifies, votes and executes like an honest validator, so it agrees with the others on
//! every finalized block. Every honest verifier must refuse its broken blocks and name it.
//! Never: signs anything itself, or breaks a block when its switch is off.

use bulwark_node::app::ExchangeApp;
use bulwark_node::block::{ChainBlock, Ctx};
use bulwark_node::mempool::cancels_first;
use bulwark_node::shared::{Shared, lock};
use bulwark_types::{Block as ExchangeBlock, BlockTime, Money, PrivateKey, TxBody, UnitPrice};
use commonware_consensus::Application;
use commonware_consensus::Handoff;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::simplex::scheme::ed25519;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digested, Digestible as _, Signer as _};
use commonware_runtime::Clock;
use futures::StreamExt as _;
use rand_core::CryptoRng;
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

/// The wrapped exchange application of a leader that breaks the duty its switch names.
#[derive(Clone)]
pub struct DutyBreaker {
    honest: ExchangeApp,
    switch: Arc<DutySwitch>,
}

impl DutyBreaker {
    /// The wrapper `bulwark_node::engine::start_with` takes.
    pub fn wrapper(switch: Arc<DutySwitch>) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> Self {
        move |honest, _shared| Self { honest, switch }
    }

    /// `honest`, whose parent's time is `parent_time`, with the switch's duty broken, or
    /// `None` when it is off or cannot be broken.
    fn broken(&self, honest: &ChainBlock, parent_time: BlockTime) -> Option<ChainBlock> {
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
        Some(ChainBlock::new(
            honest.context.clone(),
            honest.parent,
            state_digest,
            honest.state_hash,
            body,
        ))
    }
}

impl<E> Application<E> for DutyBreaker
where
    E: Clock + CryptoRng + Send + 'static,
{
    type SigningScheme = ed25519::Scheme;
    type Context = Ctx;
    type Block = ChainBlock;
    type Input = ();

    async fn prepare(
        &mut self,
        context: (E, Ctx),
        ancestry: impl Ancestry<ChainBlock>,
        input: (),
    ) -> Handoff<Digested<ChainBlock>> {
        // Forwarded, so the honest choice stands (the exchange application waits).
        self.honest.prepare(context, ancestry, input).await
    }

    async fn propose(
        &mut self,
        context: (E, Ctx),
        ancestry: impl Ancestry<ChainBlock>,
        input: (),
    ) -> Option<Digested<ChainBlock>> {
        // The parent, read from a clone of the ancestry (clones are consumed independently):
        // the node's chain holds only its newest speculative state, so after the honest
        // proposal it no longer holds the parent's.
        let parent_time = ancestry.clone().next().await.map(|p| p.inner().time());
        let honest = self.honest.propose(context, ancestry, input).await?;
        let Some(broken) = parent_time.and_then(|t| self.broken(honest.inner(), t)) else {
            return Some(honest);
        };
        // A faulty leader ships what it built, whatever its own checks would say.
        let digest = broken.digest();
        self.switch.record(digest);
        Some(Digested::precomputed(broken, digest))
    }

    async fn verify(&mut self, context: (E, Ctx), ancestry: impl Ancestry<ChainBlock>) -> bool {
        self.honest.verify(context, ancestry).await
    }
}
