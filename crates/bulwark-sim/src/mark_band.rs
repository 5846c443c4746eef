//! The lab's invariant on marks: on every honest validator, every trading perpetual's mark
//! stays within half the perpetual band around its index, as the exchange's own marking
//! clamps it under the validators' oracle.
//!
//! Owns: that one check, over a validator's finalized state. It reads the state's fields and
//! recomputes the bound itself (the fuzz-oracle rule: it never calls the marking code it
//! checks), so a mark set by anyone else (a proposer's, believed) is caught at the height it
//! appears.
//! Never: changes the state; judges an exchange without an oracle (there a trusted feed sets
//! marks) or a perpetual that is not trading (a halted one keeps its mark while the index
//! moves).

use bulwark_exchange::{Exchange, InstrumentStatus};
use bulwark_types::InstrumentKind;

/// Basis points in one.
const BPS: i128 = 10_000;

/// `Err` naming the first trading perpetual of `state` whose mark is further from its index
/// than half the perpetual band.
pub fn check(state: &Exchange) -> Result<(), String> {
    if state.oracle_state().is_none() {
        return Ok(());
    }
    let half_band_bps = i128::from(state.params().band_perpetual.width_bps / 2);
    assert!(half_band_bps >= 0, "a band is not negative");
    for instrument in state.instruments() {
        if instrument.kind != InstrumentKind::Perpetual
            || instrument.status != InstrumentStatus::Trading
        {
            continue;
        }
        let (Some(mark), Some(index)) = (
            instrument.mark,
            state.index_price(instrument.spec.underlying()),
        ) else {
            continue;
        };
        let index_micros = i128::from(index.micros());
        let band_micros = index_micros * half_band_bps / BPS;
        let stray_micros = (i128::from(mark.micros()) - index_micros).abs();
        if stray_micros > band_micros {
            return Err(format!(
                "perpetual {} marked at {} micro-USDC, {} from its index {} (half the band: {})",
                instrument.id.get(),
                mark.micros(),
                stray_micros,
                index_micros,
                band_micros
            ));
        }
    }
    Ok(())
}
