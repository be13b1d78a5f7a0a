//! The frontier request and response of docs/model.md §2, and the path between them:
//! request → [`FrontierRequest::prepare`] (every bound checked, names resolved) →
//! [`FrontierProblem::solve`] → [`FrontierReport`].

use serde::{Deserialize, Serialize};

use super::resample::{self, ResampleOptions, ResampledFrontier};
use super::{Frontier, FrontierError, FrontierProblem, GroupLimit, Portfolio};
use crate::backend::Watch;
use crate::portfolio::{AssetClass, Market, MarketInputs, Repair};
use crate::result::ENGINE_VERSION;
use crate::validate::{ValidationError, MAX_RATE};

/// Points reported when a request gives no `points`.
pub const DEFAULT_POINTS: u32 = 50;
/// Most frontier points one request may ask for.
pub const MAX_POINTS: u32 = 10_000;
/// Largest |weight| a bound may allow (10× leverage).
pub const MAX_WEIGHT: f64 = 10.0;

/// `{"assets", "correlations" | "covariance", "bounds", "groups", "points", "risk_free_rate"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrontierRequest {
    pub assets: Vec<AssetClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlations: Option<Vec<Vec<f64>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariance: Option<Vec<Vec<f64>>>,
    /// Replace a matrix that is not PSD by the nearest valid one instead of refusing it.
    #[serde(default)]
    pub repair_psd: bool,
    /// One `{min, max}` per asset (default 0 ≤ w ≤ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounds: Option<Vec<WeightBounds>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSpec>,
    /// K evenly spaced points, 1 … 10,000.
    #[serde(default = "default_points")]
    pub points: u32,
    #[serde(default)]
    pub risk_free_rate: f64,
    /// Also report the frontier portfolio of this expected return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_return: Option<f64>,
    /// Also report the frontier portfolio of this volatility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_volatility: Option<f64>,
    /// Also compute Michaud's resampled frontier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resample: Option<ResampleOptions>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightBounds {
    #[serde(default)]
    pub min: f64,
    #[serde(default = "one")]
    pub max: f64,
}

/// `{"name"?, "assets": [names], "min", "max"}`: the summed weight of these assets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub assets: Vec<String>,
    #[serde(default)]
    pub min: f64,
    #[serde(default = "one")]
    pub max: f64,
}

fn one() -> f64 {
    1.0
}
fn default_points() -> u32 {
    DEFAULT_POINTS
}

/// A portfolio as a response shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioReport {
    pub expected_return: f64,
    pub volatility: f64,
    /// (return − risk-free rate) / volatility; null at zero volatility.
    pub sharpe_ratio: Option<f64>,
    /// One per asset, in request order.
    pub weights: Vec<f64>,
}

impl PortfolioReport {
    pub fn new(p: &Portfolio, risk_free_rate: f64) -> Self {
        PortfolioReport {
            expected_return: p.expected_return,
            volatility: p.volatility,
            sharpe_ratio: p.sharpe_ratio(risk_free_rate),
            weights: p.weights.clone(),
        }
    }
}

/// The response: `corners`, `points`, `min_variance`, `max_sharpe` (+ the targets asked for).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontierReport {
    pub assets: Vec<String>,
    pub risk_free_rate: f64,
    pub corners: Vec<PortfolioReport>,
    pub points: Vec<PortfolioReport>,
    pub min_variance: PortfolioReport,
    /// Null when no frontier portfolio earns more than the risk-free rate.
    pub max_sharpe: Option<PortfolioReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_return: Option<PortfolioReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_volatility: Option<PortfolioReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resampled: Option<ResampledFrontier>,
    pub engine_version: String,
}

/// A checked frontier request: the market and the problem the solver takes.
#[derive(Debug, Clone)]
pub struct PreparedFrontier {
    pub market: Market,
    pub problem: FrontierProblem,
    pub points: usize,
    pub risk_free_rate: f64,
}

/// Either the request was invalid or the problem has no solution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrontierRequestError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Solver(#[from] FrontierError),
    /// The caller's watch was cancelled (deadline passed, or the caller went away).
    #[error("the frontier was cancelled")]
    Cancelled,
}

impl FrontierRequest {
    /// Check every bound; `prefix` is where the request sits in an enclosing one (`frontier.`).
    pub fn prepare(&self, prefix: &str) -> Result<PreparedFrontier, ValidationError> {
        let field = |name: &str| format!("{prefix}{name}");
        let market = MarketInputs {
            assets: &self.assets,
            correlations: self.correlations.as_deref(),
            covariance: self.covariance.as_deref(),
            repair_psd: self.repair_psd,
            prefix,
        }
        .prepare()?;
        let n = market.len();
        let (lower, upper) = self.weight_bounds(n, prefix)?;
        let groups = self.group_limits(&market, prefix)?;
        if !(1..=MAX_POINTS).contains(&self.points) {
            return Err(ValidationError::new(
                field("points"),
                format!("must be between 1 and {MAX_POINTS}, got {}", self.points),
            ));
        }
        if !self.risk_free_rate.is_finite() || self.risk_free_rate.abs() > MAX_RATE {
            return Err(ValidationError::new(
                field("risk_free_rate"),
                format!(
                    "must be between -{MAX_RATE} and {MAX_RATE}, got {}",
                    self.risk_free_rate
                ),
            ));
        }
        for (name, value) in [
            ("target_return", self.target_return),
            ("target_volatility", self.target_volatility),
        ] {
            if value.is_some_and(|v| !v.is_finite() || v.abs() > MAX_RATE) {
                return Err(ValidationError::new(
                    field(name),
                    format!("must be a finite number within ±{MAX_RATE}"),
                ));
            }
        }
        if let Some(options) = &self.resample {
            options.check(n, &field("resample"))?;
        }
        let problem = FrontierProblem {
            expected_returns: market.expected_returns.clone(),
            covariance: market.covariance.clone(),
            lower,
            upper,
            groups,
        };
        Ok(PreparedFrontier {
            market,
            problem,
            points: self.points as usize,
            risk_free_rate: self.risk_free_rate,
        })
    }

    fn weight_bounds(
        &self,
        n: usize,
        prefix: &str,
    ) -> Result<(Vec<f64>, Vec<f64>), ValidationError> {
        let Some(bounds) = &self.bounds else {
            return Ok((vec![0.0; n], vec![1.0; n]));
        };
        if bounds.len() != n {
            return Err(ValidationError::new(
                format!("{prefix}bounds"),
                format!(
                    "must have {n} entries (one per asset), got {}",
                    bounds.len()
                ),
            ));
        }
        for (i, b) in bounds.iter().enumerate() {
            for (name, v) in [("min", b.min), ("max", b.max)] {
                if !v.is_finite() || v.abs() > MAX_WEIGHT {
                    return Err(ValidationError::new(
                        format!("{prefix}bounds[{i}].{name}"),
                        format!("must be between -{MAX_WEIGHT} and {MAX_WEIGHT}, got {v}"),
                    ));
                }
            }
            if b.min > b.max {
                return Err(ValidationError::new(
                    format!("{prefix}bounds[{i}]"),
                    format!("min {} is above max {}", b.min, b.max),
                ));
            }
        }
        if bounds.iter().all(|b| b.min == b.max) {
            return Err(ValidationError::new(
                format!("{prefix}bounds"),
                "every weight is pinned (min = max): the bounds are one portfolio, not a \
                 frontier to trace; free at least one weight, or ask /v1/risk about the allocation",
            ));
        }
        Ok((
            bounds.iter().map(|b| b.min).collect(),
            bounds.iter().map(|b| b.max).collect(),
        ))
    }

    fn group_limits(
        &self,
        market: &Market,
        prefix: &str,
    ) -> Result<Vec<GroupLimit>, ValidationError> {
        let mut limits = Vec::with_capacity(self.groups.len());
        if self.groups.len() > 4 * market.len() + 16 {
            return Err(ValidationError::new(
                format!("{prefix}groups"),
                format!(
                    "at most {} groups, got {}",
                    4 * market.len() + 16,
                    self.groups.len()
                ),
            ));
        }
        for (j, g) in self.groups.iter().enumerate() {
            let here = format!("{prefix}groups[{j}]");
            if g.assets.is_empty() {
                return Err(ValidationError::new(
                    format!("{here}.assets"),
                    "must name at least one asset",
                ));
            }
            let mut members = Vec::with_capacity(g.assets.len());
            for (k, name) in g.assets.iter().enumerate() {
                let Some(i) = market.index_of(name) else {
                    return Err(ValidationError::new(
                        format!("{here}.assets[{k}]"),
                        format!("\"{name}\" is not one of the assets"),
                    ));
                };
                if members.contains(&i) {
                    return Err(ValidationError::new(
                        format!("{here}.assets[{k}]"),
                        format!("\"{name}\" is listed twice"),
                    ));
                }
                members.push(i);
            }
            for (name, v) in [("min", g.min), ("max", g.max)] {
                if !v.is_finite() || v.abs() > MAX_WEIGHT * market.len() as f64 {
                    return Err(ValidationError::new(
                        format!("{here}.{name}"),
                        format!("must be a finite weight, got {v}"),
                    ));
                }
            }
            if g.min > g.max {
                return Err(ValidationError::new(
                    here,
                    format!("min {} is above max {}", g.min, g.max),
                ));
            }
            limits.push(GroupLimit {
                members,
                min: g.min,
                max: g.max,
            });
        }
        Ok(limits)
    }

    /// The whole request: validate, solve, read off the points, resample if asked.
    pub fn run(&self) -> Result<FrontierReport, FrontierRequestError> {
        self.run_watched(&Watch::default())
    }

    /// [`FrontierRequest::run`], its resampling stopped between resamples once `watch` is
    /// cancelled.
    pub fn run_watched(&self, watch: &Watch) -> Result<FrontierReport, FrontierRequestError> {
        let prepared = self.prepare("")?;
        let frontier = prepared.problem.solve()?;
        let rf = prepared.risk_free_rate;
        let report = |p: &Portfolio| PortfolioReport::new(p, rf);
        let target_return = self
            .target_return
            .map(|t| frontier.at_return_checked(t))
            .transpose()?;
        let target_volatility = self
            .target_volatility
            .map(|t| frontier.at_volatility(t))
            .transpose()?;
        let resampled = self
            .resample
            .as_ref()
            .map(|options| {
                resample::resampled_frontier(&prepared, options, rf, watch)?
                    .ok_or(FrontierRequestError::Cancelled)
            })
            .transpose()?;
        Ok(FrontierReport {
            assets: prepared.market.names.clone(),
            risk_free_rate: rf,
            corners: frontier.corners().iter().map(report).collect(),
            points: frontier
                .points(prepared.points)
                .iter()
                .map(report)
                .collect(),
            min_variance: report(frontier.min_variance()),
            max_sharpe: frontier.max_sharpe(rf).as_ref().map(report),
            target_return: target_return.as_ref().map(report),
            target_volatility: target_volatility.as_ref().map(report),
            repair: prepared.market.repair.clone(),
            resampled,
            engine_version: ENGINE_VERSION.to_string(),
        })
    }
}

impl PreparedFrontier {
    pub fn solve(&self) -> Result<Frontier, FrontierError> {
        self.problem.solve()
    }
}
