//! Throughput of implied-vol solves, prices with greeks, and a 50-quote robust SVI fit.
//!
//! Run: `cargo bench -p bulwark-pricing`. Inputs come from a fixed-seed xorshift generator, so
//! every run measures the same work.

use std::hint::black_box;

use bulwark_pricing::{
    Black76, OptionKind, QuoteValue, RobustLoss, SmileQuote, SviParams, fit_smile, implied_vol,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Cases per batch: enough to spread moneyness, vol and expiry, few enough to stay in cache.
const BATCH: usize = 4_096;

struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// (kind, strike, time, vol, discounted price) with F = 1 and r = 0.02: vols 5% to 300%,
/// expiries 1 day to 3 years, strikes within +-2.5 standard deviations, out of the money.
fn iv_cases() -> Vec<(OptionKind, f64, f64, f64, f64)> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    (0..BATCH)
        .map(|_| {
            let vol = 0.05 + 2.95 * rng.next() * rng.next();
            let time_years = 1.0 / 365.0 + 3.0 * rng.next();
            let z = -2.5 + 5.0 * rng.next();
            let strike = libm::exp(z * vol * libm::sqrt(time_years));
            let kind = if z > 0.0 {
                OptionKind::Call
            } else {
                OptionKind::Put
            };
            let model = Black76::new(1.0, strike, time_years, vol, 0.02).unwrap();
            (kind, strike, time_years, vol, model.price(kind).unwrap())
        })
        .collect()
}

fn bench_implied_vol(c: &mut Criterion) {
    let cases = iv_cases();
    let mut group = c.benchmark_group("implied_vol");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("lets_be_rational_libm_4096", |b| {
        b.iter(|| {
            for &(kind, strike, time_years, _, price) in &cases {
                black_box(implied_vol(kind, 1.0, strike, time_years, 0.02, black_box(price)).ok());
            }
        })
    });
    // The upstream crate on the same (undiscounted) inputs, for comparison.
    let discount = |t: f64| libm::exp(-0.02 * t);
    group.bench_function("upstream_implied_vol_crate_4096", |b| {
        b.iter(|| {
            for &(kind, strike, time_years, _, price) in &cases {
                let solved = implied_vol::ImpliedBlackVolatility::builder()
                    .option_price(black_box(price) / discount(time_years))
                    .forward(1.0)
                    .strike(strike)
                    .expiry(time_years)
                    .is_call(kind == OptionKind::Call)
                    .build()
                    .and_then(|solver| solver.calculate_with::<implied_vol::solver::Jaeckel>());
                black_box(solved);
            }
        })
    });
    group.finish();
}

fn bench_greeks(c: &mut Criterion) {
    let cases = iv_cases();
    let mut group = c.benchmark_group("greeks");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("price_and_all_greeks_4096", |b| {
        b.iter(|| {
            for &(kind, strike, time_years, vol, _) in &cases {
                let model = Black76::new(1.0, black_box(strike), time_years, vol, 0.02).unwrap();
                black_box(model.greeks(kind).unwrap());
            }
        })
    });
    group.finish();
}

/// 50 OTM price quotes on a 25% smile, 1% vol noise, 10 of them corrupted.
fn fit_quotes() -> Vec<SmileQuote> {
    let params = SviParams::new(0.02, 0.15, -0.4, 0.05, 0.15).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..50)
        .map(|i| {
            let k = -0.6 + 1.1 * i as f64 / 49.0;
            let strike = 100.0 * libm::exp(k);
            let vol = params.vol(k, 0.5).unwrap() * (1.0 + 0.02 * (rng.next() - 0.5));
            let kind = if k < 0.0 {
                OptionKind::Put
            } else {
                OptionKind::Call
            };
            let price = Black76::new(100.0, strike, 0.5, vol, 0.01)
                .unwrap()
                .price(kind)
                .unwrap();
            let price = if i % 5 == 2 { 10.0 * price } else { price };
            SmileQuote {
                strike,
                value: QuoteValue::Price { kind, price },
                bid_ask: Some((0.99 * price, 1.01 * price)),
                weight: None,
            }
        })
        .collect()
}

fn bench_fit(c: &mut Criterion) {
    let quotes = fit_quotes();
    let mut group = c.benchmark_group("svi_fit");
    group.sample_size(20);
    for (name, loss) in [
        ("tukey_50_quotes", RobustLoss::Tukey),
        ("least_squares_50_quotes", RobustLoss::LeastSquares),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(fit_smile(100.0, 0.5, 0.01, black_box(&quotes), loss).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_implied_vol, bench_greeks, bench_fit);
criterion_main!(benches);
