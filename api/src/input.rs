//! Reading requests: JSON from a file or standard input, with errors that name the field.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

/// The text of `source`: a file, or standard input for `-`.
pub fn read_source(source: &Path) -> Result<String> {
    if source == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the request from standard input")?;
        Ok(text)
    } else {
        std::fs::read_to_string(source)
            .with_context(|| format!("reading the request from {}", source.display()))
    }
}

/// Parse `text` as `T`; a bad field is named by its path (`goal.horizon_months: …`).
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, InputError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        InputError {
            field: field_of(path, &inner.to_string()),
            problem: inner.to_string(),
        }
    })?;
    de.end().map_err(|e| InputError {
        field: "request".into(),
        problem: e.to_string(),
    })?;
    Ok(value)
}

/// The field a parse error names: the whole request when there is no path, or when the
/// document is nested too deeply to be a request at all.
fn field_of(path: String, problem: &str) -> String {
    if path == "." || path == "?" || problem.starts_with("recursion limit exceeded") {
        "request".into()
    } else {
        path
    }
}

/// Deserialize an already parsed JSON value as `T`, naming a bad field by its path.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, InputError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let problem = e.into_inner().to_string();
        InputError {
            field: field_of(path, &problem),
            problem,
        }
    })
}

/// A request that is not well-formed JSON of the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InputError {
    pub field: String,
    pub problem: String,
}
