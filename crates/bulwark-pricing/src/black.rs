//! Black-76 prices and greeks of European options on a forward (Black-Scholes through it).
//!
//! Owns: input validation for one option's model inputs ([`Black76`]), the discounted price and
//! the greeks [`Greeks`], and the put/call choice [`OptionKind`].
//! Never: returns NaN or infinity in an `Ok` (inputs outside the domain are a typed
//! [`PricingError`], and every output is checked finite); calls a platform float function
//! (prices use Jäckel's normalised Black formula on `libm`, greeks use `libm::exp`/`log`/`sqrt`).
//! Bounds: the domain below keeps every intermediate finite: forward and strike in
//! [[`LEVEL_MIN`], [`LEVEL_MAX`]], time in [[`TIME_YEARS_MIN`], [`TIME_YEARS_MAX`]], vol in
//! [[`VOL_MIN`], [`VOL_MAX`]], rate in [-[`RATE_ABS_MAX`], [`RATE_ABS_MAX`]].
//!
//! Conventions (undiscounted forward `F`, strike `K`, time `T` in years, vol `sigma`, rate `r`;
//! `DF = exp(-r T)`, `s = sigma sqrt(T)`, `d1 = ln(F/K)/s + s/2`, `d2 = d1 - s`, `w = +1` call,
//! `-1` put):
//! - price `= DF w (F N(w d1) - K N(w d2))`;
//! - delta `= dV/dF = w DF N(w d1)` (forward delta, discounted; spot delta under
//!   Black-Scholes is `delta * F / S`);
//! - gamma `= d2V/dF2 = DF phi(d1) / (F s)`;
//! - vega `= dV/dsigma = DF F phi(d1) sqrt(T)` per 1.00 of vol (divide by 100 for "per point");
//! - theta `= dV/dt = -dV/dT = r V - DF F phi(d1) sigma / (2 sqrt(T))`, per year of calendar
//!   time passing with `F` held fixed (QuantLib's convention for a Black process);
//! - rho `= dV/dr = -T V` with `F` held fixed (QuantLib's `rho + dividendRho` for a Black process);
//! - vanna `= d2V/dF dsigma = -DF phi(d1) d2 / sigma`;
//! - volga `= d2V/dsigma2 = vega d1 d2 / sigma`.

use crate::error::{Input, PricingError, check_output, check_positive, check_range};
use crate::lbr;

/// Smallest forward or strike accepted. Together with [`LEVEL_MAX`] bounds `|ln(F/K)|` by 70.
pub const LEVEL_MIN: f64 = 1e-15;
/// Largest forward or strike accepted.
pub const LEVEL_MAX: f64 = 1e15;
/// Shortest time to expiry accepted, in years (about 32 milliseconds).
pub const TIME_YEARS_MIN: f64 = 1e-9;
/// Longest time to expiry accepted, in years.
pub const TIME_YEARS_MAX: f64 = 100.0;
/// Smallest volatility accepted (0.0001%).
pub const VOL_MIN: f64 = 1e-6;
/// Largest volatility accepted (10,000%).
pub const VOL_MAX: f64 = 100.0;
/// Largest absolute continuously compounded rate accepted (100% a year). With
/// [`TIME_YEARS_MAX`] the discount factor stays within `exp(+-100)`.
pub const RATE_ABS_MAX: f64 = 1.0;

const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Call or put. A closed choice: there is no "none".
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionKind {
    /// Right to buy at the strike.
    Call,
    /// Right to sell at the strike.
    Put,
}

impl OptionKind {
    /// `+1.0` for a call, `-1.0` for a put.
    pub const fn sign(self) -> f64 {
        match self {
            Self::Call => 1.0,
            Self::Put => -1.0,
        }
    }
}

/// The validated inputs of one Black-76 valuation. Private fields: the constructor is the only
/// way in, so every method may rely on the domain documented in the module doc.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Black76 {
    forward: f64,
    strike: f64,
    time_years: f64,
    vol: f64,
    rate: f64,
}

/// Price and sensitivities of one option, conventions as in the module doc.
#[derive(Copy, Clone, Debug, PartialEq, serde::Serialize)]
pub struct Greeks {
    /// Discounted option price.
    pub price: f64,
    /// `dV/dF`.
    pub delta: f64,
    /// `d2V/dF2`.
    pub gamma: f64,
    /// `dV/dsigma`, per 1.00 of volatility.
    pub vega: f64,
    /// `dV/dt`, per year of calendar time.
    pub theta: f64,
    /// `dV/dr` with the forward fixed.
    pub rho: f64,
    /// `d2V/dF dsigma`.
    pub vanna: f64,
    /// `d2V/dsigma2`.
    pub volga: f64,
}

impl Black76 {
    /// Validates the inputs: each must be finite, forward, strike, time and vol positive, and all
    /// inside the domain in the module doc.
    pub fn new(
        forward: f64,
        strike: f64,
        time_years: f64,
        vol: f64,
        rate: f64,
    ) -> Result<Self, PricingError> {
        let forward = check_level(forward, Input::Forward)?;
        let strike = check_level(strike, Input::Strike)?;
        let time_years = check_time_years(time_years)?;
        check_positive(vol, Input::Vol)?;
        let vol = check_range(vol, Input::Vol, VOL_MIN, VOL_MAX)?;
        let rate = check_rate(rate)?;
        Ok(Self {
            forward,
            strike,
            time_years,
            vol,
            rate,
        })
    }

    /// Black-Scholes through Black-76: the forward is `spot * exp((rate - yield) * time)`.
    pub fn from_spot(
        spot: f64,
        strike: f64,
        time_years: f64,
        vol: f64,
        rate: f64,
        yield_rate: f64,
    ) -> Result<Self, PricingError> {
        let forward = forward_from_spot(spot, rate, yield_rate, time_years)?;
        Self::new(forward, strike, time_years, vol, rate)
    }

    /// Forward price.
    pub const fn forward(&self) -> f64 {
        self.forward
    }

    /// Strike price.
    pub const fn strike(&self) -> f64 {
        self.strike
    }

    /// Time to expiry in years.
    pub const fn time_years(&self) -> f64 {
        self.time_years
    }

    /// Black volatility.
    pub const fn vol(&self) -> f64 {
        self.vol
    }

    /// Continuously compounded rate.
    pub const fn rate(&self) -> f64 {
        self.rate
    }

    /// `exp(-rate * time)`, in `[exp(-100), exp(100)]` by the domain.
    pub fn discount_factor(&self) -> f64 {
        if self.rate == 0.0 {
            // exp(-0) is exactly 1: the same bits without the call (margin and marks price
            // at a zero rate, thousands of times a block).
            return 1.0;
        }
        libm::exp(-self.rate * self.time_years)
    }

    /// Discounted price, computed with Jäckel's normalised Black formula (full relative
    /// precision deep in and out of the money).
    pub fn price(&self, kind: OptionKind) -> Result<f64, PricingError> {
        let undiscounted = lbr::black_undiscounted(
            self.forward,
            self.strike,
            self.vol,
            self.time_years,
            kind == OptionKind::Call,
        );
        let price = check_output(self.discount_factor() * undiscounted, Input::Price)?;
        debug_assert!(price >= 0.0, "an option price is never negative");
        Ok(price)
    }

    /// Discounted price by the textbook formula `DF w (F N(w d1) - K N(w d2))`, `N` from
    /// `libm::erfc`, kept between discounted intrinsic value and the upper bound: accurate to
    /// a few `1e-16` of `max(F, K)` in absolute terms (what a profit and loss in money needs;
    /// tested against [`Self::price`]), without [`Self::price`]'s full relative precision far
    /// out of the money. Alone it is no faster than [`Self::price`] (a scenario grid's full
    /// revaluation measured 256 us against 253 us); what it allows is
    /// [`Self::price_absolute_at_forward`], which takes the log-moneyness from the caller.
    pub fn price_absolute(&self, kind: OptionKind) -> Result<f64, PricingError> {
        self.absolute(kind, self.forward, libm::log(self.forward / self.strike))
    }

    /// [`Self::price_absolute`] at another forward (validated as in [`Self::new`]) with the
    /// same strike, time, vol and rate, and `x = ln(forward / K)` supplied by the caller
    /// (checked in debug builds): a scenario grid builds one model per vol and prices every
    /// moved forward from it with `ln(F0 / K) + ln(1 + move)`, one logarithm per grid rather
    /// than per price (full revaluation 253 us -> 112 us).
    pub fn price_absolute_at_forward(
        &self,
        kind: OptionKind,
        forward: f64,
        x: f64,
    ) -> Result<f64, PricingError> {
        let forward = check_level(forward, Input::Forward)?;
        self.absolute(kind, forward, x)
    }

    fn absolute(&self, kind: OptionKind, forward: f64, x: f64) -> Result<f64, PricingError> {
        debug_assert!(
            (x - libm::log(forward / self.strike)).abs() <= 1e-12 * (1.0 + x.abs()),
            "x is ln(F / K)"
        );
        let w = kind.sign();
        let s = self.vol * libm::sqrt(self.time_years);
        let d1 = x / s + 0.5 * s;
        let d2 = d1 - s;
        let cdf = |z: f64| 0.5 * libm::erfc(-z * core::f64::consts::FRAC_1_SQRT_2);
        let undiscounted = w * (forward * cdf(w * d1) - self.strike * cdf(w * d2));
        let df = self.discount_factor();
        let lower = intrinsic_value(kind, forward, self.strike, df);
        let upper = upper_bound(kind, forward, self.strike, df);
        check_output((df * undiscounted).clamp(lower, upper), Input::Price)
    }

    /// Price and all greeks.
    pub fn greeks(&self, kind: OptionKind) -> Result<Greeks, PricingError> {
        let price = self.price(kind)?;
        let w = kind.sign();
        let df = self.discount_factor();
        let sqrt_t = libm::sqrt(self.time_years);
        let s = self.vol * sqrt_t;
        let x = libm::log(self.forward / self.strike);
        let d1 = x / s + 0.5 * s;
        let d2 = d1 - s;
        // phi(d1) underflows to 0 far from the money; every greek below is then 0 or finite
        // because |d1| <= 70 / 3e-11 keeps d1 * d2 finite inside the domain.
        let phi_d1 = FRAC_1_SQRT_2PI * libm::exp(-0.5 * d1 * d1);
        let vega = df * self.forward * phi_d1 * sqrt_t;
        let greeks = Greeks {
            price,
            delta: w * df * lbr::norm_cdf(w * d1),
            gamma: df * phi_d1 / (self.forward * s),
            vega,
            theta: self.rate * price - df * self.forward * phi_d1 * self.vol / (2.0 * sqrt_t),
            rho: -self.time_years * price,
            vanna: -df * phi_d1 * d2 / self.vol,
            volga: vega * d1 * d2 / self.vol,
        };
        check_greeks(&greeks)?;
        Ok(greeks)
    }
}

/// Discounted intrinsic value `DF * max(w (F - K), 0)`: the lowest price a model may give.
pub fn intrinsic_value(kind: OptionKind, forward: f64, strike: f64, discount_factor: f64) -> f64 {
    discount_factor * (kind.sign() * (forward - strike)).max(0.0)
}

/// Discounted upper bound of an option price: `DF * F` for a call, `DF * K` for a put.
pub fn upper_bound(kind: OptionKind, forward: f64, strike: f64, discount_factor: f64) -> f64 {
    match kind {
        OptionKind::Call => discount_factor * forward,
        OptionKind::Put => discount_factor * strike,
    }
}

/// The forward `spot * exp((rate - yield_rate) * time_years)` of Black-Scholes, validated to the
/// same domain as [`Black76::new`]'s forward.
pub fn forward_from_spot(
    spot: f64,
    rate: f64,
    yield_rate: f64,
    time_years: f64,
) -> Result<f64, PricingError> {
    let spot = check_level(spot, Input::Spot)?;
    let rate = check_rate(rate)?;
    let yield_rate = check_range(yield_rate, Input::Yield, -RATE_ABS_MAX, RATE_ABS_MAX)?;
    let time_years = check_time_years(time_years)?;
    let forward = spot * libm::exp((rate - yield_rate) * time_years);
    check_level(forward, Input::Forward)
}

pub(crate) fn check_level(value: f64, input: Input) -> Result<f64, PricingError> {
    check_positive(value, input)?;
    check_range(value, input, LEVEL_MIN, LEVEL_MAX)
}

pub(crate) fn check_time_years(value: f64) -> Result<f64, PricingError> {
    check_positive(value, Input::TimeYears)?;
    check_range(value, Input::TimeYears, TIME_YEARS_MIN, TIME_YEARS_MAX)
}

pub(crate) fn check_rate(value: f64) -> Result<f64, PricingError> {
    check_range(value, Input::Rate, -RATE_ABS_MAX, RATE_ABS_MAX)
}

fn check_greeks(greeks: &Greeks) -> Result<(), PricingError> {
    let values = [
        greeks.price,
        greeks.delta,
        greeks.gamma,
        greeks.vega,
        greeks.theta,
        greeks.rho,
        greeks.vanna,
        greeks.volga,
    ];
    for value in values {
        check_output(value, Input::Price)?;
    }
    debug_assert!(
        greeks.gamma >= 0.0 && greeks.vega >= 0.0,
        "gamma and vega are never negative"
    );
    Ok(())
}
