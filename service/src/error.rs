//! The errors a caller can get, and how each maps to an HTTP status and a JSON body
//! `{"error": {"code", "field", "message"}}` that names the field where there is one.
//! Bad input is always a 4xx: nothing a request says can produce a 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sextant_engine::backend::BackendError;
use sextant_engine::frontier::{FrontierError, FrontierRequestError};
use sextant_engine::sweep::SweepError;
use sextant_engine::{EngineError, ValidationError};

use crate::input::InputError;

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// Not JSON of the expected shape (400).
    Malformed { field: String, message: String },
    /// Well-formed but out of bounds, or constraints no answer meets (422).
    Invalid { field: String, message: String },
    /// No API key, or a wrong one (401).
    Unauthorized,
    /// No such job (404), or another caller's.
    NotFound(String),
    /// An admin's operation asked for by another caller (403).
    Forbidden(String),
    /// The name is taken: a stored history is never replaced (409).
    Conflict(String),
    /// A body over `--max-body-bytes` (413).
    TooLarge { limit: usize },
    /// The queue is full: try again after the given seconds (429).
    Overloaded { retry_after_seconds: u64 },
    /// This caller is over its rate limit (429).
    RateLimited,
    /// The request's deadline passed before its result (504).
    Timeout,
    /// The database cannot be reached now, after retries (503, Retry-After).
    Unavailable(String),
    /// The engine itself failed (500): never caused by input.
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    message: &'a str,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Overloaded { .. } | ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Malformed { .. } => "malformed",
            ApiError::Invalid { .. } => "invalid",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::RateLimited => "rate_limited",
            ApiError::Timeout => "deadline_exceeded",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::Malformed { message, .. } | ApiError::Invalid { message, .. } => {
                message.clone()
            }
            ApiError::Unauthorized => {
                "a valid API key is required (Authorization: Bearer KEY)".into()
            }
            ApiError::NotFound(what) => format!("{what} not found"),
            ApiError::Overloaded {
                retry_after_seconds,
            } => {
                format!("the queue is full; retry after {retry_after_seconds} s")
            }
            ApiError::Timeout => "the request's deadline passed before its result".into(),
            ApiError::RateLimited => "over this caller's rate limit; retry after 1 s".into(),
            ApiError::TooLarge { limit } => {
                format!("the body is over {limit} bytes (--max-body-bytes)")
            }
            ApiError::Forbidden(message)
            | ApiError::Conflict(message)
            | ApiError::Unavailable(message)
            | ApiError::Internal(message) => message.clone(),
        }
    }

    /// `field: message`, or the message alone: the one line a client that reads no structure
    /// (a gRPC status message, an agent's tool error) gets.
    pub fn described(&self) -> String {
        match self.field() {
            Some(field) => format!("{field}: {}", self.message()),
            None => self.message(),
        }
    }

    /// The gRPC status code, as [`ApiError::status`] is the HTTP one.
    pub fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            ApiError::Malformed { .. } | ApiError::Invalid { .. } => Code::InvalidArgument,
            ApiError::Unauthorized => Code::Unauthenticated,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::Forbidden(_) => Code::PermissionDenied,
            ApiError::Conflict(_) => Code::AlreadyExists,
            ApiError::TooLarge { .. } => Code::OutOfRange,
            ApiError::Overloaded { .. } | ApiError::RateLimited => Code::ResourceExhausted,
            ApiError::Timeout => Code::DeadlineExceeded,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Malformed { field, .. } | ApiError::Invalid { field, .. } => Some(field),
            ApiError::TooLarge { .. } => Some("request"),
            ApiError::Conflict(_) => Some("name"),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.message();
        let body = Body {
            error: Detail {
                code: self.code(),
                field: self.field(),
                message: &message,
            },
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let retry = match self {
            ApiError::Overloaded {
                retry_after_seconds,
            } => Some(retry_after_seconds),
            ApiError::RateLimited | ApiError::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ApiError::Malformed {
            field: e.field,
            message: e.problem,
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Invalid {
            field: e.field,
            message: e.problem,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(v) => v.into(),
            // Work stops early only when its deadline passed or its caller went away.
            EngineError::Backend(BackendError::Cancelled) => ApiError::Timeout,
            EngineError::Backend(b) => ApiError::Internal(b.to_string()),
        }
    }
}

impl From<FrontierError> for ApiError {
    fn from(e: FrontierError) -> Self {
        match e {
            FrontierError::Infeasible { constraint, reason } => ApiError::Invalid {
                field: constraint,
                message: format!("infeasible: {reason}"),
            },
            FrontierError::Target { field, reason } => ApiError::Invalid {
                field,
                message: reason,
            },
            FrontierError::Numerical(m) => ApiError::Internal(m),
        }
    }
}

impl From<FrontierRequestError> for ApiError {
    fn from(e: FrontierRequestError) -> Self {
        match e {
            FrontierRequestError::Invalid(v) => v.into(),
            FrontierRequestError::Solver(s) => s.into(),
            FrontierRequestError::Cancelled => ApiError::Timeout,
        }
    }
}

impl From<SweepError> for ApiError {
    fn from(e: SweepError) -> Self {
        match e {
            SweepError::Invalid(v) => v.into(),
            SweepError::Frontier(f) => f.into(),
            SweepError::Engine(e) => e.into(),
        }
    }
}

impl From<sextant_store::StoreError> for ApiError {
    fn from(e: sextant_store::StoreError) -> Self {
        tracing::error!(error = %e, "storage failed");
        ApiError::Unavailable(format!("storage is unavailable: {e}"))
    }
}

impl From<sextant_store::histories::ResolveError> for ApiError {
    fn from(e: sextant_store::histories::ResolveError) -> Self {
        use sextant_store::histories::ResolveError;
        match e {
            ResolveError::Unknown { field, problem } => ApiError::Invalid {
                field,
                message: problem,
            },
            ResolveError::Store(e) => e.into(),
        }
    }
}

impl From<crate::rescore::RescoreError> for ApiError {
    fn from(e: crate::rescore::RescoreError) -> Self {
        use crate::rescore::RescoreError;
        match e {
            RescoreError::Invalid { field, message } => ApiError::Invalid { field, message },
            RescoreError::Store(e) => e.into(),
            RescoreError::Engine(m) => ApiError::Internal(m),
            RescoreError::Stopped => ApiError::Unavailable("the service is draining".into()),
        }
    }
}
