//! Deliberate bugs, for testing that the resilience lab (`bulwark-sim`) catches a broken state
//! machine. Compiled only with the `deliberate-bugs` feature, which only the lab's own tests
//! turn on: a validator built from this workspace (`cargo build -p bulwark`) has none of this.
//!
//! Never: reachable from a transaction, a block, a snapshot or any message; each bug is a call
//! the lab makes on a validator's state from outside, as a bug inside the code would act.

use crate::Exchange;
use bulwark_types::Money;

impl Exchange {
    /// A conservation error: `amount` appears in the insurance fund from nowhere (no deposit,
    /// no payer), as a transfer that credits one pocket and debits none would do.
    pub fn deliberate_bug_mint_into_fund(&mut self, amount: Money) {
        assert!(amount.is_positive(), "a bug that mints something");
        self.treasury.deliberate_bug_mint_into_fund(amount);
    }
}
