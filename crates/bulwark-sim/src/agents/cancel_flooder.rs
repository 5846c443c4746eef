//! A cancel flooder: one throwaway key among several, funded with the scenario's (minimal)
//! deposit, that sends `size` cancels a tick from `at_ms` for `hold_ms` to its own validator
//! (agent `a` to validator `a mod n`, so every leader's pool holds the flood).
//!
//! Cancels go first in every block (the rule every verifier checks, so that a leader cannot
//! hold market makers' cancels back), and a cancel of nothing costs nothing. The flooder has
//! no orders: each of its cancels cancels nothing, yet claims a place ahead of every order.
//! Enough of them in every leader's pool would fill every block with cancels and leave the
//! honest traders' orders waiting for as long as the flood lasts. What the proposer's
//! selection does about it is in `bulwark_node::mempool::Mempool::select`.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::SignedTx;
use rand_chacha::ChaCha8Rng;

/// Most cancels one flooder key signs in a tick (its validator holds at most 256 pending
/// transactions of one key).
pub const PER_TICK_MAX: i64 = 256;

pub struct CancelFlooder {
    traders: Vec<Trader>,
    per_tick: i64,
    at_ms: u64,
    until_ms: u64,
}

impl CancelFlooder {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(
            traders.len(),
            1,
            "a cancel flooder floods through one funded key"
        );
        assert_eq!(spec.kind, AgentKind::CancelFlooder);
        Self {
            traders,
            per_tick: spec.size.clamp(1, PER_TICK_MAX),
            at_ms: spec.at_ms,
            until_ms: spec.at_ms.saturating_add(spec.hold_ms),
        }
    }
}

impl Agent for CancelFlooder {
    fn kind(&self) -> AgentKind {
        AgentKind::CancelFlooder
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
        let trader = &mut self.traders[0];
        for _ in 0..self.per_tick {
            out.push(trader.cancel_all(view));
        }
    }
}
