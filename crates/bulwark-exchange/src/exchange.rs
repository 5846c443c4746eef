//! The exchange state machine: applies blocks to replicated state.
//!
//! Owns: the parts of replicated state (accounts with their liquidation screen in `accounts.rs`,
//! ledger totals in `ledger.rs`, instruments in `instruments.rs`, index prices in
//! `index_prices.rs`, signing keys in `keys.rs`, and the fields of [`Exchange`] that belong to
//! no part); the block's order of work (prices, expiry, settlement, funding, then transactions
//! in block order); authentication of each transaction (signature verdict, signer, nonce,
//! role); and the running state digest.
//! Never: reads a clock (time is the block's), draws randomness, performs I/O, or panics on
//! anything a transaction or block input carries: bad input becomes a [`RejectReason`] or an
//! ignored-price event. A panic here means internal corruption.

use crate::account::{Account, KeyRole, MarginMode};
use crate::event::{BlockOutcome, Event, TxOutcome};
use crate::instrument::Instrument;
use crate::margin::{
    ExposureView, MarginModel, MarginRequirement, StandardMargin, ValuationPrices, equity,
};
use crate::params::{ConfigError, ExchangeParams, Genesis};
use crate::portfolio::PortfolioMarginModel;
use bulwark_book::MatchSink;
use bulwark_types::{
    AccountId, AssetCode, BlockTime, CheckedBlock, Height, InstrumentId, InstrumentName, Money,
    OrderId, PublicKey, RejectReason, SignedTx, TxBody, UnitPrice,
};
use commonware_codec::{Encode, EncodeSize, Write};
use commonware_cryptography::{Hasher, Sha256};
use std::collections::BTreeMap;

/// Digest of the exchange's history: each block's digest commits to the previous one and to
/// everything the block did. Two validators with equal digests applied the same blocks with
/// the same outcomes; since state is a function of those outcomes, they hold the same state.
pub type StateDigest = commonware_cryptography::sha256::Digest;

/// Domain separation of the digest chain.
const DIGEST_NAMESPACE: &[u8] = b"_BULWARK_STATE_V1";

/// Why a block could not be applied at all. State is unchanged. Consensus must never finalize
/// such a block; a validator that meets one halts rather than guess.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block height {got} does not follow {expected}")]
    HeightNotNext { expected: Height, got: Height },
    #[error("block time {got} is before the previous block's {previous}")]
    TimeWentBackwards { previous: BlockTime, got: BlockTime },
}

/// Money that has entered and left the exchange, and where the rest sits. Conservation:
/// `sum(cash) + fees + insurance_fund == deposits - withdrawals`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub deposits: Money,
    pub withdrawals: Money,
    /// Net fees collected (after maker rebates).
    pub fees: Money,
    pub insurance_fund: Money,
}

/// An account's margin position and funds, in Deribit's words.
///
/// Money that leaves the exchange, and option premium, must be money the account really has:
/// `withdrawable` leaves out everything unrealised (long options' value, perpetuals' gains)
/// and the premium its resting option bids would pay, so it never exceeds the account's
/// realised balance (cash less the open perpetual flows), whatever marks say.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AccountMargin {
    /// Deribit's `balance`: cash less the open perpetual positions' premium flows (their
    /// cost): deposits less withdrawals, plus realised profit, option premium received less
    /// paid, funding and settlement, less fees. Money the account has realised.
    pub balance: Money,
    /// Cash plus every position at its valuation price.
    pub equity: Money,
    pub requirement: MarginRequirement,
    /// `available_funds`: equity above the initial requirement, what new risk may use.
    pub available: Money,
    /// Equity that is not realised money: the value of long option positions and the
    /// unrealised gains of perpetual positions (each position's own; losses are not netted
    /// against them).
    pub unrealised: Money,
    /// Premium (and the most it could pay in fees) of resting option bids that would open or
    /// increase long positions: paid from realised funds, so held back from them.
    pub premium_reserved: Money,
    /// `available_withdrawal_funds`: `available - unrealised - premium_reserved`. What may be
    /// withdrawn, and what pays for new option premium. Negative when nothing may.
    pub withdrawable: Money,
}

/// The replicated exchange. Fields with a rule are parts whose own fields are private to their
/// module (`Accounts`, `Treasury`, `Instruments`, `IndexPrices`, `Keys`); the rest are read
/// and written by the modules of this crate that act on the exchange.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub(crate) admin: PublicKey,
    pub(crate) bridge: PublicKey,
    pub(crate) params: ExchangeParams,
    pub(crate) margin: StandardMargin,
    pub(crate) height: Height,
    pub(crate) time: BlockTime,
    pub(crate) digest: StateDigest,
    pub(crate) order_id_next: OrderId,
    /// Every signing key's nonce and binding.
    pub(crate) signers: crate::keys::Keys,
    /// Every account with its liquidation screen; mutable access drops the account's floor.
    pub(crate) accounts: crate::accounts::Accounts,
    /// Every instrument, with its name index, underlyings and expiry queue.
    pub(crate) instruments: crate::instruments::Instruments,
    /// Index prices with the history and realised variance every price feeds.
    pub(crate) index: crate::index_prices::IndexPrices,
    /// The validators' price oracle, if the genesis set one up.
    pub(crate) oracle: Option<crate::oracle::Oracle>,
    /// The totals and the clearing pocket; written only by `ledger.rs`'s transfers.
    pub(crate) treasury: crate::ledger::Treasury,
    /// Scratch space for matching; not state.
    pub(crate) sink: MatchSink,
    /// Market maker protection trips waiting for the current order to finish; not state.
    pub(crate) mmp_trips: Vec<crate::mmp::MmpTrip>,
    /// Portfolio margin per underlying: realised vol (state) and contract vectors (derived).
    pub(crate) portfolio: BTreeMap<AssetCode, crate::portfolio::UnderlyingRisk>,
    /// The account that takes over positions the book cannot absorb, once opened.
    pub(crate) backstop: Option<AccountId>,
    /// Deleveraging order per instrument and side, ranked once per block; not state.
    pub(crate) adl_rankings: BTreeMap<(InstrumentId, i64), Vec<AccountId>>,
    /// Liquidation orders sent to each instrument this block; not state.
    pub(crate) liquidation_orders: BTreeMap<InstrumentId, u32>,
    /// Deficits the last liquidation pass left queued (stale oracle, or past the block's
    /// budget): while the insurance fund does not cover them, withdrawals are suspended.
    pub(crate) deficits_queued: Money,
    /// Withdrawals asked for and held until their release (`withdrawals.rs`), at most one
    /// per account.
    pub(crate) withdrawals_pending: BTreeMap<AccountId, crate::withdrawals::PendingWithdrawal>,
    /// Oracle outages whose deficits are deleveraged before the fund pays (`liquidation.rs`).
    pub(crate) outages: crate::liquidation::Outages,
    /// The fitted volatility smile of each option series marked by the exchange (state).
    pub(crate) smiles: BTreeMap<crate::surface::SeriesKey, crate::surface::FittedSmile>,
    /// Each option series' trades since its last refit, which may confirm a larger move of
    /// its smile (`surface.rs`); at most `PRINTS_MAX` a series.
    pub(crate) option_prints: BTreeMap<crate::surface::SeriesKey, Vec<crate::surface::OptionPrint>>,
    /// The custodians and their waiting attestations (`custody.rs`), when the genesis names
    /// custodians.
    /// Behind an `Arc`, copied only when a block attests (up to [`crate::custody::DONE_IDS_KEPT`]
    /// spent ids: the state copied for every speculated block must not copy them).
    pub(crate) custody: Option<std::sync::Arc<crate::custody::CustodyState>>,
    /// Deliberate bugs the lab planted in this copy of the state (`deliberate_bugs.rs`);
    /// not state.
    #[cfg(feature = "deliberate-bugs")]
    pub(crate) deliberate_bugs: crate::deliberate_bugs::Planted,
}

impl Exchange {
    /// The state before the first block.
    pub fn new(genesis: &Genesis) -> Result<Self, ConfigError> {
        genesis.check()?;
        let custodians = genesis.custody.iter().flat_map(|c| &c.custodians);
        let operators = [&genesis.admin, &genesis.bridge]
            .into_iter()
            .chain(custodians);
        let digest = Sha256::hash(&[DIGEST_NAMESPACE, &genesis_bytes(genesis)]);
        Ok(Self {
            admin: genesis.admin.clone(),
            bridge: genesis.bridge.clone(),
            params: genesis.params,
            margin: StandardMargin::new(&genesis.params),
            height: Height::new(0),
            time: genesis.time,
            digest,
            order_id_next: OrderId::new(0),
            signers: crate::keys::Keys::genesis(operators),
            accounts: crate::accounts::Accounts::default(),
            instruments: crate::instruments::Instruments::default(),
            index: crate::index_prices::IndexPrices::default(),
            oracle: match &genesis.oracle {
                Some(oracle) => {
                    Some(crate::oracle::Oracle::new(oracle).map_err(ConfigError::Oracle)?)
                }
                None => None,
            },
            treasury: crate::ledger::Treasury::default(),
            sink: MatchSink::default(),
            mmp_trips: Vec::new(),
            portfolio: BTreeMap::new(),
            backstop: None,
            adl_rankings: BTreeMap::new(),
            smiles: BTreeMap::new(),
            option_prints: BTreeMap::new(),
            custody: genesis
                .custody
                .clone()
                .map(|custody| std::sync::Arc::new(crate::custody::CustodyState::new(custody))),
            deficits_queued: Money::ZERO,
            withdrawals_pending: BTreeMap::new(),
            outages: crate::liquidation::Outages::default(),
            liquidation_orders: BTreeMap::new(),
            #[cfg(feature = "deliberate-bugs")]
            deliberate_bugs: crate::deliberate_bugs::Planted::default(),
        })
    }

    /// Applies one block whose signatures have been checked. On `Err` nothing changed.
    pub fn apply_block(&mut self, checked: &CheckedBlock) -> Result<BlockOutcome, BlockError> {
        let block = checked.block();
        if block.height != self.height.next() {
            return Err(BlockError::HeightNotNext {
                expected: self.height.next(),
                got: block.height,
            });
        }
        if block.time < self.time {
            return Err(BlockError::TimeWentBackwards {
                previous: self.time,
                got: block.time,
            });
        }
        let previous_ms = self.time.millis();
        self.time = block.time;
        let mut events = Vec::new();
        // One price per listed underlying.
        let index_before = self.index.latest().clone();
        self.apply_prices(&block.prices, &mut events);
        self.apply_oracle(checked, &mut events);
        self.cancel_stale_quotes(&index_before, &mut events);
        self.mark_perpetuals();
        #[cfg(feature = "deliberate-bugs")]
        self.deliberate_bug_believe_marks(&block.prices);
        self.mark_options(previous_ms, &mut events);
        self.reopen_due(&mut events);
        self.expire_due(&mut events);
        self.settle(&block.prices, &mut events);
        self.pay_funding(&mut events);
        self.update_portfolio_risk();
        self.sample_depth();
        let block_events_end = events_len(&events);
        // The liquidation pass runs on the block's prices right before the block's first
        // transaction that may take liquidity (`Exchange::may_take`), or after the last: the
        // book it meets is the previous block's, less what its owners cancelled and plus what
        // was only added to it. Nothing in the block removes liquidity ahead of the pass. Run
        // after every transaction, it met a book the proposer had just arranged: its own
        // account could take the levels ahead of a liquidation order and buy them back at the
        // order's limit (the lab's `front-run-liquidations`).
        let before_orders = self.params.liquidation.is_none_or(|l| l.before_orders);
        let mut liquidation: Option<(usize, u32)> = None;
        let mut txs = Vec::with_capacity(block.txs.len());
        for (i, tx) in block.txs.iter().enumerate() {
            if liquidation.is_none() && before_orders && self.may_take(&tx.tx.body) {
                liquidation = Some((i, self.liquidate_checked(&mut events, block.height)));
            }
            let rejection = self
                .apply_tx(tx, checked.signature_valid(i), &mut events)
                .err();
            txs.push(TxOutcome {
                rejection,
                events_end: events_len(&events),
            });
        }
        let (liquidation_at, liquidation_end) = match liquidation {
            Some(ran) => ran,
            None => (
                block.txs.len(),
                self.liquidate_checked(&mut events, block.height),
            ),
        };
        self.release_withdrawals(&mut events);
        let outcome = BlockOutcome {
            height: block.height,
            events,
            liquidation_at: liquidation_at as u32,
            liquidation_end,
            block_events_end,
            txs,
        };
        self.height = block.height;
        self.digest = chain_digest(&self.digest, self.time, &outcome);
        if cfg!(any(debug_assertions, feature = "verify")) {
            self.assert_invariants();
        }
        Ok(outcome)
    }

    /// The liquidation pass, and (in tests and debug builds, and with the `verify` feature)
    /// invariant 7 right after it. Returns where its events end.
    fn liquidate_checked(&mut self, events: &mut Vec<Event>, height: Height) -> u32 {
        let start = events_len(events);
        self.liquidate(events);
        if cfg!(any(debug_assertions, feature = "verify"))
            && let Err(e) = self.check_deficits(&events[start as usize..])
        {
            panic!("{e} (height {height})");
        }
        events_len(events)
    }

    /// Authenticates one transaction, spends its nonce, and applies it. A transaction whose
    /// time nonce lies outside the block's window ([`bulwark_types::Nonce::time_check`]) spends
    /// nothing, like a bad signature: it can never execute, and its signer's later nonces stay
    /// free.
    fn apply_tx(
        &mut self,
        signed: &SignedTx,
        signature_valid: bool,
        events: &mut Vec<Event>,
    ) -> Result<(), RejectReason> {
        if !signature_valid {
            return Err(RejectReason::SignatureInvalid);
        }
        let tx = &signed.tx;
        tx.nonce.time_check(self.time)?;
        let binding = self.signers.spend_nonce(&tx.signer, tx.nonce.get())?;
        let account = self.authorise(&tx.signer, binding, &tx.body)?;
        tx.body.check()?;
        match &tx.body {
            TxBody::Deposit { owner, amount } => self.deposit(owner, *amount, events),
            TxBody::ListInstrument(spec) => self.list_instrument(spec, events),
            TxBody::Withdraw { amount } => self.withdraw(account, *amount, events),
            TxBody::CancelWithdrawal => self.cancel_withdrawal(account, events),
            TxBody::AuthoriseAgent { agent, proof } => {
                self.authorise_agent(account, agent, proof, tx.nonce, events)
            }
            TxBody::RevokeAgent { agent } => self.revoke_agent(account, agent, events),
            TxBody::PlaceOrder(order) => self.place_order(account, order, events),
            TxBody::CancelOrder { instrument, order } => {
                self.cancel_order(account, *instrument, *order, events)
            }
            TxBody::CancelAll { instrument } => self.cancel_all(account, *instrument, events),
            TxBody::AmendOrder {
                instrument,
                order,
                price,
                qty,
            } => self.amend_order(account, *instrument, *order, *price, *qty, events),
            TxBody::SetMmp { asset, config } => self.set_mmp(account, *asset, *config),
            TxBody::ResetMmp { asset } => self.reset_mmp(account, *asset),
            TxBody::SetMarginMode { portfolio } => {
                self.set_margin_mode(account, *portfolio, events)
            }
            TxBody::FundInsurance { amount } => self.fund_insurance(*amount, events),
            TxBody::Attest { id, action } => self.attest(&tx.signer, *id, action, events),
        }
    }

    /// Checks the signer's role for the body. Returns the acting account (a placeholder id for
    /// bridge and admin transactions, which act on no account of their own).
    fn authorise(
        &self,
        signer: &PublicKey,
        binding: Option<(AccountId, KeyRole)>,
        body: &TxBody,
    ) -> Result<AccountId, RejectReason> {
        let custodian = self
            .custody
            .as_ref()
            .map(|state| state.custodian(signer).is_some());
        match (body, custodian) {
            (
                TxBody::Deposit { .. } | TxBody::FundInsurance { .. } | TxBody::ListInstrument(_),
                Some(_),
            ) => {
                return Err(RejectReason::QuorumRequired);
            }
            (TxBody::Attest { .. }, Some(true)) => return Ok(AccountId::new(u64::MAX)),
            (TxBody::Attest { .. }, _) => return Err(RejectReason::NotCustodian),
            _ => {}
        }
        match body {
            TxBody::Deposit { .. } if *signer == self.bridge => {
                return Ok(AccountId::new(u64::MAX));
            }
            TxBody::Deposit { .. } => return Err(RejectReason::NotBridge),
            TxBody::FundInsurance { .. } if *signer == self.bridge => {
                return Ok(AccountId::new(u64::MAX));
            }
            TxBody::FundInsurance { .. } => return Err(RejectReason::NotBridge),
            TxBody::ListInstrument(_) if *signer == self.admin => {
                return Ok(AccountId::new(u64::MAX));
            }
            TxBody::ListInstrument(_) => return Err(RejectReason::NotAdmin),
            _ => {}
        }
        let (account, role) = binding.ok_or(RejectReason::SignerUnknown)?;
        let owner_only = matches!(
            body,
            TxBody::Withdraw { .. }
                | TxBody::CancelWithdrawal
                | TxBody::AuthoriseAgent { .. }
                | TxBody::RevokeAgent { .. }
                | TxBody::SetMarginMode { .. }
        );
        match role {
            KeyRole::Revoked => Err(RejectReason::AgentRevoked),
            KeyRole::Agent if owner_only => Err(RejectReason::NotOwner),
            KeyRole::Owner | KeyRole::Agent => Ok(account),
        }
    }

    // ---- queries ----

    pub fn height(&self) -> Height {
        self.height
    }

    pub fn time(&self) -> BlockTime {
        self.time
    }

    pub fn state_digest(&self) -> StateDigest {
        self.digest
    }

    pub fn params(&self) -> &ExchangeParams {
        &self.params
    }

    pub fn ledger(&self) -> Ledger {
        *self.treasury.totals()
    }

    /// Every account, by id.
    pub fn accounts(&self) -> impl ExactSizeIterator<Item = &Account> + DoubleEndedIterator {
        self.accounts.iter()
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Whether `key` is one of the exchange's operator keys (the admin's, the bridge's or a
    /// custodian's).
    pub fn is_operator(&self, key: &PublicKey) -> bool {
        *key == self.admin
            || *key == self.bridge
            || self
                .custody
                .as_ref()
                .is_some_and(|state| state.custodian(key).is_some())
    }

    /// The account a key owns or trades for, with its role.
    pub fn key_binding(&self, key: &PublicKey) -> Option<(AccountId, KeyRole)> {
        self.signers.binding(key)
    }

    /// The last nonce a key used, if any.
    pub fn nonce_last(&self, key: &PublicKey) -> Option<u64> {
        self.signers.nonce_last(key)
    }

    /// Whether `tx` can no longer execute on this state or any later one, by the nonce rules
    /// `apply_tx` checks: its signer has used its nonce or a larger one, or its nonce is a
    /// time that expired at this state's time (block times only rise). A nonce ahead of the
    /// block's window may still execute later.
    pub fn can_never_execute(&self, tx: &bulwark_types::Tx) -> bool {
        self.signers.nonce_used(&tx.signer, tx.nonce.get())
            || tx.nonce.time_check(self.time) == Err(RejectReason::NonceExpired)
    }

    pub fn instruments(&self) -> &[Instrument] {
        self.instruments.as_slice()
    }

    pub fn instrument(&self, id: InstrumentId) -> Option<&Instrument> {
        self.instruments.get(id.get() as usize)
    }

    pub fn instrument_by_name(&self, name: &InstrumentName) -> Option<&Instrument> {
        self.instruments
            .id_by_name(name)
            .map(|id| &self.instruments[id.get() as usize])
    }

    pub fn index_price(&self, asset: AssetCode) -> Option<UnitPrice> {
        self.index.get(&asset).copied()
    }

    /// Equity, requirement and available funds of an account.
    pub fn account_margin(&self, id: AccountId) -> Option<AccountMargin> {
        let account = self.account(id)?;
        Some(self.margin_of(account, None))
    }

    // ---- helpers shared by the transaction handlers ----

    pub(crate) fn valuation_prices(&self, instrument: &Instrument) -> ValuationPrices {
        ValuationPrices {
            index: self.index.get(&instrument.spec.underlying()).copied(),
            mark: instrument.mark,
        }
    }

    /// Margin of `account` under its own margin method, optionally with one instrument's
    /// exposure replaced (to price a hypothetical order or liquidation step). Equity uses the
    /// actual positions.
    pub(crate) fn margin_of(
        &self,
        account: &Account,
        replace: Option<(InstrumentId, &crate::account::Exposure)>,
    ) -> AccountMargin {
        let equity = self.equity_of(account);
        let requirement = self.requirement_of(account, replace);
        // A pending withdrawal holds its amount back from new risk and from other
        // withdrawals until it is paid (`withdrawals.rs`).
        let available = equity
            .checked_sub(requirement.initial)
            .and_then(|a| a.checked_sub(self.withdrawal_held(account.id)))
            .expect("equity, initial margin and a withdrawal are account sums (money bounds)");
        self.with_realised_funds(account, replace, equity, requirement, available)
    }

    /// Equity alone (cash plus positions at their valuation prices): what the liquidation
    /// paths weigh, without pricing orders or realised funds.
    pub(crate) fn equity_of(&self, account: &Account) -> Money {
        equity(
            account.cash,
            account.exposures.iter().map(|(id, e)| {
                let instrument = &self.instruments[id.get() as usize];
                self.exposure_view(instrument, e, self.valuation_prices(instrument))
            }),
        )
    }

    /// The requirement under the account's own margin method, optionally with one
    /// instrument's exposure replaced (see [`Self::margin_of`]).
    pub(crate) fn requirement_of(
        &self,
        account: &Account,
        replace: Option<(InstrumentId, &crate::account::Exposure)>,
    ) -> MarginRequirement {
        let view = |id: &InstrumentId, exposure| {
            let instrument = &self.instruments[id.get() as usize];
            self.exposure_view(instrument, exposure, self.valuation_prices(instrument))
        };
        let portfolio;
        let model: &dyn MarginModel = match account.margin_mode {
            MarginMode::Standard => &self.margin,
            MarginMode::Portfolio => {
                portfolio = PortfolioMarginModel {
                    risk: &self.portfolio,
                    standard: &self.margin,
                };
                &portfolio
            }
        };
        match replace {
            None => model.requirement(&mut account.exposures.iter().map(|(id, e)| view(id, e))),
            Some((target, replacement)) => {
                let others = account
                    .exposures
                    .iter()
                    .filter(|(id, _)| **id != target)
                    .map(|(id, e)| view(id, e));
                let mut all = others.chain(std::iter::once(view(&target, replacement)));
                model.requirement(&mut all)
            }
        }
    }

    /// Completes an [`AccountMargin`] with what of it is realised money.
    fn with_realised_funds(
        &self,
        account: &Account,
        replace: Option<(InstrumentId, &crate::account::Exposure)>,
        equity: Money,
        requirement: MarginRequirement,
        available: Money,
    ) -> AccountMargin {
        let (mut unrealised, mut premium_reserved) = (Money::ZERO, Money::ZERO);
        let held = account
            .exposures
            .iter()
            .filter(|(id, _)| replace.is_none_or(|(target, _)| target != **id));
        for (id, exposure) in held.chain(replace.iter().map(|(id, e)| (id, *e))) {
            let instrument = &self.instruments[id.get() as usize];
            let view = self.exposure_view(instrument, exposure, self.valuation_prices(instrument));
            unrealised = unrealised
                .checked_add(crate::margin::unrealised_value(&view))
                .expect("unrealised value sums an account's positions (money bounds)");
            premium_reserved = premium_reserved
                .checked_add(self.opening_bid_premium(instrument, exposure))
                .expect("reserved premium sums an account's resting bids (money bounds)");
        }
        let withdrawable = available
            .checked_sub(unrealised)
            .and_then(|w| w.checked_sub(premium_reserved))
            .expect("available, unrealised and reserved are account sums (money bounds)");
        let balance = account
            .cash
            .checked_add(perpetual_cost(self, account))
            .expect("cash and perpetual costs are account sums (money bounds)");
        assert!(
            withdrawable <= balance,
            "withdrawable funds never exceed the realised balance"
        );
        AccountMargin {
            balance,
            equity,
            requirement,
            available,
            unrealised,
            premium_reserved,
            withdrawable,
        }
    }

    /// Premium and the most in fees that an account's resting bids in an option would pay for
    /// the contracts that open or increase a long position (bids that buy back a short are
    /// paid for by the short's own margin). Zero for perpetuals.
    fn opening_bid_premium(
        &self,
        instrument: &Instrument,
        exposure: &crate::account::Exposure,
    ) -> Money {
        if !instrument.is_option() || exposure.bids.qty == 0 {
            return Money::ZERO;
        }
        let opening = (exposure.position + exposure.bids.qty).max(0) - exposure.position.max(0);
        if opening == 0 {
            return Money::ZERO;
        }
        let bids = &exposure.bids;
        // The opening share of the bids' premium at their average price, rounded up.
        let average_ticks =
            bulwark_types::num::mul_div_ceil(bids.notional_ticks, 1, i128::from(bids.qty));
        let price = bulwark_types::Price::from_ticks(
            i64::try_from(average_ticks)
                .expect("the average of resting bid prices, each at most PRICE_MAX"),
        );
        let qty = bulwark_types::Qty::from_contracts(opening);
        let (premium, taker_fee, maker_fee) = self.trade_money(instrument, price, qty);
        premium
            .checked_add(taker_fee.max(maker_fee).max(Money::ZERO))
            .expect("one order's premium and fee (money bounds)")
    }

    /// One instrument of an account as a margin model sees it.
    pub(crate) fn exposure_view<'a>(
        &self,
        instrument: &'a Instrument,
        exposure: &'a crate::account::Exposure,
        prices: ValuationPrices,
    ) -> ExposureView<'a> {
        ExposureView {
            id: instrument.id,
            spec: &instrument.spec,
            kind: instrument.kind,
            exposure,
            prices,
            tier_contracts: self.tier_contracts(instrument),
        }
    }

    /// Every instrument's valuation prices, indexed by instrument id.
    pub(crate) fn valuation_prices_all(&self) -> Vec<ValuationPrices> {
        self.instruments
            .iter()
            .map(|i| self.valuation_prices(i))
            .collect()
    }

    /// Equity and maintenance requirement of `account`: what the liquidation pass compares,
    /// without pricing resting orders.
    /// `prices` is [`Self::valuation_prices_all`], taken once for a pass over many accounts.
    pub(crate) fn maintenance_of(
        &self,
        account: &Account,
        prices: &[ValuationPrices],
    ) -> (Money, Money) {
        let view = |id: &InstrumentId, exposure| {
            let instrument = &self.instruments[id.get() as usize];
            self.exposure_view(instrument, exposure, prices[id.get() as usize])
        };
        let equity = equity(
            account.cash,
            account.exposures.iter().map(|(id, e)| view(id, e)),
        );
        let mut exposures = account.exposures.iter().map(|(id, e)| view(id, e));
        let maintenance = match account.margin_mode {
            MarginMode::Standard => self.margin.maintenance(&mut exposures),
            MarginMode::Portfolio => PortfolioMarginModel {
                risk: &self.portfolio,
                standard: &self.margin,
            }
            .maintenance(&mut exposures),
        };
        (equity, maintenance)
    }

    pub(crate) fn next_order_id(&mut self) -> OrderId {
        let id = self.order_id_next;
        self.order_id_next = id.next();
        id
    }
}

/// Premium paid (less received) for an account's open perpetual positions: with cash, the
/// account's realised balance (`cash + perpetual_cost`), which excludes the open perpetual flows.
fn perpetual_cost(exchange: &Exchange, account: &Account) -> Money {
    account
        .exposures
        .iter()
        .filter(|(id, _)| !exchange.instruments[id.get() as usize].is_option())
        .fold(Money::ZERO, |sum, (_, e)| {
            sum.checked_add(e.cost)
                .expect("perpetual costs sum an account's positions (money bounds)")
        })
}

fn events_len(events: &[Event]) -> u32 {
    u32::try_from(events.len())
        .expect("events per block are bounded by txs_max x fills_per_match_max")
}

fn genesis_bytes(genesis: &Genesis) -> Vec<u8> {
    let mut bytes = Vec::new();
    genesis.admin.write(&mut bytes);
    genesis.bridge.write(&mut bytes);
    genesis.time.write(&mut bytes);
    crate::snapshot::write_params(&genesis.params, &mut bytes);
    crate::snapshot::write_oracle_genesis(genesis.oracle.as_ref(), &mut bytes);
    crate::snapshot::write_custody(genesis.custody.as_ref(), &mut bytes);
    bytes
}

/// `H(namespace || previous || time || outcome)`.
pub(crate) fn chain_digest(
    previous: &StateDigest,
    time: BlockTime,
    outcome: &BlockOutcome,
) -> StateDigest {
    let mut bytes = Vec::with_capacity(outcome.encode_size());
    outcome.write(&mut bytes);
    debug_assert_eq!(
        bytes.len(),
        outcome.encode_size(),
        "outcome sizes its encoding"
    );
    Sha256::hash(&[DIGEST_NAMESPACE, previous.as_ref(), &time.encode(), &bytes])
}
