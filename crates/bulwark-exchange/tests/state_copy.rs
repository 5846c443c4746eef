//! A venue's size must not be a cost every block pays.
//!
//! A validator applies each block it speculates on to a copy of its parent's state. Were the
//! account table, the key table and the liquidation screen copied row by row, every block
//! would cost every validator time in proportion to the accounts ever opened: a trader opening
//! accounts by deposits (or just a venue that grows) would slow every block on every validator.
//! Measured by what the copy and a one-transaction block allocate (this test binary's own
//! counting allocator), not by time.

mod common;

use bulwark_types::counting_alloc::{Counting, allocated_by};
use bulwark_types::{Money, TxBody};
use common::Venue;
use commonware_cryptography::Signer as _;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Accounts opened, by deposits of 1,000 a block.
const ACCOUNTS: usize = 20_000;

/// What a copy and a one-deposit block may allocate, whatever the venue's size: the tables'
/// spines (a pointer per chunk), the chunks and paths the block writes, its events.
const BLOCK_BYTES_MAX: u64 = 256 * 1024;

#[test]
fn a_block_on_a_copy_of_a_large_venue_allocates_what_it_touches() {
    let mut v = Venue::standard();
    let names: Vec<String> = (0..ACCOUNTS).map(|i| format!("trader{i}")).collect();
    for chunk in names.chunks(1_000) {
        let deposits: Vec<_> = chunk
            .iter()
            .map(|name| {
                let owner = v.key(name).public_key();
                v.bridge_tx(TxBody::Deposit {
                    owner,
                    amount: Money::from_usdc(1_000),
                })
            })
            .collect();
        let outcome = v.block(deposits);
        assert!(outcome.txs.iter().all(|r| r.rejection.is_none()));
    }
    assert!(v.exchange.accounts().len() >= ACCOUNTS);
    // The next block, one more deposit, checked before measuring (signature verdicts are
    // the node's work, not the copy's).
    let owner = v.key("newcomer").public_key();
    let deposit = v.bridge_tx(TxBody::Deposit {
        owner,
        amount: Money::from_usdc(1_000),
    });
    let block = v.next_block(vec![deposit]);
    let parent = v.exchange.clone();
    let ((child, outcome), allocated) = allocated_by(|| {
        let mut child = parent.clone();
        let outcome = child.apply_block(&block).expect("applies");
        (child, outcome)
    });
    assert!(outcome.txs.iter().all(|r| r.rejection.is_none()));
    assert!(
        allocated <= BLOCK_BYTES_MAX,
        "a one-deposit block on a copy of a venue of {ACCOUNTS} accounts allocated {allocated} \
         bytes (at most {BLOCK_BYTES_MAX})"
    );
    // The copy is a state of its own: the parent did not gain the account.
    assert_eq!(child.accounts().len(), parent.accounts().len() + 1);
    assert_eq!(child.state_digest(), {
        let mut again = parent.clone();
        again.apply_block(&block).expect("applies");
        again.state_digest()
    });
}
