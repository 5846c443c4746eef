//! The devnet's traders: market makers that quote both sides around the mark of every
//! instrument, and takers that now and then cross the spread with immediate-or-cancel orders.
//!
//! Owns: each bot's key, nonce and client order ids, and the loop that reads the finalized
//! state (marks, best prices), signs transactions and submits them to a validator's mempool
//! through `Shared::submit`, exactly as the API does. Bots hold no lock across an `.await`.
//! Bounds: a bot skips its turn while more than `PENDING_MAX` of its transactions wait in the
//! mempool (a stalled chain does not make it pile up transactions).

use bulwark_exchange::{Exchange, InstrumentStatus};
use bulwark_node::shared::{Shared, lock};
use bulwark_types::{
    ClientOrderId, InstrumentId, InstrumentKind, Nonce, OrderRequest, OrderType, PrivateKey, Qty,
    SelfTradePrevention, Side, SignedTx, TimeInForce, Tx, TxBody, UnitPrice,
};
use commonware_cryptography::Signer;
use commonware_runtime::{Clock, tokio};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::sync::Arc;
use std::time::Duration;

/// A bot waits while this many of its transactions are pending: below the mempool's
/// per-signer bound (256), less a market maker's turn (about 80).
const PENDING_MAX: u64 = 150;

/// What a bot does each turn.
#[derive(Copy, Clone, Debug)]
pub enum Strategy {
    /// Cancels its quotes and quotes every trading instrument again: a bid and an ask at
    /// `spread_bps` (options: `option_spread_bps`) around the mark, `size_max` contracts at most.
    MarketMaker {
        spread_bps: i64,
        option_spread_bps: i64,
        size_max: i64,
    },
    /// Crosses the spread on one random instrument with an immediate-or-cancel order.
    Taker { size_max: i64 },
}

/// One trading bot.
pub struct Bot {
    pub name: String,
    key: PrivateKey,
    strategy: Strategy,
    interval: Duration,
    nonce: u64,
    client_order_id: u64,
    rng: ChaCha8Rng,
}

/// A quotable instrument as the bot sees it.
struct Quote {
    id: InstrumentId,
    option: bool,
    tick: i64,
    mark: i64,
    best_bid: Option<i64>,
    best_ask: Option<i64>,
}

fn quotes(state: &Exchange) -> Vec<Quote> {
    state
        .instruments()
        .iter()
        .filter(|i| i.status == InstrumentStatus::Trading)
        .filter(|i| !matches!(i.kind, InstrumentKind::Option { expiry_ms, .. } if expiry_ms <= state.time().millis() + 60_000))
        .filter_map(|i| {
            let tick = i.spec.tick_size.micros();
            Some(Quote {
                id: i.id,
                option: i.is_option(),
                tick,
                mark: i.mark?.micros(),
                best_bid: i.book.best_bid().map(|(p, _)| p.ticks()),
                best_ask: i.book.best_ask().map(|(p, _)| p.ticks()),
            })
        })
        .collect()
}

impl Bot {
    pub fn new(
        name: String,
        key: PrivateKey,
        strategy: Strategy,
        interval: Duration,
        seed: u64,
    ) -> Self {
        Self {
            name,
            key,
            strategy,
            interval,
            nonce: 0,
            client_order_id: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn sign(&mut self, body: TxBody) -> SignedTx {
        self.nonce += 1;
        Tx {
            signer: self.key.public_key(),
            nonce: Nonce::new(self.nonce),
            body,
        }
        .sign(&self.key)
    }

    fn limit(
        &mut self,
        instrument: InstrumentId,
        side: Side,
        price: i64,
        qty: i64,
        time_in_force: TimeInForce,
    ) -> TxBody {
        self.client_order_id += 1;
        TxBody::PlaceOrder(OrderRequest {
            instrument,
            client_order_id: ClientOrderId::new(self.client_order_id),
            side,
            qty: Qty::from_contracts(qty),
            order_type: OrderType::Limit {
                price: UnitPrice::from_micros(price),
                time_in_force,
                post_only: false,
            },
            reduce_only: false,
            self_trade: SelfTradePrevention::CancelMaker,
        })
    }

    /// The transactions of one turn, from the finalized state.
    fn turn(&mut self, quotes: &[Quote]) -> Vec<TxBody> {
        match self.strategy {
            Strategy::MarketMaker {
                spread_bps,
                option_spread_bps,
                size_max,
            } => {
                let mut bodies = vec![TxBody::CancelAll { instrument: None }];
                for q in quotes {
                    let spread = if q.option {
                        option_spread_bps
                    } else {
                        spread_bps
                    };
                    // Jitter the half-spread by up to a half so the makers' quotes interleave.
                    let half = q.mark * spread / 20_000 * (10 + self.rng.random_range(0..6)) / 10;
                    let bid = (q.mark - half) / q.tick;
                    let ask = ((q.mark + half + q.tick - 1) / q.tick).max(bid + 1);
                    if bid >= 1 {
                        let qty = self.rng.random_range(1..=size_max);
                        bodies.push(self.limit(
                            q.id,
                            Side::Buy,
                            bid * q.tick,
                            qty,
                            TimeInForce::GoodTilCancelled,
                        ));
                    }
                    let qty = self.rng.random_range(1..=size_max);
                    bodies.push(self.limit(
                        q.id,
                        Side::Sell,
                        ask * q.tick,
                        qty,
                        TimeInForce::GoodTilCancelled,
                    ));
                }
                bodies
            }
            Strategy::Taker { size_max } => {
                if quotes.is_empty() {
                    return Vec::new();
                }
                // The perpetual half the time, else any option.
                let q = if self.rng.random_bool(0.5) {
                    &quotes[0]
                } else {
                    &quotes[self.rng.random_range(0..quotes.len())]
                };
                let side = if self.rng.random_bool(0.5) {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let price = match side {
                    Side::Buy => q.best_ask,
                    Side::Sell => q.best_bid,
                };
                let Some(price) = price else {
                    return Vec::new();
                };
                let qty = self.rng.random_range(1..=size_max);
                let (id, tick) = (q.id, q.tick);
                vec![self.limit(id, side, price * tick, qty, TimeInForce::ImmediateOrCancel)]
            }
        }
    }

    /// Trades through `shared` until the task is aborted.
    pub async fn run(mut self, context: tokio::Context, shared: Arc<Shared>) {
        let me = self.key.public_key();
        loop {
            let jitter = self
                .rng
                .random_range(0..=self.interval.as_millis() as u64 / 2);
            context
                .sleep(self.interval + Duration::from_millis(jitter))
                .await;
            let (quotes, nonce_last, pending_max) = {
                // Published views: a bot never takes the chain's lock consensus needs.
                let finalized = shared.finalized_view();
                let state = &*finalized.state;
                let nonce_last = shared
                    .newest_view()
                    .nonce_last(&me)
                    .max(state.nonce_last(&me))
                    .unwrap_or(0);
                let pending = lock(&shared.mempool).nonce_max(&me).unwrap_or(0);
                (quotes(state), nonce_last, pending)
            };
            if lock(&shared.status).halted.is_some() {
                continue;
            }
            if pending_max > nonce_last + PENDING_MAX {
                continue;
            }
            // Never reuse a nonce the chain or the mempool already holds (after a restart the
            // bot starts from zero and catches up here).
            self.nonce = self.nonce.max(nonce_last).max(pending_max);
            let bodies = self.turn(&quotes);
            if bodies.is_empty() {
                continue;
            }
            let txs: Vec<SignedTx> = bodies.into_iter().map(|b| self.sign(b)).collect();
            let results = shared.submit(txs, &mut rand::rng(), true);
            if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
                tracing::debug!(bot = %self.name, %error, "mempool refused a bot transaction");
            }
        }
    }
}
