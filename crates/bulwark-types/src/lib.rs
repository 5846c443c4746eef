//! Define the vocabulary of the Bulwark exchange: numbers, ids, names, transactions and blocks.
//!
//! Status: ALPHA. Wire formats may still change; conformance fixtures pin them.
//!
//! Everything in replicated state is an integer: prices in ticks ([`Price`]), sizes in
//! contracts ([`Qty`]), money in micro-USDC ([`Money`], `i128`), currency prices per unit of
//! the underlying ([`UnitPrice`]). Arithmetic is checked; overflow is an [`ArithError`].
//! Every decoder bounds what it reads by limits the reader chooses ([`BlockLimits`]) and
//! rejects non-canonical encodings.
//!
//! This crate is pure: no I/O, clock, threads or randomness of its own (batch signature
//! verification takes the caller's random source).

pub mod asset;
pub mod batch;
pub mod block;
pub mod chunked;
#[cfg(feature = "counting-allocator")]
pub mod counting_alloc;
pub mod ids;
pub mod instrument;
pub mod keys;
pub mod name;
pub mod num;
pub mod observation;
pub mod order;
pub mod reject;
pub mod tx;

pub use asset::AssetCode;
pub use block::{
    Block, BlockLimits, CheckedBlock, IndexPrice, MarkPrice, PriceInputs, SettlementPrice,
};
pub use chunked::ChunkedVec;
pub use commonware_cryptography::ed25519::{PrivateKey, PublicKey, Signature};
pub use ids::{AccountId, BlockTime, ClientOrderId, Height, InstrumentId, Nonce, OrderId};
pub use instrument::{InstrumentKind, InstrumentSpec, SpecError};
pub use keys::{KeyCache, SignerKey};
pub use name::{ExpiryDate, InstrumentName, NameError, Right};
pub use num::{ArithError, Money, Multiplier, Price, Qty, UnitPrice};
pub use observation::{Observation, SignedObservation};
pub use order::{
    CancelReason, OrderRef, OrderRequest, OrderType, SelfTradePrevention, Side, TimeInForce,
};
pub use reject::RejectReason;
pub use tx::{CustodyAction, MmpConfig, SignedTx, Tx, TxBody};
