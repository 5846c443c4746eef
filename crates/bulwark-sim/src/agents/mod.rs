//! Market agents: seeded, deterministic participants that make the lab's market real and
//! attack it.
//!
//! Owns: the `[[agents]]` section of a scenario file, validated into [`AgentSpec`]s (unknown
//! fields refused, a field that does not apply to the kind refused, every error naming the
//! field); the runner ([`start`]) that funds every agent's accounts through the bridge, then
//! every [`crate::economy::Economy::agent_interval_ms`] reads one running validator's
//! finalized state and lets each agent sign and submit its transactions to its home
//! validator's mempool (agent `a` of `n` validators: validator `a mod n`); and the
//! [`Roster`] of every agent account, which the economic scorecard reads.
//! Never: reads anything from outside the simulation (prices, books and positions come from a
//! validator's finalized state), draws OS entropy, or reads the wall clock.
//! Bounds: at most [`AGENTS_MAX`] agents and [`AGENT_SPECS_MAX`] `[[agents]]` entries; the
//! funding is submitted at most `SETUP_ATTEMPTS_MAX` times; each
//! agent sends a bounded number of transactions per tick (its kind's file says how many).
//!
//! One file per kind: [`market_maker`] (quotes the perpetual in levels around the index with
//! inventory skew, market maker protection set), [`noise`] (random passive and aggressive
//! orders), [`leveraged`] (builds a leveraged position and holds it), [`arbitrageur`] (trades
//! the perpetual back towards the index), [`attacker`] (two accounts trading against each
//! other: the squeezer of a Mango-style mark push, and the whale of a JELLY-style position too
//! large for the book), [`stale_withdrawer`] (withdraws from the losing side of a position
//! against himself while the oracle is down), [`funding_pusher`] (a short against the market
//! and a wash-traded mark push before each funding time), [`spammer`] (floods one validator's
//! mempool from many throwaway keys; and the cancel flooder, whose cancels of nothing go first
//! in every block, from throwaway keys to every validator), [`spoofer`] (large orders just
//! inside the touch it never means to trade, luring the [`imbalance`] traders, who follow the
//! touch's size imbalance),
//! [`squatter`] (races a [`delegator`]'s agent-key registration to bind the key to its own
//! account), [`surface_maker`] (quotes every listed option around its Black-76 price at its
//! own vol, skewed against its vega and delta, market maker protection set),
//! [`option_squeezer`] (quotes and trades an option expiry against himself from several
//! accounts to push the smile's refit, then borrows against the marked-up long).
//!
//! Options: with `[economy] options`, the set-up lists every series (the admin's
//! `ListInstrument`, before the bridge funds the agents), and each tick's [`View`] carries
//! the listed option series ([`OptionView`]).

pub mod arbitrageur;
pub mod attacker;
pub mod delegator;
pub mod front_runner;
pub mod funding_pusher;
pub mod imbalance;
pub mod leveraged;
pub mod market_maker;
pub mod noise;
pub mod option_squeezer;
pub mod self_trade;
pub mod spammer;
pub mod spoofer;
pub mod squatter;
pub mod stale_withdrawer;
pub mod surface_maker;

use crate::cluster::{Context, PENDING_MAX, Traffic, sign};
use crate::economy::{Economy, Protection};
use crate::scenario::{ScenarioError, range};
use bulwark_exchange::Exchange;
use bulwark_node::app::now_ms;
use bulwark_node::mempool::{TxDigest, tx_digest};
use bulwark_node::shared::{Shared, lock};
use bulwark_types::{
    ClientOrderId, InstrumentId, InstrumentName, Money, OrderRequest, PrivateKey, PublicKey, Qty,
    Right, Side, SignedTx, TimeInForce, TxBody, UnitPrice,
};
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Handle, Spawner as _, Supervisor as _};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most agents in a scenario.
pub const AGENTS_MAX: usize = 512;
/// Most `[[agents]]` entries.
pub const AGENT_SPECS_MAX: usize = 32;
/// Largest deposit of one agent account, USDC.
pub const DEPOSIT_USDC_MAX: i64 = 1_000_000_000;
/// The perpetual every agent trades.
pub const PERPETUAL: &str = "BTC_USDC-PERPETUAL";
/// Bridge nonces of the agents' deposits start here (above every trader setup nonce).
const BRIDGE_NONCE_BASE: u64 = 1_000_000;
/// Simulated milliseconds the funding waits before it is submitted again.
const SETUP_WAIT_MS: u64 = 5_000;
/// Most times the funding is submitted; agents that were never funded do nothing.
const SETUP_ATTEMPTS_MAX: u64 = 20;
/// Most deposits the funding submits at once (below the mempool's 256 pending transactions
/// of one signer, the bridge's).
const FUNDING_BATCH_MAX: usize = 200;
/// Keys of an option squeezer's accounts (more than two each) start here, apart from the
/// others' `5_000 + 2 * agent`.
const OPTION_SQUEEZER_BASE: u64 = 500_000;
/// Admin nonces of the option listings start here (above the traders' set-up nonces).
const ADMIN_NONCE_BASE: u64 = 1_000_000;

/// What kind of participant an agent is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    MarketMaker,
    Noise,
    Leveraged,
    Arbitrageur,
    /// An attacker pushing the mark with trades between his two accounts (Mango Markets).
    Squeezer,
    /// An attacker opening a position too large for the book between his two accounts and
    /// letting a price move force one side onto the backstop (Hyperliquid JELLY).
    Whale,
    /// An attacker withdrawing from the losing side of a position against himself while the
    /// oracle is stale and the true price has moved.
    StaleWithdrawer,
    /// An attacker short against the market who wash-trades the mark up before each funding
    /// time, so longs pay him.
    FundingPusher,
    /// An attacker flooding one validator's mempool from many minimally funded keys.
    Spammer,
    /// An attacker sending cancels of nothing (free, and first in every block) from
    /// minimally funded keys to every validator.
    CancelFlooder,
    /// An attacker placing large orders just inside the touch that it cancels before they
    /// trade, while its small order on the other side trades with those they lure.
    Spoofer,
    /// A trader that follows the touch: buys the ask when the best bid's size is several
    /// times the best ask's, sells the bid in the opposite case (what a spoofer lures).
    Imbalance,
    /// An attacker racing a delegator's agent-key registration to bind the key first.
    Squatter,
    /// An account owner that authorises an agent key and trades through it.
    Delegator,
    /// A market maker quoting every listed option two-sided around its model price.
    SurfaceMaker,
    /// An attacker pushing an option expiry's smile with his own quotes and trades among
    /// several accounts, then borrowing against his marked-up long (Mango Markets).
    OptionSqueezer,
    /// The account a Byzantine leader sandwiches takers through (`byzantine::FrontRunner`);
    /// it submits nothing itself.
    FrontRunner,
}

impl AgentKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::MarketMaker => "market-maker",
            Self::Noise => "noise",
            Self::Leveraged => "leveraged",
            Self::Arbitrageur => "arbitrageur",
            Self::Squeezer => "squeezer",
            Self::Whale => "whale",
            Self::StaleWithdrawer => "stale-withdrawer",
            Self::FundingPusher => "funding-pusher",
            Self::Spammer => "spammer",
            Self::CancelFlooder => "cancel-flooder",
            Self::Spoofer => "spoofer",
            Self::Imbalance => "imbalance",
            Self::Squatter => "squatter",
            Self::Delegator => "delegator",
            Self::SurfaceMaker => "surface-maker",
            Self::OptionSqueezer => "option-squeezer",
            Self::FrontRunner => "front-runner",
        }
    }

    /// Whether agents of this kind attack the venue (their profit is the attacker's).
    pub fn is_attacker(self) -> bool {
        matches!(
            self,
            Self::Squeezer
                | Self::Whale
                | Self::StaleWithdrawer
                | Self::FundingPusher
                | Self::Spammer
                | Self::CancelFlooder
                | Self::Spoofer
                | Self::Squatter
                | Self::OptionSqueezer
                | Self::FrontRunner
        )
    }

    /// The optional fields this kind takes.
    fn takes(self) -> &'static [&'static str] {
        match self {
            Self::MarketMaker => &["levels"],
            Self::Noise => &["options_percent", "market_orders"],
            Self::Arbitrageur | Self::Imbalance | Self::FrontRunner => &[],
            Self::SurfaceMaker => &["vol_bps"],
            Self::OptionSqueezer => &["at_s", "hold_s", "push_bps"],
            Self::Leveraged => &["leverage", "long_percent", "cross_ticks", "market_orders"],
            Self::Squeezer => &["at_s", "hold_s", "push_bps"],
            Self::Whale
            | Self::StaleWithdrawer
            | Self::Spammer
            | Self::CancelFlooder
            | Self::Spoofer => &["at_s", "hold_s"],
            Self::FundingPusher => &["at_s", "hold_s", "push_bps"],
            Self::Squatter | Self::Delegator => &["at_s"],
        }
    }
}

/// One `[[agents]]` entry, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentSpec {
    pub kind: AgentKind,
    pub count: usize,
    /// USDC the bridge deposits into each of the agent's accounts.
    pub deposit_usdc: i64,
    /// Contracts of a typical order (market makers: per level; attackers: the position).
    pub size: i64,
    /// Market makers: price levels quoted on each side.
    pub levels: u32,
    /// Leveraged traders: the leverage they build to (notional over deposit).
    pub leverage: u32,
    /// Leveraged traders: the share of them that go long (the rest go short), percent.
    pub long_percent: u32,
    /// Leveraged traders: how many ticks beyond the index their orders' limits reach (the
    /// slippage they accept; default 5).
    pub cross_ticks: u32,
    /// Leveraged traders: market orders instead (Deribit's `type: market`: the exchange fills
    /// them up to their reach from the mark, `PriceBand::market_reach_bps`); noise traders:
    /// their crossing orders are market orders.
    pub market_orders: bool,
    /// Attackers: when the attack starts, simulated milliseconds since the run began.
    pub at_ms: u64,
    /// Attackers: how long the push (squeezer) or the hold (whale) lasts before the exit.
    pub hold_ms: u64,
    /// Squeezer: how far above the index it pushes the perpetual's trades, basis points;
    /// option squeezer: how far above the exchange's model vol it pushes the smile, bps of it.
    pub push_bps: u32,
    /// Surface maker: its view of the volatility, bps (default 6000, the exchange's model vol).
    pub vol_bps: u32,
    /// Noise traders: the share of their orders placed in a listed option, percent (0: the
    /// perpetual alone).
    pub options_percent: u32,
}

/// An `[[agents]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    kind: AgentKind,
    count: usize,
    deposit_usdc: i64,
    size: i64,
    levels: Option<u32>,
    leverage: Option<u32>,
    long_percent: Option<u32>,
    cross_ticks: Option<u32>,
    market_orders: Option<bool>,
    at_s: Option<f64>,
    hold_s: Option<f64>,
    push_bps: Option<u32>,
    vol_bps: Option<u32>,
    options_percent: Option<u32>,
}

/// Validates the `[[agents]]` entries.
pub(crate) fn validate(raw: Vec<RawAgent>) -> Result<Vec<AgentSpec>, ScenarioError> {
    if raw.len() > AGENT_SPECS_MAX {
        return Err(ScenarioError::Agents(format!(
            "agents: {} entries, more than {AGENT_SPECS_MAX}",
            raw.len()
        )));
    }
    let mut specs = Vec::with_capacity(raw.len());
    let mut total = 0;
    for (index, a) in raw.into_iter().enumerate() {
        let field = |name: &str| format!("agents[{index}].{name}");
        let given = [
            ("levels", a.levels.is_some()),
            ("leverage", a.leverage.is_some()),
            ("long_percent", a.long_percent.is_some()),
            ("cross_ticks", a.cross_ticks.is_some()),
            ("market_orders", a.market_orders.is_some()),
            ("at_s", a.at_s.is_some()),
            ("hold_s", a.hold_s.is_some()),
            ("push_bps", a.push_bps.is_some()),
            ("vol_bps", a.vol_bps.is_some()),
            ("options_percent", a.options_percent.is_some()),
        ];
        for (name, present) in given {
            if present && !a.kind.takes().contains(&name) {
                return Err(ScenarioError::Agents(format!(
                    "agents[{index}] ({}): `{name}` does not apply to this kind",
                    a.kind.name()
                )));
            }
        }
        for name in a.kind.takes() {
            let present = given.iter().any(|(n, p)| n == name && *p);
            let optional = matches!(
                (a.kind, *name),
                (
                    _,
                    "long_percent"
                        | "cross_ticks"
                        | "market_orders"
                        | "vol_bps"
                        | "options_percent"
                ) | (AgentKind::StaleWithdrawer, "hold_s")
            );
            if !present && !optional {
                return Err(ScenarioError::Agents(format!(
                    "agents[{index}] ({}): missing `{name}`",
                    a.kind.name()
                )));
            }
        }
        range(&field("count"), a.count as u64, 1, AGENTS_MAX as u64)?;
        range(
            &field("deposit_usdc"),
            u64::try_from(a.deposit_usdc).unwrap_or(0),
            1,
            DEPOSIT_USDC_MAX as u64,
        )?;
        range(
            &field("size"),
            u64::try_from(a.size).unwrap_or(0),
            1,
            1_000_000,
        )?;
        let levels = a.levels.unwrap_or(0);
        if a.kind == AgentKind::MarketMaker {
            range(&field("levels"), u64::from(levels), 1, 50)?;
        }
        let leverage = a.leverage.unwrap_or(0);
        if a.kind == AgentKind::Leveraged {
            range(&field("leverage"), u64::from(leverage), 1, 100)?;
        }
        let long_percent = a.long_percent.unwrap_or(100);
        range(&field("long_percent"), u64::from(long_percent), 0, 100)?;
        let cross_ticks = a.cross_ticks.unwrap_or(5);
        range(&field("cross_ticks"), u64::from(cross_ticks), 1, 10_000)?;
        let push_bps = a.push_bps.unwrap_or(0);
        if matches!(
            a.kind,
            AgentKind::Squeezer | AgentKind::FundingPusher | AgentKind::OptionSqueezer
        ) {
            range(&field("push_bps"), u64::from(push_bps), 1, 50_000)?;
        }
        let vol_bps = a.vol_bps.unwrap_or(6_000);
        range(&field("vol_bps"), u64::from(vol_bps), 500, 30_000)?;
        let options_percent = a.options_percent.unwrap_or(0);
        range(
            &field("options_percent"),
            u64::from(options_percent),
            0,
            100,
        )?;
        let seconds = |name: &str, s: Option<f64>| {
            s.map_or(Ok(0), |s| {
                crate::scenario::millis(&field(name), s, crate::scenario::SECONDS_MAX * 1_000)
            })
        };
        total += a.count;
        if total > AGENTS_MAX {
            return Err(ScenarioError::Agents(format!(
                "agents: {total} agents, more than {AGENTS_MAX}"
            )));
        }
        specs.push(AgentSpec {
            kind: a.kind,
            count: a.count,
            deposit_usdc: a.deposit_usdc,
            size: a.size,
            levels,
            leverage,
            long_percent,
            cross_ticks,
            market_orders: a.market_orders.unwrap_or(false),
            at_ms: seconds("at_s", a.at_s)?,
            hold_ms: seconds("hold_s", a.hold_s)?,
            push_bps,
            vol_bps,
            options_percent,
        });
    }
    Ok(specs)
}

/// One account an agent trades through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentAccount {
    pub agent: usize,
    pub kind: AgentKind,
    /// Hex of the owner key.
    pub owner: String,
    pub deposited_usdc: i64,
}

/// Every agent account, and what the agents did.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    pub accounts: Vec<(AgentAccount, PublicKey)>,
    /// Withdrawals the agents submitted: the account's index in `accounts` and the digest.
    pub withdrawals: Vec<(usize, TxDigest)>,
    /// The amount each of `withdrawals` asked for, in the same order.
    pub withdrawal_amounts: Vec<Money>,
    /// Orders (placements and amendments) the agents submitted.
    pub orders_submitted: u64,
    /// Transactions of any kind the agents submitted, and the validator admitted.
    pub submitted: u64,
    pub admitted: u64,
    /// Simulated milliseconds (since the run began) when every agent account was funded.
    pub funded_at_ms: Option<u64>,
    /// Attackers' admitted transactions not yet seen finalized, as [`Traffic::pending`]
    /// (at most [`PENDING_MAX`]): kept apart so the lab can time honest submissions alone.
    pub attack_pending: std::collections::VecDeque<crate::cluster::Submission>,
}

/// Most withdrawals the roster keeps.
const WITHDRAWALS_MAX: usize = 65_536;

/// What an agent sees at a tick: one validator's finalized state.
pub struct View<'a> {
    pub state: &'a Exchange,
    pub perpetual: InstrumentId,
    /// Simulated milliseconds since the run began.
    pub now_ms: u64,
    /// The index and the perpetual's mark, in ticks of the perpetual.
    pub index_ticks: i64,
    pub mark_ticks: i64,
    pub best_bid: Option<i64>,
    pub best_ask: Option<i64>,
    pub tick_micros: i64,
    /// Whether market makers set market maker protection.
    pub mmp: bool,
    /// Every listed option series that trades, in listing order (empty without options).
    pub options: Vec<OptionView>,
}

/// One listed option series as an agent sees it.
#[derive(Copy, Clone, Debug)]
pub struct OptionView {
    pub id: InstrumentId,
    pub right: Right,
    /// Strike and expiry (Unix milliseconds).
    pub strike_usdc: f64,
    pub expiry_ms: u64,
    pub tick_micros: i64,
    /// The exchange's mark, ticks.
    pub mark_ticks: Option<i64>,
    pub best_bid: Option<i64>,
    pub best_ask: Option<i64>,
}

impl View<'_> {
    /// The position of the account `key` owns in the perpetual, contracts.
    pub fn position(&self, key: &PublicKey) -> i64 {
        self.account(key).map_or(0, |id| {
            self.state
                .account(id)
                .map_or(0, |a| a.position(self.perpetual))
        })
    }

    pub fn account(&self, key: &PublicKey) -> Option<bulwark_types::AccountId> {
        self.state.key_binding(key).map(|(id, _)| id)
    }

    /// What the account `key` owns may withdraw now, whole USDC.
    pub fn withdrawable_usdc(&self, key: &PublicKey) -> i64 {
        self.account(key)
            .and_then(|id| self.state.account_margin(id))
            .map_or(0, |m| {
                i64::try_from(m.withdrawable.micros() / 1_000_000).unwrap_or(0)
            })
    }

    /// The index, USDC.
    pub fn index_usdc(&self) -> f64 {
        self.index_ticks as f64 * self.tick_micros as f64 / 1e6
    }

    /// Black-76 at the index (the exchange's forward) and `vol` (1.0 = 100%), USDC per unit
    /// of the underlying; `None` past expiry or outside the pricing domain.
    pub fn model_usdc(&self, option: &OptionView, vol: f64) -> Option<f64> {
        self.greeks(option, self.index_usdc(), vol).map(|g| g.price)
    }

    /// Black-76 price and greeks at `forward` (USDC) and `vol`, as [`Self::model_usdc`].
    pub fn greeks(
        &self,
        option: &OptionView,
        forward: f64,
        vol: f64,
    ) -> Option<bulwark_pricing::Greeks> {
        let now = self.state.time().millis();
        let years = option.expiry_ms.checked_sub(now)? as f64 / (365.0 * 86_400_000.0);
        let kind = match option.right {
            Right::Call => bulwark_pricing::OptionKind::Call,
            Right::Put => bulwark_pricing::OptionKind::Put,
        };
        bulwark_pricing::Black76::new(forward, option.strike_usdc, years, vol, 0.0)
            .and_then(|model| model.greeks(kind))
            .ok()
    }

    /// The exchange's model vol for a series with no smile (1.0 = 100%).
    pub fn model_vol(&self) -> f64 {
        self.state
            .params()
            .surface_marks
            .map_or(0.6, |s| f64::from(s.model_vol_bps) / 10_000.0)
    }

    /// The position of the account `key` owns in `instrument`, contracts.
    pub fn position_in(&self, key: &PublicKey, instrument: InstrumentId) -> i64 {
        self.account(key).map_or(0, |id| {
            self.state.account(id).map_or(0, |a| a.position(instrument))
        })
    }

    /// Contracts of the perpetual one USDC of notional buys at the index.
    pub fn contracts_per_usdc(&self) -> f64 {
        // One contract is 0.001 BTC (the lab's perpetual's multiplier).
        1.0 / (self.index_ticks as f64 * self.tick_micros as f64 / 1e6 * 0.001)
    }
}

/// A key an agent signs with: its nonces and client order ids.
pub struct Trader {
    pub key: PrivateKey,
    nonce: u64,
    client: u64,
}

impl Trader {
    fn new(seed: u64) -> Self {
        Self {
            key: PrivateKey::from_seed(seed),
            nonce: 0,
            client: 0,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    pub fn tx(&mut self, body: TxBody) -> SignedTx {
        self.nonce += 1;
        sign(&self.key, self.nonce, body)
    }

    /// Market maker protection on its BTC orders: frozen for 2 s when more than `qty_limit`
    /// contracts (or `delta_limit_e8` of delta) fill within 1 s.
    pub fn set_mmp(&mut self, qty_limit: i64, delta_limit_e8: i64) -> SignedTx {
        self.tx(TxBody::SetMmp {
            asset: crate::cluster::btc(),
            config: Some(bulwark_types::MmpConfig {
                interval_ms: 1_000,
                frozen_ms: 2_000,
                qty_limit: Qty::from_contracts(qty_limit),
                delta_limit_e8,
            }),
        })
    }

    /// A limit order in the perpetual at `ticks`.
    pub fn order(
        &mut self,
        view: &View,
        side: Side,
        qty: i64,
        ticks: i64,
        tif: TimeInForce,
    ) -> SignedTx {
        self.order_in(view.perpetual, view.tick_micros, side, qty, ticks, tif)
    }

    /// A limit order in `instrument` (tick `tick_micros`) at `ticks`.
    pub fn order_in(
        &mut self,
        instrument: InstrumentId,
        tick_micros: i64,
        side: Side,
        qty: i64,
        ticks: i64,
        tif: TimeInForce,
    ) -> SignedTx {
        self.client += 1;
        let request = OrderRequest::limit(
            instrument,
            ClientOrderId::new(self.client),
            side,
            Qty::from_contracts(qty.max(1)),
            UnitPrice::from_micros(ticks.max(1) * tick_micros),
            tif,
        );
        self.tx(TxBody::PlaceOrder(request))
    }

    /// A market order in the perpetual.
    pub fn market(&mut self, view: &View, side: Side, qty: i64) -> SignedTx {
        self.market_in(view.perpetual, view.tick_micros, side, qty)
    }

    /// A market order in `instrument` (tick `tick_micros`).
    pub fn market_in(
        &mut self,
        instrument: InstrumentId,
        tick_micros: i64,
        side: Side,
        qty: i64,
    ) -> SignedTx {
        self.client += 1;
        let mut request = OrderRequest::limit(
            instrument,
            ClientOrderId::new(self.client),
            side,
            Qty::from_contracts(qty.max(1)),
            UnitPrice::from_micros(tick_micros),
            TimeInForce::ImmediateOrCancel,
        );
        request.order_type = bulwark_types::OrderType::Market;
        self.tx(TxBody::PlaceOrder(request))
    }

    /// Cancels the trader's orders in every instrument.
    pub fn cancel_everything(&mut self) -> SignedTx {
        self.tx(TxBody::CancelAll { instrument: None })
    }

    pub fn cancel_all(&mut self, view: &View) -> SignedTx {
        self.tx(TxBody::CancelAll {
            instrument: Some(view.perpetual),
        })
    }
}

/// What every agent kind does each tick.
pub trait Agent: Send {
    fn kind(&self) -> AgentKind;
    /// The keys the agent trades through (each its own funded account).
    fn traders(&self) -> &[Trader];
    /// Transactions for this tick, appended to `out`; withdrawals are also listed in
    /// `withdrawals` by trader index.
    fn act(
        &mut self,
        view: &View,
        rng: &mut ChaCha8Rng,
        out: &mut Vec<SignedTx>,
        withdrawals: &mut Vec<(usize, SignedTx)>,
    );
    /// The validator (of `n`) whose mempool agent number `agent` submits to.
    fn home(&self, agent: usize, n: usize) -> usize {
        agent % n
    }
}

/// The key of the first `front-runner` agent of `specs` (the account its Byzantine leader
/// signs with), if the scenario has one.
pub fn front_runner_key(specs: &[AgentSpec]) -> Option<PrivateKey> {
    let mut agent = 0;
    for spec in specs {
        if spec.kind == AgentKind::FrontRunner && spec.count > 0 {
            return Some(Trader::new(agent_key_base(agent)).key);
        }
        agent += spec.count;
    }
    None
}

/// The seed of agent number `agent`'s first key (most kinds use one key, or two).
fn agent_key_base(agent: usize) -> u64 {
    5_000 + 2 * agent as u64
}

fn build(spec: &AgentSpec, agent: usize, ordinal: usize, seed: u64) -> Box<dyn Agent> {
    let base = agent_key_base(agent);
    let one = || vec![Trader::new(base)];
    match spec.kind {
        AgentKind::MarketMaker => Box::new(market_maker::MarketMaker::new(one(), spec, ordinal)),
        AgentKind::Noise => Box::new(noise::Noise::new(one(), spec)),
        AgentKind::Leveraged => Box::new(leveraged::Leveraged::new(one(), spec, ordinal, seed)),
        AgentKind::Arbitrageur => Box::new(arbitrageur::Arbitrageur::new(one(), spec)),
        AgentKind::Squeezer | AgentKind::Whale => Box::new(attacker::Attacker::new(
            vec![Trader::new(base), Trader::new(base + 1)],
            spec,
        )),
        AgentKind::StaleWithdrawer => Box::new(stale_withdrawer::StaleWithdrawer::new(
            vec![Trader::new(base), Trader::new(base + 1)],
            spec,
        )),
        AgentKind::FundingPusher => Box::new(funding_pusher::FundingPusher::new(
            vec![Trader::new(base), Trader::new(base + 1)],
            spec,
        )),
        AgentKind::Spammer => Box::new(spammer::Spammer::new(
            one(),
            Some(Trader::new(base + 1)),
            spec,
        )),
        AgentKind::CancelFlooder => Box::new(spammer::Spammer::new(one(), None, spec)),
        AgentKind::Spoofer => Box::new(spoofer::Spoofer::new(one(), spec)),
        AgentKind::Imbalance => Box::new(imbalance::Imbalance::new(one(), spec)),
        AgentKind::Squatter => Box::new(squatter::Squatter::new(one(), spec, ordinal)),
        AgentKind::FrontRunner => Box::new(front_runner::FrontRunAccount::new(one())),
        AgentKind::Delegator => Box::new(delegator::Delegator::new(spec, ordinal)),
        AgentKind::SurfaceMaker => Box::new(surface_maker::SurfaceMaker::new(one(), spec, ordinal)),
        AgentKind::OptionSqueezer => Box::new(option_squeezer::OptionSqueezer::new(
            (0..option_squeezer::ACCOUNTS as u64)
                .map(|i| Trader::new(OPTION_SQUEEZER_BASE + 16 * agent as u64 + i))
                .collect(),
            spec,
        )),
    }
}

/// Starts the agents of `specs` on the market the cluster's traders list (and the option
/// series of `economy.options`, which the `admin` lists first). `slots` are the
/// honest validators' shared states (`None` while down). `start_ms` is the run's start (Unix
/// milliseconds of the runtime's clock); `traders` the scenario's trader count, whose funding
/// the agents wait for before the bridge funds them.
#[allow(clippy::too_many_arguments)]
pub fn start(
    context: &Context,
    slots: Vec<Arc<Mutex<Option<Arc<Shared>>>>>,
    (admin, bridge): (PrivateKey, PrivateKey),
    traffic: Arc<Mutex<Traffic>>,
    roster: Arc<Mutex<Roster>>,
    specs: Vec<AgentSpec>,
    economy: Economy,
    traders: usize,
    start_ms: u64,
    seed: u64,
) -> Handle<()> {
    let n = slots.len();
    context
        .child("agents")
        .spawn(move |mut context| async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut agents: Vec<Box<dyn Agent>> = Vec::new();
            let mut ordinals = std::collections::BTreeMap::<AgentKind, usize>::new();
            for spec in &specs {
                for _ in 0..spec.count {
                    let ordinal = ordinals.entry(spec.kind).or_default();
                    agents.push(build(spec, agents.len(), *ordinal, seed));
                    *ordinal += 1;
                }
            }
            {
                let mut roster = lock(&roster);
                for (a, agent) in agents.iter().enumerate() {
                    let deposit = specs
                        .iter()
                        .find(|s| s.kind == agent.kind())
                        .map_or(0, |s| s.deposit_usdc);
                    for trader in agent.traders() {
                        roster.accounts.push((
                            AgentAccount {
                                agent: a,
                                kind: agent.kind(),
                                owner: bulwark_node::executor::hex(trader.public_key().as_ref()),
                                deposited_usdc: deposit,
                            },
                            trader.public_key(),
                        ));
                    }
                }
            }
            let reader = |slots: &[Arc<Mutex<Option<Arc<Shared>>>>]| {
                slots.iter().find_map(|s| lock(s).clone())
            };
            let submit = |context: &mut Context,
                          home: usize,
                          txs: Vec<SignedTx>,
                          attack: bool|
             -> Vec<bool> {
                let Some(shared) = lock(&slots[home % n]).clone() else {
                    return vec![false; txs.len()];
                };
                let digests: Vec<(TxDigest, PublicKey)> = txs
                    .iter()
                    .map(|tx| (tx_digest(tx), tx.tx.signer.clone()))
                    .collect();
                let count = txs.len() as u64;
                let results = shared.submit(txs, context, true);
                let now = now_ms(context);
                let mut traffic = lock(&traffic);
                traffic.submitted += count;
                let mut admitted = Vec::with_capacity(results.len());
                let mut attack_pending = Vec::new();
                for ((digest, signer), result) in digests.into_iter().zip(&results) {
                    admitted.push(result.is_ok());
                    if result.is_ok() {
                        traffic.admitted += 1;
                        let entry = crate::cluster::Submission {
                            digest,
                            submitted_ms: now,
                            signer,
                        };
                        if attack {
                            attack_pending.push(entry);
                        } else if traffic.pending.len() < PENDING_MAX {
                            traffic.pending.push_back(entry);
                        }
                    }
                }
                let mut roster = lock(&roster);
                for entry in attack_pending {
                    if roster.attack_pending.len() < PENDING_MAX {
                        roster.attack_pending.push_back(entry);
                    }
                }
                roster.submitted += count;
                roster.admitted += admitted.iter().filter(|a| **a).count() as u64;
                admitted
            };
            let name = InstrumentName::parse(PERPETUAL).expect("a valid name");
            let trader_keys: Vec<PublicKey> = (0..traders)
                .map(|i| PrivateKey::from_seed(1_000 + i as u64).public_key())
                .collect();
            let series: Vec<InstrumentName> = economy
                .options
                .as_ref()
                .map_or_else(Vec::new, |o| o.series());
            let owners: Vec<PublicKey> = lock(&roster)
                .accounts
                .iter()
                .map(|(_, k)| k.clone())
                .collect();
            // Funding: after the traders' (the instrument listed, every trader bound), the admin
            // lists the option series a finalized state does not show yet, and the bridge
            // deposits into every agent account and capitalises the insurance fund, at most
            // FUNDING_BATCH_MAX deposits at a time (the mempool bounds one signer's pending
            // transactions), each batch to accounts a finalized state does not show yet, with
            // higher nonces, until it shows them all.
            let mut attempt = 0u64;
            loop {
                let ready = reader(&slots).is_some_and(|s| {
                    let chain = lock(&s.chain);
                    let state = chain.finalized();
                    state.instrument_by_name(&name).is_some()
                        && trader_keys.iter().all(|k| state.key_binding(k).is_some())
                });
                if ready {
                    break;
                }
                if lock(&traffic).stop {
                    return;
                }
                context.sleep(Duration::from_millis(50)).await;
            }
            loop {
                let base = BRIDGE_NONCE_BASE + attempt * 10_000;
                let (unfunded, insured, unlisted): (Vec<usize>, bool, Vec<usize>) =
                    match reader(&slots) {
                        Some(s) => {
                            let chain = lock(&s.chain);
                            let state = chain.finalized();
                            (
                                (0..owners.len())
                                    .filter(|i| state.key_binding(&owners[*i]).is_none())
                                    .take(FUNDING_BATCH_MAX)
                                    .collect(),
                                state.ledger().insurance_fund > Money::ZERO,
                                (0..series.len())
                                    .filter(|j| state.instrument_by_name(&series[*j]).is_none())
                                    .collect(),
                            )
                        }
                        None => (
                            (0..owners.len().min(FUNDING_BATCH_MAX)).collect(),
                            false,
                            (0..series.len()).collect(),
                        ),
                    };
                if unfunded.is_empty() && unlisted.is_empty() {
                    break;
                }
                let mut txs = Vec::with_capacity(unfunded.len() + unlisted.len() + 1);
                for j in &unlisted {
                    txs.push(sign(
                        &admin,
                        ADMIN_NONCE_BASE + attempt * 1_000 + *j as u64,
                        TxBody::ListInstrument(bulwark_types::InstrumentSpec::linear(series[*j])),
                    ));
                }
                if economy.insurance_usdc > 0 && (attempt == 0 || !insured) {
                    txs.push(sign(
                        &bridge,
                        base,
                        TxBody::FundInsurance {
                            amount: Money::from_usdc(economy.insurance_usdc),
                        },
                    ));
                }
                for (i, (account, key)) in lock(&roster).accounts.iter().enumerate() {
                    if !unfunded.contains(&i) {
                        continue;
                    }
                    txs.push(sign(
                        &bridge,
                        base + 1 + i as u64,
                        TxBody::Deposit {
                            owner: key.clone(),
                            amount: Money::from_usdc(account.deposited_usdc),
                        },
                    ));
                }
                let home = (0..n).find(|i| lock(&slots[*i]).is_some()).unwrap_or(0);
                submit(&mut context, home, txs, false);
                let mut waited = 0;
                while waited < SETUP_WAIT_MS {
                    context.sleep(Duration::from_millis(50)).await;
                    waited += 50;
                    let funded = reader(&slots).is_some_and(|s| {
                        let chain = lock(&s.chain);
                        let state = chain.finalized();
                        unfunded
                            .iter()
                            .all(|i| state.key_binding(&owners[*i]).is_some())
                            && unlisted
                                .iter()
                                .all(|j| state.instrument_by_name(&series[*j]).is_some())
                    });
                    if funded {
                        break;
                    }
                }
                attempt += 1;
                if attempt >= SETUP_ATTEMPTS_MAX || lock(&traffic).stop {
                    tracing::warn!(attempt, "the agents were never funded");
                    return;
                }
            }
            lock(&roster).funded_at_ms = Some(now_ms(&context).saturating_sub(start_ms));
            let interval = Duration::from_millis(economy.agent_interval_ms);
            let mmp = !economy.is_off(Protection::Mmp);
            while !lock(&traffic).stop {
                // Per home validator: honest agents' transactions, then attackers'.
                let mut batches: Vec<Vec<SignedTx>> = vec![Vec::new(); 2 * n];
                let mut withdrawals: Vec<(usize, usize, SignedTx, bool)> = Vec::new();
                if let Some(shared) = reader(&slots) {
                    let chain = lock(&shared.chain);
                    let state = chain.finalized();
                    if let Some(view) = view(state, &name, now_ms(&context) - start_ms, mmp) {
                        for (a, agent) in agents.iter_mut().enumerate() {
                            let mut mine = Vec::new();
                            let mut out = Vec::new();
                            agent.act(&view, &mut rng, &mut out, &mut mine);
                            let first_account = lock(&roster)
                                .accounts
                                .iter()
                                .position(|(acc, _)| acc.agent == a)
                                .expect("every agent has an account");
                            let home = agent.home(a, n) % n;
                            let attack = agent.kind().is_attacker();
                            for (t, tx) in mine {
                                withdrawals.push((first_account + t, home, tx, attack));
                            }
                            batches[2 * home + usize::from(attack)].extend(out);
                        }
                    }
                }
                let orders = batches
                    .iter()
                    .flatten()
                    .filter(|tx| {
                        matches!(
                            &tx.tx.body,
                            TxBody::PlaceOrder(_) | TxBody::AmendOrder { .. }
                        )
                    })
                    .count() as u64;
                lock(&roster).orders_submitted += orders;
                for (slot, txs) in batches.into_iter().enumerate() {
                    if !txs.is_empty() {
                        submit(&mut context, slot / 2, txs, slot % 2 == 1);
                    }
                }
                for (account, home, tx, attack) in withdrawals {
                    let digest = tx_digest(&tx);
                    let amount = match &tx.tx.body {
                        TxBody::Withdraw { amount } => *amount,
                        _ => Money::ZERO,
                    };
                    if submit(&mut context, home, vec![tx], attack)[0] {
                        let mut roster = lock(&roster);
                        if roster.withdrawals.len() < WITHDRAWALS_MAX {
                            roster.withdrawals.push((account, digest));
                            roster.withdrawal_amounts.push(amount);
                        }
                    }
                }
                context.sleep(interval).await;
            }
        })
}

fn view<'a>(
    state: &'a Exchange,
    name: &InstrumentName,
    now_ms: u64,
    mmp: bool,
) -> Option<View<'a>> {
    let instrument = state.instrument_by_name(name)?;
    let tick_micros = instrument.spec.tick_size.micros();
    let index = state.index_price(crate::cluster::btc())?;
    let index_ticks = index.micros() / tick_micros;
    let mark_ticks = instrument
        .mark
        .map_or(index_ticks, |m| m.micros() / tick_micros);
    Some(View {
        state,
        perpetual: instrument.id,
        now_ms,
        index_ticks,
        mark_ticks,
        best_bid: instrument.book.best_bid().map(|(p, _)| p.ticks()),
        best_ask: instrument.book.best_ask().map(|(p, _)| p.ticks()),
        tick_micros,
        mmp,
        options: state
            .instruments()
            .iter()
            .filter(|i| i.status == bulwark_exchange::InstrumentStatus::Trading)
            .filter_map(|i| match i.kind {
                bulwark_types::InstrumentKind::Option {
                    expiry_ms,
                    strike,
                    right,
                } => {
                    let tick = i.spec.tick_size.micros();
                    Some(OptionView {
                        id: i.id,
                        right,
                        strike_usdc: strike.micros() as f64 / 1e6,
                        expiry_ms,
                        tick_micros: tick,
                        mark_ticks: i.mark.map(|m| m.micros() / tick),
                        best_bid: i.book.best_bid().map(|(p, _)| p.ticks()),
                        best_ask: i.book.best_ask().map(|(p, _)| p.ticks()),
                    })
                }
                bulwark_types::InstrumentKind::Perpetual => None,
            })
            .collect(),
    })
}
