//! The engine against closed forms: zero volatility (the deterministic annuity, to float
//! precision) and no cash flows (the lognormal's success probability and quantiles).

mod common;

use common::*;
use sextant_engine::validate::monthly_lognormal;
use sextant_engine::{Engine, GlideSegment};

/// The deterministic wealth path of docs/model.md §1 with σ = 0, by a plain loop.
fn annuity(
    goal: &sextant_engine::Goal,
    monthly_growth: impl Fn(u32) -> f64,
    inflation: f64,
) -> (Vec<f64>, Option<u32>) {
    let t_end = goal.horizon_months;
    let cm = goal.contribution_months.unwrap_or(t_end);
    let ws = goal.withdrawal_start_month.unwrap_or(t_end);
    let mut w = goal.initial_wealth;
    let mut path = vec![w];
    let mut depleted = None;
    for t in 0..t_end {
        let years = (t / 12) as i32;
        let c = if t < cm {
            goal.monthly_contribution * (1.0 + goal.contribution_growth).powi(years)
        } else {
            0.0
        };
        let d = if t >= ws {
            goal.monthly_withdrawal * (1.0 + inflation).powi(years)
        } else {
            0.0
        };
        let x = w + c - d;
        if depleted.is_some() {
            w = 0.0;
        } else if d > 0.0 && x <= 0.0 {
            depleted = Some(t);
            w = 0.0;
        } else {
            w = x * monthly_growth(t);
        }
        path.push(w);
    }
    (path, depleted)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn zero_volatility_is_the_deterministic_annuity() {
    let mut g = goal(127);
    g.initial_wealth = 10_000.0;
    g.monthly_contribution = 500.0;
    g.contribution_growth = 0.04;
    g.contribution_months = Some(100);
    g.monthly_withdrawal = 300.0;
    g.withdrawal_start_month = Some(110);
    g.target_amount = 50_000.0;
    let mut m = market(0.06, 0.0);
    m.inflation = 0.02.into();
    let (drift, _) = monthly_lognormal(0.06, 0.0);
    let (path, depleted) = annuity(&g, |_| drift, 0.02);
    assert_eq!(depleted, None);
    let result = Engine::default()
        .simulate(&request(g.clone(), m, 3000, 5))
        .unwrap();

    let terminal = path[127];
    assert!(
        close(result.terminal.mean, terminal, 1e-12),
        "{} vs {terminal}",
        result.terminal.mean
    );
    for (p, v) in &result.terminal.percentiles.0 {
        assert!(close(*v, terminal, 1e-12), "p{p}: {v} vs {terminal}");
    }
    let months: Vec<u32> = result.yearly.iter().map(|y| y.month).collect();
    assert_eq!(months, vec![12, 24, 36, 48, 60, 72, 84, 96, 108, 120, 127]);
    for y in &result.yearly {
        let expected = path[y.month as usize];
        assert!(close(y.mean, expected, 1e-12), "month {}", y.month);
        assert!(close(y.percentiles.get(50.0).unwrap(), expected, 1e-12));
        assert_eq!(y.depleted, 0.0);
    }
    let target = 50_000.0 * 1.02f64.powf(127.0 / 12.0);
    assert!(close(result.target_nominal, target, 1e-14));
    assert_eq!(
        result.success_probability,
        if terminal >= target { 1.0 } else { 0.0 }
    );
    assert_eq!(result.standard_error, 0.0);
}

#[test]
fn zero_volatility_depletes_at_the_month_the_money_runs_out() {
    let mut g = goal(240);
    g.initial_wealth = 100_000.0;
    g.monthly_withdrawal = 1_000.0;
    g.withdrawal_start_month = Some(0);
    let mut m = market(0.03, 0.0);
    m.inflation = 0.03.into();
    let (drift, _) = monthly_lognormal(0.03, 0.0);
    let (_, depleted) = annuity(&g, |_| drift, 0.03);
    let month = depleted.expect("the money runs out within 20 years");
    let result = Engine::default().simulate(&request(g, m, 1000, 1)).unwrap();
    assert_eq!(result.success_probability, 0.0);
    assert_eq!(result.depletion.probability, 1.0);
    assert_eq!(result.depletion.median_month, Some(f64::from(month)));
    for y in &result.yearly {
        let expected = if y.month > month { 1.0 } else { 0.0 };
        assert_eq!(y.depleted, expected, "month {}", y.month);
    }
    assert_eq!(result.terminal.mean, 0.0);
}

#[test]
fn zero_volatility_glide_path_compounds_each_segment() {
    let mut g = goal(60);
    g.initial_wealth = 1_000.0;
    let mut m = market(0.0, 0.0);
    m.expected_return = None;
    m.volatility = None;
    m.glide_path = Some(vec![
        GlideSegment {
            start_month: 0,
            expected_return: Some(0.08),
            volatility: Some(0.0),
            weights: None,
        },
        GlideSegment {
            start_month: 24,
            expected_return: Some(0.02),
            volatility: Some(0.0),
            weights: None,
        },
    ]);
    let result = Engine::default().simulate(&request(g, m, 100, 1)).unwrap();
    let expected = 1_000.0 * 1.08f64.powf(2.0) * 1.02f64.powf(3.0);
    assert!(
        close(result.terminal.mean, expected, 1e-12),
        "{} vs {expected}",
        result.terminal.mean
    );
}

#[test]
fn no_cash_flows_match_the_lognormal_closed_forms() {
    let (w0, mu, sigma, months, target) = (100_000.0, 0.07, 0.18, 240u32, 300_000.0);
    let mut g = goal(months);
    g.initial_wealth = w0;
    g.target_amount = target;
    g.target_real = false;
    let n = 1_000_000u64;
    let result = Engine::default()
        .simulate(&request(g, market(mu, sigma), n, 2024))
        .unwrap();

    let s2 = (1.0 + sigma * sigma / ((1.0 + mu) * (1.0 + mu))).ln();
    let m = (1.0 + mu).ln() - s2 / 2.0;
    let years = f64::from(months) / 12.0;
    let (loc, scale) = (w0.ln() + m * years, (s2 * years).sqrt());

    // Success: P(W_T ≥ K) within 4 standard errors.
    let p = normal_cdf((loc - f64::ln(target)) / scale);
    let se = (p * (1.0 - p) / n as f64).sqrt();
    assert!(
        (result.success_probability - p).abs() < 4.0 * se,
        "p̂ {} vs {p} (se {se})",
        result.success_probability
    );

    // Mean: W0 (1+μ)^T within 4 standard errors of the lognormal's SD.
    let mean = w0 * (1.0 + mu).powf(years);
    let sd = mean * ((s2 * years).exp() - 1.0).sqrt();
    assert!((result.terminal.mean - mean).abs() < 4.0 * sd / (n as f64).sqrt());

    // Percentiles of every year within 1%.
    for y in &result.yearly {
        let t = f64::from(y.month) / 12.0;
        for (q, v) in &y.percentiles.0 {
            let exact = (w0.ln() + m * t + (s2 * t).sqrt() * normal_quantile(q / 100.0)).exp();
            assert!(
                close(*v, exact, 0.01),
                "month {} p{q}: {v} vs {exact}",
                y.month
            );
        }
    }
}

#[test]
fn a_multi_asset_portfolio_is_its_reduced_lognormal() {
    let assets = serde_json::json!({
        "assets": [
            {"name": "stocks", "expected_return": 0.08, "volatility": 0.2},
            {"name": "bonds", "expected_return": 0.03, "volatility": 0.05}
        ],
        "weights": [0.6, 0.4],
        "correlations": [[1.0, -0.2], [-0.2, 1.0]]
    });
    let mu = 0.6 * 0.08 + 0.4 * 0.03;
    let var: f64 = 0.36 * 0.04 + 0.16 * 0.0025 + 2.0 * 0.6 * 0.4 * -0.2 * 0.2 * 0.05;
    let mut g = goal(120);
    g.initial_wealth = 1_000.0;
    g.monthly_contribution = 100.0;
    g.target_amount = 20_000.0;
    let multi = Engine::default()
        .simulate(&request(
            g.clone(),
            serde_json::from_value(assets).unwrap(),
            20_000,
            3,
        ))
        .unwrap();
    let single = Engine::default()
        .simulate(&request(g, market(mu, var.sqrt()), 20_000, 3))
        .unwrap();
    // Same seed, same reduced (μ, σ): equal up to the rounding of σ's two computations.
    assert!((multi.success_probability - single.success_probability).abs() <= 1.0 / 20_000.0);
    assert!(close(multi.terminal.mean, single.terminal.mean, 1e-9));
}

/// `market.fee` (docs/model.md §4.6) with σ = 0 is the deterministic annuity whose monthly
/// growth is the lognormal's times (1 − f)^(1/12), cash flows and all: to float precision.
#[test]
fn zero_volatility_with_a_fee_is_the_annuity_on_the_reduced_growth() {
    let mut g = goal(150);
    g.initial_wealth = 20_000.0;
    g.monthly_contribution = 400.0;
    g.contribution_months = Some(90);
    g.monthly_withdrawal = 250.0;
    g.withdrawal_start_month = Some(100);
    let mut m = market(0.07, 0.0);
    m.inflation = 0.02.into();
    m.fee = 0.0125;
    let (drift, _) = monthly_lognormal(0.07, 0.0);
    let growth = drift * (1.0 - 0.0125f64).powf(1.0 / 12.0);
    let (path, depleted) = annuity(&g, |_| growth, 0.02);
    assert_eq!(depleted, None);
    let result = Engine::default().simulate(&request(g, m, 500, 3)).unwrap();
    let terminal = path[150];
    assert!(
        close(result.terminal.mean, terminal, 1e-12),
        "{} vs {terminal}",
        result.terminal.mean
    );
    for y in &result.yearly {
        assert!(
            close(y.mean, path[y.month as usize], 1e-12),
            "month {}",
            y.month
        );
    }
    // A year of constant returns keeps exactly 1 − f of what it would have grown to.
    let (year, year_fee) = (drift.powi(12), growth.powi(12));
    assert!(close(year_fee / year, 1.0 - 0.0125, 1e-14));
}

/// Without cash flows every path's wealth is multiplied by the fee's factor each month, so
/// with volatility too every percentile of W_T (same seed, same Z) is the fee-less one times
/// (1 − f)^(T/12), up to the rounding of T products (bound 1e-10 relative); a zero fee is the
/// fee-less result to the bit.
#[test]
fn a_fee_scales_every_path_by_its_compounded_factor() {
    let mut g = goal(360);
    g.initial_wealth = 100_000.0;
    g.target_amount = 250_000.0;
    let plain = market(0.06, 0.15);
    let mut with_fee = plain.clone();
    with_fee.fee = 0.01;
    let engine = Engine::default();
    let base = engine
        .simulate(&request(g.clone(), plain.clone(), 20_000, 11))
        .unwrap();
    let feed = engine
        .simulate(&request(g.clone(), with_fee, 20_000, 11))
        .unwrap();
    let factor = 0.99f64.powf(30.0);
    for ((p, a), (_, b)) in base
        .terminal
        .percentiles
        .0
        .iter()
        .zip(&feed.terminal.percentiles.0)
    {
        assert!(close(*b, a * factor, 1e-10), "p{p}: {b} vs {a} × {factor}");
    }
    assert!(feed.success_probability < base.success_probability);
    let mut zero = plain;
    zero.fee = 0.0;
    let same = engine.simulate(&request(g, zero, 20_000, 11)).unwrap();
    assert_eq!(
        serde_json::to_string(&same).unwrap(),
        serde_json::to_string(&base).unwrap()
    );
}

/// A fee outside [0, 1) is refused, naming `market.fee` and the bound; in a sweep too.
#[test]
fn a_fee_out_of_bounds_names_its_field() {
    for fee in [1.0, 1.5, -0.001, f64::INFINITY, f64::NAN] {
        let mut m = market(0.06, 0.15);
        m.fee = fee;
        let err = Engine::default()
            .simulate(&request(goal(120), m, 100, 1))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("market.fee") && err.contains("below 1"),
            "fee {fee}: {err}"
        );
    }
}
