//! `sextant-bench --suite service`: the service under load on loopback, beside the baseline
//! the seed architecture would run (a FastAPI + NumPy service, `benches/service_baseline.py`)
//! driven by the same closed-loop clients in the same command. Each client posts the standard
//! goal (30 years) with 10,000 paths, waits for the answer, and posts again, for a fixed time.
//! Sextant runs twice: with the default batching and with batching off (one goal per batch),
//! which is what the defaults are measured against; the batched server is also driven over
//! typed gRPC (`Simulate` with a `GoalRequest` message), to set typed gRPC beside HTTP JSON,
//! and asked for a standard error of 0.005 in place of 10,000 paths (docs/model.md §6), under
//! the tools' sampler (what an agent's call gets) and under `sobol`, to set a precision request
//! beside the baseline's plain ones.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use sextant_engine::request::Sampler;
use sextant_engine::Engine;
use sextant_service::TOOL_SAMPLER;

use crate::engine::STANDARD_GOAL;
use sextant_service as service;

#[derive(Clone, clap::Args)]
pub struct ServiceArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Paths per request (10,000: the engine dominates; 100: the transport shows): the global
    /// `--paths`.
    #[arg(skip = 10_000u64)]
    pub paths: u64,
    /// Skip the FastAPI + NumPy baseline.
    #[arg(long)]
    no_baseline: bool,
}

/// The standard error of the precision run's requests.
const PRECISION: f64 = 0.005;
/// The samplers of the precision runs; the tools' default's run sets
/// `precision_throughput_ratio`.
const PRECISION_SAMPLERS: [Sampler; 2] = [Sampler::Antithetic, Sampler::Sobol];

/// A precision run's name.
fn precision_run(sampler: Sampler) -> String {
    format!(
        "sextant {}, precision 0.005 (batch 64, 2 ms)",
        sampler.name()
    )
}

#[derive(Serialize)]
pub struct LoadReport {
    pub clients: usize,
    pub paths: u64,
    pub months: u32,
    pub runs: Vec<Run>,
    /// Sextant (default batching) requests/s over the baseline's.
    pub throughput_ratio: Option<f64>,
    /// Sextant's precision-0.005 requests/s under the tools' sampler over the baseline's plain
    /// requests/s.
    pub precision_throughput_ratio: Option<f64>,
    /// Typed gRPC requests/s over HTTP JSON's, same server and clients.
    pub grpc_http_ratio: Option<f64>,
    /// Why the baseline did not run, when it was asked for and failed.
    pub baseline_error: Option<String>,
}

#[derive(Serialize)]
pub struct Run {
    pub name: String,
    pub clients: usize,
    pub requests: usize,
    pub errors: usize,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// From /metrics: batch sizes reached (median, p99), where the server reports them.
    pub batch_size_p50: Option<f64>,
    pub batch_size_p99: Option<f64>,
}

fn body(paths: u64) -> Result<String> {
    let mut request: Value = serde_json::from_str(STANDARD_GOAL)?;
    request["options"]["paths"] = paths.into();
    Ok(request.to_string())
}

/// One closed-loop client: post `body` to `url`, wait for the answer, post again, until
/// `end`; the latencies (ms) of the answers that succeeded, and how many failed.
pub async fn one_client(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    end: Instant,
) -> (Vec<f64>, usize) {
    let (mut latencies, mut errors) = (Vec::new(), 0);
    while Instant::now() < end {
        let t = Instant::now();
        let ok = match http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
        {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
        } else {
            errors += 1;
        }
    }
    (latencies, errors)
}

/// The standard goal asking for a standard error of `precision` on success under `sampler`
/// instead of a number of paths (docs/model.md §6).
fn precision_body(precision: f64, sampler: Sampler) -> Result<String> {
    let mut request: Value = serde_json::from_str(STANDARD_GOAL)?;
    request["options"] = serde_json::json!({"sampler": sampler, "seed": 42,
        "precision": {"success_probability": precision}});
    Ok(request.to_string())
}

/// Closed-loop load: `clients` tasks post the `paths`-path standard goal for `seconds`.
async fn load(name: &str, url: &str, clients: usize, seconds: f64, paths: u64) -> Result<Run> {
    load_body(name, url, clients, seconds, body(paths)?).await
}

/// Closed-loop load: `clients` tasks post `body` for `seconds`.
async fn load_body(
    name: &str,
    url: &str,
    clients: usize,
    seconds: f64,
    body: String,
) -> Result<Run> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    closed_loop(name, clients, seconds, |end| {
        let (http, url, body) = (http.clone(), url.to_string(), body.clone());
        async move { one_client(&http, &url, &body, end).await }
    })
    .await
}

/// `clients` tasks, each made by `client` and running until the end it is given; their
/// latencies and failures summarised.
async fn closed_loop<F, C>(name: &str, clients: usize, seconds: f64, client: C) -> Result<Run>
where
    C: Fn(Instant) -> F,
    F: std::future::Future<Output = (Vec<f64>, usize)> + Send + 'static,
{
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients).map(|_| tokio::spawn(client(end))).collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    Ok(summarise(
        name,
        clients,
        latencies,
        errors,
        started.elapsed().as_secs_f64(),
    ))
}

/// Closed-loop load over typed gRPC: `clients` tasks call `Simulate` with the same goal as a
/// `GoalRequest` message for `seconds`, each on its own connection or all on one.
async fn grpc_load(
    name: &str,
    address: SocketAddr,
    clients: usize,
    seconds: f64,
    paths: u64,
    one_connection: bool,
) -> Result<Run> {
    use service::proto::sextant_client::SextantClient;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?;
    // One connection, its HTTP/2 streams shared by every client (how a gRPC client is usually
    // used), or one connection a client (as the HTTP clients' pool has).
    let shared = endpoint.connect().await?;
    let request: service::proto::GoalRequest =
        service::typed_dynamic_message(serde_json::from_str(&body(paths)?)?)
            .map_err(|e| anyhow::anyhow!(e.message()))?;
    closed_loop(name, clients, seconds, |end| {
        let channel = if one_connection {
            shared.clone()
        } else {
            endpoint.connect_lazy()
        };
        let (mut client, request) = (SextantClient::new(channel), request.clone());
        async move {
            let (mut latencies, mut errors) = (Vec::new(), 0);
            while Instant::now() < end {
                let t = Instant::now();
                match client.simulate(request.clone()).await {
                    Ok(_) => latencies.push(t.elapsed().as_secs_f64() * 1e3),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }
    })
    .await
}

/// A run's figures from its latencies (ms), printed as it ends.
fn summarise(
    name: &str,
    clients: usize,
    mut latencies: Vec<f64>,
    errors: usize,
    elapsed: f64,
) -> Run {
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let run = Run {
        name: name.to_string(),
        clients,
        requests: latencies.len(),
        errors,
        requests_per_second: latencies.len() as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        batch_size_p50: None,
        batch_size_p99: None,
    };
    eprintln!(
        "{name:>28} {clients:>3} clients: {:>8.1} req/s, p50 {:>8.2} ms, p99 {:>8.2} ms, {} errors",
        run.requests_per_second, run.p50_ms, run.p99_ms, run.errors
    );
    run
}

/// `sextant_batch_size{quantile="q"}` from a Prometheus text page.
fn quantile(metrics: &str, q: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("sextant_batch_size{{quantile=\"{q}\"}}")))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

async fn sextant_runs(engine: &Engine, args: &ServiceArgs) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for (name, max_batch, delay_ms) in [
        ("sextant (batch 64, 2 ms)", 64, 2),
        ("sextant (no batching)", 1, 0),
    ] {
        // Its own SQLite file: the benchmark leaves nothing behind in the working directory.
        let database =
            std::env::temp_dir().join(format!("sextant-bench-{}.db", std::process::id()));
        let database = sextant_store::DatabaseArgs {
            database_url: Some(format!("sqlite://{}?mode=rwc", database.display())),
            ..sextant_store::DatabaseArgs::default()
        };
        let (address, grpc, server) =
            service::start_for_bench(engine.clone(), max_batch, delay_ms, database, 50_000_000)
                .await?;
        let url = format!("http://{address}/v1/simulations");
        let mut run = load(name, &url, args.clients, args.seconds, args.paths).await?;
        if max_batch > 1 {
            // The first run's batch sizes (the recorder is process-wide).
            let metrics = reqwest::get(format!("http://{address}/metrics"))
                .await?
                .text()
                .await?;
            run.batch_size_p50 = quantile(&metrics, "0.5");
            run.batch_size_p99 = quantile(&metrics, "0.99");
        }
        runs.push(run);
        if max_batch > 1 {
            // The same goal to a standard error of 0.005 (what a 10,000-path Philox run
            // gives near p = 0.5), the sampler picking its own paths.
            for sampler in PRECISION_SAMPLERS {
                let body = precision_body(PRECISION, sampler)?;
                let name = precision_run(sampler);
                runs.push(load_body(&name, &url, args.clients, args.seconds, body).await?);
            }
            runs.push(load(name, &url, 1, args.seconds.min(5.0), args.paths).await?);
            // The same server over typed gRPC, beside its HTTP JSON run.
            for (typed, one_connection) in [
                ("sextant gRPC typed (batch 64, 2 ms)", true),
                ("sextant gRPC typed, a connection a client", false),
            ] {
                let run = grpc_load(
                    typed,
                    grpc,
                    args.clients,
                    args.seconds,
                    args.paths,
                    one_connection,
                );
                runs.push(run.await?);
            }
        }
        server.abort();
    }
    Ok(runs)
}

/// The baseline's uvicorn, in a process group of its own: its workers are its children, and
/// killing the parent alone would leave them running (holding the caller's stderr open).
struct Baseline(Child);

impl Drop for Baseline {
    fn drop(&mut self) {
        let group = self.0.id() as libc::pid_t;
        // SAFETY: signals the process group that `spawn` created for this child alone.
        unsafe { libc::killpg(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; whatever of the group is left.
        unsafe { libc::killpg(group, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

async fn baseline_run(args: &ServiceArgs, python: &str) -> Result<Vec<Run>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Baseline(
        Command::new(python)
            .args(["benches/service_baseline.py", "--port", &port.to_string()])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {python} benches/service_baseline.py \
                     (pip install -r benches/requirements-bench.txt)"
                )
            })?,
    );
    let health = format!("http://127.0.0.1:{port}/healthz");
    let mut up = false;
    for _ in 0..150 {
        if reqwest::get(&health).await.is_ok() {
            up = true;
            break;
        }
        if let Some(status) = child.0.try_wait()? {
            bail!("the FastAPI baseline ({python}) exited at start: {status}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !up {
        bail!("the FastAPI baseline ({python}) did not answer /healthz within 30 s");
    }
    let url = format!("http://127.0.0.1:{port}/v1/simulations");
    Ok(vec![
        load(
            "FastAPI + NumPy",
            &url,
            args.clients,
            args.seconds,
            args.paths,
        )
        .await?,
        load(
            "FastAPI + NumPy",
            &url,
            1,
            args.seconds.min(5.0),
            args.paths,
        )
        .await?,
    ])
}

/// The load runs; `python` (`--python`, `SEXTANT_PYTHON`) runs the baseline. A baseline that
/// fails to start is reported (`baseline: FAILED …` on stderr, `baseline_error` in the JSON)
/// after Sextant's runs, which are kept.
pub fn run(engine: &Engine, args: &ServiceArgs, python: &str) -> Result<LoadReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let backend = engine.backend().info();
    runtime.block_on(async {
        let mut runs = sextant_runs(engine, args).await?;
        let mut baseline_error = None;
        if args.no_baseline {
            eprintln!("baseline: skipped (--no-baseline)");
        } else {
            match baseline_run(args, python).await {
                Ok(baseline) => runs.extend(baseline),
                Err(e) => {
                    eprintln!("baseline: FAILED: {e:#}");
                    baseline_error = Some(format!("{e:#}"));
                }
            }
        }
        let rate = |name: &str| {
            runs.iter()
                .find(|r| r.name.starts_with(name) && r.clients == args.clients)
                .map(|r| r.requests_per_second)
        };
        let ratio = match (rate("sextant (batch"), rate("FastAPI")) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let precision_ratio = match (rate(&precision_run(TOOL_SAMPLER)), rate("FastAPI")) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let grpc_ratio = match (rate("sextant gRPC typed"), rate("sextant (batch")) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        // The short table, last, in Markdown.
        eprintln!(
            "\nservice on {} ({}), {}-path standard goal, {:.0} s a run\n\
             | server | clients | requests/s | p50 (ms) | p99 (ms) | errors | batch p50 / p99 |\n\
             | --- | --- | --- | --- | --- | --- | --- |",
            backend.name, backend.device, args.paths, args.seconds
        );
        for r in &runs {
            let batch = match (r.batch_size_p50, r.batch_size_p99) {
                (Some(a), Some(b)) => format!("{a:.0} / {b:.0}"),
                _ => String::new(),
            };
            eprintln!(
                "| {} | {} | {:.1} | {:.2} | {:.2} | {} | {batch} |",
                r.name, r.clients, r.requests_per_second, r.p50_ms, r.p99_ms, r.errors
            );
        }
        if let Some(r) = grpc_ratio {
            eprintln!("typed gRPC / HTTP JSON throughput (same server): {r:.2}×");
        }
        match (ratio, &baseline_error) {
            (Some(r), _) => {
                eprintln!("sextant / FastAPI throughput: {r:.1}×");
                if let Some(p) = precision_ratio {
                    eprintln!(
                        "sextant precision 0.005 ({}, the tools' sampler) / FastAPI 10,000 paths: {p:.1}×",
                        TOOL_SAMPLER.name()
                    );
                }
            }
            (None, Some(e)) => eprintln!("sextant / FastAPI throughput: no baseline ({e})"),
            (None, None) => {}
        }
        Ok(LoadReport {
            clients: args.clients,
            paths: args.paths,
            months: 360,
            runs,
            throughput_ratio: ratio,
            precision_throughput_ratio: precision_ratio,
            grpc_http_ratio: grpc_ratio,
            baseline_error,
        })
    })
}
