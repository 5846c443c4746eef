//! Pinned formats and reproducible markets: the wire encoding of signed observations, the
//! snapshot encoding of the oracle state, and the price path of a seeded synthetic market
//! are hashed and compared with fixtures. Regenerate a fixture only for a deliberate change
//! (print the new digest with `--nocapture`), and say so in the change.
//! Also: hostile bytes never make the decoders panic, and any observation round-trips.

use bulwark_oracle::{
    Crash, MarketConfig, Observation, OracleConfig, OracleState, PriceSource,
    SIGNED_OBSERVATION_BYTES_MAX, SignedObservation, SyntheticSource, ValidatorSet, verify_batch,
};
use bulwark_types::{AssetCode, BlockTime, PrivateKey, UnitPrice};
use commonware_codec::{Copying, Decode, DecodeExt, Encode, EncodeSize};
use commonware_cryptography::{Hasher, Sha256, Signer};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const T0: u64 = 1_700_000_000_000;

fn hex_digest(bytes: &[u8]) -> String {
    let digest = Sha256::hash(&[bytes]);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn sample_observations() -> (Vec<PrivateKey>, Vec<SignedObservation>) {
    let keys: Vec<PrivateKey> = (0..4).map(PrivateKey::from_seed).collect();
    let assets = ["BTC", "ETH", "1000PEPE"];
    let observations = keys
        .iter()
        .enumerate()
        .flat_map(|(v, key)| {
            assets.iter().map(move |code| {
                Observation {
                    validator: key.public_key(),
                    asset: AssetCode::parse(code).unwrap(),
                    price: UnitPrice::from_micros(65_000_000_000 + v as i64 * 1_000_003),
                    observed_at_ms: T0 - v as u64 * 100,
                    sources: v as u8 + 1,
                }
                .sign(key)
            })
        })
        .collect();
    (keys, observations)
}

#[test]
fn conformance_digest_of_signed_observations() {
    let (_, observations) = sample_observations();
    let hex = hex_digest(&observations.encode());
    println!("observations: {hex}");
    assert_eq!(hex, include_str!("fixtures/observations.sha256").trim());
}

#[test]
fn conformance_digest_of_oracle_state() {
    let (keys, observations) = sample_observations();
    let set = ValidatorSet::new(keys.iter().map(|k| k.public_key()).collect()).unwrap();
    let config = OracleConfig::GENESIS;
    let mut state = OracleState::new();
    for code in ["BTC", "ETH", "SOL"] {
        state
            .track(&config, AssetCode::parse(code).unwrap())
            .unwrap();
    }
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    let verdicts = verify_batch(&mut rng, &observations);
    state.apply_block(
        &config,
        &set,
        BlockTime::from_millis(T0),
        &observations,
        &verdicts,
    );
    let bytes = state.encode();
    assert_eq!(OracleState::decode_cfg(bytes.clone(), &64).unwrap(), state);
    let hex = hex_digest(&bytes);
    println!("state: {hex}");
    assert_eq!(hex, include_str!("fixtures/oracle_state.sha256").trim());
}

#[test]
fn synthetic_market_path_is_pinned() {
    let btc = AssetCode::parse("BTC").unwrap();
    let mut config = MarketConfig::crypto(btc, UnitPrice::from_usdc(65_000), T0);
    config.crashes.push(Crash {
        start_ms: T0 + 3_600_000,
        fall_ms: 5_000,
        hold_ms: 0,
        recover_ms: 60_000,
        depth_bps: 3_000,
    });
    let mut source = SyntheticSource::new(42, vec![config]).unwrap();
    let mut path = Vec::new();
    // Two hours, one quote a second: 7_201 prices.
    for k in 0..=7_200u64 {
        let quote = source.observe(btc, T0 + k * 1_000).unwrap();
        path.extend_from_slice(&quote.price.micros().to_be_bytes());
    }
    let hex = hex_digest(&path);
    println!("market: {hex}");
    assert_eq!(hex, include_str!("fixtures/synthetic_market.sha256").trim());
}

proptest! {
    #[test]
    fn hostile_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = SignedObservation::decode(Copying(&bytes));
        let _ = OracleState::decode_cfg(Copying(&bytes), &64);
    }

    #[test]
    fn any_observation_round_trips(
        seed in any::<u64>(),
        price in any::<i64>(),
        observed_at_ms in any::<u64>(),
        sources in any::<u8>(),
        code in "[A-Z][A-Z0-9]{0,9}",
    ) {
        let key = PrivateKey::from_seed(seed);
        let signed = Observation {
            validator: key.public_key(),
            asset: AssetCode::parse(&code).unwrap(),
            price: UnitPrice::from_micros(price),
            observed_at_ms,
            sources,
        }
        .sign(&key);
        let bytes = signed.encode();
        prop_assert!(bytes.len() == signed.encode_size());
        prop_assert!(bytes.len() <= SIGNED_OBSERVATION_BYTES_MAX);
        let back = SignedObservation::decode(bytes).unwrap();
        prop_assert!(back.verify());
        prop_assert_eq!(back, signed);
    }
}
