//! The nightly re-score's tables: `rescore_runs` (one row a run, keyed by its run key),
//! `rescore_shards` (ranges of goal ids, each leased by one worker at a time) and
//! `rescore_scores` (each goal's score in a run). What a run is and how workers share it is the
//! service's `rescore` module; this one owns only the SQL, so that every statement the
//! database sees lives in this crate.
//!
//! Leasing differs by database (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite serialises
//! writers). A shard commits in one transaction: the shard marked done (only if still leased by
//! the committing worker), each goal's score and the goals updated in multi-row statements.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::Row;
use time::Date;

use crate::goals::GoalFilter;
use crate::{now_ms, Dialect, Store, StoreError};

/// How run dates are written: `YYYY-MM-DD`.
pub const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// A stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: i64,
    pub run_key: String,
    pub filter: GoalFilter,
    pub paths: u64,
    pub as_of: Date,
    pub total_goals: u64,
    pub shards: u64,
}

/// What a new run is (its key, the goals it covers, how it is cut).
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub run_key: &'a str,
    pub filter: &'a GoalFilter,
    pub paths: u64,
    pub shard_size: u64,
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
    /// `on_track` (success at or above the threshold), `at_risk` (within 10 points below),
    /// `off_track` (beneath), `past_due` (the target date has come) or `invalid` (inputs out
    /// of the engine's bounds; logged).
    pub funding_status: &'static str,
    pub path_steps: u64,
}

/// A leased shard: its number and the goal ids it covers (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub shard: i64,
    pub lo: i64,
    pub hi: i64,
}

const RUN_COLUMNS: &str = "id, run_key, filter, paths, as_of, total_goals, shards";

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
             RETURNING shard, lo, hi"
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
            Ok(Lease {
                shard: r.try_get(0)?,
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

    /// Goals in done shards.
    pub async fn done_goals(&self, run_id: i64) -> Result<u64, StoreError> {
        self.retry("counting scored goals", || {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rescore_scores WHERE run_id = $1")
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

    /// A run's scored goals by funding status.
    pub async fn scores_by_status(&self, run_id: i64) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = self
            .retry("counting goals by status", || {
                sqlx::query(
                    "SELECT funding_status, COUNT(*) FROM rescore_scores WHERE run_id = $1 \
                     GROUP BY funding_status",
                )
                .bind(run_id)
                .fetch_all(self.pool())
            })
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)? as u64)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error("counting goals by status", e))
    }

    /// A run's state for `GET /v1/rescore-runs/{id}`.
    pub async fn run_status(&self, run_id: i64) -> Result<Option<serde_json::Value>, StoreError> {
        let row = self
            .retry("reading the re-scoring run", || {
                sqlx::query(
                    "SELECT r.id, r.run_key, r.status, r.paths, r.as_of, r.total_goals, r.shards, \
                     r.created_at, r.finished_at, \
                     (SELECT COUNT(*) FROM rescore_shards s WHERE s.run_id = r.id AND s.status = 'done') \
                     FROM rescore_runs r WHERE r.id = $1",
                )
                .bind(run_id)
                .fetch_optional(self.pool())
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let read = |e| self.error("reading the re-scoring run", e);
        let by_status = self.scores_by_status(run_id).await?;
        let scored: u64 = by_status.values().sum();
        let total = row.try_get::<i64, _>(5).map_err(read)?;
        Ok(Some(serde_json::json!({
            "id": row.try_get::<i64, _>(0).map_err(read)?,
            "run_key": row.try_get::<String, _>(1).map_err(read)?,
            "status": row.try_get::<String, _>(2).map_err(read)?,
            "paths": row.try_get::<i64, _>(3).map_err(read)?,
            "as_of": row.try_get::<String, _>(4).map_err(read)?,
            "total_goals": total,
            "shards": row.try_get::<i64, _>(6).map_err(read)?,
            "shards_done": row.try_get::<i64, _>(9).map_err(read)?,
            "goals_scored": scored,
            "progress": if total > 0 { scored as f64 / total as f64 } else { 1.0 },
            "by_status": by_status,
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
        "INSERT INTO rescore_runs (run_key, filter, paths, as_of, status, total_goals, shards, \
         engine_version, created_at, owner) VALUES ($1, $2, $3, $4, 'running', 0, 0, $5, $6, $7) \
         ON CONFLICT (run_key) DO NOTHING RETURNING id",
    )
    .bind(run.run_key)
    .bind(filter)
    .bind(run.paths as i64)
    .bind(as_of)
    .bind(sextant_engine::ENGINE_VERSION)
    .bind(now_ms())
    .bind(run.owner)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(run_id) = created else {
        return tx.rollback().await;
    };
    let (conditions, values) = run.filter.sql(1);
    let sql = format!("SELECT id FROM goals WHERE 1 = 1{conditions} ORDER BY id");
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for v in &values {
        query = query.bind(v);
    }
    let ids = query.fetch_all(&mut *tx).await?;
    let shards: Vec<(i64, i64)> = ids
        .chunks(run.shard_size as usize)
        .map(|c| (c[0], c[c.len() - 1]))
        .collect();
    for (start, chunk) in shards
        .chunks(1_000)
        .enumerate()
        .map(|(i, c)| (i * 1_000, c))
    {
        let mut sql =
            String::from("INSERT INTO rescore_shards (run_id, shard, lo, hi, status) VALUES ");
        for i in 0..chunk.len() {
            let p = i * 4;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, 'pending')",
                p + 1,
                p + 2,
                p + 3,
                p + 4
            ));
        }
        let mut query = sqlx::query(&sql);
        for (j, &(lo, hi)) in chunk.iter().enumerate() {
            query = query
                .bind(run_id)
                .bind((start + j) as i64)
                .bind(lo)
                .bind(hi);
        }
        query.execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE rescore_runs SET total_goals = $2, shards = $3 WHERE id = $1")
        .bind(run_id)
        .bind(ids.len() as i64)
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
        as_of: Date::parse(&as_of, DATE).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        total_goals: row.try_get::<i64, _>("total_goals")? as u64,
        shards: row.try_get::<i64, _>("shards")? as u64,
    })
}

async fn commit_shard(
    store: &Store,
    run_id: i64,
    shard: i64,
    worker: &str,
    scores: &[Scored],
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
    for chunk in scores.chunks(store.rows_per_statement()) {
        let sql = format!(
            "{} INSERT INTO rescore_scores (run_id, goal_id, success_probability, \
             required_monthly_savings, funding_status, worker) SELECT {}, v.id, v.p, v.r, v.s, $2 \
             FROM v",
            scores_as_rows(store, chunk.len(), 3),
            store.typed("$1", "BIGINT"),
        );
        bind_scores(sqlx::query(&sql).bind(run_id).bind(worker), chunk)
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "{} UPDATE goals SET success_probability = v.p, required_monthly_savings = v.r, \
             funding_status = v.s, scored_at = $1, engine_version = $2, last_run_id = $3 \
             FROM v WHERE goals.id = v.id",
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

/// `WITH v (id, p, r, s) AS (VALUES …)`: `rows` scores as rows of parameters from `$first` on,
/// typed for PostgreSQL (whose VALUES columns take their types from the first row).
fn scores_as_rows(store: &Store, rows: usize, first: usize) -> String {
    let rows: Vec<String> = (0..rows)
        .map(|i| {
            let p = first + i * 4;
            format!(
                "({}, {}, {}, ${})",
                store.typed(&format!("${p}"), "BIGINT"),
                store.typed(&format!("${}", p + 1), "DOUBLE PRECISION"),
                store.typed(&format!("${}", p + 2), "DOUBLE PRECISION"),
                p + 3
            )
        })
        .collect();
    format!("WITH v (id, p, r, s) AS (VALUES {})", rows.join(","))
}

/// Bind the parameters of [`scores_as_rows`].
fn bind_scores<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    scores: &'q [Scored],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for s in scores {
        query = query
            .bind(s.goal_id)
            .bind(s.success_probability)
            .bind(s.required_monthly_savings)
            .bind(s.funding_status);
    }
    query
}
