//! The CUDA backend: `kernels/simulate.cu` and the plan kernel (`kernels/plan.cu`) compiled at
//! run time by NVRTC for the device's own architecture, launched through cudarc. The host side
//! of the goals' three steps is shared with wgpu in [`super::gpu`], the plans' slices in
//! [`crate::plan::packed::PackedBatch::run`].
//!
//! cudarc panics when it cannot load libcuda, so the driver is probed first and a missing one
//! is an `Unavailable` error naming the library. NVRTC is found and loaded by
//! [`super::nvrtc`] (CUDA 12 or 13, toolkit or PyPI wheel, never newer than the driver), and
//! the backend is opened once per process: `sextant backends`, `auto` and every later use
//! share the one compiled module.

use std::sync::{Arc, OnceLock};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;

use super::gpu::{
    self, ChunkDevice, ChunkInput, ChunkRun, DispatchParams, PlanColumnsRun, Select, Tally, BLOCK,
};
use super::nvrtc::{self, Nvrtc};
use super::nvrtc_search::nvrtc_search;
use super::{
    BackendError, BackendInfo, BackendKind, CudaToolchain, Detail, SimulationBackend, Summary,
    Watch,
};
use crate::plan::packed::{PackedBatch, SliceOutputs, COUNTS_PER_PATH, MONEY_PER_PATH};
use crate::plan::{PlanSamples, PreparedPlan, Yearly};
use crate::validate::PreparedGoal;

/// The kernels' source, compiled by NVRTC: the shared arithmetic, the per-asset month and the
/// `sobol` path normals generated from `shaders/common.wgsl`, `shaders/assets.wgsl` and
/// `shaders/sobol_paths.wgsl` ([`super::GOAL_CUDA`]), then `kernels/simulate.cu`.
pub const KERNELS: &str = concat!(
    include_str!(concat!(env!("OUT_DIR"), "/goal.cu")),
    "\n#line 1 \"kernels/simulate.cu\"\n",
    include_str!("../../../kernels/simulate.cu")
);

/// The plan kernel's source, a module of its own: the plan's month loop generated from
/// `shaders/common.wgsl` and `shaders/plan.wgsl` ([`super::PLAN_CUDA`]), then
/// `kernels/plan.cu`.
pub const PLAN_KERNELS: &str = concat!(
    include_str!(concat!(env!("OUT_DIR"), "/plan.cu")),
    "\n#line 1 \"kernels/plan.cu\"\n",
    include_str!("../../../kernels/plan.cu")
);

/// Threads per block of the plan kernel (f64 and a path's accounts in registers and local
/// memory: smaller blocks than the goal kernel's).
const PLAN_BLOCK: u32 = 128;

/// Rows (paths) per plan launch at most: progress and cancellation are checked between
/// launches.
const PLAN_SLICE_ROWS: usize = 65_536;

fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable {
        kind: BackendKind::Cuda,
        reason: reason.into(),
    }
}

/// The CUDA version the driver supports, (major, minor), or why there is none.
pub fn driver_version() -> Result<(u32, u32), String> {
    // SAFETY: only tries to open the library by its usual names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver (libcuda.so.1 not found)".into());
    }
    let mut version = 0;
    // SAFETY: cuDriverGetVersion writes one int and needs no cuInit.
    let status = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) };
    if status != cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        return Err(format!("cuDriverGetVersion: {status:?}"));
    }
    Ok(((version / 1000) as u32, ((version % 1000) / 10) as u32))
}

/// The driver's CUDA version and every NVRTC found: what `sextant backends` names.
pub fn toolchain() -> CudaToolchain {
    let found = nvrtc::find_all(&nvrtc_search());
    CudaToolchain {
        driver: driver_version(),
        nvrtc: found
            .loaded
            .iter()
            .map(|n| (n.path().to_path_buf(), n.version()))
            .collect(),
        nvrtc_failures: found.failed,
    }
}

/// Compile the kernels for `arch` (e.g. `sm_90`) to PTX with one NVRTC: what CI checks, with
/// each NVRTC major, on a machine without a GPU. The error holds NVRTC's log.
pub fn compile_ptx_with(nvrtc: &Nvrtc, arch: &str) -> Result<String, String> {
    nvrtc.compile_ptx(KERNELS, "simulate.cu", &nvrtc_options(arch))
}

/// [`compile_ptx_with`] for the plan kernel ([`PLAN_KERNELS`]).
pub fn compile_plan_ptx_with(nvrtc: &Nvrtc, arch: &str) -> Result<String, String> {
    nvrtc.compile_ptx(PLAN_KERNELS, "plan.cu", &nvrtc_options(arch))
}

/// No fused multiply-add: the polynomials and the plan's money round each product and sum as
/// the CPU's do, so the normals, shocks and balances are the CPU's bits.
fn nvrtc_options(arch: &str) -> [String; 3] {
    [
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_string(),
        "--fmad=false".to_string(),
    ]
}

/// [`compile_ptx_with`] the NVRTC that the process's search finds first (any version).
pub fn compile_ptx(arch: &str) -> Result<String, String> {
    compile_ptx_with(&nvrtc::find(&nvrtc_search(), None)?, arch)
}

/// Philox blocks and the four normals of each, as the probe kernel computed them.
pub type ProbeBlocks = (Vec<[u32; 4]>, Vec<[f32; 4]>);

/// The CUDA backend on device 0.
#[derive(Clone)]
pub struct CudaBackend {
    inner: Arc<Inner>,
}

struct Inner {
    stream: Arc<CudaStream>,
    simulate: CudaFunction,
    locate: CudaFunction,
    probe: CudaFunction,
    /// The plan module's kernels, or why they did not compile or load (goals run without).
    plan: Result<PlanKernels, String>,
    name: String,
    multiprocessors: usize,
    memory: usize,
}

/// The plan module (`kernels/plan.cu`): the month loop, and the two passes that reduce a
/// plan's yearly samples on the device.
struct PlanKernels {
    paths: CudaFunction,
    tally: CudaFunction,
    collect: CudaFunction,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("device", &self.inner.name)
            .finish()
    }
}

impl CudaBackend {
    /// The backend on device 0, opened (and its kernels compiled) once per process.
    pub fn open() -> Result<Self, BackendError> {
        static OPENED: OnceLock<Result<CudaBackend, BackendError>> = OnceLock::new();
        OPENED.get_or_init(Self::open_now).clone()
    }

    fn open_now() -> Result<Self, BackendError> {
        let driver = driver_version().map_err(unavailable)?;
        let nvrtc = nvrtc::find(&nvrtc_search(), Some(driver)).map_err(unavailable)?;
        let fail = |what: &str, e: &dyn std::fmt::Debug| unavailable(format!("{what}: {e:?}"));
        let count = CudaContext::device_count().map_err(|e| fail("cuInit", &e))?;
        if count < 1 {
            return Err(unavailable("the CUDA driver sees no device"));
        }
        let ctx = CudaContext::new(0).map_err(|e| fail("opening device 0", &e))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| fail("compute capability", &e))?;
        let arch = format!("sm_{major}{minor}");
        let (nvrtc_major, nvrtc_minor) = nvrtc.version();
        let ptx = compile_ptx_with(&nvrtc, &arch).map_err(|e| {
            unavailable(format!(
                "NVRTC {nvrtc_major}.{nvrtc_minor} ({}): {e}",
                nvrtc.path().display()
            ))
        })?;
        let module = ctx
            .load_module(Ptx::from_src(ptx))
            .map_err(|e| fail("loading the kernels (driver older than NVRTC?)", &e))?;
        let function = |name: &str| {
            module
                .load_function(name)
                .map_err(|e| fail(&format!("kernel {name}"), &e))
        };
        let plan = compile_plan_ptx_with(&nvrtc, &arch)
            .map_err(|log| format!("the plan kernel does not compile: {log}"))
            .and_then(|ptx| {
                ctx.load_module(Ptx::from_src(ptx))
                    .and_then(|m| {
                        Ok(PlanKernels {
                            paths: m.load_function("plan_paths")?,
                            tally: m.load_function("plan_tally")?,
                            collect: m.load_function("plan_collect")?,
                        })
                    })
                    .map_err(|e| format!("the plan kernel does not load: {e:?}"))
            });
        let name = ctx.name().map_err(|e| fail("device name", &e))?;
        let multiprocessors = ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            )
            .map_err(|e| fail("device attribute", &e))? as usize;
        let memory = ctx.total_mem().map_err(|e| fail("device memory", &e))?;
        Ok(CudaBackend {
            inner: Arc::new(Inner {
                stream: ctx.default_stream(),
                simulate: function("simulate")?,
                locate: function("locate")?,
                probe: function("philox_probe")?,
                plan,
                name: format!(
                    "{name} ({arch}, {multiprocessors} SMs; driver CUDA {}.{}, NVRTC \
                     {nvrtc_major}.{nvrtc_minor})",
                    driver.0, driver.1
                ),
                multiprocessors,
                memory,
            }),
        })
    }

    pub fn device_name(&self) -> String {
        self.inner.name.clone()
    }

    /// Philox blocks and their normals computed by the CUDA code (for the parity checks).
    pub fn philox_blocks(&self, inputs: &[([u32; 4], [u32; 2])]) -> Result<ProbeBlocks, String> {
        let s = &self.inner.stream;
        let words: Vec<u32> = inputs
            .iter()
            .flat_map(|(c, k)| [c[0], c[1], c[2], c[3], k[0], k[1], 0, 0])
            .collect();
        let n = inputs.len() as u32;
        let input = s.clone_htod(&words).map_err(debug)?;
        let mut out = s.alloc_zeros::<u32>(4 * inputs.len()).map_err(debug)?;
        let mut normals = s.alloc_zeros::<f32>(4 * inputs.len()).map_err(debug)?;
        let mut launch = s.launch_builder(&self.inner.probe);
        launch.arg(&input).arg(&mut out).arg(&mut normals).arg(&n);
        // SAFETY: the arguments match the kernel's signature and the buffers' sizes.
        unsafe { launch.launch(LaunchConfig::for_num_elems(n)) }.map_err(debug)?;
        let out = s.clone_dtoh(&out).map_err(debug)?;
        let normals = s.clone_dtoh(&normals).map_err(debug)?;
        Ok((
            out.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect(),
            normals
                .chunks(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect(),
        ))
    }
}

fn debug(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

impl CudaBackend {
    /// Every path of every plan of `plans` by the plan kernel, side by side, in launches of
    /// at most [`PLAN_SLICE_ROWS`] rows, checking `watch` between them (the WGSL backend's
    /// `run_plans`, on CUDA).
    fn run_plans(
        &self,
        kernels: &PlanKernels,
        plans: &[PreparedPlan],
        yearly: Yearly,
        watch: &Watch,
    ) -> Result<Vec<PlanSamples>, BackendError> {
        let failed = |reason: String| BackendError::Failed {
            kind: BackendKind::Cuda,
            reason,
        };
        let s = &self.inner.stream;
        let batch = PackedBatch::of(plans, yearly).map_err(failed)?;
        let upload = || -> Result<_, String> {
            Ok((
                s.clone_htod(&batch.words).map_err(debug)?,
                s.clone_htod(&batch.reals).map_err(debug)?,
                s.clone_htod(batch.lanes.as_flattened()).map_err(debug)?,
            ))
        };
        let (words, reals, lanes) = upload().map_err(failed)?;
        // A slice's samples stay within an eighth of the device's memory.
        let slices = batch.slices(PLAN_SLICE_ROWS, self.inner.memory / 32);
        // Without tables, each slice's samples stay on the device to be reduced there.
        let mut kept: Vec<CudaSlice<u32>> = Vec::new();
        let mut out = batch.run(slices.clone(), watch, |slice| {
            let mut run = || -> Result<SliceOutputs, String> {
                let n = slice.rows.len();
                let mut money = s.alloc_zeros::<f64>(n * MONEY_PER_PATH).map_err(debug)?;
                let mut counts = s.alloc_zeros::<u32>(n * COUNTS_PER_PATH).map_err(debug)?;
                let mut samples = s
                    .alloc_zeros::<u32>(slice.sample_words.max(1))
                    .map_err(debug)?;
                let (base, count) = (slice.rows.start as u32, n as u32);
                let samples_base = slice.first_sample as u32;
                let mut launch = s.launch_builder(&kernels.paths);
                launch
                    .arg(&words)
                    .arg(&reals)
                    .arg(&lanes)
                    .arg(&mut money)
                    .arg(&mut counts)
                    .arg(&mut samples)
                    .arg(&base)
                    .arg(&count)
                    .arg(&samples_base);
                let config = LaunchConfig {
                    grid_dim: (count.div_ceil(PLAN_BLOCK), 1, 1),
                    block_dim: (PLAN_BLOCK, 1, 1),
                    shared_mem_bytes: 0,
                };
                // SAFETY: the arguments match plan_paths' signature; the outputs hold the
                // slice's rows and samples, the inputs every row.
                unsafe { launch.launch(config) }.map_err(debug)?;
                let samples = if batch.tables {
                    s.clone_dtoh(&samples).map_err(debug)?
                } else {
                    kept.push(samples);
                    Vec::new()
                };
                Ok(SliceOutputs {
                    money: s.clone_dtoh(&money).map_err(debug)?,
                    counts: s.clone_dtoh(&counts).map_err(debug)?,
                    samples,
                })
            };
            run().map_err(failed)
        })?;
        if yearly == Yearly::Percentiles {
            let budget = gpu::collect_budget(ChunkDevice::max_binding(self));
            for (k, (plan, samples)) in plans.iter().zip(&mut out).enumerate() {
                let (years, rows) = (batch.plans[k].years, batch.plans[k].sample_rows);
                let width = (rows * years) as u32;
                let mut run = CudaPlanColumns {
                    backend: self,
                    kernels,
                    pieces: batch
                        .pieces(k, &slices)
                        .into_iter()
                        .map(|(i, first, count)| (&kept[i], first as u32, count as u32))
                        .collect(),
                    width,
                    wanted_per_column: gpu::plan_wanted_per_column(&plan.percentiles),
                    hist: s
                        .alloc_zeros::<u32>((width * gpu::BINS).max(1) as usize)
                        .map_err(|e| failed(debug(e)))?,
                };
                samples.reduced = gpu::plan_years(&mut run, years, rows, &plan.percentiles, budget)
                    .map_err(failed)?;
            }
        }
        Ok(out)
    }

    /// The locate step over histograms in `hist`: for each query (offset, rank, bins, 0),
    /// (bin, count below, bin count, 0).
    fn locate_in(
        &self,
        hist: &CudaSlice<u32>,
        queries: &[[u32; 4]],
    ) -> Result<Vec<[u32; 4]>, String> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let s = &inner.stream;
        let words: Vec<u32> = queries.iter().flatten().copied().collect();
        let queries_buffer = s.clone_htod(&words).map_err(debug)?;
        let mut found = s.alloc_zeros::<u32>(words.len()).map_err(debug)?;
        let n = queries.len() as u32;
        let mut launch = s.launch_builder(&inner.locate);
        launch
            .arg(hist)
            .arg(&queries_buffer)
            .arg(&mut found)
            .arg(&n);
        // SAFETY: the arguments match `locate`'s signature; `n` bounds every index.
        unsafe { launch.launch(LaunchConfig::for_num_elems(n)) }.map_err(debug)?;
        let out = s.clone_dtoh(&found).map_err(debug)?;
        Ok(out.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect())
    }
}

/// One plan's yearly samples in the buffers its launches left on the device, reduced there
/// (`plan_tally` and `plan_collect` of kernels/plan.cu).
struct CudaPlanColumns<'a> {
    backend: &'a CudaBackend,
    kernels: &'a PlanKernels,
    /// Each piece: its slice's samples, its first value there, its values (whole rows).
    pieces: Vec<(&'a CudaSlice<u32>, u32, u32)>,
    /// Values per row: 2 × years.
    width: u32,
    wanted_per_column: u32,
    /// One histogram of [`gpu::BINS`] per column.
    hist: CudaSlice<u32>,
}

impl PlanColumnsRun for CudaPlanColumns<'_> {
    fn tally(&mut self) -> Result<Vec<u32>, String> {
        let s = self.backend.inner.stream.clone();
        let mut counts = s
            .alloc_zeros::<u32>(self.width.max(1) as usize)
            .map_err(debug)?;
        for &(samples, first, count) in &self.pieces {
            let mut launch = s.launch_builder(&self.kernels.tally);
            launch
                .arg(samples)
                .arg(&first)
                .arg(&count)
                .arg(&self.width)
                .arg(&gpu::BINS)
                .arg(&gpu::LOG2_LOW)
                .arg(&gpu::BINS_PER_OCTAVE)
                .arg(&mut counts)
                .arg(&mut self.hist);
            // SAFETY: the arguments match `plan_tally`'s signature; `count` bounds the values
            // read from `first`, within the slice's samples, and the columns are `width`.
            unsafe { launch.launch(LaunchConfig::for_num_elems(count)) }.map_err(debug)?;
        }
        let mut counts = s.clone_dtoh(&counts).map_err(debug)?;
        counts.truncate(self.width as usize);
        Ok(counts)
    }
}

impl Select for CudaPlanColumns<'_> {
    fn locate(&mut self, queries: &[[u32; 4]]) -> Result<Vec<[u32; 4]>, String> {
        self.backend.locate_in(&self.hist, queries)
    }

    fn collect(
        &mut self,
        wanted: &[[u32; 4]],
        cursors: &[u32],
        values: usize,
    ) -> Result<(Vec<u32>, Vec<f32>), String> {
        let s = self.backend.inner.stream.clone();
        let mut counters = if cursors.is_empty() {
            s.alloc_zeros::<u32>(1).map_err(debug)?
        } else {
            s.clone_htod(cursors).map_err(debug)?
        };
        let words: Vec<u32> = wanted.iter().flatten().copied().collect();
        let wanted = if words.is_empty() {
            s.alloc_zeros::<u32>(4).map_err(debug)?
        } else {
            s.clone_htod(&words).map_err(debug)?
        };
        let mut value_buffer = s.alloc_zeros::<u32>(values.max(1)).map_err(debug)?;
        for &(samples, first, count) in &self.pieces {
            let mut launch = s.launch_builder(&self.kernels.collect);
            launch
                .arg(samples)
                .arg(&first)
                .arg(&count)
                .arg(&self.width)
                .arg(&gpu::BINS)
                .arg(&gpu::LOG2_LOW)
                .arg(&gpu::BINS_PER_OCTAVE)
                .arg(&mut counters)
                .arg(&wanted)
                .arg(&self.wanted_per_column)
                .arg(&mut value_buffer);
            // SAFETY: the arguments match `plan_collect`'s signature; the wanted entries are
            // `width × wanted_per_column`, and a slot's values stop at its end.
            unsafe { launch.launch(LaunchConfig::for_num_elems(count)) }.map_err(debug)?;
        }
        let after = s.clone_dtoh(&counters).map_err(debug)?;
        let values = s
            .clone_dtoh(&value_buffer)
            .map_err(debug)?
            .into_iter()
            .take(values)
            .map(f32::from_bits)
            .collect();
        Ok((after, values))
    }
}

impl ChunkDevice for CudaBackend {
    fn max_binding(&self) -> u64 {
        (self.inner.memory / 8) as u64
    }

    fn open(&self, input: &ChunkInput) -> Result<Box<dyn ChunkRun + '_>, String> {
        let s = &self.inner.stream;
        let goals: &[u32] = bytemuck::cast_slice(&input.goals);
        let months: Vec<f32> = input.months.iter().flatten().copied().collect();
        Ok(Box::new(CudaChunk {
            backend: self,
            input: input.clone(),
            goals: s.clone_htod(goals).map_err(debug)?,
            months: s.clone_htod(&months).map_err(debug)?,
            vols: s.clone_htod(&input.vols).map_err(debug)?,
            hist: s.alloc_zeros::<u32>(input.hist_len.max(1)).map_err(debug)?,
            // A chunk without `sobol` goals has no directions: one word stands in.
            directions: s
                .clone_htod(if input.directions.is_empty() {
                    &[0u32][..]
                } else {
                    &input.directions
                })
                .map_err(debug)?,
        }))
    }
}

struct CudaChunk<'a> {
    backend: &'a CudaBackend,
    input: ChunkInput,
    goals: CudaSlice<u32>,
    months: CudaSlice<f32>,
    vols: CudaSlice<f32>,
    hist: CudaSlice<u32>,
    directions: CudaSlice<u32>,
}

impl CudaChunk<'_> {
    fn dispatch(
        &mut self,
        mode: u32,
        counts: &mut CudaSlice<u32>,
        sums: &mut CudaSlice<f32>,
        wanted: &CudaSlice<u32>,
        values: &mut CudaSlice<f32>,
    ) -> Result<(), String> {
        let inner = &self.backend.inner;
        let goals = self.input.goals.len() as u32;
        let mut base = 0u32;
        while base < self.input.max_blocks {
            let width = (self.input.max_blocks - base).min(i32::MAX as u32);
            let p = DispatchParams::new(mode, base);
            let mut launch = inner.stream.launch_builder(&inner.simulate);
            launch
                .arg(&p.mode)
                .arg(&p.bins)
                .arg(&p.block_base)
                .arg(&p.log2_low)
                .arg(&p.bins_per_octave)
                .arg(&self.goals)
                .arg(&self.months)
                .arg(&self.vols)
                .arg(&mut *counts)
                .arg(&mut *sums)
                .arg(&mut self.hist)
                .arg(wanted)
                .arg(&mut *values)
                .arg(&self.directions);
            let config = LaunchConfig {
                grid_dim: (width, goals, 1),
                block_dim: (BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the arguments match `simulate`'s signature in kernels/simulate.cu, and
            // every index the kernel forms is within the buffers the layout sized.
            unsafe { launch.launch(config) }.map_err(debug)?;
            base += width;
        }
        Ok(())
    }
}

impl ChunkRun for CudaChunk<'_> {
    fn tally(&mut self) -> Result<Tally, String> {
        let s = self.backend.inner.stream.clone();
        let mut counts = s
            .alloc_zeros::<u32>(self.input.counts_len.max(1))
            .map_err(debug)?;
        let mut sums = s
            .alloc_zeros::<f32>(self.input.sums_len.max(1))
            .map_err(debug)?;
        let wanted = s.alloc_zeros::<u32>(4).map_err(debug)?;
        let mut values = s.alloc_zeros::<f32>(1).map_err(debug)?;
        self.dispatch(0, &mut counts, &mut sums, &wanted, &mut values)?;
        Ok(Tally {
            counts: s.clone_dtoh(&counts).map_err(debug)?,
            sums: s.clone_dtoh(&sums).map_err(debug)?,
        })
    }
}

impl Select for CudaChunk<'_> {
    fn locate(&mut self, queries: &[[u32; 4]]) -> Result<Vec<[u32; 4]>, String> {
        self.backend.locate_in(&self.hist, queries)
    }

    fn collect(
        &mut self,
        wanted: &[[u32; 4]],
        cursors: &[u32],
        values: usize,
    ) -> Result<(Vec<u32>, Vec<f32>), String> {
        let s = self.backend.inner.stream.clone();
        let mut counts = if cursors.is_empty() {
            s.alloc_zeros::<u32>(1).map_err(debug)?
        } else {
            s.clone_htod(cursors).map_err(debug)?
        };
        let mut sums = s.alloc_zeros::<f32>(1).map_err(debug)?;
        let words: Vec<u32> = wanted.iter().flatten().copied().collect();
        let wanted = if words.is_empty() {
            s.alloc_zeros::<u32>(4).map_err(debug)?
        } else {
            s.clone_htod(&words).map_err(debug)?
        };
        let mut value_buffer = s.alloc_zeros::<f32>(values.max(1)).map_err(debug)?;
        self.dispatch(1, &mut counts, &mut sums, &wanted, &mut value_buffer)?;
        let after = s.clone_dtoh(&counts).map_err(debug)?;
        let mut out = s.clone_dtoh(&value_buffer).map_err(debug)?;
        out.truncate(values);
        Ok((after, out))
    }
}

impl SimulationBackend for CudaBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "cuda",
            device: self.inner.name.clone(),
            parallelism: self.inner.multiprocessors,
        }
    }

    fn simulate(
        &self,
        batch: &[PreparedGoal],
        detail: Detail,
    ) -> Result<Vec<Summary>, BackendError> {
        gpu::simulate_as(BackendKind::Cuda, self, batch, detail)
    }

    fn terminal_wealth(&self, goal: &PreparedGoal) -> Vec<f64> {
        super::CpuBackend::new().terminal_wealth_of(goal)
    }

    fn plan_kernel(&self) -> Result<(), String> {
        self.inner.plan.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn simulate_plans(
        &self,
        plans: &[PreparedPlan],
        yearly: Yearly,
        watch: &Watch,
    ) -> Result<Vec<PlanSamples>, BackendError> {
        let kernels = self.inner.plan.as_ref().map_err(unavailable)?;
        self.run_plans(kernels, plans, yearly, watch)
    }
}
