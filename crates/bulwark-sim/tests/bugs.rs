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
