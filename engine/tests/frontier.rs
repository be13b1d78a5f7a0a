//! The frontier against what is known in closed form, its shape, the sweep against single-goal
//! runs, the resampled frontier's determinism, and the risk metrics' Monte Carlo against their
//! closed forms. (The comparison with an independent QP solver is `frontier_oracle.rs`.)

use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use sextant_engine::frontier::resample::{averaged_weights, ResampleOptions};
use sextant_engine::frontier::{
    FrontierProblem, FrontierRequest, FrontierRequestError, GroupLimit,
};
use sextant_engine::risk::{annual_log_moments, RiskRequest};
use sextant_engine::sweep::SweepRequest;
use sextant_engine::{Device, Engine};

fn problem(mu: &[f64], cov: &DMatrix<f64>, lower: f64, upper: f64) -> FrontierProblem {
    let n = mu.len();
    FrontierProblem {
        expected_returns: mu.to_vec(),
        covariance: (0..n * n).map(|k| cov[(k / n, k % n)]).collect(),
        lower: vec![lower; n],
        upper: vec![upper; n],
        groups: vec![],
    }
}

fn covariance(vols: &[f64], corr: &[&[f64]]) -> DMatrix<f64> {
    let n = vols.len();
    DMatrix::from_fn(n, n, |i, j| vols[i] * vols[j] * corr[i][j])
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn two_assets_follow_the_closed_form() {
    // With two assets the budget and the return fix the weights: w₁ = (ρ − μ₀)/(μ₁ − μ₀).
    let (mu, vols, c) = ([0.04, 0.10], [0.10, 0.20], 0.3);
    let cov = covariance(&vols, &[&[1.0, c], &[c, 1.0]]);
    let f = problem(&mu, &cov, 0.0, 1.0).solve().unwrap();
    // Minimum variance: w₁ = (σ₀² − c σ₀σ₁) / (σ₀² + σ₁² − 2c σ₀σ₁).
    let cross = c * vols[0] * vols[1];
    let w1 = (vols[0] * vols[0] - cross) / (vols[0] * vols[0] + vols[1] * vols[1] - 2.0 * cross);
    assert!((f.min_variance().weights[1] - w1).abs() < 1e-14);
    assert!((f.max_return() - 0.10).abs() < 1e-15);
    for p in f.points(25) {
        let w1 = (p.expected_return - mu[0]) / (mu[1] - mu[0]);
        let w0 = 1.0 - w1;
        let variance = w0 * w0 * cov[(0, 0)] + w1 * w1 * cov[(1, 1)] + 2.0 * w0 * w1 * cov[(0, 1)];
        assert!(relative(p.variance, variance) < 1e-13, "{p:?}");
        assert!((p.weights[1] - w1).abs() < 1e-13);
    }
}

/// A fixed, well-conditioned 5-asset market.
fn five_assets() -> (Vec<f64>, DMatrix<f64>) {
    let mu = vec![0.03, 0.05, 0.07, 0.08, 0.11];
    let vols = [0.05, 0.09, 0.15, 0.17, 0.25];
    let corr: [&[f64]; 5] = [
        &[1.0, 0.3, 0.1, 0.0, 0.1],
        &[0.3, 1.0, 0.4, 0.3, 0.2],
        &[0.1, 0.4, 1.0, 0.6, 0.5],
        &[0.0, 0.3, 0.6, 1.0, 0.7],
        &[0.1, 0.2, 0.5, 0.7, 1.0],
    ];
    (mu, covariance(&vols, &corr))
}

#[test]
fn without_binding_bounds_the_frontier_is_the_closed_form_from_the_inverse_covariance() {
    // Budget only (bounds ±10 do not bind near the minimum-variance portfolio):
    // σ²(ρ) = (Aρ² − 2Bρ + C) / (AC − B²), A = 1ᵀΣ⁻¹1, B = 1ᵀΣ⁻¹μ, C = μᵀΣ⁻¹μ,
    // the minimum-variance portfolio Σ⁻¹1 / A, the tangency portfolio Σ⁻¹(μ − r_f) / 1ᵀΣ⁻¹(μ − r_f).
    let (mu, cov) = five_assets();
    let f = problem(&mu, &cov, -10.0, 10.0).solve().unwrap();
    let inv = cov.clone().try_inverse().unwrap();
    let ones = DVector::from_element(5, 1.0);
    let m = DVector::from_vec(mu.clone());
    let a = ones.dot(&(&inv * &ones));
    let b = ones.dot(&(&inv * &m));
    let c = m.dot(&(&inv * &m));
    let mv = &inv * &ones / a;
    for (got, want) in f.min_variance().weights.iter().zip(mv.iter()) {
        assert!((got - want).abs() < 1e-12);
    }
    assert!(relative(f.min_return(), b / a) < 1e-12);
    let free_until = f.corners()[1].expected_return;
    assert!(
        free_until > b / a + 0.05,
        "bounds bind too early for the test"
    );
    for k in 0..=20 {
        let rho = b / a + (free_until - b / a) * f64::from(k) / 20.0;
        let p = f.at_return(rho).unwrap();
        let closed = (a * rho * rho - 2.0 * b * rho + c) / (a * c - b * b);
        assert!(relative(p.variance, closed) < 1e-12, "ρ = {rho}");
    }
    let rf = 0.01;
    let excess = &m - DVector::from_element(5, rf);
    let tangency = &inv * &excess / ones.dot(&(&inv * &excess));
    let sharpe = f.max_sharpe(rf).unwrap();
    assert!(sharpe.expected_return < free_until);
    for (got, want) in sharpe.weights.iter().zip(tangency.iter()) {
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    }
}

#[test]
fn the_frontier_rises_in_return_and_is_convex() {
    let (mu, cov) = five_assets();
    let mut long_only = problem(&mu, &cov, 0.0, 1.0);
    long_only.upper = vec![0.6, 0.6, 0.5, 0.4, 0.3];
    long_only.groups = vec![GroupLimit {
        members: vec![2, 3, 4],
        min: 0.1,
        max: 0.7,
    }];
    for p in [long_only, problem(&mu, &cov, -0.5, 1.5)] {
        let f = p.solve().unwrap();
        let points = f.points(201);
        for pair in points.windows(2) {
            assert!(pair[1].expected_return > pair[0].expected_return);
            assert!(pair[1].volatility >= pair[0].volatility - 1e-15);
        }
        // Evenly spaced in return, so convexity is a non-negative second difference.
        for t in points.windows(3) {
            let second = t[0].volatility - 2.0 * t[1].volatility + t[2].volatility;
            assert!(second >= -1e-13, "volatility not convex: {second}");
            let second = t[0].variance - 2.0 * t[1].variance + t[2].variance;
            assert!(second >= -1e-14, "variance not convex: {second}");
        }
        // Targets round-trip.
        let mid = &points[120];
        let by_vol = f.at_volatility(mid.volatility).unwrap();
        assert!((by_vol.expected_return - mid.expected_return).abs() < 1e-10);
        assert!(f.at_return(f.max_return() + 1e-6).is_none());
        assert!(f.at_volatility(f.min_variance().volatility * 0.5).is_err());
    }
}

#[test]
fn the_max_sharpe_portfolio_beats_every_point() {
    let (mu, cov) = five_assets();
    let f = problem(&mu, &cov, 0.0, 0.45).solve().unwrap();
    for rf in [0.0, 0.02, 0.04] {
        let best = f.max_sharpe(rf).unwrap().sharpe_ratio(rf).unwrap();
        for p in f.points(2001) {
            assert!(p.sharpe_ratio(rf).unwrap() <= best + 1e-12);
        }
    }
    // Nothing beats a risk-free rate above every return.
    assert!(f.max_sharpe(0.5).is_none());
}

fn sweep_request(points: u32) -> SweepRequest {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/sweep.json"
    ))
    .unwrap();
    let mut request: SweepRequest = serde_json::from_str(&text).unwrap();
    request.frontier.points = points;
    request.options.paths = Some(3000);
    request
}

#[test]
fn the_sweep_equals_separate_single_goal_runs_with_the_same_seed() {
    let engine = Engine::new(Device::auto().device);
    let request = sweep_request(12);
    let report = request.run(&engine).unwrap();
    assert_eq!(report.points.len(), 12);
    for point in &report.points {
        let alone = engine
            .simulate(
                &request
                    .goal_request_at(point.portfolio.expected_return, point.portfolio.volatility),
            )
            .unwrap();
        assert_eq!(point.success_probability, alone.success_probability);
        assert_eq!(point.terminal_mean, alone.terminal.mean);
        assert_eq!(point.depletion_probability, alone.depletion.probability);
    }
    let best = report
        .points
        .iter()
        .map(|p| p.success_probability)
        .fold(0.0, f64::max);
    assert_eq!(report.best.success_probability, best);
    if let Some(p) = &report.least_volatile_meeting_threshold {
        assert!(p.success_probability >= report.success_threshold);
        assert!(report.points[..p.index]
            .iter()
            .all(|q| q.success_probability < report.success_threshold
                || q.portfolio.volatility >= p.portfolio.volatility));
    }
}

#[test]
fn resampling_is_identical_on_any_thread_count_and_keeps_the_constraints() {
    let (mu, cov) = five_assets();
    let mut p = problem(&mu, &cov, 0.02, 0.5);
    p.groups = vec![GroupLimit {
        members: vec![0, 1],
        min: 0.2,
        max: 0.6,
    }];
    let options = ResampleOptions {
        resamples: 200,
        observations: 60,
        seed: 5,
    };
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| averaged_weights(&p, &options, 15))
    };
    let (one, solved) = run(1);
    assert_eq!(solved, 200);
    assert_eq!(run(2), (one.clone(), solved));
    for w in &one {
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(w.iter().all(|&x| (0.02 - 1e-12..=0.5 + 1e-12).contains(&x)));
        let g = w[0] + w[1];
        assert!((0.2 - 1e-12..=0.6 + 1e-12).contains(&g));
    }
}

#[test]
fn with_a_long_history_the_resampled_minimum_variance_is_the_true_one() {
    // 100,000 monthly observations estimate Σ within ~√(2/T) ≈ 0.45% per entry; the
    // resampled min-variance portfolio's true variance exceeds the minimum only to second
    // order in that error, so 1% is a wide (> 2σ in the first-order terms) bound.
    let (mu, cov) = five_assets();
    let p = problem(&mu, &cov, 0.0, 1.0);
    let truth = p.solve().unwrap();
    let options = ResampleOptions {
        resamples: 8,
        observations: 100_000,
        seed: 11,
    };
    let (weights, _) = averaged_weights(&p, &options, 5);
    let variance: f64 = (0..5)
        .flat_map(|i| (0..5).map(move |j| (i, j)))
        .map(|(i, j)| weights[0][i] * cov[(i, j)] * weights[0][j])
        .sum();
    let min = truth.min_variance().variance;
    assert!(variance >= min * (1.0 - 1e-12));
    assert!(variance < min * 1.01, "{variance} vs {min}");
}

#[test]
fn monte_carlo_var_agrees_with_the_lognormal_closed_form() {
    let request: RiskRequest = serde_json::from_value(serde_json::json!({
        "assets": [{"name": "a", "expected_return": 0.07, "volatility": 0.18},
                   {"name": "b", "expected_return": 0.03, "volatility": 0.06}],
        "correlations": [[1, 0.2], [0.2, 1]],
        "weights": [0.6, 0.4],
        "horizon_months": 36,
        "options": {"paths": 200000, "seed": 3}
    }))
    .unwrap();
    let report = request.run().unwrap();
    let (s2, m) = annual_log_moments(report.expected_return, report.volatility);
    let s = s2.sqrt();
    for (level, mc, closed) in [
        (
            0.95,
            report.value_at_risk.monte_carlo.p95,
            report.value_at_risk.parametric.p95,
        ),
        (
            0.99,
            report.value_at_risk.monte_carlo.p99,
            report.value_at_risk.parametric.p99,
        ),
    ] {
        // SE of a sample quantile: sqrt(p(1−p)/N) / density at the quantile.
        let p: f64 = 1.0 - level;
        let g = 1.0 - closed;
        let z = (g.ln() - m) / s;
        let density = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() / (g * s);
        let se = (p * (1.0 - p) / 200_000.0).sqrt() / density;
        assert!(
            (mc - closed).abs() < 4.0 * se,
            "level {level}: {mc} vs {closed} (se {se})"
        );
    }
    // CVaR beyond VaR, the drawdown quantiles ordered.
    let cvar = &report.conditional_value_at_risk.monte_carlo;
    assert!(cvar.p95 > report.value_at_risk.monte_carlo.p95);
    assert!(cvar.p99 > report.value_at_risk.monte_carlo.p99);
    let d = &report.max_drawdown;
    assert!(0.0 <= d.p50 && d.p50 <= d.p90 && d.p90 <= d.p95 && d.p95 < 1.0);
}

#[test]
fn bad_frontier_requests_name_their_field() {
    let base = serde_json::json!({
        "assets": [{"name": "a", "expected_return": 0.05, "volatility": 0.1},
                   {"name": "b", "expected_return": 0.08, "volatility": 0.2}],
        "correlations": [[1, 0.3], [0.3, 1]]
    });
    let cases = [
        (serde_json::json!({"points": 0}), "points"),
        (
            serde_json::json!({"bounds": [{"min": 0.5, "max": 0.2}, {}]}),
            "bounds[0]",
        ),
        (serde_json::json!({"bounds": [{}]}), "bounds"),
        (
            serde_json::json!({"groups": [{"assets": ["a", "zz"]}]}),
            "groups[0].assets[1]",
        ),
        (
            serde_json::json!({"correlations": [[1, 0.3], [0.2, 1]]}),
            "correlations[1][0]",
        ),
        (
            serde_json::json!({"correlations": [[1, 1.5], [1.5, 1]]}),
            "correlations[0][1]",
        ),
        (
            serde_json::json!({"covariance": [[0.01, 0], [0, 0.04]]}),
            "covariance",
        ),
        (serde_json::json!({"target_return": 0.5}), "target_return"),
        (
            serde_json::json!({"target_volatility": 0.01}),
            "target_volatility",
        ),
        (
            serde_json::json!({"groups": [{"assets": ["a"], "min": 0.7}, {"assets": ["b"], "min": 0.5}]}),
            "groups[1]",
        ),
        (
            serde_json::json!({"resample": {"resamples": 0}}),
            "resample.resamples",
        ),
    ];
    for (patch, field) in cases {
        let mut value = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            value[k] = v.clone();
        }
        let request: FrontierRequest = serde_json::from_value(value).unwrap();
        let err = request.run().unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{field}:")),
            "{field}: got {text}"
        );
        if field == "groups[1]" {
            assert!(matches!(err, FrontierRequestError::Solver(_)));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any numbers at all (NaN, infinities, negative, huge) give a result or a named error.
    #[test]
    fn frontier_requests_never_panic(
        mu in prop::collection::vec(prop_oneof![-20.0..20.0f64, Just(f64::NAN), Just(f64::INFINITY)], 1..6),
        vol in prop_oneof![-1.0..3.0f64, Just(f64::NAN)],
        corr in -1.5..1.5f64,
        lo in -12.0..2.0f64,
        hi in -1.0..12.0f64,
        group_min in -1.0..2.0f64,
        points in 0u32..300,
        target in prop::option::of(-1.0..1.0f64),
    ) {
        let n = mu.len();
        let request = FrontierRequest {
            assets: mu.iter().enumerate().map(|(i, &m)| sextant_engine::portfolio::AssetClass {
                name: format!("x{i}"), expected_return: m, volatility: Some(vol.abs() + 0.01 * i as f64),
            }).collect(),
            correlations: Some((0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { corr }).collect()).collect()),
            covariance: None,
            repair_psd: corr.abs() > 1.2,
            bounds: Some(vec![sextant_engine::frontier::request::WeightBounds { min: lo, max: hi }; n]),
            groups: vec![sextant_engine::frontier::request::GroupSpec {
                name: None, assets: vec!["x0".into()], min: group_min, max: 1.0,
            }],
            points,
            risk_free_rate: 0.0,
            target_return: target,
            target_volatility: None,
            resample: None,
        };
        match request.run() {
            Ok(report) => {
                prop_assert_eq!(report.points.len(), points as usize);
                for p in &report.points {
                    let sum: f64 = p.weights.iter().sum();
                    prop_assert!((sum - 1.0).abs() < 1e-9);
                }
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.is_empty());
                if let FrontierRequestError::Solver(s) = &e {
                    prop_assert!(!matches!(s, sextant_engine::frontier::FrontierError::Numerical(_)), "{}", text);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Risk requests with any numbers give a report or an error naming a field of the request.
    #[test]
    fn risk_requests_never_panic(
        w0 in prop_oneof![-12.0..12.0f64, Just(f64::NAN)],
        mu in prop_oneof![-2.0..2.0f64, Just(f64::INFINITY)],
        vol in -0.5..3.0f64,
        horizon in 0u32..1300,
        paths in 0u64..3000,
        shock in -2.0..2.0f64,
        value in prop::option::of(-10.0..1e16f64),
    ) {
        let request: RiskRequest = serde_json::from_value(serde_json::json!({
            "assets": [{"name": "a", "expected_return": 0.05, "volatility": 0.1},
                       {"name": "b", "expected_return": 0.0, "volatility": 0.2}],
            "weights": [0.5, 0.5],
            "stress_tests": [{"name": "s", "shocks": {"a": 0.0}}]
        })).unwrap();
        let mut request = request;
        request.weights = vec![w0, 1.0 - w0];
        request.assets[1].expected_return = mu;
        request.assets[1].volatility = Some(vol);
        request.horizon_months = horizon;
        request.options.paths = paths;
        request.stress_tests[0].shocks.insert("b".into(), shock);
        request.portfolio_value = value;
        match request.run() {
            Ok(report) => {
                prop_assert!(report.volatility.is_finite());
                prop_assert!(report.max_drawdown.p95 <= 1.0);
            }
            Err(e) => {
                let known = ["weights", "assets[1]", "horizon_months", "options.paths",
                             "stress_tests[0].shocks.b", "portfolio_value"];
                prop_assert!(known.iter().any(|f| e.field.starts_with(f)), "{}", e);
            }
        }
    }
}

/// A sweep's `fee` reaches every point (docs/model.md §4.6): each point is the single goal
/// run with the same fee, and no point's success rises over the fee-less sweep (same seed,
/// same shocks, every path scaled down); a fee out of bounds is refused naming `fee`.
#[test]
fn a_sweeps_fee_reaches_every_point() {
    let engine = Engine::new(Device::auto().device);
    let plain = sweep_request(6);
    let mut request = sweep_request(6);
    request.fee = 0.01;
    let report = request.run(&engine).unwrap();
    let without = plain.run(&engine).unwrap();
    for (point, other) in report.points.iter().zip(&without.points) {
        let alone =
            request.goal_request_at(point.portfolio.expected_return, point.portfolio.volatility);
        assert_eq!(alone.market.fee, 0.01);
        let alone = engine.simulate(&alone).unwrap();
        assert_eq!(point.success_probability, alone.success_probability);
        assert_eq!(point.terminal_mean, alone.terminal.mean);
        assert!(point.success_probability <= other.success_probability);
        assert!(point.terminal_mean < other.terminal_mean);
    }
    request.fee = 1.0;
    let err = request.run(&engine).unwrap_err().to_string();
    assert!(err.starts_with("fee: "), "{err}");
}
