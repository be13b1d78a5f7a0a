//! The gRPC face of the service (`proto/sextant/v1/sextant.proto`): every HTTP operation as a
//! typed method. A request message becomes the JSON document of its HTTP route
//! ([`super::typed`]) and takes the same path from there ([`super::call`], [`super::stored`]),
//! so validation, batching, limits, ownership and errors are one implementation. An
//! [`ApiError`] becomes a status with a standard `google.rpc.BadRequest` naming the field. The
//! standard health service and reflection are served beside it, behind the same request-id,
//! tracing and metrics layers as HTTP ([`super::layers`]).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use serde_json::Value;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::jobs::JobKind;
use super::{
    call, create_job, create_plan_job, stored, tools, typed, ApiError, AppState, Caller, Input,
    Operation,
};

pub mod proto {
    tonic::include_proto!("sextant.v1");
    pub const DESCRIPTOR: &[u8] = tonic::include_file_descriptor_set!("sextant_descriptor");
}

use proto as pb;
use proto::sextant_server::{Sextant, SextantServer};

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let (code, message) = (e.grpc_code(), e.described());
        match e.field() {
            Some(field) => Status::with_error_details(
                code,
                message,
                ErrorDetails::with_bad_request_violation(field, e.message()),
            ),
            None => Status::new(code, message),
        }
    }
}

pub struct GrpcService {
    state: AppState,
}

type Answer<T> = Result<Response<T>, Status>;
type Events<M> = Pin<Box<dyn Stream<Item = Result<M, Status>> + Send>>;
type EventStream = Events<pb::SimulationEvent>;
type PlanEventStream = Events<pb::PlanEvent>;

/// The message of a result document.
fn answer<T: serde::de::DeserializeOwned + prost::Name>(value: Value) -> Answer<T> {
    Ok(Response::new(typed::message(value)?))
}

/// A job's events as messages: `{"<event>": data}` is the `oneof`'s JSON.
fn event_messages<M: prost::Message + prost::Name + Default + 'static>(
    events: impl Stream<Item = super::jobs::JobEvent> + Send + 'static,
) -> Events<M> {
    Box::pin(events.map(|e| {
        let mut document = serde_json::Map::new();
        document.insert(e.event.to_string(), e.data);
        Ok(typed::dynamic_message::<M>(Value::Object(document))?)
    }))
}

impl GrpcService {
    fn authorise<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let value = |name: &str| request.metadata().get(name).and_then(|v| v.to_str().ok());
        let bearer = value("authorization").and_then(|v| v.strip_prefix("Bearer "));
        Ok(self.state.auth.check(bearer, value("x-api-key"))?)
    }

    /// One of the engine's operations on a typed request.
    async fn operation<M, T>(&self, request: Request<M>, operation: Operation) -> Answer<T>
    where
        M: prost::Message + prost::Name,
        T: serde::de::DeserializeOwned + prost::Name,
    {
        let caller = self.authorise(&request)?;
        let document = typed::document(request.get_ref())?;
        answer(call(&self.state, &caller, operation, Input::Document(document)).await?)
    }
}

/// A listing's query, as `GET /v1/simulations?status=&limit=&cursor=` reads it.
impl From<pb::ListSimulationsRequest> for stored::ListQuery {
    fn from(r: pb::ListSimulationsRequest) -> Self {
        stored::ListQuery {
            status: r.status,
            limit: r.limit,
            cursor: r.cursor,
        }
    }
}

#[tonic::async_trait]
impl Sextant for GrpcService {
    async fn simulate(&self, r: Request<pb::GoalRequest>) -> Answer<pb::SimulationResult> {
        self.operation(r, Operation::Simulate).await
    }

    async fn create_simulation(&self, r: Request<pb::GoalRequest>) -> Answer<pb::SimulationJob> {
        let caller = self.authorise(&r)?;
        let id = create_job(&self.state, &typed::body(r.get_ref())?, &caller).await?;
        answer(stored::job_links(JobKind::Goal, &id))
    }

    type SimulateStreamStream = EventStream;

    async fn simulate_stream(
        &self,
        r: Request<pb::GoalRequest>,
    ) -> Answer<Self::SimulateStreamStream> {
        let caller = self.authorise(&r)?;
        let id = create_job(&self.state, &typed::body(r.get_ref())?, &caller).await?;
        let events = stored::follow(&self.state, &id).await?;
        Ok(Response::new(event_messages(events)))
    }

    async fn get_simulation(&self, r: Request<pb::SimulationId>) -> Answer<pb::SimulationRecord> {
        let caller = self.authorise(&r)?;
        answer(stored::simulation(&self.state, &caller, JobKind::Goal, &r.get_ref().id).await?)
    }

    async fn list_simulations(
        &self,
        r: Request<pb::ListSimulationsRequest>,
    ) -> Answer<pb::SimulationList> {
        let caller = self.authorise(&r)?;
        let query = r.into_inner().into();
        answer(stored::list(&self.state, &caller, JobKind::Goal, query).await?)
    }

    type SimulationEventsStream = EventStream;

    async fn simulation_events(
        &self,
        r: Request<pb::SimulationId>,
    ) -> Answer<Self::SimulationEventsStream> {
        let caller = self.authorise(&r)?;
        let events = stored::events(&self.state, &caller, JobKind::Goal, &r.get_ref().id).await?;
        Ok(Response::new(event_messages(events)))
    }

    async fn get_fan_chart(&self, r: Request<pb::SimulationId>) -> Answer<pb::FanChart> {
        let caller = self.authorise(&r)?;
        let svg = stored::fan_chart(&self.state, &caller, JobKind::Goal, &r.get_ref().id).await?;
        Ok(Response::new(pb::FanChart { svg }))
    }

    async fn replay(&self, r: Request<pb::SimulationId>) -> Answer<pb::ReplayResult> {
        let caller = self.authorise(&r)?;
        answer(stored::replay(&self.state, &caller, JobKind::Goal, &r.get_ref().id).await?)
    }

    async fn create_rescore_run(
        &self,
        r: Request<pb::RescoreRunSpec>,
    ) -> Answer<pb::RescoreRunCreated> {
        let caller = self.authorise(&r)?;
        let body = typed::body(r.get_ref())?;
        answer(stored::create_rescore_run(&self.state, &caller, &body).await?)
    }

    async fn get_rescore_run(&self, r: Request<pb::RescoreRunId>) -> Answer<pb::RescoreRunStatus> {
        let caller = self.authorise(&r)?;
        let id = r.get_ref().id.to_string();
        answer(stored::rescore_run(&self.state, &caller, &id).await?)
    }

    async fn required_contribution(&self, r: Request<pb::GoalRequest>) -> Answer<pb::SolveResult> {
        self.operation(r, Operation::RequiredContribution).await
    }

    async fn sustainable_withdrawal(&self, r: Request<pb::GoalRequest>) -> Answer<pb::SolveResult> {
        self.operation(r, Operation::SustainableWithdrawal).await
    }

    async fn what_if(&self, r: Request<pb::WhatIfRequest>) -> Answer<pb::WhatIfResult> {
        self.operation(r, Operation::WhatIf).await
    }

    async fn sensitivity(
        &self,
        r: Request<pb::SensitivityRequest>,
    ) -> Answer<pb::SensitivityResult> {
        self.operation(r, Operation::Sensitivity).await
    }

    async fn frontier(&self, r: Request<pb::FrontierRequest>) -> Answer<pb::FrontierResult> {
        self.operation(r, Operation::Frontier).await
    }

    async fn frontier_sweep(&self, r: Request<pb::SweepRequest>) -> Answer<pb::SweepResult> {
        self.operation(r, Operation::Sweep).await
    }

    async fn risk(&self, r: Request<pb::RiskRequest>) -> Answer<pb::RiskResult> {
        self.operation(r, Operation::Risk).await
    }

    async fn plan(&self, r: Request<pb::PlanRequest>) -> Answer<pb::PlanResult> {
        self.operation(r, Operation::Plan).await
    }

    async fn create_plan(&self, r: Request<pb::PlanRequest>) -> Answer<pb::SimulationJob> {
        let caller = self.authorise(&r)?;
        let id = create_plan_job(&self.state, &typed::body(r.get_ref())?, &caller).await?;
        answer(stored::job_links(JobKind::Plan, &id))
    }

    type PlanStreamStream = PlanEventStream;

    async fn plan_stream(&self, r: Request<pb::PlanRequest>) -> Answer<Self::PlanStreamStream> {
        let caller = self.authorise(&r)?;
        let id = create_plan_job(&self.state, &typed::body(r.get_ref())?, &caller).await?;
        let events = stored::follow(&self.state, &id).await?;
        Ok(Response::new(event_messages(events)))
    }

    async fn get_plan(&self, r: Request<pb::SimulationId>) -> Answer<pb::PlanRecord> {
        let caller = self.authorise(&r)?;
        answer(stored::simulation(&self.state, &caller, JobKind::Plan, &r.get_ref().id).await?)
    }

    async fn list_plans(&self, r: Request<pb::ListSimulationsRequest>) -> Answer<pb::PlanList> {
        let caller = self.authorise(&r)?;
        let query = r.into_inner().into();
        answer(stored::list(&self.state, &caller, JobKind::Plan, query).await?)
    }

    type PlanEventsStream = PlanEventStream;

    async fn plan_events(&self, r: Request<pb::SimulationId>) -> Answer<Self::PlanEventsStream> {
        let caller = self.authorise(&r)?;
        let events = stored::events(&self.state, &caller, JobKind::Plan, &r.get_ref().id).await?;
        Ok(Response::new(event_messages(events)))
    }

    async fn get_plan_fan_chart(&self, r: Request<pb::SimulationId>) -> Answer<pb::FanChart> {
        let caller = self.authorise(&r)?;
        let svg = stored::fan_chart(&self.state, &caller, JobKind::Plan, &r.get_ref().id).await?;
        Ok(Response::new(pb::FanChart { svg }))
    }

    async fn replay_plan(&self, r: Request<pb::SimulationId>) -> Answer<pb::PlanReplayResult> {
        let caller = self.authorise(&r)?;
        answer(stored::replay(&self.state, &caller, JobKind::Plan, &r.get_ref().id).await?)
    }

    async fn sustainable_spending(
        &self,
        r: Request<pb::PlanRequest>,
    ) -> Answer<pb::SpendingSolution> {
        self.operation(r, Operation::PlanSpending).await
    }

    async fn claiming_ages(&self, r: Request<pb::PlanRequest>) -> Answer<pb::ClaimingSolution> {
        self.operation(r, Operation::PlanClaiming).await
    }

    async fn withdrawal_orders(&self, r: Request<pb::PlanRequest>) -> Answer<pb::OrderComparison> {
        self.operation(r, Operation::PlanWithdrawalOrders).await
    }

    async fn list_tools(&self, r: Request<pb::ListToolsRequest>) -> Answer<pb::ToolList> {
        self.authorise(&r)?;
        Ok(Response::new(typed::dynamic_message(tools::catalogue(
            false,
        ))?))
    }

    async fn create_history(&self, r: Request<pb::HistoryUpload>) -> Answer<pb::HistoryCreated> {
        let caller = self.authorise(&r)?;
        let upload = r.get_ref();
        let (name, history) = if upload.csv.is_empty() {
            let mut document = typed::document(upload)?;
            if let Some(fields) = document.as_object_mut() {
                fields.remove("csv");
            }
            let upload = crate::input::parse_value(document).map_err(ApiError::from)?;
            super::histories::checked_upload(upload)?
        } else {
            if upload.history.is_some() {
                return Err(ApiError::Malformed {
                    field: "csv".into(),
                    message: "give the history or its CSV text, not both".into(),
                }
                .into());
            }
            let history =
                sextant_engine::history::History::from_csv(&upload.csv).map_err(ApiError::from)?;
            (upload.name.clone(), history)
        };
        answer(super::histories::store(&self.state, &caller, &name, &history).await?)
    }

    async fn list_histories(
        &self,
        r: Request<pb::ListHistoriesRequest>,
    ) -> Answer<pb::HistoryList> {
        let caller = self.authorise(&r)?;
        answer(super::histories::listing(&self.state, &caller).await?)
    }

    async fn get_history(&self, r: Request<pb::HistoryName>) -> Answer<pb::NamedHistory> {
        let caller = self.authorise(&r)?;
        answer(super::histories::named(&self.state, &caller, &r.get_ref().name).await?)
    }

    async fn run_tool(&self, r: Request<pb::RunToolRequest>) -> Answer<pb::ToolResult> {
        let caller = self.authorise(&r)?;
        let document = typed::document(r.get_ref())?;
        let mut arguments = document.get("arguments").cloned().unwrap_or_default();
        typed::whole_numbers(&mut arguments);
        let body = serde_json::to_vec(&arguments).map_err(|e| ApiError::Internal(e.to_string()))?;
        let result = super::tool_result(&self.state, &caller, &r.get_ref().name, &body).await?;
        Ok(Response::new(typed::dynamic_message(result)?))
    }
}

/// Serve until `shutdown`, over TLS when given a PEM certificate chain and key; health answers
/// NOT_SERVING from `draining` on (as `/readyz` answers 503).
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    tls: Option<(Vec<u8>, Vec<u8>)>,
    draining: impl std::future::Future<Output = ()> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<SextantServer<GrpcService>>().await;
    tokio::spawn(async move {
        draining.await;
        reporter
            .set_not_serving::<SextantServer<GrpcService>>()
            .await;
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    });
    // Reflection in both versions: grpcurl and grpcui speak v1, Python's grpcio-reflection
    // and older grpcurl only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::DESCRIPTOR)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let mut server = tonic::transport::Server::builder();
    if let Some((cert, key)) = tls {
        server = server.tls_config(
            tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(cert, key)),
        )?;
    }
    server
        .layer(super::layers::request_id_and_trace())
        .layer(super::layers::GrpcMetricsLayer)
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(SextantServer::new(GrpcService { state }))
        // TCP_NODELAY: an answer is written as several HTTP/2 frames (headers, data,
        // trailers); with Nagle's algorithm on, the last small one waits for the client's
        // delayed ACK (40 ms on Linux), which capped a client on its own connection at about
        // 20 answers a second (benches/RESULTS.md, the H200 run).
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}
