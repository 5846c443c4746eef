//! Run the Bulwark exchange: a deterministic state machine for USDC-settled options and
//! perpetuals that every validator applies to the same finalized blocks.
//!
//! Status: ALPHA.
//!
//! [`Exchange::apply_block`] takes a block whose signatures were checked
//! ([`bulwark_types::CheckedBlock`]) and returns its [`BlockOutcome`]: a typed result for every
//! transaction and the events (trades, cancels, funding, expiry, settlement) it produced. A
//! running [`StateDigest`] chains the outcomes; [`Exchange::snapshot`] and
//! [`Exchange::restore`] move the whole state in one canonical, digested encoding.
//!
//! Pure: no I/O, clock, threads or randomness. Time is the block's; nothing external can make
//! it panic (bad input is a [`bulwark_types::RejectReason`] in the outcome); a panic means
//! internal corruption, and [`Exchange::check_invariants`] looks for it after every block in
//! debug builds and with the `verify` feature.

pub mod account;
mod accounts;
pub mod depth;
pub mod event;
pub mod exchange;
pub mod instrument;
pub mod invariants;
mod ledger;
pub mod lifecycle;
pub mod liquidation;
pub mod margin;
pub mod mmp;
pub mod oracle;
pub mod params;
pub mod portfolio;
mod screen;
pub mod snapshot;
pub mod surface;
mod trading;
mod transfers;

pub use account::{Account, Exposure, KeyRole, MarginMode};
pub use event::{BlockOutcome, Event, Trade, TxOutcome};
pub use exchange::{AccountMargin, BlockError, Exchange, Ledger, StateDigest};
pub use instrument::{Instrument, InstrumentStatus};
pub use invariants::InvariantViolation;
pub use margin::{MarginModel, MarginRequirement, StandardMargin};
pub use params::{ConfigError, ExchangeParams, Genesis, LiquidationParams, SurfaceMarkParams};
pub use portfolio::PortfolioMarginModel;
pub use snapshot::SnapshotError;
pub use surface::{FittedSmile, MarkOrigin, SeriesKey};
