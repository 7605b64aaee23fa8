//! Grantry's outbound HTTP: the one place that calls other systems (custom extension
//! callouts, event webhooks; mail goes out through [`smtp`]). Every HTTP call goes through
//! [`HttpTransport`], which
//!
//! - accepts only `http`/`https` URLs without credentials;
//! - resolves the host once, checks every address against the [`AllowList`], and connects
//!   to the checked addresses (no second lookup, so DNS cannot swap in an internal address);
//! - bounds the whole attempt by its timeout, reads at most [`MAX_RESPONSE_BYTES`] of the
//!   answer, and never follows redirects (a 3xx is a refusal, as Standard Webhooks asks);
//! - uses rustls with the *ring* provider and the system's root certificates;
//! - GETs small JSON documents (OpenID discovery, JWK sets of trusted token issuers) with
//!   the same checks;
//! - logs neither bodies nor headers (signatures and tokens stay out of logs).

pub mod allow;
pub mod smtp;

pub use allow::AllowList;
use grantry_core::outbox::{Attempt, Fetching, OutboundRequest, Sending, Transport};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The most of an answer Grantry reads (it needs only the status and a little detail).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The longest a connection may take to open, within the attempt's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A TLS client configuration with the *ring* provider trusting the system's root
/// certificates and `extra_roots` (e.g. a development CA).
// rustls marks its ring provider deprecated because ring lacks post-quantum key exchange;
// ring is the one TLS provider this project builds with (no aws-lc-rs).
#[allow(deprecated)]
pub fn client_tls(extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs.into_iter().chain(extra_roots) {
        // A certificate the store cannot parse is skipped; the others still serve.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        tracing::warn!("no system root certificates found: https calls will fail to verify their servers");
    }
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            // The ring provider supports the default versions; this cannot fail.
            unreachable!("ring supports TLS 1.2 and 1.3")
        })
}

pub struct HttpTransport {
    allow: AllowList,
    tls: Arc<rustls::ClientConfig>,
}

impl HttpTransport {
    pub fn new(allow: AllowList) -> HttpTransport {
        let tls = client_tls(Vec::new());
        HttpTransport { allow, tls: Arc::new(tls) }
    }

    /// Checks `url` against the allow-list and builds a client that connects only to the
    /// addresses checked.
    async fn client_for(&self, url: &str, timeout: Duration) -> Result<(reqwest::Client, reqwest::Url), Unready> {
        let url = reqwest::Url::parse(url).map_err(|e| Unready::Refused(format!("the URL cannot be parsed: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Unready::Refused(format!("the scheme '{}' is not http or https", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Unready::Refused("the URL carries credentials".into()));
        }
        let Some(host) = url.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
        else {
            return Err(Unready::Refused("the URL has no host".into()));
        };
        let Some(port) = url.port_or_known_default() else {
            return Err(Unready::Refused("the URL has no port".into()));
        };

        // Resolve once; the connection goes to exactly these addresses.
        let literal = host.parse::<IpAddr>().ok();
        let addresses: Vec<SocketAddr> = match literal {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host.as_str(), port))).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => return Err(Unready::Retry(format!("{host} cannot be resolved: {e}"))),
                Err(_) => return Err(Unready::Retry(format!("resolving {host} timed out"))),
            },
        };
        if let Err(refusal) = self.allow.check(&host, port, &addresses) {
            return Err(Unready::Refused(format!("destination not allowed: {refusal}")));
        }

        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .pool_max_idle_per_host(0);
        if literal.is_none() {
            builder = builder.resolve_to_addrs(&host, &addresses);
        }
        let client = builder.build().map_err(|e| Unready::Refused(format!("the HTTP client cannot be built: {e}")))?;
        Ok((client, url))
    }

    /// GETs a JSON document of at most [`MAX_RESPONSE_BYTES`], within `timeout`.
    async fn fetch_json(&self, url: String, timeout: Duration) -> Result<serde_json::Value, String> {
        let (client, url) = self.client_for(&url, timeout).await.map_err(|u| match u {
            Unready::Refused(e) | Unready::Retry(e) => e,
        })?;
        let mut response = client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("the request {}: {}", failure(&e), without_url(&e)))?;
        let status = response.status().as_u16();
        if !(200..=299).contains(&status) {
            return Err(format!("the server answered {status}"));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(format!("the document is larger than {MAX_RESPONSE_BYTES} bytes"));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(format!("reading the answer {}: {}", failure(&e), without_url(&e))),
            }
        }
        serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))
    }

    async fn attempt(&self, request: OutboundRequest) -> Attempt {
        let (client, url) = match self.client_for(&request.url, request.timeout).await {
            Ok(ready) => ready,
            Err(Unready::Refused(error)) => return Attempt::Refused { status: None, error },
            Err(Unready::Retry(error)) => return Attempt::Retry { status: None, error, retry_after: None },
        };
        let method = match reqwest::Method::from_bytes(request.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                return Attempt::Refused { status: None, error: format!("'{}' is not an HTTP method", request.method) };
            }
        };
        let mut call = client.request(method, url);
        if !request.body.is_empty() {
            call = call.body(request.body);
        }
        for (name, value) in &request.headers {
            call = call.header(name, value);
        }
        let mut response = match call.send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    status: None,
                    error: format!("the call {}: {}", failure(&e), without_url(&e)),
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(grantry_core::outbox::RetryAfter::parse);
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

/// The host and port of `url`, an address of a token issuer the operator trusts: `https`,
/// or plain `http` only on a loopback address (`localhost`, `127.0.0.0/8`, `::1`), since
/// keys fetched in the clear could be swapped on the way.
pub fn trusted_https_url(url: &str) -> Result<(String, u16), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("'{url}' carries credentials"));
    }
    let host = parsed
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
        .ok_or_else(|| format!("'{url}' has no host"))?;
    let port = parsed.port_or_known_default().ok_or_else(|| format!("'{url}' has no port"))?;
    match parsed.scheme() {
        "https" => Ok((host, port)),
        "http" if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) => Ok((host, port)),
        "http" => Err(format!("'{url}' is plain http on a host other than loopback; use https")),
        other => Err(format!("'{url}' has the scheme '{other}'; use https")),
    }
}

/// Why a call could not be made: refused for good, or worth another try.
enum Unready {
    Refused(String),
    Retry(String),
}

fn failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
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

    fn get_json(&self, url: String, timeout: Duration) -> Fetching<'_> {
        Box::pin(self.fetch_json(url, timeout))
    }
}
