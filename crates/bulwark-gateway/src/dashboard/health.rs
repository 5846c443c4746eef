//! The cluster's health as each validator reports it: a background task reads every
//! validator's `GET /status` once a second and keeps the newest answer.
//!
//! Trust: a validator's status is its own word. The dashboard shows it as such and checks the
//! one claim it can: the state digest a validator reports at a height is compared with the
//! digest this gateway computed itself from the proven block at that height.
//!
//! Owns: one report per configured validator (a fixed number). Never: fans a page request out
//! to the validators (pages read the cached reports, so page load cannot be turned into load
//! on the validators); keeps a status body larger than [`STATUS_BYTES_MAX`].

use crate::source::HttpValidator;
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Largest `/status` body read from a validator.
pub const STATUS_BYTES_MAX: usize = 64 * 1024;
/// How often each validator's status is read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// One validator's newest status answer.
#[derive(Clone, Debug, Default)]
pub struct ValidatorReport {
    /// The validator's API base URL.
    pub url: String,
    /// Its newest `/status` answer, if any.
    pub status: Option<Value>,
    /// Why the last read failed, if it did.
    pub error: Option<String>,
    /// When the status was last read successfully, ms since the epoch.
    pub read_at_ms: Option<u64>,
    /// The newest (finalized height, state digest) pairs it reported, oldest first, at most
    /// [`DIGESTS_KEPT`]: the gateway, a block or two behind, checks the newest it has reached.
    pub digests: std::collections::VecDeque<(u64, String)>,
}

/// Reported (height, digest) pairs kept per validator.
pub const DIGESTS_KEPT: usize = 16;

/// Every validator's newest report.
#[derive(Default)]
pub struct ClusterHealth {
    reports: Mutex<Vec<ValidatorReport>>,
}

impl ClusterHealth {
    pub fn new(urls: impl IntoIterator<Item = String>) -> Self {
        Self {
            reports: Mutex::new(
                urls.into_iter()
                    .map(|url| ValidatorReport {
                        url,
                        ..ValidatorReport::default()
                    })
                    .collect(),
            ),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<ValidatorReport>> {
        self.reports
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of every report.
    pub fn reports(&self) -> Vec<ValidatorReport> {
        self.lock().clone()
    }

    fn update(&self, index: usize, outcome: Result<Value, String>, now_ms: u64) {
        let mut reports = self.lock();
        let Some(report) = reports.get_mut(index) else {
            return;
        };
        match outcome {
            Ok(status) => {
                if let (Some(height), Some(digest)) = (
                    status["finalized_height"].as_u64(),
                    status["state_digest"].as_str(),
                ) && report.digests.back().is_none_or(|(h, _)| *h < height)
                {
                    if report.digests.len() == DIGESTS_KEPT {
                        report.digests.pop_front();
                    }
                    report.digests.push_back((height, digest.to_string()));
                }
                report.status = Some(status);
                report.error = None;
                report.read_at_ms = Some(now_ms);
            }
            Err(error) => report.error = Some(error),
        }
    }
}

/// Reads every validator's status each [`POLL_INTERVAL`], for ever (one request per validator
/// at a time; a slow one holds up only itself).
pub async fn poll(health: Arc<ClusterHealth>, validators: Vec<HttpValidator>) {
    let tasks = validators
        .into_iter()
        .enumerate()
        .map(|(index, validator)| {
            let health = health.clone();
            async move {
                let mut ticker = tokio::time::interval(POLL_INTERVAL);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticker.tick().await;
                    let outcome = validator
                        .status(STATUS_BYTES_MAX)
                        .await
                        .map_err(|e| e.to_string());
                    health.update(index, outcome, crate::gateway::now_ms());
                }
            }
        });
    futures::future::join_all(tasks).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_read_keeps_the_last_status_and_says_why() {
        let health = ClusterHealth::new(["http://a".to_string(), "http://b".to_string()]);
        health.update(0, Ok(serde_json::json!({"finalized_height": 7})), 100);
        health.update(0, Err("connection refused".into()), 200);
        health.update(5, Ok(Value::Null), 300); // no such validator: ignored
        for height in 1..=40 {
            let status = serde_json::json!({"finalized_height": height, "state_digest": "d"});
            health.update(1, Ok(status.clone()), 400);
            health.update(1, Ok(status), 400); // the same height again: kept once
        }
        let reports = health.reports();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1].digests.len(), DIGESTS_KEPT);
        assert_eq!(
            reports[1].digests.front().unwrap().0,
            40 - DIGESTS_KEPT as u64 + 1
        );
        assert_eq!(reports[0].status.as_ref().unwrap()["finalized_height"], 7);
        assert_eq!(reports[0].error.as_deref(), Some("connection refused"));
        assert_eq!(reports[0].read_at_ms, Some(100));
        assert!(reports[0].digests.is_empty(), "no height reported");
    }
}
