//! The economy of a lab run: the honest price path and the lies told about it, the
//! exchange's protections a run switches off for comparison, and what the run measures of
//! the economy's integrity.
//!
//! Owns: the `[economy]` and `[[lie]]` sections of a scenario file, validated into
//! [`Economy`] (unknown fields refused, every error naming the field); the validators' price
//! sources inside the lab ([`prices::VenueSource`], one per venue) and the honest truth they
//! depart from ([`prices::Truth`]); [`Protection`], the switches a comparison run turns off; and
//! [`tally::EconomyTally`], the per-height measurements of index error, insurance fund, bad
//! debt and liquidations.
//! Never: reads a clock or draws entropy (the price path is a pure function of the seed and
//! simulated time); changes anything a production validator runs (the lab builds the
//! genesis and the price sources it hands the validators it starts).
//! Bounds: at most [`MOVES_MAX`] price moves and [`LIES_MAX`] lies; 1 to [`VENUES_MAX`]
//! venues per validator.

pub mod options;
pub mod prices;
pub mod protections;
pub mod tally;

pub use options::OptionsSpec;
pub use protections::Protection;

use crate::scenario::{ScenarioError, range, range_signed};
use serde::{Deserialize, Serialize};

/// Most scripted moves of the honest price.
pub const MOVES_MAX: usize = 16;
/// Most lies in a scenario.
pub const LIES_MAX: usize = 32;
/// Most venues a validator's observer reads.
pub const VENUES_MAX: u8 = 5;
/// Largest insurance fund a scenario capitalises, USDC.
pub const INSURANCE_USDC_MAX: i64 = 1_000_000_000;

/// The economy of a scenario, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Economy {
    /// USDC the bridge pays into the insurance fund when the market opens.
    pub insurance_usdc: i64,
    /// Venues each validator's observer reads; its observation is what the production
    /// `bulwark_oracle::observe_sources` makes of them (the median of the majority that
    /// agrees within 1%, or none without such a majority).
    pub venues: u8,
    /// Each venue's own noise around the honest price, basis points (standard deviation).
    pub venue_noise_bps: u32,
    /// How often the market agents act, simulated milliseconds.
    pub agent_interval_ms: u64,
    /// Scripted moves of the honest price (a crash, a pump), multiplied together.
    pub moves: Vec<PriceMove>,
    /// Lies: venues printing a false price or failing, validators reporting a false one.
    pub lies: Vec<Lie>,
    /// The protections under test: the scorecard runs the same seed again with each one
    /// switched off and reports the difference.
    pub protections: Vec<Protection>,
    /// Protections switched off in this run (empty in a scenario file; set for the
    /// comparison runs).
    pub switched_off: Vec<Protection>,
    /// The genesis' perpetual funding interval, milliseconds (`None`: the exchange's
    /// default, an hour): a short one lets a run of seconds see funding paid.
    pub funding_interval_ms: Option<u64>,
    /// The genesis' cap on one interval's funding rate, parts per million (`None`: the
    /// default, 750): scaled with a short interval it keeps the hourly cap's proportions.
    pub funding_rate_max_ppm: Option<i64>,
    /// The genesis' half-life of the perpetual's book-depth average, which is also how often
    /// the depth reference refreshes, milliseconds (`None`: the exchange's defaults, 5 and 1
    /// minutes). The default average starts at zero and barely moves in a run of seconds, so
    /// the backstop's room (one book of the depth shown) and the margin tiers stay at their
    /// floor, as on a venue that has just listed. A half-life of a second stands for a venue
    /// whose book has rested at the depth the makers quote for minutes before the run: the
    /// backstop has room, as on a venue that has traded for hours.
    pub depth_half_life_ms: Option<u64>,
    /// The genesis' cap on the liquidation backstop's position in one perpetual, bps of the
    /// depth its book has shown (`None`: the default, 10,000, one book; 0: no cap). Above one
    /// book the backstop takes more of a crash and deleverages less, and a JELLY whale hands
    /// it more.
    pub backstop_depth_bps: Option<i64>,
    /// How far the index's move may leave a perpetual's resting quote behind before the
    /// exchange cancels it, bps (`PriceBand::stale_quote_bps`; `None`: the default, 20; 0:
    /// never, as `stale-quotes` off). Wider, fewer quotes are cancelled in a crash and a leader
    /// holding makers' cancels back takes more.
    pub stale_quote_bps: Option<i64>,
    /// The option series the agents' set-up lists (`None`: the perpetual alone); a run
    /// that lists options starts its clock at [`options::OPTIONS_EPOCH_MS`].
    pub options: Option<OptionsSpec>,
}

impl Default for Economy {
    fn default() -> Self {
        Self {
            insurance_usdc: 0,
            venues: 3,
            venue_noise_bps: 2,
            agent_interval_ms: 100,
            moves: Vec::new(),
            lies: Vec::new(),
            protections: Vec::new(),
            switched_off: Vec::new(),
            funding_interval_ms: None,
            funding_rate_max_ppm: None,
            depth_half_life_ms: None,
            backstop_depth_bps: None,
            stale_quote_bps: None,
            options: None,
        }
    }
}

impl Economy {
    /// The factor the scripted moves apply to the honest market `since_ms` into the run.
    pub fn moved(&self, since_ms: u64) -> f64 {
        self.moves.iter().map(|m| m.multiplier(since_ms)).product()
    }

    /// Whether `protection` is switched off in this run.
    pub fn is_off(&self, protection: Protection) -> bool {
        self.switched_off.contains(&protection)
    }

    /// Writes the scenario's funding and depth parameters into the genesis the lab builds
    /// (before any protection is switched off, so `funding-clamp` off overrides the cap and
    /// `risk-limits` off removes the depth limits).
    pub fn apply_genesis(&self, genesis: &mut bulwark_exchange::Genesis) {
        if let Some(interval_ms) = self.funding_interval_ms {
            genesis.params.funding_interval_ms = interval_ms;
        }
        if let Some(max_ppm) = self.funding_rate_max_ppm {
            genesis.params.funding_rate_max_ppm = max_ppm;
        }
        if let (Some(half_life_ms), Some(limits)) =
            (self.depth_half_life_ms, genesis.params.risk_limits.as_mut())
        {
            limits.depth_half_life_ms = half_life_ms;
            limits.refresh_ms = half_life_ms;
        }
        if let (Some(bps), Some(limits)) =
            (self.backstop_depth_bps, genesis.params.risk_limits.as_mut())
        {
            limits.backstop_depth_bps = bps;
        }
        if let Some(bps) = self.stale_quote_bps {
            genesis.params.band_perpetual.stale_quote_bps = bps;
        }
    }
}

/// A move of the honest price: from `at_ms` it changes linearly by `change_bps` over
/// `ramp_ms`, holds `hold_ms`, and returns linearly over `back_ms` (`back_ms = None`: it
/// stays). -3000 is a 30% crash; 5000 a 50% pump.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PriceMove {
    pub at_ms: u64,
    pub ramp_ms: u64,
    pub hold_ms: u64,
    pub back_ms: Option<u64>,
    pub change_bps: i32,
}

impl PriceMove {
    /// The multiplier of the honest price at `at_ms` (since the run began).
    pub fn multiplier(&self, at_ms: u64) -> f64 {
        let Some(since) = at_ms.checked_sub(self.at_ms) else {
            return 1.0;
        };
        let shape = if since < self.ramp_ms {
            since as f64 / self.ramp_ms as f64
        } else if since < self.ramp_ms + self.hold_ms {
            1.0
        } else if let Some(back_ms) = self.back_ms {
            let returning = since - self.ramp_ms - self.hold_ms;
            if returning < back_ms {
                1.0 - returning as f64 / back_ms as f64
            } else {
                0.0
            }
        } else {
            1.0
        };
        1.0 + f64::from(self.change_bps) / 10_000.0 * shape
    }
}

/// Who tells a lie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liar {
    /// A venue every validator reads (its index among the venues).
    Venue(u8),
    /// These validators' observers (a coordinated lie): every venue they read carries it, so
    /// their observation does (or, for silence, there is none).
    Validators(Vec<usize>),
}

/// A lie from `at_ms` for `for_ms`: the liar reports `price_bps` of the honest price, or
/// nothing (a venue that fails, a validator that stops reporting) when `price_bps` is 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lie {
    pub liar: Liar,
    pub at_ms: u64,
    pub for_ms: u64,
    pub price_bps: u32,
}

impl Lie {
    pub fn active(&self, at_ms: u64) -> bool {
        (self.at_ms..self.at_ms.saturating_add(self.for_ms)).contains(&at_ms)
    }
}

/// The `[economy]` section as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEconomy {
    insurance_usdc: Option<i64>,
    venues: Option<u8>,
    venue_noise_bps: Option<u32>,
    agent_interval_ms: Option<u64>,
    #[serde(default, rename = "move")]
    moves: Vec<RawMove>,
    #[serde(default)]
    protections: Vec<Protection>,
    funding_interval_s: Option<f64>,
    funding_rate_max_ppm: Option<i64>,
    depth_half_life_s: Option<f64>,
    backstop_depth_bps: Option<i64>,
    stale_quote_bps: Option<i64>,
    options: Option<options::RawOptions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMove {
    at_s: f64,
    ramp_s: f64,
    #[serde(default)]
    hold_s: f64,
    back_s: Option<f64>,
    change_bps: i32,
}

/// A `[[lie]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLie {
    venue: Option<u8>,
    validators: Option<Vec<usize>>,
    at_s: f64,
    for_s: f64,
    price_bps: u32,
}

/// Validates the `[economy]` section and the `[[lie]]`s of a scenario of `n` validators.
pub(crate) fn validate(
    raw: Option<RawEconomy>,
    lies: Vec<RawLie>,
    n: usize,
) -> Result<Option<Economy>, ScenarioError> {
    if raw.is_none() && lies.is_empty() {
        return Ok(None);
    }
    let mut economy = Economy::default();
    if let Some(raw) = raw {
        if let Some(usdc) = raw.insurance_usdc {
            range_signed("economy.insurance_usdc", usdc, 0, INSURANCE_USDC_MAX as u64)?;
            economy.insurance_usdc = usdc;
        }
        if let Some(venues) = raw.venues {
            range(
                "economy.venues",
                u64::from(venues),
                1,
                u64::from(VENUES_MAX),
            )?;
            economy.venues = venues;
        }
        if let Some(noise) = raw.venue_noise_bps {
            range("economy.venue_noise_bps", u64::from(noise), 0, 1_000)?;
            economy.venue_noise_bps = noise;
        }
        if let Some(interval) = raw.agent_interval_ms {
            range("economy.agent_interval_ms", interval, 10, 60_000)?;
            economy.agent_interval_ms = interval;
        }
        if raw.moves.len() > MOVES_MAX {
            return Err(ScenarioError::Economy(format!(
                "economy.move: {} moves, more than {MOVES_MAX}",
                raw.moves.len()
            )));
        }
        for (index, m) in raw.moves.into_iter().enumerate() {
            let field = |name: &str| format!("economy.move[{index}].{name}");
            if !(-9_000..=50_000).contains(&m.change_bps) || m.change_bps == 0 {
                return Err(ScenarioError::Economy(format!(
                    "{}: {} is not a non-zero change within -9000..=50000 bps",
                    field("change_bps"),
                    m.change_bps
                )));
            }
            economy.moves.push(PriceMove {
                at_ms: seconds(&field("at_s"), m.at_s)?,
                ramp_ms: seconds(&field("ramp_s"), m.ramp_s)?.max(1),
                hold_ms: seconds(&field("hold_s"), m.hold_s)?,
                back_ms: m
                    .back_s
                    .map(|s| seconds(&field("back_s"), s).map(|ms| ms.max(1)))
                    .transpose()?,
                change_bps: m.change_bps,
            });
        }
        for (index, p) in raw.protections.iter().enumerate() {
            if raw.protections[..index].contains(p) {
                return Err(ScenarioError::Economy(format!(
                    "economy.protections[{index}]: {} listed twice",
                    p.name()
                )));
            }
        }
        economy.protections = raw.protections;
        if let Some(s) = raw.funding_interval_s {
            let ms = seconds("economy.funding_interval_s", s)?;
            range("economy.funding_interval_s", ms, 1_000, 3_600_000)?;
            economy.funding_interval_ms = Some(ms);
        }
        if let Some(ppm) = raw.funding_rate_max_ppm {
            range_signed("economy.funding_rate_max_ppm", ppm, 0, 100_000)?;
            economy.funding_rate_max_ppm = Some(ppm);
        }
        if let Some(s) = raw.depth_half_life_s {
            let ms = seconds("economy.depth_half_life_s", s)?;
            // The genesis' bounds on both (`RiskLimitParams::validate`).
            range("economy.depth_half_life_s", ms, 1_000, 86_400_000)?;
            economy.depth_half_life_ms = Some(ms);
        }
        if let Some(bps) = raw.backstop_depth_bps {
            // The genesis' bound (`RiskLimitParams::validate`): up to 10,000 books.
            range_signed("economy.backstop_depth_bps", bps, 0, 100_000_000)?;
            economy.backstop_depth_bps = Some(bps);
        }
        if let Some(bps) = raw.stale_quote_bps {
            // The genesis' bound (`ExchangeParams::check`): at most the band's 5%.
            range_signed("economy.stale_quote_bps", bps, 0, 500)?;
            economy.stale_quote_bps = Some(bps);
        }
        if let Some(raw) = raw.options {
            economy.options = Some(options::validate(raw)?);
        }
    }
    if lies.len() > LIES_MAX {
        return Err(ScenarioError::Economy(format!(
            "lie: {} lies, more than {LIES_MAX}",
            lies.len()
        )));
    }
    for (index, raw) in lies.into_iter().enumerate() {
        let field = |name: &str| format!("lie[{index}].{name}");
        let liar = match (raw.venue, raw.validators) {
            (Some(venue), None) => {
                if venue >= economy.venues {
                    return Err(ScenarioError::Economy(format!(
                        "{}: venue {venue} does not exist (economy.venues = {})",
                        field("venue"),
                        economy.venues
                    )));
                }
                Liar::Venue(venue)
            }
            (None, Some(validators)) => {
                if validators.is_empty() {
                    return Err(ScenarioError::Economy(format!(
                        "{}: name at least one validator",
                        field("validators")
                    )));
                }
                for v in &validators {
                    if *v >= n {
                        return Err(ScenarioError::NoSuchValidator {
                            field: field("validators"),
                            validator: *v,
                            n,
                        });
                    }
                }
                Liar::Validators(validators)
            }
            _ => {
                return Err(ScenarioError::Economy(format!(
                    "lie[{index}]: give exactly one of `venue` and `validators`"
                )));
            }
        };
        range(&field("price_bps"), u64::from(raw.price_bps), 0, 100_000)?;
        economy.lies.push(Lie {
            liar,
            at_ms: seconds(&field("at_s"), raw.at_s)?,
            for_ms: seconds(&field("for_s"), raw.for_s)?.max(1),
            price_bps: raw.price_bps,
        });
    }
    Ok(Some(economy))
}

fn seconds(field: &str, s: f64) -> Result<u64, ScenarioError> {
    crate::scenario::millis(field, s, crate::scenario::SECONDS_MAX * 1_000)
}
