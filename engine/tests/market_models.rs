//! The market models of docs/model.md §4 through the engine: the Student-t month's moments
//! (mean and variance are §1's, kurtosis the t's), its limit ν → ∞ (the lognormal's mean and
//! variance), the lognormal's bits untouched, the model reaching sweeps, and bad input refused
//! by name. Every statistical bound is 4 standard errors with a fixed seed.

use serde_json::{json, Value};
use sextant_engine::backend::{CpuBackend, SimulationBackend};
use sextant_engine::validate::prepare;
use sextant_engine::{Engine, GoalRequest};

fn request(value: Value) -> GoalRequest {
    serde_json::from_value(value).unwrap()
}

/// A one-month goal from W0 = 1 with no cash flows: its terminal wealth on each path is that
/// month's gross return G.
fn one_month(market: Value, paths: u64, seed: u64) -> GoalRequest {
    request(json!({
        "goal": {"initial_wealth": 1, "horizon_months": 1},
        "market": market,
        "options": {"paths": paths, "seed": seed}
    }))
}

/// The gross returns G of one month on every path, as the engine's CPU kernel draws them.
fn monthly_returns(market: Value, paths: u64, seed: u64) -> Vec<f64> {
    let goal = prepare(&one_month(market, paths, seed)).unwrap();
    CpuBackend::new().terminal_wealth(&goal)
}

/// Sample mean, variance and kurtosis (fourth standardised moment) of `x`, each with its
/// standard error from 100 batches (the spread of the batch estimates / √100): no moment of
/// the distribution beyond the eighth is assumed.
fn moments(x: &[f64]) -> [(f64, f64); 3] {
    let of = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let m4 = x.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n;
        [mean, var, m4 / (var * var)]
    };
    let whole = of(x);
    let batches: Vec<[f64; 3]> = x.chunks(x.len() / 100).map(of).collect();
    std::array::from_fn(|k| {
        let b = batches.len() as f64;
        let mean = batches.iter().map(|m| m[k]).sum::<f64>() / b;
        let var = batches.iter().map(|m| (m[k] - mean).powi(2)).sum::<f64>() / (b - 1.0);
        (whole[k], (var / b).sqrt())
    })
}

/// E[G] and Var[G] of §1's lognormal month of annual μ, σ.
fn lognormal_month(mu: f64, sigma: f64) -> (f64, f64) {
    let s2 = (1.0 + sigma * sigma / ((1.0 + mu) * (1.0 + mu))).ln() / 12.0;
    let m = ((1.0 + mu).ln() - 12.0 * s2 / 2.0) / 12.0;
    let mean = (m + s2 / 2.0).exp();
    (mean, mean * mean * s2.exp_m1())
}

fn assert_within(name: &str, (value, se): (f64, f64), expected: f64) {
    assert!(
        (value - expected).abs() <= 4.0 * se,
        "{name}: {value} vs {expected} (4 SE = {})",
        4.0 * se
    );
}

#[test]
fn a_student_t_month_has_the_lognormals_mean_and_variance_and_the_ts_kurtosis() {
    // ν = 10: excess kurtosis 6/(ν − 4) = 1, and finite eighth moments for the SE.
    let (mu, sigma, df) = (0.07, 0.16, 10.0);
    let g = monthly_returns(
        json!({"expected_return": mu, "volatility": sigma,
               "model": {"kind": "student_t", "df": df}}),
        1_000_000,
        17,
    );
    let (mean, var) = lognormal_month(mu, sigma);
    let [m, v, k] = moments(&g);
    assert_within("mean", m, mean);
    assert_within("variance", v, var);
    assert_within("kurtosis", k, 3.0 + 6.0 / (df - 4.0));
    // The lognormal month itself, on the same seed, is measurably thinner-tailed.
    let lognormal = monthly_returns(
        json!({"expected_return": mu, "volatility": sigma}),
        1_000_000,
        17,
    );
    let [_, _, k_lognormal] = moments(&lognormal);
    assert!(
        k_lognormal.0 + 8.0 * k_lognormal.1 < k.0,
        "{k_lognormal:?} vs {k:?}"
    );
}

#[test]
fn a_student_t_of_a_million_degrees_is_the_lognormals_mean_and_variance() {
    let (mu, sigma) = (0.05, 0.2);
    let g = monthly_returns(
        json!({"expected_return": mu, "volatility": sigma,
               "model": {"kind": "student_t", "df": 1e6}}),
        1_000_000,
        23,
    );
    let (mean, var) = lognormal_month(mu, sigma);
    let [m, v, k] = moments(&g);
    assert_within("mean", m, mean);
    assert_within("variance", v, var);
    // The t's limit is the normal: kurtosis 3 (the lognormal month's is 3.07 here).
    assert_within("kurtosis", k, 3.0);
}

#[test]
fn fat_tails_report_clamped_months_and_the_lognormal_keeps_its_bits() {
    let engine = Engine::default();
    let base = json!({
        "goal": {"initial_wealth": 500000, "monthly_withdrawal": 2500, "withdrawal_start_month": 0,
                 "horizon_months": 240},
        "market": {"expected_return": 0.06, "volatility": 0.6},
        "options": {"paths": 20000, "seed": 8}
    });
    let plain = engine.simulate(&request(base.clone())).unwrap();
    let mut named = base.clone();
    named["market"]["model"] = json!({"kind": "lognormal"});
    let named = engine.simulate(&request(named)).unwrap();
    assert_eq!(
        serde_json::to_value(&plain).unwrap(),
        serde_json::to_value(&named).unwrap(),
        "naming the lognormal changes nothing"
    );
    assert_eq!(plain.clamped_months, None);
    assert!(serde_json::to_value(&plain)
        .unwrap()
        .get("clamped_months")
        .is_none());

    let mut fat = base.clone();
    fat["market"]["model"] = json!({"kind": "student_t", "df": 2.5});
    let fat = engine.simulate(&request(fat)).unwrap();
    let clamped = fat.clamped_months.unwrap();
    assert!(clamped > 0, "60% volatility at ν = 2.5 clamps some months");
    assert!(clamped < 20000 * 240 / 100);
    // The default ν is 5.
    let mut default_df = base.clone();
    default_df["market"]["model"] = json!({"kind": "student_t"});
    let mut five = base;
    five["market"]["model"] = json!({"kind": "student_t", "df": 5});
    assert_eq!(
        serde_json::to_value(engine.simulate(&request(default_df)).unwrap()).unwrap(),
        serde_json::to_value(engine.simulate(&request(five)).unwrap()).unwrap()
    );
}

#[test]
fn a_sweeps_model_reaches_every_point() {
    use sextant_engine::request::ReturnModel;
    use sextant_engine::sweep::SweepRequest;
    let engine = Engine::default();
    let mut sweep: SweepRequest = serde_json::from_value(json!({
        "goal": {"initial_wealth": 100000, "monthly_contribution": 1000, "horizon_months": 240,
                 "target_amount": 700000},
        "frontier": {"assets": [{"name": "stocks", "expected_return": 0.08, "volatility": 0.18},
                                {"name": "bonds", "expected_return": 0.035, "volatility": 0.06}],
                     "correlations": [[1, 0.1], [0.1, 1]], "points": 5},
        "model": {"kind": "student_t", "df": 4},
        "options": {"paths": 4000, "seed": 3}
    }))
    .unwrap();
    let report = sweep.run(&engine).unwrap();
    for point in &report.points {
        let alone =
            sweep.goal_request_at(point.portfolio.expected_return, point.portfolio.volatility);
        assert_eq!(alone.market.model, ReturnModel::StudentT { df: 4.0 });
        let alone = engine.simulate(&alone).unwrap();
        assert_eq!(point.success_probability, alone.success_probability);
        assert_eq!(point.terminal_mean, alone.terminal.mean);
    }
    sweep.model = ReturnModel::StudentT { df: 2.0 };
    let err = sweep.run(&engine).unwrap_err().to_string();
    assert!(err.starts_with("model.df: "), "{err}");
}

#[test]
fn a_bad_model_is_refused_by_name() {
    let with_model = |model: Value| {
        serde_json::from_value::<GoalRequest>(json!({
            "goal": {"horizon_months": 12},
            "market": {"expected_return": 0.05, "volatility": 0.1, "model": model}
        }))
        .map_err(|e| e.to_string())
        .and_then(|r| prepare(&r).map(|_| ()).map_err(|e| e.to_string()))
    };
    for df in [2.0, 1.5, -3.0, 2e9] {
        let err = with_model(json!({"kind": "student_t", "df": df})).unwrap_err();
        assert!(
            err.starts_with("market.model.df: must be above 2"),
            "{df}: {err}"
        );
    }
    // JSON has no NaN or ∞; a Rust caller can still build one.
    for df in [f64::NAN, f64::INFINITY] {
        let mut r = request(json!({"goal": {"horizon_months": 12},
                                   "market": {"expected_return": 0.05, "volatility": 0.1}}));
        r.market.model = sextant_engine::request::ReturnModel::StudentT { df };
        let err = prepare(&r).unwrap_err();
        assert_eq!(err.field, "market.model.df", "{df}");
    }
    let err = with_model(json!({"kind": "cauchy"})).unwrap_err();
    assert!(err.contains("cauchy"), "{err}");
    let err = with_model(json!({"kind": "student_t", "nu": 5})).unwrap_err();
    assert!(err.contains("nu"), "{err}");
    assert!(with_model(json!({"kind": "student_t", "df": 2.0001})).is_ok());
}

#[test]
fn a_plan_refuses_a_model_its_kernels_lack_by_name() {
    use sextant_engine::plan::{prepare_plan, PlanRequest};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plan-single-retiree.json"
    );
    let mut plan: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(prepare_plan(&serde_json::from_value::<PlanRequest>(plan.clone()).unwrap()).is_ok());
    plan["market"]["model"] = json!({"kind": "student_t", "df": 5});
    let plan: PlanRequest = serde_json::from_value(plan).unwrap();
    let err = prepare_plan(&plan).unwrap_err();
    assert_eq!(err.field, "market.model");
    assert!(err.problem.contains("student_t"), "{}", err.problem);
}
