//! Per-asset paths and rebalancing (docs/model.md §4.5): what a goal whose
//! `market.rebalancing` is `annual`, `band` or `none` carries to the kernels, and the scalar
//! definition of one such path that the kernels are tested against.
//!
//! Monthly rebalancing keeps §1's reduction of the assets to one lognormal portfolio (exact
//! then, and the fast path). Any other rule simulates each asset: asset k's month is §1's
//! lognormal with its own μ_k and σ_k, G_k = exp(m_k/12 + s_k/√12 · Y_k) · (1 − f)^(1/12), with
//! correlated normals Y = L·Z (L the Cholesky factor of `market.correlations`). Asset k's
//! Z_k of month t is normal t mod 4 of the Philox block at counter (path, ⌊t/4⌋, 0, k): the
//! shocks' stream with the asset in c3, so asset 0 draws §1's Z_t and a one-asset portfolio
//! without rebalancing is §1's path (docs/model.md's test of the limit).
//!
//! The month, on a path not yet depleted (x = W + c − d as in §1, W = Σ h_k):
//! net cash flow c − d ≥ 0 buys at the target weights (h_k += (c − d)·w_k); a net withdrawal
//! sells pro rata (h_k ← h_k · x / W). Then the rule: `annual` rebalances at months 12, 24, …;
//! `band` when some |h_k / x − w_k| exceeds the band; `none` never (and none while x = 0:
//! an empty portfolio has nothing to trade). A rebalance trades
//! Σ_k |x·w_k − h_k| / 2, which divided by x is its turnover (one-sided, a fraction of the
//! portfolio), and sets h_k = x·w_k. Then h_k ← h_k·G_k. Depletion is §1's.

use crate::normal;
use crate::philox;
use crate::validate::PreparedGoal;

/// Most assets a per-asset goal may simulate (the GPU kernels keep each path's holdings and
/// normals in fixed arrays of this size, `MAX_ASSETS` in `shaders/assets.wgsl`).
pub const MAX_ASSET_PATHS: usize = 16;

/// When the holdings are traded back to the target weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// At the start of months 12, 24, …
    Annual,
    /// When some asset's weight is more than this (absolute) from its target.
    Band(f64),
    /// Never.
    None,
}

impl Rule {
    /// The rule as `market.rebalancing` names it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Annual => "annual",
            Rule::Band(_) => "band",
            Rule::None => "none",
        }
    }

    /// Whether terminal wealth stays affine in the contributions (the break-even solver's
    /// premise): true for calendar rules, false for a band, whose trades depend on the weights.
    pub fn is_affine(self) -> bool {
        !matches!(self, Rule::Band(_))
    }
}

/// A goal's assets as the per-asset kernels read them.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetPaths {
    pub rule: Rule,
    /// K, 1 … [`MAX_ASSET_PATHS`].
    pub count: usize,
    /// exp(m_k/12) times the fee's monthly factor, per asset.
    pub drift: Vec<f64>,
    /// sqrt(s_k²/12), per asset.
    pub volatility: Vec<f32>,
    /// The lower Cholesky factor of the correlations, row-major K × K (zeros above the
    /// diagonal); row 0 is (1, 0, …).
    pub cholesky: Vec<f32>,
    /// The target weights in force at month t, row t of a T × K table.
    pub weights: Vec<f64>,
}

impl AssetPaths {
    /// The target weights of month `t`.
    pub fn weights_at(&self, t: usize) -> &[f64] {
        &self.weights[t * self.count..(t + 1) * self.count]
    }

    /// Month `t`'s growth factors G_k from the assets' normals `z` (one per asset): the
    /// correlated Y = L·z in f32 (each row summed from its first column), exp(s_k·Y_k) in
    /// f32, times the drift in f64. The kernels compute these operations in this order.
    pub fn growth(&self, z: &[f32], out: &mut [f64]) {
        let k = self.count;
        for (i, g) in out.iter_mut().enumerate().take(k) {
            let row = &self.cholesky[i * k..i * k + k];
            let mut y = row[0] * z[0];
            for j in 1..=i {
                y += row[j] * z[j];
            }
            *g = self.drift[i] * f64::from(normal::exp(self.volatility[i] * y));
        }
    }
}

/// The lower Cholesky factor of a correlation matrix (row-major n × n) that may be only
/// semi-definite: a pivot at or below 1e-12 (a column that the earlier ones already span)
/// gives a zero column instead of a failure, so L·Lᵀ is the matrix within rounding.
pub fn cholesky(matrix: &[f64], n: usize) -> Vec<f64> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = matrix[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                l[i * n + i] = if sum > 1e-12 { sum.sqrt() } else { 0.0 };
            } else {
                let pivot = l[j * n + j];
                l[i * n + j] = if pivot > 0.0 { sum / pivot } else { 0.0 };
            }
        }
    }
    l
}

/// Asset `asset`'s normal of `month` on `path` (the definition every kernel matches).
pub fn asset_normal_at(seed: u64, path: u32, month: u32, asset: u32) -> f32 {
    let words = philox::philox4x32_10([path, month / 4, 0, asset], philox::key_of_seed(seed));
    normal::normals_of_block(words)[(month % 4) as usize]
}

/// One path of a per-asset goal.
#[derive(Debug, Clone, PartialEq)]
pub struct PathOutcome {
    /// W at each month end 1 … T.
    pub wealth: Vec<f64>,
    /// The month the path was depleted, if it was.
    pub depleted_at: Option<u32>,
    pub rebalances: u32,
    /// Σ over its rebalances of the traded fraction of the portfolio.
    pub turnover: f64,
}

/// Path `path` of `goal` (which must have per-asset paths and a deterministic index: the
/// kernels' AR(1) index is `crate::inflation`'s), month by month as the module documents: the
/// definition the CPU kernels reproduce bit for bit.
pub fn simulate_path(goal: &PreparedGoal, path: u32) -> PathOutcome {
    let assets = goal
        .asset_paths
        .as_ref()
        .expect("a goal with per-asset paths");
    let k = assets.count;
    let mut holdings: Vec<f64> = assets
        .weights_at(0)
        .iter()
        .map(|w| goal.initial_wealth * w)
        .collect();
    let mut outcome = PathOutcome {
        wealth: Vec::with_capacity(goal.horizon as usize),
        depleted_at: None,
        rebalances: 0,
        turnover: 0.0,
    };
    let mut z = vec![0.0f32; k];
    let mut growth = vec![0.0f64; k];
    for t in 0..goal.horizon as usize {
        for (a, z) in z.iter_mut().enumerate() {
            *z = asset_normal_at(goal.seed, path, t as u32, a as u32);
        }
        assets.growth(&z, &mut growth);
        let (c, d) = (goal.contribution[t], goal.withdrawal[t]);
        let w = sum(&holdings);
        let x = w + c - d;
        if outcome.depleted_at.is_none() && d > 0.0 && x <= 0.0 {
            outcome.depleted_at = Some(t as u32);
        }
        if outcome.depleted_at.is_some() {
            holdings.iter_mut().for_each(|h| *h = 0.0);
            outcome.wealth.push(0.0);
            continue;
        }
        let target = assets.weights_at(t);
        let net = c - d;
        if net >= 0.0 {
            for (h, &wk) in holdings.iter_mut().zip(target) {
                *h += net * wk;
            }
        } else {
            let scale = x / w;
            holdings.iter_mut().for_each(|h| *h *= scale);
        }
        // An empty portfolio (x = 0: no wealth and no cash flow yet) has nothing to trade.
        let rebalance = x > 0.0
            && match assets.rule {
                Rule::Annual => t > 0 && t % 12 == 0,
                Rule::Band(band) => holdings
                    .iter()
                    .zip(target)
                    .any(|(&h, &wk)| (h / x - wk).abs() > band),
                Rule::None => false,
            };
        if rebalance {
            let mut traded = 0.0;
            for (h, &wk) in holdings.iter().zip(target) {
                traded += (x * wk - h).abs();
            }
            outcome.turnover += traded / (2.0 * x);
            outcome.rebalances += 1;
            for (h, &wk) in holdings.iter_mut().zip(target) {
                *h = x * wk;
            }
        }
        for (h, g) in holdings.iter_mut().zip(&growth) {
            *h *= g;
        }
        outcome.wealth.push(sum(&holdings));
    }
    outcome
}

/// Σ h_k from the first asset: the order every kernel sums the holdings in.
#[inline(always)]
pub fn sum(holdings: &[f64]) -> f64 {
    let mut total = holdings[0];
    for h in &holdings[1..] {
        total += h;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reproduces_the_matrix_and_zeroes_a_spanned_column() {
        let m = [1.0, 0.3, 0.2, 0.3, 1.0, 0.5, 0.2, 0.5, 1.0];
        let l = cholesky(&m, 3);
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((v - m[i * 3 + j]).abs() < 1e-15, "({i}, {j}): {v}");
            }
        }
        // Two perfectly correlated assets: semi-definite; the second column is zero.
        let l = cholesky(&[1.0, 1.0, 1.0, 1.0], 2);
        assert_eq!(l, vec![1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn asset_zero_draws_the_shocks_of_section_1() {
        for month in [0, 1, 2, 3, 4, 77] {
            assert_eq!(
                asset_normal_at(9, 5, month, 0).to_bits(),
                normal::normal_at(9, 5, month).to_bits()
            );
        }
        assert_ne!(asset_normal_at(9, 5, 3, 1), asset_normal_at(9, 5, 3, 0));
    }
}
