//! `sextant serve`: the engine's operations over HTTP (axum).
//!
//! One path for every request: body → [`crate::input`] (a malformed field is a 400 naming it)
//! → the engine's validation (a bound broken is a 422 naming it) → the batcher or a bounded
//! pool of blocking workers → JSON. Goal simulations from concurrent callers are coalesced
//! into engine batches ([`batcher`]); asynchronous ones are jobs followed by SSE ([`jobs`]).
//! Limits: a bounded queue (429 with Retry-After), a deadline per request (504), a body size
//! limit, a cap on paths × months. `/v1` needs an API key when keys are configured, compared in
//! constant time; `/healthz`, `/readyz` and `/metrics` stay open.

mod auth;
mod batcher;
mod error;
mod grpc;
mod jobs;
mod openapi;
mod tools;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, Stream, StreamExt};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sextant_engine::backend::Watch;
use sextant_engine::budget;
use sextant_engine::frontier::FrontierRequest;
use sextant_engine::risk::RiskRequest;
use sextant_engine::scenarios::{self, SensitivityRequest, WhatIfRequest};
use sextant_engine::sweep::SweepRequest;
use sextant_engine::{solve, validate, CpuBackend, Device, Engine, GoalRequest, PreparedGoal};
use tokio::sync::Semaphore;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::cache::{self, Cache, CacheArgs};
use crate::rescore::{self, RunSpec, WorkerConfig};
use crate::store::{DatabaseArgs, Store};
use auth::{Auth, AuthArgs};
pub use batcher::BatchConfig;
use batcher::Batcher;
pub use error::ApiError;
use jobs::Jobs;
pub use tools::money;

/// How the service runs; every field has a flag and an environment variable (`sextant serve
/// --help`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// HTTP address to listen on.
    #[arg(long, env = "SEXTANT_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// gRPC address to listen on.
    #[arg(long, env = "SEXTANT_GRPC", default_value = "127.0.0.1:50051")]
    pub grpc: SocketAddr,
    /// Most goals in one engine batch.
    #[arg(long, env = "SEXTANT_MAX_BATCH", default_value_t = 64)]
    pub max_batch: usize,
    /// Longest a goal waits for others to join its batch, in milliseconds.
    #[arg(long, env = "SEXTANT_MAX_DELAY_MS", default_value_t = 2)]
    pub max_delay_ms: u64,
    /// Most requests waiting; beyond it 429.
    #[arg(long, env = "SEXTANT_QUEUE", default_value_t = 1024)]
    pub queue: usize,
    /// Deadline of one request, in milliseconds (504 when passed).
    #[arg(long, env = "SEXTANT_DEADLINE_MS", default_value_t = 60_000)]
    pub deadline_ms: u64,
    /// Largest request body, in bytes.
    #[arg(long, env = "SEXTANT_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Most paths × months one request may ask for.
    #[arg(long, env = "SEXTANT_MAX_PATH_STEPS", default_value_t = 2_000_000_000)]
    pub max_path_steps: u64,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Allow listening beyond loopback without any API key.
    #[arg(long)]
    pub insecure: bool,
    /// Log lines as `text` or `json` (on stderr; filter with RUST_LOG, default info).
    #[arg(long, env = "SEXTANT_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Seconds to finish in-flight work after SIGTERM/SIGINT.
    #[arg(long, env = "SEXTANT_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Log to stderr as `format`, filtered by RUST_LOG or else at `default_level`.
pub fn init_logs(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour codes only for a person at a terminal, never into a file or a log collector.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[derive(Clone)]
struct AppState {
    engine: Arc<Engine>,
    batcher: Batcher,
    /// Workers for the operations that are not batched (solvers, scenarios, frontier…): one
    /// per core.
    workers: Arc<Semaphore>,
    /// Places for operations waiting for a worker (`--queue`); none left is a 429.
    waiting: Arc<Semaphore>,
    jobs: Jobs,
    store: Store,
    cache: Cache,
    deadline: Duration,
    max_path_steps: u64,
    auth: Auth,
}

impl AppState {
    /// The engine's CPU backend (its kernel as configured), or a default one when the engine
    /// computes on a GPU: re-scoring runs on the CPU.
    fn cpu_backend(&self) -> CpuBackend {
        match self.engine.device() {
            Device::Cpu(cpu) => cpu.clone(),
            _ => CpuBackend::new(),
        }
    }
}

fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("the Prometheus recorder installs once")
    })
}

/// Bind and serve until SIGTERM or SIGINT, then finish in-flight work within the grace period.
pub async fn serve(engine: Engine, args: ServeArgs) -> anyhow::Result<()> {
    for address in [args.http, args.grpc] {
        let open = args.auth.api_keys.is_empty()
            && args.auth.jwt_secret.is_none()
            && args.auth.jwt_public_key.is_none();
        if open && !address.ip().is_loopback() && !args.insecure {
            anyhow::bail!(
                "refusing to listen on {address} without authentication: give --api-key (or \
                 SEXTANT_API_KEYS), or --insecure"
            );
        }
    }
    init_logs(args.log_format, "info");
    let http = tokio::net::TcpListener::bind(args.http).await?;
    let grpc = tokio::net::TcpListener::bind(args.grpc).await?;
    let state = state(engine, &args).await?;
    resume_jobs(&state).await?;
    let app = router(state.clone(), &args);
    tracing::info!(http = %http.local_addr()?, grpc = %grpc.local_addr()?, "listening");
    // Both lines in one write, whose failure is ignored: a caller that reads the first line
    // and closes the pipe (as the tests do) must not stop the server.
    let (http_address, grpc_address) = (http.local_addr()?, grpc.local_addr()?);
    let key = if args.auth.api_keys.is_empty() {
        ""
    } else {
        " -H 'authorization: Bearer <key>'"
    };
    let banner = format!(
        "sextant listening on http://{http_address} grpc://{grpc_address}\n\
         try: curl -s http://{http_address}/v1/simulations -H 'content-type: application/json' \
         -d @examples/accumulation-30y.json{key}   (docs: http://{http_address}/docs)\n"
    );
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(banner.as_bytes())
            .and_then(|()| stdout.flush());
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let http_server = axum::serve(http, app).with_graceful_shutdown(wait(stopped.clone()));
    let grpc_server = grpc::serve(state, grpc, wait(stopped));
    let grace = Duration::from_secs(args.shutdown_grace_s);
    let servers = async {
        tokio::try_join!(
            async { http_server.await.map_err(anyhow::Error::from) },
            grpc_server
        )
    };
    tokio::pin!(servers);
    tokio::select! {
        result = &mut servers => { result?; }
        _ = shutdown_signal() => {
            let _ = stop.send(true);
            if tokio::time::timeout(grace, &mut servers).await.is_err() {
                eprintln!("in-flight work did not finish within {grace:?}; stopping");
            }
        }
    }
    Ok(())
}

/// The HTTP side alone, in this process, on an ephemeral port (for `sextant bench`).
pub async fn start_for_bench(
    engine: Engine,
    max_batch: usize,
    max_delay_ms: u64,
    database: DatabaseArgs,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let args = ServeArgs {
        http: "127.0.0.1:0".parse()?,
        grpc: "127.0.0.1:0".parse()?,
        max_batch,
        max_delay_ms,
        queue: 4096,
        deadline_ms: 600_000,
        max_body_bytes: 1 << 20,
        max_path_steps: 2_000_000_000,
        auth: AuthArgs::default(),
        insecure: false,
        log_format: LogFormat::Text,
        shutdown_grace_s: 1,
        database,
        // Every request computed: the benchmark measures the engine behind the service.
        cache: CacheArgs {
            cache_entries: 0,
            ..CacheArgs::default()
        },
    };
    let listener = tokio::net::TcpListener::bind(args.http).await?;
    let address = listener.local_addr()?;
    let app = router(state(engine, &args).await?, &args);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, server))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}

async fn state(engine: Engine, args: &ServeArgs) -> anyhow::Result<AppState> {
    let engine = Arc::new(engine);
    let store = Store::open(&args.database).await?;
    let cache = Cache::open(&args.cache).await?;
    tracing::info!(
        database = store.shown(),
        cache = cache.name(),
        "storage ready"
    );
    Ok(AppState {
        batcher: Batcher::start(
            engine.clone(),
            BatchConfig {
                max_batch: args.max_batch.max(1),
                max_delay: Duration::from_millis(args.max_delay_ms),
                queue: args.queue.max(1),
            },
        ),
        engine,
        // As many operations compute at once as there are cores (each already spreads over
        // them through rayon); up to `--queue` more wait for a turn, then it is a 429.
        workers: Arc::new(Semaphore::new(rayon::current_num_threads().max(1))),
        waiting: Arc::new(Semaphore::new(args.queue.max(1))),
        jobs: Jobs::new(store.clone()),
        store,
        cache,
        deadline: Duration::from_millis(args.deadline_ms.max(1)),
        max_path_steps: args.max_path_steps,
        auth: Auth::new(&args.auth)?,
    })
}

fn router(state: AppState, args: &ServeArgs) -> Router {
    prometheus();
    let v1 = Router::new()
        .route("/v1/simulations", post(create_simulation))
        .route("/v1/simulations/{id}", get(get_simulation))
        .route("/v1/simulations/{id}/events", get(simulation_events))
        .route("/v1/simulations/{id}/fan-chart.svg", get(fan_chart))
        .route("/v1/simulations/{id}/replay", post(replay))
        .route("/v1/rescore-runs", post(create_rescore_run))
        .route("/v1/rescore-runs/{id}", get(get_rescore_run))
        .route(
            "/v1/solve/required-contribution",
            post(required_contribution),
        )
        .route(
            "/v1/solve/sustainable-withdrawal",
            post(sustainable_withdrawal),
        )
        .route("/v1/what-if", post(what_if))
        .route("/v1/sensitivity", post(sensitivity))
        .route("/v1/frontier", post(frontier))
        .route("/v1/frontier/sweep", post(sweep))
        .route("/v1/risk", post(risk))
        .route("/v1/tools", get(list_tools))
        .route("/v1/tools/{name}", post(run_tool))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .merge(v1)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/metrics", get(|| async { prometheus().render() }))
        .route("/openapi.json", get(openapi_json))
        .route(
            "/docs",
            get(|| async { axum::response::Html(openapi::DOCS_HTML) }),
        )
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(args.max_body_bytes))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %id
                )
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// `Authorization: Bearer KEY` or `x-api-key: KEY`, compared in constant time with every key.
async fn require_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer "));
    match state.auth.check(bearer, header("x-api-key")) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// `GET /openapi.json`: the OpenAPI 3.1 document, generated from the code.
async fn openapi_json() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(openapi::document).clone())
}

/// Requests by route and status, for `/metrics`.
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    metrics::counter!(
        "sextant_requests_total",
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

/// The body as `T`, with a malformed field named (`goal.horizon_months: invalid type…`).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::Malformed {
        field: "request".into(),
        message: format!("the body is not UTF-8: {e}"),
    })?;
    Ok(crate::input::parse(text)?)
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Run `work` on a blocking worker within the deadline; a full pool is a 429.
async fn blocking<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
{
    let place = state
        .waiting
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded {
            retry_after_seconds: 1,
        })?;
    let started = tokio::time::Instant::now();
    let permit = tokio::time::timeout(state.deadline, state.workers.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::Timeout)?
        .map_err(|_| ApiError::Internal("the worker pool closed".into()))?;
    drop(place);
    let left = state.deadline.saturating_sub(started.elapsed());
    // The work stops between blocks of paths once nobody waits for it: past the deadline, or
    // when the caller disconnects (axum drops this future, and the guard with it).
    let watch = Arc::new(Watch::default());
    let _cancel_on_drop = CancelOnDrop(watch.clone());
    let engine = state.engine.watched(watch);
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(&engine)
    });
    match tokio::time::timeout(left, task).await {
        Err(_) => Err(ApiError::Timeout),
        Ok(Err(panic)) => Err(ApiError::Internal(format!("the engine failed: {panic}"))),
        Ok(Ok(result)) => result,
    }
}

/// Cancels a request's work when the request's future ends, answered or not.
struct CancelOnDrop(Arc<Watch>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Refuse a request whose counted work is above the service's budget, naming the field.
fn within_budget(state: &AppState, work: budget::Work) -> Result<(), ApiError> {
    Ok(work.within(state.max_path_steps)?)
}

/// `POST /v1/simulations`: the result (200), or with `"options": {"async": true}` a job (202).
async fn create_simulation(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (request, asynchronous) = simulation_request(&body)?;
    if !asynchronous {
        let key = cache::key(&format!("{:?}", Operation::Simulate), &request);
        let answer = cached(&state, &key, simulate_uncached(&state, &request)).await?;
        return Ok(Json(answer).into_response());
    }
    let id = start_job(&state, &request).await?;
    let links = serde_json::json!({
        "id": id,
        "status": "queued",
        "self": format!("/v1/simulations/{id}"),
        "events": format!("/v1/simulations/{id}/events"),
    });
    Ok((StatusCode::ACCEPTED, Json(links)).into_response())
}

/// A simulation body, and whether `options.async` asked for a job (the flag is the service's,
/// not the model's, so it is taken out before the request is read).
fn simulation_request(body: &[u8]) -> Result<(GoalRequest, bool), ApiError> {
    let mut value: Value = parse(body)?;
    let asynchronous = match value.pointer_mut("/options").and_then(Value::as_object_mut) {
        Some(options) => match options.remove("async") {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(other) => {
                return Err(ApiError::Malformed {
                    field: "options.async".into(),
                    message: format!("must be true or false, got {other}"),
                })
            }
        },
        None => false,
    };
    Ok((crate::input::parse_value(value)?, asynchronous))
}

/// A job for a simulation body whatever its `options.async` (the gRPC stream's path).
async fn create_job(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let (request, _) = simulation_request(body)?;
    start_job(state, &request).await
}

/// Store a simulation as a job and queue it; its events and result arrive through [`Jobs`].
async fn start_job(state: &AppState, request: &GoalRequest) -> Result<String, ApiError> {
    let goal = checked_goal(state, request)?;
    let canonical =
        serde_json::to_string(request).map_err(|e| ApiError::Internal(e.to_string()))?;
    let hash = cache::key("simulate", request);
    let id = state
        .jobs
        .create(&canonical, &hash, goal.paths, goal.seed)
        .await?;
    run_job(state, &id, goal)?;
    Ok(id)
}

/// Queue job `id`'s goal and record what becomes of it.
fn run_job(state: &AppState, id: &str, goal: PreparedGoal) -> Result<(), ApiError> {
    let (progress, mut fractions) = tokio::sync::mpsc::unbounded_channel();
    let pending = state.batcher.submit_with_progress(goal, Some(progress))?;
    let jobs = state.jobs.clone();
    let job = id.to_string();
    let deadline = state.deadline;
    let backend = state.engine.backend().info().name;
    tokio::spawn(async move {
        jobs.progress(&job, backend, 0.0).await;
        // Fractions done while the batch runs, each a `progress` event (and the stored
        // progress); the channel closes when the result is sent.
        let forward = {
            let (jobs, job) = (jobs.clone(), job.clone());
            tokio::spawn(async move {
                let mut last = 0.0;
                while let Some(fraction) = fractions.recv().await {
                    if fraction > last && fraction < 1.0 {
                        last = fraction;
                        jobs.progress(&job, backend, fraction).await;
                    }
                }
            })
        };
        let started = std::time::Instant::now();
        let outcome = match tokio::time::timeout(deadline, pending).await {
            Err(_) => Err(ApiError::Timeout),
            Ok(Err(_)) => Err(ApiError::Internal("the batcher dropped the job".into())),
            Ok(Ok(result)) => result,
        };
        if outcome.is_ok() {
            let _ = forward.await;
        } else {
            forward.abort();
            let _ = forward.await;
        }
        let outcome = match outcome {
            Ok(result) => to_json(&result).map_err(|e| error_value(&e)),
            Err(e) => Err(error_value(&e)),
        };
        let compute_ms = started.elapsed().as_secs_f64() * 1e3;
        jobs.finish(&job, outcome, compute_ms).await;
    });
    Ok(())
}

/// Run again the jobs a previous run of the service left queued or running (same id, same
/// request, same seed: the same result).
async fn resume_jobs(state: &AppState) -> anyhow::Result<()> {
    for record in state.jobs.unfinished().await? {
        let resumed = serde_json::from_str::<GoalRequest>(&record.request)
            .map_err(|e| e.to_string())
            .and_then(|r| checked_goal(state, &r).map_err(|e| e.message()));
        match resumed {
            Ok(goal) => {
                state.jobs.watch(&record.id);
                if let Err(e) = run_job(state, &record.id, goal) {
                    state
                        .jobs
                        .finish(&record.id, Err(error_value(&e)), 0.0)
                        .await;
                }
                tracing::info!(job = %record.id, "resumed an unfinished simulation");
            }
            Err(message) => {
                let error = serde_json::json!({"field": "request", "message": message});
                state.jobs.finish(&record.id, Err(error), 0.0).await;
            }
        }
    }
    Ok(())
}

fn error_value(e: &ApiError) -> Value {
    serde_json::json!({"field": e.field(), "message": e.message()})
}

async fn get_simulation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(job_view(&state, &id).await?).into_response())
}

async fn job_view(state: &AppState, id: &str) -> Result<jobs::JobView, ApiError> {
    state
        .jobs
        .view(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("simulation {id}")))
}

/// `POST /v1/simulations/{id}/replay`: run a stored simulation's request again with its stored
/// seed, bypassing the cache, and say whether the result is identical.
async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = state
        .jobs
        .record(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("simulation {id}")))?;
    let stored: Value = record
        .results
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "a result for simulation {id} (status {})",
                record.status
            ))
        })?;
    let request: GoalRequest = serde_json::from_str(&record.request)
        .map_err(|e| ApiError::Internal(format!("the stored request is unreadable: {e}")))?;
    let replayed = simulate_uncached(&state, &request).await?;
    Ok(Json(serde_json::json!({
        "id": id,
        "identical": replayed == stored,
        "seed": record.seed,
        "engine_version": {"stored": record.engine_version, "now": sextant_engine::ENGINE_VERSION},
        "backend": {"stored": record.backend, "now": state.engine.backend().info().name},
        "result": replayed,
    }))
    .into_response())
}

/// `POST /v1/rescore-runs`: create (or join, by `run_key`) a re-scoring run and work on it in
/// this process; 202 with its id.
async fn create_rescore_run(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: RunSpec = parse(&body)?;
    let run = rescore::ensure_run(&state.store, &spec).await?;
    let store = state.store.clone();
    let worker = WorkerConfig {
        name: format!("serve-{}-{}", crate::hostname(), std::process::id()),
        lease: Duration::from_secs(120),
        progress: false,
        cpu: state.cpu_backend(),
    };
    let working = run.clone();
    tokio::spawn(async move {
        match rescore::work(&store, &working, &worker).await {
            Ok(report) => tracing::info!(run = working.id, goals = report.goals, "re-scoring done"),
            Err(e) => tracing::error!(run = working.id, error = %e, "re-scoring stopped"),
        }
    });
    let links = serde_json::json!({
        "id": run.id,
        "run_key": run.run_key,
        "total_goals": run.total_goals,
        "self": format!("/v1/rescore-runs/{}", run.id),
    });
    Ok((StatusCode::ACCEPTED, Json(links)).into_response())
}

/// `GET /v1/rescore-runs/{id}`: a run's status, progress and goals by funding status.
async fn get_rescore_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("re-scoring run {id}"));
    let run_id: i64 = id.parse().map_err(|_| not_found())?;
    let status = rescore::status(&state.store, run_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(status).into_response())
}

/// `GET /v1/simulations/{id}/fan-chart.svg`: the fan chart of a finished simulation.
async fn fan_chart(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = job_view(&state, &id).await?;
    let result = view.result.ok_or_else(|| {
        ApiError::NotFound(format!(
            "a result for simulation {id} (status {})",
            view.status
        ))
    })?;
    let svg = crate::charts::fan_chart(&result).map_err(ApiError::Internal)?;
    Ok(([(axum::http::header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// `GET /v1/simulations/{id}/events`: the job's events so far, then the rest as they come,
/// ending with `done`.
async fn simulation_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (history, live) = state
        .jobs
        .follow(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("simulation {id}")))?;
    let events = job_events(history, live)
        .map(|e| Ok(Event::default().event(e.event).data(e.data.to_string())));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// A job's events so far, then the rest as they come, ending after `done`.
fn job_events(
    history: Vec<jobs::JobEvent>,
    live: Option<tokio::sync::broadcast::Receiver<jobs::JobEvent>>,
) -> impl Stream<Item = jobs::JobEvent> + Send + 'static {
    let finished = live.is_none() || history.iter().any(|e| e.event == "done");
    let rest = stream::unfold((live, finished), |(mut live, done)| async move {
        if done {
            return None;
        }
        let receiver = live.as_mut()?;
        loop {
            match receiver.recv().await {
                Ok(e) => {
                    let last = e.event == "done";
                    return Some((e, (live, last)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    stream::iter(history).chain(rest)
}

/// The operations the service offers, each from a JSON body to a JSON result: the one
/// implementation behind the routes and the agent tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Simulate,
    RequiredContribution,
    SustainableWithdrawal,
    WhatIf,
    Sensitivity,
    Frontier,
    Sweep,
    Risk,
}

/// Run `operation` on a request body (synchronously for simulations), answering from the
/// cache when the same request was answered before.
async fn call(state: &AppState, operation: Operation, body: &[u8]) -> Result<Value, ApiError> {
    match operation {
        Operation::Simulate => {
            let r: GoalRequest = parse(body)?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(state, &key, simulate_uncached(state, &r)).await
        }
        Operation::RequiredContribution => {
            let r: GoalRequest = parse(body)?;
            within_budget(state, budget::solver(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, move |e| {
                    to_json(&solve::required_contribution(e, &r)?)
                }),
            )
            .await
        }
        Operation::SustainableWithdrawal => {
            let r: GoalRequest = parse(body)?;
            within_budget(state, budget::solver(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, move |e| {
                    to_json(&solve::sustainable_withdrawal(e, &r)?)
                }),
            )
            .await
        }
        Operation::WhatIf => {
            let r: WhatIfRequest = parse(body)?;
            within_budget(state, budget::what_if(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, move |e| to_json(&scenarios::what_if(e, &r)?)),
            )
            .await
        }
        Operation::Sensitivity => {
            let r: SensitivityRequest = parse(body)?;
            within_budget(state, budget::sensitivity(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, move |e| to_json(&scenarios::sensitivity(e, &r)?)),
            )
            .await
        }
        Operation::Frontier => {
            let r: FrontierRequest = parse(body)?;
            within_budget(state, budget::frontier(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(state, &key, blocking(state, move |_| to_json(&r.run()?))).await
        }
        Operation::Sweep => {
            let r: SweepRequest = parse(body)?;
            within_budget(state, budget::sweep(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(state, &key, blocking(state, move |e| to_json(&r.run(e)?))).await
        }
        Operation::Risk => {
            let r: RiskRequest = parse(body)?;
            within_budget(state, budget::risk(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(state, &key, blocking(state, move |_| to_json(&r.run()?))).await
        }
    }
}

/// The cached answer under `key`, or `compute`'s, which is then cached (errors are not).
async fn cached(
    state: &AppState,
    key: &str,
    compute: impl std::future::Future<Output = Result<Value, ApiError>>,
) -> Result<Value, ApiError> {
    if let Some(answer) = state.cache.get(key).await {
        return Ok(answer);
    }
    let answer = compute.await?;
    state.cache.put(key, &answer).await;
    Ok(answer)
}

/// A goal simulation through the batcher, within the deadline (never from the cache).
async fn simulate_uncached(state: &AppState, request: &GoalRequest) -> Result<Value, ApiError> {
    let goal = checked_goal(state, request)?;
    let pending = state.batcher.submit(goal)?;
    match tokio::time::timeout(state.deadline, pending).await {
        Err(_) => Err(ApiError::Timeout),
        Ok(Err(_)) => Err(ApiError::Internal("the batcher dropped the request".into())),
        Ok(Ok(result)) => to_json(&result?),
    }
}

/// Validate a goal and apply the service's cap on paths × months.
fn checked_goal(state: &AppState, request: &GoalRequest) -> Result<PreparedGoal, ApiError> {
    let goal = validate::prepare(request)?;
    within_budget(state, budget::goal(request))?;
    Ok(goal)
}

macro_rules! route {
    ($name:ident, $operation:expr) => {
        async fn $name(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
            Ok(Json(call(&state, $operation, &body).await?).into_response())
        }
    };
}

route!(required_contribution, Operation::RequiredContribution);
route!(sustainable_withdrawal, Operation::SustainableWithdrawal);
route!(what_if, Operation::WhatIf);
route!(sensitivity, Operation::Sensitivity);
route!(frontier, Operation::Frontier);
route!(sweep, Operation::Sweep);
route!(risk, Operation::Risk);

/// `GET /v1/tools`: every operation as a tool an LLM agent can call (`?format=openai` for the
/// function-calling shape).
async fn list_tools(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let openai = query.get("format").is_some_and(|f| f == "openai");
    Json(tools::catalogue(openai)).into_response()
}

/// `POST /v1/tools/{name}`: run one tool; the full result and a plain-language summary.
async fn run_tool(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    Ok(Json(tool_result(&state, &name, &body).await?).into_response())
}

/// `{"tool", "summary", "result"}` of one tool run.
async fn tool_result(state: &AppState, name: &str, body: &[u8]) -> Result<Value, ApiError> {
    let tool = tools::find(name).ok_or_else(|| ApiError::NotFound(format!("tool {name}")))?;
    let input: Value = parse(body)?;
    let result = call(state, tool.operation, body).await?;
    let summary = tools::summary(tool.operation, &input, &result);
    Ok(serde_json::json!({"tool": name, "summary": summary, "result": result}))
}
