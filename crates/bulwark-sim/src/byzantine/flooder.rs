//! A validator that floods its peers' mempools: besides running honestly, it sends every
//! peer, over the transaction gossip channel, a stream of junk transactions.
//!
//! Owns: the junk and its pace. Every [`FLOOD_INTERVAL_MS`] it sends all peers a batch of at
//! most [`FLOOD_BATCH_MAX`] transactions (`txs_per_second` in all each second), in three kinds
//! in turn: forgeries under honest traders' keys (accounts exist, so a peer hashes and
//! verifies them, and the signature fails), duplicates of one such forgery, and validly
//! signed cancels from throwaway keys with no account; without `forgeries`, only the last
//! kind and duplicates of it. Every message decodes, so no peer blocks the flooder for bad
//! bytes (which would cut it off, a lesser attack).
//! The defences are the node's: each peer's gossip budget (`GossipConfig::peer_txs_per_second`)
//! drops a peer's batches beyond it unread, admission refuses a key with no account before
//! any hash or signature check, a bad signature is never admitted, a peer whose gossip
//! carried one is muted (its gossip dropped unread from then on, `Shared::is_forger`), and
//! the mempool's bounds (`MempoolLimits`) hold whatever arrives.
//! Never: runs anything but the sending loop (the validator itself is honest), or touches a
//! peer's state except through what it sends.

use crate::cluster::{self, Beside, Context};
use bulwark_types::{PrivateKey, SignedTx, TxBody};
use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use commonware_p2p::{Recipients, Sender};
use commonware_runtime::{Clock as _, Handle, Spawner as _};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often a flooder sends a batch, in milliseconds.
pub const FLOOD_INTERVAL_MS: u64 = 20;
/// Most transactions in one flood message: the gossip batch bound every validator decodes
/// under (a larger batch would not decode and would get the flooder blocked).
pub const FLOOD_BATCH_MAX: usize = 256;
/// Most transactions a flooder sends a second.
pub const FLOOD_TXS_PER_SECOND_MAX: u32 = 1_000_000;
/// Throwaway keys a flooder signs with, in turn.
const THROWAWAY_KEYS: u64 = 64;

/// How hard a validator floods.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flood {
    /// Junk transactions sent to each peer per second.
    pub txs_per_second: u32,
    /// Whether the junk includes forgeries under traders' keys (a flooder that knows peers
    /// mute a forger sends only throwaway keys' junk).
    pub forgeries: bool,
}

impl Flood {
    /// What the cluster runs beside flooding validator `validator`
    /// (`Cluster::beside`): the flooding loop, adding what it sends to `sent`.
    pub fn beside(self, validator: usize, sent: Arc<AtomicU64>) -> Beside {
        // Not drawn from the runtime: a run without a flooder draws exactly as before.
        let seed = 0xf100_d000 + validator as u64;
        Arc::new(move |context, sender| {
            spawn(context, sender, self, seed, sent.clone());
        })
    }
}

/// Spawns the flooding loop on `sender` (a clone of the validator's own gossip sender); it
/// adds each message's transactions to `sent`.
pub fn spawn<S>(
    context: Context,
    mut sender: S,
    flood: Flood,
    seed: u64,
    sent: Arc<AtomicU64>,
) -> Handle<()>
where
    S: Sender<PublicKey = bulwark_types::PublicKey>,
{
    assert!(
        (1..=FLOOD_TXS_PER_SECOND_MAX).contains(&flood.txs_per_second),
        "a flood sends something, within bounds"
    );
    let per_batch = (u64::from(flood.txs_per_second) * FLOOD_INTERVAL_MS / 1_000).max(1);
    context.spawn(move |context| async move {
        let throwaway: Vec<PrivateKey> = (0..THROWAWAY_KEYS)
            .map(|k| PrivateKey::from_seed(seed.wrapping_mul(1_000).wrapping_add(k)))
            .collect();
        let mut nonce = 1_000_000u64;
        loop {
            let mut left = per_batch;
            while left > 0 {
                let n = left.min(FLOOD_BATCH_MAX as u64);
                left -= n;
                nonce += 1;
                let batch = junk(&throwaway, nonce, n as usize, flood.forgeries);
                sender.send(Recipients::All, batch.encode(), false);
                sent.fetch_add(n, Ordering::SeqCst);
            }
            context
                .sleep(Duration::from_millis(FLOOD_INTERVAL_MS))
                .await;
        }
    })
}

/// `n` junk transactions, the `nonce`th batch: forgeries, duplicates and throwaway cancels,
/// or without `forgeries` throwaway cancels and duplicates of one.
fn junk(throwaway: &[PrivateKey], nonce: u64, n: usize, forgeries: bool) -> Vec<SignedTx> {
    assert!(!throwaway.is_empty() && n <= FLOOD_BATCH_MAX);
    let cancel = TxBody::CancelAll { instrument: None };
    if !forgeries {
        let duplicate = cancel.clone().signed(&throwaway[0], nonce);
        return (0..n)
            .map(|i| match i % 2 {
                0 => cancel
                    .clone()
                    .signed(&throwaway[(i / 2) % throwaway.len()], nonce),
                _ => duplicate.clone(),
            })
            .collect();
    }
    // A forgery under trader t's key: signed by a throwaway key instead.
    let forged = |t: usize, nonce: u64| {
        let mut tx = cancel
            .clone()
            .signed(&throwaway[t % throwaway.len()], nonce);
        tx.tx.signer = cluster::trader_key(t).public_key();
        tx
    };
    let duplicate = forged(0, nonce);
    (0..n)
        .map(|i| match i % 3 {
            0 => forged((i / 3) % cluster::TRADERS, nonce),
            1 => duplicate.clone(),
            _ => cancel
                .clone()
                .signed(&throwaway[(i / 3) % throwaway.len()], nonce),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_is_a_third_of_each_kind_and_never_validly_signed_by_a_trader() {
        let keys: Vec<PrivateKey> = (0..4).map(PrivateKey::from_seed).collect();
        let batch = junk(&keys, 7, 9, true);
        assert_eq!(batch.len(), 9);
        for (i, tx) in batch.iter().enumerate() {
            match i % 3 {
                0 | 1 => assert!(!tx.verify(), "a forgery under a trader's key"),
                _ => assert!(tx.verify(), "a throwaway key's own cancel"),
            }
        }
        assert_eq!(batch[1], batch[4], "duplicates");
        let honest_keys_only = junk(&keys, 7, 9, false);
        assert_eq!(honest_keys_only.len(), 9);
        assert!(honest_keys_only.iter().all(SignedTx::verify), "no forgery");
        assert_eq!(honest_keys_only[1], honest_keys_only[3], "duplicates");
    }
}
