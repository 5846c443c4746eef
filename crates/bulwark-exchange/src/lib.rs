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
//!
//! Money bounds. Amounts are `i128` micro-USDC. Arithmetic on them whose `expect` message ends
//! in "(money bounds)" crashes rather than rejects, because no transaction can take it near
//! the limit:
//! - one position's value, cost, premium, fee or margin is below 2^117: at most
//!   `position_max` (10^12 < 2^40) contracts of at most 10^4 units (`MULTIPLIER_E8_MAX`) at a
//!   price below 2^63 micro-USDC per unit; an order is bounded alike (`QTY_MAX`, `PRICE_MAX`);
//! - cash, fees and the fund only move by transfers (`ledger.rs`), so their sum is deposits
//!   less withdrawals: each deposit is at most `TRANSFER_MAX` (< 2^70), and a deposit that
//!   would take the total out of range is refused (`BalanceOverflow`);
//! - an account's sums (equity, requirements, unrealised value, reserved premium, perpetual
//!   costs) add to its cash one term per instrument it trades, at most `instruments_max`
//!   (<= 10^6 < 2^20): below 2^127 while the prices validators agree stay below 2^50
//!   micro-USDC (10^9 USDC) per unit of underlying, whatever positions accounts hold.
//!
//! A crash there is internal corruption or prices no quorum should sign, never one trader's
//! input.

pub mod account;
mod accounts;
pub mod custody;
#[cfg(feature = "deliberate-bugs")]
pub mod deliberate_bugs;
pub mod depth;
pub mod event;
pub mod exchange;
mod index_prices;
pub mod instrument;
mod instruments;
pub mod invariants;
mod keys;
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
pub mod withdrawals;

pub use account::{Account, ClientOrders, Exposure, KeyRole, MarginMode};
pub use custody::{Custody, CustodyState};
pub use event::{BlockOutcome, Event, Trade, TxOutcome};
pub use exchange::{AccountMargin, BlockError, Exchange, Ledger, StateDigest};
pub use instrument::{Instrument, InstrumentStatus};
pub use invariants::InvariantViolation;
pub use margin::{MarginModel, MarginRequirement, StandardMargin};
pub use params::{ConfigError, ExchangeParams, Genesis, LiquidationParams, SurfaceMarkParams};
pub use portfolio::PortfolioMarginModel;
pub use snapshot::SnapshotError;
pub use surface::{FittedSmile, MarkOrigin, SeriesKey};
pub use trading::CancelTarget;
pub use withdrawals::PendingWithdrawal;
