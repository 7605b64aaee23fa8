use grantry_core::App;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Externally visible base URL, without a trailing slash (e.g. `http://127.0.0.1:8080`);
    /// used in `@odata.context`, `@odata.nextLink` and `$ref` ids.
    pub public_base_url: String,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Longest time a client may take to send a request body.
    pub read_timeout: std::time::Duration,
    /// Database statement time one request may use.
    pub statement_budget: std::time::Duration,
    /// The web portal's sign-in settings.
    pub portal: crate::portal::PortalConfig,
}

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub config: Arc<ApiConfig>,
    pub keys: Arc<crate::auth::TokenKeys>,
    /// Trusted external OpenID issuers (`--oidc-issuer`, `[[oidc]]`).
    pub oidc: Arc<crate::oidc::ExternalIssuers>,
    /// POSTs with `client-request-id` being processed (see [`crate::idempotency`]).
    pub inflight: Arc<crate::idempotency::InFlight>,
    /// Failed client authentications at the token endpoint, per client.
    pub client_throttle: Arc<crate::routes::ClientThrottle>,
    /// Each caller's slots for expensive queries (see [`crate::throttle`]).
    pub expensive_slots: Arc<crate::throttle::CallerSlots>,
}
