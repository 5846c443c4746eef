//! The CI slice of the catalogue: every scenario on two seeds (no baseline run), each a test
//! of its own so they spread over the cores; any violation fails with the seed and timeline.
//! A scenario added to `scenarios/` must be added here (checked).

use bulwark_sim::catalogue::{self, CATALOGUE};
use bulwark_sim::scenario::{ByzantineRole, FaultAction};
use bulwark_sim::{Scenario, Scorecard, score};

const SEEDS: [u64; 2] = [1, 2];

fn check(name: &str) {
    let scenario = catalogue::load(name).expect("a catalogue scenario");
    for seed in SEEDS {
        match score(&scenario, seed, false) {
            Ok(card) => {
                println!("{}", card.table());
                assert!(
                    card.safety.heights_compared > 0,
                    "{name}: validators compared"
                );
                assert!(card.traffic.trades_executed > 0, "{name}: trades happened");
                check_blame(name, &scenario, &card);
            }
            Err(failure) => panic!("{failure}\nreplay: {}", failure.replay_command(name)),
        }
    }
}

/// Every leader breaking a duty is named by the honest validators, and nobody else is (but in
/// a run with a skewed clock: a block dated more than twice the drift bound ahead of a
/// verifier's clock gets no vote, so the validator whose clock runs ahead is refused, and one
/// whose clock runs behind refuses the others' blocks, by design); no honest validator's p2p
/// blocks another honest one.
fn check_blame(name: &str, scenario: &Scenario, card: &Scorecard) {
    let breakers: Vec<usize> = scenario
        .byzantine
        .iter()
        .filter_map(|role| match role {
            ByzantineRole::DutyBreaker { validator, .. } => Some(*validator),
            ByzantineRole::Mock { .. }
            | ByzantineRole::Censor { .. }
            | ByzantineRole::Withholder { .. }
            | ByzantineRole::MarkProposer { .. }
            | ByzantineRole::Flooder { .. }
            | ByzantineRole::FrontRunner { .. }
            | ByzantineRole::QuoteSniper { .. } => None,
        })
        .collect();
    let skewed = scenario
        .faults
        .iter()
        .any(|f| matches!(f.action, FaultAction::ClockSkew { .. }));
    if skewed {
        assert!(
            breakers
                .iter()
                .all(|b| card.consensus.refused_proposers.contains(b)),
            "{name}: every duty breaker is named"
        );
    } else {
        assert_eq!(
            card.consensus.refused_proposers, breakers,
            "{name}: the refused proposers are exactly the duty breakers"
        );
    }
    let byzantine: Vec<usize> = scenario.byzantine.iter().map(|r| r.validator()).collect();
    assert!(
        !card
            .consensus
            .blocked
            .iter()
            .any(|(a, b)| !byzantine.contains(a) && !byzantine.contains(b)),
        "{name}: an honest validator blocked another: {:?}",
        card.consensus.blocked
    );
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
    agent_key_squat => "agent-key-squat",
    agents_market => "agents-market",
    backstop_whale => "backstop-whale",
    backstop_whale_warm => "backstop-whale-warm",
    baseline => "baseline",
    cancel_flood => "cancel-flood",
    censor => "censor",
    clock_skew => "clock-skew",
    crash_restart => "crash-restart",
    crash_two_of_7 => "crash-two-of-7",
    disk_fault => "disk-fault",
    disk_lies => "disk-lies",
    disk_rots => "disk-rots",
    duty_breakers_7 => "duty-breakers-7",
    flapping => "flapping",
    flooder => "flooder",
    front_run => "front-run",
    front_run_liquidations => "front-run-liquidations",
    front_run_options => "front-run-options",
    funding_push => "funding-push",
    isolate_leader => "isolate-leader",
    liquidation_cascade => "liquidation-cascade",
    liquidation_cascade_warm => "liquidation-cascade-warm",
    link_storm => "link-storm",
    mark_proposer => "mark-proposer",
    mixed_10 => "mixed-10",
    mock_conflicter => "mock-conflicter",
    mock_equivocator => "mock-equivocator",
    mock_nuller => "mock-nuller",
    mock_outdated => "mock-outdated",
    one_way => "one-way",
    option_squeeze => "option-squeeze",
    oracle_outage_early_withdrawal => "oracle-outage-early-withdrawal",
    oracle_outage_withdrawal => "oracle-outage-withdrawal",
    partition_2_2 => "partition-2-2",
    quote_sniper => "quote-sniper",
    quote_sniper_frozen_index => "quote-sniper-frozen-index",
    slow_validator => "slow-validator",
    spam_throwaway_keys => "spam-throwaway-keys",
    spoof_touch => "spoof-touch",
    squeeze_perpetual => "squeeze-perpetual",
    validators_lie => "validators-lie",
    validators_lie_withdrawal => "validators-lie-withdrawal",
    venue_false_price => "venue-false-price",
    sweep_200 => "sweep-200",
    sweep_byzantine_7 => "sweep-byzantine-7",
    wipe_state_sync => "wipe-state-sync",
    withhold_around_refit => "withhold-around-refit",
    withhold_observations => "withhold-observations",
    withhold_replay => "withhold-replay",
    withhold_timed => "withhold-timed",
}

#[test]
fn the_catalogue_names_load() {
    for name in catalogue::names() {
        catalogue::load(name).expect("loads");
    }
    assert!(catalogue::load("no-such-scenario").is_err());
}

/// The scenarios too big for this slice, run on a release build (`scenarios-release/`), are
/// valid files whose name is their file's.
#[test]
fn the_release_scenarios_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios-release");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("the directory") {
        let path = entry.expect("an entry").path();
        let scenario = catalogue::load(path.to_str().expect("a UTF-8 path")).expect("loads");
        assert_eq!(
            Some(scenario.name.as_str()),
            path.file_stem().and_then(|s| s.to_str())
        );
        files += 1;
    }
    assert!(files > 0);
}
