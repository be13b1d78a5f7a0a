//! Block reductions: the per-thread block buffers, folding a simulated block into the main
//! pass (sums per snapshot in a fixed order, depletion and success counts, bracket tallies),
//! and the median depletion month from its histogram (shared with the GPU backends). Every
//! floating sum here is taken in an order fixed by the block, never by the thread.

use multiversion::multiversion;

use super::kernel::{simulate_block, BlockCounts, PathRange};
use super::pass::{MainPass, Pending};
use super::plan::Plan;
use super::{BLOCK_PATHS, NOT_DEPLETED};
use crate::quantile::BracketTally;
use crate::sampler::{PathSampler, SobolPaths, Spread};
use crate::validate::PreparedGoal;

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
pub(super) struct BlockBuffers {
    pub(super) snapshots: Vec<f64>,
    pub(super) depletion: Vec<f64>,
    /// What the last block counted (clamped months, rebalances, turnover).
    pub(super) counts: BlockCounts,
}

impl BlockBuffers {
    pub(super) fn new(snapshot_count: usize) -> Self {
        BlockBuffers {
            snapshots: vec![0.0; snapshot_count * BLOCK_PATHS],
            depletion: vec![NOT_DEPLETED; BLOCK_PATHS],
            counts: BlockCounts::default(),
        }
    }

    /// Simulate block `b` of the goal's consecutive paths at the plan's months; returns how
    /// many paths it holds.
    pub(super) fn simulate_block_of(
        &mut self,
        goal: &PreparedGoal,
        plan: &Plan,
        b: usize,
    ) -> usize {
        let first = b * BLOCK_PATHS;
        let count = BLOCK_PATHS.min(goal.paths as usize - first);
        let paths = PathRange::contiguous(first, count);
        self.counts = simulate_block(
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
    pub(super) fn tally(&self, tallies: &mut [BracketTally], pending: &[Pending], count: usize) {
        for (tally, &(snap, _, bracket)) in tallies.iter_mut().zip(pending) {
            let column = &self.snapshots[snap * BLOCK_PATHS..snap * BLOCK_PATHS + count];
            tally.observe(bracket, column);
        }
    }
}

/// Fold a simulated block into the main pass: the block's floating sums into `sums`, and
/// counts (and, when the plan selects from every path, the values) into `acc`. `snapshots` is
/// snapshot-major, [`BLOCK_PATHS`] per snapshot; `depletion` holds the block's paths.
pub(super) fn reduce_block(
    goal: &PreparedGoal,
    plan: &Plan,
    first: usize,
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
    let at = goal.success_column(s) * BLOCK_PATHS;
    let terminal = &snapshots[at..at + count];
    let target = goal.success_target();
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
    spread_of_block(goal, first, terminal, depletion, &mut acc.spread);
}

/// Fold a block's paths (from path `first`) into the sampler's spread: each `sobol` path
/// into its replicate, each antithetic pair (a block starts on a pair) as a pair.
fn spread_of_block(
    goal: &PreparedGoal,
    first: usize,
    terminal: &[f64],
    depletion: &[f64],
    spread: &mut Spread,
) {
    let target = goal.success_target();
    let outcome = |i: usize| {
        let depleted = depletion[i] >= 0.0;
        (!depleted && terminal[i] >= target, depleted)
    };
    match goal.sampler {
        PathSampler::Philox => {}
        PathSampler::Antithetic => {
            debug_assert!(first.is_multiple_of(2) && depletion.len().is_multiple_of(2));
            for i in (0..depletion.len()).step_by(2) {
                let (a, b) = (outcome(i), outcome(i + 1));
                spread.add_pair([a.0, b.0], [a.1, b.1]);
            }
        }
        PathSampler::Sobol { points_log2, .. } => {
            for i in 0..depletion.len() {
                let (success, depleted) = outcome(i);
                let replicate = SobolPaths::replicate_of(points_log2, (first + i) as u32);
                spread.add_path(replicate as usize, success, depleted);
            }
        }
    }
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
