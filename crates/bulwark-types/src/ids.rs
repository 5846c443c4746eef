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
    Nonce,
    u64
);

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
