//! Asynchronous simulations: an id, a status, and the events a caller can follow by SSE
//! (`queued`, `progress`, `result`, `error`, `done`).
//!
//! The `simulations` table is the record: a job is stored before its id is given out, its
//! progress and outcome are written as they happen, so it can be read (and replayed) after a
//! restart or from another replica. The replica that runs a job holds a lease on it in the
//! table (its name and an expiry), renewed while it runs; every replica looks for jobs whose
//! lease expired (their replica died) and takes them over, so a job runs to its end as long as
//! one replica lives, and its outcome is written once, by the replica holding it. Live events
//! go through memory: a bounded number of recent jobs keep their event history and a broadcast
//! channel; the events of a job run elsewhere (or before a restart) are read from its record,
//! which is polled until the job is done.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use sextant_store::simulations::{NewSimulation, SimulationRecord};
use sextant_store::{now_ms, Store, StoreError};

/// What a stored job computes. Each kind has its own routes (`/v1/simulations/{id}` for
/// goals, `/v1/plans/{id}` for plans): an id is served only under its own kind's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A goal's simulation (docs/model.md §1).
    Goal,
    /// A household plan (§5).
    Plan,
}

impl JobKind {
    /// The `kind` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::Goal => "goal",
            JobKind::Plan => "plan",
        }
    }

    /// The routes' collection: `/v1/{collection}/{id}`, and a listing's key.
    pub const fn collection(self) -> &'static str {
        match self {
            JobKind::Goal => "simulations",
            JobKind::Plan => "plans",
        }
    }

    /// One of them, in messages (`simulation 1f…`, `plan 1f…`).
    pub const fn noun(self) -> &'static str {
        match self {
            JobKind::Goal => "simulation",
            JobKind::Plan => "plan",
        }
    }
}

/// Most jobs whose events are kept in memory.
const MAX_LIVE_JOBS: usize = 10_000;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobEvent {
    /// `queued`, `progress`, `result`, `error` or `done`.
    pub event: &'static str,
    pub data: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    /// `queued`, `running`, `complete` or `failed`.
    pub status: String,
    pub progress: f64,
    pub seed: u64,
    /// Paths simulated.
    pub iterations: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    pub engine_version: String,
    /// When it was stored, ms since the Unix epoch.
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl JobView {
    pub fn of(record: &SimulationRecord) -> JobView {
        let json = |text: &Option<String>| {
            text.as_deref()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
        };
        JobView {
            id: record.id.clone(),
            status: record.status.clone(),
            progress: record.progress,
            seed: record.seed,
            iterations: record.iterations,
            backend: record.backend.clone(),
            engine_version: record.engine_version.clone(),
            created_at: record.created_at,
            result: json(&record.results),
            error: json(&record.error),
        }
    }
}

struct LiveJob {
    history: Vec<JobEvent>,
    live: broadcast::Sender<JobEvent>,
}

#[derive(Clone)]
pub struct Jobs {
    store: Store,
    live: Arc<Mutex<LiveJobs>>,
    /// This replica's name in leases.
    replica: Arc<str>,
    /// How long a lease lasts without renewal.
    lease: Duration,
}

/// How often a follower of a job run elsewhere reads its record.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

#[derive(Default)]
struct LiveJobs {
    jobs: HashMap<String, LiveJob>,
    order: VecDeque<String>,
}

impl Jobs {
    pub fn new(store: Store, replica: &str, lease: Duration) -> Jobs {
        Jobs {
            store,
            live: Arc::default(),
            replica: replica.into(),
            lease: lease.max(Duration::from_secs(1)),
        }
    }

    /// How long a lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn lease_until(&self) -> i64 {
        now_ms() + self.lease.as_millis() as i64
    }

    /// Extend this replica's lease on job `id`; `false` once the job is another replica's
    /// (or finished).
    pub async fn renew(&self, id: &str) -> Result<bool, StoreError> {
        self.store
            .renew_simulation_lease(id, &self.replica, self.lease_until())
            .await
    }

    /// Give this replica's unfinished jobs back (it is stopping): another replica takes them
    /// over at its next look.
    pub async fn release(&self) -> Result<u64, StoreError> {
        self.store.release_simulations(&self.replica).await
    }

    /// Take over unfinished jobs whose lease expired (with `own`, also this replica's from
    /// before a restart); each is then this replica's to run.
    pub async fn claim(&self, own: bool) -> Result<Vec<SimulationRecord>, StoreError> {
        self.store
            .claim_simulations(&self.replica, self.lease_until(), own, 16)
            .await
    }

    /// Store a queued job of `kind` for `owner` and `request` (its canonical JSON, hash, paths
    /// and seed) and give its id.
    pub async fn create(
        &self,
        kind: JobKind,
        request: &str,
        request_hash: &str,
        paths: u64,
        seed: u64,
        owner: &str,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.store
            .insert_simulation(&NewSimulation {
                id: &id,
                request,
                request_hash,
                iterations: paths,
                seed,
                worker: &self.replica,
                lease_until: self.lease_until(),
                owner,
                kind: kind.as_str(),
            })
            .await?;
        self.watch(&id);
        Ok(id)
    }

    /// Start keeping events for `id` (a new job, or one resumed after a restart).
    pub fn watch(&self, id: &str) {
        let (live, _) = broadcast::channel(16);
        {
            let mut jobs = self.live.lock().expect("jobs lock");
            while jobs.order.len() >= MAX_LIVE_JOBS {
                if let Some(old) = jobs.order.pop_front() {
                    jobs.jobs.remove(&old);
                }
            }
            jobs.order.push_back(id.to_string());
            jobs.jobs.insert(
                id.to_string(),
                LiveJob {
                    history: Vec::new(),
                    live,
                },
            );
        }
        self.emit(id, "queued", serde_json::json!({"id": id}));
    }

    fn emit(&self, id: &str, event: &'static str, data: Value) {
        let mut jobs = self.live.lock().expect("jobs lock");
        if let Some(job) = jobs.jobs.get_mut(id) {
            let e = JobEvent { event, data };
            job.history.push(e.clone());
            let _ = job.live.send(e);
        }
    }

    /// The job is running on `backend`, `fraction` done.
    pub async fn progress(&self, id: &str, backend: &str, fraction: f64) {
        if let Err(e) = self
            .store
            .simulation_progress(id, &self.replica, backend, fraction)
            .await
        {
            tracing::warn!(job = id, error = %e, "progress not stored");
        }
        self.emit(id, "progress", serde_json::json!({"fraction": fraction}));
    }

    /// Record the outcome, then tell followers.
    pub async fn finish(&self, id: &str, outcome: Result<Value, Value>, compute_ms: f64) {
        let text = match &outcome {
            Ok(v) | Err(v) => v.to_string(),
        };
        let text = match &outcome {
            Ok(_) => Ok(text.as_str()),
            Err(_) => Err(text.as_str()),
        };
        match self
            .store
            .finish_simulation(id, &self.replica, text, compute_ms)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = id, "another replica took this simulation over first");
            }
            Err(e) => {
                tracing::error!(job = id, error = %e, "a simulation's outcome was not stored");
            }
        }
        match outcome {
            Ok(result) => {
                self.emit(id, "progress", serde_json::json!({"fraction": 1.0}));
                self.emit(id, "result", result);
            }
            Err(error) => self.emit(id, "error", error),
        }
        self.emit(id, "done", serde_json::json!({"id": id}));
    }

    /// The stored record.
    pub async fn record(&self, id: &str) -> Result<Option<SimulationRecord>, StoreError> {
        self.store.simulation(id).await
    }

    /// The events so far and a receiver for the rest (taken together, so none is missed); for
    /// a job no longer in memory, its events rebuilt from the record.
    pub async fn follow(
        &self,
        id: &str,
    ) -> Result<Option<(Vec<JobEvent>, Option<broadcast::Receiver<JobEvent>>)>, StoreError> {
        {
            let jobs = self.live.lock().expect("jobs lock");
            if let Some(job) = jobs.jobs.get(id) {
                return Ok(Some((job.history.clone(), Some(job.live.subscribe()))));
            }
        }
        let Some(record) = self.record(id).await? else {
            return Ok(None);
        };
        Ok(Some((events_of(&JobView::of(&record), None), None)))
    }

    /// The events of a job run elsewhere that come after `seen` (its last progress, if any)
    /// from a fresh read of its record, and whether it is done; `None` when the record is
    /// gone.
    pub async fn poll(
        &self,
        id: &str,
        seen: Option<f64>,
    ) -> Result<Option<(Vec<JobEvent>, bool)>, StoreError> {
        let Some(record) = self.record(id).await? else {
            return Ok(None);
        };
        let view = JobView::of(&record);
        let done = matches!(view.status.as_str(), "complete" | "failed");
        let events = events_of(&view, seen)
            .into_iter()
            .filter(|e| e.event != "queued")
            .collect();
        Ok(Some((events, done)))
    }
}

/// A job's events as its record tells them: `queued`, its progress (when above `seen`), then
/// its result or error and `done` once finished.
fn events_of(view: &JobView, seen: Option<f64>) -> Vec<JobEvent> {
    let mut events = vec![JobEvent {
        event: "queued",
        data: serde_json::json!({"id": view.id}),
    }];
    if seen.is_none_or(|seen| view.progress > seen) {
        events.push(JobEvent {
            event: "progress",
            data: serde_json::json!({"fraction": view.progress}),
        });
    }
    if let Some(result) = &view.result {
        events.push(JobEvent {
            event: "result",
            data: result.clone(),
        });
    }
    if let Some(error) = &view.error {
        events.push(JobEvent {
            event: "error",
            data: error.clone(),
        });
    }
    if matches!(view.status.as_str(), "complete" | "failed") {
        events.push(JobEvent {
            event: "done",
            data: serde_json::json!({"id": view.id}),
        });
    }
    events
}
