//! The CPU backend: the reference implementation of MODEL.md §1, and a fast one.
//!
//! Paths are simulated in blocks of [`BLOCK_PATHS`]; a block is cut into lane groups of
//! [`LANES`] paths whose state (wealth, depletion month) lives in fixed-size arrays, so every
//! step — Philox, Box-Muller, `exp`, the cash-flow update — is a loop over lanes that LLVM
//! vectorises. The block kernel is compiled for AVX-512, for AVX2 (with Philox in AVX2
//! intrinsics) and for SSE4.1, and the widest the CPU has is picked at run time, so a plain
//! `cargo build --release` is the fast build on any x86-64; all compute the same bits.
//!
//! Rayon spreads blocks over threads. Results are bit-identical for any thread count and any
//! chunk size: random numbers depend only on (seed, path, month); floating sums are taken per
//! block in a fixed order and then over blocks in block order; counts are integers; percentiles
//! are exact order statistics ([`crate::quantile`]).
//!
//! Memory stays bounded. When a goal's yearly snapshots fit in [`STORE_BUDGET_BYTES`] they are
//! kept, and the percentile pass reads them back; otherwise the percentile pass simulates the
//! paths again (the same numbers, since Philox is counter-based), so 10⁷ paths × 1200 months
//! need only per-thread block buffers, samples and the few values inside each bracket.

use multiversion::multiversion;
use rayon::prelude::*;

use super::{BackendInfo, Detail, SimulationBackend, Snapshot, Summary};
use crate::normal;
use crate::philox::{self, ROUNDS};
use crate::quantile::{brackets_from_sample, percentiles_of, Bracket, BracketTally};
use crate::validate::PreparedGoal;

/// Paths per block: the unit of work and of floating-point summation.
pub const BLOCK_PATHS: usize = 1024;
/// Paths per lane group: the width of the kernel's arrays.
pub const LANES: usize = 16;
/// Largest snapshot matrix kept in memory for one batch group; above it, re-simulate.
pub const STORE_BUDGET_BYTES: usize = 512 << 20;
/// Goals with at most this many paths select their percentiles from all paths at once.
const WHOLE_SAMPLE_PATHS: u64 = 1 << 16;
/// Sample size aimed at when snapshots are stored (the bracket pass over them is cheap).
const SAMPLE_STORED: u64 = 1 << 14;
/// Sample size aimed at when re-simulating (narrower brackets keep fewer values in memory).
const SAMPLE_STREAMED: u64 = 1 << 18;
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
    /// Largest snapshot matrix kept in memory; above it the percentile pass re-simulates.
    store_budget: usize,
    /// Half-width of the percentile brackets, in binomial standard deviations.
    bracket_margin: f64,
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
            store_budget: STORE_BUDGET_BYTES,
            bracket_margin: BRACKET_MARGIN,
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

    /// Keep snapshots in memory only up to `bytes` (0: always re-simulate for percentiles).
    /// Changes memory and speed, never results.
    pub fn with_store_budget(mut self, bytes: usize) -> Self {
        self.store_budget = bytes;
        self
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
            device: format!("{} CPU, {} kernel", std::env::consts::ARCH, simd_level()),
            parallelism: self.threads(),
        }
    }

    fn simulate(&self, batch: &[PreparedGoal], detail: Detail) -> Vec<Summary> {
        self.install(|| {
            let plans: Vec<Plan> = batch
                .iter()
                .map(|g| Plan::new(g, detail, self.store_budget))
                .collect();
            // Goals run side by side in groups whose stored snapshots fit the budget together.
            let mut out = Vec::with_capacity(batch.len());
            let mut start = 0;
            while start < batch.len() {
                let mut end = start;
                let mut bytes = 0;
                while end < batch.len()
                    && (end == start || bytes + plans[end].stored_bytes() <= self.store_budget)
                {
                    bytes += plans[end].stored_bytes();
                    end += 1;
                }
                let group: Vec<Summary> = (start..end)
                    .into_par_iter()
                    .map(|i| self.simulate_goal(&batch[i], &plans[i]))
                    .collect();
                out.extend(group);
                start = end;
            }
            out
        })
    }

    fn terminal_wealth(&self, goal: &PreparedGoal) -> Vec<f64> {
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
                        let first = b * BLOCK_PATHS;
                        simulate_block(
                            goal,
                            &months,
                            first,
                            dest.len(),
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

/// How one goal is reduced.
struct Plan {
    months: Vec<u32>,
    percentiles: Vec<f64>,
    blocks: usize,
    /// Every `stride`-th path is sampled for the percentile brackets.
    stride: u64,
    /// Keep the snapshots in memory (otherwise simulate again for the percentile pass).
    store: bool,
}

impl Plan {
    fn new(goal: &PreparedGoal, detail: Detail, store_budget: usize) -> Plan {
        let (months, percentiles) = match detail {
            Detail::Full => (goal.yearly_months(), goal.percentiles.clone()),
            Detail::Success => (vec![goal.horizon], Vec::new()),
        };
        let blocks = (goal.paths as usize).div_ceil(BLOCK_PATHS);
        let bytes = blocks * BLOCK_PATHS * months.len() * 8;
        let fits = !percentiles.is_empty() && bytes <= store_budget;
        // Up to WHOLE_SAMPLE_PATHS (and within the budget) every path is the sample and the
        // percentiles are selected from it in one pass. Larger goals that fit keep their
        // snapshots and tally brackets over them; the largest sample more and re-simulate.
        let (stride, store) = if fits && goal.paths <= WHOLE_SAMPLE_PATHS {
            (1, false)
        } else if fits {
            (goal.paths.div_ceil(SAMPLE_STORED), true)
        } else {
            (goal.paths.div_ceil(SAMPLE_STREAMED).max(1), false)
        };
        Plan {
            stride,
            months,
            percentiles,
            blocks,
            store,
        }
    }

    fn stored_bytes(&self) -> usize {
        if self.store {
            self.blocks * BLOCK_PATHS * self.months.len() * 8
        } else {
            0
        }
    }

    /// Whether the sample is every path, so percentiles come straight from it.
    fn sample_is_everything(&self) -> bool {
        self.stride == 1
    }
}

/// Per-thread state of the first pass, merged across tasks (integers and sets only, so the
/// merge order cannot change a result).
#[derive(Default)]
struct FirstPass {
    successes: u64,
    failed: u64,
    /// Depletion months' histogram, index = month.
    depletion_months: Vec<u64>,
    /// Paths depleted by each snapshot.
    depleted_by: Vec<u64>,
    /// Sampled values per snapshot.
    samples: Vec<Vec<f64>>,
}

impl FirstPass {
    fn new(plan: &Plan, horizon: u32) -> Self {
        FirstPass {
            depletion_months: vec![0; horizon as usize],
            depleted_by: vec![0; plan.months.len()],
            samples: vec![
                Vec::new();
                if plan.percentiles.is_empty() {
                    0
                } else {
                    plan.months.len()
                }
            ],
            ..Default::default()
        }
    }

    fn merge(mut self, other: FirstPass) -> FirstPass {
        self.successes += other.successes;
        self.failed += other.failed;
        add_counts(&mut self.depletion_months, &other.depletion_months);
        add_counts(&mut self.depleted_by, &other.depleted_by);
        for (mine, theirs) in self.samples.iter_mut().zip(other.samples) {
            mine.extend(theirs);
        }
        self
    }
}

fn add_counts(into: &mut [u64], from: &[u64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

impl CpuBackend {
    fn simulate_goal(&self, goal: &PreparedGoal, plan: &Plan) -> Summary {
        let s = plan.months.len();
        let n = goal.paths as usize;
        // Per block: one sum per snapshot, then the shortfall sum.
        let mut block_sums = vec![0.0; plan.blocks * (s + 1)];
        let mut stored = if plan.store {
            vec![0.0; plan.blocks * BLOCK_PATHS * s]
        } else {
            Vec::new()
        };
        let stored_chunk = if plan.store { BLOCK_PATHS * s } else { 1 };
        let mut stored_slices: Vec<&mut [f64]> = if plan.store {
            stored.chunks_mut(stored_chunk).collect()
        } else {
            (0..plan.blocks).map(|_| &mut [][..]).collect()
        };

        let first = block_sums
            .par_chunks_mut(s + 1)
            .zip(stored_slices.par_iter_mut())
            .enumerate()
            .with_min_len(self.chunk_blocks)
            .fold(
                || {
                    let scratch = if plan.store { 0 } else { s };
                    (
                        BlockBuffers::new(scratch),
                        FirstPass::new(plan, goal.horizon),
                    )
                },
                |(mut buf, mut acc), (b, (sums, keep))| {
                    let first_path = b * BLOCK_PATHS;
                    let count = BLOCK_PATHS.min(n - first_path);
                    // Stored snapshots are written in place; otherwise into the scratch block.
                    let BlockBuffers {
                        snapshots,
                        depletion,
                    } = &mut buf;
                    let snapshots: &mut [f64] = if plan.store { keep } else { snapshots };
                    simulate_block(goal, &plan.months, first_path, count, snapshots, depletion);
                    reduce_first(
                        goal,
                        plan,
                        first_path,
                        &snapshots[..],
                        &depletion[..count],
                        sums,
                        &mut acc,
                    );
                    (buf, acc)
                },
            )
            .map(|(_, acc)| acc)
            .reduce(|| FirstPass::new(plan, goal.horizon), FirstPass::merge);
        drop(stored_slices);

        // Floating sums over blocks, in block order.
        let mut totals = vec![0.0; s + 1];
        for sums in block_sums.chunks(s + 1) {
            for (t, x) in totals.iter_mut().zip(sums) {
                *t += x;
            }
        }

        let percentiles = self.percentiles(goal, plan, first.samples, &stored);
        let snapshots = plan
            .months
            .iter()
            .enumerate()
            .map(|(i, &month)| Snapshot {
                month,
                mean: totals[i] / n as f64,
                depleted: first.depleted_by[i],
                percentiles: percentiles.get(i).cloned().unwrap_or_default(),
            })
            .collect();
        let depleted: u64 = first.depletion_months.iter().sum();
        Summary {
            paths: goal.paths,
            successes: first.successes,
            depleted,
            median_depletion_month: median_of_histogram(&first.depletion_months),
            shortfall: (first.failed > 0).then(|| totals[s] / first.failed as f64),
            snapshots,
        }
    }

    /// Exact percentiles of every snapshot: from the sample when it is every path, otherwise by
    /// bracketed passes over the stored or re-simulated snapshots.
    fn percentiles(
        &self,
        goal: &PreparedGoal,
        plan: &Plan,
        mut samples: Vec<Vec<f64>>,
        stored: &[f64],
    ) -> Vec<Vec<(f64, f64)>> {
        if plan.percentiles.is_empty() {
            return Vec::new();
        }
        let n = goal.paths;
        let np = plan.percentiles.len();
        if plan.sample_is_everything() {
            // Every path is in the sample: select the order statistics from it directly.
            return samples
                .par_iter_mut()
                .map(|column| {
                    let values = percentiles_of(column, &plan.percentiles);
                    plan.percentiles.iter().copied().zip(values).collect()
                })
                .collect();
        }
        // (snapshot, percentile index, bracket) still to resolve.
        let margin = self.bracket_margin;
        let brackets: Vec<Vec<Bracket>> = samples
            .par_iter_mut()
            .map(|sample| brackets_from_sample(sample, &plan.percentiles, n, margin))
            .collect();
        let mut pending: Vec<(usize, usize, Bracket)> = brackets
            .into_iter()
            .enumerate()
            .flat_map(|(s, column)| column.into_iter().enumerate().map(move |(j, b)| (s, j, b)))
            .collect();
        drop(samples);
        let mut values = vec![vec![f64::NAN; np]; plan.months.len()];
        while !pending.is_empty() {
            let tallies = self.tally_pass(goal, plan, &pending, stored);
            let found: Vec<Option<f64>> = pending
                .par_iter()
                .zip(tallies)
                .map(|(&(_, j, bracket), mut tally)| {
                    tally.percentile(bracket, plan.percentiles[j], n)
                })
                .collect();
            let mut missed = Vec::new();
            for ((s, j, _), value) in pending.into_iter().zip(found) {
                match value {
                    Some(v) => values[s][j] = v,
                    // A miss is rare (about 1 in 10⁶ brackets): the next pass takes everything,
                    // which cannot miss.
                    None => missed.push((s, j, Bracket::ALL)),
                }
            }
            pending = missed;
        }
        values
            .into_iter()
            .map(|column| plan.percentiles.iter().copied().zip(column).collect())
            .collect()
    }

    /// One pass over every path's snapshots, tallying each pending bracket.
    fn tally_pass(
        &self,
        goal: &PreparedGoal,
        plan: &Plan,
        pending: &[(usize, usize, Bracket)],
        stored: &[f64],
    ) -> Vec<BracketTally> {
        let s = plan.months.len();
        let n = goal.paths as usize;
        let empty = || vec![BracketTally::default(); pending.len()];
        (0..plan.blocks)
            .into_par_iter()
            .with_min_len(self.chunk_blocks)
            .fold(
                || (BlockBuffers::new(if plan.store { 0 } else { s }), empty()),
                |(mut buf, mut tallies), b| {
                    let first_path = b * BLOCK_PATHS;
                    let count = BLOCK_PATHS.min(n - first_path);
                    let snapshots: &[f64] = if plan.store {
                        &stored[b * BLOCK_PATHS * s..(b + 1) * BLOCK_PATHS * s]
                    } else {
                        simulate_block(
                            goal,
                            &plan.months,
                            first_path,
                            count,
                            &mut buf.snapshots,
                            &mut buf.depletion,
                        );
                        &buf.snapshots
                    };
                    for (tally, &(snap, _, bracket)) in tallies.iter_mut().zip(pending) {
                        let column = &snapshots[snap * BLOCK_PATHS..snap * BLOCK_PATHS + count];
                        tally.observe(bracket, column);
                    }
                    (buf, tallies)
                },
            )
            .map(|(_, tallies)| tallies)
            .reduce(empty, |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.merge(y);
                }
                a
            })
    }
}

/// NumPy's median of the months recorded in `histogram`.
fn median_of_histogram(histogram: &[u64]) -> Option<f64> {
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
}

/// Fold a simulated block into the first pass: the block's floating sums into `sums`, and
/// counts and samples into `acc`. `snapshots` is snapshot-major, [`BLOCK_PATHS`] per snapshot;
/// `depletion` holds the block's `count` paths.
fn reduce_first(
    goal: &PreparedGoal,
    plan: &Plan,
    first_path: usize,
    snapshots: &[f64],
    depletion: &[f64],
    sums: &mut [f64],
    acc: &mut FirstPass,
) {
    let s = plan.months.len();
    let count = depletion.len();
    for (i, &month) in plan.months.iter().enumerate() {
        let column = &snapshots[i * BLOCK_PATHS..i * BLOCK_PATHS + count];
        let (sum, depleted) = column_stats(column, depletion, f64::from(month));
        sums[i] = sum;
        acc.depleted_by[i] += depleted;
        if let Some(sample) = acc.samples.get_mut(i) {
            let stride = plan.stride as usize;
            let offset = (stride - first_path % stride) % stride;
            sample.extend(column.iter().skip(offset).step_by(stride));
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

/// Simulate paths `first .. first + count` of `goal` (count ≤ [`BLOCK_PATHS`]).
///
/// Writes W at each of `months` into `snapshots[k * BLOCK_PATHS + i]` and the depletion month
/// (or −1) into `depletion[i]`. Lanes past `count` are simulated and ignored. Picks the AVX2
/// kernel when the CPU has it; both kernels compute the same bits.
fn simulate_block(
    goal: &PreparedGoal,
    months: &[u32],
    first: usize,
    count: usize,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) {
    let job = BlockJob {
        goal,
        keys: philox::round_keys(philox::key_of_seed(goal.seed)),
        months,
        first: first as u32,
        count,
    };
    #[cfg(target_arch = "x86_64")]
    if simd_level() == "avx2" {
        // SAFETY: the CPU supports AVX2 (`simd_level` checked).
        return unsafe { simulate_block_avx2(&job, snapshots, depletion) };
    }
    // AVX-512 (sixteen f32 lanes per register: LLVM vectorises the portable code wider than
    // the AVX2 kernel), SSE4.1, or the baseline.
    simulate_block_portable(&job, snapshots, depletion)
}

/// One block's work: which goal, its Philox round keys, the months to snapshot, and which
/// paths (`first .. first + count`).
struct BlockJob<'a> {
    goal: &'a PreparedGoal,
    keys: [[u32; 2]; ROUNDS],
    months: &'a [u32],
    first: u32,
    count: usize,
}

/// The block kernel with AVX2 Philox; everything else is the portable code, compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn simulate_block_avx2(job: &BlockJob, snapshots: &mut [f64], depletion: &mut [f64]) {
    let philox = Avx2Philox(philox::avx2::Keys::new(&job.keys));
    simulate_lanes(&philox, job, snapshots, depletion);
}

/// The block kernel in portable Rust, vectorised by LLVM: AVX-512 or SSE4.1 when the CPU has
/// them. (AVX-512 is not measured on the development machine, which lacks it; the bits are the
/// same, since no variant fuses multiply-adds.)
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq", "x86_64+sse4.1"))]
fn simulate_block_portable(job: &BlockJob, snapshots: &mut [f64], depletion: &mut [f64]) {
    simulate_lanes(&PortablePhilox(&job.keys), job, snapshots, depletion);
}

/// Where a lane group's Philox words come from.
trait LaneWords {
    /// Words of counter `(paths[l], quad, 0, 0)` for each lane.
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4];
}

struct PortablePhilox<'a>(&'a [[u32; 2]; ROUNDS]);

impl LaneWords for PortablePhilox<'_> {
    #[inline(always)]
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4] {
        philox::philox_lanes(paths, quad, self.0)
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2Philox(philox::avx2::Keys);

#[cfg(target_arch = "x86_64")]
impl LaneWords for Avx2Philox {
    #[inline(always)]
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4] {
        let mut out = [[0u32; LANES]; 4];
        for half in 0..LANES / 8 {
            let lanes: &[u32; 8] = paths[half * 8..half * 8 + 8]
                .try_into()
                .expect("eight lanes");
            // SAFETY: an `Avx2Philox` is only built inside `simulate_block_avx2`, which runs
            // only where AVX2 was detected.
            let words = unsafe { philox::avx2::philox8(lanes, quad, &self.0) };
            for (o, w) in out.iter_mut().zip(words) {
                o[half * 8..half * 8 + 8].copy_from_slice(&w);
            }
        }
        out
    }
}

/// The month loop over lane groups, shared by both kernels.
#[inline(always)]
fn simulate_lanes(
    philox: &impl LaneWords,
    job: &BlockJob,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) {
    let &BlockJob {
        goal,
        months,
        first,
        count,
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
        let paths: [u32; LANES] = std::array::from_fn(|l| first + (group + l) as u32);
        let mut wealth = [goal.initial_wealth; LANES];
        let mut depleted_at = [NOT_DEPLETED; LANES];
        let mut next = 0;
        let mut t = 0usize;
        for q in 0..quads {
            let words = philox.words(&paths, q as u32);
            // The quad's four months of growth factors first, lane-wise and independent of
            // wealth, so they pipeline; then the four dependent updates.
            let mut growth = [[0.0f32; LANES]; 4];
            let [w0, w1, w2, w3] = &words;
            let [g0, g1, g2, g3] = &mut growth;
            normal::box_muller_lanes(w0, w1, g0, g1);
            normal::box_muller_lanes(w2, w3, g2, g3);
            let months_left = (horizon - t).min(4);
            for (j, g) in growth.iter_mut().enumerate().take(months_left) {
                normal::exp_scaled_lanes(goal.volatility[t + j], g);
            }
            for g in &growth[..months_left] {
                if t < first_withdrawal {
                    // No withdrawal yet, so no path can be depleted: W ← (W + c)·G.
                    grow(&mut wealth, g, goal.contribution[t], goal.drift[t]);
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

/// One month before any withdrawal, when no path can be depleted: W ← (W + c)·G, the same
/// arithmetic as [`step`] takes on a live path with d = 0.
#[inline(always)]
fn grow(wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
    for l in 0..LANES {
        let growth = drift * f64::from(shock[l]);
        wealth[l] = (wealth[l] + contribution) * growth;
    }
}

/// One month of MODEL.md §1 for a lane group, given each lane's exp(vol·Z).
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

/// The widest SIMD level the block kernel uses on this CPU.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
        {
            return "avx512";
        }
        if std::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
        if std::is_x86_feature_detected!("sse4.1") {
            return "sse4.1";
        }
    }
    "baseline"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::prepare;

    #[test]
    fn the_largest_request_re_simulates_instead_of_storing() {
        // 10⁷ paths × 1200 months: 100 yearly snapshots would need 8 GB, so nothing is stored
        // and the sample is bounded (100 snapshots × 2¹⁸ values × 8 bytes ≈ 210 MB).
        let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"horizon_months": 1200, "initial_wealth": 1},
            "market": {"expected_return": 0.05, "volatility": 0.1},
            "options": {"paths": 10_000_000}
        }))
        .unwrap();
        let goal = prepare(&request).unwrap();
        let plan = Plan::new(&goal, Detail::Full, STORE_BUDGET_BYTES);
        assert!(!plan.store);
        assert_eq!(plan.stored_bytes(), 0);
        assert_eq!(plan.months.len(), 100);
        let sample_bytes = plan.months.len() as u64 * goal.paths.div_ceil(plan.stride) * 8;
        assert!(sample_bytes < 256 << 20, "{sample_bytes}");
        // The standard goal at 10⁶ paths is stored: 30 snapshots × 10⁶ × 8 bytes.
        let mut standard = request.clone();
        standard.goal.horizon_months = 360;
        standard.options.paths = 1_000_000;
        let plan = Plan::new(
            &prepare(&standard).unwrap(),
            Detail::Full,
            STORE_BUDGET_BYTES,
        );
        assert!(plan.store);
    }

    #[test]
    fn avx2_and_portable_kernels_compute_the_same_bits() {
        let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"initial_wealth": 1000, "monthly_contribution": 50, "monthly_withdrawal": 80,
                     "withdrawal_start_month": 20, "horizon_months": 75},
            "market": {"expected_return": 0.06, "volatility": 0.3, "inflation": 0.02}
        }))
        .unwrap();
        let goal = prepare(&request).unwrap();
        let months = goal.yearly_months();
        let job = BlockJob {
            goal: &goal,
            keys: philox::round_keys(philox::key_of_seed(9)),
            months: &months,
            first: 4096,
            count: 1000,
        };
        let run = |avx2: bool| {
            let mut snapshots = vec![0.0; months.len() * BLOCK_PATHS];
            let mut depletion = vec![0.0; BLOCK_PATHS];
            if avx2 {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: only called after detecting AVX2 below.
                unsafe {
                    simulate_block_avx2(&job, &mut snapshots, &mut depletion)
                };
            } else {
                simulate_block_portable(&job, &mut snapshots, &mut depletion);
            }
            (snapshots, depletion)
        };
        let portable = run(false);
        assert!(
            portable.1[..1000].iter().any(|&d| d >= 0.0),
            "some paths deplete"
        );
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            assert_eq!(run(true), portable);
        }
    }
}
