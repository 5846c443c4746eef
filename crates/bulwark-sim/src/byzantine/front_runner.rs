//! A leader that sandwiches takers, and liquidation orders that run after its transactions, in the
//! blocks it proposes: it trades ahead of them with its own account and sells (or buys) back
//! to them, worse than the book was.
//!
//! Owns: the wrapped validator's proposals, and the signing key of one funded account (the
//! scenario's `front-runner` agent, which submits nothing itself). In each block the honest
//! application builds:
//! - **A taker.** It takes the first order (perpetual or option) that crosses the book the
//!   block starts from (a limit order through the touch, or a market order, whose limit is
//!   its reach from the mark, `PriceBand::market_reach_bps`) and reads the book as that
//!   taker will meet it (the block's state after the transactions before it: market makers'
//!   cancels and quotes go first). Right before the taker it puts, signed by its account, an
//!   immediate-or-cancel order that takes every level before the one that would fill the
//!   taker, and a resting order of those contracts one tick better than that level (or one
//!   tick inside the taker's limit when no level within it would fill it): the best price the
//!   taker then meets. Right after the taker, a cancel of whatever of its own is left.
//! - **Liquidation orders that run after its transactions.** It applies the block to a copy
//!   of the state; where the liquidation engine's orders traded after the block's
//!   transactions, the levels they met are the book a liquidation order meets, and
//!   `Exchange::liquidation_limit` its limit. At the block's end it puts the same two orders
//!   around the first instrument's liquidation orders (no cancel: the pass runs after every
//!   transaction). By default the pass runs before anything in the block takes liquidity
//!   (`LiquidationParams::before_orders`): then there is nothing to sandwich, and it does
//!   nothing; the lab's `liquidation-first` switch puts the pass after every transaction.
//!
//! It acts only where the edge beats the fees its own orders pay (the exchange's,
//! `Exchange::trade_fees`: an option's on the underlying, capped by the premium). The target
//! pays the attacker's price for contracts it would have traded better; the leader keeps the
//! difference. Every rule a verifier checks holds (the signatures are its own account's, the
//! nonces follow its account's last, the cancel follows a non-cancel of its own signer), so
//! honest validators vote for the block: a leader chooses the order of its block.
//! Never: changes, drops or reorders anyone else's transaction, or trades without a target
//! to sandwich. It does not check the block's transaction limit: in a full block its five
//! transactions would get the proposal refused (the lab's blocks are far from full).

use super::rewriter::{ProposalRewriter, Rewrite, with_body};
use bulwark_exchange::{BlockOutcome, Event};
use bulwark_node::app::ExchangeApp;
use bulwark_node::block::ChainBlock;
use bulwark_node::shared::{Shared, lock};
use bulwark_types::{
    Block, ClientOrderId, InstrumentId, OrderRequest, OrderType, Price, PrivateKey, Qty, Side,
    SignedTx, TimeInForce, TxBody, UnitPrice,
};
use commonware_cryptography::Signer as _;
use rand_core::SeedableRng as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most contracts one sandwich takes (the attacker's margin bounds it too).
pub const SANDWICH_CONTRACTS_MAX: i64 = 1_000;
/// Most price levels of the book a sandwich looks through.
const SANDWICH_LEVELS_MAX: usize = 256;

/// What a [`FrontRunner`] did, for the lab to report.
#[derive(Debug, Default)]
pub struct FrontRunLog {
    /// Sandwiches it put in its proposals.
    sandwiches: AtomicU64,
    /// Contracts its orders ahead of the targets tried to take.
    contracts: AtomicU64,
    /// Of the sandwiches, those around a block's liquidation orders.
    liquidations: AtomicU64,
}

impl FrontRunLog {
    pub fn sandwiches(&self) -> u64 {
        self.sandwiches.load(Ordering::SeqCst)
    }

    pub fn contracts(&self) -> u64 {
        self.contracts.load(Ordering::SeqCst)
    }

    pub fn liquidations(&self) -> u64 {
        self.liquidations.load(Ordering::SeqCst)
    }
}

/// A leader that sandwiches takers through the account of `key` (a [`Rewrite`] role).
#[derive(Clone)]
pub struct FrontRunner {
    shared: Arc<Shared>,
    key: PrivateKey,
    log: Arc<FrontRunLog>,
}

impl FrontRunner {
    /// The wrapper `bulwark_node::engine::start_with` takes.
    pub fn wrapper(
        key: PrivateKey,
        log: Arc<FrontRunLog>,
    ) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> ProposalRewriter<Self> {
        ProposalRewriter::wrapper_with(move |shared| Self { shared, key, log })
    }
}

/// One sandwich: the attacker's transactions' bodies ahead of the taker.
struct Sandwich {
    instrument: InstrumentId,
    ahead: [TxBody; 2],
    contracts: i64,
}

/// What a sandwich is built around: a taker's order, or the liquidation orders the block
/// ends with.
struct Target {
    instrument: InstrumentId,
    side: Side,
    /// Contracts it would take.
    wants: i64,
    /// The worst price it accepts, ticks.
    limit: i64,
}

/// Whether `tx` is an order of someone else's, with its instrument and its limit in ticks (a
/// market order's: as far as the exchange fills it, `Exchange::market_limits`).
fn order_limit<'a, 's>(
    state: &'s bulwark_exchange::Exchange,
    me: &bulwark_types::PublicKey,
    tx: &'a SignedTx,
) -> Option<(&'a OrderRequest, &'s bulwark_exchange::Instrument, i64)> {
    if tx.tx.signer == *me {
        return None;
    }
    let TxBody::PlaceOrder(order) = &tx.tx.body else {
        return None;
    };
    let instrument = state.instrument(order.instrument)?;
    let tick = instrument.spec.tick_size.micros();
    let limit = match (order.order_type, order.side) {
        (OrderType::Limit { price, .. }, _) => price.micros() / tick,
        (OrderType::Market, Side::Buy) => state.market_limits(order.instrument)?.1.ticks(),
        (OrderType::Market, Side::Sell) => state.market_limits(order.instrument)?.0.ticks(),
    };
    Some((order, instrument, limit))
}

pub(super) fn opposite(side: Side) -> Side {
    match side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

/// The sandwich around `target`, meeting `levels` (the opposite side of its book as it will
/// meet them, best first), if it pays. Walking the levels within its limit: the attacker
/// takes every level before the one that would fill what the target still wants, and offers
/// those contracts one tick better than that level (or one tick inside the target's limit, if
/// no level within it would), so the target meets its offer first. It acts only if the edge
/// (its offer against the average price it took at) beats the fees its own orders pay: the
/// taker fee of the order ahead at every level it takes, and the maker fee of its offer.
fn plan(
    state: &bulwark_exchange::Exchange,
    target: &Target,
    levels: impl IntoIterator<Item = (Price, Qty)>,
) -> Option<Sandwich> {
    let instrument = state.instrument(target.instrument)?;
    let tick = instrument.spec.tick_size.micros();
    // Prices in ticks, signed so that lower is better for the target (the map is its own
    // inverse: it turns them back into ticks too).
    let toward = |ticks: i64| match target.side {
        Side::Buy => ticks,
        Side::Sell => -ticks,
    };
    let wants = target.wants.min(SANDWICH_CONTRACTS_MAX);
    let (mut taken, mut cost, mut edge, mut fees) = (0i64, 0i128, None, 0i128);
    // The worst price the attacker's offer may carry: one tick inside the target's limit.
    let mut offer = toward(target.limit) - 1;
    for (price, qty) in levels.into_iter().take(SANDWICH_LEVELS_MAX) {
        let at = toward(price.ticks());
        if at >= offer {
            break;
        }
        if taken + qty.contracts() >= wants {
            // This level would fill the target: offer one tick better than it.
            offer = at - 1;
            break;
        }
        taken += qty.contracts();
        cost += i128::from(at) * i128::from(qty.contracts());
        edge = Some(at);
        fees += state.trade_fees(target.instrument, price, qty)?.0.micros();
    }
    let edge = edge?;
    if offer <= edge || taken <= 0 {
        return None;
    }
    // The gain, (offer - average taken) * taken ticks, in money against the fees.
    let offered = Price::from_ticks(toward(offer));
    fees += state
        .trade_fees(target.instrument, offered, Qty::from_contracts(taken))?
        .1
        .micros();
    let gain =
        (i128::from(offer) * i128::from(taken) - cost) * instrument.spec.tick_value().micros();
    if gain <= fees {
        return None;
    }
    let at = |side, price: i64, tif| {
        TxBody::PlaceOrder(OrderRequest::limit(
            target.instrument,
            ClientOrderId::new(0),
            side,
            Qty::from_contracts(taken),
            UnitPrice::from_micros(toward(price) * tick),
            tif,
        ))
    };
    Some(Sandwich {
        instrument: target.instrument,
        ahead: [
            at(target.side, edge, TimeInForce::ImmediateOrCancel),
            at(opposite(target.side), offer, TimeInForce::GoodTilCancelled),
        ],
        contracts: taken,
    })
}

/// The sandwich around the taker `tx` in `state` (the book as the taker will meet it).
fn plan_taker(
    state: &bulwark_exchange::Exchange,
    me: &bulwark_types::PublicKey,
    tx: &SignedTx,
) -> Option<Sandwich> {
    let (order, instrument, limit) = order_limit(state, me, tx)?;
    let target = Target {
        instrument: order.instrument,
        side: order.side,
        wants: order.qty.contracts(),
        limit,
    };
    let levels = instrument
        .book
        .depth(opposite(order.side), SANDWICH_LEVELS_MAX)
        .into_iter()
        .map(|(price, qty, _)| (price, qty));
    plan(state, &target, levels)
}

/// The sandwich around the first liquidation orders that trade after the transactions of the
/// block whose application gave `outcome` and `after`: the book as they met it is the levels
/// they traded at, then what is left below them.
fn plan_liquidation(
    after: &bulwark_exchange::Exchange,
    outcome: &BlockOutcome,
) -> Option<Sandwich> {
    let events = outcome.liquidation_events();
    let (instrument, side) = events.iter().find_map(|event| match event {
        Event::LiquidationStep {
            instrument,
            side,
            filled,
            ..
        } if filled.contracts() > 0 => Some((*instrument, *side)),
        _ => None,
    })?;
    let wants = events
        .iter()
        .filter_map(|event| match event {
            Event::LiquidationStep {
                instrument: i,
                side: s,
                qty,
                ..
            } if (*i, *s) == (instrument, side) => Some(qty.contracts()),
            _ => None,
        })
        .sum();
    // The levels the liquidation orders traded at, best first, merged by price.
    let mut met: Vec<(Price, Qty)> = Vec::new();
    for event in events {
        if let Event::Trade(trade) = event
            && trade.instrument == instrument
            && trade.taker_side == side
        {
            match met.last_mut() {
                Some((price, qty)) if *price == trade.price => {
                    *qty = Qty::from_contracts(qty.contracts() + trade.qty.contracts());
                }
                _ => met.push((trade.price, trade.qty)),
            }
        }
    }
    let worst = met.last()?.0;
    let below = after
        .instrument(instrument)?
        .book
        .depth(opposite(side), SANDWICH_LEVELS_MAX)
        .into_iter()
        .map(|(price, qty, _)| (price, qty))
        .filter(|(price, _)| match side {
            Side::Sell => *price < worst,
            Side::Buy => *price > worst,
        });
    let target = Target {
        instrument,
        side,
        wants,
        limit: after.liquidation_limit(instrument, side)?.ticks(),
    };
    plan(after, &target, met.into_iter().chain(below))
}

/// Whether `tx` crosses the book of `state`.
fn crosses(
    state: &bulwark_exchange::Exchange,
    me: &bulwark_types::PublicKey,
    tx: &SignedTx,
) -> bool {
    let Some((order, instrument, limit)) = order_limit(state, me, tx) else {
        return false;
    };
    match order.side {
        Side::Buy => instrument
            .book
            .best_ask()
            .is_some_and(|(p, _)| p.ticks() <= limit),
        Side::Sell => instrument
            .book
            .best_bid()
            .is_some_and(|(p, _)| p.ticks() >= limit),
    }
}

/// `body` applied to `state` (every transaction and observation of it verified: an honest
/// proposal's on admission, the attacker's its own).
pub(super) fn apply(state: &mut bulwark_exchange::Exchange, body: Block) -> Option<BlockOutcome> {
    let (txs, observations) = (body.txs.len(), body.observations.len());
    let checked = body.check_signatures_cached(
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
        &vec![true; txs],
        &vec![true; observations],
    );
    state.apply_block(&checked).ok()
}

/// `bodies` signed by `key`, their nonces following `last`; an order's client id is its nonce.
pub(super) fn signed_after(
    key: &PrivateKey,
    last: u64,
    bodies: impl IntoIterator<Item = TxBody>,
) -> Vec<SignedTx> {
    (last + 1..)
        .zip(bodies)
        .map(|(nonce, body)| {
            let body = match body {
                TxBody::PlaceOrder(mut order) => {
                    order.client_order_id = ClientOrderId::new(nonce);
                    TxBody::PlaceOrder(order)
                }
                other => other,
            };
            body.signed(key, nonce)
        })
        .collect()
}

impl FrontRunner {
    /// `body`'s transactions signed by the attacker's account, its nonces following `last`.
    fn sign(&self, last: u64, bodies: impl IntoIterator<Item = TxBody>) -> Vec<SignedTx> {
        signed_after(&self.key, last, bodies)
    }

    fn record(&self, sandwich: &Sandwich, liquidation: bool) {
        self.log.sandwiches.fetch_add(1, Ordering::SeqCst);
        if liquidation {
            self.log.liquidations.fetch_add(1, Ordering::SeqCst);
        }
        self.log
            .contracts
            .fetch_add(sandwich.contracts as u64, Ordering::SeqCst);
    }

    /// `body` with a sandwich around its first taker, if one pays; `start` is the block's
    /// starting state.
    fn around_taker(&self, start: &bulwark_exchange::Exchange, body: &mut Block) -> Option<()> {
        let me = self.key.public_key();
        let taker = body.txs.iter().position(|tx| crosses(start, &me, tx))?;
        let mut prefix = body.clone();
        prefix.txs.truncate(taker);
        let mut state = start.clone();
        apply(&mut state, prefix)?;
        let sandwich = plan_taker(&state, &me, &body.txs[taker])?;
        let [take, offer] = sandwich.ahead.clone();
        let cancel = TxBody::CancelAll {
            instrument: Some(sandwich.instrument),
        };
        let mut signed = self
            .sign(state.nonce_last(&me).unwrap_or(0), [take, offer, cancel])
            .into_iter();
        let rest = body.txs.split_off(taker);
        body.txs.extend(signed.by_ref().take(2));
        let mut rest = rest.into_iter();
        body.txs.extend(rest.next());
        body.txs.extend(signed);
        body.txs.extend(rest);
        self.record(&sandwich, false);
        Some(())
    }

    /// `body` with the attacker's orders at its end sandwiching the first liquidation orders
    /// that run after its transactions, if that pays.
    fn around_liquidation(
        &self,
        start: &bulwark_exchange::Exchange,
        body: &mut Block,
    ) -> Option<()> {
        if start
            .params()
            .liquidation
            .is_none_or(|liquidation| liquidation.before_orders)
        {
            // The pass runs before anything takes liquidity (`LiquidationParams::before_orders`,
            // the default): nothing of the leader's comes ahead of it.
            return None;
        }
        let mut state = start.clone();
        let outcome = apply(&mut state, body.clone())?;
        let sandwich = plan_liquidation(&state, &outcome)?;
        let me = self.key.public_key();
        self.record(&sandwich, true);
        body.txs
            .extend(self.sign(state.nonce_last(&me).unwrap_or(0), sandwich.ahead));
        Some(())
    }
}

impl Rewrite for FrontRunner {
    /// `honest` with a sandwich around its first taker (an order that crosses the book the
    /// block starts from), if it pays in the book as that taker will meet it (the block's
    /// state after the transactions before it: market makers' cancels and quotes go first),
    /// and its orders at the block's end around liquidation orders that run after the block's
    /// transactions.
    fn rewrite(&self, honest: &ChainBlock, _parent: Option<&ChainBlock>) -> Option<ChainBlock> {
        let me = self.key.public_key();
        let start = {
            let chain = lock(&self.shared.chain);
            let state = chain.state_after(&honest.parent)?;
            // Its account must pay in the block's starting state, or the block is refused.
            bulwark_node::shared::payer_of(state, &me).ok()?;
            state.clone()
        };
        let mut body = honest.body.clone();
        let taker = self.around_taker(&start, &mut body).is_some();
        let liquidation = self.around_liquidation(&start, &mut body).is_some();
        (taker || liquidation).then(|| with_body(honest, body, None))
    }
}
