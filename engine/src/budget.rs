//! The work an operation will do, counted before it runs, so that a service can refuse a
//! request that exceeds its budget with the field that makes it large, instead of finding out
//! a minute later (issue 11).
//!
//! The unit is the path-step (one path advanced one month); frontier resampling counts one
//! unit per random draw and per weight evaluated, which costs about as much. Every count is an
//! upper bound: a solver is counted at its iteration cap, a variant that patches the horizon at
//! the longer horizon.

use serde_json::Value;

use crate::frontier::FrontierRequest;
use crate::plan::solve::{claiming_runs, withdrawal_order_runs, MAX_SPENDING_RUNS};
use crate::plan::PreparedPlan;
use crate::request::{GoalRequest, Options};
use crate::risk::RiskRequest;
use crate::scenarios::{SensitivityRequest, WhatIfRequest, DEFAULT_INPUTS};
use crate::sweep::SweepRequest;
use crate::validate::{ValidationError, MAX_AMOUNT};

/// Cent-by-cent raises of a break-even answer before the solver bisects instead.
pub const MAX_CENT_RAISES: u64 = 16;

/// ⌈log4(1e17 / 1e4)⌉: the bracket's growth by ×4 from $100 to the largest amount in cents.
const GROWTH_STEPS: u64 = 22;
/// ⌈log2(1e17)⌉: halvings of that bracket down to one cent.
const HALVINGS: u64 = 57;

/// Simulations a solver runs at most, over its two paths: bisection runs the zero value, the
/// growth, the halvings and the final full run (81); break-even runs two passes, at most
/// [`MAX_CENT_RAISES`] checks, then at worst a bisection from there (its start, the growth and
/// the halvings) and the full run.
pub const MAX_SOLVER_RUNS: u64 = 2 + MAX_CENT_RAISES + 1 + GROWTH_STEPS + HALVINGS + 1;

// The cent bracket the counts above assume.
const _: () = assert!(MAX_AMOUNT == 1e15);

/// An operation's counted work: one run's (paths × months, named by `options.paths`) times
/// the runs the operation makes (named by the field that multiplies them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub units: u64,
    /// One run's work and the field that sizes it.
    pub one_run: u64,
    pub one_run_field: &'static str,
    /// The field that multiplies runs (`variants`, `sensitivity.inputs`…).
    pub runs_field: &'static str,
    /// What is counted, in words, for the error.
    pub what: &'static str,
}

impl Work {
    fn new(
        what: &'static str,
        (one_run, one_run_field): (u64, &'static str),
        (runs, runs_field): (u64, &'static str),
    ) -> Work {
        Work {
            units: one_run.saturating_mul(runs),
            one_run,
            one_run_field,
            runs_field,
            what,
        }
    }

    /// The field a caller should change: the one run's when it alone is over the limit,
    /// else what multiplies the runs.
    pub fn field(&self, limit: u64) -> &'static str {
        if self.one_run > limit {
            self.one_run_field
        } else {
            self.runs_field
        }
    }

    /// An error naming the field when the work is above `limit`.
    pub fn within(&self, limit: u64) -> Result<(), ValidationError> {
        if self.units <= limit {
            return Ok(());
        }
        Err(ValidationError::new(
            self.field(limit),
            format!(
                "{} must be at most {limit} path-steps, got {} ({:.3e})",
                self.what, self.units, self.units as f64
            ),
        ))
    }
}

/// paths × months of a goal.
fn goal_steps(paths: u64, months: u32) -> (u64, &'static str) {
    (paths.saturating_mul(u64::from(months)), "options.paths")
}

/// paths × months of a goal's options: under a precision target every round's paths up to
/// `options.max_paths`, which the error then names.
fn options_steps(options: &Options, months: u32) -> (u64, &'static str) {
    let (steps, _) = goal_steps(options.most_paths(), months);
    let field = if options.precision.is_some() {
        "options.max_paths"
    } else {
        "options.paths"
    };
    (steps, field)
}

/// One goal: paths × months.
pub fn goal(request: &GoalRequest) -> Work {
    let one = options_steps(&request.options, request.goal.horizon_months);
    Work::new("paths × months", one, (1, "options.paths"))
}

/// A solver: the goal at every run it may make.
pub fn solver(request: &GoalRequest) -> Work {
    let one = options_steps(&request.options, request.goal.horizon_months);
    Work::new(
        "a solver's paths × months × runs",
        one,
        (MAX_SOLVER_RUNS, "options.paths"),
    )
}

/// A patch's `horizon_months`, where it sets one.
fn patched_horizon(patch: &serde_json::Map<String, Value>) -> u32 {
    patch
        .get("horizon_months")
        .and_then(Value::as_u64)
        .map_or(0, |h| u32::try_from(h).unwrap_or(u32::MAX))
}

/// The base and every variant, each at the longest horizon among them.
pub fn what_if(request: &WhatIfRequest) -> Work {
    let months = request
        .variants
        .iter()
        .map(|v| patched_horizon(&v.goal))
        .fold(request.goal.horizon_months, u32::max);
    Work::new(
        "paths × months over the base and its variants",
        options_steps(&request.options, months),
        (1 + request.variants.len() as u64, "variants"),
    )
}

/// The base and two moves of each input, at the horizon moved up by the step.
pub fn sensitivity(request: &SensitivityRequest) -> Work {
    let inputs = request
        .sensitivity
        .inputs
        .as_ref()
        .map_or(DEFAULT_INPUTS.len(), Vec::len) as u64;
    // An integer input moves to round(v·(1 ± step)), at least one away from v.
    let step = request.sensitivity.relative_step;
    let horizon = request.goal.horizon_months;
    let stretch = if step.is_finite() && step > 0.0 {
        ((f64::from(horizon) * step.min(1.0)).ceil() as u32).max(1)
    } else {
        0
    };
    Work::new(
        "paths × months over the base and 2 moves an input",
        options_steps(&request.options, horizon.saturating_add(stretch)),
        (1 + 2 * inputs, "sensitivity.inputs"),
    )
}

/// The goal at each frontier point (a sweep solves the frontier but never resamples it).
pub fn sweep(request: &SweepRequest) -> Work {
    Work::new(
        "paths × months × frontier points",
        options_steps(&request.options, request.goal.horizon_months),
        (u64::from(request.frontier.points), "frontier.points"),
    )
}

/// Resampling: each resample draws observations × assets normals and reads off every point's
/// weights. A plain frontier is counted at its points × assets.
pub fn frontier(request: &FrontierRequest) -> Work {
    let assets = request.assets.len() as u64;
    let plain = u64::from(request.points).saturating_mul(assets);
    match &request.resample {
        None => Work::new("points × assets", (plain, "points"), (1, "points")),
        Some(options) => Work::new(
            "resamples × (observations × assets + points × assets)",
            (
                u64::from(options.observations)
                    .saturating_mul(assets)
                    .saturating_add(plain),
                "resample.observations",
            ),
            (u64::from(options.resamples), "resample.resamples"),
        ),
    }
}

/// The risk Monte Carlo: paths × months (the allocation is reduced to one portfolio first, so
/// its assets do not multiply the paths).
pub fn risk(request: &RiskRequest) -> Work {
    Work::new(
        "paths × months",
        goal_steps(request.options.paths, request.horizon_months.max(12)),
        (1, "options.paths"),
    )
}

/// The plan operations, each a number of runs of one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanOperation {
    /// One run.
    Simulate,
    /// The sustainable-spending search, at its run cap.
    SustainableSpending,
    /// Every combination of candidate claim ages.
    Claiming,
    /// The withdrawal orders side by side.
    WithdrawalOrders,
}

/// A plan (validated: its horizon is the longest life it allows) at every run `operation`
/// makes: paths × months × runs.
pub fn plan(plan: &PreparedPlan, operation: PlanOperation) -> Work {
    let one = (plan.path_steps(), "options.paths");
    match operation {
        PlanOperation::Simulate => Work::new("paths × months", one, (1, "options.paths")),
        PlanOperation::SustainableSpending => Work::new(
            "the spending search's paths × months × runs",
            one,
            (MAX_SPENDING_RUNS, "options.paths"),
        ),
        PlanOperation::Claiming => Work::new(
            "paths × months × combinations of claim ages",
            one,
            (claiming_runs(plan), "plan.social_security"),
        ),
        PlanOperation::WithdrawalOrders => Work::new(
            "paths × months × withdrawal orders",
            one,
            (withdrawal_order_runs(plan), "options.paths"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(paths: u64, months: u32) -> GoalRequest {
        serde_json::from_value(serde_json::json!({
            "goal": {"horizon_months": months},
            "market": {"expected_return": 0.05, "volatility": 0.1},
            "options": {"paths": paths}
        }))
        .unwrap()
    }

    #[test]
    fn the_solver_run_cap_covers_the_bracket_and_the_bisection() {
        // The bracket grows ×4 from 10,000 cents until it passes the largest amount in cents.
        let max_cents = (MAX_AMOUNT * 100.0) as u64;
        let mut b = 10_000u64;
        let mut growth = 0;
        while b < max_cents {
            b = (b * 4).min(max_cents);
            growth += 1;
        }
        let halvings = (max_cents as f64).log2().ceil() as u64;
        assert_eq!((growth, halvings), (GROWTH_STEPS, HALVINGS));
        // Bisection: zero, growth, halvings, the full run.
        let bisection = 1 + growth + halvings + 1;
        // Break-even: two passes, the raises, a bisection from there, the full run.
        let break_even = 2 + MAX_CENT_RAISES + 1 + growth + halvings + 1;
        assert!(bisection <= MAX_SOLVER_RUNS);
        assert_eq!(break_even, MAX_SOLVER_RUNS);
    }

    #[test]
    fn work_names_the_field_and_the_bound() {
        let work = solver(&request(100_000, 1200));
        assert_eq!(work.units, 100_000 * 1200 * MAX_SOLVER_RUNS);
        let err = work.within(2_000_000_000).unwrap_err();
        assert_eq!(err.field, "options.paths");
        assert!(
            err.problem.contains("at most 2000000000 path-steps"),
            "{err}"
        );
        assert!(goal(&request(1000, 12)).within(12_000).is_ok());
        assert!(goal(&request(1000, 12)).within(11_999).is_err());
    }

    #[test]
    fn the_field_named_is_the_one_run_when_it_alone_is_over() {
        let r: SensitivityRequest = serde_json::from_value(serde_json::json!({
            "goal": {"horizon_months": 1000},
            "market": {"expected_return": 0.05, "volatility": 0.1},
            "options": {"paths": 3_000_000}
        }))
        .unwrap();
        // 3e9 path-steps a run: the paths are what to cut.
        let err = sensitivity(&r).within(2_000_000_000).unwrap_err();
        assert_eq!(err.field, "options.paths");
        // 3e8 a run, 21 runs: the inputs are.
        let mut r = r;
        r.options.paths = Some(300_000);
        let err = sensitivity(&r).within(2_000_000_000).unwrap_err();
        assert_eq!(err.field, "sensitivity.inputs");
    }

    #[test]
    fn sensitivity_counts_two_runs_an_input_at_the_stretched_horizon() {
        let mut r: SensitivityRequest = serde_json::from_value(serde_json::json!({
            "goal": {"horizon_months": 100, "monthly_contribution": 10},
            "market": {"expected_return": 0.05, "volatility": 0.1},
            "options": {"paths": 1000},
            "sensitivity": {"inputs": ["goal.monthly_contribution", "market.volatility"],
                            "relative_step": 0.1}
        }))
        .unwrap();
        assert_eq!(sensitivity(&r).units, 1000 * 110 * 5);
        assert_eq!(sensitivity(&r).runs_field, "sensitivity.inputs");
        r.sensitivity.inputs = None;
        assert_eq!(
            sensitivity(&r).units,
            1000 * 110 * (1 + 2 * DEFAULT_INPUTS.len() as u64)
        );
    }

    #[test]
    fn plan_solvers_count_their_runs_and_name_what_multiplies_them() {
        // A couple aged 62 and 60 to at most 100 (480 months): 9 × 9 claiming combinations;
        // five withdrawal orders with a tax schedule, three without.
        let request: crate::PlanRequest = serde_json::from_value(serde_json::json!({
            "plan": {
                "people": [
                    {"name": "a", "age": 62, "retirement_age": 62,
                     "longevity": {"kind": "fixed", "age": 100}},
                    {"name": "b", "age": 60, "retirement_age": 62,
                     "longevity": {"kind": "fixed", "age": 90}}],
                "accounts": [{"name": "ira", "kind": "tax_deferred", "balance": 1e6}],
                "social_security": [{"person": 0, "pia": 2000, "claim_age": 67},
                                    {"person": 1, "pia": 1500, "claim_age": 67}],
                "spending": {"essential": 4000},
                "tax": {"brackets": [{"over": 0, "rate": 0.1}]}
            },
            "market": {"expected_return": 0.05, "volatility": 0.1},
            "options": {"paths": 1000}
        }))
        .unwrap();
        let prepared = crate::plan::prepare_plan(&request).unwrap();
        let one = 1000 * 456; // to a's 100th birthday
        assert_eq!(plan(&prepared, PlanOperation::Simulate).units, one);
        assert_eq!(plan(&prepared, PlanOperation::Claiming).units, one * 81);
        assert_eq!(
            plan(&prepared, PlanOperation::WithdrawalOrders).units,
            one * 5
        );
        assert_eq!(
            plan(&prepared, PlanOperation::SustainableSpending).units,
            one * MAX_SPENDING_RUNS
        );
        let err = plan(&prepared, PlanOperation::Claiming)
            .within(one * 80)
            .unwrap_err();
        assert_eq!(err.field, "plan.social_security");
        let mut untaxed = prepared.clone();
        untaxed.tax = None;
        assert_eq!(
            plan(&untaxed, PlanOperation::WithdrawalOrders).units,
            one * 3
        );
    }
}
