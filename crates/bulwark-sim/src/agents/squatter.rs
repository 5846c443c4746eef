//! A squatter: races [`super::delegator`] number `ordinal`'s agent-key registration to bind
//! the key to its own account, so the victim's agent would trade for the squatter, or the
//! victim be locked out of its key.
//!
//! It is handed what an observer of the victim's pending `AuthoriseAgent` sees: the agent's
//! public key and its proof of possession (a signature over the victim owner's key and the
//! victim's nonce; the victim's first transactions have nonces 1, 2, ...). From `at_ms`, for
//! [`ATTEMPTS`] ticks, each tick from its own account it submits the agent key with the
//! victim's proof copied as it is, first under the victim's own nonce (its first transaction
//! is nonce 1, as the victim's), and with a proof it signed itself (its own key's signature
//! of the message the exchange checks). Each is refused, before and after the victim's
//! registration: the proof names the victim's account. At most two transactions per tick.

use super::{Agent, AgentKind, AgentSpec, Trader, View, delegator};
use bulwark_types::tx::{AGENT_PROOF_NAMESPACE, agent_proof_message};
use bulwark_types::{Nonce, PrivateKey, PublicKey, SignedTx, TxBody};
use commonware_cryptography::Signer as _;
use rand_chacha::ChaCha8Rng;

/// Ticks the squatter keeps trying.
pub const ATTEMPTS: u32 = 10;

pub struct Squatter {
    traders: Vec<Trader>,
    victim_owner: PublicKey,
    victim_agent: PrivateKey,
    at_ms: u64,
    attempts: u32,
}

impl Squatter {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec, ordinal: usize) -> Self {
        assert_eq!(traders.len(), 1, "a squatter has one account");
        assert_eq!(spec.kind, AgentKind::Squatter);
        Self {
            traders,
            victim_owner: PrivateKey::from_seed(delegator::owner_seed(ordinal)).public_key(),
            victim_agent: PrivateKey::from_seed(delegator::agent_seed(ordinal)),
            at_ms: spec.at_ms,
            attempts: 0,
        }
    }
}

impl Agent for Squatter {
    fn kind(&self) -> AgentKind {
        AgentKind::Squatter
    }

    fn traders(&self) -> &[Trader] {
        &self.traders
    }

    fn act(
        &mut self,
        view: &View,
        _rng: &mut ChaCha8Rng,
        out: &mut Vec<SignedTx>,
        _withdrawals: &mut Vec<(usize, SignedTx)>,
    ) {
        if view.now_ms < self.at_ms || self.attempts >= ATTEMPTS {
            return;
        }
        let victim_nonce = u64::from(self.attempts) + 1;
        // What the victim's pending transaction carries (the lab holds the key; a real
        // squatter copies the signature out of the gossip).
        let seen = TxBody::authorise_agent(&self.victim_agent, &self.victim_owner, victim_nonce);
        let agent = self.victim_agent.public_key();
        let squatter = &mut self.traders[0];
        out.push(squatter.tx(seen));
        let own_nonce = squatter.nonce + 1;
        let forged = squatter.key.sign(
            AGENT_PROOF_NAMESPACE,
            &agent_proof_message(&squatter.public_key(), Nonce::new(own_nonce)),
        );
        out.push(squatter.tx(TxBody::AuthoriseAgent {
            agent,
            proof: forged,
        }));
        self.attempts += 1;
    }
}
