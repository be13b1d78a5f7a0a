//! The block kernel's month loop for per-asset paths (docs/model.md §4.5,
//! [`crate::rebalance`]): each lane group holds every asset's holdings, draws one normal per
//! asset and month from the shocks' stream (asset in c3), correlates them, and trades back to
//! the target weights as the goal's rule says. It computes [`crate::rebalance::simulate_path`]'s
//! operations in its order, lane by lane, so every instruction set gives that definition's
//! bits; loops run over lanes innermost, so LLVM vectorises the arithmetic.

use super::kernel::{
    own_normals, store_snapshot, BlockCounts, BlockJob, LaneDraws, LaneKernel, LaneState,
    SnapshotColumns,
};
use super::{LANES, NOT_DEPLETED};
use crate::normal;
use crate::rebalance::{AssetPaths, Rule};

/// Simulate the job's paths with per-asset holdings; as `simulate_lanes` for the other
/// models, plus each path's rebalances and turnover (summed over the block's paths in order).
#[inline(always)]
pub(super) fn simulate_asset_lanes(
    lanes: &impl LaneKernel,
    job: &BlockJob,
    assets: &AssetPaths,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) -> BlockCounts {
    let (goal, months, count) = (job.goal, job.months, job.paths.count);
    let market = goal.market();
    let horizon = goal.horizon as usize;
    let k = assets.count;
    let nominal = job.nominal_columns();
    let mut counts = BlockCounts::default();
    // Per asset: the holdings, the quad's four months of normals, and one month's growth.
    let mut holdings = vec![[0.0f64; LANES]; k];
    let mut normals = vec![[[0.0f32; LANES]; 4]; k];
    let mut growth = vec![[0.0f64; LANES]; k];
    for group in (0..count).step_by(LANES) {
        // Antithetic pairs read their first path's streams and negate every asset's normals
        // on the second; `sobol` does not cover per-asset paths (validate.rs refuses it).
        let draws = LaneDraws::of(goal.sampler, &job.lane_paths(group), &[]);
        debug_assert!(
            draws.sobol.is_none(),
            "validate.rs refuses sobol per-asset paths"
        );
        let paths = draws.streams;
        for (h, &w) in holdings.iter_mut().zip(assets.weights_at(0)) {
            *h = [goal.initial_wealth * w; LANES];
        }
        let mut depleted_at = [NOT_DEPLETED; LANES];
        let mut rebalances = [0u32; LANES];
        let mut turnover = [0.0f64; LANES];
        let mut lane_state = LaneState::new(&market);
        let mut next = 0;
        for t in 0..horizon {
            let j = t % 4;
            if j == 0 {
                asset_normals(lanes, &paths, (t / 4) as u32, &mut normals);
                for quad in normals.iter_mut() {
                    draws.mirror(quad);
                }
                if goal.inflation.is_some() {
                    // AR(1) with ρ = 0 (validate.rs): `lane_state.shocks` stays zero.
                    own_normals(lanes, &paths, t / 4, &mut lane_state);
                }
            }
            month_growth(assets, &normals, j, &mut growth);
            let (c, d) = (goal.contribution[t], goal.withdrawal[t]);
            let amount: [f64; LANES] = match &lane_state.index {
                Some(x) => std::array::from_fn(|l| d * x.year_index[l]),
                None => [d; LANES],
            };
            let target = assets.weights_at(t);
            let mut wealth = holdings[0];
            for h in &holdings[1..] {
                for l in 0..LANES {
                    wealth[l] += h[l];
                }
            }
            let mut x = [0.0f64; LANES];
            let mut live = [false; LANES];
            let mut buys = [false; LANES];
            let mut scale = [0.0f64; LANES];
            let mut net = [0.0f64; LANES];
            for l in 0..LANES {
                x[l] = wealth[l] + c - amount[l];
                let dead = depleted_at[l] >= 0.0;
                let newly = !dead & (d > 0.0) & (x[l] <= 0.0);
                depleted_at[l] = if newly { t as f64 } else { depleted_at[l] };
                live[l] = !(dead | newly);
                net[l] = c - amount[l];
                buys[l] = net[l] >= 0.0;
                scale[l] = x[l] / wealth[l];
            }
            for (h, &w) in holdings.iter_mut().zip(target) {
                for l in 0..LANES {
                    let flowed = if buys[l] {
                        h[l] + net[l] * w
                    } else {
                        h[l] * scale[l]
                    };
                    h[l] = if live[l] { flowed } else { 0.0 };
                }
            }
            let mut rebalance = [false; LANES];
            match assets.rule {
                Rule::Annual => {
                    if t > 0 && t % 12 == 0 {
                        for l in 0..LANES {
                            rebalance[l] = live[l] & (x[l] > 0.0);
                        }
                    }
                }
                Rule::Band(band) => {
                    for (h, &w) in holdings.iter().zip(target) {
                        for l in 0..LANES {
                            rebalance[l] |= (h[l] / x[l] - w).abs() > band;
                        }
                    }
                    for l in 0..LANES {
                        rebalance[l] &= live[l] & (x[l] > 0.0);
                    }
                }
                Rule::None => {}
            }
            if rebalance.iter().any(|&r| r) {
                let mut traded = [0.0f64; LANES];
                for (h, &w) in holdings.iter().zip(target) {
                    for l in 0..LANES {
                        traded[l] += (x[l] * w - h[l]).abs();
                    }
                }
                for l in 0..LANES {
                    if rebalance[l] {
                        turnover[l] += traded[l] / (2.0 * x[l]);
                        rebalances[l] += 1;
                    }
                }
                for (h, &w) in holdings.iter_mut().zip(target) {
                    for l in 0..LANES {
                        h[l] = if rebalance[l] { x[l] * w } else { h[l] };
                    }
                }
            }
            for (h, g) in holdings.iter_mut().zip(&growth) {
                for l in 0..LANES {
                    h[l] *= g[l];
                }
            }
            lane_state.advance_index(&market, j, t);
            if next < nominal && months[next] as usize == t + 1 {
                let mut wealth = holdings[0];
                for h in &holdings[1..] {
                    for l in 0..LANES {
                        wealth[l] += h[l];
                    }
                }
                let columns = SnapshotColumns {
                    next,
                    nominal,
                    group,
                };
                store_snapshot(snapshots, columns, &wealth, lane_state.index.as_ref());
                next += 1;
            }
        }
        depletion[group..group + LANES].copy_from_slice(&depleted_at);
        let valid = LANES.min(count - group);
        counts.rebalances += rebalances[..valid]
            .iter()
            .map(|&r| u64::from(r))
            .sum::<u64>();
        for &x in &turnover[..valid] {
            counts.turnover += x;
        }
    }
    counts
}

/// A lane group's household portfolio under per-asset paths, for a plan's month loop
/// (`crate::plan::simulate`, docs/model.md §5 "Per-asset paths"): the household's accounts
/// hold one portfolio, so each lane keeps the mix of its wealth across the assets (fractions
/// summing to 1), and every account grows by the mix's growth Σ_k m_k·G_k. The assets' normals
/// and growth are a goal's ([`simulate_asset_lanes`]: the same streams and arithmetic); the
/// month's net cash flow trades the mix as a goal's c − d trades its holdings.
pub(crate) struct PortfolioLanes<'a> {
    assets: &'a AssetPaths,
    /// Per asset: each lane's share of its wealth.
    mix: Vec<[f64; LANES]>,
    normals: Vec<[[f32; LANES]; 4]>,
    growth: Vec<[f64; LANES]>,
}

impl<'a> PortfolioLanes<'a> {
    /// Every lane at the weights of month 0.
    pub(crate) fn new(assets: &'a AssetPaths) -> Self {
        let k = assets.count;
        PortfolioLanes {
            assets,
            mix: assets.weights_at(0).iter().map(|&w| [w; LANES]).collect(),
            normals: vec![[[0.0; LANES]; 4]; k],
            growth: vec![[0.0; LANES]; k],
        }
    }

    /// Draw each asset's normals for the quad of months from `t` (a multiple of 4).
    #[inline(always)]
    pub(crate) fn quad(&mut self, lanes: &impl LaneKernel, paths: &[u32; LANES], t: u32) {
        asset_normals(lanes, paths, t / 4, &mut self.normals);
    }

    /// Month `t`'s trades on each lane whose path runs (`live`), given its wealth `before` the
    /// month's cash flows and `after` them: net saving buys at the month's target weights, net
    /// spending sells pro rata (the mix is kept); then the rule rebalances, counted in
    /// `rebalances` and `turnover` (Σ_k |w_k − m_k| / 2 a trade). Nothing trades at a wealth of
    /// 0.
    #[inline(always)]
    pub(crate) fn trade(
        &mut self,
        t: usize,
        before: &[f64; LANES],
        after: &[f64; LANES],
        live: &[bool; LANES],
        rebalances: &mut [u32; LANES],
        turnover: &mut [f64; LANES],
    ) {
        let target = self.assets.weights_at(t);
        let mut buys = [false; LANES];
        let mut net = [0.0f64; LANES];
        let mut on = [false; LANES];
        for l in 0..LANES {
            on[l] = live[l] & (after[l] > 0.0);
            net[l] = after[l] - before[l];
            buys[l] = on[l] & (net[l] > 0.0);
        }
        for (m, &w) in self.mix.iter_mut().zip(target) {
            for l in 0..LANES {
                let bought = (m[l] * before[l] + net[l] * w) / after[l];
                m[l] = if buys[l] { bought } else { m[l] };
            }
        }
        let mut rebalance = [false; LANES];
        match self.assets.rule {
            Rule::Annual => {
                if t > 0 && t.is_multiple_of(12) {
                    rebalance = on;
                }
            }
            Rule::Band(band) => {
                for (m, &w) in self.mix.iter().zip(target) {
                    for l in 0..LANES {
                        rebalance[l] |= (m[l] - w).abs() > band;
                    }
                }
                for l in 0..LANES {
                    rebalance[l] &= on[l];
                }
            }
            Rule::None => {}
        }
        if rebalance.iter().any(|&r| r) {
            let mut traded = [0.0f64; LANES];
            for (m, &w) in self.mix.iter_mut().zip(target) {
                for l in 0..LANES {
                    traded[l] += (w - m[l]).abs();
                    m[l] = if rebalance[l] { w } else { m[l] };
                }
            }
            for l in 0..LANES {
                if rebalance[l] {
                    turnover[l] += traded[l] / 2.0;
                    rebalances[l] += 1;
                }
            }
        }
    }

    /// Month `t`'s growth of each lane's portfolio, Σ_k m_k·G_k, after which the mix is what
    /// the assets' own returns made it.
    #[inline(always)]
    pub(crate) fn growth(&mut self, t: usize) -> [f64; LANES] {
        month_growth(self.assets, &self.normals, t % 4, &mut self.growth);
        let mut total = [0.0f64; LANES];
        for (m, g) in self.mix.iter_mut().zip(&self.growth) {
            for l in 0..LANES {
                m[l] *= g[l];
                total[l] += m[l];
            }
        }
        for m in &mut self.mix {
            for l in 0..LANES {
                m[l] /= total[l];
            }
        }
        total
    }
}

/// Each asset's four normals of quad `q` for every lane: asset k's from the shocks' stream
/// with the asset in c3, counter (path, q, 0, k) (docs/model.md §4.5).
#[inline(always)]
fn asset_normals(
    lanes: &impl LaneKernel,
    paths: &[u32; LANES],
    q: u32,
    normals: &mut [[[f32; LANES]; 4]],
) {
    for (a, quad) in normals.iter_mut().enumerate() {
        let [w0, w1, w2, w3] = lanes.words_at(paths, [q, 0, a as u32]);
        let [z0, z1, z2, z3] = quad;
        normal::box_muller_lanes(&w0, &w1, z0, z1);
        normal::box_muller_lanes(&w2, &w3, z2, z3);
    }
}

/// Month `j` of the quad: each asset's growth G_k = drift_k · exp(s_k · Σ_{i≤k} L_ki Z_i)
/// ([`AssetPaths::growth`]'s operations, lane-wise).
#[inline(always)]
fn month_growth(
    assets: &AssetPaths,
    normals: &[[[f32; LANES]; 4]],
    j: usize,
    growth: &mut [[f64; LANES]],
) {
    let k = assets.count;
    for (i, g) in growth.iter_mut().enumerate() {
        let row = &assets.cholesky[i * k..i * k + k];
        let mut y = [0.0f32; LANES];
        for l in 0..LANES {
            y[l] = row[0] * normals[0][j][l];
        }
        for (c, quad) in row.iter().zip(normals).take(i + 1).skip(1) {
            for l in 0..LANES {
                y[l] += c * quad[j][l];
            }
        }
        normal::exp_scaled_lanes(assets.volatility[i], &mut y);
        // Into a local array first, so the conversion and product vectorise.
        let drift = assets.drift[i];
        let mut out = [0.0f64; LANES];
        for l in 0..LANES {
            out[l] = drift * f64::from(y[l]);
        }
        *g = out;
    }
}
