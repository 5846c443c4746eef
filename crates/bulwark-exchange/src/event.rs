//! What a block did: one result per transaction and the events everything produced.
//!
//! Owns: the [`BlockOutcome`], its events, and their canonical encoding, which the state
//! digest chains (so validators that apply a block differently disagree at that block).
//! Wire format: event tags and field orders are append-only.

use bulwark_types::{
    AccountId, AssetCode, CancelReason, ClientOrderId, Height, InstrumentId, InstrumentSpec, Money,
    OrderId, Price, PublicKey, Qty, RejectReason, Side, UnitPrice,
};
use bytes::BufMut;
use commonware_codec::{EncodeSize, FixedSize, Write};

/// Which price input an [`Event::PriceIgnored`] refers to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PriceInput {
    Index(AssetCode),
    Mark(InstrumentId),
    Settlement(AssetCode),
}

/// Why a price input of the block was not used.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PriceIgnoredReason {
    /// No listed instrument uses this asset or id.
    NoSuchInstrument,
    /// The instrument no longer trades.
    NotTrading,
    /// No expired, unsettled option matches the settlement price.
    NothingToSettle,
    /// The validators' oracle sets this index; a proposer's value is not taken.
    OracleGoverned,
    /// The option's expiry is marked from the exchange's fitted smile (module `surface`).
    SurfaceGoverned,
}

/// One thing the exchange did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    AccountOpened {
        account: AccountId,
        owner: PublicKey,
    },
    Deposited {
        account: AccountId,
        amount: Money,
    },
    /// Money left the venue: a withdrawal paid (at its release, or at once when the venue
    /// holds none).
    Withdrawn {
        account: AccountId,
        amount: Money,
    },
    AgentAuthorised {
        account: AccountId,
        agent: PublicKey,
    },
    AgentRevoked {
        account: AccountId,
        agent: PublicKey,
    },
    InstrumentListed {
        instrument: InstrumentId,
        spec: InstrumentSpec,
    },
    /// An order passed admission; what it did next follows (trades, rest or cancel).
    OrderAccepted {
        instrument: InstrumentId,
        order_id: OrderId,
        account: AccountId,
        client_order_id: ClientOrderId,
        side: Side,
        price: Price,
        qty: Qty,
    },
    Trade(Trade),
    OrderCancelled {
        instrument: InstrumentId,
        order_id: OrderId,
        account: AccountId,
        qty: Qty,
        reason: CancelReason,
    },
    OrderAmended {
        instrument: InstrumentId,
        order_id: OrderId,
        account: AccountId,
        price: Price,
        qty: Qty,
        /// False when the amend moved the price or raised the quantity.
        priority_kept: bool,
    },
    PriceIgnored {
        input: PriceInput,
        reason: PriceIgnoredReason,
    },
    /// An option mark outside [intrinsic, bound] was moved to the nearest bound.
    MarkClamped {
        instrument: InstrumentId,
        supplied: UnitPrice,
        applied: UnitPrice,
    },
    /// Longs paid shorts `per_contract` each (shorts paid longs when negative).
    FundingPaid {
        instrument: InstrumentId,
        rate_ppm: i64,
        per_contract: Money,
        mark: UnitPrice,
        index: UnitPrice,
    },
    /// The option reached expiry: trading stopped and its resting orders were cancelled.
    InstrumentExpired {
        instrument: InstrumentId,
    },
    PositionSettled {
        instrument: InstrumentId,
        account: AccountId,
        position: i64,
        amount: Money,
    },
    InstrumentSettled {
        instrument: InstrumentId,
        price: UnitPrice,
    },
    /// Trades moved the price from `low` to `high` (ticks) within the circuit breaker's
    /// window: trading stops until `until_ms`, and orders wait for the reopening auction.
    InstrumentHalted {
        instrument: InstrumentId,
        low: Price,
        high: Price,
        until_ms: u64,
    },
    /// The reopening auction matched `volume` at `price` (none if nothing crossed);
    /// continuous trading resumed.
    InstrumentReopened {
        instrument: InstrumentId,
        price: Option<Price>,
        volume: Qty,
    },
    /// The account's market maker protection in `asset` tripped after `contracts` filled with
    /// net delta `delta_e8` within its window: its quotes there were cancelled and it may not
    /// rest new orders there until `frozen_until_ms` (`u64::MAX`: until it resets).
    MmpTriggered {
        account: AccountId,
        asset: AssetCode,
        contracts: Qty,
        delta_e8: i64,
        frozen_until_ms: u64,
    },
    /// The oracle's median `raw` moved too far from the last index: the deviation guard
    /// applied `applied` instead.
    IndexClamped {
        asset: AssetCode,
        raw: UnitPrice,
        applied: UnitPrice,
    },
    /// The oracle for `asset` turned fresh (a quorum of fresh observations) or stale (none):
    /// while stale, its instruments accept only orders that reduce positions, and pay no
    /// funding.
    OracleModeChanged {
        asset: AssetCode,
        fresh: bool,
    },
    /// The account's equity was below its maintenance margin at the end of the block: the
    /// liquidation engine cancelled its orders and acts on its positions (events follow).
    MarginCall {
        account: AccountId,
        equity: Money,
        maintenance: Money,
    },
    /// One liquidation step: `qty` contracts of the position offered to the book on `side`
    /// within the band, `filled` of them taken, `fee` paid to the insurance fund.
    LiquidationStep {
        account: AccountId,
        instrument: InstrumentId,
        side: Side,
        qty: Qty,
        filled: Qty,
        fee: Money,
    },
    /// `position` contracts (signed as the account held them) passed to the backstop at `price`
    /// (at most its room: see `RiskLimitParams::backstop_depth_bps`).
    BackstopTakeover {
        account: AccountId,
        instrument: InstrumentId,
        position: i64,
        price: UnitPrice,
    },
    /// A negative balance was made whole: `from_fund` by the insurance fund,
    /// `from_deleveraging` by the counterparties deleveraged; `uncovered` is what nobody could
    /// pay, carried by the fund (which may go negative).
    DeficitCovered {
        account: AccountId,
        from_fund: Money,
        from_deleveraging: Money,
        uncovered: Money,
    },
    /// Auto-deleveraging: `position` contracts of `account`'s position (signed as it held them)
    /// closed against `counterparty`'s opposing position at `price`; the counterparty paid
    /// `charged` towards the deficit (zero for what a solvent account's liquidation step left
    /// beyond the book and the backstop's room).
    Deleveraged {
        account: AccountId,
        counterparty: AccountId,
        instrument: InstrumentId,
        position: i64,
        price: UnitPrice,
        charged: Money,
    },
    /// The backstop's profit or loss since the last mark moved into the insurance fund, which
    /// now holds `fund`.
    InsuranceFundMarked {
        change: Money,
        fund: Money,
    },
    /// The account's balance is negative and it could not be closed out this block (the
    /// oracle is stale, or the block's bound was reached): it is first in line next block.
    LiquidationQueued {
        account: AccountId,
        equity: Money,
    },
    /// The account switched margin method.
    MarginModeChanged {
        account: AccountId,
        portfolio: bool,
    },
    /// A series' volatility smile was refitted to its books' two-sided quotes: its options
    /// are marked from it (`quotes` offered, `outliers` of them flagged by the robust fit).
    SmileFitted {
        underlying: AssetCode,
        expiry_ms: u64,
        quotes: u16,
        outliers: u16,
        /// Distinct accounts behind the best bids and asks of the quotes the fit kept.
        accounts: u16,
        /// At-the-money vol of the new smile, bps.
        vol_atm_bps: u32,
        /// At-the-money vol the quotes alone asked for, bps: more than `vol_move_max_bps`
        /// away from the previous smile's, the new smile is moved only that far.
        vol_atm_fitted_bps: u32,
        /// At-the-money vol the series' trades since the last refit confirm, bps, when they
        /// span `accounts_min` accounts: the bound reaches it (`vol_move_confirmed_max_bps`).
        vol_atm_traded_bps: Option<u32>,
    },
    /// A due refit found `quotes` quotes but only `good` the fit trusts (fewer than
    /// `quotes_min`), or from fewer than `accounts_min` distinct `accounts`: the previous
    /// smile, if any, stays and ages.
    SmileNotFitted {
        underlying: AssetCode,
        expiry_ms: u64,
        quotes: u16,
        good: u16,
        accounts: u16,
    },
    /// A series' smile was `age_ms` old, past `age_ms_max`, and was dropped: the series is
    /// marked by the exchange's model until the next fit.
    SmileDropped {
        underlying: AssetCode,
        expiry_ms: u64,
        age_ms: u64,
    },
    /// Custodian number `custodian` attested the action under custody id `id`: `approvals`
    /// of the `threshold` needed (at `threshold` the action was carried out; its own events
    /// follow).
    Attested {
        id: u64,
        custodian: u8,
        approvals: u8,
        threshold: u8,
    },
    /// Money entered the insurance fund (the bridge, or a custodians' quorum): `amount`,
    /// and the fund now holds `fund`.
    InsuranceFunded {
        amount: Money,
        fund: Money,
    },
    /// A withdrawal was accepted and is held: paid (`Withdrawn`) at the end of the first block
    /// (this one, at the earliest) whose prices for the account's underlyings were observed
    /// after it, if the account still covers it there (`withdrawals.rs`).
    WithdrawalRequested {
        account: AccountId,
        amount: Money,
    },
    /// A held withdrawal was not paid: at its release the account no longer covered it, or
    /// its owner cancelled it (`reason`: `WithdrawalCancelledByOwner`); the hold is lifted and
    /// the money stays in the account.
    WithdrawalCancelled {
        account: AccountId,
        amount: Money,
        reason: RejectReason,
    },
    /// `account`, opened by deposits alone to a key that never signed, was absorbed into
    /// `into` when that key's holder consented to serve `into` as its agent: its `amount` of
    /// cash moved to `into` and it stays closed (no money, no key bound to it). The
    /// `AgentAuthorised` of the key follows.
    AccountAbsorbed {
        account: AccountId,
        into: AccountId,
        amount: Money,
    },
}

/// One match, with the fees each side paid (negative: a rebate received).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Trade {
    pub instrument: InstrumentId,
    pub price: Price,
    pub qty: Qty,
    pub taker_side: Side,
    pub maker_order_id: OrderId,
    pub maker_account: AccountId,
    pub taker_order_id: OrderId,
    pub taker_account: AccountId,
    pub maker_fee: Money,
    pub taker_fee: Money,
}

/// The result of one transaction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// `None` when applied.
    pub rejection: Option<RejectReason>,
    /// The transaction's events are `events[previous tx's events_end..events_end]`.
    pub events_end: u32,
}

/// Everything a block did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockOutcome {
    pub height: Height,
    /// Events of the block itself (prices, expiry, settlement, funding) come first, then each
    /// transaction's with the liquidation pass's where it ran (after `liquidation_at`
    /// transactions: those before the first that may take liquidity), then the end of the
    /// block's (withdrawals released).
    pub events: Vec<Event>,
    /// How many of the block's transactions ran before the liquidation pass: those before the
    /// first that may take liquidity (every one, with `LiquidationParams::before_orders`
    /// false).
    pub liquidation_at: u32,
    /// Where the liquidation pass's events end (they start where the first `liquidation_at`
    /// transactions' end).
    pub liquidation_end: u32,
    /// Where the block's own events end.
    pub block_events_end: u32,
    pub txs: Vec<TxOutcome>,
}

impl BlockOutcome {
    /// Where the events after the first `applied` transactions start (the liquidation pass's
    /// skipped, if it ran there).
    fn events_after(&self, applied: usize) -> usize {
        if applied == self.liquidation_at as usize {
            self.liquidation_end as usize
        } else {
            self.transactions_end(applied)
        }
    }

    /// Where the events of the first `applied` transactions end.
    fn transactions_end(&self, applied: usize) -> usize {
        match applied.checked_sub(1) {
            None => self.block_events_end as usize,
            Some(last) => self.txs[last].events_end as usize,
        }
    }

    /// The events of transaction `index`.
    pub fn tx_events(&self, index: usize) -> &[Event] {
        &self.events[self.events_after(index)..self.txs[index].events_end as usize]
    }

    /// The block's own events (before any transaction's).
    pub fn block_events(&self) -> &[Event] {
        &self.events[..self.block_events_end as usize]
    }

    /// The liquidation pass's events (before the block's first transaction that may take
    /// liquidity: `LiquidationParams::before_orders`).
    pub fn liquidation_events(&self) -> &[Event] {
        let start = self.transactions_end(self.liquidation_at as usize);
        &self.events[start..self.liquidation_end as usize]
    }

    /// The events of the end of the block, after every transaction's: withdrawals released.
    pub fn end_events(&self) -> &[Event] {
        &self.events[self.events_after(self.txs.len())..]
    }

    pub fn trades(&self) -> impl Iterator<Item = &Trade> {
        self.events.iter().filter_map(|e| {
            if let Event::Trade(t) = e {
                Some(t)
            } else {
                None
            }
        })
    }
}

// ---- codec (encoding only: the digest chains it; clients read JSON from the API) ----

impl Write for PriceInput {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            PriceInput::Index(asset) => {
                0u8.write(buf);
                asset.write(buf);
            }
            PriceInput::Mark(id) => {
                1u8.write(buf);
                id.write(buf);
            }
            PriceInput::Settlement(asset) => {
                2u8.write(buf);
                asset.write(buf);
            }
        }
    }
}

impl EncodeSize for PriceInput {
    fn encode_size(&self) -> usize {
        1 + match self {
            PriceInput::Index(a) | PriceInput::Settlement(a) => a.encode_size(),
            PriceInput::Mark(_) => InstrumentId::SIZE,
        }
    }
}

fn reason_tag(reason: PriceIgnoredReason) -> u8 {
    match reason {
        PriceIgnoredReason::NoSuchInstrument => 0,
        PriceIgnoredReason::NotTrading => 1,
        PriceIgnoredReason::NothingToSettle => 2,
        PriceIgnoredReason::OracleGoverned => 3,
        PriceIgnoredReason::SurfaceGoverned => 4,
    }
}

impl Write for Trade {
    fn write(&self, buf: &mut impl BufMut) {
        self.instrument.write(buf);
        self.price.write(buf);
        self.qty.write(buf);
        self.taker_side.write(buf);
        self.maker_order_id.write(buf);
        self.maker_account.write(buf);
        self.taker_order_id.write(buf);
        self.taker_account.write(buf);
        self.maker_fee.write(buf);
        self.taker_fee.write(buf);
    }
}

impl FixedSize for Trade {
    const SIZE: usize = 4 + 8 + 8 + 1 + 8 + 8 + 8 + 8 + 16 + 16;
}

impl Write for Event {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Event::AccountOpened { account, owner } => {
                0u8.write(buf);
                account.write(buf);
                owner.write(buf);
            }
            Event::Deposited { account, amount } => {
                1u8.write(buf);
                account.write(buf);
                amount.write(buf);
            }
            Event::Withdrawn { account, amount } => {
                2u8.write(buf);
                account.write(buf);
                amount.write(buf);
            }
            Event::AgentAuthorised { account, agent } => {
                3u8.write(buf);
                account.write(buf);
                agent.write(buf);
            }
            Event::AgentRevoked { account, agent } => {
                4u8.write(buf);
                account.write(buf);
                agent.write(buf);
            }
            Event::InstrumentListed { instrument, spec } => {
                5u8.write(buf);
                instrument.write(buf);
                spec.write(buf);
            }
            Event::OrderAccepted {
                instrument,
                order_id,
                account,
                client_order_id,
                side,
                price,
                qty,
            } => {
                6u8.write(buf);
                instrument.write(buf);
                order_id.write(buf);
                account.write(buf);
                client_order_id.write(buf);
                side.write(buf);
                price.write(buf);
                qty.write(buf);
            }
            Event::Trade(trade) => {
                7u8.write(buf);
                trade.write(buf);
            }
            Event::OrderCancelled {
                instrument,
                order_id,
                account,
                qty,
                reason,
            } => {
                8u8.write(buf);
                instrument.write(buf);
                order_id.write(buf);
                account.write(buf);
                qty.write(buf);
                reason.write(buf);
            }
            Event::OrderAmended {
                instrument,
                order_id,
                account,
                price,
                qty,
                priority_kept,
            } => {
                9u8.write(buf);
                instrument.write(buf);
                order_id.write(buf);
                account.write(buf);
                price.write(buf);
                qty.write(buf);
                priority_kept.write(buf);
            }
            Event::PriceIgnored { input, reason } => {
                10u8.write(buf);
                input.write(buf);
                reason_tag(*reason).write(buf);
            }
            Event::MarkClamped {
                instrument,
                supplied,
                applied,
            } => {
                11u8.write(buf);
                instrument.write(buf);
                supplied.write(buf);
                applied.write(buf);
            }
            Event::FundingPaid {
                instrument,
                rate_ppm,
                per_contract,
                mark,
                index,
            } => {
                12u8.write(buf);
                instrument.write(buf);
                rate_ppm.write(buf);
                per_contract.write(buf);
                mark.write(buf);
                index.write(buf);
            }
            Event::InstrumentExpired { instrument } => {
                13u8.write(buf);
                instrument.write(buf);
            }
            Event::PositionSettled {
                instrument,
                account,
                position,
                amount,
            } => {
                14u8.write(buf);
                instrument.write(buf);
                account.write(buf);
                position.write(buf);
                amount.write(buf);
            }
            Event::InstrumentSettled { instrument, price } => {
                15u8.write(buf);
                instrument.write(buf);
                price.write(buf);
            }
            Event::InstrumentHalted {
                instrument,
                low,
                high,
                until_ms,
            } => {
                16u8.write(buf);
                instrument.write(buf);
                low.write(buf);
                high.write(buf);
                until_ms.write(buf);
            }
            Event::InstrumentReopened {
                instrument,
                price,
                volume,
            } => {
                17u8.write(buf);
                instrument.write(buf);
                price.write(buf);
                volume.write(buf);
            }
            Event::MmpTriggered {
                account,
                asset,
                contracts,
                delta_e8,
                frozen_until_ms,
            } => {
                18u8.write(buf);
                account.write(buf);
                asset.write(buf);
                contracts.write(buf);
                delta_e8.write(buf);
                frozen_until_ms.write(buf);
            }
            Event::IndexClamped {
                asset,
                raw,
                applied,
            } => {
                19u8.write(buf);
                asset.write(buf);
                raw.write(buf);
                applied.write(buf);
            }
            Event::OracleModeChanged { asset, fresh } => {
                20u8.write(buf);
                asset.write(buf);
                fresh.write(buf);
            }
            Event::MarginCall {
                account,
                equity,
                maintenance,
            } => {
                21u8.write(buf);
                account.write(buf);
                equity.write(buf);
                maintenance.write(buf);
            }
            Event::LiquidationStep {
                account,
                instrument,
                side,
                qty,
                filled,
                fee,
            } => {
                22u8.write(buf);
                account.write(buf);
                instrument.write(buf);
                side.write(buf);
                qty.write(buf);
                filled.write(buf);
                fee.write(buf);
            }
            Event::BackstopTakeover {
                account,
                instrument,
                position,
                price,
            } => {
                23u8.write(buf);
                account.write(buf);
                instrument.write(buf);
                position.write(buf);
                price.write(buf);
            }
            Event::DeficitCovered {
                account,
                from_fund,
                from_deleveraging,
                uncovered,
            } => {
                24u8.write(buf);
                account.write(buf);
                from_fund.write(buf);
                from_deleveraging.write(buf);
                uncovered.write(buf);
            }
            Event::Deleveraged {
                account,
                counterparty,
                instrument,
                position,
                price,
                charged,
            } => {
                25u8.write(buf);
                account.write(buf);
                counterparty.write(buf);
                instrument.write(buf);
                position.write(buf);
                price.write(buf);
                charged.write(buf);
            }
            Event::InsuranceFundMarked { change, fund } => {
                26u8.write(buf);
                change.write(buf);
                fund.write(buf);
            }
            Event::LiquidationQueued { account, equity } => {
                27u8.write(buf);
                account.write(buf);
                equity.write(buf);
            }
            Event::MarginModeChanged { account, portfolio } => {
                28u8.write(buf);
                account.write(buf);
                portfolio.write(buf);
            }
            Event::InsuranceFunded { amount, fund } => {
                29u8.write(buf);
                amount.write(buf);
                fund.write(buf);
            }
            Event::SmileFitted {
                underlying,
                expiry_ms,
                quotes,
                outliers,
                accounts,
                vol_atm_bps,
                vol_atm_fitted_bps,
                vol_atm_traded_bps,
            } => {
                30u8.write(buf);
                underlying.write(buf);
                expiry_ms.write(buf);
                quotes.write(buf);
                outliers.write(buf);
                accounts.write(buf);
                vol_atm_bps.write(buf);
                vol_atm_fitted_bps.write(buf);
                vol_atm_traded_bps.write(buf);
            }
            Event::SmileNotFitted {
                underlying,
                expiry_ms,
                quotes,
                good,
                accounts,
            } => {
                31u8.write(buf);
                underlying.write(buf);
                expiry_ms.write(buf);
                quotes.write(buf);
                good.write(buf);
                accounts.write(buf);
            }
            Event::SmileDropped {
                underlying,
                expiry_ms,
                age_ms,
            } => {
                32u8.write(buf);
                underlying.write(buf);
                expiry_ms.write(buf);
                age_ms.write(buf);
            }
            Event::Attested {
                id,
                custodian,
                approvals,
                threshold,
            } => {
                33u8.write(buf);
                id.write(buf);
                custodian.write(buf);
                approvals.write(buf);
                threshold.write(buf);
            }
            Event::WithdrawalRequested { account, amount } => {
                34u8.write(buf);
                account.write(buf);
                amount.write(buf);
            }
            Event::WithdrawalCancelled {
                account,
                amount,
                reason,
            } => {
                35u8.write(buf);
                account.write(buf);
                amount.write(buf);
                reason.write(buf);
            }
            Event::AccountAbsorbed {
                account,
                into,
                amount,
            } => {
                36u8.write(buf);
                account.write(buf);
                into.write(buf);
                amount.write(buf);
            }
        }
    }
}

impl EncodeSize for Event {
    fn encode_size(&self) -> usize {
        1 + match self {
            Event::AccountOpened { .. }
            | Event::AgentAuthorised { .. }
            | Event::AgentRevoked { .. } => 8 + 32,
            Event::Deposited { .. }
            | Event::Withdrawn { .. }
            | Event::WithdrawalRequested { .. } => 8 + 16,
            Event::WithdrawalCancelled { reason, .. } => 8 + 16 + reason.encode_size(),
            Event::InstrumentListed { spec, .. } => 4 + spec.encode_size(),
            Event::OrderAccepted { .. } => 4 + 8 + 8 + 8 + 1 + 8 + 8,
            Event::Trade(_) => Trade::SIZE,
            Event::OrderCancelled { .. } => 4 + 8 + 8 + 8 + 1,
            Event::OrderAmended { .. } => 4 + 8 + 8 + 8 + 8 + 1,
            Event::PriceIgnored { input, .. } => input.encode_size() + 1,
            Event::MarkClamped { .. } => 4 + 8 + 8,
            Event::FundingPaid { .. } => 4 + 8 + 16 + 8 + 8,
            Event::InstrumentExpired { .. } => 4,
            Event::PositionSettled { .. } => 4 + 8 + 8 + 16,
            Event::InstrumentSettled { .. } => 4 + 8,
            Event::InstrumentHalted { .. } => 4 + 8 + 8 + 8,
            Event::InstrumentReopened { price, .. } => 4 + price.encode_size() + 8,
            Event::MmpTriggered { asset, .. } => 8 + asset.encode_size() + 8 + 8 + 8,
            Event::IndexClamped { asset, .. } => asset.encode_size() + 8 + 8,
            Event::OracleModeChanged { asset, .. } => asset.encode_size() + 1,
            Event::MarginCall { .. } => 8 + 16 + 16,
            Event::LiquidationStep { .. } => 8 + 4 + 1 + 8 + 8 + 16,
            Event::BackstopTakeover { .. } => 8 + 4 + 8 + 8,
            Event::DeficitCovered { .. } => 8 + 16 + 16 + 16,
            Event::Deleveraged { .. } => 8 + 8 + 4 + 8 + 8 + 16,
            Event::InsuranceFundMarked { .. } => 16 + 16,
            Event::LiquidationQueued { .. } => 8 + 16,
            Event::MarginModeChanged { .. } => 8 + 1,
            Event::InsuranceFunded { .. } => 16 + 16,
            Event::SmileFitted {
                underlying,
                vol_atm_traded_bps,
                ..
            } => {
                underlying.encode_size() + 8 + 2 + 2 + 2 + 4 + 4 + vol_atm_traded_bps.encode_size()
            }
            Event::SmileNotFitted { underlying, .. } => underlying.encode_size() + 8 + 2 + 2 + 2,
            Event::SmileDropped { underlying, .. } => underlying.encode_size() + 8 + 8,
            Event::Attested { .. } => 8 + 1 + 1 + 1,
            Event::AccountAbsorbed { .. } => 8 + 8 + 16,
        }
    }
}

impl Write for TxOutcome {
    fn write(&self, buf: &mut impl BufMut) {
        self.rejection.write(buf);
        self.events_end.write(buf);
    }
}

impl EncodeSize for TxOutcome {
    fn encode_size(&self) -> usize {
        self.rejection.encode_size() + 4
    }
}

impl Write for BlockOutcome {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.events.write(buf);
        self.block_events_end.write(buf);
        self.txs.write(buf);
    }
}

impl EncodeSize for BlockOutcome {
    fn encode_size(&self) -> usize {
        Height::SIZE + self.events.encode_size() + 4 + self.txs.encode_size()
    }
}
