//! The solvers of docs/model.md §1: the least monthly contribution and the largest monthly
//! withdrawal that reach the goal's success threshold.
//!
//! Both use common random numbers: every trial value runs with the request's seed, so success
//! is a step function of the value that only ever moves one way (more contribution never
//! lowers wealth on any path; more withdrawal never raises it), and the search is exact for the
//! sample.
//!
//! * Required contribution without withdrawals: W_T on each path is affine in c,
//!   W_T = A + c·B, so each path's break-even c is one division and the answer is an order
//!   statistic of those — one pass, exact. Answers are rounded up to the cent and checked.
//! * Otherwise (withdrawals can deplete a path, and a band rebalancing rule trades on the
//!   weights, either of which breaks the affinity): bisection on the cent, keeping the
//!   bracket (fails, meets) of whole cents.

use serde::{Deserialize, Serialize};

use crate::backend::CpuBackend;
use crate::budget::MAX_CENT_RAISES;
use crate::engine::{Engine, EngineError};
use crate::request::GoalRequest;
use crate::result::SimulationResult;
use crate::validate::{prepare, PreparedGoal, ValidationError, MAX_AMOUNT};

/// What a solver found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveResult {
    /// The input solved for: `goal.monthly_contribution` or `goal.monthly_withdrawal`.
    pub solved_for: String,
    /// The answer in money per month, to the cent; `null` when no value reaches the threshold.
    pub value: Option<f64>,
    pub attainable: bool,
    pub success_threshold: f64,
    /// Success at `value`; when unattainable, the best success any value reaches.
    pub success_probability: f64,
    pub method: Method,
    /// The full simulation at the answer (at the best value when unattainable).
    pub simulation: SimulationResult,
}

/// How a solver found its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The order statistic of per-path break-even contributions: exact for the sample.
    BreakEven,
    /// Bisection on whole cents.
    Bisection,
}

/// The least monthly contribution c ≥ 0 with success ≥ the goal's threshold.
pub fn required_contribution(
    engine: &Engine,
    request: &GoalRequest,
) -> Result<SolveResult, EngineError> {
    crate::sampler::one_number_of_paths(&request.options, "the required-contribution solver")?;
    let base = prepare(request)?;
    let threshold = request.goal.success_threshold;
    let needed = successes_needed(threshold, base.paths);
    let with = |c: f64| with_contribution(request, c);
    let has_withdrawals = base.withdrawal.iter().any(|&d| d > 0.0);
    let contributes = request
        .goal
        .contribution_months
        .unwrap_or(request.goal.horizon_months)
        > 0;
    if !contributes {
        return Err(ValidationError::new(
            "goal.contribution_months",
            "must be above 0 to solve for a contribution",
        )
        .into());
    }
    // A band rule trades on the weights, so W_T is not affine in c there: search instead.
    let affine = base.asset_paths.as_ref().is_none_or(|a| a.rule.is_affine());
    let (value, method) = if has_withdrawals || !affine {
        (
            bisect_cents(engine, &with, needed, Direction::Increasing, 0)?,
            Method::Bisection,
        )
    } else {
        (
            break_even(engine, request, &base, needed)?,
            Method::BreakEven,
        )
    };
    // Unattainable: the most that can be contributed shows how close the goal gets.
    let best = MAX_AMOUNT;
    finish(
        engine,
        request,
        "goal.monthly_contribution",
        (value, best),
        method,
        &with,
        needed,
    )
}

/// The largest monthly withdrawal (in today's money) with success ≥ the goal's threshold.
pub fn sustainable_withdrawal(
    engine: &Engine,
    request: &GoalRequest,
) -> Result<SolveResult, EngineError> {
    crate::sampler::one_number_of_paths(&request.options, "the sustainable-withdrawal solver")?;
    let base = prepare(request)?;
    let start = request
        .goal
        .withdrawal_start_month
        .unwrap_or(request.goal.horizon_months);
    if start >= request.goal.horizon_months {
        return Err(ValidationError::new(
            "goal.withdrawal_start_month",
            format!(
                "must be below goal.horizon_months ({}) to solve for a withdrawal, got {start}",
                request.goal.horizon_months
            ),
        )
        .into());
    }
    let needed = successes_needed(request.goal.success_threshold, base.paths);
    let with = |d: f64| with_withdrawal(request, d);
    let value = bisect_cents(engine, &with, needed, Direction::Decreasing, 0)?;
    // Unattainable: even no withdrawal misses the threshold; show that case.
    finish(
        engine,
        request,
        "goal.monthly_withdrawal",
        (value, 0.0),
        Method::Bisection,
        &with,
        needed,
    )
}

/// The fewest successful paths out of `paths` whose fraction is at least `threshold`, judged
/// exactly as results are (`successes / paths ≥ threshold` in `f64`).
pub fn successes_needed(threshold: f64, paths: u64) -> u64 {
    let meets = |k: u64| k as f64 / paths as f64 >= threshold;
    let mut k = ((threshold * paths as f64).ceil() as u64).min(paths);
    while k > 0 && meets(k - 1) {
        k -= 1;
    }
    while k < paths && !meets(k) {
        k += 1;
    }
    k
}

/// A goal's score for the nightly re-score: success at its own contribution and the least
/// contribution that meets its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GoalScore {
    pub success_probability: f64,
    /// Money per month, rounded up to the cent; `None` when no contribution up to the largest
    /// amount accepted reaches the threshold.
    pub required_contribution: Option<f64>,
    /// Success's standard error under the request's sampler (docs/model.md §6).
    pub standard_error: f64,
    /// The paths the score comes from (the last round's, under a precision target).
    pub paths: u64,
    /// Paths simulated over every round (one round without a precision target).
    pub paths_simulated: u64,
}

/// Score a goal without withdrawals from one affine pass on the CPU
/// ([`CpuBackend::affine_terminal`]): success is counted on W_T at the goal's contribution,
/// bit for bit the paths of a simulation; the required contribution is the order statistic of
/// the per-path break-even contributions, as [`required_contribution`] finds it, rounded up to
/// the cent but not re-checked by a second simulation (that check moves an answer by a cent
/// only when a break-even value sits within rounding error of a cent boundary).
///
/// Under `options.precision` (docs/model.md §6) the pass runs in rounds, as a simulation's:
/// from `options.paths`, each round at least doubling the paths, until success's standard error
/// is at or below the target or `options.max_paths` stops them. Both answers come from the last
/// round's paths (common random numbers: the contribution is solved on the paths whose success
/// is reported).
pub fn score_accumulation(
    cpu: &CpuBackend,
    request: &GoalRequest,
) -> Result<GoalScore, ValidationError> {
    if request.goal.monthly_withdrawal != 0.0 {
        return Err(ValidationError::new(
            "goal.monthly_withdrawal",
            "must be 0 to score a goal by its break-even contributions",
        ));
    }
    let target = crate::sampler::PrecisionTarget::of_options(&request.options)?;
    let mut round = request.clone();
    round.options.precision = None;
    round.options.max_paths = None;
    let mut simulated = 0;
    loop {
        let goal = prepare(&round)?;
        let mut score = score_paths(cpu, &round, &goal)?;
        simulated += score.paths;
        score.paths_simulated = simulated;
        let next = target.and_then(|t| {
            (score.standard_error > t.success_probability)
                .then(|| t.next_paths(goal.sampler, goal.paths, score.standard_error))
                .flatten()
        });
        match next {
            Some(paths) => round.options.paths = Some(paths),
            None => return Ok(score),
        }
    }
}

/// One round of [`score_accumulation`]: the affine pass over `goal`'s paths (`request`
/// prepared).
fn score_paths(
    cpu: &CpuBackend,
    request: &GoalRequest,
    goal: &PreparedGoal,
) -> Result<GoalScore, ValidationError> {
    if goal
        .asset_paths
        .as_ref()
        .is_some_and(|a| !a.rule.is_affine())
    {
        return Err(ValidationError::new(
            "market.rebalancing",
            "a band rule trades on the weights, so terminal wealth is not affine in the contribution: score this goal by simulation (the required-contribution solver bisects it)",
        ));
    }
    let mut unit_request = request.clone();
    unit_request.goal.initial_wealth = 0.0;
    let unit = with_contribution(&unit_request, 1.0)?.contribution;
    let (wealth, per_unit) = cpu.affine_terminal(goal, &unit);
    let target = goal.success_target();
    let success: Vec<bool> = wealth.iter().map(|&w| w >= target).collect();
    let successes = success.iter().filter(|&&s| s).count() as u64;
    let needed = successes_needed(request.goal.success_threshold, goal.paths);
    let required_contribution = if needed == 0 {
        Some(0.0)
    } else {
        let c0 = request.goal.monthly_contribution;
        let mut break_even: Vec<f64> = wealth
            .iter()
            .zip(&per_unit)
            .map(|(&w, &b)| {
                let without = w - c0 * b;
                if without >= target {
                    0.0
                } else if b > 0.0 {
                    (target - without) / b
                } else {
                    f64::INFINITY
                }
            })
            .collect();
        let (_, &mut c, _) = break_even.select_nth_unstable_by(needed as usize - 1, f64::total_cmp);
        (c.is_finite() && c <= MAX_AMOUNT).then(|| round_up_cents(c))
    };
    Ok(GoalScore {
        success_probability: successes as f64 / goal.paths as f64,
        required_contribution,
        standard_error: crate::sampler::success_standard_error(goal.sampler, &success),
        paths: goal.paths,
        paths_simulated: goal.paths,
    })
}

fn with_contribution(request: &GoalRequest, c: f64) -> Result<PreparedGoal, ValidationError> {
    let mut r = request.clone();
    r.goal.monthly_contribution = c;
    prepare(&r)
}

fn with_withdrawal(request: &GoalRequest, d: f64) -> Result<PreparedGoal, ValidationError> {
    let mut r = request.clone();
    r.goal.monthly_withdrawal = d;
    prepare(&r)
}

/// Per-path break-even contributions, and their order statistic: exact for the sample.
fn break_even(
    engine: &Engine,
    request: &GoalRequest,
    base: &PreparedGoal,
    needed: u64,
) -> Result<Option<f64>, EngineError> {
    if needed == 0 {
        return Ok(Some(0.0));
    }
    let without = engine.terminal_wealth(&with_contribution(request, 0.0)?)?;
    let mut unit_request = request.clone();
    unit_request.goal.initial_wealth = 0.0;
    let per_unit = engine.terminal_wealth(&with_contribution(&unit_request, 1.0)?)?;
    let target = base.success_target();
    let mut break_even: Vec<f64> = without
        .iter()
        .zip(&per_unit)
        .map(|(&a, &b)| {
            if a >= target {
                0.0
            } else if b > 0.0 {
                (target - a) / b
            } else {
                f64::INFINITY
            }
        })
        .collect();
    let (_, &mut c, _) = break_even.select_nth_unstable_by(needed as usize - 1, f64::total_cmp);
    Ok((c.is_finite() && c <= MAX_AMOUNT).then(|| round_up_cents(c)))
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// Success rises with the value (contribution): find the least value that meets.
    Increasing,
    /// Success falls with the value (withdrawal): find the largest value that meets.
    Decreasing,
}

/// Whether `value` meets the threshold: one success-only run.
fn meets(
    engine: &Engine,
    with: &dyn Fn(f64) -> Result<PreparedGoal, ValidationError>,
    needed: u64,
    value: f64,
) -> Result<bool, EngineError> {
    Ok(engine.success(&[with(value)?])?[0].successes >= needed)
}

/// A break-even answer checked by simulation: it may sit a rounding error short of meeting,
/// so it is raised a cent at a time, at most [`MAX_CENT_RAISES`] times, then bisected from
/// there (bounded either way).
fn settle_break_even(
    engine: &Engine,
    with: &dyn Fn(f64) -> Result<PreparedGoal, ValidationError>,
    needed: u64,
    mut value: f64,
) -> Result<Option<f64>, EngineError> {
    for _ in 0..MAX_CENT_RAISES {
        if meets(engine, with, needed, value)? {
            return Ok(Some(value));
        }
        value = round_up_cents(value + 0.01);
    }
    let cents = (value * 100.0).round() as u64;
    bisect_cents(engine, with, needed, Direction::Increasing, cents)
}

/// Bisection on whole cents, from `from` cents (0, or a break-even answer that falls short)
/// to where the outcome flips: the bracket grows ×4 until it does, then halves to one cent.
fn bisect_cents(
    engine: &Engine,
    with: &dyn Fn(f64) -> Result<PreparedGoal, ValidationError>,
    needed: u64,
    direction: Direction,
    from: u64,
) -> Result<Option<f64>, EngineError> {
    let meets = |cents: u64| meets(engine, with, needed, cents as f64 / 100.0);
    let max_cents = (MAX_AMOUNT * 100.0) as u64;
    let from_meets = meets(from)?;
    match direction {
        Direction::Increasing if from_meets => return Ok(Some(from as f64 / 100.0)),
        Direction::Decreasing if !from_meets => return Ok(None),
        _ => {}
    }
    // Grow until the outcome flips: (a, b) with a on the `from` side, b on the other.
    // The first step is to $100 from zero, and ×4 from anything above $25.
    let mut a = from;
    let mut b = (from.max(2_500) * 4).min(max_cents);
    while meets(b)? == from_meets {
        a = b;
        if b >= max_cents {
            return Ok(match direction {
                Direction::Increasing => None,
                Direction::Decreasing => Some(max_cents as f64 / 100.0),
            });
        }
        b = (b * 4).min(max_cents);
    }
    while b - a > 1 {
        let mid = a + (b - a) / 2;
        if meets(mid)? == from_meets {
            a = mid;
        } else {
            b = mid;
        }
    }
    Ok(Some(match direction {
        Direction::Increasing => b as f64 / 100.0,
        Direction::Decreasing => a as f64 / 100.0,
    }))
}

fn round_up_cents(x: f64) -> f64 {
    (x * 100.0).ceil() / 100.0
}

/// Check the answer by simulation (a break-even value may sit a rounding error short), and
/// build the result. `answer` is the value found, or `None` when no value reaches the
/// threshold, with the value that comes closest.
fn finish(
    engine: &Engine,
    request: &GoalRequest,
    solved_for: &str,
    answer: (Option<f64>, f64),
    method: Method,
    with: &dyn Fn(f64) -> Result<PreparedGoal, ValidationError>,
    needed: u64,
) -> Result<SolveResult, EngineError> {
    let (value, closest) = answer;
    let value = match value {
        Some(value) if method == Method::BreakEven => {
            settle_break_even(engine, with, needed, value)?
        }
        value => value,
    };
    let simulation = engine.run(&[with(value.unwrap_or(closest))?])?.remove(0);
    Ok(SolveResult {
        solved_for: solved_for.into(),
        value,
        attainable: value.is_some(),
        success_threshold: request.goal.success_threshold,
        success_probability: simulation.success_probability,
        method,
        simulation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saver(sampler: &str, precision: Option<f64>) -> GoalRequest {
        let mut options = serde_json::json!({"paths": 1024, "seed": 9, "sampler": sampler});
        if let Some(s) = precision {
            options["precision"] = serde_json::json!({"success_probability": s});
        }
        serde_json::from_value(serde_json::json!({
            "goal": {"initial_wealth": 40000, "monthly_contribution": 700, "horizon_months": 240,
                     "target_amount": 400000, "success_threshold": 0.8},
            "market": {"expected_return": 0.06, "volatility": 0.14, "inflation": 0.02},
            "options": options
        }))
        .unwrap()
    }

    /// A score's standard error is the one a simulation of the same request reports, under
    /// each sampler (binomial, the pairs' spread, the replicates'), and its success the same.
    #[test]
    fn a_scores_standard_error_is_the_simulations() {
        let cpu = CpuBackend::new();
        let engine = Engine::new(crate::backend::Device::Cpu(cpu.clone()));
        for sampler in ["philox", "antithetic", "sobol"] {
            let request = saver(sampler, None);
            let score = score_accumulation(&cpu, &request).unwrap();
            let simulated = engine.simulate(&request).unwrap();
            assert_eq!(score.paths, simulated.paths, "{sampler}");
            assert_eq!(score.paths_simulated, simulated.paths, "{sampler}");
            assert_eq!(
                score.success_probability, simulated.success_probability,
                "{sampler}"
            );
            assert!(
                (score.standard_error - simulated.standard_error).abs() <= 1e-12,
                "{sampler}: {} vs {}",
                score.standard_error,
                simulated.standard_error
            );
            assert!(score.standard_error > 0.0, "{sampler}");
        }
    }

    /// Under a precision target the score runs in rounds until its standard error meets the
    /// target, and it is then the score of the last round's paths: the same success, standard
    /// error and required contribution as a score asked for those paths outright. A target out
    /// of reach stops at `options.max_paths`.
    #[test]
    fn a_precision_target_scores_in_rounds() {
        let cpu = CpuBackend::new();
        for sampler in ["philox", "antithetic", "sobol"] {
            let score = score_accumulation(&cpu, &saver(sampler, Some(0.004))).unwrap();
            assert!(
                score.standard_error <= 0.004,
                "{sampler}: {}",
                score.standard_error
            );
            assert!(score.paths > 1024, "{sampler}: {} paths", score.paths);
            assert!(score.paths_simulated > score.paths, "{sampler}: {score:?}");
            let mut outright = saver(sampler, None);
            outright.options.paths = Some(score.paths);
            let last = score_accumulation(&cpu, &outright).unwrap();
            assert_eq!(
                (
                    last.success_probability,
                    last.required_contribution,
                    last.standard_error
                ),
                (
                    score.success_probability,
                    score.required_contribution,
                    score.standard_error
                ),
                "{sampler}"
            );
        }
        let mut capped = saver("sobol", Some(0.0001));
        capped.options.max_paths = Some(4096);
        let score = score_accumulation(&cpu, &capped).unwrap();
        assert_eq!(score.paths, 4096);
        assert!(score.standard_error > 0.0001);
    }

    #[test]
    fn successes_needed_matches_the_float_test_of_success() {
        assert_eq!(successes_needed(0.8, 10_000), 8_000);
        assert_eq!(successes_needed(0.8, 3), 3);
        assert_eq!(successes_needed(1.0, 7), 7);
        assert_eq!(successes_needed(0.5, 1), 1);
        for n in [1u64, 7, 10, 99, 1000, 12345] {
            for t in [0.1, 0.33, 0.5, 0.8, 0.95, 0.999] {
                let k = successes_needed(t, n);
                assert!(k as f64 / n as f64 >= t);
                assert!(k == 0 || ((k - 1) as f64 / n as f64) < t);
            }
        }
    }
}
