//! How one goal is reduced: which months are snapshotted, which percentiles are wanted, and
//! whether they are selected from every path or bracketed from a pilot sample of every
//! `stride`-th path (with the sample-size and bracket-margin defaults). Deciding this once per
//! goal keeps the passes in [`super::pass`] free of policy.

use super::{CpuKernel, BLOCK_PATHS};
use crate::backend::Detail;
use crate::validate::PreparedGoal;

/// Goals with at most this many paths select their percentiles from all paths at once.
pub(super) const WHOLE_SAMPLE_PATHS: u64 = 1 << 16;
/// Sample size for the percentile brackets of larger goals: a sixty-fourth of the paths within
/// these bounds. A larger sample narrows the brackets (fewer values kept between them) but
/// costs a longer pilot run; 2¹⁸ keeps 10⁷ paths × 100 years within 600 MB.
const SAMPLE_PATHS: (u64, u64) = (1 << 14, 1 << 18);
/// Bracket half-width, in binomial standard deviations of the sample rank.
pub(super) const BRACKET_MARGIN: f64 = 5.0;

/// How one goal is reduced.
pub(super) struct Plan {
    pub(super) months: Vec<u32>,
    pub(super) percentiles: Vec<f64>,
    pub(super) blocks: usize,
    /// Every `stride`-th path is in the sample; 1: every path is, and percentiles are selected
    /// from all of them.
    pub(super) stride: u64,
    pub(super) kernel: CpuKernel,
}

impl Plan {
    pub(super) fn new(
        goal: &PreparedGoal,
        detail: Detail,
        whole_sample_paths: u64,
        kernel: CpuKernel,
    ) -> Plan {
        let (months, percentiles) = match detail {
            Detail::Full => (goal.yearly_months(), goal.percentiles.clone()),
            Detail::Success => (vec![goal.horizon], Vec::new()),
        };
        let stride = if percentiles.is_empty() || goal.paths <= whole_sample_paths {
            1
        } else {
            let sample = (goal.paths / 64).clamp(SAMPLE_PATHS.0, SAMPLE_PATHS.1);
            goal.paths.div_ceil(sample)
        };
        Plan {
            blocks: (goal.paths as usize).div_ceil(BLOCK_PATHS),
            months: goal.snapshot_columns(months),
            percentiles,
            stride,
            kernel,
        }
    }

    /// Whether every path is kept for selection (no brackets, no pilot run).
    pub(super) fn sample_is_everything(&self) -> bool {
        self.stride == 1
    }
}
