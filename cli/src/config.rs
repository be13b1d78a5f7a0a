//! The configuration file: `--config FILE` or `SEXTANT_CONFIG=FILE`, TOML whose keys are the
//! settings' names in the code, the long flags with `_` for `-` (`http = "0.0.0.0:8080"`,
//! `max_batch = 64`, `api_keys = ["…"]`, `database_url = "postgres://…"`, `db_retries = 8`,
//! `redis_url = "…"`): every flag that has an environment variable. Each key fills the flag's environment variable when that is unset, so
//! the order of precedence is: flag, then environment, then file, then default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

/// The file named by `--config FILE` (or `--config=FILE`) or `SEXTANT_CONFIG`, if any.
fn config_path() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy().to_string();
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("SEXTANT_CONFIG").map(PathBuf::from)
}

/// Load the configuration file into the environment. Call before any thread starts.
pub fn load() -> Result<()> {
    match config_path() {
        Some(path) => apply(&path),
        None => Ok(()),
    }
}

/// The keys a file may set, each with the environment variable it fills: every flag of the
/// command line (and its subcommands) that has an environment variable, keyed by its name in
/// the code (`max_batch`, `api_keys`, `database_url`). Read from the command's own definition,
/// so a new flag with an environment variable is a key without a second list to keep.
fn settings() -> BTreeMap<String, String> {
    fn walk(command: &clap::Command, out: &mut BTreeMap<String, String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                let key = arg.get_id().as_str();
                // The file's own flag is not a setting of the file.
                if key != "config" {
                    out.insert(key.to_string(), env.to_string_lossy().into_owned());
                }
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&crate::Cli::command(), &mut out);
    out
}

fn apply(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{}: not valid TOML", path.display()))?;
    let settings = settings();
    for (key, value) in table {
        let Some(name) = settings.get(&key).cloned() else {
            let keys: Vec<&str> = settings.keys().map(String::as_str).collect();
            bail!(
                "{}: unknown key `{key}`; the keys are {}",
                path.display(),
                keys.join(", ")
            );
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => bail!("{}: {key}: unsupported value {other}", path.display()),
        };
        if std::env::var_os(&name).is_none() {
            std::env::set_var(name, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The settings the file could not take before (database, cache, retries) are keys now,
    /// each filling its flag's environment variable.
    #[test]
    fn every_flag_with_an_environment_variable_is_a_key() {
        let settings = super::settings();
        for (key, env) in [
            ("database_url", "DATABASE_URL"),
            ("db_retries", "SEXTANT_DB_RETRIES"),
            ("redis_url", "REDIS_URL"),
            ("cache_entries", "SEXTANT_CACHE_ENTRIES"),
            ("max_batch", "SEXTANT_MAX_BATCH"),
            ("api_keys", "SEXTANT_API_KEYS"),
            ("admins", "SEXTANT_ADMINS"),
            ("backend", "SEXTANT_BACKEND"),
        ] {
            assert_eq!(settings.get(key).map(String::as_str), Some(env), "{key}");
        }
        assert!(!settings.contains_key("config"));
    }
}
