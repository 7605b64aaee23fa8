//! A small Graph client for `grantry export/plan/apply`: a bearer token (given, or from a
//! client-credentials grant), bounded calls, paging through `@odata.nextLink`, and Graph's
//! error envelope turned into a message that names the call.

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// How long one call may take; a governance read or write is small.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The most pages one list may have, so a server that keeps answering with a next link
/// cannot keep the command busy forever.
const MAX_PAGES: usize = 10_000;

/// Where the Graph server is and how to authenticate to it (flags or `GRANTRY_*` variables).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Base URL of the server speaking Graph (without /v1.0), e.g. http://127.0.0.1:8080.
    #[arg(long, env = "GRANTRY_URL", value_name = "URL")]
    pub url: String,
    /// An access token with EntitlementManagement.ReadWrite.All, User.Read.All and
    /// Group.Read.All (e.g. from `grantry token --app`). Or use --client-id and --client-secret.
    #[arg(long, env = "GRANTRY_TOKEN", value_name = "TOKEN", hide_env_values = true, conflicts_with = "client_id")]
    pub token: Option<String>,
    /// Client id of an application registered with `grantry app create` (client credentials).
    #[arg(long, env = "GRANTRY_CLIENT_ID", value_name = "ID", requires = "client_secret")]
    pub client_id: Option<String>,
    /// Its client secret (prefer the GRANTRY_CLIENT_SECRET variable to a flag).
    #[arg(long, env = "GRANTRY_CLIENT_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Tenant of the token endpoint: the tenant id, `common` or `organizations`.
    #[arg(long, env = "GRANTRY_TENANT", value_name = "TENANT", default_value = "organizations")]
    pub tenant: String,
    /// The token endpoint [default: <url>/<tenant>/oauth2/v2.0/token].
    #[arg(long, env = "GRANTRY_TOKEN_URL", value_name = "URL")]
    pub token_url: Option<String>,
    /// A PEM CA certificate to trust besides the system's (e.g. the ca.pem of `grantry cert`).
    #[arg(long, env = "GRANTRY_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// A connection to one server's `/v1.0` API.
pub struct Graph {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Graph {
    pub async fn connect(args: &ConnectArgs) -> anyhow::Result<Graph> {
        let base = args.url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--url '{base}' must start with http:// or https://");
        }
        let mut roots = Vec::new();
        if let Some(path) = &args.ca_cert {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?
            {
                roots.push(cert.with_context(|| format!("{} holds no valid PEM certificate", path.display()))?);
            }
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(grantry_outbound::client_tls(roots))
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client")?;
        let token = match (&args.token, &args.client_id, &args.client_secret) {
            (Some(token), _, _) => token.trim().to_string(),
            (None, Some(id), Some(secret)) => {
                let url = args.token_url.clone().unwrap_or_else(|| format!("{base}/{}/oauth2/v2.0/token", args.tenant));
                client_credentials(&http, &url, id, secret).await?
            }
            _ => bail!("give a token (--token or GRANTRY_TOKEN) or --client-id and --client-secret"),
        };
        Ok(Graph { http, base, token })
    }

    /// A connection with a token already in hand (tests, and callers that mint one).
    pub fn with_token(base: &str, token: &str) -> anyhow::Result<Graph> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(grantry_outbound::client_tls(Vec::new()))
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Graph { http, base: base.trim_end_matches('/').to_string(), token: token.to_string() })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One call below `/v1.0` (`path` starts with `/`); the answer's JSON (null for 204).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/v1.0{path}", self.base)
        };
        let mut request = self.http.request(method.clone(), &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(serde_json::to_vec(body)?);
        }
        let response = request.send().await.with_context(|| format!("{method} {url}: no answer"))?;
        let status = response.status();
        let bytes = response.bytes().await.with_context(|| format!("{method} {url}: the answer was cut off"))?;
        let json: Value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if !status.is_success() {
            let code = json["error"]["code"].as_str().unwrap_or("");
            let message = json["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned());
            bail!("{method} {path} was refused with {status} {code}: {message}");
        }
        Ok(json)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// Every item of a collection, following `@odata.nextLink`.
    pub async fn list(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = path.to_string();
        for _ in 0..MAX_PAGES {
            let page = self.get(&next).await?;
            if let Some(values) = page["value"].as_array() {
                items.extend(values.iter().cloned());
            }
            match page["@odata.nextLink"].as_str() {
                Some(link) => next = link.to_string(),
                None => return Ok(items),
            }
        }
        bail!("GET {path}: more than {MAX_PAGES} pages")
    }
}

/// The client credentials grant; the answer's access token.
async fn client_credentials(http: &reqwest::Client, url: &str, id: &str, secret: &str) -> anyhow::Result<String> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let body = form_encode(&form);
    let response = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}: no answer"))?;
    let status = response.status();
    let json: Value = response.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
    if !status.is_success() {
        // OAuth's error shape; the secret is never repeated.
        bail!(
            "the token endpoint {url} refused the client credentials ({status}): {} {}",
            json["error"].as_str().unwrap_or(""),
            json["error_description"].as_str().unwrap_or("")
        );
    }
    json["access_token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("the token endpoint {url} answered without an access_token"))
}

/// `application/x-www-form-urlencoded` without another dependency.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}
