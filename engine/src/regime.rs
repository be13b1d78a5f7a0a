//! Markov regime switching (docs/model.md §4.2): the month's return is §1's lognormal with the
//! parameters of the regime in force, and the regime follows a Markov chain, one uniform a
//! month.
//!
//! What this module owns: the prepared chain ([`RegimeChain`]: its threshold table, with the
//! stationary distribution's row when the chain starts there), the step from one regime to the next, and the scalar definition of
//! a path's regimes ([`regimes_at`]) that every backend reproduces. The prepared goal holds one
//! month-by-month schedule (drift, volatility) per regime; the kernels pick the month's entry
//! by the regime in force, so the wealth update is §1's.
//!
//! The numbers: the shocks Z_t keep §1's stream (counter (path, ⌊t/4⌋, 0, 0)), so regimes that
//! override nothing give the lognormal's numbers to the bit. Month t's uniform is word t mod 4
//! of the block of counter (path, ⌊t/4⌋, [`REGIME_STREAM`], 0), reduced to its top 24 bits u.
//! A row of K − 1 thresholds θ_j = round(2²⁴·Σ_{k≤j} p_k) picks regime Σ_j [u ≥ θ_j]: regime
//! j with probability (θ_j − θ_{j−1})/2²⁴, within 2⁻²⁴ of p_j. Integers up to 2²⁴ are exact in
//! `f32`, so the GPUs compare them as floats and still agree with the CPU to the bit. Month 0
//! draws from row 0 (the stationary distribution, or a row that always gives the starting
//! index); month t ≥ 1 from row 1 + (month t − 1's regime).

use nalgebra::DMatrix;

use crate::philox;

/// Philox word c2 of the regime uniforms' counters, (path, ⌊t/4⌋, 3, 0) (the shocks' stream
/// has c2 = 0, the Student-t draws 1 and 2).
pub const REGIME_STREAM: u32 = 3;
/// Most regimes a market may have.
pub const MAX_REGIMES: usize = 8;
/// A threshold's unit: the month's uniform is its word's top 24 bits, in [0, 2²⁴).
pub const THRESHOLD_ONE: u32 = 1 << 24;
/// A transition row must sum to 1 within this.
pub const ROW_SUM_TOLERANCE: f64 = 1e-6;

/// A checked chain, ready for the kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct RegimeChain {
    /// The regimes' names, in the request's order.
    pub names: Vec<String>,
    /// K + 1 rows of K − 1 thresholds (in units of 2⁻²⁴): row 0 draws month 0's regime, row
    /// 1 + i the regime after regime i.
    pub thresholds: Vec<u32>,
}

impl RegimeChain {
    /// The chain of `transition` (K × K, rows checked to be probabilities by the caller),
    /// starting from `start`, a regime's index, or from the stationary distribution when
    /// `None`. `None` back when the start is stationary and the chain has no unique stationary
    /// distribution.
    pub fn new(names: Vec<String>, transition: &[Vec<f64>], start: Option<usize>) -> Option<Self> {
        let k = names.len();
        let mut thresholds: Vec<u32> = match start {
            Some(index) => (0..k - 1)
                .map(|j| if j < index { 0 } else { THRESHOLD_ONE })
                .collect(),
            None => thresholds_of(&stationary_distribution(transition)?),
        };
        for row in transition {
            thresholds.extend(thresholds_of(row));
        }
        Some(RegimeChain { names, thresholds })
    }

    /// K.
    pub fn count(&self) -> usize {
        self.names.len()
    }

    /// The regime that threshold row `row` gives for Philox word `word`.
    #[inline(always)]
    pub fn pick(&self, row: usize, word: u32) -> u32 {
        let width = self.count() - 1;
        let u = word >> 8;
        self.thresholds[row * width..(row + 1) * width]
            .iter()
            .map(|&theta| u32::from(u >= theta))
            .sum()
    }

    /// Month t's regime for each lane from its Philox word: from row 0 at t = 0, else from the
    /// row of the lane's regime, which `regime` holds on entry and receives on exit. [`pick`]'s
    /// result, computed for every row in turn with the row's thresholds broadcast and the
    /// lane's row selected, so that the loops vectorise (K is small; no gathers).
    ///
    /// [`pick`]: RegimeChain::pick
    #[inline(always)]
    pub fn step_lanes<const L: usize>(&self, first: bool, words: &[u32; L], regime: &mut [u32; L]) {
        let width = self.count() - 1;
        let u: [u32; L] = std::array::from_fn(|l| words[l] >> 8);
        let drawn_from = |row: usize| {
            let mut drawn = [0u32; L];
            for &theta in &self.thresholds[row * width..(row + 1) * width] {
                for l in 0..L {
                    drawn[l] += u32::from(u[l] >= theta);
                }
            }
            drawn
        };
        if first {
            *regime = drawn_from(0);
            return;
        }
        let mut next = [0u32; L];
        for from in 0..self.count() {
            let drawn = drawn_from(1 + from);
            for l in 0..L {
                next[l] = if regime[l] == from as u32 {
                    drawn[l]
                } else {
                    next[l]
                };
            }
        }
        *regime = next;
    }

    /// Each lane's entry of `values` (one per regime) by the lane's regime, selected rather
    /// than gathered.
    #[inline(always)]
    pub fn select_lanes<T: Copy + Default, const L: usize>(
        regime: &[u32; L],
        values: impl Fn(usize) -> T,
        count: usize,
    ) -> [T; L] {
        let mut out = [T::default(); L];
        for k in 0..count {
            let value = values(k);
            for l in 0..L {
                out[l] = if regime[l] == k as u32 { value } else { out[l] };
            }
        }
        out
    }
}

/// K − 1 cumulative thresholds of a probability row, in units of 2⁻²⁴.
fn thresholds_of(probabilities: &[f64]) -> Vec<u32> {
    let mut cumulative = 0.0;
    probabilities[..probabilities.len() - 1]
        .iter()
        .map(|&p| {
            cumulative += p;
            (cumulative * f64::from(THRESHOLD_ONE))
                .round()
                .clamp(0.0, f64::from(THRESHOLD_ONE)) as u32
        })
        .collect()
}

/// π with π P = π and Σ π = 1, when the chain has exactly one (one closed class): the solution
/// of Pᵀ − I with its last row replaced by ones, which is singular exactly when π is not unique.
pub fn stationary_distribution(transition: &[Vec<f64>]) -> Option<Vec<f64>> {
    let k = transition.len();
    let mut a = DMatrix::from_fn(k, k, |i, j| {
        transition[j][i] - if i == j { 1.0 } else { 0.0 }
    });
    for j in 0..k {
        a[(k - 1, j)] = 1.0;
    }
    let smallest = a.singular_values().min();
    if smallest < 1e-9 {
        return None;
    }
    let mut b = nalgebra::DVector::zeros(k);
    b[k - 1] = 1.0;
    let pi = a.lu().solve(&b)?;
    let pi: Vec<f64> = pi.iter().map(|&p| p.max(0.0)).collect();
    let total: f64 = pi.iter().sum();
    Some(pi.iter().map(|p| p / total).collect())
}

/// Philox word of month `month`'s regime uniform on `path`.
pub fn regime_word(seed: u64, path: u32, month: u32) -> u32 {
    let block = philox::philox4x32_10(
        [path, month / 4, REGIME_STREAM, 0],
        philox::key_of_seed(seed),
    );
    block[(month % 4) as usize]
}

/// The definition: the regimes of months 0 … horizon − 1 of `path`.
pub fn regimes_at(seed: u64, path: u32, horizon: u32, chain: &RegimeChain) -> Vec<u32> {
    let mut regimes = Vec::with_capacity(horizon as usize);
    let mut regime = 0u32;
    for t in 0..horizon {
        let row = if t == 0 { 0 } else { 1 + regime as usize };
        regime = chain.pick(row, regime_word(seed, path, t));
        regimes.push(regime);
    }
    regimes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("r{i}")).collect()
    }

    #[test]
    fn the_stationary_distribution_of_two_regimes_is_the_closed_form() {
        // Leaving 0 with a, leaving 1 with b: π = (b, a)/(a + b).
        let (a, b) = (0.02, 0.1);
        let pi = stationary_distribution(&[vec![1.0 - a, a], vec![b, 1.0 - b]]).unwrap();
        assert!((pi[0] - b / (a + b)).abs() < 1e-12, "{pi:?}");
        assert!((pi[1] - a / (a + b)).abs() < 1e-12, "{pi:?}");
        // A periodic chain still has one: (1/2, 1/2).
        let pi = stationary_distribution(&[vec![0.0, 1.0], vec![1.0, 0.0]]).unwrap();
        assert!((pi[0] - 0.5).abs() < 1e-12);
        // Two closed classes: none unique.
        assert!(stationary_distribution(&[vec![1.0, 0.0], vec![0.0, 1.0]]).is_none());
        assert!(stationary_distribution(&[
            vec![0.5, 0.5, 0.0],
            vec![0.5, 0.5, 0.0],
            vec![0.0, 0.0, 1.0]
        ])
        .is_none());
        // A transient state gets 0.
        let pi = stationary_distribution(&[
            vec![0.5, 0.5, 0.0],
            vec![0.5, 0.5, 0.0],
            vec![0.3, 0.3, 0.4],
        ])
        .unwrap();
        assert!(pi[2].abs() < 1e-12 && (pi[0] - 0.5).abs() < 1e-12, "{pi:?}");
    }

    #[test]
    fn thresholds_pick_each_regime_with_its_probability() {
        let chain = RegimeChain::new(
            names(3),
            &[
                vec![0.25, 0.0, 0.75],
                vec![0.0, 1.0, 0.0],
                vec![0.5, 0.5, 0.0],
            ],
            Some(2),
        )
        .unwrap();
        // Row 0 always gives the start.
        for word in [0, 1 << 8, u32::MAX / 2, u32::MAX] {
            assert_eq!(chain.pick(0, word), 2);
        }
        // Leaving regime 0: regime 0 below a quarter, never 1, else 2.
        let quarter = THRESHOLD_ONE / 4;
        assert_eq!(chain.pick(1, (quarter - 1) << 8), 0);
        assert_eq!(chain.pick(1, quarter << 8), 2);
        assert_eq!(chain.pick(1, u32::MAX), 2);
        // Leaving regime 1: always 1, whatever the word.
        assert_eq!(chain.pick(2, 0), 1);
        assert_eq!(chain.pick(2, u32::MAX), 1);
        // Leaving regime 2: 0 below a half, then 1, never 2.
        assert_eq!(chain.pick(3, ((THRESHOLD_ONE / 2) - 1) << 8), 0);
        assert_eq!(chain.pick(3, u32::MAX), 1);
    }

    #[test]
    fn one_regime_has_no_thresholds_and_stays() {
        let chain = RegimeChain::new(names(1), &[vec![1.0]], None).unwrap();
        assert!(chain.thresholds.is_empty());
        assert_eq!(regimes_at(7, 3, 30, &chain), vec![0; 30]);
    }

    #[test]
    fn occupation_frequencies_match_the_stationary_distribution() {
        // 3 regimes, started stationary: each month's regime is distributed as π, so the share
        // of path-months in regime j estimates π_j. Months of one path are correlated, so the
        // standard error comes from the spread of per-path shares (paths are independent).
        let transition = vec![
            vec![0.90, 0.08, 0.02],
            vec![0.10, 0.85, 0.05],
            vec![0.20, 0.20, 0.60],
        ];
        let chain = RegimeChain::new(names(3), &transition, None).unwrap();
        let pi = stationary_distribution(&transition).unwrap();
        let (paths, horizon) = (20_000u32, 120u32);
        let mut shares: Vec<Vec<f64>> =
            (0..3).map(|_| Vec::with_capacity(paths as usize)).collect();
        for path in 0..paths {
            let mut counts = [0u32; 3];
            for r in regimes_at(2024, path, horizon, &chain) {
                counts[r as usize] += 1;
            }
            for j in 0..3 {
                shares[j].push(f64::from(counts[j]) / f64::from(horizon));
            }
        }
        for j in 0..3 {
            let n = f64::from(paths);
            let mean = shares[j].iter().sum::<f64>() / n;
            let var = shares[j].iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let se = (var / n).sqrt();
            assert!(
                (mean - pi[j]).abs() < 4.0 * se,
                "regime {j}: {mean} vs π {} (SE {se})",
                pi[j]
            );
        }
        // And month 1's regime after a fixed start follows the start's row (4 SE).
        let chain = RegimeChain::new(names(3), &transition, Some(2)).unwrap();
        let mut counts = [0f64; 3];
        for path in 0..paths {
            let r = regimes_at(5, path, 2, &chain);
            assert_eq!(r[0], 2);
            counts[r[1] as usize] += 1.0;
        }
        for j in 0..3 {
            let p = transition[2][j];
            let se = (p * (1.0 - p) / f64::from(paths)).sqrt();
            let share = counts[j] / f64::from(paths);
            assert!((share - p).abs() < 4.0 * se, "{j}: {share} vs {p}");
        }
    }

    #[test]
    fn the_lanes_step_is_the_definition() {
        let chain = RegimeChain::new(
            names(4),
            &[
                vec![0.7, 0.1, 0.1, 0.1],
                vec![0.2, 0.6, 0.1, 0.1],
                vec![0.0, 0.3, 0.3, 0.4],
                vec![0.25, 0.25, 0.25, 0.25],
            ],
            None,
        )
        .unwrap();
        let seed = 11;
        let mut regime = [0u32; 8];
        let expected: Vec<Vec<u32>> = (0..8).map(|p| regimes_at(seed, p, 50, &chain)).collect();
        for t in 0..50 {
            let words: [u32; 8] = std::array::from_fn(|p| regime_word(seed, p as u32, t));
            chain.step_lanes(t == 0, &words, &mut regime);
            for p in 0..8 {
                assert_eq!(regime[p], expected[p][t as usize], "path {p} month {t}");
            }
        }
    }
}
