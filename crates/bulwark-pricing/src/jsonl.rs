//! One JSON request line in, one JSON answer line out: the pure core of `bulwark options`.
//!
//! Owns: the request and answer schemas below and [`answer_line`].
//! Never: reads or writes a stream (the `bulwark` binary loops over stdin), panics on any input,
//! or answers with more or less than one single-line JSON object.
//! Bounds: lines over [`LINE_BYTES_MAX`] bytes are refused unparsed; a fit takes at most
//! [`crate::QUOTES_MAX`] quotes.
//!
//! Requests (`rate` is optional everywhere, default 0; `id`, any JSON value, is optional and
//! echoed; unknown fields are refused):
//! - `{"op":"price","kind":"call"|"put","forward":F,"strike":K,"time":T,"vol":V,"rate":R}`
//!   answers `{"op":"price","price":..,"delta":..,"gamma":..,"vega":..,"theta":..,"rho":..,
//!   "vanna":..,"volga":..}` (conventions in the crate README: vega per 1.00 vol, theta per year).
//! - `{"op":"iv","kind":..,"forward":F,"strike":K,"time":T,"rate":R,"price":P}` answers
//!   `{"op":"iv","iv":V}`.
//! - `{"op":"fit","forward":F,"time":T,"rate":R,"loss":"tukey"|"huber"|"least_squares",
//!   "quotes":[Q, ..]}` (loss optional, default `tukey`), where each quote `Q` is
//!   `{"strike":K,"iv":V}` or `{"strike":K,"price":P,"kind":"call"|"put"}`, with optional
//!   `"bid"` and `"ask"` in the quote's own units (vols for an `iv` quote, discounted prices for a
//!   `price` quote) and optional `"weight"` (positive). It answers `{"op":"fit","a":..,"b":..,
//!   "rho":..,"m":..,"sigma":..,"vol_atm":..,"scale_vol":..,"iterations":N,"iv_market":[..],
//!   "iv_fitted":[..],"residuals":[..],"outliers":[{"index":i,"reason":CODE,"detail":TEXT}],
//!   "butterfly_violations":[{"k":..,"g":..}]}`; the arrays run parallel to `quotes`, with `null`
//!   where a quote has no value. Reason codes: `invalid_input`, `crossed`, `below_intrinsic`,
//!   `above_upper_bound`, `no_time_value`, `residual`.
//!
//! Any failure answers `{"error":TEXT,"code":CODE}` (plus `op` and `id` when they could be read).
//! Codes: `malformed` (not JSON, not an object, unknown op or fields, wrong types),
//! `line_too_long`, or a [`crate::PricingError::code`] such as `below_intrinsic`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::black::{Black76, OptionKind};
use crate::error::PricingError;
use crate::fit::{OutlierReason, QuoteValue, RobustLoss, SmileQuote, fit_smile};
use crate::implied::implied_vol;

/// Longest line accepted: 10,000 quotes of about 100 bytes, with room to spare.
pub const LINE_BYTES_MAX: usize = 2 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Request {
    Price(PriceRequest),
    Iv(IvRequest),
    Fit(FitRequest),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceRequest {
    kind: OptionKind,
    forward: f64,
    strike: f64,
    time: f64,
    vol: f64,
    #[serde(default)]
    rate: f64,
    #[serde(default, rename = "id")]
    _id: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IvRequest {
    kind: OptionKind,
    forward: f64,
    strike: f64,
    time: f64,
    price: f64,
    #[serde(default)]
    rate: f64,
    #[serde(default, rename = "id")]
    _id: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FitRequest {
    forward: f64,
    time: f64,
    #[serde(default)]
    rate: f64,
    #[serde(default)]
    loss: Option<RobustLoss>,
    quotes: Vec<QuoteJson>,
    #[serde(default, rename = "id")]
    _id: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteJson {
    strike: f64,
    #[serde(default)]
    iv: Option<f64>,
    #[serde(default)]
    price: Option<f64>,
    #[serde(default)]
    kind: Option<OptionKind>,
    #[serde(default)]
    bid: Option<f64>,
    #[serde(default)]
    ask: Option<f64>,
    #[serde(default)]
    weight: Option<f64>,
}

/// Why a line got an error answer.
enum Failure {
    LineTooLong,
    Malformed(String),
    Pricing(PricingError),
}

/// The answer to a line longer than [`LINE_BYTES_MAX`], for readers that stop buffering a line
/// once it is too long (as `bulwark options` does) and so never hold the whole of it.
pub fn answer_line_too_long() -> String {
    render(error_object(Failure::LineTooLong, &Map::new()))
}

/// Answers one request line given as raw bytes: not UTF-8 is a `malformed` answer.
pub fn answer_line_bytes(line: &[u8]) -> String {
    if line.len() > LINE_BYTES_MAX {
        return answer_line_too_long();
    }
    match std::str::from_utf8(line) {
        Ok(text) => answer_line(text),
        Err(e) => render(error_object(
            Failure::Malformed(format!("line is not UTF-8: {e}")),
            &Map::new(),
        )),
    }
}

/// Answers one request line with exactly one JSON object on one line (no trailing newline).
pub fn answer_line(line: &str) -> String {
    if line.len() > LINE_BYTES_MAX {
        return render(error_object(Failure::LineTooLong, &Map::new()));
    }
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(e) => return render(error_object(Failure::Malformed(e.to_string()), &Map::new())),
    };
    // The echo fields: `op` (if a string) and `id`.
    let mut echo = Map::new();
    if let Some(object) = value.as_object() {
        if let Some(op @ Value::String(_)) = object.get("op") {
            echo.insert("op".into(), op.clone());
        }
        if let Some(id) = object.get("id") {
            echo.insert("id".into(), id.clone());
        }
    }
    let answer = match serde_json::from_value::<Request>(value) {
        Ok(request) => answer(request).map_err(Failure::Pricing),
        Err(e) => Err(Failure::Malformed(e.to_string())),
    };
    match answer {
        Ok(mut object) => {
            for (key, value) in echo {
                object.insert(key, value);
            }
            render(object)
        }
        Err(failure) => render(error_object(failure, &echo)),
    }
}

fn answer(request: Request) -> Result<Map<String, Value>, PricingError> {
    match request {
        Request::Price(r) => {
            let greeks =
                Black76::new(r.forward, r.strike, r.time, r.vol, r.rate)?.greeks(r.kind)?;
            Ok(object(json!({
                "price": greeks.price, "delta": greeks.delta, "gamma": greeks.gamma,
                "vega": greeks.vega, "theta": greeks.theta, "rho": greeks.rho,
                "vanna": greeks.vanna, "volga": greeks.volga,
            })))
        }
        Request::Iv(r) => {
            let iv = implied_vol(r.kind, r.forward, r.strike, r.time, r.rate, r.price)?;
            Ok(object(json!({ "iv": iv })))
        }
        Request::Fit(r) => answer_fit(r),
    }
}

fn answer_fit(request: FitRequest) -> Result<Map<String, Value>, PricingError> {
    let quotes: Vec<SmileQuote> = request.quotes.iter().map(to_quote).collect();
    let loss = request.loss.unwrap_or(RobustLoss::Tukey);
    let fit = fit_smile(request.forward, request.time, request.rate, &quotes, loss)?;
    let outliers: Vec<Value> = fit
        .quotes
        .iter()
        .enumerate()
        .filter_map(|(index, q)| {
            q.outlier.map(|reason| {
                json!({ "index": index, "reason": reason.code(), "detail": detail(&reason) })
            })
        })
        .collect();
    let violations: Vec<Value> = fit
        .butterfly_violations
        .iter()
        .map(|v| json!({ "k": v.log_moneyness, "g": v.density }))
        .collect();
    let p = fit.params;
    Ok(object(json!({
        "a": p.a(), "b": p.b(), "rho": p.rho(), "m": p.m(), "sigma": p.sigma(),
        "vol_atm": fit.vol_atm(),
        "scale_vol": fit.scale_vol,
        "iterations": fit.iterations,
        "iv_market": fit.quotes.iter().map(|q| q.vol_market).collect::<Vec<_>>(),
        "iv_fitted": fit.quotes.iter().map(|q| q.vol_fitted).collect::<Vec<_>>(),
        "residuals": fit.quotes.iter().map(|q| q.residual_vol).collect::<Vec<_>>(),
        "outliers": outliers,
        "butterfly_violations": violations,
    })))
}

/// A JSON quote as a fit quote. A quote with both or neither of `iv` and `price`, or a price
/// without `kind`, becomes a quote that fails validation (NaN value), so it is flagged
/// `invalid_input` in place rather than failing the whole line.
fn to_quote(q: &QuoteJson) -> SmileQuote {
    let value = match (q.iv, q.price, q.kind) {
        (Some(vol), None, _) => QuoteValue::Vol(vol),
        (None, Some(price), Some(kind)) => QuoteValue::Price { kind, price },
        (None, Some(_), None) => QuoteValue::Price {
            kind: OptionKind::Call,
            price: f64::NAN,
        },
        _ => QuoteValue::Vol(f64::NAN),
    };
    let bid_ask = match (q.bid, q.ask) {
        (Some(bid), Some(ask)) => Some((bid, ask)),
        (None, None) => None,
        // One side only: not a market to check; NaN makes it an invalid input.
        _ => Some((f64::NAN, f64::NAN)),
    };
    SmileQuote {
        strike: q.strike,
        value,
        bid_ask,
        weight: q.weight,
    }
}

fn detail(reason: &OutlierReason) -> String {
    match *reason {
        OutlierReason::InvalidInput { input } => format!("invalid {input}"),
        OutlierReason::Crossed { bid, ask } => format!("bid {bid} above ask {ask}"),
        OutlierReason::BelowIntrinsic { price, intrinsic } => {
            format!("price {price} below intrinsic {intrinsic}")
        }
        OutlierReason::AboveUpperBound { price, bound } => {
            format!("price {price} at or above upper bound {bound}")
        }
        OutlierReason::NoTimeValue { price, intrinsic } => {
            format!("price {price} has no time value over intrinsic {intrinsic}")
        }
        OutlierReason::Residual {
            residual_vol,
            threshold_vol,
        } => {
            format!("residual {residual_vol} beyond {threshold_vol}")
        }
    }
}

fn error_object(failure: Failure, echo: &Map<String, Value>) -> Map<String, Value> {
    let (message, code) = match failure {
        Failure::LineTooLong => (
            format!("line longer than {LINE_BYTES_MAX} bytes"),
            "line_too_long",
        ),
        Failure::Malformed(message) => (message, "malformed"),
        Failure::Pricing(error) => (error.to_string(), error.code()),
    };
    let mut object = echo.clone();
    object.insert("error".into(), Value::String(message));
    object.insert("code".into(), Value::String(code.into()));
    object
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// serde_json writes one line (no pretty printing) and escapes newlines inside strings.
fn render(object: Map<String, Value>) -> String {
    let line = Value::Object(object).to_string();
    debug_assert!(!line.contains('\n'), "an answer is one line");
    line
}
