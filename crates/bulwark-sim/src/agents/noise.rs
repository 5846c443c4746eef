//! A noise trader: each tick, with even odds, one random order: a third of them cross the
//! touch (immediate-or-cancel), the rest rest within 20 ticks of the index; one tick in ten
//! it cancels its perpetual orders instead. At most one transaction per tick.
//! With `options_percent`, that share of its orders go to a listed option instead (one drawn
//! at random): a third cross at 10% through the mark, the rest rest 1% to 10% from it.
//! With `market_orders`, its crossing orders are market orders instead (in either book).

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::{Side, SignedTx, TimeInForce};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

pub struct Noise {
    traders: Vec<Trader>,
    size: i64,
    options_percent: u32,
    market_orders: bool,
}

impl Noise {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(
            traders.len(),
            1,
            "a noise trader trades through one account"
        );
        Self {
            traders,
            size: spec.size,
            options_percent: spec.options_percent,
            market_orders: spec.market_orders,
        }
    }
}

impl Agent for Noise {
    fn kind(&self) -> AgentKind {
        AgentKind::Noise
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
        let trader = &mut self.traders[0];
        if rng.random_range(0..10) == 0 {
            if self.options_percent > 0 {
                out.push(trader.cancel_everything());
            } else {
                out.push(trader.cancel_all(view));
            }
            return;
        }
        let side = if rng.random_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        };
        let crossing = rng.random_range(0..3) == 0;
        if !view.options.is_empty() && rng.random_range(0..100) < self.options_percent {
            let option = view.options[rng.random_range(0..view.options.len())];
            if crossing && self.market_orders {
                let qty = rng.random_range(1..=self.size);
                out.push(trader.market_in(option.id, option.tick_micros, side, qty));
                return;
            }
            let Some(mark) = option.mark_ticks else {
                return;
            };
            let percent = if crossing {
                -10
            } else {
                rng.random_range(1..=10)
            };
            let offset = (mark * percent / 100).max(if crossing { -mark } else { 1 });
            let ticks = match side {
                Side::Buy => mark - offset,
                Side::Sell => mark + offset,
            };
            let tif = if crossing {
                TimeInForce::ImmediateOrCancel
            } else {
                TimeInForce::GoodTilCancelled
            };
            let qty = rng.random_range(1..=self.size);
            if ticks >= 1 {
                out.push(trader.order_in(option.id, option.tick_micros, side, qty, ticks, tif));
            }
            return;
        }
        if crossing && self.market_orders {
            let qty = rng.random_range(1..=self.size);
            out.push(trader.market(view, side, qty));
            return;
        }
        let offset = if crossing {
            -5
        } else {
            rng.random_range(1..=20)
        };
        let ticks = match side {
            Side::Buy => view.index_ticks - offset,
            Side::Sell => view.index_ticks + offset,
        };
        let tif = if crossing {
            TimeInForce::ImmediateOrCancel
        } else {
            TimeInForce::GoodTilCancelled
        };
        let qty = rng.random_range(1..=self.size);
        out.push(trader.order(view, side, qty, ticks, tif));
    }
}
