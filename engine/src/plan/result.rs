//! The outputs of docs/model.md §5 from every path's outcome: plain data with serde.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::prepare::PreparedPlan;
use super::simulate::{PlanSamples, ReducedYear};
use crate::quantile::percentiles_of;
use crate::result::{Percentiles, RebalancingStats, ENGINE_VERSION};

/// Everything one plan's simulation reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanResult {
    /// The fraction of paths whose accounts paid every essential need until the last death.
    pub success_probability: f64,
    /// sqrt(p̂(1−p̂)/N).
    pub standard_error: f64,
    /// Each one-off goal: how often it fell due while someone was alive, and how often it was
    /// paid when it did.
    pub goals: Vec<GoalOutcome>,
    /// The fraction of paths with a guardrail cut or discretionary spending left unpaid.
    pub spending_cut_probability: f64,
    /// One entry per plan year, at its end.
    pub yearly: Vec<PlanYear>,
    pub estate: EstateStats,
    /// Every year's tax over the plan, nominal.
    pub lifetime_taxes: MoneyStats,
    pub ages_at_death: Vec<AgesAtDeath>,
    pub guardrails: GuardrailCounts,
    /// The fraction of paths that failed, and the median age of person 0 when they did.
    pub depletion: PlanDepletion,
    /// Under a Student-t `market.model` only: the months, over every path's life, whose
    /// return was clamped at −100% (docs/model.md §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamped_months: Option<u64>,
    /// Under per-asset paths (`market.rebalancing` other than monthly, docs/model.md §4.5)
    /// only: how often and how much the household's portfolio was traded back to its weights,
    /// per path over its life (a failed path counts until it failed); `mean_annual_turnover`
    /// is the turnover per year lived, over every path's years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalancing: Option<RebalancingStats>,
    /// The longest a path could run, in months.
    pub horizon_months: u32,
    pub paths: u64,
    pub seed: u64,
    pub backend: String,
    pub engine_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalOutcome {
    pub name: String,
    pub essential: bool,
    /// The fraction of paths where someone was alive in the goal's month.
    pub due_probability: f64,
    /// Among those paths, the fraction where it was paid.
    pub paid_probability: f64,
}

/// The fan charts at the end of one plan year, over the paths still running then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanYear {
    /// Months elapsed: 12, 24, …
    pub month: u32,
    /// Person 0's age then, in years (as if alive).
    pub age: f64,
    /// The fraction of paths with someone still alive.
    pub running: f64,
    /// Total wealth, nominal; absent when no path is still running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wealth: Option<Percentiles>,
    /// Total wealth in today's dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wealth_real: Option<Percentiles>,
    /// The year's spending in today's dollars (annual).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spending_real: Option<Percentiles>,
    /// The fraction of all paths that had failed by this month.
    pub depleted: f64,
}

/// What is left when the last person dies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstateStats {
    pub mean: f64,
    pub percentiles: Percentiles,
    /// In today's dollars (deflated from the month the path ended).
    pub real_percentiles: Percentiles,
    /// The tax-deferred part of the accounts left at the end, over all paths: Σ tax-deferred /
    /// Σ accounts (before the open year's tax comes out, which the tax-deferred part may
    /// exceed), so always in [0, 1].
    pub tax_deferred_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoneyStats {
    pub mean: f64,
    pub percentiles: Percentiles,
}

/// A person's age at death, in years.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgesAtDeath {
    pub name: String,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailCounts {
    /// Mean number of guardrail cuts per path.
    pub mean_cuts: f64,
    pub mean_raises: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanDepletion {
    pub probability: f64,
    /// Median age of person 0 in the month of failure, over failed paths; `null` if none failed.
    pub median_age: Option<f64>,
}

/// The §5 outputs of `samples`.
pub fn build_plan_result(plan: &PreparedPlan, samples: PlanSamples, backend: &str) -> PlanResult {
    let outcomes = &samples.outcomes;
    let n = outcomes.len() as f64;
    let ps = &plan.percentiles;
    let failed = outcomes.iter().filter(|o| o.failed_at.is_some()).count() as f64;
    let success = 1.0 - failed / n;
    let age0 = f64::from(plan.people[0].age_months) / 12.0;

    let goals = plan
        .goals
        .iter()
        .enumerate()
        .map(|(g, goal)| {
            let due = outcomes
                .iter()
                .filter(|o| o.goals_due >> g & 1 == 1)
                .count();
            let paid = outcomes
                .iter()
                .filter(|o| o.goals_paid >> g & 1 == 1)
                .count();
            GoalOutcome {
                name: goal.name.clone(),
                essential: goal.essential,
                due_probability: due as f64 / n,
                paid_probability: if due == 0 {
                    0.0
                } else {
                    paid as f64 / due as f64
                },
            }
        })
        .collect();

    let mut failure_months: Vec<u32> = outcomes.iter().filter_map(|o| o.failed_at).collect();
    failure_months.sort_unstable();
    let reduced = if samples.reduced.is_empty() {
        reduce_tables(&samples, ps)
    } else {
        samples.reduced
    };
    let yearly = reduced
        .into_iter()
        .enumerate()
        .map(|(y, year)| {
            let month = 12 * (y as u32 + 1);
            let index = plan.index(y as u32 + 1);
            let wealth = year.wealth.map(|w| labelled(ps, w));
            // Under a stochastic index each path's W / I; else the nominal over the year's I.
            let wealth_real = match year.real_wealth {
                Some(real) => Some(labelled(ps, real)),
                None => wealth
                    .as_ref()
                    .map(|w| Percentiles(w.0.iter().map(|&(p, v)| (p, v / index)).collect())),
            };
            PlanYear {
                month,
                age: age0 + f64::from(month) / 12.0,
                running: year.running as f64 / n,
                wealth,
                wealth_real,
                spending_real: year.real_spending.map(|s| labelled(ps, s)),
                depleted: failure_months.partition_point(|&m| m < month) as f64 / n,
            }
        })
        .collect();

    let mut estate: Vec<f64> = outcomes.iter().map(|o| o.estate).collect();
    let mut estate_real: Vec<f64> = outcomes.iter().map(|o| o.estate / o.end_index).collect();
    let estate_total: f64 = estate.iter().sum();
    let deferred_total: f64 = outcomes.iter().map(|o| o.estate_tax_deferred).sum();
    let accounts_total: f64 = outcomes.iter().map(|o| o.estate_accounts).sum();
    let mut taxes: Vec<f64> = outcomes.iter().map(|o| o.taxes).collect();

    let ages_at_death = plan
        .people
        .iter()
        .enumerate()
        .map(|(p, person)| {
            let mut ages: Vec<f64> = outcomes
                .iter()
                .map(|o| f64::from(person.age_months + o.deaths[p]) / 12.0)
                .collect();
            let q = percentiles_of(&mut ages, &[10.0, 50.0, 90.0]);
            AgesAtDeath {
                name: person.name.clone(),
                p10: q[0],
                p50: q[1],
                p90: q[2],
            }
        })
        .collect();

    let mut failure_ages: Vec<f64> = failure_months
        .iter()
        .map(|&m| age0 + f64::from(m) / 12.0)
        .collect();
    PlanResult {
        success_probability: success,
        standard_error: (success * (1.0 - success) / n).sqrt(),
        goals,
        spending_cut_probability: outcomes.iter().filter(|o| o.spending_cut).count() as f64 / n,
        yearly,
        estate: EstateStats {
            mean: estate_total / n,
            percentiles: labelled(ps, percentiles_of(&mut estate, ps)),
            real_percentiles: labelled(ps, percentiles_of(&mut estate_real, ps)),
            tax_deferred_share: if accounts_total > 0.0 {
                deferred_total / accounts_total
            } else {
                0.0
            },
        },
        lifetime_taxes: MoneyStats {
            mean: taxes.iter().sum::<f64>() / n,
            percentiles: labelled(ps, percentiles_of(&mut taxes, ps)),
        },
        ages_at_death,
        guardrails: GuardrailCounts {
            mean_cuts: outcomes
                .iter()
                .map(|o| f64::from(o.guardrail_cuts))
                .sum::<f64>()
                / n,
            mean_raises: outcomes
                .iter()
                .map(|o| f64::from(o.guardrail_raises))
                .sum::<f64>()
                / n,
        },
        depletion: PlanDepletion {
            probability: failed / n,
            median_age: (!failure_ages.is_empty())
                .then(|| percentiles_of(&mut failure_ages, &[50.0])[0]),
        },
        clamped_months: plan
            .student_t
            .map(|_| outcomes.iter().map(|o| u64::from(o.clamped_months)).sum()),
        rebalancing: plan.asset_paths.as_ref().map(|assets| {
            // Sums in path order: the same bits whatever ran the paths.
            let turnover: f64 = outcomes.iter().map(|o| o.turnover).sum();
            let years: f64 = outcomes.iter().map(|o| f64::from(o.end_month)).sum::<f64>() / 12.0;
            RebalancingStats {
                rule: assets.rule.name().to_string(),
                mean_rebalances: outcomes
                    .iter()
                    .map(|o| f64::from(o.rebalances))
                    .sum::<f64>()
                    / n,
                mean_turnover: turnover / n,
                mean_annual_turnover: if years > 0.0 { turnover / years } else { 0.0 },
            }
        }),
        horizon_months: plan.horizon,
        paths: plan.paths,
        seed: plan.seed,
        backend: backend.to_string(),
        engine_version: ENGINE_VERSION.to_string(),
    }
}

/// Each year's two fan-chart columns of `samples`' tables, over the paths still running
/// (not NaN), reduced to the percentiles `ps`: what a GPU reduces on the device
/// ([`super::Yearly::Percentiles`]), here on the host, years in parallel (a strided gather
/// and a selection each, the larger share of a plan's result on many cores).
pub fn reduce_tables(samples: &PlanSamples, ps: &[f64]) -> Vec<ReducedYear> {
    (0..samples.years)
        .into_par_iter()
        .map(|y| {
            let column = |table: &[f32]| -> Vec<f64> {
                table
                    .chunks(samples.years)
                    .map(|row| row[y])
                    .filter(|v| !v.is_nan())
                    .map(f64::from)
                    .collect()
            };
            let mut wealth = column(&samples.wealth);
            let mut spending = column(&samples.real_spending);
            let mut real = column(&samples.real_wealth);
            ReducedYear {
                running: wealth.len() as u64,
                wealth: (!wealth.is_empty()).then(|| percentiles_of(&mut wealth, ps)),
                real_spending: (!spending.is_empty()).then(|| percentiles_of(&mut spending, ps)),
                real_wealth: (!real.is_empty()).then(|| percentiles_of(&mut real, ps)),
            }
        })
        .collect()
}

fn labelled(ps: &[f64], values: Vec<f64>) -> Percentiles {
    Percentiles(ps.iter().copied().zip(values).collect())
}
