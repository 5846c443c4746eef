//! The account table and the liquidation screen that bounds it, kept sound together.
//!
//! Owns: every [`Account`] (indexed by [`AccountId`]: ids are dense from 0 and never reused)
//! and the [`LiquidationScreen`], a floor of each account's margin slack that lets the
//! block's liquidation pass skip accounts proven above maintenance.
//! Never: hands out `&mut Account` without dropping that account's screen floor. The only
//! mutable access is [`Accounts::get_mut`], which marks the row unknown first, so the next
//! pass measures the account exactly; the one exception, [`Accounts::set_cash_screened`], is
//! for funding, whose per-contract payments the screen counts in each instrument's drift
//! ([`Accounts::funding_paid`]). Reads ([`Accounts::get`], indexing, [`Accounts::as_slice`])
//! are plain slice reads. Never decides anything about money (`ledger.rs` moves it) or margin.
//! An account is never removed: one absorbed into another (`Exchange::authorise_agent`) stays,
//! closed, with no money and no key bound to it.
//! Copy on write: each account sits behind its own [`Arc`], so cloning the table (a
//! speculative state per block, `bulwark-node`'s chain) copies pointers, and the first change
//! to an account in a clone copies that account alone ([`Accounts::get_mut`] is the one place
//! that happens).
//! Bounds: at most `accounts_max` accounts (`Exchange::deposit` checks before opening one;
//! closed accounts count).

use crate::account::Account;
use crate::margin::{StandardMargin, ValuationPrices};
use crate::screen::LiquidationScreen;
use bulwark_types::{AccountId, ChunkedVec, InstrumentKind, Money, Multiplier, PublicKey};
use std::sync::Arc;

/// The accounts and their liquidation screen (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct Accounts {
    /// Indexed by `AccountId`; each shared with the clones of this table until changed, and
    /// in chunks of [`ACCOUNTS_PER_CHUNK`], so a copy of the table copies one pointer a chunk
    /// (a `Vec` copied one a row: at 100,000 accounts that and the key table's copy were
    /// most of a speculated block's cost, `cargo bench -p bulwark --bench apply_block --
    /// accounts`).
    list: ChunkedVec<Arc<Account>, ACCOUNTS_PER_CHUNK>,
    /// Derived: never snapshotted; a restored table starts with every row unknown.
    screen: LiquidationScreen,
}

/// Accounts per chunk of the table: a change to an account of a copied table copies its chunk's
/// pointers (512 bytes) before the account itself.
pub(crate) const ACCOUNTS_PER_CHUNK: usize = 64;

impl Accounts {
    /// A table restored from a snapshot: every screen row is unknown, so the first pass
    /// measures every account.
    pub(crate) fn restored(list: Vec<Account>) -> Self {
        for (i, account) in list.iter().enumerate() {
            assert_eq!(account.id.get(), i as u64, "account ids are dense from 0");
        }
        Self {
            list: list.into_iter().map(Arc::new).collect(),
            screen: LiquidationScreen::default(),
        }
    }

    // ---- reads ----

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The account with id `id`, if one was opened.
    pub(crate) fn get(&self, id: AccountId) -> Option<&Account> {
        usize::try_from(id.get())
            .ok()
            .and_then(|i| self.list.get(i))
            .map(|account| &**account)
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &Account> + DoubleEndedIterator {
        self.list.iter().map(|account| &**account)
    }

    /// Whether the account holds nothing but cash, as one that only deposits reached: no
    /// position or order, no agent, no market maker protection, standard margin, cash not
    /// negative. (With its owner key's nonce unspent, `Keys::unused_owner`, that is every
    /// account nobody acted for; checked as well, so no other state is ever absorbed.)
    pub(crate) fn holds_only_cash(&self, id: AccountId) -> bool {
        self.get(id).is_some_and(|a| {
            a.exposures.is_empty()
                && a.client_orders.is_empty()
                && a.agents == 0
                && a.mmp.is_empty()
                && a.margin_mode == crate::account::MarginMode::Standard
                && !a.cash.is_negative()
        })
    }

    /// The screen, to read (the debug check of its floors).
    pub(crate) fn screen(&self) -> &LiquidationScreen {
        &self.screen
    }

    // ---- changes ----

    /// Opens the next account, owned by `owner`, and returns its id.
    pub(crate) fn open(&mut self, owner: PublicKey) -> AccountId {
        let id = AccountId::new(self.list.len() as u64);
        self.list.push(Arc::new(Account::new(id, owner)));
        debug_assert_eq!(self.list.len() as u64, id.get() + 1, "ids stay dense");
        id
    }

    /// The account, to change: its liquidation-screen floor is dropped first, so the next pass
    /// measures it. Every change to an account (cash, positions, orders, keys, protection,
    /// margin mode) goes through here, but funding ([`Self::set_cash_screened`]).
    pub(crate) fn get_mut(&mut self, id: AccountId) -> &mut Account {
        self.screen.touch(id);
        Arc::make_mut(&mut self.list[index(id)])
    }

    /// Sets an account's cash and leaves its screen floor standing. Only for funding: the
    /// caller must have recorded the instrument's per-contract payment with
    /// [`Self::funding_paid`] in the same block, so the next pass lowers the floor by it
    /// (`ledger.rs`, `Pocket::Screened`).
    pub(crate) fn set_cash_screened(&mut self, id: AccountId, cash: Money) {
        Arc::make_mut(&mut self.list[index(id)]).cash = cash;
    }

    /// Records funding paid on an instrument (each holder's cash moves by `per_contract`
    /// times its position, through [`Self::set_cash_screened`]).
    pub(crate) fn funding_paid(&mut self, instrument: usize, per_contract: Money) {
        self.screen.funding_paid(instrument, per_contract);
    }

    // ---- the liquidation pass ----

    /// Starts a pass at `prices`: see [`LiquidationScreen::begin_pass`].
    pub(crate) fn begin_pass(
        &mut self,
        prices: &[ValuationPrices],
        instruments: impl Iterator<Item = (InstrumentKind, Multiplier, i64)>,
        margin: &StandardMargin,
    ) {
        self.screen
            .begin_pass(self.list.len(), prices, instruments, margin);
    }

    /// Whether the account is proven at or above maintenance at this pass's prices: see
    /// [`LiquidationScreen::proven_safe`].
    pub(crate) fn proven_safe(&mut self, id: AccountId) -> bool {
        self.screen.proven_safe(id)
    }

    /// Records an exact measurement of the account at this pass's prices: see
    /// [`LiquidationScreen::record`].
    pub(crate) fn record(&mut self, id: AccountId, equity: Money, maintenance: Money) {
        self.screen
            .record(&self.list[index(id)], equity, maintenance);
    }
}

/// Read-only indexing by id; panics on an id no account has (internal corruption: ids come
/// from the state machine, which checks external ones with [`Accounts::get`]).
impl std::ops::Index<AccountId> for Accounts {
    type Output = Account;

    fn index(&self, id: AccountId) -> &Account {
        &self.list[index(id)]
    }
}

fn index(id: AccountId) -> usize {
    usize::try_from(id.get()).expect("account ids are indices")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ExchangeParams;
    use bulwark_types::PrivateKey;
    use commonware_cryptography::Signer;

    /// One account, measured at 10 USDC of slack by an empty pass.
    fn screened() -> (Accounts, AccountId) {
        let mut accounts = Accounts::default();
        let id = accounts.open(PrivateKey::from_seed(1).public_key());
        let margin = StandardMargin::new(&ExchangeParams::defaults());
        accounts.begin_pass(&[], std::iter::empty(), &margin);
        accounts.record(id, Money::from_usdc(10), Money::ZERO);
        (accounts, id)
    }

    #[test]
    fn mutable_access_drops_the_floor_and_funding_keeps_it() {
        let (mut accounts, id) = screened();
        assert!(accounts.proven_safe(id), "measured above maintenance");
        accounts.set_cash_screened(id, Money::from_usdc(3));
        assert!(
            accounts.proven_safe(id),
            "funding is counted as drift instead"
        );
        accounts.get_mut(id).agents += 1;
        assert!(
            !accounts.proven_safe(id),
            "any other change is measured next pass"
        );
        assert_eq!(accounts[id].cash, Money::from_usdc(3));
    }

    #[test]
    fn ids_are_dense_and_a_restored_table_is_unscreened() {
        let (accounts, id) = screened();
        assert_eq!(id, AccountId::new(0));
        assert!(accounts.get(AccountId::new(1)).is_none());
        let mut restored = Accounts::restored(accounts.iter().cloned().collect());
        assert!(!restored.proven_safe(id), "the screen is not state");
    }
}
