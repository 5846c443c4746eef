//! Faults and Byzantine validators of the lab's second batch, each run against the same seed
//! without it: a validator flooding its peers' mempools, a leader withholding observations,
//! a leader proposing marks, and validators' clocks skewed within the bound. (A proposer mark
//! that the state machine believes, a deliberate bug, is in `tests/bugs.rs`.)

use bulwark_node::mempool::MempoolLimits;
use bulwark_node::shared::lock;
use bulwark_sim::byzantine::{Flood, Withhold};
use bulwark_sim::catalogue;
use bulwark_sim::cluster::{ALL, Cluster, link};
use bulwark_sim::lab::Measured;
use bulwark_sim::scenario::{ByzantineRole, RunLength, Scenario};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn p99(latencies: &[u64]) -> u64 {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len().saturating_mul(99) / 100]
}

fn run(scenario: &Scenario, seed: u64) -> Measured {
    match bulwark_sim::simulate(scenario, seed) {
        Ok(measured) => measured,
        Err(failure) => panic!(
            "{failure}\nreplay: {}",
            failure.replay_command(&scenario.name)
        ),
    }
}

fn summary(label: &str, m: &Measured) {
    let economy = m
        .economy
        .as_ref()
        .map(|e| (e.index_error_bps_max, e.index_error_bps_mean_x100));
    println!(
        "{label}: height {} in {} ms, admitted {}, untimed {}, p99 {} ms, \
         index error bps (max, mean x100) {economy:?}, {:?}",
        m.height,
        m.elapsed_ms,
        m.admitted,
        m.untimed,
        p99(&m.latencies_ms),
        m.consensus,
    );
}

/// Validator 2 gossips 3,000 junk transactions a second to each peer (forgeries under the
/// traders' own keys, duplicates of one, throwaway keys' cancels), seed 1, 80 blocks, against
/// the same seed with no flooder: every honest mempool stays at the honest traffic's size
/// (admission refuses every junk transaction), and the honest traders' transactions finalize
/// as they do without the flood.
#[test]
fn a_flooding_validator_gets_no_junk_into_honest_mempools_and_traders_still_finalize() {
    let mut scenario = catalogue::load("flooder").expect("in the catalogue");
    scenario.duration = RunLength::Blocks(80);
    let flooded = run(&scenario, 1);
    let quiet = run(&scenario.fault_free(), 1);
    summary("flooded", &flooded);
    summary("quiet", &quiet);
    assert!(
        flooded.consensus.flood_sent > 10_000,
        "the flooder sent {}",
        flooded.consensus.flood_sent
    );
    // 16 traders every 100 ms: about 8 transactions wait for each 50 ms block.
    assert!(
        (1..=200).contains(&flooded.consensus.mempool_txs_max),
        "an honest mempool held {} (its bound: {})",
        flooded.consensus.mempool_txs_max,
        MempoolLimits::DEFAULT.txs_max
    );
    assert!(flooded.admitted + 10 >= quiet.admitted, "traders admitted");
    assert!(
        flooded.untimed <= quiet.untimed + 2,
        "flooded: {} admitted transactions never finalized, {} without",
        flooded.untimed,
        quiet.untimed
    );
    assert!(p99(&flooded.latencies_ms) <= 2 * p99(&quiet.latencies_ms));
}

/// The flood of the test above at 5,000 transactions a second, against peers whose gossip
/// budget is 1,000 a second from each peer (the lab's validators allow 20,000): over the
/// budget a peer's batches are dropped before any hash or signature check, so most of the
/// flood costs the honest validators nothing; the traders' gossip (about 40 transactions a
/// second from each validator) stays within it and their transactions still finalize. Seed
/// 5, until the honest three finalize height 80.
#[test]
fn a_flood_over_a_peer_s_gossip_budget_is_dropped_unread() {
    bulwark_sim::cluster::run(5, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        let sent = Arc::new(AtomicU64::new(0));
        let flood = Flood {
            txs_per_second: 5_000,
        };
        cluster.beside[3] = Some(flood.beside(3, sent.clone()));
        for i in ALL {
            cluster.start_tuned(i, |config| config.gossip.peer_txs_per_second = 1_000);
        }
        let _traders = cluster.start_traders(5, Duration::from_millis(100));
        cluster.wait_until(&[0, 1, 2], 80).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&ALL) >= 60, "all four agree");
        let sent = sent.load(Ordering::SeqCst);
        for i in [0, 1, 2] {
            let shared = cluster.shared(i).expect("running");
            let dropped = lock(&shared.status).gossip_dropped;
            let mempool = lock(&shared.mempool).len();
            println!("validator {i}: dropped {dropped} of {sent} sent, mempool {mempool}");
            assert!(
                dropped * 2 >= sent,
                "validator {i} dropped {dropped} of the {sent} junk transactions unread"
            );
            assert!(mempool <= 200, "validator {i}'s mempool holds {mempool}");
        }
        assert!(cluster.executed(0).1 > 0, "the traders traded");
    });
}

/// Validator 3, leading one view in four, keeps in its blocks only the quorum's worth (three
/// of four) of the highest observations, to lift the index; seed 1, 6 s, venues' noise
/// 20 bps, against the same seed without it. The index is the median of a block's
/// observations, so the leader's pick moves it only within the honest observations' spread:
/// the index error against the honest price stays within two venues' noise of the honest
/// run's. (`all-but-own` gives fewer than a quorum: its blocks leave the index where it was.)
#[test]
fn a_withholding_leader_moves_the_index_only_within_the_honest_spread() {
    let mut scenario = catalogue::load("withhold-observations").expect("in the catalogue");
    scenario.duration = RunLength::Seconds(6);
    let honest = run(&scenario.fault_free(), 1);
    let lifted = run(&scenario, 1);
    summary("honest", &honest);
    summary("withholding high", &lifted);
    assert_eq!(
        scenario.byzantine,
        vec![ByzantineRole::Withholder {
            validator: 3,
            withhold: Withhold::High
        }]
    );
    assert!(lifted.consensus.observations_withheld > 0, "it withheld");
    let error_max = |m: &Measured| m.economy.as_ref().expect("an economy").index_error_bps_max;
    assert!(
        error_max(&lifted) <= error_max(&honest) + 2 * 20,
        "index error {} bps with the withholder, {} without",
        error_max(&lifted),
        error_max(&honest)
    );
}

/// Validator 1 puts a mark at 150% of the index in every block it proposes (seed 1): honest
/// verifiers accept its blocks, the exchange ignores the marks under the oracle, and the
/// lab's band invariant holds on every honest validator at every height it checks.
#[test]
fn a_leader_proposing_marks_moves_no_mark_under_the_oracle() {
    let mut scenario = catalogue::load("mark-proposer").expect("in the catalogue");
    scenario.duration = RunLength::Blocks(80);
    let m = run(&scenario, 1);
    summary("mark-proposer", &m);
    assert!(m.consensus.marks_proposed > 0, "it proposed marks");
    assert_eq!(m.consensus.proposals_refused, 0, "its blocks break no duty");
    assert!(m.state_checks > 0);
}

/// Validator 1's clock 4.5 s behind and validator 2's 2 s ahead for 8 s from height 30
/// (seed 1): no violation (every finalized record agrees, every state passes its invariants,
/// no stall), the cluster recovers after the clocks are set right, and the run reaches its
/// 200 blocks.
#[test]
fn clocks_skewed_within_the_bound_keep_the_chain_live_and_safe() {
    let scenario = catalogue::load("clock-skew").expect("in the catalogue");
    let skewed = run(&scenario, 1);
    summary("skewed", &skewed);
    assert!(skewed.height >= 200);
    assert_eq!(
        skewed.recoveries.len(),
        2,
        "both skews healed and recovered"
    );
    assert!(skewed.heights_compared >= 200);
}

/// A skew beyond the node's lag bound is refused, naming the field and the bound.
#[test]
fn a_clock_skew_beyond_the_bound_is_refused_naming_the_field() {
    let text = |offset_ms: i64| {
        format!(
            r#"
name = "skew"
validators = 4
duration = {{ blocks = 10 }}
link = {{ latency_ms = 10, jitter_ms = 3, success_percent = 100 }}
market = {{ instruments = ["BTC_USDC-PERPETUAL"], traders = 4, order_interval_ms = 100 }}

[[fault]]
kind = "clock-skew"
validator = 1
offset_ms = {offset_ms}
at_height = 3
heal_after_s = 1.0
"#
        )
    };
    Scenario::parse(&text(-5_000)).expect("at the bound");
    Scenario::parse(&text(5_000)).expect("at the bound");
    for beyond in [-5_001, 9_000] {
        let error = Scenario::parse(&text(beyond)).expect_err("beyond the bound");
        let message = error.to_string();
        assert!(message.starts_with("fault[0].offset_ms:"), "{message}");
        assert!(message.contains("5000 ms"), "{message}");
    }
    let missing = Scenario::parse(&text(0).replace("offset_ms = 0\n", ""))
        .expect_err("no offset")
        .to_string();
    assert!(missing.contains("missing `offset_ms`"), "{missing}");
}

/// A clock behind the others, or ahead within the drift bound, costs the chain none of the
/// views its validator leads: the leader paces itself from its parent by at most the block
/// interval, and not at all from a parent dated ahead of its clock, instead of sleeping until
/// its own clock passes the parent's time (4.5 s behind: longer than the leader timeout, so
/// each of its views was skipped; 200 blocks took 17.8 s against 10.7 s without the skew, on
/// this seed; 0.4 s ahead: 16.2 s). Further ahead than twice the drift bound, its blocks are
/// refused and its views nullified at once, as a crashed leader's would be skipped (2 s
/// ahead: every verifier held each of its blocks 1.5 s before its vote, 17.8 s).
#[test]
fn a_clock_behind_or_ahead_costs_at_most_its_own_views() {
    let text = |offset_ms: i64| {
        format!(
            r#"
name = "skew-one"
validators = 4
duration = {{ blocks = 200 }}
link = {{ latency_ms = 10, jitter_ms = 3, success_percent = 100 }}
market = {{ instruments = ["BTC_USDC-PERPETUAL"], traders = 16, order_interval_ms = 100 }}

[[fault]]
kind = "clock-skew"
validator = 1
offset_ms = {offset_ms}
at_height = 30
heal_after_s = 8.0
"#
        )
    };
    let straight = run(&Scenario::parse(&text(0)).expect("parses"), 1);
    summary("no skew", &straight);
    // (offset, most elapsed time in percent of the run without it)
    for (offset_ms, percent_max) in [(-4_500, 105), (400, 105), (2_000, 125), (5_000, 125)] {
        let skewed = run(&Scenario::parse(&text(offset_ms)).expect("parses"), 1);
        summary(&format!("skew {offset_ms} ms"), &skewed);
        assert!(skewed.height >= 200);
        assert!(
            skewed.elapsed_ms <= straight.elapsed_ms * percent_max / 100,
            "skew {offset_ms} ms: {} ms against {} ms without it",
            skewed.elapsed_ms,
            straight.elapsed_ms
        );
        assert!(
            p99(&skewed.latencies_ms) <= p99(&straight.latencies_ms) * 3 / 2,
            "skew {offset_ms} ms: p99 {} ms against {} ms",
            p99(&skewed.latencies_ms),
            p99(&straight.latencies_ms)
        );
        if offset_ms > 1_000 {
            // Twice the lab's 500 ms drift bound: the skewed leader's blocks are refused (the
            // skewed validator, 5 s ahead, also refuses the others' as lagging its clock).
            assert!(skewed.consensus.refused_proposers.contains(&1));
        }
    }
}
