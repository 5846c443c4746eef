//! What happens to instruments as time and prices move: index and mark updates, expiry,
//! cash settlement, and perpetual funding.
//!
//! Every payment here is computed once per contract and multiplied by each holder's signed
//! position; since positions net to zero, the payments net to exactly zero and cash is
//! conserved without any rounding residue.

use crate::event::{Event, PriceIgnoredReason, PriceInput};
use crate::exchange::Exchange;
use crate::instrument::InstrumentStatus;
use crate::ledger::Pocket;
use crate::margin::intrinsic;
use crate::params::PPM;
use bulwark_types::{
    CancelReason, InstrumentId, InstrumentKind, Money, PriceInputs, Qty, Right, Side, UnitPrice,
};

/// Funding rates are quoted per 8 hours (the industry's convention) and scaled to the interval.
const FUNDING_PERIOD_MS: i128 = 8 * 3_600_000;

/// How far back a quote's reference index may lie for [`Exchange::cancel_stale_quotes`] to
/// count the quote as left behind by the index's move rather than placed through it: two
/// seconds, more than a market maker takes to see a block and requote.
pub const STALE_QUOTE_WINDOW_MS: u64 = 2_000;

impl Exchange {
    /// Takes the block's index and mark prices. Inputs for unknown or finished instruments are
    /// ignored with an event; option marks are kept within [intrinsic, bound].
    pub(crate) fn apply_prices(&mut self, prices: &PriceInputs, events: &mut Vec<Event>) {
        for input in prices.index() {
            if self.oracle.is_some() {
                events.push(Event::PriceIgnored {
                    input: PriceInput::Index(input.asset),
                    reason: PriceIgnoredReason::OracleGoverned,
                });
            } else if self.instruments.has_asset(&input.asset) {
                self.set_index(input.asset, input.price);
            } else {
                events.push(Event::PriceIgnored {
                    input: PriceInput::Index(input.asset),
                    reason: PriceIgnoredReason::NoSuchInstrument,
                });
            }
        }
        for input in prices.marks() {
            let ignored = |reason| Event::PriceIgnored {
                input: PriceInput::Mark(input.instrument),
                reason,
            };
            let Some(instrument) = self.instruments.get(input.instrument.get() as usize) else {
                events.push(ignored(PriceIgnoredReason::NoSuchInstrument));
                continue;
            };
            if instrument.status != InstrumentStatus::Trading {
                events.push(ignored(PriceIgnoredReason::NotTrading));
                continue;
            }
            if self.oracle.is_some() {
                // Under an oracle no single party sets a mark: the exchange marks perpetuals
                // itself (`mark_perpetuals`) and options from smiles or its model
                // (`mark_options`).
                events.push(ignored(PriceIgnoredReason::OracleGoverned));
                continue;
            }
            if let InstrumentKind::Option { expiry_ms, .. } = instrument.kind
                && self
                    .governing_smile((instrument.spec.underlying(), expiry_ms))
                    .is_some()
            {
                // The exchange marks this series from its smile (`mark_options`).
                events.push(ignored(PriceIgnoredReason::SurfaceGoverned));
                continue;
            }
            let index = self.index.get(&instrument.spec.underlying()).copied();
            let applied = match (instrument.kind, index) {
                (InstrumentKind::Option { strike, right, .. }, Some(index)) => {
                    clamp_option_mark(input.price, right, strike, index)
                }
                _ => input.price,
            };
            if applied != input.price {
                events.push(Event::MarkClamped {
                    instrument: input.instrument,
                    supplied: input.price,
                    applied,
                });
            }
            self.instruments[input.instrument.get() as usize].mark = Some(applied);
        }
    }

    /// Takes a new index price for `asset` (from the oracle, or a trusted feed).
    pub(crate) fn set_index(&mut self, asset: bulwark_types::AssetCode, price: UnitPrice) {
        // Settlement reads the history under an oracle only.
        let history = self
            .oracle
            .is_some()
            .then(|| self.settlement_window_start(asset));
        let variance_half_life_ms = self.params.band_vol.map(|scaling| scaling.half_life_ms);
        self.index.record(
            asset,
            price,
            self.time.millis(),
            history,
            variance_half_life_ms,
        );
    }

    /// The start of the settlement window of `asset`'s earliest expiry whose settlement price
    /// is still to be found (expired and unsettled, or expiring now): its index history is
    /// kept from there until it settles.
    fn settlement_window_start(&self, asset: bulwark_types::AssetCode) -> Option<u64> {
        let now = self.time.millis();
        self.instruments
            .iter()
            .filter(|i| i.spec.underlying() == asset && i.status != InstrumentStatus::Settled)
            .filter_map(|i| match i.kind {
                InstrumentKind::Option { expiry_ms, .. } if expiry_ms <= now => Some(expiry_ms),
                _ => None,
            })
            .min()
            .map(|expiry_ms| expiry_ms.saturating_sub(crate::instrument::IndexHistory::SPAN_MS))
    }

    /// Cancels the resting orders of each trading perpetual that the index's recent move has
    /// left behind: a bid now more than `PriceBand::stale_quote_bps` above the index that was
    /// within that of the index at some time in the last [`STALE_QUOTE_WINDOW_MS`]
    /// (`index_before`, the index before this block, or a sample of the index's history), or
    /// an ask now that far below it that was within it. It runs before the
    /// block's marks, liquidations and transactions: no one, the proposer included, can take
    /// a quote whose owner's cancel is still on its way. An order priced that far through the
    /// index before the move (a bid at a premium the perpetual trades at) stays. Bounded by
    /// the orders resting in those books.
    pub(crate) fn cancel_stale_quotes(
        &mut self,
        index_before: &std::collections::BTreeMap<bulwark_types::AssetCode, UnitPrice>,
        events: &mut Vec<Event>,
    ) {
        let stale_bps = i128::from(self.params.band_perpetual.stale_quote_bps);
        if stale_bps == 0 {
            return;
        }
        for i in 0..self.instruments.len() {
            let instrument = &self.instruments[i];
            if instrument.kind != InstrumentKind::Perpetual
                || instrument.status != InstrumentStatus::Trading
                || instrument.book.is_halted()
            {
                continue;
            }
            let asset = instrument.spec.underlying();
            let (Some(now), Some(before)) = (self.index.get(&asset), index_before.get(&asset))
            else {
                continue;
            };
            // The index over the last `STALE_QUOTE_WINDOW_MS` (the history's samples, a second
            // apart, where one is kept): a quote placed against any of it was within reach.
            let recent = self
                .index
                .history(&asset)
                .into_iter()
                .flat_map(|h| h.samples.iter().rev())
                .take_while(|(t, _)| *t + STALE_QUOTE_WINDOW_MS >= self.time.millis())
                .map(|(_, p)| i128::from(p.micros()));
            let now = i128::from(now.micros());
            let (high, low) = recent.fold(
                (i128::from(before.micros()), i128::from(before.micros())),
                |(h, l), p| (h.max(p), l.min(p)),
            );
            let tick = i128::from(instrument.spec.tick_size.micros());
            // The most a bid may be priced, and the least an ask, in ticks, against an index.
            let bid_max = |index: i128| (index + index * stale_bps / 10_000) / tick;
            let ask_min = |index: i128| (index - index * stale_bps / 10_000 + tick - 1) / tick;
            // A fall leaves bids behind, a rise asks (both, in a window that saw both).
            for (side, through, was_within) in [
                (Side::Buy, bid_max(now), bid_max(high)),
                (Side::Sell, ask_min(now), ask_min(low)),
            ] {
                let stale: Vec<bulwark_book::RestingOrder> = self.instruments[i]
                    .book
                    .orders(side)
                    .take_while(|o| match side {
                        Side::Buy => i128::from(o.price.ticks()) > through,
                        Side::Sell => i128::from(o.price.ticks()) < through,
                    })
                    .filter(|o| match side {
                        Side::Buy => i128::from(o.price.ticks()) <= was_within,
                        Side::Sell => i128::from(o.price.ticks()) >= was_within,
                    })
                    .copied()
                    .collect();
                let id = self.instruments[i].id;
                for resting in &stale {
                    self.cancel_resting(id, resting, CancelReason::IndexMoved, events);
                }
            }
        }
    }

    /// Under an oracle, the exchange marks each trading perpetual itself: the median of the
    /// index plus the premium's exponential average (half-life 150 s), the book's mid, and the
    /// last trade, whichever exist, clamped to half the perpetual band around the index.
    pub(crate) fn mark_perpetuals(&mut self) {
        const PREMIUM_HALF_LIFE_MS: i128 = 150_000;
        if self.oracle.is_none() {
            return;
        }
        let now = self.time.millis();
        let half_band_bps = i128::from(self.params.band_perpetual.width_bps / 2);
        for i in 0..self.instruments.len() {
            let instrument = &self.instruments[i];
            if instrument.kind != InstrumentKind::Perpetual
                || instrument.status != InstrumentStatus::Trading
            {
                continue;
            }
            let Some(index) = self.index.get(&instrument.spec.underlying()).copied() else {
                continue;
            };
            let tick = i128::from(instrument.spec.tick_size.micros());
            let mid = instrument
                .two_sided_micros()
                .map(|(bid, ask)| (bid + ask) / 2);
            let inputs = &mut self.instruments[i].mark_inputs;
            if let Some(mid) = mid {
                let sample = mid - i128::from(index.micros());
                let ema = i128::from(inputs.premium_ema);
                let dt = i128::from(
                    inputs
                        .premium_at_ms
                        .map_or(PREMIUM_HALF_LIFE_MS as u64, |t| now.saturating_sub(t)),
                );
                let next = ema + (sample - ema) * dt / (dt + PREMIUM_HALF_LIFE_MS);
                inputs.premium_ema = i64::try_from(next).unwrap_or(inputs.premium_ema);
                inputs.premium_at_ms = Some(now);
            }
            let index_micros = i128::from(index.micros());
            let mut candidates = vec![index_micros + i128::from(inputs.premium_ema)];
            candidates.extend(mid);
            candidates.extend(inputs.last_trade.map(|p| i128::from(p.ticks()) * tick));
            candidates.sort();
            let n = candidates.len();
            let median = if n % 2 == 1 {
                candidates[n / 2]
            } else {
                (candidates[n / 2 - 1] + candidates[n / 2]).div_euclid(2)
            };
            let band = index_micros * half_band_bps / i128::from(crate::params::BPS);
            let mark = median
                .clamp(index_micros - band, index_micros + band)
                .max(1);
            self.instruments[i].mark = Some(UnitPrice::from_micros(
                i64::try_from(mark).expect("within the band of an i64 index"),
            ));
        }
    }

    /// Stops trading in every option whose expiry has come, cancelling its resting orders.
    pub(crate) fn expire_due(&mut self, events: &mut Vec<Event>) {
        while let Some((expiry_ms, id)) = self.instruments.pop_expired(self.time.millis()) {
            let waiting = self.instruments[id.get() as usize]
                .book
                .auction_orders()
                .to_vec();
            for order in waiting {
                self.cancel_resting(id, &order, CancelReason::Expired, events);
            }
            let instrument = &mut self.instruments[id.get() as usize];
            if instrument.breaker.halted_until_ms.take().is_some() {
                // Nothing waits any more: ending the halt matches nothing.
                let outcome = instrument.book.reopen(
                    bulwark_types::Price::from_ticks(0),
                    &mut bulwark_book::MatchSink::default(),
                );
                debug_assert!(outcome.placements.is_empty() && outcome.uncross.is_none());
            }
            for side in [Side::Buy, Side::Sell] {
                let resting: Vec<_> = self.instruments[id.get() as usize]
                    .book
                    .orders(side)
                    .copied()
                    .collect();
                for order in resting {
                    self.cancel_resting(id, &order, CancelReason::Expired, events);
                }
            }
            self.instruments[id.get() as usize].status = InstrumentStatus::Expired;
            events.push(Event::InstrumentExpired { instrument: id });
            if self.oracle.is_some() {
                // Under an oracle the exchange settles on the index's 30-minute average (or,
                // after a halt across expiry, waits for the rule's later window).
                self.settle_from_index(id, expiry_ms, events);
            }
        }
    }

    /// Pays out expired options against the block's settlement prices.
    pub(crate) fn settle(&mut self, prices: &PriceInputs, events: &mut Vec<Event>) {
        if self.oracle.is_some() {
            self.settle_from_history(events);
            for input in prices.settlements() {
                events.push(Event::PriceIgnored {
                    input: crate::event::PriceInput::Settlement(input.asset),
                    reason: PriceIgnoredReason::OracleGoverned,
                });
            }
            return;
        }
        for input in prices.settlements() {
            let expiry_ms = input.expiry.expiry_millis();
            let due: Vec<InstrumentId> = self
                .instruments
                .iter()
                .filter(|i| i.status == InstrumentStatus::Expired && i.spec.underlying() == input.asset)
                .filter(|i| matches!(i.kind, InstrumentKind::Option { expiry_ms: at, .. } if at == expiry_ms))
                .map(|i| i.id)
                .collect();
            if due.is_empty() {
                events.push(Event::PriceIgnored {
                    input: crate::event::PriceInput::Settlement(input.asset),
                    reason: PriceIgnoredReason::NothingToSettle,
                });
            }
            for id in due {
                self.settle_instrument(id, input.price, events);
            }
        }
    }

    /// Under an oracle: settles expired options that expiry could not settle (the index was
    /// not agreed throughout the 30 minutes before expiry) once the settlement rule gives a
    /// price.
    fn settle_from_history(&mut self, events: &mut Vec<Event>) {
        let due: Vec<(InstrumentId, u64)> = self
            .instruments
            .iter()
            .filter(|i| i.status == InstrumentStatus::Expired)
            .filter_map(|i| match i.kind {
                InstrumentKind::Option { expiry_ms, .. } => Some((i.id, expiry_ms)),
                InstrumentKind::Perpetual => None,
            })
            .collect();
        for (id, expiry_ms) in due {
            self.settle_from_index(id, expiry_ms, events);
        }
    }

    /// Settles expired option `id` if the index history gives its settlement price yet
    /// (`IndexHistory::settlement_price`).
    fn settle_from_index(&mut self, id: InstrumentId, expiry_ms: u64, events: &mut Vec<Event>) {
        let asset = self.instruments[id.get() as usize].spec.underlying();
        let now = self.time.millis();
        let price = self
            .index
            .history(&asset)
            .and_then(|h| h.settlement_price(expiry_ms, now));
        if let Some(price) = price {
            self.settle_instrument(id, price, events);
        }
    }

    fn settle_instrument(&mut self, id: InstrumentId, price: UnitPrice, events: &mut Vec<Event>) {
        let instrument = &mut self.instruments[id.get() as usize];
        let InstrumentKind::Option { strike, right, .. } = instrument.kind else {
            unreachable!("only options expire")
        };
        assert!(
            instrument.book.is_empty(),
            "expiry cancelled every resting order"
        );
        let payoff = instrument
            .spec
            .multiplier
            .value(Qty::from_contracts(1), intrinsic(right, strike, price));
        let holders = instrument.take_holders();
        instrument.status = InstrumentStatus::Settled;
        instrument.mark = Some(intrinsic(right, strike, price));
        for account in holders {
            let holder = self.accounts.get_mut(account);
            let exposure = holder.exposures.remove(&id).expect("holders hold");
            let amount = payoff
                .checked_mul(i128::from(exposure.position))
                .expect("settlement payoff of one position (money bounds)");
            self.transfer(Pocket::Clearing, Pocket::Account(account), amount);
            events.push(Event::PositionSettled {
                instrument: id,
                account,
                position: exposure.position,
                amount,
            });
        }
        // Every long's payoff is a short's: the clearing pocket is empty again.
        self.clear();
        events.push(Event::InstrumentSettled {
            instrument: id,
            price,
        });
    }

    /// Pays funding on every perpetual whose interval has come round.
    ///
    /// Every block with a fresh oracle samples each perpetual's premium of mark over index,
    /// `(mark - index) / index`, held for the time since the last sample (at most 10 s).
    /// When the interval comes round, the rate is the interval's time-weighted average
    /// premium, scaled from 8 hours to the interval and clamped to `funding_rate_max_ppm`;
    /// longs pay shorts when it is positive. An interval with no sampled time (no prices, or
    /// an oracle stale throughout) pays nothing, and a chain that was halted does not charge
    /// for the time it was down.
    pub(crate) fn pay_funding(&mut self, events: &mut Vec<Event>) {
        let now = self.time.millis();
        let interval = self.params.funding_interval_ms;
        for i in 0..self.instruments.len() {
            let instrument = &self.instruments[i];
            if instrument.kind != InstrumentKind::Perpetual
                || instrument.status != InstrumentStatus::Trading
            {
                continue;
            }
            let prices = self.valuation_prices(instrument);
            let fresh = self.oracle_fresh(instrument.spec.underlying());
            let premium = match (prices.index, instrument.mark.or(prices.index), fresh) {
                (Some(index), Some(mark), true) => Some((
                    index,
                    mark,
                    i128::from(mark.micros() - index.micros()) * i128::from(PPM)
                        / i128::from(index.micros()),
                )),
                _ => None,
            };
            let accrual = &mut self.instruments[i].mark_inputs.funding;
            match premium {
                Some((_, _, premium_ppm)) => accrual.sample(now, premium_ppm),
                // Unsampled time is not held by the next sample.
                None => accrual.sampled_at_ms = None,
            }
            if now < self.instruments[i].funding_next_ms {
                continue;
            }
            self.instruments[i].funding_next_ms = (now / interval + 1) * interval;
            let average = self.instruments[i].mark_inputs.funding.take_average();
            let (Some((index, mark, _)), Some(premium_ppm)) = (premium, average) else {
                // No prices now, or none sampled this interval: it pays nothing.
                continue;
            };
            let max = i128::from(self.params.funding_rate_max_ppm);
            let rate_ppm =
                (premium_ppm * i128::from(interval) / FUNDING_PERIOD_MS).clamp(-max, max);
            let contract_value = self.instruments[i]
                .spec
                .multiplier
                .value(Qty::from_contracts(1), mark);
            let per_contract =
                Money::from_micros(contract_value.micros() * rate_ppm / i128::from(PPM));
            let id = self.instruments[i].id;
            if per_contract != Money::ZERO {
                let holders: Vec<_> = self.instruments[i].holders.iter().copied().collect();
                // Funding leaves the holders' liquidation-screen floors standing: the screen
                // counts it in the instrument's drift instead.
                self.accounts.funding_paid(i, per_contract);
                for account in holders {
                    let position = self.accounts[account].position(id);
                    let payment = per_contract
                        .checked_mul(i128::from(position))
                        .expect("funding of one position (money bounds)");
                    self.transfer(Pocket::Screened(account), Pocket::Clearing, payment);
                }
                self.clear();
            }
            let rate_ppm = i64::try_from(rate_ppm).expect("clamped to funding_rate_max_ppm");
            events.push(Event::FundingPaid {
                instrument: id,
                rate_ppm,
                per_contract,
                mark,
                index,
            });
        }
    }
}

/// An option's mark held within [intrinsic value, upper bound]: a call is worth at most the
/// underlying, a put at most its strike.
pub(crate) fn clamp_option_mark(
    mark: UnitPrice,
    right: Right,
    strike: UnitPrice,
    index: UnitPrice,
) -> UnitPrice {
    let floor = intrinsic(right, strike, index);
    let ceiling = match right {
        Right::Call => index,
        Right::Put => strike,
    };
    UnitPrice::from_micros(
        mark.micros()
            .clamp(floor.micros().max(1), ceiling.micros().max(1)),
    )
}
