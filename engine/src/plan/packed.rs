//! One plan packed into the flat buffers the GPU month loop reads (`plan_path` in
//! shaders/plan.wgsl, and its generated CUDA twin), and the loop's outputs read back into the
//! CPU's [`PlanSamples`], so that one reduction ([`super::build_plan_result`]) serves every
//! backend.
//!
//! Per plan ([`PackedPlan`]): `words` (u32: a header of counts and offsets at the `W_*` slots,
//! then the accounts', flows' and goals' integer fields at fixed places, then the per-month
//! volatility bits and goal bits), `reals` (f64: the spending rule, the tax schedule, balances
//! and amounts at the `F_*` slots, then the per-year and per-month tables; the offsets are the
//! plan's own), and each path's number and death months, in the order the CPU runs them (by
//! the month they end). A launch takes a [`PackedBatch`]: its plans' buffers end to end, and
//! two lane entries per row, the path's and where its plan and its samples start, so that
//! plans with different horizons, rules or claim ages (a solver's) run side by side.
//! Every table holds the bits the CPU's month loop reads (its [`Layout`], the same
//! expressions), so the GPU has nothing to recompute. Deaths are drawn here, on the host:
//! they need f64 `ln` and `exp`, which WGSL lacks, and cost one draw per person per path.
//!
//! The slots are declared twice, here and as `const`s in shaders/plan.wgsl; a test reads the
//! WGSL's values and checks them against these.

use std::ops::Range;

use super::prepare::{index_at_month, Order, PreparedPlan, Rule};
use super::request::AccountKind;
use super::simulate::{lanes_by_end, Layout, PathOutcome, PlanSamples, Yearly};
use crate::backend::{BackendError, Watch};
use crate::rebalance::Rule as AssetRule;

/// The most accounts, flows (contributions, incomes) and goals a plan has (validation's
/// bounds), and the tax schedule's brackets: the fixed regions' sizes.
const ACCOUNTS: u32 = super::prepare::MAX_ACCOUNTS as u32;
const FLOWS: u32 = super::prepare::MAX_FLOWS as u32;
const GOALS: u32 = super::prepare::MAX_GOALS as u32;
const BRACKETS: u32 = super::prepare::MAX_BRACKETS as u32;
/// Entries of the VPW table: 1 − (1+r)^−n for n = 0 … 127 years left.
pub const VPW_YEARS: u32 = 128;

// The header of `words` (slot 0 is unused).
pub const W_ACCOUNTS: u32 = 1;
pub const W_PEOPLE: u32 = 2;
pub const W_CONTRIBUTIONS: u32 = 3;
pub const W_INCOMES: u32 = 4;
pub const W_GOALS: u32 = 5;
pub const W_YEARS: u32 = 6;
pub const W_CASH: u32 = 7;
pub const W_ORDER: u32 = 8;
pub const W_SEQUENCE_LEN: u32 = 9;
pub const W_DEFAULT_LEN: u32 = 10;
pub const W_DEFERRED_LEN: u32 = 11;
pub const W_RMD_AGE: u32 = 12;
pub const W_SPENDING_START: u32 = 13;
pub const W_RULE: u32 = 14;
pub const W_TAX: u32 = 15;
pub const W_BRACKETS: u32 = 16;
pub const W_KEY: u32 = 17;
pub const W_AGE: u32 = 19;
pub const W_INDEX_AT: u32 = 21;
pub const W_CONTRIBUTION_AT: u32 = 22;
pub const W_INCOME_AT: u32 = 23;
pub const W_BENEFIT_AT: u32 = 24;
pub const W_DRIFT_AT: u32 = 25;
pub const W_VOLATILITY_AT: u32 = 26;
pub const W_GOALS_DUE_AT: u32 = 27;
/// Where the market's block (the `M_*` slots from there) starts in `words`.
pub const W_MARKET: u32 = 28;
// The fixed regions of `words`.
pub const W_KIND: u32 = 32;
pub const W_OWNER: u32 = W_KIND + ACCOUNTS;
pub const W_SEQUENCE: u32 = W_OWNER + ACCOUNTS;
pub const W_DEFAULT: u32 = W_SEQUENCE + ACCOUNTS;
pub const W_DEFERRED: u32 = W_DEFAULT + ACCOUNTS;
pub const W_CONTRIBUTION_ACCOUNT: u32 = W_DEFERRED + ACCOUNTS;
pub const W_CONTRIBUTION_OWNER: u32 = W_CONTRIBUTION_ACCOUNT + FLOWS;
pub const W_CONTRIBUTION_END: u32 = W_CONTRIBUTION_OWNER + FLOWS;
pub const W_INCOME_OWNER: u32 = W_CONTRIBUTION_END + FLOWS;
pub const W_INCOME_START: u32 = W_INCOME_OWNER + FLOWS;
pub const W_INCOME_END: u32 = W_INCOME_START + FLOWS;
pub const W_INCOME_TAXABLE: u32 = W_INCOME_END + FLOWS;
pub const W_GOAL_MONTH: u32 = W_INCOME_TAXABLE + FLOWS;
pub const W_GOAL_ESSENTIAL: u32 = W_GOAL_MONTH + GOALS;
pub const W_INCOME_INDEXED: u32 = W_GOAL_ESSENTIAL + GOALS;
pub const W_TABLES: u32 = W_INCOME_INDEXED + FLOWS;

// The market's block in `words` (docs/model.md §4; the goal kernel's codes and tables): the
// model (0 lognormal, 1 Student-t, 2 regimes, 3 and 4 a bootstrap in circular or stationary
// blocks), the plan's horizon (regime k's months sit at k·horizon in the drift and
// volatility tables), the t's d, c and scale as f32 bits, the regimes K and where the chain's
// K + 1 rows of K − 1 thresholds sit in `words` (as f32 bits), a bootstrap's N, b, where
// each month's segment start sits in `words` and where the growth table sits in `reals`; the
// price index (0 the plan's rate's, 1 AR(1) inflation, 2 a history's), where AR(1)'s
// constants sit in `words` (θ, φ, the innovation's scale, ρ, sqrt(1 − ρ²), π_0 as f32 bits)
// and where a history's 1 + π per row sit in `reals`; under per-asset paths (§4.5) the
// assets K (0 otherwise), the rule (0 annual, 1 band, 2 none), where each asset's drift, the
// band and the target weights month by month (horizon × K) sit in `reals`, and where each
// asset's monthly volatility and the correlations' lower Cholesky factor (K × K) sit in
// `words` as f32 bits.
pub const M_MODEL: u32 = 0;
pub const M_HORIZON: u32 = 1;
pub const M_T_D: u32 = 2;
pub const M_T_C: u32 = 3;
pub const M_T_SCALE: u32 = 4;
pub const M_REGIMES: u32 = 5;
pub const M_THRESHOLDS_AT: u32 = 6;
pub const M_ROWS: u32 = 7;
pub const M_BLOCK: u32 = 8;
pub const M_MONTH_TABLE_AT: u32 = 9;
pub const M_GROWTH_AT: u32 = 10;
pub const M_INDEX: u32 = 11;
pub const M_INFLATION_AT: u32 = 12;
pub const M_PRICES_AT: u32 = 13;
pub const M_ASSETS: u32 = 14;
pub const M_ASSET_RULE: u32 = 15;
pub const M_ASSETS_AT: u32 = 16;
pub const M_ASSET_FLOATS_AT: u32 = 17;
/// Words the market's block takes.
const MARKET_WORDS: usize = 18;

// The scalars of `reals`.
pub const F_ESSENTIAL: u32 = 0;
pub const F_DISCRETIONARY: u32 = 1;
pub const F_SURVIVOR: u32 = 2;
pub const F_RESERVE_YEARS: u32 = 3;
pub const F_RATE: u32 = 4;
pub const F_CEILING: u32 = 5;
pub const F_REAL_RETURN: u32 = 6;
pub const F_TO_AGE: u32 = 7;
pub const F_UPPER: u32 = 8;
pub const F_LOWER: u32 = 9;
pub const F_ADJUST: u32 = 10;
pub const F_MIN_YEARS_LEFT: u32 = 11;
pub const F_PLANNING_AGE: u32 = 12;
pub const F_SOCIAL_SECURITY_TAXABLE: u32 = 13;
pub const F_DEDUCTION: u32 = 14;
pub const F_GAINS_RATE: u32 = 15;
pub const F_FILL_CEILING: u32 = 16;
// The fixed regions of `reals`.
pub const F_OVER: u32 = 32;
pub const F_BRACKET_RATE: u32 = F_OVER + BRACKETS;
pub const F_BALANCE: u32 = F_BRACKET_RATE + BRACKETS;
pub const F_BASIS: u32 = F_BALANCE + ACCOUNTS;
pub const F_GOAL_AMOUNT: u32 = F_BASIS + ACCOUNTS;
pub const F_INCOME_SURVIVOR: u32 = F_GOAL_AMOUNT + GOALS;
pub const F_VPW: u32 = F_INCOME_SURVIVOR + FLOWS;
pub const F_TABLES: u32 = F_VPW + VPW_YEARS;

/// f64s each path's outcome takes in the `money` output: estate, the accounts' total, its
/// tax-deferred part, lifetime taxes, under a stochastic index I at its end (1 otherwise),
/// and under per-asset paths the portfolio's summed turnover (0 otherwise).
pub const MONEY_PER_PATH: usize = 6;
/// u32s each path's outcome takes in the `counts` output: end month, failure month (or
/// `u32::MAX`), goals due, goals paid, spending cut (0/1), guardrail cuts, raises, months
/// clamped (Student-t), rebalances (per-asset paths).
pub const COUNTS_PER_PATH: usize = 9;

/// The rows one launch runs, and where their samples lie among the batch's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub rows: Range<usize>,
    /// The u32s of samples the rows before this slice write.
    pub first_sample: usize,
    /// The u32s of samples this slice writes.
    pub sample_words: usize,
}

/// What one launch gives back for its slice's rows.
pub struct SliceOutputs {
    /// [`MONEY_PER_PATH`] f64s a row.
    pub money: Vec<f64>,
    /// [`COUNTS_PER_PATH`] u32s a row.
    pub counts: Vec<u32>,
    /// The slice's samples, as f32 bits.
    pub samples: Vec<u32>,
}

/// Plans as one launch reads them.
#[derive(Debug, Clone)]
pub struct PackedBatch {
    pub words: Vec<u32>,
    pub reals: Vec<f64>,
    /// Two entries a row: (path, death month of each person, end month), then (the start of
    /// its plan in `words`, in `reals`, the start of its samples, 0).
    pub lanes: Vec<[u32; 4]>,
    /// The plans, in order, each with its rows.
    pub plans: Vec<PackedPlan>,
    /// Whether the launches' samples come back as tables ([`Yearly::Samples`]), or stay on
    /// the device to be reduced there ([`Yearly::Percentiles`]).
    pub tables: bool,
}

impl PackedBatch {
    /// Pack `plans`, keeping their yearly samples or not. The error names a batch too large
    /// for the kernel's 32-bit offsets.
    pub fn of(plans: &[PreparedPlan], yearly: Yearly) -> Result<PackedBatch, String> {
        let plans: Vec<PackedPlan> = plans.iter().map(|p| PackedPlan::of(p, yearly)).collect();
        let mut batch = PackedBatch {
            words: Vec::new(),
            reals: Vec::new(),
            lanes: Vec::new(),
            plans: Vec::new(),
            tables: yearly == Yearly::Samples,
        };
        let mut samples = 0u64;
        for plan in &plans {
            let at = |n: usize| u32::try_from(n).ok();
            let (Some(words), Some(reals), Some(start)) = (
                at(batch.words.len()),
                at(batch.reals.len()),
                u32::try_from(samples).ok(),
            ) else {
                return Err("the batch's plans exceed the plan kernel's 32-bit offsets".into());
            };
            batch.words.extend_from_slice(&plan.words);
            batch.reals.extend_from_slice(&plan.reals);
            for (k, lane) in plan.lanes.iter().enumerate() {
                let row_samples = start as u64 + (plan.width() * k) as u64;
                let row_samples = u32::try_from(row_samples)
                    .map_err(|_| "the batch's samples exceed the plan kernel's 32-bit offsets")?;
                batch.lanes.push(*lane);
                batch.lanes.push([words, reals, row_samples, 0]);
            }
            samples += (plan.width() * plan.paths()) as u64;
        }
        batch.plans = plans;
        Ok(batch)
    }

    /// Rows (paths of every plan) the batch runs.
    pub fn rows(&self) -> usize {
        self.lanes.len() / 2
    }

    /// The u32s of samples the rows before `row` write (all of them at `rows()`).
    pub fn samples_before(&self, row: usize) -> usize {
        match self.lanes.get(2 * row + 1) {
            Some(at) => at[2] as usize,
            None => self.plans.iter().map(|p| p.width() * p.paths()).sum(),
        }
    }

    /// Path-steps (months run) of the rows in `rows`.
    pub fn path_steps(&self, rows: Range<usize>) -> u64 {
        rows.map(|r| u64::from(self.lanes[2 * r][3])).sum()
    }

    /// The rows of plan `k`.
    pub fn plan_rows(&self, k: usize) -> Range<usize> {
        let start: usize = self.plans[..k].iter().map(PackedPlan::paths).sum();
        start..start + self.plans[k].paths()
    }

    /// Where plan `k`'s samples lie among the launches of `slices`: per slice it has rows in,
    /// (the slice's index, the first u32 of those rows' samples in the slice's samples, the
    /// u32s), always whole rows, so a sample's column is its place in the piece modulo the
    /// plan's [`PackedPlan::width`].
    pub fn pieces(&self, k: usize, slices: &[Slice]) -> Vec<(usize, usize, usize)> {
        let rows = self.plan_rows(k);
        slices
            .iter()
            .enumerate()
            .filter_map(|(i, slice)| {
                let first = rows.start.max(slice.rows.start);
                let end = rows.end.min(slice.rows.end);
                let at = self.samples_before(first);
                (first < end).then(|| (i, at - slice.first_sample, self.samples_before(end) - at))
            })
            .collect()
    }

    /// The rows in slices of at most `max_rows` rows and `max_samples` u32s of samples each
    /// (a row's samples never split): what one launch runs.
    pub fn slices(&self, max_rows: usize, max_samples: usize) -> Vec<Slice> {
        let mut slices = Vec::new();
        let mut first = 0;
        while first < self.rows() {
            let mut end = first + 1;
            while end < self.rows()
                && end - first < max_rows
                && self.samples_before(end + 1) - self.samples_before(first) <= max_samples
            {
                end += 1;
            }
            let first_sample = self.samples_before(first);
            slices.push(Slice {
                rows: first..end,
                first_sample,
                sample_words: self.samples_before(end) - first_sample,
            });
            first = end;
        }
        slices
    }

    /// Every slice of `slices` through `launch` (one GPU launch each), in order, checking
    /// `watch` before each and counting its path-steps after: each plan's [`PlanSamples`],
    /// or [`BackendError::Cancelled`], or the launch's error. `launch` may give back longer
    /// outputs than the slice's (buffers padded to a minimum size); the excess is dropped.
    /// Without [`PackedBatch::tables`], `launch` keeps the samples on the device and gives
    /// back none; the plans' `reduced` is then for the backend to fill.
    pub fn run(
        &self,
        slices: Vec<Slice>,
        watch: &Watch,
        mut launch: impl FnMut(&Slice) -> Result<SliceOutputs, BackendError>,
    ) -> Result<Vec<PlanSamples>, BackendError> {
        let rows = self.rows();
        let mut money = Vec::with_capacity(rows * MONEY_PER_PATH);
        let mut counts = Vec::with_capacity(rows * COUNTS_PER_PATH);
        let mut samples = Vec::with_capacity(self.samples_before(rows));
        for slice in slices {
            if watch.is_cancelled() {
                return Err(BackendError::Cancelled);
            }
            let out = launch(&slice)?;
            let n = slice.rows.len();
            money.extend_from_slice(&out.money[..n * MONEY_PER_PATH]);
            counts.extend_from_slice(&out.counts[..n * COUNTS_PER_PATH]);
            if self.tables {
                samples.extend_from_slice(&out.samples[..slice.sample_words]);
            }
            watch.advance(self.path_steps(slice.rows));
        }
        Ok(self.samples(&money, &counts, &samples))
    }

    /// The launches' outputs, every row's in order, as each plan's [`PlanSamples`].
    pub fn samples(&self, money: &[f64], counts: &[u32], samples: &[u32]) -> Vec<PlanSamples> {
        let mut row = 0;
        let mut sample = 0;
        self.plans
            .iter()
            .map(|plan| {
                let rows = plan.paths();
                let take = if self.tables { plan.width() * rows } else { 0 };
                let out = plan.samples(
                    &money[row * MONEY_PER_PATH..(row + rows) * MONEY_PER_PATH],
                    &counts[row * COUNTS_PER_PATH..(row + rows) * COUNTS_PER_PATH],
                    &samples[sample..sample + take],
                );
                row += rows;
                sample += take;
                out
            })
            .collect()
    }
}

/// A plan as the GPU month loop reads it.
#[derive(Debug, Clone)]
pub struct PackedPlan {
    pub words: Vec<u32>,
    pub reals: Vec<f64>,
    /// Per row: path, death month of each person, end month.
    pub lanes: Vec<[u32; 4]>,
    /// Yearly samples per path (0 when skipped).
    pub years: usize,
    /// Rows of `years` samples per path: wealth and real spending, and under a stochastic
    /// index real wealth.
    pub sample_rows: usize,
    /// The plan's deterministic inflation (each path's index at its end is its power).
    pub inflation: f64,
}

impl PackedPlan {
    /// Pack `plan`, keeping its yearly samples or not.
    pub fn of(plan: &PreparedPlan, yearly: Yearly) -> PackedPlan {
        let layout = Layout::of(plan);
        let years = yearly.years_of(plan);
        let lanes: Vec<[u32; 4]> = lanes_by_end(plan)
            .iter()
            .map(|lane| [lane.path, lane.deaths[0], lane.deaths[1], lane.end])
            .collect();

        let mut words = vec![0u32; W_TABLES as usize];
        let mut reals = vec![0f64; F_TABLES as usize];
        let mut put = |slot: u32, value: u32| words[slot as usize] = value;
        put(W_ACCOUNTS, plan.accounts.len() as u32);
        put(W_PEOPLE, plan.people.len() as u32);
        put(W_CONTRIBUTIONS, plan.contributions.len() as u32);
        put(W_INCOMES, plan.incomes.len() as u32);
        put(W_GOALS, plan.goals.len() as u32);
        put(W_YEARS, years as u32);
        put(W_CASH, plan.cash_account as u32);
        put(
            W_ORDER,
            match plan.order {
                Order::Sequence(_) => 0,
                Order::Proportional => 1,
                Order::BracketFill { .. } => 2,
            },
        );
        put(W_SEQUENCE_LEN, layout.sequence.len() as u32);
        put(W_DEFAULT_LEN, layout.default.len() as u32);
        put(W_DEFERRED_LEN, layout.tax_deferred.len() as u32);
        put(W_RMD_AGE, plan.rmd_age);
        put(W_SPENDING_START, plan.spending.start_month);
        put(W_TAX, u32::from(plan.tax.is_some()));
        let key = crate::philox::key_of_seed(plan.seed);
        put(W_KEY, key[0]);
        put(W_KEY + 1, key[1]);
        for (p, person) in plan.people.iter().enumerate() {
            put(W_AGE + p as u32, person.age_months);
        }
        for (a, account) in plan.accounts.iter().enumerate() {
            put(W_KIND + a as u32, kind_code(account.kind));
            put(W_OWNER + a as u32, account.owner as u32);
        }
        for (region, accounts) in [
            (W_SEQUENCE, &layout.sequence),
            (W_DEFAULT, &layout.default),
            (W_DEFERRED, &layout.tax_deferred),
        ] {
            for (k, &a) in accounts.iter().enumerate() {
                put(region + k as u32, a as u32);
            }
        }
        for (k, c) in plan.contributions.iter().enumerate() {
            put(W_CONTRIBUTION_ACCOUNT + k as u32, c.account as u32);
            put(W_CONTRIBUTION_OWNER + k as u32, c.owner as u32);
            put(W_CONTRIBUTION_END + k as u32, c.end_month);
        }
        for (k, income) in plan.incomes.iter().enumerate() {
            put(W_INCOME_OWNER + k as u32, income.owner as u32);
            put(W_INCOME_START + k as u32, income.start_month);
            put(W_INCOME_END + k as u32, income.end_month);
            put(W_INCOME_TAXABLE + k as u32, u32::from(income.taxable));
            put(W_INCOME_INDEXED + k as u32, u32::from(income.indexed));
            reals[(F_INCOME_SURVIVOR + k as u32) as usize] = income.survivor_fraction;
        }
        for (g, goal) in plan.goals.iter().enumerate() {
            put(W_GOAL_MONTH + g as u32, goal.month);
            put(W_GOAL_ESSENTIAL + g as u32, u32::from(goal.essential));
            reals[(F_GOAL_AMOUNT + g as u32) as usize] = goal.amount;
        }
        let (rule, rule_reals) = rule_fields(&plan.spending.rule);
        put(W_RULE, rule);

        let mut set = |slot: u32, value: f64| reals[slot as usize] = value;
        set(F_ESSENTIAL, plan.spending.essential);
        set(F_DISCRETIONARY, plan.spending.discretionary);
        set(F_SURVIVOR, plan.spending.survivor_fraction);
        set(F_RESERVE_YEARS, plan.flexible_reserve_years);
        for (k, value) in rule_reals.into_iter().enumerate() {
            set(F_RATE + k as u32, value);
        }
        if let Some(tax) = &plan.tax {
            words[W_BRACKETS as usize] = tax.brackets.len() as u32;
            set(F_SOCIAL_SECURITY_TAXABLE, tax.social_security_taxable);
            set(F_DEDUCTION, tax.standard_deduction);
            set(F_GAINS_RATE, tax.capital_gains_rate);
            for (k, bracket) in tax.brackets.iter().enumerate() {
                set(F_OVER + k as u32, bracket.over);
                set(F_BRACKET_RATE + k as u32, bracket.rate);
            }
        }
        if let Order::BracketFill { ceiling } = plan.order {
            set(F_FILL_CEILING, ceiling);
        }
        for (a, account) in plan.accounts.iter().enumerate() {
            set(F_BALANCE + a as u32, account.balance);
            set(F_BASIS + a as u32, account.basis);
        }
        if let Rule::Vpw { real_return, .. } = plan.spending.rule {
            // The CPU's expression for n years left (simulate.rs, yearly_spending).
            for n in 1..VPW_YEARS {
                set(F_VPW + n, 1.0 - (1.0 + real_return).powf(-f64::from(n)));
            }
        }

        // The tables, each at an offset the header gives.
        let mut table_f64 = |slot: u32, values: &[f64]| {
            words[slot as usize] = reals.len() as u32;
            reals.extend_from_slice(values);
        };
        table_f64(W_INDEX_AT, &layout.index);
        table_f64(W_CONTRIBUTION_AT, &layout.contribution);
        table_f64(W_INCOME_AT, &layout.income);
        table_f64(W_BENEFIT_AT, layout.benefit.as_flattened());
        table_f64(W_DRIFT_AT, &plan.drift);
        words[W_VOLATILITY_AT as usize] = words.len() as u32;
        words.extend(plan.volatility.iter().map(|v| v.to_bits()));
        words[W_GOALS_DUE_AT as usize] = words.len() as u32;
        // At most 32 goals: their bits fit a u32.
        words.extend(layout.goals_due.iter().map(|&bits| bits as u32));
        pack_market(plan, &mut words, &mut reals);
        PackedPlan {
            words,
            reals,
            lanes,
            years,
            sample_rows: if plan.stochastic_index() { 3 } else { 2 },
            inflation: plan.inflation,
        }
    }

    /// Rows (paths) the loop runs.
    pub fn paths(&self) -> usize {
        self.lanes.len()
    }

    /// u32s of samples each path writes (its rows of `years`).
    pub fn width(&self) -> usize {
        self.sample_rows * self.years
    }

    /// The loop's outputs as the CPU gives them: `money` and `counts` hold
    /// [`MONEY_PER_PATH`] and [`COUNTS_PER_PATH`] per row, `samples` [`PackedPlan::width`]
    /// per row (wealth, then real spending, then real wealth under a stochastic index, `years`
    /// each), as f32 bits, or nothing where they stayed on the device (the tables are then
    /// empty).
    pub fn samples(&self, money: &[f64], counts: &[u32], samples: &[u32]) -> PlanSamples {
        let paths = self.paths();
        let years = if samples.is_empty() { 0 } else { self.years };
        let mut outcomes = vec![PathOutcome::default(); paths];
        let mut wealth = Vec::with_capacity(paths * years);
        let mut real_spending = Vec::with_capacity(paths * years);
        let stochastic = self.sample_rows == 3;
        let mut real_wealth = Vec::new();
        for (row, lane) in self.lanes.iter().enumerate() {
            let m = &money[row * MONEY_PER_PATH..][..MONEY_PER_PATH];
            let c = &counts[row * COUNTS_PER_PATH..][..COUNTS_PER_PATH];
            outcomes[lane[0] as usize] = PathOutcome {
                end_month: c[0],
                failed_at: (c[1] != u32::MAX).then_some(c[1]),
                estate: m[0],
                estate_accounts: m[1],
                estate_tax_deferred: m[2],
                taxes: m[3],
                goals_due: u64::from(c[2]),
                goals_paid: u64::from(c[3]),
                spending_cut: c[4] != 0,
                guardrail_cuts: c[5],
                guardrail_raises: c[6],
                clamped_months: c[7],
                deaths: [lane[1], lane[2]],
                end_index: if stochastic {
                    m[4]
                } else {
                    index_at_month(self.inflation, c[0])
                },
                rebalances: c[8],
                turnover: m[5],
            };
            let width = self.sample_rows * years;
            let rows = &samples[width * row..][..width];
            let floats = |range: Range<usize>| rows[range].iter().map(|&bits| f32::from_bits(bits));
            wealth.extend(floats(0..years));
            real_spending.extend(floats(years..2 * years));
            if stochastic {
                real_wealth.extend(floats(2 * years..3 * years));
            }
        }
        PlanSamples {
            outcomes,
            years,
            wealth,
            real_spending,
            real_wealth,
            row_paths: self.lanes.iter().map(|lane| lane[0]).collect(),
            reduced: Vec::new(),
        }
    }
}

/// 0 taxable, 1 tax-deferred, 2 tax-free.
fn kind_code(kind: AccountKind) -> u32 {
    match kind {
        AccountKind::Taxable => 0,
        AccountKind::TaxDeferred => 1,
        AccountKind::TaxFree => 2,
    }
}

/// The rule's kind (as `SpendingRule.kind` in plan.wgsl) and its nine parameters in the
/// order of the slots from [`F_RATE`]: rate, ceiling, real return, to age, upper, lower,
/// adjust, min years left, planning age (zero where the rule has none).
pub fn rule_fields(rule: &Rule) -> (u32, [f64; 9]) {
    match *rule {
        Rule::Fixed => (0, [0.0; 9]),
        Rule::Percent { rate } => (1, [rate, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        Rule::FloorCeiling { rate, ceiling } => {
            (2, [rate, ceiling, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        }
        Rule::Vpw {
            real_return,
            to_age,
        } => (3, [0.0, 0.0, real_return, to_age, 0.0, 0.0, 0.0, 0.0, 0.0]),
        Rule::Guardrails {
            upper,
            lower,
            adjust,
            min_years_left,
            planning_age,
        } => (
            4,
            [
                0.0,
                0.0,
                0.0,
                0.0,
                upper,
                lower,
                adjust,
                min_years_left,
                planning_age,
            ],
        ),
    }
}

/// The market's block (the `M_*` slots) and its tables, at the end of `words` and `reals`.
fn pack_market(plan: &PreparedPlan, words: &mut Vec<u32>, reals: &mut Vec<f64>) {
    let at = words.len();
    words[W_MARKET as usize] = at as u32;
    words.resize(at + MARKET_WORDS, 0);
    let slot = |m: u32| at + m as usize;
    words[slot(M_HORIZON)] = plan.horizon;
    words[slot(M_REGIMES)] = 1;
    words[slot(M_MODEL)] = match (&plan.student_t, &plan.regimes, &plan.bootstrap) {
        (Some(_), _, _) => 1,
        (None, Some(_), _) => 2,
        (None, None, Some(b)) => 3 + u32::from(b.stationary),
        (None, None, None) => 0,
    };
    if let Some(t) = &plan.student_t {
        words[slot(M_T_D)] = t.d.to_bits();
        words[slot(M_T_C)] = t.c.to_bits();
        words[slot(M_T_SCALE)] = t.scale.to_bits();
    }
    if let Some(chain) = &plan.regimes {
        words[slot(M_REGIMES)] = chain.count() as u32;
        words[slot(M_THRESHOLDS_AT)] = words.len() as u32;
        // Integers below 2^24: exact as f32, compared with the uniform as the goals' kernel does.
        words.extend(
            chain
                .thresholds
                .iter()
                .map(|&theta| (theta as f32).to_bits()),
        );
    }
    if let Some(b) = &plan.bootstrap {
        words[slot(M_ROWS)] = b.rows;
        words[slot(M_BLOCK)] = b.block;
        words[slot(M_MONTH_TABLE_AT)] = words.len() as u32;
        words.extend_from_slice(&b.month_table);
        words[slot(M_GROWTH_AT)] = reals.len() as u32;
        reals.extend_from_slice(&b.growth);
        if let Some(prices) = &b.inflation {
            words[slot(M_INDEX)] = 2;
            words[slot(M_PRICES_AT)] = reals.len() as u32;
            reals.extend_from_slice(prices);
        }
    }
    if let Some(assets) = &plan.asset_paths {
        words[slot(M_ASSETS)] = assets.count as u32;
        let (rule, band) = match assets.rule {
            AssetRule::Annual => (0, 0.0),
            AssetRule::Band(band) => (1, band),
            AssetRule::None => (2, 0.0),
        };
        words[slot(M_ASSET_RULE)] = rule;
        words[slot(M_ASSETS_AT)] = reals.len() as u32;
        reals.extend_from_slice(&assets.drift);
        reals.push(band);
        reals.extend_from_slice(&assets.weights);
        words[slot(M_ASSET_FLOATS_AT)] = words.len() as u32;
        words.extend(assets.volatility.iter().map(|v| v.to_bits()));
        words.extend(assets.cholesky.iter().map(|v| v.to_bits()));
    }
    if let Some(model) = &plan.inflation_model {
        words[slot(M_INDEX)] = 1;
        words[slot(M_INFLATION_AT)] = words.len() as u32;
        words.extend(
            [
                model.mean,
                model.persistence,
                model.innovation,
                model.shock_weight,
                model.own_weight,
                model.initial,
            ]
            .map(f32::to_bits),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `const W_*: u32 = Nu;` / `F_*` line of shaders/plan.wgsl, by name.
    fn wgsl_slots() -> Vec<(String, u32)> {
        include_str!("../../../shaders/plan.wgsl")
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("const ")?;
                let (name, value) = rest.split_once(": u32 = ")?;
                if !["W_", "F_", "M_"].iter().any(|p| name.starts_with(p)) {
                    return None;
                }
                let value = value.trim_end_matches(';').trim_end_matches('u');
                let value = value
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} = {value}: write the slot as a literal"));
                Some((name.to_string(), value))
            })
            .collect()
    }

    #[test]
    fn the_wgsl_reads_the_slots_this_module_writes() {
        let ours: std::collections::HashMap<&str, u32> = [
            ("W_ACCOUNTS", W_ACCOUNTS),
            ("W_PEOPLE", W_PEOPLE),
            ("W_CONTRIBUTIONS", W_CONTRIBUTIONS),
            ("W_INCOMES", W_INCOMES),
            ("W_GOALS", W_GOALS),
            ("W_YEARS", W_YEARS),
            ("W_CASH", W_CASH),
            ("W_ORDER", W_ORDER),
            ("W_SEQUENCE_LEN", W_SEQUENCE_LEN),
            ("W_DEFAULT_LEN", W_DEFAULT_LEN),
            ("W_DEFERRED_LEN", W_DEFERRED_LEN),
            ("W_RMD_AGE", W_RMD_AGE),
            ("W_SPENDING_START", W_SPENDING_START),
            ("W_RULE", W_RULE),
            ("W_TAX", W_TAX),
            ("W_BRACKETS", W_BRACKETS),
            ("W_KEY", W_KEY),
            ("W_AGE", W_AGE),
            ("W_INDEX_AT", W_INDEX_AT),
            ("W_CONTRIBUTION_AT", W_CONTRIBUTION_AT),
            ("W_INCOME_AT", W_INCOME_AT),
            ("W_BENEFIT_AT", W_BENEFIT_AT),
            ("W_DRIFT_AT", W_DRIFT_AT),
            ("W_VOLATILITY_AT", W_VOLATILITY_AT),
            ("W_GOALS_DUE_AT", W_GOALS_DUE_AT),
            ("W_MARKET", W_MARKET),
            ("M_MODEL", M_MODEL),
            ("M_HORIZON", M_HORIZON),
            ("M_T_D", M_T_D),
            ("M_T_C", M_T_C),
            ("M_T_SCALE", M_T_SCALE),
            ("M_REGIMES", M_REGIMES),
            ("M_THRESHOLDS_AT", M_THRESHOLDS_AT),
            ("M_ROWS", M_ROWS),
            ("M_BLOCK", M_BLOCK),
            ("M_MONTH_TABLE_AT", M_MONTH_TABLE_AT),
            ("M_GROWTH_AT", M_GROWTH_AT),
            ("M_INDEX", M_INDEX),
            ("M_INFLATION_AT", M_INFLATION_AT),
            ("M_PRICES_AT", M_PRICES_AT),
            ("M_ASSETS", M_ASSETS),
            ("M_ASSET_RULE", M_ASSET_RULE),
            ("M_ASSETS_AT", M_ASSETS_AT),
            ("M_ASSET_FLOATS_AT", M_ASSET_FLOATS_AT),
            ("W_KIND", W_KIND),
            ("W_OWNER", W_OWNER),
            ("W_SEQUENCE", W_SEQUENCE),
            ("W_DEFAULT", W_DEFAULT),
            ("W_DEFERRED", W_DEFERRED),
            ("W_CONTRIBUTION_ACCOUNT", W_CONTRIBUTION_ACCOUNT),
            ("W_CONTRIBUTION_OWNER", W_CONTRIBUTION_OWNER),
            ("W_CONTRIBUTION_END", W_CONTRIBUTION_END),
            ("W_INCOME_OWNER", W_INCOME_OWNER),
            ("W_INCOME_START", W_INCOME_START),
            ("W_INCOME_END", W_INCOME_END),
            ("W_INCOME_TAXABLE", W_INCOME_TAXABLE),
            ("W_GOAL_MONTH", W_GOAL_MONTH),
            ("W_GOAL_ESSENTIAL", W_GOAL_ESSENTIAL),
            ("W_INCOME_INDEXED", W_INCOME_INDEXED),
            ("F_ESSENTIAL", F_ESSENTIAL),
            ("F_DISCRETIONARY", F_DISCRETIONARY),
            ("F_SURVIVOR", F_SURVIVOR),
            ("F_RESERVE_YEARS", F_RESERVE_YEARS),
            ("F_RATE", F_RATE),
            ("F_CEILING", F_CEILING),
            ("F_REAL_RETURN", F_REAL_RETURN),
            ("F_TO_AGE", F_TO_AGE),
            ("F_UPPER", F_UPPER),
            ("F_LOWER", F_LOWER),
            ("F_ADJUST", F_ADJUST),
            ("F_MIN_YEARS_LEFT", F_MIN_YEARS_LEFT),
            ("F_PLANNING_AGE", F_PLANNING_AGE),
            ("F_SOCIAL_SECURITY_TAXABLE", F_SOCIAL_SECURITY_TAXABLE),
            ("F_DEDUCTION", F_DEDUCTION),
            ("F_GAINS_RATE", F_GAINS_RATE),
            ("F_FILL_CEILING", F_FILL_CEILING),
            ("F_OVER", F_OVER),
            ("F_BRACKET_RATE", F_BRACKET_RATE),
            ("F_BALANCE", F_BALANCE),
            ("F_BASIS", F_BASIS),
            ("F_GOAL_AMOUNT", F_GOAL_AMOUNT),
            ("F_INCOME_SURVIVOR", F_INCOME_SURVIVOR),
            ("F_VPW", F_VPW),
        ]
        .into_iter()
        .collect();
        let theirs = wgsl_slots();
        for (name, value) in &theirs {
            assert_eq!(
                ours.get(name.as_str()),
                Some(value),
                "plan.wgsl's {name} is {value}; packed.rs says {:?}",
                ours.get(name.as_str())
            );
        }
        assert_eq!(theirs.len(), ours.len(), "a slot is missing on one side");
    }
}
