//! Transactions: codec round trips, signatures, batch verification, bounded decoding of
//! hostile bytes, and a pinned conformance digest of the wire format.

use bulwark_types::block::{Block, BlockLimits, IndexPrice, MarkPrice, PriceInputs};
use bulwark_types::tx::{TX_BYTES_MAX, verify_batch};
use bulwark_types::*;
use commonware_codec::{Copying, Decode, DecodeExt, Encode, EncodeSize};
use commonware_cryptography::{Hasher, Sha256, Signer};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn key(seed: u64) -> PrivateKey {
    PrivateKey::from_seed(seed)
}

fn sample_bodies() -> Vec<TxBody> {
    let spec = InstrumentSpec {
        name: InstrumentName::parse("BTC_USDC-27DEC26-100000-C").unwrap(),
        tick_size: UnitPrice::from_usdc(5),
        multiplier: Multiplier::from_e8(1_000_000),
        lot_size: Qty::from_contracts(1),
        size_min: Qty::from_contracts(1),
    };
    let order = OrderRequest {
        instrument: InstrumentId::new(3),
        client_order_id: ClientOrderId::new(77),
        side: Side::Sell,
        qty: Qty::from_contracts(12),
        order_type: OrderType::Limit {
            price: UnitPrice::from_usdc(2_500),
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: true,
        },
        reduce_only: false,
        self_trade: SelfTradePrevention::CancelBoth,
    };
    vec![
        TxBody::Deposit {
            owner: key(9).public_key(),
            amount: Money::from_usdc(1_000),
        },
        TxBody::Withdraw {
            amount: Money::from_usdc(5),
        },
        TxBody::PlaceOrder(order),
        TxBody::PlaceOrder(OrderRequest {
            order_type: OrderType::Market,
            reduce_only: true,
            ..order
        }),
        TxBody::CancelOrder {
            instrument: InstrumentId::new(3),
            order: OrderRef::Exchange(OrderId::new(5)),
        },
        TxBody::CancelAll { instrument: None },
        TxBody::CancelAll {
            instrument: Some(InstrumentId::new(1)),
        },
        TxBody::AmendOrder {
            instrument: InstrumentId::new(3),
            order: OrderRef::Client(ClientOrderId::new(77)),
            price: UnitPrice::from_usdc(2_505),
            qty: Qty::from_contracts(10),
        },
        TxBody::authorise_agent(&key(10), &key(1).public_key(), 7),
        TxBody::RevokeAgent {
            agent: key(10).public_key(),
        },
        TxBody::ListInstrument(spec),
        TxBody::SetMarginMode { portfolio: true },
        TxBody::FundInsurance {
            amount: Money::from_usdc(1_000),
        },
        TxBody::Attest {
            id: 41,
            action: CustodyAction::Deposit {
                owner: key(2).public_key(),
                amount: Money::from_usdc(5_000),
            },
        },
        TxBody::Attest {
            id: 42,
            action: CustodyAction::FundInsurance {
                amount: Money::from_usdc(1_000),
            },
        },
        TxBody::Attest {
            id: u64::MAX,
            action: CustodyAction::ListInstrument(spec),
        },
        // Added with tag 15; last, so the samples before it keep their nonces.
        TxBody::CancelWithdrawal,
    ]
}

fn signed(body: TxBody, nonce: u64) -> SignedTx {
    let signer = key(1);
    Tx {
        signer: signer.public_key(),
        nonce: Nonce::new(nonce),
        body,
    }
    .sign(&signer)
}

#[test]
fn every_body_round_trips_and_verifies() {
    for (i, body) in sample_bodies().into_iter().enumerate() {
        let tx = signed(body, i as u64);
        let bytes = tx.encode();
        assert_eq!(bytes.len(), tx.encode_size());
        assert!(
            bytes.len() <= TX_BYTES_MAX,
            "{} > {TX_BYTES_MAX}",
            bytes.len()
        );
        // With `BULWARK_FUZZ_SEED_DIR` set, each sample is written there as a `tx_decode` seed.
        if let Ok(dir) = std::env::var("BULWARK_FUZZ_SEED_DIR") {
            std::fs::write(std::path::Path::new(&dir).join(format!("seed-{i}")), &bytes).unwrap();
        }
        let decoded = SignedTx::decode(bytes).unwrap();
        assert_eq!(decoded, tx);
        assert!(decoded.verify());
    }
}

#[test]
fn altered_transaction_fails_verification() {
    let mut tx = signed(
        TxBody::Withdraw {
            amount: Money::from_usdc(5),
        },
        1,
    );
    tx.tx.body = TxBody::Withdraw {
        amount: Money::from_usdc(500),
    };
    assert!(!tx.verify());
    let mut tx = signed(
        TxBody::Withdraw {
            amount: Money::from_usdc(5),
        },
        1,
    );
    tx.tx.nonce = Nonce::new(2);
    assert!(!tx.verify(), "the nonce is signed");
}

#[test]
fn batch_verification_finds_the_bad_signature() {
    let mut txs: Vec<SignedTx> = (0..64)
        .map(|n| signed(TxBody::CancelAll { instrument: None }, n))
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    assert!(verify_batch(&mut rng, &txs).iter().all(|ok| *ok));
    txs[17].tx.nonce = Nonce::new(1_000);
    let verdicts = verify_batch(&mut rng, &txs);
    assert_eq!(verdicts.iter().filter(|ok| !**ok).count(), 1);
    assert!(!verdicts[17]);
    assert!(verify_batch::<SignedTx>(&mut rng, &[]).is_empty());
}

proptest::proptest! {
    /// Halving a failed batch finds exactly the bad signatures, wherever and however many.
    #[test]
    fn bisection_finds_exactly_the_bad_signatures(
        len in 1usize..80,
        bad in proptest::collection::btree_set(0usize..80, 0..6),
        seed in proptest::prelude::any::<u64>(),
    ) {
        let mut txs: Vec<SignedTx> = (0..len as u64)
            .map(|n| signed(TxBody::CancelAll { instrument: None }, n))
            .collect();
        for &i in bad.iter().filter(|i| **i < len) {
            txs[i].tx.nonce = Nonce::new(1_000_000 + i as u64);
        }
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let verdicts = verify_batch(&mut rng, &txs);
        let expected: Vec<bool> = (0..len).map(|i| !bad.contains(&i)).collect();
        proptest::prop_assert_eq!(verdicts, expected);
    }
}

#[test]
fn unknown_tags_and_truncations_are_errors() {
    for body in sample_bodies() {
        let bytes = signed(body, 1).encode();
        for cut in 0..bytes.len() {
            assert!(
                SignedTx::decode(Copying(&bytes[..cut])).is_err(),
                "prefix {cut} decoded"
            );
        }
        let mut extended = bytes.to_vec();
        extended.push(0);
        assert!(
            SignedTx::decode(Copying(&extended)).is_err(),
            "trailing byte accepted"
        );
    }
    let mut bytes = signed(TxBody::CancelAll { instrument: None }, 1)
        .encode()
        .to_vec();
    bytes[32 + 8] = 200; // body tag
    assert!(SignedTx::decode(Copying(&bytes)).is_err());
}

#[test]
fn block_decoder_enforces_limits_and_canonical_prices() {
    let btc = AssetCode::parse("BTC").unwrap();
    let prices = PriceInputs::new(
        vec![IndexPrice {
            asset: btc,
            price: UnitPrice::from_usdc(100_000),
        }],
        vec![
            MarkPrice {
                instrument: InstrumentId::new(2),
                price: UnitPrice::from_usdc(10),
            },
            MarkPrice {
                instrument: InstrumentId::new(1),
                price: UnitPrice::from_usdc(20),
            },
        ],
        vec![],
    )
    .unwrap();
    assert_eq!(
        prices.marks()[0].instrument,
        InstrumentId::new(1),
        "sorted on construction"
    );
    let observations = (0..2u64)
        .map(|n| {
            Observation {
                validator: key(20 + n).public_key(),
                asset: AssetCode::parse("BTC").unwrap(),
                price: UnitPrice::from_usdc(100_000),
                observed_at_ms: 4,
                sources: 2,
            }
            .sign(&key(20 + n))
        })
        .collect();
    let block = Block {
        height: Height::new(1),
        time: BlockTime::from_millis(5),
        prices,
        observations,
        txs: (0..3)
            .map(|n| signed(TxBody::CancelAll { instrument: None }, n))
            .collect(),
    };
    let bytes = block.encode();
    assert_eq!(
        Block::decode_cfg(bytes.clone(), &BlockLimits::DEFAULT).unwrap(),
        block
    );
    assert!(
        bytes.len()
            <= BlockLimits {
                txs_max: 3,
                prices_max: 2,
                observations_max: 2,
            }
            .block_bytes_max()
    );
    let tight = BlockLimits {
        txs_max: 2,
        prices_max: 8,
        observations_max: 8,
    };
    assert!(
        Block::decode_cfg(bytes.clone(), &tight).is_err(),
        "too many txs"
    );
    let tight = BlockLimits {
        txs_max: 8,
        prices_max: 8,
        observations_max: 1,
    };
    assert!(
        Block::decode_cfg(bytes.clone(), &tight).is_err(),
        "too many observations"
    );
    let tight = BlockLimits {
        txs_max: 8,
        prices_max: 1,
        observations_max: 8,
    };
    assert!(Block::decode_cfg(bytes, &tight).is_err(), "too many marks");

    let duplicate = PriceInputs::new(
        vec![],
        vec![
            MarkPrice {
                instrument: InstrumentId::new(1),
                price: UnitPrice::from_usdc(10),
            },
            MarkPrice {
                instrument: InstrumentId::new(1),
                price: UnitPrice::from_usdc(20),
            },
        ],
        vec![],
    );
    assert!(duplicate.is_err());
}

/// Pins the wire format: if this digest changes, the encoding changed. Update it only for a
/// deliberate format change, and say so in the commit.
#[test]
fn conformance_digest_of_sample_transactions() {
    let mut all = Vec::new();
    for (i, body) in sample_bodies().into_iter().enumerate() {
        all.extend_from_slice(&signed(body, i as u64).encode());
    }
    let digest = Sha256::hash(&[&all]);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, include_str!("fixtures/tx_conformance.sha256").trim());
}

/// Regression: the input the `tx_decode` fuzz target found on a clean checkout (an order whose
/// instrument name holds a multi-byte character in its expiry) panicked the name parser. It is
/// now a decoding error. The same bytes are a seed of the fuzz target
/// (`fuzz/seeds/tx_decode/regression-multibyte-expiry`).
#[test]
fn multi_byte_instrument_name_is_a_decoding_error() {
    let bytes = include_bytes!("../../../fuzz/seeds/tx_decode/regression-multibyte-expiry");
    assert!(SignedTx::decode(Copying(&bytes[..])).is_err());
}

proptest! {
    /// Hostile bytes never panic the decoder, and what decodes re-encodes to the same bytes.
    #[test]
    fn decoder_is_total_and_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(tx) = SignedTx::decode(Copying(&bytes)) {
            prop_assert_eq!(tx.encode().to_vec(), bytes);
        }
    }

    /// Mutating one byte of a valid transaction never panics, and what still decodes is canonical.
    #[test]
    fn mutated_transactions_are_handled(index in 0usize..11, pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = signed(sample_bodies()[index].clone(), 3).encode().to_vec();
        let at = pos.index(bytes.len());
        bytes[at] = byte;
        if let Ok(tx) = SignedTx::decode(Copying(&bytes)) {
            prop_assert_eq!(tx.encode().to_vec(), bytes);
        }
    }
}

#[test]
fn market_maker_protection_bodies_round_trip_and_check_their_ranges() {
    let btc = AssetCode::parse("BTC").unwrap();
    let config = MmpConfig {
        interval_ms: 10_000,
        frozen_ms: 30_000,
        qty_limit: Qty::from_contracts(100),
        delta_limit_e8: 5 * 100_000_000,
    };
    for (i, body) in [
        TxBody::SetMmp {
            asset: btc,
            config: Some(config),
        },
        TxBody::SetMmp {
            asset: btc,
            config: None,
        },
        TxBody::ResetMmp { asset: btc },
        TxBody::SetMarginMode { portfolio: true },
        TxBody::SetMarginMode { portfolio: false },
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(body.check(), Ok(()));
        let tx = signed(body, i as u64);
        let bytes = tx.encode();
        assert_eq!(bytes.len(), tx.encode_size());
        assert!(bytes.len() <= TX_BYTES_MAX);
        assert_eq!(SignedTx::decode(bytes).unwrap(), tx);
    }
    for bad in [
        MmpConfig {
            interval_ms: 0,
            ..config
        },
        MmpConfig {
            interval_ms: MmpConfig::TIME_MAX_MS + 1,
            ..config
        },
        MmpConfig {
            frozen_ms: MmpConfig::TIME_MAX_MS + 1,
            ..config
        },
        MmpConfig {
            qty_limit: Qty::ZERO,
            ..config
        },
        MmpConfig {
            delta_limit_e8: 0,
            ..config
        },
    ] {
        let body = TxBody::SetMmp {
            asset: btc,
            config: Some(bad),
        };
        assert_eq!(body.check(), Err(RejectReason::MmpConfigInvalid));
    }
}
