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

/// A fault-free cluster started from genesis does not skip view 2's leader. Simplex skips a
/// leader at once (nullifies its view before the leader timeout) when it has heard nothing from
/// it for the skip timeout while it has heard from a quorum. From genesis a validator has heard
/// only view 1's votes: one that formed view 1's notarization before the view-2 leader's first
/// vote reached it judged that leader silent. Two such validators nullified, the leader and one
/// other voted for its block, and the view waited for the certification timeout: with plain
/// round robin `baseline` stalled 2,040 ms on seed 1 and 2,060 on seed 18 (of 40; seeds 12 and 13
/// under `Deferred`), against 206 to 226 ms on every other seed (the first block's wait).
#[test]
fn a_cluster_started_from_genesis_does_not_skip_its_second_leader() {
    let scenario = catalogue::load("baseline").expect("in the catalogue");
    for seed in [1, 12, 13, 18] {
        let card = match bulwark_sim::score(&scenario, seed, false) {
            Ok(card) => card,
            Err(failure) => panic!("{failure}\nreplay: {}", failure.replay_command("baseline")),
        };
        println!(
            "seed {seed}: longest stall {} ms, views skipped (max) {}",
            card.liveness.longest_stall_ms, card.consensus.views_skipped_max
        );
        assert!(
            card.liveness.longest_stall_ms < 500,
            "seed {seed}: the chain stalled {} ms",
            card.liveness.longest_stall_ms
        );
    }
}

/// Validator 2 gossips 3,000 junk transactions a second to each peer (forgeries under the
/// traders' own keys, duplicates of one, throwaway keys' cancels), seed 1, 80 blocks, against
/// the same seed with no flooder: every honest mempool stays at the honest traffic's size
/// (admission refuses every junk transaction), every honest validator mutes the flooder's
/// gossip after its first forgery, and the honest traders' transactions finalize. Those a
/// trader sent through the flooder itself now reach a block only when the flooder leads (its
/// gossip is muted), so they wait up to a round of leaders longer: on this seed p99 259 ms
/// against 119 without the flood, and 20 admitted transactions still pending at the end
/// against 16 (before the mute, 2026-12-06: within 2 of the quiet run, p99 within twice).
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
        flooded.consensus.gossip_muted > 0,
        "the honest validators mute the forger's gossip"
    );
    assert!(
        flooded.untimed <= quiet.untimed + 8,
        "flooded: {} admitted transactions never finalized, {} without",
        flooded.untimed,
        quiet.untimed
    );
    assert!(p99(&flooded.latencies_ms) <= 2 * p99(&quiet.latencies_ms) + 250);
}

/// The flood of the test above without its forgeries, at 5,000 transactions a second,
/// against peers whose gossip budget is 1,000 a second from each peer (the lab's validators
/// allow 20,000): over the budget a peer's batches are dropped before any hash or signature
/// check, so most of the flood costs the honest validators nothing; the traders' gossip
/// (about 40 transactions a second from each validator) stays within it and their
/// transactions still finalize. Seed 5, until the honest three finalize height 80.
#[test]
fn a_flood_over_a_peer_s_gossip_budget_is_dropped_unread() {
    bulwark_sim::cluster::run(5, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        let sent = Arc::new(AtomicU64::new(0));
        // No forgeries: a forger is muted outright (the test above); this one is the budget's.
        let flood = Flood {
            txs_per_second: 5_000,
            forgeries: false,
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
            assert_eq!(shared.forgers(), 0, "no forgery, no mute");
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
    let (honest, lifted) = index_error_max_without_and_with(&scenario, 3, Withhold::High);
    assert!(
        lifted <= honest + 2 * 20,
        "index error {lifted} bps with the withholder, {honest} without"
    );
}

/// The index error max (bps) of `scenario` on seed 1 without its faults and with them, after
/// checking that its one Byzantine role is validator `validator` withholding by `withhold`
/// and that it left observations out.
fn index_error_max_without_and_with(
    scenario: &Scenario,
    validator: usize,
    withhold: Withhold,
) -> (u64, u64) {
    assert_eq!(
        scenario.byzantine,
        vec![ByzantineRole::Withholder {
            validator,
            withhold,
            around_ms: None,
        }]
    );
    let honest = run(&scenario.fault_free(), 1);
    let attacked = run(scenario, 1);
    summary("honest", &honest);
    summary(&format!("withholding {withhold:?}"), &attacked);
    assert!(attacked.consensus.observations_withheld > 0, "it withheld");
    let error_max = |m: &Measured| m.economy.as_ref().expect("an economy").index_error_bps_max;
    (error_max(&honest), error_max(&attacked))
}

/// Validator 1 carries, of every validly signed observation it has seen in blocks within the
/// oracle's 5 s freshness bound, the quorum's worth of the highest prices: during the 5% fall
/// of `withhold-replay`, the prices of seconds ago (seed 1, against the same seed without it).
/// The oracle drops an observation older than the newest of its validator and asset that a
/// block has counted, so the leader can only hold the index where the chain already has it:
/// the index error stays within 30 bps of the honest run's. Without that check (measured
/// before it landed) the same leader lifted the index error from 66 to 183 bps.
#[test]
fn a_leader_replaying_old_observations_moves_the_index_no_further_than_withholding() {
    let scenario = catalogue::load("withhold-replay").expect("in the catalogue");
    let (honest, replayed) = index_error_max_without_and_with(&scenario, 1, Withhold::ReplayHigh);
    assert!(
        replayed <= honest + 30,
        "index error {replayed} bps with the replaying leader, {honest} without"
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

/// One validator's clock `offset_ms` off from `at_height` for `heal_after_s`, in a run of
/// `blocks` blocks with `traders` traders.
fn skew_scenario(
    blocks: u64,
    traders: u64,
    offset_ms: i64,
    at_height: u64,
    heal_after_s: f64,
) -> String {
    format!(
        r#"
name = "skew"
validators = 4
duration = {{ blocks = {blocks} }}
link = {{ latency_ms = 10, jitter_ms = 3, success_percent = 100 }}
market = {{ instruments = ["BTC_USDC-PERPETUAL"], traders = {traders}, order_interval_ms = 100 }}

[[fault]]
kind = "clock-skew"
validator = 1
offset_ms = {offset_ms}
at_height = {at_height}
heal_after_s = {heal_after_s:.1}
"#
    )
}

/// A skew beyond the node's lag bound is refused, naming the field and the bound.
#[test]
fn a_clock_skew_beyond_the_bound_is_refused_naming_the_field() {
    let text = |offset_ms: i64| skew_scenario(10, 4, offset_ms, 3, 1.0);
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
///
/// Since validators verify before they vote (2026-12-07, marshal's `Inline`), a clock 4.5 s
/// behind also withholds its vote from every other leader's block, dated more than twice the
/// drift bound ahead of it, so those views need the other three's votes: 14.4 s against 12.7
/// s on seed 1 (before, it voted first and refused only to certify). Still a validator's own
/// cost, not a stop.
#[test]
fn a_clock_behind_or_ahead_costs_at_most_its_own_views() {
    let text = |offset_ms: i64| skew_scenario(200, 16, offset_ms, 30, 8.0);
    let straight = run(&Scenario::parse(&text(0)).expect("parses"), 1);
    summary("no skew", &straight);
    // (offset, most elapsed time and p99 latency in percent of the run without it): beyond
    // the bound its views are nullified, costing what a crashed leader's skipped views do.
    for (offset_ms, percent_max, p99_percent_max) in [
        (-4_500, 125, 200),
        (400, 105, 150),
        (2_000, 125, 200),
        (5_000, 125, 200),
    ] {
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
            p99(&skewed.latencies_ms) <= p99(&straight.latencies_ms) * p99_percent_max / 100,
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

/// The run's timeline notes, printed too (with `--nocapture`).
fn notes(m: &Measured) -> Vec<&str> {
    for entry in &m.timeline {
        println!(
            "{:>6} ms  h{:<4} {}",
            entry.at_ms, entry.height, entry.event
        );
    }
    m.timeline.iter().map(|e| e.event.as_str()).collect()
}

/// The catalogue's `disk-fault`: validator 2's syncs fail (a fifth, from height 30; what it
/// wrote since its last sync is lost as it stops), validator 1's writes (a tenth, torn, from
/// height 100), validator 3's every operation (from height 170). Each stops at its first
/// failure (a fail-stop: Commonware's storage code panics on it, and that is not a
/// `Violation::Panicked`), the other three keep finalizing while it is down, and at the heal
/// it restarts from that disk, recovers what the fault left and catches up. Every tick's
/// checks (one record per height on every validator, the invariants) hold throughout, and
/// validator 0, whose disk is sound, never stops.
#[test]
fn a_validator_whose_disk_fails_stops_and_restarts_from_its_disk_and_catches_up() {
    let scenario = catalogue::load("disk-fault").expect("in the catalogue");
    let m = run(&scenario, 1);
    summary("disk-fault", &m);
    let notes = notes(&m);
    for v in [2, 1, 3] {
        let stopped = format!("validator {v} stopped: its disk failed");
        assert!(
            notes.iter().any(|n| n.starts_with(&stopped)),
            "validator {v} never stopped on its disk"
        );
        let restarted = format!("validator {v} restarts from its disk");
        assert!(
            notes.iter().any(|n| n.starts_with(&restarted)),
            "validator {v} was never restarted"
        );
    }
    assert!(
        !notes.iter().any(|n| n.starts_with("validator 0 stopped")),
        "validator 0's disk was sound"
    );
    // Caught up: a recovery is every running validator (the restarted one too) past the
    // highest height any had at the heal.
    assert_eq!(m.recoveries.len(), 3, "every fault healed and recovered");
    for window in &m.fault_windows {
        let to_ms = window.to_ms.expect("healed");
        let finalized = m
            .first_seen_ms
            .values()
            .filter(|at| (window.from_ms..to_ms).contains(*at))
            .count();
        println!(
            "fault[{}]: {finalized} blocks finalized while it was down",
            window.fault
        );
        assert!(
            finalized >= 2,
            "fault[{}]: only {finalized} blocks finalized while a validator was down",
            window.fault
        );
    }
    assert!(m.height >= 240);
    assert!(m.heights_compared >= 240);
}

/// How many operations validator 2's lying disk lied on, from its heal's note ("validator 2's
/// disk stops lying: N" then `what`).
fn lies_noted(notes: &[&str], what: &str) -> u64 {
    notes
        .iter()
        .filter_map(|n| {
            let count = n.strip_prefix("validator 2's disk stops lying: ")?;
            count.strip_suffix(what)?.parse::<u64>().ok()
        })
        .sum()
}

/// Validators 0, 1 and 3, whose disks were sound, never stopped.
fn only_validator_2_stopped(notes: &[&str]) {
    for v in [0, 1, 3] {
        assert!(
            !notes
                .iter()
                .any(|n| n.starts_with(&format!("validator {v} stopped"))),
            "validator {v}'s disk was sound: {notes:?}"
        );
    }
}

/// The catalogue's `disk-lies`: validator 2 crashes at height 40 and restarts a second later
/// through a disk that answers one read in twenty with a bit flipped and otherwise works. Its
/// replay reads its journals, archives and snapshots through that disk. What the lab asks:
/// that no lie is believed. Every tick's checks (one record per height on every validator,
/// identical state digests, the invariants) hold on every running validator, validator 2
/// included whenever it runs; if it notices a lie it stops and restarts from its disk at the
/// heal; the others never stop; and it catches up.
#[test]
fn a_validator_whose_disk_lies_believes_no_lie_and_catches_up() {
    let scenario = catalogue::load("disk-lies").expect("in the catalogue");
    let m = run(&scenario, 1);
    summary("disk-lies", &m);
    let notes = notes(&m);
    let lies = lies_noted(&notes, " reads lied");
    assert!(lies > 0, "the disk lied at least once: {notes:?}");
    only_validator_2_stopped(&notes);
    // Once its disk is honest again it runs to the end: what the lies cost it (on seed 1,
    // a finalized block its archive no longer holds) it repairs from its peers instead of
    // halting (it did halt, at every restart, before the archive gap was synced across).
    let healed = notes
        .iter()
        .position(|n| n.starts_with("validator 2's disk stops lying"))
        .expect("the lying disk healed");
    assert!(
        !notes[healed..]
            .iter()
            .any(|n| n.starts_with("validator 2 stopped")),
        "validator 2 stopped on a sound disk: {notes:?}"
    );
    // Caught up: validator 2 runs after the heal, and a recovery is every running validator
    // past the highest height any had at the heal.
    assert_eq!(m.recoveries.len(), 2, "both faults healed and recovered");
    assert!(m.height >= 200);
    assert!(m.heights_compared >= 200);
}

/// The catalogue's `disk-rots`: from height 40, for 4 s, one write in twenty of validator 2's
/// is stored with a bit flipped (the write reports success, the bits stay flipped after the
/// heal), and at height 120 validator 2 crashes and restarts from that disk. What the lab
/// asks: that no rot is believed (every tick's checks hold on every running validator,
/// validator 2 included whenever it runs), and that the others never stop.
///
/// On seed 1 the rot costs validator 2 a finalized block from its archive (it stops on a
/// checksum at 4.2 s, restarts at the heal, and its execution waits at the missing height
/// for a verified snapshot from its peers). While it waited, every view it led used to wait out
/// the others' 1 s leader timeout: its proposal walked back to the missing block and never
/// answered, so the cluster ran at 60% of the fault-free rate on the same seed (11.9 against
/// 19.75 blocks a second). Now a node waiting for a state sync answers a proposal at once
/// (its leader's nullify moves the others on) and abstains from votes: 78%.
///
/// Which writes rot depends on the order of the validators' I/O: since validators verify
/// before they vote (2026-12-07, marshal's `Inline`), seed 1's rot is never read back, so the
/// test takes the first seed from 1 on whose rot validator 2 notices.
#[test]
fn a_validator_whose_disk_rots_believes_no_rot_and_holds_up_no_view_while_it_syncs() {
    let scenario = catalogue::load("disk-rots").expect("in the catalogue");
    let stopped = |m: &Measured| {
        m.timeline
            .iter()
            .any(|e| e.event.starts_with("validator 2 stopped: its disk failed"))
    };
    let (seed, m) = (1..=8)
        .map(|seed| (seed, run(&scenario, seed)))
        .find(|(_, m)| stopped(m))
        .expect("validator 2 noticed the rot and stopped on one of seeds 1 to 8");
    summary(&format!("disk-rots seed {seed}"), &m);
    let quiet = run(&scenario.fault_free(), seed);
    summary("disk-rots without faults", &quiet);
    let notes = notes(&m);
    let rotted = lies_noted(&notes, " writes stored a flipped bit, which stays");
    assert!(rotted > 0, "the disk rotted at least once: {notes:?}");
    only_validator_2_stopped(&notes);
    assert_eq!(m.recoveries.len(), 2, "both faults healed and recovered");
    assert!(m.height >= 240 && m.heights_compared >= 240);
    // Blocks a second, both runs to their end (the same number of blocks).
    let rate = |m: &Measured| m.height as f64 * 1000.0 / m.elapsed_ms as f64;
    let (faulted, fault_free) = (rate(&m), rate(&quiet));
    assert!(
        faulted >= 0.7 * fault_free,
        "a validator waiting for a state sync held up the cluster: {faulted:.2} against \
         {fault_free:.2} blocks a second"
    );
}

/// `disk-rots`, seed 19: the flipped bits outlive the fault. Restarted at the heal, validator 2
/// refuses its disk (its finalizations archive no longer recovers: "corruption detected"),
/// and every later start would refuse it again. The lab takes the operator's remedy: a
/// validator stopped on a disk that rotted, its fault healed, is wiped and restarts empty,
/// state syncing from its peers. Before, the refusal after the heal went unseen (the disk
/// counted as failed only while its plan was armed) and the run ended `NotRecovered`.
#[test]
fn a_validator_stopped_on_rot_after_the_heal_is_wiped_and_state_syncs() {
    let scenario = catalogue::load("disk-rots").expect("in the catalogue");
    let m = run(&scenario, 19);
    summary("disk-rots seed 19", &m);
    let notes = notes(&m);
    let wiped = notes
        .iter()
        .position(|n| n.starts_with("validator 2's disk rotted and its fault has healed: wiped"))
        .expect("validator 2 was wiped");
    let healed = notes
        .iter()
        .position(|n| n.starts_with("validator 2's disk stops lying"))
        .expect("the fault healed");
    assert!(healed < wiped, "wiped only after the heal: {notes:?}");
    assert!(
        !notes[wiped + 1..]
            .iter()
            .any(|n| n.starts_with("validator 2 stopped")),
        "the wiped validator stopped again: {notes:?}"
    );
    assert_eq!(m.recoveries.len(), 2, "both faults healed and recovered");
    assert!(m.height >= 240 && m.heights_compared >= 240);
}

/// A disk fault's failures are drawn from the seed: the same seed gives a byte-identical
/// scorecard, timeline included.
#[test]
fn a_disk_fault_replays_identically_on_the_same_seed() {
    let mut scenario = catalogue::load("disk-fault").expect("in the catalogue");
    scenario.faults.truncate(1);
    scenario.duration = RunLength::Blocks(80);
    let first = run(&scenario, 3);
    let second = run(&scenario, 3);
    assert_eq!(notes(&first), notes(&second));
    assert_eq!(first.first_seen_ms, second.first_seen_ms);
    assert_eq!(first.latencies_ms, second.latencies_ms);
}

/// A panic in a validator's task once its disk has failed stops that task alone, and the run
/// goes on; the same panic on a sound disk (armed, nothing failed yet) still aborts the run,
/// as the lab's `Violation::Panicked` reports it.
#[test]
fn a_panic_on_a_failed_disk_is_a_fail_stop_and_any_other_panic_still_aborts_the_run() {
    use bulwark_sim::clock::{ClockSkew, SkewedContext};
    use bulwark_sim::disk::{DiskFault, DiskOps, DiskPlan};
    use commonware_runtime::{Clock as _, Spawner as _, Storage as _, Supervisor as _};
    let plan = |ops| DiskPlan {
        ops,
        rate_percent: 100,
        torn: false,
        partition: None,
        lie: false,
    };
    let stopped = Arc::new(AtomicU64::new(0));
    let seen = stopped.clone();
    bulwark_sim::cluster::run(1, move |context| async move {
        let disk = Arc::new(DiskFault::default());
        let node = SkewedContext::new(context.child("node"), Arc::new(ClockSkew::default()))
            .with_disk(disk.clone());
        let (_sound, _) = node.open("sound", b"blob").await.expect("nothing armed");
        disk.arm(plan(DiskOps::All), 1);
        assert!(
            node.open("failing", b"blob").await.is_err(),
            "armed, it fails"
        );
        assert!(disk.failed());
        // As Commonware's storage users do with a storage error.
        let task = node.child("journal").spawn(|context| async move {
            let _ = context.open("failing", b"blob").await.expect("must open");
            unreachable!("the disk failed");
        });
        context.sleep(Duration::from_secs(1)).await;
        seen.store(disk.panics_stopped(), Ordering::SeqCst);
        task.abort();
    });
    assert_eq!(stopped.load(Ordering::SeqCst), 1, "stopped, not propagated");

    let aborted = std::panic::catch_unwind(|| {
        bulwark_sim::cluster::run(1, |context| async move {
            let disk = Arc::new(DiskFault::default());
            disk.arm(plan(DiskOps::Writes), 1);
            let node = SkewedContext::new(context.child("node"), Arc::new(ClockSkew::default()))
                .with_disk(disk);
            node.child("executor")
                .spawn(|_| async move { panic!("a validator's own assertion") });
            context.sleep(Duration::from_secs(1)).await;
        })
    });
    let payload = aborted.expect_err("a panic on a sound disk aborts the run");
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(message.contains("a validator's own assertion"), "{message}");
}

/// A disk fault is refused naming the field: what fails is required, a rate is 1 to 100, and
/// fields of other kinds do not apply.
#[test]
fn a_malformed_disk_fault_is_refused_naming_the_field() {
    let text = |fields: &str| {
        format!(
            r#"
name = "disk"
validators = 4
duration = {{ blocks = 10 }}
link = {{ latency_ms = 10, jitter_ms = 3, success_percent = 100 }}
market = {{ instruments = ["BTC_USDC-PERPETUAL"], traders = 4, order_interval_ms = 100 }}

[[fault]]
kind = "disk-fault"
validator = 1
at_height = 5
heal_after_s = 1.0
{fields}
"#
        )
    };
    let refused = |fields: &str| {
        Scenario::parse(&text(fields))
            .expect_err("refused")
            .to_string()
    };
    assert!(refused("").contains("fault[0] (disk-fault): missing `fails`"));
    let rate = refused("fails = \"writes\"\nrate_percent = 101");
    assert!(rate.contains("fault[0].rate_percent"), "{rate}");
    let zero = refused("fails = \"writes\"\nrate_percent = 0");
    assert!(zero.contains("fault[0].rate_percent"), "{zero}");
    let other = refused("fails = \"writes\"\noffset_ms = 5");
    assert!(other.contains("`offset_ms` does not apply"), "{other}");
    let empty = refused("fails = \"writes\"\npartition = \"\"");
    assert!(empty.contains("fault[0].partition"), "{empty}");
    let unknown = refused("fails = \"bits\"");
    assert!(unknown.contains("bits"), "{unknown}");
    let lie = refused("fails = \"syncs\"\nlie = true");
    assert!(lie.contains("fault[0].lie"), "{lie}");
    let lie_all = refused("fails = \"all\"\nlie = true");
    assert!(lie_all.contains("fault[0].lie"), "{lie_all}");
    assert!(Scenario::parse(&text("fails = \"reads\"\nlie = true")).is_ok());
    assert!(Scenario::parse(&text("fails = \"writes\"\nlie = true")).is_ok());
    let ok = Scenario::parse(&text("fails = \"all\"\ntorn = true")).expect("valid");
    assert_eq!(ok.faults[0].action.kind(), "disk-fault");
}

/// The node's own storage fails first: validator 3's snapshot store (its sync at the
/// snapshot of height 25), or its receipt archive (the receipts of the next block). The
/// executor does not panic: it halts the validator with a typed, logged storage error, the
/// lab stops it (the halt is a fail-stop, not `Violation::Halted`) and restarts it from its
/// disk at the heal, and it catches up and agrees with the others.
#[test]
fn a_failed_snapshot_or_receipt_write_halts_the_validator_cleanly_and_it_recovers() {
    for (partition, halted) in [
        (
            "snapshots",
            "halted: storage failure at height 25: snapshot storage",
        ),
        ("receipts", "halted: storage failure at height 2"),
    ] {
        let mut scenario = catalogue::load("disk-fault").expect("in the catalogue");
        scenario.duration = RunLength::Blocks(80);
        scenario.faults.truncate(1);
        scenario.faults[0].start = bulwark_sim::scenario::Trigger::Height(20);
        scenario.faults[0].action = bulwark_sim::scenario::FaultAction::DiskFault {
            validator: 3,
            fails: bulwark_sim::scenario::DiskFails::Syncs,
            rate_percent: 100,
            torn: false,
            partition: Some(partition.to_string()),
            lie: false,
        };
        let m = run(&scenario, 1);
        let notes = notes(&m);
        let stopped = notes
            .iter()
            .find(|n| n.starts_with("validator 3 stopped: its disk failed"))
            .unwrap_or_else(|| panic!("{partition}: never stopped: {notes:#?}"));
        assert!(stopped.contains(halted), "{partition}: {stopped}");
        assert_eq!(m.recoveries.len(), 1, "{partition}: recovered");
        assert!(m.height >= 80);
    }
}

/// Nothing acknowledged is lost: a fifth of validator 3's syncs fail from height 30, and as
/// it stops its disk loses every write not synced since. Still every transaction it holds as finalized (its executor stores and syncs
/// a block's receipts before it records them and acknowledges the block) has its receipt on
/// that disk after the restart, served by its receipt archive at the same height; it catches
/// up and agrees with every other validator at every common height.
#[test]
fn nothing_a_validator_acknowledged_is_lost_when_its_disk_fails() {
    use bulwark_node::mempool::TxDigest;
    use bulwark_node::receipt_archive::{self, RECEIPT_DIGESTS_PER_QUERY_MAX};
    use bulwark_node::shared::TxStatus;
    use bulwark_sim::disk::{DiskOps, DiskPlan};
    use commonware_runtime::Clock as _;
    let checked = Arc::new(AtomicU64::new(0));
    let seen = checked.clone();
    bulwark_sim::cluster::run(5, move |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(5, Duration::from_millis(100));
        cluster.wait_until(&ALL, 30).await;
        let disk = cluster.disks[3].clone();
        let plan = DiskPlan {
            ops: DiskOps::Syncs,
            rate_percent: 20,
            torn: true,
            partition: None,
            lie: false,
        };
        disk.arm(plan, 5);
        while !disk.failed() {
            cluster.context.sleep(Duration::from_millis(5)).await;
        }
        let shared = cluster.shared(3).expect("running");
        let stopped_at = lock(&shared.chain).finalized_height();
        let finalized: Vec<(TxDigest, u64)> = lock(&shared.receipts)
            .iter()
            .filter_map(|(digest, status)| match status {
                TxStatus::Finalized { height, .. } => Some((*digest, *height)),
                _ => None,
            })
            .collect();
        cluster.crash(3).await;
        cluster.wait_until(&[0, 1, 2], stopped_at + 20).await;
        let lost = disk.lose_unsynced(&cluster.context).await;
        assert!(lost > 0, "a power cut loses unsynced writes");
        disk.disarm();
        cluster.start(3);
        cluster.wait_until(&ALL, stopped_at + 40).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&ALL) >= 40);
        let shared = cluster.shared(3).expect("restarted");
        let sender = lock(&shared.receipt_queries)
            .clone()
            .expect("lookups served");
        assert!(finalized.len() > 100, "{} finalized", finalized.len());
        for chunk in finalized.chunks(RECEIPT_DIGESTS_PER_QUERY_MAX) {
            let digests = chunk.iter().map(|(digest, _)| *digest).collect();
            let stored = receipt_archive::lookup_many(sender.clone(), digests).await;
            for ((_, height), receipt) in chunk.iter().zip(stored) {
                let receipt = receipt.unwrap_or_else(|| {
                    panic!("the receipt of a transaction finalized at {height} was lost")
                });
                assert_eq!(receipt.height, *height);
            }
        }
        seen.store(finalized.len() as u64, Ordering::SeqCst);
    });
    assert!(checked.load(Ordering::SeqCst) > 100);
}
