//! A leveraged directional trader: builds a position of `leverage` times its deposit in
//! notional, long or short (a seeded draw against `long_percent`), with immediate-or-cancel
//! orders of at most `size` contracts whose limit is `cross_ticks` (default five) beyond the
//! index (or, with `market_orders`, market orders), and holds it. After a liquidation it
//! builds again. At most one transaction per tick.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::{Side, SignedTx, TimeInForce};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

pub struct Leveraged {
    traders: Vec<Trader>,
    size: i64,
    cross_ticks: i64,
    market_orders: bool,
    leverage: u32,
    deposit_usdc: i64,
    long: bool,
}

impl Leveraged {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec, ordinal: usize, seed: u64) -> Self {
        assert_eq!(
            traders.len(),
            1,
            "a leveraged trader trades through one account"
        );
        let mut draw = ChaCha8Rng::seed_from_u64(seed ^ (0x1e7e_0000 + ordinal as u64));
        let long = draw.next_u32() % 100 < spec.long_percent;
        Self {
            traders,
            size: spec.size,
            cross_ticks: i64::from(spec.cross_ticks),
            market_orders: spec.market_orders,
            leverage: spec.leverage,
            deposit_usdc: spec.deposit_usdc,
            long,
        }
    }
}

impl Agent for Leveraged {
    fn kind(&self) -> AgentKind {
        AgentKind::Leveraged
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
        let trader = &mut self.traders[0];
        let target = (self.deposit_usdc as f64
            * f64::from(self.leverage)
            * view.contracts_per_usdc()) as i64;
        let held = view.position(&trader.public_key()).abs();
        if held >= target {
            return;
        }
        let qty = (target - held).min(self.size);
        let (side, ticks) = if self.long {
            (Side::Buy, view.index_ticks + self.cross_ticks)
        } else {
            (Side::Sell, view.index_ticks - self.cross_ticks)
        };
        if self.market_orders {
            out.push(trader.market(view, side, qty));
        } else {
            out.push(trader.order(view, side, qty, ticks, TimeInForce::ImmediateOrCancel));
        }
    }
}
