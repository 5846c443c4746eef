//! Spammers: throwaway keys, each funded with the scenario's (minimal) deposit, that flood
//! mempools for `hold_ms` from `at_ms`. Two kinds:
//!
//! - [`AgentKind::Spammer`] floods validator 0. Each tick of the flood it signs `size`
//!   transactions from its funded key, alternately a cancel of every order it has (it has
//!   none) and a one-contract bid 4% under the index (its deposit cannot margin it: the
//!   exchange rejects it, after it took its place in a block), and one cancel from a second
//!   key that was never funded (refused at the door, before its signature is checked). Every
//!   spammer submits to validator 0, so the flood also spends validator 0's gossip budget at
//!   its peers. At most `size + 1` transactions per tick.
//! - [`AgentKind::CancelFlooder`] sends only cancels of nothing, `size` a tick, to its own
//!   validator (agent `a` to validator `a mod n`, so every leader's pool holds the flood).
//!   Cancels go first in every block (the rule every verifier checks, so that a leader cannot
//!   hold market makers' cancels back) and a cancel of nothing costs nothing: enough of them
//!   in every leader's pool would fill every block and leave the honest traders' orders
//!   waiting for as long as the flood lasts. What the proposer's selection does about it is
//!   in `bulwark_node::mempool::Mempool::select`.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::{Side, SignedTx, TimeInForce, TxBody};
use rand_chacha::ChaCha8Rng;

/// Most transactions one spammer key signs in a tick (a validator holds at most 256 pending
/// transactions of one key).
pub const PER_TICK_MAX: i64 = 1_000;

pub struct Spammer {
    kind: AgentKind,
    traders: Vec<Trader>,
    /// A [`AgentKind::Spammer`]'s key that was never funded: its transactions are refused at
    /// the door.
    unfunded: Option<Trader>,
    per_tick: i64,
    at_ms: u64,
    until_ms: u64,
}

impl Spammer {
    /// A spammer floods through `traders` (one funded key) and sends one cancel a tick from
    /// `unfunded`; a cancel flooder has no unfunded key.
    pub fn new(traders: Vec<Trader>, unfunded: Option<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(traders.len(), 1, "a spammer floods through one funded key");
        assert!(
            (spec.kind == AgentKind::Spammer) == unfunded.is_some()
                && matches!(spec.kind, AgentKind::Spammer | AgentKind::CancelFlooder),
            "a spammer with an unfunded key, or a cancel flooder without"
        );
        Self {
            kind: spec.kind,
            traders,
            unfunded,
            per_tick: spec.size.clamp(1, PER_TICK_MAX),
            at_ms: spec.at_ms,
            until_ms: spec.at_ms.saturating_add(spec.hold_ms),
        }
    }
}

impl Agent for Spammer {
    fn kind(&self) -> AgentKind {
        self.kind
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
        if !(self.at_ms..self.until_ms).contains(&view.now_ms) {
            return;
        }
        let bid = view.index_ticks - view.index_ticks * 4 / 100;
        let trader = &mut self.traders[0];
        for i in 0..self.per_tick {
            if i % 2 == 0 || self.kind == AgentKind::CancelFlooder {
                out.push(trader.cancel_all(view));
            } else {
                out.push(trader.order(view, Side::Buy, 1, bid, TimeInForce::GoodTilCancelled));
            }
        }
        if let Some(unfunded) = &mut self.unfunded {
            out.push(unfunded.tx(TxBody::CancelAll { instrument: None }));
        }
    }

    fn home(&self, agent: usize, n: usize) -> usize {
        match self.kind {
            AgentKind::CancelFlooder => agent % n,
            _ => 0,
        }
    }
}
