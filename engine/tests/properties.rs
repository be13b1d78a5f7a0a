//! Property tests over random requests: monotonicity, the solvers' answers, no panic on any
//! input, and an error naming a field for every invalid one.

mod common;

use common::*;
use proptest::prelude::*;
use sextant_engine::solve::{required_contribution, score_accumulation, sustainable_withdrawal};
use sextant_engine::validate::prepare;
use sextant_engine::{Asset, CpuBackend, Engine, GoalRequest, Market};

/// A random valid request, small enough to run many.
fn valid_request() -> impl Strategy<Value = GoalRequest> {
    (
        (
            0.0..200_000.0f64,
            0.0..3_000.0f64,
            -0.05..0.1f64,
            1u32..=120,
        ),
        (
            0.0..2_000.0f64,
            0u32..=120,
            0.0..500_000.0f64,
            any::<bool>(),
        ),
        (-0.05..0.15f64, 0.0..0.4f64, -0.01..0.06f64, 0.05..0.99f64),
        (200u64..1500, any::<u64>()),
    )
        .prop_map(
            |((w0, c, g, t), (d, ws, target, real), (mu, sigma, infl, thr), (paths, seed))| {
                let mut goal = goal(t);
                goal.initial_wealth = w0;
                goal.monthly_contribution = c;
                goal.contribution_growth = g;
                goal.monthly_withdrawal = d;
                goal.withdrawal_start_month = Some(ws.min(t));
                goal.target_amount = target;
                goal.target_real = real;
                goal.success_threshold = thr;
                let mut m = market(mu, sigma);
                m.inflation = infl.into();
                request(goal, m, paths, seed)
            },
        )
}

fn success(engine: &Engine, request: &GoalRequest) -> f64 {
    engine.simulate(request).unwrap().success_probability
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The re-score's one affine pass gives the simulation's success exactly (the same paths,
    /// bit for bit) and the solver's required contribution, which re-checks by simulation and
    /// so may stand one cent higher.
    #[test]
    fn the_affine_score_matches_simulation_and_the_solver(r in valid_request()) {
        let mut r = r;
        r.goal.monthly_withdrawal = 0.0;
        let engine = Engine::new(sextant_engine::Device::Cpu(CpuBackend::new()));
        let score = score_accumulation(&CpuBackend::new(), &r).unwrap();
        prop_assert_eq!(score.success_probability, success(&engine, &r));
        let solved = required_contribution(&engine, &r);
        match solved {
            Ok(solved) => match (solved.value, score.required_contribution) {
                (Some(a), Some(b)) => prop_assert!(a == b || (a - b - 0.01).abs() < 1e-9, "{} vs {}", a, b),
                (a, b) => prop_assert_eq!(a, b),
            },
            // No contribution months: nothing to solve, and no contribution helps.
            Err(_) => prop_assert!(r.goal.contribution_months == Some(0)),
        }
    }

    #[test]
    fn more_contribution_never_lowers_success(r in valid_request(), extra in 0.0..2_000.0f64) {
        let engine = Engine::default();
        let mut more = r.clone();
        more.goal.monthly_contribution += extra;
        prop_assert!(success(&engine, &more) >= success(&engine, &r));
    }

    #[test]
    fn a_higher_target_never_raises_success(r in valid_request(), extra in 0.0..300_000.0f64) {
        let engine = Engine::default();
        let mut higher = r.clone();
        higher.goal.target_amount += extra;
        prop_assert!(success(&engine, &higher) <= success(&engine, &r));
    }

    #[test]
    fn the_required_contribution_meets_the_threshold_and_a_dollar_less_does_not(r in valid_request()) {
        let engine = Engine::default();
        let solved = required_contribution(&engine, &r).unwrap();
        let threshold = r.goal.success_threshold;
        if let Some(c) = solved.value {
            let mut at = r.clone();
            at.goal.monthly_contribution = c;
            prop_assert!(success(&engine, &at) >= threshold, "{c} misses");
            prop_assert_eq!(solved.success_probability, success(&engine, &at));
            if c >= 1.0 {
                at.goal.monthly_contribution = c - 1.0;
                prop_assert!(success(&engine, &at) < threshold, "{} also meets", c - 1.0);
            }
        } else {
            prop_assert!(!solved.attainable);
            prop_assert!(solved.success_probability < threshold);
        }
    }

    #[test]
    fn the_sustainable_withdrawal_meets_the_threshold_and_a_dollar_more_does_not(r in valid_request()) {
        prop_assume!(r.goal.withdrawal_start_month.unwrap() < r.goal.horizon_months);
        let engine = Engine::default();
        let solved = sustainable_withdrawal(&engine, &r).unwrap();
        let threshold = r.goal.success_threshold;
        if let Some(d) = solved.value {
            let mut at = r.clone();
            at.goal.monthly_withdrawal = d;
            prop_assert!(success(&engine, &at) >= threshold, "{d} misses");
            at.goal.monthly_withdrawal = d + 1.0;
            prop_assert!(success(&engine, &at) < threshold, "{} also meets", d + 1.0);
        } else {
            prop_assert!(!solved.attainable);
        }
    }
}

/// Any number at all, valid or not.
/// A runner of `cases` cases from a fixed seed: the same cases every run.
fn fixed_runner(cases: u32) -> proptest::test_runner::TestRunner {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    TestRunner::new_with_rng(
        Config {
            cases,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

/// Run `cases` cases of `strategy` (from a fixed seed) through `case`, which answers whether a
/// case was simulated (`true`) or refused by name (`false`): both must occur, so the inputs
/// reach both sides.
fn simulated_or_refused<S: Strategy>(
    what: &str,
    cases: u32,
    strategy: S,
    case: impl Fn(S::Value) -> Result<bool, TestCaseError>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let (simulated, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    fixed_runner(cases)
        .run(&strategy, |value| {
            let counter = if case(value)? { &simulated } else { &refused };
            counter.fetch_add(1, Relaxed);
            Ok(())
        })
        .unwrap();
    let (simulated, refused) = (simulated.into_inner(), refused.into_inner());
    eprintln!("{cases} {what}: {simulated} simulated, {refused} refused");
    assert!(
        simulated > 0 && refused > 0,
        "{what}: {simulated} / {refused}"
    );
}

fn any_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -2.0..2.0f64,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(1e300),
    ]
}

/// Whatever the numbers, the engine answers with a result or an error naming a field. The
/// market is built as a struct, not through JSON (where NaN and ±∞ become null and the case
/// would stop at deserialisation, before validation), so every case reaches `prepare`; what
/// the cases exercised is counted, printed, and each kind must occur.
#[test]
fn no_input_panics_and_every_error_names_a_field() {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Mutex;

    let simulated = AtomicUsize::new(0);
    let refused: Mutex<std::collections::BTreeMap<String, usize>> = Mutex::default();
    // Each number is a plausible one four times in five and any number at all otherwise, so
    // that whole cases are valid often enough to be simulated too.
    let number = || prop_oneof![4 => 0.0..0.5f64, 1 => any_number()];
    let strategy = (
        proptest::collection::vec(number(), 10),
        (
            0u32..1500,
            prop_oneof![3 => 0u32..100, 1 => 0u32..1500],
            prop_oneof![3 => 0u32..100, 1 => 0u32..1500],
        ),
        prop_oneof![1 => Just(0u64), 6 => 1u64..300, 1 => Just(10_000_001u64)],
        prop_oneof![
            3 => Just(vec![0.5, 0.5]),
            1 => proptest::collection::vec(any_number(), 0..4)
        ],
        prop_oneof![3 => -0.9..0.9f64, 1 => any_number()],
        prop_oneof![
            3 => proptest::collection::vec(0.0..=100.0f64, 0..4),
            1 => proptest::collection::vec(any_number(), 0..4)
        ],
    );
    // A fixed seed: the same 400 cases every run.
    let mut runner = fixed_runner(400);
    runner
        .run(
            &strategy,
            |(
                nums,
                (horizon, contribution_months, withdrawal_start),
                paths,
                weights,
                correlation,
                percentiles,
            )| {
                let ints = [horizon, contribution_months, withdrawal_start];
                let mut g = goal(ints[0]);
                g.initial_wealth = nums[0];
                g.monthly_contribution = nums[1];
                g.contribution_growth = nums[2];
                g.monthly_withdrawal = nums[3];
                g.target_amount = nums[4];
                g.success_threshold = nums[5];
                g.contribution_months = Some(ints[1]);
                g.withdrawal_start_month = Some(ints[2]);
                let m = Market {
                    assets: Some(vec![
                        Asset {
                            name: "a".into(),
                            expected_return: nums[6],
                            volatility: nums[7],
                        },
                        Asset {
                            name: "b".into(),
                            expected_return: 0.03,
                            volatility: 0.05,
                        },
                    ]),
                    weights: Some(weights),
                    correlations: Some(vec![vec![1.0, correlation], vec![correlation, 1.0]]),
                    inflation: nums[8].into(),
                    ..Market::default()
                };
                let mut r = request(g, m, paths, 1);
                r.options.percentiles = percentiles;
                match prepare(&r) {
                    Ok(_) => {
                        let result = Engine::default().simulate(&r).unwrap();
                        prop_assert!(
                            result.success_probability >= 0.0 && result.success_probability <= 1.0
                        );
                        prop_assert!(result.terminal.mean.is_finite());
                        simulated.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        prop_assert!(
                            ["goal.", "market.", "options."]
                                .iter()
                                .any(|p| e.field.starts_with(p)),
                            "unnamed field in {e}"
                        );
                        prop_assert!(!e.problem.is_empty());
                        // The field without indices: market.assets[0].volatility → market.assets.volatility.
                        let field: String = e
                            .field
                            .split('[')
                            .map(|part| part.split_once(']').map_or(part, |(_, rest)| rest))
                            .collect();
                        *refused.lock().unwrap().entry(field).or_default() += 1;
                    }
                }
                Ok(())
            },
        )
        .unwrap();
    let refused = refused.into_inner().unwrap();
    let simulated = simulated.into_inner();
    eprintln!("400 cases: {simulated} simulated, refused by field: {refused:?}");
    assert_eq!(simulated + refused.values().sum::<usize>(), 400);
    assert!(
        simulated > 0,
        "no case was valid: the generator tests only refusals"
    );
    for prefix in ["goal.", "market.", "options."] {
        assert!(
            refused.keys().any(|f| f.starts_with(prefix)),
            "no case was refused for a {prefix} field: {refused:?}"
        );
    }
}

#[test]
fn each_bound_of_model_md_is_refused_by_name() {
    let ok = || standard_goal(100);
    type Breakage = Box<dyn Fn(&mut GoalRequest)>;
    let cases: Vec<(&str, Breakage)> = vec![
        (
            "goal.horizon_months",
            Box::new(|r| r.goal.horizon_months = 0),
        ),
        (
            "goal.horizon_months",
            Box::new(|r| r.goal.horizon_months = 1201),
        ),
        (
            "goal.initial_wealth",
            Box::new(|r| r.goal.initial_wealth = -1.0),
        ),
        (
            "goal.monthly_contribution",
            Box::new(|r| r.goal.monthly_contribution = f64::NAN),
        ),
        (
            "goal.target_amount",
            Box::new(|r| r.goal.target_amount = f64::INFINITY),
        ),
        (
            "goal.success_threshold",
            Box::new(|r| r.goal.success_threshold = 1.5),
        ),
        (
            "goal.contribution_months",
            Box::new(|r| r.goal.contribution_months = Some(361)),
        ),
        (
            "market.volatility",
            Box::new(|r| r.market.volatility = Some(-0.1)),
        ),
        (
            "market.expected_return",
            Box::new(|r| r.market.expected_return = Some(-1.0)),
        ),
        (
            "market.inflation",
            Box::new(|r| r.market.inflation = f64::NAN.into()),
        ),
        ("options.paths", Box::new(|r| r.options.paths = Some(0))),
        (
            "options.paths",
            Box::new(|r| r.options.paths = Some(10_000_001)),
        ),
        (
            "options.percentiles[1]",
            Box::new(|r| r.options.percentiles = vec![5.0, 101.0]),
        ),
    ];
    for (field, break_it) in cases {
        let mut r = ok();
        break_it(&mut r);
        let err = prepare(&r).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let assets = |extra: serde_json::Value| {
        let mut m = serde_json::json!({
            "assets": [
                {"name": "a", "expected_return": 0.07, "volatility": 0.2},
                {"name": "b", "expected_return": 0.03, "volatility": 0.05},
                {"name": "c", "expected_return": 0.02, "volatility": 0.01}
            ],
            "weights": [0.5, 0.3, 0.2]
        });
        sextant_engine::scenarios::merge_patch(&mut m, &extra);
        let mut r = ok();
        r.market = serde_json::from_value(m).unwrap();
        prepare(&r).unwrap_err()
    };
    let not_psd = serde_json::json!([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]);
    assert_eq!(
        assets(serde_json::json!({"correlations": not_psd})).field,
        "market.correlations"
    );
    assert!(assets(serde_json::json!({"correlations": not_psd}))
        .problem
        .contains("positive semi-definite"));
    let asymmetric = serde_json::json!([[1.0, 0.2, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    assert_eq!(
        assets(serde_json::json!({"correlations": asymmetric})).field,
        "market.correlations[1][0]"
    );
    let diagonal = serde_json::json!([[1.0, 0.0, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 1.0]]);
    assert_eq!(
        assets(serde_json::json!({"correlations": diagonal})).field,
        "market.correlations[1][1]"
    );
    assert_eq!(
        assets(serde_json::json!({"weights": [0.5, 0.3, 0.3]})).field,
        "market.weights"
    );
    assert_eq!(
        assets(serde_json::json!({"weights": [1.2, -0.2, 0.0]})).field,
        "market.weights[1]"
    );
    assert_eq!(
        assets(serde_json::json!({"weights": [0.5, 0.5]})).field,
        "market.weights"
    );
    let glide = serde_json::json!({"weights": null, "glide_path": [
        {"start_month": 0, "weights": [1.0, 0.0, 0.0]},
        {"start_month": 100, "weights": [0.5, 0.5, 0.0]},
        {"start_month": 50, "weights": [0.0, 0.5, 0.5]}
    ]});
    assert_eq!(assets(glide).field, "market.glide_path[2].start_month");
    let late_start = serde_json::json!({"weights": null, "glide_path": [{"start_month": 3, "weights": [1.0, 0.0, 0.0]}]});
    assert_eq!(assets(late_start).field, "market.glide_path[0].start_month");
}

/// Correlations describe assets: with a glide path of (μ, σ) segments and no assets they would
/// be silently unused, so they are refused, naming the field.
#[test]
fn correlations_without_assets_are_refused_beside_a_glide_path() {
    let request: GoalRequest = serde_json::from_value(serde_json::json!({
        "goal": {"horizon_months": 24, "target_amount": 1000},
        "market": {
            "glide_path": [{"start_month": 0, "expected_return": 0.05, "volatility": 0.1}],
            "correlations": [[1.0]]
        }
    }))
    .unwrap();
    let e = prepare(&request).unwrap_err();
    assert_eq!(e.field, "market.correlations", "{e}");
    let mut without = request.clone();
    without.market.correlations = None;
    assert!(prepare(&without).is_ok());
}

/// Regime markets (docs/model.md §4.2) of any shape: 0 … 9 regimes, rows that are
/// probabilities (normalised) three times in four and any numbers otherwise, any start, and
/// overrides plausible or not. Each case is simulated or refused naming a `market.` field, never
/// a panic; both happen (a fixed seed, 300 cases).
#[test]
fn any_regime_market_is_simulated_or_refused_by_name() {
    use sextant_engine::request::{Regime, RegimeStart, ReturnModel};

    let row = |k: usize| {
        prop_oneof![
            3 => proptest::collection::vec(0.0..1.0f64, k).prop_map(|r| {
                let sum: f64 = r.iter().sum();
                if sum > 0.0 { r.iter().map(|p| p / sum).collect() } else { r }
            }),
            1 => proptest::collection::vec(any_number(), 0..=k + 1),
        ]
    };
    let strategy = (0usize..=9).prop_flat_map(move |k| {
        (
            proptest::collection::vec(row(k), k..=k + 1),
            proptest::collection::vec(
                (
                    prop_oneof![3 => Just(None), 1 => (-0.5..0.5f64).prop_map(Some), 1 => any_number().prop_map(Some)],
                    prop_oneof![3 => Just(None), 1 => (0.0..0.6f64).prop_map(Some), 1 => any_number().prop_map(Some)],
                ),
                k,
            ),
            prop_oneof![3 => Just(None), 1 => (0u32..12).prop_map(Some)],
        )
    });
    simulated_or_refused(
        "regime markets",
        300,
        strategy,
        |(transition, overrides, start)| {
            let regimes = overrides
                .iter()
                .enumerate()
                .map(|(i, &(mu, sigma))| Regime {
                    name: format!("r{i}"),
                    expected_return: mu,
                    volatility: sigma,
                    assets: None,
                })
                .collect();
            let mut m = market(0.06, 0.15);
            m.model = ReturnModel::Regime {
                regimes,
                transition,
                initial: start.map_or(RegimeStart::default(), RegimeStart::Index),
            };
            let mut g = goal(60);
            g.initial_wealth = 100_000.0;
            g.monthly_withdrawal = 1_500.0;
            g.withdrawal_start_month = Some(0);
            let r = request(g, m, 300, 5);
            match prepare(&r) {
                Ok(_) => {
                    let result = Engine::default().simulate(&r).unwrap();
                    prop_assert!((0.0..=1.0).contains(&result.success_probability));
                    Ok(true)
                }
                Err(e) => {
                    prop_assert!(e.field.starts_with("market."), "unnamed field in {e}");
                    prop_assert!(!e.problem.is_empty());
                    Ok(false)
                }
            }
        },
    );
}

/// Any AR(1) inflation model (numbers in and out of bounds, NaN, infinities) on an indexed
/// drawdown with a real target: a result whose probabilities are probabilities and whose real
/// wealth is finite, or an error naming a field of `market.inflation`.
#[test]
fn any_inflation_model_is_simulated_or_refused_by_name() {
    use sextant_engine::request::{Inflation, InflationModel};
    let plausible = |lo: f64, hi: f64| prop_oneof![3 => lo..hi, 1 => any_number()];
    let strategy = (
        plausible(-0.4, 0.9),
        plausible(0.0, 0.25),
        plausible(0.05, 100.0),
        prop_oneof![2 => Just(None), 1 => plausible(-0.4, 0.9).prop_map(Some)],
        plausible(-1.0, 1.0),
    );
    simulated_or_refused(
        "inflation models",
        300,
        strategy,
        |(mean, volatility, half_life_years, initial, correlation)| {
            let mut m = market(0.06, 0.15);
            m.inflation = Inflation::Model(InflationModel::Ar1 {
                mean,
                volatility,
                half_life_years,
                initial,
                correlation,
            });
            let mut g = goal(60);
            g.initial_wealth = 100_000.0;
            g.monthly_withdrawal = 1_500.0;
            g.withdrawal_start_month = Some(0);
            g.target_amount = 20_000.0;
            let r = request(g, m, 300, 5);
            match prepare(&r) {
                Ok(_) => {
                    let result = Engine::default().simulate(&r).unwrap();
                    prop_assert!((0.0..=1.0).contains(&result.success_probability));
                    let real = result
                        .real
                        .expect("stochastic inflation reports real wealth");
                    prop_assert!(real.terminal.mean.is_finite() && real.terminal.mean >= 0.0);
                    Ok(true)
                }
                Err(e) => {
                    prop_assert!(
                        e.field.starts_with("market.inflation."),
                        "unnamed field in {e}"
                    );
                    prop_assert!(!e.problem.is_empty());
                    Ok(false)
                }
            }
        },
    );
}

/// Any bootstrap market (docs/model.md §4.3): histories of 1 … 3 assets and 0 … 80 months with
/// returns in and out of bounds (NaN, infinities, −100%), inflation on some months, block
/// lengths 0 … 100, either method, weights of any length: a result whose probabilities are
/// probabilities and whose wealth is finite, or an error naming a field of `market`.
#[test]
fn any_bootstrap_market_is_simulated_or_refused_by_name() {
    use sextant_engine::history::{History, HistoryMonth};
    use sextant_engine::request::{BlockMethod, HistorySource, ReturnModel};

    // Mostly plausible: a bad value, a month without the others' inflation, weights of the
    // wrong length are each rare enough that most histories pass and each kind of refusal occurs.
    let value = || prop_oneof![400 => -0.2..0.3f64, 1 => any_number()];
    let inflation = || prop_oneof![60 => Just(false), 1 => Just(true)];
    let month = (1usize..4, any::<bool>()).prop_flat_map(move |(assets, with_inflation)| {
        proptest::collection::vec(
            (
                proptest::collection::vec(value(), assets),
                inflation().prop_map(move |flip| (with_inflation != flip).then_some(0.002)),
            ),
            0..80,
        )
    });
    let strategy = (
        month,
        prop_oneof![1 => 0u32..3, 6 => 1u32..30, 1 => 30u32..100],
        any::<bool>(),
        prop_oneof![6 => Just(None), 1 => proptest::collection::vec(0.0..1.0f64, 0..4).prop_map(Some)],
    );
    simulated_or_refused(
        "bootstrap markets",
        300,
        strategy,
        |(months, block_months, stationary, weights)| {
            let assets = months.first().map_or(1, |m| m.0.len());
            let history = History {
                assets: (0..assets).map(|k| format!("a{k}")).collect(),
                months: months
                    .iter()
                    .map(|(returns, inflation)| HistoryMonth {
                        returns: returns.clone(),
                        inflation: *inflation,
                    })
                    .collect(),
            };
            let mut m = Market {
                weights: weights
                    .or_else(|| (assets > 1).then(|| vec![1.0 / assets as f64; assets])),
                ..Market::default()
            };
            m.model = ReturnModel::Bootstrap {
                history: HistorySource::Inline(history),
                block_months,
                method: if stationary {
                    BlockMethod::Stationary
                } else {
                    BlockMethod::Circular
                },
            };
            let mut g = goal(60);
            g.initial_wealth = 100_000.0;
            g.monthly_withdrawal = 1_500.0;
            g.withdrawal_start_month = Some(0);
            let r = request(g, m, 200, 5);
            match prepare(&r) {
                Ok(_) => {
                    let result = Engine::default().simulate(&r).unwrap();
                    prop_assert!((0.0..=1.0).contains(&result.success_probability));
                    prop_assert!(result.terminal.mean.is_finite() && result.terminal.mean >= 0.0);
                    Ok(true)
                }
                Err(e) => {
                    prop_assert!(e.field.starts_with("market."), "unnamed field in {e}");
                    prop_assert!(!e.problem.is_empty());
                    Ok(false)
                }
            }
        },
    );
}

/// Any per-asset market (docs/model.md §4.5): 0 … 18 assets with returns and volatilities in
/// and out of bounds, correlations of ±0.3 or none, weights of any length, any rule with a
/// band in and out of (0, 1): a result whose probabilities are probabilities, whose wealth is
/// finite and whose rebalancing figures are counts and fractions, or an error naming a field
/// of `market`.
#[test]
fn any_per_asset_market_is_simulated_or_refused_by_name() {
    use sextant_engine::request::Rebalancing;

    let value = |lo: f64, hi: f64| prop_oneof![40 => lo..hi, 1 => any_number()];
    let strategy = (
        proptest::collection::vec((value(-0.1, 0.15), value(0.0, 0.4)), 0..19),
        prop_oneof![1 => Just(None), 3 => (-0.3..0.3f64).prop_map(Some)],
        prop_oneof![8 => Just(None), 1 => proptest::collection::vec(0.0..1.0f64, 0..5).prop_map(Some)],
        prop_oneof![
            Just(Rebalancing::Annual),
            Just(Rebalancing::None),
            value(0.0, 0.3).prop_map(|band| Rebalancing::Band { band }),
        ],
    );
    simulated_or_refused(
        "per-asset markets",
        200,
        strategy,
        |(assets, correlation, weights, rebalancing)| {
            let n = assets.len();
            let m = Market {
                assets: Some(
                    assets
                        .iter()
                        .enumerate()
                        .map(|(k, &(expected_return, volatility))| Asset {
                            name: format!("a{k}"),
                            expected_return,
                            volatility,
                        })
                        .collect(),
                ),
                weights: Some(weights.unwrap_or_else(|| vec![1.0 / n.max(1) as f64; n])),
                correlations: correlation.map(|rho| {
                    (0..n)
                        .map(|i| {
                            (0..n)
                                .map(|j| if i == j { 1.0 } else { rho / n as f64 })
                                .collect()
                        })
                        .collect()
                }),
                rebalancing,
                ..Market::default()
            };
            let mut g = goal(60);
            g.initial_wealth = 100_000.0;
            g.monthly_contribution = 300.0;
            g.monthly_withdrawal = 1_500.0;
            g.withdrawal_start_month = Some(24);
            let r = request(g, m, 200, 5);
            match prepare(&r) {
                Ok(_) => {
                    let result = Engine::default().simulate(&r).unwrap();
                    prop_assert!((0.0..=1.0).contains(&result.success_probability));
                    prop_assert!(result.terminal.mean.is_finite() && result.terminal.mean >= 0.0);
                    let stats = result
                        .rebalancing
                        .expect("per-asset paths report rebalancing");
                    prop_assert!((0.0..=60.0).contains(&stats.mean_rebalances));
                    prop_assert!(stats.mean_turnover.is_finite() && stats.mean_turnover >= 0.0);
                    Ok(true)
                }
                Err(e) => {
                    prop_assert!(e.field.starts_with("market."), "unnamed field in {e}");
                    prop_assert!(!e.problem.is_empty());
                    Ok(false)
                }
            }
        },
    );
}
