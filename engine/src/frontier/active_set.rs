//! The exact frontier: a parametric active-set method (the critical line algorithm generalised to
//! linear constraints) over the problem
//!
//! ```text
//! minimise ½ wᵀΣw − λ μᵀw   subject to   Σw = 1, l ≤ w ≤ u, gmin ≤ Σ_{i∈g} w_i ≤ gmax,
//! ```
//!
//! traced in λ from 0 (minimum variance) up to the λ beyond which nothing changes (maximum return).
//! On each stretch between two events the active constraints are fixed and the solution is
//! affine in λ, so it is affine in expected return too: the corners (turning points) are the
//! whole frontier.
//!
//! Why it does not fail where PyPortfolioOpt's CLA does:
//! - It starts from a feasible vertex (found by a phase-one LP that enforces one group at a
//!   time, so an infeasible set names the group that cannot be met), then minimises variance
//!   with a primal active-set method. It never needs the maximum-return LP to be unique, so
//!   equal or near-equal returns are not special.
//! - It is *inertia-controlling*: a constraint is only released when the reduced Hessian stays
//!   positive definite. If releasing one would open a direction of zero curvature (a singular
//!   covariance, duplicated assets, the LP of phase one), the method moves along that direction
//!   to the next constraint instead, so the KKT matrix it factors is never singular.
//! - Whether a stretch's weights move with λ at all is decided algebraically (are the free
//!   assets' returns explained by the active constraints?), not by comparing a rounded slope
//!   with zero, so the last stretch ends exactly, and no point is dropped or invented.

#![allow(clippy::needless_range_loop)] // index loops read as the linear algebra they are

use nalgebra::{DMatrix, DVector, LU};

use super::{FrontierError, FrontierProblem};

/// Where one weight stands in the working set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Free,
    Lower,
    Upper,
}

/// Where one group limit stands in the working set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Inactive,
    Min,
    Max,
}

/// A constraint that can enter or leave the working set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Constraint {
    /// Asset i at its lower (false) or upper (true) bound.
    Asset(usize, bool),
    /// Group j at its min (false) or max (true).
    Group(usize, bool),
}

/// One corner of the frontier as the trace found it.
pub(crate) struct TracedCorner {
    pub lambda: f64,
    pub weights: Vec<f64>,
}

/// The factored KKT matrix of one working set: `[H_FF E_Fᵀ; E_F 0]` over the free assets F and
/// the active constraint rows (the budget, then the active groups).
struct Kkt {
    free: Vec<usize>,
    /// Row ids: 0 is the budget, 1 + j is group j.
    rows: Vec<usize>,
    matrix: DMatrix<f64>,
    lu: LU<f64, nalgebra::Dyn, nalgebra::Dyn>,
}

impl Kkt {
    fn dim(&self) -> usize {
        self.free.len() + self.rows.len()
    }

    /// Solve with two steps of iterative refinement: the multipliers can be large (they scale
    /// with λ), and LU's backward error would otherwise leave residuals of eps · |γ| in the
    /// budget and group rows, which near-equal returns turn into visible variance errors.
    fn solve(&self, rhs: DVector<f64>) -> Result<DVector<f64>, FrontierError> {
        let singular = || FrontierError::Numerical("singular KKT system".into());
        let mut x = self.lu.solve(&rhs).ok_or_else(singular)?;
        for _ in 0..2 {
            let residual = &rhs - &self.matrix * &x;
            x += self.lu.solve(&residual).ok_or_else(singular)?;
        }
        if x.iter().all(|v| v.is_finite()) {
            Ok(x)
        } else {
            Err(singular())
        }
    }
}

/// The state of the method: the problem, the current point and working set.
pub(crate) struct ActiveSet<'a> {
    p: &'a FrontierProblem,
    n: usize,
    /// Multiplies Σ: 1 when minimising variance, 0 in the phase-one LP.
    hessian: f64,
    /// Constraint rows as 0/1 indicators: row 0 the budget, row 1 + j group j.
    rows: Vec<Vec<f64>>,
    w: Vec<f64>,
    bounds: Vec<Bound>,
    limits: Vec<Limit>,
    /// Groups the current phase enforces (all of them once phase one is over).
    enforced: Vec<bool>,
    /// Tolerances, in the units of what they compare.
    tol: Tolerances,
    steps_left: usize,
}

#[derive(Debug, Clone, Copy)]
struct Tolerances {
    /// A weight or a group sum: within this of a bound is on it.
    weight: f64,
    /// A multiplier of the variance problem (units of Σw).
    multiplier: f64,
    /// Curvature dᵀΣd below this (relative to ‖d‖² · mean diagonal) is zero.
    curvature: f64,
    /// Returns closer than this are equal.
    ret: f64,
}

impl<'a> ActiveSet<'a> {
    /// A feasible vertex of the constraints, or the constraint that cannot be met.
    pub(crate) fn feasible(p: &'a FrontierProblem) -> Result<Self, FrontierError> {
        let n = p.expected_returns.len();
        let mean_diag = (0..n).map(|i| p.covariance[i * n + i]).sum::<f64>() / n as f64;
        let mu_scale = p
            .expected_returns
            .iter()
            .fold(0.0f64, |m, &r| m.max(r.abs()))
            .max(1e-300);
        let mut rows = vec![vec![1.0; n]];
        for g in &p.groups {
            let mut row = vec![0.0; n];
            for &i in &g.members {
                row[i] = 1.0;
            }
            rows.push(row);
        }
        let mut set = ActiveSet {
            p,
            n,
            hessian: 0.0,
            rows,
            w: p.lower.clone(),
            bounds: vec![Bound::Lower; n],
            limits: vec![Limit::Inactive; p.groups.len()],
            enforced: vec![false; p.groups.len()],
            tol: Tolerances {
                weight: 1e-12,
                multiplier: 1e-13 * mean_diag.max(1e-300),
                curvature: 1e-12,
                ret: 1e-12 * mu_scale,
            },
            steps_left: 50 * (n + p.groups.len()) + 200,
        };
        set.greedy_vertex()?;
        for j in 0..p.groups.len() {
            set.enforce_group(j)?;
        }
        Ok(set)
    }

    /// Budget and bounds only: fill assets from their minimums in order until the weights sum
    /// to 1. The last asset filled is the one free weight (n − 1 bounds + the budget: a vertex).
    fn greedy_vertex(&mut self) -> Result<(), FrontierError> {
        let p = self.p;
        let floor: f64 = p.lower.iter().sum();
        let ceiling: f64 = p.upper.iter().sum();
        if floor > 1.0 + self.tol.weight {
            return Err(FrontierError::Infeasible {
                constraint: "bounds".into(),
                reason: format!("the minimum weights sum to {floor}, more than 1"),
            });
        }
        if ceiling < 1.0 - self.tol.weight {
            return Err(FrontierError::Infeasible {
                constraint: "bounds".into(),
                reason: format!("the maximum weights sum to {ceiling}, less than 1"),
            });
        }
        let movable: Vec<usize> = (0..self.n).filter(|&i| p.upper[i] > p.lower[i]).collect();
        let Some(&first) = movable.first() else {
            // Every weight is pinned: the one feasible portfolio (the budget holds, as checked).
            return Ok(());
        };
        let mut left = 1.0 - floor;
        let mut basic = first;
        for &i in &movable {
            if left <= 0.0 {
                break;
            }
            let room = p.upper[i] - p.lower[i];
            if room <= left {
                // Filled: exactly at its maximum (not lower + room, which may round).
                self.w[i] = p.upper[i];
                self.bounds[i] = Bound::Upper;
                left -= room;
            } else {
                self.w[i] = p.lower[i] + left;
                left = 0.0;
            }
            basic = i;
        }
        self.bounds[basic] = Bound::Free;
        Ok(())
    }

    /// Phase one for group j: if its sum is outside [min, max], minimise the distance (an LP:
    /// no curvature) over the constraints already enforced, stopping as soon as the limit is met.
    fn enforce_group(&mut self, j: usize) -> Result<(), FrontierError> {
        let g = &self.p.groups[j];
        let sum = dot(&self.rows[1 + j], &self.w);
        let (side, sign) = if sum < g.min - self.tol.weight {
            (false, -1.0)
        } else if sum > g.max + self.tol.weight {
            (true, 1.0)
        } else {
            self.enforced[j] = true;
            return Ok(());
        };
        // Minimise sign · (group sum): q = sign · row.
        let q: Vec<f64> = self.rows[1 + j].iter().map(|&r| sign * r).collect();
        self.hessian = 0.0;
        let reached = self.minimise(&q, Some((j, side)))?;
        let best = dot(&self.rows[1 + j], &self.w);
        let met = if side {
            best <= g.max + self.tol.weight
        } else {
            best >= g.min - self.tol.weight
        };
        if !reached && !met {
            let enforced: Vec<String> = (0..j).map(|k| format!("groups[{k}]")).collect();
            let with = if enforced.is_empty() {
                "the bounds and the budget".to_string()
            } else {
                format!("the bounds, the budget and {}", enforced.join(", "))
            };
            return Err(FrontierError::Infeasible {
                constraint: format!("groups[{j}]"),
                reason: format!(
                    "its {} of {} cannot be met together with {with}: the closest sum is {best}",
                    if side { "max" } else { "min" },
                    if side { g.max } else { g.min },
                ),
            });
        }
        self.enforced[j] = true;
        Ok(())
    }

    /// Minimise ½ hessian · wᵀΣw + qᵀw from the current feasible point by the primal active-set
    /// method. With `target = Some((j, side))` (phase one), group j is not yet enforced and the
    /// run stops with `true` as soon as its limit on `side` is reached; `false` means the
    /// optimum was reached without meeting it.
    fn minimise(
        &mut self,
        q: &[f64],
        target: Option<(usize, bool)>,
    ) -> Result<bool, FrontierError> {
        loop {
            self.tick()?;
            let kkt = self.factor()?;
            let x = kkt.solve(self.rhs_fixed(&kkt, q))?;
            let k = kkt.free.len();
            let step: Vec<f64> = (0..k).map(|a| x[a] - self.w[kkt.free[a]]).collect();
            if step.iter().any(|s| s.abs() > self.tol.weight) {
                let mut d = vec![0.0; self.n];
                for (a, &i) in kkt.free.iter().enumerate() {
                    d[i] = step[a];
                }
                let (alpha, blocking) = self.ratio_test(&d, None, target);
                let alpha = alpha.min(1.0);
                self.advance(&d, alpha);
                if alpha < 1.0 {
                    if let Some(c) = blocking {
                        self.activate(c);
                        if target.is_some_and(|(j, side)| c == Constraint::Group(j, side)) {
                            return Ok(true);
                        }
                    }
                }
                continue;
            }
            for (a, &i) in kkt.free.iter().enumerate() {
                self.w[i] = x[a];
            }
            let gamma: Vec<f64> = (0..kkt.rows.len()).map(|r| x[k + r]).collect();
            let tol = if self.hessian == 0.0 {
                1e-12
            } else {
                self.tol.multiplier
            };
            let Some(drop) = self.most_violated(&kkt, q, &gamma, tol) else {
                return Ok(false);
            };
            if let Some(reached) = self.release(&kkt, drop, target)? {
                if reached {
                    return Ok(true);
                }
            }
        }
    }

    /// The parametric trace from λ = 0: returns the corners in order of increasing λ.
    pub(crate) fn trace(mut self) -> Result<Vec<TracedCorner>, FrontierError> {
        self.hessian = 1.0;
        let zero = vec![0.0; self.n];
        self.minimise(&zero, None)?;
        let mu = &self.p.expected_returns;
        let mut lambda = 0.0f64;
        let mut corners: Vec<TracedCorner> = Vec::new();
        let mut frozen: Vec<Constraint> = Vec::new();
        loop {
            self.tick()?;
            let kkt = self.factor()?;
            let seg = self.segment(&kkt)?;
            for (a, &i) in kkt.free.iter().enumerate() {
                self.w[i] = seg.a[i] + lambda * seg.b[a];
            }
            // Free weights are left as solved, even a rounding past a bound (≈ 1e-13):
            // clamping one would break the budget by as much, which near-equal returns
            // magnify into the variance. A weight genuinely moving past its bound is a hit.
            push_corner(&mut corners, lambda, &self.w);
            let Some((next, event)) = self.next_event(&kkt, &seg, lambda, &frozen) else {
                if seg.b.iter().any(|&b| b != 0.0) {
                    return Err(FrontierError::Numerical(
                        "the weights still move with λ past the last event".into(),
                    ));
                }
                break;
            };
            lambda = next.max(lambda);

            for (a, &i) in kkt.free.iter().enumerate() {
                self.w[i] = seg.a[i] + lambda * seg.b[a];
            }
            match event {
                Event::Hit(c) => {
                    frozen.clear();
                    self.activate(c);
                }
                Event::Release(c) if self.is_flat_release(&kkt, c)? => {
                    // Releasing c opens a direction along which neither variance nor return
                    // changes (c's asset duplicates a free one): its multiplier stays at zero
                    // up to rounding, and releasing it would only swap twins back and forth.
                    frozen.push(c);
                }
                Event::Release(c) => {
                    frozen.clear();
                    // q(λ) = −λμ: the objective at the event.
                    let q: Vec<f64> = mu.iter().map(|&m| -lambda * m).collect();
                    // A zero-curvature move (only possible where the covariance is singular)
                    // may leave the point off its optimum at this λ: re-optimise. A plain
                    // release keeps the point, and the next stretch starts from it.
                    if self.release(&kkt, c, None)?.is_some() && self.needs_polish(&q)? {
                        self.minimise(&q, None)?;
                    }
                }
            }
        }
        Ok(corners)
    }

    fn needs_polish(&self, q: &[f64]) -> Result<bool, FrontierError> {
        let kkt = self.factor()?;
        let x = kkt.solve(self.rhs_fixed(&kkt, q))?;
        Ok(kkt
            .free
            .iter()
            .enumerate()
            .any(|(a, &i)| (x[a] - self.w[i]).abs() > 1e-10))
    }

    fn tick(&mut self) -> Result<(), FrontierError> {
        if self.steps_left == 0 {
            return Err(FrontierError::Numerical(
                "the active-set method did not finish within its step limit (a degenerate cycle)"
                    .into(),
            ));
        }
        self.steps_left -= 1;
        Ok(())
    }

    fn factor(&self) -> Result<Kkt, FrontierError> {
        let free: Vec<usize> = (0..self.n)
            .filter(|&i| self.bounds[i] == Bound::Free)
            .collect();
        let mut rows = vec![0usize];
        rows.extend(
            (0..self.limits.len())
                .filter(|&j| self.limits[j] != Limit::Inactive)
                .map(|j| 1 + j),
        );
        let (k, m) = (free.len(), rows.len());
        let n = self.n;
        let cov = &self.p.covariance;
        let mut matrix = DMatrix::<f64>::zeros(k + m, k + m);
        for (a, &i) in free.iter().enumerate() {
            for (b, &j) in free.iter().enumerate() {
                matrix[(a, b)] = self.hessian * cov[i * n + j];
            }
            for (r, &row) in rows.iter().enumerate() {
                let e = self.rows[row][i];
                matrix[(a, k + r)] = e;
                matrix[(k + r, a)] = e;
            }
        }
        Ok(Kkt {
            free,
            rows,
            lu: matrix.clone().lu(),
            matrix,
        })
    }

    /// The right-hand side of the KKT system for the fixed objective q:
    /// `[−q_F − H_FB w_B ; e − E_B w_B]`.
    fn rhs_fixed(&self, kkt: &Kkt, q: &[f64]) -> DVector<f64> {
        let k = kkt.free.len();
        let mut rhs = DVector::zeros(kkt.dim());
        let bound_w = self.bound_part();
        for (a, &i) in kkt.free.iter().enumerate() {
            rhs[a] = -q[i] - self.hessian * self.cov_row_dot(i, &bound_w);
        }
        for (r, &row) in kkt.rows.iter().enumerate() {
            rhs[k + r] = self.row_rhs(row) - dot(&self.rows[row], &bound_w);
        }
        rhs
    }

    /// The current weights with the free ones zeroed: the part fixed at bounds.
    fn bound_part(&self) -> Vec<f64> {
        (0..self.n)
            .map(|i| {
                if self.bounds[i] == Bound::Free {
                    0.0
                } else {
                    self.w[i]
                }
            })
            .collect()
    }

    /// The value an active row is held at.
    fn row_rhs(&self, row: usize) -> f64 {
        if row == 0 {
            return 1.0;
        }
        let j = row - 1;
        match self.limits[j] {
            Limit::Max => self.p.groups[j].max,
            _ => self.p.groups[j].min,
        }
    }

    fn cov_row_dot(&self, i: usize, x: &[f64]) -> f64 {
        dot(&self.p.covariance[i * self.n..(i + 1) * self.n], x)
    }

    /// The constraint whose multiplier has the wrong sign by most, if any is beyond `tol`.
    /// Gradient convention: `Hw + q + Eᵀγ = ζ`, with ζ ≥ 0 at a lower bound, ≤ 0 at an upper;
    /// γ ≤ 0 for a group at its min, ≥ 0 at its max.
    fn most_violated(&self, kkt: &Kkt, q: &[f64], gamma: &[f64], tol: f64) -> Option<Constraint> {
        let mut worst: Option<(f64, Constraint)> = None;
        let mut consider = |violation: f64, c: Constraint| {
            if violation > tol && worst.is_none_or(|(v, _)| violation > v) {
                worst = Some((violation, c));
            }
        };
        for i in 0..self.n {
            let upper = match self.bounds[i] {
                Bound::Free => continue,
                Bound::Lower => false,
                Bound::Upper => true,
            };
            if self.p.lower[i] == self.p.upper[i] {
                continue;
            }
            let mut zeta = self.hessian * self.cov_row_dot(i, &self.w) + q[i];
            for (r, &row) in kkt.rows.iter().enumerate() {
                zeta += gamma[r] * self.rows[row][i];
            }
            consider(
                if upper { zeta } else { -zeta },
                Constraint::Asset(i, upper),
            );
        }
        for (r, &row) in kkt.rows.iter().enumerate().skip(1) {
            let j = row - 1;
            let at_max = self.limits[j] == Limit::Max;
            consider(
                if at_max { -gamma[r] } else { gamma[r] },
                Constraint::Group(j, at_max),
            );
        }
        worst.map(|(_, c)| c)
    }

    /// Take `c` out of the working set. If that leaves positive curvature, that is all;
    /// otherwise move along the zero-curvature direction to the next constraint and swap it in.
    /// Returns `Some(true)` when phase one's target limit was the one reached.
    fn release(
        &mut self,
        kkt: &Kkt,
        c: Constraint,
        target: Option<(usize, bool)>,
    ) -> Result<Option<bool>, FrontierError> {
        let d = self.release_direction(kkt, c)?;
        let norm2: f64 = d.iter().map(|x| x * x).sum();
        let curvature = self.hessian * quad(&self.p.covariance, &d);
        let scale = self.tol.curvature * norm2 * self.mean_diag();
        self.deactivate(c);
        if curvature > scale && self.hessian != 0.0 {
            return Ok(None);
        }
        let (alpha, blocking) = self.ratio_test(&d, Some(c), target);
        let Some(blocking) = blocking else {
            return Err(FrontierError::Numerical(
                "a zero-curvature direction met no constraint".into(),
            ));
        };
        self.advance(&d, alpha);
        self.activate(blocking);
        Ok(Some(target.is_some_and(|(j, side)| {
            blocking == Constraint::Group(j, side)
        })))
    }

    /// Whether releasing `c` opens a direction of zero curvature that does not change the
    /// expected return either.
    fn is_flat_release(&self, kkt: &Kkt, c: Constraint) -> Result<bool, FrontierError> {
        let d = self.release_direction(kkt, c)?;
        let norm2: f64 = d.iter().map(|x| x * x).sum();
        let largest = d.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let curvature = quad(&self.p.covariance, &d);
        let rise = dot(&self.p.expected_returns, &d);

        Ok(curvature <= self.tol.curvature * norm2 * self.mean_diag()
            && rise.abs() <= 1e3 * self.tol.ret * largest)
    }

    /// The direction of least curvature that moves off constraint `c` (feasibly) while keeping
    /// every other active constraint: solved with the current (pre-release) KKT factors.
    fn release_direction(&self, kkt: &Kkt, c: Constraint) -> Result<Vec<f64>, FrontierError> {
        let k = kkt.free.len();
        let mut rhs = DVector::zeros(kkt.dim());
        let mut d = vec![0.0; self.n];
        match c {
            Constraint::Asset(j, upper) => {
                let sigma = if upper { -1.0 } else { 1.0 };
                for (a, &i) in kkt.free.iter().enumerate() {
                    rhs[a] = -sigma * self.hessian * self.p.covariance[i * self.n + j];
                }
                for (r, &row) in kkt.rows.iter().enumerate() {
                    rhs[k + r] = -sigma * self.rows[row][j];
                }
                d[j] = sigma;
            }
            Constraint::Group(j, at_max) => {
                let r = kkt
                    .rows
                    .iter()
                    .position(|&row| row == 1 + j)
                    .expect("active");
                rhs[k + r] = if at_max { -1.0 } else { 1.0 };
            }
        }
        let x = kkt.solve(rhs)?;
        for (a, &i) in kkt.free.iter().enumerate() {
            d[i] = x[a];
        }
        Ok(d)
    }

    fn mean_diag(&self) -> f64 {
        (0..self.n)
            .map(|i| self.p.covariance[i * self.n + i])
            .sum::<f64>()
            / self.n as f64
    }

    /// The largest step α ≥ 0 along d that keeps every enforced constraint, and the constraint
    /// that stops it. `released` is the constraint just released (free to be hit on its other
    /// side); `target` is phase one's group, blocking when its limit is reached from outside.
    fn ratio_test(
        &self,
        d: &[f64],
        released: Option<Constraint>,
        target: Option<(usize, bool)>,
    ) -> (f64, Option<Constraint>) {
        let p = self.p;
        let mut best = (f64::INFINITY, None);
        let mut consider = |alpha: f64, c: Constraint| {
            let alpha = alpha.max(0.0);
            if alpha < best.0 {
                best = (alpha, Some(c));
            }
        };
        for i in 0..self.n {
            let moving = self.bounds[i] == Bound::Free
                || matches!(released, Some(Constraint::Asset(j, _)) if j == i);
            if !moving || d[i].abs() <= 1e-300 {
                continue;
            }
            if d[i] > 0.0 {
                consider((p.upper[i] - self.w[i]) / d[i], Constraint::Asset(i, true));
            } else {
                consider((p.lower[i] - self.w[i]) / d[i], Constraint::Asset(i, false));
            }
        }
        for (j, g) in p.groups.iter().enumerate() {
            let released_here = matches!(released, Some(Constraint::Group(k, _)) if k == j);
            if self.limits[j] != Limit::Inactive && !released_here {
                continue;
            }
            let slope = dot(&self.rows[1 + j], d);
            if slope.abs() <= 1e-14 {
                continue;
            }
            let sum = dot(&self.rows[1 + j], &self.w);
            if let Some((t, side)) = target {
                if t == j {
                    // Approached from outside: the limit that is violated.
                    if (slope > 0.0) != side {
                        let limit = if side { g.max } else { g.min };
                        consider((limit - sum) / slope, Constraint::Group(j, side));
                    }
                    continue;
                }
            }
            if !self.enforced[j] {
                continue;
            }
            if slope > 0.0 {
                consider((g.max - sum) / slope, Constraint::Group(j, true));
            } else {
                consider((g.min - sum) / slope, Constraint::Group(j, false));
            }
        }
        best
    }

    fn advance(&mut self, d: &[f64], alpha: f64) {
        for (w, &di) in self.w.iter_mut().zip(d) {
            if di != 0.0 {
                *w += alpha * di;
            }
        }
    }

    fn activate(&mut self, c: Constraint) {
        match c {
            Constraint::Asset(i, upper) => {
                self.bounds[i] = if upper { Bound::Upper } else { Bound::Lower };
                self.w[i] = if upper {
                    self.p.upper[i]
                } else {
                    self.p.lower[i]
                };
            }
            Constraint::Group(j, at_max) => {
                self.limits[j] = if at_max { Limit::Max } else { Limit::Min };
            }
        }
    }

    fn deactivate(&mut self, c: Constraint) {
        match c {
            Constraint::Asset(i, _) => self.bounds[i] = Bound::Free,
            Constraint::Group(j, _) => self.limits[j] = Limit::Inactive,
        }
    }

    /// The current stretch: free weights `a + λ b`, multipliers `α + λ β`.
    fn segment(&self, kkt: &Kkt) -> Result<Segment, FrontierError> {
        let k = kkt.free.len();
        let m = kkt.rows.len();
        let mu = &self.p.expected_returns;
        let zero = vec![0.0; self.n];
        let fixed = kkt.solve(self.rhs_fixed(kkt, &zero))?;
        let mut a = self.bound_part();
        for (idx, &i) in kkt.free.iter().enumerate() {
            a[i] = fixed[idx];
        }
        let gamma_a: Vec<f64> = (0..m).map(|r| fixed[k + r]).collect();
        // Does λ move anything? Only if μ_F is not explained by the active rows (μ_F ∉ range
        // E_Fᵀ). Decided by least squares, not by a rounded slope.
        let (b, gamma_b) = match self.explained_returns(kkt) {
            Some(c) => (vec![0.0; k], c),
            None => {
                let mut rhs = DVector::zeros(k + m);
                for (idx, &i) in kkt.free.iter().enumerate() {
                    rhs[idx] = mu[i];
                }
                let x = kkt.solve(rhs)?;
                (
                    (0..k).map(|a| x[a]).collect(),
                    (0..m).map(|r| x[k + r]).collect(),
                )
            }
        };
        Ok(Segment {
            a,
            b,
            gamma_a,
            gamma_b,
        })
    }

    /// If the free assets' returns are a combination of the active rows (μ_F = E_Fᵀ c within
    /// rounding), the c: the weights do not move with λ on this stretch.
    fn explained_returns(&self, kkt: &Kkt) -> Option<Vec<f64>> {
        let m = kkt.rows.len();
        let mu = &self.p.expected_returns;
        let e = DMatrix::from_fn(m, kkt.free.len(), |r, a| {
            self.rows[kkt.rows[r]][kkt.free[a]]
        });
        let mu_f = DVector::from_iterator(kkt.free.len(), kkt.free.iter().map(|&i| mu[i]));
        let normal = &e * e.transpose();
        let c = normal.lu().solve(&(&e * &mu_f))?;
        let residual = &mu_f - e.transpose() * &c;
        (residual.amax() <= self.tol.ret).then(|| c.iter().copied().collect())
    }

    /// The first event at λ' ≥ λ on this stretch, if any.
    fn next_event(
        &self,
        kkt: &Kkt,
        seg: &Segment,
        lambda: f64,
        frozen: &[Constraint],
    ) -> Option<(f64, Event)> {
        let p = self.p;
        let mu = &p.expected_returns;
        let mut best: Option<(f64, Event)> = None;
        let mut consider = |at: f64, e: Event| {
            if matches!(e, Event::Release(c) if frozen.contains(&c)) {
                return;
            }
            if at.is_finite() && best.as_ref().is_none_or(|(b, _)| at < *b) {
                best = Some((at, e));
            }
        };
        // Full-length slope of the weights.
        let mut wb = vec![0.0; self.n];
        for (a, &i) in kkt.free.iter().enumerate() {
            wb[i] = seg.b[a];
        }
        let bmax = seg.b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let btol = 1e-13 * bmax;
        for (a, &i) in kkt.free.iter().enumerate() {
            let b = seg.b[a];
            if b > btol {
                consider(
                    (p.upper[i] - seg.a[i]) / b,
                    Event::Hit(Constraint::Asset(i, true)),
                );
            } else if b < -btol {
                consider(
                    (p.lower[i] - seg.a[i]) / b,
                    Event::Hit(Constraint::Asset(i, false)),
                );
            }
        }
        for (j, g) in p.groups.iter().enumerate() {
            if self.limits[j] != Limit::Inactive {
                continue;
            }
            let sa = dot(&self.rows[1 + j], &seg.a);
            let sb = dot(&self.rows[1 + j], &wb);
            if sb > btol {
                consider((g.max - sa) / sb, Event::Hit(Constraint::Group(j, true)));
            } else if sb < -btol {
                consider((g.min - sa) / sb, Event::Hit(Constraint::Group(j, false)));
            }
        }
        // Multipliers ζ_i(λ) = (Σw(λ))_i − λμ_i + (Eᵀγ(λ))_i of the assets at a bound.
        let beta_tol = 0.1 * self.tol.ret;
        for i in 0..self.n {
            let upper = match self.bounds[i] {
                Bound::Free => continue,
                Bound::Lower => false,
                Bound::Upper => true,
            };
            if p.lower[i] == p.upper[i] {
                continue;
            }
            let mut alpha = self.cov_row_dot(i, &seg.a);
            let mut beta = self.cov_row_dot(i, &wb) - mu[i];
            for (r, &row) in kkt.rows.iter().enumerate() {
                alpha += seg.gamma_a[r] * self.rows[row][i];
                beta += seg.gamma_b[r] * self.rows[row][i];
            }
            // ζ must stay ≥ 0 at a lower bound, ≤ 0 at an upper.
            let (alpha, beta) = if upper {
                (-alpha, -beta)
            } else {
                (alpha, beta)
            };
            if beta < -beta_tol {
                consider(
                    (-alpha / beta).max(lambda),
                    Event::Release(Constraint::Asset(i, upper)),
                );
            }
        }
        for (r, &row) in kkt.rows.iter().enumerate().skip(1) {
            let j = row - 1;
            let at_max = self.limits[j] == Limit::Max;
            // γ must stay ≤ 0 at a min, ≥ 0 at a max.
            let (alpha, beta) = if at_max {
                (seg.gamma_a[r], seg.gamma_b[r])
            } else {
                (-seg.gamma_a[r], -seg.gamma_b[r])
            };
            if beta < -beta_tol {
                consider(
                    (-alpha / beta).max(lambda),
                    Event::Release(Constraint::Group(j, at_max)),
                );
            }
        }
        best.map(|(at, e)| (at.max(lambda), e))
    }
}

/// One stretch of the trace.
struct Segment {
    /// Full-length weights at λ = 0 of this stretch's affine solution.
    a: Vec<f64>,
    /// Slope of the free weights, in the order of `Kkt::free`.
    b: Vec<f64>,
    gamma_a: Vec<f64>,
    gamma_b: Vec<f64>,
}

enum Event {
    Hit(Constraint),
    Release(Constraint),
}

/// Record a corner; one found at the same λ as the last replaces it (simultaneous events, or
/// a zero-curvature move at λ = 0 that raises the return at the same, minimum, variance).
fn push_corner(corners: &mut Vec<TracedCorner>, lambda: f64, w: &[f64]) {
    if let Some(last) = corners.last_mut() {
        if (lambda - last.lambda).abs() <= 1e-12 * lambda.abs().max(1e-300) || lambda == last.lambda
        {
            last.weights.copy_from_slice(w);
            return;
        }
    }
    corners.push(TracedCorner {
        lambda,
        weights: w.to_vec(),
    });
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// xᵀΣx for a row-major Σ.
pub(crate) fn quad(cov: &[f64], x: &[f64]) -> f64 {
    let n = x.len();
    let mut total = 0.0;
    for i in 0..n {
        if x[i] != 0.0 {
            total += x[i] * dot(&cov[i * n..(i + 1) * n], x);
        }
    }
    total
}
