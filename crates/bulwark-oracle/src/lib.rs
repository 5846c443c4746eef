//! Turn validators' signed price observations into index prices that f liars cannot move.
//!
//! Status: ALPHA. The observation wire format and drop codes may still change.
//!
//! Each validator signs an [`Observation`] per index (price, its own time, how many sources it
//! combined) under [`OBSERVATION_NAMESPACE`]; a block carries the observations its leader
//! collected. For each tracked asset the state machine keeps at most one fresh, validly signed
//! observation per validator, requires at least `2f + 1` of them, and takes their median
//! ([`aggregate()`]), so at most `f` faulty validators can move it no further than the honest
//! observations span. Every dropped observation gets a typed [`DropReason`]; outliers beyond
//! `max(k * MAD, floor)` are flagged; both are kept per validator ([`ValidatorRecords`]).
//! The median then passes a deviation guard ([`DeviationGuard`]) that follows small moves at
//! once and large ones at a bounded rate, so a one-block spike cannot liquidate anyone.
//! [`OracleState::apply_block`] runs the whole step for a block.
//!
//! Validators get their observations from [`PriceSource`]s: a replayed CSV file
//! ([`CsvReplay`]) or a seeded synthetic market with jumps and scripted crashes
//! ([`SyntheticSource`]), both reproducible bit for bit. [`observe_sources`] combines one
//! validator's sources only when a majority of those configured answer and agree
//! ([`SourceQuorum`]); otherwise the validator abstains.
//!
//! This crate is pure: no I/O, clock, threads or OS randomness. Replicated computations use
//! integers only; the synthetic market uses `f64` with `libm` and rounds once to micro-USDC.

pub mod aggregate;
pub mod config;
pub mod guard;
pub mod median;
pub mod observation;
pub mod record;
pub mod source;
pub mod state;
pub mod validators;

pub use aggregate::{
    Accepted, AggregateContext, AssetAggregate, DropCounts, DropReason, Dropped, IndexOutcome,
    MedianStats, aggregate,
};
pub use config::{ConfigError, GuardConfig, OracleConfig, PPM};
pub use guard::{DeviationGuard, GuardStep, GuardVerdict};
pub use observation::{
    OBSERVATION_NAMESPACE, Observation, SIGNED_OBSERVATION_BYTES_MAX, SignedObservation,
    verify_batch,
};
pub use record::{ValidatorRecord, ValidatorRecords};
pub use source::csv::{CsvError, CsvLimits, CsvReplay};
pub use source::deribit::{DeribitIndexFeed, FeedError, Frame, Ingested, decode_frame};
pub use source::synthetic::{
    Crash, MarketConfig, MarketError, ObserverNoise, SyntheticMarket, SyntheticSource,
};
pub use source::{
    AGREE_BPS_MAX, PriceSource, SOURCES_MAX, SourceQuorum, SourceQuote, observe_sources,
};
pub use state::{AssetIndex, AssetOutcome, OracleMode, OracleOutcome, OracleState, StateError};
pub use validators::{VALIDATORS_MAX, ValidatorSet, ValidatorSetError};
