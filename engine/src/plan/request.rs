//! The household plan request of docs/model.md §5: plain data, serde, field names as in the
//! model document. Nothing here is trusted; [`super::prepare`] checks every field and builds a
//! [`super::PreparedPlan`] or a [`crate::ValidationError`] naming the field and its bound.
//! Unknown fields are refused, so a typo is an error rather than a silently ignored input.

use serde::{Deserialize, Serialize};

use crate::request::{Market, Options};

/// Age at which required minimum distributions start when a plan gives none (SECURE 2.0).
pub const DEFAULT_RMD_AGE: u32 = 73;
/// The success probability a plan needs when it states none (the sustainable-spending solver).
pub const DEFAULT_PLAN_SUCCESS_THRESHOLD: f64 = 0.85;
/// Years of essential spending a flexible goal must leave in the accounts.
pub const DEFAULT_FLEXIBLE_RESERVE_YEARS: f64 = 2.0;
/// The fixed lifetime of a person who states none.
pub const DEFAULT_LIFETIME_AGE: f64 = 95.0;

/// One plan: `{"plan", "market", "options"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub plan: Plan,
    pub market: Market,
    #[serde(default)]
    pub options: Options,
}

/// A household: its people, accounts, cash flows, spending rule, goals and taxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// One or two people; person 0 is the one whose ages the outputs use.
    pub people: Vec<Person>,
    pub accounts: Vec<Account>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contributions: Vec<Contribution>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomes: Vec<Income>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub social_security: Vec<SocialSecurity>,
    pub spending: Spending,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<PlanGoal>,
    /// Absent: no tax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<Tax>,
    #[serde(default)]
    pub withdrawal_order: WithdrawalOrder,
    /// Age (of a tax-deferred account's owner) from which RMDs are taken.
    #[serde(default = "default_rmd_age")]
    #[schemars(range(min = 70, max = 120))]
    pub rmd_age: u32,
    /// Years of essential spending a flexible goal must leave behind to be paid.
    #[serde(default = "default_reserve_years")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub flexible_reserve_years: f64,
    /// The success probability the plan needs (the sustainable-spending solver).
    #[serde(default = "default_threshold")]
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
    pub success_threshold: f64,
}

/// A member of the household.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    /// Age in years at month 0, in whole months (e.g. 64.5).
    #[schemars(range(min = 0.0, max = 120.0))]
    pub age: f64,
    /// Age at which this person stops working (whole months); contributions end here by default.
    #[schemars(range(min = 0.0, max = 120.0))]
    pub retirement_age: f64,
    #[serde(default)]
    pub longevity: LongevitySpec,
}

/// How long a person may live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LongevitySpec {
    /// Dies at this age.
    Fixed { age: f64 },
    /// Gompertz survival with modal age m and dispersion b (years).
    Gompertz { modal_age: f64, dispersion: f64 },
    /// Annual death probabilities from `start_age`, constant force within a year; nobody
    /// survives past the table's end.
    Table { start_age: u32, qx: Vec<f64> },
}

impl Default for LongevitySpec {
    fn default() -> Self {
        LongevitySpec::Fixed {
            age: DEFAULT_LIFETIME_AGE,
        }
    }
}

/// An account's tax treatment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Brokerage: withdrawals realise gains on average cost.
    Taxable,
    /// Traditional 401(k)/IRA: withdrawals are ordinary income; RMDs apply.
    TaxDeferred,
    /// Roth: withdrawals are untaxed.
    TaxFree,
}

impl AccountKind {
    pub fn name(self) -> &'static str {
        match self {
            AccountKind::Taxable => "taxable",
            AccountKind::TaxDeferred => "tax_deferred",
            AccountKind::TaxFree => "tax_free",
        }
    }
}

/// An account holding the market portfolio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub name: String,
    pub kind: AccountKind,
    #[schemars(range(min = 0.0, max = 1e15))]
    pub balance: f64,
    /// Taxable accounts: what was paid for the holdings (default: the balance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_basis: Option<f64>,
    /// The person (index) who owns it: RMD ages, and contributions' default end.
    #[serde(default)]
    pub owner: usize,
    /// Asset location over `market.assets` (needs per-asset paths, docs/model.md §4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
}

/// Saving into an account every month while its owner works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    /// The account's name.
    pub account: String,
    #[schemars(range(min = 0.0, max = 1e15))]
    pub monthly_amount: f64,
    /// Annual nominal step-up, applied in whole plan years.
    #[serde(default)]
    pub growth: f64,
    /// Age of the account's owner at which contributions stop (default: their retirement age).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_age: Option<f64>,
}

/// A pension, annuity or part-time wage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Income {
    pub name: String,
    /// Today's dollars when indexed, else nominal.
    #[schemars(range(min = 0.0, max = 1e15))]
    pub monthly_amount: f64,
    #[serde(default)]
    pub owner: usize,
    /// Owner's age at the first payment (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_age: Option<f64>,
    /// Owner's age at which it stops (default: never; a dead owner's income stops at death
    /// unless `survivor_fraction` continues it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_age: Option<f64>,
    /// Grows with the price index.
    #[serde(default = "default_true")]
    pub indexed: bool,
    /// Counts as ordinary income.
    #[serde(default = "default_true")]
    pub taxable: bool,
    /// Fraction paid to the survivor after the owner dies.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub survivor_fraction: f64,
}

/// One person's Social Security benefit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SocialSecurity {
    pub person: usize,
    /// Primary insurance amount: the monthly benefit at full retirement age, today's dollars.
    #[schemars(range(min = 0.0, max = 1e15))]
    pub pia: f64,
    #[serde(default = "default_full_retirement_age")]
    #[schemars(range(min = 65.0, max = 67.0))]
    pub full_retirement_age: f64,
    /// 62 … 70, whole months.
    #[schemars(range(min = 62.0, max = 70.0))]
    pub claim_age: f64,
}

/// The household's spending and the rule that sets it each year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spending {
    /// Monthly, today's dollars: must be paid, or the plan fails.
    #[schemars(range(min = 0.0, max = 1e15))]
    pub essential: f64,
    /// Monthly, today's dollars: paid when the accounts allow.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1e15))]
    pub discretionary: f64,
    #[serde(default)]
    pub start: SpendingStart,
    /// Spending factor after the first of two people dies.
    #[serde(default = "default_one")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub survivor_fraction: f64,
    #[serde(default)]
    pub rule: SpendingRule,
}

/// When spending starts: once everyone has retired, or at a plan month.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SpendingStart {
    Retirement(RetirementWord),
    Month(u32),
}

/// The word `"retirement"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetirementWord {
    Retirement,
}

impl Default for SpendingStart {
    fn default() -> Self {
        SpendingStart::Retirement(RetirementWord::Retirement)
    }
}

/// The rule that sets each retirement year's spending (never below essential spending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SpendingRule {
    /// `"fixed"`.
    Named(FixedWord),
    Rule(RuleSpec),
}

/// The word `"fixed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FixedWord {
    Fixed,
}

impl Default for SpendingRule {
    fn default() -> Self {
        SpendingRule::Named(FixedWord::Fixed)
    }
}

/// A spending rule with parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleSpec {
    /// (essential + discretionary) indexed by prices.
    Fixed,
    /// `rate` × wealth at the year's start, yearly.
    Percent { rate: f64 },
    /// `rate` × wealth, between essential and `ceiling` (monthly, today's dollars).
    FloorCeiling { rate: f64, ceiling: f64 },
    /// Variable percentage withdrawal: the annuity payment of wealth over the years to `to_age`.
    Vpw {
        #[serde(default = "default_vpw_return")]
        real_return: f64,
        #[serde(default = "default_vpw_age")]
        to_age: f64,
    },
    /// Guyton–Klinger guardrails.
    Guardrails {
        #[serde(default = "default_upper")]
        upper: f64,
        #[serde(default = "default_lower")]
        lower: f64,
        #[serde(default = "default_adjust")]
        adjust: f64,
        #[serde(default = "default_min_years_left")]
        min_years_left: f64,
        /// The age (of the youngest living person) the years left are counted to.
        #[serde(default = "default_planning_age")]
        planning_age: f64,
    },
}

/// A one-off expense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanGoal {
    pub name: String,
    /// Today's dollars.
    #[schemars(range(min = 0.0, max = 1e15))]
    pub amount: f64,
    /// Due when `person` reaches this age (give this or `month`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<f64>,
    #[serde(default)]
    pub person: usize,
    /// Due in this plan month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<u32>,
    #[serde(default)]
    pub priority: Priority,
}

/// Whether a goal must be paid.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Must be paid; not paying it fails the plan.
    #[default]
    Essential,
    /// Paid only when it leaves `flexible_reserve_years` of essential spending.
    Flexible,
}

/// Annual income tax, in today's dollars (indexed by prices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tax {
    pub brackets: Vec<TaxBracket>,
    #[serde(default)]
    pub standard_deduction: f64,
    #[serde(default)]
    pub capital_gains_rate: f64,
    #[serde(default = "default_ss_taxable")]
    pub social_security_taxable: f64,
}

/// Annual ordinary income above `over` is taxed at `rate` (up to the next bracket).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxBracket {
    pub over: f64,
    pub rate: f64,
}

/// The order in which accounts pay the net need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum WithdrawalOrder {
    /// A permutation of the three kinds.
    Sequence(Vec<AccountKind>),
    /// `"proportional"`: from every account in proportion to its balance.
    Named(ProportionalWord),
    /// `{"kind": "bracket_fill", "up_to_rate": 0.12}`.
    BracketFill(BracketFill),
}

/// The word `"proportional"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProportionalWord {
    Proportional,
}

/// Tax-deferred first up to the top of the `up_to_rate` bracket each year, then the default order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BracketFill {
    pub kind: BracketFillWord,
    pub up_to_rate: f64,
}

/// The word `"bracket_fill"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BracketFillWord {
    BracketFill,
}

/// Taxable, then tax-deferred, then tax-free.
pub const DEFAULT_ORDER: [AccountKind; 3] = [
    AccountKind::Taxable,
    AccountKind::TaxDeferred,
    AccountKind::TaxFree,
];

impl Default for WithdrawalOrder {
    fn default() -> Self {
        WithdrawalOrder::Sequence(DEFAULT_ORDER.to_vec())
    }
}

fn default_true() -> bool {
    true
}
fn default_one() -> f64 {
    1.0
}
fn default_rmd_age() -> u32 {
    DEFAULT_RMD_AGE
}
fn default_reserve_years() -> f64 {
    DEFAULT_FLEXIBLE_RESERVE_YEARS
}
fn default_threshold() -> f64 {
    DEFAULT_PLAN_SUCCESS_THRESHOLD
}
fn default_full_retirement_age() -> f64 {
    67.0
}
fn default_vpw_return() -> f64 {
    0.04
}
fn default_vpw_age() -> f64 {
    100.0
}
fn default_upper() -> f64 {
    1.2
}
fn default_lower() -> f64 {
    0.8
}
fn default_adjust() -> f64 {
    0.10
}
fn default_min_years_left() -> f64 {
    15.0
}
fn default_planning_age() -> f64 {
    95.0
}
fn default_ss_taxable() -> f64 {
    0.85
}
