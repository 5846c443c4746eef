//! What the two-account attackers (the squeezer and the whale in [`super::attacker`], the
//! [`super::stale_withdrawer`], the [`super::funding_pusher`]) do alike: open a position
//! against themselves, push the mark with one-contract trades between their accounts, and
//! take out everything they may.
//!
//! Owns: the order sequences only; each attacker decides when.

use super::{Trader, View};
use bulwark_types::{Money, Side, SignedTx, TimeInForce, TxBody};

/// Opens `size` contracts between the two accounts at the index: `long` bids what it still
/// lacks (resting), `short` sells what it still lacks into it (immediate or cancel).
/// `long_held` and `short_held` are their positions now (contracts, signed).
pub(crate) fn open_position(
    long: &mut Trader,
    short: &mut Trader,
    view: &View,
    size: i64,
    (long_held, short_held): (i64, i64),
    out: &mut Vec<SignedTx>,
) {
    let index = view.index_ticks;
    out.push(long.cancel_all(view));
    let want = size - long_held.max(0);
    if want > 0 {
        out.push(long.order(view, Side::Buy, want, index, TimeInForce::GoodTilCancelled));
    }
    let give = size - (-short_held).max(0);
    if give > 0 {
        out.push(short.order(
            view,
            Side::Sell,
            give,
            index,
            TimeInForce::ImmediateOrCancel,
        ));
    }
}

/// The price (ticks) the next push step aims at: four fifths of the price band above the
/// mark, at most `push_bps` above the index, and at least `floor` ticks.
pub(crate) fn push_step(view: &View, push_bps: u32, floor: i64) -> i64 {
    let band_bps = view.state.params().band_perpetual.width_bps;
    let target = view.index_ticks + view.index_ticks * i64::from(push_bps) / 10_000;
    (view.mark_ticks + view.mark_ticks * band_bps * 4 / 5 / 10_000)
        .min(target)
        .max(floor)
}

/// One step of a mark push: `pusher` lifts `lift` contracts of the asks up to `step`, then the
/// two trade one contract at `step` (the wash trade the mark reads) and leave one contract
/// each a tick either side of it, so the book's touch sits at the step.
pub(crate) fn push_mark(
    pusher: &mut Trader,
    holder: &mut Trader,
    view: &View,
    lift: i64,
    step: i64,
    out: &mut Vec<SignedTx>,
) {
    out.push(pusher.cancel_all(view));
    out.push(holder.cancel_all(view));
    out.push(pusher.order(view, Side::Buy, lift, step, TimeInForce::ImmediateOrCancel));
    out.push(holder.order(view, Side::Sell, 1, step, TimeInForce::GoodTilCancelled));
    out.push(pusher.order(view, Side::Buy, 1, step, TimeInForce::ImmediateOrCancel));
    out.push(pusher.order(view, Side::Buy, 1, step - 1, TimeInForce::GoodTilCancelled));
    out.push(holder.order(view, Side::Sell, 1, step + 1, TimeInForce::GoodTilCancelled));
}

/// Asks to withdraw everything each trader may (its index in `traders` with the request).
pub(crate) fn withdraw_all(
    traders: &mut [Trader],
    view: &View,
    withdrawals: &mut Vec<(usize, SignedTx)>,
) {
    for (t, trader) in traders.iter_mut().enumerate() {
        let usdc = view.withdrawable_usdc(&trader.public_key());
        if usdc > 0 {
            withdrawals.push((
                t,
                trader.tx(TxBody::Withdraw {
                    amount: Money::from_usdc(usdc),
                }),
            ));
        }
    }
}
