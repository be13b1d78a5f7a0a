//! The Brownian bridge that orders a path's normals for the `sobol` sampler (docs/model.md §6):
//! the first coordinate of a point fixes the path's sum over the whole horizon, the next ones
//! its midpoints, then the quarter points, and so on, so that the first dimensions of the
//! low-discrepancy sequence, the evenly spread ones, carry most of what decides an outcome
//! (where the path ends, and roughly how it got there). What comes out is still a sequence of
//! independent standard normals, one a month, which each month then scales by its own
//! volatility (glide paths), as the other samplers' normals are.
//!
//! The construction is the standard one (Glasserman, *Monte Carlo Methods in Financial
//! Engineering*, §3.1; QuantLib's `BrownianBridge`), for the unit time steps of months: W at
//! month T is √T·z₀; each later coordinate fills the middle of the widest gap left, W_l =
//! a·W_left + b·W_right + s·z_i, with the bridge's weights and standard deviation; the months'
//! normals are W's increments.

/// The bridge over `months` unit steps: the order in which it fills the path and each fill's
/// weights.
#[derive(Debug, Clone, PartialEq)]
pub struct BrownianBridge {
    /// For coordinate i: the month whose W it sets, the months whose W it leans on (`left`
    /// is one past it, 0 for the start W = 0), and its weights and standard deviation.
    fill: Vec<Fill>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Fill {
    month: usize,
    /// One past the left neighbour's month: 0 when the left end is the start (W = 0).
    left: usize,
    right: usize,
    left_weight: f64,
    right_weight: f64,
    sd: f64,
}

impl BrownianBridge {
    /// The bridge over `months` ≥ 1 months.
    pub fn new(months: usize) -> BrownianBridge {
        assert!(months >= 1, "a bridge needs a month");
        // W at month m (from 0) is at time m + 1.
        let time = |m: usize| (m + 1) as f64;
        let mut filled = vec![false; months];
        filled[months - 1] = true;
        let mut fill = Vec::with_capacity(months);
        fill.push(Fill {
            month: months - 1,
            left: 0,
            right: months - 1,
            left_weight: 0.0,
            right_weight: 0.0,
            sd: time(months - 1).sqrt(),
        });
        let mut j = 0;
        for _ in 1..months {
            // The next gap: from the first month not yet filled to the filled one after it.
            while filled[j] {
                j += 1;
            }
            let mut k = j;
            while !filled[k] {
                k += 1;
            }
            let l = j + ((k - 1 - j) >> 1);
            filled[l] = true;
            let start = if j == 0 { 0.0 } else { time(j - 1) };
            let (tl, tk) = (time(l), time(k));
            fill.push(Fill {
                month: l,
                left: j,
                right: k,
                left_weight: (tk - tl) / (tk - start),
                right_weight: (tl - start) / (tk - start),
                sd: ((tl - start) * (tk - tl) / (tk - start)).sqrt(),
            });
            j = k + 1;
            if j >= months {
                j = 0;
            }
        }
        BrownianBridge { fill }
    }

    /// Months the bridge spans.
    pub fn months(&self) -> usize {
        self.fill.len()
    }

    /// For each month, the coordinate that fills it (its place in the bridge's order): what a
    /// GPU kernel, walking the same bisection in time order (`shaders/sobol_paths.wgsl`),
    /// needs to draw each month's coordinate of the point.
    pub fn coordinates_by_month(&self) -> Vec<u32> {
        let mut by_month = vec![0u32; self.fill.len()];
        for (i, f) in self.fill.iter().enumerate() {
            by_month[f.month] = i as u32;
        }
        by_month
    }

    /// The months' normals from the point's normals `z` (coordinate i fills `fill[i]`), into
    /// `out`; both as long as the bridge. `out` holds W along the way. The one-lane case of
    /// [`BrownianBridge::normals_lanes`], the definition.
    pub fn normals(&self, z: &[f64], out: &mut [f64]) {
        self.normals_lanes(z.as_chunks::<1>().0, out.as_chunks_mut::<1>().0);
    }

    /// The bridge of `L` paths side by side, month-major (`z[i][l]` is lane l's coordinate i,
    /// `out[m][l]` its month m): each lane takes the same operations in the same order whatever
    /// its neighbours, so its normals have the bits of [`BrownianBridge::normals`] of that lane
    /// alone, and the loops over lanes vectorise (inlined, so that they do in the kernels'
    /// instruction sets).
    #[inline(always)]
    pub fn normals_lanes<const L: usize>(&self, z: &[[f64; L]], out: &mut [[f64; L]]) {
        let n = self.fill.len();
        assert!(z.len() == n && out.len() == n, "one normal a month");
        // Loops, not `array::from_fn`, which LLVM leaves out of line (compiled for the
        // baseline instruction set, not the caller's).
        // The last month first, then each gap's middle from the months around it.
        let sd = self.fill[0].sd;
        for (w, &z0) in out[n - 1].iter_mut().zip(&z[0]) {
            *w = sd * z0;
        }
        for (f, zi) in self.fill.iter().zip(z).skip(1) {
            let left = if f.left == 0 {
                [0.0; L]
            } else {
                out[f.left - 1]
            };
            let right = out[f.right];
            for (l, w) in out[f.month].iter_mut().enumerate() {
                *w = f.left_weight * left[l] + f.right_weight * right[l] + f.sd * zi[l];
            }
        }
        // Increments, from the end so that each W_{m−1} is still there.
        for m in (1..n).rev() {
            let before = out[m - 1];
            for (w, b) in out[m].iter_mut().zip(before) {
                *w -= b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lanes' bridge gives each lane the bits of the one-path bridge.
    #[test]
    fn the_lanes_bridge_is_each_paths_bridge() {
        for months in [1, 2, 7, 360] {
            let bridge = BrownianBridge::new(months);
            let z: Vec<[f64; 4]> = (0..months)
                .map(|m| std::array::from_fn(|l| ((m * 7 + l * 3) % 11) as f64 / 3.0 - 1.5))
                .collect();
            let mut lanes = vec![[0.0; 4]; months];
            bridge.normals_lanes(&z, &mut lanes);
            for l in 0..4 {
                let zl: Vec<f64> = z.iter().map(|zi| zi[l]).collect();
                let mut one = vec![0.0; months];
                bridge.normals(&zl, &mut one);
                for (lane, single) in lanes.iter().zip(&one) {
                    assert_eq!(lane[l].to_bits(), single.to_bits(), "{months} months");
                }
            }
        }
    }

    /// The bridge is a linear map z → normals whose matrix M has M·Mᵀ = I (the months'
    /// normals are independent standard normals whatever the order), within 1e-12, for
    /// horizons that are and are not powers of two; and every month is filled once.
    #[test]
    fn the_months_normals_are_independent_standard_normals() {
        for months in [1, 2, 3, 7, 12, 37, 64, 360] {
            let bridge = BrownianBridge::new(months);
            let mut filled: Vec<usize> = bridge.fill.iter().map(|f| f.month).collect();
            filled.sort_unstable();
            assert_eq!(filled, (0..months).collect::<Vec<_>>(), "{months} months");
            // Column i of M: the normals from the unit vector e_i.
            let columns: Vec<Vec<f64>> = (0..months)
                .map(|i| {
                    let mut z = vec![0.0; months];
                    z[i] = 1.0;
                    let mut out = vec![0.0; months];
                    bridge.normals(&z, &mut out);
                    out
                })
                .collect();
            for a in 0..months {
                for b in 0..months {
                    let dot: f64 = columns.iter().map(|c| c[a] * c[b]).sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!(
                        (dot - want).abs() <= 1e-12,
                        "{months} months: (M·Mᵀ)[{a}][{b}] = {dot}"
                    );
                }
            }
        }
    }

    /// The first coordinate is the whole path's sum (Σ normals = √T·z₀), the second its first
    /// half's (for an even T, given the first): what puts the points' best-spread dimensions
    /// on what matters most.
    #[test]
    fn the_first_coordinates_fix_the_sum_then_the_midpoint() {
        let months = 360;
        let bridge = BrownianBridge::new(months);
        let mut z = vec![0.0; months];
        z[0] = 1.5;
        let mut out = vec![0.0; months];
        bridge.normals(&z, &mut out);
        let sum: f64 = out.iter().sum();
        assert!((sum - 1.5 * (months as f64).sqrt()).abs() < 1e-9, "{sum}");
        // With only z₀, the path is a straight line: every month the same normal.
        assert!(out.iter().all(|&x| (x - out[0]).abs() < 1e-12));
        z[1] = -2.0;
        bridge.normals(&z, &mut out);
        let half: f64 = out[..180].iter().sum();
        let expected = 0.5 * 1.5 * (months as f64).sqrt() + (90.0f64).sqrt() * -2.0;
        assert!((half - expected).abs() < 1e-9, "{half} vs {expected}");
    }
}
