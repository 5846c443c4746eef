//! Scenario files: the catalogue parses, bad files are refused naming the field, and a run is
//! scored the same, byte for byte, on the same seed.

use bulwark_sim::catalogue::{self, CATALOGUE};
use bulwark_sim::scenario::{FaultAction, RunLength, Scenario, ScenarioError};
use bulwark_sim::score;

const HEADER: &str = r#"
name = "t"
validators = 4
duration = { blocks = 60 }
link = { latency_ms = 10, jitter_ms = 3, success_percent = 100 }
market = { instruments = ["BTC_USDC-PERPETUAL"], traders = 8, order_interval_ms = 100 }
"#;

#[test]
fn every_catalogue_scenario_parses_and_is_named_for_its_file() {
    assert!(CATALOGUE.len() >= 12, "a real catalogue");
    for (name, text) in CATALOGUE {
        let scenario = Scenario::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(scenario.name, *name);
        assert!(!scenario.description.is_empty(), "{name} says what it does");
    }
    let sizes: Vec<usize> = catalogue::names()
        .map(|n| catalogue::load(n).unwrap().validators)
        .collect();
    for n in [4, 7, 10] {
        assert!(sizes.contains(&n), "the catalogue has a cluster of {n}");
    }
    // Options: the squeeze lists a call and a put at each of its five strikes.
    let squeeze = catalogue::load("option-squeeze").expect("loads");
    let options = squeeze
        .economy
        .and_then(|e| e.options)
        .expect("option-squeeze lists options");
    assert_eq!(options.series().len(), 10);
}

#[test]
fn a_scenario_file_parses_into_its_timeline() {
    let text = format!(
        "{HEADER}
[[fault]]
kind = \"partition\"
groups = [[0, 1], [2, 3]]
at_s = 1.5
heal_after_s = 2.0
"
    );
    let scenario = Scenario::parse(&text).unwrap();
    assert_eq!(scenario.duration, RunLength::Blocks(60));
    assert_eq!(scenario.faults[0].heal_after_ms, Some(2_000));
    assert_eq!(
        scenario.faults[0].action,
        FaultAction::Partition {
            groups: vec![vec![0, 1], vec![2, 3]]
        }
    );
}

/// Each bad file, and the message that must name what is wrong.
#[test]
fn bad_scenarios_are_refused_naming_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            "[[fault]]\nkind = \"crash\"\nvalidator = 4\nat_height = 1\nheal_after_s = 1.0",
            "fault[0].validator: validator 4 does not exist",
        ),
        (
            "[[fault]]\nkind = \"crash\"\nat_height = 1\nheal_after_s = 1.0",
            "fault[0] (crash): missing `validator`",
        ),
        (
            "[[fault]]\nkind = \"crash\"\nvalidator = 1\nheal_after_s = 1.0",
            "fault[0]: give exactly one of `at_height` and `at_s`",
        ),
        (
            "[[fault]]\nkind = \"crash\"\nvalidator = 1\nat_height = 1",
            "fault[0] (crash): missing `heal_after_s`",
        ),
        (
            "[[fault]]\nkind = \"slow\"\nvalidator = 1\nat_height = 1\nheal_after_s = 1.0\ngroups = [[0], [1]]\nlatency_ms = 5",
            "fault[0] (slow): `groups` does not apply",
        ),
        (
            "[[fault]]\nkind = \"partition\"\ngroups = [[0, 1], [1, 2]]\nat_height = 1\nheal_after_s = 1.0",
            "fault[0].groups: a validator is in two groups",
        ),
        (
            "[[fault]]\nkind = \"meteor\"\nat_height = 1",
            "unknown variant `meteor`",
        ),
        (
            "[[fault]]\nkind = \"crash\"\nvalidatr = 1\nat_height = 1",
            "unknown field `validatr`",
        ),
        (
            "[[fault]]\nkind = \"link-storm\"\nlink = { latency_ms = 1, jitter_ms = 1, success_percent = 0 }\nat_height = 1\nheal_after_s = 1.0",
            "fault[0].link.success_percent: 0 is not within 1..=100",
        ),
        (
            "[[byzantine]]\nkind = \"mock\"\nvalidator = 3\nmock = \"nuller\"\n[[byzantine]]\nkind = \"mock\"\nvalidator = 2\nmock = \"nuller\"",
            "byzantine: 2 Byzantine validators, more than f = 1 for n = 4",
        ),
        (
            "[[byzantine]]\nkind = \"mock\"\nvalidator = 3\nmock = \"nuller\"\n[[fault]]\nkind = \"crash\"\nvalidator = 3\nat_height = 1\nheal_after_s = 1.0",
            "fault[0].validator: validator 3 is an impostor",
        ),
        (
            "[[byzantine]]\nkind = \"censor\"\nvalidator = 1\ntrader = 8",
            "byzantine[0].trader: trader 8 does not exist (market.traders = 8)",
        ),
        (
            "[[byzantine]]\nkind = \"front-runner\"\nvalidator = 1",
            "byzantine[0]: a front-runner or quote sniper trades through the account of a `front-runner` agent, and the scenario lists none",
        ),
        (
            "[[byzantine]]\nkind = \"quote-sniper\"\nvalidator = 1",
            "byzantine[0]: a front-runner or quote sniper trades through the account of a `front-runner` agent, and the scenario lists none",
        ),
        (
            "[[agents]]\nkind = \"noise\"\ncount = 1\ndeposit_usdc = 10\nsize = 1\ncross_ticks = 9",
            "agents[0] (noise): `cross_ticks` does not apply to this kind",
        ),
        (
            "[[agents]]\nkind = \"leveraged\"\ncount = 1\ndeposit_usdc = 10\nsize = 1\nleverage = 2\ncross_ticks = 0",
            "agents[0].cross_ticks: 0 is not within 1..=10000",
        ),
        (
            "[[agents]]\nkind = \"arbitrageur\"\ncount = 1\ndeposit_usdc = 10\nsize = 1\nmarket_orders = true",
            "agents[0] (arbitrageur): `market_orders` does not apply to this kind",
        ),
        (
            "[[byzantine]]\nkind = \"withholder\"\nvalidator = 1\nwithhold = \"high\"\naround_ms = 501",
            "byzantine[0].around_ms: 501 is not within 1..=500",
        ),
        (
            "[[byzantine]]\nkind = \"censor\"\nvalidator = 1\ntrader = 0\naround_ms = 100",
            "unknown field `around_ms`",
        ),
        (
            "[[fault]]\nkind = \"restore-drops-field\"\nvalidator = 1\nat_height = 1\nheal_after_s = 1.0",
            "fault[0] (restore-drops-field): `heal_after_s` does not apply",
        ),
    ];
    for (tail, expected) in cases {
        let text = format!("{HEADER}{tail}\n");
        let error = Scenario::parse(&text).expect_err(tail).to_string();
        assert!(
            error.contains(expected),
            "{tail}\n=> {error}\nexpected {expected}"
        );
    }
    let header_cases: &[(&str, &str, &str)] = &[
        (
            "validators = 4",
            "validators = 5",
            "validators: 5 is not 4, 7 or 10",
        ),
        (
            "duration = { blocks = 60 }",
            "duration = { blocks = 60, seconds = 3 }",
            "duration: give exactly one of `blocks` and `seconds`",
        ),
        (
            "traders = 8",
            "traders = 0",
            "market.traders: 0 is not within 1..=256",
        ),
        (
            "[\"BTC_USDC-PERPETUAL\"]",
            "[\"ETH_USDC-PERPETUAL\"]",
            "market.instruments: \"ETH_USDC-PERPETUAL\" is not one the lab lists",
        ),
    ];
    for (from, to, expected) in header_cases {
        let error = Scenario::parse(&HEADER.replace(from, to)).expect_err(to);
        assert!(
            !matches!(error, ScenarioError::Toml(_)) || expected.contains("unknown"),
            "{to}: validated, not just parsed"
        );
        let error = error.to_string();
        assert!(error.contains(expected), "{to} => {error}");
    }
}

/// The same scenario on the same seed gives byte-identical scorecards; a crash, its restart and
/// the recovery are all in it.
#[test]
fn the_same_seed_gives_a_byte_identical_scorecard() {
    let text = format!(
        "{HEADER}
[[fault]]
kind = \"crash\"
validator = 2
at_height = 20
heal_after_s = 3.0
"
    );
    let scenario = Scenario::parse(&text).unwrap();
    let first = score(&scenario, 7, true).unwrap();
    let second = score(&scenario, 7, true).unwrap();
    println!("{}", first.table());
    assert_eq!(first.to_json(), second.to_json());
    assert!(first.liveness.height >= 60);
    assert!(first.safety.heights_compared > 100);
    assert_eq!(
        first.liveness.recoveries.len(),
        1,
        "the crash healed and was recovered from"
    );
    assert!(first.latency.samples > 100 && first.latency.p50_ms.is_some());
    assert!(first.liveness.baseline_blocks_per_s.is_some());
    let other = score(&scenario, 8, false).unwrap();
    assert_ne!(
        first.to_json(),
        other.to_json(),
        "another seed, another run"
    );
}

/// Byte-identical with an impostor running Commonware's conflicter, a one-way cut and a link
/// storm too: every source of nondeterminism in the run comes from the seed.
#[test]
fn the_same_seed_gives_a_byte_identical_scorecard_under_byzantine_and_network_faults() {
    let text = format!(
        "{HEADER}
[[byzantine]]
kind = \"mock\"
validator = 3
mock = \"conflicter\"

[[fault]]
kind = \"one-way\"
from = 0
to = [1]
at_height = 15
heal_after_s = 2.0

[[fault]]
kind = \"link-storm\"
link = {{ latency_ms = 60, jitter_ms = 40, success_percent = 90 }}
at_s = 1.0
heal_after_s = 3.0
"
    );
    let scenario = Scenario::parse(&text).unwrap();
    let first = score(&scenario, 11, false).unwrap();
    let second = score(&scenario, 11, false).unwrap();
    assert_eq!(first.to_json(), second.to_json());
    assert_eq!(first.liveness.recoveries.len(), 2);
    assert!(
        first.consensus.faults_observed > 0,
        "the conflicter was reported"
    );
}

/// A leader that censors one trader delays that trader's transactions but cannot keep them
/// out: every validator's mempool has them (gossip), and the next honest leader includes
/// them. Same seed with and without the censor: it removed transactions from its proposals,
/// and no more admitted transactions went unfinalized than without it.
#[test]
fn a_censoring_leader_delays_but_does_not_deny_a_trader() {
    let scenario = catalogue::load("censor").expect("in the catalogue");
    let honest = Scenario {
        byzantine: Vec::new(),
        ..scenario.clone()
    };
    let censored = bulwark_sim::simulate(&scenario, 5).expect("no violation");
    let without = bulwark_sim::simulate(&honest, 5).expect("no violation");
    assert!(
        censored.consensus.censored_removed > 0,
        "the censor had something to remove"
    );
    assert_eq!(without.consensus.censored_removed, 0);
    assert!(
        censored.untimed <= without.untimed + 2,
        "censored: {} admitted transactions never finalized, {} without the censor",
        censored.untimed,
        without.untimed
    );
    let target = censored
        .latencies_censored_ms
        .as_ref()
        .expect("the censored trader's submissions are timed apart");
    assert!(without.latencies_censored_ms.is_none(), "no censor, no row");
    let mean = |l: &[u64]| l.iter().sum::<u64>() as f64 / l.len().max(1) as f64;
    println!(
        "censor removed {} transactions; unfinalized {} (without: {}); p99 latency {:?} ms (without: {:?}); the censored trader: {} timed, p50 {:?}, p99 {:?}, max {:?}, mean {:.1} ms (everyone without the censor: {:.1})",
        censored.consensus.censored_removed,
        censored.untimed,
        without.untimed,
        p99(&censored.latencies_ms),
        p99(&without.latencies_ms),
        target.len(),
        percentile(target, 50),
        p99(target),
        target.iter().max(),
        mean(target),
        mean(&without.latencies_honest_ms)
    );
    // The censor costs its target the blocks it leads, no more: the trader's transactions
    // wait longer on average than anyone's without the censor, and its slowest is within one
    // block interval (50 ms in the lab) of the slowest without the censor.
    assert!(
        !target.is_empty(),
        "the censored trader's submissions finalized"
    );
    assert!(
        mean(target) > mean(&without.latencies_honest_ms),
        "the censor delayed its target: mean {:.1} ms against {:.1} without it",
        mean(target),
        mean(&without.latencies_honest_ms)
    );
    let slowest_without = without
        .latencies_honest_ms
        .iter()
        .max()
        .copied()
        .unwrap_or(0);
    assert!(
        target.iter().all(|l| *l <= slowest_without + 50),
        "the censored trader waited more than a block longer than anyone without the censor: \
         {:?} ms against {slowest_without}",
        target.iter().max()
    );
}

fn percentile(latencies: &[u64], p: usize) -> Option<u64> {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().saturating_mul(p) / 100).copied()
}

fn p99(latencies: &[u64]) -> Option<u64> {
    percentile(latencies, 99)
}
