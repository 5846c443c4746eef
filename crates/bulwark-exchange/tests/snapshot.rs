//! Snapshots: round trips, and refusal of corrupt or forged ones with a typed error.

mod common;

use bulwark_exchange::*;
use bulwark_types::*;
use common::*;
use commonware_cryptography::Signer;
use proptest::prelude::*;

/// A venue with positions, resting orders of several kinds, an agent and a settled option.
fn busy_venue() -> Venue {
    let mut v = Venue::standard();
    v.order("alice", BTC_PERP, Side::Sell, 5, 100_000);
    v.order("bob", BTC_PERP, Side::Buy, 3, 100_000);
    v.order("bob", BTC_PERP, Side::Buy, 2, 99_500);
    v.order("carol", BTC_CALL, Side::Sell, 4, 5_000);
    v.order("alice", BTC_CALL, Side::Buy, 1, 5_000);
    v.order("alice", BTC_PUT, Side::Buy, 1, 4_000);
    let tx = v.authorise_tx("bob", "bob-bot");
    v.run(tx);
    v
}

#[test]
fn restore_reproduces_state_and_the_future() {
    let mut v = busy_venue();
    let snapshot = v.exchange.snapshot();
    let mut restored = Exchange::restore(&snapshot).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    assert_eq!(restored.state_digest(), v.exchange.state_digest());
    assert_eq!(Exchange::snapshot_digest(&snapshot).unwrap().len(), 32);
    // The same next block gives the same outcome on both.
    let tx = v.tx(
        "carol",
        TxBody::PlaceOrder(limit(
            v.id(BTC_PERP),
            Side::Sell,
            2,
            UnitPrice::from_usdc(99_500),
            77,
        )),
    );
    let checked = v.next_block(vec![tx]);
    let a = v.exchange.apply_block(&checked).unwrap();
    let b = restored.apply_block(&checked).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.trades().count(), 1);
    assert_eq!(v.exchange.snapshot(), restored.snapshot());
}

#[test]
fn any_flipped_bit_is_caught_by_the_digest() {
    let snapshot = busy_venue().exchange.snapshot();
    for at in (0..snapshot.len()).step_by(7) {
        let mut bad = snapshot.clone();
        bad[at] ^= 0x10;
        assert!(Exchange::restore(&bad).is_err(), "flip at {at} accepted");
    }
}

#[test]
fn forged_snapshots_are_refused_with_their_reason() {
    let snapshot = busy_venue().exchange.snapshot();
    assert!(matches!(
        Exchange::restore(&snapshot[..20]),
        Err(SnapshotError::TooShort)
    ));
    let mut magic = snapshot.clone();
    magic[0] = b'X';
    assert!(matches!(
        Exchange::restore(&redigest(magic)),
        Err(SnapshotError::BadMagic)
    ));
    // Version 8 is the format before a market order's reach joined the price bands.
    let mut version = snapshot.clone();
    version[9] = 8;
    assert!(matches!(
        Exchange::restore(&redigest(version)),
        Err(SnapshotError::Version(8))
    ));
    let mut truncated = snapshot[..snapshot.len() - 40].to_vec();
    truncated.extend_from_slice(&[0; 32]);
    assert!(matches!(
        Exchange::restore(&redigest(truncated)),
        Err(SnapshotError::Decode(_))
    ));
    let mut trailing = snapshot[..snapshot.len() - 32].to_vec();
    trailing.extend_from_slice(&[0; 33]);
    assert!(matches!(
        Exchange::restore(&redigest(trailing)),
        Err(SnapshotError::Decode(_))
    ));
}

#[test]
fn forged_balance_breaks_conservation_and_is_refused() {
    let v = busy_venue();
    let snapshot = v.exchange.snapshot();
    // Find alice's cash (16 bytes, big-endian) in the encoding and add one micro-USDC.
    let cash = v
        .exchange
        .accounts()
        .next()
        .expect("an account")
        .cash
        .micros()
        .to_be_bytes();
    let at = snapshot
        .windows(16)
        .position(|w| w == cash)
        .expect("cash is encoded");
    let mut forged = snapshot.clone();
    forged[at + 15] = forged[at + 15].wrapping_add(1);
    match Exchange::restore(&redigest(forged)) {
        Err(SnapshotError::Invariant(e)) => assert!(e.0.contains("money"), "{e}"),
        other => panic!("expected a conservation failure, got {other:?}"),
    }
}

/// A venue where dave's account, reached only by deposits, was absorbed into alice's when
/// alice authorised dave's key as her agent: the account stays, closed. Returns its id.
fn venue_with_a_closed_account() -> (Venue, AccountId) {
    let mut v = busy_venue();
    v.fund("dave", 25);
    let closed = v.account("dave");
    let tx = v.authorise_tx("alice", "dave");
    assert_eq!(v.run(tx).0, None);
    (v, closed)
}

#[test]
fn a_closed_account_survives_a_round_trip() {
    let (mut v, closed) = venue_with_a_closed_account();
    let snapshot = v.exchange.snapshot();
    let mut restored = Exchange::restore(&snapshot).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    assert_eq!(restored.state_digest(), v.exchange.state_digest());
    assert_eq!(restored.account(closed).unwrap().cash, Money::ZERO);
    // A deposit naming the key is refused on both: it is an agent key.
    let dave = v.key("dave").public_key();
    let tx = v.bridge_tx(TxBody::Deposit {
        owner: dave,
        amount: Money::from_usdc(1),
    });
    let checked = v.next_block(vec![tx]);
    let a = v.exchange.apply_block(&checked).unwrap();
    assert_eq!(a, restored.apply_block(&checked).unwrap());
    assert_eq!(a.txs[0].rejection, Some(RejectReason::KeyInUse));
}

#[test]
fn a_forged_closed_account_with_a_key_is_refused() {
    let (mut v, closed) = venue_with_a_closed_account();
    let snapshot = v.exchange.snapshot();
    // Dave's key record: key, nonce (none), bound, alice's id, agent. Bind it to the closed
    // account instead: an agent of its own closed account.
    let dave = v.key("dave").public_key();
    let at = snapshot
        .windows(32)
        .position(|w| w == dave.as_ref())
        .expect("the key is encoded")
        + 32;
    let alice = v.account("alice").get().to_be_bytes();
    assert_eq!(&snapshot[at..at + 2], &[0, 1], "no nonce, bound");
    assert_eq!(&snapshot[at + 2..at + 10], &alice);
    let mut forged = snapshot.clone();
    forged[at + 2..at + 10].copy_from_slice(&closed.get().to_be_bytes());
    match Exchange::restore(&redigest(forged)) {
        Err(SnapshotError::Invariant(e)) => assert!(e.0.contains("owner key"), "{e}"),
        other => panic!("expected the closed account refused, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random bytes, with or without a valid digest, never panic the restorer.
    #[test]
    fn restore_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Exchange::restore(&bytes);
        if bytes.len() >= 32 {
            let _ = Exchange::restore(&redigest(bytes));
        }
    }

    /// Mutations of a real snapshot that keep a valid digest reach deep into the decoder and
    /// the invariant checks; they are refused or yield a state that passes every invariant.
    #[test]
    fn mutated_snapshots_fail_cleanly(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let snapshot = SNAPSHOT.with(|s| s.clone());
        let mut forged = snapshot.clone();
        for (at, byte) in edits {
            let i = at.index(forged.len() - 32);
            forged[i] = byte;
        }
        if let Ok(exchange) = Exchange::restore(&redigest(forged)) {
            exchange.check_invariants().unwrap();
        }
    }
}

thread_local! {
    static SNAPSHOT: Vec<u8> = busy_venue().exchange.snapshot();
}

#[test]
fn the_depth_average_reference_and_open_interest_survive_a_round_trip() {
    let mut v = Venue::standard();
    assert_eq!(v.order("alice", BTC_PERP, Side::Buy, 2_000, 99_000).0, None);
    assert_eq!(
        v.order("alice", BTC_PERP, Side::Sell, 2_000, 101_000).0,
        None
    );
    // Twenty minutes of a 2,000-contract book a side: four half-lives of the average, and a
    // refresh of the reference, which the tiers and the cap follow.
    v.time_ms += 20 * 60_000;
    assert_eq!(v.order("bob", BTC_PERP, Side::Buy, 100, 101_000).0, None);
    let perp = v.id(BTC_PERP);
    let depth = v.exchange.instrument(perp).unwrap().depth;
    assert_eq!(depth.average(), 2_000 - 2_000 / 16);
    assert_eq!(depth.reference, 1_875);
    let snapshot = v.exchange.snapshot();
    let restored = Exchange::restore(&snapshot).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    let back = restored.instrument(perp).unwrap();
    assert_eq!(back.depth, depth);
    assert_eq!(back.open_interest(), 100);
    let bob = v.account("bob");
    assert_eq!(restored.account_margin(bob), v.exchange.account_margin(bob));
}
