//! A leader that breaks a proposer duty gets no vote: every honest verifier refuses its block,
//! its view is skipped, and the chain goes on without it. The fault is the lab's
//! [`DutyBreaker`], wrapping validator 3's exchange application. The faulty validator is
//! otherwise honest: it votes and executes, so it agrees with the others on every finalized
//! block.

use bulwark_node::shared::lock;
use bulwark_sim::byzantine::{Duty, DutyBreaker, DutySwitch};
use bulwark_sim::cluster::{ALL, Cluster, link, run};
use commonware_cryptography::Signer as _;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Runs four validators with validator 3 breaking `duty` in every block it proposes, until the
/// honest three finalize 150 blocks; asserts safety, liveness and that none of its broken
/// blocks was finalized anywhere. With `reason`, every honest validator's last refusal of it
/// gives that reason.
fn a_leader_breaking(duty: Duty, seed: u64) {
    a_leader_refused_for(duty, seed, None);
}

fn a_leader_refused_for(duty: Duty, seed: u64, reason: Option<&'static str>) {
    run(seed, move |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        let switch = Arc::new(DutySwitch::default());
        for i in [0, 1, 2] {
            cluster.start(i);
        }
        cluster.start_with(3, DutyBreaker::wrapper(switch.clone()));
        cluster.wait_until(&ALL, 2).await;
        switch.set(Some(duty));
        // Every 70 ms, not the usual 100: the traders submit together, and a burst every two
        // blocks' time met a fixed turn of the four leaders. On seed 35 validator 3 then led
        // every block after a burst had been taken, and its 38 blocks held no transaction to
        // forge (`TransactionsSigned` was never broken). 70 ms walks the burst through the turn.
        let _traders = cluster.start_traders(seed, Duration::from_millis(70));
        cluster.wait_until(&[0, 1, 2], 150).await;
        cluster.stop_traders();
        assert!(cluster.check_agreement(&ALL) >= 100, "all four agree");
        let broken: BTreeSet<_> = switch.broken().into_iter().collect();
        assert!(!broken.is_empty(), "duty {duty:?}: the leader broke it");
        for i in ALL {
            let shared = cluster.shared(i).unwrap();
            let history = lock(&shared.history);
            let finalized: BTreeSet<_> = history.iter().map(|r| r.block).collect();
            assert!(
                finalized.is_disjoint(&broken),
                "duty {duty:?}: validator {i} finalized a block that broke it"
            );
        }
        let status = lock(&cluster.shared(0).unwrap().status).clone();
        assert!(
            status.views_skipped > 0,
            "duty {duty:?}: the faulty leader's views were skipped"
        );
        // Blame: every honest validator's refusals name the faulty leader, and no honest one.
        let faulty_key = bulwark_node::executor::hex(cluster.signers[3].public_key().as_ref());
        for i in [0, 1, 2] {
            let status = lock(&cluster.shared(i).unwrap().status).clone();
            let named: Vec<&String> = status.refused.keys().collect();
            assert_eq!(named, vec![&faulty_key], "duty {duty:?}: validator {i}");
            if let Some(reason) = reason {
                let last = &status.refused[&faulty_key].1;
                assert!(
                    last.starts_with(reason),
                    "duty {duty:?}: validator {i}: {last}"
                );
            }
        }
        assert!(cluster.executed(0).1 > 0, "trades happened");
    });
}

#[test]
fn a_leader_holding_cancels_back_behind_orders_gets_no_vote() {
    a_leader_breaking(Duty::CancelsFirst, 37);
}

#[test]
fn a_leader_counting_one_validator_s_observation_twice_gets_no_vote() {
    a_leader_breaking(Duty::OneObservationPerValidator, 32);
}

#[test]
fn a_leader_dating_its_block_before_the_parent_gets_no_vote() {
    a_leader_breaking(Duty::TimeNotBeforeParent, 33);
}

#[test]
fn a_leader_stuffing_its_block_with_keys_that_have_no_account_gets_no_vote() {
    a_leader_breaking(Duty::PayingSigners, 34);
}

/// The forgery sits beside what every verifier admitted: the same key and nonce, another
/// body, the admitted transaction's signature. No cached verdict may vouch for it.
#[test]
fn a_leader_forging_an_admitted_transaction_s_body_gets_no_vote() {
    a_leader_refused_for(
        Duty::TransactionsSigned,
        35,
        Some("a transaction's signature does not verify"),
    );
}

/// The same for an observation: same validator, underlying, time and signature, another price.
#[test]
fn a_leader_repricing_a_verified_observation_gets_no_vote() {
    a_leader_refused_for(
        Duty::ObservationsSigned,
        36,
        Some("an observation is badly signed"),
    );
}

/// A block committing to a state that is not the one after its parent is refused.
#[test]
fn a_leader_whose_block_commits_to_a_state_that_is_not_its_parents_gets_no_vote() {
    a_leader_breaking(Duty::CommittedState, 38);
}
