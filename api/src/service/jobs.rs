//! Asynchronous simulations: an id, a status, and the events a caller can follow by SSE
//! (`queued`, `progress`, `result`, `error`, `done`).
//!
//! The `simulations` table is the record: a job is stored before its id is given out, its
//! progress and outcome are written as they happen, so it can be read (and replayed) after a
//! restart, and jobs left queued or running by a stop are run again on start. Live events go
//! through memory: a bounded number of recent jobs keep their event history and a broadcast
//! channel; an older or pre-restart job's events are rebuilt from its record.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::store::simulations::{NewSimulation, SimulationRecord};
use crate::store::{Store, StoreError};

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl JobView {
    fn of(record: &SimulationRecord) -> JobView {
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
}

#[derive(Default)]
struct LiveJobs {
    jobs: HashMap<String, LiveJob>,
    order: VecDeque<String>,
}

impl Jobs {
    pub fn new(store: Store) -> Jobs {
        Jobs {
            store,
            live: Arc::default(),
        }
    }

    /// Store a queued job for `request` (its canonical JSON, hash, paths and seed) and give
    /// its id.
    pub async fn create(
        &self,
        request: &str,
        request_hash: &str,
        paths: u64,
        seed: u64,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.store
            .insert_simulation(&NewSimulation {
                id: &id,
                request,
                request_hash,
                iterations: paths,
                seed,
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
        if let Err(e) = self.store.simulation_progress(id, backend, fraction).await {
            tracing::warn!(job = id, error = %e, "progress not stored");
        }
        self.emit(id, "progress", serde_json::json!({"fraction": fraction}));
    }

    /// Record the outcome, then tell followers.
    pub async fn finish(&self, id: &str, outcome: Result<Value, Value>, compute_ms: f64) {
        let text = match &outcome {
            Ok(v) | Err(v) => v.to_string(),
        };
        let stored = match &outcome {
            Ok(_) => {
                self.store
                    .finish_simulation(id, Ok(&text), compute_ms)
                    .await
            }
            Err(_) => {
                self.store
                    .finish_simulation(id, Err(&text), compute_ms)
                    .await
            }
        };
        if let Err(e) = stored {
            tracing::error!(job = id, error = %e, "a simulation's outcome was not stored");
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

    pub async fn view(&self, id: &str) -> Result<Option<JobView>, StoreError> {
        Ok(self.record(id).await?.as_ref().map(JobView::of))
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
        let view = JobView::of(&record);
        let mut events = vec![JobEvent {
            event: "queued",
            data: serde_json::json!({"id": id}),
        }];
        events.push(JobEvent {
            event: "progress",
            data: serde_json::json!({"fraction": view.progress}),
        });
        if let Some(result) = view.result {
            events.push(JobEvent {
                event: "result",
                data: result,
            });
        }
        if let Some(error) = view.error {
            events.push(JobEvent {
                event: "error",
                data: error,
            });
        }
        if matches!(view.status.as_str(), "complete" | "failed") {
            events.push(JobEvent {
                event: "done",
                data: serde_json::json!({"id": id}),
            });
        }
        Ok(Some((events, None)))
    }

    /// Jobs a previous run of the service left queued or running.
    pub async fn unfinished(&self) -> Result<Vec<SimulationRecord>, StoreError> {
        self.store.unfinished_simulations().await
    }
}
