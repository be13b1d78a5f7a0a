//! The goal-based frontier sweep of MODEL.md §3: the goal Monte Carlo at each of K frontier
//! points, in one batched engine call with common random numbers (one seed: every point sees
//! the same normals), so differences between points are the allocation's, not the sampling's.
//!
//! Each point's portfolio reaches the engine as its μ and σ (MODEL.md §1's single-portfolio
//! market), so a point's numbers are exactly those of a single-goal run with that μ, σ and seed.

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineError};
use crate::frontier::{FrontierError, FrontierRequest, PortfolioReport};
use crate::request::{Goal, GoalRequest, Market, Options};
use crate::result::ENGINE_VERSION;
use crate::validate::{prepare, PreparedGoal, ValidationError};

/// `{"goal", "frontier", "inflation", "options"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    pub goal: Goal,
    /// A frontier request (MODEL.md §2); its `points` is K.
    pub frontier: FrontierRequest,
    /// Annual inflation, as `market.inflation` of a goal.
    #[serde(default)]
    pub inflation: f64,
    #[serde(default)]
    pub options: Options,
}

/// One frontier point and the goal's outcome there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    pub index: usize,
    #[serde(flatten)]
    pub portfolio: PortfolioReport,
    pub success_probability: f64,
    pub standard_error: f64,
    pub terminal_mean: f64,
    pub depletion_probability: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
    pub engine_version: &'static str,
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
                inflation: self.inflation,
                ..Market::default()
            },
            options: self.options.clone(),
        }
    }

    pub fn run(&self, engine: &Engine) -> Result<SweepReport, SweepError> {
        let prepared = self.frontier.prepare("frontier.")?;
        let frontier = prepared.solve()?;
        let rf = prepared.risk_free_rate;
        let portfolios = frontier.points(prepared.points);
        let goals: Vec<PreparedGoal> = portfolios
            .iter()
            .map(|p| prepare(&self.goal_request_at(p.expected_return, p.volatility)))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                let field = e.field.replace("market.inflation", "inflation");
                ValidationError::new(field, e.problem)
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
            engine_version: ENGINE_VERSION,
        })
    }
}
