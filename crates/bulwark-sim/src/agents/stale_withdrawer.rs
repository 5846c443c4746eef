//! An attacker who withdraws collateral while the oracle is down: two accounts, `long`
//! (trader 0) and `short` (trader 1), holding a position against each other, and the true
//! price falling while the validators' price source is silent.
//!
//! Phases, from `at_ms`:
//! 1. open (up to 3 s): `long` bids `size` contracts at the index and `short` sells into it,
//!    until each holds at least nine tenths of `size`; then both hold, keeping their
//!    collateral in as any trader would while the index is fresh;
//! 2. raid, from the first tick the underlying's oracle is stale (no fresh quorum), or with
//!    `hold_ms` set from `at_ms + hold_ms` (the attacker reads the venues and knows when
//!    the validators' sources went silent, before the exchange calls the oracle stale),
//!    until [`RAID_AFTER_MS`] after the oracle is fresh again having been stale (at most
//!    [`RAID_MS_MAX`]): every tick `long` (the side the true price,
//!    which the attacker reads at the venues, will break) asks to withdraw all that is
//!    withdrawable valued at the index the exchange still holds. On a stale oracle the
//!    exchange refuses it (`WithdrawalOracleStale`); once the oracle is back the index
//!    follows the true price at the deviation guard's rate, and what `long` can still
//!    withdraw before it arrives is the attack's take. Paid, it leaves `long` short of what
//!    the fresh index will charge it: the deficit is the insurance fund's, while `short`
//!    keeps the gain;
//! 3. exit, until the run ends: `long` offers what it holds at the index and `short` buys
//!    immediate-or-cancel up to 1% through it, so the two close against each other (or
//!    the book), and each withdraws everything it may.
//!
//! At most six transactions per tick.

use super::{Agent, AgentKind, AgentSpec, Trader, View, self_trade};
use bulwark_types::{Money, Side, SignedTx, TimeInForce, TxBody};
use rand_chacha::ChaCha8Rng;

/// Longest the open phase lasts.
const OPEN_MS: u64 = 3_000;
/// How long the raid goes on after the oracle is fresh again (the index still catching up).
pub const RAID_AFTER_MS: u64 = 2_000;
/// Longest the raid lasts.
pub const RAID_MS_MAX: u64 = 15_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Open {
        since_ms: u64,
    },
    Hold,
    /// `stale_seen`: the oracle was seen stale; `fresh_since_ms`: when it was first seen
    /// fresh again after that.
    Raid {
        since_ms: u64,
        stale_seen: bool,
        fresh_since_ms: Option<u64>,
    },
    Exit,
}

pub struct StaleWithdrawer {
    traders: Vec<Trader>,
    size: i64,
    at_ms: u64,
    /// When the raid starts after `at_ms`; 0: at the first stale tick.
    hold_ms: u64,
    phase: Phase,
}

impl StaleWithdrawer {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(traders.len(), 2, "the attacker trades through two accounts");
        assert_eq!(spec.kind, AgentKind::StaleWithdrawer);
        assert!(spec.size > 0);
        Self {
            traders,
            size: spec.size,
            at_ms: spec.at_ms,
            hold_ms: spec.hold_ms,
            phase: Phase::Waiting,
        }
    }

    fn withdraw(&mut self, t: usize, view: &View, withdrawals: &mut Vec<(usize, SignedTx)>) {
        let trader = &mut self.traders[t];
        let usdc = view.withdrawable_usdc(&trader.public_key());
        if usdc > 0 {
            withdrawals.push((
                t,
                trader.tx(TxBody::Withdraw {
                    amount: Money::from_usdc(usdc),
                }),
            ));
        }
    }

    fn next_phase(&self, view: &View, long: i64, short: i64) -> Phase {
        let now = view.now_ms;
        let fresh = view.state.oracle_fresh(crate::cluster::btc());
        match self.phase {
            Phase::Waiting if now >= self.at_ms => Phase::Open { since_ms: now },
            Phase::Open { since_ms }
                if (long >= self.size * 9 / 10 && -short >= self.size * 9 / 10)
                    || now >= since_ms + OPEN_MS =>
            {
                Phase::Hold
            }
            Phase::Open { .. } | Phase::Hold
                if (self.hold_ms == 0 && !fresh)
                    || (self.hold_ms > 0 && now >= self.at_ms + self.hold_ms) =>
            {
                Phase::Raid {
                    since_ms: now,
                    stale_seen: !fresh,
                    fresh_since_ms: None,
                }
            }
            Phase::Raid { since_ms, .. } if now >= since_ms + RAID_MS_MAX => Phase::Exit,
            Phase::Raid {
                fresh_since_ms: Some(fresh_since),
                ..
            } if now >= fresh_since + RAID_AFTER_MS => Phase::Exit,
            Phase::Raid {
                since_ms,
                stale_seen,
                fresh_since_ms: None,
            } => Phase::Raid {
                since_ms,
                stale_seen: stale_seen || !fresh,
                fresh_since_ms: (stale_seen && fresh).then_some(now),
            },
            phase => phase,
        }
    }
}

impl Agent for StaleWithdrawer {
    fn kind(&self) -> AgentKind {
        AgentKind::StaleWithdrawer
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
        let long = view.position(&self.traders[0].public_key());
        let short = view.position(&self.traders[1].public_key());
        self.phase = self.next_phase(view, long, short);
        let index = view.index_ticks;
        match self.phase {
            Phase::Waiting | Phase::Hold => {}
            Phase::Open { .. } => {
                let [a, b] = &mut self.traders[..] else {
                    unreachable!("two traders")
                };
                self_trade::open_position(a, b, view, self.size, (long, short), out);
            }
            Phase::Raid { .. } => self.withdraw(0, view, withdrawals),
            Phase::Exit => {
                let [a, b] = &mut self.traders[..] else {
                    unreachable!("two traders")
                };
                if long > 0 {
                    out.push(a.cancel_all(view));
                    out.push(a.order(view, Side::Sell, long, index, TimeInForce::GoodTilCancelled));
                }
                if short < 0 {
                    out.push(b.cancel_all(view));
                    out.push(b.order(
                        view,
                        Side::Buy,
                        -short,
                        index + index / 100,
                        TimeInForce::ImmediateOrCancel,
                    ));
                }
                self.withdraw(0, view, withdrawals);
                self.withdraw(1, view, withdrawals);
            }
        }
    }
}
