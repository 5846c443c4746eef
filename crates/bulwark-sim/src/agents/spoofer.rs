//! A spoofer: from `at_ms`, for `hold_ms`, each tick it cancels what it had and places a bait
//! of `size / 20` contracts (at least one) at the best price on one side, a tick inside the
//! touch when the spread allows, and a spoof of `size` contracts one tick inside the touch on
//! the other side, never crossing: a large bid under a small ask to make the book look like
//! buyers, so [`super::imbalance`] traders lift the bait, and the mirror image. It spoofs the
//! side that unloads its inventory (long: a spoof bid and a bait ask), alternating when flat.
//! Then it cancels, closes what it holds with an immediate-or-cancel order 1% through the
//! index, and stops. At most four transactions per tick.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::{Side, SignedTx, TimeInForce};
use rand_chacha::ChaCha8Rng;

pub struct Spoofer {
    traders: Vec<Trader>,
    spoof_qty: i64,
    bait_qty: i64,
    at_ms: u64,
    until_ms: u64,
    /// The side of the next spoof when flat.
    next_spoof: Side,
    done: bool,
}

impl Spoofer {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(traders.len(), 1, "a spoofer trades through one account");
        assert_eq!(spec.kind, AgentKind::Spoofer);
        Self {
            traders,
            spoof_qty: spec.size,
            bait_qty: (spec.size / 20).max(1),
            at_ms: spec.at_ms,
            until_ms: spec.at_ms.saturating_add(spec.hold_ms),
            next_spoof: Side::Buy,
            done: false,
        }
    }

    /// Prices of the spoof and the bait for a spoof on `spoof` side, inside a touch of
    /// `bid` and `ask`, never crossing each other: `(spoof, bait)` in ticks.
    fn prices(spoof: Side, bid: i64, ask: i64) -> (i64, i64) {
        let spread = ask - bid;
        assert!(spread > 0, "the book is never crossed");
        match spoof {
            // A wide spread: both step inside; two ticks: the bait joins the ask; one tick:
            // the spoof joins the bid.
            Side::Buy if spread > 2 => (bid + 1, ask - 1),
            Side::Buy if spread == 2 => (bid + 1, ask),
            Side::Buy => (bid, ask),
            Side::Sell if spread > 2 => (ask - 1, bid + 1),
            Side::Sell if spread == 2 => (ask - 1, bid),
            Side::Sell => (ask, bid),
        }
    }
}

impl Agent for Spoofer {
    fn kind(&self) -> AgentKind {
        AgentKind::Spoofer
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
        if self.done || view.now_ms < self.at_ms {
            return;
        }
        let trader = &mut self.traders[0];
        let held = view.position(&trader.public_key());
        if view.now_ms >= self.until_ms {
            out.push(trader.cancel_all(view));
            if held != 0 {
                let through = view.index_ticks / 100;
                let (side, ticks) = if held > 0 {
                    (Side::Sell, view.index_ticks - through)
                } else {
                    (Side::Buy, view.index_ticks + through)
                };
                out.push(trader.order(
                    view,
                    side,
                    held.abs(),
                    ticks,
                    TimeInForce::ImmediateOrCancel,
                ));
            } else {
                self.done = true;
            }
            return;
        }
        let (Some(bid), Some(ask)) = (view.best_bid, view.best_ask) else {
            return;
        };
        let spoof = match held {
            h if h > 0 => Side::Buy,
            h if h < 0 => Side::Sell,
            _ => {
                let side = self.next_spoof;
                self.next_spoof = match side {
                    Side::Buy => Side::Sell,
                    Side::Sell => Side::Buy,
                };
                side
            }
        };
        let (spoof_ticks, bait_ticks) = Self::prices(spoof, bid, ask);
        let bait = match spoof {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        };
        out.push(trader.cancel_all(view));
        out.push(trader.order(
            view,
            bait,
            self.bait_qty,
            bait_ticks,
            TimeInForce::GoodTilCancelled,
        ));
        out.push(trader.order(
            view,
            spoof,
            self.spoof_qty,
            spoof_ticks,
            TimeInForce::GoodTilCancelled,
        ));
    }
}
