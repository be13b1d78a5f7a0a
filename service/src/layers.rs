//! The layers every request passes through, HTTP and gRPC alike: a request id (taken from
//! `x-request-id` or made, and echoed back), a tracing span carrying it, and the request
//! counter of `/metrics`.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{MakeSpan, TraceLayer};

/// The span of one request: method, path and request id.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> tracing::Span {
        let id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %id
        )
    }
}

/// Request id (set, then echoed) around a traced request, for either protocol.
#[allow(clippy::type_complexity)]
pub fn request_id_and_trace() -> ServiceBuilder<
    tower::layer::util::Stack<
        TraceLayer<
            tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
            RequestSpan,
        >,
        tower::layer::util::Stack<
            PropagateRequestIdLayer,
            tower::layer::util::Stack<
                SetRequestIdLayer<MakeRequestUuid>,
                tower::layer::util::Identity,
            >,
        >,
    >,
> {
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(RequestSpan))
}

/// gRPC calls in `sextant_requests_total`, by method (`/sextant.v1.Sextant/Simulate`) and
/// status (`grpc-0`, `grpc-3`…). The status is the one a call answered with at once; a stream
/// that fails after it started counts as `grpc-0`, as its status travels in the trailers.
#[derive(Debug, Clone, Copy)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

/// The method of a call to one of the services served here, else `unmatched` (a label per
/// path a client invents would grow without bound).
fn grpc_route(path: &str) -> String {
    const SERVICES: [&str; 4] = [
        "/sextant.v1.Sextant/",
        "/grpc.health.v1.Health/",
        "/grpc.reflection.v1.ServerReflection/",
        "/grpc.reflection.v1alpha.ServerReflection/",
    ];
    let known = SERVICES.iter().any(|s| {
        path.strip_prefix(s).is_some_and(|m| {
            !m.is_empty() && m.len() <= 64 && m.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    });
    if known {
        path.to_string()
    } else {
        "unmatched".into()
    }
}

impl<S, B, R> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let route = grpc_route(request.uri().path());
        let pending = self.inner.call(request);
        Box::pin(async move {
            let response = pending.await?;
            let status = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("0");
            metrics::counter!(
                "sextant_requests_total",
                "route" => route,
                "status" => format!("grpc-{status}")
            )
            .increment(1);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_known_methods_are_labels() {
        assert_eq!(
            super::grpc_route("/sextant.v1.Sextant/Simulate"),
            "/sextant.v1.Sextant/Simulate"
        );
        assert_eq!(super::grpc_route("/sextant.v1.Sextant/x-y"), "unmatched");
        assert_eq!(super::grpc_route("/made.up.Service/Anything"), "unmatched");
    }
}
