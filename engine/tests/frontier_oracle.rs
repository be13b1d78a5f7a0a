//! The exact efficient-frontier solver (`sextant_engine::frontier`) against an independent QP
//! solver, Clarabel (an interior-point conic solver, used here only as an oracle).
//!
//! The problem, for each target return t:
//!
//!   minimise w'Σw  subject to  sum(w) = 1,  μ'w = t,  lower ≤ w ≤ upper,
//!                              g.min ≤ sum(w_i for i in g.members) ≤ g.max  for every group g.
//!
//! `PROBLEMS` seeded random problems (2 to 100 assets, mostly small; see `random_case`) are each
//! solved once with `FrontierProblem::solve`. Every generated problem is feasible by
//! construction: a portfolio w0 is drawn first and the bounds and groups are set around it.
//! On each frontier the targets are the two ends, the corners' returns (all of them up to 10
//! corners, else 8 drawn at random) and 5 uniform random returns in between; at each one:
//!
//! - every constraint holds for `at_return(t)`'s weights within `CONSTRAINT_TOL` = 1e-9
//!   (absolute: budget, target return, bounds, groups), and the portfolio's expected_return,
//!   variance and volatility agree with its weights;
//! - its variance w'Σw equals that of Clarabel's solution of the same QP within
//!   `VARIANCE_REL_TOL` = 1e-8 relative plus an absolute floor of
//!   `VARIANCE_FLOOR` = 1e-11 × mean(diag Σ) (why: see the constant), in both directions, so
//!   in particular ours is never above Clarabel's by more than that.
//!
//! Per frontier, too: the first corner's variance is Clarabel's global minimum variance (no
//! return constraint), `max_return` is the largest return attainable (Clarabel LP) within
//! 1e-9, corners are sorted by return and feasible, the variance never falls as the target
//! return rises, `points(k)` is k evenly spaced portfolios from end to end, and `at_return`
//! is None just outside [min_return, max_return].
//!
//! Targets on which Clarabel does not reach `Solved` (at tolerances 1e-12) are skipped and
//! counted; the test fails if more than 1% of Clarabel's solves are skipped (about 0.1% are,
//! with a correct solver). At max_return the oracle solves on the LP's optimal face instead
//! (see `check_case`). A summary line (problems, targets, largest variance gaps, skips) goes
//! to stderr:
//! `cargo test --release -p sextant-engine --test frontier_oracle -- --nocapture`.
//! `FRONTIER_ORACLE_ONLY=<index>` runs just that one problem (the index is in each failure).
//!
//! `infeasible_constraints_are_reported` checks that infeasible bounds or groups give an `Err`
//! whose message names the offending constraint ("bounds", "groups[i]").

use std::collections::BTreeMap;
use std::time::Instant;

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus, SupportedConeT,
    ZeroConeT,
};
use sextant_engine::frontier::{Frontier, FrontierProblem, GroupLimit, Portfolio};

/// Random problems checked (each one's targets are listed in the top comment).
const PROBLEMS: usize = 1_200;
/// Base seed; problem i is generated from its own stream, `case_rng(i)`.
const SEED: u64 = 0x5E87_A47F_2026_0001;
/// Largest violation of any constraint by our weights (absolute; weights and returns are O(1)).
const CONSTRAINT_TOL: f64 = 1e-9;
/// Relative agreement required between our variance and Clarabel's.
const VARIANCE_REL_TOL: f64 = 1e-8;
/// The absolute floor of the variance tolerance, as a multiple of mean(diag Σ). Some frontier
/// variances are near zero (Σ of low rank; eigenvalues down to 1e-8 of the largest), where
/// 1e-8 relative asks for more than the oracle gives: Clarabel stops on an absolute duality
/// gap of 1e-12 in an objective the oracle scales to w'Σw / mean(diag Σ), and its variances
/// were seen up to 6e-13 × mean(diag Σ) off the true minimum (against its own runs at 1e-13),
/// all on the ill-conditioned problems. 1e-11 leaves a margin of 15 over that. (Rounding in
/// w'Σw itself, about n·ε·|w|'|Σ||w|, is ~1e-14 of it.) Above 1e-3 × mean(diag Σ) the
/// relative 1e-8 is the larger term.
const VARIANCE_FLOOR: f64 = 1e-11;
/// Clarabel's tolerances (gap absolute and relative, feasibility).
const CLARABEL_TOL: f64 = 1e-12;
/// Largest share of Clarabel solves that may end short of `Solved` and be skipped.
const MAX_SKIP_SHARE: f64 = 0.01;

// ------------------------------------------------------------------------------------------
// Random numbers
// ------------------------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough to draw test problems.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform on [lo, hi).
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in lo..=hi.
    fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // in (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `count` distinct indices from 0..n, in increasing order.
    fn subset(&mut self, n: usize, count: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..count {
            let j = self.int(i, n - 1);
            all.swap(i, j);
        }
        let mut chosen = all[..count].to_vec();
        chosen.sort_unstable();
        chosen
    }
}

fn case_rng(index: usize) -> SplitMix64 {
    let mut mix = SplitMix64(SEED ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    SplitMix64(mix.next_u64())
}

// ------------------------------------------------------------------------------------------
// Small linear algebra
// ------------------------------------------------------------------------------------------

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// w'Σw for row-major n×n Σ.
fn quad_form(cov: &[f64], w: &[f64]) -> f64 {
    let n = w.len();
    (0..n)
        .map(|i| w[i] * dot(&cov[i * n..(i + 1) * n], w))
        .sum()
}

fn mean_diagonal(cov: &[f64], n: usize) -> f64 {
    (0..n).map(|i| cov[i * n + i]).sum::<f64>() / n as f64
}

/// A random n×n orthogonal matrix, as its n orthonormal columns (Gram–Schmidt on Gaussian
/// vectors, each orthogonalised twice for accuracy).
fn random_orthogonal(rng: &mut SplitMix64, n: usize) -> Vec<Vec<f64>> {
    let mut columns: Vec<Vec<f64>> = Vec::with_capacity(n);
    while columns.len() < n {
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        for _ in 0..2 {
            for q in &columns {
                let d = dot(q, &v);
                v.iter_mut().zip(q).for_each(|(vi, qi)| *vi -= d * qi);
            }
        }
        let norm = dot(&v, &v).sqrt();
        if norm > 1e-3 {
            v.iter_mut().for_each(|vi| *vi /= norm);
            columns.push(v);
        }
    }
    columns
}

/// Σ = sum_k c_k v_k v_k' + diag(d), computed on the upper triangle and mirrored so that it is
/// exactly symmetric.
fn sum_of_outer_products(n: usize, vectors: &[(f64, Vec<f64>)], diagonal: &[f64]) -> Vec<f64> {
    let mut cov = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let mut s: f64 = vectors.iter().map(|(c, v)| c * v[i] * v[j]).sum();
            if i == j {
                s += diagonal[i];
            }
            cov[i * n + j] = s;
            cov[j * n + i] = s;
        }
    }
    cov
}

// ------------------------------------------------------------------------------------------
// Random problems
// ------------------------------------------------------------------------------------------

struct Case {
    /// What kind of problem this is, for failure messages.
    label: String,
    problem: FrontierProblem,
    /// For the random target returns.
    rng: SplitMix64,
}

/// Mostly small problems, with about a tenth of 60 to 100 assets.
fn random_size(rng: &mut SplitMix64) -> usize {
    let u = rng.uniform();
    if u < 0.55 {
        rng.int(2, 8)
    } else if u < 0.80 {
        rng.int(9, 30)
    } else if u < 0.90 {
        rng.int(31, 59)
    } else {
        rng.int(60, 100)
    }
}

/// A covariance matrix for n assets, and its kind.
fn random_covariance(rng: &mut SplitMix64, n: usize) -> (Vec<f64>, String) {
    let u = rng.uniform();
    if u < 0.60 {
        // Factor model: a market factor, up to 5 more, and idiosyncratic variances.
        let k = rng.int(1, 6.min(n));
        let factors: Vec<(f64, Vec<f64>)> = (0..k)
            .map(|f| {
                let loadings = (0..n)
                    .map(|_| {
                        if f == 0 {
                            rng.range(0.5, 1.5)
                        } else {
                            rng.normal()
                        }
                    })
                    .collect();
                let variance = if f == 0 { 0.02 } else { rng.range(0.001, 0.01) };
                (variance, loadings)
            })
            .collect();
        let idiosyncratic: Vec<f64> = (0..n).map(|_| rng.range(0.0025, 0.04)).collect();
        (
            sum_of_outer_products(n, &factors, &idiosyncratic),
            format!("factor(k={k})"),
        )
    } else if u < 0.85 {
        // Ill-conditioned: Q diag(λ) Q' with λ spread over [1e-8, 1] × scale, both ends present.
        let scale = rng.range(0.01, 0.1);
        let q = random_orthogonal(rng, n);
        let eigen: Vec<(f64, Vec<f64>)> = q
            .into_iter()
            .enumerate()
            .map(|(k, v)| {
                let exponent = match k {
                    0 => 0.0,
                    1 => -8.0,
                    _ => -8.0 * rng.uniform(),
                };
                (scale * 10f64.powf(exponent), v)
            })
            .collect();
        (
            sum_of_outer_products(n, &eigen, &vec![0.0; n]),
            "ill-conditioned(1e-8)".into(),
        )
    } else if u < 0.90 && n >= 2 {
        // Low rank, no idiosyncratic part: singular, and some portfolios may be riskless.
        let k = rng.int(1, n - 1);
        let factors: Vec<(f64, Vec<f64>)> = (0..k)
            .map(|_| (0.01, (0..n).map(|_| rng.normal()).collect()))
            .collect();
        (
            sum_of_outer_products(n, &factors, &vec![0.0; n]),
            format!("low-rank(k={k})"),
        )
    } else {
        let variances: Vec<f64> = (0..n).map(|_| rng.range(0.0025, 0.09)).collect();
        (sum_of_outer_products(n, &[], &variances), "diagonal".into())
    }
}

/// Expected returns for n assets (given their variances), and their kind.
fn random_returns(rng: &mut SplitMix64, variances: &[f64]) -> (Vec<f64>, String) {
    let n = variances.len();
    let u = rng.uniform();
    if u < 0.45 {
        (
            (0..n).map(|_| rng.range(-0.02, 0.15)).collect(),
            "uniform".into(),
        )
    } else if u < 0.65 {
        let premium = rng.range(0.1, 0.5);
        let mu = variances
            .iter()
            .map(|v| 0.02 + premium * v.sqrt() + 0.01 * rng.normal())
            .collect();
        (mu, "risk-linked".into())
    } else if u < 0.85 {
        // Rounded to 0.01: many ties.
        let mu = (0..n)
            .map(|_| (rng.range(0.0, 0.12) * 100.0).round() / 100.0)
            .collect();
        (mu, "rounded(0.01)".into())
    } else if u < 0.90 {
        let mu = (0..n)
            .map(|_| if rng.chance(0.5) { 0.03 } else { 0.07 })
            .collect();
        (mu, "two-levels".into())
    } else if u < 0.95 {
        let mu = (0..n).map(|_| 0.06 + 1e-6 * rng.range(-1.0, 1.0)).collect();
        (mu, "near-equal(1e-6)".into())
    } else {
        (vec![0.05; n], "all-equal".into())
    }
}

/// A portfolio summing to one: long-only, often sparse.
fn random_portfolio(rng: &mut SplitMix64, n: usize) -> Vec<f64> {
    let sparse = rng.chance(0.3);
    let mut w: Vec<f64> = (0..n)
        .map(|_| {
            if sparse && rng.chance(0.5) {
                0.0
            } else {
                -(1.0 - rng.uniform()).ln()
            }
        })
        .collect();
    if w.iter().all(|&x| x == 0.0) {
        let i = rng.int(0, n - 1);
        w[i] = 1.0;
    }
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= total);
    w
}

/// Rounds w to multiples of 2^-30 and makes its largest weight absorb the rounding so that it
/// sums to exactly 1. Every sum of these weights is then exact in f64 (at most 100 terms of
/// below 2^31 grid steps each), so the bounds and group limits set from them below hold at w
/// exactly, not just to rounding: each problem is feasible by construction.
fn round_to_grid(w: &mut [f64]) {
    let grid = (1u64 << 30) as f64;
    w.iter_mut().for_each(|x| *x = (*x * grid).round() / grid);
    let largest = (0..w.len())
        .max_by(|&i, &j| w[i].total_cmp(&w[j]))
        .expect("at least one weight");
    let rest: f64 = (0..w.len()).filter(|&i| i != largest).map(|i| w[i]).sum();
    w[largest] = 1.0 - rest;
}

fn random_case(index: usize) -> Case {
    let mut rng = case_rng(index);
    let n = random_size(&mut rng);

    // Duplicated assets (identical rows and columns of Σ) make Σ singular; a duplicate keeps
    // its original's expected return half the time.
    let duplicates = if n >= 3 && rng.chance(0.12) {
        rng.int(1, (n / 4).max(1))
    } else {
        0
    };
    let distinct = n - duplicates;
    let (base_cov, cov_kind) = random_covariance(&mut rng, distinct);
    let base_variances: Vec<f64> = (0..distinct).map(|i| base_cov[i * distinct + i]).collect();
    let (base_mu, mu_kind) = random_returns(&mut rng, &base_variances);

    // source[i]: the distinct asset that asset i is; then shuffled so copies are anywhere.
    let mut source: Vec<usize> = (0..distinct).collect();
    for _ in 0..duplicates {
        source.push(rng.int(0, distinct - 1));
    }
    for i in (1..n).rev() {
        let j = rng.int(0, i);
        source.swap(i, j);
    }
    let mut seen = vec![false; distinct];
    let mut expected_returns = Vec::with_capacity(n);
    for &s in &source {
        let mu = if seen[s] && rng.chance(0.5) {
            base_mu[s] + rng.range(-0.03, 0.03)
        } else {
            base_mu[s]
        };
        seen[s] = true;
        expected_returns.push(mu);
    }
    let mut covariance = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            covariance[i * n + j] = base_cov[source[i] * distinct + source[j]];
        }
    }

    // The feasible point everything is built around.
    let shorting = rng.chance(0.08);
    let mut w0 = random_portfolio(&mut rng, n);
    if shorting {
        let z: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        w0.iter_mut()
            .zip(&z)
            .for_each(|(w, zi)| *w += 0.15 * (zi - mean));
    }
    round_to_grid(&mut w0);

    let mut bounds_kind = Vec::new();
    let (mut lower, mut upper) = if shorting {
        bounds_kind.push("short");
        let lower: Vec<f64> = w0.iter().map(|&w| rng.range(-0.3, 0.0).min(w)).collect();
        let upper: Vec<f64> = w0.iter().map(|&w| rng.range(1.0, 1.2).max(w)).collect();
        (lower, upper)
    } else {
        bounds_kind.push("long");
        (vec![0.0; n], vec![1.0; n])
    };
    if !shorting && rng.chance(0.2) {
        bounds_kind.push("minimums");
        for i in 0..n {
            if rng.chance(0.6) {
                lower[i] = (w0[i] * rng.uniform()).min(0.05);
            }
        }
    }
    if rng.chance(0.25) {
        bounds_kind.push("caps");
        for i in 0..n {
            upper[i] = rng.range(0.2, 1.0).max(w0[i]);
        }
    }
    let mut pinned = 0;
    if n >= 3 && rng.chance(0.07) {
        pinned = rng.int(1, 3.min(n - 2));
        for i in rng.subset(n, pinned) {
            lower[i] = w0[i];
            upper[i] = w0[i];
        }
    }

    // 0 to 3 groups of random (possibly overlapping) members, limits around w0's sum.
    let group_count = match rng.uniform() {
        u if u < 0.45 => 0,
        u if u < 0.70 => 1,
        u if u < 0.88 => 2,
        _ => 3,
    };
    let mut groups = Vec::with_capacity(group_count);
    for _ in 0..group_count {
        let size = rng.int(1, n);
        let members = rng.subset(n, size);
        let s: f64 = members.iter().map(|&i| w0[i]).sum();
        let (min, max) = match rng.uniform() {
            u if u < 0.55 => (s - rng.range(0.0, 0.3), s + rng.range(0.0, 0.3)),
            u if u < 0.70 => (s, s + rng.range(0.05, 0.5)), // w0 on the minimum
            u if u < 0.85 => (s - rng.range(0.05, 0.5), s), // w0 on the maximum
            u if u < 0.97 => (s - 1.0, s + rng.range(0.0, 0.2)), // effectively a cap only
            _ => (s, s),                                    // an equality
        };
        groups.push(GroupLimit { members, min, max });
    }

    let label = format!(
        "problem #{index}: n={n} cov={cov_kind} mu={mu_kind} bounds={} duplicates={duplicates} \
         pinned={pinned} groups={group_count}",
        bounds_kind.join("+"),
    );
    let problem = FrontierProblem {
        expected_returns,
        covariance,
        lower,
        upper,
        groups,
    };
    let budget: f64 = w0.iter().sum();
    let violations = violations(&problem, &w0, None);
    assert!(
        budget == 1.0 && violations.is_empty(),
        "test bug: {label}: w0 is infeasible: sum {budget}, {violations:?}"
    );
    Case {
        label,
        problem,
        rng,
    }
}

// ------------------------------------------------------------------------------------------
// Constraint checks
// ------------------------------------------------------------------------------------------

/// The constraints `w` violates by more than `CONSTRAINT_TOL`, in words.
fn violations(p: &FrontierProblem, w: &[f64], target: Option<f64>) -> Vec<String> {
    let n = p.expected_returns.len();
    let mut out = Vec::new();
    if w.len() != n {
        out.push(format!("{} weights for {n} assets", w.len()));
        return out;
    }
    if let Some(i) = w.iter().position(|x| !x.is_finite()) {
        out.push(format!("w[{i}] = {}", w[i]));
        return out;
    }
    let budget: f64 = w.iter().sum();
    if (budget - 1.0).abs() > CONSTRAINT_TOL {
        out.push(format!("sum(w) = {budget:.17}"));
    }
    if let Some(t) = target {
        let r = dot(&p.expected_returns, w);
        if (r - t).abs() > CONSTRAINT_TOL {
            out.push(format!("mu'w = {r:.17} for target {t:.17}"));
        }
    }
    for (i, &wi) in w.iter().enumerate() {
        let (lo, hi) = (p.lower[i], p.upper[i]);
        if wi < lo - CONSTRAINT_TOL || wi > hi + CONSTRAINT_TOL {
            out.push(format!("w[{i}] = {wi:e} outside [{lo:e}, {hi:e}]"));
        }
    }
    for (g, group) in p.groups.iter().enumerate() {
        let s: f64 = group.members.iter().map(|&i| w[i]).sum();
        if s < group.min - CONSTRAINT_TOL || s > group.max + CONSTRAINT_TOL {
            out.push(format!(
                "groups[{g}] sum = {s:e} outside [{:e}, {:e}]",
                group.min, group.max
            ));
        }
    }
    out
}

/// Checks a portfolio from the frontier: its weights are feasible (at `target` when given),
/// and its expected_return, variance and volatility are those of its weights. Returns w'Σw.
fn check_portfolio(
    p: &FrontierProblem,
    floor: f64,
    portfolio: &Portfolio,
    target: Option<f64>,
) -> Result<f64, String> {
    let w = &portfolio.weights;
    let mut problems = violations(p, w, target);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let r = dot(&p.expected_returns, w);
    if (portfolio.expected_return - r).abs() > CONSTRAINT_TOL {
        problems.push(format!(
            "expected_return {:e} but mu'w = {r:e}",
            portfolio.expected_return
        ));
    }
    let variance = quad_form(&p.covariance, w);
    if (portfolio.variance - variance).abs() > VARIANCE_REL_TOL * variance.abs() + floor {
        problems.push(format!(
            "variance {:e} but w'Σw = {variance:e}",
            portfolio.variance
        ));
    }
    let (vol, var) = (portfolio.volatility, portfolio.variance);
    if vol.is_nan() || vol < 0.0 || (vol * vol - var).abs() > 1e-12 * var.abs() + floor {
        problems.push(format!("volatility {vol:e} for variance {var:e}"));
    }
    if problems.is_empty() {
        Ok(variance)
    } else {
        Err(problems.join("; "))
    }
}

// ------------------------------------------------------------------------------------------
// The oracle
// ------------------------------------------------------------------------------------------

/// One linear constraint: sum_j c_j w_j = rhs (an equality) or ≤ rhs (an inequality).
#[derive(Clone)]
struct Row {
    terms: Vec<(usize, f64)>,
    rhs: f64,
}

/// A problem's constraints as Clarabel takes them: equalities (its zero cone) and
/// inequalities (its nonnegative cone, on the slacks rhs - row·w).
#[derive(Clone)]
struct Constraints {
    equalities: Vec<Row>,
    inequalities: Vec<Row>,
}

impl Constraints {
    /// Budget, bounds and groups. Pinned assets (lower = upper) and equality groups
    /// (min = max) are equalities: as two inequalities they would leave the interior-point
    /// method no interior.
    fn of(p: &FrontierProblem) -> Self {
        let n = p.expected_returns.len();
        let unit = |i: usize, c: f64| vec![(i, c)];
        let mut equalities = vec![Row {
            terms: (0..n).map(|i| (i, 1.0)).collect(),
            rhs: 1.0,
        }];
        let mut inequalities = Vec::new();
        for i in 0..n {
            if p.lower[i] == p.upper[i] {
                equalities.push(Row {
                    terms: unit(i, 1.0),
                    rhs: p.lower[i],
                });
            } else {
                inequalities.push(Row {
                    terms: unit(i, 1.0),
                    rhs: p.upper[i],
                });
                inequalities.push(Row {
                    terms: unit(i, -1.0),
                    rhs: -p.lower[i],
                });
            }
        }
        for g in &p.groups {
            let ones = |c: f64| g.members.iter().map(|&i| (i, c)).collect::<Vec<_>>();
            if g.min == g.max {
                equalities.push(Row {
                    terms: ones(1.0),
                    rhs: g.min,
                });
            } else {
                inequalities.push(Row {
                    terms: ones(1.0),
                    rhs: g.max,
                });
                inequalities.push(Row {
                    terms: ones(-1.0),
                    rhs: -g.min,
                });
            }
        }
        Constraints {
            equalities,
            inequalities,
        }
    }

    /// With μ'w = target added, as (μ - c)'w / s = (target - c) / s for μ's centre c and
    /// spread s (the same constraint given sum(w) = 1, with O(1) coefficients); left out when all
    /// returns are equal, where the budget implies it.
    fn at_return(&self, mu: &[f64], target: f64) -> Self {
        let (centre, spread) = centre_and_spread(mu);
        let mut out = self.clone();
        if spread > 0.0 {
            out.equalities.push(Row {
                terms: mu
                    .iter()
                    .map(|m| (m - centre) / spread)
                    .enumerate()
                    .collect(),
                rhs: (target - centre) / spread,
            });
        }
        out
    }

    /// With the inequalities flagged in `active` turned into equalities.
    fn with_active(&self, active: &[bool]) -> Self {
        let mut out = Constraints {
            equalities: self.equalities.clone(),
            inequalities: Vec::new(),
        };
        for (row, &is_active) in self.inequalities.iter().zip(active) {
            if is_active {
                out.equalities.push(row.clone());
            } else {
                out.inequalities.push(row.clone());
            }
        }
        out
    }
}

/// The midpoint and half-range of the returns (exactly 0 when all are equal).
fn centre_and_spread(mu: &[f64]) -> (f64, f64) {
    let max = mu.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = mu.iter().copied().fold(f64::INFINITY, f64::min);
    ((max + min) / 2.0, (max - min) / 2.0)
}

#[derive(Clone, Copy, Debug)]
enum Objective {
    /// Minimise w'Σw.
    Variance,
    /// Maximise μ'w (an LP).
    Return,
}

struct OracleSolution {
    weights: Vec<f64>,
    /// Which inequalities hold with equality: those whose dual exceeds their slack. An
    /// interior-point method ends near the analytic centre of the optimal face, where this
    /// split is strict (Goldman–Tucker), so for an LP these are exactly the inequalities
    /// active on every optimal solution.
    active: Vec<bool>,
}

/// Clarabel's solution, or its status when that is not `Solved`.
///
/// Clarabel solves min ½x'Px + q'x s.t. Ax + s = b, s ∈ K. For the variance P is 2Σ divided
/// by Σ's mean diagonal, and for the return q is -(μ - c)/s as in `Constraints::at_return`,
/// so that objectives are O(1) and its absolute tolerances mean the same on every problem;
/// the oracle's variance is recomputed from its weights.
fn clarabel_solve(
    p: &FrontierProblem,
    objective: Objective,
    constraints: &Constraints,
) -> Result<OracleSolution, SolverStatus> {
    let n = p.expected_returns.len();
    let (pmat, q) = match objective {
        Objective::Return => {
            let (centre, spread) = centre_and_spread(&p.expected_returns);
            let q = p
                .expected_returns
                .iter()
                .map(|m| {
                    if spread > 0.0 {
                        -(m - centre) / spread
                    } else {
                        0.0
                    }
                })
                .collect();
            (CscMatrix::zeros((n, n)), q)
        }
        Objective::Variance => {
            // The upper triangle, column by column.
            let scale = 2.0 / mean_diagonal(&p.covariance, n);
            let (mut colptr, mut rowval, mut nzval) = (vec![0], Vec::new(), Vec::new());
            for j in 0..n {
                for i in 0..=j {
                    let v = p.covariance[i * n + j];
                    if v != 0.0 {
                        rowval.push(i);
                        nzval.push(v * scale);
                    }
                }
                colptr.push(rowval.len());
            }
            (CscMatrix::new(n, n, colptr, rowval, nzval), vec![0.0; n])
        }
    };

    let rows: Vec<&Row> = constraints
        .equalities
        .iter()
        .chain(&constraints.inequalities)
        .collect();
    let b: Vec<f64> = rows.iter().map(|row| row.rhs).collect();
    let mut columns: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for (r, row) in rows.iter().enumerate() {
        for &(j, c) in &row.terms {
            columns[j].push((r, c));
        }
    }
    let (mut colptr, mut rowval, mut nzval) = (vec![0], Vec::new(), Vec::new());
    for column in columns {
        for (r, c) in column {
            rowval.push(r);
            nzval.push(c);
        }
        colptr.push(rowval.len());
    }
    let a = CscMatrix::new(rows.len(), n, colptr, rowval, nzval);
    let equalities = constraints.equalities.len();
    let cones: [SupportedConeT<f64>; 2] = [
        ZeroConeT(equalities),
        NonnegativeConeT(constraints.inequalities.len()),
    ];

    let settings = DefaultSettings {
        verbose: false,
        max_iter: 500,
        tol_gap_abs: CLARABEL_TOL,
        tol_gap_rel: CLARABEL_TOL,
        tol_feas: CLARABEL_TOL,
        ..DefaultSettings::default()
    };
    let mut solver = DefaultSolver::new(&pmat, &q, &a, &b, &cones, settings)
        .expect("test bug: Clarabel rejected the problem data");
    solver.solve();
    let solution = &solver.solution;
    if solution.status != SolverStatus::Solved {
        return Err(solution.status);
    }
    let active = (equalities..rows.len())
        .map(|r| solution.z[r] > solution.s[r])
        .collect();
    Ok(OracleSolution {
        weights: solution.x.clone(),
        active,
    })
}

// ------------------------------------------------------------------------------------------
// The random-problem test
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    problems: usize,
    corners: usize,
    most_corners: usize,
    targets: usize,
    clarabel_solves: usize,
    /// Targets at max_return that the oracle solved on the LP's optimal face.
    on_face: usize,
    /// Clarabel statuses other than Solved, by status.
    skips: BTreeMap<String, usize>,
    /// Largest (ours - Clarabel's) / (Clarabel's + floor), and the most negative one.
    worst_above: f64,
    worst_below: f64,
    failures: Vec<String>,
}

impl Tally {
    fn skipped(&self) -> usize {
        self.skips.values().sum()
    }

    fn fail(&mut self, case: &Case, message: String) {
        self.failures.push(format!("{}: {message}", case.label));
    }

    /// Clarabel's solution, counting the solve, or None (counted as a skip).
    fn oracle(
        &mut self,
        p: &FrontierProblem,
        objective: Objective,
        constraints: &Constraints,
        what: &str,
    ) -> Option<OracleSolution> {
        self.clarabel_solves += 1;
        match clarabel_solve(p, objective, constraints) {
            Ok(solution) => Some(solution),
            Err(status) => {
                *self
                    .skips
                    .entry(format!("{status:?} ({what})"))
                    .or_default() += 1;
                None
            }
        }
    }

    /// Compares our variance with the oracle's; records the gap and any failure.
    fn compare(&mut self, case: &Case, what: &str, ours: f64, oracle: f64, floor: f64) {
        let gap = (ours - oracle) / (oracle.abs() + floor);
        self.worst_above = self.worst_above.max(gap);
        self.worst_below = self.worst_below.min(gap);
        if (ours - oracle).abs() > VARIANCE_REL_TOL * oracle.abs() + floor {
            self.fail(
                case,
                format!(
                    "{what}: variance {ours:.15e}, Clarabel's {oracle:.15e} \
                     (relative gap {gap:+.2e}, floor {floor:.1e})"
                ),
            );
        }
    }
}

fn check_case(case: &mut Case, tally: &mut Tally) {
    let p = &case.problem;
    let n = p.expected_returns.len();
    let floor = VARIANCE_FLOOR * mean_diagonal(&p.covariance, n);
    tally.problems += 1;

    if std::env::var_os("FRONTIER_ORACLE_DUMP").is_some() {
        eprintln!("{p:?}");
    }
    let frontier: Frontier = match p.solve() {
        Ok(f) => f,
        Err(e) => {
            let message = format!("solve() failed on a feasible problem: {e}");
            tally.fail(case, message);
            return;
        }
    };
    let (lo, hi) = (frontier.min_return(), frontier.max_return());
    let corners = frontier.corners();
    tally.corners += corners.len();
    tally.most_corners = tally.most_corners.max(corners.len());
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) || corners.is_empty() {
        let message = format!(
            "min_return {lo:e}, max_return {hi:e}, {} corners",
            corners.len()
        );
        tally.fail(case, message);
        return;
    }
    let mut errors = Vec::new();

    // Corners: sorted by return from min_return to max_return, each a feasible portfolio.
    let first = corners[0].expected_return;
    let last = corners[corners.len() - 1].expected_return;
    if (first - lo).abs() > CONSTRAINT_TOL || (last - hi).abs() > CONSTRAINT_TOL {
        errors.push(format!(
            "corners run from return {first:e} to {last:e}, min_return {lo:e}, max_return {hi:e}"
        ));
    }
    for (k, pair) in corners.windows(2).enumerate() {
        if pair[1].expected_return < pair[0].expected_return - CONSTRAINT_TOL {
            errors.push(format!(
                "corner {} has return {:e} below corner {k}'s {:e}",
                k + 1,
                pair[1].expected_return,
                pair[0].expected_return
            ));
        }
    }
    let mut first_variance = None;
    for (k, corner) in corners.iter().enumerate() {
        match check_portfolio(p, floor, corner, None) {
            Ok(v) if k == 0 => first_variance = Some(v),
            Ok(_) => {}
            Err(e) => errors.push(format!("corner {k}: {e}")),
        }
    }

    // The ends against Clarabel: the global minimum variance and the largest return.
    let mu = &p.expected_returns;
    let constraints = Constraints::of(p);
    let oracle = tally.oracle(
        p,
        Objective::Variance,
        &constraints,
        "global minimum variance",
    );
    if let (Some(v0), Some(s)) = (first_variance, oracle) {
        let v = quad_form(&p.covariance, &s.weights);
        tally.compare(
            case,
            "first corner vs global minimum variance",
            v0,
            v,
            floor,
        );
    }
    let mut max_face = None;
    if let Some(s) = tally.oracle(p, Objective::Return, &constraints, "maximum return") {
        let best = dot(mu, &s.weights);
        if (hi - best).abs() > CONSTRAINT_TOL {
            errors.push(format!("max_return {hi:.15e}, Clarabel's LP {best:.15e}"));
        }
        max_face = Some((best, constraints.with_active(&s.active)));
    }

    // at_return is None just outside the frontier.
    let outside = 1e-6 * (1.0 + hi.abs().max(lo.abs()));
    for t in [lo - outside, hi + outside] {
        if frontier.at_return(t).is_some() {
            errors.push(format!("at_return({t:e}) is Some outside [{lo:e}, {hi:e}]"));
        }
    }

    // Targets: the ends, corners' returns, and 5 random ones, in increasing order.
    let mut targets = vec![lo, hi];
    if corners.len() <= 10 {
        targets.extend(corners.iter().map(|c| c.expected_return));
    } else {
        let chosen = case.rng.subset(corners.len(), 8);
        targets.extend(chosen.iter().map(|&k| corners[k].expected_return));
    }
    for _ in 0..5 {
        targets.push(case.rng.range(lo, hi));
    }
    let mut targets: Vec<f64> = targets.into_iter().map(|t| t.clamp(lo, hi)).collect();
    targets.sort_by(f64::total_cmp);
    targets.dedup();

    let target_kind = |t: f64| {
        if t == hi {
            "at max_return"
        } else if t == lo {
            "at min_return"
        } else {
            "inside"
        }
    };
    let mut previous: Option<(f64, f64)> = None;
    for &t in &targets {
        tally.targets += 1;
        let Some(ours) = frontier.at_return(t) else {
            errors.push(format!(
                "at_return({t:.17e}) is None inside [{lo:e}, {hi:e}]"
            ));
            continue;
        };
        let variance = match check_portfolio(p, floor, &ours, Some(t)) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("at_return({t:.17e}): {e}"));
                continue;
            }
        };
        if let Some((t0, v0)) = previous {
            if variance < v0 - (VARIANCE_REL_TOL * v0.abs() + floor) {
                errors.push(format!(
                    "variance falls from {v0:e} at return {t0:e} to {variance:e} at {t:e}"
                ));
            }
        }
        previous = Some((t, variance));
        // At max_return the feasible set is the LP's optimal face, which has no interior for
        // the return constraint to cut, and there Clarabel often stops short of Solved. So the
        // oracle first minimises w'Σw over that face, given as the budget plus the LP's active
        // inequalities made equalities (μ'w = max is then implied, and the remaining
        // inequalities can hold strictly), and checks that its return is the LP's optimum;
        // else it solves with the return constraint as everywhere else.
        let on_face = match (&max_face, t == hi) {
            (Some((best, face)), true) => clarabel_solve(p, Objective::Variance, face)
                .ok()
                .filter(|s| (dot(mu, &s.weights) - best).abs() <= CONSTRAINT_TOL),
            _ => None,
        };
        let oracle = if on_face.is_some() {
            tally.clarabel_solves += 1;
            tally.on_face += 1;
            on_face
        } else {
            let at_t = constraints.at_return(mu, t);
            tally.oracle(p, Objective::Variance, &at_t, target_kind(t))
        };
        if let Some(s) = oracle {
            let what = format!("at_return({t:.17e})");
            let v = quad_form(&p.covariance, &s.weights);
            tally.compare(case, &what, variance, v, floor);
        }
    }

    // points(k): k portfolios evenly spaced in return, both ends included.
    for k in [2, 7] {
        let points = frontier.points(k);
        if points.len() != k {
            errors.push(format!("points({k}) has {} portfolios", points.len()));
            continue;
        }
        for (j, point) in points.iter().enumerate() {
            let t = lo + (hi - lo) * j as f64 / (k - 1) as f64;
            if let Err(e) = check_portfolio(p, floor, point, Some(t)) {
                errors.push(format!("points({k})[{j}] (return {t:e}): {e}"));
            } else if let Some(same) = frontier.at_return(t) {
                let v = quad_form(&p.covariance, &point.weights);
                let w = quad_form(&p.covariance, &same.weights);
                if (v - w).abs() > VARIANCE_REL_TOL * w.abs() + floor {
                    errors.push(format!(
                        "points({k})[{j}] variance {v:e}, at_return({t:e})'s {w:e}"
                    ));
                }
            }
        }
    }

    for e in errors {
        tally.fail(case, e);
    }
}

#[test]
fn frontier_matches_clarabel_on_random_problems() {
    let only: Option<usize> = std::env::var("FRONTIER_ORACLE_ONLY")
        .ok()
        .map(|s| s.parse().expect("FRONTIER_ORACLE_ONLY is a problem index"));
    let started = Instant::now();
    let mut tally = Tally::default();
    let (mut largest, mut large) = (0, 0);
    for index in 0..PROBLEMS {
        if only.is_some_and(|i| i != index) {
            continue;
        }
        let mut case = random_case(index);
        let n = case.problem.expected_returns.len();
        largest = largest.max(n);
        large += usize::from(n >= 60);
        check_case(&mut case, &mut tally);
    }

    let skipped = tally.skipped();
    eprintln!(
        "frontier_oracle: {} problems (up to {largest} assets, {large} of 60 or more; {} corners, \
         most {}), \
         {} targets checked; variance vs Clarabel: largest relative gap {:+.2e} above, \
         {:+.2e} below (tolerance {VARIANCE_REL_TOL:.0e} + floor); Clarabel solves {} \
         ({} at max_return on the LP's optimal face), skipped {skipped} {:?}; {} failures; \
         {:.1} s",
        tally.problems,
        tally.corners,
        tally.most_corners,
        tally.targets,
        tally.worst_above,
        tally.worst_below,
        tally.clarabel_solves,
        tally.on_face,
        tally.skips,
        tally.failures.len(),
        started.elapsed().as_secs_f64(),
    );
    if !tally.failures.is_empty() {
        for f in &tally.failures {
            eprintln!("FAIL {}", f.lines().next().unwrap_or(""));
        }
        let shown: Vec<&str> = tally.failures.iter().take(25).map(String::as_str).collect();
        panic!(
            "{} failures; the first {}:\n{}",
            tally.failures.len(),
            shown.len(),
            shown.join("\n")
        );
    }
    assert!(
        skipped as f64 <= MAX_SKIP_SHARE * tally.clarabel_solves as f64,
        "Clarabel did not solve {skipped} of {} QPs: {:?}",
        tally.clarabel_solves,
        tally.skips
    );
}

// ------------------------------------------------------------------------------------------
// Infeasible constraints
// ------------------------------------------------------------------------------------------

/// A 4-asset problem with the given bounds and groups.
fn small_problem(lower: [f64; 4], upper: [f64; 4], groups: Vec<GroupLimit>) -> FrontierProblem {
    FrontierProblem {
        expected_returns: vec![0.05, 0.06, 0.07, 0.08],
        covariance: vec![
            0.04, 0.01, 0.00, 0.00, //
            0.01, 0.05, 0.01, 0.00, //
            0.00, 0.01, 0.06, 0.01, //
            0.00, 0.00, 0.01, 0.07,
        ],
        lower: lower.to_vec(),
        upper: upper.to_vec(),
        groups,
    }
}

fn group(members: &[usize], min: f64, max: f64) -> GroupLimit {
    GroupLimit {
        members: members.to_vec(),
        min,
        max,
    }
}

/// `solve()` gives an Err whose message contains `expected`.
fn assert_infeasible(what: &str, p: &FrontierProblem, expected: &str) {
    match p.solve() {
        Ok(_) => panic!("{what}: solve() returned Ok"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(expected),
                "{what}: error {message:?} does not name {expected:?}"
            );
        }
    }
}

#[test]
fn infeasible_constraints_are_reported() {
    assert_infeasible(
        "lower bounds summing to 1.2",
        &small_problem([0.3; 4], [1.0; 4], vec![]),
        "bounds",
    );
    assert_infeasible(
        "upper bounds summing to 0.8",
        &small_problem([0.0; 4], [0.2; 4], vec![]),
        "bounds",
    );
    assert_infeasible(
        "a group's min above the sum of its members' upper bounds",
        &small_problem(
            [0.0; 4],
            [0.2, 0.2, 1.0, 1.0],
            vec![group(&[2, 3], 0.0, 1.0), group(&[0, 1], 0.5, 1.0)],
        ),
        "groups[1]",
    );
    assert_infeasible(
        "a group's max below the sum of its members' lower bounds",
        &small_problem(
            [0.3, 0.3, 0.0, 0.0],
            [1.0; 4],
            vec![group(&[0, 1], 0.0, 0.5)],
        ),
        "groups[0]",
    );
    // Two groups that are each feasible but not together: an Err, whichever it names.
    assert_infeasible(
        "two groups needing 1.4 in total",
        &small_problem(
            [0.0; 4],
            [1.0; 4],
            vec![group(&[0, 1], 0.7, 1.0), group(&[2, 3], 0.7, 1.0)],
        ),
        "groups[",
    );
}

/// An asset whose lower bound is above its upper bound (sums still fine): no portfolio meets
/// it, so `solve()` should say so rather than return weights outside the bounds.
#[test]
fn lower_bound_above_upper_bound_is_reported() {
    assert_infeasible(
        "asset 1 with lower 0.5 and upper 0.4",
        &small_problem([0.0, 0.5, 0.0, 0.0], [1.0, 0.4, 1.0, 1.0], vec![]),
        "bounds",
    );
}
