//! A market maker: quotes the perpetual in `levels` price levels on each side of the index,
//! skewed against its inventory, with market maker protection set.
//!
//! Each tick: one cancel of its perpetual orders, then `levels` bids and `levels` asks
//! (2 * levels + 1 transactions; the first tick also sets market maker protection).
//! Its half-spread widens by one tick per market maker, so several makers stack a book.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::{Side, SignedTx, TimeInForce};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

pub struct MarketMaker {
    traders: Vec<Trader>,
    levels: u32,
    size: i64,
    /// Ticks from the reference to the first quote on each side.
    half_spread: i64,
    mmp_set: bool,
}

impl MarketMaker {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec, ordinal: usize) -> Self {
        assert_eq!(
            traders.len(),
            1,
            "a market maker trades through one account"
        );
        Self {
            traders,
            levels: spec.levels,
            size: spec.size,
            half_spread: 1 + ordinal as i64,
            mmp_set: false,
        }
    }
}

impl Agent for MarketMaker {
    fn kind(&self) -> AgentKind {
        AgentKind::MarketMaker
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
        let trader = &mut self.traders[0];
        if view.mmp && !self.mmp_set {
            // Frozen for 2 s when more than four full books of its quotes fill within 1 s.
            let qty_limit = self.size * i64::from(self.levels) * 4;
            out.push(trader.set_mmp(qty_limit, qty_limit * 100_000));
            self.mmp_set = true;
        }
        let position = view.position(&trader.public_key());
        // One tick of skew per book-level of inventory, at most ten: long makers quote lower.
        let skew = -(position / self.size.max(1)).clamp(-10, 10);
        let reference = view.index_ticks + skew;
        out.push(trader.cancel_all(view));
        for level in 0..i64::from(self.levels) {
            let offset = self.half_spread + 2 * level;
            let bid_qty = rng.random_range(1..=self.size);
            let ask_qty = rng.random_range(1..=self.size);
            out.push(trader.order(
                view,
                Side::Buy,
                bid_qty,
                reference - offset,
                TimeInForce::GoodTilCancelled,
            ));
            out.push(trader.order(
                view,
                Side::Sell,
                ask_qty,
                reference + offset,
                TimeInForce::GoodTilCancelled,
            ));
        }
    }
}
