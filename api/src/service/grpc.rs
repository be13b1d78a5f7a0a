//! The gRPC face of the service (`proto/sextant/v1/sextant.proto`): every method calls the
//! same [`super::call`] as the HTTP routes, so validation, batching, limits and errors are
//! one implementation; [`ApiError`]s become gRPC statuses. The standard health service and
//! reflection are served beside it.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use serde_json::Value;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use super::{call, create_job, tools, ApiError, AppState, Operation};

pub mod proto {
    tonic::include_proto!("sextant.v1");
    pub const DESCRIPTOR: &[u8] = tonic::include_file_descriptor_set!("sextant_descriptor");
}

use proto::sextant_server::{Sextant, SextantServer};
use proto::{JsonRequest, JsonResponse, ListToolsRequest, RunToolRequest, SimulationEvent};

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let message = match e.field() {
            Some(field) => format!("{field}: {}", e.message()),
            None => e.message(),
        };
        let mut status = match e {
            ApiError::Malformed { .. } | ApiError::Invalid { .. } => {
                Status::invalid_argument(message)
            }
            ApiError::Unauthorized => Status::unauthenticated(message),
            ApiError::NotFound(_) => Status::not_found(message),
            ApiError::Forbidden(_) => Status::permission_denied(message),
            ApiError::TooLarge { .. } => Status::out_of_range(message),
            ApiError::Overloaded { .. } | ApiError::RateLimited => {
                Status::resource_exhausted(message)
            }
            ApiError::Timeout => Status::deadline_exceeded(message),
            ApiError::Unavailable(_) => Status::unavailable(message),
            ApiError::Internal(_) => Status::internal(message),
        };
        if let Some(field) = e.field().and_then(|f| MetadataValue::try_from(f).ok()) {
            status.metadata_mut().insert("sextant-field", field);
        }
        status
    }
}

pub struct GrpcService {
    state: AppState,
}

fn reply(value: Value) -> Result<Response<JsonResponse>, Status> {
    Ok(Response::new(JsonResponse {
        json: value.to_string(),
    }))
}

impl GrpcService {
    fn authorise<T>(&self, request: &Request<T>) -> Result<super::Caller, Status> {
        let value = |name: &str| request.metadata().get(name).and_then(|v| v.to_str().ok());
        let bearer = value("authorization").and_then(|v| v.strip_prefix("Bearer "));
        Ok(self.state.auth.check(bearer, value("x-api-key"))?)
    }

    async fn run(
        &self,
        request: Request<JsonRequest>,
        operation: Operation,
    ) -> Result<Response<JsonResponse>, Status> {
        self.authorise(&request)?;
        let body = request.into_inner().json;
        reply(call(&self.state, operation, body.as_bytes()).await?)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<SimulationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Sextant for GrpcService {
    async fn simulate(&self, r: Request<JsonRequest>) -> Result<Response<JsonResponse>, Status> {
        self.run(r, Operation::Simulate).await
    }

    type SimulateStreamStream = EventStream;

    async fn simulate_stream(
        &self,
        request: Request<JsonRequest>,
    ) -> Result<Response<Self::SimulateStreamStream>, Status> {
        let caller = self.authorise(&request)?;
        let body = request.into_inner().json;
        let id = create_job(&self.state, body.as_bytes(), &caller).await?;
        let (history, live) = self
            .state
            .jobs
            .follow(&id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| Status::internal("the job vanished"))?;
        let events = super::job_events(self.state.jobs.clone(), id, history, live).map(|e| {
            Ok(SimulationEvent {
                event: e.event.to_string(),
                data_json: e.data.to_string(),
            })
        });
        Ok(Response::new(Box::pin(events)))
    }

    async fn required_contribution(
        &self,
        r: Request<JsonRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        self.run(r, Operation::RequiredContribution).await
    }

    async fn sustainable_withdrawal(
        &self,
        r: Request<JsonRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        self.run(r, Operation::SustainableWithdrawal).await
    }

    async fn what_if(&self, r: Request<JsonRequest>) -> Result<Response<JsonResponse>, Status> {
        self.run(r, Operation::WhatIf).await
    }

    async fn sensitivity(&self, r: Request<JsonRequest>) -> Result<Response<JsonResponse>, Status> {
        self.run(r, Operation::Sensitivity).await
    }

    async fn frontier(&self, r: Request<JsonRequest>) -> Result<Response<JsonResponse>, Status> {
        self.run(r, Operation::Frontier).await
    }

    async fn frontier_sweep(
        &self,
        r: Request<JsonRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        self.run(r, Operation::Sweep).await
    }

    async fn risk(&self, r: Request<JsonRequest>) -> Result<Response<JsonResponse>, Status> {
        self.run(r, Operation::Risk).await
    }

    async fn list_tools(
        &self,
        r: Request<ListToolsRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        self.authorise(&r)?;
        reply(tools::catalogue(r.into_inner().format == "openai"))
    }

    async fn run_tool(&self, r: Request<RunToolRequest>) -> Result<Response<JsonResponse>, Status> {
        self.authorise(&r)?;
        let RunToolRequest { name, json } = r.into_inner();
        reply(super::tool_result(&self.state, &name, json.as_bytes()).await?)
    }
}

/// Serve gRPC on `listener` until `shutdown` resolves.
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
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(SextantServer::new(GrpcService { state }))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await?;
    Ok(())
}
