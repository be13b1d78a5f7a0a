//! The engine against the independent NumPy reference (`benches/reference.py`): a dozen varied
//! requests (withdrawals, depletion, glide paths, multi-asset, real and nominal targets), each
//! statistic within 4 combined standard errors. The reference uses NumPy's own generator, so
//! the two agree only statistically — which is what makes it an independent check.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use sextant_engine::{Engine, GoalRequest};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Within `k` combined standard errors.
fn within(name: &str, engine: f64, reference: f64, se_engine: f64, se_reference: f64, k: f64) {
    let bound = k * (se_engine * se_engine + se_reference * se_reference).sqrt();
    assert!(
        (engine - reference).abs() <= bound,
        "{name}: engine {engine} vs NumPy {reference}, bound {bound}"
    );
}

/// The dozen (or more) requests of `benches/{cases}` and the answers `benches/{script}` gives
/// for them, in order.
fn reference_answers(cases: &str, script: &str) -> (Vec<Value>, Vec<Value>) {
    let cases_path = repo().join("benches").join(cases);
    let requests: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&cases_path).unwrap()).unwrap();
    assert!(requests.len() >= 12);
    let output = Command::new(std::env::var("SEXTANT_PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(repo().join("benches").join(script))
        .arg(&cases_path)
        .output()
        .expect("python3 runs (the test needs Python 3 with NumPy: pip install numpy)");
    assert!(
        output.status.success(),
        "{script} failed (is numpy installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answers.len(), requests.len());
    (requests, answers)
}

#[test]
fn engine_agrees_with_the_numpy_reference_within_4_standard_errors() {
    goals_agree_with_the_reference("reference-cases.json");
}

/// docs/model.md §4 as it lands (fees, the Student-t month: ν from 2.5 to 30, withdrawals,
/// depletion, glide paths, several assets, clamped months; regimes; AR(1) inflation with its
/// index month by month in f64 and the real terminal mean; bootstraps; per-asset paths under
/// annual, band and no rebalancing with their rebalances and turnover), against the same
/// reference, which draws from NumPy's own normal, chi-square and uniform generators.
#[test]
fn market_models_agree_with_the_numpy_reference_within_4_standard_errors() {
    goals_agree_with_the_reference("market-reference-cases.json");
}

/// Each request of `benches/{cases}` through the engine and `benches/reference.py`: success,
/// depletion, the terminal mean, the fan chart's depleted fractions and, under a t market, the
/// clamped share of path-months, each within 4 combined standard errors.
fn goals_agree_with_the_reference(cases: &str) {
    let (cases, references) = reference_answers(cases, "reference.py");

    let engine = Engine::default();
    for (case, reference) in cases.iter().zip(&references) {
        let name = case["name"].as_str().unwrap();
        let mut request = case.clone();
        request.as_object_mut().unwrap().remove("name");
        let request: GoalRequest = serde_json::from_value(request).unwrap();
        let n = request.options.paths() as f64;
        let result = engine.simulate(&request).unwrap();

        within(
            &format!("{name}: success"),
            result.success_probability,
            reference["success_probability"].as_f64().unwrap(),
            result.standard_error,
            reference["standard_error"].as_f64().unwrap(),
            4.0,
        );
        let proportion_se = |p: f64| (p * (1.0 - p) / n).sqrt();
        match (result.clamped_months, reference.get("clamped_months")) {
            (Some(clamped), Some(reference_clamped)) => {
                // A proportion of the N·T path-months.
                let months = n * f64::from(request.goal.horizon_months);
                let (a, b) = (
                    clamped as f64 / months,
                    reference_clamped.as_f64().unwrap() / months,
                );
                let se = |q: f64| (q * (1.0 - q) / months).sqrt();
                within(&format!("{name}: clamped months"), a, b, se(a), se(b), 4.0);
            }
            (None, None) => {}
            (a, b) => panic!("{name}: clamped months {a:?} vs the reference's {b:?}"),
        }
        let dep_ref = reference["depletion"]["probability"].as_f64().unwrap();
        let dep = result.depletion.probability;
        within(
            &format!("{name}: depletion"),
            dep,
            dep_ref,
            proportion_se(dep),
            proportion_se(dep_ref),
            4.0,
        );
        let sd = reference["terminal"]["std"].as_f64().unwrap();
        within(
            &format!("{name}: terminal mean"),
            result.terminal.mean,
            reference["terminal"]["mean"].as_f64().unwrap(),
            sd / n.sqrt(),
            sd / n.sqrt(),
            4.0,
        );
        match (&result.real, reference.get("real_terminal")) {
            (Some(real), Some(reference_real)) => {
                // Under AR(1) inflation: the mean of W_T / I_T.
                let sd = reference_real["std"].as_f64().unwrap();
                within(
                    &format!("{name}: real terminal mean"),
                    real.terminal.mean,
                    reference_real["mean"].as_f64().unwrap(),
                    sd / n.sqrt(),
                    sd / n.sqrt(),
                    4.0,
                );
            }
            (None, None) => {}
            (a, b) => panic!("{name}: real wealth {a:?} vs the reference's {b:?}"),
        }
        match (&result.rebalancing, reference.get("rebalancing")) {
            (Some(ours), Some(theirs)) => {
                // Per-asset paths: the means per path of the rebalances and the turnover.
                for (what, value, mean, sd) in [
                    (
                        "rebalances",
                        ours.mean_rebalances,
                        "mean_rebalances",
                        "std_rebalances",
                    ),
                    (
                        "turnover",
                        ours.mean_turnover,
                        "mean_turnover",
                        "std_turnover",
                    ),
                ] {
                    let sd = theirs[sd].as_f64().unwrap();
                    within(
                        &format!("{name}: {what}"),
                        value,
                        theirs[mean].as_f64().unwrap(),
                        sd / n.sqrt(),
                        sd / n.sqrt(),
                        4.0,
                    );
                }
            }
            (None, None) => {}
            (a, b) => panic!("{name}: rebalancing {a:?} vs the reference's {b:?}"),
        }
        let target = reference["target_nominal"].as_f64().unwrap();
        assert!(
            (result.target_nominal - target).abs() <= 1e-9 * target.max(1.0),
            "{name}"
        );
        let ref_yearly = reference["yearly"].as_array().unwrap();
        let months: Vec<u64> = result.yearly.iter().map(|y| u64::from(y.month)).collect();
        let ref_months: Vec<u64> = ref_yearly
            .iter()
            .map(|y| y["month"].as_u64().unwrap())
            .collect();
        assert_eq!(months, ref_months, "{name}");
        // The fan chart's depleted fraction, a proportion like success.
        for (y, ry) in result.yearly.iter().zip(ref_yearly) {
            let (a, b) = (y.depleted, ry["depleted"].as_f64().unwrap());
            within(
                &format!("{name}: depleted by month {}", y.month),
                a,
                b,
                proportion_se(a),
                proportion_se(b),
                4.0,
            );
        }
    }
}

/// Household plans (docs/model.md §5) against `benches/plan_reference.py`, written from the model
/// document alone: a dozen plans covering every rule. Proportions (success, depletion, spending
/// cuts, goals paid) and means (estate, lifetime taxes) within 4 combined standard errors; the
/// median estate by where the reference's median falls in the engine's distribution: the
/// engine's fraction of estates below it is ½ within 4 SE (√(¼/n_engine + ¼/n_reference)).
#[test]
fn plans_agree_with_the_numpy_reference_within_4_standard_errors() {
    use sextant_engine::backend::Watch;
    use sextant_engine::plan::{build_plan_result, prepare_plan, simulate_plan, PlanRequest};

    let (cases, references) = reference_answers("plan-reference-cases.json", "plan_reference.py");

    for (case, reference) in cases.iter().zip(&references) {
        let name = case["name"].as_str().unwrap();
        let mut request = case.clone();
        request.as_object_mut().unwrap().remove("name");
        let request: PlanRequest = serde_json::from_value(request).unwrap();
        // One simulation: its per-path estates for the median check, then its result.
        let plan = prepare_plan(&request).unwrap();
        let samples = simulate_plan(&plan, &Watch::default()).unwrap();
        let median = reference["estate"]["median"].as_f64().unwrap();
        let below = samples
            .outcomes
            .iter()
            .filter(|o| o.estate < median)
            .count() as f64;
        let equal = samples
            .outcomes
            .iter()
            .filter(|o| o.estate == median)
            .count() as f64;
        let result = build_plan_result(&plan, samples, "cpu");
        let n = result.paths as f64;
        let n_ref = reference["paths"].as_f64().unwrap();
        let proportion = |name: &str, a: f64, b: f64| {
            within(
                name,
                a,
                b,
                (a * (1.0 - a) / n).sqrt(),
                (b * (1.0 - b) / n_ref).sqrt(),
                4.0,
            )
        };
        proportion(
            &format!("{name}: success"),
            result.success_probability,
            reference["success_probability"].as_f64().unwrap(),
        );
        proportion(
            &format!("{name}: depletion"),
            result.depletion.probability,
            reference["depletion_probability"].as_f64().unwrap(),
        );
        proportion(
            &format!("{name}: spending cut"),
            result.spending_cut_probability,
            reference["spending_cut_probability"].as_f64().unwrap(),
        );
        let ref_goals = reference["goals"].as_array().unwrap();
        assert_eq!(result.goals.len(), ref_goals.len(), "{name}");
        for (goal, ref_goal) in result.goals.iter().zip(ref_goals) {
            proportion(
                &format!("{name}: goal {} due", goal.name),
                goal.due_probability,
                ref_goal["due_probability"].as_f64().unwrap(),
            );
            // Paid among the paths where it fell due.
            let (a, b) = (
                goal.paid_probability,
                ref_goal["paid_given_due"].as_f64().unwrap(),
            );
            let (na, nb) = (
                (goal.due_probability * n).max(1.0),
                (ref_goal["due_probability"].as_f64().unwrap() * n_ref).max(1.0),
            );
            within(
                &format!("{name}: goal {} paid", goal.name),
                a,
                b,
                (a * (1.0 - a) / na).sqrt(),
                (b * (1.0 - b) / nb).sqrt(),
                4.0,
            );
        }
        for (what, ours, theirs) in [
            ("estate", result.estate.mean, &reference["estate"]),
            (
                "lifetime taxes",
                result.lifetime_taxes.mean,
                &reference["lifetime_taxes"],
            ),
        ] {
            let sd = theirs["std"].as_f64().unwrap();
            within(
                &format!("{name}: mean {what}"),
                ours,
                theirs["mean"].as_f64().unwrap(),
                sd / n.sqrt(),
                sd / n_ref.sqrt(),
                4.0,
            );
        }
        // The median estate: where the reference's median falls among the engine's estates.
        if median > 0.0 {
            let at = (below + 0.5 * equal) / n;
            let bound = 4.0 * (0.25 / n + 0.25 / n_ref).sqrt();
            assert!(
                (at - 0.5).abs() <= bound,
                "{name}: the reference's median estate {median} is at the engine's {at} quantile (bound {bound})"
            );
        } else {
            // Half or more of the paths end with nothing, in both.
            assert!(
                below + equal >= 0.5 * n - 4.0 * (0.25 * n).sqrt(),
                "{name}: the reference's median estate is 0, the engine's is {}",
                result.estate.percentiles.get(50.0).unwrap_or(f64::NAN)
            );
        }
    }
}
