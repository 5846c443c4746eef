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
//! (a new listing before its books fill, or one whose smile was dropped) is marked by the
//! exchange's own model: Black-76 at the agreed index, at the at-the-money vol of the
//! underlying's nearest expiry that has a smile, or else at `model_vol_bps`. Under an oracle
//! no block proposer's option mark is ever taken (`PriceIgnoredReason::OracleGoverned`); an
//! exchange without an oracle trusts its single operator's feed for marks with no smile.
//!
//! Manipulation (Mango Markets, October 2022): a quote counts only with a two-sided market in
//! its strike; each account's quotes in a series weigh together as one quote per side (the
//! owner of a side is the account first in time at the best price); a fit needs the good
//! quotes of at least `accounts_min` distinct accounts; and one refit moves the at-the-money
//! vol at most `vol_move_max_bps` of the previous smile's (a fit asking for more is shifted
//! to the bound, keeping its shape). Every quote that moves a mark can be traded against,
//! and the mark stays within `[intrinsic value, bound]`. Under an oracle a series' first fit is
//! bounded the same way from the model vol that marked it before; an expiry whose books empty keeps
//! its last smile rather than following one quote.
//!
//! Trades confirm a larger move: each series keeps its trades since the last refit (at most
//! [`PRINTS_MAX`], the largest kept; liquidation and backstop prints excluded, a trade never
//! has one account on both sides). At a refit each trade's implied vol, taken to the
//! at-the-money level along the new fit's shape, is weighed by its size; when the trades span
//! at least `accounts_min` distinct accounts, their weighted median `c` widens the bound to
//! reach `c` (within `vol_move_confirmed_max_bps` of the previous vol). The fit still moves
//! only toward what it asks for: trades alone never move a smile, and quotes alone move it one
//! step. An attacker who confirms his own quotes with trades needs as many accounts as the
//! quotes do, pays both sides' fees, and trades at the price he quotes, where others can
//! trade with him.
//!
//! Determinism: `f64` on `libm`, as all of `bulwark-pricing`, from integer inputs in the
//! state; marks are rounded to micro-USDC before they enter the state.
//! Bounds: one fit of at most `quotes_max` quotes (nearest the index first) per expiry per
//! refit interval; one Black-76 price per option per block; at most [`PRINTS_MAX`] trades
//! kept per series per refit interval, one implied vol each at the refit.

use crate::event::Event;
use crate::exchange::Exchange;
use crate::instrument::{InstrumentStatus, option_kind, years_to_expiry};
use crate::params::{BPS, SurfaceMarkParams};
use bulwark_book::Fill;
use bulwark_pricing::{
    AgeingRule, ExpiryMarks, QuoteValue, RobustLoss, Smile, SmileQuote, TIME_YEARS_MIN, fit_smile,
};
use bulwark_types::{AccountId, AssetCode, InstrumentId, InstrumentKind, Side, UnitPrice};
use std::collections::{BTreeMap, BTreeSet};

/// Most trades a series keeps between refits; when full, a larger trade replaces the smallest.
pub const PRINTS_MAX: usize = 32;

/// A trade in an option series since the series' last refit, as the refit weighs it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OptionPrint {
    pub instrument: InstrumentId,
    /// Trade price, micro-USDC per unit.
    pub price_micros: i64,
    /// Contracts traded; positive.
    pub qty: i64,
    pub maker: AccountId,
    pub taker: AccountId,
}

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
    /// A block proposer's price input (clamped for options): only on an exchange without an
    /// oracle, which trusts its single operator's feed.
    Proposer,
    /// The exchange: Black-76 at the agreed index and `vol_bps`, for an option series with no
    /// smile (the underlying's nearest smile's at-the-money vol, or `model_vol_bps`).
    Model { vol_bps: u32 },
    /// The exchange: a perpetual's median of index plus premium, mid and last trade.
    PerpetualMedian,
    /// The exchange: the option series' smile fitted at `fitted_at_ms`.
    Smile { fitted_at_ms: u64 },
    /// Nobody: an option under an oracle whose genesis turned surface marks off has no mark
    /// (no proposer's mark is taken), so it does not trade.
    Unmarked,
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
            InstrumentKind::Option { expiry_ms, .. } => {
                let key = (instrument.spec.underlying(), expiry_ms);
                match self.governing_smile(key) {
                    Some(fitted) => MarkOrigin::Smile {
                        fitted_at_ms: fitted.fitted_at_ms,
                    },
                    None => match (self.oracle.is_some(), self.model_vol(key)) {
                        (true, Some(vol)) => MarkOrigin::Model {
                            vol_bps: libm::round(vol * BPS as f64) as u32,
                        },
                        (true, None) => MarkOrigin::Unmarked,
                        (false, _) => MarkOrigin::Proposer,
                    },
                }
            }
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

    /// The volatility of the model marks of a series with no smile: the at-the-money vol of
    /// the governing smile of the same underlying nearest in expiry (ties: the earlier), or
    /// `model_vol_bps`. `None` without surface marks.
    pub(crate) fn model_vol(&self, key: SeriesKey) -> Option<f64> {
        let params = self.params.surface_marks?;
        let (asset, expiry_ms) = key;
        let nearest = self
            .smiles
            .iter()
            .filter(|((a, e), _)| *a == asset && *e != expiry_ms)
            .filter(|(k, _)| self.governing_smile(**k).is_some())
            .min_by_key(|((_, e), _)| (e.abs_diff(expiry_ms), *e))
            .and_then(|(_, fitted)| {
                fitted
                    .smile
                    .params()
                    .vol(0.0, fitted.smile.time_years())
                    .ok()
            });
        Some(nearest.unwrap_or(f64::from(params.model_vol_bps) / BPS as f64))
    }

    /// Refits the smiles that are due and marks every trading option: from its series' smile,
    /// or (under an oracle) from the model when the series has none (see the module doc).
    /// `previous_ms` is the previous block's time.
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
            let aged = self.smiles.get(&key).copied().map(|fitted| {
                let age_ms = now.saturating_sub(fitted.fitted_at_ms);
                let marks =
                    ExpiryMarks::aged(fitted.smile, age_ms, &rule, forward, time_years, 0.0);
                (marks, age_ms)
            });
            let marks = match aged {
                Some((Ok(marks), _)) => marks,
                Some((Err(_), age_ms)) => {
                    // Too old (or no longer valid at this forward): dropped; the model
                    // marks the series until a new fit.
                    self.smiles.remove(&key);
                    events.push(Event::SmileDropped {
                        underlying: asset,
                        expiry_ms,
                        age_ms,
                    });
                    continue;
                }
                None if self.oracle.is_some() => {
                    let Some(marks) = self.model_marks(key, forward, time_years) else {
                        continue;
                    };
                    marks
                }
                None => continue,
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
        if due {
            // Trades confirm only the refit that follows them.
            self.option_prints.clear();
        }
    }

    /// A flat smile at the series' model vol ([`Self::model_vol`]), as marks.
    fn model_marks(&self, key: SeriesKey, forward: f64, time_years: f64) -> Option<ExpiryMarks> {
        let vol = self.model_vol(key)?;
        let flat = bulwark_pricing::SviParams::new(vol * vol * time_years, 0.0, 0.0, 0.0, 1.0)
            .and_then(|svi| Smile::new(svi, forward, time_years))
            .ok()?;
        let rule = AgeingRule {
            age_ms_max: u64::MAX,
            flatten_half_life_ms: 0,
            good_quotes_min: 0,
        };
        ExpiryMarks::aged(flat, 0, &rule, forward, time_years, 0.0).ok()
    }

    /// Keeps a trade of an option series for its next refit (see the module doc). Forced
    /// prints (liquidation, backstop) are not passed here.
    pub(crate) fn record_option_print(&mut self, id: InstrumentId, fill: &Fill) {
        if self.params.surface_marks.is_none() || fill.maker_account == fill.taker_account {
            return;
        }
        let instrument = &self.instruments[id.get() as usize];
        let InstrumentKind::Option { expiry_ms, .. } = instrument.kind else {
            return;
        };
        let Some(price_micros) = fill
            .price
            .ticks()
            .checked_mul(instrument.spec.tick_size.micros())
            .filter(|p| *p > 0)
        else {
            return;
        };
        let print = OptionPrint {
            instrument: id,
            price_micros,
            qty: fill.qty.contracts(),
            maker: fill.maker_account,
            taker: fill.taker_account,
        };
        let tape = self
            .option_prints
            .entry((instrument.spec.underlying(), expiry_ms))
            .or_default();
        if tape.len() < PRINTS_MAX {
            tape.push(print);
        } else if let Some(smallest) = (0..tape.len()).min_by_key(|&i| (tape[i].qty, i))
            && tape[smallest].qty < print.qty
        {
            tape[smallest] = print;
        }
        debug_assert!(tape.len() <= PRINTS_MAX);
    }

    /// The at-the-money vol the series' trades since its last refit confirm, read along
    /// `fit`'s shape: the size-weighted median of each trade's implied vol less the fit's skew
    /// at its strike; `None` unless the trades span `accounts_min` distinct accounts.
    fn confirmed_vol(
        &self,
        key: SeriesKey,
        fit: &bulwark_pricing::SmileFit,
        accounts_min: u16,
    ) -> Option<f64> {
        let tape = self.option_prints.get(&key)?;
        let vol_atm = fit.vol_atm();
        let mut samples: Vec<(f64, i64)> = Vec::with_capacity(tape.len());
        let mut accounts = BTreeSet::new();
        for print in tape {
            let InstrumentKind::Option { strike, right, .. } =
                self.instruments[print.instrument.get() as usize].kind
            else {
                unreachable!("prints are of options");
            };
            let strike = strike.micros() as f64;
            let Ok(implied) = bulwark_pricing::implied_vol(
                option_kind(right),
                fit.forward,
                strike,
                fit.time_years,
                0.0,
                print.price_micros as f64,
            ) else {
                continue;
            };
            let Ok(vol_at_strike) = fit
                .params
                .vol(libm::log(strike / fit.forward), fit.time_years)
            else {
                continue;
            };
            samples.push((implied - (vol_at_strike - vol_atm), print.qty));
            accounts.insert(print.maker);
            accounts.insert(print.taker);
        }
        if accounts.len() < usize::from(accounts_min) || samples.is_empty() {
            return None;
        }
        samples.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: i128 = samples.iter().map(|(_, qty)| i128::from(*qty)).sum();
        let mut seen: i128 = 0;
        samples
            .into_iter()
            .find(|(_, qty)| {
                seen += i128::from(*qty);
                2 * seen >= total
            })
            .map(|(vol, _)| vol)
            .filter(|vol| vol.is_finite() && *vol > 0.0)
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
        // (distance from the index, quote, owner of the best bid, owner of the best ask)
        let mut quotes: Vec<(u64, SmileQuote, AccountId, AccountId)> = Vec::new();
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
            let owner = |side| {
                instrument
                    .book
                    .orders(side)
                    .next()
                    .map(|order| order.account)
                    .expect("a two-sided book has a best order on each side")
            };
            quotes.push((
                strike.micros().abs_diff(index.micros()),
                SmileQuote {
                    strike: strike.micros() as f64,
                    value: QuoteValue::Price {
                        kind: option_kind(right),
                        price: mid as f64,
                    },
                    bid_ask: Some((bid as f64, ask as f64)),
                    weight: None,
                },
                owner(Side::Buy),
                owner(Side::Sell),
            ));
        }
        if quotes.len() < usize::from(params.quotes_min) {
            // Too few to try: the previous smile (if any) ages on, silently.
            return;
        }
        // Nearest the index first; ties (a call and a put at one strike) in listing order.
        quotes.sort_by_key(|(distance, ..)| *distance);
        quotes.truncate(usize::from(params.quotes_max));
        // Each account's quotes weigh, together, as one quote per side of the series.
        let mut per_side: BTreeMap<(bool, AccountId), u32> = BTreeMap::new();
        for (_, _, bidder, asker) in &quotes {
            *per_side.entry((true, *bidder)).or_default() += 1;
            *per_side.entry((false, *asker)).or_default() += 1;
        }
        let owners: Vec<(AccountId, AccountId)> =
            quotes.iter().map(|(_, _, b, a)| (*b, *a)).collect();
        let quotes: Vec<SmileQuote> = quotes
            .into_iter()
            .map(|(_, mut quote, bidder, asker)| {
                let shared = per_side[&(true, bidder)].max(per_side[&(false, asker)]);
                quote.weight = Some(1.0 / f64::from(shared));
                quote
            })
            .collect();
        let offered = u16::try_from(quotes.len()).expect("at most quotes_max");
        let fit = fit_smile(
            index.micros() as f64,
            time_years,
            0.0,
            &quotes,
            RobustLoss::Tukey,
        );
        let kept: Vec<usize> = fit.as_ref().map_or(Vec::new(), |f| {
            (0..f.quotes.len())
                .filter(|&q| f.quotes[q].outlier.is_none())
                .collect()
        });
        let good = u16::try_from(kept.len()).expect("at most the quotes offered");
        let accounts: std::collections::BTreeSet<AccountId> = kept
            .iter()
            .flat_map(|&q| [owners[q].0, owners[q].1])
            .collect();
        let accounts = u16::try_from(accounts.len()).expect("two per quote at most");
        // The ATM vol that marked the series until now: its smile's, or (a first fit under an
        // oracle) the model's, so three accounts cannot place a new listing's first smile
        // anywhere in the band either.
        let previous = match self.smiles.get(&key) {
            Some(fitted) => fitted
                .smile
                .params()
                .vol(0.0, fitted.smile.time_years())
                .ok(),
            None if self.oracle.is_some() => self.model_vol(key),
            None => None,
        };
        let confirmed = fit
            .as_ref()
            .ok()
            .and_then(|fit| self.confirmed_vol(key, fit, params.accounts_min));
        let bounded = fit.ok().and_then(|fit| {
            (good >= params.quotes_min && accounts >= params.accounts_min)
                .then(|| bound_move(&fit, previous, confirmed, params))
                .flatten()
        });
        match bounded {
            Some((smile, vol_atm, vol_atm_fitted)) => {
                let bps = |vol: f64| libm::round(vol * BPS as f64) as u32;
                self.smiles.insert(
                    key,
                    FittedSmile {
                        smile,
                        fitted_at_ms: self.time.millis(),
                    },
                );
                events.push(Event::SmileFitted {
                    underlying,
                    expiry_ms,
                    quotes: offered,
                    outliers: offered - good,
                    accounts,
                    vol_atm_bps: bps(vol_atm),
                    vol_atm_fitted_bps: bps(vol_atm_fitted),
                    vol_atm_traded_bps: confirmed.map(bps),
                });
            }
            None => events.push(Event::SmileNotFitted {
                underlying,
                expiry_ms,
                quotes: offered,
                good,
                accounts,
            }),
        }
    }
}

/// The fit's smile with its at-the-money vol held within `vol_move_max_bps` of `before`, the
/// ATM vol that marked the series until now, or as far toward the trades' `confirmed` vol as
/// they reach (within `vol_move_confirmed_max_bps`): a fit asking for more is shifted (its
/// SVI level `a` moved, its shape kept) to the bound. Returns the smile, its ATM vol and the
/// fit's own; `None` if the shifted smile is not a valid one (the previous marks then stay).
fn bound_move(
    fit: &bulwark_pricing::SmileFit,
    before: Option<f64>,
    confirmed: Option<f64>,
    params: &SurfaceMarkParams,
) -> Option<(Smile, f64, f64)> {
    let fitted = fit.vol_atm();
    let smile = Smile::from_fit(fit);
    let Some(before) = before else {
        return Some((smile, fitted, fitted));
    };
    let step = before * f64::from(params.vol_move_max_bps) / BPS as f64;
    let (mut low, mut high) = (before - step, before + step);
    if let Some(confirmed) = confirmed {
        let reach = before * f64::from(params.vol_move_confirmed_max_bps) / BPS as f64;
        let confirmed = confirmed.clamp(before - reach, before + reach);
        low = low.min(confirmed);
        high = high.max(confirmed);
    }
    debug_assert!(low > 0.0, "moves are bounded below 100% of the vol");
    let bounded = fitted.clamp(low, high);
    if bounded == fitted {
        return Some((smile, fitted, fitted));
    }
    let svi = fit.params;
    let shift = (bounded * bounded - fitted * fitted) * fit.time_years;
    let shifted =
        bulwark_pricing::SviParams::new(svi.a() + shift, svi.b(), svi.rho(), svi.m(), svi.sigma())
            .and_then(|svi| Smile::new(svi, fit.forward, fit.time_years))
            .ok()?;
    Some((shifted, bounded, fitted))
}
