//! `/v1/histories`: each caller's named histories of monthly returns (docs/model.md §4.3),
//! which bootstrap markets name (`"history": "NAME"`), and the resolution of those names in a
//! request before it is read ([`resolve`]).
//!
//! A history is sent as JSON (`{"name", "history": {"assets", "months"}}`) or as CSV
//! (`Content-Type: text/csv`, `?name=NAME`; the CSV form of `sextant_engine::history`), checked
//! with the engine's own checks (a bad value is a 422 naming its month and asset, or its CSV
//! line and column), and stored once: the name is the caller's for good (409 when taken).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use sextant_engine::history::{self, History};
use sextant_store::histories::resolve_histories;

use crate::auth::Caller;
use crate::{ApiError, AppState, PathParam};

/// The JSON form of `POST /v1/histories`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryUpload {
    /// 1 to 64 letters, digits, `-`, `_` or `.`.
    pub name: String,
    pub history: History,
}

/// `POST /v1/histories`: store a history (201), JSON or CSV.
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    let (name, history) = if csv {
        let name = query
            .get("name")
            .cloned()
            .ok_or_else(|| ApiError::Malformed {
                field: "name".into(),
                message: "a CSV history needs its name in the query: POST /v1/histories?name=NAME"
                    .into(),
            })?;
        let text = std::str::from_utf8(&body).map_err(|e| ApiError::Malformed {
            field: "request".into(),
            message: format!("the body is not UTF-8: {e}"),
        })?;
        (name, History::from_csv(text)?)
    } else {
        checked_upload(crate::parse(&body)?)?
    };
    let created = store(&state, &caller, &name, &history).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The JSON form of an upload (HTTP's body, gRPC's typed message as its document), checked:
/// errors name `history.months[i].returns[k]` and the like.
pub(crate) fn checked_upload(upload: HistoryUpload) -> Result<(String, History), ApiError> {
    upload.history.check("history")?;
    Ok((upload.name, upload.history))
}

/// Store `caller`'s checked `history` as `name`: what was stored, or a conflict when the name
/// is taken (HTTP's and gRPC's `CreateHistory`).
pub(crate) async fn store(
    state: &AppState,
    caller: &Caller,
    name: &str,
    history: &History,
) -> Result<Value, ApiError> {
    history::check_name(name)?;
    if !state
        .store
        .insert_history(&caller.owner, name, history)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "a history named {name:?} is stored already; a stored history is never replaced \
             (requests that name it keep their meaning), so store this one under another name"
        )));
    }
    Ok(json!({
        "name": name,
        "assets": history.assets,
        "months": history.months.len(),
        "inflation": history.has_inflation(),
        "self": format!("/v1/histories/{name}"),
    }))
}

/// `GET /v1/histories`: the caller's histories, by name.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    Ok(Json(listing(&state, &caller).await?).into_response())
}

/// `{"histories": [...]}` of `caller`.
pub(crate) async fn listing(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let histories = state.store.list_histories(&caller.owner).await?;
    Ok(json!({ "histories": histories }))
}

/// `GET /v1/histories/{name}`: one of the caller's histories (another caller's is not found).
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParam(name): PathParam,
) -> Result<Response, ApiError> {
    Ok(Json(named(&state, &caller, &name).await?).into_response())
}

/// `{"name", "history"}` of `caller`'s `name`, or not found.
pub(crate) async fn named(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<Value, ApiError> {
    let history = state
        .store
        .history(&caller.owner, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("history {name:?}")))?;
    Ok(json!({ "name": name, "history": history }))
}

/// Replace the named histories of a request document by the caller's stored ones; a name the
/// caller has not stored is a 422 naming the field.
pub(crate) async fn resolve(
    state: &AppState,
    caller: &Caller,
    document: &mut Value,
) -> Result<(), ApiError> {
    // One walk of the document: without a named history it changes nothing.
    Ok(resolve_histories(&state.store, &caller.owner, document).await?)
}
