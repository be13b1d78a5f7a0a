//! Validation of a [`PlanRequest`] and its preparation into a [`PreparedPlan`]: ages turned into
//! plan months, accounts and cash flows indexed, the market's month-by-month parameters, every
//! bound checked with an error that names the field (`plan.accounts[1].owner`).

use std::collections::HashMap;

use super::lifetime::{self, Longevity, MAX_AGE_YEARS};
use super::request::{
    AccountKind, LongevitySpec, PlanRequest, Priority, RuleSpec, SpendingRule, SpendingStart,
    WithdrawalOrder, DEFAULT_ORDER,
};
use super::social_security::claiming_factor;
use super::tax::{bracket_top, Bracket};
use crate::bootstrap::Bootstrap;
use crate::inflation::Ar1Inflation;
use crate::rebalance::AssetPaths;
use crate::regime::RegimeChain;
use crate::student_t::StudentT;
use crate::validate::{
    amount, growth_rate, inflation_model, market_schedule, mean_inflation, percentiles, MarketView,
    ValidationError, MAX_HORIZON_MONTHS,
};

/// Most paths one plan may ask for: a plan keeps two yearly figures per path for its fan
/// charts (4 bytes each, up to 100 years), 200 MB at this many paths (three under a
/// stochastic index, its real wealth too: 300 MB).
pub const MAX_PLAN_PATHS: u64 = 250_000;
/// Most accounts in one plan.
pub const MAX_ACCOUNTS: usize = 16;
/// Most one-off goals in one plan (each path keeps one bit per goal).
pub const MAX_GOALS: usize = 32;
/// Most incomes or contributions in one plan.
pub const MAX_FLOWS: usize = 32;
/// Most brackets in a tax schedule (the GPU kernels hold a schedule in fixed arrays of this
/// size: `MAX_BRACKETS` in shaders/plan.wgsl).
pub const MAX_BRACKETS: usize = 16;

/// A person, ages in months.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedPerson {
    pub name: String,
    /// Age at month 0, months.
    pub age_months: u32,
    pub longevity: Longevity,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreparedAccount {
    pub name: String,
    pub kind: AccountKind,
    pub balance: f64,
    /// Taxable accounts' cost basis (0 for the others).
    pub basis: f64,
    pub owner: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreparedContribution {
    pub account: usize,
    pub owner: usize,
    /// Month 0's amount; ×(1+growth)^⌊t/12⌋.
    pub amount: f64,
    pub growth: f64,
    /// First month without a contribution.
    pub end_month: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreparedIncome {
    pub owner: usize,
    /// Today's dollars (indexed) or nominal.
    pub amount: f64,
    pub start_month: u32,
    /// First month without it (u32::MAX: never ends while someone receives it).
    pub end_month: u32,
    pub indexed: bool,
    pub taxable: bool,
    pub survivor_fraction: f64,
}

/// A Social Security benefit: `amount` (today's dollars, the claiming factor applied) from
/// `claim_month`, indexed yearly.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedBenefit {
    pub person: usize,
    pub amount: f64,
    pub claim_month: u32,
    /// The request's PIA and full retirement age (months), for the claiming solver.
    pub pia: f64,
    pub full_retirement_age_months: u32,
}

impl PreparedBenefit {
    /// This benefit claimed at `claim_age_months` by someone `age_months` old today.
    pub fn claimed_at(&self, claim_age_months: u32, age_months: u32) -> PreparedBenefit {
        PreparedBenefit {
            amount: self.pia * claiming_factor(claim_age_months, self.full_retirement_age_months),
            claim_month: claim_age_months.saturating_sub(age_months),
            ..self.clone()
        }
    }
}

/// A spending rule with its parameters checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    Fixed,
    Percent {
        rate: f64,
    },
    FloorCeiling {
        rate: f64,
        ceiling: f64,
    },
    Vpw {
        real_return: f64,
        to_age: f64,
    },
    Guardrails {
        upper: f64,
        lower: f64,
        adjust: f64,
        min_years_left: f64,
        planning_age: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSpending {
    pub essential: f64,
    pub discretionary: f64,
    pub start_month: u32,
    pub survivor_fraction: f64,
    pub rule: Rule,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreparedGoalItem {
    pub name: String,
    pub month: u32,
    /// Today's dollars.
    pub amount: f64,
    pub essential: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreparedTax {
    pub brackets: Vec<Bracket>,
    pub standard_deduction: f64,
    pub capital_gains_rate: f64,
    pub social_security_taxable: f64,
}

/// Which accounts pay a withdrawal, in what order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Order {
    /// The three kinds in this order.
    Sequence([AccountKind; 3]),
    Proportional,
    /// Tax-deferred first while the year's ordinary income is below `ceiling` (annual, today's
    /// dollars, deduction included), then the default order.
    BracketFill {
        ceiling: f64,
    },
}

/// A plan ready for a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedPlan {
    pub people: Vec<PreparedPerson>,
    /// The request's accounts, then a taxable account the plan opens when it has none (RMDs
    /// and surpluses go to the first taxable account).
    pub accounts: Vec<PreparedAccount>,
    pub cash_account: usize,
    pub contributions: Vec<PreparedContribution>,
    pub incomes: Vec<PreparedIncome>,
    pub benefits: Vec<PreparedBenefit>,
    pub spending: PreparedSpending,
    pub goals: Vec<PreparedGoalItem>,
    pub tax: Option<PreparedTax>,
    pub order: Order,
    pub rmd_age: u32,
    pub flexible_reserve_years: f64,
    pub success_threshold: f64,
    /// The longest a path can run: until the last person can be alive, at most 1200 months.
    pub horizon: u32,
    /// exp(m/12) and sqrt(s²/12) for months 0 … horizon−1, as a goal's
    /// ([`crate::PreparedGoal::drift`]: under regimes regime k's months from k·horizon; under
    /// a Student-t market E[G] and the t's scale; under a bootstrap the fee's factor alone).
    pub drift: Vec<f64>,
    pub volatility: Vec<f32>,
    /// The Student-t month (docs/model.md §4.1), as a goal's.
    pub student_t: Option<StudentT>,
    /// The regime chain (§4.2), as a goal's.
    pub regimes: Option<RegimeChain>,
    /// The bootstrap from a history (§4.3), as a goal's; when its history carries inflation,
    /// that drives each path's price index.
    pub bootstrap: Option<Bootstrap>,
    /// Annual inflation of a deterministic index: money is indexed by I_y = (1+i)^y in plan
    /// year y. 0 under a stochastic index (AR(1) inflation or a history's), where each path
    /// carries its own I, which the month loop scales today's money by.
    pub inflation: f64,
    /// Stochastic AR(1) inflation (§4.4), as a goal's.
    pub inflation_model: Option<Ar1Inflation>,
    /// Per-asset paths (§4.5), when `market.rebalancing` is other than monthly: the
    /// household's one portfolio holds each asset, drifts with the assets' own returns and is
    /// traded back to its weights as the rule says (docs/model.md §5 "Per-asset paths").
    pub asset_paths: Option<AssetPaths>,
    pub paths: u64,
    pub seed: u64,
    pub percentiles: Vec<f64>,
}

impl PreparedPlan {
    /// The market its month loop reads (the goals' CPU path: `crate::backend::cpu`).
    pub(crate) fn market(&self) -> MarketView<'_> {
        MarketView {
            horizon: self.horizon,
            drift: &self.drift,
            volatility: &self.volatility,
            student_t: self.student_t,
            regimes: self.regimes.as_ref(),
            inflation: self.inflation_model,
            bootstrap: self.bootstrap.as_ref(),
        }
    }

    /// The price index of plan year `year` (1 under a stochastic index, whose paths scale
    /// by their own).
    pub fn index(&self, year: u32) -> f64 {
        (1.0 + self.inflation).powi(year as i32)
    }

    /// The deterministic index at the end of month `month`: (1+i)^(month/12), by which a
    /// path's estate in today's money is its nominal estate divided.
    pub fn index_at_month(&self, month: u32) -> f64 {
        index_at_month(self.inflation, month)
    }

    /// Whether each path carries its own price index: AR(1) inflation, or a history's.
    pub fn stochastic_index(&self) -> bool {
        self.market().stochastic_index()
    }

    /// Path-steps this plan costs at most: paths × its longest horizon.
    pub fn path_steps(&self) -> u64 {
        self.paths * u64::from(self.horizon)
    }
}

/// (1 + `inflation`)^(`month`/12): a deterministic index at the end of `month`.
pub(crate) fn index_at_month(inflation: f64, month: u32) -> f64 {
    (1.0 + inflation).powf(f64::from(month) / 12.0)
}

/// Check `request` against every bound of docs/model.md §5 and prepare it.
pub fn prepare_plan(request: &PlanRequest) -> Result<PreparedPlan, ValidationError> {
    let plan = &request.plan;
    let n_people = plan.people.len();
    if !(1..=2).contains(&n_people) {
        return Err(ValidationError::new(
            "plan.people",
            format!("must have 1 or 2 people, got {n_people}"),
        ));
    }
    let mut people = Vec::with_capacity(n_people);
    let mut retirement = Vec::with_capacity(n_people);
    for (i, person) in plan.people.iter().enumerate() {
        let at = |f: &str| format!("plan.people[{i}].{f}");
        let age_months = months_of_age(
            &at("age"),
            person.age,
            0.0,
            MAX_AGE_YEARS as f64 - 1.0 / 12.0,
        )?;
        let retire = months_of_age(
            &at("retirement_age"),
            person.retirement_age,
            0.0,
            MAX_AGE_YEARS as f64,
        )?;
        let longevity = longevity(&at("longevity"), &person.longevity, person.age)?;
        people.push(PreparedPerson {
            name: person.name.clone(),
            age_months,
            longevity,
        });
        retirement.push(retire.saturating_sub(age_months));
    }
    let person_index = |field: String, index: usize| -> Result<usize, ValidationError> {
        if index < n_people {
            Ok(index)
        } else {
            Err(ValidationError::new(
                field,
                format!(
                    "must name a person of plan.people (0 … {}), got {index}",
                    n_people - 1
                ),
            ))
        }
    };
    // The month at which person p reaches `age` (0 if already past it).
    let month_at_age = |p: usize, age_months: u32| age_months.saturating_sub(people[p].age_months);

    // Accounts.
    if plan.accounts.is_empty() || plan.accounts.len() > MAX_ACCOUNTS {
        return Err(ValidationError::new(
            "plan.accounts",
            format!(
                "must have 1 to {MAX_ACCOUNTS} accounts, got {}",
                plan.accounts.len()
            ),
        ));
    }
    let mut accounts = Vec::with_capacity(plan.accounts.len() + 1);
    let mut by_name = HashMap::new();
    for (i, account) in plan.accounts.iter().enumerate() {
        let at = |f: &str| format!("plan.accounts[{i}].{f}");
        if account.name.trim().is_empty() {
            return Err(ValidationError::new(at("name"), "must not be empty"));
        }
        if by_name.insert(account.name.clone(), i).is_some() {
            return Err(ValidationError::new(
                at("name"),
                format!(
                    "\"{}\" names two accounts; names must be unique",
                    account.name
                ),
            ));
        }
        amount(&at("balance"), account.balance)?;
        let basis = match (account.kind, account.cost_basis) {
            (AccountKind::Taxable, Some(basis)) => {
                amount(&at("cost_basis"), basis)?;
                basis
            }
            (AccountKind::Taxable, None) => account.balance,
            (_, Some(_)) => {
                return Err(ValidationError::new(
                    at("cost_basis"),
                    "only a taxable account has a cost basis",
                ))
            }
            (_, None) => 0.0,
        };
        let owner = person_index(at("owner"), account.owner)?;
        if account.weights.is_some() {
            return Err(ValidationError::new(
                at("weights"),
                "asset location needs per-asset market paths (docs/model.md §4), which are not built yet; every account holds the market portfolio",
            ));
        }
        accounts.push(PreparedAccount {
            name: account.name.clone(),
            kind: account.kind,
            balance: account.balance,
            basis,
            owner,
        });
    }
    let cash_account = match accounts.iter().position(|a| a.kind == AccountKind::Taxable) {
        Some(i) => i,
        None => {
            accounts.push(PreparedAccount {
                name: "taxable (opened by the plan)".to_string(),
                kind: AccountKind::Taxable,
                balance: 0.0,
                basis: 0.0,
                owner: 0,
            });
            accounts.len() - 1
        }
    };

    // Contributions.
    if plan.contributions.len() > MAX_FLOWS {
        return Err(ValidationError::new(
            "plan.contributions",
            format!("at most {MAX_FLOWS}, got {}", plan.contributions.len()),
        ));
    }
    let mut contributions = Vec::with_capacity(plan.contributions.len());
    for (i, c) in plan.contributions.iter().enumerate() {
        let at = |f: &str| format!("plan.contributions[{i}].{f}");
        let account = *by_name.get(&c.account).ok_or_else(|| {
            ValidationError::new(
                at("account"),
                format!(
                    "must name an account of plan.accounts, got \"{}\"",
                    c.account
                ),
            )
        })?;
        amount(&at("monthly_amount"), c.monthly_amount)?;
        growth_rate(&at("growth"), c.growth)?;
        let owner = accounts[account].owner;
        let end_month = match c.until_age {
            Some(age) => month_at_age(
                owner,
                months_of_age(&at("until_age"), age, 0.0, MAX_AGE_YEARS as f64)?,
            ),
            None => retirement[owner],
        };
        contributions.push(PreparedContribution {
            account,
            owner,
            amount: c.monthly_amount,
            growth: c.growth,
            end_month,
        });
    }

    // Incomes.
    if plan.incomes.len() > MAX_FLOWS {
        return Err(ValidationError::new(
            "plan.incomes",
            format!("at most {MAX_FLOWS}, got {}", plan.incomes.len()),
        ));
    }
    let mut incomes = Vec::with_capacity(plan.incomes.len());
    for (i, income) in plan.incomes.iter().enumerate() {
        let at = |f: &str| format!("plan.incomes[{i}].{f}");
        let owner = person_index(at("owner"), income.owner)?;
        amount(&at("monthly_amount"), income.monthly_amount)?;
        let start = match income.start_age {
            Some(age) => months_of_age(&at("start_age"), age, 0.0, MAX_AGE_YEARS as f64)?,
            None => people[owner].age_months,
        };
        let end = match income.end_age {
            Some(age) => {
                let end = months_of_age(&at("end_age"), age, 0.0, MAX_AGE_YEARS as f64)?;
                if end <= start {
                    return Err(ValidationError::new(
                        at("end_age"),
                        format!(
                            "must be above the start age ({}), got {age}",
                            f64::from(start) / 12.0
                        ),
                    ));
                }
                month_at_age(owner, end)
            }
            None => u32::MAX,
        };
        unit_fraction(&at("survivor_fraction"), income.survivor_fraction)?;
        if n_people == 1 && income.survivor_fraction != 0.0 {
            return Err(ValidationError::new(
                at("survivor_fraction"),
                "has no effect in a plan of one person (there is no survivor); leave it out",
            ));
        }
        incomes.push(PreparedIncome {
            owner,
            amount: income.monthly_amount,
            start_month: month_at_age(owner, start),
            end_month: end,
            indexed: income.indexed,
            taxable: income.taxable,
            survivor_fraction: income.survivor_fraction,
        });
    }

    // Social Security.
    let mut benefits: Vec<PreparedBenefit> = Vec::with_capacity(plan.social_security.len());
    for (i, ss) in plan.social_security.iter().enumerate() {
        let at = |f: &str| format!("plan.social_security[{i}].{f}");
        let person = person_index(at("person"), ss.person)?;
        if benefits.iter().any(|b| b.person == person) {
            return Err(ValidationError::new(
                at("person"),
                format!("person {person} already has a Social Security benefit"),
            ));
        }
        amount(&at("pia"), ss.pia)?;
        let fra = months_of_age(
            &at("full_retirement_age"),
            ss.full_retirement_age,
            65.0,
            67.0,
        )?;
        let claim = months_of_age(&at("claim_age"), ss.claim_age, 62.0, 70.0)?;
        let benefit = PreparedBenefit {
            person,
            amount: 0.0,
            claim_month: 0,
            pia: ss.pia,
            full_retirement_age_months: fra,
        };
        benefits.push(benefit.claimed_at(claim, people[person].age_months));
    }

    // Spending.
    let spending = &plan.spending;
    amount("plan.spending.essential", spending.essential)?;
    amount("plan.spending.discretionary", spending.discretionary)?;
    unit_fraction(
        "plan.spending.survivor_fraction",
        spending.survivor_fraction,
    )?;
    if n_people == 1 && spending.survivor_fraction != 1.0 {
        return Err(ValidationError::new(
            "plan.spending.survivor_fraction",
            "has no effect in a plan of one person (there is no survivor); leave it out",
        ));
    }
    let start_month = match spending.start {
        SpendingStart::Retirement(_) => retirement.iter().copied().max().unwrap_or(0),
        SpendingStart::Month(month) => {
            if month > MAX_HORIZON_MONTHS {
                return Err(ValidationError::new(
                    "plan.spending.start",
                    format!(
                        "must be \"retirement\" or a month 0 … {MAX_HORIZON_MONTHS}, got {month}"
                    ),
                ));
            }
            month
        }
    };
    let rule = spending_rule(&spending.rule, spending.essential)?;

    // Goals.
    if plan.goals.len() > MAX_GOALS {
        return Err(ValidationError::new(
            "plan.goals",
            format!("at most {MAX_GOALS}, got {}", plan.goals.len()),
        ));
    }
    let mut goals = Vec::with_capacity(plan.goals.len());
    for (i, goal) in plan.goals.iter().enumerate() {
        let at = |f: &str| format!("plan.goals[{i}].{f}");
        amount(&at("amount"), goal.amount)?;
        let person = person_index(at("person"), goal.person)?;
        let month = match (goal.age, goal.month) {
            (Some(age), None) => {
                let due = months_of_age(&at("age"), age, 0.0, MAX_AGE_YEARS as f64)?;
                if due < people[person].age_months {
                    return Err(ValidationError::new(
                        at("age"),
                        format!(
                            "is before person {person}'s age today ({}), got {age}",
                            plan.people[person].age
                        ),
                    ));
                }
                due - people[person].age_months
            }
            (None, Some(month)) => {
                if month >= MAX_HORIZON_MONTHS {
                    return Err(ValidationError::new(
                        at("month"),
                        format!("must be below {MAX_HORIZON_MONTHS}, got {month}"),
                    ));
                }
                month
            }
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    at("month"),
                    "give either age or month, not both",
                ))
            }
            (None, None) => {
                return Err(ValidationError::new(
                    at("age"),
                    "give age (with person) or month",
                ))
            }
        };
        goals.push(PreparedGoalItem {
            name: goal.name.clone(),
            month,
            amount: goal.amount,
            essential: goal.priority == Priority::Essential,
        });
    }

    // Tax.
    let tax = match &plan.tax {
        None => None,
        Some(tax) => {
            if tax.brackets.is_empty() || tax.brackets.len() > MAX_BRACKETS {
                return Err(ValidationError::new(
                    "plan.tax.brackets",
                    format!(
                        "must have 1 to {MAX_BRACKETS} brackets, got {}",
                        tax.brackets.len()
                    ),
                ));
            }
            let mut brackets = Vec::with_capacity(tax.brackets.len());
            for (k, b) in tax.brackets.iter().enumerate() {
                let at = |f: &str| format!("plan.tax.brackets[{k}].{f}");
                amount(&at("over"), b.over)?;
                if let Some(previous) = brackets.last().map(|p: &Bracket| p.over) {
                    if b.over <= previous {
                        return Err(ValidationError::new(
                            at("over"),
                            format!("brackets must be in increasing order of over: {} follows {previous}", b.over),
                        ));
                    }
                }
                rate(&at("rate"), b.rate)?;
                brackets.push(Bracket {
                    over: b.over,
                    rate: b.rate,
                });
            }
            amount("plan.tax.standard_deduction", tax.standard_deduction)?;
            rate("plan.tax.capital_gains_rate", tax.capital_gains_rate)?;
            unit_fraction(
                "plan.tax.social_security_taxable",
                tax.social_security_taxable,
            )?;
            Some(PreparedTax {
                brackets,
                standard_deduction: tax.standard_deduction,
                capital_gains_rate: tax.capital_gains_rate,
                social_security_taxable: tax.social_security_taxable,
            })
        }
    };

    let order = match &plan.withdrawal_order {
        WithdrawalOrder::Sequence(kinds) => {
            let mut seen = [false; 3];
            for (k, kind) in kinds.iter().enumerate() {
                let slot = DEFAULT_ORDER.iter().position(|d| d == kind).unwrap_or(0);
                if seen[slot] {
                    return Err(ValidationError::new(
                        format!("plan.withdrawal_order[{k}]"),
                        format!("\"{}\" appears twice; give each kind once", kind.name()),
                    ));
                }
                seen[slot] = true;
            }
            if kinds.len() != 3 {
                return Err(ValidationError::new(
                    "plan.withdrawal_order",
                    format!(
                        "must list taxable, tax_deferred and tax_free once each, got {} kinds",
                        kinds.len()
                    ),
                ));
            }
            Order::Sequence([kinds[0], kinds[1], kinds[2]])
        }
        WithdrawalOrder::Named(_) => Order::Proportional,
        WithdrawalOrder::BracketFill(fill) => {
            rate("plan.withdrawal_order.up_to_rate", fill.up_to_rate)?;
            let tax = tax.as_ref().ok_or_else(|| {
                ValidationError::new(
                    "plan.withdrawal_order",
                    "bracket_fill needs plan.tax (there are no brackets to fill)",
                )
            })?;
            Order::BracketFill {
                ceiling: bracket_top(&tax.brackets, tax.standard_deduction, fill.up_to_rate, 1.0),
            }
        }
    };

    if !(72..=MAX_AGE_YEARS).contains(&plan.rmd_age) {
        return Err(ValidationError::new(
            "plan.rmd_age",
            format!(
                "must be between 72 and {MAX_AGE_YEARS}, got {}",
                plan.rmd_age
            ),
        ));
    }
    let reserve = plan.flexible_reserve_years;
    if !(reserve.is_finite() && (0.0..=100.0).contains(&reserve)) {
        return Err(ValidationError::new(
            "plan.flexible_reserve_years",
            format!("must be between 0 and 100, got {reserve}"),
        ));
    }
    let threshold = plan.success_threshold;
    if !(threshold.is_finite() && threshold > 0.0 && threshold <= 1.0) {
        return Err(ValidationError::new(
            "plan.success_threshold",
            format!("must be in (0, 1], got {threshold}"),
        ));
    }

    let options = &request.options;
    if !(1..=MAX_PLAN_PATHS).contains(&options.paths()) {
        return Err(ValidationError::new(
            "options.paths",
            format!(
                "must be between 1 and {MAX_PLAN_PATHS} for a plan, got {}",
                options.paths()
            ),
        ));
    }
    plan_samples_with_philox(options)?;
    let percentiles = percentiles(&options.percentiles)?;

    // The longest any path can run: the last person's longest life, at most 1200 months.
    let horizon = people
        .iter()
        .map(|p| lifetime::death_month(&p.longevity, p.age_months, f64::MIN_POSITIVE))
        .max()
        .unwrap_or(0)
        .min(MAX_HORIZON_MONTHS);
    let inflation_model = inflation_model(&request.market.inflation)?;
    let schedule = market_schedule(
        &request.market,
        horizon,
        "the plan's longest lifetime in months",
    )?;
    let mean_inflation = mean_inflation(
        &request.market,
        schedule.bootstrap.as_ref(),
        schedule.asset_paths.as_ref(),
    )?;
    let stochastic_index = inflation_model.is_some()
        || schedule
            .bootstrap
            .as_ref()
            .is_some_and(|b| b.inflation.is_some());

    Ok(PreparedPlan {
        people,
        accounts,
        cash_account,
        contributions,
        incomes,
        benefits,
        spending: PreparedSpending {
            essential: spending.essential,
            discretionary: spending.discretionary,
            start_month,
            survivor_fraction: spending.survivor_fraction,
            rule,
        },
        goals,
        tax,
        order,
        rmd_age: plan.rmd_age,
        flexible_reserve_years: reserve,
        success_threshold: threshold,
        horizon,
        drift: schedule.drift,
        volatility: schedule.volatility,
        student_t: schedule.student_t,
        regimes: schedule.regimes,
        bootstrap: schedule.bootstrap,
        // Under a stochastic index each path carries its own (its month loop's).
        inflation: if stochastic_index {
            0.0
        } else {
            mean_inflation
        },
        inflation_model,
        asset_paths: schedule.asset_paths,
        paths: options.paths(),
        seed: options.seed,
        percentiles,
    })
}

/// An age in years that must be a whole number of months within [lo, hi]: its months.
fn months_of_age(field: &str, age: f64, lo: f64, hi: f64) -> Result<u32, ValidationError> {
    if !(age.is_finite() && age >= lo && age <= hi) {
        return Err(ValidationError::new(
            field,
            format!("must be between {lo} and {hi} years, got {age}"),
        ));
    }
    let months = age * 12.0;
    if (months - months.round()).abs() > 1e-6 {
        return Err(ValidationError::new(
            field,
            format!("must be a whole number of months (e.g. 64.5 or 64.25), got {age}"),
        ));
    }
    Ok(months.round() as u32)
}

fn unit_fraction(field: &str, value: f64) -> Result<(), ValidationError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be between 0 and 1, got {value}"),
        ))
    }
}

/// A tax rate: in [0, 1).
fn rate(field: &str, value: f64) -> Result<(), ValidationError> {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be in [0, 1), got {value}"),
        ))
    }
}

fn longevity(field: &str, spec: &LongevitySpec, age: f64) -> Result<Longevity, ValidationError> {
    let max = f64::from(MAX_AGE_YEARS);
    match spec {
        LongevitySpec::Fixed { age: death } => {
            if !(death.is_finite() && *death > age && *death <= max) {
                return Err(ValidationError::new(
                    format!("{field}.age"),
                    format!(
                        "must be above the person's age ({age}) and at most {max}, got {death}"
                    ),
                ));
            }
            Ok(Longevity::Fixed { age: *death })
        }
        LongevitySpec::Gompertz {
            modal_age,
            dispersion,
        } => {
            if !(modal_age.is_finite() && *modal_age > 0.0 && *modal_age <= max) {
                return Err(ValidationError::new(
                    format!("{field}.modal_age"),
                    format!("must be in (0, {max}], got {modal_age}"),
                ));
            }
            if !(dispersion.is_finite() && *dispersion > 0.0 && *dispersion <= 50.0) {
                return Err(ValidationError::new(
                    format!("{field}.dispersion"),
                    format!("must be in (0, 50] years, got {dispersion}"),
                ));
            }
            Ok(Longevity::Gompertz {
                modal_age: *modal_age,
                dispersion: *dispersion,
            })
        }
        LongevitySpec::Table { start_age, qx } => {
            if f64::from(*start_age) > age.floor() {
                return Err(ValidationError::new(
                    format!("{field}.start_age"),
                    format!("must be at most the person's age ({age}), got {start_age}"),
                ));
            }
            if qx.is_empty() || qx.len() > 121 {
                return Err(ValidationError::new(
                    format!("{field}.qx"),
                    format!("must have 1 to 121 annual probabilities, got {}", qx.len()),
                ));
            }
            for (k, q) in qx.iter().enumerate() {
                unit_fraction(&format!("{field}.qx[{k}]"), *q)?;
            }
            if f64::from(*start_age) + qx.len() as f64 <= age.floor() {
                return Err(ValidationError::new(
                    format!("{field}.qx"),
                    format!(
                        "must reach the person's age ({age}): it covers {start_age} … {}",
                        *start_age as usize + qx.len() - 1
                    ),
                ));
            }
            Ok(Longevity::Table {
                start_age: *start_age,
                qx: qx.clone(),
            })
        }
    }
}

fn spending_rule(rule: &SpendingRule, essential: f64) -> Result<Rule, ValidationError> {
    const FIELD: &str = "plan.spending.rule";
    let spec = match rule {
        SpendingRule::Named(_) => return Ok(Rule::Fixed),
        SpendingRule::Rule(spec) => spec,
    };
    let positive_rate = |name: &str, r: f64| {
        if r.is_finite() && r > 0.0 && r <= 1.0 {
            Ok(())
        } else {
            Err(ValidationError::new(
                format!("{FIELD}.{name}"),
                format!("must be in (0, 1], got {r}"),
            ))
        }
    };
    Ok(match *spec {
        RuleSpec::Fixed => Rule::Fixed,
        RuleSpec::Percent { rate } => {
            positive_rate("rate", rate)?;
            Rule::Percent { rate }
        }
        RuleSpec::FloorCeiling { rate, ceiling } => {
            positive_rate("rate", rate)?;
            amount(&format!("{FIELD}.ceiling"), ceiling)?;
            if ceiling < essential {
                return Err(ValidationError::new(
                    format!("{FIELD}.ceiling"),
                    format!(
                        "must be at least plan.spending.essential ({essential}), got {ceiling}"
                    ),
                ));
            }
            Rule::FloorCeiling { rate, ceiling }
        }
        RuleSpec::Vpw {
            real_return,
            to_age,
        } => {
            if !(real_return.is_finite() && real_return > -0.5 && real_return <= 0.5) {
                return Err(ValidationError::new(
                    format!("{FIELD}.real_return"),
                    format!("must be in (-0.5, 0.5], got {real_return}"),
                ));
            }
            if !(to_age.is_finite() && to_age > 0.0 && to_age <= f64::from(MAX_AGE_YEARS)) {
                return Err(ValidationError::new(
                    format!("{FIELD}.to_age"),
                    format!("must be in (0, {MAX_AGE_YEARS}], got {to_age}"),
                ));
            }
            Rule::Vpw {
                real_return,
                to_age,
            }
        }
        RuleSpec::Guardrails {
            upper,
            lower,
            adjust,
            min_years_left,
            planning_age,
        } => {
            if !(upper.is_finite() && upper > 1.0 && upper <= 10.0) {
                return Err(ValidationError::new(
                    format!("{FIELD}.upper"),
                    format!("must be in (1, 10], got {upper}"),
                ));
            }
            if !(lower.is_finite() && lower > 0.0 && lower < 1.0) {
                return Err(ValidationError::new(
                    format!("{FIELD}.lower"),
                    format!("must be in (0, 1), got {lower}"),
                ));
            }
            if !(adjust.is_finite() && adjust > 0.0 && adjust < 1.0) {
                return Err(ValidationError::new(
                    format!("{FIELD}.adjust"),
                    format!("must be in (0, 1), got {adjust}"),
                ));
            }
            if !(min_years_left.is_finite() && (0.0..=120.0).contains(&min_years_left)) {
                return Err(ValidationError::new(
                    format!("{FIELD}.min_years_left"),
                    format!("must be between 0 and 120, got {min_years_left}"),
                ));
            }
            if !(planning_age.is_finite()
                && planning_age > 0.0
                && planning_age <= f64::from(MAX_AGE_YEARS))
            {
                return Err(ValidationError::new(
                    format!("{FIELD}.planning_age"),
                    format!("must be in (0, {MAX_AGE_YEARS}], got {planning_age}"),
                ));
            }
            Rule::Guardrails {
                upper,
                lower,
                adjust,
                min_years_left,
                planning_age,
            }
        }
    })
}

/// Plans draw their numbers from Philox alone for now (docs/model.md §6): the other samplers'
/// options are refused by name rather than ignored.
fn plan_samples_with_philox(options: &crate::request::Options) -> Result<(), ValidationError> {
    let refused = if !options.sampler.is_philox() {
        Some(("options.sampler", options.sampler.name()))
    } else if options.replicates.is_some() {
        Some(("options.replicates", "replicates"))
    } else if options.precision.is_some() {
        Some(("options.precision", "a precision target"))
    } else if options.max_paths.is_some() {
        Some(("options.max_paths", "max_paths"))
    } else {
        None
    };
    match refused {
        Some((field, what)) => Err(ValidationError::new(
            field,
            format!("household plans run on the philox sampler with a number of paths; {what} is for goals only so far"),
        )),
        None => Ok(()),
    }
}
