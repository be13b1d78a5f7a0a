//! The Sextant service: the engine's operations over HTTP (axum), typed gRPC (tonic) and the
//! Model Context Protocol (rmcp), with auth, limits, batching, jobs, the cache, the charts and
//! the nightly re-score. The `sextant` binary (`cli/`) parses flags and calls [`serve`],
//! [`serve_mcp`] or the modules below; storage is the `sextant-store` crate.
//!
//! One path for every request: body → [`crate::input`] (a malformed field is a 400 naming it)
//! → the engine's validation (a bound broken is a 422 naming it) → its work counted against
//! the budget → the batcher or a lane of workers ([`lanes`]: small work never waits behind
//! large) → JSON. Goal simulations from concurrent callers are coalesced into engine batches
//! ([`batcher`]); asynchronous ones are jobs followed by SSE ([`jobs`]), leased to one replica
//! through the database and taken over when it dies. Limits: a bounded queue (429 with
//! Retry-After), a deadline per request (504, and the work stops), a body size limit, a cap on
//! the work of one request. `/v1` needs an API key when keys are configured, compared in
//! constant time; `/healthz`, `/readyz` and `/metrics` stay open.

mod auth;
mod batcher;
pub mod cache;
pub mod charts;
mod engine_args;
mod error;
mod grpc;
mod histories;
pub mod input;
mod jobs;
mod json_key;
mod lanes;
mod layers;
mod mcp;
mod openapi;
pub mod rescore;
mod stored;
mod tools;
mod typed;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::future::BoxFuture;
use futures::stream::StreamExt;
use futures::FutureExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sextant_engine::backend::Watch;
use sextant_engine::budget::{self, PlanOperation};
use sextant_engine::frontier::FrontierRequest;
use sextant_engine::plan::{self, PlanRequest};
use sextant_engine::risk::RiskRequest;
use sextant_engine::scenarios::{self, SensitivityRequest, WhatIfRequest};
use sextant_engine::sweep::SweepRequest;
use sextant_engine::{
    solve, validate, CpuBackend, Device, Engine, GoalRequest, PreparedGoal, SimulationResult,
};
use tokio::sync::Semaphore;

use crate::cache::{Cache, CacheArgs};
use auth::{Auth, AuthArgs, Caller};
pub use batcher::BatchConfig;
use batcher::Batcher;
pub use engine_args::{nvrtc_search_from_environment, EngineArgs};
pub use error::ApiError;
pub use grpc::proto;
use jobs::{JobKind, Jobs};
use lanes::Lanes;
use sextant_store::{DatabaseArgs, Store};
pub use tools::{money, TOOL_PRECISION, TOOL_SAMPLER};
pub use typed::{dynamic_message as typed_dynamic_message, message as typed_message};

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
    /// Allow listening beyond loopback without authentication or TLS.
    #[arg(long)]
    pub insecure: bool,
    /// A PEM certificate chain: serve HTTPS and gRPC over TLS (rustls), with `--tls-key`.
    #[arg(long, env = "SEXTANT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "SEXTANT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// TLS is terminated in front of this server (an ingress, a load balancer): a
    /// non-loopback address is then allowed without `--tls-cert`.
    #[arg(long, env = "SEXTANT_TLS_OFFLOADED")]
    pub tls_offloaded: bool,
    /// Log lines as `text` or `json` (on stderr; filter with RUST_LOG, default info).
    #[arg(long, env = "SEXTANT_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Seconds to finish in-flight work after SIGTERM/SIGINT.
    #[arg(long, env = "SEXTANT_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,
    /// Seconds after SIGTERM/SIGINT during which requests are still served but `/readyz`
    /// answers 503, so that load balancers stop sending before the listener closes.
    #[arg(long, env = "SEXTANT_DRAIN_S", default_value_t = 0)]
    pub drain_s: u64,
    /// Largest work (path-steps, as the budget counts them) that runs in the interactive
    /// lane; larger work runs in the bulk lane at a lower priority, never ahead of small
    /// requests.
    #[arg(
        long,
        env = "SEXTANT_INTERACTIVE_MAX_PATH_STEPS",
        default_value_t = 50_000_000
    )]
    pub interactive_max_path_steps: u64,
    /// This replica's name in the leases of jobs and re-scoring shards: give each replica its
    /// own (a Kubernetes pod name does); default the host name. A replica restarted under the
    /// same name takes its unfinished jobs back at once.
    #[arg(long, env = "SEXTANT_REPLICA")]
    pub replica: Option<String>,
    /// Seconds an asynchronous job's lease lasts without renewal: how soon after a replica
    /// dies another takes its jobs over.
    #[arg(long, env = "SEXTANT_JOB_LEASE_S", default_value_t = 30)]
    pub job_lease_s: u64,
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
    /// Where operations compute: small work in the interactive lane, large in the bulk lane.
    lanes: Lanes,
    /// Places for operations waiting for a worker (`--queue`); none left is a 429.
    waiting: Arc<Semaphore>,
    jobs: Jobs,
    store: Store,
    cache: Cache,
    deadline: Duration,
    max_path_steps: u64,
    auth: Auth,
    /// Set at SIGTERM/SIGINT: `/readyz` answers 503 from then on.
    draining: Arc<AtomicBool>,
    /// Re-scoring runs this replica works on: a second request for one joins the first.
    rescoring: Arc<Mutex<HashSet<i64>>>,
    /// Stops this replica's re-scoring workers when it drains; their shards go back at once.
    rescore_stop: Arc<Watch>,
    /// This replica's name in leases.
    replica: String,
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

/// This machine's name (`HOSTNAME`, else /etc/hostname, else `localhost`).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `sextant mcp`: the agent tools over MCP on stdin/stdout, with the service's settings
/// (database, limits, cache); logs go to stderr.
pub async fn serve_mcp(engine: Engine, args: ServeArgs) -> anyhow::Result<()> {
    init_logs(args.log_format, "warn");
    let state = state(engine, &args).await?;
    mcp::serve_stdio(state).await
}

/// Bind and serve until SIGTERM or SIGINT, then finish in-flight work within the grace period.
pub async fn serve(engine: Engine, args: ServeArgs) -> anyhow::Result<()> {
    for address in [args.http, args.grpc] {
        if address.ip().is_loopback() || args.insecure {
            continue;
        }
        let open = args.auth.api_keys.is_empty()
            && args.auth.jwt_secret.is_none()
            && args.auth.jwt_public_key.is_none();
        if open {
            anyhow::bail!(
                "refusing to listen on {address} without authentication: give --api-key (or \
                 SEXTANT_API_KEYS), or --insecure"
            );
        }
        if args.tls_cert.is_none() && !args.tls_offloaded {
            anyhow::bail!(
                "refusing to listen on {address} without TLS: give --tls-cert and --tls-key, \
                 or --tls-offloaded when an ingress terminates TLS, or --insecure"
            );
        }
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            // ring, the one provider compiled in; a second install is refused harmlessly.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let read = |path: &std::path::PathBuf, what: &str| {
                std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("reading the TLS {what} {}: {e}", path.display()))
            };
            Some((read(cert, "certificate")?, read(key, "key")?))
        }
        _ => None,
    };
    init_logs(args.log_format, "info");
    let http = tokio::net::TcpListener::bind(args.http).await?;
    let grpc = tokio::net::TcpListener::bind(args.grpc).await?;
    let state = state(engine, &args).await?;
    look_after_unattended_work(state.clone()).await;
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
    let (http_scheme, grpc_scheme) = if tls.is_some() {
        ("https", "grpcs")
    } else {
        ("http", "grpc")
    };
    let banner = format!(
        "sextant listening on {http_scheme}://{http_address} {grpc_scheme}://{grpc_address}\n\
         try: curl -s {http_scheme}://{http_address}/v1/simulations -H 'content-type: \
         application/json' -d @examples/accumulation-30y.json{key}   (docs: \
         {http_scheme}://{http_address}/docs)\n"
    );
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(banner.as_bytes())
            .and_then(|()| stdout.flush());
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Set at SIGTERM/SIGINT, before `stop`: gRPC health turns NOT_SERVING as /readyz turns 503.
    let (drain_started, draining) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let grace = Duration::from_secs(args.shutdown_grace_s);
    let drain = Duration::from_secs(args.drain_s);
    let http_server: BoxFuture<'static, anyhow::Result<()>> = match &tls {
        None => {
            let serving =
                axum::serve(without_nagle(http), app).with_graceful_shutdown(wait(stopped.clone()));
            async move { serving.await.map_err(anyhow::Error::from) }.boxed()
        }
        Some((cert, key)) => {
            let config =
                axum_server::tls_rustls::RustlsConfig::from_pem(cert.clone(), key.clone()).await?;
            let handle = axum_server::Handle::new();
            let stopping = handle.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move {
                wait(stopped).await;
                stopping.graceful_shutdown(Some(grace));
            });
            axum_server::from_tcp_rustls(http.into_std()?, config)
                .handle(handle)
                .serve(app.into_make_service())
                .map(|r| r.map_err(anyhow::Error::from))
                .boxed()
        }
    };
    let grpc_server = grpc::serve(
        state.clone(),
        grpc,
        tls.clone(),
        wait(draining),
        wait(stopped),
    );
    let servers = async { tokio::try_join!(http_server, grpc_server) };
    tokio::pin!(servers);
    tokio::select! {
        result = &mut servers => { result?; }
        _ = shutdown_signal() => {
            state.draining.store(true, Ordering::Relaxed);
            let _ = drain_started.send(true);
            state.rescore_stop.cancel();
            tracing::info!(drain_s = args.drain_s, "draining: /readyz answers 503");
            // Still serving (the servers are polled) while load balancers notice.
            if let Ok(result) = tokio::time::timeout(drain, &mut servers).await {
                result?;
                return Ok(());
            }
            let _ = stop.send(true);
            if tokio::time::timeout(grace, &mut servers).await.is_err() {
                eprintln!("in-flight work did not finish within {grace:?}; stopping");
            }
        }
    }
    // Jobs still running here would otherwise wait out their lease before another replica
    // takes them over.
    match state.jobs.release().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "gave unfinished jobs back to the other replicas"),
        Err(e) => tracing::warn!(error = %e, "unfinished jobs not given back; their leases expire"),
    }
    // A re-scoring worker told to stop gives its shard back itself, but it may still be
    // waiting for a bulk thread (a long job holds them): give back what it holds now, so that
    // another replica takes the shards at once (its late commit is then refused).
    let worker = stored::rescore_worker_name(&state);
    match state.store.release_worker_shards(&worker).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(shards = n, "gave leased re-scoring shards back"),
        Err(e) => {
            tracing::warn!(error = %e, "re-scoring shards not given back; their leases expire")
        }
    }
    Ok(())
}

/// The HTTP service as a tower service, without a socket: the state [`serve`] builds (the
/// database opened and migrated, the batcher, the lanes, the cache) behind the same router and
/// layers. For calling the service in-process (`tower::ServiceExt::oneshot`), as the router
/// tests do; unattended jobs and runs are not looked after.
pub async fn http_app(engine: Engine, args: &ServeArgs) -> anyhow::Result<Router> {
    let state = state(engine, args).await?;
    Ok(router(state, args))
}

impl ServeArgs {
    /// The settings `sextant serve FLAGS…` would have (its environment variables apply too).
    pub fn from_flags<I, T>(flags: I) -> Result<ServeArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let flags = std::iter::once(std::ffi::OsString::from("serve"))
            .chain(flags.into_iter().map(Into::into));
        <Serve as clap::Parser>::try_parse_from(flags).map(|serve| serve.args)
    }
}

/// HTTP and gRPC, in this process, on ephemeral ports (for `sextant bench`).
pub async fn start_for_bench(
    engine: Engine,
    max_batch: usize,
    max_delay_ms: u64,
    database: DatabaseArgs,
    interactive_max_path_steps: u64,
) -> anyhow::Result<(SocketAddr, SocketAddr, tokio::task::JoinHandle<()>)> {
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
        tls_cert: None,
        tls_key: None,
        tls_offloaded: false,
        log_format: LogFormat::Text,
        shutdown_grace_s: 1,
        drain_s: 0,
        interactive_max_path_steps,
        replica: Some(format!("bench-{}", std::process::id())),
        job_lease_s: 30,
        database,
        // Every request computed: the benchmark measures the engine behind the service.
        cache: CacheArgs {
            cache_entries: 0,
            ..CacheArgs::default()
        },
    };
    let listener = tokio::net::TcpListener::bind(args.http).await?;
    let grpc_listener = tokio::net::TcpListener::bind(args.grpc).await?;
    let addresses = (listener.local_addr()?, grpc_listener.local_addr()?);
    let state = state(engine, &args).await?;
    let app = router(state.clone(), &args);
    let server = tokio::spawn(async move {
        let http = async move {
            let _ = axum::serve(without_nagle(listener), app).await;
        };
        let grpc = async move {
            let never = std::future::pending::<()>;
            let _ = grpc::serve(state, grpc_listener, None, never(), never()).await;
        };
        tokio::join!(http, grpc);
    });
    Ok((addresses.0, addresses.1, server))
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
    let threads = rayon::current_num_threads().max(1);
    let lanes = Lanes::new(threads, args.interactive_max_path_steps)?;
    let replica = args.replica.clone().unwrap_or_else(hostname);
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
            lanes.interactive.pool.clone(),
        ),
        engine,
        lanes,
        // Up to `--queue` operations wait for a place in their lane, then it is a 429.
        waiting: Arc::new(Semaphore::new(args.queue.max(1))),
        jobs: Jobs::new(
            store.clone(),
            &replica,
            Duration::from_secs(args.job_lease_s.max(1)),
        ),
        store,
        cache,
        deadline: Duration::from_millis(args.deadline_ms.max(1)),
        max_path_steps: args.max_path_steps,
        auth: Auth::new(&args.auth)?,
        draining: Arc::default(),
        rescoring: Arc::default(),
        rescore_stop: Arc::default(),
        replica,
    })
}

fn router(state: AppState, args: &ServeArgs) -> Router {
    let max_body_bytes = args.max_body_bytes;
    prometheus();
    // The engine's operations from their one list (simulations have their own routes: jobs,
    // listing, events); the tools, OpenAPI and gRPC are checked against the same list.
    let operations = Operation::ALL
        .into_iter()
        .filter(|op| !matches!(op, Operation::Simulate | Operation::Plan))
        .fold(Router::new(), |router, operation| {
            router.route(
                operation.path(),
                post(
                    move |State(state): State<AppState>,
                          Extension(caller): Extension<Caller>,
                          body: Bytes| async move {
                        Ok::<_, ApiError>(
                            Json(call(&state, &caller, operation, Input::Body(&body)).await?)
                                .into_response(),
                        )
                    },
                ),
            )
        });
    let v1 = operations
        .route(
            "/v1/simulations",
            post(create_simulation).get(move |s, c, q| list_jobs(s, c, JobKind::Goal, q)),
        )
        .route(
            "/v1/plans",
            post(create_plan).get(move |s, c, q| list_jobs(s, c, JobKind::Plan, q)),
        )
        .merge(job_routes(JobKind::Goal))
        .merge(job_routes(JobKind::Plan))
        .route(
            "/v1/histories",
            post(histories::create).get(histories::list),
        )
        .route("/v1/histories/{name}", get(histories::get))
        .route("/v1/rescore-runs", post(create_rescore_run))
        .route("/v1/rescore-runs/{id}", get(get_rescore_run))
        .route("/v1/tools", get(list_tools))
        .route("/v1/tools/{name}", post(run_tool))
        .nest_service(
            "/mcp",
            mcp::http_service(state.clone(), args.http.ip().is_loopback(), max_body_bytes),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .merge(v1)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|| async { prometheus().render() }))
        .route("/openapi.json", get(openapi_json))
        .route(
            "/docs",
            get(|| async { axum::response::Html(openapi::DOCS_HTML) }),
        )
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .layer(middleware::map_response(
            move |response: Response| async move { json_body_limit(response, max_body_bytes) },
        ))
        .layer(middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(args.max_body_bytes))
        .layer(layers::request_id_and_trace())
        .with_state(state)
}

/// axum's own answer to a body over `--max-body-bytes` (plain text) in the service's error
/// shape.
fn json_body_limit(response: Response, limit: usize) -> Response {
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || json {
        return response;
    }
    ApiError::TooLarge { limit }.into_response()
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
        Ok(caller) => {
            let mut request = request;
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
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
/// Every request is a JSON object (serde would read a struct from an array as well).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::Malformed {
        field: "request".into(),
        message: format!("the body is not UTF-8: {e}"),
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::Malformed {
            field: "request".into(),
            message: "the body must be a JSON object".into(),
        });
    }
    Ok(crate::input::parse(text)?)
}

/// The HTTP listener with TCP_NODELAY on each connection, as the gRPC one has: a reply is
/// sent when it is written, not held back by Nagle's algorithm for the client's delayed ACK.
fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("TCP_NODELAY on an HTTP connection: {e}");
        }
    })
}

/// Where an operation's request comes from.
enum Input<'a> {
    /// An HTTP body: checked for UTF-8 and a JSON object, then read with errors naming the
    /// field.
    Body(&'a [u8]),
    /// A typed gRPC message's document (`typed::document`): already a JSON object, read
    /// without writing it out and parsing it again.
    Document(Value),
}

impl Input<'_> {
    /// The request, with the stored histories it names resolved from `caller`'s
    /// (docs/model.md §4.3).
    async fn read<T: DeserializeOwned>(
        self,
        state: &AppState,
        caller: &Caller,
    ) -> Result<T, ApiError> {
        let mut document = match self {
            // Most bodies name no history: they are read straight into the request.
            Input::Body(body) if !mentions_bootstrap(body) => return parse(body),
            Input::Body(body) => {
                let _: crate::input::NoRepeatedKeys = parse(body)?;
                parse::<Value>(body)?
            }
            Input::Document(document) => document,
        };
        histories::resolve(state, caller, &mut document).await?;
        Ok(crate::input::parse_value(document)?)
    }
}

/// Whether a body could name a stored history (a bootstrap market): the fast path's test.
fn mentions_bootstrap(body: &[u8]) -> bool {
    body.windows(b"bootstrap".len()).any(|w| w == b"bootstrap")
}

/// A path parameter (`{id}`, `{name}`); one that is not UTF-8 is a 400 naming it, in the
/// service's error shape rather than axum's text.
struct PathParam(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParam(value)),
            Err(e) => Err(ApiError::Malformed {
                field: "path".into(),
                message: e.body_text(),
            }),
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Internal(e.to_string()))
}

/// `/readyz`: 200 when this replica can answer, 503 while it drains or its database is
/// unreachable. (The backend is opened before the server listens, so a replica that answers
/// has one.)
async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = if state.draining.load(Ordering::Relaxed) {
        Some("draining".to_string())
    } else {
        state
            .store
            .ping(Duration::from_secs(1))
            .await
            .err()
            .map(|e| format!("the database is unreachable: {e}"))
    };
    let backend = state.engine.backend().info().name;
    match not_ready {
        None => Json(serde_json::json!({"status": "ready", "backend": backend})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "not ready", "reason": reason, "backend": backend})),
        )
            .into_response(),
    }
}

/// Run `work` (of `path_steps`, as the budget counts it) in its lane within the deadline; a
/// full queue is a 429.
async fn blocking<T, F>(state: &AppState, path_steps: u64, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
{
    watched_blocking(state, path_steps, Arc::new(Watch::default()), work).await
}

/// [`blocking`], its progress reported to `watch`.
async fn watched_blocking<T, F>(
    state: &AppState,
    path_steps: u64,
    watch: Arc<Watch>,
    work: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
{
    let lane = state.lanes.for_work(path_steps).clone();
    metrics::counter!("sextant_lane_operations_total", "lane" => lane.name).increment(1);
    let place = state
        .waiting
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded {
            retry_after_seconds: 1,
        })?;
    let started = tokio::time::Instant::now();
    let permit = tokio::time::timeout(state.deadline, lane.workers.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::Timeout)?
        .map_err(|_| ApiError::Internal("the worker pool closed".into()))?;
    drop(place);
    let left = state.deadline.saturating_sub(started.elapsed());
    // The work stops between blocks of paths once nobody waits for it: past the deadline, or
    // when the caller disconnects (axum drops this future, and the guard with it).
    let mut cancel_on_drop = CancelOnDrop {
        watch: watch.clone(),
        finished: false,
    };
    let engine = state.engine.watched(watch);
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        lane.pool.install(|| work(&engine))
    });
    let outcome = tokio::time::timeout(left, task).await;
    cancel_on_drop.finished = outcome.is_ok();
    match outcome {
        Err(_) => Err(ApiError::Timeout),
        Ok(Err(panic)) => Err(ApiError::Internal(format!("the engine failed: {panic}"))),
        Ok(Ok(result)) => result,
    }
}

/// Cancels a request's work when the request's future ends, answered or not (and counts the
/// work stopped before its end: a deadline passed, or the caller went away).
struct CancelOnDrop {
    watch: Arc<Watch>,
    finished: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.watch.cancel();
        if !self.finished {
            metrics::counter!("sextant_cancelled_operations_total").increment(1);
        }
    }
}

/// Refuse a request whose counted work is above the service's budget, naming the field.
fn within_budget(state: &AppState, work: budget::Work) -> Result<(), ApiError> {
    Ok(work.within(state.max_path_steps)?)
}

/// The work of a request within the budget, as path-steps (which choose its lane).
fn admit(state: &AppState, work: budget::Work) -> Result<u64, ApiError> {
    work.within(state.max_path_steps)?;
    Ok(work.units)
}

/// `POST /v1/simulations`: the result (200), or with `"options": {"async": true}` a job (202).
async fn create_simulation(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (request, asynchronous) = simulation_request(&state, &caller, &body).await?;
    if !asynchronous {
        // Validated and counted before the cache: a lower budget is not bypassed by an answer
        // cached (perhaps by another replica) under a higher one.
        checked_goal(&state, &request)?;
        let key = cache::key(&format!("{:?}", Operation::Simulate), &request);
        let answer = cached(&state, &key, simulate_uncached(&state, &request)).await?;
        return Ok(Json(answer).into_response());
    }
    let id = start_job(&state, &request, &caller).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(stored::job_links(JobKind::Goal, &id)),
    )
        .into_response())
}

/// `POST /v1/plans`: the plan's result (200), or with `"options": {"async": true}` a stored
/// job (202) followed at `/v1/plans/{id}` and its events.
async fn create_plan(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (mut document, asynchronous) = without_async_flag(&body)?;
    if !asynchronous {
        let answer = call(&state, &caller, Operation::Plan, Input::Document(document)).await?;
        return Ok(Json(answer).into_response());
    }
    // A bootstrap market may name a stored history (docs/model.md §4.3).
    histories::resolve(&state, &caller, &mut document).await?;
    let request: PlanRequest = crate::input::parse_value(document)?;
    let id = start_plan_job(&state, &request, &caller).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(stored::job_links(JobKind::Plan, &id)),
    )
        .into_response())
}

/// A job for a plan body whatever its `options.async` (the gRPC stream's path).
async fn create_plan_job(
    state: &AppState,
    body: &[u8],
    caller: &Caller,
) -> Result<String, ApiError> {
    let (mut document, _) = without_async_flag(body)?;
    histories::resolve(state, caller, &mut document).await?;
    let request: PlanRequest = crate::input::parse_value(document)?;
    start_plan_job(state, &request, caller).await
}

/// Store a plan as `caller`'s job and start it; its events and result arrive through [`Jobs`].
async fn start_plan_job(
    state: &AppState,
    request: &PlanRequest,
    caller: &Caller,
) -> Result<String, ApiError> {
    let (plan, _) = checked_plan(state, request, PlanOperation::Simulate)?;
    let canonical =
        serde_json::to_string(request).map_err(|e| ApiError::Internal(e.to_string()))?;
    let hash = cache::key("plan", request);
    let id = state
        .jobs
        .create(
            JobKind::Plan,
            &canonical,
            &hash,
            plan.paths,
            plan.seed,
            &caller.owner,
        )
        .await?;
    run_job(state, &id, JobWork::Plan(Box::new(plan)))?;
    Ok(id)
}

/// A plan validated, and the work of `what` on it within the budget (path-steps).
fn checked_plan(
    state: &AppState,
    request: &PlanRequest,
    what: PlanOperation,
) -> Result<(plan::PreparedPlan, u64), ApiError> {
    // Validated first: the work is counted over the plan's horizon, the longest life.
    let prepared = plan::prepare_plan(request)?;
    let steps = admit(state, budget::plan(&prepared, what))?;
    Ok((prepared, steps))
}

/// Run plan operation `what` on a plan [`checked_plan`] prepared and counted, in its lane
/// within the deadline, never from the cache.
async fn run_plan_operation(
    state: &AppState,
    request: PlanRequest,
    (prepared, steps): (plan::PreparedPlan, u64),
    what: PlanOperation,
) -> Result<Value, ApiError> {
    blocking(state, steps, move |e| match what {
        PlanOperation::Simulate => to_json(&e.run_plan(&prepared)?),
        PlanOperation::SustainableSpending => {
            to_json(&plan::solve::sustainable_spending(e, &request)?)
        }
        PlanOperation::Claiming => to_json(&plan::solve::claiming(e, &request)?),
        PlanOperation::WithdrawalOrders => to_json(&plan::solve::withdrawal_orders(e, &request)?),
    })
    .await
}

/// One plan's result, never from the cache (a replay).
async fn plan_uncached(state: &AppState, request: PlanRequest) -> Result<Value, ApiError> {
    let checked = checked_plan(state, &request, PlanOperation::Simulate)?;
    run_plan_operation(state, request, checked, PlanOperation::Simulate).await
}

/// A simulation body (its named histories resolved), and whether `options.async` asked for a
/// job.
async fn simulation_request(
    state: &AppState,
    caller: &Caller,
    body: &[u8],
) -> Result<(GoalRequest, bool), ApiError> {
    let (mut value, asynchronous) = without_async_flag(body)?;
    histories::resolve(state, caller, &mut value).await?;
    Ok((crate::input::parse_value(value)?, asynchronous))
}

/// A body as a document without its `options.async`, and the flag (the service's, not the
/// model's, so it is taken out before the request is read).
fn without_async_flag(body: &[u8]) -> Result<(Value, bool), ApiError> {
    // Read as a document first (to take the flag out), which would let a repeated key pass
    // silently where every other route refuses it.
    let _: crate::input::NoRepeatedKeys = parse(body)?;
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
    Ok((value, asynchronous))
}

/// A job for a simulation body whatever its `options.async` (the gRPC stream's path).
async fn create_job(state: &AppState, body: &[u8], caller: &Caller) -> Result<String, ApiError> {
    let (request, _) = simulation_request(state, caller, body).await?;
    start_job(state, &request, caller).await
}

/// Store a simulation as `caller`'s job and queue it; its events and result arrive through
/// [`Jobs`].
async fn start_job(
    state: &AppState,
    request: &GoalRequest,
    caller: &Caller,
) -> Result<String, ApiError> {
    let goal = checked_goal(state, request)?;
    let canonical =
        serde_json::to_string(request).map_err(|e| ApiError::Internal(e.to_string()))?;
    let hash = cache::key("simulate", request);
    let id = state
        .jobs
        .create(
            JobKind::Goal,
            &canonical,
            &hash,
            goal.paths,
            goal.seed,
            &caller.owner,
        )
        .await?;
    run_job(state, &id, JobWork::Goal(Box::new(goal)))?;
    Ok(id)
}

/// A goal's simulation, with its fraction done sent to `progress`: through the batcher when
/// it is small, alone in the bulk lane when large.
fn simulation(
    state: &AppState,
    goal: PreparedGoal,
    progress: Option<tokio::sync::mpsc::UnboundedSender<f64>>,
) -> Result<BoxFuture<'static, Result<SimulationResult, ApiError>>, ApiError> {
    let steps = goal.path_steps();
    if steps <= state.lanes.interactive_max {
        let pending = state.batcher.submit_with_progress(goal, progress)?;
        return Ok(async move {
            pending.await.unwrap_or_else(|_| {
                Err(ApiError::Internal("the batcher dropped the request".into()))
            })
        }
        .boxed());
    }
    let state = state.clone();
    Ok(async move {
        let watch = Arc::new(Watch::default());
        let reporting = progress.map(|progress| report_progress(watch.clone(), steps, progress));
        let result = watched_blocking(&state, steps, watch, move |engine| {
            Ok(engine.run(std::slice::from_ref(&goal))?.remove(0))
        })
        .await;
        if let Some(reporting) = reporting {
            reporting.abort();
        }
        result
    }
    .boxed())
}

/// Send the fraction of `steps` that `watch` has counted to `progress`, every
/// [`batcher::PROGRESS_EVERY`], until the receiver goes (abort the task when the work ends).
fn report_progress(
    watch: Arc<Watch>,
    steps: u64,
    progress: tokio::sync::mpsc::UnboundedSender<f64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(batcher::PROGRESS_EVERY);
        loop {
            tick.tick().await;
            let fraction = (watch.done() as f64 / steps.max(1) as f64).min(1.0);
            if progress.send(fraction).is_err() {
                break;
            }
        }
    })
}

/// What a stored job runs.
enum JobWork {
    Goal(Box<PreparedGoal>),
    Plan(Box<plan::PreparedPlan>),
}

/// A plan's run in its lane, with its fraction done sent to `progress`.
fn plan_job(
    state: &AppState,
    plan: plan::PreparedPlan,
    progress: tokio::sync::mpsc::UnboundedSender<f64>,
) -> BoxFuture<'static, Result<Value, ApiError>> {
    let state = state.clone();
    async move {
        let steps = plan.path_steps();
        let watch = Arc::new(Watch::default());
        let reporting = report_progress(watch.clone(), steps, progress);
        let result =
            watched_blocking(&state, steps, watch, move |e| to_json(&e.run_plan(&plan)?)).await;
        reporting.abort();
        result
    }
    .boxed()
}

/// Run job `id`'s work and record what becomes of it, renewing this replica's lease on it
/// meanwhile; if another replica takes the job over (this one was presumed dead), stop.
fn run_job(state: &AppState, id: &str, work: JobWork) -> Result<(), ApiError> {
    let (progress, mut fractions) = tokio::sync::mpsc::unbounded_channel();
    let pending: BoxFuture<'static, Result<Value, ApiError>> = match work {
        JobWork::Goal(goal) => {
            let simulated = simulation(state, *goal, Some(progress))?;
            async move { to_json(&simulated.await?) }.boxed()
        }
        JobWork::Plan(plan) => plan_job(state, *plan, progress),
    };
    let jobs = state.jobs.clone();
    let job = id.to_string();
    let deadline = state.deadline;
    let backend = state.engine.backend().info().name;
    tokio::spawn(async move {
        jobs.progress(&job, backend, 0.0).await;
        // Fractions done while it runs, each a `progress` event (and the stored progress);
        // the channel closes when the result is sent.
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
        let renewing = async {
            loop {
                tokio::time::sleep(jobs.lease() / 3).await;
                match jobs.renew(&job).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(job = %job, error = %e, "lease not renewed"),
                }
            }
        };
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(deadline, pending) => match outcome {
                Err(_) => Err(ApiError::Timeout),
                Ok(result) => result,
            },
            () = renewing => {
                forward.abort();
                tracing::warn!(job = %job, "another replica took this simulation over; stopped");
                return;
            }
        };
        if outcome.is_ok() {
            let _ = forward.await;
        } else {
            forward.abort();
            let _ = forward.await;
        }
        let outcome = outcome.map_err(|e| error_value(&e));
        let compute_ms = started.elapsed().as_secs_f64() * 1e3;
        jobs.finish(&job, outcome, compute_ms).await;
    });
    Ok(())
}

/// Take over this replica's own unfinished jobs from before a restart, then, in the
/// background, other replicas' jobs and re-scoring runs whose lease expired.
///
/// The first look is awaited before the service accepts requests: were it to run beside
/// them, it would take a job created a moment earlier for one left by a restart, run it a
/// second time and cut its followers' event streams.
async fn look_after_unattended_work(state: AppState) {
    take_over_jobs(&state, true).await;
    tokio::spawn(async move {
        while !state.draining.load(Ordering::Relaxed) {
            take_over_jobs(&state, false).await;
            match state.store.unattended_runs().await {
                Ok(runs) => {
                    for run in runs {
                        stored::start_rescore(&state, run);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not look for unattended re-scoring"),
            }
            tokio::time::sleep(state.jobs.lease() / 2).await;
        }
    });
}

/// Claim and resume unattended jobs (with `own`, also this replica's from before a restart).
async fn take_over_jobs(state: &AppState, own: bool) {
    match state.jobs.claim(own).await {
        Ok(records) => {
            for record in records {
                resume_job(state, record).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not look for unattended jobs"),
    }
}

/// Run a job taken over (same id, same request, same seed: the same result).
async fn resume_job(state: &AppState, record: sextant_store::simulations::SimulationRecord) {
    let resumed = if record.kind == JobKind::Plan.as_str() {
        serde_json::from_str::<PlanRequest>(&record.request)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                checked_plan(state, &r, PlanOperation::Simulate)
                    .map(|(plan, _)| JobWork::Plan(Box::new(plan)))
                    .map_err(|e| e.message())
            })
    } else {
        serde_json::from_str::<GoalRequest>(&record.request)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                checked_goal(state, &r)
                    .map(|goal| JobWork::Goal(Box::new(goal)))
                    .map_err(|e| e.message())
            })
    };
    match resumed {
        Ok(work) => {
            state.jobs.watch(&record.id);
            if let Err(e) = run_job(state, &record.id, work) {
                state
                    .jobs
                    .finish(&record.id, Err(error_value(&e)), 0.0)
                    .await;
            }
            tracing::info!(job = %record.id, kind = %record.kind, "took over an unfinished job");
        }
        Err(message) => {
            let error = serde_json::json!({"field": "request", "message": message});
            state.jobs.finish(&record.id, Err(error), 0.0).await;
        }
    }
}

fn error_value(e: &ApiError) -> Value {
    serde_json::json!({"field": e.field(), "message": e.message()})
}

/// The routes of stored jobs of `kind` by id: read, events (SSE), fan chart, replay.
fn job_routes(kind: JobKind) -> Router<AppState> {
    let at = |tail: &str| format!("/v1/{}/{{id}}{tail}", kind.collection());
    Router::new()
        .route(
            &at(""),
            get(
                move |State(state): State<AppState>,
                      Extension(caller): Extension<Caller>,
                      PathParam(id): PathParam| async move {
                    let record = stored::simulation(&state, &caller, kind, &id).await?;
                    Ok::<_, ApiError>(Json(record).into_response())
                },
            ),
        )
        .route(
            &at("/events"),
            get(
                move |State(state): State<AppState>,
                      Extension(caller): Extension<Caller>,
                      PathParam(id): PathParam| async move {
                    let events = stored::events(&state, &caller, kind, &id).await?.map(|e| {
                        Ok::<_, Infallible>(
                            Event::default().event(e.event).data(e.data.to_string()),
                        )
                    });
                    Ok::<_, ApiError>(
                        Sse::new(events)
                            .keep_alive(KeepAlive::default())
                            .into_response(),
                    )
                },
            ),
        )
        .route(
            &at("/fan-chart.svg"),
            get(
                move |State(state): State<AppState>,
                      Extension(caller): Extension<Caller>,
                      PathParam(id): PathParam| async move {
                    let svg = stored::fan_chart(&state, &caller, kind, &id).await?;
                    Ok::<_, ApiError>(
                        ([(axum::http::header::CONTENT_TYPE, "image/svg+xml")], svg)
                            .into_response(),
                    )
                },
            ),
        )
        .route(
            &at("/replay"),
            post(
                move |State(state): State<AppState>,
                      Extension(caller): Extension<Caller>,
                      PathParam(id): PathParam| async move {
                    let replayed = stored::replay(&state, &caller, kind, &id).await?;
                    Ok::<_, ApiError>(Json(replayed).into_response())
                },
            ),
        )
}

/// `GET /v1/simulations?status=&limit=&cursor=` (and `/v1/plans?…`)
async fn list_jobs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    kind: JobKind,
    query: Result<
        axum::extract::Query<stored::ListQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response, ApiError> {
    let axum::extract::Query(query) = query.map_err(|e| ApiError::Malformed {
        field: "query".into(),
        message: e.body_text(),
    })?;
    Ok(Json(stored::list(&state, &caller, kind, query).await?).into_response())
}

/// `POST /v1/rescore-runs`: 202 with the run's id.
async fn create_rescore_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let links = stored::create_rescore_run(&state, &caller, &body).await?;
    Ok((StatusCode::ACCEPTED, Json(links)).into_response())
}

/// `GET /v1/rescore-runs/{id}`
async fn get_rescore_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    Ok(Json(stored::rescore_run(&state, &caller, &id).await?).into_response())
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
    Plan,
    PlanSpending,
    PlanClaiming,
    PlanWithdrawalOrders,
}

impl Operation {
    /// Every operation, in the order of the API reference.
    pub const ALL: [Operation; 12] = [
        Operation::Simulate,
        Operation::RequiredContribution,
        Operation::SustainableWithdrawal,
        Operation::WhatIf,
        Operation::Sensitivity,
        Operation::Frontier,
        Operation::Sweep,
        Operation::Risk,
        Operation::Plan,
        Operation::PlanSpending,
        Operation::PlanClaiming,
        Operation::PlanWithdrawalOrders,
    ];

    /// The HTTP route that runs it (POST).
    pub const fn path(self) -> &'static str {
        match self {
            Operation::Simulate => "/v1/simulations",
            Operation::RequiredContribution => "/v1/solve/required-contribution",
            Operation::SustainableWithdrawal => "/v1/solve/sustainable-withdrawal",
            Operation::WhatIf => "/v1/what-if",
            Operation::Sensitivity => "/v1/sensitivity",
            Operation::Frontier => "/v1/frontier",
            Operation::Sweep => "/v1/frontier/sweep",
            Operation::Risk => "/v1/risk",
            Operation::Plan => "/v1/plans",
            Operation::PlanSpending => "/v1/plans/solve/spending",
            Operation::PlanClaiming => "/v1/plans/solve/claiming",
            Operation::PlanWithdrawalOrders => "/v1/plans/solve/withdrawal-order",
        }
    }

    /// What a plan operation runs, as the budget counts it; `None` for the goal operations.
    const fn plan_operation(self) -> Option<PlanOperation> {
        match self {
            Operation::Plan => Some(PlanOperation::Simulate),
            Operation::PlanSpending => Some(PlanOperation::SustainableSpending),
            Operation::PlanClaiming => Some(PlanOperation::Claiming),
            Operation::PlanWithdrawalOrders => Some(PlanOperation::WithdrawalOrders),
            _ => None,
        }
    }
}

/// Run `operation` on a request body (synchronously for simulations), answering from the
/// cache when the same request was answered before.
async fn call(
    state: &AppState,
    caller: &Caller,
    operation: Operation,
    input: Input<'_>,
) -> Result<Value, ApiError> {
    match operation {
        Operation::Simulate => {
            let r: GoalRequest = input.read(state, caller).await?;
            checked_goal(state, &r)?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(state, &key, simulate_uncached(state, &r)).await
        }
        Operation::RequiredContribution => {
            let r: GoalRequest = input.read(state, caller).await?;
            let steps = admit(state, budget::solver(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, steps, move |e| {
                    to_json(&solve::required_contribution(e, &r)?)
                }),
            )
            .await
        }
        Operation::SustainableWithdrawal => {
            let r: GoalRequest = input.read(state, caller).await?;
            let steps = admit(state, budget::solver(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, steps, move |e| {
                    to_json(&solve::sustainable_withdrawal(e, &r)?)
                }),
            )
            .await
        }
        Operation::WhatIf => {
            let r: WhatIfRequest = input.read(state, caller).await?;
            let steps = admit(state, budget::what_if(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, steps, move |e| to_json(&scenarios::what_if(e, &r)?)),
            )
            .await
        }
        Operation::Sensitivity => {
            let r: SensitivityRequest = input.read(state, caller).await?;
            let steps = admit(state, budget::sensitivity(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, steps, move |e| {
                    to_json(&scenarios::sensitivity(e, &r)?)
                }),
            )
            .await
        }
        Operation::Frontier => {
            let r: FrontierRequest = input.read(state, caller).await?;
            let steps = admit(state, budget::frontier(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, steps, move |e| to_json(&r.run_watched(e.watch())?)),
            )
            .await
        }
        Operation::Sweep => {
            let r: SweepRequest = input.read(state, caller).await?;
            let steps = admit(state, budget::sweep(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, steps, move |e| to_json(&r.run(e)?)),
            )
            .await
        }
        Operation::Risk => {
            let r: RiskRequest = input.read(state, caller).await?;
            let steps = admit(state, budget::risk(&r))?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(
                state,
                &key,
                blocking(state, steps, move |e| to_json(&r.run_watched(e.watch())?)),
            )
            .await
        }
        Operation::Plan
        | Operation::PlanSpending
        | Operation::PlanClaiming
        | Operation::PlanWithdrawalOrders => {
            let r: PlanRequest = input.read(state, caller).await?;
            let what = operation
                .plan_operation()
                .ok_or_else(|| ApiError::Internal(format!("{operation:?} is not a plan")))?;
            // Validated and counted before the cache, as simulations are.
            let checked = checked_plan(state, &r, what)?;
            let key = cache::key(&format!("{operation:?}"), &r);
            cached(state, &key, run_plan_operation(state, r, checked, what)).await
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

/// A goal simulation (batched when small, in the bulk lane when large) within the deadline,
/// never from the cache.
async fn simulate_uncached(state: &AppState, request: &GoalRequest) -> Result<Value, ApiError> {
    let goal = checked_goal(state, request)?;
    let pending = simulation(state, goal, None)?;
    match tokio::time::timeout(state.deadline, pending).await {
        Err(_) => Err(ApiError::Timeout),
        Ok(result) => to_json(&result?),
    }
}

/// Validate a goal and apply the service's cap on paths × months.
fn checked_goal(state: &AppState, request: &GoalRequest) -> Result<PreparedGoal, ApiError> {
    let goal = validate::prepare(request)?;
    within_budget(state, budget::goal(request))?;
    Ok(goal)
}

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
    Extension(caller): Extension<Caller>,
    PathParam(name): PathParam,
    body: Bytes,
) -> Result<Response, ApiError> {
    Ok(Json(tool_result(&state, &caller, &name, &body).await?).into_response())
}

/// `{"tool", "summary", "result"}` of one tool run.
async fn tool_result(
    state: &AppState,
    caller: &Caller,
    name: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let tool = tools::find(name).ok_or_else(|| ApiError::NotFound(format!("tool {name}")))?;
    let body = tools::with_tool_defaults(tool.operation, body);
    let result = call(state, caller, tool.operation, Input::Body(&body)).await?;
    let summary = tools::summary(tool.operation, &body, &result)?;
    Ok(serde_json::json!({"tool": name, "summary": summary, "result": result}))
}
