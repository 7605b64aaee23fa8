//! Access tokens from the organization's own OpenID provider (Entra, Okta, Keycloak, Google,
//! Authentik, Dex…): issuers the operator trusts with `--oidc-issuer` or `[[oidc]]` tables.
//!
//! - Keys come from the issuer's JWK set, found through its discovery document
//!   (`{issuer}/.well-known/openid-configuration` → `jwks_uri`) unless `jwks_uri` is
//!   configured. They are cached; refreshed in the background once [`KEYS_TTL`] old, and in
//!   the foreground when a token names a `kid` the cache lacks (at most once per
//!   [`FORCED_REFRESH_INTERVAL`], so made-up `kid`s cannot make Grantry hammer the issuer).
//!   One refresh runs at a time per issuer; others wait for it, never longer than the
//!   fetch bound. A failed refresh keeps the keys already known, so a briefly unreachable
//!   issuer does not lock anyone out.
//! - RS256, PS256, ES256 and EdDSA are accepted; `none`, HS* (a public key must never be
//!   usable as an HMAC secret) and the rest are refused. The key's own `alg` and type must
//!   fit the token's.
//! - `iss`, `aud` (one of the issuer's configured audiences), `exp` and `nbf` are checked
//!   with [`LEEWAY_SECS`] of clock skew.
//! - The subject becomes a directory user ([`ExternalIssuers::principal`]); application
//!   tokens become a registered application.

use crate::auth::wall_now;
use grantry_core::outbox::Transport;
use grantry_core::{App, Principal, PrincipalKind};
use grantry_domain::{Error, Result};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// One trusted issuer, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIssuer {
    /// The issuer identifier, exactly as tokens carry it in `iss`.
    pub issuer: String,
    /// Accepted `aud` values (at least one).
    pub audiences: Vec<String>,
    /// Where the JWK set is, when discovery should not be used.
    pub jwks_uri: Option<String>,
    /// The claim naming the user (matched against userPrincipalName or mail); by default
    /// `preferred_username`, then `upn`, then `email`.
    pub user_claim: Option<String>,
    /// The claim naming an application's client id; by default `azp`, then `appid`, then
    /// `client_id`.
    pub app_claim: Option<String>,
    /// Create a directory user for a subject not found, from the `name` and `email` claims.
    pub auto_provision: bool,
}

/// Signature algorithms accepted from external issuers.
pub const ACCEPTED_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];
/// Clock skew allowed on `exp` and `nbf`, in seconds (the issuer's clock is not ours).
pub const LEEWAY_SECS: u64 = 60;
/// How long one fetch of a discovery document or JWK set may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Age after which the keys are fetched again (in the background; the cached keys serve
/// meanwhile).
pub const KEYS_TTL: Duration = Duration::from_secs(3600);
/// Least time between two fetches caused by tokens naming an unknown `kid`.
pub const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// After a failed fetch, how long before another is tried.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Most tokens remembered as verified.
const VERIFIED_TOKENS: usize = 4096;
const DEFAULT_USER_CLAIMS: &[&str] = &["preferred_username", "upn", "email"];
const DEFAULT_APP_CLAIMS: &[&str] = &["azp", "appid", "client_id"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    P256,
    OtherEc,
    Ed25519,
    Other,
}

impl KeyType {
    fn fits(self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (KeyType::Rsa, Algorithm::RS256 | Algorithm::PS256)
                | (KeyType::P256, Algorithm::ES256)
                | (KeyType::Ed25519, Algorithm::EdDSA)
        )
    }
    fn describe(self) -> &'static str {
        match self {
            KeyType::Rsa => "an RSA key",
            KeyType::P256 => "a P-256 key",
            KeyType::OtherEc => "an elliptic curve key on another curve than P-256",
            KeyType::Ed25519 => "an Ed25519 key",
            KeyType::Other => "a key of a type Grantry does not verify with",
        }
    }
}

struct Key {
    kid: Option<String>,
    decoding: DecodingKey,
    alg: Option<Algorithm>,
    key_type: KeyType,
}

/// The keys of one issuer as last fetched.
#[derive(Default)]
struct KeySet {
    keys: Vec<Arc<Key>>,
    fetched: Option<Instant>,
    /// Counts successful fetches, so a waiter can tell that another refreshed meanwhile.
    generation: u64,
}

impl KeySet {
    fn find(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned(),
            // Without a `kid`, only an issuer with a single key is unambiguous.
            None if self.keys.len() == 1 => self.keys.first().cloned(),
            None => None,
        }
    }
}

#[derive(Default)]
struct RefreshLog {
    last_forced: Option<Instant>,
    last_failure: Option<(Instant, String)>,
    /// The JWK set's address found by the last discovery.
    discovered_jwks_uri: Option<String>,
}

struct IssuerState {
    config: OidcIssuer,
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching: one refresh at a time per issuer.
    refresh: tokio::sync::Mutex<RefreshLog>,
}

impl IssuerState {
    fn snapshot(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// No keys yet, or a token names a `kid` the cache lacks.
    Needed,
    /// The cached keys are old.
    Expired,
}

/// A token that passed every check, with the issuer that signed it.
#[derive(Debug, Clone)]
pub struct Verified {
    issuer: usize,
    pub claims: Map<String, Value>,
    exp: i64,
    nbf: Option<i64>,
}

impl Verified {
    /// Who the token stands for at its issuer (`iss` and `sub`), as one string.
    pub fn subject_key(&self) -> String {
        let text = |name: &str| self.claims.get(name).and_then(Value::as_str).unwrap_or("");
        format!("{}#{}", text("iss"), text("sub"))
    }
}

/// The trusted external issuers.
pub struct ExternalIssuers {
    issuers: Vec<Arc<IssuerState>>,
    transport: Arc<dyn Transport>,
    verified: Mutex<HashMap<String, Verified>>,
}

impl ExternalIssuers {
    /// `transport` fetches the discovery documents and JWK sets (its allow-list must admit
    /// the issuers).
    pub fn new(issuers: Vec<OidcIssuer>, transport: Arc<dyn Transport>) -> ExternalIssuers {
        ExternalIssuers {
            issuers: issuers
                .into_iter()
                .map(|config| Arc::new(IssuerState { config, keys: Default::default(), refresh: Default::default() }))
                .collect(),
            transport,
            verified: Default::default(),
        }
    }

    /// No external issuer is trusted.
    pub fn none() -> ExternalIssuers {
        ExternalIssuers::new(Vec::new(), Arc::new(grantry_core::outbox::NoTransport))
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The configured issuer identifiers.
    pub fn names(&self) -> Vec<&str> {
        self.issuers.iter().map(|i| i.config.issuer.as_str()).collect()
    }

    /// The index of the configured issuer whose identifier is `iss`.
    pub fn find(&self, iss: &str) -> Option<usize> {
        let iss = iss.trim_end_matches('/');
        self.issuers.iter().position(|i| i.config.issuer.trim_end_matches('/') == iss)
    }

    /// Checks `token`, issued by the issuer at `index` (see [`ExternalIssuers::find`]).
    pub async fn verify(&self, index: usize, token: &str) -> Result<Verified> {
        let now = wall_now();
        let remembered = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        if let Some(v) = remembered
            && v.issuer == index
            && v.exp + LEEWAY_SECS as i64 > now
            && v.nbf.is_none_or(|nbf| nbf - LEEWAY_SECS as i64 <= now)
        {
            return Ok(v);
        }
        let issuer = self.issuers.get(index).ok_or_else(|| Error::internal("unknown issuer index"))?;
        let verified = self.verify_signed(index, issuer, token, &issuer.config.audiences).await?;
        let mut memory = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if memory.len() >= VERIFIED_TOKENS {
            memory.clear();
        }
        memory.insert(token.to_string(), verified.clone());
        Ok(verified)
    }

    async fn verify_signed(
        &self,
        index: usize,
        issuer: &Arc<IssuerState>,
        token: &str,
        audiences: &[String],
    ) -> Result<Verified> {
        let name = &issuer.config.issuer;
        let header = segment_json(token, 0).ok_or_else(|| {
            Error::unauthorized(
                "The access token is malformed (its header is not base64url JSON); send 'Authorization: Bearer <JWT>'.",
            )
        })?;
        let alg_text = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = alg_text.parse::<Algorithm>().ok().filter(|a| ACCEPTED_ALGORITHMS.contains(a)).ok_or_else(|| {
            Error::unauthorized(format!(
                "The access token's algorithm '{alg_text}' is not accepted from issuer {name}; accepted: RS256, PS256, ES256, EdDSA (never 'none' or HS*)."
            ))
        })?;
        let kid = header.get("kid").and_then(Value::as_str);
        let key = self.key_for(issuer, kid).await?;
        let kid_text = kid.unwrap_or("(none)");
        if let Some(key_alg) = key.alg
            && key_alg != alg
        {
            return Err(Error::unauthorized(format!(
                "The access token's algorithm {alg:?} does not match key '{kid_text}' of issuer {name}, which is for {key_alg:?} (alg mismatch)."
            )));
        }
        if !key.key_type.fits(alg) {
            return Err(Error::unauthorized(format!(
                "The access token's algorithm {alg:?} does not fit key '{kid_text}' of issuer {name}, {} (alg mismatch).",
                key.key_type.describe()
            )));
        }
        let mut validation = Validation::new(alg);
        validation.set_audience(audiences);
        validation.set_issuer(&[name.as_str(), name.trim_end_matches('/')]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let unverified = segment_json(token, 1).unwrap_or_default();
            Error::unauthorized(match e.kind() {
                K::ExpiredSignature => {
                    format!("The access token has expired (exp); get a new one from {name}.")
                }
                K::ImmatureSignature => "The access token is not valid yet (nbf is in the future).".to_string(),
                K::InvalidSignature => format!(
                    "The access token's signature does not verify with key '{kid_text}' of issuer {name} (bad signature)."
                ),
                K::InvalidAudience => format!(
                    "The access token's audience (aud) {} is not accepted for issuer {name}; accepted: {}.",
                    unverified.get("aud").map(Value::to_string).unwrap_or_else(|| "(none)".into()),
                    audiences.join(", ")
                ),
                K::InvalidIssuer => format!("The access token's issuer (iss) is not {name}."),
                K::MissingRequiredClaim(claim) => format!("The access token has no '{claim}' claim."),
                _ => format!("The access token from {name} is malformed ({e})."),
            })
        })?;
        let claims = data.claims;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let nbf = claims.get("nbf").and_then(Value::as_i64);
        Ok(Verified { issuer: index, claims, exp, nbf })
    }

    /// The key named `kid`, fetching the issuer's keys when they are missing, unknown or old.
    async fn key_for(&self, issuer: &Arc<IssuerState>, kid: Option<&str>) -> Result<Arc<Key>> {
        let name = &issuer.config.issuer;
        let snapshot = issuer.snapshot();
        if let Some(key) = snapshot.find(kid) {
            // Old but usable: refresh without making this request wait, unless a refresh
            // is under way or just failed (so a busy server does not pile up tasks).
            let due = || {
                issuer.refresh.try_lock().is_ok_and(|log| {
                    log.last_failure.as_ref().is_none_or(|(at, _)| at.elapsed() >= RETRY_AFTER_FAILURE)
                })
            };
            if snapshot.fetched.is_some_and(|t| t.elapsed() > KEYS_TTL) && due() {
                let (issuer, transport, generation) = (issuer.clone(), self.transport.clone(), snapshot.generation);
                tokio::spawn(async move { refresh(&issuer, transport.as_ref(), generation, Why::Expired).await });
            }
            return Ok(key);
        }
        refresh(issuer, self.transport.as_ref(), snapshot.generation, Why::Needed).await;
        let snapshot = issuer.snapshot();
        if let Some(key) = snapshot.find(kid) {
            return Ok(key);
        }
        if snapshot.fetched.is_none() {
            let why = issuer.refresh.try_lock().ok().and_then(|log| log.last_failure.as_ref().map(|(_, e)| e.clone()));
            return Err(Error::unauthorized(format!(
                "The signing keys of issuer {name} cannot be fetched ({}); the access token cannot be checked.",
                why.unwrap_or_else(|| "another fetch is under way".into())
            )));
        }
        Err(Error::unauthorized(match kid {
            Some(kid) => format!(
                "The access token is signed with key '{kid}', which issuer {name} does not publish (unknown kid)."
            ),
            None => format!(
                "The access token has no 'kid' header, and issuer {name} publishes {} keys; Grantry cannot tell which signed it.",
                snapshot.keys.len()
            ),
        }))
    }

    /// Checks an ID token the issuer at `index` gave the portal (client `client_id`): the
    /// same signature, issuer and time checks as an access token, its audience the client,
    /// and the `nonce` the sign-in sent.
    pub async fn verify_id_token(&self, index: usize, token: &str, client_id: &str, nonce: &str) -> Result<Verified> {
        let issuer = self.issuers.get(index).ok_or_else(|| Error::internal("unknown issuer index"))?;
        let verified = self.verify_signed(index, issuer, token, &[client_id.to_string()]).await?;
        if verified.claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(Error::unauthorized("The ID token's nonce is not the one this sign-in sent."));
        }
        Ok(verified)
    }

    /// The directory user a verified ID token names (as for access tokens: `oid`, then the
    /// issuer's user claim; created when the issuer has `auto_provision`).
    pub async fn user_of(&self, app: &App, verified: &Verified) -> Result<Principal> {
        let config = &self.issuers.get(verified.issuer).ok_or_else(|| Error::internal("unknown issuer index"))?.config;
        user_principal(app, config, &verified.claims).await
    }

    /// The issuer's discovery document (authorization and token endpoints), fetched through
    /// the same bounded client as its keys.
    pub async fn discovery(&self, index: usize) -> Result<Value> {
        let issuer = self.issuers.get(index).ok_or_else(|| Error::internal("unknown issuer index"))?;
        let url = format!("{}/.well-known/openid-configuration", issuer.config.issuer.trim_end_matches('/'));
        let doc = self.transport.get_json(url.clone(), FETCH_TIMEOUT).await.map_err(|e| {
            Error::new(grantry_domain::ErrorKind::Unavailable, "IssuerUnavailable", format!("GET {url}: {e}"))
        })?;
        let named = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if named.trim_end_matches('/') != issuer.config.issuer.trim_end_matches('/') {
            return Err(Error::new(
                grantry_domain::ErrorKind::Unavailable,
                "IssuerUnavailable",
                format!("{url} names the issuer '{named}', not {}", issuer.config.issuer),
            ));
        }
        Ok(doc)
    }

    /// The client that reaches the issuers (its allow-list admits them).
    pub fn transport(&self) -> Arc<dyn Transport> {
        self.transport.clone()
    }

    /// The directory user or registered application a verified token stands for.
    pub async fn principal(&self, app: &App, verified: &Verified) -> Result<Principal> {
        let config = &self.issuers.get(verified.issuer).ok_or_else(|| Error::internal("unknown issuer index"))?.config;
        let claims = &verified.claims;
        if is_app_token(claims) {
            return app_principal(app, config, claims).await;
        }
        user_principal(app, config, claims).await
    }
}

/// The base64url JSON segment `index` of a compact JWT (0: header, 1: claims), unverified.
pub fn segment_json(token: &str, index: usize) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let part = token.split('.').nth(index)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Fetches the issuer's keys unless another caller did since `seen_generation`, or the
/// rate limits say not now. Never fails: the outcome is in the key set and the log.
async fn refresh(issuer: &IssuerState, transport: &dyn Transport, seen_generation: u64, why: Why) {
    // Discovery plus the JWK set, and a little more: a waiter never waits longer.
    let Ok(mut log) = tokio::time::timeout(FETCH_TIMEOUT * 2 + Duration::from_secs(1), issuer.refresh.lock()).await
    else {
        return;
    };
    if issuer.snapshot().generation != seen_generation {
        return;
    }
    if log.last_failure.as_ref().is_some_and(|(at, _)| at.elapsed() < RETRY_AFTER_FAILURE) {
        return;
    }
    let have_keys = issuer.snapshot().fetched.is_some();
    if why == Why::Needed && have_keys {
        if log.last_forced.is_some_and(|at| at.elapsed() < FORCED_REFRESH_INTERVAL) {
            return;
        }
        log.last_forced = Some(Instant::now());
    }
    let name = &issuer.config.issuer;
    match fetch_keys(&issuer.config, transport, &mut log).await {
        Ok(keys) => {
            let count = keys.len();
            let mut current = issuer.keys.write().unwrap_or_else(|e| e.into_inner());
            let generation = current.generation + 1;
            *current = Arc::new(KeySet { keys, fetched: Some(Instant::now()), generation });
            log.last_failure = None;
            tracing::info!(issuer = %name, keys = count, "fetched the signing keys of a trusted issuer");
        }
        Err(e) => {
            tracing::warn!(issuer = %name, error = %e, "cannot fetch the signing keys of a trusted issuer; keeping the keys already known");
            log.last_failure = Some((Instant::now(), e));
        }
    }
}

async fn fetch_keys(
    config: &OidcIssuer,
    transport: &dyn Transport,
    log: &mut RefreshLog,
) -> Result<Vec<Arc<Key>>, String> {
    let jwks_uri = match &config.jwks_uri {
        Some(uri) => uri.clone(),
        None => match discover(config, transport).await {
            Ok(uri) => {
                log.discovered_jwks_uri = Some(uri.clone());
                uri
            }
            // The address found before still serves while discovery is down.
            Err(e) => log.discovered_jwks_uri.clone().ok_or(e)?,
        },
    };
    let set = transport.get_json(jwks_uri.clone(), FETCH_TIMEOUT).await.map_err(|e| format!("GET {jwks_uri}: {e}"))?;
    let keys = parse_jwks(&set).map_err(|e| format!("{jwks_uri}: {e}"))?;
    Ok(keys)
}

/// The `jwks_uri` of the issuer's discovery document, which must name the same issuer.
async fn discover(config: &OidcIssuer, transport: &dyn Transport) -> Result<String, String> {
    let url = format!("{}/.well-known/openid-configuration", config.issuer.trim_end_matches('/'));
    let doc = transport.get_json(url.clone(), FETCH_TIMEOUT).await.map_err(|e| format!("GET {url}: {e}"))?;
    let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    if issuer.trim_end_matches('/') != config.issuer.trim_end_matches('/') {
        return Err(format!("{url} names the issuer '{issuer}', not {}", config.issuer));
    }
    let jwks_uri =
        doc.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| format!("{url} has no jwks_uri"))?.to_string();
    check_fetchable(&jwks_uri)?;
    Ok(jwks_uri)
}

/// A key address must be https, or plain http on loopback only.
pub fn check_fetchable(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    let host =
        lower.strip_prefix("http://").map(|rest| rest.split(['/', '?', '#']).next().unwrap_or("")).map(|authority| {
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority),
            };
            host.to_string()
        });
    match host {
        Some(h) if h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) => Ok(()),
        Some(_) => Err(format!("'{url}' is plain http on a host other than loopback; keys must come over https")),
        None => Err(format!("'{url}' is not an https URL")),
    }
}

/// The signing keys of a JWK set. Keys for encryption, and keys Grantry cannot read (other
/// types, curves or malformed ones), are skipped.
fn parse_jwks(set: &Value) -> Result<Vec<Arc<Key>>, String> {
    let keys = set.get("keys").and_then(Value::as_array).ok_or("the JWK set has no 'keys' array")?;
    let mut out = Vec::new();
    for raw in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let key_type = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyType::Rsa,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => KeyType::P256,
            AlgorithmParameters::EllipticCurve(_) => KeyType::OtherEc,
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => KeyType::Ed25519,
            // Symmetric keys never verify an external token.
            _ => KeyType::Other,
        };
        if key_type == KeyType::Other {
            continue;
        }
        let Ok(decoding) = DecodingKey::from_jwk(&jwk) else { continue };
        let alg = jwk.common.key_algorithm.and_then(|a| match a {
            KeyAlgorithm::RS256 => Some(Algorithm::RS256),
            KeyAlgorithm::RS384 => Some(Algorithm::RS384),
            KeyAlgorithm::RS512 => Some(Algorithm::RS512),
            KeyAlgorithm::PS256 => Some(Algorithm::PS256),
            KeyAlgorithm::PS384 => Some(Algorithm::PS384),
            KeyAlgorithm::PS512 => Some(Algorithm::PS512),
            KeyAlgorithm::ES256 => Some(Algorithm::ES256),
            KeyAlgorithm::ES384 => Some(Algorithm::ES384),
            KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
            KeyAlgorithm::HS256 => Some(Algorithm::HS256),
            KeyAlgorithm::HS384 => Some(Algorithm::HS384),
            KeyAlgorithm::HS512 => Some(Algorithm::HS512),
            _ => None,
        });
        out.push(Arc::new(Key { kid: jwk.common.key_id.clone(), decoding, alg, key_type }));
    }
    Ok(out)
}

fn claim_text<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// Entra's rule: `idtyp` says so, or the token has application `roles` and no delegated
/// scope.
fn is_app_token(claims: &Map<String, Value>) -> bool {
    if let Some(idtyp) = claim_text(claims, "idtyp") {
        return idtyp.eq_ignore_ascii_case("app");
    }
    claims.get("roles").is_some() && claims.get("scp").is_none() && claims.get("scope").is_none()
}

/// Delegated permissions: `scp` (a space-separated string, or an array as Okta sends it),
/// else `scope`.
fn scopes(claims: &Map<String, Value>) -> BTreeSet<String> {
    let value = claims.get("scp").or_else(|| claims.get("scope"));
    let words: Vec<String> = match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    words.into_iter().map(|w| w.to_ascii_lowercase()).collect()
}

async fn user_principal(app: &App, config: &OidcIssuer, claims: &Map<String, Value>) -> Result<Principal> {
    let permissions = scopes(claims);
    let display_name = claim_text(claims, "name").map(str::to_string);
    // `oid` names a Grantry user when the issuer is an Entra tenant whose users were copied
    // with their ids.
    if let Some(oid) = claim_text(claims, "oid").filter(|o| grantry_domain::ids::is_guid(o)) {
        let id = grantry_domain::ids::normalize(oid);
        let key = id.clone();
        let exists = app
            .store
            .read(move |c| {
                Ok(c.query_one("SELECT id FROM users WHERE id = ?", &[grantry_store::Value::from(&key)])?.is_some())
            })
            .await?;
        if exists {
            return Ok(Principal { kind: PrincipalKind::User, id, display_name, permissions });
        }
    }
    let candidates: Vec<&str> = match &config.user_claim {
        Some(claim) => vec![claim.as_str()],
        None => DEFAULT_USER_CLAIMS.to_vec(),
    };
    let Some((claim, value)) = candidates.iter().find_map(|c| claim_text(claims, c).map(|v| (*c, v.to_string())))
    else {
        return Err(Error::forbidden(format!(
            "The access token from {} names no user: it has none of the claims {} (set user_claim for this issuer to the claim that does).",
            config.issuer,
            candidates.join(", ")
        )));
    };
    // Some providers let people set an address they have not proven (Entra's multi-tenant
    // `email`, social logins): such an address must not open someone else's account.
    let unverified_email = claims.get("email_verified").is_some_and(|v| v == &Value::Bool(false) || v == "false");
    if claim == "email" && unverified_email {
        return Err(Error::forbidden(format!(
            "The access token from {} names its user by the email '{value}', which the issuer says is not verified (email_verified is false).",
            config.issuer
        )));
    }
    let lower = value.to_lowercase();
    let found = app
        .store
        .read(move |c| {
            // A userPrincipalName match wins over a mail match.
            let v = grantry_store::Value::from(&lower);
            let by_upn = c.query_one("SELECT id FROM users WHERE upn_lower = ?", std::slice::from_ref(&v))?;
            let row = match by_upn {
                Some(r) => Some(r),
                None => c.query_one("SELECT id FROM users WHERE mail_lower = ? ORDER BY id LIMIT 1", &[v])?,
            };
            row.map(|r| r.text(0)).transpose()
        })
        .await?;
    if let Some(id) = found {
        return Ok(Principal { kind: PrincipalKind::User, id, display_name, permissions });
    }
    if !config.auto_provision {
        return Err(Error::forbidden(format!(
            "No directory user has the userPrincipalName or mail '{value}' (the access token's '{claim}' claim from {}); \
             create the user first, or set auto_provision = true for this issuer.",
            config.issuer
        )));
    }
    let email = claim_text(claims, "email").filter(|_| !unverified_email).map(str::to_string);
    let user = grantry_core::directory::provision_user(
        app,
        grantry_core::directory::ProvisionedUser {
            user_principal_name: if value.contains('@') {
                value.clone()
            } else {
                email.clone().unwrap_or(value.clone())
            },
            display_name: display_name.clone().unwrap_or_else(|| value.clone()),
            mail: email,
        },
    )
    .await?;
    tracing::info!(issuer = %config.issuer, user = %user.id, "created a directory user for a new subject (auto_provision)");
    Ok(Principal { kind: PrincipalKind::User, id: user.id, display_name, permissions })
}

async fn app_principal(app: &App, config: &OidcIssuer, claims: &Map<String, Value>) -> Result<Principal> {
    let candidates: Vec<&str> = match &config.app_claim {
        Some(claim) => vec![claim.as_str()],
        None => DEFAULT_APP_CLAIMS.to_vec(),
    };
    let Some((claim, client_id)) = candidates.iter().find_map(|c| claim_text(claims, c).map(|v| (*c, v.to_string())))
    else {
        return Err(Error::forbidden(format!(
            "The application token from {} names no client: it has none of the claims {} (set app_claim for this issuer).",
            config.issuer,
            candidates.join(", ")
        )));
    };
    let key = client_id.clone();
    let registered = app.store.read(move |c| grantry_core::applications::find_by_client_id(c, &key)).await?;
    let Some(registered) = registered else {
        return Err(Error::forbidden(format!(
            "The client '{client_id}' (the access token's '{claim}' claim from {}) is not a registered application; \
             register it with `grantry app create NAME --client-id {client_id} --roles …`.",
            config.issuer
        )));
    };
    // The token's roles, as far as the registration allows them.
    let allowed: BTreeSet<String> = registered.roles.iter().map(|r| r.to_ascii_lowercase()).collect();
    let roles: BTreeSet<String> = match claims.get("roles") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(|r| r.to_ascii_lowercase()).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(|r| r.to_ascii_lowercase()).collect(),
        _ => BTreeSet::new(),
    };
    Ok(Principal {
        kind: PrincipalKind::App,
        id: registered.sp_id.clone(),
        display_name: Some(registered.display_name.clone()),
        permissions: roles.intersection(&allowed).cloned().collect(),
    })
}

#[cfg(test)]
mod tests;
