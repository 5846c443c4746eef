//! A leader that picks off market makers' stale quotes: when the index a block it proposes sets
//! has moved past quotes still resting, it leaves out the transactions of every signer whose
//! cancels lead the block (their cancels and new quotes wait for the next leader) and takes
//! the stale quotes with its own account, first thing after the leading cancels it kept.
//!
//! Owns: the wrapped validator's proposals, and the signing key of one funded account (the
//! scenario's `front-runner` agent, which submits nothing itself). In each block the honest
//! application builds, it applies the block to a copy of the state to learn the index the
//! block sets (the block's observations move the index), then, without the held-back
//! signers' transactions, walks the book the block would meet: every level beyond the new
//! index (bids above it, asks below it) whose edge against the index beats the taker fee is
//! taken with one immediate-or-cancel order, up to [`SNIPE_CONTRACTS_MAX`]. In a block with
//! nothing to take it unwinds what it holds with an immediate-or-cancel order within
//! [`UNWIND_REACH_BPS`] of the mark, so its profit is realized rather than carried.
//! Every rule a verifier checks holds: a leader may leave transactions out (the next leader
//! includes them), its order follows the leading cancels it kept, and its nonces follow its
//! account's. What stops it is the exchange: a perpetual's resting quote that the index's
//! recent move has left more than `PriceBand::stale_quote_bps` behind is cancelled before
//! anything in the block trades (`Exchange::cancel_stale_quotes`; the lab's `stale-quotes`),
//! so it takes only quotes within that of the index. A verifier's rule that refuses a block
//! leaving out a cancel the verifier has held was tried and stalls the chain: verifiers hold
//! different cancels, and under deferred verification a notarized block that some honest
//! validators certify and others refuse can be neither finalized nor skipped
//! (`crates/bulwark-sim/README.md`, "quote-sniper").
//! With `withhold_observations` it also leaves every other validator's observation out of
//! the blocks it snipes in: below the oracle's quorum the block leaves the index where it
//! was, the stale-quote rule has no move to act on, and it takes what the index it held back
//! has left behind (`quote-sniper-frozen-index`, a residual the rule does not stop: which
//! observations a leader has received is its own knowledge, so no rule of the state can make
//! its block carry the newest).
//! Never: changes or reorders anyone's transaction, or leaves anything out of a block it does
//! not trade in (observations included).

use super::front_runner::{apply, opposite, signed_after};
use super::rewriter::{ProposalRewriter, Rewrite, with_body};
use super::withholder::only_own;
use bulwark_exchange::Exchange;
use bulwark_node::app::ExchangeApp;
use bulwark_node::block::ChainBlock;
use bulwark_node::shared::{Shared, lock};
use bulwark_types::{
    ClientOrderId, InstrumentId, OrderRequest, Price, PrivateKey, PublicKey, Qty, Side, SignedTx,
    TimeInForce, TxBody, UnitPrice,
};
use commonware_cryptography::Signer as _;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Most contracts one snipe takes (the attacker's margin bounds it too).
pub const SNIPE_CONTRACTS_MAX: i64 = 1_000;
/// Most price levels of the book a snipe looks through.
const SNIPE_LEVELS_MAX: usize = 64;
/// How far from the mark the sniper pays to unwind: 0.5%.
pub const UNWIND_REACH_BPS: i64 = 50;

/// What a [`QuoteSniper`] did, for the lab to report.
#[derive(Debug, Default)]
pub struct SnipeLog {
    /// Blocks in which it took stale quotes.
    snipes: AtomicU64,
    /// Contracts its snipes tried to take.
    contracts: AtomicU64,
    /// Transactions of other signers it left out of those blocks.
    held_back: AtomicU64,
    /// Edge of the snipes against the index the block set, micro-USDC, before fees: what the
    /// makers whose quotes it took lost against that index.
    edge_micros: AtomicI64,
    /// Other validators' observations it left out of the blocks it sniped in.
    observations_withheld: AtomicU64,
}

impl SnipeLog {
    pub fn snipes(&self) -> u64 {
        self.snipes.load(Ordering::SeqCst)
    }

    pub fn contracts(&self) -> u64 {
        self.contracts.load(Ordering::SeqCst)
    }

    pub fn held_back(&self) -> u64 {
        self.held_back.load(Ordering::SeqCst)
    }

    pub fn observations_withheld(&self) -> u64 {
        self.observations_withheld.load(Ordering::SeqCst)
    }

    /// [`SnipeLog::edge_micros`] in whole USDC.
    pub fn edge_usdc(&self) -> i64 {
        self.edge_micros.load(Ordering::SeqCst) / 1_000_000
    }
}

/// A leader that snipes stale quotes through the account of `key` (a [`Rewrite`] role).
#[derive(Clone)]
pub struct QuoteSniper {
    shared: Arc<Shared>,
    key: PrivateKey,
    /// Whether the blocks it snipes in carry only its own observations (the index stays).
    withhold_observations: bool,
    log: Arc<SnipeLog>,
}

impl QuoteSniper {
    /// The wrapper `bulwark_node::engine::start_with` takes; with `withhold_observations`, the
    /// blocks it snipes in carry only its own observations.
    pub fn wrapper(
        key: PrivateKey,
        withhold_observations: bool,
        log: Arc<SnipeLog>,
    ) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> ProposalRewriter<Self> {
        ProposalRewriter::wrapper_with(move |shared| Self {
            shared,
            key,
            withhold_observations,
            log,
        })
    }
}

/// One snipe: the side the attacker takes, its limit, and the contracts and edge it expects.
struct Snipe {
    instrument: InstrumentId,
    side: Side,
    limit: Price,
    contracts: i64,
    edge_micros: i128,
}

/// The stale quotes of `instrument` in `book_state` against `index` (ticks) that pay their
/// taker fee, taken from the best: bids above the index (the attacker sells) or asks below it
/// (it buys), whichever side is stale.
fn plan(book_state: &Exchange, instrument: InstrumentId, index: i64) -> Option<Snipe> {
    let spec = &book_state.instrument(instrument)?.spec;
    let tick_value = spec.tick_value().micros();
    let book = &book_state.instrument(instrument)?.book;
    for side in [Side::Sell, Side::Buy] {
        let beyond = |price: i64| match side {
            Side::Sell => price - index,
            Side::Buy => index - price,
        };
        let (mut contracts, mut edge, mut limit) = (0i64, 0i128, None);
        for (price, qty, _) in book.depth(opposite(side), SNIPE_LEVELS_MAX) {
            let ticks = beyond(price.ticks());
            if ticks <= 0 || contracts >= SNIPE_CONTRACTS_MAX {
                break;
            }
            let qty = qty.contracts().min(SNIPE_CONTRACTS_MAX - contracts);
            let gain = i128::from(ticks) * i128::from(qty) * tick_value;
            let fee = book_state
                .trade_fees(instrument, price, Qty::from_contracts(qty))?
                .1
                .micros();
            if gain <= fee {
                break;
            }
            contracts += qty;
            edge += gain;
            limit = Some(price);
        }
        if let Some(limit) = limit {
            return Some(Snipe {
                instrument,
                side,
                limit,
                contracts,
                edge_micros: edge,
            });
        }
    }
    None
}

fn order(instrument: InstrumentId, side: Side, contracts: i64, price: UnitPrice) -> TxBody {
    TxBody::PlaceOrder(OrderRequest::limit(
        instrument,
        ClientOrderId::new(0),
        side,
        Qty::from_contracts(contracts),
        price,
        TimeInForce::ImmediateOrCancel,
    ))
}

impl QuoteSniper {
    /// `body` signed by the attacker's account, its nonce following `last`.
    fn sign(&self, last: u64, body: TxBody) -> SignedTx {
        signed_after(&self.key, last, [body])
            .pop()
            .expect("one body, one transaction")
    }

    /// An order closing what the attacker holds in the first instrument where it holds
    /// anything, within [`UNWIND_REACH_BPS`] of the mark of `state`.
    fn unwind(&self, state: &Exchange, me: &PublicKey) -> Option<TxBody> {
        let (account, _) = state.key_binding(me)?;
        let account = state.account(account)?;
        state.instruments().iter().find_map(|instrument| {
            let held = account.position(instrument.id);
            let mark = instrument.mark?.micros();
            let tick = instrument.spec.tick_size.micros();
            let reach = mark * UNWIND_REACH_BPS / 10_000;
            let (side, price) = match held {
                0 => return None,
                h if h > 0 => (Side::Sell, (mark - reach) / tick * tick),
                _ => (Side::Buy, (mark + reach + tick - 1) / tick * tick),
            };
            Some(order(
                instrument.id,
                side,
                held.abs(),
                UnitPrice::from_micros(price),
            ))
        })
    }
}

impl Rewrite for QuoteSniper {
    /// `honest` without the transactions of the signers whose cancels lead it and with the
    /// attacker's order taking the quotes beyond the index the block sets, if that pays;
    /// otherwise `honest` with an order unwinding the attacker's position, if it holds one.
    fn rewrite(&self, honest: &ChainBlock, _parent: Option<&ChainBlock>) -> Option<ChainBlock> {
        let me = self.key.public_key();
        let start = {
            let chain = lock(&self.shared.chain);
            let state = chain.state_after(&honest.parent)?;
            // Its account must pay in the block's starting state, or the block is refused.
            bulwark_node::shared::payer_of(state, &me).ok()?;
            state.clone()
        };
        let last = start.nonce_last(&me).unwrap_or(0);
        // The index this block sets: its observations move it.
        let mut after = start.clone();
        apply(&mut after, honest.body.clone())?;
        let leading = honest
            .body
            .txs
            .iter()
            .take_while(|tx| tx.tx.body.is_cancel());
        let held: BTreeSet<&PublicKey> = leading
            .map(|tx| &tx.tx.signer)
            .filter(|signer| **signer != me)
            .collect();
        let mut body = honest.body.clone();
        body.txs.retain(|tx| !held.contains(&tx.tx.signer));
        let kept_leading = body
            .txs
            .iter()
            .take_while(|tx| tx.tx.body.is_cancel())
            .count();
        // The book the attacker's order meets: the block's start after the cancels it kept.
        let mut prefix = body.clone();
        prefix.txs.truncate(kept_leading);
        prefix.observations.clear();
        let mut book_state = start.clone();
        apply(&mut book_state, prefix)?;
        let snipe = after.instruments().iter().find_map(|instrument| {
            let index = after.index_price(instrument.spec.underlying())?;
            plan(
                &book_state,
                instrument.id,
                index.micros() / instrument.spec.tick_size.micros(),
            )
        });
        let Some(snipe) = snipe else {
            let unwind = self.unwind(&start, &me)?;
            let mut body = honest.body.clone();
            let at = body
                .txs
                .iter()
                .take_while(|tx| tx.tx.body.is_cancel())
                .count();
            body.txs.insert(at, self.sign(last, unwind));
            return Some(with_body(honest, body, None));
        };
        let take = order(
            snipe.instrument,
            snipe.side,
            snipe.contracts,
            UnitPrice::from_micros(
                snipe.limit.ticks()
                    * book_state
                        .instrument(snipe.instrument)?
                        .spec
                        .tick_size
                        .micros(),
            ),
        );
        body.txs.insert(kept_leading, self.sign(last, take));
        if self.withhold_observations {
            // Below the oracle's quorum the block leaves the index where it was: nothing has
            // moved for the stale-quote rule, and the take is judged against the index the
            // honest block would have set, which the next block's observations bring.
            let all = body.observations.len();
            body.observations = only_own(&body.observations, &honest.context.leader);
            self.log
                .observations_withheld
                .fetch_add((all - body.observations.len()) as u64, Ordering::SeqCst);
        }
        self.log.snipes.fetch_add(1, Ordering::SeqCst);
        self.log
            .contracts
            .fetch_add(snipe.contracts as u64, Ordering::SeqCst);
        self.log.held_back.fetch_add(
            (honest.body.txs.len() + 1 - body.txs.len()) as u64,
            Ordering::SeqCst,
        );
        self.log.edge_micros.fetch_add(
            i64::try_from(snipe.edge_micros).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
        Some(with_body(honest, body, None))
    }
}
