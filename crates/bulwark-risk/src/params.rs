//! Portfolio margin parameters: one struct, integer fields, defaults with their sources.
//!
//! Owns: [`PortfolioMarginParams`], its [`PortfolioMarginParams::defaults`] and the relations
//! [`PortfolioMarginParams::check`] enforces.
//! Never: a `Default` impl (defaults are spelled out with their sources), or a float field
//! (parameters are replicated: set in genesis, changed only by governance).
//! Bounds: every field has a checked range; the widest grid the parameters allow keeps every
//! scenario's index positive.

use crate::error::ParamsError;

/// Basis points in one whole: 10_000 bps = 100%.
pub const BPS: u32 = 10_000;
/// Most index moves in the grid (odd). 21 moves x 3 vols + 2 extremes + 10 guard scenarios = 75.
pub const MOVE_POINTS_MAX: u8 = 21;
/// Milliseconds in the 365-day year every time-to-expiry in this crate is measured in.
pub const YEAR_MS: u64 = 365 * DAY_MS;
/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;

/// Portfolio margin on a scenario grid, in the manner of Deribit's portfolio margin and CME SPAN.
/// Replicated: set in genesis, changed only by governance. No `Default`; `check()` returns a
/// [`ParamsError`].
///
/// The grid: `move_points` index moves evenly spaced over `[-range, +range]` (zero included),
/// each with the implied vol up, unchanged and down; two extreme moves at
/// `+-range x extreme_multiple` with vol unchanged, whose loss counts at `extreme_cover`. Options
/// are revalued in full with Black-76 on the moved index; perpetuals move linearly. Maintenance
/// is the worst weighted scenario loss plus `short_option_addon` per short option contract;
/// initial is maintenance times `initial_over_maintenance`. The range adapts: it is
/// `range_sigmas` daily standard deviations of the index's exponentially weighted realised vol,
/// clamped to `[range_min, range_max]` (see [`crate::RealisedVol`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortfolioMarginParams {
    /// Index moves in the grid, odd so that zero is one of them. Default 9: Deribit's portfolio
    /// margin splits its price range into "9 evenly spaced buckets ... including a bucket for
    /// zero price movement" (support.deribit.com, "Portfolio Margin", article 25944756247837).
    pub move_points: u8,
    /// Narrowest price range, bps of the index, either way. Default 1_600 (+-16%), Deribit's
    /// current maximum underlying move for BTC in the same article. The adaptive range never
    /// goes below it.
    pub range_min_bps: u32,
    /// Widest price range, bps of the index. Default 3_200 (+-32%): twice the floor, Bulwark's
    /// choice; a day of 150% annualised realised vol at `range_sigmas_bps` reaches it.
    pub range_max_bps: u32,
    /// The adaptive range in daily standard deviations of realised vol, bps (10_000 = 1 sigma).
    /// Default 40_000 (4 sigma): at BTC's long-run realised vol of about 60% a year a daily sigma
    /// is 3.1% and 4 sigma is 12.6%, under the 16% floor; the range starts to widen when
    /// realised vol passes about 76%. SPAN sets its price scan range to cover a high percentile
    /// of one- or two-day moves in the same spirit.
    pub range_sigmas_bps: u32,
    /// Implied vol shock up at 30 days to expiry, bps of the current vol (relative). Default
    /// 4_000 (+40%): Deribit's earlier published rule was `sqrt(30 / days) x 40%`
    /// (deribit.com/docs, "Portfolio margin").
    pub vol_up_bps: u32,
    /// Implied vol shock down at 30 days, bps of the current vol. Default 2_500 (-25%), Bulwark's
    /// choice: implied vol falls more slowly than it spikes.
    pub vol_down_bps: u32,
    /// Least scale of the vol shocks (`sqrt(30 days / T)` below this is raised to it), bps.
    /// Default 2_500 (0.25, reached at T = 480 days): long-dated vol still moves.
    pub vol_scale_min_bps: u32,
    /// Greatest scale of the vol shocks, bps. Default 30_000 (3.0, reached at T = 3.3 days):
    /// keeps the shock of an option about to expire finite; with `vol_down_bps` the lowest
    /// shocked vol is 25% of the current one.
    pub vol_scale_max_bps: u32,
    /// Extreme moves as a multiple of the range, bps. Default 20_000 (2x, +-32% at the floor),
    /// near the -33% point of Deribit's extended table (same article); SPAN's extreme scenarios
    /// are likewise a multiple of the price scan range.
    pub extreme_multiple_bps: u32,
    /// Fraction of an extreme scenario's loss that counts, bps. Default 3_500: SPAN's 16-scenario
    /// risk array counts its two extreme moves at 35% (CME Group, "CME SPAN methodology").
    pub extreme_cover_bps: u32,
    /// Add-on per short option contract, bps of the index times the contract multiplier.
    /// Default 100 (1%): Deribit's earlier rules added 0.01 BTC per net short 1-BTC option
    /// (deribit.com/pages/docs/portfoliomargin). Charged per instrument, not netted per strike.
    pub short_option_addon_bps: u32,
    /// Initial margin as a multiple of maintenance, bps. Default 12_500 (1.25x), Bulwark's choice:
    /// CME's initial margin for speculators is 110% of maintenance (CME Clearing advisories, for
    /// instance 15-030: 3,135 initial over 2,850 maintenance); crypto trades around the clock and
    /// gaps further, so the buffer is wider.
    pub initial_over_maintenance_bps: u32,
    /// The realised vol estimator takes one index sample per this many milliseconds; prints in
    /// between are ignored. Default 300_000 (5 minutes): long enough that tick noise does not
    /// dominate, short enough that a crash widens the range within minutes.
    pub realised_vol_sample_ms: u64,
    /// Half-life of the exponential weights, milliseconds. Default 86_400_000 (one day).
    /// RiskMetrics' daily lambda of 0.94 is an 11-day half-life, made for VaR; margin wants to
    /// react within the day, and the range floor keeps quiet periods from shrinking it.
    pub realised_vol_half_life_ms: u64,
    /// The estimator's starting annualised vol, bps. Default 6_000 (60%), about BTC's long-run
    /// realised vol.
    pub realised_vol_initial_bps: u32,
    /// Largest annualised vol one sample may contribute, bps. Default 100_000 (1,000%): a bound
    /// that keeps the state finite, far above anything seen (a 16% move in 5 minutes is about
    /// 5,700% annualised and is capped here).
    pub realised_vol_sample_max_bps: u32,
}

impl PortfolioMarginParams {
    /// The genesis defaults; each field's doc gives its source.
    pub const fn defaults() -> Self {
        Self {
            move_points: 9,
            range_min_bps: 1_600,
            range_max_bps: 3_200,
            range_sigmas_bps: 40_000,
            vol_up_bps: 4_000,
            vol_down_bps: 2_500,
            vol_scale_min_bps: 2_500,
            vol_scale_max_bps: 30_000,
            extreme_multiple_bps: 20_000,
            extreme_cover_bps: 3_500,
            short_option_addon_bps: 100,
            initial_over_maintenance_bps: 12_500,
            realised_vol_sample_ms: 300_000,
            realised_vol_half_life_ms: 86_400_000,
            realised_vol_initial_bps: 6_000,
            realised_vol_sample_max_bps: 100_000,
        }
    }

    /// Checks every field's range and the relations between fields, in declaration order of
    /// [`ParamsError`].
    pub fn check(&self) -> Result<(), ParamsError> {
        if self.move_points % 2 == 0 || !(3..=MOVE_POINTS_MAX).contains(&self.move_points) {
            return Err(ParamsError::MovePoints);
        }
        if self.range_min_bps == 0 || self.range_min_bps > self.range_max_bps {
            return Err(ParamsError::Range);
        }
        // The guard scenarios reach one step beyond the range, and the extremes (with the guard
        // band around them) must leave the index positive: both below 100% at the widest range.
        let half = u64::from(self.move_points / 2);
        let beyond = u64::from(self.range_max_bps) * (half + 1) / half;
        let extreme =
            u64::from(self.range_max_bps) * u64::from(self.extreme_multiple_bps) / u64::from(BPS);
        if beyond >= u64::from(BPS) * 9 / 10 || extreme >= u64::from(BPS) * 9 / 10 {
            return Err(ParamsError::Range);
        }
        if self.range_sigmas_bps == 0 || self.range_sigmas_bps > 1_000_000 {
            return Err(ParamsError::RangeSigmas);
        }
        let down_at_max = u64::from(self.vol_down_bps) * u64::from(self.vol_scale_max_bps);
        if self.vol_up_bps > 100_000
            || self.vol_down_bps == 0
            || down_at_max >= u64::from(BPS) * u64::from(BPS)
        {
            return Err(ParamsError::VolShock);
        }
        if self.vol_scale_min_bps == 0
            || self.vol_scale_min_bps > self.vol_scale_max_bps
            || self.vol_scale_max_bps > 100_000
        {
            return Err(ParamsError::VolScale);
        }
        if !(BPS..=100_000).contains(&self.extreme_multiple_bps) || self.extreme_cover_bps > BPS {
            return Err(ParamsError::Extreme);
        }
        if self.short_option_addon_bps > BPS {
            return Err(ParamsError::ShortOptionAddon);
        }
        if !(BPS..=100_000).contains(&self.initial_over_maintenance_bps) {
            return Err(ParamsError::InitialMultiple);
        }
        if self.realised_vol_sample_ms < 1_000
            || self.realised_vol_half_life_ms == 0
            || self.realised_vol_sample_max_bps > 1_000_000
            || !(1..=self.realised_vol_sample_max_bps).contains(&self.realised_vol_initial_bps)
        {
            return Err(ParamsError::RealisedVol);
        }
        Ok(())
    }
}
