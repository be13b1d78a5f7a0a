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
    if path.is_empty()
        || path == "."
        || path == "?"
        || problem.starts_with("recursion limit exceeded")
    {
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

/// A JSON document read only to refuse a key repeated within one object (serde_json's `Value`
/// keeps the last silently; the request types refuse it, naming the field).
pub struct NoRepeatedKeys;

impl<'de> serde::Deserialize<'de> for NoRepeatedKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoRepeatedKeysVisitor)
    }
}

struct NoRepeatedKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoRepeatedKeysVisitor {
    type Value = NoRepeatedKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON document")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate field `{key}`")));
            }
            map.next_value::<NoRepeatedKeys>()?;
        }
        Ok(NoRepeatedKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoRepeatedKeys>()?.is_some() {}
        Ok(NoRepeatedKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoRepeatedKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoRepeatedKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoRepeatedKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoRepeatedKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoRepeatedKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoRepeatedKeys)
    }
}
