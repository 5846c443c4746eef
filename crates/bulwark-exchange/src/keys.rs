//! The keys that may sign transactions: each key's last nonce and the account it acts for.
//!
//! Owns: one [`KeyRecord`] per key that ever signed for something (the operators' keys from
//! genesis, custodians' included, every account owner's, every agent's, revoked ones too).
//! Never: lets a key's nonce fall or repeat ([`Keys::spend_nonce`] is the only write of it),
//! forgets a key (a revoked agent's record stays, so its old transactions cannot replay), or
//! rebinds a bound key: an owner key is bound once, when its account opens, and released only
//! while it never signed ([`Keys::release_unused_owner`], when its account is absorbed, to be
//! bound as an agent at once); an agent key is bound only while free or revoked from the same
//! account, and only an agent is revoked.
//! Never checks signatures or roles (the block's signature verdicts and `Exchange::authorise`
//! do).
//! Bounds: one record per account owner and per agent (`agents_max` per account), plus the two
//! operators.

use crate::account::{KeyRecord, KeyRole};
use bulwark_types::{AccountId, PublicKey, RejectReason, SignerKey};
use std::collections::BTreeMap;

/// The records: a persistent B-tree, so a copy of the table (one per speculated block) shares
/// its nodes and a nonce spent in the copy copies the path to its record, not the table.
type Records = imbl::OrdMap<SignerKey, KeyRecord>;

/// The signing keys (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct Keys {
    /// By the key's encoding, the order [`PublicKey`] has: read for every transaction (nonce,
    /// payer) and copied with every speculative state, so its nodes hold 32 bytes a key, not
    /// the 192 of a decoded one. A `BTreeMap` was copied whole for every speculated block: at
    /// 100,000 accounts that and the account table's copy were most of a block's cost (`cargo
    /// bench -p bulwark --bench apply_block -- accounts`).
    records: Records,
}

const UNUSED: KeyRecord = KeyRecord {
    nonce_last: None,
    binding: None,
};

impl Keys {
    /// The operators' keys (admin, bridge, custodians), bound to no account, with no nonce
    /// spent.
    pub(crate) fn genesis<'a>(operators: impl IntoIterator<Item = &'a PublicKey>) -> Self {
        let mut records = Records::new();
        for key in operators {
            records.insert(SignerKey::of(key), UNUSED);
        }
        Self { records }
    }

    /// The records a snapshot held (checked against the accounts by the restore).
    pub(crate) fn restored(records: BTreeMap<SignerKey, KeyRecord>) -> Self {
        Self {
            records: records.into_iter().collect(),
        }
    }

    /// Spends `nonce` for `key`, which must be known and must not have used `nonce` or a
    /// larger one. Returns the key's binding.
    pub(crate) fn spend_nonce(
        &mut self,
        key: &PublicKey,
        nonce: u64,
    ) -> Result<Option<(AccountId, KeyRole)>, RejectReason> {
        let record = self
            .records
            .get_mut(&SignerKey::of(key))
            .ok_or(RejectReason::SignerUnknown)?;
        if used(record.nonce_last, nonce) {
            return Err(RejectReason::NonceNotIncreasing);
        }
        record.nonce_last = Some(nonce);
        Ok(record.binding)
    }

    /// Binds `key` as the owner of `account`, which has just opened. The key acts for no
    /// account yet (the deposit checked).
    pub(crate) fn bind_owner(&mut self, key: &PublicKey, account: AccountId) {
        let record = self.records.entry(SignerKey::of(key)).or_insert(UNUSED);
        assert_eq!(record.binding, None, "an owner key is bound once");
        record.binding = Some((account, KeyRole::Owner));
    }

    /// The account `key` owns, if it owns one and never signed a transaction (its nonce was
    /// never spent): an account opened by deposits alone, which its key's holder may hand to
    /// another account by consenting to serve it as an agent (`Exchange::authorise_agent`).
    pub(crate) fn unused_owner(&self, key: &PublicKey) -> Option<AccountId> {
        match self.records.get(&SignerKey::of(key)) {
            Some(KeyRecord {
                nonce_last: None,
                binding: Some((account, KeyRole::Owner)),
            }) => Some(*account),
            _ => None,
        }
    }

    /// Unbinds `key` from the account it owns, which must be [`Self::unused_owner`]'s: the
    /// caller emptied that account and binds the key as an agent next. The record stays.
    pub(crate) fn release_unused_owner(&mut self, key: &PublicKey) -> AccountId {
        let account = self
            .unused_owner(key)
            .expect("only an owner key that never signed is released");
        let record = self
            .records
            .get_mut(&SignerKey::of(key))
            .expect("a bound key has a record");
        record.binding = None;
        account
    }

    /// Whether `agent` may be bound to `account`: it acts for no account, or it is a revoked
    /// agent of this very account (whose nonce stays).
    pub(crate) fn agent_free(&self, agent: &PublicKey, account: AccountId) -> bool {
        match self.binding(agent) {
            None => true,
            Some((bound, KeyRole::Revoked)) => bound == account,
            Some(_) => false,
        }
    }

    /// Binds `agent` to trade for `account`; the caller checked [`Self::agent_free`].
    pub(crate) fn bind_agent(&mut self, agent: &PublicKey, account: AccountId) {
        assert!(
            self.agent_free(agent, account),
            "an agent key is bound only while free"
        );
        let record = self.records.entry(SignerKey::of(agent)).or_insert(UNUSED);
        record.binding = Some((account, KeyRole::Agent));
    }

    /// Revokes `agent`, which must be an agent of `account`; its record stays.
    pub(crate) fn revoke_agent(
        &mut self,
        agent: &PublicKey,
        account: AccountId,
    ) -> Result<(), RejectReason> {
        let record = self
            .records
            .get_mut(&SignerKey::of(agent))
            .ok_or(RejectReason::AgentUnknown)?;
        if record.binding != Some((account, KeyRole::Agent)) {
            return Err(RejectReason::AgentUnknown);
        }
        record.binding = Some((account, KeyRole::Revoked));
        Ok(())
    }

    // ---- reads ----

    /// The account `key` acts for, with its role.
    pub(crate) fn binding(&self, key: &PublicKey) -> Option<(AccountId, KeyRole)> {
        self.records
            .get(&SignerKey::of(key))
            .and_then(|r| r.binding)
    }

    /// Whether `key` has used `nonce` or a larger one: [`Self::spend_nonce`] refuses it.
    pub(crate) fn nonce_used(&self, key: &PublicKey, nonce: u64) -> bool {
        used(self.nonce_last(key), nonce)
    }

    /// The last nonce `key` used, if any.
    pub(crate) fn nonce_last(&self, key: &PublicKey) -> Option<u64> {
        self.records
            .get(&SignerKey::of(key))
            .and_then(|r| r.nonce_last)
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}

/// The one rule of nonces: each is larger than the last one spent.
fn used(nonce_last: Option<u64>, nonce: u64) -> bool {
    nonce_last.is_some_and(|last| nonce <= last)
}

/// Every record, by key.
impl<'a> IntoIterator for &'a Keys {
    type Item = (&'a SignerKey, &'a KeyRecord);
    type IntoIter =
        imbl::ordmap::Iter<'a, SignerKey, KeyRecord, imbl::shared_ptr::DefaultSharedPtr>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::PrivateKey;
    use commonware_cryptography::Signer;

    fn key(seed: u64) -> PublicKey {
        PrivateKey::from_seed(seed).public_key()
    }

    #[test]
    fn nonces_only_rise_and_unknown_keys_sign_nothing() {
        let mut keys = Keys::genesis([&key(1), &key(2)]);
        assert_eq!(keys.spend_nonce(&key(1), 5), Ok(None));
        assert_eq!(
            keys.spend_nonce(&key(1), 5),
            Err(RejectReason::NonceNotIncreasing)
        );
        assert_eq!(
            keys.spend_nonce(&key(1), 4),
            Err(RejectReason::NonceNotIncreasing)
        );
        assert_eq!(keys.nonce_last(&key(1)), Some(5));
        assert_eq!(
            keys.spend_nonce(&key(3), 1),
            Err(RejectReason::SignerUnknown)
        );
    }

    #[test]
    fn an_agent_binds_while_free_and_only_an_agent_is_revoked() {
        let (a, b) = (AccountId::new(0), AccountId::new(1));
        let mut keys = Keys::default();
        keys.bind_owner(&key(1), a);
        assert!(!keys.agent_free(&key(1), a), "an owner key is in use");
        assert_eq!(
            keys.revoke_agent(&key(1), a),
            Err(RejectReason::AgentUnknown)
        );
        keys.bind_agent(&key(2), a);
        assert!(!keys.agent_free(&key(2), b));
        assert_eq!(
            keys.revoke_agent(&key(2), b),
            Err(RejectReason::AgentUnknown)
        );
        assert_eq!(keys.revoke_agent(&key(2), a), Ok(()));
        assert!(
            keys.agent_free(&key(2), a),
            "revoked from this account: may return"
        );
        assert!(!keys.agent_free(&key(2), b), "but not to another account");
    }

    #[test]
    fn only_an_owner_key_that_never_signed_is_released() {
        let (a, b) = (AccountId::new(0), AccountId::new(1));
        let mut keys = Keys::default();
        keys.bind_owner(&key(1), a);
        keys.bind_owner(&key(2), b);
        assert_eq!(keys.spend_nonce(&key(2), 1), Ok(Some((b, KeyRole::Owner))));
        assert_eq!(keys.unused_owner(&key(1)), Some(a));
        assert_eq!(keys.unused_owner(&key(2)), None, "it signed");
        keys.bind_agent(&key(3), b);
        assert_eq!(keys.unused_owner(&key(3)), None, "an agent owns nothing");
        assert_eq!(keys.release_unused_owner(&key(1)), a);
        assert_eq!(keys.binding(&key(1)), None);
        keys.bind_agent(&key(1), b);
        assert_eq!(keys.binding(&key(1)), Some((b, KeyRole::Agent)));
        assert_eq!(keys.unused_owner(&key(1)), None);
    }
}
