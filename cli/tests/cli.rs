//! The `sextant` binary as a user runs it: files and stdin in, JSON out, errors that name the
//! field with a non-zero exit.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn sextant(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_plan_example_runs() {
    for example in ["plan-single-retiree", "plan-couple", "plan-pre-retiree"] {
        let path = format!("examples/{example}.json");
        let result = json(&sextant(
            &["--backend", "cpu", "plan", &path, "--paths", "2000"],
            None,
        ));
        let p = result["success_probability"].as_f64().unwrap();
        assert!(p > 0.0 && p < 1.0, "{example}: success {p}");
        assert_eq!(result["paths"], 2000);
        assert_eq!(result["backend"], "cpu");
        assert!(
            result["estate"]["percentiles"]["p50"].is_number(),
            "{example}"
        );
        assert!(
            result["yearly"][0]["wealth"]["p50"].is_number(),
            "{example}"
        );
    }
    let solved = json(&sextant(
        &[
            "--backend",
            "cpu",
            "plan",
            "solve",
            "spending",
            "examples/plan-single-retiree.json",
            "--paths",
            "1000",
        ],
        None,
    ));
    assert!(solved["scale"].as_f64().unwrap() > 0.0);
    assert!(solved["plan"]["success_probability"].as_f64().unwrap() >= 0.85);
    let claiming = json(&sextant(
        &[
            "--backend",
            "cpu",
            "plan",
            "solve",
            "claiming",
            "examples/plan-couple.json",
            "--paths",
            "200",
        ],
        None,
    ));
    assert_eq!(claiming["options"].as_array().unwrap().len(), 9 * 9);
    let orders = json(&sextant(
        &[
            "--backend",
            "cpu",
            "plan",
            "solve",
            "withdrawal-order",
            "examples/plan-couple.json",
            "--paths",
            "500",
        ],
        None,
    ));
    assert_eq!(orders["orders"].as_array().unwrap().len(), 5);
    // A bad plan names its field and exits 2.
    let out = sextant(
        &["plan", "-"],
        Some(
            r#"{"plan": {"people": [{"name": "A", "age": 70, "retirement_age": 65}],
                 "accounts": [{"name": "a", "kind": "taxable", "balance": 1}],
                 "social_security": [{"person": 0, "pia": 1000, "claim_age": 71}],
                 "spending": {"essential": 1}},
            "market": {"expected_return": 0.05, "volatility": 0.1}}"#,
        ),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plan.social_security[0].claim_age"));
}

#[test]
fn every_example_simulates() {
    for example in [
        "accumulation-30y",
        "retirement-drawdown",
        "glide-path",
        "multi-asset",
        "fat-tails",
        "regimes",
        "inflation",
        "bootstrap",
    ] {
        let path = format!("examples/{example}.json");
        let result = json(&sextant(
            &["--backend", "cpu", "simulate", &path, "--paths", "2000"],
            None,
        ));
        let p = result["success_probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{example}");
        assert_eq!(result["paths"], 2000);
        assert_eq!(result["backend"], "cpu");
        assert!(
            result["terminal"]["percentiles"]["p50"].is_number(),
            "{example}"
        );
        let yearly = result["yearly"].as_array().unwrap();
        assert_eq!(yearly[0]["month"], 12);
        assert!(yearly[0]["depleted"].is_number());
    }
}

#[test]
fn stdin_and_overrides() {
    let request = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/accumulation-30y.json"),
    )
    .unwrap();
    let a = json(&sextant(
        &[
            "simulate",
            "-",
            "--paths",
            "1500",
            "--seed",
            "9",
            "--compact",
        ],
        Some(&request),
    ));
    assert_eq!(a["paths"], 1500);
    assert_eq!(a["seed"], 9);
    let b = json(&sextant(
        &["--seed", "9", "simulate", "--paths", "1500"],
        Some(&request),
    ));
    assert_eq!(a, b, "the same seed gives the same result");
    let batch = format!("[{request}, {request}]");
    let results = json(&sextant(
        &["simulate", "--paths", "1500", "--seed", "9"],
        Some(&batch),
    ));
    assert_eq!(results[0], a);
    assert_eq!(results[1], a);
}

#[test]
fn bad_requests_name_the_field_and_exit_2() {
    let cases = [
        (
            r#"{"goal": {"horizon_months": 0}, "market": {"expected_return": 0.07, "volatility": 0.15}}"#,
            "goal.horizon_months",
        ),
        (
            r#"{"goal": {"horizon_months": 12, "initial_wealth": -5}, "market": {"expected_return": 0.07, "volatility": 0.15}}"#,
            "goal.initial_wealth",
        ),
        (
            r#"{"goal": {"horizon_months": 12}, "market": {"expected_return": 0.07, "volatility": -0.15}}"#,
            "market.volatility",
        ),
        (
            r#"{"goal": {"horizon_months": 12, "target": 5}, "market": {}}"#,
            "goal.target",
        ),
        (
            r#"{"goal": {"horizon_months": "twelve"}, "market": {}}"#,
            "goal.horizon_months",
        ),
        (
            r#"{"goal": {"horizon_months": 12}, "market": {"expected_return": 0.07, "volatility": 0.1}, "options": {"paths": 0}}"#,
            "options.paths",
        ),
        (r#"{"goal": {"horizon_months": 12}"#, "request"),
    ];
    for (request, field) in cases {
        let out = sextant(&["simulate"], Some(request));
        assert_eq!(out.status.code(), Some(2), "{request}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {field}")),
            "{request}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = sextant(&["simulate", "examples/missing.json"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("examples/missing.json"));
    // CUDA made unavailable whatever the machine (a GPU one too): NVRTC named where none is.
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["--backend", "cuda", "simulate", "examples/multi-asset.json"])
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("SEXTANT_NVRTC_LIB", "/nonexistent/libnvrtc.so.13")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cuda"));
    // `--nvrtc` reaches the engine: the pinned library is the one the report tried.
    let out = sextant(
        &["backends", "--nvrtc", "/nonexistent/libnvrtc.so.13"],
        None,
    );
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("/nonexistent/libnvrtc.so.13"), "{report}");
}

#[test]
fn solvers_what_if_and_sensitivity() {
    let solved = json(&sextant(
        &[
            "solve",
            "required-contribution",
            "examples/accumulation-30y.json",
            "--paths",
            "4000",
        ],
        None,
    ));
    assert_eq!(solved["solved_for"], "goal.monthly_contribution");
    assert_eq!(solved["method"], "break-even");
    assert!(solved["success_probability"].as_f64().unwrap() >= 0.8);
    assert!(
        solved["value"].as_f64().unwrap() > 1000.0,
        "the example needs more than it saves"
    );

    let solved = json(&sextant(
        &[
            "solve",
            "sustainable-withdrawal",
            "examples/retirement-drawdown.json",
            "--paths",
            "4000",
        ],
        None,
    ));
    assert_eq!(solved["solved_for"], "goal.monthly_withdrawal");
    assert!(solved["success_probability"].as_f64().unwrap() >= 0.85);
    assert!(solved["value"].as_f64().unwrap() > 0.0);

    let out = sextant(
        &[
            "solve",
            "sustainable-withdrawal",
            "examples/accumulation-30y.json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("goal.withdrawal_start_month"));

    let what_if = json(&sextant(
        &["what-if", "examples/what-if.json", "--paths", "4000"],
        None,
    ));
    let variants = what_if["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 3);
    assert!(
        variants[0]["success_probability_change"].as_f64().unwrap() > 0.0,
        "saving more helps"
    );

    let tornado = json(&sextant(
        &[
            "sensitivity",
            "examples/sensitivity.json",
            "--paths",
            "4000",
        ],
        None,
    ));
    let bars = tornado["tornado"].as_array().unwrap();
    assert!(bars.len() >= 6);
    let swings: Vec<f64> = bars.iter().map(|b| b["swing"].as_f64().unwrap()).collect();
    assert!(
        swings.windows(2).all(|w| w[0] >= w[1]),
        "sorted by swing: {swings:?}"
    );
}

#[test]
fn backends_lists_each_with_its_device_or_why_not() {
    let report = json(&sextant(&["backends"], None));
    let backends = report["backends"].as_array().unwrap();
    let names: Vec<&str> = backends
        .iter()
        .map(|b| b["backend"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cpu", "wgpu", "cuda"]);
    assert_eq!(backends[0]["available"], true);
    assert!(backends[0]["device"].as_str().unwrap().contains("kernel"));
    assert_eq!(backends[0]["plans"], "kernel ready");
    for gpu in &backends[1..] {
        if gpu["available"] == true {
            // Lavapipe has f64: the WGSL plan kernel builds there.
            let plans = gpu["plans"].as_str().unwrap();
            assert!(
                plans == "kernel ready" || plans.starts_with("on the CPU: "),
                "{gpu}"
            );
            if gpu["backend"] == "wgpu" {
                assert_eq!(plans, "kernel ready", "{gpu}");
            }
        } else {
            // Why not: not built, no driver, no NVRTC, only a software adapter…
            let reason = gpu["reason"].as_str().unwrap();
            assert!(reason.contains(gpu["backend"].as_str().unwrap()), "{gpu}");
            assert!(reason.len() > 30, "{gpu}");
        }
    }
    // `auto` picks an available backend (the CPU unless a real GPU is present).
    let auto = report["auto"].as_str().unwrap();
    assert!(backends
        .iter()
        .any(|b| b["backend"] == auto && b["available"] == true));
}

#[test]
fn what_if_errors_name_the_variant() {
    let request = r#"{"goal": {"horizon_months": 120}, "market": {"expected_return": 0.05, "volatility": 0.1},
        "variants": [{"name": "ok", "goal": {"monthly_contribution": 10}}, {"name": "bad", "goal": {"horizon_months": 5000}}]}"#;
    let out = sextant(&["what-if", "-"], Some(request));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("variants[1].goal.horizon_months"),
        "{stderr}"
    );
}

#[test]
fn frontier_sweep_and_risk_examples_run() {
    let frontier = json(&sextant(&["frontier", "examples/frontier.json"], None));
    let points = frontier["points"].as_array().unwrap();
    assert_eq!(points.len(), 20);
    for key in ["corners", "min_variance", "max_sharpe", "target_volatility"] {
        assert!(!frontier[key].is_null(), "{key}");
    }
    let vol = frontier["target_volatility"]["volatility"]
        .as_f64()
        .unwrap();
    assert!((vol - 0.10).abs() < 1e-9);
    for p in points {
        let w = p["weights"].as_array().unwrap();
        assert_eq!(w.len(), 7);
        let sum: f64 = w.iter().map(|x| x.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-9);
    }

    let sweep = json(&sextant(
        &["sweep", "examples/sweep.json", "--paths", "2000"],
        None,
    ));
    assert_eq!(sweep["points"].as_array().unwrap().len(), 25);
    assert_eq!(sweep["paths"], 2000);
    assert!(sweep["best"]["success_probability"].as_f64().unwrap() > 0.0);

    let risk = json(&sextant(
        &["risk", "examples/risk.json", "--paths", "5000"],
        None,
    ));
    assert_eq!(risk["paths"], 5000);
    assert_eq!(risk["stress_tests"].as_array().unwrap().len(), 2);
    assert!(risk["value_at_risk"]["monte_carlo"]["95"].as_f64().unwrap() > 0.0);
}

#[test]
fn portfolio_errors_name_the_field_and_exit_2() {
    let assets = r#""assets": [{"name": "a", "expected_return": 0.05, "volatility": 0.1},
                               {"name": "b", "expected_return": 0.08, "volatility": 0.2}]"#;
    for (request, field) in [
        (
            format!(
                r#"{{{assets}, "groups": [{{"assets": ["a"], "min": 0.6}}, {{"assets": ["b"], "min": 0.6}}]}}"#
            ),
            "groups[1]: infeasible",
        ),
        (
            format!(r#"{{{assets}, "bounds": [{{"min": 0.7}}, {{"min": 0.7}}]}}"#),
            "bounds: infeasible",
        ),
        (format!(r#"{{{assets}, "pointz": 3}}"#), "pointz"),
        (
            format!(r#"{{{assets}, "correlations": [[1, 2], [2, 1]]}}"#),
            "correlations[0][1]",
        ),
    ] {
        let out = sextant(&["frontier", "-"], Some(&request));
        assert_eq!(out.status.code(), Some(2), "{request}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(field), "{field}: {stderr}");
    }
    let risk = format!(r#"{{{assets}, "weights": [0.5, 0.6]}}"#);
    let out = sextant(&["risk", "-"], Some(&risk));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("weights: must sum to 1"));
}

#[test]
fn svg_charts_are_drawn_from_the_cli() {
    let dir = std::env::temp_dir();
    let fan = dir.join(format!("sextant-fan-{}.svg", std::process::id()));
    let frontier = dir.join(format!("sextant-frontier-{}.svg", std::process::id()));
    let out = sextant(
        &[
            "simulate",
            "examples/accumulation-30y.json",
            "--paths",
            "2000",
            "--svg",
            fan.to_str().unwrap(),
        ],
        None,
    );
    json(&out);
    let svg = std::fs::read_to_string(&fan).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("chance of success") && svg.contains("target"));
    let out = sextant(
        &[
            "frontier",
            "examples/frontier.json",
            "--svg",
            frontier.to_str().unwrap(),
        ],
        None,
    );
    json(&out);
    let svg = std::fs::read_to_string(&frontier).unwrap();
    assert!(svg.contains("Efficient frontier") && svg.matches("<circle").count() >= 20);
    // A plan: wealth in today's dollars by age, titled with its success.
    let plan_svg = dir.join(format!("sextant-plan-{}.svg", std::process::id()));
    let out = sextant(
        &[
            "plan",
            "examples/plan-couple.json",
            "--paths",
            "2000",
            "--svg",
            plan_svg.to_str().unwrap(),
        ],
        None,
    );
    let result = json(&out);
    let svg = std::fs::read_to_string(&plan_svg).unwrap();
    let title = format!(
        "{:.0}% chance the plan lasts",
        100.0 * result["success_probability"].as_f64().unwrap()
    );
    assert!(svg.starts_with("<svg") && svg.contains(&title), "{title}");
    assert!(svg.contains("age") && svg.contains("today"));
    for file in [fan, frontier, plan_svg] {
        let _ = std::fs::remove_file(file);
    }
}

#[test]
fn every_cpu_kernel_gives_the_same_bytes_and_a_bad_name_is_refused() {
    // The drawdown example depletes paths, so the kernels' depletion branches are compared too.
    let run = |kernel: Option<&str>| {
        let mut args = vec!["--backend", "cpu", "--compact"];
        if let Some(k) = kernel {
            args.extend(["--cpu-kernel", k]);
        }
        args.extend([
            "simulate",
            "examples/retirement-drawdown.json",
            "--paths",
            "3000",
        ]);
        sextant(&args, None)
    };
    let widest = run(None);
    assert!(widest.status.success());
    for kernel in ["avx512", "avx2", "portable"] {
        let out = run(Some(kernel));
        if out.status.success() {
            assert_eq!(out.stdout, widest.stdout, "the {kernel} kernel");
        } else {
            // Only a kernel this CPU lacks may fail, and it says so.
            assert_ne!(kernel, "portable");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("lacks the instructions of the {kernel} kernel")),
                "{stderr}"
            );
        }
    }
    let bad = sextant(
        &[
            "--cpu-kernel",
            "avx3",
            "simulate",
            "examples/accumulation-30y.json",
        ],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--cpu-kernel") && stderr.contains("avx512"),
        "{stderr}"
    );
}

/// Logs into a pipe (a file, a collector) carry no ANSI colour codes.
#[test]
fn logs_into_a_pipe_have_no_colour_codes() {
    let database = std::env::temp_dir().join(format!("sextant-ansi-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", database.display());
    let output = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["migrate", "--database-url", &url])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&database);
    assert!(output.status.success());
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.lines().count() > 0,
        "RUST_LOG=debug logged nothing to check"
    );
    assert!(!logs.contains('\u{1b}'), "colour codes in: {logs}");
}

/// `sextant bench` runs the `sextant-bench` binary (kept out of this one), forwarding the
/// global flags it was given before the rest; without it, it says how to build it.
#[test]
fn bench_runs_the_bench_binary_with_the_global_flags_or_says_how_to_build_it() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let missing = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["bench", "--suite", "backends"])
        .current_dir(&root)
        .env("SEXTANT_BENCH_BIN", "/nonexistent/sextant-bench")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("cargo build --release -p sextant-benches"),
        "{stderr}"
    );
    // A stand-in that prints the arguments it was given, one a line, and exits 3.
    let stand_in = std::env::temp_dir().join(format!("sextant-bench-args-{}", std::process::id()));
    std::fs::write(
        &stand_in,
        "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\nexit 3\n",
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&stand_in).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&stand_in, permissions).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args([
            "--backend",
            "cpu",
            "--threads",
            "1",
            "bench",
            "--suite",
            "service",
            "--help",
        ])
        .current_dir(&root)
        .env("SEXTANT_BENCH_BIN", &stand_in)
        .output()
        .unwrap();
    std::fs::remove_file(&stand_in).unwrap();
    // Its exit status is passed on.
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let args: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        args,
        [
            "--backend",
            "cpu",
            "--threads",
            "1",
            "--suite",
            "service",
            "--help"
        ],
        "{out:?}"
    );
}
