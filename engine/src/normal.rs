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

/// The normal of (seed, path, month), the scalar definition every backend must reproduce.
pub fn normal_at(seed: u64, path: u32, month: u32) -> f32 {
    let words =
        crate::philox::philox4x32_10([path, month / 4, 0, 0], crate::philox::key_of_seed(seed));
    normals_of_block(words)[(month % 4) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
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
