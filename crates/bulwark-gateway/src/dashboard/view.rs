//! The dashboard's state as one JSON document: the cluster as its validators report it, and
//! everything else from this gateway's own replica (state it computed from proven blocks).
//!
//! Never: holds the replica's lock while reading the cluster reports; reports more than the
//! bounds below (instruments, levels, trades, liquidations).

use super::health::ValidatorReport;
use super::history::History;
use crate::deribit::convert::{money, qty_amount, ticks_price, unit_price};
use crate::gateway::Gateway;
use crate::index::ReadModel;
use bulwark_exchange::{Exchange, Instrument, InstrumentStatus};
use bulwark_pricing::{OptionKind, QuoteValue, RobustLoss, SmileQuote, fit_smile};
use bulwark_types::{AssetCode, InstrumentKind, Right, Side};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Instruments listed on the page at most (those with a book or a position first).
pub const INSTRUMENTS_MAX: usize = 200;
/// Price levels per side of each book.
pub const LEVELS_MAX: usize = 10;
/// Recent public trades per instrument.
pub const TRADES_MAX: usize = 10;
/// Recent liquidation events and mode changes shown.
pub const EVENTS_MAX: usize = 50;
/// Points of each fitted smile's curve.
pub const CURVE_POINTS: usize = 41;
/// The quotes offered to each series' fit, nearest the index first (the exchange's own bound).
pub const SMILE_QUOTES_MAX: usize = 64;

const MS_PER_YEAR: f64 = 365.0 * 86_400_000.0;

/// The whole dashboard state.
pub fn state(gateway: &Gateway, reports: &[ValidatorReport]) -> Value {
    let replica = gateway.replica.lock();
    let exchange = replica.chain.finalized();
    let history = &replica.history;
    let lies: Vec<Value> = replica
        .lies
        .iter()
        .map(|(validator, lie)| json!({"validator": validator, "lie": lie}))
        .collect();
    json!({
        "generated_ms": crate::gateway::now_ms(),
        "replica": {
            "height": replica.chain.finalized_height(),
            "block": bulwark_node::executor::hex(replica.chain.finalized_digest().as_ref()),
            "state_digest": bulwark_node::executor::hex(exchange.state_digest().as_ref()),
            "time_ms": exchange.time().millis(),
            "halted": replica.halted,
            "lies": lies,
        },
        "cluster": cluster(reports, history),
        "markets": markets(exchange, &replica.index),
        "oracle": oracle(exchange, history),
        "smiles": smiles(exchange),
        "risk": risk(exchange, history),
        "modes": modes(exchange, history),
    })
}

/// Each validator's own report, and whether its state digest matches the one computed here.
fn cluster(reports: &[ValidatorReport], history: &History) -> Value {
    let validators: Vec<Value> = reports
        .iter()
        .map(|report| {
            let Some(status) = &report.status else {
                return json!({
                    "url": report.url,
                    "reachable": false,
                    "error": report.error,
                });
            };
            // The newest height it reported that this gateway has computed too.
            let checked = report
                .digests
                .iter()
                .rev()
                .find_map(|(h, theirs)| history.digest_at(*h).map(|ours| (*h, ours == theirs)));
            let digest_check = match checked {
                Some((_, true)) => "agrees",
                Some((_, false)) => "differs",
                None => "unverified",
            };
            let reported = status["state_digest"].as_str();
            json!({
                "url": report.url,
                "reachable": report.error.is_none(),
                "error": report.error,
                "read_at_ms": report.read_at_ms,
                "node": status["node"],
                "mode": status["mode"],
                "finalized_height": status["finalized_height"],
                "tip_height": status["tip_height"],
                "view": status["view"],
                "consensus_view": status["consensus_view"],
                "leader": status["leader"],
                "peers_connected": status["peers_connected"],
                "peers_expected": status["peers_expected"],
                "views_skipped": status["views_skipped"],
                "faults_observed": status["faults_observed"],
                "proposals_refused": status["proposals_refused"],
                "refused": status["refused"],
                "gossip_dropped": status["gossip_dropped"],
                "gossip_muted": status["gossip_muted"],
                "gossip_forgers": status["gossip_forgers"],
                "mempool_txs": status["mempool_txs"],
                "state_digest": reported,
                "digest_check": digest_check,
                "digest_checked_at": checked.map(|(h, _)| h),
            })
        })
        .collect();
    json!({ "validators": validators })
}

/// Why an instrument does or does not trade normally.
fn market_mode(exchange: &Exchange, instrument: &Instrument) -> &'static str {
    match instrument.status {
        InstrumentStatus::Expired => "expired",
        InstrumentStatus::Settled => "settled",
        InstrumentStatus::Trading if instrument.breaker.halted_until_ms.is_some() => "halted",
        InstrumentStatus::Trading if !exchange.oracle_fresh(instrument.spec.underlying()) => {
            "reduce_only"
        }
        InstrumentStatus::Trading => "normal",
    }
}

fn markets(exchange: &Exchange, index: &ReadModel) -> Value {
    let mut listed: Vec<&Instrument> = exchange.instruments().iter().collect();
    // Instruments with orders or positions first, then in listing order.
    listed.sort_by_key(|i| {
        let busy =
            i.book.best_bid().is_some() || i.book.best_ask().is_some() || i.open_interest() > 0;
        (!busy, i.id)
    });
    let shown: Vec<Value> = listed
        .into_iter()
        .take(INSTRUMENTS_MAX)
        .map(|instrument| {
            let spec = &instrument.spec;
            let levels = |side| -> Vec<Value> {
                instrument
                    .book
                    .depth(side, LEVELS_MAX)
                    .into_iter()
                    .map(|(price, qty, orders)| {
                        json!([ticks_price(price, spec), qty_amount(qty, spec), orders])
                    })
                    .collect()
            };
            let trades: Vec<Value> = index
                .public_trades(instrument.id)
                .take(TRADES_MAX)
                .map(|t| {
                    json!({
                        "price": ticks_price(t.price, spec),
                        "amount": qty_amount(t.qty, spec),
                        "direction": if t.taker_side == Side::Buy { "buy" } else { "sell" },
                        "timestamp": t.time_ms,
                    })
                })
                .collect();
            json!({
                "instrument_name": spec.name.to_string(),
                "kind": if instrument.is_option() { "option" } else { "future" },
                "mode": market_mode(exchange, instrument),
                "mark_price": instrument.mark.map(unit_price),
                "index_price": exchange.index_price(spec.underlying()).map(unit_price),
                "open_interest": crate::deribit::convert::contracts_amount(instrument.open_interest(), spec),
                "bids": levels(Side::Buy),
                "asks": levels(Side::Sell),
                "trades": trades,
            })
        })
        .collect();
    json!({
        "instruments_total": exchange.instruments().len(),
        "instruments": shown,
    })
}

/// The index of each underlying against every validator's newest proven observation.
fn oracle(exchange: &Exchange, history: &History) -> Value {
    let Some(state) = exchange.oracle_state() else {
        return json!({
            "source": "leader-supplied: no oracle in this chain's genesis; each block's leader supplies the index",
            "assets": [],
        });
    };
    let records = state.records();
    let assets: Vec<Value> = state
        .assets()
        .map(|(asset, index)| {
            let agreed = index.index();
            let observations: Vec<Value> = history
                .observations(*asset)
                .map(|(validator, seen)| {
                    let deviation_bps = agreed.map(|i| {
                        let i = i.micros() as f64;
                        ((seen.price.micros() as f64 - i) / i * 10_000.0).round()
                    });
                    let record = records
                        .iter()
                        .find(|(key, _)| bulwark_node::executor::hex(key.as_ref()) == validator);
                    json!({
                        "validator": validator,
                        "price": unit_price(seen.price),
                        "deviation_bps": deviation_bps,
                        "observed_at_ms": seen.observed_at_ms,
                        "height": seen.height,
                        "outlier": seen.outlier,
                        "accepted": record.map(|(_, r)| r.accepted),
                        "outliers": record.map(|(_, r)| r.outliers),
                        "absent": record.map(|(_, r)| r.absent),
                    })
                })
                .collect();
            json!({
                "asset": asset.as_str(),
                "mode": format!("{:?}", index.mode()).to_lowercase(),
                "index": agreed.map(unit_price),
                "median": index.raw().map(unit_price),
                "updated_at_ms": index.updated_at_ms(),
                "observations": observations,
            })
        })
        .collect();
    json!({
        "source": "median of 2f+1 validators' signed observations, deviation-guarded",
        "assets": assets,
    })
}

fn option_kind(right: Right) -> OptionKind {
    match right {
        Right::Call => OptionKind::Call,
        Right::Put => OptionKind::Put,
    }
}

/// Each series' smile the exchange marks from (its fitted curve), and its books' quotes now,
/// flagged by the same robust fit (Tukey's biweight) the exchange refits with.
fn smiles(exchange: &Exchange) -> Value {
    let now = exchange.time().millis();
    let mut series: BTreeMap<(AssetCode, u64), Vec<&Instrument>> = BTreeMap::new();
    for instrument in exchange.instruments() {
        if let InstrumentKind::Option { expiry_ms, .. } = instrument.kind
            && instrument.status == InstrumentStatus::Trading
        {
            series
                .entry((instrument.spec.underlying(), expiry_ms))
                .or_default()
                .push(instrument);
        }
    }
    let fitted: BTreeMap<_, _> = exchange.smiles().map(|(key, f)| (*key, *f)).collect();
    let shown: Vec<Value> = series
        .into_iter()
        .map(|((asset, expiry_ms), members)| {
            let smile = fitted.get(&(asset, expiry_ms));
            let forward = exchange
                .index_price(asset)
                .map(|p| p.micros() as f64)
                .or_else(|| smile.map(|s| s.smile.forward()));
            let time_years = expiry_ms.saturating_sub(now) as f64 / MS_PER_YEAR;
            let quotes = series_quotes(&members, forward, time_years);
            let curve: Vec<Value> = smile.map_or_else(Vec::new, |s| {
                let params = s.smile.params();
                let t = s.smile.time_years();
                let (low, high) = quote_range(&quotes);
                (0..CURVE_POINTS)
                    .filter_map(|i| {
                        let k = low + (high - low) * i as f64 / (CURVE_POINTS - 1) as f64;
                        params.vol(k, t).ok().map(|vol| json!([k, vol]))
                    })
                    .collect()
            });
            json!({
                "underlying": asset.as_str(),
                "expiry_ms": expiry_ms,
                "fitted_at_ms": smile.map(|s| s.fitted_at_ms),
                "age_ms": smile.map(|s| now.saturating_sub(s.fitted_at_ms)),
                "vol_atm": smile.and_then(|s| s.smile.params().vol(0.0, s.smile.time_years()).ok()),
                "forward": forward.map(|f| f / 1e6),
                "curve": curve,
                "quotes": quotes,
            })
        })
        .collect();
    Value::Array(shown)
}

/// The log-moneyness range the curve is drawn over: the quotes' range widened by a tenth
/// each side, or +-0.3 without quotes.
fn quote_range(quotes: &[Value]) -> (f64, f64) {
    let ks: Vec<f64> = quotes
        .iter()
        .filter_map(|q| q["log_moneyness"].as_f64())
        .collect();
    let (low, high) = ks
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), k| {
            (lo.min(*k), hi.max(*k))
        });
    if !low.is_finite() || !high.is_finite() || high - low < 1e-6 {
        return (-0.3, 0.3);
    }
    let pad = (high - low) / 10.0;
    (low - pad, high + pad)
}

/// The series' two-sided quotes (mid prices) with the robust fit's verdict on each.
fn series_quotes(members: &[&Instrument], forward: Option<f64>, time_years: f64) -> Vec<Value> {
    let mut offered: Vec<(u64, String, SmileQuote)> = Vec::new();
    for instrument in members {
        let InstrumentKind::Option { strike, right, .. } = instrument.kind else {
            continue;
        };
        if instrument.book.is_halted() {
            continue;
        }
        let tick = i128::from(instrument.spec.tick_size.micros());
        let (Some((bid, _)), Some((ask, _))) =
            (instrument.book.best_bid(), instrument.book.best_ask())
        else {
            continue;
        };
        let (bid, ask) = (
            i128::from(bid.ticks()) * tick,
            i128::from(ask.ticks()) * tick,
        );
        let distance = forward.map_or(0, |f| (strike.micros() as f64 - f).abs() as u64);
        offered.push((
            distance,
            instrument.spec.name.to_string(),
            SmileQuote {
                strike: strike.micros() as f64,
                value: QuoteValue::Price {
                    kind: option_kind(right),
                    price: ((bid + ask) / 2) as f64,
                },
                bid_ask: Some((bid as f64, ask as f64)),
                weight: None,
            },
        ));
    }
    offered.sort_by_key(|(distance, ..)| *distance);
    offered.truncate(SMILE_QUOTES_MAX);
    let quotes: Vec<SmileQuote> = offered.iter().map(|(_, _, q)| *q).collect();
    let fit = forward.and_then(|f| fit_smile(f, time_years, 0.0, &quotes, RobustLoss::Tukey).ok());
    offered
        .iter()
        .enumerate()
        .map(|(i, (_, name, quote))| {
            let row = fit.as_ref().map(|f| &f.quotes[i]);
            json!({
                "instrument_name": name,
                "strike": quote.strike / 1e6,
                "log_moneyness": row.and_then(|r| r.log_moneyness)
                    .or_else(|| forward.map(|f| (quote.strike / f).ln())),
                "vol_market": row.and_then(|r| r.vol_market),
                "vol_fitted": row.and_then(|r| r.vol_fitted),
                "outlier": row.and_then(|r| r.outlier).map(|o| o.code()),
            })
        })
        .collect()
}

fn risk(exchange: &Exchange, history: &History) -> Value {
    let backstop = exchange.backstop().and_then(|id| exchange.account(id));
    let liquidations: Vec<Value> = history
        .liquidations()
        .rev()
        .take(EVENTS_MAX)
        .map(|l| {
            json!({
                "height": l.height,
                "time_ms": l.time_ms,
                "kind": l.kind.name(),
                "account": l.account.get(),
                "detail": l.detail,
            })
        })
        .collect();
    let (mut margin_calls, mut steps, mut backstop_takeovers, mut deleveraged) =
        (0u64, 0u64, 0u64, 0u64);
    for sample in history.samples() {
        margin_calls += u64::from(sample.margin_calls);
        steps += u64::from(sample.liquidation_steps);
        backstop_takeovers += u64::from(sample.backstop_takeovers);
        deleveraged += u64::from(sample.deleveraged);
    }
    let window = history
        .samples()
        .next()
        .zip(history.samples().next_back())
        .map(|(first, last)| json!({"from_height": first.height, "to_height": last.height}));
    json!({
        "insurance_fund": money(exchange.ledger().insurance_fund),
        "backstop_account": backstop.map(|a| a.id.get()),
        "backstop_positions": backstop.map_or(0, |a| a.exposures.values().filter(|e| e.position != 0).count()),
        "window": window,
        "margin_calls": margin_calls,
        "liquidation_steps": steps,
        "backstop_takeovers": backstop_takeovers,
        "deleveraged": deleveraged,
        "liquidations": liquidations,
    })
}

fn modes(exchange: &Exchange, history: &History) -> Value {
    let oracle: Vec<Value> = exchange.oracle_state().map_or_else(Vec::new, |state| {
        state
            .assets()
            .map(|(asset, index)| {
                json!({"asset": asset.as_str(), "mode": format!("{:?}", index.mode()).to_lowercase()})
            })
            .collect()
    });
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for instrument in exchange.instruments() {
        *counts.entry(market_mode(exchange, instrument)).or_default() += 1;
    }
    let changes: Vec<Value> = history
        .mode_changes()
        .rev()
        .take(EVENTS_MAX)
        .map(|c| json!({"height": c.height, "time_ms": c.time_ms, "what": c.what}))
        .collect();
    json!({
        "oracle": oracle,
        "instruments": counts,
        "changes": changes,
    })
}
