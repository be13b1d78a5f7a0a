//! The block kernel, portable build: which paths a block simulates, the month loop over lane
//! groups of [`LANES`] paths ([`simulate_lanes`]: Philox, Box-Muller, `exp`, the cash-flow
//! update), the affine re-score pass for goals without withdrawals ([`affine_lanes`]), and
//! the [`LaneKernel`] trait through which an instruction set supplies its Philox words and
//! wealth update. The loops are written once here, `#[inline(always)]`, and instantiated per
//! instruction set (portable here, AVX2 and AVX-512 in `super::x86`), so every kernel runs
//! the same operations in the same order and computes the same bits.

use multiversion::multiversion;

use super::assets::simulate_asset_lanes;
#[cfg(target_arch = "x86_64")]
use super::x86::{simulate_block_avx2, simulate_block_avx512};
use super::{CpuKernel, BLOCK_PATHS, LANES, NOT_DEPLETED};
use crate::bootstrap::{self, BOOTSTRAP_STREAM};
use crate::bridge::BrownianBridge;
use crate::inflation::{IndexLanes, INFLATION_STREAM};
use crate::normal;
use crate::philox::{self, ROUNDS};
use crate::regime::{self, RegimeChain};
use crate::sampler::{antithetic_source, PathSampler, SobolPaths};
use crate::sobol::{self, DirectionNumbers};
use crate::student_t;
use crate::validate::{MarketView, PreparedGoal};

/// Simulate paths `first .. first + count` of `goal` (count ≤ [`BLOCK_PATHS`]) with `kernel`,
/// which the CPU must support (every kernel computes the same bits).
///
/// Writes W at each of `months` into `snapshots[k * BLOCK_PATHS + i]` and the depletion month
/// (or −1) into `depletion[i]`; returns the block's [`BlockCounts`]. Lanes past `count` are
/// simulated and ignored.
pub(super) fn simulate_block(
    kernel: CpuKernel,
    goal: &PreparedGoal,
    months: &[u32],
    paths: PathRange,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) -> BlockCounts {
    let job = BlockJob {
        goal,
        keys: philox::round_keys(philox::key_of_seed(goal.seed)),
        months,
        paths,
    };
    match kernel {
        // SAFETY: callers pass a backend's kernel, which the CPU supports (`with_kernel`).
        #[cfg(target_arch = "x86_64")]
        CpuKernel::Avx512 => unsafe { simulate_block_avx512(&job, snapshots, depletion) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        CpuKernel::Avx2 => unsafe { simulate_block_avx2(&job, snapshots, depletion) },
        _ => simulate_block_portable(&job, snapshots, depletion),
    }
}

/// Which paths a block simulates: `first`, `first + step`, … (`count` of them, at most
/// [`BLOCK_PATHS`]). The main pass takes consecutive paths; the pilot run every `stride`-th.
#[derive(Debug, Clone, Copy)]
pub(super) struct PathRange {
    pub(super) first: usize,
    pub(super) step: u32,
    pub(super) count: usize,
}

impl PathRange {
    pub(super) fn contiguous(first: usize, count: usize) -> Self {
        PathRange {
            first,
            step: 1,
            count,
        }
    }
}

/// What a block counts besides its snapshots, over its `count` paths: path-months a Student-t
/// market clamped at −100%, and under per-asset paths the rebalances and their turnover
/// (summed over the block's paths in order).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct BlockCounts {
    pub(super) clamped: u64,
    pub(super) rebalances: u64,
    pub(super) turnover: f64,
}

/// One block's work: which goal, its Philox round keys, the months to snapshot, and which
/// paths.
pub(super) struct BlockJob<'a> {
    pub(super) goal: &'a PreparedGoal,
    pub(super) keys: [[u32; 2]; ROUNDS],
    pub(super) months: &'a [u32],
    pub(super) paths: PathRange,
}

impl BlockJob<'_> {
    /// The paths of the lane group starting at the block's `group`-th path.
    #[inline(always)]
    pub(super) fn lane_paths(&self, group: usize) -> [u32; LANES] {
        let PathRange { first, step, .. } = self.paths;
        std::array::from_fn(|l| (first + (group + l) * step as usize) as u32)
    }

    /// The nominal snapshot columns: under a stochastic index `months` lists the snapshot
    /// months twice, W_s and then W_s / I_s.
    pub(super) fn nominal_columns(&self) -> usize {
        if self.goal.stochastic_index() {
            self.months.len() / 2
        } else {
            self.months.len()
        }
    }
}

/// The block kernel in portable Rust, vectorised by LLVM: SSE4.1 when the CPU has it.
#[multiversion(targets("x86_64+sse4.1"))]
fn simulate_block_portable(
    job: &BlockJob,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) -> BlockCounts {
    simulate_lanes(&PortableLanes(&job.keys), job, snapshots, depletion)
}

/// What differs between the kernels: where a lane group's Philox words come from, and how
/// its wealth grows (the same arithmetic in every kernel).
pub(crate) trait LaneKernel {
    /// Words of counter `(paths[l], quad, 0, 0)` for each lane.
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4];

    /// Words of counter `(paths[l], c[0], c[1], c[2])` for each lane (another stream).
    fn words_at(&self, paths: &[u32; LANES], c: [u32; 3]) -> [[u32; LANES]; 4];

    /// [`grow`], the month before any withdrawal.
    #[inline(always)]
    fn grow(&self, wealth: &mut [f64; LANES], shock: &[f32; LANES], contribution: f64, drift: f64) {
        grow(wealth, shock, contribution, |_| drift);
    }
}

/// Philox in portable Rust (vectorised by LLVM), from the round keys.
pub(crate) struct PortableLanes<'a>(pub(crate) &'a [[u32; 2]; ROUNDS]);

impl LaneKernel for PortableLanes<'_> {
    #[inline(always)]
    fn words(&self, paths: &[u32; LANES], quad: u32) -> [[u32; LANES]; 4] {
        philox::philox_lanes(paths, quad, self.0)
    }

    #[inline(always)]
    fn words_at(&self, paths: &[u32; LANES], c: [u32; 3]) -> [[u32; LANES]; 4] {
        philox::philox_lanes_at(paths, c, self.0)
    }
}

/// The month loop over lane groups, shared by every kernel (per-asset paths have their own,
/// [`simulate_asset_lanes`]); returns the block's counts.
#[inline(always)]
pub(super) fn simulate_lanes(
    lanes: &impl LaneKernel,
    job: &BlockJob,
    snapshots: &mut [f64],
    depletion: &mut [f64],
) -> BlockCounts {
    if let Some(assets) = &job.goal.asset_paths {
        return simulate_asset_lanes(lanes, job, assets, snapshots, depletion);
    }
    let (goal, months, count) = (job.goal, job.months, job.paths.count);
    let market = goal.market();
    let horizon = goal.horizon as usize;
    let quads = horizon.div_ceil(4);
    let first_withdrawal = goal
        .withdrawal
        .iter()
        .position(|&d| d > 0.0)
        .unwrap_or(horizon);
    let nominal = job.nominal_columns();
    // Regimes, a bootstrap and a stochastic index give each lane its own drift or amount.
    let per_lane = goal.regimes.is_some() || goal.bootstrap.is_some() || goal.stochastic_index();
    let mut clamped = 0u64;
    let mut sobol = SobolLanes::of(goal);
    for group in (0..count).step_by(LANES) {
        let paths = job.lane_paths(group);
        if let Some(sobol) = &mut sobol {
            sobol.fill(&paths);
        }
        let draws = LaneDraws::of(
            goal.sampler,
            &paths,
            sobol.as_ref().map_or(&[][..], |s| &s.months),
        );
        let mut wealth = [goal.initial_wealth; LANES];
        let mut depleted_at = [NOT_DEPLETED; LANES];
        let mut lane_state = LaneState::new(&market);
        let mut next = 0;
        let mut t = 0usize;
        for q in 0..quads {
            let months_left = (horizon - t).min(4);
            let growth = quad_growth(lanes, &market, &draws, q, t, months_left, &mut lane_state);
            for (j, g) in growth[..months_left].iter().enumerate() {
                let (c, d) = (goal.contribution[t], goal.withdrawal[t]);
                if !per_lane && t < first_withdrawal {
                    // No withdrawal yet, so no path can be depleted: W ← (W + c)·G.
                    lanes.grow(&mut wealth, g, c, goal.drift[t]);
                } else if !per_lane {
                    let drift = goal.drift[t];
                    step(&mut wealth, &mut depleted_at, g, t, c, (d, |_| d), |_| {
                        drift
                    });
                } else {
                    let drift = lane_state.drifts(&market, j, t);
                    if t < first_withdrawal {
                        grow(&mut wealth, g, c, |l| drift[l]);
                    } else {
                        // d in today's money, scaled by each path's index of the year.
                        let amount: [f64; LANES] = match &lane_state.index {
                            Some(x) => std::array::from_fn(|l| d * x.year_index[l]),
                            None => [d; LANES],
                        };
                        step(
                            &mut wealth,
                            &mut depleted_at,
                            g,
                            t,
                            c,
                            (d, |l| amount[l]),
                            |l| drift[l],
                        );
                    }
                }
                lane_state.advance_index(&market, j, t);
                t += 1;
                if next < nominal && months[next] as usize == t {
                    let columns = SnapshotColumns {
                        next,
                        nominal,
                        group,
                    };
                    store_snapshot(snapshots, columns, &wealth, lane_state.index.as_ref());
                    next += 1;
                }
            }
        }
        depletion[group..group + LANES].copy_from_slice(&depleted_at);
        let valid = LANES.min(count - group);
        clamped += lane_state.clamps[..valid]
            .iter()
            .map(|&c| u64::from(c))
            .sum::<u64>();
    }
    BlockCounts {
        clamped,
        ..BlockCounts::default()
    }
}

/// Where a lane group's snapshot goes: snapshot `next` of the `nominal` ones, lanes from
/// `group` (real values, under a stochastic index, `nominal` columns further on).
#[derive(Clone, Copy)]
pub(super) struct SnapshotColumns {
    pub(super) next: usize,
    pub(super) nominal: usize,
    pub(super) group: usize,
}

/// A lane group's wealth into its snapshot column and, under a stochastic index, W / I into
/// the real one.
#[inline(always)]
pub(super) fn store_snapshot(
    snapshots: &mut [f64],
    at: SnapshotColumns,
    wealth: &[f64; LANES],
    index: Option<&IndexLanes<LANES>>,
) {
    let first = at.next * BLOCK_PATHS + at.group;
    snapshots[first..first + LANES].copy_from_slice(wealth);
    if let Some(index) = index {
        let first = (at.next + at.nominal) * BLOCK_PATHS + at.group;
        for (real, (&w, &i)) in snapshots[first..first + LANES]
            .iter_mut()
            .zip(wealth.iter().zip(&index.index))
        {
            *real = w / i;
        }
    }
}

/// What a lane group carries from month to month besides its wealth: each lane's clamped
/// months (Student-t), its regime, and the regimes of the quad's four months; under a
/// bootstrap its history row and the quad's months' growth and inflation factors; under a
/// stochastic index its rate and index, and the quad's market and own normals.
pub(super) struct LaneState {
    clamps: [u32; LANES],
    regime: [u32; LANES],
    month_regimes: [[u32; LANES]; 4],
    row: [u32; LANES],
    gross: [[f64; LANES]; 4],
    prices: [[f64; LANES]; 4],
    pub(super) index: Option<IndexLanes<LANES>>,
    shocks: [[f32; LANES]; 4],
    own: [[f32; LANES]; 4],
}

impl LaneState {
    pub(super) fn new(market: &MarketView) -> Self {
        LaneState {
            clamps: [0; LANES],
            regime: [0; LANES],
            month_regimes: [[0; LANES]; 4],
            row: [0; LANES],
            gross: [[1.0; LANES]; 4],
            prices: [[1.0; LANES]; 4],
            index: match &market.inflation {
                Some(model) => Some(IndexLanes::new(model)),
                None => market.stochastic_index().then(IndexLanes::unit),
            },
            shocks: [[0.0; LANES]; 4],
            own: [[0.0; LANES]; 4],
        }
    }

    /// Under a stochastic index, step each lane's index past the quad's month `j` (month
    /// `t`): AR(1)'s rate, with the index taken at a year end or the horizon (docs/model.md
    /// §4.4), or the month's history inflation (§4.3).
    #[inline(always)]
    pub(super) fn advance_index(&mut self, market: &MarketView, j: usize, t: usize) {
        let Some(index) = &mut self.index else {
            return;
        };
        let month = t + 1;
        let year_end = month.is_multiple_of(12);
        match &market.inflation {
            Some(model) => {
                index.advance(model, &self.shocks[j], &self.own[j]);
                if year_end || month == market.horizon as usize {
                    index.close(year_end);
                }
            }
            None => index.advance_by(&self.prices[j], year_end),
        }
    }

    /// Each lane's drift in the quad's month `j` (month `t`): its regime's, or the fee's
    /// factor times its history month's growth, or the month's.
    #[inline(always)]
    fn drifts(&self, market: &MarketView, j: usize, t: usize) -> [f64; LANES] {
        if let Some(chain) = &market.regimes {
            let horizon = market.horizon as usize;
            RegimeChain::select_lanes(
                &self.month_regimes[j],
                |k| market.drift[k * horizon + t],
                chain.count(),
            )
        } else if market.bootstrap.is_some() {
            std::array::from_fn(|l| market.drift[t] * self.gross[j][l])
        } else {
            [market.drift[t]; LANES]
        }
    }
}

/// Where a lane group's numbers come from under its goal's sampler (docs/model.md §6,
/// [`crate::sampler`]).
pub(super) struct LaneDraws<'a> {
    /// The path whose Philox streams each lane reads: its own, or under antithetic sampling
    /// its pair's (both paths of a pair draw the same numbers).
    pub(super) streams: [u32; LANES],
    /// Antithetic sampling: the lanes whose market normals are negated (a pair's second).
    negated: Option<[bool; LANES]>,
    /// The `sobol` sampler: every month's market normals, month-major, from the bridge.
    pub(super) sobol: Option<&'a [[f32; LANES]]>,
}

impl<'a> LaneDraws<'a> {
    /// Each lane draws its own path's Philox streams.
    #[inline(always)]
    pub(super) fn philox(paths: &[u32; LANES]) -> Self {
        LaneDraws {
            streams: *paths,
            negated: None,
            sobol: None,
        }
    }

    /// The draws of lanes `paths` under `sampler`; for `sobol`, `normals` holds the group's
    /// month normals (filled by [`SobolLanes::fill`]).
    #[inline(always)]
    pub(super) fn of(
        sampler: PathSampler,
        paths: &[u32; LANES],
        normals: &'a [[f32; LANES]],
    ) -> Self {
        match sampler {
            PathSampler::Philox => Self::philox(paths),
            PathSampler::Antithetic => LaneDraws {
                streams: std::array::from_fn(|l| antithetic_source(paths[l]).0),
                negated: Some(std::array::from_fn(|l| antithetic_source(paths[l]).1)),
                sobol: None,
            },
            PathSampler::Sobol { .. } => LaneDraws {
                streams: *paths,
                negated: None,
                sobol: Some(normals),
            },
        }
    }

    /// Quad `q`'s market normals Z (months `t` … `t` + 3, `months_left` of them real): Philox
    /// and Box–Muller, negated on a pair's second path, or the Sobol' months'.
    #[inline(always)]
    fn market_normals(
        &self,
        lanes: &impl LaneKernel,
        q: usize,
        t: usize,
        months_left: usize,
    ) -> [[f32; LANES]; 4] {
        let mut normals = [[0.0f32; LANES]; 4];
        if let Some(months) = self.sobol {
            normals[..months_left].copy_from_slice(&months[t..t + months_left]);
            return normals;
        }
        let [w0, w1, w2, w3] = lanes.words(&self.streams, q as u32);
        let [z0, z1, z2, z3] = &mut normals;
        normal::box_muller_lanes(&w0, &w1, z0, z1);
        normal::box_muller_lanes(&w2, &w3, z2, z3);
        self.mirror(&mut normals);
        normals
    }

    /// Under antithetic sampling, a quad of market normals negated on each pair's second
    /// path (per-asset paths: every asset's, so the correlated shocks are negated too).
    #[inline(always)]
    pub(super) fn mirror(&self, normals: &mut [[f32; LANES]; 4]) {
        if let Some(negated) = &self.negated {
            for z in normals.iter_mut() {
                for (x, &flip) in z.iter_mut().zip(negated) {
                    *x = if flip { -*x } else { *x };
                }
            }
        }
    }
}

/// A block's `sobol` normals: a lane group's month normals, month-major, refilled for each
/// group with every lane's bits those of [`SobolPaths::path_normals`] (tested), computed
/// dimension by dimension across the lanes: consecutive indices of one replicate take their
/// point from the lane before (in Gray-code order point i is point i − 1 XOR V_ctz(i)), the
/// scramble and Φ⁻¹ run lane by lane, and the bridge over all lanes at once.
pub(super) struct SobolLanes {
    numbers: &'static DirectionNumbers,
    bridge: BrownianBridge,
    key: [u32; 2],
    points_log2: u32,
    /// The scramble seeds of `replicate`, one a month: the lanes of a group almost always
    /// share one replicate.
    replicate: Option<u32>,
    seeds: Vec<u32>,
    z: Vec<[f64; LANES]>,
    out: Vec<[f64; LANES]>,
    pub(super) months: Vec<[f32; LANES]>,
}

impl SobolLanes {
    /// For a goal under the `sobol` sampler; `None` under the others.
    pub(super) fn of(goal: &PreparedGoal) -> Option<SobolLanes> {
        let PathSampler::Sobol { points_log2, .. } = goal.sampler else {
            return None;
        };
        let horizon = goal.horizon as usize;
        Some(SobolLanes {
            numbers: sobol::direction_numbers(),
            bridge: BrownianBridge::new(horizon),
            key: philox::key_of_seed(goal.seed),
            points_log2,
            replicate: None,
            seeds: Vec::new(),
            z: vec![[0.0; LANES]; horizon],
            out: vec![[0.0; LANES]; horizon],
            months: vec![[0.0; LANES]; horizon],
        })
    }

    /// The month normals of the lane group of `paths`. Inlined into the kernels' entry points
    /// so that it is compiled for their instruction sets: the scramble's bit reversals and
    /// multiplications, and Φ⁻¹'s both branches, run across the lanes in vector registers.
    #[inline(always)]
    pub(super) fn fill(&mut self, paths: &[u32; LANES]) {
        let replicates: [u32; LANES] =
            std::array::from_fn(|l| SobolPaths::replicate_of(self.points_log2, paths[l]));
        let mask = (1u32 << self.points_log2) - 1;
        let index: [u32; LANES] = std::array::from_fn(|l| paths[l] & mask);
        let shared = replicates.iter().all(|&r| r == replicates[0]);
        if shared && self.replicate != Some(replicates[0]) {
            self.seeds = sobol::scramble_seeds(self.key, replicates[0], self.z.len());
            self.replicate = Some(replicates[0]);
        }
        // The lanes whose point follows the lane before's, and the direction integer that
        // takes it there (in Gray-code order point i is point i − 1 XOR V_ctz(i)).
        let follows: [bool; LANES] = std::array::from_fn(|l| {
            l > 0 && replicates[l] == replicates[l - 1] && index[l] == index[l - 1] + 1
        });
        let step: [usize; LANES] = std::array::from_fn(|l| index[l].trailing_zeros() as usize);
        for (d, z) in self.z.iter_mut().enumerate() {
            let v = self.numbers.of_dimension(d);
            let mut x = [0u32; LANES];
            for l in 0..LANES {
                x[l] = if follows[l] {
                    x[l - 1] ^ v[step[l]]
                } else {
                    self.numbers.point(index[l], d)
                };
            }
            // Loops, not `array::from_fn`, which LLVM leaves out of line (compiled for the
            // baseline instruction set, not the kernel's).
            if shared {
                let seed = self.seeds[d];
                for xl in x.iter_mut() {
                    *xl = sobol::scramble(*xl, seed);
                }
            } else {
                for (xl, &r) in x.iter_mut().zip(&replicates) {
                    *xl = sobol::scramble(*xl, sobol::scramble_seed(self.key, r, d as u32));
                }
            }
            let normals = normal::inverse_cdf_of_words(&x);
            for (zl, &n) in z.iter_mut().zip(&normals) {
                *zl = f64::from(n);
            }
        }
        self.bridge.normals_lanes(&self.z, &mut self.out);
        for (month, w) in self.months.iter_mut().zip(&self.out) {
            for (m, &wl) in month.iter_mut().zip(w) {
                *m = wl as f32;
            }
        }
    }
}

/// Quad `q`'s growth shocks for each lane: exp(vol·Z) of the lognormal (with the vol of each
/// lane's regime under regimes, which this steps), or a Student-t market's max(1 + vol·T, 0)
/// (counting each lane's clamped months). Its four months' factors come first, lane-wise and
/// independent of wealth, so they pipeline ahead of the dependent updates. Only the first
/// `months_left` are meaningful (`t` is the quad's first month).
#[inline(always)]
fn quad_growth(
    lanes: &impl LaneKernel,
    market: &MarketView,
    draws: &LaneDraws,
    q: usize,
    t: usize,
    months_left: usize,
    state: &mut LaneState,
) -> [[f32; LANES]; 4] {
    let paths = &draws.streams;
    if let Some(boot) = &market.bootstrap {
        bootstrap_quad(lanes, boot, paths, q, t, months_left, state);
        if market.inflation.is_some() {
            // AR(1) with ρ = 0 (validate.rs): no market normal is drawn, so `state.shocks`
            // keeps the zeros it started with.
            own_normals(lanes, paths, q, state);
        }
        // The month's growth is all in its drift (LaneState::drifts).
        return [[1.0; LANES]; 4];
    }
    let mut growth = draws.market_normals(lanes, q, t, months_left);
    if market.inflation.is_some() {
        // The market's normals Z_t (before they become shocks) and the model's own Z'_t.
        state.shocks = growth;
        own_normals(lanes, paths, q, state);
    }
    match (&market.student_t, &market.regimes) {
        (None, None) => {
            for (j, g) in growth.iter_mut().enumerate().take(months_left) {
                normal::exp_scaled_lanes(market.volatility[t + j], g);
            }
        }
        (None, Some(chain)) => {
            // Months t … t+3 (t = 4q) take their uniforms from one block.
            let uniforms = lanes.words_at(paths, [q as u32, regime::REGIME_STREAM, 0]);
            let horizon = market.horizon as usize;
            for (j, g) in growth.iter_mut().enumerate().take(months_left) {
                chain.step_lanes(t + j == 0, &uniforms[j], &mut state.regime);
                state.month_regimes[j] = state.regime;
                let vols = RegimeChain::select_lanes(
                    &state.regime,
                    |k| market.volatility[k * horizon + t + j],
                    chain.count(),
                );
                normal::exp_scaled_each(&vols, g);
            }
        }
        (Some(model), _) => {
            // Months t, t+1 and t+2, t+3 (t is even) share a block for their first proposals.
            let pair = |k: usize| {
                let block = lanes.words_at(paths, [(t / 2 + k) as u32, student_t::FIRST_STREAM, 0]);
                student_t::first_proposals_lanes(&block, model)
            };
            let [a, b] = pair(0);
            let [c, d] = if months_left > 2 { pair(1) } else { [a, b] };
            let first = [a, b, c, d];
            for (j, g) in growth.iter_mut().enumerate().take(months_left) {
                let month = (t + j) as u32;
                let v = student_t::mixing_lanes(
                    first[j],
                    |pair| lanes.words_at(paths, [month, student_t::RETRY_STREAM, pair]),
                    model,
                );
                let clamped = student_t::shock_lanes(g, &v, market.volatility[t + j], model);
                for (c, &hit) in state.clamps.iter_mut().zip(&clamped) {
                    *c += u32::from(hit);
                }
            }
        }
    }
    growth
}

/// A lane group's market months for a household plan's loop (`crate::plan::simulate`):
/// the goals' [`quad_growth`] and [`LaneState`] over the plan's market, so that every model
/// draws the same numbers, with the same arithmetic, for plans as for goals. The plan's
/// growth of month t is drift·shock, lane by lane, as a goal's.
pub(crate) struct MarketLanes<'a> {
    market: MarketView<'a>,
    /// §1's lognormal market: its month's shock is exp(vol·Z), taken month by month (the same
    /// operations as [`quad_growth`]'s; each month's `exp` beside its use runs the plans' loop
    /// measurably faster, benches/RESULTS.md).
    lognormal: bool,
    state: LaneState,
    shocks: [[f32; LANES]; 4],
}

impl<'a> MarketLanes<'a> {
    pub(crate) fn new(market: MarketView<'a>) -> Self {
        MarketLanes {
            state: LaneState::new(&market),
            lognormal: market.student_t.is_none()
                && market.regimes.is_none()
                && market.bootstrap.is_none()
                && market.inflation.is_none(),
            market,
            shocks: [[0.0; LANES]; 4],
        }
    }

    /// Draw the quad of months from `t` (a multiple of 4, below the market's horizon).
    #[inline(always)]
    pub(crate) fn quad(&mut self, lanes: &impl LaneKernel, paths: &[u32; LANES], t: u32) {
        let t = t as usize;
        if self.lognormal {
            let [w0, w1, w2, w3] = lanes.words(paths, (t / 4) as u32);
            let [z0, z1, z2, z3] = &mut self.shocks;
            normal::box_muller_lanes(&w0, &w1, z0, z1);
            normal::box_muller_lanes(&w2, &w3, z2, z3);
            return;
        }
        let months_left = (self.market.horizon as usize - t).min(4);
        let market = self.market;
        self.shocks = quad_growth(
            lanes,
            &market,
            &LaneDraws::philox(paths),
            t / 4,
            t,
            months_left,
            &mut self.state,
        );
    }

    /// Under per-asset paths, whose shocks are the portfolio's own
    /// ([`super::PortfolioLanes`]): the quad's draws that the price index needs, AR(1)'s own
    /// normals (its correlation is 0 there, validate.rs, so the market normals it would read
    /// stay the zeros they start as).
    #[inline(always)]
    pub(crate) fn index_quad(&mut self, lanes: &impl LaneKernel, paths: &[u32; LANES], t: u32) {
        if self.market.inflation.is_some() {
            own_normals(lanes, paths, (t / 4) as usize, &mut self.state);
        }
    }

    /// Each lane's growth of month `t` (of the quad drawn last): its drift times its shock.
    #[inline(always)]
    pub(crate) fn growth(&self, t: u32) -> [f64; LANES] {
        let (j, t) = ((t % 4) as usize, t as usize);
        if self.lognormal {
            let mut shock = self.shocks[j];
            normal::exp_scaled_lanes(self.market.volatility[t], &mut shock);
            let drift = self.market.drift[t];
            return std::array::from_fn(|l| drift * f64::from(shock[l]));
        }
        let drift = self.state.drifts(&self.market, j, t);
        std::array::from_fn(|l| drift[l] * f64::from(self.shocks[j][l]))
    }

    /// Under a stochastic index, step each lane's index past month `t` (of the quad drawn
    /// last), as a goal's kernel does after its month.
    #[inline(always)]
    pub(crate) fn advance_index(&mut self, t: u32) {
        let market = self.market;
        self.state
            .advance_index(&market, (t % 4) as usize, t as usize);
    }

    /// Under a stochastic index, each lane's I at the last year end: the index that scales
    /// the year's money (docs/model.md §4.4's I_{12⌊t/12⌋}).
    #[inline(always)]
    pub(crate) fn year_index(&self) -> Option<&[f64; LANES]> {
        self.state.index.as_ref().map(|index| &index.year_index)
    }

    /// Under a stochastic index, each lane's I at the end of the month stepped last: AR(1)'s
    /// year-end index times F of the year's product so far (the goal kernel's I at its
    /// horizon; at a year end the product starts again from 1 and I is the year-end index),
    /// or the history's index, which steps every month.
    pub(crate) fn index_now(&self) -> Option<[f64; LANES]> {
        let index = self.state.index.as_ref()?;
        Some(if self.market.inflation.is_some() {
            index.between_closes()
        } else {
            index.index
        })
    }
}

/// The AR(1) model's own normals Z' of quad `q`'s months, into `state.own`.
#[inline(always)]
pub(super) fn own_normals(
    lanes: &impl LaneKernel,
    paths: &[u32; LANES],
    q: usize,
    state: &mut LaneState,
) {
    let [w0, w1, w2, w3] = lanes.words_at(paths, [q as u32, INFLATION_STREAM, 0]);
    let [o0, o1, o2, o3] = &mut state.own;
    normal::box_muller_lanes(&w0, &w1, o0, o1);
    normal::box_muller_lanes(&w2, &w3, o2, o3);
}

/// Quad `q`'s history rows under a bootstrap (crate::bootstrap), and each month's growth
/// g_s(row) and inflation factor 1 + π(row) into `state`.
#[inline(always)]
fn bootstrap_quad(
    lanes: &impl LaneKernel,
    boot: &bootstrap::Bootstrap,
    paths: &[u32; LANES],
    q: usize,
    t: usize,
    months_left: usize,
    state: &mut LaneState,
) {
    let starts = lanes.words_at(paths, [q as u32, BOOTSTRAP_STREAM, 0]);
    let draws = if boot.stationary {
        lanes.words_at(paths, [q as u32, BOOTSTRAP_STREAM, 1])
    } else {
        [[0; LANES]; 4]
    };
    for j in 0..months_left {
        let month = t + j;
        let table = &boot.growth[boot.month_table[month] as usize..];
        for l in 0..LANES {
            let row =
                bootstrap::next_row(boot, state.row[l], month as u32, starts[j][l], draws[j][l]);
            state.row[l] = row;
            state.gross[j][l] = table[row as usize];
        }
        if let Some(factors) = &boot.inflation {
            state.prices[j] = std::array::from_fn(|l| factors[state.row[l] as usize]);
        }
    }
}

/// The affine pass of a goal without withdrawals: for each path, terminal wealth W_T at the
/// goal's own contributions and B_T, the terminal wealth of contributing `unit[t]` from
/// nothing. No path can deplete, so W_T is affine in the contribution scale k:
/// W_T(k) = (W_T − B_T) + k·B_T when `unit` is the goal's schedule at one unit. Both tracks
/// share every random number, and W_T has the bits [`simulate_lanes`] computes.
#[inline(always)]
pub(super) fn affine_lanes(
    lanes: &impl LaneKernel,
    job: &AffineJob,
    wealth: &mut [f64],
    per_unit: &mut [f64],
) {
    let goal = job.goal;
    let market = goal.market();
    let horizon = goal.horizon as usize;
    let quads = horizon.div_ceil(4);
    for group in (0..job.count).step_by(LANES) {
        let paths: [u32; LANES] = std::array::from_fn(|l| (job.first + group + l) as u32);
        let mut w = [goal.initial_wealth; LANES];
        let mut u = [0.0f64; LANES];
        let mut t = 0usize;
        // The solvers report no clamped months.
        let mut lane_state = LaneState::new(&market);
        for q in 0..quads {
            let months_left = (horizon - t).min(4);
            let draws = LaneDraws::philox(&paths);
            let growth = quad_growth(lanes, &market, &draws, q, t, months_left, &mut lane_state);
            for (j, g) in growth[..months_left].iter().enumerate() {
                if goal.regimes.is_some() || goal.bootstrap.is_some() {
                    let drift = lane_state.drifts(&market, j, t);
                    grow(&mut w, g, goal.contribution[t], |l| drift[l]);
                    grow(&mut u, g, job.unit[t], |l| drift[l]);
                } else {
                    lanes.grow(&mut w, g, goal.contribution[t], goal.drift[t]);
                    lanes.grow(&mut u, g, job.unit[t], goal.drift[t]);
                }
                lane_state.advance_index(&market, j, t);
                t += 1;
            }
        }
        if let (Some(index), Some(_)) = (&lane_state.index, goal.target_real) {
            // A real target: both tracks in today's money, W_T / I_T (affine in k still).
            for l in 0..LANES {
                w[l] /= index.index[l];
                u[l] /= index.index[l];
            }
        }
        wealth[group..group + LANES].copy_from_slice(&w);
        per_unit[group..group + LANES].copy_from_slice(&u);
    }
}

/// One block of [`affine_lanes`]: which goal, its unit schedule, its Philox keys and paths
/// `first .. first + count`.
pub(super) struct AffineJob<'a> {
    pub(super) goal: &'a PreparedGoal,
    pub(super) unit: &'a [f64],
    pub(super) keys: [[u32; 2]; ROUNDS],
    pub(super) first: usize,
    pub(super) count: usize,
}

#[multiversion(targets("x86_64+sse4.1"))]
pub(super) fn affine_block_portable(job: &AffineJob, wealth: &mut [f64], per_unit: &mut [f64]) {
    affine_lanes(&PortableLanes(&job.keys), job, wealth, per_unit);
}

/// One month before any withdrawal, when no path can be depleted: W ← (W + c)·G, the same
/// arithmetic as [`step`] takes on a live path with d = 0.
/// `drift(l)` is lane l's drift (the month's, or its regime's).
#[inline(always)]
fn grow(
    wealth: &mut [f64; LANES],
    shock: &[f32; LANES],
    contribution: f64,
    drift: impl Fn(usize) -> f64,
) {
    for l in 0..LANES {
        let growth = drift(l) * f64::from(shock[l]);
        wealth[l] = (wealth[l] + contribution) * growth;
    }
}

/// One month of docs/model.md §1 for a lane group, given each lane's exp(vol·Z) and drift.
/// `withdrawal` is the month's d (whether it withdraws at all) and each lane's amount (d, or
/// d scaled by the lane's index under stochastic inflation).
#[inline(always)]
fn step(
    wealth: &mut [f64; LANES],
    depleted_at: &mut [f64; LANES],
    shock: &[f32; LANES],
    t: usize,
    contribution: f64,
    withdrawal: (f64, impl Fn(usize) -> f64),
    drift: impl Fn(usize) -> f64,
) {
    let month = t as f64;
    let (base, amount) = withdrawal;
    let withdrawing = base > 0.0;
    for l in 0..LANES {
        let growth = drift(l) * f64::from(shock[l]);
        let x = wealth[l] + contribution - amount(l);
        let dead = depleted_at[l] >= 0.0;
        let newly = !dead & withdrawing & (x <= 0.0);
        depleted_at[l] = if newly { month } else { depleted_at[l] };
        wealth[l] = if dead | newly { 0.0 } else { x * growth };
    }
}
