//! Why a risk computation refused its inputs.
//!
//! Owns: [`RiskError`], the single error type of every fallible public function in this crate,
//! and [`ParamsError`], which names the parameter relation a [`crate::PortfolioMarginParams`]
//! breaks.
//! Never: carries a `String` or a NaN; every variant is data a caller can match on.
//! Bounds: none needed (plain `Copy` data).

use bulwark_pricing::PricingError;
use bulwark_types::SpecError;

/// Which relation between portfolio margin parameters does not hold. Declaration order is the
/// order in which [`crate::PortfolioMarginParams::check`] tests them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("move_points must be odd and within 3..=MOVE_POINTS_MAX")]
    MovePoints,
    #[error("price range: 1 <= range_min_bps <= range_max_bps, widest grid within -90%")]
    Range,
    #[error("range_sigmas_bps must be positive and at most 1_000_000")]
    RangeSigmas,
    #[error("vol shocks: up <= 100_000 bps, down > 0, down x vol_scale_max < 1e8 bps^2")]
    VolShock,
    #[error("vol scale: 0 < vol_scale_min_bps <= vol_scale_max_bps <= 100_000")]
    VolScale,
    #[error("extreme moves: multiple in 10_000..=100_000 bps, cover in 0..=10_000 bps")]
    Extreme,
    #[error("short option add-on must be at most 10_000 bps of the underlying")]
    ShortOptionAddon,
    #[error("initial margin must be 1x to 10x maintenance (10_000..=100_000 bps)")]
    InitialMultiple,
    #[error("realised vol: sample >= 1 s, half-life >= 1 ms, 1 <= initial <= max <= 1e6 bps")]
    RealisedVol,
}

/// Why a risk computation could not produce a result. Bad inputs are errors, never NaN or a
/// panic.
#[derive(Copy, Clone, Debug, PartialEq, thiserror::Error)]
pub enum RiskError {
    /// The parameters break a documented relation.
    #[error("parameters: {0}")]
    Params(#[from] ParamsError),
    /// A grid range outside the parameters' `[range_min_bps, range_max_bps]`.
    #[error("range {range_bps} bps lies outside [{min}, {max}]")]
    RangeOutOfBounds { range_bps: u32, min: u32, max: u32 },
    /// The index price must be positive.
    #[error("index price must be positive")]
    IndexNotPositive,
    /// A volatility must be finite and inside the pricing domain.
    #[error("volatility {vol} must be finite and within [{min}, {max}]")]
    VolInvalid { vol: f64, min: f64, max: f64 },
    /// The instrument's terms do not pass [`bulwark_types::InstrumentSpec::check`].
    #[error("instrument: {0}")]
    Spec(#[from] SpecError),
    /// The instrument's underlying differs from the valuation's.
    #[error("instrument underlying differs from the valuation's underlying")]
    UnderlyingMismatch,
    /// A contract vector and an account vector were built on different valuations or grids:
    /// the account vector is stale and must be rebuilt.
    #[error("contract and account vectors were built on different valuations or grids")]
    BasisMismatch,
    /// A fill's `position_before` cannot be the account's: the vector's totals (contracts,
    /// shorts, longs) would go negative. The caller's positions and vector have diverged.
    #[error("position before the fill does not match the account vector")]
    PositionInconsistent,
    /// The model could not price an input (carries the pricing crate's reason).
    #[error("pricing: {0}")]
    Pricing(#[from] PricingError),
    /// A model value could not become an integer: NaN, infinite, or beyond `2^53` micro-USDC.
    #[error("{what} is not a finite value within +-2^53 micro-USDC")]
    ValueOutOfRange { what: &'static str },
    /// Integer arithmetic left its type.
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// More items than the named bound allows.
    #[error("{what}: {count} exceeds the maximum {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// The index printed at a time before the previous print.
    #[error("index print at {time_ms} ms is before the previous one at {previous_ms} ms")]
    TimeBackwards { time_ms: u64, previous_ms: u64 },
    /// A stress shock is out of its documented domain.
    #[error("shock {field} = {value} lies outside [{min}, {max}] or is not finite")]
    ShockInvalid {
        field: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
    /// No volatility is given for an option of a stress portfolio.
    #[error("no volatility for an option expiring at {expiry_ms} ms")]
    VolMissing { expiry_ms: u64 },
}
