//! Dynamic batching: concurrent goal simulations are coalesced into one engine batch, so that
//! many small callers get the throughput of large dispatches.
//!
//! Requests wait in a bounded queue (full: 429 with Retry-After). A worker takes the first
//! waiting goal, then keeps taking until the batch holds `max_batch` goals or `max_delay` has
//! passed since the first, and runs the batch on the engine's thread pool while the next
//! requests queue up. A request whose caller has gone away is dropped before it is computed,
//! and a running batch whose callers have all gone away is cancelled. While a batch runs,
//! every [`PROGRESS_EVERY`] each job that asked is sent its batch's fraction of path-steps done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sextant_engine::backend::Watch;
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

/// How often a running batch reports progress and looks for callers that went away.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);

struct Job {
    goal: PreparedGoal,
    enqueued: Instant,
    reply: oneshot::Sender<Result<SimulationResult, ApiError>>,
    /// Where the job's progress goes (asynchronous jobs), as fractions done.
    progress: Option<mpsc::UnboundedSender<f64>>,
}

#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
}

impl Batcher {
    /// Batches run on `pool` (the service's interactive lane).
    pub fn start(
        engine: Arc<Engine>,
        config: BatchConfig,
        pool: Arc<rayon::ThreadPool>,
    ) -> Batcher {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(run(engine, config, pool, rx));
        Batcher { tx }
    }

    /// Queue a goal; the result arrives on the returned receiver, and the fraction done is
    /// sent to `progress` while the batch runs (the sender is dropped once the result is
    /// sent). A full queue is an error now.
    pub fn submit_with_progress(
        &self,
        goal: PreparedGoal,
        progress: Option<mpsc::UnboundedSender<f64>>,
    ) -> Result<oneshot::Receiver<Result<SimulationResult, ApiError>>, ApiError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            goal,
            enqueued: Instant::now(),
            reply,
            progress,
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

async fn run(
    engine: Arc<Engine>,
    config: BatchConfig,
    pool: Arc<rayon::ThreadPool>,
    mut rx: mpsc::Receiver<Job>,
) {
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
        let watch = Arc::new(Watch::default());
        let watching = watch.clone();
        let pool = pool.clone();
        let compute = tokio::task::spawn_blocking(move || {
            pool.install(|| engine.run_watched(&goals, &watching))
        });
        tokio::pin!(compute);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await; // The first tick is now.
        let outcome = loop {
            tokio::select! {
                outcome = &mut compute => break outcome,
                _ = tick.tick() => {
                    if !watch.is_cancelled() && jobs.iter().all(|j| j.reply.is_closed()) {
                        watch.cancel();
                        metrics::counter!("sextant_cancelled_batches_total").increment(1);
                    }
                    let fraction = (watch.done() as f64 / steps.max(1) as f64).min(1.0);
                    for job in &jobs {
                        if let Some(progress) = &job.progress {
                            let _ = progress.send(fraction);
                        }
                    }
                }
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let done = watch.done();
        metrics::histogram!("sextant_compute_seconds").record(seconds);
        metrics::counter!("sextant_path_steps_total").increment(done);
        metrics::gauge!("sextant_path_steps_per_second").set(done as f64 / seconds.max(1e-9));
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
