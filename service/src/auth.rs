//! Who may call `/v1` and the gRPC methods, and who they are: API keys (compared in constant
//! time with every configured key) and/or JWT bearer tokens (HS256 with a shared secret or
//! RS256 with a public key; `exp` always checked, `aud` and `iss` when configured), and a
//! per-caller rate limit answered with 429.
//!
//! Every caller that passes is a [`Caller`]: an owner name for what it stores (`key:NAME` for
//! a key given as `NAME:SECRET`, `key:` and a hash prefix for a key given without a name,
//! `jwt:SUB` or `jwt:TENANT/SUB` with `--jwt-tenant-claim`; never a secret) and whether it is
//! an admin (its owner name in `--admin`, e.g. `key:ops` or `jwt:acme/ops`, so that a token's
//! subject can never pass for a key's name; or the token's `scope` holding `--jwt-admin-scope`). Without any authentication configured there is one caller, the
//! anonymous owner, who owns everything (development, loopback).

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// What the service was told to accept.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthArgs {
    /// API keys accepted, each `NAME:SECRET` (the name owns what the key stores; a bare
    /// SECRET is named by a hash of it); comma-separated in the environment.
    #[arg(long = "api-key", env = "SEXTANT_API_KEYS", value_delimiter = ',')]
    pub api_keys: Vec<String>,
    /// Owners that are admins, as owners are named: `key:NAME` for a key, `jwt:SUB` (or
    /// `jwt:TENANT/SUB` with --jwt-tenant-claim) for a token. They may list and read every
    /// caller's objects and start re-scoring runs (comma-separated in the environment).
    #[arg(long = "admin", env = "SEXTANT_ADMINS", value_delimiter = ',')]
    pub admins: Vec<String>,
    /// A JWT whose `scope` claim (space-separated) holds this scope is an admin.
    #[arg(long, env = "SEXTANT_JWT_ADMIN_SCOPE")]
    pub jwt_admin_scope: Option<String>,
    /// The JWT claim naming the caller's tenant (e.g. `org`): owners are then `TENANT/SUB`,
    /// so the same subject in two tenants owns two sets of objects.
    #[arg(long, env = "SEXTANT_JWT_TENANT_CLAIM")]
    pub jwt_tenant_claim: Option<String>,
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
    #[serde(default)]
    scope: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// Who is calling: the owner of what it stores, and whether it may see everyone's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub owner: String,
    pub admin: bool,
}

impl Caller {
    /// The one caller of a service without authentication.
    pub fn anonymous() -> Caller {
        Caller {
            owner: "anonymous".into(),
            admin: true,
        }
    }

    /// Whether this caller may read an object stored by `owner` (`None`: stored before
    /// objects had owners, an admin's to read).
    pub fn may_read(&self, owner: Option<&str>) -> bool {
        self.admin || owner == Some(self.owner.as_str())
    }
}

/// One configured key: the owner name it gives, and its secret.
struct Key {
    name: String,
    secret: String,
}

#[derive(Clone, Default)]
pub struct Auth {
    keys: Arc<Vec<Key>>,
    admins: Arc<Vec<String>>,
    jwt: Option<Arc<(DecodingKey, Validation)>>,
    jwt_admin_scope: Option<String>,
    jwt_tenant_claim: Option<String>,
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
        let keys = args
            .api_keys
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| match k.split_once(':') {
                Some((name, secret)) if !name.is_empty() && !secret.is_empty() => Key {
                    name: name.to_string(),
                    secret: secret.to_string(),
                },
                _ => Key {
                    name: unnamed(k),
                    secret: k.clone(),
                },
            })
            .collect();
        Ok(Auth {
            keys: Arc::new(keys),
            admins: Arc::new(
                args.admins
                    .iter()
                    .filter(|a| !a.is_empty())
                    .cloned()
                    .collect(),
            ),
            jwt,
            jwt_admin_scope: args.jwt_admin_scope.clone(),
            jwt_tenant_claim: args.jwt_tenant_claim.clone(),
            limiter,
        })
    }

    /// Whether any authentication is configured.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty() || self.jwt.is_some()
    }

    /// Check a request's `Authorization: Bearer …` (an API key or a JWT) or `x-api-key`, and
    /// say who is calling.
    pub fn check(&self, bearer: Option<&str>, api_key: Option<&str>) -> Result<Caller, ApiError> {
        if !self.enabled() {
            return Ok(Caller::anonymous());
        }
        let caller = self.caller(bearer, api_key).ok_or(ApiError::Unauthorized)?;
        if let Some(limiter) = &self.limiter {
            if limiter.check_key(&caller.owner).is_err() {
                return Err(ApiError::RateLimited);
            }
        }
        Ok(caller)
    }

    /// The caller, if the credentials hold (a token must name its subject).
    fn caller(&self, bearer: Option<&str>, api_key: Option<&str>) -> Option<Caller> {
        for offered in [bearer, api_key].into_iter().flatten() {
            if let Some(name) = key_matches(&self.keys, offered) {
                let owner = format!("key:{name}");
                return Some(Caller {
                    admin: self.admins.contains(&owner),
                    owner,
                });
            }
        }
        let (key, validation) = self.jwt.as_deref()?;
        let token = bearer?;
        let claims = decode::<Claims>(token, key, validation).ok()?.claims;
        let sub = claims.sub.filter(|s| !s.is_empty())?;
        let owner = match &self.jwt_tenant_claim {
            None => format!("jwt:{sub}"),
            Some(claim) => {
                let tenant = claims.other.get(claim)?.as_str()?;
                format!("jwt:{tenant}/{sub}")
            }
        };
        let admin = self.admins.contains(&owner)
            || self.jwt_admin_scope.as_deref().is_some_and(|wanted| {
                claims
                    .scope
                    .as_deref()
                    .is_some_and(|scopes| scopes.split(' ').any(|s| s == wanted))
            });
        Some(Caller { owner, admin })
    }
}

/// The name of a key given without one: a prefix of its SHA-256, so logs and stored owners
/// never hold the secret.
fn unnamed(secret: &str) -> String {
    let hash = Sha256::digest(secret.as_bytes());
    hash.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The name of the key `offered` is, comparing with every key in constant time.
fn key_matches(keys: &[Key], offered: &str) -> Option<String> {
    let mut found = None;
    for key in keys {
        if bool::from(offered.as_bytes().ct_eq(key.secret.as_bytes())) {
            found = Some(key.name.clone());
        }
    }
    found
}
