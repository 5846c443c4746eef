//! No single key mints or lists: under custody, deposits, insurance funding and listings take
//! effect only on `threshold` custodians' attestations of the same action under the same id.
//! Each attack is the attacker's transactions through `apply_block`; `Venue::block` checks
//! every invariant (money conserved) after each block.

mod common;

use bulwark_exchange::*;
use bulwark_types::*;
use common::*;
use commonware_cryptography::Signer;

/// `n` custodians (seeds 500..), threshold `2f + 1` where `n = 3f + 1`.
fn custodial_venue(n: usize) -> (Venue, Vec<PrivateKey>) {
    let mut v = Venue::new();
    let custodians: Vec<PrivateKey> = (0..n as u64)
        .map(|i| PrivateKey::from_seed(500 + i))
        .collect();
    let f = (n - 1) / 3;
    let genesis = Genesis {
        admin: v.admin.public_key(),
        bridge: v.bridge.public_key(),
        params: ExchangeParams::defaults(),
        time: BlockTime::from_millis(v.time_ms),
        oracle: None,
        custody: Some(Custody {
            custodians: custodians.iter().map(|k| k.public_key()).collect(),
            threshold: u8::try_from(2 * f + 1).unwrap(),
        }),
    };
    v.exchange = Exchange::new(&genesis).unwrap();
    (v, custodians)
}

fn attest(v: &mut Venue, key: &PrivateKey, id: u64, action: CustodyAction) -> SignedTx {
    v.signed(key, TxBody::Attest { id, action })
}

fn deposit(owner: &PublicKey, usdc: i64) -> CustodyAction {
    CustodyAction::Deposit {
        owner: owner.clone(),
        amount: Money::from_usdc(usdc),
    }
}

fn cash_of(v: &Venue, owner: &PublicKey) -> Option<Money> {
    let (account, _) = v.exchange.key_binding(owner)?;
    Some(v.exchange.account(account)?.cash)
}

/// f colluding custodians (of n = 4, 7, 10) attest a deposit to their own account under the id
/// of a real deposit: nothing is credited. The 2f + 1 honest ones then carry out the real
/// deposit under that id, exactly once; the lie is dropped, and the id is spent for everyone.
#[test]
fn f_colluding_custodians_credit_nothing_and_cannot_block_the_real_deposit() {
    for n in [4, 7, 10] {
        let (mut v, custodians) = custodial_venue(n);
        let f = (n - 1) / 3;
        let mallory = v.key("mallory").public_key();
        let alice = v.key("alice").public_key();
        let lie = deposit(&mallory, 1_000_000_000);
        let truth = deposit(&alice, 50_000);
        let txs: Vec<SignedTx> = custodians[..f]
            .iter()
            .map(|k| attest(&mut v, k, 7, lie.clone()))
            .collect();
        let out = v.block(txs);
        assert!(
            out.txs.iter().all(|t| t.rejection.is_none()),
            "n {n}: recorded"
        );
        assert_eq!(
            cash_of(&v, &mallory),
            None,
            "n {n}: f attestations credit nothing"
        );
        assert_eq!(v.exchange.ledger().deposits, Money::ZERO);

        let txs: Vec<SignedTx> = custodians[f..]
            .iter()
            .map(|k| attest(&mut v, k, 7, truth.clone()))
            .collect();
        let out = v.block(txs);
        let rejections: Vec<_> = out.txs.iter().map(|t| t.rejection).collect();
        // The (2f+1)th honest attestation carries it out; the rest find the id spent.
        let completes = 2 * f; // index among the honest ones
        for (i, rejection) in rejections.iter().enumerate() {
            let want = (i > completes).then_some(RejectReason::CustodyIdUsed);
            assert_eq!(*rejection, want, "n {n}: honest attestation {i}");
        }
        assert_eq!(cash_of(&v, &alice), Some(Money::from_usdc(50_000)), "n {n}");
        assert_eq!(cash_of(&v, &mallory), None, "n {n}");
        assert_eq!(
            v.exchange.ledger().deposits,
            Money::from_usdc(50_000),
            "n {n}: once"
        );
        let custody = v.exchange.custody().unwrap();
        assert_eq!(
            custody.pending_count(),
            0,
            "n {n}: the lie under the spent id is gone"
        );

        // A late colluder completing its lie, or replaying the truth: the id is spent.
        let late = attest(&mut v, &custodians[0], 7, truth.clone());
        assert_eq!(v.run(late).0, Some(RejectReason::CustodyIdUsed), "n {n}");
    }
}

/// Under custody the bridge and admin keys, alone, mint and list nothing; nor can a key that
/// is not a custodian attest.
#[test]
fn the_single_bridge_and_admin_keys_and_strangers_can_do_nothing() {
    let (mut v, _) = custodial_venue(4);
    let mallory = v.key("mallory").public_key();
    let tx = v.bridge_tx(TxBody::Deposit {
        owner: mallory.clone(),
        amount: Money::from_usdc(1_000_000),
    });
    assert_eq!(v.run(tx).0, Some(RejectReason::QuorumRequired));
    let tx = v.bridge_tx(TxBody::FundInsurance {
        amount: Money::from_usdc(1_000_000),
    });
    assert_eq!(v.run(tx).0, Some(RejectReason::QuorumRequired));
    let tx = v.admin_tx(TxBody::ListInstrument(spec(BTC_PERP)));
    assert_eq!(v.run(tx).0, Some(RejectReason::QuorumRequired));
    let tx = v.bridge_tx(TxBody::Attest {
        id: 1,
        action: deposit(&mallory, 1),
    });
    assert_eq!(v.run(tx).0, Some(RejectReason::NotCustodian));
    let stranger = v.key("stranger");
    let tx = attest(&mut v, &stranger, 1, deposit(&mallory, 1));
    // Not a known signer at all.
    assert_eq!(v.run(tx).0, Some(RejectReason::SignerUnknown));
    assert_eq!(v.exchange.ledger().deposits, Money::ZERO);
    assert_eq!(v.exchange.instruments().len(), 0);
}

/// Listings and the insurance fund's capital by quorum; a custodian's repeated attestation
/// counts once.
#[test]
fn a_quorum_lists_and_funds_and_a_repeated_attestation_counts_once() {
    let (mut v, custodians) = custodial_venue(4);
    let listing = CustodyAction::ListInstrument(spec(BTC_PERP));
    let txs = vec![
        attest(&mut v, &custodians[0], 1, listing.clone()),
        attest(&mut v, &custodians[0], 1, listing.clone()),
        attest(&mut v, &custodians[1], 1, listing.clone()),
    ];
    let out = v.block(txs);
    assert_eq!(
        out.txs[1].rejection,
        Some(RejectReason::AttestationRepeated)
    );
    assert_eq!(v.exchange.instruments().len(), 0, "two of three");
    let tx = attest(&mut v, &custodians[3], 1, listing);
    assert_eq!(v.run(tx).0, None);
    assert_eq!(v.exchange.instruments().len(), 1, "listed by the third");

    let fund = CustodyAction::FundInsurance {
        amount: Money::from_usdc(250_000),
    };
    let txs = (0..3)
        .map(|i| attest(&mut v, &custodians[i], 2, fund.clone()))
        .collect();
    v.block(txs);
    assert_eq!(
        v.exchange.ledger().insurance_fund,
        Money::from_usdc(250_000)
    );
}

/// One custodian filling what may wait: its own attestations stop at the bound; the others'
/// are untouched, and a quorum still carries out.
#[test]
fn one_custodian_cannot_crowd_out_the_others() {
    let (mut v, custodians) = custodial_venue(4);
    let mallory = v.key("mallory").public_key();
    let alice = v.key("alice").public_key();
    let max = custody::PENDING_PER_CUSTODIAN_MAX as u64;
    let txs = (0..max)
        .map(|id| attest(&mut v, &custodians[0], 1_000 + id, deposit(&mallory, 1)))
        .collect();
    let out = v.block(txs);
    assert!(out.txs.iter().all(|t| t.rejection.is_none()));
    let tx = attest(&mut v, &custodians[0], 5_000, deposit(&mallory, 1));
    assert_eq!(v.run(tx).0, Some(RejectReason::AttestationsPendingLimit));
    let txs = (1..4)
        .map(|i| attest(&mut v, &custodians[i], 9, deposit(&alice, 10)))
        .collect();
    let out = v.block(txs);
    assert!(out.txs.iter().all(|t| t.rejection.is_none()));
    assert_eq!(cash_of(&v, &alice), Some(Money::from_usdc(10)));
    assert_eq!(cash_of(&v, &mallory), None);
}

/// Waiting attestations and spent ids are state: a restored exchange completes the same
/// quorum and refuses the same spent id.
#[test]
fn custody_survives_a_snapshot() {
    let (mut v, custodians) = custodial_venue(4);
    let alice = v.key("alice").public_key();
    let txs = (0..3)
        .map(|i| attest(&mut v, &custodians[i], 1, deposit(&alice, 100)))
        .collect();
    v.block(txs);
    let txs = (0..2)
        .map(|i| attest(&mut v, &custodians[i], 2, deposit(&alice, 200)))
        .collect();
    v.block(txs);
    let bytes = v.exchange.snapshot();
    let restored = Exchange::restore(&bytes).unwrap();
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.custody(), v.exchange.custody());
    if let Ok(dir) = std::env::var("BULWARK_FUZZ_SEED_DIR") {
        let body = &bytes[..bytes.len() - 32];
        std::fs::write(std::path::Path::new(&dir).join("seed-custody"), body).unwrap();
    }
    v.exchange = restored;
    let tx = attest(&mut v, &custodians[3], 1, deposit(&alice, 100));
    assert_eq!(v.run(tx).0, Some(RejectReason::CustodyIdUsed));
    let tx = attest(&mut v, &custodians[3], 2, deposit(&alice, 200));
    assert_eq!(v.run(tx).0, None);
    assert_eq!(cash_of(&v, &alice), Some(Money::from_usdc(300)));
}

/// A genesis whose custody a minority could carry out, or with a custodian twice, is refused.
#[test]
fn custody_needs_a_majority_of_distinct_custodians() {
    let keys: Vec<PublicKey> = (0..4)
        .map(|i| PrivateKey::from_seed(700 + i).public_key())
        .collect();
    let check = |custodians: Vec<PublicKey>, threshold: u8| {
        Custody {
            custodians,
            threshold,
        }
        .check()
        .is_ok()
    };
    assert!(check(keys.clone(), 3));
    assert!(!check(keys.clone(), 2), "two of four is not a majority");
    assert!(!check(keys.clone(), 5));
    assert!(!check(
        vec![keys[0].clone(), keys[0].clone(), keys[1].clone()],
        2
    ));
    assert!(!check(vec![], 0));
}

/// The custody state is shared between a state and its copy (the copy a validator makes for
/// every speculated block) until one of them attests: an attestation in the copy's block is
/// the copy's alone, and the state it was copied from still waits for it.
#[test]
fn an_attestation_in_a_copy_leaves_the_state_it_was_copied_from_untouched() {
    let (mut v, custodians) = custodial_venue(4);
    let alice = v.key("alice").public_key();
    let parent = v.exchange.clone();
    let tx = attest(&mut v, &custodians[0], 3, deposit(&alice, 10_000));
    let out = v.block(vec![tx]);
    assert!(out.txs[0].rejection.is_none());
    assert_ne!(
        v.exchange.state_digest(),
        parent.state_digest(),
        "the copy recorded the attestation"
    );
    assert_eq!(v.exchange.custody().unwrap().pending_count(), 1);
    assert_eq!(
        parent.custody().unwrap().pending_count(),
        0,
        "the state copied from waits for nothing"
    );
    assert!(parent.custody().unwrap().id_open(3));
}
