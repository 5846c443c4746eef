//! Signature verdicts: each transaction's and each price observation's signature is verified
//! once per validator, in batches, and the verdict is reused wherever the same signed bytes
//! come back (mempool admission, proposal, verification, replay, finalization).
//!
//! Owns: [`Verdicts`], what this validator remembers of signatures it verified: the digests of
//! validly signed transactions (admission, blocks) and observations (arrival, blocks), and the
//! verdicts of the newest blocks it judged, by block digest; and [`check_block`], the one
//! place a chain block's signatures are judged, and [`carry_own_proposal`], which carries the
//! mempool's and observation pool's verdicts into this validator's own proposal.
//! Never: reuses a verdict for anything but byte-identical signed content. Every key is the
//! SHA-256 of a full signed encoding (signature included), or a block digest (which commits to
//! every byte of the block): a leader that changes one byte of a body, a nonce or a signature
//! misses the cache, and what misses is batch-verified before this validator votes.
//! Bounds: at most `capacity` transaction digests, [`OBSERVATIONS_MAX`] observation digests
//! and [`BLOCKS_MAX`] blocks' verdicts; the oldest are forgotten first (a forgotten verdict
//! costs a verification, never a wrong answer).

use crate::block::ChainBlock;
use crate::mempool::{TxDigest, tx_digest};
use crate::shared::lock;
use bulwark_types::{CheckedBlock, SignedObservation};
use commonware_codec::Encode;
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digestible, Hasher, Sha256};
use rand_core::CryptoRng;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Observation digests remembered: 1,024 observations a block, eight blocks' worth.
pub const OBSERVATIONS_MAX: usize = 8_192;

/// Blocks whose verdicts are remembered: the speculative chain a validator votes on and
/// finalizes (consensus finalizes a block a few views after verifying it).
pub const BLOCKS_MAX: usize = 64;

/// SHA-256 of a signed observation's encoding (signature included): the key of its verdict.
pub fn observation_digest(observation: &SignedObservation) -> Digest {
    Sha256::hash(&[&observation.encode()])
}

/// A set of digests that forgets the oldest beyond `capacity`.
#[derive(Debug)]
struct DigestSet {
    known: HashSet<Digest>,
    order: VecDeque<Digest>,
    capacity: usize,
}

impl DigestSet {
    fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "cache capacity positive");
        Self {
            known: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn contains(&self, digest: &Digest) -> bool {
        self.known.contains(digest)
    }

    fn insert(&mut self, digest: Digest) {
        if self.known.insert(digest) {
            self.order.push_back(digest);
            if self.order.len() > self.capacity {
                let oldest = self.order.pop_front().expect("non-empty");
                self.known.remove(&oldest);
            }
        }
        debug_assert_eq!(self.known.len(), self.order.len());
        debug_assert!(self.order.len() <= self.capacity);
    }
}

/// One block's verdicts, in block order.
#[derive(Debug)]
struct BlockVerdicts {
    txs: Vec<bool>,
    observations: Vec<bool>,
}

/// The signatures this validator verified. See the module doc.
#[derive(Debug)]
pub struct Verdicts {
    txs: DigestSet,
    observations: DigestSet,
    /// Newest last, at most [`BLOCKS_MAX`].
    blocks: VecDeque<(Digest, Arc<BlockVerdicts>)>,
}

impl Verdicts {
    /// Remembers at most `capacity` transaction digests.
    pub fn new(capacity: usize) -> Self {
        Self {
            txs: DigestSet::new(capacity),
            observations: DigestSet::new(OBSERVATIONS_MAX),
            blocks: VecDeque::with_capacity(BLOCKS_MAX),
        }
    }

    /// Whether the transaction with this digest (of its full signed encoding) verified here.
    pub fn tx_valid(&self, digest: &TxDigest) -> bool {
        self.txs.contains(digest)
    }

    /// Remembers that the transaction with this digest verified.
    pub fn insert_tx(&mut self, digest: TxDigest) {
        self.txs.insert(digest);
    }

    /// Whether the observation with this digest (of its full signed encoding) verified here.
    pub fn observation_valid(&self, digest: &Digest) -> bool {
        self.observations.contains(digest)
    }

    /// Remembers that `observation`'s signature verified.
    pub fn insert_observation(&mut self, observation: &SignedObservation) {
        self.observations.insert(observation_digest(observation));
    }

    fn block(&self, digest: &Digest) -> Option<Arc<BlockVerdicts>> {
        self.blocks
            .iter()
            .rev()
            .find(|(d, _)| d == digest)
            .map(|(_, v)| v.clone())
    }

    fn insert_block(&mut self, digest: Digest, checked: &CheckedBlock) {
        if self.blocks.iter().any(|(d, _)| *d == digest) {
            return;
        }
        if self.blocks.len() == BLOCKS_MAX {
            self.blocks.pop_front();
        }
        let verdicts = BlockVerdicts {
            txs: checked.signature_verdicts().to_vec(),
            observations: checked.observation_verdicts().to_vec(),
        };
        self.blocks.push_back((digest, Arc::new(verdicts)));
        debug_assert!(self.blocks.len() <= BLOCKS_MAX);
    }
}

/// Signature verdicts for `block`'s transactions and observations. A block judged before (by
/// its digest) reuses its verdicts; otherwise each transaction and observation verified before
/// (by the digest of its signed encoding) is trusted, and the rest are batch-verified. The
/// lock is not held while verifying.
pub fn check_block(
    verdicts: &Mutex<Verdicts>,
    rng: &mut impl CryptoRng,
    block: &ChainBlock,
) -> CheckedBlock {
    let digest = block.digest();
    let body = &block.body;
    let remembered = lock(verdicts).block(&digest);
    if let Some(known) = remembered {
        // A false verdict (never in a block this validator voted for) is verified again.
        return body
            .clone()
            .check_signatures_cached(rng, &known.txs, &known.observations);
    }
    let tx_digests: Vec<TxDigest> = body.txs.iter().map(tx_digest).collect();
    let observation_digests: Vec<Digest> =
        body.observations.iter().map(observation_digest).collect();
    let (known_txs, known_observations): (Vec<bool>, Vec<bool>) = {
        let cache = lock(verdicts);
        (
            tx_digests.iter().map(|d| cache.tx_valid(d)).collect(),
            observation_digests
                .iter()
                .map(|d| cache.observation_valid(d))
                .collect(),
        )
    };
    let checked = body
        .clone()
        .check_signatures_cached(rng, &known_txs, &known_observations);
    let mut cache = lock(verdicts);
    for (digest, valid) in tx_digests.into_iter().zip(checked.signature_verdicts()) {
        if *valid {
            cache.insert_tx(digest);
        }
    }
    for (digest, valid) in observation_digests
        .into_iter()
        .zip(checked.observation_verdicts())
    {
        if *valid {
            cache.observations.insert(digest);
        }
    }
    cache.insert_block(digest, &checked);
    checked
}

/// Verdicts for this validator's own proposal, whose transactions all come from its mempool
/// (admitted only with a valid signature) and whose observations all come from its observation
/// pool (offered only once verified): nothing is hashed or verified. The verdicts are
/// remembered under the block's digest for its replay and finalization.
pub fn carry_own_proposal(
    verdicts: &Mutex<Verdicts>,
    rng: &mut impl CryptoRng,
    block: &ChainBlock,
) -> CheckedBlock {
    let body = &block.body;
    let checked = body.clone().check_signatures_cached(
        rng,
        &vec![true; body.txs.len()],
        &vec![true; body.observations.len()],
    );
    lock(verdicts).insert_block(block.digest(), &checked);
    checked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Ctx;
    use bulwark_types::{
        AssetCode, Block as ExchangeBlock, BlockTime, Height, Money, Observation, PriceInputs,
        PrivateKey, SignedTx, TxBody, UnitPrice,
    };
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_cryptography::Signer as _;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn withdrawal(seed: u64, nonce: u64, usdc: i64) -> SignedTx {
        TxBody::Withdraw {
            amount: Money::from_usdc(usdc),
        }
        .signed(&PrivateKey::from_seed(seed), nonce)
    }

    fn observation(seed: u64, usdc: i64) -> SignedObservation {
        let key = PrivateKey::from_seed(seed);
        Observation {
            validator: key.public_key(),
            asset: AssetCode::parse("BTC").unwrap(),
            price: UnitPrice::from_usdc(usdc),
            observed_at_ms: 1_000,
            sources: 1,
        }
        .sign(&key)
    }

    fn chain_block(txs: Vec<SignedTx>, observations: Vec<SignedObservation>) -> ChainBlock {
        let leader = PrivateKey::from_seed(99).public_key();
        let context = Ctx {
            round: Round::new(Epoch::zero(), View::new(1)),
            leader,
            parent: (View::zero(), Sha256::hash(&[b"parent"])),
        };
        let body = ExchangeBlock {
            height: Height::new(1),
            time: BlockTime::from_millis(2_000),
            prices: PriceInputs::default(),
            observations,
            txs,
        };
        ChainBlock::new(
            context,
            Sha256::hash(&[b"parent"]),
            Sha256::hash(&[b"state"]),
            None,
            body,
        )
    }

    /// The verdicts this validator holds after admitting `txs` and receiving `observations`.
    fn admitted(txs: &[SignedTx], observations: &[SignedObservation]) -> Mutex<Verdicts> {
        let mut verdicts = Verdicts::new(1_024);
        for tx in txs {
            assert!(tx.verify());
            verdicts.insert_tx(tx_digest(tx));
        }
        for observation in observations {
            assert!(observation.verify());
            verdicts.insert_observation(observation);
        }
        Mutex::new(verdicts)
    }

    /// The attack: a Byzantine leader reuses the (key, nonce) of a transaction this validator
    /// admitted, with another amount under the admitted transaction's signature, or with a
    /// stranger's signature; and an observation of the same validator, asset and time with
    /// another price under the cached one's signature. Nothing cached may vouch for them.
    #[test]
    fn a_leader_s_forgeries_beside_admitted_transactions_and_observations_are_refused() {
        let honest = withdrawal(1, 7, 5);
        let honest_observation = observation(2, 65_000);
        let verdicts = admitted(
            std::slice::from_ref(&honest),
            std::slice::from_ref(&honest_observation),
        );
        let mut rng = ChaCha8Rng::seed_from_u64(3);

        let mut altered = honest.clone();
        altered.tx.body = TxBody::Withdraw {
            amount: Money::from_usdc(5_000),
        };
        let mut restamped = honest.clone();
        restamped.signature = withdrawal(3, 7, 5).signature;
        let mut repriced = honest_observation.clone();
        repriced.observation.price = UnitPrice::from_usdc(1);

        let block = chain_block(
            vec![honest.clone(), altered, restamped],
            vec![honest_observation.clone(), repriced],
        );
        let checked = check_block(&verdicts, &mut rng, &block);
        assert_eq!(checked.signature_verdicts(), &[true, false, false]);
        assert!(!checked.all_signatures_valid(), "the block gets no vote");
        assert_eq!(checked.observation_verdicts(), &[true, false]);
        // Replayed or finalized, the same block keeps the same verdicts.
        let again = check_block(&verdicts, &mut rng, &block);
        assert_eq!(again.signature_verdicts(), &[true, false, false]);
        assert_eq!(again.observation_verdicts(), &[true, false]);
        // No forgery entered the caches: in another block it is still refused.
        let other = chain_block(
            block.body.txs[1..].to_vec(),
            block.body.observations[1..].to_vec(),
        );
        let checked = check_block(&verdicts, &mut rng, &other);
        assert_eq!(checked.signature_verdicts(), &[false, false]);
        assert_eq!(checked.observation_verdicts(), &[false]);
    }

    #[test]
    fn a_block_of_unseen_signatures_is_verified_and_then_remembered() {
        let verdicts = admitted(&[], &[]);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let txs: Vec<SignedTx> = (0..5).map(|i| withdrawal(10 + i, 1, 1)).collect();
        let block = chain_block(txs.clone(), vec![observation(20, 1)]);
        let checked = check_block(&verdicts, &mut rng, &block);
        assert!(checked.all_signatures_valid());
        assert_eq!(checked.observation_verdicts(), &[true]);
        let cache = lock(&verdicts);
        assert!(txs.iter().all(|tx| cache.tx_valid(&tx_digest(tx))));
        assert!(cache.observation_valid(&observation_digest(&observation(20, 1))));
        assert!(cache.block(&block.digest()).is_some());
    }

    #[test]
    fn caches_forget_the_oldest_beyond_their_bounds() {
        let mut set = DigestSet::new(2);
        let digests: Vec<Digest> = (0u8..3).map(|i| Sha256::hash(&[&[i]])).collect();
        for digest in &digests {
            set.insert(*digest);
        }
        set.insert(digests[2]);
        assert!(!set.contains(&digests[0]));
        assert!(set.contains(&digests[1]) && set.contains(&digests[2]));
        let verdicts = Mutex::new(Verdicts::new(1));
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let blocks: Vec<ChainBlock> = (0..BLOCKS_MAX as u64 + 1)
            .map(|i| chain_block(Vec::new(), vec![observation(i, 1)]))
            .collect();
        for block in &blocks {
            carry_own_proposal(&verdicts, &mut rng, block);
        }
        let cache = lock(&verdicts);
        assert_eq!(cache.blocks.len(), BLOCKS_MAX);
        assert!(cache.block(&blocks[0].digest()).is_none());
        assert!(cache.block(&blocks[BLOCKS_MAX].digest()).is_some());
    }
}
