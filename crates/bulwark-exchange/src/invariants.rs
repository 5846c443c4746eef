//! The exchange's invariants, checked after every block in tests and debug builds (and with
//! the `verify` feature), and on every snapshot restore. A violation is internal corruption:
//! [`Exchange::assert_invariants`] crashes, because a halted replica is a liveness fault the
//! cluster tolerates and one voting on corrupt state is not.
//!
//! 1. Money is conserved: `sum(cash) + fees + insurance fund = deposits - withdrawals`.
//! 2. Positions net to zero in every instrument, and `holders` lists exactly the non-zero ones.
//! 3. No book is crossed, and each is structurally sound.
//! 4. Every resting order belongs to an existing account, which indexes it by its client
//!    order id and reserves margin for it: the account's open-order totals equal its orders.
//! 5. Reduce-only orders sit on the reducing side and never exceed the position.
//! 6. Expired and settled instruments rest no orders; settled ones have no holders.
//! 7. With liquidation on, no account but the backstop leaves a block's liquidation pass
//!    (which runs before anything in the block takes liquidity) with negative equity unless
//!    the pass reports it queued ([`Exchange::check_deficits`]); every deficit the pass met
//!    was covered (by the insurance fund or deleveraging, recorded in a `DeficitCovered`
//!    event). The backstop is bound to no key.
//! 8. Every other account's owner key is bound to it as owner, or the account is closed
//!    (absorbed into another, `Exchange::authorise_agent`): its owner key serves another
//!    account as an agent (or revoked one), and it holds nothing.
//! 9. Every pending withdrawal belongs to an opened account (not the backstop), holds a
//!    positive amount and was asked for in the past; the accounts' paid withdrawals sum to the
//!    ledger's.

use crate::account::{KeyRole, OpenOrders};
use crate::exchange::Exchange;
use crate::instrument::InstrumentStatus;
use bulwark_types::{AccountId, InstrumentId, Money, Side, SignerKey};
use std::collections::BTreeMap;

/// A broken invariant, with what was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invariant violated: {0}")]
pub struct InvariantViolation(pub String);

#[derive(Default)]
struct Reserved {
    bids: OpenOrders,
    asks: OpenOrders,
    reduce_only_qty: i64,
    reduce_only_sides: [bool; 2],
}

fn violation<T>(what: String) -> Result<T, InvariantViolation> {
    Err(InvariantViolation(what))
}

impl Exchange {
    /// Panics with the violation and the height if any invariant fails.
    pub fn assert_invariants(&self) {
        if let Err(e) = self.check_invariants() {
            panic!("{e} (height {})", self.height);
        }
    }

    /// Invariant 7, given the liquidation pass's events
    /// ([`crate::BlockOutcome::liquidation_events`]), right after the pass.
    /// O(accounts x instruments held).
    pub fn check_deficits(&self, pass_events: &[crate::Event]) -> Result<(), InvariantViolation> {
        if self.params.liquidation.is_none() {
            return Ok(());
        }
        let prices = self.valuation_prices_all();
        for account in self.accounts.iter() {
            if Some(account.id) == self.backstop {
                continue;
            }
            let margin = self.margin_of(account, None);
            let (equity, maintenance) = self.maintenance_of(account, &prices);
            if (equity, maintenance) != (margin.equity, margin.requirement.maintenance) {
                return violation(format!(
                    "account {}: the liquidation pass's maintenance {maintenance} differs from \
                     the margin model's {}",
                    account.id, margin.requirement.maintenance
                ));
            }
            if !equity.is_negative() {
                continue;
            }
            let queued = pass_events.iter().any(|e| {
                matches!(e, crate::Event::LiquidationQueued { account: a, .. } if *a == account.id)
            });
            if !queued {
                return violation(format!(
                    "account {} ends the block at equity {equity} with no cover or queue recorded",
                    account.id
                ));
            }
        }
        self.check_screen()
    }

    /// Every floor of the liquidation screen is at or below the account's exact slack at the
    /// prices it was taken at: the screen never skips an account the pass had to measure.
    fn check_screen(&self) -> Result<(), InvariantViolation> {
        let prices = self.accounts.screen().reference_prices();
        if prices.len() != self.instruments.len() {
            // No pass since the last listing: no floor is relied on before the next one.
            return Ok(());
        }
        for (id, floor) in self.accounts.screen().floors() {
            let Some(account) = self.accounts.get(id) else {
                return violation(format!("the screen has a floor for unknown account {id}"));
            };
            let (equity, maintenance) = self.maintenance_of(account, prices);
            let slack = equity
                .checked_sub(maintenance)
                .expect("equity and maintenance are account sums (money bounds)");
            let floor = Money::from_micros(i128::from(floor));
            if floor > slack {
                return violation(format!(
                    "account {id}: screen floor {floor} above its slack {slack}"
                ));
            }
        }
        Ok(())
    }

    /// Checks every invariant; O(accounts + orders).
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.check_money()?;
        let reserved = self.check_instruments()?;
        self.check_accounts(&reserved)?;
        if let Some(custody) = &self.custody {
            custody
                .check()
                .map_err(|what| InvariantViolation(what.to_string()))?;
        }
        self.check_withdrawals()
    }

    /// Invariant 9 (see the module doc).
    fn check_withdrawals(&self) -> Result<(), InvariantViolation> {
        let withdrawn = self
            .accounts
            .iter()
            .try_fold(Money::ZERO, |sum, a| sum.checked_add(a.withdrawn));
        if withdrawn != Ok(self.treasury.totals().withdrawals) {
            return violation(format!(
                "accounts' withdrawals {withdrawn:?} are not the ledger's {:?}",
                self.treasury.totals().withdrawals
            ));
        }
        for (account, pending) in &self.withdrawals_pending {
            if account.get() >= self.accounts.len() as u64 || Some(*account) == self.backstop {
                return violation(format!("withdrawal pending for account {account:?}"));
            }
            if !pending.amount.is_positive() || pending.requested_ms > self.time.millis() {
                return violation(format!("withdrawal of account {account:?}: {pending:?}"));
            }
        }
        Ok(())
    }

    fn check_money(&self) -> Result<(), InvariantViolation> {
        let cash = self
            .accounts
            .iter()
            .try_fold(Money::ZERO, |sum, a| sum.checked_add(a.cash));
        let held = cash
            .and_then(|c| c.checked_add(self.treasury.totals().fees))
            .and_then(|c| c.checked_add(self.treasury.totals().insurance_fund));
        let net = self
            .treasury
            .totals()
            .deposits
            .checked_sub(self.treasury.totals().withdrawals);
        match (held, net) {
            (Ok(held), Ok(net)) if held == net => {}
            (held, net) => {
                return violation(format!(
                    "money not conserved: held {held:?}, deposited net {net:?}"
                ));
            }
        }
        if self.treasury.totals().fees.is_negative() {
            return violation(format!(
                "net fees negative: {}",
                self.treasury.totals().fees
            ));
        }
        Ok(())
    }

    fn check_instruments(
        &self,
    ) -> Result<BTreeMap<(AccountId, InstrumentId), Reserved>, InvariantViolation> {
        let mut reserved: BTreeMap<(AccountId, InstrumentId), Reserved> = BTreeMap::new();
        // Net position, number of non-zero positions and sum of longs per instrument.
        let mut positions: BTreeMap<InstrumentId, (i128, usize, i128)> = BTreeMap::new();
        for account in self.accounts.iter() {
            for (id, exposure) in &account.exposures {
                if exposure.position != 0 {
                    let entry = positions.entry(*id).or_default();
                    entry.0 += i128::from(exposure.position);
                    entry.1 += 1;
                    entry.2 += i128::from(exposure.position.max(0));
                }
            }
        }
        if let Some(oracle) = &self.oracle {
            for asset in self.instruments.assets() {
                if oracle.state.asset(asset).is_none() {
                    return violation(format!("oracle does not track listed underlying {asset}"));
                }
            }
        }
        for instrument in &self.instruments {
            let id = instrument.id;
            instrument
                .book
                .check_invariants()
                .map_err(|e| InvariantViolation(format!("instrument {id}: {e}")))?;
            if instrument.status != InstrumentStatus::Trading && !instrument.book.is_empty() {
                return violation(format!("instrument {id} rests orders after expiry"));
            }
            if instrument.status == InstrumentStatus::Settled && !instrument.holders.is_empty() {
                return violation(format!("settled instrument {id} still has holders"));
            }
            for holder in &instrument.holders {
                if self.account(*holder).is_none_or(|a| a.position(id) == 0) {
                    return violation(format!("holder {holder} of {id} holds nothing"));
                }
            }
            let (net, count, longs) = positions.get(&id).copied().unwrap_or((0, 0, 0));
            if net != 0 {
                return violation(format!("positions in {id} net to {net}, not zero"));
            }
            if longs != i128::from(instrument.open_interest()) {
                return violation(format!(
                    "{id} tracks open interest {} but its longs sum to {longs}",
                    instrument.open_interest()
                ));
            }
            if count != instrument.holders.len() {
                return violation(format!(
                    "{id} has {count} positions but {} holders",
                    instrument.holders.len()
                ));
            }
            if instrument.book.is_halted() != instrument.breaker.halted_until_ms.is_some() {
                return violation(format!("instrument {id}: halted book and breaker disagree"));
            }
            for side in [Side::Buy, Side::Sell] {
                let waiting = instrument
                    .book
                    .auction_orders()
                    .iter()
                    .filter(|o| o.side == side);
                for order in instrument.book.orders(side).chain(waiting) {
                    if order.order_id >= self.order_id_next {
                        return violation(format!(
                            "order {} has an id not yet issued",
                            order.order_id
                        ));
                    }
                    let Some(account) = self.account(order.account) else {
                        return violation(format!(
                            "order {} belongs to no account",
                            order.order_id
                        ));
                    };
                    if account.client_orders.get(&order.client_order_id)
                        != Some(&(id, order.order_id))
                    {
                        return violation(format!(
                            "order {} missing from its account's index",
                            order.order_id
                        ));
                    }
                    let entry = reserved.entry((order.account, id)).or_default();
                    match side {
                        Side::Buy => entry.bids.add(order.price, order.qty),
                        Side::Sell => entry.asks.add(order.price, order.qty),
                    }
                    if order.reduce_only {
                        entry.reduce_only_qty += order.qty.contracts();
                        entry.reduce_only_sides[side as usize] = true;
                    }
                }
            }
        }
        Ok(reserved)
    }

    fn check_accounts(
        &self,
        reserved: &BTreeMap<(AccountId, InstrumentId), Reserved>,
    ) -> Result<(), InvariantViolation> {
        let mut agents: BTreeMap<AccountId, u32> = BTreeMap::new();
        for (key, record) in &self.signers {
            if record
                .binding
                .is_some_and(|(account, _)| Some(account) == self.backstop)
            {
                return violation(format!(
                    "the backstop {account:?} is bound to a key",
                    account = self.backstop
                ));
            }
            match record.binding {
                Some((account, KeyRole::Agent)) => *agents.entry(account).or_default() += 1,
                Some((account, KeyRole::Owner))
                    if self
                        .account(account)
                        .is_none_or(|a| SignerKey::of(&a.owner) != *key) =>
                {
                    return violation(format!("owner key of account {account} does not match"));
                }
                _ => {}
            }
        }
        let empty = Reserved::default();
        for (index, account) in self.accounts.iter().enumerate() {
            let id = account.id;
            if id.get() != index as u64 {
                return violation(format!("account at {index} has id {id}"));
            }
            let owner_binding = self.signers.binding(&account.owner);
            let closed = match owner_binding {
                Some((bound, KeyRole::Owner)) if bound == id => false,
                // Absorbed: its owner key now serves another account.
                Some((bound, KeyRole::Agent | KeyRole::Revoked)) if bound != id => true,
                // The backstop is owned by the admin key and bound to none.
                None if Some(id) == self.backstop => false,
                _ => {
                    return violation(format!(
                        "account {id}'s owner key is bound to {owner_binding:?}"
                    ));
                }
            };
            if closed
                && (account.cash != Money::ZERO
                    || !account.exposures.is_empty()
                    || !account.client_orders.is_empty()
                    || account.agents != 0
                    || !account.mmp.is_empty()
                    || self.withdrawals_pending.contains_key(&id))
            {
                return violation(format!("closed account {id} holds something"));
            }
            if u32::from(account.agents) != agents.get(&id).copied().unwrap_or(0) {
                return violation(format!("account {id} agent count disagrees with the keys"));
            }
            if account.client_orders.len() > self.params.orders_open_max as usize {
                return violation(format!("account {id} exceeds orders_open_max"));
            }
            let open_orders: usize = account
                .exposures
                .values()
                .map(|e| (e.bids.count + e.asks.count) as usize)
                .sum();
            if open_orders != account.client_orders.len() {
                return violation(format!(
                    "account {id} counts {open_orders} orders but indexes {}",
                    account.client_orders.len()
                ));
            }
            for (instrument, exposure) in &account.exposures {
                if self.instrument(*instrument).is_none() {
                    return violation(format!(
                        "account {id} has an entry for unlisted {instrument}"
                    ));
                }
                if exposure.is_empty() {
                    return violation(format!(
                        "account {id} keeps an empty entry for {instrument}"
                    ));
                }
                let want = reserved.get(&(id, *instrument)).unwrap_or(&empty);
                if exposure.bids != want.bids
                    || exposure.asks != want.asks
                    || exposure.reduce_only_qty != want.reduce_only_qty
                {
                    return violation(format!(
                        "account {id} reserves for {instrument} other than its resting orders"
                    ));
                }
                let reducing_side = if exposure.position > 0 {
                    Side::Sell
                } else {
                    Side::Buy
                };
                let wrong_side = want.reduce_only_sides[reducing_side.opposite() as usize];
                if want.reduce_only_qty > exposure.position.abs()
                    || (want.reduce_only_qty > 0 && wrong_side)
                {
                    return violation(format!(
                        "account {id} reduce-only orders in {instrument} exceed its position"
                    ));
                }
            }
            for (instrument, _) in
                reserved.range((id, InstrumentId::new(0))..=(id, InstrumentId::new(u32::MAX)))
            {
                if !account.exposures.contains_key(&instrument.1) {
                    return violation(format!(
                        "account {id} rests orders in {} without an entry",
                        instrument.1
                    ));
                }
            }
        }
        Ok(())
    }
}
