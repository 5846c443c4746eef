//! `bulwark simulate` as a user runs it: the catalogue listed, a scenario file scored to a
//! table and JSON, a bad file refused naming the field, and a run with a deliberate bug
//! failing non-zero with the seed and the command that replays it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bulwark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh directory for one test's files, removed when the test ends (passed or not).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn dir(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("bulwark-simulate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    Scratch(dir)
}

const SCENARIO: &str = r#"
name = "cli-crash"
description = "a short run for the command-line tests"
validators = 4
duration = { blocks = 50 }
link = { latency_ms = 10, jitter_ms = 3, success_percent = 100 }
market = { instruments = ["BTC_USDC-PERPETUAL"], traders = 8, order_interval_ms = 100 }
"#;

#[test]
fn simulate_list_names_every_catalogue_scenario() {
    let out = bulwark(&["simulate", "--list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for name in [
        "baseline",
        "crash-restart",
        "partition-2-2",
        "mock-equivocator",
        "mixed-10",
    ] {
        assert!(text.contains(name), "{name} listed:\n{text}");
    }
}

#[test]
fn simulate_a_scenario_file_prints_the_scorecard_and_writes_json() {
    let dir = dir("ok");
    let file = dir.join("crash.toml");
    let scenario = format!(
        "{SCENARIO}
[[fault]]
kind = \"crash\"
validator = 3
at_height = 15
heal_after_s = 2.0
"
    );
    std::fs::write(&file, scenario).expect("written");
    let json = dir.join("card.json");
    let out = bulwark(&[
        "simulate",
        file.to_str().unwrap(),
        "--seed",
        "3",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let table = String::from_utf8(out.stdout).expect("utf-8");
    assert!(table.contains("scenario cli-crash  seed 3"), "{table}");
    assert!(table.contains("liveness: of baseline"), "{table}");
    let card: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(card["seed"], 3);
    assert_eq!(card["safety"]["violations"].as_array().unwrap().len(), 0);
    assert!(card["liveness"]["baseline_blocks_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(card["liveness"]["recoveries"][0]["kind"], "crash");
    assert!(card["latency"]["p99_ms"].as_u64().is_some());
}

/// An output path that cannot be written is refused before the run, not after its minutes.
#[test]
fn an_unwritable_output_path_is_refused_before_the_run() {
    let dir = dir("unwritable");
    let nowhere = dir.join("no-such-dir").join("card.json");
    for args in [
        vec!["simulate", "baseline", "--json", nowhere.to_str().unwrap()],
        vec!["simulate", "baseline", "--html", nowhere.to_str().unwrap()],
        vec![
            "simulate",
            "sweep",
            "sweep-200",
            "--seeds",
            "1",
            "--json",
            nowhere.to_str().unwrap(),
        ],
    ] {
        let out = bulwark(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains("cannot write"), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("scenario ") && String::from_utf8_lossy(&out.stdout).is_empty(),
            "nothing ran: {stderr}"
        );
    }
}

#[test]
fn simulate_refuses_a_bad_file_naming_the_field_and_an_unknown_name() {
    let dir = dir("bad");
    let file = dir.join("bad.toml");
    std::fs::write(&file, SCENARIO.replace("validators = 4", "validators = 6")).unwrap();
    let out = bulwark(&["simulate", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("validators: 6 is not 4, 7 or 10").count(),
        1,
        "said once: {stderr}"
    );
    let out = bulwark(&["simulate", "no-such-scenario"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no catalogue scenario is named"),
        "{stderr}"
    );
}

/// A deliberate bug (validator 1's state forked at height 20) stops the run: exit non-zero,
/// the seed, the timeline and the replay command on standard error, the failure as JSON.
#[test]
fn simulate_exits_non_zero_with_a_replayable_seed_when_an_invariant_breaks() {
    let dir = dir("bug");
    let file = dir.join("forked.toml");
    let scenario = format!(
        "{SCENARIO}
[[fault]]
kind = \"fork-state\"
validator = 1
at_height = 20
"
    );
    std::fs::write(&file, scenario).unwrap();
    let json = dir.join("failure.json");
    let path = file.to_str().unwrap();
    let out = bulwark(&[
        "simulate",
        path,
        "--seed",
        "9",
        "--no-baseline",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "the violation fails the command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("seed 9"), "{stderr}");
    assert!(stderr.contains("validator 1 halted"), "{stderr}");
    assert!(stderr.contains("timeline:"), "{stderr}");
    assert!(
        stderr.contains(&format!("replay: bulwark simulate {path} --seed 9")),
        "{stderr}"
    );
    let failure: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(failure["seed"], 9);
    assert_eq!(failure["violation"]["kind"], "halted");
}

/// `simulate sweep`: two seeds of a ranged scenario on two threads pass, with seeds per hour
/// reported and the sweep written as JSON; a sweep of a broken scenario exits non-zero naming
/// the failing seed and the command that replays it.
#[test]
fn simulate_sweep_runs_seeds_in_parallel_and_names_a_failing_seed() {
    let dir = dir("sweep");
    let file = dir.join("ranged.toml");
    let ranged = format!(
        "{}
liveness = {{ blocks = 5, within_s = 30.0 }}

[[fault]]
kind = \"crash\"
validator = \"any\"
at_height = [5, 25]
heal_after_s = [0.2, 1.5]
",
        SCENARIO.replace("blocks = 50", "blocks = 30")
    );
    std::fs::write(&file, ranged).unwrap();
    let json = dir.join("sweep.json");
    let path = file.to_str().unwrap();
    let out = bulwark(&[
        "simulate",
        "sweep",
        path,
        "--seeds",
        "2",
        "--jobs",
        "2",
        "--first-seed",
        "4",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("seeds/hour"), "{stdout}");
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["seeds"], 2);
    assert_eq!(report["first_seed"], 4);
    assert_eq!(report["passed"], 2);
    assert!(report["seeds_per_hour"].as_f64().unwrap() > 0.0);

    let broken = dir.join("broken.toml");
    std::fs::write(
        &broken,
        format!("{SCENARIO}\n[[fault]]\nkind = \"fork-state\"\nvalidator = \"any\"\nat_height = [10, 20]\n"),
    )
    .unwrap();
    let broken = broken.to_str().unwrap();
    let out = bulwark(&[
        "simulate",
        "sweep",
        broken,
        "--seeds",
        "1",
        "--first-seed",
        "8",
    ]);
    assert!(!out.status.success(), "a failing seed fails the sweep");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
    assert!(
        stdout.contains(&format!("replay: bulwark simulate {broken} --seed 8")),
        "{stdout}"
    );
}

/// `--html`: the report is written as one HTML file with its six inline SVG charts.
#[test]
fn simulate_writes_an_html_report() {
    let dir = dir("html");
    let file = dir.join("plain.toml");
    std::fs::write(&file, SCENARIO.replace("blocks = 50", "blocks = 20")).unwrap();
    let html = dir.join("report.html");
    let out = bulwark(&[
        "simulate",
        file.to_str().unwrap(),
        "--seed",
        "2",
        "--no-baseline",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&html).expect("written");
    assert!(text.starts_with("<!DOCTYPE html>"));
    assert_eq!(text.matches("<svg").count(), 6);
    assert!(text.contains("cli-crash"));
}
