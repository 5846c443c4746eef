//! A leader that withholds other validators' price observations from the blocks it proposes:
//! all but its own, or all but the ones that favour it.
//!
//! Owns: the observations of the wrapped validator's proposals. The honest application puts
//! every fresh observation in its block; the withholder removes some and re-digests. A
//! proposer owes a block at most one validly signed observation per validator and underlying,
//! and no minimum (`ObservationPool::block_observations_valid`), so honest verifiers accept
//! it. The defences are the oracle's: the index is the median of at least `2f + 1` distinct
//! validators' observations of one block, so a block with fewer leaves the index where it was
//! (stale for that block), and a quorum the leader picked can move the median only within the
//! honest observations' own spread; the next honest leader includes everyone again.
//! A timed withholder (`around_ms`) acts only in the blocks dated within `around_ms` of a
//! funding time or an option refit, read from the venue's parameters in the state it holds:
//! the moments whose index decides a refit's centre or weighs in a funding sample, with
//! fewer observations missing (so less to notice) than one that withholds in every block.
//! A replaying withholder (`ReplayHigh`, `ReplayLow`) chooses among every observation it has
//! seen in blocks that is still within the oracle's freshness bound, each validly signed: in a
//! fall, the prices of seconds ago. The oracle drops an observation older than its
//! validator's newest that a block has counted (`DropReason::Superseded`), so a replay
//! moves the index no further than the withholding of newer ones does.
//! Never: signs, reprices or carries two observations of one validator and asset (that is
//! `Duty::ObservationsSigned` and `Duty::OneObservationPerValidator`), or touches
//! transactions.

use super::rewriter::{ProposalRewriter, Rewrite, with_body};
use bulwark_exchange::ExchangeParams;
use bulwark_node::app::ExchangeApp;
use bulwark_node::block::ChainBlock;
use bulwark_node::shared::Shared;
use bulwark_types::SignedObservation;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which observations a [`Withholder`] keeps.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Withhold {
    /// Only its own: fewer than the oracle's quorum, so its blocks do not move the index.
    AllButOwn,
    /// Per underlying, only the quorum's worth of highest prices: the median it can reach.
    High,
    /// Per underlying, only the quorum's worth of lowest prices.
    Low,
    /// As `High`, choosing among every validly signed observation it has seen in blocks
    /// within the oracle's freshness bound, not only each validator's newest: the prices of
    /// seconds ago, which in a fall lie above every current one.
    ReplayHigh,
    /// As `ReplayHigh`, the lowest: in a rise.
    ReplayLow,
}

/// Most observations a replaying withholder remembers (oldest forgotten first).
const REPLAY_HISTORY_MAX: usize = 4_096;

/// The observations a replaying withholder has seen in blocks, oldest first.
type Seen = Mutex<VecDeque<SignedObservation>>;

/// What a [`Withholder`] left out, for the lab to report.
#[derive(Debug, Default)]
pub struct WithholdLog {
    /// Observations removed from this leader's proposals.
    dropped: AtomicU64,
    /// Proposals it rewrote.
    blocks: AtomicU64,
}

impl WithholdLog {
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    pub fn blocks(&self) -> u64 {
        self.blocks.load(Ordering::SeqCst)
    }
}

/// The widest window a timed withholder may act in around each boundary: half the shortest
/// refit or funding interval the venue allows (1 s), so its windows never join into every
/// block.
pub const WITHHOLD_AROUND_MS_MAX: u64 = 500;

/// A leader that withholds observations (a [`Rewrite`] role).
#[derive(Clone)]
pub struct Withholder {
    withhold: Withhold,
    /// Observations per underlying kept by `High` and `Low`: the oracle's quorum, `2f + 1`.
    quorum: usize,
    /// When set, it acts only in blocks dated within `around_ms` of a boundary of the
    /// funding or refit interval of the venue in `shared`'s state.
    timed: Option<(u64, Arc<Shared>)>,
    /// For the replaying kinds: the state it reads the oracle's freshness bound from, and
    /// every observation it has seen in a block, oldest first.
    replay: Option<(Arc<Shared>, Arc<Seen>)>,
    log: Arc<WithholdLog>,
}

impl Withholder {
    /// The wrapper `bulwark_node::engine::start_with` takes, for a cluster of `validators`;
    /// with `around_ms`, a timed withholder.
    pub fn wrapper(
        withhold: Withhold,
        validators: usize,
        around_ms: Option<u64>,
        log: Arc<WithholdLog>,
    ) -> impl FnOnce(ExchangeApp, Arc<Shared>) -> ProposalRewriter<Self> {
        assert!(validators >= 4, "n = 3f + 1 with f at least 1");
        let quorum = 2 * ((validators - 1) / 3) + 1;
        ProposalRewriter::wrapper_with(move |shared| Self {
            withhold,
            quorum,
            replay: matches!(withhold, Withhold::ReplayHigh | Withhold::ReplayLow)
                .then(|| (shared.clone(), Arc::default())),
            timed: around_ms.map(|around| (around, shared)),
            log,
        })
    }

    /// Whether a block dated `time_ms` is one this withholder acts in.
    fn acts_at(&self, time_ms: u64) -> bool {
        let Some((around_ms, shared)) = &self.timed else {
            return true;
        };
        near_boundary(shared.finalized_view().state.params(), time_ms, *around_ms)
    }

    /// The observations of `all` this leader (`own`) keeps.
    fn kept(
        &self,
        all: &[SignedObservation],
        own: &bulwark_types::PublicKey,
    ) -> Vec<SignedObservation> {
        match self.withhold {
            Withhold::AllButOwn => only_own(all, own),
            Withhold::High | Withhold::Low | Withhold::ReplayHigh | Withhold::ReplayLow => {
                let mut by_price = all.to_vec();
                // Per underlying, favoured prices first; ties by validator, so every run of
                // the same seed keeps the same ones.
                by_price.sort_by(|a, b| {
                    let (a, b) = (&a.observation, &b.observation);
                    let high = matches!(self.withhold, Withhold::High | Withhold::ReplayHigh);
                    let price = if high {
                        b.price.cmp(&a.price)
                    } else {
                        a.price.cmp(&b.price)
                    };
                    a.asset
                        .cmp(&b.asset)
                        .then(price)
                        .then(a.validator.cmp(&b.validator))
                });
                let mut kept: Vec<SignedObservation> = Vec::with_capacity(all.len());
                for s in by_price {
                    let o = &s.observation;
                    let same = kept.iter().filter(|k| k.observation.asset == o.asset);
                    // One per validator and asset (a block may carry no more), its favoured.
                    let twice = kept.iter().any(|k| {
                        k.observation.asset == o.asset && k.observation.validator == o.validator
                    });
                    if same.count() < self.quorum && !twice {
                        kept.push(s);
                    }
                }
                kept
            }
        }
    }
}

impl Rewrite for Withholder {
    fn rewrite(&self, honest: &ChainBlock, parent: Option<&ChainBlock>) -> Option<ChainBlock> {
        if !self.acts_at(honest.body.time.millis()) {
            return None;
        }
        let all = &honest.body.observations;
        let kept = match &self.replay {
            None => self.kept(all, &honest.context.leader),
            Some((shared, history)) => {
                let seen = remember(history, honest, parent, shared);
                self.kept(&seen, &honest.context.leader)
            }
        };
        // The honest block's observations it left out (a replayed one stands in for some).
        let dropped = all.iter().filter(|s| !kept.contains(s)).count();
        if dropped == 0 && kept.len() == all.len() {
            // The same observations (perhaps in another order): the honest block stands.
            return None;
        }
        self.log.dropped.fetch_add(dropped as u64, Ordering::SeqCst);
        self.log.blocks.fetch_add(1, Ordering::SeqCst);
        let mut body = honest.body.clone();
        body.observations = kept;
        Some(with_body(honest, body, None))
    }
}

/// The observations of `all` that `own` signed: fewer than the oracle's quorum, so a block
/// carrying only these leaves the index where it was.
pub(super) fn only_own(
    all: &[SignedObservation],
    own: &bulwark_types::PublicKey,
) -> Vec<SignedObservation> {
    all.iter()
        .filter(|s| s.observation.validator == *own)
        .cloned()
        .collect()
}

/// Adds the observations of `honest` and of `parent` to `history` and returns every one it
/// holds that the oracle of `shared`'s finalized state would still take at `honest`'s time.
fn remember(
    history: &Seen,
    honest: &ChainBlock,
    parent: Option<&ChainBlock>,
    shared: &Shared,
) -> Vec<SignedObservation> {
    let now = honest.body.time.millis();
    let age_max = shared
        .finalized_view()
        .state
        .oracle_config()
        .map_or(0, |c| c.observation_age_ms_max);
    let mut history = history.lock().expect("not poisoned");
    let blocks = parent.into_iter().chain([honest]);
    for s in blocks.flat_map(|b| &b.body.observations) {
        if !history.contains(s) {
            history.push_back(s.clone());
        }
    }
    while history.len() > REPLAY_HISTORY_MAX {
        history.pop_front();
    }
    history
        .iter()
        .filter(|s| {
            let at = s.observation.observed_at_ms;
            at <= now && at + age_max >= now
        })
        .cloned()
        .collect()
}

/// Whether `time_ms` lies within `around_ms` of a funding time or, when options are marked
/// from smiles, of a refit: a multiple of `params`' funding or refit interval.
fn near_boundary(params: &ExchangeParams, time_ms: u64, around_ms: u64) -> bool {
    let refit = params
        .surface_marks
        .map(|surface| surface.refit_interval_ms);
    [Some(params.funding_interval_ms), refit]
        .into_iter()
        .flatten()
        .filter(|every| *every > 0)
        .any(|every| {
            let into = time_ms % every;
            into <= around_ms || every - into <= around_ms
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_withholder_acts_only_near_a_funding_time_or_a_refit() {
        let mut params = ExchangeParams::defaults();
        params.funding_interval_ms = 60_000;
        let refit = params
            .surface_marks
            .expect("smile marks by default")
            .refit_interval_ms;
        assert_eq!(refit, 10_000);
        let cases = [
            (60_000, true),
            (60_400, true),
            (60_600, false),
            (69_500, true),
            (69_400, false),
            (70_000, true),
            (75_000, false),
            (119_700, true),
        ];
        for (time_ms, acts) in cases {
            assert_eq!(
                near_boundary(&params, time_ms, 500),
                acts,
                "at {time_ms} ms"
            );
        }
        params.surface_marks = None;
        assert!(
            !near_boundary(&params, 70_000, 500),
            "no refits without smiles"
        );
        assert!(near_boundary(&params, 120_200, 500), "funding still");
    }
}
