//! `sextant-bench --suite fairness`: whether a small request keeps its latency while a
//! budget-sized one runs. One client posts the 10,000-path standard goal, waits for the answer
//! and posts again, first alone, then while another client keeps a budget-sized simulation
//! (`--fair-big-path-steps`, the service's default `--max-path-steps`) running. The server runs
//! twice in the same command: with the two lanes (the default) and with one lane for every
//! request (`--interactive-max-path-steps` at its largest, as before the lanes), which is the
//! baseline the lanes are measured against. Last, the time from a disconnect to idle: a
//! budget-sized request whose caller gives up after a second, and the milliseconds until the
//! process's CPU use falls below a tenth of a core (read from /proc, Linux only).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::Value;
use sextant_engine::Engine;

use crate::engine::STANDARD_GOAL;

#[derive(clap::Args)]
pub struct FairnessArgs {
    /// Seconds of small requests in each measurement.
    #[arg(long, default_value_t = 10.0)]
    fair_seconds: f64,
    /// Path-steps of the large request (paths × 360 months).
    #[arg(long, default_value_t = 2_000_000_000)]
    fair_big_path_steps: u64,
}

#[derive(Serialize)]
pub struct FairnessReport {
    pub small_paths: u64,
    pub big_path_steps: u64,
    pub rows: Vec<Row>,
    /// Milliseconds from a large request's caller disconnecting to the process idling, for
    /// each of a few tries (absent where /proc cannot be read).
    pub disconnect_to_idle_ms: Vec<f64>,
}

/// This process's CPU seconds (user + system) so far, from /proc.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf reads a constant.
    Some(ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64)
}

/// Post `big` with a one-second client timeout, then the milliseconds from the disconnect
/// until the process uses under 0.1 CPU-seconds per second over a 100 ms window.
async fn disconnect_to_idle(url: &str, big: &str) -> Result<Option<f64>> {
    let gone = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_secs(1))
        .header("content-type", "application/json")
        .body(big.to_string())
        .send()
        .await;
    if gone.is_ok() {
        bail!("the large request finished within a second: make --fair-big-path-steps larger");
    }
    let disconnected = Instant::now();
    let Some(mut before) = cpu_seconds() else {
        return Ok(None);
    };
    let window = Duration::from_millis(100);
    while disconnected.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(window).await;
        let now = cpu_seconds().unwrap_or(before);
        if now - before < 0.1 * window.as_secs_f64() {
            // Idle through this window: it went idle at its start at the latest.
            return Ok(Some((disconnected.elapsed() - window).as_secs_f64() * 1e3));
        }
        before = now;
    }
    bail!("still busy 30 s after the disconnect")
}

#[derive(Serialize)]
pub struct Row {
    /// `two lanes` or `one lane`.
    pub server: String,
    pub big_request_running: bool,
    pub requests: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Large requests finished while the small ones were measured.
    pub big_requests_done: usize,
}

fn goal(paths: u64) -> Result<String> {
    let mut request: Value = serde_json::from_str(STANDARD_GOAL)?;
    request["options"]["paths"] = paths.into();
    Ok(request.to_string())
}

async fn measure(
    engine: &Engine,
    args: &FairnessArgs,
    server: &str,
    interactive_max: u64,
) -> Result<Vec<Row>> {
    let database = std::env::temp_dir().join(format!("sextant-fair-{}.db", std::process::id()));
    let database = sextant_store::DatabaseArgs {
        database_url: Some(format!("sqlite://{}?mode=rwc", database.display())),
        ..sextant_store::DatabaseArgs::default()
    };
    let (address, _grpc, serving) =
        sextant_service::start_for_bench(engine.clone(), 64, 2, database, interactive_max).await?;
    let url = format!("http://{address}/v1/simulations");
    let small = goal(10_000)?;
    let big = goal(args.fair_big_path_steps / 360)?;
    let mut rows = Vec::new();
    for running in [false, true] {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let background = running.then(|| {
            let (url, big, stop, done) = (url.clone(), big.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let answered = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(big.clone())
                        .send()
                        .await;
                    match answered {
                        Ok(r) if r.status().is_success() => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => eprintln!("the large request answered {}", r.status()),
                        Err(e) => eprintln!("the large request failed: {e}"),
                    }
                }
            })
        });
        if running {
            // The large request is computing before the small ones start.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let end = Instant::now() + Duration::from_secs_f64(args.fair_seconds);
        let (mut latencies, errors) =
            crate::service::one_client(&reqwest::Client::new(), &url, &small, end).await;
        stop.store(true, Ordering::Relaxed);
        if let Some(background) = background {
            background.abort();
        }
        if latencies.is_empty() {
            bail!("no small request was answered ({errors} errors)");
        }
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
        let row = Row {
            server: server.to_string(),
            big_request_running: running,
            requests: latencies.len(),
            errors,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
            big_requests_done: done.load(Ordering::Relaxed),
        };
        eprintln!(
            "{server:>10}, large request {:>7}: {} requests, p50 {:.2} ms, p99 {:.2} ms, max \
             {:.2} ms, {} errors, {} large done",
            if running { "running" } else { "absent" },
            row.requests,
            row.p50_ms,
            row.p99_ms,
            row.max_ms,
            row.errors,
            row.big_requests_done
        );
        rows.push(row);
        // Whatever large request is still computing is cancelled (its caller went away);
        // give it a moment to stop before the next measurement.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    serving.abort();
    Ok(rows)
}

pub fn run(engine: &Engine, args: &FairnessArgs) -> Result<FairnessReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let backend = engine.backend().info();
    runtime.block_on(async {
        let mut rows = measure(engine, args, "two lanes", 50_000_000).await?;
        rows.extend(measure(engine, args, "one lane", u64::MAX).await?);
        let idle = {
            let database =
                std::env::temp_dir().join(format!("sextant-idle-{}.db", std::process::id()));
            let database = sextant_store::DatabaseArgs {
                database_url: Some(format!("sqlite://{}?mode=rwc", database.display())),
                ..sextant_store::DatabaseArgs::default()
            };
            let (address, _grpc, serving) =
                sextant_service::start_for_bench(engine.clone(), 64, 2, database, 50_000_000)
                    .await?;
            let url = format!("http://{address}/v1/simulations");
            let big = goal(args.fair_big_path_steps / 360)?;
            let mut idle = Vec::new();
            for _ in 0..5 {
                if let Some(ms) = disconnect_to_idle(&url, &big).await? {
                    idle.push(ms);
                }
            }
            serving.abort();
            idle
        };
        eprintln!(
            "\nfair sharing on {} ({}): one client, 10,000-path standard goal; large request \
             {:.1e} path-steps; {:.0} s a row\n\
             | server | large request | requests | p50 (ms) | p99 (ms) | max (ms) | errors | \
             large done |\n| --- | --- | --- | --- | --- | --- | --- | --- |",
            backend.name, backend.device, args.fair_big_path_steps as f64, args.fair_seconds
        );
        for r in &rows {
            eprintln!(
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} |",
                r.server,
                if r.big_request_running {
                    "running"
                } else {
                    "absent"
                },
                r.requests,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.errors,
                r.big_requests_done
            );
        }
        eprintln!(
            "disconnect to idle (ms, {} tries): {}",
            idle.len(),
            idle.iter()
                .map(|ms| format!("{ms:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(FairnessReport {
            small_paths: 10_000,
            big_path_steps: args.fair_big_path_steps,
            rows,
            disconnect_to_idle_ms: idle,
        })
    })
}
