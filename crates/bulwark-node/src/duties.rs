//! A leader that breaks a proposer duty gets no vote: every honest verifier refuses its block,
//! its view is skipped, and the chain goes on without it. In the library's unit tests because
//! the fault (`ExchangeApp::break_duty`, through `Shared::fault_propose`) exists only in
//! `cfg(test)` builds. The faulty validator is otherwise honest: it votes and executes, so it
//! agrees with the others on every finalized block.

use crate::common::{ALL, Cluster, link, run};
use crate::shared::lock;
use commonware_cryptography::Signer as _;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Runs four validators with validator 3 breaking `duty` in every block it proposes, until the
/// honest three finalize 150 blocks; asserts safety, liveness and that none of its broken
/// blocks was finalized anywhere.
fn a_leader_breaking(duty: u8, seed: u64) {
    run(seed, move |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in ALL {
            cluster.start(i);
        }
        cluster.wait_until(&ALL, 2).await;
        let faulty = cluster.shared(3).unwrap();
        faulty.fault_propose.store(duty, Ordering::SeqCst);
        let _traders = cluster.start_traders(seed, Duration::from_millis(100));
        cluster.wait_until(&[0, 1, 2], 150).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&ALL) >= 100, "all four agree");
        let broken: BTreeSet<_> = lock(&faulty.faulty_proposals).iter().copied().collect();
        assert!(!broken.is_empty(), "duty {duty}: the leader broke it");
        for i in ALL {
            let shared = cluster.shared(i).unwrap();
            let history = lock(&shared.history);
            let finalized: BTreeSet<_> = history.iter().map(|r| r.block).collect();
            assert!(
                finalized.is_disjoint(&broken),
                "duty {duty}: validator {i} finalized a block that broke it"
            );
        }
        let status = lock(&cluster.shared(0).unwrap().status).clone();
        assert!(
            status.views_skipped > 0,
            "duty {duty}: the faulty leader's views were skipped"
        );
        // Blame: every honest validator's refusals name the faulty leader, and no honest one.
        let faulty_key = crate::executor::hex(cluster.signers[3].public_key().as_ref());
        for i in [0, 1, 2] {
            let status = lock(&cluster.shared(i).unwrap().status).clone();
            let named: Vec<&String> = status.refused.keys().collect();
            assert_eq!(named, vec![&faulty_key], "duty {duty}: validator {i}");
        }
        assert!(cluster.executed(0).1 > 0, "trades happened");
    });
}

#[test]
fn a_leader_holding_cancels_back_behind_orders_gets_no_vote() {
    a_leader_breaking(1, 31);
}

#[test]
fn a_leader_counting_one_validator_s_observation_twice_gets_no_vote() {
    a_leader_breaking(2, 32);
}

#[test]
fn a_leader_dating_its_block_before_the_parent_gets_no_vote() {
    a_leader_breaking(3, 33);
}

#[test]
fn a_leader_stuffing_its_block_with_keys_that_have_no_account_gets_no_vote() {
    a_leader_breaking(4, 34);
}
