//! The dashboard's charts, drawn as SVG by `plotters` on the server: no script library or
//! build step on the page, and the same drawing wherever it is viewed.

use super::history::Sample;
use crate::deribit::convert::{money, unit_price};
use bulwark_types::AssetCode;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde_json::Value;

/// Chart size, pixels.
const WIDTH: u32 = 560;
const HEIGHT: u32 = 260;

/// Why a chart could not be drawn (an empty series is drawn as an empty frame, not an error).
#[derive(Debug, thiserror::Error)]
#[error("drawing the chart: {0}")]
pub struct ChartError(String);

fn drawing<E: std::fmt::Debug>(error: E) -> ChartError {
    ChartError(format!("{error:?}"))
}

/// `(low, high)` of `values`, widened so a flat or empty series still has a range.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((high - low) * 0.08).max(high.abs().max(1.0) * 1e-4);
    (low - pad, high + pad)
}

/// A chart of two `f64` axes.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the chart's legend, upper left.
fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>) -> Result<(), ChartError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(drawing)
}

/// A framed chart on `root`: title, axes over `x` and `y`, grid. `y_label_width` in pixels.
fn frame<'a, DB: DrawingBackend + 'a>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label_width: u32,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<Chart<'a, DB>, ChartError> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(6)
        .draw()
        .map_err(drawing)?;
    Ok(chart)
}

/// The insurance fund (USDC) per block, with the blocks that had liquidation activity marked.
pub fn insurance_fund(samples: &[Sample]) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut chart = frame(
            &root,
            "Insurance fund (USDC) by height",
            70,
            bounds(samples.iter().map(|s| s.height as f64)),
            bounds(samples.iter().map(|s| money(s.insurance_fund))),
        )?;
        chart
            .draw_series(LineSeries::new(
                samples
                    .iter()
                    .map(|s| (s.height as f64, money(s.insurance_fund))),
                &BLUE,
            ))
            .map_err(drawing)?
            .label("fund")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
        chart
            .draw_series(
                samples
                    .iter()
                    .filter(|s| {
                        s.margin_calls + s.liquidation_steps + s.backstop_takeovers + s.deleveraged
                            > 0
                    })
                    .map(|s| {
                        Circle::new((s.height as f64, money(s.insurance_fund)), 3, RED.filled())
                    }),
            )
            .map_err(drawing)?
            .label("liquidation activity")
            .legend(|(x, y)| Circle::new((x + 8, y), 3, RED.filled()));
        legend(&mut chart)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

/// The agreed index of `asset` per block.
pub fn index(samples: &[Sample], asset: AssetCode) -> Result<String, ChartError> {
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| {
            s.index
                .iter()
                .find(|(a, _)| *a == asset)
                .map(|(_, p)| (s.height as f64, unit_price(*p)))
        })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut chart = frame(
            &root,
            &format!("{} index by height", asset.as_str()),
            70,
            bounds(points.iter().map(|p| p.0)),
            bounds(points.iter().map(|p| p.1)),
        )?;
        chart
            .draw_series(LineSeries::new(points, &BLUE))
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

/// One series' smile as the dashboard state reports it (`view::smiles`): the fitted curve,
/// and the books' quotes (flagged ones in red).
pub fn smile(series: &Value) -> Result<String, ChartError> {
    let curve: Vec<(f64, f64)> = series["curve"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()? * 100.0)))
        .collect();
    let quotes: Vec<(f64, f64, bool)> = series["quotes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| {
            Some((
                q["log_moneyness"].as_f64()?,
                q["vol_market"].as_f64()? * 100.0,
                !q["outlier"].is_null(),
            ))
        })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let title = format!(
            "{} smile: vol (%) by ln(K/F)",
            series["underlying"].as_str().unwrap_or("?")
        );
        let mut chart = frame(
            &root,
            &title,
            50,
            bounds(curve.iter().map(|p| p.0).chain(quotes.iter().map(|q| q.0))),
            bounds(curve.iter().map(|p| p.1).chain(quotes.iter().map(|q| q.1))),
        )?;
        chart
            .draw_series(LineSeries::new(curve, &BLUE))
            .map_err(drawing)?
            .label("fitted smile (marks)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
        chart
            .draw_series(
                quotes
                    .iter()
                    .filter(|q| !q.2)
                    .map(|q| Circle::new((q.0, q.1), 3, BLACK.filled())),
            )
            .map_err(drawing)?
            .label("quote")
            .legend(|(x, y)| Circle::new((x + 8, y), 3, BLACK.filled()));
        chart
            .draw_series(
                quotes
                    .iter()
                    .filter(|q| q.2)
                    .map(|q| Cross::new((q.0, q.1), 4, RED.stroke_width(2))),
            )
            .map_err(drawing)?
            .label("flagged quote")
            .legend(|(x, y)| Cross::new((x + 8, y), 4, RED.stroke_width(2)));
        legend(&mut chart)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::Money;

    #[test]
    fn charts_draw_empty_and_full_series() {
        assert!(insurance_fund(&[]).unwrap().starts_with("<svg"));
        let samples: Vec<Sample> = (1..=50)
            .map(|h| Sample {
                height: h,
                time_ms: h * 100,
                insurance_fund: Money::from_usdc(1_000_000 - h as i64 * 10),
                index: vec![],
                trades: 0,
                margin_calls: u32::from(h % 10 == 0),
                liquidation_steps: 0,
                backstop_takeovers: 0,
                deleveraged: 0,
                uncovered: Money::ZERO,
            })
            .collect();
        let svg = insurance_fund(&samples).unwrap();
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
        assert_eq!(
            svg.matches("<circle").count(),
            5 + 1,
            "five marked blocks and the legend"
        );
        let series = serde_json::json!({
            "underlying": "BTC", "expiry_ms": 1,
            "curve": [[-0.1, 0.7], [0.0, 0.6], [0.1, 0.65]],
            "quotes": [{"log_moneyness": 0.0, "vol_market": 0.61, "outlier": null},
                       {"log_moneyness": 0.05, "vol_market": 1.5, "outlier": "residual"}],
        });
        let svg = smile(&series).unwrap();
        assert!(svg.contains("flagged quote"), "{svg}");
    }
}
