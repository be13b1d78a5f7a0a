//! What the integration tests share: the real server on ephemeral ports, its own SQLite file
//! unless told otherwise, and small HTTP helpers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

pub struct Server {
    pub child: Child,
    pub base: String,
    pub grpc: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A path in the temporary directory no other test (or test process) uses.
pub fn temp_path(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "sextant-test-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A fresh SQLite database URL.
pub fn sqlite_url() -> String {
    format!("sqlite://{}?mode=rwc", temp_path("db.sqlite").display())
}

/// Start `sextant serve` on port 0 with extra flags and its own SQLite file.
pub fn start(flags: &[&str]) -> Server {
    start_with(flags, &[("DATABASE_URL", &sqlite_url())])
}

/// Start `sextant serve` on port 0 with extra flags and environment; the first line it prints
/// has the addresses.
pub fn start_with(flags: &[&str], env: &[(&str, &str)]) -> Server {
    start_logging(flags, env, Stdio::inherit())
}

/// [`start_with`], its logs (stderr) sent to `logs`.
pub fn start_logging(flags: &[&str], env: &[(&str, &str)], logs: Stdio) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args([
            "--backend",
            "cpu",
            "serve",
            "--http",
            "127.0.0.1:0",
            "--grpc",
            "127.0.0.1:0",
        ])
        .args(flags)
        .current_dir(root())
        .env_remove("SEXTANT_API_KEYS")
        .env_remove("REDIS_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(logs)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addresses: Vec<&str> = line
        .trim()
        .strip_prefix("sextant listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .split(' ')
        .collect();
    let base = addresses[0].to_string();
    let grpc = addresses[1]
        .replace("grpcs://", "https://")
        .replace("grpc://", "http://");
    Server { child, base, grpc }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

pub async fn post_json(http: &reqwest::Client, url: impl reqwest::IntoUrl, body: &Value) -> Value {
    http.post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The status and JSON body of a POST.
pub async fn post_for_status(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: &Value,
) -> (u16, Value) {
    let response = http.post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

pub async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

pub fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("examples").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub async fn get_text(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}
