//! The option series a scenario lists: `[economy] options = { expiries_days = [...],
//! strikes_bps = [...] }`, a call and a put at every strike of every expiry.
//!
//! Owns: [`OptionsSpec`] (validated, every error naming the field), the series' names, and
//! [`OPTIONS_EPOCH_MS`], where the clock of a run that lists options starts (option expiries
//! are dates in 2000..=2099, and the lab's runtime otherwise starts at the Unix epoch).
//! Never: lists anything itself (the agents' set-up does, through the admin's
//! `ListInstrument`, as the traders' set-up lists the perpetual).
//! Bounds: at most [`EXPIRIES_MAX`] expiries of 1 to 365 days and [`STRIKES_MAX`] strikes
//! of 10% to 1,000% of the market's start price; at most `2 * EXPIRIES_MAX * STRIKES_MAX`
//! series.

use crate::economy::prices::PRICE_START_USDC;
use crate::scenario::{ScenarioError, range};
use bulwark_types::{ExpiryDate, InstrumentName, Right, UnitPrice};
use serde::{Deserialize, Serialize};

/// Most expiries a scenario lists.
pub const EXPIRIES_MAX: usize = 4;
/// Most strikes per expiry.
pub const STRIKES_MAX: usize = 12;
/// A run that lists options starts at 2026-12-01 00:00 UTC (Unix milliseconds): a multiple of
/// every refit interval in whole seconds, so refits fall at whole multiples of it into the run.
pub const OPTIONS_EPOCH_MS: u64 = 1_796_083_200_000;
const DAY_MS: u64 = 86_400_000;

/// The option series of a scenario, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OptionsSpec {
    /// Days from the run's start (at [`OPTIONS_EPOCH_MS`]) to each expiry date, ascending.
    pub expiries_days: Vec<u32>,
    /// Strikes, basis points of the market's start price, ascending.
    pub strikes_bps: Vec<u32>,
}

/// `options = { ... }` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOptions {
    expiries_days: Vec<u32>,
    strikes_bps: Vec<u32>,
}

impl OptionsSpec {
    /// Every series: for each expiry, for each strike, the call then the put.
    pub fn series(&self) -> Vec<InstrumentName> {
        let mut names = Vec::with_capacity(2 * self.expiries_days.len() * self.strikes_bps.len());
        for days in &self.expiries_days {
            let date = expiry_date(*days);
            for bps in &self.strikes_bps {
                for right in [Right::Call, Right::Put] {
                    names.push(
                        InstrumentName::option(crate::cluster::btc(), date, strike(*bps), right)
                            .expect("a validated strike is positive"),
                    );
                }
            }
        }
        names
    }
}

/// The strike of `bps` of the start price: a whole multiple of 10 USDC, on the 5 USDC tick.
fn strike(bps: u32) -> UnitPrice {
    UnitPrice::from_usdc(PRICE_START_USDC * i64::from(bps) / 10_000)
}

/// The date `days` after [`OPTIONS_EPOCH_MS`] (Howard Hinnant's `civil_from_days`).
fn expiry_date(days: u32) -> ExpiryDate {
    let z = i64::try_from((OPTIONS_EPOCH_MS / DAY_MS) + u64::from(days)).expect("small") + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    ExpiryDate::new(year as u16, month as u8, day as u8).expect("a date within 2026..=2027")
}

pub(crate) fn validate(raw: RawOptions) -> Result<OptionsSpec, ScenarioError> {
    let ascending = |name: &str, values: &[u32], max: usize| {
        if values.is_empty() || values.len() > max {
            return Err(ScenarioError::Economy(format!(
                "economy.options.{name}: {} values, give 1 to {max}",
                values.len()
            )));
        }
        if values.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ScenarioError::Economy(format!(
                "economy.options.{name}: list them ascending, each once"
            )));
        }
        Ok(())
    };
    ascending("expiries_days", &raw.expiries_days, EXPIRIES_MAX)?;
    ascending("strikes_bps", &raw.strikes_bps, STRIKES_MAX)?;
    for (i, days) in raw.expiries_days.iter().enumerate() {
        range(
            &format!("economy.options.expiries_days[{i}]"),
            u64::from(*days),
            1,
            365,
        )?;
    }
    for (i, bps) in raw.strikes_bps.iter().enumerate() {
        range(
            &format!("economy.options.strikes_bps[{i}]"),
            u64::from(*bps),
            1_000,
            100_000,
        )?;
    }
    Ok(OptionsSpec {
        expiries_days: raw.expiries_days,
        strikes_bps: raw.strikes_bps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_is_the_first_of_december_2026_and_expiries_are_dates_after_it() {
        assert_eq!(expiry_date(0), ExpiryDate::new(2026, 12, 1).unwrap());
        assert_eq!(expiry_date(7), ExpiryDate::new(2026, 12, 8).unwrap());
        assert_eq!(expiry_date(31), ExpiryDate::new(2027, 1, 1).unwrap());
        // 08:00 UTC on the date.
        assert_eq!(
            expiry_date(7).expiry_millis(),
            OPTIONS_EPOCH_MS + 7 * DAY_MS + 8 * 3_600_000
        );
        let spec = OptionsSpec {
            expiries_days: vec![7],
            strikes_bps: vec![9_000, 11_000],
        };
        let names: Vec<String> = spec.series().iter().map(|n| n.to_string()).collect();
        assert_eq!(
            names,
            [
                "BTC_USDC-8DEC26-90000-C",
                "BTC_USDC-8DEC26-90000-P",
                "BTC_USDC-8DEC26-110000-C",
                "BTC_USDC-8DEC26-110000-P"
            ]
        );
    }
}
