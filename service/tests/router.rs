//! The HTTP router in-process (`tower::ServiceExt::oneshot`, no socket, no child process): the
//! one path request → parse → validate → budget → engine → response, and its errors, where a
//! real socket adds nothing. What needs one stays in `cli/tests/` against `sextant serve`:
//! signals and draining, TLS, the gRPC and MCP clients, bodies cut off mid-upload, several
//! replicas sharing a database, the database going away.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use sextant_engine::{CpuBackend, Device, Engine, GoalRequest};
use sextant_service::{http_app, Operation, ServeArgs};
use tower::ServiceExt;

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The service with `flags` (as `sextant serve` takes them) on a fresh SQLite file.
async fn app(flags: &[&str]) -> Router {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("sextant-router-{}-{n}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let mut all = vec!["--database-url", &url];
    all.extend_from_slice(flags);
    let args = ServeArgs::from_flags(all).unwrap();
    http_app(Engine::new(Device::Cpu(CpuBackend::new())), &args)
        .await
        .unwrap()
}

/// One request through the router: the status, the headers and the body as JSON (or as a JSON
/// string when it is not JSON).
async fn send(app: &Router, request: Request<Body>) -> (StatusCode, header::HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (parts.status, parts.headers, body)
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_simulation_answers_what_the_engine_computes_with_a_request_id() {
    let app = app(&[]).await;
    let mut request = example("accumulation-30y.json");
    request["options"]["paths"] = json!(3000);
    let (status, headers, body) = send(&app, post("/v1/simulations", request.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.contains_key("x-request-id"), "{headers:?}");
    // The engine called directly, on the same backend and seed: the same numbers, exactly.
    let goal: GoalRequest = serde_json::from_value(request).unwrap();
    let direct = Engine::new(Device::Cpu(CpuBackend::new()))
        .simulate(&goal)
        .unwrap();
    let direct = serde_json::to_value(direct).unwrap();
    for field in [
        "success_probability",
        "terminal",
        "yearly",
        "depletion",
        "shortfall",
    ] {
        assert_eq!(body[field], direct[field], "{field}");
    }
    assert!(body["success_probability"].as_f64().is_some(), "{body}");
}

#[tokio::test]
async fn bad_bodies_get_a_4xx_naming_the_problem() {
    let app = app(&[]).await;
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let huge = json!({"goal": {"horizon_months": 12}, "market": {"expected_return": 0.05, "volatility": 0.1},
                      "options": {"percentiles": vec![50.0; 5000]}})
    .to_string();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (br#"{"goal": {"horizon_months": "ten"}, "market": {}}"#.to_vec(), "goal.horizon_months"),
        (br#"{"market": {"expected_return": 0.05, "volatility": 0.1}}"#.to_vec(), "request"),
        (br#"{"goal": {"horizon_months": 12}, "market": {"expected_return": NaN, "volatility": 0.1}}"#.to_vec(), "market.expected_return"),
        (br#"{"goal": {"horizon_months": 0}, "market": {"expected_return": 0.05, "volatility": 0.1}}"#.to_vec(), "goal.horizon_months"),
        (br#"{"goal": {"horizon_months": 12, "oops": 1}, "market": {"expected_return": 0.05, "volatility": 0.1}}"#.to_vec(), "goal"),
        (br#"{"goal": {"horizon_months": 12}, "market": {"expected_return": 0.05, "volatility": 0.1}, "options": {"async": "yes"}}"#.to_vec(), "options.async"),
        (deep.into_bytes(), "request"),
        (huge.into_bytes(), "options.percentiles"),
        (vec![0xff, 0xfe, b'{', b'}'], "request"),
        (b"".to_vec(), "request"),
    ];
    for (body, field) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(80)
            .collect::<String>();
        let (status, _, error) = send(&app, post("/v1/simulations", body)).await;
        assert!(status.is_client_error(), "{status} for {shown}: {error}");
        let named = error["error"]["field"].as_str().unwrap_or("");
        assert!(named.starts_with(field), "want {field}, got {error}");
    }
    // Malformed (it does not parse) is 400; parsed but out of bounds is 422.
    let (status, _, _) = send(&app, post("/v1/simulations", r#"{"goal": 1}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut zero = example("accumulation-30y.json");
    zero["goal"]["horizon_months"] = json!(0);
    let (status, _, error) = send(&app, post("/v1/simulations", zero.to_string())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
}

#[tokio::test]
async fn every_engine_operation_has_its_route_and_names_a_bad_field() {
    let app = app(&[]).await;
    for operation in Operation::ALL {
        let (status, _, error) = send(&app, post(operation.path(), "{}")).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{operation:?} at {}: {status} {error}",
            operation.path()
        );
        assert!(
            error["error"]["field"].is_string(),
            "{operation:?}: {error}"
        );
    }
}

#[tokio::test]
async fn work_over_the_cap_is_refused_before_it_runs() {
    let app = app(&["--max-path-steps", "1000000"]).await;
    let mut request = example("accumulation-30y.json");
    request["options"]["paths"] = json!(10_000); // × 360 months = 3.6 × 10⁶ path-steps
    let (status, _, error) = send(&app, post("/v1/simulations", request.to_string())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "options.paths", "{error}");
    request["options"]["paths"] = json!(2_000); // 7.2 × 10⁵: within
    let (status, _, body) = send(&app, post("/v1/simulations", request.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn keys_guard_v1_but_not_health_metrics_or_the_docs() {
    let app = app(&["--api-key", "router-key"]).await;
    let (status, _, error) = send(&app, get("/v1/tools")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{error}");
    let wrong = Request::get("/v1/tools")
        .header(header::AUTHORIZATION, "Bearer not-the-key")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
    let right = Request::get("/v1/tools")
        .header(header::AUTHORIZATION, "Bearer router-key")
        .body(Body::empty())
        .unwrap();
    let (status, _, catalogue) = send(&app, right).await;
    assert_eq!(status, StatusCode::OK, "{catalogue}");
    let names: Vec<&str> = catalogue["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"simulate_goal"), "{names:?}");
    for open in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(send(&app, get(open)).await.0, StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_and_an_unknown_route_answer_in_the_error_shape() {
    let app = app(&["--max-body-bytes", "64"]).await;
    let body = example("accumulation-30y.json").to_string();
    let (status, _, error) = send(&app, post("/v1/simulations", body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["error"]["code"], "too_large", "{error}");
    assert_eq!(error["error"]["field"], "request", "{error}");
    let (status, _, error) = send(&app, get("/v1/nowhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error["error"]["code"].is_string(), "{error}");
}

#[tokio::test]
async fn a_job_is_read_back_by_its_caller_and_not_found_by_another() {
    let app = app(&["--api-key", "alice-key", "--api-key", "bob-key"]).await;
    let mut request = example("accumulation-30y.json");
    request["options"]["paths"] = json!(1000);
    let (status, _, direct) = send(
        &app,
        as_caller("alice-key", post("/v1/simulations", request.to_string())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{direct}");
    request["options"]["async"] = json!(true);
    let (status, _, job) = send(
        &app,
        as_caller("alice-key", post("/v1/simulations", request.to_string())),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let path = job["self"].as_str().unwrap().to_string();
    let stored = finished(&app, "alice-key", &path).await;
    // The job computed what the synchronous call did, from the same seed.
    assert_eq!(
        stored["result"]["success_probability"], direct["success_probability"],
        "{stored}"
    );
    let (status, _, error) = send(&app, as_caller("bob-key", get(&path))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let (_, _, listed) = send(&app, as_caller("bob-key", get("/v1/simulations"))).await;
    assert_eq!(listed["simulations"], json!([]), "{listed}");
}

/// `request` with `Authorization: Bearer key`.
fn as_caller(key: &str, request: Request<Body>) -> Request<Body> {
    let (mut parts, body) = request.into_parts();
    let bearer = format!("Bearer {key}").parse().unwrap();
    parts.headers.insert(header::AUTHORIZATION, bearer);
    Request::from_parts(parts, body)
}

/// The job at `path`, read as `key`'s caller until it is complete (it runs on the service's
/// own tasks: a bounded wait of 30 s); a failed job fails the test.
async fn finished(app: &Router, key: &str, path: &str) -> Value {
    for _ in 0..600 {
        let (status, _, record) = send(app, as_caller(key, get(path))).await;
        assert_eq!(status, StatusCode::OK, "{record}");
        assert_ne!(record["status"], "failed", "{record}");
        if record["status"] == "complete" {
            return record;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} did not complete in 30 s");
}

/// `examples/bootstrap.json` with `history` in place of its inline history, 2,000 paths.
fn bootstrap_goal(history: Value) -> Value {
    let mut request = example("bootstrap.json");
    request["market"]["model"]["history"] = history;
    request["options"]["paths"] = json!(2000);
    request
}

#[tokio::test]
async fn histories_are_stored_listed_read_and_named_by_requests_of_their_caller_only() {
    let app = app(&["--api-key", "alice-key", "--api-key", "bob-key"]).await;
    let csv = std::fs::read_to_string(repo().join("examples/history-synthetic.csv")).unwrap();
    let csv_post = |name: &str| {
        Request::post(format!("/v1/histories?name={name}"))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(csv.clone()))
            .unwrap()
    };
    // The CSV form: 600 months of two assets with inflation.
    let (status, _, stored) = send(&app, as_caller("alice-key", csv_post("synthetic"))).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(stored["assets"], json!(["stocks", "bonds"]));
    assert_eq!(stored["months"], 600);
    assert_eq!(stored["inflation"], true);
    // A name is its caller's for good: storing it again is a conflict, the first kept.
    let (status, _, error) = send(&app, as_caller("alice-key", csv_post("synthetic"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["error"]["field"], "name");
    // The JSON form, read back as it was stored.
    let inline = example("bootstrap.json")["market"]["model"]["history"].clone();
    let upload = json!({"name": "inline-copy", "history": inline});
    let (status, _, _) = send(
        &app,
        as_caller("alice-key", post("/v1/histories", upload.to_string())),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, read) = send(
        &app,
        as_caller("alice-key", get("/v1/histories/inline-copy")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["history"], inline);
    let (_, _, listed) = send(&app, as_caller("alice-key", get("/v1/histories"))).await;
    let names: Vec<&str> = listed["histories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["inline-copy", "synthetic"], "{listed}");

    // A request naming the history computes what the same request with it inline does.
    let (status, _, named) = send(
        &app,
        as_caller(
            "alice-key",
            post(
                "/v1/simulations",
                bootstrap_goal(json!("inline-copy")).to_string(),
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{named}");
    let (_, _, inlined) = send(
        &app,
        as_caller(
            "alice-key",
            post(
                "/v1/simulations",
                bootstrap_goal(inline.clone()).to_string(),
            ),
        ),
    )
    .await;
    assert_eq!(named["success_probability"], inlined["success_probability"]);
    assert_eq!(named["terminal"], inlined["terminal"]);
    assert!(
        named["real"]["terminal"]["mean"].as_f64().unwrap() > 0.0,
        "{named}"
    );
    // The solvers and the tools resolve it too; the summary names the history.
    let (status, _, solved) = send(
        &app,
        as_caller(
            "alice-key",
            post(
                "/v1/solve/sustainable-withdrawal",
                bootstrap_goal(json!("synthetic")).to_string(),
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{solved}");
    let (status, _, tool) = send(
        &app,
        as_caller(
            "alice-key",
            post(
                "/v1/tools/simulate_goal",
                bootstrap_goal(json!("synthetic")).to_string(),
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tool}");
    let summary = tool["summary"].as_str().unwrap();
    assert!(
        summary
            .contains("resampled from the history \"synthetic\" in blocks of 60 months on average")
            && summary.contains("the history's inflation")
            && summary.contains("in today's money"),
        "{summary}"
    );
    // A what-if names one history in its base and another in a variant's patch (which leaves
    // the model's kind out): the variant computes what a request naming it directly does.
    let mut what_if = bootstrap_goal(json!("synthetic"));
    what_if["variants"] = json!([{"name": "the other history",
                                  "market": {"model": {"history": "inline-copy"}}}]);
    let (status, _, scenarios) = send(
        &app,
        as_caller("alice-key", post("/v1/what-if", what_if.to_string())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{scenarios}");
    assert_eq!(
        scenarios["variants"][0]["result"]["success_probability"], named["success_probability"],
        "{scenarios}"
    );
    // An asynchronous job stores the request with its history inline: it replays alone.
    let mut job_request = bootstrap_goal(json!("synthetic"));
    job_request["options"]["async"] = json!(true);
    let (status, _, job) = send(
        &app,
        as_caller(
            "alice-key",
            post("/v1/simulations", job_request.to_string()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let path = job["self"].as_str().unwrap().to_string();
    finished(&app, "alice-key", &path).await;
    // A replay runs the stored request as it is, resolving no names: it holds the history.
    let replay = Request::post(format!("{path}/replay"))
        .body(Body::empty())
        .unwrap();
    let (status, _, replayed) = send(&app, as_caller("alice-key", replay)).await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["identical"], true, "{replayed}");

    // Plans bootstrap from a named history too, synchronously and as jobs; a history that
    // carries inflation drives the plan's index (and is refused beside market.inflation, by
    // name).
    let mut plain = inline.clone();
    for month in plain["months"].as_array_mut().unwrap() {
        month.as_object_mut().unwrap().remove("inflation");
    }
    let upload = json!({"name": "plain", "history": plain});
    let (status, _, _) = send(
        &app,
        as_caller("alice-key", post("/v1/histories", upload.to_string())),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let plan_of = |history: Value| {
        let mut plan = example("plan-couple.json");
        plan["market"] = json!({"weights": [0.6, 0.4], "inflation": 0.025,
                                "model": {"kind": "bootstrap", "history": history,
                                          "block_months": 24}});
        plan["options"]["paths"] = json!(1000);
        plan
    };
    let (status, _, named_plan) = send(
        &app,
        as_caller(
            "alice-key",
            post("/v1/plans", plan_of(json!("plain")).to_string()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{named_plan}");
    let (_, _, inlined_plan) = send(
        &app,
        as_caller("alice-key", post("/v1/plans", plan_of(plain).to_string())),
    )
    .await;
    assert_eq!(named_plan["estate"], inlined_plan["estate"]);
    let mut plan_job = plan_of(json!("plain"));
    plan_job["options"]["async"] = json!(true);
    let (status, _, job) = send(
        &app,
        as_caller("alice-key", post("/v1/plans", plan_job.to_string())),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let plan_path = job["self"].as_str().unwrap().to_string();
    let record = finished(&app, "alice-key", &plan_path).await;
    assert_eq!(record["result"]["estate"], named_plan["estate"], "{record}");
    let (status, _, error) = send(
        &app,
        as_caller(
            "alice-key",
            post("/v1/plans", plan_of(json!("synthetic")).to_string()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "market.inflation");
    let mut indexed = plan_of(json!("synthetic"));
    indexed["market"]
        .as_object_mut()
        .unwrap()
        .remove("inflation");
    let (status, _, indexed_plan) = send(
        &app,
        as_caller("alice-key", post("/v1/plans", indexed.to_string())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{indexed_plan}");
    assert_ne!(indexed_plan["estate"], named_plan["estate"]);

    // Another caller sees none of them, and cannot name them.
    let (_, _, listed) = send(&app, as_caller("bob-key", get("/v1/histories"))).await;
    assert_eq!(listed["histories"], json!([]), "{listed}");
    let (status, _, _) = send(&app, as_caller("bob-key", get("/v1/histories/synthetic"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, error) = send(
        &app,
        as_caller(
            "bob-key",
            post(
                "/v1/simulations",
                bootstrap_goal(json!("synthetic")).to_string(),
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "market.model.history");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"synthetic\""),
        "{error}"
    );
    // Bob may store his own under the same name.
    let (status, _, _) = send(&app, as_caller("bob-key", csv_post("synthetic"))).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_bad_history_is_refused_naming_its_line_or_field() {
    let app = app(&[]).await;
    let csv = |name: &str, text: &str| {
        Request::post(format!("/v1/histories?name={name}"))
            .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
            .body(Body::from(text.to_string()))
            .unwrap()
    };
    for (request, status, field) in [
        (csv("h", "stocks,bonds\n0.01,0.02\n0.01,oops\n"), StatusCode::UNPROCESSABLE_ENTITY, "csv line 3, column \"bonds\""),
        (csv("h", "stocks\n-1.5\n"), StatusCode::UNPROCESSABLE_ENTITY, "history.months[0].returns[0]"),
        (csv("a%20b", "stocks\n0.01\n"), StatusCode::UNPROCESSABLE_ENTITY, "name"),
        (
            Request::post("/v1/histories")
                .header(header::CONTENT_TYPE, "text/csv")
                .body(Body::from("stocks\n0.01\n"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            post("/v1/histories", json!({"name": "h", "history": {"assets": ["a"], "months": [{"returns": [0.01], "inflaton": 0.1}]}}).to_string()),
            StatusCode::BAD_REQUEST,
            "history.months[0]",
        ),
        (
            post("/v1/histories", json!({"name": "h", "history": {"assets": ["a", "a"], "months": [{"returns": [0.01, 0.0]}]}}).to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "history.assets[1]",
        ),
    ] {
        let (got, _, error) = send(&app, request).await;
        assert_eq!(got, status, "{error}");
        assert!(
            error["error"]["field"].as_str().unwrap().starts_with(field),
            "{field}: {error}"
        );
    }
    // Nothing was stored.
    let (_, _, listed) = send(&app, get("/v1/histories")).await;
    assert_eq!(listed["histories"], json!([]));
}

/// Per-asset paths (docs/model.md §4.5) over HTTP: the simulation reports its rebalancing as the
/// engine computes it, a what-if compares rules side by side, and the tool's summary says how
/// the portfolio was held.
#[tokio::test]
async fn rebalancing_rules_are_simulated_compared_and_summarised() {
    let app = app(&[]).await;
    let mut request = example("rebalancing.json");
    request["options"]["paths"] = json!(3000);
    let (status, _, body) = send(&app, post("/v1/simulations", request.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let goal: GoalRequest = serde_json::from_value(request.clone()).unwrap();
    let direct = Engine::new(Device::Cpu(CpuBackend::new()))
        .simulate(&goal)
        .unwrap();
    assert_eq!(
        body["rebalancing"],
        serde_json::to_value(&direct.rebalancing).unwrap()
    );
    assert_eq!(body["rebalancing"]["rule"], "annual");
    // What-if: the same goal never rebalanced, and rebalanced monthly (one portfolio).
    let mut what_if = request.clone();
    what_if["variants"] = json!([{"name": "never", "market": {"rebalancing": "none"}},
                                 {"name": "monthly", "market": {"rebalancing": null}}]);
    let (status, _, body) = send(&app, post("/v1/what-if", what_if.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["variants"].as_array().unwrap();
    assert_eq!(results[0]["result"]["rebalancing"]["mean_rebalances"], 0.0);
    assert!(results[1]["result"].get("rebalancing").is_none(), "{body}");
    let (status, _, tool) = send(
        &app,
        post(
            "/v1/tools/simulate_goal",
            example("rebalancing.json").to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tool}");
    let summary = tool["summary"].as_str().unwrap();
    assert!(
        summary.contains("holding 2 assets rebalanced once a year (26.2 times, trading 2.6% of the portfolio a year on average)"),
        "{summary}"
    );
    // A household plan holds the same two assets: its rebalancing is the engine's, and the
    // plan tool's summary says how its portfolio was held.
    let mut plan = example("plan-couple.json");
    plan["market"] = example("rebalancing.json")["market"].clone();
    plan["options"]["paths"] = json!(1000);
    let (status, _, body) = send(&app, post("/v1/plans", plan.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let direct = Engine::new(Device::Cpu(CpuBackend::new()))
        .plan(&serde_json::from_value(plan.clone()).unwrap())
        .unwrap();
    assert_eq!(
        body["rebalancing"],
        serde_json::to_value(&direct.rebalancing).unwrap()
    );
    assert!(
        body["rebalancing"]["mean_rebalances"].as_f64().unwrap() > 1.0,
        "{body}"
    );
    let (status, _, tool) = send(&app, post("/v1/tools/plan_household", plan.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{tool}");
    let summary = tool["summary"].as_str().unwrap();
    assert!(
        summary.contains("holding 2 assets rebalanced once a year ("),
        "{summary}"
    );
    // A band out of bounds is refused naming the field.
    let mut bad = example("rebalancing.json");
    bad["market"]["rebalancing"] = json!({"kind": "band", "band": 2});
    let (status, _, body) = send(&app, post("/v1/simulations", bad.to_string())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.to_string().contains("market.rebalancing.band"),
        "{body}"
    );
}
