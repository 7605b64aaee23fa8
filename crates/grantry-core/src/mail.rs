//! Notification mail: one more kind of outbox message.
//!
//! [`enqueue`] writes a mail to one person in the transaction of the change it is about
//! (who gets what is decided in [`crate::notify`]); its id is derived from the event and the
//! recipient, so the same notification is never written twice. The outbox's sender claims
//! it like any message; at claim time [`plan`] applies the per-recipient rate limit (at most
//! [`HOURLY_LIMIT`] mails an hour) and folds several waiting mails into one digest. Mails are
//! rendered when sent, from the [`Templates`] (built in, or overridden from a directory),
//! with links to the portal under the public base URL, and handed to the [`Mailer`] (SMTP);
//! without one they are kept, marked delivered, for administrators to read
//! (`GET /_grantry/mail`).

use crate::auth::perms;
use crate::outbox::{Attempt, Sending};
use crate::{App, Caller};
use chrono::{DateTime, Duration, Utc};
use grantry_domain::model::{OutboxKind, OutboxMessage, OutboxState, SignedBy, User};
use grantry_domain::{Error, Result};
use grantry_store::{Conn, Value, repo};
use serde_json::{Map, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Mails one recipient gets individually per [`WINDOW`]; more wait and go out as a digest.
pub const HOURLY_LIMIT: i64 = 10;
/// The rate limit's window.
pub const WINDOW: Duration = Duration::hours(1);
/// When this many mails wait for one recipient at once, they go out as one digest.
pub const DIGEST_AT: usize = 3;
/// Most mails folded into one digest (the rest go in the next one).
pub const DIGEST_MAX: usize = 1000;
/// Most items a digest lists one by one.
const DIGEST_LISTED: usize = 50;

/// One mail to hand to the transport.
#[derive(Clone)]
pub struct OutgoingMail {
    /// Stable across retries: the `Message-ID` (`<id@grantry>`), so receivers can drop a
    /// copy sent again after a crash.
    pub id: String,
    pub from: String,
    pub to: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Names the recipient and subject, never the body.
impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish()
    }
}

/// Sends mail (SMTP, in `grantry-outbound`). `Delivered` means the server accepted it.
pub trait Mailer: Send + Sync {
    fn send(&self, mail: OutgoingMail) -> Sending<'_>;
}

/// How mail is sent and rendered.
pub struct MailSettings {
    /// `None`: no SMTP server is configured; mails are kept for administrators to read.
    pub mailer: Option<Arc<dyn Mailer>>,
    /// The sender address (`--mail-from`).
    pub from: String,
    /// Links in mails are this base URL plus a portal path (`/approvals/{id}`, …).
    pub public_base_url: String,
    pub templates: Templates,
}

/// The sender address when none is configured.
pub const DEFAULT_FROM: &str = "Grantry <grantry@localhost>";

impl MailSettings {
    /// No SMTP: mails are kept. The built-in templates.
    pub fn kept(public_base_url: &str) -> MailSettings {
        MailSettings {
            mailer: None,
            from: DEFAULT_FROM.into(),
            public_base_url: public_base_url.trim_end_matches('/').to_string(),
            templates: Templates::builtin(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

/// The mails Grantry sends; each has `NAME.subject`, `NAME.txt` and `NAME.html`.
pub const TEMPLATE_NAMES: &[&str] = &[
    "approvalPending",
    "approvalEscalated",
    "approvalReminder",
    "approvalDecided",
    "approvalExpired",
    "requestApproved",
    "requestDenied",
    "accessDelivered",
    "deliveryFailed",
    "requestCanceled",
    "accessExpiring",
    "accessEnded",
    "reviewStarted",
    "reviewReminder",
    "digest",
];

macro_rules! builtin {
    ($($name:literal),*) => {
        &[$(
            ($name,
             include_str!(concat!("../templates/mail/", $name, ".subject")),
             include_str!(concat!("../templates/mail/", $name, ".txt")),
             include_str!(concat!("../templates/mail/", $name, ".html"))),
        )*]
    };
}

const BUILTIN: &[(&str, &str, &str, &str)] = builtin!(
    "approvalPending",
    "approvalEscalated",
    "approvalReminder",
    "approvalDecided",
    "approvalExpired",
    "requestApproved",
    "requestDenied",
    "accessDelivered",
    "deliveryFailed",
    "requestCanceled",
    "accessExpiring",
    "accessEnded",
    "reviewStarted",
    "reviewReminder",
    "digest"
);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    /// `{{name}}` (escaped in HTML) or `{{{name}}}` (inserted as it is: only for fragments
    /// Grantry builds and escapes itself).
    Var {
        name: String,
        raw: bool,
    },
    /// `{{#name}}…{{/name}}` (shown when `name` is not empty) or `{{^name}}…{{/name}}`
    /// (shown when it is).
    Section {
        name: String,
        inverted: bool,
        children: Vec<Node>,
    },
}

/// A parsed template (a small subset of Mustache).
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Node>);

impl Template {
    pub fn parse(source: &str) -> std::result::Result<Template, String> {
        let mut stack: Vec<(String, bool, Vec<Node>)> = vec![(String::new(), false, Vec::new())];
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                stack.last_mut().expect("root").2.push(Node::Text(rest[..start].to_string()));
            }
            let after = &rest[start..];
            let (raw, open, close) = if after.starts_with("{{{") { (true, 3, "}}}") } else { (false, 2, "}}") };
            let end = after[open..].find(close).ok_or_else(|| format!("'{}' is not closed", &after[..open]))?;
            let tag = after[open..open + end].trim();
            rest = &after[open + end + close.len()..];
            let name_ok = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if let Some(name) = tag.strip_prefix('#').or_else(|| tag.strip_prefix('^')).filter(|_| !raw) {
                if !name_ok(name.trim()) {
                    return Err(format!("'{{{{{tag}}}}}' does not name a variable"));
                }
                stack.push((name.trim().to_string(), tag.starts_with('^'), Vec::new()));
            } else if let Some(name) = tag.strip_prefix('/').filter(|_| !raw) {
                let (open_name, inverted, children) = stack.pop().expect("root");
                if stack.is_empty() || open_name != name.trim() {
                    return Err(format!("'{{{{/{}}}}}' closes a section that is not open", name.trim()));
                }
                stack.last_mut().expect("root").2.push(Node::Section { name: open_name, inverted, children });
            } else {
                if !name_ok(tag) {
                    return Err(format!("'{{{{{tag}}}}}' does not name a variable"));
                }
                stack.last_mut().expect("root").2.push(Node::Var { name: tag.to_string(), raw });
            }
        }
        if !rest.is_empty() {
            stack.last_mut().expect("root").2.push(Node::Text(rest.to_string()));
        }
        if stack.len() != 1 {
            return Err(format!("the section '{}' is not closed", stack.last().map(|s| s.0.as_str()).unwrap_or("")));
        }
        Ok(Template(stack.pop().expect("root").2))
    }

    /// Renders with `vars`; `html` escapes every `{{name}}`.
    pub fn render(&self, vars: &BTreeMap<String, String>, html: bool) -> String {
        let mut out = String::new();
        render_nodes(&self.0, vars, html, &mut out);
        out
    }
}

fn render_nodes(nodes: &[Node], vars: &BTreeMap<String, String>, html: bool, out: &mut String) {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Var { name, raw } => {
                let v = vars.get(name).map(String::as_str).unwrap_or_default();
                if html && !raw { out.push_str(&escape_html(v)) } else { out.push_str(v) }
            }
            Node::Section { name, inverted, children } => {
                let set = vars.get(name).is_some_and(|v| !v.is_empty());
                if set != *inverted {
                    render_nodes(children, vars, html, out);
                }
            }
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One mail's three parts.
#[derive(Debug, Clone, PartialEq)]
pub struct MailTemplate {
    pub subject: Template,
    pub text: Template,
    pub html: Template,
}

/// Every mail's templates.
#[derive(Debug, Clone)]
pub struct Templates(BTreeMap<String, MailTemplate>);

impl Templates {
    /// The templates built into Grantry (`crates/grantry-core/templates/mail/`).
    pub fn builtin() -> Templates {
        let mut all = BTreeMap::new();
        for (name, subject, text, html) in BUILTIN {
            let parse = |s: &str| Template::parse(s).unwrap_or_else(|e| panic!("built-in mail template {name}: {e}"));
            all.insert(
                name.to_string(),
                MailTemplate { subject: parse(subject), text: parse(text), html: parse(html) },
            );
        }
        Templates(all)
    }

    /// The built-in templates with those in `dir` in their place: files named
    /// `NAME.subject`, `NAME.txt` or `NAME.html` for a NAME of [`TEMPLATE_NAMES`]; any
    /// subset may be given. Anything else in the directory, or a template that does not
    /// parse, is an error naming the file.
    pub fn with_overrides(dir: &std::path::Path) -> std::result::Result<Templates, String> {
        let mut templates = Templates::builtin();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let file = entry.file_name().to_string_lossy().to_string();
            let known = file
                .rsplit_once('.')
                .filter(|(name, part)| TEMPLATE_NAMES.contains(name) && ["subject", "txt", "html"].contains(part));
            let Some((name, part)) = known else {
                return Err(format!(
                    "{}: not a mail template; name files NAME.subject, NAME.txt or NAME.html with NAME one of {}",
                    entry.path().display(),
                    TEMPLATE_NAMES.join(", ")
                ));
            };
            let source = std::fs::read_to_string(entry.path())
                .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
            let parsed = Template::parse(&source).map_err(|e| format!("{}: {e}", entry.path().display()))?;
            let t = templates.0.get_mut(name).expect("every name has a built-in template");
            match part {
                "subject" => t.subject = parsed,
                "txt" => t.text = parsed,
                _ => t.html = parsed,
            }
        }
        Ok(templates)
    }

    fn get(&self, name: &str) -> Result<&MailTemplate> {
        self.0.get(name).ok_or_else(|| Error::internal(format!("no mail template '{name}'")))
    }
}

// ---------------------------------------------------------------------------------------
// Writing mails
// ---------------------------------------------------------------------------------------

/// A notification for one person, before it is addressed.
pub struct Notice {
    /// What happened, unique per occurrence (e.g. `request:{id}:denied`); with the
    /// recipient it makes the mail's id, so a notification is written once.
    pub event: String,
    /// One of [`TEMPLATE_NAMES`].
    pub template: &'static str,
    /// The portal path the mail links to (e.g. `/approvals/{id}`).
    pub path: String,
    /// The template's variables.
    pub vars: Map<String, serde_json::Value>,
}

/// The id of the mail about `event` to `recipient`: a UUID-shaped SHA-256 of both.
pub fn mail_id(event: &str, recipient: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("mail\n{event}\n{recipient}").as_bytes());
    let x: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &x[0..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// Writes `notice` for user `user_id` in the transaction under way, unless the same
/// notification to the same user was written before. A user without a mail address gets
/// nothing: the mail is recorded as not sent (state `dead`, with why), so administrators
/// see who was skipped.
pub fn enqueue(c: &mut dyn Conn, now: DateTime<Utc>, user_id: &str, notice: Notice) -> Result<()> {
    let Some(user) = repo::get::<User>(c, user_id)? else { return Ok(()) };
    match message_for(now, &user, notice) {
        // The id is the event's and the recipient's: a mail written before is kept.
        Some(m) => repo::insert_new_later(c, &m),
        None => Ok(()),
    }
}

/// The outbox row of `notice` for `user` (none for a disabled account); its id is
/// [`mail_id`] of the event and the user. Callers writing many at once check which ids
/// exist already and insert the rest together.
pub fn message_for(now: DateTime<Utc>, user: &User, notice: Notice) -> Option<OutboxMessage> {
    if !user.account_enabled {
        return None;
    }
    let id = mail_id(&notice.event, &user.id);
    let address = user.mail.as_deref().map(str::trim).filter(|m| m.contains('@')).map(str::to_string);
    let payload = json!({
        "template": notice.template,
        "to": address,
        "toName": user.display_name,
        "recipientId": user.id,
        "event": notice.event,
        "path": notice.path,
        "vars": notice.vars,
    });
    let key = match &address {
        Some(a) => format!("mail:{}", a.to_ascii_lowercase()),
        None => format!("mail:user:{}", user.id),
    };
    let mut m = OutboxMessage::pending(
        id,
        OutboxKind::Mail,
        key,
        format!("mailto:{}", address.as_deref().unwrap_or_default()),
        SignedBy::Unsigned,
        payload,
        now,
    );
    if address.is_none() {
        m.state = OutboxState::Dead;
        m.finished_date_time = Some(now);
        m.last_error = Some(format!(
            "Not sent: the user '{}' ({}) has no mail address.",
            user.display_name, user.user_principal_name
        ));
        m.context = json!({ "skipped": true });
        tracing::info!(user = %user.id, event = %m.id, "notification skipped: the user has no mail address");
    }
    Some(m)
}

// ---------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------

/// What the sender does with a mail that is first in line for its recipient.
pub(crate) enum Plan {
    /// The recipient had [`HOURLY_LIMIT`] mails in the last hour: wait until then.
    Defer(DateTime<Utc>),
    /// Send it alone.
    Single,
    /// Send it with these other waiting mails as one digest.
    Digest(Vec<OutboxMessage>),
}

/// Decides, in the sender's claim, how `m` goes out, and counts the send against the
/// recipient's rate limit. `in_flight` tells the mails this process is sending already.
pub(crate) fn plan(
    c: &mut dyn Conn,
    m: &OutboxMessage,
    now: DateTime<Utc>,
    in_flight: &dyn Fn(&str) -> bool,
) -> Result<Plan> {
    let since = now - WINDOW;
    let sent = c.query(
        "SELECT sent_us FROM mail_sends WHERE recipient = ? AND sent_us > ? ORDER BY sent_us",
        &[Value::from(&m.ordering_key), Value::from(since)],
    )?;
    if sent.len() as i64 >= HOURLY_LIMIT {
        let oldest = sent[0].int(0)?;
        let free = DateTime::from_timestamp_micros(oldest).unwrap_or(now) + WINDOW;
        return Ok(Plan::Defer(free.max(now + Duration::seconds(1))));
    }
    let waiting: Vec<OutboxMessage> = repo::list::<OutboxMessage>(
        c,
        "ordering_key = ? AND state = 'pending' AND next_attempt_us <= ? AND id <> ? \
         AND (lease_until_us IS NULL OR lease_until_us <= ?)",
        &[Value::from(&m.ordering_key), Value::from(now), Value::from(&m.id), Value::from(now)],
        None,
        DIGEST_MAX - 1,
    )?
    .into_iter()
    .map(|(_, o)| o)
    .filter(|o| !in_flight(&o.id))
    .collect();
    c.execute(
        "INSERT INTO mail_sends (recipient, sent_us, message_id) VALUES (?, ?, ?)",
        &[Value::from(&m.ordering_key), Value::from(now), Value::from(&m.id)],
    )?;
    Ok(if waiting.len() + 1 >= DIGEST_AT { Plan::Digest(waiting) } else { Plan::Single })
}

fn payload_str<'a>(m: &'a OutboxMessage, key: &str) -> &'a str {
    m.payload.get(key).and_then(|v| v.as_str()).unwrap_or_default()
}

/// The variables of `m`: its own, with `recipientName` and `link`.
fn vars_of(settings: &MailSettings, m: &OutboxMessage) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    if let Some(serde_json::Value::Object(own)) = m.payload.get("vars") {
        for (k, v) in own {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null | serde_json::Value::Bool(false) => String::new(),
                serde_json::Value::Bool(true) => "yes".into(),
                other => other.to_string(),
            };
            vars.insert(k.clone(), s);
        }
    }
    vars.insert("recipientName".into(), payload_str(m, "toName").to_string());
    vars.insert("link".into(), format!("{}{}", settings.public_base_url, payload_str(m, "path")));
    vars
}

/// Renders `m` alone: its subject (one line), text and HTML.
pub fn render(settings: &MailSettings, m: &OutboxMessage) -> Result<(String, String, String)> {
    let t = settings.templates.get(payload_str(m, "template"))?;
    let vars = vars_of(settings, m);
    Ok((one_line(&t.subject.render(&vars, false)), t.text.render(&vars, false), t.html.render(&vars, true)))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The digest of `all` (the first is the one claimed).
fn render_digest(settings: &MailSettings, all: &[&OutboxMessage]) -> Result<(String, String, String)> {
    let mut text = String::new();
    let mut html = String::new();
    for m in all.iter().take(DIGEST_LISTED) {
        let (subject, _, _) = render(settings, m)?;
        let link = format!("{}{}", settings.public_base_url, payload_str(m, "path"));
        text.push_str(&format!("- {subject}\n  {link}\n"));
        html.push_str(&format!("<li><a href=\"{}\">{}</a></li>\n", escape_html(&link), escape_html(&subject)));
    }
    let mut vars = BTreeMap::new();
    vars.insert("recipientName".to_string(), payload_str(all[0], "toName").to_string());
    vars.insert("count".into(), all.len().to_string());
    vars.insert(
        "more".into(),
        if all.len() > DIGEST_LISTED { (all.len() - DIGEST_LISTED).to_string() } else { String::new() },
    );
    vars.insert("itemsText".into(), text);
    vars.insert("itemsHtml".into(), html);
    vars.insert("link".into(), format!("{}/access", settings.public_base_url));
    let t = settings.templates.get("digest")?;
    Ok((one_line(&t.subject.render(&vars, false)), t.text.render(&vars, false), t.html.render(&vars, true)))
}

/// Sends `m` (with `folded` as one digest, when there are any): renders it and hands it to
/// the mailer, or keeps it when there is none.
pub(crate) async fn send(app: &App, m: &OutboxMessage, folded: &[OutboxMessage]) -> Attempt {
    let settings = &app.mail;
    let rendered = if folded.is_empty() {
        render(settings, m)
    } else {
        let all: Vec<&OutboxMessage> = std::iter::once(m).chain(folded.iter()).collect();
        render_digest(settings, &all)
    };
    let (subject, text, html) = match rendered {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Refused { status: None, error: format!("the mail cannot be rendered: {}", e.message) };
        }
    };
    let Some(mailer) = &settings.mailer else {
        return Attempt::Delivered { status: 0, body: Some(json!({ "transport": "kept" })) };
    };
    let to = payload_str(m, "to").to_string();
    let to_name = Some(payload_str(m, "toName").to_string()).filter(|n| !n.is_empty());
    let id = if folded.is_empty() { m.id.clone() } else { format!("digest-{}", m.id) };
    mailer.send(OutgoingMail { id, from: settings.from.clone(), to, to_name, subject, text, html }).await
}

/// Notes on a mail, in the write that records an attempt, how it went: the transport
/// (`smtp` or `kept`) and the digest it went out in.
pub(crate) fn note_outcome(m: &mut OutboxMessage, attempt: &Attempt, digest: Option<&str>) {
    let mut context = match std::mem::take(&mut m.context) {
        serde_json::Value::Object(o) => o,
        _ => Map::new(),
    };
    if let Attempt::Delivered { body: Some(body), .. } = attempt
        && let Some(t) = body.get("transport")
    {
        context.insert("transport".into(), t.clone());
    }
    if let Some(d) = digest {
        context.insert("digestId".into(), json!(d));
    }
    m.context = serde_json::Value::Object(context);
}

/// Forgets rate-limit records older than a day.
pub(crate) fn clean_up(c: &mut dyn Conn, now: DateTime<Utc>) -> Result<()> {
    c.execute("DELETE FROM mail_sends WHERE sent_us < ?", &[Value::from(now - Duration::days(1))])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading (administrators)
// ---------------------------------------------------------------------------------------

/// A mail as administrators see it.
#[derive(Debug, Clone)]
pub struct MailView {
    pub message: OutboxMessage,
    /// `pending`, `sent` (accepted by the SMTP server), `kept` (no SMTP server is
    /// configured), `skipped` (no mail address) or `failed`.
    pub status: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn status_of(m: &OutboxMessage) -> &'static str {
    let context = |k: &str| m.context.get(k);
    match m.state {
        OutboxState::Pending => "pending",
        OutboxState::Delivered if context("transport").and_then(|t| t.as_str()) == Some("kept") => "kept",
        OutboxState::Delivered => "sent",
        OutboxState::Dead if context("skipped").is_some() => "skipped",
        OutboxState::Dead => "failed",
    }
}

fn require_admin(caller: &Caller) -> Result<()> {
    caller.require(perms::EM_READ)?;
    if caller.is_app() || caller.is_em_admin() {
        Ok(())
    } else {
        Err(Error::forbidden(
            "Notification mails are for administrators: an application with EntitlementManagement permissions, or an Identity Governance Administrator or Global Administrator.",
        ))
    }
}

/// The newest mails (at most `top`, up to 1000), optionally only those to `to`.
pub async fn list(app: &App, caller: &Caller, to: Option<String>, top: usize) -> Result<Vec<MailView>> {
    require_admin(caller)?;
    let top = top.clamp(1, 1000);
    let messages: Vec<OutboxMessage> = app
        .store
        .read(move |c| {
            let (sql, params) = match &to {
                Some(to) => (
                    format!(
                        "SELECT body FROM outbox WHERE kind = 'mail' AND ordering_key = ? ORDER BY seq DESC LIMIT {top}"
                    ),
                    vec![Value::from(format!("mail:{}", to.trim().to_ascii_lowercase()))],
                ),
                None => (format!("SELECT body FROM outbox WHERE kind = 'mail' ORDER BY seq DESC LIMIT {top}"), vec![]),
            };
            c.query(&sql, &params)?.iter().map(|r| repo::from_body(&r.text(0)?)).collect()
        })
        .await?;
    Ok(messages.into_iter().map(|m| view(&app.mail, m)).collect())
}

/// One mail, rendered.
pub async fn get(app: &App, caller: &Caller, id: &str) -> Result<MailView> {
    require_admin(caller)?;
    let key = grantry_domain::ids::normalize(id);
    let shown = id.to_string();
    let m = app
        .store
        .read(move |c| {
            repo::get::<OutboxMessage>(c, &key)?
                .filter(|m| m.kind == OutboxKind::Mail)
                .ok_or_else(|| Error::not_found("mail", &shown))
        })
        .await?;
    Ok(view(&app.mail, m))
}

fn view(settings: &MailSettings, m: OutboxMessage) -> MailView {
    let (subject, text, html) =
        render(settings, &m).unwrap_or_else(|e| (format!("({})", e.message), String::new(), String::new()));
    MailView { status: status_of(&m), message: m, subject, text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn templates_substitute_escape_and_branch() {
        let t = Template::parse("Hi {{name}}{{#due}}, by {{due}}{{/due}}{{^due}}, no rush{{/due}}. {{{raw}}}").unwrap();
        let v = vars(&[("name", "<b>Ann & \"Bo\"</b>"), ("due", "Friday"), ("raw", "<i>x</i>")]);
        assert_eq!(t.render(&v, false), "Hi <b>Ann & \"Bo\"</b>, by Friday. <i>x</i>");
        assert_eq!(t.render(&v, true), "Hi &lt;b&gt;Ann &amp; &quot;Bo&quot;&lt;/b&gt;, by Friday. <i>x</i>");
        assert_eq!(t.render(&vars(&[("name", "Ann")]), true), "Hi Ann, no rush. ");
    }

    #[test]
    fn broken_templates_are_refused_with_a_reason() {
        for (source, why) in [
            ("{{name", "not closed"),
            ("{{#a}}x", "not closed"),
            ("{{#a}}x{{/b}}", "not open"),
            ("{{/a}}", "not open"),
            ("{{a b}}", "does not name"),
        ] {
            let e = Template::parse(source).unwrap_err();
            assert!(e.contains(why), "{source}: {e}");
        }
    }

    #[test]
    fn every_builtin_template_parses_and_ids_are_stable() {
        let t = Templates::builtin();
        for name in TEMPLATE_NAMES {
            assert!(t.get(name).is_ok(), "{name}");
        }
        assert_eq!(mail_id("request:1:denied", "u1"), mail_id("request:1:denied", "u1"));
        assert_ne!(mail_id("request:1:denied", "u1"), mail_id("request:1:denied", "u2"));
    }

    #[test]
    fn overrides_replace_parts_and_refuse_strangers() {
        let dir = std::env::temp_dir().join(format!("grantry-mail-templates-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("requestDenied.subject"), "No to {{packageName}}").unwrap();
        let t = Templates::with_overrides(&dir).unwrap();
        let v = vars(&[("packageName", "Sales")]);
        assert_eq!(t.get("requestDenied").unwrap().subject.render(&v, false), "No to Sales");
        assert_eq!(t.get("requestDenied").unwrap().text, Templates::builtin().get("requestDenied").unwrap().text);
        std::fs::write(dir.join("nonsense.txt"), "x").unwrap();
        assert!(Templates::with_overrides(&dir).unwrap_err().contains("not a mail template"));
        std::fs::remove_file(dir.join("nonsense.txt")).unwrap();
        std::fs::write(dir.join("digest.html"), "{{#count}}").unwrap();
        assert!(Templates::with_overrides(&dir).unwrap_err().contains("digest.html"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
