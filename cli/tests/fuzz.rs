//! The real server (`sextant serve` on an ephemeral port) under hostile input: schemathesis
//! generates requests from `/openapi.json` and none may be answered 5xx; a corpus of hostile
//! bodies (deep nesting, huge arrays, out-of-range numbers, NaN and Infinity spellings, wrong
//! types, unknown fields, oversized, empty, not UTF-8, the wrong content type) sent to every
//! POST route, agent tools included, is answered 4xx naming the field, never after a hang; so
//! are hostile ids on the routes that take one; and the server is still up afterwards.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, example, get_json, start, temp_path};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

/// The release benches/requirements.txt pins; the flags below are its `run` command's.
const SCHEMATHESIS: &str = "4.32.5";

/// schemathesis's version, or a failure saying how to install it (never a silent skip).
fn schemathesis_version() -> String {
    let out = Command::new("python3")
        .args(["-c", "import schemathesis; print(schemathesis.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("python3 does not run ({e}): run scripts/install-deps.sh"));
    assert!(
        out.status.success(),
        "the Python module schemathesis is missing: run scripts/install-deps.sh (it installs \
         benches/requirements.txt)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// schemathesis against the whole document, on loopback: every operation gets the coverage
/// phase's boundary and negative values, then up to 25 generated cases, with a fixed seed (and
/// the document's examples, once it has some); the only checks are "no 5xx" and "answered
/// within 20 s". The work one request may ask for is capped low (`--max-path-steps`), so that
/// generated requests that are valid stay cheap on a small machine; the cap is itself a 422.
#[test]
fn schemathesis_finds_no_server_error() {
    let version = schemathesis_version();
    if version != SCHEMATHESIS {
        eprintln!(
            "warning: schemathesis {version} is installed, the tests pin {SCHEMATHESIS} \
             (scripts/install-deps.sh)"
        );
    }
    let server = start(&["--max-path-steps", "20000000"]);
    // Its own working directory: nothing (reports, example databases) lands in the checkout.
    let dir = temp_path("schemathesis");
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    let log = dir.join("output.txt");
    let output = std::fs::File::create(&log).unwrap();
    let started = Instant::now();
    let mut child = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{}/openapi.json", server.base))
        .args([
            "--checks",
            "not_a_server_error",
            "--max-response-time",
            "20",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            "20260101",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--workers",
            "2",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
        ])
        .arg(&report)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(output.try_clone().unwrap()))
        .stderr(Stdio::from(output))
        .spawn()
        .unwrap_or_else(|e| panic!("python3 does not run ({e}): run scripts/install-deps.sh"));
    let limit = Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    let summary: Value = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
    let cases = &summary["test_cases"];
    eprintln!(
        "schemathesis {version}: {} operations tested, {} test cases generated, {} with \
         failures ({} unique), {} errored, in {seconds:.1} s; failures {}; errors {}",
        summary["operations"]["tested"],
        cases["generated"],
        cases["with_failures"],
        cases["unique_failures"],
        cases["errored"],
        summary["failures"],
        summary["errors"],
    );
    let status = status.unwrap_or_else(|| panic!("schemathesis ran past {limit:?}"));
    assert!(
        status.success(),
        "schemathesis found problems ({status}); its output and reproductions are above"
    );
    assert!(
        cases["generated"].as_u64().unwrap_or(0) > 0
            && summary["operations"]["tested"].as_u64().unwrap_or(0) > 0,
        "schemathesis tested nothing: {summary}"
    );
}

/// One hostile request body and what may answer it.
struct Case {
    label: String,
    body: Vec<u8>,
    content_type: &'static str,
    /// The field the error must name: itself, or a path under it (any field when `None`).
    field: Option<String>,
    /// Naming the whole request instead is right too (nesting too deep to say where).
    or_request: bool,
    /// Over the body limit: 413, or the connection closed while the body was written.
    oversize: bool,
    /// A body the service may also accept (only a 5xx, a hang or an unnamed field is wrong).
    may_succeed: bool,
}

impl Case {
    fn new(label: impl Into<String>, body: impl Into<Vec<u8>>, field: Option<&str>) -> Case {
        Case {
            label: label.into(),
            body: body.into(),
            content_type: "application/json",
            field: field.map(str::to_string),
            or_request: false,
            oversize: false,
            may_succeed: false,
        }
    }
}

/// Every node below the root of `value`: its JSON pointer, the node, and whether it lies in
/// an array.
fn nodes(value: &Value, pointer: &str, in_array: bool, out: &mut Vec<(String, Value, bool)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let p = format!("{pointer}/{key}");
                out.push((p.clone(), child.clone(), in_array));
                nodes(child, &p, in_array, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{pointer}/{i}");
                out.push((p.clone(), child.clone(), true));
                nodes(child, &p, true, out);
            }
        }
        _ => {}
    }
}

/// The top-level field a pointer is under.
fn top(pointer: &str) -> &str {
    pointer.split('/').nth(1).unwrap_or("request")
}

/// `base` with the node at `pointer` replaced by `value`.
fn with(base: &Value, pointer: &str, value: Value) -> Value {
    let mut body = base.clone();
    *body
        .pointer_mut(pointer)
        .expect("the pointer is in the body") = value;
    body
}

/// `base`'s text with the node at `pointer` replaced by the raw text `token` (what JSON
/// values cannot hold: NaN, Infinity, 1e999…).
fn with_raw(base: &Value, pointer: &str, token: &str) -> Vec<u8> {
    const MARK: &str = "@@sextant-fuzz@@";
    with(base, pointer, json!(MARK))
        .to_string()
        .replacen(&format!("\"{MARK}\""), token, 1)
        .into_bytes()
}

/// An array of `n` zeros, as text.
fn zeros(n: usize) -> String {
    let mut text = String::with_capacity(2 * n + 2);
    text.push('[');
    for i in 0..n {
        if i > 0 {
            text.push(',');
        }
        text.push('0');
    }
    text.push(']');
    text
}

/// The corpus for a route whose well-formed body is `base`.
fn corpus(base: &Value) -> Vec<Case> {
    let text = base.to_string();
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let mut cases = vec![
        Case::new("empty body", b"".to_vec(), Some("request")),
        Case::new("whitespace", b"   \n".to_vec(), Some("request")),
        Case::new("not JSON", b"goal=1&market=2".to_vec(), Some("request")),
        // Deep nesting: the request, or where its shape first goes wrong ("[0][0]", "a").
        Case::new("100k [ unclosed", "[".repeat(100_000), None),
        Case::new("100k nested arrays", deep.clone(), None),
        Case::new(
            "50k nested objects",
            "{\"a\":".repeat(50_000) + "0" + &"}".repeat(50_000),
            None,
        ),
        Case::new("not UTF-8", vec![0xff, 0xfe, b'{', b'}'], Some("request")),
        Case::new(
            "not UTF-8 in a string",
            [&b"{\"goal\": \""[..], &[0xffu8, 0xc0][..], &b"\"}"[..]].concat(),
            Some("request"),
        ),
        Case::new(
            "a byte order mark",
            format!("\u{feff}{text}"),
            Some("request"),
        ),
        Case::new("null", b"null".to_vec(), Some("request")),
        Case::new("true", b"true".to_vec(), Some("request")),
        Case::new("a number", b"1e308".to_vec(), Some("request")),
        Case::new("a string", b"\"x\"".to_vec(), Some("request")),
        Case::new("an array", b"[]".to_vec(), Some("request")),
        Case::new("bare NaN", b"NaN".to_vec(), Some("request")),
        Case::new("trailing garbage", format!("{text} x"), Some("request")),
        Case::new(
            "a second document",
            format!("{text}{text}"),
            Some("request"),
        ),
        // An unknown field is named itself.
        Case::new(
            "unknown top-level field",
            with_unknown(base, "zzz_unknown"),
            Some("zzz_unknown"),
        ),
        Case::new("an empty key", with_unknown(base, ""), None),
        Case::new("duplicate key", duplicate_key(base), None),
    ];
    let mut form = Case::new(
        "form content type",
        b"goal=1&market=2".to_vec(),
        Some("request"),
    );
    form.content_type = "application/x-www-form-urlencoded";
    cases.push(form);
    let mut multipart = Case::new(
        "multipart content type",
        b"--X\r\nContent-Disposition: form-data; name=\"goal\"\r\n\r\n1\r\n--X--\r\n".to_vec(),
        Some("request"),
    );
    multipart.content_type = "multipart/form-data; boundary=X";
    cases.push(multipart);
    // The service reads every body as JSON whatever its Content-Type: a well-formed one is
    // answered, which is fine; only a 5xx would not be.
    let mut plain = Case::new("well-formed, text/plain", text.clone(), None);
    plain.content_type = "text/plain";
    plain.may_succeed = true;
    cases.push(plain);
    let first = base
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_else(|| "x".into());
    let mut big = Case::new(
        "a 10 MB string",
        format!("{{\"{first}\": \"{}\"}}", "x".repeat(10 << 20)),
        None,
    );
    big.oversize = true;
    cases.push(big);
    let mut million = Case::new(
        "a million numbers",
        format!("{{\"{first}\": {}}}", zeros(1_000_000)),
        None,
    );
    million.oversize = true;
    cases.push(million);

    let Some(object) = base.as_object() else {
        return cases;
    };
    for (field, value) in object {
        let pointer = format!("/{field}");
        let wrong: &[&str] = match value {
            Value::Object(_) => &["\"a string\"", "12345", "true", "[1, 2, 3]"],
            Value::Array(_) => &["\"a string\"", "12345", "{}"],
            Value::Number(_) => &["\"12\"", "true", "{}", "[]"],
            Value::String(_) => &["12345", "true", "{}", "[]"],
            Value::Bool(_) => &["\"true\"", "1", "{}"],
            Value::Null => &["\"a string\""],
        };
        for token in wrong {
            cases.push(Case::new(
                format!("{field} = {token}"),
                with_raw(base, &pointer, token),
                Some(field.as_str()),
            ));
        }
        for token in ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"] {
            cases.push(Case::new(
                format!("{field} = {token}"),
                with_raw(base, &pointer, token),
                Some(field.as_str()),
            ));
        }
        let mut null = Case::new(
            format!("{field} = null"),
            base_with_null(base, field),
            Some(field.as_str()),
        );
        null.may_succeed = true;
        cases.push(null);
        cases.push(Case::new(
            format!("{field} = 900 KB string"),
            with_raw(base, &pointer, &format!("\"{}\"", "x".repeat(900 << 10))),
            Some(field.as_str()),
        ));
        cases.push(Case::new(
            format!("{field} = 200k zeros"),
            with_raw(base, &pointer, &zeros(200_000)),
            Some(field.as_str()),
        ));
        let mut nested = Case::new(
            format!("{field} = 100k nested arrays"),
            with_raw(base, &pointer, &deep),
            Some(field.as_str()),
        );
        nested.or_request = true;
        cases.push(nested);
        if value.is_object() {
            let mut body = base.clone();
            body[field.as_str()]["zzz_unknown"] = json!(1);
            cases.push(Case::new(
                format!("{field}.zzz_unknown"),
                body.to_string(),
                Some(field.as_str()),
            ));
        }
    }
    let mut all = Vec::new();
    nodes(base, "", false, &mut all);
    let mut first_number_under = std::collections::HashSet::new();
    for (pointer, value, in_array) in &all {
        let field = top(pointer);
        if value.is_number() {
            for number in [1e308, -1e308] {
                cases.push(Case::new(
                    format!("{pointer} = {number:e}"),
                    with(base, pointer, json!(number)).to_string(),
                    Some(field),
                ));
            }
            if first_number_under.insert(field.to_string()) {
                for token in [
                    "NaN",
                    "\"NaN\"",
                    "Infinity",
                    "\"Infinity\"",
                    "-Infinity",
                    "\"-Infinity\"",
                    "1e999",
                    "-1e999",
                    "18446744073709551616",
                    "-1",
                    "1.5",
                ] {
                    let mut case = Case::new(
                        format!("{pointer} = {token}"),
                        with_raw(base, pointer, token),
                        Some(field),
                    );
                    // Wrong for a count, right for a rate or an amount.
                    case.may_succeed = token == "-1" || token == "1.5";
                    cases.push(case);
                }
            }
        }
        if value.is_array() && !in_array && pointer.matches('/').count() > 1 {
            cases.push(Case::new(
                format!("{pointer} = 200k zeros"),
                with_raw(base, pointer, &zeros(200_000)),
                Some(field),
            ));
        }
    }
    cases
}

/// `base` with one more top-level field, `key`.
fn with_unknown(base: &Value, key: &str) -> String {
    let mut body = base.clone();
    if let Some(object) = body.as_object_mut() {
        object.insert(key.into(), json!(1));
    }
    body.to_string()
}

/// `base` with its first field given twice.
fn duplicate_key(base: &Value) -> String {
    let text = base.to_string();
    match base.as_object().and_then(|o| o.iter().next()) {
        Some((key, value)) => format!("{{{}: {value}, {}", json!(key), &text[1..]),
        None => text,
    }
}

fn base_with_null(base: &Value, field: &str) -> String {
    let mut body = base.clone();
    body[field] = Value::Null;
    body.to_string()
}

/// A body's `options.paths` made small, so that a hostile case the service accepts is cheap.
fn small(mut body: Value) -> Value {
    if let Some(paths) = body.pointer_mut("/options/paths") {
        *paths = json!(200);
    }
    body
}

/// The well-formed body of each tool, by name.
fn tool_body(name: &str) -> Option<Value> {
    Some(small(example(match name {
        "simulate_goal" | "required_contribution" => "accumulation-30y.json",
        "sustainable_withdrawal" => "retirement-drawdown.json",
        "what_if" => "what-if.json",
        "sensitivity" => "sensitivity.json",
        "efficient_frontier" => "frontier.json",
        "frontier_sweep" => "sweep.json",
        "portfolio_risk" => "risk.json",
        "plan_household" => "plan-couple.json",
        "plan_sustainable_spending" | "plan_social_security_claiming" => "plan-single-retiree.json",
        "plan_withdrawal_order" => "plan-pre-retiree.json",
        _ => return None,
    })))
}

/// What is wrong with the answer `status`, `text` to `case`, if anything.
fn judge(case: &Case, body_read: bool, status: u16, text: &str) -> Option<String> {
    if status >= 500 {
        return Some(format!("{status}: {text}"));
    }
    if !body_read {
        // A route that never reads its body (replay of an unknown id): any 4xx.
        return (!(400..500).contains(&status)).then(|| format!("{status}: {text}"));
    }
    if case.oversize {
        return (status != 413).then(|| format!("{status}, not 413: {text}"));
    }
    if (200..300).contains(&status) && case.may_succeed {
        return None;
    }
    if !(400..500).contains(&status) || status == 404 || status == 405 {
        return Some(format!("{status}: {text}"));
    }
    if status == 400 || status == 422 {
        let error: Value = match serde_json::from_str(text) {
            Ok(error) => error,
            Err(_) => return Some(format!("{status} not JSON: {text}")),
        };
        let named = error["error"]["field"].as_str().unwrap_or("");
        if named.is_empty() {
            return Some(format!("{status} names no field: {text}"));
        }
        if let Some(field) = &case.field {
            let under = (case.or_request && named == "request")
                || named == field
                || named.starts_with(&format!("{field}."))
                || named.starts_with(&format!("{field}["));
            if !under {
                return Some(format!("{status} names {named:?}, not {field:?}: {text}"));
            }
        }
    }
    None
}

/// At most 600 characters of `text`.
fn clip(text: &str) -> String {
    text.chars().take(600).collect()
}

/// Send `case` to `url`; a problem in words, if any.
async fn check(http: &reqwest::Client, url: &str, body_read: bool, case: &Case) -> Option<String> {
    let started = Instant::now();
    let sent = http
        .post(url)
        .header("content-type", case.content_type)
        .body(case.body.clone())
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    let problem = match sent {
        Err(e) if e.is_timeout() => Some(format!("no answer within 20 s: {e}")),
        // Over the limit, or not read: the server may answer and close the connection before
        // the whole body is written, which the client sees as an error of its own.
        Err(_) if case.oversize || !body_read => None,
        Err(e) => Some(format!("no answer: {e}")),
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(text) => judge(case, body_read, status, &text),
                Err(e) => Some(format!("{status}, the body unread: {e}")),
            }
        }
    };
    problem.map(|p| {
        format!(
            "POST {url} [{}] ({:.1} s): {}",
            case.label,
            started.elapsed().as_secs_f64(),
            clip(&p)
        )
    })
}

#[tokio::test]
async fn hostile_bodies_get_a_4xx_naming_the_field_on_every_route() {
    // With authentication on, as a deployment runs (an admin key, so that every route reads
    // its body rather than refusing the caller).
    let server = start(&["--api-key", "fuzz:fuzz-secret", "--admin", "key:fuzz"]);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        "Bearer fuzz-secret".parse().unwrap(),
    );
    // A connection per request: the server closes one after refusing an oversized body, and
    // a pooled client may try to reuse it at that instant (a client-side error, not an answer).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .default_headers(headers)
        .build()
        .unwrap();
    let started = Instant::now();
    let base = &server.base;
    let goal = small(example("accumulation-30y.json"));
    // (route, its well-formed body, whether it reads the body at all)
    let mut routes: Vec<(String, Value, bool)> = vec![
        ("/v1/simulations".into(), goal.clone(), true),
        ("/v1/solve/required-contribution".into(), goal.clone(), true),
        (
            "/v1/solve/sustainable-withdrawal".into(),
            small(example("retirement-drawdown.json")),
            true,
        ),
        ("/v1/what-if".into(), small(example("what-if.json")), true),
        (
            "/v1/sensitivity".into(),
            small(example("sensitivity.json")),
            true,
        ),
        ("/v1/frontier".into(), example("frontier.json"), true),
        (
            "/v1/frontier/sweep".into(),
            small(example("sweep.json")),
            true,
        ),
        ("/v1/risk".into(), small(example("risk.json")), true),
        ("/v1/plans".into(), small(example("plan-couple.json")), true),
        (
            "/v1/plans/solve/spending".into(),
            small(example("plan-single-retiree.json")),
            true,
        ),
        (
            "/v1/plans/solve/claiming".into(),
            small(example("plan-single-retiree.json")),
            true,
        ),
        (
            "/v1/plans/solve/withdrawal-order".into(),
            small(example("plan-pre-retiree.json")),
            true,
        ),
        (
            "/v1/rescore-runs".into(),
            json!({"run_key": "fuzz", "filter": {"category": "retirement"}, "paths": 100,
                   "shard_size": 10, "as_of": "2026-01-01"}),
            true,
        ),
        (
            "/v1/simulations/no-such-id/replay".into(),
            goal.clone(),
            false,
        ),
    ];
    let catalogue: Value = get_json(&http, format!("{base}/v1/tools")).await;
    let tools = catalogue["tools"].as_array().expect("the tool list");
    assert!(!tools.is_empty());
    for tool in tools {
        let name = tool["name"].as_str().expect("a tool's name");
        let body = tool_body(name)
            .unwrap_or_else(|| panic!("no example body for tool {name}: add one to tool_body"));
        routes.push((format!("/v1/tools/{name}"), body, true));
    }

    let mut problems = Vec::new();
    let mut sent = 0;
    for (route, body, body_read) in &routes {
        let url = format!("{base}{route}");
        let cases = corpus(body);
        sent += cases.len();
        let found: Vec<Option<String>> = stream::iter(cases.iter())
            .map(|case| check(&http, &url, *body_read, case))
            .buffer_unordered(4)
            .collect()
            .await;
        problems.extend(found.into_iter().flatten());
    }

    // Well-formed edge cases once answered 500: every weight pinned by its bounds ("singular
    // KKT system"), whose answer is the one portfolio or a 422, and the fan chart of a
    // simulation that asked for no percentiles ("no percentiles to draw").
    let pinned = json!({
        "assets": [
            {"name": "a", "expected_return": 0.085, "volatility": 0.16},
            {"name": "b", "expected_return": 0.08, "volatility": 0.18},
            {"name": "c", "expected_return": 0.095, "volatility": 0.24}
        ],
        "bounds": [{"min": 0.2, "max": 0.2}, {"min": 0.3, "max": 0.3}, {"min": 0.5, "max": 0.5}]
    });
    let mut sweep = small(example("sweep.json"));
    sweep["frontier"] = pinned.clone();
    for (route, body) in [
        ("/v1/frontier", &pinned),
        ("/v1/tools/efficient_frontier", &pinned),
        ("/v1/frontier/sweep", &sweep),
    ] {
        let mut case = Case::new("every weight pinned by its bounds", body.to_string(), None);
        case.may_succeed = true;
        sent += 1;
        if let Some(problem) = check(&http, &format!("{base}{route}"), true, &case).await {
            problems.push(problem);
        }
    }
    let mut request = goal.clone();
    request["options"]["percentiles"] = json!([]);
    request["options"]["async"] = json!(true);
    let job: Value = common::post_json(&http, format!("{base}/v1/simulations"), &request).await;
    let id = job["id"].as_str().expect("a job id").to_string();
    // The events end with the job.
    let events = http
        .get(format!("{base}/v1/simulations/{id}/events"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the job's events are answered");
    let _ = events.text().await;
    let chart = http
        .get(format!("{base}/v1/simulations/{id}/fan-chart.svg"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the fan chart is answered");
    sent += 2;
    let status = chart.status().as_u16();
    if status >= 500 {
        let text = chart.text().await.unwrap_or_default();
        problems.push(format!(
            "GET /v1/simulations/{{id}}/fan-chart.svg of a simulation with no percentiles: \
             {status}: {}",
            clip(&text)
        ));
    }

    // Hostile ids on the routes that take one.
    let long = "x".repeat(8 << 10);
    // Under hyper's limit of 65,534 bytes for a whole URI (the client refuses longer ones).
    let longer = "x".repeat(60 << 10);
    let ids = [
        long.as_str(),
        longer.as_str(),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2F",
        "%00",
        "%ff%fe",
        "%",
        "%zz",
        "%F0%9F%92%A9",
        "%27%20OR%201%3D1%20--",
        "a%0d%0aX-Injected:%20yes",
        "9223372036854775808",
        "-1",
        "0",
        "1e308",
        "NaN",
    ];
    let mut gets = Vec::new();
    for id in ids {
        for path in [
            "/v1/simulations/{}",
            "/v1/simulations/{}/events",
            "/v1/simulations/{}/fan-chart.svg",
            "/v1/rescore-runs/{}",
        ] {
            gets.push(("GET", format!("{base}{}", path.replace("{}", id))));
        }
        gets.push(("POST", format!("{base}/v1/simulations/{id}/replay")));
        gets.push(("POST", format!("{base}/v1/tools/{id}")));
    }
    gets.push(("GET", format!("{base}/v1/tools?format=%ff%fe")));
    gets.push(("GET", format!("{base}/v1/tools?format={long}")));
    sent += gets.len();
    for (method, url) in &gets {
        let request = if *method == "GET" {
            http.get(url)
        } else {
            http.post(url).json(&goal)
        };
        let shown: String = url.chars().take(160).collect();
        match request.timeout(Duration::from_secs(20)).send().await {
            Err(e) => problems.push(format!("{method} {shown}: no answer: {e}")),
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let wanted = (400..500).contains(&status)
                    || (*method == "GET" && url.contains("/v1/tools?") && status == 200);
                let problem = if !wanted {
                    Some(format!("{status}: {text}"))
                } else if status == 400 || status == 422 {
                    match serde_json::from_str::<Value>(&text) {
                        Ok(error)
                            if error["error"]["field"]
                                .as_str()
                                .is_some_and(|f| !f.is_empty()) =>
                        {
                            None
                        }
                        _ => Some(format!(
                            "{status} without a JSON error naming a field: {text}"
                        )),
                    }
                } else {
                    None
                };
                if let Some(problem) = problem {
                    problems.push(format!("{method} {shown}: {}", clip(&problem)));
                }
            }
        }
    }

    // The server is still up, and answers at once.
    let health = client()
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the server still answers");
    assert_eq!(health.status(), 200);
    eprintln!(
        "{sent} hostile requests on {} routes in {:.1} s: {} problems",
        routes.len(),
        started.elapsed().as_secs_f64(),
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
