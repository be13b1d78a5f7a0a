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
            field: if path == "." || path == "?" {
                "request".into()
            } else {
                path
            },
            problem: inner.to_string(),
        }
    })?;
    de.end().map_err(|e| InputError {
        field: "request".into(),
        problem: e.to_string(),
    })?;
    Ok(value)
}

/// A request that is not well-formed JSON of the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InputError {
    pub field: String,
    pub problem: String,
}
