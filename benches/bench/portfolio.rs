//! `sextant-bench --suite portfolio`: the frontier side's three speed goals, each beside its
//! baseline in the same command (the machines are shared and noisy, so only ratios hold):
//!
//! 1. a 100-point long-only frontier of 50 assets (`benches/frontier-50.json`) on one thread,
//!    beside PyPortfolioOpt's `efficient_return` once per point (`benches/frontier_reference.py`);
//! 2. 10,000 resampled frontiers of 20 assets (`benches/frontier-20.json`) on every thread;
//! 3. the goal sweep of 100 frontier points × 10,000 paths × 360 months, beside the engine's
//!    own throughput on a batch of the same size (100 standard goals × 10,000 paths).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sextant_engine::frontier::resample::{averaged_weights, ResampleOptions};
use sextant_engine::frontier::FrontierRequest;
use sextant_engine::sweep::SweepRequest;
use sextant_engine::{validate, Engine, GoalRequest};

use crate::engine::STANDARD_GOAL;

#[derive(clap::Args)]
pub struct PortfolioArgs {
    /// The 50-asset frontier problem.
    #[arg(long, default_value = "benches/frontier-50.json")]
    frontier: PathBuf,
    /// The 20-asset problem for resampling.
    #[arg(long, default_value = "benches/frontier-20.json")]
    resample_problem: PathBuf,
    /// Resampled frontiers.
    #[arg(long, default_value_t = 10_000)]
    resamples: u32,
    /// Skip the PyPortfolioOpt baseline.
    #[arg(long)]
    no_pypfopt: bool,
    /// The cvxpy solver PyPortfolioOpt uses (CLARABEL solves every point; OSQP, its default,
    /// fails near the top of the frontier).
    #[arg(long, default_value = "CLARABEL")]
    pypfopt_solver: String,
    /// `reuse` one EfficientFrontier across points (as its plotting does) or a `fresh` one each.
    #[arg(long, default_value = "reuse")]
    pypfopt_mode: String,
}

#[derive(Serialize)]
pub struct PortfolioReport {
    pub frontier: FrontierTiming,
    pub resampling: ResampleTiming,
    pub sweep: SweepTiming,
}

#[derive(Serialize)]
pub struct FrontierTiming {
    pub assets: usize,
    pub points: usize,
    pub corners: usize,
    /// Median over repeated runs, one thread: validation, solve and the points.
    pub seconds: f64,
    pub pypfopt: Option<serde_json::Value>,
    /// PyPortfolioOpt's seconds over ours.
    pub speedup_over_pypfopt: Option<f64>,
}

#[derive(Serialize)]
pub struct ResampleTiming {
    pub assets: usize,
    pub resamples: u32,
    pub observations: u32,
    pub points: usize,
    pub threads: usize,
    pub seconds: f64,
}

#[derive(Serialize)]
pub struct SweepTiming {
    pub points: usize,
    pub paths: u64,
    pub months: u32,
    pub seconds: f64,
    pub path_steps_per_second: f64,
    /// The engine on 100 standard goals × the same paths, in the same command.
    pub engine_batch_path_steps_per_second: f64,
    /// Sweep throughput over the engine batch's.
    pub ratio: f64,
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

pub fn run(engine: &Engine, args: &PortfolioArgs, python: &str) -> Result<PortfolioReport> {
    Ok(PortfolioReport {
        frontier: frontier(args, python)?,
        resampling: resampling(args)?,
        sweep: sweep(engine)?,
    })
}

fn frontier(args: &PortfolioArgs, python: &str) -> Result<FrontierTiming> {
    let text = std::fs::read_to_string(&args.frontier)
        .with_context(|| format!("reading {}", args.frontier.display()))?;
    let request: FrontierRequest = serde_json::from_str(&text)?;
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let (seconds, corners, points) = one_thread.install(|| -> Result<_> {
        let mut times = Vec::new();
        let mut shape = (0, 0);
        let started = Instant::now();
        while times.len() < 20 || (started.elapsed().as_secs_f64() < 2.0 && times.len() < 2000) {
            let start = Instant::now();
            let prepared = request.prepare("")?;
            let frontier = prepared.solve()?;
            let points = frontier.points(prepared.points);
            times.push(start.elapsed().as_secs_f64());
            shape = (frontier.corners().len(), points.len());
            std::hint::black_box(points);
        }
        Ok((median(times), shape.0, shape.1))
    })?;
    eprintln!(
        "frontier: {} assets, {points} points, {corners} corners: {:.3} ms",
        request.assets.len(),
        seconds * 1e3
    );
    let pypfopt = if args.no_pypfopt {
        None
    } else {
        let output = Command::new(python)
            .arg("benches/frontier_reference.py")
            .arg(&args.frontier)
            .args([
                "--solver",
                &args.pypfopt_solver,
                "--mode",
                &args.pypfopt_mode,
            ])
            .output()
            .context("starting benches/frontier_reference.py")?;
        if !output.status.success() {
            bail!(
                "the PyPortfolioOpt baseline failed ({}): {}; is it installed? \
                 (pip install PyPortfolioOpt packaging)",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let mut value: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        if let Some(map) = value.as_object_mut() {
            map.remove("variances");
        }
        Some(value)
    };
    let speedup = pypfopt
        .as_ref()
        .and_then(|v| v["seconds"].as_f64())
        .map(|s| s / seconds);
    if let Some(s) = speedup {
        eprintln!("frontier: PyPortfolioOpt / sextant = {s:.0}×");
    }
    Ok(FrontierTiming {
        assets: request.assets.len(),
        points,
        corners,
        seconds,
        pypfopt,
        speedup_over_pypfopt: speedup,
    })
}

fn resampling(args: &PortfolioArgs) -> Result<ResampleTiming> {
    let text = std::fs::read_to_string(&args.resample_problem)
        .with_context(|| format!("reading {}", args.resample_problem.display()))?;
    let request: FrontierRequest = serde_json::from_str(&text)?;
    let prepared = request.prepare("")?;
    let options = ResampleOptions {
        resamples: args.resamples,
        observations: 120,
        seed: 42,
    };
    let points = prepared.points;
    let start = Instant::now();
    let (weights, solved) = averaged_weights(&prepared.problem, &options, points);
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(weights);
    if solved != args.resamples {
        bail!("{} resamples failed", args.resamples - solved);
    }
    eprintln!(
        "resampling: {} frontiers of {} assets, {points} points: {seconds:.3} s",
        args.resamples,
        request.assets.len()
    );
    Ok(ResampleTiming {
        assets: request.assets.len(),
        resamples: args.resamples,
        observations: options.observations,
        points,
        threads: rayon::current_num_threads(),
        seconds,
    })
}

fn sweep(engine: &Engine) -> Result<SweepTiming> {
    let mut request: SweepRequest =
        serde_json::from_str(include_str!("../../examples/sweep.json")).context("the sweep")?;
    request.goal.horizon_months = 360;
    request.frontier.points = 100;
    request.options.paths = Some(10_000);
    let mut standard: GoalRequest = serde_json::from_str(STANDARD_GOAL)?;
    standard.options.paths = Some(10_000);
    let goals = vec![validate::prepare(&standard)?; 100];
    let steps = 100.0 * 10_000.0 * 360.0;
    let months = standard.goal.horizon_months;
    let batch_steps = 100.0 * 10_000.0 * f64::from(months);
    request.run(engine)?;
    let (mut sweep_times, mut batch_times) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let start = Instant::now();
        std::hint::black_box(request.run(engine)?);
        sweep_times.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        std::hint::black_box(engine.success(&goals)?);
        batch_times.push(start.elapsed().as_secs_f64());
    }
    let seconds = median(sweep_times);
    let rate = steps / seconds;
    let batch_rate = batch_steps / median(batch_times);
    eprintln!(
        "sweep: 100 points × 10,000 paths × 360 months: {seconds:.3} s, {rate:.3e} path-steps/s \
         (engine batch {batch_rate:.3e})"
    );
    Ok(SweepTiming {
        points: 100,
        paths: 10_000,
        months: 360,
        seconds,
        path_steps_per_second: rate,
        engine_batch_path_steps_per_second: batch_rate,
        ratio: rate / batch_rate,
    })
}
