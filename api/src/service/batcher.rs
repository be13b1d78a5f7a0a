//! Dynamic batching: concurrent goal simulations are coalesced into one engine batch, so that
//! many small callers get the throughput of large dispatches.
//!
//! Requests wait in a bounded queue (full: 429 with Retry-After). A worker takes the first
//! waiting goal, then keeps taking until the batch holds `max_batch` goals or `max_delay` has
//! passed since the first, and runs the batch on the engine's thread pool while the next
//! requests queue up. A request whose caller has gone away is dropped before it is computed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sextant_engine::{Engine, PreparedGoal, SimulationResult};
use tokio::sync::{mpsc, oneshot};

use super::error::ApiError;

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most goals in one engine batch.
    pub max_batch: usize,
    /// Longest a goal waits for others before its batch runs.
    pub max_delay: Duration,
    /// Most goals waiting; beyond it requests are refused with 429.
    pub queue: usize,
}

struct Job {
    goal: PreparedGoal,
    enqueued: Instant,
    reply: oneshot::Sender<Result<SimulationResult, ApiError>>,
}

#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
}

impl Batcher {
    pub fn start(engine: Arc<Engine>, config: BatchConfig) -> Batcher {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(run(engine, config, rx));
        Batcher { tx }
    }

    /// Queue a goal; the result arrives on the returned receiver. A full queue is an error now.
    pub fn submit(
        &self,
        goal: PreparedGoal,
    ) -> Result<oneshot::Receiver<Result<SimulationResult, ApiError>>, ApiError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            goal,
            enqueued: Instant::now(),
            reply,
        };
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ApiError::Overloaded {
                retry_after_seconds: 1,
            },
            mpsc::error::TrySendError::Closed(_) => {
                ApiError::Internal("the batcher has stopped".into())
            }
        })?;
        metrics::gauge!("sextant_queue_depth").increment(1.0);
        Ok(rx)
    }
}

async fn run(engine: Arc<Engine>, config: BatchConfig, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + config.max_delay;
        let mut jobs = vec![first];
        while jobs.len() < config.max_batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => jobs.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        metrics::gauge!("sextant_queue_depth").decrement(jobs.len() as f64);
        // Callers that went away are not computed.
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let started = Instant::now();
        for job in &jobs {
            metrics::histogram!("sextant_queue_seconds")
                .record((started - job.enqueued).as_secs_f64());
        }
        metrics::histogram!("sextant_batch_size").record(jobs.len() as f64);
        let goals: Vec<PreparedGoal> = jobs.iter().map(|j| j.goal.clone()).collect();
        let steps: u64 = goals.iter().map(PreparedGoal::path_steps).sum();
        let engine = engine.clone();
        let outcome = tokio::task::spawn_blocking(move || engine.run(&goals)).await;
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!("sextant_compute_seconds").record(seconds);
        metrics::counter!("sextant_path_steps_total").increment(steps);
        metrics::gauge!("sextant_path_steps_per_second").set(steps as f64 / seconds.max(1e-9));
        match outcome {
            Ok(Ok(results)) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Ok(Err(e)) => {
                let e = ApiError::from(e);
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
            Err(panic) => {
                for job in jobs {
                    let _ = job.reply.send(Err(ApiError::Internal(format!(
                        "the engine failed: {panic}"
                    ))));
                }
            }
        }
    }
}
