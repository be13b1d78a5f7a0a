//! `sextant-bench --suite gpu`: the GPU backends checked against the CPU and timed, in one
//! command (what `benches/gpu-check.sh` runs on a lent GPU machine, from a binary built
//! elsewhere).
//!
//! Each backend is a row of its own: one that is unavailable or fails says so in its row and
//! the others still run. A software adapter (lavapipe) is checked for parity but not timed.
//!
//! Parity, on the examples at 100,000 paths (and three of them under the antithetic and
//! `sobol` samplers, [`SAMPLED`]): success probability within 1e-4 absolute, means
//! and percentiles within 1e-4 relative, depletion counts within max(2, paths / 100,000).
//! Timings: a batch of 1,000 standard goals (examples/accumulation-30y.json) × 10,000 paths,
//! full results; the same with success counts only; one 10,000-path goal end to end. The CPU
//! runs a tenth of the batch beside them, for the ratio.

use std::cell::RefCell;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use sextant_engine::backend::gpu::{self, ChunkDevice, ChunkInput, ChunkRun, Select, Tally};
use sextant_engine::backend::{Detail, SimulationBackend, Summary};
use sextant_engine::{validate, BackendKind, CpuBackend, Device, GoalRequest, PreparedGoal};

use crate::engine::STANDARD_GOAL;

/// Every goal example: an accumulation, a drawdown that depletes, a glide path, a portfolio,
/// the drawdown under Student-t months (docs/model.md §4.1), under regimes (§4.2), under
/// AR(1) inflation (§4.4), bootstrapped from the synthetic history (§4.3), and in two assets
/// rebalanced once a year (per-asset paths, §4.5).
const EXAMPLES: [&str; 9] = [
    include_str!("../../examples/accumulation-30y.json"),
    include_str!("../../examples/retirement-drawdown.json"),
    include_str!("../../examples/glide-path.json"),
    include_str!("../../examples/multi-asset.json"),
    include_str!("../../examples/fat-tails.json"),
    include_str!("../../examples/regimes.json"),
    include_str!("../../examples/inflation.json"),
    include_str!("../../examples/bootstrap.json"),
    include_str!("../../examples/rebalancing.json"),
];

/// The samplers of docs/model.md §6 in the parity check, beside the examples under Philox:
/// (example, sampler). Antithetic pairs on the drawdown (pair counts, depletions), `sobol` on
/// the two savers (its points, scramble and bridge made on the device; its paths rounded up to
/// 16 replicates of a power of two).
const SAMPLED: [(usize, &str); 3] = [(1, "antithetic"), (0, "sobol"), (2, "sobol")];

/// `sextant-bench --suite gpu`'s settings.
#[derive(clap::Args, Clone)]
pub struct GpuArgs {
    /// Standard goals in the GPU suite's timed batch (the CPU runs a tenth of them).
    #[arg(long, default_value_t = 1000)]
    pub gpu_batch: usize,
    /// The rows to run, in order: any of cuda, wgpu, cpu (benches/gpu-check.sh runs each in
    /// its own process, so that one backend's hang or crash cannot take the others' rows).
    #[arg(long, value_delimiter = ',', default_value = "cuda,wgpu,cpu")]
    pub gpu_backends: Vec<BackendKind>,
    /// Paths of each example in the parity check.
    #[arg(long, default_value_t = 100_000)]
    pub parity_paths: u64,
    /// Time a software adapter (lavapipe) as if it were a GPU; refused by default, so that a
    /// machine whose GPU driver failed to load cannot report a CPU's figures as the GPU's.
    #[arg(long)]
    pub allow_software: bool,
}

#[derive(Serialize)]
pub struct GpuReport {
    pub rows: Vec<BackendCheck>,
}

#[derive(Serialize, Default)]
pub struct BackendCheck {
    pub backend: String,
    pub device: Option<String>,
    /// Why the backend cannot run here (not built, no driver, no adapter…).
    pub unavailable: Option<String>,
    /// A failure while checking or timing it: recorded, and the suite goes on.
    pub error: Option<String>,
    pub parity: Option<Parity>,
    pub timings: Option<Timings>,
    /// Why it was not timed (a software adapter).
    pub not_timed: Option<String>,
    /// Where the timed full-results batch spends its time.
    pub phases: Option<Phases>,
}

/// Where a full-results batch spends its time on a GPU (`engine/src/backend/gpu.rs`): each of
/// the device's steps timed at the host, and the rest. Every step ends in a read-back, so its
/// wall time holds the device's work on it.
#[derive(Serialize, Default, Clone, Copy)]
pub struct Phases {
    pub total_ms: f64,
    /// The chunks' inputs uploaded and their buffers made.
    pub open_ms: f64,
    /// The first pass (outcomes, sums, histograms) and its read-back.
    pub tally_ms: f64,
    /// The histogram bins that hold each percentile's ranks.
    pub locate_ms: f64,
    /// The second pass (the values in those bins) and its read-back.
    pub collect_ms: f64,
    /// The rest, on the host: the layout, sorting each bin, the summaries.
    pub host_ms: f64,
}

impl Phases {
    pub fn line(&self) -> String {
        format!(
            "full batch: {:.1} ms = open {:.1} + tally {:.1} + locate {:.1} + collect {:.1} + host {:.1}",
            self.total_ms, self.open_ms, self.tally_ms, self.locate_ms, self.collect_ms, self.host_ms
        )
    }
}

/// A device whose steps add their wall time to `phases`.
struct TimedDevice<'a> {
    device: &'a dyn ChunkDevice,
    phases: RefCell<Phases>,
}

struct TimedRun<'a> {
    run: Box<dyn ChunkRun + 'a>,
    phases: &'a RefCell<Phases>,
}

fn timed<T>(
    slot: &RefCell<Phases>,
    field: fn(&mut Phases) -> &mut f64,
    f: impl FnOnce() -> T,
) -> T {
    let start = Instant::now();
    let out = f();
    *field(&mut slot.borrow_mut()) += start.elapsed().as_secs_f64() * 1e3;
    out
}

impl ChunkDevice for TimedDevice<'_> {
    fn max_binding(&self) -> u64 {
        self.device.max_binding()
    }

    fn open(&self, input: &ChunkInput) -> Result<Box<dyn ChunkRun + '_>, String> {
        let run = timed(&self.phases, |p| &mut p.open_ms, || self.device.open(input))?;
        Ok(Box::new(TimedRun {
            run,
            phases: &self.phases,
        }))
    }
}

impl ChunkRun for TimedRun<'_> {
    fn tally(&mut self) -> Result<Tally, String> {
        timed(self.phases, |p| &mut p.tally_ms, || self.run.tally())
    }
}

impl Select for TimedRun<'_> {
    fn locate(&mut self, queries: &[[u32; 4]]) -> Result<Vec<[u32; 4]>, String> {
        timed(
            self.phases,
            |p| &mut p.locate_ms,
            || self.run.locate(queries),
        )
    }

    fn collect(
        &mut self,
        wanted: &[[u32; 4]],
        cursors: &[u32],
        values: usize,
    ) -> Result<(Vec<u32>, Vec<f32>), String> {
        timed(
            self.phases,
            |p| &mut p.collect_ms,
            || self.run.collect(wanted, cursors, values),
        )
    }
}

/// The GPU under a device, for timing its steps; none for the CPU.
fn chunk_device(device: &Device) -> Option<&dyn ChunkDevice> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(c) => Some(c),
        #[cfg(feature = "wgpu")]
        Device::Wgpu(w) => Some(w),
        _ => None,
    }
}

/// The timed batch of full results once more, step by step: the run of median total of three.
fn phases(device: &dyn ChunkDevice, batch_goals: usize) -> Result<Phases> {
    let batch = standard_batch(batch_goals)?;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let timed = TimedDevice {
            device,
            phases: RefCell::default(),
        };
        let start = Instant::now();
        std::hint::black_box(
            gpu::simulate(&timed, &batch, Detail::Full).map_err(anyhow::Error::msg)?,
        );
        let mut p = timed.phases.into_inner();
        p.total_ms = start.elapsed().as_secs_f64() * 1e3;
        p.host_ms = p.total_ms - p.open_ms - p.tally_ms - p.locate_ms - p.collect_ms;
        runs.push(p);
    }
    runs.sort_by(|a, b| a.total_ms.total_cmp(&b.total_ms));
    Ok(runs[1])
}

#[derive(Serialize, Default)]
pub struct Parity {
    pub goals: usize,
    pub paths: u64,
    pub passed: bool,
    pub max_success_difference: f64,
    pub max_relative_difference: f64,
    pub max_depletion_difference: u64,
    /// Per-asset paths: rebalances over every path (within the depletions' slack; turnover
    /// counts in the relative difference).
    pub max_rebalances_difference: u64,
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
    let sampled = SAMPLED
        .iter()
        .map(|&(example, sampler)| (EXAMPLES[example], Some(sampler)));
    EXAMPLES
        .iter()
        .map(|&text| (text, None))
        .chain(sampled)
        .map(|(text, sampler)| {
            let mut request: GoalRequest = serde_json::from_str(text)?;
            request.options.paths = Some(paths);
            if let Some(sampler) = sampler {
                request.options.sampler = serde_json::from_value(serde_json::json!(sampler))?;
            }
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

fn parity(gpu: &[Summary], cpu: &[Summary], paths: u64) -> Parity {
    let mut p = Parity {
        goals: cpu.len(),
        paths,
        ..Parity::default()
    };
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
        let dr = g.rebalances.abs_diff(c.rebalances);
        p.max_rebalances_difference = p.max_rebalances_difference.max(dr);
        passed &= dr <= slack;
        let dt = relative(g.turnover, c.turnover);
        p.max_relative_difference = p.max_relative_difference.max(dt);
        passed &= dt <= 1e-4;
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

/// The timed batch: `batch_goals` standard goals of 10,000 paths each.
fn standard_batch(batch_goals: usize) -> Result<Vec<PreparedGoal>> {
    let mut request: GoalRequest = serde_json::from_str(STANDARD_GOAL)?;
    request.options.paths = Some(10_000);
    Ok(vec![validate::prepare(&request)?; batch_goals])
}

fn time(backend: &dyn SimulationBackend, batch_goals: usize) -> Result<Timings> {
    let batch = standard_batch(batch_goals)?;
    let goal = batch[0].clone();
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

/// The table's header, in Markdown (what benches/RESULTS.md takes as it is).
pub const TABLE_HEADER: &str = "| backend | device | parity | full path-steps/s | \
    success-only path-steps/s | one goal (ms) |\n| --- | --- | --- | --- | --- | --- |";

impl BackendCheck {
    /// The row in Markdown.
    pub fn table_row(&self) -> String {
        let device = self.device.as_deref().unwrap_or("—");
        let parity = match (&self.parity, self.backend.as_str()) {
            (Some(p), _) => format!(
                "{} ({} goals × {} paths; Δp {:.1e}, rel {:.1e}, depleted ±{})",
                if p.passed { "pass" } else { "FAIL" },
                p.goals,
                p.paths,
                p.max_success_difference,
                p.max_relative_difference,
                p.max_depletion_difference
            ),
            (None, "cpu") => "reference".into(),
            (None, _) => "—".into(),
        };
        let note = self
            .unavailable
            .as_ref()
            .map(|r| format!("unavailable: {r}"))
            .or_else(|| self.error.as_ref().map(|e| format!("ERROR: {e}")))
            .or_else(|| self.not_timed.as_ref().map(|r| format!("not timed: {r}")));
        match (&self.timings, note) {
            (Some(t), _) => format!(
                "| {} ({} goals) | {device} | {parity} | {:.3e} | {:.3e} | {:.2} |",
                self.backend,
                t.batch_goals,
                t.full_path_steps_per_second,
                t.success_path_steps_per_second,
                t.single_goal_ms
            ),
            (None, Some(note)) => {
                format!("| {} | {device} | {parity} | {note} | | |", self.backend)
            }
            (None, None) => format!("| {} | {device} | {parity} | | | |", self.backend),
        }
    }
}

/// Check and time one GPU backend; every failure lands in its row.
fn check_gpu(kind: BackendKind, args: &GpuArgs, checked: &[PreparedGoal]) -> BackendCheck {
    let mut row = BackendCheck {
        backend: kind.to_string(),
        ..BackendCheck::default()
    };
    eprintln!("[{kind}] opening");
    let device = match Device::select(kind) {
        Ok(device) => device,
        Err(e) => {
            row.unavailable = Some(e.to_string());
            return row;
        }
    };
    let backend = device.backend();
    row.device = Some(backend.info().device);
    eprintln!("[{kind}] {}", row.device.as_deref().unwrap_or(""));
    let software = matches!(&device, Device::Wgpu(w) if w.is_software());
    let mut step = || -> Result<()> {
        eprintln!(
            "[{kind}] parity: {} goals × {} paths",
            checked.len(),
            args.parity_paths
        );
        let cpu = CpuBackend::new().simulate(checked, Detail::Full)?;
        let gpu = backend.simulate(checked, Detail::Full)?;
        row.parity = Some(parity(&gpu, &cpu, args.parity_paths));
        if software && !args.allow_software {
            row.not_timed = Some(
                "a software adapter (the GPU's driver did not load; --allow-software to time it)"
                    .into(),
            );
            return Ok(());
        }
        eprintln!("[{kind}] timing {} goals × 10,000 paths", args.gpu_batch);
        row.timings = Some(time(backend, args.gpu_batch.max(1))?);
        if let Some(chunks) = chunk_device(&device) {
            let p = phases(chunks, args.gpu_batch.max(1))?;
            eprintln!("[{kind}] {}", p.line());
            row.phases = Some(p);
        }
        Ok(())
    };
    if let Err(e) = step() {
        row.error = Some(format!("{e:#}"));
    }
    row
}

pub fn run(args: &GpuArgs) -> Result<GpuReport> {
    let checked = goals(args.parity_paths)?;
    let mut rows = Vec::new();
    for &kind in &args.gpu_backends {
        let row = match kind {
            BackendKind::Cpu => {
                let batch = (args.gpu_batch / 10).max(1);
                eprintln!("[cpu] timing {batch} goals × 10,000 paths");
                let backend = CpuBackend::new();
                let mut row = BackendCheck {
                    backend: "cpu".into(),
                    device: Some(backend.info().device),
                    ..BackendCheck::default()
                };
                match time(&backend, batch) {
                    Ok(t) => row.timings = Some(t),
                    Err(e) => row.error = Some(format!("{e:#}")),
                }
                row
            }
            BackendKind::Auto => anyhow::bail!("--gpu-backends takes cuda, wgpu or cpu"),
            kind => check_gpu(kind, args, &checked),
        };
        // Each row as soon as it is measured, so that a later hang still leaves it.
        eprintln!("[{}] {}", row.backend, row.table_row());
        rows.push(row);
    }
    // The short table, last.
    eprintln!("\n{TABLE_HEADER}");
    for row in &rows {
        eprintln!("{}", row.table_row());
    }
    Ok(GpuReport { rows })
}
