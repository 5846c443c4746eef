//! A leader that proposes marks: every block it proposes carries a mark for each trading
//! perpetual at a multiple of the index its own finalized state shows.
//!
//! Owns: the price inputs of the wrapped validator's proposals. Under the validators' oracle
//! no single party sets a mark: the exchange marks perpetuals itself from the index, the
//! book and the last trade, within half the perpetual band around the index, and ignores a
//! proposer's mark with a `PriceIgnored { reason: OracleGoverned }` event. Honest verifiers
//! therefore accept the block and nothing moves; the lab's deliberate bug
//! `proposer-marks-believed` (a state machine that believes the mark) is what this role
//! exposes.
//! Never: signs anything, or touches observations, transactions or index inputs.

use super::rewriter::{ProposalRewriter, Rewrite, with_body};
use bulwark_exchange::InstrumentStatus;
use bulwark_node::app::ExchangeApp;
use bulwark_node::block::ChainBlock;
use bulwark_node::shared::{Shared, lock};
use bulwark_types::{InstrumentKind, MarkPrice, PriceInputs, UnitPrice};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most a proposed mark may be, in basis points of the index (ten times it).
pub const MARK_BPS_MAX: u32 = 100_000;

/// A leader that proposes perpetual marks (a [`Rewrite`] role).
#[derive(Clone)]
pub struct MarkProposer {
    shared: Arc<Shared>,
    /// The mark it proposes, in basis points of the index.
    mark_bps: u32,
    /// Marks it put in its proposals.
    proposed: Arc<AtomicU64>,
}

impl MarkProposer {
    /// The wrapper `bulwark_node::engine::start_with` takes.
    pub fn wrapper(
        mark_bps: u32,
        proposed: Arc<AtomicU64>,
    ) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> ProposalRewriter<Self> {
        assert!((1..=MARK_BPS_MAX).contains(&mark_bps), "a positive mark");
        ProposalRewriter::wrapper_with(move |shared| Self {
            shared,
            mark_bps,
            proposed,
        })
    }

    /// `(instrument, mark)` for each trading perpetual with an index in the finalized state.
    fn marks(&self) -> Vec<MarkPrice> {
        let chain = lock(&self.shared.chain);
        let state = chain.finalized();
        state
            .instruments()
            .iter()
            .filter(|i| {
                i.kind == InstrumentKind::Perpetual && i.status == InstrumentStatus::Trading
            })
            .filter_map(|i| {
                let index = state.index_price(i.spec.underlying())?;
                let micros = i128::from(index.micros()) * i128::from(self.mark_bps) / 10_000;
                let micros = i64::try_from(micros).ok().filter(|m| *m > 0)?;
                Some(MarkPrice {
                    instrument: i.id,
                    price: UnitPrice::from_micros(micros),
                })
            })
            .collect()
    }
}

impl Rewrite for MarkProposer {
    fn rewrite(&self, honest: &ChainBlock, _parent: Option<&ChainBlock>) -> Option<ChainBlock> {
        let proposed = self.marks();
        if proposed.is_empty() {
            return None;
        }
        let prices = &honest.body.prices;
        let marks: Vec<MarkPrice> = prices
            .marks()
            .iter()
            .filter(|m| proposed.iter().all(|p| p.instrument != m.instrument))
            .chain(&proposed)
            .copied()
            .collect();
        let prices = PriceInputs::new(
            prices.index().to_vec(),
            marks,
            prices.settlements().to_vec(),
        )
        .ok()?;
        self.proposed
            .fetch_add(proposed.len() as u64, Ordering::SeqCst);
        let mut body = honest.body.clone();
        body.prices = prices;
        Some(with_body(honest, body, None))
    }
}
