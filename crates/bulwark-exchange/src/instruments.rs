//! The instrument table and the indexes derived from it.
//!
//! Owns: every listed [`Instrument`] (indexed by [`InstrumentId`]: ids are dense from 0 and
//! never reused), the name index, the set of underlyings (index prices and market maker
//! protection are accepted for these only) and the expiry queue of trading options.
//! Never: lets the indexes drift from the table. Listing ([`Instruments::list`]) and a
//! snapshot restore ([`Instruments::restored`]) index an instrument through the same code;
//! the expiry sweep is the only other change to an index ([`Instruments::pop_expired`]). An
//! instrument's book, marks and holders change through indexing (`instruments[i]`); its
//! spec, which the indexes are keyed by, is never written after listing. Never decides
//! whether a listing is allowed (`Exchange::list_instrument` checks, then calls `list`).
//! Bounds: at most `instruments_max` (<= 10^6) instruments.

use crate::instrument::{Instrument, InstrumentStatus};
use bulwark_types::{AssetCode, InstrumentId, InstrumentKind, InstrumentName};
use std::collections::{BTreeMap, BTreeSet};

/// The instruments and their indexes (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct Instruments {
    /// Indexed by `InstrumentId`.
    list: Vec<Instrument>,
    names: BTreeMap<InstrumentName, InstrumentId>,
    /// Underlyings of listed instruments.
    assets: BTreeSet<AssetCode>,
    /// Trading options by expiry instant, for the expiry sweep.
    expiries: BTreeSet<(u64, InstrumentId)>,
}

impl Instruments {
    /// The table a snapshot recorded, with its indexes rebuilt; `None` if two instruments
    /// share a name.
    pub(crate) fn restored(list: Vec<Instrument>) -> Option<Self> {
        let mut instruments = Self::default();
        for instrument in list {
            if instruments.names.contains_key(&instrument.spec.name) {
                return None;
            }
            instruments.push(instrument);
        }
        Some(instruments)
    }

    /// Adds a newly listed instrument, which takes the next id. The caller has checked that
    /// its name is new and the table below `instruments_max`.
    pub(crate) fn list(&mut self, instrument: Instrument) {
        assert_eq!(
            instrument.id.get() as usize,
            self.list.len(),
            "instrument ids are dense from 0"
        );
        assert!(
            !self.names.contains_key(&instrument.spec.name),
            "listing checked the name is new"
        );
        assert_eq!(
            instrument.status,
            InstrumentStatus::Trading,
            "a new listing trades"
        );
        self.push(instrument);
    }

    /// Indexes `instrument` and appends it: the one way into the table.
    fn push(&mut self, instrument: Instrument) {
        assert_eq!(
            instrument.id.get() as usize,
            self.list.len(),
            "instrument ids are dense from 0"
        );
        self.names.insert(instrument.spec.name, instrument.id);
        self.assets.insert(instrument.spec.underlying());
        if let (InstrumentStatus::Trading, InstrumentKind::Option { expiry_ms, .. }) =
            (instrument.status, instrument.kind)
        {
            self.expiries.insert((expiry_ms, instrument.id));
        }
        self.list.push(instrument);
        debug_assert_eq!(self.names.len(), self.list.len(), "one name per instrument");
    }

    /// Takes the option with the earliest expiry off the queue if it has expired by `now_ms`:
    /// its expiry instant and id.
    pub(crate) fn pop_expired(&mut self, now_ms: u64) -> Option<(u64, InstrumentId)> {
        let &(expiry_ms, id) = self.expiries.first()?;
        if expiry_ms > now_ms {
            return None;
        }
        self.expiries.pop_first();
        Some((expiry_ms, id))
    }

    // ---- reads ----

    pub(crate) fn as_slice(&self) -> &[Instrument] {
        &self.list
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Instrument> {
        self.list.iter()
    }

    /// The instrument at index `index`, if listed.
    pub(crate) fn get(&self, index: usize) -> Option<&Instrument> {
        self.list.get(index)
    }

    /// The id of the instrument named `name`, if listed.
    pub(crate) fn id_by_name(&self, name: &InstrumentName) -> Option<InstrumentId> {
        self.names.get(name).copied()
    }

    /// Whether some listed instrument has `asset` as its underlying.
    pub(crate) fn has_asset(&self, asset: &AssetCode) -> bool {
        self.assets.contains(asset)
    }

    /// The underlyings of listed instruments, in order.
    pub(crate) fn assets(&self) -> &BTreeSet<AssetCode> {
        &self.assets
    }
}

/// Indexing by `InstrumentId::get() as usize`; panics on an unlisted id (internal corruption:
/// ids from transactions are checked with [`Instruments::get`] first).
impl<'a> IntoIterator for &'a Instruments {
    type Item = &'a Instrument;
    type IntoIter = std::slice::Iter<'a, Instrument>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl std::ops::Index<usize> for Instruments {
    type Output = Instrument;

    fn index(&self, index: usize) -> &Instrument {
        &self.list[index]
    }
}

/// An instrument's own state (book, marks, holders, status) changes through here; its spec
/// and id, which the indexes are keyed by, are never written after listing.
impl std::ops::IndexMut<usize> for Instruments {
    fn index_mut(&mut self, index: usize) -> &mut Instrument {
        &mut self.list[index]
    }
}
