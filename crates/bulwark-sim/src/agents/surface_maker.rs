//! A surface market maker: quotes every listed option two-sided around its Black-76 price at
//! the index and its own vol (`vol_bps`), skewed against its inventory, with market maker
//! protection set.
//!
//! Each tick: one cancel of all its orders, then a bid and an ask in every listed option
//! (at most 1 + 2 * series transactions; the first tick also sets market maker protection).
//! Skew: its portfolio vega, in units of `size` contracts of the most sensitive series, lowers
//! (long vega) or raises (short) the vol of every quote by one vol point a unit, at most ten;
//! its position in a series moves that series' vol half a point a `size`, at most five; its
//! portfolio delta, in units of `size` contracts' worth of the underlying, moves the forward it
//! prices at 10 bps a unit against it, at most ten. Half-spread: 2% of the price plus one
//! point per maker before it, and one tick more per maker, so several makers stack each book.
//! A quote below one tick is not sent.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::{Side, SignedTx, TimeInForce};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// Underlying units one option contract carries (the lab's options: Deribit's 0.01 BTC).
const CONTRACT_UNITS: f64 = 0.01;

pub struct SurfaceMaker {
    traders: Vec<Trader>,
    size: i64,
    /// Its view of the volatility, 1.0 = 100%.
    vol: f64,
    ordinal: i64,
    mmp_set: bool,
}

impl SurfaceMaker {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec, ordinal: usize) -> Self {
        assert_eq!(
            traders.len(),
            1,
            "a surface maker trades through one account"
        );
        assert!(spec.vol_bps > 0, "a validated vol");
        Self {
            traders,
            size: spec.size,
            vol: f64::from(spec.vol_bps) / 10_000.0,
            ordinal: ordinal as i64,
            mmp_set: false,
        }
    }
}

impl Agent for SurfaceMaker {
    fn kind(&self) -> AgentKind {
        AgentKind::SurfaceMaker
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
        if view.options.is_empty() {
            return;
        }
        let trader = &mut self.traders[0];
        if view.mmp && !self.mmp_set {
            // Frozen for 2 s when more than four quotes' worth fills within 1 s.
            let qty_limit = self.size * 4;
            out.push(trader.set_mmp(qty_limit, qty_limit * 1_000_000));
            self.mmp_set = true;
        }
        let key = trader.public_key();
        let index = view.index_usdc();
        let (mut vega, mut delta, mut vega_unit) = (0.0f64, 0.0f64, 0.0f64);
        let mut held = Vec::with_capacity(view.options.len());
        for option in &view.options {
            let position = view.position_in(&key, option.id);
            held.push(position);
            if let Some(g) = view.greeks(option, index, self.vol) {
                vega += position as f64 * CONTRACT_UNITS * g.vega;
                delta += position as f64 * CONTRACT_UNITS * g.delta;
                vega_unit = vega_unit.max(self.size as f64 * CONTRACT_UNITS * g.vega);
            }
        }
        let vega_units = if vega_unit > 0.0 {
            (vega / vega_unit).clamp(-10.0, 10.0)
        } else {
            0.0
        };
        let delta_units = (delta / (self.size as f64 * CONTRACT_UNITS)).clamp(-10.0, 10.0);
        let forward = index * (1.0 - 0.001 * delta_units);
        out.push(trader.cancel_everything());
        for (option, position) in view.options.iter().zip(held) {
            let own = (position as f64 / self.size as f64 * 0.5).clamp(-5.0, 5.0);
            let vol = (self.vol - 0.01 * vega_units - 0.01 * own).max(0.05);
            let Some(g) = view.greeks(option, forward, vol) else {
                continue;
            };
            let tick = option.tick_micros as f64 / 1e6;
            let half =
                g.price * (0.02 + 0.01 * self.ordinal as f64) + tick * (1 + self.ordinal) as f64;
            let bid = ((g.price - half) / tick).floor() as i64;
            let ask = ((g.price + half) / tick).ceil() as i64;
            let (bid_qty, ask_qty) = (
                rng.random_range(1..=self.size),
                rng.random_range(1..=self.size),
            );
            // A side whose price rounds below one tick is not quoted.
            let sides = [
                (Side::Buy, bid_qty, bid, bid >= 1),
                (Side::Sell, ask_qty, ask.max(bid + 1), ask >= 1),
            ];
            for (side, qty, price, quoted) in sides {
                if quoted {
                    out.push(trader.order_in(
                        option.id,
                        option.tick_micros,
                        side,
                        qty,
                        price,
                        TimeInForce::GoodTilCancelled,
                    ));
                }
            }
        }
    }
}
