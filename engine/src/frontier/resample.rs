//! Michaud's resampled frontier: the frontier averaged over the estimation error of its inputs.
//!
//! Each resample simulates a history of `observations` monthly returns from N(μ/12, Σ/12),
//! re-estimates μ and Σ from it (annualised), solves that frontier exactly under the same
//! bounds and groups, and takes its K evenly spaced points. The K resampled portfolios are the
//! rank-wise averages of those weights, valued with the original μ and Σ.
//!
//! The random numbers are Philox4x32-10 keyed by the seed and counted by (resample,
//! observation, block of four assets), so a resample's history does not depend on threads;
//! sums run over fixed chunks in a fixed order, so the result is bit-identical for any thread
//! count.

use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::request::{PortfolioReport, PreparedFrontier};
use super::{FrontierError, FrontierProblem, Portfolio};
use crate::backend::Watch;
use crate::normal::box_muller_f64;
use crate::philox::{key_of_seed, philox4x32_10};
use crate::request::DEFAULT_SEED;
use crate::validate::ValidationError;

/// Most resamples one request may ask for.
pub const MAX_RESAMPLES: u32 = 100_000;
/// Most observations in one simulated history.
pub const MAX_OBSERVATIONS: u32 = 100_000;
/// Resamples summed sequentially before chunks are combined (fixes the summation order).
const CHUNK: usize = 32;

/// `{"resamples", "observations", "seed"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResampleOptions {
    /// R, 1 … 100,000.
    #[serde(default = "default_resamples")]
    pub resamples: u32,
    /// Monthly observations per simulated history (120 = ten years), 2 … 100,000.
    #[serde(default = "default_observations")]
    pub observations: u32,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_resamples() -> u32 {
    1000
}
fn default_observations() -> u32 {
    120
}
fn default_seed() -> u64 {
    DEFAULT_SEED
}

impl ResampleOptions {
    pub(crate) fn check(&self, assets: usize, field: &str) -> Result<(), ValidationError> {
        if !(1..=MAX_RESAMPLES).contains(&self.resamples) {
            return Err(ValidationError::new(
                format!("{field}.resamples"),
                format!(
                    "must be between 1 and {MAX_RESAMPLES}, got {}",
                    self.resamples
                ),
            ));
        }
        if !(2..=MAX_OBSERVATIONS).contains(&self.observations) {
            return Err(ValidationError::new(
                format!("{field}.observations"),
                format!(
                    "must be between 2 and {MAX_OBSERVATIONS}, got {}",
                    self.observations
                ),
            ));
        }
        let work = u64::from(self.resamples) * u64::from(self.observations) * assets as u64;
        if work > 10_000_000_000 {
            return Err(ValidationError::new(
                field,
                format!(
                    "resamples × observations × assets must be at most 1e10, got {work:.3e}",
                    work = work as f64
                ),
            ));
        }
        Ok(())
    }
}

/// The resampled frontier: K portfolios, by rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResampledFrontier {
    pub resamples: u32,
    pub observations: u32,
    pub seed: u64,
    /// Resamples whose frontier could not be solved (left out of the averages).
    pub failed: u32,
    pub points: Vec<PortfolioReport>,
}

/// Run the resampling of `options` for a prepared frontier request.
/// `None` when `watch` was cancelled first.
pub fn resampled_frontier(
    prepared: &PreparedFrontier,
    options: &ResampleOptions,
    risk_free_rate: f64,
    watch: &Watch,
) -> Result<Option<ResampledFrontier>, FrontierError> {
    let problem = &prepared.problem;
    let Some((weights, solved)) =
        averaged_weights_watched(problem, options, prepared.points, watch)
    else {
        return Ok(None);
    };
    let failed = options.resamples - solved;
    if solved == 0 {
        return Err(FrontierError::Numerical(
            "no resampled frontier could be solved".into(),
        ));
    }
    let points = weights
        .into_iter()
        .map(|w| PortfolioReport::new(&Portfolio::new(problem, w), risk_free_rate))
        .collect();
    Ok(Some(ResampledFrontier {
        resamples: options.resamples,
        observations: options.observations,
        seed: options.seed,
        failed,
        points,
    }))
}

/// Rank-wise averages of the K points' weights over every resample that solved, and how many
/// solved.
pub fn averaged_weights(
    problem: &FrontierProblem,
    options: &ResampleOptions,
    points: usize,
) -> (Vec<Vec<f64>>, u32) {
    averaged_weights_watched(problem, options, points, &Watch::default())
        .expect("a watch nobody holds is never cancelled")
}

/// [`averaged_weights`], stopping between resamples (`None`) once `watch` is cancelled; each
/// resample done counts one unit of progress on it.
pub fn averaged_weights_watched(
    problem: &FrontierProblem,
    options: &ResampleOptions,
    points: usize,
    watch: &Watch,
) -> Option<(Vec<Vec<f64>>, u32)> {
    let n = problem.expected_returns.len();
    let root = covariance_root(&problem.covariance, n);
    let resamples: Vec<u32> = (0..options.resamples).collect();
    let partial: Vec<(Vec<f64>, u32)> = resamples
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut sum = vec![0.0; points * n];
            let mut solved = 0;
            let mut history = History::new(n, options.observations as usize);
            for &r in chunk {
                if watch.is_cancelled() {
                    return None;
                }
                watch.advance(1);
                let estimated = history.estimate(problem, &root, options.seed, r);
                if let Ok(frontier) = estimated.solve() {
                    for (k, p) in frontier.points(points).iter().enumerate() {
                        for (s, w) in sum[k * n..(k + 1) * n].iter_mut().zip(&p.weights) {
                            *s += w;
                        }
                    }
                    solved += 1;
                }
            }
            Some((sum, solved))
        })
        .collect::<Option<_>>()?;
    let mut total = vec![0.0; points * n];
    let mut solved = 0;
    for (sum, count) in partial {
        for (t, s) in total.iter_mut().zip(&sum) {
            *t += s;
        }
        solved += count;
    }
    let scale = 1.0 / f64::from(solved.max(1));
    let weights = total
        .chunks(n)
        .map(|w| w.iter().map(|x| x * scale).collect())
        .collect();
    Some((weights, solved))
}

/// A with A Aᵀ = Σ (from the eigen-decomposition, so a singular Σ is fine), row-major.
fn covariance_root(cov: &[f64], n: usize) -> Vec<f64> {
    let eigen = SymmetricEigen::new(DMatrix::from_row_slice(n, n, cov));
    let mut root = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            root[i * n + k] = eigen.eigenvectors[(i, k)] * eigen.eigenvalues[k].max(0.0).sqrt();
        }
    }
    root
}

/// Scratch for one simulated history, reused across a chunk's resamples.
struct History {
    n: usize,
    observations: usize,
    z: Vec<f64>,
    x: Vec<f64>,
}

impl History {
    fn new(n: usize, observations: usize) -> Self {
        History {
            n,
            observations,
            z: vec![0.0; n.div_ceil(4) * 4],
            x: vec![0.0; n * observations],
        }
    }

    /// Simulate resample `r`'s history and return the frontier problem of its estimates.
    fn estimate(
        &mut self,
        base: &FrontierProblem,
        root: &[f64],
        seed: u64,
        r: u32,
    ) -> FrontierProblem {
        let n = self.n;
        let key = key_of_seed(seed);
        let monthly_scale = (1.0f64 / 12.0).sqrt();
        for t in 0..self.observations {
            for q in 0..n.div_ceil(4) {
                let w = philox4x32_10([r, t as u32, q as u32, 0], key);
                let (a, b) = box_muller_f64(w[0], w[1]);
                let (c, d) = box_muller_f64(w[2], w[3]);
                self.z[4 * q..4 * q + 4].copy_from_slice(&[a, b, c, d]);
            }
            let row = &mut self.x[t * n..(t + 1) * n];
            for i in 0..n {
                let shock: f64 = root[i * n..(i + 1) * n]
                    .iter()
                    .zip(&self.z[..n])
                    .map(|(a, z)| a * z)
                    .sum();
                row[i] = base.expected_returns[i] / 12.0 + monthly_scale * shock;
            }
        }
        let count = self.observations as f64;
        let mut mean = vec![0.0; n];
        for row in self.x.chunks(n) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count);
        let mut cov = vec![0.0; n * n];
        for row in self.x.chunks(n) {
            for i in 0..n {
                let di = row[i] - mean[i];
                for j in 0..=i {
                    cov[i * n + j] += di * (row[j] - mean[j]);
                }
            }
        }
        // Annualise: 12 × the monthly estimates.
        let scale = 12.0 / (count - 1.0);
        for i in 0..n {
            for j in 0..=i {
                let v = cov[i * n + j] * scale;
                cov[i * n + j] = v;
                cov[j * n + i] = v;
            }
        }
        FrontierProblem {
            expected_returns: mean.iter().map(|m| 12.0 * m).collect(),
            covariance: cov,
            lower: base.lower.clone(),
            upper: base.upper.clone(),
            groups: base.groups.clone(),
        }
    }
}
