//! Withdrawals: money leaving the venue, paid only once the account has passed again at prices
//! the validators observed after it asked.
//!
//! Why a hold: the oracle takes observations up to `observation_age_ms_max` (5 s) old and
//! calls an index fresh for that long again after its last quorum, so when the validators'
//! sources fall silent the index stands at the last quorum, fresh, for up to twice the
//! observation age. A trader who reads the venues sees a crash at once; money withdrawn against
//! the frozen index would be the insurance fund's (the lab's `oracle-outage-early-withdrawal`).
//! So a withdrawal is first held, then paid at the end of the first block (the request's own,
//! at the earliest) in which every underlying the account holds has a fresh, settled index
//! whose last quorum's observations were all made after the request
//! (`AssetIndex::observed_since_ms`), if the account still covers it there: the prices it passes
//! at were observed after it was asked for. With validators observing every block that is the
//! next block or two; while the sources are silent it waits. An account holding nothing priced
//! by the oracle (or a venue on one trusted feed) is paid at the end of the request's block.
//!
//! Owns: the pending withdrawals ([`PendingWithdrawal`], at most one per account), the hold
//! they put on the account's available funds (`Exchange::margin_of` takes the amount off
//! `available` and the order check off what may back new risk, so neither new risk nor a
//! second withdrawal may use it), their release or cancellation at the end of every block,
//! after the liquidation pass, and their cancellation by the owner (`TxBody::CancelWithdrawal`,
//! the hold lifted at once).
//! Never: pays a withdrawal at prices observed before it was asked for, or while an underlying
//! the account holds has a stale or catching-up index, or while withdrawals are suspended (it
//! waits); pays one the account no longer covers at release (it is cancelled with the reason,
//! and the hold lifts). The held money stays the account's until paid: liquidation and its
//! losses see it.
//! Bounds: one pending withdrawal per account (`RejectReason::WithdrawalPending`); each block
//! looks at each pending one once (a cheap oracle check while it waits; margin once, when it
//! is paid or cancelled).
//!
//! With `withdrawals_held = false` a withdrawal is paid at once by its transaction (the lab's
//! comparison run).

use crate::event::Event;
use crate::exchange::Exchange;
use crate::ledger::Pocket;
use bulwark_types::{AccountId, Money, RejectReason};

/// A withdrawal asked for and held, waiting for its release.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PendingWithdrawal {
    /// Held from the account's available funds until paid or cancelled.
    pub amount: Money,
    /// The request's block time, milliseconds: it is paid at prices observed after it.
    pub requested_ms: u64,
}

/// What the end of a block does with a due withdrawal.
enum Release {
    /// An underlying's index cannot be trusted yet (stale, catching up, or not yet observed
    /// after the request), or withdrawals are suspended.
    Wait,
    Pay,
    Cancel(RejectReason),
}

impl Exchange {
    /// Asks for `amount` of the account's realised funds (`AccountMargin::withdrawable`) to
    /// leave, never while its prices cannot be trusted or its losses may fall on others:
    /// refused while the venue's insurance fund does not cover the deficits it must pay, while
    /// an underlying the account holds has no fresh oracle quorum (its margin is measured at a
    /// stale index and its liquidation is paused), while the oracle's deviation guard holds
    /// such an underlying's index away from the validators' median (after a large move the
    /// index follows at a bounded rate: margin measured at the lagging index overstates a
    /// losing position), while the account is below maintenance, and while another of its
    /// withdrawals waits. Accepted, it is held (see the module doc) and the same rules are
    /// checked again at its release.
    pub(crate) fn withdraw(
        &mut self,
        account: AccountId,
        amount: Money,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        if self.withdrawals_pending.contains_key(&account) {
            return Err(RejectReason::WithdrawalPending);
        }
        match self.release_verdict(account, amount, None) {
            Release::Pay => {}
            Release::Cancel(reason) => return Err(reason),
            Release::Wait => {
                return Err(if self.withdrawals_suspended() {
                    RejectReason::WithdrawalsSuspended
                } else if !self.account_oracles_fresh(&self.accounts[account]) {
                    RejectReason::WithdrawalOracleStale
                } else {
                    RejectReason::WithdrawalIndexCatchingUp
                });
            }
        }
        if !self.params.withdrawals_held {
            self.try_transfer(Pocket::Account(account), Pocket::Outside, amount)?;
            self.record_withdrawn(account, amount);
            events.push(Event::Withdrawn { account, amount });
            return Ok(());
        }
        let requested_ms = self.time.millis();
        self.withdrawals_pending.insert(
            account,
            PendingWithdrawal {
                amount,
                requested_ms,
            },
        );
        events.push(Event::WithdrawalRequested { account, amount });
        Ok(())
    }

    /// Cancels the account's withdrawal still held, for its owner: the hold lifts at once and
    /// nothing is paid (`WithdrawalCancelled` with `WithdrawalCancelledByOwner`). Refused
    /// with `NoWithdrawalPending` when none waits (paid, cancelled at its release, or never
    /// asked for). A cancellation in the block that would have paid it comes first: the
    /// block's transactions are applied before its releases.
    pub(crate) fn cancel_withdrawal(
        &mut self,
        account: AccountId,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let pending = self
            .withdrawals_pending
            .remove(&account)
            .ok_or(RejectReason::NoWithdrawalPending)?;
        events.push(Event::WithdrawalCancelled {
            account,
            amount: pending.amount,
            reason: RejectReason::WithdrawalCancelledByOwner,
        });
        Ok(())
    }

    /// Pays or cancels every pending withdrawal whose prices have been observed since it was
    /// asked for (end of block, after the liquidation pass); the rest wait.
    pub(crate) fn release_withdrawals(&mut self, events: &mut Vec<Event>) {
        // Judged in place; only the settled ones are collected (none, most blocks).
        // `Ok` to pay, `Err(reason)` to cancel.
        let settled: Vec<(AccountId, Money, Result<(), RejectReason>)> = self
            .withdrawals_pending
            .iter()
            .filter_map(|(account, pending)| {
                let verdict = match self.release_verdict(
                    *account,
                    pending.amount,
                    Some(pending.requested_ms),
                ) {
                    Release::Wait => return None,
                    Release::Pay => Ok(()),
                    Release::Cancel(reason) => Err(reason),
                };
                Some((*account, pending.amount, verdict))
            })
            .collect();
        for (account, amount, verdict) in settled {
            self.withdrawals_pending.remove(&account);
            match verdict {
                Ok(()) => {
                    self.transfer(Pocket::Account(account), Pocket::Outside, amount);
                    self.record_withdrawn(account, amount);
                    events.push(Event::Withdrawn { account, amount });
                }
                Err(reason) => events.push(Event::WithdrawalCancelled {
                    account,
                    amount,
                    reason,
                }),
            }
        }
    }

    /// Whether `amount` may leave the account now; with `requested_ms`, `amount` is the
    /// account's own pending withdrawal (not held against itself) and may leave only at
    /// prices observed after that time.
    fn release_verdict(
        &self,
        account: AccountId,
        amount: Money,
        requested_ms: Option<u64>,
    ) -> Release {
        if self.withdrawals_suspended() {
            return Release::Wait;
        }
        let holder = &self.accounts[account];
        if !self.account_oracles_fresh(holder) || !self.account_indexes_settled(holder) {
            return Release::Wait;
        }
        if let Some(requested_ms) = requested_ms
            && !self.account_prices_observed_after(holder, requested_ms)
        {
            return Release::Wait;
        }
        let margin = self.margin_of(holder, None);
        if margin.equity < margin.requirement.maintenance {
            return Release::Cancel(RejectReason::WithdrawalDuringLiquidation);
        }
        // `margin_of` holds a pending withdrawal back; its own release adds it again.
        let own = requested_ms.map_or(Money::ZERO, |_| amount);
        let withdrawable = margin
            .withdrawable
            .checked_add(own)
            .expect("withdrawable funds and one withdrawal (money bounds)");
        if amount > withdrawable {
            return match amount.checked_sub(withdrawable) {
                Ok(shortfall) => {
                    Release::Cancel(RejectReason::WithdrawalExceedsAvailable { shortfall })
                }
                Err(_) => Release::Cancel(RejectReason::BalanceOverflow),
            };
        }
        Release::Pay
    }

    /// Whether every underlying the account holds has a last median of observations all made
    /// after `time_ms`.
    fn account_prices_observed_after(&self, account: &crate::Account, time_ms: u64) -> bool {
        account.exposures.keys().all(|id| {
            let spec = &self.instruments[id.get() as usize].spec;
            self.index_observed_after(spec.underlying(), time_ms)
        })
    }

    /// Adds a paid withdrawal to the account's total (`Account::withdrawn`).
    fn record_withdrawn(&mut self, account: AccountId, amount: Money) {
        let holder = self.accounts.get_mut(account);
        holder.withdrawn = holder
            .withdrawn
            .checked_add(amount)
            .expect("an account's withdrawals are part of the ledger's (money bounds)");
    }

    /// The account's withdrawal waiting for its release, if any.
    pub fn pending_withdrawal(&self, account: AccountId) -> Option<PendingWithdrawal> {
        self.withdrawals_pending.get(&account).copied()
    }

    /// Every pending withdrawal, by account.
    pub fn pending_withdrawals(&self) -> impl Iterator<Item = (AccountId, PendingWithdrawal)> + '_ {
        self.withdrawals_pending.iter().map(|(a, p)| (*a, *p))
    }

    /// What the account's pending withdrawal holds back from its available funds.
    pub(crate) fn withdrawal_held(&self, account: AccountId) -> Money {
        self.withdrawals_pending
            .get(&account)
            .map_or(Money::ZERO, |pending| pending.amount)
    }
}
