//! Accounts: collateral, positions, the open-order totals that margin reserves against, and
//! the keys that may act for the account.
//!
//! Owns: per-account bookkeeping: cash, each instrument's [`Exposure`] (position, cost basis,
//! realised P&L, open bids and asks), the client-order-id index, agent count.
//! Never: prices anything (margin does) or touches a book (trading does).
//!
//! Accounting is cash-flow based, the same for options and perpetuals: every fill moves the
//! premium (price x quantity x tick value) from buyer to seller at once, and a position is
//! worth `size x mark`. Equity is `cash + sum(size x mark)`. Because every long has a short,
//! the positions' values sum to zero across accounts, and the sum of cash is conserved by every
//! fill, funding payment and settlement.

use crate::mmp::MmpState;
use bulwark_types::{
    AccountId, AssetCode, ClientOrderId, InstrumentId, Money, OrderId, Price, PublicKey, Qty, Side,
};
use std::collections::BTreeMap;

/// How an account's margin is computed. Stored per account; wire format, append only.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MarginMode {
    /// Per-instrument rules as Deribit's standard margin ([`crate::margin::StandardMargin`]).
    Standard,
    /// A scenario grid over the whole portfolio of each underlying
    /// ([`crate::portfolio::PortfolioMarginModel`]).
    Portfolio,
}

/// Totals of an account's resting orders on one side of one instrument.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenOrders {
    /// Open contracts.
    pub qty: i64,
    /// Sum of price (ticks) x open contracts: the premium these orders would pay or receive,
    /// in ticks of one contract.
    pub notional_ticks: i128,
    /// Number of orders.
    pub count: u32,
}

impl OpenOrders {
    pub fn add(&mut self, price: Price, qty: Qty) {
        self.qty += qty.contracts();
        self.notional_ticks += i128::from(price.ticks()) * i128::from(qty.contracts());
        self.count += 1;
    }

    /// Removes `qty` open contracts at `price`; `order_closed` when the order left the book.
    pub fn remove(&mut self, price: Price, qty: Qty, order_closed: bool) {
        self.qty -= qty.contracts();
        self.notional_ticks -= i128::from(price.ticks()) * i128::from(qty.contracts());
        if order_closed {
            self.count -= 1;
        }
        assert!(
            self.qty >= 0 && self.notional_ticks >= 0,
            "open order totals never go negative"
        );
        assert!(
            self.count > 0 || self.qty == 0,
            "no quantity without an order"
        );
    }
}

/// One account's stake in one instrument: its position and its resting orders.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Contracts held; negative when short.
    pub position: i64,
    /// Premium paid for the open position (negative when short: premium received). The
    /// average entry is `cost / position`.
    pub cost: Money,
    /// P&L realised by reducing the position, for reporting (cash moved at each fill).
    pub realised_pnl: Money,
    pub bids: OpenOrders,
    pub asks: OpenOrders,
    /// Open contracts of reduce-only orders; they all sit on the side that reduces the position.
    pub reduce_only_qty: i64,
}

impl Exposure {
    pub fn open(&self, side: Side) -> &OpenOrders {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    pub fn open_mut(&mut self, side: Side) -> &mut OpenOrders {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Nothing held and nothing resting: the entry can be dropped (its realised P&L was
    /// reported in the fills' events).
    pub fn is_empty(&self) -> bool {
        self.position == 0 && self.bids.count == 0 && self.asks.count == 0
    }

    /// Books a fill of `signed_qty` contracts (positive bought) for `premium` (what one contract
    /// cost, times the quantity, signed like the quantity: positive when paid). Updates the cost
    /// basis and realised P&L; cash moves elsewhere.
    pub fn apply_fill(&mut self, signed_qty: i64, premium: Money) {
        assert!(signed_qty != 0, "fills have size");
        let pos = self.position;
        if pos == 0 || pos.signum() == signed_qty.signum() {
            self.cost = self
                .cost
                .checked_add(premium)
                .expect("cost bounded by position_max x price_max");
        } else {
            let closing = signed_qty.abs().min(pos.abs());
            // Cost leaving the position, pro rata, rounded toward zero.
            let cost_out = Money::from_micros(
                self.cost.micros() * i128::from(closing) / i128::from(pos.abs()),
            );
            let premium_closing = Money::from_micros(
                premium.micros() * i128::from(closing) / i128::from(signed_qty.abs()),
            );
            // Selling out of a long: received |premium_closing|, gave up cost_out.
            let realised = Money::from_micros(-premium_closing.micros() - cost_out.micros());
            self.realised_pnl = self
                .realised_pnl
                .checked_add(realised)
                .expect("realised P&L sums one position's premium flows (money bounds)");
            self.cost = self
                .cost
                .checked_sub(cost_out)
                .expect("cost is one position's premium (money bounds)");
            let opening = signed_qty.abs() - closing;
            if opening > 0 {
                let premium_opening = premium
                    .checked_sub(premium_closing)
                    .expect("premium of one fill (money bounds)");
                debug_assert_eq!(
                    self.cost,
                    Money::ZERO,
                    "a flip closes the old position first"
                );
                self.cost = premium_opening;
            }
        }
        self.position += signed_qty;
        if self.position == 0 {
            // Rounding residue of the pro-rata split belongs to realised P&L.
            self.realised_pnl = self
                .realised_pnl
                .checked_sub(self.cost)
                .expect("realised P&L sums one position's premium flows (money bounds)");
            self.cost = Money::ZERO;
        }
    }
}

/// What a key may do for an account.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// The account's own key: everything.
    Owner,
    /// Trades (place, cancel, amend) but never withdraws or manages agents.
    Agent,
    /// A former agent: kept so that its nonce, and so its old transactions, stay spent.
    Revoked,
}

/// A key the exchange knows: its nonce floor and, once bound, its account and role.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The nonce of this key's last transaction; the next must carry a larger one.
    pub nonce_last: Option<u64>,
    pub binding: Option<(AccountId, KeyRole)>,
}

/// An account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub owner: PublicKey,
    pub margin_mode: MarginMode,
    /// Settlement-currency balance, micro-USDC. May be negative while positions carry value.
    pub cash: Money,
    /// Every withdrawal paid out of this account, micro-USDC: the accounts' sum is the
    /// ledger's withdrawals.
    pub withdrawn: Money,
    pub exposures: BTreeMap<InstrumentId, Exposure>,
    /// Open orders by the account's own id.
    pub client_orders: BTreeMap<ClientOrderId, (InstrumentId, OrderId)>,
    /// Agents currently authorised.
    pub agents: u8,
    /// Market maker protection per underlying.
    pub mmp: BTreeMap<AssetCode, MmpState>,
}

impl Account {
    pub fn new(id: AccountId, owner: PublicKey) -> Self {
        Self {
            id,
            owner,
            margin_mode: MarginMode::Standard,
            cash: Money::ZERO,
            withdrawn: Money::ZERO,
            exposures: BTreeMap::new(),
            client_orders: BTreeMap::new(),
            agents: 0,
            mmp: BTreeMap::new(),
        }
    }

    /// Open orders across all instruments.
    pub fn orders_open(&self) -> usize {
        self.client_orders.len()
    }

    pub fn position(&self, instrument: InstrumentId) -> i64 {
        self.exposures.get(&instrument).map_or(0, |e| e.position)
    }

    /// Drops the instrument's entry once nothing is held or resting there.
    pub fn tidy(&mut self, instrument: InstrumentId) {
        if self
            .exposures
            .get(&instrument)
            .is_some_and(Exposure::is_empty)
        {
            self.exposures.remove(&instrument);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_a_long_realises_the_difference() {
        let mut e = Exposure::default();
        e.apply_fill(10, Money::from_usdc(1_000)); // buy 10 at 100
        e.apply_fill(-4, Money::from_usdc(-480)); // sell 4 at 120
        assert_eq!(e.position, 6);
        assert_eq!(e.cost, Money::from_usdc(600));
        assert_eq!(e.realised_pnl, Money::from_usdc(80));
        e.apply_fill(-6, Money::from_usdc(-540)); // sell 6 at 90
        assert_eq!((e.position, e.cost), (0, Money::ZERO));
        assert_eq!(e.realised_pnl, Money::from_usdc(80 - 60));
    }

    #[test]
    fn closing_a_short_realises_premium_kept() {
        let mut e = Exposure::default();
        e.apply_fill(-5, Money::from_usdc(-500)); // sell 5 at 100
        e.apply_fill(5, Money::from_usdc(300)); // buy back at 60
        assert_eq!((e.position, e.cost), (0, Money::ZERO));
        assert_eq!(e.realised_pnl, Money::from_usdc(200));
    }

    #[test]
    fn flipping_closes_then_opens_at_the_fill_price() {
        let mut e = Exposure::default();
        e.apply_fill(2, Money::from_usdc(200)); // long 2 at 100
        e.apply_fill(-5, Money::from_usdc(-550)); // sell 5 at 110
        assert_eq!(e.position, -3);
        assert_eq!(e.realised_pnl, Money::from_usdc(20));
        assert_eq!(e.cost, Money::from_usdc(-330));
    }
}
