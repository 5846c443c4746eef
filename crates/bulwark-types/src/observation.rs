//! Validators' signed price observations and their wire format.
//!
//! Owns: the [`Observation`] a validator makes of one index (its price, the validator's own
//! timestamp, how many sources it combined), its canonical encoding, signing under
//! [`OBSERVATION_NAMESPACE`], and single and batch signature verification.
//! Never: judges an observation (freshness, membership, outliers are `bulwark-oracle`'s),
//! reads a clock, or draws entropy (batch verification blinds with the caller's random source).
//! Bounds: an encoded [`SignedObservation`] is at most [`SIGNED_OBSERVATION_BYTES_MAX`] bytes;
//! every field is fixed-size except the asset code, which is at most 10 bytes.

use crate::asset::ASSET_CODE_LEN_MAX;
use crate::batch::{Entry, verify_bisecting};
use crate::{AssetCode, PrivateKey, PublicKey, Signature, UnitPrice};
use bytes::BufMut;
use commonware_codec::{
    Buf, Encode, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt, Write,
};
use commonware_cryptography::{Signer, Verifier};
use rand_core::CryptoRng;
use std::borrow::Borrow;

/// Domain separation for observation signatures: a signed price can never be replayed as a
/// transaction, a consensus vote or a peer handshake, nor the other way round.
pub const OBSERVATION_NAMESPACE: &[u8] = b"_BULWARK_ORACLE_OBSERVATION_V1";

/// Largest encoded [`Observation`], in bytes: key, asset code at its longest, price, time,
/// sources.
pub const OBSERVATION_BYTES_MAX: usize =
    PublicKey::SIZE + 1 + ASSET_CODE_LEN_MAX + UnitPrice::SIZE + u64::SIZE + u8::SIZE;

/// Largest encoded [`SignedObservation`], in bytes.
pub const SIGNED_OBSERVATION_BYTES_MAX: usize = OBSERVATION_BYTES_MAX + Signature::SIZE;

// 32 + 11 + 8 + 8 + 1 + 64: a block of 256 observations for 64 assets stays under 2.1 MiB.
const _: () = assert!(SIGNED_OBSERVATION_BYTES_MAX == 124);

/// What one validator saw of one index at one moment.
///
/// The decoder accepts any price and source count: judging them is the aggregator's job, so
/// that a validator signing nonsense is recorded against it rather than making the block that
/// carries it undecodable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The observing validator; its key signs the observation.
    pub validator: PublicKey,
    /// The underlying whose index this is (`BTC` for `BTC_USDC`).
    pub asset: AssetCode,
    /// Micro-USDC per unit of the underlying. Valid observations are positive.
    pub price: UnitPrice,
    /// When the validator made the observation, in milliseconds since the Unix epoch, by the
    /// validator's own clock (the block's time judges it).
    pub observed_at_ms: u64,
    /// How many independent sources the validator combined into `price`.
    pub sources: u8,
}

impl Observation {
    /// Signs the observation with the validator's key.
    pub fn sign(self, key: &PrivateKey) -> SignedObservation {
        assert_eq!(key.public_key(), self.validator, "signed by its validator");
        let signature = key.sign(OBSERVATION_NAMESPACE, &self.encode());
        SignedObservation {
            observation: self,
            signature,
        }
    }
}

/// An observation with its validator's signature. Decoding does not verify the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedObservation {
    pub observation: Observation,
    pub signature: Signature,
}

impl SignedObservation {
    /// Whether the signature is the validator's over this observation.
    pub fn verify(&self) -> bool {
        self.observation.validator.verify(
            OBSERVATION_NAMESPACE,
            &self.observation.encode(),
            &self.signature,
        )
    }
}

/// Which observations of a batch carry a valid signature, one verdict per observation, in
/// order. Randomness (`rng`) blinds the batch equation only; the verdicts do not depend on it.
/// Takes the observations or references to them, so a caller verifying part of a block need
/// not copy it.
///
/// Verifies the whole batch at once; a failed batch is halved until the bad signatures are
/// found ([`crate::batch::verify_bisecting`]), so one forged observation in a block costs the
/// honest ones a few batch checks, never one each, and never a wrong verdict.
pub fn verify_batch<T: Borrow<SignedObservation> + Sync>(
    rng: &mut impl CryptoRng,
    observations: &[T],
) -> Vec<bool> {
    let messages: Vec<_> = observations
        .iter()
        .map(|o| o.borrow().observation.encode())
        .collect();
    let entries: Vec<Entry<'_>> = observations
        .iter()
        .zip(&messages)
        .map(|(o, message)| {
            let o = o.borrow();
            Entry {
                key: &o.observation.validator,
                signature: &o.signature,
                message,
            }
        })
        .collect();
    verify_bisecting(rng, OBSERVATION_NAMESPACE, &entries)
}

// ---- codec ----

impl Write for Observation {
    fn write(&self, buf: &mut impl BufMut) {
        self.validator.write(buf);
        self.asset.write(buf);
        self.price.write(buf);
        self.observed_at_ms.write(buf);
        self.sources.write(buf);
    }
}

impl EncodeSize for Observation {
    fn encode_size(&self) -> usize {
        PublicKey::SIZE + self.asset.encode_size() + UnitPrice::SIZE + u64::SIZE + u8::SIZE
    }
}

impl Read for Observation {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        // Every field's decoder is canonical on its own: fixed-width big-endian integers, and an
        // asset code that refuses padding, lower case and overlong lengths. A key must decode
        // to a curve point; keys compare by their bytes, so another encoding of a validator's
        // point is simply not a validator.
        let validator = PublicKey::read(buf)?;
        Self::read_fields(buf, validator)
    }
}

impl Observation {
    /// Reads the fields after the validator's key (the key cache reads the key itself).
    pub(crate) fn read_fields(
        buf: &mut impl Buf,
        validator: PublicKey,
    ) -> Result<Self, CodecError> {
        Ok(Self {
            validator,
            asset: AssetCode::read(buf)?,
            price: UnitPrice::read(buf)?,
            observed_at_ms: u64::read(buf)?,
            sources: u8::read(buf)?,
        })
    }
}

impl Write for SignedObservation {
    fn write(&self, buf: &mut impl BufMut) {
        self.observation.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedObservation {
    fn encode_size(&self) -> usize {
        self.observation.encode_size() + Signature::SIZE
    }
}

impl Read for SignedObservation {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            observation: Observation::read(buf)?,
            signature: Signature::read(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Copying, Decode, DecodeExt, RangeCfg};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn observation(seed: u64, price: i64) -> (PrivateKey, Observation) {
        let key = PrivateKey::from_seed(seed);
        let observation = Observation {
            validator: key.public_key(),
            asset: AssetCode::parse("BTC").unwrap(),
            price: UnitPrice::from_micros(price),
            observed_at_ms: 1_700_000_000_123,
            sources: 3,
        };
        (key, observation)
    }

    #[test]
    fn signed_observation_round_trips_and_verifies() {
        let (key, o) = observation(1, 65_000_000_000);
        let signed = o.sign(&key);
        let bytes = signed.encode();
        assert_eq!(bytes.len(), signed.encode_size());
        let back = SignedObservation::decode(bytes).unwrap();
        assert_eq!(back, signed);
        assert!(back.verify());
    }

    #[test]
    fn longest_asset_code_meets_the_byte_bound() {
        let (key, mut o) = observation(2, 1);
        o.asset = AssetCode::parse("ABCDEFGHIJ").unwrap();
        assert_eq!(o.sign(&key).encode_size(), SIGNED_OBSERVATION_BYTES_MAX);
    }

    #[test]
    fn tampered_field_fails_verification() {
        let (key, o) = observation(3, 100);
        let mut signed = o.sign(&key);
        signed.observation.price = UnitPrice::from_micros(101);
        assert!(!signed.verify());
    }

    #[test]
    fn signature_under_another_namespace_fails() {
        let (key, o) = observation(4, 100);
        let signature = key.sign(b"_BULWARK_TX_V1", &o.encode());
        let forged = SignedObservation {
            observation: o,
            signature,
        };
        assert!(!forged.verify());
    }

    #[test]
    fn decoder_refuses_trailing_bytes_truncation_and_bad_asset() {
        let (key, o) = observation(5, 100);
        let bytes = o.sign(&key).encode().to_vec();
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            SignedObservation::decode(Copying(&long)),
            Err(CodecError::ExtraData(1))
        ));
        assert!(SignedObservation::decode(Copying(&bytes[..bytes.len() - 1])).is_err());
        // The asset code's length byte follows the 32-byte key: lower-case it.
        let mut lower = bytes.clone();
        lower[PublicKey::SIZE + 1] = b'b';
        assert!(SignedObservation::decode(Copying(&lower)).is_err());
        // An asset code padded to a longer length is refused too.
        let mut padded = bytes;
        padded[PublicKey::SIZE] = 11;
        assert!(SignedObservation::decode(Copying(&padded)).is_err());
    }

    #[test]
    fn block_list_decoding_respects_the_reader_bound() {
        let list: Vec<SignedObservation> = (0..3)
            .map(|seed| {
                let (key, o) = observation(seed, 100);
                o.sign(&key)
            })
            .collect();
        let bytes = list.encode();
        let cfg = (RangeCfg::new(0..=2usize), ());
        assert!(Vec::<SignedObservation>::decode_cfg(bytes.clone(), &cfg).is_err());
        let cfg = (RangeCfg::new(0..=3usize), ());
        assert_eq!(
            Vec::<SignedObservation>::decode_cfg(bytes, &cfg).unwrap(),
            list
        );
    }

    #[test]
    fn batch_verification_finds_the_forgery() {
        let mut batch: Vec<SignedObservation> = (10..16)
            .map(|seed| {
                let (key, o) = observation(seed, 100 + seed as i64);
                o.sign(&key)
            })
            .collect();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        assert_eq!(verify_batch(&mut rng, &batch), vec![true; 6]);
        batch[4].observation.sources = 9;
        let verdicts = verify_batch(&mut rng, &batch);
        assert_eq!(verdicts, vec![true, true, true, true, false, true]);
        assert!(verify_batch::<SignedObservation>(&mut rng, &[]).is_empty());
    }

    #[test]
    fn a_large_batch_is_halved_to_its_forgeries() {
        let mut batch: Vec<SignedObservation> = (0..40)
            .map(|seed| {
                let (key, o) = observation(seed, 100 + seed as i64);
                o.sign(&key)
            })
            .collect();
        batch[3].observation.sources = 9;
        batch[30].observation.price = UnitPrice::from_micros(1);
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let expected: Vec<bool> = (0..40).map(|i| i != 3 && i != 30).collect();
        assert_eq!(verify_batch(&mut rng, &batch), expected);
    }
}
