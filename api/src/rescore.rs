//! Nightly re-scoring (`sextant rescore`, `POST /v1/rescore-runs`): every stored goal, or a
//! filter's, scored in large engine batches and written back.
//!
//! A run has a key; every worker given the key shares it. The run's goals are cut into shards
//! (ranges of goal ids) when the run is created. A worker leases one shard at a time
//! (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite serialises writers), scores its goals on the
//! CPU backend, and commits in one transaction: the shard marked done (only if still leased by
//! this worker), each goal's score in `rescore_scores` and the goals updated in multi-row
//! statements. So a worker killed at any instant leaves either the whole shard or none of it;
//! its lease expires and another worker (or itself, restarted) takes the shard over; and a
//! slow worker whose lease was taken over cannot commit the shard a second time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sextant_engine::backend::Watch;
use sextant_engine::solve::score_accumulation;
use sextant_engine::CpuBackend;
use sqlx::Row;
use time::Date;

use crate::store::goals::{GoalFilter, StoredGoal};
use crate::store::{now_ms, Dialect, Store, StoreError};

/// What a run covers and how it is cut (the fields of `POST /v1/rescore-runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Workers given the same key share the run; default `nightly-<as_of>`.
    #[serde(default)]
    pub run_key: Option<String>,
    #[serde(default)]
    pub filter: GoalFilter,
    /// Paths per goal.
    #[serde(default = "default_paths")]
    pub paths: u64,
    /// Goals per shard (the unit of leasing and of each commit).
    #[serde(default = "default_shard_size")]
    pub shard_size: u64,
    /// The date horizons are counted from, `YYYY-MM-DD`; default today (UTC).
    #[serde(default)]
    pub as_of: Option<String>,
}

fn default_paths() -> u64 {
    2_000
}
fn default_shard_size() -> u64 {
    2_000
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            run_key: None,
            filter: GoalFilter::default(),
            paths: default_paths(),
            shard_size: default_shard_size(),
            as_of: None,
        }
    }
}

/// Why a run could not be started or worked.
#[derive(Debug, thiserror::Error)]
pub enum RescoreError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the engine failed: {0}")]
    Engine(String),
    /// The worker was told to stop (the service draining); its shard went back to the run.
    #[error("the re-scoring worker was stopped")]
    Stopped,
}

fn invalid(field: &str, message: impl Into<String>) -> RescoreError {
    RescoreError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

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

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Today in UTC.
pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// Check a spec's bounds, naming the field.
pub fn check(spec: &RunSpec) -> Result<Date, RescoreError> {
    if !(1..=1_000_000).contains(&spec.paths) {
        return Err(invalid(
            "paths",
            format!("must be between 1 and 1000000, got {}", spec.paths),
        ));
    }
    if !(1..=100_000).contains(&spec.shard_size) {
        return Err(invalid(
            "shard_size",
            format!("must be between 1 and 100000, got {}", spec.shard_size),
        ));
    }
    if let Some(key) = &spec.run_key {
        if key.is_empty() || key.len() > 200 {
            return Err(invalid("run_key", "must be 1 to 200 characters"));
        }
    }
    match &spec.as_of {
        None => Ok(today()),
        Some(text) => Date::parse(text, DATE)
            .map_err(|e| invalid("as_of", format!("must be YYYY-MM-DD, got {text:?}: {e}"))),
    }
}

/// The run with the spec's key: created with its shards if it does not exist (atomically, so
/// workers starting together agree on one), else the stored one, whose own filter, paths and
/// date then apply.
/// Create the run of `spec` (started by `owner`, an admin), or join it when its key exists.
pub async fn ensure_run(store: &Store, spec: &RunSpec, owner: &str) -> Result<Run, RescoreError> {
    let as_of = check(spec)?;
    let as_of_text = as_of.format(DATE).expect("a date formats");
    let key = spec
        .run_key
        .clone()
        .unwrap_or_else(|| format!("nightly-{as_of_text}"));
    let filter = serde_json::to_string(&spec.filter).expect("a filter serialises");
    store
        .retry("creating the re-scoring run", || {
            create_run(store, &key, &filter, spec, &as_of_text, owner)
        })
        .await?;
    let run = load_run(store, &key)
        .await?
        .ok_or_else(|| RescoreError::Engine(format!("run {key} vanished after it was created")))?;
    if run.paths != spec.paths || run.filter != spec.filter {
        tracing::warn!(
            run = %run.run_key,
            "joining an existing run: its own paths ({}) and filter apply",
            run.paths
        );
    }
    Ok(run)
}

/// One transaction: the run, its goals' ids cut into shards, and its totals; nothing when the
/// key exists.
async fn create_run(
    store: &Store,
    key: &str,
    filter: &str,
    spec: &RunSpec,
    as_of: &str,
    owner: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO rescore_runs (run_key, filter, paths, as_of, status, total_goals, shards, \
         engine_version, created_at, owner) VALUES ($1, $2, $3, $4, 'running', 0, 0, $5, $6, $7) \
         ON CONFLICT (run_key) DO NOTHING RETURNING id",
    )
    .bind(key)
    .bind(filter)
    .bind(spec.paths as i64)
    .bind(as_of)
    .bind(sextant_engine::ENGINE_VERSION)
    .bind(now_ms())
    .bind(owner)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(run_id) = created else {
        return tx.rollback().await;
    };
    let (conditions, values) = spec.filter.sql(1);
    let sql = format!("SELECT id FROM goals WHERE 1 = 1{conditions} ORDER BY id");
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for v in &values {
        query = query.bind(v);
    }
    let ids = query.fetch_all(&mut *tx).await?;
    let shards: Vec<(i64, i64)> = ids
        .chunks(spec.shard_size as usize)
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

/// The run with key `key`, if any.
pub async fn load_run(store: &Store, key: &str) -> Result<Option<Run>, RescoreError> {
    let row = store
        .retry("reading the re-scoring run", || {
            sqlx::query(
                "SELECT id, run_key, filter, paths, as_of, total_goals, shards FROM rescore_runs \
                 WHERE run_key = $1",
            )
            .bind(key)
            .fetch_optional(store.pool())
        })
        .await?;
    row.map(|row| run_of(store, &row)).transpose()
}

fn run_of(store: &Store, row: &sqlx::any::AnyRow) -> Result<Run, RescoreError> {
    let read = |e: sqlx::Error| RescoreError::Store(store.error("reading the re-scoring run", e));
    let filter: String = row.try_get("filter").map_err(read)?;
    let as_of: String = row.try_get("as_of").map_err(read)?;
    Ok(Run {
        id: row.try_get("id").map_err(read)?,
        run_key: row.try_get("run_key").map_err(read)?,
        filter: serde_json::from_str(&filter)
            .map_err(|e| RescoreError::Engine(format!("the stored filter is unreadable: {e}")))?,
        paths: row.try_get::<i64, _>("paths").map_err(read)? as u64,
        as_of: Date::parse(&as_of, DATE)
            .map_err(|e| RescoreError::Engine(format!("the stored date is unreadable: {e}")))?,
        total_goals: row.try_get::<i64, _>("total_goals").map_err(read)? as u64,
        shards: row.try_get::<i64, _>("shards").map_err(read)? as u64,
    })
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

/// The funding status of success `p` against `threshold`.
pub fn funding_status(p: f64, threshold: f64) -> &'static str {
    if p >= threshold {
        "on_track"
    } else if p >= threshold - 0.10 - 1e-12 {
        "at_risk"
    } else {
        "off_track"
    }
}

/// Score one goal as of `as_of` with `paths` paths.
pub fn score(cpu: &CpuBackend, goal: &StoredGoal, as_of: Date, paths: u64) -> Scored {
    let unscored = |status, p: Option<f64>| Scored {
        goal_id: goal.id,
        success_probability: p,
        required_monthly_savings: None,
        funding_status: status,
        path_steps: 0,
    };
    let months = match goal.months_left(as_of) {
        Ok(m) => m,
        Err(message) => {
            tracing::warn!(goal = goal.id, %message, "goal not scored");
            return unscored("invalid", None);
        }
    };
    if months < 1 {
        let met = goal.current_savings >= goal.target_amount;
        return unscored("past_due", Some(if met { 1.0 } else { 0.0 }));
    }
    let months = months.min(i64::from(u32::MAX)) as u32;
    match score_accumulation(cpu, &goal.request(months, paths)) {
        Ok(s) => Scored {
            goal_id: goal.id,
            success_probability: Some(s.success_probability),
            required_monthly_savings: s.required_contribution,
            funding_status: funding_status(s.success_probability, goal.success_threshold),
            path_steps: paths * u64::from(months),
        },
        Err(e) => {
            tracing::warn!(goal = goal.id, error = %e, "goal not scored");
            unscored("invalid", None)
        }
    }
}

/// How one worker is told to behave.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Its name in leases (`--worker`; a restarted worker with the same name takes its own
    /// leases back at once).
    pub name: String,
    /// How long a lease lasts: longer than one shard takes.
    pub lease: Duration,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// The backend that scores: the CPU's fused pass (success and required contribution from
    /// one simulation) whatever `--backend` says, with the `--cpu-kernel` asked for.
    pub cpu: CpuBackend,
    /// The threads that score (the service's bulk lane, below interactive requests), or
    /// rayon's global pool.
    pub pool: Option<Arc<rayon::ThreadPool>>,
    /// Stops the worker between goals; the shard it held goes back to the run at once.
    pub stop: Arc<Watch>,
}

/// What one worker did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerReport {
    pub run_id: i64,
    pub run_key: String,
    pub worker: String,
    pub shards: u64,
    pub goals: u64,
    pub seconds: f64,
    pub goals_per_second: f64,
    pub path_steps_per_second: f64,
    /// Seconds waiting on the database (reading goals, leasing, committing).
    pub database_seconds: f64,
    /// Seconds in the engine.
    pub engine_seconds: f64,
    /// Shards this worker computed but could not commit: its lease was taken over.
    pub lost_leases: u64,
    /// The whole run, when it finished: goals by funding status.
    pub run_complete: bool,
    pub by_status: std::collections::BTreeMap<String, u64>,
}

/// Work on `run` until every shard is done.
pub async fn work(
    store: &Store,
    run: &Run,
    config: &WorkerConfig,
) -> Result<WorkerReport, RescoreError> {
    let started = Instant::now();
    let mut report = WorkerReport {
        run_id: run.id,
        run_key: run.run_key.clone(),
        worker: config.name.clone(),
        ..WorkerReport::default()
    };
    let mut steps = 0u64;
    let bar = if config.progress {
        let bar = indicatif::ProgressBar::new(run.total_goals);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} goals [{bar:40}] {per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_position(done_goals(store, run.id).await?);
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let cpu = &config.cpu;
    loop {
        if config.stop.is_cancelled() {
            bar.finish_and_clear();
            return Err(RescoreError::Stopped);
        }
        let t = Instant::now();
        let lease = lease_shard(store, run.id, config).await?;
        report.database_seconds += t.elapsed().as_secs_f64();
        let Some((shard, lo, hi)) = lease else {
            let t = Instant::now();
            let open = open_shards(store, run.id).await?;
            report.database_seconds += t.elapsed().as_secs_f64();
            if open == 0 {
                break;
            }
            // Others hold the rest; their leases finish or expire.
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        let t = Instant::now();
        let goals = store.goals_in_range(lo, hi, &run.filter).await?;
        report.database_seconds += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (as_of, paths, engine) = (run.as_of, run.paths, cpu.clone());
        let (pool, stop) = (config.pool.clone(), config.stop.clone());
        let scores = tokio::task::spawn_blocking(move || {
            let scoring = || {
                goals
                    .par_iter()
                    .map(|g| (!stop.is_cancelled()).then(|| score(&engine, g, as_of, paths)))
                    .collect::<Option<Vec<_>>>()
            };
            match pool {
                Some(pool) => pool.install(scoring),
                None => scoring(),
            }
        })
        .await
        .map_err(|e| RescoreError::Engine(e.to_string()))?;
        let Some(scores) = scores else {
            release_shard(store, run.id, shard, &config.name).await?;
            bar.finish_and_clear();
            return Err(RescoreError::Stopped);
        };
        report.engine_seconds += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let committed = store
            .retry("committing a shard", || {
                commit_shard(store, run.id, shard, &config.name, &scores)
            })
            .await?;
        report.database_seconds += t.elapsed().as_secs_f64();
        if committed {
            report.shards += 1;
            report.goals += scores.len() as u64;
            steps += scores.iter().map(|s| s.path_steps).sum::<u64>();
            bar.inc(scores.len() as u64);
        } else {
            report.lost_leases += 1;
            tracing::warn!(
                shard,
                "lease lost before commit; the shard is another worker's"
            );
        }
    }
    bar.finish_and_clear();
    finish_run(store, run.id).await?;
    report.seconds = started.elapsed().as_secs_f64();
    report.goals_per_second = report.goals as f64 / report.seconds.max(1e-9);
    report.path_steps_per_second = steps as f64 / report.seconds.max(1e-9);
    report.run_complete = true;
    report.by_status = by_status(store, run.id).await?;
    Ok(report)
}

/// Lease the first shard that is pending, or whose lease has expired, or that this worker
/// held before it restarted.
async fn lease_shard(
    store: &Store,
    run_id: i64,
    config: &WorkerConfig,
) -> Result<Option<(i64, i64, i64)>, StoreError> {
    let skip_locked = match store.dialect() {
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
    let lease_ms = config.lease.as_millis() as i64;
    let row = store
        .retry("leasing a shard", || {
            let now = now_ms();
            sqlx::query(&sql)
                .bind(&config.name)
                .bind(now + lease_ms)
                .bind(run_id)
                .bind(now)
                .fetch_optional(store.pool())
        })
        .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
        .map_err(|e| store.error("leasing a shard", e))
}

/// Give a leased shard back to the run (a worker told to stop), so that another worker takes
/// it at once rather than after the lease.
async fn release_shard(
    store: &Store,
    run_id: i64,
    shard: i64,
    worker: &str,
) -> Result<(), StoreError> {
    store
        .retry("giving a shard back", || {
            sqlx::query(
                "UPDATE rescore_shards SET status = 'pending', owner = NULL, lease_until = NULL \
                 WHERE run_id = $1 AND shard = $2 AND status = 'leased' AND owner = $3",
            )
            .bind(run_id)
            .bind(shard)
            .bind(worker)
            .execute(store.pool())
        })
        .await
        .map(drop)
}

/// Runs that nobody works on: not complete, with shards left, and no live lease (the worker
/// that held them died, or the replica that was asked to run them stopped).
pub async fn unattended_runs(store: &Store) -> Result<Vec<Run>, RescoreError> {
    let rows = store
        .retry("looking for unattended re-scoring runs", || {
            sqlx::query(
                "SELECT id, run_key, filter, paths, as_of, total_goals, shards FROM rescore_runs r \
                 WHERE r.status <> 'complete' \
                 AND EXISTS (SELECT 1 FROM rescore_shards s WHERE s.run_id = r.id AND \
                   (s.status = 'pending' OR (s.status = 'leased' AND s.lease_until < $1))) \
                 AND NOT EXISTS (SELECT 1 FROM rescore_shards s WHERE s.run_id = r.id AND \
                   s.status = 'leased' AND s.lease_until >= $1) \
                 ORDER BY id",
            )
            .bind(now_ms())
            .fetch_all(store.pool())
        })
        .await?;
    rows.iter().map(|row| run_of(store, row)).collect()
}

/// The shard's checkpoint, its scores and its goals in one transaction; `false` (and nothing
/// written) when the shard is no longer leased by `worker`.
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

/// Shards not yet done.
async fn open_shards(store: &Store, run_id: i64) -> Result<i64, StoreError> {
    store
        .retry("counting open shards", || {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM rescore_shards WHERE run_id = $1 AND status <> 'done'",
            )
            .bind(run_id)
            .fetch_one(store.pool())
        })
        .await
}

/// Goals in done shards.
async fn done_goals(store: &Store, run_id: i64) -> Result<u64, StoreError> {
    store
        .retry("counting scored goals", || {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rescore_scores WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(store.pool())
        })
        .await
        .map(|n| n as u64)
}

async fn finish_run(store: &Store, run_id: i64) -> Result<(), StoreError> {
    store
        .retry("finishing the run", || {
            sqlx::query(
                "UPDATE rescore_runs SET status = 'complete', finished_at = $2 \
                 WHERE id = $1 AND status <> 'complete'",
            )
            .bind(run_id)
            .bind(now_ms())
            .execute(store.pool())
        })
        .await
        .map(drop)
}

/// A run's scored goals by funding status.
pub async fn by_status(
    store: &Store,
    run_id: i64,
) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
    let rows = store
        .retry("counting goals by status", || {
            sqlx::query(
                "SELECT funding_status, COUNT(*) FROM rescore_scores WHERE run_id = $1 \
                 GROUP BY funding_status",
            )
            .bind(run_id)
            .fetch_all(store.pool())
        })
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)? as u64)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| store.error("counting goals by status", e))
}

/// A run's state for `GET /v1/rescore-runs/{id}`.
pub async fn status(store: &Store, run_id: i64) -> Result<Option<serde_json::Value>, StoreError> {
    let row = store
        .retry("reading the re-scoring run", || {
            sqlx::query(
                "SELECT r.id, r.run_key, r.status, r.paths, r.as_of, r.total_goals, r.shards, \
                 r.created_at, r.finished_at, \
                 (SELECT COUNT(*) FROM rescore_shards s WHERE s.run_id = r.id AND s.status = 'done') \
                 FROM rescore_runs r WHERE r.id = $1",
            )
            .bind(run_id)
            .fetch_optional(store.pool())
        })
        .await?;
    let Some(row) = row else { return Ok(None) };
    let read = |e| store.error("reading the re-scoring run", e);
    let by_status = by_status(store, run_id).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funding_status_bands() {
        assert_eq!(funding_status(0.80, 0.80), "on_track");
        assert_eq!(funding_status(0.79, 0.80), "at_risk");
        assert_eq!(funding_status(0.70, 0.80), "at_risk");
        assert_eq!(funding_status(0.6999, 0.80), "off_track");
    }

    #[test]
    fn specs_out_of_bounds_name_their_field() {
        let bad = |spec: RunSpec, field: &str| match check(&spec) {
            Err(RescoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        };
        bad(
            RunSpec {
                paths: 0,
                ..RunSpec::default()
            },
            "paths",
        );
        bad(
            RunSpec {
                shard_size: 0,
                ..RunSpec::default()
            },
            "shard_size",
        );
        bad(
            RunSpec {
                as_of: Some("2026/01/01".into()),
                ..RunSpec::default()
            },
            "as_of",
        );
        bad(
            RunSpec {
                run_key: Some(String::new()),
                ..RunSpec::default()
            },
            "run_key",
        );
    }
}
