//! What a run measures of the economy, height by height on one honest validator, and at the
//! end: index error against the honest price, the insurance fund, bad debt, the liquidation
//! engine's work and every agent account's profit or loss; and the economic invariants the
//! lab checks at every new height. Funding: each agent account's perpetual funding, from the
//! validator's [`FundingTally`] times the account's position when the lab first sees a
//! payment (exact while a position does not change between the funding block and that read,
//! a few milliseconds later).

use crate::agents::{AgentKind, Roster};
use crate::economy::prices::Truth;
use bulwark_exchange::Exchange;
use bulwark_node::shared::{FundingTally, LiquidationTally, Shared, TxStatus, lock};
use bulwark_types::Money;
use serde::Serialize;

/// Per-height measurements, kept while the run lasts.
pub struct EconomyTally {
    truth: Truth,
    /// Newest height measured.
    pub height: u64,
    pub heights: u64,
    pub index_error_bps_max: u64,
    index_error_bps_sum: u128,
    pub fund_max: Money,
    pub fund_min: Option<Money>,
    pub drawdown: Money,
    /// The highest at-the-money vol of any option smile the exchange fitted, bps (`None`
    /// before the first fit, and in runs without options).
    pub smile_vol_atm_max_bps: Option<u64>,
    /// Transactions per finalized block after the agents were funded: (blocks, transactions,
    /// most in one block), read from the validator's history.
    pub blocks_after_funding: u64,
    pub txs_after_funding: u64,
    pub txs_per_block_max: u64,
    history_seen: u64,
    /// Funding received by each roster account (negative: paid), micro-USDC.
    funding_micros: Vec<i128>,
    /// The validator whose [`FundingTally`] was read last, and that tally.
    funding_seen: Option<(usize, FundingTally)>,
}

/// Micro-USDC as whole USDC, rounded towards zero.
fn usdc(micros: i128) -> i64 {
    i64::try_from(micros / 1_000_000).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

impl EconomyTally {
    pub fn new(truth: Truth) -> Self {
        Self {
            truth,
            height: 0,
            heights: 0,
            index_error_bps_max: 0,
            index_error_bps_sum: 0,
            fund_max: Money::ZERO,
            fund_min: None,
            drawdown: Money::ZERO,
            smile_vol_atm_max_bps: None,
            blocks_after_funding: 0,
            txs_after_funding: 0,
            txs_per_block_max: 0,
            history_seen: 0,
            funding_micros: Vec::new(),
            funding_seen: None,
        }
    }

    /// Attributes the funding validator `validator` paid since the last read to every roster
    /// account, at its position now. A change of validator (the one read crashed) starts
    /// afresh from the new one's tally, attributing nothing for the change.
    pub fn observe_funding(&mut self, validator: usize, shared: &Shared, roster: &Roster) {
        let tally = lock(&shared.status).funding;
        let paid = match self.funding_seen {
            Some((seen, before)) if seen == validator => {
                tally.per_contract_micros - before.per_contract_micros
            }
            _ => 0,
        };
        self.funding_seen = Some((validator, tally));
        if paid == 0 {
            return;
        }
        self.funding_micros.resize(roster.accounts.len(), 0);
        let chain = lock(&shared.chain);
        let state = chain.finalized();
        let name =
            bulwark_types::InstrumentName::parse(crate::agents::PERPETUAL).expect("a valid name");
        let Some(perpetual) = state.instrument_by_name(&name).map(|i| i.id) else {
            return;
        };
        for (i, (_, key)) in roster.accounts.iter().enumerate() {
            let position = state
                .key_binding(key)
                .and_then(|(id, _)| state.account(id))
                .map_or(0, |a| a.position(perpetual));
            // A long pays `per_contract` (received when negative).
            self.funding_micros[i] -= i128::from(position) * paid;
        }
    }

    /// Measures `state` (validator's newest finalized state) if it is past the newest height
    /// measured, and counts the transactions of the blocks finalized after `funded_height`.
    pub fn observe(&mut self, shared: &Shared, funded: bool) {
        if funded {
            let history = lock(&shared.history);
            for record in history.iter().filter(|r| r.height > self.history_seen) {
                self.blocks_after_funding += 1;
                self.txs_after_funding += u64::from(record.txs);
                self.txs_per_block_max = self.txs_per_block_max.max(u64::from(record.txs));
            }
            if let Some(last) = history.back() {
                self.history_seen = self.history_seen.max(last.height);
            }
        } else if let Some(last) = lock(&shared.history).back() {
            self.history_seen = last.height;
        }
        let chain = lock(&shared.chain);
        let state = chain.finalized();
        let height = chain.finalized_height();
        if height <= self.height {
            return;
        }
        self.height = height;
        if let (Some(index), Some(truth)) = (
            state.index_price(crate::cluster::btc()),
            self.truth.price(state.time().millis()),
        ) {
            let error = (i128::from(index.micros()) - i128::from(truth.micros())).unsigned_abs()
                * 10_000
                / i128::from(truth.micros()).unsigned_abs().max(1);
            let error = u64::try_from(error).unwrap_or(u64::MAX);
            self.heights += 1;
            self.index_error_bps_max = self.index_error_bps_max.max(error);
            self.index_error_bps_sum += u128::from(error);
        }
        let fund = state.ledger().insurance_fund;
        self.fund_max = self.fund_max.max(fund);
        self.fund_min = Some(self.fund_min.map_or(fund, |m| m.min(fund)));
        let drop = self
            .fund_max
            .checked_sub(fund)
            .expect("two funds (money bounds)");
        self.drawdown = self.drawdown.max(drop);
        for (_, fitted) in state.smiles() {
            let smile = fitted.smile;
            if let Ok(vol) = smile.params().vol(0.0, smile.time_years()) {
                let bps = (vol * 10_000.0).round() as u64;
                self.smile_vol_atm_max_bps =
                    Some(self.smile_vol_atm_max_bps.map_or(bps, |m| m.max(bps)));
            }
        }
    }

    pub fn index_error_bps_mean(&self) -> Option<f64> {
        (self.heights > 0).then(|| {
            (self.index_error_bps_sum as f64 / self.heights as f64 * 100.0).round() / 100.0
        })
    }
}

/// The economic invariants of one finalized state: no account whose deficit no event covered
/// (negative cash with nothing left to close: the liquidation engine's close-out makes every
/// negative balance whole, from the fund, by deleveraging or as the fund's own loss), and no
/// order accepted that the rules reject (open orders within the account's bound, positions
/// within the position bound).
pub fn check(state: &Exchange) -> Result<(), String> {
    let params = state.params();
    let backstop = state.backstop();
    for account in state.accounts() {
        if Some(account.id) != backstop
            && account.exposures.is_empty()
            && account.cash.is_negative()
        {
            return Err(format!(
                "account {} holds a deficit of {} with nothing left to close, which no event covered",
                account.id.get(),
                account.cash
            ));
        }
        if account.orders_open() > params.orders_open_max as usize {
            return Err(format!(
                "account {} has {} open orders, more than the {} the rules allow",
                account.id.get(),
                account.orders_open(),
                params.orders_open_max
            ));
        }
        if Some(account.id) != backstop {
            for (instrument, exposure) in &account.exposures {
                if exposure.position.abs() > params.position_max.contracts() {
                    return Err(format!(
                        "account {} holds {} contracts of instrument {}, more than the {} the rules allow",
                        account.id.get(),
                        exposure.position,
                        instrument.get(),
                        params.position_max.contracts()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// One agent account's result at the end of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountResult {
    pub kind: AgentKind,
    pub agent: usize,
    pub deposited_usdc: i64,
    pub withdrawn_usdc: i64,
    /// Equity at the end (cash and positions at the exchange's marks).
    pub equity_usdc: i64,
    /// Equity and withdrawals less deposits.
    pub profit_usdc: i64,
    /// Perpetual funding received (negative: paid), micro-USDC; part of the profit.
    pub funding_micros: i64,
}

/// What the run's end state says of the economy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EconomyEnd {
    pub insurance_fund_usdc: i64,
    /// Deficits nobody covered: the fund's shortfall below zero, and the negative equity of
    /// accounts still open.
    pub bad_debt_usdc: i64,
    pub accounts: Vec<AccountResult>,
    pub liquidations: LiquidationTallyOut,
    /// Agent withdrawals the exchange refused because an underlying the account holds had no
    /// fresh oracle quorum (`WithdrawalOracleStale`), and the USDC they asked for.
    pub withdrawals_refused_stale: u64,
    pub withdrawals_refused_stale_usdc: i64,
}

/// [`LiquidationTally`] in whole USDC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiquidationTallyOut {
    pub margin_calls: u64,
    pub steps: u64,
    pub backstop_takeovers: u64,
    pub auto_deleveraged: u64,
    /// Contracts liquidations moved: through the book, to the backstop, by deleveraging.
    pub stepped_contracts: u64,
    pub backstop_contracts: u64,
    pub deleveraged_contracts: u64,
    pub deficits_covered: u64,
    pub deficits_from_fund_usdc: i64,
    pub deficits_from_deleveraging_usdc: i64,
    pub deficits_uncovered_usdc: i64,
}

impl From<LiquidationTally> for LiquidationTallyOut {
    fn from(t: LiquidationTally) -> Self {
        Self {
            margin_calls: t.margin_calls,
            steps: t.steps,
            backstop_takeovers: t.backstop_takeovers,
            auto_deleveraged: t.deleveraged,
            stepped_contracts: t.stepped_contracts,
            backstop_contracts: t.backstop_contracts,
            deleveraged_contracts: t.deleveraged_contracts,
            deficits_covered: t.deficits_covered,
            deficits_from_fund_usdc: usdc(t.from_fund_micros),
            deficits_from_deleveraging_usdc: usdc(t.from_deleveraging_micros),
            deficits_uncovered_usdc: usdc(t.uncovered_micros),
        }
    }
}

/// The end of a run, read from `shared` (an honest validator that ran throughout).
pub fn end(shared: &Shared, roster: &Roster) -> EconomyEnd {
    let (mut refused_stale, mut refused_stale_micros) = (0u64, 0i128);
    {
        let receipts = lock(&shared.receipts);
        for (w, (_, digest)) in roster.withdrawals.iter().enumerate() {
            if let Some(TxStatus::Finalized {
                rejection: Some(bulwark_types::RejectReason::WithdrawalOracleStale),
                ..
            }) = receipts.get(digest)
            {
                refused_stale += 1;
                refused_stale_micros += roster
                    .withdrawal_amounts
                    .get(w)
                    .map_or(0, |amount| amount.micros());
            }
        }
    }
    let liquidations = lock(&shared.status).liquidations;
    let chain = lock(&shared.chain);
    let state = chain.finalized();
    let fund = state.ledger().insurance_fund.micros();
    let mut bad_debt = (-fund).max(0);
    for account in state.accounts() {
        if Some(account.id) == state.backstop() {
            continue;
        }
        if let Some(margin) = state.account_margin(account.id) {
            bad_debt += (-margin.equity.micros()).max(0);
        }
    }
    let accounts = roster
        .accounts
        .iter()
        .map(|(account, key)| {
            let bound = state.key_binding(key).map(|(id, _)| id);
            let equity = bound
                .and_then(|id| state.account_margin(id))
                .map_or(0, |m| m.equity.micros());
            // Paid out, whenever it was asked for (a withdrawal is held until its release).
            let withdrawn = bound
                .and_then(|id| state.account(id))
                .map_or(0, |a| a.withdrawn.micros());
            let deposited = i128::from(account.deposited_usdc) * 1_000_000;
            AccountResult {
                kind: account.kind,
                agent: account.agent,
                deposited_usdc: account.deposited_usdc,
                withdrawn_usdc: usdc(withdrawn),
                equity_usdc: usdc(equity),
                profit_usdc: usdc(equity + withdrawn - deposited),
                funding_micros: 0,
            }
        })
        .collect();
    EconomyEnd {
        insurance_fund_usdc: usdc(fund),
        bad_debt_usdc: usdc(bad_debt),
        accounts,
        liquidations: liquidations.into(),
        withdrawals_refused_stale: refused_stale,
        withdrawals_refused_stale_usdc: usdc(refused_stale_micros),
    }
}

/// What a run measured of its economy, in integers (so [`crate::lab::Measured`] stays `Eq`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EconomyMeasured {
    pub heights: u64,
    pub index_error_bps_max: u64,
    /// Hundredths of a basis point.
    pub index_error_bps_mean_x100: Option<u64>,
    pub fund_max_usdc: i64,
    pub fund_min_usdc: i64,
    pub fund_drawdown_usdc: i64,
    pub orders_submitted: u64,
    pub agent_txs_submitted: u64,
    pub agent_txs_admitted: u64,
    pub blocks_after_funding: u64,
    pub txs_after_funding: u64,
    pub txs_per_block_max: u64,
    /// [`EconomyTally::smile_vol_atm_max_bps`].
    pub smile_vol_atm_max_bps: Option<u64>,
    pub end: EconomyEnd,
}

impl EconomyTally {
    /// The run's economic measurements, with the end read from `shared`.
    pub fn measured(&self, shared: Option<&Shared>, roster: &Roster) -> EconomyMeasured {
        EconomyMeasured {
            heights: self.heights,
            index_error_bps_max: self.index_error_bps_max,
            index_error_bps_mean_x100: self
                .index_error_bps_mean()
                .map(|m| (m * 100.0).round() as u64),
            fund_max_usdc: usdc(self.fund_max.micros()),
            fund_min_usdc: usdc(self.fund_min.unwrap_or(Money::ZERO).micros()),
            fund_drawdown_usdc: usdc(self.drawdown.micros()),
            orders_submitted: roster.orders_submitted,
            agent_txs_submitted: roster.submitted,
            agent_txs_admitted: roster.admitted,
            blocks_after_funding: self.blocks_after_funding,
            txs_after_funding: self.txs_after_funding,
            txs_per_block_max: self.txs_per_block_max,
            smile_vol_atm_max_bps: self.smile_vol_atm_max_bps,
            end: shared
                .map(|s| {
                    let mut end = end(s, roster);
                    for (account, funding) in end.accounts.iter_mut().zip(&self.funding_micros) {
                        account.funding_micros = i64::try_from(*funding).unwrap_or(i64::MAX);
                    }
                    end
                })
                .unwrap_or_default(),
        }
    }
}
