//! The oracle's replicated parameters: freshness, bounds, outlier rule and deviation guard.
//!
//! Owns: [`OracleConfig`] and [`GuardConfig`], their documented genesis defaults and the checks
//! that relate their fields.
//! Never: changes by itself. Parameters are set in genesis and changed only by a governance
//! transaction; every validator holds the same values, so no field may depend on the machine.
//! Bounds: every count has a hard ceiling below ([`OBSERVATIONS_PER_ASSET_CEILING`],
//! [`ASSETS_CEILING`]), so a bad governance transaction cannot make a block unbounded.

use crate::validators::ValidatorSet;

/// Parts per million: the unit of every fraction in this crate (1% = 10_000 ppm).
pub const PPM: u32 = 1_000_000;

/// Ceiling on [`OracleConfig::observations_per_asset_max`]: four observations for each of
/// the largest validator set's members.
pub const OBSERVATIONS_PER_ASSET_CEILING: u32 = 4 * crate::validators::VALIDATORS_MAX as u32;

/// Ceiling on [`OracleConfig::assets_max`].
pub const ASSETS_CEILING: u32 = 1_024;

/// Why oracle parameters are refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("observation_age_ms_max must be positive")]
    AgeZero,
    #[error("observations_per_asset_max must be between 1 and {OBSERVATIONS_PER_ASSET_CEILING}")]
    ObservationsPerAssetOutOfRange,
    #[error("observations_per_asset_max is below the validator count: quorum could not be met")]
    ObservationsBelowValidators,
    #[error("assets_max must be between 1 and {ASSETS_CEILING}")]
    AssetsOutOfRange,
    #[error("sources_min must be at least 1")]
    SourcesZero,
    #[error("outlier_mad_multiple must be between 1 and 1000")]
    MadMultipleOutOfRange,
    #[error("outlier_floor_ppm must be between 1 and 1_000_000")]
    OutlierFloorOutOfRange,
    #[error("guard: move_ppm_per_block must be positive and at most move_ppm_max")]
    GuardBlockMoveOutOfRange,
    #[error("guard: move_ppm_max must be below 1_000_000 (a price may not be clamped to zero)")]
    GuardMoveMaxOutOfRange,
}

/// How the state machine turns a block's observations into index prices. Replicated: set in
/// genesis, changed only by governance. No `Default`: [`OracleConfig::GENESIS`] holds the
/// documented defaults, and [`OracleConfig::check`] refuses inconsistent values.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OracleConfig {
    /// Oldest observation that counts, in milliseconds before the block's time.
    /// Genesis default: 5_000 (five rounds of a one-second observation cadence, so a validator
    /// may miss four and still count).
    pub observation_age_ms_max: u64,
    /// Newest observation that counts, in milliseconds after the block's time: validators'
    /// clocks and the leader's disagree a little. Genesis default: 1_000.
    pub observation_lead_ms_max: u64,
    /// Most observations of one asset that one block may carry; those beyond are dropped
    /// unread. Must be at least the validator count. Genesis default: 256.
    pub observations_per_asset_max: u32,
    /// Most assets the oracle tracks. Genesis default: 64.
    pub assets_max: u32,
    /// Fewest sources an observation must have combined. Genesis default: 1.
    pub sources_min: u8,
    /// An accepted observation is an outlier when its distance from the median exceeds this
    /// many median absolute deviations (and the floor below). Genesis default: 5 (about 3.4
    /// standard deviations of normal noise, since MAD ~ 0.674 sigma).
    pub outlier_mad_multiple: u32,
    /// Smallest outlier distance, in ppm of the median, so that a zero MAD (most validators
    /// agreeing to the micro) does not flag every other one. Genesis default: 5_000 (0.5%).
    pub outlier_floor_ppm: u32,
    /// The deviation guard between the median and the index the exchange uses.
    pub guard: GuardConfig,
}

/// The deviation guard, in the manner of Mango's stable price: the index the exchange uses
/// follows the median at once when it moves a little, and at a bounded rate when it moves a
/// lot, so a one-block spike cannot liquidate anyone and a sustained move is still followed.
///
/// The most the guarded index may move in one block, as a fraction of its previous value, is
/// `min(move_ppm_max, move_ppm_per_block + move_ppm_per_s * seconds since its last update)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// Move allowed in any block, however soon after the last, in ppm. Genesis default:
    /// 10_000 (1%: at one-second blocks, BTC's busiest minutes rarely move more per second).
    pub move_ppm_per_block: u32,
    /// Move allowed per second elapsed since the last update, in ppm, on top of the above.
    /// Genesis default: 5_000 (0.5%/s: a 30% crash is followed within about 25 s).
    pub move_ppm_per_s: u32,
    /// Most one block may move, however long since the last update (a stale oracle that
    /// recovers is still clamped), in ppm; below 1_000_000. Genesis default: 50_000 (5%).
    pub move_ppm_max: u32,
}

impl GuardConfig {
    /// Genesis defaults; see each field.
    pub const GENESIS: Self = Self {
        move_ppm_per_block: 10_000,
        move_ppm_per_s: 5_000,
        move_ppm_max: 50_000,
    };

    pub fn check(&self) -> Result<(), ConfigError> {
        if self.move_ppm_max >= PPM {
            return Err(ConfigError::GuardMoveMaxOutOfRange);
        }
        if self.move_ppm_per_block == 0 || self.move_ppm_per_block > self.move_ppm_max {
            return Err(ConfigError::GuardBlockMoveOutOfRange);
        }
        Ok(())
    }
}

impl OracleConfig {
    /// Genesis defaults; see each field.
    pub const GENESIS: Self = Self {
        observation_age_ms_max: 5_000,
        observation_lead_ms_max: 1_000,
        observations_per_asset_max: 256,
        assets_max: 64,
        sources_min: 1,
        outlier_mad_multiple: 5,
        outlier_floor_ppm: 5_000,
        guard: GuardConfig::GENESIS,
    };

    /// Checks the fields and the relations between them.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.observation_age_ms_max == 0 {
            return Err(ConfigError::AgeZero);
        }
        if self.observations_per_asset_max == 0
            || self.observations_per_asset_max > OBSERVATIONS_PER_ASSET_CEILING
        {
            return Err(ConfigError::ObservationsPerAssetOutOfRange);
        }
        if self.assets_max == 0 || self.assets_max > ASSETS_CEILING {
            return Err(ConfigError::AssetsOutOfRange);
        }
        if self.sources_min == 0 {
            return Err(ConfigError::SourcesZero);
        }
        if self.outlier_mad_multiple == 0 || self.outlier_mad_multiple > 1_000 {
            return Err(ConfigError::MadMultipleOutOfRange);
        }
        if self.outlier_floor_ppm == 0 || self.outlier_floor_ppm > PPM {
            return Err(ConfigError::OutlierFloorOutOfRange);
        }
        self.guard.check()
    }

    /// [`Self::check`], and that a block can carry an observation from every validator.
    pub fn check_for(&self, validators: &ValidatorSet) -> Result<(), ConfigError> {
        self.check()?;
        if (self.observations_per_asset_max as usize) < validators.len() {
            return Err(ConfigError::ObservationsBelowValidators);
        }
        Ok(())
    }

    /// Most observations one block may carry: the bound for decoding a block's list.
    pub fn observations_per_block_max(&self) -> usize {
        self.observations_per_asset_max as usize * self.assets_max as usize
    }
}

// The largest block list the ceilings allow stays addressable and below 512 MiB of encoding.
const _: () = assert!(
    OBSERVATIONS_PER_ASSET_CEILING as usize
        * ASSETS_CEILING as usize
        * crate::observation::SIGNED_OBSERVATION_BYTES_MAX
        < 1 << 29
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_defaults_pass_their_checks() {
        assert_eq!(OracleConfig::GENESIS.check(), Ok(()));
        assert_eq!(GuardConfig::GENESIS.check(), Ok(()));
        assert_eq!(OracleConfig::GENESIS.observations_per_block_max(), 16_384);
    }

    #[test]
    fn check_refuses_each_bad_field() {
        let base = OracleConfig::GENESIS;
        let cases: [(OracleConfig, ConfigError); 8] = [
            (
                OracleConfig {
                    observation_age_ms_max: 0,
                    ..base
                },
                ConfigError::AgeZero,
            ),
            (
                OracleConfig {
                    observations_per_asset_max: 0,
                    ..base
                },
                ConfigError::ObservationsPerAssetOutOfRange,
            ),
            (
                OracleConfig {
                    assets_max: ASSETS_CEILING + 1,
                    ..base
                },
                ConfigError::AssetsOutOfRange,
            ),
            (
                OracleConfig {
                    sources_min: 0,
                    ..base
                },
                ConfigError::SourcesZero,
            ),
            (
                OracleConfig {
                    outlier_mad_multiple: 0,
                    ..base
                },
                ConfigError::MadMultipleOutOfRange,
            ),
            (
                OracleConfig {
                    outlier_floor_ppm: 0,
                    ..base
                },
                ConfigError::OutlierFloorOutOfRange,
            ),
            (
                OracleConfig {
                    guard: GuardConfig {
                        move_ppm_max: PPM,
                        ..GuardConfig::GENESIS
                    },
                    ..base
                },
                ConfigError::GuardMoveMaxOutOfRange,
            ),
            (
                OracleConfig {
                    guard: GuardConfig {
                        move_ppm_per_block: 60_000,
                        ..GuardConfig::GENESIS
                    },
                    ..base
                },
                ConfigError::GuardBlockMoveOutOfRange,
            ),
        ];
        for (config, error) in cases {
            assert_eq!(config.check(), Err(error));
        }
    }
}
