//! A validator's apply path per finalized block, through `bulwark_node::chain::Chain`: each of
//! 8 blocks of 4,096 transactions (the `apply_block` stream) is first executed speculatively
//! (`extend`, as verify does) and then finalized (`finalize`), which is what every validator
//! does with every block it voted for; and, for comparison, finalized without having been
//! speculated (a block replayed from the archive after a restart).

use bulwark::workload::exchange::{self, ExchangeWorkloadConfig};
use bulwark_exchange::Exchange;
use bulwark_node::block::{ChainBlock, Ctx};
use bulwark_node::chain::Chain;
use bulwark_node::commitment;
use bulwark_types::CheckedBlock;
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::sha256::Digest;
use commonware_cryptography::{Digested, Digestible, Hasher, Sha256, Signer};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// The trading blocks as chain blocks, each committing to the state after its parent.
fn chain_blocks(
    prepared: &Exchange,
    trading: &[CheckedBlock],
) -> (Digest, Vec<Digested<ChainBlock>>) {
    let root = Sha256::hash(&[b"bench root"]);
    let leader = commonware_cryptography::ed25519::PrivateKey::from_seed(7).public_key();
    let mut state = prepared.clone();
    let mut parent = root;
    let mut blocks = Vec::with_capacity(trading.len());
    for (view, checked) in (1u64..).zip(trading) {
        let context = Ctx {
            round: Round::new(Epoch::zero(), View::new(view)),
            leader: leader.clone(),
            parent: (View::new(view - 1), parent),
        };
        let block = ChainBlock::new(
            context,
            parent,
            state.state_digest(),
            commitment::expected_after(&state),
            checked.block().clone(),
        );
        state.apply_block(checked).expect("trading blocks apply");
        parent = block.digest();
        blocks.push(Digested::precomputed(block, parent));
    }
    (root, blocks)
}

fn finalize_block(c: &mut Criterion) {
    let config = ExchangeWorkloadConfig {
        seed: 1,
        accounts: 1_000,
        txs_per_block: 4_096,
        blocks: 8,
        option_strikes: 2,
    };
    let workload = exchange::generate(config);
    let prepared = exchange::prepared_exchange(&workload);
    let (root, blocks) = chain_blocks(&prepared, &workload.trading);
    let mut group = c.benchmark_group("node");
    group.throughput(Throughput::Elements(
        (config.txs_per_block * config.blocks) as u64,
    ));
    group.sample_size(10);
    group.bench_function("speculate_then_finalize_4096_txs", |b| {
        b.iter_batched_ref(
            || Chain::new(prepared.clone(), root),
            |chain| {
                for (block, checked) in blocks.iter().zip(&workload.trading) {
                    chain.extend(block, checked).expect("extends");
                    chain.finalize(block.inner(), checked).expect("finalizes");
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("finalize_unspeculated_4096_txs", |b| {
        b.iter_batched_ref(
            || Chain::new(prepared.clone(), root),
            |chain| {
                for (block, checked) in blocks.iter().zip(&workload.trading) {
                    chain.finalize(block.inner(), checked).expect("finalizes");
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, finalize_block);
criterion_main!(benches);
