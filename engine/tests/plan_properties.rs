//! Property tests of household plans (docs/model.md §5) over random households: every valid
//! plan runs and its outputs are consistent (probabilities in [0, 1], fan charts that only
//! thin out over time, ordered percentiles and ages), and any one field set to a hostile value
//! gets a result or an error naming a field of the request, never a panic.

use proptest::prelude::*;
use serde_json::{json, Value};
use sextant_engine::plan::{prepare_plan, PlanRequest};
use sextant_engine::Engine;

/// A random household as its JSON request: one or two people, one to three accounts, an
/// optional pension, Social Security, goal and tax schedule, any spending rule and any
/// withdrawal order.
fn household() -> impl Strategy<Value = Value> {
    let person = (30u32..80, 0u32..12, prop::bool::ANY, 80u32..105).prop_map(
        |(age, extra_years, gompertz, lifetime)| {
            let retirement = (age + extra_years).min(75).max(age);
            let longevity = if gompertz {
                json!({"kind": "gompertz", "modal_age": 88, "dispersion": 9})
            } else {
                json!({"kind": "fixed", "age": lifetime.max(age + 1)})
            };
            (age, retirement, longevity)
        },
    );
    let rule = prop_oneof![
        Just(json!("fixed")),
        (0.02..0.06f64).prop_map(|rate| json!({"kind": "percent", "rate": rate})),
        (0.02..0.06f64, 8_000.0..20_000.0f64).prop_map(
            |(rate, ceiling)| json!({"kind": "floor_ceiling", "rate": rate, "ceiling": ceiling})
        ),
        Just(json!({"kind": "vpw"})),
        Just(json!({"kind": "guardrails"})),
    ];
    let order = prop_oneof![
        Just(json!(["taxable", "tax_deferred", "tax_free"])),
        Just(json!(["tax_free", "tax_deferred", "taxable"])),
        Just(json!("proportional")),
        Just(json!({"kind": "bracket_fill", "up_to_rate": 0.12})),
    ];
    (
        prop::collection::vec(person, 1..=2),
        prop::collection::vec((0usize..3, 0.0..1_500_000.0f64), 1..=3),
        (1_000.0..8_000.0f64, 0.0..3_000.0f64, rule, order),
        (prop::bool::ANY, prop::bool::ANY, prop::bool::ANY),
        (0.0..0.09f64, 0.0..0.2f64, any::<u64>()),
    )
        .prop_map(
            |(
                people,
                accounts,
                (essential, discretionary, rule, order),
                (pension, goal, ss),
                (mu, sigma, seed),
            )| {
                let kinds = ["taxable", "tax_deferred", "tax_free"];
                let n = people.len();
                let people_json: Vec<Value> = people
                    .iter()
                    .enumerate()
                    .map(|(i, (age, retirement, longevity))| {
                        json!({"name": format!("p{i}"), "age": age,
                               "retirement_age": retirement, "longevity": longevity})
                    })
                    .collect();
                let accounts_json: Vec<Value> = accounts
                    .iter()
                    .enumerate()
                    .map(|(i, (kind, balance))| {
                        json!({"name": format!("a{i}"), "kind": kinds[*kind],
                               "balance": balance.round(), "owner": i % n})
                    })
                    .collect();
                let mut plan = json!({
                    "people": people_json,
                    "accounts": accounts_json,
                    "spending": {"essential": essential.round(),
                                 "discretionary": discretionary.round(), "rule": rule},
                    "withdrawal_order": order,
                    // Every withdrawal order may be asked for: bracket-fill needs brackets.
                    "tax": {"brackets": [{"over": 0, "rate": 0.1}, {"over": 50_000, "rate": 0.22}],
                            "standard_deduction": 29_200, "capital_gains_rate": 0.15},
                });
                if pension {
                    plan["incomes"] = json!([{"name": "pension", "monthly_amount": 1500}]);
                    if n == 2 {
                        plan["incomes"][0]["survivor_fraction"] = json!(0.5);
                    }
                }
                if ss {
                    plan["social_security"] = json!([{"person": 0, "pia": 2200, "claim_age": 67}]);
                }
                if goal {
                    plan["goals"] = json!([{"name": "roof", "amount": 30_000, "month": 36,
                                            "priority": "flexible"}]);
                }
                json!({
                    "plan": plan,
                    "market": {"expected_return": mu, "volatility": sigma, "inflation": 0.025},
                    "options": {"paths": 200, "seed": seed},
                })
            },
        )
}

fn read(request: &Value) -> PlanRequest {
    serde_json::from_value(request.clone()).expect("the strategy writes plan requests")
}

/// Percentiles in ascending order of their level ("p5" < "p10" < …) never decrease.
fn ascending(percentiles: &sextant_engine::Percentiles) -> bool {
    percentiles.0.windows(2).all(|w| w[0].1 <= w[1].1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_valid_household_runs_and_its_outputs_agree(request in household()) {
        let request = read(&request);
        let plan = prepare_plan(&request).map_err(|e| {
            TestCaseError::fail(format!("a valid household refused: {}: {}", e.field, e.problem))
        })?;
        let result = Engine::default().run_plan(&plan).unwrap();
        for p in [result.success_probability, result.spending_cut_probability,
                  result.depletion.probability] {
            prop_assert!((0.0..=1.0).contains(&p), "{p}");
        }
        prop_assert!((result.success_probability + result.depletion.probability - 1.0).abs() < 1e-12);
        let mut last = (1.0f64, 0.0f64);
        for year in &result.yearly {
            // Fewer paths run, and more have failed, as the years pass.
            prop_assert!(year.running <= last.0 + 1e-12 && year.depleted >= last.1 - 1e-12);
            last = (year.running, year.depleted);
            for fan in [&year.wealth, &year.wealth_real, &year.spending_real].into_iter().flatten() {
                prop_assert!(ascending(fan), "{:?}", fan);
            }
            prop_assert_eq!(year.wealth.is_some(), year.running > 0.0);
        }
        prop_assert!(ascending(&result.estate.percentiles));
        prop_assert!(result.estate.percentiles.0.iter().all(|(_, v)| *v >= 0.0));
        prop_assert!(result.lifetime_taxes.mean >= 0.0);
        prop_assert!((0.0..=1.0).contains(&result.estate.tax_deferred_share));
        for (person, ages) in request.plan.people.iter().zip(&result.ages_at_death) {
            prop_assert!(person.age <= ages.p10 && ages.p10 <= ages.p50 && ages.p50 <= ages.p90);
        }
    }

    #[test]
    fn a_hostile_value_in_any_field_is_a_result_or_an_error_naming_a_field(
        request in household(),
        field in 0usize..12,
        value in prop_oneof![
            Just(f64::NAN), Just(f64::INFINITY), Just(-1.0), Just(0.0), Just(0.5),
            Just(1e20), Just(-1e9), Just(200.0)
        ],
    ) {
        let mut request = read(&request);
        let plan = &mut request.plan;
        match field {
            0 => plan.people[0].age = value,
            1 => plan.people[0].retirement_age = value,
            2 => plan.accounts[0].balance = value,
            3 => plan.accounts[0].cost_basis = Some(value),
            4 => plan.spending.essential = value,
            5 => plan.spending.discretionary = value,
            6 => plan.spending.survivor_fraction = value,
            7 => plan.flexible_reserve_years = value,
            8 => plan.success_threshold = value,
            9 => request.market.volatility = Some(value),
            10 => request.market.inflation = value.into(),
            _ => {
                if let Some(tax) = plan.tax.as_mut() {
                    tax.brackets[1].rate = value;
                }
            }
        }
        match prepare_plan(&request) {
            Ok(plan) => {
                let result = Engine::default().run_plan(&plan).unwrap();
                prop_assert!((0.0..=1.0).contains(&result.success_probability));
                prop_assert!(result.estate.mean.is_finite(), "{}", result.estate.mean);
            }
            Err(e) => prop_assert!(
                ["plan.", "market.", "options."].iter().any(|p| e.field.starts_with(p)),
                "{}: {}", e.field, e.problem
            ),
        }
    }
}
