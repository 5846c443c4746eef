//! A validator whose execution or state diverges from the network's halts, loudly, while the
//! others keep finalizing; a snapshot server that forges is refused and blocked. These live
//! in the library's unit tests because the faults they inject (`Executor::inject_fault`,
//! `Executor::inject_state_fault`, `sync::forge_for_test`) exist only in `cfg(test)` builds.

use crate::common::{ALL, Cluster, link, run};
use crate::shared::lock;
use commonware_cryptography::Signer as _;
use commonware_runtime::Clock as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Four validators trading (traders of `traders_seed`, every 100 ms) until all reach height 40;
/// the traders' task is returned, to hold while they trade.
async fn four_trading_past_40(
    context: commonware_runtime::deterministic::Context,
    traders_seed: u64,
) -> (Cluster, commonware_runtime::Handle<()>) {
    let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
    for i in ALL {
        cluster.start(i);
    }
    let traders = cluster.start_traders(traders_seed, Duration::from_millis(100));
    cluster.wait_until(&ALL, 40).await;
    (cluster, traders)
}

/// Waits (up to 120 s) until validator `i` halts, `what` naming its fault if it never does;
/// returns the reason it gives.
async fn halt_reason(cluster: &Cluster, i: usize, what: &str) -> String {
    let shared = cluster.shared(i).unwrap();
    let deadline = cluster.context.current() + Duration::from_secs(120);
    while lock(&shared.status).halted.is_none() {
        assert!(cluster.context.current() < deadline, "{what} never halted");
        cluster.context.sleep(Duration::from_millis(100)).await;
    }
    lock(&shared.status).halted.clone().unwrap()
}

#[test]
fn a_diverged_validator_halts_naming_the_height_and_both_digests() {
    run(9, |context| async move {
        let (cluster, _traders) = four_trading_past_40(context, 19).await;
        let victim = cluster.shared(3).unwrap();
        victim.fault_drop_last_tx_at.store(45, Ordering::SeqCst);
        // It halts within a few blocks of the fault; the others go on without it.
        let reason = halt_reason(&cluster, 3, "the diverged validator").await;
        let faulted = victim.history.lock().unwrap().back().unwrap().height;
        assert!(
            reason.contains(&format!("state divergence at height {}", faulted + 1)),
            "{reason}"
        );
        assert!(
            reason.contains("block commits to") && reason.contains("this node computed"),
            "{reason}"
        );
        let halted_at = cluster.finalized_height(3);
        let goal = halted_at + 40;
        cluster.wait_until(&[0, 1, 2], goal).await;
        assert_eq!(
            cluster.finalized_height(3),
            halted_at,
            "a halted validator executes nothing more"
        );
        cluster.stop_traders();
        assert!(cluster.check_agreement(&[0, 1, 2]) >= 40);
    });
}

/// Two blocks finalized at one height: only consensus failing (more than f Byzantine
/// validators) makes that, so the conflict is injected (`Executor::inject_conflicting_delivery`):
/// marshal delivers, at a height this validator already finalized on the certificate, a block
/// whose digest is not the one it applied. It halts naming the height and both digests, and
/// acknowledges nothing more (marshal then delivers nothing): its finalized height stays
/// where it halted while the others go on and agree.
#[test]
fn a_validator_delivered_another_block_where_it_finalized_one_halts() {
    run(15, |context| async move {
        let (cluster, _traders) = four_trading_past_40(context, 25).await;
        let from = cluster.finalized_height(3) + 2;
        cluster
            .shared(3)
            .unwrap()
            .fault_conflicting_delivery_from
            .store(from, Ordering::SeqCst);
        let reason = halt_reason(&cluster, 3, "the validator delivered a conflicting block").await;
        assert!(
            reason.contains("two blocks finalized at one height")
                && reason.contains("marshal delivered block"),
            "{reason}"
        );
        let height: u64 = reason
            .split_once("at height ")
            .and_then(|(_, rest)| rest.split(',').next())
            .and_then(|h| h.parse().ok())
            .unwrap_or_else(|| panic!("names the height: {reason}"));
        let halted_at = cluster.finalized_height(3);
        assert!(
            height >= from && height <= halted_at,
            "{reason}, halted at {halted_at}"
        );
        // The block it finalized there is named as the finalized one, not as the delivery.
        let applied = lock(&cluster.shared(3).unwrap().history)
            .iter()
            .find(|record| record.height == height)
            .map(|record| crate::executor::hex(record.block.as_ref()))
            .expect("in the recent history");
        assert!(
            reason.contains(&format!("where block {applied} was finalized")),
            "{reason}"
        );
        let goal = halted_at + 40;
        cluster.wait_until(&[0, 1, 2], goal).await;
        cluster.stop_traders();
        assert_eq!(
            cluster.finalized_height(3),
            halted_at,
            "a halted validator finalizes nothing more"
        );
        assert!(cluster.check_agreement(&[0, 1, 2]) >= 40);
        println!("conflict from {from}, at {height}: halted at {halted_at}: {reason}");
    });
}

/// A difference in state that no event shows yet (here 1 USDC forged into the insurance fund
/// of one validator, its outcome chain untouched) is invisible to the outcome chain; the state
/// hash catches it within `STATE_HASH_INTERVAL + 1` blocks: the validator halts naming the
/// height and both hashes, the others go on and agree.
#[test]
fn a_validator_whose_state_differs_without_any_event_halts_at_the_next_state_hash() {
    run(13, |context| async move {
        let (cluster, _traders) = four_trading_past_40(context, 23).await;
        let at = cluster.finalized_height(3) + 3;
        cluster
            .shared(3)
            .unwrap()
            .fault_forge_state_at
            .store(at, Ordering::SeqCst);
        let reason = halt_reason(&cluster, 3, "the validator with a forged state").await;
        assert!(reason.contains("block commits to state hash"), "{reason}");
        let halted_at = cluster.finalized_height(3);
        assert!(
            halted_at < at + crate::commitment::STATE_HASH_INTERVAL + 1,
            "halted within the bound: forged before {at}, halted after {halted_at}"
        );
        assert!(
            reason.contains(&format!("state divergence at height {}", halted_at + 1)),
            "{reason}"
        );
        // Until then it agreed on every outcome: only the state hash could see it.
        let goal = halted_at + 30;
        cluster.wait_until(&[0, 1, 2], goal).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&[0, 1, 2]) >= 30);
        assert_eq!(cluster.finalized_height(3), halted_at);
        println!(
            "forged at {at}, halted executing {}: {reason}",
            halted_at + 1
        );
    });
}

/// A wiped validator syncs while two of its three peers forge their snapshot (issue 14): one
/// lists a forged state (a balance changed, the snapshot's own trailer recomputed, the outcome
/// chain kept) under the genuine finalized block; the other lists the honest chunks but sends
/// forged ones, and is the first asked for them. The syncing validator refuses both, blocks
/// both, takes the honest peer's snapshot and agrees with everyone afterwards.
#[test]
fn a_wiped_validator_refuses_forged_snapshots_blocks_the_forgers_and_syncs() {
    run(14, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(24, Duration::from_millis(100));
        cluster.wait_until(&ALL, 260).await;
        // Chunks are asked of the offering peers in key order: make the first a chunk forger.
        let mut servers = [0usize, 1, 2];
        servers.sort_by_key(|i| crate::common::validator_key(*i).public_key());
        let [chunk_forger, listing_forger, honest] = servers;
        cluster
            .shared(listing_forger)
            .unwrap()
            .fault_forge_snapshot
            .store(1, Ordering::SeqCst);
        cluster
            .shared(chunk_forger)
            .unwrap()
            .fault_forge_snapshot
            .store(2, Ordering::SeqCst);
        let first = cluster.wipe_and_resync(3).await;
        assert!(first > 200, "synced from a snapshot, not genesis: {first}");
        let blocked = cluster.blocked().await;
        assert!(
            blocked.contains(&(3, listing_forger)),
            "the forged listing is blamed: {blocked:?}"
        );
        assert!(
            blocked.contains(&(3, chunk_forger)),
            "the forged chunk is blamed: {blocked:?}"
        );
        assert!(
            !blocked.contains(&(3, honest)),
            "the honest server is not: {blocked:?}"
        );
        // Its state is the network's: the state hash at the next commitment agrees.
        println!("synced at {first} past forgers {listing_forger} and {chunk_forger}");
    });
}

/// Issue 14 item 2 while running: a validator cut off past its peers' retention syncs
/// without a restart while one peer lists a forged state and another offers the honest
/// snapshot but withholds its chunks (and is the first asked for them). The forger is
/// blocked (its offer is proof); the withholder is only skipped (silence is no proof: a lossy
/// link looks the same, `sweep-200` seed 1379), and so is the honest peer never blocked; the
/// synced state is the network's (it agrees at every common height, state hashes included),
/// and the node keeps its task.
#[test]
fn a_running_validator_syncs_past_a_forger_and_a_withholder_and_blocks_the_forger() {
    run(23, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start_tuned(i, crate::common::short_retention);
        }
        let _traders = cluster.start_traders(33, Duration::from_millis(100));
        cluster.wait_until(&ALL, 30).await;
        // Chunks are asked of the offering peers in key order: make the first a withholder.
        let mut servers = [0usize, 1, 2];
        servers.sort_by_key(|i| crate::common::validator_key(*i).public_key());
        let [withholder, forger, honest] = servers;
        let shared = |i| cluster.shared(i).unwrap();
        shared(forger)
            .fault_forge_snapshot
            .store(1, Ordering::SeqCst);
        shared(withholder)
            .fault_forge_snapshot
            .store(3, Ordering::SeqCst);
        let before = shared(3);
        let cut_at = cluster
            .isolate_for(3, 4 * crate::common::RETENTION_SHORT)
            .await;
        let goal = cluster.heights().into_iter().max().unwrap() + 40;
        cluster.wait_until(&ALL, goal).await;
        cluster.stop_traders();

        let after = shared(3);
        assert!(std::sync::Arc::ptr_eq(&before, &after), "not restarted");
        let status = lock(&after.status).clone();
        let synced = status.runtime_sync_height.expect("synced while running");
        assert!(synced > cut_at + crate::common::RETENTION_SHORT);
        let blocked = cluster.blocked().await;
        assert!(
            blocked.contains(&(3, forger)),
            "the forged listing is blamed: {blocked:?}"
        );
        assert!(
            !blocked.contains(&(3, withholder)),
            "silence is not blamed: {blocked:?}"
        );
        assert!(
            !blocked.contains(&(3, honest)),
            "the honest server is not: {blocked:?}"
        );
        assert!(cluster.check_agreement(&ALL) >= 40);
        println!(
            "cut off at {cut_at}, synced at {synced} past forger {forger} and withholder {withholder}"
        );
    });
}

/// A validator whose disk was lost (with it its consensus journal: it may have voted in views
/// still open) learns where consensus stands from its peers while one of them lies about it
/// (issue 15, a peer that lies during sync). `mode` 4: the liar shows the block below its
/// newest under the newest's finalization (believed, the validator would start consensus at a
/// block it may have voted past); 5: it says nothing is finalized (believed, the validator
/// would start at once from the snapshot below, in views it may have voted in). Neither is
/// believed: consensus starts from the finalization of a block proposed after the restart,
/// nobody sees the validator contradict a vote, the forger is blocked (its answer is proof)
/// and the one that said "nothing" is not (that proves nothing: a new network says it too).
fn a_wiped_validator_does_not_believe_a_peer_lying_about_the_newest_finalized_block(
    seed: u64,
    mode: u8,
) {
    run(seed, move |context| async move {
        let (mut cluster, liar, _traders) = cluster_with_a_sync_liar(context, seed, mode).await;
        let first = cluster.wipe_and_resync(3).await;
        let floor = consensus_started_after_the_restart(&cluster, 3);
        assert_eq!(
            cluster.faults_observed(&[0, 1, 2]),
            0,
            "nobody saw it contradict a vote"
        );
        let blocked = cluster.blocked().await;
        let expected = if mode == 4 {
            vec![(3, liar)]
        } else {
            Vec::new()
        };
        assert_eq!(blocked, expected, "only a proven liar is blocked");
        println!("mode {mode}: synced at {first}, consensus from {floor:?}");
    });
}

/// Four validators trading to height 60, validator 0 then serving snapshots as test server
/// `mode` (`sync::forge_newest_for_test`); returns the cluster, the liar and the traders'
/// task (held while they trade).
async fn cluster_with_a_sync_liar(
    context: commonware_runtime::deterministic::Context,
    seed: u64,
    mode: u8,
) -> (Cluster, usize, commonware_runtime::Handle<()>) {
    let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
    for i in ALL {
        cluster.start(i);
    }
    let traders = cluster.start_traders(seed, Duration::from_millis(100));
    cluster.wait_until(&ALL, 60).await;
    let liar = 0;
    cluster
        .shared(liar)
        .unwrap()
        .fault_forge_snapshot
        .store(mode, Ordering::SeqCst);
    (cluster, liar, traders)
}

/// Where wiped validator `i` started consensus, checked: from a peer's finalization of a block
/// proposed after its restart, so after every view it may have voted in.
fn consensus_started_after_the_restart(
    cluster: &Cluster,
    i: usize,
) -> crate::shared::ConsensusFloor {
    let start = lock(&cluster.shared(i).unwrap().status)
        .consensus_start
        .clone()
        .expect("recorded at start");
    assert!(start.journal_lost, "a wiped validator has no journal");
    let floor = start.floor.expect("started from a finalization");
    assert_eq!(floor.source, crate::shared::FloorSource::PeersNewest);
    assert!(
        floor.block_time_ms.expect("the block was shown") > start.started_ms,
        "consensus starts after every view it may have voted in: {floor:?}, started at {}",
        start.started_ms
    );
    floor
}

#[test]
fn a_peer_showing_a_forged_newest_finalization_is_blocked_and_not_believed() {
    a_wiped_validator_does_not_believe_a_peer_lying_about_the_newest_finalized_block(31, 4);
}

#[test]
fn a_peer_saying_nothing_is_finalized_does_not_make_a_wiped_validator_start_early() {
    a_wiped_validator_does_not_believe_a_peer_lying_about_the_newest_finalized_block(32, 5);
}

/// The same wiped validator restarts cut off from its two honest peers for longer than its
/// start-up sync asks (three rounds of 2 s), hearing only the liar, who says nothing is
/// finalized. Silence proves nothing, and one "nothing" is not all but f peers' word: it keeps
/// asking until the honest peers answer, and starts consensus from the finalization of a block
/// proposed after its restart. Before, a start-up sync that gave up with nothing shown skipped
/// that wait: the validator started consensus from the liar's (real) snapshot's finalization,
/// a view older than its own lost votes (`consensus_start` floor source `Snapshot`).
#[test]
fn a_wiped_validator_cut_off_from_its_honest_peers_waits_for_them() {
    run(34, |context| async move {
        let (mut cluster, _liar, _traders) = cluster_with_a_sync_liar(context, 34, 5).await;
        cluster.wipe(3).await;
        cluster.partition(&[3], &[1, 2], false).await;
        cluster.start(3);
        // About 10 s of blocks at 20 a second: past the start-up sync's three rounds of 2 s.
        let cut_at = cluster.heights().into_iter().max().unwrap();
        cluster.wait_until(&[0, 1, 2], cut_at + 200).await;
        cluster.partition(&[3], &[1, 2], true).await;
        let goal = cluster.heights().into_iter().max().unwrap() + 40;
        cluster.wait_until(&ALL, goal).await;
        cluster.stop_traders();
        let floor = consensus_started_after_the_restart(&cluster, 3);
        assert!(
            floor.height > cut_at + 100,
            "it waited for the honest peers: floor {} against {cut_at} when cut off",
            floor.height
        );
        assert_eq!(cluster.faults_observed(&[0, 1, 2]), 0);
        assert_eq!(cluster.blocked().await, Vec::new(), "silence blames nobody");
        assert!(cluster.check_agreement(&ALL) >= 40);
        println!("cut off at {cut_at}, consensus from {floor:?}");
    });
}

/// A Byzantine validator asks a server for its snapshot's first chunk a thousand times a
/// second for 5 s (a dozen bytes a request; the chunk is the whole snapshot here). Without a
/// budget the server answered every request the channel's quota let through; with
/// [`crate::sync::AnswerBudget`] the peer gets at most twice the snapshot and what 5 s of a
/// minute's refill adds, and the honest validators go on.
#[test]
fn a_peer_flooding_snapshot_requests_gets_no_more_than_its_budget() {
    use crate::sync::{AnswerBudget, CHUNK_REFILL, Message};
    use commonware_codec::Encode as _;
    use commonware_p2p::{Receiver as _, Recipients, Sender as _};
    use commonware_runtime::{Spawner as _, Supervisor as _};
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    run(31, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in 0..3 {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(37, Duration::from_millis(100));
        cluster.wait_until(&[0, 1, 2], 60).await;
        let server = cluster.shared(0).unwrap();
        let snapshot_len = lock(&server.snapshot)
            .as_ref()
            .expect("a snapshot by height 60")
            .bytes
            .len() as u64;
        let target = crate::common::validator_key(0).public_key();
        let received = Arc::new(AtomicU64::new(0));
        let answers = Arc::new(AtomicU64::new(0));
        let flood_for = Duration::from_secs(5);
        let (counted, counted_answers, watched) =
            (received.clone(), answers.clone(), server.clone());
        let _impostor = cluster.spawn_impostor(
            3,
            &[crate::engine::CHANNEL_SNAPSHOTS],
            move |context, _scheme, mut channels| async move {
                let (mut sender, mut receiver) = channels.remove(0);
                let listen_to = target.clone();
                context.child("listen").spawn(move |_| async move {
                    while let Ok((peer, bytes)) = receiver.recv().await {
                        if peer == listen_to {
                            counted.fetch_add(bytes.len() as u64, Ordering::SeqCst);
                            counted_answers.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
                let end = context.current() + flood_for;
                while context.current() < end {
                    let height = lock(&watched.snapshot).as_ref().map_or(0, |s| s.height);
                    let request = Message::ChunkRequest { height, index: 0 };
                    let _ = sender.send(Recipients::One(target.clone()), request.encode(), false);
                    context.sleep(Duration::from_millis(1)).await;
                }
            },
        );
        cluster
            .context
            .sleep(flood_for + Duration::from_secs(1))
            .await;
        cluster.stop_traders();
        let capacity = AnswerBudget::chunk_capacity(
            snapshot_len.max(
                lock(&server.snapshot)
                    .as_ref()
                    .map_or(0, |s| s.bytes.len() as u64),
            ),
        );
        let bound = capacity
            + capacity * flood_for.as_millis() as u64 / CHUNK_REFILL.as_millis() as u64
            + crate::sync::CHUNK_BYTES as u64;
        let got = received.load(Ordering::SeqCst);
        println!(
            "snapshot of {snapshot_len} bytes: the flooding peer got {} answers, {got} bytes (budget {bound})",
            answers.load(Ordering::SeqCst)
        );
        assert!(got > 0, "the flood reached the server");
        assert!(got <= bound, "{got} bytes past the budget {bound}");
        // The honest validators went on.
        let goal = cluster.heights().into_iter().max().unwrap() + 20;
        cluster.wait_until(&[0, 1, 2], goal).await;
        assert!(cluster.check_agreement(&[0, 1, 2]) >= 20);
    });
}
