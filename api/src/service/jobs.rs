//! Asynchronous simulations: an id, a status, and the events a caller can follow by SSE
//! (`queued`, `progress`, `result`, `error`, `done`). Kept in memory until the storage issue
//! gives them a database; a bounded number are kept, oldest finished first out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// Most jobs remembered.
const MAX_JOBS: usize = 10_000;

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
    pub status: &'static str,
    pub progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

struct Job {
    view: JobView,
    history: Vec<JobEvent>,
    live: broadcast::Sender<JobEvent>,
}

#[derive(Clone, Default)]
pub struct Jobs {
    inner: Arc<Mutex<Store>>,
}

#[derive(Default)]
struct Store {
    jobs: HashMap<String, Job>,
    order: VecDeque<String>,
}

impl Jobs {
    /// A new queued job.
    pub fn create(&self) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (live, _) = broadcast::channel(16);
        let mut store = self.inner.lock().expect("jobs lock");
        while store.order.len() >= MAX_JOBS {
            if let Some(old) = store.order.pop_front() {
                store.jobs.remove(&old);
            }
        }
        store.order.push_back(id.clone());
        store.jobs.insert(
            id.clone(),
            Job {
                view: JobView {
                    id: id.clone(),
                    status: "queued",
                    progress: 0.0,
                    result: None,
                    error: None,
                },
                history: Vec::new(),
                live,
            },
        );
        drop(store);
        self.emit(&id, "queued", serde_json::json!({"id": id}));
        id
    }

    fn emit(&self, id: &str, event: &'static str, data: Value) {
        let mut store = self.inner.lock().expect("jobs lock");
        if let Some(job) = store.jobs.get_mut(id) {
            let e = JobEvent { event, data };
            job.history.push(e.clone());
            let _ = job.live.send(e);
        }
    }

    pub fn progress(&self, id: &str, fraction: f64) {
        {
            let mut store = self.inner.lock().expect("jobs lock");
            if let Some(job) = store.jobs.get_mut(id) {
                job.view.status = "running";
                job.view.progress = fraction;
            }
        }
        self.emit(id, "progress", serde_json::json!({"fraction": fraction}));
    }

    pub fn finish(&self, id: &str, outcome: Result<Value, Value>) {
        {
            let mut store = self.inner.lock().expect("jobs lock");
            if let Some(job) = store.jobs.get_mut(id) {
                job.view.progress = 1.0;
                match &outcome {
                    Ok(result) => {
                        job.view.status = "complete";
                        job.view.result = Some(result.clone());
                    }
                    Err(error) => {
                        job.view.status = "failed";
                        job.view.error = Some(error.clone());
                    }
                }
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

    pub fn view(&self, id: &str) -> Option<JobView> {
        let store = self.inner.lock().expect("jobs lock");
        store.jobs.get(id).map(|j| j.view.clone())
    }

    /// The events so far and a receiver for the rest (taken together, so none is missed).
    pub fn follow(&self, id: &str) -> Option<(Vec<JobEvent>, broadcast::Receiver<JobEvent>)> {
        let store = self.inner.lock().expect("jobs lock");
        store
            .jobs
            .get(id)
            .map(|j| (j.history.clone(), j.live.subscribe()))
    }
}
