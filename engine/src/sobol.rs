//! Sobol' points for randomized quasi-Monte Carlo (docs/model.md §6), the integer half of the
//! `sobol` sampler: Joe and Kuo's direction numbers, each point found from its index alone, and
//! a nested uniform (Owen) scramble keyed per replicate and dimension. Everything here is
//! 32-bit integer arithmetic, so a GPU kernel that repeats it gives the same bits, as with
//! Philox; the floating-point half (the inverse normal CDF, the Brownian bridge) lives in
//! [`crate::normal`] and [`crate::bridge`].
//!
//! - **Direction numbers**: the first [`SOBOL_DIMENSIONS`] dimensions of Joe–Kuo's
//!   new-joe-kuo-6.21201 table (`engine/data/sobol-joe-kuo-1200.txt`, written by
//!   `benches/make_sobol_table.py`), one dimension per month of the longest horizon. Each
//!   dimension's 32 direction integers V_b come from its polynomial's recurrence, as in the
//!   authors' generator.
//! - **Points by index**: point i of dimension d is the XOR of V_b over the set bits b of
//!   i's Gray code i ⊕ (i >> 1): the order of Joe–Kuo's (and SciPy's) generator, which walks
//!   the Gray code one bit flip at a time, but computed for any i at once, as one GPU thread
//!   per path needs.
//! - **The scramble**: Laine and Karras's hash permutation on the bit-reversed point, as
//!   Burley ("Practical Hash-based Owen Scrambling", JCGT 9(4), 2020) gives it. Each of its
//!   steps (adding the seed, `x ^= x·c` with c even) changes a bit only from the bits below it,
//!   which after the reversal are the point's more significant bits: a nested scramble, so a
//!   scrambled net is still a net (tested), and each digit is flipped by a hash of the ones
//!   above it. The seed of replicate r and dimension d is the first word of the Philox block at
//!   counter (r, d, [`SCRAMBLE_STREAM`], 0) under the request's key: replicates are
//!   independent scrambles, and no other stream's draws are touched.

use std::sync::OnceLock;

use crate::philox;

/// Dimensions with Joe–Kuo direction numbers: one per month of the longest horizon
/// (`validate::MAX_HORIZON_MONTHS`).
pub const SOBOL_DIMENSIONS: usize = 1200;

/// Bits of each coordinate (and of the index): points 0 … 2^32 − 1.
pub const SOBOL_BITS: usize = 32;

/// The Philox stream (counter word c2) of the scramble seeds (docs/model.md §4's stream
/// table: 0 shocks, 1 and 2 the Student-t mixing, 3 regimes, 4 inflation, 5 the bootstrap).
pub const SCRAMBLE_STREAM: u32 = 6;

/// Joe–Kuo's table in its own format: a header, then `d s a m_1 … m_s` per dimension from 2.
const TABLE: &str = include_str!("../data/sobol-joe-kuo-1200.txt");

/// Each dimension's 32 direction integers, V_b = m_{b+1}·2^(31−b) for the first s and the
/// polynomial's recurrence after them.
#[derive(Debug, Clone)]
pub struct DirectionNumbers {
    v: Vec<[u32; SOBOL_BITS]>,
}

/// The table's direction numbers, parsed once.
pub fn direction_numbers() -> &'static DirectionNumbers {
    static NUMBERS: OnceLock<DirectionNumbers> = OnceLock::new();
    NUMBERS.get_or_init(|| DirectionNumbers::parse(TABLE))
}

impl DirectionNumbers {
    fn parse(table: &str) -> DirectionNumbers {
        // Dimension 1 is van der Corput's: every m is 1.
        let mut v = vec![std::array::from_fn(|b| 1u32 << (31 - b))];
        for (line, text) in table.lines().enumerate().skip(1) {
            let fields: Vec<u32> = text
                .split_whitespace()
                .map(|f| f.parse().expect("the Sobol table holds integers"))
                .collect();
            let (d, s, a) = (fields[0] as usize, fields[1] as usize, fields[2]);
            let m = &fields[3..];
            assert!(
                d == line + 1 && m.len() == s && (1..SOBOL_BITS).contains(&s),
                "line {line} of the Sobol table: {text}"
            );
            let mut dim = [0u32; SOBOL_BITS];
            for b in 0..SOBOL_BITS {
                dim[b] = if b < s {
                    m[b] << (31 - b)
                } else {
                    let mut x = dim[b - s] ^ (dim[b - s] >> s);
                    for k in 1..s {
                        if (a >> (s - 1 - k)) & 1 == 1 {
                            x ^= dim[b - k];
                        }
                    }
                    x
                };
            }
            v.push(dim);
        }
        assert_eq!(v.len(), SOBOL_DIMENSIONS, "the Sobol table's dimensions");
        DirectionNumbers { v }
    }

    /// Dimension `d`'s 32 direction integers (d from 0), as a GPU kernel's table holds them.
    pub fn of_dimension(&self, d: usize) -> &[u32; SOBOL_BITS] {
        &self.v[d]
    }

    /// Coordinate `d` (from 0) of point `index`, unscrambled, as a 32-bit fraction.
    pub fn point(&self, index: u32, d: usize) -> u32 {
        let v = &self.v[d];
        let mut gray = index ^ (index >> 1);
        let mut x = 0u32;
        while gray != 0 {
            x ^= v[gray.trailing_zeros() as usize];
            gray &= gray - 1;
        }
        x
    }
}

/// The scramble's seed for replicate `replicate` and dimension `d` under `key`.
pub fn scramble_seed(key: [u32; 2], replicate: u32, d: u32) -> u32 {
    philox::philox4x32_10([replicate, d, SCRAMBLE_STREAM, 0], key)[0]
}

/// Replicate `replicate`'s seeds for dimensions 0 … `dimensions` − 1: drawn once per
/// replicate, not once per path.
pub fn scramble_seeds(key: [u32; 2], replicate: u32, dimensions: usize) -> Vec<u32> {
    (0..dimensions as u32)
        .map(|d| scramble_seed(key, replicate, d))
        .collect()
}

/// `x` under the nested uniform scramble of `seed` (the module's top comment says how).
#[inline(always)]
pub fn scramble(x: u32, seed: u32) -> u32 {
    laine_karras(x.reverse_bits(), seed).reverse_bits()
}

/// Burley's Laine–Karras permutation: each output bit depends on the input bits below it.
#[inline(always)]
fn laine_karras(mut x: u32, seed: u32) -> u32 {
    x = x.wrapping_add(seed);
    x ^= x.wrapping_mul(0x6c50_b47c);
    x ^= x.wrapping_mul(0xb82f_1e52);
    x ^= x.wrapping_mul(0xc7af_e638);
    x ^= x.wrapping_mul(0x8d22_f6e6);
    x
}

/// A 32-bit coordinate as a uniform in (0, 1): the centre of its cell, (x + ½)·2^−32, so that
/// neither 0 nor 1 (whose normals are infinite) is ever drawn.
pub fn unit(x: u32) -> f64 {
    (f64::from(x) + 0.5) * (1.0 / 4_294_967_296.0)
}

/// The months' standard normals of point `index` of the replicate whose scramble seeds are
/// `seeds` ([`scramble_seeds`], one a month) (docs/model.md §6): coordinate d of the
/// scrambled point for month-dimension d, as a
/// uniform in (0, 1) ([`unit`]), through Φ⁻¹ in f32 as the kernels compute it
/// ([`crate::normal::inverse_cdf_of_word`]), ordered by
/// `bridge` ([`crate::bridge::BrownianBridge`]) into `out`, one a month; `z` is scratch of the
/// same length. The bridge spans at most [`SOBOL_DIMENSIONS`] months, so every month has its
/// dimension.
pub fn path_normals(
    bridge: &crate::bridge::BrownianBridge,
    seeds: &[u32],
    index: u32,
    z: &mut [f64],
    out: &mut [f64],
) {
    let numbers = direction_numbers();
    assert!(bridge.months() <= SOBOL_DIMENSIONS, "one dimension a month");
    assert_eq!(seeds.len(), z.len(), "one scramble seed a month");
    for (d, (zd, &seed)) in z.iter_mut().zip(seeds).enumerate() {
        let x = scramble(numbers.point(index, d), seed);
        *zd = f64::from(crate::normal::inverse_cdf_of_word(x));
    }
    bridge.normals(z, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::BrownianBridge;

    /// Replicate estimates of a goal's success and mean terminal wealth over `months` months,
    /// from `points` Sobol' paths each: W ← (W + c)·exp(m + s·Z) from W₀, success W_T ≥ K.
    fn replicate_estimates(
        seed: u64,
        replicates: u32,
        points: u32,
        months: usize,
        contribution: f64,
    ) -> Vec<(f64, f64)> {
        let (m, s, w0, k) = (0.005, 0.045, 1000.0, 1500.0);
        let bridge = BrownianBridge::new(months);
        let key = philox::key_of_seed(seed);
        let (mut z, mut out) = (vec![0.0; months], vec![0.0; months]);
        (0..replicates)
            .map(|r| {
                let seeds = scramble_seeds(key, r, months);
                let (mut hits, mut sum) = (0u32, 0.0);
                for i in 0..points {
                    path_normals(&bridge, &seeds, i, &mut z, &mut out);
                    let w = out
                        .iter()
                        .fold(w0, |w, &zt| (w + contribution) * (m + s * zt).exp());
                    hits += u32::from(w >= k);
                    sum += w;
                }
                let n = f64::from(points);
                (f64::from(hits) / n, sum / n)
            })
            .collect()
    }

    /// The sampler's estimates are unbiased and its standard error honest, with the bounds
    /// stated: over 400 seeds of 8 replicates × 256 points, 60 months,
    /// - without cash flows, the success estimate's mean over seeds is within 4 standard errors
    ///   (of that mean, from the seeds' spread) of the closed form Φ((ln(W₀/K) + 60m)/(s√60));
    /// - with a contribution (a path-dependent W_T), the mean terminal wealth's mean is within
    ///   4 standard errors of its closed form, W ← (W + c)·e^(m + s²/2) month by month;
    /// - the replicates' standard error (their spread / √8), squared and averaged over seeds,
    ///   is the seeds' variance of the estimate within 25% (each side's sampling error is
    ///   about 7% and 4% at 400 seeds: the bound is about 3 of their combined SDs).
    #[test]
    fn sobol_estimates_are_unbiased_and_their_standard_error_is_honest() {
        let (seeds, replicates, points, months) = (400u64, 8u32, 256u32, 60usize);
        let (m, s, w0, k) = (0.005f64, 0.045f64, 1000.0f64, 1500.0f64);
        let n = months as f64;
        let normal_cdf = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
        for (contribution, what) in [(0.0, "success without cash flows"), (5.0, "mean wealth")] {
            let (mut estimates, mut reported) = (Vec::new(), Vec::new());
            for seed in 0..seeds {
                let reps = replicate_estimates(seed, replicates, points, months, contribution);
                let values: Vec<f64> = reps
                    .iter()
                    .map(|&(p, w)| if contribution == 0.0 { p } else { w })
                    .collect();
                let mean = values.iter().sum::<f64>() / f64::from(replicates);
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / f64::from(replicates - 1);
                estimates.push(mean);
                reported.push(var / f64::from(replicates));
            }
            let count = seeds as f64;
            let grand = estimates.iter().sum::<f64>() / count;
            let spread = estimates.iter().map(|e| (e - grand).powi(2)).sum::<f64>() / (count - 1.0);
            let se_of_grand = (spread / count).sqrt();
            let exact = if contribution == 0.0 {
                normal_cdf(((w0 / k).ln() + n * m) / (s * n.sqrt()))
            } else {
                let g = (m + s * s / 2.0).exp();
                (0..months).fold(w0, |w, _| (w + contribution) * g)
            };
            assert!(
                (grand - exact).abs() <= 4.0 * se_of_grand,
                "{what}: {grand} against {exact} (SE {se_of_grand})"
            );
            let mean_reported = reported.iter().sum::<f64>() / count;
            let ratio = mean_reported / spread;
            eprintln!("{what}: {grand} against {exact}; reported variance / the seeds' {ratio:.3}");
            assert!(
                (ratio - 1.0).abs() <= 0.25,
                "{what}: reported variance {mean_reported:e} against the seeds' {spread:e}"
            );
        }
    }

    /// Points 1, 2, 3, 5, 100, 1000, 1023 and 999,999 of dimensions 1, 2, 3, 5, 100 and 1,200,
    /// unscrambled, as 32-bit fractions: SciPy 1.17's `qmc.Sobol(d=1200, scramble=False,
    /// bits=32)` (whose table is Joe–Kuo's and whose order is their generator's), read with
    /// `fast_forward` for the last.
    const PUBLISHED: [(usize, [u32; 8]); 6] = [
        (
            1,
            [
                2147483648, 3221225472, 1073741824, 3758096384, 1778384896, 943718400, 4194304,
                80154624,
            ],
        ),
        (
            2,
            [
                2147483648, 1073741824, 3221225472, 3758096384, 1107296256, 415236096, 3233808384,
                3856265216,
            ],
        ),
        (
            3,
            [
                2147483648, 1073741824, 3221225472, 536870912, 3321888768, 2227175424, 2629828608,
                1576505344,
            ],
        ),
        (
            5,
            [
                2147483648, 3221225472, 1073741824, 3758096384, 3791650816, 1203765248, 801112064,
                3673149440,
            ],
        ),
        (
            100,
            [
                2147483648, 3221225472, 1073741824, 1610612736, 3791650816, 801112064, 2277507072,
                380817408,
            ],
        ),
        (
            1200,
            [
                2147483648, 1073741824, 3221225472, 536870912, 3858759680, 2873098240, 4081057792,
                3229192192,
            ],
        ),
    ];
    const INDICES: [u32; 8] = [1, 2, 3, 5, 100, 1000, 1023, 999_999];

    #[test]
    fn the_points_are_joe_and_kuos() {
        let numbers = direction_numbers();
        for (dimension, want) in PUBLISHED {
            for (&i, &w) in INDICES.iter().zip(&want) {
                assert_eq!(
                    numbers.point(i, dimension - 1),
                    w,
                    "point {i} of dimension {dimension}"
                );
            }
            assert_eq!(numbers.point(0, dimension - 1), 0);
        }
    }

    /// Every dimension alone is a (0, m, 1)-net: its first 2^m points fall one in each cell
    /// of width 2^−m (m = 12), scrambled or not; and dimensions 1 and 2 together are a
    /// (0, m, 2)-net: every elementary box 2^−k × 2^−(m−k) holds one point, scrambled or not.
    #[test]
    fn a_scrambled_net_is_still_a_net() {
        let numbers = direction_numbers();
        let m = 12;
        let n = 1u32 << m;
        let key = philox::key_of_seed(7);
        for scrambled in [false, true] {
            let coordinate = |i: u32, d: usize| {
                let x = numbers.point(i, d);
                if scrambled {
                    scramble(x, scramble_seed(key, 3, d as u32))
                } else {
                    x
                }
            };
            for d in [0, 1, 2, 9, 99, 599, 1199] {
                let mut seen = vec![false; n as usize];
                for i in 0..n {
                    let cell = (coordinate(i, d) >> (32 - m)) as usize;
                    assert!(
                        !seen[cell],
                        "dimension {d}, scrambled {scrambled}: cell {cell} twice"
                    );
                    seen[cell] = true;
                }
            }
            for k in 0..=m {
                let mut seen = vec![false; n as usize];
                for i in 0..n {
                    let (x, y) = (coordinate(i, 0), coordinate(i, 1));
                    let a = if k == 0 { 0 } else { (x >> (32 - k)) as usize };
                    let b = if k == m {
                        0
                    } else {
                        (y >> (32 - (m - k))) as usize
                    };
                    let cell = (a << (m - k)) | b;
                    assert!(
                        !seen[cell],
                        "k {k}, scrambled {scrambled}: box {a}, {b} twice"
                    );
                    seen[cell] = true;
                }
            }
        }
    }

    /// Across seeds a scrambled coordinate is uniform: point 0 (0 before the scramble) of one
    /// dimension under 16,000 keys, in 16 bins, has a χ² statistic (15 degrees of freedom)
    /// below 37.7, its 0.1% critical value; its mean is ½ within 4 standard errors
    /// (1/sqrt(12·16,000)); and its lowest bits are as uniform (bins of x mod 16).
    #[test]
    fn scrambled_points_are_uniform_across_seeds() {
        let numbers = direction_numbers();
        let seeds = 16_000;
        for (i, d) in [(0u32, 0usize), (5, 1), (77, 40)] {
            let (mut high, mut low) = ([0u32; 16], [0u32; 16]);
            let mut sum = 0.0;
            for seed in 0..seeds {
                let key = philox::key_of_seed(seed);
                let x = scramble(numbers.point(i, d), scramble_seed(key, 0, d as u32));
                high[(x >> 28) as usize] += 1;
                low[(x & 15) as usize] += 1;
                sum += unit(x);
            }
            let expected = f64::from(seeds as u32) / 16.0;
            for bins in [high, low] {
                let chi2: f64 = bins
                    .iter()
                    .map(|&c| (f64::from(c) - expected).powi(2) / expected)
                    .sum();
                assert!(
                    chi2 < 37.7,
                    "point {i}, dimension {d}: χ² {chi2} over {bins:?}"
                );
            }
            let mean = sum / seeds as f64;
            let se = (1.0 / (12.0 * seeds as f64)).sqrt();
            assert!(
                (mean - 0.5).abs() < 4.0 * se,
                "point {i}, dimension {d}: mean {mean}"
            );
        }
    }

    /// Replicates and dimensions draw different seeds, and the scramble is a bijection on each
    /// (distinct points stay distinct).
    #[test]
    fn seeds_differ_and_the_scramble_is_a_permutation() {
        let key = philox::key_of_seed(1);
        let mut seeds: Vec<u32> = (0..64)
            .flat_map(|r| (0..64).map(move |d| scramble_seed(key, r, d)))
            .collect();
        seeds.sort_unstable();
        seeds.dedup();
        assert_eq!(seeds.len(), 64 * 64);
        let seed = scramble_seed(key, 0, 0);
        let mut images: Vec<u32> = (0..1u32 << 16).map(|x| scramble(x << 16, seed)).collect();
        images.sort_unstable();
        images.dedup();
        assert_eq!(images.len(), 1 << 16);
    }

    #[test]
    fn units_are_inside_the_open_interval() {
        assert!(unit(0) > 0.0 && unit(u32::MAX) < 1.0);
        assert_eq!(unit(1 << 31), 0.5 + 0.5 / 4_294_967_296.0);
    }
}
