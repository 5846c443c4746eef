//! `/metrics`: the runtime's metrics (Commonware's registry: consensus, p2p, storage, tasks)
//! followed by this node's gauges and the API's counters, in OpenMetrics text.

use super::Counters;
use super::admission::AdmissionCounters;
use crate::shared::{Shared, lock};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// Appends one metric family with a single sample. Counters get the `_total` suffix.
fn family(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let sample = if kind == "counter" {
        format!("{name}_total")
    } else {
        name.to_string()
    };
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{sample} {value}\n"
    );
}

/// The runtime's text with the node's families inserted before its `# EOF` terminator.
pub fn encode(
    runtime: &str,
    shared: &Shared,
    counters: &Counters,
    admission: &AdmissionCounters,
) -> String {
    let mempool_bytes = lock(&shared.mempool).bytes() as u64;
    let status = lock(&shared.status).clone();
    let mut out = String::with_capacity(runtime.len() + 2_048);
    out.push_str(
        runtime
            .trim_end()
            .strip_suffix("# EOF")
            .unwrap_or(runtime)
            .trim_end(),
    );
    if !out.is_empty() {
        out.push('\n');
    }
    let node: [(&str, &str, &str, u64); 15] = [
        (
            "bulwark_finalized_height",
            "gauge",
            "Height of the last block this node executed",
            status.finalized_height,
        ),
        (
            "bulwark_tip_height",
            "gauge",
            "Highest finalized height consensus reported",
            status.tip_height,
        ),
        (
            "bulwark_consensus_view",
            "gauge",
            "Highest view consensus certified",
            status.consensus_view,
        ),
        (
            "bulwark_views_skipped",
            "counter",
            "Views skipped by a nullification",
            status.views_skipped,
        ),
        (
            "bulwark_faults_observed",
            "counter",
            "Evidence of Byzantine behaviour seen from peers",
            status.faults_observed,
        ),
        (
            "bulwark_mempool_txs",
            "gauge",
            "Transactions waiting in the mempool",
            status.mempool_txs as u64,
        ),
        (
            "bulwark_mempool_bytes",
            "gauge",
            "Encoded bytes waiting in the mempool",
            mempool_bytes,
        ),
        (
            "bulwark_transactions_executed",
            "counter",
            "Transactions executed in finalized blocks",
            status.transactions_executed,
        ),
        (
            "bulwark_blocks_kept",
            "counter",
            "Finalized blocks whose speculative state was kept (not executed again)",
            status.blocks_kept,
        ),
        (
            "bulwark_blocks_executed_at_finalization",
            "counter",
            "Finalized blocks executed at finalization (not speculated here, or forgotten)",
            status.blocks_executed,
        ),
        (
            "bulwark_blocks_finalized_on_certificate",
            "counter",
            "Finalized blocks finalized on consensus's certificate, before marshal delivered them",
            status.blocks_finalized_on_certificate,
        ),
        (
            "bulwark_trades_executed",
            "counter",
            "Trades executed in finalized blocks",
            status.trades_executed,
        ),
        (
            "bulwark_runtime_sync_attempts",
            "counter",
            "State syncs started while running (execution stalled far behind consensus)",
            status.runtime_sync_attempts,
        ),
        (
            "bulwark_runtime_syncs",
            "counter",
            "Verified snapshots installed while running",
            status.runtime_syncs,
        ),
        (
            "bulwark_halted",
            "gauge",
            "1 if this node halted (divergence or fatal error)",
            u64::from(status.halted.is_some()),
        ),
    ];
    for (name, kind, help, value) in node {
        family(&mut out, name, kind, help, value);
    }
    let api: [(&str, &str, &AtomicU64Ref); 7] = [
        (
            "bulwark_api_requests",
            "Requests the API received",
            &counters.requests,
        ),
        (
            "bulwark_api_responses_4xx",
            "Requests refused as bad input",
            &counters.responses_4xx,
        ),
        (
            "bulwark_api_responses_5xx",
            "Requests refused for the node's own state",
            &counters.responses_5xx,
        ),
        (
            "bulwark_api_txs_received",
            "Transactions submitted through the API",
            &counters.txs_received,
        ),
        (
            "bulwark_api_txs_admitted",
            "Submitted transactions the mempool admitted",
            &counters.txs_admitted,
        ),
        (
            "bulwark_api_admissions",
            "Admissions of queued submissions (each one batch verification at most)",
            &admission.admissions,
        ),
        (
            "bulwark_api_admission_requests",
            "Requests taken off the queue into an admission",
            &admission.requests,
        ),
    ];
    for (name, help, counter) in api {
        family(
            &mut out,
            name,
            "counter",
            help,
            counter.load(Ordering::Relaxed),
        );
    }
    out.push_str("# EOF\n");
    out
}

type AtomicU64Ref = std::sync::atomic::AtomicU64;
