//! `sextant-bench --suite sampler`: what each sampler of docs/model.md §6 buys, side by side
//! in one run, on the standard goal, a drawdown that depletes and a glide path:
//!
//! - the **variance reduction factor** of the success probability: Philox's variance over
//!   the sampler's, each the sample variance of the estimate over `--sampler-seeds` seeds at
//!   the same paths (`--sampler-paths`, default 16 × 1,024);
//! - the **time to a standard error** of `--sampler-precision` (0.005) on success: one
//!   precision request per sampler, its wall time (median of `--sampler-repeat`), the paths
//!   its last round used and every round's together, and its speed against Philox's.

use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{json, Value};
use sextant_engine::{Engine, GoalRequest};

#[derive(clap::Args)]
pub struct SamplerArgs {
    /// Seeds per sampler for the variance reduction.
    #[arg(long, default_value_t = 100)]
    sampler_seeds: u64,
    /// Paths per run for the variance reduction.
    #[arg(long, default_value_t = 16 * 1024)]
    sampler_paths: u64,
    /// The standard error of success the timed requests ask for.
    #[arg(long, default_value_t = 0.005)]
    sampler_precision: f64,
    /// Timed runs of each precision request; the median is reported.
    #[arg(long, default_value_t = 5)]
    sampler_repeat: usize,
}

const SAMPLERS: [&str; 3] = ["philox", "antithetic", "sobol"];

/// The goals measured: (name, request).
fn cases() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "standard goal (30 years of saving)",
            include_str!("../../examples/accumulation-30y.json"),
        ),
        (
            "retirement drawdown (30 years)",
            include_str!("../../examples/retirement-drawdown.json"),
        ),
        (
            "glide path (40 years)",
            include_str!("../../examples/glide-path.json"),
        ),
    ]
}

#[derive(Serialize)]
pub struct SamplerReport {
    pub seeds: u64,
    pub paths: u64,
    pub precision: f64,
    pub threads: usize,
    pub rows: Vec<Row>,
}

#[derive(Serialize)]
pub struct Row {
    pub case: String,
    pub sampler: String,
    /// The backend that ran the precision request, as its result names it (a GPU backend's
    /// engine runs a sampler its kernels lack on the CPU and says so).
    pub backend: String,
    /// Mean success estimate over the seeds.
    pub mean_success: f64,
    /// Sample variance of the success estimate over the seeds.
    pub variance: f64,
    /// Philox's variance over this sampler's.
    pub variance_reduction: f64,
    /// Root mean square of the standard errors the results reported.
    pub reported_standard_error: f64,
    /// The seeds' standard deviation of the estimate (what the reported error should match).
    pub seed_spread: f64,
    /// The precision request: median wall seconds, paths of its last round and of every
    /// round, its standard error, and Philox's seconds over this sampler's.
    pub precision_seconds: f64,
    pub precision_paths: u64,
    pub precision_paths_simulated: u64,
    pub precision_standard_error: f64,
    pub speedup_to_precision: f64,
}

pub fn run(engine: &Engine, args: &SamplerArgs) -> Result<SamplerReport> {
    let mut rows = Vec::new();
    for (case, text) in cases() {
        let base: Value = serde_json::from_str(text).context(case)?;
        let mut case_rows: Vec<Row> = Vec::new();
        for sampler in SAMPLERS {
            let requests: Vec<GoalRequest> = (0..args.sampler_seeds)
                .map(|seed| {
                    let mut r = base.clone();
                    r["options"] = json!({"paths": args.sampler_paths, "seed": 1000 + seed,
                                          "sampler": sampler, "percentiles": []});
                    serde_json::from_value(r)
                })
                .collect::<Result<_, _>>()?;
            let results = engine.simulate_batch(&requests)?;
            let n = results.len() as f64;
            let mean = results.iter().map(|r| r.success_probability).sum::<f64>() / n;
            let variance = results
                .iter()
                .map(|r| (r.success_probability - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            let reported = (results
                .iter()
                .map(|r| r.standard_error.powi(2))
                .sum::<f64>()
                / n)
                .sqrt();

            let mut timed = base.clone();
            timed["options"] = json!({"sampler": sampler, "seed": 7,
                "precision": {"success_probability": args.sampler_precision}});
            let timed: GoalRequest = serde_json::from_value(timed)?;
            let mut seconds = Vec::new();
            let mut last = None;
            for _ in 0..args.sampler_repeat.max(1) {
                let start = Instant::now();
                last = Some(engine.simulate(&timed)?);
                seconds.push(start.elapsed().as_secs_f64());
            }
            seconds.sort_by(f64::total_cmp);
            let last = last.expect("one run at least");
            let report = last
                .sampling
                .as_ref()
                .and_then(|s| s.precision.clone())
                .context("a precision request reports its rounds")?;
            case_rows.push(Row {
                case: case.to_string(),
                sampler: sampler.to_string(),
                backend: last.backend.clone(),
                mean_success: mean,
                variance,
                variance_reduction: f64::NAN,
                reported_standard_error: reported,
                seed_spread: variance.sqrt(),
                precision_seconds: seconds[seconds.len() / 2],
                precision_paths: last.paths,
                precision_paths_simulated: report.paths_simulated,
                precision_standard_error: last.standard_error,
                speedup_to_precision: f64::NAN,
            });
        }
        let (philox_variance, philox_seconds) =
            (case_rows[0].variance, case_rows[0].precision_seconds);
        for row in &mut case_rows {
            row.variance_reduction = philox_variance / row.variance;
            row.speedup_to_precision = philox_seconds / row.precision_seconds;
        }
        rows.extend(case_rows);
    }
    Ok(SamplerReport {
        seeds: args.sampler_seeds,
        paths: args.sampler_paths,
        precision: args.sampler_precision,
        threads: rayon::current_num_threads(),
        rows,
    })
}
