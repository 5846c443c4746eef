//! An option squeezer (Mango Markets, October 2022, on an option surface): five accounts,
//! `long` (0), three quoters (1..=3) and a `payee` (4).
//!
//! The target is the thinnest series: the call of the highest strike in the nearest expiry.
//! Phases, from `at_ms`:
//! 1. open (up to 5 s): `long` lifts the target's asks up to 10% above its mark until it
//!    holds `size` contracts (from the makers: a position against himself would lose on one
//!    account what it gains on the other, and a short option's margin covers its loss);
//! 2. push, `hold_ms`: the quoters quote every series of the expiry two-sided, `size / 10`
//!    contracts a side 2% around the price at the pushed vol (the exchange's model vol plus `push_bps` of
//!    it), each step capped at four fifths of the option band above the mark, one quoter a
//!    series in turn; and every tick one quoter sells `size / 5` contracts of the target at
//!    the step to the next (the trades between three accounts a refit reads as confirming
//!    the move);
//! 3. throughout the push and after it, the borrow: while `long`'s available funds (its
//!    equity, marked-up long included, above its initial margin) exceed 100 USDC, `long` buys
//!    the perpetual from `payee` 2% above the index and sells it back to him 2% below, a
//!    round trip worth half those funds (the loss is `long`'s realised cash, the gain
//!    `payee`'s); `payee` withdraws everything it may every tick (the quoters keep their funds
//!    for premium); after the push every account does. `long` is left to the exchange when
//!    the mark falls back.
//!
//! At most 35 transactions per tick in the push (4 cancels, 2 quotes for each of at most 12
//! series, 2 confirming orders, 4 perpetual orders, the payee's withdrawal); after it at
//! most 13 (4 cancels, 4 perpetual orders, 5 withdrawals).

use super::{Agent, AgentKind, AgentSpec, OptionView, Trader, View, self_trade};
use bulwark_types::{Money, Right, Side, SignedTx, TimeInForce, TxBody};
use rand_chacha::ChaCha8Rng;

/// Accounts of one option squeezer.
pub const ACCOUNTS: usize = 5;
const LONG: usize = 0;
const QUOTERS: [usize; 3] = [1, 2, 3];
const PAYEE: usize = 4;
/// Longest the open phase lasts.
const OPEN_MS: u64 = 5_000;
/// Most series the quoters quote.
const SERIES_QUOTED_MAX: usize = 12;
/// Least available funds the borrow moves, USDC.
const BORROW_MIN_USDC: i64 = 100;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Open { since_ms: u64 },
    Push { until_ms: u64 },
    Exit,
}

pub struct OptionSqueezer {
    traders: Vec<Trader>,
    size: i64,
    at_ms: u64,
    hold_ms: u64,
    push_bps: u32,
    phase: Phase,
    /// Whose turn it is to sell the confirming trade.
    turn: usize,
}

impl OptionSqueezer {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(
            traders.len(),
            ACCOUNTS,
            "an option squeezer trades through five accounts"
        );
        assert_eq!(spec.kind, AgentKind::OptionSqueezer);
        Self {
            traders,
            size: spec.size,
            at_ms: spec.at_ms,
            hold_ms: spec.hold_ms,
            push_bps: spec.push_bps,
            phase: Phase::Waiting,
            turn: 0,
        }
    }

    /// The target (the highest-strike call of the nearest expiry) and every series of its
    /// expiry.
    fn expiry(view: &View) -> Option<(OptionView, Vec<OptionView>)> {
        let nearest = view.options.iter().map(|o| o.expiry_ms).min()?;
        let series: Vec<OptionView> = view
            .options
            .iter()
            .filter(|o| o.expiry_ms == nearest)
            .take(SERIES_QUOTED_MAX)
            .copied()
            .collect();
        let target = series
            .iter()
            .filter(|o| o.right == Right::Call)
            .max_by(|a, b| a.strike_usdc.total_cmp(&b.strike_usdc))
            .copied()?;
        Some((target, series))
    }

    /// The price (ticks) the push quotes `option` at: the pushed vol's, capped at four fifths
    /// of the option band above the mark, never below the mark.
    fn step(&self, view: &View, option: &OptionView) -> Option<i64> {
        let vol = view.model_vol() * (1.0 + f64::from(self.push_bps) / 10_000.0);
        let pushed = (view.model_usdc(option, vol)? * 1e6 / option.tick_micros as f64) as i64;
        let mark = option.mark_ticks?;
        let band = view.state.params().band_option;
        let room = (mark * band.width_bps * 4 / 5 / 10_000).max(band.width_ticks_min * 4 / 5);
        Some(pushed.min(mark + room).max(mark).max(1))
    }

    fn borrow(&mut self, view: &View, out: &mut Vec<SignedTx>) {
        let Some(margin) = view
            .account(&self.traders[LONG].public_key())
            .and_then(|id| view.state.account_margin(id))
        else {
            return;
        };
        let usdc = i64::try_from(margin.available.micros() / 1_000_000).unwrap_or(0);
        if usdc < BORROW_MIN_USDC {
            return;
        }
        // A round trip 2% up and 2% down loses 4% of its notional: half the funds.
        let notional = usdc as f64 / 2.0 / 0.04;
        let qty = ((notional * view.contracts_per_usdc()) as i64).clamp(1, 1_000_000);
        let (up, down) = (
            view.index_ticks + view.index_ticks / 50,
            view.index_ticks - view.index_ticks / 50,
        );
        let (head, tail) = self.traders.split_at_mut(PAYEE);
        let (long, payee) = (&mut head[LONG], &mut tail[0]);
        out.push(payee.cancel_everything());
        out.push(payee.order(view, Side::Sell, qty, up, TimeInForce::GoodTilCancelled));
        out.push(long.order(view, Side::Buy, qty, up, TimeInForce::ImmediateOrCancel));
        out.push(payee.order(view, Side::Buy, qty, down, TimeInForce::GoodTilCancelled));
        out.push(long.order(view, Side::Sell, qty, down, TimeInForce::ImmediateOrCancel));
    }
}

impl Agent for OptionSqueezer {
    fn kind(&self) -> AgentKind {
        AgentKind::OptionSqueezer
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
        let Some((target, series)) = Self::expiry(view) else {
            return;
        };
        let now = view.now_ms;
        let long = view.position_in(&self.traders[LONG].public_key(), target.id);
        self.phase = match self.phase {
            Phase::Waiting if now >= self.at_ms => Phase::Open { since_ms: now },
            Phase::Open { since_ms } if long >= self.size * 9 / 10 || now >= since_ms + OPEN_MS => {
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
                let Some(mark) = target.mark_ticks else {
                    return;
                };
                let want = self.size - long.max(0);
                if want > 0 {
                    out.push(self.traders[LONG].order_in(
                        target.id,
                        target.tick_micros,
                        Side::Buy,
                        want,
                        mark + (mark / 10).max(1),
                        TimeInForce::ImmediateOrCancel,
                    ));
                }
            }
            Phase::Push { .. } => {
                for q in QUOTERS {
                    out.push(self.traders[q].cancel_everything());
                }
                let quote = (self.size / 10).max(1);
                for (j, option) in series.iter().enumerate() {
                    let Some(step) = self.step(view, option) else {
                        continue;
                    };
                    let spread = (step / 50).max(1);
                    let quoter = &mut self.traders[QUOTERS[j % QUOTERS.len()]];
                    out.push(quoter.order_in(
                        option.id,
                        option.tick_micros,
                        Side::Buy,
                        quote,
                        step - spread,
                        TimeInForce::GoodTilCancelled,
                    ));
                    out.push(quoter.order_in(
                        option.id,
                        option.tick_micros,
                        Side::Sell,
                        quote,
                        step + spread,
                        TimeInForce::GoodTilCancelled,
                    ));
                }
                if let Some(step) = self.step(view, &target) {
                    let seller = QUOTERS[self.turn % QUOTERS.len()];
                    let buyer = QUOTERS[(self.turn + 1) % QUOTERS.len()];
                    self.turn += 1;
                    let qty = (self.size / 5).max(1);
                    out.push(self.traders[seller].order_in(
                        target.id,
                        target.tick_micros,
                        Side::Sell,
                        qty,
                        step,
                        TimeInForce::GoodTilCancelled,
                    ));
                    out.push(self.traders[buyer].order_in(
                        target.id,
                        target.tick_micros,
                        Side::Buy,
                        qty,
                        step,
                        TimeInForce::ImmediateOrCancel,
                    ));
                }
                self.borrow(view, out);
                // Only the payee withdraws while the quoters need their funds for premium.
                let usdc = view.withdrawable_usdc(&self.traders[PAYEE].public_key());
                if usdc > 0 {
                    withdrawals.push((
                        PAYEE,
                        self.traders[PAYEE].tx(TxBody::Withdraw {
                            amount: Money::from_usdc(usdc),
                        }),
                    ));
                }
            }
            Phase::Exit => {
                for q in QUOTERS {
                    out.push(self.traders[q].cancel_everything());
                }
                self.borrow(view, out);
                self_trade::withdraw_all(&mut self.traders, view, withdrawals);
            }
        }
    }
}
