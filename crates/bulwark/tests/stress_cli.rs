//! `bulwark stress` as a user runs it: the example portfolios under the margin grid, shocks and
//! historical crashes, the SVG surface, the cascade analysis, and hostile files.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn bulwark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the binary runs")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

fn micros(value: &Value) -> f64 {
    value.as_f64().expect("a number")
}

#[test]
fn the_short_straddle_margin_is_its_worst_weighted_grid_loss_plus_the_short_add_on() {
    let out = bulwark(&[
        "stress",
        "--portfolio",
        "examples/portfolios/short_straddle.json",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let rows = report["rows"].as_array().expect("rows");
    // 27 core scenarios and 2 extremes.
    assert_eq!(rows.len(), 29);
    let worst = rows
        .iter()
        .map(|r| {
            let loss = (-micros(&r["value_change_micros"])).max(0.0);
            (loss * micros(&r["cover_pct"]) / 100.0).ceil()
        })
        .fold(0.0_f64, f64::max);
    assert!(worst > 0.0, "a short straddle loses somewhere on the grid");
    // Add-on: 1% of the index x 0.01 BTC per short contract x 20 shorts = 200 USDC; one
    // micro-USDC per contract of rounding allowance.
    let expected = worst + 200_000_000.0 + 20.0;
    let maintenance = micros(&report["base"]["maintenance_micros"]);
    assert!(
        (maintenance - expected).abs() <= 2.0,
        "maintenance {maintenance} vs {expected}"
    );
    let table = stdout(&bulwark(&[
        "stress",
        "--portfolio",
        "examples/portfolios/short_straddle.json",
    ]));
    assert!(table.contains("worst scenario: grid +32.00% vol unchanged"));
    assert!(table.contains(&format!("maintenance {:.2}", maintenance / 1e6)));
}

#[test]
fn historical_shocks_print_their_sources_and_user_shocks_run_by_name() {
    let table = stdout(&bulwark(&[
        "stress",
        "--portfolio",
        "examples/portfolios/hedged_book.json",
        "--historical",
    ]));
    for name in ["2020-03-12 Black Thursday", "2021-05-19 crash"] {
        assert!(table.contains(name), "{name}");
    }
    assert!(table.contains("sources:") && table.contains("APPROXIMATE"));
    let json = stdout(&bulwark(&[
        "stress",
        "--portfolio",
        "examples/portfolios/hedged_book.json",
        "--shocks",
        "examples/portfolios/shocks.json",
        "--json",
    ]));
    let report: Value = serde_json::from_str(&json).expect("JSON");
    let names: Vec<&str> = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["scenario"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "index -20%, vol +30 pts",
            "index +15%, vol -10 pts",
            "vol crush"
        ]
    );
}

#[test]
fn the_plot_is_an_svg_heat_map_of_every_cell() {
    let dir = std::env::temp_dir().join(format!("bulwark-stress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let svg_path = dir.join("surface.svg");
    stdout(&bulwark(&[
        "stress",
        "--portfolio",
        "examples/portfolios/short_straddle.json",
        "--plot",
        svg_path.to_str().expect("utf-8"),
    ]));
    let svg = std::fs::read_to_string(&svg_path).expect("written");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("class=\"cell\"").count(), 21 * 11);
    // A short straddle loses most on the largest moves with vol up: red there.
    assert!(svg.contains("+50% index, +80 vol pts: -"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_cascade_reports_every_variant() {
    let json = stdout(&bulwark(&[
        "stress",
        "--cascade",
        "--accounts",
        "20",
        "--json",
    ]));
    let report: Value = serde_json::from_str(&json).expect("JSON");
    let variants = report["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 11);
    assert_eq!(
        variants[0]["protections"]["name"].as_str(),
        Some("all protections on")
    );
    assert!(
        variants
            .iter()
            .all(|v| v["margin_calls"].as_u64().is_some())
    );
}

#[test]
fn hostile_files_are_refused_by_name_without_a_panic() {
    let dir = std::env::temp_dir().join(format!("bulwark-stress-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = std::fs::read_to_string(repo().join("examples/portfolios/short_straddle.json"))
        .expect("example");
    let huge = format!("{}{}", " ".repeat(5 << 20), good);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_string(),
            "not a portfolio",
        ),
        (
            "unknown",
            good.replace("\"vol\": 0.6", "\"vol\": 0.6, \"leverage\": 3"),
            "unknown field",
        ),
        (
            "bad_name",
            good.replace("BTC_USDC-25DEC26-100000-C", "BTC-25DEC26-100000-C"),
            "instrument",
        ),
        (
            "infinite",
            good.replace("\"index\": 100000", "\"index\": 1e999"),
            "not a portfolio",
        ),
        (
            "negative_index",
            good.replace("\"index\": 100000", "\"index\": -5"),
            "index must be positive",
        ),
        (
            "bad_vol",
            good.replace("\"vol\": 0.6", "\"vol\": -1"),
            "vol",
        ),
        ("huge", huge, "larger than"),
    ];
    for (name, text, expected) in cases {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, text).expect("write");
        let out = bulwark(&["stress", "--portfolio", path.to_str().expect("utf-8")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    let missing = bulwark(&["stress", "--portfolio", "no/such/file.json"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("opening"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_flag_of_another_mode_or_out_of_its_range_is_refused_by_clap() {
    let portfolio = "examples/portfolios/short_straddle.json";
    let monte_carlo = ["--monte-carlo", "--paths", "2", "--threads", "1"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // Cascade flags elsewhere.
        (
            [&monte_carlo[..], &["--flash"]].concat(),
            "cannot be used with",
        ),
        (
            [&monte_carlo[..], &["--crash-pct", "50"]].concat(),
            "cannot be used with",
        ),
        (
            vec!["--portfolio", portfolio, "--flash"],
            "cannot be used with",
        ),
        (
            vec!["--portfolio", portfolio, "--crash-pct", "5"],
            "cannot be used with",
        ),
        // Monte Carlo flags elsewhere.
        (
            vec!["--portfolio", portfolio, "--paths", "7"],
            "cannot be used with",
        ),
        (
            vec!["--portfolio", portfolio, "--threads", "3"],
            "cannot be used with",
        ),
        (vec!["--cascade", "--paths", "5"], "cannot be used with"),
        (vec!["--cascade", "--threads", "2"], "cannot be used with"),
        // Population flags with a portfolio.
        (
            vec!["--portfolio", portfolio, "--accounts", "5"],
            "cannot be used with",
        ),
        (
            vec!["--portfolio", portfolio, "--seed", "3"],
            "cannot be used with",
        ),
        // Portfolio flags with another mode.
        (vec!["--cascade", "--historical"], "cannot be used with"),
        (
            vec!["--cascade", "--shocks", portfolio],
            "cannot be used with",
        ),
        (
            vec!["--monte-carlo", "--plot", "x.svg"],
            "cannot be used with",
        ),
        // Out of their ranges.
        (
            vec!["--monte-carlo", "--threads", "300"],
            "invalid value '300'",
        ),
        (vec!["--monte-carlo", "--threads", "0"], "invalid value '0'"),
        (vec!["--monte-carlo", "--paths", "0"], "invalid value '0'"),
        (
            vec!["--monte-carlo", "--paths", "10000001"],
            "invalid value '10000001'",
        ),
    ];
    for (args, expected) in cases {
        let out = bulwark(&[&["stress"], &args[..]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} was accepted: {stderr}"
        );
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn an_expired_option_and_a_bad_unused_surface_point_are_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("bulwark-stress-expiry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cases = [
        (
            r#"{"index": 100000, "collateral": 50000, "time_ms": 1895478400000, "vol": 0.6,
            "positions": [{"instrument": "BTC_USDC-25DEC26-100000-C", "qty": -10}]}"#,
            "positions[0] BTC_USDC-25DEC26-100000-C: expired at",
        ),
        (
            r#"{"index": 100000, "collateral": 50000, "time_ms": 1795478400000,
            "surface": [{"expiry":"26DEC26","vol":-5},{"expiry":"25DEC26","vol":0.4}],
            "positions": [{"instrument": "BTC_USDC-25DEC26-100000-C", "qty": 1}]}"#,
            "surface[0] (26DEC26) vol -5",
        ),
        (
            r#"{"index": 1e15, "collateral": 0, "time_ms": 1795478400000, "vol": 0.6,
            "positions": [{"instrument": "BTC_USDC-PERPETUAL", "qty": 1}]}"#,
            "index 1e15 USDC is above the largest price",
        ),
    ];
    for (i, (text, expected)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("{i}.json"));
        std::fs::write(&path, text).expect("write");
        let out = bulwark(&["stress", "--portfolio", path.to_str().expect("utf-8")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{i} was accepted");
        assert!(stderr.contains(expected), "{i}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
