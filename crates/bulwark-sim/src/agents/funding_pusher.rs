//! An attacker who pushes the perpetual's mark before each funding time to collect funding:
//! two accounts, `pusher` (trader 0) and `holder` (trader 1).
//!
//! Phases:
//! 1. build, from the start until `at_ms`: `holder` offers `size` contracts one tick above
//!    the index, so the market's buyers (leveraged longs) open their positions against him:
//!    a short against the market, which funding pays whenever the mark stands above the index;
//! 2. push, from `at_ms` until the run ends, in the last `hold_ms` of block time before each
//!    funding time (the perpetual's `funding_next_ms`): every tick `pusher` buys every ask up
//!    to the step price (the mark plus four fifths of the band, capped at `push_bps` above
//!    the index; at most `size / 20` contracts a tick), then `pusher` and `holder` trade one
//!    contract with each other at the step (a wash trade: the last trade), and leave a
//!    one-contract bid a tick below and ask a tick above it (the book's mid), so two of the
//!    mark's three inputs sit at the step. Outside the window both cancel their quotes and
//!    wait. Funding is paid on the interval's time-weighted average premium, so the push
//!    earns in proportion to its share of the interval, and the mark is clamped to half the
//!    band around the index.
//!
//! The attacker never withdraws: his profit is his equity at the end (positions at the
//! exchange's mark) less his deposits, funding included. At most seven transactions a tick.

use super::{Agent, AgentKind, AgentSpec, Trader, View, self_trade};
use bulwark_types::{Side, SignedTx, TimeInForce};
use rand_chacha::ChaCha8Rng;

pub struct FundingPusher {
    traders: Vec<Trader>,
    size: i64,
    at_ms: u64,
    window_ms: u64,
    push_bps: u32,
    /// Whether the attacker left quotes of a push in the book.
    quoting: bool,
}

impl FundingPusher {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(traders.len(), 2, "the attacker trades through two accounts");
        assert_eq!(spec.kind, AgentKind::FundingPusher);
        assert!(spec.size > 0 && spec.push_bps > 0);
        Self {
            traders,
            size: spec.size,
            at_ms: spec.at_ms,
            window_ms: spec.hold_ms,
            push_bps: spec.push_bps,
            quoting: false,
        }
    }

    /// Contracts `key`'s account offers in the perpetual.
    fn asks_open(view: &View, trader: &Trader) -> i64 {
        view.account(&trader.public_key())
            .and_then(|id| view.state.account(id))
            .and_then(|a| a.exposures.get(&view.perpetual))
            .map_or(0, |e| e.asks.qty)
    }

    fn build(&mut self, view: &View, out: &mut Vec<SignedTx>) {
        let holder = &mut self.traders[1];
        let short = -view.position(&holder.public_key()).min(0);
        let offered = Self::asks_open(view, holder);
        let want = self.size - short;
        // Re-offered only when the offer ran out, so buyers find it resting.
        if want > self.size / 10 && offered == 0 {
            out.push(holder.order(
                view,
                Side::Sell,
                want,
                view.index_ticks + 1,
                TimeInForce::GoodTilCancelled,
            ));
        }
    }

    fn push(&mut self, view: &View, out: &mut Vec<SignedTx>) {
        let step = self_trade::push_step(view, self.push_bps, view.index_ticks + 2);
        let [pusher, holder] = &mut self.traders[..] else {
            unreachable!("two traders")
        };
        let lift = (self.size / 20).max(1);
        self_trade::push_mark(pusher, holder, view, lift, step, out);
        self.quoting = true;
    }
}

impl Agent for FundingPusher {
    fn kind(&self) -> AgentKind {
        AgentKind::FundingPusher
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
            self.build(view, out);
            return;
        }
        let Some(next_ms) = view
            .state
            .instrument(view.perpetual)
            .map(|i| i.funding_next_ms)
        else {
            return;
        };
        let time_ms = view.state.time().millis();
        if next_ms.saturating_sub(time_ms) <= self.window_ms {
            self.push(view, out);
        } else if self.quoting || Self::asks_open(view, &self.traders[1]) > 0 {
            let [pusher, holder] = &mut self.traders[..] else {
                unreachable!("two traders")
            };
            out.push(pusher.cancel_all(view));
            out.push(holder.cancel_all(view));
            self.quoting = false;
        }
    }
}
