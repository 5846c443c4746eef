//! A perpetual-index arbitrageur: when the perpetual's best bid is more than three ticks above
//! the index it sells into it, when the best ask is more than three ticks below it buys, up
//! to `size` contracts a tick and an inventory of twenty times that. At most one transaction
//! per tick.

use super::{Agent, AgentKind, AgentSpec, Trader, View};
use bulwark_types::{Side, SignedTx, TimeInForce};
use rand_chacha::ChaCha8Rng;

pub struct Arbitrageur {
    traders: Vec<Trader>,
    size: i64,
}

impl Arbitrageur {
    pub fn new(traders: Vec<Trader>, spec: &AgentSpec) -> Self {
        assert_eq!(
            traders.len(),
            1,
            "an arbitrageur trades through one account"
        );
        Self {
            traders,
            size: spec.size,
        }
    }
}

impl Agent for Arbitrageur {
    fn kind(&self) -> AgentKind {
        AgentKind::Arbitrageur
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
        let position = view.position(&trader.public_key());
        let inventory_max = 20 * self.size;
        if let Some(bid) = view.best_bid
            && bid > view.index_ticks + 3
            && position > -inventory_max
        {
            out.push(trader.order(
                view,
                Side::Sell,
                self.size,
                bid,
                TimeInForce::ImmediateOrCancel,
            ));
        } else if let Some(ask) = view.best_ask
            && ask < view.index_ticks - 3
            && position < inventory_max
        {
            out.push(trader.order(
                view,
                Side::Buy,
                self.size,
                ask,
                TimeInForce::ImmediateOrCancel,
            ));
        }
    }
}
