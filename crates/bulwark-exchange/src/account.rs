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
    pub client_orders: ClientOrders,
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
            client_orders: ClientOrders::default(),
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

    proptest::proptest! {
        /// Any sequence of inserts and removals leaves [`ClientOrders`] answering every read
        /// as a `BTreeMap` given the same sequence does, iteration order included.
        #[test]
        fn client_orders_answer_as_a_btree_map_does(
            ops in proptest::collection::vec((0u8..3, 0u64..40, 0u64..1_000), 0..300),
        ) {
            let mut ours = ClientOrders::default();
            let mut model: BTreeMap<ClientOrderId, (InstrumentId, OrderId)> = BTreeMap::new();
            for (op, client, order) in ops {
                let client = ClientOrderId::new(client);
                let value = (InstrumentId::new((order % 3) as u32), OrderId::new(order));
                match op {
                    0 | 1 => proptest::prop_assert_eq!(
                        ours.insert(client, value),
                        model.insert(client, value)
                    ),
                    _ => proptest::prop_assert_eq!(ours.remove(&client), model.remove(&client)),
                }
                proptest::prop_assert_eq!(ours.get(&client), model.get(&client));
                proptest::prop_assert_eq!(ours.contains_key(&client), model.contains_key(&client));
                proptest::prop_assert_eq!(ours.len(), model.len());
            }
            proptest::prop_assert!(ours.iter().eq(model.iter()));
            proptest::prop_assert!(ours.values().eq(model.values()));
        }
    }

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

/// An account's open orders by its own [`ClientOrderId`], each with its instrument and
/// [`OrderId`]: a map, in client-order-id order.
///
/// Held as one sorted vector, not a B-tree, because an account is copied whole the first time
/// a speculated block changes it (`accounts.rs`), and almost every order changes its own
/// account. A copy of this is one allocation and one `memcpy`; a `BTreeMap` of 60 entries was
/// six node allocations to copy and as many to free later, and at 500 (a market maker's
/// quotes, the venue's `orders_open_max`) about fifty. The price is an insertion or removal
/// in the middle moving the entries after it: at most `orders_open_max` entries of 24 bytes
/// (12 KB at 500), and a client's ids usually increase, so insertions land at the end.
/// Read as the attacker, who sends decreasing ids so that every insertion lands at the
/// front: each of their orders then moves up to their whole list, as much memory as the
/// block's one copy of their account, so at the default 500 an order costs every validator
/// about a microsecond more. At the configurable ceiling of 1,000,000 open orders that is
/// 24 MB an order, which is why a venue should not raise the limit far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientOrders {
    /// Sorted by client order id, each id once.
    entries: Vec<(ClientOrderId, (InstrumentId, OrderId))>,
}

impl ClientOrders {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, client: &ClientOrderId) -> Result<usize, usize> {
        // Ids mostly arrive increasing: check the end before searching.
        match self.entries.last() {
            Some((last, _)) if last < client => Err(self.entries.len()),
            _ => self.entries.binary_search_by(|(id, _)| id.cmp(client)),
        }
    }

    pub fn get(&self, client: &ClientOrderId) -> Option<&(InstrumentId, OrderId)> {
        self.position(client).ok().map(|i| &self.entries[i].1)
    }

    pub fn contains_key(&self, client: &ClientOrderId) -> bool {
        self.position(client).is_ok()
    }

    /// Sets `client`'s order; returns the one it replaced, if any.
    pub fn insert(
        &mut self,
        client: ClientOrderId,
        order: (InstrumentId, OrderId),
    ) -> Option<(InstrumentId, OrderId)> {
        match self.position(&client) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, order)),
            Err(i) => {
                self.entries.insert(i, (client, order));
                None
            }
        }
    }

    pub fn remove(&mut self, client: &ClientOrderId) -> Option<(InstrumentId, OrderId)> {
        self.position(client).ok().map(|i| self.entries.remove(i).1)
    }

    /// Every open order, in client-order-id order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&ClientOrderId, &(InstrumentId, OrderId))> + ExactSizeIterator
    {
        self.entries.iter().map(|(id, order)| (id, order))
    }

    /// Every open order's instrument and order id, in client-order-id order.
    pub fn values(
        &self,
    ) -> impl DoubleEndedIterator<Item = &(InstrumentId, OrderId)> + ExactSizeIterator {
        self.entries.iter().map(|(_, order)| order)
    }
}
