//! The follower against lying validators: a forged block, a certificate from strangers, a
//! certificate over another block, a block that does not extend the chain. Each is refused,
//! the liar is benched, and the follower continues from an honest validator to the same state
//! the validators computed. A gateway started after the validators pruned their archives joins
//! from a snapshot, believed only against the state hash the certified block after it commits
//! to.

use bulwark_exchange::{ExchangeParams, Genesis};
use bulwark_gateway::follower::{self, FollowerConfig, Lie, Proof};
use bulwark_gateway::replica::Replica;
use bulwark_gateway::source::{BlockSource, FetchError, Fetched};
use bulwark_node::block::{ChainBlock, Ctx};
use bulwark_node::chain::Chain;
use bulwark_node::commitment;
use bulwark_node::sync::BlockFinalization;
use bulwark_types::{
    Block as ExchangeBlock, BlockTime, Height as ExchangeHeight, Money, Nonce, PriceInputs,
    PrivateKey, Tx, TxBody,
};
use commonware_consensus::Heightable as _;
use commonware_consensus::simplex::scheme::ed25519;
use commonware_consensus::simplex::types::{Finalize, Proposal};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digestible, Hasher, Sha256, Signer as _};
use commonware_parallel::Sequential;
use commonware_utils::non_empty;
use commonware_utils::ordered::Set;
use futures::future::BoxFuture;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const NAMESPACE: &[u8] = b"bulwark-follower-test";
const HEIGHTS: u64 = 30;

fn genesis() -> Genesis {
    Genesis {
        admin: PrivateKey::from_seed(1).public_key(),
        bridge: bridge().public_key(),
        params: ExchangeParams::defaults(),
        time: BlockTime::from_millis(1_000),
        oracle: None,
        custody: None,
    }
}

fn bridge() -> PrivateKey {
    PrivateKey::from_seed(2)
}

fn schemes(seed: u64) -> Vec<ed25519::Scheme> {
    let keys: Vec<PrivateKey> = (0..4).map(|i| PrivateKey::from_seed(seed + i)).collect();
    let participants = Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
    keys.into_iter()
        .map(|k| ed25519::Scheme::signer(NAMESPACE, participants.clone(), k).unwrap())
        .collect()
}

fn participants(seed: u64) -> Set<commonware_cryptography::ed25519::PublicKey> {
    Set::from_iter_dedup((0..4).map(|i| PrivateKey::from_seed(seed + i).public_key()))
}

fn finalize(signers: &[ed25519::Scheme], view: u64, digest: Digest) -> BlockFinalization {
    let proposal = Proposal::new(
        Round::new(Epoch::zero(), View::new(view)),
        View::new(view - 1),
        digest,
    );
    let votes: Vec<_> = signers
        .iter()
        .take(3)
        .map(|s| Finalize::sign(s, proposal.clone()).unwrap())
        .collect();
    BlockFinalization::from_finalizes(&signers[0], non_empty![@&votes], &Sequential).unwrap()
}

/// The honest chain: blocks 1..=HEIGHTS each depositing to a fresh owner, with the
/// validators' certificates (odd heights lack their own, as marshal may archive them).
fn honest_chain(signers: &[ed25519::Scheme]) -> (Vec<Fetched>, Digest) {
    let (fetched, digest, _) = honest_chain_with_snapshots(signers);
    (fetched, digest)
}

/// The honest chain, its final state digest, and the snapshot after every height.
fn honest_chain_with_snapshots(
    signers: &[ed25519::Scheme],
) -> (Vec<Fetched>, Digest, Vec<Vec<u8>>) {
    let mut snapshots = Vec::new();
    let (genesis_block, exchange) =
        bulwark_node::engine::genesis_block(&participants(100), &genesis()).unwrap();
    let mut chain = Chain::new(exchange, genesis_block.digest());
    let mut fetched = Vec::new();
    for height in 1..=HEIGHTS {
        let block = block_on(&chain, height, 100);
        let checked = block
            .body
            .clone()
            .check_signatures(&mut ChaCha8Rng::seed_from_u64(height));
        chain.finalize(&block, &checked).unwrap();
        snapshots.push(chain.finalized().snapshot());
        let finalization = (height % 2 == 0 || height == HEIGHTS)
            .then(|| finalize(signers, height, block.digest()));
        fetched.push(Fetched {
            block,
            finalization,
        });
    }
    (fetched, chain.finalized().state_digest(), snapshots)
}

/// The next block on `chain`'s finalized state, depositing `usdc` to a fresh owner.
fn block_on(chain: &Chain, height: u64, usdc: i64) -> ChainBlock {
    let state = chain.finalized();
    let bridge = bridge();
    let tx = Tx {
        signer: bridge.public_key(),
        nonce: Nonce::new(height),
        body: TxBody::Deposit {
            owner: PrivateKey::from_seed(1_000 + height).public_key(),
            amount: Money::from_usdc(usdc),
        },
    }
    .sign(&bridge);
    let body = ExchangeBlock {
        height: ExchangeHeight::new(height),
        time: BlockTime::from_millis(1_000 + 100 * height),
        prices: PriceInputs::default(),
        observations: Vec::new(),
        txs: vec![tx],
    };
    let parent = chain.finalized_digest();
    let context = Ctx {
        round: Round::new(Epoch::zero(), View::new(height)),
        leader: bridge.public_key(),
        parent: (View::new(height - 1), parent),
    };
    ChainBlock::new(
        context,
        parent,
        state.state_digest(),
        commitment::expected_after(state),
        body,
    )
}

/// Runs the follower over `sources` until `replica` reaches [`HEIGHTS`] (at most 20 s, else
/// panics with `what`), then stops it.
async fn follow_to_tip(
    replica: &Arc<Replica>,
    sources: Vec<Box<dyn BlockSource>>,
    config: FollowerConfig,
    what: &str,
) {
    let task = tokio::spawn(follower::run(replica.clone(), sources, config));
    let mut heights = replica.subscribe();
    tokio::time::timeout(Duration::from_secs(20), async {
        while *heights.borrow_and_update() < HEIGHTS {
            heights.changed().await.unwrap();
        }
    })
    .await
    .expect(what);
    task.abort();
}

/// A validator serving a fixed map of answers, counting requests.
struct Served {
    name: String,
    blocks: Vec<Fetched>,
    asked: AtomicU64,
}

impl BlockSource for Served {
    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(
        &self,
        height: u64,
        _wait: Duration,
    ) -> BoxFuture<'_, Result<Option<Fetched>, FetchError>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let answer = height
            .checked_sub(1)
            .and_then(|i| self.blocks.get(i as usize).cloned());
        Box::pin(async move { Ok(answer) })
    }
}

#[test]
fn each_kind_of_lie_is_refused_by_the_proof_rule() {
    let signers = schemes(100);
    let strangers = schemes(500);
    let (honest, _) = honest_chain(&signers);
    let replica = Replica::from_genesis(NAMESPACE, participants(100), &genesis()).unwrap();
    let (tip_height, tip_digest) = replica.tip();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut proof = Proof::new(replica.verifier().clone());
    let block2 = honest[1].clone();

    // A certificate signed by keys outside the validator set.
    let mut forged = honest[0].clone();
    forged.finalization = Some(finalize(&strangers, 1, forged.block.digest()));
    assert_eq!(
        proof.offer(&mut rng, tip_height, tip_digest, forged),
        Err(Lie::BadCertificate { height: 1 })
    );
    // The validators' certificate over block 2, attached to block 1.
    let mut swapped = honest[0].clone();
    swapped.finalization = block2.finalization.clone();
    assert_eq!(
        proof.offer(&mut rng, tip_height, tip_digest, swapped),
        Err(Lie::PayloadMismatch { height: 1 })
    );
    // Block 2 served when block 1 is due.
    assert_eq!(
        proof.offer(&mut rng, tip_height, tip_digest, block2.clone()),
        Err(Lie::WrongHeight { asked: 1, got: 2 })
    );
    // A forged block 1 (another deposit) under the honest block's certificate.
    let (genesis_block, exchange) =
        bulwark_node::engine::genesis_block(&participants(100), &genesis()).unwrap();
    let chain = Chain::new(exchange, genesis_block.digest());
    let mut forged_block = honest[0].clone();
    forged_block.block = block_on(&chain, 1, 999_999);
    forged_block.finalization = Some(finalize(&signers, 2, honest[1].block.digest()));
    assert_eq!(
        proof.offer(&mut rng, tip_height, tip_digest, forged_block.clone()),
        Err(Lie::PayloadMismatch { height: 1 })
    );
    // A forged block 1 without certificate is held, and block 2 that does not extend it is a lie.
    forged_block.finalization = None;
    assert_eq!(
        proof.offer(&mut rng, tip_height, tip_digest, forged_block),
        Ok(vec![])
    );
    assert_eq!(
        proof.offer(&mut rng, tip_height, tip_digest, block2.clone()),
        Err(Lie::NotExtending { height: 2 })
    );
    // The honest pair proves both.
    assert_eq!(
        proof.offer(&mut rng, tip_height, tip_digest, honest[0].clone()),
        Ok(vec![])
    );
    let proven = proof
        .offer(&mut rng, tip_height, tip_digest, block2)
        .unwrap();
    assert_eq!(proven.len(), 2);
    for block in &proven {
        replica.apply(block).unwrap();
    }
    assert_eq!(replica.tip().0, 2);
}

#[tokio::test]
async fn the_follower_benches_a_liar_and_reaches_the_honest_state() {
    let signers = schemes(100);
    let strangers = schemes(500);
    let (honest, honest_digest) = honest_chain(&signers);
    // The liar serves every block with strangers' certificates.
    let lies: Vec<Fetched> = honest
        .iter()
        .map(|f| Fetched {
            block: f.block.clone(),
            finalization: Some(finalize(&strangers, 1, f.block.digest())),
        })
        .collect();
    let liar = served("liar", lies);
    let replica =
        Arc::new(Replica::from_genesis(NAMESPACE, participants(100), &genesis()).unwrap());
    let sources: Vec<Box<dyn BlockSource>> = vec![
        Box::new(ArcSource(liar.clone())),
        Box::new(Served {
            name: "honest".into(),
            blocks: honest,
            asked: AtomicU64::new(0),
        }),
    ];
    let config = FollowerConfig {
        wait: Duration::ZERO,
        hedge: Duration::from_millis(250),
        poll: Duration::from_millis(5),
        liar_timeout: Duration::from_secs(600),
        failure_backoff: Duration::from_millis(10),
    };
    follow_to_tip(
        &replica,
        sources,
        config,
        "the follower reaches the honest tip",
    )
    .await;
    let state = replica.lock();
    assert_eq!(state.chain.finalized().state_digest(), honest_digest);
    assert!(state.halted.is_none());
    assert_eq!(
        state.lies.len(),
        1,
        "the liar was caught once, then benched"
    );
    assert_eq!(state.lies[0].0, "liar");
    assert_eq!(liar.asked.load(Ordering::SeqCst), 1);
}

/// A follower that long-polls for 2 s and hedges after `hedge`.
fn hedging(hedge: Duration) -> FollowerConfig {
    FollowerConfig {
        wait: Duration::from_secs(2),
        hedge,
        poll: Duration::from_millis(5),
        liar_timeout: Duration::from_secs(600),
        failure_backoff: Duration::from_millis(10),
    }
}

/// A validator named `name` serving `blocks` from height 1.
fn served(name: &str, blocks: Vec<Fetched>) -> Arc<Served> {
    Arc::new(Served {
        name: name.into(),
        blocks,
        asked: AtomicU64::new(0),
    })
}

/// A validator that answers every question late: with honest blocks (behind, or slow on
/// purpose), or with "not yet" at the end of the longest wait (withholding).
struct Late {
    inner: Arc<Served>,
    delay: Duration,
    withholds: bool,
}

impl BlockSource for Late {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn fetch(
        &self,
        height: u64,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Option<Fetched>, FetchError>> {
        let answer = self.inner.fetch(height, wait);
        let (delay, withholds) = (self.delay, self.withholds);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let answer = answer.await?;
            Ok(answer.filter(|_| !withholds))
        })
    }
}

/// The follower asks the validator it asked last first, and lets it hold the question (a
/// long poll). One that answers late, or holds every question to its end and then says "not
/// yet", would hold every block up by that long; hedged, it costs the follower one hedge and
/// stops being asked first as soon as another validator answers.
#[tokio::test]
async fn a_late_or_withholding_validator_is_hedged_not_waited_for_at_every_block() {
    let signers = schemes(100);
    for withholds in [false, true] {
        let (honest, honest_digest) = honest_chain(&signers);
        let late = served("late", honest.clone());
        let prompt = served("prompt", honest);
        let replica =
            Arc::new(Replica::from_genesis(NAMESPACE, participants(100), &genesis()).unwrap());
        let sources: Vec<Box<dyn BlockSource>> = vec![
            Box::new(Late {
                inner: late.clone(),
                delay: Duration::from_secs(2),
                withholds,
            }),
            Box::new(ArcSource(prompt.clone())),
        ];
        let config = hedging(Duration::from_millis(20));
        follow_to_tip(&replica, sources, config, "the follower reaches the tip").await;
        assert_eq!(
            replica.lock().chain.finalized().state_digest(),
            honest_digest
        );
        // Asked first once, then not again: the prompt validator answered every question
        // from the first hedge on (waited for at every block, the late one would be asked 30
        // times). Perhaps once more at the end, for the block after the last, which neither
        // holds, if the follower asks before the test stops it.
        let asked = late.asked.load(Ordering::SeqCst);
        assert!(
            (1..=2).contains(&asked),
            "withholds: {withholds}, asked {asked}"
        );
        assert!(prompt.asked.load(Ordering::SeqCst) >= HEIGHTS);
        assert!(replica.lock().lies.is_empty(), "being late is not a lie");
    }
}

/// A validator that answers "not yet" at once, hedged in beside one that takes a moment to
/// answer, must not cut that question short: otherwise each block would be asked for twice
/// and wait twice as long.
#[tokio::test]
async fn an_instant_not_yet_from_the_hedged_validator_does_not_cut_the_wait_short() {
    let signers = schemes(100);
    let (honest, honest_digest) = honest_chain(&signers);
    let slow = served("slow", honest);
    let nothing = served("says not yet", Vec::new());
    let replica =
        Arc::new(Replica::from_genesis(NAMESPACE, participants(100), &genesis()).unwrap());
    let sources: Vec<Box<dyn BlockSource>> = vec![
        Box::new(Late {
            inner: slow.clone(),
            delay: Duration::from_millis(40),
            withholds: false,
        }),
        Box::new(ArcSource(nothing.clone())),
    ];
    let config = hedging(Duration::from_millis(5));
    follow_to_tip(&replica, sources, config, "the follower reaches the tip").await;
    assert_eq!(
        replica.lock().chain.finalized().state_digest(),
        honest_digest
    );
    // Each block asked of the slow validator once (and perhaps the one after the last); its
    // "not yet" did not end the slow one's wait. The other is hedged in for every block asked
    // while no unproven block is held: every other block (this chain certifies even heights).
    let asked = slow.asked.load(Ordering::SeqCst);
    assert!(
        (HEIGHTS..=HEIGHTS + 1).contains(&asked),
        "the slow validator was asked {asked} times for {HEIGHTS} blocks"
    );
    let hedged = nothing.asked.load(Ordering::SeqCst);
    assert!(hedged >= HEIGHTS / 2, "hedged in {hedged} times");
}

#[tokio::test]
async fn a_block_committing_to_another_state_halts_the_follower() {
    let signers = schemes(100);
    let (mut honest, _) = honest_chain(&signers);
    // The validators (a quorum!) certify block 3 committing to a state the replica does not
    // compute: the replica halts rather than follow.
    let original = honest[2].block.clone();
    let bad = ChainBlock::new(
        original.context.clone(),
        original.parent,
        Sha256::hash(&[b"another state"]),
        original.state_hash,
        original.body.clone(),
    );
    honest[2] = Fetched {
        finalization: Some(finalize(&signers, 3, bad.digest())),
        block: bad,
    };
    honest.truncate(3);
    let replica =
        Arc::new(Replica::from_genesis(NAMESPACE, participants(100), &genesis()).unwrap());
    let sources: Vec<Box<dyn BlockSource>> = vec![Box::new(Served {
        name: "v".into(),
        blocks: honest,
        asked: AtomicU64::new(0),
    })];
    tokio::time::timeout(
        Duration::from_secs(20),
        follower::run(replica.clone(), sources, FollowerConfig::DEFAULT),
    )
    .await
    .expect("the follower stops on a divergence");
    let halted = replica.halted().expect("halted");
    assert!(halted.contains("state divergence at height 3"), "{halted}");
    assert_eq!(replica.tip().0, 2);
}

struct ArcSource(Arc<Served>);

impl BlockSource for ArcSource {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn fetch(
        &self,
        height: u64,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Option<Fetched>, FetchError>> {
        self.0.fetch(height, wait)
    }
}

/// A validator that pruned everything up to `SNAPSHOT` and serves its snapshot there.
struct Pruned {
    name: String,
    blocks: Vec<Fetched>,
    snapshot: (u64, Vec<u8>),
}

const SNAPSHOT: u64 = 25;

impl BlockSource for Pruned {
    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(
        &self,
        height: u64,
        _wait: Duration,
    ) -> BoxFuture<'_, Result<Option<Fetched>, FetchError>> {
        let answer = if height <= SNAPSHOT {
            Err(FetchError::Pruned(height))
        } else {
            Ok(self.blocks.get(height as usize - 1).cloned())
        };
        Box::pin(async move { answer })
    }

    fn snapshot(&self) -> bulwark_gateway::source::SnapshotAnswer<'_> {
        let snapshot = self.snapshot.clone();
        Box::pin(async move { Ok(Some(snapshot)) })
    }
}

#[test]
fn a_snapshot_is_believed_only_against_the_block_after_it() {
    let signers = schemes(100);
    let (honest, _, snapshots) = honest_chain_with_snapshots(&signers);
    let next = &honest[SNAPSHOT as usize].block;
    assert_eq!(next.height().get(), SNAPSHOT + 1);
    let good = &snapshots[SNAPSHOT as usize - 1];
    let restored = follower::check_snapshot(SNAPSHOT, good, next).unwrap();
    assert_eq!(restored.height().get(), SNAPSHOT);
    // The state one block earlier, served as this one: its hash is not the committed one.
    let earlier = &snapshots[SNAPSHOT as usize - 2];
    assert_eq!(
        follower::check_snapshot(SNAPSHOT, earlier, next).err(),
        Some(follower::SnapshotLie::HashMismatch(SNAPSHOT + 1))
    );
    // Bytes altered: refused.
    let mut altered = good.clone();
    altered[10] ^= 1;
    assert!(follower::check_snapshot(SNAPSHOT, &altered, next).is_err());
    // The right bytes served under another height.
    assert!(matches!(
        follower::check_snapshot(SNAPSHOT + 1, good, next),
        Err(follower::SnapshotLie::HeightMismatch { .. })
    ));
    // A block that commits to no state hash proves no snapshot.
    assert_eq!(
        follower::check_snapshot(
            SNAPSHOT + 1,
            &snapshots[SNAPSHOT as usize],
            &honest[SNAPSHOT as usize + 1].block
        )
        .err(),
        Some(follower::SnapshotLie::Uncommitted(SNAPSHOT + 2))
    );
}

#[tokio::test]
async fn a_gateway_started_after_pruning_joins_from_a_proven_snapshot() {
    let signers = schemes(100);
    let (honest, honest_digest, snapshots) = honest_chain_with_snapshots(&signers);
    let liar = Pruned {
        name: "liar".into(),
        blocks: honest.clone(),
        snapshot: (SNAPSHOT, snapshots[SNAPSHOT as usize - 2].clone()),
    };
    let good = Pruned {
        name: "honest".into(),
        blocks: honest,
        snapshot: (SNAPSHOT, snapshots[SNAPSHOT as usize - 1].clone()),
    };
    let replica =
        Arc::new(Replica::from_genesis(NAMESPACE, participants(100), &genesis()).unwrap());
    let sources: Vec<Box<dyn BlockSource>> = vec![Box::new(liar), Box::new(good)];
    let config = FollowerConfig {
        wait: Duration::ZERO,
        hedge: Duration::from_millis(250),
        poll: Duration::from_millis(5),
        liar_timeout: Duration::from_secs(600),
        failure_backoff: Duration::from_millis(10),
    };
    follow_to_tip(
        &replica,
        sources,
        config,
        "the follower joins from the snapshot and reaches the tip",
    )
    .await;
    let state = replica.lock();
    assert_eq!(state.chain.finalized().state_digest(), honest_digest);
    assert!(state.halted.is_none());
    assert_eq!(state.lies.len(), 1, "{:?}", state.lies);
    assert_eq!(state.lies[0].0, "liar");
    assert!(state.lies[0].1.contains("state hash"), "{:?}", state.lies);
}
