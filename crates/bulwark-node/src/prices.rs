//! Where a proposer's price inputs come from.
//!
//! Until the oracle (validators' signed observations, median of 2f+1) lands, the leader of each
//! block supplies the index price from its own feed and marks the perpetual at the index;
//! validators accept any positive, well-formed inputs. That trusts the leader with prices: the
//! oracle issue replaces it.

use bulwark_exchange::Exchange;
use bulwark_types::{
    AssetCode, BlockTime, IndexPrice, InstrumentKind, MarkPrice, PriceInputs, UnitPrice,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A source of the price inputs a proposer puts in its block.
pub trait PriceFeed: Send + 'static {
    /// Prices for a block at `time` building on `state`.
    fn prices(&mut self, time: BlockTime, state: &Exchange) -> PriceInputs;
}

/// A seeded random walk of one asset's index, one step per second of block time, the same on
/// every validator with the same seed (a step depends only on the seed and the second).
#[derive(Clone, Debug)]
pub struct RandomWalkFeed {
    asset: AssetCode,
    seed: u64,
    /// Step size in basis points of the price per second.
    step_bps: u64,
    start_ms: u64,
    /// (second, price in micro-USDC) of the last step taken.
    position: (u64, i64),
}

impl RandomWalkFeed {
    pub fn new(
        asset: AssetCode,
        seed: u64,
        start: BlockTime,
        price: UnitPrice,
        step_bps: u64,
    ) -> Self {
        assert!(price.is_positive(), "a walk starts at a positive price");
        Self {
            asset,
            seed,
            step_bps,
            start_ms: start.millis(),
            position: (0, price.micros()),
        }
    }

    /// The walk's price at `time`.
    pub fn index_at(&mut self, time: BlockTime) -> UnitPrice {
        let second = time.millis().saturating_sub(self.start_ms) / 1_000;
        while self.position.0 < second {
            let step = self.position.0 + 1;
            let mut rng =
                ChaCha8Rng::seed_from_u64(self.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let up = rng.next_u32() & 1 == 1;
            let delta = self.position.1 / 10_000 * self.step_bps as i64;
            let price = if up {
                self.position.1 + delta
            } else {
                self.position.1 - delta
            };
            self.position = (step, price.max(1_000_000));
        }
        UnitPrice::from_micros(self.position.1)
    }
}

impl PriceFeed for RandomWalkFeed {
    fn prices(&mut self, time: BlockTime, state: &Exchange) -> PriceInputs {
        let index = self.index_at(time);
        let marks = state
            .instruments()
            .iter()
            .filter(|i| i.spec.underlying() == self.asset && i.kind == InstrumentKind::Perpetual)
            .map(|i| MarkPrice {
                instrument: i.id,
                price: index,
            })
            .collect();
        PriceInputs::new(
            vec![IndexPrice {
                asset: self.asset,
                price: index,
            }],
            marks,
            vec![],
        )
        .expect("positive, unique")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_depends_only_on_seed_and_time() {
        let btc = AssetCode::parse("BTC").unwrap();
        let start = BlockTime::from_millis(1_000_000);
        let mut a = RandomWalkFeed::new(btc, 7, start, UnitPrice::from_usdc(100_000), 5);
        let mut b = RandomWalkFeed::new(btc, 7, start, UnitPrice::from_usdc(100_000), 5);
        let late = BlockTime::from_millis(1_000_000 + 60_000);
        let _ = a.index_at(BlockTime::from_millis(1_000_000 + 30_000));
        assert_eq!(
            a.index_at(late),
            b.index_at(late),
            "stepping in pieces or at once agrees"
        );
        assert_ne!(a.index_at(late), UnitPrice::from_usdc(100_000));
    }
}
