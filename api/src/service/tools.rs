//! The operations as tools an LLM agent can call: a name, a description written for a model,
//! and the input's JSON Schema (generated from the request types, so it cannot drift from what
//! the service accepts), in the shape of the common tool-use APIs; and a plain-language summary
//! of each result for the agent to quote.

use schemars::{schema_for, JsonSchema};
use serde_json::{json, Value};
use sextant_engine::frontier::FrontierRequest;
use sextant_engine::risk::RiskRequest;
use sextant_engine::scenarios::{SensitivityRequest, WhatIfRequest};
use sextant_engine::sweep::SweepRequest;
use sextant_engine::GoalRequest;

use super::Operation;

pub struct Tool {
    pub name: &'static str,
    pub operation: Operation,
    pub description: &'static str,
    schema: fn() -> Value,
}

fn schema<T: JsonSchema>() -> Value {
    serde_json::to_value(schema_for!(T)).unwrap_or(Value::Null)
}

const TOOLS: [Tool; 8] = [
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
];

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
            let schema = (t.schema)();
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

fn num(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer).and_then(Value::as_f64)
}

fn years(months: f64) -> String {
    let y = months / 12.0;
    if (y - y.round()).abs() < 1e-9 {
        format!("{y:.0} years")
    } else {
        format!("{y:.1} years")
    }
}

/// A sentence or two an agent can quote.
pub fn summary(operation: Operation, input: &Value, result: &Value) -> String {
    match operation {
        Operation::Simulate => simulation_summary(input, result),
        Operation::RequiredContribution | Operation::SustainableWithdrawal => {
            let threshold = num(result, "/success_threshold").unwrap_or(0.8);
            let what = if operation == Operation::RequiredContribution {
                "Saving"
            } else {
                "Withdrawing"
            };
            match num(result, "/value") {
                Some(v) => format!(
                    "{what} {}/month gives a {} chance of success (the threshold is {}).",
                    money(v),
                    pct(num(result, "/success_probability").unwrap_or(0.0)),
                    pct(threshold)
                ),
                None => format!(
                    "No monthly amount reaches the {} threshold; the closest gives {}.",
                    pct(threshold),
                    pct(num(result, "/success_probability").unwrap_or(0.0))
                ),
            }
        }
        Operation::WhatIf => {
            let parts: Vec<String> = result
                .pointer("/variants")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .map(|v| {
                            format!(
                                "{}: {}",
                                v["name"].as_str().unwrap_or("?"),
                                pct(num(v, "/result/success_probability").unwrap_or(0.0))
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "Chance of success: base {}; {}.",
                pct(num(result, "/base/success_probability").unwrap_or(0.0)),
                parts.join("; ")
            )
        }
        Operation::Sensitivity => {
            let bars: Vec<String> = result
                .pointer("/tornado")
                .and_then(Value::as_array)
                .map(|bars| {
                    bars.iter()
                        .take(3)
                        .map(|b| {
                            format!(
                                "{} (swing {} points)",
                                b["input"].as_str().unwrap_or("?"),
                                (100.0 * num(b, "/swing").unwrap_or(0.0)).round()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("The inputs that move success most: {}.", bars.join(", "))
        }
        Operation::Frontier => {
            let mv = &result["min_variance"];
            let mut s = format!(
                "The frontier runs from {} expected return at {} volatility (minimum variance)",
                pct(num(mv, "/expected_return").unwrap_or(0.0)),
                pct(num(mv, "/volatility").unwrap_or(0.0))
            );
            if let Some(top) = result["points"].as_array().and_then(|p| p.last()) {
                s += &format!(
                    " to {} at {} volatility",
                    pct(num(top, "/expected_return").unwrap_or(0.0)),
                    pct(num(top, "/volatility").unwrap_or(0.0))
                );
            }
            if let Some(ms) = result.get("max_sharpe").filter(|v| !v.is_null()) {
                s += &format!(
                    "; the maximum-Sharpe portfolio expects {} at {} volatility",
                    pct(num(ms, "/expected_return").unwrap_or(0.0)),
                    pct(num(ms, "/volatility").unwrap_or(0.0))
                );
            }
            s + "."
        }
        Operation::Sweep => {
            let best = &result["best"];
            let mut s = format!(
                "The best frontier allocation gives a {} chance of success ({} expected return, \
                 {} volatility)",
                pct(num(best, "/success_probability").unwrap_or(0.0)),
                pct(num(best, "/expected_return").unwrap_or(0.0)),
                pct(num(best, "/volatility").unwrap_or(0.0))
            );
            match result
                .get("least_volatile_meeting_threshold")
                .filter(|v| !v.is_null())
            {
                Some(p) => {
                    s += &format!(
                        "; the least volatile allocation meeting the {} threshold has {} \
                         volatility and a {} chance.",
                        pct(num(result, "/success_threshold").unwrap_or(0.8)),
                        pct(num(p, "/volatility").unwrap_or(0.0)),
                        pct(num(p, "/success_probability").unwrap_or(0.0))
                    )
                }
                None => {
                    s += &format!(
                        "; no allocation meets the {} threshold.",
                        pct(num(result, "/success_threshold").unwrap_or(0.8))
                    )
                }
            }
            s
        }
        Operation::Risk => format!(
            "Expected return {}, volatility {}; over one year a 5% chance of losing more than {} \
             (average loss in those cases {}); median maximum drawdown over {} months {}.",
            pct(num(result, "/expected_return").unwrap_or(0.0)),
            pct(num(result, "/volatility").unwrap_or(0.0)),
            pct(num(result, "/value_at_risk/parametric/95").unwrap_or(0.0)),
            pct(num(result, "/conditional_value_at_risk/parametric/95").unwrap_or(0.0)),
            num(result, "/max_drawdown/horizon_months").unwrap_or(12.0),
            pct(num(result, "/max_drawdown/p50").unwrap_or(0.0)),
        ),
    }
}

fn simulation_summary(input: &Value, result: &Value) -> String {
    let p = num(result, "/success_probability").unwrap_or(0.0);
    let months = num(input, "/goal/horizon_months").unwrap_or(0.0);
    let target = num(result, "/target_nominal").unwrap_or(0.0);
    let median = num(result, "/terminal/percentiles/p50");
    let mut s = if target > 0.0 {
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
    if let Some(m) = median {
        s += &format!("; median wealth then {}", money(m));
    }
    let depleted = num(result, "/depletion/probability").unwrap_or(0.0);
    if depleted > 0.0 {
        s += &format!("; {} chance of running out", pct(depleted));
        if let Some(month) = num(result, "/depletion/median_month") {
            s += &format!(" (typically after {})", years(month));
        }
    }
    s + "."
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let schema = (tool.schema)();
            assert_eq!(schema["type"], "object", "{}", tool.name);
        }
        assert_eq!(
            catalogue(true)["tools"].as_array().unwrap().len(),
            TOOLS.len()
        );
    }
}
