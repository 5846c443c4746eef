//! Submissions: each signed transaction goes to every validator the gateway knows, not to the
//! first that says it admitted it.
//!
//! Why: a validator's "admitted" is a claim nobody can check. Asking validators in turn and
//! stopping at the first that admits, a Byzantine validator at the head of the list that
//! answers "admitted" and drops the transaction stopped every order of the gateway's clients
//! (each timed out after `GatewayConfig::order_wait`) and kept their signed orders: nonces may
//! skip, so it could hand one to a leader later, when the price had moved. Handed to every
//! validator, a transaction reaches the honest ones, whose leaders include it in their turns;
//! once it executes, its nonce is spent and a withheld copy is stale. When no validator passes
//! it on in time, [`crate::gateway::Gateway::execute`] settles it (spends its nonce).
//!
//! Owns: one lane per validator: a bounded queue and a task that posts what is queued as one
//! `POST /txs` batch at a time, in queue order. So each validator receives one key's
//! transactions in nonce order (copies racing on separate connections could bring a higher
//! nonce first, and a block holding it alone would make the lower one stale).
//! Decides: the first validator to admit a transaction (or to hold it already: `duplicate`)
//! decides its submission; when none admits, the first refusal on the transaction's merits
//! (every honest validator refuses the same transaction the same way), else "busy".
//! Never: waits for a slow validator once another has admitted (its lane still delivers the
//! copy); believes one validator's refusal while another may still admit.
//! Bounds: a lane queues at most [`LANE_QUEUE_MAX`] transactions (a submission that finds it
//! full counts that validator as busy) and posts at most [`BATCH_MAX`] at a time (half as many
//! each time the validator refuses a batch as too large), one request in flight, under the
//! validator client's timeout; a submission waits for at most one answer per lane.

use crate::source::{FetchError, HttpValidator};
use bulwark_types::SignedTx;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Transactions one lane holds waiting for its validator.
pub const LANE_QUEUE_MAX: usize = 4_096;

/// Most transactions in one `POST /txs` (a validator accepts up to 1,024 by default).
pub const BATCH_MAX: usize = 256;

/// A validator's refusal of one transaction: its machine-readable code and what it sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub code: String,
    pub body: Value,
}

/// One validator's answer about one transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// In its mempool (admitted now, or held already).
    Admitted,
    /// Refused on the transaction's merits.
    Refused(Refusal),
    /// Full, halted, unreachable or broken: says nothing about the transaction.
    Busy(String),
}

impl Answer {
    /// The answer a validator's refusal code gives.
    pub fn of_refusal(refusal: Refusal) -> Self {
        match refusal.code.as_str() {
            "duplicate" => Answer::Admitted,
            "signer_queue_full" | "account_queue_full" | "mempool_full" | "node_halted" => {
                Answer::Busy(format!("{}: {}", refusal.code, refusal.body["error"]))
            }
            _ => Answer::Refused(refusal),
        }
    }
}

/// What a submission came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// At least one validator holds the transaction.
    Admitted,
    /// No validator admitted it, and one refused it on its merits.
    Refused(Refusal),
    /// No validator admitted or refused it: the last reason one gave.
    Busy(String),
}

struct Queued {
    tx: SignedTx,
    answer: mpsc::Sender<Answer>,
}

/// What one validator answered since the gateway started, per transaction.
#[derive(Debug, Default)]
struct Counts {
    admitted: AtomicU64,
    refused: AtomicU64,
    busy: AtomicU64,
}

impl Counts {
    fn count(&self, answer: &Answer) {
        let counter = match answer {
            Answer::Admitted => &self.admitted,
            Answer::Refused(_) => &self.refused,
            Answer::Busy(_) => &self.busy,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One validator's lane, as `/gateway/v1/status` shows it: each count is that validator's
/// word ("admitted" included: a validator that swallows transactions says so too).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LaneReport {
    pub validator: String,
    pub admitted: u64,
    pub refused: u64,
    /// Full, halted, unreachable, or its lane's queue full.
    pub busy: u64,
    /// Waiting in its lane now.
    pub queued: usize,
}

struct Lane {
    base: String,
    queue: mpsc::Sender<Queued>,
    counts: Arc<Counts>,
}

/// One queue and one posting task per validator.
pub struct Submitter {
    lanes: Vec<Lane>,
}

impl Submitter {
    /// Starts a lane per validator; call within a tokio runtime. A lane's task ends when the
    /// submitter is dropped.
    pub fn start(validators: &[HttpValidator]) -> Self {
        let lanes = validators
            .iter()
            .map(|validator| {
                let (queue, queued) = mpsc::channel(LANE_QUEUE_MAX);
                let counts = Arc::new(Counts::default());
                tokio::spawn(lane(validator.clone(), queued, counts.clone()));
                Lane {
                    base: validator.base().to_string(),
                    queue,
                    counts,
                }
            })
            .collect();
        Self { lanes }
    }

    /// Each validator's answers so far and what waits for it.
    pub fn report(&self) -> Vec<LaneReport> {
        self.lanes
            .iter()
            .map(|lane| LaneReport {
                validator: lane.base.clone(),
                admitted: lane.counts.admitted.load(Ordering::Relaxed),
                refused: lane.counts.refused.load(Ordering::Relaxed),
                busy: lane.counts.busy.load(Ordering::Relaxed),
                queued: LANE_QUEUE_MAX - lane.queue.capacity(),
            })
            .collect()
    }

    /// Queues `tx` to every validator and waits until one admits it, or every lane answered.
    /// Transactions submitted one after another reach each validator in that order.
    pub async fn submit(&self, tx: &SignedTx) -> Outcome {
        let (sender, mut answers) = mpsc::channel(self.lanes.len().max(1));
        let mut waiting = 0;
        let mut refused: Option<Refusal> = None;
        let mut busy = "no validators".to_string();
        for lane in &self.lanes {
            let queued = Queued {
                tx: tx.clone(),
                answer: sender.clone(),
            };
            let base = &lane.base;
            match lane.queue.try_send(queued) {
                Ok(()) => {
                    waiting += 1;
                    continue;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    busy = format!("{base}: {LANE_QUEUE_MAX} submissions queued");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => busy = format!("{base}: lane stopped"),
            }
            lane.counts.busy.fetch_add(1, Ordering::Relaxed);
        }
        drop(sender);
        for _ in 0..waiting {
            match answers.recv().await {
                Some(Answer::Admitted) => return Outcome::Admitted,
                Some(Answer::Refused(refusal)) => {
                    refused.get_or_insert(refusal);
                }
                Some(Answer::Busy(reason)) => busy = reason,
                // Every lane's sender is gone: no answer is coming.
                None => break,
            }
        }
        match refused {
            Some(refusal) => Outcome::Refused(refusal),
            None => Outcome::Busy(busy),
        }
    }
}

/// Posts what is queued for `validator`, a batch at a time, and answers each submission.
async fn lane(validator: HttpValidator, mut queued: mpsc::Receiver<Queued>, counts: Arc<Counts>) {
    let mut batch: Vec<Queued> = Vec::with_capacity(BATCH_MAX);
    // Halved each time the validator refuses a batch as too large (its own bounds may be
    // lower than ours), down to one transaction a request.
    let mut limit = BATCH_MAX;
    while queued.recv_many(&mut batch, limit).await > 0 {
        let mut done = 0;
        // Bounded: each pass answers `limit` transactions or halves `limit` (at most
        // log2(BATCH_MAX) times in the lane's life).
        while done < batch.len() {
            let end = batch.len().min(done + limit);
            let txs: Vec<&SignedTx> = batch[done..end].iter().map(|q| &q.tx).collect();
            let answers: Vec<Answer> = match validator.submit_batch(&txs).await {
                Ok(results) => results
                    .into_iter()
                    .map(|result| result.map_or_else(Answer::of_refusal, |()| Answer::Admitted))
                    .collect(),
                Err(error) if too_large(&error) && limit > 1 => {
                    limit /= 2;
                    tracing::info!(validator = validator.base(), limit, "batch too large");
                    continue;
                }
                Err(error) => {
                    tracing::debug!(validator = validator.base(), %error, "submission failed");
                    let reason = format!("{}: {error}", validator.base());
                    vec![Answer::Busy(reason); end - done]
                }
            };
            debug_assert_eq!(answers.len(), end - done, "one answer per transaction");
            for (queued, answer) in batch[done..end].iter().zip(answers) {
                counts.count(&answer);
                // The submission may have settled already (another validator admitted
                // first): its receiver is gone, and so is the need for this answer.
                let _ = queued.answer.try_send(answer);
            }
            done = end;
        }
        batch.clear();
    }
}

/// Whether a validator refused a whole batch for its size (its `batch_txs_max` or its body
/// bound), not for what it holds.
fn too_large(error: &FetchError) -> bool {
    match error {
        FetchError::Status { status: 413, .. } => true,
        FetchError::Status { status: 400, body } => body.contains("\"batch_too_large\""),
        _ => false,
    }
}

/// Reads `POST /txs`'s answer: one result per transaction, in order.
pub fn batch_answer(body: &[u8], count: usize) -> Result<Vec<Result<(), Refusal>>, FetchError> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| FetchError::Malformed(format!("a batch answer that is not JSON: {e}")))?;
    let Some(results) = parsed["results"].as_array() else {
        return Err(FetchError::Malformed(
            "a batch answer without results".into(),
        ));
    };
    if results.len() != count {
        return Err(FetchError::Malformed(format!(
            "{} results for {count} transactions",
            results.len()
        )));
    }
    results
        .iter()
        .map(
            |result| match (result["status"].as_str(), result["code"].as_str()) {
                (Some("pending"), _) => Ok(Ok(())),
                (_, Some(code)) => Ok(Err(Refusal {
                    code: code.to_string(),
                    body: result.clone(),
                })),
                _ => Err(FetchError::Malformed(format!(
                    "a result that is neither pending nor refused: {}",
                    crate::source::truncate(&result.to_string())
                ))),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    #[test]
    fn a_batch_answer_is_read_whole_or_not_at_all() {
        let body = br#"{"results": [{"digest": "ab", "status": "pending"},
            {"error": "stale", "code": "nonce_stale"}]}"#;
        let read = batch_answer(body, 2).unwrap();
        assert_eq!(read[0], Ok(()));
        assert_eq!(read[1].as_ref().unwrap_err().code, "nonce_stale");
        // A count that does not match, a result of neither kind, not JSON: malformed.
        assert!(matches!(
            batch_answer(body, 3),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            batch_answer(br#"{"results": [{"status": "maybe"}]}"#, 1),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            batch_answer(b"<html>", 1),
            Err(FetchError::Malformed(_))
        ));
    }

    proptest::proptest! {
        /// Whatever a validator sends back, reading it never panics, and a read answer has
        /// exactly one result per transaction.
        #[test]
        fn any_answer_is_read_or_refused_without_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            results in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(r#"{"status": "pending"}"#.to_string()),
                    "[a-z_]{0,12}".prop_map(|code| format!(r#"{{"code": "{code}"}}"#)),
                    proptest::strategy::Just("null".to_string()),
                    proptest::strategy::Just("7".to_string()),
                ],
                0..8,
            ),
            count in 0usize..8,
        ) {
            let _ = batch_answer(&body, count);
            let answer = format!(r#"{{"results": [{}]}}"#, results.join(","));
            if let Ok(read) = batch_answer(answer.as_bytes(), count) {
                proptest::prop_assert_eq!(read.len(), count);
            }
        }
    }

    #[test]
    fn a_duplicate_is_held_and_a_full_pool_says_nothing_about_the_transaction() {
        let refusal = |code: &str| Refusal {
            code: code.into(),
            body: serde_json::json!({"error": "x", "code": code}),
        };
        assert_eq!(Answer::of_refusal(refusal("duplicate")), Answer::Admitted);
        for busy in [
            "signer_queue_full",
            "account_queue_full",
            "mempool_full",
            "node_halted",
        ] {
            assert!(matches!(Answer::of_refusal(refusal(busy)), Answer::Busy(_)));
        }
        for merit in [
            "nonce_stale",
            "signature_invalid",
            "signer_unknown",
            "tx_invalid",
        ] {
            assert_eq!(
                Answer::of_refusal(refusal(merit)),
                Answer::Refused(refusal(merit))
            );
        }
    }
}
