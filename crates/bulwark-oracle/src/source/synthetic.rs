//! A seeded synthetic market: geometric Brownian motion with jumps and scripted crashes.
//!
//! Owns: each asset's price path as a pure function of `(seed, asset, config, time)`, and the
//! per-observer noise that makes honest validators see slightly different prices.
//! The path is a grid of `step_ms` steps from `start_ms`; the price is constant within a step.
//! Step `k` draws its randomness from ChaCha8 words `8k .. 8k + 8` of the asset's stream (key =
//! seed and asset code), so the log-return after `k` steps is the same sum of the same terms
//! in the same order however the market was stepped: piecewise or at once, forward or after a
//! rewind. Scripted crashes multiply the path by a deterministic function of time. Observer
//! noise for observer `o` at step `k` comes from stream `1 + o` at words `4k .. 4k + 4`.
//! Every transcendental function is `libm`'s, so every machine computes the same bits.
//! Never: reads a clock, draws OS entropy, or uses the platform's float functions.
//! Bounds: at most [`STEPS_MAX`] steps per market (its horizon), [`CRASHES_MAX`] crashes per
//! market, [`SYNTHETIC_ASSETS_MAX`] markets per source. A call costs O(steps since the previous
//! call), or O(steps from the start) after a rewind; memory is O(1) per market.
//!
//! Model, per step of `dt` years (365.25-day years):
//! `ln S(k+1) - ln S(k) = (mu - sigma^2 / 2) dt + sigma sqrt(dt) Z1 + J`, where `J` is
//! `jump_log_mean + jump_log_std * Z2` with probability `1 - exp(-jumps_per_day * dt_days)`
//! and 0 otherwise. The price is `S(k) * prod(crash multipliers at the step's time)`, rounded
//! to the nearest micro-USDC (halves away from zero) and kept within `[1, PRICE_MICROS_MAX]`.

use super::{PriceSource, SourceQuote};
use bulwark_types::{AssetCode, UnitPrice};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Most steps a market may run (about 289 days at 250 ms).
pub const STEPS_MAX: u64 = 100_000_000;
/// Most scripted crashes per market.
pub const CRASHES_MAX: usize = 16;
/// Most markets one synthetic source serves.
pub const SYNTHETIC_ASSETS_MAX: usize = 64;
/// Largest synthetic price, in micro-USDC: 2^53, the largest integer every f64 below holds
/// exactly (9e9 USDC per unit).
pub const PRICE_MICROS_MAX: i64 = 1 << 53;
/// Largest observer noise: 10% standard deviation.
pub const NOISE_BPS_MAX: u32 = 1_000;

const MS_PER_DAY: f64 = 86_400_000.0;
const MS_PER_YEAR: f64 = 365.25 * MS_PER_DAY;
/// ChaCha words one step consumes: four `u64`s (two for Box-Muller, one for the jump, one
/// reserved), fixed so that step `k` always starts at word `8k`.
const WORDS_PER_STEP: u128 = 8;
const NOISE_WORDS_PER_STEP: u128 = 4;
/// Observer noise is clipped at this many standard deviations.
const NOISE_SIGMAS_MAX: f64 = 4.0;

/// A scripted crash: the price falls by `depth_bps` linearly over `fall_ms` from `start_ms`,
/// stays down `hold_ms`, and recovers linearly over `recover_ms`. "Fall 30% over 5 s at t,
/// recover over 60 s" is `Crash { start_ms: t, fall_ms: 5_000, hold_ms: 0, recover_ms: 60_000,
/// depth_bps: 3_000 }`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    pub start_ms: u64,
    pub fall_ms: u64,
    pub hold_ms: u64,
    pub recover_ms: u64,
    /// Depth at the bottom, in basis points of the uncrashed price; below 10_000.
    pub depth_bps: u32,
}

impl Crash {
    /// The price multiplier at `at_ms`, in `(0, 1]`.
    pub fn multiplier(&self, at_ms: u64) -> f64 {
        let depth = f64::from(self.depth_bps) / 10_000.0;
        let Some(since) = at_ms.checked_sub(self.start_ms) else {
            return 1.0;
        };
        let shape = if since < self.fall_ms {
            since as f64 / self.fall_ms as f64
        } else if since < self.fall_ms + self.hold_ms {
            1.0
        } else if since < self.fall_ms + self.hold_ms + self.recover_ms {
            let rising = since - self.fall_ms - self.hold_ms;
            1.0 - rising as f64 / self.recover_ms as f64
        } else {
            0.0
        };
        1.0 - depth * shape
    }
}

/// One synthetic market. No `Default`: [`MarketConfig::crypto`] is a documented preset.
#[derive(Clone, Debug, PartialEq)]
pub struct MarketConfig {
    pub asset: AssetCode,
    /// Price at `start_ms`; positive.
    pub price_start: UnitPrice,
    /// Time of the first step, in milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// Length of one step, 1 ms to 60 s.
    pub step_ms: u64,
    /// How long the market runs after `start_ms`; at most `STEPS_MAX` steps.
    pub horizon_ms: u64,
    /// Annualised volatility sigma, 0 to 10 (0.8 = 80%).
    pub vol_annual: f64,
    /// Annualised drift mu, -10 to 10.
    pub drift_annual: f64,
    /// Mean jumps per day, 0 to 100_000.
    pub jumps_per_day: f64,
    /// Mean log-size of a jump, -1 to 1.
    pub jump_log_mean: f64,
    /// Standard deviation of a jump's log-size, 0 to 1.
    pub jump_log_std: f64,
    /// Scripted crashes, at most `CRASHES_MAX`; overlapping crashes multiply.
    pub crashes: Vec<Crash>,
}

impl MarketConfig {
    /// A crypto-like market: 250 ms steps for 30 days, 80% annual volatility, no drift, four
    /// jumps a day of about 1% (log-size mean 0, std 0.01), no crashes.
    pub fn crypto(asset: AssetCode, price_start: UnitPrice, start_ms: u64) -> Self {
        Self {
            asset,
            price_start,
            start_ms,
            step_ms: 250,
            horizon_ms: 30 * 86_400_000,
            vol_annual: 0.8,
            drift_annual: 0.0,
            jumps_per_day: 4.0,
            jump_log_mean: 0.0,
            jump_log_std: 0.01,
            crashes: Vec::new(),
        }
    }

    pub fn check(&self) -> Result<(), MarketError> {
        if !self.price_start.is_positive() || self.price_start.micros() > PRICE_MICROS_MAX {
            return Err(MarketError::PriceStartOutOfRange);
        }
        if self.step_ms == 0 || self.step_ms > 60_000 {
            return Err(MarketError::StepOutOfRange);
        }
        if self.horizon_ms / self.step_ms > STEPS_MAX {
            return Err(MarketError::HorizonTooLong);
        }
        let ranges = [
            ("vol_annual", self.vol_annual, 0.0, 10.0),
            ("drift_annual", self.drift_annual, -10.0, 10.0),
            ("jumps_per_day", self.jumps_per_day, 0.0, 100_000.0),
            ("jump_log_mean", self.jump_log_mean, -1.0, 1.0),
            ("jump_log_std", self.jump_log_std, 0.0, 1.0),
        ];
        for (name, value, low, high) in ranges {
            // `!(a <= b)` is also true for NaN.
            if !(low <= value && value <= high) {
                return Err(MarketError::ParameterOutOfRange(name));
            }
        }
        if self.crashes.len() > CRASHES_MAX {
            return Err(MarketError::TooManyCrashes);
        }
        for crash in &self.crashes {
            if crash.depth_bps >= 10_000 {
                return Err(MarketError::CrashDepthOutOfRange);
            }
            if crash.fall_ms == 0 || crash.recover_ms == 0 {
                return Err(MarketError::CrashDurationZero);
            }
            let length = crash.fall_ms.checked_add(crash.hold_ms);
            if length
                .and_then(|l| l.checked_add(crash.recover_ms))
                .is_none()
            {
                return Err(MarketError::CrashDurationZero);
            }
        }
        Ok(())
    }
}

/// Why a synthetic market or source was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MarketError {
    #[error("price_start must be positive and at most 2^53 micro-USDC")]
    PriceStartOutOfRange,
    #[error("step_ms must be between 1 and 60_000")]
    StepOutOfRange,
    #[error("horizon_ms spans more than {STEPS_MAX} steps")]
    HorizonTooLong,
    #[error("{0} is out of range or not finite")]
    ParameterOutOfRange(&'static str),
    #[error("more than {CRASHES_MAX} crashes")]
    TooManyCrashes,
    #[error("crash depth_bps must be below 10_000")]
    CrashDepthOutOfRange,
    #[error("crash fall_ms and recover_ms must be positive and the crash's length fit a u64")]
    CrashDurationZero,
    #[error("two markets for one asset")]
    DuplicateAsset,
    #[error("more than {SYNTHETIC_ASSETS_MAX} markets")]
    TooManyAssets,
    #[error("noise_bps must be at most {NOISE_BPS_MAX}")]
    NoiseOutOfRange,
}

/// The ChaCha key of one asset's market: the seed, then the asset code.
fn market_key(seed: u64, asset: AssetCode) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let code = asset.as_str().as_bytes();
    key[8] = code.len() as u8;
    key[9..9 + code.len()].copy_from_slice(code);
    key
}

/// A uniform in `(0, 1]` from the top 53 bits of `bits`.
fn uniform_open0(bits: u64) -> f64 {
    ((bits >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform in `[0, 1)` from the top 53 bits of `bits`.
fn uniform_open1(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Two independent standard normals from two uniforms (Box-Muller).
fn normals(a: u64, b: u64) -> (f64, f64) {
    let radius = libm::sqrt(-2.0 * libm::log(uniform_open0(a)));
    let angle = 2.0 * std::f64::consts::PI * uniform_open1(b);
    (radius * libm::cos(angle), radius * libm::sin(angle))
}

/// Rounds a price in micro-USDC to the integer grid, halves away from zero, within
/// `[1, PRICE_MICROS_MAX]`.
fn to_micros(value: f64) -> UnitPrice {
    let max = PRICE_MICROS_MAX as f64;
    let rounded = libm::round(value);
    // NaN cannot arise from checked configs; treat it like an underflow all the same.
    let clamped = if rounded.is_nan() {
        1.0
    } else {
        rounded.clamp(1.0, max)
    };
    UnitPrice::from_micros(clamped as i64)
}

/// One asset's market path, with a cursor that makes forward stepping cheap.
#[derive(Clone, Debug)]
pub struct SyntheticMarket {
    config: MarketConfig,
    key: [u8; 32],
    drift_step: f64,
    diffusion_step: f64,
    jump_probability: f64,
    horizon_steps: u64,
    rng: ChaCha8Rng,
    /// Steps taken: `log_return` is the sum of the first `step` increments.
    step: u64,
    log_return: f64,
}

impl SyntheticMarket {
    pub fn new(seed: u64, config: MarketConfig) -> Result<Self, MarketError> {
        config.check()?;
        let key = market_key(seed, config.asset);
        let dt_years = config.step_ms as f64 / MS_PER_YEAR;
        let dt_days = config.step_ms as f64 / MS_PER_DAY;
        let sigma = config.vol_annual;
        Ok(Self {
            drift_step: (config.drift_annual - 0.5 * sigma * sigma) * dt_years,
            diffusion_step: sigma * libm::sqrt(dt_years),
            jump_probability: -libm::expm1(-config.jumps_per_day * dt_days),
            horizon_steps: config.horizon_ms / config.step_ms,
            rng: ChaCha8Rng::from_seed(key),
            key,
            config,
            step: 0,
            log_return: 0.0,
        })
    }

    pub fn config(&self) -> &MarketConfig {
        &self.config
    }

    /// The market's own price (no observer noise) at `now_ms`: the price of the latest step at
    /// or before it. `None` before `start_ms` and after the horizon.
    pub fn quote_at(&mut self, now_ms: u64) -> Option<SourceQuote> {
        let step = self.step_at(now_ms)?;
        let at_ms = self.config.start_ms + step * self.config.step_ms;
        let log_return = self.log_return_after(step);
        let crash: f64 = self
            .config
            .crashes
            .iter()
            .map(|c| c.multiplier(at_ms))
            .product();
        let value = self.config.price_start.micros() as f64 * libm::exp(log_return) * crash;
        Some(SourceQuote {
            price: to_micros(value),
            observed_at_ms: at_ms,
        })
    }

    fn step_at(&self, now_ms: u64) -> Option<u64> {
        let since = now_ms.checked_sub(self.config.start_ms)?;
        let step = since / self.config.step_ms;
        (step <= self.horizon_steps).then_some(step)
    }

    /// The sum of the first `step` increments, always accumulated from step 0 in order.
    fn log_return_after(&mut self, step: u64) -> f64 {
        assert!(step <= self.horizon_steps, "within the horizon");
        if step < self.step {
            self.rng = ChaCha8Rng::from_seed(self.key);
            self.step = 0;
            self.log_return = 0.0;
        }
        while self.step < step {
            debug_assert_eq!(
                self.rng.get_word_pos(),
                u128::from(self.step) * WORDS_PER_STEP
            );
            self.log_return += self.increment();
            self.step += 1;
        }
        self.log_return
    }

    /// One step's log-return. Consumes exactly `WORDS_PER_STEP` words.
    fn increment(&mut self) -> f64 {
        let (z_diffusion, z_jump) = normals(self.rng.next_u64(), self.rng.next_u64());
        let jumps = uniform_open1(self.rng.next_u64()) < self.jump_probability;
        let _reserved = self.rng.next_u64();
        let jump = if jumps {
            self.config.jump_log_mean + self.config.jump_log_std * z_jump
        } else {
            0.0
        };
        self.drift_step + self.diffusion_step * z_diffusion + jump
    }
}

/// How one observer's view differs from the market.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ObserverNoise {
    /// Which observer (a validator's index): each sees its own noise.
    pub observer: u32,
    /// Standard deviation of the multiplicative noise, in basis points; at most 1_000.
    pub noise_bps: u32,
}

/// A [`PriceSource`] over synthetic markets, optionally as one noisy observer sees them.
#[derive(Clone, Debug)]
pub struct SyntheticSource {
    markets: BTreeMap<AssetCode, SyntheticMarket>,
    noise: Option<(ObserverNoise, BTreeMap<AssetCode, ChaCha8Rng>)>,
}

impl SyntheticSource {
    /// Markets for distinct assets from one seed. Every source built from the same seed and
    /// configs (on any machine) sees the same market prices.
    pub fn new(seed: u64, markets: Vec<MarketConfig>) -> Result<Self, MarketError> {
        if markets.len() > SYNTHETIC_ASSETS_MAX {
            return Err(MarketError::TooManyAssets);
        }
        let mut by_asset = BTreeMap::new();
        for config in markets {
            let asset = config.asset;
            if by_asset
                .insert(asset, SyntheticMarket::new(seed, config)?)
                .is_some()
            {
                return Err(MarketError::DuplicateAsset);
            }
        }
        Ok(Self {
            markets: by_asset,
            noise: None,
        })
    }

    /// The same markets as seen by `noise.observer`, with its own noise on every price.
    pub fn with_noise(mut self, noise: ObserverNoise) -> Result<Self, MarketError> {
        if noise.noise_bps > NOISE_BPS_MAX {
            return Err(MarketError::NoiseOutOfRange);
        }
        let streams = self
            .markets
            .iter()
            .map(|(asset, market)| {
                let mut rng = ChaCha8Rng::from_seed(market.key);
                rng.set_stream(1 + u64::from(noise.observer));
                (*asset, rng)
            })
            .collect();
        self.noise = Some((noise, streams));
        Ok(self)
    }

    /// The market's own price of `asset` at `now_ms`, without observer noise.
    pub fn market_quote(&mut self, asset: AssetCode, now_ms: u64) -> Option<SourceQuote> {
        self.markets.get_mut(&asset)?.quote_at(now_ms)
    }
}

impl PriceSource for SyntheticSource {
    fn observe(&mut self, asset: AssetCode, now_ms: u64) -> Option<SourceQuote> {
        let market = self.markets.get_mut(&asset)?;
        let quote = market.quote_at(now_ms)?;
        let Some((noise, streams)) = &mut self.noise else {
            return Some(quote);
        };
        let step = market
            .step_at(now_ms)
            .expect("quoted, so within the horizon");
        let rng = streams.get_mut(&asset).expect("one stream per market");
        rng.set_word_pos(u128::from(step) * NOISE_WORDS_PER_STEP);
        let (z, _) = normals(rng.next_u64(), rng.next_u64());
        let z = z.clamp(-NOISE_SIGMAS_MAX, NOISE_SIGMAS_MAX);
        let factor = libm::exp(f64::from(noise.noise_bps) / 10_000.0 * z);
        Some(SourceQuote {
            price: to_micros(quote.price.micros() as f64 * factor),
            observed_at_ms: quote.observed_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn btc() -> AssetCode {
        AssetCode::parse("BTC").unwrap()
    }

    fn market() -> MarketConfig {
        MarketConfig::crypto(btc(), UnitPrice::from_usdc(65_000), T0)
    }

    fn calm() -> MarketConfig {
        MarketConfig {
            vol_annual: 0.0,
            jumps_per_day: 0.0,
            ..market()
        }
    }

    fn source(seed: u64, config: MarketConfig) -> SyntheticSource {
        SyntheticSource::new(seed, vec![config]).unwrap()
    }

    #[test]
    fn stepping_in_pieces_or_at_once_or_backwards_agrees() {
        let mut pieces = source(7, market());
        let mut once = source(7, market());
        let mut rewound = source(7, market());
        let end = T0 + 600_000;
        let mut path = Vec::new();
        for now in (T0..=end).step_by(137) {
            path.push((now, pieces.observe(btc(), now).unwrap()));
        }
        let (last_ms, last) = *path.last().unwrap();
        assert_eq!(once.observe(btc(), last_ms), Some(last));
        // Ask about the end first, then rewind through the path backwards.
        rewound.observe(btc(), end);
        for (now, quote) in path.iter().rev().step_by(97) {
            assert_eq!(rewound.observe(btc(), *now), Some(*quote));
        }
    }

    #[test]
    fn same_seed_same_market_other_seed_other_market() {
        let at = T0 + 3_600_000;
        let a = source(1, market()).observe(btc(), at);
        assert_eq!(source(1, market()).observe(btc(), at), a);
        assert_ne!(source(2, market()).observe(btc(), at), a);
        let eth = MarketConfig::crypto(
            AssetCode::parse("ETH").unwrap(),
            UnitPrice::from_usdc(65_000),
            T0,
        );
        let mut both = SyntheticSource::new(1, vec![market(), eth.clone()]).unwrap();
        assert_eq!(
            both.observe(btc(), at),
            a,
            "an asset's path ignores its neighbours"
        );
        assert_ne!(
            both.observe(eth.asset, at),
            a,
            "each asset has its own path"
        );
    }

    #[test]
    fn price_is_constant_within_a_step_and_stamped_with_its_start() {
        let mut s = source(3, market());
        let q = s.observe(btc(), T0 + 1_000).unwrap();
        assert_eq!(q.observed_at_ms, T0 + 1_000);
        assert_eq!(s.observe(btc(), T0 + 1_249), Some(q));
        assert_eq!(
            s.observe(btc(), T0).unwrap().price,
            UnitPrice::from_usdc(65_000)
        );
        assert_eq!(s.observe(btc(), T0 - 1), None);
        assert_eq!(
            s.observe(btc(), T0 + 30 * 86_400_000 + 1_000),
            None,
            "past the horizon"
        );
        assert_eq!(s.observe(AssetCode::parse("ETH").unwrap(), T0), None);
    }

    #[test]
    fn scripted_crash_falls_holds_and_recovers_exactly() {
        let crash = Crash {
            start_ms: T0 + 10_000,
            fall_ms: 5_000,
            hold_ms: 2_000,
            recover_ms: 60_000,
            depth_bps: 3_000,
        };
        let mut s = source(
            1,
            MarketConfig {
                crashes: vec![crash],
                ..calm()
            },
        );
        let usdc = |s: &mut SyntheticSource, dt: u64| s.observe(btc(), T0 + dt).unwrap().price;
        assert_eq!(usdc(&mut s, 10_000), UnitPrice::from_usdc(65_000));
        assert_eq!(usdc(&mut s, 12_500), UnitPrice::from_usdc(55_250)); // halfway: -15%
        assert_eq!(usdc(&mut s, 15_000), UnitPrice::from_usdc(45_500)); // bottom: -30%
        assert_eq!(usdc(&mut s, 16_999), UnitPrice::from_usdc(45_500)); // holding
        assert_eq!(usdc(&mut s, 47_000), UnitPrice::from_usdc(55_250)); // half recovered
        assert_eq!(usdc(&mut s, 77_000), UnitPrice::from_usdc(65_000));
    }

    #[test]
    fn realised_volatility_matches_the_configured_one() {
        let config = MarketConfig {
            jumps_per_day: 0.0,
            step_ms: 1_000,
            ..market()
        };
        let mut m = SyntheticMarket::new(11, config).unwrap();
        let steps = 86_400u64;
        let mut sum_sq = 0.0;
        let mut previous = 0.0;
        for k in 1..=steps {
            let lr = m.log_return_after(k);
            sum_sq += (lr - previous) * (lr - previous);
            previous = lr;
        }
        let dt_years = 1_000.0 / MS_PER_YEAR;
        let vol = libm::sqrt(sum_sq / (steps as f64 * dt_years));
        assert!((vol - 0.8).abs() < 0.01, "realised {vol}");
    }

    #[test]
    fn jumps_arrive_at_the_configured_rate() {
        // One jump every 100 s on average, no diffusion: count the steps whose price moved.
        let config = MarketConfig {
            vol_annual: 0.0,
            jumps_per_day: 864.0,
            jump_log_std: 0.05,
            step_ms: 1_000,
            ..market()
        };
        let mut s = source(5, config);
        let mut moves = 0;
        let mut previous = s.observe(btc(), T0).unwrap().price;
        for k in 1..=100_000u64 {
            let price = s.observe(btc(), T0 + k * 1_000).unwrap().price;
            moves += u32::from(price != previous);
            previous = price;
        }
        // Expected 995 (1 - e^-0.01 per step); Poisson spread is about 32.
        assert!((900..1_100).contains(&moves), "{moves} jumps");
    }

    #[test]
    fn observers_see_their_own_bounded_noise() {
        let at = T0 + 5_000;
        let mut plain = source(9, market());
        let market_price = plain.observe(btc(), at).unwrap();
        let noisy = |observer| {
            source(9, market())
                .with_noise(ObserverNoise {
                    observer,
                    noise_bps: 5,
                })
                .unwrap()
                .observe(btc(), at)
                .unwrap()
        };
        let (a, b) = (noisy(0), noisy(1));
        assert_ne!(a.price, b.price);
        assert_eq!(noisy(0), a, "reproducible");
        for q in [a, b] {
            assert_eq!(q.observed_at_ms, market_price.observed_at_ms);
            // 4 sigma of 5 bps is 20 bps.
            let limit = market_price.price.micros() / 10_000 * 21;
            assert!((q.price.micros() - market_price.price.micros()).abs() <= limit);
        }
        let silent = source(9, market())
            .with_noise(ObserverNoise {
                observer: 3,
                noise_bps: 0,
            })
            .unwrap()
            .observe(btc(), at);
        assert_eq!(silent, Some(market_price));
    }

    #[test]
    fn market_configs_are_checked() {
        let bad = [
            (
                MarketConfig {
                    step_ms: 0,
                    ..market()
                },
                MarketError::StepOutOfRange,
            ),
            (
                MarketConfig {
                    vol_annual: f64::NAN,
                    ..market()
                },
                MarketError::ParameterOutOfRange("vol_annual"),
            ),
            (
                MarketConfig {
                    jump_log_std: -0.1,
                    ..market()
                },
                MarketError::ParameterOutOfRange("jump_log_std"),
            ),
            (
                MarketConfig {
                    price_start: UnitPrice::ZERO,
                    ..market()
                },
                MarketError::PriceStartOutOfRange,
            ),
            (
                MarketConfig {
                    horizon_ms: u64::MAX,
                    ..market()
                },
                MarketError::HorizonTooLong,
            ),
            (
                MarketConfig {
                    crashes: vec![Crash {
                        start_ms: 0,
                        fall_ms: 1,
                        hold_ms: 0,
                        recover_ms: 1,
                        depth_bps: 10_000,
                    }],
                    ..market()
                },
                MarketError::CrashDepthOutOfRange,
            ),
        ];
        for (config, error) in bad {
            assert_eq!(config.check(), Err(error));
        }
        assert_eq!(
            SyntheticSource::new(1, vec![market(), market()]).err(),
            Some(MarketError::DuplicateAsset)
        );
        assert_eq!(
            source(1, market())
                .with_noise(ObserverNoise {
                    observer: 0,
                    noise_bps: 1_001
                })
                .err(),
            Some(MarketError::NoiseOutOfRange)
        );
    }
}
