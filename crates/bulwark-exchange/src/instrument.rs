//! A listed instrument's replicated state: contract terms, life cycle, book, mark price,
//! funding schedule and the accounts that hold it.

use bulwark_book::{Book, BookLimits};
use bulwark_types::{AccountId, InstrumentId, InstrumentKind, InstrumentSpec, UnitPrice};
use std::collections::BTreeSet;

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
    /// Accounts with a non-zero position.
    pub holders: BTreeSet<AccountId>,
}

impl Instrument {
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
        }
    }

    pub fn is_option(&self) -> bool {
        matches!(self.kind, InstrumentKind::Option { .. })
    }
}
