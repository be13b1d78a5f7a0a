//! What the GPU backends (WGSL through wgpu, CUDA through cudarc) share: how a batch of goals
//! becomes parameter buffers in chunks that fit the device, and how the summaries the kernels
//! leave on the device become [`Summary`]s. The kernels (`shaders/simulate.wgsl`,
//! `kernels/simulate.cu`) have the same buffers and the same three steps:
//!
//! 1. **tally**: simulate every path; count successes and depletions (per snapshot, and per
//!    month of depletion), sum each snapshot per workgroup of 256 paths (and the shortfall of
//!    failed paths), and histogram each snapshot over log2 bins;
//! 2. **locate**: for each wanted order statistic, the bin that holds it and the count below;
//! 3. **collect**: simulate the same paths again (same Philox numbers) and keep only the values
//!    in those bins; the host sorts each bin's few values and selects exactly.
//!
//! Detail::Success runs the tally alone, with the horizon as its one snapshot.
//!
//! A plan's yearly fan charts take the same steps 2 and 3 ([`plan_years`]) over the samples
//! its launches left on the device (the plan kernel is too dear to run twice, so the collect
//! pass reads them again rather than re-simulating); [`select_columns`] is the host's side of
//! both.

use rayon::prelude::*;

use crate::backend::{Detail, Snapshot, Summary};
use crate::bootstrap::Bootstrap;
use crate::bridge::BrownianBridge;
use crate::plan::ReducedYear;
use crate::quantile::{interpolate, ranks_of};
use crate::rebalance::{AssetPaths, Rule};
use crate::sampler::{PathSampler, ReplicateCounts, Spread};
use crate::validate::PreparedGoal;

/// Paths per workgroup (thread block).
pub const BLOCK: u32 = 256;
/// Histogram bins per snapshot; bin 0 holds exact zeros.
pub const BINS: u32 = 4096;
/// The lowest positive bin edge, 2^−10, and 64 bins per octave: bins 1 … 4095 cover
/// [2^−10, 2^54) in steps of 1.1%; values beyond either end fall in the end bins.
pub const LOG2_LOW: f32 = -10.0;
pub const BINS_PER_OCTAVE: f32 = 64.0;
/// An unused wanted-bin entry.
pub const NONE: u32 = u32::MAX;

/// One goal as the kernels read it (36 words, the WGSL/CUDA `Goal` struct).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GoalParams {
    pub paths: u32,
    pub horizon: u32,
    pub month_base: u32,
    pub yearly: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub snaps: u32,
    pub counts_base: u32,
    pub sums_base: u32,
    pub hist_base: u32,
    pub wanted_base: u32,
    pub wanted_per_snap: u32,
    pub target: f32,
    pub initial: f32,
    pub target_lo: f32,
    pub initial_lo: f32,
    /// 0: §1's lognormal month; 1: Student-t (docs/model.md §4.1), with the constants below;
    /// 2: regime switching (§4.2); 3, 4: a bootstrap from a history (§4.3) in circular or
    /// stationary blocks.
    pub model: u32,
    pub t_d: f32,
    pub t_c: f32,
    pub t_scale: f32,
    /// K regimes; regime k's months sit at `month_base + k·horizon`.
    pub regimes: u32,
    /// Where the chain's K + 1 rows of K − 1 thresholds sit in `vols`.
    pub regime_table: u32,
    /// Where stochastic inflation's six constants sit in `vols` (θ, φ, the innovation's scale,
    /// π_0, ρ, sqrt(1 − ρ²): docs/model.md §4.4), or [`NONE`] under a deterministic rate.
    pub inflation_table: u32,
    /// 1 when success compares the real W_T / I_T with `target` (a real target under
    /// stochastic inflation), 0 when it compares W_T.
    pub target_real: u32,
    /// A bootstrap's history months N (0 without one).
    pub bootstrap_rows: u32,
    /// Its block length b.
    pub bootstrap_block: u32,
    /// Where its table starts in `months`: entry e is the f32 pair (hi, lo) at
    /// `months[bootstrap_table + e / 2]`, `.xy` for even e, `.zw` for odd; month t's entry in
    /// `vols` holds its segment's first entry, as a float (exact: tables hold under 2²⁴).
    pub bootstrap_table: u32,
    /// The table entry of the inflation column's first row, or [`NONE`].
    pub bootstrap_inflation: u32,
    /// Per-asset paths (docs/model.md §4.5, `shaders/assets.wgsl`): K assets, or 0 for §1's
    /// one portfolio.
    pub assets: u32,
    /// 0: annual; 1: band; 2: none.
    pub asset_rule: u32,
    /// Where the asset table's f64 pairs start in `months`: each asset's drift, the band, then
    /// the weights month by month (entry e at `months[asset_table + e / 2]`, as a bootstrap's).
    pub asset_table: u32,
    /// Where its f32s start in `months` (four an entry): each asset's volatility, then the
    /// Cholesky factor row-major.
    pub asset_floats: u32,
    /// The sampler (docs/model.md §6): [`SAMPLER_PHILOX`], [`SAMPLER_ANTITHETIC`] or
    /// [`SAMPLER_SOBOL`].
    pub sampler: u32,
    /// Where the sampler's own counts start in `counts` ([`spread_slots`]).
    pub spread_base: u32,
    /// `sobol`: log2 of the points per replicate (path p is point p mod 2^m of replicate
    /// p >> m); 0 for the others.
    pub points_log2: u32,
    /// `sobol`: where its bridge table starts in `months` (f32s four to an entry: each
    /// month's coordinate, [`sobol_table`]); 0 for the others.
    pub sobol_table: u32,
}

/// `GoalParams::sampler`: each path draws its own Philox streams.
pub const SAMPLER_PHILOX: u32 = 0;
/// `GoalParams::sampler`: antithetic pairs. Paths 2k and 2k + 1 read path k's streams and the
/// second negates the market normals; the kernels count the pairs whose two paths both
/// succeeded and both were depleted, at `spread_base` and after it.
pub const SAMPLER_ANTITHETIC: u32 = 1;
/// `GoalParams::sampler`: randomized quasi-Monte Carlo (`shaders/sobol_paths.wgsl`); the
/// kernels count each replicate's successes and depletions, two words a replicate from
/// `spread_base`.
pub const SAMPLER_SOBOL: u32 = 2;

/// The sampler's code in `GoalParams::sampler`.
fn sampler_code(sampler: PathSampler) -> u32 {
    match sampler {
        PathSampler::Philox => SAMPLER_PHILOX,
        PathSampler::Antithetic => SAMPLER_ANTITHETIC,
        PathSampler::Sobol { .. } => SAMPLER_SOBOL,
    }
}

/// The counts a goal's sampler adds after its others: antithetic pairs' two classes, each
/// `sobol` replicate's successes and depletions.
fn spread_slots(sampler: PathSampler) -> usize {
    match sampler {
        PathSampler::Philox => 0,
        PathSampler::Antithetic => 2,
        PathSampler::Sobol { replicates, .. } => 2 * replicates as usize,
    }
}

/// A `sobol` goal's bridge table as `shaders/sobol_paths.wgsl` reads it: month l's coordinate
/// (the order in which [`BrownianBridge`] fills it), f32s four to an entry, padded to an even
/// number of entries (so that `vols` keeps step, one slot per two entries); empty for the
/// other samplers.
pub fn sobol_table(goal: &PreparedGoal) -> Vec<[f32; 4]> {
    if !matches!(goal.sampler, PathSampler::Sobol { .. }) {
        return Vec::new();
    }
    let coordinates = BrownianBridge::new(goal.horizon as usize).coordinates_by_month();
    let mut entries: Vec<[f32; 4]> = coordinates
        .chunks(4)
        .map(|c| {
            let mut quad = [0.0f32; 4];
            for (q, &d) in quad.iter_mut().zip(c) {
                *q = d as f32;
            }
            quad
        })
        .collect();
    if entries.len() % 2 == 1 {
        entries.push([0.0; 4]);
    }
    entries
}

/// The direction integers of the first `dimensions` Sobol' dimensions, 32 a dimension, as
/// `shaders/sobol_paths.wgsl` reads them.
fn sobol_directions(dimensions: usize) -> Vec<u32> {
    let numbers = crate::sobol::direction_numbers();
    (0..dimensions)
        .flat_map(|d| numbers.of_dimension(d).iter().copied())
        .collect()
}

/// The uniform parameters of a dispatch (8 words, the kernels' `Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DispatchParams {
    pub mode: u32,
    pub bins: u32,
    pub block_base: u32,
    pub log2_low: f32,
    pub bins_per_octave: f32,
    pub pad: [u32; 3],
}

impl DispatchParams {
    pub fn new(mode: u32, block_base: u32) -> Self {
        DispatchParams {
            mode,
            bins: BINS,
            block_base,
            log2_low: LOG2_LOW,
            bins_per_octave: BINS_PER_OCTAVE,
            pad: [0; 3],
        }
    }
}

/// Everything one chunk of goals needs on the device.
#[derive(Debug, Clone, Default)]
pub struct ChunkInput {
    pub goals: Vec<GoalParams>,
    /// Two entries per month of every goal: (contribution hi, lo, withdrawal hi, lo) and
    /// (drift hi, lo, 0, 0), each pair summing to the f64.
    pub months: Vec<[f32; 4]>,
    pub vols: Vec<f32>,
    pub counts_len: usize,
    pub sums_len: usize,
    pub hist_len: usize,
    /// The most blocks any goal of the chunk needs.
    pub max_blocks: u32,
    /// The Sobol' direction integers the chunk's `sobol` goals need (32 a dimension, one
    /// dimension a month of the longest); empty without them.
    pub directions: Vec<u32>,
}

/// What the tally leaves to read back.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub counts: Vec<u32>,
    pub sums: Vec<f32>,
}

/// The two steps after a tally, on the histograms a device holds (goals' chunks and plans'
/// yearly columns alike).
pub trait Select {
    /// For each query (histogram offset, rank, bins, 0): (bin, count below, bin count, 0).
    fn locate(&mut self, queries: &[[u32; 4]]) -> Result<Vec<[u32; 4]>, String>;
    /// The collect pass: `cursors` start at each slot's first index; returns the cursors after
    /// and the values.
    fn collect(
        &mut self,
        wanted: &[[u32; 4]],
        cursors: &[u32],
        values: usize,
    ) -> Result<(Vec<u32>, Vec<f32>), String>;
}

/// A chunk of goals on the device, between its steps.
pub trait ChunkRun: Select {
    fn tally(&mut self) -> Result<Tally, String>;
}

/// A GPU that runs chunks.
pub trait ChunkDevice {
    /// Largest storage buffer binding, in bytes.
    fn max_binding(&self) -> u64;
    fn open(&self, input: &ChunkInput) -> Result<Box<dyn ChunkRun + '_>, String>;
}

/// The horizons of the snapshots a goal reports.
/// Under stochastic inflation the months come twice: W_s, then the real W_s / I_s.
fn snapshot_months(goal: &PreparedGoal, detail: Detail) -> Vec<u32> {
    goal.snapshot_columns(match detail {
        Detail::Full => goal.yearly_months(),
        Detail::Success => vec![goal.horizon],
    })
}

/// Split a batch into chunks whose buffers fit `max_binding` bytes and 65,535 goals.
fn chunks(batch: &[PreparedGoal], detail: Detail, max_binding: u64) -> Vec<std::ops::Range<usize>> {
    let budget = max_binding.min(256 << 20);
    let mut out = Vec::new();
    let mut start = 0;
    let (mut hist, mut sums, mut months) = (0u64, 0u64, 0u64);
    for (i, goal) in batch.iter().enumerate() {
        let snaps = snapshot_months(goal, detail).len() as u64;
        let h = if detail == Detail::Full {
            snaps * u64::from(BINS) * 4
        } else {
            0
        };
        let s = goal.paths.div_ceil(u64::from(BLOCK)) * sums_width(goal, snaps as usize) as u64 * 4;
        let m = schedule_entries(goal) as u64 * 32;
        let over = hist + h > budget || sums + s > budget || months + m > budget;
        if i > start && (over || i - start == 65_535) {
            out.push(start..i);
            start = i;
            (hist, sums, months) = (0, 0, 0);
        }
        hist += h;
        sums += s;
        months += m;
    }
    if start < batch.len() {
        out.push(start..batch.len());
    }
    out
}

/// Entries a goal takes in `vols` (and pairs in `months`): its months, once per regime, its
/// chain's thresholds, its bootstrap's or assets' table and its inflation model's constants.
fn schedule_entries(goal: &PreparedGoal) -> usize {
    goal.drift.len()
        + goal.regimes.as_ref().map_or(0, |c| c.thresholds.len())
        + goal.inflation.map_or(0, |_| INFLATION_CONSTANTS)
        + goal.bootstrap.as_ref().map_or(0, bootstrap_slots)
        + goal
            .asset_paths
            .as_ref()
            .map_or(0, |a| asset_entries(a).div_ceil(2))
        + sobol_table(goal).len() / 2
}

/// Values per block in the sums: each snapshot, the shortfall, and under per-asset paths the
/// rebalances and turnover (the kernels' `sums_width`).
fn sums_width(goal: &PreparedGoal, snaps: usize) -> usize {
    snaps + if goal.asset_paths.is_some() { 3 } else { 1 }
}

/// A per-asset goal's table as `shaders/assets.wgsl` reads it from `months`: the f64 pairs
/// (each asset's drift, the band, the T × K weights) two to an entry, then from entry
/// `floats` the f32s (each asset's volatility, the Cholesky factor) four to an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetTable {
    pub entries: Vec<[f32; 4]>,
    pub floats: u32,
}

impl AssetTable {
    pub fn of(assets: &AssetPaths) -> Self {
        let mut entries: Vec<[f32; 4]> = asset_pairs(assets)
            .chunks(2)
            .map(|c| {
                let (a, b) = (split(c[0]), c.get(1).map_or((0.0, 0.0), |&x| split(x)));
                [a.0, a.1, b.0, b.1]
            })
            .collect();
        let floats = entries.len() as u32;
        entries.extend(asset_floats(assets).chunks(4).map(|c| {
            let mut quad = [0.0f32; 4];
            quad[..c.len()].copy_from_slice(c);
            quad
        }));
        debug_assert_eq!(entries.len(), asset_entries(assets));
        AssetTable { entries, floats }
    }
}

/// The f64 pairs of an asset table (each asset's drift, the band, the T × K weights).
fn asset_pairs(assets: &AssetPaths) -> Vec<f64> {
    let band = match assets.rule {
        Rule::Band(b) => b,
        Rule::Annual | Rule::None => 0.0,
    };
    let mut pairs = assets.drift.clone();
    pairs.push(band);
    pairs.extend_from_slice(&assets.weights);
    pairs
}

/// The f32s of an asset table (each asset's volatility, the Cholesky factor).
fn asset_floats(assets: &AssetPaths) -> Vec<f32> {
    let mut floats = assets.volatility.clone();
    floats.extend_from_slice(&assets.cholesky);
    floats
}

/// `months` entries an asset table takes: two pairs or four f32s an entry.
fn asset_entries(assets: &AssetPaths) -> usize {
    let pairs = assets.count + 1 + assets.weights.len();
    let floats = assets.count + assets.cholesky.len();
    pairs.div_ceil(2) + floats.div_ceil(4)
}

/// Entries a bootstrap's table takes in `vols` (each with its pair of `months` entries, which
/// hold four of the table's f32 pairs).
fn bootstrap_slots(bootstrap: &Bootstrap) -> usize {
    bootstrap.table_entries().div_ceil(4)
}

/// Constants of stochastic inflation in `vols`.
const INFLATION_CONSTANTS: usize = 6;

/// An f64 as two f32 whose sum is it to about 1e-15 (the kernels add them in f64).
pub fn split(x: f64) -> (f32, f32) {
    let hi = x as f32;
    (hi, (x - f64::from(hi)) as f32)
}

/// The layout of one chunk: its input and where each goal's results sit.
fn layout(goals: &[PreparedGoal], detail: Detail) -> (ChunkInput, Vec<Vec<u32>>) {
    let mut input = ChunkInput::default();
    let mut snapshots = Vec::with_capacity(goals.len());
    let (mut counts, mut sums, mut hist, mut wanted) = (0usize, 0usize, 0usize, 0usize);
    for goal in goals {
        let snaps = snapshot_months(goal, detail);
        let blocks = goal.paths.div_ceil(u64::from(BLOCK)) as u32;
        let wanted_per_snap = match detail {
            Detail::Full => 2 * goal.percentiles.len() as u32,
            Detail::Success => 0,
        };
        let seed = goal.seed;
        let table = goal.asset_paths.as_ref().map(AssetTable::of);
        // The asset table follows the months, the chain's thresholds and a bootstrap's table.
        let asset_table = 2
            * (input.vols.len()
                + goal.drift.len()
                + goal.regimes.as_ref().map_or(0, |c| c.thresholds.len())
                + goal.bootstrap.as_ref().map_or(0, bootstrap_slots)) as u32;
        input.goals.push(GoalParams {
            paths: goal.paths as u32,
            horizon: goal.horizon,
            month_base: input.vols.len() as u32,
            yearly: u32::from(detail == Detail::Full),
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            snaps: snaps.len() as u32,
            counts_base: counts as u32,
            sums_base: sums as u32,
            hist_base: hist as u32,
            wanted_base: wanted as u32,
            wanted_per_snap,
            target: split(goal.success_target()).0,
            initial: split(goal.initial_wealth).0,
            target_lo: split(goal.success_target()).1,
            initial_lo: split(goal.initial_wealth).1,
            model: match (&goal.student_t, &goal.regimes, &goal.bootstrap) {
                (Some(_), _, _) => 1,
                (None, Some(_), _) => 2,
                (None, None, Some(b)) => 3 + u32::from(b.stationary),
                (None, None, None) => 0,
            },
            t_d: goal.student_t.map_or(0.0, |t| t.d),
            t_c: goal.student_t.map_or(0.0, |t| t.c),
            t_scale: goal.student_t.map_or(0.0, |t| t.scale),
            regimes: goal.regimes.as_ref().map_or(1, |c| c.count() as u32),
            regime_table: (input.vols.len() + goal.drift.len()) as u32,
            inflation_table: match goal.inflation {
                Some(_) => (input.vols.len() + schedule_entries(goal) - INFLATION_CONSTANTS) as u32,
                None => NONE,
            },
            target_real: u32::from(goal.target_real.is_some()),
            bootstrap_rows: goal.bootstrap.as_ref().map_or(0, |b| b.rows),
            bootstrap_block: goal.bootstrap.as_ref().map_or(0, |b| b.block),
            bootstrap_table: 2
                * (input.vols.len()
                    + goal.drift.len()
                    + goal.regimes.as_ref().map_or(0, |c| c.thresholds.len()))
                    as u32,
            bootstrap_inflation: match &goal.bootstrap {
                Some(Bootstrap {
                    growth,
                    inflation: Some(_),
                    ..
                }) => growth.len() as u32,
                _ => NONE,
            },
            assets: goal.asset_paths.as_ref().map_or(0, |a| a.count as u32),
            asset_rule: match goal.asset_paths.as_ref().map(|a| a.rule) {
                Some(Rule::Band(_)) => 1,
                Some(Rule::None) => 2,
                Some(Rule::Annual) | None => 0,
            },
            asset_table,
            asset_floats: asset_table + table.as_ref().map_or(0, |t| t.floats),
            sampler: sampler_code(goal.sampler),
            spread_base: (counts + 1 + snaps.len() + goal.horizon as usize + 1) as u32,
            points_log2: match goal.sampler {
                PathSampler::Sobol { points_log2, .. } => points_log2,
                _ => 0,
            },
            // After the asset table (the two never come together: validate.rs).
            sobol_table: asset_table
                + table
                    .as_ref()
                    .map_or(0, |t| t.entries.len().next_multiple_of(2)) as u32,
        });
        let horizon = goal.horizon as usize;
        // Regime k's months at k·horizon (the flows repeat: every regime's month has them).
        for (i, (&drift, &vol)) in goal.drift.iter().zip(&goal.volatility).enumerate() {
            let t = i % horizon;
            // A bootstrap's month holds its segment's first table entry in place of a vol.
            let vol = match &goal.bootstrap {
                Some(b) => b.month_table[t] as f32,
                None => vol,
            };
            let (c, d, drift) = (
                split(goal.contribution[t]),
                split(goal.withdrawal[t]),
                split(drift),
            );
            input.months.push([c.0, c.1, d.0, d.1]);
            input.months.push([drift.0, drift.1, 0.0, 0.0]);
            input.vols.push(vol);
        }
        // The chain's thresholds: integers below 2^24, exact in f32. `months` keeps step
        // with `vols` (one entry pair per entry), so that month_base indexes both.
        for &theta in goal.regimes.iter().flat_map(|c| &c.thresholds) {
            input.months.push([0.0; 4]);
            input.months.push([0.0; 4]);
            input.vols.push(theta as f32);
        }
        if let Some(b) = &goal.bootstrap {
            // Four f32 pairs per slot: growth g_s(row) for every segment, then 1 + π(row).
            let entries: Vec<f64> = b
                .growth
                .iter()
                .chain(b.inflation.iter().flatten())
                .copied()
                .collect();
            for chunk in entries.chunks(4) {
                let pair = |k: usize| chunk.get(k).map_or((0.0, 0.0), |&x| split(x));
                let [a, b, c, d] = [pair(0), pair(1), pair(2), pair(3)];
                input.months.push([a.0, a.1, b.0, b.1]);
                input.months.push([c.0, c.1, d.0, d.1]);
                input.vols.push(0.0);
            }
        }
        if let Some(AssetTable { mut entries, .. }) = table {
            // `vols` keeps step (one slot per two entries): the table may end on an unused one.
            if entries.len() % 2 == 1 {
                entries.push([0.0; 4]);
            }
            input
                .vols
                .extend(std::iter::repeat_n(0.0, entries.len() / 2));
            input.months.extend(entries);
        }
        let bridge = sobol_table(goal);
        if !bridge.is_empty() {
            input
                .vols
                .extend(std::iter::repeat_n(0.0, bridge.len() / 2));
            input.months.extend(bridge);
            let dimensions = goal.horizon as usize * 32;
            if input.directions.len() < dimensions {
                input.directions = sobol_directions(goal.horizon as usize);
            }
        }
        if let Some(model) = goal.inflation {
            input.vols.extend([
                model.mean,
                model.persistence,
                model.innovation,
                model.initial,
                model.shock_weight,
                model.own_weight,
            ]);
            input.months.extend([[0.0; 4]; 2 * INFLATION_CONSTANTS]);
        }
        // [successes, depleted by each snapshot…, depleted in each month…, clamped months,
        // the sampler's own counts…]
        counts += 1 + snaps.len() + goal.horizon as usize + 1 + spread_slots(goal.sampler);
        // One row per block: the snapshots, the shortfall (and rebalances and turnover).
        sums += blocks as usize * sums_width(goal, snaps.len());
        if detail == Detail::Full {
            hist += snaps.len() * BINS as usize;
        }
        wanted += snaps.len() * wanted_per_snap as usize;
        input.max_blocks = input.max_blocks.max(blocks);
        snapshots.push(snaps);
    }
    input.counts_len = counts;
    input.sums_len = sums;
    input.hist_len = hist;
    (input, snapshots)
}

/// [`simulate`] as a backend's answer: a failure is `BackendError::Failed` of `kind`.
pub fn simulate_as(
    kind: super::BackendKind,
    device: &dyn ChunkDevice,
    batch: &[PreparedGoal],
    detail: Detail,
) -> Result<Vec<Summary>, super::BackendError> {
    simulate(device, batch, detail).map_err(|reason| super::BackendError::Failed { kind, reason })
}

/// Simulate a batch on a GPU and reduce it to summaries.
pub fn simulate(
    device: &dyn ChunkDevice,
    batch: &[PreparedGoal],
    detail: Detail,
) -> Result<Vec<Summary>, String> {
    let mut out = Vec::with_capacity(batch.len());
    for range in chunks(batch, detail, device.max_binding()) {
        let goals = &batch[range];
        let (input, snapshots) = layout(goals, detail);
        let mut run = device.open(&input)?;
        let tally = run.tally()?;
        let percentiles = match detail {
            Detail::Full => {
                let budget = collect_budget(device.max_binding());
                select_percentiles(run.as_mut(), &input, goals, &snapshots, budget)?
            }
            Detail::Success => vec![Vec::new(); goals.len()],
        };
        for (k, goal) in goals.iter().enumerate() {
            out.push(summary(
                goal,
                &input.goals[k],
                &snapshots[k],
                &tally,
                percentiles[k].clone(),
            ));
        }
    }
    Ok(out)
}

/// One goal's summary from the chunk's tallies.
fn summary(
    goal: &PreparedGoal,
    params: &GoalParams,
    months: &[u32],
    tally: &Tally,
    mut percentiles: Vec<Vec<(f64, f64)>>,
) -> Summary {
    let base = params.counts_base as usize;
    let snaps = months.len();
    let n = goal.paths as f64;
    let depletion: Vec<u64> = tally.counts
        [base + 1 + snaps..base + 1 + snaps + goal.horizon as usize]
        .iter()
        .map(|&c| u64::from(c))
        .collect();
    let blocks = goal.paths.div_ceil(u64::from(BLOCK)) as usize;
    let width = sums_width(goal, snaps);
    let row = |b: usize| {
        let start = params.sums_base as usize + b * width;
        &tally.sums[start..start + width]
    };
    let mut totals = vec![0.0f64; width];
    for b in 0..blocks {
        for (t, &v) in totals.iter_mut().zip(row(b)) {
            *t += f64::from(v);
        }
    }
    let successes = u64::from(tally.counts[base]);
    let failed = goal.paths - successes;
    if percentiles.is_empty() {
        percentiles = vec![Vec::new(); snaps];
    }
    Summary {
        paths: goal.paths,
        successes,
        depleted: depletion.iter().sum(),
        median_depletion_month: crate::backend::cpu::median_of_histogram(&depletion),
        shortfall: (failed > 0).then(|| totals[snaps] / failed as f64),
        snapshots: months
            .iter()
            .enumerate()
            .zip(percentiles)
            .map(|((s, &month), percentiles)| Snapshot {
                month,
                mean: totals[s] / n,
                depleted: u64::from(tally.counts[base + 1 + s]),
                percentiles,
            })
            .collect(),
        clamped_months: u64::from(tally.counts[base + 1 + snaps + goal.horizon as usize]),
        // Per-asset paths: whole counts in f32 sums per block (exact below 2^24).
        rebalances: if goal.asset_paths.is_some() {
            totals[snaps + 1] as u64
        } else {
            0
        },
        turnover: if goal.asset_paths.is_some() {
            totals[snaps + 2]
        } else {
            0.0
        },
        spread: spread_of(goal, params, tally, successes, depletion.iter().sum()),
    }
}

/// The sampler's spread from the kernel's counts: antithetic pairs by how many of their two
/// paths succeeded (and were depleted), from the pairs with both and the totals.
fn spread_of(
    goal: &PreparedGoal,
    params: &GoalParams,
    tally: &Tally,
    successes: u64,
    depleted: u64,
) -> Spread {
    match goal.sampler {
        PathSampler::Antithetic => {
            let pairs = goal.paths / 2;
            let classes = |total: u64, both: u32| {
                let both = u64::from(both);
                let one = total - 2 * both;
                [pairs - one - both, one, both]
            };
            let base = params.spread_base as usize;
            Spread::Pairs {
                successes: classes(successes, tally.counts[base]),
                depleted: classes(depleted, tally.counts[base + 1]),
            }
        }
        PathSampler::Sobol {
            replicates,
            points_log2,
        } => {
            let base = params.spread_base as usize;
            Spread::Replicates(
                (0..replicates as usize)
                    .map(|r| ReplicateCounts {
                        paths: 1 << points_log2,
                        successes: u64::from(tally.counts[base + 2 * r]),
                        depleted: u64::from(tally.counts[base + 2 * r + 1]),
                    })
                    .collect(),
            )
        }
        PathSampler::Philox => Spread::Paths,
    }
}

/// One goal's percentiles: per snapshot, (percentile, value) pairs.
type GoalPercentiles = Vec<Vec<(f64, f64)>>;

/// Steps 2 and 3: the exact percentiles of every snapshot of every goal of the chunk.
fn select_percentiles(
    run: &mut dyn ChunkRun,
    input: &ChunkInput,
    goals: &[PreparedGoal],
    snapshots: &[Vec<u32>],
    budget: usize,
) -> Result<Vec<GoalPercentiles>, String> {
    let mut columns = Vec::new();
    for (k, goal) in goals.iter().enumerate() {
        let params = &input.goals[k];
        for s in 0..snapshots[k].len() as u32 {
            columns.push(Column {
                hist: params.hist_base + s * BINS,
                wanted: params.wanted_base + s * params.wanted_per_snap,
                n: goal.paths,
                percentiles: &goal.percentiles,
            });
        }
    }
    let wanted = columns.iter().map(|c| 2 * c.percentiles.len()).sum();
    let mut values = select_columns(run, &columns, wanted, 0, budget)?.into_iter();
    Ok(goals
        .iter()
        .zip(snapshots)
        .map(|(goal, snaps)| {
            snaps
                .iter()
                .map(|_| {
                    let column = values.next().expect("a column per snapshot");
                    goal.percentiles.iter().copied().zip(column).collect()
                })
                .collect()
        })
        .collect())
}

/// One column of values on the device whose percentiles are selected.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    /// Its histogram's first bin.
    pub hist: u32,
    /// Its first wanted-bin entry; two per percentile are reserved from there.
    pub wanted: u32,
    /// Its values (none: no percentiles).
    pub n: u64,
    pub percentiles: &'a [f64],
}

/// Steps 2 and 3 for `columns`: each column's percentiles in its order (NumPy's linear
/// method between exact order statistics of its values), empty where it has no values.
/// `wanted_len` entries of wanted bins are laid out; bin `zero_bin` holds exact zeros only,
/// which are read as 0 and never collected (a depleted half of the paths costs nothing).
fn select_columns<R: Select + ?Sized>(
    run: &mut R,
    columns: &[Column],
    wanted_len: usize,
    zero_bin: u32,
    budget: usize,
) -> Result<Vec<Vec<f64>>, String> {
    // Queries: for each column and percentile, the two ranks it interpolates.
    let mut queries = Vec::new();
    for c in columns.iter().filter(|c| c.n > 0) {
        for &p in c.percentiles {
            let (lo, hi, _) = ranks_of(p, c.n);
            queries.push([c.hist, lo as u32, BINS, 0]);
            queries.push([c.hist, hi as u32, BINS, 0]);
        }
    }
    let found = run.locate(&queries)?;
    if let Some(bad) = found.iter().position(|f| f[0] == NONE) {
        return Err(format!("rank {} beyond its histogram", queries[bad][1]));
    }
    // Wanted bins: per column the distinct bins (but the zero bin), each with a slot range.
    let mut wanted = vec![[NONE, 0, 0, 0]; wanted_len];
    let mut cursors: Vec<u32> = Vec::new();
    let mut ends: Vec<u32> = Vec::new();
    // Per query: (first value index, count), or u32::MAX for the zero bin.
    let mut slot_of: Vec<(u32, u32)> = Vec::new();
    // Where each column's queries, slots and values begin: each is numbered column by
    // column, so a column's values are one contiguous run.
    let mut starts: Vec<(usize, usize, u32)> = Vec::with_capacity(columns.len() + 1);
    let mut next_value = 0u32;
    let mut q = 0;
    for c in columns {
        starts.push((q, cursors.len(), next_value));
        if c.n == 0 {
            continue;
        }
        let mut used: Vec<(u32, u32, u32)> = Vec::new(); // (bin, first value, count)
        for _ in 0..2 * c.percentiles.len() {
            let [bin, _, count, _] = found[q];
            q += 1;
            if bin == zero_bin {
                slot_of.push((u32::MAX, 0));
                continue;
            }
            let place = match used.iter().find(|u| u.0 == bin) {
                Some(u) => (u.1, u.2),
                None => {
                    let first = next_value;
                    wanted[c.wanted as usize + used.len()] =
                        [bin, cursors.len() as u32, first + count, 0];
                    cursors.push(first);
                    ends.push(first + count);
                    used.push((bin, first, count));
                    next_value += count;
                    (first, count)
                }
            };
            slot_of.push(place);
        }
    }
    starts.push((q, cursors.len(), next_value));
    let mut values = collect_in_passes(run, &wanted, &cursors, &ends, budget)?;
    debug_assert_eq!(values.len(), next_value as usize);
    // Each column on its own run of values, columns in parallel: sort each of its bins once
    // (equal values are interchangeable, so an unstable sort), then read the order statistics.
    // This is the host's share of a full-results batch, most of it before (benches/RESULTS.md,
    // the H200's phases).
    let mut pieces = Vec::with_capacity(columns.len());
    let mut rest = values.as_mut_slice();
    for k in 0..columns.len() {
        let length = (starts[k + 1].2 - starts[k].2) as usize;
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(length);
        pieces.push((k, piece));
        rest = tail;
    }
    Ok(pieces
        .into_par_iter()
        .map(|(k, piece)| {
            let c = &columns[k];
            let (first_query, first_slot, first_value) = starts[k];
            let at = |index: u32| (index - first_value) as usize;
            for slot in first_slot..starts[k + 1].1 {
                piece[at(cursors[slot])..at(ends[slot])].sort_unstable_by(f32::total_cmp);
            }
            let value = |q: usize, rank: u64| -> f64 {
                let (first, _) = slot_of[q];
                if first == u32::MAX {
                    return 0.0;
                }
                let below = u64::from(found[q][1]);
                f64::from(piece[at(first) + (rank - below) as usize])
            };
            if c.n == 0 {
                return Vec::new();
            }
            let mut q = first_query;
            let mut row = Vec::with_capacity(c.percentiles.len());
            for &p in c.percentiles {
                let (lo, hi, frac) = ranks_of(p, c.n);
                row.push(interpolate(value(q, lo), value(q + 1, hi), frac));
                q += 2;
            }
            row
        })
        .collect())
}

/// The bins of the plans' yearly columns: bin 0 holds the values below +0 (−0 and any
/// negative, collected like the others), bin [`PLAN_ZERO_BIN`] exact +0 (read as 0, never
/// collected), and bins 2 … [`BINS`] − 1 the positive values in the goals' log2 steps.
pub const PLAN_ZERO_BIN: u32 = 1;

/// One plan's yearly samples on the device, after its launches (their buffers kept), ready
/// to be reduced there.
pub trait PlanColumnsRun: Select {
    /// Histogram the plan's samples into one histogram per column (2 × years: each year's
    /// wealth, then each year's real spending; under a stochastic index each year's real
    /// wealth after them), NaN (a path that had ended) skipped: per column, its count of
    /// values.
    fn tally(&mut self) -> Result<Vec<u32>, String>;
}

/// Wanted-bin entries per column of a plan with `percentiles`.
pub fn plan_wanted_per_column(percentiles: &[f64]) -> u32 {
    2 * percentiles.len() as u32
}

/// A plan's fan-chart columns reduced on the device: per year, the paths running and the
/// percentiles `ps` of their wealth and real spending, the same numbers
/// [`crate::plan::reduce_tables`] gives from the same samples on the host. `budget`: values
/// per collect pass.
pub fn plan_years<R: PlanColumnsRun + ?Sized>(
    run: &mut R,
    years: usize,
    sample_rows: usize,
    ps: &[f64],
    budget: usize,
) -> Result<Vec<ReducedYear>, String> {
    let counts = run.tally()?;
    if counts.len() != sample_rows * years {
        return Err(format!(
            "the tally gave {} columns for {years} years",
            counts.len()
        ));
    }
    let per_column = plan_wanted_per_column(ps);
    let columns: Vec<Column> = counts
        .iter()
        .enumerate()
        .map(|(j, &n)| Column {
            hist: j as u32 * BINS,
            wanted: j as u32 * per_column,
            n: u64::from(n),
            percentiles: ps,
        })
        .collect();
    let wanted = columns.len() * per_column as usize;
    let mut wealth = select_columns(run, &columns, wanted, PLAN_ZERO_BIN, budget)?;
    let mut spending = wealth.split_off(years);
    let mut real = spending.split_off(years).into_iter();
    Ok(wealth
        .into_iter()
        .zip(spending)
        .enumerate()
        .map(|(y, (wealth, spending))| ReducedYear {
            running: u64::from(counts[y]),
            wealth: (counts[y] > 0).then_some(wealth),
            real_spending: (counts[years + y] > 0).then_some(spending),
            real_wealth: real.next().filter(|_| counts[2 * years + y] > 0),
        })
        .collect())
}

/// Values per collect pass on a device whose largest binding is `max_binding` bytes: what
/// one binding holds, and at most 2^26.
pub fn collect_budget(max_binding: u64) -> usize {
    (max_binding / 4).min(1 << 26) as usize
}

/// The collect step in passes of at most `budget` values, so that device memory stays
/// bounded whatever the paths: each pass keeps only its slots' bins (the others are NONE).
/// Returns every slot's values at its global place.
fn collect_in_passes<R: Select + ?Sized>(
    run: &mut R,
    wanted: &[[u32; 4]],
    cursors: &[u32],
    ends: &[u32],
    budget: usize,
) -> Result<Vec<f32>, String> {
    let total = ends.last().copied().unwrap_or(0) as usize;
    // Made only when the values take more than one pass: one pass hands its buffer back as is.
    let mut values: Vec<f32> = Vec::new();
    let mut first_slot = 0;
    while first_slot < cursors.len() {
        let base = cursors[first_slot];
        let mut last_slot = first_slot;
        while last_slot < cursors.len() && (ends[last_slot] - base) as usize <= budget {
            last_slot += 1;
        }
        if last_slot == first_slot {
            return Err(format!(
                "one percentile's bin holds {} values, more than a device buffer takes ({budget})",
                ends[first_slot] - cursors[first_slot]
            ));
        }
        let slots = first_slot as u32..last_slot as u32;
        let local: Vec<[u32; 4]> = wanted
            .iter()
            .map(|w| {
                if w[0] != NONE && slots.contains(&w[1]) {
                    [w[0], w[1] - slots.start, w[2] - base, 0]
                } else {
                    [NONE, 0, 0, 0]
                }
            })
            .collect();
        let starts: Vec<u32> = cursors[first_slot..last_slot]
            .iter()
            .map(|c| c - base)
            .collect();
        let size = (ends[last_slot - 1] - base) as usize;
        let (after, mut found) = run.collect(&local, &starts, size)?;
        // Every slot must be exactly full: the collect pass saw the same values as the tally.
        for (k, slot) in (first_slot..last_slot).enumerate() {
            if after[k] + base != ends[slot] {
                return Err(format!(
                    "the collect pass found {} values in a bin where the tally counted {}",
                    after[k] - starts[k],
                    ends[slot] - cursors[slot]
                ));
            }
        }
        if first_slot == 0 && last_slot == cursors.len() {
            found.truncate(size);
            return Ok(found);
        }
        if values.is_empty() {
            values = vec![0f32; total];
        }
        values[base as usize..base as usize + size].copy_from_slice(&found[..size]);
        first_slot = last_slot;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_params_are_thirty_six_words() {
        assert_eq!(std::mem::size_of::<GoalParams>(), 144);
        assert_eq!(std::mem::size_of::<DispatchParams>(), 32);
    }

    #[test]
    fn chunks_respect_the_binding_budget() {
        let request: crate::GoalRequest = serde_json::from_value(serde_json::json!({
            "goal": {"horizon_months": 360, "initial_wealth": 1000},
            "market": {"expected_return": 0.06, "volatility": 0.15},
            "options": {"paths": 10000}
        }))
        .unwrap();
        let goal = crate::validate::prepare(&request).unwrap();
        let batch = vec![goal; 100];
        // 31 snapshots × 4096 bins × 4 bytes ≈ 0.5 MB of histogram per goal.
        let ranges = chunks(&batch, Detail::Full, 4 << 20);
        assert!(ranges.len() > 1);
        assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), 100);
        assert!(ranges.iter().all(|r| r.len() * 31 * 4096 * 4 <= 4 << 20));
        assert_eq!(chunks(&batch, Detail::Success, 4 << 20).len(), 1);
    }
}
