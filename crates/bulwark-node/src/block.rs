//! The chain's block: the exchange block plus what consensus and divergence checks need.
//!
//! Owns: the block's wire format and digest. The digest is SHA-256 over a domain tag and the
//! canonical encoding, so it commits to the consensus context, the parent, the state digest,
//! the state hash (where one is due) and every transaction; it is computed from the fields on construction and on decode, never
//! read off the wire.

use crate::commitment::StateHash;
use bulwark_exchange::StateDigest;
use bulwark_types::{
    Block as ExchangeBlock, BlockLimits, BlockTime, Height as ExchangeHeight, KeyCache, PriceInputs,
};
use bytes::BufMut;
use commonware_codec::{
    Buf, Encode, EncodeSize, Error as CodecError, FixedSize, MaxEncodeSize, Read, ReadExt, Write,
};
use commonware_consensus::simplex::types::Context;
use commonware_consensus::types::{Epoch, Height, Round, View};
use commonware_consensus::{Block, BoundedBlock, CertifiableBlock, Heightable};
use commonware_cryptography::ed25519::PublicKey;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digestible, Hasher, Sha256};

/// Consensus context embedded in every block (the `Deferred` marshal wrapper re-verifies from it).
pub type Ctx = Context<Digest, PublicKey>;

/// Domain separation of block digests.
const BLOCK_NAMESPACE: &[u8] = b"_BULWARK_BLOCK_V1";

/// A block of the Bulwark chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBlock {
    /// Round, leader and parent view the block was proposed under.
    pub context: Ctx,
    /// Digest of the parent block.
    pub parent: Digest,
    /// The exchange's state digest after the parent block: a validator whose own state
    /// disagrees finds out at this block.
    pub state_digest: StateDigest,
    /// The hash of the whole state after the parent block, where the chain's rule says a block
    /// carries one (see [`crate::commitment`]): every verifier recomputes it.
    pub state_hash: Option<StateHash>,
    /// What the exchange applies: height, time, price inputs, transactions.
    pub body: ExchangeBlock,
    /// Cached; derived from the fields above, not encoded.
    digest: Digest,
}

impl ChainBlock {
    pub fn new(
        context: Ctx,
        parent: Digest,
        state_digest: StateDigest,
        state_hash: Option<StateHash>,
        body: ExchangeBlock,
    ) -> Self {
        let mut block = Self {
            context,
            parent,
            state_digest,
            state_hash,
            body,
            digest: Digest::EMPTY_DIGEST,
        };
        block.digest = Sha256::hash(&[BLOCK_NAMESPACE, &block.encode()]);
        block
    }

    /// The block every validator starts from: height 0, never proposed, no transactions.
    pub fn genesis(leader: PublicKey, state_digest: StateDigest, time: BlockTime) -> Self {
        let context = Ctx {
            round: Round::new(Epoch::zero(), View::zero()),
            leader,
            parent: (View::zero(), Digest::EMPTY_DIGEST),
        };
        let body = ExchangeBlock {
            height: ExchangeHeight::new(0),
            time,
            prices: PriceInputs::default(),
            observations: Vec::new(),
            txs: Vec::new(),
        };
        Self::new(context, Digest::EMPTY_DIGEST, state_digest, None, body)
    }

    pub fn time(&self) -> BlockTime {
        self.body.time
    }
}

/// The all-zero digest, as a constant usable in constructors.
trait EmptyDigest {
    const EMPTY_DIGEST: Self;
}

impl EmptyDigest for Digest {
    const EMPTY_DIGEST: Self = <Digest as commonware_cryptography::Digest>::EMPTY;
}

impl Write for ChainBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.context.write(buf);
        self.parent.write(buf);
        self.state_digest.write(buf);
        self.state_hash.write(buf);
        self.body.write(buf);
    }
}

impl EncodeSize for ChainBlock {
    fn encode_size(&self) -> usize {
        self.context.encode_size()
            + Digest::SIZE
            + StateDigest::SIZE
            + self.state_hash.encode_size()
            + self.body.encode_size()
    }
}

/// How a chain block is decoded: within `limits`, its signers' and observers' keys through
/// `keys` (a validator's own cache, shared by its broadcast buffer, marshal and archives, so a
/// trader's key is decompressed once, not once per block and per archive read).
#[derive(Clone, Debug)]
pub struct BlockCodec {
    pub limits: BlockLimits,
    pub keys: KeyCache,
}

impl BlockCodec {
    /// Decodes every key (tools, tests, a one-off decode).
    pub const fn uncached(limits: BlockLimits) -> Self {
        Self {
            limits,
            keys: KeyCache::none(),
        }
    }
}

impl Read for ChainBlock {
    type Cfg = BlockCodec;
    fn read_cfg(buf: &mut impl Buf, codec: &BlockCodec) -> Result<Self, CodecError> {
        let context = Ctx::read(buf)?;
        let parent = Digest::read(buf)?;
        let state_digest = StateDigest::read(buf)?;
        let state_hash = Option::<StateHash>::read(buf)?;
        let body = ExchangeBlock::read_keyed(buf, &codec.limits, &codec.keys)?;
        Ok(Self::new(context, parent, state_digest, state_hash, body))
    }
}

impl Digestible for ChainBlock {
    type Digest = Digest;
    fn digest(&self) -> Digest {
        self.digest
    }
}

impl Heightable for ChainBlock {
    fn height(&self) -> Height {
        Height::new(self.body.height.get())
    }
}

impl Block for ChainBlock {
    fn parent(&self) -> Digest {
        self.parent
    }
}

impl CertifiableBlock for ChainBlock {
    type Context = Ctx;
    fn context(&self) -> Ctx {
        self.context.clone()
    }
}

impl BoundedBlock for ChainBlock {
    fn max_encode_size(codec: &BlockCodec) -> usize {
        let limits = &codec.limits;
        Ctx::MAX_ENCODE_SIZE
            + Digest::SIZE
            + StateDigest::SIZE
            + 1
            + StateHash::SIZE
            + limits.block_bytes_max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Copying, Decode};
    use commonware_cryptography::Signer;

    fn sample() -> ChainBlock {
        let leader = bulwark_types::PrivateKey::from_seed(1).public_key();
        let genesis = ChainBlock::genesis(
            leader.clone(),
            Digest::EMPTY_DIGEST,
            BlockTime::from_millis(5),
        );
        let body = ExchangeBlock {
            height: ExchangeHeight::new(1),
            time: BlockTime::from_millis(7),
            prices: PriceInputs::default(),
            observations: Vec::new(),
            txs: Vec::new(),
        };
        let context = Ctx {
            round: Round::new(Epoch::zero(), View::new(1)),
            leader,
            parent: (View::zero(), genesis.digest()),
        };
        ChainBlock::new(
            context,
            genesis.digest(),
            Digest::EMPTY_DIGEST,
            Some(Sha256::hash(&[b"state"])),
            body,
        )
    }

    #[test]
    fn decoded_block_derives_its_digest_from_its_fields() {
        let block = sample();
        let bytes = block.encode();
        assert!(
            bytes.len() <= ChainBlock::max_encode_size(&BlockCodec::uncached(BlockLimits::DEFAULT))
        );
        let decoded =
            ChainBlock::decode_cfg(bytes.clone(), &BlockCodec::uncached(BlockLimits::DEFAULT))
                .unwrap();
        assert_eq!(decoded, block);
        assert_eq!(decoded.digest(), block.digest());
        // Any change to the encoding changes the digest.
        let mut altered = bytes.to_vec();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        if let Ok(other) = ChainBlock::decode_cfg(
            Copying(&altered),
            &BlockCodec::uncached(BlockLimits::DEFAULT),
        ) {
            assert_ne!(other.digest(), block.digest());
        }
    }

    /// Regression (issue 14, item 0): the transaction the `tx_decode` fuzz target found (an
    /// instrument name with a multi-byte character in its expiry) panicked the name parser.
    /// Inside a proposed block, and inside a peer's gossip batch, it is now a decoding error:
    /// the block gets no vote and the peer is blocked, and nobody panics.
    #[test]
    fn a_block_or_gossip_batch_carrying_the_fuzzer_s_name_is_refused_not_a_panic() {
        let hostile = include_bytes!("../../../fuzz/seeds/tx_decode/regression-multibyte-expiry");
        let mut bytes = sample().encode().to_vec();
        assert_eq!(
            bytes.pop(),
            Some(0),
            "an empty transaction list ends the block"
        );
        bytes.push(1);
        bytes.extend_from_slice(hostile);
        assert!(
            ChainBlock::decode_cfg(Copying(&bytes), &BlockCodec::uncached(BlockLimits::DEFAULT))
                .is_err()
        );
        let mut batch = vec![1u8];
        batch.extend_from_slice(hostile);
        let range = commonware_codec::RangeCfg::new(0..=64usize);
        assert!(Vec::<bulwark_types::SignedTx>::decode_cfg(Copying(&batch), &(range, ())).is_err());
    }

    #[test]
    fn state_digest_is_committed() {
        let block = sample();
        let other = ChainBlock::new(
            block.context.clone(),
            block.parent,
            Sha256::hash(&[b"x"]),
            block.state_hash,
            block.body.clone(),
        );
        assert_ne!(other.digest(), block.digest());
        for state_hash in [None, Some(Sha256::hash(&[b"y"]))] {
            let other = ChainBlock::new(
                block.context.clone(),
                block.parent,
                block.state_digest,
                state_hash,
                block.body.clone(),
            );
            assert_ne!(
                other.digest(),
                block.digest(),
                "the state hash is committed"
            );
        }
    }
}
