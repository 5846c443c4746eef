//! The account a front-running leader (`byzantine::FrontRunner`) trades through: funded like
//! every agent, it submits nothing itself; its leader signs its orders into the blocks it
//! proposes. Its profit is the attacker's.

use super::{Agent, AgentKind, Trader, View};
use bulwark_types::SignedTx;
use rand_chacha::ChaCha8Rng;

pub struct FrontRunAccount {
    traders: Vec<Trader>,
}

impl FrontRunAccount {
    pub fn new(traders: Vec<Trader>) -> Self {
        assert_eq!(
            traders.len(),
            1,
            "a front-runner trades through one account"
        );
        Self { traders }
    }
}

impl Agent for FrontRunAccount {
    fn kind(&self) -> AgentKind {
        AgentKind::FrontRunner
    }

    fn traders(&self) -> &[Trader] {
        &self.traders
    }

    fn act(
        &mut self,
        _view: &View,
        _rng: &mut ChaCha8Rng,
        _out: &mut Vec<SignedTx>,
        _withdrawals: &mut Vec<(usize, SignedTx)>,
    ) {
    }
}
