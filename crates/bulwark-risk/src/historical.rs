//! Named historical shocks for stress tests, each with where its numbers come from.
//!
//! Owns: [`historical_shocks`], the built-in scenario set.
//! Never: claims precision the sources do not have: every figure is marked approximate, with
//! the reasoning in its `source`.
//! Bounds: a fixed list.
//!
//! The index move is the underlying's fall within the day (open or day high to the low), not a
//! close-to-close return; the vol move is in vol points, added to every option's implied vol at
//! once, which is harsher than a term structure that moves short expiries most.

use crate::stress::Shock;

/// Name, index move (%), vol move (points), source.
const SHOCKS: [(&str, f64, f64, &str); 3] = [
    (
        "2020-03-12 Black Thursday",
        -39.0,
        100.0,
        "APPROXIMATE. BTC fell from about $7,900 at the 12 March 2020 open (UTC) to under \
         $4,900 at that day's low, about -39% (daily data as aggregators publish it; venues \
         differed by a few hundred dollars). Implied vol: Skew data quoted in the press put BTC \
         1-month ATM vol near 60% before the crash and at 180-184% at its 16 March peak \
         (CrossTower in Cointelegraph, AMBCrypto, 16-17 March 2020); +100 points is taken as \
         the move, between the day's rise and the peak.",
    ),
    (
        "2020-03-12/13 two-day low",
        -51.0,
        120.0,
        "APPROXIMATE. The same crash to its low early on 13 March, near $3,850 on several \
         venues: Cointelegraph called it a 51.4% crash. Vol from about 60% to the 16 March \
         peak of about 180% (sources as the one-day shock).",
    ),
    (
        "2021-05-19 crash",
        -30.0,
        60.0,
        "APPROXIMATE. BTC fell from a day high of about $43,000-45,000 to about $30,000-31,100 \
         within 19 May 2021 (press reports of a 30-31% intraday drop). \
         Vol: Deribit's DVOL (30-day implied) rose from roughly 90-100 to roughly 150-160 \
         around the crash; +60 points is an estimate from its public chart, not verified \
         against tick data.",
    ),
];

/// The built-in historical shocks, oldest first.
pub fn historical_shocks() -> Vec<Shock> {
    SHOCKS
        .iter()
        .map(|&(name, index_move_pct, vol_move_points, source)| Shock {
            name: name.to_string(),
            index_move_pct,
            vol_move_points,
            source: Some(source.to_string()),
        })
        .collect()
}
