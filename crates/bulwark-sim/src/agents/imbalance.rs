//! A trader that follows the touch's size imbalance (what a spoofer lures): each tick, with
//! even odds, it reads the best bid's and best ask's sizes; when one is at least
//! [`IMBALANCE_RATIO`] times the other it takes the thin side's best price (buys the ask under
//! a heavy bid, sells the bid under a heavy ask) with an immediate-or-cancel order of up to
//! `size` contracts, within an inventory of ten times that. At most one transaction per tick.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::{Side, SignedTx, TimeInForce};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// How many times the other side's size the heavy side of the touch must hold.
pub const IMBALANCE_RATIO: i64 = 4;

pub struct Imbalance {
    traders: Vec<Trader>,
    size: i64,
}

impl Imbalance {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(traders.len(), 1, "an imbalance trader has one account");
        assert_eq!(spec.kind, AgentKind::Imbalance);
        Self {
            traders,
            size: spec.size,
        }
    }
}

impl Agent for Imbalance {
    fn kind(&self) -> AgentKind {
        AgentKind::Imbalance
    }

    fn traders(&self) -> &[Trader] {
        &self.traders
    }

    fn act(
        &mut self,
        view: &View,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<SignedTx>,
        _withdrawals: &mut Vec<(usize, SignedTx)>,
    ) {
        if !rng.random_bool(0.5) {
            return;
        }
        let Some(book) = view.state.instrument(view.perpetual).map(|i| &i.book) else {
            return;
        };
        let (Some((bid, bid_qty)), Some((ask, ask_qty))) = (book.best_bid(), book.best_ask())
        else {
            return;
        };
        let (bid_qty, ask_qty) = (bid_qty.contracts(), ask_qty.contracts());
        let trader = &mut self.traders[0];
        let position = view.position(&trader.public_key());
        let inventory_max = 10 * self.size;
        let qty = rng.random_range(1..=self.size);
        if bid_qty >= IMBALANCE_RATIO * ask_qty && position < inventory_max {
            out.push(trader.order(
                view,
                Side::Buy,
                qty,
                ask.ticks(),
                TimeInForce::ImmediateOrCancel,
            ));
        } else if ask_qty >= IMBALANCE_RATIO * bid_qty && position > -inventory_max {
            out.push(trader.order(
                view,
                Side::Sell,
                qty,
                bid.ticks(),
                TimeInForce::ImmediateOrCancel,
            ));
        }
    }
}
