//! The efficient frontier of docs/model.md §2: the exact solver ([`active_set`]) and what is read off
//! its corners — evenly spaced points, the minimum-variance and maximum-Sharpe portfolios, and
//! the portfolio at a target return or volatility.
//!
//! Between two corners the frontier's weights are affine in expected return, so every query is
//! exact: interpolate the two corners' weights, then compute the variance from Σ.

mod active_set;
pub mod request;
pub mod resample;

use serde::Serialize;
use thiserror::Error;

use active_set::{dot, quad, ActiveSet};
pub use request::{FrontierReport, FrontierRequest, FrontierRequestError, PortfolioReport};

/// A problem ready to solve; [`FrontierRequest::prepare`] builds it from a request and checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontierProblem {
    /// μ, one per asset.
    pub expected_returns: Vec<f64>,
    /// Σ, n × n row-major, symmetric positive semi-definite.
    pub covariance: Vec<f64>,
    /// Per-asset minimum weight (finite).
    pub lower: Vec<f64>,
    /// Per-asset maximum weight (finite, ≥ `lower`).
    pub upper: Vec<f64>,
    pub groups: Vec<GroupLimit>,
}

/// A set of assets whose summed weight must lie in [min, max].
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLimit {
    /// Asset indices, each once.
    pub members: Vec<usize>,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum FrontierError {
    /// No portfolio meets the constraints; `constraint` names the one that cannot be met
    /// (`bounds`, `groups[2]`).
    #[error("{constraint}: infeasible: {reason}")]
    Infeasible { constraint: String, reason: String },
    /// A target outside what the frontier reaches.
    #[error("{field}: {reason}")]
    Target { field: String, reason: String },
    /// The method could not finish (rounding on a pathological input).
    #[error("the frontier solver failed: {0}")]
    Numerical(String),
}

/// One portfolio on the frontier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Portfolio {
    pub expected_return: f64,
    #[serde(skip)]
    pub variance: f64,
    pub volatility: f64,
    /// One per asset, in request order.
    pub weights: Vec<f64>,
}

impl Portfolio {
    fn new(problem: &FrontierProblem, weights: Vec<f64>) -> Self {
        let variance = quad(&problem.covariance, &weights).max(0.0);
        Portfolio {
            expected_return: dot(&problem.expected_returns, &weights),
            variance,
            volatility: variance.sqrt(),
            weights,
        }
    }

    /// (return − r_f) / volatility; `None` where the volatility is zero.
    pub fn sharpe_ratio(&self, risk_free_rate: f64) -> Option<f64> {
        (self.volatility > 0.0).then(|| (self.expected_return - risk_free_rate) / self.volatility)
    }
}

/// The exact frontier: its corners, by increasing expected return.
#[derive(Debug, Clone)]
pub struct Frontier {
    problem: FrontierProblem,
    corners: Vec<Portfolio>,
}

impl FrontierProblem {
    /// The exact frontier, or the constraint that makes it empty.
    pub fn solve(&self) -> Result<Frontier, FrontierError> {
        if let Some(i) = (0..self.lower.len()).find(|&i| {
            self.lower[i]
                .partial_cmp(&self.upper[i])
                .is_none_or(|o| o.is_gt())
        }) {
            return Err(FrontierError::Infeasible {
                constraint: format!("bounds[{i}]"),
                reason: format!("min {} is above max {}", self.lower[i], self.upper[i]),
            });
        }
        if let Some(j) = self
            .groups
            .iter()
            .position(|g| g.min.partial_cmp(&g.max).is_none_or(|o| o.is_gt()))
        {
            return Err(FrontierError::Infeasible {
                constraint: format!("groups[{j}]"),
                reason: format!(
                    "min {} is above max {}",
                    self.groups[j].min, self.groups[j].max
                ),
            });
        }
        let traced = ActiveSet::feasible(self)?.trace()?;
        let mut corners: Vec<Portfolio> = Vec::with_capacity(traced.len());
        let scale = self
            .expected_returns
            .iter()
            .fold(0.0f64, |m, r| m.max(r.abs()))
            .max(1e-300);
        for corner in traced {
            let portfolio = Portfolio::new(self, corner.weights);
            // A later corner at the same return (a stretch where nothing moves, or a move at
            // equal variance) supersedes the earlier: keep the one of higher λ.
            if let Some(last) = corners.last() {
                if portfolio.expected_return - last.expected_return <= 1e-13 * scale {
                    corners.pop();
                }
            }
            corners.push(portfolio);
        }
        Ok(Frontier {
            problem: self.clone(),
            corners,
        })
    }
}

impl Frontier {
    /// The turning points: the frontier is the straight-line (in weights) path through them.
    pub fn corners(&self) -> &[Portfolio] {
        &self.corners
    }

    pub fn min_variance(&self) -> &Portfolio {
        &self.corners[0]
    }

    pub fn max_return_portfolio(&self) -> &Portfolio {
        self.corners.last().expect("a frontier has a corner")
    }

    pub fn min_return(&self) -> f64 {
        self.min_variance().expected_return
    }

    pub fn max_return(&self) -> f64 {
        self.max_return_portfolio().expected_return
    }

    /// The frontier portfolio of expected return `target`, `None` outside
    /// [`min_return`](Self::min_return), [`max_return`](Self::max_return).
    pub fn at_return(&self, target: f64) -> Option<Portfolio> {
        let (lo, hi) = (self.min_return(), self.max_return());
        if !(lo..=hi).contains(&target) {
            return None;
        }
        let k = self
            .corners
            .windows(2)
            .position(|pair| target <= pair[1].expected_return)
            .unwrap_or(0);
        Some(self.between(k, target))
    }

    /// Interpolate between corners k and k + 1 to the given return.
    fn between(&self, k: usize, target: f64) -> Portfolio {
        let Some(next) = self.corners.get(k + 1) else {
            return self.corners[k].clone();
        };
        let this = &self.corners[k];
        let span = next.expected_return - this.expected_return;
        let t = if span > 0.0 {
            ((target - this.expected_return) / span).clamp(0.0, 1.0)
        } else {
            1.0
        };
        self.mix(k, t)
    }

    /// (1 − t) · corner k + t · corner k + 1.
    fn mix(&self, k: usize, t: f64) -> Portfolio {
        let (a, b) = (&self.corners[k], &self.corners[k + 1]);
        if t <= 0.0 {
            return a.clone();
        }
        if t >= 1.0 {
            return b.clone();
        }
        let weights = a
            .weights
            .iter()
            .zip(&b.weights)
            .map(|(x, y)| x + t * (y - x))
            .collect();
        Portfolio::new(&self.problem, weights)
    }

    /// `count` portfolios evenly spaced in expected return, from the minimum-variance
    /// portfolio's to the highest attainable, both included (one point if `count` is 1).
    pub fn points(&self, count: usize) -> Vec<Portfolio> {
        let (lo, hi) = (self.min_return(), self.max_return());
        (0..count)
            .map(|i| {
                if i == 0 || count == 1 {
                    return self.min_variance().clone();
                }
                if i + 1 == count {
                    return self.max_return_portfolio().clone();
                }
                let target = lo + (hi - lo) * i as f64 / (count - 1) as f64;
                self.at_return(target.clamp(lo, hi)).expect("inside")
            })
            .collect()
    }

    /// The stretch between two corners as variance(t) = A t² + B t + C, t ∈ [0, 1].
    fn stretch(&self, k: usize) -> (f64, f64, f64) {
        let (a, b) = (&self.corners[k], &self.corners[k + 1]);
        let delta: Vec<f64> = b
            .weights
            .iter()
            .zip(&a.weights)
            .map(|(x, y)| x - y)
            .collect();
        let cov = &self.problem.covariance;
        let n = delta.len();
        let cross: f64 = (0..n)
            .map(|i| a.weights[i] * dot(&cov[i * n..(i + 1) * n], &delta))
            .sum();
        (quad(cov, &delta), 2.0 * cross, a.variance)
    }

    /// The portfolio of highest Sharpe ratio on the frontier (exact: each stretch's optimum is
    /// in closed form). `None` when no frontier portfolio earns more than `risk_free_rate`
    /// with positive volatility.
    pub fn max_sharpe(&self, risk_free_rate: f64) -> Option<Portfolio> {
        let mut best: Option<(f64, Portfolio)> = None;
        let mut offer = |p: Portfolio| {
            if let Some(s) = p.sharpe_ratio(risk_free_rate) {
                if p.expected_return > risk_free_rate && best.as_ref().is_none_or(|(b, _)| s > *b) {
                    best = Some((s, p));
                }
            }
        };
        for c in &self.corners {
            offer(c.clone());
        }
        for k in 0..self.corners.len().saturating_sub(1) {
            let (a2, b1, c0) = self.stretch(k);
            let excess = self.corners[k].expected_return - risk_free_rate;
            let rise = self.corners[k + 1].expected_return - self.corners[k].expected_return;
            // d/dt [(excess + t·rise) / sqrt(A t² + B t + C)] = 0 is linear in t.
            let denominator = rise * b1 / 2.0 - excess * a2;
            if denominator != 0.0 {
                let t = (excess * b1 / 2.0 - rise * c0) / denominator;
                if t > 0.0 && t < 1.0 {
                    offer(self.mix(k, t));
                }
            }
        }
        best.map(|(_, p)| p)
    }

    /// The frontier portfolio of volatility `target` (the efficient one: the higher return).
    pub fn at_volatility(&self, target: f64) -> Result<Portfolio, FrontierError> {
        let (lo, hi) = (
            self.min_variance().volatility,
            self.max_return_portfolio().volatility,
        );
        if !(target >= lo && target <= hi) {
            return Err(FrontierError::Target {
                field: "target_volatility".into(),
                reason: format!(
                    "must be between the frontier's lowest volatility {lo:.6} and its highest \
                     {hi:.6}, got {target}"
                ),
            });
        }
        let goal = target * target;
        let k = self
            .corners
            .windows(2)
            .position(|pair| goal <= pair[1].variance)
            .unwrap_or(0);
        if k + 1 >= self.corners.len() {
            return Ok(self.corners[k].clone());
        }
        // Variance rises along the efficient stretch: the one root of A t² + B t + C = goal
        // in [0, 1].
        let (a2, b1, c0) = self.stretch(k);
        let t = if a2 > 0.0 {
            let disc = (b1 * b1 - 4.0 * a2 * (c0 - goal)).max(0.0);
            (-b1 + disc.sqrt()) / (2.0 * a2)
        } else if b1 != 0.0 {
            (goal - c0) / b1
        } else {
            1.0
        };
        Ok(self.mix(k, t.clamp(0.0, 1.0)))
    }

    /// The frontier portfolio of expected return `target`, or an error naming the range.
    pub fn at_return_checked(&self, target: f64) -> Result<Portfolio, FrontierError> {
        self.at_return(target).ok_or_else(|| FrontierError::Target {
            field: "target_return".into(),
            reason: format!(
                "must be between the minimum-variance return {:.6} and the highest attainable \
                 {:.6}, got {target}",
                self.min_return(),
                self.max_return()
            ),
        })
    }

    pub fn problem(&self) -> &FrontierProblem {
        &self.problem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(mu: &[f64], cov: &[f64]) -> FrontierProblem {
        let n = mu.len();
        FrontierProblem {
            expected_returns: mu.to_vec(),
            covariance: cov.to_vec(),
            lower: vec![0.0; n],
            upper: vec![1.0; n],
            groups: vec![],
        }
    }

    #[test]
    fn one_asset_is_one_point() {
        let f = problem(&[0.05], &[0.04]).solve().unwrap();
        assert_eq!(f.corners().len(), 1);
        assert_eq!(f.corners()[0].weights, vec![1.0]);
        assert_eq!(f.points(3).len(), 3);
    }

    #[test]
    fn two_uncorrelated_assets_trace_from_min_variance_to_the_best_asset() {
        let f = problem(&[0.04, 0.10], &[0.01, 0.0, 0.0, 0.04])
            .solve()
            .unwrap();
        let first = &f.corners()[0];
        // Minimum variance of two uncorrelated assets: w ∝ 1/σ².
        assert!((first.weights[0] - 0.8).abs() < 1e-12, "{first:?}");
        let last = f.corners().last().unwrap();
        assert_eq!(last.weights, vec![0.0, 1.0]);
    }

    #[test]
    fn equal_returns_give_the_minimum_variance_point_only() {
        let f = problem(
            &[0.06, 0.06, 0.06],
            &[0.04, 0.0, 0.0, 0.0, 0.09, 0.0, 0.0, 0.0, 0.01],
        )
        .solve()
        .unwrap();
        assert_eq!(f.corners().len(), 1);
        assert!((f.min_return() - 0.06).abs() < 1e-15);
    }

    #[test]
    fn duplicated_assets_are_handled() {
        // Σ singular: assets 0 and 1 are the same asset.
        let cov = [0.04, 0.04, 0.0, 0.04, 0.04, 0.0, 0.0, 0.0, 0.01];
        let f = problem(&[0.08, 0.08, 0.03], &cov).solve().unwrap();
        let top = f.max_return_portfolio();
        assert!((top.expected_return - 0.08).abs() < 1e-15);
        assert!((top.weights[0] + top.weights[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn infeasible_bounds_name_the_bounds() {
        let mut p = problem(&[0.05, 0.06], &[0.04, 0.0, 0.0, 0.04]);
        p.lower = vec![0.6, 0.6];
        let e = p.solve().unwrap_err();
        assert!(e.to_string().starts_with("bounds: infeasible"), "{e}");
    }

    #[test]
    fn an_unreachable_group_is_named() {
        let mut p = problem(
            &[0.05, 0.06, 0.07],
            &[0.04, 0.0, 0.0, 0.0, 0.04, 0.0, 0.0, 0.0, 0.04],
        );
        p.upper = vec![0.3, 0.3, 1.0];
        p.groups = vec![
            GroupLimit {
                members: vec![2],
                min: 0.0,
                max: 0.5,
            },
            GroupLimit {
                members: vec![0, 1],
                min: 0.7,
                max: 1.0,
            },
        ];
        let e = p.solve().unwrap_err();
        assert!(e.to_string().starts_with("groups[1]: infeasible"), "{e}");
    }
}
