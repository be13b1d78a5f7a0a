//! Nightly re-scoring (`sextant rescore`, `POST /v1/rescore-runs`): every stored goal and
//! household plan, or a filter's, scored in large engine batches and written back. A goal gets
//! its success probability, the monthly savings its threshold needs and a funding status; a
//! plan its success at the spending it states, the spending it sustains at its threshold (the
//! §5 solver) and a funding status.
//!
//! A run has a key; every worker given the key shares it. The run's goals and plans are cut
//! into shards (ranges of ids, goals' first) when the run is created. A worker leases one shard at a time
//! (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite serialises writers), scores its goals on the
//! CPU backend, and commits in one transaction: the shard marked done (only if still leased by
//! this worker), each goal's score in `rescore_scores` and the goals updated in multi-row
//! statements. So a worker killed at any instant leaves either the whole shard or none of it;
//! its lease expires and another worker (or itself, restarted) takes the shard over; and a
//! slow worker whose lease was taken over cannot commit the shard a second time.
//!
//! The statements are the store's (`sextant_store::rescore_runs`); this module decides what a
//! run is, scores goals and drives the workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sextant_engine::backend::{BackendError, Watch};
use sextant_engine::plan::solve::sustainable_spending;
use sextant_engine::solve::score_accumulation;
use sextant_engine::{CpuBackend, Device, Engine, EngineError};
use sextant_store::goals::StoredGoal;
use sextant_store::plans::StoredPlan;
use sextant_store::rescore_runs::{NewRun, DATE};
pub use sextant_store::rescore_runs::{PlanScored, Run, RunFilter, ScoreKind, Scored};
use sextant_store::{Store, StoreError};
use time::Date;

/// What a run covers and how it is cut (the fields of `POST /v1/rescore-runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Workers given the same key share the run; default `nightly-<as_of>`.
    #[serde(default)]
    pub run_key: Option<String>,
    #[serde(default)]
    pub filter: RunFilter,
    /// Paths per goal; under `precision`, the first round's.
    #[serde(default = "default_paths")]
    pub paths: u64,
    /// The standard error of success each goal's score is to reach (docs/model.md §6), in
    /// (0, 0.5]: the goal is then scored under the tools' sampler ([`crate::TOOL_SAMPLER`]) in
    /// rounds from `paths` paths, each at least doubling them, up to the engine's default
    /// `max_paths`. Plans are scored at `plan_paths` whatever it says.
    #[serde(default)]
    pub precision: Option<f64>,
    /// Paths per plan, in each run of its sustainable-spending search.
    #[serde(default = "default_plan_paths")]
    pub plan_paths: u64,
    /// Goals per shard (the unit of leasing and of each commit).
    #[serde(default = "default_shard_size")]
    pub shard_size: u64,
    /// Plans per shard: a plan costs a search of some fifteen simulations, so its shards are
    /// smaller than the goals' to stay well inside a lease.
    #[serde(default = "default_plan_shard_size")]
    pub plan_shard_size: u64,
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
fn default_plan_paths() -> u64 {
    1_000
}
fn default_plan_shard_size() -> u64 {
    50
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            run_key: None,
            filter: RunFilter::default(),
            paths: default_paths(),
            precision: None,
            plan_paths: default_plan_paths(),
            shard_size: default_shard_size(),
            plan_shard_size: default_plan_shard_size(),
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
    if let Some(s) = spec.precision {
        if !(s.is_finite() && s > 0.0 && s <= 0.5) {
            return Err(invalid(
                "precision",
                format!("must be in (0, 0.5], got {s}"),
            ));
        }
        let most = sextant_engine::request::DEFAULT_MAX_PATHS;
        if spec.paths > most {
            return Err(invalid(
                "paths",
                format!(
                    "the first round's paths under a precision must be at most {most}, got {}",
                    spec.paths
                ),
            ));
        }
    }
    if !(1..=100_000).contains(&spec.plan_paths) {
        return Err(invalid(
            "plan_paths",
            format!("must be between 1 and 100000, got {}", spec.plan_paths),
        ));
    }
    if !(1..=100_000).contains(&spec.shard_size) {
        return Err(invalid(
            "shard_size",
            format!("must be between 1 and 100000, got {}", spec.shard_size),
        ));
    }
    if !(1..=10_000).contains(&spec.plan_shard_size) {
        return Err(invalid(
            "plan_shard_size",
            format!("must be between 1 and 10000, got {}", spec.plan_shard_size),
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
/// date then apply. `owner` (an admin) is who started it.
pub async fn ensure_run(store: &Store, spec: &RunSpec, owner: &str) -> Result<Run, RescoreError> {
    let as_of = check(spec)?;
    let key = spec
        .run_key
        .clone()
        .unwrap_or_else(|| format!("nightly-{}", as_of.format(DATE).expect("a date formats")));
    let run = store
        .create_run(&NewRun {
            run_key: &key,
            filter: &spec.filter,
            paths: spec.paths,
            plan_paths: spec.plan_paths,
            precision: spec.precision,
            shard_size: spec.shard_size,
            plan_shard_size: spec.plan_shard_size,
            as_of,
            owner,
        })
        .await?;
    if run.paths != spec.paths
        || run.plan_paths != spec.plan_paths
        || run.precision != spec.precision
        || run.filter != spec.filter
    {
        tracing::warn!(
            run = %run.run_key,
            "joining an existing run: its own paths ({}, plans {}, precision {:?}) and filter apply",
            run.paths,
            run.plan_paths,
            run.precision
        );
    }
    Ok(run)
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

/// Score one goal as of `as_of` with `paths` paths, or under `precision` (a standard error of
/// success) in rounds from `paths` under the tools' sampler.
pub fn score(
    cpu: &CpuBackend,
    goal: &StoredGoal,
    as_of: Date,
    paths: u64,
    precision: Option<f64>,
) -> Scored {
    let unscored = |status, p: Option<f64>| Scored {
        goal_id: goal.id,
        success_probability: p,
        required_monthly_savings: None,
        standard_error: None,
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
    let mut request = goal.request(months, paths);
    if let Some(s) = precision {
        request.options.sampler = crate::TOOL_SAMPLER;
        request.options.precision = Some(sextant_engine::request::Precision {
            success_probability: s,
        });
    }
    match score_accumulation(cpu, &request) {
        Ok(s) => Scored {
            goal_id: goal.id,
            success_probability: Some(s.success_probability),
            required_monthly_savings: s.required_contribution,
            standard_error: Some(s.standard_error),
            funding_status: funding_status(s.success_probability, goal.success_threshold),
            path_steps: s.paths_simulated * u64::from(months),
        },
        Err(e) => {
            tracing::warn!(goal = goal.id, error = %e, "goal not scored");
            unscored("invalid", None)
        }
    }
}

/// Score one plan as of `as_of` with `paths` paths: its success at the spending it states and
/// the largest spending whose success meets its threshold, with `engine` (whose watch counts
/// the work). `None` when that watch was cancelled (the worker told to stop).
pub fn score_plan(
    engine: &Engine,
    plan: &StoredPlan,
    as_of: Date,
    paths: u64,
) -> Option<PlanScored> {
    let invalid = |message: String| {
        tracing::warn!(plan = plan.id, %message, "plan not scored");
        Some(PlanScored {
            plan_id: plan.id,
            success_probability: None,
            sustainable_spending: None,
            standard_error: None,
            funding_status: "invalid",
        })
    };
    let cancelled = |e: &EngineError| matches!(e, EngineError::Backend(BackendError::Cancelled));
    let request = match plan.request_as_of(as_of, paths) {
        Ok(request) => request,
        Err(message) => return invalid(message),
    };
    let stated = match engine.plan(&request) {
        Ok(result) => result,
        Err(e) if cancelled(&e) => return None,
        Err(e) => return invalid(e.to_string()),
    };
    let solved = match sustainable_spending(engine, &request) {
        Ok(solved) => solved,
        Err(e) if cancelled(&e) => return None,
        Err(e) => return invalid(e.to_string()),
    };
    let p = stated.success_probability;
    Some(PlanScored {
        plan_id: plan.id,
        success_probability: Some(p),
        sustainable_spending: Some(if solved.attainable {
            solved.essential + solved.discretionary
        } else {
            0.0
        }),
        standard_error: Some(stated.standard_error),
        funding_status: funding_status(p, request.plan.success_threshold),
    })
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
    pub plans: u64,
    pub seconds: f64,
    pub goals_per_second: f64,
    pub plans_per_second: f64,
    pub path_steps_per_second: f64,
    /// Seconds waiting on the database (reading goals, leasing, committing).
    pub database_seconds: f64,
    /// Seconds in the engine.
    pub engine_seconds: f64,
    /// Shards this worker computed but could not commit: its lease was taken over.
    pub lost_leases: u64,
    /// The whole run, when it finished: goals and plans by funding status.
    pub run_complete: bool,
    pub by_status: std::collections::BTreeMap<String, u64>,
    pub plans_by_status: std::collections::BTreeMap<String, u64>,
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
        let bar = indicatif::ProgressBar::new(run.total_goals + run.total_plans);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} goals and plans [{bar:40}] {per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_position(store.done_items(run.id).await?);
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    loop {
        if config.stop.is_cancelled() {
            bar.finish_and_clear();
            return Err(RescoreError::Stopped);
        }
        let t = Instant::now();
        let lease = store
            .lease_shard(run.id, &config.name, config.lease)
            .await?;
        report.database_seconds += t.elapsed().as_secs_f64();
        let Some(sextant_store::rescore_runs::Lease {
            shard,
            kind,
            lo,
            hi,
        }) = lease
        else {
            let t = Instant::now();
            let open = store.open_shards(run.id).await?;
            report.database_seconds += t.elapsed().as_secs_f64();
            if open == 0 {
                break;
            }
            // Others hold the rest; their leases finish or expire.
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        let t = Instant::now();
        let shard_of = match kind {
            ScoreKind::Goal => Shard::Goals(store.goals_in_range(lo, hi, &run.filter).await?),
            ScoreKind::Plan => Shard::Plans(
                store
                    .plans_in_range(lo, hi, run.filter.user_id.as_deref())
                    .await?,
            ),
        };
        report.database_seconds += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let scored = score_shard(shard_of, run, config).await?;
        let Some((scores, shard_steps)) = scored else {
            store.release_shard(run.id, shard, &config.name).await?;
            bar.finish_and_clear();
            return Err(RescoreError::Stopped);
        };
        report.engine_seconds += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (committed, items) = match &scores {
            Scores::Goals(scores) => (
                store
                    .commit_shard(run.id, shard, &config.name, scores)
                    .await?,
                scores.len() as u64,
            ),
            Scores::Plans(scores) => (
                store
                    .commit_plan_shard(run.id, shard, &config.name, scores)
                    .await?,
                scores.len() as u64,
            ),
        };
        report.database_seconds += t.elapsed().as_secs_f64();
        if committed {
            report.shards += 1;
            match kind {
                ScoreKind::Goal => report.goals += items,
                ScoreKind::Plan => report.plans += items,
            }
            steps += shard_steps;
            bar.inc(items);
        } else {
            report.lost_leases += 1;
            tracing::warn!(
                shard,
                "lease lost before commit; the shard is another worker's"
            );
        }
    }
    bar.finish_and_clear();
    store.finish_run(run.id).await?;
    report.seconds = started.elapsed().as_secs_f64();
    report.goals_per_second = report.goals as f64 / report.seconds.max(1e-9);
    report.plans_per_second = report.plans as f64 / report.seconds.max(1e-9);
    report.path_steps_per_second = steps as f64 / report.seconds.max(1e-9);
    report.run_complete = true;
    report.by_status = store.scores_by_status(run.id, ScoreKind::Goal).await?;
    report.plans_by_status = store.scores_by_status(run.id, ScoreKind::Plan).await?;
    Ok(report)
}

/// A leased shard's goals or plans.
enum Shard {
    Goals(Vec<StoredGoal>),
    Plans(Vec<StoredPlan>),
}

/// Their scores.
enum Scores {
    Goals(Vec<Scored>),
    Plans(Vec<PlanScored>),
}

/// Score a shard on the worker's threads, with the path-steps it took; `None` when the worker
/// was told to stop first. Goals are checked for the stop between goals (each takes
/// milliseconds); plans also inside their searches, between blocks of paths, through the
/// shard's own watch, which the stop cancels.
async fn score_shard(
    shard: Shard,
    run: &Run,
    config: &WorkerConfig,
) -> Result<Option<(Scores, u64)>, RescoreError> {
    let (as_of, engine) = (run.as_of, config.cpu.clone());
    let (paths, plan_paths, precision) = (run.paths, run.plan_paths, run.precision);
    let (pool, stop) = (config.pool.clone(), config.stop.clone());
    let watch = Arc::new(Watch::default());
    // Forward the worker's stop to the shard's watch while the shard is scored.
    let forward = {
        let (stop, watch) = (stop.clone(), watch.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            watch.cancel();
        })
    };
    let scoring_watch = watch.clone();
    let scored = tokio::task::spawn_blocking(move || {
        let scoring = || match shard {
            Shard::Goals(goals) => goals
                .par_iter()
                .map(|g| (!stop.is_cancelled()).then(|| score(&engine, g, as_of, paths, precision)))
                .collect::<Option<Vec<_>>>()
                .map(|scores| {
                    let steps = scores.iter().map(|s| s.path_steps).sum();
                    (Scores::Goals(scores), steps)
                }),
            Shard::Plans(plans) => {
                let engine = Engine::new(Device::Cpu(engine)).watched(scoring_watch.clone());
                plans
                    .par_iter()
                    .map(|p| {
                        if stop.is_cancelled() {
                            return None;
                        }
                        score_plan(&engine, p, as_of, plan_paths)
                    })
                    .collect::<Option<Vec<_>>>()
                    .map(|scores| (Scores::Plans(scores), scoring_watch.done()))
            }
        };
        match pool {
            Some(pool) => pool.install(scoring),
            None => scoring(),
        }
    })
    .await
    .map_err(|e| RescoreError::Engine(e.to_string()));
    forward.abort();
    scored
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
        for s in [0.0, -0.01, 0.6, f64::NAN] {
            bad(
                RunSpec {
                    precision: Some(s),
                    ..RunSpec::default()
                },
                "precision",
            );
        }
        bad(
            RunSpec {
                precision: Some(0.005),
                paths: 100_000,
                ..RunSpec::default()
            },
            "paths",
        );
    }

    /// A goal scored to a precision meets it, under the tools' sampler, from more paths than
    /// the first round's (its path-steps count every round); scored at fixed paths it reports
    /// the binomial standard error of those paths.
    #[test]
    fn a_goal_scored_to_a_precision_meets_it() {
        let goal = StoredGoal {
            id: 7,
            user_id: "u".into(),
            name: "house".into(),
            category: "home".into(),
            priority: "important".into(),
            target_amount: 150_000.0,
            target_date: "2036-01-01".into(),
            current_savings: 30_000.0,
            monthly_contribution: 600.0,
            contribution_growth: 0.02,
            risk_tolerance: "moderate".into(),
            success_threshold: 0.8,
            expected_return: 0.06,
            volatility: 0.14,
            inflation: 0.025,
        };
        let as_of = Date::from_calendar_date(2026, time::Month::January, 1).unwrap();
        let months = goal.months_left(as_of).unwrap() as u64;
        let cpu = CpuBackend::new();
        let fixed = score(&cpu, &goal, as_of, 2_000, None);
        let p = fixed.success_probability.unwrap();
        let binomial = (p * (1.0 - p) / 2_000.0).sqrt();
        assert!(
            (fixed.standard_error.unwrap() - binomial).abs() <= 1e-12,
            "{fixed:?}"
        );
        assert_eq!(fixed.path_steps, 2_000 * months);
        let precise = score(&cpu, &goal, as_of, 1_024, Some(0.003));
        let se = precise.standard_error.unwrap();
        assert!(se <= 0.003, "{precise:?}");
        assert!(precise.path_steps > 1_024 * months, "{precise:?}");
        let (a, b) = (
            fixed.success_probability.unwrap(),
            precise.success_probability.unwrap(),
        );
        assert!(
            (a - b).abs() <= 4.0 * (binomial.powi(2) + se.powi(2)).sqrt(),
            "{a} vs {b}"
        );
    }
}
