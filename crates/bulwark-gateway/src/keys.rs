//! API keys are agent keys of the exchange.
//!
//! Creating one (`POST /gateway/v1/apikeys` with the owner's public key, the nonce of the
//! owner's coming `AuthoriseAgent` transaction, the request's time and the owner's signature
//! over the three, [`KeyRequest`]): for an owner whose account holds collateral, the gateway
//! generates an ed25519 agent key,
//! its proof of possession (the agent's signature over `agent_proof_message(owner, nonce)`),
//! a client id and a random client secret, and keeps the key pending. The owner signs and
//! submits `AuthoriseAgent { agent, proof }` with its own key; once the replica sees the agent
//! bound to the owner's account in a finalized block, the key is active. A finalized
//! `RevokeAgent` (the exchange then records the key as revoked) ends it. The key's state is
//! read from the replica on every request, so the exchange, not this file, decides.
//!
//! Owns: generating keys, the bounded pending set (expiry, per-owner and per-address limits,
//! one per owner nonce), and the key
//! file (`apikeys.json` in the data dir, mode 0600, rewritten whole through a temporary
//! file). Never: stores a key the owner did not ask for; lets an API key withdraw (the
//! exchange refuses agents that); keeps more than [`KEYS_MAX`] keys.

use bulwark_exchange::{Exchange, KeyRole};
use bulwark_node::executor::hex;
use bulwark_types::{
    Nonce, PrivateKey, PublicKey, Signature, tx::AGENT_PROOF_NAMESPACE, tx::agent_proof_message,
};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_cryptography::Signer as _;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Most keys kept in all (pending, active and revoked).
pub const KEYS_MAX: usize = 10_000;
/// Most pending keys at once.
pub const PENDING_MAX: usize = 1_024;
/// Most pending keys created from one client address.
pub const PENDING_PER_ADDRESS_MAX: usize = 8;
/// Most pending keys of one owner (an account binds at most 8 agents anyway).
pub const PENDING_PER_OWNER_MAX: usize = 4;
/// How far a key request's time may be from the gateway's clock.
pub const REQUEST_WINDOW_MS: u64 = 60_000;
/// The namespace of an owner's signature on a [`KeyRequest`].
pub const KEY_REQUEST_NAMESPACE: &[u8] = b"_BULWARK_APIKEY_REQUEST";
/// A pending key not activated within this is dropped.
pub const PENDING_TTL_MS: u64 = 15 * 60 * 1_000;
/// Largest key file read.
pub const FILE_BYTES_MAX: u64 = 16 << 20;

/// What the file keeps of one key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredKey {
    pub client_id: String,
    pub client_secret: String,
    /// Hex of the agent's private key.
    pub agent_secret: String,
    /// Hex of the owner's public key.
    pub owner: String,
    /// The owner nonce the proof is for.
    pub nonce: u64,
    pub created_ms: u64,
    /// Who asked for it (for the per-address pending limit).
    pub address: String,
}

/// One key, decoded.
#[derive(Clone)]
pub struct ApiKey {
    pub stored: StoredKey,
    pub agent: PrivateKey,
    pub owner: PublicKey,
}

/// A key's standing in the replica's state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Not (yet) bound: the owner's `AuthoriseAgent` is not finalized.
    Pending,
    /// Bound as an agent of the owner's account.
    Active(bulwark_types::AccountId),
    /// Revoked by the owner, or bound elsewhere than the owner's account.
    Revoked,
}

impl ApiKey {
    /// The key's standing in `state`.
    pub fn state(&self, state: &Exchange) -> KeyState {
        let agent = self.agent.public_key();
        match state.key_binding(&agent) {
            None => KeyState::Pending,
            Some((account, KeyRole::Agent)) => {
                let owned = state
                    .account(account)
                    .is_some_and(|a| a.owner == self.owner);
                if owned {
                    KeyState::Active(account)
                } else {
                    KeyState::Revoked
                }
            }
            Some(_) => KeyState::Revoked,
        }
    }
}

/// An owner's request for an API key. Only the owner can ask: without its signature anyone
/// could fill the pending set with keys for owners that never asked (every address shared one
/// pool of 1,024, and 128 addresses filled it in seconds, refusing everyone for 15 minutes),
/// or use up a real owner's share of it. The owner must also hold an account with collateral,
/// so each share of the pool costs a deposit.
#[derive(Clone, Debug)]
pub struct KeyRequest {
    pub owner: PublicKey,
    /// The nonce of the owner's coming `AuthoriseAgent`.
    pub nonce: u64,
    /// When the owner signed it, ms since the Unix epoch.
    pub ts_ms: u64,
    pub signature: Signature,
}

impl KeyRequest {
    /// What the owner signs (under [`KEY_REQUEST_NAMESPACE`]): its key, the nonce and the
    /// time, big-endian.
    pub fn message(owner: &PublicKey, nonce: u64, ts_ms: u64) -> Vec<u8> {
        let mut message = owner.encode().to_vec();
        message.extend_from_slice(&nonce.to_be_bytes());
        message.extend_from_slice(&ts_ms.to_be_bytes());
        message
    }

    /// A request signed by `owner` at `ts_ms`.
    pub fn sign(owner: &PrivateKey, nonce: u64, ts_ms: u64) -> Self {
        let message = Self::message(&owner.public_key(), nonce, ts_ms);
        Self {
            owner: owner.public_key(),
            nonce,
            ts_ms,
            signature: owner.sign(KEY_REQUEST_NAMESPACE, &message),
        }
    }

    /// From the request's JSON fields (hex key and signature).
    pub fn parse(owner: &str, nonce: u64, ts_ms: u64, signature: &str) -> Result<Self, KeyError> {
        let owner = bulwark_node::api::decode_hex(owner, 32)
            .and_then(|b| PublicKey::decode(b).ok())
            .ok_or(KeyError::OwnerInvalid)?;
        let signature = bulwark_node::api::decode_hex(signature, 64)
            .and_then(|b| Signature::decode(b).ok())
            .ok_or(KeyError::SignatureInvalid)?;
        Ok(Self {
            owner,
            nonce,
            ts_ms,
            signature,
        })
    }

    /// The signature is the owner's and the time within [`REQUEST_WINDOW_MS`] of `now_ms`.
    fn verify(&self, now_ms: u64) -> Result<(), KeyError> {
        use commonware_cryptography::Verifier as _;
        if self.ts_ms.abs_diff(now_ms) > REQUEST_WINDOW_MS {
            return Err(KeyError::RequestStale);
        }
        let message = Self::message(&self.owner, self.nonce, self.ts_ms);
        if self
            .owner
            .verify(KEY_REQUEST_NAMESPACE, &message, &self.signature)
        {
            Ok(())
        } else {
            Err(KeyError::SignatureInvalid)
        }
    }
}

/// Whether `owner` owns an account with collateral in `state` (cash, a position or an open
/// order): who may ask for API keys.
pub fn owner_funded(state: &Exchange, owner: &PublicKey) -> bool {
    matches!(state.key_binding(owner), Some((_, KeyRole::Owner)))
        && matches!(
            bulwark_node::shared::payer_of(state, owner),
            Ok(bulwark_node::mempool::Payer::Account(_))
        )
}

/// Why a key could not be created or stored.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("owner must be 64 hex characters of an ed25519 public key")]
    OwnerInvalid,
    #[error("signature must be 128 hex characters of the owner's ed25519 signature of the request")]
    SignatureInvalid,
    #[error("the request's time is more than 60 s from the gateway's clock")]
    RequestStale,
    #[error("the owner has no account with collateral (deposit first)")]
    OwnerWithoutAccount,
    #[error("a key for this owner and nonce is already pending")]
    AlreadyPending,
    #[error("too many pending keys (of this owner, from this address, or in all); try again later")]
    TooManyPending,
    #[error("the gateway holds as many keys as it may")]
    Full,
    #[error("key file {path}: {error}")]
    File { path: String, error: String },
}

/// Every key, by client id, and the file they live in.
pub struct KeyStore {
    path: Option<PathBuf>,
    keys: BTreeMap<String, ApiKey>,
}

fn decode_key(stored: StoredKey) -> Option<ApiKey> {
    let agent =
        PrivateKey::decode(bulwark_node::api::decode_hex(&stored.agent_secret, 32)?).ok()?;
    let owner = PublicKey::decode(bulwark_node::api::decode_hex(&stored.owner, 32)?).ok()?;
    Some(ApiKey {
        stored,
        agent,
        owner,
    })
}

/// Random bytes as hex.
fn random_hex(bytes: usize) -> String {
    use rand::RngExt as _;
    let mut rng = rand::rng();
    let buf: Vec<u8> = (0..bytes).map(|_| rng.random::<u8>()).collect();
    hex(&buf)
}

impl KeyStore {
    /// An in-memory store (tests).
    pub fn memory() -> Self {
        Self {
            path: None,
            keys: BTreeMap::new(),
        }
    }

    /// Loads `dir/apikeys.json`, or starts empty if there is none.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("apikeys.json");
        let file_error = |error: String| KeyError::File {
            path: path.display().to_string(),
            error,
        };
        let mut store = Self {
            path: Some(path.clone()),
            keys: BTreeMap::new(),
        };
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(file_error(e.to_string())),
        };
        if meta.len() > FILE_BYTES_MAX {
            return Err(file_error("too large".into()));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| file_error(e.to_string()))?;
        let stored: Vec<StoredKey> =
            serde_json::from_str(&text).map_err(|e| file_error(e.to_string()))?;
        for key in stored.into_iter().take(KEYS_MAX) {
            let id = key.client_id.clone();
            let decoded =
                decode_key(key).ok_or_else(|| file_error(format!("key {id} does not decode")))?;
            store.keys.insert(id, decoded);
        }
        Ok(store)
    }

    fn save(&self) -> Result<(), KeyError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file_error = |error: std::io::Error| KeyError::File {
            path: path.display().to_string(),
            error: error.to_string(),
        };
        let stored: Vec<&StoredKey> = self.keys.values().map(|k| &k.stored).collect();
        let text = serde_json::to_string_pretty(&stored).map_err(|e| KeyError::File {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        let temporary = path.with_extension("json.tmp");
        {
            use std::io::Write as _;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            let mut file = options.open(&temporary).map_err(file_error)?;
            file.write_all(text.as_bytes()).map_err(file_error)?;
            file.sync_all().map_err(file_error)?;
        }
        std::fs::rename(&temporary, path).map_err(file_error)
    }

    pub fn get(&self, client_id: &str) -> Option<&ApiKey> {
        self.keys.get(client_id)
    }

    /// Keys of `owner`.
    pub fn of_owner(&self, owner: &PublicKey) -> impl Iterator<Item = &ApiKey> + '_ {
        let owner = owner.clone();
        self.keys.values().filter(move |k| k.owner == owner)
    }

    /// The client ids of the keys still pending in `state` (callers take this under the
    /// replica's lock, then release it before [`Self::create`] writes the file).
    pub fn pending_ids(&self, state: &Exchange) -> HashSet<String> {
        self.keys
            .values()
            .filter(|k| k.state(state) == KeyState::Pending)
            .map(|k| k.stored.client_id.clone())
            .collect()
    }

    /// Drops pending keys older than [`PENDING_TTL_MS`].
    fn expire(&mut self, pending: &HashSet<String>, now_ms: u64) {
        self.keys.retain(|id, key| {
            !pending.contains(id) || now_ms.saturating_sub(key.stored.created_ms) < PENDING_TTL_MS
        });
    }

    /// Creates a pending key for the owner's signed `request`, asked for from `address`;
    /// `pending` is [`Self::pending_ids`] and `funded` is [`owner_funded`], both read from the
    /// replica's finalized state.
    pub fn create(
        &mut self,
        request: &KeyRequest,
        funded: bool,
        address: &str,
        pending: &HashSet<String>,
        now_ms: u64,
    ) -> Result<ApiKey, KeyError> {
        request.verify(now_ms)?;
        if !funded {
            return Err(KeyError::OwnerWithoutAccount);
        }
        let owner_key = request.owner.clone();
        let nonce = request.nonce;
        self.expire(pending, now_ms);
        let pending: Vec<&ApiKey> = self
            .keys
            .values()
            .filter(|k| pending.contains(&k.stored.client_id))
            .collect();
        let owners: Vec<&&ApiKey> = pending.iter().filter(|k| k.owner == owner_key).collect();
        if owners.iter().any(|k| k.stored.nonce == nonce) {
            return Err(KeyError::AlreadyPending);
        }
        if pending.len() >= PENDING_MAX
            || owners.len() >= PENDING_PER_OWNER_MAX
            || pending
                .iter()
                .filter(|k| k.stored.address == address)
                .count()
                >= PENDING_PER_ADDRESS_MAX
        {
            return Err(KeyError::TooManyPending);
        }
        if self.keys.len() >= KEYS_MAX {
            return Err(KeyError::Full);
        }
        let agent = {
            use commonware_math::algebra::Random as _;
            PrivateKey::random(rand::rng())
        };
        let stored = StoredKey {
            client_id: format!("blw-{}", random_hex(8)),
            client_secret: random_hex(32),
            agent_secret: hex(&agent.encode()),
            owner: hex(owner_key.as_ref()),
            nonce,
            created_ms: now_ms,
            address: address.to_string(),
        };
        let key = ApiKey {
            stored,
            agent,
            owner: owner_key,
        };
        self.keys.insert(key.stored.client_id.clone(), key.clone());
        if let Err(error) = self.save() {
            self.keys.remove(&key.stored.client_id);
            return Err(error);
        }
        Ok(key)
    }
}

/// The agent's proof of possession for `owner`'s `AuthoriseAgent` with `nonce`, as hex.
pub fn proof_hex(key: &ApiKey) -> String {
    let message = agent_proof_message(&key.owner, Nonce::new(key.stored.nonce));
    hex(&key.agent.sign(AGENT_PROOF_NAMESPACE, &message).encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Exchange {
        crate::test_exchange(1_000)
    }

    /// A request signed by the owner with seed `seed`, at time 0.
    fn request(seed: u64, nonce: u64) -> KeyRequest {
        KeyRequest::sign(&PrivateKey::from_seed(seed), nonce, 0)
    }

    #[test]
    fn keys_persist_and_pending_ones_are_bounded() {
        let dir = std::env::temp_dir().join(format!("bulwark-keys-{}", random_hex(4)));
        std::fs::create_dir_all(&dir).unwrap();
        let state = state();
        let mut store = KeyStore::open(&dir).unwrap();
        let key = store
            .create(&request(9, 1), true, "a", &store.pending_ids(&state), 0)
            .unwrap();
        assert_eq!(key.state(&state), KeyState::Pending);
        let proof = proof_hex(&key);
        assert_eq!(proof.len(), 128);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("apikeys.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let reopened = KeyStore::open(&dir).unwrap();
        let again = reopened.get(&key.stored.client_id).unwrap();
        assert_eq!(again.stored, key.stored);
        assert_eq!(again.agent.public_key(), key.agent.public_key());
        // One pending key per owner nonce, at most PENDING_PER_OWNER_MAX per owner.
        let pending = store.pending_ids(&state);
        assert!(matches!(
            store.create(&request(9, 1), true, "a", &pending, 0),
            Err(KeyError::AlreadyPending)
        ));
        for n in 2..=PENDING_PER_OWNER_MAX as u64 {
            store
                .create(&request(9, n), true, "a", &store.pending_ids(&state), 0)
                .unwrap();
        }
        let pending = store.pending_ids(&state);
        assert!(matches!(
            store.create(&request(9, 99), true, "b", &pending, 0),
            Err(KeyError::TooManyPending)
        ));
        // At most PENDING_PER_ADDRESS_MAX from one address, whoever the owners.
        for n in 1..=(PENDING_PER_ADDRESS_MAX - PENDING_PER_OWNER_MAX) as u64 {
            store
                .create(&request(10, n), true, "a", &store.pending_ids(&state), 0)
                .unwrap();
        }
        let pending = store.pending_ids(&state);
        assert!(matches!(
            store.create(&request(11, 1), true, "a", &pending, 0),
            Err(KeyError::TooManyPending)
        ));
        store
            .create(&request(11, 1), true, "b", &pending, 0)
            .unwrap();
        // Expired pending keys make room (the request signed when it was sent).
        let pending = store.pending_ids(&state);
        let later = KeyRequest::sign(&PrivateKey::from_seed(9), 100, PENDING_TTL_MS + 1);
        store
            .create(&later, true, "a", &pending, PENDING_TTL_MS + 1)
            .unwrap();
        assert!(matches!(
            KeyRequest::parse("zz", 1, 0, &"00".repeat(64)),
            Err(KeyError::OwnerInvalid)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The attack: anyone asked for keys for any owner, with nothing but its public key, and
    /// filled the pending pool for everyone. A key request now carries the owner's signature,
    /// of a recent time, and the owner must hold an account with collateral.
    #[test]
    fn only_a_funded_owner_can_ask_for_a_key_and_only_lately() {
        let state = state();
        let mut store = KeyStore::memory();
        let pending = store.pending_ids(&state);
        let owner = PrivateKey::from_seed(9);
        let forged = KeyRequest {
            signature: PrivateKey::from_seed(10).sign(
                KEY_REQUEST_NAMESPACE,
                &KeyRequest::message(&owner.public_key(), 1, 0),
            ),
            ..KeyRequest::sign(&owner, 1, 0)
        };
        assert!(matches!(
            store.create(&forged, true, "a", &pending, 0),
            Err(KeyError::SignatureInvalid)
        ));
        let mut altered = KeyRequest::sign(&owner, 1, 0);
        altered.nonce = 2;
        assert!(matches!(
            store.create(&altered, true, "a", &pending, 0),
            Err(KeyError::SignatureInvalid)
        ));
        assert!(matches!(
            store.create(
                &KeyRequest::sign(&owner, 1, 0),
                true,
                "a",
                &pending,
                REQUEST_WINDOW_MS + 1
            ),
            Err(KeyError::RequestStale)
        ));
        assert!(matches!(
            store.create(&KeyRequest::sign(&owner, 1, 0), false, "a", &pending, 0),
            Err(KeyError::OwnerWithoutAccount)
        ));
        assert!(
            !owner_funded(&state, &owner.public_key()),
            "no account in a fresh state"
        );
        store
            .create(&KeyRequest::sign(&owner, 1, 0), true, "a", &pending, 0)
            .unwrap();
    }
}
