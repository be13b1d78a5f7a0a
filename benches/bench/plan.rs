//! `sextant-bench --suite plan`: household plans (docs/model.md §5). monteplan's default plan in
//! Sextant beside monteplan itself (`benches/monteplan_baseline.py`, PyPI, NumPy) in the same
//! command, then the couple of `examples/plan-couple.json` (taxes, Social Security, guardrails,
//! Gompertz lifetimes) and its claiming solver (every pair of claim ages), timed.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sextant_engine::backend::Watch;
use sextant_engine::plan::solve;
use sextant_engine::{Engine, PlanRequest};

/// monteplan's default plan written as a Sextant plan (see the file for what differs).
const MONTEPLAN_DEFAULT: &str = include_str!("../plan-monteplan-default.json");
/// The couple: two Gompertz lifetimes, four accounts, a pension, Social Security at 70 and 67,
/// guardrails, goals, taxes, bracket-fill.
const COUPLE: &str = include_str!("../../examples/plan-couple.json");

#[derive(clap::Args, Clone)]
pub struct PlanArgs {
    /// Paths of each plan run (monteplan runs the same number).
    #[arg(long, default_value_t = 10_000)]
    pub plan_paths: u64,
    /// Timed runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub plan_repeat: usize,
    /// Skip monteplan (`pip install -r benches/requirements-bench.txt`).
    #[arg(long)]
    pub no_monteplan: bool,
}

#[derive(Serialize)]
pub struct PlanReport {
    pub paths: u64,
    /// What ran the plans: the results' `backend` ("cpu", "wgpu", "cuda", or the CPU saying
    /// why the device could not).
    pub backend: String,
    /// Off the CPU: whether the couple's whole result (every output but `backend`) is the
    /// CPU's, bit for bit, or the first output that differs.
    pub parity_with_cpu: Option<String>,
    pub monteplan_default: Timed,
    pub monteplan: Option<serde_json::Value>,
    /// Sextant's path-steps/s over monteplan's on the same plan.
    pub speedup_over_monteplan: Option<f64>,
    /// With monteplan: both on its default plan under Student-t returns at 5 degrees of
    /// freedom (each planner's own t model: docs/model.md §4.1 keeps the lognormal's
    /// variance, monteplan scales the normal's covariance), and Sextant's speed over its.
    pub student_t: Option<PeerModel>,
    /// With monteplan: both on its default plan holding its six assets one by one,
    /// rebalanced once a year (Sextant's per-asset paths, docs/model.md §4.5 and §5; monteplan
    /// with `--annual`), and Sextant's speed over its.
    pub per_asset: Option<PeerModel>,
    pub couple: Timed,
    /// The claiming solver on the couple: every pair of claim ages 62 … 70.
    pub couple_claiming: Timed,
    /// The couple under each market model of docs/model.md §4 that plans take, beside its
    /// lognormal run above.
    pub couple_models: Vec<ModelTimed>,
}

/// One market model on monteplan's default plan in both planners.
#[derive(Serialize)]
pub struct PeerModel {
    pub sextant: Timed,
    pub monteplan: serde_json::Value,
    pub speedup_over_monteplan: Option<f64>,
}

/// The couple under one market model.
#[derive(Serialize)]
pub struct ModelTimed {
    /// What the row changes of the couple's market, as described (a history by its file,
    /// not inlined).
    pub model: serde_json::Value,
    pub timed: Timed,
    /// Its path-steps/s over the lognormal couple's, same run.
    pub over_lognormal: f64,
    /// Off the CPU: "bit-identical" to the CPU's whole result, or the first difference.
    pub parity_with_cpu: Option<String>,
}

/// The markets of the couple's rows: Student-t months, two regimes, stationary blocks of the
/// synthetic history without its inflation (the couple's rate indexes) and with it (each
/// path its own index), AR(1) inflation (the engine suite's `--inflation` model), and the
/// engine suite's five assets rebalanced monthly (one portfolio) and held per asset, rebalanced
/// yearly (`--per-asset`'s pair). Each row's name, what it merges into the couple's market,
/// and that as the report describes it.
fn model_rows() -> Result<Vec<(&'static str, serde_json::Value, serde_json::Value)>> {
    use serde_json::json;
    let history = serde_json::to_value(crate::engine::bench_history(false)?)?;
    let indexed = serde_json::to_value(crate::engine::bench_history(true)?)?;
    let ar1: serde_json::Value = serde_json::from_str(crate::engine::BENCH_INFLATION)?;
    let t = json!({"kind": "student_t", "df": 5});
    let regimes = json!({"kind": "regime",
                         "regimes": [{"name": "calm"},
                                     {"name": "crisis", "expected_return": -0.15, "volatility": 0.3}],
                         "transition": [[0.98, 0.02], [0.1, 0.9]]});
    let boot = |history: serde_json::Value| {
        json!({"kind": "bootstrap", "history": history, "block_months": 60,
               "method": "stationary"})
    };
    let mut five: serde_json::Value = serde_json::from_str(crate::engine::BENCH_FIVE_ASSETS)?;
    five["expected_return"] = serde_json::Value::Null;
    five["volatility"] = serde_json::Value::Null;
    let mut per_asset = five.clone();
    per_asset["rebalancing"] = json!("annual");
    let model = |m: serde_json::Value| json!({ "model": m });
    let weighted = |m: serde_json::Value| json!({"model": m, "weights": [0.6, 0.4]});
    Ok(vec![
        ("student_t, df 5", model(t.clone()), model(t)),
        (
            "regimes (calm, crisis)",
            model(regimes.clone()),
            model(regimes),
        ),
        (
            "bootstrap (stationary, 60 months)",
            weighted(boot(history)),
            weighted(boot(json!(
                "examples/history-synthetic.csv without its inflation column"
            ))),
        ),
        (
            "bootstrap with the history's inflation",
            json!({"model": boot(indexed), "weights": [0.6, 0.4], "inflation": 0}),
            json!({"model": boot(json!("examples/history-synthetic.csv")),
                   "weights": [0.6, 0.4]}),
        ),
        (
            "AR(1) inflation, sd 0.015",
            json!({ "inflation": ar1 }),
            json!({ "inflation": ar1 }),
        ),
        (
            "five assets, monthly (one portfolio)",
            five.clone(),
            json!("the engine suite's five assets (BENCH_FIVE_ASSETS), rebalanced monthly"),
        ),
        ("five assets, per-asset, annual", per_asset, {
            json!("the engine suite's five assets (BENCH_FIVE_ASSETS), held per asset, rebalanced yearly")
        }),
    ])
}

#[derive(Serialize)]
pub struct Timed {
    pub what: String,
    /// Median wall time.
    pub seconds: f64,
    /// Months simulated over all paths (paths end at the last death), per second.
    pub path_steps_per_second: f64,
    pub success_probability: f64,
}

pub fn run(engine: &Engine, args: &PlanArgs, python: &str) -> Result<PlanReport> {
    let request = |text: &str| -> Result<PlanRequest> {
        let mut r: PlanRequest = serde_json::from_str(text).context("a benchmark plan")?;
        r.options.paths = Some(args.plan_paths);
        Ok(r)
    };
    let default = request(MONTEPLAN_DEFAULT)?;
    let couple = request(COUPLE)?;
    let on_device = engine.plan(&couple)?;
    let backend = on_device.backend.clone();
    let parity_with_cpu = (backend != "cpu").then(|| against_cpu(&couple, &on_device));
    eprintln!(
        "plans on {backend}{}",
        parity_with_cpu
            .as_ref()
            .map_or(String::new(), |p| format!(": against the CPU, {p}"))
    );
    let monteplan_default = timed(engine, args.plan_repeat, "monteplan's default plan", |e| {
        Ok(e.plan(&default)?.success_probability)
    })?;
    eprintln!(
        "sextant:   {:.3e} path-steps/s ({:.4} s per run) on monteplan's default plan",
        monteplan_default.path_steps_per_second, monteplan_default.seconds
    );
    let monteplan = if args.no_monteplan {
        None
    } else {
        let report =
            monteplan_baseline(python, args.plan_paths, args.plan_repeat.clamp(1, 3), &[])?;
        eprintln!(
            "monteplan: {:.3e} path-steps/s ({:.3} s per run)",
            report["path_steps_per_second"].as_f64().unwrap_or(0.0),
            report["seconds"].as_f64().unwrap_or(0.0)
        );
        Some(report)
    };
    let speedup = monteplan
        .as_ref()
        .and_then(|m| m["path_steps_per_second"].as_f64())
        .map(|m| monteplan_default.path_steps_per_second / m);
    if let Some(s) = speedup {
        eprintln!("sextant / monteplan: {s:.1}×");
    }
    let student_t = if args.no_monteplan {
        None
    } else {
        let mut under = default.clone();
        under.market.model = sextant_engine::request::ReturnModel::StudentT { df: 5.0 };
        let what = "monteplan's default plan, Student-t (df 5)";
        Some(beside_monteplan(
            engine,
            args,
            python,
            &under,
            what,
            &["--student-t", "5"],
        )?)
    };
    let per_asset = if args.no_monteplan {
        None
    } else {
        // monteplan's six assets held per asset and rebalanced each January in both planners
        // (`--sextant-assets` gives Sextant's market of matched monthly moments).
        let market = Command::new(python)
            .args(["benches/monteplan_baseline.py", "--sextant-assets"])
            .output()
            .context("benches/monteplan_baseline.py --sextant-assets")?;
        let mut under = default.clone();
        under.market =
            serde_json::from_slice(&market.stdout).context("monteplan's assets as a market")?;
        let ran_on = engine.plan(&under)?.backend;
        let ran_elsewhere = if ran_on == backend {
            String::new()
        } else {
            format!(" (ran on {ran_on})")
        };
        let what =
            format!("monteplan's default plan, six assets, per-asset, annual{ran_elsewhere}");
        Some(beside_monteplan(
            engine,
            args,
            python,
            &under,
            &what,
            &["--annual"],
        )?)
    };
    let couple_timing = timed(
        engine,
        args.plan_repeat,
        "the couple (examples/plan-couple.json)",
        |e| Ok(e.plan(&couple)?.success_probability),
    )?;
    eprintln!("couple:    {:.4} s", couple_timing.seconds);
    let claiming = timed(
        engine,
        args.plan_repeat.min(3),
        "claiming solver on the couple",
        |e| Ok(solve::claiming(e, &couple)?.best.success_probability),
    )?;
    eprintln!("claiming:  {:.3} s", claiming.seconds);
    let mut couple_models = Vec::new();
    for (name, market, described) in model_rows()? {
        let mut under: serde_json::Value = serde_json::to_value(&couple)?;
        // A merge patch: null removes the field (the couple's μ and σ, under assets).
        for (field, value) in market.as_object().into_iter().flatten() {
            match (value, under["market"].as_object_mut()) {
                (serde_json::Value::Null, Some(fields)) => {
                    fields.remove(field);
                }
                _ => under["market"][field] = value.clone(),
            }
        }
        let under: PlanRequest = serde_json::from_value(under)?;
        let device_run = (backend != "cpu").then(|| engine.plan(&under));
        let parity_with_cpu = device_run.as_ref().map(|run| match run {
            Ok(here) => against_cpu(&under, here),
            Err(e) => format!("the run failed: {e}"),
        });
        // A model the device's plan kernel lacks runs on the CPU: the row says so.
        let ran_elsewhere = match &device_run {
            Some(Ok(here)) if here.backend != backend => format!(" (ran on {})", here.backend),
            _ => String::new(),
        };
        let timed = timed(
            engine,
            args.plan_repeat,
            &format!("the couple, {name}{ran_elsewhere}"),
            |e| Ok(e.plan(&under)?.success_probability),
        )?;
        let over_lognormal = timed.path_steps_per_second / couple_timing.path_steps_per_second;
        eprintln!("couple, {name}: {over_lognormal:.2}× the lognormal");
        couple_models.push(ModelTimed {
            model: described,
            timed,
            over_lognormal,
            parity_with_cpu,
        });
    }
    Ok(PlanReport {
        paths: args.plan_paths,
        backend,
        parity_with_cpu,
        monteplan_default,
        monteplan,
        speedup_over_monteplan: speedup,
        student_t,
        per_asset,
        couple: couple_timing,
        couple_claiming: claiming,
        couple_models,
    })
}

/// Sextant's `plan` (monteplan's default plan under one of its models) timed as `what`, and
/// monteplan's own run of that model (`benches/monteplan_baseline.py` with `variant`).
fn beside_monteplan(
    engine: &Engine,
    args: &PlanArgs,
    python: &str,
    plan: &PlanRequest,
    what: &str,
    variant: &[&str],
) -> Result<PeerModel> {
    let sextant = timed(engine, args.plan_repeat, what, |e| {
        Ok(e.plan(plan)?.success_probability)
    })?;
    let monteplan = monteplan_baseline(
        python,
        args.plan_paths,
        args.plan_repeat.clamp(1, 3),
        variant,
    )?;
    let speedup = monteplan["path_steps_per_second"]
        .as_f64()
        .map(|m| sextant.path_steps_per_second / m);
    if let Some(s) = speedup {
        eprintln!("sextant / monteplan, {what}: {s:.1}×");
    }
    Ok(PeerModel {
        sextant,
        monteplan,
        speedup_over_monteplan: speedup,
    })
}

/// `on_device`, the result of `plan` off the CPU, against the CPU's: "bit-identical" or the
/// first output that differs.
fn against_cpu(plan: &PlanRequest, on_device: &sextant_engine::PlanResult) -> String {
    let cpu = Engine::new(sextant_engine::Device::Cpu(
        sextant_engine::CpuBackend::new(),
    ));
    match cpu.plan(plan) {
        Ok(on_cpu) => first_difference(
            &serde_json::to_value(on_device).unwrap_or_default(),
            &serde_json::to_value(&on_cpu).unwrap_or_default(),
        )
        .unwrap_or_else(|| "bit-identical".to_string()),
        Err(e) => format!("the CPU run failed: {e}"),
    }
}

/// The first output (a JSON path) where `device` and `cpu` differ, `backend` aside; `None`
/// when they agree everywhere (numbers compare by their JSON text, which holds every bit).
fn first_difference(device: &serde_json::Value, cpu: &serde_json::Value) -> Option<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => x
                .iter()
                .filter(|(k, _)| !path.is_empty() || k.as_str() != "backend")
                .find_map(|(k, v)| match y.get(k) {
                    Some(w) => walk(&format!("{path}.{k}"), v, w),
                    None => Some(format!("{path}.{k} missing on the CPU")),
                }),
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (v, w))| walk(&format!("{path}[{i}]"), v, w)),
            _ if a == b => None,
            _ => Some(format!("{path}: {a} here, {b} on the CPU")),
        }
    }
    walk("", device, cpu)
}

/// The median of `repeat` timed runs of `work` (after one untimed), with the path-steps the
/// engine's watch counted.
fn timed(
    engine: &Engine,
    repeat: usize,
    what: &str,
    work: impl Fn(&Engine) -> Result<f64>,
) -> Result<Timed> {
    work(engine)?;
    let mut runs = Vec::with_capacity(repeat.max(1));
    let mut success = 0.0;
    for _ in 0..repeat.max(1) {
        let watch = Arc::new(Watch::default());
        let watched = engine.watched(watch.clone());
        let start = Instant::now();
        success = work(&watched)?;
        runs.push((start.elapsed().as_secs_f64(), watch.done()));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, steps) = runs[runs.len() / 2];
    Ok(Timed {
        what: what.to_string(),
        seconds,
        path_steps_per_second: steps as f64 / seconds,
        success_probability: success,
    })
}

/// monteplan on its default plan (`benches/monteplan_baseline.py`), under its Student-t
/// returns at `student_t` degrees of freedom when given.
fn monteplan_baseline(
    python: &str,
    paths: u64,
    repeat: usize,
    variant: &[&str],
) -> Result<serde_json::Value> {
    let mut command = Command::new(python);
    command
        .arg("benches/monteplan_baseline.py")
        .arg("--paths")
        .arg(paths.to_string())
        .arg("--repeats")
        .arg(repeat.to_string())
        .args(variant);
    let output = command
        .output()
        .with_context(|| format!("starting {python} benches/monteplan_baseline.py"))?;
    if !output.status.success() {
        bail!(
            "monteplan failed ({}): {} (pip install -r benches/requirements-bench.txt)",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("monteplan's JSON")
}
