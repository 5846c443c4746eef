//! Decoded public keys, remembered by their bytes. Decoding an ed25519 key decompresses its
//! curve point (a field exponentiation: microseconds), and a validator decodes the same
//! traders' keys again and again: in every gossiped transaction, in every block that carries
//! one, in every block it reads back from its archives.
//!
//! Owns: [`SignerKey`], a key's 32 bytes as a compact map key (a decoded [`PublicKey`] carries
//! its curve point too: 192 bytes, six times the cache lines a lookup walks through), and
//! [`KeyCache`], a bounded memo from a key's 32 bytes to the key decoded from exactly
//! those bytes, and the keyed decoders of signed transactions and observations that use it.
//! Never: a verdict. A key held here is only what decoding its bytes gives (the same value,
//! compared and hashed by the same bytes); it says nothing of any signature made with it,
//! which is verified as before. Bytes that are not a key are never held: they fail to decode
//! every time.
//! Bounds: at most `capacity` keys; past that the oldest inserted is forgotten, which costs
//! only a decompression the next time it is decoded.

use crate::ids::Nonce;
use crate::observation::{Observation, SignedObservation};
use crate::tx::{SignedTx, Tx, TxBody};
use commonware_codec::{Buf, Copying, DecodeExt, Error as CodecError, Read, ReadExt};
use commonware_cryptography::ed25519::{PublicKey, Signature};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Bytes of an encoded public key.
const KEY_BYTES: usize = 32;

/// A signing key by its encoding: what [`PublicKey`] compares, orders and hashes by (its
/// encoding; distinct encodings are distinct keys), without the decoded point. For maps keyed
/// by signer that are read on every transaction.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct SignerKey([u8; KEY_BYTES]);

/// The bytes' lexicographic order, as `[u8; 32]`'s own. The first eight bytes, read as one
/// big-endian word, decide almost every comparison in a register; only keys that share them
/// (an attacker can grind a few such, never make them common) compare the rest. The ordered
/// maps keyed by signer (the mempool's queues, the exchange's key table) compare keys a
/// dozen times a lookup, several lookups a transaction.
impl Ord for SignerKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (head, rest) = self.0.split_at(8);
        let (other_head, other_rest) = other.0.split_at(8);
        let word = |bytes: &[u8]| u64::from_be_bytes(bytes.try_into().expect("eight bytes"));
        word(head)
            .cmp(&word(other_head))
            .then_with(|| rest.cmp(other_rest))
    }
}

impl PartialOrd for SignerKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl SignerKey {
    pub fn of(key: &PublicKey) -> Self {
        let bytes: &[u8] = key.as_ref();
        Self(bytes.try_into().expect("an ed25519 public key is 32 bytes"))
    }

    /// These bytes as a key's, whether or not they encode a curve point.
    pub const fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(bytes)
    }

    /// The key's encoding, as [`PublicKey`] writes it.
    pub const fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Memo {
    /// Ordered, not hashed: the bytes are whoever sent them, and a fixed, unkeyed hash (this
    /// crate has no randomness to key one with) lets a sender craft keys that all collide,
    /// turning every decode into a scan of the cache. A B-tree costs O(log n) whatever the bytes
    /// (keyed by [`SignerKey`], whose comparison reads a word before it calls `memcmp`).
    keys: BTreeMap<SignerKey, PublicKey>,
    /// Insertion order, oldest first.
    order: VecDeque<SignerKey>,
    capacity: usize,
}

/// Keys decoded before, by their bytes, shared by clones (one per validator). See the module
/// doc. [`KeyCache::none`] remembers nothing: every key is decoded.
#[derive(Clone, Debug)]
pub struct KeyCache {
    memo: Option<Arc<Mutex<Memo>>>,
}

impl KeyCache {
    /// Remembers at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a key cache holds at least one key");
        Self {
            memo: Some(Arc::new(Mutex::new(Memo {
                keys: BTreeMap::new(),
                order: VecDeque::with_capacity(capacity.min(4_096)),
                capacity,
            }))),
        }
    }

    /// Remembers nothing: decodes every key (tools, tests, a single decode).
    pub const fn none() -> Self {
        Self { memo: None }
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.memo.as_ref().map_or(0, |memo| lock(memo).keys.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key these bytes encode: the held one if these bytes were decoded before, else
    /// decoded now (and held if they are a key).
    pub fn decode(&self, bytes: [u8; KEY_BYTES]) -> Result<PublicKey, CodecError> {
        let Some(memo) = &self.memo else {
            return PublicKey::decode(Copying(&bytes[..]));
        };
        let held = SignerKey::from_bytes(bytes);
        if let Some(key) = lock(memo).keys.get(&held) {
            return Ok(key.clone());
        }
        // Not under the lock: decompression is the slow part.
        let key = PublicKey::decode(Copying(&bytes[..]))?;
        debug_assert_eq!(key.as_ref(), &bytes[..], "a key keeps its encoding");
        let mut memo = lock(memo);
        if memo.keys.insert(held, key.clone()).is_none() {
            memo.order.push_back(held);
            if memo.order.len() > memo.capacity {
                let oldest = memo.order.pop_front().expect("non-empty");
                memo.keys.remove(&oldest);
            }
        }
        debug_assert_eq!(memo.keys.len(), memo.order.len());
        assert!(memo.keys.len() <= memo.capacity, "bounded");
        Ok(key)
    }

    /// Reads a public key from `buf` through the cache.
    pub fn read_key(&self, buf: &mut impl Buf) -> Result<PublicKey, CodecError> {
        let bytes = <[u8; KEY_BYTES]>::read(buf)?;
        self.decode(bytes)
    }

    /// Reads a signed transaction, its signer's key through the cache. Accepts exactly the
    /// bytes [`SignedTx`]'s `Read` accepts and gives the same value.
    pub fn read_signed_tx(&self, buf: &mut impl Buf) -> Result<SignedTx, CodecError> {
        let signer = self.read_key(buf)?;
        let nonce = Nonce::read(buf)?;
        let body = TxBody::read(buf)?;
        Ok(SignedTx {
            tx: Tx {
                signer,
                nonce,
                body,
            },
            signature: Signature::read(buf)?,
        })
    }

    /// Reads a signed observation, its validator's key through the cache. Accepts exactly the
    /// bytes [`SignedObservation`]'s `Read` accepts and gives the same value.
    pub fn read_signed_observation(
        &self,
        buf: &mut impl Buf,
    ) -> Result<SignedObservation, CodecError> {
        let validator = self.read_key(buf)?;
        let observation = Observation::read_fields(buf, validator)?;
        Ok(SignedObservation {
            observation,
            signature: Signature::read(buf)?,
        })
    }

    /// Reads a list of at most `max` items with `read` (the list encoding of
    /// `commonware_codec`'s `Vec`: a varint length, then the items).
    pub fn read_list<B: Buf, T>(
        &self,
        buf: &mut B,
        max: usize,
        read: impl Fn(&Self, &mut B) -> Result<T, CodecError>,
    ) -> Result<Vec<T>, CodecError> {
        let len = usize::read_cfg(buf, &commonware_codec::RangeCfg::new(0..=max))?;
        let mut items = Vec::with_capacity(len.min(buf.remaining()));
        for _ in 0..len {
            items.push(read(self, buf)?);
        }
        assert!(items.len() <= max);
        Ok(items)
    }
}

fn lock(memo: &Mutex<Memo>) -> std::sync::MutexGuard<'_, Memo> {
    // A panic elsewhere while holding the lock leaves the memo whole: every write keeps it so.
    memo.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        #[test]
        fn signer_keys_order_as_their_bytes(
            a in proptest::array::uniform32(proptest::prelude::any::<u8>()),
            b in proptest::array::uniform32(proptest::prelude::any::<u8>()),
            shared in 0usize..=32,
        ) {
            // Keys sharing their first `shared` bytes, so the tail comparison is reached too.
            let mut b = b;
            b[..shared].copy_from_slice(&a[..shared]);
            let (x, y) = (super::SignerKey::from_bytes(a), super::SignerKey::from_bytes(b));
            proptest::prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            proptest::prop_assert_eq!(x.partial_cmp(&y), Some(a.cmp(&b)));
            proptest::prop_assert_eq!(x == y, a == b);
        }
    }

    use super::*;
    use crate::num::Money;
    use crate::{AssetCode, PrivateKey, UnitPrice};
    use commonware_codec::{Decode, Encode};
    use commonware_cryptography::Signer as _;

    fn withdrawal(seed: u64, nonce: u64) -> SignedTx {
        TxBody::Withdraw {
            amount: Money::from_usdc(5),
        }
        .signed(&PrivateKey::from_seed(seed), nonce)
    }

    #[test]
    fn keyed_decoding_gives_what_plain_decoding_gives_and_refuses_what_it_refuses() {
        let keys = KeyCache::new(8);
        let tx = withdrawal(1, 3);
        let bytes = tx.encode();
        for _ in 0..2 {
            let decoded = keys.read_signed_tx(&mut bytes.clone()).unwrap();
            assert_eq!(decoded, tx);
            assert!(decoded.verify());
        }
        assert_eq!(keys.len(), 1);
        let key = PrivateKey::from_seed(2);
        let observation = Observation {
            validator: key.public_key(),
            asset: AssetCode::parse("BTC").unwrap(),
            price: UnitPrice::from_usdc(65_000),
            observed_at_ms: 9,
            sources: 2,
        }
        .sign(&key);
        let bytes = observation.encode();
        let decoded = keys.read_signed_observation(&mut bytes.clone()).unwrap();
        assert_eq!(decoded, observation);
        assert_eq!(keys.len(), 2);
        // Every truncation and every single-byte change is refused, or decoded to the same
        // value, by both decoders alike.
        let bytes = tx.encode().to_vec();
        for cut in 0..bytes.len() {
            assert!(keys.read_signed_tx(&mut Copying(&bytes[..cut])).is_err());
        }
        for i in 0..bytes.len() {
            for flip in [1u8, 0x80] {
                let mut altered = bytes.clone();
                altered[i] ^= flip;
                let plain = SignedTx::decode(Copying(&altered[..]));
                let mut buf = Copying(&altered[..]);
                let keyed = keys.read_signed_tx(&mut buf).and_then(|t| {
                    if buf.0.is_empty() {
                        Ok(t)
                    } else {
                        Err(CodecError::ExtraData(buf.0.len()))
                    }
                });
                assert_eq!(plain.ok(), keyed.ok(), "byte {i} flipped by {flip}");
            }
        }
    }

    /// A cached key is only a key: a forged signature or body under a key the cache holds is
    /// still refused, and bytes that are no key never enter it.
    #[test]
    fn a_held_key_vouches_for_no_signature_and_no_key_is_made_up() {
        let keys = KeyCache::new(8);
        let honest = withdrawal(1, 3);
        keys.read_signed_tx(&mut honest.encode()).unwrap();
        let mut forged = honest.clone();
        forged.tx.body = TxBody::Withdraw {
            amount: Money::from_usdc(5_000),
        };
        let decoded = keys.read_signed_tx(&mut forged.encode()).unwrap();
        assert_eq!(decoded.tx.signer, honest.tx.signer);
        assert!(!decoded.verify(), "the held key does not make it valid");
        // The y coordinate 2 is on no curve point: refused every time, never held.
        let mut not_a_key = [0u8; KEY_BYTES];
        not_a_key[0] = 2;
        assert!(PublicKey::decode(Copying(&not_a_key[..])).is_err());
        for _ in 0..2 {
            assert!(keys.decode(not_a_key).is_err());
        }
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn the_cache_forgets_the_oldest_beyond_its_bound() {
        let keys = KeyCache::new(2);
        let signed: Vec<SignedTx> = (0..3).map(|i| withdrawal(10 + i, 1)).collect();
        for tx in &signed {
            keys.read_signed_tx(&mut tx.encode()).unwrap();
        }
        assert_eq!(keys.len(), 2);
        let memo = lock(keys.memo.as_ref().unwrap());
        let held = |tx: &SignedTx| {
            let bytes: [u8; KEY_BYTES] = tx.tx.signer.as_ref().try_into().unwrap();
            memo.keys.contains_key(&SignerKey::from_bytes(bytes))
        };
        assert!(!held(&signed[0]) && held(&signed[1]) && held(&signed[2]));
        drop(memo);
        // A list reads through the cache and keeps its bound.
        let list = signed.encode();
        let read = |cap| keys.read_list(&mut list.clone(), cap, |k, b| k.read_signed_tx(b));
        assert_eq!(read(3).unwrap(), signed);
        assert!(read(2).is_err());
        let plain = Vec::<SignedTx>::decode_cfg(
            list.clone(),
            &(commonware_codec::RangeCfg::new(0..=3), ()),
        );
        assert_eq!(plain.unwrap(), signed);
    }
}
