//! API keys are agent keys of the exchange.
//!
//! Creating one (`POST /gateway/v1/apikeys` with the owner's public key and the nonce of the
//! owner's coming `AuthoriseAgent` transaction): the gateway generates an ed25519 agent key,
//! its proof of possession (the agent's signature over `agent_proof_message(owner, nonce)`),
//! a client id and a random client secret, and keeps the key pending. The owner signs and
//! submits `AuthoriseAgent { agent, proof }` with its own key; once the replica sees the agent
//! bound to the owner's account in a finalized block, the key is active. A finalized
//! `RevokeAgent` (the exchange then records the key as revoked) ends it. The key's state is
//! read from the replica on every request, so the exchange, not this file, decides.
//!
//! Owns: generating keys, the bounded pending set (expiry, per-address limit), and the key
//! file (`apikeys.json` in the data dir, mode 0600, rewritten whole through a temporary
//! file). Never: stores a key the owner did not ask for; lets an API key withdraw (the
//! exchange refuses agents that); keeps more than [`KEYS_MAX`] keys.

use bulwark_exchange::{Exchange, KeyRole};
use bulwark_node::executor::hex;
use bulwark_types::{
    Nonce, PrivateKey, PublicKey, tx::AGENT_PROOF_NAMESPACE, tx::agent_proof_message,
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

/// Why a key could not be created or stored.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("owner must be 64 hex characters of an ed25519 public key")]
    OwnerInvalid,
    #[error("too many pending keys (from this address, or in all); try again later")]
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

    /// Creates a pending key for `owner`'s transaction with `nonce`, asked for from `address`;
    /// `pending` is [`Self::pending_ids`].
    pub fn create(
        &mut self,
        owner: &str,
        nonce: u64,
        address: &str,
        pending: &HashSet<String>,
        now_ms: u64,
    ) -> Result<ApiKey, KeyError> {
        let owner_key = bulwark_node::api::decode_hex(owner, 32)
            .and_then(|b| PublicKey::decode(b).ok())
            .ok_or(KeyError::OwnerInvalid)?;
        self.expire(pending, now_ms);
        let pending: Vec<&ApiKey> = self
            .keys
            .values()
            .filter(|k| pending.contains(&k.stored.client_id))
            .collect();
        if pending.len() >= PENDING_MAX
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

    #[test]
    fn keys_persist_and_pending_ones_are_bounded() {
        let dir = std::env::temp_dir().join(format!("bulwark-keys-{}", random_hex(4)));
        std::fs::create_dir_all(&dir).unwrap();
        let owner = hex(PrivateKey::from_seed(9).public_key().as_ref());
        let state = state();
        let mut store = KeyStore::open(&dir).unwrap();
        let key = store
            .create(&owner, 1, "a", &store.pending_ids(&state), 0)
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
        for n in 2..=PENDING_PER_ADDRESS_MAX as u64 {
            store
                .create(&owner, n, "a", &store.pending_ids(&state), 0)
                .unwrap();
        }
        let pending = store.pending_ids(&state);
        assert!(matches!(
            store.create(&owner, 99, "a", &pending, 0),
            Err(KeyError::TooManyPending)
        ));
        store.create(&owner, 99, "b", &pending, 0).unwrap();
        // Expired pending keys make room.
        let pending = store.pending_ids(&state);
        store
            .create(&owner, 100, "a", &pending, PENDING_TTL_MS + 1)
            .unwrap();
        assert!(matches!(
            store.create("zz", 1, "c", &pending, 0),
            Err(KeyError::OwnerInvalid)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
