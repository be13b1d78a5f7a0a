//! Exact percentiles of very long columns without holding or sorting them whole.
//!
//! docs/model.md asks for NumPy's default percentile: linear interpolation between the order
//! statistics x₍ₖ₎ and x₍ₖ₊₁₎ with k = ⌊(N−1)·p/100⌋. Sorting 10⁶ values per fan-chart year
//! would cost more than the simulation, and 10⁷ paths × 100 years cannot even be held in
//! memory, so the engine selects in two passes (Floyd–Rivest style):
//!
//! 1. A deterministic sample (every `stride`-th path) is sorted, and for each percentile a
//!    bracket [lo, hi] is taken around the sample's estimate, wide enough (±5 binomial standard
//!    deviations) that the wanted order statistics almost surely fall inside.
//! 2. One pass over the values (held in memory, or simulated again: Philox makes every path
//!    reproducible) counts the values below `lo`, equal to `lo` and equal to `hi`, and collects
//!    the few strictly between. The order statistics are then selected exactly among those.
//!
//! A bracket that misses is reported and widened by the caller for another pass, so the
//! answer is always exact. Counting ties separately keeps the memory bounded even when most
//! values are equal (a column of depleted paths is mostly zeros).

/// The order statistics (0-based ranks) that NumPy's linear percentile `p` of `n` values needs,
/// and the weight of the upper one.
pub fn ranks_of(p: f64, n: u64) -> (u64, u64, f64) {
    let h = (n - 1) as f64 * p / 100.0;
    let lo = (h.floor() as u64).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    (lo, hi, h - lo as f64)
}

/// NumPy's linear percentile of `values`; reorders them. For short columns and tests.
pub fn percentile_in_place(values: &mut [f64], p: f64) -> f64 {
    let (lo, hi, frac) = ranks_of(p, values.len() as u64);
    let (_, &mut x_lo, rest) = values.select_nth_unstable_by(lo as usize, f64::total_cmp);
    let x_hi = if hi > lo {
        rest.iter().copied().min_by(f64::total_cmp).unwrap_or(x_lo)
    } else {
        x_lo
    };
    interpolate(x_lo, x_hi, frac)
}

/// NumPy's linear percentile of values already in ascending order.
pub fn percentile_of_sorted(sorted: &[f64], p: f64) -> f64 {
    let (lo, hi, frac) = ranks_of(p, sorted.len() as u64);
    interpolate(sorted[lo as usize], sorted[hi as usize], frac)
}

pub fn interpolate(x_lo: f64, x_hi: f64, frac: f64) -> f64 {
    // NumPy's `_lerp`: exact at the ends and monotone.
    let d = x_hi - x_lo;
    let v = x_lo + frac * d;
    if frac >= 0.5 {
        x_hi - (1.0 - frac) * d
    } else {
        v
    }
}

/// Where one percentile's order statistics are looked for in the second pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bracket {
    pub lo: f64,
    pub hi: f64,
}

impl Bracket {
    /// Everything: a bracket that cannot miss.
    pub const ALL: Bracket = Bracket {
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
    };
}

/// Brackets for each of `percentiles` of `n` values, from a sample of them (reordered).
///
/// `margin` is in binomial standard deviations of the sample rank; 5 misses about once in
/// 3·10⁶ brackets, and a miss only costs another pass. Only the bracket ends are selected from
/// the sample, not the whole sample sorted.
pub fn brackets_from_sample(
    sample: &mut [f64],
    percentiles: &[f64],
    n: u64,
    margin: f64,
) -> Vec<Bracket> {
    let m = sample.len();
    if m == 0 || m as u64 >= n {
        return vec![Bracket::ALL; percentiles.len()];
    }
    let ends: Vec<(Option<usize>, Option<usize>)> = percentiles
        .iter()
        .map(|&p| {
            let q = (p / 100.0).clamp(0.0, 1.0);
            let center = q * (m - 1) as f64;
            let floor = 1.0 / m as f64;
            let spread = margin * (m as f64 * q.max(floor) * (1.0 - q).max(floor)).sqrt() + 2.0;
            let (lo, hi) = (center - spread, center + spread);
            (
                (lo >= 0.0).then_some(lo as usize),
                (hi < (m - 1) as f64).then_some(hi.ceil() as usize),
            )
        })
        .collect();
    let ranks: Vec<usize> = ends
        .iter()
        .flat_map(|&(lo, hi)| lo.into_iter().chain(hi))
        .collect();
    let mut values = order_statistics(sample, &ranks).into_iter();
    ends.iter()
        .map(|&(lo, hi)| Bracket {
            lo: lo.map_or(f64::NEG_INFINITY, |_| {
                values.next().expect("one value per rank")
            }),
            hi: hi.map_or(f64::INFINITY, |_| {
                values.next().expect("one value per rank")
            }),
        })
        .collect()
}

/// The values of `ranks` (0-based, any order, repeats allowed) among `values` as if sorted.
/// Reorders `values`; costs a few passes over them, not a sort.
pub fn order_statistics(values: &mut [f64], ranks: &[usize]) -> Vec<f64> {
    let mut distinct = ranks.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let mut found = vec![0.0; distinct.len()];
    select_many(values, 0, &distinct, &mut found);
    ranks
        .iter()
        .map(|r| found[distinct.binary_search(r).expect("a requested rank")])
        .collect()
}

/// Multi-select: the middle wanted rank splits `values`, then each side finds its own ranks.
fn select_many(values: &mut [f64], offset: usize, ranks: &[usize], found: &mut [f64]) {
    if ranks.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let k = ranks[mid] - offset;
    let (left, &mut x, right) = values.select_nth_unstable_by(k, f64::total_cmp);
    found[mid] = x;
    let (found_left, found_right) = found.split_at_mut(mid);
    select_many(left, offset, &ranks[..mid], found_left);
    select_many(
        right,
        offset + k + 1,
        &ranks[mid + 1..],
        &mut found_right[1..],
    );
}

/// NumPy's linear percentiles `ps` of `values` (reordered), by selection.
pub fn percentiles_of(values: &mut [f64], ps: &[f64]) -> Vec<f64> {
    let n = values.len() as u64;
    let ranks: Vec<usize> = ps
        .iter()
        .flat_map(|&p| {
            let (lo, hi, _) = ranks_of(p, n);
            [lo as usize, hi as usize]
        })
        .collect();
    let found = order_statistics(values, &ranks);
    ps.iter()
        .zip(found.chunks(2))
        .map(|(&p, pair)| interpolate(pair[0], pair[1], ranks_of(p, n).2))
        .collect()
}

/// What the second pass learns about one bracket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BracketTally {
    pub below: u64,
    pub equal_lo: u64,
    pub equal_hi: u64,
    /// Values strictly inside (lo, hi), in no particular order.
    pub inside: Vec<f64>,
}

impl BracketTally {
    /// Count and collect `values` against `bracket`.
    pub fn observe(&mut self, bracket: Bracket, values: &[f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { observe_avx2(self, bracket, values) };
        }
        observe_chunks(self, bracket, values);
    }

    /// Fold another pass's tally of the same bracket into this one.
    pub fn merge(&mut self, mut other: BracketTally) {
        self.below += other.below;
        self.equal_lo += other.equal_lo;
        self.equal_hi += other.equal_hi;
        if self.inside.len() < other.inside.len() {
            std::mem::swap(&mut self.inside, &mut other.inside);
        }
        self.inside.extend_from_slice(&other.inside);
    }

    /// The value of rank `k` (0-based over all values), if the bracket holds it.
    fn order_statistic(&mut self, bracket: Bracket, k: u64) -> Option<f64> {
        let mut r = k.checked_sub(self.below)?;
        if r < self.equal_lo {
            return Some(bracket.lo);
        }
        r -= self.equal_lo;
        let inside = self.inside.len() as u64;
        if r < inside {
            let (_, &mut x, _) = self
                .inside
                .select_nth_unstable_by(r as usize, f64::total_cmp);
            return Some(x);
        }
        r -= inside;
        (r < self.equal_hi).then_some(bracket.hi)
    }

    /// NumPy's linear percentile `p` of all `n` values, or `None` if the bracket missed one of
    /// the order statistics it needs.
    pub fn percentile(&mut self, bracket: Bracket, p: f64, n: u64) -> Option<f64> {
        let (lo, hi, frac) = ranks_of(p, n);
        let x_lo = self.order_statistic(bracket, lo)?;
        let x_hi = if hi > lo {
            self.order_statistic(bracket, hi)?
        } else {
            x_lo
        };
        Some(interpolate(x_lo, x_hi, frac))
    }
}

/// [`BracketTally::observe`]'s loop, compiled for AVX2 too and picked at run time.
///
/// Eight values at a time. The counts are lane-wise sums of 0.0/1.0 (exact in `f64` far beyond
/// any column's length), which vectorise as a compare, a mask and an add; a chunk is searched
/// for values inside the bracket only when it holds one, and then without branches.
#[multiversion::multiversion(targets("x86_64+avx2", "x86_64+sse4.1"))]
fn observe_chunks(tally: &mut BracketTally, bracket: Bracket, values: &[f64]) {
    let Bracket { lo, hi } = bracket;
    let distinct_hi = hi > lo;
    let one = |b: bool| if b { 1.0 } else { 0.0 };
    let mut below = [0.0f64; 8];
    let mut equal_lo = [0.0f64; 8];
    let mut equal_hi = [0.0f64; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        let mut inside = [0.0f64; 8];
        for i in 0..8 {
            let x = chunk[i];
            below[i] += one(x < lo);
            equal_lo[i] += one(x == lo);
            equal_hi[i] += one(distinct_hi & (x == hi));
            inside[i] = one((x > lo) & (x < hi));
        }
        if inside.iter().sum::<f64>() > 0.0 {
            let start = tally.inside.len();
            tally.inside.resize(start + 8, 0.0);
            let mut len = start;
            for (&x, &keep) in chunk.iter().zip(&inside) {
                tally.inside[len] = x;
                len += keep as usize;
            }
            tally.inside.truncate(len);
        }
    }
    for &x in chunks.remainder() {
        below[0] += one(x < lo);
        equal_lo[0] += one(x == lo);
        equal_hi[0] += one(distinct_hi & (x == hi));
        if (x > lo) & (x < hi) {
            tally.inside.push(x);
        }
    }
    tally.below += below.iter().sum::<f64>() as u64;
    tally.equal_lo += equal_lo.iter().sum::<f64>() as u64;
    tally.equal_hi += equal_hi.iter().sum::<f64>() as u64;
}

/// [`BracketTally::observe`] in AVX2 intrinsics: four values per compare, counts kept as
/// vector sums of 0.0/1.0, and the values inside the bracket left-packed without a branch (a
/// branch on them mispredicts whenever a bracket holds a few percent of the values).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn observe_avx2(tally: &mut BracketTally, bracket: Bracket, values: &[f64]) {
    use std::arch::x86_64::*;
    /// For each 4-bit mask, the 32-bit lane permutation that moves the selected doubles first.
    const LEFT_PACK: [[i32; 8]; 16] = {
        let mut table = [[0i32; 8]; 16];
        let mut mask = 0;
        while mask < 16 {
            let (mut out, mut lane) = (0usize, 0i32);
            while lane < 4 {
                if mask & (1 << lane) != 0 {
                    table[mask][2 * out] = 2 * lane;
                    table[mask][2 * out + 1] = 2 * lane + 1;
                    out += 1;
                }
                lane += 1;
            }
            mask += 1;
        }
        table
    };
    let Bracket { lo, hi } = bracket;
    let (vlo, vhi, one) = (_mm256_set1_pd(lo), _mm256_set1_pd(hi), _mm256_set1_pd(1.0));
    let count_hi = if hi > lo { one } else { _mm256_setzero_pd() };
    let mut below = _mm256_setzero_pd();
    let mut equal_lo = _mm256_setzero_pd();
    let mut equal_hi = _mm256_setzero_pd();
    // Spans of 64 values: each reserves room for all of its values, so every chunk of four
    // can be stored whole and only the selected kept, and capacity follows what is kept.
    let mut remainder: &[f64] = &[];
    for span in values.chunks(64) {
        let mut chunks = span.chunks_exact(4);
        tally.inside.reserve(span.len());
        let start = tally.inside.len();
        let mut len = start;
        let spare = tally.inside.spare_capacity_mut().as_mut_ptr().cast::<f64>();
        for chunk in &mut chunks {
            // SAFETY: an unaligned load of exactly four f64.
            let x = unsafe { _mm256_loadu_pd(chunk.as_ptr()) };
            below = _mm256_add_pd(
                below,
                _mm256_and_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(x, vlo), one),
            );
            equal_lo = _mm256_add_pd(
                equal_lo,
                _mm256_and_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(x, vlo), one),
            );
            equal_hi = _mm256_add_pd(
                equal_hi,
                _mm256_and_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(x, vhi), count_hi),
            );
            let inside = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GT_OQ>(x, vlo),
                _mm256_cmp_pd::<_CMP_LT_OQ>(x, vhi),
            );
            let mask = _mm256_movemask_pd(inside) as usize;
            // SAFETY: LEFT_PACK has 16 rows of eight i32; the store writes four f64 at offset
            // `len − start` ≤ span.len() − 4 of the spare capacity reserved for this span.
            unsafe {
                let permutation = _mm256_loadu_si256(LEFT_PACK[mask].as_ptr().cast());
                let packed =
                    _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(x), permutation));
                _mm256_storeu_pd(spare.add(len - start), packed);
            }
            len += mask.count_ones() as usize;
        }
        // SAFETY: the first `len − start` spare slots were written above.
        unsafe { tally.inside.set_len(len) };
        remainder = chunks.remainder();
    }
    let sum = |v: __m256d| {
        let mut lanes = [0.0f64; 4];
        // SAFETY: an unaligned store of exactly four f64.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), v) };
        lanes.iter().sum::<f64>() as u64
    };
    tally.below += sum(below);
    tally.equal_lo += sum(equal_lo);
    tally.equal_hi += sum(equal_hi);
    // Only the last span can leave fewer than four values.
    observe_chunks(tally, bracket, remainder);
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::percentile_of_sorted as numpy_linear;

    #[test]
    fn ranks_follow_numpy_linear_interpolation() {
        // np.percentile([1, 2, 3, 4], 50) = 2.5, p25 = 1.75, p100 = 4, p0 = 1.
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile_in_place(&mut v, 50.0), 2.5);
        assert_eq!(percentile_in_place(&mut v, 25.0), 1.75);
        assert_eq!(percentile_in_place(&mut v, 100.0), 4.0);
        assert_eq!(percentile_in_place(&mut v, 0.0), 1.0);
        assert_eq!(percentile_in_place(&mut [7.0], 95.0), 7.0);
    }

    #[test]
    fn two_pass_selection_is_exact_with_ties_and_misses() {
        // A column with a block of ties at zero (depleted paths) and a smooth tail.
        let n = 100_003usize;
        let values: Vec<f64> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    0.0
                } else {
                    ((i * 7919) % 1000) as f64 + (i as f64) * 1e-6
                }
            })
            .collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let ps = [0.0, 5.0, 10.0, 33.0, 50.0, 90.0, 97.5, 100.0];
        let mut sample: Vec<f64> = values.iter().step_by(97).copied().collect();
        let brackets = brackets_from_sample(&mut sample, &ps, n as u64, 5.0);
        for (&p, &first) in ps.iter().zip(&brackets) {
            let mut bracket = first;
            let mut found = None;
            for _ in 0..2 {
                let mut tally = BracketTally::default();
                for chunk in values.chunks(1000) {
                    tally.observe(bracket, chunk);
                }
                found = tally.percentile(bracket, p, n as u64);
                if found.is_some() {
                    break;
                }
                bracket = Bracket::ALL;
            }
            assert_eq!(found, Some(numpy_linear(&sorted, p)), "p{p}");
        }
    }

    #[test]
    fn selection_finds_the_sorted_order_statistics() {
        let values: Vec<f64> = (0..5_001)
            .map(|i| f64::from((i * 7919) % 1013) - 300.0)
            .collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let ranks = [4_999, 0, 17, 17, 2_500, 5_000, 18, 1];
        let mut scratch = values.clone();
        let found = order_statistics(&mut scratch, &ranks);
        let expected: Vec<f64> = ranks.iter().map(|&r| sorted[r]).collect();
        assert_eq!(found, expected);
        let ps = [0.0, 2.5, 50.0, 97.5, 100.0];
        let mut scratch = values.clone();
        let by_selection = percentiles_of(&mut scratch, &ps);
        let by_sorting: Vec<f64> = ps.iter().map(|&p| numpy_linear(&sorted, p)).collect();
        assert_eq!(by_selection, by_sorting);
    }

    #[test]
    fn avx2_and_portable_tallies_agree() {
        let values: Vec<f64> = (0..10_007)
            .map(|i| f64::from((i * 7919) % 503) / 7.0)
            .collect();
        for bracket in [
            Bracket { lo: 10.0, hi: 20.0 },
            Bracket { lo: 0.0, hi: 0.0 },
            Bracket {
                lo: 5.0,
                hi: f64::INFINITY,
            },
            Bracket::ALL,
        ] {
            let mut portable = BracketTally::default();
            observe_chunks(&mut portable, bracket, &values);
            let mut dispatched = BracketTally::default();
            dispatched.observe(bracket, &values);
            portable.inside.sort_by(f64::total_cmp);
            dispatched.inside.sort_by(f64::total_cmp);
            assert_eq!(dispatched, portable, "{bracket:?}");
            let expected_below = values.iter().filter(|&&x| x < bracket.lo).count() as u64;
            assert_eq!(portable.below, expected_below);
        }
    }

    #[test]
    fn a_narrow_bracket_that_misses_says_so() {
        let values: Vec<f64> = (0..1000).map(f64::from).collect();
        let bracket = Bracket {
            lo: 900.0,
            hi: 950.0,
        };
        let mut tally = BracketTally::default();
        tally.observe(bracket, &values);
        assert_eq!(tally.percentile(bracket, 50.0, 1000), None);
        assert_eq!(
            tally.percentile(bracket, 92.0, 1000),
            Some(numpy_linear(&values, 92.0))
        );
    }
}
