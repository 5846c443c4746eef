//! Money in, keys, and listings: deposits, agents (and the absorption of an account only
//! deposits reached), instruments, and whether withdrawals are suspended (the withdrawals
//! themselves: `withdrawals.rs`).

use crate::account::KeyRole;
use crate::event::Event;
use crate::exchange::Exchange;
use crate::instrument::Instrument;
use crate::ledger::Pocket;
use bulwark_types::{
    AccountId, InstrumentId, InstrumentKind, InstrumentSpec, Money, PublicKey, RejectReason,
};

impl Exchange {
    /// Credits the insurance fund (bridge only): money enters the exchange as a deposit.
    pub(crate) fn fund_insurance(
        &mut self,
        amount: Money,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.try_transfer(Pocket::Outside, Pocket::Fund, amount)?;
        events.push(Event::InsuranceFunded {
            amount,
            fund: self.treasury.fund(),
        });
        Ok(())
    }

    /// Credits `amount` to `owner`'s account, opening it on first deposit. Anyone may deposit
    /// to any key, with no proof of possession: an account so opened is absorbed if its key's
    /// holder authorises it as another account's agent before it ever signs
    /// ([`Self::authorise_agent`]). A key bound as an agent (or revoked one) owns no account:
    /// `KeyInUse`.
    pub(crate) fn deposit(
        &mut self,
        owner: &PublicKey,
        amount: Money,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        // Checked before an account opens, so a refused deposit leaves nothing behind.
        self.treasury
            .totals()
            .deposits
            .checked_add(amount)
            .map_err(|_| RejectReason::BalanceOverflow)?;
        let existing = self.signers.binding(owner);
        let account = match existing {
            Some((account, KeyRole::Owner)) => account,
            Some(_) => return Err(RejectReason::KeyInUse),
            None => {
                if self.accounts.len() as u64 >= self.params.accounts_max {
                    return Err(RejectReason::AccountLimit);
                }
                let id = self.accounts.open(owner.clone());
                self.signers.bind_owner(owner, id);
                events.push(Event::AccountOpened {
                    account: id,
                    owner: owner.clone(),
                });
                id
            }
        };
        // Deposits bound every cash balance: no single balance can exceed their total.
        self.try_transfer(Pocket::Outside, Pocket::Account(account), amount)?;
        events.push(Event::Deposited { account, amount });
        Ok(())
    }

    /// Whether withdrawals are suspended for everyone: the insurance fund is negative, or the
    /// deficits the last liquidation pass had to leave queued exceed it. Money leaving then
    /// would be paid by whoever stays.
    pub fn withdrawals_suspended(&self) -> bool {
        self.treasury.fund().is_negative() || self.deficits_queued > self.treasury.fund()
    }

    /// Binds `agent` to the account as a trading key, if `proof` shows the agent's holder
    /// consents: its signature over the owner's key and this transaction's `nonce`. Without
    /// it anyone could bind a key seen in a pending deposit and lock its owner out.
    ///
    /// A key that owns an account nobody ever acted for (the key never signed, and the
    /// account holds nothing but the cash deposits brought it) is no obstacle: that account is
    /// absorbed. Anyone may deposit to any key, so otherwise a squatter who sees the agent key
    /// in the pending registration deposits to it first and the registration fails with
    /// `KeyInUse`. The absorbed account's cash moves to `account` through the ledger
    /// (`AccountAbsorbed`), the key is unbound from it and bound as the agent, and the account
    /// stays closed: no money, no key, and nothing can reach it again (a later deposit naming
    /// the key is refused `KeyInUse`: it is an agent key). Only the key's holder can sign the
    /// proof, and the holder already controls the absorbed account, so absorption hands
    /// nobody money they could not already move; it does mean that a proof of possession is
    /// also the holder's consent to hand the key's unused account to the owner it names. A
    /// key that signed anything (so an account with an agent, an order, a position, a margin
    /// mode or protection set, a withdrawal) is still `KeyInUse`.
    pub(crate) fn authorise_agent(
        &mut self,
        account: AccountId,
        agent: &PublicKey,
        proof: &bulwark_types::Signature,
        nonce: bulwark_types::Nonce,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        let owner = &self.accounts[account].owner;
        if !bulwark_types::tx::agent_proof_valid(agent, owner, nonce, proof) {
            return Err(RejectReason::AgentProofInvalid);
        }
        let absorbed = self.signers.unused_owner(agent).filter(|&unused| {
            unused != account
                && Some(unused) != self.backstop
                && self.accounts.holds_only_cash(unused)
                && !self.withdrawals_pending.contains_key(&unused)
        });
        // A revoked agent of this very account may be authorised again; its nonce stays.
        if absorbed.is_none() && !self.signers.agent_free(agent, account) {
            return Err(RejectReason::KeyInUse);
        }
        if self.accounts[account].agents >= self.params.agents_max {
            return Err(RejectReason::AgentLimit);
        }
        if let Some(closed) = absorbed {
            // The last step that can refuse: nothing has changed before it.
            let amount = self.accounts[closed].cash;
            self.try_transfer(Pocket::Account(closed), Pocket::Account(account), amount)?;
            assert_eq!(
                self.signers.release_unused_owner(agent),
                closed,
                "the key owned the absorbed account"
            );
            assert_eq!(
                self.accounts[closed].cash,
                Money::ZERO,
                "an absorbed account is left empty"
            );
            events.push(Event::AccountAbsorbed {
                account: closed,
                into: account,
                amount,
            });
        }
        self.signers.bind_agent(agent, account);
        self.accounts.get_mut(account).agents += 1;
        events.push(Event::AgentAuthorised {
            account,
            agent: agent.clone(),
        });
        Ok(())
    }

    pub(crate) fn revoke_agent(
        &mut self,
        account: AccountId,
        agent: &PublicKey,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        self.signers.revoke_agent(agent, account)?;
        self.accounts.get_mut(account).agents -= 1;
        events.push(Event::AgentRevoked {
            account,
            agent: agent.clone(),
        });
        Ok(())
    }

    pub(crate) fn list_instrument(
        &mut self,
        spec: &InstrumentSpec,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        spec.check().map_err(RejectReason::InstrumentSpecInvalid)?;
        if self.instruments.id_by_name(&spec.name).is_some() {
            return Err(RejectReason::InstrumentExists);
        }
        if self.instruments.len() >= self.params.instruments_max as usize {
            return Err(RejectReason::InstrumentLimit);
        }
        let kind = spec.kind();
        if let InstrumentKind::Option { expiry_ms, .. } = kind {
            if expiry_ms <= self.time.millis() {
                return Err(RejectReason::InstrumentNotTrading);
            }
        }
        // The oracle must be able to track a new underlying before anything changes.
        self.oracle_track(spec.underlying())?;
        let id = InstrumentId::new(
            u32::try_from(self.instruments.len()).expect("instruments_max <= 10^6 fits u32"),
        );
        let interval = self.params.funding_interval_ms;
        let funding_next_ms = (self.time.millis() / interval + 1) * interval;
        self.instruments.list(Instrument::new(
            id,
            *spec,
            self.params.book,
            funding_next_ms,
        ));
        events.push(Event::InstrumentListed {
            instrument: id,
            spec: *spec,
        });
        Ok(())
    }
}
