//! The robust smile fit against corrupted quotes, and the fit's basic guarantees.
//!
//! Independent truth: quotes are priced from known SVI parameters (`TRUE_PARAMS`) with the crate's
//! Black-76 (itself checked against QuantLib in `tests/black.rs`); the fit never sees the truth.

use bulwark_pricing::{
    Black76, OptionKind, OutlierReason, PricingError, QUOTES_MAX, QuoteValue, RobustLoss, SmileFit,
    SmileQuote, SviParams, fit_smile,
};

const FORWARD: f64 = 100.0;
const TIME_YEARS: f64 = 0.5;
const RATE: f64 = 0.01;
const QUOTE_COUNT: usize = 50;
/// a, b, rho, m, sigma: a 30.6% at-the-money smile with a put skew.
const TRUE_PARAMS: [f64; 5] = [0.02, 0.15, -0.4, 0.05, 0.15];

fn true_params() -> SviParams {
    let [a, b, rho, m, sigma] = TRUE_PARAMS;
    SviParams::new(a, b, rho, m, sigma).unwrap()
}

fn strike(index: usize) -> f64 {
    // Log-moneyness from -0.6 to 0.5: about -3 to +2.3 standard deviations.
    let k = -0.6 + 1.1 * index as f64 / (QUOTE_COUNT - 1) as f64;
    FORWARD * libm::exp(k)
}

fn true_vol(strike: f64) -> f64 {
    true_params()
        .vol(libm::log(strike / FORWARD), TIME_YEARS)
        .unwrap()
}

fn price(kind: OptionKind, strike: f64, vol: f64) -> f64 {
    Black76::new(FORWARD, strike, TIME_YEARS, vol, RATE)
        .unwrap()
        .price(kind)
        .unwrap()
}

/// Out-of-the-money quote with a 2% wide market around the model price.
fn clean_quote(index: usize) -> SmileQuote {
    let strike = strike(index);
    let kind = if strike < FORWARD {
        OptionKind::Put
    } else {
        OptionKind::Call
    };
    let mid = price(kind, strike, true_vol(strike));
    SmileQuote {
        strike,
        value: QuoteValue::Price { kind, price: mid },
        bid_ask: Some((0.99 * mid, 1.01 * mid)),
        weight: None,
    }
}

fn clean_quotes() -> Vec<SmileQuote> {
    (0..QUOTE_COUNT).map(clean_quote).collect()
}

/// 20% of the quotes (10 of 50) corrupted in four ways; returns the quotes and the corrupted
/// indices.
fn corrupted_quotes() -> (Vec<SmileQuote>, Vec<usize>) {
    let mut quotes = clean_quotes();
    let fat_finger = [3, 17, 31];
    let stale = [8, 22, 40];
    let stale_forward = 27;
    let crossed = [12, 45];
    let below_intrinsic = [36];
    for &i in &fat_finger {
        let QuoteValue::Price { kind, price } = quotes[i].value else {
            unreachable!()
        };
        quotes[i].value = QuoteValue::Price {
            kind,
            price: 10.0 * price,
        };
        quotes[i].bid_ask = Some((9.9 * price, 10.1 * price));
    }
    for &i in &stale {
        // Quotes left over from before an 8 vol point drop in the market.
        let QuoteValue::Price { kind, .. } = quotes[i].value else {
            unreachable!()
        };
        let stale_price = price(kind, quotes[i].strike, true_vol(quotes[i].strike) + 0.08);
        quotes[i].value = QuoteValue::Price {
            kind,
            price: stale_price,
        };
        quotes[i].bid_ask = Some((0.99 * stale_price, 1.01 * stale_price));
    }
    {
        // A quote left over from when the underlying stood 5% higher.
        let i = stale_forward;
        let QuoteValue::Price { kind, .. } = quotes[i].value else {
            unreachable!()
        };
        let strike = quotes[i].strike;
        let stale_price = Black76::new(1.05 * FORWARD, strike, TIME_YEARS, true_vol(strike), RATE)
            .unwrap()
            .price(kind)
            .unwrap();
        quotes[i].value = QuoteValue::Price {
            kind,
            price: stale_price,
        };
        quotes[i].bid_ask = Some((0.99 * stale_price, 1.01 * stale_price));
    }
    for &i in &crossed {
        let QuoteValue::Price { price, .. } = quotes[i].value else {
            unreachable!()
        };
        quotes[i].bid_ask = Some((1.05 * price, 0.95 * price));
    }
    for &i in &below_intrinsic {
        // The in-the-money option at 90% of its discounted intrinsic value.
        let strike = quotes[i].strike;
        let kind = if strike < FORWARD {
            OptionKind::Call
        } else {
            OptionKind::Put
        };
        let intrinsic = libm::exp(-RATE * TIME_YEARS) * (FORWARD - strike).abs();
        quotes[i].value = QuoteValue::Price {
            kind,
            price: 0.9 * intrinsic,
        };
        quotes[i].bid_ask = None;
    }
    let mut corrupted: Vec<usize> = [
        &fat_finger[..],
        &stale,
        &[stale_forward],
        &crossed,
        &below_intrinsic,
    ]
    .concat();
    corrupted.sort_unstable();
    (quotes, corrupted)
}

fn fit(quotes: &[SmileQuote], loss: RobustLoss) -> SmileFit {
    fit_smile(FORWARD, TIME_YEARS, RATE, quotes, loss).unwrap()
}

#[test]
fn clean_fit_recovers_the_true_smile() {
    let fit = fit(&clean_quotes(), RobustLoss::Tukey);
    let true_atm = true_params().vol(0.0, TIME_YEARS).unwrap();
    assert!(
        (fit.vol_atm() - true_atm).abs() < 1e-6,
        "atm {} vs {}",
        fit.vol_atm(),
        true_atm
    );
    let worst = fit
        .quotes
        .iter()
        .map(|q| q.residual_vol.unwrap().abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-5, "worst residual {worst}");
    assert!(fit.outlier_indices().is_empty());
    assert!(fit.butterfly_violations.is_empty());
}

#[test]
fn robust_fit_holds_atm_vol_and_flags_every_corrupted_quote_while_least_squares_moves() {
    let clean_atm = fit(&clean_quotes(), RobustLoss::LeastSquares).vol_atm();
    let (quotes, corrupted) = corrupted_quotes();
    let robust = fit(&quotes, RobustLoss::Tukey);
    let plain = fit(&quotes, RobustLoss::LeastSquares);
    let robust_move = (robust.vol_atm() - clean_atm).abs();
    let plain_move = (plain.vol_atm() - clean_atm).abs();
    let clean = fit(&clean_quotes(), RobustLoss::LeastSquares);
    let smile_move = |f: &SmileFit| {
        (0..QUOTE_COUNT)
            .map(|i| (f.quotes[i].vol_fitted.unwrap() - clean.quotes[i].vol_fitted.unwrap()).abs())
            .fold(0.0, f64::max)
    };
    eprintln!(
        "largest move over the quoted strikes: robust {:.4}, least squares {:.4} vol points",
        smile_move(&robust) * 100.0,
        smile_move(&plain) * 100.0
    );
    eprintln!(
        "clean ATM {clean_atm:.6}; robust ATM {:.6} (moved {:.2e} vol points); \
         least squares ATM {:.6} (moved {:.4} vol points)",
        robust.vol_atm(),
        robust_move * 100.0,
        plain.vol_atm(),
        plain_move * 100.0
    );
    assert!(robust_move <= 0.005, "robust ATM moved {robust_move}");
    let flagged = robust.outlier_indices();
    for index in &corrupted {
        assert!(
            flagged.contains(index),
            "corrupted quote {index} not flagged: {:?}",
            robust.quotes[*index]
        );
    }
    let false_flags: Vec<usize> = flagged
        .iter()
        .copied()
        .filter(|i| !corrupted.contains(i))
        .collect();
    eprintln!("flagged {flagged:?}; clean quotes flagged: {false_flags:?}");
    assert!(
        false_flags.is_empty(),
        "clean quotes flagged: {false_flags:?}"
    );
    // Least squares on the same quotes: the ATM vol moves over a vol point (1.42 when written),
    // twice the robust fit's whole tolerance, and the smile over two.
    assert!(
        plain_move >= 0.01,
        "least squares ATM moved only {plain_move}"
    );
    assert!(
        smile_move(&plain) >= 0.02,
        "least squares smile moved only {}",
        smile_move(&plain)
    );
}

/// Multiplies each clean quote's vol by `1 + noise` with noise uniform in +-1% (a 0.3 vol point
/// spread at the money), from a fixed-seed xorshift generator.
fn noisy(quotes: &mut [SmileQuote], corrupted: &[usize]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for (i, quote) in quotes.iter_mut().enumerate() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.02;
        if corrupted.contains(&i) {
            continue;
        }
        let QuoteValue::Price { kind, .. } = quote.value else {
            unreachable!()
        };
        let noisy_price = price(kind, quote.strike, true_vol(quote.strike) * (1.0 + noise));
        quote.value = QuoteValue::Price {
            kind,
            price: noisy_price,
        };
        quote.bid_ask = Some((0.99 * noisy_price, 1.01 * noisy_price));
    }
}

#[test]
fn robust_fit_holds_atm_vol_and_flags_corrupted_quotes_under_noise() {
    let (mut quotes, corrupted) = corrupted_quotes();
    noisy(&mut quotes, &corrupted);
    let mut clean = clean_quotes();
    noisy(&mut clean, &[]);
    let clean_atm = fit(&clean, RobustLoss::LeastSquares).vol_atm();
    let robust = fit(&quotes, RobustLoss::Tukey);
    let plain = fit(&quotes, RobustLoss::LeastSquares);
    eprintln!(
        "with noise: clean ATM {clean_atm:.6}, robust moved {:.4}, least squares moved {:.4} vol points; flagged {:?}",
        (robust.vol_atm() - clean_atm).abs() * 100.0,
        (plain.vol_atm() - clean_atm).abs() * 100.0,
        robust.outlier_indices()
    );
    assert!((robust.vol_atm() - clean_atm).abs() <= 0.005);
    for index in &corrupted {
        assert!(
            robust.quotes[*index].outlier.is_some(),
            "corrupted quote {index} not flagged"
        );
    }
}

#[test]
fn corrupted_quotes_are_flagged_with_their_reason() {
    let (quotes, _) = corrupted_quotes();
    let robust = fit(&quotes, RobustLoss::Tukey);
    assert!(matches!(
        robust.quotes[12].outlier,
        Some(OutlierReason::Crossed { .. })
    ));
    assert!(matches!(
        robust.quotes[45].outlier,
        Some(OutlierReason::Crossed { .. })
    ));
    assert!(matches!(
        robust.quotes[36].outlier,
        Some(OutlierReason::BelowIntrinsic { .. })
    ));
    for i in [8, 22, 27, 40] {
        assert!(
            matches!(
                robust.quotes[i].outlier,
                Some(OutlierReason::Residual { .. })
            ),
            "{i}"
        );
    }
    for i in [3, 17, 31] {
        let reason = robust.quotes[i].outlier.unwrap();
        assert!(
            matches!(
                reason,
                OutlierReason::Residual { .. } | OutlierReason::AboveUpperBound { .. }
            ),
            "{i}: {reason:?}"
        );
    }
}

#[test]
fn huber_fit_also_stays_close_on_corrupted_quotes() {
    let clean_atm = fit(&clean_quotes(), RobustLoss::LeastSquares).vol_atm();
    let (quotes, _) = corrupted_quotes();
    let huber = fit(&quotes, RobustLoss::Huber);
    assert!(
        (huber.vol_atm() - clean_atm).abs() <= 0.005,
        "huber ATM {}",
        huber.vol_atm()
    );
}

#[test]
fn same_quotes_give_bit_identical_fits() {
    let (quotes, _) = corrupted_quotes();
    let first = fit(&quotes, RobustLoss::Tukey);
    let second = fit(&quotes, RobustLoss::Tukey);
    assert_eq!(first, second);
    assert_eq!(first.params.a().to_bits(), second.params.a().to_bits());
}

#[test]
fn every_input_quote_gets_a_row_in_input_order() {
    let (quotes, _) = corrupted_quotes();
    let robust = fit(&quotes, RobustLoss::Tukey);
    assert_eq!(robust.quotes.len(), quotes.len());
    for (row, quote) in robust.quotes.iter().zip(&quotes) {
        assert_eq!(row.strike, Some(quote.strike));
    }
}

#[test]
fn nan_and_invalid_quotes_are_flagged_not_fatal() {
    let mut quotes = clean_quotes();
    quotes[0].strike = f64::NAN;
    quotes[1].value = QuoteValue::Vol(f64::INFINITY);
    quotes[2].weight = Some(-1.0);
    quotes[3].bid_ask = Some((f64::NAN, 1.0));
    let result = fit(&quotes, RobustLoss::Tukey);
    for i in 0..4 {
        assert!(
            matches!(
                result.quotes[i].outlier,
                Some(OutlierReason::InvalidInput { .. })
            ),
            "{i}"
        );
    }
    assert_eq!(result.quotes[0].strike, None);
}

#[test]
fn too_few_usable_quotes_is_an_error() {
    let quotes: Vec<SmileQuote> = clean_quotes().into_iter().take(4).collect();
    let error = fit_smile(FORWARD, TIME_YEARS, RATE, &quotes, RobustLoss::Tukey).unwrap_err();
    assert_eq!(error, PricingError::TooFewQuotes { usable: 4, min: 5 });
}

#[test]
fn too_many_quotes_is_refused_whole() {
    let quotes = vec![clean_quote(0); QUOTES_MAX + 1];
    let error = fit_smile(FORWARD, TIME_YEARS, RATE, &quotes, RobustLoss::Tukey).unwrap_err();
    assert_eq!(
        error,
        PricingError::TooManyQuotes {
            count: QUOTES_MAX + 1,
            max: QUOTES_MAX
        }
    );
}

#[test]
fn vol_quotes_fit_like_price_quotes() {
    let quotes: Vec<SmileQuote> = (0..QUOTE_COUNT)
        .map(|i| SmileQuote {
            strike: strike(i),
            value: QuoteValue::Vol(true_vol(strike(i))),
            bid_ask: None,
            weight: None,
        })
        .collect();
    let from_vols = fit(&quotes, RobustLoss::Tukey);
    let from_prices = fit(&clean_quotes(), RobustLoss::Tukey);
    assert!((from_vols.vol_atm() - from_prices.vol_atm()).abs() < 1e-6);
}

/// Two vol levels, three quotes at one and two at the other: each quote's deviation from its
/// neighbours' median is one of two non-zero values, so their median absolute deviation is zero
/// and the screen's scale falls to its floor. Every quote then sits far outside the floor, and a
/// screen that weighted none of them left the fit nothing to fit (the process panicked; found by
/// `no_nan.rs` in CI). A ragged quote sheet like this is what a feed sends, not an attack.
#[test]
fn a_screen_that_rejects_every_quote_still_fits() {
    let quotes: Vec<SmileQuote> = [0.5, 0.5, 0.5, 0.6, 0.6]
        .iter()
        .enumerate()
        .map(|(i, &vol)| SmileQuote {
            strike: 80.0 + 10.0 * i as f64,
            value: QuoteValue::Vol(vol),
            bid_ask: None,
            weight: None,
        })
        .collect();
    for loss in [RobustLoss::Tukey, RobustLoss::Huber] {
        let fit = fit(&quotes, loss);
        let atm = fit.vol_atm();
        assert!((0.5..=0.6).contains(&atm), "{loss:?}: at the money {atm}");
        assert!(
            fit.quotes
                .iter()
                .all(|q| q.weight.is_finite() && q.weight >= 0.0)
        );
        assert!(
            fit.quotes.iter().any(|q| q.weight > 0.0),
            "{loss:?}: something fitted"
        );
    }
}
