//! Unit-test helpers shared by this crate's modules: a genesis exchange, and what a forger
//! can do to a snapshot (for the tests of the defences against it).

use bulwark_exchange::{Exchange, ExchangeParams, Genesis};
use bulwark_types::{BlockTime, PrivateKey};
use commonware_cryptography::{Hasher, Sha256, Signer as _};

/// The admin key of [`genesis_exchange`].
pub fn admin() -> PrivateKey {
    PrivateKey::from_seed(1)
}

/// The bridge key of [`genesis_exchange`].
pub fn bridge() -> PrivateKey {
    PrivateKey::from_seed(2)
}

/// An exchange at genesis with default parameters and no oracle, at time 1 s.
pub fn genesis_exchange() -> Exchange {
    let genesis = Genesis {
        admin: admin().public_key(),
        bridge: bridge().public_key(),
        params: ExchangeParams::defaults(),
        time: BlockTime::from_millis(1_000),
        oracle: None,
        custody: None,
    };
    Exchange::new(&genesis).expect("a valid genesis")
}

/// What a forger can do to a snapshot: `snapshot` with 1 USDC more in the insurance fund and in deposits (so the ledger still
/// balances), its outcome chain untouched, and its own trailer recomputed so that it restores.
pub fn credit_fund(snapshot: &[u8]) -> Vec<u8> {
    let state = Exchange::restore(snapshot).expect("an honest snapshot");
    // The ledger follows the outcome chain's digest (32 bytes, unique in the encoding) and
    // the next order id (8 bytes): deposits, withdrawals, fees, fund, as 16-byte integers.
    let digest = state.state_digest();
    let at = snapshot
        .windows(digest.as_ref().len())
        .position(|w| w == digest.as_ref())
        .expect("the digest is in the snapshot")
        + 32
        + 8;
    let mut body = snapshot[..snapshot.len() - 32].to_vec();
    for field in [at, at + 48] {
        let bytes: [u8; 16] = body[field..field + 16].try_into().expect("16 bytes");
        let value = i128::from_be_bytes(bytes) + 1_000_000;
        body[field..field + 16].copy_from_slice(&value.to_be_bytes());
    }
    let trailer = Sha256::hash(&[&body]);
    body.extend_from_slice(trailer.as_ref());
    body
}
