//! SMTP delivery of notification mail, with `lettre` over rustls (*ring*, the system's
//! roots): STARTTLS (`smtp://`, required, port 587 by default) or implicit TLS (`smtps://`,
//! port 465), optionally with a user and password (AUTH PLAIN/LOGIN). `smtp://…?tls=none`
//! speaks plain SMTP (port 25 by default), for a relay on the same host or network; with a
//! password it is accepted only on a loopback address, so a password never crosses a
//! network unencrypted.
//!
//! Each mail has a plain-text and an HTML part and the `Message-ID` `<{id}@grantry>`, the
//! same on every attempt, so a copy sent again after a crash can be recognised.

use grantry_core::mail::{Mailer, OutgoingMail};
use grantry_core::outbox::{Attempt, Sending};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
    /// `smtp://`: STARTTLS, required.
    StartTls,
    /// `smtp://…?tls=none`: no encryption.
    Plain,
}

/// A parsed `--smtp-url`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    password: Option<String>,
}

/// Never prints the password.
impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SmtpConfig {
    /// Parses `smtp://[USER[:PASSWORD]@]HOST[:PORT][?tls=starttls|none]` or
    /// `smtps://[USER[:PASSWORD]@]HOST[:PORT]`; user and password are percent-decoded.
    pub fn parse(url: &str) -> Result<SmtpConfig, String> {
        let parsed = url::Url::parse(url.trim()).map_err(|e| {
            format!("'{}' is not a URL ({e}); use smtp://user:password@host:587 or smtps://host:465", redact(url))
        })?;
        let mut security = match parsed.scheme() {
            "smtp" => SmtpSecurity::StartTls,
            "smtps" => SmtpSecurity::ImplicitTls,
            other => {
                return Err(format!(
                    "the scheme '{other}' is not supported; use smtp:// (STARTTLS) or smtps:// (implicit TLS)"
                ));
            }
        };
        for (key, value) in parsed.query_pairs() {
            match (key.as_ref(), value.as_ref(), security) {
                ("tls", "starttls" | "required", SmtpSecurity::StartTls) => {}
                ("tls", "none", SmtpSecurity::StartTls) => security = SmtpSecurity::Plain,
                ("tls", v, _) => {
                    return Err(format!(
                        "tls={v} is not supported here; smtp:// takes tls=starttls (the default) or tls=none, smtps:// always uses TLS"
                    ));
                }
                (k, _, _) => return Err(format!("the parameter '{k}' is not known; the only one is tls")),
            }
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the URL names no host; use smtp://user:password@host:587")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if parsed.path().len() > 1 {
            return Err("the URL must not have a path; use smtp://user:password@host:587".into());
        }
        let decode =
            |s: &str| percent_decode(s).ok_or_else(|| "the user or password is not valid percent-encoding".to_string());
        let user = Some(decode(parsed.username())?).filter(|u| !u.is_empty());
        let password = parsed.password().map(decode).transpose()?;
        if password.is_some() && user.is_none() {
            return Err("the URL has a password but no user".into());
        }
        let port = parsed.port().unwrap_or(match security {
            SmtpSecurity::ImplicitTls => 465,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Plain => 25,
        });
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if security == SmtpSecurity::Plain && password.is_some() && !loopback {
            return Err(format!(
                "tls=none with a password would send it unencrypted to {host}; use STARTTLS (smtp:// without tls=none) or smtps://"
            ));
        }
        Ok(SmtpConfig { host, port, security, user, password })
    }

    /// The URL without the password, for logs and messages.
    pub fn describe(&self) -> String {
        let scheme = if self.security == SmtpSecurity::ImplicitTls { "smtps" } else { "smtp" };
        let user = self.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
        let query = if self.security == SmtpSecurity::Plain { "?tls=none" } else { "" };
        format!("{scheme}://{user}{}:{}{query}", self.host, self.port)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `url` with anything between `://` and `@` hidden.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://…@{}", &url[..s], &url[a + 1..]),
        _ => url.to_string(),
    }
}

/// Parses a sender or recipient address (`a@b` or `Name <a@b>`).
pub fn parse_mailbox(address: &str) -> Result<Mailbox, String> {
    address.trim().parse::<Mailbox>().map_err(|e| format!("'{address}' is not a mail address ({e})"))
}

/// Sends mail through one SMTP server.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
}

impl SmtpMailer {
    pub fn new(config: &SmtpConfig) -> Result<SmtpMailer, String> {
        let tls = || {
            TlsParameters::builder(config.host.clone())
                .build_rustls()
                .map_err(|e| format!("cannot set up TLS for {}: {e}", config.host))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            .port(config.port)
            .timeout(Some(SMTP_TIMEOUT));
        builder = match config.security {
            SmtpSecurity::ImplicitTls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Plain => builder.tls(Tls::None),
        };
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(SmtpMailer { transport: builder.build(), server: config.describe() })
    }

    fn message(mail: &OutgoingMail) -> Result<Message, String> {
        let from = parse_mailbox(&mail.from)?;
        let mut to = parse_mailbox(&mail.to)?;
        if let Some(name) = &mail.to_name {
            to.name = Some(name.clone());
        }
        Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{}@grantry>", mail.id)))
            .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
            .map_err(|e| format!("the mail cannot be built: {e}"))
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, mail: OutgoingMail) -> Sending<'_> {
        Box::pin(async move {
            let message = match SmtpMailer::message(&mail) {
                Ok(m) => m,
                Err(error) => return Attempt::Refused { status: None, error },
            };
            match self.transport.send(message).await {
                Ok(response) => Attempt::Delivered {
                    status: u16::from(response.code()),
                    body: Some(serde_json::json!({ "transport": "smtp" })),
                },
                Err(e) => {
                    let status = e.status().map(u16::from);
                    let error = format!("{}: {e}", self.server);
                    if e.is_permanent() {
                        // 5xx: the server refuses this mail (unknown recipient, policy).
                        Attempt::Refused { status, error }
                    } else {
                        // 4xx, a refused or dropped connection, a timeout, a TLS failure:
                        // the server may be back later.
                        Attempt::Retry { status, error, retry_after: None }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_parsed_and_checked() {
        let c = SmtpConfig::parse("smtp://ann%40corp:p%3Ass@mail.example.com:587").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.security), ("mail.example.com", 587, SmtpSecurity::StartTls));
        assert_eq!(c.user.as_deref(), Some("ann@corp"));
        assert_eq!(c.password.as_deref(), Some("p:ss"));
        assert!(!format!("{c:?}").contains("p:ss"));
        assert_eq!(SmtpConfig::parse("smtps://mail.example.com").unwrap().port, 465);
        assert_eq!(SmtpConfig::parse("smtp://mail.example.com").unwrap().port, 587);
        let plain = SmtpConfig::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((plain.port, plain.security), (2525, SmtpSecurity::Plain));
        assert!(SmtpConfig::parse("smtp://u:p@localhost:25?tls=none").is_ok());
        for (bad, why) in [
            ("http://mail.example.com", "scheme"),
            ("smtp://u:p@mail.example.com?tls=none", "unencrypted"),
            ("smtp://mail.example.com?ssl=1", "not known"),
            ("smtps://mail.example.com?tls=none", "not supported"),
            ("smtp://mail.example.com/x", "path"),
            ("not a url", "not a URL"),
        ] {
            let e = SmtpConfig::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains(":p@"), "{e}");
        }
        assert!(parse_mailbox("Grantry <grantry@example.com>").is_ok());
        assert!(parse_mailbox("nobody").is_err());
    }
}
