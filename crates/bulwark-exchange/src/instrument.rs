//! A listed instrument's replicated state: contract terms, life cycle, book, mark price,
//! funding schedule and the accounts that hold it.

use crate::params::{BPS, CircuitBreaker};
use bulwark_book::{Book, BookLimits};
use bulwark_types::{
    AccountId, InstrumentId, InstrumentKind, InstrumentSpec, Price, Right, UnitPrice,
};
use std::collections::{BTreeSet, VecDeque};

/// Milliseconds in the 365-day year the exchange's option models count time in.
const MS_PER_YEAR: f64 = 365.0 * 86_400_000.0;

/// Years from `now_ms` to `expiry_ms` (zero once past), as the option models count them.
pub(crate) fn years_to_expiry(expiry_ms: u64, now_ms: u64) -> f64 {
    expiry_ms.saturating_sub(now_ms) as f64 / MS_PER_YEAR
}

/// The pricing library's name for an option's right.
pub(crate) fn option_kind(right: Right) -> bulwark_pricing::OptionKind {
    match right {
        Right::Call => bulwark_pricing::OptionKind::Call,
        Right::Put => bulwark_pricing::OptionKind::Put,
    }
}

/// Where an instrument is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InstrumentStatus {
    /// Accepts orders.
    Trading,
    /// Past expiry: no orders; positions wait for the settlement price.
    Expired,
    /// Positions were paid out at the settlement price; nothing remains.
    Settled,
}

#[derive(Clone, Debug)]
pub struct Instrument {
    pub id: InstrumentId,
    pub spec: InstrumentSpec,
    /// Derived from `spec`'s name; kept to avoid re-deriving on the hot path.
    pub kind: InstrumentKind,
    pub status: InstrumentStatus,
    pub book: Book,
    /// Latest agreed mark price; `None` until the first one arrives.
    pub mark: Option<UnitPrice>,
    /// Perpetuals: block time (ms) at or after which the next funding is paid.
    pub funding_next_ms: u64,
    /// Accounts with a non-zero position (derived from the accounts; kept with
    /// `open_interest` by [`Instrument::position_changed`]).
    pub holders: BTreeSet<AccountId>,
    /// Sum of the long positions, contracts (derived, like `holders`; never snapshotted).
    open_interest: i64,
    /// Perpetuals under risk limits: the book's depth average and the reference the tiers and
    /// the open-interest cap are sized by.
    pub depth: DepthState,
    /// Recent trade prices and whether the instrument is halted.
    pub breaker: BreakerState,
    /// Perpetuals under an oracle: the inputs of the exchange's own mark price.
    pub mark_inputs: MarkInputs,
}

/// What a perpetual's mark is made of when the exchange computes it (with an oracle), in the
/// manner of Hyperliquid's: the median of the index plus an exponentially weighted premium of
/// the book over the index, the book's mid, and the last trade.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkInputs {
    /// Exponentially weighted (mid - index), micro-USDC per unit.
    pub premium_ema: i64,
    /// Block time (ms) of the last premium sample.
    pub premium_at_ms: Option<u64>,
    /// Price (ticks) of the last trade.
    pub last_trade: Option<Price>,
    /// Perpetuals: the premium of mark over index accrued since the last funding payment.
    pub funding: FundingAccrual,
}

/// A perpetual's premium of mark over index, integrated over block time since the last
/// funding payment: funding pays the interval's time-weighted average, so one block's mark
/// (a wash trade and a quote just before the hour) moves it only by that block's share.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FundingAccrual {
    /// Sum of premium (ppm of the index) x milliseconds it held.
    pub premium_ppm_ms: i128,
    /// Milliseconds sampled (block time with a fresh oracle, each block counted for at most
    /// [`FundingAccrual::SAMPLE_MS_MAX`]).
    pub sampled_ms: u64,
    /// Block time of the last sample.
    pub sampled_at_ms: Option<u64>,
}

impl FundingAccrual {
    /// Longest time one block's premium is held for: a chain that was halted (or an oracle
    /// that was stale) does not let the first block after it stand for the whole gap.
    pub const SAMPLE_MS_MAX: u64 = 10_000;

    /// Accrues `premium_ppm` as held since the last sample (at most `SAMPLE_MS_MAX`).
    pub fn sample(&mut self, now_ms: u64, premium_ppm: i128) {
        let held = self
            .sampled_at_ms
            .map_or(0, |at| now_ms.saturating_sub(at).min(Self::SAMPLE_MS_MAX));
        self.premium_ppm_ms += premium_ppm * i128::from(held);
        self.sampled_ms += held;
        self.sampled_at_ms = Some(now_ms);
    }

    /// The time-weighted average premium (ppm) since the last payment, if any time was
    /// sampled; starts the next interval.
    pub fn take_average(&mut self) -> Option<i128> {
        let average = (self.sampled_ms > 0)
            .then(|| self.premium_ppm_ms.div_euclid(i128::from(self.sampled_ms)));
        self.premium_ppm_ms = 0;
        self.sampled_ms = 0;
        average
    }
}

/// The circuit breaker's memory: the lowest and highest trade prices of the look-back window,
/// kept as monotonic queues of `(time_ms, price)` so each trade costs O(1) amortised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BreakerState {
    /// Prices ascending from the front: the front is the window's lowest.
    pub lows: VecDeque<(u64, Price)>,
    /// Prices descending from the front: the front is the window's highest.
    pub highs: VecDeque<(u64, Price)>,
    /// While halted: the block time (ms) from which it reopens. The book is halted exactly
    /// when this is set.
    pub halted_until_ms: Option<u64>,
}

impl BreakerState {
    /// Most entries in either queue. Beyond it the oldest are dropped, which only shortens
    /// the window (a queue this long means thousands of trades at ever-rising or ever-falling
    /// prices, which trips the breaker long before).
    pub const ENTRIES_MAX: usize = 4_096;

    /// Records a trade at `price` (positive) and time `time_ms`; returns the window's lowest
    /// and highest prices if they now lie more than `breaker.move_bps` apart.
    pub fn record(
        &mut self,
        time_ms: u64,
        price: Price,
        breaker: &CircuitBreaker,
    ) -> Option<(Price, Price)> {
        debug_assert!(price.is_positive(), "trades happen at positive prices");
        let horizon = time_ms.saturating_sub(breaker.window_ms);
        for (queue, keeps) in [(&mut self.lows, true), (&mut self.highs, false)] {
            while queue
                .back()
                .is_some_and(|(_, p)| if keeps { *p >= price } else { *p <= price })
            {
                queue.pop_back();
            }
            queue.push_back((time_ms, price));
            while queue.front().is_some_and(|(t, _)| *t < horizon)
                || queue.len() > Self::ENTRIES_MAX
            {
                queue.pop_front();
            }
        }
        let (low, high) = (self.lows.front()?.1, self.highs.front()?.1);
        let moved = i128::from(high.ticks() - low.ticks()) * i128::from(BPS);
        (moved > i128::from(breaker.move_bps) * i128::from(low.ticks())).then_some((low, high))
    }

    /// Forgets the window (after a halt, the reopening price starts a fresh one).
    pub fn forget(&mut self) {
        self.lows.clear();
        self.highs.clear();
    }
}

impl Instrument {
    /// Best bid and best ask in micro-USDC per unit, when the book is open and has both.
    pub(crate) fn two_sided_micros(&self) -> Option<(i128, i128)> {
        if self.book.is_halted() {
            return None;
        }
        let tick = i128::from(self.spec.tick_size.micros());
        let (bid, _) = self.book.best_bid()?;
        let (ask, _) = self.book.best_ask()?;
        Some((
            i128::from(bid.ticks()) * tick,
            i128::from(ask.ticks()) * tick,
        ))
    }

    pub fn new(
        id: InstrumentId,
        spec: InstrumentSpec,
        book_limits: BookLimits,
        funding_next_ms: u64,
    ) -> Self {
        Self {
            id,
            kind: spec.kind(),
            spec,
            status: InstrumentStatus::Trading,
            book: Book::new(book_limits),
            mark: None,
            funding_next_ms,
            holders: BTreeSet::new(),
            open_interest: 0,
            depth: DepthState::default(),
            breaker: BreakerState::default(),
            mark_inputs: MarkInputs::default(),
        }
    }

    pub fn is_option(&self) -> bool {
        matches!(self.kind, InstrumentKind::Option { .. })
    }

    /// Open interest: the sum of long positions (equal to the sum of shorts), contracts.
    pub fn open_interest(&self) -> i64 {
        self.open_interest
    }

    /// Records that `account`'s position went from `before` to `after` contracts: the one
    /// place holders and open interest change, so they cannot drift from the positions.
    pub(crate) fn position_changed(&mut self, account: AccountId, before: i64, after: i64) {
        self.open_interest = self
            .open_interest
            .checked_add(after.max(0) - before.max(0))
            .expect("open interest bounded by position_max x accounts");
        assert!(self.open_interest >= 0, "open interest never negative");
        if after == 0 {
            self.holders.remove(&account);
        } else {
            self.holders.insert(account);
        }
    }

    /// Forgets every position at settlement; returns the holders.
    pub(crate) fn take_holders(&mut self) -> BTreeSet<AccountId> {
        self.open_interest = 0;
        std::mem::take(&mut self.holders)
    }
}

/// A perpetual's book depth under risk limits (see [`crate::params::RiskLimitParams`]).
/// Replicated state, snapshotted.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DepthState {
    /// Exponentially weighted open contracts within the depth band of the mark on the thinner
    /// side of the book, thousandths of a contract.
    pub average_milli: i64,
    /// Block time of the last sample.
    pub sampled_at_ms: Option<u64>,
    /// What the tiers and the open-interest cap are sized by, contracts: the average (at
    /// least the floor) when it was last refreshed; 0 before the first refresh.
    pub reference: i64,
    /// The last sample, contracts: the book as the last block left it. The backstop's room
    /// is sized by the lesser of it and the average, so depth falls at once when quotes are
    /// cancelled and rises only as slowly as the average.
    pub last: i64,
}

impl DepthState {
    /// Most half-lives one sample decays the average by: beyond it the old average is gone.
    const HALVINGS_MAX: u64 = 62;

    /// Takes in `depth` contracts as having rested since the last sample: the average moves
    /// toward it by `1 - 2^(-elapsed / half_life)` (whole half-lives by halving, the rest of
    /// one linearly between them), so a book that rested longer weighs more. The first sample
    /// only starts the clock. Integer arithmetic: replicated state.
    pub fn sample(&mut self, now_ms: u64, depth: i64, half_life_ms: u64) {
        assert!(half_life_ms > 0, "half-life checked in genesis");
        let target = i128::from(depth.clamp(0, i64::MAX / 1_000)) * 1_000;
        if let Some(at) = self.sampled_at_ms {
            let elapsed = now_ms.saturating_sub(at);
            let halvings = elapsed / half_life_ms;
            let gap = i128::from(self.average_milli) - target;
            let kept = if halvings > Self::HALVINGS_MAX {
                0
            } else {
                // Toward zero, so the average never overshoots the sample.
                let halved = gap / (1i128 << halvings);
                let part = i128::from(elapsed % half_life_ms);
                let h = i128::from(half_life_ms);
                halved * (2 * h - part) / (2 * h)
            };
            debug_assert!(
                kept.abs() <= gap.abs(),
                "the average moves toward the sample"
            );
            self.average_milli =
                i64::try_from(target + kept).expect("between the old average and the sample");
        }
        self.last = depth.clamp(0, i64::MAX / 1_000);
        self.sampled_at_ms = Some(now_ms);
    }

    /// The average in whole contracts, rounded down.
    pub fn average(&self) -> i64 {
        self.average_milli / 1_000
    }

    /// What the book has shown both lately and just now: the lesser of the average and the
    /// last sample, contracts.
    pub fn shown(&self) -> i64 {
        self.average().min(self.last)
    }
}

/// An exponentially weighted estimate of an index's variance per second, in bps² × 10^6,
/// updated at each new index price. Integer arithmetic: replicated state.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RealisedVariance {
    /// Time (ms) and price of the last index print.
    pub last: Option<(u64, UnitPrice)>,
    pub var_e6: u128,
}

impl RealisedVariance {
    /// A return's square is capped at 100% (10^4 bps) per print, so one absurd print cannot
    /// overflow or dominate beyond what the band cap allows anyway.
    const RETURN_BPS_MAX: i128 = 10_000;

    pub fn update(&mut self, time_ms: u64, price: UnitPrice, half_life_ms: u64) {
        if let Some((t0, p0)) = self.last {
            let dt = time_ms.saturating_sub(t0);
            if dt == 0 {
                // Same instant: keep the first print as the reference.
                return;
            }
            let p0 = i128::from(p0.micros().max(1));
            let r_bps_e3 = ((i128::from(price.micros()) - p0) * 10_000_000 / p0)
                .clamp(-Self::RETURN_BPS_MAX * 1_000, Self::RETURN_BPS_MAX * 1_000);
            // bps² per second, × 10^6.
            let sample = (r_bps_e3 * r_bps_e3) as u128 * 1_000 / u128::from(dt);
            let (dt, h) = (u128::from(dt), u128::from(half_life_ms));
            self.var_e6 = if sample >= self.var_e6 {
                self.var_e6 + (sample - self.var_e6) * dt / (dt + h)
            } else {
                self.var_e6 - (self.var_e6 - sample) * dt / (dt + h)
            };
        }
        self.last = Some((time_ms, price));
    }

    /// Standard deviation of the move over `horizon_ms`, in bps.
    pub fn sigma_bps(&self, horizon_ms: u64) -> i64 {
        let var_over_horizon_e6 = self.var_e6.saturating_mul(u128::from(horizon_ms)) / 1_000;
        i64::try_from(var_over_horizon_e6.isqrt() / 1_000).unwrap_or(i64::MAX)
    }
}

/// An index's recent history for the settlement average: at most one sample per second, the
/// last [`IndexHistory::SPAN_MS`] of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexHistory {
    pub samples: VecDeque<(u64, UnitPrice)>,
}

impl IndexHistory {
    /// Thirty minutes: Deribit settles on the index's average over the 30 minutes before
    /// expiry.
    pub const SPAN_MS: u64 = 30 * 60_000;
    /// Longest gap between agreed index samples for a settlement window to count as covered.
    pub const GAP_MS_MAX: u64 = 60_000;
    /// Samples are at least a second apart; a pending settlement keeps at most the 30 minutes
    /// before its expiry and the 30 minutes after the index returns (nothing lies between),
    /// plus the live half hour.
    pub const SAMPLES_MAX: usize = 4 * 1_800;

    /// Records an agreed index at `time_ms` (at most one a second). Samples older than the
    /// live half hour are pruned, except from `keep_from_ms` on (the window of the earliest
    /// expiry still waiting for its settlement price), and the newest sample before the
    /// kept span stays, since it holds into it.
    pub fn record(&mut self, time_ms: u64, price: UnitPrice, keep_from_ms: Option<u64>) {
        if self
            .samples
            .back()
            .is_some_and(|(t, _)| time_ms < t + 1_000)
        {
            return;
        }
        self.samples.push_back((time_ms, price));
        let live_from = time_ms.saturating_sub(Self::SPAN_MS + 1_000);
        let keep_from = keep_from_ms.map_or(live_from, |k| k.min(live_from));
        while self.samples.len() > Self::SAMPLES_MAX
            || self.samples.get(1).is_some_and(|(t, _)| *t <= keep_from)
        {
            self.samples.pop_front();
        }
    }

    /// Whether the agreed index was sampled throughout `[from, until]`: no two consecutive
    /// samples (counting the last one before `from`) and no window edge more than
    /// [`Self::GAP_MS_MAX`] apart.
    pub fn covers(&self, from_ms: u64, until_ms: u64) -> bool {
        let mut previous: Option<u64> = None;
        for (t, _) in &self.samples {
            let t = *t;
            if t > until_ms {
                break;
            }
            if t > from_ms {
                let since = previous.unwrap_or(from_ms);
                if t - since > Self::GAP_MS_MAX {
                    return false;
                }
            }
            previous = Some(t);
        }
        previous.is_some_and(|p| until_ms.saturating_sub(p) <= Self::GAP_MS_MAX)
    }

    /// The settlement price of options expiring at `expiry_ms`, as block time `now_ms` knows
    /// it (the rule in ARCHITECTURE.md, "Settlement"):
    /// - the index's time-weighted average over the 30 minutes before expiry, when the index
    ///   was agreed throughout them ([`Self::covers`]);
    /// - otherwise (the chain or its oracle was down around expiry) the average over the first
    ///   30 minutes of agreed index from the first sample at or after expiry, once they have
    ///   passed.
    ///
    /// `None` until one of them exists: the options stay expired, never unsettled for ever,
    /// since the history keeps what a pending expiry needs.
    pub fn settlement_price(&self, expiry_ms: u64, now_ms: u64) -> Option<UnitPrice> {
        if now_ms < expiry_ms {
            return None;
        }
        if self.covers(expiry_ms.saturating_sub(Self::SPAN_MS), expiry_ms) {
            return self.average(expiry_ms);
        }
        let (restart_ms, _) = self.samples.iter().find(|(t, _)| *t >= expiry_ms)?;
        let until_ms = restart_ms + Self::SPAN_MS;
        if now_ms < until_ms {
            return None;
        }
        self.average(until_ms)
    }

    /// The time-weighted average over `[until - SPAN_MS, until]`: each sample holds until the
    /// next (the last until `until`); `None` without a sample in or before the window.
    pub fn average(&self, until_ms: u64) -> Option<UnitPrice> {
        let from = until_ms.saturating_sub(Self::SPAN_MS);
        let mut weighted: i128 = 0;
        let mut total: i128 = 0;
        let samples: Vec<&(u64, UnitPrice)> = self
            .samples
            .iter()
            .filter(|(t, _)| *t <= until_ms)
            .collect();
        for (i, (t, price)) in samples.iter().enumerate() {
            let start = (*t).max(from);
            let end = samples
                .get(i + 1)
                .map_or(until_ms, |(next, _)| (*next).min(until_ms));
            if end > start {
                let span = i128::from(end - start);
                weighted += i128::from(price.micros()) * span;
                total += span;
            }
        }
        if total == 0 {
            // Only one sample, at the end of the window: it is the average.
            return samples.last().map(|(_, p)| *p);
        }
        Some(UnitPrice::from_micros(
            i64::try_from(weighted / total).expect("an average of i64 prices"),
        ))
    }
}
