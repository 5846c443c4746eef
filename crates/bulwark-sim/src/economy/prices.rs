//! The price sources every validator's observer reads inside the lab, and the honest truth.
//!
//! Owns: [`Truth`], the honest price of BTC at any simulated time (a seeded synthetic market
//! times the scenario's scripted moves), and [`VenueSource`], one venue as one validator reads
//! it (the truth with the venue's own small noise, or the venue's lie, then the validator's
//! own lie if it tells one); [`venue_sources`] hands a validator one per venue.
//! Never: combines venues itself (each validator's observer does, with the production
//! [`bulwark_oracle::observe_sources`], so the lab tests the code validators run); reads a
//! clock or draws entropy: a price is a function of the seed, the validator, the venue and
//! the time asked about.

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
        Some(scale(quote.price, self.economy.moved(since)))
    }
}

/// One venue as validator `validator` reads it: the truth with that venue's own noise, or the
/// venue's lie (a false price, or none while it fails); then the validator's own lie, if it
/// tells one, on every venue it reads (so the observation the production code makes of them
/// carries it, or, when the lie is silence, there is none).
pub struct VenueSource {
    validator: usize,
    venue: u8,
    market: SyntheticSource,
    economy: Economy,
    start_ms: u64,
}

/// Validator `validator`'s price sources: one [`VenueSource`] per venue, which its observer
/// combines with the production [`bulwark_oracle::observe_sources`], as a validator outside
/// the lab does. With the venue median switched off, venue 0 alone (the one a venue lie
/// names first).
pub fn venue_sources(
    seed: u64,
    start_ms: u64,
    economy: &Economy,
    validator: usize,
) -> Vec<Box<dyn PriceSource + Send>> {
    let venues = if economy.is_off(crate::economy::Protection::VenueMedian) {
        1
    } else {
        economy.venues
    };
    assert!(
        (1..=crate::economy::VENUES_MAX).contains(&venues),
        "1 to VENUES_MAX venues"
    );
    (0..venues)
        .map(|venue| {
            let market = market(seed, start_ms)
                .with_noise(ObserverNoise {
                    observer: validator as u32 * OBSERVER_STRIDE + u32::from(venue),
                    noise_bps: economy.venue_noise_bps,
                })
                .expect("noise within bounds");
            Box::new(VenueSource {
                validator,
                venue,
                market,
                economy: economy.clone(),
                start_ms,
            }) as Box<dyn PriceSource + Send>
        })
        .collect()
}

impl VenueSource {
    /// The lie `liar` tells at `since` (ms into the run), in basis points of the honest price.
    fn lie(&self, liar: impl Fn(&Liar) -> bool, since: u64) -> Option<u32> {
        self.economy
            .lies
            .iter()
            .find(|l| liar(&l.liar) && l.active(since))
            .map(|l| l.price_bps)
    }
}

impl PriceSource for VenueSource {
    fn observe(&mut self, asset: AssetCode, now_ms: u64) -> Option<SourceQuote> {
        let since = now_ms.saturating_sub(self.start_ms);
        let quote = self.market.observe(asset, now_ms)?;
        let mut factor = self.economy.moved(since);
        let venue = self.venue;
        let validator = self.validator;
        let lies = [
            self.lie(|l| *l == Liar::Venue(venue), since),
            self.lie(
                |l| matches!(l, Liar::Validators(vs) if vs.contains(&validator)),
                since,
            ),
        ];
        for lie in lies.into_iter().flatten() {
            if lie == 0 {
                return None;
            }
            factor *= f64::from(lie) / 10_000.0;
        }
        Some(SourceQuote {
            price: scale(quote.price, factor),
            observed_at_ms: quote.observed_at_ms,
        })
    }
}
