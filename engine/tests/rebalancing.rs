//! Per-asset paths and rebalancing (docs/model.md §4.5) through the engine: the limits (one
//! asset never rebalanced is §1's path; assets without volatility give the compound results
//! of each rule, with the rebalances and turnover counted by hand), the means under annual and
//! no rebalancing against their closed forms, the correlation of the assets' months, the
//! solvers, and bad input refused by name. Statistical bounds are 4 standard errors with
//! fixed seeds.

use serde_json::{json, Value};
use sextant_engine::backend::{CpuBackend, SimulationBackend};
use sextant_engine::plan::prepare_plan;
use sextant_engine::solve::{required_contribution, score_accumulation, Method};
use sextant_engine::validate::prepare;
use sextant_engine::{Engine, GoalRequest, PlanRequest};

fn request(value: Value) -> GoalRequest {
    serde_json::from_value(value).unwrap()
}

fn mean_and_se(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn one_asset_never_rebalanced_is_the_lognormal_path() {
    // Asset 0 draws §1's normals, and one asset's holdings are the whole wealth: the same
    // path to rounding (the per-asset month adds c − d as one amount, §1 adds c then takes d).
    let goal = |rebalancing: Value| {
        request(json!({
            "goal": {"initial_wealth": 20000, "monthly_contribution": 300,
                     "monthly_withdrawal": 700, "withdrawal_start_month": 120,
                     "horizon_months": 300},
            "market": {"assets": [{"name": "world", "expected_return": 0.06, "volatility": 0.18}],
                       "weights": [1.0], "fee": 0.004, "rebalancing": rebalancing},
            "options": {"paths": 4000, "seed": 5}
        }))
    };
    let cpu = CpuBackend::new();
    let per_asset = prepare(&goal(json!("none"))).unwrap();
    assert!(per_asset.asset_paths.is_some());
    let monthly = prepare(&goal(json!("monthly"))).unwrap();
    assert!(monthly.asset_paths.is_none());
    let (a, b) = (
        cpu.terminal_wealth(&per_asset),
        cpu.terminal_wealth(&monthly),
    );
    let mut depleted = 0;
    for (path, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-9 * y.abs().max(1.0),
            "path {path}: {x} vs {y}"
        );
        depleted += usize::from(*y == 0.0);
    }
    assert!(depleted > 0, "some paths deplete");
    let engine = Engine::default();
    let (r, m) = (
        engine.simulate(&goal(json!("none"))).unwrap(),
        engine.simulate(&goal(json!("monthly"))).unwrap(),
    );
    assert_eq!(r.depletion, m.depletion);
    let stats = r.rebalancing.unwrap();
    assert_eq!((stats.rule.as_str(), stats.mean_rebalances), ("none", 0.0));
    assert!(m.rebalancing.is_none());
}

/// Two assets without volatility growing 10% and 0% a year, half and half, W0 = 1000, no cash
/// flows, ten years, under `rebalancing`.
fn deterministic(rebalancing: Value) -> GoalRequest {
    request(json!({
        "goal": {"initial_wealth": 1000, "horizon_months": 120, "target_amount": 0},
        "market": {"assets": [{"name": "up", "expected_return": 0.10, "volatility": 0.0},
                              {"name": "flat", "expected_return": 0.0, "volatility": 0.0}],
                   "weights": [0.5, 0.5], "rebalancing": rebalancing},
        "options": {"paths": 50, "seed": 1}
    }))
}

#[test]
fn assets_without_volatility_compound_as_each_rule_says() {
    let engine = Engine::default();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    // None: each half compounds on its own.
    let none = engine.simulate(&deterministic(json!("none"))).unwrap();
    let expected = 500.0 * 1.1f64.powi(10) + 500.0;
    assert!(
        close(none.terminal.mean, expected),
        "{}",
        none.terminal.mean
    );
    // Annual: back to half and half at months 12 … 108, so each year grows by 5%; the
    // growing half's weight has drifted to 0.55/1.05, so each rebalance trades
    // 0.55/1.05 − 0.5 of the portfolio: nine of them.
    let annual = engine.simulate(&deterministic(json!("annual"))).unwrap();
    assert!(close(annual.terminal.mean, 1000.0 * 1.05f64.powi(10)));
    let stats = annual.rebalancing.unwrap();
    assert_eq!(stats.mean_rebalances, 9.0);
    assert!(
        close(stats.mean_turnover, 9.0 * (0.55 / 1.05 - 0.5)),
        "{stats:?}"
    );
    assert!(close(
        stats.mean_annual_turnover,
        stats.mean_turnover / 10.0
    ));
    // Band 5%: the growing half's weight g/(g + 1) (g = 1.1^(m/12) after m months) passes
    // 0.55 when g > 11/9, first after 26 months (1.1^(25/12) = 1.2197, 1.1^(26/12) = 1.2295):
    // rebalances at months 26, 52, 78 and 104, each a growth of (g₂₆ + 1)/2.
    let band = engine
        .simulate(&deterministic(json!({"kind": "band", "band": 0.05})))
        .unwrap();
    let g26 = 1.1f64.powf(26.0 / 12.0);
    let stats = band.rebalancing.unwrap();
    assert_eq!(stats.mean_rebalances, 4.0);
    let turnover_each = (g26 / (g26 + 1.0) - 0.5).abs();
    assert!(close(stats.mean_turnover, 4.0 * turnover_each), "{stats:?}");
    let g16 = 1.1f64.powf(16.0 / 12.0);
    let expected = 1000.0 * ((g26 + 1.0) / 2.0).powi(4) * (0.5 * g16 + 0.5);
    assert!(
        close(band.terminal.mean, expected),
        "{} vs {expected}",
        band.terminal.mean
    );
    // Monthly: §1's one portfolio of μ = 5%.
    let monthly = engine.simulate(&deterministic(json!("monthly"))).unwrap();
    assert!(close(monthly.terminal.mean, 1000.0 * 1.05f64.powi(10)));
    assert!(monthly.rebalancing.is_none());
}

/// Two correlated risky assets, 60/40, W0 = 1, no cash flows, `years` years.
fn two_assets(rebalancing: &str, years: u32, paths: u64) -> GoalRequest {
    request(json!({
        "goal": {"initial_wealth": 1, "horizon_months": 12 * years},
        "market": {"assets": [{"name": "stocks", "expected_return": 0.08, "volatility": 0.2},
                              {"name": "bonds", "expected_return": 0.03, "volatility": 0.06}],
                   "weights": [0.6, 0.4], "correlations": [[1, 0.3], [0.3, 1]],
                   "rebalancing": rebalancing},
        "options": {"paths": paths, "seed": 77}
    }))
}

#[test]
fn mean_wealth_under_annual_and_no_rebalancing_is_the_closed_form() {
    // Each asset's year grows by 1 + μ_k in expectation (independent years): annual
    // rebalancing gives E[W_T] = Π (0.6·1.08 + 0.4·1.03), none Σ w_k (1 + μ_k)^years.
    let cpu = CpuBackend::new();
    let years = 15;
    for (rule, expected) in [
        ("annual", (0.6 * 1.08 + 0.4 * 1.03f64).powi(years as i32)),
        (
            "none",
            0.6 * 1.08f64.powi(years as i32) + 0.4 * 1.03f64.powi(years as i32),
        ),
    ] {
        let goal = prepare(&two_assets(rule, years, 200_000)).unwrap();
        let (mean, se) = mean_and_se(&cpu.terminal_wealth(&goal));
        assert!(
            (mean - expected).abs() <= 4.0 * se,
            "{rule}: {mean} vs {expected} (4 SE = {})",
            4.0 * se
        );
    }
}

#[test]
fn the_assets_months_have_their_correlation_and_volatilities() {
    // Month 0 of "none" from W0 = 1 in one asset at a time: the weights (1, 0) hold stocks
    // only, but the normals are drawn for both assets and correlated by the Cholesky factor.
    // ln G of each asset is normal with SD s_k/√12; their sample correlation is 0.3 within
    // 4 SE ((1 − ρ²)/√n).
    let n = 100_000;
    let month_of = |weights: [f64; 2]| {
        let mut r = two_assets("none", 1, n);
        r.goal.horizon_months = 1;
        r.market.weights = Some(weights.to_vec());
        let goal = prepare(&r).unwrap();
        CpuBackend::new()
            .terminal_wealth(&goal)
            .into_iter()
            .map(f64::ln)
            .collect::<Vec<_>>()
    };
    let (a, b) = (month_of([1.0, 0.0]), month_of([0.0, 1.0]));
    let (ma, _) = mean_and_se(&a);
    let (mb, _) = mean_and_se(&b);
    let cov = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / n as f64;
    let sd = |x: &[f64], m: f64| (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt();
    let (sa, sb) = (sd(&a, ma), sd(&b, mb));
    let rho = cov / (sa * sb);
    let se = (1.0 - 0.09) / (n as f64).sqrt();
    assert!((rho - 0.3).abs() <= 4.0 * se, "ρ = {rho}");
    // s² = ln(1 + σ²/(1 + μ)²) a year; the month's SD of ln G is sqrt(s²/12), within 4 SE
    // (SD/√(2n) for a normal sample).
    for (s, mu, sigma) in [(sa, 0.08, 0.2), (sb, 0.03, 0.06)] {
        let expected = ((1.0f64 + sigma * sigma / ((1.0 + mu) * (1.0 + mu))).ln() / 12.0).sqrt();
        assert!(
            (s - expected).abs() <= 4.0 * expected / (2.0 * n as f64).sqrt(),
            "{s} vs {expected}"
        );
    }
}

#[test]
fn the_solvers_run_with_per_asset_paths() {
    let engine = Engine::default();
    let saver = |rebalancing: Value| {
        request(json!({
            "goal": {"initial_wealth": 10000, "monthly_contribution": 100, "horizon_months": 180,
                     "target_amount": 120000, "target_real": false},
            "market": {"assets": [{"name": "stocks", "expected_return": 0.07, "volatility": 0.18},
                                  {"name": "bonds", "expected_return": 0.03, "volatility": 0.05}],
                       "weights": [0.6, 0.4], "rebalancing": rebalancing},
            "options": {"paths": 3000, "seed": 9}
        }))
    };
    // Annual: W_T is affine in c, so the break-even order statistic, checked by simulation.
    let annual = saver(json!("annual"));
    let solved = required_contribution(&engine, &annual).unwrap();
    assert_eq!(solved.method, Method::BreakEven);
    let value = solved.value.unwrap();
    let at = |c: f64| {
        let mut r = annual.clone();
        r.goal.monthly_contribution = c;
        engine.simulate(&r).unwrap().success_probability
    };
    assert!(at(value) >= 0.8 && at(value - 0.01) < 0.8, "{value}");
    // The re-score's affine pass finds the same order statistic (not re-checked by a
    // simulation, so within a cent).
    let score = score_accumulation(&CpuBackend::new(), &annual).unwrap();
    assert!((score.required_contribution.unwrap() - value).abs() <= 0.01 + 1e-9);
    // Band: not affine, so bisection; the answer meets the threshold.
    let band = saver(json!({"kind": "band", "band": 0.1}));
    let solved = required_contribution(&engine, &band).unwrap();
    assert_eq!(solved.method, Method::Bisection);
    assert!(solved.success_probability >= 0.8);
    let err = score_accumulation(&CpuBackend::new(), &band).unwrap_err();
    assert_eq!(err.field, "market.rebalancing");
}

#[test]
fn bad_rebalancing_is_refused_by_name() {
    let assets = json!([{"name": "a", "expected_return": 0.05, "volatility": 0.1},
                        {"name": "b", "expected_return": 0.03, "volatility": 0.05}]);
    let goal = json!({"initial_wealth": 1000, "horizon_months": 60});
    let cases = [
        (
            json!({"expected_return": 0.05, "volatility": 0.1, "rebalancing": "annual"}),
            "market.rebalancing",
            "needs market.assets",
        ),
        (
            json!({"assets": assets, "weights": [0.5, 0.5], "rebalancing": {"kind": "band", "band": 0}}),
            "market.rebalancing.band",
            "(0, 1)",
        ),
        (
            json!({"assets": assets, "weights": [0.5, 0.5], "rebalancing": {"kind": "band", "band": 1.5}}),
            "market.rebalancing.band",
            "got 1.5",
        ),
        (
            json!({"assets": assets, "rebalancing": "annual", "glide_path": [
                {"start_month": 0, "weights": [0.5, 0.5]},
                {"start_month": 24, "expected_return": 0.04, "volatility": 0.08}]}),
            "market.glide_path[1].weights",
            "every segment gives weights",
        ),
        (
            json!({"assets": assets, "weights": [0.5, 0.5], "rebalancing": "none",
                   "model": {"kind": "student_t", "df": 5}}),
            "market.rebalancing",
            "lognormal market model",
        ),
        (
            json!({"assets": assets, "weights": [0.5, 0.5], "rebalancing": "annual",
                   "inflation": {"kind": "ar1", "mean": 0.02, "volatility": 0.01, "correlation": 0.3}}),
            "market.inflation.correlation",
            "per-asset paths",
        ),
        (
            json!({"assets": (0..17).map(|k| json!({"name": format!("a{k}"), "expected_return": 0.05, "volatility": 0.1})).collect::<Vec<_>>(),
                   "weights": vec![1.0 / 17.0; 17], "rebalancing": "annual"}),
            "market.assets",
            "at most 16 assets",
        ),
    ];
    for (market, field, words) in cases {
        let r = request(json!({"goal": goal, "market": market}));
        let err = prepare(&r).unwrap_err();
        assert_eq!(err.field, field, "{market}: {err}");
        assert!(err.problem.contains(words), "{market}: {err}");
    }
    // The document's own errors: an unknown word, a band without its width, an unknown field.
    for (rebalancing, words) in [
        (json!("quarterly"), "unknown variant `quarterly`"),
        (json!("band"), "needs its width"),
        (
            json!({"kind": "band", "band": 0.1, "every": 3}),
            "unknown field `every`",
        ),
    ] {
        let err = serde_json::from_value::<GoalRequest>(json!({
            "goal": goal, "market": {"assets": assets, "weights": [0.5, 0.5], "rebalancing": rebalancing}
        }))
        .unwrap_err();
        assert!(err.to_string().contains(words), "{err}");
    }
    // A plan refuses per-asset paths by name.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plan-single-retiree.json"
    );
    let mut plan: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    plan["market"]["rebalancing"] = json!("annual");
    let plan: PlanRequest = serde_json::from_value(plan).unwrap();
    assert_eq!(prepare_plan(&plan).unwrap_err().field, "market.rebalancing");
}

#[test]
fn a_rebalancing_rule_round_trips_as_written() {
    for (written, read) in [
        (json!("annual"), json!({"kind": "annual"})),
        (json!({"kind": "none"}), json!({"kind": "none"})),
        (
            json!({"kind": "band", "band": 0.05}),
            json!({"kind": "band", "band": 0.05}),
        ),
    ] {
        let r = request(json!({
            "goal": {"horizon_months": 12},
            "market": {"assets": [{"name": "a", "expected_return": 0.05, "volatility": 0.1}],
                       "weights": [1.0], "rebalancing": written}
        }));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["market"]["rebalancing"], read);
        assert_eq!(request(back), r);
    }
}
