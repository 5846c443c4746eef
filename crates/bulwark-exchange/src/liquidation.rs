//! Liquidation: what the state machine does in every block to accounts whose equity fell
//! below maintenance margin, so that losses stop where they started instead of cascading.
//!
//! The pass runs once a block, on the block's prices, right before the block's first
//! transaction that may take liquidity (`Exchange::may_take`; `LiquidationParams::
//! before_orders`), or after the last: the book it meets is the previous block's, less what
//! its owners cancelled and plus what was only added to it. A proposer orders its block's
//! transactions, so a pass after them met a book the proposer had arranged: it could take the
//! levels ahead of a liquidation order and buy them back at the order's limit (the lab's
//! `front-run-liquidations`). Nothing in a block removes liquidity ahead of the pass.
//!
//! Owns: the pass ([`Exchange::liquidate`]): finding accounts below maintenance,
//! cancelling their orders, stepping their positions out through the book, the backstop (an
//! exchange-held account whose profit and loss is the insurance fund's), deficit cover and
//! auto-deleveraging, and every event that records them.
//! Never: lets an account with no open position bear another's loss (only holders of opposing
//! positions are deleveraged); trades outside the price band; liquidates while an account's
//! underlying has a stale oracle, or after an outage until its index has settled at the
//! validators' median (it waits, and a negative balance is reported queued); lets the
//! insurance fund pay a deficit an oracle outage made before deleveraging has collected what
//! it can; creates or destroys money (every step moves cash between accounts, fees and the
//! fund).
//! Bounds: at most `accounts_per_block_max` accounts stepped through the book and
//! `bankruptcies_per_block_max` closed out per block; one step per account per block; at most
//! `orders_per_instrument_max` liquidation orders into one book per block (an account whose
//! only positions are in a throttled book waits for the next block); the backstop offers at
//! most `backstop_unwind_bps` of each position per block, and holds at most
//! `backstop_depth_bps` of the depth a perpetual's book has shown (`RiskLimitParams`); at
//! most one open outage per listed underlying and one remembered outage deficit per account.
//!
//! Order of work, each block:
//! 0. Every listed underlying whose oracle is stale opens an outage ([`Outages`]); it stays
//!    open until the end of the first pass that finds its oracle fresh and its index settled
//!    (`Exchange::index_settled`: the deviation guard has walked the index to the median).
//! 1. Every account holding a position or a negative balance is measured: equity against
//!    maintenance margin, under its own margin method. Accounts holding an underlying whose
//!    oracle is stale, or whose outage is open with the index still walking, are left alone
//!    (a deficit is reported queued).
//! 2. The backstop is marked to market into the insurance fund, so every coverage decision
//!    below weighs the fund as this block's prices leave it.
//!    Accounts with negative equity (bankrupt), most negative first: orders cancelled. A
//!    deficit an outage made (the account holds an underlying whose outage is open, or was
//!    queued with such a deficit: liquidation could not act across the gap) is collected
//!    first by deleveraging opposing positions at the mark, each charged its share
//!    (equivalent to closing at the bankruptcy price); the fund pays only what deleveraging
//!    could not collect. Any other deficit: when the insurance fund covers it, every
//!    position passes at the mark to the backstop, as far as the backstop has room
//!    ([`Exchange::backstop_room`]); the fund pays that part's share of the deficit and the
//!    rest is deleveraged, its counterparties charged the rest (the bankruptcy price).
//!    Otherwise the fund pays what it has and opposing positions are deleveraged at the mark,
//!    each charged its share of the rest.
//! 3. Accounts below maintenance, lowest equity-to-maintenance first: orders cancelled, then
//!    one step: `step_bps` of the position whose cut lowers maintenance most (more, if that
//!    is what brings maintenance down to `equity / restore_bps`), as an
//!    immediate-or-cancel order limited to `price_limit_bps` from the mark (and the band). The
//!    fee goes to the fund; what the book did not take passes to the backstop at the mark
//!    while the fund is positive, as far as the backstop has room, and what is left after
//!    that is deleveraged at the mark (nobody charged: the account is solvent); with an
//!    empty fund it stays, reported queued, for the next block's step. Healthy traders are
//!    deleveraged only for a deficit an outage made, a bankrupt account's residual that the
//!    fund cannot pay (step 2, and the backstop in step 5), or a position too large for the
//!    book and the backstop together.
//! 4. The backstop offers `backstop_unwind_bps` of each position to the book.
//! 5. The backstop is marked to market: its equity moves into the insurance fund, so the fund
//!    carries its profit and loss. A fund that goes negative deleverages the backstop's
//!    positions, charging their holders.
//! 6. Outage deficits the pass left queued are remembered; outages whose underlying is fresh
//!    and settled close.
//!
//! Why an outage's deficit is the opposing side's: while the oracle is stale nothing can be
//! liquidated, so an account can fall through its bankruptcy price, and the gap is exactly
//! what the holders of the opposing positions gained meanwhile. Paid by the fund, a straddle
//! between two accounts of one owner turns the gap into a profit (the lab's
//! `oracle-outage-withdrawal`). Deleveraged, each counterparty gives back at most, per
//! contract, the distance from the bankrupt account's bankruptcy price to the mark: for a
//! bankrupt account with one position, less than the counterparty's gain since the last fresh
//! mark. (A bankrupt account with several positions spreads its deficit over them by value,
//! so a counterparty of one that lost little can give back more than its own gain there,
//! never more than its equity.) The ranking is the usual one, so an attacker whose winning
//! account ranks last (much equity, low leverage) still collects the gap from honest holders
//! of the same side; the fund pays nothing either way (`tests/oracle.rs`).
//!
//! Why the backstop is capped by depth: what the backstop takes over, the fund carries until
//! the book takes it back. A position many books deep, opened between two accounts of one
//! owner, cannot be unwound; taken over at the mark as the price is pushed, its loss is the
//! fund's and the owner's other account keeps the gain (Hyperliquid's JELLY, March 2025; the
//! lab's `backstop-whale`). Capped at what the book has shown (the lesser of its depth
//! average and last sample, never the floor the margin tiers start from; quotes rested for
//! minutes and cancelled before the attack leave no room), the backstop takes only what it
//! can sell; the rest is
//! closed against the opposing positions, most profitable and most leveraged first, which for
//! a two-account whale is his own long. A long kept in an account with much equity ranks last,
//! so honest longs of the same side are closed first: at the mark, charged nothing (the
//! liquidated account is solvent), they lose their position's further rise, which the
//! attacker then keeps on as many contracts as they held, no more (`tests/attacks.rs`).

use crate::account::Account;
use crate::event::Event;
use crate::exchange::Exchange;
use crate::instrument::InstrumentStatus;
use crate::ledger::Pocket;
use crate::margin::bps_ceil;
use crate::params::{BPS, LiquidationParams};
use bulwark_book::NewOrder;
use bulwark_types::{
    AccountId, AssetCode, CancelReason, ClientOrderId, InstrumentId, InstrumentKind, Money, Qty,
    SelfTradePrevention, Side, TimeInForce, UnitPrice,
};
use std::collections::BTreeSet;

/// The client order id liquidation and backstop orders carry (they never rest, so it cannot
/// clash with an account's own open orders).
pub const LIQUIDATION_CLIENT_ORDER_ID: ClientOrderId = ClientOrderId::new(u64::MAX);

/// Oracle outages as liquidation remembers them (replicated state, in the snapshot).
///
/// An underlying's outage opens at the first liquidation pass that finds its oracle stale and
/// closes at the end of the first pass that finds it fresh with its index settled
/// ([`Exchange::index_settled`]): the deviation guard may walk the index for several blocks
/// after the quorum returns, and a bankruptcy the gap made may show only then. A bankrupt
/// account holding an underlying whose outage is open has a deficit the outage made
/// (liquidation could not act on it); if the block's budget or a stale oracle queues it, it
/// keeps that mark until it is closed out or its equity recovers.
/// Bounds: `open` holds listed underlyings only, `deficits` existing accounts only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outages {
    /// Underlyings whose oracle went stale and whose index has not settled at a fresh quorum
    /// since, in order.
    pub(crate) open: BTreeSet<AssetCode>,
    /// Accounts the last pass left queued with a deficit an outage made, in order.
    pub(crate) deficits: BTreeSet<AccountId>,
}

/// Who receives what deleveraging collects.
#[derive(Copy, Clone, Debug)]
enum Beneficiary {
    Account(AccountId),
    InsuranceFund,
}

impl Exchange {
    /// The block's liquidation pass, before anything in it takes liquidity (see the module doc).
    pub(crate) fn liquidate(&mut self, events: &mut Vec<Event>) {
        let Some(params) = self.params.liquidation else {
            return;
        };
        self.open_outages();
        let pass_begin = events.len();
        self.pass(&params, events);
        // What stays queued: each queued account's deficit as the pass leaves it.
        let queued: BTreeSet<AccountId> = events[pass_begin..]
            .iter()
            .filter_map(|e| match e {
                Event::LiquidationQueued { account, .. } => Some(*account),
                _ => None,
            })
            .collect();
        self.deficits_queued = queued.iter().fold(Money::ZERO, |sum, id| {
            let equity = self.equity_of(&self.accounts[*id]);
            sum.checked_add(Money::from_micros((-equity.micros()).max(0)))
                .expect("queued deficits sum account equities (money bounds)")
        });
        self.close_outages(&queued);
    }

    /// Step 0: opens an outage for every listed underlying whose oracle is stale (see
    /// [`Outages`]).
    fn open_outages(&mut self) {
        let stale: Vec<AssetCode> = self
            .instruments
            .assets()
            .iter()
            .filter(|asset| !self.oracle_fresh(**asset))
            .copied()
            .collect();
        self.outages.open.extend(stale);
    }

    /// After the pass: the accounts it left queued with a deficit an outage made are
    /// remembered; outages whose underlying is fresh and settled again close.
    fn close_outages(&mut self, queued: &BTreeSet<AccountId>) {
        let deficits: BTreeSet<AccountId> = queued
            .iter()
            .copied()
            .filter(|id| self.equity_of(&self.accounts[*id]).is_negative() && self.outage_made(*id))
            .collect();
        self.outages.deficits = deficits;
        let closing: Vec<AssetCode> = self
            .outages
            .open
            .iter()
            .filter(|asset| self.oracle_fresh(**asset) && self.index_settled(**asset))
            .copied()
            .collect();
        for asset in closing {
            self.outages.open.remove(&asset);
        }
        assert!(
            self.outages.open.len() <= self.instruments.assets().len(),
            "outages are of listed underlyings"
        );
    }

    /// Whether an oracle outage made the account's deficit: it holds an underlying whose
    /// outage is open, or the last pass left it queued with such a deficit.
    fn outage_made(&self, id: AccountId) -> bool {
        self.outages.deficits.contains(&id)
            || self.accounts[id].exposures.keys().any(|instrument| {
                let spec = &self.instruments[instrument.get() as usize].spec;
                self.outages.open.contains(&spec.underlying())
            })
    }

    /// One liquidation pass (see [`Self::liquidate`]).
    fn pass(&mut self, params: &LiquidationParams, events: &mut Vec<Event>) {
        let params = *params;
        self.adl_rankings.clear();
        self.liquidation_orders.clear();
        // Accounts holding a position or a negative balance, each once, in id order: a pass
        // over the dense account table (cheaper than collecting the holder sets).
        let mut bankrupt: Vec<(Money, AccountId)> = Vec::new();
        let mut under: Vec<(i128, AccountId)> = Vec::new();
        let prices = self.valuation_prices_all();
        let limits = self.params.risk_limits;
        let instruments = self.instruments.iter().map(|i| {
            let tier = limits.map_or(0, |l| crate::depth::tier_contracts(&l, i));
            (i.kind, i.spec.multiplier, tier)
        });
        self.accounts.begin_pass(&prices, instruments, &self.margin);
        for index in 0..self.accounts.len() {
            let id = AccountId::new(index as u64);
            if Some(id) == self.backstop || self.accounts.proven_safe(id) {
                continue;
            }
            let account = &self.accounts[id];
            let (equity, maintenance) = self.maintenance_of(account, &prices);
            self.accounts.record(id, equity, maintenance);
            let account = &self.accounts[id];
            if equity >= maintenance {
                continue;
            }
            if self.liquidation_paused(account) {
                // Paused with the oracle, and after an outage until the index has settled;
                // a deficit waits, reported.
                if equity.is_negative() {
                    events.push(Event::LiquidationQueued {
                        account: id,
                        equity,
                    });
                }
                continue;
            }
            if equity.is_negative() {
                bankrupt.push((equity, id));
            } else {
                // Equity over maintenance, in bps: the lowest ratio goes first.
                let ratio = equity.micros() * i128::from(BPS) / maintenance.micros().max(1);
                under.push((ratio, id));
            }
        }
        // Coverage is decided on the fund as this block's prices leave it: the backstop's
        // profit and loss moves into the fund before any deficit is weighed against it.
        self.mark_backstop(events);
        bankrupt.sort();
        let mut budget = params.bankruptcies_per_block_max as usize;
        self.close_out_all(bankrupt, &mut budget, events);
        let pass_start = events.len();
        under.sort();
        for (_, id) in under
            .into_iter()
            .take(params.accounts_per_block_max as usize)
        {
            self.liquidation_step(id, &params, events);
        }
        self.unwind_backstop(&params, events);
        // Trading away from the mark can take a stepped account, or a maker that bought from
        // it, below zero, and a position moved at the mark can round either side a micro-USDC
        // below: those are closed out now, so no deficit outlives the block unreported.
        let traded: BTreeSet<AccountId> = events[pass_start..]
            .iter()
            .filter_map(|e| match e {
                Event::Trade(t) => Some([t.maker_account, t.taker_account]),
                Event::Deleveraged {
                    account,
                    counterparty,
                    ..
                } => Some([*account, *counterparty]),
                Event::BackstopTakeover { account, .. } => Some([*account, *account]),
                _ => None,
            })
            .flatten()
            .filter(|id| Some(*id) != self.backstop)
            .collect();
        let mut bankrupt: Vec<(Money, AccountId)> = traded
            .into_iter()
            .map(|id| (self.equity_of(&self.accounts[id]), id))
            .filter(|(equity, _)| equity.is_negative())
            .collect();
        bankrupt.sort();
        self.close_out_all(bankrupt, &mut budget, events);
        self.mark_backstop(events);
    }

    /// Closes out bankrupt accounts while the block's budget lasts; the rest are reported.
    fn close_out_all(
        &mut self,
        bankrupt: Vec<(Money, AccountId)>,
        budget: &mut usize,
        events: &mut Vec<Event>,
    ) {
        for (equity, id) in bankrupt {
            // A maker that bought from a stepped account may hold an underlying the pass
            // leaves alone: its deficit waits with the others.
            let paused = self.liquidation_paused(&self.accounts[id]);
            if *budget > 0 && !paused {
                *budget -= 1;
                let outage = self.outage_made(id);
                self.close_out(id, outage, events);
            } else {
                events.push(Event::LiquidationQueued {
                    account: id,
                    equity,
                });
            }
        }
    }

    /// Whether every underlying the account holds has a fresh oracle.
    pub(crate) fn account_oracles_fresh(&self, account: &Account) -> bool {
        account.exposures.keys().all(|id| {
            let spec = &self.instruments[id.get() as usize].spec;
            self.oracle_fresh(spec.underlying())
        })
    }

    /// Whether liquidation leaves the account alone this block: an underlying it holds has a
    /// stale oracle, or an open outage whose index the deviation guard is still walking to
    /// the validators' median. Neither the book nor deleveraging acts at a mark the median has
    /// left: a counterparty deleveraged there would give the attacker the rest of the walk.
    fn liquidation_paused(&self, account: &Account) -> bool {
        account.exposures.keys().any(|id| {
            let asset = self.instruments[id.get() as usize].spec.underlying();
            !self.oracle_fresh(asset)
                || (self.outages.open.contains(&asset) && !self.index_settled(asset))
        })
    }

    /// Whether every underlying the account holds has its index where the validators' last
    /// median is: the deviation guard is not holding it back from a move.
    pub(crate) fn account_indexes_settled(&self, account: &Account) -> bool {
        account.exposures.keys().all(|id| {
            let spec = &self.instruments[id.get() as usize].spec;
            self.index_settled(spec.underlying())
        })
    }

    /// Records the margin call and cancels every open order of the account; returns its margin.
    fn margin_call(&mut self, id: AccountId, events: &mut Vec<Event>) -> crate::AccountMargin {
        let margin = self.margin_of(&self.accounts[id], None);
        events.push(Event::MarginCall {
            account: id,
            equity: margin.equity,
            maintenance: margin.requirement.maintenance,
        });
        self.cancel_all_for(id, None, CancelReason::Liquidation, events);
        margin
    }

    /// Closes out an account with negative equity: every position to the backstop at the
    /// mark when the fund covers the deficit, otherwise deleveraging for what the fund cannot
    /// pay. A deficit an oracle `outage` made is deleveraged first, and the fund pays only
    /// what deleveraging could not collect. The account ends with nothing and zero equity
    /// (or, if even deleveraging could not collect the deficit, the fund carries the rest,
    /// reported as uncovered).
    fn close_out(&mut self, id: AccountId, outage: bool, events: &mut Vec<Event>) {
        let margin = self.margin_call(id, events);
        let deficit = Money::from_micros(-margin.equity.micros());
        let positions = self.positions_of(id);
        let fund = self.treasury.fund();
        let begin = events.len();
        let (from_fund, from_deleveraging) = if outage {
            // Liquidation could not act while the index was stale: the gap is the opposing
            // side's gain, not the fund's loss. Each opposing holder gives back its share.
            let collected =
                self.deleverage_all(id, &positions, deficit, Beneficiary::Account(id), events);
            let rest = deficit
                .checked_sub(collected)
                .expect("deleveraging collects at most the deficit");
            (rest.min(fund.max(Money::ZERO)), collected)
        } else if fund >= deficit {
            // The backstop takes what it has room for at the mark and the fund pays that
            // part's share of the deficit; the rest is deleveraged, its counterparties
            // charged the rest of the deficit (closing at the bankruptcy price).
            let total: i128 = self.position_values(&positions).iter().sum();
            let mut rest = Vec::new();
            for (instrument, position) in positions {
                let taken = self.backstop_take(id, instrument, position, events);
                if taken != position {
                    rest.push((instrument, position - taken));
                }
            }
            if rest.is_empty() {
                (deficit, Money::ZERO)
            } else {
                let rest_value: i128 = self.position_values(&rest).iter().sum();
                let share =
                    Money::from_micros(deficit.micros() * rest_value.min(total) / total.max(1));
                let collected =
                    self.deleverage_all(id, &rest, share, Beneficiary::Account(id), events);
                let from_fund = deficit
                    .checked_sub(collected)
                    .expect("deleveraging collects at most its share of the deficit");
                (from_fund, collected)
            }
        } else {
            let from_fund = fund.max(Money::ZERO);
            let rest = deficit
                .checked_sub(from_fund)
                .expect("0 <= from_fund < deficit");
            let collected =
                self.deleverage_all(id, &positions, rest, Beneficiary::Account(id), events);
            (from_fund, collected)
        };
        let covered = from_fund
            .checked_add(from_deleveraging)
            .expect("from_fund and deleveraging each at most the deficit (money bounds)");
        let mut uncovered = deficit
            .checked_sub(covered)
            .expect("deficit and what covered it within the money bounds");
        // A position moved in pieces (to several counterparties, or part to the backstop)
        // can round the account a micro-USDC a piece below what its deficit was: the fund
        // pays that dust too, so the account ends at zero.
        let short = -(self.equity_of(&self.accounts[id]).micros());
        let dust = Money::from_micros((short - from_fund.micros() - uncovered.micros()).max(0));
        let mut from_fund = from_fund;
        if dust.is_positive() {
            let positions_moved = events[begin..]
                .iter()
                .filter(|e| {
                    matches!(e, Event::Deleveraged { account, .. }
                        | Event::BackstopTakeover { account, .. } if *account == id)
                })
                .count();
            assert!(
                dust.micros() <= positions_moved as i128,
                "rounding: at most a micro-USDC per piece"
            );
            let room = fund
                .checked_sub(from_fund)
                .expect("money bounds")
                .max(Money::ZERO);
            let paid = dust.min(room);
            from_fund = from_fund.checked_add(paid).expect("money bounds");
            uncovered = uncovered
                .checked_add(dust.checked_sub(paid).expect("paid <= dust"))
                .expect("money bounds");
        }
        // The fund pays its part and carries whatever nobody could.
        let fund_pays = from_fund
            .checked_add(uncovered)
            .expect("the deficit less what deleveraging collected (money bounds)");
        self.transfer(Pocket::Fund, Pocket::Account(id), fund_pays);
        events.push(Event::DeficitCovered {
            account: id,
            from_fund,
            from_deleveraging,
            uncovered,
        });
    }

    /// One step of an account below maintenance: cancel its orders, then cut the position
    /// that lowers maintenance most by `step_bps` through the book.
    fn liquidation_step(
        &mut self,
        id: AccountId,
        params: &LiquidationParams,
        events: &mut Vec<Event>,
    ) {
        self.margin_call(id, events);
        let Some((instrument, cut)) = self.riskiest_step(id, params.step_bps) else {
            return;
        };
        let cut = self.restoring_cut(id, instrument, cut, params.restore_bps);
        let before = self.accounts[id].position(instrument);
        // A halted book, or one that took its liquidation orders for the block, gets no order:
        // the step passes to the backstop at the mark (while the fund backs it) rather than
        // waiting while the account sinks.
        let book_open = !self.instruments[instrument.get() as usize].book.is_halted()
            && !self.liquidation_throttled(instrument);
        if book_open {
            self.book_reduce(id, instrument, cut, events);
        }
        let after = self.accounts[id].position(instrument);
        let filled = (before - after).abs();
        let fee = self.liquidation_fee(id, instrument, filled, params.fee_bps);
        if fee.is_positive() {
            self.transfer(Pocket::Account(id), Pocket::Fund, fee);
        }
        let left = cut - filled;
        let fund = self.treasury.fund();
        events.push(Event::LiquidationStep {
            account: id,
            instrument,
            side: if before > 0 { Side::Sell } else { Side::Buy },
            qty: Qty::from_contracts(cut),
            filled: Qty::from_contracts(filled),
            fee,
        });
        if left > 0 {
            if fund.is_positive() {
                let offered = left * before.signum();
                let taken = self.backstop_take(id, instrument, offered, events);
                let rest = offered - taken;
                if rest != 0 {
                    // More than the book and the backstop can unwind: closed at the mark
                    // against the opposing positions. The account is solvent, so nobody is
                    // charged; the side that gained from the position takes it back.
                    self.deleverage(
                        id,
                        instrument,
                        rest,
                        Money::ZERO,
                        Beneficiary::Account(id),
                        events,
                    );
                }
            } else {
                // Nobody is bankrupt: healthy traders are not deleveraged for a step the book
                // could not fill. With nothing in the fund to back the backstop, the rest of
                // the step waits for the next block's book.
                let equity = self.equity_of(&self.accounts[id]);
                events.push(Event::LiquidationQueued {
                    account: id,
                    equity,
                });
            }
        }
    }

    /// The position to cut and by how much: among positions in instruments that trade
    /// continuously, the cut of `step_bps` (at least a lot) that leaves the lowest maintenance.
    fn riskiest_step(&self, id: AccountId, step_bps: i64) -> Option<(InstrumentId, i64)> {
        let account = &self.accounts[id];
        let mut best: Option<(Money, InstrumentId, i64)> = None;
        for (instrument, exposure) in &account.exposures {
            let target = &self.instruments[instrument.get() as usize];
            if exposure.position == 0 || target.status != InstrumentStatus::Trading {
                continue;
            }
            let cut = step_size(
                exposure.position.abs(),
                target.spec.lot_size.contracts(),
                step_bps,
            );
            let mut reduced = *exposure;
            reduced.position -= cut * exposure.position.signum();
            let maintenance = self
                .requirement_of(account, Some((*instrument, &reduced)))
                .maintenance;
            if best.is_none_or(|(m, _, _)| maintenance < m) {
                best = Some((maintenance, *instrument, cut));
            }
        }
        best.map(|(_, instrument, cut)| (instrument, cut))
    }

    /// The cut of the account's position in `instrument`, at least `cut`, that brings its
    /// maintenance down to `equity x 10_000 / restore_bps` (or the whole position, if even
    /// that does not): the smallest such number of lots, found by bisection over the margin
    /// model (at most 64 measurements).
    fn restoring_cut(
        &self,
        id: AccountId,
        instrument: InstrumentId,
        cut: i64,
        restore_bps: i64,
    ) -> i64 {
        let account = &self.accounts[id];
        let Some(exposure) = account.exposures.get(&instrument) else {
            return cut;
        };
        let size = exposure.position.abs();
        let lot = self.instruments[instrument.get() as usize]
            .spec
            .lot_size
            .contracts();
        if restore_bps == 0 || cut >= size {
            return cut;
        }
        let equity = self.equity_of(account);
        let restored = |cut: i64| {
            let mut reduced = *exposure;
            reduced.position -= cut * exposure.position.signum();
            let maintenance = self
                .requirement_of(account, Some((instrument, &reduced)))
                .maintenance;
            maintenance.micros() * i128::from(restore_bps) <= equity.micros() * i128::from(BPS)
        };
        if restored(cut) {
            return cut;
        }
        // Bisect in lots over (cut, size]: `restored` holds at `high`, not at `low`.
        let (mut low, mut high) = (cut / lot, (size + lot - 1) / lot);
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if restored((middle * lot).min(size)) {
                high = middle;
            } else {
                low = middle;
            }
        }
        (high * lot).min(size)
    }

    /// Whether `instrument` has taken its liquidation orders for this block.
    fn liquidation_throttled(&self, instrument: InstrumentId) -> bool {
        let max = self
            .params
            .liquidation
            .map_or(u32::MAX, |l| l.orders_per_instrument_max);
        self.liquidation_orders
            .get(&instrument)
            .is_some_and(|sent| *sent >= max)
    }

    /// Sends a reduce-only immediate-or-cancel order for `cut` contracts of the account's
    /// position, limited to `price_limit_bps` from the mark and to the band.
    fn book_reduce(
        &mut self,
        id: AccountId,
        instrument: InstrumentId,
        cut: i64,
        events: &mut Vec<Event>,
    ) {
        let position = self.accounts[id].position(instrument);
        let side = if position > 0 { Side::Sell } else { Side::Buy };
        let Some(price) = self.liquidation_limit(instrument, side) else {
            return;
        };
        *self.liquidation_orders.entry(instrument).or_default() += 1;
        let order = NewOrder {
            order_id: self.next_order_id(),
            account: id,
            client_order_id: LIQUIDATION_CLIENT_ORDER_ID,
            side,
            price,
            qty: Qty::from_contracts(cut),
            time_in_force: TimeInForce::ImmediateOrCancel,
            post_only: false,
            reduce_only: true,
            self_trade: SelfTradePrevention::CancelTaker,
        };
        self.execute(instrument, order, true, events);
    }

    /// The price (ticks) a liquidation order in `instrument` on `side` trades to now:
    /// `price_limit_bps` from the mark, within the band. `None` for an unknown instrument, or
    /// one with no mark or index to centre it on.
    pub fn liquidation_limit(
        &self,
        instrument: InstrumentId,
        side: Side,
    ) -> Option<bulwark_types::Price> {
        let target = self.instruments.get(instrument.get() as usize)?;
        let band_edge = self.band_edge(target, side).ok()?;
        let mark = target.mark.or(self.valuation_prices(target).index)?;
        let limit_bps = self.params.liquidation.map_or(BPS, |l| l.price_limit_bps);
        let (low, high) = crate::trading::band_ticks(
            mark,
            target.spec.tick_size,
            limit_bps,
            if target.is_option() {
                self.params.band_option.width_ticks_min
            } else {
                1
            },
        );
        Some(match side {
            Side::Sell => band_edge.max(low),
            Side::Buy => band_edge.min(high),
        })
    }

    /// The liquidation fee of `filled` contracts: `fee_bps` of their notional (the
    /// underlying's for options), never more than the account's remaining positive equity.
    fn liquidation_fee(
        &self,
        id: AccountId,
        instrument: InstrumentId,
        filled: i64,
        fee_bps: i64,
    ) -> Money {
        if filled == 0 || fee_bps == 0 {
            return Money::ZERO;
        }
        let target = &self.instruments[instrument.get() as usize];
        let prices = self.valuation_prices(target);
        let base_price = match target.kind {
            InstrumentKind::Perpetual => target.mark.or(prices.index),
            InstrumentKind::Option { strike, .. } => Some(prices.index.unwrap_or(strike)),
        };
        let Some(base_price) = base_price else {
            return Money::ZERO;
        };
        let notional = target
            .spec
            .multiplier
            .value(Qty::from_contracts(filled), base_price);
        let equity = self.equity_of(&self.accounts[id]);
        bps_ceil(notional, fee_bps).min(equity.max(Money::ZERO))
    }

    /// The account's non-zero positions, in instrument order.
    fn positions_of(&self, id: AccountId) -> Vec<(InstrumentId, i64)> {
        self.accounts[id]
            .exposures
            .iter()
            .filter(|(_, e)| e.position != 0)
            .map(|(i, e)| (*i, e.position))
            .collect()
    }

    /// The price a position in `instrument` is valued at (mark, else intrinsic or index).
    fn valuation_price_of(&self, instrument: InstrumentId) -> Option<UnitPrice> {
        let target = &self.instruments[instrument.get() as usize];
        let exposure = crate::account::Exposure::default();
        self.exposure_view(target, &exposure, self.valuation_prices(target))
            .valuation_price()
    }

    /// The backstop account, opened on first use. It is owned by the admin key but bound to
    /// no key, so no transaction can act for it.
    fn backstop_account(&mut self, events: &mut Vec<Event>) -> AccountId {
        if let Some(id) = self.backstop {
            return id;
        }
        let id = self.accounts.open(self.admin.clone());
        self.backstop = Some(id);
        events.push(Event::AccountOpened {
            account: id,
            owner: self.admin.clone(),
        });
        id
    }

    /// Moves `contracts` (signed like the account's position) of the account's position in
    /// `instrument` to the backstop at the valuation price, or as many as the backstop has
    /// room for ([`Exchange::backstop_room`]). Returns what it took, signed like `contracts`.
    fn backstop_take(
        &mut self,
        from: AccountId,
        instrument: InstrumentId,
        contracts: i64,
        events: &mut Vec<Event>,
    ) -> i64 {
        let Some(price) = self.valuation_price_of(instrument) else {
            return 0;
        };
        let held = self
            .backstop
            .map_or(0, |backstop| self.accounts[backstop].position(instrument));
        let room = self.backstop_room(
            &self.instruments[instrument.get() as usize],
            held,
            contracts.signum(),
        );
        let taken = contracts.abs().min(room) * contracts.signum();
        assert!(
            taken.abs() <= contracts.abs(),
            "takes at most what is offered"
        );
        if taken == 0 {
            return 0;
        }
        let backstop = self.backstop_account(events);
        self.transfer_position(instrument, from, backstop, taken, price, events);
        events.push(Event::BackstopTakeover {
            account: from,
            instrument,
            position: taken,
            price,
        });
        taken
    }

    /// Moves `contracts` of `from`'s position (signed like it: positive gives longs) to `to`
    /// at `price`: `to` pays `from` the position's value. Money and net positions are
    /// unchanged in total.
    fn transfer_position(
        &mut self,
        instrument: InstrumentId,
        from: AccountId,
        to: AccountId,
        contracts: i64,
        price: UnitPrice,
        events: &mut Vec<Event>,
    ) {
        assert!(contracts != 0 && from != to, "a transfer moves something");
        let multiplier = self.instruments[instrument.get() as usize].spec.multiplier;
        let value = multiplier.value(Qty::from_contracts(contracts.abs()), price);
        let premium = Money::from_micros(value.micros() * i128::from(contracts.signum()));
        self.transfer(Pocket::Account(to), Pocket::Account(from), premium);
        let receiver = self.accounts.get_mut(to);
        let exposure = receiver.exposures.entry(instrument).or_default();
        let to_before = exposure.position;
        exposure.apply_fill(contracts, premium);
        let to_position = exposure.position;
        let giver = self.accounts.get_mut(from);
        let exposure = giver.exposures.entry(instrument).or_default();
        let from_before = exposure.position;
        exposure.apply_fill(-contracts, Money::from_micros(-premium.micros()));
        let from_position = exposure.position;
        let target = &mut self.instruments[instrument.get() as usize];
        target.position_changed(to, to_before, to_position);
        target.position_changed(from, from_before, from_position);
        self.enforce_reduce_only(from, instrument, events);
        self.enforce_reduce_only(to, instrument, events);
        self.accounts.get_mut(from).tidy(instrument);
        self.accounts.get_mut(to).tidy(instrument);
    }

    /// Each position's value at its valuation price, micro-USDC, at least 1 (so shares by value
    /// are defined when prices are missing).
    fn position_values(&self, positions: &[(InstrumentId, i64)]) -> Vec<i128> {
        positions
            .iter()
            .map(|(instrument, position)| {
                let multiplier = self.instruments[instrument.get() as usize].spec.multiplier;
                self.valuation_price_of(*instrument)
                    .map_or(0, |p| {
                        multiplier
                            .value(Qty::from_contracts(position.abs()), p)
                            .micros()
                    })
                    .max(1)
            })
            .collect()
    }

    /// Deleverages every position in `positions`, charging `charge` in total across them in
    /// proportion to each position's value at the mark. Returns what was collected.
    fn deleverage_all(
        &mut self,
        id: AccountId,
        positions: &[(InstrumentId, i64)],
        charge: Money,
        beneficiary: Beneficiary,
        events: &mut Vec<Event>,
    ) -> Money {
        let values = self.position_values(positions);
        let total: i128 = values.iter().sum();
        let mut collected = Money::ZERO;
        let mut assigned = 0i128;
        for (n, ((instrument, position), value)) in positions.iter().zip(&values).enumerate() {
            let share = if n + 1 == positions.len() {
                charge.micros() - assigned
            } else {
                charge.micros() * value / total.max(1)
            };
            assigned += share;
            let got = self.deleverage(
                id,
                *instrument,
                *position,
                Money::from_micros(share),
                beneficiary,
                events,
            );
            collected = collected
                .checked_add(got)
                .expect("deleveraging collects shares of one deficit (money bounds)");
        }
        collected
    }

    /// Auto-deleveraging: closes `contracts` of `from`'s position in `instrument` against
    /// opposing positions at the valuation price, most profitable and most leveraged first,
    /// and charges the counterparties `charge` in proportion to what each took over, each at
    /// most its own positive equity. What is collected goes to `beneficiary`; returns it.
    fn deleverage(
        &mut self,
        from: AccountId,
        instrument: InstrumentId,
        contracts: i64,
        charge: Money,
        beneficiary: Beneficiary,
        events: &mut Vec<Event>,
    ) -> Money {
        let Some(price) = self.valuation_price_of(instrument) else {
            return Money::ZERO;
        };
        let sign = contracts.signum();
        let cached = self.adl_rankings.get(&(instrument, sign)).cloned();
        // The block's ranking first; if positions opened since it was taken are needed (a
        // maker that bought from a liquidation), a fresh ranking replaces it.
        let mut left = contracts.abs();
        let mut collected = Money::ZERO;
        let mut assigned = 0i128;
        let mut passes = 0;
        let mut ranked = cached.unwrap_or_default();
        if ranked.is_empty() {
            ranked = self.deleverage_ranking(instrument, sign, price);
            self.adl_rankings.insert((instrument, sign), ranked.clone());
            passes = 1;
        }
        let mut queue = ranked.into_iter();
        loop {
            let Some(counterparty) = queue.next() else {
                if left == 0 || passes == 1 {
                    break;
                }
                let ranked = self.deleverage_ranking(instrument, sign, price);
                self.adl_rankings.insert((instrument, sign), ranked.clone());
                queue = ranked.into_iter();
                passes = 1;
                continue;
            };
            if left == 0 {
                break;
            }
            // The ranking is the block's; positions are read as they are now.
            let opposing = self.accounts[counterparty].position(instrument);
            if counterparty == from || opposing.signum() != -sign {
                continue;
            }
            let take = left.min(opposing.abs());
            let share = if take == left {
                charge.micros() - assigned
            } else {
                charge.micros() * i128::from(take) / i128::from(contracts.abs())
            };
            assigned += share;
            let signed = take * contracts.signum();
            self.transfer_position(instrument, from, counterparty, signed, price, events);
            left -= take;
            let equity = self.equity_of(&self.accounts[counterparty]);
            let charged = Money::from_micros(share)
                .min(equity.max(Money::ZERO))
                .max(Money::ZERO);
            if charged.is_positive() {
                let to = match beneficiary {
                    Beneficiary::Account(id) => Pocket::Account(id),
                    Beneficiary::InsuranceFund => Pocket::Fund,
                };
                self.transfer(Pocket::Account(counterparty), to, charged);
                collected = collected
                    .checked_add(charged)
                    .expect("deleveraging collects shares of one deficit (money bounds)");
            }
            events.push(Event::Deleveraged {
                account: from,
                counterparty,
                instrument,
                position: signed,
                price,
                charged,
            });
        }
        assert_eq!(
            left, 0,
            "positions net to zero: the opposing side holds enough"
        );
        collected
    }

    /// Holders of positions opposing a position of sign `sign`, ranked by unrealised profit
    /// times leverage (profit x notional / equity), highest first; ties by account id. The
    /// backstop and accounts without positive equity come last. Computed once per instrument
    /// and side per block (`adl_rankings`), so deleveraging many accounts stays linear.
    fn deleverage_ranking(
        &self,
        instrument: InstrumentId,
        sign: i64,
        price: UnitPrice,
    ) -> Vec<AccountId> {
        let target = &self.instruments[instrument.get() as usize];
        let multiplier = target.spec.multiplier;
        let mut ranked: Vec<(bool, std::cmp::Reverse<i128>, AccountId)> = target
            .holders
            .iter()
            .filter_map(|h| {
                let account = &self.accounts[*h];
                let exposure = account.exposures.get(&instrument)?;
                if exposure.position.signum() != -sign {
                    return None;
                }
                let value = multiplier.value(Qty::from_contracts(exposure.position), price);
                let profit = value.micros() - exposure.cost.micros();
                let notional = value.micros().abs();
                let equity = self.equity_of(account).micros();
                let last = Some(*h) == self.backstop || equity <= 0;
                let score = if last {
                    0
                } else {
                    profit.saturating_mul(notional) / equity
                };
                Some((last, std::cmp::Reverse(score), *h))
            })
            .collect();
        ranked.sort();
        ranked.into_iter().map(|(_, _, h)| h).collect()
    }

    /// The backstop offers `backstop_unwind_bps` of each position to the book.
    fn unwind_backstop(&mut self, params: &LiquidationParams, events: &mut Vec<Event>) {
        let Some(backstop) = self.backstop else {
            return;
        };
        if params.backstop_unwind_bps == 0 {
            return;
        }
        for (instrument, position) in self.positions_of(backstop) {
            let target = &self.instruments[instrument.get() as usize];
            if target.status != InstrumentStatus::Trading
                || target.book.is_halted()
                || !self.oracle_fresh(target.spec.underlying())
                || self.liquidation_throttled(instrument)
            {
                continue;
            }
            let cut = step_size(
                position.abs(),
                target.spec.lot_size.contracts(),
                params.backstop_unwind_bps,
            );
            self.book_reduce(backstop, instrument, cut, events);
        }
    }

    /// Moves the backstop's equity into the insurance fund, so the fund carries its profit and
    /// loss; if the fund is then negative, deleverages the backstop's positions to refill it.
    fn mark_backstop(&mut self, events: &mut Vec<Event>) {
        let Some(backstop) = self.backstop else {
            return;
        };
        let equity = self.equity_of(&self.accounts[backstop]);
        if equity != Money::ZERO {
            self.transfer(Pocket::Account(backstop), Pocket::Fund, equity);
            events.push(Event::InsuranceFundMarked {
                change: equity,
                fund: self.treasury.fund(),
            });
        }
        if self.treasury.fund().is_negative() {
            let positions = self.positions_of(backstop);
            if !positions.is_empty() {
                let deficit = Money::from_micros(-self.treasury.fund().micros());
                self.deleverage_all(
                    backstop,
                    &positions,
                    deficit,
                    Beneficiary::InsuranceFund,
                    events,
                );
            }
        }
    }

    /// The backstop account, if one was opened.
    pub fn backstop(&self) -> Option<AccountId> {
        self.backstop
    }
}

/// `step_bps` of `size` contracts, rounded up to whole lots, at least one lot, at most `size`.
fn step_size(size: i64, lot: i64, step_bps: i64) -> i64 {
    let raw =
        bulwark_types::num::mul_div_ceil(i128::from(size), i128::from(step_bps), i128::from(BPS));
    let lots = (raw + i128::from(lot) - 1) / i128::from(lot);
    let cut = i64::try_from(lots * i128::from(lot)).expect("at most size");
    cut.clamp(lot.min(size), size)
}

#[cfg(test)]
mod tests {
    use super::step_size;

    #[test]
    fn steps_round_up_to_lots_and_never_exceed_the_position() {
        assert_eq!(step_size(100, 1, 2_500), 25);
        assert_eq!(step_size(101, 1, 2_500), 26);
        assert_eq!(step_size(100, 10, 2_500), 30);
        assert_eq!(step_size(3, 1, 2_500), 1);
        assert_eq!(step_size(3, 10, 2_500), 3);
        assert_eq!(step_size(40, 10, 10_000), 40);
    }
}
