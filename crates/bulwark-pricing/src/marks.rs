//! Mark prices for listed options from a fitted smile, with an aged fallback.
//!
//! Owns: [`Smile`] (a fitted SVI smile with its forward, time and rate), [`ExpiryMarks`] (the
//! smile an expiry is marked from, fresh or aged), the ageing rule [`AgeingRule`], and
//! [`MarkPrice`].
//! Never: reads a clock (the caller passes ages in its own milliseconds), or returns a mark
//! outside `[discounted intrinsic, discounted forward]` for a call or
//! `[discounted intrinsic, discounted strike]` for a put.
//! Bounds: O(1) per mark.
//!
//! Selection rule ([`ExpiryMarks::select`]): a fresh fit with at least
//! `AgeingRule::good_quotes_min` unflagged quotes is used as is. Otherwise the previous smile is
//! used, aged: its vol at the strike's current log-moneyness `k = ln(K / F_now)` is pulled toward
//! its at-the-money vol as `vol_atm + lambda (vol(k) - vol_atm)` with
//! `lambda = 2^(-age_ms / flatten_half_life_ms)`, so the smile's shape fades while its level
//! stays; beyond `age_ms_max` it is refused ([`PricingError::SmileTooOld`]). With neither, the
//! expiry has no marks ([`PricingError::NoSmile`]).

use crate::black::{
    Black76, OptionKind, VOL_MAX, VOL_MIN, check_level, check_rate, check_time_years,
    intrinsic_value, upper_bound,
};
use crate::error::{Input, PricingError, check_output};
use crate::fit::SmileFit;
use crate::svi::SviParams;

/// A fitted smile for one expiry: SVI total variance in `k = ln(K / forward)`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Smile {
    params: SviParams,
    forward: f64,
    time_years: f64,
}

impl Smile {
    /// Validates forward and time as in [`Black76::new`].
    pub fn new(params: SviParams, forward: f64, time_years: f64) -> Result<Self, PricingError> {
        let forward = check_level(forward, Input::Forward)?;
        let time_years = check_time_years(time_years)?;
        Ok(Self {
            params,
            forward,
            time_years,
        })
    }

    /// The smile of a fit.
    pub fn from_fit(fit: &SmileFit) -> Self {
        Self {
            params: fit.params,
            forward: fit.forward,
            time_years: fit.time_years,
        }
    }

    /// SVI parameters.
    pub const fn params(&self) -> &SviParams {
        &self.params
    }

    /// Forward at fit time.
    pub const fn forward(&self) -> f64 {
        self.forward
    }

    /// Time to expiry at fit time, in years.
    pub const fn time_years(&self) -> f64 {
        self.time_years
    }

    /// Vol at log-moneyness `k`, clamped into `[VOL_MIN, VOL_MAX]`.
    fn vol_at(&self, k: f64) -> Result<f64, PricingError> {
        let vol = self.params.vol(k, self.time_years)?;
        Ok(vol.clamp(VOL_MIN, VOL_MAX))
    }
}

/// How an expiry falls back to its previous smile. No `Default`: the exchange sets it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AgeingRule {
    /// Oldest previous smile used, in the caller's milliseconds.
    pub age_ms_max: u64,
    /// Age at which the previous smile's shape is halved toward its ATM vol (0: flat at once).
    pub flatten_half_life_ms: u64,
    /// Fewest unflagged quotes for a fresh fit to be used.
    pub good_quotes_min: usize,
}

/// Where a mark's vol came from.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum MarkSource {
    /// The fresh fit.
    Fitted,
    /// The previous smile, `age_ms` old, its shape scaled by `shape_weight` in `[0, 1]`.
    Aged { age_ms: u64, shape_weight: f64 },
}

/// A mark price and how it was made.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct MarkPrice {
    /// Discounted mark, inside the no-arbitrage bounds.
    pub price: f64,
    /// Black vol the mark was priced at.
    pub vol: f64,
    /// Fresh or aged smile.
    pub source: MarkSource,
    /// True if the model price had to be moved onto a bound.
    pub clamped: bool,
}

/// The smile an expiry is marked from now, with the current forward, time and rate.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct ExpiryMarks {
    smile: Smile,
    forward: f64,
    time_years: f64,
    rate: f64,
    source: MarkSource,
    vol_atm: f64,
}

impl ExpiryMarks {
    /// Marks from a fresh smile at its own forward and time.
    pub fn fresh(smile: Smile, rate: f64) -> Result<Self, PricingError> {
        let rate = check_rate(rate)?;
        let vol_atm = smile.vol_at(0.0)?;
        Ok(Self {
            smile,
            forward: smile.forward,
            time_years: smile.time_years,
            rate,
            source: MarkSource::Fitted,
            vol_atm,
        })
    }

    /// Marks from a previous smile `age_ms` old, at the current forward, time and rate, aged by
    /// `rule` (module doc). Errors with [`PricingError::SmileTooOld`] beyond `rule.age_ms_max`.
    pub fn aged(
        previous: Smile,
        age_ms: u64,
        rule: &AgeingRule,
        forward: f64,
        time_years: f64,
        rate: f64,
    ) -> Result<Self, PricingError> {
        if age_ms > rule.age_ms_max {
            return Err(PricingError::SmileTooOld {
                age_ms,
                age_ms_max: rule.age_ms_max,
            });
        }
        let forward = check_level(forward, Input::Forward)?;
        let time_years = check_time_years(time_years)?;
        let rate = check_rate(rate)?;
        let shape_weight = match rule.flatten_half_life_ms {
            // A zero half-life flattens at once.
            0 => f64::from(u8::from(age_ms == 0)),
            half_life_ms => libm::exp2(-(age_ms as f64) / half_life_ms as f64),
        };
        debug_assert!((0.0..=1.0).contains(&shape_weight), "the shape only fades");
        let vol_atm = previous.vol_at(0.0)?;
        Ok(Self {
            smile: previous,
            forward,
            time_years,
            rate,
            source: MarkSource::Aged {
                age_ms,
                shape_weight,
            },
            vol_atm,
        })
    }

    /// Applies the selection rule of the module doc to a fresh fit (if any) and the previous
    /// smile with its age (if any).
    pub fn select(
        fit: Option<&SmileFit>,
        previous: Option<(Smile, u64)>,
        rule: &AgeingRule,
        forward: f64,
        time_years: f64,
        rate: f64,
    ) -> Result<Self, PricingError> {
        if let Some(fit) = fit
            && fit.good_quote_count() >= rule.good_quotes_min
        {
            return Self::fresh(Smile::from_fit(fit), rate);
        }
        match previous {
            Some((smile, age_ms)) => Self::aged(smile, age_ms, rule, forward, time_years, rate),
            None => Err(PricingError::NoSmile),
        }
    }

    /// Where marks come from.
    pub const fn source(&self) -> MarkSource {
        self.source
    }

    /// Vol the expiry marks a strike at.
    pub fn vol(&self, strike: f64) -> Result<f64, PricingError> {
        let strike = check_level(strike, Input::Strike)?;
        let k = libm::log(strike / self.forward);
        let vol_smile = self.smile.vol_at(k)?;
        let vol = match self.source {
            MarkSource::Fitted => vol_smile,
            MarkSource::Aged { shape_weight, .. } => {
                self.vol_atm + shape_weight * (vol_smile - self.vol_atm)
            }
        };
        Ok(check_output(vol, Input::Vol)?.clamp(VOL_MIN, VOL_MAX))
    }

    /// The mark of one option, clamped between discounted intrinsic value and the discounted
    /// forward (call) or strike (put).
    pub fn mark(&self, strike: f64, kind: OptionKind) -> Result<MarkPrice, PricingError> {
        let vol = self.vol(strike)?;
        let model = Black76::new(self.forward, strike, self.time_years, vol, self.rate)?;
        let raw = model.price(kind)?;
        let discount_factor = model.discount_factor();
        let lower = intrinsic_value(kind, self.forward, strike, discount_factor);
        let upper = upper_bound(kind, self.forward, strike, discount_factor);
        let price = raw.clamp(lower, upper);
        debug_assert!(
            lower <= price && price <= upper,
            "a mark sits inside its bounds"
        );
        Ok(MarkPrice {
            price,
            vol,
            source: self.source,
            clamped: price != raw,
        })
    }
}
