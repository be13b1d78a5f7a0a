//! Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
//! SC 2011), the counter-based generator every backend shares.
//!
//! A block of four 32-bit outputs is a pure function of a 128-bit counter and a 64-bit key, so a
//! path's random numbers depend only on (seed, path, month), never on threads, chunking, batch
//! composition or backend. The layout used by the goal Monte Carlo is fixed here, once, so that
//! the WGSL and CUDA versions can copy it:
//!
//! * key = (seed low 32 bits, seed high 32 bits)
//! * counter = (path index, month / 4, 0, 0)
//! * the four outputs feed two Box-Muller pairs, giving the normals of months 4q … 4q+3
//!   (see [`crate::normal`]).

/// Multiplier of the first lane pair (Random123's PHILOX_M4x32_0).
pub const M0: u32 = 0xD251_1F53;
/// Multiplier of the second lane pair (PHILOX_M4x32_1).
pub const M1: u32 = 0xCD9E_8D57;
/// Weyl key increments (golden ratio and sqrt(3) − 1).
pub const W0: u32 = 0x9E37_79B9;
pub const W1: u32 = 0xBB67_AE85;
/// Rounds of Philox4x32-10.
pub const ROUNDS: usize = 10;

/// The key of a seed.
#[inline]
pub fn key_of_seed(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The ten round keys of `key`, precomputed once per batch so the kernels only XOR them in.
#[inline]
pub fn round_keys(key: [u32; 2]) -> [[u32; 2]; ROUNDS] {
    let mut keys = [[0u32; 2]; ROUNDS];
    let mut k = key;
    for round_key in keys.iter_mut() {
        *round_key = k;
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    keys
}

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32-10 block: counter → four outputs.
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let keys = round_keys(key);
    let mut c = counter;
    for k in keys {
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Philox over `L` lanes at once: lane `l` takes counter `(c0[l], c1, 0, 0)`.
///
/// Written as plain loops over fixed-size arrays so that LLVM turns each round into a handful
/// of vector multiplies (`vpmuludq`) and XORs; the result equals [`philox4x32_10`] lane by lane.
#[inline(always)]
pub fn philox_lanes<const L: usize>(
    c0: &[u32; L],
    c1: u32,
    keys: &[[u32; 2]; ROUNDS],
) -> [[u32; L]; 4] {
    philox_lanes_at(c0, [c1, 0, 0], keys)
}

/// [`philox_lanes`] with counter `(c0[l], c[0], c[1], c[2])`: another stream (c2) of the
/// same paths.
#[inline(always)]
pub fn philox_lanes_at<const L: usize>(
    c0: &[u32; L],
    c: [u32; 3],
    keys: &[[u32; 2]; ROUNDS],
) -> [[u32; L]; 4] {
    let mut x0 = *c0;
    let mut x1 = [c[0]; L];
    let mut x2 = [c[1]; L];
    let mut x3 = [c[2]; L];
    for k in keys {
        for l in 0..L {
            let p0 = u64::from(M0) * u64::from(x0[l]);
            let p1 = u64::from(M1) * u64::from(x2[l]);
            let y0 = ((p1 >> 32) as u32) ^ x1[l] ^ k[0];
            let y2 = ((p0 >> 32) as u32) ^ x3[l] ^ k[1];
            x1[l] = p1 as u32;
            x3[l] = p0 as u32;
            x0[l] = y0;
            x2[l] = y2;
        }
    }
    [x0, x1, x2, x3]
}

/// Philox over eight lanes with AVX2 intrinsics: the same numbers as [`philox_lanes`].
///
/// AVX2 has no 32×32→64 multiply over eight lanes, so LLVM widens [`philox_lanes`] to 64-bit
/// lanes and narrows back with shuffles. Here the even lanes multiply in place and the odd lanes
/// after a 32-bit shift, and two blends put high and low words back in their lanes: about half
/// the instructions per round.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use std::arch::x86_64::*;

    use super::{M0, M1, ROUNDS};

    /// Round keys broadcast to every lane.
    #[derive(Clone, Copy)]
    pub struct Keys([[__m256i; 2]; ROUNDS]);

    impl Keys {
        /// # Safety
        /// The CPU must support AVX2.
        #[inline]
        #[target_feature(enable = "avx2")]
        pub fn new(keys: &[[u32; 2]; ROUNDS]) -> Keys {
            Keys(keys.map(|[a, b]| [_mm256_set1_epi32(a as i32), _mm256_set1_epi32(b as i32)]))
        }
    }

    /// (high, low) words of `a × m` per 32-bit lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mulhilo(a: __m256i, m: __m256i) -> (__m256i, __m256i) {
        let even = _mm256_mul_epu32(a, m);
        let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), m);
        let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
        let lo = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
        (hi, lo)
    }

    /// Lane `l` takes counter `(c0[l], c1, 0, 0)`; returns the four output words per lane.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn philox8(c0: &[u32; 8], c1: u32, keys: &Keys) -> [[u32; 8]; 4] {
        philox8_at(c0, [c1, 0, 0], keys)
    }

    /// [`philox8`] with counter `(c0[l], c[0], c[1], c[2])`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn philox8_at(c0: &[u32; 8], c: [u32; 3], keys: &Keys) -> [[u32; 8]; 4] {
        let m0 = _mm256_set1_epi32(M0 as i32);
        let m1 = _mm256_set1_epi32(M1 as i32);
        // SAFETY: an unaligned load of exactly eight u32.
        let mut x0 = unsafe { _mm256_loadu_si256(c0.as_ptr().cast()) };
        let mut x1 = _mm256_set1_epi32(c[0] as i32);
        let mut x2 = _mm256_set1_epi32(c[1] as i32);
        let mut x3 = _mm256_set1_epi32(c[2] as i32);
        for [k0, k1] in keys.0 {
            let (hi0, lo0) = mulhilo(x0, m0);
            let (hi1, lo1) = mulhilo(x2, m1);
            x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), k0);
            x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), k1);
            x1 = lo1;
            x3 = lo0;
        }
        let mut out = [[0u32; 8]; 4];
        for (dst, x) in out.iter_mut().zip([x0, x1, x2, x3]) {
            // SAFETY: an unaligned store of exactly eight u32.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), x) };
        }
        out
    }

    /// [`philox8`] over `L` lanes (a multiple of eight), eight at a time.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn philox_eights<const L: usize>(c0: &[u32; L], c1: u32, keys: &Keys) -> [[u32; L]; 4] {
        philox_eights_at(c0, [c1, 0, 0], keys)
    }

    /// [`philox_eights`] with counter `(c0[l], c[0], c[1], c[2])`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn philox_eights_at<const L: usize>(
        c0: &[u32; L],
        c: [u32; 3],
        keys: &Keys,
    ) -> [[u32; L]; 4] {
        let mut out = [[0u32; L]; 4];
        for (half, lanes) in c0.chunks_exact(8).enumerate() {
            let lanes: &[u32; 8] = lanes.try_into().expect("eight lanes");
            for (o, w) in out.iter_mut().zip(philox8_at(lanes, c, keys)) {
                o[half * 8..half * 8 + 8].copy_from_slice(&w);
            }
        }
        out
    }
}

/// Philox over sixteen lanes with AVX-512 intrinsics: the same numbers as [`philox_lanes`].
///
/// The AVX2 scheme at twice the width, with AVX-512's three-way XOR (`vpternlogd`) in one
/// instruction and the blends taking a mask register.
#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use std::arch::x86_64::*;

    use super::{M0, M1, ROUNDS};

    /// The odd 32-bit lanes of a 512-bit register.
    const ODD: __mmask16 = 0xAAAA;
    /// `vpternlogd`'s truth table of `a ^ b ^ c`.
    const XOR3: i32 = 0x96;

    /// Round keys broadcast to every lane.
    #[derive(Clone, Copy)]
    pub struct Keys([[__m512i; 2]; ROUNDS]);

    impl Keys {
        /// # Safety
        /// The CPU must support AVX-512F.
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub fn new(keys: &[[u32; 2]; ROUNDS]) -> Keys {
            Keys(keys.map(|[a, b]| [_mm512_set1_epi32(a as i32), _mm512_set1_epi32(b as i32)]))
        }
    }

    /// (high, low) words of `a × m` per 32-bit lane.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mulhilo(a: __m512i, m: __m512i) -> (__m512i, __m512i) {
        let even = _mm512_mul_epu32(a, m);
        let odd = _mm512_mul_epu32(_mm512_srli_epi64::<32>(a), m);
        let hi = _mm512_mask_blend_epi32(ODD, _mm512_srli_epi64::<32>(even), odd);
        let lo = _mm512_mask_blend_epi32(ODD, even, _mm512_slli_epi64::<32>(odd));
        (hi, lo)
    }

    /// Lane `l` takes counter `(c0[l], c1, 0, 0)`; returns the four output words per lane.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn philox16(c0: &[u32; 16], c1: u32, keys: &Keys) -> [[u32; 16]; 4] {
        philox16_at(c0, [c1, 0, 0], keys)
    }

    /// [`philox16`] with counter `(c0[l], c[0], c[1], c[2])`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn philox16_at(c0: &[u32; 16], c: [u32; 3], keys: &Keys) -> [[u32; 16]; 4] {
        let m0 = _mm512_set1_epi32(M0 as i32);
        let m1 = _mm512_set1_epi32(M1 as i32);
        // SAFETY: an unaligned load of exactly sixteen u32.
        let mut x0 = unsafe { _mm512_loadu_si512(c0.as_ptr().cast()) };
        let mut x1 = _mm512_set1_epi32(c[0] as i32);
        let mut x2 = _mm512_set1_epi32(c[1] as i32);
        let mut x3 = _mm512_set1_epi32(c[2] as i32);
        for [k0, k1] in keys.0 {
            let (hi0, lo0) = mulhilo(x0, m0);
            let (hi1, lo1) = mulhilo(x2, m1);
            x0 = _mm512_ternarylogic_epi32::<XOR3>(hi1, x1, k0);
            x2 = _mm512_ternarylogic_epi32::<XOR3>(hi0, x3, k1);
            x1 = lo1;
            x3 = lo0;
        }
        let mut out = [[0u32; 16]; 4];
        for (dst, x) in out.iter_mut().zip([x0, x1, x2, x3]) {
            // SAFETY: an unaligned store of exactly sixteen u32.
            unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), x) };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for Philox4x32-10 (kat_vectors), as listed in docs/model.md.
    #[test]
    fn matches_random123_known_answers() {
        let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            (
                [0; 4],
                [0; 2],
                [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
            ),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (counter, key, expected) in cases {
            assert_eq!(
                philox4x32_10(counter, key),
                expected,
                "counter {counter:x?}"
            );
        }
    }

    #[test]
    fn lanes_equal_the_scalar_generator() {
        let key = key_of_seed(0x0123_4567_89ab_cdef);
        let keys = round_keys(key);
        let c0: [u32; 16] = std::array::from_fn(|l| 1_000_000 + l as u32);
        let out = philox_lanes(&c0, 77, &keys);
        let other_stream = philox_lanes_at(&c0, [77, 1, 5], &keys);
        for l in 0..16 {
            let scalar = philox4x32_10([c0[l], 77, 0, 0], key);
            let scalar_other = philox4x32_10([c0[l], 77, 1, 5], key);
            for w in 0..4 {
                assert_eq!(out[w][l], scalar[w], "lane {l} word {w}");
                assert_eq!(other_stream[w][l], scalar_other[w], "lane {l} word {w}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_lanes_equal_the_scalar_generator() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let key = key_of_seed(0xfeed_f00d_dead_beef);
        let c0: [u32; 8] = std::array::from_fn(|l| (u32::MAX - 3).wrapping_add(l as u32));
        // SAFETY: AVX2 is present (checked above).
        let out = unsafe { avx2::philox8(&c0, 12345, &avx2::Keys::new(&round_keys(key))) };
        // SAFETY: as above.
        let other = unsafe {
            avx2::philox_eights_at(&c0, [12345, 1, 2], &avx2::Keys::new(&round_keys(key)))
        };
        for l in 0..8 {
            let scalar = philox4x32_10([c0[l], 12345, 0, 0], key);
            let scalar_other = philox4x32_10([c0[l], 12345, 1, 2], key);
            for w in 0..4 {
                assert_eq!(out[w][l], scalar[w], "lane {l} word {w}");
                assert_eq!(other[w][l], scalar_other[w], "lane {l} word {w}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_lanes_equal_the_scalar_generator() {
        if !std::is_x86_feature_detected!("avx512f") {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "NOT TESTED on this CPU: avx512_lanes_equal_the_scalar_generator (no AVX-512F)"
            );
            return;
        }
        let key = key_of_seed(0x0bad_cafe_1234_5678);
        let c0: [u32; 16] = std::array::from_fn(|l| (u32::MAX - 7).wrapping_add(l as u32));
        // SAFETY: AVX-512F is present (checked above).
        let out = unsafe { avx512::philox16(&c0, 54321, &avx512::Keys::new(&round_keys(key))) };
        // SAFETY: as above.
        let other = unsafe {
            avx512::philox16_at(&c0, [54321, 1, 9], &avx512::Keys::new(&round_keys(key)))
        };
        for l in 0..16 {
            let scalar = philox4x32_10([c0[l], 54321, 0, 0], key);
            let scalar_other = philox4x32_10([c0[l], 54321, 1, 9], key);
            for w in 0..4 {
                assert_eq!(out[w][l], scalar[w], "lane {l} word {w}");
                assert_eq!(other[w][l], scalar_other[w], "lane {l} word {w}");
            }
        }
    }

    #[test]
    fn seed_halves_map_to_key_words() {
        assert_eq!(
            key_of_seed(0xAAAA_BBBB_CCCC_DDDD),
            [0xCCCC_DDDD, 0xAAAA_BBBB]
        );
    }
}
