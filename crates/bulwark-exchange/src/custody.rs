//! What no single key may do: money entering the exchange (deposits, insurance funding) and
//! listings, carried out only on a quorum of custodians' attestations.
//!
//! Owns: the custodians and threshold the genesis names ([`Custody`]), the attestations
//! waiting for a quorum, and the ids already carried out ([`CustodyState`]).
//! Never: lets one key, or any `threshold - 1` custodians together, credit money or list an
//! instrument; carries out an id twice; lets one custodian's attestations crowd out the
//! others' (each has its own bound on what waits).
//!
//! The rule, in the manner of Hyperliquid's bridge (funds move on 2/3 of validators'
//! signatures) and dYdX v4's validators attesting deposits: each custodian (for instance each
//! validator, watching the settlement chain) sends `Attest { id, action }` as its own signed
//! transaction; when `threshold` distinct custodians attested the same action under the same id,
//! the action takes effect in that block and the id is spent. Different actions under one id
//! wait apart, so a custodian that lies about an id (crediting itself under the id of a real
//! deposit) cannot block the true action: honest custodians complete it and the lie is dropped
//! with every other candidate for the spent id. With `threshold` above the number of faulty
//! custodians, the faulty ones together can carry out nothing.
//!
//! With custody, the genesis' single bridge and admin keys may no longer deposit, fund or list
//! (`QuorumRequired`); without it (tests, a single trusted operator) they still do.
//!
//! Bounds: at most [`CUSTODIANS_MAX`] custodians; at most [`PENDING_PER_CUSTODIAN_MAX`]
//! actions waiting that a custodian attested; the [`DONE_IDS_KEPT`] highest spent ids kept,
//! ids below the oldest kept refused.

use crate::event::Event;
use crate::exchange::Exchange;
use crate::params::ConfigError;
use bulwark_types::{CustodyAction, PublicKey, RejectReason};
use commonware_codec::Encode;
use std::collections::{BTreeMap, BTreeSet};

/// Most custodians a genesis may name (attestations are a 16-bit set).
pub const CUSTODIANS_MAX: usize = 16;
/// Most actions waiting for a quorum that one custodian attested.
pub const PENDING_PER_CUSTODIAN_MAX: usize = 256;
/// Spent ids kept; when more are spent the lowest is forgotten and every id up to it refused.
pub const DONE_IDS_KEPT: usize = 65_536;

/// The custodians the genesis names, and how many of them carry out an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Custody {
    pub custodians: Vec<PublicKey>,
    pub threshold: u8,
}

impl Custody {
    /// At most [`CUSTODIANS_MAX`] distinct custodians; a threshold of a strict majority of
    /// them at least (so two disjoint groups can never both carry out), at most all.
    pub fn check(&self) -> Result<(), ConfigError> {
        let n = self.custodians.len();
        let distinct: BTreeSet<&PublicKey> = self.custodians.iter().collect();
        let threshold = usize::from(self.threshold);
        if n == 0
            || n > CUSTODIANS_MAX
            || distinct.len() != n
            || threshold > n
            || 2 * threshold <= n
        {
            return Err(ConfigError::Bound(
                "custody: 1 to 16 distinct custodians, threshold a strict majority of them at most all",
            ));
        }
        Ok(())
    }
}

/// Custody as the exchange keeps it (state, snapshotted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustodyState {
    pub custody: Custody,
    /// (id, the action's encoding) -> (the action, the set of custodians who attested it, bit
    /// `i` for custodian `i`). Never as many as `threshold` attesters: a quorum carries out.
    pub(crate) pending: BTreeMap<(u64, Vec<u8>), (CustodyAction, u16)>,
    /// Spent ids, the highest [`DONE_IDS_KEPT`].
    pub(crate) done: BTreeSet<u64>,
    /// Every id below this is refused (spent, or forgotten).
    pub(crate) floor: u64,
}

impl CustodyState {
    pub fn new(custody: Custody) -> Self {
        Self {
            custody,
            pending: BTreeMap::new(),
            done: BTreeSet::new(),
            floor: 0,
        }
    }

    /// The index of `key` among the custodians.
    pub fn custodian(&self, key: &PublicKey) -> Option<usize> {
        self.custody.custodians.iter().position(|k| k == key)
    }

    /// Whether `id` can still be carried out.
    pub fn id_open(&self, id: u64) -> bool {
        id >= self.floor && !self.done.contains(&id)
    }

    /// Actions waiting for a quorum.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Actions waiting that custodian `index` attested.
    pub(crate) fn pending_of(&self, index: usize) -> usize {
        let bit = 1u16 << index;
        self.pending
            .values()
            .filter(|(_, by)| by & bit != 0)
            .count()
    }

    /// Spends `id`: drops every candidate action waiting under it and remembers it.
    fn spend(&mut self, id: u64) {
        let spent: Vec<(u64, Vec<u8>)> = self
            .pending
            .range((id, Vec::new())..)
            .take_while(|((i, _), _)| *i == id)
            .map(|(key, _)| key.clone())
            .collect();
        for key in spent {
            self.pending.remove(&key);
        }
        self.done.insert(id);
        if self.done.len() > DONE_IDS_KEPT {
            let lowest = self.done.pop_first().expect("more than DONE_IDS_KEPT");
            self.floor = lowest + 1;
            let floor = self.floor;
            self.pending.retain(|(i, _), _| *i >= floor);
        }
        debug_assert!(self.done.len() <= DONE_IDS_KEPT);
    }

    /// The invariants [`CustodyState`] keeps (checked after restore and, in debug builds,
    /// after every block).
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let n = self.custody.custodians.len();
        let threshold = u32::from(self.custody.threshold);
        for ((id, encoded), (action, by)) in &self.pending {
            if *by == 0 || u32::from(*by) >> n != 0 || by.count_ones() >= threshold {
                return Err("custody: attesters are custodians, fewer than the threshold");
            }
            if !self.id_open(*id) || action.encode().as_ref() != encoded.as_slice() {
                return Err("custody: waiting actions under open ids, keyed by their encoding");
            }
        }
        if (0..n).any(|i| self.pending_of(i) > PENDING_PER_CUSTODIAN_MAX)
            || self.done.len() > DONE_IDS_KEPT
            || self.done.first().is_some_and(|lowest| *lowest < self.floor)
        {
            return Err("custody: bounds, spent ids at or above the floor");
        }
        Ok(())
    }
}

impl Exchange {
    /// The custodians and what waits for them, when the genesis names custodians.
    pub fn custody(&self) -> Option<&CustodyState> {
        self.custody.as_deref()
    }

    /// Records `signer`'s attestation of `action` under `id`, and carries the action out
    /// when it completes a quorum (the action's own rejection, if any, is the transaction's;
    /// the id is spent either way, so a quorum's decision is never replayed).
    pub(crate) fn attest(
        &mut self,
        signer: &PublicKey,
        id: u64,
        action: &CustodyAction,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        // Copied here (once a block, when shared with the parent state), not with the state.
        let state =
            std::sync::Arc::make_mut(self.custody.as_mut().ok_or(RejectReason::NotCustodian)?);
        let index = state.custodian(signer).ok_or(RejectReason::NotCustodian)?;
        if !state.id_open(id) {
            return Err(RejectReason::CustodyIdUsed);
        }
        let bit = 1u16 << index;
        let key = (id, action.encode().to_vec());
        let by = match state.pending.get(&key) {
            Some((_, by)) if by & bit != 0 => return Err(RejectReason::AttestationRepeated),
            Some((_, by)) => *by,
            None if state.pending_of(index) >= PENDING_PER_CUSTODIAN_MAX => {
                return Err(RejectReason::AttestationsPendingLimit);
            }
            None => 0,
        };
        let by = by | bit;
        let approvals = u8::try_from(by.count_ones()).expect("at most 16 custodians");
        let threshold = state.custody.threshold;
        events.push(Event::Attested {
            id,
            custodian: u8::try_from(index).expect("at most 16 custodians"),
            approvals,
            threshold,
        });
        if approvals < threshold {
            state.pending.insert(key, (action.clone(), by));
            return Ok(());
        }
        state.spend(id);
        match action {
            CustodyAction::Deposit { owner, amount } => self.deposit(owner, *amount, events),
            CustodyAction::FundInsurance { amount } => self.fund_insurance(*amount, events),
            CustodyAction::ListInstrument(spec) => self.list_instrument(spec, events),
        }
    }
}
