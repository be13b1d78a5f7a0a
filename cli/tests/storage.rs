//! Storage against the real databases: PostgreSQL on this machine (a database created for each
//! test and dropped after) and a real SQLite file. Every test runs on both: asynchronous
//! simulations that outlive the server and replay identically, the answer cache (in process
//! and in Redis), and the nightly re-score — exact scores of goals and of household plans,
//! resumed after `kill -9` with every
//! goal scored exactly once, shared by three workers of which one is killed, and a database
//! that is away at the start or cut off mid-run — and the service as several replicas: a
//! replica killed mid-job, repeated re-score requests, `/readyz` following the database,
//! draining, Redis going away and PostgreSQL restarted under it.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{client, example, get_json, get_text, post_json, start_with, temp_path};
use serde_json::{json, Value};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

/// The PostgreSQL server tests create their databases on.
fn postgres_admin() -> String {
    std::env::var("SEXTANT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A database for one test: a new PostgreSQL database (dropped when done) or a new SQLite
/// file (removed when done).
struct Db {
    url: String,
    postgres_name: Option<String>,
    sqlite_file: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Postgres,
    Sqlite,
}

const BOTH: [Kind; 2] = [Kind::Sqlite, Kind::Postgres];

impl Db {
    fn new(kind: Kind) -> Db {
        match kind {
            Kind::Sqlite => {
                let file = temp_path("store.sqlite");
                Db {
                    url: format!("sqlite://{}?mode=rwc", file.display()),
                    postgres_name: None,
                    sqlite_file: Some(file),
                }
            }
            Kind::Postgres => {
                let name = temp_path("db")
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .replace('-', "_");
                admin(&format!("CREATE DATABASE {name}"));
                let admin_url = postgres_admin();
                let base = admin_url.rsplit_once('/').unwrap().0;
                Db {
                    url: format!("{base}/{name}"),
                    postgres_name: Some(name),
                    sqlite_file: None,
                }
            }
        }
    }

    /// A pool on this database for the test's own checks.
    async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .unwrap()
    }

    fn scalar(&self, sql: &str) -> i64 {
        runtime().block_on(async {
            let pool = self.pool().await;
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(name) = &self.postgres_name {
            admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
        if let Some(file) = &self.sqlite_file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
    }
}

/// A statement on the PostgreSQL server's admin database.
fn admin(sql: &str) {
    runtime().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&postgres_admin())
            .await
            .expect("the test PostgreSQL server (SEXTANT_TEST_POSTGRES) is reachable");
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    });
}

fn sextant(db: &Db) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sextant"));
    command
        .env("DATABASE_URL", &db.url)
        .env_remove("REDIS_URL")
        .env_remove("SEXTANT_RUN_KEY")
        .env_remove("SEXTANT_WORKER");
    command
}

fn run_ok(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

const AS_OF: &str = "2026-11-27";

fn generate(db: &Db, n: usize) {
    let out = run_ok(sextant(db).args(["goals", "generate", &n.to_string(), "--as-of", AS_OF]));
    assert_eq!(json_of(&out)["goals"], json!(n));
}

/// `sextant rescore` with the test's date and no progress bar.
fn rescore(db: &Db, key: &str, worker: &str, extra: &[&str]) -> Command {
    let mut command = sextant(db);
    command.args([
        "rescore",
        "--run-key",
        key,
        "--worker",
        worker,
        "--as-of",
        AS_OF,
        "--quiet",
    ]);
    command.args(extra);
    command
}

/// Every goal and plan scored exactly once in `run_key`'s run, every shard done, the goals and
/// plans themselves carrying the run's scores.
fn assert_scored_exactly_once(db: &Db, run_key: &str, goals: i64, plans: i64) {
    let run = db.scalar(&format!(
        "SELECT id FROM rescore_runs WHERE run_key = '{run_key}'"
    ));
    let scalar = |sql: &str| db.scalar(&sql.replace("RUN", &run.to_string()));
    for (items, scores, id, n) in [
        ("goals", "rescore_scores", "goal_id", goals),
        ("plans", "rescore_plan_scores", "plan_id", plans),
    ] {
        assert_eq!(
            scalar(&format!("SELECT COUNT(*) FROM {scores} WHERE run_id = RUN")),
            n,
            "{items}"
        );
        assert_eq!(
            scalar(&format!(
                "SELECT COUNT(DISTINCT {id}) FROM {scores} WHERE run_id = RUN"
            )),
            n,
            "{items}"
        );
        assert_eq!(
            scalar(&format!(
                "SELECT COUNT(*) FROM {items} g JOIN {scores} s ON s.{id} = g.id \
                 AND s.run_id = RUN WHERE g.last_run_id = RUN \
                 AND g.funding_status = s.funding_status"
            )),
            n,
            "{items}"
        );
    }
    assert_eq!(
        scalar("SELECT COUNT(*) FROM rescore_shards WHERE run_id = RUN AND status <> 'done'"),
        0
    );
    // Each shard's goals (or plans) counted once: their sum is the number of both.
    assert_eq!(
        scalar("SELECT CAST(SUM(goals) AS BIGINT) FROM rescore_shards WHERE run_id = RUN"),
        goals + plans
    );
    assert_eq!(
        scalar("SELECT COUNT(*) FROM rescore_runs WHERE id = RUN AND status = 'complete'"),
        1
    );
}

/// Wait until `run_key`'s run has at least `shards` shards done.
fn wait_for_shards(db: &Db, run_key: &str, shards: i64, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = db.scalar(&format!(
            "SELECT COUNT(*) FROM rescore_shards s JOIN rescore_runs r ON r.id = s.run_id \
             WHERE r.run_key = '{run_key}' AND s.status = 'done'"
        ));
        if done >= shards {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the worker ended early"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn async_simulations_survive_a_restart_and_replay_identically() {
    for kind in BOTH {
        let db = Db::new(kind);
        let env = [("DATABASE_URL", db.url.as_str())];
        let mut request = example("accumulation-30y.json");
        request["options"] = json!({"paths": 2000, "seed": 7, "async": true});
        runtime().block_on(async {
            let http = client();
            let server = start_with(&[], &env);
            let accepted =
                post_json(&http, format!("{}/v1/simulations", server.base), &request).await;
            let id = accepted["id"].as_str().unwrap().to_string();
            let url = format!("{}/v1/simulations/{id}", server.base);
            let mut done = Value::Null;
            for _ in 0..600 {
                done = get_json(&http, &url).await;
                if done["status"] == "complete" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(done["status"], "complete", "{kind:?}: {done}");
            assert_eq!(done["seed"], 7);
            assert_eq!(done["iterations"], 2000);
            drop(server); // SIGKILL: nothing is flushed on the way out.

            // A job a crash left queued: stored, never run.
            let queued = "0123456789abcdef0123456789abcdef";
            let mut stored = request.clone();
            stored["options"] = json!({"paths": 500, "seed": 9, "percentiles": [50.0]});
            let pool = db.pool().await;
            sqlx::query(
                "INSERT INTO simulations (id, request, request_hash, status, progress, \
                 iterations, seed, engine_version, created_at) \
                 VALUES ($1, $2, 'h', 'queued', 0, 500, 9, 'test', 0)",
            )
            .bind(queued)
            .bind(stored.to_string())
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;

            let server = start_with(&[], &env);
            let url = format!("{}/v1/simulations/{id}", server.base);
            let after = get_json(&http, &url).await;
            assert_eq!(after["status"], "complete");
            assert_eq!(
                after["result"], done["result"],
                "{kind:?}: the stored result changed"
            );
            let replay = post_json(&http, format!("{url}/replay"), &json!({})).await;
            assert_eq!(replay["identical"], true, "{kind:?}: {replay}");
            assert_eq!(replay["result"], done["result"]);
            let events = get_text(&http, format!("{url}/events")).await;
            assert!(events.contains("event: result") && events.contains("event: done"));

            // The queued job was run on start, with its own seed.
            let resumed_url = format!("{}/v1/simulations/{queued}", server.base);
            let mut resumed = Value::Null;
            for _ in 0..600 {
                resumed = get_json(&http, &resumed_url).await;
                if resumed["status"] == "complete" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(resumed["status"], "complete", "{kind:?}: {resumed}");
            let direct = {
                let mut sync = stored.clone();
                sync["options"]["seed"] = json!(9);
                post_json(&http, format!("{}/v1/simulations", server.base), &sync).await
            };
            assert_eq!(resumed["result"], direct);

            let missing = http
                .post(format!("{}/v1/simulations/nope/replay", server.base))
                .send()
                .await
                .unwrap();
            assert_eq!(missing.status(), 404);
        });
    }
}

/// The value of counter `name` with `label` in a Prometheus text page (0 when absent).
fn counter(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[test]
fn identical_requests_are_answered_from_the_cache_in_process_and_in_redis() {
    let redis_url = std::env::var("SEXTANT_TEST_REDIS").unwrap_or("redis://127.0.0.1:6379/".into());
    let db = Db::new(Kind::Sqlite);
    let mut request = example("accumulation-30y.json");
    // A seed of its own, so no earlier run of this test has filled Redis for it.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007;
    request["options"] = json!({"paths": 3000, "seed": seed});
    let mut same = request.clone();
    // The same request spelled differently: keys reordered, a default written out.
    same["options"] = json!({"seed": seed, "paths": 3000, "percentiles": [5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0]});
    runtime().block_on(async {
        let http = client();
        let hits = |server: &common::Server| {
            let url = format!("{}/metrics", server.base);
            let http = http.clone();
            async move {
                let page = get_text(&http, url).await;
                counter(&page, "sextant_cache_total", "result=\"hit\"")
            }
        };
        // In process.
        let server = start_with(&[], &[("DATABASE_URL", &db.url)]);
        let url = format!("{}/v1/simulations", server.base);
        let first = post_json(&http, &url, &request).await;
        assert_eq!(hits(&server).await, 0.0);
        let second = post_json(&http, &url, &same).await;
        assert_eq!(first, second);
        assert_eq!(hits(&server).await, 1.0);
        drop(server);
        let off = start_with(&["--cache-entries", "0"], &[("DATABASE_URL", &db.url)]);
        let url = format!("{}/v1/simulations", off.base);
        post_json(&http, &url, &request).await;
        post_json(&http, &url, &request).await;
        assert_eq!(hits(&off).await, 0.0);
        drop(off);

        // Redis: one replica computes, another answers from the shared cache.
        let env = [
            ("DATABASE_URL", db.url.as_str()),
            ("REDIS_URL", redis_url.as_str()),
        ];
        let a = start_with(&[], &env);
        let b = start_with(&[], &env);
        let from_a = post_json(&http, format!("{}/v1/simulations", a.base), &request).await;
        assert_eq!(hits(&a).await, 0.0);
        let from_b = post_json(&http, format!("{}/v1/simulations", b.base), &same).await;
        assert_eq!(from_a, from_b);
        assert_eq!(from_a, first);
        assert_eq!(hits(&b).await, 1.0);
        let redis = redis::Client::open(redis_url.as_str()).unwrap();
        let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("sextant:answer:*")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(!keys.is_empty());
    });
}

/// A stored goal's row as the engine request the re-score builds (the test's own mapping).
fn goal_request(row: &sqlx::any::AnyRow, months: i64, paths: u64) -> Value {
    json!({
        "goal": {
            "initial_wealth": row.get::<f64, _>("current_savings"),
            "monthly_contribution": row.get::<f64, _>("monthly_contribution"),
            "contribution_growth": row.get::<f64, _>("contribution_growth"),
            "horizon_months": months,
            "target_amount": row.get::<f64, _>("target_amount"),
            "target_real": true,
            "success_threshold": row.get::<f64, _>("success_threshold"),
        },
        "market": {
            "expected_return": row.get::<f64, _>("expected_return"),
            "volatility": row.get::<f64, _>("volatility"),
            "inflation": row.get::<f64, _>("inflation"),
        },
        "options": {"paths": paths, "seed": row.get::<i64, _>("id")},
    })
}

fn months_from_as_of(date: &str) -> i64 {
    let part = |s: &str, i: usize| s.split('-').nth(i).unwrap().parse::<i64>().unwrap();
    let mut months = (part(date, 0) - 2026) * 12 + part(date, 1) - 11;
    if part(date, 2) < 27 {
        months -= 1;
    }
    months
}

#[test]
fn rescore_matches_the_engine_goal_by_goal_and_over_http() {
    for kind in BOTH {
        let db = Db::new(kind);
        generate(&db, 240);
        let out = run_ok(&mut rescore(
            &db,
            "exact",
            "w1",
            &["--paths", "400", "--shard-size", "50"],
        ));
        let report = json_of(&out);
        assert_eq!(report["goals"], 240, "{kind:?}: {report}");
        assert_eq!(report["shards"], 5);
        let by_status = report["by_status"].as_object().unwrap();
        assert_eq!(
            by_status.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
            240
        );
        assert!(by_status.len() >= 3, "a spread of statuses: {by_status:?}");
        assert_scored_exactly_once(&db, "exact", 240, 0);

        // Every 12th goal against the CLI's own simulation and solver.
        let rows = runtime().block_on(async {
            let pool = db.pool().await;
            let rows = sqlx::query("SELECT * FROM goals WHERE id % 12 = 0 ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows
        });
        assert_eq!(rows.len(), 20);
        for row in &rows {
            let months = months_from_as_of(&row.get::<String, _>("target_date"));
            let request = goal_request(row, months, 400);
            let file = temp_path("goal.json");
            std::fs::write(&file, request.to_string()).unwrap();
            let cli = |args: &[&str]| {
                let out = run_ok(
                    Command::new(env!("CARGO_BIN_EXE_sextant"))
                        .args(["--backend", "cpu", "--compact"])
                        .args(args)
                        .arg(&file),
                );
                json_of(&out)
            };
            let simulated = cli(&["simulate"]);
            let p = row.get::<f64, _>("success_probability");
            assert_eq!(p, simulated["success_probability"].as_f64().unwrap());
            let threshold = row.get::<f64, _>("success_threshold");
            let status = row.get::<String, _>("funding_status");
            let expected = if p >= threshold {
                "on_track"
            } else if p >= threshold - 0.1 - 1e-12 {
                "at_risk"
            } else {
                "off_track"
            };
            assert_eq!(status, expected);
            let solved = cli(&["solve", "required-contribution"]);
            let required = row.get::<Option<f64>, _>("required_monthly_savings");
            match solved["value"].as_f64() {
                // The solver re-checks by simulation and may add a cent; the re-score does not.
                Some(v) => assert!(
                    (v - required.unwrap()).abs() <= 0.011,
                    "{v} vs {required:?}"
                ),
                None => assert_eq!(required, None),
            }
            let _ = std::fs::remove_file(file);
        }

        // Over HTTP: a second run, same goals, same scores.
        runtime().block_on(async {
            let http = client();
            let server = start_with(&[], &[("DATABASE_URL", &db.url)]);
            let spec =
                json!({"run_key": "over-http", "paths": 400, "shard_size": 50, "as_of": AS_OF});
            let created = http
                .post(format!("{}/v1/rescore-runs", server.base))
                .json(&spec)
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 202);
            let created: Value = created.json().await.unwrap();
            assert_eq!(created["total_goals"], 240);
            let url = format!("{}/v1/rescore-runs/{}", server.base, created["id"]);
            let mut status = Value::Null;
            for _ in 0..1200 {
                status = get_json(&http, &url).await;
                if status["status"] == "complete" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(status["status"], "complete", "{status}");
            assert_eq!(status["goals_scored"], 240);
            assert_eq!(status["by_status"], report["by_status"]);
            let bad = http
                .post(format!("{}/v1/rescore-runs", server.base))
                .json(&json!({"paths": 0}))
                .send()
                .await
                .unwrap();
            assert_eq!(bad.status(), 422);
            let body: Value = bad.json().await.unwrap();
            assert_eq!(body["error"]["field"], "paths");
        });
        assert_scored_exactly_once(&db, "over-http", 240, 0);
    }
}

/// The import file of the plans test: the couple example as of the test's date, and a retiree
/// whose fixed lifetime (70.5) is passed by the test's date but not by the plan's own.
fn plans_to_import() -> String {
    let couple = example("plan-couple.json");
    let mut short = example("plan-single-retiree.json");
    short["plan"]["people"][0]["age"] = json!(70.25);
    short["plan"]["people"][0]["retirement_age"] = json!(67);
    short["plan"]["people"][0]["longevity"] = json!({"kind": "fixed", "age": 70.5});
    [
        json!({"user_id": "user-couple", "name": "couple", "as_of": AS_OF, "request": couple}),
        json!({"user_id": "user-short", "name": "short", "as_of": "2026-01-27", "request": short}),
    ]
    .iter()
    .map(|line| format!("{line}\n"))
    .collect()
}

#[test]
fn plans_are_rescored_beside_goals_exactly_as_the_engine_scores_them() {
    for kind in BOTH {
        let db = Db::new(kind);
        generate(&db, 60);
        // Synthetic households as of ten months before the run: the run ages them.
        let out = run_ok(sextant(&db).args(["plans", "generate", "24", "--as-of", "2026-01-27"]));
        assert_eq!(json_of(&out)["plans"], 24, "{kind:?}");
        let file = temp_path("plans.jsonl");
        std::fs::write(&file, plans_to_import()).unwrap();
        let out = run_ok(sextant(&db).arg("plans").arg("import").arg(&file));
        assert_eq!(json_of(&out)["plans"], 26);

        // A bad line stores nothing and names its line and field.
        let mut bad = plans_to_import();
        bad.push_str(
            &bad.lines()
                .next()
                .unwrap()
                .replace("\"age\":62", "\"age\":-1"),
        );
        std::fs::write(&file, &bad).unwrap();
        let out = sextant(&db)
            .arg("plans")
            .arg("import")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("line 3: request.plan.people[0].age"),
            "{stderr}"
        );
        assert_eq!(db.scalar("SELECT COUNT(*) FROM plans"), 26);
        let _ = std::fs::remove_file(&file);

        let flags = [
            "--paths",
            "300",
            "--plan-paths",
            "200",
            "--shard-size",
            "25",
            "--plan-shard-size",
            "8",
        ];
        let report = json_of(&run_ok(&mut rescore(&db, "both", "w1", &flags)));
        assert_eq!(report["goals"], 60, "{kind:?}: {report}");
        assert_eq!(report["plans"], 26, "{report}");
        // 3 shards of goals, 4 of plans.
        assert_eq!(report["shards"], 7);
        let plans_by_status = report["plans_by_status"].as_object().unwrap();
        assert_eq!(
            plans_by_status["invalid"], 1,
            "the retiree past 70.5: {report}"
        );
        assert_eq!(
            plans_by_status
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>(),
            26
        );
        assert!(plans_by_status.len() >= 3, "a spread: {plans_by_status:?}");
        assert_scored_exactly_once(&db, "both", 60, 26);

        // Every third plan against the CLI's own simulation and solver on the request aged by
        // hand: the synthetic ones by ten months, the couple by none.
        let rows = runtime().block_on(async {
            let pool = db.pool().await;
            let rows = sqlx::query("SELECT * FROM plans WHERE id % 3 = 0 ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows
        });
        assert!(rows.len() >= 8);
        for row in &rows {
            let id = row.get::<i64, _>("id");
            let mut request: Value =
                serde_json::from_str(&row.get::<String, _>("request")).unwrap();
            let months = if row.get::<String, _>("as_of") == AS_OF {
                0.0
            } else {
                10.0
            };
            for person in request["plan"]["people"].as_array_mut().unwrap() {
                person["age"] = json!(person["age"].as_f64().unwrap() + months / 12.0);
            }
            request["options"] = json!({"paths": 200, "seed": id});
            let status = row.get::<String, _>("funding_status");
            let p = row.get::<Option<f64>, _>("success_probability");
            if row.get::<String, _>("name") == "short" {
                assert_eq!((status.as_str(), p), ("invalid", None));
                continue;
            }
            let file = temp_path("plan.json");
            std::fs::write(&file, request.to_string()).unwrap();
            let cli = |args: &[&str]| {
                json_of(&run_ok(
                    Command::new(env!("CARGO_BIN_EXE_sextant"))
                        .args(["--backend", "cpu", "--compact"])
                        .args(args)
                        .arg(&file),
                ))
            };
            let simulated = cli(&["plan"]);
            let p = p.unwrap();
            assert_eq!(
                p,
                simulated["success_probability"].as_f64().unwrap(),
                "plan {id}"
            );
            assert_eq!(
                row.get::<Option<f64>, _>("success_standard_error"),
                simulated["standard_error"].as_f64(),
                "plan {id}"
            );
            let threshold = request["plan"]["success_threshold"]
                .as_f64()
                .unwrap_or(0.85);
            let expected = if p >= threshold {
                "on_track"
            } else if p >= threshold - 0.1 - 1e-12 {
                "at_risk"
            } else {
                "off_track"
            };
            assert_eq!(status, expected, "plan {id}");
            let solved = cli(&["plan", "solve", "spending"]);
            let spending = if solved["attainable"] == true {
                solved["essential"].as_f64().unwrap() + solved["discretionary"].as_f64().unwrap()
            } else {
                0.0
            };
            assert_eq!(
                row.get::<Option<f64>, _>("sustainable_spending"),
                Some(spending),
                "plan {id}"
            );
            let _ = std::fs::remove_file(file);
        }

        // Filters: goals only, plans only of one user, a category (goals only).
        let only = |key: &str, extra: &[&str]| {
            let mut args = flags.to_vec();
            args.extend_from_slice(extra);
            json_of(&run_ok(&mut rescore(&db, key, "w1", &args)))
        };
        let goals_only = only("goals-only", &["--kind", "goal"]);
        assert_eq!(
            (goals_only["goals"].as_u64(), goals_only["plans"].as_u64()),
            (Some(60), Some(0))
        );
        let couple_only = only("couple-only", &["--kind", "plan", "--user", "user-couple"]);
        assert_eq!(
            (couple_only["goals"].as_u64(), couple_only["plans"].as_u64()),
            (Some(0), Some(1))
        );
        let category = only("retirement", &["--category", "retirement"]);
        assert_eq!(category["plans"], 0);
        assert!(category["goals"].as_u64().unwrap() > 0);

        // To a precision: every goal scored has its standard error at or below it, with its
        // score and on the goal; scored at fixed paths (the runs before), none is above the
        // binomial bound of those paths either, and each has one.
        let precise = only("precise", &["--kind", "goal", "--precision", "0.01"]);
        assert_eq!(precise["goals"], 60);
        let scored = "FROM rescore_scores s JOIN rescore_runs r ON r.id = s.run_id \
                      WHERE r.run_key = 'precise' AND s.funding_status NOT IN ('invalid', 'past_due')";
        let measured = db.scalar(&format!("SELECT COUNT(*) {scored}"));
        assert!(measured > 30, "{measured} goals measured");
        assert_eq!(
            db.scalar(&format!(
                "SELECT COUNT(*) {scored} AND s.success_standard_error <= 0.01"
            )),
            measured
        );
        assert_eq!(
            db.scalar(
                "SELECT COUNT(*) FROM goals WHERE funding_status NOT IN ('invalid', 'past_due') \
                 AND (success_standard_error IS NULL OR success_standard_error > 0.01)"
            ),
            0
        );
        assert_eq!(
            db.scalar(
                "SELECT COUNT(*) FROM rescore_scores s JOIN rescore_runs r ON r.id = s.run_id \
                 WHERE r.run_key = 'goals-only' AND s.funding_status NOT IN ('invalid', 'past_due') \
                 AND (s.success_standard_error IS NULL OR s.success_standard_error > 0.5 / 17.3)"
            ),
            0
        );

        // The example file imports as it is.
        let out = run_ok(sextant(&db).args(["plans", "import"]).arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/stored-plans.jsonl"),
        ));
        assert_eq!(json_of(&out)["inserted"], 3);
        assert_eq!(db.scalar("SELECT COUNT(*) FROM plans"), 29);

        // Over HTTP: the run's status counts the plans.
        runtime().block_on(async {
            let http = client();
            let server = start_with(&[], &[("DATABASE_URL", &db.url)]);
            let spec = json!({"run_key": "plans-over-http", "paths": 300, "plan_paths": 200,
                              "shard_size": 25, "plan_shard_size": 8, "as_of": AS_OF});
            let created: Value = http
                .post(format!("{}/v1/rescore-runs", server.base))
                .json(&spec)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(
                (
                    created["total_goals"].as_u64(),
                    created["total_plans"].as_u64()
                ),
                (Some(60), Some(29))
            );
            let url = format!("{}/v1/rescore-runs/{}", server.base, created["id"]);
            let mut status = Value::Null;
            for _ in 0..1200 {
                status = get_json(&http, &url).await;
                if status["status"] == "complete" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(status["status"], "complete", "{status}");
            assert_eq!(status["plans_scored"], 29);
            assert_eq!(status["plan_paths"], 200);
            assert_eq!(status["precision"], Value::Null);
            let statuses = status["plans_by_status"].as_object().unwrap();
            assert_eq!(
                statuses.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
                29
            );
            assert_eq!(statuses["invalid"], 1);
            assert_eq!(status["progress"], 1.0);
            let bad = http
                .post(format!("{}/v1/rescore-runs", server.base))
                .json(&json!({"plan_paths": 0}))
                .send()
                .await
                .unwrap();
            assert_eq!(bad.status(), 422);
            let body: Value = bad.json().await.unwrap();
            assert_eq!(body["error"]["field"], "plan_paths");
            let bad = http
                .post(format!("{}/v1/rescore-runs", server.base))
                .json(&json!({"precision": 0.7}))
                .send()
                .await
                .unwrap();
            assert_eq!(bad.status(), 422);
            let body: Value = bad.json().await.unwrap();
            assert_eq!(body["error"]["field"], "precision");
        });
    }
}

#[test]
fn rescore_resumes_after_kill_9_with_every_goal_scored_once() {
    for kind in BOTH {
        let db = Db::new(kind);
        generate(&db, 20_000);
        let flags = ["--paths", "1000", "--shard-size", "500"];
        let mut worker = rescore(&db, "crash", "w1", &flags)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_shards(&db, "crash", 4, &mut worker);
        worker.kill().unwrap(); // SIGKILL
        worker.wait().unwrap();
        let done = db.scalar("SELECT COUNT(*) FROM rescore_shards WHERE status = 'done'");
        assert!(
            done < 40,
            "{kind:?}: the kill came too late to test anything ({done} of 40)"
        );
        let partial = db.scalar("SELECT COUNT(*) FROM rescore_scores");
        assert_eq!(
            partial,
            done * 500,
            "{kind:?}: only whole shards are written"
        );

        // The same worker, restarted: takes its own lease back and finishes.
        let out = run_ok(&mut rescore(&db, "crash", "w1", &flags));
        let report = json_of(&out);
        assert_eq!(
            report["goals"].as_i64().unwrap(),
            20_000 - done * 500,
            "{kind:?}"
        );
        assert_scored_exactly_once(&db, "crash", 20_000, 0);
    }
}

#[test]
fn three_workers_share_a_run_and_one_killed_loses_nothing() {
    for kind in BOTH {
        let db = Db::new(kind);
        generate(&db, 12_000);
        let flags = ["--paths", "1000", "--shard-size", "400", "--lease-s", "2"];
        let mut workers: Vec<Child> = ["a", "b", "c"]
            .iter()
            .map(|name| {
                rescore(&db, "shared", name, &flags)
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        wait_for_shards(&db, "shared", 3, &mut workers[0]);
        workers[1].kill().unwrap();
        workers[1].wait().unwrap();
        // What "b" held when it died: taken over by another once its lease expired.
        let held = runtime().block_on(async {
            let pool = db.pool().await;
            let rows = sqlx::query(
                "SELECT lo, hi FROM rescore_shards WHERE owner = 'b' AND status = 'leased'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows.iter()
                .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1)))
                .collect::<Vec<_>>()
        });
        let mut reports = Vec::new();
        for i in [0, 2] {
            let out = workers[i].wait_with_output_ref();
            reports.push(out);
        }
        assert_scored_exactly_once(&db, "shared", 12_000, 0);
        for (lo, hi) in held {
            let by_b = db.scalar(&format!(
                "SELECT COUNT(*) FROM rescore_scores WHERE worker = 'b' AND goal_id BETWEEN {lo} AND {hi}"
            ));
            assert_eq!(
                by_b, 0,
                "{kind:?}: the dead worker's shard was committed by it"
            );
        }
        let by_survivors: i64 = reports.iter().map(|r| r["goals"].as_i64().unwrap()).sum();
        let by_b = db.scalar("SELECT COUNT(*) FROM rescore_scores WHERE worker = 'b'");
        assert_eq!(by_survivors + by_b, 12_000, "{kind:?}");
        assert!(by_survivors > 0 && reports.iter().all(|r| r["run_complete"] == true));
    }
}

/// `wait_with_output` for a child kept in a vector.
trait WaitJson {
    fn wait_with_output_ref(&mut self) -> Value;
}

impl WaitJson for Child {
    fn wait_with_output_ref(&mut self) -> Value {
        let mut text = String::new();
        use std::io::Read;
        self.stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let status = self.wait().unwrap();
        assert!(status.success());
        serde_json::from_str(&text).unwrap()
    }
}

#[test]
fn a_database_away_at_the_start_is_a_clear_error_after_retries() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["rescore", "--quiet", "--db-retries", "3"])
        .env(
            "DATABASE_URL",
            "postgres://sextant:secret@127.0.0.1:1/nowhere",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("connecting (gave up after 3 tries)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("postgres://sextant:***@127.0.0.1:1/nowhere"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"));
    // Two waits between three tries: 0.25 s and 0.5 s.
    assert!(started.elapsed() >= Duration::from_millis(750));

    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["migrate"])
        .env("DATABASE_URL", "mysql://127.0.0.1/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must start with postgres://"));
}

/// A TCP proxy to PostgreSQL that can be taken down (every connection cut, new ones refused)
/// and brought back on the same port: the database going away mid-run, as the worker sees it.
struct Proxy {
    runtime: tokio::runtime::Runtime,
    address: std::net::SocketAddr,
    upstream: String,
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    fn new(upstream: &str) -> Proxy {
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut proxy = Proxy {
            runtime: runtime(),
            address,
            upstream: upstream.to_string(),
            serving: None,
        };
        proxy.up();
        proxy
    }

    fn up(&mut self) {
        let (address, upstream) = (self.address, self.upstream.clone());
        let listener = self
            .runtime
            .block_on(tokio::net::TcpListener::bind(address))
            .unwrap();
        self.serving = Some(self.runtime.spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let upstream = upstream.clone();
                connections.spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect(upstream).await?;
                    tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await
                });
            }
        }));
    }

    /// Cut every connection and refuse new ones.
    fn down(&mut self) {
        if let Some(serving) = self.serving.take() {
            serving.abort();
            let _ = self.runtime.block_on(serving);
        }
    }
}

#[test]
fn the_database_going_away_mid_run_is_retried_and_nothing_is_half_written() {
    let db = Db::new(Kind::Postgres);
    generate(&db, 8_000);
    // host:port of the server, from the database URL.
    let authority = db.url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let mut proxy = Proxy::new(authority);
    let through_proxy = Db {
        url: db.url.replace(authority, &proxy.address.to_string()),
        postgres_name: None,
        sqlite_file: None,
    };
    let mut worker = rescore(
        &through_proxy,
        "away",
        "w1",
        &["--paths", "1000", "--shard-size", "200"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_shards(&db, "away", 2, &mut worker);
    proxy.down();
    std::thread::sleep(Duration::from_secs(5));
    let scored_while_away = db.scalar("SELECT COUNT(*) FROM rescore_scores");
    proxy.up();
    let mut stderr = String::new();
    use std::io::Read;
    let mut err_pipe = worker.stderr.take().unwrap();
    let report = worker.wait_with_output_ref();
    err_pipe.read_to_string(&mut stderr).unwrap();
    assert!(
        stderr.contains("retrying"),
        "the outage was never met: {stderr}"
    );
    assert!(scored_while_away < 8_000, "the run ended before the outage");
    assert_eq!(report["goals"], 8_000);
    assert_scored_exactly_once(&db, "away", 8_000, 0);
}

/// Poll `url` until its `status` is `want` (within two minutes).
async fn wait_for_status(http: &reqwest::Client, url: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view = get_json(http, url).await;
        if view["status"] == want || Instant::now() > deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issues 11 and 13: two replicas on one database. A job (a goal's, then a plan's) started on
/// replica `a` is followed by SSE on replica `b` (from the store); `a` is killed mid-job; `b`
/// takes the job over once its lease expires and finishes it, and the events followed on `b` end with `done`. The result is the
/// one the request gives anywhere (replayed identically), written once, by `b`.
#[test]
fn a_replica_killed_mid_job_has_its_job_finished_by_another() {
    for kind in BOTH {
        let db = Db::new(kind);
        let env = [("DATABASE_URL", db.url.as_str())];
        let flags = |name| {
            [
                "--replica",
                name,
                "--job-lease-s",
                "2",
                "--max-path-steps",
                "10000000000",
            ]
        };
        // 4,000,000 paths × 600 months of a goal, and 250,000 paths of a couple's plan (to
        // age 120 at most): seconds of work on any machine.
        let mut goal = example("accumulation-30y.json");
        goal["goal"]["horizon_months"] = json!(600);
        goal["options"] = json!({"paths": 4_000_000, "seed": 5, "async": true});
        let mut plan = example("plan-couple.json");
        plan["options"] = json!({"paths": 250_000, "seed": 5, "async": true});
        for (collection, request) in [("simulations", goal), ("plans", plan)] {
            let mut a = start_with(&flags("a"), &env);
            let b = start_with(&flags("b"), &env);
            runtime().block_on(async {
                let http = client();
                let accepted =
                    post_json(&http, format!("{}/v1/{collection}", a.base), &request).await;
                let id = accepted["id"].as_str().expect("a job id").to_string();
                let on_b = format!("{}/v1/{collection}/{id}", b.base);
                let following = tokio::spawn({
                    let (http, url) = (http.clone(), format!("{on_b}/events"));
                    async move { get_text(&http, url).await }
                });
                // Killed once it has stored some progress.
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let view = get_json(&http, &on_b).await;
                    assert_ne!(
                        view["status"], "complete",
                        "{kind:?}: finished before the kill"
                    );
                    if view["progress"].as_f64().unwrap() > 0.0 {
                        break;
                    }
                    assert!(Instant::now() < deadline, "{kind:?}: no progress: {view}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                a.child.kill().unwrap();
                a.child.wait().unwrap();
                let done = wait_for_status(&http, &on_b, "complete").await;
                assert_eq!(done["status"], "complete", "{kind:?}: {done}");
                let events = tokio::time::timeout(Duration::from_secs(60), following)
                    .await
                    .expect("the events on b end")
                    .unwrap();
                let names: Vec<&str> = events
                    .lines()
                    .filter_map(|l| l.strip_prefix("event: "))
                    .collect();
                assert_eq!(names.first(), Some(&"queued"), "{kind:?}: {events}");
                assert_eq!(names.last(), Some(&"done"), "{kind:?}: {names:?}");
                assert!(names.contains(&"result"), "{kind:?}: {names:?}");
                let replay = post_json(&http, format!("{on_b}/replay"), &json!({})).await;
                assert_eq!(replay["identical"], true, "{kind:?} {collection}");
            });
        }
        assert_eq!(
            db.scalar(
                "SELECT COUNT(*) FROM simulations WHERE worker = 'b' AND status = 'complete'"
            ),
            2
        );
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM simulations WHERE kind = 'plan'"),
            1
        );
    }
}

/// Issue 11: the same re-scoring run asked for three times, of two replicas: every goal is
/// scored exactly once and no shard is ever leased twice (each computed once).
#[test]
fn repeated_rescore_requests_to_two_replicas_score_every_goal_once() {
    for kind in BOTH {
        let db = Db::new(kind);
        generate(&db, 2_000);
        let env = [("DATABASE_URL", db.url.as_str())];
        let a = start_with(&["--replica", "a"], &env);
        let b = start_with(&["--replica", "b"], &env);
        let spec = json!({"run_key": "twice", "as_of": AS_OF, "paths": 2000, "shard_size": 100});
        runtime().block_on(async {
            let http = client();
            let mut ids = Vec::new();
            for base in [&a.base, &a.base, &b.base] {
                let created = post_json(&http, format!("{base}/v1/rescore-runs"), &spec).await;
                ids.push(created["id"].clone());
            }
            assert!(ids.iter().all(|id| *id == ids[0]), "one run: {ids:?}");
            let status = wait_for_status(
                &http,
                &format!("{}/v1/rescore-runs/{}", b.base, ids[0]),
                "complete",
            )
            .await;
            assert_eq!(status["goals_scored"], 2_000, "{kind:?}: {status}");
        });
        assert_scored_exactly_once(&db, "twice", 2_000, 0);
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM rescore_shards WHERE attempts <> 1"),
            0,
            "{kind:?}: a shard was leased more than once"
        );
    }
}

/// Issue 11: `/readyz` answers 503 naming the database while it is unreachable (every
/// connection cut), 200 again once it is back, while `/healthz` stays 200; a job stored
/// before the outage is still there after it.
#[test]
fn readyz_follows_the_database() {
    let db = Db::new(Kind::Postgres);
    let authority = db.url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let mut proxy = Proxy::new(authority);
    let through_proxy = db.url.replace(authority, &proxy.address.to_string());
    let server = start_with(
        &["--db-retries", "2"],
        &[("DATABASE_URL", through_proxy.as_str())],
    );
    let ready = format!("{}/readyz", server.base);
    let probe = |url: String| {
        runtime().block_on(async move {
            let r = client().get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    assert_eq!(probe(ready.clone()).0, 200);
    let mut request = example("accumulation-30y.json");
    request["options"] = json!({"paths": 1000, "seed": 3, "async": true});
    let id = runtime().block_on(async {
        let accepted = post_json(
            &client(),
            format!("{}/v1/simulations", server.base),
            &request,
        )
        .await;
        let id = accepted["id"].as_str().unwrap().to_string();
        let url = format!("{}/v1/simulations/{id}", server.base);
        assert_eq!(
            wait_for_status(&client(), &url, "complete").await["status"],
            "complete"
        );
        id
    });
    proxy.down();
    let (status, body) = probe(ready.clone());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database"), "{body}");
    assert_eq!(probe(format!("{}/healthz", server.base)).0, 200);
    proxy.up();
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe(ready.clone()).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready again after the outage"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, body) = probe(format!("{}/v1/simulations/{id}", server.base));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"complete\""), "{body}");
}

/// Issue 11: SIGTERM while the service re-scores: `/readyz` turns 503 during `--drain-s`
/// while requests are still answered, the worker stops and gives its shard back (none is left
/// leased), the process exits, and a worker started after finishes the run with every goal
/// scored exactly once.
#[test]
fn a_draining_replica_gives_its_rescoring_back() {
    let db = Db::new(Kind::Postgres);
    generate(&db, 6_000);
    let env = [("DATABASE_URL", db.url.as_str())];
    let mut server = start_with(
        &[
            "--drain-s",
            "2",
            "--shutdown-grace-s",
            "1",
            "--max-path-steps",
            "10000000000",
        ],
        &env,
    );
    let spec = json!({"run_key": "drained", "as_of": AS_OF, "paths": 4000, "shard_size": 200});
    runtime().block_on(async {
        let created = post_json(&client(), format!("{}/v1/rescore-runs", server.base), &spec).await;
        assert_eq!(created["total_goals"], 6_000, "{created}");
    });
    wait_for_shards(&db, "drained", 1, &mut server.child);
    // A job still running when the process ends (here, seconds of work) is given back.
    let mut long = example("accumulation-30y.json");
    long["goal"]["horizon_months"] = json!(600);
    long["options"] = json!({"paths": 8_000_000, "seed": 3, "async": true});
    runtime().block_on(async {
        let accepted = post_json(&client(), format!("{}/v1/simulations", server.base), &long).await;
        assert!(accepted["id"].is_string(), "{accepted}");
    });
    // SAFETY: signals the child this test started.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    runtime().block_on(async {
        let http = client();
        let r = http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["reason"], "draining", "{body}");
        let answered = post_json(
            &http,
            format!("{}/v1/simulations", server.base),
            &example("accumulation-30y.json"),
        )
        .await;
        assert!(answered["success_probability"].is_number(), "{answered}");
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM rescore_shards WHERE status = 'leased'"),
        0
    );
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM simulations WHERE status IN ('queued', 'running') \
             AND lease_until <> 0"
        ),
        0,
        "an unfinished job kept its lease past the shutdown"
    );
    assert!(db.scalar("SELECT COUNT(*) FROM rescore_shards WHERE status = 'pending'") > 0);
    let out = run_ok(&mut rescore(&db, "drained", "after", &["--paths", "4000"]));
    assert_eq!(json_of(&out)["run_complete"], true);
    assert_scored_exactly_once(&db, "drained", 6_000, 0);
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until something listens on `port`.
fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Redis server of the test's own (the machine's stays up), stopped when dropped.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        wait_for_port(port);
        OwnRedis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 11: Redis going away while the service answers: every request is still answered,
/// and repeated requests are answered from memory meanwhile (a hit without Redis).
#[test]
fn the_cache_falls_back_to_memory_when_redis_goes_away() {
    let mut redis = OwnRedis::start();
    let db = Db::new(Kind::Sqlite);
    let server = start_with(
        &[],
        &[
            ("DATABASE_URL", db.url.as_str()),
            ("REDIS_URL", redis.url.as_str()),
        ],
    );
    runtime().block_on(async {
        let http = client();
        let url = format!("{}/v1/simulations", server.base);
        let metrics = || async { get_text(&client(), format!("{}/metrics", server.base)).await };
        let mut request = example("accumulation-30y.json");
        request["options"] = json!({"paths": 2000, "seed": 11});
        let first = post_json(&http, &url, &request).await;
        assert!(first["success_probability"].is_number(), "{first}");
        assert_eq!(post_json(&http, &url, &request).await, first);
        let page = metrics().await;
        assert_eq!(
            counter(&page, "sextant_cache_total", "\"hit\""),
            1.0,
            "{page}"
        );

        redis.child.kill().unwrap();
        redis.child.wait().unwrap();
        request["options"]["seed"] = json!(12);
        let away = post_json(&http, &url, &request).await;
        assert!(away["success_probability"].is_number(), "{away}");
        assert_eq!(post_json(&http, &url, &request).await, away);
        let page = metrics().await;
        assert_eq!(
            counter(&page, "sextant_cache_total", "\"hit\""),
            2.0,
            "{page}"
        );
        assert!(
            counter(&page, "sextant_cache_errors_total", "") > 0.0,
            "{page}"
        );
    });
}

/// A PostgreSQL server of the test's own (initdb and pg_ctl on a temporary folder and port),
/// so that it can be restarted; stopped and removed when dropped.
struct OwnPostgres {
    dir: std::path::PathBuf,
    port: u16,
}

impl OwnPostgres {
    /// `program` with `args`, as the `postgres` user when this runs as root (initdb refuses
    /// root).
    fn command(program: &str, args: &[&str]) -> Output {
        // SAFETY: getuid has no preconditions.
        let root = unsafe { libc::getuid() } == 0;
        let out = if root {
            Command::new("runuser")
                .args(["-u", "postgres", "--", program])
                .args(args)
                .output()
        } else {
            Command::new(program).args(args).output()
        }
        .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn start() -> OwnPostgres {
        let dir = temp_path("pg");
        std::fs::create_dir_all(&dir).unwrap();
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            let owned = Command::new("chown")
                .args(["-R", "postgres", dir.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(owned.success());
        }
        let data = dir.join("data");
        Self::command(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        let own = OwnPostgres {
            dir,
            port: free_port(),
        };
        own.pg_ctl("start");
        own
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.display()
        );
        Self::command(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-m",
                "fast",
                "-w",
                action,
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", "pg_ctl", "-D"])
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = Command::new("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Issue 11: PostgreSQL restarted while the service answers and while it re-scores: the
/// re-score finishes with every goal scored exactly once, a job stored before is still there,
/// and jobs are taken and finished again after the restart.
#[test]
fn postgres_restarted_under_the_service_loses_nothing() {
    let postgres = OwnPostgres::start();
    let db = Db {
        url: postgres.url(),
        postgres_name: None,
        sqlite_file: None,
    };
    generate(&db, 6_000);
    let mut server = start_with(&[], &[("DATABASE_URL", db.url.as_str())]);
    let mut request = example("accumulation-30y.json");
    request["options"] = json!({"paths": 1000, "seed": 21, "async": true});
    let http = client();
    let job = |request: Value| {
        let (http, base) = (http.clone(), server.base.clone());
        runtime().block_on(async move {
            let accepted = post_json(&http, format!("{base}/v1/simulations"), &request).await;
            let url = format!("{base}/v1/simulations/{}", accepted["id"].as_str().unwrap());
            wait_for_status(&http, &url, "complete").await
        })
    };
    let before = job(request.clone());
    assert_eq!(before["status"], "complete", "{before}");
    let spec = json!({"run_key": "restart", "as_of": AS_OF, "paths": 4000, "shard_size": 200});
    let run = runtime().block_on(async {
        let created = post_json(&http, format!("{}/v1/rescore-runs", server.base), &spec).await;
        assert_eq!(created["total_goals"], 6_000, "{created}");
        created["id"].clone()
    });
    wait_for_shards(&db, "restart", 2, &mut server.child);
    postgres.pg_ctl("restart");
    request["options"]["seed"] = json!(22);
    let after = job(request);
    assert_eq!(after["status"], "complete", "{after}");
    runtime().block_on(async {
        let status = wait_for_status(
            &http,
            &format!("{}/v1/rescore-runs/{run}", server.base),
            "complete",
        )
        .await;
        assert_eq!(status["goals_scored"], 6_000, "{status}");
        let again = get_json(
            &http,
            format!(
                "{}/v1/simulations/{}",
                server.base,
                before["id"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(again["result"], before["result"]);
    });
    assert_scored_exactly_once(&db, "restart", 6_000, 0);
}

/// A replica's budget holds even for an answer another replica (with a higher budget) left in
/// the shared cache: the request is counted before the cache is read.
#[test]
fn a_cached_answer_does_not_bypass_a_lower_budget() {
    let mut redis = OwnRedis::start();
    let db = Db::new(Kind::Sqlite);
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("REDIS_URL", redis.url.as_str()),
    ];
    let generous = start_with(&[], &env);
    let strict = start_with(&["--max-path-steps", "1000000"], &env);
    let mut request = example("accumulation-30y.json");
    request["options"] = json!({"paths": 20_000, "seed": 77});
    runtime().block_on(async {
        let http = client();
        let answered =
            post_json(&http, format!("{}/v1/simulations", generous.base), &request).await;
        assert!(answered["success_probability"].is_number(), "{answered}");
        let (status, body) =
            common::post_for_status(&http, format!("{}/v1/simulations", strict.base), &request)
                .await;
        assert_eq!(status, 422);
        assert_eq!(body["error"]["field"], "options.paths", "{body}");
    });
    let _ = redis.child.kill();
}

#[test]
fn histories_are_imported_listed_and_named_by_cli_requests_on_both_databases() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let csv = repo.join("examples/history-synthetic.csv");
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join("examples/bootstrap.json")).unwrap(),
    )
    .unwrap();
    for kind in BOTH {
        let db = Db::new(kind);
        let out = run_ok(
            sextant(&db)
                .args(["histories", "import"])
                .arg(&csv)
                .args(["--name", "synthetic"]),
        );
        let stored = json_of(&out);
        assert_eq!(stored["months"], 600, "{kind:?}");
        assert_eq!(stored["inflation"], true);
        assert_eq!(stored["owner"], "anonymous");
        // The JSON form, under another owner.
        let json_file = temp_path("history.json");
        std::fs::write(
            &json_file,
            example["market"]["model"]["history"].to_string(),
        )
        .unwrap();
        run_ok(
            sextant(&db)
                .args(["histories", "import"])
                .arg(&json_file)
                .args(["--name", "inline", "--owner", "key:alice"]),
        );
        // A name is never stored twice; the first stays.
        let out = sextant(&db)
            .args(["histories", "import"])
            .arg(&csv)
            .args(["--name", "synthetic"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{kind:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("never replaced"));
        assert_eq!(db.scalar("SELECT COUNT(*) FROM histories"), 2);
        let listed = json_of(&run_ok(sextant(&db).args(["histories", "list"])));
        assert_eq!(listed["histories"].as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed["histories"][0]["name"], "synthetic");
        assert_eq!(
            listed["histories"][0]["assets"],
            serde_json::json!(["stocks", "bonds"])
        );
        // A bad CSV names its line and column, exits 2, and stores nothing.
        let bad = temp_path("bad.csv");
        std::fs::write(&bad, "stocks,bonds\n0.01,0.02\n0.01,x\n").unwrap();
        let out = sextant(&db)
            .args(["histories", "import"])
            .arg(&bad)
            .args(["--name", "bad"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("csv line 3, column \"bonds\""), "{stderr}");
        // A request naming the history reads it from the same database: the numbers of the
        // same request with the history inline (whose months are the CSV's).
        let mut named = example.clone();
        named["market"]["model"]["history"] = serde_json::json!("synthetic");
        named["options"]["paths"] = serde_json::json!(2000);
        let mut inline = example.clone();
        inline["options"]["paths"] = serde_json::json!(2000);
        let run = |request: &Value, owner: Option<&str>| {
            let file = temp_path("request.json");
            std::fs::write(&file, request.to_string()).unwrap();
            let mut command = sextant(&db);
            command.args(["--backend", "cpu", "simulate"]).arg(&file);
            if let Some(owner) = owner {
                command.env("SEXTANT_OWNER", owner);
            }
            let out = command.output().unwrap();
            let _ = std::fs::remove_file(&file);
            out
        };
        let by_name = json_of(&run(&named, None));
        let by_value = json_of(&run(&inline, None));
        assert_eq!(
            by_name["success_probability"],
            by_value["success_probability"]
        );
        assert_eq!(by_name["real"], by_value["real"]);
        // Another owner has no history of that name: exit 2 naming the field.
        let out = run(&named, Some("key:alice"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("market.model.history: no stored history is named \"synthetic\""),
            "{stderr}"
        );
        let _ = std::fs::remove_file(&json_file);
        let _ = std::fs::remove_file(&bad);
    }
}
