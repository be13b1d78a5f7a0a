//! The CPU backend: the reference implementation of docs/model.md §1, and a fast one.
//!
//! Paths are simulated in blocks of [`BLOCK_PATHS`]; a block is cut into lane groups of
//! [`LANES`] paths whose state (wealth, depletion month) lives in fixed-size arrays, so every
//! step — Philox, Box-Muller, `exp`, the cash-flow update — is a loop over lanes that LLVM
//! vectorises. The block kernel is compiled for AVX-512 and for AVX2 (each with Philox and the
//! wealth update in that set's intrinsics) and as portable code (SSE4.1); the widest the CPU
//! has is picked at run time ([`CpuKernel`]), so a plain `cargo build --release` is the fast
//! build on any x86-64; all compute the same bits.
//!
//! Rayon spreads blocks over threads. Results are bit-identical for any thread count and any
//! chunk size: random numbers depend only on (seed, path, month); floating sums are taken per
//! block in a fixed order and then over blocks in block order; counts are integers; percentiles
//! are exact order statistics ([`crate::quantile`]).
//!
//! Memory stays bounded: no goal holds paths × snapshots values unless it is small. A goal of
//! up to 2¹⁶ paths keeps every value and selects its percentiles from them. A larger one first
//! simulates a pilot sample of its paths (every `stride`-th: the same numbers the main pass
//! will draw for them, since Philox is counter-based), brackets each percentile from it, and
//! then makes one pass over all paths that counts against the brackets and keeps only the
//! few values inside them. So 10⁷ paths × 1200 months need per-thread block buffers, the
//! sample and the bracketed values, and one pass plus a 2.6% pilot.
//!
//! The module is laid out by job: [`plan`] decides how a goal is reduced (whole sample or
//! pilot brackets); [`pass`] runs the pilot, the main pass and any re-tally over blocks;
//! [`reduce`] folds a simulated block into counts, sums and tallies; [`kernel`] is the block
//! kernel itself (the month loop over lane groups, portable build); [`x86`] instantiates it
//! with AVX2 and AVX-512 intrinsics. This file holds the backend, its kernel choice and the
//! constants they share.

mod assets;
mod kernel;
mod pass;
mod plan;
mod reduce;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use rayon::prelude::*;

use super::{BackendError, BackendInfo, Detail, SimulationBackend, Summary, Watch};
use crate::philox;
use crate::plan::simulate::simulate_plan_on;
use crate::plan::{PlanSamples, PreparedPlan, Yearly};
use crate::validate::PreparedGoal;
use kernel::{affine_block_portable, simulate_block, AffineJob, PathRange};
use plan::{Plan, BRACKET_MARGIN, WHOLE_SAMPLE_PATHS};
use reduce::BlockBuffers;
#[cfg(target_arch = "x86_64")]
use x86::{affine_block_avx2, affine_block_avx512};

pub(crate) use assets::PortfolioLanes;
pub(crate) use kernel::{LaneKernel, MarketLanes, PortableLanes};
pub(crate) use reduce::median_of_histogram;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2Lanes, Avx512Lanes};

/// Paths per block: the unit of work and of floating-point summation.
pub const BLOCK_PATHS: usize = 1024;
/// Paths per lane group: the width of the kernel's arrays.
pub const LANES: usize = 16;
/// Marker of a path that was never depleted.
const NOT_DEPLETED: f64 = -1.0;

/// The rayon CPU backend.
#[derive(Debug, Clone)]
pub struct CpuBackend {
    /// Blocks per rayon task (at least one): changes speed, never results.
    chunk_blocks: usize,
    /// A dedicated pool, or the global one.
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
    /// Goals with more paths than this bracket their percentiles from a sample.
    whole_sample_paths: u64,
    /// Half-width of the percentile brackets, in binomial standard deviations.
    bracket_margin: f64,
    /// The instruction set of the block kernels (always one this CPU supports).
    kernel: CpuKernel,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// On rayon's global pool, four blocks per task.
    pub fn new() -> Self {
        CpuBackend {
            chunk_blocks: 4,
            pool: None,
            whole_sample_paths: WHOLE_SAMPLE_PATHS,
            bracket_margin: BRACKET_MARGIN,
            kernel: CpuKernel::widest(),
        }
    }

    /// On a pool of its own with `threads` threads.
    pub fn with_threads(threads: usize) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .expect("building a rayon pool");
        CpuBackend {
            pool: Some(std::sync::Arc::new(pool)),
            ..Self::new()
        }
    }

    /// Group `paths` paths per rayon task (rounded up to whole blocks).
    pub fn with_chunk_paths(mut self, paths: usize) -> Self {
        self.chunk_blocks = paths.div_ceil(BLOCK_PATHS).max(1);
        self
    }

    /// Brackets of ± `sigmas` binomial standard deviations around each sampled percentile.
    /// Narrow brackets miss more often and cost another pass; results never change.
    pub fn with_bracket_margin(mut self, sigmas: f64) -> Self {
        self.bracket_margin = sigmas.max(0.0);
        self
    }

    /// Select percentiles from every path only up to `paths` paths, and bracket them from a
    /// sample above. Changes memory and speed, never results.
    pub fn with_whole_sample_paths(mut self, paths: u64) -> Self {
        self.whole_sample_paths = paths;
        self
    }

    /// Run the block kernels compiled for `kernel` instead of the widest the CPU has (to
    /// compare them: every kernel computes the same bits). An error when the CPU lacks it.
    pub fn with_kernel(mut self, kernel: CpuKernel) -> Result<Self, BackendError> {
        if !kernel.is_supported() {
            return Err(BackendError::Unavailable {
                kind: super::BackendKind::Cpu,
                reason: format!("this CPU lacks the instructions of the {kernel} kernel"),
            });
        }
        self.kernel = kernel;
        Ok(self)
    }

    /// The instruction set of the block kernels.
    pub fn kernel(&self) -> CpuKernel {
        self.kernel
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    }
}

impl SimulationBackend for CpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "cpu",
            device: format!("{} CPU, {} kernel", std::env::consts::ARCH, self.kernel),
            parallelism: self.threads(),
        }
    }

    fn simulate(
        &self,
        batch: &[PreparedGoal],
        detail: Detail,
    ) -> Result<Vec<Summary>, BackendError> {
        Ok(self.simulate_batch(batch, detail))
    }

    fn terminal_wealth(&self, goal: &PreparedGoal) -> Vec<f64> {
        self.terminal_wealth_of(goal)
    }

    fn simulate_watched(
        &self,
        batch: &[PreparedGoal],
        detail: Detail,
        watch: &Watch,
    ) -> Result<Vec<Summary>, BackendError> {
        let summaries = self.simulate_batch_watched(batch, detail, watch);
        if watch.is_cancelled() {
            return Err(BackendError::Cancelled);
        }
        Ok(summaries)
    }

    fn plan_kernel(&self) -> Result<(), String> {
        Ok(())
    }

    fn simulate_plans(
        &self,
        plans: &[PreparedPlan],
        yearly: Yearly,
        watch: &Watch,
    ) -> Result<Vec<PlanSamples>, BackendError> {
        // The plans side by side, each plan's paths in parallel within.
        let run = || {
            plans
                .par_iter()
                .map(|plan| simulate_plan_on(plan, watch, self.kernel, yearly))
                .collect()
        };
        match &self.pool {
            Some(pool) => pool.install(run),
            None => run(),
        }
    }
}

impl CpuBackend {
    /// [`SimulationBackend::simulate`], which cannot fail on the CPU.
    pub fn simulate_batch(&self, batch: &[PreparedGoal], detail: Detail) -> Vec<Summary> {
        self.simulate_batch_watched(batch, detail, &Watch::default())
    }

    /// [`CpuBackend::simulate_batch`] reporting each block to `watch`; once it is cancelled,
    /// the remaining blocks are skipped and the summaries are meaningless.
    fn simulate_batch_watched(
        &self,
        batch: &[PreparedGoal],
        detail: Detail,
        watch: &Watch,
    ) -> Vec<Summary> {
        self.install(|| {
            batch
                .par_iter()
                .map(|goal| {
                    let plan = Plan::new(goal, detail, self.whole_sample_paths, self.kernel);
                    self.simulate_goal(goal, &plan, watch)
                })
                .collect()
        })
    }

    /// [`SimulationBackend::terminal_wealth`].
    pub fn terminal_wealth_of(&self, goal: &PreparedGoal) -> Vec<f64> {
        self.install(|| {
            let months = goal.snapshot_columns(vec![goal.horizon]);
            let column = goal.success_column(months.len()) * BLOCK_PATHS;
            let n = goal.paths as usize;
            let mut out = vec![0.0; n];
            out.par_chunks_mut(BLOCK_PATHS)
                .enumerate()
                .with_min_len(self.chunk_blocks)
                .for_each_init(
                    || BlockBuffers::new(months.len()),
                    |buf, (b, dest)| {
                        let paths = PathRange::contiguous(b * BLOCK_PATHS, dest.len());
                        simulate_block(
                            self.kernel,
                            goal,
                            &months,
                            paths,
                            &mut buf.snapshots,
                            &mut buf.depletion,
                        );
                        dest.copy_from_slice(&buf.snapshots[column..column + dest.len()]);
                    },
                );
            out
        })
    }
}

impl CpuBackend {
    /// Per path, terminal wealth at the goal's contributions and the terminal wealth of the
    /// contribution schedule `unit` alone (see [`kernel::affine_lanes`]). The goal must have no
    /// withdrawals (then no path depletes and wealth is affine in the contributions).
    pub fn affine_terminal(&self, goal: &PreparedGoal, unit: &[f64]) -> (Vec<f64>, Vec<f64>) {
        assert!(
            goal.withdrawal.iter().all(|&d| d == 0.0) && unit.len() == goal.horizon as usize,
            "the affine pass needs a goal without withdrawals and a unit schedule per month"
        );
        if goal.asset_paths.is_some() || goal.sampler != crate::sampler::PathSampler::Philox {
            // Per-asset paths, and the samplers other than Philox, have no affine kernel: the
            // goal, and its unit schedule from nothing, each simulated (under a calendar rule
            // W_T is affine in the contributions, so these are the same two tracks).
            let mut from_nothing = goal.clone();
            from_nothing.initial_wealth = 0.0;
            from_nothing.contribution = unit.to_vec();
            return (
                self.terminal_wealth_of(goal),
                self.terminal_wealth_of(&from_nothing),
            );
        }
        let keys = philox::round_keys(philox::key_of_seed(goal.seed));
        let n = goal.paths as usize;
        let blocks = n.div_ceil(BLOCK_PATHS);
        let run = |b: usize| {
            let first = b * BLOCK_PATHS;
            let count = BLOCK_PATHS.min(n - first);
            let job = AffineJob {
                goal,
                unit,
                keys,
                first,
                count,
            };
            let padded = count.next_multiple_of(LANES);
            let (mut w, mut u) = (vec![0.0; padded], vec![0.0; padded]);
            match self.kernel {
                // SAFETY: a backend's kernel is one the CPU supports (`with_kernel` checks).
                #[cfg(target_arch = "x86_64")]
                CpuKernel::Avx512 => unsafe { affine_block_avx512(&job, &mut w, &mut u) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                CpuKernel::Avx2 => unsafe { affine_block_avx2(&job, &mut w, &mut u) },
                _ => affine_block_portable(&job, &mut w, &mut u),
            }
            w.truncate(count);
            u.truncate(count);
            (w, u)
        };
        // Goals this small are one or two blocks: the caller parallelises across goals.
        let mut wealth = Vec::with_capacity(n);
        let mut per_unit = Vec::with_capacity(n);
        for b in 0..blocks {
            let (w, u) = run(b);
            wealth.extend_from_slice(&w);
            per_unit.extend_from_slice(&u);
        }
        (wealth, per_unit)
    }
}

/// The instruction set a CPU block kernel is compiled for. Every kernel computes the same
/// bits (none fuses multiply-adds); they differ only in speed. A backend takes the widest the
/// CPU has ([`CpuKernel::widest`]), so a plain `cargo build --release` is the fast build on
/// any x86-64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuKernel {
    /// AVX-512 (F, BW, VL, DQ): a lane group per register; Philox and the wealth update in
    /// AVX-512 intrinsics, the rest vectorised by LLVM.
    Avx512,
    /// AVX2: Philox (AVX2 has no eight-lane 32×32→64 multiply that LLVM would find) and the
    /// wealth update in AVX2 intrinsics, the rest vectorised by LLVM.
    Avx2,
    /// Portable Rust, vectorised by LLVM for SSE4.1 where the CPU has it.
    Portable,
}

impl CpuKernel {
    /// Every kernel, widest first.
    pub const ALL: [CpuKernel; 3] = [CpuKernel::Avx512, CpuKernel::Avx2, CpuKernel::Portable];

    /// The widest kernel this CPU supports.
    pub fn widest() -> CpuKernel {
        Self::ALL
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(CpuKernel::Portable)
    }

    /// Whether this CPU has the kernel's instructions.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            CpuKernel::Avx512 => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512dq")
            }
            #[cfg(target_arch = "x86_64")]
            CpuKernel::Avx2 => std::is_x86_feature_detected!("avx2"),
            CpuKernel::Portable => true,
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The kernel's name, as `--cpu-kernel` takes it.
    pub fn name(self) -> &'static str {
        match self {
            CpuKernel::Avx512 => "avx512",
            CpuKernel::Avx2 => "avx2",
            CpuKernel::Portable => "portable",
        }
    }
}

impl std::fmt::Display for CpuKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CpuKernel {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                format!("unknown CPU kernel {name:?}: expected avx512, avx2 or portable")
            })
    }
}
