//! Where a proposer's price inputs come from.
//!
//! Owns: the price feeds a leader consults when it builds a block: [`RandomWalkFeed`] (a seeded
//! walk of one index, the perpetual marked at the index) and [`SmileFeed`] (a Black-76 mark for
//! every listed, unexpired option of the asset at a fixed volatility smile, the perpetual marked
//! at the index, and a settlement price for options that expired unsettled).
//! Never: reads a clock (time is the block's) or draws entropy: the same seed, block time and
//! parent state give the same prices on every machine.
//!
//! **Trust gap.** The leader of each block supplies these inputs from its own feed, and
//! validators accept any positive, well-formed ones. On an exchange whose genesis runs the
//! oracle, the index comes from the median of 2f+1 validators' signed observations instead
//! (the node drops the feed's index), the exchange marks perpetuals itself, and [`SmileFeed`]
//! marks options from that agreed index. Option marks are leader-supplied only until the
//! exchange has fitted a smile to the series' own books (`bulwark_exchange::surface`, on by
//! default): from then on the exchange marks the series itself and ignores the leader's. A
//! Byzantine leader can therefore move the marks of a series with no smile yet (within the
//! clamp between intrinsic value and the option's bound) and the settlement price of an
//! expiry without an oracle. Honest leaders agree because every validator runs the same
//! deterministic feed. `/status` says who sets each instrument's mark. The feeds propose marks
//! only for instruments whose mark the parent state leaves to proposers, so blocks carry no
//! inputs the exchange would ignore.

use bulwark_exchange::{Exchange, InstrumentStatus, MarkOrigin};
use bulwark_pricing::{Black76, OptionKind, TIME_YEARS_MIN, to_minor_units};
use bulwark_types::name::NameKind;
use bulwark_types::{
    AssetCode, BlockTime, IndexPrice, InstrumentKind, MarkPrice, PriceInputs, Right,
    SettlementPrice, UnitPrice,
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
    /// Price at `start_ms`, micro-USDC.
    start_micros: i64,
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
            start_micros: price.micros(),
            position: (0, price.micros()),
        }
    }

    pub fn asset(&self) -> AssetCode {
        self.asset
    }

    /// The walk's price at `time`.
    pub fn index_at(&mut self, time: BlockTime) -> UnitPrice {
        let second = time.millis().saturating_sub(self.start_ms) / 1_000;
        if second < self.position.0 {
            // Asked about an earlier time than the last step: replay from the start.
            self.position = (0, self.start_micros);
        }
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
        let marks = perpetual_marks(state, self.asset, index);
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

fn perpetual_marks(state: &Exchange, asset: AssetCode, index: UnitPrice) -> Vec<MarkPrice> {
    state
        .instruments()
        .iter()
        .filter(|i| {
            i.spec.underlying() == asset
                && i.kind == InstrumentKind::Perpetual
                && i.status == InstrumentStatus::Trading
                && state.mark_origin(i) == MarkOrigin::Proposer
        })
        .map(|i| MarkPrice {
            instrument: i.id,
            price: index,
        })
        .collect()
}

/// Milliseconds in a year of 365.25 days: option time to expiry is in these years.
const MS_PER_YEAR: f64 = 365.25 * 24.0 * 3_600_000.0;

/// A fixed volatility smile in log-moneyness `k = ln(K / F)`:
/// `vol(k) = atm + skew * k + curvature * k^2`, clamped to `[vol_min, vol_max]`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SmileParams {
    /// At-the-money volatility, decimal per square-root year (0.55 is 55%).
    pub atm: f64,
    /// Slope in k; negative makes puts (low strikes) dearer, as in BTC's usual put skew.
    pub skew: f64,
    /// Convexity in k: both wings rise.
    pub curvature: f64,
    pub vol_min: f64,
    pub vol_max: f64,
}

impl SmileParams {
    /// The devnet smile: 55% at the money, a put skew and a little convexity, within 20%..250%.
    pub const DEVNET: Self = Self {
        atm: 0.55,
        skew: -0.15,
        curvature: 0.4,
        vol_min: 0.20,
        vol_max: 2.5,
    };

    /// Volatility at strike `strike` for forward `forward` (both positive).
    pub fn vol(&self, forward: f64, strike: f64) -> f64 {
        let k = libm::log(strike / forward);
        (self.atm + self.skew * k + self.curvature * k * k).clamp(self.vol_min, self.vol_max)
    }
}

/// Perpetuals marked at the index, and every listed, unexpired option of the asset marked by
/// Black-76 (zero rate, the index as forward) at [`SmileParams`], rounded to the option's tick
/// (at least one tick). Options that expired unsettled get a settlement price: the index at
/// the block's time. The index is the parent state's agreed one when the exchange runs the
/// oracle (the walk's until its first quorum), else the walk's. Deterministic given the seed,
/// the time and the parent state.
#[derive(Clone, Debug)]
pub struct SmileFeed {
    walk: RandomWalkFeed,
    smile: SmileParams,
    /// Most mark inputs in one block; must not exceed the network's `BlockLimits::prices_max`.
    marks_max: usize,
}

impl SmileFeed {
    pub fn new(walk: RandomWalkFeed, smile: SmileParams, marks_max: usize) -> Self {
        assert!(
            smile.vol_min > 0.0 && smile.vol_min <= smile.atm && smile.atm <= smile.vol_max,
            "smile bounds hold the ATM vol"
        );
        assert!(marks_max > 0, "room for at least the perpetual's mark");
        Self {
            walk,
            smile,
            marks_max,
        }
    }

    /// The Black-76 mark of one option, in micro-USDC per underlying unit on `tick` micro-USDC's
    /// grid; `None` when the model refuses the inputs (too close to expiry, extreme strike).
    pub fn option_mark(
        &self,
        index: UnitPrice,
        strike: UnitPrice,
        right: Right,
        expiry_ms: u64,
        time: BlockTime,
        tick: i64,
    ) -> Option<UnitPrice> {
        let forward = index.micros() as f64 / 1e6;
        let strike = strike.micros() as f64 / 1e6;
        let time_years = expiry_ms.checked_sub(time.millis())? as f64 / MS_PER_YEAR;
        if time_years < TIME_YEARS_MIN || tick <= 0 {
            return None;
        }
        let kind = match right {
            Right::Call => OptionKind::Call,
            Right::Put => OptionKind::Put,
        };
        let vol = self.smile.vol(forward, strike);
        let price = Black76::new(forward, strike, time_years, vol, 0.0)
            .ok()?
            .price(kind)
            .ok()?;
        let micros = to_minor_units(price, 1_000_000).ok()?;
        // Nearest tick, halves up; never below one tick.
        let ticks = ((micros + tick / 2) / tick).max(1);
        Some(UnitPrice::from_micros(ticks.checked_mul(tick)?))
    }
}

impl PriceFeed for SmileFeed {
    fn prices(&mut self, time: BlockTime, state: &Exchange) -> PriceInputs {
        let asset = self.walk.asset();
        // With the oracle, the agreed index of the parent state (the walk only until the first
        // quorum); without it, the walk is the index.
        let walk = self.walk.index_at(time);
        let index = match state.oracle_state() {
            Some(_) => state.index_price(asset).unwrap_or(walk),
            None => walk,
        };
        let mut marks = perpetual_marks(state, asset, index);
        let mut settlements: Vec<SettlementPrice> = Vec::new();
        for instrument in state
            .instruments()
            .iter()
            .filter(|i| i.spec.underlying() == asset)
        {
            let InstrumentKind::Option {
                expiry_ms,
                strike,
                right,
            } = instrument.kind
            else {
                continue;
            };
            match instrument.status {
                // A series the exchange marks from its smile takes no proposer marks.
                InstrumentStatus::Trading
                    if expiry_ms > time.millis()
                        && state.mark_origin(instrument) == MarkOrigin::Proposer =>
                {
                    let tick = instrument.spec.tick_size.micros();
                    if let Some(price) =
                        self.option_mark(index, strike, right, expiry_ms, time, tick)
                    {
                        marks.push(MarkPrice {
                            instrument: instrument.id,
                            price,
                        });
                    }
                }
                InstrumentStatus::Trading | InstrumentStatus::Expired => {
                    if let NameKind::Option { expiry, .. } = instrument.spec.name.kind() {
                        if !settlements.iter().any(|s| s.expiry == expiry) {
                            settlements.push(SettlementPrice {
                                asset,
                                expiry,
                                price: index,
                            });
                        }
                    }
                }
                InstrumentStatus::Settled => {}
            }
        }
        marks.sort_by_key(|m| m.instrument);
        marks.truncate(self.marks_max);
        settlements.sort_by_key(|s| s.expiry);
        settlements.truncate(self.marks_max);
        PriceInputs::new(
            vec![IndexPrice {
                asset,
                price: index,
            }],
            marks,
            settlements,
        )
        .expect("positive, unique")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> AssetCode {
        AssetCode::parse("BTC").unwrap()
    }

    #[test]
    fn walk_depends_only_on_seed_and_time() {
        let start = BlockTime::from_millis(1_000_000);
        let mut a = RandomWalkFeed::new(btc(), 7, start, UnitPrice::from_usdc(100_000), 5);
        let mut b = RandomWalkFeed::new(btc(), 7, start, UnitPrice::from_usdc(100_000), 5);
        let late = BlockTime::from_millis(1_000_000 + 60_000);
        let _ = a.index_at(BlockTime::from_millis(1_000_000 + 30_000));
        assert_eq!(
            a.index_at(late),
            b.index_at(late),
            "stepping in pieces or at once agrees"
        );
        assert_ne!(a.index_at(late), UnitPrice::from_usdc(100_000));
        let early = BlockTime::from_millis(1_000_000 + 10_000);
        let mut c = RandomWalkFeed::new(btc(), 7, start, UnitPrice::from_usdc(100_000), 5);
        assert_eq!(
            a.index_at(early),
            c.index_at(early),
            "going back in time replays the walk"
        );
    }

    #[test]
    fn option_marks_sit_on_the_tick_grid_and_respect_put_call_parity_roughly() {
        let walk = RandomWalkFeed::new(
            btc(),
            1,
            BlockTime::from_millis(0),
            UnitPrice::from_usdc(100_000),
            5,
        );
        let feed = SmileFeed::new(walk, SmileParams::DEVNET, 1_024);
        let tick = 5_000_000; // 5 USDC
        let expiry_ms = 30 * 86_400_000;
        let now = BlockTime::from_millis(0);
        let index = UnitPrice::from_usdc(100_000);
        let strike = UnitPrice::from_usdc(100_000);
        let call = feed
            .option_mark(index, strike, Right::Call, expiry_ms, now, tick)
            .unwrap();
        let put = feed
            .option_mark(index, strike, Right::Put, expiry_ms, now, tick)
            .unwrap();
        assert_eq!(call.micros() % tick, 0);
        // At the money with zero rate, call and put are worth the same (up to one tick).
        assert!((call.micros() - put.micros()).abs() <= tick);
        // 55% vol, 30 days: about 0.4 * 0.55 * sqrt(30/365.25) * F = 6,300 USDC.
        assert!(
            (5_500_000_000..7_000_000_000).contains(&call.micros()),
            "{call:?}"
        );
        // Deep out of the money still gets at least one tick; expired gets nothing.
        let far = feed
            .option_mark(
                index,
                UnitPrice::from_usdc(1_000_000),
                Right::Call,
                expiry_ms,
                now,
                tick,
            )
            .unwrap();
        assert!(
            far.micros() >= tick && far.micros() % tick == 0 && far < call,
            "{far:?}"
        );
        assert!(
            feed.option_mark(
                index,
                strike,
                Right::Call,
                expiry_ms,
                BlockTime::from_millis(expiry_ms),
                tick
            )
            .is_none()
        );
    }

    #[test]
    fn smile_has_a_put_skew() {
        let s = SmileParams::DEVNET;
        assert!(s.vol(100.0, 80.0) > s.vol(100.0, 100.0));
        assert!((s.vol(100.0, 100.0) - 0.55).abs() < 1e-12);
        assert!(s.vol(100.0, 1e9) <= s.vol_max);
    }

    #[test]
    fn smile_feed_marks_every_listed_option_and_the_perpetual() {
        use bulwark_exchange::{ExchangeParams, Genesis};
        use bulwark_types::{
            Block, ExpiryDate, Height, InstrumentName, InstrumentSpec, Multiplier, Nonce,
            PrivateKey, Qty, Tx, TxBody,
        };
        use commonware_cryptography::Signer;
        let admin = PrivateKey::from_seed(1);
        let start = BlockTime::from_millis(1_795_478_400_000); // 2026-11-24
        let genesis = Genesis {
            admin: admin.public_key(),
            bridge: PrivateKey::from_seed(2).public_key(),
            params: ExchangeParams::defaults(),
            time: start,
            oracle: None,
            custody: None,
        };
        let mut state = Exchange::new(&genesis).unwrap();
        let spec = |name: InstrumentName, tick: UnitPrice, e8: i64| InstrumentSpec {
            name,
            tick_size: tick,
            multiplier: Multiplier::from_e8(e8),
            lot_size: Qty::from_contracts(1),
            size_min: Qty::from_contracts(1),
        };
        let expiry = ExpiryDate::new(2026, 12, 25).unwrap();
        let option =
            InstrumentName::option(btc(), expiry, UnitPrice::from_usdc(95_000), Right::Put)
                .unwrap();
        let specs = [
            spec(
                InstrumentName::perpetual(btc()),
                UnitPrice::from_micros(500_000),
                100_000,
            ),
            spec(option, UnitPrice::from_usdc(5), 1_000_000),
        ];
        let txs = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Tx {
                    signer: admin.public_key(),
                    nonce: Nonce::new(i as u64 + 1),
                    body: TxBody::ListInstrument(*s),
                }
                .sign(&admin)
            })
            .collect();
        let block = Block {
            height: Height::new(1),
            time: start,
            prices: PriceInputs::default(),
            observations: Vec::new(),
            txs,
        };
        state
            .apply_block(&block.check_signatures(&mut ChaCha8Rng::seed_from_u64(0)))
            .unwrap();
        let walk = RandomWalkFeed::new(btc(), 3, start, UnitPrice::from_usdc(100_000), 5);
        let mut feed = SmileFeed::new(walk, SmileParams::DEVNET, 16);
        let prices = feed.prices(BlockTime::from_millis(start.millis() + 1_000), &state);
        assert_eq!(prices.index().len(), 1);
        assert_eq!(prices.marks().len(), 2, "{prices:?}");
        let put = prices.marks()[1].price.micros();
        assert!(put > 0 && put % 5_000_000 == 0, "{put}");
        assert!(prices.settlements().is_empty());
    }
}
