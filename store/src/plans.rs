//! The `plans` table: the product's household plans (docs/model.md §5) kept for the nightly
//! re-score, how a stored plan becomes the engine request of a later date, and synthetic plans
//! for demos and benchmarks (`sextant plans generate N`).
//!
//! A plan is stored as its request's JSON with the date its ages and balances are of
//! (`as_of`). A run as of a later date ages the people by the whole months between (the same
//! rule as a goal's horizon, [`months_between`]) and keeps the balances as stored: the product
//! writes a plan again when its balances change, as it does a goal's savings.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sextant_engine::plan::request::{
    Account, AccountKind, BracketFill, BracketFillWord, LongevitySpec, Person, Plan,
    ProportionalWord, RuleSpec, SocialSecurity, Spending, SpendingRule, SpendingStart, Tax,
    TaxBracket, WithdrawalOrder,
};
use sextant_engine::{Market, Options, PlanRequest};
use sqlx::Row;
use time::Date;

use crate::rescore_runs::DATE;
use crate::{now_ms, values_row, Store, StoreError};

/// One stored plan.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPlan {
    pub id: i64,
    pub user_id: String,
    pub name: String,
    /// The request as the product wrote it, its ages and balances those of `as_of`.
    pub request: PlanRequest,
    /// `YYYY-MM-DD`.
    pub as_of: String,
}

/// Whole months from `from` to `to` (a month counts once its day is reached); negative when
/// `to` is earlier.
pub fn months_between(from: Date, to: Date) -> i64 {
    let mut months = i64::from(to.year() - from.year()) * 12 + i64::from(to.month() as u8)
        - i64::from(from.month() as u8);
    if to.day() < from.day() {
        months -= 1;
    }
    months
}

impl StoredPlan {
    /// The engine request for this plan as of `as_of` with `paths` paths, seeded by the plan's
    /// id (the same plan with the same inputs always scores the same): the people `k` whole
    /// months older, where `k` counts from the plan's own date; plan months (a spending start,
    /// a goal's month) `k` sooner; goals already due dropped. A date before the plan's own (a
    /// plan written after the run's date, or in a time zone ahead of it) takes the plan as it
    /// is stored: it is never made younger. A plan date that does not read is an error.
    pub fn request_as_of(&self, as_of: Date, paths: u64) -> Result<PlanRequest, String> {
        let stored = Date::parse(&self.as_of, DATE)
            .map_err(|e| format!("as_of {:?} is not YYYY-MM-DD: {e}", self.as_of))?;
        let months = months_between(stored, as_of).clamp(0, i64::from(u32::MAX));
        let mut request = aged(&self.request, months as u32);
        request.options.paths = Some(paths);
        request.options.seed = self.id as u64;
        Ok(request)
    }
}

/// `request` with its people `months` months older.
pub fn aged(request: &PlanRequest, months: u32) -> PlanRequest {
    let mut request = request.clone();
    if months == 0 {
        return request;
    }
    let years = f64::from(months) / 12.0;
    let plan = &mut request.plan;
    let ages: Vec<f64> = plan.people.iter().map(|p| p.age + years).collect();
    for (person, &age) in plan.people.iter_mut().zip(&ages) {
        person.age = age;
    }
    if let SpendingStart::Month(start) = &mut plan.spending.start {
        *start = start.saturating_sub(months);
    }
    plan.goals.retain_mut(|goal| {
        if let Some(month) = &mut goal.month {
            if *month < months {
                return false;
            }
            *month -= months;
        }
        match (goal.age, ages.get(goal.person)) {
            // Due before today: paid already (or missed), no longer the plan's.
            (Some(due), Some(&age)) => due + 1e-9 >= age,
            _ => true,
        }
    });
    request
}

const COLUMNS: &str = "id, user_id, name, request, as_of";

fn plan(row: &sqlx::any::AnyRow) -> Result<StoredPlan, sqlx::Error> {
    let request: String = row.try_get("request")?;
    Ok(StoredPlan {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        request: serde_json::from_str(&request).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        as_of: row.try_get("as_of")?,
    })
}

async fn insert_all(store: &Store, plans: &[StoredPlan], created: i64) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for chunk in plans.chunks(store.rows_per_statement()) {
        let mut sql =
            String::from("INSERT INTO plans (user_id, name, request, as_of, created_at) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&values_row(i, 5, ""));
        }
        let mut query = sqlx::query(&sql);
        for plan in chunk {
            query = query
                .bind(&plan.user_id)
                .bind(&plan.name)
                .bind(serde_json::to_string(&plan.request).expect("a plan request serialises"))
                .bind(&plan.as_of)
                .bind(created);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await
}

impl Store {
    /// Insert plans (ids are assigned by the database) in one transaction.
    pub async fn insert_plans(&self, plans: &[StoredPlan]) -> Result<(), StoreError> {
        let created = now_ms();
        self.retry("inserting plans", || insert_all(self, plans, created))
            .await
    }

    /// Plans with ids in `lo..=hi` of `user_id` (any user when `None`), by id.
    pub async fn plans_in_range(
        &self,
        lo: i64,
        hi: i64,
        user_id: Option<&str>,
    ) -> Result<Vec<StoredPlan>, StoreError> {
        let sql = match user_id {
            Some(_) => format!(
                "SELECT {COLUMNS} FROM plans WHERE id BETWEEN $1 AND $2 AND user_id = $3 \
                 ORDER BY id"
            ),
            None => format!("SELECT {COLUMNS} FROM plans WHERE id BETWEEN $1 AND $2 ORDER BY id"),
        };
        let rows = self
            .retry("reading plans", || {
                let mut query = sqlx::query(&sql).bind(lo).bind(hi);
                if let Some(user) = user_id {
                    query = query.bind(user);
                }
                query.fetch_all(self.pool())
            })
            .await?;
        rows.iter()
            .map(plan)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error("reading plans", e))
    }

    /// How many plans are stored.
    pub async fn count_plans(&self) -> Result<i64, StoreError> {
        self.retry("counting plans", || {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM plans").fetch_one(self.pool())
        })
        .await
    }
}

/// Realistic synthetic households as of `as_of`: one or two people from their forties to their
/// seventies, one to three kinds of account, Social Security, sometimes a pension, spending
/// from well within to well beyond what the savings carry, a spread of spending rules and
/// withdrawal orders, taxes for most. The same `seed` gives the same plans.
pub fn synthetic_plans(n: usize, seed: u64, as_of: Date) -> Vec<StoredPlan> {
    let mut rng = StdRng::seed_from_u64(seed);
    let users = (n / 2).max(1);
    let as_of = as_of.format(DATE).expect("a date formats");
    (0..n)
        .map(|_| StoredPlan {
            id: 0,
            user_id: format!("user-{:07}", rng.random_range(0..users)),
            name: "retirement plan".into(),
            request: synthetic_plan(&mut rng),
            as_of: as_of.clone(),
        })
        .collect()
}

fn synthetic_plan(rng: &mut StdRng) -> PlanRequest {
    let whole_months = |years: f64| (years * 12.0).round() / 12.0;
    let couple = rng.random_bool(0.55);
    let first_age = whole_months(rng.random_range(45.0..75.0));
    let mut people = vec![person(rng, "A", first_age)];
    if couple {
        let age = whole_months((first_age + rng.random_range(-5.0..5.0)).clamp(40.0, 80.0));
        people.push(person(rng, "B", age));
    }
    let log_uniform =
        |rng: &mut StdRng, lo: f64, hi: f64| (lo.ln() + rng.random::<f64>() * (hi / lo).ln()).exp();
    let round = |x: f64, to: f64| (x / to).round() * to;
    let wealth = round(log_uniform(rng, 100_000.0, 4_000_000.0), 1_000.0);
    // Split across kinds: always some tax-deferred, often taxable and tax-free.
    let mut shares = [
        rng.random::<f64>(),
        0.3 + rng.random::<f64>(),
        rng.random::<f64>(),
    ];
    if rng.random_bool(0.3) {
        shares[0] = 0.0;
    }
    if rng.random_bool(0.4) {
        shares[2] = 0.0;
    }
    let total: f64 = shares.iter().sum();
    let kinds = [
        AccountKind::Taxable,
        AccountKind::TaxDeferred,
        AccountKind::TaxFree,
    ];
    let accounts: Vec<Account> = kinds
        .iter()
        .zip(shares)
        .filter(|(_, share)| *share > 0.0)
        .enumerate()
        .map(|(i, (&kind, share))| {
            let balance = round(wealth * share / total, 100.0);
            Account {
                name: format!("{}-{i}", kind.name()),
                kind,
                balance,
                cost_basis: (kind == AccountKind::Taxable).then(|| round(balance * 0.7, 100.0)),
                owner: i % people.len(),
                weights: None,
            }
        })
        .collect();
    let social_security = people
        .iter()
        .enumerate()
        .map(|(i, p)| SocialSecurity {
            person: i,
            pia: round(rng.random_range(1_000.0..3_600.0), 10.0),
            full_retirement_age: 67.0,
            claim_age: p
                .age
                .clamp(62.0, 70.0)
                .max(whole_months(rng.random_range(62.0..70.0))),
        })
        .collect();
    // Spending from 2.5% to 7% of the savings a year, plus what Social Security brings.
    let rate = rng.random_range(0.025..0.07);
    let monthly = round(wealth * rate / 12.0 + 1_500.0 * people.len() as f64, 50.0);
    let essential = round(monthly * rng.random_range(0.55..0.8), 50.0);
    let rule = match rng.random_range(0..4) {
        0 => SpendingRule::Rule(RuleSpec::Guardrails {
            upper: 1.2,
            lower: 0.8,
            adjust: 0.1,
            min_years_left: 15.0,
            planning_age: 95.0,
        }),
        1 => SpendingRule::Rule(RuleSpec::FloorCeiling {
            rate: 0.045,
            ceiling: round(monthly * 1.3, 50.0),
        }),
        _ => SpendingRule::default(),
    };
    let tax = rng.random_bool(0.7).then(|| Tax {
        brackets: [
            (0.0, 0.10),
            (23_200.0, 0.12),
            (94_300.0, 0.22),
            (201_050.0, 0.24),
            (383_900.0, 0.32),
        ]
        .into_iter()
        .map(|(over, rate)| TaxBracket { over, rate })
        .collect(),
        standard_deduction: if couple { 29_200.0 } else { 14_600.0 },
        capital_gains_rate: 0.15,
        social_security_taxable: 0.85,
    });
    let withdrawal_order = match rng.random_range(0..4) {
        0 => WithdrawalOrder::Named(ProportionalWord::Proportional),
        1 if tax.is_some() => WithdrawalOrder::BracketFill(BracketFill {
            kind: BracketFillWord::BracketFill,
            up_to_rate: 0.12,
        }),
        _ => WithdrawalOrder::default(),
    };
    let (expected_return, volatility) = match rng.random_range(0..3) {
        0 => (0.045, 0.07),
        1 => (0.06, 0.11),
        _ => (0.07, 0.15),
    };
    PlanRequest {
        plan: Plan {
            people,
            accounts,
            contributions: Vec::new(),
            incomes: Vec::new(),
            social_security,
            spending: Spending {
                essential,
                discretionary: monthly - essential,
                start: SpendingStart::default(),
                survivor_fraction: if couple { 0.7 } else { 1.0 },
                rule,
            },
            goals: Vec::new(),
            tax,
            withdrawal_order,
            rmd_age: sextant_engine::plan::request::DEFAULT_RMD_AGE,
            flexible_reserve_years: sextant_engine::plan::request::DEFAULT_FLEXIBLE_RESERVE_YEARS,
            success_threshold: sextant_engine::plan::request::DEFAULT_PLAN_SUCCESS_THRESHOLD,
        },
        market: Market {
            expected_return: Some(expected_return),
            volatility: Some(volatility),
            inflation: 0.025.into(),
            ..Market::default()
        },
        options: Options::default(),
    }
}

fn person(rng: &mut StdRng, name: &str, age: f64) -> Person {
    let retirement_age = age.max((rng.random_range(60.0f64..68.0) * 12.0).round() / 12.0);
    Person {
        name: name.into(),
        age,
        retirement_age,
        longevity: LongevitySpec::Gompertz {
            modal_age: rng.random_range(86.0..93.0),
            dispersion: rng.random_range(8.5..10.5),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_engine::plan::prepare_plan;

    #[test]
    fn months_between_counts_whole_months() {
        let from = time::macros::date!(2026 - 11 - 27);
        for (to, months) in [
            (time::macros::date!(2026 - 12 - 27), 1),
            (time::macros::date!(2026 - 12 - 26), 0),
            (time::macros::date!(2027 - 11 - 27), 12),
            (time::macros::date!(2026 - 01 - 01), -11),
        ] {
            assert_eq!(months_between(from, to), months, "{to}");
        }
    }

    fn example() -> PlanRequest {
        serde_json::from_str(include_str!("../../examples/plan-couple.json")).unwrap()
    }

    #[test]
    fn a_later_run_ages_the_people_and_brings_plan_months_closer() {
        let stored = StoredPlan {
            id: 7,
            user_id: "u".into(),
            name: "n".into(),
            request: example(),
            as_of: "2026-01-15".into(),
        };
        let request = stored
            .request_as_of(time::macros::date!(2028 - 03 - 15), 500)
            .unwrap();
        // 26 months later.
        let ages: Vec<f64> = request.plan.people.iter().map(|p| p.age).collect();
        assert!((ages[0] - (62.0 + 26.0 / 12.0)).abs() < 1e-12, "{ages:?}");
        assert!((ages[1] - (60.0 + 26.0 / 12.0)).abs() < 1e-12, "{ages:?}");
        // The roof (month 60) is 26 months nearer; the car (age 70) still ahead.
        let goals: Vec<(&str, Option<u32>)> = request
            .plan
            .goals
            .iter()
            .map(|g| (g.name.as_str(), g.month))
            .collect();
        assert_eq!(goals, vec![("new car", None), ("roof", Some(34))]);
        assert_eq!((request.options.paths(), request.options.seed), (500, 7));
        prepare_plan(&request).unwrap();
        // Past the roof's month and Alex's 70th birthday, both are gone.
        let later = stored
            .request_as_of(time::macros::date!(2035 - 01 - 15), 500)
            .unwrap();
        assert!(later.plan.goals.is_empty(), "{:?}", later.plan.goals);
        // Earlier than the plan's own date: the plan as stored.
        let earlier = stored
            .request_as_of(time::macros::date!(2025 - 12 - 31), 500)
            .unwrap();
        assert_eq!(earlier.plan, stored.request.plan);
        let bad = StoredPlan {
            as_of: "2026/01/15".into(),
            ..stored
        };
        let err = bad.request_as_of(time::macros::date!(2028 - 03 - 15), 500);
        assert!(err.unwrap_err().contains("as_of"));
    }

    #[test]
    fn synthetic_plans_are_reproducible_and_valid() {
        let as_of = time::macros::date!(2026 - 11 - 27);
        let plans = synthetic_plans(500, 3, as_of);
        assert_eq!(plans, synthetic_plans(500, 3, as_of));
        for p in &plans {
            let request = p.request_as_of(as_of, 100).unwrap();
            prepare_plan(&request).unwrap_or_else(|e| panic!("{e}: {request:?}"));
        }
        let couples = plans
            .iter()
            .filter(|p| p.request.plan.people.len() == 2)
            .count();
        assert!((200..350).contains(&couples), "{couples}");
    }
}
