//! Snapshots: the exchange's whole replicated state in one canonical encoding, with a digest.
//!
//! Layout: `MAGIC || version (u16) || state || sha256(everything before)`. The state holds
//! only what cannot be derived: parameters, keys, accounts with cash and positions, each
//! instrument with its terms, status, mark, funding schedule and resting orders in priority
//! order, index prices, the ledger and the digest chain. Open-order totals, client-order
//! indices, holders and expiry queues are rebuilt on restore, then every invariant is checked.
//!
//! [`Exchange::restore`] treats its input as hostile: every count is bounded by the bytes
//! that remain, keys must be strictly increasing (one state, one encoding), ids dense, and any
//! failure is a typed [`SnapshotError`], never a panic.

use crate::account::{Account, Exposure, KeyRecord, KeyRole, MarginMode};
use crate::exchange::{Exchange, Ledger, StateDigest};
use crate::instrument::{BreakerState, Instrument, InstrumentStatus};
use crate::invariants::InvariantViolation;
use crate::margin::StandardMargin;
use crate::mmp::MmpState;
use crate::params::{
    BandVolScaling, CircuitBreaker, ConfigError, ExchangeParams, FeeSchedule, Genesis, PriceBand,
    StandardMarginParams,
};
use bulwark_book::{BookLimits, MatchSink, RestingOrder};
use bulwark_types::{
    AccountId, AssetCode, BlockTime, ClientOrderId, Height, InstrumentId, InstrumentKind,
    InstrumentSpec, MmpConfig, Money, OrderId, Price, PublicKey, Qty, SelfTradePrevention, Side,
    SignerKey, UnitPrice,
};
use bytes::{Buf as _, BufMut};
use commonware_codec::{Buf, Copying, Error as CodecError, FixedSize, Read, ReadExt, Write};
use commonware_cryptography::{Hasher, Sha256};
use std::collections::{BTreeMap, VecDeque};

const MAGIC: &[u8; 8] = b"BULWARK\x00";
const VERSION: u16 = 12;
const DIGEST_LEN: usize = 32;

/// Why bytes are not a usable snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is shorter than its header and digest")]
    TooShort,
    #[error("not a Bulwark snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot version {0} is not supported (this build reads {VERSION})")]
    Version(u16),
    #[error("snapshot digest does not match its contents")]
    DigestMismatch,
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] CodecError),
    #[error("snapshot is not canonical: {0}")]
    NotCanonical(&'static str),
    #[error("snapshot parameters are invalid: {0}")]
    Config(#[from] ConfigError),
    #[error("restored state is inconsistent: {0}")]
    Invariant(#[from] InvariantViolation),
}

impl Exchange {
    /// The canonical encoding of the whole state, followed by its SHA-256 digest.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 << 16);
        out.put_slice(MAGIC);
        VERSION.write(&mut out);
        write_params(&self.params, &mut out);
        self.admin.write(&mut out);
        self.bridge.write(&mut out);
        let oracle_genesis = self.oracle.as_ref().map(|o| crate::oracle::OracleGenesis {
            validators: o.validators.keys().to_vec(),
            config: o.config,
        });
        write_oracle_genesis(oracle_genesis.as_ref(), &mut out);
        if let Some(oracle) = &self.oracle {
            oracle.state.write(&mut out);
        }
        self.height.write(&mut out);
        self.time.write(&mut out);
        out.put_slice(self.digest.as_ref());
        self.order_id_next.write(&mut out);
        for money in [
            self.treasury.totals().deposits,
            self.treasury.totals().withdrawals,
            self.treasury.totals().fees,
            self.treasury.totals().insurance_fund,
        ] {
            money.write(&mut out);
        }
        (self.signers.len() as u64).write(&mut out);
        for (key, record) in &self.signers {
            key.as_bytes().write(&mut out);
            record.nonce_last.write(&mut out);
            record
                .binding
                .map(|(account, role)| (account, role_tag(role)))
                .write(&mut out);
        }
        (self.accounts.len() as u64).write(&mut out);
        for account in self.accounts.iter() {
            write_account(account, &mut out);
        }
        (self.instruments.len() as u64).write(&mut out);
        for instrument in &self.instruments {
            write_instrument(instrument, &mut out);
        }
        (self.index.len() as u64).write(&mut out);
        for (asset, price) in &self.index {
            asset.write(&mut out);
            price.write(&mut out);
        }
        (self.index.histories().len() as u64).write(&mut out);
        for (asset, history) in self.index.histories() {
            asset.write(&mut out);
            (history.samples.len() as u64).write(&mut out);
            for (time_ms, price) in &history.samples {
                time_ms.write(&mut out);
                price.write(&mut out);
            }
        }
        (self.index.variances().len() as u64).write(&mut out);
        for (asset, realised) in self.index.variances() {
            asset.write(&mut out);
            match realised.last {
                None => false.write(&mut out),
                Some((time_ms, price)) => {
                    true.write(&mut out);
                    time_ms.write(&mut out);
                    price.write(&mut out);
                }
            }
            realised.var_e6.write(&mut out);
        }
        (self.portfolio.len() as u64).write(&mut out);
        for (asset, risk) in &self.portfolio {
            asset.write(&mut out);
            let (variance_e12, sample, print_last_ms) = risk.realised.parts();
            variance_e12.write(&mut out);
            match sample {
                None => false.write(&mut out),
                Some((index, time_ms)) => {
                    true.write(&mut out);
                    index.write(&mut out);
                    time_ms.write(&mut out);
                }
            }
            print_last_ms.write(&mut out);
        }
        self.backstop.write(&mut out);
        (self.smiles.len() as u64).write(&mut out);
        for ((asset, expiry_ms), fitted) in &self.smiles {
            asset.write(&mut out);
            expiry_ms.write(&mut out);
            let svi = fitted.smile.params();
            for value in [
                svi.a(),
                svi.b(),
                svi.rho(),
                svi.m(),
                svi.sigma(),
                fitted.smile.forward(),
                fitted.smile.time_years(),
            ] {
                value.to_bits().write(&mut out);
            }
            fitted.fitted_at_ms.write(&mut out);
        }
        (self.option_prints.len() as u64).write(&mut out);
        for ((asset, expiry_ms), tape) in &self.option_prints {
            asset.write(&mut out);
            expiry_ms.write(&mut out);
            (tape.len() as u64).write(&mut out);
            for print in tape {
                print.instrument.write(&mut out);
                print.price_micros.write(&mut out);
                print.qty.write(&mut out);
                print.maker.write(&mut out);
                print.taker.write(&mut out);
            }
        }
        write_custody(self.custody.as_ref().map(|state| &state.custody), &mut out);
        if let Some(state) = &self.custody {
            (state.pending.len() as u64).write(&mut out);
            for ((id, _), (action, by)) in &state.pending {
                id.write(&mut out);
                action.write(&mut out);
                by.write(&mut out);
            }
            (state.done.len() as u64).write(&mut out);
            for id in &state.done {
                id.write(&mut out);
            }
            state.floor.write(&mut out);
        }
        self.deficits_queued.write(&mut out);
        (self.withdrawals_pending.len() as u64).write(&mut out);
        for (account, pending) in &self.withdrawals_pending {
            account.write(&mut out);
            pending.amount.write(&mut out);
            pending.requested_ms.write(&mut out);
        }
        (self.outages.open.len() as u64).write(&mut out);
        for asset in &self.outages.open {
            asset.write(&mut out);
        }
        (self.outages.deficits.len() as u64).write(&mut out);
        for id in &self.outages.deficits {
            id.write(&mut out);
        }
        let digest = Sha256::hash(&[&out]);
        out.put_slice(digest.as_ref());
        out
    }

    /// The digest a snapshot carries (its last 32 bytes), to compare with one committed
    /// elsewhere before restoring.
    pub fn snapshot_digest(bytes: &[u8]) -> Option<[u8; DIGEST_LEN]> {
        let start = bytes.len().checked_sub(DIGEST_LEN)?;
        bytes[start..].try_into().ok()
    }

    /// Rebuilds an exchange from a snapshot, refusing anything corrupt or inconsistent.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() < MAGIC.len() + 2 + DIGEST_LEN {
            return Err(SnapshotError::TooShort);
        }
        let (body, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
        if Sha256::hash(&[body]).as_ref() != digest {
            return Err(SnapshotError::DigestMismatch);
        }
        if &body[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let mut buf = Copying(&body[MAGIC.len()..]);
        let version = u16::read(&mut buf)?;
        if version != VERSION {
            return Err(SnapshotError::Version(version));
        }
        let exchange = read_state(&mut buf)?;
        if buf.remaining() != 0 {
            return Err(SnapshotError::Decode(CodecError::ExtraData(
                buf.remaining(),
            )));
        }
        exchange.check_invariants()?;
        Ok(exchange)
    }
}

fn role_tag(role: KeyRole) -> u8 {
    match role {
        KeyRole::Owner => 0,
        KeyRole::Agent => 1,
        KeyRole::Revoked => 2,
    }
}

fn role_from_tag(tag: u8) -> Result<KeyRole, CodecError> {
    match tag {
        0 => Ok(KeyRole::Owner),
        1 => Ok(KeyRole::Agent),
        2 => Ok(KeyRole::Revoked),
        other => Err(CodecError::InvalidEnum(other)),
    }
}

/// Writes every parameter, in declaration order. Also feeds the genesis digest.
/// The oracle's genesis: presence, validators (sorted), configuration.
pub(crate) fn write_oracle_genesis(
    oracle: Option<&crate::oracle::OracleGenesis>,
    out: &mut Vec<u8>,
) {
    let Some(oracle) = oracle else {
        false.write(out);
        return;
    };
    true.write(out);
    let mut validators = oracle.validators.clone();
    validators.sort();
    (validators.len() as u64).write(out);
    for key in &validators {
        key.write(out);
    }
    let c = &oracle.config;
    c.observation_age_ms_max.write(out);
    c.observation_lead_ms_max.write(out);
    c.observations_per_asset_max.write(out);
    c.assets_max.write(out);
    c.sources_min.write(out);
    c.outlier_mad_multiple.write(out);
    c.outlier_floor_ppm.write(out);
    c.guard.move_ppm_per_block.write(out);
    c.guard.move_ppm_per_s.write(out);
    c.guard.move_ppm_max.write(out);
}

fn read_oracle_genesis(
    buf: &mut impl Buf,
) -> Result<Option<crate::oracle::OracleGenesis>, SnapshotError> {
    if !bool::read(buf)? {
        return Ok(None);
    }
    let count = read_count(buf, PublicKey::SIZE)?;
    if count > bulwark_oracle::VALIDATORS_MAX {
        return Err(SnapshotError::NotCanonical("oracle validators bounded"));
    }
    let validators = (0..count)
        .map(|_| PublicKey::read(buf))
        .collect::<Result<Vec<_>, _>>()?;
    if validators.windows(2).any(|w| w[0] >= w[1]) {
        return Err(SnapshotError::NotCanonical(
            "oracle validators sorted and distinct",
        ));
    }
    let config = bulwark_oracle::OracleConfig {
        observation_age_ms_max: u64::read(buf)?,
        observation_lead_ms_max: u64::read(buf)?,
        observations_per_asset_max: u32::read(buf)?,
        assets_max: u32::read(buf)?,
        sources_min: u8::read(buf)?,
        outlier_mad_multiple: u32::read(buf)?,
        outlier_floor_ppm: u32::read(buf)?,
        guard: bulwark_oracle::GuardConfig {
            move_ppm_per_block: u32::read(buf)?,
            move_ppm_per_s: u32::read(buf)?,
            move_ppm_max: u32::read(buf)?,
        },
    };
    Ok(Some(crate::oracle::OracleGenesis { validators, config }))
}

pub(crate) fn write_params(p: &ExchangeParams, out: &mut Vec<u8>) {
    for fees in [p.fees_perpetual, p.fees_option] {
        fees.maker_bps.write(out);
        fees.taker_bps.write(out);
        fees.premium_cap_bps.write(out);
    }
    let m = &p.margin;
    for value in [
        m.perpetual_initial_bps,
        m.perpetual_maintenance_bps,
        m.option_initial_base_bps,
        m.option_initial_min_bps,
        m.option_maintenance_bps,
    ] {
        value.write(out);
    }
    for band in [p.band_perpetual, p.band_option] {
        band.width_bps.write(out);
        band.width_ticks_min.write(out);
        band.market_reach_bps.write(out);
        band.stale_quote_bps.write(out);
    }
    p.funding_interval_ms.write(out);
    p.funding_rate_max_ppm.write(out);
    p.orders_open_max.write(out);
    p.agents_max.write(out);
    p.position_max.write(out);
    p.instruments_max.write(out);
    p.accounts_max.write(out);
    p.withdrawals_held.write(out);
    p.book.orders_max.write(out);
    p.book.fills_per_match_max.write(out);
    match p.band_vol {
        None => false.write(out),
        Some(b) => {
            true.write(out);
            b.sigmas_x100.write(out);
            b.horizon_ms.write(out);
            b.half_life_ms.write(out);
            b.width_max_bps.write(out);
        }
    }
    for breaker in [p.breaker_perpetual, p.breaker_option] {
        match breaker {
            None => false.write(out),
            Some(b) => {
                true.write(out);
                b.move_bps.write(out);
                b.window_ms.write(out);
                b.halt_ms.write(out);
            }
        }
    }
    match p.portfolio {
        None => false.write(out),
        Some(pm) => {
            true.write(out);
            pm.move_points.write(out);
            for value in [
                pm.range_min_bps,
                pm.range_max_bps,
                pm.range_sigmas_bps,
                pm.vol_up_bps,
                pm.vol_down_bps,
                pm.vol_scale_min_bps,
                pm.vol_scale_max_bps,
                pm.extreme_multiple_bps,
                pm.extreme_cover_bps,
                pm.short_option_addon_bps,
                pm.initial_over_maintenance_bps,
            ] {
                value.write(out);
            }
            pm.realised_vol_sample_ms.write(out);
            pm.realised_vol_half_life_ms.write(out);
            pm.realised_vol_initial_bps.write(out);
            pm.realised_vol_sample_max_bps.write(out);
        }
    }
    match p.liquidation {
        None => false.write(out),
        Some(l) => {
            true.write(out);
            l.step_bps.write(out);
            l.fee_bps.write(out);
            l.price_limit_bps.write(out);
            l.accounts_per_block_max.write(out);
            l.orders_per_instrument_max.write(out);
            l.bankruptcies_per_block_max.write(out);
            l.backstop_unwind_bps.write(out);
            l.restore_bps.write(out);
            l.before_orders.write(out);
        }
    }
    match p.surface_marks {
        None => false.write(out),
        Some(s) => {
            true.write(out);
            s.refit_interval_ms.write(out);
            s.quotes_min.write(out);
            s.quotes_max.write(out);
            s.spread_max_bps.write(out);
            s.age_ms_max.write(out);
            s.flatten_half_life_ms.write(out);
            s.accounts_min.write(out);
            s.vol_move_max_bps.write(out);
            s.vol_move_confirmed_max_bps.write(out);
            s.model_vol_bps.write(out);
        }
    }
    match p.risk_limits {
        None => false.write(out),
        Some(r) => {
            true.write(out);
            r.depth_band_bps.write(out);
            r.depth_half_life_ms.write(out);
            r.refresh_ms.write(out);
            r.depth_floor_usdc.write(out);
            r.tier_depth_bps.write(out);
            r.tier_initial_step_bps.write(out);
            r.tier_maintenance_step_bps.write(out);
            r.tiers_max.write(out);
            r.open_interest_depth_bps.write(out);
            r.backstop_depth_bps.write(out);
        }
    }
}

fn read_portfolio_params(
    buf: &mut impl Buf,
) -> Result<Option<bulwark_risk::PortfolioMarginParams>, CodecError> {
    if !bool::read(buf)? {
        return Ok(None);
    }
    Ok(Some(bulwark_risk::PortfolioMarginParams {
        move_points: u8::read(buf)?,
        range_min_bps: u32::read(buf)?,
        range_max_bps: u32::read(buf)?,
        range_sigmas_bps: u32::read(buf)?,
        vol_up_bps: u32::read(buf)?,
        vol_down_bps: u32::read(buf)?,
        vol_scale_min_bps: u32::read(buf)?,
        vol_scale_max_bps: u32::read(buf)?,
        extreme_multiple_bps: u32::read(buf)?,
        extreme_cover_bps: u32::read(buf)?,
        short_option_addon_bps: u32::read(buf)?,
        initial_over_maintenance_bps: u32::read(buf)?,
        realised_vol_sample_ms: u64::read(buf)?,
        realised_vol_half_life_ms: u64::read(buf)?,
        realised_vol_initial_bps: u32::read(buf)?,
        realised_vol_sample_max_bps: u32::read(buf)?,
    }))
}

fn read_liquidation_params(
    buf: &mut impl Buf,
) -> Result<Option<crate::params::LiquidationParams>, CodecError> {
    if !bool::read(buf)? {
        return Ok(None);
    }
    Ok(Some(crate::params::LiquidationParams {
        step_bps: i64::read(buf)?,
        fee_bps: i64::read(buf)?,
        price_limit_bps: i64::read(buf)?,
        accounts_per_block_max: u32::read(buf)?,
        orders_per_instrument_max: u32::read(buf)?,
        bankruptcies_per_block_max: u32::read(buf)?,
        backstop_unwind_bps: i64::read(buf)?,
        restore_bps: i64::read(buf)?,
        before_orders: bool::read(buf)?,
    }))
}

fn read_breaker(buf: &mut impl Buf) -> Result<Option<CircuitBreaker>, CodecError> {
    if !bool::read(buf)? {
        return Ok(None);
    }
    Ok(Some(CircuitBreaker {
        move_bps: i64::read(buf)?,
        window_ms: u64::read(buf)?,
        halt_ms: u64::read(buf)?,
    }))
}

fn read_params(buf: &mut impl Buf) -> Result<ExchangeParams, CodecError> {
    let mut fees = || -> Result<FeeSchedule, CodecError> {
        Ok(FeeSchedule {
            maker_bps: i32::read(buf)?,
            taker_bps: i32::read(buf)?,
            premium_cap_bps: i32::read(buf)?,
        })
    };
    let (fees_perpetual, fees_option) = (fees()?, fees()?);
    let margin = StandardMarginParams {
        perpetual_initial_bps: i64::read(buf)?,
        perpetual_maintenance_bps: i64::read(buf)?,
        option_initial_base_bps: i64::read(buf)?,
        option_initial_min_bps: i64::read(buf)?,
        option_maintenance_bps: i64::read(buf)?,
    };
    let mut band = || -> Result<PriceBand, CodecError> {
        Ok(PriceBand {
            width_bps: i64::read(buf)?,
            width_ticks_min: i64::read(buf)?,
            market_reach_bps: i64::read(buf)?,
            stale_quote_bps: i64::read(buf)?,
        })
    };
    let (band_perpetual, band_option) = (band()?, band()?);
    Ok(ExchangeParams {
        fees_perpetual,
        fees_option,
        margin,
        band_perpetual,
        band_option,
        funding_interval_ms: u64::read(buf)?,
        funding_rate_max_ppm: i64::read(buf)?,
        orders_open_max: u32::read(buf)?,
        agents_max: u8::read(buf)?,
        position_max: Qty::read(buf)?,
        instruments_max: u32::read(buf)?,
        accounts_max: u64::read(buf)?,
        withdrawals_held: bool::read(buf)?,
        book: BookLimits {
            orders_max: u32::read(buf)?,
            fills_per_match_max: u32::read(buf)?,
        },
        band_vol: if bool::read(buf)? {
            Some(BandVolScaling {
                sigmas_x100: i64::read(buf)?,
                horizon_ms: u64::read(buf)?,
                half_life_ms: u64::read(buf)?,
                width_max_bps: i64::read(buf)?,
            })
        } else {
            None
        },
        breaker_perpetual: read_breaker(buf)?,
        breaker_option: read_breaker(buf)?,
        portfolio: read_portfolio_params(buf)?,
        liquidation: read_liquidation_params(buf)?,
        surface_marks: if bool::read(buf)? {
            Some(crate::params::SurfaceMarkParams {
                refit_interval_ms: u64::read(buf)?,
                quotes_min: u16::read(buf)?,
                quotes_max: u16::read(buf)?,
                spread_max_bps: i64::read(buf)?,
                age_ms_max: u64::read(buf)?,
                flatten_half_life_ms: u64::read(buf)?,
                accounts_min: u16::read(buf)?,
                vol_move_max_bps: u32::read(buf)?,
                vol_move_confirmed_max_bps: u32::read(buf)?,
                model_vol_bps: u32::read(buf)?,
            })
        } else {
            None
        },
        risk_limits: read_risk_limit_params(buf)?,
    })
}

fn read_risk_limit_params(
    buf: &mut impl Buf,
) -> Result<Option<crate::params::RiskLimitParams>, CodecError> {
    if !bool::read(buf)? {
        return Ok(None);
    }
    Ok(Some(crate::params::RiskLimitParams {
        depth_band_bps: i64::read(buf)?,
        depth_half_life_ms: u64::read(buf)?,
        refresh_ms: u64::read(buf)?,
        depth_floor_usdc: i64::read(buf)?,
        tier_depth_bps: i64::read(buf)?,
        tier_initial_step_bps: i64::read(buf)?,
        tier_maintenance_step_bps: i64::read(buf)?,
        tiers_max: u32::read(buf)?,
        open_interest_depth_bps: i64::read(buf)?,
        backstop_depth_bps: i64::read(buf)?,
    }))
}

fn write_account(account: &Account, out: &mut Vec<u8>) {
    account.id.write(out);
    account.owner.write(out);
    match account.margin_mode {
        MarginMode::Standard => 0u8.write(out),
        MarginMode::Portfolio => 1u8.write(out),
    }
    account.cash.write(out);
    account.withdrawn.write(out);
    // Everything but the open-order totals, which restore rebuilds from the books.
    let positions: Vec<_> = account
        .exposures
        .iter()
        .filter(|(_, e)| e.position != 0 || e.cost != Money::ZERO || e.realised_pnl != Money::ZERO)
        .collect();
    (positions.len() as u64).write(out);
    for (instrument, exposure) in positions {
        instrument.write(out);
        exposure.position.write(out);
        exposure.cost.write(out);
        exposure.realised_pnl.write(out);
    }
    (account.mmp.len() as u64).write(out);
    for (asset, state) in &account.mmp {
        asset.write(out);
        state.config.write(out);
        state.frozen_until_ms.write(out);
        (state.window().len() as u64).write(out);
        for (time_ms, qty, delta_e8) in state.window() {
            time_ms.write(out);
            qty.write(out);
            delta_e8.write(out);
        }
    }
}

fn read_mmp(buf: &mut impl Buf, account: &mut Account) -> Result<(), SnapshotError> {
    let mut last = None;
    for _ in 0..read_count(buf, 2 + MmpConfig::SIZE + 1 + 8)? {
        let asset = AssetCode::read(buf)?;
        let config = MmpConfig::read(buf)?;
        if config.check().is_err() || last.is_some_and(|l| l >= asset) {
            return Err(SnapshotError::NotCanonical(
                "protection settings valid, assets increasing",
            ));
        }
        last = Some(asset);
        let mut state = MmpState::new(config);
        state.frozen_until_ms = Option::<u64>::read(buf)?;
        let count = read_count(buf, 24)?;
        if count > MmpState::WINDOW_MAX {
            return Err(SnapshotError::NotCanonical("protection window bounded"));
        }
        for _ in 0..count {
            let entry = (u64::read(buf)?, i64::read(buf)?, i64::read(buf)?);
            if entry.1 <= 0 || state.window().back().is_some_and(|(t, _, _)| *t > entry.0) {
                return Err(SnapshotError::NotCanonical(
                    "protection window fills positive, in time order",
                ));
            }
            state.push_fill(entry);
        }
        account.mmp.insert(asset, state);
    }
    Ok(())
}

fn write_instrument(instrument: &Instrument, out: &mut Vec<u8>) {
    instrument.spec.write(out);
    let status: u8 = match instrument.status {
        InstrumentStatus::Trading => 0,
        InstrumentStatus::Expired => 1,
        InstrumentStatus::Settled => 2,
    };
    status.write(out);
    instrument.mark.write(out);
    instrument.funding_next_ms.write(out);
    for side in [Side::Buy, Side::Sell] {
        let count = instrument.book.orders_count(side);
        (count as u64).write(out);
        let mut written = 0usize;
        for order in instrument.book.orders(side) {
            write_order(order, out);
            written += 1;
        }
        // The count comes from the levels, the orders from their lists: a book whose two
        // disagree is corrupt, and its encoding (the state hash) would not restore.
        assert_eq!(written, count, "a side's level counts match its orders");
    }
    let inputs = &instrument.mark_inputs;
    inputs.premium_ema.write(out);
    inputs.premium_at_ms.write(out);
    inputs.last_trade.write(out);
    inputs.funding.premium_ppm_ms.write(out);
    inputs.funding.sampled_ms.write(out);
    inputs.funding.sampled_at_ms.write(out);
    let breaker = &instrument.breaker;
    breaker.halted_until_ms.write(out);
    let waiting = instrument.book.auction_orders();
    (waiting.len() as u64).write(out);
    for order in waiting {
        order.side.write(out);
        write_order(order, out);
    }
    for queue in [&breaker.lows, &breaker.highs] {
        (queue.len() as u64).write(out);
        for (time_ms, price) in queue {
            time_ms.write(out);
            price.write(out);
        }
    }
    let depth = &instrument.depth;
    depth.average_milli.write(out);
    depth.sampled_at_ms.write(out);
    depth.reference.write(out);
    depth.last.write(out);
}

fn write_order(order: &RestingOrder, out: &mut Vec<u8>) {
    order.order_id.write(out);
    order.account.write(out);
    order.client_order_id.write(out);
    order.price.write(out);
    order.qty.write(out);
    order.reduce_only.write(out);
    order.post_only.write(out);
    order.self_trade.write(out);
}

/// Reads a count and bounds it by the bytes left, at `entry_bytes_min` bytes per entry, so a
/// forged count cannot make us allocate.
fn read_count(buf: &mut impl Buf, entry_bytes_min: usize) -> Result<usize, CodecError> {
    let count = u64::read(buf)?;
    let bound = buf.remaining() / entry_bytes_min.max(1);
    usize::try_from(count)
        .ok()
        .filter(|c| *c <= bound)
        .ok_or(CodecError::InvalidLength(bound))
}

/// Pending withdrawals: accounts increasing and opened, amounts positive.
fn read_withdrawals_pending(
    buf: &mut impl Buf,
    accounts: usize,
    time: BlockTime,
) -> Result<BTreeMap<AccountId, crate::withdrawals::PendingWithdrawal>, SnapshotError> {
    let count = read_count(buf, 8 + 16 + 8)?;
    let mut pending = BTreeMap::new();
    let mut last: Option<AccountId> = None;
    for _ in 0..count {
        let account = AccountId::read(buf)?;
        let amount = Money::read(buf)?;
        let requested_ms = u64::read(buf)?;
        if last.is_some_and(|l| l >= account)
            || account.get() >= accounts as u64
            || !amount.is_positive()
            || requested_ms > time.millis()
        {
            return Err(SnapshotError::NotCanonical(
                "pending withdrawals: accounts increasing and opened, amounts positive, asked \
                 for in the past",
            ));
        }
        last = Some(account);
        pending.insert(
            account,
            crate::withdrawals::PendingWithdrawal {
                amount,
                requested_ms,
            },
        );
    }
    Ok(pending)
}

fn read_state(buf: &mut impl Buf) -> Result<Exchange, SnapshotError> {
    let params = read_params(buf)?;
    params.check()?;
    let admin = PublicKey::read(buf)?;
    let bridge = PublicKey::read(buf)?;
    let oracle_genesis = read_oracle_genesis(buf)?;
    Genesis {
        admin: admin.clone(),
        bridge: bridge.clone(),
        params,
        time: BlockTime::from_millis(0),
        oracle: oracle_genesis.clone(),
        custody: None,
    }
    .check()?;
    let oracle = match oracle_genesis {
        None => None,
        Some(genesis) => {
            let mut oracle = crate::oracle::Oracle::new(&genesis)
                .map_err(|_| SnapshotError::NotCanonical("oracle genesis valid"))?;
            oracle.state =
                bulwark_oracle::OracleState::read_cfg(buf, &(genesis.config.assets_max as usize))?;
            Some(oracle)
        }
    };
    let height = Height::read(buf)?;
    let time = BlockTime::read(buf)?;
    let digest = StateDigest::read(buf)?;
    let order_id_next = OrderId::read(buf)?;
    let ledger = Ledger {
        deposits: Money::read(buf)?,
        withdrawals: Money::read(buf)?,
        fees: Money::read(buf)?,
        insurance_fund: Money::read(buf)?,
    };
    let signers = read_signers(buf)?;
    let mut accounts = read_accounts(buf, &params)?;
    for (account, role) in signers.values().filter_map(|r| r.binding) {
        let holder = usize::try_from(account.get())
            .ok()
            .and_then(|i| accounts.get_mut(i));
        let holder = holder.ok_or(SnapshotError::NotCanonical(
            "keys bound to existing accounts",
        ))?;
        if role == KeyRole::Agent {
            holder.agents = holder
                .agents
                .checked_add(1)
                .ok_or(SnapshotError::NotCanonical("agents bounded"))?;
        }
    }
    let instruments = read_instruments(buf, &params, &mut accounts)?;
    let mut index = BTreeMap::new();
    for _ in 0..read_count(buf, 2 + UnitPrice::SIZE)? {
        let (asset, price) = (AssetCode::read(buf)?, UnitPrice::read(buf)?);
        if !price.is_positive()
            || index
                .last_key_value()
                .is_some_and(|(last, _)| *last >= asset)
        {
            return Err(SnapshotError::NotCanonical(
                "index prices positive, assets increasing",
            ));
        }
        index.insert(asset, price);
    }
    let mut history = BTreeMap::new();
    for _ in 0..read_count(buf, 2 + 8)? {
        let asset = AssetCode::read(buf)?;
        let count = read_count(buf, 16)?;
        if count > crate::instrument::IndexHistory::SAMPLES_MAX
            || history
                .last_key_value()
                .is_some_and(|(prev, _): (&AssetCode, _)| *prev >= asset)
        {
            return Err(SnapshotError::NotCanonical(
                "index history bounded, assets increasing",
            ));
        }
        let mut samples: VecDeque<(u64, UnitPrice)> = VecDeque::with_capacity(count);
        for _ in 0..count {
            let sample = (u64::read(buf)?, UnitPrice::read(buf)?);
            if !sample.1.is_positive() || samples.back().is_some_and(|(t, _)| sample.0 < t + 1_000)
            {
                return Err(SnapshotError::NotCanonical(
                    "index history positive, a second apart",
                ));
            }
            samples.push_back(sample);
        }
        history.insert(asset, crate::instrument::IndexHistory { samples });
    }
    let mut realised = BTreeMap::new();
    for _ in 0..read_count(buf, 2 + 1 + 16)? {
        let asset = AssetCode::read(buf)?;
        let last = if bool::read(buf)? {
            Some((u64::read(buf)?, UnitPrice::read(buf)?))
        } else {
            None
        };
        let var_e6 = u128::read(buf)?;
        let malformed = last.is_some_and(|(_, p)| !p.is_positive())
            || realised
                .last_key_value()
                .is_some_and(|(prev, _): (&AssetCode, _)| *prev >= asset);
        if malformed {
            return Err(SnapshotError::NotCanonical(
                "realised variance: positive prices, assets increasing",
            ));
        }
        realised.insert(asset, crate::instrument::RealisedVariance { last, var_e6 });
    }
    let mut portfolio = BTreeMap::new();
    for _ in 0..read_count(buf, 2 + 8 + 1 + 1)? {
        let asset = AssetCode::read(buf)?;
        let variance_e12 = u64::read(buf)?;
        let sample = if bool::read(buf)? {
            Some((UnitPrice::read(buf)?, u64::read(buf)?))
        } else {
            None
        };
        let print_last_ms = Option::<u64>::read(buf)?;
        let Some(pm) = params.portfolio else {
            return Err(SnapshotError::NotCanonical(
                "portfolio margin state without its parameters",
            ));
        };
        let state = bulwark_risk::RealisedVol::from_parts(&pm, variance_e12, sample, print_last_ms)
            .map_err(|_| SnapshotError::NotCanonical("portfolio realised vol out of range"))?;
        if portfolio
            .last_key_value()
            .is_some_and(|(prev, _): (&AssetCode, _)| *prev >= asset)
        {
            return Err(SnapshotError::NotCanonical(
                "portfolio margin: assets increasing",
            ));
        }
        portfolio.insert(asset, crate::portfolio::UnderlyingRisk::new(&pm, state));
    }
    let backstop = Option::<AccountId>::read(buf)?;
    if backstop.is_some_and(|id| id.get() >= accounts.len() as u64) {
        return Err(SnapshotError::NotCanonical("backstop is an account"));
    }
    let mut smiles = BTreeMap::new();
    for _ in 0..read_count(buf, 2 + 8 + 7 * 8 + 8)? {
        let key = (AssetCode::read(buf)?, u64::read(buf)?);
        let mut value = || u64::read(buf).map(f64::from_bits);
        let (a, b, rho, m, sigma) = (value()?, value()?, value()?, value()?, value()?);
        let (forward, time_years) = (value()?, value()?);
        let fitted_at_ms = u64::read(buf)?;
        let smile = bulwark_pricing::SviParams::new(a, b, rho, m, sigma)
            .and_then(|svi| bulwark_pricing::Smile::new(svi, forward, time_years))
            .map_err(|_| SnapshotError::NotCanonical("smile: invalid SVI parameters"))?;
        if params.surface_marks.is_none()
            || fitted_at_ms > time.millis()
            || smiles
                .last_key_value()
                .is_some_and(|(prev, _): (&crate::surface::SeriesKey, _)| *prev >= key)
        {
            return Err(SnapshotError::NotCanonical(
                "smiles: with their parameters, fitted in the past, series increasing",
            ));
        }
        smiles.insert(
            key,
            crate::surface::FittedSmile {
                smile,
                fitted_at_ms,
            },
        );
    }
    let option_prints = read_option_prints(buf, &params, &instruments, accounts.len())?;
    let custody = read_custody(buf, &signers)?.map(std::sync::Arc::new);
    let deficits_queued = Money::read(buf)?;
    if deficits_queued.is_negative() {
        return Err(SnapshotError::NotCanonical(
            "queued deficits are not negative",
        ));
    }
    let withdrawals_pending = read_withdrawals_pending(buf, accounts.len(), time)?;
    let outages = read_outages(
        buf,
        &instruments,
        accounts.len(),
        backstop,
        oracle.is_some(),
    )?;
    let mut exchange = Exchange {
        deficits_queued,
        withdrawals_pending,
        outages,
        portfolio,
        backstop,
        adl_rankings: BTreeMap::new(),
        smiles,
        option_prints,
        custody,
        liquidation_orders: BTreeMap::new(),
        oracle,
        mmp_trips: Vec::new(),
        admin,
        bridge,
        params,
        margin: StandardMargin::new(&params),
        height,
        time,
        digest,
        order_id_next,
        signers: crate::keys::Keys::restored(signers),
        accounts: crate::accounts::Accounts::restored(accounts),
        instruments: crate::instruments::Instruments::restored(instruments)
            .ok_or(SnapshotError::NotCanonical("instrument names unique"))?,
        index: crate::index_prices::IndexPrices::restored(index, history, realised),
        treasury: crate::ledger::Treasury::restored(ledger),
        sink: MatchSink::default(),
        #[cfg(feature = "deliberate-bugs")]
        deliberate_bugs: crate::deliberate_bugs::Planted::default(),
    };
    // Derived state: the contract vectors at the restored index, time and marks.
    exchange.revalue_portfolio();
    Ok(exchange)
}

/// The oracle outages liquidation remembers: listed underlyings (only under an oracle) and
/// existing accounts other than the backstop, each strictly increasing.
fn read_outages(
    buf: &mut impl Buf,
    instruments: &[Instrument],
    accounts: usize,
    backstop: Option<AccountId>,
    oracle: bool,
) -> Result<crate::liquidation::Outages, SnapshotError> {
    let mut outages = crate::liquidation::Outages::default();
    for _ in 0..read_count(buf, 1)? {
        let asset = AssetCode::read(buf)?;
        let listed = instruments.iter().any(|i| i.spec.underlying() == asset);
        if !oracle || !listed || outages.open.last().is_some_and(|prev| *prev >= asset) {
            return Err(SnapshotError::NotCanonical(
                "outages: listed underlyings under an oracle, increasing",
            ));
        }
        outages.open.insert(asset);
    }
    for _ in 0..read_count(buf, 8)? {
        let id = AccountId::read(buf)?;
        if id.get() >= accounts as u64
            || Some(id) == backstop
            || outages.deficits.last().is_some_and(|prev| *prev >= id)
        {
            return Err(SnapshotError::NotCanonical(
                "outage deficits: accounts other than the backstop, increasing",
            ));
        }
        outages.deficits.insert(id);
    }
    Ok(outages)
}

fn read_signers(buf: &mut impl Buf) -> Result<BTreeMap<SignerKey, KeyRecord>, SnapshotError> {
    let mut signers = BTreeMap::new();
    for _ in 0..read_count(buf, PublicKey::SIZE + 2)? {
        // Decoded, so bytes that are no key are refused; held by their encoding.
        let key = SignerKey::of(&PublicKey::read(buf)?);
        let nonce_last = Option::<u64>::read(buf)?;
        let binding = match bool::read(buf)? {
            true => Some((AccountId::read(buf)?, role_from_tag(u8::read(buf)?)?)),
            false => None,
        };
        if signers
            .last_key_value()
            .is_some_and(|(last, _): (&SignerKey, _)| *last >= key)
        {
            return Err(SnapshotError::NotCanonical("keys strictly increasing"));
        }
        signers.insert(
            key,
            KeyRecord {
                nonce_last,
                binding,
            },
        );
    }
    Ok(signers)
}

fn read_accounts(
    buf: &mut impl Buf,
    params: &ExchangeParams,
) -> Result<Vec<Account>, SnapshotError> {
    let count = read_count(buf, 8 + PublicKey::SIZE + 1 + 16 + 16 + 8)?;
    if count as u64 > params.accounts_max {
        return Err(SnapshotError::NotCanonical("accounts within accounts_max"));
    }
    let mut accounts = Vec::with_capacity(count);
    for index in 0..count {
        let id = AccountId::read(buf)?;
        if id.get() != index as u64 {
            return Err(SnapshotError::NotCanonical(
                "account ids dense and in order",
            ));
        }
        let owner = PublicKey::read(buf)?;
        let margin_mode = match u8::read(buf)? {
            0 => MarginMode::Standard,
            1 => MarginMode::Portfolio,
            other => return Err(CodecError::InvalidEnum(other).into()),
        };
        let mut account = Account::new(id, owner);
        account.margin_mode = margin_mode;
        account.cash = Money::read(buf)?;
        account.withdrawn = Money::read(buf)?;
        if account.withdrawn.is_negative() {
            return Err(SnapshotError::NotCanonical(
                "withdrawn totals are not negative",
            ));
        }
        let mut last = None;
        for _ in 0..read_count(buf, 4 + 8 + 16 + 16)? {
            let instrument = InstrumentId::read(buf)?;
            let position = i64::read(buf)?;
            let (cost, realised_pnl) = (Money::read(buf)?, Money::read(buf)?);
            let blank = position == 0 && cost == Money::ZERO && realised_pnl == Money::ZERO;
            if blank
                || last.is_some_and(|l| l >= instrument)
                || position.abs() > params.position_max.contracts()
            {
                return Err(SnapshotError::NotCanonical(
                    "positions non-blank, bounded, instruments increasing",
                ));
            }
            last = Some(instrument);
            account.exposures.insert(
                instrument,
                Exposure {
                    position,
                    cost,
                    realised_pnl,
                    ..Exposure::default()
                },
            );
        }
        read_mmp(buf, &mut account)?;
        accounts.push(account);
    }
    Ok(accounts)
}

fn read_instruments(
    buf: &mut impl Buf,
    params: &ExchangeParams,
    accounts: &mut [Account],
) -> Result<Vec<Instrument>, SnapshotError> {
    let count = read_count(buf, 8 + 1 + 1 + 8 + 16)?;
    if count > params.instruments_max as usize {
        return Err(SnapshotError::NotCanonical(
            "instruments within instruments_max",
        ));
    }
    let mut instruments = Vec::with_capacity(count);
    for index in 0..count {
        let id = InstrumentId::new(index as u32);
        let spec = InstrumentSpec::read(buf)?;
        spec.check()
            .map_err(|_| SnapshotError::NotCanonical("instrument terms valid"))?;
        let status = match u8::read(buf)? {
            0 => InstrumentStatus::Trading,
            1 => InstrumentStatus::Expired,
            2 => InstrumentStatus::Settled,
            other => return Err(CodecError::InvalidEnum(other).into()),
        };
        let mut instrument = Instrument::new(id, spec, params.book, 0);
        instrument.status = status;
        instrument.mark = Option::<UnitPrice>::read(buf)?;
        instrument.funding_next_ms = u64::read(buf)?;
        // Settled out-of-the-money options keep their final mark of zero.
        if instrument.mark.is_some_and(|m| m.micros() < 0) {
            return Err(SnapshotError::NotCanonical("marks not negative"));
        }
        for side in [Side::Buy, Side::Sell] {
            for _ in 0..read_count(buf, 8 * 5 + 3)? {
                let order = read_order(buf, side)?;
                restore_order(&mut instrument, order, accounts)?;
            }
        }
        instrument.mark_inputs = crate::instrument::MarkInputs {
            premium_ema: i64::read(buf)?,
            premium_at_ms: Option::<u64>::read(buf)?,
            last_trade: Option::<Price>::read(buf)?,
            funding: crate::instrument::FundingAccrual {
                premium_ppm_ms: i128::read(buf)?,
                sampled_ms: u64::read(buf)?,
                sampled_at_ms: Option::<u64>::read(buf)?,
            },
        };
        instrument.breaker.halted_until_ms = Option::<u64>::read(buf)?;
        if instrument.breaker.halted_until_ms.is_some() {
            instrument.book.halt();
        }
        for _ in 0..read_count(buf, 1 + 8 * 5 + 3)? {
            let side = Side::read(buf)?;
            let order = read_order(buf, side)?;
            restore_order(&mut instrument, order, accounts)?;
        }
        for ascending in [true, false] {
            let count = read_count(buf, 16)?;
            if count > BreakerState::ENTRIES_MAX {
                return Err(SnapshotError::NotCanonical("breaker window bounded"));
            }
            let mut queue = VecDeque::with_capacity(count);
            for _ in 0..count {
                let entry = (u64::read(buf)?, Price::read(buf)?);
                // Monotonic in time and in price (rising for lows, falling for highs).
                if let Some(last) = queue.back() {
                    let (t, p): &(u64, Price) = last;
                    let ordered = entry.0 >= *t
                        && if ascending {
                            entry.1 > *p
                        } else {
                            entry.1 < *p
                        };
                    if !ordered {
                        return Err(SnapshotError::NotCanonical("breaker window monotonic"));
                    }
                }
                if !entry.1.is_positive() {
                    return Err(SnapshotError::NotCanonical("breaker prices positive"));
                }
                queue.push_back(entry);
            }
            if ascending {
                instrument.breaker.lows = queue;
            } else {
                instrument.breaker.highs = queue;
            }
        }
        instrument.depth = crate::instrument::DepthState {
            average_milli: i64::read(buf)?,
            sampled_at_ms: Option::<u64>::read(buf)?,
            reference: i64::read(buf)?,
            last: i64::read(buf)?,
        };
        let depth = &instrument.depth;
        let sampled = depth.sampled_at_ms.is_some();
        if depth.average_milli < 0
            || depth.reference < 0
            || depth.last < 0
            || (!sampled && depth.last != 0)
            || (instrument.is_option() && (sampled || depth.reference != 0))
            || (sampled != (depth.reference > 0))
            || (params.risk_limits.is_none() && sampled)
        {
            return Err(SnapshotError::NotCanonical(
                "depth: non-negative, sampled exactly when it has a reference (and a last sample \
                 only then), perpetuals under risk limits only",
            ));
        }
        instruments.push(instrument);
    }
    for account in accounts.iter() {
        for (instrument, exposure) in &account.exposures {
            let Some(target) = instruments.get_mut(instrument.get() as usize) else {
                return Err(SnapshotError::NotCanonical(
                    "positions in listed instruments",
                ));
            };
            if exposure.position != 0 {
                target.position_changed(account.id, 0, exposure.position);
            }
        }
    }
    Ok(instruments)
}

fn read_order(buf: &mut impl Buf, side: Side) -> Result<RestingOrder, CodecError> {
    Ok(RestingOrder {
        order_id: OrderId::read(buf)?,
        account: AccountId::read(buf)?,
        client_order_id: ClientOrderId::read(buf)?,
        side,
        price: Price::read(buf)?,
        qty: Qty::read(buf)?,
        reduce_only: bool::read(buf)?,
        post_only: bool::read(buf)?,
        self_trade: SelfTradePrevention::read(buf)?,
    })
}

/// Puts a resting order back in its book and in its account's totals.
fn restore_order(
    instrument: &mut Instrument,
    order: RestingOrder,
    accounts: &mut [Account],
) -> Result<(), SnapshotError> {
    let account = usize::try_from(order.account.get())
        .ok()
        .and_then(|i| accounts.get_mut(i))
        .ok_or(SnapshotError::NotCanonical("orders belong to accounts"))?;
    if order.qty.contracts() > bulwark_types::order::QTY_MAX {
        return Err(SnapshotError::NotCanonical("order sizes bounded"));
    }
    let restored = if instrument.book.is_halted() {
        instrument.book.restore_waiting(order)
    } else {
        instrument.book.restore(order)
    };
    restored.map_err(|e| SnapshotError::Invariant(InvariantViolation(e.0)))?;
    if account
        .client_orders
        .insert(order.client_order_id, (instrument.id, order.order_id))
        .is_some()
    {
        return Err(SnapshotError::NotCanonical(
            "client order ids unique per account",
        ));
    }
    let exposure = account.exposures.entry(instrument.id).or_default();
    exposure.open_mut(order.side).add(order.price, order.qty);
    if order.reduce_only {
        exposure.reduce_only_qty += order.qty.contracts();
    }
    Ok(())
}

/// Each option series' trades since its last refit: series increasing, each at most
/// `PRINTS_MAX` trades of that series' trading options between two distinct accounts.
fn read_option_prints(
    buf: &mut impl Buf,
    params: &ExchangeParams,
    instruments: &[Instrument],
    accounts: usize,
) -> Result<BTreeMap<crate::surface::SeriesKey, Vec<crate::surface::OptionPrint>>, SnapshotError> {
    const PRINT_BYTES: usize = 4 + 8 + 8 + 8 + 8;
    let mut prints = BTreeMap::new();
    for _ in 0..read_count(buf, 2 + 8 + 8 + PRINT_BYTES)? {
        let key: crate::surface::SeriesKey = (AssetCode::read(buf)?, u64::read(buf)?);
        let count = read_count(buf, PRINT_BYTES)?;
        if params.surface_marks.is_none()
            || count == 0
            || count > crate::surface::PRINTS_MAX
            || prints
                .last_key_value()
                .is_some_and(|(prev, _): (&crate::surface::SeriesKey, _)| *prev >= key)
        {
            return Err(SnapshotError::NotCanonical(
                "option prints: with surface marks, 1..=PRINTS_MAX a series, series increasing",
            ));
        }
        let mut tape = Vec::with_capacity(count);
        for _ in 0..count {
            let print = crate::surface::OptionPrint {
                instrument: InstrumentId::read(buf)?,
                price_micros: i64::read(buf)?,
                qty: i64::read(buf)?,
                maker: AccountId::read(buf)?,
                taker: AccountId::read(buf)?,
            };
            let of_series = instruments
                .get(print.instrument.get() as usize)
                .is_some_and(|instrument| match instrument.kind {
                    InstrumentKind::Option { expiry_ms, .. } => {
                        instrument.status == InstrumentStatus::Trading
                            && (instrument.spec.underlying(), expiry_ms) == key
                    }
                    InstrumentKind::Perpetual => false,
                });
            let known = |id: AccountId| id.get() < accounts as u64;
            if !of_series
                || print.price_micros <= 0
                || print.qty <= 0
                || print.maker == print.taker
                || !known(print.maker)
                || !known(print.taker)
            {
                return Err(SnapshotError::NotCanonical(
                    "option prints: a trading option of the series, positive, two known accounts",
                ));
            }
            tape.push(print);
        }
        prints.insert(key, tape);
    }
    Ok(prints)
}

/// The custodians and threshold (genesis digest and snapshot).
pub(crate) fn write_custody(custody: Option<&crate::custody::Custody>, out: &mut Vec<u8>) {
    match custody {
        None => false.write(out),
        Some(custody) => {
            true.write(out);
            (custody.custodians.len() as u8).write(out);
            for key in &custody.custodians {
                key.write(out);
            }
            custody.threshold.write(out);
        }
    }
}

/// Custody as [`Exchange::snapshot`] writes it: the custodians (each a known signer), the
/// actions waiting (ids increasing, then encodings), the spent ids (increasing) and the floor,
/// within [`crate::custody::CustodyState::check`].
fn read_custody(
    buf: &mut impl Buf,
    signers: &BTreeMap<SignerKey, KeyRecord>,
) -> Result<Option<crate::custody::CustodyState>, SnapshotError> {
    use crate::custody::{
        CUSTODIANS_MAX, Custody, CustodyState, DONE_IDS_KEPT, PENDING_PER_CUSTODIAN_MAX,
    };
    if !bool::read(buf)? {
        return Ok(None);
    }
    let count = usize::from(u8::read(buf)?);
    if count > CUSTODIANS_MAX {
        return Err(SnapshotError::NotCanonical(
            "custody: at most 16 custodians",
        ));
    }
    let mut custodians = Vec::with_capacity(count);
    for _ in 0..count {
        custodians.push(PublicKey::read(buf)?);
    }
    let custody = Custody {
        custodians,
        threshold: u8::read(buf)?,
    };
    custody.check()?;
    if custody
        .custodians
        .iter()
        .any(|key| !signers.contains_key(&SignerKey::of(key)))
    {
        return Err(SnapshotError::NotCanonical(
            "custody: custodians are known signers",
        ));
    }
    let mut state = CustodyState::new(custody);
    let pending_max = CUSTODIANS_MAX * PENDING_PER_CUSTODIAN_MAX;
    let count = read_count(buf, 8 + 1 + 2)?;
    if count > pending_max {
        return Err(SnapshotError::NotCanonical(
            "custody: waiting actions bounded",
        ));
    }
    for _ in 0..count {
        let id = u64::read(buf)?;
        let action = bulwark_types::CustodyAction::read(buf)?;
        let by = u16::read(buf)?;
        let key = (id, commonware_codec::Encode::encode(&action).to_vec());
        if action.check().is_err()
            || state
                .pending
                .last_key_value()
                .is_some_and(|(prev, _)| *prev >= key)
        {
            return Err(SnapshotError::NotCanonical(
                "custody: waiting actions valid, in increasing order",
            ));
        }
        state.pending.insert(key, (action, by));
    }
    let count = read_count(buf, 8)?;
    if count > DONE_IDS_KEPT {
        return Err(SnapshotError::NotCanonical("custody: spent ids bounded"));
    }
    for _ in 0..count {
        let id = u64::read(buf)?;
        if state.done.last().is_some_and(|prev| *prev >= id) {
            return Err(SnapshotError::NotCanonical("custody: spent ids increasing"));
        }
        state.done.insert(id);
    }
    state.floor = u64::read(buf)?;
    state.check().map_err(SnapshotError::NotCanonical)?;
    Ok(Some(state))
}
