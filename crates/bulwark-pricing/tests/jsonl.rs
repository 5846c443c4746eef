//! The JSON lines request/answer core of `bulwark options`.

use bulwark_pricing::jsonl::{LINE_BYTES_MAX, answer_line};
use serde_json::Value;

fn answer(line: &str) -> Value {
    let out = answer_line(line);
    assert!(!out.contains('\n'), "one line: {out}");
    let value: Value = serde_json::from_str(&out).expect("answers are JSON");
    assert!(value.is_object(), "answers are objects: {out}");
    value
}

#[test]
fn price_answers_price_and_all_greeks() {
    // Reference: tests/black.rs first case (QuantLib / mpmath), call F=100 K=100 T=1 vol=0.2 r=0.05.
    let a = answer(
        r#"{"op":"price","kind":"call","forward":100,"strike":100,"time":1,"vol":0.2,"rate":0.05}"#,
    );
    let price = a["price"].as_f64().unwrap();
    assert!((price - 7.577_082_146_427_273).abs() < 1e-12);
    for key in ["delta", "gamma", "vega", "theta", "rho", "vanna", "volga"] {
        assert!(a[key].is_f64(), "{key} in {a}");
    }
    assert_eq!(a["op"], "price");
}

#[test]
fn iv_answers_the_vol_that_reprices() {
    let a = answer(
        r#"{"op":"iv","kind":"call","forward":100,"strike":100,"time":1,"rate":0.05,"price":7.5770821464272729}"#,
    );
    assert!((a["iv"].as_f64().unwrap() - 0.2).abs() < 1e-12, "{a}");
}

#[test]
fn iv_below_intrinsic_answers_a_named_error() {
    let a = answer(r#"{"op":"iv","kind":"call","forward":100,"strike":80,"time":1,"price":10}"#);
    assert_eq!(a["code"], "below_intrinsic");
    assert!(a["error"].as_str().unwrap().contains("below intrinsic"));
}

#[test]
fn iv_above_bound_answers_a_named_error() {
    let a = answer(r#"{"op":"iv","kind":"put","forward":100,"strike":80,"time":1,"price":90}"#);
    assert_eq!(a["code"], "above_upper_bound");
}

#[test]
fn fit_answers_parameters_vols_and_outliers() {
    let mut quotes = Vec::new();
    for i in 0..21 {
        let k = -0.5 + 0.05 * i as f64;
        let w = 0.02 + 0.15 * (-0.4 * (k - 0.05) + libm::sqrt((k - 0.05) * (k - 0.05) + 0.0225));
        let vol = libm::sqrt(w / 0.5);
        let strike = 100.0 * libm::exp(k);
        quotes.push(format!(r#"{{"strike":{strike},"iv":{vol}}}"#));
    }
    quotes[3] = r#"{"strike":80,"iv":0.9}"#.to_string();
    quotes[7] = r#"{"strike":90,"iv":0.3,"bid":0.32,"ask":0.28}"#.to_string();
    quotes[9] = r#"{"strike":95,"price":0.0,"kind":"call"}"#.to_string();
    let line = format!(
        r#"{{"op":"fit","id":7,"forward":100,"time":0.5,"quotes":[{}]}}"#,
        quotes.join(",")
    );
    let a = answer(&line);
    for key in ["a", "b", "rho", "m", "sigma", "vol_atm"] {
        assert!(a[key].is_f64(), "{key} in {a}");
    }
    assert_eq!(a["id"], 7);
    assert_eq!(a["iv_fitted"].as_array().unwrap().len(), 21);
    assert_eq!(a["residuals"].as_array().unwrap().len(), 21);
    let outliers = a["outliers"].as_array().unwrap();
    let reason = |index: u64| {
        outliers
            .iter()
            .find(|o| o["index"] == index)
            .map(|o| o["reason"].as_str().unwrap().to_string())
    };
    assert_eq!(reason(3).as_deref(), Some("residual"));
    assert_eq!(reason(7).as_deref(), Some("crossed"));
    assert_eq!(reason(9).as_deref(), Some("below_intrinsic"));
    assert!(a["butterfly_violations"].is_array());
}

#[test]
fn malformed_lines_answer_an_error_and_never_panic() {
    for line in [
        "",
        "not json",
        "[1,2,3]",
        "{}",
        r#"{"op":"nope"}"#,
        r#"{"op":"price"}"#,
        r#"{"op":"price","kind":"call","forward":"x","strike":1,"time":1,"vol":0.2}"#,
        r#"{"op":"price","kind":"straddle","forward":1,"strike":1,"time":1,"vol":0.2}"#,
        r#"{"op":"price","kind":"call","forward":1,"strike":1,"time":1,"vol":0.2,"rte":0.1}"#,
        r#"{"op":"fit","forward":100,"time":1,"quotes":"many"}"#,
    ] {
        let a = answer(line);
        assert_eq!(a["code"], "malformed", "{line} -> {a}");
    }
}

#[test]
fn invalid_model_inputs_answer_their_code() {
    let a = answer(r#"{"op":"price","kind":"call","forward":-1,"strike":100,"time":1,"vol":0.2}"#);
    assert_eq!(a["code"], "not_positive");
    assert_eq!(a["op"], "price");
}

#[test]
fn too_many_quotes_are_refused() {
    let quote = r#"{"strike":100,"iv":0.2}"#;
    let line = format!(
        r#"{{"op":"fit","forward":100,"time":1,"quotes":[{}]}}"#,
        vec![quote; 10_001].join(",")
    );
    assert_eq!(answer(&line)["code"], "too_many_quotes");
}

#[test]
fn overlong_lines_are_refused_unparsed() {
    let line = " ".repeat(LINE_BYTES_MAX + 1);
    assert_eq!(answer(&line)["code"], "line_too_long");
}

#[test]
fn answers_are_deterministic() {
    let line = r#"{"op":"price","kind":"put","forward":3000,"strike":2900,"time":0.00274,"vol":1.2,"rate":0.05}"#;
    assert_eq!(answer_line(line), answer_line(line));
}
