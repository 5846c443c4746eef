//! Time series of a run, for the HTML report: what the lab read from the finalized state every
//! [`SAMPLE_MS`] of simulated time.
//!
//! Owns: the samples and their bound. Never: reads the cluster (the lab hands it each sample).
//! Bounds: at most [`SAMPLES_MAX`] samples. A run that outgrows them keeps every second one
//! and samples half as often from then on (cumulative figures stay exact; each kept sample's
//! latency window absorbs the dropped one's), so a long run is drawn at a coarser step.

use serde::Serialize;

/// How often the lab samples, in simulated milliseconds, until a long run coarsens it.
pub const SAMPLE_MS: u64 = 100;
/// Most samples kept.
pub const SAMPLES_MAX: usize = 4_096;
/// Most assets whose index a sample records.
pub const ASSETS_MAX: usize = 8;

/// An asset's index price on the finalized state, against the honest price (the price source
/// every validator observes, without their observation noise) at the same time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PricePoint {
    pub asset: String,
    /// Micro-USDC; `None` before the chain has an index for it.
    pub index_micros: Option<i64>,
    /// Micro-USDC; `None` when the source has no price.
    pub honest_micros: Option<i64>,
}

/// What the lab read at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Simulated milliseconds since the run began.
    pub at_ms: u64,
    /// The highest height any checked validator had executed.
    pub height: u64,
    /// Transactions executed, by the validator furthest ahead (cumulative since it started).
    pub transactions: u64,
    /// Liquidation steps executed, by the validator furthest ahead (cumulative since it
    /// started).
    pub liquidations: u64,
    /// The insurance fund on that validator's finalized state, micro-USDC.
    pub insurance_fund_micros: i64,
    /// Each listed instrument's underlying (at most [`ASSETS_MAX`]).
    pub prices: Vec<PricePoint>,
    /// Submissions seen finalized since the previous sample: how many, their summed and
    /// largest submission-to-finalized latency (ms).
    pub latency_count: u64,
    pub latency_sum_ms: u64,
    pub latency_max_ms: u64,
}

/// The samples of one run, bounded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Series {
    /// Simulated milliseconds between samples (doubles each time the series is thinned).
    pub step_ms: u64,
    pub samples: Vec<Sample>,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            step_ms: SAMPLE_MS,
            samples: Vec::new(),
        }
    }
}

impl Series {
    /// When the next sample is due.
    pub fn next_due_ms(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.at_ms + self.step_ms)
    }

    /// Appends `sample`, thinning the series first if it is full.
    pub fn push(&mut self, sample: Sample) {
        debug_assert!(
            self.samples.last().is_none_or(|s| s.at_ms <= sample.at_ms),
            "samples in time order"
        );
        if self.samples.len() >= SAMPLES_MAX {
            self.thin();
        }
        self.samples.push(sample);
        assert!(self.samples.len() <= SAMPLES_MAX);
    }

    /// Keeps every second sample (the odd ones, each absorbing the latency window of the one
    /// before it) and doubles the step.
    fn thin(&mut self) {
        let old = std::mem::take(&mut self.samples);
        let mut pending: Option<Sample> = None;
        for sample in old {
            match pending.take() {
                None => pending = Some(sample),
                Some(before) => {
                    let mut kept = sample;
                    kept.latency_count += before.latency_count;
                    kept.latency_sum_ms += before.latency_sum_ms;
                    kept.latency_max_ms = kept.latency_max_ms.max(before.latency_max_ms);
                    self.samples.push(kept);
                }
            }
        }
        if let Some(last) = pending {
            self.samples.push(last);
        }
        self.step_ms *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64) -> Sample {
        Sample {
            at_ms,
            height: at_ms / 50,
            transactions: at_ms,
            liquidations: 0,
            insurance_fund_micros: 0,
            prices: Vec::new(),
            latency_count: 1,
            latency_sum_ms: 100,
            latency_max_ms: at_ms % 7,
        }
    }

    #[test]
    fn a_long_series_thins_itself_and_keeps_every_latency() {
        let mut series = Series::default();
        let total = SAMPLES_MAX as u64 * 3;
        for i in 0..total {
            series.push(sample(i * SAMPLE_MS));
        }
        assert!(series.samples.len() <= SAMPLES_MAX);
        assert!(series.step_ms > SAMPLE_MS);
        let counted: u64 = series.samples.iter().map(|s| s.latency_count).sum();
        assert_eq!(counted, total);
        assert_eq!(
            series.samples.last().expect("kept").at_ms,
            (total - 1) * SAMPLE_MS
        );
        assert!(series.samples.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        let last = series.samples.last().expect("kept").at_ms;
        assert_eq!(series.next_due_ms(), last + series.step_ms);
    }
}
