//! Risk metrics of one allocation: expected return, volatility, Sharpe and Sortino ratios,
//! one-year value at risk and conditional value at risk at 95% and 99% (parametric lognormal
//! and from the Monte Carlo), the distribution of the maximum drawdown over a horizon, and
//! stress tests.
//!
//! The portfolio follows docs/model.md §1's model: annual gross return lognormal with mean 1 + μ and
//! SD σ, so over a year ln G ~ N(m, s²) with s² = ln(1 + σ²/(1+μ)²), m = ln(1+μ) − s²/2.
//! The Monte Carlo draws the same Philox normals as the goal engine (path p, month t), and
//! compounds them the same way (drift × exp(vol · Z), f64 × f32), so its one-year wealth is,
//! bit for bit, the engine's terminal wealth of a 12-month goal with W0 = 1.
//!
//! Conventions: VaR and CVaR are losses, as positive fractions of the portfolio's value
//! (0.21 = a 21% loss); the Monte Carlo quantile is NumPy's linear one; CVaR is the mean loss
//! of the worst ⌈(1 − α)N⌉ paths. Drawdown at month t is 1 − W_t / max_{s ≤ t} W_s with
//! W_0 = 1, and a path's maximum drawdown is its largest over the horizon.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use crate::backend::{BackendError, Watch};
use crate::engine::EngineError;
use crate::normal::{self, normals_of_block};
use crate::philox::{key_of_seed, philox4x32_10};
use crate::portfolio::{AssetClass, MarketInputs, Repair};
use crate::quantile::percentile_of_sorted;
use crate::request::{DEFAULT_PATHS, DEFAULT_SEED};
use crate::result::ENGINE_VERSION;
use crate::validate::{
    monthly_lognormal, ValidationError, MAX_AMOUNT, MAX_HORIZON_MONTHS, MAX_RATE,
    WEIGHT_SUM_TOLERANCE,
};

/// Most paths a risk request may simulate (each holds its drawdown until the percentiles).
pub const MAX_RISK_PATHS: u64 = 2_000_000;
/// The confidence levels reported.
pub const LEVELS: [f64; 2] = [0.95, 0.99];

/// `{"assets", "correlations" | "covariance", "weights", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskRequest {
    pub assets: Vec<AssetClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlations: Option<Vec<Vec<f64>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariance: Option<Vec<Vec<f64>>>,
    #[serde(default)]
    pub repair_psd: bool,
    /// The allocation, one weight per asset, summing to 1 (negative: short).
    pub weights: Vec<f64>,
    #[serde(default)]
    pub risk_free_rate: f64,
    /// The Sortino ratio's minimum acceptable return (default: the risk-free rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_acceptable_return: Option<f64>,
    /// Months over which the maximum drawdown is measured, 1 … 1200.
    #[serde(default = "default_horizon")]
    pub horizon_months: u32,
    /// The portfolio's value, to state losses in money as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portfolio_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stress_tests: Vec<StressTest>,
    #[serde(default)]
    pub options: RiskOptions,
}

/// A scenario: a return shock per asset (by name); assets not named are unshocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StressTest {
    pub name: String,
    pub shocks: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskOptions {
    #[serde(default = "default_paths")]
    pub paths: u64,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

impl Default for RiskOptions {
    fn default() -> Self {
        RiskOptions {
            paths: DEFAULT_PATHS,
            seed: DEFAULT_SEED,
        }
    }
}

fn default_horizon() -> u32 {
    12
}
fn default_paths() -> u64 {
    DEFAULT_PATHS
}
fn default_seed() -> u64 {
    DEFAULT_SEED
}

/// The response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskReport {
    pub expected_return: f64,
    pub volatility: f64,
    /// Null at zero volatility.
    pub sharpe_ratio: Option<f64>,
    /// (μ − MAR) / downside deviation below MAR (closed form under the lognormal model);
    /// null when there is no downside.
    pub sortino_ratio: Option<f64>,
    pub minimum_acceptable_return: f64,
    /// One-year VaR, losses as fractions: `{"parametric": {"95", "99"}, "monte_carlo": …}`.
    pub value_at_risk: ByMethod,
    pub conditional_value_at_risk: ByMethod,
    pub max_drawdown: Drawdown,
    pub stress_tests: Vec<StressResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
    pub paths: u64,
    pub seed: u64,
    pub engine_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ByMethod {
    pub parametric: Levels,
    pub monte_carlo: Levels,
}

/// A figure at the 95% and 99% levels, with money amounts when a value was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Levels {
    #[serde(rename = "95")]
    pub p95: f64,
    #[serde(rename = "99")]
    pub p99: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_95: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_99: Option<f64>,
}

/// The maximum drawdown's distribution over the paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drawdown {
    pub horizon_months: u32,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StressResult {
    pub name: String,
    /// Σ wᵢ · shockᵢ.
    pub portfolio_return: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    /// wᵢ · shockᵢ per asset, in request order.
    pub contributions: Vec<f64>,
}

/// A checked risk request.
struct PreparedRisk {
    mu: f64,
    sigma: f64,
    shocks: Vec<Vec<f64>>,
    repair: Option<Repair>,
    weights: Vec<f64>,
}

impl RiskRequest {
    fn prepare(&self) -> Result<PreparedRisk, ValidationError> {
        let market = MarketInputs {
            assets: &self.assets,
            correlations: self.correlations.as_deref(),
            covariance: self.covariance.as_deref(),
            repair_psd: self.repair_psd,
            prefix: "",
        }
        .prepare()?;
        let n = market.len();
        if self.weights.len() != n {
            return Err(ValidationError::new(
                "weights",
                format!(
                    "must have {n} entries (one per asset), got {}",
                    self.weights.len()
                ),
            ));
        }
        if let Some(i) = self
            .weights
            .iter()
            .position(|w| !w.is_finite() || w.abs() > 10.0)
        {
            return Err(ValidationError::new(
                format!("weights[{i}]"),
                format!("must be between -10 and 10, got {}", self.weights[i]),
            ));
        }
        let sum: f64 = self.weights.iter().sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return Err(ValidationError::new(
                "weights",
                format!("must sum to 1, got {sum}"),
            ));
        }
        for (name, v) in [
            ("risk_free_rate", Some(self.risk_free_rate)),
            ("minimum_acceptable_return", self.minimum_acceptable_return),
        ] {
            if v.is_some_and(|v| !v.is_finite() || v.abs() > MAX_RATE) {
                return Err(ValidationError::new(
                    name,
                    format!("must be between -{MAX_RATE} and {MAX_RATE}"),
                ));
            }
        }
        if !(1..=MAX_HORIZON_MONTHS).contains(&self.horizon_months) {
            return Err(ValidationError::new(
                "horizon_months",
                format!(
                    "must be between 1 and {MAX_HORIZON_MONTHS}, got {}",
                    self.horizon_months
                ),
            ));
        }
        if let Some(v) = self.portfolio_value {
            if !v.is_finite() || !(0.0..=MAX_AMOUNT).contains(&v) {
                return Err(ValidationError::new(
                    "portfolio_value",
                    format!("must be between 0 and {MAX_AMOUNT:e}, got {v}"),
                ));
            }
        }
        let paths = self.options.paths;
        if !(2..=MAX_RISK_PATHS).contains(&paths) {
            return Err(ValidationError::new(
                "options.paths",
                format!("must be between 2 and {MAX_RISK_PATHS}, got {paths}"),
            ));
        }
        let work = paths * u64::from(self.horizon_months.max(12));
        if work > 2_000_000_000 {
            return Err(ValidationError::new(
                "options.paths",
                format!("paths × months must be at most 2e9, got {work}"),
            ));
        }
        let mut shocks = Vec::with_capacity(self.stress_tests.len());
        for (k, test) in self.stress_tests.iter().enumerate() {
            let mut shock = vec![0.0; n];
            for (name, &v) in &test.shocks {
                let field = format!("stress_tests[{k}].shocks.{name}");
                let Some(i) = market.index_of(name) else {
                    return Err(ValidationError::new(field, "is not one of the assets"));
                };
                if !v.is_finite() || !(-1.0..=MAX_RATE).contains(&v) {
                    return Err(ValidationError::new(
                        field,
                        format!("a return shock must be between -1 and {MAX_RATE}, got {v}"),
                    ));
                }
                shock[i] = v;
            }
            shocks.push(shock);
        }
        let w = &self.weights;
        let mu: f64 = w
            .iter()
            .zip(&market.expected_returns)
            .map(|(a, b)| a * b)
            .sum();
        let mut variance = 0.0;
        for i in 0..n {
            for j in 0..n {
                variance += w[i] * market.covariance[i * n + j] * w[j];
            }
        }
        if mu <= -1.0 {
            return Err(ValidationError::new(
                "weights",
                format!("the portfolio's expected return {mu} must be above -1 (a gross return)"),
            ));
        }
        Ok(PreparedRisk {
            mu,
            sigma: variance.max(0.0).sqrt(),
            shocks,
            repair: market.repair,
            weights: w.clone(),
        })
    }

    /// Validate and compute every metric.
    pub fn run(&self) -> Result<RiskReport, ValidationError> {
        self.run_watched(&Watch::default()).map_err(|e| match e {
            EngineError::Invalid(v) => v,
            EngineError::Backend(_) => unreachable!("a watch nobody holds is never cancelled"),
        })
    }

    /// [`RiskRequest::run`], its Monte Carlo stopped between blocks of paths once `watch` is
    /// cancelled.
    pub fn run_watched(&self, watch: &Watch) -> Result<RiskReport, EngineError> {
        let p = self.prepare()?;
        let mar = self
            .minimum_acceptable_return
            .unwrap_or(self.risk_free_rate);
        let value = self.portfolio_value;
        let (s2, m) = annual_log_moments(p.mu, p.sigma);
        let s = s2.sqrt();
        let parametric_var = LEVELS.map(|a| parametric_value_at_risk(m, s, a));
        let parametric_cvar = LEVELS.map(|a| parametric_expected_shortfall(m, s, a));
        let simulated = simulate(p.mu, p.sigma, self.horizon_months, self.options, watch)
            .ok_or(BackendError::Cancelled)?;
        let mut one_year = simulated.one_year_returns;
        one_year.sort_by(f64::total_cmp);
        let mc_var = LEVELS.map(|a| -percentile_of_sorted(&one_year, 100.0 * (1.0 - a)));
        let mc_cvar = LEVELS.map(|a| {
            let tail = ((1.0 - a) * one_year.len() as f64).ceil().max(1.0) as usize;
            -one_year[..tail].iter().sum::<f64>() / tail as f64
        });
        let mut drawdowns = simulated.max_drawdowns;
        drawdowns.sort_by(f64::total_cmp);
        let levels = |v: [f64; 2]| Levels {
            p95: v[0],
            p99: v[1],
            amount_95: value.map(|x| x * v[0]),
            amount_99: value.map(|x| x * v[1]),
        };
        Ok(RiskReport {
            expected_return: p.mu,
            volatility: p.sigma,
            sharpe_ratio: (p.sigma > 0.0).then(|| (p.mu - self.risk_free_rate) / p.sigma),
            sortino_ratio: sortino(p.mu, m, s, mar),
            minimum_acceptable_return: mar,
            value_at_risk: ByMethod {
                parametric: levels(parametric_var),
                monte_carlo: levels(mc_var),
            },
            conditional_value_at_risk: ByMethod {
                parametric: levels(parametric_cvar),
                monte_carlo: levels(mc_cvar),
            },
            max_drawdown: Drawdown {
                horizon_months: self.horizon_months,
                mean: drawdowns.iter().sum::<f64>() / drawdowns.len() as f64,
                p50: percentile_of_sorted(&drawdowns, 50.0),
                p90: percentile_of_sorted(&drawdowns, 90.0),
                p95: percentile_of_sorted(&drawdowns, 95.0),
            },
            stress_tests: self
                .stress_tests
                .iter()
                .zip(&p.shocks)
                .map(|(test, shock)| {
                    let contributions: Vec<f64> =
                        p.weights.iter().zip(shock).map(|(w, s)| w * s).collect();
                    let total: f64 = contributions.iter().sum();
                    StressResult {
                        name: test.name.clone(),
                        portfolio_return: total,
                        amount: value.map(|v| v * total),
                        contributions,
                    }
                })
                .collect(),
            repair: p.repair,
            paths: self.options.paths,
            seed: self.options.seed,
            engine_version: ENGINE_VERSION.to_string(),
        })
    }
}

/// (s², m) of one year's log gross return (docs/model.md §1).
pub fn annual_log_moments(mu: f64, sigma: f64) -> (f64, f64) {
    let s2 = (1.0 + sigma * sigma / ((1.0 + mu) * (1.0 + mu))).ln();
    (s2, (1.0 + mu).ln() - s2 / 2.0)
}

fn standard_normal() -> Normal {
    Normal::standard()
}

/// Loss at level α: 1 − the (1 − α) quantile of G = exp(m + sZ).
pub fn parametric_value_at_risk(m: f64, s: f64, level: f64) -> f64 {
    1.0 - (m + s * standard_normal().inverse_cdf(1.0 - level)).exp()
}

/// Expected loss beyond the VaR: 1 − E[G | G ≤ q] = 1 − e^{m + s²/2} Φ(z − s) / (1 − α).
pub fn parametric_expected_shortfall(m: f64, s: f64, level: f64) -> f64 {
    let z = standard_normal().inverse_cdf(1.0 - level);
    if s == 0.0 {
        return 1.0 - m.exp();
    }
    1.0 - (m + s * s / 2.0).exp() * standard_normal().cdf(z - s) / (1.0 - level)
}

/// (μ − MAR) / sqrt(E[(k − G)₊²]) with k = 1 + MAR and G lognormal:
/// E[(k − G)₊²] = k² Φ(d) − 2k e^{m + s²/2} Φ(d − s) + e^{2m + 2s²} Φ(d − 2s), d = (ln k − m)/s.
pub fn sortino(mu: f64, m: f64, s: f64, mar: f64) -> Option<f64> {
    let k = 1.0 + mar;
    if k <= 0.0 || s == 0.0 {
        return None;
    }
    let phi = |x: f64| standard_normal().cdf(x);
    let d = (k.ln() - m) / s;
    let second = k * k * phi(d) - 2.0 * k * (m + s * s / 2.0).exp() * phi(d - s)
        + (2.0 * m + 2.0 * s * s).exp() * phi(d - 2.0 * s);
    (second > 0.0).then(|| (mu - mar) / second.sqrt())
}

struct Simulated {
    one_year_returns: Vec<f64>,
    max_drawdowns: Vec<f64>,
}

/// Paths between two looks at the watch (about 10 ms of work at 360 months on one core).
const RISK_BLOCK_PATHS: u32 = 1 << 14;

/// Paths of W (W_0 = 1) over max(12, horizon) months: the one-year return and the maximum
/// drawdown over the horizon of each; `None` once `watch` is cancelled (looked at between
/// blocks of [`RISK_BLOCK_PATHS`] paths, each path's numbers unchanged by the blocking).
fn simulate(
    mu: f64,
    sigma: f64,
    horizon: u32,
    options: RiskOptions,
    watch: &Watch,
) -> Option<Simulated> {
    let (drift, vol) = monthly_lognormal(mu, sigma);
    let vol = vol as f32;
    let months = horizon.max(12);
    let key = key_of_seed(options.seed);
    let paths = options.paths as u32;
    let mut one_year_returns = Vec::with_capacity(paths as usize);
    let mut max_drawdowns = Vec::with_capacity(paths as usize);
    for start in (0..paths).step_by(RISK_BLOCK_PATHS as usize) {
        if watch.is_cancelled() {
            return None;
        }
        let end = start.saturating_add(RISK_BLOCK_PATHS).min(paths);
        let (years, drawdowns): (Vec<f64>, Vec<f64>) = (start..end)
            .into_par_iter()
            .with_min_len(1024)
            .map(|path| {
                let (mut wealth, mut peak, mut worst, mut at_year) = (1.0f64, 1.0f64, 0.0f64, 0.0);
                let mut block = [0.0f32; 4];
                for month in 0..months {
                    if month % 4 == 0 {
                        block = normals_of_block(philox4x32_10([path, month / 4, 0, 0], key));
                    }
                    let shock = normal::exp(vol * block[(month % 4) as usize]);
                    wealth *= drift * f64::from(shock);
                    if month < horizon {
                        peak = peak.max(wealth);
                        worst = worst.max(1.0 - wealth / peak);
                    }
                    if month == 11 {
                        at_year = wealth - 1.0;
                    }
                }
                (at_year, worst)
            })
            .unzip();
        one_year_returns.extend(years);
        max_drawdowns.extend(drawdowns);
        watch.advance(u64::from(end - start) * u64::from(months));
    }
    Some(Simulated {
        one_year_returns,
        max_drawdowns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_year_paths_are_the_engines_twelve_month_goal() {
        let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"horizon_months": 12, "initial_wealth": 1.0},
            "market": {"expected_return": 0.07, "volatility": 0.16},
            "options": {"paths": 300, "seed": 9}
        }))
        .unwrap();
        let goal = crate::validate::prepare(&request).unwrap();
        let engine = crate::backend::CpuBackend::new();
        let terminal = crate::SimulationBackend::terminal_wealth(&engine, &goal);
        let simulated = simulate(
            0.07,
            0.16,
            12,
            RiskOptions {
                paths: 300,
                seed: 9,
            },
            &Watch::default(),
        )
        .unwrap();
        for (w, r) in terminal.iter().zip(&simulated.one_year_returns) {
            assert_eq!(*w - 1.0, *r);
        }
    }

    #[test]
    fn parametric_figures_match_their_closed_forms() {
        // Zero volatility: no loss beyond the drift, VaR = CVaR = −μ.
        let (s2, m) = annual_log_moments(0.05, 0.0);
        assert!((parametric_value_at_risk(m, s2.sqrt(), 0.95) + 0.05).abs() < 1e-12);
        assert!((parametric_expected_shortfall(m, s2.sqrt(), 0.99) + 0.05).abs() < 1e-12);
        // CVaR beyond VaR, and both grow with the level.
        let (s2, m) = annual_log_moments(0.07, 0.2);
        let s = s2.sqrt();
        let (v95, v99) = (
            parametric_value_at_risk(m, s, 0.95),
            parametric_value_at_risk(m, s, 0.99),
        );
        let (c95, c99) = (
            parametric_expected_shortfall(m, s, 0.95),
            parametric_expected_shortfall(m, s, 0.99),
        );
        assert!(v95 < v99 && v95 < c95 && v99 < c99 && c95 < c99);
        // ln(1 − VaR) is the 5% quantile of N(m, s²): m − 1.6448536 s.
        assert!(((1.0 - v95).ln() - (m - 1.644_853_626_951_472_2 * s)).abs() < 1e-9);
    }
}
