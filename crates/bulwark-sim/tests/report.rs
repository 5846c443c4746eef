//! The HTML report: one self-contained file (nothing fetched, no script) with the scorecard's
//! table and the six charts, drawn from what the lab sampled.

use bulwark_sim::{Scenario, report, score};

#[test]
fn the_report_is_one_self_contained_html_file_with_every_chart() {
    let scenario = Scenario::parse(
        r#"
name = "report-crash"
description = "a short run with a crash, for the report test"
validators = 4
duration = { blocks = 40 }
link = { latency_ms = 10, jitter_ms = 3, success_percent = 100 }
market = { instruments = ["BTC_USDC-PERPETUAL"], traders = 8, order_interval_ms = 100 }
liveness = { blocks = 5, within_s = 30.0 }

[[fault]]
kind = "crash"
validator = 2
at_height = 15
heal_after_s = 1.0
"#,
    )
    .expect("a valid scenario");
    let card = score(&scenario, 3, false).expect("the run holds");
    let samples = &card.series.samples;
    assert!(samples.len() > 10, "{} samples", samples.len());
    assert!(samples.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    assert!(
        samples
            .iter()
            .any(|s| s.prices.iter().any(|p| p.index_micros.is_some())),
        "the chain's index was sampled"
    );
    let honest = samples
        .iter()
        .filter(|s| s.prices.iter().any(|p| p.honest_micros.is_some()))
        .count();
    assert!(honest * 2 > samples.len(), "the honest price was sampled");
    assert!(samples.iter().map(|s| s.latency_count).sum::<u64>() > 0);
    assert_eq!(card.fault_windows.len(), 1);
    assert!(card.fault_windows[0].to_ms.is_some(), "the crash healed");

    let html = report::html(&card).expect("drawn");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<html").count(), 1);
    assert_eq!(html.matches("</html>").count(), 1);
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<svg").count(), 6, "six charts");
    assert_eq!(html.matches("</svg>").count(), 6);
    for chart in [
        "price",
        "blocks",
        "transactions",
        "latency",
        "liquidations",
        "insurance-fund",
    ] {
        assert!(html.contains(&format!("id=\"chart-{chart}\"")), "{chart}");
    }
    // Nothing is fetched: the only URL is the SVG namespace, which names and fetches nothing.
    let without_namespace = html.replace("http://www.w3.org/2000/svg", "");
    for external in [
        "http:", "https:", "//cdn", "<script", "<link", "src=", "url(", "@import",
    ] {
        assert!(
            !without_namespace.contains(external),
            "{external} in the report"
        );
    }
    assert!(html.contains("safety: violations"));
    assert!(html.contains("bulwark simulate report-crash --seed 3"));
    assert_eq!(report::html(&card).expect("drawn"), html, "the same bytes");
}
