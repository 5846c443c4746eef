//! The order path's margin update, a full revaluation, and the block's liquidation sweep.
//!
//! Run: `cargo bench -p bulwark-risk`. The account holds 50 option positions over 3 expiries
//! (7, 30 and 90 days; calls and puts, strikes 70,000 to 110,000 around an index of 100,000),
//! quantities from a fixed-seed xorshift generator, so every run measures the same work. Goals
//! (issue 4): incremental update under 5 us, full revaluation under 200 us, sweep of 100,000
//! accounts under 5 ms.

use std::hint::black_box;

use bulwark_pricing::{Black76, OptionKind};
use bulwark_risk::{
    AccountSummary, ContractVector, PortfolioMargin, PortfolioMarginParams, ScenarioVector,
    Valuation, sweep,
};
use bulwark_types::{
    AssetCode, ExpiryDate, InstrumentName, InstrumentSpec, Money, Multiplier, Qty, UnitPrice,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const POSITIONS: usize = 50;
const ACCOUNTS: usize = 100_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Book {
    margin: PortfolioMargin,
    valuation: Valuation,
    specs: Vec<InstrumentSpec>,
    vols: Vec<f64>,
    qty: Vec<i64>,
}

fn book() -> Book {
    let margin = PortfolioMargin::new(PortfolioMarginParams::defaults(), 1_600).unwrap();
    let now = ExpiryDate::new(2026, 1, 1).unwrap().expiry_millis();
    let valuation = Valuation {
        underlying: AssetCode::parse("BTC").unwrap(),
        index: UnitPrice::from_usdc(100_000),
        time_ms: now,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut specs = Vec::new();
    let mut vols = Vec::new();
    let mut qty = Vec::new();
    for i in 0..POSITIONS {
        let expiry = ["8JAN26", "31JAN26", "1APR26"][i % 3];
        // Distinct instruments: expiry i % 3, strike i / 3 (17 strikes), right by parity.
        let strike = 70_000 + 2_500 * (i / 3);
        let right = if i % 2 == 0 { 'C' } else { 'P' };
        specs.push(InstrumentSpec {
            name: InstrumentName::parse(&format!("BTC_USDC-{expiry}-{strike}-{right}")).unwrap(),
            tick_size: UnitPrice::from_usdc(5),
            multiplier: Multiplier::from_e8(1_000_000),
            lot_size: Qty::from_contracts(1),
            size_min: Qty::from_contracts(1),
        });
        vols.push(0.45 + (rng.next() % 50) as f64 / 100.0);
        qty.push((rng.next() % 401) as i64 - 200);
    }
    Book {
        margin,
        valuation,
        specs,
        vols,
        qty,
    }
}

fn contract_vectors(book: &Book) -> Vec<ContractVector> {
    book.specs
        .iter()
        .zip(&book.vols)
        .map(|(spec, vol)| {
            book.margin
                .contract_vector(&book.valuation, spec, *vol)
                .unwrap()
        })
        .collect()
}

fn account(book: &Book, vectors: &[ContractVector]) -> ScenarioVector {
    ScenarioVector::rebuild(
        book.margin.grid(),
        book.valuation,
        vectors
            .iter()
            .zip(&book.qty)
            .map(|(v, q)| (v, Qty::from_contracts(*q))),
    )
    .unwrap()
}

fn bench_order_path(c: &mut Criterion) {
    let book = book();
    let vectors = contract_vectors(&book);
    let mut account = account(&book, &vectors);
    let mut positions = book.qty.clone();
    let mut group = c.benchmark_group("portfolio_margin");
    // One fill of one contract in a rotating instrument, then the new requirement. The fill's
    // sign alternates per instrument so positions stay where they started.
    let mut step = 0usize;
    group.bench_function("incremental_fill_and_requirement_50_positions", |b| {
        b.iter(|| {
            let i = step % POSITIONS;
            let fill = if (step / POSITIONS) % 2 == 0 { 1 } else { -1 };
            step += 1;
            account
                .apply_fill(
                    &vectors[i],
                    Qty::from_contracts(positions[i]),
                    Qty::from_contracts(fill),
                )
                .unwrap();
            positions[i] += fill;
            black_box(book.margin.requirement(black_box(&account)).unwrap())
        })
    });
    group.bench_function("full_revaluation_50_positions", |b| {
        b.iter(|| {
            let vectors = contract_vectors(black_box(&book));
            let account = self::account(&book, &vectors);
            black_box(book.margin.requirement(&account).unwrap())
        })
    });
    group.bench_function("rebuild_from_cached_vectors_50_positions", |b| {
        b.iter(|| {
            let account = self::account(&book, black_box(&vectors));
            black_box(book.margin.requirement(&account).unwrap())
        })
    });
    group.bench_function("contract_vector_one_option", |b| {
        b.iter(|| {
            black_box(
                book.margin
                    .contract_vector(&book.valuation, black_box(&book.specs[7]), 0.6)
                    .unwrap(),
            )
        })
    });
    // The unit of work of a contract vector: one validated Black-76 price from bulwark-pricing.
    group.bench_function("black76_price_one", |b| {
        b.iter(|| {
            let model = Black76::new(black_box(1.1e11), 1e11, 30.0 / 365.0, 0.84, 0.0).unwrap();
            black_box(model.price(OptionKind::Call).unwrap())
        })
    });
    let fresh = self::account(&book, &vectors);
    group.bench_function("account_summary", |b| {
        b.iter(|| {
            black_box(
                book.margin
                    .summary(black_box(&fresh), Money::from_usdc(10_000_000))
                    .unwrap(),
            )
        })
    });
    group.finish();
}

fn bench_sweep(c: &mut Criterion) {
    let book = book();
    let vectors = contract_vectors(&book);
    let base = account(&book, &vectors);
    let requirement = book.margin.requirement(&base).unwrap();
    // 100,000 accounts that all hold the book, each with its own cushion above maintenance:
    // nobody is liquidatable, so the sweep flags no one and reads every summary.
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let summaries: Vec<AccountSummary> = (0..ACCOUNTS)
        .map(|_| {
            let cushion =
                3 * requirement.maintenance.micros() + i128::from(rng.next() % 1_000_000_000_000);
            book.margin
                .summary(&base, Money::from_micros(cushion))
                .unwrap()
        })
        .collect();
    let index = UnitPrice::from_usdc(101_000);
    let mut flagged = Vec::with_capacity(1_024);
    assert_eq!(sweep(&summaries, index, &mut flagged, 1_024).flagged, 0);
    let mut group = c.benchmark_group("liquidation_sweep");
    group.throughput(Throughput::Elements(ACCOUNTS as u64));
    group.bench_function("sweep_100k_accounts_none_liquidatable", |b| {
        b.iter(|| black_box(sweep(black_box(&summaries), index, &mut flagged, 1_024)))
    });
    group.finish();
}

criterion_group!(benches, bench_order_path, bench_sweep);
criterion_main!(benches);
