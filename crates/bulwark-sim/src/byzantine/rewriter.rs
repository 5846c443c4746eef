//! A validator whose proposals a Byzantine role rewrites: the one wrapper every proposer role
//! of this module (`Censor`, `DutyBreaker`, `Withholder`, `MarkProposer`, `FrontRunner`, `QuoteSniper`) runs in.
//!
//! Owns: the wrapped validator's proposals. It lets the honest exchange application build
//! each block, hands it (with its parent) to the role, and ships what the role returns under
//! the rewritten block's own digest; it prepares and verifies by forwarding to the honest
//! application, so the validator votes and executes like an honest one and agrees with the
//! others on every finalized block.
//! Never: signs anything itself, or changes a block the role leaves alone.

use bulwark_node::app::ExchangeApp;
use bulwark_node::block::{ChainBlock, Ctx};
use bulwark_node::shared::Shared;
use commonware_consensus::Application;
use commonware_consensus::Handoff;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::simplex::scheme::ed25519;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digested, Digestible as _};
use commonware_runtime::Clock;
use futures::StreamExt as _;
use rand_core::CryptoRng;
use std::sync::Arc;

/// What a Byzantine proposer does to the blocks the honest application builds.
pub trait Rewrite: Clone + Send + Sync + 'static {
    /// Whether the role needs the parent block (read from a clone of the ancestry before the
    /// honest proposal, since the node's chain keeps only its newest speculative state).
    const NEEDS_PARENT: bool = false;

    /// `honest`, whose parent is `parent` (`None` unless [`Self::NEEDS_PARENT`], or when the
    /// ancestry ended), rewritten; `None` ships the honest block unchanged.
    fn rewrite(&self, honest: &ChainBlock, parent: Option<&ChainBlock>) -> Option<ChainBlock>;

    /// Called with the digest of each rewritten block the leader ships.
    fn shipped(&self, _digest: Digest) {}
}

/// The exchange application of a validator whose proposals `role` rewrites.
#[derive(Clone)]
pub struct ProposalRewriter<R> {
    honest: ExchangeApp,
    role: R,
}

impl<R: Rewrite> ProposalRewriter<R> {
    /// The wrapper `bulwark_node::engine::start_with` takes.
    pub fn wrapper(role: R) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> Self {
        move |honest, _shared| Self { honest, role }
    }

    /// Like [`Self::wrapper`], for a role that reads the validator's own shared state (its
    /// finalized exchange state) to decide what to write.
    pub fn wrapper_with(
        role: impl FnOnce(Arc<Shared>) -> R,
    ) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> Self {
        move |honest, shared| Self {
            honest,
            role: role(shared),
        }
    }

    pub fn role(&self) -> &R {
        &self.role
    }
}

/// `honest` with its body replaced by `body` (and, for a role that commits to another state,
/// `state_digest`), under a new digest.
pub fn with_body(
    honest: &ChainBlock,
    body: bulwark_types::Block,
    state_digest: Option<Digest>,
) -> ChainBlock {
    ChainBlock::new(
        honest.context.clone(),
        honest.parent,
        state_digest.unwrap_or(honest.state_digest),
        honest.state_hash,
        body,
    )
}

impl<E, R> Application<E> for ProposalRewriter<R>
where
    E: Clock + CryptoRng + Send + 'static,
    R: Rewrite,
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
        // Clones of an ancestry are consumed independently.
        let parent = if R::NEEDS_PARENT {
            ancestry.clone().next().await.map(|p| p.inner().clone())
        } else {
            None
        };
        let honest = self.honest.propose(context, ancestry, input).await?;
        let Some(rewritten) = self.role.rewrite(honest.inner(), parent.as_ref()) else {
            return Some(honest);
        };
        // A faulty leader ships what it built, whatever its own checks would say.
        let digest = rewritten.digest();
        self.role.shipped(digest);
        Some(Digested::precomputed(rewritten, digest))
    }

    async fn verify(&mut self, context: (E, Ctx), ancestry: impl Ancestry<ChainBlock>) -> bool {
        self.honest.verify(context, ancestry).await
    }
}
