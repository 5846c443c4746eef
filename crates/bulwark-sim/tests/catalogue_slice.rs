//! The CI slice of the catalogue: every scenario on two seeds (no baseline run), each a test
//! of its own so they spread over the cores; any violation fails with the seed and timeline.
//! A scenario added to `scenarios/` must be added here (checked).

use bulwark_sim::catalogue::{self, CATALOGUE};
use bulwark_sim::score;

const SEEDS: [u64; 2] = [1, 2];

fn check(name: &str) {
    let scenario = catalogue::load(name).expect("a catalogue scenario");
    for seed in SEEDS {
        match score(&scenario, seed, false) {
            Ok(card) => {
                assert!(
                    card.safety.heights_compared > 0,
                    "{name}: validators compared"
                );
                assert!(card.traffic.trades_executed > 0, "{name}: trades happened");
                println!("{}", card.table());
            }
            Err(failure) => panic!("{failure}\nreplay: {}", failure.replay_command(name)),
        }
    }
}

macro_rules! slice {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($name);
            }
        )*

        #[test]
        fn the_slice_covers_the_whole_catalogue() {
            let covered = [$($name),*];
            for (name, _) in CATALOGUE {
                assert!(covered.contains(name), "{name} is not in the CI slice");
            }
            assert_eq!(covered.len(), CATALOGUE.len());
        }
    };
}

slice! {
    baseline => "baseline",
    crash_restart => "crash-restart",
    crash_two_of_7 => "crash-two-of-7",
    duty_breakers_7 => "duty-breakers-7",
    flapping => "flapping",
    isolate_leader => "isolate-leader",
    link_storm => "link-storm",
    mixed_10 => "mixed-10",
    mock_conflicter => "mock-conflicter",
    mock_equivocator => "mock-equivocator",
    mock_nuller => "mock-nuller",
    mock_outdated => "mock-outdated",
    one_way => "one-way",
    partition_2_2 => "partition-2-2",
    slow_validator => "slow-validator",
    wipe_state_sync => "wipe-state-sync",
}

#[test]
fn the_catalogue_names_load() {
    for name in catalogue::names() {
        catalogue::load(name).expect("loads");
    }
    assert!(catalogue::load("no-such-scenario").is_err());
}
