//! Who leads each consensus view: Commonware's round robin, except that view 1's leader also
//! leads view 2.
//!
//! Why view 2: simplex skips a leader at once (nullifies its view without waiting for the
//! leader timeout) when, on entering the view, it has heard nothing from that leader within
//! the skip timeout while it has heard from a quorum (`SkipPolicy::Enabled`, in `engine.rs`).
//! From genesis a validator has heard only view 1's votes. With plain round robin, one that
//! formed view 1's notarization before the view-2 leader's first vote reached it judged that
//! leader silent and nullified view 2. When two did, the leader and the fourth validator voted
//! for its block, neither certificate could form, and the view waited for the certification
//! timeout: `bulwark simulate baseline` stalled 2,040 ms on seed 1 and 2,060 ms on seed 18 (of
//! 40), against 206 to 226 ms on every other seed (`tests/faults.rs` in `bulwark-sim`,
//! `a_cluster_started_from_genesis_does_not_skip_its_second_leader`).
//!
//! View 1's leader sent its proposal, which carries its vote, to every validator in view 1,
//! so a validator entering view 2 on view 1's notarization has heard from it unless that one
//! message is still in flight there (a stall needs f + 1 such validators). By view
//! 3, every live validator's first vote has had a whole view to arrive, so a leader judged
//! silent there is silent.
//!
//! The cost: the first leader leads one view more than the others, once, at genesis (views
//! 1 and 2 of epoch 0, before any client has traded): a Byzantine first leader gains one
//! more block to order, or to withhold at the cost of the leader timeout, as any leader of
//! two views would. A cluster restarted
//! all at once from a later view can still skip its second leader that way (the schedule
//! cannot know where a restart begins), at most once per restart, for up to the
//! certification timeout.

use commonware_consensus::simplex::elector::{
    self, Elector, Input, RoundRobin, RoundRobinElector, Scheduled, Terms,
};
use commonware_consensus::types::{Round, View};
use commonware_cryptography::Sha256;
use commonware_cryptography::certificate::Scheme;
use commonware_utils::Participant;
use commonware_utils::ordered::Set;

/// The leader schedule every validator (and every lab mock that must know who leads) uses.
#[derive(Clone, Default)]
pub struct LeaderSchedule(RoundRobin<Sha256>);

impl<S: Scheme> elector::Config<S> for LeaderSchedule {
    type Elector = Leaders<S>;

    fn build(self, participants: &Set<S::PublicKey>) -> Leaders<S> {
        let inner = elector::Config::<S>::build(self.0, participants);
        // One leader per view: a longer term would make the first term longer, not view 2.
        assert_eq!(
            Elector::<S>::terms(&inner),
            Terms::rotating(),
            "round robin without stable terms"
        );
        Leaders(inner)
    }
}

/// [`LeaderSchedule`] built over the participants.
#[derive(Clone, Debug)]
pub struct Leaders<S: Scheme>(RoundRobinElector<S>);

impl<S: Scheme> Elector<S> for Leaders<S> {
    type Mode = Scheduled;

    fn terms(&self) -> Terms {
        self.0.terms()
    }

    fn elect(&self, round: Round, input: Input<'_, S, Self>) -> Participant {
        let view = if round.view() == View::new(1) {
            View::new(2)
        } else {
            round.view()
        };
        self.0.elect(Round::new(round.epoch(), view), input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_consensus::simplex::scheme::ed25519;
    use commonware_consensus::types::Epoch;
    use commonware_cryptography::Signer as _;
    use commonware_cryptography::ed25519::PrivateKey;

    fn built(n: u64) -> (Leaders<ed25519::Scheme>, RoundRobinElector<ed25519::Scheme>) {
        let keys = Set::from_iter_dedup((0..n).map(|i| PrivateKey::from_seed(i).public_key()));
        assert_eq!(keys.len() as u64, n, "distinct keys");
        (
            elector::Config::<ed25519::Scheme>::build(LeaderSchedule::default(), &keys),
            elector::Config::<ed25519::Scheme>::build(RoundRobin::<Sha256>::default(), &keys),
        )
    }

    #[test]
    fn view_1_s_leader_leads_view_2_and_round_robin_decides_the_rest() {
        for n in [4, 7, 10] {
            let (leaders, round_robin) = built(n);
            for epoch in [Epoch::zero(), Epoch::new(3)] {
                let at = |view: u64| Round::new(epoch, View::new(view));
                assert_eq!(leaders.elect(at(1), ()), leaders.elect(at(2), ()));
                assert_eq!(leaders.elect(at(2), ()), round_robin.elect(at(2), ()));
                for view in 2..200 {
                    assert_eq!(leaders.elect(at(view), ()), round_robin.elect(at(view), ()));
                }
                // Every validator still leads once in every n views from view 2.
                let mut led: Vec<Participant> =
                    (2..2 + n).map(|view| leaders.elect(at(view), ())).collect();
                led.sort();
                led.dedup();
                assert_eq!(led.len() as u64, n, "n = {n}");
            }
        }
    }
}
