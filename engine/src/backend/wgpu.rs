//! The WGSL backend: `shaders/simulate.wgsl` and `shaders/locate.wgsl` run by wgpu on any
//! Vulkan, Metal or DX12 device (in CI: Mesa's lavapipe), and the plan kernel
//! (`shaders/plan.wgsl`, built on first use) with the passes that reduce a plan's yearly
//! samples where they lie (`shaders/plan_reduce.wgsl`). The host side of the goals' three
//! steps, and of the plans' reduction, is shared with CUDA in [`super::gpu`], the plans' slices in
//! [`crate::plan::packed::PackedBatch::run`]; this module owns the device, the pipelines and
//! the buffers.
//!
//! The device is asked for the adapter's real limits (lavapipe binds 128 MiB, a discrete GPU
//! far more), batches are chunked to fit them, and a goal needing more than 65,535 workgroups
//! is dispatched in slices. wgpu reports a missing driver as an error, never a panic, and
//! validation errors are caught by error scopes.

use std::sync::{mpsc, Arc, OnceLock};

use wgpu::util::DeviceExt;

use super::gpu::{
    self, ChunkDevice, ChunkInput, ChunkRun, DispatchParams, PlanColumnsRun, Select, Tally,
};
use super::{BackendError, BackendInfo, BackendKind, Detail, SimulationBackend, Summary, Watch};
use crate::plan::packed::{PackedBatch, SliceOutputs, COUNTS_PER_PATH, MONEY_PER_PATH};
use crate::plan::prepare::MAX_BRACKETS;
use crate::plan::{PlanSamples, PreparedPlan, Yearly};
use crate::validate::PreparedGoal;

const SIMULATE_WGSL: &str = include_str!("../../../shaders/simulate.wgsl");
const LOCATE_WGSL: &str = include_str!("../../../shaders/locate.wgsl");
const PLAN_REDUCE_WGSL: &str = include_str!("../../../shaders/plan_reduce.wgsl");

/// The simulate kernel with wealth in f64 where the adapter has it, else f32.
fn simulate_source(double: bool) -> String {
    let real = if double { "f64" } else { "f32" };
    format!(
        "alias real = {real};\n{}\n{}\n{}\n{SIMULATE_WGSL}",
        super::COMMON_WGSL,
        super::ASSETS_WGSL,
        super::SOBOL_PATHS_WGSL
    )
}

/// The plan kernels' source: the shared arithmetic, then the plan's.
fn plan_source() -> String {
    format!("{}\n{}", super::COMMON_WGSL, super::PLAN_WGSL)
}

/// The plan kernel's entry point, appended to [`plan_source`]: one thread per row of the
/// slice (`plan_base`: first row, rows, the first row's samples start), writing its outcome at
/// its place in this slice's outputs.
const PLAN_ENTRY: &str = r#"
@group(0) @binding(6) var<storage, read> plan_base: array<u32>;

@compute @workgroup_size(64)
fn plan_paths(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= plan_base[1]) {
        return;
    }
    let row = plan_base[0] + id.x;
    plan_path(row, id.x, plan_lanes[2u * row + 1u].z - plan_base[2]);
}
"#;

/// Rows (paths) per plan dispatch at most: progress and cancellation are checked between
/// slices.
const PLAN_SLICE_ROWS: usize = 16_384;

/// The WGSL backend on one adapter.
#[derive(Clone)]
pub struct WgpuBackend {
    inner: Arc<Inner>,
    /// Smaller limits than the adapter's, to exercise chunking and sliced dispatches in tests.
    max_binding: Option<u64>,
    max_groups: Option<u32>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// Whether wealth is carried in f64.
    double: bool,
    simulate: wgpu::ComputePipeline,
    simulate_layout: wgpu::BindGroupLayout,
    locate: wgpu::ComputePipeline,
    locate_layout: wgpu::BindGroupLayout,
    /// The two passes that reduce a plan's yearly samples on the device
    /// (`shaders/plan_reduce.wgsl`), on one layout.
    plan_tally: wgpu::ComputePipeline,
    plan_collect: wgpu::ComputePipeline,
    reduce_layout: wgpu::BindGroupLayout,
    /// The plan kernel, built on first use (it needs SHADER_F64), or why it cannot be.
    plan: OnceLock<Result<wgpu::ComputePipeline, String>>,
}

impl std::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuBackend")
            .field("adapter", &self.inner.adapter.name)
            .finish()
    }
}

fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable {
        kind: BackendKind::Wgpu,
        reason: reason.into(),
    }
}

impl WgpuBackend {
    /// Open the best adapter, once per process (the pipelines are compiled once). With
    /// `allow_software` false, a CPU adapter (lavapipe, llvmpipe, WARP) is refused: `auto`
    /// wants a real GPU.
    pub fn open(allow_software: bool) -> Result<Self, BackendError> {
        static OPENED: OnceLock<Result<WgpuBackend, BackendError>> = OnceLock::new();
        let backend = OPENED.get_or_init(Self::open_now).clone()?;
        if !allow_software && backend.is_software() {
            return Err(unavailable(format!(
                "the only adapter is a software one ({}); ask for --backend wgpu to use it",
                backend.inner.adapter.name
            )));
        }
        Ok(backend)
    }

    /// Whether the adapter is a CPU one (lavapipe, llvmpipe, WARP): no GPU timings on it.
    pub fn is_software(&self) -> bool {
        self.inner.adapter.device_type == wgpu::DeviceType::Cpu
    }

    fn open_now() -> Result<Self, BackendError> {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
        descriptor.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
        let instance = wgpu::Instance::new(descriptor);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|e| unavailable(format!("no GPU adapter found ({e})")))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let double = adapter.features().contains(wgpu::Features::SHADER_F64);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sextant"),
            required_features: if double {
                wgpu::Features::SHADER_F64
            } else {
                wgpu::Features::empty()
            },
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| unavailable(format!("{}: cannot open the device ({e})", info.name)))?;
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            eprintln!("wgpu: {e}");
        }));
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let uniform = wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let simulate_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("simulate"),
            entries: &[
                uniform,
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, false),
                storage(5, false),
                storage(6, false),
                storage(7, true),
                storage(8, false),
                storage(9, true),
            ],
        });
        let locate_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("locate"),
            entries: &[storage(0, true), storage(1, true), storage(2, false)],
        });
        let reduce_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("plan reduce"),
            entries: &[
                uniform,
                storage(1, true),
                storage(2, false),
                storage(3, false),
                storage(4, true),
                storage(5, false),
            ],
        });
        let pipeline = |source: &str, entry: &str, layout: &wgpu::BindGroupLayout| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(entry),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(entry),
                bind_group_layouts: &[Some(layout)],
                immediate_size: 0,
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let simulate = pipeline(&simulate_source(double), "simulate", &simulate_layout);
        let locate = pipeline(LOCATE_WGSL, "locate", &locate_layout);
        let plan_tally = pipeline(PLAN_REDUCE_WGSL, "plan_tally", &reduce_layout);
        let plan_collect = pipeline(PLAN_REDUCE_WGSL, "plan_collect", &reduce_layout);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(unavailable(format!(
                "{}: the kernels do not build: {e}",
                info.name
            )));
        }
        Ok(WgpuBackend {
            max_binding: None,
            max_groups: None,
            inner: Arc::new(Inner {
                device,
                queue,
                adapter: info,
                limits,
                double,
                simulate,
                simulate_layout,
                locate,
                locate_layout,
                plan_tally,
                plan_collect,
                reduce_layout,
                plan: OnceLock::new(),
            }),
        })
    }

    /// Use at most `bytes` per storage binding (≤ the adapter's limit): more, smaller chunks.
    pub fn with_max_binding(mut self, bytes: u64) -> Self {
        self.max_binding = Some(bytes);
        self
    }

    /// Dispatch at most `groups` workgroups per dimension: a goal spans several dispatches.
    pub fn with_max_workgroups(mut self, groups: u32) -> Self {
        self.max_groups = Some(groups.max(1));
        self
    }

    /// The adapter's name, type and driver, for logs and test output.
    pub fn adapter(&self) -> String {
        let a = &self.inner.adapter;
        format!(
            "{} ({:?}, {:?}, {} {}; wealth in {})",
            a.name,
            a.device_type,
            a.backend,
            a.driver,
            a.driver_info,
            if self.inner.double { "f64" } else { "f32" }
        )
    }

    /// Philox4x32-10 blocks for (counter, key) pairs computed by the WGSL code (for tests).
    pub fn philox_blocks(&self, inputs: &[([u32; 4], [u32; 2])]) -> Result<Vec<[u32; 4]>, String> {
        let source = simulate_source(false) + PHILOX_PROBE;
        self.probe_blocks(&source, "philox_probe", inputs)
    }

    /// The four normals of each Philox block, computed by the WGSL code (for tests).
    pub fn normal_blocks(&self, inputs: &[([u32; 4], [u32; 2])]) -> Result<Vec<[u32; 4]>, String> {
        let source = simulate_source(false) + PHILOX_PROBE;
        self.probe_blocks(&source, "normals_probe", inputs)
    }

    /// The plan arithmetic of `shaders/plan.wgsl` run by WGSL (for tests): for each query
    /// `[ordinary, gains, index, balance, age]`, `[year_tax, rmd_required]` under the tax
    /// schedule `brackets` (over, rate), `standard_deduction` and `capital_gains_rate`. Needs
    /// an adapter with SHADER_F64.
    pub fn plan_probe(
        &self,
        brackets: &[(f64, f64)],
        standard_deduction: f64,
        capital_gains_rate: f64,
        queries: &[[f64; 5]],
    ) -> Result<Vec<[f64; 2]>, String> {
        if brackets.len() > MAX_BRACKETS {
            return Err("more brackets than a schedule holds".into());
        }
        let mut input = vec![0.0f64; PLAN_PROBE_HEADER];
        input[0] = brackets.len() as f64;
        input[1] = standard_deduction;
        input[2] = capital_gains_rate;
        for (k, (over, rate)) in brackets.iter().enumerate() {
            input[3 + k] = *over;
            input[3 + MAX_BRACKETS + k] = *rate;
        }
        input.extend(queries.iter().flatten());
        let values = self.plan_f64_probe(PLAN_PROBE, "plan_probe", &input, 2, queries.len())?;
        Ok(values.chunks(2).map(|v| [v[0], v[1]]).collect())
    }

    /// The spending rule of `shaders/plan.wgsl` run by WGSL (for tests): for the rule's 12
    /// fields (kind, essential, discretionary, rate, ceiling, real return, to age, upper,
    /// lower, adjust, min years left, planning age) and each query's 10 inputs (spend, WR₀,
    /// infinite, last year's return, first, wealth, index, previous index, youngest age, VPW
    /// denominator), `[spend, WR₀, infinite, adjustment]`. Needs SHADER_F64.
    pub fn spending_probe(
        &self,
        rule: &[f64; 12],
        queries: &[[f64; 10]],
    ) -> Result<Vec<[f64; 4]>, String> {
        let mut input = rule.to_vec();
        input.extend(queries.iter().flatten());
        let values =
            self.plan_f64_probe(SPENDING_PROBE, "spending_probe", &input, 4, queries.len())?;
        Ok(values.chunks(4).map(|v| [v[0], v[1], v[2], v[3]]).collect())
    }

    /// Every path of every plan of `plans` by the plan kernel (`plan_path` of
    /// shaders/plan.wgsl), side by side, in slices of at most [`PLAN_SLICE_ROWS`] rows that
    /// each fit the adapter's bindings, checking `watch` between them. Needs SHADER_F64
    /// (money is f64, as on the CPU).
    fn run_plans(
        &self,
        plans: &[PreparedPlan],
        yearly: Yearly,
        watch: &Watch,
    ) -> Result<Vec<PlanSamples>, BackendError> {
        let failed = |reason: String| BackendError::Failed {
            kind: BackendKind::Wgpu,
            reason,
        };
        let inner = &self.inner;
        let pipeline = self.plan_pipeline().map_err(unavailable)?;
        let batch = PackedBatch::of(plans, yearly).map_err(failed)?;
        let max_words = (self.max_binding() / 8) as usize;
        let slices = batch.slices(PLAN_SLICE_ROWS.min(max_words / MONEY_PER_PATH), max_words);
        let words = self.storage(&batch.words, false);
        let reals = self.storage(&batch.reals, false);
        let lanes = self.storage(&batch.lanes, false);
        // Without tables, each slice's samples stay on the device to be reduced there.
        let mut kept: Vec<wgpu::Buffer> = Vec::new();
        let mut out = batch.run(slices.clone(), watch, |slice| {
            let n = slice.rows.len();
            let base = [slice.rows.start as u32, n as u32, slice.first_sample as u32];
            let base = self.storage(&base, false);
            let money = self.zeroed(2 * n * MONEY_PER_PATH, true);
            let counts = self.zeroed(n * COUNTS_PER_PATH, true);
            let samples = self.zeroed(slice.sample_words, true);
            let scope = inner.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let bind = inner.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("plan"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[
                    entry(0, &words),
                    entry(1, &reals),
                    entry(2, &lanes),
                    entry(3, &money),
                    entry(4, &counts),
                    entry(5, &samples),
                    entry(6, &base),
                ],
            });
            let mut encoder = inner.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &bind, &[]);
                pass.dispatch_workgroups((n as u32).div_ceil(64), 1, 1);
            }
            inner.queue.submit([encoder.finish()]);
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(failed(e.to_string()));
            }
            Ok(SliceOutputs {
                money: self
                    .read(&money)
                    .map_err(failed)?
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
                counts: self.read_u32(&counts).map_err(failed)?,
                samples: if batch.tables {
                    self.read_u32(&samples).map_err(failed)?
                } else {
                    kept.push(samples);
                    Vec::new()
                },
            })
        })?;
        if yearly == Yearly::Percentiles {
            let budget = gpu::collect_budget(self.max_binding());
            for (k, (plan, samples)) in plans.iter().zip(&mut out).enumerate() {
                let (years, rows) = (batch.plans[k].years, batch.plans[k].sample_rows);
                let width = (rows * years) as u32;
                let mut run = WgpuPlanColumns {
                    backend: self,
                    pieces: batch
                        .pieces(k, &slices)
                        .into_iter()
                        .map(|(i, first, count)| (&kept[i], first as u32, count as u32))
                        .collect(),
                    width,
                    wanted_per_column: gpu::plan_wanted_per_column(&plan.percentiles),
                    hist: self.zeroed(width as usize * gpu::BINS as usize, false),
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
        hist: &wgpu::Buffer,
        queries: &[[u32; 4]],
    ) -> Result<Vec<[u32; 4]>, String> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let query_buffer = self.storage(queries, false);
        let found = self.storage(&vec![[0u32; 4]; queries.len()], true);
        let bind = inner.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("locate"),
            layout: &inner.locate_layout,
            entries: &[entry(0, hist), entry(1, &query_buffer), entry(2, &found)],
        });
        let groups = (queries.len() as u32).div_ceil(64);
        let max_x = inner.limits.max_compute_workgroups_per_dimension.max(1);
        let (x, y) = (groups.min(max_x), groups.div_ceil(max_x));
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&inner.locate);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
        inner.queue.submit([encoder.finish()]);
        let out = self.read_u32(&found)?;
        Ok(out.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect())
    }

    /// The plan kernel, built on first use, or why it cannot be.
    fn plan_pipeline(&self) -> Result<&wgpu::ComputePipeline, String> {
        self.inner
            .plan
            .get_or_init(|| self.build_plan_pipeline())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build_plan_pipeline(&self) -> Result<wgpu::ComputePipeline, String> {
        if !self.inner.double {
            return Err(format!(
                "{} has no SHADER_F64, which the plan kernel's money needs",
                self.adapter()
            ));
        }
        let device = &self.inner.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let source = format!("{}\n{PLAN_ENTRY}", plan_source());
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("plan"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("plan"),
            layout: None,
            module: &module,
            entry_point: Some("plan_paths"),
            compilation_options: Default::default(),
            cache: None,
        });
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(format!("the plan kernel does not build: {e}")),
            None => Ok(pipeline),
        }
    }

    /// Run `entry` of `probe` (appended to `shaders/plan.wgsl`) once per query over the f64s
    /// of `input`, reading back `per_query` f64s a query. Needs SHADER_F64.
    fn plan_f64_probe(
        &self,
        probe: &str,
        entry: &str,
        input: &[f64],
        per_query: usize,
        queries: usize,
    ) -> Result<Vec<f64>, String> {
        if !self.inner.double {
            return Err(format!("{} has no SHADER_F64", self.adapter()));
        }
        let source = format!("{}\n{probe}", plan_source());
        let words: &[u32] = bytemuck::cast_slice(input);
        let out = self.probe(&source, entry, words, 2 * per_query * queries, queries)?;
        Ok(out
            .chunks(2)
            .map(|w| f64::from_bits(u64::from(w[0]) | u64::from(w[1]) << 32))
            .collect())
    }

    fn probe_blocks(
        &self,
        source: &str,
        entry: &str,
        inputs: &[([u32; 4], [u32; 2])],
    ) -> Result<Vec<[u32; 4]>, String> {
        let words: Vec<u32> = inputs
            .iter()
            .flat_map(|(c, k)| [c[0], c[1], c[2], c[3], k[0], k[1], 0, 0])
            .collect();
        let out = self.probe(source, entry, &words, 4 * inputs.len(), inputs.len())?;
        Ok(out.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect())
    }

    /// Run `entry` of `source` once per invocation over `input` (binding 9), reading back
    /// `out_words` words (binding 10).
    fn probe(
        &self,
        source: &str,
        entry: &str,
        input: &[u32],
        out_words: usize,
        invocations: usize,
    ) -> Result<Vec<u32>, String> {
        let inner = &self.inner;
        let device = &inner.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(entry),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(e.to_string());
        }
        let input = self.storage(input, false);
        let output = self.zeroed(out_words, true);
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 9,
                    resource: input.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 10,
                    resource: output.as_entire_binding(),
                },
            ],
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups((invocations as u32).div_ceil(64), 1, 1);
        }
        inner.queue.submit([encoder.finish()]);
        let mut out = self.read_u32(&output)?;
        out.truncate(out_words);
        Ok(out)
    }

    fn storage<T: bytemuck::Pod>(&self, data: &[T], read_back: bool) -> wgpu::Buffer {
        let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        if read_back {
            usage |= wgpu::BufferUsages::COPY_SRC;
        }
        let bytes = bytemuck::cast_slice::<T, u8>(data);
        // wgpu refuses empty bindings: give an empty array one element.
        let contents: Vec<u8> = if bytes.is_empty() {
            vec![0; 16]
        } else {
            bytes.to_vec()
        };
        self.inner
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: &contents,
                usage,
            })
    }

    /// A storage buffer of `words` zeroed 32-bit words, made on the device: WebGPU gives every
    /// new buffer zeroed contents, so nothing is written from the host (a 1,000-goal chunk's
    /// histograms are half a gigabyte, whose upload from a host vector of zeros was most of a
    /// batch's time on the H200).
    fn zeroed(&self, words: usize, read_back: bool) -> wgpu::Buffer {
        let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        if read_back {
            usage |= wgpu::BufferUsages::COPY_SRC;
        }
        // wgpu refuses empty bindings: give an empty array one 16-byte element.
        self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: (4 * words as u64).max(16),
            usage,
            mapped_at_creation: false,
        })
    }

    fn read_u32(&self, buffer: &wgpu::Buffer) -> Result<Vec<u32>, String> {
        let bytes = self.read(buffer)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn read(&self, buffer: &wgpu::Buffer) -> Result<Vec<u8>, String> {
        let inner = &self.inner;
        let size = buffer.size();
        let staging = inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read back"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        inner.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("device poll: {e}"))?;
        rx.recv()
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("map: {e}"))?;
        let out = staging
            .get_mapped_range(..)
            .map_err(|e| format!("{e}"))?
            .to_vec();
        staging.unmap();
        Ok(out)
    }

    fn uniform(&self, params: &DispatchParams) -> wgpu::Buffer {
        let words: [u32; 8] = [
            params.mode,
            params.bins,
            params.block_base,
            params.log2_low.to_bits(),
            params.bins_per_octave.to_bits(),
            0,
            0,
            0,
        ];
        self.inner
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::cast_slice::<u32, u8>(&words),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

/// f64s before the queries in [`PLAN_PROBE`]'s input: count, deduction, gains rate, then
/// `MAX_BRACKETS` thresholds and as many rates.
const PLAN_PROBE_HEADER: usize = 3 + 2 * MAX_BRACKETS;

/// A test kernel appended to `plan.wgsl`: the tax and the RMD for given inputs, laid out as
/// [`WgpuBackend::plan_probe`] writes them.
const PLAN_PROBE: &str = r#"
@group(0) @binding(9) var<storage, read> plan_in: array<f64>;
@group(0) @binding(10) var<storage, read_write> plan_out: array<f64>;

@compute @workgroup_size(64)
fn plan_probe(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (2u * i >= arrayLength(&plan_out)) { return; }
    var s: TaxSchedule;
    s.count = u32(plan_in[0]);
    s.standard_deduction = plan_in[1];
    s.capital_gains_rate = plan_in[2];
    for (var k = 0u; k < MAX_BRACKETS; k++) {
        s.over[k] = plan_in[3u + k];
        s.rate[k] = plan_in[3u + MAX_BRACKETS + k];
    }
    let q = 3u + 2u * MAX_BRACKETS + 5u * i;
    plan_out[2u * i] = year_tax(s, plan_in[q], plan_in[q + 1u], plan_in[q + 2u]);
    plan_out[2u * i + 1u] = rmd_required(plan_in[q + 3u], u32(plan_in[q + 4u]));
}
"#;

/// A test kernel appended to `plan.wgsl`: the spending rule for given inputs, laid out as
/// [`WgpuBackend::spending_probe`] writes them.
const SPENDING_PROBE: &str = r#"
@group(0) @binding(9) var<storage, read> spending_in: array<f64>;
@group(0) @binding(10) var<storage, read_write> spending_out: array<f64>;

@compute @workgroup_size(64)
fn spending_probe(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (4u * i >= arrayLength(&spending_out)) { return; }
    var r: SpendingRule;
    r.kind = u32(spending_in[0]);
    r.essential = spending_in[1];
    r.discretionary = spending_in[2];
    r.rate = spending_in[3];
    r.ceiling = spending_in[4];
    r.real_return = spending_in[5];
    r.to_age = spending_in[6];
    r.upper = spending_in[7];
    r.lower = spending_in[8];
    r.adjust = spending_in[9];
    r.min_years_left = spending_in[10];
    r.planning_age = spending_in[11];
    let q = 12u + 10u * i;
    var s = SpendingState(spending_in[q], spending_in[q + 1u], spending_in[q + 2u] != 0.0);
    let adjustment = yearly_spending(r, &s, spending_in[q + 3u], spending_in[q + 4u] != 0.0,
        spending_in[q + 5u], spending_in[q + 6u], spending_in[q + 7u], spending_in[q + 8u],
        spending_in[q + 9u]);
    spending_out[4u * i] = s.spend;
    spending_out[4u * i + 1u] = s.initial_rate;
    spending_out[4u * i + 2u] = select(f64(0.0), f64(1.0), s.initial_infinite);
    spending_out[4u * i + 3u] = f64(adjustment);
}
"#;

/// Test kernels appended to `simulate.wgsl`: Philox and the normals for given inputs.
const PHILOX_PROBE: &str = r#"
@group(0) @binding(9) var<storage, read> probe_in: array<vec4<u32>>;
@group(0) @binding(10) var<storage, read_write> probe_out: array<vec4<u32>>;

@compute @workgroup_size(64)
fn philox_probe(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i >= arrayLength(&probe_out)) { return; }
    probe_out[i] = philox(probe_in[2u * i], probe_in[2u * i + 1u].xy);
}

@compute @workgroup_size(64)
fn normals_probe(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if (i >= arrayLength(&probe_out)) { return; }
    let w = philox(probe_in[2u * i], probe_in[2u * i + 1u].xy);
    probe_out[i] = bitcast<vec4<u32>>(normals_of_block(w));
}
"#;

impl ChunkDevice for WgpuBackend {
    fn max_binding(&self) -> u64 {
        let limit = self.inner.limits.max_storage_buffer_binding_size;
        self.max_binding.map_or(limit, |m| m.min(limit))
    }

    fn open(&self, input: &ChunkInput) -> Result<Box<dyn ChunkRun + '_>, String> {
        Ok(Box::new(WgpuChunk {
            backend: self,
            input: input.clone(),
            goals: self.storage(&input.goals, false),
            months: self.storage(&input.months, false),
            vols: self.storage(&input.vols, false),
            hist: self.zeroed(input.hist_len, true),
            directions: self.storage(&input.directions, false),
        }))
    }
}

struct WgpuChunk<'a> {
    backend: &'a WgpuBackend,
    input: ChunkInput,
    goals: wgpu::Buffer,
    months: wgpu::Buffer,
    vols: wgpu::Buffer,
    hist: wgpu::Buffer,
    directions: wgpu::Buffer,
}

impl WgpuChunk<'_> {
    /// Run `simulate` in `mode` over every block of every goal, in slices of ≤ 65,535 blocks.
    fn dispatch(
        &self,
        mode: u32,
        counts: &wgpu::Buffer,
        sums: &wgpu::Buffer,
        wanted: &wgpu::Buffer,
        values: &wgpu::Buffer,
    ) -> Result<(), String> {
        let inner = &self.backend.inner;
        let limit = inner.limits.max_compute_workgroups_per_dimension.max(1);
        let max_x = self.backend.max_groups.map_or(limit, |m| m.min(limit));
        let goals = self.input.goals.len() as u32;
        let mut base = 0u32;
        let scope = inner.device.push_error_scope(wgpu::ErrorFilter::Validation);
        while base < self.input.max_blocks {
            let width = (self.input.max_blocks - base).min(max_x);
            let params = self.backend.uniform(&DispatchParams::new(mode, base));
            let bind = inner.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("simulate"),
                layout: &inner.simulate_layout,
                entries: &[
                    entry(0, &params),
                    entry(1, &self.goals),
                    entry(2, &self.months),
                    entry(3, &self.vols),
                    entry(4, counts),
                    entry(5, sums),
                    entry(6, &self.hist),
                    entry(7, wanted),
                    entry(8, values),
                    entry(9, &self.directions),
                ],
            });
            let mut encoder = inner.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&inner.simulate);
                pass.set_bind_group(0, &bind, &[]);
                pass.dispatch_workgroups(width, goals, 1);
            }
            inner.queue.submit([encoder.finish()]);
            base += width;
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(e.to_string());
        }
        Ok(())
    }
}

impl ChunkRun for WgpuChunk<'_> {
    fn tally(&mut self) -> Result<Tally, String> {
        let b = self.backend;
        let counts = b.zeroed(self.input.counts_len, true);
        let sums = b.zeroed(self.input.sums_len, true);
        let wanted = b.storage::<u32>(&[], false);
        let values = b.storage::<f32>(&[], false);
        self.dispatch(0, &counts, &sums, &wanted, &values)?;
        let counts = b.read_u32(&counts)?;
        let sums = b.read_u32(&sums)?.into_iter().map(f32::from_bits).collect();
        Ok(Tally { counts, sums })
    }
}

impl Select for WgpuChunk<'_> {
    fn locate(&mut self, queries: &[[u32; 4]]) -> Result<Vec<[u32; 4]>, String> {
        self.backend.locate_in(&self.hist, queries)
    }

    fn collect(
        &mut self,
        wanted: &[[u32; 4]],
        cursors: &[u32],
        values: usize,
    ) -> Result<(Vec<u32>, Vec<f32>), String> {
        let b = self.backend;
        let counts = b.storage(cursors, true);
        let sums = b.storage::<f32>(&[], false);
        let wanted = b.storage(wanted, false);
        let value_buffer = b.zeroed(values, true);
        self.dispatch(1, &counts, &sums, &wanted, &value_buffer)?;
        let after = b.read_u32(&counts)?;
        let values = b
            .read_u32(&value_buffer)?
            .into_iter()
            .take(values)
            .map(f32::from_bits)
            .collect();
        Ok((after, values))
    }
}

/// One plan's yearly samples in the buffers its slices left on the device, reduced there
/// (`shaders/plan_reduce.wgsl`).
struct WgpuPlanColumns<'a> {
    backend: &'a WgpuBackend,
    /// Each piece: its slice's samples, its first value there, its values (whole rows).
    pieces: Vec<(&'a wgpu::Buffer, u32, u32)>,
    /// Values per row: 2 × years.
    width: u32,
    wanted_per_column: u32,
    /// One histogram of [`gpu::BINS`] per column.
    hist: wgpu::Buffer,
}

impl WgpuPlanColumns<'_> {
    /// Run `pipeline` (tally or collect) over every piece.
    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        counters: &wgpu::Buffer,
        wanted: &wgpu::Buffer,
        values: &wgpu::Buffer,
    ) -> Result<(), String> {
        let b = self.backend;
        let inner = &b.inner;
        let max_x = inner.limits.max_compute_workgroups_per_dimension.max(1);
        let scope = inner.device.push_error_scope(wgpu::ErrorFilter::Validation);
        for &(samples, first, count) in &self.pieces {
            let params: [u32; 8] = [
                first,
                count,
                self.width,
                self.wanted_per_column,
                gpu::BINS,
                gpu::LOG2_LOW.to_bits(),
                gpu::BINS_PER_OCTAVE.to_bits(),
                0,
            ];
            let params = inner
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("plan reduce"),
                    contents: bytemuck::cast_slice::<u32, u8>(&params),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
            let bind = inner.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("plan reduce"),
                layout: &inner.reduce_layout,
                entries: &[
                    entry(0, &params),
                    entry(1, samples),
                    entry(2, counters),
                    entry(3, &self.hist),
                    entry(4, wanted),
                    entry(5, values),
                ],
            });
            let groups = count.div_ceil(64);
            let (x, y) = (groups.min(max_x), groups.div_ceil(max_x));
            let mut encoder = inner.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &bind, &[]);
                pass.dispatch_workgroups(x, y, 1);
            }
            inner.queue.submit([encoder.finish()]);
        }
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(e.to_string()),
            None => Ok(()),
        }
    }
}

impl PlanColumnsRun for WgpuPlanColumns<'_> {
    fn tally(&mut self) -> Result<Vec<u32>, String> {
        let b = self.backend;
        let counts = b.zeroed(self.width as usize, true);
        let wanted = b.storage::<u32>(&[], false);
        let values = b.zeroed(0, false);
        self.dispatch(&b.inner.plan_tally, &counts, &wanted, &values)?;
        let mut counts = b.read_u32(&counts)?;
        counts.truncate(self.width as usize);
        Ok(counts)
    }
}

impl Select for WgpuPlanColumns<'_> {
    fn locate(&mut self, queries: &[[u32; 4]]) -> Result<Vec<[u32; 4]>, String> {
        self.backend.locate_in(&self.hist, queries)
    }

    fn collect(
        &mut self,
        wanted: &[[u32; 4]],
        cursors: &[u32],
        values: usize,
    ) -> Result<(Vec<u32>, Vec<f32>), String> {
        let b = self.backend;
        let counters = b.storage(cursors, true);
        let wanted = b.storage(wanted, false);
        let value_buffer = b.zeroed(values, true);
        self.dispatch(&b.inner.plan_collect, &counters, &wanted, &value_buffer)?;
        let after = b.read_u32(&counters)?;
        let values = b
            .read_u32(&value_buffer)?
            .into_iter()
            .take(values)
            .map(f32::from_bits)
            .collect();
        Ok((after, values))
    }
}

impl SimulationBackend for WgpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "wgpu",
            device: self.adapter(),
            parallelism: 1,
        }
    }

    fn simulate(
        &self,
        batch: &[PreparedGoal],
        detail: Detail,
    ) -> Result<Vec<Summary>, BackendError> {
        gpu::simulate_as(BackendKind::Wgpu, self, batch, detail)
    }

    fn terminal_wealth(&self, goal: &PreparedGoal) -> Vec<f64> {
        // Per-path values are what the GPU never copies back; the solvers' per-path step runs
        // on the CPU, with the same random numbers.
        super::CpuBackend::new().terminal_wealth_of(goal)
    }

    fn plan_kernel(&self) -> Result<(), String> {
        self.plan_pipeline().map(|_| ())
    }

    fn simulate_plans(
        &self,
        plans: &[PreparedPlan],
        yearly: Yearly,
        watch: &Watch,
    ) -> Result<Vec<PlanSamples>, BackendError> {
        self.run_plans(plans, yearly, watch)
    }
}
