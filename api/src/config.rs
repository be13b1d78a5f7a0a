//! The configuration file: `--config FILE` or `SEXTANT_CONFIG=FILE`, TOML whose keys are the
//! long flags with `_` for `-` (`http = "0.0.0.0:8080"`, `max_batch = 64`,
//! `api_keys = ["…"]`). Each key fills the flag's environment variable when that is unset, so
//! the order of precedence is: flag, then environment, then file, then default.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

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

/// The keys a file may set (each is a flag with an environment variable).
const KEYS: [&str; 28] = [
    "backend",
    "cpu_kernel",
    "http",
    "grpc",
    "max_batch",
    "max_delay_ms",
    "queue",
    "deadline_ms",
    "max_body_bytes",
    "max_path_steps",
    "api_keys",
    "jwt_secret",
    "jwt_public_key",
    "jwt_audience",
    "jwt_issuer",
    "rate_limit",
    "log_format",
    "shutdown_grace_s",
    "drain_s",
    "interactive_max_path_steps",
    "replica",
    "job_lease_s",
    "admins",
    "jwt_admin_scope",
    "jwt_tenant_claim",
    "tls_cert",
    "tls_key",
    "tls_offloaded",
];

fn apply(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{}: not valid TOML", path.display()))?;
    for (key, value) in table {
        if !KEYS.contains(&key.as_str()) {
            bail!(
                "{}: unknown key `{key}`; the keys are {}",
                path.display(),
                KEYS.join(", ")
            );
        }
        let name = format!("SEXTANT_{}", key.to_ascii_uppercase());
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
