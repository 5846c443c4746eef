//! What the economy test files share: scoring a scenario without the baseline (a violation
//! fails with its replay command) and reading its economy figures.

#![allow(dead_code)] // each test file uses its own part

use bulwark_sim::catalogue;
use bulwark_sim::economy::Protection;
use bulwark_sim::scorecard::EconomyFigures;
use bulwark_sim::{Scenario, Scorecard, score};

/// Scores `scenario` on `seed` without the baseline, printing its table.
pub fn score_scenario(scenario: &Scenario, seed: u64) -> Scorecard {
    match score(scenario, seed, false) {
        Ok(card) => {
            println!("{}", card.table());
            card
        }
        Err(failure) => panic!(
            "{failure}\nreplay: {}",
            failure.replay_command(&scenario.name)
        ),
    }
}

/// Scores catalogue scenario `name` on `seed` with `off` switched off (if any), without the
/// baseline: the comparison rows of `score_compared`, one run each, so a test pays only for
/// the protection it looks at.
pub fn run(name: &str, seed: u64, off: Option<Protection>) -> Scorecard {
    let mut scenario = catalogue::load(name).expect("a catalogue scenario");
    if let Some(protection) = off {
        scenario = scenario.with_protection_off(protection);
    }
    score_scenario(&scenario, seed)
}

/// The scorecard's economy figures.
pub fn figures(card: &Scorecard) -> EconomyFigures {
    card.economy
        .as_ref()
        .expect("an economy section")
        .figures
        .clone()
}

/// A ten-block, four-validator scenario with four traders and `extra` appended.
pub fn scenario_text(extra: &str) -> String {
    format!(
        "name = \"x\"\nvalidators = 4\nduration = {{ blocks = 10 }}\n\
         link = {{ latency_ms = 10, jitter_ms = 3, success_percent = 100 }}\n\
         market = {{ instruments = [\"BTC_USDC-PERPETUAL\"], traders = 4, order_interval_ms = 100 }}\n{extra}"
    )
}

/// Why [`scenario_text`] with `extra` is refused (it must be).
pub fn refusal(extra: &str) -> String {
    Scenario::parse(&scenario_text(extra))
        .unwrap_err()
        .to_string()
}
