//! Where simulations run: one small trait, [`SimulationBackend`], and a closed enum of the
//! devices that implement it, [`Device`], in the spirit of candle's `Device`.
//!
//! A backend takes a batch of prepared goals and returns, for each, a [`Summary`]: the counts,
//! sums and percentiles that the result is built from. Reductions happen inside the backend, so
//! a GPU backend copies back only summaries, never every path. The CPU backend is always built; the WGSL and CUDA backends are behind the `wgpu` and
//! `cuda` features, with stand-ins that say so when they are not built. Each GPU backend is
//! opened on first use and at most once per process.

pub mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(not(feature = "cuda"))]
#[path = "cuda_stub.rs"]
mod cuda;
pub mod gpu;
#[cfg(feature = "cuda")]
pub mod nvrtc;
pub mod nvrtc_search;
mod report;
#[cfg(feature = "wgpu")]
mod wgpu;
#[cfg(not(feature = "wgpu"))]
#[path = "wgpu_stub.rs"]
mod wgpu;

/// The arithmetic every GPU kernel shares (Philox, the normals), as CUDA C generated at build
/// time from `shaders/common.wgsl` by sextant-kernelgen: what the CUDA backend compiles before
/// `kernels/simulate.cu`, here in every build so that tests can run it on the host.
pub const COMMON_CUDA: &str = include_str!(concat!(env!("OUT_DIR"), "/common.cu"));

/// The same arithmetic as WGSL, which the WGSL backend puts before its kernels.
pub const COMMON_WGSL: &str = include_str!("../../../shaders/common.wgsl");

/// The goal kernel's generated functions: the per-asset month (docs/model.md §4.5), the
/// tables' readers and the `sobol` sampler's path normals (§6), from `shaders/common.wgsl`,
/// `shaders/assets.wgsl` and `shaders/sobol_paths.wgsl` (wealth in f64): what the CUDA backend
/// compiles before `kernels/simulate.cu`; the tests run it on the host against
/// [`crate::rebalance::simulate_path`] and [`crate::sampler::SobolPaths`].
pub const GOAL_CUDA: &str = include_str!(concat!(env!("OUT_DIR"), "/goal.cu"));

/// The per-asset month as WGSL, which the WGSL goal kernel puts after [`COMMON_WGSL`].
pub const ASSETS_WGSL: &str = include_str!("../../../shaders/assets.wgsl");

/// The `sobol` sampler's path normals as WGSL, which the WGSL goal kernel puts after
/// [`ASSETS_WGSL`] (it reads the tables through it).
pub const SOBOL_PATHS_WGSL: &str = include_str!("../../../shaders/sobol_paths.wgsl");

/// A household plan's arithmetic and month loop (the tax, the RMDs, the spending rules,
/// `plan_path`), generated like [`COMMON_CUDA`] from `shaders/common.wgsl` followed by
/// `shaders/plan.wgsl`: what the CUDA plan kernel (`kernels/plan.cu`) follows; the tests also
/// run it on the host against the CPU's.
pub const PLAN_CUDA: &str = include_str!(concat!(env!("OUT_DIR"), "/plan.cu"));

/// The same as WGSL, after [`COMMON_WGSL`]: what the WGSL plan kernel and probes put first.
pub const PLAN_WGSL: &str = include_str!("../../../shaders/plan.wgsl");

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use thiserror::Error;

pub use self::wgpu::WgpuBackend;
pub use cpu::{CpuBackend, CpuKernel};
#[cfg(feature = "cuda")]
pub use cuda::{
    compile_plan_ptx_with as compile_cuda_plan_kernel_with, compile_ptx as compile_cuda_kernels,
    compile_ptx_with as compile_cuda_kernels_with,
};
pub use cuda::{toolchain as cuda_toolchain, CudaBackend};
pub use nvrtc_search::{nvrtc_search, set_nvrtc_search, NvrtcSearch, SearchRoots};
pub use report::{backends_report, BackendsReport};

use crate::plan::{PlanSamples, PreparedPlan, Yearly};
use crate::validate::PreparedGoal;

/// What a batch needs reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The whole result of docs/model.md §1: fan chart (yearly percentiles, means, depletion),
    /// terminal percentiles, depletion months, shortfall.
    Full,
    /// Only success and depletion counts and the terminal mean: what a solver's search needs.
    Success,
}

/// What one month of the fan chart (or the horizon) reduces to.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Months elapsed.
    pub month: u32,
    /// Mean wealth over all paths.
    pub mean: f64,
    /// Paths depleted by this month.
    pub depleted: u64,
    /// (percentile, value) in ascending order; empty for [`Detail::Success`].
    pub percentiles: Vec<(f64, f64)>,
}

/// One goal's reduced simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub paths: u64,
    /// Paths never depleted with W_T ≥ target_T.
    pub successes: u64,
    /// Paths depleted before the horizon.
    pub depleted: u64,
    /// Median depletion month over depleted paths.
    pub median_depletion_month: Option<f64>,
    /// Mean of target_T − W_T over failed paths.
    pub shortfall: Option<f64>,
    /// The yearly fan chart ending at the horizon ([`Detail::Full`]), or only the horizon.
    pub snapshots: Vec<Snapshot>,
    /// Path-months whose return a Student-t market clamped at −100% (docs/model.md §4.1),
    /// over every path and month; 0 for the lognormal.
    pub clamped_months: u64,
    /// Under per-asset paths (docs/model.md §4.5): rebalances over every path; 0 otherwise.
    pub rebalances: u64,
    /// Under per-asset paths: the turnover of every rebalance of every path, summed.
    pub turnover: f64,
    /// What the standard errors come from under the goal's sampler (docs/model.md §6).
    pub spread: crate::sampler::Spread,
}

impl Summary {
    /// The horizon's snapshot.
    pub fn terminal(&self) -> &Snapshot {
        self.snapshots
            .last()
            .expect("a summary always holds the horizon")
    }

    pub fn success_probability(&self) -> f64 {
        self.successes as f64 / self.paths as f64
    }

    /// The standard errors of the success and depletion probabilities, from the sampler's
    /// spread.
    pub fn standard_errors(&self) -> (f64, f64) {
        self.spread
            .standard_errors(self.paths, self.successes, self.depleted)
    }
}

/// A failure of the engine itself (not of the input).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BackendError {
    /// The backend was asked for but cannot run here.
    #[error("backend {kind} is unavailable: {reason}")]
    Unavailable { kind: BackendKind, reason: String },
    /// The backend failed while running (device lost, out of memory, a kernel error).
    #[error("backend {kind} failed: {reason}")]
    Failed { kind: BackendKind, reason: String },
    /// The batch was cancelled through its [`Watch`] (every caller went away).
    #[error("the batch was cancelled")]
    Cancelled,
}

/// A running batch seen from outside: the path-steps done so far (for progress), and a flag
/// that stops it early (when nobody waits for its results any more).
#[derive(Debug, Default)]
pub struct Watch {
    done: AtomicU64,
    cancelled: AtomicBool,
}

impl Watch {
    pub fn advance(&self, path_steps: u64) {
        self.done.fetch_add(path_steps, Ordering::Relaxed);
    }

    /// Path-steps done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// The backends a caller may name (`--backend`, `SEXTANT_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The best available: CUDA, then wgpu on a real GPU, then the CPU.
    Auto,
    Cpu,
    Wgpu,
    Cuda,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        })
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(BackendKind::Auto),
            "cpu" => Ok(BackendKind::Cpu),
            "wgpu" => Ok(BackendKind::Wgpu),
            "cuda" => Ok(BackendKind::Cuda),
            other => Err(format!(
                "unknown backend {other:?}: expected auto, cpu, wgpu or cuda"
            )),
        }
    }
}

/// What a backend is and can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// Echoed in results as `backend`.
    pub name: &'static str,
    /// The device in words (CPU model and threads, GPU adapter…).
    pub device: String,
    /// Worker threads or compute units.
    pub parallelism: usize,
}

/// The operations every backend offers.
pub trait SimulationBackend: Send + Sync {
    fn info(&self) -> BackendInfo;

    /// Simulate every goal of the batch and reduce each to a [`Summary`].
    fn simulate(
        &self,
        batch: &[PreparedGoal],
        detail: Detail,
    ) -> Result<Vec<Summary>, BackendError>;

    /// W_T of every path of `goal`, in path order (the solvers' per-path break-even); the real
    /// W_T / I_T when a stochastic index scales a real target (what success compares with
    /// [`PreparedGoal::success_target`]).
    fn terminal_wealth(&self, goal: &PreparedGoal) -> Vec<f64>;

    /// [`SimulationBackend::simulate`], reporting progress to `watch` and stopping early with
    /// [`BackendError::Cancelled`] when it is cancelled. By default progress comes at the end
    /// and a batch, once dispatched, runs to its end (the GPU backends); the CPU backend
    /// reports and checks after every block of paths.
    fn simulate_watched(
        &self,
        batch: &[PreparedGoal],
        detail: Detail,
        watch: &Watch,
    ) -> Result<Vec<Summary>, BackendError> {
        if watch.is_cancelled() {
            return Err(BackendError::Cancelled);
        }
        let summaries = self.simulate(batch, detail)?;
        watch.advance(batch.iter().map(PreparedGoal::path_steps).sum());
        Ok(summaries)
    }

    /// Every path of each household plan of `plans` (docs/model.md §5), side by side (a
    /// solver's plans differ in a claim age or an order; the GPUs run them in one launch),
    /// with their yearly samples or not, reporting progress to `watch` and stopping when it is
    /// cancelled. A backend without a plan kernel (or whose device cannot run it) answers
    /// [`BackendError::Unavailable`] with the reason, and the engine runs the plans on the
    /// CPU, saying so by name.
    fn simulate_plans(
        &self,
        plans: &[PreparedPlan],
        yearly: Yearly,
        watch: &Watch,
    ) -> Result<Vec<PlanSamples>, BackendError>;

    /// Whether this backend's plan kernel can run here, or why not (what
    /// [`SimulationBackend::simulate_plans`] would answer as unavailable): for `sextant
    /// backends`.
    fn plan_kernel(&self) -> Result<(), String>;
}

/// The devices Sextant can run on: a closed set, chosen once, used everywhere.
#[derive(Debug, Clone)]
pub enum Device {
    Cpu(CpuBackend),
    Wgpu(WgpuBackend),
    Cuda(CudaBackend),
}

impl Device {
    /// The device for a requested backend kind: `auto` takes the best available (see
    /// [`Device::auto`]); a named backend that is not built or has no device is an error
    /// that says why.
    pub fn select(kind: BackendKind) -> Result<Device, BackendError> {
        match kind {
            BackendKind::Auto => Ok(Device::auto().device),
            kind => Device::open(kind),
        }
    }

    /// The best available device: CUDA, then wgpu on a real GPU (not a software adapter),
    /// then the CPU, with the reason each one passed over could not be used.
    pub fn auto() -> Selection {
        let mut passed_over = Vec::new();
        match CudaBackend::open() {
            Ok(cuda) => {
                return Selection {
                    device: Device::Cuda(cuda),
                    passed_over,
                }
            }
            Err(err) => passed_over.push(err),
        }
        match WgpuBackend::open(false) {
            Ok(wgpu) => {
                return Selection {
                    device: Device::Wgpu(wgpu),
                    passed_over,
                }
            }
            Err(err) => passed_over.push(err),
        }
        Selection {
            device: Device::Cpu(CpuBackend::new()),
            passed_over,
        }
    }

    /// One concrete backend, or why it cannot run here. A named `wgpu` takes any adapter,
    /// software ones (lavapipe) included.
    fn open(kind: BackendKind) -> Result<Device, BackendError> {
        match kind {
            BackendKind::Cpu => Ok(Device::Cpu(CpuBackend::new())),
            BackendKind::Wgpu => WgpuBackend::open(true).map(Device::Wgpu),
            BackendKind::Cuda => CudaBackend::open().map(Device::Cuda),
            BackendKind::Auto => Ok(Device::auto().device),
        }
    }

    /// Every backend kind, opened, or why it cannot run here.
    pub fn survey() -> Vec<(BackendKind, Result<Device, BackendError>)> {
        [BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda]
            .into_iter()
            .map(|kind| (kind, Device::open(kind)))
            .collect()
    }

    pub fn backend(&self) -> &dyn SimulationBackend {
        match self {
            Device::Cpu(cpu) => cpu,
            Device::Wgpu(wgpu) => wgpu,
            Device::Cuda(cuda) => cuda,
        }
    }
}

/// What the CUDA backend would run with: the driver's CUDA version and every NVRTC found
/// (path, version), whether or not a device is there.
#[derive(Debug, Clone)]
pub struct CudaToolchain {
    /// (major, minor), or why there is no driver.
    pub driver: Result<(u32, u32), String>,
    pub nvrtc: Vec<(std::path::PathBuf, (u32, u32))>,
    /// Libraries found that would not load, with the loader's reason.
    pub nvrtc_failures: Vec<String>,
}

/// What [`Device::auto`] chose, and why it passed over the better backends.
#[derive(Debug)]
pub struct Selection {
    pub device: Device,
    pub passed_over: Vec<BackendError>,
}

impl Default for Device {
    fn default() -> Self {
        Device::Cpu(CpuBackend::new())
    }
}
