//! The engine's front door: requests in, results out, on one [`Device`].
//!
//! Every operation follows the same path — validate, batch, run on the backend, build the
//! result — so the CLI and the service get the same numbers and the same errors.

use std::sync::Arc;

use thiserror::Error;

use crate::backend::{BackendError, CpuBackend, Detail, Device, SimulationBackend, Summary, Watch};
use crate::plan::{build_plan_result, prepare_plan, PlanRequest, PlanResult, PreparedPlan, Yearly};
use crate::request::GoalRequest;
use crate::result::{
    DepletionStats, Percentiles, PrecisionReport, RealWealth, RealYearlyStats, RebalancingStats,
    Sampling, SimulationResult, TerminalStats, YearlyStats, ENGINE_VERSION,
};
use crate::validate::{prepare, PreparedGoal, ValidationError};

/// Why an operation returned no result.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    /// The request broke a bound; the error names the field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Runs the models of docs/model.md on one device.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    device: Device,
    /// Every run of this engine reports to it and stops when it is cancelled: how a caller's
    /// deadline or disconnect stops a solver, a what-if or a sweep between blocks of paths.
    /// An engine from [`Engine::new`] has one that nobody cancels.
    watch: Arc<Watch>,
}

impl Engine {
    pub fn new(device: Device) -> Self {
        Engine {
            device,
            watch: Arc::default(),
        }
    }

    /// This engine on the same device, its every run watched by `watch` (progress, and
    /// cancellation between blocks of paths).
    pub fn watched(&self, watch: Arc<Watch>) -> Engine {
        Engine {
            device: self.device.clone(),
            watch,
        }
    }

    /// The watch every run of this engine reports to (for work outside the backend, such as
    /// the frontier's resampling, to stop with the rest).
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    fn check_cancelled(&self) -> Result<(), EngineError> {
        if self.watch.is_cancelled() {
            return Err(BackendError::Cancelled.into());
        }
        Ok(())
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn backend(&self) -> &dyn SimulationBackend {
        self.device.backend()
    }

    /// The goal Monte Carlo of one request.
    pub fn simulate(&self, request: &GoalRequest) -> Result<SimulationResult, EngineError> {
        let goal = prepare(request)?;
        Ok(self.run(std::slice::from_ref(&goal))?.remove(0))
    }

    /// Many requests in one batch. An invalid request fails the batch, and the error's field
    /// says which one (`requests[3].goal.horizon_months`).
    pub fn simulate_batch(
        &self,
        requests: &[GoalRequest],
    ) -> Result<Vec<SimulationResult>, EngineError> {
        let goals = prepare_all(requests, "requests")?;
        self.run(&goals)
    }

    /// Full results of prepared goals, in order.
    pub fn run(&self, goals: &[PreparedGoal]) -> Result<Vec<SimulationResult>, EngineError> {
        self.run_watched(goals, &self.watch)
    }

    /// [`Engine::run`] with its progress reported to `watch`, which can also cancel it.
    ///
    /// Goals with a precision target (docs/model.md §6) run in rounds: after each, those
    /// whose standard error is still above the target run again with more paths (at least
    /// double, [`crate::sampler::PrecisionTarget::next_paths`]) until it is met or
    /// `max_paths` stops them; each round is one batch of the goals still going.
    pub fn run_watched(
        &self,
        goals: &[PreparedGoal],
        watch: &Watch,
    ) -> Result<Vec<SimulationResult>, EngineError> {
        let mut results = self.run_round(goals, watch)?;
        if goals.iter().all(|g| g.precision.is_none()) {
            return Ok(results);
        }
        // Per goal: its last round's goal (when not the first), rounds run, paths simulated.
        let mut last: Vec<Option<PreparedGoal>> = vec![None; goals.len()];
        let mut rounds: Vec<(u32, u64)> = goals.iter().map(|g| (1, g.paths)).collect();
        let mut going: Vec<bool> = goals.iter().map(|g| g.precision.is_some()).collect();
        loop {
            let mut batch = Vec::new();
            let mut which = Vec::new();
            for (i, original) in goals.iter().enumerate() {
                let goal = last[i].as_ref().unwrap_or(original);
                let (Some(target), true) = (goal.precision, going[i]) else {
                    continue;
                };
                let se = results[i].standard_error;
                let next = (se > target.success_probability)
                    .then(|| target.next_paths(goal.sampler, goal.paths, se))
                    .flatten();
                let Some(paths) = next else {
                    going[i] = false;
                    continue;
                };
                let mut more = goal.clone();
                (more.sampler, more.paths) = goal.sampler.with_paths(paths);
                batch.push(more);
                which.push(i);
            }
            if batch.is_empty() {
                break;
            }
            let round = self.run_round(&batch, watch)?;
            for ((i, goal), result) in which.into_iter().zip(batch).zip(round) {
                rounds[i].0 += 1;
                rounds[i].1 += goal.paths;
                results[i] = result;
                last[i] = Some(goal);
            }
        }
        for ((goal, result), (rounds, simulated)) in goals.iter().zip(&mut results).zip(rounds) {
            if let (Some(target), Some(sampling)) = (goal.precision, result.sampling.as_mut()) {
                sampling.precision = Some(PrecisionReport {
                    target: target.success_probability,
                    met: result.standard_error <= target.success_probability,
                    rounds,
                    paths_simulated: simulated,
                });
            }
        }
        Ok(results)
    }

    /// One round of goals, each as it stands, on the engine's device (every backend draws
    /// every sampler: docs/model.md §6).
    fn run_round(
        &self,
        goals: &[PreparedGoal],
        watch: &Watch,
    ) -> Result<Vec<SimulationResult>, EngineError> {
        let backend = self.backend();
        let summaries = backend.simulate_watched(goals, Detail::Full, watch)?;
        let name = backend.info().name;
        Ok(goals
            .iter()
            .zip(summaries)
            .map(|(goal, summary)| build_result(goal, summary, name))
            .collect())
    }

    /// Success counts (and terminal means) only: what the solvers' searches need.
    pub fn success(&self, goals: &[PreparedGoal]) -> Result<Vec<Summary>, EngineError> {
        Ok(self
            .backend()
            .simulate_watched(goals, Detail::Success, &self.watch)?)
    }

    /// The household plan of one request (docs/model.md §5).
    pub fn plan(&self, request: &PlanRequest) -> Result<PlanResult, EngineError> {
        let plan = prepare_plan(request)?;
        self.run_plan(&plan)
    }

    /// A prepared plan, watched like every run of this engine, on the engine's device; where
    /// that device cannot run plans, on the CPU, and the result's `backend` says why.
    pub fn run_plan(&self, plan: &PreparedPlan) -> Result<PlanResult, EngineError> {
        Ok(self
            .run_plans_keeping(std::slice::from_ref(plan), Yearly::Percentiles)?
            .remove(0))
    }

    /// [`Engine::run_plan`] without the yearly fan charts (`yearly` is empty, every other
    /// output the same): what the solvers compare, at less cost.
    pub fn run_plan_outcomes(&self, plan: &PreparedPlan) -> Result<PlanResult, EngineError> {
        Ok(self
            .run_plans_outcomes(std::slice::from_ref(plan))?
            .remove(0))
    }

    /// [`Engine::run_plan_outcomes`] of several plans side by side (a solver's candidates):
    /// one launch on a GPU, in parallel on the CPU. Results in the plans' order.
    pub fn run_plans_outcomes(
        &self,
        plans: &[PreparedPlan],
    ) -> Result<Vec<PlanResult>, EngineError> {
        self.run_plans_keeping(plans, Yearly::Skip)
    }

    fn run_plans_keeping(
        &self,
        plans: &[PreparedPlan],
        yearly: Yearly,
    ) -> Result<Vec<PlanResult>, EngineError> {
        self.check_cancelled()?;
        let device = self.backend();
        let name = device.info().name;
        let (samples, backend) = match device.simulate_plans(plans, yearly, &self.watch) {
            Ok(samples) => (samples, name.to_string()),
            Err(BackendError::Unavailable { reason, .. }) => (
                CpuBackend::new().simulate_plans(plans, yearly, &self.watch)?,
                format!("cpu (plans cannot run on the {name} backend: {reason})"),
            ),
            Err(e) => return Err(e.into()),
        };
        Ok(plans
            .iter()
            .zip(samples)
            .map(|(plan, samples)| build_plan_result(plan, samples, &backend))
            .collect())
    }

    /// W_T of every path of `goal` (the solvers' break-even pass), unless cancelled first.
    pub fn terminal_wealth(&self, goal: &PreparedGoal) -> Result<Vec<f64>, EngineError> {
        self.check_cancelled()?;
        // Every backend computes per-path values on the CPU, under any sampler.
        let wealth = self.backend().terminal_wealth(goal);
        self.watch.advance(goal.path_steps());
        self.check_cancelled()?;
        Ok(wealth)
    }
}

/// Prepare every request, naming the failing one by its index under `list`.
pub fn prepare_all(
    requests: &[GoalRequest],
    list: &str,
) -> Result<Vec<PreparedGoal>, ValidationError> {
    requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            prepare(r)
                .map_err(|e| ValidationError::new(format!("{list}[{i}].{}", e.field), e.problem))
        })
        .collect()
}

/// The result of docs/model.md §1 from a backend's summary.
pub fn build_result(goal: &PreparedGoal, summary: Summary, backend: &str) -> SimulationResult {
    let n = summary.paths as f64;
    let p = summary.success_probability();
    let (standard_error, depletion_standard_error) = summary.standard_errors();
    let mut nominal = summary.snapshots;
    // Under a stochastic index the second half of the snapshots is real wealth.
    let real = goal.stochastic_index().then(|| {
        let real = nominal.split_off(nominal.len() / 2);
        let last = real.last().expect("a summary always holds the horizon");
        RealWealth {
            terminal: TerminalStats {
                mean: last.mean,
                percentiles: Percentiles(last.percentiles.clone()),
            },
            yearly: real
                .into_iter()
                .map(|s| RealYearlyStats {
                    month: s.month,
                    percentiles: Percentiles(s.percentiles),
                    mean: s.mean,
                })
                .collect(),
        }
    });
    let terminal = nominal
        .last()
        .expect("a summary always holds the horizon")
        .clone();
    SimulationResult {
        success_probability: p,
        standard_error,
        target_nominal: goal.target_nominal,
        terminal: TerminalStats {
            mean: terminal.mean,
            percentiles: Percentiles(terminal.percentiles),
        },
        yearly: nominal
            .into_iter()
            .map(|s| YearlyStats {
                month: s.month,
                percentiles: Percentiles(s.percentiles),
                mean: s.mean,
                depleted: s.depleted as f64 / n,
            })
            .collect(),
        depletion: DepletionStats {
            probability: summary.depleted as f64 / n,
            median_month: summary.median_depletion_month,
        },
        shortfall: summary.shortfall,
        real,
        clamped_months: goal.student_t.map(|_| summary.clamped_months),
        rebalancing: goal.asset_paths.as_ref().map(|assets| {
            let per_path = summary.turnover / n;
            RebalancingStats {
                rule: assets.rule.name().to_string(),
                mean_rebalances: summary.rebalances as f64 / n,
                mean_turnover: per_path,
                mean_annual_turnover: per_path / (f64::from(goal.horizon) / 12.0),
            }
        }),
        sampling: Some(Sampling {
            sampler: goal.sampler.name().to_string(),
            replicates: goal.sampler.replicates(),
            depletion_standard_error,
            precision: None,
        }),
        paths: summary.paths,
        seed: goal.seed,
        backend: backend.to_string(),
        engine_version: ENGINE_VERSION.to_string(),
    }
}
