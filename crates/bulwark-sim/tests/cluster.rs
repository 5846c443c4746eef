//! Four validators on the deterministic runtime with traders submitting signed orders: every
//! scenario ends with all honest validators agreeing, height by height, on the block, the
//! state digest after it and every transaction's outcome.

use bulwark_node::shared::lock;
use bulwark_sim::cluster::{self as common, ALL, Cluster, link, run};
use commonware_consensus::simplex::mocks::{
    conflicter, equivocator, nuller, outdated, relay::Relay,
};
use commonware_consensus::types::Epoch;
use commonware_cryptography::Sha256;
use commonware_runtime::{Clock, Spawner as _, Supervisor as _};
use std::sync::Arc;
use std::time::Duration;

const HONEST: [usize; 3] = [0, 1, 2];

#[test]
fn all_honest_for_1000_blocks_agree_on_every_outcome() {
    run(1, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(11, Duration::from_millis(100));
        cluster.wait_until(&ALL, 1_000).await;
        cluster.stop_traders();
        let compared = cluster.check_agreement(&ALL);
        assert!(compared >= 1_000, "compared {compared} heights");
        // Most blocks are finalized on consensus's certificate, before marshal delivers them
        // (the rest when marshal's delivery comes first), and the validators still agree.
        for i in ALL {
            let on_certificate =
                lock(&cluster.shared(i).unwrap().status).blocks_finalized_on_certificate;
            assert!(
                on_certificate > 500,
                "validator {i} finalized {on_certificate} blocks on their certificate"
            );
        }
        let (txs, trades) = cluster.executed(0);
        assert!(
            txs > 5_000 && trades > 500,
            "real traffic executed: {txs} txs, {trades} trades"
        );
        let traffic = cluster.traffic.lock().unwrap().clone();
        println!(
            "1000 blocks: {txs} txs, {trades} trades, {traffic:?}, {:.1} s simulated",
            cluster.now_s()
        );
    });
}

#[test]
fn crashed_validator_restarts_from_its_disk_and_catches_up() {
    run(2, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(12, Duration::from_millis(100));
        cluster.wait_until(&ALL, 60).await;
        let crashed_at = cluster.heights();
        cluster.crash(3).await;
        // The other three keep finalizing without it (f = 1).
        let goal = crashed_at.iter().max().unwrap() + 80;
        cluster.wait_until(&HONEST, goal).await;
        cluster.start(3);
        cluster.wait_until(&ALL, goal + 20).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&ALL) >= 20);
        // It restored a snapshot and replayed the archive rather than starting over: its
        // history holds only what it executed since the restart.
        let shared = cluster.shared(3).unwrap();
        let first = shared.history.lock().unwrap().front().unwrap().height;
        assert!(
            first > 1,
            "restarted validator replayed from genesis instead of its snapshot"
        );
        println!("crash at {crashed_at:?}, restarted validator resumed at height {first}");
    });
}

/// A validator that never answers (crashed before the start, or Byzantine and silent) does
/// not hold the others' start. Each asks its peers for a snapshot before starting; once all
/// but f have answered, an honest answer is among them, and the rest get a short grace. Before,
/// each waited for every peer in each of its three attempts (2 s each): the first block came
/// after 6 s, and the lab's Byzantine-mock scenarios all began with that stall.
#[test]
fn a_silent_validator_does_not_hold_the_others_start() {
    run(21, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        let started = cluster.now_s();
        for i in HONEST {
            cluster.start(i);
        }
        cluster.wait_until(&HONEST, 1).await;
        let waited = cluster.now_s() - started;
        // One attempt's timeout (`SyncConfig::timeout` in the lab, 2 s) is the bound: the
        // silent peer must not cost a whole attempt.
        assert!(waited < 2.0, "the first block came after {waited:.3} s");
        println!("first block {waited:.3} s after the start, validator 3 silent");
    });
}

/// Starts the traders and waits until validator 3 executed 200 of their transactions, past
/// at least one snapshot; the traders' handle.
async fn trade_past_a_snapshot(cluster: &Cluster) -> commonware_runtime::Handle<()> {
    let traders = cluster.start_traders(13, Duration::from_millis(100));
    let mut height = 80;
    cluster.wait_until(&ALL, height).await;
    while cluster.executed(3).0 < 200 && height < 2_000 {
        height += 20;
        cluster.wait_until(&ALL, height).await;
    }
    traders
}

/// Every finalized receipt validator `i` holds in memory, as (digest, height, index,
/// rejection), sorted by height and index (they are held unordered; sorted, the run replays
/// exactly).
fn finalized_receipts(
    cluster: &Cluster,
    i: usize,
) -> Vec<(
    bulwark_node::mempool::TxDigest,
    u64,
    u32,
    Option<bulwark_types::RejectReason>,
)> {
    use bulwark_node::shared::TxStatus;
    let shared = cluster.shared(i).unwrap();
    let receipts = lock(&shared.receipts);
    let mut finalized: Vec<_> = receipts
        .iter()
        .filter_map(|(digest, status)| match status {
            TxStatus::Finalized {
                height,
                index,
                rejection,
                ..
            } => Some((*digest, *height, *index, *rejection)),
            _ => None,
        })
        .collect();
    finalized.sort_by_key(|(_, height, index, _)| (*height, *index));
    finalized
}

#[test]
fn receipts_of_finalized_transactions_survive_a_crash_and_restart() {
    use bulwark_node::receipt_archive::lookup;
    run(3, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = trade_past_a_snapshot(&cluster).await;
        let before = finalized_receipts(&cluster, 3);
        assert!(
            before.len() >= 20,
            "traders' transactions finalized: {}",
            before.len()
        );
        cluster.crash(3).await;
        let goal = cluster.heights().into_iter().max().unwrap() + 30;
        cluster.wait_until(&HONEST, goal).await;
        cluster.start(3);
        cluster.wait_until(&ALL, goal + 10).await;
        cluster.stop_traders();
        let shared = cluster.shared(3).unwrap();
        let queries = lock(&shared.receipt_queries).clone().expect("archive task");
        let mut forgotten = 0usize;
        for (digest, height, index, rejection) in &before {
            if lock(&shared.receipts).get(digest).is_none() {
                forgotten += 1;
            }
            let stored = lookup(queries.clone(), *digest)
                .await
                .expect("receipt survived the crash");
            assert_eq!(
                (stored.height, stored.index, stored.rejection),
                (*height, *index, *rejection),
                "stored receipt matches what the validator reported before the crash"
            );
        }
        assert!(
            forgotten > 0,
            "some receipts are held only on disk after the restart (the test reads the archive)"
        );
        println!(
            "{} receipts survived the crash, {forgotten} of them only on disk",
            before.len()
        );
    });
}

/// What lets the receipt archive skip a sync per block: a receipt not yet on disk when a
/// validator crashes is rebuilt, because the restarted validator replays every finalized block
/// above the snapshot it restores. Here the crash loses the whole receipt archive (harsher
/// than losing its unsynced tail): every receipt of a block above the restored snapshot is
/// answered from the archive after the restart, as the validator reported it before.
#[test]
fn receipts_above_the_snapshot_are_rebuilt_by_the_replay_when_the_crash_lost_them() {
    use bulwark_node::receipt_archive::lookup;
    use commonware_runtime::Storage as _;
    run(5, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = trade_past_a_snapshot(&cluster).await;
        let before = finalized_receipts(&cluster, 3);
        cluster.crash(3).await;
        for part in ["metadata", "key", "value"] {
            let partition = format!("{}-receipts-{part}", cluster.prefixes[3]);
            // The metadata partition may never have been written.
            let removed = cluster.context.remove(&partition, None).await;
            assert!(
                part == "metadata" || removed.is_ok(),
                "{partition}: {removed:?}"
            );
        }
        let goal = cluster.heights().into_iter().max().unwrap() + 30;
        cluster.wait_until(&HONEST, goal).await;
        cluster.start(3);
        cluster.wait_until(&ALL, goal + 10).await;
        cluster.stop_traders();
        let shared = cluster.shared(3).unwrap();
        // The first height it executed after the restart: the restored snapshot's next.
        let replayed_from = shared.history.lock().unwrap().front().unwrap().height;
        assert!(replayed_from > 1, "restored a snapshot, not genesis");
        let queries = lock(&shared.receipt_queries).clone().expect("archive task");
        let mut rebuilt = 0usize;
        for (digest, height, index, rejection) in &before {
            if *height < replayed_from {
                continue;
            }
            let stored = lookup(queries.clone(), *digest)
                .await
                .expect("the replay rebuilt the receipt");
            assert_eq!(
                (stored.height, stored.index, stored.rejection),
                (*height, *index, *rejection)
            );
            rebuilt += 1;
        }
        assert!(
            rebuilt > 0,
            "some receipts above the snapshot at {replayed_from}"
        );
        println!("{rebuilt} receipts above the snapshot rebuilt (replayed from {replayed_from})");
    });
}

/// Commonware's conflicter: it votes for two different proposals in one view. The honest
/// three keep finalizing and agree, report it and block it.
#[test]
fn a_conflicting_voter_cannot_stop_or_fork_the_honest_three() {
    let (faults, blockers) = byzantine_voter_scenario(3, |context, scheme, votes| {
        conflicter::Conflicter::<_, _, Sha256>::new(
            context.child("conflicter"),
            conflicter::Config { scheme },
        )
        .start(votes)
    });
    assert!(faults > 0, "the conflicting votes were reported");
    assert!(
        !blockers.is_empty(),
        "an honest validator blocked the conflicter"
    );
}

#[test]
fn an_equivocating_leader_cannot_stop_or_fork_the_honest_three() {
    run(4, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in HONEST {
            cluster.start(i);
        }
        let _byzantine =
            cluster.spawn_impostor(3, &[0, 1], |context, scheme, mut channels| async move {
                let (votes, certificates) = (channels.remove(0), channels.remove(0));
                let config = equivocator::Config {
                    scheme,
                    elector: commonware_consensus::simplex::elector::RoundRobin::<Sha256>::default(
                    ),
                    epoch: Epoch::zero(),
                    relay: Arc::new(Relay::new()),
                };
                let equivocator = equivocator::Equivocator::<_, _, _, Sha256>::new(
                    context.child("equivocator"),
                    config,
                );
                let _ = equivocator.start(votes, certificates).await;
            });
        let _traders = cluster.start_traders(14, Duration::from_millis(100));
        cluster.wait_until(&HONEST, 150).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&HONEST) >= 150);
        // Honest validators never receive the equivocator's blocks, so its views are skipped.
        let skipped = cluster
            .shared(0)
            .unwrap()
            .status
            .lock()
            .unwrap()
            .views_skipped;
        assert!(skipped > 0, "the equivocator's views were nullified");
        assert!(cluster.executed(0).1 > 0, "trades happened");
    });
}

#[test]
fn a_two_two_partition_finalizes_nothing_then_heals_without_a_fork() {
    run(5, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(15, Duration::from_millis(100));
        cluster.wait_until(&ALL, 40).await;
        cluster.partition(&[0, 1], &[2, 3], false).await;
        // Let what was already in flight land, then watch: no side has a quorum.
        cluster.context.sleep(Duration::from_secs(5)).await;
        let during = cluster.heights();
        cluster.context.sleep(Duration::from_secs(60)).await;
        assert_eq!(
            cluster.heights(),
            during,
            "nothing finalizes without a quorum"
        );
        cluster.partition(&[0, 1], &[2, 3], true).await;
        let goal = during.iter().max().unwrap() + 50;
        cluster.wait_until(&ALL, goal).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&ALL) >= 50);
        println!(
            "partitioned at {during:?}, healed to {:?}",
            cluster.heights()
        );
    });
}

#[test]
fn lossy_jittery_links_still_finalize_and_agree() {
    run(6, |context| async move {
        let mut cluster = Cluster::new(context, link(60, 40, 85)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(16, Duration::from_millis(200));
        cluster.wait_until(&ALL, 100).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&ALL) >= 100);
        assert!(cluster.executed(0).1 > 0, "trades happened");
    });
}

#[test]
fn the_same_seed_replays_the_same_chain() {
    let digest_at_60 = |seed: u64| {
        let out = Arc::new(std::sync::Mutex::new(None));
        let result = out.clone();
        run(seed, |context| async move {
            let mut cluster = Cluster::new(context, link(20, 10, 95)).await;
            for i in ALL {
                cluster.start(i);
            }
            let _traders = cluster.start_traders(17, Duration::from_millis(100));
            cluster.wait_until(&[0], 60).await;
            let shared = cluster.shared(0).unwrap();
            let record = shared
                .history
                .lock()
                .unwrap()
                .iter()
                .find(|r| r.height == 60)
                .cloned();
            *result.lock().unwrap() = record;
        });
        out.lock().unwrap().clone().expect("height 60 recorded")
    };
    assert_eq!(digest_at_60(7), digest_at_60(7));
}

/// Issue 14 item 2: a running validator cut off for longer than its peers keep blocks cannot
/// backfill (they pruned the blocks after its height); it notices that consensus is far ahead
/// while its execution stalls, syncs a verified snapshot while it runs, and follows consensus
/// from there: the same task and shared state throughout (the API would keep answering),
/// never restarted by the test.
#[test]
fn a_validator_cut_off_past_the_retention_syncs_while_running_and_rejoins() {
    run(21, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start_tuned(i, common::short_retention);
        }
        let _traders = cluster.start_traders(31, Duration::from_millis(100));
        cluster.wait_until(&ALL, 30).await;
        let before = cluster.shared(3).expect("running");
        // Four times the retention: peers pruned everything after where it stopped.
        let cut_at = cluster.isolate_for(3, 4 * common::RETENTION_SHORT).await;
        assert!(
            cluster.finalized_height(3) < cut_at + 5,
            "cut off, it did not follow: {:?}",
            cluster.heights()
        );
        assert_eq!(lock(&before.status).runtime_syncs, 0);
        let goal = cluster.heights().into_iter().max().expect("validators") + 40;
        cluster.wait_until(&ALL, goal).await;
        cluster.stop_traders();

        let after = cluster.shared(3).expect("running");
        assert!(
            Arc::ptr_eq(&before, &after),
            "the validator was not restarted: the same shared state serves its API"
        );
        let status = lock(&after.status).clone();
        assert!(
            status.runtime_syncs >= 1,
            "synced while running: {status:?}"
        );
        let synced = status.runtime_sync_height.expect("a synced height");
        assert!(
            synced > cut_at + common::RETENTION_SHORT,
            "it jumped past what peers keep (cut at {cut_at}, synced at {synced})"
        );
        // It executed from the synced state on, none of the pruned blocks before it.
        let executed: Vec<u64> = lock(&after.history).iter().map(|r| r.height).collect();
        assert!(
            executed.iter().all(|h| *h <= cut_at + 5 || *h > synced),
            "executed only blocks after the synced state: {executed:?}"
        );
        assert!(executed.iter().filter(|h| **h > synced).count() >= 40);
        assert!(cluster.check_agreement(&ALL) >= 40);
        println!("cut off at {cut_at}, synced at {synced} while running, then followed");
    });
}

#[test]
fn a_wiped_validator_recovers_by_state_sync_from_a_verified_snapshot() {
    run(8, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(18, Duration::from_millis(100));
        // Far enough that peers pruned the start of the chain (retention 200 below their
        // newest snapshot) and hold a snapshot more than the sync threshold ahead.
        cluster.wait_until(&ALL, 260).await;
        let first = cluster.wipe_and_resync(3).await;
        assert!(
            first > 200,
            "the wiped validator started from a peer's snapshot, not genesis (first executed {first})"
        );
        assert!(
            cluster.executed(3).0 > 0,
            "it executes real transactions after syncing"
        );
        println!("wiped validator synced and resumed at height {first}");
    });
}

/// Validator 3's key sends random bytes on `channels` to everyone while the other three run.
async fn garbage_scenario(context: common::Context, channels: &'static [u64], seed: u64) {
    let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
    for i in HONEST {
        cluster.start(i);
    }
    let _garbage = cluster.spawn_impostor(
        3,
        channels,
        move |context, _scheme, mut senders| async move {
            use commonware_p2p::{Recipients, Sender as _};
            use rand::RngExt as _;
            let mut rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(seed);
            loop {
                for (sender, _) in senders.iter_mut() {
                    let mut bytes = vec![0u8; rng.random_range(0..4_096usize)];
                    rng.fill(&mut bytes[..]);
                    // Often a plausible tag, so decoders get past the first byte.
                    if let Some(first) = bytes.first_mut() {
                        *first %= 4;
                    }
                    sender.send(Recipients::All, bytes::Bytes::from(bytes), false);
                }
                context.sleep(Duration::from_millis(5)).await;
            }
        },
    );
    let _traders = cluster.start_traders(seed, Duration::from_millis(100));
    cluster.wait_until(&HONEST, 100).await;
    cluster.stop_traders();
    assert!(cluster.check_agreement(&HONEST) >= 100);
    assert!(cluster.executed(0).1 > 0, "trades happened");
    let blocked = cluster.blocked().await;
    for i in HONEST {
        assert!(
            blocked.contains(&(i, 3)),
            "validator {i} blocked the garbage sender: {blocked:?}"
        );
    }
}

#[test]
fn a_peer_sending_garbage_on_every_channel_is_blocked_and_changes_nothing() {
    run(10, |context| {
        garbage_scenario(context, &[0, 1, 2, 3, 4, 5, 6, 7], 10)
    });
}

#[test]
fn garbage_gossip_snapshot_requests_and_observations_are_blocked_and_change_nothing() {
    run(11, |context| garbage_scenario(context, &[5, 6, 7], 11));
}

/// Regression (issue 14, item 0): validator 3's key gossips the transaction that once
/// panicked the name parser, again and again, while the other three run with traders. They
/// keep finalizing and agreeing, and block the sender.
#[test]
fn a_peer_gossiping_the_fuzzer_s_transaction_is_blocked_and_changes_nothing() {
    run(12, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in HONEST {
            cluster.start(i);
        }
        let _hostile =
            cluster.spawn_impostor(3, &[5], move |context, _scheme, mut senders| async move {
                use commonware_p2p::{Recipients, Sender as _};
                let hostile =
                    include_bytes!("../../../fuzz/seeds/tx_decode/regression-multibyte-expiry");
                let mut batch = vec![1u8];
                batch.extend_from_slice(hostile);
                loop {
                    for (sender, _) in senders.iter_mut() {
                        sender.send(Recipients::All, bytes::Bytes::from(batch.clone()), false);
                    }
                    context.sleep(Duration::from_millis(20)).await;
                }
            });
        let _traders = cluster.start_traders(12, Duration::from_millis(100));
        cluster.wait_until(&HONEST, 60).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&HONEST) >= 60);
        let blocked = cluster.blocked().await;
        for i in HONEST {
            assert!(
                blocked.contains(&(i, 3)),
                "validator {i} blocked the sender: {blocked:?}"
            );
        }
    });
}

/// Honest traders' progress at height 150: the sum over traders of their last executed nonce
/// (each trader's nonces count its transactions), with or without a flooder sending, every
/// 20 ms to every validator, 1,000 transactions: from 999 keys with no account, and from one
/// funded account as many as it can. Returns (honest progress, the flooder's admissions by
/// kind: throwaway, funded).
fn honest_progress(flood: bool) -> (u64, u64, u64) {
    use bulwark_node::mempool::AdmitError;
    use bulwark_types::{Money, TxBody};
    use commonware_cryptography::Signer as _;
    let result = Arc::new(std::sync::Mutex::new((0u64, 0u64, 0u64)));
    let out = result.clone();
    run(15, move |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(25, Duration::from_millis(100));
        cluster.wait_until(&ALL, 20).await;
        let flood_keys: Vec<_> = (0..1_000u64)
            .map(|i| bulwark_types::PrivateKey::from_seed(50_000 + i))
            .collect();
        let counts = Arc::new(std::sync::Mutex::new((0u64, 0u64)));
        if flood {
            // The flooder's own account: one real deposit, once the traders' setup is done (a
            // bridge nonce is used once, and the setup's deposits must not be overtaken).
            let shared = cluster.shared(0).unwrap();
            let bridge_nonce = loop {
                let ready = {
                    let chain = shared.chain.lock().unwrap();
                    let state = chain.finalized();
                    (0..common::TRADERS as u64)
                        .all(|i| {
                            let key = bulwark_types::PrivateKey::from_seed(1_000 + i);
                            state.key_binding(&key.public_key()).is_some()
                        })
                        .then(|| state.nonce_last(&cluster.bridge.public_key()).unwrap_or(0))
                };
                if let Some(nonce) = ready {
                    break nonce + 1;
                }
                cluster.context.sleep(Duration::from_millis(100)).await;
            };
            let deposit = common::sign(
                &cluster.bridge,
                bridge_nonce,
                TxBody::Deposit {
                    owner: flood_keys[0].public_key(),
                    amount: Money::from_usdc(1_000_000),
                },
            );
            let _ = cluster
                .shared(0)
                .unwrap()
                .submit(vec![deposit], &mut cluster.context, true);
            let shareds: Vec<_> = ALL.iter().map(|i| cluster.shared(*i).unwrap()).collect();
            let counts = counts.clone();
            cluster
                .context
                .child("flooder")
                .spawn(move |mut context| async move {
                    let mut nonce = 0u64;
                    let mut funded_nonce = 0u64;
                    loop {
                        nonce += 1;
                        for shared in &shareds {
                            let mut txs = Vec::with_capacity(1_000);
                            for key in &flood_keys[1..] {
                                txs.push(common::sign(
                                    key,
                                    nonce,
                                    TxBody::CancelAll { instrument: None },
                                ));
                            }
                            funded_nonce += 1;
                            txs.push(common::sign(
                                &flood_keys[0],
                                funded_nonce,
                                TxBody::CancelAll { instrument: None },
                            ));
                            let results = shared.submit(txs, &mut context, true);
                            let mut counts = counts.lock().unwrap();
                            for (i, result) in results.iter().enumerate() {
                                match (i, result) {
                                    (999, Ok(_)) => counts.1 += 1,
                                    (_, Ok(_)) => counts.0 += 1,
                                    (_, Err(AdmitError::UnknownSigner)) => {}
                                    (_, Err(_)) => {}
                                }
                            }
                        }
                        context.sleep(Duration::from_millis(20)).await;
                    }
                });
        }
        cluster.wait_until(&ALL, 150).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&ALL) >= 100);
        let shared = cluster.shared(0).unwrap();
        let progress: u64 = {
            let chain = shared.chain.lock().unwrap();
            (0..common::TRADERS as u64)
                .map(|i| {
                    let key = bulwark_types::PrivateKey::from_seed(1_000 + i).public_key();
                    chain.finalized().nonce_last(&key).unwrap_or(0)
                })
                .sum()
        };
        let (throwaway, funded) = *counts.lock().unwrap();
        *out.lock().unwrap() = (progress, throwaway, funded);
    });
    result.lock().map(|r| *r).expect("not poisoned")
}

/// Issue 14: spam costs the spammer. Keys with no account are refused before their
/// signatures are checked; the funded flooder is held to its account's share; honest traders'
/// progress by height 150 is within 10% of the run without the flooder.
#[test]
fn a_flooder_with_a_thousand_keys_does_not_crowd_out_honest_traders() {
    let (quiet, _, _) = honest_progress(false);
    let (flooded, throwaway, funded) = honest_progress(true);
    println!(
        "honest progress: {quiet} quiet, {flooded} flooded; flooder admitted {throwaway} throwaway, {funded} funded"
    );
    assert!(quiet > 0);
    assert_eq!(
        throwaway, 0,
        "no transaction of a key without an account is admitted"
    );
    assert!(funded > 0, "the funded flooder trades like anyone");
    assert!(
        flooded * 10 >= quiet * 9,
        "honest progress {flooded} flooded vs {quiet} quiet"
    );
}

/// Validator 3's key runs `byzantine` on the vote channel while the other three run with
/// traders to height 150. Safety and liveness are asserted here (150 common heights agreed,
/// trades executed, no honest validator blocked by another); returns the consensus faults
/// the honest three reported and which of them blocked validator 3.
fn byzantine_voter_scenario<F>(seed: u64, byzantine: F) -> (u64, Vec<usize>)
where
    F: FnOnce(
            common::Context,
            commonware_consensus::simplex::scheme::ed25519::Scheme,
            common::Channel,
        ) -> commonware_runtime::Handle<()>
        + Send
        + 'static,
{
    let result = Arc::new(std::sync::Mutex::new((0u64, Vec::new())));
    let out = result.clone();
    run(seed, move |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in HONEST {
            cluster.start(i);
        }
        let _byzantine =
            cluster.spawn_impostor(3, &[0], |context, scheme, mut channels| async move {
                let _ = byzantine(context, scheme, channels.remove(0)).await;
            });
        let _traders = cluster.start_traders(seed, Duration::from_millis(100));
        cluster.wait_until(&HONEST, 150).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&HONEST) >= 150);
        assert!(cluster.executed(0).1 > 0, "trades happened");
        let faults = cluster.faults_observed(&HONEST);
        let blocked = cluster.blocked().await;
        assert!(
            !blocked
                .iter()
                .any(|(a, b)| HONEST.contains(a) && HONEST.contains(b)),
            "no honest validator is blamed: {blocked:?}"
        );
        let blockers = blocked
            .iter()
            .filter(|(_, b)| *b == 3)
            .map(|(a, _)| *a)
            .collect();
        *out.lock().unwrap() = (faults, blockers);
    });
    result.lock().map(|r| r.clone()).expect("not poisoned")
}

/// Commonware's nuller: it votes both to nullify and to finalize the same view, which is
/// evidence of a fault. The honest three keep finalizing and agree, report it and block it.
#[test]
fn a_validator_voting_to_nullify_and_finalize_one_view_is_reported_and_blocked() {
    let (faults, blockers) = byzantine_voter_scenario(16, |context, scheme, votes| {
        nuller::Nuller::<_, _, Sha256>::new(context.child("nuller"), nuller::Config { scheme })
            .start(votes)
    });
    assert!(faults > 0, "the nullify-and-finalize votes were reported");
    assert!(
        !blockers.is_empty(),
        "an honest validator blocked the nuller"
    );
}

/// Commonware's outdated voter: it replays its votes for views long past. They are no
/// evidence of a fault (a slow honest validator sends late votes too), so nobody is blamed;
/// the honest three keep finalizing and agree.
#[test]
fn a_validator_sending_outdated_votes_changes_nothing() {
    let (_, _) = byzantine_voter_scenario(17, |context, scheme, votes| {
        outdated::Outdated::<_, _, Sha256>::new(
            context.child("outdated"),
            outdated::Config {
                scheme,
                view_delta: commonware_consensus::types::ViewDelta::new(10),
            },
        )
        .start(votes)
    });
}

/// What the two-block equivocator of [`spawn_two_block_equivocator`] did: the digests of each
/// pair of blocks it shipped, and how many of block A validator 0 and of block B validator 2
/// executed as verifiers (the validators running when it was spawned).
struct Equivocation {
    shipped: Arc<
        std::sync::Mutex<
            Vec<(
                commonware_cryptography::sha256::Digest,
                commonware_cryptography::sha256::Digest,
            )>,
        >,
    >,
    verified: Arc<std::sync::Mutex<(u64, u64)>>,
    _handle: commonware_runtime::Handle<()>,
}

/// No honest validator finalized both blocks of any pair the equivocator shipped.
fn assert_no_pair_finalized_twice(
    cluster: &Cluster,
    pairs: &[(
        commonware_cryptography::sha256::Digest,
        commonware_cryptography::sha256::Digest,
    )],
) {
    for i in HONEST {
        let shared = cluster.shared(i).unwrap();
        let history = shared.history.lock().unwrap();
        let finalized: std::collections::BTreeSet<_> = history.iter().map(|r| r.block).collect();
        for (a, b) in pairs {
            assert!(
                !(finalized.contains(a) && finalized.contains(b)),
                "validator {i} finalized both blocks of one view"
            );
        }
    }
}

/// A real equivocating leader in validator 3's place: at each of its views it builds two
/// different valid blocks on the same parent (the same state; times a millisecond apart),
/// ships block A to validators 0 and 1 and block B to validators 1 and 2, and sends its
/// notarize vote for each where it shipped it.
fn spawn_two_block_equivocator(cluster: &Cluster) -> Equivocation {
    use bulwark_node::block::{ChainBlock, Ctx};
    use bulwark_node::engine::{CHANNEL_BLOCKS, CHANNEL_CERTIFICATES, CHANNEL_VOTES};
    use bulwark_types::{Block as ExchangeBlock, BlockTime, PriceInputs};
    use commonware_codec::{Encode as _, Read as _};
    use commonware_consensus::Viewable as _;
    use commonware_consensus::simplex::elector::{
        Config as _, Elector as _, RoundRobin, RoundRobinElector,
    };
    use commonware_consensus::simplex::scheme::ed25519::Scheme;
    use commonware_consensus::simplex::types::{Certificate, Notarize, Proposal, Vote};
    use commonware_consensus::types::Round;
    use commonware_cryptography::certificate::{Scheme as _, Verifier as CertificateVerifier};
    use commonware_cryptography::sha256::Digest;
    use commonware_cryptography::{Digestible as _, Signer as _};
    use commonware_p2p::{Receiver as _, Recipients, Sender as _};
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    let source = cluster.shared(0).unwrap();
    let other = cluster.shared(2).unwrap();
    let keys: Vec<_> = (0..4)
        .map(|i| common::validator_key(i).public_key())
        .collect();
    let shipped: Arc<Mutex<Vec<(Digest, Digest)>>> = Arc::default();
    let record = shipped.clone();
    // How many of block A validator 0 executed as a verifier, and of block B validator 2.
    let verified: Arc<Mutex<(u64, u64)>> = Arc::default();
    let verifies = verified.clone();
    let handle = cluster.spawn_impostor(
        3,
        &[CHANNEL_VOTES, CHANNEL_CERTIFICATES, CHANNEL_BLOCKS],
        move |context, scheme: Scheme, mut channels| async move {
            let (mut votes, _) = channels.remove(0);
            let (_, mut certificates) = channels.remove(0);
            let (mut blocks, _) = channels.remove(0);
            let elector: RoundRobinElector<Scheme> =
                RoundRobin::<Sha256>::default().build(scheme.participants());
            let me = scheme.me().and_then(|m| m.signer()).expect("a participant");
            let mut seen = BTreeSet::new();
            loop {
                let Ok((_, message)) = certificates.recv().await else {
                    return;
                };
                let mut bytes = message;
                let Ok(certificate) = Certificate::<Scheme, Digest>::read_cfg(
                    &mut bytes,
                    &<Scheme as CertificateVerifier>::certificate_codec_config(&scheme),
                ) else {
                    continue;
                };
                let (view, parent) = match certificate {
                    Certificate::Notarization(n) => (n.view(), n.proposal.payload),
                    Certificate::Finalization(f) => (f.view(), f.proposal.payload),
                    _ => continue,
                };
                if !seen.insert(view) {
                    continue;
                }
                let round = Round::new(Epoch::zero(), view.next());
                if elector.elect(round, ()) != me {
                    continue;
                }
                let built = {
                    let mut chain = source.chain.lock().unwrap();
                    let Some(state_hash) = chain.state_hash_due(&parent) else {
                        continue;
                    };
                    let Some(state) = chain.state_after(&parent) else {
                        continue;
                    };
                    let now = context
                        .current()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis() as u64;
                    let time = now.max(state.time().millis());
                    let ctx = Ctx {
                        round,
                        leader: keys[3].clone(),
                        parent: (view, parent),
                    };
                    let block = |time_ms: u64| {
                        ChainBlock::new(
                            ctx.clone(),
                            parent,
                            state.state_digest(),
                            state_hash,
                            ExchangeBlock {
                                height: state.height().next(),
                                time: BlockTime::from_millis(time_ms),
                                prices: PriceInputs::default(),
                                observations: vec![],
                                txs: vec![],
                            },
                        )
                    };
                    (block(time), block(time + 1))
                };
                let (a, b) = built;
                let to = |who: [usize; 2]| Recipients::Some(who.map(|i| keys[i].clone()).to_vec());
                let vote = |block: &ChainBlock| {
                    let proposal = Proposal::new(round, view, block.digest());
                    Vote::Notarize(Notarize::<Scheme, Digest>::sign(&scheme, proposal).unwrap())
                        .encode()
                };
                blocks.send(to([0, 1]), a.encode(), true);
                blocks.send(to([1, 2]), b.encode(), true);
                votes.send(to([0, 1]), vote(&a), true);
                votes.send(to([1, 2]), vote(&b), true);
                record.lock().unwrap().push((a.digest(), b.digest()));
                // Both blocks are valid: each side's verifier executes its own.
                context.sleep(Duration::from_millis(300)).await;
                let executed = |shared: &bulwark_node::shared::Shared, digest: &Digest| {
                    shared.chain.lock().unwrap().state_after(digest).is_some()
                };
                let mut counts = verifies.lock().unwrap();
                counts.0 += u64::from(executed(&source, &a.digest()));
                counts.1 += u64::from(executed(&other, &b.digest()));
            }
        },
    );
    Equivocation {
        shipped,
        verified,
        _handle: handle,
    }
}

/// A real equivocating leader: at each of its views it builds two different valid blocks on
/// the same parent (the same state; times a millisecond apart), ships block A to validators 0
/// and 1 and block B to validators 1 and 2, and sends its notarize vote for each where it
/// shipped it. Both blocks are valid: validator 0 executes A and validator 2 executes B as
/// verifiers. Validator 1 holds both votes, reports the conflict and blocks the equivocator,
/// after which neither block of a pair can gather a quorum. The honest three never finalize
/// both blocks of a pair, agree at every height and keep finalizing; only the equivocator is
/// blocked. (The mock `equivocator` above ships no blocks: it tests a withholding leader.)
#[test]
fn an_equivocating_leader_shipping_two_valid_blocks_cannot_fork_the_honest_three() {
    run(41, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in HONEST {
            cluster.start(i);
        }
        cluster.wait_until(&HONEST, 2).await;
        let Equivocation {
            shipped, verified, ..
        } = spawn_two_block_equivocator(&cluster);
        let _traders = cluster.start_traders(41, Duration::from_millis(100));
        cluster.wait_until(&HONEST, 150).await;
        cluster.stop_traders();
        assert!(
            cluster.check_agreement(&HONEST) >= 150,
            "safety and liveness"
        );
        let pairs = shipped.lock().unwrap().clone();
        assert!(!pairs.is_empty(), "the leader equivocated");
        assert_no_pair_finalized_twice(&cluster, &pairs);
        let faults: u64 = cluster.faults_observed(&HONEST);
        assert!(faults > 0, "the conflicting notarize votes were reported");
        let blocked = cluster.blocked().await;
        assert!(
            blocked.iter().all(|(_, blamed)| *blamed == 3),
            "no honest validator is blamed: {blocked:?}"
        );
        assert!(
            blocked.iter().any(|(_, blamed)| *blamed == 3),
            "the equivocator is blocked: {blocked:?}"
        );
        let (a_verified, b_verified) = *verified.lock().unwrap();
        assert!(
            a_verified > 0 && b_verified > 0,
            "both blocks of a pair were valid and executed by a verifier: {a_verified}, {b_verified}"
        );
        assert!(cluster.executed(0).1 > 0, "trades happened");
    });
}

/// State sync while a leader equivocates: with the two-block equivocator in validator 3's
/// place, validator 2 loses its disk and restarts empty. The two honest validators left cannot
/// finalize without it (a quorum is 3 of 4, and the equivocator's blocks gather no quorum), so
/// the chain waits while it syncs from them: it waits for a block finalized since its start, up
/// to `JOURNAL_LOST_WAIT`, then starts consensus from the newest finalization it was shown. The
/// honest three then agree again, the leader keeps equivocating, no honest validator finalizes
/// both blocks of a pair, and only the equivocator is blamed.
#[test]
fn a_validator_wiped_while_a_leader_equivocates_state_syncs_and_agrees() {
    run(43, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in HONEST {
            cluster.start(i);
        }
        cluster.wait_until(&HONEST, 2).await;
        let Equivocation { shipped, .. } = spawn_two_block_equivocator(&cluster);
        let _traders = cluster.start_traders(43, Duration::from_millis(100));
        cluster.wait_until(&HONEST, 60).await;
        let pairs_before = shipped.lock().unwrap().len();
        let wiped_height = cluster.heights().into_iter().max().expect("validators");
        let wiped_s = cluster.now_s();
        cluster.wipe(2).await;
        cluster.start(2);
        let goal = wiped_height + 60;
        cluster.wait_until(&HONEST, goal).await;
        cluster.stop_traders();
        let first = {
            let shared = cluster.shared(2).expect("restarted");
            let history = lock(&shared.history);
            history.front().expect("it executed blocks").height
        };
        println!(
            "wiped at height {wiped_height} ({wiped_s:.1} s); the honest three at {goal} by \
             {:.1} s; the wiped validator executed from height {first}",
            cluster.now_s()
        );
        let compared = cluster.check_agreement(&HONEST);
        assert!(
            compared >= 40,
            "agreement after the sync: {compared} heights"
        );
        let pairs = shipped.lock().unwrap().clone();
        assert!(
            pairs.len() > pairs_before,
            "the leader kept equivocating after the wipe: {} pairs, {pairs_before} before",
            pairs.len()
        );
        assert_no_pair_finalized_twice(&cluster, &pairs);
        let blocked = cluster.blocked().await;
        assert!(
            blocked.iter().all(|(_, blamed)| *blamed == 3),
            "no honest validator is blamed: {blocked:?}"
        );
    });
}
