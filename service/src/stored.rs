//! What the service stores and hands back by id: simulations (read, list, replay, fan chart,
//! events) and re-scoring runs. Each operation is a function of the caller and its input,
//! returning the JSON document that HTTP sends as it is and gRPC as its typed message, so
//! who may read what is decided once, here: another caller's object is a 404 (its existence is
//! not confirmed), an admin reads everyone's, and both are audit lines.

use std::time::Duration;

use futures::stream::{self, Stream, StreamExt};
use serde_json::Value;
use sextant_engine::{GoalRequest, PlanRequest};

use super::jobs::{self, JobKind, Jobs};
use super::{plan_uncached, simulate_uncached, ApiError, AppState, Caller};
use crate::rescore::{self, RunSpec, WorkerConfig};

/// Where an asynchronous job of `kind` can be followed.
pub(super) fn job_links(kind: JobKind, id: &str) -> Value {
    let collection = kind.collection();
    serde_json::json!({
        "id": id,
        "status": "queued",
        "self": format!("/v1/{collection}/{id}"),
        "events": format!("/v1/{collection}/{id}/events"),
    })
}

/// `GET /v1/simulations/{id}` (`/v1/plans/{id}`): a job's status and result, if it is the
/// caller's.
pub(super) async fn simulation(
    state: &AppState,
    caller: &Caller,
    kind: JobKind,
    id: &str,
) -> Result<Value, ApiError> {
    let record = readable_simulation(state, caller, kind, id, "read").await?;
    super::to_json(&jobs::JobView::of(&record))
}

/// The record of job `id` of `kind` when `caller` may read it, else a 404 as for one that
/// does not exist (a job of the other kind too); the refusal, and an admin's read of
/// another's, are audit lines (who, what, which object; never a secret).
async fn readable_simulation(
    state: &AppState,
    caller: &Caller,
    kind: JobKind,
    id: &str,
    action: &'static str,
) -> Result<sextant_store::simulations::SimulationRecord, ApiError> {
    let noun = kind.noun();
    let not_found = || ApiError::NotFound(format!("{noun} {id}"));
    let record = state
        .jobs
        .record(id)
        .await?
        .filter(|r| r.kind == kind.as_str())
        .ok_or_else(not_found)?;
    let owner = record.owner.as_deref();
    if !caller.may_read(owner) {
        tracing::warn!(
            target: "sextant::audit",
            who = %caller.owner,
            action,
            object = %format!("{noun}/{id}"),
            outcome = "denied",
            "audit"
        );
        return Err(not_found());
    }
    if owner != Some(caller.owner.as_str()) {
        tracing::info!(
            target: "sextant::audit",
            who = %caller.owner,
            action,
            object = %format!("{noun}/{id}"),
            owner = owner.unwrap_or("(none)"),
            outcome = "admin read",
            "audit"
        );
    }
    Ok(record)
}

/// Refuse a caller that is not an admin (an operation on everyone's data), with an audit
/// line.
fn require_admin(caller: &Caller, action: &'static str) -> Result<(), ApiError> {
    if caller.admin {
        return Ok(());
    }
    tracing::warn!(target: "sextant::audit", who = %caller.owner, action, outcome = "denied", "audit");
    Err(ApiError::Forbidden(format!(
        "{action} needs an admin (--admin, or the admin scope)"
    )))
}

/// The query of `GET /v1/simulations`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Most simulations one page lists.
const MAX_PAGE: i64 = 500;

/// `GET /v1/simulations?status=&limit=&cursor=` (`/v1/plans?…`): the caller's jobs of `kind`,
/// newest first, a page at a time (an admin's lists every caller's); `next_cursor` gives the
/// next page.
pub(super) async fn list(
    state: &AppState,
    caller: &Caller,
    kind: JobKind,
    query: ListQuery,
) -> Result<Value, ApiError> {
    if let Some(status) = &query.status {
        if !["queued", "running", "complete", "failed"].contains(&status.as_str()) {
            return Err(ApiError::Invalid {
                field: "status".into(),
                message: format!("must be queued, running, complete or failed, got {status:?}"),
            });
        }
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::Invalid {
            field: "limit".into(),
            message: format!("must be between 1 and {MAX_PAGE}, got {limit}"),
        });
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| {
            c.split_once('.')
                .and_then(|(at, id)| {
                    Some(sextant_store::simulations::ListCursor {
                        created_at: at.parse().ok()?,
                        id: id.to_string(),
                    })
                })
                .ok_or_else(|| ApiError::Malformed {
                    field: "cursor".into(),
                    message: "not a cursor this service gave".into(),
                })
        })
        .transpose()?;
    let owner = (!caller.admin).then_some(caller.owner.as_str());
    let records = state
        .store
        .list_simulations(
            kind.as_str(),
            owner,
            query.status.as_deref(),
            cursor.as_ref(),
            limit,
        )
        .await?;
    let next_cursor = (records.len() as i64 == limit)
        .then(|| records.last().map(|r| format!("{}.{}", r.created_at, r.id)))
        .flatten();
    let simulations: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut view = serde_json::to_value(jobs::JobView::of(r)).unwrap_or(Value::Null);
            if let Some(view) = view.as_object_mut() {
                // A listing says where each job stands; its result is one GET away.
                view.remove("result");
                view.remove("error");
                let link = format!("/v1/{}/{}", kind.collection(), r.id);
                view.insert("self".into(), link.into());
            }
            view
        })
        .collect();
    let mut page = serde_json::Map::new();
    page.insert(kind.collection().into(), simulations.into());
    page.insert("next_cursor".into(), next_cursor.into());
    Ok(Value::Object(page))
}

/// `POST /v1/simulations/{id}/replay` (`/v1/plans/{id}/replay`): run a stored job's request
/// again with its stored seed, bypassing the cache, and say whether the result is identical.
pub(super) async fn replay(
    state: &AppState,
    caller: &Caller,
    kind: JobKind,
    id: &str,
) -> Result<Value, ApiError> {
    let noun = kind.noun();
    let record = readable_simulation(state, caller, kind, id, "replay").await?;
    let stored: Value = record
        .results
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "a result for {noun} {id} (status {})",
                record.status
            ))
        })?;
    let unreadable =
        |e: serde_json::Error| ApiError::Internal(format!("the stored request is unreadable: {e}"));
    let replayed = match kind {
        JobKind::Goal => {
            let request: GoalRequest = serde_json::from_str(&record.request).map_err(unreadable)?;
            simulate_uncached(state, &request).await?
        }
        JobKind::Plan => {
            let request: PlanRequest = serde_json::from_str(&record.request).map_err(unreadable)?;
            plan_uncached(state, request).await?
        }
    };
    Ok(serde_json::json!({
        "id": id,
        "identical": replayed == stored,
        "seed": record.seed,
        "engine_version": {"stored": record.engine_version, "now": sextant_engine::ENGINE_VERSION},
        "backend": {"stored": record.backend, "now": state.engine.backend().info().name},
        "result": replayed,
    }))
}

/// `GET /v1/simulations/{id}/fan-chart.svg` (`/v1/plans/{id}/fan-chart.svg`): the fan chart
/// of a finished job.
pub(super) async fn fan_chart(
    state: &AppState,
    caller: &Caller,
    kind: JobKind,
    id: &str,
) -> Result<String, ApiError> {
    let noun = kind.noun();
    let record = readable_simulation(state, caller, kind, id, "fan chart").await?;
    let view = jobs::JobView::of(&record);
    let result = view.result.ok_or_else(|| {
        ApiError::NotFound(format!("a result for {noun} {id} (status {})", view.status))
    })?;
    let chart = match kind {
        JobKind::Goal => crate::charts::fan_chart(&result),
        JobKind::Plan => crate::charts::plan_fan_chart(&result),
    };
    // A result without percentiles (`options.percentiles: []`) has no fan to draw.
    chart.map_err(|message| ApiError::Invalid {
        field: "options.percentiles".into(),
        message: format!("{noun} {id} has no fan chart: {message}"),
    })
}

/// `GET /v1/simulations/{id}/events` (`/v1/plans/{id}/events`): the job's events so far,
/// then the rest as they come, ending with `done`.
pub(super) async fn events(
    state: &AppState,
    caller: &Caller,
    kind: JobKind,
    id: &str,
) -> Result<impl Stream<Item = jobs::JobEvent> + Send + 'static, ApiError> {
    readable_simulation(state, caller, kind, id, "events").await?;
    follow(state, id).await
}

/// A job's events without an owner check: the caller has just created it.
pub(super) async fn follow(
    state: &AppState,
    id: &str,
) -> Result<impl Stream<Item = jobs::JobEvent> + Send + 'static, ApiError> {
    let (history, live) = state
        .jobs
        .follow(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id}")))?;
    Ok(job_events(
        state.jobs.clone(),
        id.to_string(),
        history,
        live,
    ))
}

/// A job's events so far, then the rest as they come (from this replica's channel, or from
/// the record when another replica runs the job), ending after `done`.
///
/// A channel that closes before `done` (the job was evicted from memory, or taken over and
/// watched afresh) hands over to the record, so a follower always sees the job's end.
fn job_events(
    jobs: Jobs,
    id: String,
    history: Vec<jobs::JobEvent>,
    live: Option<tokio::sync::broadcast::Receiver<jobs::JobEvent>>,
) -> impl Stream<Item = jobs::JobEvent> + Send + 'static {
    use tokio::sync::broadcast::error::RecvError;
    /// Where the next events come from; `seen` is the last progress sent.
    enum Source {
        Live(
            tokio::sync::broadcast::Receiver<jobs::JobEvent>,
            Option<f64>,
        ),
        Record(Option<f64>),
    }
    let finished = history.iter().any(|e| e.event == "done");
    let seen = last_progress(&history);
    let first = match live {
        _ if finished => None,
        Some(receiver) => Some(Source::Live(receiver, seen)),
        None => Some(Source::Record(seen)),
    };
    let rest = stream::unfold(first, move |source| {
        let (jobs, id) = (jobs.clone(), id.clone());
        async move {
            let mut source = source?;
            loop {
                source = match source {
                    Source::Live(mut receiver, seen) => match receiver.recv().await {
                        Ok(e) => {
                            let seen = match e.event {
                                "progress" => e.data["fraction"].as_f64(),
                                _ => seen,
                            };
                            let next = (e.event != "done").then_some(Source::Live(receiver, seen));
                            return Some((vec![e], next));
                        }
                        // Only progress is ever dropped: the newest events, `done` among
                        // them, stay in the channel.
                        Err(RecvError::Lagged(_)) => Source::Live(receiver, seen),
                        Err(RecvError::Closed) => Source::Record(seen),
                    },
                    Source::Record(seen) => {
                        tokio::time::sleep(jobs::POLL_EVERY).await;
                        match jobs.poll(&id, seen).await {
                            Ok(None) => return None,
                            Err(e) => {
                                tracing::warn!(job = %id, error = %e, "following from the store");
                                Source::Record(seen)
                            }
                            Ok(Some((events, done))) => {
                                let seen = last_progress(&events).or(seen);
                                if events.is_empty() {
                                    Source::Record(seen)
                                } else {
                                    let next = (!done).then_some(Source::Record(seen));
                                    return Some((events, next));
                                }
                            }
                        }
                    }
                }
            }
        }
    })
    .flat_map(stream::iter);
    stream::iter(history).chain(rest)
}

/// The fraction done of the last `progress` among `events`.
fn last_progress(events: &[jobs::JobEvent]) -> Option<f64> {
    events
        .iter()
        .rev()
        .find(|e| e.event == "progress")
        .and_then(|e| e.data["fraction"].as_f64())
}

/// `POST /v1/rescore-runs`: create (or join, by `run_key`) a re-scoring run and work on it in
/// this process; its id and where to follow it.
pub(super) async fn create_rescore_run(
    state: &AppState,
    caller: &Caller,
    body: &[u8],
) -> Result<Value, ApiError> {
    require_admin(caller, "starting a re-scoring run")?;
    let spec: RunSpec = super::parse(body)?;
    let run = rescore::ensure_run(&state.store, &spec, &caller.owner).await?;
    start_rescore(state, run.clone());
    Ok(serde_json::json!({
        "id": run.id,
        "run_key": run.run_key,
        "total_goals": run.total_goals,
        "total_plans": run.total_plans,
        "self": format!("/v1/rescore-runs/{}", run.id),
    }))
}

/// The name this replica's re-scoring workers lease shards under.
pub(super) fn rescore_worker_name(state: &AppState) -> String {
    format!("serve-{}-{}", state.replica, std::process::id())
}

/// Work on `run` in the bulk lane, unless this replica already does (shards are leased one
/// at a time, so workers on other replicas share the run without scoring a goal twice).
pub(super) fn start_rescore(state: &AppState, run: rescore::Run) {
    if !state
        .rescoring
        .lock()
        .expect("rescoring lock")
        .insert(run.id)
    {
        return;
    }
    let worker = WorkerConfig {
        name: rescore_worker_name(state),
        lease: Duration::from_secs(120),
        progress: false,
        cpu: state.cpu_backend(),
        pool: Some(state.lanes.bulk.pool.clone()),
        stop: state.rescore_stop.clone(),
    };
    let (store, rescoring) = (state.store.clone(), state.rescoring.clone());
    tokio::spawn(async move {
        match rescore::work(&store, &run, &worker).await {
            Ok(report) => tracing::info!(run = run.id, goals = report.goals, "re-scoring done"),
            Err(e) => tracing::warn!(run = run.id, error = %e, "re-scoring stopped"),
        }
        rescoring.lock().expect("rescoring lock").remove(&run.id);
    });
}

/// `GET /v1/rescore-runs/{id}`: a run's status, progress, and goals and plans by funding
/// status.
pub(super) async fn rescore_run(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Value, ApiError> {
    require_admin(caller, "reading a re-scoring run")?;
    let not_found = || ApiError::NotFound(format!("re-scoring run {id}"));
    let run_id: i64 = id.parse().map_err(|_| not_found())?;
    state.store.run_status(run_id).await?.ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_store::{DatabaseArgs, Store};

    /// A follower whose channel closes before `done` (here: the job is watched afresh, as a
    /// takeover does) still sees the job's result and `done`, read from the record.
    #[tokio::test]
    async fn a_follower_sees_the_end_of_a_job_watched_afresh() {
        let file = std::env::temp_dir().join(format!(
            "sextant-stored-test-{}-{}.sqlite",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let store = Store::open(&DatabaseArgs {
            database_url: Some(format!("sqlite://{}?mode=rwc", file.display())),
            ..DatabaseArgs::default()
        })
        .await
        .unwrap();
        let jobs = Jobs::new(store, "replica-a", std::time::Duration::from_secs(30));
        let id = jobs
            .create(JobKind::Goal, "{}", "hash", 1000, 7, "key:alice")
            .await
            .unwrap();
        let (history, live) = jobs.follow(&id).await.unwrap().unwrap();
        let events = job_events(jobs.clone(), id.clone(), history, live);
        jobs.watch(&id);
        jobs.finish(&id, Ok(serde_json::json!({"success": 0.5})), 1.0)
            .await;
        let names: Vec<&str> = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            events.collect::<Vec<_>>(),
        )
        .await
        .expect("the events end")
        .iter()
        .map(|e| e.event)
        .collect();
        assert_eq!(names.first(), Some(&"queued"));
        assert_eq!(&names[names.len() - 2..], ["result", "done"], "{names:?}");
        let _ = std::fs::remove_file(file);
    }
}
