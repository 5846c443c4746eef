//! Match orders by price-time priority in one instrument's limit order book.
//!
//! Status: ALPHA.
//!
//! Owns: the instrument's resting orders, their queue positions, and the fills an incoming
//! order produces: limit orders that rest (good-til-cancelled), immediate-or-cancel and
//! fill-or-kill orders, post-only orders that refuse to take, and self-trade prevention
//! (cancel maker, cancel taker, cancel both); and the halted mode whose call auction reopens
//! the instrument at the price that matches the most ([`Book::halt`], [`Book::reopen`]).
//! Never: reads a clock, checks margin, fees, price bands or reduce-only positions (the
//! exchange's admission did), assigns ids, or touches another instrument. Knows accounts only
//! as ids, to prevent self-trades.
//! Bounds: at most [`BookLimits::orders_max`] resting orders; one incoming order makes at most
//! [`BookLimits::fills_per_match_max`] fills, and the rest of it is cancelled.
//!
//! Copied on write: a [`Book`]'s copies share one [`BookState`] until one of them changes.
//!
//! Pure: no I/O, clock, randomness or async.

mod auction;
mod book;
mod order;

pub use auction::{AuctionOutcome, Uncross, uncrossing_price};
pub use book::{Book, BookCorruption, BookLimits, BookState};
pub use order::{BookReject, Fill, MatchSink, NewOrder, Placement, Remainder, RestingOrder};
