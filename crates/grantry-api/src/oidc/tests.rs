//! The verifier against an issuer served from memory: keys from a key directory (ES256),
//! a transport that counts its fetches and can be made to fail.

use super::*;
use crate::keyring;
use grantry_core::outbox::{Fetching, OutboundRequest, Sending};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const ISSUER: &str = "https://idp.example.com/realms/corp";
const AUDIENCE: &str = "api://grantry";

struct FakeIssuer {
    jwks: Mutex<Value>,
    fetches: AtomicUsize,
    down: AtomicBool,
}

impl Transport for FakeIssuer {
    fn send(&self, _: OutboundRequest) -> Sending<'_> {
        unreachable!("the verifier only GETs")
    }
    fn get_json(&self, url: String, _: Duration) -> Fetching<'_> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let answer = if self.down.load(Ordering::SeqCst) {
            Err("could not connect".to_string())
        } else if url == format!("{ISSUER}/.well-known/openid-configuration") {
            Ok(json!({ "issuer": ISSUER, "jwks_uri": format!("{ISSUER}/certs") }))
        } else if url == format!("{ISSUER}/certs") {
            Ok(self.jwks.lock().unwrap().clone())
        } else {
            Err(format!("no such document: {url}"))
        };
        Box::pin(async move { answer })
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    fake: Arc<FakeIssuer>,
    issuers: ExternalIssuers,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let set = keyring::load_or_create(dir.path(), 0).unwrap();
        let fake = Arc::new(FakeIssuer {
            jwks: Mutex::new(serde_json::to_value(set.jwks()).unwrap()),
            fetches: AtomicUsize::new(0),
            down: AtomicBool::new(false),
        });
        let config = OidcIssuer {
            issuer: ISSUER.into(),
            audiences: vec![AUDIENCE.into()],
            jwks_uri: None,
            user_claim: None,
            app_claim: None,
            auto_provision: false,
        };
        let issuers = ExternalIssuers::new(vec![config], fake.clone());
        Fixture { dir, fake, issuers }
    }

    /// Adds a key at the issuer (as a rotation there does) and returns its kid.
    fn rotate(&self) -> String {
        let kid = keyring::rotate(self.dir.path(), 1).unwrap();
        *self.fake.jwks.lock().unwrap() = serde_json::to_value(keyring::load(self.dir.path()).unwrap().jwks()).unwrap();
        kid
    }

    fn sign_with(&self, kid: &str, header: Header, claims: &Value) -> String {
        let set = keyring::load(self.dir.path()).unwrap();
        let key = set.by_kid(kid).unwrap();
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
    }

    fn active_kid(&self) -> String {
        keyring::load(self.dir.path()).unwrap().active().unwrap().kid.clone()
    }

    fn token(&self, claims: &Value) -> String {
        let kid = self.active_kid();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        self.sign_with(&kid, header, claims)
    }

    fn fetches(&self) -> usize {
        self.fake.fetches.load(Ordering::SeqCst)
    }
}

fn claims() -> Value {
    let now = wall_now();
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "s1", "preferred_username": "adele@contoso.com",
            "iat": now, "nbf": now, "exp": now + 600, "scp": "EntitlementManagement.Read.All" })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

async fn refusal(f: &Fixture, token: &str) -> String {
    let e = f.issuers.verify(0, token).await.unwrap_err();
    assert_eq!(e.kind, grantry_domain::ErrorKind::Unauthorized, "{}", e.message);
    e.message
}

#[tokio::test]
async fn keys_are_discovered_once_and_tokens_remembered() {
    let f = Fixture::new();
    let t = f.token(&claims());
    let v = f.issuers.verify(0, &t).await.unwrap();
    assert_eq!(v.claims["preferred_username"], "adele@contoso.com");
    assert_eq!(f.fetches(), 2, "discovery, then the JWK set");
    // Another token with the same key: no fetch.
    let other = f.token(&with(claims(), "sub", json!("s2")));
    f.issuers.verify(0, &other).await.unwrap();
    f.issuers.verify(0, &t).await.unwrap();
    assert_eq!(f.fetches(), 2);
    assert_eq!(v.subject_key(), format!("{ISSUER}#s1"));
}

#[tokio::test]
async fn a_rotated_key_is_fetched_and_unknown_kids_are_rate_limited() {
    let f = Fixture::new();
    f.issuers.verify(0, &f.token(&claims())).await.unwrap();
    let before = f.fetches();
    let new_kid = f.rotate();
    // The issuer signs with its new key: one refresh finds it.
    let t = f.token(&claims());
    assert!(t.len() > 10 && f.active_kid() == new_kid);
    f.issuers.verify(0, &t).await.unwrap();
    assert_eq!(f.fetches(), before + 2);
    // Made-up kids right after: refused without fetching again.
    for n in 0..5 {
        let kid = format!("made-up-{n}");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        let forged = f.sign_with(&new_kid, header, &claims());
        let message = refusal(&f, &forged).await;
        assert!(message.contains(&kid) && message.contains("unknown kid"), "{message}");
    }
    assert_eq!(f.fetches(), before + 2, "unknown kids may not make Grantry hammer the issuer");
}

#[tokio::test]
async fn cached_keys_serve_while_the_issuer_is_down_and_no_keys_means_a_clear_refusal() {
    let f = Fixture::new();
    f.fake.down.store(true, Ordering::SeqCst);
    let message = refusal(&f, &f.token(&claims())).await;
    assert!(message.contains("cannot be fetched") && message.contains("could not connect"), "{message}");
    // Within the retry pause, the issuer is not asked again.
    let fetches = f.fetches();
    refusal(&f, &f.token(&with(claims(), "sub", json!("x")))).await;
    assert_eq!(f.fetches(), fetches);

    let f = Fixture::new();
    f.issuers.verify(0, &f.token(&claims())).await.unwrap();
    f.fake.down.store(true, Ordering::SeqCst);
    let fresh = f.token(&with(claims(), "sub", json!("another")));
    f.issuers.verify(0, &fresh).await.expect("the cached keys still verify");
}

#[tokio::test]
async fn each_bad_token_is_refused_naming_what_failed() {
    let f = Fixture::new();
    let now = wall_now();
    let cases: Vec<(Value, &str)> = vec![
        (with(claims(), "aud", json!("api://other")), "audience"),
        (with(claims(), "exp", json!(now - 3600)), "expired"),
        (with(claims(), "nbf", json!(now + 3600)), "not valid yet"),
        (with(claims(), "iss", json!("https://evil.example.com")), "issuer"),
    ];
    for (claims, expected) in cases {
        let message = refusal(&f, &f.token(&claims)).await;
        assert!(message.contains(expected), "{expected}: {message}");
    }
    // A tampered signature.
    let t = f.token(&claims());
    let middle = t.rfind('.').unwrap() + 20;
    let mut bytes = t.into_bytes();
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let t = String::from_utf8(bytes).unwrap();
    let message = refusal(&f, &t).await;
    assert!(message.contains("bad signature"), "{message}");
}

#[tokio::test]
async fn none_hmac_and_mismatched_algorithms_are_refused() {
    use base64::Engine as _;
    let f = Fixture::new();
    let kid = f.active_kid();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let body = b64(&claims());
    // alg none: no signature at all.
    let none = format!("{}.{body}.", b64(&json!({ "alg": "none", "kid": kid })));
    assert!(refusal(&f, &none).await.contains("'none'"));
    // HS256 with the public key as the secret (the classic confusion attack).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.clone());
    let jwks = f.fake.jwks.lock().unwrap().to_string();
    let hs = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(jwks.as_bytes())).unwrap();
    assert!(refusal(&f, &hs).await.contains("'HS256'"));
    // RS256 claimed for an ES256 key.
    let es = f.token(&claims());
    let mut parts: Vec<&str> = es.split('.').collect();
    let rs_header = b64(&json!({ "alg": "RS256", "kid": kid, "typ": "JWT" }));
    parts[0] = &rs_header;
    let message = refusal(&f, &parts.join(".")).await;
    assert!(message.contains("alg mismatch"), "{message}");
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    struct Liar;
    impl Transport for Liar {
        fn send(&self, _: OutboundRequest) -> Sending<'_> {
            unreachable!()
        }
        fn get_json(&self, _: String, _: Duration) -> Fetching<'_> {
            Box::pin(async {
                Ok(json!({ "issuer": "https://other.example.com", "jwks_uri": "https://other.example.com/k" }))
            })
        }
    }
    let f = Fixture::new();
    let config = OidcIssuer {
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        jwks_uri: None,
        user_claim: None,
        app_claim: None,
        auto_provision: false,
    };
    let issuers = ExternalIssuers::new(vec![config], Arc::new(Liar));
    let e = issuers.verify(0, &f.token(&claims())).await.unwrap_err();
    assert!(e.message.contains("names the issuer 'https://other.example.com'"), "{}", e.message);
}

#[test]
fn keys_come_over_https_or_loopback_http_only() {
    assert!(check_fetchable("https://idp.example.com/keys").is_ok());
    assert!(check_fetchable("http://127.0.0.1:8080/keys").is_ok());
    assert!(check_fetchable("http://localhost/keys").is_ok());
    assert!(check_fetchable("http://[::1]:9000/keys").is_ok());
    assert!(check_fetchable("http://idp.example.com/keys").is_err());
    assert!(check_fetchable("http://10.0.0.1/keys").is_err());
    assert!(check_fetchable("ftp://idp.example.com/keys").is_err());
}

#[test]
fn application_tokens_are_told_from_user_tokens_as_entra_does() {
    let map = |v: Value| v.as_object().unwrap().clone();
    assert!(is_app_token(&map(json!({ "idtyp": "app", "scp": "x" }))));
    assert!(is_app_token(&map(json!({ "roles": ["EntitlementManagement.Read.All"] }))));
    assert!(!is_app_token(&map(json!({ "roles": ["r"], "scp": "User.Read" }))));
    assert!(!is_app_token(&map(json!({ "preferred_username": "a@b.c" }))));
    let scp = scopes(&map(json!({ "scp": ["User.Read", "EntitlementManagement.Read.All"] })));
    assert!(scp.contains("user.read") && scp.contains("entitlementmanagement.read.all"));
    assert!(scopes(&map(json!({ "scope": "openid User.Read" }))).contains("user.read"));
}

#[tokio::test]
async fn old_keys_are_refreshed_in_the_background_and_still_serve_meanwhile() {
    let f = Fixture::new();
    let t = f.token(&claims());
    f.issuers.verify(0, &t).await.unwrap();
    let fetched = f.fetches();
    // Age the cache past its lifetime.
    let issuer = &f.issuers.issuers[0];
    let aged = {
        let current = issuer.snapshot();
        let long_ago =
            Instant::now().checked_sub(KEYS_TTL + Duration::from_secs(1)).expect("a monotonic clock this old");
        KeySet { keys: current.keys.clone(), fetched: Some(long_ago), generation: current.generation }
    };
    *issuer.keys.write().unwrap() = Arc::new(aged);
    // The issuer is down: the old keys still verify a new token at once...
    f.fake.down.store(true, Ordering::SeqCst);
    f.issuers.verify(0, &f.token(&with(claims(), "sub", json!("s3")))).await.expect("served from the old keys");
    // ...while a background refresh tries the issuer (and keeps the keys when it fails).
    for _ in 0..100 {
        if f.fetches() > fetched {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(f.fetches() > fetched, "the old keys were not refreshed");
    assert!(issuer.snapshot().find(Some(&f.active_kid())).is_some());
    // Back up: the next token after the retry pause refreshes them (here: at once, since
    // the failure is forgotten for the test).
    f.fake.down.store(false, Ordering::SeqCst);
    issuer.refresh.lock().await.last_failure = None;
    f.issuers.verify(0, &f.token(&with(claims(), "sub", json!("s4")))).await.unwrap();
    for _ in 0..100 {
        if issuer.snapshot().fetched.is_some_and(|t| t.elapsed() < KEYS_TTL) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(issuer.snapshot().fetched.is_some_and(|t| t.elapsed() < KEYS_TTL), "the keys were not refreshed");
}
