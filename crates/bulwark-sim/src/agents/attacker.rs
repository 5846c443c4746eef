//! An attacker with two accounts: `long` (trader 0) and `short` (trader 1), which trade with
//! each other.
//!
//! Phases, from `at_ms`:
//! 1. open (up to 3 s): `long` bids `size` contracts at the index and `short` sells into it,
//!    until each holds at least nine tenths of `size`;
//! 2. squeezer only, `hold_ms`: the push. Each tick `long` buys (up to `size / 10`) every
//!    ask up to the step price (the mark plus four fifths of the band, capped at the target
//!    `push_bps` above the index), then `long` and `short` trade one contract at the step
//!    and leave a one-contract bid a tick below and ask a tick above it, so the book's mid and
//!    last trade, two of the mark's three inputs, sit at the step (Mango Markets, October
//!    2022). The whale holds instead for `hold_ms` while the price moves (Hyperliquid JELLY,
//!    March 2025: the short side is left for the backstop);
//! 3. exit, until the run ends: both cancel, each closes what it holds with an
//!    immediate-or-cancel order 1% through the index, and each withdraws everything it may.
//!
//! Throughout phases 2 and 3 each account also withdraws what it may, every tick.
//! At most eight transactions per tick.

use super::{Agent, AgentKind, AgentSpec, Trader, View, self_trade};
use bulwark_types::{Side, SignedTx, TimeInForce};
use rand_chacha::ChaCha8Rng;

/// Longest the open phase lasts.
const OPEN_MS: u64 = 3_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Open { since_ms: u64 },
    Push { until_ms: u64 },
    Exit,
}

pub struct Attacker {
    traders: Vec<Trader>,
    kind: AgentKind,
    size: i64,
    at_ms: u64,
    hold_ms: u64,
    push_bps: u32,
    phase: Phase,
}

impl Attacker {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(traders.len(), 2, "an attacker trades through two accounts");
        assert!(spec.kind.is_attacker());
        Self {
            traders,
            kind: spec.kind,
            size: spec.size,
            at_ms: spec.at_ms,
            hold_ms: spec.hold_ms,
            push_bps: spec.push_bps,
            phase: Phase::Waiting,
        }
    }
}

impl Agent for Attacker {
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
        withdrawals: &mut Vec<(usize, SignedTx)>,
    ) {
        let now = view.now_ms;
        let long = view.position(&self.traders[0].public_key());
        let short = view.position(&self.traders[1].public_key());
        self.phase = match self.phase {
            Phase::Waiting if now >= self.at_ms => Phase::Open { since_ms: now },
            Phase::Open { since_ms }
                if (long >= self.size * 9 / 10 && -short >= self.size * 9 / 10)
                    || now >= since_ms + OPEN_MS =>
            {
                Phase::Push {
                    until_ms: now + self.hold_ms,
                }
            }
            Phase::Push { until_ms } if now >= until_ms => Phase::Exit,
            phase => phase,
        };
        match self.phase {
            Phase::Waiting => {}
            Phase::Open { .. } => {
                let [a, b] = &mut self.traders[..] else {
                    unreachable!("two traders")
                };
                self_trade::open_position(a, b, view, self.size, (long, short), out);
            }
            Phase::Push { .. } => {
                if self.kind == AgentKind::Squeezer {
                    let step = self_trade::push_step(view, self.push_bps, view.index_ticks);
                    let [a, b] = &mut self.traders[..] else {
                        unreachable!("two traders")
                    };
                    let lift = (self.size / 10).max(1);
                    self_trade::push_mark(a, b, view, lift, step, out);
                }
                self_trade::withdraw_all(&mut self.traders, view, withdrawals);
            }
            Phase::Exit => {
                let index = view.index_ticks;
                let through = index / 100;
                for (t, held) in [long, short].into_iter().enumerate() {
                    let trader = &mut self.traders[t];
                    if held != 0 {
                        out.push(trader.cancel_all(view));
                        let (side, ticks) = if held > 0 {
                            (Side::Sell, index - through)
                        } else {
                            (Side::Buy, index + through)
                        };
                        out.push(trader.order(
                            view,
                            side,
                            held.abs().min(self.size),
                            ticks,
                            TimeInForce::ImmediateOrCancel,
                        ));
                    }
                }
                self_trade::withdraw_all(&mut self.traders, view, withdrawals);
            }
        }
    }
}
