//! `bulwark stress`: a portfolio under the margin grid, a user's shocks or named historical
//! crashes (`--portfolio FILE`), with an optional P&L surface drawn as SVG (`--plot`); or the
//! cascade analysis on the real state machine (`--cascade`, module [`bulwark_sim::cascade`]).
//!
//! Owns: the portfolio and shock file formats, their conversion to `bulwark-risk`'s types, the
//! table, the JSON report and the SVG.
//! Never: panics on a file: every mistake (unreadable, too large, not JSON, an unknown field, a
//! bad instrument name, a non-finite or out-of-range number, mixed underlyings) is an error
//! naming it.
//! Bounds: files of at most [`FILE_BYTES_MAX`]; the stress engine's own bounds on positions and
//! shocks.
//!
//! # The portfolio file
//! ```json
//! {
//!   "index": 100000,
//!   "collateral": 50000,
//!   "time_ms": 1795478400000,
//!   "vol": 0.6,
//!   "positions": [
//!     {"instrument": "BTC_USDC-25DEC26-100000-C", "qty": -10},
//!     {"instrument": "BTC_USDC-PERPETUAL", "qty": 50}
//!   ]
//! }
//! ```
//! `index` (USDC per unit of the underlying) and `collateral` (the account's cash, USDC) are
//! decimal numbers, rounded to the micro-USDC; `time_ms` is the valuation time (milliseconds
//! since the Unix epoch); `qty` is signed contracts. Instead of one `vol`, a `surface` lists
//! `{"expiry": "25DEC26", "strike": 100000, "vol": 0.55}` points (without `strike`: every strike
//! of that expiry without its own point). Contract terms are the devnet's (perpetual 0.001,
//! options 0.01 units per contract).
//!
//! # The shocks file (`--shocks`)
//! A JSON list of `{"name": "...", "index_move_pct": -20, "vol_move_points": 15}`, with an
//! optional `"source"`.

use crate::genesis;
use anyhow::{Context, Result, bail, ensure};
use bulwark_risk::{
    PortfolioMargin, PortfolioMarginParams, ScenarioSet, Shock, StressPortfolio, StressPosition,
    StressReport, VolPoint, VolSurface, historical_shocks, stress,
};
use bulwark_sim::cascade::{self, CascadeConfig};
use bulwark_sim::monte_carlo;
use bulwark_types::{ExpiryDate, InstrumentName, Money, Qty, UnitPrice};
use clap::Args;
use serde::Deserialize;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Largest portfolio or shocks file read.
pub const FILE_BYTES_MAX: u64 = 4 << 20;
/// Largest absolute USDC amount or price a file may carry.
const USDC_MAX: f64 = 1e15;

#[derive(Args)]
pub struct StressArgs {
    /// The portfolio to stress (JSON; format in `crates/bulwark/src/stress.rs`).
    #[arg(
        long,
        required_unless_present_any = ["cascade", "monte_carlo"],
        conflicts_with_all = ["cascade", "monte_carlo"]
    )]
    pub portfolio: Option<PathBuf>,
    /// Run a file of shocks instead of the margin grid.
    #[arg(long, conflicts_with = "historical")]
    pub shocks: Option<PathBuf>,
    /// Run the built-in historical crashes instead of the margin grid.
    #[arg(long)]
    pub historical: bool,
    /// Draw the P&L surface over index move and vol shock to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Cascade analysis: leveraged accounts through a crash on the exchange state machine,
    /// with each protection on and off.
    #[arg(long)]
    pub cascade: bool,
    /// Cascade: a flash crash instead (-30% in 3 s, back up in 5 s, the index from validators'
    /// observations through the oracle and its deviation guard).
    #[arg(long, requires = "cascade")]
    pub flash: bool,
    /// Cascade and Monte Carlo: accounts in the population (default 400; 40 for the Monte
    /// Carlo).
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Cascade and Monte Carlo: the seed of the population and of the paths.
    #[arg(long, default_value_t = CascadeConfig::defaults().seed)]
    pub seed: u64,
    /// Monte Carlo: seeded jump-diffusion paths (volatility spikes, liquidity withdrawal)
    /// through the exchange's liquidation, the distribution of bad debt against the fund.
    #[arg(long, conflicts_with = "cascade")]
    pub monte_carlo: bool,
    /// Monte Carlo: how many paths.
    #[arg(long, default_value_t = 10_000, requires = "monte_carlo")]
    pub paths: usize,
    /// Monte Carlo: worker threads (default: every core).
    #[arg(long, requires = "monte_carlo")]
    pub threads: Option<usize>,
    /// Cascade: the index's fall, percent (default 10; 30 with --flash).
    #[arg(long, requires = "cascade")]
    pub crash_pct: Option<f64>,
}

pub fn run(args: StressArgs) -> Result<()> {
    if args.monte_carlo {
        return monte_carlo(&args);
    }
    if args.cascade {
        let accounts = args.accounts.unwrap_or(CascadeConfig::defaults().accounts);
        ensure!(
            (1..=100_000).contains(&accounts),
            "--accounts must lie in 1..=100000"
        );
        ensure!(
            args.crash_pct
                .is_none_or(|pct| pct.is_finite() && (0.0..=90.0).contains(&pct)),
            "--crash-pct must lie in 0..=90"
        );
        let base = if args.flash {
            CascadeConfig::flash_crash()
        } else {
            CascadeConfig::defaults()
        };
        let config = CascadeConfig {
            accounts,
            seed: args.seed,
            crash_bps: args
                .crash_pct
                .map_or(base.crash_bps, |pct| (pct * 100.0).round() as i64),
            ..base
        };
        let outcomes = cascade::run(&config);
        if args.json {
            let json = serde_json::json!({"config": config, "variants": outcomes});
            println!("{}", serde_json::to_string_pretty(&json)?);
        } else {
            print!("{}", cascade::table(&config, &outcomes));
        }
        return Ok(());
    }
    let path = args
        .portfolio
        .as_deref()
        .context("--portfolio, --cascade or --monte-carlo is required")?;
    let portfolio = read_portfolio(path)?;
    let margin = grid_margin()?;
    let set = if let Some(shocks) = &args.shocks {
        ScenarioSet::Shocks(read_shocks(shocks)?)
    } else if args.historical {
        ScenarioSet::Historical
    } else {
        ScenarioSet::MarginGrid
    };
    let report = stress(&portfolio, &margin, &set)
        .map_err(|e| anyhow::anyhow!("stress test of {}: {e}", path.display()))?;
    if let Some(plot) = &args.plot {
        let svg = surface_svg(&portfolio, &margin, &path.display().to_string())?;
        std::fs::write(plot, svg).with_context(|| format!("writing {}", plot.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report, &set));
    }
    Ok(())
}

fn grid_margin() -> Result<PortfolioMargin> {
    let params = PortfolioMarginParams::defaults();
    PortfolioMargin::new(params, params.range_min_bps)
        .map_err(|e| anyhow::anyhow!("margin grid: {e}"))
}

/// Reads at most [`FILE_BYTES_MAX`] bytes of `path`, refusing a larger file.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.len() as u64 <= FILE_BYTES_MAX,
        "{} is larger than {} bytes",
        path.display(),
        FILE_BYTES_MAX
    );
    Ok(bytes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortfolioFile {
    index: f64,
    collateral: f64,
    time_ms: u64,
    #[serde(default)]
    vol: Option<f64>,
    #[serde(default)]
    surface: Option<Vec<SurfacePoint>>,
    positions: Vec<PositionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SurfacePoint {
    expiry: String,
    #[serde(default)]
    strike: Option<f64>,
    vol: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionFile {
    instrument: String,
    qty: i64,
}

/// USDC as a decimal number to micro-USDC, refusing what is not finite or too large.
pub fn usdc_to_micros(what: &str, usdc: f64) -> Result<i128> {
    ensure!(usdc.is_finite(), "{what} is not a finite number");
    ensure!(
        usdc.abs() <= USDC_MAX,
        "{what} {usdc} is beyond +-{USDC_MAX} USDC"
    );
    Ok((usdc * 1e6).round() as i128)
}

/// A positive price in USDC per unit.
fn unit_price(what: &str, usdc: f64) -> Result<UnitPrice> {
    let micros = usdc_to_micros(what, usdc)?;
    ensure!(micros > 0, "{what} must be positive, not {usdc}");
    Ok(UnitPrice::from_micros(
        i64::try_from(micros).context("price out of range")?,
    ))
}

fn read_portfolio(path: &Path) -> Result<StressPortfolio> {
    let bytes = read_bounded(path)?;
    let file: PortfolioFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a portfolio", path.display()))?;
    portfolio_from(file)
}

fn portfolio_from(file: PortfolioFile) -> Result<StressPortfolio> {
    let index = unit_price("index", file.index)?;
    let collateral = Money::from_micros(usdc_to_micros("collateral", file.collateral)?);
    let vols = match (file.vol, file.surface) {
        (Some(vol), None) => VolSurface::Flat(vol),
        (None, Some(points)) => {
            let mut surface = Vec::with_capacity(points.len());
            for point in points {
                let expiry = ExpiryDate::parse(&point.expiry)
                    .map_err(|e| anyhow::anyhow!("surface expiry {:?}: {e}", point.expiry))?;
                let strike = match point.strike {
                    Some(strike) => Some(unit_price("surface strike", strike)?),
                    None => None,
                };
                surface.push(VolPoint {
                    expiry_ms: expiry.expiry_millis(),
                    strike,
                    vol: point.vol,
                });
            }
            VolSurface::Points(surface)
        }
        _ => bail!("give exactly one of `vol` (a flat vol) and `surface`"),
    };
    ensure!(!file.positions.is_empty(), "the portfolio has no positions");
    ensure!(
        file.positions.len() <= bulwark_risk::STRESS_POSITIONS_MAX,
        "at most {} positions",
        bulwark_risk::STRESS_POSITIONS_MAX
    );
    let mut positions = Vec::with_capacity(file.positions.len());
    for position in file.positions {
        let name = InstrumentName::parse(&position.instrument)
            .map_err(|e| anyhow::anyhow!("instrument {:?}: {e}", position.instrument))?;
        ensure!(
            position.qty != 0 && position.qty.unsigned_abs() <= 1_000_000_000,
            "{}: qty must be non-zero contracts within +-1e9",
            position.instrument
        );
        positions.push(StressPosition {
            spec: genesis::spec_for(name),
            qty: Qty::from_contracts(position.qty),
        });
    }
    let underlying = positions[0].spec.underlying();
    ensure!(
        positions.iter().all(|p| p.spec.underlying() == underlying),
        "every position must be on one underlying ({underlying})"
    );
    Ok(StressPortfolio {
        underlying,
        positions,
        collateral,
        index,
        time_ms: file.time_ms,
        vols,
    })
}

fn read_shocks(path: &Path) -> Result<Vec<Shock>> {
    let bytes = read_bounded(path)?;
    let shocks: Vec<Shock> = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a list of shocks", path.display()))?;
    ensure!(!shocks.is_empty(), "{} lists no shocks", path.display());
    Ok(shocks)
}

fn usdc(micros: i128) -> f64 {
    micros as f64 / 1e6
}

/// The report as an aligned table.
pub fn table(report: &StressReport, set: &ScenarioSet) -> String {
    let base = &report.base;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} portfolio: equity {:.2} USDC, initial {:.2}, maintenance {:.2} (grid range +-{:.1}%)",
        report.underlying,
        usdc(base.equity_micros),
        usdc(base.initial_micros),
        usdc(base.maintenance_micros),
        f64::from(report.range_bps) / 100.0
    );
    if let Some(worst) = report
        .rows
        .iter()
        .min_by_key(|r| (r.value_change_micros, r.scenario.clone()))
    {
        let _ = writeln!(
            out,
            "worst scenario: {} ({:.2} USDC)",
            worst.scenario,
            usdc(worst.value_change_micros)
        );
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:>8} {:>12} {:>6} {:>14} {:>14} {:>13} {:>13} {:>4} {:>9} {:>11} {:>10} {:>10}",
        "scenario",
        "index",
        "vol",
        "cover",
        "value change",
        "equity",
        "initial",
        "maintenance",
        "liq",
        "delta",
        "gamma",
        "vega",
        "theta"
    );
    for row in std::iter::once(base).chain(&report.rows) {
        let vol = match row.vol_move {
            bulwark_risk::VolMove::Points(points) => format!("{points:+.1} pts"),
            bulwark_risk::VolMove::Grid(shift) => format!("{shift:?}").to_lowercase(),
        };
        let _ = writeln!(
            out,
            "{:<28} {:>7.2}% {:>12} {:>5.0}% {:>14.2} {:>14.2} {:>13.2} {:>13.2} {:>4} {:>9.4} {:>11.2e} {:>10.2} {:>10.2}",
            truncate(&row.scenario, 28),
            row.index_move_pct,
            vol,
            row.cover_pct,
            usdc(row.value_change_micros),
            usdc(row.equity_micros),
            usdc(row.initial_micros),
            usdc(row.maintenance_micros),
            if row.liquidatable { "yes" } else { "" },
            row.greeks.delta,
            row.greeks.gamma,
            row.greeks.vega,
            row.greeks.theta
        );
    }
    if matches!(set, ScenarioSet::Historical) {
        out.push_str("\nsources:\n");
        for shock in historical_shocks() {
            let _ = writeln!(
                out,
                "- {}: {}",
                shock.name,
                shock.source.unwrap_or_default()
            );
        }
    }
    out.push_str(
        "\nmoney in USDC; delta in units of the underlying; gamma per USDC of index move; vega \
         per vol point; theta per day\n",
    );
    out
}

fn truncate(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

/// Index moves (percent) and vol moves (points) the surface is drawn over.
const PLOT_MOVES_PCT: [f64; 21] = [
    -50.0, -45.0, -40.0, -35.0, -30.0, -25.0, -20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0,
    20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0,
];
const PLOT_VOL_POINTS: [f64; 11] = [
    -30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0,
];

/// The portfolio's value change over index moves and vol shocks, as an SVG heat map.
pub fn surface_svg(
    portfolio: &StressPortfolio,
    margin: &PortfolioMargin,
    title: &str,
) -> Result<String> {
    let mut shocks = Vec::with_capacity(PLOT_MOVES_PCT.len() * PLOT_VOL_POINTS.len());
    for vol in PLOT_VOL_POINTS {
        for index in PLOT_MOVES_PCT {
            shocks.push(Shock {
                name: format!("{index:+}% / {vol:+} pts"),
                index_move_pct: index,
                vol_move_points: vol,
                source: None,
            });
        }
    }
    let report = stress(portfolio, margin, &ScenarioSet::Shocks(shocks))
        .map_err(|e| anyhow::anyhow!("P&L surface: {e}"))?;
    let values: Vec<f64> = report
        .rows
        .iter()
        .map(|r| usdc(r.value_change_micros))
        .collect();
    let extent = values.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-9);
    let (cell_w, cell_h) = (32.0, 28.0);
    let (left, top) = (90.0, 60.0);
    let cols = PLOT_MOVES_PCT.len() as f64;
    let rows = PLOT_VOL_POINTS.len() as f64;
    let width = left + cols * cell_w + 150.0;
    let height = top + rows * cell_h + 70.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="24" font-size="14">P&amp;L of {} over index move and vol shock (USDC)</text>"#,
        escape(title)
    );
    for (r, vol) in PLOT_VOL_POINTS.iter().enumerate() {
        // Highest vol at the top.
        let y = top + (rows - 1.0 - r as f64) * cell_h;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{vol:+} pts</text>"#,
            left - 6.0,
            y + cell_h * 0.65
        );
        for (c, _) in PLOT_MOVES_PCT.iter().enumerate() {
            let value = values[r * PLOT_MOVES_PCT.len() + c];
            let x = left + c as f64 * cell_w;
            let _ = writeln!(
                svg,
                r#"<rect class="cell" x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" fill="{}"><title>{:+}% index, {vol:+} vol pts: {value:.2} USDC</title></rect>"#,
                colour(value / extent),
                PLOT_MOVES_PCT[c]
            );
        }
    }
    for (c, index) in PLOT_MOVES_PCT.iter().enumerate() {
        if c % 2 == 0 {
            let x = left + (c as f64 + 0.5) * cell_w;
            let _ = writeln!(
                svg,
                r#"<text x="{x}" y="{}" text-anchor="middle">{index:+}%</text>"#,
                top + rows * cell_h + 16.0
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">index move</text>"#,
        left + cols * cell_w / 2.0,
        top + rows * cell_h + 40.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">vol shock</text>"#,
        top + rows * cell_h / 2.0,
        top + rows * cell_h / 2.0
    );
    // The legend: the colour scale from the worst loss to the best gain.
    let legend_x = left + cols * cell_w + 30.0;
    for k in 0..=10 {
        let t = 1.0 - k as f64 / 5.0;
        let y = top + k as f64 * (rows * cell_h / 11.0);
        let _ = writeln!(
            svg,
            r#"<rect x="{legend_x}" y="{y}" width="18" height="{}" fill="{}"/><text x="{}" y="{}">{:.0}</text>"#,
            rows * cell_h / 11.0,
            colour(t),
            legend_x + 24.0,
            y + 12.0,
            t * extent
        );
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// Diverging colour: -1 deep red (loss), 0 white, +1 deep blue (gain).
fn colour(t: f64) -> String {
    let t = t.clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        (1.0, 1.0 + t * 0.85, 1.0 + t * 0.85)
    } else {
        (1.0 - t * 0.85, 1.0 - t * 0.6, 1.0)
    };
    let byte = |v: f64| (v * 255.0).round() as u8;
    format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `stress --monte-carlo`: the paths on every core, with a progress bar on standard error.
fn monte_carlo(args: &StressArgs) -> Result<()> {
    let accounts = args.accounts.unwrap_or(40);
    ensure!(
        (1..=10_000).contains(&accounts),
        "--accounts must lie in 1..=10000"
    );
    ensure!(
        (1..=monte_carlo::PATHS_MAX).contains(&args.paths),
        "--paths must lie in 1..={}",
        monte_carlo::PATHS_MAX
    );
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    ensure!(
        (1..=256).contains(&threads),
        "--threads must lie in 1..=256"
    );
    let config = monte_carlo::population(accounts, args.seed);
    let model = monte_carlo::PathModel::defaults();
    let bar = indicatif::ProgressBar::new(args.paths as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} paths ({per_sec}, eta {eta})",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    let report = monte_carlo::run(&config, &model, args.paths, threads, &|| bar.inc(1));
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", monte_carlo::table(&report));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usdc_converts_to_micros_and_refuses_non_finite_and_huge() {
        assert_eq!(usdc_to_micros("x", 1.5).unwrap(), 1_500_000);
        assert_eq!(usdc_to_micros("x", -0.000_001).unwrap(), -1);
        assert!(usdc_to_micros("x", f64::NAN).is_err());
        assert!(usdc_to_micros("x", f64::INFINITY).is_err());
        assert!(usdc_to_micros("x", 2e15).is_err());
        assert!(unit_price("index", 0.0).is_err());
        assert!(unit_price("index", -5.0).is_err());
    }

    #[test]
    fn colours_run_from_red_through_white_to_blue() {
        assert_eq!(colour(0.0), "#ffffff");
        assert_eq!(colour(-1.0), "#ff2626");
        assert_eq!(colour(1.0), "#2666ff");
        assert_eq!(colour(-7.0), colour(-1.0));
    }

    #[test]
    fn a_portfolio_file_needs_one_vol_source_and_one_underlying() {
        let parse = |text: &str| {
            serde_json::from_str::<PortfolioFile>(text)
                .map_err(anyhow::Error::from)
                .and_then(portfolio_from)
        };
        let ok = r#"{"index":100000,"collateral":1000,"time_ms":1795478400000,"vol":0.6,
            "positions":[{"instrument":"BTC_USDC-PERPETUAL","qty":1}]}"#;
        assert!(parse(ok).is_ok());
        let both = ok.replace(r#""vol":0.6"#, r#""vol":0.6,"surface":[]"#);
        assert!(parse(&both).is_err());
        let mixed = ok.replace(
            r#"[{"instrument":"BTC_USDC-PERPETUAL","qty":1}]"#,
            r#"[{"instrument":"BTC_USDC-PERPETUAL","qty":1},{"instrument":"ETH_USDC-PERPETUAL","qty":1}]"#,
        );
        assert!(
            parse(&mixed)
                .unwrap_err()
                .to_string()
                .contains("one underlying")
        );
        let unknown = ok.replace(r#""vol":0.6"#, r#""vol":0.6,"leverage":3"#);
        assert!(parse(&unknown).is_err());
    }
}
