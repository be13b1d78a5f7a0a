//! `sextant-bench --suite engine`: path-steps per second on the standard goal, and the NumPy reference
//! (`benches/reference.py`, float64, vectorised over paths) timed in the same command, so the
//! ratio between them holds on a shared, noisy machine.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sextant_engine::history::History;
use sextant_engine::request::{BlockMethod, HistorySource, Inflation, Rebalancing, ReturnModel};
use sextant_engine::{Engine, GoalRequest, Market};

use crate::BenchArgs;

/// The standard goal: 30 years, monthly contributions with growth, a real target, yearly
/// percentiles. The same file is the first example of the README.
pub const STANDARD_GOAL: &str = include_str!("../../examples/accumulation-30y.json");

#[derive(Serialize)]
pub struct BenchReport {
    pub goal: &'static str,
    pub paths: u64,
    pub months: u32,
    pub engine: Timing,
    pub numpy: Option<Timing>,
    /// Engine path-steps/s over NumPy's.
    pub speedup_over_numpy: Option<f64>,
    /// The same goal under Student-t months (`--student-t DF`), timed in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub student_t: Option<ModelTiming>,
    /// The same goal in a two-regime market (`--regimes`), timed in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regimes: Option<ModelTiming>,
    /// The same goal under AR(1) inflation (`--inflation`), timed in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inflation: Option<ModelTiming>,
    /// The same goal bootstrapped from the synthetic history (`--bootstrap`), timed in the
    /// same run: with the history's inflation (a price index per path, real fan chart), and
    /// without its inflation column (§1's deterministic rate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<ModelTiming>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_without_inflation: Option<ModelTiming>,
    /// The same goal in five assets (`--per-asset`), timed in the same run: rebalanced
    /// monthly (one portfolio) and per asset under annual rebalancing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub five_assets_monthly: Option<ModelTiming>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub five_assets_annual: Option<ModelTiming>,
}

/// `--per-asset`'s market: five correlated asset classes, the standard goal's inflation kept.
pub(crate) const BENCH_FIVE_ASSETS: &str = r#"{
    "assets": [
        {"name": "US stocks", "expected_return": 0.075, "volatility": 0.16},
        {"name": "international stocks", "expected_return": 0.08, "volatility": 0.19},
        {"name": "bonds", "expected_return": 0.035, "volatility": 0.06},
        {"name": "real estate", "expected_return": 0.065, "volatility": 0.18},
        {"name": "cash", "expected_return": 0.02, "volatility": 0.01}
    ],
    "weights": [0.35, 0.2, 0.3, 0.1, 0.05],
    "correlations": [
        [1.0, 0.75, 0.1, 0.6, 0.0],
        [0.75, 1.0, 0.1, 0.55, 0.0],
        [0.1, 0.1, 1.0, 0.2, 0.1],
        [0.6, 0.55, 0.2, 1.0, 0.0],
        [0.0, 0.0, 0.1, 0.0, 1.0]
    ]
}"#;

/// `--regimes`' chain: calm (the standard goal's own market) and a crisis.
const BENCH_REGIMES: &str = r#"{"kind": "regime",
    "regimes": [{"name": "calm"}, {"name": "crisis", "expected_return": -0.1, "volatility": 0.35}],
    "transition": [[0.97, 0.03], [0.15, 0.85]]}"#;

/// `--inflation`'s model: a 2.5% mean, 1.5% uncertain, shocks against markets.
pub(crate) const BENCH_INFLATION: &str = r#"{"kind": "ar1", "mean": 0.025, "volatility": 0.015,
    "correlation": -0.2}"#;

/// `--bootstrap`'s history: the synthetic one the examples ship (benches/make_history.py).
const BENCH_HISTORY: &str = include_str!("../../examples/history-synthetic.csv");

/// The benches' history (examples/history-synthetic.csv), with or without its inflation.
pub fn bench_history(inflation: bool) -> Result<History> {
    let mut history = History::from_csv(BENCH_HISTORY).context("the bench's history")?;
    if !inflation {
        history.months.iter_mut().for_each(|m| m.inflation = None);
    }
    Ok(history)
}

/// A market model's timings beside the lognormal's of the same run.
#[derive(Serialize)]
pub struct ModelTiming {
    pub model: serde_json::Value,
    pub engine: Timing,
    pub numpy: Option<Timing>,
    /// The model's engine path-steps/s over the lognormal's.
    pub over_lognormal: f64,
    /// The model's engine path-steps/s over NumPy's of the same model.
    pub speedup_over_numpy: Option<f64>,
    /// A peer planner's generator of the same model, timed in the same run, where one exists
    /// outside its plans (regimes: `benches/monteplan_regimes.py`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerTiming>,
}

/// A peer's timing and the engine's lead over it.
#[derive(Serialize)]
pub struct PeerTiming {
    /// What was timed, e.g. monteplan 0.6.0's `RegimeSwitchingReturns.sample` (returns only).
    pub what: String,
    pub paths: u64,
    pub seconds: f64,
    pub path_steps_per_second: f64,
    /// The engine's path-steps/s (a whole goal) over the peer's.
    pub engine_over_peer: f64,
}

#[derive(Serialize)]
pub struct Timing {
    pub backend: String,
    pub paths: u64,
    /// Median wall time of one simulation, reductions included.
    pub seconds: f64,
    pub path_steps_per_second: f64,
}

pub fn run(
    engine: &Engine,
    args: &BenchArgs,
    paths: Option<u64>,
    seed: Option<u64>,
) -> Result<BenchReport> {
    let mut request: GoalRequest =
        serde_json::from_str(STANDARD_GOAL).context("the standard goal")?;
    request.options.paths = Some(paths.unwrap_or(1_000_000));
    if let Some(seed) = seed {
        request.options.seed = seed;
    }
    let months = request.goal.horizon_months;
    let info = engine.backend().info();
    eprintln!(
        "engine: {} on {} ({} threads)",
        info.name, info.device, info.parallelism
    );

    let (engine_timing, numpy) = time_both(engine, args, &request)?;
    let speedup = numpy
        .as_ref()
        .map(|n| engine_timing.path_steps_per_second / n.path_steps_per_second);
    if let Some(s) = speedup {
        eprintln!("engine / numpy: {s:.1}×");
    }
    // Each model on the same goal, beside the lognormal's timing of this run.
    let time_market = |label: &str, model: serde_json::Value, set: &dyn Fn(&mut GoalRequest)| {
        let mut request = request.clone();
        set(&mut request);
        eprintln!("{label}:");
        let (timing, numpy) = time_both(engine, args, &request)?;
        let over_lognormal = timing.path_steps_per_second / engine_timing.path_steps_per_second;
        let speedup = numpy
            .as_ref()
            .map(|n| timing.path_steps_per_second / n.path_steps_per_second);
        eprintln!("{label} / lognormal: {over_lognormal:.2}×");
        Ok::<_, anyhow::Error>(ModelTiming {
            model,
            engine: timing,
            numpy,
            over_lognormal,
            speedup_over_numpy: speedup,
            peer: None,
        })
    };
    let time_model = |model: ReturnModel, label: &str| {
        let json = serde_json::to_value(&model)?;
        time_market(label, json, &|r| r.market.model = model.clone())
    };
    let student_t = args
        .student_t
        .map(|df| {
            time_model(
                ReturnModel::StudentT { df },
                &format!("Student-t months, ν = {df}"),
            )
        })
        .transpose()?;
    let regimes = if args.regimes {
        let model = serde_json::from_str(BENCH_REGIMES).context("the bench's regimes")?;
        let mut timing = time_model(model, "regimes (calm, crisis)")?;
        if !args.no_numpy {
            let paths = args.numpy_paths.unwrap_or(request.options.paths());
            let peer = monteplan_regimes(args, paths, months, &timing.engine)?;
            eprintln!(
                "monteplan's regime returns: {:.3e} path-steps/s; the engine's goal {:.0}× that",
                peer.path_steps_per_second, peer.engine_over_peer
            );
            timing.peer = Some(peer);
        }
        Some(timing)
    } else {
        None
    };
    let inflation = if args.inflation {
        let model: Inflation =
            serde_json::from_str(BENCH_INFLATION).context("the bench's inflation")?;
        let json = serde_json::to_value(model)?;
        Some(time_market("AR(1) inflation", json, &|r| {
            r.market.inflation = model
        })?)
    } else {
        None
    };
    let (bootstrap, bootstrap_without_inflation) = if args.bootstrap {
        let history = bench_history(true)?;
        let time_history = |history: History, label: &str, described: &str| {
            // Without the history's inflation the goal keeps its own deterministic rate.
            let keeps_rate = !history.has_inflation();
            let model = ReturnModel::Bootstrap {
                history: HistorySource::Inline(history),
                block_months: 60,
                method: BlockMethod::Stationary,
            };
            // Described, not inlined: the report names the history rather than printing it.
            let json = serde_json::json!({"kind": "bootstrap", "history": described,
                "block_months": 60, "method": "stationary", "weights": [0.6, 0.4]});
            time_market(label, json, &|r| {
                let inflation = r.market.inflation;
                r.market = Market {
                    weights: Some(vec![0.6, 0.4]),
                    model: model.clone(),
                    ..Market::default()
                };
                if keeps_rate {
                    r.market.inflation = inflation;
                }
            })
        };
        let nominal = bench_history(false)?;
        (
            Some(time_history(
                history,
                "bootstrap (stationary, 60 months)",
                "examples/history-synthetic.csv (600 months, with inflation)",
            )?),
            Some(time_history(
                nominal,
                "bootstrap without the history's inflation",
                "examples/history-synthetic.csv without its inflation column",
            )?),
        )
    } else {
        (None, None)
    };
    let (five_assets_monthly, five_assets_annual) = if args.per_asset {
        let market: Market =
            serde_json::from_str(BENCH_FIVE_ASSETS).context("the bench's five assets")?;
        let time_rule = |rebalancing: Rebalancing, label: &str| {
            let mut json = serde_json::from_str::<serde_json::Value>(BENCH_FIVE_ASSETS)?;
            json["rebalancing"] = serde_json::to_value(rebalancing)?;
            time_market(label, json, &|r| {
                r.market = Market {
                    inflation: r.market.inflation,
                    rebalancing,
                    ..market.clone()
                };
            })
        };
        (
            Some(time_rule(
                Rebalancing::Monthly,
                "five assets rebalanced monthly (one portfolio)",
            )?),
            Some(time_rule(
                Rebalancing::Annual,
                "five assets, per-asset paths, annual rebalancing",
            )?),
        )
    } else {
        (None, None)
    };
    Ok(BenchReport {
        goal: "standard: 30 years, contributions growing 3%/yr, real target, yearly percentiles",
        paths: request.options.paths(),
        months,
        engine: engine_timing,
        numpy,
        speedup_over_numpy: speedup,
        student_t,
        regimes,
        inflation,
        bootstrap,
        bootstrap_without_inflation,
        five_assets_monthly,
        five_assets_annual,
    })
}

/// The engine's median time on `request` (after a warm-up run), and the NumPy reference's
/// unless `--no-numpy`.
fn time_both(
    engine: &Engine,
    args: &BenchArgs,
    request: &GoalRequest,
) -> Result<(Timing, Option<Timing>)> {
    let months = request.goal.horizon_months;
    let mut warm = request.clone();
    warm.options.paths = Some(warm.options.paths().min(20_000));
    // The backend that ran it, as the result names it (an engine on a GPU runs per-asset
    // goals on the CPU and says so).
    let backend = engine.simulate(&warm)?.backend;
    let mut times = Vec::with_capacity(args.repeat.max(1));
    for _ in 0..args.repeat.max(1) {
        let start = Instant::now();
        let result = engine.simulate(request)?;
        times.push(start.elapsed().as_secs_f64());
        std::hint::black_box(result);
    }
    times.sort_by(f64::total_cmp);
    let seconds = times[times.len() / 2];
    let steps = request.options.paths() as f64 * f64::from(months);
    let engine_timing = Timing {
        backend,
        paths: request.options.paths(),
        seconds,
        path_steps_per_second: steps / seconds,
    };
    eprintln!(
        "engine: {:.3e} path-steps/s ({seconds:.3} s per run)",
        engine_timing.path_steps_per_second
    );
    let numpy = if args.no_numpy {
        None
    } else {
        let numpy_paths = args.numpy_paths.unwrap_or(request.options.paths());
        let timing = numpy_reference(args, request, numpy_paths)?;
        eprintln!(
            "numpy:  {:.3e} path-steps/s ({:.3} s per run)",
            timing.path_steps_per_second, timing.seconds
        );
        Some(timing)
    };
    Ok((engine_timing, numpy))
}

/// monteplan's regime-switching return generator on the bench's chain
/// (`benches/monteplan_regimes.py`): `paths` × `months`, median of 3, beside `engine`'s timing.
fn monteplan_regimes(
    args: &BenchArgs,
    paths: u64,
    months: u32,
    engine: &Timing,
) -> Result<PeerTiming> {
    let script = "benches/monteplan_regimes.py";
    let report = python_json(
        args,
        &[
            script,
            "--paths",
            &paths.to_string(),
            "--months",
            &months.to_string(),
        ],
        None,
    )
    .context("monteplan's regime generator (pip install -r benches/requirements-bench.txt)")?;
    let number = |key: &str| {
        report[key]
            .as_f64()
            .with_context(|| format!("{script} reported no {key}"))
    };
    let path_steps_per_second = number("path_steps_per_second")?;
    Ok(PeerTiming {
        what: format!(
            "monteplan {}: RegimeSwitchingReturns.sample (returns only)",
            report["monteplan_version"].as_str().unwrap_or("?")
        ),
        paths,
        seconds: number("seconds")?,
        path_steps_per_second,
        engine_over_peer: engine.path_steps_per_second / path_steps_per_second,
    })
}

/// Run `args.python` with `arguments` (and `stdin`, when given) and read the JSON object it
/// prints.
fn python_json(
    args: &BenchArgs,
    arguments: &[&str],
    stdin: Option<&[u8]>,
) -> Result<serde_json::Value> {
    let mut child = Command::new(&args.python)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} {}", args.python, arguments.join(" ")))?;
    let mut input = child.stdin.take().context("the child's stdin")?;
    if let Some(bytes) = stdin {
        input.write_all(bytes)?;
    }
    drop(input);
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "{} {} failed ({})",
            args.python,
            arguments.join(" "),
            output.status
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("the JSON of {}", arguments.join(" ")))
}

fn numpy_reference(args: &BenchArgs, request: &GoalRequest, paths: u64) -> Result<Timing> {
    let reference = args.reference.to_string_lossy();
    let report = python_json(
        args,
        &[&reference, "-", "--paths", &paths.to_string()],
        Some(serde_json::to_string(request)?.as_bytes()),
    )
    .context("the NumPy reference (is numpy installed? pip install numpy)")?;
    let seconds = report["seconds"]
        .as_f64()
        .context("the reference reported no seconds")?;
    Ok(Timing {
        backend: "numpy".into(),
        paths,
        seconds,
        path_steps_per_second: paths as f64 * f64::from(request.goal.horizon_months) / seconds,
    })
}
