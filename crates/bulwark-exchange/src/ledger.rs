//! Where the exchange's money sits, and the one way it moves.
//!
//! Owns: [`Pocket`] (an account's cash, the insurance fund, net fees, the world outside, and a
//! clearing pocket for payments among many holders), the [`Treasury`] (the totals and the
//! clearing pocket, whose fields only this module can write), and [`Exchange::transfer`], the
//! only code that changes an account's cash, the fund, fees, deposits or withdrawals. A transfer takes
//! an amount out of one pocket and puts the same amount into another, so money is conserved
//! by construction (invariant 1 checks it anyway): `sum(cash) + fees + fund = deposits -
//! withdrawals`, with money from outside counted as deposits and money to outside as
//! withdrawals.
//! Never: decides whether a movement is allowed (the rules that call it do), or leaves the
//! clearing pocket non-zero after a multi-party payment ([`Exchange::clear`]).

use crate::exchange::{Exchange, Ledger};
use bulwark_types::{AccountId, Money, RejectReason};

/// The money that is not in an account: the [`Ledger`] totals (deposits, withdrawals, fees,
/// the insurance fund) and the clearing pocket of multi-party payments.
///
/// Owns: those five balances. Never: changes one except through a transfer of this module
/// (which moves the same amount out of another pocket), so outside this module they are
/// read-only; a snapshot restore is the only other way in ([`Treasury::restored`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct Treasury {
    totals: Ledger,
    /// Zero between operations ([`Exchange::clear`]), so not state.
    clearing: Money,
}

impl Treasury {
    /// The deliberate conservation error of `deliberate_bugs.rs`: `amount` into the fund from
    /// no pocket.
    #[cfg(feature = "deliberate-bugs")]
    pub(crate) fn deliberate_bug_mint_into_fund(&mut self, amount: Money) {
        self.totals.insurance_fund = self
            .totals
            .insurance_fund
            .checked_add(amount)
            .expect("a small amount on a bounded fund");
    }

    /// The totals a snapshot recorded; the clearing pocket is empty between blocks.
    pub(crate) fn restored(totals: Ledger) -> Self {
        Self {
            totals,
            clearing: Money::ZERO,
        }
    }

    /// Deposits, withdrawals, fees and the fund.
    pub(crate) fn totals(&self) -> &Ledger {
        &self.totals
    }

    /// The insurance fund.
    pub(crate) fn fund(&self) -> Money {
        self.totals.insurance_fund
    }
}

/// A place money can be.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pocket {
    /// An account's cash; its liquidation-screen floor is dropped (`Accounts::get_mut`).
    Account(AccountId),
    /// An account's cash for a payment the liquidation screen already bounds as drift
    /// (funding, `Accounts::funding_paid`): its floor stays (`Accounts::set_cash_screened`).
    Screened(AccountId),
    /// The insurance fund.
    Fund,
    /// Net fees collected.
    Fees,
    /// Outside the exchange: deposits come from here, withdrawals go here.
    Outside,
    /// Payments among many holders (funding, settlement) pass through here and must net to
    /// zero by the end of the operation.
    Clearing,
}

/// What a pocket's balance is stored in: an account's two pockets are one balance.
#[derive(PartialEq, Eq, Debug)]
enum Storage {
    Cash(AccountId),
    Fund,
    Fees,
    Outside,
    Clearing,
}

impl Pocket {
    fn storage(self) -> Storage {
        match self {
            Pocket::Account(id) | Pocket::Screened(id) => Storage::Cash(id),
            Pocket::Fund => Storage::Fund,
            Pocket::Fees => Storage::Fees,
            Pocket::Outside => Storage::Outside,
            Pocket::Clearing => Storage::Clearing,
        }
    }
}

impl Exchange {
    /// Moves `amount` (negative: the other way) from `from` to `to`, or changes nothing and
    /// answers `BalanceOverflow` if either side would leave its range. For movements a
    /// transaction asks for (deposits, withdrawals, insurance funding).
    pub(crate) fn try_transfer(
        &mut self,
        from: Pocket,
        to: Pocket,
        amount: Money,
    ) -> Result<(), RejectReason> {
        let taken = self
            .pocket(from)
            .checked_sub(amount)
            .map_err(|_| RejectReason::BalanceOverflow)?;
        let given = self
            .pocket(to)
            .checked_add(amount)
            .map_err(|_| RejectReason::BalanceOverflow)?;
        assert_ne!(
            from.storage(),
            to.storage(),
            "a transfer moves money between two pockets"
        );
        // The world outside is two totals, each of which only rises: the one this transfer
        // raises must stay in range too.
        for (pocket, value) in [(from, taken), (to, given)] {
            if pocket == Pocket::Outside {
                self.outside_after(value)?;
            }
        }
        self.set_pocket(from, taken);
        self.set_pocket(to, given);
        Ok(())
    }

    /// [`Self::try_transfer`] for movements the state machine makes itself, whose amounts are
    /// bounded by the money deposited: an overflow is internal corruption.
    pub(crate) fn transfer(&mut self, from: Pocket, to: Pocket, amount: Money) {
        self.try_transfer(from, to, amount)
            .expect("movements are bounded by the money deposited");
    }

    /// Ends a multi-party payment: everything paid into the clearing pocket was paid out.
    pub(crate) fn clear(&self) {
        assert_eq!(
            self.treasury.clearing,
            Money::ZERO,
            "multi-party payments net to exactly zero"
        );
    }

    /// The balance of a pocket. `Outside` reads as what has left less what has come in, so
    /// that taking from it is a deposit and giving to it a withdrawal.
    fn pocket(&self, pocket: Pocket) -> Money {
        match pocket {
            Pocket::Account(id) | Pocket::Screened(id) => self.accounts[id].cash,
            Pocket::Fund => self.treasury.totals.insurance_fund,
            Pocket::Fees => self.treasury.totals.fees,
            Pocket::Outside => self
                .treasury
                .totals
                .withdrawals
                .checked_sub(self.treasury.totals.deposits)
                .expect("deposits and withdrawals are both non-negative"),
            Pocket::Clearing => self.treasury.clearing,
        }
    }

    /// Deposits and withdrawals once the `Outside` pocket reads `value` (`withdrawals -
    /// deposits`): a deposit raises deposits, a withdrawal raises withdrawals; neither falls.
    fn outside_after(&self, value: Money) -> Result<(Money, Money), RejectReason> {
        let totals = &self.treasury.totals;
        let change = value
            .checked_sub(self.pocket(Pocket::Outside))
            .map_err(|_| RejectReason::BalanceOverflow)?;
        if change.is_negative() {
            let deposits = totals
                .deposits
                .checked_sub(change)
                .map_err(|_| RejectReason::BalanceOverflow)?;
            Ok((deposits, totals.withdrawals))
        } else {
            let withdrawals = totals
                .withdrawals
                .checked_add(change)
                .map_err(|_| RejectReason::BalanceOverflow)?;
            Ok((totals.deposits, withdrawals))
        }
    }

    fn set_pocket(&mut self, pocket: Pocket, value: Money) {
        match pocket {
            Pocket::Account(id) => self.accounts.get_mut(id).cash = value,
            Pocket::Screened(id) => self.accounts.set_cash_screened(id, value),
            Pocket::Fund => self.treasury.totals.insurance_fund = value,
            Pocket::Fees => self.treasury.totals.fees = value,
            Pocket::Outside => {
                let (deposits, withdrawals) = self
                    .outside_after(value)
                    .expect("try_transfer checked the outside totals before any pocket changed");
                self.treasury.totals.deposits = deposits;
                self.treasury.totals.withdrawals = withdrawals;
            }
            Pocket::Clearing => self.treasury.clearing = value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{ExchangeParams, Genesis};
    use bulwark_types::{BlockTime, PrivateKey};
    use commonware_cryptography::Signer;

    fn exchange() -> Exchange {
        Exchange::new(&Genesis {
            admin: PrivateKey::from_seed(1).public_key(),
            bridge: PrivateKey::from_seed(2).public_key(),
            params: ExchangeParams::defaults(),
            time: BlockTime::from_millis(1_000),
            oracle: None,
            custody: None,
        })
        .unwrap()
    }

    fn total(e: &Exchange) -> Money {
        let cash = e
            .accounts
            .iter()
            .fold(Money::ZERO, |s, a| s.checked_add(a.cash).unwrap());
        cash.checked_add(e.treasury.totals.fees)
            .and_then(|m| m.checked_add(e.treasury.totals.insurance_fund))
            .and_then(|m| m.checked_sub(e.treasury.totals.deposits))
            .and_then(|m| m.checked_add(e.treasury.totals.withdrawals))
            .unwrap()
    }

    #[test]
    fn transfers_conserve_money_and_a_refused_one_changes_nothing() {
        let mut e = exchange();
        e.try_transfer(Pocket::Outside, Pocket::Fund, Money::from_usdc(500))
            .unwrap();
        assert_eq!(e.treasury.totals.deposits, Money::from_usdc(500));
        e.transfer(Pocket::Fund, Pocket::Fees, Money::from_usdc(-20));
        assert_eq!(e.treasury.totals.insurance_fund, Money::from_usdc(520));
        assert_eq!(e.treasury.totals.fees, Money::from_usdc(-20));
        e.try_transfer(Pocket::Fund, Pocket::Outside, Money::from_usdc(100))
            .unwrap();
        assert_eq!(e.treasury.totals.withdrawals, Money::from_usdc(100));
        assert_eq!(total(&e), Money::ZERO);
        let before = *e.treasury.totals();
        let huge = Money::from_micros(i128::MAX);
        assert_eq!(
            e.try_transfer(Pocket::Fees, Pocket::Fund, huge),
            Err(RejectReason::BalanceOverflow)
        );
        assert_eq!(*e.treasury.totals(), before, "nothing moved");
        e.transfer(Pocket::Clearing, Pocket::Fees, Money::from_usdc(3));
        e.transfer(Pocket::Fund, Pocket::Clearing, Money::from_usdc(3));
        e.clear();
        assert_eq!(total(&e), Money::ZERO);
    }

    #[test]
    fn a_transfer_that_would_take_deposits_past_the_range_is_refused_and_changes_nothing() {
        let mut e = exchange();
        let half = Money::from_micros(1 << 126);
        e.try_transfer(Pocket::Outside, Pocket::Fund, half).unwrap();
        let almost = Money::from_micros((1 << 126) - 5);
        e.try_transfer(Pocket::Outside, Pocket::Fees, almost)
            .unwrap();
        let before = *e.treasury.totals();
        // The outside pocket would read exactly i128::MIN, but deposits would pass i128::MAX.
        assert_eq!(
            e.try_transfer(Pocket::Outside, Pocket::Clearing, Money::from_micros(5)),
            Err(RejectReason::BalanceOverflow)
        );
        assert_eq!(*e.treasury.totals(), before, "nothing moved");
        assert_eq!(e.treasury.clearing, Money::ZERO);
    }

    #[test]
    #[should_panic(expected = "net to exactly zero")]
    fn an_unbalanced_multi_party_payment_is_corruption() {
        let mut e = exchange();
        e.transfer(Pocket::Clearing, Pocket::Fund, Money::from_usdc(1));
        e.clear();
    }
}
