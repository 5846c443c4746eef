//! What goes into the book and what comes out: new orders, resting orders, fills, placements.

use bulwark_types::{
    AccountId, CancelReason, ClientOrderId, OrderId, Price, Qty, SelfTradePrevention, Side,
    TimeInForce,
};

/// An order as the book receives it: admitted by the exchange, with its exchange id assigned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub order_id: OrderId,
    pub account: AccountId,
    pub client_order_id: ClientOrderId,
    pub side: Side,
    /// Limit price in ticks. A market order arrives with the edge of its price band here.
    pub price: Price,
    /// Contracts, positive.
    pub qty: Qty,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub reduce_only: bool,
    pub self_trade: SelfTradePrevention,
}

/// An order resting in the book.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RestingOrder {
    pub order_id: OrderId,
    pub account: AccountId,
    pub client_order_id: ClientOrderId,
    pub side: Side,
    pub price: Price,
    /// Contracts still open; always positive while the order rests.
    pub qty: Qty,
    pub reduce_only: bool,
    /// Kept so that an amend that re-enters the order keeps its terms.
    pub post_only: bool,
    /// Kept for the same reason: applies when an amended order takes.
    pub self_trade: SelfTradePrevention,
}

/// One match between a resting (maker) order and an incoming (taker) order, at the maker's price.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Fill {
    pub maker_order_id: OrderId,
    pub maker_account: AccountId,
    pub maker_client_order_id: ClientOrderId,
    pub maker_reduce_only: bool,
    pub taker_order_id: OrderId,
    pub taker_account: AccountId,
    pub taker_side: Side,
    pub price: Price,
    pub qty: Qty,
    /// What remains open of the maker order after this fill; zero when it left the book.
    pub maker_qty_left: Qty,
}

/// What happened to the part of an incoming order that did not trade.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Remainder {
    /// Nothing remained: the order filled entirely.
    None,
    /// The remainder rests in the book.
    Rested(Qty),
    /// The remainder was cancelled, for this reason.
    Cancelled { qty: Qty, reason: CancelReason },
}

/// The result of placing an order. Fills and self-trade cancellations go to the [`MatchSink`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub filled: Qty,
    pub remainder: Remainder,
}

/// Why the book refused an order outright; nothing changed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookReject {
    #[error("post-only order would cross the book")]
    PostOnlyWouldCross,
    #[error("order id already rests in the book")]
    OrderIdInUse,
}

/// Where matching writes what it did. The caller owns it and clears it between placements,
/// so matching allocates nothing once the vectors have grown.
#[derive(Clone, Debug, Default)]
pub struct MatchSink {
    pub fills: Vec<Fill>,
    /// Resting orders of the taker's own account cancelled by self-trade prevention.
    pub maker_cancels: Vec<RestingOrder>,
}

impl MatchSink {
    pub fn clear(&mut self) {
        self.fills.clear();
        self.maker_cancels.clear();
    }
}
