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

use multiversion::multiversion;
use rayon::prelude::*;

use super::{BackendError, BackendInfo, Detail, SimulationBackend, Snapshot, Summary, Watch};
use crate::normal;
use crate::philox::{self, ROUNDS};
use crate::quantile::{brackets_from_sample, percentiles_of, Bracket, BracketTally};
use crate::validate::PreparedGoal;

/// Paths per block: the unit of work and of floating-point summation.
pub const BLOCK_PATHS: usize = 1024;
/// Paths per lane group: the width of the kernel's arrays.
pub const LANES: usize = 16;
/// Goals with at most this many paths select their percentiles from all paths at once.
const WHOLE_SAMPLE_PATHS: u64 = 1 << 16;
/// Sample size for the percentile brackets of larger goals: a sixty-fourth of the paths within
/// these bounds. A larger sample narrows the brackets (fewer values kept between them) but
/// costs a longer pilot run; 2¹⁸ keeps 10⁷ paths × 100 years within 600 MB.
const SAMPLE_PATHS: (u64, u64) = (1 << 14, 1 << 18);
/// Bracket half-width, in binomial standard deviations of the sample rank.
const BRACKET_MARGIN: f64 = 5.0;
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
            let months = [goal.horizon];
            let n = goal.paths as usize;
            let mut out = vec![0.0; n];
            out.par_chunks_mut(BLOCK_PATHS)
                .enumerate()
                .with_min_len(self.chunk_blocks)
                .for_each_init(
                    || BlockBuffers::new(1),
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
                        dest.copy_from_slice(&buf.snapshots[..dest.len()]);
                    },
                );
            out
        })
    }
}

impl CpuBackend {
    /// Per path, terminal wealth at the goal's contributions and the terminal wealth of the
    /// contribution schedule `unit` alone (see [`affine_lanes`]). The goal must have no
    /// withdrawals (then no path depletes and wealth is affine in the contributions).
    pub fn affine_terminal(&self, goal: &PreparedGoal, unit: &[f64]) -> (Vec<f64>, Vec<f64>) {
        assert!(
            goal.withdrawal.iter().all(|&d| d == 0.0) && unit.len() == goal.horizon as usize,
            "the affine pass needs a goal without withdrawals and a unit schedule per month"
        );
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

/// How one goal is reduced.
struct Plan {
    months: Vec<u32>,
    percentiles: Vec<f64>,
    blocks: usize,
    /// Every `stride`-th path is in the sample; 1: every path is, and percentiles are selected
    /// from all of them.
    stride: u64,
    kernel: CpuKernel,
}

impl Plan {
    fn new(
        goal: &PreparedGoal,
        detail: Detail,
        whole_sample_paths: u64,
        kernel: CpuKernel,
    ) -> Plan {
        let (months, percentiles) = match detail {
            Detail::Full => (goal.yearly_months(), goal.percentiles.clone()),
            Detail::Success => (vec![goal.horizon], Vec::new()),
        };
        let stride = if percentiles.is_empty() || goal.paths <= whole_sample_paths {
            1
        } else {
            let sample = (goal.paths / 64).clamp(SAMPLE_PATHS.0, SAMPLE_PATHS.1);
            goal.paths.div_ceil(sample)
        };
        Plan {
            blocks: (goal.paths as usize).div_ceil(BLOCK_PATHS),
            months,
            percentiles,
            stride,
            kernel,
        }
    }

    /// Whether every path is kept for selection (no brackets, no pilot run).
    fn sample_is_everything(&self) -> bool {
        self.stride == 1
    }
}

/// Per-thread state of the main pass, merged across tasks (integers and sets only, so the
/// merge order cannot change a result).
#[derive(Default)]
struct MainPass {
    successes: u64,
    failed: u64,
    /// Depletion months' histogram, index = month.
    depletion_months: Vec<u64>,
    /// Paths depleted by each snapshot.
    depleted_by: Vec<u64>,
    /// Every value of every snapshot, when the plan selects from all paths.
    everything: Vec<Vec<f64>>,
    /// The bracket tallies, one per (snapshot, percentile), when the plan brackets.
    tallies: Vec<BracketTally>,
}

impl MainPass {
    fn new(plan: &Plan, horizon: u32, brackets: usize) -> Self {
        let keep_all = !plan.percentiles.is_empty() && plan.sample_is_everything();
        MainPass {
            depletion_months: vec![0; horizon as usize],
            depleted_by: vec![0; plan.months.len()],
            everything: vec![Vec::new(); if keep_all { plan.months.len() } else { 0 }],
            tallies: vec![BracketTally::default(); brackets],
            ..Default::default()
        }
    }

    fn merge(mut self, other: MainPass) -> MainPass {
        self.successes += other.successes;
        self.failed += other.failed;
        add_counts(&mut self.depletion_months, &other.depletion_months);
        add_counts(&mut self.depleted_by, &other.depleted_by);
        for (mine, theirs) in self.everything.iter_mut().zip(other.everything) {
            mine.extend(theirs);
        }
        merge_tallies(&mut self.tallies, other.tallies);
        self
    }
}

/// Fold another task's tallies of the same brackets into `into`.
fn merge_tallies(into: &mut [BracketTally], from: Vec<BracketTally>) {
    for (mine, theirs) in into.iter_mut().zip(from) {
        mine.merge(theirs);
    }
}

fn add_counts(into: &mut [u64], from: &[u64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

/// A bracket still to resolve: (snapshot, percentile index, bracket).
type Pending = (usize, usize, Bracket);

impl CpuBackend {
    /// One goal: for a bracketing plan, a pilot run over the sampled paths gives the
    /// brackets; then one pass over every path reduces counts and sums and tallies the
    /// brackets; a bracket that missed (rare) is tallied again, wide open.
    fn simulate_goal(&self, goal: &PreparedGoal, plan: &Plan, watch: &Watch) -> Summary {
        let s = plan.months.len();
        let n = goal.paths as usize;
        let pending: Vec<Pending> = if plan.percentiles.is_empty() || plan.sample_is_everything() {
            Vec::new()
        } else {
            self.pilot_brackets(goal, plan)
        };
        let brackets: Vec<Bracket> = pending.iter().map(|&(_, _, b)| b).collect();

        // Per block: one sum per snapshot, then the shortfall sum.
        let mut block_sums = vec![0.0; plan.blocks * (s + 1)];
        let main = block_sums
            .par_chunks_mut(s + 1)
            .enumerate()
            .with_min_len(self.chunk_blocks)
            .fold(
                || {
                    (
                        BlockBuffers::new(s),
                        MainPass::new(plan, goal.horizon, pending.len()),
                    )
                },
                |(mut buf, mut acc), (b, sums)| {
                    if watch.is_cancelled() {
                        return (buf, acc);
                    }
                    let count = buf.simulate_block_of(goal, plan, b);
                    watch.advance(count as u64 * u64::from(goal.horizon));
                    let depletion = &buf.depletion[..count];
                    reduce_block(goal, plan, &buf.snapshots, depletion, sums, &mut acc);
                    buf.tally(&mut acc.tallies, &pending, count);
                    (buf, acc)
                },
            )
            .map(|(_, acc)| acc)
            .reduce(
                || MainPass::new(plan, goal.horizon, pending.len()),
                MainPass::merge,
            );

        if watch.is_cancelled() {
            // Nobody waits for this goal: its tallies are incomplete, so skip the selection.
            return Summary {
                paths: goal.paths,
                successes: 0,
                depleted: 0,
                median_depletion_month: None,
                shortfall: None,
                snapshots: Vec::new(),
            };
        }

        // Floating sums over blocks, in block order.
        let mut totals = vec![0.0; s + 1];
        for sums in block_sums.chunks(s + 1) {
            for (t, x) in totals.iter_mut().zip(sums) {
                *t += x;
            }
        }
        let MainPass {
            successes,
            failed,
            depletion_months,
            depleted_by,
            mut everything,
            tallies,
        } = main;
        let percentiles: Vec<Vec<(f64, f64)>> = if plan.percentiles.is_empty() {
            vec![Vec::new(); s]
        } else if plan.sample_is_everything() {
            everything
                .par_iter_mut()
                .map(|column| {
                    let values = percentiles_of(column, &plan.percentiles);
                    plan.percentiles.iter().copied().zip(values).collect()
                })
                .collect()
        } else {
            self.resolve(goal, plan, pending, tallies, brackets)
        };
        let snapshots = plan
            .months
            .iter()
            .zip(percentiles)
            .enumerate()
            .map(|(i, (&month, percentiles))| Snapshot {
                month,
                mean: totals[i] / n as f64,
                depleted: depleted_by[i],
                percentiles,
            })
            .collect();
        Summary {
            paths: goal.paths,
            successes,
            depleted: depletion_months.iter().sum(),
            median_depletion_month: median_of_histogram(&depletion_months),
            shortfall: (failed > 0).then(|| totals[s] / failed as f64),
            snapshots,
        }
    }

    /// Simulate the sampled paths (every `stride`-th: the same numbers the main pass will
    /// draw for them) and bracket each percentile of each snapshot from them.
    fn pilot_brackets(&self, goal: &PreparedGoal, plan: &Plan) -> Vec<Pending> {
        let s = plan.months.len();
        let sampled = goal.paths.div_ceil(plan.stride) as usize;
        // Each pilot block hands back its values per snapshot; they move (not copy) into the
        // snapshot's parts, so the sample is held once.
        let blocks: Vec<Vec<Vec<f64>>> = (0..sampled.div_ceil(BLOCK_PATHS))
            .into_par_iter()
            .map_init(
                || BlockBuffers::new(s),
                |buf, b| {
                    let count = BLOCK_PATHS.min(sampled - b * BLOCK_PATHS);
                    let paths = PathRange {
                        first: b * BLOCK_PATHS * plan.stride as usize,
                        step: plan.stride as u32,
                        count,
                    };
                    simulate_block(
                        plan.kernel,
                        goal,
                        &plan.months,
                        paths,
                        &mut buf.snapshots,
                        &mut buf.depletion,
                    );
                    buf.snapshots
                        .chunks(BLOCK_PATHS)
                        .map(|column| column[..count].to_vec())
                        .collect()
                },
            )
            .collect();
        let mut parts: Vec<Vec<Vec<f64>>> = vec![Vec::with_capacity(blocks.len()); s];
        for block in blocks {
            for (part, column) in parts.iter_mut().zip(block) {
                part.push(column);
            }
        }
        let margin = self.bracket_margin;
        let n = goal.paths;
        let brackets: Vec<Vec<Bracket>> = parts
            .into_par_iter()
            .map(|part| {
                let mut sample = part.concat();
                brackets_from_sample(&mut sample, &plan.percentiles, n, margin)
            })
            .collect();
        brackets
            .into_iter()
            .enumerate()
            .flat_map(|(s, column)| column.into_iter().enumerate().map(move |(j, b)| (s, j, b)))
            .collect()
    }

    /// Exact percentiles from the main pass's tallies; missed brackets are tallied again,
    /// wide open, by simulating the paths once more.
    fn resolve(
        &self,
        goal: &PreparedGoal,
        plan: &Plan,
        mut pending: Vec<Pending>,
        mut tallies: Vec<BracketTally>,
        mut brackets: Vec<Bracket>,
    ) -> Vec<Vec<(f64, f64)>> {
        let n = goal.paths;
        let mut values = vec![vec![f64::NAN; plan.percentiles.len()]; plan.months.len()];
        loop {
            let found: Vec<Option<f64>> = tallies
                .par_iter_mut()
                .zip(&brackets)
                .zip(&pending)
                .map(|((tally, &bracket), &(_, j, _))| {
                    tally.percentile(bracket, plan.percentiles[j], n)
                })
                .collect();
            let mut missed = Vec::new();
            for (&(s, j, _), value) in pending.iter().zip(found) {
                match value {
                    Some(v) => values[s][j] = v,
                    // A miss is rare (about 1 in 10⁶ brackets): the next pass takes
                    // everything, which cannot miss.
                    None => missed.push((s, j, Bracket::ALL)),
                }
            }
            if missed.is_empty() {
                break;
            }
            pending = missed;
            brackets = pending.iter().map(|&(_, _, b)| b).collect();
            tallies = self.tally_pass(goal, plan, &pending);
        }
        values
            .into_iter()
            .map(|column| plan.percentiles.iter().copied().zip(column).collect())
            .collect()
    }

    /// One more pass over every path, tallying each pending bracket.
    fn tally_pass(
        &self,
        goal: &PreparedGoal,
        plan: &Plan,
        pending: &[Pending],
    ) -> Vec<BracketTally> {
        let s = plan.months.len();
        let empty = || vec![BracketTally::default(); pending.len()];
        (0..plan.blocks)
            .into_par_iter()
            .with_min_len(self.chunk_blocks)
            .fold(
                || (BlockBuffers::new(s), empty()),
                |(mut buf, mut tallies), b| {
                    let count = buf.simulate_block_of(goal, plan, b);
                    buf.tally(&mut tallies, pending, count);
                    (buf, tallies)
                },
            )
            .map(|(_, tallies)| tallies)
            .reduce(empty, |mut a, b| {
                merge_tallies(&mut a, b);
                a
            })
    }
}

/// NumPy's median of the months recorded in `histogram`.
pub(crate) fn median_of_histogram(histogram: &[u64]) -> Option<f64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let nth = |k: u64| {
        let mut seen = 0;
        for (month, &c) in histogram.iter().enumerate() {
            seen += c;
            if seen > k {
                return month as f64;
            }
        }
        unreachable!("k < total")
    };
    let (lo, hi) = ((total - 1) / 2, total / 2);
    Some((nth(lo) + nth(hi)) / 2.0)
}

/// One thread's buffers for a block: snapshots (snapshot-major, `BLOCK_PATHS` per snapshot)
/// and depletion months.
struct BlockBuffers {
    snapshots: Vec<f64>,
    depletion: Vec<f64>,
}

impl BlockBuffers {
    fn new(snapshot_count: usize) -> Self {
        BlockBuffers {
            snapshots: vec![0.0; snapshot_count * BLOCK_PATHS],
            depletion: vec![NOT_DEPLETED; BLOCK_PATHS],
        }
    }

    /// Simulate block `b` of the goal's consecutive paths at the plan's months; returns how
    /// many paths it holds.
    fn simulate_block_of(&mut self, goal: &PreparedGoal, plan: &Plan, b: usize) -> usize {
        let first = b * BLOCK_PATHS;
        let count = BLOCK_PATHS.min(goal.paths as usize - first);
        let paths = PathRange::contiguous(first, count);
        simulate_block(
            plan.kernel,
            goal,
            &plan.months,
            paths,
            &mut self.snapshots,
            &mut self.depletion,
        );
        count
    }

    /// Tally each pending bracket against its snapshot's column of the block.
    fn tally(&self, tallies: &mut [BracketTally], pending: &[Pending], count: usize) {
        for (tally, &(snap, _, bracket)) in tallies.iter_mut().zip(pending) {
            let column = &self.snapshots[snap * BLOCK_PATHS..snap * BLOCK_PATHS + count];
            tally.observe(bracket, column);
        }
    }
}

/// Fold a simulated block into the main pass: the block's floating sums into `sums`, and
/// counts (and, when the plan selects from every path, the values) into `acc`. `snapshots` is
/// snapshot-major, [`BLOCK_PATHS`] per snapshot; `depletion` holds the block's paths.
fn reduce_block(
    goal: &PreparedGoal,
    plan: &Plan,
    snapshots: &[f64],
    depletion: &[f64],
    sums: &mut [f64],
    acc: &mut MainPass,
) {
    let s = plan.months.len();
    let count = depletion.len();
    for (i, &month) in plan.months.iter().enumerate() {
        let column = &snapshots[i * BLOCK_PATHS..i * BLOCK_PATHS + count];
        let (sum, depleted) = column_stats(column, depletion, f64::from(month));
        sums[i] = sum;
        acc.depleted_by[i] += depleted;
        if let Some(all) = acc.everything.get_mut(i) {
            all.extend_from_slice(column);
        }
    }
    let terminal = &snapshots[(s - 1) * BLOCK_PATHS..(s - 1) * BLOCK_PATHS + count];
    let target = goal.target_nominal;
    let mut shortfall = 0.0;
    for (&w, &d) in terminal.iter().zip(depletion) {
        if d >= 0.0 {
            acc.depletion_months[d as usize] += 1;
        }
        if d < 0.0 && w >= target {
            acc.successes += 1;
        } else {
            acc.failed += 1;
            shortfall += target - w;
        }
    }
    sums[s] = shortfall;
}

/// A block column's sum, in a fixed order (eight lane-wise partial sums, then those in order:
/// the same bits whatever the threads or chunks), and the paths depleted before month `by`.
#[multiversion(targets("x86_64+avx2", "x86_64+sse4.1"))]
fn column_stats(column: &[f64], depletion: &[f64], by: f64) -> (f64, u64) {
    let mut partial = [0.0f64; 8];
    let mut chunks = column.chunks_exact(8);
    for chunk in &mut chunks {
        for (p, x) in partial.iter_mut().zip(chunk) {
            *p += x;
        }
    }
    let mut sum = partial.iter().sum::<f64>();
    sum += chunks.remainder().iter().sum::<f64>();
    let mut depleted = [0u64; 8];
    let mut chunks = depletion.chunks_exact(8);
    for chunk in &mut chunks {
        for (n, &d) in depleted.iter_mut().zip(chunk) {
            *n += u64::from((d >= 0.0) & (d < by));
        }
    }
    let rest = chunks
        .remainder()
        .iter()
        .filter(|&&d| d >= 0.0 && d < by)
        .count() as u64;
    (sum, depleted.iter().sum::<u64>() + rest)
}

/// Simulate paths `first .. first + count` of `goal` (count ≤ [`BLOCK_PATHS`]) with `kernel`,
/// which the CPU must support (every kernel computes the same bits).
///
/// Writes W at each of `months` into `snapshots[k * BLOCK_PATHS + i]` and the depletion month
/// (or −1) into `depletion[i]`. Lanes past `count` are simulated and ignored.
fn simulate_block(
    kernel: CpuKernel,
    goal: &PreparedGoal,
    months: &[u32],
    paths: PathRange,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) {
    let job = BlockJob {
        goal,
        keys: philox::round_keys(philox::key_of_seed(goal.seed)),
        months,
        paths,
    };
    match kernel {
        // SAFETY: callers pass a backend's kernel, which the CPU supports (`with_kernel`).
        #[cfg(target_arch = "x86_64")]
        CpuKernel::Avx512 => unsafe { simulate_block_avx512(&job, snapshots, depletion) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        CpuKernel::Avx2 => unsafe { simulate_block_avx2(&job, snapshots, depletion) },
        _ => simulate_block_portable(&job, snapshots, depletion),
    }
}

/// Which paths a block simulates: `first`, `first + step`, … (`count` of them, at most
/// [`BLOCK_PATHS`]). The main pass takes consecutive paths; the pilot run every `stride`-th.
#[derive(Debug, Clone, Copy)]
struct PathRange {
    first: usize,
    step: u32,
    count: usize,
}

impl PathRange {
    fn contiguous(first: usize, count: usize) -> Self {
        PathRange {
            first,
            step: 1,
            count,
        }
    }
}

/// One block's work: which goal, its Philox round keys, the months to snapshot, and which
/// paths.
struct BlockJob<'a> {
    goal: &'a PreparedGoal,
    keys: [[u32; 2]; ROUNDS],
    months: &'a [u32],
    paths: PathRange,
}

/// The block kernel with AVX2 Philox; everything else is the portable code, compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn simulate_block_avx2(job: &BlockJob, snapshots: &mut [f64], depletion: &mut [f64]) {
    let lanes = Avx2Lanes(philox::avx2::Keys::new(&job.keys));
    simulate_lanes(&lanes, job, snapshots, depletion);
}

/// The block kernel with AVX-512 Philox, everything else vectorised by LLVM at sixteen f32
/// lanes (one lane group per register).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn simulate_block_avx512(job: &BlockJob, snapshots: &mut [f64], depletion: &mut [f64]) {
    let lanes = Avx512Lanes(philox::avx512::Keys::new(&job.keys));
    simulate_lanes(&lanes, job, snapshots, depletion);
}

/// The block kernel in portable Rust, vectorised by LLVM: SSE4.1 when the CPU has it.
#[multiversion(targets("x86_64+sse4.1"))]
fn simulate_block_portable(job: &BlockJob, snapshots: &mut [f64], depletion: &mut [f64]) {
    simulate_lanes(&PortableLanes(&job.keys), job, snapshots, depletion);
}

/// What differs between the kernels: where a lane group's Philox words come from, and how
/// its wealth grows (the same arithmetic in every kernel).
trait LaneKernel {
    /// Words of counter `(paths[l], quad, 0, 0)` for each lane.
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4];

    /// [`grow`], the month before any withdrawal.
    #[inline(always)]
    fn grow(&self, wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
        grow(wealth, shock, contribution, drift);
    }
}

struct PortableLanes<'a>(&'a [[u32; 2]; ROUNDS]);

impl LaneKernel for PortableLanes<'_> {
    #[inline(always)]
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4] {
        philox::philox_lanes(paths, quad, self.0)
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2Lanes(philox::avx2::Keys);

#[cfg(target_arch = "x86_64")]
impl LaneKernel for Avx2Lanes {
    #[inline(always)]
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4] {
        let mut out = [[0u32; LANES]; 4];
        for half in 0..LANES / 8 {
            let lanes: &[u32; 8] = paths[half * 8..half * 8 + 8]
                .try_into()
                .expect("eight lanes");
            // SAFETY: an `Avx2Lanes` is only built inside the AVX2 kernels, which run
            // only where AVX2 was detected.
            let words = unsafe { philox::avx2::philox8(lanes, quad, &self.0) };
            for (o, w) in out.iter_mut().zip(words) {
                o[half * 8..half * 8 + 8].copy_from_slice(&w);
            }
        }
        out
    }

    #[inline(always)]
    fn grow(&self, wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
        // SAFETY: as above.
        unsafe { grow_avx2(wealth, shock, contribution, drift) }
    }
}

/// [`grow`] in four 256-bit registers of f64, with [`grow`]'s operations in its order.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn grow_avx2(wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
    use std::arch::x86_64::*;
    let (d, c) = (_mm256_set1_pd(drift), _mm256_set1_pd(contribution));
    for quarter in 0..LANES / 4 {
        // SAFETY: unaligned loads and stores of four f32 and four f64 inside the arrays.
        unsafe {
            let s = _mm256_cvtps_pd(_mm_loadu_ps(shock.as_ptr().add(quarter * 4)));
            let at = wealth.as_mut_ptr().add(quarter * 4);
            let growth = _mm256_mul_pd(d, s);
            _mm256_storeu_pd(
                at,
                _mm256_mul_pd(_mm256_add_pd(_mm256_loadu_pd(at), c), growth),
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx512Lanes(philox::avx512::Keys);

#[cfg(target_arch = "x86_64")]
impl LaneKernel for Avx512Lanes {
    #[inline(always)]
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4] {
        // SAFETY: an `Avx512Lanes` is only built inside the AVX-512 kernels, which run only
        // where AVX-512 was detected.
        unsafe { philox::avx512::philox16(paths, quad, &self.0) }
    }

    #[inline(always)]
    fn grow(&self, wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
        // SAFETY: as above.
        unsafe { grow_avx512(wealth, shock, contribution, drift) }
    }
}

/// [`grow`] in two 512-bit registers of f64, with [`grow`]'s operations in its order (so the
/// same bits): LLVM, left to itself, splits the second eight lanes into 4 + 2 + 1 + 1.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn grow_avx512(wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
    use std::arch::x86_64::*;
    const _: () = assert!(LANES == 16);
    // SAFETY: unaligned loads and stores of exactly sixteen f32 and two times eight f64.
    unsafe {
        let s = _mm512_loadu_ps(shock.as_ptr());
        let low = _mm512_cvtps_pd(_mm512_castps512_ps256(s));
        let high = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
            _mm512_castps_pd(s),
        )));
        let (d, c) = (_mm512_set1_pd(drift), _mm512_set1_pd(contribution));
        for (half, shock) in [low, high].into_iter().enumerate() {
            let at = wealth.as_mut_ptr().add(half * 8);
            let growth = _mm512_mul_pd(d, shock);
            _mm512_storeu_pd(
                at,
                _mm512_mul_pd(_mm512_add_pd(_mm512_loadu_pd(at), c), growth),
            );
        }
    }
}

/// The month loop over lane groups, shared by every kernel.
#[inline(always)]
fn simulate_lanes(
    lanes: &impl LaneKernel,
    job: &BlockJob,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) {
    let &BlockJob {
        goal,
        months,
        paths:
            PathRange {
                first,
                step: path_step,
                count,
            },
        ..
    } = job;
    let horizon = goal.horizon as usize;
    let quads = horizon.div_ceil(4);
    let first_withdrawal = goal
        .withdrawal
        .iter()
        .position(|&d| d > 0.0)
        .unwrap_or(horizon);
    for group in (0..count).step_by(LANES) {
        let paths: [u32; LANES] =
            std::array::from_fn(|l| (first + (group + l) * path_step as usize) as u32);
        let mut wealth = [goal.initial_wealth; LANES];
        let mut depleted_at = [NOT_DEPLETED; LANES];
        let mut next = 0;
        let mut t = 0usize;
        for q in 0..quads {
            let months_left = (horizon - t).min(4);
            let growth = quad_growth(lanes, goal, &paths, q, t, months_left);
            for g in &growth[..months_left] {
                if t < first_withdrawal {
                    // No withdrawal yet, so no path can be depleted: W ← (W + c)·G.
                    lanes.grow(&mut wealth, g, goal.contribution[t], goal.drift[t]);
                } else {
                    step(
                        &mut wealth,
                        &mut depleted_at,
                        g,
                        t,
                        goal.contribution[t],
                        goal.withdrawal[t],
                        goal.drift[t],
                    );
                }
                t += 1;
                if next < months.len() && months[next] as usize == t {
                    let at = next * BLOCK_PATHS + group;
                    snapshots[at..at + LANES].copy_from_slice(&wealth);
                    next += 1;
                }
            }
        }
        depletion[group..group + LANES].copy_from_slice(&depleted_at);
    }
}

/// Quad `q`'s growth shocks exp(vol·Z) for each lane: its four months' factors first,
/// lane-wise and independent of wealth, so they pipeline ahead of the dependent updates. Only
/// the first `months_left` are meaningful (`t` is the quad's first month).
#[inline(always)]
fn quad_growth(
    lanes: &impl LaneKernel,
    goal: &PreparedGoal,
    paths: &[u32; LANES],
    q: usize,
    t: usize,
    months_left: usize,
) -> [[f32; LANES]; 4] {
    let words = lanes.words(paths, q as u32);
    let mut growth = [[0.0f32; LANES]; 4];
    let [w0, w1, w2, w3] = &words;
    let [g0, g1, g2, g3] = &mut growth;
    normal::box_muller_lanes(w0, w1, g0, g1);
    normal::box_muller_lanes(w2, w3, g2, g3);
    for (j, g) in growth.iter_mut().enumerate().take(months_left) {
        normal::exp_scaled_lanes(goal.volatility[t + j], g);
    }
    growth
}

/// The affine pass of a goal without withdrawals: for each path, terminal wealth W_T at the
/// goal's own contributions and B_T, the terminal wealth of contributing `unit[t]` from
/// nothing. No path can deplete, so W_T is affine in the contribution scale k:
/// W_T(k) = (W_T − B_T) + k·B_T when `unit` is the goal's schedule at one unit. Both tracks
/// share every random number, and W_T has the bits [`simulate_lanes`] computes.
#[inline(always)]
fn affine_lanes(
    lanes: &impl LaneKernel,
    job: &AffineJob,
    wealth: &mut [f64],
    per_unit: &mut [f64],
) {
    let goal = job.goal;
    let horizon = goal.horizon as usize;
    let quads = horizon.div_ceil(4);
    for group in (0..job.count).step_by(LANES) {
        let paths: [u32; LANES] = std::array::from_fn(|l| (job.first + group + l) as u32);
        let mut w = [goal.initial_wealth; LANES];
        let mut u = [0.0f64; LANES];
        let mut t = 0usize;
        for q in 0..quads {
            let months_left = (horizon - t).min(4);
            let growth = quad_growth(lanes, goal, &paths, q, t, months_left);
            for g in &growth[..months_left] {
                lanes.grow(&mut w, g, goal.contribution[t], goal.drift[t]);
                lanes.grow(&mut u, g, job.unit[t], goal.drift[t]);
                t += 1;
            }
        }
        wealth[group..group + LANES].copy_from_slice(&w);
        per_unit[group..group + LANES].copy_from_slice(&u);
    }
}

/// One block of [`affine_lanes`]: which goal, its unit schedule, its Philox keys and paths
/// `first .. first + count`.
struct AffineJob<'a> {
    goal: &'a PreparedGoal,
    unit: &'a [f64],
    keys: [[u32; 2]; ROUNDS],
    first: usize,
    count: usize,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn affine_block_avx2(job: &AffineJob, wealth: &mut [f64], per_unit: &mut [f64]) {
    let lanes = Avx2Lanes(philox::avx2::Keys::new(&job.keys));
    affine_lanes(&lanes, job, wealth, per_unit);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn affine_block_avx512(job: &AffineJob, wealth: &mut [f64], per_unit: &mut [f64]) {
    let lanes = Avx512Lanes(philox::avx512::Keys::new(&job.keys));
    affine_lanes(&lanes, job, wealth, per_unit);
}

#[multiversion(targets("x86_64+sse4.1"))]
fn affine_block_portable(job: &AffineJob, wealth: &mut [f64], per_unit: &mut [f64]) {
    affine_lanes(&PortableLanes(&job.keys), job, wealth, per_unit);
}

/// One month before any withdrawal, when no path can be depleted: W ← (W + c)·G, the same
/// arithmetic as [`step`] takes on a live path with d = 0.
#[inline(always)]
fn grow(wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
    for l in 0..LANES {
        let growth = drift * f64::from(shock[l]);
        wealth[l] = (wealth[l] + contribution) * growth;
    }
}

/// One month of docs/model.md §1 for a lane group, given each lane's exp(vol·Z).
#[inline(always)]
fn step(
    wealth: &mut [f64; LANES],
    depleted_at: &mut [f64; LANES],
    shock: &[f32; LANES],
    t: usize,
    contribution: f64,
    withdrawal: f64,
    drift: f64,
) {
    let month = t as f64;
    let withdrawing = withdrawal > 0.0;
    for l in 0..LANES {
        let growth = drift * f64::from(shock[l]);
        let x = wealth[l] + contribution - withdrawal;
        let dead = depleted_at[l] >= 0.0;
        let newly = !dead & withdrawing & (x <= 0.0);
        depleted_at[l] = if newly { month } else { depleted_at[l] };
        wealth[l] = if dead | newly { 0.0 } else { x * growth };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::prepare;

    #[test]
    fn percentile_memory_is_bounded_for_the_largest_request() {
        // 10⁷ paths × 1200 months: the pilot sample is bounded (100 snapshots × 2¹⁸ values ×
        // 8 bytes ≈ 210 MB), and nothing of the size of paths × snapshots is ever held.
        let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"horizon_months": 1200, "initial_wealth": 1},
            "market": {"expected_return": 0.05, "volatility": 0.1},
            "options": {"paths": 10_000_000}
        }))
        .unwrap();
        let goal = prepare(&request).unwrap();
        let plan = Plan::new(&goal, Detail::Full, WHOLE_SAMPLE_PATHS, CpuKernel::widest());
        assert_eq!(plan.months.len(), 100);
        assert!(!plan.sample_is_everything());
        let sample_bytes = plan.months.len() as u64 * goal.paths.div_ceil(plan.stride) * 8;
        assert!(sample_bytes < 256 << 20, "{sample_bytes}");
        // Small goals keep every value: at most 2¹⁶ paths × 100 snapshots × 8 bytes ≈ 52 MB.
        let mut small = request.clone();
        small.options.paths = WHOLE_SAMPLE_PATHS;
        let plan = Plan::new(
            &prepare(&small).unwrap(),
            Detail::Full,
            WHOLE_SAMPLE_PATHS,
            CpuKernel::widest(),
        );
        assert!(plan.sample_is_everything());
    }

    #[test]
    fn the_kernel_draws_the_normals_of_the_reference_definition() {
        // `normal::normal_at(seed, path, month)` is the definition the GPU backends must match;
        // the kernel's wealth must be exactly W0 · Π drift · exp(vol · Z) with those Z.
        let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"horizon_months": 7, "initial_wealth": 1000},
            "market": {"expected_return": 0.06, "volatility": 0.25},
            "options": {"paths": 40, "seed": 123_456_789_012_u64}
        }))
        .unwrap();
        let goal = prepare(&request).unwrap();
        let terminal = CpuBackend::new().terminal_wealth(&goal);
        for (path, &w) in terminal.iter().enumerate() {
            let mut expected = 1000.0;
            for month in 0..7 {
                let z = normal::normal_at(goal.seed, path as u32, month);
                let shock = normal::exp(goal.volatility[month as usize] * z);
                expected *= goal.drift[month as usize] * f64::from(shock);
            }
            assert_eq!(w, expected, "path {path}");
        }
    }

    #[test]
    fn every_kernel_computes_the_same_bits() {
        let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"initial_wealth": 1000, "monthly_contribution": 50, "monthly_withdrawal": 80,
                     "withdrawal_start_month": 20, "horizon_months": 75},
            "market": {"expected_return": 0.06, "volatility": 0.3, "inflation": 0.02}
        }))
        .unwrap();
        let goal = prepare(&request).unwrap();
        let months = goal.yearly_months();
        let paths = PathRange {
            first: 4096,
            step: 3,
            count: 1000,
        };
        let run = |kernel: CpuKernel| {
            let mut snapshots = vec![0.0; months.len() * BLOCK_PATHS];
            let mut depletion = vec![0.0; BLOCK_PATHS];
            simulate_block(
                kernel,
                &goal,
                &months,
                paths,
                &mut snapshots,
                &mut depletion,
            );
            (snapshots, depletion)
        };
        let portable = run(CpuKernel::Portable);
        assert!(
            portable.1[..1000].iter().any(|&d| d >= 0.0),
            "some paths deplete"
        );
        let no_withdrawal: crate::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"initial_wealth": 1000, "monthly_contribution": 50, "horizon_months": 75},
            "market": {"expected_return": 0.06, "volatility": 0.3},
            "options": {"paths": 3000}
        }))
        .unwrap();
        let saver = prepare(&no_withdrawal).unwrap();
        let unit = vec![1.0; saver.horizon as usize];
        let affine = |kernel: CpuKernel| {
            CpuBackend::new()
                .with_kernel(kernel)
                .unwrap()
                .affine_terminal(&saver, &unit)
        };
        let affine_portable = affine(CpuKernel::Portable);
        for kernel in CpuKernel::ALL {
            if !kernel.is_supported() {
                // Said where it shows: the harness captures eprintln!, not stderr itself.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "NOT TESTED on this CPU: the {kernel} kernel (every_kernel_computes_the_same_bits)"
                );
                continue;
            }
            assert_eq!(run(kernel), portable, "{kernel} block kernel");
            assert_eq!(affine(kernel), affine_portable, "{kernel} affine kernel");
        }
    }

    #[test]
    fn a_kernel_the_cpu_lacks_is_refused_by_name() {
        for kernel in CpuKernel::ALL {
            let backend = CpuBackend::new().with_kernel(kernel);
            assert_eq!(backend.is_ok(), kernel.is_supported(), "{kernel}");
            if let Err(e) = backend {
                assert!(e.to_string().contains(kernel.name()), "{e}");
            }
            assert_eq!(kernel.name().parse::<CpuKernel>(), Ok(kernel));
        }
        assert!("avx3".parse::<CpuKernel>().unwrap_err().contains("avx512"));
    }
}
