//! Who may call `/v1` and the gRPC methods: API keys (compared in constant time with every
//! configured key) and/or JWT bearer tokens (HS256 with a shared secret or RS256 with a public
//! key; `exp` always checked, `aud` and `iss` when configured), and a per-caller rate limit
//! (the key, or the token's subject) answered with 429.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// What the service was told to accept.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthArgs {
    /// API keys accepted (comma-separated in the environment).
    #[arg(long = "api-key", env = "SEXTANT_API_KEYS", value_delimiter = ',')]
    pub api_keys: Vec<String>,
    /// Accept HS256 JWTs signed with this secret.
    #[arg(long, env = "SEXTANT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Accept RS256 JWTs verified with this PEM public key file.
    #[arg(long, env = "SEXTANT_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<std::path::PathBuf>,
    /// Required `aud` of JWTs.
    #[arg(long, env = "SEXTANT_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Required `iss` of JWTs.
    #[arg(long, env = "SEXTANT_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Requests per second allowed to each key or token subject (0: no limit).
    #[arg(long, env = "SEXTANT_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
}

#[derive(Clone, Default)]
pub struct Auth {
    keys: Arc<Vec<String>>,
    jwt: Option<Arc<(DecodingKey, Validation)>>,
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl Auth {
    pub fn new(args: &AuthArgs) -> anyhow::Result<Auth> {
        let jwt = match (&args.jwt_secret, &args.jwt_public_key) {
            (Some(_), Some(_)) => {
                anyhow::bail!("give either --jwt-secret (HS256) or --jwt-public-key (RS256)")
            }
            (Some(secret), None) => Some((
                DecodingKey::from_secret(secret.as_bytes()),
                Validation::new(Algorithm::HS256),
            )),
            (None, Some(path)) => {
                let pem = std::fs::read(path)?;
                Some((
                    DecodingKey::from_rsa_pem(&pem)?,
                    Validation::new(Algorithm::RS256),
                ))
            }
            (None, None) => None,
        };
        let jwt = jwt.map(|(key, mut validation)| {
            validation.validate_exp = true;
            match &args.jwt_audience {
                Some(aud) => validation.set_audience(&[aud]),
                None => validation.validate_aud = false,
            }
            if let Some(iss) = &args.jwt_issuer {
                validation.set_issuer(&[iss]);
            }
            Arc::new((key, validation))
        });
        let limiter = NonZeroU32::new(args.rate_limit)
            .map(|rate| Arc::new(RateLimiter::keyed(Quota::per_second(rate))));
        Ok(Auth {
            keys: Arc::new(
                args.api_keys
                    .iter()
                    .filter(|k| !k.is_empty())
                    .cloned()
                    .collect(),
            ),
            jwt,
            limiter,
        })
    }

    /// Whether any authentication is configured.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty() || self.jwt.is_some()
    }

    /// Check a request's `Authorization: Bearer …` (an API key or a JWT) or `x-api-key`.
    pub fn check(&self, bearer: Option<&str>, api_key: Option<&str>) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
        }
        let caller = self.caller(bearer, api_key).ok_or(ApiError::Unauthorized)?;
        if let Some(limiter) = &self.limiter {
            if limiter.check_key(&caller).is_err() {
                return Err(ApiError::RateLimited);
            }
        }
        Ok(())
    }

    /// The caller's identity (its key, or its token's subject) if the credentials hold.
    fn caller(&self, bearer: Option<&str>, api_key: Option<&str>) -> Option<String> {
        for offered in [bearer, api_key].into_iter().flatten() {
            if key_matches(&self.keys, offered) {
                return Some(format!("key:{offered}"));
            }
        }
        let (key, validation) = self.jwt.as_deref()?;
        let token = bearer?;
        let data = decode::<Claims>(token, key, validation).ok()?;
        Some(format!("sub:{}", data.claims.sub.unwrap_or_default()))
    }
}

/// Whether `offered` is one of `keys`, comparing with every key in constant time.
fn key_matches(keys: &[String], offered: &str) -> bool {
    keys.iter().fold(0u8, |any, key| {
        any | offered.as_bytes().ct_eq(key.as_bytes()).unwrap_u8()
    }) == 1
}
