//! The exchange workload: signed transactions for `apply_block`, with margin checks on every
//! order, and the timed run that measures it.
//!
//! A genesis lists the BTC perpetual and options on two expiries, a call and a put at each of
//! `option_strikes` strikes (two: eight options); `accounts` traders are funded; then
//! blocks of `txs_per_block` transactions follow in the matching workload's mix: 70% passive
//! limit orders near the mark, 25% cancels of the trader's own resting orders (by client order
//! id), 5% immediate-or-cancel orders that cross. 60% of orders go to the perpetual.
//! Signatures are checked before timing: the figure is execution alone.

use bulwark_exchange::{BlockOutcome, Exchange, ExchangeParams, Genesis};
use bulwark_types::{
    AssetCode, Block, BlockTime, CheckedBlock, ClientOrderId, IndexPrice, InstrumentId,
    InstrumentName, InstrumentSpec, MarkPrice, Money, Multiplier, OrderRef, OrderRequest,
    PriceInputs, PrivateKey, PublicKey, Qty, Side, TimeInForce, TxBody, UnitPrice,
};
use commonware_cryptography::Signer;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::time::{Duration, Instant};

/// 2026-11-24T00:00:00Z.
const START_MS: u64 = 1_795_478_400_000;
const INDEX_USDC: i64 = 100_000;

/// Shape of an exchange workload.
#[derive(Copy, Clone, Debug)]
pub struct ExchangeWorkloadConfig {
    pub seed: u64,
    pub accounts: usize,
    pub txs_per_block: usize,
    pub blocks: usize,
    /// Strikes listed per expiry, 1 to 100, spread evenly about the index (2: 95,000 and
    /// 105,000).
    pub option_strikes: usize,
}

/// Blocks ready to apply: the setup (listings, deposits) and the timed trading blocks.
pub struct ExchangeWorkload {
    pub genesis: Genesis,
    pub setup: Vec<CheckedBlock>,
    pub trading: Vec<CheckedBlock>,
}

struct Trader {
    key: PrivateKey,
    nonce: u64,
    next_client: u64,
    /// Client order ids of this trader's resting orders, as the shadow exchange reports them.
    resting: Vec<(InstrumentId, ClientOrderId)>,
}

fn instruments(strikes: usize) -> Vec<InstrumentSpec> {
    assert!((1..=100).contains(&strikes), "1 to 100 strikes");
    let step = 10_000 / strikes as i64;
    let mut specs = vec![InstrumentSpec {
        name: InstrumentName::parse("BTC_USDC-PERPETUAL").expect("valid name"),
        tick_size: UnitPrice::from_micros(500_000),
        multiplier: Multiplier::from_e8(100_000),
        lot_size: Qty::from_contracts(1),
        size_min: Qty::from_contracts(1),
    }];
    for expiry in ["25DEC26", "26MAR27"] {
        for k in 0..strikes as i64 {
            let strike = INDEX_USDC + (2 * k - (strikes as i64 - 1)) * step;
            for right in ["C", "P"] {
                specs.push(InstrumentSpec {
                    name: InstrumentName::parse(&format!("BTC_USDC-{expiry}-{strike}-{right}"))
                        .expect("valid name"),
                    tick_size: UnitPrice::from_usdc(5),
                    multiplier: Multiplier::from_e8(1_000_000),
                    lot_size: Qty::from_contracts(1),
                    size_min: Qty::from_contracts(1),
                });
            }
        }
    }
    specs
}

/// Mark of instrument `index` in whole USDC: the index for the perpetual, a flat 4,000 plus
/// intrinsic value for options (a plausible smile is not needed to exercise margin).
fn mark_usdc(spec: &InstrumentSpec) -> i64 {
    match spec.kind() {
        bulwark_types::InstrumentKind::Perpetual => INDEX_USDC,
        bulwark_types::InstrumentKind::Option { strike, right, .. } => {
            let strike = strike.micros() / 1_000_000;
            let intrinsic = match right {
                bulwark_types::Right::Call => (INDEX_USDC - strike).max(0),
                bulwark_types::Right::Put => (strike - INDEX_USDC).max(0),
            };
            4_000 + intrinsic
        }
    }
}

fn prices(specs: &[InstrumentSpec]) -> PriceInputs {
    let index = vec![IndexPrice {
        asset: AssetCode::parse("BTC").expect("valid"),
        price: UnitPrice::from_usdc(INDEX_USDC),
    }];
    let marks = specs
        .iter()
        .enumerate()
        .map(|(i, s)| MarkPrice {
            instrument: InstrumentId::new(i as u32),
            price: UnitPrice::from_usdc(mark_usdc(s)),
        })
        .collect();
    PriceInputs::new(index, marks, vec![]).expect("positive, unique")
}

fn sign(key: &PrivateKey, nonce: &mut u64, body: TxBody) -> bulwark_types::SignedTx {
    *nonce += 1;
    body.signed(key, *nonce)
}

/// Builds the workload, running a shadow exchange to learn which orders rest (so cancels
/// name live orders).
pub fn generate(config: ExchangeWorkloadConfig) -> ExchangeWorkload {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let (admin, bridge) = (PrivateKey::from_seed(1), PrivateKey::from_seed(2));
    let genesis = Genesis {
        admin: admin.public_key(),
        bridge: bridge.public_key(),
        params: ExchangeParams::defaults(),
        time: BlockTime::from_millis(START_MS),
        oracle: None,
        custody: None,
    };
    let specs = instruments(config.option_strikes);
    let price_inputs = prices(&specs);
    let mut shadow = Exchange::new(&genesis).expect("default genesis is valid");
    let mut verify_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed);
    let mut time_ms = START_MS;
    let mut seal = |txs: Vec<bulwark_types::SignedTx>,
                    shadow: &mut Exchange|
     -> (CheckedBlock, BlockOutcome) {
        time_ms += 100;
        let block = Block {
            height: shadow.height().next(),
            time: BlockTime::from_millis(time_ms),
            prices: price_inputs.clone(),
            observations: Vec::new(),
            txs,
        };
        let checked = block.check_signatures(&mut verify_rng);
        let outcome = shadow
            .apply_block(&checked)
            .expect("generated blocks are in order");
        (checked, outcome)
    };
    let (mut admin_nonce, mut bridge_nonce) = (0, 0);
    let listings = specs
        .iter()
        .map(|s| sign(&admin, &mut admin_nonce, TxBody::ListInstrument(*s)))
        .collect();
    let mut setup = vec![seal(listings, &mut shadow).0];
    let mut traders: Vec<Trader> = (0..config.accounts)
        .map(|i| Trader {
            key: PrivateKey::from_seed(1_000 + i as u64),
            nonce: 0,
            next_client: 0,
            resting: Vec::new(),
        })
        .collect();
    for chunk in traders.chunks(config.txs_per_block.max(1)) {
        let deposits = chunk
            .iter()
            .map(|t| {
                let body = TxBody::Deposit {
                    owner: t.key.public_key(),
                    amount: Money::from_usdc(10_000_000),
                };
                sign(&bridge, &mut bridge_nonce, body)
            })
            .collect();
        setup.push(seal(deposits, &mut shadow).0);
    }
    let mut trading = Vec::with_capacity(config.blocks);
    for _ in 0..config.blocks {
        let mut txs = Vec::with_capacity(config.txs_per_block);
        let mut placed = Vec::with_capacity(config.txs_per_block);
        for _ in 0..config.txs_per_block {
            let who = rng.random_range(0..traders.len());
            let body = next_body(&mut rng, &mut traders[who], &specs);
            if let TxBody::PlaceOrder(request) = &body {
                placed.push((who, request.instrument, request.client_order_id));
            }
            let trader = &mut traders[who];
            txs.push(sign(&trader.key, &mut trader.nonce, body));
        }
        let (checked, _) = seal(txs, &mut shadow);
        track_resting(&shadow, &mut traders, &placed);
        trading.push(checked);
    }
    ExchangeWorkload {
        genesis,
        setup,
        trading,
    }
}

fn next_body(rng: &mut ChaCha8Rng, trader: &mut Trader, specs: &[InstrumentSpec]) -> TxBody {
    let roll = rng.random_range(0..100);
    if (70..95).contains(&roll) && !trader.resting.is_empty() {
        let (instrument, client) = trader
            .resting
            .swap_remove(rng.random_range(0..trader.resting.len()));
        return TxBody::CancelOrder {
            instrument,
            order: OrderRef::Client(client),
        };
    }
    let instrument = if rng.random_bool(0.6) {
        0
    } else {
        rng.random_range(1..specs.len())
    };
    let spec = &specs[instrument];
    let tick = spec.tick_size.micros();
    let mark_ticks = mark_usdc(spec) * 1_000_000 / tick;
    let side = if rng.random_bool(0.5) {
        Side::Buy
    } else {
        Side::Sell
    };
    let crossing = roll >= 95;
    // Passive orders sit 1 to 40 ticks behind the mark; crossing ones reach 5 ticks past it.
    let offset = if crossing {
        -5
    } else {
        rng.random_range(1..=40)
    };
    let price_ticks = match side {
        Side::Buy => mark_ticks - offset,
        Side::Sell => mark_ticks + offset,
    };
    trader.next_client += 1;
    TxBody::PlaceOrder(OrderRequest::limit(
        InstrumentId::new(instrument as u32),
        ClientOrderId::new(trader.next_client),
        side,
        Qty::from_contracts(rng.random_range(1..=20)),
        UnitPrice::from_micros(price_ticks * tick),
        if crossing {
            TimeInForce::ImmediateOrCancel
        } else {
            TimeInForce::GoodTilCancelled
        },
    ))
}

/// Updates each trader's list of resting orders from what the shadow exchange did.
fn track_resting(
    shadow: &Exchange,
    traders: &mut [Trader],
    placed: &[(usize, InstrumentId, ClientOrderId)],
) {
    for &(who, instrument, client) in placed {
        let key: PublicKey = traders[who].key.public_key();
        let Some((account, _)) = shadow.key_binding(&key) else {
            continue;
        };
        let rests = shadow.account(account).is_some_and(|a| {
            a.client_orders
                .get(&client)
                .is_some_and(|(at, _)| *at == instrument)
        });
        if rests {
            traders[who].resting.push((instrument, client));
        }
    }
    // Orders filled away later are not pruned: a cancel of one is rejected as unknown,
    // which still exercises the whole path up to the lookup.
}

/// What a timed run measured.
#[derive(Copy, Clone, Debug)]
pub struct ApplyReport {
    pub txs: usize,
    pub elapsed: Duration,
    pub trades: usize,
    pub rejected: usize,
}

impl ApplyReport {
    pub fn txs_per_second(&self) -> f64 {
        self.txs as f64 / self.elapsed.as_secs_f64()
    }
}

/// The exchange after the setup blocks: the untimed part of a run.
pub fn prepared_exchange(workload: &ExchangeWorkload) -> Exchange {
    let mut exchange = Exchange::new(&workload.genesis).expect("valid genesis");
    for block in &workload.setup {
        exchange.apply_block(block).expect("setup applies");
    }
    exchange
}

/// Applies `blocks`; returns (transactions, trades, rejected). The timed part of a run.
pub fn apply_trading(exchange: &mut Exchange, blocks: &[CheckedBlock]) -> (usize, usize, usize) {
    let (mut txs, mut trades, mut rejected) = (0, 0, 0);
    for block in blocks {
        let outcome = exchange.apply_block(block).expect("trading blocks apply");
        txs += outcome.txs.len();
        trades += outcome.trades().count();
        rejected += outcome.txs.iter().filter(|t| t.rejection.is_some()).count();
    }
    (txs, trades, rejected)
}

/// Applies the setup untimed, then times `apply_block` over the trading blocks.
pub fn run(workload: &ExchangeWorkload) -> ApplyReport {
    let mut exchange = prepared_exchange(workload);
    let start = Instant::now();
    let (txs, trades, rejected) = apply_trading(&mut exchange, &workload.trading);
    ApplyReport {
        txs,
        elapsed: start.elapsed(),
        trades,
        rejected,
    }
}
