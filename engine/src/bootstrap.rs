//! Bootstrap from a history (docs/model.md §4.3): each path's months are months of a
//! [`History`], drawn in blocks, so the returns keep the history's fat tails, its
//! cross-asset dependence and (within a block) its serial dependence.
//!
//! What this module owns: the prepared model ([`Bootstrap`]: the portfolio's growth in each
//! month of the history under each weight segment, the inflation factors, the block length
//! and method), the step from one month's history row to the next ([`next_row`]) and the
//! scalar definition of a path's rows ([`rows_at`]) that every backend reproduces.
//!
//! The numbers: months 4q … 4q + 3 take word t mod 4 of counter (path, q, [`BOOTSTRAP_STREAM`],
//! 0) as the candidate start of a block, and (stationary blocks) word t mod 4 of counter
//! (path, q, [`BOOTSTRAP_STREAM`], 1) as the draw that decides whether month t starts one. A
//! start is row ⌊u·N/2³²⌋ of N (the high word of the 32×32-bit product, exact integer
//! arithmetic on every backend). Circular blocks start at months 0, b, 2b, …; a stationary
//! block starts at month 0 and wherever the draw's ⌊u·b/2³²⌋ is 0 (probability ⌈2³²/b⌉/2³²,
//! within 2⁻³² of 1/b); otherwise a month takes the row after last month's, wrapping at N.
//! The market's shocks (§1's stream) are not drawn at all.
//!
//! A month's growth is G_t = f·g_{s(t)}(row) with f the fee's drift (docs/model.md §4.6) and
//! g_s(row) = 1 + Σ_k w_{s,k}·r_k(row) for the weight segment s in force (`market.weights`, or
//! a glide path's): a table of segments × rows, computed once in f64 and rounded to the pair
//! of f32 (hi, lo) the GPUs read, so every backend multiplies the same f64.

use crate::history::History;
use crate::philox;
use crate::request::BlockMethod;

/// Philox word c2 of the bootstrap's counters, (path, ⌊t/4⌋, 5, 0) for block starts and
/// (path, ⌊t/4⌋, 5, 1) for stationary blocks' continuation draws.
pub const BOOTSTRAP_STREAM: u32 = 5;
/// Most entries (segments × history months, plus the inflation column) a bootstrap table may
/// hold: the GPUs address it with f32 offsets, exact below 2²⁴.
pub const MAX_TABLE_ENTRIES: usize = 1 << 22;
/// Default block length, in months.
pub const DEFAULT_BLOCK_MONTHS: u32 = 60;

/// A bootstrap market ready for the kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// N, the history's months.
    pub rows: u32,
    /// b, the (mean, for stationary blocks) block length in months.
    pub block: u32,
    pub stationary: bool,
    /// g_s(row) at `s·N + row`, as the kernels see it (f32 hi + lo, summed in f64).
    pub growth: Vec<f64>,
    /// s(t)·N for each month t: where month t's segment starts in `growth`.
    pub month_table: Vec<u32>,
    /// 1 + π(row) of each row, as the kernels see it, when the history carries inflation (it
    /// then drives the price index, docs/model.md §4.3).
    pub inflation: Option<Vec<f64>>,
}

impl Bootstrap {
    /// The prepared model of `history` (checked), with weight segments `segments` (each its
    /// start month and its weights in the history's asset order, the first at month 0) over
    /// `horizon` months.
    pub fn new(
        history: &History,
        segments: &[(u32, Vec<f64>)],
        horizon: u32,
        block: u32,
        method: BlockMethod,
    ) -> Self {
        let rows = history.months.len();
        let mut growth = Vec::with_capacity(segments.len() * rows);
        for (_, weights) in segments {
            growth.extend(history.months.iter().map(|month| {
                let r: f64 = weights.iter().zip(&month.returns).map(|(w, r)| w * r).sum();
                as_kernel_value(1.0 + r)
            }));
        }
        let month_table = (0..horizon)
            .map(|t| {
                let s = segments
                    .iter()
                    .rposition(|&(start, _)| start <= t)
                    .unwrap_or(0);
                (s * rows) as u32
            })
            .collect();
        let inflation = history.has_inflation().then(|| {
            history
                .months
                .iter()
                .map(|m| as_kernel_value(1.0 + m.inflation.unwrap_or(0.0)))
                .collect()
        });
        Bootstrap {
            rows: rows as u32,
            block,
            stationary: method == BlockMethod::Stationary,
            growth,
            month_table,
            inflation,
        }
    }

    /// Entries the kernels' table holds: the growth table and the inflation column.
    pub fn table_entries(&self) -> usize {
        self.growth.len() + self.inflation.as_ref().map_or(0, Vec::len)
    }
}

/// `x` as the GPUs read it: the f32 pair (hi, lo) whose sum is `x` to about 1e-15, summed.
pub fn as_kernel_value(x: f64) -> f64 {
    let hi = x as f32;
    let lo = (x - f64::from(hi)) as f32;
    f64::from(hi) + f64::from(lo)
}

/// The high word of the 64-bit product a·b: ⌊a·b/2³²⌋.
#[inline(always)]
pub fn mul_high(a: u32, b: u32) -> u32 {
    ((u64::from(a) * u64::from(b)) >> 32) as u32
}

/// Month `t`'s history row, from month t − 1's row `previous` (ignored at a block's start),
/// month t's start word `start` and continuation word `draw` (see the module's top).
#[inline(always)]
pub fn next_row(bootstrap: &Bootstrap, previous: u32, t: u32, start: u32, draw: u32) -> u32 {
    let begins = if bootstrap.stationary {
        t == 0 || mul_high(draw, bootstrap.block) == 0
    } else {
        t.is_multiple_of(bootstrap.block)
    };
    if begins {
        mul_high(start, bootstrap.rows)
    } else {
        let next = previous + 1;
        if next == bootstrap.rows {
            0
        } else {
            next
        }
    }
}

/// Path `path`'s history row in every month t = 0 … `horizon` − 1: the definition the kernels
/// are tested against.
pub fn rows_at(bootstrap: &Bootstrap, seed: u64, path: u32, horizon: u32) -> Vec<u32> {
    let key = philox::key_of_seed(seed);
    let mut rows = Vec::with_capacity(horizon as usize);
    let mut row = 0;
    for t in 0..horizon {
        let q = t / 4;
        let starts = philox::philox4x32_10([path, q, BOOTSTRAP_STREAM, 0], key);
        let draws = philox::philox4x32_10([path, q, BOOTSTRAP_STREAM, 1], key);
        let j = (t % 4) as usize;
        row = next_row(bootstrap, row, t, starts[j], draws[j]);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HistoryMonth;

    fn history(rows: usize) -> History {
        History {
            assets: vec!["a".into(), "b".into()],
            months: (0..rows)
                .map(|i| HistoryMonth {
                    returns: vec![0.001 * i as f64, -0.0005 * i as f64],
                    inflation: Some(0.0001 * i as f64),
                })
                .collect(),
        }
    }

    #[test]
    fn the_table_holds_each_segments_portfolio_and_months_find_their_segment() {
        let h = history(10);
        let segments = [(0, vec![0.6, 0.4]), (5, vec![0.2, 0.8])];
        let b = Bootstrap::new(&h, &segments, 12, 3, BlockMethod::Circular);
        assert_eq!(b.growth.len(), 20);
        let expected = 1.0 + 0.6 * 0.007 + 0.4 * -0.0035;
        assert!((b.growth[7] - expected).abs() < 1e-15);
        let expected = 1.0 + 0.2 * 0.007 + 0.8 * -0.0035;
        assert!((b.growth[17] - expected).abs() < 1e-15);
        assert_eq!(b.month_table, [0, 0, 0, 0, 0, 10, 10, 10, 10, 10, 10, 10]);
        let inflation = b.inflation.as_ref().unwrap();
        assert!((inflation[3] - 1.0003).abs() < 1e-15);
        assert_eq!(b.table_entries(), 30);
    }

    #[test]
    fn circular_blocks_run_b_months_from_a_start_and_wrap() {
        let b = Bootstrap::new(
            &history(7),
            &[(0, vec![1.0, 0.0])],
            40,
            5,
            BlockMethod::Circular,
        );
        for path in 0..50 {
            let rows = rows_at(&b, 9, path, 40);
            for (t, pair) in rows.windows(2).enumerate() {
                let month = t + 1;
                if month % 5 != 0 {
                    assert_eq!(pair[1], (pair[0] + 1) % 7, "path {path} month {month}");
                }
            }
            assert!(rows.iter().all(|&r| r < 7));
        }
    }

    /// Stationary blocks: each month after the first starts a block with probability 1/b, so
    /// block lengths are geometric with mean b (checked on the frequency of starts, within 4
    /// standard errors of a binomial count, seed fixed).
    #[test]
    fn stationary_blocks_start_with_probability_one_over_b() {
        let rows = 1000; // long enough that a continuation almost never lands on a fresh draw's row
        let b = Bootstrap::new(
            &history(rows),
            &[(0, vec![1.0, 0.0])],
            120,
            12,
            BlockMethod::Stationary,
        );
        let (mut starts, mut months) = (0u64, 0u64);
        for path in 0..2000 {
            let r = rows_at(&b, 5, path, 120);
            for pair in r.windows(2) {
                months += 1;
                starts += u64::from(pair[1] != (pair[0] + 1) % rows as u32);
            }
        }
        // A jump that lands on the next row by chance counts as a continuation: p·(1 − 1/N).
        let p = (1.0 / 12.0) * (1.0 - 1.0 / rows as f64);
        let expected = p * months as f64;
        let se = (months as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (starts as f64 - expected).abs() < 4.0 * se,
            "{starts} starts in {months} months, expected {expected:.0} ± {se:.0}"
        );
    }

    /// Block starts are uniform over the history's rows: a χ² test over 10 rows, 9 degrees of
    /// freedom, below the 0.9999 quantile (33.7), seed fixed.
    #[test]
    fn starts_are_uniform_over_the_rows() {
        let b = Bootstrap::new(
            &history(10),
            &[(0, vec![1.0, 0.0])],
            1,
            60,
            BlockMethod::Circular,
        );
        let mut counts = [0u64; 10];
        for path in 0..20_000 {
            counts[rows_at(&b, 3, path, 1)[0] as usize] += 1;
        }
        let expected = 2000.0;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 33.7, "χ² {chi2}, counts {counts:?}");
    }

    #[test]
    fn a_block_of_one_always_starts_anew_and_mul_high_is_the_high_word() {
        assert_eq!(mul_high(u32::MAX, 1), 0);
        assert_eq!(mul_high(u32::MAX, 10), 9);
        assert_eq!(mul_high(1 << 31, 7), 3);
        let b = Bootstrap::new(
            &history(3),
            &[(0, vec![1.0, 0.0])],
            1,
            1,
            BlockMethod::Stationary,
        );
        // With b = 1 every draw's high word is 0: every month starts a block.
        assert_eq!(next_row(&b, 2, 5, 0, u32::MAX), 0);
        assert_eq!(next_row(&b, 0, 5, u32::MAX, u32::MAX), 2);
    }
}
