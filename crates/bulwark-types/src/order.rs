//! What a client asks for when it trades: sides, order types, time in force, self-trade
//! prevention, and the order request with its stateless checks.
//!
//! Owns: the vocabulary of an order and every check that needs no exchange state (positive
//! sizes and prices, within bounds, sensible combinations). Stateful checks (ticks, lots,
//! bands, margin) belong to `bulwark-exchange`'s admission.

use crate::ids::{ClientOrderId, InstrumentId, OrderId};
use crate::num::{Qty, UnitPrice};
use crate::reject::RejectReason;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt, Write};

/// Largest order size accepted, in contracts. With prices below [`PRICE_MAX`] and tick values
/// below 2^40 micro-USDC, every notional fits `i128` many times over.
pub const QTY_MAX: i64 = 1_000_000_000_000;
/// Largest order price accepted, in micro-USDC per underlying unit (1e12 USDC).
pub const PRICE_MAX: i64 = 1_000_000_000_000_000_000;

/// Which way an order trades.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub const fn opposite(self) -> Self {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// +1 for a buy, -1 for a sell: the sign a fill gives to a position change.
    pub const fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }
}

/// How long an order's unfilled part may rest.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Rests until filled or cancelled.
    GoodTilCancelled,
    /// Fills what it can at once; the rest is cancelled.
    ImmediateOrCancel,
    /// Fills entirely at once or not at all.
    FillOrKill,
}

/// What happens when an order would trade against another order of the same account.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SelfTradePrevention {
    /// Cancel the resting order and keep matching.
    CancelMaker,
    /// Cancel the rest of the incoming order.
    CancelTaker,
    /// Cancel both.
    CancelBoth,
}

/// Price and type of an order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum OrderType {
    /// Trades at `price` or better. `post_only` orders never take: one that would cross is
    /// rejected (as Deribit's `reject_post_only` does).
    Limit {
        price: UnitPrice,
        time_in_force: TimeInForce,
        post_only: bool,
    },
    /// Trades immediately at the best prices inside the instrument's price band; never rests.
    Market,
}

/// A request to place an order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrderRequest {
    pub instrument: InstrumentId,
    pub client_order_id: ClientOrderId,
    pub side: Side,
    /// Contracts; a positive multiple of the instrument's lot size.
    pub qty: Qty,
    pub order_type: OrderType,
    /// Only reduces the account's position: never opens or flips it.
    pub reduce_only: bool,
    pub self_trade: SelfTradePrevention,
}

impl OrderRequest {
    /// A limit order with the usual terms: not post-only, not reduce-only, self-trades
    /// cancel the resting order.
    pub fn limit(
        instrument: InstrumentId,
        client_order_id: ClientOrderId,
        side: Side,
        qty: Qty,
        price: UnitPrice,
        time_in_force: TimeInForce,
    ) -> Self {
        Self {
            instrument,
            client_order_id,
            side,
            qty,
            order_type: OrderType::Limit {
                price,
                time_in_force,
                post_only: false,
            },
            reduce_only: false,
            self_trade: SelfTradePrevention::CancelMaker,
        }
    }

    /// Checks that need no exchange state, in precedence order.
    pub fn check(&self) -> Result<(), RejectReason> {
        check_qty(self.qty)?;
        if let OrderType::Limit {
            price,
            time_in_force,
            post_only,
        } = self.order_type
        {
            check_price(price)?;
            if post_only && time_in_force != TimeInForce::GoodTilCancelled {
                return Err(RejectReason::PostOnlyMustRest);
            }
        }
        Ok(())
    }
}

pub(crate) fn check_qty(qty: Qty) -> Result<(), RejectReason> {
    if !qty.is_positive() {
        return Err(RejectReason::QtyNotPositive);
    }
    if qty.contracts() > QTY_MAX {
        return Err(RejectReason::QtyTooLarge);
    }
    Ok(())
}

pub(crate) fn check_price(price: UnitPrice) -> Result<(), RejectReason> {
    if !price.is_positive() {
        return Err(RejectReason::PriceNotPositive);
    }
    if price.micros() > PRICE_MAX {
        return Err(RejectReason::PriceTooLarge);
    }
    Ok(())
}

/// Why an order (or its unfilled part) left the book without trading. Wire format: append only.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// Its account asked (cancel, cancel-all).
    Requested,
    /// Immediate-or-cancel (or market) order: the part that did not trade at once.
    ImmediateOrCancel,
    /// Fill-or-kill order that could not fill entirely.
    FillOrKill,
    /// Self-trade prevention stopped it from trading with its own account.
    SelfTrade,
    /// A taker reached the most fills one order may make; the rest is cancelled.
    MatchLimit,
    /// The book holds as many resting orders as it may.
    BookFull,
    /// The instrument expired.
    Expired,
    /// A reduce-only order would have increased the position after the position shrank.
    ReduceOnly,
    /// What was left of an order after a reopening auction would have crossed the book
    /// (possible only when self-trade prevention took volume out of the uncross).
    AuctionCrossed,
    /// The account's market maker protection tripped in this underlying.
    MarketMakerProtection,
    /// The account fell below maintenance margin: the liquidation engine cancelled its orders.
    Liquidation,
    /// A block set the index past it by more than the band's `stale_quote_bps` (a bid above
    /// the index, an ask below it): the market left the quote behind.
    IndexMoved,
}

/// Names an open order: by the exchange's id or by the account's own id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum OrderRef {
    Exchange(OrderId),
    Client(ClientOrderId),
}

// ---- codec ----

macro_rules! unit_enum_codec {
    ($name:ident { $($variant:ident = $tag:literal),+ $(,)? }) => {
        impl Write for $name {
            fn write(&self, buf: &mut impl BufMut) {
                let tag: u8 = match self { $($name::$variant => $tag),+ };
                tag.write(buf);
            }
        }
        impl FixedSize for $name {
            const SIZE: usize = 1;
        }
        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                match u8::read(buf)? {
                    $($tag => Ok($name::$variant),)+
                    other => Err(CodecError::InvalidEnum(other)),
                }
            }
        }
    };
}

unit_enum_codec!(Side { Buy = 0, Sell = 1 });
unit_enum_codec!(TimeInForce { GoodTilCancelled = 0, ImmediateOrCancel = 1, FillOrKill = 2 });
unit_enum_codec!(SelfTradePrevention { CancelMaker = 0, CancelTaker = 1, CancelBoth = 2 });
unit_enum_codec!(CancelReason {
    Requested = 0,
    ImmediateOrCancel = 1,
    FillOrKill = 2,
    SelfTrade = 3,
    MatchLimit = 4,
    BookFull = 5,
    Expired = 6,
    ReduceOnly = 7,
    AuctionCrossed = 8,
    MarketMakerProtection = 9,
    Liquidation = 10,
    IndexMoved = 11,
});

impl Write for OrderType {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            OrderType::Limit {
                price,
                time_in_force,
                post_only,
            } => {
                0u8.write(buf);
                price.write(buf);
                time_in_force.write(buf);
                post_only.write(buf);
            }
            OrderType::Market => 1u8.write(buf),
        }
    }
}

impl EncodeSize for OrderType {
    fn encode_size(&self) -> usize {
        match self {
            OrderType::Limit { .. } => 1 + UnitPrice::SIZE + TimeInForce::SIZE + bool::SIZE,
            OrderType::Market => 1,
        }
    }
}

impl Read for OrderType {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(OrderType::Limit {
                price: UnitPrice::read(buf)?,
                time_in_force: TimeInForce::read(buf)?,
                post_only: bool::read(buf)?,
            }),
            1 => Ok(OrderType::Market),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

impl Write for OrderRef {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            OrderRef::Exchange(id) => {
                0u8.write(buf);
                id.write(buf);
            }
            OrderRef::Client(id) => {
                1u8.write(buf);
                id.write(buf);
            }
        }
    }
}

impl FixedSize for OrderRef {
    const SIZE: usize = 1 + 8;
}

impl Read for OrderRef {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(OrderRef::Exchange(OrderId::read(buf)?)),
            1 => Ok(OrderRef::Client(ClientOrderId::read(buf)?)),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

impl Write for OrderRequest {
    fn write(&self, buf: &mut impl BufMut) {
        self.instrument.write(buf);
        self.client_order_id.write(buf);
        self.side.write(buf);
        self.qty.write(buf);
        self.order_type.write(buf);
        self.reduce_only.write(buf);
        self.self_trade.write(buf);
    }
}

impl EncodeSize for OrderRequest {
    fn encode_size(&self) -> usize {
        InstrumentId::SIZE
            + ClientOrderId::SIZE
            + Side::SIZE
            + Qty::SIZE
            + self.order_type.encode_size()
            + bool::SIZE
            + SelfTradePrevention::SIZE
    }
}

impl Read for OrderRequest {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            instrument: InstrumentId::read(buf)?,
            client_order_id: ClientOrderId::read(buf)?,
            side: Side::read(buf)?,
            qty: Qty::read(buf)?,
            order_type: OrderType::read(buf)?,
            reduce_only: bool::read(buf)?,
            self_trade: SelfTradePrevention::read(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(
        qty: i64,
        price_micros: i64,
        time_in_force: TimeInForce,
        post_only: bool,
    ) -> OrderRequest {
        OrderRequest {
            instrument: InstrumentId::new(0),
            client_order_id: ClientOrderId::new(1),
            side: Side::Buy,
            qty: Qty::from_contracts(qty),
            order_type: OrderType::Limit {
                price: UnitPrice::from_micros(price_micros),
                time_in_force,
                post_only,
            },
            reduce_only: false,
            self_trade: SelfTradePrevention::CancelMaker,
        }
    }

    #[test]
    fn stateless_checks_run_in_precedence_order() {
        let gtc = TimeInForce::GoodTilCancelled;
        assert_eq!(limit(1, 1, gtc, false).check(), Ok(()));
        assert_eq!(
            limit(0, 0, gtc, false).check(),
            Err(RejectReason::QtyNotPositive)
        );
        assert_eq!(
            limit(-3, 1, gtc, false).check(),
            Err(RejectReason::QtyNotPositive)
        );
        assert_eq!(
            limit(QTY_MAX + 1, 1, gtc, false).check(),
            Err(RejectReason::QtyTooLarge)
        );
        assert_eq!(
            limit(1, 0, gtc, false).check(),
            Err(RejectReason::PriceNotPositive)
        );
        assert_eq!(
            limit(1, PRICE_MAX + 1, gtc, false).check(),
            Err(RejectReason::PriceTooLarge)
        );
        assert_eq!(
            limit(1, 1, TimeInForce::ImmediateOrCancel, true).check(),
            Err(RejectReason::PostOnlyMustRest)
        );
    }
}
