//! Deliberate bugs the lab must catch: each run stops on a violation, names the seed and the
//! timeline, and replays to the same failure from that seed.

use bulwark_sim::lab::Violation;
use bulwark_sim::{Scenario, simulate};

/// A state change applied on one validator only (1 USDC forged into validator 1's insurance
/// fund at height 30, its outcome chain untouched): no event shows it, so the outcome digests
/// still agree; the chain's next state hash does, validator 1 halts there, and the lab stops
/// the run naming it, within `STATE_HASH_INTERVAL` (25) blocks and on the first seed.
#[test]
fn a_state_change_on_one_validator_only_is_caught_with_a_replayable_seed() {
    let scenario = Scenario::parse(
        r#"
name = "forked-state"
description = "a deliberate bug: validator 1's state forks at height 30"
validators = 4
duration = { blocks = 120 }
link = { latency_ms = 10, jitter_ms = 3, success_percent = 100 }
market = { instruments = ["BTC_USDC-PERPETUAL"], traders = 8, order_interval_ms = 100 }

[[fault]]
kind = "fork-state"
validator = 1
at_height = 30
"#,
    )
    .expect("a valid scenario");
    let failure = simulate(&scenario, 21).expect_err("the lab catches the forked state");
    println!("{failure}");
    match &failure.violation {
        Violation::Halted { validator, reason } => {
            assert_eq!(*validator, 1);
            assert!(reason.contains("state"), "{reason}");
        }
        other => panic!("caught as {other:?}"),
    }
    assert!(
        (30..=30 + 25 + 1).contains(&failure.height),
        "caught at height {}",
        failure.height
    );
    let printed = failure.to_string();
    assert!(printed.contains("seed 21"), "{printed}");
    assert!(
        printed.contains("fork-state") || printed.contains("ForkState"),
        "{printed}"
    );
    assert_eq!(
        failure.replay_command("forked.toml"),
        "bulwark simulate forked.toml --seed 21"
    );
    let replayed = simulate(&scenario, 21).expect_err("the replay fails too");
    assert_eq!(replayed, failure, "the seed replays the same failure");
}

/// Seeds a deliberate-bug scenario is tried on before the lab is said to have missed it.
const SEEDS_TO_FIND: u64 = 3;

/// Runs `scenario` on seeds 1, 2, ... until the lab stops one with a violation; the failure
/// and the seed it took. Panics when none of [`SEEDS_TO_FIND`] seeds finds the bug.
fn first_failure(scenario: &Scenario) -> bulwark_sim::Failure {
    for seed in 1..=SEEDS_TO_FIND {
        if let Err(failure) = simulate(scenario, seed) {
            println!("{failure}");
            assert_eq!(failure.seed, seed);
            let replayed = simulate(scenario, seed).expect_err("the replay fails too");
            assert_eq!(replayed, failure, "the seed replays the same failure");
            assert!(failure.to_string().contains(&format!("seed {seed}")));
            return failure;
        }
    }
    panic!(
        "{} ran {SEEDS_TO_FIND} seeds without a violation",
        scenario.name
    );
}

fn bug_scenario(name: &str, fault: &str) -> Scenario {
    Scenario::parse(&format!(
        r#"
name = "{name}"
description = "a deliberate bug"
validators = 4
duration = {{ blocks = 100 }}
link = {{ latency_ms = 10, jitter_ms = 3, success_percent = 100 }}
market = {{ instruments = ["BTC_USDC-PERPETUAL"], traders = 8, order_interval_ms = 50 }}

[[fault]]
{fault}
at_height = 30
"#
    ))
    .expect("a valid scenario")
}

/// A conservation error in the state machine, on every validator alike (1 USDC from nowhere
/// in each one's insurance fund at height 30): they all still agree, so only the money
/// invariant can see it, and a panic inside the run is reported like any violation. The lab finds it within a few blocks of height 30 on one of
/// [`SEEDS_TO_FIND`] seeds, naming money.
#[test]
fn a_conservation_error_on_every_validator_is_caught_by_the_money_invariant() {
    let scenario = bug_scenario("conservation-error", r#"kind = "conservation-error""#);
    let failure = first_failure(&scenario);
    // Debug builds: the exchange's own invariant walk after the next block panics the
    // validator, which the lab reports; optimised builds: the lab's check of the state.
    let what = match &failure.violation {
        Violation::Invariant { what, .. } => what.clone(),
        Violation::Panicked { message } => message.clone(),
        other => panic!("caught as {other:?}"),
    };
    assert!(what.contains("money not conserved"), "{what}");
    assert!(
        (30..=30 + 3).contains(&failure.height),
        "caught at height {}",
        failure.height
    );
}

/// A snapshot restore that drops a field (the next order id, rebuilt from the book: every
/// invariant still holds) on validator 2 at height 30: its next accepted order gets an id
/// another validator already gave, so its outcomes differ from the others' at once, and the
/// lab names the divergence within a few blocks, on one of [`SEEDS_TO_FIND`] seeds.
#[test]
fn a_restore_that_drops_a_field_is_caught_as_a_divergence() {
    let scenario = bug_scenario(
        "restore-drops-field",
        "kind = \"restore-drops-field\"\nvalidator = 2",
    );
    let failure = first_failure(&scenario);
    match &failure.violation {
        Violation::Divergence { first, second, .. } => {
            assert!(*first == 2 || *second == 2, "{:?}", failure.violation);
        }
        Violation::Halted { validator, .. } => assert_eq!(*validator, 2),
        other => panic!("caught as {other:?}"),
    }
    assert!(
        failure
            .timeline
            .iter()
            .any(|e| e.event.contains("RestoreDropsField")),
        "the timeline shows the bug"
    );
    assert!(
        (30..=30 + 10).contains(&failure.height),
        "caught at height {}",
        failure.height
    );
}

/// A mark a proposer sets, believed: the state machine of every honest validator alike takes
/// the perpetual marks a block's price inputs give (planted at height 30), and validator 1
/// puts a mark at 150% of the index in every block it proposes. The validators still agree
/// with each other; the lab's band invariant (a trading perpetual's mark within half the
/// perpetual band of its index, on every honest validator) names the stray mark at the first
/// block of validator 1's it sees after height 30, on one of [`SEEDS_TO_FIND`] seeds. Without
/// the bug the same proposer moves nothing (`tests/faults.rs`).
#[test]
fn a_mark_a_proposer_sets_is_caught_by_the_band_invariant() {
    let scenario = Scenario::parse(
        r#"
name = "proposer-marks-believed"
description = "a deliberate bug: the state machine believes a proposer's perpetual marks"
validators = 4
duration = { blocks = 100 }
link = { latency_ms = 10, jitter_ms = 3, success_percent = 100 }
market = { instruments = ["BTC_USDC-PERPETUAL"], traders = 8, order_interval_ms = 50 }

[[byzantine]]
kind = "mark-proposer"
validator = 1
mark_bps = 15_000

[[fault]]
kind = "proposer-marks-believed"
at_height = 30
"#,
    )
    .expect("a valid scenario");
    let failure = first_failure(&scenario);
    match &failure.violation {
        Violation::Invariant { what, .. } => {
            assert!(what.contains("marked at"), "{what}");
            assert!(what.contains("half the band"), "{what}");
        }
        other => panic!("caught as {other:?}"),
    }
    assert!(
        failure
            .timeline
            .iter()
            .any(|e| e.event.contains("ProposerMarksBelieved")),
        "the timeline shows the bug"
    );
    // Validator 1 leads one view in four: it has proposed within a dozen blocks.
    assert!(
        (30..=30 + 12).contains(&failure.height),
        "caught at height {}",
        failure.height
    );
}
