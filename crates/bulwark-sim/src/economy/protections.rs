//! The exchange's protections a comparison run switches off, and how.
//!
//! Owns: [`Protection`], each a named switch over the genesis the lab builds (exchange and
//! oracle parameters) or over the lab's own price source ([`Protection::VenueMedian`]) or
//! agents ([`Protection::Mmp`]). Protections that are rules of the state machine with no
//! parameter (withdrawals leave out unrealised gains, no withdrawal on a stale oracle, the
//! insurance fund's suspension of withdrawals, funding paid on the interval's time-weighted
//! average premium) cannot be switched off and are not listed.

use bulwark_exchange::Genesis;
use serde::{Deserialize, Serialize};

/// A protection a run can switch off.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protection {
    /// The perpetual's price band (orders within 5% of the mark, and its volatility
    /// widening) and the mark's clamp to half the band around the index: off, the band is
    /// 100% of the mark (the mark may stray 50% from the index).
    PriceBand,
    /// The perpetual's dynamic circuit breaker (a 10% move in 5 minutes halts it): off.
    CircuitBreaker,
    /// The oracle's deviation guard (the index follows a large move of the validators'
    /// median at a bounded rate): off, it follows at once (99.9999% per block).
    OracleGuard,
    /// Margin tiers, open-interest caps and the backstop's room sized to book depth: off (flat
    /// margin, no cap, the backstop takes whatever the book does not).
    RiskLimits,
    /// Each validator's observer reads all its venues and observes what a majority of them
    /// agree on (the production `observe_sources`): off, it reads venue 0 alone.
    VenueMedian,
    /// Market makers set market maker protection on their quotes: off, they do not.
    Mmp,
    /// The cap on one interval's funding rate (`funding_rate_max_ppm`): off, 10% (the most
    /// a genesis allows).
    FundingClamp,
    /// Withdrawals held until prices observed after them (a quorum of later observations)
    /// confirm the account still covers them: off, paid at once by their transaction.
    WithdrawalHold,
    /// The option surface's refit guard: one refit moves a series' at-the-money vol at most
    /// `vol_move_max_bps` of the previous smile's, further only as far as trades between
    /// `accounts_min` accounts confirm, within `vol_move_confirmed_max_bps`: off, both bounds
    /// at the 90% a genesis allows and one account enough (for the quotes too).
    SurfaceGuard,
    /// How far from the mark a market order fills (`PriceBand::market_reach_bps`): off, to
    /// the band's edge (the perpetual's 5%, an option's 30%), as far as a limit order may be
    /// priced.
    MarketReach,
    /// How far from the mark a liquidation order trades (`price_limit_bps`, 2.5%): off, to
    /// the band's edge.
    LiquidationLimit,
    /// The liquidation pass runs on the block's prices before anything in the block takes
    /// liquidity (`LiquidationParams::before_orders`): off, after every transaction, where
    /// the proposer's own orders can take the book ahead of the liquidation orders.
    LiquidationFirst,
    /// Resting perpetual orders the index has left behind by more than
    /// `PriceBand::stale_quote_bps` (0.2%) are cancelled when a block sets the index: off,
    /// they rest until their owners' cancels execute.
    StaleQuotes,
}

impl Protection {
    pub fn name(self) -> &'static str {
        match self {
            Self::PriceBand => "price-band",
            Self::CircuitBreaker => "circuit-breaker",
            Self::OracleGuard => "oracle-guard",
            Self::RiskLimits => "risk-limits",
            Self::VenueMedian => "venue-median",
            Self::Mmp => "mmp",
            Self::FundingClamp => "funding-clamp",
            Self::WithdrawalHold => "withdrawal-hold",
            Self::SurfaceGuard => "surface-guard",
            Self::MarketReach => "market-reach",
            Self::LiquidationLimit => "liquidation-limit",
            Self::LiquidationFirst => "liquidation-first",
            Self::StaleQuotes => "stale-quotes",
        }
    }

    /// Switches this protection off in `genesis` (nothing for those the lab itself holds).
    pub fn switch_off(self, genesis: &mut Genesis) {
        let params = &mut genesis.params;
        match self {
            Self::PriceBand => {
                params.band_perpetual.width_bps = 10_000;
                params.band_vol = None;
            }
            Self::CircuitBreaker => params.breaker_perpetual = None,
            Self::OracleGuard => {
                if let Some(oracle) = genesis.oracle.as_mut() {
                    oracle.config.guard.move_ppm_per_block = 999_999;
                    oracle.config.guard.move_ppm_max = 999_999;
                }
            }
            Self::RiskLimits => params.risk_limits = None,
            Self::FundingClamp => params.funding_rate_max_ppm = bulwark_exchange::params::PPM / 10,
            Self::WithdrawalHold => params.withdrawals_held = false,
            Self::SurfaceGuard => {
                if let Some(surface) = params.surface_marks.as_mut() {
                    surface.vol_move_max_bps = 9_000;
                    surface.vol_move_confirmed_max_bps = 9_000;
                    surface.accounts_min = 1;
                }
            }
            Self::MarketReach => {
                params.band_perpetual.market_reach_bps = params.band_perpetual.width_bps;
                params.band_option.market_reach_bps = params.band_option.width_bps;
            }
            Self::StaleQuotes => params.band_perpetual.stale_quote_bps = 0,
            Self::LiquidationFirst => {
                if let Some(liquidation) = params.liquidation.as_mut() {
                    liquidation.before_orders = false;
                }
            }
            Self::LiquidationLimit => {
                if let Some(liquidation) = params.liquidation.as_mut() {
                    liquidation.price_limit_bps = 10_000;
                }
            }
            Self::VenueMedian | Self::Mmp => {}
        }
    }
}
