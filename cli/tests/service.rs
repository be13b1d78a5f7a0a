//! The real server (`sextant serve` on an ephemeral port) with a real HTTP client (reqwest):
//! results equal to the CLI's, the overload path, deadlines, API keys, asynchronous jobs
//! followed by SSE, health and metrics. Bad bodies and the router's other answers that need no
//! socket are tested in-process in `service/tests/router.rs`.

mod common;

use std::process::Command;

use common::{client, example, get_json, get_text, post_json, root, start, Server};
use serde_json::{json, Value};

fn cli(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn results_equal_the_clis_for_the_same_request_and_seed() {
    let server = start(&[]);
    let http = client();
    let mut request = example("accumulation-30y.json");
    request["options"]["paths"] = json!(5000);
    let body: Value = post_json(&http, format!("{}/v1/simulations", server.base), &request).await;
    let file = std::env::temp_dir().join(format!("sextant-service-{}.json", std::process::id()));
    std::fs::write(&file, request.to_string()).unwrap();
    let expected = cli(&["--backend", "cpu", "simulate", file.to_str().unwrap()]);
    assert_eq!(body, expected);

    for (route, file) in [
        ("/v1/frontier", "frontier.json"),
        ("/v1/risk", "risk.json"),
        ("/v1/what-if", "what-if.json"),
    ] {
        let response = http
            .post(format!("{}{route}", server.base))
            .json(&example(file))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{route}");
        let got: Value = response.json().await.unwrap();
        let command = route.trim_start_matches("/v1/");
        let want = cli(&["--backend", "cpu", command, &format!("examples/{file}")]);
        assert_eq!(got, want, "{route}");
    }
}

/// Issue 13: every plan route answers what the CLI answers for the same request and seed, and
/// counts its work before it runs (the claiming solver's combinations named as what to cut).
#[tokio::test]
async fn plan_routes_equal_the_cli_and_count_their_work() {
    let server = start(&[]);
    let http = client();
    for (route, command, file, paths) in [
        ("/v1/plans", &["plan"][..], "plan-couple.json", 2000),
        ("/v1/plans", &["plan"][..], "plan-pre-retiree.json", 2000),
        (
            "/v1/plans/solve/spending",
            &["plan", "solve", "spending"][..],
            "plan-single-retiree.json",
            1000,
        ),
        (
            "/v1/plans/solve/claiming",
            &["plan", "solve", "claiming"][..],
            "plan-couple.json",
            500,
        ),
        (
            "/v1/plans/solve/withdrawal-order",
            &["plan", "solve", "withdrawal-order"][..],
            "plan-pre-retiree.json",
            1000,
        ),
    ] {
        let mut request = example(file);
        request["options"]["paths"] = json!(paths);
        let got: Value = post_json(&http, format!("{}{route}", server.base), &request).await;
        let path = std::env::temp_dir().join(format!(
            "sextant-plan-{}-{}.json",
            std::process::id(),
            route.replace('/', "-")
        ));
        std::fs::write(&path, request.to_string()).unwrap();
        let mut args = vec!["--backend", "cpu"];
        args.extend_from_slice(command);
        args.push(path.to_str().unwrap());
        assert_eq!(got, cli(&args), "{route} {file}");
    }
    // 250,000 paths of the couple are one fine run, but not 81 of them.
    let mut many = example("plan-couple.json");
    many["options"]["paths"] = json!(250_000);
    let refused = post_json(
        &http,
        format!("{}/v1/plans/solve/claiming", server.base),
        &many,
    )
    .await;
    assert_eq!(
        refused["error"]["field"], "plan.social_security",
        "{refused}"
    );
    // A bad field is named on the plan routes as everywhere.
    let mut bad = example("plan-couple.json");
    bad["plan"]["social_security"][0]["claim_age"] = json!(61);
    let refused = post_json(&http, format!("{}/v1/plans", server.base), &bad).await;
    assert_eq!(
        refused["error"]["field"], "plan.social_security[0].claim_age",
        "{refused}"
    );
}

/// Issue 13: a plan with `options.async` is a stored job of its own kind: followed by SSE,
/// read, listed, drawn and replayed under `/v1/plans`, with the result the synchronous route
/// gives; its id is no simulation's, and another caller cannot read it.
#[tokio::test]
async fn async_plans_are_stored_jobs_of_their_own() {
    let server = start(&["--api-key", "ann:ann-key,bob:bob-key"]);
    let http = client();
    let mut request = example("plan-couple.json");
    request["options"]["paths"] = json!(2000);
    request["options"]["async"] = json!(true);
    let base = &server.base;
    let r = http
        .post(format!("{base}/v1/plans"))
        .bearer_auth("ann-key")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["self"], format!("/v1/plans/{id}"));
    let read = |path: String, key: &'static str| {
        let http = http.clone();
        async move {
            http.get(format!("{base}{path}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };
    let events = read(format!("/v1/plans/{id}/events"), "ann-key")
        .await
        .text()
        .await
        .unwrap();
    let names: Vec<&str> = events
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"queued"), "{events}");
    assert!(names.contains(&"result"), "{events}");
    assert_eq!(names.last(), Some(&"done"), "{events}");
    let view: Value = read(format!("/v1/plans/{id}"), "ann-key")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "complete", "{view}");
    request["options"].as_object_mut().unwrap().remove("async");
    let sync: Value = http
        .post(format!("{base}/v1/plans"))
        .bearer_auth("ann-key")
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["result"], sync);
    // Listed as a plan, not as a simulation; its id is no simulation's.
    let plans: Value = read("/v1/plans".into(), "ann-key")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plans["plans"][0]["id"], id.as_str(), "{plans}");
    assert_eq!(plans["plans"][0]["self"], format!("/v1/plans/{id}"));
    let simulations: Value = read("/v1/simulations".into(), "ann-key")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(simulations["simulations"], json!([]), "{simulations}");
    assert_eq!(
        read(format!("/v1/simulations/{id}"), "ann-key")
            .await
            .status(),
        404
    );
    assert_eq!(
        read(format!("/v1/plans/{id}"), "bob-key").await.status(),
        404
    );
    // Its fan chart is wealth in today's dollars by age; a replay gives the same numbers.
    let chart = read(format!("/v1/plans/{id}/fan-chart.svg"), "ann-key")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("age"),
        "{chart:.200}"
    );
    let replayed: Value = http
        .post(format!("{base}/v1/plans/{id}/replay"))
        .bearer_auth("ann-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["identical"], true, "{replayed:.300}");
    assert_eq!(replayed["result"], sync);
}

/// Bad bodies, each answered 4xx naming its field, are tested in-process
/// (`service/tests/router.rs`); what needs a socket is a body over the limit that the server
/// refuses while the client is still sending it.
#[tokio::test]
async fn a_body_over_the_limit_is_refused_mid_upload_and_the_server_stays_up() {
    let server = start(&[]);
    let url = format!("{}/v1/simulations", server.base);
    // Over the body limit: 413 (on its own connection: the server may close it before the
    // client has written the whole body, which the client then sees as a broken pipe).
    let big = vec![b' '; 2 << 20];
    match client().post(&url).body(big).send().await {
        Ok(response) => assert_eq!(response.status(), 413),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    // The server is still up and answers.
    let ok = client()
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let answer: Value = post_json(&client(), &url, &example("accumulation-30y.json")).await;
    assert!(answer["success_probability"].is_number(), "{answer}");
}

fn big_goal(paths: u64) -> Value {
    json!({"goal": {"initial_wealth": 1000, "monthly_contribution": 100, "horizon_months": 1200},
           "market": {"expected_return": 0.05, "volatility": 0.1},
           "options": {"paths": paths}})
}

#[tokio::test]
async fn a_full_queue_answers_429_then_recovers() {
    let server = start(&["--queue", "1", "--max-batch", "1"]);
    let http = client();
    let url = format!("{}/v1/simulations", server.base);
    let mut pending = Vec::new();
    for _ in 0..8 {
        pending.push(http.post(&url).json(&big_goal(400_000)).send());
    }
    let responses = futures::future::join_all(pending).await;
    let statuses: Vec<u16> = responses
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    for r in responses.iter().flatten() {
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    // Recovered: a small request succeeds once the queue drains.
    let mut ok = false;
    for _ in 0..100 {
        let r = http.post(&url).json(&big_goal(100)).send().await.unwrap();
        if r.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ok);
}

#[tokio::test]
async fn sigterm_finishes_the_work_in_flight_then_exits() {
    let mut server = start(&["--shutdown-grace-s", "60"]);
    let http = client();
    let url = format!("{}/v1/simulations", server.base);
    // About 5 × 10⁸ path-steps: long enough to be mid-computation when the signal comes.
    let in_flight = tokio::spawn(http.post(&url).json(&big_goal(400_000)).send());
    let metrics = format!("{}/metrics", server.base);
    let mut computing = false;
    for _ in 0..200 {
        let text = get_text(&http, &metrics).await;
        // A goal this large runs in the bulk lane, not in a batch.
        if text
            .lines()
            .any(|l| l.starts_with("sextant_lane_operations_total") && l.contains("bulk"))
        {
            computing = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(computing, "the computation never started");
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());

    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["paths"], 400_000);
    assert!(body["success_probability"].as_f64().is_some(), "{body}");

    let mut exited = None;
    for _ in 0..300 {
        if let Some(status) = server.child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = exited.expect("the server exits after its in-flight work");
    assert!(status.success(), "{status}");
    assert!(
        http.get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_err(),
        "nothing listens after the shutdown"
    );
}

#[tokio::test]
async fn a_passed_deadline_is_504_and_the_path_steps_cap_422() {
    let server = start(&["--deadline-ms", "50", "--max-path-steps", "500000000"]);
    let http = client();
    let url = format!("{}/v1/simulations", server.base);
    let r = http
        .post(&url)
        .json(&big_goal(300_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let r = http
        .post(&url)
        .json(&big_goal(500_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "options.paths");
}

#[tokio::test]
async fn api_keys_guard_v1_but_not_health() {
    let server = start(&["--api-key", "s3cret,other"]);
    let http = client();
    let url = format!("{}/v1/simulations", server.base);
    let body = big_goal(100);
    let missing = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = http
        .post(&url)
        .bearer_auth("s3cre")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = http
        .post(&url)
        .bearer_auth("s3cret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let header = http
        .post(&url)
        .header("x-api-key", "other")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 200);
    for open in ["/healthz", "/readyz", "/metrics"] {
        let r = http
            .get(format!("{}{open}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{open}");
    }
}

#[test]
fn refuses_a_public_address_without_keys() {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["serve", "--http", "0.0.0.0:0", "--grpc", "127.0.0.1:0"])
        .env_remove("SEXTANT_API_KEYS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without authentication"));
}

#[tokio::test]
async fn async_simulations_stream_their_events_and_keep_their_result() {
    let server = start(&[]);
    let http = client();
    let mut request = example("accumulation-30y.json");
    request["options"]["paths"] = json!(3000);
    request["options"]["async"] = json!(true);
    let r = http
        .post(format!("{}/v1/simulations", server.base))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let events = get_text(&http, format!("{}/v1/simulations/{id}/events", server.base)).await;
    let names: Vec<&str> = events
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"queued"), "{events}");
    assert!(names.contains(&"progress"));
    assert!(names.contains(&"result"));
    assert_eq!(names.last(), Some(&"done"));
    let view: Value = get_json(&http, format!("{}/v1/simulations/{id}", server.base)).await;
    assert_eq!(view["status"], "complete");
    request["options"].as_object_mut().unwrap().remove("async");
    let sync: Value = post_json(&http, format!("{}/v1/simulations", server.base), &request).await;
    assert_eq!(view["result"], sync);
    let chart = http
        .get(format!("{}/v1/simulations/{id}/fan-chart.svg", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(chart.headers()["content-type"], "image/svg+xml");
    let svg = chart.text().await.unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("chance of success"));
    let missing = http
        .get(format!("{}/v1/simulations/nope", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let metrics = get_text(&http, format!("{}/metrics", server.base)).await;
    assert!(metrics.contains("sextant_requests_total"), "{metrics}");
    assert!(metrics.contains("sextant_batch_size"));
}

/// `(event, data)` pairs of an SSE body.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut name = None;
    for line in body.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = Some(n.to_string());
        } else if let Some(data) = line.strip_prefix("data: ") {
            if let Some(n) = name.take() {
                events.push((n, serde_json::from_str(data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test]
async fn a_long_job_reports_its_fraction_done_as_it_runs() {
    let server = start(&[]);
    let http = client();
    let mut request = example("accumulation-30y.json");
    // 7.2 × 10⁸ path-steps: a second or more here, several progress ticks.
    request["options"]["paths"] = json!(2_000_000);
    request["options"]["async"] = json!(true);
    let job = post_json(&http, format!("{}/v1/simulations", server.base), &request).await;
    let id = job["id"].as_str().unwrap();
    let body = get_text(&http, format!("{}/v1/simulations/{id}/events", server.base)).await;
    let fractions: Vec<f64> = sse_events(&body)
        .iter()
        .filter(|(name, _)| name == "progress")
        .map(|(_, data)| data["fraction"].as_f64().unwrap())
        .collect();
    assert!(
        fractions.iter().any(|&f| f > 0.0 && f < 1.0),
        "no fraction between 0 and 1: {fractions:?}; the events answered:\n{body}"
    );
    assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");
    assert_eq!(fractions.last(), Some(&1.0));
    let names: Vec<String> = sse_events(&body).into_iter().map(|(n, _)| n).collect();
    assert_eq!(&names[names.len() - 2..], ["result", "done"]);
}

#[tokio::test]
async fn a_computation_whose_caller_went_away_is_cancelled() {
    let server = start(&["--max-path-steps", "10000000000"]);
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    let mut request = example("accumulation-30y.json");
    // 3.6 × 10⁹ path-steps: many seconds of work that nobody will wait for.
    request["options"]["paths"] = json!(10_000_000);
    let url = format!("{}/v1/simulations", server.base);
    let gone = impatient.post(&url).json(&request).send().await;
    assert!(gone.unwrap_err().is_timeout());
    let http = client();
    let cancelled = || async {
        let page = get_text(&http, format!("{}/metrics", server.base)).await;
        // Batched goals are cancelled by the batcher, large ones in their lane.
        page.lines()
            .filter(|l| {
                l.starts_with("sextant_cancelled_batches_total")
                    || l.starts_with("sextant_cancelled_operations_total")
            })
            .filter_map(|l| l.rsplit(' ').next())
            .map(|v| v.parse::<f64>().unwrap())
            .sum::<f64>()
    };
    let waited = std::time::Instant::now();
    while cancelled().await < 1.0 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(20),
            "the abandoned computation was never cancelled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The engine is free again: a small request is answered.
    request["options"]["paths"] = json!(1000);
    let answer = http.post(&url).json(&request).send().await.unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn agent_tools_list_schemas_and_run_with_a_summary() {
    let server = start(&[]);
    let http = client();
    let catalogue: Value = get_json(&http, format!("{}/v1/tools", server.base)).await;
    let tools = catalogue["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 12);
    for tool in tools {
        assert!(tool["description"].as_str().unwrap().len() > 60);
        assert_eq!(tool["input_schema"]["type"], "object", "{}", tool["name"]);
    }
    let openai: Value = get_json(&http, format!("{}/v1/tools?format=openai", server.base)).await;
    assert_eq!(openai["tools"][0]["type"], "function");
    assert!(openai["tools"][0]["function"]["parameters"]["properties"]["goal"].is_object());

    let mut request = example("accumulation-30y.json");
    request["options"]["paths"] = json!(2000);
    let ran: Value = post_json(
        &http,
        format!("{}/v1/tools/simulate_goal", server.base),
        &request,
    )
    .await;
    let direct: Value = post_json(&http, format!("{}/v1/simulations", server.base), &request).await;
    assert_eq!(ran["result"], direct);
    let summary = ran["summary"].as_str().unwrap();
    let percent = format!(
        "{:.0}%",
        100.0 * direct["success_probability"].as_f64().unwrap()
    );
    assert!(summary.starts_with(&percent), "{summary}");
    assert!(summary.contains("in 30 years"), "{summary}");

    let solved: Value = post_json(
        &http,
        format!("{}/v1/tools/required_contribution", server.base),
        &request,
    )
    .await;
    assert!(
        solved["summary"].as_str().unwrap().contains("/month"),
        "{solved}"
    );

    // Every tool's summary is read from its typed result.
    for (tool, file, opening) in [
        (
            "sustainable_withdrawal",
            "retirement-drawdown.json",
            "Withdrawing ",
        ),
        ("what_if", "what-if.json", "Chance of success: base "),
        (
            "sensitivity",
            "sensitivity.json",
            "The inputs that move success most: ",
        ),
        (
            "efficient_frontier",
            "frontier.json",
            "The frontier runs from ",
        ),
        (
            "frontier_sweep",
            "sweep.json",
            "The best frontier allocation gives a ",
        ),
        ("portfolio_risk", "risk.json", "Expected return "),
        (
            "plan_household",
            "plan-couple.json",
            "", // opens with the success probability, checked below
        ),
        (
            "plan_sustainable_spending",
            "plan-single-retiree.json",
            "The household can spend $",
        ),
        (
            "plan_social_security_claiming",
            "plan-couple.json",
            "Claiming Social Security at ",
        ),
        (
            "plan_withdrawal_order",
            "plan-pre-retiree.json",
            "Best withdrawal order: ",
        ),
    ] {
        let mut request = example(file);
        if let Some(paths) = request.pointer_mut("/options/paths") {
            *paths = json!(paths.as_u64().unwrap().min(2000));
        }
        if tool == "plan_social_security_claiming" {
            *request.pointer_mut("/options/paths").unwrap() = json!(300);
        }
        let ran: Value =
            post_json(&http, format!("{}/v1/tools/{tool}", server.base), &request).await;
        let summary = ran["summary"].as_str().unwrap();
        assert!(summary.starts_with(opening), "{tool}: {summary}");
        if tool == "plan_household" {
            let p = ran["result"]["success_probability"].as_f64().unwrap();
            let opening = format!(
                "{:.0}% chance the plan pays every essential expense",
                100.0 * p
            );
            assert!(summary.starts_with(&opening), "{summary}");
            assert!(summary.contains("median estate $"), "{summary}");
        }
        if tool == "plan_social_security_claiming" {
            assert!(summary.contains("(Alex) and "), "{summary}");
        }
        assert!(
            summary.chars().any(|c| c.is_ascii_digit()),
            "{tool}: {summary}"
        );
    }

    let unknown = http
        .post(format!("{}/v1/tools/nope", server.base))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let bad = http
        .post(format!("{}/v1/tools/portfolio_risk", server.base))
        .json(&json!({"assets": []}))
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error());
}

/// The generated gRPC client of `service/proto` (the same code an orchestrator in Rust would
/// generate); the server side is not used.
use sextant_service::proto;

fn descriptor<M: prost::Name>() -> prost_reflect::MessageDescriptor {
    prost_reflect::DescriptorPool::decode(proto::DESCRIPTOR)
        .unwrap()
        .get_message_by_name(&M::full_name())
        .unwrap()
}

/// The typed message of a JSON document (its matrices as `repeated Row`), as a client
/// builds it from its own JSON.
fn typed<M: prost::Message + prost::Name + Default>(document: &Value) -> M {
    fn rows(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| match (k.as_str(), v) {
                        ("correlations" | "covariance", Value::Array(rows)) => (
                            k.clone(),
                            rows.iter().map(|r| json!({ "values": r })).collect(),
                        ),
                        _ => (k.clone(), rows(v)),
                    })
                    .collect(),
            ),
            Value::Array(items) => items.iter().map(rows).collect(),
            other => other.clone(),
        }
    }
    prost_reflect::DynamicMessage::deserialize(descriptor::<M>(), rows(document))
        .unwrap()
        .transcode_to()
        .unwrap()
}

/// A JSON document without its `null`s (an unset optional field of a message).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => items.iter().map(without_nulls).collect(),
        other => other.clone(),
    }
}

/// A result message as its JSON document (proto field names, 64-bit numbers as numbers,
/// every field with a value; an unset optional one left out).
fn document<M: prost::Message + prost::Name>(message: &M) -> Value {
    let dynamic = prost_reflect::DynamicMessage::decode(
        descriptor::<M>(),
        message.encode_to_vec().as_slice(),
    )
    .unwrap();
    let options = prost_reflect::SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .skip_default_fields(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .unwrap()
}

use proto::sextant_client::SextantClient;

/// A plain-text gRPC health client of `server`.
async fn health_client(
    server: &Server,
) -> tonic_health::pb::health_client::HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic_health::pb::health_client::HealthClient::new(channel)
}

async fn grpc_client(server: &Server) -> SextantClient<tonic::transport::Channel> {
    SextantClient::connect(server.grpc.clone()).await.unwrap()
}

#[tokio::test]
async fn grpc_serves_the_same_operations_health_and_events() {
    let server = start(&[]);
    let mut grpc = grpc_client(&server).await;
    let mut request = example("accumulation-30y.json");
    request["options"]["paths"] = json!(2000);
    let reply = grpc
        .simulate(typed::<proto::GoalRequest>(&request))
        .await
        .unwrap()
        .into_inner();
    let over_http: Value = post_json(
        &client(),
        format!("{}/v1/simulations", server.base),
        &request,
    )
    .await;
    // The typed answer carries the HTTP answer's numbers (clients.rs compares every field of
    // every operation; here the headline ones).
    assert_eq!(reply.success_probability, over_http["success_probability"]);
    assert_eq!(reply.paths, 2000);
    assert_eq!(
        reply.terminal.as_ref().unwrap().percentiles["p50"],
        over_http["terminal"]["percentiles"]["p50"]
    );

    let frontier = grpc
        .frontier(typed::<proto::FrontierRequest>(&example("frontier.json")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(frontier.points.len(), 20);

    let bad = grpc
        .simulate(proto::GoalRequest {
            goal: Some(proto::Goal {
                horizon_months: Some(0),
                ..Default::default()
            }),
            market: Some(proto::Market {
                expected_return: Some(0.05),
                volatility: Some(0.1),
                ..Default::default()
            }),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().starts_with("goal.horizon_months:"),
        "{}",
        bad.message()
    );
    use tonic_types::StatusExt;
    let violations = bad.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "goal.horizon_months");
    assert!(violations[0].description.contains("1200"), "{violations:?}");
    // A request the validator refuses for a missing field (a `Goal` without its horizon).
    let missing = grpc.risk(proto::RiskRequest::default()).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::InvalidArgument);

    let mut events = grpc
        .simulate_stream(typed::<proto::GoalRequest>(&request))
        .await
        .unwrap()
        .into_inner();
    let mut names = Vec::new();
    let mut result = Value::Null;
    while let Some(event) = events.message().await.unwrap() {
        use proto::simulation_event::Event;
        let event = event.event.unwrap();
        if let Event::Result(r) = &event {
            result = document(r);
        }
        names.push(match event {
            Event::Queued(_) => "queued",
            Event::Progress(_) => "progress",
            Event::Result(_) => "result",
            Event::Error(_) => "error",
            Event::Done(_) => "done",
        });
    }
    assert_eq!(names.first().copied(), Some("queued"));
    assert_eq!(names.last().copied(), Some("done"));
    assert_eq!(result, without_nulls(&over_http));

    let mut health = health_client(&server).await;
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "sextant.v1.Sextant".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    let tools = grpc
        .list_tools(proto::ListToolsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tools.tools.len(), 12);
}

#[tokio::test]
async fn grpc_reports_a_passed_deadline_and_the_path_steps_cap() {
    let server = start(&["--deadline-ms", "50", "--max-path-steps", "500000000"]);
    let mut grpc = grpc_client(&server).await;
    let request = |paths: u64| typed::<proto::GoalRequest>(&big_goal(paths));
    let late = grpc.simulate(request(300_000)).await.unwrap_err();
    assert_eq!(late.code(), tonic::Code::DeadlineExceeded, "{late:?}");
    let capped = grpc.simulate(request(500_000)).await.unwrap_err();
    assert_eq!(capped.code(), tonic::Code::InvalidArgument, "{capped:?}");
    assert!(capped.message().contains("options.paths"), "{capped:?}");
}

#[tokio::test]
async fn grpc_needs_the_key_and_reports_a_full_queue() {
    let server = start(&["--api-key", "k3y", "--queue", "1", "--max-batch", "1"]);
    let mut grpc = grpc_client(&server).await;
    let body = typed::<proto::GoalRequest>(&big_goal(100));
    let denied = grpc.simulate(body.clone()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    let mut with_key = tonic::Request::new(body);
    with_key
        .metadata_mut()
        .insert("authorization", "Bearer k3y".parse().unwrap());
    assert!(grpc.simulate(with_key).await.is_ok());

    let mut pending = Vec::new();
    for _ in 0..8 {
        let mut g = grpc.clone();
        let mut r = tonic::Request::new(typed::<proto::GoalRequest>(&big_goal(400_000)));
        r.metadata_mut()
            .insert("authorization", "Bearer k3y".parse().unwrap());
        pending.push(tokio::spawn(async move { g.simulate(r).await.map(|_| ()) }));
    }
    let mut exhausted = 0;
    for p in pending {
        if let Err(status) = p.await.unwrap() {
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            exhausted += 1;
        }
    }
    assert!(exhausted > 0);
}

#[tokio::test]
async fn openapi_lists_every_route_and_the_docs_page_is_self_contained() {
    let server = start(&[]);
    let http = client();
    let document: Value = get_json(&http, format!("{}/openapi.json", server.base)).await;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for (method, path) in [
        ("post", "/v1/simulations"),
        ("get", "/v1/simulations/{id}"),
        ("get", "/v1/simulations/{id}/events"),
        ("get", "/v1/simulations/{id}/fan-chart.svg"),
        ("post", "/v1/simulations/{id}/replay"),
        ("post", "/v1/rescore-runs"),
        ("get", "/v1/rescore-runs/{id}"),
        ("post", "/v1/solve/required-contribution"),
        ("post", "/v1/solve/sustainable-withdrawal"),
        ("post", "/v1/what-if"),
        ("post", "/v1/sensitivity"),
        ("post", "/v1/frontier"),
        ("post", "/v1/frontier/sweep"),
        ("post", "/v1/risk"),
        ("post", "/v1/plans"),
        ("get", "/v1/plans"),
        ("get", "/v1/plans/{id}"),
        ("get", "/v1/plans/{id}/events"),
        ("get", "/v1/plans/{id}/fan-chart.svg"),
        ("post", "/v1/plans/{id}/replay"),
        ("post", "/v1/plans/solve/spending"),
        ("post", "/v1/plans/solve/claiming"),
        ("post", "/v1/plans/solve/withdrawal-order"),
        ("get", "/v1/tools"),
        ("post", "/v1/tools/{name}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
        // And the server really answers it (not 404 or 405).
        let url = format!(
            "{}{}",
            server.base,
            path.replace("{id}", "x").replace("{name}", "x")
        );
        let status = if method == "get" {
            http.get(&url).send().await.unwrap().status()
        } else {
            http.post(&url).body("{}").send().await.unwrap().status()
        };
        assert!(status != 405, "{method} {path}: {status}");
        if !path.contains('{') {
            assert!(status != 404, "{method} {path}: {status}");
        }
    }
    // The validator (openapi-spec-validator, installed by scripts/install-deps.sh): a missing
    // module fails the test rather than skipping the check.
    let file = std::env::temp_dir().join(format!("sextant-openapi-{}.json", std::process::id()));
    std::fs::write(&file, document.to_string()).unwrap();
    let out = Command::new("python3")
        .args(["-c", "import sys, json; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))"])
        .arg(&file)
        .output()
        .expect("python3 runs (scripts/install-deps.sh)");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "openapi-spec-validator (scripts/install-deps.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = get_text(&http, format!("{}/docs", server.base)).await;
    assert!(page.contains("/openapi.json"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the docs page fetches nothing external"
    );
}

fn token(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_bearer_tokens_are_checked_for_signature_expiry_audience_and_issuer() {
    let server = start(&[
        "--jwt-secret",
        "hmac-secret",
        "--jwt-audience",
        "sextant",
        "--jwt-issuer",
        "wealthnavigator",
    ]);
    let http = client();
    let url = format!("{}/v1/simulations", server.base);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good =
        json!({"sub": "agent-1", "aud": "sextant", "iss": "wealthnavigator", "exp": now + 600});
    let cases = [
        (token("hmac-secret", good.clone()), 200),
        (token("other-secret", good.clone()), 401),
        (
            token(
                "hmac-secret",
                json!({"sub": "a", "aud": "sextant", "iss": "wealthnavigator", "exp": now - 600}),
            ),
            401,
        ),
        (
            token(
                "hmac-secret",
                json!({"sub": "a", "aud": "elsewhere", "iss": "wealthnavigator", "exp": now + 600}),
            ),
            401,
        ),
        (
            token(
                "hmac-secret",
                json!({"sub": "a", "aud": "sextant", "iss": "mallory", "exp": now + 600}),
            ),
            401,
        ),
        (
            token(
                "hmac-secret",
                json!({"sub": "a", "aud": "sextant", "iss": "wealthnavigator"}),
            ),
            401,
        ),
        ("not.a.token".to_string(), 401),
    ];
    for (bearer, status) in cases {
        let r = http
            .post(&url)
            .bearer_auth(&bearer)
            .json(&big_goal(100))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{bearer}");
    }
    let missing = http.post(&url).json(&big_goal(100)).send().await.unwrap();
    assert_eq!(missing.status(), 401);
}

#[tokio::test]
async fn rs256_tokens_are_checked_against_the_public_key() {
    let fixtures = common::root().join("cli/tests/fixtures");
    let public = fixtures.join("rs256-test-public.pem");
    let server = start(&[
        "--jwt-public-key",
        public.to_str().unwrap(),
        "--jwt-audience",
        "sextant",
    ]);
    let sign = |key: &str, claims: &Value| {
        let pem = std::fs::read(fixtures.join(key)).unwrap();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
        )
        .unwrap()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = json!({"sub": "agent-1", "aud": "sextant", "exp": now + 600});
    let http = client();
    let url = format!("{}/v1/simulations", server.base);
    let cases = [
        (sign("rs256-test-private.pem", &good), 200),
        (sign("rs256-other-private.pem", &good), 401),
        (
            sign(
                "rs256-test-private.pem",
                &json!({"sub": "a", "aud": "sextant", "exp": now - 600}),
            ),
            401,
        ),
        // An HS256 token must not pass where RS256 is configured.
        (token("anything", good.clone()), 401),
    ];
    for (bearer, status) in cases {
        let r = http
            .post(&url)
            .bearer_auth(&bearer)
            .json(&big_goal(100))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{bearer}");
    }
}

#[tokio::test]
async fn each_key_has_its_rate_limit() {
    let server = start(&["--api-key", "a,b", "--rate-limit", "2"]);
    let http = client();
    let url = format!("{}/v1/simulations", server.base);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = http
            .post(&url)
            .bearer_auth("a")
            .json(&big_goal(100))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // Another key has its own budget.
    let other = http
        .post(&url)
        .bearer_auth("b")
        .json(&big_goal(100))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn a_configuration_file_sets_what_flags_do_not() {
    let dir = std::env::temp_dir();
    let file = dir.join(format!("sextant-config-{}.toml", std::process::id()));
    std::fs::write(&file, "api_keys = [\"from-file\"]\nmax_batch = 8\n").unwrap();
    let server = start(&["--config", file.to_str().unwrap()]);
    let http = client();
    let url = format!("{}/v1/simulations", server.base);
    let denied = http.post(&url).json(&big_goal(100)).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let allowed = http
        .post(&url)
        .bearer_auth("from-file")
        .json(&big_goal(100))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    // An unknown key is an error that names it.
    std::fs::write(&file, "max_bach = 8\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["serve", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key `max_bach`"));
}

/// The services a reflection client of `$version` (`v1`, `v1alpha`) lists on `$channel`.
macro_rules! service_names {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::{
            server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
            ServerReflectionRequest,
        };
        let mut client = ServerReflectionClient::new($channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut replies = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let reply = replies.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
            panic!("{}: not a service list: {reply:?}", stringify!($version));
        };
        list.service
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<String>>()
    }};
}

/// Both reflection versions list the services: v1 (grpcurl) and v1alpha (Python's
/// grpcio-reflection, older grpcurl), which answered UNIMPLEMENTED before.
#[tokio::test]
async fn grpc_reflection_answers_in_v1_and_v1alpha() {
    let server = start(&[]);
    let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let v1_names = service_names!(v1, channel);
    let v1alpha_names = service_names!(v1alpha, channel);
    for (names, reflection) in [
        (&v1_names, "grpc.reflection.v1.ServerReflection"),
        (&v1alpha_names, "grpc.reflection.v1alpha.ServerReflection"),
    ] {
        for service in ["sextant.v1.Sextant", "grpc.health.v1.Health", reflection] {
            assert!(
                names.iter().any(|n| n == service),
                "{service} not in {names:?}"
            );
        }
    }
}

/// CPU seconds (user + system) the process `pid` has used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf reads a constant.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Waits out `settle`, then the server's CPU seconds over the next second.
async fn busy_seconds_after(server: &Server, settle_ms: u64) -> f64 {
    tokio::time::sleep(std::time::Duration::from_millis(settle_ms)).await;
    let before = cpu_seconds(server.child.id());
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    cpu_seconds(server.child.id()) - before
}

/// Send `request` from a client that gives up after 300 ms; then the server's CPU seconds over
/// the second after 300 ms more. `Err` when the server answered first (a large machine may:
/// then there is nothing to stop).
async fn busy_after_giving_up(
    server: &Server,
    request: reqwest::RequestBuilder,
) -> Result<f64, reqwest::StatusCode> {
    let gone = request
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    match gone {
        Err(e) => assert!(e.is_timeout(), "{e}"),
        Ok(r) => return Err(r.status()),
    }
    Ok(busy_seconds_after(server, 300).await)
}

/// [`busy_after_giving_up`] on a JSON post of `body` to `url`.
async fn busy_after_giving_up_on(
    server: &Server,
    url: &str,
    body: &Value,
) -> Result<f64, reqwest::StatusCode> {
    let request = client().post(format!("{}{url}", server.base)).json(body);
    busy_after_giving_up(server, request).await
}

/// A solver with withdrawals (bisection, ~81 runs) on 1,000,000 paths × 1,200 months: minutes
/// of work here, seconds on a large machine, far more than the deadlines below either way.
fn long_solver() -> Value {
    let mut request = big_goal(1_000_000);
    request["goal"]["monthly_withdrawal"] = json!(2000);
    request["goal"]["withdrawal_start_month"] = json!(120);
    request
}

/// Issue 11: every operation counts its work before it runs. The stall of the issue (a
/// sensitivity run of 3,000,000 paths × 1,000 months) is refused on HTTP, the tools endpoint
/// and gRPC alike, naming the field; a solver whose runs multiply past the budget is too.
#[tokio::test]
async fn every_operation_counts_its_work_against_the_budget() {
    let server = start(&[]);
    let http = client();
    let mut stall = example("sensitivity.json");
    stall["goal"]["horizon_months"] = json!(1000);
    stall["options"]["paths"] = json!(3_000_000);
    for url in ["/v1/sensitivity", "/v1/tools/sensitivity"] {
        let r = http
            .post(format!("{}{url}", server.base))
            .json(&stall)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{url}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["field"], "options.paths", "{url}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most 2000000000 path-steps"),
            "{body}"
        );
    }
    let mut grpc = grpc_client(&server).await;
    let refused = grpc
        .sensitivity(typed::<proto::SensitivityRequest>(&stall))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().starts_with("options.paths:"),
        "{}",
        refused.message()
    );

    // 1,000,000 paths × 1,200 months is one fine simulation (1.2e9) but 98 of them are not.
    let solver = post_json(
        &http,
        format!("{}/v1/solve/sustainable-withdrawal", server.base),
        &long_solver(),
    )
    .await;
    assert_eq!(solver["error"]["field"], "options.paths", "{solver}");
    // Within the budget by paths, over it by inputs: the inputs are named.
    let mut many = example("sensitivity.json");
    many["options"]["paths"] = json!(300_000);
    many["goal"]["horizon_months"] = json!(1000);
    let refused = post_json(&http, format!("{}/v1/sensitivity", server.base), &many).await;
    assert_eq!(refused["error"]["field"], "sensitivity.inputs", "{refused}");
}

/// Issue 11: a request past its deadline, or whose caller went away, stops computing: the
/// server's CPU use over the second after (with 300 ms to settle) is under 0.2 CPU-seconds,
/// where the work left would keep both cores busy.
#[tokio::test]
async fn a_passed_deadline_or_a_gone_caller_stops_the_work() {
    let server = start(&["--deadline-ms", "300", "--max-path-steps", "1000000000000"]);
    let http = client();
    let url = format!("{}/v1/solve/sustainable-withdrawal", server.base);
    let r = http.post(&url).json(&long_solver()).send().await.unwrap();
    assert_eq!(r.status(), 504);
    let busy = busy_seconds_after(&server, 300).await;
    assert!(
        busy < 0.2,
        "after the 504: {busy:.2} CPU-seconds in a second"
    );

    // A caller that gives up after 300 ms, well inside the server's 60 s default deadline.
    let server = start(&["--max-path-steps", "1000000000000"]);
    let busy = busy_after_giving_up_on(&server, "/v1/solve/sustainable-withdrawal", &long_solver())
        .await
        .expect("the caller timed out");
    assert!(
        busy < 0.2,
        "after the disconnect: {busy:.2} CPU-seconds in a second"
    );
}

/// Issue 12: an MCP tool call over `/mcp` stops computing when its client goes away, as an
/// HTTP caller's does (the same bound: under 0.2 CPU-seconds in the second after, 300 ms to
/// settle, where the work left would keep both cores busy for minutes).
#[tokio::test]
async fn an_mcp_tool_call_stops_when_its_client_goes_away() {
    let server = start(&["--max-path-steps", "1000000000000"]);
    let call = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "sustainable_withdrawal", "arguments": long_solver()},
    });
    let request = client()
        .post(format!("{}/mcp", server.base))
        .header("accept", "application/json, text/event-stream")
        .json(&call);
    let busy = busy_after_giving_up(&server, request)
        .await
        .expect("the MCP client timed out");
    assert!(
        busy < 0.2,
        "after the MCP client left: {busy:.2} CPU-seconds in a second"
    );
}

/// Issue 11: frontier resampling and the risk Monte Carlo stop when their caller goes away,
/// like the solvers: under 0.2 CPU-seconds in the second after (300 ms to settle).
#[tokio::test]
async fn resampling_and_risk_stop_when_their_caller_goes_away() {
    let server = start(&["--max-path-steps", "1000000000000000"]);
    let mut resampled = example("frontier.json");
    // 14,000 × 100,000 × 7 assets: just within the frontier's own bound, minutes of work here.
    resampled["resample"] = json!({"resamples": 14_000, "observations": 100_000, "seed": 1});
    // 1,600,000 paths × 1,200 months, within the risk model's own bound: seconds of work here,
    // though a large machine may answer within the 300 ms (and then has nothing to stop).
    let mut risk = example("risk.json");
    risk["horizon_months"] = json!(1200);
    risk["options"]["paths"] = json!(1_600_000);
    for (url, body) in [("/v1/frontier", resampled), ("/v1/risk", risk)] {
        let busy = match busy_after_giving_up_on(&server, url, &body).await {
            Ok(busy) => busy,
            Err(status) => {
                assert_eq!(status, 200, "{url}: answered before the caller left");
                continue;
            }
        };
        assert!(
            busy < 0.2,
            "{url}: after the disconnect: {busy:.2} CPU-seconds in a second"
        );
    }
}

/// Issue 11, fair sharing: while a budget-sized simulation runs (an asynchronous job, so its
/// state can be read), 10,000-path simulations are answered one after another. With a single
/// lane they would wait for it; the test counts the small answers that arrived while the large
/// job was still running, checked after each answer, and asks for at least three. Nothing here
/// depends on this machine's speed: the large job is 400 times the small one's work.
#[tokio::test]
async fn small_requests_are_answered_while_a_large_one_runs() {
    let server = start(&["--max-path-steps", "10000000000"]);
    let http = client();
    let mut large = example("accumulation-30y.json");
    large["options"] = json!({"paths": 4_000_000, "seed": 1, "async": true});
    let accepted = post_json(&http, format!("{}/v1/simulations", server.base), &large).await;
    let job = format!(
        "{}/v1/simulations/{}",
        server.base,
        accepted["id"].as_str().unwrap()
    );
    let mut small = example("accumulation-30y.json");
    small["options"] = json!({"paths": 10_000});
    let (mut during, mut answered) = (0, 0);
    while during < 20 && answered < 2_000 {
        small["options"]["seed"] = json!(answered + 10);
        let r = post_json(&http, format!("{}/v1/simulations", server.base), &small).await;
        assert!(r["success_probability"].is_number(), "{r}");
        answered += 1;
        let status = get_json(&http, &job).await["status"].clone();
        match status.as_str() {
            Some("complete") => break,
            Some("running") => during += 1,
            _ => assert_eq!(status, "queued"),
        }
    }
    assert!(
        during >= 3,
        "only {during} of {answered} small requests answered while the large one ran"
    );
}

/// A finished asynchronous simulation stored by the caller with `auth` (an Authorization
/// header value); its id.
async fn stored_simulation(server: &Server, auth: &str, seed: u64) -> String {
    let http = client();
    let mut request = example("accumulation-30y.json");
    request["options"] = json!({"paths": 500, "seed": seed, "async": true});
    let accepted: Value = http
        .post(format!("{}/v1/simulations", server.base))
        .header("authorization", auth)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().expect("a job id").to_string();
    for _ in 0..600 {
        let view: Value = http
            .get(format!("{}/v1/simulations/{id}", server.base))
            .header("authorization", auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["status"] == "complete" {
            return id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("simulation {id} did not finish");
}

/// The status of every route that reads simulation `id`, as the caller with `auth` sees it:
/// the job, its events, its fan chart, its replay.
async fn statuses_of(server: &Server, auth: &str, id: &str) -> Vec<u16> {
    let http = client();
    let base = format!("{}/v1/simulations/{id}", server.base);
    let mut statuses = Vec::new();
    for path in ["", "/events", "/fan-chart.svg"] {
        let r = http
            .get(format!("{base}{path}"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let r = http
        .post(format!("{base}/replay"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    statuses.push(r.status().as_u16());
    statuses
}

/// The ids `GET /v1/simulations` lists for the caller with `auth`, following every page of
/// `limit`.
async fn listed(server: &Server, auth: &str, limit: u32) -> Vec<String> {
    let http = client();
    let (mut ids, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut url = format!("{}/v1/simulations?limit={limit}", server.base);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(url)
            .header("authorization", auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for s in page["simulations"].as_array().expect("a page") {
            assert!(s.get("result").is_none(), "a listing carries no results");
            ids.push(s["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

/// Issue 17: with two API keys, each caller reads its own simulations (the job, its events,
/// fan chart and replay) and gets 404 for the other's, exactly as for an id that does not
/// exist; the admin reads both; listings hold only one's own (paged), the admin's all; only
/// the admin starts or reads re-scoring runs; a job made over gRPC belongs to its key too.
#[tokio::test]
async fn each_key_sees_only_its_own_simulations() {
    let server = start(&[
        "--api-key",
        "alice:key-a,bob:key-b,ops:key-ops",
        "--admin",
        "key:ops",
    ]);
    let (a, b, ops) = ("Bearer key-a", "Bearer key-b", "Bearer key-ops");
    let alices = [
        stored_simulation(&server, a, 1).await,
        stored_simulation(&server, a, 2).await,
        stored_simulation(&server, a, 3).await,
    ];
    let bobs = stored_simulation(&server, b, 4).await;
    for id in &alices {
        assert_eq!(statuses_of(&server, a, id).await, [200, 200, 200, 200]);
        assert_eq!(statuses_of(&server, b, id).await, [404, 404, 404, 404]);
        assert_eq!(statuses_of(&server, ops, id).await, [200, 200, 200, 200]);
    }
    assert_eq!(statuses_of(&server, a, &bobs).await, [404, 404, 404, 404]);
    assert_eq!(statuses_of(&server, b, &bobs).await, [200, 200, 200, 200]);
    // Another's object is answered as one that does not exist.
    let missing = "0123456789abcdef0123456789abcdef";
    assert_eq!(statuses_of(&server, b, missing).await, [404, 404, 404, 404]);

    let mut own = listed(&server, a, 2).await;
    own.sort();
    let mut expected = alices.to_vec();
    expected.sort();
    assert_eq!(own, expected, "alice lists her three, two to a page");
    assert_eq!(listed(&server, b, 50).await, std::slice::from_ref(&bobs));
    assert_eq!(listed(&server, ops, 50).await.len(), 4);
    let http = client();
    let bad = http
        .get(format!("{}/v1/simulations?limit=0", server.base))
        .header("authorization", a)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["field"], "limit");

    let rescore = |auth: &'static str| {
        let http = http.clone();
        let url = format!("{}/v1/rescore-runs", server.base);
        async move {
            http.post(url)
                .header("authorization", auth)
                .json(&json!({"run_key": "tenancy", "paths": 100}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(rescore(a).await, 403);
    assert_eq!(rescore(ops).await, 202);

    // gRPC: a stream's job is its key's.
    let mut grpc = grpc_client(&server).await;
    let mut request = tonic::Request::new(typed::<proto::GoalRequest>(&example(
        "accumulation-30y.json",
    )));
    request
        .metadata_mut()
        .insert("authorization", "Bearer key-b".parse().unwrap());
    let mut stream = grpc.simulate_stream(request).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().expect("a first event");
    let Some(proto::simulation_event::Event::Queued(proto::Queued { id })) = first.event else {
        panic!("the first event is not `queued`: {first:?}");
    };
    while stream.message().await.unwrap().is_some() {}
    assert_eq!(statuses_of(&server, a, &id).await[0], 404);
    assert_eq!(statuses_of(&server, b, &id).await[0], 200);
}

/// Issue 17: with JWTs, the owner is the subject, within its tenant when
/// `--jwt-tenant-claim` is given: the same subject in two tenants owns two sets; a token with
/// the admin scope reads every one's.
#[tokio::test]
async fn jwt_subjects_and_tenants_own_their_simulations() {
    let secret = "tenancy-secret";
    let server = start(&[
        "--jwt-secret",
        secret,
        "--jwt-tenant-claim",
        "org",
        "--jwt-admin-scope",
        "sextant:admin",
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let bearer = |claims: Value| format!("Bearer {}", token(secret, claims));
    let alice_1 = bearer(json!({"sub": "alice", "org": "one", "exp": now + 600}));
    let alice_2 = bearer(json!({"sub": "alice", "org": "two", "exp": now + 600}));
    let carol_1 = bearer(json!({"sub": "carol", "org": "one", "exp": now + 600}));
    let admin = bearer(
        json!({"sub": "ops", "org": "one", "scope": "read sextant:admin",
                              "exp": now + 600}),
    );
    let id = stored_simulation(&server, &alice_1, 7).await;
    assert_eq!(
        statuses_of(&server, &alice_1, &id).await,
        [200, 200, 200, 200]
    );
    assert_eq!(
        statuses_of(&server, &alice_2, &id).await,
        [404, 404, 404, 404]
    );
    assert_eq!(
        statuses_of(&server, &carol_1, &id).await,
        [404, 404, 404, 404]
    );
    assert_eq!(
        statuses_of(&server, &admin, &id).await,
        [200, 200, 200, 200]
    );
    assert_eq!(listed(&server, &alice_2, 10).await, Vec::<String>::new());
    assert_eq!(listed(&server, &alice_1, 10).await, [id]);
    // A token without the tenant claim names no owner: refused.
    let untenanted = bearer(json!({"sub": "alice", "exp": now + 600}));
    let r = client()
        .get(format!("{}/v1/simulations", server.base))
        .header("authorization", untenanted)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Issue 17: `--tls-cert`/`--tls-key`: HTTPS and gRPC over TLS answer a client that trusts the
/// test's own certificate; plain HTTP on the same port gets no answer; and a non-loopback
/// address without TLS is refused (with keys given), unless TLS is said to be offloaded.
#[tokio::test]
async fn tls_answers_a_client_that_trusts_it_and_refuses_plain_http() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (cert, key) = (common::temp_path("cert.pem"), common::temp_path("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer: Value = trusting
        .post(format!("{}/v1/simulations", server.base))
        .json(&example("accumulation-30y.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["success_probability"].is_number(), "{answer}");
    // A client that does not trust the certificate is refused in the handshake.
    assert!(client()
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .is_err());
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = server.base.replace("https://", "http://");
    assert!(client()
        .get(format!("{plain}/healthz"))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .is_err());
    // gRPC over TLS: the health service answers a client that trusts the certificate.
    let channel = tonic::transport::Channel::from_shared(server.grpc.clone())
        .unwrap()
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&cert_pem))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Keys alone do not open a public address: TLS (or its offloading) is needed too.
    let refused = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["serve", "--http", "0.0.0.0:0", "--grpc", "127.0.0.1:0"])
        .args(["--api-key", "a:secret-a"])
        .env_remove("SEXTANT_TLS_OFFLOADED")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("without TLS"), "{stderr}");
    assert!(!stderr.contains("secret-a"), "{stderr}");
}

/// Issue 17: every refused read and every admin read of another's object is an audit line in
/// the JSON logs (who, what, which object, the outcome), secrets never logged; a row stored
/// before objects had owners is an admin's alone to read.
#[tokio::test]
async fn refusals_and_admin_reads_are_audited_and_ownerless_rows_are_the_admins() {
    let url = common::sqlite_url();
    let log = common::temp_path("audit.log");
    let server = common::start_logging(
        &[
            "--api-key",
            "alice:key-a,bob:key-b,ops:key-ops",
            "--admin",
            "key:ops",
            "--log-format",
            "json",
        ],
        &[("DATABASE_URL", url.as_str()), ("RUST_LOG", "info")],
        std::fs::File::create(&log).unwrap().into(),
    );
    let (a, b, ops) = ("Bearer key-a", "Bearer key-b", "Bearer key-ops");
    let alices = stored_simulation(&server, a, 5).await;
    // A row from before owners: stored straight into the database, as an older release did.
    let legacy = "fedcba9876543210fedcba9876543210";
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO simulations (id, request, request_hash, status, progress, iterations, \
         seed, engine_version, created_at, results) \
         VALUES ($1, '{}', 'h', 'complete', 1, 10, 1, 'old', 0, '{\"paths\": 10}')",
    )
    .bind(legacy)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let view = |auth: &'static str, id: String| {
        let base = server.base.clone();
        async move {
            client()
                .get(format!("{base}/v1/simulations/{id}"))
                .header("authorization", auth)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(view(b, alices.clone()).await, 404);
    assert_eq!(view(ops, alices.clone()).await, 200);
    assert_eq!(view(a, legacy.into()).await, 404);
    assert_eq!(view(ops, legacy.into()).await, 200);
    assert!(!listed(&server, a, 50).await.contains(&legacy.to_string()));
    assert!(listed(&server, ops, 50).await.contains(&legacy.to_string()));

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &Value| l["target"] == "sextant::audit")
        .collect();
    let has = |who: &str, object: &str, outcome: &str| {
        lines.iter().any(|l| {
            l["fields"]["who"] == who
                && l["fields"]["object"] == format!("simulation/{object}")
                && l["fields"]["outcome"] == outcome
        })
    };
    assert!(has("key:bob", &alices, "denied"), "{lines:?}");
    assert!(has("key:ops", &alices, "admin read"), "{lines:?}");
    assert!(has("key:alice", legacy, "denied"), "{lines:?}");
    assert!(has("key:ops", legacy, "admin read"), "{lines:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in ["key-a", "key-b", "key-ops"] {
        assert!(!text.contains(secret), "a secret in the logs: {secret}");
    }
}

/// Issue 11: after SIGTERM, during `--drain-s`, `/readyz` answers 503 ("draining") and gRPC
/// health NOT_SERVING, while requests are still answered; then the process exits.
#[tokio::test]
async fn draining_turns_readyz_and_grpc_health_away_while_still_answering() {
    let mut server = start(&["--drain-s", "3"]);
    let mut health = health_client(&server).await;
    let status = |service: &str| tonic_health::pb::HealthCheckRequest {
        service: service.to_string(),
    };
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
    assert_eq!(
        health.check(status("")).await.unwrap().into_inner().status,
        serving
    );
    assert!(Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let ready = client()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    for service in ["", "sextant.v1.Sextant"] {
        let answer = health.check(status(service)).await.unwrap().into_inner();
        assert_eq!(answer.status, not_serving, "{service:?}");
    }
    let answer = post_json(
        &client(),
        format!("{}/v1/simulations", server.base),
        &example("accumulation-30y.json"),
    )
    .await;
    assert!(answer["success_probability"].is_number(), "{answer}");
    let mut exited = false;
    for _ in 0..200 {
        if server.child.try_wait().unwrap().is_some() {
            exited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(exited, "the server exits after draining");
}
