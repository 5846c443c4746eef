//! Transaction gossip: what this validator's clients submit reaches every validator's
//! mempool, so whichever validator leads next can include it.
//!
//! Owns: batching the outbox onto the gossip channel, and admitting peers' batches (decoded
//! under a bound, signatures verified once, then the same admission as local clients). Peers'
//! transactions are not gossiped again: with a fixed, fully connected validator set, one hop
//! reaches everyone.
//! Bounds: a batch holds at most `batch_max` transactions; a peer's channel quota (set when
//! registering the channel) bounds how many batches it can push.

use crate::shared::{Shared, lock};
use bulwark_types::SignedTx;
use commonware_codec::{Decode, Encode, RangeCfg};
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Handle, Spawner, Supervisor};
use rand_core::CryptoRng;
use std::sync::Arc;
use std::time::Duration;

/// Gossip settings.
#[derive(Copy, Clone, Debug)]
pub struct GossipConfig {
    /// Most transactions in one gossip message.
    pub batch_max: usize,
    /// How often the outbox is flushed.
    pub interval: Duration,
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
            let range = RangeCfg::new(0..=config.batch_max);
            while let Ok((peer, message)) = receiver.recv().await {
                let txs = match Vec::<SignedTx>::decode_cfg(message, &(range, ())) {
                    Ok(txs) => txs,
                    Err(error) => {
                        tracing::warn!(?peer, %error, "undecodable gossip; blocking the peer");
                        let _ = blocker.block(peer);
                        continue;
                    }
                };
                let results = shared.submit(txs, &mut context, false);
                let refused = results.iter().filter(|r| r.is_err()).count();
                if refused > 0 {
                    tracing::trace!(?peer, refused, "gossiped transactions refused");
                }
            }
        });
    vec![send, receive]
}
