//! Blocks as the exchange state machine consumes them: height, time, price inputs, the
//! validators' signed price observations and signed transactions.
//!
//! Owns: the block's exchange-level contents and their canonical encoding. Price inputs are
//! sorted by key with no duplicates, and the decoder refuses anything else, so one block has
//! one encoding. Every list is bounded by [`BlockLimits`], which come from our configuration,
//! never from the peer that sent the bytes.
//! Never: consensus fields (parent digest, proposer, certificates); `bulwark-node` wraps this.

use crate::asset::AssetCode;
use crate::ids::{BlockTime, Height, InstrumentId};
use crate::keys::KeyCache;
use crate::name::ExpiryDate;
use crate::num::UnitPrice;
use crate::observation::SignedObservation;
use crate::tx::{SignedTx, verify_batch};
use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, RangeCfg, Read, ReadExt, Write,
};
use rand_core::CryptoRng;

/// Bounds on a decoded block. Part of node configuration; every validator uses the same.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BlockLimits {
    /// Most transactions in one block.
    pub txs_max: usize,
    /// Most entries in each of the block's price input lists.
    pub prices_max: usize,
    /// Most signed price observations (all assets together).
    pub observations_max: usize,
}

impl BlockLimits {
    /// 4,096 transactions of at most `TX_BYTES_MAX` (about 250 bytes) is 1 MiB per block,
    /// and a few milliseconds of execution at a microsecond per transaction.
    pub const DEFAULT: Self = Self {
        txs_max: 4_096,
        prices_max: 1_024,
        // 64 validators observing 16 underlyings: 124 KiB at most.
        observations_max: 1_024,
    };

    /// An upper bound on the encoded size of any block these limits admit: each list's
    /// length prefix at its widest (5 bytes) plus its most entries at their largest.
    pub const fn block_bytes_max(&self) -> usize {
        const PREFIX: usize = 5;
        const INDEX_MAX: usize = 1 + crate::asset::ASSET_CODE_LEN_MAX + 8;
        const MARK: usize = 4 + 8;
        const SETTLEMENT_MAX: usize = 1 + crate::asset::ASSET_CODE_LEN_MAX + 4 + 8;
        let prices = 3 * PREFIX + self.prices_max * (INDEX_MAX + MARK + SETTLEMENT_MAX);
        let observations =
            PREFIX + self.observations_max * crate::observation::SIGNED_OBSERVATION_BYTES_MAX;
        8 + 8 + prices + observations + PREFIX + self.txs_max * crate::tx::TX_BYTES_MAX
    }
}

/// Why price inputs are not well formed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceInputError {
    #[error("a price must be positive")]
    NotPositive,
    #[error("two inputs share a key")]
    Duplicate,
    #[error("more inputs than the block limit allows")]
    TooMany,
}

/// The index price of an underlying (`BTC_USDC` for `BTC`), as agreed for this block.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IndexPrice {
    pub asset: AssetCode,
    pub price: UnitPrice,
}

/// A mark price for one instrument, as agreed for this block.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MarkPrice {
    pub instrument: InstrumentId,
    pub price: UnitPrice,
}

/// The price at which an underlying's options of one expiry settle.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SettlementPrice {
    pub asset: AssetCode,
    pub expiry: ExpiryDate,
    pub price: UnitPrice,
}

/// Prices that enter the state machine with a block. Sorted by key, unique, positive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceInputs {
    index: Vec<IndexPrice>,
    marks: Vec<MarkPrice>,
    settlements: Vec<SettlementPrice>,
}

impl PriceInputs {
    /// Sorts the inputs by key and checks them.
    pub fn new(
        mut index: Vec<IndexPrice>,
        mut marks: Vec<MarkPrice>,
        mut settlements: Vec<SettlementPrice>,
    ) -> Result<Self, PriceInputError> {
        index.sort_by_key(|p| p.asset);
        marks.sort_by_key(|p| p.instrument);
        settlements.sort_by_key(|p| (p.asset, p.expiry));
        let inputs = Self {
            index,
            marks,
            settlements,
        };
        inputs.check(usize::MAX)?;
        Ok(inputs)
    }

    pub fn index(&self) -> &[IndexPrice] {
        &self.index
    }

    pub fn marks(&self) -> &[MarkPrice] {
        &self.marks
    }

    pub fn settlements(&self) -> &[SettlementPrice] {
        &self.settlements
    }

    fn check(&self, prices_max: usize) -> Result<(), PriceInputError> {
        if self.index.len() > prices_max
            || self.marks.len() > prices_max
            || self.settlements.len() > prices_max
        {
            return Err(PriceInputError::TooMany);
        }
        let positive = self
            .index
            .iter()
            .map(|p| p.price)
            .chain(self.marks.iter().map(|p| p.price));
        if !positive
            .chain(self.settlements.iter().map(|p| p.price))
            .all(UnitPrice::is_positive)
        {
            return Err(PriceInputError::NotPositive);
        }
        let increasing = self.index.windows(2).all(|w| w[0].asset < w[1].asset)
            && self
                .marks
                .windows(2)
                .all(|w| w[0].instrument < w[1].instrument)
            && self
                .settlements
                .windows(2)
                .all(|w| (w[0].asset, w[0].expiry) < (w[1].asset, w[1].expiry));
        if !increasing {
            return Err(PriceInputError::Duplicate);
        }
        Ok(())
    }
}

/// A block's exchange contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub height: Height,
    pub time: BlockTime,
    pub prices: PriceInputs,
    /// Validators' signed observations of index prices, as the proposer collected them. Their
    /// signatures are checked like the transactions'; a bad one is dropped by the oracle (and
    /// counted against nobody), never a reason to refuse the block.
    pub observations: Vec<SignedObservation>,
    pub txs: Vec<SignedTx>,
}

impl Block {
    /// Checks every transaction's and observation's signature (in batches) and pairs the
    /// block with the verdicts.
    pub fn check_signatures(self, rng: &mut impl CryptoRng) -> CheckedBlock {
        let signature_valid = verify_batch(rng, &self.txs);
        let observation_valid = crate::observation::verify_batch(rng, &self.observations);
        CheckedBlock {
            block: self,
            signature_valid,
            observation_valid,
        }
    }

    /// Like [`Self::check_signatures`], but trusts `known_txs[i]` and `known_observations[i]`
    /// when true: signatures this process verified before (a validator carries verdicts from
    /// mempool admission and observation arrival, by the digest of the full signed encoding).
    /// Verifies only the rest, one batch for transactions and one for observations, without
    /// copying them.
    pub fn check_signatures_cached(
        self,
        rng: &mut impl CryptoRng,
        known_txs: &[bool],
        known_observations: &[bool],
    ) -> CheckedBlock {
        assert_eq!(
            known_txs.len(),
            self.txs.len(),
            "one verdict per transaction"
        );
        assert_eq!(
            known_observations.len(),
            self.observations.len(),
            "one verdict per observation"
        );
        let signature_valid =
            verify_unknown(rng, &self.txs, known_txs, |rng, txs| verify_batch(rng, txs));
        let observation_valid =
            verify_unknown(rng, &self.observations, known_observations, |rng, found| {
                crate::observation::verify_batch(rng, found)
            });
        CheckedBlock {
            block: self,
            signature_valid,
            observation_valid,
        }
    }
}

/// `known`, with each false entry replaced by `verify`'s verdict on that item (all of them in
/// one batch of references).
fn verify_unknown<T, R: CryptoRng>(
    rng: &mut R,
    items: &[T],
    known: &[bool],
    verify: impl FnOnce(&mut R, &[&T]) -> Vec<bool>,
) -> Vec<bool> {
    debug_assert_eq!(items.len(), known.len());
    let mut verdicts = known.to_vec();
    let unknown: Vec<&T> = items
        .iter()
        .zip(known)
        .filter(|(_, known)| !**known)
        .map(|(item, _)| item)
        .collect();
    if unknown.is_empty() {
        return verdicts;
    }
    let checked = verify(rng, &unknown);
    assert_eq!(checked.len(), unknown.len(), "one verdict per item");
    let mut checked = checked.into_iter();
    for verdict in verdicts.iter_mut().filter(|v| !**v) {
        *verdict = checked.next().expect("counted above");
    }
    verdicts
}

/// A block whose transaction and observation signatures have been checked. Only
/// [`Block::check_signatures`] and [`Block::check_signatures_cached`] make one, so the
/// exchange can trust the verdicts without verifying again.
#[derive(Clone, Debug)]
pub struct CheckedBlock {
    block: Block,
    signature_valid: Vec<bool>,
    observation_valid: Vec<bool>,
}

impl CheckedBlock {
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Whether transaction `index` carries a valid signature.
    pub fn signature_valid(&self, index: usize) -> bool {
        self.signature_valid[index]
    }

    /// Whether every transaction carries a valid signature (observations aside: a badly
    /// signed observation is the oracle's to drop).
    pub fn all_signatures_valid(&self) -> bool {
        self.signature_valid.iter().all(|ok| *ok)
    }

    /// One verdict per transaction, in block order.
    pub fn signature_verdicts(&self) -> &[bool] {
        &self.signature_valid
    }

    /// One verdict per observation, in block order.
    pub fn observation_verdicts(&self) -> &[bool] {
        &self.observation_valid
    }

    pub fn into_block(self) -> Block {
        self.block
    }
}

// ---- codec ----

impl Write for IndexPrice {
    fn write(&self, buf: &mut impl BufMut) {
        self.asset.write(buf);
        self.price.write(buf);
    }
}

impl EncodeSize for IndexPrice {
    fn encode_size(&self) -> usize {
        self.asset.encode_size() + UnitPrice::SIZE
    }
}

impl Read for IndexPrice {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            asset: AssetCode::read(buf)?,
            price: UnitPrice::read(buf)?,
        })
    }
}

impl Write for MarkPrice {
    fn write(&self, buf: &mut impl BufMut) {
        self.instrument.write(buf);
        self.price.write(buf);
    }
}

impl FixedSize for MarkPrice {
    const SIZE: usize = InstrumentId::SIZE + UnitPrice::SIZE;
}

impl Read for MarkPrice {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            instrument: InstrumentId::read(buf)?,
            price: UnitPrice::read(buf)?,
        })
    }
}

impl Write for ExpiryDate {
    fn write(&self, buf: &mut impl BufMut) {
        self.year().write(buf);
        self.month().write(buf);
        self.day().write(buf);
    }
}

impl FixedSize for ExpiryDate {
    const SIZE: usize = 4;
}

impl Read for ExpiryDate {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let (year, month, day) = (u16::read(buf)?, u8::read(buf)?, u8::read(buf)?);
        ExpiryDate::new(year, month, day)
            .ok_or(CodecError::Invalid("ExpiryDate", "not a calendar date"))
    }
}

impl Write for SettlementPrice {
    fn write(&self, buf: &mut impl BufMut) {
        self.asset.write(buf);
        self.expiry.write(buf);
        self.price.write(buf);
    }
}

impl EncodeSize for SettlementPrice {
    fn encode_size(&self) -> usize {
        self.asset.encode_size() + ExpiryDate::SIZE + UnitPrice::SIZE
    }
}

impl Read for SettlementPrice {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            asset: AssetCode::read(buf)?,
            expiry: ExpiryDate::read(buf)?,
            price: UnitPrice::read(buf)?,
        })
    }
}

impl Write for PriceInputs {
    fn write(&self, buf: &mut impl BufMut) {
        self.index.write(buf);
        self.marks.write(buf);
        self.settlements.write(buf);
    }
}

impl EncodeSize for PriceInputs {
    fn encode_size(&self) -> usize {
        self.index.encode_size() + self.marks.encode_size() + self.settlements.encode_size()
    }
}

impl Read for PriceInputs {
    /// Most entries per list.
    type Cfg = usize;
    fn read_cfg(buf: &mut impl Buf, prices_max: &usize) -> Result<Self, CodecError> {
        let range = RangeCfg::new(0..=*prices_max);
        let inputs = Self {
            index: Vec::<IndexPrice>::read_cfg(buf, &(range, ()))?,
            marks: Vec::<MarkPrice>::read_cfg(buf, &(range, ()))?,
            settlements: Vec::<SettlementPrice>::read_cfg(buf, &(range, ()))?,
        };
        inputs.check(*prices_max).map_err(|e| match e {
            PriceInputError::NotPositive => {
                CodecError::Invalid("PriceInputs", "price not positive")
            }
            PriceInputError::Duplicate => {
                CodecError::Invalid("PriceInputs", "keys not strictly increasing")
            }
            PriceInputError::TooMany => CodecError::Invalid("PriceInputs", "too many entries"),
        })?;
        Ok(inputs)
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.time.write(buf);
        self.prices.write(buf);
        self.observations.write(buf);
        self.txs.write(buf);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        Height::SIZE
            + BlockTime::SIZE
            + self.prices.encode_size()
            + self.observations.encode_size()
            + self.txs.encode_size()
    }
}

impl Read for Block {
    type Cfg = BlockLimits;
    fn read_cfg(buf: &mut impl Buf, limits: &BlockLimits) -> Result<Self, CodecError> {
        Ok(Self {
            height: Height::read(buf)?,
            time: BlockTime::read(buf)?,
            prices: PriceInputs::read_cfg(buf, &limits.prices_max)?,
            observations: Vec::<SignedObservation>::read_cfg(
                buf,
                &(RangeCfg::new(0..=limits.observations_max), ()),
            )?,
            txs: Vec::<SignedTx>::read_cfg(buf, &(RangeCfg::new(0..=limits.txs_max), ()))?,
        })
    }
}

impl Block {
    /// Reads a block as its `Read` does (the same bytes accepted, the same value), decoding the
    /// observers' and signers' keys through `keys` (see [`KeyCache`]).
    pub fn read_keyed(
        buf: &mut impl Buf,
        limits: &BlockLimits,
        keys: &KeyCache,
    ) -> Result<Self, CodecError> {
        Ok(Self {
            height: Height::read(buf)?,
            time: BlockTime::read(buf)?,
            prices: PriceInputs::read_cfg(buf, &limits.prices_max)?,
            observations: keys.read_list(buf, limits.observations_max, |k, b| {
                k.read_signed_observation(b)
            })?,
            txs: keys.read_list(buf, limits.txs_max, |k, b| k.read_signed_tx(b))?,
        })
    }
}
