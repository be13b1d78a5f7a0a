//! The `goals` table: the product's goals with the inputs needed to simulate them, how they
//! become engine requests, and synthetic goals for demos and benchmarks
//! (`sextant goals generate N`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sextant_engine::{Goal, GoalRequest, Market, Options};
use sqlx::Row;
use time::Date;

use crate::rescore_runs::RunFilter;
use crate::{now_ms, values_row, Dialect, Store, StoreError};

/// One stored goal: the product's columns and the market inputs of its allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGoal {
    pub id: i64,
    pub user_id: String,
    pub name: String,
    /// `retirement`, `education`, `home`, `emergency_fund`, `major_purchase` or
    /// `wealth_building`.
    pub category: String,
    /// `essential`, `important` or `aspirational`.
    pub priority: String,
    /// In today's money.
    pub target_amount: f64,
    /// `YYYY-MM-DD`.
    pub target_date: String,
    pub current_savings: f64,
    pub monthly_contribution: f64,
    pub contribution_growth: f64,
    /// `conservative`, `moderate` or `aggressive`.
    pub risk_tolerance: String,
    pub success_threshold: f64,
    pub expected_return: f64,
    pub volatility: f64,
    pub inflation: f64,
}

const COLUMNS: &str = "id, user_id, name, category, priority, target_amount, target_date, \
    current_savings, monthly_contribution, contribution_growth, risk_tolerance, \
    success_threshold, expected_return, volatility, inflation";

impl StoredGoal {
    /// Months from `as_of` to the target date (a month counts once its day is reached); zero
    /// or less when the date has passed.
    pub fn months_left(&self, as_of: Date) -> Result<i64, String> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let target = Date::parse(&self.target_date, format)
            .map_err(|e| format!("target_date {:?} is not YYYY-MM-DD: {e}", self.target_date))?;
        let mut months = i64::from(target.year() - as_of.year()) * 12
            + i64::from(target.month() as u8)
            - i64::from(as_of.month() as u8);
        if target.day() < as_of.day() {
            months -= 1;
        }
        Ok(months)
    }

    /// The engine request for this goal as of `as_of`, seeded by the goal's id (so the same
    /// goal with the same inputs always scores the same).
    pub fn request(&self, horizon_months: u32, paths: u64) -> GoalRequest {
        GoalRequest {
            goal: Goal {
                initial_wealth: self.current_savings,
                monthly_contribution: self.monthly_contribution,
                contribution_growth: self.contribution_growth,
                contribution_months: None,
                monthly_withdrawal: 0.0,
                withdrawal_start_month: None,
                horizon_months,
                target_amount: self.target_amount,
                target_real: true,
                success_threshold: self.success_threshold,
            },
            market: Market {
                expected_return: Some(self.expected_return),
                volatility: Some(self.volatility),
                inflation: self.inflation.into(),
                ..Market::default()
            },
            options: Options {
                paths: Some(paths),
                seed: self.id as u64,
                ..Options::default()
            },
        }
    }
}

async fn insert_all(store: &Store, goals: &[StoredGoal], created: i64) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for chunk in goals.chunks(store.rows_per_statement()) {
        let mut sql = String::from(
            "INSERT INTO goals (user_id, name, category, priority, target_amount, target_date, \
             current_savings, monthly_contribution, contribution_growth, risk_tolerance, \
             success_threshold, expected_return, volatility, inflation, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&values_row(i, 15, ""));
        }
        let mut query = sqlx::query(&sql);
        for g in chunk {
            query = query
                .bind(&g.user_id)
                .bind(&g.name)
                .bind(&g.category)
                .bind(&g.priority)
                .bind(g.target_amount)
                .bind(&g.target_date)
                .bind(g.current_savings)
                .bind(g.monthly_contribution)
                .bind(g.contribution_growth)
                .bind(&g.risk_tolerance)
                .bind(g.success_threshold)
                .bind(g.expected_return)
                .bind(g.volatility)
                .bind(g.inflation)
                .bind(created);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await
}

fn goal(row: &sqlx::any::AnyRow) -> Result<StoredGoal, sqlx::Error> {
    Ok(StoredGoal {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        category: row.try_get("category")?,
        priority: row.try_get("priority")?,
        target_amount: row.try_get("target_amount")?,
        target_date: row.try_get("target_date")?,
        current_savings: row.try_get("current_savings")?,
        monthly_contribution: row.try_get("monthly_contribution")?,
        contribution_growth: row.try_get("contribution_growth")?,
        risk_tolerance: row.try_get("risk_tolerance")?,
        success_threshold: row.try_get("success_threshold")?,
        expected_return: row.try_get("expected_return")?,
        volatility: row.try_get("volatility")?,
        inflation: row.try_get("inflation")?,
    })
}

impl Store {
    /// Insert goals (ids are assigned by the database) in one transaction of multi-row
    /// statements.
    pub async fn insert_goals(&self, goals: &[StoredGoal]) -> Result<(), StoreError> {
        let created = now_ms();
        self.retry("inserting goals", || insert_all(self, goals, created))
            .await
    }

    /// Goals with ids in `lo..=hi` matching `filter`, by id.
    pub async fn goals_in_range(
        &self,
        lo: i64,
        hi: i64,
        filter: &RunFilter,
    ) -> Result<Vec<StoredGoal>, StoreError> {
        let (conditions, values) = filter.goal_sql(3);
        let sql = format!(
            "SELECT {COLUMNS} FROM goals WHERE id BETWEEN $1 AND $2{conditions} ORDER BY id"
        );
        let rows = self
            .retry("reading goals", || {
                let mut query = sqlx::query(&sql).bind(lo).bind(hi);
                for v in &values {
                    query = query.bind(v);
                }
                query.fetch_all(self.pool())
            })
            .await?;
        rows.iter()
            .map(goal)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error("reading goals", e))
    }

    /// How many goals are stored.
    pub async fn count_goals(&self) -> Result<i64, StoreError> {
        self.retry("counting goals", || {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM goals").fetch_one(self.pool())
        })
        .await
    }

    /// Rows per multi-row statement. PostgreSQL takes up to 65,535 parameters and is fastest
    /// with large statements; SQLite (through sqlx) binds parameters in time that grows with
    /// their number, so its statements are kept short and wrapped in transactions instead.
    pub(crate) fn rows_per_statement(&self) -> usize {
        match self.dialect() {
            Dialect::Postgres => 1_000,
            Dialect::Sqlite => 50,
        }
    }

    /// Whether `CAST(x AS DOUBLE PRECISION)` is needed to type a VALUES column.
    pub(crate) fn typed(&self, placeholder: &str, sql_type: &str) -> String {
        match self.dialect() {
            Dialect::Postgres => format!("CAST({placeholder} AS {sql_type})"),
            Dialect::Sqlite => placeholder.to_string(),
        }
    }
}

/// Realistic synthetic goals: the product's categories in plausible proportions, each with
/// its usual size and horizon, savings and contributions that leave a spread of outcomes, and
/// an allocation from the risk tolerance. The same `seed` gives the same goals.
pub fn synthetic_goals(n: usize, seed: u64, as_of: Date) -> Vec<StoredGoal> {
    let mut rng = StdRng::seed_from_u64(seed);
    let users = (n / 3).max(1);
    (0..n)
        .map(|_| synthetic_goal(&mut rng, users, as_of))
        .collect()
}

fn synthetic_goal(rng: &mut StdRng, users: usize, as_of: Date) -> StoredGoal {
    /// A category, its share of goals, its range of targets and of horizons in months.
    type Kind = (&'static str, f64, (f64, f64), (u32, u32));
    const KINDS: [Kind; 6] = [
        ("retirement", 0.30, (300_000.0, 3_000_000.0), (60, 480)),
        ("education", 0.15, (40_000.0, 300_000.0), (36, 216)),
        ("home", 0.15, (30_000.0, 200_000.0), (24, 120)),
        ("emergency_fund", 0.15, (5_000.0, 50_000.0), (6, 36)),
        ("major_purchase", 0.15, (5_000.0, 80_000.0), (12, 72)),
        ("wealth_building", 0.10, (50_000.0, 1_000_000.0), (60, 360)),
    ];
    let mut pick = rng.random::<f64>();
    let &(category, _, (lo, hi), (h_lo, h_hi)) = KINDS
        .iter()
        .find(|k| {
            pick -= k.1;
            pick < 0.0
        })
        .unwrap_or(&KINDS[0]);
    let log_uniform =
        |rng: &mut StdRng, lo: f64, hi: f64| (lo.ln() + rng.random::<f64>() * (hi / lo).ln()).exp();
    let target = (log_uniform(rng, lo, hi) / 100.0).round() * 100.0;
    let months = rng.random_range(h_lo..=h_hi);
    let (risk, expected_return, volatility): (&str, f64, f64) = match rng.random_range(0..10) {
        0..=2 => ("conservative", 0.045, 0.07),
        3..=7 => ("moderate", 0.065, 0.12),
        _ => ("aggressive", 0.08, 0.17),
    };
    let (priority, threshold) = match rng.random_range(0..10) {
        0..=3 => ("essential", 0.85),
        4..=7 => ("important", 0.75),
        _ => ("aspirational", 0.60),
    };
    let inflation = 0.025;
    let savings = (target * rng.random::<f64>().powi(2) * 0.6 / 10.0).round() * 10.0;
    // The contribution that reaches the target in expectation, scaled by 0.5–2.5: some goals
    // are comfortably funded, some far behind.
    let real = (1.0 + expected_return) / (1.0 + inflation) - 1.0;
    let r = (1.0 + real).powf(1.0 / 12.0) - 1.0;
    let growth = (1.0 + r).powi(months as i32);
    let needed = ((target - savings * growth) * r / (growth - 1.0)).max(0.0);
    let contribution = (needed * rng.random_range(0.5..2.5) / 5.0).round() * 5.0;
    let date = add_months(as_of, months);
    StoredGoal {
        id: 0,
        user_id: format!("user-{:07}", rng.random_range(0..users)),
        name: format!("{} goal", category.replace('_', " ")),
        category: category.into(),
        priority: priority.into(),
        target_amount: target,
        target_date: format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            date.month() as u8,
            date.day()
        ),
        current_savings: savings,
        monthly_contribution: contribution,
        contribution_growth: if category == "retirement" { 0.02 } else { 0.0 },
        risk_tolerance: risk.into(),
        success_threshold: threshold,
        expected_return,
        volatility,
        inflation,
    }
}

/// `date` plus `months`, on the same day of the month or the month's last day.
pub fn add_months(date: Date, months: u32) -> Date {
    let total = date.year() * 12 + (date.month() as i32 - 1) + months as i32;
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    let month = time::Month::try_from(month).expect("1..=12");
    let day = date.day().min(time::util::days_in_month(month, year));
    Date::from_calendar_date(year, month, day).expect("a valid day")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_left_counts_whole_months() {
        let as_of = time::macros::date!(2026 - 11 - 27);
        let mut g = synthetic_goals(1, 1, as_of).remove(0);
        for (date, months) in [
            ("2026-12-27", 1),
            ("2026-12-26", 0),
            ("2027-11-27", 12),
            ("2056-11-30", 360),
            ("2026-01-01", -11),
        ] {
            g.target_date = date.into();
            assert_eq!(g.months_left(as_of).unwrap(), months, "{date}");
        }
        g.target_date = "2030/01/01".into();
        assert!(g.months_left(as_of).unwrap_err().contains("target_date"));
    }

    #[test]
    fn synthetic_goals_are_reproducible_and_valid() {
        let as_of = time::macros::date!(2026 - 11 - 27);
        let a = synthetic_goals(2_000, 7, as_of);
        assert_eq!(a, synthetic_goals(2_000, 7, as_of));
        for g in &a {
            let months = g.months_left(as_of).unwrap();
            assert!((6..=480).contains(&months), "{months}");
            sextant_engine::validate::prepare(&g.request(months as u32, 100)).unwrap();
        }
        let retirement = a.iter().filter(|g| g.category == "retirement").count();
        assert!((450..750).contains(&retirement), "{retirement}");
    }
}
