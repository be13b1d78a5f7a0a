//! Answers to identical requests: a cache keyed by a canonical hash of the request, in
//! process by default and in Redis when `REDIS_URL` is set (shared by every replica).
//!
//! The key is SHA-256 of the operation, the engine version and the request as the engine read
//! it (defaults filled in, keys sorted, numbers in their shortest form), so `{"paths": 10000}`
//! and a body that leaves paths to its default share an answer, and a new engine never serves
//! an old one. Results are deterministic for a given request and seed, so a hit is exactly
//! what a computation would give. A cache that fails is never an error: while Redis is away
//! (or slower than [`REDIS_TIMEOUT`]) answers are kept in process, as without Redis, and
//! Redis is used again as soon as it answers.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lru::LruCache;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where answers are kept.
#[derive(Clone)]
pub enum Cache {
    Off,
    Memory(Arc<Mutex<LruCache<String, Arc<Value>>>>),
    Redis {
        connection: redis::aio::ConnectionManager,
        ttl: Duration,
        /// Where answers go while Redis fails.
        fallback: Arc<Mutex<LruCache<String, Arc<Value>>>>,
    },
}

/// Longest a Redis command may take before the cache falls back to memory for it.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// A Redis command's result within [`REDIS_TIMEOUT`], counted and logged when it fails.
async fn redis_query<T: redis::FromRedisValue>(
    command: &redis::Cmd,
    connection: &redis::aio::ConnectionManager,
    doing: &str,
) -> Option<T> {
    let mut connection = connection.clone();
    let failure =
        match tokio::time::timeout(REDIS_TIMEOUT, command.query_async(&mut connection)).await {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {REDIS_TIMEOUT:?}"),
        };
    tracing::warn!(error = %failure, "the Redis cache failed {doing}; in memory meanwhile");
    metrics::counter!("sextant_cache_errors_total").increment(1);
    None
}

/// The cache's flags (`serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Answers kept in process (0: no cache); ignored when REDIS_URL is set.
    #[arg(long, env = "SEXTANT_CACHE_ENTRIES", default_value_t = 1024)]
    pub cache_entries: usize,
    /// A Redis server shared by every replica, e.g. redis://127.0.0.1:6379.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// How long Redis keeps an answer, in seconds.
    #[arg(long, env = "SEXTANT_CACHE_TTL_S", default_value_t = 86_400)]
    pub cache_ttl_s: u64,
}

impl Default for CacheArgs {
    fn default() -> Self {
        CacheArgs {
            cache_entries: 1024,
            redis_url: None,
            cache_ttl_s: 86_400,
        }
    }
}

/// The canonical key of `request` for `operation`.
pub fn key<T: Serialize>(operation: &str, request: &T) -> String {
    // serde_json's maps are sorted by key (no `preserve_order`), and floats print in their
    // shortest round-tripping form: one text per request.
    let canonical = serde_json::to_string(request).expect("requests serialise");
    let mut hash = Sha256::new();
    hash.update(b"sextant\0");
    hash.update(sextant_engine::ENGINE_VERSION.as_bytes());
    hash.update(b"\0");
    hash.update(operation.as_bytes());
    hash.update(b"\0");
    hash.update(canonical.as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Cache {
    /// The cache the flags ask for (connecting to Redis now, so a bad URL fails at start).
    pub async fn open(args: &CacheArgs) -> anyhow::Result<Cache> {
        if let Some(url) = &args.redis_url {
            let client = redis::Client::open(url.as_str())
                .map_err(|e| anyhow::anyhow!("REDIS_URL {url}: {e}"))?;
            let connection = redis::aio::ConnectionManager::new(client)
                .await
                .map_err(|e| anyhow::anyhow!("connecting to Redis at {url}: {e}"))?;
            let entries = NonZeroUsize::new(args.cache_entries.max(1)).expect("at least one");
            return Ok(Cache::Redis {
                connection,
                ttl: Duration::from_secs(args.cache_ttl_s.max(1)),
                fallback: Arc::new(Mutex::new(LruCache::new(entries))),
            });
        }
        Ok(match NonZeroUsize::new(args.cache_entries) {
            None => Cache::Off,
            Some(n) => Cache::Memory(Arc::new(Mutex::new(LruCache::new(n)))),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Cache::Off => "off",
            Cache::Memory(_) => "memory",
            Cache::Redis { .. } => "redis",
        }
    }

    pub async fn get(&self, key: &str) -> Option<Value> {
        let found = match self {
            Cache::Off => return None,
            Cache::Memory(lru) => lru
                .lock()
                .expect("cache lock")
                .get(key)
                .map(|v| (**v).clone()),
            Cache::Redis {
                connection,
                fallback,
                ..
            } => {
                let mut command = redis::cmd("GET");
                command.arg(redis_key(key));
                match redis_query::<Option<String>>(&command, connection, "to read").await {
                    Some(text) => text.and_then(|t| serde_json::from_str(&t).ok()),
                    None => fallback
                        .lock()
                        .expect("cache lock")
                        .get(key)
                        .map(|v| (**v).clone()),
                }
            }
        };
        let outcome = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("sextant_cache_total", "result" => outcome).increment(1);
        found
    }

    pub async fn put(&self, key: &str, value: &Value) {
        match self {
            Cache::Off => {}
            Cache::Memory(lru) => {
                lru.lock()
                    .expect("cache lock")
                    .put(key.to_string(), Arc::new(value.clone()));
            }
            Cache::Redis {
                connection,
                ttl,
                fallback,
            } => {
                let mut command = redis::cmd("SET");
                command
                    .arg(redis_key(key))
                    .arg(value.to_string())
                    .arg("EX")
                    .arg(ttl.as_secs());
                if redis_query::<()>(&command, connection, "to store")
                    .await
                    .is_none()
                {
                    fallback
                        .lock()
                        .expect("cache lock")
                        .put(key.to_string(), Arc::new(value.clone()));
                }
            }
        }
    }
}

/// The Redis key of a cache key.
pub fn redis_key(key: &str) -> String {
    format!("sextant:answer:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_requests_share_a_key_and_different_ones_do_not() {
        let a: sextant_engine::GoalRequest = serde_json::from_str(
            r#"{"goal": {"horizon_months": 12, "target_amount": 1000},
                "market": {"expected_return": 0.05, "volatility": 0.1}}"#,
        )
        .unwrap();
        let b: sextant_engine::GoalRequest = serde_json::from_str(
            r#"{"market": {"volatility": 0.10, "expected_return": 5e-2},
                "options": {"paths": 10000, "seed": 42},
                "goal": {"target_amount": 1000.0, "horizon_months": 12}}"#,
        )
        .unwrap();
        assert_eq!(key("simulate", &a), key("simulate", &b));
        assert_ne!(key("simulate", &a), key("required_contribution", &a));
        let mut c = a.clone();
        c.options.seed = 43;
        assert_ne!(key("simulate", &a), key("simulate", &c));
        assert_eq!(key("simulate", &a).len(), 64);
    }
}
