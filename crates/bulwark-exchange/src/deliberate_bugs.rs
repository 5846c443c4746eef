//! Deliberate bugs, for testing that the resilience lab (`bulwark-sim`) catches a broken state
//! machine. Compiled only with the `deliberate-bugs` feature, which only the lab's own tests
//! turn on: a validator built from this workspace (`cargo build -p bulwark`) has none of this.
//!
//! Never: reachable from a transaction, a block, a snapshot or any message; each bug is a call
//! the lab makes on a validator's state from outside, as a bug inside the code would act.

use crate::Exchange;
use bulwark_types::{InstrumentKind, Money, PriceInputs};

/// The bugs planted in one copy of the state. Clones of the state (the speculative states
/// built on it) carry them; a snapshot restore does not.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct Planted {
    /// See [`Exchange::deliberate_bug_believe_proposer_marks`].
    believe_proposer_marks: bool,
}

impl Exchange {
    /// A conservation error: `amount` appears in the insurance fund from nowhere (no deposit,
    /// no payer), as a transfer that credits one pocket and debits none would do.
    pub fn deliberate_bug_mint_into_fund(&mut self, amount: Money) {
        assert!(amount.is_positive(), "a bug that mints something");
        self.treasury.deliberate_bug_mint_into_fund(amount);
    }

    /// A mark a proposer sets: from the next block on, this state believes the mark a
    /// block's price inputs give a trading perpetual, even under the validators' oracle,
    /// in place of the exchange's own mark (index, premium, book and last trade, clamped to
    /// half the perpetual band around the index). Planted on every validator alike, they
    /// still agree; the mark strays wherever the proposer puts it.
    pub fn deliberate_bug_believe_proposer_marks(&mut self) {
        assert!(self.oracle.is_some(), "the bug is in the oracle's marking");
        self.deliberate_bugs.believe_proposer_marks = true;
    }

    /// The planted bug's step of `apply_block`, after the exchange marked its perpetuals.
    pub(crate) fn deliberate_bug_believe_marks(&mut self, prices: &PriceInputs) {
        if !self.deliberate_bugs.believe_proposer_marks {
            return;
        }
        for input in prices.marks() {
            let i = input.instrument.get() as usize;
            if let Some(instrument) = self.instruments.get(i)
                && instrument.kind == InstrumentKind::Perpetual
            {
                self.instruments[i].mark = Some(input.price);
            }
        }
    }
}
