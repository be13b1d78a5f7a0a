//! The `simulations` table: each asynchronous simulation's request, seed, status, progress
//! and result, so it can be followed, served after a restart and replayed.

use sqlx::Row;

use crate::{now_ms, Store, StoreError};

/// One stored simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationRecord {
    pub id: String,
    /// The request as the engine read it (defaults filled in), JSON.
    pub request: String,
    /// `queued`, `running`, `complete` or `failed`.
    pub status: String,
    pub progress: f64,
    /// Paths simulated (the product's `iterations`).
    pub iterations: u64,
    /// The result, JSON, when complete.
    pub results: Option<String>,
    /// `{"field", "message"}`, JSON, when failed.
    pub error: Option<String>,
    pub seed: u64,
    pub backend: Option<String>,
    pub engine_version: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub compute_ms: Option<f64>,
    /// The caller that stored it (`None` for rows stored before owners).
    pub owner: Option<String>,
    /// `goal` or `plan`: what the request is.
    pub kind: String,
}

/// A new simulation's identity and inputs.
#[derive(Debug, Clone)]
pub struct NewSimulation<'a> {
    pub id: &'a str,
    pub request: &'a str,
    pub request_hash: &'a str,
    pub iterations: u64,
    pub seed: u64,
    /// The replica that runs it, and until when (ms since the epoch) it holds the lease.
    pub worker: &'a str,
    pub lease_until: i64,
    /// The caller's owner name.
    pub owner: &'a str,
    /// `goal` or `plan`.
    pub kind: &'a str,
}

impl Store {
    /// Record a queued simulation.
    pub async fn insert_simulation(&self, new: &NewSimulation<'_>) -> Result<(), StoreError> {
        self.retry("storing a simulation", || {
            sqlx::query(
                "INSERT INTO simulations (id, request, request_hash, status, progress, \
                 iterations, seed, engine_version, created_at, worker, lease_until, owner, kind) \
                 VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(new.id)
            .bind(new.request)
            .bind(new.request_hash)
            .bind(new.iterations as i64)
            .bind(new.seed as i64)
            .bind(sextant_engine::ENGINE_VERSION)
            .bind(now_ms())
            .bind(new.worker)
            .bind(new.lease_until)
            .bind(new.owner)
            .bind(new.kind)
            .execute(self.pool())
        })
        .await
        .map(drop)
    }

    /// Extend `worker`'s lease on an unfinished simulation to `until`; `false` when the
    /// simulation is finished or another replica holds it now.
    pub async fn renew_simulation_lease(
        &self,
        id: &str,
        worker: &str,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = self
            .retry("renewing a simulation's lease", || {
                sqlx::query(
                    "UPDATE simulations SET lease_until = $3 WHERE id = $1 AND worker = $2 \
                     AND status IN ('queued', 'running')",
                )
                .bind(id)
                .bind(worker)
                .bind(until)
                .execute(self.pool())
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Give up `worker`'s leases on its unfinished simulations (a replica shutting down), so
    /// that another replica takes them over at its next look rather than after the lease.
    pub async fn release_simulations(&self, worker: &str) -> Result<u64, StoreError> {
        let done = self
            .retry("giving simulations back", || {
                sqlx::query(
                    "UPDATE simulations SET lease_until = 0 WHERE worker = $1 \
                     AND status IN ('queued', 'running')",
                )
                .bind(worker)
                .execute(self.pool())
            })
            .await?;
        Ok(done.rows_affected())
    }

    /// Take over, for `worker` until `until`, up to `limit` unfinished simulations whose lease
    /// has expired (their replica died) or that have none (stored before leases), oldest
    /// first; with `own`, also those `worker` held before it restarted. PostgreSQL skips the
    /// rows another replica is taking at the same instant (`FOR UPDATE SKIP LOCKED`), SQLite
    /// serialises writers, so each simulation goes to one replica.
    pub async fn claim_simulations(
        &self,
        worker: &str,
        until: i64,
        own: bool,
        limit: i64,
    ) -> Result<Vec<SimulationRecord>, StoreError> {
        let skip_locked = match self.dialect() {
            super::Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            super::Dialect::Sqlite => "",
        };
        let own = if own { " OR worker = $1" } else { "" };
        let sql = format!(
            "UPDATE simulations SET worker = $1, lease_until = $2 WHERE id IN (SELECT id FROM \
             simulations WHERE status IN ('queued', 'running') AND (lease_until IS NULL OR \
             lease_until < $3{own}) ORDER BY created_at LIMIT $4{skip_locked}) RETURNING {COLUMNS}"
        );
        let rows = self
            .retry("taking over unfinished simulations", || {
                sqlx::query(&sql)
                    .bind(worker)
                    .bind(until)
                    .bind(now_ms())
                    .bind(limit)
                    .fetch_all(self.pool())
            })
            .await?;
        let mut records = rows
            .iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error("taking over unfinished simulations", e))?;
        records.sort_by_key(|r| r.created_at);
        Ok(records)
    }

    /// Mark a simulation running on `backend` with `progress` done.
    pub async fn simulation_progress(
        &self,
        id: &str,
        worker: &str,
        backend: &str,
        progress: f64,
    ) -> Result<(), StoreError> {
        self.retry("recording a simulation's progress", || {
            sqlx::query(
                "UPDATE simulations SET status = 'running', backend = $2, progress = $3, \
                 started_at = COALESCE(started_at, $4) WHERE id = $1 AND worker = $5 \
                 AND status IN ('queued', 'running')",
            )
            .bind(id)
            .bind(backend)
            .bind(progress)
            .bind(now_ms())
            .bind(worker)
            .execute(self.pool())
        })
        .await
        .map(drop)
    }

    /// Record a simulation's outcome: its result (complete) or its error (failed), once, by
    /// the replica that holds it; `false` when it was finished already or is another's now.
    pub async fn finish_simulation(
        &self,
        id: &str,
        worker: &str,
        outcome: Result<&str, &str>,
        compute_ms: f64,
    ) -> Result<bool, StoreError> {
        let (status, results, error) = match outcome {
            Ok(result) => ("complete", Some(result), None),
            Err(error) => ("failed", None, Some(error)),
        };
        self.retry("storing a simulation's result", || {
            sqlx::query(
                "UPDATE simulations SET status = $2, progress = 1, results = $3, error = $4, \
                 finished_at = $5, compute_ms = $6 WHERE id = $1 AND worker = $7 \
                 AND status IN ('queued', 'running')",
            )
            .bind(id)
            .bind(status)
            .bind(results)
            .bind(error)
            .bind(now_ms())
            .bind(compute_ms)
            .bind(worker)
            .execute(self.pool())
        })
        .await
        .map(|done| done.rows_affected() == 1)
    }

    /// One simulation, if stored.
    pub async fn simulation(&self, id: &str) -> Result<Option<SimulationRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM simulations WHERE id = $1");
        let row = self
            .retry("reading a simulation", || {
                sqlx::query(&sql).bind(id).fetch_optional(self.pool())
            })
            .await?;
        row.map(|row| record(&row))
            .transpose()
            .map_err(|e| self.error("reading a simulation", e))
    }
}

/// The columns of a [`SimulationRecord`].
const COLUMNS: &str = "id, request, status, progress, iterations, results, error, seed, backend, \
     engine_version, created_at, finished_at, compute_ms, owner, kind";

/// Where a page of a listing starts: after the simulation created at `created_at` with `id`
/// (newest first).
#[derive(Debug, Clone, PartialEq)]
pub struct ListCursor {
    pub created_at: i64,
    pub id: String,
}

impl Store {
    /// Up to `limit` stored jobs of `kind`, newest first, of `owner` (every owner's with
    /// `None`), with `status` if given, after `cursor`.
    pub async fn list_simulations(
        &self,
        kind: &str,
        owner: Option<&str>,
        status: Option<&str>,
        cursor: Option<&ListCursor>,
        limit: i64,
    ) -> Result<Vec<SimulationRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        conditions.push(format!("kind = {}", next()));
        if owner.is_some() {
            conditions.push(format!("owner = {}", next()));
        }
        if status.is_some() {
            conditions.push(format!("status = {}", next()));
        }
        if cursor.is_some() {
            let (at, id) = (next(), next());
            conditions.push(format!(
                "(created_at < {at} OR (created_at = {at} AND id < {id}))"
            ));
        }
        let filter = format!(" WHERE {}", conditions.join(" AND "));
        let sql = format!(
            "SELECT {COLUMNS} FROM simulations{filter} ORDER BY created_at DESC, id DESC LIMIT {}",
            next()
        );
        let rows = self
            .retry("listing simulations", || {
                let mut query = sqlx::query(&sql).bind(kind);
                if let Some(owner) = owner {
                    query = query.bind(owner);
                }
                if let Some(status) = status {
                    query = query.bind(status);
                }
                if let Some(cursor) = cursor {
                    query = query.bind(cursor.created_at).bind(cursor.id.as_str());
                }
                query.bind(limit).fetch_all(self.pool())
            })
            .await?;
        rows.iter()
            .map(record)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error("listing simulations", e))
    }
}

fn record(row: &sqlx::any::AnyRow) -> Result<SimulationRecord, sqlx::Error> {
    Ok(SimulationRecord {
        id: row.try_get("id")?,
        request: row.try_get("request")?,
        status: row.try_get("status")?,
        progress: row.try_get("progress")?,
        iterations: row.try_get::<i64, _>("iterations")? as u64,
        results: row.try_get("results")?,
        error: row.try_get("error")?,
        seed: row.try_get::<i64, _>("seed")? as u64,
        backend: row.try_get("backend")?,
        engine_version: row.try_get("engine_version")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
        compute_ms: row.try_get("compute_ms")?,
        owner: row.try_get("owner")?,
        kind: row.try_get("kind")?,
    })
}
