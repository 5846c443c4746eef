//! The HTML report of a run: one self-contained file (no script, no stylesheet or font
//! fetched, nothing to build when it is viewed) with the scorecard's tables and charts drawn as
//! inline SVG by `plotters`: the index against the honest price; blocks and transactions
//! finalized per second and latency over time, with the fault windows shaded; liquidations;
//! the insurance fund.
//!
//! Owns: turning a [`Scorecard`] (its figures, fault windows and [`crate::series::Series`])
//! into HTML. Never: reads anything but the scorecard, so the same scorecard gives the same
//! bytes.

use crate::scorecard::Scorecard;
use crate::series::Sample;
use plotters::prelude::*;
use std::fmt::Write as _;

/// Chart size, pixels.
const WIDTH: u32 = 760;
const HEIGHT: u32 = 280;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the {chart} chart: {why}")]
pub struct ReportError {
    chart: &'static str,
    why: String,
}

/// One line of a chart: its legend, colour and points `(seconds, value)`.
struct Line {
    label: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// `(low, high)` of every point's value, widened so a flat or empty series has a range;
/// `with_zero` puts 0 in the range (rates and counts).
fn bounds(lines: &[Line], with_zero: bool) -> (f64, f64) {
    let (mut low, mut high) = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|(_, y)| *y))
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if with_zero {
        low = low.min(0.0);
        high = high.max(0.0);
    }
    let pad = ((high - low) * 0.08).max(high.abs().max(1.0) * 1e-4);
    (
        low - if with_zero && low == 0.0 { 0.0 } else { pad },
        high + pad,
    )
}

/// A line chart over `0..end_s` seconds with the `windows` (seconds) shaded.
fn chart(
    name: &'static str,
    title: &str,
    end_s: f64,
    lines: &[Line],
    windows: &[(f64, f64)],
    with_zero: bool,
) -> Result<String, ReportError> {
    let fail = |e: &dyn std::fmt::Debug| ReportError {
        chart: name,
        why: format!("{e:?}"),
    };
    let (y0, y1) = bounds(lines, with_zero);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end_s, y0..y1)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("simulated seconds")
            .x_labels(8)
            .y_labels(6)
            .draw()
            .map_err(|e| fail(&e))?;
        chart
            .draw_series(
                windows.iter().map(|(from, to)| {
                    Rectangle::new([(*from, y0), (*to, y1)], RED.mix(0.12).filled())
                }),
            )
            .map_err(|e| fail(&e))?;
        for line in lines {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), color))
                .map_err(|e| fail(&e))?
                .label(line.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        if !lines.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| fail(&e))?;
        }
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

/// A per-second rate of `value` between consecutive samples, at the later sample's time.
fn rate(samples: &[Sample], value: impl Fn(&Sample) -> u64) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter(|w| w[1].at_ms > w[0].at_ms)
        .map(|w| {
            let dt_s = (w[1].at_ms - w[0].at_ms) as f64 / 1_000.0;
            let dv = value(&w[1]).saturating_sub(value(&w[0])) as f64;
            (w[1].at_ms as f64 / 1_000.0, dv / dt_s)
        })
        .collect()
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1_000.0
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Every chart of the report: `(name, svg)`.
pub fn charts(card: &Scorecard) -> Result<Vec<(&'static str, String)>, ReportError> {
    let samples = &card.series.samples;
    let end_s =
        seconds(card.liveness.simulated_ms).max(seconds(samples.last().map_or(0, |s| s.at_ms)));
    let end_s = end_s.max(0.001);
    let windows: Vec<(f64, f64)> = card
        .fault_windows
        .iter()
        .map(|w| (seconds(w.from_ms), w.to_ms.map_or(end_s, seconds)))
        .collect();
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    let mut assets: Vec<String> = samples
        .iter()
        .flat_map(|s| s.prices.iter().map(|p| p.asset.clone()))
        .collect();
    assets.sort_unstable();
    assets.dedup();
    let mut prices = Vec::new();
    for (a, asset) in assets.iter().enumerate() {
        let of = |honest: bool| -> Vec<(f64, f64)> {
            samples
                .iter()
                .filter_map(|s| {
                    let p = s.prices.iter().find(|p| p.asset == *asset)?;
                    let micros = if honest {
                        p.honest_micros
                    } else {
                        p.index_micros
                    }?;
                    Some((seconds(s.at_ms), micros as f64 / 1e6))
                })
                .collect()
        };
        prices.push(Line {
            label: format!("{asset} index (chain)"),
            color: palette[(2 * a) % palette.len()],
            points: of(false),
        });
        prices.push(Line {
            label: format!("{asset} honest price"),
            color: palette[(2 * a + 1) % palette.len()],
            points: of(true),
        });
    }
    let latency = |max: bool| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter(|s| s.latency_count > 0)
            .map(|s| {
                let v = if max {
                    s.latency_max_ms as f64
                } else {
                    s.latency_sum_ms as f64 / s.latency_count as f64
                };
                (seconds(s.at_ms), v)
            })
            .collect()
    };
    let single = |label: &str, color: RGBColor, points: Vec<(f64, f64)>| {
        vec![Line {
            label: label.to_string(),
            color,
            points,
        }]
    };
    Ok(vec![
        (
            "price",
            chart(
                "price",
                "Index price on the finalized state against the honest price (USDC)",
                end_s,
                &prices,
                &windows,
                false,
            )?,
        ),
        (
            "blocks",
            chart(
                "blocks",
                "Blocks finalized per second (faults shaded)",
                end_s,
                &single("blocks/s", BLUE, rate(samples, |s| s.height)),
                &windows,
                true,
            )?,
        ),
        (
            "transactions",
            chart(
                "transactions",
                "Transactions (orders, cancels) finalized per second (faults shaded)",
                end_s,
                &single("transactions/s", GREEN, rate(samples, |s| s.transactions)),
                &windows,
                true,
            )?,
        ),
        (
            "latency",
            chart(
                "latency",
                "Submission to finalized outcome, ms (faults shaded)",
                end_s,
                &[
                    Line {
                        label: "mean".to_string(),
                        color: BLUE,
                        points: latency(false),
                    },
                    Line {
                        label: "max".to_string(),
                        color: RED,
                        points: latency(true),
                    },
                ],
                &windows,
                true,
            )?,
        ),
        (
            "liquidations",
            chart(
                "liquidations",
                "Liquidation steps executed (cumulative)",
                end_s,
                &single(
                    "liquidation steps",
                    MAGENTA,
                    samples
                        .iter()
                        .map(|s| (seconds(s.at_ms), s.liquidations as f64))
                        .collect(),
                ),
                &windows,
                true,
            )?,
        ),
        (
            "insurance-fund",
            chart(
                "insurance-fund",
                "Insurance fund (USDC)",
                end_s,
                &single(
                    "insurance fund",
                    BLACK,
                    samples
                        .iter()
                        .map(|s| (seconds(s.at_ms), s.insurance_fund_micros as f64 / 1e6))
                        .collect(),
                ),
                &windows,
                true,
            )?,
        ),
    ])
}

/// The report as one HTML file.
pub fn html(card: &Scorecard) -> Result<String, ReportError> {
    let charts = charts(card)?;
    let title = format!(
        "Bulwark resilience lab: {} (seed {})",
        card.scenario, card.seed
    );
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; max-width: 800px; }}\n\
         table {{ border-collapse: collapse; margin-bottom: 1.5em; }}\n\
         td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: left; }}\n\
         td.v {{ text-align: right; font-family: monospace; }}\n\
         figure {{ margin: 0 0 1.5em 0; }}\n\
         </style>\n</head>\n<body>\n<h1>{}</h1>\n\
         <p>{} validators. Replay: <code>bulwark simulate {} --seed {}</code></p>\n",
        escape(&title),
        escape(&title),
        card.validators,
        escape(&card.scenario),
        card.seed
    );
    out.push_str("<h2>Scorecard</h2>\n<table>\n");
    for (name, value) in card.rows() {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"v\">{}</td></tr>",
            escape(&name),
            escape(&value)
        );
    }
    out.push_str("</table>\n<h2>Faults</h2>\n<table>\n");
    out.push_str("<tr><th>fault</th><th>kind</th><th>from (s)</th><th>healed (s)</th></tr>\n");
    for w in &card.fault_windows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"v\">{:.3}</td><td class=\"v\">{}</td></tr>",
            w.fault,
            escape(w.kind),
            seconds(w.from_ms),
            w.to_ms
                .map_or("never".to_string(), |t| format!("{:.3}", seconds(t)))
        );
    }
    out.push_str("</table>\n<h2>Over time</h2>\n");
    for (name, svg) in &charts {
        let _ = writeln!(out, "<figure id=\"chart-{name}\">\n{svg}\n</figure>");
    }
    out.push_str("<h2>Timeline</h2>\n<table>\n");
    out.push_str("<tr><th>s</th><th>height</th><th>event</th></tr>\n");
    for entry in &card.timeline {
        let _ = writeln!(
            out,
            "<tr><td class=\"v\">{:.3}</td><td class=\"v\">{}</td><td>{}</td></tr>",
            seconds(entry.at_ms),
            entry.height,
            escape(&entry.event)
        );
    }
    out.push_str("</table>\n</body>\n</html>\n");
    Ok(out)
}
