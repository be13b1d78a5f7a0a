//! The AVX2 and AVX-512 instantiations of the block kernel (x86-64 only; the module is
//! compiled only there): [`LaneKernel`]s whose Philox words and wealth update are written in
//! that set's intrinsics, and the `#[target_feature]` entry points that run
//! [`simulate_lanes`] and [`affine_lanes`] with them. Each intrinsic update keeps the portable
//! [`grow`](super::kernel::grow)'s operations in its order, so the bits match the portable
//! kernel; callers must have detected the features (`CpuKernel::is_supported`).

use super::kernel::{affine_lanes, simulate_lanes, AffineJob, BlockCounts, BlockJob, LaneKernel};
use super::LANES;
use crate::philox;

/// The block kernel with AVX2 Philox; everything else is the portable code, compiled for AVX2.
#[target_feature(enable = "avx2")]
pub(super) fn simulate_block_avx2(
    job: &BlockJob,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) -> BlockCounts {
    let lanes = Avx2Lanes(philox::avx2::Keys::new(&job.keys));
    simulate_lanes(&lanes, job, snapshots, depletion)
}

/// The block kernel with AVX-512 Philox, everything else vectorised by LLVM at sixteen f32
/// lanes (one lane group per register).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(super) fn simulate_block_avx512(
    job: &BlockJob,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) -> BlockCounts {
    let lanes = Avx512Lanes(philox::avx512::Keys::new(&job.keys));
    simulate_lanes(&lanes, job, snapshots, depletion)
}

pub(crate) struct Avx2Lanes(pub(crate) philox::avx2::Keys);

impl LaneKernel for Avx2Lanes {
    #[inline(always)]
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4] {
        // SAFETY: an `Avx2Lanes` is only built inside the AVX2 kernels, which run only where
        // AVX2 was detected.
        unsafe { philox::avx2::philox_eights(paths, quad, &self.0) }
    }

    #[inline(always)]
    fn words_at(&self, paths: &[u32; LANES], c: [u32; 3]) -> [[u32; LANES]; 4] {
        // SAFETY: as above.
        unsafe { philox::avx2::philox_eights_at(paths, c, &self.0) }
    }

    #[inline(always)]
    fn grow(&self, wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
        // SAFETY: as above.
        unsafe { grow_avx2(wealth, shock, contribution, drift) }
    }
}

/// [`grow`](super::kernel::grow) in four 256-bit registers of f64, with [`grow`](super::kernel::grow)'s operations in its order.
#[inline]
#[target_feature(enable = "avx2")]
fn grow_avx2(wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
    use std::arch::x86_64::*;
    let (d, c) = (_mm256_set1_pd(drift), _mm256_set1_pd(contribution));
    for quarter in 0..LANES / 4 {
        // SAFETY: unaligned loads and stores of four f32 and four f64 inside the arrays.
        unsafe {
            let s = _mm256_cvtps_pd(_mm_loadu_ps(shock.as_ptr().add(quarter * 4)));
            let at = wealth.as_mut_ptr().add(quarter * 4);
            let growth = _mm256_mul_pd(d, s);
            _mm256_storeu_pd(
                at,
                _mm256_mul_pd(_mm256_add_pd(_mm256_loadu_pd(at), c), growth),
            );
        }
    }
}

pub(crate) struct Avx512Lanes(pub(crate) philox::avx512::Keys);

impl LaneKernel for Avx512Lanes {
    #[inline(always)]
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4] {
        // SAFETY: an `Avx512Lanes` is only built inside the AVX-512 kernels, which run only
        // where AVX-512 was detected.
        unsafe { philox::avx512::philox16(paths, quad, &self.0) }
    }

    #[inline(always)]
    fn words_at(&self, paths: &[u32; LANES], c: [u32; 3]) -> [[u32; LANES]; 4] {
        // SAFETY: as above.
        unsafe { philox::avx512::philox16_at(paths, c, &self.0) }
    }

    #[inline(always)]
    fn grow(&self, wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
        // SAFETY: as above.
        unsafe { grow_avx512(wealth, shock, contribution, drift) }
    }
}

/// [`grow`](super::kernel::grow) in two 512-bit registers of f64, with [`grow`](super::kernel::grow)'s operations in its order (so the
/// same bits): LLVM, left to itself, splits the second eight lanes into 4 + 2 + 1 + 1.
#[inline]
#[target_feature(enable = "avx512f")]
fn grow_avx512(wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
    use std::arch::x86_64::*;
    const _: () = assert!(LANES == 16);
    // SAFETY: unaligned loads and stores of exactly sixteen f32 and two times eight f64.
    unsafe {
        let s = _mm512_loadu_ps(shock.as_ptr());
        let low = _mm512_cvtps_pd(_mm512_castps512_ps256(s));
        let high = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
            _mm512_castps_pd(s),
        )));
        let (d, c) = (_mm512_set1_pd(drift), _mm512_set1_pd(contribution));
        for (half, shock) in [low, high].into_iter().enumerate() {
            let at = wealth.as_mut_ptr().add(half * 8);
            let growth = _mm512_mul_pd(d, shock);
            _mm512_storeu_pd(
                at,
                _mm512_mul_pd(_mm512_add_pd(_mm512_loadu_pd(at), c), growth),
            );
        }
    }
}

#[target_feature(enable = "avx2")]
pub(super) fn affine_block_avx2(job: &AffineJob, wealth: &mut [f64], per_unit: &mut [f64]) {
    let lanes = Avx2Lanes(philox::avx2::Keys::new(&job.keys));
    affine_lanes(&lanes, job, wealth, per_unit);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
pub(super) fn affine_block_avx512(job: &AffineJob, wealth: &mut [f64], per_unit: &mut [f64]) {
    let lanes = Avx512Lanes(philox::avx512::Keys::new(&job.keys));
    affine_lanes(&lanes, job, wealth, per_unit);
}
