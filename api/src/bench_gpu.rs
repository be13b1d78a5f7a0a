//! `sextant bench --suite gpu`: the GPU backends checked against the CPU and timed, in one
//! command (what `benches/gpu-check.sh` runs on a lent GPU machine, from a binary built
//! elsewhere).
//!
//! Parity, on the examples at 100,000 paths: success probability within 1e-4 absolute, means
//! and percentiles within 1e-4 relative, depletion counts within max(2, paths / 100,000).
//! Timings: a batch of 1,000 standard goals (examples/accumulation-30y.json) × 10,000 paths,
//! full results; the same with success counts only; one 10,000-path goal end to end. The CPU
//! runs a tenth of the batch beside them, for the ratio.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use sextant_engine::backend::{Detail, SimulationBackend, Summary};
use sextant_engine::{validate, BackendKind, CpuBackend, Device, GoalRequest, PreparedGoal};

use crate::bench::STANDARD_GOAL;

const EXAMPLES: [&str; 4] = [
    include_str!("../../examples/accumulation-30y.json"),
    include_str!("../../examples/retirement-drawdown.json"),
    include_str!("../../examples/glide-path.json"),
    include_str!("../../examples/multi-asset.json"),
];

#[derive(Serialize)]
pub struct GpuReport {
    pub backends: Vec<BackendCheck>,
    pub cpu: Timings,
}

#[derive(Serialize)]
pub struct BackendCheck {
    pub backend: String,
    pub device: Option<String>,
    pub unavailable: Option<String>,
    pub parity: Option<Parity>,
    pub timings: Option<Timings>,
}

#[derive(Serialize, Default)]
pub struct Parity {
    pub passed: bool,
    pub max_success_difference: f64,
    pub max_relative_difference: f64,
    pub max_depletion_difference: u64,
}

#[derive(Serialize, Default)]
pub struct Timings {
    pub batch_goals: usize,
    pub paths: u64,
    pub months: u32,
    /// Full results (fan chart, percentiles), path-steps per second.
    pub full_path_steps_per_second: f64,
    /// Success counts only.
    pub success_path_steps_per_second: f64,
    /// One 10,000-path goal, full result, end to end (median of 20), milliseconds.
    pub single_goal_ms: f64,
}

fn goals(paths: u64) -> Result<Vec<PreparedGoal>> {
    EXAMPLES
        .iter()
        .map(|text| {
            let mut request: GoalRequest = serde_json::from_str(text)?;
            request.options.paths = paths;
            Ok(validate::prepare(&request)?)
        })
        .collect()
}

fn relative(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs().max(1e-300)
    }
}

fn parity(gpu: &[Summary], cpu: &[Summary]) -> Parity {
    let mut p = Parity::default();
    let mut passed = true;
    for (g, c) in gpu.iter().zip(cpu) {
        let n = c.paths as f64;
        let slack = 2u64.max(c.paths / 100_000);
        let ds = (g.successes as f64 / n - c.successes as f64 / n).abs();
        p.max_success_difference = p.max_success_difference.max(ds);
        passed &= ds <= 1e-4;
        let dd = g.depleted.abs_diff(c.depleted);
        p.max_depletion_difference = p.max_depletion_difference.max(dd);
        passed &= dd <= slack;
        for (gs, cs) in g.snapshots.iter().zip(&c.snapshots) {
            let mut worst = relative(gs.mean, cs.mean);
            for (a, b) in gs.percentiles.iter().zip(&cs.percentiles) {
                if (a.1 - b.1).abs() > 1e-6 {
                    worst = worst.max(relative(a.1, b.1));
                }
            }
            p.max_relative_difference = p.max_relative_difference.max(worst);
            passed &= worst <= 1e-4;
            passed &= gs.depleted.abs_diff(cs.depleted) <= slack;
        }
    }
    p.passed = passed;
    p
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(backend: &dyn SimulationBackend, batch_goals: usize) -> Result<Timings> {
    let mut request: GoalRequest = serde_json::from_str(STANDARD_GOAL)?;
    request.options.paths = 10_000;
    let goal = validate::prepare(&request)?;
    let batch = vec![goal.clone(); batch_goals];
    let steps = batch_goals as f64 * 10_000.0 * f64::from(goal.horizon);
    let run = |detail: Detail| -> Result<f64> {
        backend.simulate(&batch[..1], detail)?;
        let mut times = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            std::hint::black_box(backend.simulate(&batch, detail)?);
            times.push(start.elapsed().as_secs_f64());
        }
        Ok(steps / median(times))
    };
    let full = run(Detail::Full)?;
    let success = run(Detail::Success)?;
    let mut single = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        std::hint::black_box(backend.simulate(std::slice::from_ref(&goal), Detail::Full)?);
        single.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timings {
        batch_goals,
        paths: 10_000,
        months: goal.horizon,
        full_path_steps_per_second: full,
        success_path_steps_per_second: success,
        single_goal_ms: median(single),
    })
}

pub fn run(batch: usize) -> Result<GpuReport> {
    let checked = goals(100_000)?;
    let cpu_backend = CpuBackend::new();
    let reference = cpu_backend.simulate(&checked, Detail::Full)?;
    let mut backends = Vec::new();
    for kind in [BackendKind::Cuda, BackendKind::Wgpu] {
        match Device::select(kind) {
            Err(e) => backends.push(BackendCheck {
                backend: kind.to_string(),
                device: None,
                unavailable: Some(e.to_string()),
                parity: None,
                timings: None,
            }),
            Ok(device) => {
                let backend = device.backend();
                let info = backend.info();
                eprintln!("{kind}: {}", info.device);
                let gpu = backend.simulate(&checked, Detail::Full)?;
                let parity = parity(&gpu, &reference);
                let timings = time(backend, batch.max(1))?;
                backends.push(BackendCheck {
                    backend: kind.to_string(),
                    device: Some(info.device),
                    unavailable: None,
                    parity: Some(parity),
                    timings: Some(timings),
                });
            }
        }
    }
    let cpu = time(&cpu_backend, (batch / 10).max(1))?;
    // The short table, last.
    eprintln!("\nbackend | parity | full path-steps/s | success-only path-steps/s | one goal (ms)");
    for b in &backends {
        match (&b.parity, &b.timings) {
            (Some(p), Some(t)) => eprintln!(
                "{} | {} (Δp {:.1e}, rel {:.1e}) | {:.3e} | {:.3e} | {:.2}",
                b.backend,
                if p.passed { "pass" } else { "FAIL" },
                p.max_success_difference,
                p.max_relative_difference,
                t.full_path_steps_per_second,
                t.success_path_steps_per_second,
                t.single_goal_ms
            ),
            _ => eprintln!(
                "{} | unavailable: {}",
                b.backend,
                b.unavailable.as_deref().unwrap_or("")
            ),
        }
    }
    eprintln!(
        "cpu ({} goals) | reference | {:.3e} | {:.3e} | {:.2}",
        cpu.batch_goals,
        cpu.full_path_steps_per_second,
        cpu.success_path_steps_per_second,
        cpu.single_goal_ms
    );
    Ok(GpuReport { backends, cpu })
}
