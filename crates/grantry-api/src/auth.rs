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
}

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
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(AUDIENCES);
        validation.set_issuer(&[self.issuer()]);
        validation.leeway = 30;
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
