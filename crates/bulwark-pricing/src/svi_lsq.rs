//! Weighted least squares of raw SVI to total variances, by Zeller and Mathis' quasi-explicit
//! method.
//!
//! Owns: the calibration of one smile to `(k, w, weight)` samples for fixed weights. For fixed
//! `(m, sigma)`, with `y = (k - m) / sigma`, SVI is linear in `(a, d, c) = (a, b rho sigma, b
//! sigma)`: `w = a + d y + c sqrt(y^2 + 1)`; that constrained 3-variable problem is solved exactly
//! by enumerating active sets. The outer `(m, ln sigma)` search is Nelder-Mead from a fixed start
//! set.
//! Never: chooses weights (see `fit`), draws randomness, or loops without a bound.
//! Bounds: Nelder-Mead runs at most [`NELDER_MEAD_ITERATIONS_MAX`] iterations per start, over at
//! most [`STARTS_MAX`] starts; the inner solve enumerates at most 64 active sets.
//!
//! Constraints on `(a, d, c)` (linear, so the inner problem is a convex QP):
//! `c >= 0`; `|d| <= RHO_ABS_MAX c` (so `|rho| < 1`); `c + |d| <= SLOPE_MAX sigma` (Lee's moment
//! bound `b (1 + |rho|) <= 2` on the wings); `a + c - |d| >= 0` (implies the minimum total variance
//! `a + sqrt(c^2 - d^2)` is non-negative). Zeller and Mathis (2016), "Quasi-explicit calibration of
//! Gatheral's SVI model"; their `0 <= a` is relaxed to the last constraint.

use crate::svi::SviParams;

/// Largest `|rho|` a fit may return.
pub const RHO_ABS_MAX: f64 = 0.999;
/// Lee's bound on the total-variance wing slopes `b (1 +- rho)`.
pub const SLOPE_MAX: f64 = 2.0;
/// Smallest `sigma` searched. Below it the smile has a kink finer than any strike grid.
pub const SIGMA_MIN: f64 = 1e-4;
/// Largest `sigma` searched; beyond it the smile is a parabola over any realistic strike range.
pub const SIGMA_MAX: f64 = 10.0;
/// How far `m` may sit outside the quoted log-moneyness range.
pub const M_OUTSIDE_RANGE_MAX: f64 = 1.0;
/// Nelder-Mead iterations per start: 2-D searches converge in well under 200 here.
pub const NELDER_MEAD_ITERATIONS_MAX: usize = 400;
/// Number of fixed Nelder-Mead starts.
pub const STARTS_MAX: usize = 3;
/// Nelder-Mead stops when every vertex is this close to the best in `m` and `ln sigma`.
const NELDER_MEAD_X_TOLERANCE: f64 = 1e-9;

/// One observation: log-moneyness, total variance, and its non-negative weight.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Sample {
    pub k: f64,
    pub w: f64,
    pub weight: f64,
}

/// Result of one weighted fit.
#[derive(Copy, Clone, Debug)]
pub(crate) struct LsqFit {
    pub params: SviParams,
}

/// Fits SVI to `samples` (at least one with positive weight, all finite). `warm` is a previous
/// `(m, sigma)` tried first; the fixed starts follow. Deterministic: the same samples give the
/// same bits.
pub(crate) fn fit_weighted(samples: &[Sample], warm: Option<(f64, f64)>) -> LsqFit {
    assert!(
        samples.iter().any(|s| s.weight > 0.0),
        "some sample carries weight"
    );
    assert!(
        samples
            .iter()
            .all(|s| s.k.is_finite() && s.w.is_finite() && s.weight >= 0.0)
    );
    let (k_lo, k_hi) = samples.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| {
        (lo.min(s.k), hi.max(s.k))
    });
    let bounds = Box2 {
        lo: [k_lo - M_OUTSIDE_RANGE_MAX, libm::log(SIGMA_MIN)],
        hi: [k_hi + M_OUTSIDE_RANGE_MAX, libm::log(SIGMA_MAX)],
    };
    let objective = |x: [f64; 2]| inner_solve(samples, x[0], libm::exp(x[1])).0;
    let mut best: Option<([f64; 2], f64)> = None;
    for start in start_points(samples, warm).iter().flatten() {
        let (x, value) = nelder_mead(&objective, bounds.clamp(*start), &bounds);
        // Strictly better only: ties keep the earlier start, so the order fixes the answer.
        if best.is_none_or(|(_, best_value)| value < best_value) {
            best = Some((x, value));
        }
    }
    let (x, _) = best.expect("at least one start");
    let sigma = libm::exp(x[1]);
    let (_, theta) = inner_solve(samples, x[0], sigma);
    LsqFit {
        params: to_params(theta, x[0], sigma),
    }
}

/// The warm start (if any), then a start at the lowest observed variance with a tight smile, then
/// a wide start at the weighted mean log-moneyness.
fn start_points(samples: &[Sample], warm: Option<(f64, f64)>) -> [Option<[f64; 2]>; STARTS_MAX] {
    let lowest = samples
        .iter()
        .filter(|s| s.weight > 0.0)
        .fold(None::<Sample>, |best, s| match best {
            Some(b) if b.w <= s.w => Some(b),
            _ => Some(*s),
        })
        .expect("some sample carries weight");
    let weight_sum: f64 = samples.iter().map(|s| s.weight).sum();
    let k_mean = samples.iter().map(|s| s.weight * s.k).sum::<f64>() / weight_sum;
    [
        warm.map(|(m, sigma)| [m, libm::log(sigma.max(SIGMA_MIN))]),
        Some([lowest.k, libm::log(0.1)]),
        Some([k_mean, libm::log(0.5)]),
    ]
}

/// Converts `(a, d, c)` at `(m, sigma)` to raw SVI, nudging `a` up by any rounding deficit so the
/// minimum variance is non-negative.
fn to_params(theta: [f64; 3], m: f64, sigma: f64) -> SviParams {
    let [a, d, c] = theta;
    let b = c / sigma;
    let rho = if c > 0.0 {
        (d / c).clamp(-RHO_ABS_MAX, RHO_ABS_MAX)
    } else {
        0.0
    };
    let variance_floor = b * sigma * libm::sqrt(1.0 - rho * rho);
    let a = a.max(-variance_floor);
    match SviParams::new(a, b.max(0.0), rho, m, sigma) {
        Ok(params) => params,
        // The constraints guarantee validity up to rounding; a flat smile at the floor is the
        // closest valid answer if rounding still breaks it.
        Err(_) => SviParams::new(a.max(0.0), 0.0, 0.0, m, sigma).expect("flat smile is valid"),
    }
}

/// A row `g . (a, d, c) <= bound`.
#[derive(Copy, Clone)]
struct Constraint {
    g: [f64; 3],
    bound: f64,
}

fn constraints(sigma: f64) -> [Constraint; 7] {
    let slope = SLOPE_MAX * sigma;
    [
        Constraint {
            g: [0.0, 0.0, -1.0],
            bound: 0.0,
        },
        Constraint {
            g: [0.0, 1.0, -RHO_ABS_MAX],
            bound: 0.0,
        },
        Constraint {
            g: [0.0, -1.0, -RHO_ABS_MAX],
            bound: 0.0,
        },
        Constraint {
            g: [0.0, 1.0, 1.0],
            bound: slope,
        },
        Constraint {
            g: [0.0, -1.0, 1.0],
            bound: slope,
        },
        Constraint {
            g: [-1.0, 1.0, -1.0],
            bound: 0.0,
        },
        Constraint {
            g: [-1.0, -1.0, -1.0],
            bound: 0.0,
        },
    ]
}

/// Normal equations of the inner problem: minimise `theta' G theta - 2 h' theta + c0`.
struct Normal {
    g: [[f64; 3]; 3],
    h: [f64; 3],
    c0: f64,
}

impl Normal {
    fn build(samples: &[Sample], m: f64, sigma: f64) -> Self {
        let mut g = [[0.0; 3]; 3];
        let mut h = [0.0; 3];
        let mut c0 = 0.0;
        for s in samples {
            let y = (s.k - m) / sigma;
            let basis = [1.0, y, libm::sqrt(y * y + 1.0)];
            for row in 0..3 {
                for col in 0..3 {
                    g[row][col] += s.weight * basis[row] * basis[col];
                }
                h[row] += s.weight * basis[row] * s.w;
            }
            c0 += s.weight * s.w * s.w;
        }
        Self { g, h, c0 }
    }

    fn objective(&self, theta: [f64; 3]) -> f64 {
        let mut quad = 0.0;
        for row in 0..3 {
            for col in 0..3 {
                quad += theta[row] * self.g[row][col] * theta[col];
            }
        }
        let lin: f64 = (0..3).map(|i| self.h[i] * theta[i]).sum();
        // Rounding can make the expanded form a hair negative at a perfect fit.
        (quad - 2.0 * lin + self.c0).max(0.0)
    }
}

/// Minimum of the inner convex QP at `(m, sigma)` and its argument `(a, d, c)`.
fn inner_solve(samples: &[Sample], m: f64, sigma: f64) -> (f64, [f64; 3]) {
    let normal = Normal::build(samples, m, sigma);
    let rows = constraints(sigma);
    let feasible = |theta: [f64; 3]| {
        rows.iter().all(|r| {
            let lhs: f64 = (0..3).map(|i| r.g[i] * theta[i]).sum();
            lhs <= r.bound
                + 1e-12 * (1.0 + r.bound.abs() + theta.iter().map(|t| t.abs()).sum::<f64>())
        })
    };
    if let Some(theta) = solve_kkt(&normal, &rows, &[])
        && feasible(theta)
    {
        return (normal.objective(theta), theta);
    }
    // The unconstrained optimum is infeasible: the optimum lies on a face. Enumerate every
    // active set of one to three constraints; the best feasible candidate is optimal because the
    // problem is convex. The origin is always feasible.
    let mut best = ([0.0; 3], normal.objective([0.0; 3]));
    let mut consider = |active: &[usize]| {
        if let Some(theta) = solve_kkt(&normal, &rows, active)
            && feasible(theta)
        {
            let value = normal.objective(theta);
            if value < best.1 {
                best = (theta, value);
            }
        }
    };
    for i in 0..rows.len() {
        consider(&[i]);
        for j in i + 1..rows.len() {
            consider(&[i, j]);
            for k in j + 1..rows.len() {
                consider(&[i, j, k]);
            }
        }
    }
    (best.1, best.0)
}

/// Minimises `theta' G theta - 2 h' theta` subject to the `active` rows holding with equality, by
/// the KKT system `[2G A'; A 0] [theta; lambda] = [2h; bound]`. `None` if singular.
#[allow(
    clippy::needless_range_loop,
    reason = "dense matrix code reads best with indices"
)]
fn solve_kkt(normal: &Normal, rows: &[Constraint; 7], active: &[usize]) -> Option<[f64; 3]> {
    const N_MAX: usize = 6;
    let n = 3 + active.len();
    debug_assert!(n <= N_MAX);
    let mut matrix = [[0.0; N_MAX + 1]; N_MAX];
    for row in 0..3 {
        for col in 0..3 {
            matrix[row][col] = 2.0 * normal.g[row][col];
        }
        matrix[row][n] = 2.0 * normal.h[row];
    }
    for (index, &row_index) in active.iter().enumerate() {
        let row = rows[row_index];
        for col in 0..3 {
            matrix[3 + index][col] = row.g[col];
            matrix[col][3 + index] = row.g[col];
        }
        matrix[3 + index][n] = row.bound;
    }
    let solution = gauss_solve(&mut matrix, n)?;
    let theta = [solution[0], solution[1], solution[2]];
    theta.iter().all(|t| t.is_finite()).then_some(theta)
}

/// Gaussian elimination with partial pivoting on an `n x (n+1)` augmented matrix.
#[allow(
    clippy::needless_range_loop,
    reason = "dense matrix code reads best with indices"
)]
fn gauss_solve(matrix: &mut [[f64; 7]; 6], n: usize) -> Option<[f64; 6]> {
    let scale = (0..n)
        .flat_map(|r| (0..n).map(move |c| (r, c)))
        .fold(0.0_f64, |acc, (r, c)| acc.max(matrix[r][c].abs()));
    if !(scale > 0.0 && scale.is_finite()) {
        return None;
    }
    for col in 0..n {
        let pivot_row = (col..n).fold(col, |best, r| {
            if matrix[r][col].abs() > matrix[best][col].abs() {
                r
            } else {
                best
            }
        });
        if matrix[pivot_row][col].abs() <= scale * 1e-14 {
            return None;
        }
        matrix.swap(col, pivot_row);
        for r in col + 1..n {
            let factor = matrix[r][col] / matrix[col][col];
            for c in col..=n {
                matrix[r][c] -= factor * matrix[col][c];
            }
        }
    }
    let mut x = [0.0; 6];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|c| matrix[row][c] * x[c]).sum();
        x[row] = (matrix[row][n] - tail) / matrix[row][row];
    }
    Some(x)
}

/// An axis-aligned box in `(m, ln sigma)`.
struct Box2 {
    lo: [f64; 2],
    hi: [f64; 2],
}

impl Box2 {
    fn clamp(&self, x: [f64; 2]) -> [f64; 2] {
        [
            x[0].clamp(self.lo[0], self.hi[0]),
            x[1].clamp(self.lo[1], self.hi[1]),
        ]
    }
}

/// Nelder-Mead in two dimensions with every trial point clamped into `bounds`.
fn nelder_mead(f: &impl Fn([f64; 2]) -> f64, start: [f64; 2], bounds: &Box2) -> ([f64; 2], f64) {
    const STEP: [f64; 2] = [0.1, 0.5];
    let mut simplex = [
        start,
        bounds.clamp([start[0] + STEP[0], start[1]]),
        bounds.clamp([start[0], start[1] + STEP[1]]),
    ];
    // A start on the box edge can collapse a vertex onto the start: step inward instead.
    for (axis, vertex) in [(0, 1), (1, 2)] {
        if simplex[vertex][axis] == start[axis] {
            simplex[vertex][axis] = bounds.clamp([start[0] - STEP[0], start[1] - STEP[1]])[axis];
        }
    }
    let mut values = simplex.map(f);
    for _ in 0..NELDER_MEAD_ITERATIONS_MAX {
        let mut order = [0, 1, 2];
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        let [best, mid, worst] = order;
        let spread = (0..3).fold(0.0_f64, |acc, v| {
            acc.max((simplex[v][0] - simplex[best][0]).abs())
                .max((simplex[v][1] - simplex[best][1]).abs())
        });
        if spread <= NELDER_MEAD_X_TOLERANCE {
            break;
        }
        let centroid = [
            0.5 * (simplex[best][0] + simplex[mid][0]),
            0.5 * (simplex[best][1] + simplex[mid][1]),
        ];
        let along = |t: f64| {
            bounds.clamp([
                centroid[0] + t * (simplex[worst][0] - centroid[0]),
                centroid[1] + t * (simplex[worst][1] - centroid[1]),
            ])
        };
        let reflected = along(-1.0);
        let value_reflected = f(reflected);
        if value_reflected < values[best] {
            let expanded = along(-2.0);
            let value_expanded = f(expanded);
            (simplex[worst], values[worst]) = if value_expanded < value_reflected {
                (expanded, value_expanded)
            } else {
                (reflected, value_reflected)
            };
        } else if value_reflected < values[mid] {
            (simplex[worst], values[worst]) = (reflected, value_reflected);
        } else {
            let t = if value_reflected < values[worst] {
                -0.5
            } else {
                0.5
            };
            let contracted = along(t);
            let value_contracted = f(contracted);
            if value_contracted < values[worst].min(value_reflected) {
                (simplex[worst], values[worst]) = (contracted, value_contracted);
            } else {
                for v in [mid, worst] {
                    simplex[v] = [
                        0.5 * (simplex[v][0] + simplex[best][0]),
                        0.5 * (simplex[v][1] + simplex[best][1]),
                    ];
                    values[v] = f(simplex[v]);
                }
            }
        }
    }
    let best = (0..3).fold(0, |b, i| if values[i] < values[b] { i } else { b });
    (simplex[best], values[best])
}
