//! The month loop of docs/model.md §5 on the CPU: one path at a time in f64, paths in parallel
//! with rayon. Every figure a plan reports comes from here.
//!
//! The portfolio's shock is §1's stream (counter (path, ⌊t/4⌋, 0, 0)) and its growth the same
//! arithmetic as the goal kernel's, `W·(exp(m/12)·exp(vol·Z))`, so that a plan with one person,
//! one taxable account and no tax reproduces the goal with the same cash flows bit for bit
//! (tested). Deaths come from the mortality stream of [`super::lifetime`].

use rayon::prelude::*;

use super::lifetime;
use super::prepare::{Order, PreparedPlan, Rule};
use super::request::{AccountKind, DEFAULT_ORDER};
use super::rmd;
use super::tax::year_tax;
use crate::backend::{BackendError, Watch};
use crate::normal;
use crate::philox;

/// Paths per unit of parallel work (and between checks for cancellation).
const CHUNK_PATHS: usize = 512;

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
    /// Each person's death month (plan months).
    pub deaths: [u32; 2],
}

/// Every path's outcome, with two yearly samples per path: total wealth at month 12(y+1) and
/// the real spending of year y, NaN once the path has ended.
#[derive(Debug, Clone)]
pub struct PlanSamples {
    pub outcomes: Vec<PathOutcome>,
    /// Years per path in the two tables below: ⌈horizon / 12⌉.
    pub years: usize,
    /// Row-major, one row of `years` per path.
    pub wealth: Vec<f32>,
    pub real_spending: Vec<f32>,
}

/// Run every path of `plan`, reporting progress to `watch` and stopping when it is cancelled.
pub fn simulate_plan(plan: &PreparedPlan, watch: &Watch) -> Result<PlanSamples, BackendError> {
    let paths = plan.paths as usize;
    let years = plan.horizon.div_ceil(12).max(1) as usize;
    let mut outcomes = vec![PathOutcome::default(); paths];
    let mut wealth = vec![f32::NAN; paths * years];
    let mut real_spending = vec![f32::NAN; paths * years];
    outcomes
        .par_chunks_mut(CHUNK_PATHS)
        .zip(wealth.par_chunks_mut(CHUNK_PATHS * years))
        .zip(real_spending.par_chunks_mut(CHUNK_PATHS * years))
        .enumerate()
        .for_each(|(chunk, ((outcomes, wealth), spending))| {
            if watch.is_cancelled() {
                return;
            }
            let first = chunk * CHUNK_PATHS;
            let mut steps = 0u64;
            for (i, outcome) in outcomes.iter_mut().enumerate() {
                let rows = i * years..(i + 1) * years;
                *outcome = run_path(
                    plan,
                    (first + i) as u32,
                    &mut wealth[rows.clone()],
                    &mut spending[rows],
                );
                steps += u64::from(outcome.end_month);
            }
            watch.advance(steps);
        });
    if watch.is_cancelled() {
        return Err(BackendError::Cancelled);
    }
    Ok(PlanSamples {
        outcomes,
        years,
        wealth,
        real_spending,
    })
}

/// One path of docs/model.md §5, month by month. `wealth` and `real_spending` receive the
/// path's yearly samples (left as they are after it ends).
pub fn run_path(
    plan: &PreparedPlan,
    path: u32,
    wealth: &mut [f32],
    real_spending: &mut [f32],
) -> PathOutcome {
    let mut deaths = [0u32; 2];
    for (p, person) in plan.people.iter().enumerate() {
        let u = lifetime::mortality_uniform(plan.seed, path, p as u32);
        deaths[p] =
            lifetime::death_month(&person.longevity, person.age_months, u).min(plan.horizon);
    }
    let couple = plan.people.len() == 2;
    let end = if couple {
        deaths[0].max(deaths[1])
    } else {
        deaths[0]
    };
    let key = philox::key_of_seed(plan.seed);
    let mut house = Household::new(plan);
    let mut shocks = [0f32; 4];
    let spending = &plan.spending;
    let mut outcome = PathOutcome {
        end_month: end,
        deaths,
        ..PathOutcome::default()
    };
    // Spending set for the year (household scale, nominal, monthly) and the guardrails' state.
    let mut spend = 0.0f64;
    let mut initial_rate = f64::INFINITY;
    let mut year_growth = 1.0f64;
    let mut last_year_return = 0.0f64;
    let mut spent_this_year = 0.0f64;
    let mut index = 1.0f64;
    let mut previous_index = 1.0f64;

    for t in 0..end {
        let year = t / 12;
        if t % 12 == 0 && t > 0 {
            // Close the previous year: its tax falls due now; its samples are recorded.
            previous_index = index;
            index = plan.index(year);
            house.close_year(previous_index);
            last_year_return = year_growth - 1.0;
            year_growth = 1.0;
            let slot = (year - 1) as usize;
            wealth[slot] = house.total() as f32;
            real_spending[slot] = (spent_this_year / previous_index) as f32;
            spent_this_year = 0.0;
        }
        if t % 4 == 0 {
            let block = philox::philox4x32_10([path, t / 4, 0, 0], key);
            shocks = normal::normals_of_block(block);
        }

        // Deaths: who is alive this month, and what the household spends on.
        let alive = [t < deaths[0], couple && t < deaths[1]];
        let survivor_factor = if couple && !(alive[0] && alive[1]) {
            spending.survivor_fraction
        } else {
            1.0
        };
        let wealth_at_start = house.total();

        // Contributions (none into a failed path's accounts: they stay empty).
        for c in &plan.contributions {
            if alive[c.owner] && t < c.end_month && outcome.failed_at.is_none() {
                let amount = c.amount * (1.0 + c.growth).powi(year as i32);
                house.deposit(c.account, amount);
            }
        }

        // Incomes and Social Security.
        let mut cash = 0.0f64;
        let mut taxable_income = 0.0f64;
        for income in &plan.incomes {
            if t < income.start_month || t >= income.end_month {
                continue;
            }
            let scale = if alive[income.owner] {
                1.0
            } else if alive[1 - income.owner] {
                income.survivor_fraction
            } else {
                0.0
            };
            let amount = income.amount * if income.indexed { index } else { 1.0 } * scale;
            cash += amount;
            if income.taxable {
                taxable_income += amount;
            }
        }
        let mut benefits = 0.0f64;
        for (p, &alive_p) in alive.iter().enumerate().take(plan.people.len()) {
            if !alive_p {
                continue;
            }
            let mut benefit = social_security(plan, p, t, index);
            if couple && !alive[1 - p] {
                // The survivor keeps the larger of the two benefits.
                benefit = benefit.max(social_security(plan, 1 - p, t, index));
            }
            benefits += benefit;
        }
        cash += benefits;
        if let Some(tax) = &plan.tax {
            taxable_income += benefits * tax.social_security_taxable;
        }
        house.ordinary += taxable_income;

        // Spending for the year: set in its first month, or when spending starts.
        let spending_on = t >= spending.start_month;
        if spending_on && (t == spending.start_month || t % 12 == 0) {
            let first = t == spending.start_month;
            spend = yearly_spending(
                plan,
                &mut SpendingState {
                    spend,
                    initial_rate: &mut initial_rate,
                    last_year_return,
                    outcome: &mut outcome,
                },
                first,
                wealth_at_start,
                index,
                previous_index,
                youngest_living_age(plan, &alive, t),
            );
        }
        let (essential_spending, discretionary) = if spending_on {
            let essential = spending.essential * index * survivor_factor;
            (essential, (spend * survivor_factor - essential).max(0.0))
        } else {
            (0.0, 0.0)
        };

        // Needs: essential spending, essential goals due, last year's tax.
        let mut essential_goals = 0.0f64;
        for (g, goal) in plan.goals.iter().enumerate() {
            if goal.month == t {
                outcome.goals_due |= 1 << g;
                if goal.essential {
                    essential_goals += goal.amount * index;
                }
            }
        }
        let tax_now = std::mem::take(&mut house.tax_due);
        let essential_need = essential_spending + essential_goals + tax_now;
        // The cash pays first; the accounts pay the rest unless that would empty them.
        // Once failed, the accounts are empty and only the cash pays.
        let cash_before = cash;
        let met = if cash >= essential_need {
            cash -= essential_need;
            true
        } else {
            let need = essential_need - cash;
            cash = 0.0;
            if outcome.failed_at.is_some() {
                false
            } else if house.total() - need <= 0.0 {
                // Everything is withdrawn (with its tax) and the path fails.
                outcome.failed_at = Some(t);
                house.withdraw(house.total(), index);
                house.deplete();
                false
            } else {
                house.withdraw(need, index);
                true
            }
        };
        let mut paid_spending = if met {
            essential_spending
        } else {
            cash_before.min(essential_spending)
        };
        if met {
            for (g, goal) in plan.goals.iter().enumerate() {
                if goal.month == t && goal.essential {
                    outcome.goals_paid |= 1 << g;
                }
            }
        }
        // Discretionary spending, as far as the cash and the accounts allow.
        if discretionary > 0.0 {
            let from_cash = cash.min(discretionary);
            cash -= from_cash;
            let need = discretionary - from_cash;
            let take = need.min(house.total().max(0.0));
            if take > 0.0 {
                house.withdraw(take, index);
            }
            if take < need {
                outcome.spending_cut = true;
            }
            paid_spending += from_cash + take;
        }
        // Flexible goals: paid only if what is left covers the reserve.
        let reserve =
            plan.flexible_reserve_years * 12.0 * spending.essential * index * survivor_factor;
        for (g, goal) in plan.goals.iter().enumerate() {
            if goal.month != t || goal.essential {
                continue;
            }
            let amount = goal.amount * index;
            if house.total() + cash - amount >= reserve {
                let from_cash = cash.min(amount);
                cash -= from_cash;
                if amount > from_cash {
                    house.withdraw(amount - from_cash, index);
                }
                outcome.goals_paid |= 1 << g;
            }
        }
        if outcome.failed_at.is_none() {
            // A surplus is saved in the taxable account (a failed path spends it).
            if cash > 0.0 {
                house.deposit(plan.cash_account, cash);
            }
            // RMDs in the year's last month.
            if t % 12 == 11 {
                house.take_rmds(plan, &alive, t);
            }
        }
        spent_this_year += paid_spending;

        // Growth: §1's arithmetic on every account.
        let shock = normal::exp(plan.volatility[t as usize] * shocks[(t % 4) as usize]);
        let growth = plan.drift[t as usize] * f64::from(shock);
        house.grow(growth);
        year_growth *= growth;
    }

    // The end: the open year's tax comes out of the estate.
    let owed = house.year_tax(plan.index(end.saturating_sub(1) / 12));
    let total = house.total();
    outcome.taxes = house.taxes + owed.min(total.max(0.0));
    outcome.estate = (total - owed).max(0.0);
    outcome.estate_accounts = total.max(0.0);
    outcome.estate_tax_deferred = house.tax_deferred();
    outcome
}

/// Person `p`'s own benefit in month `t`, 0 before the claim.
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

/// The guardrails' state carried from year to year.
struct SpendingState<'a> {
    /// Last year's monthly spending.
    spend: f64,
    /// WR₀: the first year's withdrawal rate.
    initial_rate: &'a mut f64,
    last_year_return: f64,
    outcome: &'a mut PathOutcome,
}

/// The monthly spending S_y of docs/model.md §5 for the year starting now (household scale).
fn yearly_spending(
    plan: &PreparedPlan,
    state: &mut SpendingState,
    first: bool,
    wealth: f64,
    index: f64,
    previous_index: f64,
    youngest_age: f64,
) -> f64 {
    let spending = &plan.spending;
    let floor = spending.essential * index;
    let planned = (spending.essential + spending.discretionary) * index;
    let w = wealth.max(0.0);
    match spending.rule {
        Rule::Fixed => planned,
        Rule::Percent { rate } => floor.max(rate * w / 12.0),
        Rule::FloorCeiling { rate, ceiling } => (rate * w / 12.0).clamp(floor, ceiling * index),
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
            floor.max(payment / 12.0)
        }
        Rule::Guardrails {
            upper,
            lower,
            adjust,
            min_years_left,
            planning_age,
        } => {
            if first {
                *state.initial_rate = if w > 0.0 {
                    12.0 * planned / w
                } else {
                    f64::INFINITY
                };
                return planned;
            }
            let initial = *state.initial_rate;
            let mut s = state.spend;
            let rate_before = if w > 0.0 { 12.0 * s / w } else { f64::INFINITY };
            // No inflation raise after a losing year while the rate is above WR₀.
            if !(state.last_year_return < 0.0 && rate_before > initial) {
                s *= index / previous_index;
            }
            let rate = if w > 0.0 { 12.0 * s / w } else { f64::INFINITY };
            if rate > upper * initial && planning_age - youngest_age > min_years_left {
                s *= 1.0 - adjust;
                state.outcome.guardrail_cuts += 1;
                state.outcome.spending_cut = true;
            } else if rate < lower * initial {
                s *= 1.0 + adjust;
                state.outcome.guardrail_raises += 1;
            }
            s.max(floor)
        }
    }
}

/// A path's accounts and its running tax figures.
struct Household<'a> {
    plan: &'a PreparedPlan,
    balance: Vec<f64>,
    basis: Vec<f64>,
    /// Balances at the end of the previous year (RMDs).
    year_end_balance: Vec<f64>,
    /// Withdrawn from each tax-deferred account this year (RMDs count what was already taken).
    withdrawn_this_year: Vec<f64>,
    /// This year's ordinary income and realised gains.
    ordinary: f64,
    gains: f64,
    /// Last year's tax, due in this year's first month.
    tax_due: f64,
    /// Taxes assessed so far.
    taxes: f64,
}

impl<'a> Household<'a> {
    fn new(plan: &'a PreparedPlan) -> Self {
        let balance: Vec<f64> = plan.accounts.iter().map(|a| a.balance).collect();
        Household {
            plan,
            basis: plan.accounts.iter().map(|a| a.basis).collect(),
            year_end_balance: balance.clone(),
            withdrawn_this_year: vec![0.0; balance.len()],
            balance,
            ordinary: 0.0,
            gains: 0.0,
            tax_due: 0.0,
            taxes: 0.0,
        }
    }

    fn total(&self) -> f64 {
        self.balance.iter().fold(0.0, |sum, b| sum + b)
    }

    fn tax_deferred(&self) -> f64 {
        self.plan
            .accounts
            .iter()
            .zip(&self.balance)
            .filter(|(a, _)| a.kind == AccountKind::TaxDeferred)
            .fold(0.0, |sum, (_, b)| sum + b)
    }

    /// This year's tax so far, at price level `index`.
    fn year_tax(&self, index: f64) -> f64 {
        match &self.plan.tax {
            Some(tax) => year_tax(
                &tax.brackets,
                tax.standard_deduction,
                tax.capital_gains_rate,
                self.ordinary,
                self.gains,
                index,
            ),
            None => 0.0,
        }
    }

    /// The year (at price level `index`) is over: assess its tax, due next month.
    fn close_year(&mut self, index: f64) {
        let tax = self.year_tax(index);
        self.tax_due = tax;
        self.taxes += tax;
        self.ordinary = 0.0;
        self.gains = 0.0;
        self.withdrawn_this_year.fill(0.0);
        self.year_end_balance.copy_from_slice(&self.balance);
    }

    /// New money into account `a` (a taxable account's basis rises with it).
    fn deposit(&mut self, a: usize, amount: f64) {
        self.balance[a] += amount;
        if self.plan.accounts[a].kind == AccountKind::Taxable {
            self.basis[a] += amount;
        }
    }

    fn deplete(&mut self) {
        self.balance.fill(0.0);
        self.basis.fill(0.0);
    }

    /// Take `amount` out of account `a`, with its tax consequences.
    fn take(&mut self, a: usize, amount: f64) {
        let value = self.balance[a];
        self.balance[a] -= amount;
        match self.plan.accounts[a].kind {
            AccountKind::Taxable => {
                if value > 0.0 {
                    let basis = self.basis[a];
                    self.gains += amount * (1.0 - basis / value);
                    self.basis[a] = basis - basis * (amount / value);
                }
            }
            AccountKind::TaxDeferred => {
                self.ordinary += amount;
                self.withdrawn_this_year[a] += amount;
            }
            AccountKind::TaxFree => {}
        }
    }

    /// Take `amount` (at most the total) from the accounts in the plan's withdrawal order.
    fn withdraw(&mut self, amount: f64, index: f64) {
        let rest = match self.plan.order {
            Order::Sequence(kinds) => self.in_order(amount, &kinds),
            Order::Proportional => {
                let total = self.total();
                let mut rest = amount;
                if total > 0.0 {
                    for a in 0..self.balance.len() {
                        let take = (amount * (self.balance[a] / total))
                            .min(self.balance[a])
                            .min(rest);
                        if take > 0.0 {
                            self.take(a, take);
                            rest -= take;
                        }
                    }
                }
                // Rounding may leave a few cents' fraction: the default order takes it.
                self.in_order(rest, &DEFAULT_ORDER)
            }
            Order::BracketFill { ceiling } => {
                let room = (ceiling * index - self.ordinary).max(0.0);
                let first = amount.min(room);
                let left = self.in_order(first, &[AccountKind::TaxDeferred]);
                self.in_order(amount - first + left, &DEFAULT_ORDER)
            }
        };
        debug_assert!(
            rest <= 1e-6 * amount.max(1.0),
            "withdrawal left {rest} of {amount}"
        );
    }

    /// Take `amount` from the accounts of `kinds`, kind by kind; returns what they could not pay.
    fn in_order(&mut self, amount: f64, kinds: &[AccountKind]) -> f64 {
        let mut rest = amount;
        for &kind in kinds {
            for a in 0..self.balance.len() {
                if rest <= 0.0 {
                    return 0.0;
                }
                if self.plan.accounts[a].kind != kind {
                    continue;
                }
                let take = rest.min(self.balance[a]);
                if take > 0.0 {
                    self.take(a, take);
                    rest -= take;
                }
            }
        }
        rest.max(0.0)
    }

    /// Required minimum distributions in the year's last month (month `t`): what the Uniform
    /// Lifetime Table requires of each tax-deferred account, less what was already withdrawn
    /// this year, moved to the taxable account as ordinary income. A dead owner's account
    /// passes to the survivor.
    fn take_rmds(&mut self, plan: &PreparedPlan, alive: &[bool; 2], t: u32) {
        for a in 0..self.balance.len() {
            let account = &plan.accounts[a];
            if account.kind != AccountKind::TaxDeferred {
                continue;
            }
            let owner = if alive[account.owner] {
                account.owner
            } else {
                1 - account.owner
            };
            let age = (plan.people[owner].age_months + t) / 12;
            if age < plan.rmd_age {
                continue;
            }
            let required =
                rmd::required(self.year_end_balance[a], age) - self.withdrawn_this_year[a];
            let amount = required.min(self.balance[a]);
            if amount > 0.0 {
                self.take(a, amount);
                self.deposit(plan.cash_account, amount);
            }
        }
    }

    fn grow(&mut self, growth: f64) {
        for b in &mut self.balance {
            *b *= growth;
        }
    }
}
