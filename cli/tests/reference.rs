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

#[test]
fn engine_agrees_with_the_numpy_reference_within_4_standard_errors() {
    let cases_path = repo().join("benches/reference-cases.json");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&cases_path).unwrap()).unwrap();
    assert!(cases.len() >= 12);

    let output = Command::new(std::env::var("SEXTANT_PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(repo().join("benches/reference.py"))
        .arg(&cases_path)
        .output()
        .expect("python3 runs (the test needs Python 3 with NumPy: pip install numpy)");
    assert!(
        output.status.success(),
        "the NumPy reference failed (is numpy installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let references: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(references.len(), cases.len());

    let engine = Engine::default();
    for (case, reference) in cases.iter().zip(&references) {
        let name = case["name"].as_str().unwrap();
        let mut request = case.clone();
        request.as_object_mut().unwrap().remove("name");
        let request: GoalRequest = serde_json::from_value(request).unwrap();
        let n = request.options.paths as f64;
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
