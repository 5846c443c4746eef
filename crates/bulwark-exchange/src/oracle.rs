//! The index prices of an exchange whose validators run the oracle: each block's signed
//! observations, aggregated by `bulwark-oracle` (median of at least `2f + 1` distinct
//! validators, then the deviation guard), set the index; when an underlying has no quorum the
//! oracle is stale and its instruments degrade.
//!
//! Owns: the oracle's place in the state machine: its genesis (the observing validators and
//! the oracle configuration), its replicated state, the events it raises, and what a stale
//! oracle means for trading: orders that add risk are refused (`RejectReason::OracleStale`),
//! orders that reduce a position and cancels always work, funding is not paid. Everything
//! recovers by itself with the next quorum.
//! Never: trusts the proposer with an index price (the block's `PriceInputs` index entries
//! are ignored with `PriceIgnoredReason::OracleGoverned`), or verifies signatures itself (the
//! block's verdicts come checked).
//!
//! An exchange without an oracle genesis takes index prices from the block's price inputs:
//! a single operator's trusted feed (tests, benchmarks, replays).

use crate::event::Event;
use crate::exchange::Exchange;
use bulwark_oracle::{GuardVerdict, OracleConfig, OracleMode, OracleState, ValidatorSet};
use bulwark_types::{AssetCode, CheckedBlock, PublicKey};

/// Who observes prices, and how observations become an index. Part of the genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OracleGenesis {
    /// The validators whose signed observations count, each once.
    pub validators: Vec<PublicKey>,
    pub config: OracleConfig,
}

/// The oracle's part of the replicated state.
#[derive(Clone, Debug)]
pub(crate) struct Oracle {
    pub(crate) validators: ValidatorSet,
    pub(crate) config: OracleConfig,
    pub(crate) state: OracleState,
}

impl Oracle {
    pub(crate) fn new(genesis: &OracleGenesis) -> Result<Self, &'static str> {
        let validators = ValidatorSet::new(genesis.validators.clone())
            .map_err(|_| "oracle validator set invalid")?;
        genesis
            .config
            .check_for(&validators)
            .map_err(|_| "oracle configuration invalid for its validator set")?;
        Ok(Self {
            validators,
            config: genesis.config,
            state: OracleState::default(),
        })
    }
}

impl Exchange {
    /// Runs the block's observations through the oracle and takes the resulting indices.
    pub(crate) fn apply_oracle(&mut self, checked: &CheckedBlock, events: &mut Vec<Event>) {
        let Some(oracle) = self.oracle.as_mut() else {
            return;
        };
        let block = checked.block();
        let outcome = oracle.state.apply_block(
            &oracle.config,
            &oracle.validators,
            block.time,
            &block.observations,
            checked.observation_verdicts(),
        );
        for asset in outcome.assets {
            let code = asset.aggregate.asset;
            if let Some(step) = asset.guard {
                if let GuardVerdict::Clamped { raw, .. } = step.verdict {
                    events.push(Event::IndexClamped {
                        asset: code,
                        raw,
                        applied: step.index,
                    });
                }
                self.set_index(code, step.index);
            }
            if asset.mode_changed {
                events.push(Event::OracleModeChanged {
                    asset: code,
                    fresh: asset.mode == OracleMode::Fresh,
                });
            }
        }
    }

    /// Starts tracking an underlying when its first instrument is listed.
    pub(crate) fn oracle_track(
        &mut self,
        asset: AssetCode,
    ) -> Result<(), bulwark_types::RejectReason> {
        match self.oracle.as_mut() {
            None => Ok(()),
            Some(oracle) => oracle
                .state
                .track(&oracle.config, asset)
                .map_err(|_| bulwark_types::RejectReason::InstrumentLimit),
        }
    }

    /// Whether `asset`'s index may be trusted for trades that add risk: always, without an
    /// oracle; with one, while the last block carried a quorum of fresh observations.
    pub fn oracle_fresh(&self, asset: AssetCode) -> bool {
        match &self.oracle {
            None => true,
            Some(oracle) => oracle
                .state
                .asset(&asset)
                .is_some_and(|a| a.mode() == OracleMode::Fresh),
        }
    }

    /// Whether `asset`'s index is the validators' last median, not a value the deviation
    /// guard is moving toward it at a bounded rate (always, without an oracle).
    pub fn index_settled(&self, asset: AssetCode) -> bool {
        match &self.oracle {
            None => true,
            Some(oracle) => oracle
                .state
                .asset(&asset)
                .is_some_and(|a| a.index().is_some() && a.index() == a.raw()),
        }
    }

    /// Whether every price in `asset`'s last median was observed after `time_ms` (always,
    /// without an oracle: the block's feed is the price).
    pub fn index_observed_after(&self, asset: AssetCode, time_ms: u64) -> bool {
        match &self.oracle {
            None => true,
            Some(oracle) => oracle
                .state
                .asset(&asset)
                .and_then(|a| a.observed_since_ms())
                .is_some_and(|since| since > time_ms),
        }
    }

    /// The oracle's state (per-asset index, mode and the per-validator record), if this
    /// exchange runs one.
    pub fn oracle_state(&self) -> Option<&OracleState> {
        self.oracle.as_ref().map(|o| &o.state)
    }

    /// The oracle's rules (quorum, freshness, guard), if this exchange runs one.
    pub fn oracle_config(&self) -> Option<&OracleConfig> {
        self.oracle.as_ref().map(|o| &o.config)
    }

    /// The observing validators, if this exchange runs an oracle.
    pub fn oracle_validators(&self) -> Option<&ValidatorSet> {
        self.oracle.as_ref().map(|o| &o.validators)
    }
}
