//! Bearer tokens: HS256 JWTs signed with a key kept in Grantry's own database, carrying
//! Entra-like claims (`oid`, `tid`, `scp` or `roles`, `wids`, `idtyp`).
//!
//! Token lifetimes are checked against the wall clock, not the development clock, so that
//! advancing time to test expirations does not expire the tester's own tokens.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use grantry_core::{Caller, Principal, PrincipalKind};
use grantry_domain::{Error, Result};
use grantry_store::{Store, repo};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub const AUDIENCES: &[&str] = &["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"];
const KEY_META: &str = "token_signing_key";
const TENANT_META: &str = "tenant_id";

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
    pub ver: String,
}

/// The tenant's signing key and id.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub tenant_id: String,
    /// Tokens that passed [`TokenKeys::verify`], with their claims. Clients send the same
    /// bearer token on every call, and checking its signature and claims each time was
    /// about a tenth of the CPU time of a cheap request. Only the time checks are repeated
    /// on a hit; the signing key never changes while the server runs.
    verified: std::sync::Mutex<std::collections::HashMap<String, Claims>>,
}

/// Most tokens remembered as verified; the memory is emptied when it is full.
const VERIFIED_TOKENS: usize = 4096;
/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 30;

impl TokenKeys {
    /// Reads the key and tenant id from the database, creating them on first use.
    pub async fn load_or_create(store: &Store) -> Result<TokenKeys> {
        let (secret, tenant_id) = store
            .write(|c| {
                let secret = match repo::meta_get(c, KEY_META)? {
                    Some(s) => s,
                    None => {
                        let s = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                        repo::meta_put(c, KEY_META, &s)?;
                        s
                    }
                };
                let tenant = match repo::meta_get(c, TENANT_META)? {
                    Some(t) => t,
                    None => {
                        let t = grantry_domain::ids::new_id();
                        repo::meta_put(c, TENANT_META, &t)?;
                        t
                    }
                };
                Ok((secret, tenant))
            })
            .await?;
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            tenant_id,
            verified: Default::default(),
        })
    }

    pub fn issuer(&self) -> String {
        format!("https://sts.grantry.local/{}/", self.tenant_id)
    }

    pub fn mint(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::internal(format!("cannot sign the token: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<Claims> {
        // Tokens follow the wall clock, as the `exp` check inside `jsonwebtoken` does.
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let remembered = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        if let Some(claims) = remembered
            && claims.exp + LEEWAY_SECS > now
            && claims.nbf - LEEWAY_SECS <= now
        {
            return Ok(claims);
        }
        let claims = self.verify_signed(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_string(), claims.clone());
        Ok(claims)
    }

    /// Checks the token's signature and every claim.
    fn verify_signed(&self, token: &str) -> Result<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(AUDIENCES);
        validation.set_issuer(&[self.issuer()]);
        validation.leeway = LEEWAY_SECS as u64;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
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
        ver: "2.0".into(),
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
        let caller = grantry_core::auth::load_caller(&state.app, principal).await?;
        Ok(Authed(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys {
            encoding: EncodingKey::from_secret(b"test-secret"),
            decoding: DecodingKey::from_secret(b"test-secret"),
            tenant_id: "11111111-1111-4111-8111-111111111111".into(),
            verified: Default::default(),
        }
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
        let keys = keys();
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
        let keys = keys();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let t = token(&keys, now, 3600);
        let mut tampered = t.clone();
        tampered.pop();
        tampered.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.verify(&tampered).is_err());
        assert!(!keys.verified.lock().unwrap().contains_key(&tampered));
    }
}
