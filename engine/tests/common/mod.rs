//! Helpers shared by the engine's integration tests: the normal distribution's closed forms
//! and request builders.
#![allow(dead_code)]

use sextant_engine::{Goal, GoalRequest, Market, Options};

/// Φ(x), via erfc (Numerical Recipes' Chebyshev fit, fractional error below 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 10] = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = COEFFICIENTS.iter().rev().fold(0.0, |acc, c| acc * t + c);
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Φ⁻¹(p) (Acklam's rational approximation, relative error below 1.2e-9).
#[allow(clippy::excessive_precision)] // Acklam's published coefficients, as published
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383577518672690e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A goal with only a horizon; everything else at docs/model.md's defaults.
pub fn goal(horizon_months: u32) -> Goal {
    serde_json::from_value(serde_json::json!({ "horizon_months": horizon_months })).unwrap()
}

/// A single-portfolio market.
pub fn market(expected_return: f64, volatility: f64) -> Market {
    Market {
        expected_return: Some(expected_return),
        volatility: Some(volatility),
        ..Market::default()
    }
}

pub fn request(goal: Goal, market: Market, paths: u64, seed: u64) -> GoalRequest {
    GoalRequest {
        goal,
        market,
        options: Options {
            paths: Some(paths),
            seed,
            ..Options::default()
        },
    }
}

/// The standard goal of the benchmarks (examples/accumulation-30y.json).
pub fn standard_goal(paths: u64) -> GoalRequest {
    let mut r: GoalRequest =
        serde_json::from_str(include_str!("../../../examples/accumulation-30y.json")).unwrap();
    r.options.paths = Some(paths);
    r
}
