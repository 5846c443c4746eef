//! Transaction gossip: what this validator's clients submit reaches every validator's
//! mempool, so whichever validator leads next can include it.
//!
//! Owns: batching the outbox onto the gossip channel, and admitting peers' batches (decoded
//! under a bound, signatures verified once, then the same admission as local clients). Peers'
//! transactions are not gossiped again: with a fixed, fully connected validator set, one hop
//! reaches everyone.
//! Bounds: a batch holds at most `batch_max` transactions; a peer's channel quota (set when
//! registering the channel) bounds how many batches it can push, and each peer has a budget
//! of `peer_txs_per_second` transactions: beyond it, its batches are dropped before any
//! signature is checked, so one peer's flood buys a bounded share of this node's CPU. Batches
//! already delivered are staged together, at most [`COALESCE_BATCHES`] batches' worth at a
//! time, so the staged queue never holds more than `stage_min` plus that and one batch; a bad
//! signature among them costs a few batch verifications of halves
//! (`bulwark_types::tx::verify_batch`), not one check per transaction. A peer whose gossip
//! carried a forged signature is muted: its gossip is dropped unread from then on
//! (`Shared::is_forger`). An honest validator gossips only transactions it admitted, their
//! signatures verified, so one forgery is proof (and no peer can frame an honest one with a
//! signature its batch accepts and a peer's single check refuses: Commonware's ed25519
//! follows ZIP-215, under which batch and single verification agree). Without the mute, one
//! forgery slipped into each batch of 128 would make every honest validator halve every
//! batch, for a few dozen forgeries a second (one forged among 128 cost 3.7 times the clean
//! batch, all forged 9.9 times: `cargo bench -p bulwark-types --bench signatures --
//! verify_batch_128_forged`). The peer is not blocked: it still takes part in consensus, so
//! a Byzantine validator's junk costs the network its gossip, not a validator's share of the
//! views.
//!
//! Staged: peers' transactions wait, decoded but not yet verified, until
//! [`GossipConfig::stage_min`] of them are staged, the oldest has waited
//! [`GossipConfig::stage_linger`], or this validator proposes (`Shared::admit_staged`), and
//! are then verified as one batch: on 2026-12-06's VM a batch of 128 cost 12.4 us a signature
//! against 16.6 for the 32 or so a gossip round brings at 10,000 orders a second (`cargo
//! bench -p bulwark-types --bench signatures`, group `verify_batch_per_size`: past about 96
//! signatures the multi-scalar multiplication takes its cheaper algorithm). A block from
//! another leader that holds staged transactions verifies them as part of its own batch
//! (`verdicts::check_block`), and their later admission finds the verdict. Nothing a peer
//! sends is believed sooner: every transaction is verified before it enters the mempool.

use crate::shared::{PeerTag, Shared, lock};
use bulwark_types::{KeyCache, SignedTx};
use commonware_codec::{Buf, Encode, Error as CodecError};
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Handle, Spawner, Supervisor};
use futures::FutureExt as _;
use rand_core::CryptoRng;
use std::sync::Arc;
use std::time::Duration;

/// Peers' batches already delivered are staged together, up to this many batches' worth of
/// transactions, before the staged count is compared with `stage_min`.
pub const COALESCE_BATCHES: usize = 4;

/// Gossip settings.
#[derive(Copy, Clone, Debug)]
pub struct GossipConfig {
    /// Most transactions in one gossip message.
    pub batch_max: usize,
    /// How often the outbox is flushed.
    pub interval: Duration,
    /// Transactions a peer may gossip per second before the rest of its batches in that
    /// second are dropped unread.
    pub peer_txs_per_second: u32,
    /// Peers' transactions are admitted (verified in one batch) once this many are staged;
    /// 1 admits each delivery at once.
    pub stage_min: usize,
    /// ... or once the oldest staged transaction has waited this long.
    pub stage_linger: Duration,
}

/// One peer's gossip budget: transactions counted in the current one-second window.
#[derive(Copy, Clone, Debug, Default)]
struct Budget {
    window_start_ms: u64,
    used: u32,
}

impl Budget {
    /// Spends `n` if the window has room; a new window starts every second.
    fn spend(&mut self, now_ms: u64, n: u32, per_second: u32) -> bool {
        if now_ms.saturating_sub(self.window_start_ms) >= 1_000 {
            self.window_start_ms = now_ms;
            self.used = 0;
        }
        if self.used.saturating_add(n) > per_second {
            return false;
        }
        self.used += n;
        true
    }
}

/// Starts the send and receive loops.
/// A peer whose batch does not decode is blocked: honest validators never send one.
pub fn start<E, S, R, B>(
    context: E,
    shared: Arc<Shared>,
    (mut sender, mut receiver): (S, R),
    config: GossipConfig,
    mut blocker: B,
) -> Vec<Handle<()>>
where
    E: Spawner + Clock + Supervisor + CryptoRng,
    S: Sender,
    R: Receiver<PublicKey = S::PublicKey>,
    B: Blocker<PublicKey = S::PublicKey>,
{
    assert!(
        config.batch_max > 0,
        "gossip batches hold at least one transaction"
    );
    let send_shared = shared.clone();
    let send = context
        .child("gossip_send")
        .spawn(move |context| async move {
            loop {
                context.sleep(config.interval).await;
                loop {
                    let batch: Vec<SignedTx> = {
                        let mut outbox = lock(&send_shared.outbox);
                        let n = outbox.len().min(config.batch_max);
                        outbox.drain(..n).collect()
                    };
                    if batch.is_empty() {
                        break;
                    }
                    sender.send(Recipients::All, batch.encode(), false);
                }
            }
        });
    let receive = context
        .child("gossip_receive")
        .spawn(move |mut context| async move {
            // One entry per peer that ever sent: bounded by the validator set (p2p admits
            // only its members).
            let mut peers: std::collections::BTreeMap<S::PublicKey, (PeerTag, Budget)> =
                std::collections::BTreeMap::new();
            let coalesce_max = config.batch_max.saturating_mul(COALESCE_BATCHES);
            let linger_ms = config.stage_linger.as_millis() as u64;
            let mut next = receiver.recv().await.ok();
            while next.is_some() {
                // Every batch already delivered is staged together, up to `coalesce_max`
                // transactions; nothing waits for more to arrive.
                let mut txs: Vec<(PeerTag, SignedTx)> = Vec::new();
                let mut closed = false;
                while let Some((peer, message)) = next.take() {
                    admit_from_peer(
                        &shared,
                        &mut blocker,
                        &mut peers,
                        crate::app::now_ms(&context),
                        (peer, message),
                        &config,
                        &mut txs,
                    );
                    if txs.len() >= coalesce_max {
                        break;
                    }
                    match receiver.recv().now_or_never() {
                        Some(Ok(message)) => next = Some(message),
                        Some(Err(_)) => {
                            closed = true;
                            break;
                        }
                        None => break,
                    }
                }
                let staged = shared.stage(txs, crate::app::now_ms(&context));
                assert!(
                    staged < config.stage_min.max(1) + coalesce_max + config.batch_max,
                    "the staged queue is admitted before it exceeds its bound"
                );
                if staged >= config.stage_min || closed {
                    shared.admit_staged(&mut context);
                }
                if closed || next.is_some() {
                    continue;
                }
                // Wait for the next delivery, or until the oldest staged transaction has
                // waited `stage_linger` (a proposal of this validator's may admit them first).
                let Some(since) = shared.staged_since() else {
                    next = receiver.recv().await.ok();
                    continue;
                };
                let wait = (since + linger_ms).saturating_sub(crate::app::now_ms(&context));
                futures::select_biased! {
                    message = receiver.recv().fuse() => match message {
                        Ok(message) => next = Some(message),
                        // Closed: admit what was staged, then stop.
                        Err(_) => {
                            shared.admit_staged(&mut context);
                        }
                    },
                    _ = context.sleep(Duration::from_millis(wait)).fuse() => {
                        shared.admit_staged(&mut context);
                        next = receiver.recv().await.ok();
                    },
                }
            }
        });
    vec![send, receive]
}

/// Reads one peer's batch into `txs`, each transaction tagged with the peer: a batch from a
/// peer that gossiped a forgery before is dropped unread; one that does not decode blocks the
/// peer; one over the peer's budget is dropped unread (both drops counted in the node's
/// status). `peers` numbers each peer on its first delivery (bounded by the validator set:
/// p2p admits only its members).
fn admit_from_peer<P: commonware_cryptography::PublicKey, B: Blocker<PublicKey = P>>(
    shared: &Shared,
    blocker: &mut B,
    peers: &mut std::collections::BTreeMap<P, (PeerTag, Budget)>,
    now_ms: u64,
    (peer, message): (P, commonware_runtime::IoBuf),
    config: &GossipConfig,
    txs: &mut Vec<(PeerTag, SignedTx)>,
) {
    let tag = match peers.get(&peer) {
        Some((tag, _)) => *tag,
        None => PeerTag::try_from(peers.len()).expect("validator sets are far smaller"),
    };
    if shared.is_forger(tag) {
        // Counted by message, not decoded: the mute costs this node a lookup per message.
        lock(&shared.status).gossip_muted += 1;
        return;
    }
    let batch = match decode_batch(&shared.keys, message, config.batch_max) {
        Ok(batch) => batch,
        Err(error) => {
            tracing::warn!(?peer, %error, "undecodable gossip; blocking the peer");
            let _ = blocker.block(peer);
            return;
        }
    };
    let (_, budget) = peers
        .entry(peer.clone())
        .or_insert((tag, Budget::default()));
    if !budget.spend(now_ms, batch.len() as u32, config.peer_txs_per_second) {
        lock(&shared.status).gossip_dropped += batch.len() as u64;
        tracing::debug!(
            ?peer,
            txs = batch.len(),
            "peer over its gossip budget; batch dropped"
        );
        return;
    }
    txs.extend(batch.into_iter().map(|tx| (tag, tx)));
}

/// A peer's batch: at most `batch_max` signed transactions, their signers' keys through this
/// validator's key cache, and nothing after them.
fn decode_batch(
    keys: &KeyCache,
    message: impl Buf,
    batch_max: usize,
) -> Result<Vec<SignedTx>, CodecError> {
    let mut message = message;
    let txs = keys.read_list(&mut message, batch_max, |k, b| k.read_signed_tx(b))?;
    if message.has_remaining() {
        return Err(CodecError::ExtraData(message.remaining()));
    }
    Ok(txs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_s_budget_refills_each_second_and_never_overspends() {
        let mut budget = Budget::default();
        assert!(budget.spend(5_000, 600, 1_000));
        assert!(!budget.spend(5_400, 401, 1_000), "over the budget");
        assert!(budget.spend(5_999, 400, 1_000), "exactly the budget");
        assert!(!budget.spend(5_999, 1, 1_000));
        assert!(budget.spend(6_000, 1_000, 1_000), "a new second");
        assert!(!budget.spend(6_500, u32::MAX, 1_000), "no overflow");
    }
}
