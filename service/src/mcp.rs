//! The agent tools over the Model Context Protocol (the official Rust SDK, `rmcp`): `sextant
//! mcp` on stdio for a local agent, and streamable HTTP at `/mcp` on the service.
//!
//! The tools are the ones of `/v1/tools` ([`super::tools`]): their input schemas come from the
//! request types, a call goes through [`super::tool_result`] (the same validation, budget,
//! batching and cancellation as HTTP: a call whose client goes away, or cancels it, stops
//! computing) and answers the plain-language summary as text, the result as structured
//! content, and for a goal simulation or a household plan its fan chart as an SVG resource.
//! A refused input is a tool error (`isError`) naming the field, which a model can read and
//! fix. Over HTTP, `/mcp` sits behind the same key check as `/v1`, and each call is made as the
//! caller of that request; the fan charts of the caller's stored simulations and plans are
//! resources (`sextant://simulations/{id}/fan-chart.svg`, `sextant://plans/{id}/fan-chart.svg`),
//! another caller's are not found. On stdio the
//! caller is the local user, who owns everything (as without auth on loopback).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

use super::jobs::JobKind;
use super::{stored, tools, ApiError, AppState, Caller};

/// What one MCP session (or, stateless, one request) works with.
#[derive(Clone)]
pub struct SextantMcp {
    state: AppState,
    /// The caller when the transport has no per-request identity (stdio).
    local: Option<Caller>,
}

const FAN_CHART_SUFFIX: &str = "/fan-chart.svg";
/// The kinds of stored job whose fan charts are resources.
const CHARTED: [JobKind; 2] = [JobKind::Goal, JobKind::Plan];

impl SextantMcp {
    /// Who makes this request: the caller the key check put into the HTTP request's
    /// extensions, else the local user of stdio.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .or(self.local.as_ref())
            .cloned()
            .ok_or_else(|| ErrorData::invalid_request("no authenticated caller", None))
    }
}

fn catalogue() -> Vec<Tool> {
    tools::all()
        .iter()
        .map(|t| {
            let schema: JsonObject = match t.input_schema() {
                Value::Object(schema) => schema,
                _ => JsonObject::new(),
            };
            Tool::new(t.name, t.description, Arc::new(schema))
        })
        .collect()
}

fn fan_chart_uri(kind: JobKind, id: &str) -> String {
    format!("sextant://{}/{id}{FAN_CHART_SUFFIX}", kind.collection())
}

/// The kind and id of a fan chart's URI.
fn fan_chart_of(uri: &str) -> Option<(JobKind, &str)> {
    let rest = uri.strip_prefix("sextant://")?;
    let (collection, rest) = rest.split_once('/')?;
    let kind = CHARTED.into_iter().find(|k| k.collection() == collection)?;
    Some((kind, rest.strip_suffix(FAN_CHART_SUFFIX)?))
}

/// A service error as MCP: a request the model can fix is a tool error it reads; the rest are
/// protocol errors.
fn tool_error(e: ApiError) -> Result<CallToolResponse, ErrorData> {
    match &e {
        ApiError::Malformed { .. } | ApiError::Invalid { .. } | ApiError::TooLarge { .. } => {
            Ok(CallToolResult::error(vec![ContentBlock::text(e.described())]).into())
        }
        ApiError::NotFound(_) => Err(ErrorData::invalid_params(e.message(), None)),
        _ => Err(ErrorData::internal_error(e.message(), None)),
    }
}

impl ServerHandler for SextantMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "sextant",
            sextant_engine::ENGINE_VERSION,
        ))
        .with_instructions(
            "Sextant: Monte Carlo for financial goals (success probability, fan charts, \
             required savings, sustainable withdrawals, what-if, sensitivity) and portfolios \
             (efficient frontier, goal sweeps, risk). Each tool answers a plain-language \
             summary to quote and the full result; amounts are in the caller's currency, \
             rates annual decimals. docs/model.md in the repository says what is computed.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.caller(&context)?;
        Ok(ListToolsResult::with_all_items(catalogue()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let name = request.name.to_string();
        let Some(tool) = tools::find(&name) else {
            return Err(ErrorData::invalid_params(format!("no tool {name:?}"), None));
        };
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let body = serde_json::to_vec(&arguments)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        // The client went away (over HTTP, rmcp cancels a request whose connection closed) or
        // sent `notifications/cancelled`: dropping the call cancels its work, as a gone HTTP
        // caller's is.
        let answer = tokio::select! {
            answer = super::tool_result(&self.state, &caller, tool.name, &body) => answer,
            () = context.ct.cancelled() => {
                return Err(ErrorData::internal_error("cancelled by the client", None));
            }
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => return tool_error(e),
        };
        let summary = answer["summary"].as_str().unwrap_or_default().to_string();
        let mut content = vec![ContentBlock::text(summary)];
        // The picture an agent can show: drawn from the result, as the HTTP route draws it.
        let chart = match tool.operation {
            super::Operation::Simulate => Some(crate::charts::fan_chart as fn(&Value) -> _),
            super::Operation::Plan => Some(crate::charts::plan_fan_chart as fn(&Value) -> _),
            _ => None,
        };
        if let Some(chart) = chart {
            if let Ok(svg) = chart(&answer["result"]) {
                content.push(ContentBlock::resource(
                    ResourceContents::text(svg, "sextant://fan-chart.svg")
                        .with_mime_type("image/svg+xml"),
                ));
            }
        }
        let mut result = CallToolResult::success(content);
        result.structured_content = Some(answer["result"].clone());
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = self.caller(&context)?;
        let query = stored::ListQuery {
            status: Some("complete".into()),
            limit: Some(50),
            cursor: None,
        };
        let mut resources = Vec::new();
        for kind in CHARTED {
            let page = stored::list(&self.state, &caller, kind, query.clone())
                .await
                .map_err(|e| ErrorData::internal_error(e.message(), None))?;
            resources.extend(
                page[kind.collection()]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["id"].as_str())
                    .map(|id| {
                        Resource::new(
                            fan_chart_uri(kind, id),
                            format!("fan chart of {} {id}", kind.noun()),
                        )
                        .with_mime_type("image/svg+xml")
                    }),
            );
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let not_found = || {
            ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                Some(serde_json::json!({ "uri": request.uri })),
            )
        };
        let (kind, id) = fan_chart_of(&request.uri).ok_or_else(not_found)?;
        // Another caller's simulation or plan is not found, as over HTTP (and audited there).
        let svg = stored::fan_chart(&self.state, &caller, kind, id)
            .await
            .map_err(|e| match e {
                ApiError::NotFound(_) => not_found(),
                other => ErrorData::invalid_params(other.message(), None),
            })?;
        let contents =
            ResourceContents::text(svg, request.uri.clone()).with_mime_type("image/svg+xml");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

/// The `/mcp` endpoint: stateless streamable HTTP (any replica answers any request; no session
/// to pin). Requests are made as the caller the key check found. The Host header is checked
/// against the loopback names while the service listens on loopback (a guard against DNS
/// rebinding from a browser); beyond loopback, authentication guards it instead.
pub fn http_service(
    state: AppState,
    loopback_only: bool,
    max_body_bytes: usize,
) -> rmcp::transport::StreamableHttpService<
    SextantMcp,
    rmcp::transport::streamable_http_server::session::never::NeverSessionManager,
> {
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(max_body_bytes);
    if !loopback_only {
        config = config.disable_allowed_hosts();
    }
    let handler = SextantMcp { state, local: None };
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(Default::default()),
        config,
    )
}

/// `sextant mcp`: the tools on stdin/stdout until the client closes them.
pub async fn serve_stdio(state: AppState) -> anyhow::Result<()> {
    let local = Caller::anonymous();
    let handler = SextantMcp {
        state,
        local: Some(local),
    };
    handler
        .serve(rmcp::transport::stdio())
        .await?
        .waiting()
        .await?;
    Ok(())
}
