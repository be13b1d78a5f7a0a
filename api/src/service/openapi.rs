//! `/openapi.json` (OpenAPI 3.1) and `/docs`, generated from the code: the routes from the
//! table below (a test checks that the server answers each), every request body's schema from
//! the request types themselves (schemars: JSON Schema 2020-12, which is OpenAPI 3.1's schema
//! dialect, so the schemas the tools list and the schemas here are one). utoipa's typed model
//! was tried and refused 2020-12 constructs such as `"type": ["number", "null"]`; the tests
//! validate the document with openapi-spec-validator instead. The docs page is one
//! self-contained HTML file that renders the document in the browser: nothing is fetched from
//! anywhere else, at build or run time.

use schemars::{schema_for, JsonSchema};
use serde_json::{json, Map, Value};
use sextant_engine::frontier::FrontierRequest;
use sextant_engine::risk::RiskRequest;
use sextant_engine::scenarios::{SensitivityRequest, WhatIfRequest};
use sextant_engine::sweep::SweepRequest;
use sextant_engine::GoalRequest;

/// (method, path, operation id, summary, request schema name).
type Route = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

/// Every route the router serves (a test checks the router against this list).
pub const ROUTES: [Route; 20] = [
    (
        "post",
        "/v1/simulations",
        "simulate",
        "Goal Monte Carlo (sync, or a job with options.async)",
        Some("GoalRequest"),
    ),
    (
        "get",
        "/v1/simulations/{id}",
        "getSimulation",
        "A simulation job's status and result",
        None,
    ),
    (
        "get",
        "/v1/simulations/{id}/events",
        "simulationEvents",
        "A job's events as server-sent events",
        None,
    ),
    (
        "get",
        "/v1/simulations/{id}/fan-chart.svg",
        "fanChart",
        "The fan chart of a finished simulation, as SVG",
        None,
    ),
    (
        "post",
        "/v1/simulations/{id}/replay",
        "replaySimulation",
        "Run a stored simulation again with its seed; says whether the result is identical",
        None,
    ),
    (
        "post",
        "/v1/rescore-runs",
        "createRescoreRun",
        "Create (or join, by run_key) a re-scoring run of the stored goals; 202",
        Some("RunSpec"),
    ),
    (
        "get",
        "/v1/rescore-runs/{id}",
        "getRescoreRun",
        "A re-scoring run's status, progress and goals by funding status",
        None,
    ),
    (
        "post",
        "/v1/solve/required-contribution",
        "requiredContribution",
        "Least monthly contribution meeting the success threshold",
        Some("GoalRequest"),
    ),
    (
        "post",
        "/v1/solve/sustainable-withdrawal",
        "sustainableWithdrawal",
        "Largest monthly withdrawal keeping the success threshold",
        Some("GoalRequest"),
    ),
    (
        "post",
        "/v1/what-if",
        "whatIf",
        "A base goal and variants, common random numbers",
        Some("WhatIfRequest"),
    ),
    (
        "post",
        "/v1/sensitivity",
        "sensitivity",
        "Each input moved by a relative step: a tornado",
        Some("SensitivityRequest"),
    ),
    (
        "post",
        "/v1/frontier",
        "frontier",
        "The exact efficient frontier",
        Some("FrontierRequest"),
    ),
    (
        "post",
        "/v1/frontier/sweep",
        "frontierSweep",
        "The goal simulated at every frontier point",
        Some("SweepRequest"),
    ),
    (
        "post",
        "/v1/risk",
        "risk",
        "Risk metrics of an allocation",
        Some("RiskRequest"),
    ),
    (
        "get",
        "/v1/tools",
        "listTools",
        "The operations as LLM-agent tools",
        None,
    ),
    (
        "post",
        "/v1/tools/{name}",
        "runTool",
        "Run one tool: result and plain-language summary",
        None,
    ),
    ("get", "/healthz", "health", "Liveness", None),
    ("get", "/readyz", "ready", "Readiness", None),
    ("get", "/metrics", "metrics", "Prometheus metrics", None),
    ("get", "/openapi.json", "openapi", "This document", None),
];

/// Add `T`'s schema (and the schemas it refers to) to `schemas` under `name`.
fn add_schema<T: JsonSchema>(schemas: &mut Map<String, Value>, name: &str) {
    let mut schema = serde_json::to_value(schema_for!(T)).unwrap_or(Value::Null);
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        if let Some(Value::Object(defs)) = object.remove("$defs") {
            for (k, v) in defs {
                schemas.insert(k, v);
            }
        }
    }
    schemas.insert(name.to_string(), schema);
}

/// `#/$defs/X` → `#/components/schemas/X`, everywhere.
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "$ref" {
                    if let Value::String(s) = v {
                        *s = s.replace("#/$defs/", "#/components/schemas/");
                    }
                } else {
                    rewrite_refs(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    add_schema::<GoalRequest>(&mut schemas, "GoalRequest");
    add_schema::<WhatIfRequest>(&mut schemas, "WhatIfRequest");
    add_schema::<SensitivityRequest>(&mut schemas, "SensitivityRequest");
    add_schema::<FrontierRequest>(&mut schemas, "FrontierRequest");
    add_schema::<SweepRequest>(&mut schemas, "SweepRequest");
    add_schema::<RiskRequest>(&mut schemas, "RiskRequest");
    add_schema::<crate::rescore::RunSpec>(&mut schemas, "RunSpec");
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"},
                "field": {"type": "string", "description": "The request field at fault"},
                "message": {"type": "string"}}}}}),
    );
    let error = |description: &str| {
        json!({"description": description, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}})
    };
    let mut paths = Map::new();
    for (method, path, id, summary, body) in ROUTES {
        let mut operation = json!({
            "operationId": id,
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {}}}},
                "401": error("No valid API key"),
                "404": error("Not found"),
                "503": error("Storage unavailable after retries; see Retry-After"),
            }
        });
        let parameters: Vec<Value> = ["id", "name"]
            .iter()
            .filter(|p| path.contains(&format!("{{{p}}}")))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(schema) = body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {
                "schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        if method == "post" {
            let responses = operation["responses"].as_object_mut().expect("object");
            responses.insert("400".into(), error("Malformed JSON; the field is named"));
            responses.insert(
                "422".into(),
                error("A bound broken or constraints infeasible"),
            );
            responses.insert("429".into(), error("Queue full; see Retry-After"));
            responses.insert("504".into(), error("Deadline passed"));
        }
        match path {
            // Plain text, not JSON.
            "/healthz" | "/metrics" => {
                operation["responses"]["200"] = json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}});
            }
            "/v1/simulations/{id}/fan-chart.svg" => {
                operation["responses"]["200"] = json!({"description": "The fan chart",
                    "content": {"image/svg+xml": {"schema": {"type": "string"}}}});
                operation["responses"]["422"] = error("The simulation has no percentiles to draw");
            }
            "/readyz" => {
                operation["responses"]["503"] =
                    json!({"description": "Not ready: draining, or the database unreachable"});
            }
            _ => {}
        }
        if path == "/v1/simulations" || path == "/v1/rescore-runs" {
            operation["responses"]["202"] = json!({"description": "Job accepted (options.async)"});
        }
        paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(method.to_string(), operation);
    }
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sextant",
            "version": sextant_engine::ENGINE_VERSION,
            "description": "Goal Monte Carlo, solvers, scenarios, efficient frontiers and risk for \
                financial planning. Field names as in docs/model.md."
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}
        },
        "paths": paths,
    });
    rewrite_refs(&mut document);
    document
}

/// A self-contained page that renders `/openapi.json`.
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sextant API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code,pre{font:13px ui-monospace,monospace}pre{background:#f4f4f4;padding:.6rem;overflow:auto}
h2{border-top:1px solid #ddd;padding-top:1rem}.m{font-weight:bold;text-transform:uppercase}</style>
</head><body><h1>Sextant API</h1><p id="d"></p><div id="ops"></div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('d').textContent = doc.info.description + ' (version ' + doc.info.version + ')';
  const ops = document.getElementById('ops');
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const h = document.createElement('h2');
      h.innerHTML = '<span class="m"></span> <code></code>';
      h.children[0].textContent = method; h.children[1].textContent = path;
      const p = document.createElement('p'); p.textContent = op.summary;
      ops.append(h, p);
      const ref = op.requestBody && op.requestBody.content['application/json'].schema.$ref;
      if (ref) {
        const name = ref.split('/').pop();
        const pre = document.createElement('pre');
        pre.textContent = JSON.stringify(doc.components.schemas[name], null, 2);
        const d = document.createElement('details');
        d.innerHTML = '<summary>Request body: ' + name + '</summary>';
        d.append(pre); ops.append(d);
      }
    }
  }
});
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_every_route_and_no_dangling_refs() {
        let document = document();
        let text = document.to_string();
        assert!(!text.contains("#/$defs/"));
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        assert_eq!(document["paths"].as_object().unwrap().len(), ROUTES.len());
    }
}
