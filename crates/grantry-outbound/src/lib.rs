//! Grantry's outbound HTTP: the one place that calls other systems (custom extension
//! callouts, event webhooks). Every call goes through [`HttpTransport`], which
//!
//! - accepts only `http`/`https` URLs without credentials;
//! - resolves the host once, checks every address against the [`AllowList`], and connects
//!   to the checked addresses (no second lookup, so DNS cannot swap in an internal address);
//! - bounds the whole attempt by its timeout, reads at most [`MAX_RESPONSE_BYTES`] of the
//!   answer, and never follows redirects (a 3xx is a refusal, as Standard Webhooks asks);
//! - uses rustls with the *ring* provider and the system's root certificates;
//! - logs neither bodies nor headers (signatures and tokens stay out of logs).

pub mod allow;

pub use allow::AllowList;
use grantry_core::outbox::{Attempt, OutboundRequest, Sending, Transport};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The most of an answer Grantry reads (it needs only the status and a little detail).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The longest a connection may take to open, within the attempt's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct HttpTransport {
    allow: AllowList,
    tls: Arc<rustls::ClientConfig>,
}

impl HttpTransport {
    // rustls marks its ring provider deprecated because ring lacks post-quantum key exchange;
    // ring is the one TLS provider this project builds with (no aws-lc-rs).
    #[allow(deprecated)]
    pub fn new(allow: AllowList) -> HttpTransport {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A certificate the store cannot parse is skipped; the others still serve.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            tracing::warn!("no system root certificates found: https callouts will fail to verify their receivers");
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| {
                // The ring provider supports the default versions; this cannot fail.
                unreachable!("ring supports TLS 1.2 and 1.3")
            });
        HttpTransport { allow, tls: Arc::new(tls) }
    }

    async fn attempt(&self, request: OutboundRequest) -> Attempt {
        let refused = |error: String| Attempt::Refused { status: None, error };
        let url = match reqwest::Url::parse(&request.url) {
            Ok(u) => u,
            Err(e) => return refused(format!("the URL cannot be parsed: {e}")),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return refused(format!("the scheme '{}' is not http or https", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refused("the URL carries credentials".into());
        }
        let Some(host) = url.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
        else {
            return refused("the URL has no host".into());
        };
        let Some(port) = url.port_or_known_default() else { return refused("the URL has no port".into()) };

        // Resolve once; the connection goes to exactly these addresses.
        let literal = host.parse::<IpAddr>().ok();
        let addresses: Vec<SocketAddr> = match literal {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host.as_str(), port))).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => {
                    return Attempt::Retry {
                        status: None,
                        error: format!("{host} cannot be resolved: {e}"),
                        retry_after: None,
                    };
                }
                Err(_) => {
                    return Attempt::Retry {
                        status: None,
                        error: format!("resolving {host} timed out"),
                        retry_after: None,
                    };
                }
            },
        };
        if let Err(refusal) = self.allow.check(&host, port, &addresses) {
            return refused(format!("destination not allowed: {refusal}"));
        }

        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT.min(request.timeout))
            .timeout(request.timeout)
            .pool_max_idle_per_host(0);
        if literal.is_none() {
            builder = builder.resolve_to_addrs(&host, &addresses);
        }
        let client = match builder.build() {
            Ok(c) => c,
            Err(e) => return refused(format!("the HTTP client cannot be built: {e}")),
        };
        let mut call = client.post(url).body(request.body);
        for (name, value) in &request.headers {
            call = call.header(name, value);
        }
        let mut response = match call.send().await {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "failed"
                };
                return Attempt::Retry {
                    status: None,
                    error: format!("the call {what}: {}", without_url(&e)),
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        // Read at most MAX_RESPONSE_BYTES, within the attempt's timeout (set on the client).
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = MAX_RESPONSE_BYTES - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_RESPONSE_BYTES {
                break;
            }
        }
        let detail = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        match status {
            200..=299 => Attempt::Delivered { status, body: serde_json::from_slice(&body).ok() },
            408 | 425 | 429 | 500..=599 => Attempt::Retry {
                status: Some(status),
                error: format!("the receiver answered {status}: {detail}"),
                retry_after,
            },
            300..=399 => Attempt::Refused {
                status: Some(status),
                error: format!("the receiver answered {status} (a redirect, which Grantry does not follow)"),
            },
            _ => Attempt::Refused { status: Some(status), error: format!("the receiver answered {status}: {detail}") },
        }
    }
}

/// An error's text without the URL (which could carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Transport for HttpTransport {
    fn send(&self, request: OutboundRequest) -> Sending<'_> {
        Box::pin(self.attempt(request))
    }
}
