//! Identifiers and counters: accounts, orders, instruments, heights, block time, nonces.
//!
//! Owns: the integer identity of every replicated entity. Ids are assigned by the exchange in
//! sequence (never by clients), so they are dense and deterministic.
//! Never: wraps. A counter that would overflow is a bug ([`Self::next`] panics), since a `u64`
//! advanced once per order cannot reach its end.

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, ReadExt, Write};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $inner:ty) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($inner);

        impl $name {
            pub const fn new(value: $inner) -> Self {
                Self(value)
            }

            pub const fn get(self) -> $inner {
                self.0
            }

            /// The following id. Panics on overflow: ids advance by one per entity created.
            pub fn next(self) -> Self {
                Self(self.0.checked_add(1).expect(concat!(stringify!($name), " overflow")))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Write for $name {
            fn write(&self, buf: &mut impl BufMut) {
                self.0.write(buf);
            }
        }

        impl FixedSize for $name {
            const SIZE: usize = <$inner>::SIZE;
        }

        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                Ok(Self(<$inner>::read(buf)?))
            }
        }
    };
}

id_type!(
    /// An account, numbered from 0 in the order of first deposit.
    AccountId,
    u64
);
id_type!(
    /// An order as the exchange numbers it, from 0 in the order of acceptance.
    OrderId,
    u64
);
id_type!(
    /// An order as its account numbers it. Unique among the account's open orders.
    ClientOrderId,
    u64
);
id_type!(
    /// An instrument, numbered from 0 in the order of listing; never reused.
    InstrumentId,
    u32
);
id_type!(
    /// A block's height; genesis is height 0 and the first block is height 1.
    Height,
    u64
);
id_type!(
    /// A signer's transaction counter. Each transaction's nonce must exceed the last one that
    /// signer used (gaps allowed), which makes every signed transaction usable once.
    ///
    /// A nonce from [`Nonce::TIME_FLOOR`] up is also a time, in microseconds since the Unix
    /// epoch, and makes its transaction expire: it executes only in a block whose time lies
    /// within [`Nonce::TIME_WINDOW_MS`] of it either way ([`Nonce::time_check`]). So a
    /// transaction someone was handed and kept back (nonces may skip, so a later one of its
    /// signer's does not spend it) cannot be played after a minute, when the price has moved.
    /// (A block's time is its leader's clock within the verifiers' bounds: at most 5 s behind
    /// theirs and 1 s ahead, so a Byzantine leader stretches the minute by at most 5 s.)
    /// Smaller nonces are counters only and never expire: a signer that wants its transactions
    /// to expire signs them with the clock (the gateway and the command line do).
    Nonce,
    u64
);

impl Nonce {
    /// The smallest nonce read as a time: 10^15 microseconds after the Unix epoch is
    /// 2001-09-09, so a clock's nonce is one and a counter (from 1, one per transaction)
    /// never reaches it.
    pub const TIME_FLOOR: u64 = 1_000_000_000_000_000;
    /// How far a time nonce may lie before or after the block's time: 60 s, the largest
    /// `recvWindow` Binance's API accepts for a signed request, and well past the gateway's
    /// wait for an order (10 s) and for its settling (4 s more).
    pub const TIME_WINDOW_MS: u64 = 60_000;

    /// Whether a transaction with this nonce may execute in a block of `time`: always for a
    /// counter; for a time nonce, only within [`Self::TIME_WINDOW_MS`] of it.
    pub fn time_check(self, time: BlockTime) -> Result<(), crate::RejectReason> {
        if self.0 < Self::TIME_FLOOR {
            return Ok(());
        }
        let nonce_ms = self.0 / 1_000;
        if time.millis() > nonce_ms.saturating_add(Self::TIME_WINDOW_MS) {
            return Err(crate::RejectReason::NonceExpired);
        }
        if nonce_ms > time.millis().saturating_add(Self::TIME_WINDOW_MS) {
            return Err(crate::RejectReason::NonceAhead);
        }
        Ok(())
    }
}

/// Block time in milliseconds since the Unix epoch, from the block header (never the machine's
/// clock). Non-decreasing along the chain.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockTime(u64);

impl BlockTime {
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    pub const fn millis(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for BlockTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl Write for BlockTime {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl FixedSize for BlockTime {
    const SIZE: usize = u64::SIZE;
}

impl Read for BlockTime {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(u64::read(buf)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RejectReason;
    use proptest::prelude::*;

    const NOW_MS: u64 = 1_780_000_000_000;

    fn at(ms: u64) -> BlockTime {
        BlockTime::from_millis(ms)
    }

    #[test]
    fn a_time_nonce_executes_only_within_a_minute_of_the_block() {
        let signed = Nonce::new(NOW_MS * 1_000);
        assert_eq!(signed.time_check(at(NOW_MS)), Ok(()));
        assert_eq!(signed.time_check(at(NOW_MS + 60_000)), Ok(()));
        assert_eq!(
            signed.time_check(at(NOW_MS + 60_001)),
            Err(RejectReason::NonceExpired)
        );
        assert_eq!(signed.time_check(at(NOW_MS - 60_000)), Ok(()));
        assert_eq!(
            signed.time_check(at(NOW_MS - 60_001)),
            Err(RejectReason::NonceAhead)
        );
    }

    #[test]
    fn a_counter_never_expires() {
        for nonce in [0, 1, 2, Nonce::TIME_FLOOR - 1] {
            assert_eq!(Nonce::new(nonce).time_check(at(u64::MAX)), Ok(()));
            assert_eq!(Nonce::new(nonce).time_check(at(0)), Ok(()));
        }
        assert_eq!(
            Nonce::new(Nonce::TIME_FLOOR).time_check(at(u64::MAX)),
            Err(RejectReason::NonceExpired)
        );
    }

    proptest! {
        /// Any nonce against any block time: a decision without overflow, and a time nonce
        /// is accepted exactly when its milliseconds lie within the window of the block's.
        #[test]
        fn the_window_is_exactly_a_minute_either_way(nonce in any::<u64>(), time in any::<u64>()) {
            let verdict = Nonce::new(nonce).time_check(at(time));
            let nonce_ms = u128::from(nonce / 1_000);
            let (time, window) = (u128::from(time), u128::from(Nonce::TIME_WINDOW_MS));
            let inside = nonce_ms + window >= time && time + window >= nonce_ms;
            prop_assert_eq!(verdict.is_ok(), nonce < Nonce::TIME_FLOOR || inside);
        }

        /// Clock nonces near the block's time, where the edges are.
        #[test]
        fn near_the_block_the_edges_are_a_minute_away(
            time in NOW_MS..NOW_MS * 2,
            offset_ms in -120_000i64..=120_000,
            micros in 0u64..1_000,
        ) {
            let nonce_ms = time.checked_add_signed(offset_ms).unwrap();
            let verdict = Nonce::new(nonce_ms * 1_000 + micros).time_check(at(time));
            let expected = if offset_ms < -60_000 {
                Err(RejectReason::NonceExpired)
            } else if offset_ms > 60_000 {
                Err(RejectReason::NonceAhead)
            } else {
                Ok(())
            };
            prop_assert_eq!(verdict, expected);
        }
    }
}
