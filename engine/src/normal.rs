//! Standard normals from Philox words, by the Box-Muller transform, and the `exp` of the
//! monthly return, all lane-wise in `f32` so that LLVM vectorises them.
//!
//! The transcendental functions are written here rather than called from libm because a libm
//! call is a scalar function call that stops vectorisation. They use only `+ − × ÷`, `sqrt` and
//! bit manipulation, never fused multiply-add, so every x86-64 CPU (SSE, AVX2 or AVX-512)
//! computes the same bits: a seed gives the same result on any machine.
//!
//! Uniforms from a 32-bit word `x`: `u1 = ((x >> 8) + 1) · 2⁻²⁴ ∈ (0, 1]` (never 0, so the log
//! is finite) and `u2 = (x >> 8) · 2⁻²⁴ ∈ [0, 1)`, both exact in `f32`. Then
//! `z0 = r cos 2πu2`, `z1 = r sin 2πu2` with `r = sqrt(−2 ln u1)`. The error against the same
//! transform in `f64` is below 1e-6 (tested), and |z| ≤ 5.77.

const TWO_POW_M24: f32 = 1.0 / 16_777_216.0;

/// The uniform in (0, 1] of a Philox word (the radius input of Box-Muller).
#[inline(always)]
pub fn open_unit(x: u32) -> f32 {
    ((x >> 8) as i32 + 1) as f32 * TWO_POW_M24
}

/// The uniform in [0, 1) of a Philox word (the angle input of Box-Muller).
#[inline(always)]
pub fn half_open_unit(x: u32) -> f32 {
    (x >> 8) as i32 as f32 * TWO_POW_M24
}

/// Natural logarithm for positive, normal `x` (Cephes `logf`; about 1 ulp).
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x807f_ffff) | 0x3f00_0000); // [0.5, 1)
    let small = m < SQRT_HALF;
    e -= small as i32;
    m = if small { m + m - 1.0 } else { m - 1.0 };
    let e = e as f32;
    let z = m * m;
    let mut p = 7.037_683_6e-2_f32;
    p = p * m - 1.151_461e-1;
    p = p * m + 1.167_699_9e-1;
    p = p * m - 1.242_014_1e-1;
    p = p * m + 1.424_932_3e-1;
    p = p * m - 1.666_805_8e-1;
    p = p * m + 2.000_071_4e-1;
    p = p * m - 2.499_999_4e-1;
    p = p * m + 3.333_333e-1;
    let mut y = p * m * z;
    y += e * -2.121_944_4e-4;
    y += -0.5 * z;
    (m + y) + e * 0.693_359_4
}

/// 1.5 · 2²³: adding it to an integer-valued float of magnitude below 2²² puts the integer in
/// the low mantissa bits, a conversion that vectorises (Rust's saturating `as i32` does not).
const ROUND_MAGIC: f32 = 12_582_912.0;

/// The integer value of an integer-valued `x` with |x| < 2²², as wrapping bits.
#[inline(always)]
fn small_int_bits(x: f32) -> u32 {
    (x + ROUND_MAGIC)
        .to_bits()
        .wrapping_sub(ROUND_MAGIC.to_bits())
}

/// `exp(x)` for |x| ≤ 87 (Cephes `expf`; about 1 ulp). Larger arguments are clamped.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Compare-and-select rather than `clamp`, whose NaN handling stops vectorisation.
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 87.0 { 87.0 } else { x };
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let z = r * r;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * z + r + 1.0;
    let scale = f32::from_bits(small_int_bits(n).wrapping_add(127) << 23);
    y * scale
}

/// `(cos 2πu, sin 2πu)` for u ∈ [0, 1).
///
/// The reduction is exact: with q = round(4u), v = u − q/4 ∈ [−1/8, 1/8] has no rounding error,
/// and 2π is folded into the Taylor coefficients, so the only errors are the polynomials'.
#[inline(always)]
pub fn cos_sin_turns(u: f32) -> (f32, f32) {
    let q = (u * 4.0 + 0.5).floor();
    let v = u - q * 0.25;
    let v2 = v * v;
    let mut s = 42.058_694_f32;
    s = s * v2 - 76.705_86;
    s = s * v2 + 81.605_25;
    s = s * v2 - 41.341_7;
    s = s * v2 + std::f32::consts::TAU;
    let s = s * v;
    let mut c = -26.426_257_f32;
    c = c * v2 + 60.244_64;
    c = c * v2 - 85.456_82;
    c = c * v2 + 64.939_39;
    c = c * v2 - 19.739_208;
    let c = c * v2 + 1.0;
    // Rotate by the quadrant q mod 4: (c, s), (−s, c), (−c, −s), (s, −c).
    let quadrant = small_int_bits(q) & 3;
    let (cos, sin) = if quadrant & 1 == 0 { (c, s) } else { (-s, c) };
    if quadrant & 2 == 0 {
        (cos, sin)
    } else {
        (-cos, -sin)
    }
}

/// One Box-Muller pair from two Philox words.
#[inline(always)]
pub fn box_muller(x_radius: u32, x_angle: u32) -> (f32, f32) {
    let r = (-2.0 * ln(open_unit(x_radius))).sqrt();
    let (c, s) = cos_sin_turns(half_open_unit(x_angle));
    (r * c, r * s)
}

/// The four normals of one Philox block: months 4q, 4q+1 from words (0, 1) and months
/// 4q+2, 4q+3 from words (2, 3).
#[inline(always)]
pub fn normals_of_block(words: [u32; 4]) -> [f32; 4] {
    let (a, b) = box_muller(words[0], words[1]);
    let (c, d) = box_muller(words[2], words[3]);
    [a, b, c, d]
}

/// Box-Muller over lanes: normals of the word pairs `(radius[l], angle[l])` into `cos_out[l]`
/// and `sin_out[l]`. A plain loop over arrays, so LLVM vectorises it whole.
#[inline(always)]
pub fn box_muller_lanes<const L: usize>(
    radius: &[u32; L],
    angle: &[u32; L],
    cos_out: &mut [f32; L],
    sin_out: &mut [f32; L],
) {
    for l in 0..L {
        let (c, s) = box_muller(radius[l], angle[l]);
        cos_out[l] = c;
        sin_out[l] = s;
    }
}

/// `x ← exp(scale · x)` over lanes.
#[inline(always)]
pub fn exp_scaled_lanes<const L: usize>(scale: f32, x: &mut [f32; L]) {
    for v in x.iter_mut() {
        *v = exp(scale * *v);
    }
}

/// `x[l] ← exp(scale[l] · x[l])` over lanes: [`exp_scaled_lanes`] with a scale per lane.
#[inline(always)]
pub fn exp_scaled_each<const L: usize>(scale: &[f32; L], x: &mut [f32; L]) {
    for (v, &s) in x.iter_mut().zip(scale) {
        *v = exp(s * *v);
    }
}

/// The same transform in `f64` with the standard library's functions: the accuracy reference
/// for tests and for the GPU backends' parity checks.
pub fn box_muller_f64(x_radius: u32, x_angle: u32) -> (f64, f64) {
    let u1 = f64::from(open_unit(x_radius));
    let u2 = f64::from(half_open_unit(x_angle));
    let r = (-2.0 * u1.ln()).sqrt();
    let theta = std::f64::consts::TAU * u2;
    (r * theta.cos(), r * theta.sin())
}

/// The inverse of the standard normal CDF, Φ⁻¹(p) for p in (0, 1): Wichura's algorithm AS241
/// (PPND16, Applied Statistics 37, 1988), rational approximations accurate to about 1 part in
/// 10¹⁶ (tested within 1e-9 against the CDF from `libm`'s `erfc`). The `sobol` sampler's
/// normals (docs/model.md §6): an inverse CDF keeps the low-discrepancy points' structure,
/// which Box–Muller's pairing of coordinates would not. p outside (0, 1) gives ∓∞ or NaN.
// The coefficients keep the digits Wichura published, beyond what an f64 holds.
#[allow(clippy::excessive_precision)]
pub fn inverse_cdf(p: f64) -> f64 {
    const A: [f64; 8] = [
        3.387_132_872_796_366_608,
        1.331_416_678_917_843_774_5e2,
        1.971_590_950_306_551_442_7e3,
        1.373_169_376_550_946_112_5e4,
        4.592_195_393_154_987_145_7e4,
        6.726_577_092_700_870_085_3e4,
        3.343_057_558_358_812_810_5e4,
        2.509_080_928_730_122_672_7e3,
    ];
    const B: [f64; 8] = [
        1.0,
        4.231_333_070_160_091_125_2e1,
        6.871_870_074_920_579_083e2,
        5.394_196_021_424_751_107_7e3,
        2.121_379_430_158_659_586_7e4,
        3.930_789_580_009_271_061e4,
        2.872_908_573_572_194_267_4e4,
        5.226_495_278_852_854_561e3,
    ];
    const C: [f64; 8] = [
        1.423_437_110_749_683_577_34,
        4.630_337_846_156_545_295_9,
        5.769_497_221_460_691_405_5,
        3.647_848_324_763_204_605_04,
        1.270_458_252_452_368_382_58,
        2.417_807_251_774_506_117_7e-1,
        2.272_384_498_926_918_458_33e-2,
        7.745_450_142_783_414_076_4e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_821_87,
        1.676_384_830_183_803_849_4,
        6.897_673_349_851_000_045_5e-1,
        1.481_039_764_274_800_745_9e-1,
        1.519_866_656_361_645_719_66e-2,
        5.475_938_084_995_344_946e-4,
        1.050_750_071_644_416_843_24e-9,
    ];
    const E: [f64; 8] = [
        6.657_904_643_501_103_777_2,
        5.463_784_911_164_114_369_9,
        1.784_826_539_917_291_335_8,
        2.965_605_718_285_048_912_3e-1,
        2.653_218_952_657_612_309_3e-2,
        1.242_660_947_388_078_438_6e-3,
        2.711_555_568_743_487_578_15e-5,
        2.010_334_399_292_288_132_65e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        5.998_322_065_558_879_376_9e-1,
        1.369_298_809_227_358_053_1e-1,
        1.487_536_129_085_061_485_25e-2,
        7.868_691_311_456_132_591e-4,
        1.846_318_317_510_054_681_8e-5,
        1.421_511_758_316_445_888_7e-7,
        2.044_263_103_389_939_785_64e-15,
    ];
    // The ratio of two degree-7 polynomials in r, each by Horner's rule.
    let ratio = |num: &[f64; 8], den: &[f64; 8], r: f64| {
        let horner = |c: &[f64; 8]| c.iter().rev().fold(0.0, |acc, &k| acc * r + k);
        horner(num) / horner(den)
    };
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        return q * ratio(&A, &B, 0.180_625 - q * q);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    if tail.is_nan() || tail <= 0.0 {
        // p is 0 or 1 (or outside [0, 1], or NaN).
        return match p {
            0.0 => f64::NEG_INFINITY,
            1.0 => f64::INFINITY,
            _ => f64::NAN,
        };
    }
    let r = (-tail.ln()).sqrt();
    let x = if r <= 5.0 {
        ratio(&C, &D, r - 1.6)
    } else {
        ratio(&E, &F, r - 5.0)
    };
    if q < 0.0 {
        -x
    } else {
        x
    }
}

/// Φ⁻¹ of a 32-bit coordinate's uniform (x + ½)·2⁻³² ([`crate::sobol::unit`]) in f32: the
/// Sobol' normals as a GPU kernel computes them (docs/model.md §6). Wichura's AS241 PPND7
/// (about 1 part in 10⁷), with q = u − ½ and the tail probability min(u, 1 − u) taken from
/// the integer, so the upper tail is as accurate as the lower (1 − u in f32 is 0 above
/// 1 − 2⁻²⁴), and the logarithm this module's `ln`, which the kernels share. The tail is at
/// least 2⁻³³, so r = sqrt(−ln tail) < 4.8 and PPND7's third branch (r > 5) is never needed.
pub fn inverse_cdf_of_word(x: u32) -> f32 {
    inverse_cdf_of_words(&[x])[0]
}

/// [`inverse_cdf_of_word`] of `L` words side by side, the definition: every lane takes both
/// of PPND7's branches and keeps its own, so the loop has no branch and vectorises (the tail
/// is about 15% of the words, too many to branch on), and each lane's operations are the same
/// whatever its neighbours. The words' distances from the middle and from the ends are below
/// 2³¹, so they convert as i32, which vectorises (u32 does not, before AVX-512).
#[inline(always)]
pub fn inverse_cdf_of_words<const L: usize>(words: &[u32; L]) -> [f32; L] {
    const SCALE: f32 = 1.0 / 4_294_967_296.0;
    // A loop, not `array::from_fn`, which LLVM leaves out of line, compiled for the baseline
    // instruction set rather than the kernel's.
    let mut out = [0.0f32; L];
    for (slot, &x) in out.iter_mut().zip(words) {
        let upper = x >= 1 << 31;
        // |u − ½| = (m + ½)·2⁻³² with m the word's distance from the middle, the same for x
        // and 2³² − 1 − x, so that the two give ±z exactly.
        let m = if upper {
            x.wrapping_sub(1 << 31)
        } else {
            ((1u32 << 31) - 1).wrapping_sub(x)
        };
        let half = (m as i32 as f32 + 0.5) * SCALE;
        let q = if upper { half } else { -half };
        let r = 0.180_625 - q * q;
        let num = ((59.109_375 * r + 159.291_13) * r + 50.434_273) * r + 3.387_132_7;
        let den = ((67.187_56 * r + 78.757_76) * r + 17.895_17) * r + 1.0;
        // The central value is (q·num)/den; keep its numerator and denominator.
        let central = (q * num, den);
        let below = if upper { u32::MAX - x } else { x };
        let tail = (below as i32 as f32 + 0.5) * SCALE;
        let r = (-ln(tail)).sqrt() - 1.6;
        let num = ((0.170_238_21 * r + 1.306_728_5) * r + 2.756_815_4) * r + 1.423_437_3;
        let den = (0.120_211_33 * r + 0.737_001_6) * r + 1.0;
        // ±(num/den) is (±num)/den exactly: one division a lane for either branch.
        let tail = (if upper { num } else { -num }, den);
        let (num, den) = if half <= 0.425 { central } else { tail };
        *slot = num / den;
    }
    out
}

/// The normal of (seed, path, month), the scalar definition every backend must reproduce.
pub fn normal_at(seed: u64, path: u32, month: u32) -> f32 {
    let words =
        crate::philox::philox4x32_10([path, month / 4, 0, 0], crate::philox::key_of_seed(seed));
    normals_of_block(words)[(month % 4) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Φ(x) = erfc(−x/√2)/2 from `libm` (musl's erfc, within an ulp or so, relative, also deep
    /// in the tails): the reference for the inverse CDF.
    fn cdf(x: f64) -> f64 {
        0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
    }

    /// The f32 Φ⁻¹ of a coordinate is within 1e-6·max(1, |z|) of the f64 one (itself within
    /// 1e-9 of the quantile) on every 4,096th word, the words at both ends and around the
    /// branch at |u − ½| = 0.425, and it is odd: the words x and 2³² − 1 − x give ±z.
    #[test]
    fn the_f32_inverse_cdf_of_a_word_is_within_1e6() {
        let branch = (0.075 * 4_294_967_296.0) as u32;
        let words = (0..1u32 << 20)
            .map(|k| k << 12 | (k & 0xfff))
            .chain([0, 1, 2, 1 << 31, (1 << 31) - 1, u32::MAX, u32::MAX - 1])
            .chain((branch - 64..branch + 64).flat_map(|x| [x, u32::MAX - x]));
        let mut worst = 0.0f64;
        for x in words {
            let got = f64::from(inverse_cdf_of_word(x));
            let want = inverse_cdf(crate::sobol::unit(x));
            let error = (got - want).abs() / want.abs().max(1.0);
            worst = worst.max(error);
            assert!(error <= 1e-6, "word {x}: {got} against {want}");
            assert_eq!(
                inverse_cdf_of_word(x).to_bits(),
                (-inverse_cdf_of_word(u32::MAX - x)).to_bits(),
                "word {x}: not odd"
            );
        }
        eprintln!("worst relative error of the f32 Φ⁻¹: {worst:e}");
    }

    /// Φ⁻¹ within 1e-9 of the true quantile on a fine grid of (0, 1) and in both tails down
    /// to 1e-300: x̂ is within δ of x when |Φ(x̂) − p| ≤ δ·φ(x̂) (to first order; φ varies
    /// little over δ), checked with δ = 1e-9, and by symmetry Φ⁻¹(1 − p) = −Φ⁻¹(p) to 1e-12
    /// where 1 − p is exact.
    #[test]
    fn the_inverse_cdf_is_within_1e9_of_the_quantile() {
        let density = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut ps: Vec<f64> = (1..200_000).map(|i| f64::from(i) / 200_000.0).collect();
        for e in 1..=300 {
            for m in [1.0, 2.5, 5.0, 7.5] {
                ps.push(m * 10f64.powi(-e));
            }
        }
        ps.extend([
            0.425 + 0.5,
            0.5 - 0.425,
            (-25.0f64).exp(),
            1.0 - 2f64.powi(-33),
        ]);
        let mut worst = 0.0f64;
        for &p in &ps {
            let x = inverse_cdf(p);
            assert!(x.is_finite(), "p {p}: {x}");
            // In the upper tail Φ(x̂) near 1 loses digits; compare the complement there.
            let miss = if x > 0.0 {
                ((1.0 - p) - cdf(-x)).abs()
            } else {
                (p - cdf(x)).abs()
            };
            let error = miss / density(x);
            worst = worst.max(error);
            assert!(error <= 1e-9, "p {p}: Φ⁻¹ {x}, off by about {error}");
        }
        for i in 1..1000 {
            let p = f64::from(i) / 2048.0;
            assert!(
                (inverse_cdf(p) + inverse_cdf(1.0 - p)).abs() <= 1e-12,
                "p {p}"
            );
        }
        assert_eq!(inverse_cdf(0.5), 0.0);
        assert_eq!(inverse_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(inverse_cdf(1.0), f64::INFINITY);
        assert!(inverse_cdf(1.5).is_nan() && inverse_cdf(f64::NAN).is_nan());
        eprintln!("worst error of Φ⁻¹: {worst:e}");
    }
    use crate::philox::{key_of_seed, philox4x32_10};

    #[test]
    fn box_muller_is_within_1e6_of_the_f64_transform() {
        let key = key_of_seed(7);
        let mut worst = 0.0f64;
        for i in 0..400_000u32 {
            let w = philox4x32_10([i, 0, 0, 0], key);
            for (xr, xa) in [(w[0], w[1]), (w[2], w[3])] {
                let (a, b) = box_muller(xr, xa);
                let (ra, rb) = box_muller_f64(xr, xa);
                worst = worst
                    .max((f64::from(a) - ra).abs())
                    .max((f64::from(b) - rb).abs());
            }
        }
        assert!(worst < 1e-6, "worst error {worst:e}");
    }

    #[test]
    fn extreme_words_stay_accurate_and_finite() {
        // The smallest radius uniform (2^-24) gives the largest |z|; check the tail and every
        // quadrant boundary of the angle.
        for xr in [0u32, 0xff, 0x100, u32::MAX, 0x8000_0000] {
            for xa in [
                0u32,
                0x3fff_ffff,
                0x4000_0000,
                0x7fff_ffff,
                0x8000_0000,
                0xc000_0000,
                u32::MAX,
            ] {
                let (a, b) = box_muller(xr, xa);
                let (ra, rb) = box_muller_f64(xr, xa);
                assert!(
                    (f64::from(a) - ra).abs() < 1e-6,
                    "cos part at {xr:x} {xa:x}"
                );
                assert!(
                    (f64::from(b) - rb).abs() < 1e-6,
                    "sin part at {xr:x} {xa:x}"
                );
            }
        }
    }

    #[test]
    fn ln_and_exp_are_accurate() {
        let mut x = 1e-7f32;
        while x < 1.0 {
            let rel =
                (f64::from(ln(x)) - f64::from(x).ln()).abs() / f64::from(x).ln().abs().max(1e-30);
            assert!(rel < 3e-7, "ln({x}) rel {rel:e}");
            x *= 1.001;
        }
        let mut y = -20.0f32;
        while y < 20.0 {
            let exact = f64::from(y).exp();
            let rel = (f64::from(exp(y)) - exact).abs() / exact;
            assert!(rel < 3e-7, "exp({y}) rel {rel:e}");
            y += 0.000_731;
        }
    }

    #[test]
    fn normals_have_unit_moments() {
        // 4·10^6 normals: mean within 4 standard errors (4/sqrt(n)) of 0, variance within
        // 4·sqrt(2/n) of 1, fourth moment within 4·sqrt(96/n) of 3.
        let n = 1_000_000u32;
        let (mut s1, mut s2, mut s4) = (0.0f64, 0.0f64, 0.0f64);
        for p in 0..n {
            let w = philox4x32_10([p, 3, 0, 0], key_of_seed(99));
            for z in normals_of_block(w) {
                let z = f64::from(z);
                s1 += z;
                s2 += z * z;
                s4 += z * z * z * z;
            }
        }
        let m = f64::from(4 * n);
        assert!((s1 / m).abs() < 4.0 / m.sqrt());
        assert!((s2 / m - 1.0).abs() < 4.0 * (2.0 / m).sqrt());
        assert!((s4 / m - 3.0).abs() < 4.0 * (96.0 / m).sqrt());
    }
}
