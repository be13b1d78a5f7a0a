//! The `histories` table: each caller's named histories of monthly returns (docs/model.md
//! §4.3), and the resolution of a request's named histories into the data they name.
//!
//! A history is stored once under a name and never changed (storing the name again is a
//! conflict), so a request naming it means the same data for as long as it exists. Requests
//! reach the engine with their histories inline ([`resolve_histories`]): the engine has no I/O,
//! cached answers are keyed by the data, and a stored simulation replays without the table.

use serde::Serialize;
use serde_json::Value;
use sextant_engine::history::History;
use sqlx::Row;

use crate::{now_ms, Store, StoreError};

/// What a listing shows of a stored history.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct HistorySummary {
    pub name: String,
    /// The assets' names, in the order of the returns and of `market.weights`.
    pub assets: Vec<String>,
    /// How many months it holds.
    pub months: u64,
    /// Whether it carries monthly inflation (which then drives the price index).
    pub inflation: bool,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Why a request's named history could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No history of that name is stored for the caller: `field` names where the request
    /// names it, `problem` says so.
    #[error("{field}: {problem}")]
    Unknown { field: String, problem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Store `history` (already checked) as `owner`'s `name`; `false` when `owner` already
    /// has a history of that name (which is left as it is).
    pub async fn insert_history(
        &self,
        owner: &str,
        name: &str,
        history: &History,
    ) -> Result<bool, StoreError> {
        let document = serde_json::to_string(history).expect("a history serializes");
        let assets = serde_json::to_string(&history.assets).expect("names serialize");
        let inserted = self
            .retry("storing a history", || {
                sqlx::query(
                    "INSERT INTO histories (owner, name, assets, months, has_inflation, \
                     document, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (owner, name) DO NOTHING",
                )
                .bind(owner)
                .bind(name)
                .bind(&assets)
                .bind(history.months.len() as i64)
                .bind(i64::from(history.has_inflation()))
                .bind(&document)
                .bind(now_ms())
                .execute(self.pool())
            })
            .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// `owner`'s histories, by name.
    pub async fn list_histories(&self, owner: &str) -> Result<Vec<HistorySummary>, StoreError> {
        let rows = self
            .retry("listing histories", || {
                sqlx::query(
                    "SELECT name, assets, months, has_inflation, created_at FROM histories \
                     WHERE owner = $1 ORDER BY name",
                )
                .bind(owner)
                .fetch_all(self.pool())
            })
            .await?;
        rows.iter()
            .map(|row| {
                let assets: String = row.try_get("assets")?;
                Ok(HistorySummary {
                    name: row.try_get("name")?,
                    assets: serde_json::from_str(&assets)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    months: row.try_get::<i64, _>("months")? as u64,
                    inflation: row.try_get::<i64, _>("has_inflation")? != 0,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error("reading histories", e))
    }

    /// `owner`'s history `name`, if there is one.
    pub async fn history(&self, owner: &str, name: &str) -> Result<Option<History>, StoreError> {
        let row = self
            .retry("reading a history", || {
                sqlx::query("SELECT document FROM histories WHERE owner = $1 AND name = $2")
                    .bind(owner)
                    .bind(name)
                    .fetch_optional(self.pool())
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let document: String = row
            .try_get("document")
            .map_err(|e| self.error("reading a history", e))?;
        serde_json::from_str(&document)
            .map(Some)
            .map_err(|e| self.error("reading a history", sqlx::Error::Decode(Box::new(e))))
    }
}

/// Replace every named history of a request document (any object whose `history` is a string
/// and whose `kind`, if it has one, is `"bootstrap"`: a goal's market model, a what-if's base
/// and its variants' patches) by `owner`'s stored history of that name.
pub async fn resolve_histories(
    store: &Store,
    owner: &str,
    document: &mut Value,
) -> Result<(), ResolveError> {
    let mut named = Vec::new();
    named_histories(document, String::new(), &mut named);
    for (pointer, field) in named {
        let Some(slot) = document.pointer_mut(&pointer) else {
            continue;
        };
        let name = slot.as_str().unwrap_or_default().to_string();
        let history = store
            .history(owner, &name)
            .await?
            .ok_or_else(|| ResolveError::Unknown {
                field,
                problem: format!(
                    "no stored history is named {name:?} (POST /v1/histories or \
                     `sextant histories import` stores one)"
                ),
            })?;
        *slot = serde_json::to_value(history).expect("a history serializes");
    }
    Ok(())
}

/// Whether a request document names a stored history anywhere (so that requests without one
/// skip the walk).
pub fn names_a_history(document: &Value) -> bool {
    let mut named = Vec::new();
    named_histories(document, String::new(), &mut named);
    !named.is_empty()
}

/// The JSON pointer and the field path (`market.model.history`, `variants[1].market.model.history`)
/// of every named history under `value`, at `pointer`.
fn named_histories(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            // A bootstrap model, or a what-if's patch of one (which may leave its kind out).
            let bootstrap = map
                .get("kind")
                .is_none_or(|kind| kind.as_str() == Some("bootstrap"));
            if bootstrap && map.get("history").is_some_and(Value::is_string) {
                let at = format!("{pointer}/history");
                out.push((at.clone(), field_of(&at)));
            }
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                named_histories(child, format!("{pointer}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                named_histories(child, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A JSON pointer as the field path errors name: `/variants/1/market` → `variants[1].market`.
fn field_of(pointer: &str) -> String {
    let mut field = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.parse::<usize>().is_ok() {
            field += &format!("[{part}]");
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field += &part;
        }
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_histories_are_found_wherever_a_bootstrap_names_one() {
        let document = serde_json::json!({
            "base": {"market": {"model": {"kind": "bootstrap", "history": "us"}}},
            "variants": [
                {"market": {"model": {"kind": "bootstrap", "history": {"assets": ["a"], "months": []}}}},
                {"market": {"model": {"kind": "bootstrap", "history": "world"}}},
                {"market": {"model": {"history": "patched"}}}
            ],
            "other": {"kind": "regime", "history": "not a bootstrap"}
        });
        let mut named = Vec::new();
        named_histories(&document, String::new(), &mut named);
        named.sort();
        assert_eq!(
            named,
            [
                (
                    "/base/market/model/history".to_string(),
                    "base.market.model.history".to_string()
                ),
                (
                    "/variants/1/market/model/history".to_string(),
                    "variants[1].market.model.history".to_string()
                ),
                (
                    "/variants/2/market/model/history".to_string(),
                    "variants[2].market.model.history".to_string()
                ),
            ]
        );
        assert!(names_a_history(&document));
        assert!(!names_a_history(
            &serde_json::json!({"market": {"model": {"kind": "student_t"}}})
        ));
    }
}
