//! The Student-t market of docs/model.md §4.1 (fat tails): the month's simple return is §1's
//! lognormal mean and standard deviation around a t-distributed shock,
//! R_t = μ_m + σ_m·Z_t·sqrt((ν−2)/V_t), V_t ~ χ²_ν, G_t = max(1 + R_t, 0).
//!
//! What this module owns: the prepared constants ([`StudentT`]), the χ² draw (Marsaglia and
//! Tsang's gamma method, 2000) and the month's gross return, as the scalar definition every
//! backend reproduces and as the CPU kernel's lane-wise form. The WGSL and CUDA kernels run the
//! same steps from `shaders/common.wgsl` (`student_t_block`, `student_t_first`,
//! `student_t_retry`, `student_t_gross`; `student_t_mixing` is the scalar definition there), in
//! `f32` with the same polynomial `ln`, so the CPU and the generated CUDA C agree to the bit.
//!
//! The numbers: Z_t is §1's normal (counter (path, ⌊t/4⌋, 0, 0)), unchanged, so the lognormal
//! model's numbers do not move. The mixing draws take their own Philox streams. A block's four
//! words give two proposals (a Box–Muller pair of normals x from words 0 and 1; the uniforms
//! u of words 2 and 3). Months 2k and 2k+1 share the block of counter
//! (path, k, [`FIRST_STREAM`], 0) for their first proposals (the first and the second). A
//! month whose first proposal is rejected goes on with the blocks of counter
//! (path, t, [`RETRY_STREAM`], pair), pair = 0, 1, …, two proposals each, in order. The first
//! accepted proposal is V_t/(2d); with ν > 2 (shape ν/2 > 1) each is accepted with
//! probability above 0.95 (0.986 at ν = 5), so a month costs half a block almost always.
//! After [`MIXING_PAIRS`] rejected retry blocks (probability below 10⁻⁴⁰) the draw takes
//! V_t = 2d (ν − 2/3, next to its mean ν), so that no input can loop forever.
//!
//! How the month reaches the kernels: μ_m = E[G] − 1 and σ_m = SD[G] of §1's month are
//! E[G] = exp(m/12 + s²/24) and σ_m = E[G]·sqrt(exp(s²/12) − 1), so
//! 1 + R_t = E[G]·(1 + sqrt(exp(s²/12) − 1)·T_t). The prepared goal's `drift` holds E[G] (and
//! the fee's factor) and its `volatility` holds sqrt(exp(s²/12) − 1): the kernels' wealth
//! update `W·drift·shock` is untouched, and only the shock differs.

use crate::normal::{box_muller, ln, open_unit};

/// ν when a request gives none.
pub const DEFAULT_DF: f64 = 5.0;
/// The largest ν accepted: beyond it the t is the normal to f32 precision anyway.
pub const MAX_DF: f64 = 1e9;
/// Philox word c2 of the first proposals' counters, (path, ⌊t/2⌋, 1, 0) (the shocks' stream
/// has c2 = 0).
pub const FIRST_STREAM: u32 = 1;
/// Philox word c2 of the retries' counters, (path, t, 2, pair).
pub const RETRY_STREAM: u32 = 2;
/// Retry blocks tried before the draw gives up (see the module's docs).
pub const MIXING_PAIRS: u32 = 16;

/// The t model's constants, computed once on the host in `f64` and handed to every backend as
/// the same `f32`s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StudentT {
    /// ν, degrees of freedom.
    pub df: f64,
    /// Marsaglia–Tsang's d = ν/2 − 1/3.
    pub d: f32,
    /// c = 1/sqrt(9d).
    pub c: f32,
    /// (ν − 2)/(2d): T_t = Z_t·sqrt(scale / v) for the accepted v = V_t/(2d).
    pub scale: f32,
}

impl StudentT {
    /// The constants of ν (checked by the caller: 2 < ν ≤ [`MAX_DF`]).
    pub fn new(df: f64) -> Self {
        let d = df / 2.0 - 1.0 / 3.0;
        StudentT {
            df,
            d: d as f32,
            c: (1.0 / (9.0 * d).sqrt()) as f32,
            scale: ((df - 2.0) / (2.0 * d)) as f32,
        }
    }
}

/// One Marsaglia–Tsang proposal from a normal `x` and a uniform `u` in (0, 1]: v = (1 + c·x)³
/// when accepted, else 0 (an accepted v is positive).
#[inline(always)]
pub fn gamma_proposal(x: f32, u: f32, d: f32, c: f32) -> f32 {
    let y = 1.0 + c * x;
    let v = y * y * y;
    // ln of a positive stand-in where v ≤ 0, so the lanes compute without a branch.
    let positive = v > 0.0;
    let ln_v = ln(if positive { v } else { 1.0 });
    let accept = positive && ln(u) < 0.5 * x * x + d - d * v + d * ln_v;
    if accept {
        v
    } else {
        0.0
    }
}

/// A Philox block's two proposals (0 where rejected): the first and second month's of a
/// first block (path, k, [`FIRST_STREAM`], 0), or the two tries of a retry block.
#[inline(always)]
fn proposals_of_block(words: [u32; 4], t: &StudentT) -> (f32, f32) {
    let (x0, x1) = box_muller(words[0], words[1]);
    (
        gamma_proposal(x0, open_unit(words[2]), t.d, t.c),
        gamma_proposal(x1, open_unit(words[3]), t.d, t.c),
    )
}

/// The first accepted proposal of a retry block's two (0 when both are rejected).
#[inline(always)]
fn proposal_of_block(words: [u32; 4], t: &StudentT) -> f32 {
    let (v0, v1) = proposals_of_block(words, t);
    if v0 > 0.0 {
        v0
    } else {
        v1
    }
}

/// The mixing draw v = V_t/(2d) of (seed, path, month): the scalar definition every backend
/// reproduces.
pub fn mixing_at(seed: u64, path: u32, month: u32, t: &StudentT) -> f32 {
    let key = crate::philox::key_of_seed(seed);
    let block = crate::philox::philox4x32_10([path, month / 2, FIRST_STREAM, 0], key);
    let (even, odd) = proposals_of_block(block, t);
    let first = if month.is_multiple_of(2) { even } else { odd };
    if first > 0.0 {
        return first;
    }
    for pair in 0..MIXING_PAIRS {
        let words = crate::philox::philox4x32_10([path, month, RETRY_STREAM, pair], key);
        let v = proposal_of_block(words, t);
        if v > 0.0 {
            return v;
        }
    }
    1.0
}

/// 1 + vol·T_t, the month's gross return over its mean before the clamp at 0, from the normal
/// `z`, the mixing draw `v` and the prepared `volatility` (sqrt(exp(s²/12) − 1)).
#[inline(always)]
pub fn gross(z: f32, volatility: f32, v: f32, scale: f32) -> f32 {
    1.0 + volatility * (z * (scale / v).sqrt())
}

/// The first proposals over lanes: from each lane's block of counter
/// (path, k, [`FIRST_STREAM`], 0), those of months 2k and 2k+1 (0 where rejected).
#[inline(always)]
pub fn first_proposals_lanes<const L: usize>(block: &[[u32; L]; 4], t: &StudentT) -> [[f32; L]; 2] {
    let mut x = [[0.0f32; L]; 2];
    let [x0, x1] = &mut x;
    crate::normal::box_muller_lanes(&block[0], &block[1], x0, x1);
    let mut out = [[0.0f32; L]; 2];
    for l in 0..L {
        out[0][l] = gamma_proposal(x[0][l], open_unit(block[2][l]), t.d, t.c);
        out[1][l] = gamma_proposal(x[1][l], open_unit(block[3][l]), t.d, t.c);
    }
    out
}

/// [`mixing_at`] over lanes, from the month's first proposals (`first`, 0 where rejected):
/// `retry(pair)` gives each lane's block of counter (path, month, [`RETRY_STREAM`], pair).
/// Every lane computes the retries until all have accepted, so a lane group retries when any
/// of its lanes does (at ν = 5, one month in five for sixteen lanes).
#[inline(always)]
pub fn mixing_lanes<const L: usize>(
    first: [f32; L],
    retry: impl Fn(u32) -> [[u32; L]; 4],
    t: &StudentT,
) -> [f32; L] {
    let mut v = first;
    if v.iter().all(|&v| v > 0.0) {
        return v;
    }
    for pair in 0..MIXING_PAIRS {
        let w = retry(pair);
        let mut all = true;
        for l in 0..L {
            let proposal = proposal_of_block([w[0][l], w[1][l], w[2][l], w[3][l]], t);
            v[l] = if v[l] > 0.0 { v[l] } else { proposal };
            all &= v[l] > 0.0;
        }
        if all {
            return v;
        }
    }
    v.map(|v| if v > 0.0 { v } else { 1.0 })
}

/// `z ← max(gross(z), 0)` over lanes; returns which lanes were clamped (a loss of 100% or
/// more drawn).
#[inline(always)]
pub fn shock_lanes<const L: usize>(
    z: &mut [f32; L],
    v: &[f32; L],
    volatility: f32,
    t: &StudentT,
) -> [bool; L] {
    let mut clamped = [false; L];
    for l in 0..L {
        let g = gross(z[l], volatility, v[l], t.scale);
        clamped[l] = g <= 0.0;
        z[l] = if g > 0.0 { g } else { 0.0 };
    }
    clamped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lane form is the scalar definition, lane by lane, over 200 months of 16 paths:
    /// retries (a rejected first proposal) included.
    #[test]
    fn the_lanes_are_the_scalar_draws() {
        let t = StudentT::new(4.5);
        let seed = 77;
        let mut retried = 0;
        for month in (0u32..199).chain([1199]) {
            let paths: [u32; 16] = std::array::from_fn(|l| 1000 + 37 * l as u32);
            let block = |c: [u32; 3]| {
                let mut out = [[0u32; 16]; 4];
                for (l, &p) in paths.iter().enumerate() {
                    let w = crate::philox::philox4x32_10(
                        [p, c[0], c[1], c[2]],
                        crate::philox::key_of_seed(seed),
                    );
                    for k in 0..4 {
                        out[k][l] = w[k];
                    }
                }
                out
            };
            let first = first_proposals_lanes(&block([month / 2, FIRST_STREAM, 0]), &t);
            retried += first[(month % 2) as usize]
                .iter()
                .filter(|&&v| v == 0.0)
                .count();
            let v = mixing_lanes(
                first[(month % 2) as usize],
                |pair| block([month, RETRY_STREAM, pair]),
                &t,
            );
            for (l, &p) in paths.iter().enumerate() {
                assert_eq!(v[l].to_bits(), mixing_at(seed, p, month, &t).to_bits());
            }
        }
        assert!(retried > 0, "some lane retries");
    }

    /// V = 2d·v is χ²_ν: its mean ν and variance 2ν within 4 standard errors, over 200,000
    /// draws, for a small and a large ν.
    #[test]
    fn the_mixing_draw_is_chi_squared() {
        for df in [3.0, 5.0, 30.0, 1e6] {
            let t = StudentT::new(df);
            let n = 200_000u32;
            let draws: Vec<f64> = (0..n)
                .map(|i| 2.0 * f64::from(t.d) * f64::from(mixing_at(9, i, i % 7, &t)))
                .collect();
            let mean = draws.iter().sum::<f64>() / f64::from(n);
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f64::from(n - 1);
            // SE of the mean sqrt(2ν/n); of the variance sqrt((μ4 − σ⁴)/n) with χ²'s
            // μ4 = 12ν(ν + 4).
            let se_mean = (2.0 * df / f64::from(n)).sqrt();
            let se_var = ((12.0 * df * (df + 4.0) - 4.0 * df * df) / f64::from(n)).sqrt();
            assert!((mean - df).abs() <= 4.0 * se_mean, "ν {df}: mean {mean}");
            assert!(
                (var - 2.0 * df).abs() <= 4.0 * se_var,
                "ν {df}: variance {var}"
            );
        }
    }
}
