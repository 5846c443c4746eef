//! A spammer: one throwaway key among many, funded with the scenario's (minimal) deposit,
//! that floods validator 0's mempool for `hold_ms` from `at_ms`.
//!
//! Each tick of the flood it signs `size` transactions from its funded key, alternately a
//! cancel of every order it has (it has none: cancels go first in every block) and a one-contract
//! bid 4% under the index (its deposit cannot margin it: the exchange rejects it, after it took
//! its place in a block), and one cancel from a second key that was never funded (refused at
//! the door, before its signature is checked). Every spammer submits to validator 0, so the
//! flood also spends validator 0's gossip budget at its peers. At most `size + 1`
//! transactions per tick.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::{Side, SignedTx, TimeInForce, TxBody};
use rand_chacha::ChaCha8Rng;

/// Most transactions one spammer key signs in a tick.
pub const PER_TICK_MAX: i64 = 1_000;

pub struct Spammer {
    traders: Vec<Trader>,
    /// Never funded: its transactions are refused at the door.
    unfunded: Trader,
    per_tick: i64,
    at_ms: u64,
    until_ms: u64,
}

impl Spammer {
    pub fn new(traders: Vec<Trader>, unfunded: Trader, spec: &AgentSpec) -> Self {
        assert_eq!(traders.len(), 1, "a spammer floods through one funded key");
        assert_eq!(spec.kind, AgentKind::Spammer);
        Self {
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
        AgentKind::Spammer
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
            if i % 2 == 0 {
                out.push(trader.cancel_all(view));
            } else {
                out.push(trader.order(view, Side::Buy, 1, bid, TimeInForce::GoodTilCancelled));
            }
        }
        out.push(self.unfunded.tx(TxBody::CancelAll { instrument: None }));
    }

    fn home(&self, _agent: usize, _n: usize) -> usize {
        0
    }
}
