//! Option marks the state machine makes itself: a volatility smile per expiry, fitted to the
//! exchange's own option books, marks every option of that expiry at the agreed index, so no
//! block proposer chooses an option's mark.
//!
//! Owns: the fitted smile of each (underlying, expiry) ([`FittedSmile`]: replicated and
//! snapshotted), the refit at each `refit_interval_ms` boundary of block time, and each
//! block's option marks from the smile.
//! Never: takes a quote from a halted or one-sided book, or one wider than `spread_max_bps`
//! of its mid; lets a quote move the smile unchecked (the fit is `bulwark-pricing`'s robust
//! SVI: Tukey's biweight by iteratively reweighted least squares, flagging outliers);
//! leaves a mark outside `[intrinsic value, index]` for a call or `[intrinsic, strike]` for a
//! put; reads a clock (ages are in block time).
//!
//! Fallbacks: a refit with fewer than `quotes_min` good quotes keeps the previous smile, aged
//! (`bulwark_pricing::ExpiryMarks::aged`: its shape fades toward its at-the-money vol with
//! `flatten_half_life_ms`, and beyond `age_ms_max` it is dropped). An expiry with no smile
//! (a new listing before its books fill, or one whose smile was dropped) takes the
//! proposer's marks, clamped as before; once it has a smile, proposers' marks for it are
//! ignored (`PriceIgnoredReason::SurfaceGoverned`).
//!
//! Manipulation: moving a mark needs two-sided quotes in several strikes that the robust fit
//! does not flag, each of which others can trade against, and the mark is bounded as above;
//! an expiry whose books empty keeps its last smile rather than following one quote.
//!
//! Determinism: `f64` on `libm`, as all of `bulwark-pricing`, from integer inputs in the
//! state; marks are rounded to micro-USDC before they enter the state.
//! Bounds: one fit of at most `quotes_max` quotes (nearest the index first) per expiry per
//! refit interval; one Black-76 price per option per block.

use crate::event::Event;
use crate::exchange::Exchange;
use crate::instrument::{InstrumentStatus, option_kind, years_to_expiry};
use crate::params::{BPS, SurfaceMarkParams};
use bulwark_pricing::{
    AgeingRule, ExpiryMarks, QuoteValue, RobustLoss, Smile, SmileQuote, TIME_YEARS_MIN, fit_smile,
};
use bulwark_types::{AssetCode, InstrumentKind, UnitPrice};
use std::collections::BTreeMap;

/// The smile an expiry is marked from, and when it was fitted.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FittedSmile {
    pub smile: Smile,
    /// Block time of the fit, ms.
    pub fitted_at_ms: u64,
}

/// (underlying, expiry in ms) of an option series.
pub type SeriesKey = (AssetCode, u64);

/// Who set an instrument's current mark.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum MarkOrigin {
    /// A block proposer's price input (clamped for options).
    Proposer,
    /// The exchange: a perpetual's median of index plus premium, mid and last trade.
    PerpetualMedian,
    /// The exchange: the option series' smile fitted at `fitted_at_ms`.
    Smile { fitted_at_ms: u64 },
}

impl Exchange {
    /// Every option series' fitted smile.
    pub fn smiles(&self) -> impl Iterator<Item = (&SeriesKey, &FittedSmile)> {
        self.smiles.iter()
    }

    /// Who sets `instrument`'s mark.
    pub fn mark_origin(&self, instrument: &crate::Instrument) -> MarkOrigin {
        match instrument.kind {
            InstrumentKind::Perpetual if self.oracle.is_some() => MarkOrigin::PerpetualMedian,
            InstrumentKind::Option { expiry_ms, .. } => self
                .governing_smile((instrument.spec.underlying(), expiry_ms))
                .map_or(MarkOrigin::Proposer, |fitted| MarkOrigin::Smile {
                    fitted_at_ms: fitted.fitted_at_ms,
                }),
            InstrumentKind::Perpetual => MarkOrigin::Proposer,
        }
    }

    /// The smile option marks for `(asset, expiry_ms)` come from this block, if any: then a
    /// proposer's marks for the series are ignored.
    pub(crate) fn governing_smile(&self, key: SeriesKey) -> Option<&FittedSmile> {
        let params = self.params.surface_marks?;
        self.smiles.get(&key).filter(|fitted| {
            self.time.millis().saturating_sub(fitted.fitted_at_ms) <= params.age_ms_max
        })
    }

    /// Refits the smiles that are due and marks every trading option whose expiry has one
    /// (see the module doc). `previous_ms` is the previous block's time.
    pub(crate) fn mark_options(&mut self, previous_ms: u64, events: &mut Vec<Event>) {
        let Some(params) = self.params.surface_marks else {
            return;
        };
        let now = self.time.millis();
        let due = now / params.refit_interval_ms > previous_ms / params.refit_interval_ms;
        let mut series: BTreeMap<SeriesKey, Vec<usize>> = BTreeMap::new();
        for (i, instrument) in self.instruments.iter().enumerate() {
            if let InstrumentKind::Option { expiry_ms, .. } = instrument.kind
                && instrument.status == InstrumentStatus::Trading
            {
                series
                    .entry((instrument.spec.underlying(), expiry_ms))
                    .or_default()
                    .push(i);
            }
        }
        self.smiles.retain(|key, _| series.contains_key(key));
        let rule = AgeingRule {
            age_ms_max: params.age_ms_max,
            flatten_half_life_ms: params.flatten_half_life_ms,
            good_quotes_min: usize::from(params.quotes_min),
        };
        for (key, members) in series {
            let (asset, expiry_ms) = key;
            let Some(index) = self.index.get(&asset).copied() else {
                continue;
            };
            if !self.oracle_fresh(asset) {
                // Marks stand still with the index.
                continue;
            }
            let time_years = years_to_expiry(expiry_ms, now);
            if time_years < TIME_YEARS_MIN {
                continue;
            }
            let forward = index.micros() as f64;
            if due {
                self.refit(key, &members, index, time_years, &params, events);
            }
            let Some(fitted) = self.smiles.get(&key).copied() else {
                continue;
            };
            let age_ms = now.saturating_sub(fitted.fitted_at_ms);
            let Ok(marks) =
                ExpiryMarks::aged(fitted.smile, age_ms, &rule, forward, time_years, 0.0)
            else {
                // Too old (or no longer valid at this forward): dropped; proposers' marks
                // apply again until a new fit.
                self.smiles.remove(&key);
                events.push(Event::SmileDropped {
                    underlying: asset,
                    expiry_ms,
                    age_ms,
                });
                continue;
            };
            for i in members {
                let InstrumentKind::Option { strike, right, .. } = self.instruments[i].kind else {
                    unreachable!("series hold options");
                };
                let Ok(mark) = marks.mark(strike.micros() as f64, option_kind(right)) else {
                    continue;
                };
                let micros = libm::round(mark.price);
                if !(1.0..=i64::MAX as f64 / 2.0).contains(&micros) {
                    continue;
                }
                let applied = crate::lifecycle::clamp_option_mark(
                    UnitPrice::from_micros(micros as i64),
                    right,
                    strike,
                    index,
                );
                self.instruments[i].mark = Some(applied);
            }
        }
    }

    /// Fits the series' smile to its books' two-sided quotes; keeps the previous smile when
    /// the quotes do not support a fit.
    fn refit(
        &mut self,
        key: SeriesKey,
        members: &[usize],
        index: UnitPrice,
        time_years: f64,
        params: &SurfaceMarkParams,
        events: &mut Vec<Event>,
    ) {
        let (underlying, expiry_ms) = key;
        let mut quotes: Vec<(u64, SmileQuote)> = Vec::new();
        for &i in members {
            let instrument = &self.instruments[i];
            let InstrumentKind::Option { strike, right, .. } = instrument.kind else {
                unreachable!("series hold options");
            };
            let Some((bid, ask)) = instrument.two_sided_micros() else {
                continue;
            };
            let mid = (bid + ask) / 2;
            if bid <= 0 || (ask - bid) * i128::from(BPS) > i128::from(params.spread_max_bps) * mid {
                continue;
            }
            let kind = option_kind(right);
            quotes.push((
                strike.micros().abs_diff(index.micros()),
                SmileQuote {
                    strike: strike.micros() as f64,
                    value: QuoteValue::Price {
                        kind,
                        price: mid as f64,
                    },
                    bid_ask: Some((bid as f64, ask as f64)),
                    weight: None,
                },
            ));
        }
        if quotes.len() < usize::from(params.quotes_min) {
            // Too few to try: the previous smile (if any) ages on, silently.
            return;
        }
        // Nearest the index first; ties (a call and a put at one strike) in listing order.
        quotes.sort_by_key(|(distance, _)| *distance);
        quotes.truncate(usize::from(params.quotes_max));
        let quotes: Vec<SmileQuote> = quotes.into_iter().map(|(_, q)| q).collect();
        let offered = u16::try_from(quotes.len()).expect("at most quotes_max");
        let fit = fit_smile(
            index.micros() as f64,
            time_years,
            0.0,
            &quotes,
            RobustLoss::Tukey,
        );
        let good = fit.as_ref().map_or(0, |f| f.good_quote_count());
        let good = u16::try_from(good).expect("at most the quotes offered");
        match fit {
            Ok(fit) if good >= params.quotes_min => {
                let vol_atm_bps = libm::round(fit.vol_atm() * BPS as f64);
                self.smiles.insert(
                    key,
                    FittedSmile {
                        smile: Smile::from_fit(&fit),
                        fitted_at_ms: self.time.millis(),
                    },
                );
                events.push(Event::SmileFitted {
                    underlying,
                    expiry_ms,
                    quotes: offered,
                    outliers: offered - good,
                    vol_atm_bps: vol_atm_bps as u32,
                });
            }
            _ => events.push(Event::SmileNotFitted {
                underlying,
                expiry_ms,
                quotes: offered,
                good,
            }),
        }
    }
}
