//! Bearer tokens: ES256 JWTs signed with a key from Grantry's key directory (see
//! [`crate::keyring`]), carrying Entra-like claims (`oid`, `tid`, `scp` or `roles`,
//! `wids`, `idtyp`) and the signing key's `kid`.
//!
//! Token lifetimes are checked against the wall clock, not the development clock, so that
//! advancing time to test expirations does not expire the tester's own tokens.

use crate::error::ApiError;
use crate::keyring::{self, KeySet};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use grantry_core::{Caller, Principal, PrincipalKind};
use grantry_domain::{Error, Result};
use grantry_store::{Store, repo};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

pub const AUDIENCES: &[&str] = &["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"];
/// Where versions before the key directory kept their HS256 secret; removed at start-up,
/// since tokens signed with it are no longer accepted.
const LEGACY_SECRET_META: &str = "token_signing_key";
const TENANT_META: &str = "tenant_id";
/// How the issuer of Grantry's own tokens begins (the tenant id follows).
const GRANTRY_ISSUER_PREFIX: &str = "https://sts.grantry.local/";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub oid: String,
    pub sub: String,
    /// "user" for delegated tokens, "app" for application tokens.
    pub idtyp: String,
    pub appid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_displayname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// "1" on tokens the token endpoint issued to a registered application that
    /// authenticated with a client secret (as in Entra); such tokens stop working when the
    /// application is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azpacr: Option<String>,
    pub ver: String,
}

/// The tenant's signing keys and id.
pub struct TokenKeys {
    pub tenant_id: String,
    dir: PathBuf,
    keys: RwLock<Arc<KeySet>>,
    /// When the key directory was last looked at, and its modification time then.
    checked: Mutex<(Instant, Option<SystemTime>)>,
    /// Tokens that passed [`TokenKeys::verify`], with their claims. Clients send the same
    /// bearer token on every call, and checking its signature and claims each time was
    /// about a tenth of the CPU time of a cheap request. Only the time checks are repeated
    /// on a hit.
    verified: Mutex<std::collections::HashMap<String, Claims>>,
}

/// The tenant id, created on first use. Also deletes the HS256 secret of earlier versions,
/// which nothing accepts any more.
pub async fn tenant_id(store: &Store) -> Result<String> {
    store
        .write(|c| {
            if repo::meta_get(c, LEGACY_SECRET_META)?.is_some() {
                c.execute("DELETE FROM meta WHERE key = ?", &[grantry_store::Value::from(LEGACY_SECRET_META)])?;
            }
            match repo::meta_get(c, TENANT_META)? {
                Some(t) => Ok(t),
                None => {
                    let t = grantry_domain::ids::new_id();
                    repo::meta_put(c, TENANT_META, &t)?;
                    Ok(t)
                }
            }
        })
        .await
}

/// Most tokens remembered as verified; the memory is emptied when it is full.
const VERIFIED_TOKENS: usize = 4096;
/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 30;
/// How often the key directory is looked at for keys added or removed by `grantry keys
/// rotate` while the server runs (also the least time between two looks caused by tokens
/// with an unknown `kid`).
const KEY_DIR_CHECK: Duration = Duration::from_secs(2);

/// The wall clock, in seconds: token times follow it (see the module comment).
pub(crate) fn wall_now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

impl TokenKeys {
    /// Reads the tenant id from the database (creating it on first use) and the signing
    /// keys from `key_dir` (creating the first key when there is none).
    pub async fn load_or_create(store: &Store, key_dir: &Path) -> Result<TokenKeys> {
        let tenant_id = tenant_id(store).await?;
        TokenKeys::with_tenant(tenant_id, key_dir)
    }

    /// The keys of `key_dir` for a known tenant id.
    pub fn with_tenant(tenant_id: String, key_dir: &Path) -> Result<TokenKeys> {
        let modified = keyring::modified(key_dir);
        let set = keyring::load_or_create(key_dir, wall_now())?;
        Ok(TokenKeys {
            tenant_id,
            dir: key_dir.to_path_buf(),
            keys: RwLock::new(Arc::new(set)),
            checked: Mutex::new((Instant::now(), modified)),
            verified: Default::default(),
        })
    }

    pub fn issuer(&self) -> String {
        format!("{GRANTRY_ISSUER_PREFIX}{}/", self.tenant_id)
    }

    /// The current key set.
    pub fn key_set(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The public keys, as a JWK set (keys added by a rotation show up within seconds).
    pub fn jwks(&self) -> crate::keyring::Jwks {
        self.refresh(false);
        self.key_set().jwks()
    }

    /// Reloads the keys when the key directory changed since it was last looked at. With
    /// `force` false, looks at most once per [`KEY_DIR_CHECK`].
    fn refresh(&self, force: bool) {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if !force && checked.0.elapsed() < KEY_DIR_CHECK {
            return;
        }
        let modified = keyring::modified(&self.dir);
        checked.0 = Instant::now();
        if modified == checked.1 {
            return;
        }
        match keyring::load(&self.dir) {
            Ok(set) if set.active().is_some() => {
                checked.1 = modified;
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
                tracing::info!(dir = %self.dir.display(), "token signing keys reloaded");
            }
            Ok(_) => {
                tracing::warn!(dir = %self.dir.display(), "the key directory has no signing key; keeping the loaded keys")
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "cannot reload the token signing keys; keeping the loaded keys")
            }
        }
    }

    pub fn mint(&self, claims: &Claims) -> Result<String> {
        self.refresh(true);
        let set = self.key_set();
        let key = set.active().ok_or_else(|| Error::internal("no active token signing key"))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| Error::internal(format!("cannot sign the token: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<Claims> {
        // Tokens follow the wall clock, as the `exp` check inside `jsonwebtoken` does.
        let now = wall_now();
        let remembered = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        if let Some(claims) = remembered
            && claims.exp + LEEWAY_SECS > now
            && claims.nbf - LEEWAY_SECS <= now
        {
            return Ok(claims);
        }
        let claims = self.verify_signed(token).map_err(|e| self.explain_other_server(token, e))?;
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_string(), claims.clone());
        Ok(claims)
    }

    /// A refused token that another Grantry server issued (its issuer names another tenant)
    /// is refused saying so, and how to get one this server accepts: the usual cause is a
    /// `grantry token` run against another data directory or database than the server's.
    fn explain_other_server(&self, token: &str, refused: Error) -> Error {
        use base64::Engine;
        let claims: Option<serde_json::Value> = token
            .split('.')
            .nth(1)
            .and_then(|payload| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok())
            .and_then(|json| serde_json::from_slice(&json).ok());
        let issuer = claims.as_ref().and_then(|c| c["iss"].as_str()).unwrap_or_default();
        match issuer.strip_prefix(GRANTRY_ISSUER_PREFIX).map(|rest| rest.trim_end_matches('/')) {
            Some(tenant) if tenant != self.tenant_id => Error::unauthorized(format!(
                "The access token was issued by another Grantry server (tenant {tenant}; this server's tenant is {}), \
                 usually because `grantry token` ran against another data directory or database. Get a token from \
                 this server with the `grantry token` command it prints when it starts (with its --data-dir or --database).",
                self.tenant_id
            )),
            _ => refused,
        }
    }

    /// Checks the token's algorithm, key, signature and every claim.
    fn verify_signed(&self, token: &str) -> Result<Claims> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            Error::unauthorized(format!("The access token is malformed ({e}); send 'Authorization: Bearer <JWT>'."))
        })?;
        match header.alg {
            Algorithm::ES256 => {}
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                return Err(Error::unauthorized(
                    "The access token is signed with a shared secret (HS256), as Grantry's tokens were before it \
                     moved to ES256 signing keys; such tokens are no longer accepted. Mint a new one with `grantry token`.",
                ));
            }
            other => {
                return Err(Error::unauthorized(format!(
                    "The access token's algorithm {other:?} is not accepted; Grantry signs its tokens with ES256."
                )));
            }
        }
        let kid = header
            .kid
            .ok_or_else(|| Error::unauthorized("The access token has no 'kid' header naming its signing key."))?;
        self.refresh(false);
        let mut set = self.key_set();
        if set.by_kid(&kid).is_none() {
            // Perhaps a key added since (by `grantry keys rotate`, or by another node).
            self.refresh(false);
            set = self.key_set();
        }
        let key = set.by_kid(&kid).ok_or_else(|| {
            Error::unauthorized(format!(
                "The access token is signed with key '{kid}', which this server does not have (an unknown or removed key)."
            ))
        })?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(AUDIENCES);
        validation.set_issuer(&[self.issuer()]);
        validation.leeway = LEEWAY_SECS as u64;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            Error::unauthorized(match e.kind() {
                K::ExpiredSignature => "The access token has expired; mint a new one with `grantry token`.".to_string(),
                K::ImmatureSignature => "The access token is not valid yet (nbf is in the future).".to_string(),
                K::InvalidSignature => {
                    "The access token's signature is invalid: it was not issued by this Grantry server.".to_string()
                }
                K::InvalidAudience => format!("The access token's audience must be one of: {}.", AUDIENCES.join(", ")),
                K::InvalidIssuer => "The access token was issued for another tenant or server.".to_string(),
                _ => format!("The access token is malformed ({e}); send 'Authorization: Bearer <JWT>'."),
            })
        })?;
        if data.claims.tid != self.tenant_id {
            return Err(Error::unauthorized("The access token was issued for another tenant."));
        }
        Ok(data.claims)
    }
}

/// Parameters for minting a token.
pub struct MintRequest {
    pub kind: PrincipalKind,
    pub object_id: String,
    pub app_id: String,
    pub display_name: Option<String>,
    pub upn: Option<String>,
    pub permissions: Vec<String>,
    pub wids: Vec<String>,
    pub issued_at: i64,
    pub lifetime_secs: i64,
}

pub fn claims_for(keys: &TokenKeys, r: MintRequest) -> Claims {
    let is_app = r.kind == PrincipalKind::App;
    Claims {
        aud: AUDIENCES[0].to_string(),
        iss: keys.issuer(),
        iat: r.issued_at,
        nbf: r.issued_at,
        exp: r.issued_at + r.lifetime_secs,
        tid: keys.tenant_id.clone(),
        oid: r.object_id.clone(),
        sub: r.object_id.clone(),
        idtyp: if is_app { "app" } else { "user" }.to_string(),
        appid: r.app_id,
        app_displayname: if is_app { r.display_name.clone() } else { Some("grantry-cli".into()) },
        scp: (!is_app).then(|| r.permissions.join(" ")),
        roles: is_app.then_some(r.permissions),
        wids: (!is_app && !r.wids.is_empty()).then_some(r.wids),
        name: r.display_name,
        upn: r.upn,
        azpacr: None,
        ver: "2.0".into(),
    }
}

/// Which trusted external issuer `token` claims to come from, if any (the claim is checked
/// with the signature afterwards). Tokens naming no issuer, or Grantry as theirs, are
/// Grantry's own; a token from any other issuer is refused here, naming the trusted ones.
pub(crate) fn external_issuer(state: &AppState, token: &str) -> Result<Option<usize>> {
    let Some(iss) =
        crate::oidc::segment_json(token, 1).and_then(|c| c.get("iss").and_then(|i| i.as_str().map(str::to_string)))
    else {
        return Ok(None);
    };
    if iss.starts_with(GRANTRY_ISSUER_PREFIX) {
        return Ok(None);
    }
    if let Some(index) = state.oidc.find(&iss) {
        return Ok(Some(index));
    }
    let trusted = state.oidc.names();
    Err(Error::unauthorized(if trusted.is_empty() {
        format!(
            "The access token's issuer (iss) '{iss}' is not trusted: this server accepts only its own tokens (configure --oidc-issuer to trust an identity provider)."
        )
    } else {
        format!(
            "The access token's issuer (iss) '{iss}' is not trusted; trusted issuers: {} (and this server's own tokens).",
            trusted.join(", ")
        )
    }))
}

/// The principal of one of Grantry's own tokens.
async fn own_principal(state: &AppState, token: &str) -> Result<Principal> {
    let claims = state.keys.verify(token)?;
    let (kind, permissions) = if claims.idtyp == "app" {
        (PrincipalKind::App, claims.roles.clone().unwrap_or_default())
    } else {
        (PrincipalKind::User, claims.scp.as_deref().unwrap_or("").split_whitespace().map(str::to_string).collect())
    };
    let principal = Principal {
        kind,
        id: grantry_domain::ids::normalize(&claims.oid),
        display_name: claims.name.clone().or(claims.app_displayname.clone()),
        permissions: permissions.iter().map(|p| p.to_ascii_lowercase()).collect::<BTreeSet<_>>(),
    };
    if claims.azpacr.is_some()
        && kind == PrincipalKind::App
        && !grantry_core::applications::is_registered(&state.app.store, &claims.appid).await?
    {
        return Err(Error::unauthorized(
            "The application this token was issued to has been removed (grantry app remove).",
        ));
    }
    Ok(principal)
}

/// The application id Grantry's callout tokens carry in `appid` (and `oid`/`sub`): Entra's
/// entitlement management first-party application, which receivers written for Entra's
/// legacy bearer tokens check.
pub const ENTITLEMENT_MANAGEMENT_APP_ID: &str = "810dcf14-1858-4bf2-8134-4c369fa3235b";
/// How long a callout's bearer token is valid: minted for each attempt, used at once.
pub const CALLOUT_TOKEN_SECS: i64 = 300;

/// Custom extension callouts carry a bearer token from this server's issuer, verifiable
/// with its JWKS. The token holds no roles or scopes, and is never minted for Grantry's own
/// audiences, so a receiver cannot use it against Grantry's API.
impl grantry_core::outbox::TokenIssuer for TokenKeys {
    fn bearer_for(&self, audience: &str) -> Result<String> {
        if AUDIENCES.iter().any(|a| a.eq_ignore_ascii_case(audience.trim_end_matches('/'))) {
            return Err(Error::bad_request(
                "InvalidAudience",
                format!("'{audience}' is Grantry's own API audience; a callout token names its receiver instead."),
            ));
        }
        let now = wall_now();
        self.mint(&Claims {
            aud: audience.to_string(),
            iss: self.issuer(),
            iat: now,
            nbf: now,
            exp: now + CALLOUT_TOKEN_SECS,
            tid: self.tenant_id.clone(),
            oid: ENTITLEMENT_MANAGEMENT_APP_ID.into(),
            sub: ENTITLEMENT_MANAGEMENT_APP_ID.into(),
            idtyp: "app".into(),
            appid: ENTITLEMENT_MANAGEMENT_APP_ID.into(),
            app_displayname: Some("Grantry entitlement management".into()),
            scp: None,
            roles: None,
            wids: None,
            name: None,
            upn: None,
            azpacr: None,
            ver: "1.0".into(),
        })
    }
}

/// The authenticated caller of a request.
pub struct Authed(pub Caller);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
            Error::unauthorized(
                "Authentication is required: send 'Authorization: Bearer <token>' (mint one with `grantry token`).",
            )
        })?;
        let header = header.to_str().map_err(|_| Error::unauthorized("The Authorization header is not valid text."))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::unauthorized("The Authorization header must have the form 'Bearer <token>'."))?;
        let principal = match external_issuer(state, token)? {
            Some(index) => {
                let verified = state.oidc.verify(index, token).await?;
                state.oidc.principal(&state.app, &verified).await?
            }
            None => own_principal(state, token).await?,
        };
        crate::throttle::admit(state, &principal.id)?;
        let caller = grantry_core::auth::load_caller(&state.app, principal).await?;
        Ok(Authed(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (TokenKeys, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let keys =
            TokenKeys::with_tenant("11111111-1111-4111-8111-111111111111".into(), &dir.path().join("keys")).unwrap();
        (keys, dir)
    }

    fn token(keys: &TokenKeys, issued_at: i64, lifetime_secs: i64) -> String {
        let claims = claims_for(
            keys,
            MintRequest {
                kind: PrincipalKind::App,
                object_id: "22222222-2222-4222-8222-222222222222".into(),
                app_id: "22222222-2222-4222-8222-222222222222".into(),
                display_name: None,
                upn: None,
                permissions: vec!["EntitlementManagement.Read.All".into()],
                wids: vec![],
                issued_at,
                lifetime_secs,
            },
        );
        keys.mint(&claims).unwrap()
    }

    #[test]
    fn a_remembered_token_is_still_refused_once_it_expires() {
        let (keys, _dir) = keys();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let t = token(&keys, now, 3600);
        assert_eq!(keys.verify(&t).unwrap().exp, now + 3600);
        // A second use is answered from memory, with the same claims.
        assert_eq!(keys.verify(&t).unwrap().oid, "22222222-2222-4222-8222-222222222222");
        // A token remembered while valid but expired since must be refused, not served
        // from memory.
        let mut expired = keys.verify(&t).unwrap();
        expired.exp = now - 3600;
        let stale = keys.mint(&expired).unwrap();
        keys.verified.lock().unwrap().insert(stale.clone(), expired);
        let e = keys.verify(&stale).unwrap_err();
        assert!(e.message.contains("expired"), "{}", e.message);
    }

    #[test]
    fn a_tampered_token_is_refused_and_not_remembered() {
        let (keys, _dir) = keys();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let t = token(&keys, now, 3600);
        let mut tampered = t.clone();
        tampered.pop();
        tampered.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.verify(&tampered).is_err());
        assert!(!keys.verified.lock().unwrap().contains_key(&tampered));
    }
}
