//! The risk work the exchange does inside `apply_block`, measured on the real state machine:
//!
//! - `margin/portfolio_50_options_3_expiries`: one margin evaluation of a portfolio-margined
//!   account holding 50 option positions over 3 expiries (what every order check and every
//!   liquidation screen of that account costs: sums of cached contract vectors, no pricing);
//! - `block/revalue_51_instruments`: an empty block on that exchange, whose fixed cost is
//!   dominated by recomputing the 51 contract vectors (40 Black-76 prices each);
//! - `block/liquidation_pass_100k_accounts_none_liquidatable`: an empty block on an exchange
//!   with 100,000 accounts each holding a healthy perpetual position: the end-of-block
//!   liquidation pass screens every one (`block/empty_100k_accounts_liquidation_off` is the
//!   same block without the pass; `..._index_moving` moves the index 0.1% each block, so
//!   every account's floor is lowered each pass).

use bulwark_exchange::{Exchange, ExchangeParams, Genesis};
use bulwark_pricing::{Black76, OptionKind};
use bulwark_types::{
    AccountId, AssetCode, Block, BlockTime, ClientOrderId, IndexPrice, InstrumentId,
    InstrumentName, InstrumentSpec, MarkPrice, Money, Multiplier, OrderRequest, PriceInputs,
    PrivateKey, Qty, Side, SignedTx, TimeInForce, TxBody, UnitPrice,
};
use commonware_cryptography::Signer;
use criterion::{Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// 2026-11-24T00:00:00Z.
const START_MS: u64 = 1_795_478_400_000;
const INDEX: i64 = 100_000;

struct Chain {
    exchange: Exchange,
    time_ms: u64,
    prices: PriceInputs,
    rng: ChaCha8Rng,
}

impl Chain {
    fn new(params: ExchangeParams) -> (Self, PrivateKey, PrivateKey) {
        let (admin, bridge) = (PrivateKey::from_seed(1), PrivateKey::from_seed(2));
        let genesis = Genesis {
            admin: admin.public_key(),
            bridge: bridge.public_key(),
            params,
            time: BlockTime::from_millis(START_MS),
            oracle: None,
            custody: None,
        };
        let chain = Self {
            exchange: Exchange::new(&genesis).expect("defaults are valid"),
            time_ms: START_MS,
            prices: PriceInputs::default(),
            rng: ChaCha8Rng::seed_from_u64(3),
        };
        (chain, admin, bridge)
    }

    fn block(&mut self, txs: Vec<SignedTx>) {
        self.time_ms += 1_000;
        let block = Block {
            height: self.exchange.height().next(),
            time: BlockTime::from_millis(self.time_ms),
            prices: self.prices.clone(),
            observations: Vec::new(),
            txs,
        };
        let checked = block.check_signatures(&mut self.rng);
        let outcome = self.exchange.apply_block(&checked).expect("in order");
        assert!(
            outcome.txs.iter().all(|t| t.rejection.is_none()),
            "setup transactions apply: {:?}",
            outcome.txs.iter().find_map(|t| t.rejection)
        );
    }
}

fn spec(name: &str, tick: UnitPrice, multiplier_e8: i64) -> InstrumentSpec {
    InstrumentSpec {
        name: InstrumentName::parse(name).expect("valid"),
        tick_size: tick,
        multiplier: Multiplier::from_e8(multiplier_e8),
        lot_size: Qty::from_contracts(1),
        size_min: Qty::from_contracts(1),
    }
}

fn order(id: InstrumentId, side: Side, qty: i64, price: UnitPrice, client: u64) -> TxBody {
    TxBody::PlaceOrder(OrderRequest::limit(
        id,
        ClientOrderId::new(client),
        side,
        Qty::from_contracts(qty),
        price,
        TimeInForce::GoodTilCancelled,
    ))
}

/// An exchange with 50 options over 3 expiries and an account holding all of them.
fn portfolio_exchange() -> (Chain, AccountId) {
    let (mut chain, admin, bridge) = Chain::new(ExchangeParams::defaults());
    let mut specs = vec![spec(
        "BTC_USDC-PERPETUAL",
        UnitPrice::from_micros(500_000),
        100_000,
    )];
    for expiry in ["25DEC26", "29JAN27", "26MAR27"] {
        for strike in (80_000..=120_000).step_by(5_000) {
            for right in ["C", "P"] {
                if specs.len() == 51 {
                    continue;
                }
                let name = format!("BTC_USDC-{expiry}-{strike}-{right}");
                specs.push(spec(&name, UnitPrice::from_usdc(5), 1_000_000));
            }
        }
    }
    let mut nonce = 0;
    let mut sign = |key: &PrivateKey, body: TxBody| {
        nonce += 1;
        body.signed(key, nonce)
    };
    let listings = specs
        .iter()
        .map(|s| sign(&admin, TxBody::ListInstrument(*s)))
        .collect();
    chain.block(listings);
    // Marks: Black-76 at 60% vol, on the 5 USDC tick, at least one tick.
    let marks = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let price = match s.kind() {
                bulwark_types::InstrumentKind::Perpetual => INDEX * 1_000_000,
                bulwark_types::InstrumentKind::Option {
                    expiry_ms,
                    strike,
                    right,
                } => {
                    let years = (expiry_ms - START_MS) as f64 / (365.0 * 86_400_000.0);
                    let kind = match right {
                        bulwark_types::Right::Call => OptionKind::Call,
                        bulwark_types::Right::Put => OptionKind::Put,
                    };
                    let value =
                        Black76::new(INDEX as f64, strike.micros() as f64 / 1e6, years, 0.6, 0.0)
                            .and_then(|m| m.price(kind))
                            .expect("valid inputs");
                    ((value / 5.0).round() as i64).max(1) * 5_000_000
                }
            };
            MarkPrice {
                instrument: InstrumentId::new(i as u32),
                price: UnitPrice::from_micros(price),
            }
        })
        .collect();
    chain.prices = PriceInputs::new(
        vec![IndexPrice {
            asset: AssetCode::parse("BTC").expect("valid"),
            price: UnitPrice::from_usdc(INDEX),
        }],
        marks,
        vec![],
    )
    .expect("positive");
    let (holder, maker) = (PrivateKey::from_seed(10), PrivateKey::from_seed(11));
    chain.block(vec![
        sign(
            &bridge,
            TxBody::Deposit {
                owner: holder.public_key(),
                amount: Money::from_usdc(10_000_000),
            },
        ),
        sign(
            &bridge,
            TxBody::Deposit {
                owner: maker.public_key(),
                amount: Money::from_usdc(100_000_000),
            },
        ),
    ]);
    chain.block(vec![sign(
        &holder,
        TxBody::SetMarginMode { portfolio: true },
    )]);
    let mut txs = Vec::new();
    for (i, mark) in chain.prices.marks().to_vec().iter().enumerate().skip(1) {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let id = InstrumentId::new(i as u32);
        txs.push(sign(
            &maker,
            order(id, side.opposite(), 10, mark.price, i as u64),
        ));
        txs.push(sign(&holder, order(id, side, 10, mark.price, i as u64)));
    }
    chain.block(txs);
    let account = chain
        .exchange
        .key_binding(&holder.public_key())
        .expect("funded")
        .0;
    let held = chain
        .exchange
        .account(account)
        .expect("exists")
        .exposures
        .values()
        .filter(|e| e.position != 0)
        .count();
    assert_eq!(held, 50, "50 option positions");
    (chain, account)
}

/// The BTC index and the perpetual's (instrument 0) mark, both at `price`.
fn perpetual_at(price: UnitPrice) -> PriceInputs {
    PriceInputs::new(
        vec![IndexPrice {
            asset: AssetCode::parse("BTC").expect("valid"),
            price,
        }],
        vec![MarkPrice {
            instrument: InstrumentId::new(0),
            price,
        }],
        vec![],
    )
    .expect("positive")
}

/// An exchange with `accounts` accounts each long one perpetual contract, all healthy.
fn crowded_exchange(accounts: usize, params: ExchangeParams) -> Chain {
    let (mut chain, admin, bridge) = Chain::new(params);
    chain.prices = perpetual_at(UnitPrice::from_usdc(INDEX));
    let mut nonces = std::collections::BTreeMap::new();
    let mut sign = |key: &PrivateKey, body: TxBody| {
        let nonce = nonces.entry(key.public_key()).or_insert(0u64);
        *nonce += 1;
        body.signed(key, *nonce)
    };
    chain.block(vec![sign(
        &admin,
        TxBody::ListInstrument(spec(
            "BTC_USDC-PERPETUAL",
            UnitPrice::from_micros(500_000),
            100_000,
        )),
    )]);
    let maker = PrivateKey::from_seed(11);
    let keys: Vec<PrivateKey> = (0..accounts)
        .map(|n| PrivateKey::from_seed(1_000 + n as u64))
        .collect();
    let mut deposits = vec![sign(
        &bridge,
        TxBody::Deposit {
            owner: maker.public_key(),
            amount: Money::from_usdc(1_000_000_000),
        },
    )];
    for key in &keys {
        deposits.push(sign(
            &bridge,
            TxBody::Deposit {
                owner: key.public_key(),
                amount: Money::from_usdc(10_000),
            },
        ));
    }
    for chunk in deposits.chunks(10_000) {
        chain.block(chunk.to_vec());
    }
    let id = InstrumentId::new(0);
    let price = UnitPrice::from_usdc(INDEX);
    chain.block(vec![sign(
        &maker,
        order(id, Side::Sell, accounts as i64, price, 1),
    )]);
    let buys: Vec<SignedTx> = keys
        .iter()
        .map(|key| sign(key, order(id, Side::Buy, 1, price, 1)))
        .collect();
    for chunk in buys.chunks(10_000) {
        chain.block(chunk.to_vec());
    }
    let holders = chain.exchange.instrument(id).expect("listed").holders.len();
    assert_eq!(holders, accounts + 1);
    chain
}

fn risk_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("risk_path");
    let (mut chain, account) = portfolio_exchange();
    group.bench_function("margin/portfolio_50_options_3_expiries", |b| {
        b.iter(|| chain.exchange.account_margin(account))
    });
    group.sample_size(20);
    group.bench_function("block/revalue_51_instruments", |b| {
        b.iter(|| chain.block(Vec::new()))
    });
    let mut crowded = crowded_exchange(100_000, ExchangeParams::defaults());
    group.sample_size(10);
    group.bench_function(
        "block/liquidation_pass_100k_accounts_none_liquidatable",
        |b| b.iter(|| crowded.block(Vec::new())),
    );
    // The index (and the perpetual's mark) moving 0.1% every block, up and down: every
    // account's floor is lowered by its drift each pass.
    let mut up = false;
    group.bench_function("block/liquidation_pass_100k_accounts_index_moving", |b| {
        b.iter(|| {
            up = !up;
            crowded.prices =
                perpetual_at(UnitPrice::from_usdc(if up { INDEX + 100 } else { INDEX }));
            crowded.block(Vec::new())
        })
    });
    drop(crowded);
    // The same block with liquidation off: what the pass itself costs is the difference.
    let mut params = ExchangeParams::defaults();
    params.liquidation = None;
    let mut quiet = crowded_exchange(100_000, params);
    group.bench_function("block/empty_100k_accounts_liquidation_off", |b| {
        b.iter(|| quiet.block(Vec::new()))
    });
    group.finish();
}

criterion_group!(benches, risk_path);
criterion_main!(benches);
