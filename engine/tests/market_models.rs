//! The market models of docs/model.md §4 through the engine: the Student-t month's moments
//! (mean and variance are §1's, kurtosis the t's), its limit ν → ∞ (the lognormal's mean and
//! variance), the lognormal's bits untouched, the model reaching sweeps; regime switching's
//! month as the mixture of its regimes, regimes that change nothing giving the lognormal's
//! bits; AR(1) inflation without volatility as deterministic inflation, its real fan chart
//! and real targets through the solvers; the bootstrap's closed forms (a history of one
//! repeated month), its months in proportion, its block lengths, real targets through the
//! solvers; sweeps under regimes, a bootstrap and per-asset paths at each point's weights; and
//! bad input refused by name. Every statistical bound is 4 standard errors with a
//! fixed seed.

use serde_json::{json, Value};
use sextant_engine::backend::{CpuBackend, SimulationBackend};
use sextant_engine::validate::prepare;
use sextant_engine::{Device, Engine, GoalRequest};

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
fn a_plan_takes_every_market_model_and_refuses_contradictions_by_name() {
    use sextant_engine::plan::{prepare_plan, PlanRequest};
    let plan = single_retiree_plan();
    let with_market = |market: Value| {
        let mut plan = plan.clone();
        plan["market"] = market;
        prepare_plan(&serde_json::from_value::<PlanRequest>(plan).unwrap())
    };
    for model in [
        json!({"kind": "student_t", "df": 5}),
        json!({"kind": "regime", "regimes": [{"name": "one"}], "transition": [[1]]}),
    ] {
        let market = json!({"expected_return": 0.06, "volatility": 0.12, "model": model});
        assert!(with_market(market).is_ok(), "{model}");
    }
    let history = repeated_history(&[0.01, 0.002], None, 24);
    let boot = json!({"weights": [0.6, 0.4],
                      "model": {"kind": "bootstrap", "history": history, "block_months": 12}});
    assert!(with_market(boot).is_ok());
    // A history's inflation drives the plan's index, as AR(1) inflation does; a history's
    // inflation beside a rate, and AR(1) correlated with a bootstrap's absent shock, are
    // refused by name, as for goals.
    let history = repeated_history(&[0.01, 0.002], Some(0.002), 24);
    let indexed = json!({"weights": [0.6, 0.4],
                         "model": {"kind": "bootstrap", "history": history, "block_months": 12}});
    assert!(with_market(indexed.clone()).unwrap().stochastic_index());
    let mut both = indexed;
    both["inflation"] = json!(0.025);
    assert_eq!(with_market(both).unwrap_err().field, "market.inflation");
    let ar1 = json!({"kind": "ar1", "mean": 0.025, "volatility": 0.01});
    let plan = with_market(json!({"expected_return": 0.06, "volatility": 0.12, "inflation": ar1}))
        .unwrap();
    assert!(plan.stochastic_index());
    let history = repeated_history(&[0.01, 0.002], None, 24);
    let err = with_market(json!({"weights": [0.6, 0.4],
                                 "inflation": {"kind": "ar1", "mean": 0.025, "volatility": 0.01,
                                               "correlation": -0.3},
                                 "model": {"kind": "bootstrap", "history": history,
                                           "block_months": 12}}))
    .unwrap_err();
    assert_eq!(err.field, "market.inflation.correlation");
    let err = with_market(json!({"expected_return": 0.06, "volatility": 0.12,
                                 "inflation": {"kind": "ar1", "mean": 0.025, "volatility": 0.5}}))
    .unwrap_err();
    assert_eq!(err.field, "market.inflation.volatility");
}

/// The couple's plan under `market` with `paths` paths, on the CPU.
fn couple_under(market: Value, paths: u64) -> sextant_engine::PlanResult {
    use sextant_engine::plan::PlanRequest;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plan-couple.json");
    let mut plan: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    plan["market"] = market;
    plan["options"]["paths"] = json!(paths);
    let request: PlanRequest = serde_json::from_value(plan).unwrap();
    Engine::new(Device::Cpu(CpuBackend::new()))
        .plan(&request)
        .unwrap()
}

#[test]
fn a_plan_in_identical_regimes_is_the_lognormal_plan_to_the_bit() {
    // The regimes' uniforms have their own stream (c2 = 3) and every regime the market's μ
    // and σ: each path draws §1's shocks and the same month's drift and vol whatever its
    // regime, so the whole result is the lognormal plan's. (A lean, volatile market, so that
    // some paths fail.)
    let market = json!({"expected_return": 0.02, "volatility": 0.3, "inflation": 0.03});
    let mut regimes = market.clone();
    regimes["model"] = json!({"kind": "regime",
                              "regimes": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                              "transition": [[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]});
    let lognormal = couple_under(market, 4000);
    let switching = couple_under(regimes, 4000);
    assert!(lognormal.success_probability > 0.1 && lognormal.success_probability < 0.99);
    assert_eq!(switching, lognormal);
}

#[test]
fn a_plan_under_student_t_with_huge_df_is_the_lognormal_plan_within_its_error() {
    // ν = 10⁶: the t month is a normal month with the lognormal's first two moments, drawn
    // from the same Z. Success within 4 standard errors (of independent runs: conservative for
    // these common numbers); the median estate within 1%.
    let market = json!({"expected_return": 0.06, "volatility": 0.12, "inflation": 0.025});
    let mut fat = market.clone();
    fat["model"] = json!({"kind": "student_t", "df": 1e6});
    let (lognormal, t) = (couple_under(market, 20_000), couple_under(fat, 20_000));
    let p = lognormal.success_probability;
    let se = (p * (1.0 - p) / 20_000.0).sqrt() * 2f64.sqrt();
    assert!(
        (t.success_probability - p).abs() <= 4.0 * se,
        "{} vs {p} (4 SE = {})",
        t.success_probability,
        4.0 * se
    );
    let median = |r: &sextant_engine::PlanResult| r.estate.percentiles.get(50.0).unwrap();
    assert!(
        (median(&t) / median(&lognormal) - 1.0).abs() < 0.01,
        "median estate {} vs {}",
        median(&t),
        median(&lognormal)
    );
    // At ν = 3 the months are no longer the lognormal's: the result moves (either way: the t
    // keeps the monthly variance, so its tails do not simply lower success).
    let mut fatter = json!({"expected_return": 0.06, "volatility": 0.12, "inflation": 0.025});
    fatter["model"] = json!({"kind": "student_t", "df": 3});
    let fatter = couple_under(fatter, 20_000);
    assert_ne!(fatter.success_probability, p);
    assert_eq!(lognormal.clamped_months, None);
}

#[test]
fn a_plan_counts_its_clamped_months_as_the_goal_of_its_lifetime_does() {
    // One person who lives exactly ten years from now, no tax: every path runs 120 months,
    // the goal's months on the same streams, so the plan clamps in the months the 120-month
    // goal does (at ν = 2.5 and 60% volatility a month clamps about once in 2,000).
    let market = json!({"expected_return": 0.06, "volatility": 0.6,
                        "model": {"kind": "student_t", "df": 2.5}});
    let plan = json!({
        "plan": {
            "people": [{"name": "Cy", "age": 70, "retirement_age": 70,
                        "longevity": {"kind": "fixed", "age": 80}}],
            "accounts": [{"name": "cash", "kind": "tax_free", "balance": 500000}],
            "spending": {"essential": 1000, "discretionary": 0}
        },
        "market": market,
        "options": {"paths": 3000, "seed": 8}
    });
    let planned = plan_of(plan);
    let goal = request(
        json!({"goal": {"initial_wealth": 500000, "horizon_months": 120},
                              "market": market, "options": {"paths": 3000, "seed": 8}}),
    );
    let simulated = Engine::new(Device::Cpu(CpuBackend::new()))
        .simulate(&goal)
        .unwrap();
    let clamped = planned.clamped_months.unwrap();
    assert!(clamped > 20, "{clamped}");
    assert_eq!(Some(clamped), simulated.clamped_months);
}

#[test]
fn a_plan_bootstrapped_from_one_repeated_month_is_the_deterministic_plan() {
    // Every path's every month is the same month: the plan is the lognormal plan at zero
    // volatility whose month grows by the same factor, 1 + Σ w r (no fee). Its estate is the
    // same on every path, and that plan's within rounding.
    // With the history's inflation π every month, each path's index is (1 + π)^t: the
    // deterministic plan's at the rate (1 + π)^12 − 1, spending, benefits, brackets and the
    // real estate included.
    let (r, weights): ([f64; 2], [f64; 2]) = ([0.006, 0.002], [0.6, 0.4]);
    let g = 1.0 + weights[0] * r[0] + weights[1] * r[1];
    let annual = g.powi(12) - 1.0;
    for pi in [None, Some(0.002)] {
        let history = repeated_history(&r, pi, 36);
        let mut market = json!({"weights": weights,
                                "model": {"kind": "bootstrap", "history": history,
                                          "block_months": 12, "method": "stationary"}});
        let inflation = match pi {
            Some(pi) => (1.0f64 + pi).powi(12) - 1.0,
            None => {
                market["inflation"] = json!(0.025);
                0.025
            }
        };
        let boot = couple_under(market, 500);
        let flat = couple_under(
            json!({"expected_return": annual, "volatility": 0.0, "inflation": inflation}),
            500,
        );
        // Deaths still differ by path: compare the estate's percentiles (nominal and in
        // today's money) and the real spending's, each within 1e-9 (f32 samples: 1e-6).
        let close = |a: &sextant_engine::result::Percentiles,
                     b: &sextant_engine::result::Percentiles,
                     what: &str,
                     bound: f64| {
            assert_eq!(a.0.len(), b.0.len());
            for (&(p, x), &(_, y)) in a.0.iter().zip(&b.0) {
                assert!(
                    (x - y).abs() <= bound * y.abs().max(1.0),
                    "{pi:?} {what} p{p}: {x} vs {y}"
                );
            }
        };
        close(
            &boot.estate.percentiles,
            &flat.estate.percentiles,
            "estate",
            1e-9,
        );
        close(
            &boot.estate.real_percentiles,
            &flat.estate.real_percentiles,
            "real estate",
            1e-9,
        );
        for (a, b) in boot.yearly.iter().zip(&flat.yearly).take(30) {
            if let (Some(x), Some(y)) = (&a.spending_real, &b.spending_real) {
                close(x, y, "real spending", 1e-6);
            }
            if let (Some(x), Some(y)) = (&a.wealth_real, &b.wealth_real) {
                close(x, y, "real wealth", 1e-6);
            }
        }
        assert_eq!(boot.success_probability, flat.success_probability, "{pi:?}");
        let (x, y) = (boot.lifetime_taxes.mean, flat.lifetime_taxes.mean);
        assert!((x - y).abs() <= 1e-9 * y, "{pi:?} taxes {x} vs {y}");
    }
}

/// A two-regime market: a calm one (the market's μ, σ) and a crisis.
fn two_regimes(initial: Value) -> Value {
    json!({"expected_return": 0.08, "volatility": 0.12,
           "model": {"kind": "regime", "initial": initial,
                     "regimes": [{"name": "calm"},
                                 {"name": "crisis", "expected_return": -0.1, "volatility": 0.35}],
                     "transition": [[0.97, 0.03], [0.15, 0.85]]}})
}

#[test]
fn a_regime_month_is_the_mixture_of_its_regimes() {
    // Month 0's regime is drawn from the start: with "stationary", calm with π = 0.15/0.18
    // and crisis with 0.03/0.18, so G's mean and variance are the mixture's; started in the
    // crisis, they are the crisis's own.
    let calm = lognormal_month(0.08, 0.12);
    let crisis = lognormal_month(-0.1, 0.35);
    let pi = [0.15 / 0.18, 0.03 / 0.18];
    let mean = pi[0] * calm.0 + pi[1] * crisis.0;
    let second = pi[0] * (calm.1 + calm.0 * calm.0) + pi[1] * (crisis.1 + crisis.0 * crisis.0);
    let g = monthly_returns(two_regimes(json!("stationary")), 1_000_000, 41);
    let [m, v, _] = moments(&g);
    assert_within("mean", m, mean);
    assert_within("variance", v, second - mean * mean);
    let g = monthly_returns(two_regimes(json!(1)), 400_000, 42);
    let [m, v, _] = moments(&g);
    assert_within("crisis mean", m, crisis.0);
    assert_within("crisis variance", v, crisis.1);
}

#[test]
fn regimes_that_change_nothing_are_the_lognormal_to_the_bit() {
    // The shocks keep their stream and every regime's schedule is the market's, so the
    // regime draws change no number: a portfolio market, and assets under a glide path.
    let engine = Engine::default();
    let goal = json!({"initial_wealth": 400000, "monthly_contribution": 500,
                      "monthly_withdrawal": 2600, "withdrawal_start_month": 60,
                      "horizon_months": 300, "target_amount": 100000});
    let chain = json!({"transition": [[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]});
    let markets = [
        (
            json!({"expected_return": 0.06, "volatility": 0.15, "inflation": 0.02, "fee": 0.004}),
            json!([{"name": "a"}, {"name": "b", "expected_return": 0.06}, {"name": "c", "volatility": 0.15}]),
        ),
        (
            json!({"assets": [{"name": "stocks", "expected_return": 0.08, "volatility": 0.18},
                              {"name": "bonds", "expected_return": 0.035, "volatility": 0.06}],
                   "correlations": [[1, 0.2], [0.2, 1]],
                   "glide_path": [{"start_month": 0, "weights": [0.8, 0.2]},
                                  {"start_month": 100, "weights": [0.4, 0.6]}]}),
            json!([{"name": "a"}, {"name": "b", "assets": [{"volatility": 0.18}, {}]},
                   {"name": "c", "assets": [{}, {"expected_return": 0.035}]}]),
        ),
    ];
    for (market, regimes) in markets {
        let plain = request(json!({"goal": goal, "market": market,
                                   "options": {"paths": 20000, "seed": 9}}));
        let mut switching = plain.clone();
        let mut model = chain.clone();
        model["kind"] = json!("regime");
        model["regimes"] = regimes;
        switching.market.model = serde_json::from_value(model).unwrap();
        let a = engine.simulate(&plain).unwrap();
        let b = engine.simulate(&switching).unwrap();
        assert!(a.depletion.probability > 0.0 && a.success_probability > 0.0);
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap()
        );
    }
}

#[test]
fn a_crisis_regime_lowers_success_and_the_solvers_run_under_regimes() {
    let engine = Engine::default();
    let base = json!({
        "goal": {"initial_wealth": 600000, "monthly_withdrawal": 3200, "withdrawal_start_month": 0,
                 "horizon_months": 360},
        "market": {"expected_return": 0.08, "volatility": 0.12},
        "options": {"paths": 20000, "seed": 12}
    });
    let calm = engine.simulate(&request(base.clone())).unwrap();
    let mut switching = base;
    switching["market"] = two_regimes(json!("stationary"));
    let switching = engine.simulate(&request(switching)).unwrap();
    // Binomial SEs of two 20,000-path estimates: a gap of many of them.
    let se = (calm.standard_error.powi(2) + switching.standard_error.powi(2)).sqrt();
    assert!(
        calm.success_probability - switching.success_probability > 8.0 * se,
        "{} vs {}",
        calm.success_probability,
        switching.success_probability
    );
    // The affine solver path (no withdrawals) under regimes: the contribution it finds meets
    // the threshold when simulated.
    let saver = request(json!({
        "goal": {"initial_wealth": 10000, "horizon_months": 240, "target_amount": 500000,
                 "success_threshold": 0.8},
        "market": two_regimes(json!("stationary")),
        "options": {"paths": 20000, "seed": 4}
    }));
    assert_break_even_meets_to_the_cent(&engine, &saver);
}

#[test]
fn a_bad_regime_market_is_refused_by_name() {
    let market = |model: Value| json!({"expected_return": 0.05, "volatility": 0.1, "model": model});
    let try_market = |m: Value| {
        serde_json::from_value::<GoalRequest>(json!({"goal": {"horizon_months": 12}, "market": m}))
            .map_err(|e| e.to_string())
            .and_then(|r| prepare(&r).map(|_| ()).map_err(|e| e.to_string()))
    };
    let two = |transition: Value, initial: Value| {
        json!({"kind": "regime", "initial": initial, "transition": transition,
               "regimes": [{"name": "up"}, {"name": "down", "expected_return": -0.2}]})
    };
    let ok = [[0.9, 0.1], [0.2, 0.8]];
    let cases: Vec<(Value, &str)> = vec![
        (
            market(json!({"kind": "regime", "regimes": [], "transition": []})),
            "market.model.regimes: must have between 1 and 8",
        ),
        (
            market(
                json!({"kind": "regime", "regimes": (0..9).map(|i| json!({"name": format!("r{i}")})).collect::<Vec<_>>(),
                       "transition": vec![vec![1.0 / 9.0; 9]; 9]}),
            ),
            "market.model.regimes: must have between 1 and 8",
        ),
        (
            market(
                json!({"kind": "regime", "regimes": [{"name": "x"}, {"name": "x"}],
                       "transition": ok}),
            ),
            "market.model.regimes[1].name: must be unique",
        ),
        (
            market(json!({"kind": "regime", "regimes": [{"name": " "}], "transition": [[1]]})),
            "market.model.regimes[0].name: must be 1 to 64",
        ),
        (
            market(two(json!([[0.9, 0.1]]), json!(0))),
            "market.model.transition: must have one row per regime (2), got 1",
        ),
        (
            market(two(json!([[0.9, 0.1], [1.0]]), json!(0))),
            "market.model.transition[1]: must have one probability per regime",
        ),
        (
            market(two(json!([[1.1, -0.1], [0.5, 0.5]]), json!(0))),
            "market.model.transition[0][0]: must be a probability in [0, 1], got 1.1",
        ),
        (
            market(two(json!([[0.9, 0.2], [0.5, 0.5]]), json!(0))),
            "market.model.transition[0]: must sum to 1",
        ),
        (
            market(two(json!(ok), json!(2))),
            "market.model.initial: must be \"stationary\" or a regime's index below 2, got 2",
        ),
        (
            market(two(json!([[1, 0], [0, 1]]), json!("stationary"))),
            "market.model.initial: \"stationary\" needs a chain with one stationary distribution",
        ),
        (
            market(
                json!({"kind": "regime", "regimes": [{"name": "a", "volatility": -0.1}],
                       "transition": [[1]]}),
            ),
            "market.model.regimes[0].volatility",
        ),
        (
            market(
                json!({"kind": "regime", "regimes": [{"name": "a", "expected_return": -1.5}],
                       "transition": [[1]]}),
            ),
            "market.model.regimes[0].expected_return",
        ),
        (
            market(
                json!({"kind": "regime", "regimes": [{"name": "a", "assets": [{}]}],
                       "transition": [[1]]}),
            ),
            "market.model.regimes[0].assets: needs market.assets",
        ),
        (
            json!({"assets": [{"name": "s", "expected_return": 0.07, "volatility": 0.15}], "weights": [1],
                "model": {"kind": "regime", "regimes": [{"name": "a", "expected_return": 0.1}],
                          "transition": [[1]]}}),
            "market.model.regimes[0].expected_return: cannot be combined with market.assets",
        ),
        (
            json!({"assets": [{"name": "s", "expected_return": 0.07, "volatility": 0.15}], "weights": [1],
                "model": {"kind": "regime", "regimes": [{"name": "a", "assets": [{}, {}]}],
                          "transition": [[1]]}}),
            "market.model.regimes[0].assets: must have one entry per market.assets (1), got 2",
        ),
        (
            json!({"assets": [{"name": "s", "expected_return": 0.07, "volatility": 0.15}], "weights": [1],
                "model": {"kind": "regime", "regimes": [{"name": "a", "assets": [{"volatility": 11}]}],
                          "transition": [[1]]}}),
            "market.model.regimes[0].assets[0].volatility",
        ),
        (
            json!({"model": {"kind": "regime", "regimes": [{"name": "a", "volatility": 0.1}],
                          "transition": [[1]]}}),
            "market.expected_return: is required",
        ),
        (
            market(
                json!({"kind": "regime", "regimes": [{"name": "a", "mu": 0.1}], "transition": [[1]]}),
            ),
            "mu",
        ),
    ];
    for (m, expected) in cases {
        let err = try_market(m.clone()).unwrap_err();
        assert!(err.contains(expected), "{m}: {err}");
    }
    // A periodic chain has one stationary distribution; a fixed start needs none.
    assert!(try_market(market(two(json!([[0, 1], [1, 0]]), json!("stationary")))).is_ok());
    assert!(try_market(market(two(json!([[1, 0], [0, 1]]), json!(1)))).is_ok());
    // Only the portfolio's own μ and σ may be left to the regimes.
    assert!(try_market(json!({"model": {"kind": "regime",
        "regimes": [{"name": "a", "expected_return": 0.1, "volatility": 0.1}], "transition": [[1]]}})).is_ok());
}

/// Every point of a sweep under `model` and `rebalancing` (a regime market, a bootstrap, or
/// per-asset paths) is the single goal the sweep says it runs there: the frontier's assets with
/// the point's weights (`goal_request_for`), to the bit.
fn assert_sweep_points_are_their_goals(sweep: &sextant_engine::sweep::SweepRequest) {
    let engine = Engine::default();
    let report = sweep.run(&engine).unwrap();
    let prepared = sweep.frontier.prepare("frontier.").unwrap();
    let portfolios = prepared.solve().unwrap().points(prepared.points);
    assert_eq!(portfolios.len(), report.points.len());
    let mut successes = Vec::new();
    for (point, portfolio) in report.points.iter().zip(&portfolios) {
        let alone = sweep.goal_request_for(portfolio, &prepared.market);
        assert_eq!(alone.market.weights.as_ref(), Some(&portfolio.weights));
        assert_eq!(alone.market.model, sweep.model);
        let alone = engine.simulate(&alone).unwrap();
        assert_eq!(point.success_probability, alone.success_probability);
        assert_eq!(point.terminal_mean, alone.terminal.mean);
        successes.push(point.success_probability);
    }
    // The points differ: the allocation matters.
    assert!(
        successes.iter().any(|&p| p != successes[0]),
        "{successes:?}"
    );
}

fn sweep_of(extra: Value) -> sextant_engine::sweep::SweepRequest {
    let mut sweep = json!({
        "goal": {"initial_wealth": 100000, "monthly_contribution": 800, "horizon_months": 180,
                 "target_amount": 350000},
        "frontier": {"assets": [{"name": "stocks", "expected_return": 0.08, "volatility": 0.18},
                                {"name": "bonds", "expected_return": 0.035, "volatility": 0.06}],
                     "correlations": [[1, 0.2], [0.2, 1]], "points": 4},
        "options": {"paths": 3000, "seed": 17}
    });
    for (k, v) in extra.as_object().unwrap() {
        sweep[k] = v.clone();
    }
    serde_json::from_value(sweep).unwrap()
}

#[test]
fn a_sweep_runs_regimes_and_per_asset_paths_at_each_points_weights() {
    // A crisis regime that moves each asset its own way: it needs the point's weights.
    assert_sweep_points_are_their_goals(&sweep_of(json!({
        "model": {"kind": "regime",
                  "regimes": [{"name": "calm"},
                              {"name": "crisis", "assets": [
                                  {"expected_return": -0.2, "volatility": 0.35},
                                  {"expected_return": 0.04, "volatility": 0.05}]}],
                  "transition": [[0.97, 0.03], [0.2, 0.8]]}
    })));
    assert_sweep_points_are_their_goals(&sweep_of(json!({"rebalancing": "annual"})));
    // Per-asset paths under Student-t months are refused by name, as for a goal.
    let err = sweep_of(json!({"rebalancing": "none", "model": {"kind": "student_t", "df": 5}}))
        .run(&Engine::default())
        .unwrap_err();
    assert!(err.to_string().starts_with("rebalancing: "), "{err}");
}

/// A drawdown with a real target under `inflation` (a rate or a model).
fn indexed_drawdown(inflation: Value) -> GoalRequest {
    request(json!({
        "goal": {"initial_wealth": 700000, "monthly_withdrawal": 3000, "withdrawal_start_month": 0,
                 "horizon_months": 300, "target_amount": 100000, "target_real": true},
        "market": {"expected_return": 0.06, "volatility": 0.12, "inflation": inflation},
        "options": {"paths": 20000, "seed": 21}
    }))
}

#[test]
fn ar1_inflation_without_volatility_is_deterministic_inflation() {
    // σ_π = 0 and π_0 = θ: the index is (1 + θ)^years up to f32's rounding of each year's
    // twelfth root (about 1e-7 a year, docs/model.md §4.4). Each withdrawal moves by that
    // fraction of itself, so a figure moves by at most 1e-5 of the larger of itself and the
    // starting wealth (the sum of 300 withdrawals' errors is far below it), and success and
    // depletion differ only on paths that close to a boundary (at most 5 of 20,000 allowed).
    let engine = Engine::default();
    let fixed = engine.simulate(&indexed_drawdown(json!(0.03))).unwrap();
    let ar1 = engine
        .simulate(&indexed_drawdown(
            json!({"kind": "ar1", "mean": 0.03, "volatility": 0.0, "correlation": 0.7}),
        ))
        .unwrap();
    assert!(fixed.real.is_none());
    let paths = fixed.paths as f64;
    let count = |p: f64| (p * paths).round();
    assert!((count(fixed.success_probability) - count(ar1.success_probability)).abs() <= 5.0);
    assert!((count(fixed.depletion.probability) - count(ar1.depletion.probability)).abs() <= 5.0);
    assert!(fixed.depletion.probability > 0.05, "the drawdown depletes");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(700_000.0);
    let real = ar1
        .real
        .as_ref()
        .expect("stochastic inflation reports real wealth");
    for ((nominal, other), real) in fixed.yearly.iter().zip(&ar1.yearly).zip(&real.yearly) {
        assert_eq!(nominal.month, real.month);
        let index = 1.03f64.powf(f64::from(nominal.month) / 12.0);
        for ((p, v), (_, w)) in nominal.percentiles.0.iter().zip(&other.percentiles.0) {
            assert!(close(*v, *w), "month {} p{p}: {v} vs {w}", nominal.month);
            let r = real.percentiles.get(*p).unwrap();
            assert!(
                close(v / index, r),
                "month {} real p{p}: {} vs {r}",
                nominal.month,
                v / index
            );
        }
        assert!(
            close(nominal.mean / index, real.mean),
            "month {}",
            nominal.month
        );
    }
}

#[test]
fn the_index_follows_the_rates_decay_from_its_start() {
    // Without volatility the rate decays deterministically, π_t = θ + φ^t (π_0 − θ), so
    // I_T = Π (1 + π_t)^(1/12) in closed form, and the real terminal mean is the nominal one
    // divided by it (within the f32 rounding of the yearly roots, 1e-5).
    let (theta, start, half_life): (f64, f64, f64) = (0.025, 0.09, 2.0);
    let goal = request(json!({
        "goal": {"initial_wealth": 100000, "horizon_months": 127},
        "market": {"expected_return": 0.06, "volatility": 0.15,
                   "inflation": {"kind": "ar1", "mean": theta, "volatility": 0.0,
                                 "half_life_years": half_life, "initial": start}},
        "options": {"paths": 4000, "seed": 8}
    }));
    let result = Engine::default().simulate(&goal).unwrap();
    // The constants as the kernels hold them (f32), the arithmetic in f64.
    let (theta32, start32) = (f64::from(theta as f32), f64::from(start as f32));
    let phi = f64::from(2f64.powf(-1.0 / (12.0 * half_life)) as f32);
    let mut rate = start32;
    let mut index = 1.0f64;
    for _ in 0..127 {
        index *= (1.0 + rate).powf(1.0 / 12.0);
        rate = theta32 + phi * (rate - theta32);
    }
    let real = result.real.unwrap();
    let expected = result.terminal.mean / index;
    assert!(
        (real.terminal.mean / expected - 1.0).abs() < 1e-5,
        "{} vs {expected}",
        real.terminal.mean
    );
    // Against (1 + θ)^(T/12) the early high inflation shows: more than 2% apart.
    let at_mean = result.terminal.mean / (1.0 + theta).powf(127.0 / 12.0);
    assert!(
        at_mean / real.terminal.mean > 1.02,
        "{at_mean} vs {}",
        real.terminal.mean
    );
}

#[test]
fn the_solvers_meet_a_real_target_under_stochastic_inflation() {
    // The break-even solver compares W_T / I_T per path with the target in today's money: the
    // contribution it finds meets the threshold when simulated, a cent less does not.
    let engine = Engine::default();
    let saver = request(json!({
        "goal": {"initial_wealth": 10000, "horizon_months": 240, "target_amount": 300000,
                 "target_real": true, "success_threshold": 0.8},
        "market": {"expected_return": 0.06, "volatility": 0.12,
                   "inflation": {"kind": "ar1", "mean": 0.025, "volatility": 0.02,
                                 "correlation": 0.2}},
        "options": {"paths": 20000, "seed": 4}
    }));
    assert_break_even_meets_to_the_cent(&engine, &saver);
}

#[test]
fn a_bad_inflation_model_is_refused_by_name() {
    let base = || {
        json!({
            "goal": {"initial_wealth": 1000, "horizon_months": 12},
            "market": {"expected_return": 0.05, "volatility": 0.1},
        })
    };
    let ar1 = |extra: Value| {
        let mut model = json!({"kind": "ar1", "mean": 0.03, "volatility": 0.01});
        for (k, v) in extra.as_object().unwrap() {
            model[k] = v.clone();
        }
        model
    };
    let cases = [
        (ar1(json!({"mean": -0.6})), "market.inflation.mean"),
        (ar1(json!({"mean": 1.5})), "market.inflation.mean"),
        (
            ar1(json!({"volatility": -0.01})),
            "market.inflation.volatility",
        ),
        (
            ar1(json!({"volatility": 0.3})),
            "market.inflation.volatility",
        ),
        (
            ar1(json!({"half_life_years": 0})),
            "market.inflation.half_life_years",
        ),
        (
            ar1(json!({"half_life_years": 101})),
            "market.inflation.half_life_years",
        ),
        (ar1(json!({"initial": -0.5})), "market.inflation.initial"),
        (
            ar1(json!({"correlation": 1.01})),
            "market.inflation.correlation",
        ),
        (json!(-1.0), "market.inflation"),
    ];
    for (inflation, field) in cases {
        let mut value = base();
        value["market"]["inflation"] = inflation.clone();
        let err = prepare(&request(value)).unwrap_err();
        assert_eq!(err.field, field, "{inflation}: {err}");
        assert!(err.problem.contains("must be"), "{err}");
    }
    // A typo or an unknown kind is a read error that names it, not "no variant matched".
    for (inflation, words) in [
        (ar1(json!({"half_life": 2})), "half_life"),
        (json!({"kind": "garch", "mean": 0.03}), "garch"),
        (json!("3%"), "annual rate"),
    ] {
        let mut value = base();
        value["market"]["inflation"] = inflation;
        let err = serde_json::from_value::<GoalRequest>(value).unwrap_err();
        assert!(err.to_string().contains(words), "{err}");
    }
}

#[test]
fn a_plan_under_ar1_inflation_without_volatility_is_the_deterministic_plan() {
    // σ_π = 0 and π_0 = θ: every path's index is (1 + θ)^(t/12), taken as F(P) a year (f32
    // ln and exp, docs/model.md §4.4) where the deterministic plan takes powi: the same plan
    // within that rounding (2 × 10⁻⁷ a year). Success within one path, the estate's
    // percentiles (nominal and real) and the lifetime taxes within 10⁻⁴.
    let market = |inflation: Value| json!({"expected_return": 0.02, "volatility": 0.3, "inflation": inflation});
    let paths = 2000;
    let fixed = couple_under(market(json!(0.03)), paths);
    let ar1 = couple_under(
        market(json!({"kind": "ar1", "mean": 0.03, "volatility": 0.0})),
        paths,
    );
    assert!(fixed.success_probability > 0.1 && fixed.success_probability < 0.99);
    assert!(
        (ar1.success_probability - fixed.success_probability).abs() <= 1.0 / paths as f64,
        "{} vs {}",
        ar1.success_probability,
        fixed.success_probability
    );
    for (a, b, what) in [
        (&ar1.estate.percentiles, &fixed.estate.percentiles, "estate"),
        (
            &ar1.estate.real_percentiles,
            &fixed.estate.real_percentiles,
            "real estate",
        ),
    ] {
        for (&(p, x), &(_, y)) in a.0.iter().zip(&b.0) {
            assert!(
                (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                "{what} p{p}: {x} vs {y}"
            );
        }
    }
    let (x, y) = (ar1.lifetime_taxes.mean, fixed.lifetime_taxes.mean);
    assert!((x - y).abs() <= 1e-4 * y, "taxes {x} vs {y}");
    // With volatility the index is the path's own and the answer moves.
    let uncertain = couple_under(
        market(json!({"kind": "ar1", "mean": 0.03, "volatility": 0.02, "initial": 0.06})),
        paths,
    );
    assert_ne!(
        uncertain.estate.real_percentiles,
        fixed.estate.real_percentiles
    );
}

/// A single retiree under AR(1) inflation: `accounts` and `incomes` as given, a tax whose
/// standard deduction is $24,000 (10% above it), the rule `rule`, fixed longevity to 85.
fn indexed_retiree(accounts: Value, incomes: Value, spending: Value, paths: u64) -> Value {
    json!({
        "plan": {
            "people": [{"name": "Ana", "age": 65, "retirement_age": 65,
                        "longevity": {"kind": "fixed", "age": 85}}],
            "accounts": accounts,
            "incomes": incomes,
            "spending": spending,
            "tax": {"brackets": [{"over": 0, "rate": 0.1}], "standard_deduction": 24000,
                    "capital_gains_rate": 0.15}
        },
        "market": {"expected_return": 0.05, "volatility": 0.1,
                   "inflation": {"kind": "ar1", "mean": 0.03, "volatility": 0.03,
                                 "half_life_years": 3, "correlation": -0.3}},
        "options": {"paths": paths, "seed": 11, "percentiles": [0, 50, 100]}
    })
}

fn plan_of(value: Value) -> sextant_engine::PlanResult {
    let request: sextant_engine::plan::PlanRequest = serde_json::from_value(value).unwrap();
    Engine::new(Device::Cpu(CpuBackend::new()))
        .plan(&request)
        .unwrap()
}

#[test]
fn under_a_stochastic_index_what_is_indexed_follows_each_paths_own_index() {
    // Fixed spending is (essential + discretionary)·I_{12y} on each path: every year's real
    // spending is the same 12 × $3,000 on every path (f32 samples: within 10⁻⁶), however the
    // path's inflation ran. An indexed taxable income of exactly the standard deduction
    // ($2,000 a month) is never taxed, on any path, since both follow the same index; an
    // indexed untaxed income equal to the spending pays it all; $4,000 unindexed is taxed less
    // where inflation ran high: its taxes spread.
    let accounts = json!([{"name": "roth", "kind": "tax_free", "balance": 3000000}]);
    let spending = json!({"essential": 2000, "discretionary": 1000});
    let income = |amount: f64, indexed: bool| json!([{"name": "annuity", "monthly_amount": amount, "owner": 0, "indexed": indexed}]);
    let result = plan_of(indexed_retiree(
        accounts.clone(),
        income(2000.0, true),
        spending.clone(),
        401,
    ));
    assert_eq!(result.success_probability, 1.0);
    // Every year but the last, which ends with the path (its samples are not taken).
    let years: Vec<_> = result
        .yearly
        .iter()
        .filter_map(|y| y.spending_real.as_ref().map(|s| (y.month, s)))
        .collect();
    assert_eq!(years.len(), 19);
    for (month, spent) in years {
        for &(p, s) in &spent.0 {
            assert!((s / 36_000.0 - 1.0).abs() < 1e-6, "{month} p{p}: {s}");
        }
    }
    let taxes = &result.lifetime_taxes.percentiles;
    assert!(taxes.get(100.0).unwrap() < 1e-6, "{taxes:?}");
    // The real fan chart is each path's W / I: its spread is not the nominal one's scaled.
    let last = &result.yearly[18];
    let (nominal, real) = (
        last.wealth.as_ref().unwrap(),
        last.wealth_real.as_ref().unwrap(),
    );
    let ratio =
        |q: &sextant_engine::result::Percentiles| q.get(100.0).unwrap() / q.get(0.0).unwrap();
    assert!(
        (ratio(nominal) / ratio(real) - 1.0).abs() > 1e-3,
        "{nominal:?} {real:?}"
    );
    // An untaxed indexed income of exactly the spending pays it every month on every path:
    // the account only grows, as it does with neither.
    let mut covered = income(3000.0, true);
    covered[0]["taxable"] = json!(false);
    let untouched = plan_of(indexed_retiree(
        accounts.clone(),
        covered,
        spending.clone(),
        401,
    ));
    let alone = plan_of(indexed_retiree(
        accounts.clone(),
        json!([]),
        json!({"essential": 0, "discretionary": 0}),
        401,
    ));
    for (a, b) in untouched.yearly.iter().zip(&alone.yearly) {
        assert_eq!((&a.wealth, &a.wealth_real), (&b.wealth, &b.wealth_real));
    }
    assert_eq!(untouched.estate, alone.estate);
    let fixed = plan_of(indexed_retiree(
        accounts,
        income(4000.0, false),
        spending,
        401,
    ));
    let taxes = &fixed.lifetime_taxes.percentiles;
    let (low, high) = (taxes.get(0.0).unwrap(), taxes.get(100.0).unwrap());
    assert!(low > 0.0 && high > 1.05 * low, "{taxes:?}");
}

#[test]
fn a_plans_real_wealth_and_estate_are_each_paths_nominal_over_its_own_index() {
    // No return, no spending, fixed longevity: every path holds its $1M to the end, and its
    // real wealth at year y's end is 10⁶ / I_{12(y+1)}, its real estate 10⁶ / I_end, with I
    // the path's index as inflation::kernel_index_path computes it from the same streams.
    // Minimum, median and maximum over 1001 paths.
    use sextant_engine::inflation::{kernel_index_path, Ar1Inflation};
    let paths = 1001u32;
    let value = json!({
        "plan": {
            "people": [{"name": "Bo", "age": 70, "retirement_age": 70,
                        "longevity": {"kind": "fixed", "age": 80.5}}],
            "accounts": [{"name": "cash", "kind": "tax_free", "balance": 1000000}],
            "spending": {"essential": 0, "discretionary": 0}
        },
        "market": {"expected_return": 0.0, "volatility": 0.0,
                   "inflation": {"kind": "ar1", "mean": 0.025, "volatility": 0.02,
                                 "half_life_years": 2, "initial": 0.04, "correlation": 0.5}},
        "options": {"paths": paths, "seed": 5, "percentiles": [0, 50, 100]}
    });
    let result = plan_of(value);
    let horizon = result.horizon_months;
    assert_eq!(horizon, 126);
    let model = Ar1Inflation::new(0.025, 0.02, 2.0, 0.04, 0.5);
    let indices: Vec<(Vec<f64>, Vec<f64>)> = (0..paths)
        .map(|p| kernel_index_path(&model, 5, p, horizon))
        .collect();
    let extremes = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        [
            values[0],
            values[values.len() / 2],
            values[values.len() - 1],
        ]
    };
    let check =
        |got: &sextant_engine::result::Percentiles, want: [f64; 3], bound: f64, what: &str| {
            for (&(p, x), y) in got.0.iter().zip(want) {
                assert!((x / y - 1.0).abs() <= bound, "{what} p{p}: {x} vs {y}");
            }
        };
    for (y, year) in result.yearly.iter().take(10).enumerate() {
        let want = extremes(
            indices
                .iter()
                .map(|(_, starts)| 1e6 / starts[y + 1])
                .collect(),
        );
        let real = year.wealth_real.as_ref().unwrap();
        check(real, want, 1e-6, &format!("real wealth, year {y}"));
        check(year.wealth.as_ref().unwrap(), [1e6; 3], 1e-7, "wealth");
    }
    let want = extremes(
        indices
            .iter()
            .map(|(at, _)| 1e6 / at[horizon as usize])
            .collect(),
    );
    check(&result.estate.real_percentiles, want, 1e-12, "real estate");
}

/// The affine break-even solver on `saver` (threshold 0.8): the contribution it finds meets the
/// threshold when simulated, with the success it reported, and a cent less does not.
fn assert_break_even_meets_to_the_cent(engine: &Engine, saver: &GoalRequest) {
    let solved = sextant_engine::solve::required_contribution(engine, saver).unwrap();
    assert_eq!(solved.method, sextant_engine::solve::Method::BreakEven);
    let value = solved.value.unwrap();
    let mut check = saver.clone();
    check.goal.monthly_contribution = value;
    let p = engine.simulate(&check).unwrap().success_probability;
    assert!(p >= 0.8 && p == solved.success_probability, "{value} → {p}");
    check.goal.monthly_contribution = value - 0.01;
    let below = engine.simulate(&check).unwrap().success_probability;
    assert!(below < 0.8, "a cent less still succeeds: {below}");
}

/// `examples/plan-single-retiree.json`, as a document to change.
fn single_retiree_plan() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plan-single-retiree.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A history of `months` months, each with the same returns (and inflation, when given).
fn repeated_history(returns: &[f64], inflation: Option<f64>, months: usize) -> Value {
    let mut month = json!({"returns": returns});
    if let Some(x) = inflation {
        month["inflation"] = json!(x);
    }
    json!({"assets": (0..returns.len()).map(|k| format!("a{k}")).collect::<Vec<_>>(),
           "months": vec![month; months]})
}

#[test]
fn a_history_of_one_repeated_month_gives_the_deterministic_compound_result() {
    // Every path's every month is the same month, whatever the blocks: W_T is §1's cash-flow
    // recursion with G = (1 + Σ w r)·(1 − f)^(1/12), the same on every path. Withdrawals are
    // indexed by the history's inflation, (1 + π)^(12⌊t/12⌋), and the real W_T is W_T/(1 + π)^T.
    let (r, pi, fee): ([f64; 2], f64, f64) = ([0.011, 0.002], 0.0025, 0.006);
    let weights = [0.65, 0.35];
    let g = (1.0 + weights[0] * r[0] + weights[1] * r[1]) * (1.0f64 - fee).powf(1.0 / 12.0);
    let horizon = 97;
    let mut expected = 150_000.0f64;
    for t in 0..horizon {
        let d = if t >= 10 {
            700.0 * (1.0 + pi).powi(12 * (t / 12))
        } else {
            0.0
        };
        expected = (expected + 200.0 - d) * g;
    }
    for (method, block) in [("circular", 7), ("stationary", 3)] {
        let result = Engine::default()
            .simulate(&request(json!({
                "goal": {"initial_wealth": 150000, "monthly_contribution": 200,
                         "monthly_withdrawal": 700, "withdrawal_start_month": 10,
                         "horizon_months": horizon, "target_amount": 100000},
                "market": {"weights": weights, "fee": fee,
                           "model": {"kind": "bootstrap", "method": method, "block_months": block,
                                     "history": repeated_history(&r, Some(pi), 40)}},
                "options": {"paths": 500, "seed": 3}
            })))
            .unwrap();
        let terminal = &result.terminal.percentiles.0;
        for &(p, w) in terminal {
            // The kernels' growth is the f64 of an (hi, lo) f32 pair: within 1e-12 a month.
            assert!(
                (w / expected - 1.0).abs() < 1e-10,
                "{method} p{p}: {w} vs {expected}"
            );
        }
        let real = result
            .real
            .expect("the history's inflation gives real wealth");
        let real_expected = expected / (1.0 + pi).powi(horizon);
        assert!(
            (real.terminal.mean / real_expected - 1.0).abs() < 1e-10,
            "{method}: real {} vs {real_expected}",
            real.terminal.mean
        );
        // A real target (the default) succeeds on W_T / I_T: every path or none.
        let succeeds = real_expected >= 100_000.0;
        assert_eq!(result.success_probability, f64::from(u8::from(succeeds)));
        // The nominal reference target is the target at the history's average inflation.
        let nominal = 100_000.0 * (1.0 + pi).powf(f64::from(horizon));
        assert!((result.target_nominal / nominal - 1.0).abs() < 1e-9);
    }
}

#[test]
fn a_bootstrap_draws_the_historys_months_in_proportion() {
    // A two-month history, +10% and −5%: each month of a one-month goal is one of them, each
    // with probability 1/2 (block starts are uniform), within 4 binomial SE.
    let history = json!({"assets": ["x"], "months": [{"returns": [0.10]}, {"returns": [-0.05]}]});
    let paths = 40_000u64;
    let g = monthly_returns(
        json!({"model": {"kind": "bootstrap", "history": history, "block_months": 1}}),
        paths,
        9,
    );
    let up = g.iter().filter(|&&x| (x - 1.10).abs() < 1e-9).count();
    let down = g.iter().filter(|&&x| (x - 0.95).abs() < 1e-9).count();
    assert_eq!(
        up + down,
        paths as usize,
        "every month is one of the history's"
    );
    let se = (paths as f64 * 0.25).sqrt();
    assert!(
        (up as f64 - paths as f64 / 2.0).abs() < 4.0 * se,
        "{up} of {paths}"
    );
}

#[test]
fn stationary_block_lengths_are_geometric_with_mean_b() {
    // A history whose months are 0, 1, 2, … (as tiny returns r_i = i·1e-6 of one asset): two
    // consecutive months of a path are in one block when the second row follows the first.
    // For stationary blocks of mean b the chance is (1 − 1/b) plus the 1/(b·N) of a fresh
    // start landing there; for circular blocks it is 1 except at multiples of b.
    let n = 50;
    let months: Vec<Value> = (0..n)
        .map(|i| json!({"returns": [f64::from(i) * 1e-6]}))
        .collect();
    let history = json!({"assets": ["x"], "months": months});
    let goal = prepare(&request(json!({
        "goal": {"initial_wealth": 1, "horizon_months": 2},
        "market": {"model": {"kind": "bootstrap", "history": history, "block_months": 8,
                             "method": "stationary"}},
        "options": {"paths": 50_000, "seed": 12}
    })))
    .unwrap();
    let boot = goal.bootstrap.clone().unwrap();
    let mut continued = 0u64;
    for path in 0..50_000u32 {
        let rows = sextant_engine::bootstrap::rows_at(&boot, goal.seed, path, 2);
        continued += u64::from(rows[1] == (rows[0] + 1) % n);
    }
    let p = (1.0 - 1.0 / 8.0) + 1.0 / (8.0 * f64::from(n));
    let se = (50_000.0 * p * (1.0 - p)).sqrt();
    assert!(
        (continued as f64 - 50_000.0 * p).abs() < 4.0 * se,
        "{continued} of 50000 continue, expected {:.0} ± {se:.0}",
        50_000.0 * p
    );
}

#[test]
fn the_solvers_meet_a_real_target_under_a_bootstrap_with_history_inflation() {
    let engine = Engine::default();
    let history = json!({"assets": ["stocks", "bonds"], "months": (0..120).map(|i| {
        let x = f64::from(i);
        json!({"returns": [0.04 * (x * 1.1).sin() + 0.006, 0.01 * (x * 0.3).cos() + 0.003],
               "inflation": 0.002 + 0.002 * (x * 0.17).sin()})
    }).collect::<Vec<_>>()});
    let saver = request(json!({
        "goal": {"initial_wealth": 10000, "horizon_months": 240, "target_amount": 250000,
                 "target_real": true, "success_threshold": 0.8},
        "market": {"weights": [0.7, 0.3],
                   "model": {"kind": "bootstrap", "history": history, "block_months": 24,
                             "method": "stationary"}},
        "options": {"paths": 20000, "seed": 4}
    }));
    assert_break_even_meets_to_the_cent(&engine, &saver);
}

#[test]
fn a_bad_bootstrap_market_is_refused_by_name() {
    let two = repeated_history(&[0.01, 0.002], None, 72);
    let base = |market: Value| {
        json!({
            "goal": {"initial_wealth": 1000, "horizon_months": 36},
            "market": market,
        })
    };
    let model = |extra: Value| {
        let mut m = json!({"kind": "bootstrap", "history": two.clone()});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    let cases = [
        (
            json!({"model": model(json!({}))}),
            "market.weights",
            "2 assets",
        ),
        (
            json!({"weights": [0.5, 0.6], "model": model(json!({}))}),
            "market.weights",
            "sum to 1",
        ),
        (
            json!({"weights": [1.0], "model": model(json!({}))}),
            "market.weights",
            "one weight per asset (2)",
        ),
        (
            json!({"weights": [0.5, 0.5], "model": model(json!({"block_months": 73}))}),
            "market.model.block_months",
            "between 1 and the history's months (72)",
        ),
        (
            json!({"weights": [0.5, 0.5], "model": model(json!({"block_months": 0}))}),
            "market.model.block_months",
            "between 1",
        ),
        (
            json!({"weights": [0.5, 0.5], "assets": [], "model": model(json!({}))}),
            "market.assets",
            "history's",
        ),
        (
            json!({"weights": [0.5, 0.5], "correlations": [[1, 0], [0, 1]],
                   "model": model(json!({}))}),
            "market.correlations",
            "history's",
        ),
        (
            json!({"glide_path": [{"start_month": 0, "weights": [0.5, 0.5]},
                                  {"start_month": 12, "expected_return": 0.05, "volatility": 0.1}],
                   "model": model(json!({}))}),
            "market.glide_path[1].expected_return",
            "history's",
        ),
        (
            json!({"glide_path": [{"start_month": 0, "weights": [0.5, 0.5]},
                                  {"start_month": 0, "weights": [0.5, 0.5]}],
                   "model": model(json!({}))}),
            "market.glide_path[1].start_month",
            "increasing",
        ),
        (
            json!({"weights": [0.5, 0.5], "model": model(json!({"history": "us-1926"}))}),
            "market.model.history",
            "stored history \"us-1926\"",
        ),
        (
            json!({"weights": [1.0], "inflation": 0.02,
                   "model": model(json!({"history": repeated_history(&[0.01], Some(0.002), 72)}))}),
            "market.inflation",
            "its own inflation",
        ),
        (
            json!({"weights": [0.5, 0.5],
                   "inflation": {"kind": "ar1", "mean": 0.02, "volatility": 0.01, "correlation": 0.3},
                   "model": model(json!({}))}),
            "market.inflation.correlation",
            "must be 0",
        ),
        (
            json!({"model": model(json!({"block_months": 1,
                "history": {"assets": ["a"], "months": [{"returns": [-1.0]}]}}))}),
            "market.model.history.months[0].returns[0]",
            "above -100%",
        ),
        (
            json!({"model": model(json!({"block_months": 1, "history": {"assets": ["a"], "months": [
                {"returns": [0.01], "inflation": 0.001}, {"returns": [0.01]}]}}))}),
            "market.model.history.months[1].inflation",
            "or none does",
        ),
        (
            json!({"model": model(json!({"block_months": 1, "history": {"assets": ["a", "b"], "months": [
                {"returns": [0.01]}]}}))}),
            "market.model.history.months[0].returns",
            "one return per asset (2)",
        ),
    ];
    for (market, field, words) in cases {
        let err = prepare(&request(base(market.clone()))).unwrap_err();
        assert_eq!(err.field, field, "{market}: {err}");
        assert!(err.problem.contains(words), "{market}: {err}");
    }
    // A typo or an unknown method is a read error that names it.
    for (extra, words) in [
        (json!({"block": 12}), "block"),
        (json!({"method": "moving"}), "moving"),
        (json!({"history": 3}), "stored history's name"),
    ] {
        let value = base(json!({"weights": [0.5, 0.5], "model": model(extra)}));
        let err = serde_json::from_value::<GoalRequest>(value).unwrap_err();
        assert!(err.to_string().contains(words), "{err}");
    }
}

#[test]
fn sweeps_run_a_bootstrap_over_the_frontiers_assets() {
    let history = repeated_history(&[0.01], None, 60);
    // A history of the frontier's two assets, in its order: each point weights its returns.
    let months: Vec<Value> = (0..120)
        .map(|t| {
            let stocks = if t % 7 == 0 { -0.06 } else { 0.012 };
            json!({"returns": [stocks, 0.003]})
        })
        .collect();
    let two = json!({"assets": ["stocks", "bonds"], "months": months});
    assert_sweep_points_are_their_goals(&sweep_of(json!({
        "model": {"kind": "bootstrap", "history": two, "block_months": 12}
    })));
    // A history of other assets is refused naming both lists.
    let err = sweep_of(json!({"model": {"kind": "bootstrap", "history": history}}))
        .run(&Engine::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("model.history: its assets (a0) must be the frontier's (stocks, bonds)"),
        "{err}"
    );
}
