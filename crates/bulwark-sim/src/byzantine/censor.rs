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

use bulwark_node::app::ExchangeApp;
use bulwark_node::block::{ChainBlock, Ctx};
use bulwark_node::shared::Shared;
use bulwark_types::PublicKey;
use commonware_consensus::Application;
use commonware_consensus::Handoff;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::simplex::scheme::ed25519;
use commonware_cryptography::{Digested, Digestible as _};
use commonware_runtime::Clock;
use rand_core::CryptoRng;
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

/// The wrapped exchange application of a leader that censors `target`.
#[derive(Clone)]
pub struct Censor {
    honest: ExchangeApp,
    target: PublicKey,
    log: Arc<CensorLog>,
}

impl Censor {
    /// The wrapper `bulwark_node::engine::start_with` takes.
    pub fn wrapper(
        target: PublicKey,
        log: Arc<CensorLog>,
    ) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> Self {
        move |honest, _shared| Self {
            honest,
            target,
            log,
        }
    }

    /// `honest` without the censored key's transactions, or `None` when it holds none.
    fn censored(&self, honest: &ChainBlock) -> Option<ChainBlock> {
        let before = honest.body.txs.len();
        let mut body = honest.body.clone();
        body.txs.retain(|tx| tx.tx.signer != self.target);
        let removed = before - body.txs.len();
        if removed == 0 {
            return None;
        }
        self.log.removed.fetch_add(removed as u64, Ordering::SeqCst);
        self.log.blocks.fetch_add(1, Ordering::SeqCst);
        Some(ChainBlock::new(
            honest.context.clone(),
            honest.parent,
            honest.state_digest,
            honest.state_hash,
            body,
        ))
    }
}

impl<E> Application<E> for Censor
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
        self.honest.prepare(context, ancestry, input).await
    }

    async fn propose(
        &mut self,
        context: (E, Ctx),
        ancestry: impl Ancestry<ChainBlock>,
        input: (),
    ) -> Option<Digested<ChainBlock>> {
        let honest = self.honest.propose(context, ancestry, input).await?;
        let Some(censored) = self.censored(honest.inner()) else {
            return Some(honest);
        };
        let digest = censored.digest();
        Some(Digested::precomputed(censored, digest))
    }

    async fn verify(&mut self, context: (E, Ctx), ancestry: impl Ancestry<ChainBlock>) -> bool {
        self.honest.verify(context, ancestry).await
    }
}
