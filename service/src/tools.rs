//! The operations as tools an LLM agent can call: a name, a description written for a model,
//! and the input's JSON Schema (generated from the request types, so it cannot drift from what
//! the service accepts), in the shape of the common tool-use APIs; and a plain-language summary
//! of each result for the agent to quote.

use schemars::{schema_for, JsonSchema};
use serde_json::{json, Value};
use sextant_engine::frontier::{FrontierReport, FrontierRequest};
use sextant_engine::plan::solve::{ClaimingSolution, OrderComparison, SpendingSolution};
use sextant_engine::request::{
    BlockMethod, HistorySource, Inflation, InflationModel, Precision, Rebalancing, ReturnModel,
    Sampler,
};
use sextant_engine::result::RebalancingStats;
use sextant_engine::risk::{RiskReport, RiskRequest};
use sextant_engine::scenarios::{
    SensitivityRequest, SensitivityResult, WhatIfRequest, WhatIfResult,
};
use sextant_engine::solve::SolveResult;
use sextant_engine::sweep::{SweepReport, SweepRequest};
use sextant_engine::{GoalRequest, Market, PlanRequest, PlanResult, SimulationResult};

use super::{ApiError, Operation};

pub struct Tool {
    pub name: &'static str,
    pub operation: Operation,
    pub description: &'static str,
    schema: fn() -> Value,
}

fn schema<T: JsonSchema>() -> Value {
    serde_json::to_value(schema_for!(T)).unwrap_or(Value::Null)
}

const TOOLS: [Tool; 12] = [
    Tool {
        name: "simulate_goal",
        operation: Operation::Simulate,
        description: "Monte Carlo simulation of one financial goal (saving toward a target, or \
            drawing down in retirement). Give the saver's situation in `goal` (initial_wealth, \
            monthly_contribution, horizon_months, target_amount in today's money…) and the \
            portfolio in `market` (expected_return and volatility as annual decimals, or assets \
            with weights). Returns the probability of success, the terminal wealth \
            distribution, a yearly fan chart and the chance of running out of money.",
        schema: schema::<GoalRequest>,
    },
    Tool {
        name: "required_contribution",
        operation: Operation::RequiredContribution,
        description: "The smallest monthly contribution that reaches the goal's \
            success_threshold (default 80%). Same input as simulate_goal; the goal's \
            monthly_contribution is what is solved for. Answers `value: null, attainable: \
            false` when no contribution is enough.",
        schema: schema::<GoalRequest>,
    },
    Tool {
        name: "sustainable_withdrawal",
        operation: Operation::SustainableWithdrawal,
        description: "The largest monthly withdrawal (in today's money, rising with inflation) \
            that keeps the goal's success_threshold. Same input as simulate_goal.",
        schema: schema::<GoalRequest>,
    },
    Tool {
        name: "what_if",
        operation: Operation::WhatIf,
        description: "Compare variants of a goal: a base request and a list of named changes \
            (JSON merge patches of `goal` and `market`), all simulated with the same random \
            numbers so the differences are the changes' alone.",
        schema: schema::<WhatIfRequest>,
    },
    Tool {
        name: "sensitivity",
        operation: Operation::Sensitivity,
        description: "Which inputs matter most: each input moved up and down by a relative \
            step (default 10%), the change in success probability, sorted (a tornado chart).",
        schema: schema::<SensitivityRequest>,
    },
    Tool {
        name: "efficient_frontier",
        operation: Operation::Frontier,
        description: "The exact efficient frontier of a set of asset classes (expected returns, \
            volatilities, correlations), under per-asset bounds and group limits: its turning \
            points, evenly spaced portfolios, the minimum-variance and maximum-Sharpe \
            portfolios, and optionally a target return or volatility.",
        schema: schema::<FrontierRequest>,
    },
    Tool {
        name: "frontier_sweep",
        operation: Operation::Sweep,
        description: "Which allocation best serves a goal: simulates the goal at every point of \
            the efficient frontier (same random numbers for all), and reports the success \
            probability of each, the best one and the least volatile one that meets the goal's \
            success threshold.",
        schema: schema::<SweepRequest>,
    },
    Tool {
        name: "portfolio_risk",
        operation: Operation::Risk,
        description: "Risk of an allocation: expected return, volatility, Sharpe and Sortino \
            ratios, one-year value at risk and expected shortfall at 95% and 99%, the \
            distribution of the maximum drawdown over a horizon, and stress tests (a return \
            shock per asset class).",
        schema: schema::<RiskRequest>,
    },
    Tool {
        name: "plan_household",
        operation: Operation::Plan,
        description: "Monte Carlo of a whole household's retirement plan: one or two people \
            (ages, retirement ages, lifetimes fixed or random), taxable, tax-deferred and \
            tax-free accounts, contributions, pensions, Social Security with claim ages, \
            essential and discretionary spending under a rule (fixed, percent, floor_ceiling, \
            vpw, guardrails), one-off goals, income taxes and required minimum distributions. \
            Returns the chance the money lasts for life, the chance spending is cut, wealth \
            and real spending fan charts by age, the estate, lifetime taxes and ages at death.",
        schema: schema::<PlanRequest>,
    },
    Tool {
        name: "plan_sustainable_spending",
        operation: Operation::PlanSpending,
        description: "The most a household can spend each month (essential and discretionary \
            scaled together, today's dollars) while the plan keeps its success_threshold \
            (default 85%). Same input as plan_household.",
        schema: schema::<PlanRequest>,
    },
    Tool {
        name: "plan_social_security_claiming",
        operation: Operation::PlanClaiming,
        description: "When to claim Social Security: every combination of whole claim ages \
            62 to 70 for each benefit in the plan, each simulated with the same random \
            numbers; the chance of success and median estate of each, and the best. Same \
            input as plan_household (the claim ages given are replaced).",
        schema: schema::<PlanRequest>,
    },
    Tool {
        name: "plan_withdrawal_order",
        operation: Operation::PlanWithdrawalOrders,
        description: "Which accounts to draw from first: the plan under taxable first, \
            tax-deferred first, proportional and (with a tax schedule) filling the 12% and 22% \
            brackets from tax-deferred accounts, side by side with the same random numbers: \
            success, mean lifetime taxes and median estate of each. Same input as \
            plan_household.",
        schema: schema::<PlanRequest>,
    },
];

impl Tool {
    /// The JSON Schema of the tool's input, from its request type.
    pub fn input_schema(&self) -> Value {
        (self.schema)()
    }
}

/// Every tool.
pub fn all() -> &'static [Tool] {
    &TOOLS
}

pub fn find(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

/// Every tool: `{"tools": [{name, description, input_schema}]}`, or with `openai` the
/// function-calling shape `{"tools": [{"type": "function", "function": {name, description,
/// parameters}}]}`.
pub fn catalogue(openai: bool) -> Value {
    let tools: Vec<Value> = all()
        .iter()
        .map(|t| {
            let schema = t.input_schema();
            if openai {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": schema}})
            } else {
                json!({"name": t.name, "description": t.description, "input_schema": schema})
            }
        })
        .collect();
    json!({ "tools": tools })
}

/// $1,234,567 (whole dollars).
pub fn money(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let whole = x.abs().round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}${out}", if x < 0.0 { "-" } else { "" })
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

/// An annual rate to a tenth of a percent (inflation's 2.5% is not 2% or 3%).
fn rate(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn years(months: f64) -> String {
    let y = months / 12.0;
    if (y - y.round()).abs() < 1e-9 {
        format!("{y:.0} years")
    } else {
        format!("{y:.1} years")
    }
}

/// A result document as the engine's result type.
fn read<T: serde::de::DeserializeOwned>(result: &Value) -> Result<T, ApiError> {
    T::deserialize(result).map_err(|e| ApiError::Internal(format!("reading a result: {e}")))
}

/// A sentence or two an agent can quote, read from the typed result (and, for a simulation,
/// the request's horizon).
/// The standard error a tool's simulation aims at when the agent names neither paths nor a
/// precision: "success within ±0.5 percentage points" (docs/model.md §6).
pub const TOOL_PRECISION: f64 = 0.005;

/// The sampler of the tools' precision default: the one that serves the most such requests
/// under load (`sextant-bench --suite service`: `sobol` about 2.8× `antithetic` at a standard
/// error of 0.005, benches/RESULTS.md). Alone on an idle machine `antithetic` answers a few
/// milliseconds sooner (its rounds fill both cores), which an agent's turn does not notice.
pub const TOOL_SAMPLER: Sampler = Sampler::Sobol;

/// The samplers a tool's precision default tries, in order: [`TOOL_SAMPLER`], then
/// `antithetic`, which also covers per-asset paths (about 2.4× Philox's variance reduction on
/// a drawdown there, engine/tests/samplers.rs).
const TOOL_SAMPLERS: [Sampler; 2] = [TOOL_SAMPLER, Sampler::Antithetic];

/// A tool call's body with the tools' defaults: a `simulate_goal` that names neither
/// `options.paths` nor `options.precision` asks for [`TOOL_PRECISION`], drawn by the first of
/// [`TOOL_SAMPLERS`] the engine accepts for the request's market (its validation decides, so
/// the two cannot disagree; a bootstrap takes none of them and stays Philox), unless the agent
/// chose a sampler. Other operations' bodies pass unchanged, as does one that does not read as a
/// goal request (the validator then names what is wrong with it).
pub fn with_tool_defaults(operation: Operation, body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let unchanged = std::borrow::Cow::Borrowed(body);
    if operation != Operation::Simulate {
        return unchanged;
    }
    let Ok(written) = serde_json::from_slice::<Value>(body) else {
        return unchanged;
    };
    // A sampler written in the body, even `philox`, is the agent's choice.
    let chose_sampler = written.pointer("/options/sampler").is_some();
    let Ok(mut request) = serde_json::from_value::<GoalRequest>(written) else {
        return unchanged;
    };
    if request.options.paths.is_some() || request.options.precision.is_some() {
        return unchanged;
    }
    request.options.precision = Some(Precision {
        success_probability: TOOL_PRECISION,
    });
    if !chose_sampler {
        let accepted = TOOL_SAMPLERS.into_iter().find_map(|sampler| {
            let mut drawn = request.clone();
            drawn.options.sampler = sampler;
            let refused = sextant_engine::validate::prepare(&drawn)
                .is_err_and(|e| e.field == "options.sampler");
            (!refused).then_some(drawn)
        });
        if let Some(drawn) = accepted {
            request = drawn;
        }
    }
    serde_json::to_vec(&request).map_or(unchanged, std::borrow::Cow::Owned)
}

pub fn summary(operation: Operation, body: &[u8], result: &Value) -> Result<String, ApiError> {
    Ok(match operation {
        Operation::Simulate => {
            let request: GoalRequest = super::parse(body)?;
            simulation_summary(&request, &read(result)?)
        }
        Operation::RequiredContribution | Operation::SustainableWithdrawal => {
            let r: SolveResult = read(result)?;
            let what = if operation == Operation::RequiredContribution {
                "Saving"
            } else {
                "Withdrawing"
            };
            match r.value {
                Some(v) => format!(
                    "{what} {}/month gives a {} chance of success (the threshold is {}).",
                    money(v),
                    pct(r.success_probability),
                    pct(r.success_threshold)
                ),
                None => format!(
                    "No monthly amount reaches the {} threshold; the closest gives {}.",
                    pct(r.success_threshold),
                    pct(r.success_probability)
                ),
            }
        }
        Operation::WhatIf => {
            let r: WhatIfResult = read(result)?;
            let parts: Vec<String> = r
                .variants
                .iter()
                .map(|v| format!("{}: {}", v.name, pct(v.result.success_probability)))
                .collect();
            format!(
                "Chance of success: base {}; {}.",
                pct(r.base.success_probability),
                parts.join("; ")
            )
        }
        Operation::Sensitivity => {
            let r: SensitivityResult = read(result)?;
            let bars: Vec<String> = r
                .tornado
                .iter()
                .take(3)
                .map(|b| format!("{} (swing {} points)", b.input, (100.0 * b.swing).round()))
                .collect();
            format!("The inputs that move success most: {}.", bars.join(", "))
        }
        Operation::Frontier => {
            let r: FrontierReport = read(result)?;
            let mv = &r.min_variance;
            let mut s = format!(
                "The frontier runs from {} expected return at {} volatility (minimum variance)",
                pct(mv.expected_return),
                pct(mv.volatility)
            );
            if let Some(top) = r.points.last() {
                s += &format!(
                    " to {} at {} volatility",
                    pct(top.expected_return),
                    pct(top.volatility)
                );
            }
            if let Some(ms) = &r.max_sharpe {
                s += &format!(
                    "; the maximum-Sharpe portfolio expects {} at {} volatility",
                    pct(ms.expected_return),
                    pct(ms.volatility)
                );
            }
            s + "."
        }
        Operation::Sweep => {
            let r: SweepReport = read(result)?;
            let best = &r.best;
            let mut s = format!(
                "The best frontier allocation gives a {} chance of success ({} expected return, \
                 {} volatility)",
                pct(best.success_probability),
                pct(best.portfolio.expected_return),
                pct(best.portfolio.volatility)
            );
            match &r.least_volatile_meeting_threshold {
                Some(p) => {
                    s += &format!(
                        "; the least volatile allocation meeting the {} threshold has {} \
                         volatility and a {} chance.",
                        pct(r.success_threshold),
                        pct(p.portfolio.volatility),
                        pct(p.success_probability)
                    )
                }
                None => {
                    s += &format!(
                        "; no allocation meets the {} threshold.",
                        pct(r.success_threshold)
                    )
                }
            }
            s
        }
        Operation::Risk => {
            let r: RiskReport = read(result)?;
            format!(
                "Expected return {}, volatility {}; over one year a 5% chance of losing more \
                 than {} (average loss in those cases {}); median maximum drawdown over {} \
                 months {}.",
                pct(r.expected_return),
                pct(r.volatility),
                pct(r.value_at_risk.parametric.p95),
                pct(r.conditional_value_at_risk.parametric.p95),
                r.max_drawdown.horizon_months,
                pct(r.max_drawdown.p50),
            )
        }
        Operation::Plan => {
            let request: PlanRequest = super::parse(body)?;
            plan_summary(&request, &read(result)?)
        }
        Operation::PlanSpending => {
            let r: SpendingSolution = read(result)?;
            if r.attainable {
                format!(
                    "The household can spend {}/month in today's dollars ({} essential + {} \
                     discretionary) with a {} chance of success (the threshold is {}).",
                    money(r.essential + r.discretionary),
                    money(r.essential),
                    money(r.discretionary),
                    pct(r.plan.success_probability),
                    pct(r.success_threshold)
                )
            } else {
                format!(
                    "Even spending nothing, the plan's chance of success is {}, below the {} \
                     threshold.",
                    pct(r.plan.success_probability),
                    pct(r.success_threshold)
                )
            }
        }
        Operation::PlanClaiming => {
            let request: PlanRequest = super::parse(body)?;
            let r: ClaimingSolution = read(result)?;
            let ages = |ages: &[u32]| {
                let said: Vec<String> = ages
                    .iter()
                    .zip(&request.plan.social_security)
                    .map(|(age, benefit)| {
                        let name = request
                            .plan
                            .people
                            .get(benefit.person)
                            .map_or("?", |p| p.name.as_str());
                        format!("{age} ({name})")
                    })
                    .collect();
                said.join(" and ")
            };
            let mut s = format!(
                "Claiming Social Security at {} gives the best chance of success, {}, with a \
                 median estate of {} in today's dollars",
                ages(&r.best.claim_ages),
                pct(r.best.success_probability),
                money(r.best.median_real_estate)
            );
            if let Some(worst) = r
                .options
                .iter()
                .min_by(|a, b| a.success_probability.total_cmp(&b.success_probability))
            {
                s += &format!(
                    "; the worst of the {} combinations, at {}, gives {}",
                    r.options.len(),
                    ages(&worst.claim_ages),
                    pct(worst.success_probability)
                );
            }
            s + "."
        }
        Operation::PlanWithdrawalOrders => {
            let r: OrderComparison = read(result)?;
            let said = |o: &sextant_engine::plan::solve::OrderOutcome| {
                format!(
                    "{} ({} success, lifetime taxes {} on average, median estate {} today)",
                    o.order,
                    pct(o.success_probability),
                    money(o.mean_lifetime_taxes),
                    money(o.median_real_estate)
                )
            };
            let best = r.orders.iter().max_by(|a, b| {
                a.success_probability
                    .total_cmp(&b.success_probability)
                    .then(a.median_real_estate.total_cmp(&b.median_real_estate))
            });
            match (best, r.orders.first()) {
                (Some(best), Some(default)) if best.order != default.order => format!(
                    "Best withdrawal order: {}; the default order: {}.",
                    said(best),
                    said(default)
                ),
                (Some(best), _) => format!("Best withdrawal order: the default, {}.", said(best)),
                _ => "No withdrawal order was run.".into(),
            }
        }
    })
}

fn plan_summary(request: &PlanRequest, result: &PlanResult) -> String {
    let first = request
        .plan
        .people
        .first()
        .map_or("person 0", |p| p.name.as_str());
    let mut s = format!(
        "{} chance the plan pays every essential expense for life (± {:.1} points)",
        pct(result.success_probability),
        100.0 * result.standard_error
    );
    if result.depletion.probability > 0.0 {
        s += &format!(
            "; {} chance of running out",
            pct(result.depletion.probability)
        );
        if let Some(age) = result.depletion.median_age {
            s += &format!(", typically at {first}'s age {age:.0}");
        }
    }
    if result.spending_cut_probability > 0.0 {
        s += &format!(
            "; spending is cut in some year in {} of cases",
            pct(result.spending_cut_probability)
        );
    }
    if let Some(estate) = result.estate.real_percentiles.get(50.0) {
        s += &format!("; median estate {} in today's dollars", money(estate));
    }
    // The request's named histories are resolved (inline) by the time it is summarised.
    let history_inflation = matches!(
        &request.market.model,
        ReturnModel::Bootstrap { history: HistorySource::Inline(h), .. }
            if h.months.iter().any(|m| m.inflation.is_some())
    );
    s + &format!(
        "; lifetime taxes {} on average{}{}{}.",
        money(result.lifetime_taxes.mean),
        model_clause(&request.market.model),
        result
            .rebalancing
            .as_ref()
            .map(|r| rebalancing_clause(&request.market, r))
            .unwrap_or_default(),
        inflation_clause(&request.market.inflation, history_inflation).unwrap_or_default()
    )
}

/// Per-asset paths as a clause: the assets held, the rule, and how often and how much it
/// traded (a goal's over its horizon, a plan's over its paths' lives).
fn rebalancing_clause(market: &Market, r: &RebalancingStats) -> String {
    let assets = market.assets.as_ref().map_or(0, Vec::len);
    match market.rebalancing {
        Rebalancing::Band { band } => format!(
            ", holding {assets} assets that drift with their own returns and are rebalanced when a weight strays {} from its target ({:.1} times, trading {} of the portfolio a year on average)",
            rate(band),
            r.mean_rebalances,
            rate(r.mean_annual_turnover)
        ),
        Rebalancing::None => format!(
            ", holding {assets} assets that drift with their own returns and are never rebalanced"
        ),
        _ => format!(
            ", holding {assets} assets rebalanced once a year ({:.1} times, trading {} of the portfolio a year on average)",
            r.mean_rebalances,
            rate(r.mean_annual_turnover)
        ),
    }
}

/// A stochastic price index as a clause: AR(1) inflation, or (`history_inflation`) the
/// inflation of the history a bootstrap draws from; `None` for a fixed rate.
fn inflation_clause(inflation: &Inflation, history_inflation: bool) -> Option<String> {
    match *inflation {
        Inflation::Model(InflationModel::Ar1 {
            mean, volatility, ..
        }) => Some(format!(
            ", with inflation averaging {} a year and uncertain by {}",
            rate(mean),
            rate(volatility)
        )),
        Inflation::Rate(_) if history_inflation => Some(" and the history's inflation".to_string()),
        Inflation::Rate(_) => None,
    }
}

/// How the market's months are drawn, as a clause ("" for §1's lognormal).
fn model_clause(model: &ReturnModel) -> String {
    match model {
        ReturnModel::Lognormal => String::new(),
        ReturnModel::StudentT { df } => {
            format!(", with fat-tailed monthly returns (Student-t, {df} degrees of freedom)")
        }
        ReturnModel::Regime { regimes, .. } => {
            let names: Vec<&str> = regimes.iter().map(|r| r.name.as_str()).collect();
            format!(
                ", with markets switching between {} regimes ({})",
                regimes.len(),
                names.join(", ")
            )
        }
        ReturnModel::Bootstrap {
            history,
            block_months,
            method,
        } => {
            let source = match history {
                HistorySource::Named(name) => format!("the history {name:?}"),
                HistorySource::Inline(h) => format!("a {}-month history", h.months.len()),
            };
            let blocks = match method {
                BlockMethod::Circular => format!("blocks of {block_months} months"),
                BlockMethod::Stationary => format!("blocks of {block_months} months on average"),
            };
            format!(", with returns resampled from {source} in {blocks}")
        }
    }
}

fn simulation_summary(request: &GoalRequest, result: &SimulationResult) -> String {
    let p = result.success_probability;
    let months = f64::from(request.goal.horizon_months);
    let target = result.target_nominal;
    // Under stochastic inflation a real target has no one nominal amount: say it in today's.
    let real_target = result.real.is_some() && request.goal.target_real;
    let mut s = if real_target && target > 0.0 {
        format!(
            "{} chance of reaching {} in today's money in {}",
            pct(p),
            money(request.goal.target_amount),
            years(months)
        )
    } else if target > 0.0 {
        format!(
            "{} chance of reaching {} in {}",
            pct(p),
            money(target),
            years(months)
        )
    } else {
        format!(
            "{} chance of never running out of money over {}",
            pct(p),
            years(months)
        )
    };
    s += &format!(
        " (±{:.1} percentage points, one standard error over {} paths)",
        100.0 * result.standard_error,
        result.paths
    );
    if let Some(m) = result.terminal.percentiles.get(50.0) {
        s += &format!("; median wealth then {}", money(m));
    }
    let depleted = result.depletion.probability;
    if depleted > 0.0 {
        s += &format!("; {} chance of running out", pct(depleted));
        if let Some(month) = result.depletion.median_month {
            s += &format!(" (typically after {})", years(month));
        }
    }
    s += &model_clause(&request.market.model);
    if let Some(clamped) = result.clamped_months.filter(|&c| c > 0) {
        s += &format!(
            "; {clamped} of the {} simulated months lost everything",
            result.paths * u64::from(request.goal.horizon_months)
        );
    }
    if let Some(r) = &result.rebalancing {
        s += &rebalancing_clause(&request.market, r);
    }
    // A real wealth without a model: the history's own inflation.
    if let Some(inflation) = inflation_clause(&request.market.inflation, result.real.is_some()) {
        s += &inflation;
        if let Some(m) = result
            .real
            .as_ref()
            .and_then(|r| r.terminal.percentiles.get(50.0))
        {
            s += &format!("; median wealth then {} in today's money", money(m));
        }
    }
    s + "."
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `body` through [`with_tool_defaults`] as a simulation, read back as a request.
    fn defaulted(body: Value) -> GoalRequest {
        let bytes = serde_json::to_vec(&body).unwrap();
        serde_json::from_slice(&with_tool_defaults(Operation::Simulate, &bytes)).unwrap()
    }

    fn example(name: &str) -> Value {
        let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut body: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        body.as_object_mut().unwrap().remove("options");
        body
    }

    /// A tool call naming neither paths nor a precision asks for the tools' precision under
    /// their sampler; one that chose either, or another operation, or a body that is not a
    /// goal, passes as written (byte for byte); a chosen sampler, even philox, is kept.
    #[test]
    fn tool_calls_default_to_a_precision_unless_they_chose_paths() {
        let goal = json!({"goal": {"initial_wealth": 100000, "monthly_contribution": 500,
                                    "horizon_months": 240, "target_amount": 400000},
                          "market": {"expected_return": 0.06, "volatility": 0.15}});
        let request = defaulted(goal.clone());
        assert_eq!(
            request.options.precision.map(|p| p.success_probability),
            Some(TOOL_PRECISION)
        );
        assert_eq!(request.options.sampler, TOOL_SAMPLER);
        assert_eq!(
            request.options.paths(),
            sextant_engine::request::FIRST_ROUND_PATHS
        );

        let mut philox = goal.clone();
        philox["options"] = json!({"sampler": "philox", "seed": 3});
        let request = defaulted(philox);
        assert!(request.options.precision.is_some());
        assert_eq!(
            (request.options.sampler, request.options.seed),
            (Sampler::Philox, 3)
        );

        for options in [
            json!({"paths": 2000}),
            json!({"precision": {"success_probability": 0.01}}),
        ] {
            let mut chosen = goal.clone();
            chosen["options"] = options;
            let bytes = serde_json::to_vec(&chosen).unwrap();
            assert!(matches!(
                with_tool_defaults(Operation::Simulate, &bytes),
                std::borrow::Cow::Borrowed(b) if b == &bytes[..]
            ));
        }
        let bytes = serde_json::to_vec(&goal).unwrap();
        assert!(matches!(
            with_tool_defaults(Operation::RequiredContribution, &bytes),
            std::borrow::Cow::Borrowed(_)
        ));
        for not_a_goal in [&b"[1, 2]"[..], b"{\"goal\": 3}", b"not json"] {
            assert_eq!(
                &*with_tool_defaults(Operation::Simulate, not_a_goal),
                not_a_goal
            );
        }
    }

    /// Where the engine refuses the tools' sampler the next that it accepts draws the
    /// precision: `antithetic` on per-asset paths, and Philox on a bootstrap (which refuses
    /// both); each defaulted request validates.
    #[test]
    fn the_tools_sampler_gives_way_where_the_engine_refuses_it() {
        for (name, expected) in [
            ("bootstrap.json", Sampler::Philox),
            ("rebalancing.json", Sampler::Antithetic),
        ] {
            let request = defaulted(example(name));
            assert!(request.options.precision.is_some(), "{name}");
            assert_eq!(request.options.sampler, expected, "{name}");
            sextant_engine::validate::prepare(&request).unwrap();
            let mut forced = request.clone();
            forced.options.sampler = TOOL_SAMPLER;
            let refused = sextant_engine::validate::prepare(&forced).unwrap_err();
            assert_eq!(refused.field, "options.sampler", "{name}");
        }
    }

    /// The defaulted tool call meets its precision, and its summary quotes the standard error
    /// and paths the result reports.
    #[test]
    fn a_tool_summary_quotes_the_standard_error_it_met() {
        let request = defaulted(json!({
            "goal": {"initial_wealth": 200000, "monthly_contribution": 1000,
                     "horizon_months": 240, "target_amount": 900000},
            "market": {"expected_return": 0.06, "volatility": 0.15},
            "options": {"seed": 11}
        }));
        let result = sextant_engine::Engine::default()
            .simulate(&request)
            .unwrap();
        let report = result
            .sampling
            .as_ref()
            .unwrap()
            .precision
            .as_ref()
            .unwrap();
        assert!(
            report.met && result.standard_error <= TOOL_PRECISION,
            "{report:?}"
        );
        let text = simulation_summary(&request, &result);
        let quoted = format!(
            "(±{:.1} percentage points, one standard error over {} paths)",
            100.0 * result.standard_error,
            result.paths
        );
        assert!(text.contains(&quoted), "{text}");
        assert!(
            result.standard_error > 0.0 && report.paths_simulated >= result.paths,
            "{report:?}"
        );
    }

    #[test]
    fn a_fat_tailed_simulation_says_so() {
        let request: GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"initial_wealth": 500000, "monthly_withdrawal": 2500,
                     "withdrawal_start_month": 0, "horizon_months": 240},
            "market": {"expected_return": 0.06, "volatility": 0.6,
                       "model": {"kind": "student_t", "df": 2.5}},
            "options": {"paths": 2000, "seed": 8}
        }))
        .unwrap();
        let result = sextant_engine::Engine::default()
            .simulate(&request)
            .unwrap();
        let clamped = result.clamped_months.unwrap();
        assert!(clamped > 0);
        let text = simulation_summary(&request, &result);
        assert!(
            text.contains("fat-tailed monthly returns (Student-t, 2.5 degrees of freedom)")
                && text.contains(&format!("{clamped} of the 480000 simulated months")),
            "{text}"
        );
        let mut plain = request.clone();
        plain.market.model = ReturnModel::Lognormal;
        let result = sextant_engine::Engine::default().simulate(&plain).unwrap();
        assert!(!simulation_summary(&plain, &result).contains("Student-t"));
    }

    #[test]
    fn a_simulation_under_stochastic_inflation_says_so_in_todays_money() {
        let request: GoalRequest = serde_json::from_value(json!({
            "goal": {"initial_wealth": 50000, "monthly_contribution": 1000, "horizon_months": 240,
                     "target_amount": 400000, "target_real": true},
            "market": {"expected_return": 0.06, "volatility": 0.12,
                       "inflation": {"kind": "ar1", "mean": 0.025, "volatility": 0.015}},
            "options": {"paths": 2000}
        }))
        .unwrap();
        let result = sextant_engine::Engine::default()
            .simulate(&request)
            .unwrap();
        let text = simulation_summary(&request, &result);
        assert!(
            text.contains("chance of reaching $400,000 in today's money in 20 years"),
            "{text}"
        );
        assert!(
            text.contains("with inflation averaging 2.5% a year and uncertain by 1.5%"),
            "{text}"
        );
        assert!(text.contains("in today's money."), "{text}");
    }

    #[test]
    fn a_regime_simulation_names_its_regimes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/regimes.json");
        let mut request: GoalRequest =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        request.options.paths = Some(2000);
        let result = sextant_engine::Engine::default()
            .simulate(&request)
            .unwrap();
        let text = simulation_summary(&request, &result);
        assert!(
            text.contains("with markets switching between 2 regimes (normal, bear)"),
            "{text}"
        );
    }

    #[test]
    fn a_plans_summary_names_its_market_model() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plan-couple.json");
        let mut plan: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        plan["options"]["paths"] = serde_json::json!(1000);
        plan["market"]["model"] = serde_json::json!({"kind": "student_t", "df": 4});
        let request: PlanRequest = serde_json::from_value(plan.clone()).unwrap();
        let result = sextant_engine::Engine::default().plan(&request).unwrap();
        let text = plan_summary(&request, &result);
        assert!(
            text.ends_with(
                "on average, with fat-tailed monthly returns (Student-t, 4 degrees of freedom)."
            ),
            "{text}"
        );
        // Its stochastic inflation too, after the model.
        plan["market"]["inflation"] =
            serde_json::json!({"kind": "ar1", "mean": 0.03, "volatility": 0.015});
        let request: PlanRequest = serde_json::from_value(plan).unwrap();
        let result = sextant_engine::Engine::default().plan(&request).unwrap();
        let text = plan_summary(&request, &result);
        assert!(
            text.ends_with(
                "(Student-t, 4 degrees of freedom), with inflation averaging 3.0% a year and uncertain by 1.5%."
            ),
            "{text}"
        );
    }

    #[test]
    fn money_reads_as_a_planner_writes_it() {
        assert_eq!(money(1_500_000.0), "$1,500,000");
        assert_eq!(money(1840.4), "$1,840");
        assert_eq!(money(-999.6), "-$1,000");
        assert_eq!(money(0.0), "$0");
    }

    #[test]
    fn every_tool_has_an_object_schema() {
        for tool in &TOOLS {
            let schema = tool.input_schema();
            assert_eq!(schema["type"], "object", "{}", tool.name);
        }
        assert_eq!(
            catalogue(true)["tools"].as_array().unwrap().len(),
            TOOLS.len()
        );
    }
}
