//! A validator whose execution diverges from the network's halts at once, loudly, while the
//! others keep finalizing. Lives in the library's unit tests because the fault it injects
//! (`Executor::inject_fault`) exists only in `cfg(test)` builds.

#[path = "../tests/common/mod.rs"]
mod common;

use crate::shared::lock;
use common::{Cluster, link, run};
use commonware_runtime::Clock as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[test]
fn a_diverged_validator_halts_naming_the_height_and_both_digests() {
    run(9, |context| async move {
        let mut cluster = Cluster::new(context, link(10, 3, 100)).await;
        for i in 0..4 {
            cluster.start(i);
        }
        let _traders = cluster.start_traders(19, Duration::from_millis(100));
        cluster.wait_until(&[0, 1, 2, 3], 40).await;
        let victim = cluster.shared(3).unwrap();
        victim.fault_drop_last_tx_at.store(45, Ordering::SeqCst);
        // It halts within a few blocks of the fault; the others go on without it.
        let deadline = cluster.context.current() + Duration::from_secs(120);
        while lock(&victim.status).halted.is_none() {
            assert!(
                cluster.context.current() < deadline,
                "the diverged validator never halted"
            );
            cluster.context.sleep(Duration::from_millis(100)).await;
        }
        let reason = lock(&victim.status).halted.clone().unwrap();
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
