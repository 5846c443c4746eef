//! Commonware's Byzantine consensus mocks, each run under a validator's key in its place.

use crate::cluster::Cluster;
use crate::scenario::MockKind;
use bulwark_node::leaders::LeaderSchedule;
use commonware_consensus::simplex::mocks::{
    conflicter, equivocator, nuller, outdated, relay::Relay,
};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_cryptography::Sha256;
use commonware_runtime::{Handle, Supervisor as _};
use std::sync::Arc;

/// Spawns `kind` as validator `i`: on the vote channel (and, for the equivocator, the
/// certificate channel), with validator `i`'s signing scheme.
pub fn spawn(cluster: &Cluster, i: usize, kind: MockKind) -> Handle<()> {
    match kind {
        MockKind::Conflicter => cluster.spawn_impostor(i, &[0], |context, scheme, mut channels| {
            let votes = channels.remove(0);
            async move {
                let mock = conflicter::Conflicter::<_, _, Sha256>::new(
                    context.child("conflicter"),
                    conflicter::Config { scheme },
                );
                let _ = mock.start(votes).await;
            }
        }),
        MockKind::Nuller => cluster.spawn_impostor(i, &[0], |context, scheme, mut channels| {
            let votes = channels.remove(0);
            async move {
                let mock = nuller::Nuller::<_, _, Sha256>::new(
                    context.child("nuller"),
                    nuller::Config { scheme },
                );
                let _ = mock.start(votes).await;
            }
        }),
        MockKind::Outdated => cluster.spawn_impostor(i, &[0], |context, scheme, mut channels| {
            let votes = channels.remove(0);
            async move {
                let mock = outdated::Outdated::<_, _, Sha256>::new(
                    context.child("outdated"),
                    outdated::Config {
                        scheme,
                        view_delta: ViewDelta::new(10),
                    },
                );
                let _ = mock.start(votes).await;
            }
        }),
        MockKind::Equivocator => {
            cluster.spawn_impostor(i, &[0, 1], |context, scheme, mut channels| {
                let (votes, certificates) = (channels.remove(0), channels.remove(0));
                async move {
                    let config = equivocator::Config {
                        scheme,
                        elector: LeaderSchedule::default(),
                        epoch: Epoch::zero(),
                        relay: Arc::new(Relay::new()),
                    };
                    let mock = equivocator::Equivocator::<_, _, _, Sha256>::new(
                        context.child("equivocator"),
                        config,
                    );
                    let _ = mock.start(votes, certificates).await;
                }
            })
        }
    }
}
