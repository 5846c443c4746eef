//! A leader that sandwiches a taker in the blocks it proposes: it trades ahead of a crossing
//! order with its own account and sells (or buys) back to it, worse than the book was.
//!
//! Owns: the wrapped validator's proposals, and the signing key of one funded account (the
//! scenario's `front-runner` agent, which submits nothing itself). In each block the honest
//! application builds, it takes the first order (perpetual or option) that crosses the book
//! the block starts from (a limit order through the touch, or a market order, whose limit is
//! its reach from the mark, `PriceBand::market_reach_bps`) and reads the book as that taker will meet it (the block's state
//! after the transactions before it: market makers' cancels and quotes go first). Right
//! before the taker it puts, signed by its account, an immediate-or-cancel order that takes
//! every level before the one that would fill the taker, and a resting order of those
//! contracts one tick better than that level (or one tick inside the taker's limit when no
//! level within it would fill it): the best price the taker then meets. Right after the
//! taker, a cancel of whatever of its own is left. It acts only where the edge beats the
//! fees its own orders pay (the exchange's, `Exchange::trade_fees`: an option's on the
//! underlying, capped by the premium). The taker pays the attacker's price for contracts it would
//! have bought cheaper; the leader keeps the difference. Every rule a verifier checks holds
//! (the signatures are its own account's, the nonces follow its account's last, the cancel
//! follows a non-cancel of its own signer), so honest validators vote for the block: a
//! leader chooses the order of its block.
//! Never: changes, drops or reorders anyone else's transaction, or trades without a taker to
//! sandwich. It does not check the block's transaction limit: in a full block its three
//! transactions would get the proposal refused (the lab's blocks are far from full).

use super::rewriter::{ProposalRewriter, Rewrite, with_body};
use bulwark_node::app::ExchangeApp;
use bulwark_node::block::ChainBlock;
use bulwark_node::shared::{Shared, lock};
use bulwark_types::{
    ClientOrderId, OrderRequest, OrderType, Price, PrivateKey, Qty, Side, SignedTx, TimeInForce,
    TxBody, UnitPrice,
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
    /// Blocks it proposed with a sandwich in them.
    sandwiches: AtomicU64,
    /// Contracts its orders ahead of the takers tried to take.
    contracts: AtomicU64,
}

impl FrontRunLog {
    pub fn sandwiches(&self) -> u64 {
        self.sandwiches.load(Ordering::SeqCst)
    }

    pub fn contracts(&self) -> u64 {
        self.contracts.load(Ordering::SeqCst)
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

/// One sandwich: the attacker's transactions' bodies ahead of the taker and after it.
struct Sandwich {
    ahead: [TxBody; 2],
    after: TxBody,
    contracts: i64,
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

/// The sandwich around `tx` in `state` (the book as the taker will meet it), if it pays.
/// Walking the levels the taker would meet, best first, within its limit: the attacker takes
/// every level before the one that would fill what the taker still wants, and offers those
/// contracts one tick better than that level (or one tick inside the taker's limit, if no
/// level within it would), so the taker meets its offer first. It acts only if the edge (its
/// offer against the average price it took at) beats the fees its own orders pay: the taker
/// fee of the order ahead at every level it takes, and the maker fee of its offer.
fn plan(
    state: &bulwark_exchange::Exchange,
    me: &bulwark_types::PublicKey,
    tx: &SignedTx,
) -> Option<Sandwich> {
    let (order, instrument, limit) = order_limit(state, me, tx)?;
    let (book, tick) = (&instrument.book, instrument.spec.tick_size.micros());
    let opposite = match order.side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    };
    // Prices in ticks, signed so that lower is better for the taker (the map is its own
    // inverse: it turns them back into ticks too).
    let toward = |ticks: i64| match order.side {
        Side::Buy => ticks,
        Side::Sell => -ticks,
    };
    let wants = order.qty.contracts().min(SANDWICH_CONTRACTS_MAX);
    let (mut taken, mut cost, mut edge, mut fees) = (0i64, 0i128, None, 0i128);
    // The worst price the attacker's offer may carry: one tick inside the taker's limit.
    let mut offer = toward(limit) - 1;
    for (price, qty, _) in book.depth(opposite, SANDWICH_LEVELS_MAX) {
        let at = toward(price.ticks());
        if at >= offer {
            break;
        }
        if taken + qty.contracts() >= wants {
            // This level would fill the taker: offer one tick better than it.
            offer = at - 1;
            break;
        }
        taken += qty.contracts();
        cost += i128::from(at) * i128::from(qty.contracts());
        edge = Some(at);
        fees += state.trade_fees(order.instrument, price, qty)?.0.micros();
    }
    let edge = edge?;
    if offer <= edge || taken <= 0 {
        return None;
    }
    // The gain, (offer - average taken) * taken ticks, in money against the fees.
    let offered = Price::from_ticks(toward(offer));
    fees += state
        .trade_fees(order.instrument, offered, Qty::from_contracts(taken))?
        .1
        .micros();
    let gain =
        (i128::from(offer) * i128::from(taken) - cost) * instrument.spec.tick_value().micros();
    if gain <= fees {
        return None;
    }
    let at = |side, price: i64, tif| {
        TxBody::PlaceOrder(OrderRequest::limit(
            order.instrument,
            ClientOrderId::new(0),
            side,
            Qty::from_contracts(taken),
            UnitPrice::from_micros(toward(price) * tick),
            tif,
        ))
    };
    Some(Sandwich {
        ahead: [
            at(order.side, edge, TimeInForce::ImmediateOrCancel),
            at(opposite, offer, TimeInForce::GoodTilCancelled),
        ],
        after: TxBody::CancelAll {
            instrument: Some(order.instrument),
        },
        contracts: taken,
    })
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

impl Rewrite for FrontRunner {
    /// `honest` with a sandwich around its first taker (an order that crosses the book the
    /// block starts from), if it pays in the book as that taker will meet it (the block's
    /// state after the transactions before it: market makers' cancels and quotes go first).
    fn rewrite(&self, honest: &ChainBlock, _parent: Option<&ChainBlock>) -> Option<ChainBlock> {
        let me = self.key.public_key();
        let (taker, mut state) = {
            let chain = lock(&self.shared.chain);
            let state = chain.state_after(&honest.parent)?;
            // Its account must pay in the block's starting state, or the block is refused.
            bulwark_node::shared::payer_of(state, &me).ok()?;
            let taker = honest
                .body
                .txs
                .iter()
                .position(|tx| crosses(state, &me, tx))?;
            (taker, state.clone())
        };
        let mut prefix = honest.body.clone();
        prefix.txs.truncate(taker);
        let (txs, observations) = (prefix.txs.len(), prefix.observations.len());
        // Every transaction and observation of an honest proposal verified on admission.
        let checked = prefix.check_signatures_cached(
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
            &vec![true; txs],
            &vec![true; observations],
        );
        state.apply_block(&checked).ok()?;
        let sandwich = plan(&state, &me, &honest.body.txs[taker])?;
        let mut nonce = state.nonce_last(&me).unwrap_or(0);
        let mut sign = |body: TxBody| {
            nonce += 1;
            let body = match body {
                TxBody::PlaceOrder(mut order) => {
                    order.client_order_id = ClientOrderId::new(nonce);
                    TxBody::PlaceOrder(order)
                }
                other => other,
            };
            body.signed(&self.key, nonce)
        };
        let [take, offer] = sandwich.ahead;
        let (take, offer) = (sign(take), sign(offer));
        let cancel = sign(sandwich.after);
        let mut body = honest.body.clone();
        let rest = body.txs.split_off(taker);
        body.txs.extend([take, offer]);
        let mut rest = rest.into_iter();
        body.txs.extend(rest.next());
        body.txs.push(cancel);
        body.txs.extend(rest);
        self.log.sandwiches.fetch_add(1, Ordering::SeqCst);
        self.log
            .contracts
            .fetch_add(sandwich.contracts as u64, Ordering::SeqCst);
        Some(with_body(honest, body, None))
    }
}
