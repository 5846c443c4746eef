//! Cascade analysis (`bulwark stress --cascade`): a deterministic population of leveraged
//! accounts taken through a crash on the real exchange state machine, once with every
//! protection on and once with each taken away, so the effect of each is a figure.
//!
//! Owns: the population (seeded), the crash path, the market maker, the mark rule of the
//! simulation, and the [`CascadeOutcome`] of each variant.
//! Never: reaches into the exchange; everything goes through signed transactions and
//! [`Exchange::apply_block`], and every figure is read from block outcomes and public queries.
//!
//! The market: one BTC perpetual (0.001 BTC contracts). `accounts` traders hold long positions
//! at 2x to 15x leverage, bought from a well-capitalised short. A market maker quotes a ladder
//! of bids and asks around the index every block (`levels` levels every 0.5%, `level_size`
//! contracts each): a thin book, as in a crash. The index falls `crash_bps` over
//! `crash_blocks` one-second blocks, then holds for `hold_blocks`. The perpetual's mark is the
//! median of the index, the last trade and the book's mid, within 5% of the index (the rule the
//! exchange applies under its oracle), so liquidation selling feeds back into marks: the
//! cascade the protections must stop.

use bulwark_exchange::oracle::OracleGenesis;
use bulwark_exchange::{Event, Exchange, ExchangeParams, Genesis};
use bulwark_oracle::{GuardConfig, OracleConfig};
use bulwark_types::{
    AssetCode, Block, BlockTime, ClientOrderId, IndexPrice, InstrumentId, InstrumentName,
    InstrumentSpec, MarkPrice, Money, Observation, OrderRequest, PriceInputs, PrivateKey, Qty,
    RejectReason, Side, SignedTx, TimeInForce, TxBody, UnitPrice,
};
use commonware_cryptography::Signer;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::Serialize;
use std::fmt::Write as _;

/// 2026-11-24T00:00:00Z.
const START_MS: u64 = 1_795_478_400_000;
/// Where the index starts, whole USDC.
pub const INDEX_USDC: i64 = 100_000;
const PERP: InstrumentId = InstrumentId::new(0);

/// The population and the crash.
#[derive(Copy, Clone, Debug, Serialize)]
pub struct CascadeConfig {
    pub seed: u64,
    pub accounts: usize,
    /// Total fall of the index, bps.
    pub crash_bps: i64,
    pub crash_blocks: usize,
    pub hold_blocks: usize,
    /// Market maker ladder: levels per side and contracts per level.
    pub levels: usize,
    pub level_size: i64,
    /// What the insurance fund starts with, USDC.
    pub insurance_usdc: i64,
    /// Blocks over which the index climbs back to where it started after the fall, once the
    /// hold is over (0: it stays down).
    pub recover_blocks: usize,
    /// Blocks the index stays at its low before recovering.
    pub bottom_blocks: usize,
    /// Take the index from four validators' signed observations through the exchange's oracle
    /// (deviation guard, exchange-computed perpetual mark) instead of from block inputs.
    pub oracle: bool,
}

impl CascadeConfig {
    /// 400 accounts through a 10% fall over 20 seconds, then a minute of holding; a maker
    /// quoting 20 levels of 0.2 BTC a side; a 1,000,000 USDC insurance fund.
    pub const fn defaults() -> Self {
        Self {
            seed: 7,
            accounts: 400,
            crash_bps: 1_000,
            crash_blocks: 20,
            hold_blocks: 60,
            levels: 20,
            level_size: 200,
            insurance_usdc: 1_000_000,
            recover_blocks: 0,
            bottom_blocks: 0,
            oracle: false,
        }
    }

    /// A flash crash through the oracle: the index falls 30% in 3 one-second blocks, stays
    /// down 2 blocks, climbs back over 3, then 40 quiet blocks follow.
    pub const fn flash_crash() -> Self {
        Self {
            crash_bps: 3_000,
            crash_blocks: 3,
            bottom_blocks: 2,
            recover_blocks: 3,
            hold_blocks: 40,
            oracle: true,
            ..Self::defaults()
        }
    }

    /// The index (whole USDC) at crash step `step`.
    fn index_at(&self, step: usize) -> i64 {
        let crash_blocks = self.crash_blocks.max(1);
        let fallen = if step < crash_blocks {
            self.crash_bps * (step + 1) as i64 / crash_blocks as i64
        } else if self.recover_blocks == 0 || step < crash_blocks + self.bottom_blocks {
            self.crash_bps
        } else {
            let up = (step + 1 - crash_blocks - self.bottom_blocks).min(self.recover_blocks);
            self.crash_bps - self.crash_bps * up as i64 / self.recover_blocks as i64
        };
        INDEX_USDC * (10_000 - fallen) / 10_000
    }

    fn steps(&self) -> usize {
        let recovery = if self.recover_blocks == 0 {
            0
        } else {
            self.bottom_blocks + self.recover_blocks
        };
        self.crash_blocks + recovery + self.hold_blocks
    }
}

/// Which protections a variant runs with.
#[derive(Copy, Clone, Debug, Serialize)]
pub struct Protections {
    pub name: &'static str,
    /// Liquidation cuts 25% of a position per block, at most 32 liquidation orders per book per
    /// block (off: whole positions, unthrottled).
    pub stepwise: bool,
    /// The dynamic circuit breaker halts and reopens through an auction.
    pub breaker: bool,
    /// The price band widens with realised volatility (off: fixed 5%).
    pub vol_band: bool,
    /// Liquidation orders trade within 2.5% of the mark (off: anywhere in the band).
    pub price_limit: bool,
    /// The backstop sheds 10% of a position a block (off: it offers all of it at once).
    pub slow_backstop: bool,
    /// With the oracle: the deviation guard follows a large move at a bounded rate (off: the
    /// index follows the median at once).
    pub oracle_guard: bool,
    /// Liquidation and backstop prints do not feed the perpetual's mark (off: the simulation's
    /// mark takes every trade; under the oracle the exchange's mark always ignores them).
    pub mark_ignores_forced: bool,
    /// Margin rates rise with position size in tiers of one book depth (off: flat rates).
    pub risk_tiers: bool,
    /// Open interest is capped at ten books of depth (off: no cap).
    pub open_interest_cap: bool,
}

impl Protections {
    /// Every protection on, all off, and each one off alone.
    pub const VARIANTS: [Protections; 11] = [
        Protections::on("all protections on"),
        Protections {
            name: "all protections off",
            stepwise: false,
            breaker: false,
            vol_band: false,
            price_limit: false,
            slow_backstop: false,
            oracle_guard: false,
            mark_ignores_forced: false,
            risk_tiers: false,
            open_interest_cap: false,
        },
        Protections {
            stepwise: false,
            ..Protections::on("stepwise liquidation off")
        },
        Protections {
            breaker: false,
            ..Protections::on("circuit breaker off")
        },
        Protections {
            price_limit: false,
            ..Protections::on("liquidation price limit off")
        },
        Protections {
            vol_band: false,
            ..Protections::on("volatility band off")
        },
        Protections {
            slow_backstop: false,
            ..Protections::on("slow backstop unwind off")
        },
        Protections {
            oracle_guard: false,
            ..Protections::on("oracle deviation guard off")
        },
        Protections {
            mark_ignores_forced: false,
            ..Protections::on("forced prints in the mark")
        },
        Protections {
            risk_tiers: false,
            ..Protections::on("risk-limit tiers off")
        },
        Protections {
            open_interest_cap: false,
            ..Protections::on("open-interest cap off")
        },
    ];

    const fn on(name: &'static str) -> Self {
        Self {
            name,
            stepwise: true,
            breaker: true,
            vol_band: true,
            price_limit: true,
            slow_backstop: true,
            oracle_guard: true,
            mark_ignores_forced: true,
            risk_tiers: true,
            open_interest_cap: true,
        }
    }

    fn params(&self) -> ExchangeParams {
        let mut params = ExchangeParams::defaults();
        let liquidation = params.liquidation.as_mut().expect("on by default");
        if !self.stepwise {
            liquidation.step_bps = 10_000;
            liquidation.restore_bps = 0;
            liquidation.orders_per_instrument_max = 100_000;
        }
        if !self.slow_backstop {
            liquidation.backstop_unwind_bps = 10_000;
        }
        if !self.price_limit {
            liquidation.price_limit_bps = 10_000;
        }
        if !self.breaker {
            params.breaker_perpetual = None;
        }
        if !self.vol_band {
            params.band_vol = None;
        }
        if let Some(limits) = params.risk_limits.as_mut() {
            if !self.risk_tiers {
                limits.tier_initial_step_bps = 0;
                limits.tier_maintenance_step_bps = 0;
            }
            if !self.open_interest_cap {
                limits.open_interest_depth_bps = 0;
            }
        }
        if !self.risk_tiers && !self.open_interest_cap {
            params.risk_limits = None;
        }
        params
    }
}

/// What one variant did.
#[derive(Clone, Debug, Serialize)]
pub struct CascadeOutcome {
    pub protections: Protections,
    /// Traders whose opening order filled (some at a smaller size after a refusal), and open
    /// interest when the crash begins, contracts.
    pub traders_admitted: usize,
    pub open_interest: i64,
    /// Opening orders refused by margin (tiers) and by the open-interest cap.
    pub refused_margin: usize,
    pub refused_open_interest: usize,
    /// Accounts that received at least one margin call.
    pub accounts_liquidated: usize,
    pub margin_calls: usize,
    /// Contracts sold through the book by liquidation steps.
    pub volume_liquidated: i64,
    /// Contracts passed to the backstop, and backstop takeover events.
    pub backstop_contracts: i64,
    pub backstop_events: usize,
    /// Contracts the backstop sold back into the book.
    pub backstop_sold: i64,
    /// Contracts closed by auto-deleveraging, and deleveraging events.
    pub deleveraged_contracts: i64,
    pub deleverage_events: usize,
    /// Accounts that ended in deficit (distinct), deficits made whole, and what nobody could
    /// cover.
    pub accounts_in_deficit: usize,
    pub deficits_covered: usize,
    /// Every deficit, however covered (fund, deleveraging, or nobody): the bad debt, USDC.
    pub bad_debt_usdc: f64,
    pub uncovered_usdc: f64,
    /// The most negative equity any account reached before cover, USDC.
    pub worst_deficit_usdc: f64,
    /// Highest fund balance minus the lowest after it, USDC; and the final balance.
    pub insurance_fund_drawdown_usdc: f64,
    pub insurance_fund_end_usdc: f64,
    /// Lowest trade and lowest perpetual mark, as a fall from the start, percent.
    pub lowest_trade_fall_pct: f64,
    pub lowest_mark_fall_pct: f64,
    pub halts: usize,
    /// Most margin calls in one block (the pass's per-block bound at work).
    pub margin_calls_per_block_max: usize,
}

struct Key {
    key: PrivateKey,
    nonce: u64,
}

impl Key {
    fn new(seed: u64) -> Self {
        Self {
            key: PrivateKey::from_seed(seed),
            nonce: 0,
        }
    }

    fn sign(&mut self, body: TxBody) -> SignedTx {
        self.nonce += 1;
        body.signed(&self.key, self.nonce)
    }
}

fn usdc(money: Money) -> f64 {
    money.micros() as f64 / 1e6
}

/// The simulation's market: the exchange, the keys and the clock.
struct Market {
    exchange: Exchange,
    time_ms: u64,
    rng: ChaCha8Rng,
    index: i64,
    mark: i64,
    /// With an oracle: the validators that observe the index each block.
    validators: Vec<PrivateKey>,
}

impl Market {
    fn block(&mut self, txs: Vec<SignedTx>) -> bulwark_exchange::BlockOutcome {
        self.block_after(1_000, txs)
    }

    /// A block `gap_ms` after the last.
    fn block_after(&mut self, gap_ms: u64, txs: Vec<SignedTx>) -> bulwark_exchange::BlockOutcome {
        self.time_ms += gap_ms;
        let asset = AssetCode::parse("BTC").expect("valid");
        // Under an oracle the index comes from the validators' observations and the exchange
        // marks the perpetual itself; otherwise both are block inputs.
        let (prices, observations) = if self.validators.is_empty() {
            let prices = PriceInputs::new(
                vec![IndexPrice {
                    asset,
                    price: UnitPrice::from_usdc(self.index),
                }],
                vec![MarkPrice {
                    instrument: PERP,
                    price: UnitPrice::from_usdc(self.mark),
                }],
                vec![],
            )
            .expect("positive prices");
            (prices, Vec::new())
        } else {
            let observations = self
                .validators
                .iter()
                .map(|key| {
                    Observation {
                        validator: key.public_key(),
                        asset,
                        price: UnitPrice::from_usdc(self.index),
                        observed_at_ms: self.time_ms,
                        sources: 3,
                    }
                    .sign(key)
                })
                .collect();
            (PriceInputs::default(), observations)
        };
        let block = Block {
            height: self.exchange.height().next(),
            time: BlockTime::from_millis(self.time_ms),
            prices,
            observations,
            txs,
        };
        // The simulation signed every transaction itself: their verdicts are known, as a
        // validator's cache knows those it verified at admission (observations are verified).
        let known_txs = vec![true; block.txs.len()];
        let unknown_observations = vec![false; block.observations.len()];
        let checked =
            block.check_signatures_cached(&mut self.rng, &known_txs, &unknown_observations);
        self.exchange
            .apply_block(&checked)
            .expect("blocks follow each other")
    }
}

fn limit(side: Side, qty: i64, price_usdc: f64, client: u64, tif: TimeInForce) -> TxBody {
    // Round to the 0.5 USDC tick.
    let price = UnitPrice::from_micros(((price_usdc * 2.0).round() as i64) * 500_000);
    TxBody::PlaceOrder(OrderRequest::limit(
        PERP,
        ClientOrderId::new(client),
        side,
        Qty::from_contracts(qty),
        price,
        tif,
    ))
}

/// How long the maker's first ladder rests before anyone trades: twelve half-lives of the
/// exchange's depth average, so the risk limits start from the book as it stands.
const WARM_UP_MS: u64 = 3_600_000;

/// Rounds of opening orders: a trader refused (margin tiers, open-interest cap) asks for half
/// as much in the next round, as a trader sizes down to what the venue takes.
const OPENING_ROUNDS: usize = 4;

/// The maker's ladder around `index`: `levels` bids and asks every 0.5%, `size` contracts each.
fn ladder(
    maker: &mut Key,
    index: i64,
    levels: usize,
    size: i64,
    client: &mut u64,
) -> Vec<SignedTx> {
    let mut quotes = Vec::with_capacity(2 * levels);
    for level in 1..=levels {
        let offset = index as f64 * 0.005 * level as f64;
        for (side, price) in [
            (Side::Buy, index as f64 - offset),
            (Side::Sell, index as f64 + offset),
        ] {
            *client += 1;
            quotes.push(maker.sign(limit(
                side,
                size,
                price,
                *client,
                TimeInForce::GoodTilCancelled,
            )));
        }
    }
    quotes
}

/// The short offers every trader its position at the index; each trader buys what it wants,
/// and one the exchange refuses asks for half as much in the next round (at most
/// [`OPENING_ROUNDS`]). Returns the traders holding a position, and the refusals by margin and
/// by the open-interest cap.
fn open_positions(
    market: &mut Market,
    whale: &mut Key,
    traders: &mut [Key],
    sizes: &[i64],
) -> (usize, (usize, usize)) {
    let total: i64 = sizes.iter().sum();
    let mut block = vec![whale.sign(limit(
        Side::Sell,
        total,
        INDEX_USDC as f64,
        1,
        TimeInForce::GoodTilCancelled,
    ))];
    let mut wanted: Vec<(usize, i64)> = sizes.iter().copied().enumerate().collect();
    let mut refused = (0, 0);
    for round in 0..OPENING_ROUNDS {
        if wanted.is_empty() {
            break;
        }
        let first_tx = block.len();
        for (n, size) in &wanted {
            block.push(traders[*n].sign(limit(
                Side::Buy,
                *size,
                INDEX_USDC as f64,
                1 + round as u64,
                TimeInForce::ImmediateOrCancel,
            )));
        }
        let outcome = market.block(std::mem::take(&mut block));
        let mut again = Vec::new();
        for (k, (n, size)) in wanted.iter().enumerate() {
            match outcome.txs[first_tx + k].rejection {
                None => {}
                Some(RejectReason::OpenInterestCap) => {
                    refused.1 += 1;
                    again.push((*n, size / 2));
                }
                Some(RejectReason::MarginInsufficient { .. }) => {
                    refused.0 += 1;
                    again.push((*n, size / 2));
                }
                Some(other) => panic!("an opening order is refused only for risk: {other:?}"),
            }
        }
        again.retain(|(_, size)| *size > 0);
        wanted = again;
    }
    let holding = traders
        .iter()
        .filter(|trader| {
            let exchange = &market.exchange;
            exchange
                .key_binding(&trader.key.public_key())
                .and_then(|(id, _)| exchange.account(id))
                .is_some_and(|account| account.position(PERP) > 0)
        })
        .count();
    (holding, refused)
}

/// One block of a price path: the index and the market maker's ladder around it.
#[derive(Copy, Clone, Debug)]
pub struct PathStep {
    /// Index, whole USDC.
    pub index: i64,
    /// Levels quoted per side (every 0.5%), and contracts per level.
    pub levels: usize,
    pub level_size: i64,
}

/// Runs one variant.
pub fn run_variant(config: &CascadeConfig, protections: Protections) -> CascadeOutcome {
    let path: Vec<PathStep> = (0..config.steps())
        .map(|step| PathStep {
            index: config.index_at(step),
            levels: config.levels,
            level_size: config.level_size,
        })
        .collect();
    run_path(config, protections, &path)
}

/// Runs one variant along `path` (one entry per block after the positions are opened): the
/// population, the fund and the oracle set-up come from `config`.
pub fn run_path(
    config: &CascadeConfig,
    protections: Protections,
    path: &[PathStep],
) -> CascadeOutcome {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let (mut admin, mut bridge) = (Key::new(1), Key::new(2));
    let validators: Vec<PrivateKey> = if config.oracle {
        (0..4).map(|i| PrivateKey::from_seed(500 + i)).collect()
    } else {
        Vec::new()
    };
    let oracle = config.oracle.then(|| {
        let mut oracle = OracleConfig::GENESIS;
        if !protections.oracle_guard {
            // Follow any move at once.
            oracle.guard = GuardConfig {
                move_ppm_per_block: 999_999,
                move_ppm_per_s: 0,
                move_ppm_max: 999_999,
            };
        }
        OracleGenesis {
            validators: validators.iter().map(|k| k.public_key()).collect(),
            config: oracle,
        }
    });
    let genesis = Genesis {
        admin: admin.key.public_key(),
        bridge: bridge.key.public_key(),
        params: protections.params(),
        time: BlockTime::from_millis(START_MS),
        oracle,
        custody: None,
    };
    let mut market = Market {
        exchange: Exchange::new(&genesis).expect("default parameters are valid"),
        time_ms: START_MS,
        rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0xc45c),
        index: INDEX_USDC,
        mark: INDEX_USDC,
        validators,
    };
    market.block(vec![admin.sign(TxBody::ListInstrument(
        InstrumentSpec::linear(InstrumentName::perpetual(
            AssetCode::parse("BTC").expect("valid asset code"),
        )),
    ))]);
    let mut maker = Key::new(10);
    let mut whale = Key::new(11);
    let mut traders: Vec<Key> = (0..config.accounts)
        .map(|n| Key::new(100 + n as u64))
        .collect();
    // Deposits: the maker and the short are deep; traders hold 1,000 to 20,000 USDC.
    let mut deposits = vec![
        bridge.sign(TxBody::Deposit {
            owner: maker.key.public_key(),
            amount: Money::from_usdc(100_000_000),
        }),
        bridge.sign(TxBody::Deposit {
            owner: whale.key.public_key(),
            amount: Money::from_usdc(100_000_000),
        }),
    ];
    let mut sizes = Vec::with_capacity(traders.len());
    for trader in &traders {
        let cash: i64 = rng.random_range(1_000..=20_000);
        let leverage: i64 = rng.random_range(2..=15);
        // One contract is 0.001 BTC: 100 USDC of notional at the start.
        sizes.push((cash * leverage / 100).max(1));
        deposits.push(bridge.sign(TxBody::Deposit {
            owner: trader.key.public_key(),
            amount: Money::from_usdc(cash),
        }));
    }
    deposits.push(bridge.sign(TxBody::FundInsurance {
        amount: Money::from_usdc(config.insurance_usdc),
    }));
    // The maker quotes before anyone opens a position, and its ladder rests for an hour: the
    // book's depth the exchange's risk limits are sized by (tiers, open-interest cap).
    let mut client = 10u64;
    let first = path
        .first()
        .map_or((config.levels, config.level_size), |step| {
            (step.levels, step.level_size)
        });
    deposits.extend(ladder(
        &mut maker,
        INDEX_USDC,
        first.0,
        first.1,
        &mut client,
    ));
    market.block(deposits);
    market.block_after(WARM_UP_MS, Vec::new());
    let (admitted, refused) = open_positions(&mut market, &mut whale, &mut traders, &sizes);
    market.block(vec![whale.sign(TxBody::CancelAll { instrument: None })]);
    let open_interest = market
        .exchange
        .instrument(PERP)
        .expect("listed")
        .open_interest();

    let mut outcome = CascadeOutcome {
        protections,
        traders_admitted: admitted,
        open_interest,
        refused_margin: refused.0,
        refused_open_interest: refused.1,
        accounts_liquidated: 0,
        margin_calls: 0,
        volume_liquidated: 0,
        backstop_contracts: 0,
        backstop_events: 0,
        backstop_sold: 0,
        accounts_in_deficit: 0,
        margin_calls_per_block_max: 0,
        deleveraged_contracts: 0,
        deleverage_events: 0,
        deficits_covered: 0,
        bad_debt_usdc: 0.0,
        uncovered_usdc: 0.0,
        worst_deficit_usdc: 0.0,
        insurance_fund_drawdown_usdc: 0.0,
        insurance_fund_end_usdc: 0.0,
        lowest_trade_fall_pct: 0.0,
        lowest_mark_fall_pct: 0.0,
        halts: 0,
    };
    let mut called = std::collections::BTreeSet::new();
    let (mut fund_peak, mut lowest_trade, mut lowest_mark) = (0i128, INDEX_USDC, INDEX_USDC);
    let mut deficits = std::collections::BTreeSet::new();
    for step in path {
        market.index = step.index;
        // The maker requotes its ladder around the index (where it hedges) each block.
        let mut quotes = vec![maker.sign(TxBody::CancelAll { instrument: None })];
        quotes.extend(ladder(
            &mut maker,
            market.index,
            step.levels,
            step.level_size,
            &mut client,
        ));
        let block = market.block(quotes);
        let mut last_trade = None;
        let mut calls = 0;
        // Accounts liquidated this block: their (forced) prints do not feed the mark, as the
        // exchange's own perpetual mark ignores liquidation and backstop orders.
        let mut forced = std::collections::BTreeSet::new();
        forced.extend(market.exchange.backstop());
        for event in &block.events {
            match event {
                Event::MarginCall {
                    account, equity, ..
                } => {
                    forced.insert(*account);
                    calls += 1;
                    outcome.margin_calls += 1;
                    called.insert(*account);
                    outcome.worst_deficit_usdc = outcome.worst_deficit_usdc.min(usdc(*equity));
                }
                Event::LiquidationStep { filled, .. } => {
                    outcome.volume_liquidated += filled.contracts();
                }
                Event::BackstopTakeover { position, .. } => {
                    outcome.backstop_contracts += position.abs();
                    outcome.backstop_events += 1;
                }
                Event::Deleveraged { position, .. } => {
                    outcome.deleveraged_contracts += position.abs();
                    outcome.deleverage_events += 1;
                }
                Event::DeficitCovered {
                    account,
                    from_fund,
                    from_deleveraging,
                    uncovered,
                } => {
                    outcome.bad_debt_usdc +=
                        usdc(*from_fund) + usdc(*from_deleveraging) + usdc(*uncovered);
                    deficits.insert(*account);
                    outcome.deficits_covered += 1;
                    outcome.uncovered_usdc += usdc(*uncovered);
                }
                Event::InstrumentHalted { .. } => outcome.halts += 1,
                Event::Trade(trade) if Some(trade.taker_account) == market.exchange.backstop() => {
                    outcome.backstop_sold += trade.qty.contracts();
                    lowest_trade = lowest_trade.min(trade.price.ticks() / 2);
                    if !protections.mark_ignores_forced {
                        last_trade = Some(trade.price.ticks() / 2);
                    }
                }
                Event::Trade(trade)
                    if protections.mark_ignores_forced && forced.contains(&trade.taker_account) =>
                {
                    lowest_trade = lowest_trade.min(trade.price.ticks() / 2);
                }
                Event::Trade(trade) => {
                    let price = trade.price.ticks() / 2;
                    lowest_trade = lowest_trade.min(price);
                    last_trade = Some(price);
                }
                _ => {}
            }
        }
        let fund = market.exchange.ledger().insurance_fund.micros();
        fund_peak = fund_peak.max(fund);
        outcome.insurance_fund_drawdown_usdc = outcome
            .insurance_fund_drawdown_usdc
            .max((fund_peak - fund) as f64 / 1e6);
        outcome.margin_calls_per_block_max = outcome.margin_calls_per_block_max.max(calls);
        let perp = market.exchange.instrument(PERP).expect("listed");
        if config.oracle {
            // The exchange marked the perpetual itself.
            if let Some(mark) = perp.mark {
                market.mark = mark.micros() / 1_000_000;
                lowest_mark = lowest_mark.min(market.mark);
            }
            continue;
        }
        // Next block's mark: the median of index, last trade and mid, within 5% of the index.
        let book = &perp.book;
        let mid = match (book.best_bid(), book.best_ask()) {
            (Some((bid, _)), Some((ask, _))) => (bid.ticks() + ask.ticks()) / 4,
            _ => market.index,
        };
        let mut inputs = [market.index, last_trade.unwrap_or(market.mark), mid];
        inputs.sort();
        let band = market.index / 20;
        market.mark = inputs[1].clamp(market.index - band, market.index + band);
        lowest_mark = lowest_mark.min(market.mark);
    }
    outcome.accounts_liquidated = called.len();
    outcome.accounts_in_deficit = deficits.len();
    outcome.insurance_fund_end_usdc = usdc(market.exchange.ledger().insurance_fund);
    let fall = |price: i64| (INDEX_USDC - price) as f64 / INDEX_USDC as f64 * 100.0;
    outcome.lowest_trade_fall_pct = fall(lowest_trade);
    outcome.lowest_mark_fall_pct = fall(lowest_mark);
    market
        .exchange
        .check_invariants()
        .expect("the exchange keeps its invariants through the cascade");
    outcome
}

/// Runs every variant of [`Protections::VARIANTS`].
pub fn run(config: &CascadeConfig) -> Vec<CascadeOutcome> {
    Protections::VARIANTS
        .iter()
        .map(|p| run_variant(config, *p))
        .collect()
}

/// The outcomes as an aligned table.
pub fn table(config: &CascadeConfig, outcomes: &[CascadeOutcome]) -> String {
    let recovery = if config.recover_blocks == 0 {
        String::new()
    } else {
        format!(
            ", {} s at the low, back up over {} s",
            config.bottom_blocks, config.recover_blocks
        )
    };
    let mut out = format!(
        "cascade: {} accounts at 2x-15x long the BTC perpetual, index -{:.1}% over {} s{recovery}, \
         then {} s; index from {}; maker ladder {} x {} contracts a side; fund {} USDC (seed {})\n\n",
        config.accounts,
        config.crash_bps as f64 / 100.0,
        config.crash_blocks,
        config.hold_blocks,
        if config.oracle {
            "4 validators' observations through the oracle"
        } else {
            "block inputs"
        },
        config.levels,
        config.level_size,
        config.insurance_usdc,
        config.seed
    );
    let _ = writeln!(
        out,
        "{:<28} {:>7} {:>8} {:>10} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8} {:>11} {:>12} {:>10} {:>10} {:>10} {:>6}",
        "variant",
        "traders",
        "OI",
        "liquidated",
        "calls",
        "max/blk",
        "book vol",
        "backstop",
        "bs sold",
        "ADL",
        "deficit",
        "worst def.",
        "fund drawdn",
        "uncovered",
        "low trade",
        "low mark",
        "halts"
    );
    for o in outcomes {
        let _ = writeln!(
            out,
            "{:<28} {:>7} {:>8} {:>10} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8} {:>11.2} {:>12.2} {:>10.2} {:>9.2}% {:>9.2}% {:>6}",
            o.protections.name,
            o.traders_admitted,
            o.open_interest,
            o.accounts_liquidated,
            o.margin_calls,
            o.margin_calls_per_block_max,
            o.volume_liquidated,
            o.backstop_contracts,
            o.backstop_sold,
            o.deleveraged_contracts,
            o.accounts_in_deficit,
            o.worst_deficit_usdc,
            o.insurance_fund_drawdown_usdc,
            o.uncovered_usdc,
            -o.lowest_trade_fall_pct,
            -o.lowest_mark_fall_pct,
            o.halts
        );
    }
    out.push_str(
        "\ntraders: holding a position when the crash begins (refused openings retry at half \
         size); OI: open interest then; volumes in contracts of 0.001 BTC (book vol: sold by liquidation steps; backstop: taken \
         over at the mark; bs sold: the backstop's sales into the book; ADL: closed by \
         deleveraging); deficit: accounts whose equity went below zero; money in USDC; worst \
         def. is the lowest equity any account reached before cover\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_cascade_is_deterministic_and_protections_change_it() {
        let config = CascadeConfig {
            accounts: 60,
            hold_blocks: 10,
            ..CascadeConfig::defaults()
        };
        let on = run_variant(&config, Protections::VARIANTS[0]);
        let again = run_variant(&config, Protections::VARIANTS[0]);
        assert_eq!(format!("{on:?}"), format!("{again:?}"));
        assert!(on.accounts_liquidated > 0, "{on:?}");
        let off = run_variant(&config, Protections::VARIANTS[1]);
        assert!(off.accounts_liquidated > 0, "{off:?}");
        assert_ne!(format!("{on:?}"), format!("{off:?}"));
    }

    /// Issue 13's goal for the default crash (-10% over 20 s, the population that made 195
    /// accounts end in deficit with every protection on against 11 with all off): the
    /// protections leave fewer accounts in deficit and a smaller fund drawdown than none.
    #[test]
    fn the_default_cascade_is_stopped_by_the_protections() {
        let config = CascadeConfig::defaults();
        let on = run_variant(&config, Protections::VARIANTS[0]);
        let off = run_variant(&config, Protections::VARIANTS[1]);
        assert!(
            on.accounts_in_deficit < off.accounts_in_deficit,
            "on {on:?}\noff {off:?}"
        );
        assert!(on.insurance_fund_drawdown_usdc < off.insurance_fund_drawdown_usdc);
        assert!(on.worst_deficit_usdc > off.worst_deficit_usdc);
        assert_backstop_within_one_book(&on);
    }

    /// The backstop takes over at most one book of the depth the book has shown (the maker's
    /// ladder: 10 levels of 200 contracts within 5% of the mark); what liquidation leaves
    /// beyond its room is deleveraged against the maker's short instead.
    fn assert_backstop_within_one_book(on: &CascadeOutcome) {
        assert!(on.backstop_contracts <= 2_000, "{on:?}");
        assert!(on.deleveraged_contracts > 0, "{on:?}");
    }

    /// The flash crash: -30% within a few blocks and back. With the protections
    /// liquidation goes in bounded steps and fewer accounts end in deficit than without them.
    #[test]
    fn a_flash_crash_leaves_fewer_deficits_with_the_protections_on() {
        let config = CascadeConfig {
            accounts: 80,
            hold_blocks: 20,
            ..CascadeConfig::flash_crash()
        };
        let on = run_variant(&config, Protections::VARIANTS[0]);
        let off = run_variant(&config, Protections::VARIANTS[1]);
        let params = bulwark_exchange::LiquidationParams::defaults();
        assert!(
            on.margin_calls_per_block_max
                <= (params.accounts_per_block_max + params.bankruptcies_per_block_max) as usize
        );
        assert!(
            on.accounts_in_deficit < off.accounts_in_deficit,
            "on {on:?}\noff {off:?}"
        );
        assert!(on.insurance_fund_drawdown_usdc < off.insurance_fund_drawdown_usdc);
        assert!(on.lowest_mark_fall_pct < off.lowest_mark_fall_pct);
    }

    /// Issue 13's goal for a 30% fall: with every protection on, the bad debt stays within
    /// the insurance fund; the backstop takes over at most one book and the short that sold
    /// the population its positions takes back the rest (before the backstop's depth cap
    /// nobody was deleveraged and the fund lost 364,473 of 1,000,000 at -30%; now 48,564);
    /// without the protections the fund is emptied and the short pays too.
    fn assert_absorbed(config: &CascadeConfig) {
        let on = run_variant(config, Protections::VARIANTS[0]);
        let fund = config.insurance_usdc as f64;
        assert!(on.insurance_fund_drawdown_usdc < fund, "{on:?}");
        assert!(on.bad_debt_usdc < fund, "{on:?}");
        assert_eq!(on.uncovered_usdc, 0.0, "{on:?}");
        assert_backstop_within_one_book(&on);
        assert!(
            on.open_interest > 0 && on.refused_open_interest > 0,
            "{on:?}"
        );
        let off = run_variant(config, Protections::VARIANTS[1]);
        assert!(off.deleveraged_contracts > 0, "{off:?}");
        assert!(on.accounts_in_deficit < off.accounts_in_deficit);
        assert!(on.insurance_fund_drawdown_usdc < off.insurance_fund_drawdown_usdc);
    }

    #[test]
    fn a_thirty_percent_crash_leaves_bad_debt_within_the_fund() {
        assert_absorbed(&CascadeConfig {
            crash_bps: 3_000,
            ..CascadeConfig::defaults()
        });
    }

    #[test]
    fn a_thirty_percent_flash_crash_leaves_bad_debt_within_the_fund() {
        assert_absorbed(&CascadeConfig::flash_crash());
    }

    /// The open-interest cap follows the book: the population is admitted up to ten books
    /// (20 levels of 200 contracts, 2,000 within 5% of the mark a side), and a trader refused
    /// asks for less.
    #[test]
    fn the_population_is_admitted_up_to_the_cap_the_book_sets() {
        let config = CascadeConfig {
            hold_blocks: 1,
            crash_bps: 0,
            ..CascadeConfig::defaults()
        };
        let on = run_variant(&config, Protections::VARIANTS[0]);
        assert!(
            on.open_interest <= 20_000 && on.open_interest > 19_000,
            "{on:?}"
        );
        let off = run_variant(&config, Protections::VARIANTS[1]);
        assert_eq!(off.traders_admitted, config.accounts);
        assert!(on.traders_admitted < off.traders_admitted);
    }
}
