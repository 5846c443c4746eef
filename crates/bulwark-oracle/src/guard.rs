//! The deviation guard: the index the exchange uses follows the raw median at once when it
//! moves a little and at a bounded rate when it moves a lot.
//!
//! Owns: one asset's guarded index, carried from block to block, and the rule
//! `allowed move = min(move_ppm_max, move_ppm_per_block + move_ppm_per_s * elapsed s)` of the
//! previous guarded index (see [`GuardConfig`]). A raw index inside the allowed move is
//! followed exactly; one outside is clamped to its edge and flagged. Like Mango's stable
//! price, a one-block spike moves the index by at most `move_ppm_max`, while a sustained move
//! is followed: every clamped block moves the index at least `move_ppm_per_block` of its value
//! (and at least one micro) toward the raw price, so it reaches any constant raw price in
//! finitely many blocks.
//! Never: floats, or a guarded index that is zero or negative (`move_ppm_max < 1_000_000`).
//! Bounds: O(1) per block; all products in 128 bits.

use crate::config::{GuardConfig, PPM};
use bulwark_types::{BlockTime, UnitPrice};
use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, ReadExt, Write};

/// What the guard did with a block's raw index.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum GuardVerdict {
    /// The first index: taken as is (the 2f + 1 median is all there is to trust).
    Initial,
    /// Within the allowed move: the guarded index equals the raw index.
    Followed,
    /// Beyond it: the guarded index moved the allowed amount toward the raw index.
    Clamped {
        raw: UnitPrice,
        /// Consecutive clamped blocks, this one included: a sustained move's length so far.
        streak: u32,
    },
}

/// A guarded index after a block.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GuardStep {
    pub index: UnitPrice,
    pub verdict: GuardVerdict,
}

/// The guarded index of one asset; `None` until the first raw index arrives.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviationGuard {
    state: Option<GuardState>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct GuardState {
    index: UnitPrice,
    updated_at_ms: u64,
    clamped_streak: u32,
}

impl DeviationGuard {
    pub const fn new() -> Self {
        Self { state: None }
    }

    /// The guarded index, if any raw index has arrived.
    pub fn index(&self) -> Option<UnitPrice> {
        self.state.map(|s| s.index)
    }

    /// Block time (ms) of the last update, if any.
    pub fn updated_at_ms(&self) -> Option<u64> {
        self.state.map(|s| s.updated_at_ms)
    }

    /// Takes a block's raw index (the median). `raw` must be positive (medians of accepted
    /// observations are). Block time never goes backwards along the chain; if it did, the
    /// elapsed time counts as zero.
    pub fn step(
        &mut self,
        config: &GuardConfig,
        raw: UnitPrice,
        block_time: BlockTime,
    ) -> GuardStep {
        assert!(
            raw.is_positive(),
            "raw index is a median of positive prices"
        );
        let now_ms = block_time.millis();
        let Some(previous) = self.state else {
            self.state = Some(GuardState {
                index: raw,
                updated_at_ms: now_ms,
                clamped_streak: 0,
            });
            return GuardStep {
                index: raw,
                verdict: GuardVerdict::Initial,
            };
        };
        let elapsed_ms = now_ms.saturating_sub(previous.updated_at_ms);
        let move_max = move_max_micros(config, previous.index, elapsed_ms);
        let prev = previous.index.micros();
        let (index, verdict) = if raw.micros().abs_diff(prev) <= move_max {
            (raw, GuardVerdict::Followed)
        } else {
            let step = i64::try_from(move_max).expect("at most move_ppm_max of an i64 price");
            // Up: prev + step < raw, so it fits. Down: stop at one micro, never at zero.
            let index = if raw.micros() > prev {
                prev + step
            } else {
                (prev - step).max(1)
            };
            let streak = previous.clamped_streak.saturating_add(1);
            (
                UnitPrice::from_micros(index),
                GuardVerdict::Clamped { raw, streak },
            )
        };
        assert!(
            index.is_positive(),
            "move_ppm_max < 100% keeps the index positive"
        );
        assert!(
            index.micros().abs_diff(prev) <= move_max,
            "never beyond the allowed move"
        );
        self.state = Some(GuardState {
            index,
            updated_at_ms: now_ms,
            clamped_streak: match verdict {
                GuardVerdict::Clamped { streak, .. } => streak,
                _ => 0,
            },
        });
        GuardStep { index, verdict }
    }
}

/// The allowed move from `previous` after `elapsed_ms`, in micro-USDC, rounded down but at
/// least one micro (so a tiny price still follows).
fn move_max_micros(config: &GuardConfig, previous: UnitPrice, elapsed_ms: u64) -> u64 {
    let by_time = u128::from(config.move_ppm_per_s) * u128::from(elapsed_ms) / 1_000;
    let ppm =
        (u128::from(config.move_ppm_per_block) + by_time).min(u128::from(config.move_ppm_max));
    let previous = u128::try_from(previous.micros()).expect("positive");
    let micros = (previous * ppm / u128::from(PPM)).max(1);
    u64::try_from(micros).expect("at most an i64 price")
}

// ---- codec (the guard is replicated state and goes into snapshots) ----

impl Write for DeviationGuard {
    fn write(&self, buf: &mut impl BufMut) {
        // A price of zero stands for "no index yet": guarded indices are always positive.
        match self.state {
            None => {
                UnitPrice::ZERO.write(buf);
                0u64.write(buf);
                0u32.write(buf);
            }
            Some(s) => {
                s.index.write(buf);
                s.updated_at_ms.write(buf);
                s.clamped_streak.write(buf);
            }
        }
    }
}

impl FixedSize for DeviationGuard {
    const SIZE: usize = UnitPrice::SIZE + u64::SIZE + u32::SIZE;
}

impl Read for DeviationGuard {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let index = UnitPrice::read(buf)?;
        let updated_at_ms = u64::read(buf)?;
        let clamped_streak = u32::read(buf)?;
        if index == UnitPrice::ZERO {
            if updated_at_ms != 0 || clamped_streak != 0 {
                return Err(CodecError::Invalid(
                    "DeviationGuard",
                    "empty guard with fields",
                ));
            }
            return Ok(Self::new());
        }
        if !index.is_positive() {
            return Err(CodecError::Invalid("DeviationGuard", "negative index"));
        }
        Ok(Self {
            state: Some(GuardState {
                index,
                updated_at_ms,
                clamped_streak,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Copying, DecodeExt, Encode};

    const P: i64 = 100_000_000_000; // 100,000 USDC

    fn at(ms: u64) -> BlockTime {
        BlockTime::from_millis(ms)
    }

    fn price(micros: i64) -> UnitPrice {
        UnitPrice::from_micros(micros)
    }

    #[test]
    fn first_index_is_taken_and_small_moves_followed() {
        let config = GuardConfig::GENESIS;
        let mut guard = DeviationGuard::new();
        assert_eq!(
            guard.step(&config, price(P), at(0)).verdict,
            GuardVerdict::Initial
        );
        // 1.5% after one second: 1% per block + 0.5%/s allows exactly this.
        let step = guard.step(&config, price(P * 1015 / 1000), at(1_000));
        assert_eq!(
            step,
            GuardStep {
                index: price(P * 1015 / 1000),
                verdict: GuardVerdict::Followed
            }
        );
    }

    #[test]
    fn one_block_spike_is_bounded_and_undone() {
        let config = GuardConfig::GENESIS;
        let mut guard = DeviationGuard::new();
        guard.step(&config, price(P), at(0));
        // A tenfold print one second later moves the index 1.5%, flagged.
        let spike = guard.step(&config, price(P * 10), at(1_000));
        assert_eq!(spike.index, price(P + P * 15 / 1000));
        assert_eq!(
            spike.verdict,
            GuardVerdict::Clamped {
                raw: price(P * 10),
                streak: 1
            }
        );
        // The print goes away: the index returns to the raw price the next block.
        let back = guard.step(&config, price(P), at(2_000));
        assert_eq!(
            back,
            GuardStep {
                index: price(P),
                verdict: GuardVerdict::Followed
            }
        );
    }

    #[test]
    fn spike_after_a_long_stall_is_still_capped() {
        let config = GuardConfig::GENESIS;
        let mut guard = DeviationGuard::new();
        guard.step(&config, price(P), at(0));
        let step = guard.step(&config, price(1), at(3_600_000));
        assert_eq!(
            step.index,
            price(P - P * 5 / 100),
            "move_ppm_max caps a block at 5%"
        );
    }

    #[test]
    fn sustained_crash_is_followed_within_bounded_blocks() {
        let config = GuardConfig::GENESIS;
        let mut guard = DeviationGuard::new();
        guard.step(&config, price(P), at(0));
        let target = price(P * 70 / 100);
        let mut blocks = 0u32;
        let mut previous = P;
        loop {
            blocks += 1;
            let step = guard.step(&config, target, at(u64::from(blocks) * 1_000));
            // Monotone toward the target, never past it, never more than 1.5% a block.
            assert!(step.index.micros() < previous && step.index >= target);
            assert!((previous - step.index.micros()) as u128 * 1_000 <= previous as u128 * 15);
            previous = step.index.micros();
            if step.verdict == GuardVerdict::Followed {
                break;
            }
            assert_eq!(
                step.verdict,
                GuardVerdict::Clamped {
                    raw: target,
                    streak: blocks
                }
            );
        }
        // ln(0.7) / ln(0.985) = 23.6: the 24th block reaches 70%.
        assert_eq!(blocks, 24);
        assert_eq!(guard.index(), Some(target));
    }

    #[test]
    fn fast_blocks_move_less_per_block_than_slow_ones() {
        let config = GuardConfig::GENESIS;
        let mut fast = DeviationGuard::new();
        let mut slow = DeviationGuard::new();
        fast.step(&config, price(P), at(0));
        slow.step(&config, price(P), at(0));
        let fast_step = fast.step(&config, price(2 * P), at(100));
        let slow_step = slow.step(&config, price(2 * P), at(4_000));
        assert_eq!(fast_step.index, price(P + P * 1_050 / 100_000)); // 1% + 0.05%
        assert_eq!(slow_step.index, price(P + P * 3 / 100)); // 1% + 2%
    }

    #[test]
    fn tiny_prices_still_move_and_stay_positive() {
        let config = GuardConfig::GENESIS;
        let mut guard = DeviationGuard::new();
        guard.step(&config, price(2), at(0));
        assert_eq!(guard.step(&config, price(1_000), at(1)).index, price(3));
        let mut low = DeviationGuard::new();
        low.step(&config, price(1), at(0));
        assert_eq!(low.step(&config, price(1), at(1)).index, price(1));
        assert_eq!(low.step(&config, price(5), at(2)).index, price(2));
    }

    #[test]
    fn guard_round_trips_and_refuses_inconsistent_bytes() {
        let config = GuardConfig::GENESIS;
        let mut guard = DeviationGuard::new();
        assert_eq!(DeviationGuard::decode(guard.encode()).unwrap(), guard);
        guard.step(&config, price(P), at(5));
        guard.step(&config, price(2 * P), at(6));
        assert_eq!(DeviationGuard::decode(guard.encode()).unwrap(), guard);
        let mut bad = DeviationGuard::new().encode().to_vec();
        bad[15] = 1; // an empty guard with a time
        assert!(DeviationGuard::decode(Copying(&bad)).is_err());
        let mut negative = guard.encode().to_vec();
        negative[0] = 0x80;
        assert!(DeviationGuard::decode(Copying(&negative)).is_err());
    }
}
