//! The consensus application: builds blocks as leader and verifies others' blocks.
//!
//! Owns: what a valid block is. A block is valid when its time does not go back from its
//! parent's, its cancels come first, every transaction's signature verifies, its observations
//! are validators', validly signed and one per validator and underlying, and the state
//! digest and state hash it commits to are the ones this node computes after its parent.
//! Verdicts are deterministic but for one local input, the clock: a block from the future
//! waits for it, and a block whose time lags the moment its view was live here by more than
//! the lag bound gets no vote (see [`Notarizations`]).
//! Never: holds a lock across an `.await`; returns `false` for "not yet".

use crate::block::{ChainBlock, Ctx};
use crate::chain::ExtendError;
use crate::prices::PriceFeed;
use crate::shared::{Shared, lock};
use crate::verdicts;
use bulwark_types::{
    Block as ExchangeBlock, BlockLimits, BlockTime, Height as ExchangeHeight, PriceInputs,
};
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::simplex::scheme::ed25519;
use commonware_consensus::{Application, Heightable};
use commonware_cryptography::{Digested, Digestible};
use commonware_runtime::Clock;
use futures::StreamExt;
use rand_core::CryptoRng;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Block building and verification settings. Node-local, but `limits` must match the network's.
#[derive(Copy, Clone, Debug)]
pub struct AppConfig {
    pub limits: BlockLimits,
    /// Encoded transaction bytes a proposal may carry.
    pub proposal_bytes_max: usize,
    /// A leader waits until this long after its parent's time before proposing (at once if
    /// the parent is dated ahead of its clock: [`proposal_pause`]).
    pub block_interval_min: Duration,
    /// How far ahead of this node's clock a block's time may be before its verdict waits;
    /// twice as far ahead, it gets no vote ([`AppConfig::time_ahead_max`]).
    pub time_drift_max: Duration,
    /// How far behind this node's clock a proposal's time may lag: older, it gets no vote
    /// (judged at the earlier of verification and its view's notarization, see
    /// [`Notarizations`]). A leader cannot hold block time back (keeping stale observations fresh, delaying
    /// funding, expiry and settlement) by more than this.
    pub time_lag_max: Duration,
    /// How many blocks beyond its finalized state this node executes speculatively; further
    /// behind, it waits for execution to catch up instead of voting.
    pub speculation_depth_max: u64,
}

impl AppConfig {
    /// How far ahead of this node's clock a proposal's time may be and still get its vote
    /// (after a wait of at most the drift bound): twice the drift bound.
    pub fn time_ahead_max(&self) -> Duration {
        self.time_drift_max.saturating_mul(2)
    }
}

/// Why a proposal's time gets no vote.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockTimeError {
    #[error("block time {time_ms} is before its parent's {parent_ms}")]
    BeforeParent { time_ms: u64, parent_ms: u64 },
    #[error(
        "block time {time_ms} lags this validator's clock {now_ms} by more than {lag_max_ms} ms"
    )]
    Lagging {
        time_ms: u64,
        now_ms: u64,
        lag_max_ms: u64,
    },
    #[error(
        "block time {time_ms} is ahead of this validator's clock {now_ms} by more than {ahead_max_ms} ms"
    )]
    Ahead {
        time_ms: u64,
        now_ms: u64,
        ahead_max_ms: u64,
    },
}

/// How long a leader waits before proposing on a parent dated `parent_ms`, at its clock
/// `now_ms`: until `interval_min` after the parent's time, and not at all when the parent is
/// dated ahead of the clock. The leader dates its block no earlier than its parent, so a clock
/// behind the parent's (its own behind the others', or the parent's proposer's ahead within
/// the drift bound) cannot tell how long ago the parent was proposed, and waiting can only
/// cost: sleeping until the clock passed the parent's time held a clock 4.5 s behind past the
/// leader timeout, and every view it led was skipped as if it had crashed.
pub fn proposal_pause(parent_ms: u64, now_ms: u64, interval_min: Duration) -> Duration {
    if now_ms < parent_ms {
        return Duration::ZERO;
    }
    let earliest = parent_ms.saturating_add(interval_min.as_millis() as u64);
    let pause = Duration::from_millis(earliest.saturating_sub(now_ms));
    assert!(pause <= interval_min);
    pause
}

/// Whether a proposal's time `time_ms` may follow its parent's at this validator's clock
/// `now_ms`: not before the parent, not more than `lag_max_ms` behind the clock, and not more
/// than `ahead_max_ms` ahead of it. (Ahead by more than the drift bound but within
/// `ahead_max_ms`, the verdict waits for the clock: at most `ahead_max_ms` less the drift.)
///
/// Why a bound ahead, not only a wait: every block a leader dates 2 s ahead held each verifier
/// 1.5 s before its vote, and the chain with it (200 blocks in 17.8 s against 10.7 s, a
/// quarter of the views led by that clock). Refused, the view is nullified at once and the
/// next leader proposes.
pub fn block_time_acceptable(
    time_ms: u64,
    parent_ms: u64,
    now_ms: u64,
    lag_max_ms: u64,
    ahead_max_ms: u64,
) -> Result<(), BlockTimeError> {
    if time_ms < parent_ms {
        return Err(BlockTimeError::BeforeParent { time_ms, parent_ms });
    }
    if time_ms > now_ms.saturating_add(ahead_max_ms) {
        return Err(BlockTimeError::Ahead {
            time_ms,
            now_ms,
            ahead_max_ms,
        });
    }
    if time_ms.saturating_add(lag_max_ms) < now_ms {
        return Err(BlockTimeError::Lagging {
            time_ms,
            now_ms,
            lag_max_ms,
        });
    }
    Ok(())
}

/// How many views' notarize sightings a validator keeps (the newest).
pub const NOTARIZATIONS_KEPT: usize = 256;

/// When this validator, by its own clock, voted to notarize each of the newest views and
/// first saw each notarized: what a block's time lag is judged against.
///
/// With deferred verification a validator votes to notarize a block as soon as it holds it
/// and verifies meanwhile; the certificate then waits for the verdict. Judging every verdict
/// by the clock at verification stalls the chain: a validator that receives a notarized block
/// late (its proposer crashed right after sending it to the voters; a partition healed)
/// would refuse, by its clock then, a block no leader held back, and once the timely voters
/// have voted to finalize, the view can be neither finalized nor skipped. So:
///
/// - a block dated before this validator's consensus engine started is not its to judge: a
///   vote on it was cast in an earlier run and is replayed from the journal without the
///   judgement behind it (judged at the replay, a block voted for just before a crash was
///   refused at the restart: `sweep-200` seed 111);
/// - a validator that voted to notarize the view before it saw the view notarized judges the
///   lag at the earlier of the clock and its vote;
/// - one that saw the view notarized before verifying, and either did not vote or voted only
///   after that sighting (a late vote, or one replayed from its journal after a restart), is
///   late: the lag rule is not its to apply ([`Notarizations::lag_judged_at_ms`] answers
///   `None`). Judging a replayed vote by the clock at the replay stalled the chain: a block
///   notarized just before two validators went down was refused by both at their restarts,
///   and the two that had voted in time could not finalize it alone (`sweep-200` seed 154);
/// - otherwise the clock decides.
///
/// A leader still cannot hold block time back: a notarization carries the votes of at least
/// f+1 honest validators, each of which held the block in that view and so judges it by its
/// clock then. A stale block is refused by them, and the at most f late honest validators with
/// the f Byzantine ones are 2f, short of the 2f+1 finalize votes it needs. What is left: an
/// honest voter that restarts between its vote and its verdict defers like a late one, so a
/// leader gains a stale block only if f+1 of them do; and after a restart of the whole
/// network, a Byzantine leader may date its block at its parent's time until the first honest
/// block after the restart (times never go backwards: the order of times is always checked).
#[derive(Debug, Default)]
pub struct Notarizations {
    views: std::collections::BTreeMap<u64, ViewSighting>,
    /// When this validator's consensus engine started, by its clock.
    started_ms: u64,
}

/// What one validator saw of one view, by its own clock (milliseconds).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct ViewSighting {
    voted_ms: Option<u64>,
    notarized_ms: Option<u64>,
}

impl Notarizations {
    /// Records that this validator's consensus engine started at `now_ms`: what it voted
    /// before then, it replays from its journal without the judgement behind the vote.
    pub fn record_start(&mut self, now_ms: u64) {
        self.started_ms = now_ms;
    }

    /// Records this validator's own notarize vote in `view` at `now_ms` (the first stands).
    pub fn record_own_vote(&mut self, view: u64, now_ms: u64) {
        self.sighting(view).voted_ms.get_or_insert(now_ms);
    }

    /// Records that `view` was seen notarized at `now_ms` (the first sighting stands).
    pub fn record_notarization(&mut self, view: u64, now_ms: u64) {
        self.sighting(view).notarized_ms.get_or_insert(now_ms);
    }

    fn sighting(&mut self, view: u64) -> &mut ViewSighting {
        if !self.views.contains_key(&view) {
            while self.views.len() >= NOTARIZATIONS_KEPT {
                self.views.pop_first();
            }
        }
        debug_assert!(self.views.len() <= NOTARIZATIONS_KEPT);
        self.views.entry(view).or_default()
    }

    /// The time a block of `view` dated `block_ms` and verified at `now_ms` has its lag
    /// judged against, or `None` when this verification is late and the lag rule belongs to
    /// the view's voters.
    pub fn lag_judged_at_ms(&self, view: u64, block_ms: u64, now_ms: u64) -> Option<u64> {
        if block_ms < self.started_ms {
            // Dated before this engine started: any vote of ours on it was cast in an earlier
            // run (and is replayed now without its judgement), or we were down while it was
            // proposed.
            return None;
        }
        let sighting = self.views.get(&view).copied().unwrap_or_default();
        match sighting {
            // Voted while the view was open: judged as of that vote.
            ViewSighting {
                voted_ms: Some(voted),
                notarized_ms,
            } if notarized_ms.is_none_or(|notarized| voted <= notarized) => Some(voted.min(now_ms)),
            // Saw the view notarized before voting in it (a late vote, or one replayed from
            // the journal after a restart) or without voting: late.
            ViewSighting {
                notarized_ms: Some(notarized),
                ..
            } if notarized <= now_ms => None,
            _ => Some(now_ms),
        }
    }
}

/// Milliseconds since the Unix epoch of the runtime's clock.
pub fn now_ms(clock: &impl Clock) -> u64 {
    let now: SystemTime = clock.current();
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The exchange as a consensus application.
#[derive(Clone)]
pub struct ExchangeApp {
    shared: Arc<Shared>,
    feed: Arc<Mutex<Box<dyn PriceFeed>>>,
    config: AppConfig,
    /// Oldest observation a proposal carries.
    observation_age_max: Duration,
}

impl ExchangeApp {
    pub fn new(
        shared: Arc<Shared>,
        feed: Box<dyn PriceFeed>,
        config: AppConfig,
        observation_age_max: Duration,
    ) -> Self {
        Self {
            shared,
            feed: Arc::new(Mutex::new(feed)),
            config,
            observation_age_max,
        }
    }

    fn halted(&self) -> bool {
        lock(&self.shared.status).halted.is_some()
    }

    /// Execution stopped at a finalized block missing from this node's archive and waits for
    /// a verified snapshot from peers (`NodeStatus::archive_gap`), or the node halted.
    fn waiting_for_state_sync(&self) -> bool {
        let status = lock(&self.shared.status);
        status.archive_gap.is_some() || status.halted.is_some()
    }

    /// Makes sure this node holds the state after `parent`, executing the blocks between the
    /// nearest state it holds (the finalized block's, or any speculative one: see
    /// [`crate::chain`]) and `parent` (taken from `ancestry`, newest first) if needed.
    /// Returns false if `parent` does not descend from this node's finalized block.
    ///
    /// Finalization goes on while this waits (for a block of the ancestry, fetched from peers,
    /// or for execution to catch up): every step reads the finalized height afresh, and blocks
    /// of the walk that finalization applied meanwhile are dropped from it, not mistaken for a
    /// fork because the state before them was pruned (sweep-200 seed 512: a validator restarted
    /// from its disk refused every proposal while it caught up, and the chain stopped).
    async fn ensure_state<E: Clock + CryptoRng>(
        &self,
        runtime: &mut E,
        parent: &Digested<ChainBlock>,
        ancestry: &mut impl Ancestry<ChainBlock>,
    ) -> bool {
        // The blocks from `parent` back, newest first, whose states this node does not hold;
        // `ancestry` has yielded every block but `parent` that is in it.
        let mut path = vec![parent.clone()];
        loop {
            let (finalized_height, oldest_parent_held) = {
                let chain = lock(&self.shared.chain);
                if let Some(held) = path
                    .iter()
                    .position(|block| chain.state_after(&block.digest()).is_some())
                {
                    path.truncate(held);
                }
                let Some(oldest) = path.last() else {
                    return true;
                };
                (
                    chain.finalized_height(),
                    chain.state_after(&oldest.inner().parent).is_some(),
                )
            };
            if parent.height().get() <= finalized_height {
                // Not our finalized block (its state would be held), yet at or below its
                // height: a fork we cannot join.
                return false;
            }
            if parent.height().get() - finalized_height > self.config.speculation_depth_max {
                // Far behind: let execution of finalized blocks catch up first.
                runtime.sleep(Duration::from_millis(50)).await;
                continue;
            }
            if !oldest_parent_held {
                let oldest = path.last().expect("non-empty");
                if oldest.height().get() <= finalized_height + 1 {
                    // Its parent is at or below the finalized height and is not the finalized
                    // block: a fork.
                    return false;
                }
                if path.len() as u64 > self.config.speculation_depth_max {
                    // Heights in the ancestry that do not step down by one: not a chain.
                    return false;
                }
                match ancestry.next().await {
                    Some(block) => path.push(block),
                    None => return false,
                }
                continue;
            }
            let mut replayed = true;
            for block in path.iter().rev() {
                let checked =
                    verdicts::check_block(&self.shared.signatures, runtime, block.inner());
                if !checked.all_signatures_valid() {
                    return false;
                }
                let extended = {
                    let mut chain = lock(&self.shared.chain);
                    let extended = chain.extend(block, &checked);
                    self.shared.publish_newest(&chain);
                    extended
                };
                match extended {
                    Ok(()) => {}
                    // The state this replay started from was forgotten meanwhile (a
                    // finalization pruned it, or the bound did): look again from the top,
                    // where the blocks extended so far are held.
                    Err(ExtendError::UnknownParent(_)) => {
                        replayed = false;
                        break;
                    }
                    Err(_) => return false,
                }
            }
            if replayed {
                return true;
            }
        }
    }
}

impl<E> Application<E> for ExchangeApp
where
    E: Clock + CryptoRng + Send + 'static,
{
    type SigningScheme = ed25519::Scheme;
    type Context = Ctx;
    type Block = ChainBlock;
    type Input = ();

    async fn propose(
        &mut self,
        (mut runtime, context): (E, Ctx),
        mut ancestry: impl Ancestry<ChainBlock>,
        _input: (),
    ) -> Option<Digested<ChainBlock>> {
        let parent = ancestry.next().await?;
        if self.halted() {
            return None;
        }
        runtime
            .sleep(proposal_pause(
                parent.inner().time().millis(),
                now_ms(&runtime),
                self.config.block_interval_min,
            ))
            .await;
        if self.waiting_for_state_sync() {
            // No state here descends past the gap, and execution cannot close it by itself:
            // answer at once (walking the ancestry would wait on the missing block for good),
            // so the view is nullified now, this leader's nullify moving the others on, not
            // after everyone's leader timeout in every view it leads until the sync.
            return None;
        }
        if !self
            .ensure_state(&mut runtime, &parent, &mut ancestry)
            .await
        {
            return None;
        }
        // Peers' transactions staged for a larger batch verification are admitted now, so the
        // block can carry them (see `gossip.rs`).
        self.shared.admit_staged(&mut runtime);
        let time = BlockTime::from_millis(now_ms(&runtime).max(parent.inner().time().millis()));
        let block = {
            let mut chain = lock(&self.shared.chain);
            let state_hash = chain.state_hash_due(&parent.digest())?;
            let state = chain.state_after(&parent.digest())?;
            let mut prices = lock(&self.feed).prices(time, state);
            if state.oracle_state().is_some() {
                // The oracle sets the index, the exchange marks perpetuals and settles on the
                // index's average: a proposer supplies option marks only.
                let option_marks = prices
                    .marks()
                    .iter()
                    .filter(|m| {
                        state
                            .instrument(m.instrument)
                            .is_some_and(|i| i.is_option())
                    })
                    .copied()
                    .collect();
                prices = PriceInputs::new(Vec::new(), option_marks, Vec::new())
                    .expect("a subset of well-formed inputs");
            }
            let txs = lock(&self.shared.mempool).select(
                &self.config.limits,
                self.config.proposal_bytes_max,
                |signer| state.nonce_last(signer),
                |signer, _| crate::shared::payer_of(state, signer).ok(),
                |account, body| state.cancel_target(account, body),
            );
            let body = ExchangeBlock {
                height: ExchangeHeight::new(parent.height().get() + 1),
                time,
                prices,
                observations: {
                    let mut fresh =
                        lock(&self.shared.observations).fresh(time, self.observation_age_max);
                    fresh.truncate(self.config.limits.observations_max);
                    fresh
                },
                txs,
            };
            ChainBlock::new(
                context,
                parent.digest(),
                state.state_digest(),
                state_hash,
                body,
            )
        };
        // Every transaction comes from the mempool, every observation from the pool: their
        // verdicts travel with them.
        let checked = verdicts::carry_own_proposal(&self.shared.signatures, &mut runtime, &block);
        let digest = block.digest();
        let block = Digested::precomputed(block, digest);
        {
            let mut chain = lock(&self.shared.chain);
            if let Err(error) = chain.extend(&block, &checked) {
                tracing::warn!(%error, "own proposal does not apply; declining to propose");
                return None;
            }
            self.shared.publish_newest(&chain);
        }
        Some(block)
    }

    async fn verify(
        &mut self,
        (mut runtime, _context): (E, Ctx),
        mut ancestry: impl Ancestry<ChainBlock>,
    ) -> bool {
        let Some(candidate) = ancestry.next().await else {
            return false;
        };
        let (shared, leader) = (
            self.shared.clone(),
            candidate.inner().context.leader.clone(),
        );
        let height = candidate.height().get();
        // No vote, with the reason logged and counted against the proposer in `/status` (the
        // key is rendered only here, off the path of blocks that pass).
        let refuse = move |reason: String| {
            let leader = crate::executor::hex(leader.as_ref());
            tracing::warn!(height, %leader, %reason, "rejecting block");
            let mut status = lock(&shared.status);
            status.proposals_refused += 1;
            let named = status.refused.len() < crate::shared::REFUSED_LEADERS_MAX;
            if named || status.refused.contains_key(&leader) {
                let entry = status.refused.entry(leader.clone()).or_default();
                entry.0 += 1;
                entry.1 = reason;
            }
            false
        };
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        if self.waiting_for_state_sync() {
            // A halted node, or one whose execution waits for a state sync, abstains from
            // every vote: it cannot judge the block, and it accuses no one.
            futures::future::pending::<()>().await;
        }
        if candidate.height().get() != parent.height().get() + 1 {
            return refuse("height is not its parent's next".into());
        }
        let view = candidate.inner().context.round.view().get();
        let judged_at = lock(&self.shared.notarizations).lag_judged_at_ms(
            view,
            candidate.inner().time().millis(),
            now_ms(&runtime),
        );
        if let Err(error) = match judged_at {
            Some(now) => block_time_acceptable(
                candidate.inner().time().millis(),
                parent.inner().time().millis(),
                now,
                self.config.time_lag_max.as_millis() as u64,
                self.config.time_ahead_max().as_millis() as u64,
            ),
            // Late: only the order of times is this validator's to judge.
            None => block_time_acceptable(
                candidate.inner().time().millis(),
                parent.inner().time().millis(),
                0,
                u64::MAX,
                u64::MAX,
            ),
        } {
            return refuse(error.to_string());
        }
        if !crate::mempool::cancels_first(&candidate.inner().body.txs) {
            // The proposer held a cancel back behind other signers' orders.
            return refuse("cancels are not first".into());
        }
        let drift = self.config.time_drift_max.as_millis() as u64;
        loop {
            let now = now_ms(&runtime);
            let time = candidate.inner().time().millis();
            if time <= now + drift {
                break;
            }
            // From the future: wait for our clock rather than judge by it.
            runtime
                .sleep(Duration::from_millis(time - now - drift))
                .await;
        }
        let checked =
            verdicts::check_block(&self.shared.signatures, &mut runtime, candidate.inner());
        if !checked.all_signatures_valid() {
            return refuse("a transaction's signature does not verify".into());
        }
        let observations_valid = lock(&self.shared.observations).block_observations_valid(
            &candidate.inner().body.observations,
            checked.observation_verdicts(),
        );
        if !observations_valid {
            return refuse(
                "an observation is badly signed, not a validator's, or a second of one \
                 validator and underlying"
                    .into(),
            );
        }
        loop {
            if !self
                .ensure_state(&mut runtime, &parent, &mut ancestry)
                .await
            {
                return false;
            }
            let result = {
                let mut chain = lock(&self.shared.chain);
                if let Some(state) = chain.state_after(&candidate.inner().parent)
                    && let Err(reason) =
                        crate::mempool::block_payers_valid(state, &candidate.inner().body.txs)
                {
                    drop(chain);
                    return refuse(reason);
                }
                let extended = chain.extend(&candidate, &checked);
                self.shared.publish_newest(&chain);
                extended
            };
            match result {
                Ok(()) => return true,
                Err(ExtendError::UnknownParent(_)) => continue,
                Err(error) => return refuse(error.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_waits_at_most_the_block_interval_and_not_for_a_parent_ahead() {
        let interval = Duration::from_millis(50);
        // The usual case: the parent is just behind the clock; wait out the rest.
        assert_eq!(
            proposal_pause(1_000, 1_020, interval),
            Duration::from_millis(30)
        );
        assert_eq!(proposal_pause(1_000, 1_050, interval), Duration::ZERO);
        assert_eq!(proposal_pause(1_000, 9_000, interval), Duration::ZERO);
        assert_eq!(proposal_pause(1_000, 1_000, interval), interval);
        // A clock 4.5 s behind its parent's (or a parent dated ahead): at once, not 4.5 s.
        assert_eq!(proposal_pause(10_000, 5_500, interval), Duration::ZERO);
        assert_eq!(proposal_pause(1_001, 1_000, interval), Duration::ZERO);
        assert_eq!(proposal_pause(u64::MAX, 0, interval), Duration::ZERO);
    }

    #[test]
    fn a_block_time_may_not_precede_its_parent_nor_lag_the_clock_nor_run_far_ahead() {
        // At the parent's time, at the clock, and up to the lag bound behind it.
        assert_eq!(
            block_time_acceptable(1_000, 1_000, 1_000, 5_000, 1_000),
            Ok(())
        );
        assert_eq!(
            block_time_acceptable(10_000, 1_000, 15_000, 5_000, 1_000),
            Ok(())
        );
        // Ahead of the clock within the bound: the verdict waits for the clock (not here).
        assert_eq!(
            block_time_acceptable(16_000, 1_000, 15_000, 5_000, 1_000),
            Ok(())
        );
        // Further ahead: refused, so the view is nullified at once instead of held.
        assert_eq!(
            block_time_acceptable(16_001, 1_000, 15_000, 5_000, 1_000),
            Err(BlockTimeError::Ahead {
                time_ms: 16_001,
                now_ms: 15_000,
                ahead_max_ms: 1_000
            })
        );
        assert_eq!(
            block_time_acceptable(999, 1_000, 1_000, 5_000, 1_000),
            Err(BlockTimeError::BeforeParent {
                time_ms: 999,
                parent_ms: 1_000
            })
        );
        // A leader holding time back after a stall (keeping old observations fresh).
        assert_eq!(
            block_time_acceptable(9_999, 1_000, 15_000, 5_000, 1_000),
            Err(BlockTimeError::Lagging {
                time_ms: 9_999,
                now_ms: 15_000,
                lag_max_ms: 5_000
            })
        );
        // No overflow at the ends.
        assert_eq!(
            block_time_acceptable(u64::MAX, 0, u64::MAX, u64::MAX, u64::MAX),
            Ok(())
        );
    }

    #[test]
    fn a_late_verification_leaves_the_lag_to_the_views_voters() {
        let mut notarizations = Notarizations::default();
        // Nothing seen of the view (verification as the proposal arrives): the clock decides.
        assert_eq!(notarizations.lag_judged_at_ms(7, 0, 20_000), Some(20_000));
        // Seen notarized before this validator verified, without its vote: late.
        notarizations.record_notarization(7, 18_368);
        notarizations.record_notarization(7, 19_000);
        assert_eq!(notarizations.lag_judged_at_ms(7, 0, 18_378), None);
        // Seen notarized only after the verification's clock: not late.
        assert_eq!(notarizations.lag_judged_at_ms(7, 0, 18_000), Some(18_000));
        // A voter judges at its vote, however late it verifies: the block of 11.3 s that it
        // voted for at 11.34 s passes; a block held back to 6.3 s does not.
        notarizations.record_own_vote(7, 11_340);
        notarizations.record_own_vote(7, 15_139);
        let judged = notarizations.lag_judged_at_ms(7, 0, 18_378).unwrap();
        assert_eq!(judged, 11_340);
        assert!(block_time_acceptable(11_316, 11_300, judged, 5_000, 1_000).is_ok());
        assert!(block_time_acceptable(6_300, 6_000, judged, 5_000, 1_000).is_err());
        // Never later than the clock (a clock that went back after a restart).
        assert_eq!(notarizations.lag_judged_at_ms(7, 0, 10_000), Some(10_000));
        // A vote this validator casts, or replays from its journal after a restart, once it
        // has seen the view notarized is a late one (`sweep-200` seed 154: the block of 1.16 s,
        // notarized before two validators went down, was refused at their restart by their
        // votes of 7.26 and 7.38 s, and the chain stalled).
        let mut late = Notarizations::default();
        late.record_notarization(21, 7_209);
        late.record_own_vote(21, 7_257);
        assert_eq!(late.lag_judged_at_ms(21, 1_158, 7_291), None);
        // A block dated before this validator's engine started is not its to judge: a vote
        // on it replayed from the journal is recorded at the replay (`sweep-200` seed 111:
        // voted at 8.81 s, crashed, the vote replayed at 13.85 s, before the notarization
        // arrived at 14.85 s, and the block of 8.79 s refused). One dated after is.
        let mut restarted = Notarizations::default();
        restarted.record_start(13_830);
        restarted.record_own_vote(72, 13_846);
        restarted.record_notarization(72, 14_848);
        assert_eq!(restarted.lag_judged_at_ms(72, 8_788, 14_858), None);
        assert_eq!(restarted.lag_judged_at_ms(73, 13_900, 14_858), Some(14_858));
        // Bounded: the oldest views are forgotten.
        for view in 100..100 + NOTARIZATIONS_KEPT as u64 {
            notarizations.record_notarization(view, view);
        }
        assert_eq!(notarizations.lag_judged_at_ms(7, 0, 20_000), Some(20_000));
        assert_eq!(notarizations.lag_judged_at_ms(100, 0, 20_000), None);
    }
}
