//! The goal-based frontier sweep of docs/model.md §3: the goal Monte Carlo at each of K frontier
//! points, in one batched engine call with common random numbers (one seed: every point sees
//! the same normals), so differences between points are the allocation's, not the sampling's.
//!
//! Under the lognormal and Student-t months rebalanced monthly, each point's portfolio reaches
//! the engine as its μ and σ (docs/model.md §1's single-portfolio market), so a point's numbers
//! are exactly those of a single-goal run with that μ, σ and seed. A regime market (whose
//! regimes may move each asset), a bootstrap (whose history holds the frontier's assets) and
//! per-asset paths (`rebalancing` other than monthly) need the point's weights instead: the
//! point then reaches the engine as the frontier's assets, their correlations and the point's
//! weights ([`SweepRequest::goal_request_for`]).

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError};
use crate::frontier::{FrontierError, FrontierRequest, Portfolio, PortfolioReport};
use crate::portfolio;
use crate::request::{
    Asset, Goal, GoalRequest, HistorySource, Market, Options, Rebalancing, ReturnModel,
};
use crate::result::ENGINE_VERSION;
use crate::validate::{prepare, PreparedGoal, ValidationError};

/// `{"goal", "frontier", "inflation", "fee", "model", "rebalancing", "options"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    pub goal: Goal,
    /// A frontier request (docs/model.md §2); its `points` is K.
    pub frontier: FrontierRequest,
    /// Annual inflation, as `market.inflation` of a goal.
    #[serde(default)]
    pub inflation: f64,
    /// The portfolio's annual fee at every point, as `market.fee` of a goal.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0.0), extend("exclusiveMaximum" = 1.0))]
    pub fee: f64,
    /// The month's return distribution at every point, as `market.model` of a goal.
    #[serde(default, skip_serializing_if = "ReturnModel::is_lognormal")]
    pub model: ReturnModel,
    /// How each point's assets are rebalanced, as `market.rebalancing` of a goal.
    #[serde(default, skip_serializing_if = "Rebalancing::is_monthly")]
    #[schemars(with = "crate::request::RebalancingSchema")]
    pub rebalancing: Rebalancing,
    #[serde(default)]
    pub options: Options,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// One frontier point and the goal's outcome there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub index: usize,
    #[serde(flatten)]
    pub portfolio: PortfolioReport,
    pub success_probability: f64,
    pub standard_error: f64,
    pub terminal_mean: f64,
    pub depletion_probability: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub assets: Vec<String>,
    pub success_threshold: f64,
    pub points: Vec<SweepPoint>,
    /// Highest success probability (ties: the lower volatility).
    pub best: SweepPoint,
    /// The least volatile point whose success probability meets the goal's threshold; null
    /// when none does.
    pub least_volatile_meeting_threshold: Option<SweepPoint>,
    pub paths: u64,
    pub seed: u64,
    pub backend: String,
    pub engine_version: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Frontier(#[from] FrontierError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl SweepRequest {
    /// The goal request the sweep runs at a frontier point of return `mu` and volatility
    /// `sigma`: what a caller would send to simulate that point alone.
    pub fn goal_request_at(&self, mu: f64, sigma: f64) -> GoalRequest {
        GoalRequest {
            goal: self.goal.clone(),
            market: Market {
                expected_return: Some(mu),
                volatility: Some(sigma),
                inflation: self.inflation.into(),
                fee: self.fee,
                model: self.model.clone(),
                ..Market::default()
            },
            options: self.options.clone(),
        }
    }

    /// Whether a point must reach the engine by its weights over the frontier's assets rather
    /// than as one μ and σ: under regimes, a bootstrap or per-asset paths.
    fn by_weights(&self) -> bool {
        matches!(
            self.model,
            ReturnModel::Regime { .. } | ReturnModel::Bootstrap { .. }
        ) || !self.rebalancing.is_monthly()
    }

    /// The goal request the sweep runs at frontier point `point` of the checked frontier
    /// `market`: [`SweepRequest::goal_request_at`] its μ and σ, or, where the model needs the
    /// point's weights ([`SweepRequest::by_weights`]), the frontier's assets (σ_k and the
    /// correlations from its covariance; a bootstrap's assets are its history's) with the
    /// point's weights: what a caller would send to simulate that point alone.
    pub fn goal_request_for(&self, point: &Portfolio, market: &portfolio::Market) -> GoalRequest {
        let mut request = self.goal_request_at(point.expected_return, point.volatility);
        if !self.by_weights() {
            return request;
        }
        let n = market.len();
        let sd: Vec<f64> = (0..n)
            .map(|k| market.covariance[k * n + k].max(0.0).sqrt())
            .collect();
        let bootstrap = matches!(self.model, ReturnModel::Bootstrap { .. });
        request.market.expected_return = None;
        request.market.volatility = None;
        request.market.weights = Some(point.weights.clone());
        request.market.rebalancing = self.rebalancing;
        if !bootstrap {
            request.market.assets = Some(
                market
                    .names
                    .iter()
                    .zip(&market.expected_returns)
                    .zip(&sd)
                    .map(|((name, &expected_return), &volatility)| Asset {
                        name: name.clone(),
                        expected_return,
                        volatility,
                    })
                    .collect(),
            );
            request.market.correlations = Some(
                (0..n)
                    .map(|i| {
                        (0..n)
                            .map(|j| {
                                let scale = sd[i] * sd[j];
                                if i == j {
                                    1.0
                                } else if scale > 0.0 {
                                    (market.covariance[i * n + j] / scale).clamp(-1.0, 1.0)
                                } else {
                                    0.0
                                }
                            })
                            .collect()
                    })
                    .collect(),
            );
        }
        request
    }

    pub fn run(&self, engine: &Engine) -> Result<SweepReport, SweepError> {
        crate::validate::check_fee("fee", self.fee)?;
        crate::sampler::one_number_of_paths(&self.options, "a sweep")?;
        let prepared = self.frontier.prepare("frontier.")?;
        if let ReturnModel::Bootstrap {
            history: HistorySource::Inline(history),
            ..
        } = &self.model
        {
            // The points' weights are over the frontier's assets: the history must hold them.
            if history.assets != prepared.market.names {
                return Err(ValidationError::new(
                    "model.history",
                    format!(
                        "its assets ({}) must be the frontier's ({}), in that order: each point's weights apply to the history's returns",
                        history.assets.join(", "),
                        prepared.market.names.join(", ")
                    ),
                )
                .into());
            }
        }
        let frontier = prepared.solve()?;
        let rf = prepared.risk_free_rate;
        let portfolios = frontier.points(prepared.points);
        let goals: Vec<PreparedGoal> = portfolios
            .iter()
            .map(|p| prepare(&self.goal_request_for(p, &prepared.market)))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                // The point's μ and σ, assets, correlations and weights come from the
                // frontier, not from fields of the request: name the frontier for them.
                let from_frontier = ["market.expected_return", "market.volatility"]
                    .contains(&e.field.as_str())
                    || ["market.assets", "market.weights", "market.correlations"]
                        .iter()
                        .any(|f| e.field.starts_with(f));
                let field = if from_frontier {
                    "frontier".to_string()
                } else {
                    let field = e.field.as_str();
                    field.strip_prefix("market.").unwrap_or(field).to_string()
                };
                ValidationError::new(
                    field,
                    format!("a frontier point's portfolio: {}", e.problem),
                )
            })?;
        let summaries = engine.success(&goals)?;
        let points: Vec<SweepPoint> = portfolios
            .iter()
            .zip(&summaries)
            .enumerate()
            .map(|(index, (p, s))| {
                let n = s.paths as f64;
                let success = s.success_probability();
                SweepPoint {
                    index,
                    portfolio: PortfolioReport::new(p, rf),
                    success_probability: success,
                    standard_error: (success * (1.0 - success) / n).sqrt(),
                    terminal_mean: s.terminal().mean,
                    depletion_probability: s.depleted as f64 / n,
                }
            })
            .collect();
        let threshold = self.goal.success_threshold;
        let by_volatility = |a: &&SweepPoint, b: &&SweepPoint| {
            a.portfolio.volatility.total_cmp(&b.portfolio.volatility)
        };
        let best = points
            .iter()
            .max_by(|a, b| {
                a.success_probability
                    .total_cmp(&b.success_probability)
                    .then_with(|| by_volatility(b, a))
            })
            .expect("a frontier has at least one point")
            .clone();
        let least_volatile_meeting_threshold = points
            .iter()
            .filter(|p| p.success_probability >= threshold)
            .min_by(by_volatility)
            .cloned();
        Ok(SweepReport {
            assets: prepared.market.names.clone(),
            success_threshold: threshold,
            points,
            best,
            least_volatile_meeting_threshold,
            paths: goals[0].paths,
            seed: goals[0].seed,
            backend: engine.backend().info().name.to_string(),
            engine_version: ENGINE_VERSION.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frontier point the goal model refuses (here μ = −150%, from a leveraged asset) is
    /// named as the frontier's, not as a `market` field the sweep request does not have.
    #[test]
    fn a_point_the_goal_model_refuses_names_the_frontier() {
        let mut request: serde_json::Value =
            serde_json::from_str(include_str!("../../examples/sweep.json")).unwrap();
        request["frontier"] = serde_json::json!({
            "assets": [{"name": "short", "expected_return": -1.5, "volatility": 0.1}],
            "points": 1
        });
        let request: SweepRequest = serde_json::from_value(request).unwrap();
        match request.run(&Engine::default()) {
            Err(SweepError::Invalid(e)) => {
                assert_eq!(e.field, "frontier", "{e}");
                assert!(e.problem.contains("frontier point"), "{e}");
            }
            Err(other) => panic!("expected the frontier named, got {other}"),
            Ok(_) => panic!("a point with μ = −150% was simulated"),
        }
    }
}
