//! Plans against hand-computable answers (zero volatility, fixed lifetimes), against the §1
//! goal with the same cash flows, and against closed forms of their lifetimes.

use serde_json::{json, Value};

use super::prepare::prepare_plan;
use super::request::PlanRequest;
use super::simulate::{run_path, simulate_plan, simulate_plan_on, PathOutcome, Yearly};
use super::{build_plan_result, PlanResult, PreparedPlan};
use crate::backend::{CpuBackend, CpuKernel, Watch};
use crate::request::GoalRequest;
use crate::validate::prepare;

fn request(value: Value) -> PlanRequest {
    serde_json::from_value(value).expect("a well-formed plan")
}

fn prepared(value: Value) -> PreparedPlan {
    prepare_plan(&request(value)).expect("a valid plan")
}

/// Path 0 of a plan (deterministic plans have one kind of path).
fn one_path(plan: &PreparedPlan) -> (PathOutcome, Vec<f32>) {
    let years = plan.horizon.div_ceil(12) as usize;
    let mut wealth = vec![f32::NAN; years];
    let mut spending = vec![f32::NAN; years];
    let outcome = run_path(plan, 0, &mut wealth, &mut spending);
    (outcome, spending)
}

fn run(plan: &PreparedPlan) -> PlanResult {
    build_plan_result(plan, simulate_plan(plan, &Watch::default()).unwrap(), "cpu")
}

/// A market with no risk and no return: money only moves when the plan moves it.
fn still_market() -> Value {
    json!({"expected_return": 0.0, "volatility": 0.0, "inflation": 0.0})
}

fn error_field(value: Value) -> String {
    prepare_plan(&request(value))
        .expect_err("an invalid plan")
        .field
}

/// 60 today, saving 1,500 a month (+3% a year) for ten years from $400,000, then spending
/// `spending` a month (indexed) until death at 90 under `market`: as a §1 goal of 360 months,
/// and as a plan of one person with one taxable account and no tax.
fn saver_then_spender(spending: f64, market: Value, paths: u64) -> (GoalRequest, PreparedPlan) {
    let goal: GoalRequest = serde_json::from_value(json!({
        "goal": {"initial_wealth": 400000.0, "monthly_contribution": 1500.0,
                 "contribution_growth": 0.03, "contribution_months": 120,
                 "monthly_withdrawal": spending, "withdrawal_start_month": 120,
                 "horizon_months": 360, "target_amount": 0.0},
        "market": market,
        "options": {"paths": paths, "seed": 11}
    }))
    .unwrap();
    let plan = prepared(json!({
        "plan": {
            "people": [{"name": "Ann", "age": 60, "retirement_age": 70,
                        "longevity": {"kind": "fixed", "age": 90}}],
            "accounts": [{"name": "brokerage", "kind": "taxable", "balance": 400000.0}],
            "contributions": [{"account": "brokerage", "monthly_amount": 1500.0, "growth": 0.03}],
            "spending": {"essential": spending, "start": 120}
        },
        "market": market,
        "options": {"paths": paths, "seed": 11}
    }));
    (goal, plan)
}

#[test]
fn one_person_one_taxable_account_no_tax_is_the_goal_with_the_same_cash_flows() {
    // 60 today, saving 1,500 a month (+3% a year) for ten years, then spending 4,000 a month
    // (indexed at 2.5%) until death at 90: the goal of §1 over 360 months, path by path, bit
    // for bit.
    let market = json!({"expected_return": 0.06, "volatility": 0.15, "inflation": 0.025});
    let (goal, plan) = saver_then_spender(4000.0, market, 3000);
    assert_eq!(plan.horizon, 360);
    let terminal = CpuBackend::new().terminal_wealth_of(&prepare(&goal).unwrap());
    let mut failures = 0;
    for (path, &w) in terminal.iter().enumerate() {
        let mut wealth = vec![f32::NAN; 30];
        let mut spending = vec![f32::NAN; 30];
        let outcome = run_path(&plan, path as u32, &mut wealth, &mut spending);
        assert_eq!(outcome.end_month, 360);
        assert_eq!(
            outcome.estate.to_bits(),
            w.to_bits(),
            "path {path}: plan {} goal {w}",
            outcome.estate
        );
        assert_eq!(outcome.failed_at.is_some(), w == 0.0, "path {path}");
        failures += usize::from(outcome.failed_at.is_some());
    }
    // The comparison covers both kinds of path.
    assert!(failures > 30 && failures < 2970, "{failures} failures");
}

#[test]
fn social_security_pays_the_claiming_factor_at_62_67_and_70() {
    // Someone who claims today and lives one more year saves 12 benefits.
    for (claim, factor) in [(62.0, 0.70), (67.0, 1.0), (70.0, 1.24)] {
        let plan = prepared(json!({
            "plan": {
                "people": [{"name": "Bo", "age": claim, "retirement_age": claim,
                            "longevity": {"kind": "fixed", "age": claim + 1.0}}],
                "accounts": [{"name": "cash", "kind": "taxable", "balance": 0.0}],
                "social_security": [{"person": 0, "pia": 2000.0, "claim_age": claim}],
                "spending": {"essential": 0.0}
            },
            "market": still_market(),
            "options": {"paths": 1}
        }));
        let (outcome, _) = one_path(&plan);
        let expected = 12.0 * 2000.0 * factor;
        assert!(
            (outcome.estate - expected).abs() < 1e-6,
            "claim at {claim}: {} ≠ {expected}",
            outcome.estate
        );
    }
}

#[test]
fn a_year_of_tax_on_known_withdrawals_is_paid_the_next_january() {
    // 70 with 1.2M tax-deferred, spending 5,000 a month, two years to live. Year 0: 60,000 of
    // ordinary income, 50,000 above the deduction: 10% of 20,000 + 20% of 30,000 = 8,000, paid
    // in month 12 from the same account, so year 1 has 68,000: 2,000 + 20% of 38,000 = 9,600,
    // owed at the end and taken from the estate.
    let plan = prepared(json!({
        "plan": {
            "people": [{"name": "Cy", "age": 70, "retirement_age": 65,
                        "longevity": {"kind": "fixed", "age": 72}}],
            "accounts": [{"name": "ira", "kind": "tax_deferred", "balance": 1200000.0}],
            "spending": {"essential": 5000.0},
            "tax": {"brackets": [{"over": 0, "rate": 0.10}, {"over": 20000, "rate": 0.20}],
                    "standard_deduction": 10000}
        },
        "market": still_market(),
        "options": {"paths": 1}
    }));
    let (outcome, _) = one_path(&plan);
    assert!(
        (outcome.taxes - (8000.0 + 9600.0)).abs() < 1e-6,
        "taxes {}",
        outcome.taxes
    );
    let estate = 1_200_000.0 - 120_000.0 - 8000.0 - 9600.0;
    assert!(
        (outcome.estate - estate).abs() < 1e-6,
        "estate {}",
        outcome.estate
    );
}

#[test]
fn an_rmd_at_75_is_the_balance_over_24_6() {
    // 246,000 tax-deferred at 75: the year's RMD is 10,000, moved to a taxable account as
    // ordinary income (10% tax, owed at the end).
    let plan = prepared(json!({
        "plan": {
            "people": [{"name": "Di", "age": 75, "retirement_age": 65,
                        "longevity": {"kind": "fixed", "age": 76}}],
            "accounts": [{"name": "ira", "kind": "tax_deferred", "balance": 246000.0}],
            "spending": {"essential": 0.0},
            "tax": {"brackets": [{"over": 0, "rate": 0.10}]}
        },
        "market": still_market(),
        "options": {"paths": 1}
    }));
    let (outcome, _) = one_path(&plan);
    assert!(
        (outcome.estate_tax_deferred - 236_000.0).abs() < 1e-6,
        "{}",
        outcome.estate_tax_deferred
    );
    assert!((outcome.taxes - 1000.0).abs() < 1e-6, "{}", outcome.taxes);
    assert!(
        (outcome.estate - 245_000.0).abs() < 1e-6,
        "{}",
        outcome.estate
    );
}

#[test]
fn a_guardrail_cuts_spending_in_the_year_the_rate_crosses_its_upper_rail() {
    // Wealth falls 10% a year while 4,000 a month is spent: WR₀ = 4.8%. The first year whose
    // rate 12·S/W exceeds 1.2·WR₀ is found by hand below; spending falls 10% that year.
    let plan = prepared(json!({
        "plan": {
            "people": [{"name": "Ed", "age": 65, "retirement_age": 65,
                        "longevity": {"kind": "fixed", "age": 95}}],
            "accounts": [{"name": "brokerage", "kind": "taxable", "balance": 1000000.0}],
            "spending": {"essential": 0.0, "discretionary": 4000.0,
                         "rule": {"kind": "guardrails"}}
        },
        "market": {"expected_return": -0.10, "volatility": 0.0, "inflation": 0.0},
        "options": {"paths": 1}
    }));
    let g = plan.drift[0];
    let (mut w, s) = (1_000_000.0f64, 4000.0f64);
    let initial = 12.0 * s / w;
    let mut cut_year = None;
    for year in 0..30 {
        if year > 0 && 12.0 * s / w > 1.2 * initial && 30 - year > 15 {
            cut_year = Some(year);
            break;
        }
        for _ in 0..12 {
            w = (w - s) * g;
        }
    }
    let cut_year = cut_year.expect("the rail is crossed within 15 years");
    let (outcome, spending) = one_path(&plan);
    assert!(outcome.guardrail_cuts >= 1);
    assert!(outcome.spending_cut);
    for year in 1..cut_year {
        assert!(
            (spending[year] - spending[0]).abs() < 1e-2,
            "year {year} unchanged"
        );
    }
    let ratio = spending[cut_year] / spending[cut_year - 1];
    assert!((ratio - 0.9).abs() < 1e-6, "year {cut_year}: ratio {ratio}");
}

#[test]
fn a_plan_without_income_fails_in_the_month_its_money_runs_out() {
    // 100,000 and 1,000 a month with no return: month 99 would leave nothing, which is a
    // failure by §1's rule (the need leaves the accounts at or below zero).
    let plan = prepared(json!({
        "plan": {
            "people": [{"name": "Flo", "age": 80, "retirement_age": 65}],
            "accounts": [{"name": "savings", "kind": "taxable", "balance": 100000.0}],
            "spending": {"essential": 1000.0}
        },
        "market": still_market(),
        "options": {"paths": 1}
    }));
    let (outcome, _) = one_path(&plan);
    assert_eq!(outcome.failed_at, Some(99));
    assert_eq!(outcome.end_month, 180);
    assert_eq!(outcome.estate, 0.0);
}

#[test]
fn gompertz_ages_at_death_match_the_survival_curve() {
    // The median age at death solves S(t) = ½: t = b ln(1 − ln ½ · e^((m−x)/b)). The fraction
    // of 20,000 paths dying by then is ½ within 4 SE (4·√(¼/n)) plus a month of rounding.
    let (x, m, b) = (65.0f64, 88.0f64, 10.0f64);
    let plan = prepared(json!({
        "plan": {
            "people": [{"name": "Gus", "age": x, "retirement_age": x,
                        "longevity": {"kind": "gompertz", "modal_age": m, "dispersion": b}}],
            "accounts": [{"name": "savings", "kind": "taxable", "balance": 1000000.0}],
            "spending": {"essential": 1000.0}
        },
        "market": still_market(),
        "options": {"paths": 20000, "seed": 5}
    }));
    let median = x + b * (1.0 - 0.5f64.ln() * ((m - x) / b).exp()).ln();
    let samples = simulate_plan(&plan, &Watch::default()).unwrap();
    let n = samples.outcomes.len() as f64;
    let dead_by_median = samples
        .outcomes
        .iter()
        .filter(|o| x + f64::from(o.deaths[0]) / 12.0 <= median)
        .count() as f64
        / n;
    let monthly_density = 0.04 / 12.0;
    assert!(
        (dead_by_median - 0.5).abs() < 4.0 * (0.25 / n).sqrt() + monthly_density,
        "{dead_by_median} died by the median age {median}"
    );
}

#[test]
fn a_table_with_certain_death_at_an_age_ends_every_path_there() {
    let plan = prepared(json!({
        "plan": {
            "people": [{"name": "Hal", "age": 85, "retirement_age": 65,
                        "longevity": {"kind": "table", "start_age": 85,
                                      "qx": [0.2, 0.2, 0.2, 0.2, 0.2, 1.0]}}],
            "accounts": [{"name": "savings", "kind": "taxable", "balance": 500000.0}],
            "spending": {"essential": 2000.0}
        },
        "market": {"expected_return": 0.05, "volatility": 0.1, "inflation": 0.02},
        "options": {"paths": 5000, "seed": 3}
    }));
    let result = run(&plan);
    assert!(
        result.ages_at_death[0].p90 <= 91.0,
        "{:?}",
        result.ages_at_death
    );
    let samples = simulate_plan(&plan, &Watch::default()).unwrap();
    assert!(samples.outcomes.iter().all(|o| o.end_month <= 72));
    // Some die every year: the table is not a fixed lifetime.
    assert!(samples.outcomes.iter().any(|o| o.end_month <= 12));
}

fn couple(essential: f64) -> Value {
    json!({
        "plan": {
            "people": [
                {"name": "Ivy", "age": 62, "retirement_age": 62,
                 "longevity": {"kind": "gompertz", "modal_age": 88, "dispersion": 10}},
                {"name": "Jon", "age": 64, "retirement_age": 65,
                 "longevity": {"kind": "gompertz", "modal_age": 86, "dispersion": 10}}
            ],
            "accounts": [
                {"name": "brokerage", "kind": "taxable", "balance": 300000.0, "cost_basis": 200000.0},
                {"name": "ira", "kind": "tax_deferred", "balance": 600000.0, "owner": 1},
                {"name": "roth", "kind": "tax_free", "balance": 100000.0}
            ],
            "contributions": [{"account": "ira", "monthly_amount": 1500.0}],
            "incomes": [{"name": "pension", "monthly_amount": 800.0, "owner": 1,
                         "start_age": 65, "survivor_fraction": 0.5}],
            "social_security": [
                {"person": 0, "pia": 1800.0, "claim_age": 67},
                {"person": 1, "pia": 2600.0, "claim_age": 70}
            ],
            "spending": {"essential": essential, "discretionary": 2000.0, "survivor_fraction": 0.7,
                         "rule": {"kind": "guardrails"}},
            "goals": [{"name": "roof", "amount": 30000.0, "age": 70, "person": 0},
                      {"name": "trip", "amount": 20000.0, "month": 36, "priority": "flexible"}],
            "tax": {"brackets": [{"over": 0, "rate": 0.10}, {"over": 23200, "rate": 0.12},
                                 {"over": 94300, "rate": 0.22}],
                    "standard_deduction": 29200, "capital_gains_rate": 0.15}
        },
        "market": {"expected_return": 0.06, "volatility": 0.12, "inflation": 0.025},
        "options": {"paths": 4000, "seed": 17}
    })
}

#[test]
fn more_essential_spending_never_raises_success() {
    let mut previous = 1.0;
    for essential in [3000.0, 4500.0, 6000.0, 7500.0] {
        let mut value = couple(essential);
        value["plan"]["spending"]["rule"] = json!("fixed");
        let result = run(&prepared(value));
        assert!(
            result.success_probability <= previous,
            "essential {essential}: {} after {previous}",
            result.success_probability
        );
        previous = result.success_probability;
    }
    // The sequence spans outcomes: the comparisons are not between equal ones.
    assert!(
        previous < 0.9,
        "the highest spending still succeeds {previous}"
    );
}

#[test]
fn a_couples_plan_reports_every_output() {
    let result = run(&prepared(couple(4500.0)));
    assert!(result.success_probability > 0.0 && result.success_probability < 1.0);
    assert_eq!(result.goals.len(), 2);
    // The roof falls due at Ivy's 70 (month 96) on every path where someone is alive.
    assert!(result.goals[0].due_probability > 0.9);
    assert!(result.lifetime_taxes.mean > 0.0);
    assert_eq!(result.ages_at_death.len(), 2);
    assert!(result.ages_at_death[0].p10 < result.ages_at_death[0].p90);
    assert!(!result.yearly.is_empty());
    let first = &result.yearly[0];
    assert_eq!(first.month, 12);
    assert!(first.running > 0.95);
    assert!(first.wealth.is_some() && first.spending_real.is_some());
    // Running fractions fall as people die; depletion only rises.
    for pair in result.yearly.windows(2) {
        assert!(pair[1].running <= pair[0].running);
        assert!(pair[1].depleted >= pair[0].depleted);
    }
    assert!(result.estate.tax_deferred_share >= 0.0 && result.estate.tax_deferred_share <= 1.0);
    assert!(result.guardrails.mean_cuts + result.guardrails.mean_raises > 0.0);
}

#[test]
fn the_same_seed_gives_the_same_plan_result() {
    let a = run(&prepared(couple(4500.0)));
    let b = run(&prepared(couple(4500.0)));
    assert_eq!(a, b);
}

#[test]
fn a_cancelled_plan_stops() {
    let plan = prepared(couple(4500.0));
    let watch = Watch::default();
    watch.cancel();
    assert!(simulate_plan(&plan, &watch).is_err());
}

#[test]
fn bad_plans_are_refused_naming_the_field() {
    type Breaker = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "plan.social_security[0].claim_age",
            Box::new(|v| v["plan"]["social_security"][0]["claim_age"] = json!(61)),
        ),
        (
            "plan.tax.brackets[2].over",
            Box::new(|v| v["plan"]["tax"]["brackets"][2]["over"] = json!(20000)),
        ),
        (
            "plan.tax.brackets",
            Box::new(|v| {
                v["plan"]["tax"]["brackets"] = (0..17)
                    .map(|k| json!({"over": k * 10_000, "rate": 0.01 * f64::from(k)}))
                    .collect()
            }),
        ),
        (
            "plan.accounts[1].owner",
            Box::new(|v| v["plan"]["accounts"][1]["owner"] = json!(2)),
        ),
        (
            "plan.accounts[0].balance",
            Box::new(|v| v["plan"]["accounts"][0]["balance"] = json!(-1)),
        ),
        (
            "plan.accounts[0].weights",
            Box::new(|v| v["plan"]["accounts"][0]["weights"] = json!([1.0])),
        ),
        (
            "plan.accounts[1].cost_basis",
            Box::new(|v| v["plan"]["accounts"][1]["cost_basis"] = json!(5)),
        ),
        (
            "plan.contributions[0].account",
            Box::new(|v| v["plan"]["contributions"][0]["account"] = json!("401k")),
        ),
        (
            "plan.people[1].age",
            Box::new(|v| v["plan"]["people"][1]["age"] = json!(64.3)),
        ),
        (
            "plan.people[0].longevity.modal_age",
            Box::new(|v| v["plan"]["people"][0]["longevity"]["modal_age"] = json!(-3)),
        ),
        (
            "plan.incomes[0].end_age",
            Box::new(|v| v["plan"]["incomes"][0]["end_age"] = json!(60)),
        ),
        (
            "plan.goals[0].age",
            Box::new(|v| v["plan"]["goals"][0]["age"] = json!(50)),
        ),
        (
            "plan.spending.rule.upper",
            Box::new(|v| v["plan"]["spending"]["rule"]["upper"] = json!(0.9)),
        ),
        ("plan.people", Box::new(|v| v["plan"]["people"] = json!([]))),
        (
            "options.paths",
            Box::new(|v| v["options"]["paths"] = json!(10_000_000)),
        ),
    ];
    for (field, break_it) in cases {
        let mut value = couple(4500.0);
        break_it(&mut value);
        assert_eq!(error_field(value), field);
    }
    // Fields the model does not know are refused, not ignored.
    let mut value = couple(4500.0);
    value["plan"]["spending"]["essentail"] = json!(1);
    assert!(serde_json::from_value::<PlanRequest>(value).is_err());
    let mut value = couple(4500.0);
    value["plan"]["withdrawal_order"] = json!(["taxable", "taxable", "tax_free"]);
    assert_eq!(error_field(value), "plan.withdrawal_order[1]");
}

#[test]
fn sustainable_spending_finds_the_level_at_which_the_money_lasts() {
    // 120,000 with no return over ten fixed years: any spending below 1,000 a month lasts, and
    // 1,000 runs out in the last month (which fails, §1's rule).
    let plan = request(json!({
        "plan": {
            "people": [{"name": "Kim", "age": 85, "retirement_age": 65,
                        "longevity": {"kind": "fixed", "age": 95}}],
            "accounts": [{"name": "savings", "kind": "taxable", "balance": 120000.0}],
            "spending": {"essential": 500.0}
        },
        "market": still_market(),
        "options": {"paths": 1}
    }));
    let engine = crate::Engine::default();
    let solution = super::solve::sustainable_spending(&engine, &plan).unwrap();
    assert!(solution.attainable);
    assert!(
        solution.essential > 999.0 && solution.essential < 1000.0,
        "{}",
        solution.essential
    );
    assert_eq!(solution.essential, 500.0 * solution.scale);
    assert_eq!(solution.discretionary, 0.0);
    assert_eq!(solution.plan.success_probability, 1.0);
}

#[test]
fn the_claiming_solver_tries_every_age_and_prefers_the_larger_lifetime_sum() {
    // 62 today, living to 95 for sure, no spending and no return: the estate is the sum of the
    // benefits, largest when claiming at 70 (1.24 × 300 months beats 1.0 × 336 and 0.7 × 396).
    let plan = request(json!({
        "plan": {
            "people": [{"name": "Lee", "age": 62, "retirement_age": 62}],
            "accounts": [{"name": "savings", "kind": "taxable", "balance": 0.0}],
            "social_security": [{"person": 0, "pia": 2000.0, "claim_age": 62}],
            "spending": {"essential": 0.0}
        },
        "market": still_market(),
        "options": {"paths": 1, "percentiles": [10]}
    }));
    let engine = crate::Engine::default();
    let solution = super::solve::claiming(&engine, &plan).unwrap();
    assert_eq!(solution.options.len(), 9);
    assert_eq!(solution.best.claim_ages, vec![70]);
    assert!((solution.best.median_real_estate - 1.24 * 2000.0 * 300.0).abs() < 1e-6);
    let at_62 = &solution.options[0];
    assert_eq!(at_62.claim_ages, vec![62]);
    assert!((at_62.median_real_estate - 0.7 * 2000.0 * 396.0).abs() < 1e-6);
}

#[test]
fn a_couples_claiming_solver_runs_every_pair() {
    let mut value = couple(4500.0);
    value["options"]["paths"] = json!(200);
    let engine = crate::Engine::default();
    let solution = super::solve::claiming(&engine, &request(value)).unwrap();
    // Ivy is 62 (9 ages), Jon is 64 (7 ages left: 64 … 70).
    assert_eq!(solution.options.len(), 9 * 7);
    let best = &solution.best;
    assert!(solution
        .options
        .iter()
        .all(|o| o.success_probability <= best.success_probability));
}

#[test]
fn withdrawal_orders_are_compared_side_by_side() {
    let engine = crate::Engine::default();
    let mut value = couple(4500.0);
    value["options"]["paths"] = json!(500);
    let comparison = super::solve::withdrawal_orders(&engine, &request(value.clone())).unwrap();
    assert_eq!(comparison.orders.len(), 5);
    assert!(comparison.left_out.is_empty());
    // The default order's row is the plan as asked.
    let plain = engine.plan(&request(value.clone())).unwrap();
    assert_eq!(
        comparison.orders[0].success_probability,
        plain.success_probability
    );
    assert_eq!(
        comparison.orders[0].mean_lifetime_taxes,
        plain.lifetime_taxes.mean
    );
    // Orders change taxes: not every row is the same.
    assert!(comparison
        .orders
        .iter()
        .any(|o| o.mean_lifetime_taxes != comparison.orders[0].mean_lifetime_taxes));
    value["plan"].as_object_mut().unwrap().remove("tax");
    let untaxed = super::solve::withdrawal_orders(&engine, &request(value)).unwrap();
    assert_eq!(untaxed.orders.len(), 3);
    assert_eq!(untaxed.left_out.len(), 2);
}

/// Every field of an outcome, floats by their bits.
fn outcome_bits(o: &PathOutcome) -> impl PartialEq + std::fmt::Debug {
    (
        (o.end_month, o.failed_at, o.deaths),
        [o.estate, o.estate_accounts, o.estate_tax_deferred, o.taxes].map(f64::to_bits),
        (o.goals_due, o.goals_paid, o.spending_cut),
        (o.guardrail_cuts, o.guardrail_raises),
        (o.rebalances, o.turnover.to_bits()),
    )
}

#[test]
fn a_path_has_the_same_bits_alone_and_in_any_lane_group_on_every_kernel_with_or_without_samples() {
    // The month loop runs paths in lane groups sorted by their end: a path's numbers must not
    // depend on its neighbours, its lane or the kernel. The examples cover every rule the
    // loop branches on between them (couples and deaths, taxes, RMDs, guardrails, bracket
    // fill, goals, contributions) and paths that fail as well as paths that do not.
    // The couple once more with per-asset paths under a band (trades in any month).
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let read = |file: &str| -> Value {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let mut cases: Vec<(&str, Value)> = [
        "examples/plan-couple.json",
        "examples/plan-pre-retiree.json",
        "examples/plan-single-retiree.json",
        "benches/plan-monteplan-default.json",
    ]
    .into_iter()
    .map(|file| (file, read(file)))
    .collect();
    let mut per_asset = read("examples/plan-couple.json");
    per_asset["market"] = two_asset_market(json!({"kind": "band", "band": 0.03}));
    cases.push(("the couple, per-asset paths, a 3% band", per_asset));
    for (file, mut value) in cases {
        value["options"]["paths"] = json!(700);
        let plan = prepared(value);
        let years = plan.horizon.div_ceil(12) as usize;
        let alone: Vec<(PathOutcome, Vec<f32>, Vec<f32>)> = (0..plan.paths as u32)
            .map(|path| {
                let mut wealth = vec![f32::NAN; years];
                let mut spending = vec![f32::NAN; years];
                let outcome = run_path(&plan, path, &mut wealth, &mut spending);
                (outcome, wealth, spending)
            })
            .collect();
        let failures = alone.iter().filter(|(o, ..)| o.failed_at.is_some()).count();
        assert!(
            failures > 0 || file.contains("couple"),
            "{file}: no path fails"
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for kernel in CpuKernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let samples =
                simulate_plan_on(&plan, &Watch::default(), kernel, Yearly::Samples).unwrap();
            let row_of: std::collections::HashMap<u32, usize> = samples
                .row_paths
                .iter()
                .enumerate()
                .map(|(i, &p)| (p, i))
                .collect();
            assert_eq!(row_of.len(), alone.len(), "every path has one row");
            for (path, (outcome, wealth, spending)) in alone.iter().enumerate() {
                let row = row_of[&(path as u32)];
                let rows = row * years..(row + 1) * years;
                assert_eq!(
                    outcome_bits(&samples.outcomes[path]),
                    outcome_bits(outcome),
                    "{file}, {kernel}, path {path}"
                );
                assert_eq!(
                    bits(&samples.wealth[rows.clone()]),
                    bits(wealth),
                    "{file} {path}"
                );
                assert_eq!(
                    bits(&samples.real_spending[rows]),
                    bits(spending),
                    "{file} {path}"
                );
            }
            // Without the yearly samples (the solvers' runs): the same outcomes, no tables.
            let outcomes =
                simulate_plan_on(&plan, &Watch::default(), kernel, Yearly::Skip).unwrap();
            assert_eq!((outcomes.years, outcomes.wealth.len()), (0, 0));
            for (path, (outcome, ..)) in alone.iter().enumerate() {
                assert_eq!(
                    outcome_bits(&outcomes.outcomes[path]),
                    outcome_bits(outcome),
                    "{file}, {kernel}, no samples, path {path}"
                );
            }
        }
    }
}

/// `market.fee` reaches plans through the same monthly schedule (docs/model.md §4.6): with
/// σ = 0, a fee f is the fee-less market whose return is (1 + μ)(1 − f) − 1 (the monthly
/// factors agree to an ulp), so success is the same and the estate and lifetime taxes agree
/// to 1e-9. (No monotone claim with volatility: under guardrails a fee can raise success,
/// as lower wealth cuts spending earlier; this couple's plan does at 1.5%.)
#[test]
fn a_fee_is_the_market_with_the_reduced_return() {
    let (mu, f) = (0.06, 0.01);
    let mut with_fee = couple(4500.0);
    with_fee["market"] =
        json!({"expected_return": mu, "volatility": 0.0, "inflation": 0.025, "fee": f});
    let mut reduced = couple(4500.0);
    reduced["market"] = json!({"expected_return": (1.0 + mu) * (1.0 - f) - 1.0,
                               "volatility": 0.0, "inflation": 0.025});
    let (a, b) = (run(&prepared(with_fee)), run(&prepared(reduced)));
    assert_eq!(a.success_probability, b.success_probability);
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs());
    assert!(
        close(a.estate.mean, b.estate.mean),
        "{} vs {}",
        a.estate.mean,
        b.estate.mean
    );
    assert!(close(a.lifetime_taxes.mean, b.lifetime_taxes.mean));
    // And the fee costs something: this plan's estate is smaller than without it.
    let mut plain = couple(4500.0);
    plain["market"] = json!({"expected_return": mu, "volatility": 0.0, "inflation": 0.025});
    assert!(run(&prepared(plain)).estate.mean > a.estate.mean);
}

#[test]
fn a_plan_fee_out_of_bounds_names_its_field() {
    let mut plan = couple(4500.0);
    plan["market"]["fee"] = json!(1.0);
    assert_eq!(error_field(plan), "market.fee");
}

/// Stocks and bonds, 60/40, correlated, under `rebalancing` (docs/model.md §4.5).
fn two_asset_market(rebalancing: Value) -> Value {
    json!({"assets": [{"name": "stocks", "expected_return": 0.075, "volatility": 0.17},
                      {"name": "bonds", "expected_return": 0.03, "volatility": 0.06}],
           "weights": [0.6, 0.4], "correlations": [[1.0, 0.2], [0.2, 1.0]],
           "inflation": 0.025, "rebalancing": rebalancing})
}

#[test]
fn a_per_asset_plan_is_the_per_asset_goal_with_the_same_cash_flows() {
    // As the lognormal plan is §1's goal: one person, one taxable account, no tax, saving then
    // spending. The household's portfolio holds the goal's assets, draws their shocks and
    // trades on the month's net cash flow as the goal's holdings do; it keeps their mix as
    // fractions of its wealth where the goal keeps dollars, so the two agree to rounding
    // (1e-9 relative), and their rebalances exactly, path by path, under every rule.
    for rebalancing in [
        json!("annual"),
        json!({"kind": "band", "band": 0.04}),
        json!("none"),
    ] {
        let (goal, plan) = saver_then_spender(3500.0, two_asset_market(rebalancing.clone()), 1500);
        let goal = prepare(&goal).unwrap();
        let (mut failures, mut rebalanced) = (0, 0);
        for path in 0..1500u32 {
            let expected = crate::rebalance::simulate_path(&goal, path);
            let mut wealth = vec![f32::NAN; 30];
            let mut spending = vec![f32::NAN; 30];
            let outcome = run_path(&plan, path, &mut wealth, &mut spending);
            let w = *expected.wealth.last().unwrap();
            assert!(
                (outcome.estate - w).abs() <= 1e-9 * w.max(1.0),
                "{rebalancing}, path {path}: plan {} goal {w}",
                outcome.estate
            );
            assert_eq!(
                outcome.failed_at.is_some(),
                expected.depleted_at.is_some(),
                "{rebalancing}, path {path}"
            );
            assert_eq!(
                outcome.rebalances, expected.rebalances,
                "{rebalancing}, path {path}"
            );
            assert!(
                (outcome.turnover - expected.turnover).abs() <= 1e-9,
                "{rebalancing}, path {path}: turnover {} vs {}",
                outcome.turnover,
                expected.turnover
            );
            failures += usize::from(outcome.failed_at.is_some());
            rebalanced += usize::from(outcome.rebalances > 0);
        }
        // Both kinds of path, and (but for "none") paths that traded.
        assert!(
            failures > 15 && failures < 1485,
            "{rebalancing}: {failures} failures"
        );
        assert_eq!(
            rebalanced > 1000,
            rebalancing != json!("none"),
            "{rebalancing}"
        );
    }
}

#[test]
fn a_per_asset_plan_without_volatility_compounds_and_trades_as_its_rule_says() {
    // Ten years, nothing spent or saved: under "none" each asset compounds on its own; under
    // "annual" the portfolio is traded back to 70/30 at months 12, …, 108 (nine times), each
    // trade's turnover |w − m| summed over the assets and halved, m the year's drifted mix.
    let (g_stocks, g_bonds) = (1.10f64, 1.02f64);
    let market = |rebalancing: &str| {
        json!({"assets": [{"name": "stocks", "expected_return": g_stocks - 1.0, "volatility": 0.0},
                          {"name": "bonds", "expected_return": g_bonds - 1.0, "volatility": 0.0}],
               "weights": [0.7, 0.3], "inflation": 0.0, "rebalancing": rebalancing})
    };
    let plan = |rebalancing: &str| {
        prepared(json!({
            "plan": {
                "people": [{"name": "Di", "age": 70, "retirement_age": 70,
                            "longevity": {"kind": "fixed", "age": 80}}],
                "accounts": [{"name": "roth", "kind": "tax_free", "balance": 1000000.0}],
                "spending": {"essential": 0.0}
            },
            "market": market(rebalancing),
            "options": {"paths": 3}
        }))
    };
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y.abs().max(1.0);
    let none = run(&plan("none"));
    let expected = 1e6 * (0.7 * g_stocks.powi(10) + 0.3 * g_bonds.powi(10));
    assert!(
        close(none.estate.mean, expected),
        "{} vs {expected}",
        none.estate.mean
    );
    let stats = none.rebalancing.as_ref().unwrap();
    assert_eq!((stats.rule.as_str(), stats.mean_rebalances), ("none", 0.0));

    let annual = run(&plan("annual"));
    let year = 0.7 * g_stocks + 0.3 * g_bonds;
    assert!(
        close(annual.estate.mean, 1e6 * year.powi(10)),
        "{}",
        annual.estate.mean
    );
    let drifted = 0.7 * g_stocks / year;
    let turnover = 9.0 * ((drifted - 0.7).abs() + (0.3 * g_bonds / year - 0.3).abs()) / 2.0;
    let stats = annual.rebalancing.unwrap();
    assert_eq!(
        (stats.rule.as_str(), stats.mean_rebalances),
        ("annual", 9.0)
    );
    assert!(
        close(stats.mean_turnover, turnover),
        "{} vs {turnover}",
        stats.mean_turnover
    );
    assert!(close(stats.mean_annual_turnover, turnover / 10.0));
    // Monthly rebalancing reports nothing: its portfolio is one asset, §1's.
    let mut monthly = plan("annual");
    monthly.asset_paths = None;
    assert_eq!(run(&monthly).rebalancing, None);
}

#[test]
fn one_asset_never_rebalanced_is_the_plan_of_its_one_portfolio() {
    // One asset under "none" holds all of the household's wealth in it: the plan is the
    // monthly plan of that asset (the same shocks, drawn at (path, ⌊t/4⌋, 0, 0)), to the
    // rounding of a mix that stays 1: success and every path's failure exactly, the estate
    // and taxes within 1e-9. The couple's taxes, guardrails and deaths all run.
    let one = |rebalancing: &str| {
        let mut value = couple(6500.0);
        value["market"] = json!({"assets": [{"name": "world", "expected_return": 0.045,
                                             "volatility": 0.15}],
                                 "weights": [1.0], "inflation": 0.025,
                                 "rebalancing": rebalancing});
        value["options"]["paths"] = json!(1000);
        prepared(value)
    };
    let (held, monthly) = (one("none"), one("monthly"));
    assert!(held.asset_paths.is_some() && monthly.asset_paths.is_none());
    let a = simulate_plan(&held, &Watch::default()).unwrap();
    let b = simulate_plan(&monthly, &Watch::default()).unwrap();
    let failed = b.outcomes.iter().filter(|o| o.failed_at.is_some()).count();
    assert!(failed > 10 && failed < 990, "{failed} failures");
    for (path, (x, y)) in a.outcomes.iter().zip(&b.outcomes).enumerate() {
        assert_eq!(x.failed_at, y.failed_at, "path {path}");
        assert_eq!(x.rebalances, 0);
        for (u, v) in [(x.estate, y.estate), (x.taxes, y.taxes)] {
            assert!(
                (u - v).abs() <= 1e-9 * v.abs().max(1.0),
                "path {path}: {u} vs {v}"
            );
        }
    }
}

#[test]
fn a_per_asset_plan_takes_ar1_inflation_and_refuses_what_per_asset_goals_do_by_name() {
    let couple_in = |market: Value, paths: u64| {
        let mut value = couple(8500.0);
        value["market"] = market;
        value["options"]["paths"] = json!(paths);
        value
    };
    let with = |change: &dyn Fn(&mut Value)| {
        let mut market = two_asset_market(json!("annual"));
        change(&mut market);
        market
    };
    // AR(1) inflation has no portfolio shock to correlate with (as for goals), nor do Student-t
    // months run per asset yet; a band is a drift in (0, 1).
    let correlated = with(&|m| {
        m["inflation"] =
            json!({"kind": "ar1", "mean": 0.025, "volatility": 0.01, "correlation": -0.3})
    });
    assert_eq!(
        error_field(couple_in(correlated, 10)),
        "market.inflation.correlation"
    );
    let fat = with(&|m| m["model"] = json!({"kind": "student_t", "df": 5}));
    assert_eq!(error_field(couple_in(fat, 10)), "market.rebalancing");
    let wide = with(&|m| m["rebalancing"] = json!({"kind": "band", "band": 1.5}));
    assert_eq!(error_field(couple_in(wide, 10)), "market.rebalancing.band");
    let no_assets = json!({"expected_return": 0.06, "volatility": 0.12, "rebalancing": "annual"});
    assert_eq!(error_field(couple_in(no_assets, 10)), "market.rebalancing");

    // AR(1) at σ_π = 0 and π_0 = θ is the fixed rate θ, to the rounding of its yearly F(P)
    // (as for the lognormal plan, tests/market_models.rs): success within one path, the
    // median and mean estate within $10, the mean turnover within 1e-4.
    let paths = 1500;
    let fixed = run(&prepared(couple_in(
        two_asset_market(json!("annual")),
        paths,
    )));
    let ar1 = with(&|m| m["inflation"] = json!({"kind": "ar1", "mean": 0.025, "volatility": 0.0}));
    let ar1 = run(&prepared(couple_in(ar1, paths)));
    assert!(
        fixed.success_probability > 0.05 && fixed.success_probability < 0.99,
        "{}",
        fixed.success_probability
    );
    assert!(
        (ar1.success_probability - fixed.success_probability).abs() <= 1.0 / paths as f64,
        "{} vs {}",
        ar1.success_probability,
        fixed.success_probability
    );
    let median = |r: &PlanResult| r.estate.percentiles.get(50.0).unwrap();
    // (The median estate is near 0 here, the difference of nearly equal amounts: its bound
    // is in the household's starting $1M, 1e-5 of it; the index's rounding, 2e-7 a year on
    // some $100,000 of yearly flows, moves it by about a dollar.)
    for (x, y) in [
        (median(&ar1), median(&fixed)),
        (ar1.estate.mean, fixed.estate.mean),
    ] {
        assert!((x - y).abs() <= 10.0, "estate {x} vs {y}");
    }
    let turnover = |r: &PlanResult| r.rebalancing.as_ref().unwrap().mean_turnover;
    assert!(turnover(&fixed) > 0.0);
    assert!((turnover(&ar1) / turnover(&fixed) - 1.0).abs() <= 1e-4);
}
