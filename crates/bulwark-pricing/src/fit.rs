//! Robust fit of one expiry's smile to market quotes, flagging the quotes it does not trust.
//!
//! Owns: quote validation ([`SmileQuote`] to an implied vol, or an [`OutlierReason`]), the
//! iteratively reweighted least squares (IRLS) loop with a [`RobustLoss`], outlier flags, and the
//! [`SmileFit`] report (parameters, fitted vols, residuals, outliers, butterfly violations).
//! Never: drops a quote silently (every input quote has a row in the report, in input order),
//! panics or returns NaN on bad quotes, or uses randomness: the same quotes give the same bits.
//! Bounds: at most [`QUOTES_MAX`] quotes; at most [`IRLS_ITERATIONS_MAX`] reweighting rounds,
//! each one bounded Nelder-Mead search (see `svi_lsq`).
//!
//! Method. Each valid quote becomes `(k, vol)` with `k = ln(K/F)`. The least-squares target is
//! the total variance `w = vol^2 T`, with weight `base / (2 vol T)^2` so that squared variance
//! residuals approximate squared vol residuals (and a vol residual is a price residual divided by
//! vega: this is vega weighting of prices). `base` is the quote's `weight` (default 1) times a
//! bid-ask factor `min(1, SPREAD_VOL_REF / min(spread_vol, SPREAD_VOL_MAX))`. Residuals
//! `r = vol_fitted - vol` are scaled by `s = max(1.4826 MAD(r), SCALE_VOL_MIN)`; the robust
//! weight is Tukey's biweight `(1 - (r / (c s))^2)^2` for `|r| < c s` (`c = TUKEY_C`) or
//! Huber's `min(1, c / |r / s|)` (`c = HUBER_C`). The first round starts from a neighbour screen:
//! each quote against the median of its nearest neighbours in strike, which a gross outlier cannot
//! move. A quote is flagged
//! [`OutlierReason::Residual`] when `|r| > OUTLIER_SCALES * s` after the last round.

use crate::arbitrage::{ButterflyViolation, LogMoneynessGrid, butterfly_violations};
use crate::black::{
    Black76, OptionKind, VOL_MAX, VOL_MIN, check_level, check_rate, check_time_years,
};
use crate::error::{Input, PricingError};
use crate::implied::implied_vol;
use crate::svi::{LOG_MONEYNESS_ABS_MAX, SviParams};
use crate::svi_lsq::{Sample, fit_weighted};

/// Most quotes in one fit; a request over it is refused whole. 10_000 quotes fit in about a
/// second on one core.
pub const QUOTES_MAX: usize = 10_000;
/// Fewest valid quotes that are fitted (SVI has five parameters).
pub const QUOTES_MIN: usize = 5;
/// Most reweighting rounds; Tukey weights settle in under ten on corrupted smiles.
pub const IRLS_ITERATIONS_MAX: usize = 20;
/// Reweighting stops once no weight moves by more than this.
pub const IRLS_WEIGHT_TOLERANCE: f64 = 1e-6;
/// Tukey biweight tuning constant (95% efficiency under normal noise).
pub const TUKEY_C: f64 = 4.685;
/// Huber tuning constant (95% efficiency under normal noise).
pub const HUBER_C: f64 = 1.345;
/// MAD to standard deviation under normal noise.
pub const MAD_TO_SIGMA: f64 = 1.4826;
/// Floor of the residual scale, in vol (0.05 vol points): quotes agreeing to better than this are
/// never flagged, so a near-perfect fit does not turn rounding noise into outliers.
pub const SCALE_VOL_MIN: f64 = 0.0005;
/// A residual beyond this many scales flags the quote (Tukey's rejection point).
pub const OUTLIER_SCALES: f64 = TUKEY_C;
/// Bid-ask width in vol at which a quote keeps full weight; wider quotes weigh proportionally
/// less (1 vol point).
pub const SPREAD_VOL_REF: f64 = 0.01;
/// Widest bid-ask width in vol counted; wider (or vega-less) markets keep 1% of full weight.
pub const SPREAD_VOL_MAX: f64 = 1.0;
/// Smallest quote weight accepted.
pub const WEIGHT_MIN: f64 = 1e-6;
/// Largest quote weight accepted. With `WEIGHT_MIN` and the bid-ask factor, normalised weights
/// never underflow to zero nor overflow.
pub const WEIGHT_MAX: f64 = 1e6;
/// Neighbours on each side in the initial screen.
const SCREEN_NEIGHBOURS: usize = 3;
/// Points of the butterfly grid reported with each fit.
pub const FIT_GRID_POINTS: usize = 201;

/// What a quote states: an implied vol, or a discounted option price to invert.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum QuoteValue {
    /// Black volatility, decimal.
    Vol(f64),
    /// Discounted option price of the given kind.
    Price { kind: OptionKind, price: f64 },
}

/// One market quote for the expiry being fitted.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SmileQuote {
    /// Strike price.
    pub strike: f64,
    /// The quoted level.
    pub value: QuoteValue,
    /// Optional `(bid, ask)` in the units of `value`: vols for a vol quote, prices for a price
    /// quote. Used to reject crossed markets and to down-weight wide ones.
    pub bid_ask: Option<(f64, f64)>,
    /// Optional weight in `[WEIGHT_MIN, WEIGHT_MAX]` multiplying the bid-ask factor (default 1).
    pub weight: Option<f64>,
}

/// Loss applied to residuals by the reweighting loop.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RobustLoss {
    /// Plain weighted least squares: one round, robust weights fixed to 1.
    LeastSquares,
    /// Huber: quadratic near zero, linear beyond `HUBER_C` scales.
    Huber,
    /// Tukey's biweight: zero weight beyond `TUKEY_C` scales.
    Tukey,
}

/// Why a quote was excluded from, or distrusted by, the fit.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum OutlierReason {
    /// An input was NaN, infinite, non-positive or out of the model's domain.
    InvalidInput { input: Input },
    /// Bid above ask.
    Crossed { bid: f64, ask: f64 },
    /// Price below discounted intrinsic value.
    BelowIntrinsic { price: f64, intrinsic: f64 },
    /// Price at or above the discounted forward (call) or strike (put).
    AboveUpperBound { price: f64, bound: f64 },
    /// Price equal to intrinsic value: no volatility information.
    NoTimeValue { price: f64, intrinsic: f64 },
    /// Valid quote whose vol lies more than `OUTLIER_SCALES` residual scales from the fit.
    Residual {
        residual_vol: f64,
        threshold_vol: f64,
    },
}

impl OutlierReason {
    /// Stable snake-case code, used by the JSON lines answers.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput { .. } => "invalid_input",
            Self::Crossed { .. } => "crossed",
            Self::BelowIntrinsic { .. } => "below_intrinsic",
            Self::AboveUpperBound { .. } => "above_upper_bound",
            Self::NoTimeValue { .. } => "no_time_value",
            Self::Residual { .. } => "residual",
        }
    }

    /// True for reasons found before fitting (the quote was never fitted).
    pub const fn is_invalid(&self) -> bool {
        !matches!(self, Self::Residual { .. })
    }
}

/// One input quote after the fit, in input order.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FittedQuote {
    /// The strike, if it was valid.
    pub strike: Option<f64>,
    /// `ln(K/F)`, if the strike was valid.
    pub log_moneyness: Option<f64>,
    /// The quote's implied vol, if it could be obtained.
    pub vol_market: Option<f64>,
    /// The fitted smile's vol at this strike, if the strike was valid.
    pub vol_fitted: Option<f64>,
    /// `vol_fitted - vol_market`, when both exist.
    pub residual_vol: Option<f64>,
    /// Final weight in the fit (base times robust weight, normalised to sum to 1); 0 if excluded.
    pub weight: f64,
    /// Why the quote is distrusted, if it is.
    pub outlier: Option<OutlierReason>,
}

/// A fitted smile and the evidence for it.
#[derive(Clone, Debug, PartialEq)]
pub struct SmileFit {
    /// Fitted raw SVI parameters (total variance in `k = ln(K/F)`).
    pub params: SviParams,
    /// Forward the smile was fitted at.
    pub forward: f64,
    /// Time to expiry in years.
    pub time_years: f64,
    /// One row per input quote, in input order.
    pub quotes: Vec<FittedQuote>,
    /// Robust residual scale in vol, floored at `SCALE_VOL_MIN`.
    pub scale_vol: f64,
    /// Reweighting rounds run.
    pub iterations: usize,
    /// Grid points where `g(k) < 0`, over the quoted range widened by half its width each side.
    pub butterfly_violations: Vec<ButterflyViolation>,
}

impl SmileFit {
    /// Fitted at-the-money-forward vol (`k = 0`).
    pub fn vol_atm(&self) -> f64 {
        self.params
            .vol(0.0, self.time_years)
            .expect("k = 0 and a valid time are in range")
    }

    /// Quotes that were fitted and not flagged.
    pub fn good_quote_count(&self) -> usize {
        self.quotes.iter().filter(|q| q.outlier.is_none()).count()
    }

    /// Indices (input order) of flagged quotes.
    pub fn outlier_indices(&self) -> Vec<usize> {
        (0..self.quotes.len())
            .filter(|&i| self.quotes[i].outlier.is_some())
            .collect()
    }
}

/// A quote that passed validation.
#[derive(Copy, Clone, Debug)]
struct Valid {
    index: usize,
    k: f64,
    vol: f64,
    base_weight: f64,
}

/// Fits a smile to `quotes` for the expiry with this forward, time and rate (the rate discounts
/// price quotes). Errors: invalid forward, time or rate; more than `QUOTES_MAX` quotes; fewer
/// than `QUOTES_MIN` valid quotes. Bad quotes are never an error: they are flagged.
pub fn fit_smile(
    forward: f64,
    time_years: f64,
    rate: f64,
    quotes: &[SmileQuote],
    loss: RobustLoss,
) -> Result<SmileFit, PricingError> {
    if quotes.len() > QUOTES_MAX {
        return Err(PricingError::TooManyQuotes {
            count: quotes.len(),
            max: QUOTES_MAX,
        });
    }
    let forward = check_level(forward, Input::Forward)?;
    let time_years = check_time_years(time_years)?;
    let rate = check_rate(rate)?;
    let mut rows: Vec<FittedQuote> = Vec::with_capacity(quotes.len());
    let mut valid: Vec<Valid> = Vec::with_capacity(quotes.len());
    for (index, quote) in quotes.iter().enumerate() {
        let (row, checked) = validate(index, quote, forward, time_years, rate);
        rows.push(row);
        valid.extend(checked);
    }
    if valid.len() < QUOTES_MIN {
        return Err(PricingError::TooFewQuotes {
            usable: valid.len(),
            min: QUOTES_MIN,
        });
    }
    let (params, robust, scale_vol, iterations) = reweight(&valid, time_years, loss);
    let mut fit = SmileFit {
        params,
        forward,
        time_years,
        quotes: rows,
        scale_vol,
        iterations,
        butterfly_violations: Vec::new(),
    };
    finish_rows(&mut fit, &valid, &robust);
    fit.butterfly_violations = butterfly_violations(&fit.params, &fit_grid(&valid));
    debug_assert_eq!(fit.quotes.len(), quotes.len(), "one row per input quote");
    Ok(fit)
}

/// Validates one quote: its report row so far, and the fit input if it is usable.
fn validate(
    index: usize,
    quote: &SmileQuote,
    forward: f64,
    time_years: f64,
    rate: f64,
) -> (FittedQuote, Option<Valid>) {
    let mut row = FittedQuote {
        strike: None,
        log_moneyness: None,
        vol_market: None,
        vol_fitted: None,
        residual_vol: None,
        weight: 0.0,
        outlier: None,
    };
    let strike = match check_level(quote.strike, Input::Strike) {
        Ok(strike) => strike,
        Err(_) => {
            row.outlier = Some(OutlierReason::InvalidInput {
                input: Input::Strike,
            });
            return (row, None);
        }
    };
    row.strike = Some(strike);
    let k = libm::log(strike / forward);
    row.log_moneyness = Some(k);
    match quote_vol(quote, forward, strike, time_years, rate) {
        Ok((vol, base_weight)) => {
            row.vol_market = Some(vol);
            (
                row,
                Some(Valid {
                    index,
                    k,
                    vol,
                    base_weight,
                }),
            )
        }
        Err(reason) => {
            row.outlier = Some(reason);
            (row, None)
        }
    }
}

/// The quote's vol and base weight, or why it has none.
fn quote_vol(
    quote: &SmileQuote,
    forward: f64,
    strike: f64,
    time_years: f64,
    rate: f64,
) -> Result<(f64, f64), OutlierReason> {
    let weight = quote.weight.unwrap_or(1.0);
    if !(WEIGHT_MIN..=WEIGHT_MAX).contains(&weight) {
        return Err(OutlierReason::InvalidInput {
            input: Input::Weight,
        });
    }
    if let Some((bid, ask)) = quote.bid_ask {
        if !(bid.is_finite() && ask.is_finite()) {
            return Err(OutlierReason::InvalidInput {
                input: Input::Price,
            });
        }
        if bid > ask {
            return Err(OutlierReason::Crossed { bid, ask });
        }
    }
    let vol = match quote.value {
        QuoteValue::Vol(vol) => {
            if !(VOL_MIN..=VOL_MAX).contains(&vol) {
                return Err(OutlierReason::InvalidInput { input: Input::Vol });
            }
            vol
        }
        QuoteValue::Price { kind, price } => {
            implied_vol(kind, forward, strike, time_years, rate, price).map_err(reason_of)?
        }
    };
    let spread_vol = match (quote.bid_ask, quote.value) {
        (None, _) => 0.0,
        (Some((bid, ask)), QuoteValue::Vol(_)) => ask - bid,
        (Some((bid, ask)), QuoteValue::Price { .. }) => {
            // A price spread is a vol spread times vega.
            let vega = Black76::new(forward, strike, time_years, vol.max(VOL_MIN), rate)
                .and_then(|model| model.greeks(OptionKind::Call))
                .map(|greeks| greeks.vega)
                .unwrap_or(0.0);
            if vega > 0.0 {
                (ask - bid) / vega
            } else {
                f64::INFINITY
            }
        }
    };
    let spread_vol = spread_vol.min(SPREAD_VOL_MAX);
    let spread_factor = if spread_vol > SPREAD_VOL_REF {
        SPREAD_VOL_REF / spread_vol
    } else {
        1.0
    };
    debug_assert!(spread_factor > 0.0 && spread_factor <= 1.0);
    Ok((vol, weight * spread_factor))
}

fn reason_of(error: PricingError) -> OutlierReason {
    match error {
        PricingError::BelowIntrinsic { price, intrinsic } => {
            OutlierReason::BelowIntrinsic { price, intrinsic }
        }
        PricingError::AboveUpperBound { price, bound } => {
            OutlierReason::AboveUpperBound { price, bound }
        }
        PricingError::NoTimeValue { price, intrinsic } => {
            OutlierReason::NoTimeValue { price, intrinsic }
        }
        PricingError::NotFinite { input }
        | PricingError::NotPositive { input }
        | PricingError::OutOfRange { input, .. }
        | PricingError::NonFiniteResult { input } => OutlierReason::InvalidInput { input },
        _ => OutlierReason::InvalidInput {
            input: Input::Price,
        },
    }
}

/// The IRLS loop. Returns the parameters, final robust weights (one per valid quote), the
/// residual scale and the number of rounds.
fn reweight(
    valid: &[Valid],
    time_years: f64,
    loss: RobustLoss,
) -> (SviParams, Vec<f64>, f64, usize) {
    let uniform = vec![1.0; valid.len()];
    let mut robust = match loss {
        RobustLoss::LeastSquares => uniform,
        RobustLoss::Huber | RobustLoss::Tukey => {
            // The screen is a starting point only. When its scale collapses (two vol levels
            // among five quotes give a zero median absolute deviation), Tukey's weights can be
            // zero for every quote; the rounds below then start from all quotes alike, as the
            // loop itself does when a round would leave fewer than `QUOTES_MIN` weighted.
            let screened = screen(valid, loss);
            if screened.iter().filter(|&&u| u > 0.0).count() < QUOTES_MIN {
                uniform
            } else {
                screened
            }
        }
    };
    let mut fit = fit_weighted(&samples(valid, &robust, time_years), None);
    let mut iterations = 1;
    if loss != RobustLoss::LeastSquares {
        while iterations < IRLS_ITERATIONS_MAX {
            let residuals = residuals(valid, &fit.params, time_years);
            let scale = robust_scale(&residuals);
            let next: Vec<f64> = residuals
                .iter()
                .map(|r| loss_weight(loss, r / scale))
                .collect();
            if next.iter().filter(|&&u| u > 0.0).count() < QUOTES_MIN {
                break;
            }
            let moved = robust
                .iter()
                .zip(&next)
                .fold(0.0_f64, |acc, (a, b)| acc.max((a - b).abs()));
            robust = next;
            let warm = Some((fit.params.m(), fit.params.sigma()));
            fit = fit_weighted(&samples(valid, &robust, time_years), warm);
            iterations += 1;
            if moved <= IRLS_WEIGHT_TOLERANCE {
                break;
            }
        }
    }
    let scale = robust_scale(&residuals(valid, &fit.params, time_years));
    (fit.params, robust, scale, iterations)
}

/// Initial robust weights: each quote against the median vol of its `SCREEN_NEIGHBOURS` nearest
/// neighbours on each side in strike order (excluding itself).
fn screen(valid: &[Valid], loss: RobustLoss) -> Vec<f64> {
    let mut order: Vec<usize> = (0..valid.len()).collect();
    order.sort_by(|&i, &j| valid[i].k.total_cmp(&valid[j].k).then(i.cmp(&j)));
    let n = order.len();
    let width = (2 * SCREEN_NEIGHBOURS).min(n - 1);
    let mut deviations = vec![0.0; n];
    for (position, &i) in order.iter().enumerate() {
        // The window of `width` neighbours closest in rank, shifted inward at the ends.
        let start = position
            .saturating_sub(SCREEN_NEIGHBOURS)
            .min(n - 1 - width);
        let mut neighbours: Vec<f64> = (start..=start + width)
            .filter(|&p| p != position)
            .map(|p| valid[order[p]].vol)
            .take(width)
            .collect();
        deviations[i] = valid[i].vol - median(&mut neighbours);
    }
    let scale = robust_scale(&deviations);
    deviations
        .iter()
        .map(|d| loss_weight(loss, d / scale))
        .collect()
}

fn samples(valid: &[Valid], robust: &[f64], time_years: f64) -> Vec<Sample> {
    let raw: Vec<f64> = valid
        .iter()
        .zip(robust)
        .map(|(v, u)| {
            let dw_dvol = 2.0 * v.vol * time_years;
            v.base_weight * u / (dw_dvol * dw_dvol)
        })
        .collect();
    let total: f64 = raw.iter().sum();
    // Callers weight at least `QUOTES_MIN` quotes, each with a base weight of at least
    // `WEIGHT_MIN`; a zero total here is a bug in this module, not bad input.
    assert!(
        total > 0.0 && total.is_finite(),
        "sample weights total {total}"
    );
    valid
        .iter()
        .zip(raw)
        .map(|(v, weight)| Sample {
            k: v.k,
            w: v.vol * v.vol * time_years,
            weight: weight / total,
        })
        .collect()
}

fn residuals(valid: &[Valid], params: &SviParams, time_years: f64) -> Vec<f64> {
    valid
        .iter()
        .map(|v| fitted_vol(params, v.k, time_years) - v.vol)
        .collect()
}

fn fitted_vol(params: &SviParams, k: f64, time_years: f64) -> f64 {
    libm::sqrt(params.total_variance_unchecked(k) / time_years)
}

/// `max(MAD_TO_SIGMA * median |r - median r|, SCALE_VOL_MIN)`.
fn robust_scale(residuals: &[f64]) -> f64 {
    let mut sorted = residuals.to_vec();
    let center = median(&mut sorted);
    let mut deviations: Vec<f64> = residuals.iter().map(|r| (r - center).abs()).collect();
    (MAD_TO_SIGMA * median(&mut deviations)).max(SCALE_VOL_MIN)
}

fn median(values: &mut [f64]) -> f64 {
    assert!(!values.is_empty(), "median of a non-empty set");
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

fn loss_weight(loss: RobustLoss, scaled: f64) -> f64 {
    match loss {
        RobustLoss::LeastSquares => 1.0,
        RobustLoss::Huber => {
            if scaled.abs() <= HUBER_C {
                1.0
            } else {
                HUBER_C / scaled.abs()
            }
        }
        RobustLoss::Tukey => {
            let t = scaled / TUKEY_C;
            if t.abs() < 1.0 {
                (1.0 - t * t) * (1.0 - t * t)
            } else {
                0.0
            }
        }
    }
}

/// Fills the fitted vols, residuals, weights and residual flags of the report rows.
fn finish_rows(fit: &mut SmileFit, valid: &[Valid], robust: &[f64]) {
    let threshold_vol = OUTLIER_SCALES * fit.scale_vol;
    let weights: Vec<f64> = samples(valid, robust, fit.time_years)
        .iter()
        .map(|s| s.weight)
        .collect();
    for row in fit.quotes.iter_mut() {
        if let Some(k) = row.log_moneyness {
            row.vol_fitted = Some(fitted_vol(&fit.params, k, fit.time_years));
        }
    }
    for (v, weight) in valid.iter().zip(weights) {
        let row = &mut fit.quotes[v.index];
        let residual_vol = row.vol_fitted.expect("valid quotes have a strike") - v.vol;
        row.residual_vol = Some(residual_vol);
        row.weight = weight;
        if residual_vol.abs() > threshold_vol {
            row.outlier = Some(OutlierReason::Residual {
                residual_vol,
                threshold_vol,
            });
        }
    }
}

/// The quoted log-moneyness range widened by half its width on each side (at least 0.1 wide).
fn fit_grid(valid: &[Valid]) -> LogMoneynessGrid {
    let (lo, hi) = valid.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| {
        (lo.min(v.k), hi.max(v.k))
    });
    let pad = (0.5 * (hi - lo)).max(0.05);
    let k_min = (lo - pad).max(-LOG_MONEYNESS_ABS_MAX);
    let k_max = (hi + pad).min(LOG_MONEYNESS_ABS_MAX);
    LogMoneynessGrid::new(k_min, k_max, FIT_GRID_POINTS)
        .expect("quoted range lies in the SVI bound")
}
