//! The plan solvers of docs/model.md §5: sustainable spending, Social Security claiming ages and
//! withdrawal orders side by side. Every trial runs with the request's seed (common random
//! numbers), so trials differ only by what the solver changes.

use serde::{Deserialize, Serialize};

use super::prepare::{prepare_plan, Order, PreparedPlan, Rule};
use super::request::{AccountKind, PlanRequest, DEFAULT_ORDER};
use super::result::PlanResult;
use super::tax::bracket_top;
use crate::engine::{Engine, EngineError};
use crate::validate::MAX_AMOUNT;

/// The sustainable-spending search stops when its bracket is narrower than this, in monthly
/// dollars of essential + discretionary spending.
pub const SPENDING_TOLERANCE: f64 = 1.0;
/// Runs the sustainable-spending search makes at most: the zero-spending check, the doubling
/// up to the largest amount, the bisection and the final run.
pub const MAX_SPENDING_RUNS: u64 = 1 + 52 + 52 + 1;
/// Whole claim ages the claiming solver tries for each person.
pub const CLAIM_AGES: std::ops::RangeInclusive<u32> = 62..=70;
/// The rates of the two bracket-fill orders the withdrawal-order comparison runs.
pub const BRACKET_FILL_RATES: [f64; 2] = [0.12, 0.22];

/// The largest spending the plan sustains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendingSolution {
    /// The factor on the request's essential and discretionary spending (1: as asked).
    pub scale: f64,
    /// Monthly, today's dollars, at that scale.
    pub essential: f64,
    pub discretionary: f64,
    pub success_threshold: f64,
    /// Whether any spending, even none, meets the threshold.
    pub attainable: bool,
    /// The plan at the answer (at zero spending when unattainable).
    pub plan: PlanResult,
}

/// The largest scale of essential + discretionary spending whose success meets
/// `plan.success_threshold`, by doubling then bisection to [`SPENDING_TOLERANCE`].
pub fn sustainable_spending(
    engine: &Engine,
    request: &PlanRequest,
) -> Result<SpendingSolution, EngineError> {
    let base = prepare_plan(request)?;
    let threshold = base.success_threshold;
    let monthly = base.spending.essential + base.spending.discretionary;
    let run = |scale: f64| engine.run_plan(&scaled(&base, scale));
    let meets = |result: &PlanResult| result.success_probability >= threshold;
    let solution = |scale: f64, attainable: bool, plan: PlanResult| SpendingSolution {
        scale,
        essential: base.spending.essential * scale,
        discretionary: base.spending.discretionary * scale,
        success_threshold: threshold,
        attainable,
        plan,
    };
    let at_zero = run(0.0)?;
    if !meets(&at_zero) || monthly == 0.0 {
        let attainable = meets(&at_zero);
        return Ok(solution(0.0, attainable, at_zero));
    }
    // Double until the threshold is missed (or the amounts reach the largest accepted).
    let (mut low, mut high) = (0.0f64, 1.0f64);
    let mut low_result = at_zero;
    loop {
        let result = run(high)?;
        if !meets(&result) {
            break;
        }
        low = high;
        low_result = result;
        if monthly * high * 2.0 > MAX_AMOUNT {
            return Ok(solution(low, true, low_result));
        }
        high *= 2.0;
    }
    while (high - low) * monthly > SPENDING_TOLERANCE {
        let mid = 0.5 * (low + high);
        let result = run(mid)?;
        if meets(&result) {
            low = mid;
            low_result = result;
        } else {
            high = mid;
        }
    }
    Ok(solution(low, true, low_result))
}

/// The plan with its essential and discretionary spending (and a floor–ceiling rule's
/// ceiling) multiplied by `scale`.
fn scaled(plan: &PreparedPlan, scale: f64) -> PreparedPlan {
    let mut plan = plan.clone();
    plan.spending.essential *= scale;
    plan.spending.discretionary *= scale;
    if let Rule::FloorCeiling { ceiling, .. } = &mut plan.spending.rule {
        *ceiling *= scale;
    }
    plan
}

/// One combination of claim ages and what it gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimingOption {
    /// Each benefit's claim age (years), in the order of `plan.social_security`.
    pub claim_ages: Vec<u32>,
    pub success_probability: f64,
    pub standard_error: f64,
    /// Median estate in today's dollars.
    pub median_real_estate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimingSolution {
    /// Every combination tried, in order of claim ages.
    pub options: Vec<ClaimingOption>,
    /// The best: highest success, then highest median real estate.
    pub best: ClaimingOption,
}

/// Each benefit's candidate claim ages for the claiming solver: the whole years 62 … 70 not
/// already past (70 alone for someone older).
pub fn claim_candidates(plan: &PreparedPlan) -> Vec<Vec<u32>> {
    plan.benefits
        .iter()
        .map(|b| {
            let age = plan.people[b.person].age_months;
            let ages: Vec<u32> = CLAIM_AGES.filter(|&a| a * 12 >= age).collect();
            if ages.is_empty() {
                vec![*CLAIM_AGES.end()]
            } else {
                ages
            }
        })
        .collect()
}

/// The runs the claiming solver makes: one per combination of candidate ages.
pub fn claiming_runs(plan: &PreparedPlan) -> u64 {
    claim_candidates(plan)
        .iter()
        .map(|ages| ages.len() as u64)
        .product()
}

/// The runs the withdrawal-order comparison makes: three orders, and the bracket-fills when
/// the plan has a tax schedule.
pub fn withdrawal_order_runs(plan: &PreparedPlan) -> u64 {
    3 + if plan.tax.is_some() {
        BRACKET_FILL_RATES.len() as u64
    } else {
        0
    }
}

/// Every whole claim age 62 … 70 (those not already past) for each benefit, every combination
/// with common random numbers: success and median real estate of each, and the best.
pub fn claiming(engine: &Engine, request: &PlanRequest) -> Result<ClaimingSolution, EngineError> {
    let base = with_median(prepare_plan(request)?);
    if base.benefits.is_empty() {
        return Err(crate::validate::ValidationError::new(
            "plan.social_security",
            "the claiming solver needs at least one Social Security benefit",
        )
        .into());
    }
    let candidates = claim_candidates(&base);
    // Every combination, like an odometer (the first benefit's age turning fastest).
    let mut combinations: Vec<Vec<u32>> = Vec::new();
    let mut combination = vec![0usize; candidates.len()];
    'odometer: loop {
        combinations.push(
            combination
                .iter()
                .zip(&candidates)
                .map(|(&k, ages)| ages[k])
                .collect(),
        );
        let mut digit = 0;
        loop {
            if digit == combination.len() {
                break 'odometer;
            }
            combination[digit] += 1;
            if combination[digit] < candidates[digit].len() {
                break;
            }
            combination[digit] = 0;
            digit += 1;
        }
    }
    // The combinations side by side (one launch on a GPU).
    let plans: Vec<PreparedPlan> = combinations
        .iter()
        .map(|ages| {
            let mut plan = base.clone();
            for (benefit, &age) in plan.benefits.iter_mut().zip(ages) {
                let now = base.people[benefit.person].age_months;
                *benefit = benefit.claimed_at(age * 12, now);
            }
            plan
        })
        .collect();
    let options: Vec<ClaimingOption> = combinations
        .into_iter()
        .zip(engine.run_plans_outcomes(&plans)?)
        .map(|(ages, result)| ClaimingOption {
            claim_ages: ages,
            success_probability: result.success_probability,
            standard_error: result.standard_error,
            median_real_estate: median_real_estate(&result),
        })
        .collect();
    let best = options
        .iter()
        .max_by(|a, b| {
            a.success_probability
                .total_cmp(&b.success_probability)
                .then(a.median_real_estate.total_cmp(&b.median_real_estate))
        })
        .cloned()
        .expect("at least one combination");
    Ok(ClaimingSolution { options, best })
}

/// One withdrawal order and what it gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderOutcome {
    /// `taxable, tax_deferred, tax_free`, `proportional`, `bracket_fill 12%`…
    pub order: String,
    pub success_probability: f64,
    pub standard_error: f64,
    pub mean_lifetime_taxes: f64,
    pub median_real_estate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderComparison {
    pub orders: Vec<OrderOutcome>,
    /// Why an order was left out (bracket-fill without a tax schedule).
    pub left_out: Vec<String>,
}

/// The plan under the default order, tax-deferred first, proportional and bracket-fill at
/// 12% and 22% (when the plan has taxes), side by side with common random numbers.
pub fn withdrawal_orders(
    engine: &Engine,
    request: &PlanRequest,
) -> Result<OrderComparison, EngineError> {
    let base = with_median(prepare_plan(request)?);
    let mut orders = vec![
        (
            "taxable, tax_deferred, tax_free".to_string(),
            Order::Sequence(DEFAULT_ORDER),
        ),
        (
            "tax_deferred, taxable, tax_free".to_string(),
            Order::Sequence([
                AccountKind::TaxDeferred,
                AccountKind::Taxable,
                AccountKind::TaxFree,
            ]),
        ),
        ("proportional".to_string(), Order::Proportional),
    ];
    let mut left_out = Vec::new();
    for rate in BRACKET_FILL_RATES {
        let name = format!("bracket_fill {}%", rate * 100.0);
        match &base.tax {
            Some(tax) => orders.push((
                name,
                Order::BracketFill {
                    ceiling: bracket_top(&tax.brackets, tax.standard_deduction, rate, 1.0),
                },
            )),
            None => left_out.push(format!("{name}: the plan has no tax schedule")),
        }
    }
    // The orders side by side (one launch on a GPU).
    let plans: Vec<PreparedPlan> = orders
        .iter()
        .map(|&(_, order)| {
            let mut plan = base.clone();
            plan.order = order;
            plan
        })
        .collect();
    let outcomes = orders
        .into_iter()
        .zip(engine.run_plans_outcomes(&plans)?)
        .map(|((name, _), result)| OrderOutcome {
            order: name,
            success_probability: result.success_probability,
            standard_error: result.standard_error,
            mean_lifetime_taxes: result.lifetime_taxes.mean,
            median_real_estate: median_real_estate(&result),
        })
        .collect();
    Ok(OrderComparison {
        orders: outcomes,
        left_out,
    })
}

/// The plan with the 50th percentile among those it reports (the solvers compare medians).
fn with_median(mut plan: PreparedPlan) -> PreparedPlan {
    if !plan.percentiles.contains(&50.0) {
        plan.percentiles.push(50.0);
        plan.percentiles.sort_by(f64::total_cmp);
    }
    plan
}

fn median_real_estate(result: &PlanResult) -> f64 {
    result
        .estate
        .real_percentiles
        .get(50.0)
        .expect("the solvers' plans report the median")
}
