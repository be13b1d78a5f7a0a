//! The passes over a goal's paths: the pilot run that brackets each percentile from a
//! sample, the main pass that reduces every block (counts, block-ordered floating sums,
//! bracket tallies), and the rare re-tally of a bracket that missed. Per-task state
//! ([`MainPass`]) holds only integers and sets, so merging it in any order gives the same
//! result: this is where the backend's thread- and chunk-independence is kept.

use rayon::prelude::*;

use super::kernel::{simulate_block, PathRange};
use super::plan::Plan;
use super::reduce::{median_of_histogram, reduce_block, BlockBuffers};
use super::{CpuBackend, BLOCK_PATHS};
use crate::backend::{Snapshot, Summary, Watch};
use crate::quantile::{brackets_from_sample, percentiles_of, Bracket, BracketTally};
use crate::sampler::Spread;
use crate::validate::PreparedGoal;

/// Per-thread state of the main pass, merged across tasks (integers and sets only, so the
/// merge order cannot change a result).
#[derive(Default)]
pub(super) struct MainPass {
    pub(super) successes: u64,
    pub(super) failed: u64,
    /// Depletion months' histogram, index = month.
    pub(super) depletion_months: Vec<u64>,
    /// Paths depleted by each snapshot.
    pub(super) depleted_by: Vec<u64>,
    /// Every value of every snapshot, when the plan selects from all paths.
    pub(super) everything: Vec<Vec<f64>>,
    /// The bracket tallies, one per (snapshot, percentile), when the plan brackets.
    pub(super) tallies: Vec<BracketTally>,
    /// Path-months clamped at −100% (a Student-t market).
    pub(super) clamped: u64,
    /// Rebalances over every path (per-asset paths).
    pub(super) rebalances: u64,
    /// The sampler's counts for the standard errors.
    pub(super) spread: Spread,
}

impl MainPass {
    fn new(plan: &Plan, goal: &PreparedGoal, brackets: usize) -> Self {
        let horizon = goal.horizon;
        let keep_all = !plan.percentiles.is_empty() && plan.sample_is_everything();
        MainPass {
            depletion_months: vec![0; horizon as usize],
            depleted_by: vec![0; plan.months.len()],
            everything: vec![Vec::new(); if keep_all { plan.months.len() } else { 0 }],
            tallies: vec![BracketTally::default(); brackets],
            spread: goal.sampler.empty_spread(),
            ..Default::default()
        }
    }

    fn merge(mut self, other: MainPass) -> MainPass {
        self.successes += other.successes;
        self.failed += other.failed;
        self.clamped += other.clamped;
        self.rebalances += other.rebalances;
        self.spread.merge(&other.spread);
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
pub(super) type Pending = (usize, usize, Bracket);

impl CpuBackend {
    /// One goal: for a bracketing plan, a pilot run over the sampled paths gives the
    /// brackets; then one pass over every path reduces counts and sums and tallies the
    /// brackets; a bracket that missed (rare) is tallied again, wide open.
    pub(super) fn simulate_goal(&self, goal: &PreparedGoal, plan: &Plan, watch: &Watch) -> Summary {
        let s = plan.months.len();
        let n = goal.paths as usize;
        let pending: Vec<Pending> = if plan.percentiles.is_empty() || plan.sample_is_everything() {
            Vec::new()
        } else {
            self.pilot_brackets(goal, plan)
        };
        let brackets: Vec<Bracket> = pending.iter().map(|&(_, _, b)| b).collect();

        // Per block: one sum per snapshot, then the shortfall sum and the turnover sum.
        let mut block_sums = vec![0.0; plan.blocks * (s + 2)];
        let main = block_sums
            .par_chunks_mut(s + 2)
            .enumerate()
            .with_min_len(self.chunk_blocks)
            .fold(
                || {
                    (
                        BlockBuffers::new(s),
                        MainPass::new(plan, goal, pending.len()),
                    )
                },
                |(mut buf, mut acc), (b, sums)| {
                    if watch.is_cancelled() {
                        return (buf, acc);
                    }
                    let count = buf.simulate_block_of(goal, plan, b);
                    acc.clamped += buf.counts.clamped;
                    acc.rebalances += buf.counts.rebalances;
                    sums[s + 1] = buf.counts.turnover;
                    watch.advance(count as u64 * u64::from(goal.horizon));
                    let depletion = &buf.depletion[..count];
                    reduce_block(
                        goal,
                        plan,
                        b * BLOCK_PATHS,
                        &buf.snapshots,
                        depletion,
                        sums,
                        &mut acc,
                    );
                    buf.tally(&mut acc.tallies, &pending, count);
                    (buf, acc)
                },
            )
            .map(|(_, acc)| acc)
            .reduce(|| MainPass::new(plan, goal, pending.len()), MainPass::merge);

        if watch.is_cancelled() {
            // Nobody waits for this goal: its tallies are incomplete, so skip the selection.
            return Summary {
                paths: goal.paths,
                successes: 0,
                depleted: 0,
                median_depletion_month: None,
                shortfall: None,
                snapshots: Vec::new(),
                clamped_months: 0,
                rebalances: 0,
                turnover: 0.0,
                spread: goal.sampler.empty_spread(),
            };
        }

        // Floating sums over blocks, in block order.
        let mut totals = vec![0.0; s + 2];
        for sums in block_sums.chunks(s + 2) {
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
            clamped,
            rebalances,
            spread,
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
            clamped_months: clamped,
            rebalances,
            turnover: totals[s + 1],
            spread,
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
