//! The cases that the GPU copies of §5's tax and spending rules (`shaders/plan.wgsl`) are
//! checked on, shared by the host run of the generated C (`generated_cuda.rs`) and the WGSL backend's
//! run on lavapipe (`gpu.rs`): every rule, over wealth from negative to millions, first and
//! later years, losing and gaining years, price levels and ages.

use sextant_engine::plan::prepare::{prepare_plan, PreparedPlan, Rule};
use sextant_engine::plan::simulate::{yearly_spending, Adjustment};

/// 2024's married-filing-jointly brackets (over, rate), with a $29,200 deduction.
pub const JOINT_2024: [(f64, f64); 7] = [
    (0.0, 0.10),
    (23_200.0, 0.12),
    (94_300.0, 0.22),
    (201_050.0, 0.24),
    (383_900.0, 0.32),
    (487_450.0, 0.35),
    (731_200.0, 0.37),
];

/// One year's inputs: the spending so far, WR₀ (infinite included), last year's return,
/// whether this is the first year, the wealth, the price level and the youngest living age.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub spend: f64,
    pub initial: f64,
    pub last_year_return: f64,
    pub first: bool,
    pub wealth: f64,
    pub index: f64,
    pub youngest: f64,
}

impl Query {
    /// Last year's price level.
    pub fn previous_index(&self) -> f64 {
        self.index / 1.03
    }

    /// 1 − (1 + r)^−n of a VPW rule, as the CPU computes it (1 for other rules).
    pub fn vpw_denominator(&self, rule: Rule) -> f64 {
        match rule {
            Rule::Vpw {
                real_return,
                to_age,
            } => {
                let n = (to_age - self.youngest).ceil().max(1.0);
                1.0 - (1.0 + real_return).powf(-n)
            }
            _ => 1.0,
        }
    }

    /// The inputs as the GPU's `yearly_spending` takes them, in this order: spend, WR₀ (0 when
    /// infinite), infinite (0/1), last year's return, first (0/1), wealth, index, previous
    /// index, youngest age, VPW denominator.
    pub fn gpu_inputs(&self, rule: Rule) -> [f64; 10] {
        let infinite = self.initial.is_infinite();
        [
            self.spend,
            if infinite { 0.0 } else { self.initial },
            f64::from(u8::from(infinite)),
            self.last_year_return,
            f64::from(u8::from(self.first)),
            self.wealth,
            self.index,
            self.previous_index(),
            self.youngest,
            self.vpw_denominator(rule),
        ]
    }
}

/// The couple example's plan, whose rule the cases replace.
pub fn plan() -> PreparedPlan {
    let request = serde_json::from_str(include_str!("../../../examples/plan-couple.json")).unwrap();
    prepare_plan(&request).unwrap()
}

pub fn rules() -> [Rule; 6] {
    [
        Rule::Fixed,
        Rule::Percent { rate: 0.04 },
        Rule::FloorCeiling {
            rate: 0.05,
            ceiling: 12_000.0,
        },
        Rule::Vpw {
            real_return: 0.03,
            to_age: 95.0,
        },
        Rule::Vpw {
            real_return: 0.0,
            to_age: 95.0,
        },
        Rule::Guardrails {
            upper: 1.2,
            lower: 0.8,
            adjust: 0.1,
            min_years_left: 15.0,
            planning_age: 95.0,
        },
    ]
}

/// The GPU's `SpendingRule` of `plan` with `rule`, field by field in its order: kind,
/// essential, discretionary, rate, ceiling, real return, to age, upper, lower, adjust, min
/// years left, planning age.
pub fn gpu_rule(plan: &PreparedPlan, rule: Rule) -> [f64; 12] {
    let (kind, fields) = sextant_engine::plan::packed::rule_fields(&rule);
    let mut out = [0.0; 12];
    out[0] = f64::from(kind);
    out[1] = plan.spending.essential;
    out[2] = plan.spending.discretionary;
    out[3..].copy_from_slice(&fields);
    out
}

/// 960 years' inputs.
pub fn queries() -> Vec<Query> {
    let mut out = Vec::new();
    for wealth in [-100.0, 0.0, 50_000.0, 800_000.0, 2_500_000.0] {
        for spend in [0.0, 5_000.0, 9_000.0, 20_000.0] {
            for initial in [0.03, 0.05, f64::INFINITY] {
                for last_year_return in [-0.1, 0.05] {
                    for first in [true, false] {
                        for index in [1.0, 1.3] {
                            for youngest in [65.0, 82.5] {
                                out.push(Query {
                                    spend,
                                    initial,
                                    last_year_return,
                                    first,
                                    wealth,
                                    index,
                                    youngest,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Check one GPU answer `[spend, WR₀, infinite, adjustment]` against the CPU's
/// `yearly_spending` for `plan` (whose rule is set) on `q`: the spending to the bit, the
/// adjustment, and a guardrail rule's first-year WR₀ (to the bit, or infinite).
pub fn check(plan: &PreparedPlan, q: &Query, got: [f64; 4]) {
    let mut initial_rate = q.initial;
    let (want, adjustment) = yearly_spending(
        plan,
        q.spend,
        &mut initial_rate,
        q.last_year_return,
        q.first,
        q.wealth,
        q.index,
        q.previous_index(),
        q.youngest,
    );
    let case = format!("{:?} {q:?}: {got:?}", plan.spending.rule);
    assert_eq!(got[0].to_bits(), want.to_bits(), "spending, {case}");
    let code = match adjustment {
        Adjustment::None => 0.0,
        Adjustment::Cut => 1.0,
        Adjustment::Raise => 2.0,
    };
    assert_eq!(got[3], code, "adjustment, {case}");
    if q.first && matches!(plan.spending.rule, Rule::Guardrails { .. }) {
        assert_eq!(
            got[2] == 1.0,
            initial_rate.is_infinite(),
            "WR₀ infinite, {case}"
        );
        if initial_rate.is_finite() {
            assert_eq!(got[1].to_bits(), initial_rate.to_bits(), "WR₀, {case}");
        }
    }
}

/// The plans the GPU month loop is checked on, `paths` each: the three examples, the couple
/// under every spending rule and withdrawal order, a couple whose money runs out (failures,
/// depletion, unpaid goals), and the pre-retiree without tax.
pub fn month_loop_cases(paths: u64) -> Vec<(String, PreparedPlan)> {
    use sextant_engine::plan::prepare::Order;
    use sextant_engine::plan::request::AccountKind;
    let read = |json: &str| {
        let request = serde_json::from_str(json).unwrap();
        let mut plan = prepare_plan(&request).unwrap();
        plan.paths = paths;
        plan
    };
    let single = read(include_str!("../../../examples/plan-single-retiree.json"));
    let couple = read(include_str!("../../../examples/plan-couple.json"));
    let pre_retiree = read(include_str!("../../../examples/plan-pre-retiree.json"));
    let mut cases = vec![
        ("the single retiree".to_string(), single),
        ("the couple".to_string(), couple.clone()),
        ("the pre-retiree".to_string(), pre_retiree.clone()),
    ];
    for rule in rules() {
        let mut plan = couple.clone();
        plan.spending.rule = rule;
        cases.push((format!("the couple under {rule:?}"), plan));
    }
    for order in [
        Order::Proportional,
        Order::Sequence([
            AccountKind::TaxFree,
            AccountKind::TaxDeferred,
            AccountKind::Taxable,
        ]),
    ] {
        let mut plan = couple.clone();
        plan.order = order;
        cases.push((format!("the couple drawing {order:?}"), plan));
    }
    let mut broke = couple.clone();
    broke.spending.essential *= 3.0;
    broke.goals.iter_mut().for_each(|g| g.amount *= 8.0);
    cases.push(("the couple spending three times its needs".into(), broke));
    let mut untaxed = pre_retiree;
    untaxed.tax = None;
    cases.push(("the pre-retiree without tax".into(), untaxed));
    for (label, market) in market_models() {
        let mut request: serde_json::Value =
            serde_json::from_str(include_str!("../../../examples/plan-couple.json")).unwrap();
        request["market"] = market;
        request["options"]["paths"] = paths.into();
        let plan = prepare_plan(&serde_json::from_value(request).unwrap()).unwrap();
        cases.push((format!("the couple {label}"), plan));
    }
    cases
}

/// Markets of docs/model.md §4 for the couple: Student-t months at 4 degrees of freedom (and
/// at 2.05 with 60% volatility, whose months clamp at −100%), three regimes from the chain's
/// stationary start, stationary blocks of the synthetic history (without its inflation) over
/// a glide path and circular ones; and each path's own price index: AR(1) inflation
/// correlated with the market (alone, and under Student-t months and regimes), and the
/// synthetic history's inflation. Per-asset paths (§4.5): three assets rebalanced annually
/// over a glide path with a fee, within a 5% band under AR(1) inflation (uncorrelated, as
/// per-asset paths require), and two never rebalanced.
pub fn market_models() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let mut history: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/bootstrap.json")).unwrap();
    let indexed = history["market"]["model"]["history"].clone();
    let mut history = history["market"]["model"]["history"].take();
    for month in history["months"].as_array_mut().unwrap() {
        month.as_object_mut().unwrap().remove("inflation");
    }
    let ar1 = json!({"kind": "ar1", "mean": 0.03, "volatility": 0.02, "half_life_years": 2,
                     "initial": 0.05, "correlation": -0.4});
    let three = json!([
        {"name": "stocks", "expected_return": 0.075, "volatility": 0.17},
        {"name": "bonds", "expected_return": 0.035, "volatility": 0.06},
        {"name": "cash", "expected_return": 0.02, "volatility": 0.01}
    ]);
    let correlations = json!([[1.0, 0.2, 0.0], [0.2, 1.0, 0.3], [0.0, 0.3, 1.0]]);
    let uncorrelated = json!({"kind": "ar1", "mean": 0.03, "volatility": 0.02,
                              "half_life_years": 2, "initial": 0.05});
    vec![
        (
            "holding three assets, rebalanced annually over a glide path with a fee",
            json!({"assets": three, "correlations": correlations, "inflation": 0.025,
                   "fee": 0.004, "rebalancing": "annual",
                   "glide_path": [{"start_month": 0, "weights": [0.7, 0.2, 0.1]},
                                  {"start_month": 96, "weights": [0.4, 0.4, 0.2]}]}),
        ),
        (
            "holding three assets in a 5% band under AR(1) inflation",
            json!({"assets": three, "correlations": correlations, "inflation": uncorrelated,
                   "weights": [0.6, 0.3, 0.1], "rebalancing": {"kind": "band", "band": 0.05}}),
        ),
        (
            "holding two assets never rebalanced",
            json!({"assets": three.as_array().unwrap()[..2], "correlations": [[1.0, 0.2], [0.2, 1.0]],
                   "inflation": 0.025, "weights": [0.6, 0.4], "rebalancing": "none"}),
        ),
        (
            "under AR(1) inflation",
            json!({"expected_return": 0.06, "volatility": 0.12, "inflation": ar1}),
        ),
        (
            "under Student-t months (df 4) and AR(1) inflation",
            json!({"expected_return": 0.06, "volatility": 0.12, "inflation": ar1,
                   "model": {"kind": "student_t", "df": 4}}),
        ),
        (
            "in two regimes under AR(1) inflation",
            json!({"expected_return": 0.06, "volatility": 0.12, "inflation": ar1,
                   "model": {"kind": "regime", "initial": 1,
                             "regimes": [{"name": "calm"},
                                         {"name": "crisis", "expected_return": -0.2, "volatility": 0.3}],
                             "transition": [[0.97, 0.03], [0.15, 0.85]]}}),
        ),
        (
            "bootstrapped with the history's inflation",
            json!({"weights": [0.6, 0.4],
                   "model": {"kind": "bootstrap", "history": indexed, "block_months": 36,
                             "method": "stationary"}}),
        ),
        (
            "under Student-t months (df 4)",
            json!({"expected_return": 0.06, "volatility": 0.12, "inflation": 0.025,
                   "model": {"kind": "student_t", "df": 4}}),
        ),
        (
            "under Student-t months that clamp (df 2.05, volatility 0.6)",
            json!({"expected_return": 0.06, "volatility": 0.6, "inflation": 0.025,
                   "model": {"kind": "student_t", "df": 2.05}}),
        ),
        (
            "in three regimes",
            json!({"expected_return": 0.06, "volatility": 0.12, "inflation": 0.025,
                   "model": {"kind": "regime", "initial": "stationary",
                             "regimes": [{"name": "calm"},
                                         {"name": "crisis", "expected_return": -0.2, "volatility": 0.3},
                                         {"name": "recovery", "expected_return": 0.15, "volatility": 0.2}],
                             "transition": [[0.97, 0.03, 0.0], [0.0, 0.85, 0.15], [0.1, 0.0, 0.9]]}}),
        ),
        (
            "bootstrapped in stationary blocks over a glide path",
            json!({"inflation": 0.025, "fee": 0.003,
                   "glide_path": [{"start_month": 0, "weights": [0.7, 0.3]},
                                  {"start_month": 120, "weights": [0.4, 0.6]}],
                   "model": {"kind": "bootstrap", "history": history,
                             "block_months": 24, "method": "stationary"}}),
        ),
        (
            "bootstrapped in circular blocks",
            json!({"inflation": 0.02, "weights": [0.6, 0.4],
                   "model": {"kind": "bootstrap", "history": history, "block_months": 60}}),
        ),
    ]
}

/// A path outcome's bits, for comparisons that tell −0 from 0 and show every field.
pub fn outcome_bits(o: &sextant_engine::plan::PathOutcome) -> [u64; 17] {
    [
        u64::from(o.end_month),
        o.failed_at.map_or(u64::MAX, u64::from),
        o.estate.to_bits(),
        o.estate_accounts.to_bits(),
        o.estate_tax_deferred.to_bits(),
        o.taxes.to_bits(),
        o.goals_due,
        o.goals_paid,
        u64::from(o.spending_cut),
        u64::from(o.guardrail_cuts),
        u64::from(o.guardrail_raises),
        u64::from(o.deaths[0]),
        u64::from(o.deaths[1]),
        o.end_index.to_bits(),
        u64::from(o.clamped_months),
        u64::from(o.rebalances),
        o.turnover.to_bits(),
    ]
}

/// `gpu` gives `cpu`'s bits: every path's outcome and every yearly sample, rows in the same
/// order.
pub fn assert_same_samples(
    label: &str,
    gpu: &sextant_engine::plan::PlanSamples,
    cpu: &sextant_engine::plan::PlanSamples,
) {
    assert_eq!(gpu.outcomes.len(), cpu.outcomes.len(), "{label}: paths");
    for (path, (g, c)) in gpu.outcomes.iter().zip(&cpu.outcomes).enumerate() {
        assert_eq!(
            outcome_bits(g),
            outcome_bits(c),
            "{label}: path {path}: {g:?} vs {c:?}"
        );
    }
    assert_eq!(gpu.years, cpu.years, "{label}: years");
    assert_eq!(gpu.row_paths, cpu.row_paths, "{label}: row order");
    for (name, g, c) in [
        ("wealth", &gpu.wealth, &cpu.wealth),
        ("real spending", &gpu.real_spending, &cpu.real_spending),
        ("real wealth", &gpu.real_wealth, &cpu.real_wealth),
    ] {
        assert_eq!(g.len(), c.len(), "{label}: {name} samples");
        for (k, (a, b)) in g.iter().zip(c).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{label}: {name} sample {k} (row {}, year {}): {a} vs {b}",
                k / gpu.years.max(1),
                k % gpu.years.max(1)
            );
        }
    }
}

/// Every number of a plan's reduced years as bits (a column's absence as a marker of its own):
/// what "to the bit" compares between a device's reduction and the host's.
pub fn reduced_bits(years: &[sextant_engine::plan::ReducedYear]) -> Vec<u64> {
    let mut out = Vec::new();
    for year in years {
        out.push(year.running);
        for column in [&year.wealth, &year.real_spending, &year.real_wealth] {
            match column {
                Some(values) => out.extend(values.iter().map(|x| x.to_bits())),
                None => out.push(u64::MAX),
            }
        }
    }
    out
}
