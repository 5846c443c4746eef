//! Money in and out, keys, and listings: deposits, withdrawals, agents, instruments.

use crate::account::KeyRole;
use crate::event::Event;
use crate::exchange::Exchange;
use crate::instrument::Instrument;
use crate::ledger::Pocket;
use bulwark_types::{
    AccountId, InstrumentId, InstrumentKind, InstrumentSpec, Money, PublicKey, RejectReason,
};

impl Exchange {
    /// Credits `amount` to `owner`'s account, opening it on first deposit.
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
        // A revoked agent of this very account may be authorised again; its nonce stays.
        if !self.signers.agent_free(agent, account) {
            return Err(RejectReason::KeyInUse);
        }
        if self.accounts[account].agents >= self.params.agents_max {
            return Err(RejectReason::AgentLimit);
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
