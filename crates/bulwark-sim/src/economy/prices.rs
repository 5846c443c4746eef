//! The price source every validator's observer reads inside the lab, and the honest truth.
//!
//! Owns: [`Truth`], the honest price of BTC at any simulated time (a seeded synthetic market
//! times the scenario's scripted moves), and [`ScriptedSource`], one validator's view of it:
//! the median of its venues (each the truth with its own small noise, or a venue's lie), then
//! the validator's own lie if it tells one.
//! Never: reads a clock or draws entropy: a price is a function of the seed, the validator,
//! the venue and the time asked about.

use crate::economy::{Economy, Liar};
use bulwark_oracle::{MarketConfig, ObserverNoise, PriceSource, SourceQuote, SyntheticSource};
use bulwark_types::{AssetCode, UnitPrice};

/// The market the lab's index follows starts here.
pub const PRICE_START_USDC: i64 = 100_000;

/// Venue noise is drawn per (validator, venue) pair: observer `validator * STRIDE + venue`.
const OBSERVER_STRIDE: u32 = 16;

fn market(seed: u64, start_ms: u64) -> SyntheticSource {
    SyntheticSource::new(
        seed,
        vec![MarketConfig::crypto(
            crate::cluster::btc(),
            UnitPrice::from_usdc(PRICE_START_USDC),
            start_ms,
        )],
    )
    .expect("a valid market")
}

fn scale(price: UnitPrice, factor: f64) -> UnitPrice {
    let micros = (price.micros() as f64 * factor).round();
    UnitPrice::from_micros((micros as i64).max(1))
}

/// The honest price path of a run.
pub struct Truth {
    market: SyntheticSource,
    economy: Economy,
    start_ms: u64,
}

impl Truth {
    /// The path for a run whose genesis is at `start_ms` (Unix milliseconds of the runtime's
    /// clock); `seed` is the run's market seed.
    pub fn new(seed: u64, start_ms: u64, economy: Economy) -> Self {
        Self {
            market: market(seed, start_ms),
            economy,
            start_ms,
        }
    }

    /// The honest price of BTC at `at_ms` (Unix milliseconds), if the market has started.
    pub fn price(&mut self, at_ms: u64) -> Option<UnitPrice> {
        let quote = self.market.observe(crate::cluster::btc(), at_ms)?;
        let since = at_ms.saturating_sub(self.start_ms);
        let factor: f64 = self
            .economy
            .moves
            .iter()
            .map(|m| m.multiplier(since))
            .product();
        Some(scale(quote.price, factor))
    }
}

/// What validator `validator`'s observer reads: its venues' median, then its own lie.
pub struct ScriptedSource {
    validator: usize,
    venues: Vec<SyntheticSource>,
    economy: Economy,
    start_ms: u64,
}

impl ScriptedSource {
    pub fn new(seed: u64, start_ms: u64, economy: Economy, validator: usize) -> Self {
        // A validator reading one venue (the venue median switched off) reads venue 0, the
        // one a venue lie names first.
        let venues = if economy.is_off(crate::economy::Protection::VenueMedian) {
            1
        } else {
            economy.venues
        };
        let venues = (0..venues)
            .map(|v| {
                market(seed, start_ms)
                    .with_noise(ObserverNoise {
                        observer: validator as u32 * OBSERVER_STRIDE + u32::from(v),
                        noise_bps: economy.venue_noise_bps,
                    })
                    .expect("noise within bounds")
            })
            .collect();
        Self {
            validator,
            venues,
            economy,
            start_ms,
        }
    }

    fn lie(&self, liar: impl Fn(&Liar) -> bool, since: u64) -> Option<u32> {
        self.economy
            .lies
            .iter()
            .find(|l| liar(&l.liar) && l.active(since))
            .map(|l| l.price_bps)
    }
}

impl PriceSource for ScriptedSource {
    fn observe(&mut self, asset: AssetCode, now_ms: u64) -> Option<SourceQuote> {
        let since = now_ms.saturating_sub(self.start_ms);
        let moved: f64 = self
            .economy
            .moves
            .iter()
            .map(|m| m.multiplier(since))
            .product();
        let mut quotes = Vec::with_capacity(self.venues.len());
        for v in 0..self.venues.len() {
            let Some(quote) = self.venues[v].observe(asset, now_ms) else {
                continue;
            };
            let lie = self.lie(|l| *l == Liar::Venue(v as u8), since);
            let factor = match lie {
                Some(0) => continue,
                Some(bps) => moved * f64::from(bps) / 10_000.0,
                None => moved,
            };
            quotes.push(SourceQuote {
                price: scale(quote.price, factor),
                observed_at_ms: quote.observed_at_ms,
            });
        }
        quotes.sort_by_key(|q| q.price);
        let median = *quotes.get(quotes.len().checked_sub(1)? / 2)?;
        let validator = self.validator;
        match self.lie(
            |l| matches!(l, Liar::Validators(vs) if vs.contains(&validator)),
            since,
        ) {
            Some(0) => None,
            Some(bps) => Some(SourceQuote {
                price: scale(median.price, f64::from(bps) / 10_000.0),
                observed_at_ms: median.observed_at_ms,
            }),
            None => Some(median),
        }
    }
}
