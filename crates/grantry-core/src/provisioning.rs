//! Provisioning out over SCIM 2.0: the users who hold an application's app roles are pushed
//! to the application's own SCIM service provider, as Entra's provisioning service does.
//!
//! A service principal may have one provisioning target (`provisioning_targets`): the
//! target's SCIM base URL, the bearer token it accepts (kept as given, since every push
//! presents it; never rendered, logged or copied into a message), how app roles reach the
//! target (`groups`: one group per app role, the user a member; `roles`: the user's `roles`
//! attribute) and the attribute mappings from user properties to SCIM attributes.
//!
//! Each change is one [`OutboxKind::Scim`] message, written by [`on_grant`] and
//! [`on_revoke`] in the transaction that grants or revokes the app role (delivery, removal,
//! expiry, review denial, deprovisioning), ordered per target and user. The sender runs a
//! short conversation per message ([`send`]): it looks the user up on the target by
//! `externalId`, then by `userName`, creates or replaces the user, then adds or removes the
//! membership (or sets the roles), and deactivates the user (`active: false`) when the user
//! holds nothing else of the application. Every step is idempotent, so a message sent again
//! after a crash has its effect once. Failures are retried on the outbox's schedule; what
//! failed for good is listed with the target's answer by [`get_for`] and put back in line by
//! [`retry_for`].

use crate::App;
use crate::audit::AuditEvent;
use crate::auth::{Caller, perms};
use crate::outbox::{Attempt, OutboundRequest, Transport};
use chrono::{DateTime, Utc};
use grantry_domain::enums::{AssignmentState, RequestState, RequestStatus};
use grantry_domain::model::{
    Assignment, AssignmentRequest, AssignmentResourceRole, OutboxKind, OutboxMessage, OutboxState, SignedBy, User,
    role_status,
};
use grantry_domain::{Error, Result, ids};
use grantry_store::{Conn, Value, repo};
use serde_json::{Map, Value as Json, json};

/// The SCIM core user and group schemas, the enterprise extension, the PATCH message.
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// How long one push (the whole conversation with the target) may take.
const PUSH_TIMEOUT_MS: u32 = 30_000;
/// The longest base URL and bearer token accepted.
const MAX_URL: usize = 2048;
const MAX_TOKEN: usize = 8192;

/// How app roles reach the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleDelivery {
    /// One group per app role (named by the role's value, else its display name).
    Groups,
    /// The user's multi-valued `roles` attribute.
    Roles,
}

impl RoleDelivery {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleDelivery::Groups => "groups",
            RoleDelivery::Roles => "roles",
        }
    }
    fn parse(s: &str) -> Result<RoleDelivery> {
        match s.to_ascii_lowercase().as_str() {
            "groups" | "group" => Ok(RoleDelivery::Groups),
            "roles" | "role" => Ok(RoleDelivery::Roles),
            _ => Err(Error::invalid_property(
                "roleDelivery",
                format!("'{s}' is not a role delivery; use groups or roles."),
            )),
        }
    }
}

/// The SCIM attributes Grantry can fill, and from which user property by default.
pub const DEFAULT_MAPPINGS: &[(&str, &str)] = &[
    ("userName", "userPrincipalName"),
    ("externalId", "id"),
    ("displayName", "displayName"),
    ("name.givenName", "givenName"),
    ("name.familyName", "surname"),
    ("emails[type eq \"work\"].value", "mail"),
    ("title", "jobTitle"),
    ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "department"),
];

/// Further SCIM attributes a mapping may name.
const OPTIONAL_ATTRIBUTES: &[&str] = &[
    "nickName",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "name.formatted",
    "name.middleName",
    "phoneNumbers[type eq \"work\"].value",
    "phoneNumbers[type eq \"mobile\"].value",
    "addresses[type eq \"work\"].locality",
    "addresses[type eq \"work\"].region",
    "addresses[type eq \"work\"].postalCode",
    "addresses[type eq \"work\"].country",
    "addresses[type eq \"work\"].streetAddress",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
];

/// The user properties a mapping may read.
const SOURCES: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "mail",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "mailNickname",
    "userType",
    "companyName",
    "country",
    "city",
    "state",
    "streetAddress",
    "postalCode",
    "officeLocation",
    "employeeId",
    "employeeType",
    "mobilePhone",
    "usageLocation",
    "preferredLanguage",
];

/// A provisioning target as administrators see it (never with its token).
#[derive(Debug, Clone)]
pub struct Target {
    pub service_principal_id: String,
    pub base_address: String,
    pub role_delivery: RoleDelivery,
    /// SCIM attribute path → user property, in a stable order.
    pub mappings: Vec<(String, String)>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// Changes to attribute mappings: SCIM attribute path → user property, or `None` to leave
/// the attribute out.
pub type MappingChanges = Vec<(String, Option<String>)>;

/// What an administrator sends to configure a target. `secret_token` may be left out when
/// changing a target, to keep the token it has.
#[derive(Debug, Clone, Default)]
pub struct TargetInput {
    pub base_address: Option<String>,
    pub secret_token: Option<String>,
    pub role_delivery: Option<String>,
    /// SCIM attribute path → user property, or `None` to leave the attribute out; applied
    /// over the defaults.
    pub attribute_mappings: Option<MappingChanges>,
}

/// One push that has not (yet) worked, for administrators.
#[derive(Debug, Clone)]
pub struct Failure {
    pub message: OutboxMessage,
}

/// A target with its pending pushes and failures.
#[derive(Debug, Clone)]
pub struct Status {
    pub target: Target,
    pub pending: i64,
    pub delivered: i64,
    /// Dead-lettered pushes and pending ones that failed at least once, newest first.
    pub failures: Vec<OutboxMessage>,
}

fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

const COLUMNS: &str = "sp_id, base_url, role_delivery, mappings, created_us, updated_us";

fn target_from_row(r: &grantry_store::Row) -> Result<Target> {
    let mappings: Vec<(String, String)> = serde_json::from_str(&r.text(3)?)
        .map_err(|e| Error::internal(format!("stored attribute mappings are unreadable: {e}")))?;
    Ok(Target {
        service_principal_id: r.text(0)?,
        base_address: r.text(1)?,
        role_delivery: RoleDelivery::parse(&r.text(2)?)?,
        mappings,
        created: time(r.int(4)?),
        updated: time(r.int(5)?),
    })
}

/// The target of the service principal `sp_id`, if it has one.
pub fn target_of(c: &mut dyn Conn, sp_id: &str) -> Result<Option<Target>> {
    c.query_one(&format!("SELECT {COLUMNS} FROM provisioning_targets WHERE sp_id = ?"), &[Value::from(sp_id)])?
        .map(|r| target_from_row(&r))
        .transpose()
}

fn token_of(c: &mut dyn Conn, sp_id: &str) -> Result<Option<String>> {
    c.query_one("SELECT secret_token FROM provisioning_targets WHERE sp_id = ?", &[Value::from(sp_id)])?
        .map(|r| r.text(0))
        .transpose()
}

/// Checks a base URL: http(s), a host, no credentials, no query or fragment. The trailing
/// slash is dropped.
fn check_base_address(url: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid_property("baseAddress", format!("The base address '{url}' {why}."));
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::invalid_property(
            "baseAddress",
            "'baseAddress' is required: the target's SCIM base URL, e.g. https://app.example.com/scim/v2.",
        ));
    }
    if url.len() > MAX_URL {
        return Err(bad(&format!("is longer than {MAX_URL} characters")));
    }
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        r
    } else {
        return Err(bad("is not an http or https URL"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    if authority.contains('@') {
        return Err(bad("carries credentials; give the token as 'secretToken'"));
    }
    if url.contains('?') || url.contains('#') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not have a query, a fragment or spaces"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn check_token(token: &str) -> Result<String> {
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_property(
            "secretToken",
            format!(
                "'secretToken' must be the bearer token the target accepts: 1 to {MAX_TOKEN} characters without spaces."
            ),
        ));
    }
    Ok(token.to_string())
}

/// The defaults with `changes` applied; refuses unknown attributes and properties.
fn merge_mappings(base: &[(String, String)], changes: &[(String, Option<String>)]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = base.to_vec();
    for (attr, source) in changes {
        let known = DEFAULT_MAPPINGS
            .iter()
            .map(|(a, _)| *a)
            .chain(OPTIONAL_ATTRIBUTES.iter().copied())
            .find(|a| a.eq_ignore_ascii_case(attr.trim()))
            .ok_or_else(|| {
                Error::invalid_property(
                    "attributeMappings",
                    format!(
                        "'{attr}' is not a SCIM attribute Grantry maps; use any of: {}.",
                        DEFAULT_MAPPINGS
                            .iter()
                            .map(|(a, _)| *a)
                            .chain(OPTIONAL_ATTRIBUTES.iter().copied())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        out.retain(|(a, _)| a != known);
        if let Some(source) = source {
            let property = SOURCES.iter().find(|s| s.eq_ignore_ascii_case(source.trim())).ok_or_else(|| {
                Error::invalid_property(
                    "attributeMappings",
                    format!("'{source}' is not a user property; use any of: {}.", SOURCES.join(", ")),
                )
            })?;
            out.push((known.to_string(), property.to_string()));
        }
    }
    for required in ["userName", "externalId"] {
        if !out.iter().any(|(a, _)| a == required) {
            return Err(Error::invalid_property(
                "attributeMappings",
                format!("'{required}' must be mapped: Grantry finds the user on the target by it."),
            ));
        }
    }
    Ok(out)
}

fn default_mappings() -> Vec<(String, String)> {
    DEFAULT_MAPPINGS.iter().map(|(a, s)| (a.to_string(), s.to_string())).collect()
}

fn require_admin(caller: &Caller) -> Result<()> {
    caller.require(perms::APPLICATION_WRITE)?;
    if caller.is_app() || caller.has_directory_role(grantry_domain::model::directory_roles::GLOBAL_ADMINISTRATOR) {
        Ok(())
    } else {
        Err(Error::forbidden("Configuring provisioning needs the Global Administrator role."))
    }
}

fn require_reader(caller: &Caller) -> Result<()> {
    caller.require(perms::APPLICATION_READ)?;
    if caller.is_app()
        || caller.has_directory_role(grantry_domain::model::directory_roles::GLOBAL_ADMINISTRATOR)
        || caller.is_em_admin()
    {
        Ok(())
    } else {
        Err(Error::forbidden("Provisioning targets are for administrators."))
    }
}

fn service_principal(c: &mut dyn Conn, key: &str) -> Result<crate::applications::Application> {
    crate::applications::find_by_id(c, key)?.ok_or_else(|| Error::not_found("servicePrincipal", key))
}

/// `PUT /_grantry/provisioning/{servicePrincipalId}`: creates or changes the target of a
/// service principal. Returns the target and whether it was created.
pub async fn configure_for(app: &App, caller: &Caller, key: &str, input: TargetInput) -> Result<(Target, bool)> {
    require_admin(caller)?;
    let base = input.base_address.as_deref().map(check_base_address).transpose()?;
    let token = input.secret_token.as_deref().map(check_token).transpose()?;
    let delivery = input.role_delivery.as_deref().map(RoleDelivery::parse).transpose()?;
    let actor = caller.id().to_string();
    let now = app.now();
    let key = ids::normalize(key);
    let written = app
        .store
        .write(move |c| {
            let sp = service_principal(c, &key)?;
            let existing = target_of(c, &sp.sp_id)?;
            let mappings = merge_mappings(
                &existing.as_ref().map(|t| t.mappings.clone()).unwrap_or_else(default_mappings),
                input.attribute_mappings.as_deref().unwrap_or_default(),
            )?;
            let mappings_json = serde_json::to_string(&mappings).map_err(|e| Error::internal(e.to_string()))?;
            match existing {
                None => {
                    let base = base.clone().ok_or_else(|| {
                        Error::invalid_property("baseAddress", "'baseAddress' is required: the target's SCIM base URL.")
                    })?;
                    let token = token.clone().ok_or_else(|| {
                        Error::invalid_property("secretToken", "'secretToken' is required: the bearer token the target accepts.")
                    })?;
                    c.execute(
                        "INSERT INTO provisioning_targets (sp_id, base_url, secret_token, role_delivery, mappings, created_us, updated_us) \
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
                        &[
                            Value::from(&sp.sp_id),
                            Value::from(&base),
                            Value::from(&token),
                            Value::from(delivery.unwrap_or(RoleDelivery::Groups).as_str()),
                            Value::from(&mappings_json),
                            Value::from(now),
                            Value::from(now),
                        ],
                    )?;
                    // The users who already hold the application's roles are pushed now, as
                    // Entra's first provisioning cycle does.
                    let holders: Vec<(String, String)> = c
                        .query(
                            "SELECT principal_id, app_role_id FROM app_role_assignments WHERE resource_id = ? ORDER BY seq",
                            &[Value::from(&sp.sp_id)],
                        )?
                        .iter()
                        .map(|r| Ok((r.text(0)?, r.text(1)?)))
                        .collect::<Result<_>>()?;
                    for (user_id, role_id) in holders {
                        on_grant(c, now, &sp.sp_id, &role_id, &user_id)?;
                    }
                }
                Some(t) => {
                    c.execute(
                        "UPDATE provisioning_targets SET base_url = ?, role_delivery = ?, mappings = ?, updated_us = ? WHERE sp_id = ?",
                        &[
                            Value::from(base.as_deref().unwrap_or(&t.base_address)),
                            Value::from(delivery.unwrap_or(t.role_delivery).as_str()),
                            Value::from(&mappings_json),
                            Value::from(now),
                            Value::from(&sp.sp_id),
                        ],
                    )?;
                    if let Some(token) = &token {
                        c.execute(
                            "UPDATE provisioning_targets SET secret_token = ? WHERE sp_id = ?",
                            &[Value::from(token), Value::from(&sp.sp_id)],
                        )?;
                    }
                }
            }
            crate::audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor),
                    entity_type: "provisioningTarget",
                    entity_id: &sp.sp_id,
                    action: "configured",
                    detail: json!({ "baseAddress": base, "tokenChanged": token.is_some() }),
                },
            )?;
            let created = target_of(c, &sp.sp_id)?.ok_or_else(|| Error::internal("the target just written is missing"))?;
            Ok((created.clone(), created.created == created.updated))
        })
        .await?;
    app.outbox_signal.notify_one();
    Ok(written)
}

/// `DELETE /_grantry/provisioning/{servicePrincipalId}`: stops provisioning to the target;
/// pushes not yet sent are dropped.
pub async fn remove_for(app: &App, caller: &Caller, key: &str) -> Result<()> {
    require_admin(caller)?;
    let actor = caller.id().to_string();
    let now = app.now();
    let key = ids::normalize(key);
    app.store
        .write(move |c| {
            let sp = service_principal(c, &key)?;
            let removed = c.execute("DELETE FROM provisioning_targets WHERE sp_id = ?", &[Value::from(&sp.sp_id)])?;
            if removed == 0 {
                return Err(Error::not_found("provisioning target", &key));
            }
            remove_pending(c, &sp.sp_id)?;
            crate::audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor),
                    entity_type: "provisioningTarget",
                    entity_id: &sp.sp_id,
                    action: "removed",
                    detail: json!({}),
                },
            )
        })
        .await
}

/// Drops the pushes of `sp_id` not yet sent (the target or its application is gone).
pub fn remove_pending(c: &mut dyn Conn, sp_id: &str) -> Result<()> {
    c.execute(
        "DELETE FROM outbox WHERE kind = 'scim' AND state = 'pending' AND ordering_key LIKE ? ESCAPE '\\'",
        &[Value::from(format!("{}%", key_prefix(sp_id).replace('%', "\\%").replace('_', "\\_")))],
    )?;
    Ok(())
}

/// The application's target was deleted with it.
pub fn forget(c: &mut dyn Conn, sp_id: &str) -> Result<()> {
    c.execute("DELETE FROM provisioning_targets WHERE sp_id = ?", &[Value::from(sp_id)])?;
    remove_pending(c, sp_id)
}

fn key_prefix(sp_id: &str) -> String {
    format!("scim:{sp_id}:")
}

/// Most failures listed for a target.
const FAILURES_SHOWN: usize = 100;

fn status_of(c: &mut dyn Conn, target: Target) -> Result<Status> {
    let like = Value::from(format!("{}%", key_prefix(&target.service_principal_id).replace('_', "\\_")));
    let count = |c: &mut dyn Conn, state: &str| -> Result<i64> {
        c.query_one(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'scim' AND state = ? AND ordering_key LIKE ? ESCAPE '\\'",
            &[Value::from(state), like.clone()],
        )?
        .map(|r| r.int(0))
        .transpose()
        .map(Option::unwrap_or_default)
    };
    let pending = count(c, "pending")?;
    let delivered = count(c, "delivered")?;
    let failures = c
        .query(
            &format!(
                "SELECT body FROM outbox WHERE kind = 'scim' AND ordering_key LIKE ? ESCAPE '\\' \
                 AND (state = 'dead' OR (state = 'pending' AND json_extract(body, '$.attempts') <> '0')) \
                 ORDER BY seq DESC LIMIT {FAILURES_SHOWN}"
            ),
            &[like],
        )?
        .iter()
        .map(|r| repo::from_body(&r.text(0)?))
        .collect::<Result<Vec<OutboxMessage>>>()?;
    Ok(Status { target, pending, delivered, failures })
}

/// `GET /_grantry/provisioning/{servicePrincipalId}`: the target, how many pushes wait, and
/// those that failed with the target's answer.
pub async fn get_for(app: &App, caller: &Caller, key: &str) -> Result<Status> {
    require_reader(caller)?;
    let key = ids::normalize(key);
    app.store
        .read(move |c| {
            let sp = service_principal(c, &key)?;
            let target = target_of(c, &sp.sp_id)?.ok_or_else(|| Error::not_found("provisioning target", &key))?;
            status_of(c, target)
        })
        .await
}

/// `GET /_grantry/provisioning`: every target with its counts and failures.
pub async fn list_for(app: &App, caller: &Caller) -> Result<Vec<Status>> {
    require_reader(caller)?;
    app.store
        .read(|c| {
            let targets = c
                .query(&format!("SELECT {COLUMNS} FROM provisioning_targets ORDER BY seq"), &[])?
                .iter()
                .map(target_from_row)
                .collect::<Result<Vec<_>>>()?;
            targets.into_iter().map(|t| status_of(c, t)).collect()
        })
        .await
}

/// `POST /_grantry/provisioning/{servicePrincipalId}/retry`: puts the target's failed pushes
/// back in line, due now, oldest first. Returns how many.
pub async fn retry_for(app: &App, caller: &Caller, key: &str) -> Result<usize> {
    require_admin(caller)?;
    let now = app.now();
    let key = ids::normalize(key);
    let n = app
        .store
        .write(move |c| {
            let sp = service_principal(c, &key)?;
            target_of(c, &sp.sp_id)?.ok_or_else(|| Error::not_found("provisioning target", &key))?;
            let like = Value::from(format!("{}%", key_prefix(&sp.sp_id).replace('_', "\\_")));
            let dead: Vec<String> = c
                .query(
                    "SELECT id FROM outbox WHERE kind = 'scim' AND state = 'dead' AND ordering_key LIKE ? ESCAPE '\\' ORDER BY seq",
                    std::slice::from_ref(&like),
                )?
                .iter()
                .map(|r| r.text(0))
                .collect::<Result<_>>()?;
            for id in &dead {
                crate::outbox::replay(c, id, now)?;
            }
            // Those waiting for their next attempt go now too.
            let waiting: Vec<OutboxMessage> = repo::find_all(
                c,
                "kind = 'scim' AND state = 'pending' AND next_attempt_us > ? AND ordering_key LIKE ? ESCAPE '\\'",
                &[Value::from(now), like],
            )?;
            let n = dead.len() + waiting.len();
            for mut m in waiting.into_iter().filter(|m| m.lease_until.is_none_or(|l| l <= now)) {
                m.next_attempt_date_time = now;
                repo::update(c, &m)?;
            }
            Ok(n)
        })
        .await?;
    app.outbox_signal.notify_one();
    Ok(n)
}

/// Grant, revoke, or a change of the user's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Grant,
    Revoke,
    Update,
}

/// The app role `app_role_id` of `sp_id` was granted to `user_id` (the user did not hold
/// it): writes the push, when the service principal has a target.
pub fn on_grant(c: &mut dyn Conn, now: DateTime<Utc>, sp_id: &str, app_role_id: &str, user_id: &str) -> Result<()> {
    enqueue(c, now, sp_id, app_role_id, user_id, Change::Grant)
}

/// The user no longer holds the app role.
pub fn on_revoke(c: &mut dyn Conn, now: DateTime<Utc>, sp_id: &str, app_role_id: &str, user_id: &str) -> Result<()> {
    enqueue(c, now, sp_id, app_role_id, user_id, Change::Revoke)
}

/// A user's attributes changed (Graph `PATCH /users/{id}`, a SCIM PUT or PATCH): every
/// provisioning target of an application whose app roles the user holds is sent the user
/// again (a `PUT` of the mapped attributes), when what it would receive differs, in the write
/// that changed the user and in line behind the user's earlier pushes to that target.
pub fn user_changed(c: &mut dyn Conn, now: DateTime<Utc>, before: &User, after: &User) -> Result<()> {
    let targets: Vec<String> = c
        .query(
            "SELECT DISTINCT a.resource_id FROM app_role_assignments a JOIN provisioning_targets t ON t.sp_id = a.resource_id \
             WHERE a.principal_id = ? AND a.granted > 0 ORDER BY a.resource_id",
            &[Value::from(&after.id)],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<_>>()?;
    for sp_id in targets {
        let Some(target) = target_of(c, &sp_id)? else { continue };
        let changed = before.account_enabled != after.account_enabled
            || scim_user(before, &target.mappings, true) != scim_user(after, &target.mappings, true);
        if changed {
            enqueue(c, now, &sp_id, "", &after.id, Change::Update)?;
        }
    }
    Ok(())
}

/// The SCIM user that `mappings` make of `user`.
pub fn scim_user(user: &User, mappings: &[(String, String)], active: bool) -> Json {
    let source = serde_json::to_value(user).unwrap_or(Json::Null);
    let mut out = Map::new();
    let mut schemas = vec![Json::from(USER_SCHEMA)];
    for (attr, property) in mappings {
        let value = match source.get(property) {
            Some(Json::String(s)) if !s.is_empty() => Json::String(s.clone()),
            Some(Json::Number(n)) => Json::String(n.to_string()),
            Some(Json::Bool(b)) => Json::String(b.to_string()),
            _ => continue,
        };
        if let Some(name) = attr.strip_prefix(&format!("{ENTERPRISE}:")) {
            if !schemas.iter().any(|s| s == ENTERPRISE) {
                schemas.push(Json::from(ENTERPRISE));
            }
            let ext = out.entry(ENTERPRISE).or_insert_with(|| json!({}));
            ext[name] = value;
        } else if let Some((multi, rest)) = attr.split_once("[type eq \"") {
            // emails[type eq "work"].value → emails: [{type: work, value, primary}]
            let Some((kind, sub)) = rest.split_once("\"].") else { continue };
            let list = out.entry(multi).or_insert_with(|| json!([]));
            let Json::Array(items) = list else { continue };
            let idx = match items.iter().position(|i| i["type"] == kind) {
                Some(i) => i,
                None => {
                    items.push(json!({ "type": kind, "primary": items.is_empty() }));
                    items.len() - 1
                }
            };
            items[idx][sub] = value;
        } else if let Some((parent, sub)) = attr.split_once('.') {
            let obj = out.entry(parent).or_insert_with(|| json!({}));
            obj[sub] = value;
        } else {
            out.insert(attr.clone(), value);
        }
    }
    out.insert("schemas".into(), Json::Array(schemas));
    out.insert("active".into(), Json::Bool(active));
    Json::Object(out)
}

fn enqueue(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    sp_id: &str,
    app_role_id: &str,
    user_id: &str,
    change: Change,
) -> Result<()> {
    let Some(target) = target_of(c, sp_id)? else { return Ok(()) };
    let Some(user) = repo::get::<User>(c, user_id)? else { return Ok(()) };
    let Some(application) = crate::applications::find_by_id(c, sp_id)? else { return Ok(()) };
    let role_json = |id: &str| -> Option<Json> {
        application.app_roles.iter().find(|r| r.id == id).map(|r| {
            json!({ "id": r.id, "value": r.value.clone().unwrap_or_else(|| r.display_name.clone()), "displayName": r.display_name })
        })
    };
    // What the user holds of the application after this change.
    let held: Vec<String> = c
        .query(
            "SELECT app_role_id FROM app_role_assignments WHERE principal_id = ? AND resource_id = ? AND granted > 0 ORDER BY seq",
            &[Value::from(user_id), Value::from(sp_id)],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<_>>()?;
    if change == Change::Update && held.is_empty() {
        // Nothing of the application is held: the target has the user inactive, if at all.
        return Ok(());
    }
    // A disabled account is deactivated on the target, as Entra's provisioning does.
    let active = !held.is_empty() && user.account_enabled;
    let roles: Vec<Json> = held.iter().filter_map(|id| role_json(id)).collect();
    let match_on = |attr: &str| {
        target
            .mappings
            .iter()
            .find(|(a, _)| a == attr)
            .and_then(|(_, p)| serde_json::to_value(&user).ok()?.get(p)?.as_str().map(str::to_string))
    };
    let payload = json!({
        "servicePrincipalId": sp_id,
        "userId": user.id,
        "userPrincipalName": user.user_principal_name,
        "change": match change { Change::Grant => "grant", Change::Revoke => "revoke", Change::Update => "update" },
        "role": role_json(app_role_id),
        "roleDelivery": target.role_delivery.as_str(),
        "roles": roles,
        "active": active,
        "externalId": match_on("externalId"),
        "userName": match_on("userName"),
        "user": scim_user(&user, &target.mappings, active),
    });
    let message = OutboxMessage::pending(
        ids::new_id(),
        OutboxKind::Scim,
        format!("{}{}", key_prefix(sp_id), user.id),
        target.base_address.clone(),
        SignedBy::ProvisioningTarget(sp_id.to_string()),
        payload,
        now,
    );
    let mut message = message;
    message.timeout_ms = PUSH_TIMEOUT_MS;
    crate::outbox::enqueue(c, &message)
}

/// Percent-encodes a query parameter's value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A SCIM filter's string literal.
fn literal(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One conversation with a target: the calls share the push's deadline.
struct Conversation<'a> {
    transport: &'a dyn Transport,
    base: String,
    token: String,
    deadline: tokio::time::Instant,
}

/// Why a conversation stopped: the attempt to record.
type Step<T> = std::result::Result<T, Attempt>;

impl Conversation<'_> {
    async fn call(&self, method: &'static str, path: &str, body: Option<&Json>) -> Step<Option<Json>> {
        let left = self.deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(Attempt::Retry { status: None, error: "the push ran out of time".into(), retry_after: None });
        }
        let mut headers = vec![
            ("accept".to_string(), "application/scim+json, application/json".to_string()),
            ("authorization".to_string(), format!("Bearer {}", self.token)),
            ("user-agent".to_string(), concat!("Grantry/", env!("CARGO_PKG_VERSION")).to_string()),
        ];
        let body = match body {
            Some(b) => {
                headers.push(("content-type".into(), "application/scim+json".into()));
                serde_json::to_vec(b).unwrap_or_default()
            }
            None => Vec::new(),
        };
        let request = OutboundRequest { method, url: format!("{}{path}", self.base), headers, body, timeout: left };
        match self.transport.send(request).await {
            Attempt::Delivered { body, .. } => Ok(body),
            Attempt::Retry { status, error, retry_after } => {
                Err(Attempt::Retry { status, error: format!("{method} {}: {error}", strip_query(path)), retry_after })
            }
            Attempt::Refused { status, error } => {
                Err(Attempt::Refused { status, error: format!("{method} {}: {error}", strip_query(path)) })
            }
        }
    }

    /// The id of the first resource of `endpoint` matching `filter`.
    async fn find(&self, endpoint: &str, filter: &str) -> Step<Option<String>> {
        let found = self.call("GET", &format!("/{endpoint}?filter={}&attributes=id", encode(filter)), None).await?;
        Ok(found
            .as_ref()
            .and_then(|b| b.get("Resources"))
            .and_then(Json::as_array)
            .and_then(|r| r.first())
            .and_then(|r| r.get("id"))
            .and_then(Json::as_str)
            .map(str::to_string))
    }

    async fn find_user(&self, p: &Json) -> Step<Option<String>> {
        if let Some(ext) = p["externalId"].as_str()
            && let Some(id) = self.find("Users", &format!("externalId eq {}", literal(ext))).await?
        {
            return Ok(Some(id));
        }
        if let Some(name) = p["userName"].as_str() {
            return self.find("Users", &format!("userName eq {}", literal(name))).await;
        }
        Ok(None)
    }

    /// Creates the user or replaces the one found; returns its id on the target.
    async fn upsert_user(&self, found: Option<String>, user: &Json) -> Step<String> {
        match found {
            Some(id) => {
                self.call("PUT", &format!("/Users/{}", encode(&id)), Some(user)).await?;
                Ok(id)
            }
            None => {
                let created = self.call("POST", "/Users", Some(user)).await?;
                created.as_ref().and_then(|b| b["id"].as_str()).map(str::to_string).ok_or_else(|| Attempt::Retry {
                    status: None,
                    error: "POST /Users: the target's answer carries no id".into(),
                    retry_after: None,
                })
            }
        }
    }

    async fn patch(&self, path: &str, operations: Json) -> Step<()> {
        self.call("PATCH", path, Some(&json!({ "schemas": [PATCH_SCHEMA], "Operations": operations })))
            .await
            .map(|_| ())
    }
}

fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// Runs one push: the conversation with the target that `m` describes.
pub async fn send(app: &App, transport: &dyn Transport, m: &OutboxMessage) -> Attempt {
    let sp_id = match &m.signed_by {
        SignedBy::ProvisioningTarget(id) => id.clone(),
        _ => return Attempt::Refused { status: None, error: "the push names no provisioning target".into() },
    };
    let lookup = sp_id.clone();
    let token = match app.store.read(move |c| token_of(c, &lookup)).await {
        Ok(Some(token)) => token,
        Ok(None) => {
            return Attempt::Refused { status: None, error: "the provisioning target no longer exists".into() };
        }
        Err(e) => return Attempt::Retry { status: None, error: e.message, retry_after: None },
    };
    let conversation = Conversation {
        transport,
        base: m.url.clone(),
        token,
        deadline: tokio::time::Instant::now() + std::time::Duration::from_millis(u64::from(m.timeout_ms)),
    };
    match push(&conversation, &m.payload).await {
        Ok(()) => Attempt::Delivered { status: 200, body: None },
        Err(attempt) => attempt,
    }
}

async fn push(t: &Conversation<'_>, p: &Json) -> Step<()> {
    let grant = p["change"] == "grant";
    let active = p["active"].as_bool().unwrap_or(grant);
    let by_roles = p["roleDelivery"] == "roles";
    let found = t.find_user(p).await?;
    let mut user = p["user"].clone();
    if by_roles {
        user["roles"] = Json::Array(
            p["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| json!({ "value": r["value"], "display": r["displayName"], "type": "AppRole", "primary": false }))
                .collect(),
        );
    }
    if !grant && found.is_none() {
        // Nothing of the user's is on the target: nothing to take away or to change (a
        // grant creates the user).
        return Ok(());
    }
    if p["change"] == "update" {
        t.upsert_user(found, &user).await?;
        return Ok(());
    }
    if by_roles || grant {
        let id = t.upsert_user(found.clone(), &user).await?;
        if !by_roles && let Some(role) = p["role"].as_object() {
            let name = role.get("value").and_then(Json::as_str).unwrap_or_default();
            let group = t.find("Groups", &format!("displayName eq {}", literal(name))).await?;
            match group {
                Some(gid) => {
                    t.patch(
                        &format!("/Groups/{}", encode(&gid)),
                        json!([{ "op": "add", "path": "members", "value": [{ "value": id }] }]),
                    )
                    .await?
                }
                None => {
                    t.call(
                        "POST",
                        "/Groups",
                        Some(&json!({ "schemas": [GROUP_SCHEMA], "displayName": name, "members": [{ "value": id }] })),
                    )
                    .await?;
                }
            }
        }
        return Ok(());
    }
    // A revoke, delivered as a group membership.
    let id = found.unwrap_or_default();
    if let Some(role) = p["role"].as_object() {
        let name = role.get("value").and_then(Json::as_str).unwrap_or_default();
        if let Some(gid) = t.find("Groups", &format!("displayName eq {}", literal(name))).await? {
            t.patch(
                &format!("/Groups/{}", encode(&gid)),
                json!([{ "op": "remove", "path": format!("members[value eq {}]", literal(&id)) }]),
            )
            .await?;
        }
    }
    if !active {
        t.patch(&format!("/Users/{}", encode(&id)), json!([{ "op": "replace", "path": "active", "value": false }]))
            .await?;
    }
    Ok(())
}

/// The resource roles of `user_id`'s active assignments that deliver the app role
/// `app_role_id`, in the statuses `statuses`.
fn app_role_records(
    c: &mut dyn Conn,
    user_id: &str,
    app_role_id: &str,
    statuses: &[&str],
) -> Result<Vec<AssignmentResourceRole>> {
    let rows = c.query(
        "SELECT r.body FROM assignment_resource_roles r JOIN assignments a ON a.id = r.assignment_id \
         JOIN subjects s ON s.id = a.target_subject_id \
         WHERE s.object_id = ? AND a.active = 1 AND LOWER(r.origin_system) = 'aadapplication' ORDER BY r.seq",
        &[Value::from(user_id)],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let role: AssignmentResourceRole = repo::from_body(&row.text(0)?)?;
        if ids::normalize(&role.origin_id) == ids::normalize(app_role_id) && statuses.contains(&role.status.as_str()) {
            out.push(role);
        }
    }
    Ok(out)
}

/// The add request that delivered assignment `assignment_id` (the latest, if it was
/// reprocessed), in one of `states`.
fn delivering_request(
    c: &mut dyn Conn,
    assignment_id: &str,
    states: &[RequestState],
) -> Result<Option<AssignmentRequest>> {
    // In insertion order: the latest is the last.
    let requests: Vec<AssignmentRequest> = repo::find_all(c, "assignment_id = ?", &[Value::from(assignment_id)])?;
    Ok(requests.into_iter().rev().find(|r| r.request_type.is_add() && states.contains(&r.state)))
}

/// A push was delivered or dead-lettered (in the write that records it). A grant that failed
/// for good marks the resource roles it delivered `ProvisioningFailed`, and their assignment
/// and its request `partiallyDelivered`, naming the failed resource and the target's answer;
/// a grant delivered after all (sent again by `reprocess` or by an administrator's retry)
/// marks them `Fulfilled`, and an assignment with nothing left outstanding delivered.
pub fn after_delivery(c: &mut dyn Conn, m: &OutboxMessage, attempt: &Attempt, now: DateTime<Utc>) -> Result<()> {
    if m.payload["change"] != "grant" {
        return Ok(());
    }
    let (Some(user_id), Some(app_role_id)) = (m.payload["userId"].as_str(), m.payload["role"]["id"].as_str()) else {
        return Ok(());
    };
    let sp_id = m.payload["servicePrincipalId"].as_str().unwrap_or_default();
    match attempt {
        Attempt::Delivered { .. } => {
            let records = app_role_records(
                c,
                user_id,
                app_role_id,
                &[role_status::PROVISIONING_FAILED, role_status::PENDING_FULFILLMENT],
            )?;
            let mut assignments: Vec<String> = Vec::new();
            for mut r in records {
                r.status = role_status::FULFILLED.into();
                repo::update(c, &r)?;
                if !assignments.contains(&r.assignment_id) {
                    assignments.push(r.assignment_id.clone());
                }
            }
            for aid in assignments {
                let roles: Vec<AssignmentResourceRole> = repo::find_all(c, "assignment_id = ?", &[Value::from(&aid)])?;
                if roles.iter().any(AssignmentResourceRole::is_outstanding) {
                    continue;
                }
                let Some(mut a) = repo::get::<Assignment>(c, &aid)?.filter(|a| a.state.is_active()) else { continue };
                if a.state != AssignmentState::Delivered {
                    a.state = AssignmentState::Delivered;
                    a.status = RequestStatus::Delivered.as_str().into();
                    repo::update(c, &a)?;
                    crate::audit::record(
                        c,
                        AuditEvent {
                            at: now,
                            actor_id: None,
                            entity_type: "accessPackageAssignment",
                            entity_id: &a.id,
                            action: "delivered",
                            detail: json!({ "provisioned": sp_id }),
                        },
                    )?;
                }
                if let Some(mut request) =
                    delivering_request(c, &aid, &[RequestState::PartiallyDelivered, RequestState::Delivering])?
                {
                    crate::delivery::set_state_by(
                        c,
                        now,
                        &mut request,
                        RequestState::Delivered,
                        RequestStatus::Delivered,
                        None,
                        json!({ "provisioned": { "servicePrincipalId": sp_id, "appRoleId": app_role_id } }),
                    )?;
                }
            }
        }
        Attempt::Retry { .. } | Attempt::Refused { .. } => {
            let error = m.last_error.clone().unwrap_or_default();
            let records =
                app_role_records(c, user_id, app_role_id, &[role_status::FULFILLED, role_status::PENDING_FULFILLMENT])?;
            for mut r in records {
                r.status = role_status::PROVISIONING_FAILED.into();
                repo::update(c, &r)?;
                let failed = json!({
                    "resourceRoleId": r.role_id,
                    "originSystem": r.origin_system,
                    "originId": r.origin_id,
                    "servicePrincipalId": sp_id,
                    "outboxMessageId": m.id,
                    "error": error,
                });
                let Some(mut a) = repo::get::<Assignment>(c, &r.assignment_id)?.filter(|a| a.state.is_active()) else {
                    continue;
                };
                if a.state != AssignmentState::PartiallyDelivered {
                    a.state = AssignmentState::PartiallyDelivered;
                    a.status = RequestStatus::PartiallyDelivered.as_str().into();
                    repo::update(c, &a)?;
                    crate::audit::record(
                        c,
                        AuditEvent {
                            at: now,
                            actor_id: None,
                            entity_type: "accessPackageAssignment",
                            entity_id: &a.id,
                            action: "partiallyDelivered",
                            detail: json!({ "failedResources": [failed.clone()] }),
                        },
                    )?;
                }
                if let Some(mut request) =
                    delivering_request(c, &a.id, &[RequestState::Delivered, RequestState::Delivering])?
                {
                    crate::delivery::set_state_by(
                        c,
                        now,
                        &mut request,
                        RequestState::PartiallyDelivered,
                        RequestStatus::PartiallyDelivered,
                        None,
                        json!({ "reason": format!("Provisioning to the application's SCIM target failed: {error}"), "failedResources": [failed] }),
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// `reprocess` of a request whose assignment `a` has app roles whose push failed for good:
/// puts those pushes back in line (the user's dead-lettered pushes to that target, oldest
/// first, with their original ids) and marks the roles `PendingFulfillment`. Returns how
/// many roles wait for a push; a role with nothing left to send (its target was removed)
/// counts as fulfilled.
pub fn retry_failed(c: &mut dyn Conn, now: DateTime<Utc>, a: &Assignment, member_id: &str) -> Result<usize> {
    let roles: Vec<AssignmentResourceRole> = repo::find_all(c, "assignment_id = ?", &[Value::from(&a.id)])?;
    let mut waiting = 0;
    for mut r in roles.into_iter().filter(|r| r.status == role_status::PROVISIONING_FAILED) {
        let sp_id = repo::get::<grantry_domain::model::ResourceRole>(c, &r.role_id)?
            .and_then(|role| repo::get::<grantry_domain::model::Resource>(c, &role.resource_id).ok().flatten())
            .map(|resource| ids::normalize(&resource.origin_id));
        let dead: Vec<String> = match &sp_id {
            Some(sp_id) if target_of(c, sp_id)?.is_some() => c
                .query(
                    "SELECT id FROM outbox WHERE kind = 'scim' AND state = 'dead' AND ordering_key = ? ORDER BY seq",
                    &[Value::from(format!("{}{member_id}", key_prefix(sp_id)))],
                )?
                .iter()
                .map(|row| row.text(0))
                .collect::<Result<_>>()?,
            _ => Vec::new(),
        };
        for id in &dead {
            crate::outbox::replay(c, id, now)?;
        }
        let pending = !dead.is_empty()
            || match &sp_id {
                Some(sp_id) => c
                    .query_one(
                        "SELECT 1 FROM outbox WHERE kind = 'scim' AND state = 'pending' AND ordering_key = ?",
                        &[Value::from(format!("{}{member_id}", key_prefix(sp_id)))],
                    )?
                    .is_some(),
                None => false,
            };
        r.status = if pending { role_status::PENDING_FULFILLMENT } else { role_status::FULFILLED }.into();
        repo::update(c, &r)?;
        if pending {
            waiting += 1;
        }
    }
    Ok(waiting)
}

/// A push as administrators see it in a target's failures.
pub fn describe(m: &OutboxMessage) -> Json {
    json!({
        "id": m.id,
        "state": m.state.as_str(),
        "userId": m.payload["userId"],
        "userPrincipalName": m.payload["userPrincipalName"],
        "change": m.payload["change"],
        "appRole": m.payload["role"],
        "attempts": m.attempts,
        "lastStatus": m.last_status,
        "lastError": m.last_error,
        "createdDateTime": m.created_date_time,
        "nextAttemptDateTime": (m.state == OutboxState::Pending).then_some(m.next_attempt_date_time),
        "finishedDateTime": m.finished_date_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_merge_over_the_defaults_and_refuse_unknown_names() {
        let merged = merge_mappings(
            &default_mappings(),
            &[
                ("title".into(), None),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department".into(),
                    Some("department".into()),
                ),
            ],
        )
        .unwrap();
        assert!(!merged.iter().any(|(a, _)| a == "title"));
        assert!(merged.iter().any(|(a, s)| a.ends_with(":department") && s == "department"));
        assert!(merge_mappings(&default_mappings(), &[("shoeSize".into(), Some("id".into()))]).is_err());
        assert!(merge_mappings(&default_mappings(), &[("title".into(), Some("password".into()))]).is_err());
        assert!(merge_mappings(&default_mappings(), &[("userName".into(), None)]).is_err());
    }

    #[test]
    fn base_addresses_are_http_urls_without_credentials() {
        assert_eq!(check_base_address("https://app.example.com/scim/v2/").unwrap(), "https://app.example.com/scim/v2");
        for bad in ["ftp://x/scim", "https://user:pw@x/scim", "https:///scim", "https://x/scim?token=1", ""] {
            assert!(check_base_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_quote_and_encode_values() {
        assert_eq!(literal(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(encode("userName eq \"a@b\""), "userName%20eq%20%22a%40b%22");
    }
}
