//! The month loop of docs/model.md §5 on the CPU, in f64. Every figure a plan reports comes
//! from here.
//!
//! Paths run in groups of [`LANES`] in lockstep, held as structure-of-arrays: each monthly step
//! is a loop over the lanes with §5's branches written as selects, so LLVM vectorises it, and
//! the steps a year takes once (its tax, the spending rule, RMDs) run lane by lane. Deaths are
//! drawn first, from their own stream, and paths are grouped by the month they end, so a group's
//! lanes run nearly the same months; a lane that has ended keeps computing until its group
//! does, but its outcome was taken when it ended and nothing it does later is recorded. A path's
//! numbers do not depend on its group or its lane: one path alone ([`run_path`]) gives the same
//! bits on every CPU kernel (tested).
//!
//! The portfolio's shock is §1's stream (counter (path, ⌊t/4⌋, 0, 0)) and its growth the same
//! arithmetic as the goal kernel's, `W·(exp(m/12)·exp(vol·Z))`, so that a plan with one person,
//! one taxable account and no tax reproduces the goal with the same cash flows bit for bit
//! (tested). Deaths come from the mortality stream of [`super::lifetime`]. Under per-asset
//! paths (docs/model.md §4.5) the household's accounts hold one portfolio of the assets whose
//! mix drifts, trades and grows as a per-asset goal's holdings do
//! ([`crate::backend::cpu::PortfolioLanes`]), so such a plan reproduces that goal too.

// The lane loops index several arrays in lockstep (`for l in 0..L`), the form LLVM vectorises.
#![allow(clippy::needless_range_loop)]

use multiversion::multiversion;
use rayon::prelude::*;

use super::lifetime;
use super::prepare::{Order, PreparedPlan, Rule};
use super::request::{AccountKind, DEFAULT_ORDER};
use super::rmd;
use super::tax::year_tax;
#[cfg(target_arch = "x86_64")]
use crate::backend::cpu::{Avx2Lanes, Avx512Lanes};
use crate::backend::cpu::{LaneKernel, MarketLanes, PortableLanes, PortfolioLanes};
use crate::backend::{BackendError, CpuKernel, Watch};
use crate::philox;

/// Paths per unit of parallel work (and between checks for cancellation).
const CHUNK_PATHS: usize = 512;

/// Paths per lane group: the goals' ([`crate::backend::cpu::LANES`]), whose market months
/// the plans' loop shares.
use crate::backend::cpu::LANES;

/// A lane's `failed_at` while its path has not failed.
const NEVER: u32 = u32::MAX;

/// What one path of a plan came to.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PathOutcome {
    /// The month the path ended: the first month with nobody alive (at most the horizon).
    pub end_month: u32,
    /// The month the accounts could not pay an essential need, if they ever failed.
    pub failed_at: Option<u32>,
    /// Nominal wealth left at the end, less the tax still owed.
    pub estate: f64,
    /// The accounts' total at the end, before the tax still owed comes out.
    pub estate_accounts: f64,
    /// The part of those accounts that is tax-deferred.
    pub estate_tax_deferred: f64,
    /// Every year's tax, the last one's included (nominal).
    pub taxes: f64,
    /// Bit g: goal g fell due while someone was alive; was paid.
    pub goals_due: u64,
    pub goals_paid: u64,
    /// A guardrail cut or discretionary spending left unpaid.
    pub spending_cut: bool,
    pub guardrail_cuts: u32,
    pub guardrail_raises: u32,
    /// Under Student-t months: the months of its life whose return was clamped at −100%
    /// (docs/model.md §4.1), which empty every account; 0 under other models.
    pub clamped_months: u32,
    /// Each person's death month (plan months).
    pub deaths: [u32; 2],
    /// The price index at the path's end, I_end: its estate in today's money is
    /// `estate / end_index` ((1+i)^(end/12) under a deterministic rate).
    pub end_index: f64,
    /// Under per-asset paths (docs/model.md §4.5): the times its portfolio was traded back to
    /// its weights, and the sum of those trades' one-sided turnover; 0 otherwise.
    pub rebalances: u32,
    pub turnover: f64,
}

/// Every path's outcome, with two yearly samples per path: total wealth at month 12(y+1) and
/// the real spending of year y, NaN once the path has ended.
#[derive(Debug, Clone)]
pub struct PlanSamples {
    /// Path p's outcome at index p.
    pub outcomes: Vec<PathOutcome>,
    /// Years per path in the two tables below: ⌈horizon / 12⌉ (0 when they were skipped).
    pub years: usize,
    /// Row-major, one row of `years` per path, in the order the paths ran (grouped by their
    /// end; the fan charts do not depend on the order): row i is path `row_paths[i]`'s.
    pub wealth: Vec<f32>,
    pub real_spending: Vec<f32>,
    /// Under a stochastic index, each path's wealth in today's money, W / I, laid out as
    /// `wealth`; empty otherwise (the real fan chart is then the nominal one over I_y).
    pub real_wealth: Vec<f32>,
    pub row_paths: Vec<u32>,
    /// The fan charts' percentiles of each year, where a GPU reduced the tables on the device
    /// ([`Yearly::Percentiles`]; the tables are then empty); otherwise empty, and the result
    /// reduces the tables.
    pub reduced: Vec<ReducedYear>,
}

/// One plan year's two fan-chart columns (wealth at its end, its real spending) over the
/// paths still running then, reduced to the plan's percentiles, in the plan's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ReducedYear {
    /// Paths with a wealth value that year (someone alive).
    pub running: u64,
    /// Absent when no path ran.
    pub wealth: Option<Vec<f64>>,
    pub real_spending: Option<Vec<f64>>,
    /// Under a stochastic index, the real wealth's percentiles (absent otherwise).
    pub real_wealth: Option<Vec<f64>>,
}

/// Run every path of `plan` on the widest CPU kernel, reporting progress to `watch` and
/// stopping when it is cancelled.
pub fn simulate_plan(plan: &PreparedPlan, watch: &Watch) -> Result<PlanSamples, BackendError> {
    simulate_plan_on(plan, watch, CpuKernel::widest(), Yearly::Samples)
}

/// Whether a simulation keeps each path's yearly samples (the fan charts), or only its
/// outcome (what the solvers compare: success, estate, taxes), which costs less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Yearly {
    /// Every path's yearly samples, as tables.
    Samples,
    /// Only the fan charts' percentiles of the samples: a GPU reduces them on the device and
    /// sends back a few values a year ([`PlanSamples::reduced`]); the CPU keeps the tables,
    /// which the result reduces to the same numbers.
    Percentiles,
    Skip,
}

impl Yearly {
    /// Yearly samples each path of `plan` writes.
    pub(crate) fn years_of(self, plan: &PreparedPlan) -> usize {
        match self {
            Yearly::Samples | Yearly::Percentiles => sample_years(plan),
            Yearly::Skip => 0,
        }
    }
}

/// [`simulate_plan`] on a chosen kernel, which must be supported here
/// ([`CpuKernel::is_supported`]); every kernel gives the same bits. With [`Yearly::Skip`] the
/// samples' tables are empty (`years` is 0) and the outcomes are the same.
pub fn simulate_plan_on(
    plan: &PreparedPlan,
    watch: &Watch,
    kernel: CpuKernel,
    yearly: Yearly,
) -> Result<PlanSamples, BackendError> {
    let paths = plan.paths as usize;
    let years = yearly.years_of(plan);
    let layout = Layout::of(plan);
    // Deaths first: a path's end decides its group.
    let lanes = lanes_by_end(plan);

    let mut sorted = vec![PathOutcome::default(); paths];
    let mut wealth = vec![f32::NAN; paths * years];
    let mut real_spending = vec![f32::NAN; paths * years];
    let real_years = if plan.stochastic_index() { years } else { 0 };
    let mut real_wealth = vec![f32::NAN; paths * real_years];
    sorted
        .par_chunks_mut(CHUNK_PATHS)
        .zip(chunk_rows(&mut wealth, paths, years))
        .zip(chunk_rows(&mut real_spending, paths, years))
        .zip(chunk_rows(&mut real_wealth, paths, real_years))
        .zip(lanes.par_chunks(CHUNK_PATHS))
        .for_each(|((((outcomes, wealth), spending), real_wealth), chunk)| {
            if watch.is_cancelled() {
                return;
            }
            for (g, group) in chunk.chunks(LANES).enumerate() {
                let first = g * LANES;
                let rows = |per: usize| first * per..(first + group.len()) * per;
                let rows = YearlyRows {
                    wealth: &mut wealth[rows(years)],
                    real_spending: &mut spending[rows(years)],
                    real_wealth: &mut real_wealth[rows(real_years)],
                };
                run_group_on(
                    kernel,
                    plan,
                    &layout,
                    group,
                    &mut outcomes[first..first + group.len()],
                    rows,
                );
            }
            watch.advance(chunk.iter().map(|lane| u64::from(lane.end)).sum());
        });
    if watch.is_cancelled() {
        return Err(BackendError::Cancelled);
    }

    // The outcomes back in path order; the tables' rows stay in the order the paths ran.
    let mut outcomes = vec![PathOutcome::default(); paths];
    for (lane, outcome) in lanes.iter().zip(sorted) {
        outcomes[lane.path as usize] = outcome;
    }
    Ok(PlanSamples {
        outcomes,
        years,
        wealth,
        real_spending,
        real_wealth,
        row_paths: lanes.iter().map(|lane| lane.path).collect(),
        reduced: Vec::new(),
    })
}

/// One path of docs/model.md §5 alone (a group of one lane). `wealth` and `real_spending`
/// receive the path's yearly samples (left as they are after it ends).
pub fn run_path(
    plan: &PreparedPlan,
    path: u32,
    wealth: &mut [f32],
    real_spending: &mut [f32],
) -> PathOutcome {
    let years = sample_years(plan);
    let mut outcome = [PathOutcome::default()];
    let keys = philox::round_keys(philox::key_of_seed(plan.seed));
    let rows = YearlyRows {
        wealth: &mut wealth[..years],
        real_spending: &mut real_spending[..years],
        real_wealth: &mut [],
    };
    run_group_of(
        plan,
        &Layout::of(plan),
        &[Lane::of(plan, path)],
        &mut outcome,
        rows,
        &PortableLanes(&keys),
    );
    outcome[0]
}

/// A lane group's rows of the yearly samples' tables, one row of `years` per path (empty when
/// skipped; `real_wealth` is empty but under a stochastic index).
struct YearlyRows<'a> {
    wealth: &'a mut [f32],
    real_spending: &'a mut [f32],
    real_wealth: &'a mut [f32],
}

/// Each chunk's rows of a samples table of `years` per path: empty rows when the samples are
/// skipped (`years` 0).
fn chunk_rows(table: &mut [f32], paths: usize, years: usize) -> Vec<&mut [f32]> {
    if years == 0 {
        (0..paths.div_ceil(CHUNK_PATHS))
            .map(|_| <&mut [f32]>::default())
            .collect()
    } else {
        table.chunks_mut(CHUNK_PATHS * years).collect()
    }
}

/// Years per path in the samples' tables.
pub(crate) fn sample_years(plan: &PreparedPlan) -> usize {
    plan.horizon.div_ceil(12).max(1) as usize
}

/// A path and its lifetimes, drawn before its months run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lane {
    pub(crate) path: u32,
    /// Each person's death month (0 for a second person who does not exist).
    pub(crate) deaths: [u32; 2],
    /// The first month with nobody alive.
    pub(crate) end: u32,
}

/// Every path's lifetimes, drawn from the mortality streams, sorted by the month each path ends
/// (the order the paths run in: a group's lanes, or a GPU warp's threads, end together).
pub(crate) fn lanes_by_end(plan: &PreparedPlan) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = (0..plan.paths as u32)
        .into_par_iter()
        .map(|path| Lane::of(plan, path))
        .collect();
    lanes.sort_by_key(|lane| lane.end);
    lanes
}

impl Lane {
    fn of(plan: &PreparedPlan, path: u32) -> Lane {
        let mut deaths = [0u32; 2];
        for (p, person) in plan.people.iter().enumerate() {
            let u = lifetime::mortality_uniform(plan.seed, path, p as u32);
            deaths[p] =
                lifetime::death_month(&person.longevity, person.age_months, u).min(plan.horizon);
        }
        let end = if plan.people.len() == 2 {
            deaths[0].max(deaths[1])
        } else {
            deaths[0]
        };
        Lane { path, deaths, end }
    }
}

/// What the month loop reads of a plan, worked out once for all its paths: each account's
/// kind, the withdrawal orders flattened into lists of accounts, and the amounts every path
/// shares month by month (the same expressions the loop would evaluate, so the same bits).
/// (The GPU kernels read the same tables, packed by [`super::packed`].)
pub(crate) struct Layout {
    pub(crate) kinds: Vec<AccountKind>,
    /// The plan's own sequence of kinds, account by account.
    pub(crate) sequence: Vec<usize>,
    /// [`DEFAULT_ORDER`], account by account.
    pub(crate) default: Vec<usize>,
    /// The tax-deferred accounts (bracket fill's first draw, and RMDs).
    pub(crate) tax_deferred: Vec<usize>,
    /// I_y of each plan year.
    pub(crate) index: Vec<f64>,
    /// Contribution c's amount in year y, at `[y · contributions + c]`.
    pub(crate) contribution: Vec<f64>,
    /// Income i's amount in year y before its survivor scale, at `[y · incomes + i]`.
    pub(crate) income: Vec<f64>,
    /// Each person's own Social Security benefit in month t (0 before the claim, and for a
    /// person the plan does not have).
    pub(crate) benefit: Vec<[f64; 2]>,
    /// The goals due in month t, one bit each.
    pub(crate) goals_due: Vec<u64>,
}

impl Layout {
    pub(crate) fn of(plan: &PreparedPlan) -> Layout {
        let kinds: Vec<AccountKind> = plan.accounts.iter().map(|a| a.kind).collect();
        let kinds_ref = &kinds;
        let in_order = |order: &[AccountKind]| -> Vec<usize> {
            order
                .iter()
                .flat_map(|&kind| (0..kinds_ref.len()).filter(move |&a| kinds_ref[a] == kind))
                .collect()
        };
        let sequence = match plan.order {
            Order::Sequence(order) => in_order(&order),
            Order::Proportional | Order::BracketFill { .. } => Vec::new(),
        };
        let default = in_order(&DEFAULT_ORDER);
        let tax_deferred = in_order(&[AccountKind::TaxDeferred]);
        let months = plan.horizon as usize;
        let index: Vec<f64> = (0..=months / 12).map(|y| plan.index(y as u32)).collect();
        let contribution = index
            .iter()
            .enumerate()
            .flat_map(|(year, _)| {
                plan.contributions
                    .iter()
                    .map(move |c| c.amount * (1.0 + c.growth).powi(year as i32))
            })
            .collect();
        let income = index
            .iter()
            .flat_map(|&i| {
                plan.incomes
                    .iter()
                    .map(move |income| income.amount * if income.indexed { i } else { 1.0 })
            })
            .collect();
        let benefit = (0..months as u32)
            .map(|t| {
                let i = index[t as usize / 12];
                [
                    social_security(plan, 0, t, i),
                    social_security(plan, 1, t, i),
                ]
            })
            .collect();
        let goals_due = (0..months as u32)
            .map(|t| {
                plan.goals
                    .iter()
                    .enumerate()
                    .filter(|(_, goal)| goal.month == t)
                    .fold(0u64, |bits, (g, _)| bits | 1 << g)
            })
            .collect();
        Layout {
            kinds,
            sequence,
            default,
            tax_deferred,
            index,
            contribution,
            income,
            benefit,
            goals_due,
        }
    }
}

/// Run one group (at most `LANES` paths) on `kernel`.
fn run_group_on(
    kernel: CpuKernel,
    plan: &PreparedPlan,
    layout: &Layout,
    group: &[Lane],
    outcomes: &mut [PathOutcome],
    rows: YearlyRows,
) {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller chose a kernel this CPU supports.
        CpuKernel::Avx512 => unsafe { run_group_avx512(plan, layout, group, outcomes, rows) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        CpuKernel::Avx2 => unsafe { run_group_avx2(plan, layout, group, outcomes, rows) },
        _ => run_group_portable(plan, layout, group, outcomes, rows),
    }
}

/// The group loop in portable Rust, vectorised by LLVM for SSE4.1 where the CPU has it.
#[multiversion(targets("x86_64+sse4.1"))]
fn run_group_portable(
    plan: &PreparedPlan,
    layout: &Layout,
    group: &[Lane],
    outcomes: &mut [PathOutcome],
    rows: YearlyRows,
) {
    let keys = philox::round_keys(philox::key_of_seed(plan.seed));
    let lanes = PortableLanes(&keys);
    run_group_of(plan, layout, group, outcomes, rows, &lanes);
}

/// The group loop compiled for AVX2, Philox in AVX2 intrinsics: the same operations, so the
/// same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_group_avx2(
    plan: &PreparedPlan,
    layout: &Layout,
    group: &[Lane],
    outcomes: &mut [PathOutcome],
    rows: YearlyRows,
) {
    let keys = philox::avx2::Keys::new(&philox::round_keys(philox::key_of_seed(plan.seed)));
    // Its Philox inlines into this function, which has AVX2.
    run_group_of(plan, layout, group, outcomes, rows, &Avx2Lanes(keys));
}

/// The group loop compiled for AVX-512 (eight f64 lanes to a register), Philox in AVX-512
/// intrinsics.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
fn run_group_avx512(
    plan: &PreparedPlan,
    layout: &Layout,
    group: &[Lane],
    outcomes: &mut [PathOutcome],
    rows: YearlyRows,
) {
    let keys = philox::avx512::Keys::new(&philox::round_keys(philox::key_of_seed(plan.seed)));
    // Its Philox inlines into this function, which has AVX-512.
    run_group_of(plan, layout, group, outcomes, rows, &Avx512Lanes(keys));
}

/// [`run_group`] compiled twice: with the per-asset portfolio's steps for a plan that holds
/// per-asset paths, and without them for every other plan, whose loop then carries none of
/// their code (with it, monteplan's default plan ran 7% slower, benches/RESULTS.md).
#[inline(always)]
fn run_group_of(
    plan: &PreparedPlan,
    layout: &Layout,
    group: &[Lane],
    outcomes: &mut [PathOutcome],
    rows: YearlyRows,
    lanes: &impl LaneKernel,
) {
    if plan.asset_paths.is_some() {
        run_group::<true>(plan, layout, group, outcomes, rows, lanes);
    } else {
        run_group::<false>(plan, layout, group, outcomes, rows, lanes);
    }
}

/// Whether any lane is set.
#[inline(always)]
fn any<const L: usize>(mask: &[bool; L]) -> bool {
    mask.iter().fold(false, |a, &b| a | b)
}

/// The paths of `group` (1 ≤ len ≤ L) month by month. Lanes past the group's length repeat its
/// last path and are discarded. `outcomes` gets one entry per path; each table of `rows` one
/// row of yearly samples per path. `lanes` gives each lane's Philox words;
/// the market's months are the goals' ([`MarketLanes`]), every model's.
#[inline(always)]
fn run_group<const PER_ASSET: bool>(
    plan: &PreparedPlan,
    layout: &Layout,
    group: &[Lane],
    outcomes: &mut [PathOutcome],
    rows: YearlyRows,
    lanes: &impl LaneKernel,
) {
    const L: usize = LANES;
    let count = group.len();
    debug_assert!((1..=L).contains(&count));
    // Years per row of the samples: none when they are skipped.
    let years = rows.wealth.len() / count;
    let real_years = rows.real_wealth.len() / count;
    let lane = |l: usize| group[l.min(count - 1)];
    let paths: [u32; L] = std::array::from_fn(|l| lane(l).path);
    let deaths: [[u32; 2]; L] = std::array::from_fn(|l| lane(l).deaths);
    let end: [u32; L] = std::array::from_fn(|l| lane(l).end);
    let last_end = end.iter().copied().max().unwrap_or(0);
    let couple = plan.people.len() == 2;
    let spending = &plan.spending;

    let mut house = Household::<L>::new(plan, layout);
    let mut state = Paths::<L>::new();
    let mut market = MarketLanes::new(plan.market());
    // Under per-asset paths, the household's portfolio across the assets: its shocks, trades
    // and growth in place of the market's one portfolio month.
    let mut portfolio = if PER_ASSET {
        plan.asset_paths.as_ref().map(PortfolioLanes::new)
    } else {
        None
    };
    // Each lane's price index of the year, I_{12y}, and of the year before: the plan's rate's
    // (`layout.index`), or under a stochastic index the lane's own, by which the loop scales
    // what is in today's money (spending, goals, brackets) and what is indexed (incomes,
    // benefits: `today`; their layout tables are then in today's money).
    let stochastic = plan.stochastic_index();
    let counts_clamps = plan.student_t.is_some();
    let mut index = [1.0f64; L];
    let mut previous_index = [1.0f64; L];
    // Whether some lane owes last year's tax this month.
    let mut tax_pending = false;

    // The next month in which some lane's path ends.
    let next_end_after = |t: u32| end[..count].iter().copied().filter(|&e| e > t).min();
    let mut next_end = end[..count].iter().copied().min().unwrap_or(0);
    for t in 0..=last_end {
        // A lane whose path ends now: its outcome is what it holds before month t.
        if t == next_end {
            let index_now = market.index_now();
            for l in 0..count {
                if end[l] == t {
                    let end_index = index_now.map_or_else(|| plan.index_at_month(t), |i| i[l]);
                    outcomes[l] =
                        state.outcome(plan, &house, l, &deaths[l], end[l], index[l], end_index);
                }
            }
            next_end = next_end_after(t).unwrap_or(u32::MAX);
        }
        if t == last_end {
            break;
        }
        let year = t / 12;
        if t % 12 == 0 && t > 0 {
            // Close the previous year: its tax falls due now; its samples are recorded.
            previous_index = index;
            index = match market.year_index() {
                Some(lanes) => *lanes,
                None => [layout.index[year as usize]; L],
            };
            house.close_year(plan, &previous_index);
            tax_pending = any(&std::array::from_fn::<_, L, _>(|l| house.tax_due[l] != 0.0));
            for l in 0..L {
                state.last_year_return[l] = state.year_growth[l] - 1.0;
                state.year_growth[l] = 1.0;
            }
            let slot = (year - 1) as usize;
            let total = house.total();
            for l in (0..count).filter(|_| years > 0) {
                if t < end[l] {
                    rows.wealth[l * years + slot] = total[l] as f32;
                    rows.real_spending[l * years + slot] =
                        (state.spent_this_year[l] / previous_index[l]) as f32;
                    if real_years > 0 {
                        rows.real_wealth[l * years + slot] = (total[l] / index[l]) as f32;
                    }
                }
            }
            state.spent_this_year = [0.0; L];
        }
        if t % 4 == 0 {
            match &mut portfolio {
                Some(portfolio) => {
                    portfolio.quad(lanes, &paths, t);
                    market.index_quad(lanes, &paths, t);
                }
                None => market.quad(lanes, &paths, t),
            }
        }

        // Deaths: who is alive this month, and what the household spends on.
        let alive: [[bool; L]; 2] = [
            std::array::from_fn(|l| t < deaths[l][0]),
            std::array::from_fn(|l| couple && t < deaths[l][1]),
        ];
        let survivor_factor: [f64; L] = std::array::from_fn(|l| {
            if couple && !(alive[0][l] & alive[1][l]) {
                spending.survivor_fraction
            } else {
                1.0
            }
        });
        // The year's spending is set in its first month, or when spending starts, from the
        // wealth at the start of the month (which per-asset paths read every month: the
        // month's net cash flow is what they trade).
        let spending_on = t >= spending.start_month;
        let sets_spending = spending_on && (t == spending.start_month || t % 12 == 0);
        let wealth_at_start = if sets_spending || portfolio.is_some() {
            house.total()
        } else {
            [0.0; L]
        };
        let failed: [bool; L] = std::array::from_fn(|l| state.failed_at[l] != NEVER);

        // Contributions (none into a failed path's accounts: they stay empty).
        let contributions = plan.contributions.len();
        if contributions > 0 {
            let saving: [[bool; L]; 2] = [
                std::array::from_fn(|l| alive[0][l] & !failed[l]),
                std::array::from_fn(|l| alive[1][l] & !failed[l]),
            ];
            for (k, c) in plan.contributions.iter().enumerate() {
                if t >= c.end_month {
                    continue;
                }
                let amount = layout.contribution[year as usize * contributions + k];
                house.deposit(c.account, &[amount; L], &saving[c.owner]);
            }
        }

        // Incomes and Social Security. A month without either leaves cash and income at zero
        // on every lane, and the steps below that only move cash are skipped.
        let mut cash = [0.0f64; L];
        let mut taxable_income = [0.0f64; L];
        let mut has_cash = false;
        let today: [f64; L] = if stochastic { index } else { [1.0; L] };
        let incomes = plan.incomes.len();
        for (k, income) in plan.incomes.iter().enumerate() {
            if t < income.start_month || t >= income.end_month {
                continue;
            }
            has_cash = true;
            let base = layout.income[year as usize * incomes + k];
            let (own, other) = (&alive[income.owner], &alive[1 - income.owner]);
            for l in 0..L {
                let scale = if own[l] {
                    1.0
                } else if other[l] {
                    income.survivor_fraction
                } else {
                    0.0
                };
                let amount = base * scale * if income.indexed { today[l] } else { 1.0 };
                cash[l] += amount;
                if income.taxable {
                    taxable_income[l] += amount;
                }
            }
        }
        let own_benefit = layout.benefit[t as usize];
        let mut benefits = [0.0f64; L];
        let has_benefits = own_benefit != [0.0; 2];
        has_cash |= has_benefits;
        for p in 0..if has_benefits { plan.people.len() } else { 0 } {
            let (own, other) = (own_benefit[p], own_benefit[1 - p]);
            for l in 0..L {
                // The survivor keeps the larger of the two benefits.
                let benefit = if couple && !alive[1 - p][l] {
                    own.max(other)
                } else {
                    own
                };
                if alive[p][l] {
                    benefits[l] += benefit * today[l];
                }
            }
        }
        let social_security_taxable = plan.tax.as_ref().map(|tax| tax.social_security_taxable);
        if has_cash {
            for l in 0..L {
                cash[l] += benefits[l];
                if let Some(share) = social_security_taxable {
                    taxable_income[l] += benefits[l] * share;
                }
                house.ordinary[l] += taxable_income[l];
            }
        }

        // Spending for the year.
        if sets_spending {
            let first = t == spending.start_month;
            for l in 0..L {
                let (spend, adjustment) = yearly_spending(
                    plan,
                    state.spend[l],
                    &mut state.initial_rate[l],
                    state.last_year_return[l],
                    first,
                    wealth_at_start[l],
                    index[l],
                    previous_index[l],
                    youngest_living_age(plan, &[alive[0][l], alive[1][l]], t),
                );
                state.spend[l] = spend;
                match adjustment {
                    Adjustment::Cut => {
                        state.guardrail_cuts[l] += 1;
                        state.spending_cut[l] = true;
                    }
                    Adjustment::Raise => state.guardrail_raises[l] += 1,
                    Adjustment::None => {}
                }
            }
        }
        let mut essential_spending = [0.0f64; L];
        let mut discretionary = [0.0f64; L];
        if spending_on {
            for l in 0..L {
                let essential = spending.essential * index[l] * survivor_factor[l];
                essential_spending[l] = essential;
                discretionary[l] = (state.spend[l] * survivor_factor[l] - essential).max(0.0);
            }
        }

        // Needs: essential spending, essential goals due, last year's tax.
        let mut essential_goals = [0.0f64; L];
        let mut essential_due = 0u64;
        let mut flexible_due = false;
        let due = layout.goals_due[t as usize];
        if due != 0 {
            state.goals_due |= due;
            for (g, goal) in plan.goals.iter().enumerate() {
                if due & 1 << g == 0 {
                    continue;
                }
                if goal.essential {
                    for l in 0..L {
                        essential_goals[l] += goal.amount * index[l];
                    }
                    essential_due |= 1 << g;
                } else {
                    flexible_due = true;
                }
            }
        }
        // The cash pays first; the accounts pay the rest unless that would empty them.
        // Once failed, the accounts are empty and only the cash pays. A month with nothing to
        // pay on any lane (no spending yet, no essential goal, no tax due) meets its needs
        // with the cash untouched.
        let has_needs = spending_on || essential_due != 0 || tax_pending;
        tax_pending = false;
        let mut draw = [0.0f64; L];
        let mut met = [true; L];
        let mut paid_spending = [0.0f64; L];
        if has_needs {
            let total = house.total();
            let mut fails = [false; L];
            for l in 0..L {
                let need = essential_spending[l] + essential_goals[l] + house.tax_due[l];
                house.tax_due[l] = 0.0;
                let cash_before = cash[l];
                let covered = cash[l] >= need;
                let short = need - cash[l];
                // Everything is withdrawn (with its tax) and the path fails.
                fails[l] = !covered && !failed[l] && total[l] - short <= 0.0;
                let draws = !covered && !failed[l] && !fails[l];
                cash[l] = if covered { cash[l] - need } else { 0.0 };
                draw[l] = if fails[l] {
                    total[l]
                } else if draws {
                    short
                } else {
                    0.0
                };
                met[l] = covered || draws;
                // Essential spending is paid in full when the needs are met, else from the cash.
                paid_spending[l] = if met[l] {
                    essential_spending[l]
                } else {
                    cash_before.min(essential_spending[l])
                };
            }
            house.withdraw(plan, &draw, &index);
            if any(&fails) {
                house.deplete(&fails);
                for l in 0..L {
                    if fails[l] {
                        state.failed_at[l] = t;
                    }
                }
            }
        }
        if essential_due != 0 {
            for l in 0..L {
                if met[l] {
                    state.goals_paid[l] |= essential_due;
                }
            }
        }
        // Discretionary spending, as far as the cash and the accounts allow.
        if spending_on && any(&std::array::from_fn::<_, L, _>(|l| discretionary[l] > 0.0)) {
            let total = house.total();
            for l in 0..L {
                let wanted = discretionary[l];
                let on = wanted > 0.0;
                let from_cash = cash[l].min(wanted);
                let need = wanted - from_cash;
                let take = need.min(total[l].max(0.0));
                draw[l] = if on && take > 0.0 { take } else { 0.0 };
                if on {
                    cash[l] -= from_cash;
                    state.spending_cut[l] |= take < need;
                    paid_spending[l] += from_cash + take;
                }
            }
            house.withdraw(plan, &draw, &index);
        }
        // Flexible goals: paid only if what is left covers the reserve.
        if flexible_due {
            let reserve: [f64; L] = std::array::from_fn(|l| {
                plan.flexible_reserve_years
                    * 12.0
                    * spending.essential
                    * index[l]
                    * survivor_factor[l]
            });
            for (g, goal) in plan.goals.iter().enumerate() {
                if goal.month != t || goal.essential {
                    continue;
                }
                let amount: [f64; L] = std::array::from_fn(|l| goal.amount * index[l]);
                let total = house.total();
                for l in 0..L {
                    let pays = total[l] + cash[l] - amount[l] >= reserve[l];
                    let from_cash = cash[l].min(amount[l]);
                    draw[l] = if pays && amount[l] > from_cash {
                        amount[l] - from_cash
                    } else {
                        0.0
                    };
                    if pays {
                        cash[l] -= from_cash;
                        state.goals_paid[l] |= 1 << g;
                    }
                }
                house.withdraw(plan, &draw, &index);
            }
        }
        // A surplus is saved in the taxable account (a failed path spends it).
        let running = || -> [bool; L] { std::array::from_fn(|l| state.failed_at[l] == NEVER) };
        if has_cash {
            let running = running();
            let saves: [bool; L] = std::array::from_fn(|l| running[l] && cash[l] > 0.0);
            if any(&saves) {
                house.deposit(plan.cash_account, &cash, &saves);
            }
        }
        // RMDs in the year's last month.
        if t % 12 == 11 {
            house.take_rmds(plan, &alive, &running(), t);
        }
        if spending_on {
            for l in 0..L {
                state.spent_this_year[l] += paid_spending[l];
            }
        }

        // Growth: the market's month (a goal's, docs/model.md §1, §4) on every account; under
        // per-asset paths the month's trades first, then the portfolio's growth (§4.5).
        let growth = match &mut portfolio {
            Some(portfolio) => {
                let running = running();
                portfolio.trade(
                    t as usize,
                    &wealth_at_start,
                    &house.total(),
                    &running,
                    &mut state.rebalances,
                    &mut state.turnover,
                );
                portfolio.growth(t as usize)
            }
            None => market.growth(t),
        };
        for l in 0..L {
            state.year_growth[l] *= growth[l];
        }
        if counts_clamps {
            // A clamped Student-t month, and only one, grows the accounts by 0 (its lane's
            // count after its end is never read: its outcome was taken then).
            for l in 0..L {
                state.clamped[l] += u32::from(growth[l] == 0.0);
            }
        }
        house.grow(&growth);
        market.advance_index(t);
    }
}

/// Person `p`'s own benefit in month `t`, 0 before the claim (and for a person the plan does
/// not have).
fn social_security(plan: &PreparedPlan, p: usize, t: u32, index: f64) -> f64 {
    plan.benefits
        .iter()
        .find(|b| b.person == p && t >= b.claim_month)
        .map_or(0.0, |b| b.amount * index)
}

/// The age in years of the youngest person alive in month `t`.
fn youngest_living_age(plan: &PreparedPlan, alive: &[bool; 2], t: u32) -> f64 {
    plan.people
        .iter()
        .zip(alive)
        .filter(|(_, &a)| a)
        .map(|(p, _)| f64::from(p.age_months + t) / 12.0)
        .fold(f64::INFINITY, f64::min)
}

/// Each lane's running figures other than its accounts.
struct Paths<const L: usize> {
    failed_at: [u32; L],
    /// Goals that fell due so far: the same on every lane (a lane's bits are read when it ends).
    goals_due: u64,
    goals_paid: [u64; L],
    spending_cut: [bool; L],
    guardrail_cuts: [u32; L],
    guardrail_raises: [u32; L],
    clamped: [u32; L],
    rebalances: [u32; L],
    turnover: [f64; L],
    /// Spending set for the year (household scale, nominal, monthly).
    spend: [f64; L],
    /// WR₀: the first year's withdrawal rate (guardrails).
    initial_rate: [f64; L],
    year_growth: [f64; L],
    last_year_return: [f64; L],
    spent_this_year: [f64; L],
}

impl<const L: usize> Paths<L> {
    fn new() -> Self {
        Paths {
            failed_at: [NEVER; L],
            goals_due: 0,
            goals_paid: [0; L],
            spending_cut: [false; L],
            guardrail_cuts: [0; L],
            guardrail_raises: [0; L],
            clamped: [0; L],
            rebalances: [0; L],
            turnover: [0.0; L],
            spend: [0.0; L],
            initial_rate: [f64::INFINITY; L],
            year_growth: [1.0; L],
            last_year_return: [0.0; L],
            spent_this_year: [0.0; L],
        }
    }

    /// Lane `l`'s outcome at its end: the open year's tax (at the year's index `index`)
    /// comes out of the estate; `end_index` is I at the end.
    #[allow(clippy::too_many_arguments)]
    fn outcome(
        &self,
        plan: &PreparedPlan,
        house: &Household<L>,
        l: usize,
        deaths: &[u32; 2],
        end: u32,
        index: f64,
        end_index: f64,
    ) -> PathOutcome {
        let owed = house.year_tax(plan, l, index);
        let total = house.lane_total(l);
        PathOutcome {
            end_month: end,
            failed_at: (self.failed_at[l] != NEVER).then_some(self.failed_at[l]),
            estate: (total - owed).max(0.0),
            estate_accounts: total.max(0.0),
            estate_tax_deferred: house.lane_tax_deferred(l),
            taxes: house.taxes[l] + owed.min(total.max(0.0)),
            goals_due: self.goals_due,
            goals_paid: self.goals_paid[l],
            spending_cut: self.spending_cut[l],
            guardrail_cuts: self.guardrail_cuts[l],
            guardrail_raises: self.guardrail_raises[l],
            clamped_months: self.clamped[l],
            deaths: *deaths,
            end_index,
            rebalances: self.rebalances[l],
            turnover: self.turnover[l],
        }
    }
}

/// What a guardrail rule did to the year's spending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Adjustment {
    None,
    Cut,
    Raise,
}

/// The monthly spending S_y of docs/model.md §5 for the year starting now (household scale),
/// from last year's `spend`; a guardrail rule sets `initial_rate` in its first year. Public
/// so that the GPU's copy (`shaders/plan.wgsl`) can be checked against it.
#[allow(clippy::too_many_arguments)]
pub fn yearly_spending(
    plan: &PreparedPlan,
    spend: f64,
    initial_rate: &mut f64,
    last_year_return: f64,
    first: bool,
    wealth: f64,
    index: f64,
    previous_index: f64,
    youngest_age: f64,
) -> (f64, Adjustment) {
    let spending = &plan.spending;
    let floor = spending.essential * index;
    let planned = (spending.essential + spending.discretionary) * index;
    let w = wealth.max(0.0);
    let unadjusted = |s: f64| (s, Adjustment::None);
    match spending.rule {
        Rule::Fixed => unadjusted(planned),
        Rule::Percent { rate } => unadjusted(floor.max(rate * w / 12.0)),
        Rule::FloorCeiling { rate, ceiling } => {
            unadjusted((rate * w / 12.0).clamp(floor, ceiling * index))
        }
        Rule::Vpw {
            real_return,
            to_age,
        } => {
            let n = (to_age - youngest_age).ceil().max(1.0);
            let payment = if real_return == 0.0 {
                w / n
            } else {
                w * real_return / (1.0 - (1.0 + real_return).powf(-n))
            };
            unadjusted(floor.max(payment / 12.0))
        }
        Rule::Guardrails {
            upper,
            lower,
            adjust,
            min_years_left,
            planning_age,
        } => {
            if first {
                *initial_rate = if w > 0.0 {
                    12.0 * planned / w
                } else {
                    f64::INFINITY
                };
                return unadjusted(planned);
            }
            let initial = *initial_rate;
            let mut s = spend;
            let rate_before = if w > 0.0 { 12.0 * s / w } else { f64::INFINITY };
            // No inflation raise after a losing year while the rate is above WR₀.
            if !(last_year_return < 0.0 && rate_before > initial) {
                s *= index / previous_index;
            }
            let rate = if w > 0.0 { 12.0 * s / w } else { f64::INFINITY };
            let mut adjustment = Adjustment::None;
            if rate > upper * initial && planning_age - youngest_age > min_years_left {
                s *= 1.0 - adjust;
                adjustment = Adjustment::Cut;
            } else if rate < lower * initial {
                s *= 1.0 + adjust;
                adjustment = Adjustment::Raise;
            }
            (s.max(floor), adjustment)
        }
    }
}

/// A group's accounts and running tax figures, lane by lane. Every update takes a mask of the
/// lanes it applies to and leaves the others' bits as they were.
struct Household<'a, const L: usize> {
    layout: &'a Layout,
    balance: Vec<[f64; L]>,
    basis: Vec<[f64; L]>,
    /// Balances at the end of the previous year (RMDs).
    year_end_balance: Vec<[f64; L]>,
    /// Withdrawn from each tax-deferred account this year (RMDs count what was already taken).
    withdrawn_this_year: Vec<[f64; L]>,
    /// This year's ordinary income and realised gains.
    ordinary: [f64; L],
    gains: [f64; L],
    /// Last year's tax, due in this year's first month.
    tax_due: [f64; L],
    /// Taxes assessed so far.
    taxes: [f64; L],
}

impl<'a, const L: usize> Household<'a, L> {
    fn new(plan: &PreparedPlan, layout: &'a Layout) -> Self {
        let balance: Vec<[f64; L]> = plan.accounts.iter().map(|a| [a.balance; L]).collect();
        Household {
            layout,
            basis: plan.accounts.iter().map(|a| [a.basis; L]).collect(),
            year_end_balance: balance.clone(),
            withdrawn_this_year: vec![[0.0; L]; balance.len()],
            balance,
            ordinary: [0.0; L],
            gains: [0.0; L],
            tax_due: [0.0; L],
            taxes: [0.0; L],
        }
    }

    #[inline(always)]
    fn total(&self) -> [f64; L] {
        let mut sum = [0.0; L];
        for balance in &self.balance {
            for l in 0..L {
                sum[l] += balance[l];
            }
        }
        sum
    }

    fn lane_total(&self, l: usize) -> f64 {
        self.balance.iter().fold(0.0, |sum, b| sum + b[l])
    }

    fn lane_tax_deferred(&self, l: usize) -> f64 {
        self.layout
            .tax_deferred
            .iter()
            .fold(0.0, |sum, &a| sum + self.balance[a][l])
    }

    /// Lane `l`'s tax for this year so far, at price level `index`.
    fn year_tax(&self, plan: &PreparedPlan, l: usize, index: f64) -> f64 {
        match &plan.tax {
            Some(tax) => year_tax(
                &tax.brackets,
                tax.standard_deduction,
                tax.capital_gains_rate,
                self.ordinary[l],
                self.gains[l],
                index,
            ),
            None => 0.0,
        }
    }

    /// The year (at each lane's price level `index`) is over: assess its tax, due next month.
    fn close_year(&mut self, plan: &PreparedPlan, index: &[f64; L]) {
        for l in 0..L {
            let tax = self.year_tax(plan, l, index[l]);
            self.tax_due[l] = tax;
            self.taxes[l] += tax;
        }
        self.ordinary = [0.0; L];
        self.gains = [0.0; L];
        for withdrawn in &mut self.withdrawn_this_year {
            *withdrawn = [0.0; L];
        }
        self.year_end_balance.copy_from_slice(&self.balance);
    }

    /// New money into account `a` on the lanes of `on` (a taxable account's basis rises with
    /// it).
    #[inline(always)]
    fn deposit(&mut self, a: usize, amount: &[f64; L], on: &[bool; L]) {
        let balance = &mut self.balance[a];
        for l in 0..L {
            balance[l] = if on[l] {
                balance[l] + amount[l]
            } else {
                balance[l]
            };
        }
        if self.layout.kinds[a] == AccountKind::Taxable {
            let basis = &mut self.basis[a];
            for l in 0..L {
                basis[l] = if on[l] {
                    basis[l] + amount[l]
                } else {
                    basis[l]
                };
            }
        }
    }

    /// Empty the accounts of the lanes of `on`.
    fn deplete(&mut self, on: &[bool; L]) {
        for (balance, basis) in self.balance.iter_mut().zip(&mut self.basis) {
            for l in 0..L {
                if on[l] {
                    balance[l] = 0.0;
                    basis[l] = 0.0;
                }
            }
        }
    }

    /// Take `amount` out of account `a` on the lanes of `on`, with its tax consequences.
    #[inline(always)]
    fn take(&mut self, a: usize, amount: &[f64; L], on: &[bool; L]) {
        match self.layout.kinds[a] {
            AccountKind::Taxable => {
                for l in 0..L {
                    let value = self.balance[a][l];
                    let basis = self.basis[a][l];
                    let realises = on[l] && value > 0.0;
                    let gains = self.gains[l] + amount[l] * (1.0 - basis / value);
                    let left = basis - basis * (amount[l] / value);
                    self.gains[l] = if realises { gains } else { self.gains[l] };
                    self.basis[a][l] = if realises { left } else { basis };
                    self.balance[a][l] = if on[l] { value - amount[l] } else { value };
                }
            }
            AccountKind::TaxDeferred => {
                for l in 0..L {
                    let value = self.balance[a][l];
                    self.balance[a][l] = if on[l] { value - amount[l] } else { value };
                    let ordinary = self.ordinary[l];
                    self.ordinary[l] = if on[l] {
                        ordinary + amount[l]
                    } else {
                        ordinary
                    };
                    let withdrawn = self.withdrawn_this_year[a][l];
                    self.withdrawn_this_year[a][l] = if on[l] {
                        withdrawn + amount[l]
                    } else {
                        withdrawn
                    };
                }
            }
            AccountKind::TaxFree => {
                for l in 0..L {
                    let value = self.balance[a][l];
                    self.balance[a][l] = if on[l] { value - amount[l] } else { value };
                }
            }
        }
    }

    /// Take `amount` (at most the total; zero on lanes that take nothing) from the accounts in
    /// the plan's withdrawal order.
    #[inline(always)]
    fn withdraw(&mut self, plan: &PreparedPlan, amount: &[f64; L], index: &[f64; L]) {
        let draws: [bool; L] = std::array::from_fn(|l| amount[l] > 0.0);
        if !any(&draws) {
            return;
        }
        let layout = self.layout;
        match plan.order {
            Order::Sequence(_) => {
                let mut rest = *amount;
                self.in_order(&mut rest, &layout.sequence);
            }
            Order::Proportional => {
                let total = self.total();
                let mut rest = *amount;
                for a in 0..self.balance.len() {
                    let balance = self.balance[a];
                    let take: [f64; L] = std::array::from_fn(|l| {
                        (amount[l] * (balance[l] / total[l]))
                            .min(balance[l])
                            .min(rest[l])
                    });
                    let on: [bool; L] = std::array::from_fn(|l| total[l] > 0.0 && take[l] > 0.0);
                    if any(&on) {
                        self.take(a, &take, &on);
                        for l in 0..L {
                            rest[l] = if on[l] { rest[l] - take[l] } else { rest[l] };
                        }
                    }
                }
                // Rounding may leave a few cents' fraction: the default order takes it.
                self.in_order(&mut rest, &layout.default);
            }
            Order::BracketFill { ceiling } => {
                let first: [f64; L] = std::array::from_fn(|l| {
                    amount[l].min((ceiling * index[l] - self.ordinary[l]).max(0.0))
                });
                let mut left = first;
                self.in_order(&mut left, &layout.tax_deferred);
                let mut rest: [f64; L] = std::array::from_fn(|l| amount[l] - first[l] + left[l]);
                self.in_order(&mut rest, &layout.default);
            }
        }
    }

    /// Take `rest` from `accounts`, one after another; `rest` becomes what they could not pay.
    #[inline(always)]
    fn in_order(&mut self, rest: &mut [f64; L], accounts: &[usize]) {
        // Once no lane has anything left to take, the accounts further down the order are
        // not visited (each would take nothing).
        let mut left = any(&std::array::from_fn::<_, L, _>(|l| rest[l] > 0.0));
        for &a in accounts {
            if !left {
                break;
            }
            let take: [f64; L] = std::array::from_fn(|l| rest[l].min(self.balance[a][l]));
            let on: [bool; L] = std::array::from_fn(|l| rest[l] > 0.0 && take[l] > 0.0);
            if !any(&on) {
                continue;
            }
            self.take(a, &take, &on);
            let mut still = false;
            for l in 0..L {
                rest[l] = if on[l] { rest[l] - take[l] } else { rest[l] };
                still |= rest[l] > 0.0;
            }
            left = still;
        }
        for r in rest.iter_mut() {
            *r = if *r > 0.0 { *r } else { 0.0 };
        }
    }

    /// Required minimum distributions in the year's last month (month `t`) on the lanes of
    /// `on`: what the Uniform Lifetime Table requires of each tax-deferred account, less what
    /// was already withdrawn this year, moved to the taxable account as ordinary income. A dead
    /// owner's account passes to the survivor.
    #[inline(always)]
    fn take_rmds(&mut self, plan: &PreparedPlan, alive: &[[bool; L]; 2], on: &[bool; L], t: u32) {
        let ages: Vec<u32> = plan
            .people
            .iter()
            .map(|p| (p.age_months + t) / 12)
            .collect();
        let layout = self.layout;
        for &a in &layout.tax_deferred {
            let owner = plan.accounts[a].owner;
            let heir = (1 - owner).min(ages.len() - 1);
            let mut amount = [0.0f64; L];
            let mut takes = [false; L];
            for l in 0..L {
                let age = if alive[owner][l] {
                    ages[owner]
                } else {
                    ages[heir]
                };
                let required = rmd::required(self.year_end_balance[a][l], age)
                    - self.withdrawn_this_year[a][l];
                amount[l] = required.min(self.balance[a][l]);
                takes[l] = on[l] && age >= plan.rmd_age && amount[l] > 0.0;
            }
            if any(&takes) {
                self.take(a, &amount, &takes);
                self.deposit(plan.cash_account, &amount, &takes);
            }
        }
    }

    #[inline(always)]
    fn grow(&mut self, growth: &[f64; L]) {
        for balance in &mut self.balance {
            for l in 0..L {
                balance[l] *= growth[l];
            }
        }
    }
}
