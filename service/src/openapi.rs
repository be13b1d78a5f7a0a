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
use sextant_engine::{GoalRequest, PlanRequest};

/// One operation as each interface shows it.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The OpenAPI operation id.
    pub id: &'static str,
    pub summary: &'static str,
    /// The request body's schema (from the request type).
    pub request: Option<&'static str>,
    /// The `sextant.v1` message of the JSON answer (`200`, or `202` for a job).
    pub response: Option<&'static str>,
    /// The gRPC methods that are this route's twins.
    pub grpc: &'static [&'static str],
}

/// Every route the router serves (a test checks the router against this list), with its gRPC
/// twins (a test checks the `.proto` service against it, and the tools' operations).
pub const ROUTES: [Route; 33] = [
    Route {
        method: "post",
        path: "/v1/simulations",
        id: "simulate",
        summary: "Goal Monte Carlo (sync, or a job with options.async)",
        request: Some("GoalRequest"),
        response: Some("SimulationResult"),
        grpc: &["Simulate", "CreateSimulation", "SimulateStream"],
    },
    Route {
        method: "get",
        path: "/v1/simulations",
        id: "listSimulations",
        summary: "The caller's own simulations, newest first, a page at a time",
        request: None,
        response: Some("SimulationList"),
        grpc: &["ListSimulations"],
    },
    Route {
        method: "get",
        path: "/v1/simulations/{id}",
        id: "getSimulation",
        summary: "A simulation job's status and result",
        request: None,
        response: Some("SimulationRecord"),
        grpc: &["GetSimulation"],
    },
    Route {
        method: "get",
        path: "/v1/simulations/{id}/events",
        id: "simulationEvents",
        summary: "A job's events as server-sent events",
        request: None,
        response: None,
        grpc: &["SimulationEvents"],
    },
    Route {
        method: "get",
        path: "/v1/simulations/{id}/fan-chart.svg",
        id: "fanChart",
        summary: "The fan chart of a finished simulation, as SVG",
        request: None,
        response: None,
        grpc: &["GetFanChart"],
    },
    Route {
        method: "post",
        path: "/v1/simulations/{id}/replay",
        id: "replaySimulation",
        summary:
            "Run a stored simulation again with its seed; says whether the result is identical",
        request: None,
        response: Some("ReplayResult"),
        grpc: &["Replay"],
    },
    Route {
        method: "post",
        path: "/v1/histories",
        id: "createHistory",
        summary: "Store a history of monthly returns under a name (JSON, or CSV with ?name=); 201, 409 when the name is taken",
        request: Some("HistoryUpload"),
        response: Some("HistoryCreated"),
        grpc: &["CreateHistory"],
    },
    Route {
        method: "get",
        path: "/v1/histories",
        id: "listHistories",
        summary: "The caller's histories: names, assets, months, inflation",
        request: None,
        response: Some("HistoryList"),
        grpc: &["ListHistories"],
    },
    Route {
        method: "get",
        path: "/v1/histories/{name}",
        id: "getHistory",
        summary: "One of the caller's histories",
        request: None,
        response: Some("NamedHistory"),
        grpc: &["GetHistory"],
    },
    Route {
        method: "post",
        path: "/v1/rescore-runs",
        id: "createRescoreRun",
        summary: "Create (or join, by run_key) a re-scoring run of the stored goals; 202",
        request: Some("RunSpec"),
        response: Some("RescoreRunCreated"),
        grpc: &["CreateRescoreRun"],
    },
    Route {
        method: "get",
        path: "/v1/rescore-runs/{id}",
        id: "getRescoreRun",
        summary: "A re-scoring run's status, progress and goals by funding status",
        request: None,
        response: Some("RescoreRunStatus"),
        grpc: &["GetRescoreRun"],
    },
    Route {
        method: "post",
        path: "/v1/solve/required-contribution",
        id: "requiredContribution",
        summary: "Least monthly contribution meeting the success threshold",
        request: Some("GoalRequest"),
        response: Some("SolveResult"),
        grpc: &["RequiredContribution"],
    },
    Route {
        method: "post",
        path: "/v1/solve/sustainable-withdrawal",
        id: "sustainableWithdrawal",
        summary: "Largest monthly withdrawal keeping the success threshold",
        request: Some("GoalRequest"),
        response: Some("SolveResult"),
        grpc: &["SustainableWithdrawal"],
    },
    Route {
        method: "post",
        path: "/v1/what-if",
        id: "whatIf",
        summary: "A base goal and variants, common random numbers",
        request: Some("WhatIfRequest"),
        response: Some("WhatIfResult"),
        grpc: &["WhatIf"],
    },
    Route {
        method: "post",
        path: "/v1/sensitivity",
        id: "sensitivity",
        summary: "Each input moved by a relative step: a tornado",
        request: Some("SensitivityRequest"),
        response: Some("SensitivityResult"),
        grpc: &["Sensitivity"],
    },
    Route {
        method: "post",
        path: "/v1/frontier",
        id: "frontier",
        summary: "The exact efficient frontier",
        request: Some("FrontierRequest"),
        response: Some("FrontierResult"),
        grpc: &["Frontier"],
    },
    Route {
        method: "post",
        path: "/v1/frontier/sweep",
        id: "frontierSweep",
        summary: "The goal simulated at every frontier point",
        request: Some("SweepRequest"),
        response: Some("SweepResult"),
        grpc: &["FrontierSweep"],
    },
    Route {
        method: "post",
        path: "/v1/risk",
        id: "risk",
        summary: "Risk metrics of an allocation",
        request: Some("RiskRequest"),
        response: Some("RiskResult"),
        grpc: &["Risk"],
    },
    Route {
        method: "post",
        path: "/v1/plans",
        id: "plan",
        summary: "A household plan: accounts, taxes, Social Security, lifetimes, spending rules \
            (sync, or a job with options.async)",
        request: Some("PlanRequest"),
        response: Some("PlanResult"),
        grpc: &["Plan", "CreatePlan", "PlanStream"],
    },
    Route {
        method: "get",
        path: "/v1/plans",
        id: "listPlans",
        summary: "The caller's own plan jobs, newest first, a page at a time",
        request: None,
        response: Some("PlanList"),
        grpc: &["ListPlans"],
    },
    Route {
        method: "get",
        path: "/v1/plans/{id}",
        id: "getPlan",
        summary: "A plan job's status and result",
        request: None,
        response: Some("PlanRecord"),
        grpc: &["GetPlan"],
    },
    Route {
        method: "get",
        path: "/v1/plans/{id}/events",
        id: "planEvents",
        summary: "A plan job's events as server-sent events",
        request: None,
        response: None,
        grpc: &["PlanEvents"],
    },
    Route {
        method: "get",
        path: "/v1/plans/{id}/fan-chart.svg",
        id: "planFanChart",
        summary: "The fan chart of a finished plan (wealth in today's dollars by age), as SVG",
        request: None,
        response: None,
        grpc: &["GetPlanFanChart"],
    },
    Route {
        method: "post",
        path: "/v1/plans/{id}/replay",
        id: "replayPlan",
        summary: "Run a stored plan again with its seed; says whether the result is identical",
        request: None,
        response: Some("PlanReplayResult"),
        grpc: &["ReplayPlan"],
    },
    Route {
        method: "post",
        path: "/v1/plans/solve/spending",
        id: "planSustainableSpending",
        summary: "The largest spending a plan sustains at its success threshold",
        request: Some("PlanRequest"),
        response: Some("SpendingSolution"),
        grpc: &["SustainableSpending"],
    },
    Route {
        method: "post",
        path: "/v1/plans/solve/claiming",
        id: "planClaiming",
        summary: "Every combination of Social Security claim ages, and the best",
        request: Some("PlanRequest"),
        response: Some("ClaimingSolution"),
        grpc: &["ClaimingAges"],
    },
    Route {
        method: "post",
        path: "/v1/plans/solve/withdrawal-order",
        id: "planWithdrawalOrders",
        summary: "The withdrawal orders side by side: success, lifetime taxes, estate",
        request: Some("PlanRequest"),
        response: Some("OrderComparison"),
        grpc: &["WithdrawalOrders"],
    },
    Route {
        method: "get",
        path: "/v1/tools",
        id: "listTools",
        summary: "The operations as LLM-agent tools",
        request: None,
        response: Some("ToolList"),
        grpc: &["ListTools"],
    },
    Route {
        method: "post",
        path: "/v1/tools/{name}",
        id: "runTool",
        summary: "Run one tool: result and plain-language summary",
        request: None,
        response: Some("ToolResult"),
        grpc: &["RunTool"],
    },
    Route {
        method: "get",
        path: "/healthz",
        id: "health",
        summary: "Liveness",
        request: None,
        response: None,
        grpc: &[],
    },
    Route {
        method: "get",
        path: "/readyz",
        id: "ready",
        summary: "Readiness",
        request: None,
        response: None,
        grpc: &[],
    },
    Route {
        method: "get",
        path: "/metrics",
        id: "metrics",
        summary: "Prometheus metrics",
        request: None,
        response: None,
        grpc: &[],
    },
    Route {
        method: "get",
        path: "/openapi.json",
        id: "openapi",
        summary: "This document",
        request: None,
        response: None,
        grpc: &[],
    },
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

/// The descriptor of the `sextant.v1` message `name`.
fn message_descriptor(name: &str) -> prost_reflect::MessageDescriptor {
    static POOL: std::sync::LazyLock<prost_reflect::DescriptorPool> =
        std::sync::LazyLock::new(|| {
            prost_reflect::DescriptorPool::decode(super::grpc::proto::DESCRIPTOR)
                .expect("the compiled descriptor set decodes")
        });
    POOL.get_message_by_name(&format!("sextant.v1.{name}"))
        .unwrap_or_else(|| panic!("no message sextant.v1.{name}"))
}

/// A field's key in the JSON document ([`super::json_key`]).
pub(super) fn json_key(field: &prost_reflect::FieldDescriptor) -> String {
    super::json_key::json_key(field.name(), field.json_name())
}

/// Add the JSON Schema of a result message's JSON document to `schemas` (and of every message
/// it holds). The answers' schemas come from the `.proto`'s result messages, which mirror the
/// engine's result types field by field: the typed gRPC answers are converted from the very
/// documents HTTP sends, refusing any field the `.proto` lacks, and the Python client test
/// compares the two field by field, so the schema cannot drift from what is sent without a
/// test failing. A field with presence (`optional`, or a message) may be absent or null; the
/// others are always sent.
fn add_message_schema(
    schemas: &mut Map<String, Value>,
    message: &prost_reflect::MessageDescriptor,
) {
    use prost_reflect::Kind;
    if schemas.contains_key(message.name()) {
        return;
    }
    schemas.insert(message.name().into(), Value::Null);
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in message.fields() {
        let schema = |kind: Kind, schemas: &mut Map<String, Value>| match kind {
            Kind::Double | Kind::Float => json!({"type": "number"}),
            Kind::Int32
            | Kind::Int64
            | Kind::Sint32
            | Kind::Sint64
            | Kind::Sfixed32
            | Kind::Sfixed64 => json!({"type": "integer"}),
            Kind::Uint32 | Kind::Uint64 | Kind::Fixed32 | Kind::Fixed64 => {
                json!({"type": "integer", "minimum": 0})
            }
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String | Kind::Bytes | Kind::Enum(_) => json!({"type": "string"}),
            Kind::Message(m) => match m.full_name() {
                "google.protobuf.Struct" => json!({"type": "object"}),
                "google.protobuf.Value" => json!({}),
                _ => {
                    add_message_schema(schemas, &m);
                    json!({"$ref": format!("#/components/schemas/{}", m.name())})
                }
            },
        };
        let mut value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            let values = schema(entry.map_entry_value_field().kind(), schemas);
            json!({"type": "object", "additionalProperties": values})
        } else if field.is_list() {
            json!({"type": "array", "items": schema(field.kind(), schemas)})
        } else {
            schema(field.kind(), schemas)
        };
        if field.supports_presence() {
            value = match value.get("type").cloned() {
                Some(Value::String(t)) => {
                    let mut v = value.clone();
                    v["type"] = json!([t, "null"]);
                    v
                }
                _ => json!({"anyOf": [value, {"type": "null"}]}),
            };
        } else {
            required.push(Value::String(json_key(&field)));
        }
        properties.insert(json_key(&field), value);
    }
    schemas.insert(
        message.name().into(),
        json!({"type": "object", "properties": properties, "required": required}),
    );
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
    add_schema::<PlanRequest>(&mut schemas, "PlanRequest");
    add_schema::<crate::rescore::RunSpec>(&mut schemas, "RunSpec");
    add_schema::<crate::histories::HistoryUpload>(&mut schemas, "HistoryUpload");
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
    for route in &ROUTES {
        let (method, path, id, summary, body) = (
            route.method,
            route.path,
            route.id,
            route.summary,
            route.request,
        );
        let answer = match route.response {
            Some(message) => {
                add_message_schema(&mut schemas, &message_descriptor(message));
                json!({"$ref": format!("#/components/schemas/{message}")})
            }
            None => json!({}),
        };
        let mut operation = json!({
            "operationId": id,
            "summary": summary,
            "x-grpc-methods": route.grpc.iter().map(|m| format!("sextant.v1.Sextant/{m}")).collect::<Vec<_>>(),
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": answer}}},
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
        if id == "listSimulations" || id == "listPlans" {
            operation["parameters"] = json!([
                {"name": "status", "in": "query", "required": false, "schema": {
                    "type": "string", "enum": ["queued", "running", "complete", "failed"]}},
                {"name": "limit", "in": "query", "required": false, "schema": {
                    "type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
                {"name": "cursor", "in": "query", "required": false, "schema": {
                    "type": "string", "description": "next_cursor of the page before"}},
            ]);
            operation["responses"]["422"] = error("status or limit out of bounds");
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
            "/v1/simulations/{id}/fan-chart.svg" | "/v1/plans/{id}/fan-chart.svg" => {
                operation["responses"]["200"] = json!({"description": "The fan chart",
                    "content": {"image/svg+xml": {"schema": {"type": "string"}}}});
                operation["responses"]["422"] = error("The result has no percentiles to draw");
            }
            "/readyz" => {
                operation["responses"]["503"] =
                    json!({"description": "Not ready: draining, or the database unreachable"});
            }
            _ => {}
        }
        if id == "simulate" || id == "plan" {
            add_message_schema(&mut schemas, &message_descriptor("SimulationJob"));
            operation["responses"]["202"] = json!({"description": "Job accepted (options.async)",
                "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/SimulationJob"}}}});
        }
        if id == "createHistory" {
            // A 201; the body may also be the CSV form, the name then in the query.
            let responses = operation["responses"].as_object_mut().expect("object");
            let created = responses.remove("200").unwrap_or_default();
            responses.insert("201".into(), created);
            responses.insert("409".into(), error("The caller has a history of that name"));
            operation["requestBody"]["content"]["text/csv"] = json!({"schema": {
                "type": "string",
                "description": "A header of asset names, an optional `inflation` column and a leading `month` or `date` label column; one row per month of simple returns (docs/model.md §4.3)"}});
            operation["parameters"] = json!([{"name": "name", "in": "query", "required": false,
                "schema": {"type": "string"}, "description": "The history's name, with a CSV body"}]);
        }
        if id == "createRescoreRun" {
            // Its answer is the 202, not a 200.
            let responses = operation["responses"].as_object_mut().expect("object");
            let accepted = responses.remove("200").unwrap_or_default();
            responses.insert("202".into(), accepted);
        }
        if id == "simulationEvents" || id == "planEvents" {
            operation["responses"]["200"] = json!({"description": "Server-sent events: queued, \
                progress, result or error, done (the data of each is JSON)",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}});
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
            "description": "Goal Monte Carlo, solvers, scenarios, efficient frontiers, risk and \
                household plans for financial planning. Field names as in docs/model.md."
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
        let operations: usize = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|methods| methods.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, ROUTES.len());
    }

    /// One list drives the interfaces: every method of the gRPC service is the twin of one
    /// route, answering that route's message; every agent tool is a route's operation; every
    /// route's answer has a schema.
    #[test]
    fn every_route_is_in_openapi_grpc_and_the_tools() {
        let service = message_descriptor("GoalRequest")
            .parent_pool()
            .get_service_by_name("sextant.v1.Sextant")
            .unwrap();
        let mut twins = std::collections::BTreeSet::<String>::new();
        for route in &ROUTES {
            for &name in route.grpc {
                let method = service
                    .methods()
                    .find(|m| m.name() == name)
                    .unwrap_or_else(|| panic!("{} names no gRPC method {name}", route.id));
                assert!(
                    twins.insert(name.into()),
                    "{name} is the twin of two routes"
                );
                let output = method.output().name().to_string();
                let expected = match name {
                    "CreateSimulation" | "CreatePlan" => "SimulationJob",
                    "SimulateStream" | "SimulationEvents" => "SimulationEvent",
                    "PlanStream" | "PlanEvents" => "PlanEvent",
                    "GetFanChart" | "GetPlanFanChart" => "FanChart",
                    _ => route.response.unwrap(),
                };
                assert_eq!(output, expected, "{name}");
            }
            if route.path.starts_with("/v1/") {
                assert!(!route.grpc.is_empty(), "{} has no gRPC twin", route.path);
            }
        }
        let methods: std::collections::BTreeSet<String> =
            service.methods().map(|m| m.name().to_string()).collect();
        assert_eq!(methods, twins, "gRPC methods that are no route's twin");
        for tool in crate::tools::all() {
            let path = tool.operation.path();
            assert!(
                ROUTES.iter().any(|r| r.path == path && r.method == "post"),
                "tool {} runs {path}, which is no route",
                tool.name
            );
        }
        let document = document();
        for route in ROUTES.iter().filter(|r| r.response.is_some()) {
            let name = route.response.unwrap();
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{name}"
            );
        }
    }
}
