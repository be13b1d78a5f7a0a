//! The nightly re-score's tables: `rescore_runs` (one row a run, keyed by its run key),
//! `rescore_shards` (ranges of goal or plan ids, each leased by one worker at a time),
//! `rescore_scores` (each goal's score in a run) and `rescore_plan_scores` (each plan's). What
//! a run is and how workers share it is the service's `rescore` module; this one owns only the
//! SQL, so that every statement the database sees lives in this crate.
//!
//! Leasing differs by database (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite serialises
//! writers). A shard commits in one transaction: the shard marked done (only if still leased by
//! the committing worker), each goal's (or plan's) score and the goals (or plans) updated in
//! multi-row statements.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::Row;
use time::Date;

use crate::{now_ms, values_row, Dialect, Store, StoreError};

/// How run dates are written: `YYYY-MM-DD`.
pub const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// What a re-scoring run covers; every field that is set must match. Plans have no category
/// or priority: a filter on either covers goals only.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    /// Only goals (`goal`) or only plans (`plan`); default both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ScoreKind>,
    /// Goals of this category only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Goals of this priority only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// What a shard holds: goals (docs/model.md §1) or household plans (§5).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    Goal,
    Plan,
}

impl ScoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreKind::Goal => "goal",
            ScoreKind::Plan => "plan",
        }
    }
}

impl RunFilter {
    pub fn covers_goals(&self) -> bool {
        self.kind != Some(ScoreKind::Plan)
    }

    pub fn covers_plans(&self) -> bool {
        self.kind != Some(ScoreKind::Goal) && self.category.is_none() && self.priority.is_none()
    }

    /// The filter as SQL conditions on the goals table, on parameters from `$first` on, and
    /// their values.
    pub fn goal_sql(&self, first: usize) -> (String, Vec<String>) {
        let mut conditions = String::new();
        let mut values = Vec::new();
        for (column, value) in [
            ("category", &self.category),
            ("priority", &self.priority),
            ("user_id", &self.user_id),
        ] {
            if let Some(value) = value {
                conditions.push_str(&format!(" AND {column} = ${}", first + values.len()));
                values.push(value.clone());
            }
        }
        (conditions, values)
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: i64,
    pub run_key: String,
    pub filter: RunFilter,
    /// Paths per goal.
    pub paths: u64,
    /// Paths per plan (each of its sustainable-spending search's runs).
    pub plan_paths: u64,
    /// The standard error of success each goal's score is to reach (`paths` is then its first
    /// round's); `None`: `paths` paths.
    pub precision: Option<f64>,
    pub as_of: Date,
    pub total_goals: u64,
    pub total_plans: u64,
    pub shards: u64,
}

/// What a new run is (its key, the goals it covers, how it is cut).
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub run_key: &'a str,
    pub filter: &'a RunFilter,
    pub paths: u64,
    pub plan_paths: u64,
    pub precision: Option<f64>,
    /// Goals per shard.
    pub shard_size: u64,
    /// Plans per shard.
    pub plan_shard_size: u64,
    pub as_of: Date,
    /// Who started it (an admin).
    pub owner: &'a str,
}

/// One goal's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub goal_id: i64,
    pub success_probability: Option<f64>,
    pub required_monthly_savings: Option<f64>,
    /// Success's standard error under the sampler that scored it.
    pub standard_error: Option<f64>,
    /// `on_track` (success at or above the threshold), `at_risk` (within 10 points below),
    /// `off_track` (beneath), `past_due` (the target date has come) or `invalid` (inputs out
    /// of the engine's bounds; logged).
    pub funding_status: &'static str,
    pub path_steps: u64,
}

/// One plan's score.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanScored {
    pub plan_id: i64,
    pub success_probability: Option<f64>,
    /// The largest monthly essential + discretionary spending (today's dollars) whose success
    /// meets the plan's threshold; 0 when even none does.
    pub sustainable_spending: Option<f64>,
    /// Success's standard error at the stated spending.
    pub standard_error: Option<f64>,
    /// As a goal's, against the plan's `success_threshold`; `invalid` when the stored plan no
    /// longer prepares as of the run's date (logged).
    pub funding_status: &'static str,
}

/// A leased shard: its number, what it holds and the ids it covers (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub shard: i64,
    pub kind: ScoreKind,
    pub lo: i64,
    pub hi: i64,
}

const RUN_COLUMNS: &str = "id, run_key, filter, paths, plan_paths, success_precision, as_of, \
    total_goals, total_plans, shards";

impl Store {
    /// Create `run` with its shards in one transaction (so workers starting together agree on
    /// one); nothing when its key exists. Then the stored run with that key.
    pub async fn create_run(&self, run: &NewRun<'_>) -> Result<Run, StoreError> {
        let as_of = run.as_of.format(DATE).expect("a date formats");
        let filter = serde_json::to_string(run.filter).expect("a filter serialises");
        self.retry("creating the re-scoring run", || {
            create_run(self, run, &filter, &as_of)
        })
        .await?;
        self.load_run(run.run_key)
            .await?
            .ok_or_else(|| self.error("reading the re-scoring run", sqlx::Error::RowNotFound))
    }

    /// The run with key `key`, if any.
    pub async fn load_run(&self, key: &str) -> Result<Option<Run>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM rescore_runs WHERE run_key = $1");
        let row = self
            .retry("reading the re-scoring run", || {
                sqlx::query(&sql).bind(key).fetch_optional(self.pool())
            })
            .await?;
        row.map(|row| run_of(&row))
            .transpose()
            .map_err(|e| self.error("reading the re-scoring run", e))
    }

    /// Runs that nobody works on: not complete, with shards left, and no live lease (the
    /// worker that held them died, or the replica that was asked to run them stopped).
    pub async fn unattended_runs(&self) -> Result<Vec<Run>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM rescore_runs r \
             WHERE r.status <> 'complete' \
             AND EXISTS (SELECT 1 FROM rescore_shards s WHERE s.run_id = r.id AND \
               (s.status = 'pending' OR (s.status = 'leased' AND s.lease_until < $1))) \
             AND NOT EXISTS (SELECT 1 FROM rescore_shards s WHERE s.run_id = r.id AND \
               s.status = 'leased' AND s.lease_until >= $1) \
             ORDER BY id"
        );
        let rows = self
            .retry("looking for unattended re-scoring runs", || {
                sqlx::query(&sql).bind(now_ms()).fetch_all(self.pool())
            })
            .await?;
        rows.iter()
            .map(run_of)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error("reading the re-scoring runs", e))
    }

    /// Lease the first shard that is pending, or whose lease has expired, or that `worker`
    /// held before it restarted, for `lease`.
    pub async fn lease_shard(
        &self,
        run_id: i64,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let skip_locked = match self.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE rescore_shards SET status = 'leased', owner = $1, lease_until = $2, \
             attempts = attempts + 1 WHERE run_id = $3 AND shard = (SELECT shard FROM \
             rescore_shards WHERE run_id = $3 AND (status = 'pending' OR (status = 'leased' AND \
             (lease_until < $4 OR owner = $1))) ORDER BY shard LIMIT 1{skip_locked}) \
             RETURNING shard, lo, hi, kind"
        );
        let lease_ms = lease.as_millis() as i64;
        let row = self
            .retry("leasing a shard", || {
                let now = now_ms();
                sqlx::query(&sql)
                    .bind(worker)
                    .bind(now + lease_ms)
                    .bind(run_id)
                    .bind(now)
                    .fetch_optional(self.pool())
            })
            .await?;
        row.map(|r| {
            let kind = match r.try_get::<String, _>(3)?.as_str() {
                "plan" => ScoreKind::Plan,
                _ => ScoreKind::Goal,
            };
            Ok(Lease {
                shard: r.try_get(0)?,
                kind,
                lo: r.try_get(1)?,
                hi: r.try_get(2)?,
            })
        })
        .transpose()
        .map_err(|e| self.error("leasing a shard", e))
    }

    /// Give a leased shard back to the run (a worker told to stop), so that another worker
    /// takes it at once rather than after the lease.
    pub async fn release_shard(
        &self,
        run_id: i64,
        shard: i64,
        worker: &str,
    ) -> Result<(), StoreError> {
        self.retry("giving a shard back", || {
            sqlx::query(
                "UPDATE rescore_shards SET status = 'pending', owner = NULL, lease_until = NULL \
                 WHERE run_id = $1 AND shard = $2 AND status = 'leased' AND owner = $3",
            )
            .bind(run_id)
            .bind(shard)
            .bind(worker)
            .execute(self.pool())
        })
        .await
        .map(drop)
    }

    /// Give back every shard `worker` holds (a replica shutting down while its worker may still
    /// be scoring): pending again for any worker at once; a commit by the old lease is then
    /// refused. How many were given back.
    pub async fn release_worker_shards(&self, worker: &str) -> Result<u64, StoreError> {
        self.retry("giving a worker's shards back", || {
            sqlx::query(
                "UPDATE rescore_shards SET status = 'pending', owner = NULL, lease_until = NULL \
                 WHERE status = 'leased' AND owner = $1",
            )
            .bind(worker)
            .execute(self.pool())
        })
        .await
        .map(|done| done.rows_affected())
    }

    /// The shard's checkpoint, its scores and its goals in one transaction; `false` (and
    /// nothing written) when the shard is no longer leased by `worker`.
    pub async fn commit_shard(
        &self,
        run_id: i64,
        shard: i64,
        worker: &str,
        scores: &[Scored],
    ) -> Result<bool, StoreError> {
        self.retry("committing a shard", || {
            commit_shard(self, run_id, shard, worker, scores)
        })
        .await
    }

    /// [`Store::commit_shard`] for a shard of plans.
    pub async fn commit_plan_shard(
        &self,
        run_id: i64,
        shard: i64,
        worker: &str,
        scores: &[PlanScored],
    ) -> Result<bool, StoreError> {
        self.retry("committing a shard of plans", || {
            commit_shard(self, run_id, shard, worker, scores)
        })
        .await
    }

    /// Shards not yet done.
    pub async fn open_shards(&self, run_id: i64) -> Result<i64, StoreError> {
        self.retry("counting open shards", || {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM rescore_shards WHERE run_id = $1 AND status <> 'done'",
            )
            .bind(run_id)
            .fetch_one(self.pool())
        })
        .await
    }

    /// Goals and plans in done shards.
    pub async fn done_items(&self, run_id: i64) -> Result<u64, StoreError> {
        self.retry("counting scored goals and plans", || {
            sqlx::query_scalar::<_, i64>(
                "SELECT (SELECT COUNT(*) FROM rescore_scores WHERE run_id = $1) + \
                 (SELECT COUNT(*) FROM rescore_plan_scores WHERE run_id = $1)",
            )
            .bind(run_id)
            .fetch_one(self.pool())
        })
        .await
        .map(|n| n as u64)
    }

    /// Mark the run complete (once).
    pub async fn finish_run(&self, run_id: i64) -> Result<(), StoreError> {
        self.retry("finishing the run", || {
            sqlx::query(
                "UPDATE rescore_runs SET status = 'complete', finished_at = $2 \
                 WHERE id = $1 AND status <> 'complete'",
            )
            .bind(run_id)
            .bind(now_ms())
            .execute(self.pool())
        })
        .await
        .map(drop)
    }

    /// A run's scored goals (or plans) by funding status.
    pub async fn scores_by_status(
        &self,
        run_id: i64,
        kind: ScoreKind,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let table = match kind {
            ScoreKind::Goal => "rescore_scores",
            ScoreKind::Plan => "rescore_plan_scores",
        };
        let sql = format!(
            "SELECT funding_status, COUNT(*) FROM {table} WHERE run_id = $1 \
             GROUP BY funding_status"
        );
        let rows = self
            .retry("counting scores by status", || {
                sqlx::query(&sql).bind(run_id).fetch_all(self.pool())
            })
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)? as u64)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error("counting scores by status", e))
    }

    /// A run's state for `GET /v1/rescore-runs/{id}`.
    pub async fn run_status(&self, run_id: i64) -> Result<Option<serde_json::Value>, StoreError> {
        let row = self
            .retry("reading the re-scoring run", || {
                sqlx::query(
                    "SELECT r.id, r.run_key, r.status, r.paths, r.as_of, r.total_goals, r.shards, \
                     r.created_at, r.finished_at, r.plan_paths, r.total_plans, \
                     (SELECT COUNT(*) FROM rescore_shards s WHERE s.run_id = r.id AND s.status = 'done'), \
                     r.success_precision \
                     FROM rescore_runs r WHERE r.id = $1",
                )
                .bind(run_id)
                .fetch_optional(self.pool())
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let read = |e| self.error("reading the re-scoring run", e);
        let by_status = self.scores_by_status(run_id, ScoreKind::Goal).await?;
        let plans_by_status = self.scores_by_status(run_id, ScoreKind::Plan).await?;
        let scored: u64 = by_status.values().sum();
        let plans_scored: u64 = plans_by_status.values().sum();
        let total_goals = row.try_get::<i64, _>(5).map_err(read)?;
        let total_plans = row.try_get::<i64, _>(10).map_err(read)?;
        let total = (total_goals + total_plans) as u64;
        Ok(Some(serde_json::json!({
            "id": row.try_get::<i64, _>(0).map_err(read)?,
            "run_key": row.try_get::<String, _>(1).map_err(read)?,
            "status": row.try_get::<String, _>(2).map_err(read)?,
            "paths": row.try_get::<i64, _>(3).map_err(read)?,
            "as_of": row.try_get::<String, _>(4).map_err(read)?,
            "total_goals": total_goals,
            "shards": row.try_get::<i64, _>(6).map_err(read)?,
            "shards_done": row.try_get::<i64, _>(11).map_err(read)?,
            "goals_scored": scored,
            "plan_paths": row.try_get::<i64, _>(9).map_err(read)?,
            "precision": row.try_get::<Option<f64>, _>(12).map_err(read)?,
            "total_plans": total_plans,
            "plans_scored": plans_scored,
            "progress": if total > 0 {
                (scored + plans_scored) as f64 / total as f64
            } else {
                1.0
            },
            "by_status": by_status,
            "plans_by_status": plans_by_status,
            "created_at_ms": row.try_get::<i64, _>(7).map_err(read)?,
            "finished_at_ms": row.try_get::<Option<i64>, _>(8).map_err(read)?,
        })))
    }
}

/// One transaction: the run, its goals' ids cut into shards, and its totals; nothing when the
/// key exists.
async fn create_run(
    store: &Store,
    run: &NewRun<'_>,
    filter: &str,
    as_of: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO rescore_runs (run_key, filter, paths, plan_paths, as_of, status, \
         total_goals, total_plans, shards, engine_version, created_at, owner, success_precision) \
         VALUES ($1, $2, $3, $4, $5, 'running', 0, 0, 0, $6, $7, $8, $9) \
         ON CONFLICT (run_key) DO NOTHING RETURNING id",
    )
    .bind(run.run_key)
    .bind(filter)
    .bind(run.paths as i64)
    .bind(run.plan_paths as i64)
    .bind(as_of)
    .bind(sextant_engine::ENGINE_VERSION)
    .bind(now_ms())
    .bind(run.owner)
    .bind(run.precision)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(run_id) = created else {
        return tx.rollback().await;
    };
    let goal_ids = if run.filter.covers_goals() {
        let (conditions, values) = run.filter.goal_sql(1);
        let sql = format!("SELECT id FROM goals WHERE 1 = 1{conditions} ORDER BY id");
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for v in &values {
            query = query.bind(v);
        }
        query.fetch_all(&mut *tx).await?
    } else {
        Vec::new()
    };
    let plan_ids = if run.filter.covers_plans() {
        let sql = match run.filter.user_id {
            Some(_) => "SELECT id FROM plans WHERE user_id = $1 ORDER BY id",
            None => "SELECT id FROM plans ORDER BY id",
        };
        let mut query = sqlx::query_scalar::<_, i64>(sql);
        if let Some(user) = &run.filter.user_id {
            query = query.bind(user);
        }
        query.fetch_all(&mut *tx).await?
    } else {
        Vec::new()
    };
    // Goals' shards first, then plans', numbered on.
    let cut = |ids: &[i64], size: u64, kind: ScoreKind| -> Vec<(i64, i64, ScoreKind)> {
        ids.chunks(size as usize)
            .map(|c| (c[0], c[c.len() - 1], kind))
            .collect()
    };
    let mut shards = cut(&goal_ids, run.shard_size, ScoreKind::Goal);
    shards.extend(cut(&plan_ids, run.plan_shard_size, ScoreKind::Plan));
    for (start, chunk) in shards
        .chunks(1_000)
        .enumerate()
        .map(|(i, c)| (i * 1_000, c))
    {
        let mut sql = String::from(
            "INSERT INTO rescore_shards (run_id, shard, lo, hi, kind, status) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&values_row(i, 5, ", 'pending'"));
        }
        let mut query = sqlx::query(&sql);
        for (j, &(lo, hi, kind)) in chunk.iter().enumerate() {
            query = query
                .bind(run_id)
                .bind((start + j) as i64)
                .bind(lo)
                .bind(hi)
                .bind(kind.as_str());
        }
        query.execute(&mut *tx).await?;
    }
    sqlx::query(
        "UPDATE rescore_runs SET total_goals = $2, total_plans = $3, shards = $4 WHERE id = $1",
    )
    .bind(run_id)
    .bind(goal_ids.len() as i64)
    .bind(plan_ids.len() as i64)
    .bind(shards.len() as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// A run from its row; a stored filter or date that no longer reads is a decode error.
fn run_of(row: &sqlx::any::AnyRow) -> Result<Run, sqlx::Error> {
    let filter: String = row.try_get("filter")?;
    let as_of: String = row.try_get("as_of")?;
    Ok(Run {
        id: row.try_get("id")?,
        run_key: row.try_get("run_key")?,
        filter: serde_json::from_str(&filter).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        paths: row.try_get::<i64, _>("paths")? as u64,
        plan_paths: row.try_get::<i64, _>("plan_paths")? as u64,
        precision: row.try_get("success_precision")?,
        as_of: Date::parse(&as_of, DATE).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        total_goals: row.try_get::<i64, _>("total_goals")? as u64,
        total_plans: row.try_get::<i64, _>("total_plans")? as u64,
        shards: row.try_get::<i64, _>("shards")? as u64,
    })
}

/// The rows a shard commits: goals' or plans' scores, each `(id, success, value, status,
/// success's standard error)` where the value is a goal's required monthly savings or a plan's
/// sustainable spending.
trait ScoreRow: Sync {
    /// The items' table.
    const ITEMS: &'static str;
    /// The scores' table and its id column.
    const SCORES: &'static str;
    const ID: &'static str;
    /// The value's column (the same name in both tables).
    const VALUE: &'static str;
    fn row(&self) -> ScoreValues;
}

/// One score row's values (see [`ScoreRow`]).
type ScoreValues = (i64, Option<f64>, Option<f64>, &'static str, Option<f64>);

impl ScoreRow for Scored {
    const ITEMS: &'static str = "goals";
    const SCORES: &'static str = "rescore_scores";
    const ID: &'static str = "goal_id";
    const VALUE: &'static str = "required_monthly_savings";
    fn row(&self) -> ScoreValues {
        (
            self.goal_id,
            self.success_probability,
            self.required_monthly_savings,
            self.funding_status,
            self.standard_error,
        )
    }
}

impl ScoreRow for PlanScored {
    const ITEMS: &'static str = "plans";
    const SCORES: &'static str = "rescore_plan_scores";
    const ID: &'static str = "plan_id";
    const VALUE: &'static str = "sustainable_spending";
    fn row(&self) -> ScoreValues {
        (
            self.plan_id,
            self.success_probability,
            self.sustainable_spending,
            self.funding_status,
            self.standard_error,
        )
    }
}

async fn commit_shard<T: ScoreRow>(
    store: &Store,
    run_id: i64,
    shard: i64,
    worker: &str,
    scores: &[T],
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    let claimed = sqlx::query(
        "UPDATE rescore_shards SET status = 'done', goals = $4, finished_at = $5 \
         WHERE run_id = $1 AND shard = $2 AND owner = $3 AND status = 'leased'",
    )
    .bind(run_id)
    .bind(shard)
    .bind(worker)
    .bind(scores.len() as i64)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    let (items, value) = (T::ITEMS, T::VALUE);
    for chunk in scores.chunks(store.rows_per_statement()) {
        let sql = format!(
            "{} INSERT INTO {} (run_id, {}, success_probability, {value}, funding_status, \
             success_standard_error, worker) SELECT {}, v.id, v.p, v.r, v.s, v.e, $2 FROM v",
            scores_as_rows(store, chunk.len(), 3),
            T::SCORES,
            T::ID,
            store.typed("$1", "BIGINT"),
        );
        bind_scores(sqlx::query(&sql).bind(run_id).bind(worker), chunk)
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "{} UPDATE {items} SET success_probability = v.p, {value} = v.r, \
             funding_status = v.s, success_standard_error = v.e, scored_at = $1, \
             engine_version = $2, last_run_id = $3 FROM v WHERE {items}.id = v.id",
            scores_as_rows(store, chunk.len(), 4),
        );
        let query = sqlx::query(&sql)
            .bind(now)
            .bind(sextant_engine::ENGINE_VERSION)
            .bind(run_id);
        bind_scores(query, chunk).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// `WITH v (id, p, r, s, e) AS (VALUES …)`: `rows` scores as rows of parameters from `$first`
/// on, typed for PostgreSQL (whose VALUES columns take their types from the first row).
fn scores_as_rows(store: &Store, rows: usize, first: usize) -> String {
    let rows: Vec<String> = (0..rows)
        .map(|i| {
            let p = first + i * 5;
            format!(
                "({}, {}, {}, ${}, {})",
                store.typed(&format!("${p}"), "BIGINT"),
                store.typed(&format!("${}", p + 1), "DOUBLE PRECISION"),
                store.typed(&format!("${}", p + 2), "DOUBLE PRECISION"),
                p + 3,
                store.typed(&format!("${}", p + 4), "DOUBLE PRECISION"),
            )
        })
        .collect();
    format!("WITH v (id, p, r, s, e) AS (VALUES {})", rows.join(","))
}

/// Bind the parameters of [`scores_as_rows`].
fn bind_scores<'q, T: ScoreRow>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    scores: &'q [T],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for s in scores {
        let (id, p, value, status, error) = s.row();
        query = query.bind(id).bind(p).bind(value).bind(status).bind(error);
    }
    query
}
