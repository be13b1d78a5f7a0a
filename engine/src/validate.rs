//! Validation of a [`GoalRequest`] and its preparation into a [`PreparedGoal`]: the month-by-month
//! schedule (contribution, withdrawal, drift, volatility) that every backend consumes.
//!
//! All checks live here, so the CLI, HTTP and gRPC refuse the same inputs with the same words.
//! An error names the field (`market.glide_path[2].start_month`) and the bound it broke.

use nalgebra::{DMatrix, SymmetricEigen};
use thiserror::Error;

use crate::bootstrap::{self, Bootstrap};
use crate::history::History;
use crate::inflation::{self, Ar1Inflation};
use crate::rebalance::{self, AssetPaths, MAX_ASSET_PATHS};
use crate::regime::{RegimeChain, MAX_REGIMES, ROW_SUM_TOLERANCE};
use crate::request::{
    GlideSegment, GoalRequest, HistorySource, Inflation, InflationModel, Market, Rebalancing,
    Regime, RegimeStart, RegimeStartName, ReturnModel,
};
use crate::sampler::{PathSampler, PrecisionTarget};
use crate::student_t::{StudentT, MAX_DF};

/// Longest horizon, in months (100 years).
pub const MAX_HORIZON_MONTHS: u32 = 1200;
/// Most paths one goal may ask for.
pub const MAX_PATHS: u64 = 10_000_000;
/// Weights must sum to 1 within this.
pub const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;
/// Largest money amount accepted (a quadrillion): beyond it `f64` sums lose cents.
pub const MAX_AMOUNT: f64 = 1e15;
/// Largest annual expected return or volatility accepted (1000%).
pub const MAX_RATE: f64 = 10.0;
/// Most percentiles one request may ask for.
pub const MAX_PERCENTILES: usize = 101;

/// An input that breaks a bound of docs/model.md: which field, and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    /// The field's path in the request, e.g. `goal.horizon_months`.
    pub field: String,
    /// What is wrong, with the bound, e.g. `must be between 1 and 1200, got 0`.
    pub problem: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A goal ready for a backend: every per-month input resolved, every bound checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedGoal {
    /// T, months.
    pub horizon: u32,
    /// W0.
    pub initial_wealth: f64,
    /// c_t for t = 0 … T−1.
    pub contribution: Vec<f64>,
    /// d_t for t = 0 … T−1: nominal under a deterministic rate; under stochastic inflation the
    /// amount in today's money, which each path scales by its index I_{12⌊t/12⌋}.
    pub withdrawal: Vec<f64>,
    /// exp(m/12) of the segment in force at month t; under regimes, regime k's month t at
    /// k·T + t.
    pub drift: Vec<f64>,
    /// sqrt(s²/12) of the segment in force at month t, laid out as `drift`.
    pub volatility: Vec<f32>,
    /// target_T, nominal; under stochastic inflation with a real target, the target at the
    /// mean rate (for reference: each path's success is counted on `target_real`).
    pub target_nominal: f64,
    /// Under stochastic inflation with a real target: the target in today's money, which a
    /// path's real terminal wealth W_T / I_T must reach (docs/model.md §4.4).
    pub target_real: Option<f64>,
    pub paths: u64,
    pub seed: u64,
    /// Ascending, distinct, each in [0, 100].
    pub percentiles: Vec<f64>,
    /// The Student-t month (docs/model.md §4.1), or §1's lognormal when `None`. With it,
    /// `drift` holds E[G] and `volatility` sqrt(exp(s²/12) − 1) (see [`crate::student_t`]).
    pub student_t: Option<StudentT>,
    /// The regime chain (docs/model.md §4.2), when the market switches regimes.
    pub regimes: Option<RegimeChain>,
    /// Stochastic inflation (docs/model.md §4.4), or `None` for a deterministic rate (or a
    /// history's inflation).
    pub inflation: Option<Ar1Inflation>,
    /// The bootstrap from a history (docs/model.md §4.3). With it `drift` holds the fee's
    /// factor alone; when its history carries inflation, that drives the price index.
    pub bootstrap: Option<Bootstrap>,
    /// Per-asset paths (docs/model.md §4.5), when `market.rebalancing` is other than monthly.
    /// `drift` and `volatility` then still hold the portfolio's monthly reduction, which the
    /// per-asset kernels do not read (every backend has one).
    pub asset_paths: Option<AssetPaths>,
    /// Where the paths' market normals come from (docs/model.md §6); `paths` is in its form.
    pub sampler: PathSampler,
    /// A target standard error, which [`crate::Engine`] meets in rounds of more paths.
    pub precision: Option<PrecisionTarget>,
}

/// What a month loop reads of its market (docs/model.md §1.2, §4): a goal's
/// ([`PreparedGoal::market`]) or a plan's (`crate::plan::PreparedPlan::market`), so that one
/// CPU path computes every model's months for both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MarketView<'a> {
    pub(crate) horizon: u32,
    /// As [`PreparedGoal::drift`] (regime k's months from k·horizon).
    pub(crate) drift: &'a [f64],
    pub(crate) volatility: &'a [f32],
    pub(crate) student_t: Option<StudentT>,
    pub(crate) regimes: Option<&'a RegimeChain>,
    pub(crate) inflation: Option<Ar1Inflation>,
    pub(crate) bootstrap: Option<&'a Bootstrap>,
}

impl MarketView<'_> {
    /// Whether each path carries its own price index: AR(1) inflation or a history's.
    pub(crate) fn stochastic_index(&self) -> bool {
        self.inflation.is_some() || self.bootstrap.is_some_and(|b| b.inflation.is_some())
    }
}

impl PreparedGoal {
    /// The market its month loop reads.
    pub(crate) fn market(&self) -> MarketView<'_> {
        MarketView {
            horizon: self.horizon,
            drift: &self.drift,
            volatility: &self.volatility,
            student_t: self.student_t,
            regimes: self.regimes.as_ref(),
            inflation: self.inflation,
            bootstrap: self.bootstrap.as_ref(),
        }
    }

    /// Months at which the fan chart is reported: 12, 24, … and T.
    pub fn yearly_months(&self) -> Vec<u32> {
        let mut months: Vec<u32> = (1..=self.horizon / 12).map(|y| y * 12).collect();
        if !self.horizon.is_multiple_of(12) {
            months.push(self.horizon);
        }
        months
    }

    /// Path-steps this goal costs: paths × months.
    pub fn path_steps(&self) -> u64 {
        self.paths * u64::from(self.horizon)
    }

    /// Whether each path carries its own price index: AR(1) inflation (docs/model.md §4.4) or
    /// a history's inflation (§4.3).
    pub fn stochastic_index(&self) -> bool {
        self.market().stochastic_index()
    }

    /// The columns a backend snapshots for the snapshot `months`: W_s at each, and under a
    /// stochastic index the same months again for the real W_s / I_s (every backend lays
    /// its snapshots out so; the last column is then the real terminal wealth).
    pub fn snapshot_columns(&self, months: Vec<u32>) -> Vec<u32> {
        if self.stochastic_index() {
            let mut columns = months.clone();
            columns.extend(months);
            columns
        } else {
            months
        }
    }

    /// Which of `columns` snapshot columns success is counted on: the nominal W_T, or the
    /// real W_T / I_T when a stochastic index scales a real target.
    pub fn success_column(&self, columns: usize) -> usize {
        if self.stochastic_index() && self.target_real.is_none() {
            columns / 2 - 1
        } else {
            columns - 1
        }
    }

    /// What the success column must reach: `target_real` or `target_nominal`.
    pub fn success_target(&self) -> f64 {
        self.target_real.unwrap_or(self.target_nominal)
    }
}

/// Lognormal monthly parameters of a portfolio with annual arithmetic mean μ and SD σ
/// (docs/model.md §1 "Monthly return"): returns (exp(m/12), sqrt(s²/12)).
pub fn monthly_lognormal(mu: f64, sigma: f64) -> (f64, f64) {
    let s2 = (1.0 + sigma * sigma / ((1.0 + mu) * (1.0 + mu))).ln();
    let m = (1.0 + mu).ln() - s2 / 2.0;
    ((m / 12.0).exp(), (s2 / 12.0).sqrt())
}

/// Check `request` against every bound of docs/model.md and build its schedule.
pub fn prepare(request: &GoalRequest) -> Result<PreparedGoal, ValidationError> {
    let goal = &request.goal;
    let options = &request.options;
    let horizon = goal.horizon_months;
    if !(1..=MAX_HORIZON_MONTHS).contains(&horizon) {
        return Err(ValidationError::new(
            "goal.horizon_months",
            format!("must be between 1 and {MAX_HORIZON_MONTHS}, got {horizon}"),
        ));
    }
    amount("goal.initial_wealth", goal.initial_wealth)?;
    amount("goal.monthly_contribution", goal.monthly_contribution)?;
    amount("goal.monthly_withdrawal", goal.monthly_withdrawal)?;
    amount("goal.target_amount", goal.target_amount)?;
    growth_rate("goal.contribution_growth", goal.contribution_growth)?;
    let stochastic_inflation = inflation_model(&request.market.inflation)?;
    let contribution_months = goal.contribution_months.unwrap_or(horizon);
    month_within("goal.contribution_months", contribution_months, horizon)?;
    let withdrawal_start = goal.withdrawal_start_month.unwrap_or(horizon);
    month_within("goal.withdrawal_start_month", withdrawal_start, horizon)?;
    let threshold = goal.success_threshold;
    if !(threshold.is_finite() && threshold > 0.0 && threshold <= 1.0) {
        return Err(ValidationError::new(
            "goal.success_threshold",
            format!("must be in (0, 1], got {threshold}"),
        ));
    }
    if !(1..=MAX_PATHS).contains(&options.paths()) {
        return Err(ValidationError::new(
            "options.paths",
            format!("must be between 1 and {MAX_PATHS}, got {}", options.paths()),
        ));
    }
    let percentiles = percentiles(&options.percentiles)?;
    let precision = PrecisionTarget::of_options(options)?;
    let (sampler, paths) = PathSampler::of_options(options, options.paths())?;

    let MarketSchedule {
        drift,
        volatility,
        student_t,
        regimes,
        bootstrap,
        asset_paths,
    } = market_schedule(&request.market, horizon, "goal.horizon_months")?;
    sampler_covers(sampler, bootstrap.is_some(), asset_paths.is_some())?;
    let mean_inflation = mean_inflation(&request.market, bootstrap.as_ref(), asset_paths.as_ref())?;
    let stochastic_index =
        stochastic_inflation.is_some() || bootstrap.as_ref().is_some_and(|b| b.inflation.is_some());
    // Under a stochastic index each path indexes the withdrawals itself.
    let inflation = if stochastic_index {
        0.0
    } else {
        mean_inflation
    };

    let mut contribution = Vec::with_capacity(horizon as usize);
    let mut withdrawal = Vec::with_capacity(horizon as usize);
    for t in 0..horizon {
        let years = (t / 12) as i32;
        contribution.push(if t < contribution_months {
            goal.monthly_contribution * (1.0 + goal.contribution_growth).powi(years)
        } else {
            0.0
        });
        withdrawal.push(if t >= withdrawal_start {
            goal.monthly_withdrawal * (1.0 + inflation).powi(years)
        } else {
            0.0
        });
    }
    let target_nominal = if goal.target_real {
        goal.target_amount * (1.0 + mean_inflation).powf(f64::from(horizon) / 12.0)
    } else {
        goal.target_amount
    };
    let target_real = (goal.target_real && stochastic_index).then_some(goal.target_amount);
    Ok(PreparedGoal {
        horizon,
        initial_wealth: goal.initial_wealth,
        contribution,
        withdrawal,
        drift,
        volatility,
        target_nominal,
        target_real,
        paths,
        seed: options.seed,
        percentiles,
        student_t,
        regimes,
        inflation: stochastic_inflation,
        bootstrap,
        asset_paths,
        sampler,
        precision,
    })
}

/// Whether `sampler` can draw this market's normals: a bootstrap draws none (its months come
/// from the history), and per-asset paths draw one per asset a month, which Philox and
/// antithetic pairs (every asset's normal negated) draw but `sobol` does not yet (docs/model.md
/// §6).
fn sampler_covers(
    sampler: PathSampler,
    bootstrap: bool,
    asset_paths: bool,
) -> Result<(), ValidationError> {
    if sampler == PathSampler::Philox {
        return Ok(());
    }
    let name = sampler.name();
    if bootstrap {
        return Err(ValidationError::new(
            "options.sampler",
            format!(
                "a bootstrap market draws no normals for the {name} sampler to order: use philox"
            ),
        ));
    }
    if asset_paths && matches!(sampler, PathSampler::Sobol { .. }) {
        return Err(ValidationError::new(
            "options.sampler",
            format!("per-asset paths (market.rebalancing other than monthly) draw one normal per asset a month, which the {name} sampler does not cover yet: use philox or antithetic"),
        ));
    }
    Ok(())
}

/// The long-run annual inflation of `market` (the AR(1) model's mean, the rate, or the
/// geometric average of its history's inflation) once its price index and its model agree: a
/// history carrying inflation drives the index in place of `market.inflation` (docs/model.md
/// §4.3), and AR(1) inflation has no portfolio shock to correlate with under a bootstrap or
/// per-asset paths (§4.4, §4.5). Goals and plans check their markets here alike.
pub(crate) fn mean_inflation(
    market: &Market,
    bootstrap: Option<&Bootstrap>,
    asset_paths: Option<&AssetPaths>,
) -> Result<f64, ValidationError> {
    let history_inflation = bootstrap.and_then(|b| b.inflation.as_deref());
    if history_inflation.is_some() && market.inflation != Inflation::Rate(0.0) {
        return Err(ValidationError::new(
            "market.inflation",
            "the history carries its own inflation, which drives the price index (docs/model.md §4.3): leave market.inflation out",
        ));
    }
    if let (Some(_), Inflation::Model(InflationModel::Ar1 { correlation, .. })) =
        (bootstrap, market.inflation)
    {
        if correlation != 0.0 {
            return Err(ValidationError::new(
                "market.inflation.correlation",
                format!("must be 0 under a bootstrap market, which draws no normal shock to correlate with, got {correlation}"),
            ));
        }
    }
    if let (Some(assets), Inflation::Model(InflationModel::Ar1 { correlation, .. })) =
        (asset_paths, market.inflation)
    {
        if correlation != 0.0 {
            return Err(ValidationError::new(
                "market.inflation.correlation",
                format!(
                    "must be 0 with per-asset paths (market.rebalancing {:?}), which have one shock per asset and no portfolio shock to correlate with, got {correlation}",
                    assets.rule.name()
                ),
            ));
        }
    }
    // The long-run annual rate: the model's mean, or the history's average (geometric).
    Ok(match history_inflation {
        Some(factors) => {
            let log_mean = factors.iter().map(|f| f.ln()).sum::<f64>() / factors.len() as f64;
            (12.0 * log_mean).exp() - 1.0
        }
        None => market.inflation.mean(),
    })
}

/// `market.inflation` checked: `None` for a deterministic rate in (−1, 10], or the AR(1)
/// model's kernel constants (docs/model.md §4.4), each field within its bound.
pub(crate) fn inflation_model(
    inflation: &Inflation,
) -> Result<Option<Ar1Inflation>, ValidationError> {
    let InflationModel::Ar1 {
        mean,
        volatility,
        half_life_years,
        initial,
        correlation,
    } = match *inflation {
        Inflation::Rate(rate) => return growth_rate("market.inflation", rate).map(|()| None),
        Inflation::Model(model) => model,
    };
    let rate = |field: &str, value: f64| {
        if value.is_finite() && value > inflation::MIN_RATE && value <= inflation::MAX_RATE {
            Ok(())
        } else {
            Err(ValidationError::new(
                format!("market.inflation.{field}"),
                format!(
                    "must be in ({}, {}], got {value}",
                    inflation::MIN_RATE,
                    inflation::MAX_RATE
                ),
            ))
        }
    };
    rate("mean", mean)?;
    rate("initial", initial.unwrap_or(mean))?;
    if !(volatility.is_finite() && (0.0..=inflation::MAX_VOLATILITY).contains(&volatility)) {
        return Err(ValidationError::new(
            "market.inflation.volatility",
            format!(
                "must be in [0, {}], got {volatility}",
                inflation::MAX_VOLATILITY
            ),
        ));
    }
    if !(half_life_years.is_finite()
        && half_life_years > 0.0
        && half_life_years <= inflation::MAX_HALF_LIFE_YEARS)
    {
        return Err(ValidationError::new(
            "market.inflation.half_life_years",
            format!(
                "must be in (0, {}], got {half_life_years}",
                inflation::MAX_HALF_LIFE_YEARS
            ),
        ));
    }
    if !(correlation.is_finite() && (-1.0..=1.0).contains(&correlation)) {
        return Err(ValidationError::new(
            "market.inflation.correlation",
            format!("must be in [-1, 1], got {correlation}"),
        ));
    }
    Ok(Some(Ar1Inflation::new(
        mean,
        volatility,
        half_life_years,
        initial.unwrap_or(mean),
        correlation,
    )))
}

/// A market's month-by-month parameters (docs/model.md §1.2, §4): what the kernels read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MarketSchedule {
    /// exp(m/12) (with the fee) of month t; under regimes, regime k's months from k·horizon.
    pub(crate) drift: Vec<f64>,
    /// sqrt(s²/12) of month t, laid out as `drift`.
    pub(crate) volatility: Vec<f32>,
    pub(crate) student_t: Option<StudentT>,
    pub(crate) regimes: Option<RegimeChain>,
    pub(crate) bootstrap: Option<Bootstrap>,
    /// Per-asset paths, when `market.rebalancing` is other than monthly.
    pub(crate) asset_paths: Option<AssetPaths>,
}

/// The market's month-by-month parameters over `horizon` months: exp(m/12) and sqrt(s²/12)
/// of the segment in force (docs/model.md §1.2), with the fee folded in; under a Student-t
/// `market.model`, E[G] and sqrt(exp(s²/12) − 1) instead, and the model's constants; under
/// regimes, one such schedule per regime and the chain. `horizon_field` names what sets the
/// horizon, for a glide segment that starts after it.
pub(crate) fn market_schedule(
    market: &Market,
    horizon: u32,
    horizon_field: &str,
) -> Result<MarketSchedule, ValidationError> {
    let fee = monthly_fee_factor(market.fee)?;
    let mut schedule = MarketSchedule {
        drift: Vec::with_capacity(horizon as usize),
        volatility: Vec::with_capacity(horizon as usize),
        student_t: None,
        regimes: None,
        bootstrap: None,
        asset_paths: None,
    };
    if !market.rebalancing.is_monthly() && !market.model.is_lognormal() {
        return Err(ValidationError::new(
            "market.rebalancing",
            "per-asset paths run under the lognormal market model so far: leave market.rebalancing out (monthly) under student_t, regime and bootstrap markets",
        ));
    }
    match &market.model {
        model @ (ReturnModel::Lognormal | ReturnModel::StudentT { .. }) => {
            let segments = market_segments(market, horizon, horizon_field)?;
            if let &ReturnModel::StudentT { df } = model {
                // Before the months: the t month changes what each segment's month holds.
                schedule.student_t = Some(student_t_of(df)?);
            }
            schedule.push_segments(&segments, horizon, fee);
            schedule.asset_paths = asset_paths(market, horizon, fee)?;
        }
        ReturnModel::Regime {
            regimes,
            transition,
            initial,
        } => {
            let chain = regime_chain(regimes, transition, *initial)?;
            for (k, regime) in regimes.iter().enumerate() {
                let in_regime = regime_market(market, regime, k)?;
                let segments = market_segments(&in_regime, horizon, horizon_field)?;
                schedule.push_segments(&segments, horizon, fee);
            }
            schedule.regimes = Some(chain);
        }
        ReturnModel::Bootstrap {
            history,
            block_months,
            method,
        } => {
            let history = match history {
                HistorySource::Inline(history) => history,
                HistorySource::Named(name) => {
                    return Err(ValidationError::new(
                        "market.model.history",
                        format!(
                            "names the stored history {name:?}, which the service resolves \
                             (POST /v1/histories); here, give the history itself"
                        ),
                    ))
                }
            };
            history.check("market.model.history")?;
            let rows = history.months.len();
            if !(1..=rows).contains(&(*block_months as usize)) {
                return Err(ValidationError::new(
                    "market.model.block_months",
                    format!(
                        "must be between 1 and the history's months ({rows}), got {block_months}"
                    ),
                ));
            }
            let segments = bootstrap_segments(market, history, horizon, horizon_field)?;
            let entries = (segments.len() + 1) * rows;
            if entries > bootstrap::MAX_TABLE_ENTRIES {
                return Err(ValidationError::new(
                    "market.glide_path",
                    format!(
                        "(segments + 1) × the history's months must be at most {}, got {entries}",
                        bootstrap::MAX_TABLE_ENTRIES
                    ),
                ));
            }
            // The month's growth is the fee's factor times the history's (crate::bootstrap).
            schedule.drift = vec![fee; horizon as usize];
            schedule.volatility = vec![0.0; horizon as usize];
            schedule.bootstrap = Some(Bootstrap::new(
                history,
                &segments,
                horizon,
                *block_months,
                *method,
            ));
        }
    }
    Ok(schedule)
}

/// Per-asset paths of a lognormal market whose `market.rebalancing` is other than monthly
/// (docs/model.md §4.5), or `None` under monthly rebalancing. `market_segments` has checked
/// the assets, weights, correlations and glide path by then; what is left is what per-asset
/// paths add: the assets themselves (a μ/σ portfolio or glide segment has none to simulate),
/// at most [`MAX_ASSET_PATHS`] of them, and the band.
fn asset_paths(
    market: &Market,
    horizon: u32,
    fee: f64,
) -> Result<Option<AssetPaths>, ValidationError> {
    let rule = match market.rebalancing {
        Rebalancing::Monthly => return Ok(None),
        Rebalancing::Annual => rebalance::Rule::Annual,
        Rebalancing::None => rebalance::Rule::None,
        Rebalancing::Band { band } => {
            if !(band.is_finite() && band > 0.0 && band < 1.0) {
                return Err(ValidationError::new(
                    "market.rebalancing.band",
                    format!("must be in (0, 1) (an absolute drift of a weight), got {band}"),
                ));
            }
            rebalance::Rule::Band(band)
        }
    };
    let assets = market.assets.as_deref().ok_or_else(|| {
        ValidationError::new(
            "market.rebalancing",
            format!(
                "{:?} rebalancing simulates each asset: it needs market.assets with market.weights (or glide segments with weights)",
                rule.name()
            ),
        )
    })?;
    let n = assets.len();
    if n > MAX_ASSET_PATHS {
        return Err(ValidationError::new(
            "market.assets",
            format!(
                "per-asset paths (market.rebalancing {:?}) take at most {MAX_ASSET_PATHS} assets, got {n}",
                rule.name()
            ),
        ));
    }
    // Weight segments (start month, weights), checked by market_segments already.
    let segments: Vec<(u32, &[f64])> = match (&market.glide_path, &market.weights) {
        (Some(glide), _) => glide
            .iter()
            .enumerate()
            .map(|(i, segment)| {
                segment
                    .weights
                    .as_deref()
                    .map(|w| (segment.start_month, w))
                    .ok_or_else(|| {
                        ValidationError::new(
                            format!("market.glide_path[{i}].weights"),
                            format!(
                                "is required under market.rebalancing {:?}: per-asset paths hold each asset, so every segment gives weights, not a μ and σ",
                                rule.name()
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
        (None, Some(weights)) => vec![(0, weights.as_slice())],
        (None, None) => unreachable!("market_segments requires weights with assets"),
    };
    let mut weights = Vec::with_capacity(horizon as usize * n);
    for (i, &(start, w)) in segments.iter().enumerate() {
        let end = segments.get(i + 1).map_or(horizon, |s| s.0);
        for _ in start..end {
            weights.extend_from_slice(w);
        }
    }
    let correlations: Vec<f64> = match &market.correlations {
        Some(rows) => rows.iter().flatten().copied().collect(),
        None => DMatrix::<f64>::identity(n, n)
            .transpose()
            .as_slice()
            .to_vec(),
    };
    let (drift, volatility) = assets
        .iter()
        .map(|a| {
            let (d, v) = monthly_lognormal(a.expected_return, a.volatility);
            (d * fee, v as f32)
        })
        .unzip();
    Ok(Some(AssetPaths {
        rule,
        count: n,
        drift,
        volatility,
        cholesky: rebalance::cholesky(&correlations, n)
            .into_iter()
            .map(|x| x as f32)
            .collect(),
        weights,
    }))
}

/// A bootstrap market's weight segments (start month, weights in the history's asset order):
/// `market.weights`, a glide path's `weights`, or all in the one asset of a one-asset history.
/// The history names the assets, so `market.assets` and `market.correlations` would go unused:
/// they are refused; `expected_return` and `volatility` are ignored (docs/model.md §4.3).
fn bootstrap_segments(
    market: &Market,
    history: &History,
    horizon: u32,
    horizon_field: &str,
) -> Result<Vec<(u32, Vec<f64>)>, ValidationError> {
    let n = history.assets.len();
    for (field, present) in [
        ("market.assets", market.assets.is_some()),
        ("market.correlations", market.correlations.is_some()),
    ] {
        if present {
            return Err(ValidationError::new(
                field,
                "a bootstrap market's assets and their dependence are its history's: leave this out and give market.weights in the history's asset order",
            ));
        }
    }
    if let Some(glide) = &market.glide_path {
        if market.weights.is_some() {
            return Err(ValidationError::new(
                "market.weights",
                "cannot be combined with market.glide_path (give it in each segment)",
            ));
        }
        if glide.is_empty() {
            return Err(ValidationError::new(
                "market.glide_path",
                "must have at least one segment",
            ));
        }
        let mut out: Vec<(u32, Vec<f64>)> = Vec::with_capacity(glide.len());
        for (i, segment) in glide.iter().enumerate() {
            let at = |name: &str| format!("market.glide_path[{i}].{name}");
            let previous = out.last().map(|s| s.0);
            check_segment_start(i, segment.start_month, previous, horizon, horizon_field)?;
            if segment.expected_return.is_some() || segment.volatility.is_some() {
                return Err(ValidationError::new(
                    at(if segment.expected_return.is_some() {
                        "expected_return"
                    } else {
                        "volatility"
                    }),
                    "a bootstrap market's returns are its history's: give the segment's weights",
                ));
            }
            let weights = segment.weights.as_ref().ok_or_else(|| {
                ValidationError::new(at("weights"), "is required under a bootstrap market")
            })?;
            check_weights(weights, n, &at("weights"))?;
            out.push((segment.start_month, weights.clone()));
        }
        return Ok(out);
    }
    match &market.weights {
        Some(weights) => {
            check_weights(weights, n, "market.weights")?;
            Ok(vec![(0, weights.clone())])
        }
        None if n == 1 => Ok(vec![(0, vec![1.0])]),
        None => Err(ValidationError::new(
            "market.weights",
            format!(
                "is required with a history of {n} assets: one weight each, in its order ({})",
                history.assets.join(", ")
            ),
        )),
    }
}

impl MarketSchedule {
    /// Append `horizon` months of `segments` (start month, μ, σ).
    fn push_segments(&mut self, segments: &[(u32, f64, f64)], horizon: u32, fee: f64) {
        for (i, &(start, mu, sigma)) in segments.iter().enumerate() {
            let end = segments.get(i + 1).map_or(horizon, |s| s.0);
            let (d, v) = monthly_lognormal(mu, sigma);
            // The fee folds into the month's deterministic factor: G_t · (1 − f)^(1/12) is
            // (exp(m/12) · (1 − f)^(1/12)) · exp(s·Z/√12), the same on every backend; without
            // a fee the factor is exactly 1 and the drift keeps its bits.
            let d = d * fee;
            // Under t, §1's monthly mean E[G] = exp(m/12 + s²/24) and relative SD
            // sqrt(exp(s²/12) − 1) around the t shock (crate::student_t).
            let (d, v) = match self.student_t {
                None => (d, v),
                Some(_) => (d * (v * v / 2.0).exp(), (v * v).exp_m1().sqrt()),
            };
            for _ in start..end {
                self.drift.push(d);
                self.volatility.push(v as f32);
            }
        }
    }
}

/// A Student-t `market.model`'s constants, checked.
fn student_t_of(df: f64) -> Result<StudentT, ValidationError> {
    if df.is_finite() && df > 2.0 && df <= MAX_DF {
        Ok(StudentT::new(df))
    } else {
        Err(ValidationError::new(
            "market.model.df",
            format!("must be above 2 and at most {MAX_DF:e}, got {df}"),
        ))
    }
}

/// A regime `market.model`'s chain, checked: 1 … [`MAX_REGIMES`] named regimes, a K × K
/// transition matrix of probabilities whose rows sum to 1, and a start the chain can take.
fn regime_chain(
    regimes: &[Regime],
    transition: &[Vec<f64>],
    initial: RegimeStart,
) -> Result<RegimeChain, ValidationError> {
    let k = regimes.len();
    if !(1..=MAX_REGIMES).contains(&k) {
        return Err(ValidationError::new(
            "market.model.regimes",
            format!("must have between 1 and {MAX_REGIMES} regimes, got {k}"),
        ));
    }
    let mut names: Vec<String> = Vec::with_capacity(k);
    for (i, regime) in regimes.iter().enumerate() {
        let name = regime.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ValidationError::new(
                format!("market.model.regimes[{i}].name"),
                "must be 1 to 64 characters",
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(ValidationError::new(
                format!("market.model.regimes[{i}].name"),
                format!("must be unique, but {name:?} is used twice"),
            ));
        }
        names.push(name.to_string());
    }
    if transition.len() != k {
        return Err(ValidationError::new(
            "market.model.transition",
            format!(
                "must have one row per regime ({k}), got {}",
                transition.len()
            ),
        ));
    }
    for (i, row) in transition.iter().enumerate() {
        if row.len() != k {
            return Err(ValidationError::new(
                format!("market.model.transition[{i}]"),
                format!(
                    "must have one probability per regime ({k}), got {}",
                    row.len()
                ),
            ));
        }
        for (j, &p) in row.iter().enumerate() {
            if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
                return Err(ValidationError::new(
                    format!("market.model.transition[{i}][{j}]"),
                    format!("must be a probability in [0, 1], got {p}"),
                ));
            }
        }
        let sum: f64 = row.iter().sum();
        if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
            return Err(ValidationError::new(
                format!("market.model.transition[{i}]"),
                format!("must sum to 1 within {ROW_SUM_TOLERANCE:e}, got {sum}"),
            ));
        }
    }
    let start = match initial {
        RegimeStart::Index(index) if index as usize >= k => {
            return Err(ValidationError::new(
                "market.model.initial",
                format!("must be \"stationary\" or a regime's index below {k}, got {index}"),
            ))
        }
        RegimeStart::Index(index) => Some(index as usize),
        RegimeStart::Named(RegimeStartName::Stationary) => None,
    };
    RegimeChain::new(names, transition, start).ok_or_else(|| {
        ValidationError::new(
            "market.model.initial",
            "\"stationary\" needs a chain with one stationary distribution, but this one has several (it has more than one closed set of regimes); give the starting regime's index",
        )
    })
}

/// The market of regime `k`: the market with the μ and σ (its own or its assets') that the
/// regime overrides, each checked under the regime's field name.
fn regime_market(market: &Market, regime: &Regime, k: usize) -> Result<Market, ValidationError> {
    let at = |name: &str| format!("market.model.regimes[{k}].{name}");
    let mut in_regime = market.clone();
    in_regime.model = ReturnModel::Lognormal;
    let portfolio_level = regime.expected_return.is_some() || regime.volatility.is_some();
    if portfolio_level && (market.assets.is_some() || market.glide_path.is_some()) {
        return Err(ValidationError::new(
            at(if regime.expected_return.is_some() {
                "expected_return"
            } else {
                "volatility"
            }),
            "cannot be combined with market.assets or market.glide_path: give the regime's assets' values in `assets`",
        ));
    }
    if let Some(mu) = regime.expected_return {
        expected_return(&at("expected_return"), mu)?;
        in_regime.expected_return = Some(mu);
    }
    if let Some(sigma) = regime.volatility {
        volatility(&at("volatility"), sigma)?;
        in_regime.volatility = Some(sigma);
    }
    if let Some(overrides) = &regime.assets {
        let assets = in_regime
            .assets
            .as_mut()
            .ok_or_else(|| ValidationError::new(at("assets"), "needs market.assets"))?;
        if overrides.len() != assets.len() {
            return Err(ValidationError::new(
                at("assets"),
                format!(
                    "must have one entry per market.assets ({}), got {}",
                    assets.len(),
                    overrides.len()
                ),
            ));
        }
        for (i, (asset, change)) in assets.iter_mut().zip(overrides).enumerate() {
            if let Some(mu) = change.expected_return {
                expected_return(&at(&format!("assets[{i}].expected_return")), mu)?;
                asset.expected_return = mu;
            }
            if let Some(sigma) = change.volatility {
                volatility(&at(&format!("assets[{i}].volatility")), sigma)?;
                asset.volatility = sigma;
            }
        }
    }
    Ok(in_regime)
}

/// (1 − f)^(1/12) of `market.fee` = f, checked.
fn monthly_fee_factor(fee: f64) -> Result<f64, ValidationError> {
    check_fee("market.fee", fee)?;
    Ok((1.0 - fee).powf(1.0 / 12.0))
}

/// A fee (`field`) is an annual rate in [0, 1).
pub(crate) fn check_fee(field: &str, fee: f64) -> Result<(), ValidationError> {
    if fee.is_finite() && (0.0..1.0).contains(&fee) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be an annual rate of at least 0 and below 1, got {fee}"),
        ))
    }
}

/// The market's piecewise-constant (start month, μ, σ) segments, checked.
fn market_segments(
    market: &Market,
    horizon: u32,
    horizon_field: &str,
) -> Result<Vec<(u32, f64, f64)>, ValidationError> {
    let assets = match &market.assets {
        Some(assets) => Some(checked_assets(market, assets.len())?),
        None => None,
    };
    if let Some(glide) = &market.glide_path {
        for (field, present) in [
            ("market.expected_return", market.expected_return.is_some()),
            ("market.volatility", market.volatility.is_some()),
            ("market.weights", market.weights.is_some()),
            // Correlations describe assets; without them they would be silently unused.
            (
                "market.correlations",
                market.correlations.is_some() && assets.is_none(),
            ),
        ] {
            if present {
                return Err(ValidationError::new(
                    field,
                    "cannot be combined with market.glide_path (give it in each segment)",
                ));
            }
        }
        return glide_segments(glide, assets.as_ref(), horizon, horizon_field);
    }
    if let Some(assets) = &assets {
        for (field, present) in [
            ("market.expected_return", market.expected_return.is_some()),
            ("market.volatility", market.volatility.is_some()),
        ] {
            if present {
                return Err(ValidationError::new(
                    field,
                    "cannot be combined with market.assets (the portfolio's μ and σ come from the weights)",
                ));
            }
        }
        let weights = market.weights.as_ref().ok_or_else(|| {
            ValidationError::new("market.weights", "is required with market.assets")
        })?;
        let (mu, sigma) = assets.portfolio(weights, "market.weights")?;
        return Ok(vec![(0, mu, sigma)]);
    }
    if market.weights.is_some() {
        return Err(ValidationError::new(
            "market.weights",
            "needs market.assets",
        ));
    }
    if market.correlations.is_some() {
        return Err(ValidationError::new(
            "market.correlations",
            "needs market.assets",
        ));
    }
    let mu = market.expected_return.ok_or_else(|| {
        ValidationError::new(
            "market.expected_return",
            "is required unless market.assets or market.glide_path is given",
        )
    })?;
    let sigma = market.volatility.ok_or_else(|| {
        ValidationError::new(
            "market.volatility",
            "is required unless market.assets or market.glide_path is given",
        )
    })?;
    expected_return("market.expected_return", mu)?;
    volatility("market.volatility", sigma)?;
    Ok(vec![(0, mu, sigma)])
}

fn glide_segments(
    glide: &[GlideSegment],
    assets: Option<&CheckedAssets>,
    horizon: u32,
    horizon_field: &str,
) -> Result<Vec<(u32, f64, f64)>, ValidationError> {
    if glide.is_empty() {
        return Err(ValidationError::new(
            "market.glide_path",
            "must have at least one segment",
        ));
    }
    let mut out = Vec::with_capacity(glide.len());
    for (i, segment) in glide.iter().enumerate() {
        let at = |name: &str| format!("market.glide_path[{i}].{name}");
        let start = segment.start_month;
        let previous = out.last().map(|s: &(u32, f64, f64)| s.0);
        check_segment_start(i, start, previous, horizon, horizon_field)?;
        let (mu, sigma) = match (
            &segment.weights,
            segment.expected_return,
            segment.volatility,
        ) {
            (Some(weights), None, None) => {
                let assets = assets
                    .ok_or_else(|| ValidationError::new(at("weights"), "needs market.assets"))?;
                assets.portfolio(weights, &at("weights"))?
            }
            (None, Some(mu), Some(sigma)) => {
                expected_return(&at("expected_return"), mu)?;
                volatility(&at("volatility"), sigma)?;
                (mu, sigma)
            }
            (Some(_), _, _) => {
                return Err(ValidationError::new(
                    at("weights"),
                    "give either weights or expected_return and volatility, not both",
                ))
            }
            (None, None, _) => {
                return Err(ValidationError::new(
                    at("expected_return"),
                    "is required (or give weights)",
                ))
            }
            (None, Some(_), None) => {
                return Err(ValidationError::new(
                    at("volatility"),
                    "is required with expected_return",
                ))
            }
        };
        out.push((start, mu, sigma));
    }
    Ok(out)
}

/// Glide segment `i`'s start month: the first at month 0, each after `previous`, all before
/// the horizon.
fn check_segment_start(
    i: usize,
    start: u32,
    previous: Option<u32>,
    horizon: u32,
    horizon_field: &str,
) -> Result<(), ValidationError> {
    let field = format!("market.glide_path[{i}].start_month");
    if i == 0 && start != 0 {
        return Err(ValidationError::new(
            field,
            format!("the first segment must start at month 0, got {start}"),
        ));
    }
    if let Some(previous) = previous {
        if start <= previous {
            return Err(ValidationError::new(
                field,
                format!("segments must be in increasing order of start_month: {start} follows {previous}"),
            ));
        }
    }
    if start >= horizon && i > 0 {
        return Err(ValidationError::new(
            field,
            format!("must be below {horizon_field} ({horizon}), got {start}"),
        ));
    }
    Ok(())
}

/// Asset classes whose returns, volatilities and correlations passed their checks.
struct CheckedAssets {
    mu: Vec<f64>,
    /// D R D: the assets' covariance.
    covariance: DMatrix<f64>,
}

impl CheckedAssets {
    /// μ = wᵀμₖ, σ = sqrt(wᵀ D R D w) for long-only weights summing to 1.
    fn portfolio(&self, weights: &[f64], field: &str) -> Result<(f64, f64), ValidationError> {
        check_weights(weights, self.mu.len(), field)?;
        let w = nalgebra::DVector::from_column_slice(weights);
        let mu = self.mu.iter().zip(weights).map(|(m, w)| m * w).sum();
        let variance = (w.transpose() * &self.covariance * &w)[(0, 0)].max(0.0);
        Ok((mu, variance.sqrt()))
    }
}

/// Long-only weights (`field`) over `n` assets, summing to 1.
fn check_weights(weights: &[f64], n: usize, field: &str) -> Result<(), ValidationError> {
    if weights.len() != n {
        return Err(ValidationError::new(
            field,
            format!(
                "must have one weight per asset ({n}), got {}",
                weights.len()
            ),
        ));
    }
    for (i, &w) in weights.iter().enumerate() {
        if !w.is_finite() || w < 0.0 {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!("must be a finite weight ≥ 0 (long-only), got {w}"),
            ));
        }
    }
    let sum: f64 = weights.iter().sum();
    if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
        return Err(ValidationError::new(
            field,
            format!("must sum to 1 within {WEIGHT_SUM_TOLERANCE:e}, got {sum}"),
        ));
    }
    Ok(())
}

fn checked_assets(market: &Market, n: usize) -> Result<CheckedAssets, ValidationError> {
    let assets = market.assets.as_deref().unwrap_or_default();
    if n == 0 {
        return Err(ValidationError::new(
            "market.assets",
            "must have at least one asset",
        ));
    }
    for (i, asset) in assets.iter().enumerate() {
        expected_return(
            &format!("market.assets[{i}].expected_return"),
            asset.expected_return,
        )?;
        volatility(&format!("market.assets[{i}].volatility"), asset.volatility)?;
    }
    let correlations = match &market.correlations {
        Some(rows) => checked_correlations(rows, n)?,
        None => DMatrix::identity(n, n),
    };
    let d = DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(
        n,
        assets.iter().map(|a| a.volatility),
    ));
    Ok(CheckedAssets {
        mu: assets.iter().map(|a| a.expected_return).collect(),
        covariance: &d * correlations * &d,
    })
}

/// A correlation matrix must be n × n, finite, within [−1, 1], symmetric, unit-diagonal and
/// positive semi-definite.
pub fn checked_correlations(rows: &[Vec<f64>], n: usize) -> Result<DMatrix<f64>, ValidationError> {
    const FIELD: &str = "market.correlations";
    let matrix = crate::portfolio::correlation_rows(rows, n, FIELD)?;
    let smallest = SymmetricEigen::new(matrix.clone()).eigenvalues.min();
    if smallest < -1e-9 {
        return Err(ValidationError::new(
            FIELD,
            format!("must be positive semi-definite, its smallest eigenvalue is {smallest:.3e}"),
        ));
    }
    Ok(matrix)
}

pub(crate) fn percentiles(requested: &[f64]) -> Result<Vec<f64>, ValidationError> {
    if requested.len() > MAX_PERCENTILES {
        return Err(ValidationError::new(
            "options.percentiles",
            format!(
                "at most {MAX_PERCENTILES} percentiles, got {}",
                requested.len()
            ),
        ));
    }
    for (i, &p) in requested.iter().enumerate() {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return Err(ValidationError::new(
                format!("options.percentiles[{i}]"),
                format!("must be in [0, 100], got {p}"),
            ));
        }
    }
    let mut sorted = requested.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    Ok(sorted)
}

pub(crate) fn amount(field: &str, value: f64) -> Result<(), ValidationError> {
    if value.is_finite() && (0.0..=MAX_AMOUNT).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be between 0 and {MAX_AMOUNT:e}, got {value}"),
        ))
    }
}

pub(crate) fn growth_rate(field: &str, value: f64) -> Result<(), ValidationError> {
    if value.is_finite() && value > -1.0 && value <= MAX_RATE {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be in (-1, {MAX_RATE}], got {value}"),
        ))
    }
}

fn expected_return(field: &str, value: f64) -> Result<(), ValidationError> {
    if value.is_finite() && value > -1.0 && value <= MAX_RATE {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be in (-1, {MAX_RATE}] (a gross return 1+μ > 0), got {value}"),
        ))
    }
}

fn volatility(field: &str, value: f64) -> Result<(), ValidationError> {
    if value.is_finite() && (0.0..=MAX_RATE).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be between 0 and {MAX_RATE}, got {value}"),
        ))
    }
}

fn month_within(field: &str, month: u32, horizon: u32) -> Result<(), ValidationError> {
    if month <= horizon {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be between 0 and goal.horizon_months ({horizon}), got {month}"),
        ))
    }
}
