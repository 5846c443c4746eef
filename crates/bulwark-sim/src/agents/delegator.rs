//! A delegator: an account owner that, from `at_ms`, authorises an agent key (with the
//! agent's proof of possession over the owner's key and the transaction's nonce) and, once a
//! finalized state shows the key bound to its account, trades through it: every tick one
//! immediate-or-cancel order of `size` contracts at the touch, alternating sides, at most
//! [`AGENT_ORDERS_MAX`] orders. The authorisation is sent again (a new nonce, a new proof)
//! if it is not bound [`RETRY_MS`] later. At most one transaction per tick.
//!
//! Its keys come from fixed seeds ([`owner_seed`], [`agent_seed`]) so a
//! [`super::squatter`] can be handed what an observer of its pending transaction sees.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_exchange::KeyRole;
use bulwark_types::{Side, SignedTx, TimeInForce, TxBody};
use rand_chacha::ChaCha8Rng;

/// Orders the delegator's agent sends.
pub const AGENT_ORDERS_MAX: u32 = 20;
/// Simulated milliseconds before an authorisation not yet bound is sent again.
pub const RETRY_MS: u64 = 2_000;
const SEED_BASE: u64 = 7_000_000;

/// The seed of delegator `ordinal`'s owner key.
pub fn owner_seed(ordinal: usize) -> u64 {
    SEED_BASE + 2 * ordinal as u64
}

/// The seed of delegator `ordinal`'s agent key.
pub fn agent_seed(ordinal: usize) -> u64 {
    owner_seed(ordinal) + 1
}

pub struct Delegator {
    traders: Vec<Trader>,
    agent: Trader,
    size: i64,
    at_ms: u64,
    /// When the newest authorisation was sent.
    sent_at_ms: Option<u64>,
    orders: u32,
}

impl Delegator {
    pub fn new(spec: &AgentSpec, ordinal: usize) -> Self {
        assert_eq!(spec.kind, AgentKind::Delegator);
        Self {
            traders: vec![Trader::new(owner_seed(ordinal))],
            agent: Trader::new(agent_seed(ordinal)),
            size: spec.size,
            at_ms: spec.at_ms,
            sent_at_ms: None,
            orders: 0,
        }
    }
}

impl Agent for Delegator {
    fn kind(&self) -> AgentKind {
        AgentKind::Delegator
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
        if view.now_ms < self.at_ms {
            return;
        }
        let owner = &mut self.traders[0];
        let account = view.account(&owner.public_key());
        let bound = account.is_some()
            && view.state.key_binding(&self.agent.public_key())
                == account.map(|id| (id, KeyRole::Agent));
        if !bound {
            let due = self
                .sent_at_ms
                .is_none_or(|sent| view.now_ms >= sent + RETRY_MS);
            if due {
                let body =
                    TxBody::authorise_agent(&self.agent.key, &owner.public_key(), owner.nonce + 1);
                out.push(owner.tx(body));
                self.sent_at_ms = Some(view.now_ms);
            }
            return;
        }
        if self.orders >= AGENT_ORDERS_MAX {
            return;
        }
        let (side, ticks) = match (self.orders % 2, view.best_bid, view.best_ask) {
            (0, _, Some(ask)) => (Side::Buy, ask),
            (_, Some(bid), _) => (Side::Sell, bid),
            _ => return,
        };
        self.orders += 1;
        out.push(
            self.agent
                .order(view, side, self.size, ticks, TimeInForce::ImmediateOrCancel),
        );
    }
}
