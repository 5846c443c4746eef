//! Implied volatility: round trips, independent reference prices, bound errors, and agreement
//! with the upstream `implied-vol` crate this solver was ported from.
//!
//! Accuracy target: 1e-12 relative, or the method's attainable precision where the price cannot
//! resolve the vol that finely. The attainable relative vol error for a relative price error `e`
//! is `kappa * e` with `kappa = P / (vol * vega)`; a double price carries `e = 2^-53`, so the
//! bound used is `max(1e-12, 8 * kappa * 2^-53)`. `kappa` exceeds 1e3 only close to the upper
//! bound: in-the-money options with very high total volatility, where intrinsic value swamps the
//! time value, and at-the-money at 500% vol over 5 years (total vol 11.2).

use bulwark_pricing::{Black76, OptionKind, PricingError, implied_vol};

const TARGET: f64 = 1e-12;
const EPSILON_PRICE: f64 = f64::EPSILON / 2.0;

fn kind_name(kind: OptionKind) -> bool {
    kind == OptionKind::Call
}

/// Relative tolerance for inverting the price of `model`: 1e-12 or the attainable precision.
fn tolerance(model: &Black76, kind: OptionKind) -> f64 {
    let greeks = model.greeks(kind).unwrap();
    let kappa = greeks.price / (model.vol() * greeks.vega);
    TARGET.max(8.0 * kappa * EPSILON_PRICE)
}

struct Tally {
    cases: usize,
    within_target: usize,
    at_bound: usize,
    worst_over_tolerance: f64,
}

/// Inverts `price` and checks it against `vol`. A price that rounds onto the upper bound is
/// accepted as `AboveUpperBound` (no finite vol gives it); anything else must be `Ok`.
fn check_inversion(
    kind: OptionKind,
    strike: f64,
    time_years: f64,
    vol: f64,
    rate: f64,
    price: f64,
    tally: &mut Tally,
) {
    let model = Black76::new(1.0, strike, time_years, vol, rate).unwrap();
    let tolerance = tolerance(&model, kind);
    tally.cases += 1;
    match implied_vol(kind, 1.0, strike, time_years, rate, price) {
        Ok(solved) => {
            let error = ((solved - vol) / vol).abs();
            assert!(
                error <= tolerance,
                "{kind:?} K={strike} T={time_years} vol={vol}: got {solved} (rel {error:e} > {tolerance:e})"
            );
            tally.within_target += usize::from(error <= TARGET);
            tally.worst_over_tolerance = tally.worst_over_tolerance.max(error / tolerance);
        }
        Err(PricingError::AboveUpperBound { price: p, bound }) if p == bound => tally.at_bound += 1,
        Err(e) => panic!("{kind:?} K={strike} T={time_years} vol={vol}: {e}"),
    }
}

#[test]
fn round_trip_is_within_1e_12_or_attainable_precision_across_the_grid() {
    // Vols 1% to 500%, log-moneyness -3 to +3 standard deviations, expiries 1 hour to 5 years.
    const VOLS: [f64; 9] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];
    const TIMES: [f64; 7] = [1.0 / 8760.0, 1.0 / 365.0, 7.0 / 365.0, 0.25, 1.0, 2.0, 5.0];
    const DEVIATIONS: [f64; 13] = [
        -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0,
    ];
    let mut tally = Tally {
        cases: 0,
        within_target: 0,
        at_bound: 0,
        worst_over_tolerance: 0.0,
    };
    for vol in VOLS {
        for time_years in TIMES {
            for z in DEVIATIONS {
                let strike = libm::exp(z * vol * libm::sqrt(time_years));
                for kind in [OptionKind::Call, OptionKind::Put] {
                    let model = Black76::new(1.0, strike, time_years, vol, 0.03).unwrap();
                    let price = model.price(kind).unwrap();
                    check_inversion(kind, strike, time_years, vol, 0.03, price, &mut tally);
                }
            }
        }
    }
    eprintln!(
        "round trip: {} cases, {} within 1e-12, {} priced onto the bound, worst error/tolerance {:.3}",
        tally.cases, tally.within_target, tally.at_bound, tally.worst_over_tolerance
    );
    assert_eq!(tally.cases, 9 * 7 * 13 * 2);
}

#[test]
fn out_of_the_money_round_trip_is_within_1e_12_up_to_total_vol_5() {
    // Out of the money the whole price is time value, so 1e-12 holds outright while the total
    // vol s = vol sqrt(T) stays below 5 (above it, even the OTM price nears its bound).
    let mut worst = 0.0_f64;
    for vol in [0.01, 0.05, 0.2, 0.5, 1.0, 2.0, 5.0] {
        for time_years in [1.0 / 8760.0, 1.0 / 365.0, 0.25, 1.0, 5.0] {
            let s = vol * libm::sqrt(time_years);
            if s > 5.0 {
                continue;
            }
            for z in [-3.0, -2.0, -1.0, -0.25, 0.25, 1.0, 2.0, 3.0] {
                let strike = libm::exp(z * s);
                let kind = if z > 0.0 {
                    OptionKind::Call
                } else {
                    OptionKind::Put
                };
                let price = Black76::new(1.0, strike, time_years, vol, 0.0)
                    .unwrap()
                    .price(kind)
                    .unwrap();
                let solved = implied_vol(kind, 1.0, strike, time_years, 0.0, price).unwrap();
                worst = worst.max(((solved - vol) / vol).abs());
            }
        }
    }
    eprintln!("out-of-the-money round trip: worst relative error {worst:e}");
    assert!(worst <= TARGET, "worst {worst:e}");
}

/// (kind, strike, time in years, vol, discounted price) with F = 1 and r = 0.03. Source:
/// `tests/reference/iv_reference.py` (mpmath 1.3.0 at 60 digits, rounded to double), output
/// copied from `tests/reference/iv_reference.txt`.
#[rustfmt::skip]
#[allow(clippy::approx_constant, reason = "strikes as the reference script printed them")]
const MPMATH_PRICES: [(OptionKind, f64, f64, f64, f64); 160] = [
    (OptionKind::Call, 0.9996795209819969, 1.0 / 8760.0, 0.01, 0.00032051874448085223),
    (OptionKind::Put, 0.9996795209819969, 1.0 / 8760.0, 0.01, 4.082400671730447e-08),
    (OptionKind::Call, 0.9998931622467666, 1.0 / 8760.0, 0.01, 0.0001157385945425366),
    (OptionKind::Put, 0.9998931622467666, 1.0 / 8760.0, 0.01, 8.901207191235809e-06),
    (OptionKind::Call, 1.0, 1.0 / 8760.0, 0.01, 4.262422790070233e-05),
    (OptionKind::Put, 1.0, 1.0 / 8760.0, 0.01, 4.262422790070233e-05),
    (OptionKind::Call, 1.0001068491687586, 1.0 / 8760.0, 0.01, 8.902158277814546e-06),
    (OptionKind::Put, 1.0001068491687586, 1.0 / 8760.0, 0.01, 0.00011575096111521294),
    (OptionKind::Call, 1.00032058175773, 1.0 / 8760.0, 0.01, 4.083709414907996e-08),
    (OptionKind::Put, 1.00032058175773, 1.0 / 8760.0, 0.01, 0.0003206214969433844),
    (OptionKind::Call, 0.9984309604638778, 1.0 / 365.0, 0.01, 0.0015691104345587304),
    (OptionKind::Put, 0.9984309604638778, 1.0 / 365.0, 0.01, 1.9985529051839942e-07),
    (OptionKind::Call, 0.9994767130398137, 1.0 / 365.0, 0.01, 0.000566838266719958),
    (OptionKind::Put, 0.9994767130398137, 1.0 / 365.0, 0.01, 4.359431465328446e-05),
    (OptionKind::Call, 1.0, 1.0 / 365.0, 0.01, 0.00020879876866314128),
    (OptionKind::Put, 1.0, 1.0 / 365.0, 0.01, 0.00020879876866314128),
    (OptionKind::Call, 1.0005235609327954, 1.0 / 365.0, 0.01, 4.361713893332111e-05),
    (OptionKind::Put, 1.0005235609327954, 1.0 / 365.0, 0.01, 0.0005671350410916674),
    (OptionKind::Call, 1.0015715052900536, 1.0 / 365.0, 0.01, 2.0016936416462725e-07),
    (OptionKind::Put, 1.0015715052900536, 1.0 / 365.0, 0.01, 0.0015715762999073673),
    (OptionKind::Call, 0.9704455335485082, 1.0, 0.01, 0.02868465331037453),
    (OptionKind::Put, 0.9704455335485082, 1.0, 0.01, 3.653346115041668e-06),
    (OptionKind::Call, 0.9900498337491681, 1.0, 0.01, 0.01046058670952311),
    (OptionKind::Put, 0.9900498337491681, 1.0, 0.01, 0.0008044923133381939),
    (OptionKind::Call, 1.0, 1.0, 0.01, 0.003871501410329671),
    (OptionKind::Put, 1.0, 1.0, 0.01, 0.003871501410329671),
    (OptionKind::Call, 1.010050167084168, 1.0, 0.01, 0.0008125775955051799),
    (OptionKind::Put, 1.010050167084168, 1.0, 0.01, 0.0105657173537522),
    (OptionKind::Call, 1.030454533953517, 1.0, 0.01, 3.764607068346078e-06),
    (OptionKind::Put, 1.030454533953517, 1.0, 0.01, 0.029558231058560248),
    (OptionKind::Call, 0.9351184817007782, 5.0, 0.01, 0.055851152284633256),
    (OptionKind::Put, 0.9351184817007782, 5.0, 0.01, 7.111961924665644e-06),
    (OptionKind::Call, 0.9778874672052759, 5.0, 0.01, 0.02061803355643319),
    (OptionKind::Put, 0.9778874672052759, 5.0, 0.01, 0.0015856002010534486),
    (OptionKind::Call, 1.0, 5.0, 0.01, 0.007677889332163998),
    (OptionKind::Put, 1.0, 5.0, 0.01, 0.007677889332163998),
    (OptionKind::Call, 1.0226125536284048, 5.0, 0.01, 0.0016214546706329713),
    (OptionKind::Put, 1.0226125536284048, 5.0, 0.01, 0.021084259945940324),
    (OptionKind::Call, 1.0693832060523671, 5.0, 0.01, 7.605412644321356e-06),
    (OptionKind::Put, 1.0693832060523671, 5.0, 0.01, 0.05972628429186007),
    (OptionKind::Call, 0.9936098964596531, 1.0 / 8760.0, 0.2, 0.006390895653769167),
    (OptionKind::Put, 0.9936098964596531, 1.0 / 8760.0, 0.2, 8.139973010701246e-07),
    (OptionKind::Call, 0.9978654122638055, 1.0 / 8760.0, 0.2, 0.0023124239004026336),
    (OptionKind::Put, 0.9978654122638055, 1.0 / 8760.0, 0.2, 0.00017784347442762933),
    (OptionKind::Call, 1.0, 1.0 / 8760.0, 0.2, 0.0008524843962269079),
    (OptionKind::Put, 1.0, 1.0 / 8760.0, 0.2, 0.0008524843962269079),
    (OptionKind::Call, 1.0021391539479776, 1.0 / 8760.0, 0.2, 0.00017822390899808194),
    (OptionKind::Put, 1.0021391539479776, 1.0 / 8760.0, 0.2, 0.0023173705311185316),
    (OptionKind::Call, 1.0064311995714974, 1.0 / 8760.0, 0.2, 8.192322801639098e-07),
    (OptionKind::Put, 1.0064311995714974, 1.0 / 8760.0, 0.2, 0.006431996779159214),
    (OptionKind::Call, 0.9690825930718687, 1.0 / 365.0, 0.2, 0.030918803750445537),
    (OptionKind::Put, 0.9690825930718687, 1.0 / 365.0, 0.2, 3.937874619843608e-06),
    (OptionKind::Call, 0.9895861253630185, 1.0 / 365.0, 0.2, 0.011280572788439622),
    (OptionKind::Put, 0.9895861253630185, 1.0 / 365.0, 0.2, 0.0008675540511853356),
    (OptionKind::Call, 1.0, 1.0 / 365.0, 0.2, 0.004175956352631223),
    (OptionKind::Put, 1.0, 1.0 / 365.0, 0.2, 0.004175956352631223),
    (OptionKind::Call, 1.0105234646788943, 1.0 / 365.0, 0.2, 0.0008766837256000016),
    (OptionKind::Put, 1.0105234646788943, 1.0 / 365.0, 0.2, 0.011399283497736539),
    (OptionKind::Call, 1.0319037893665255, 1.0 / 365.0, 0.2, 4.063507742266938e-06),
    (OptionKind::Put, 1.0319037893665255, 1.0 / 365.0, 0.2, 0.03190523075276465),
    (OptionKind::Call, 0.5488116360940264, 1.0, 0.2, 0.43790844319109024),
    (OptionKind::Put, 0.5488116360940264, 1.0, 0.2, 5.4710649479218314e-05),
    (OptionKind::Call, 0.8187307530779818, 1.0, 0.2, 0.19049736261461347),
    (OptionKind::Put, 0.8187307530779818, 1.0, 0.2, 0.014585431569439268),
    (OptionKind::Call, 1.0, 1.0, 0.2, 0.07730149359277912),
    (OptionKind::Put, 1.0, 1.0, 0.2, 0.07730149359277912),
    (OptionKind::Call, 1.2214027581601699, 1.0, 0.2, 0.017814686347869542),
    (OptionKind::Put, 1.2214027581601699, 1.0, 0.2, 0.2326740041197269),
    (OptionKind::Call, 1.822118800390509, 1.0, 0.2, 9.968930299765892e-05),
    (OptionKind::Put, 1.822118800390509, 1.0, 0.2, 0.7979212071882248),
    (OptionKind::Call, 0.26141638801745337, 5.0, 0.2, 0.6357784062407721),
    (OptionKind::Put, 0.26141638801745337, 5.0, 0.2, 7.360015056434991e-05),
    (OptionKind::Call, 0.6394073191618971, 5.0, 0.2, 0.33560563963836554),
    (OptionKind::Put, 0.6394073191618971, 5.0, 0.2, 0.025240643000515272),
    (OptionKind::Call, 1.0, 5.0, 0.2, 0.1522908515989217),
    (OptionKind::Put, 1.0, 5.0, 0.2, 0.1522908515989217),
    (OptionKind::Call, 1.5639483159353722, 5.0, 0.2, 0.0394750611137818),
    (OptionKind::Put, 1.5639483159353722, 5.0, 0.2, 0.5248698749308351),
    (OptionKind::Call, 3.825314883982083, 5.0, 0.2, 0.0002815437514171303),
    (OptionKind::Put, 3.825314883982083, 5.0, 0.2, 2.432052600307233),
    (OptionKind::Call, 0.9684552155589917, 1.0 / 8760.0, 1.0, 0.03154869450088722),
    (OptionKind::Put, 0.9684552155589917, 1.0 / 8760.0, 1.0, 4.018089777663605e-06),
    (OptionKind::Call, 0.9893725288090862, 1.0 / 8760.0, 1.0, 0.011512852295356008),
    (OptionKind::Put, 0.9893725288090862, 1.0 / 8760.0, 1.0, 0.0008854174998291856),
    (OptionKind::Call, 1.0, 1.0 / 8760.0, 1.0, 0.004262402518103418),
    (OptionKind::Put, 1.0, 1.0 / 8760.0, 1.0, 0.004262402518103418),
    (OptionKind::Call, 1.0107416275280112, 1.0 / 8760.0, 1.0, 0.0008949283248191383),
    (OptionKind::Put, 1.0107416275280112, 1.0 / 8760.0, 1.0, 0.011636519066497706),
    (OptionKind::Call, 1.0325722696663888, 1.0 / 8760.0, 1.0, 4.148968081445541e-06),
    (OptionKind::Put, 1.0325722696663888, 1.0 / 8760.0, 1.0, 0.03257630708579255),
    (OptionKind::Call, 0.8546808310316524, 1.0 / 365.0, 1.0, 0.1453257108613067),
    (OptionKind::Put, 0.8546808310316524, 1.0 / 365.0, 1.0, 1.8485443406572374e-05),
    (OptionKind::Call, 0.9490038796273454, 1.0 / 365.0, 1.0, 0.05523893739716817),
    (OptionKind::Put, 0.9490038796273454, 1.0 / 365.0, 1.0, 0.004247008314214909),
    (OptionKind::Call, 1.0, 1.0 / 365.0, 1.0, 0.02087749380191926),
    (OptionKind::Put, 1.0, 1.0 / 365.0, 1.0, 0.02087749380191926),
    (OptionKind::Call, 1.053736471965404, 1.0 / 365.0, 1.0, 0.004475227557428553),
    (OptionKind::Put, 1.053736471965404, 1.0 / 365.0, 1.0, 0.05820728300800982),
    (OptionKind::Call, 1.1700274110429485, 1.0 / 365.0, 1.0, 2.1628475490972896e-05),
    (OptionKind::Put, 1.1700274110429485, 1.0 / 365.0, 1.0, 0.1700350652370307),
    (OptionKind::Call, 0.049787068367863944, 1.0, 1.0, 0.922204165514481),
    (OptionKind::Put, 0.049787068367863944, 1.0, 1.0, 7.427009204066237e-05),
    (OptionKind::Call, 0.36787944117144233, 1.0, 1.0, 0.6587558718211715),
    (OptionKind::Put, 0.36787944117144233, 1.0, 1.0, 0.04531729884181065),
    (OptionKind::Call, 1.0, 1.0, 1.0, 0.3716077807711405),
    (OptionKind::Put, 1.0, 1.0, 1.0, 0.3716077807711405),
    (OptionKind::Call, 2.718281828459045, 1.0, 1.0, 0.12318518995654203),
    (OptionKind::Put, 2.718281828459045, 1.0, 1.0, 1.7906841157621862),
    (OptionKind::Call, 20.085536923187668, 1.0, 1.0, 0.0014917546759712701),
    (OptionKind::Put, 20.085536923187668, 1.0, 1.0, 18.522965817158582),
    (OptionKind::Call, 0.0012208548944264495, 5.0, 1.0, 0.8596721725175879),
    (OptionKind::Put, 0.0012208548944264495, 5.0, 1.0, 1.4995638220429415e-05),
    (OptionKind::Call, 0.10687792566038574, 5.0, 1.0, 0.8043281857825572),
    (OptionKind::Put, 0.10687792566038574, 5.0, 1.0, 0.0356108924771577),
    (OptionKind::Call, 1.0, 5.0, 1.0, 0.6338662570210193),
    (OptionKind::Put, 1.0, 5.0, 1.0, 0.6338662570210193),
    (OptionKind::Call, 9.356469016601148, 5.0, 1.0, 0.33319221211604094),
    (OptionKind::Put, 9.356469016601148, 5.0, 1.0, 7.525671749453507),
    (OptionKind::Call, 819.098161923489, 5.0, 1.0, 0.012282899703223353),
    (OptionKind::Put, 819.098161923489, 5.0, 1.0, 704.1558963659287),
    (OptionKind::Call, 0.8519178379030493, 1.0 / 8760.0, 5.0, 0.14810049232434203),
    (OptionKind::Put, 0.8519178379030493, 1.0 / 8760.0, 5.0, 1.883735721507017e-05),
    (OptionKind::Call, 0.9479801361296899, 1.0 / 8760.0, 5.0, 0.05635223383026746),
    (OptionKind::Put, 0.9479801361296899, 1.0 / 8760.0, 5.0, 0.004332548109871039),
    (OptionKind::Call, 1.0, 1.0 / 8760.0, 5.0, 0.021309579971556497),
    (OptionKind::Put, 1.0, 1.0 / 8760.0, 5.0, 0.021309579971556497),
    (OptionKind::Call, 1.054874423933281, 1.0 / 8760.0, 5.0, 0.0045702941915634464),
    (OptionKind::Put, 1.054874423933281, 1.0 / 8760.0, 5.0, 0.05944453019905689),
    (OptionKind::Call, 1.1738221170030283, 1.0 / 8760.0, 5.0, 2.2111706524935865e-05),
    (OptionKind::Put, 1.1738221170030283, 1.0 / 8760.0, 5.0, 0.17384363342934994),
    (OptionKind::Call, 0.45605772667919386, 1.0 / 365.0, 5.0, 0.5439646050942856),
    (OptionKind::Put, 0.45605772667919386, 1.0 / 365.0, 5.0, 6.703752034031255e-05),
    (OptionKind::Call, 0.7697327045910501, 1.0 / 365.0, 5.0, 0.24927334571184925),
    (OptionKind::Put, 0.7697327045910501, 1.0 / 365.0, 5.0, 0.01902497560421135),
    (OptionKind::Call, 1.0, 1.0 / 365.0, 5.0, 0.10410220577983319),
    (OptionKind::Put, 1.0, 1.0 / 365.0, 5.0, 0.10410220577983319),
    (OptionKind::Call, 1.299152282390402, 1.0 / 365.0, 5.0, 0.024716340478632918),
    (OptionKind::Put, 1.299152282390402, 1.0 / 365.0, 5.0, 0.3238440360206406),
    (OptionKind::Call, 2.1927048737482155, 1.0 / 365.0, 5.0, 0.0001469934975741985),
    (OptionKind::Put, 2.1927048737482155, 1.0 / 365.0, 5.0, 1.1927538407367633),
    (OptionKind::Call, 3.059023205018258e-07, 1.0, 5.0, 0.9704453098515605),
    (OptionKind::Put, 3.059023205018258e-07, 1.0, 5.0, 7.316459301028659e-08),
    (OptionKind::Call, 0.006737946999085467, 1.0, 5.0, 0.9697829400639391),
    (OptionKind::Put, 0.006737946999085467, 1.0, 5.0, 0.005876217085979929),
    (OptionKind::Call, 1.0, 1.0, 5.0, 0.9583932495880472),
    (OptionKind::Put, 1.0, 1.0, 5.0, 0.9583932495880472),
    (OptionKind::Call, 148.4131591025766, 1.0, 5.0, 0.8721079413028183),
    (OptionKind::Put, 148.4131591025766, 1.0, 5.0, 143.9285497786739),
    (OptionKind::Call, 3269017.3724721107, 1.0, 5.0, 0.23917632560047844),
    (OptionKind::Put, 3269017.3724721107, 1.0, 5.0, 3172402.5769388317),
    (OptionKind::Call, 2.7121908293679002e-15, 5.0, 5.0, 0.8607079764250578),
    (OptionKind::Put, 2.7121908293679002e-15, 5.0, 5.0, 2.3194702504201625e-15),
    (OptionKind::Call, 1.3945692377873923e-05, 5.0, 5.0, 0.8607079763795712),
    (OptionKind::Put, 1.3945692377873923e-05, 5.0, 5.0, 1.2003123179815122e-05),
    (OptionKind::Call, 1.0, 5.0, 5.0, 0.8607079569001137),
    (OptionKind::Put, 1.0, 5.0, 5.0, 0.8607079569001137),
    (OptionKind::Call, 71706.73014317946, 5.0, 5.0, 0.8607047147303449),
    (OptionKind::Put, 71706.73014317946, 5.0, 5.0, 61718.554594331996),
    (OptionKind::Call, 368705619520533.06, 5.0, 5.0, 0.8552017156406119),
    (OptionKind::Put, 368705619520533.06, 5.0, 5.0, 317347867674065.3),
];

#[test]
fn mpmath_prices_invert_to_their_vols() {
    let mut tally = Tally {
        cases: 0,
        within_target: 0,
        at_bound: 0,
        worst_over_tolerance: 0.0,
    };
    for (kind, strike, time_years, vol, price) in MPMATH_PRICES {
        check_inversion(kind, strike, time_years, vol, 0.03, price, &mut tally);
    }
    eprintln!(
        "mpmath prices: {} cases, {} within 1e-12, {} at the bound, worst error/tolerance {:.3}",
        tally.cases, tally.within_target, tally.at_bound, tally.worst_over_tolerance
    );
}

#[test]
fn price_below_intrinsic_is_named() {
    // Call F=100, K=80, no discounting: intrinsic 20.
    let error = implied_vol(OptionKind::Call, 100.0, 80.0, 0.5, 0.0, 19.5).unwrap_err();
    assert_eq!(
        error,
        PricingError::BelowIntrinsic {
            price: 19.5,
            intrinsic: 20.0
        }
    );
}

#[test]
fn price_above_upper_bound_is_named() {
    let error = implied_vol(OptionKind::Put, 100.0, 80.0, 0.5, 0.0, 80.5).unwrap_err();
    assert_eq!(
        error,
        PricingError::AboveUpperBound {
            price: 80.5,
            bound: 80.0
        }
    );
    let error = implied_vol(OptionKind::Call, 100.0, 80.0, 0.5, 0.0, 100.0).unwrap_err();
    assert_eq!(
        error,
        PricingError::AboveUpperBound {
            price: 100.0,
            bound: 100.0
        }
    );
}

#[test]
fn price_at_intrinsic_has_no_time_value() {
    let error = implied_vol(OptionKind::Call, 100.0, 80.0, 0.5, 0.0, 20.0).unwrap_err();
    assert_eq!(
        error,
        PricingError::NoTimeValue {
            price: 20.0,
            intrinsic: 20.0
        }
    );
}

#[test]
fn discounting_is_applied_before_inversion() {
    // Discounted price at 20% vol with r = 5%: inverting with the same rate recovers 20%.
    let model = Black76::new(100.0, 110.0, 2.0, 0.2, 0.05).unwrap();
    let price = model.price(OptionKind::Call).unwrap();
    let solved = implied_vol(OptionKind::Call, 100.0, 110.0, 2.0, 0.05, price).unwrap();
    assert!((solved - 0.2).abs() <= 1e-14);
}

#[test]
fn non_finite_price_is_a_typed_error() {
    for price in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = implied_vol(OptionKind::Call, 100.0, 100.0, 1.0, 0.0, price).unwrap_err();
        assert!(matches!(error, PricingError::NotFinite { .. }));
    }
}

#[test]
fn libm_port_agrees_with_upstream_implied_vol_crate() {
    // The port differs from `implied-vol` 2.1.0's Jaeckel solver only in using libm instead of
    // the C library for exp/ln/ln_1p/cbrt, so the two agree to a few ulps (most are bit-identical
    // on this machine's glibc).
    use implied_vol::{ImpliedBlackVolatility, solver::Jaeckel};
    let mut identical = 0;
    let mut total = 0;
    let mut worst_ulps = 0_u64;
    for vol in [0.01, 0.1, 0.3, 1.0, 3.0] {
        for time_years in [1.0 / 365.0, 0.1, 1.0, 4.0] {
            for z in [-2.0, -1.0, -0.3, 0.3, 1.0, 2.0] {
                let strike = libm::exp(z * vol * libm::sqrt(time_years));
                let kind = if z > 0.0 {
                    OptionKind::Call
                } else {
                    OptionKind::Put
                };
                let price = Black76::new(1.0, strike, time_years, vol, 0.0)
                    .unwrap()
                    .price(kind)
                    .unwrap();
                let ours = implied_vol(kind, 1.0, strike, time_years, 0.0, price).unwrap();
                let upstream = ImpliedBlackVolatility::builder()
                    .option_price(price)
                    .forward(1.0)
                    .strike(strike)
                    .expiry(time_years)
                    .is_call(kind_name(kind))
                    .build()
                    .unwrap()
                    .calculate_with::<Jaeckel>()
                    .unwrap();
                let ulps = ours.to_bits().abs_diff(upstream.to_bits());
                worst_ulps = worst_ulps.max(ulps);
                identical += usize::from(ulps == 0);
                total += 1;
            }
        }
    }
    eprintln!("port vs upstream: {identical}/{total} bit-identical, worst {worst_ulps} ulps");
    assert!(worst_ulps <= 64, "worst {worst_ulps} ulps");
}
