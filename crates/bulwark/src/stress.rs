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
//! Every vol (the flat one, and every surface point whether a position uses it or not) is a
//! finite number within [`VOL_MIN`]..=[`VOL_MAX`]; two surface points may not name the same
//! expiry and strike. Every option must be open at `time_ms` (its expiry after it): an expired
//! series is settled, not stressed. Prices (`index`, strikes) are at most [`PRICE_USDC_MAX`]
//! USDC, the largest a micro-USDC price holds; other amounts at most 1e15 USDC.
//!
//! # The shocks file (`--shocks`)
//! A JSON list of `{"name": "...", "index_move_pct": -20, "vol_move_points": 15}`, with an
//! optional `"source"`.

use crate::genesis;
use anyhow::{Context, Result, bail, ensure};
use bulwark_pricing::{VOL_MAX, VOL_MIN};
use bulwark_risk::{
    PortfolioMargin, PortfolioMarginParams, ScenarioSet, Shock, StressPortfolio, StressPosition,
    StressReport, VolPoint, VolSurface, historical_shocks, stress,
};
use bulwark_sim::cascade::{self, CascadeConfig};
use bulwark_sim::monte_carlo;
use bulwark_types::{ExpiryDate, InstrumentKind, InstrumentName, Money, Qty, UnitPrice};
use clap::Args;
use serde::Deserialize;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Largest portfolio or shocks file read.
pub const FILE_BYTES_MAX: u64 = 4 << 20;
/// Largest absolute USDC amount a file may carry.
const USDC_MAX: f64 = 1e15;
/// Largest price a file may carry, USDC: a price is an `i64` of micro-USDC.
pub const PRICE_USDC_MAX: f64 = i64::MAX as f64 / 1e6;
/// Most Monte Carlo worker threads (`--threads`).
pub const THREADS_MAX: u64 = 256;

#[derive(Args)]
pub struct StressArgs {
    /// The portfolio to stress (JSON; format in `crates/bulwark/src/stress.rs`).
    #[arg(
        long,
        required_unless_present_any = ["cascade", "monte_carlo"],
        conflicts_with_all = ["cascade", "monte_carlo"]
    )]
    pub portfolio: Option<PathBuf>,
    /// Run a file of shocks instead of the margin grid (with --portfolio).
    #[arg(long, conflicts_with_all = ["historical", "cascade", "monte_carlo"])]
    pub shocks: Option<PathBuf>,
    /// Run the built-in historical crashes instead of the margin grid (with --portfolio).
    #[arg(long, conflicts_with_all = ["cascade", "monte_carlo"])]
    pub historical: bool,
    /// Draw the P&L surface over index move and vol shock to this SVG file (with --portfolio).
    #[arg(long, conflicts_with_all = ["cascade", "monte_carlo"])]
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
    // Each mode's flags conflict with the other modes: `requires = "cascade"` alone is not
    // enforced, since clap lets a required flag be absent when it conflicts with one present
    // (`--portfolio` conflicts with `--cascade`).
    #[arg(long, requires = "cascade", conflicts_with_all = ["portfolio", "monte_carlo"])]
    pub flash: bool,
    /// Cascade and Monte Carlo: accounts in the population (default 400; 40 for the Monte
    /// Carlo).
    #[arg(long, conflicts_with = "portfolio")]
    pub accounts: Option<usize>,
    /// Cascade and Monte Carlo: the seed of the population and of the paths.
    #[arg(long, default_value_t = CascadeConfig::defaults().seed, conflicts_with = "portfolio")]
    pub seed: u64,
    /// Monte Carlo: seeded jump-diffusion paths (volatility spikes, liquidity withdrawal)
    /// through the exchange's liquidation, the distribution of bad debt against the fund.
    #[arg(long, conflicts_with = "cascade")]
    pub monte_carlo: bool,
    /// Monte Carlo: how many paths (1 to 10,000,000).
    #[arg(
        long,
        default_value_t = 10_000,
        requires = "monte_carlo",
        conflicts_with_all = ["portfolio", "cascade"],
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=monte_carlo::PATHS_MAX as u64)
    )]
    pub paths: usize,
    /// Monte Carlo: worker threads, 1 to 256 (default: every core, at most 256).
    #[arg(
        long,
        requires = "monte_carlo",
        conflicts_with_all = ["portfolio", "cascade"],
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=THREADS_MAX)
    )]
    pub threads: Option<usize>,
    /// Cascade: the index's fall, percent, 0 to 90 (default 10; 30 with --flash).
    #[arg(long, requires = "cascade", conflicts_with_all = ["portfolio", "monte_carlo"])]
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

/// A number as a person reads it: plainly, or in exponent form when it is huge or tiny (so an
/// error about `1e308` does not print 309 digits).
fn shown(value: f64) -> String {
    if value == 0.0 || (1e-6..1e12).contains(&value.abs()) || !value.is_finite() {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// USDC as a decimal number to micro-USDC, refusing what is not finite or too large.
pub fn usdc_to_micros(what: &str, usdc: f64) -> Result<i128> {
    ensure!(usdc.is_finite(), "{what} is not a finite number");
    ensure!(
        usdc.abs() <= USDC_MAX,
        "{what} {} is beyond +-{} USDC",
        shown(usdc),
        shown(USDC_MAX)
    );
    Ok((usdc * 1e6).round() as i128)
}

/// A positive price in USDC per unit, at most [`PRICE_USDC_MAX`].
fn unit_price(what: &str, usdc: f64) -> Result<UnitPrice> {
    let micros = usdc_to_micros(what, usdc)?;
    ensure!(micros > 0, "{what} must be positive, not {}", shown(usdc));
    let micros = i64::try_from(micros).map_err(|_| {
        anyhow::anyhow!(
            "{what} {} USDC is above the largest price, {PRICE_USDC_MAX:.0} USDC (an i64 of \
             micro-USDC)",
            shown(usdc)
        )
    })?;
    Ok(UnitPrice::from_micros(micros))
}

/// A volatility the pricing takes: finite, within [`VOL_MIN`]..=[`VOL_MAX`].
fn check_vol(what: &str, vol: f64) -> Result<f64> {
    ensure!(
        vol.is_finite() && (VOL_MIN..=VOL_MAX).contains(&vol),
        "{what} {} must be a finite number within {VOL_MIN}..={VOL_MAX} (0.6 is 60%)",
        shown(vol)
    );
    Ok(vol)
}

/// The surface's points, each checked (a point no position uses too), none repeated.
fn surface_from(points: Vec<SurfacePoint>) -> Result<Vec<VolPoint>> {
    let mut surface: Vec<VolPoint> = Vec::with_capacity(points.len());
    for (i, point) in points.into_iter().enumerate() {
        let expiry = ExpiryDate::parse(&point.expiry)
            .map_err(|e| anyhow::anyhow!("surface[{i}]: expiry {:?}: {e}", point.expiry))?;
        let strike = match point.strike {
            Some(strike) => Some(unit_price(&format!("surface[{i}].strike"), strike)?),
            None => None,
        };
        let vol = check_vol(&format!("surface[{i}] ({}) vol", point.expiry), point.vol)?;
        let expiry_ms = expiry.expiry_millis();
        if let Some(j) = surface
            .iter()
            .position(|p| p.expiry_ms == expiry_ms && p.strike == strike)
        {
            bail!(
                "surface[{i}] repeats the expiry {} and strike of surface[{j}]: give each point once",
                point.expiry
            );
        }
        surface.push(VolPoint {
            expiry_ms,
            strike,
            vol,
        });
    }
    Ok(surface)
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
        (Some(vol), None) => VolSurface::Flat(check_vol("vol", vol)?),
        (None, Some(points)) => VolSurface::Points(surface_from(points)?),
        _ => bail!("give exactly one of `vol` (a flat vol) and `surface`"),
    };
    ensure!(!file.positions.is_empty(), "the portfolio has no positions");
    ensure!(
        file.positions.len() <= bulwark_risk::STRESS_POSITIONS_MAX,
        "at most {} positions",
        bulwark_risk::STRESS_POSITIONS_MAX
    );
    let mut positions = Vec::with_capacity(file.positions.len());
    for (i, position) in file.positions.into_iter().enumerate() {
        let name = InstrumentName::parse(&position.instrument).map_err(|e| {
            anyhow::anyhow!("positions[{i}]: instrument {:?}: {e}", position.instrument)
        })?;
        ensure!(
            position.qty != 0 && position.qty.unsigned_abs() <= 1_000_000_000,
            "positions[{i}] {}: qty must be non-zero contracts within +-1e9",
            position.instrument
        );
        let spec = genesis::spec_for(name);
        if let InstrumentKind::Option { expiry_ms, .. } = spec.kind() {
            ensure!(
                expiry_ms > file.time_ms,
                "positions[{i}] {}: expired at {expiry_ms} ms, not after time_ms {}: an \
                 expired option is settled, not stressed; leave it out or value the portfolio \
                 before its expiry",
                position.instrument,
                file.time_ms
            );
        }
        positions.push(StressPosition {
            spec,
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
    let threads_max = THREADS_MAX as usize;
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(threads_max)
    });
    ensure!(
        (1..=threads_max).contains(&threads),
        "--threads must lie in 1..={threads_max}"
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

    fn parse(text: &str) -> Result<StressPortfolio> {
        serde_json::from_str::<PortfolioFile>(text)
            .map_err(anyhow::Error::from)
            .and_then(portfolio_from)
    }

    fn refusal(text: &str) -> String {
        match parse(text) {
            Ok(_) => "accepted".into(),
            Err(e) => format!("{e:#}"),
        }
    }

    /// A portfolio of one short call expiring 2026-12-25 08:00 UTC, valued at `time_ms`.
    fn short_call(time_ms: u64, vols: &str) -> String {
        format!(
            r#"{{"index":100000,"collateral":50000,"time_ms":{time_ms},{vols},
            "positions":[{{"instrument":"BTC_USDC-25DEC26-100000-C","qty":-10}}]}}"#
        )
    }

    #[test]
    fn an_expired_option_is_refused_by_position() {
        let expiry_ms = 1_798_185_600_000;
        assert_eq!(
            refusal(&short_call(expiry_ms - 1, r#""vol":0.6"#)),
            "accepted"
        );
        for time_ms in [expiry_ms, 1_895_478_400_000, u64::MAX] {
            let message = refusal(&short_call(time_ms, r#""vol":0.6"#));
            assert!(
                message.starts_with("positions[0] BTC_USDC-25DEC26-100000-C: expired at"),
                "{time_ms}: {message}"
            );
        }
        // A perpetual has no expiry.
        let perpetual = r#"{"index":100000,"collateral":1,"time_ms":18446744073709551615,
            "vol":0.6,"positions":[{"instrument":"BTC_USDC-PERPETUAL","qty":1}]}"#;
        assert_eq!(refusal(perpetual), "accepted");
    }

    #[test]
    fn every_vol_and_surface_point_is_checked_and_none_repeated() {
        let now = 1_795_478_400_000;
        let good = r#""surface":[{"expiry":"25DEC26","vol":0.4},
            {"expiry":"25DEC26","strike":100000,"vol":0.5}]"#;
        assert_eq!(refusal(&short_call(now, good)), "accepted");
        let cases = [
            // A point no position uses is checked too.
            (
                r#""surface":[{"expiry":"26DEC26","vol":-5},{"expiry":"25DEC26","vol":0.4}]"#,
                "surface[0] (26DEC26) vol -5 must be a finite number",
            ),
            (
                r#""surface":[{"expiry":"25DEC26","vol":0.4},{"expiry":"25DEC26","vol":0}]"#,
                "surface[1] (25DEC26) vol 0 must be",
            ),
            (
                r#""surface":[{"expiry":"25DEC26","vol":0.4},{"expiry":"25DEC26","vol":0.9}]"#,
                "surface[1] repeats the expiry 25DEC26 and strike of surface[0]",
            ),
            (
                r#""surface":[{"expiry":"25DEC26","strike":1e300,"vol":0.4}]"#,
                "surface[0].strike 1e300 is beyond",
            ),
            (
                r#""surface":[{"expiry":"30FEB26","vol":0.4}]"#,
                "surface[0]: expiry",
            ),
            (r#""vol":1e308"#, "vol 1e308 must be a finite number"),
            (r#""vol":101"#, "vol 101 must be"),
        ];
        for (vols, expected) in cases {
            let message = refusal(&short_call(now, vols));
            assert!(message.contains(expected), "{vols}: {message}");
        }
    }

    #[test]
    fn a_price_beyond_an_i64_of_micros_is_named_with_its_limit() {
        let at = |index: &str| {
            refusal(&format!(
                r#"{{"index":{index},"collateral":1,"time_ms":1,"vol":0.6,
                "positions":[{{"instrument":"BTC_USDC-PERPETUAL","qty":1}}]}}"#
            ))
        };
        assert!(
            at("1e15")
                .starts_with("index 1e15 USDC is above the largest price, 9223372036855 USDC"),
            "{}",
            at("1e15")
        );
        assert!(at("1e308").starts_with("index 1e308 is beyond +-1e15 USDC"));
        assert_eq!(at("9e12"), "accepted");
        assert_eq!(shown(100_000.5), "100000.5");
        assert_eq!(shown(-5.0), "-5");
        assert_eq!(shown(1e-9), "1e-9");
        assert_eq!(shown(f64::NAN), "NaN");
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
