//! A leader that sandwiches a taker in the blocks it proposes: it trades ahead of a crossing
//! order with its own account and sells (or buys) back to it at the taker's limit.
//!
//! Owns: the wrapped validator's proposals, and the signing key of one funded account (the
//! scenario's `front-runner` agent, which submits nothing itself). In each block the honest
//! application builds, it looks for the first perpetual order that crosses the book the block
//! starts from (a buy at or above the best ask, or a sell at or below the best bid) whose
//! limit leaves room: the contracts resting strictly better than one tick inside the taker's
//! limit are fewer than the taker wants. Right before that order it puts, signed by its
//! account, an immediate-or-cancel order that takes those contracts, and a resting order of
//! the same size one tick inside the taker's limit, which is then the best price the taker
//! meets; right after the taker, a cancel of whatever of its own is left. The taker pays one
//! tick inside its limit for contracts it would have bought cheaper; the leader keeps the
//! difference. Every rule a verifier checks holds (the signatures are its own account's, the
//! nonces follow its account's last, the cancel follows a non-cancel of its own signer), so
//! honest validators vote for the block: a leader chooses the order of its block.
//! Never: changes, drops or reorders anyone else's transaction, or trades without a taker to
//! sandwich.

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

/// Whether `tx` is a perpetual limit order of someone else's.
fn perpetual_limit<'a>(
    state: &bulwark_exchange::Exchange,
    me: &bulwark_types::PublicKey,
    tx: &'a SignedTx,
) -> Option<(&'a OrderRequest, i64, i64)> {
    if tx.tx.signer == *me {
        return None;
    }
    let TxBody::PlaceOrder(order) = &tx.tx.body else {
        return None;
    };
    let OrderType::Limit { price, .. } = order.order_type else {
        return None;
    };
    let instrument = state.instrument(order.instrument)?;
    if instrument.is_option() {
        return None;
    }
    let tick = instrument.spec.tick_size.micros();
    Some((order, price.micros() / tick, tick))
}

/// The sandwich around `tx` in `state` (the book as the taker will meet it), if it pays:
/// the taker crosses, and fewer contracts rest strictly better than one tick inside its
/// limit than it wants.
fn plan(
    state: &bulwark_exchange::Exchange,
    me: &bulwark_types::PublicKey,
    tx: &SignedTx,
) -> Option<Sandwich> {
    let (order, limit, tick) = perpetual_limit(state, me, tx)?;
    let book = &state.instrument(order.instrument)?.book;
    // One tick inside the taker's limit: the price the taker will meet. `edge`: one tick
    // better still, the worst price the attacker takes.
    let (inside, edge, opposite) = match order.side {
        Side::Buy => (limit - 1, limit - 2, Side::Sell),
        Side::Sell => (limit + 1, limit + 2, Side::Buy),
    };
    if edge <= 0 {
        return None;
    }
    let better = book.qty_within(opposite, Price::from_ticks(edge));
    let wants = order.qty.contracts();
    if better <= 0 || better >= wants || better > SANDWICH_CONTRACTS_MAX {
        return None;
    }
    let at = |side, ticks: i64, tif| {
        TxBody::PlaceOrder(OrderRequest::limit(
            order.instrument,
            ClientOrderId::new(0),
            side,
            Qty::from_contracts(better),
            UnitPrice::from_micros(ticks * tick),
            tif,
        ))
    };
    Some(Sandwich {
        ahead: [
            at(order.side, edge, TimeInForce::ImmediateOrCancel),
            at(opposite, inside, TimeInForce::GoodTilCancelled),
        ],
        after: TxBody::CancelAll {
            instrument: Some(order.instrument),
        },
        contracts: better,
    })
}

/// Whether `tx` crosses the book of `state`.
fn crosses(
    state: &bulwark_exchange::Exchange,
    me: &bulwark_types::PublicKey,
    tx: &SignedTx,
) -> bool {
    let Some((order, limit, _)) = perpetual_limit(state, me, tx) else {
        return false;
    };
    let Some(instrument) = state.instrument(order.instrument) else {
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
