//! Applications registered with Grantry's token issuer: the clients that obtain tokens
//! from `POST /{tenant}/oauth2/v2.0/token` with a client secret, as they would from Entra.
//!
//! Operators manage them with `grantry app …` (no caller: whoever can run the binary on the
//! server's database is trusted); the directory shows them read-only at `/applications` and
//! `/servicePrincipals`. Secrets are 256-bit random values stored only as their SHA-256.

use crate::auth::{Caller, perms};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use grantry_domain::{Error, Result, ids};
use grantry_store::{Conn, Store, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The Graph application permissions an application may be given.
pub const APPLICATION_PERMISSIONS: &[&str] = &[
    "EntitlementManagement.Read.All",
    "EntitlementManagement.ReadWrite.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Application.Read.All",
    "Application.ReadWrite.All",
    "AccessReview.Read.All",
    "AccessReview.ReadWrite.All",
];

#[derive(Debug, Clone)]
pub struct SecretInfo {
    pub key_id: String,
    /// The first three characters of the secret, as Entra shows them.
    pub hint: String,
    pub display_name: Option<String>,
    pub created: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Application {
    /// The application object's id.
    pub id: String,
    /// The OAuth client id.
    pub app_id: String,
    /// The service principal's id: the `oid` of the application's tokens.
    pub sp_id: String,
    pub display_name: String,
    /// Graph application permissions, as given (canonical spelling).
    pub roles: Vec<String>,
    /// The roles the application defines for its users (Graph's `appRoles`).
    pub app_roles: Vec<AppRole>,
    pub created: DateTime<Utc>,
    pub secrets: Vec<SecretInfo>,
}

/// An app role the application defines (Graph's `appRole`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: String,
    pub value: Option<String>,
    pub display_name: String,
    pub description: Option<String>,
    pub allowed_member_types: Vec<String>,
    pub is_enabled: bool,
}

impl AppRole {
    /// Whether access packages may deliver the role to users.
    pub fn for_users(&self) -> bool {
        self.is_enabled && self.allowed_member_types.iter().any(|t| t.eq_ignore_ascii_case("User"))
    }
}

/// The id of the role every application has for users when it defines none ("Default
/// Access", as Entra shows it).
pub const DEFAULT_ACCESS_ROLE: &str = "00000000-0000-0000-0000-000000000000";

fn invalid_app_role(message: impl Into<String>) -> Error {
    Error::bad_request("InvalidAppRole", message).with_target("appRoles")
}

/// Checks and completes app roles as a client sent them: a display name each, member types
/// among User and Application, unique ids and values; a missing id is generated.
pub fn check_app_roles(roles: Vec<AppRole>) -> Result<Vec<AppRole>> {
    let mut out: Vec<AppRole> = Vec::new();
    for mut role in roles {
        if role.display_name.trim().is_empty() {
            return Err(invalid_app_role("Each app role needs a 'displayName'."));
        }
        if role.id.trim().is_empty() {
            role.id = uuid_v4();
        } else if !ids::is_guid(&role.id) {
            return Err(invalid_app_role(format!("The app role id '{}' is not a GUID.", role.id)));
        } else {
            role.id = ids::normalize(&role.id);
        }
        if role.id == DEFAULT_ACCESS_ROLE {
            return Err(invalid_app_role(format!("The app role id {DEFAULT_ACCESS_ROLE} is reserved.")));
        }
        if role.allowed_member_types.is_empty() {
            role.allowed_member_types = vec!["User".into()];
        }
        for t in role.allowed_member_types.iter_mut() {
            *t = match t.to_ascii_lowercase().as_str() {
                "user" => "User".into(),
                "application" => "Application".into(),
                _ => {
                    return Err(invalid_app_role(format!(
                        "'{t}' is not an allowedMemberTypes value; use User or Application."
                    )));
                }
            };
        }
        if out.iter().any(|r| r.id == role.id) {
            return Err(invalid_app_role(format!("Two app roles have the id '{}'.", role.id)));
        }
        if let Some(v) = &role.value
            && out.iter().any(|r| r.value.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(v)))
        {
            return Err(invalid_app_role(format!("Two app roles have the value '{v}'.")));
        }
        out.push(role);
    }
    Ok(out)
}

fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Canonical spellings of `roles`; refuses unknown permissions, naming the known ones.
pub fn canonical_roles(roles: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for role in roles {
        let known = APPLICATION_PERMISSIONS.iter().find(|p| p.eq_ignore_ascii_case(role.trim())).ok_or_else(|| {
            Error::bad_request(
                "InvalidRole",
                format!(
                    "'{role}' is not an application permission Grantry knows; use any of: {}.",
                    APPLICATION_PERMISSIONS.join(", ")
                ),
            )
        })?;
        if !out.iter().any(|r| r == known) {
            out.push(known.to_string());
        }
    }
    Ok(out)
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new client secret: 32 random bytes, base64url.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

const COLUMNS: &str = "id, app_id, sp_id, display_name, roles, created_us, app_roles";

fn load_secrets(c: &mut dyn Conn, application_id: &str) -> Result<Vec<SecretInfo>> {
    let rows = c.query(
        "SELECT key_id, hint, display_name, created_us, expires_us FROM application_secrets WHERE application_id = ? ORDER BY created_us, key_id",
        &[Value::from(application_id)],
    )?;
    rows.iter()
        .map(|r| {
            Ok(SecretInfo {
                key_id: r.text(0)?,
                hint: r.text(1)?,
                display_name: r.opt_text(2)?,
                created: time(r.int(3)?),
                expires: r.opt_int(4)?.map(time),
            })
        })
        .collect()
}

fn from_row(c: &mut dyn Conn, r: &grantry_store::Row) -> Result<Application> {
    let id = r.text(0)?;
    let roles: Vec<String> = serde_json::from_str(&r.text(4)?)
        .map_err(|e| Error::internal(format!("stored application roles are unreadable: {e}")))?;
    let app_roles: Vec<AppRole> = serde_json::from_str(&r.text(6)?)
        .map_err(|e| Error::internal(format!("stored app roles are unreadable: {e}")))?;
    let secrets = load_secrets(c, &id)?;
    Ok(Application {
        id,
        app_id: r.text(1)?,
        sp_id: r.text(2)?,
        display_name: r.text(3)?,
        roles,
        app_roles,
        created: time(r.int(5)?),
        secrets,
    })
}

/// Every application, oldest first.
pub fn all(c: &mut dyn Conn) -> Result<Vec<Application>> {
    let rows = c.query(&format!("SELECT {COLUMNS} FROM applications ORDER BY seq"), &[])?;
    rows.iter().map(|r| from_row(c, r)).collect()
}

/// The application whose object id, appId (client id) or service principal id is `key`,
/// or whose display name it is (case-insensitively) when exactly one has it.
pub fn find(c: &mut dyn Conn, key: &str) -> Result<Option<Application>> {
    let key = key.trim();
    let normalized = ids::normalize(key);
    let row = c.query_one(
        &format!("SELECT {COLUMNS} FROM applications WHERE id = ? OR app_id = ? OR sp_id = ?"),
        &[Value::from(&normalized), Value::from(&normalized), Value::from(&normalized)],
    )?;
    if let Some(r) = row {
        return from_row(c, &r).map(Some);
    }
    let named: Vec<Application> = all(c)?.into_iter().filter(|a| a.display_name.eq_ignore_ascii_case(key)).collect();
    match named.len() {
        0 => Ok(None),
        1 => Ok(named.into_iter().next()),
        n => Err(Error::bad_request(
            "AmbiguousApplication",
            format!("{n} applications are named '{key}'; name one by its appId (client id) instead."),
        )),
    }
}

/// The application whose appId (client id) is exactly `client_id` (GUIDs in any case).
pub fn find_by_client_id(c: &mut dyn Conn, client_id: &str) -> Result<Option<Application>> {
    let row = c.query_one(
        &format!("SELECT {COLUMNS} FROM applications WHERE app_id = ? OR app_id = ?"),
        &[Value::from(client_id), Value::from(ids::normalize(client_id))],
    )?;
    match row {
        Some(r) => from_row(c, &r).map(Some),
        None => Ok(None),
    }
}

fn require_app(c: &mut dyn Conn, key: &str) -> Result<Application> {
    find(c, key)?.ok_or_else(|| Error::not_found("application", key))
}

fn insert_secret(
    c: &mut dyn Conn,
    application_id: &str,
    now: DateTime<Utc>,
    display_name: Option<String>,
    expires: Option<DateTime<Utc>>,
) -> Result<(SecretInfo, String)> {
    let secret = new_secret();
    let info =
        SecretInfo { key_id: uuid_v4(), hint: secret.chars().take(3).collect(), display_name, created: now, expires };
    c.execute(
        "INSERT INTO application_secrets (key_id, application_id, secret_sha256, hint, display_name, created_us, expires_us) VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            Value::from(&info.key_id),
            Value::from(application_id),
            Value::from(sha256_hex(&secret)),
            Value::from(&info.hint),
            info.display_name.as_ref().map(Value::from).unwrap_or(Value::Null),
            Value::Int(now.timestamp_micros()),
            info.expires.map(|t| Value::Int(t.timestamp_micros())).unwrap_or(Value::Null),
        ],
    )?;
    Ok((info, secret))
}

/// A random (not time-ordered) id: application and key ids should not reveal when they
/// were made relative to one another.
fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Registers an application with `roles` and a first client secret; returns it and the
/// secret, which is shown this once.
pub async fn create(
    store: &Store,
    now: DateTime<Utc>,
    display_name: &str,
    roles: &[String],
    secret_expires: Option<DateTime<Utc>>,
) -> Result<(Application, String)> {
    create_with_client_id(store, now, display_name, roles, secret_expires, None).await
}

/// Most characters of a client id given with `--client-id`.
const MAX_CLIENT_ID: usize = 256;

/// As [`create`], with the client id an external issuer gives the application (its
/// tokens' `azp`, `appid` or `client_id`) instead of a new random one.
pub async fn create_with_client_id(
    store: &Store,
    now: DateTime<Utc>,
    display_name: &str,
    roles: &[String],
    secret_expires: Option<DateTime<Utc>>,
    client_id: Option<&str>,
) -> Result<(Application, String)> {
    let client_id = match client_id.map(str::trim) {
        None => None,
        Some(id)
            if id.is_empty() || id.len() > MAX_CLIENT_ID || id.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            return Err(Error::bad_request(
                "InvalidClientId",
                format!("The client id must be 1 to {MAX_CLIENT_ID} characters without spaces."),
            ));
        }
        Some(id) => Some(if ids::is_guid(id) { ids::normalize(id) } else { id.to_string() }),
    };
    let display_name = display_name.trim().to_string();
    if display_name.is_empty() {
        return Err(Error::bad_request("InvalidName", "The application needs a name."));
    }
    let roles = canonical_roles(roles)?;
    if roles.is_empty() {
        return Err(Error::bad_request(
            "InvalidRole",
            format!("Give the application at least one permission (--roles), e.g. {}.", APPLICATION_PERMISSIONS[0]),
        ));
    }
    let roles_json = serde_json::to_string(&roles).map_err(|e| Error::internal(e.to_string()))?;
    store
        .write(move |c| {
            let (id, sp_id) = (uuid_v4(), uuid_v4());
            let app_id = match &client_id {
                Some(given) => {
                    if find_by_client_id(c, given)?.is_some() {
                        return Err(Error::conflict(
                            "ClientIdTaken",
                            format!("An application with the client id '{given}' is already registered."),
                        ));
                    }
                    given.clone()
                }
                None => uuid_v4(),
            };
            c.execute(
                "INSERT INTO applications (id, app_id, sp_id, display_name, roles, created_us) VALUES (?, ?, ?, ?, ?, ?)",
                &[
                    Value::from(&id),
                    Value::from(&app_id),
                    Value::from(&sp_id),
                    Value::from(&display_name),
                    Value::from(&roles_json),
                    Value::Int(now.timestamp_micros()),
                ],
            )?;
            let (_, secret) = insert_secret(c, &id, now, Some("created with the application".into()), secret_expires)?;
            Ok((require_app(c, &id)?, secret))
        })
        .await
}

/// Deletes an application and its secrets; its tokens are refused from then on.
pub async fn remove(store: &Store, key: &str) -> Result<Application> {
    let key = key.to_string();
    store
        .write(move |c| {
            let app = require_app(c, &key)?;
            delete_rows(c, &app)?;
            Ok(app)
        })
        .await
}

/// Deletes the application's rows: its secrets, the app role assignments of its service
/// principal, its provisioning target, the application. Catalog resources that name it
/// stay (as in Entra), delivering nothing from then on.
fn delete_rows(c: &mut dyn Conn, app: &Application) -> Result<()> {
    c.execute("DELETE FROM application_secrets WHERE application_id = ?", &[Value::from(&app.id)])?;
    c.execute("DELETE FROM app_role_assignments WHERE resource_id = ?", &[Value::from(&app.sp_id)])?;
    crate::provisioning::forget(c, &app.sp_id)?;
    c.execute("DELETE FROM applications WHERE id = ?", &[Value::from(&app.id)])?;
    Ok(())
}

/// `DELETE /applications/{id}` and `DELETE /servicePrincipals/{id}`: deletes the
/// application, its service principal and every appRoleAssignment to it.
pub async fn delete_for(app: &crate::App, caller: &Caller, key: &str) -> Result<()> {
    require_app_admin(caller)?;
    let key = ids::normalize(key);
    let actor = caller.id().to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            let found = require_by_id(c, &key)?;
            delete_rows(c, &found)?;
            crate::audit::record(
                c,
                crate::audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor),
                    entity_type: "application",
                    entity_id: &found.id,
                    action: "delete",
                    detail: serde_json::json!({ "appId": found.app_id, "servicePrincipalId": found.sp_id, "displayName": found.display_name }),
                },
            )
        })
        .await
}

pub async fn add_secret(
    store: &Store,
    now: DateTime<Utc>,
    key: &str,
    display_name: Option<String>,
    expires: Option<DateTime<Utc>>,
) -> Result<(Application, SecretInfo, String)> {
    let key = key.to_string();
    store
        .write(move |c| {
            let app = require_app(c, &key)?;
            let (info, secret) = insert_secret(c, &app.id, now, display_name, expires)?;
            Ok((app, info, secret))
        })
        .await
}

pub async fn remove_secret(store: &Store, key: &str, key_id: &str) -> Result<()> {
    let (key, key_id) = (key.to_string(), ids::normalize(key_id));
    store
        .write(move |c| {
            let app = require_app(c, &key)?;
            let removed = c.execute(
                "DELETE FROM application_secrets WHERE application_id = ? AND key_id = ?",
                &[Value::from(&app.id), Value::from(&key_id)],
            )?;
            if removed == 0 {
                return Err(Error::not_found("client secret", &key_id));
            }
            Ok(())
        })
        .await
}

/// The application whose client id is `client_id` when `secret` is one of its unexpired
/// secrets. The comparison takes the same time whether the client exists or not and
/// whichever secret (if any) matches.
pub async fn authenticate(
    store: &Store,
    now: DateTime<Utc>,
    client_id: &str,
    secret: &str,
) -> Result<Option<Application>> {
    let client_id = ids::normalize(client_id);
    let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    store
        .read(move |c| {
            let row = c.query_one(
                &format!("SELECT {COLUMNS} FROM applications WHERE app_id = ?"),
                &[Value::from(&client_id)],
            )?;
            let app = match &row {
                Some(r) => Some(from_row(c, r)?),
                None => None,
            };
            let hashes: Vec<(String, Option<i64>)> = match &app {
                Some(a) => c
                    .query(
                        "SELECT secret_sha256, expires_us FROM application_secrets WHERE application_id = ?",
                        &[Value::from(&a.id)],
                    )?
                    .iter()
                    .map(|r| Ok((r.text(0)?, r.opt_int(1)?)))
                    .collect::<Result<_>>()?,
                // Compare against a stand-in so an unknown client takes as long as a known one.
                None => vec![("0".repeat(64), None)],
            };
            let mut matched = subtle::Choice::from(0u8);
            for (hash, expires) in &hashes {
                let stored = hex_bytes(hash);
                let equal = stored.as_slice().ct_eq(&presented[..]);
                let live = subtle::Choice::from(u8::from(expires.is_none_or(|e| e > now.timestamp_micros())));
                matched |= equal & live;
            }
            Ok(if bool::from(matched) { app } else { None })
        })
        .await
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

/// Whether an application with this client id is registered (an application token whose
/// application was removed is refused).
pub async fn is_registered(store: &Store, app_id: &str) -> Result<bool> {
    let app_id = ids::normalize(app_id);
    store
        .read(move |c| {
            Ok(c.query_one("SELECT 1 FROM applications WHERE app_id = ?", &[Value::from(&app_id)])?.is_some())
        })
        .await
}

/// `GET /applications` and `/servicePrincipals`: every registered application.
pub async fn list_for(app: &crate::App, caller: &Caller) -> Result<Vec<Application>> {
    caller.require(perms::APPLICATION_READ)?;
    app.store.read(all).await
}

/// One application by object id, appId or service principal id.
pub async fn get_for(app: &crate::App, caller: &Caller, key: &str) -> Result<Application> {
    caller.require(perms::APPLICATION_READ)?;
    let key = ids::normalize(key);
    let wanted = key.clone();
    let found = app
        .store
        .read(move |c| {
            let row = c.query_one(
                &format!("SELECT {COLUMNS} FROM applications WHERE id = ? OR app_id = ? OR sp_id = ?"),
                &[Value::from(&key), Value::from(&key), Value::from(&key)],
            )?;
            row.map(|r| from_row(c, &r)).transpose()
        })
        .await?;
    found.ok_or_else(|| Error::not_found("application", &wanted))
}

/// Creating and changing applications through Graph needs `Application.ReadWrite.All` (or
/// `Directory.ReadWrite.All`); a signed-in user also needs the Global Administrator role.
fn require_app_admin(caller: &Caller) -> Result<()> {
    caller.require(perms::APPLICATION_WRITE)?;
    if caller.is_app() || caller.has_directory_role(grantry_domain::model::directory_roles::GLOBAL_ADMINISTRATOR) {
        Ok(())
    } else {
        Err(Error::forbidden("Creating or changing applications needs the Global Administrator role."))
    }
}

/// `POST /applications` (and `POST /servicePrincipals` without an appId): registers an
/// application with its service principal and app roles, no client secret and no Graph
/// permissions (`grantry app create` gives those).
pub async fn create_for(
    app: &crate::App,
    caller: &Caller,
    display_name: &str,
    app_roles: Vec<AppRole>,
) -> Result<Application> {
    require_app_admin(caller)?;
    let display_name = display_name.trim().to_string();
    if display_name.is_empty() {
        return Err(Error::invalid_property("displayName", "'displayName' is required."));
    }
    let app_roles = check_app_roles(app_roles)?;
    let app_roles_json = serde_json::to_string(&app_roles).map_err(|e| Error::internal(e.to_string()))?;
    let now = app.now();
    app.store
        .write(move |c| {
            let id = uuid_v4();
            c.execute(
                "INSERT INTO applications (id, app_id, sp_id, display_name, roles, created_us, app_roles) VALUES (?, ?, ?, ?, '[]', ?, ?)",
                &[
                    Value::from(&id),
                    Value::from(uuid_v4()),
                    Value::from(uuid_v4()),
                    Value::from(&display_name),
                    Value::Int(now.timestamp_micros()),
                    Value::from(&app_roles_json),
                ],
            )?;
            require_app(c, &id)
        })
        .await
}

/// `PATCH /applications/{id}`: a new display name and/or app roles. An app role that an
/// access package delivers cannot be removed or disabled.
pub async fn update_for(
    app: &crate::App,
    caller: &Caller,
    key: &str,
    display_name: Option<String>,
    app_roles: Option<Vec<AppRole>>,
) -> Result<()> {
    require_app_admin(caller)?;
    let app_roles = app_roles.map(check_app_roles).transpose()?;
    let key = ids::normalize(key);
    app.store
        .write(move |c| {
            let found = require_by_id(c, &key)?;
            if let Some(name) = &display_name {
                if name.trim().is_empty() {
                    return Err(Error::invalid_property("displayName", "'displayName' must not be empty."));
                }
                c.execute("UPDATE applications SET display_name = ? WHERE id = ?", &[Value::from(name.trim()), Value::from(&found.id)])?;
            }
            if let Some(roles) = &app_roles {
                for gone in found.app_roles.iter().filter(|r| !roles.iter().any(|n| n.id == r.id && n.for_users())) {
                    let used = c.query_one(
                        "SELECT 1 FROM resource_roles r JOIN resources s ON s.id = r.resource_id \
                         WHERE s.origin_system = 'AadApplication' AND s.origin_id = ? AND r.origin_id = ? \
                         AND r.id IN (SELECT role_id FROM role_scopes)",
                        &[Value::from(&found.sp_id), Value::from(&gone.id)],
                    )?;
                    if used.is_some() {
                        return Err(Error::bad_request(
                            "AppRoleInUse",
                            format!("The app role '{}' is delivered by an access package; remove it from the access package first.", gone.display_name),
                        ));
                    }
                }
                let json = serde_json::to_string(roles).map_err(|e| Error::internal(e.to_string()))?;
                c.execute("UPDATE applications SET app_roles = ? WHERE id = ?", &[Value::from(json), Value::from(&found.id)])?;
                // The catalogs that hold the application follow its roles.
                let changed = require_by_id(c, &found.id)?;
                crate::resources::refresh_application_roles(c, &changed)?;
            }
            Ok(())
        })
        .await
}

/// The application whose object id, appId or service principal id is `key` (ids only).
pub fn find_by_id(c: &mut dyn Conn, key: &str) -> Result<Option<Application>> {
    let key = ids::normalize(key);
    let row = c.query_one(
        &format!("SELECT {COLUMNS} FROM applications WHERE id = ? OR app_id = ? OR sp_id = ?"),
        &[Value::from(&key), Value::from(&key), Value::from(&key)],
    )?;
    row.map(|r| from_row(c, &r)).transpose()
}

fn require_by_id(c: &mut dyn Conn, key: &str) -> Result<Application> {
    find_by_id(c, key)?.ok_or_else(|| Error::not_found("application", key))
}

/// `POST /servicePrincipals` with an appId: the application's service principal (every
/// registered application has one).
pub async fn service_principal_for(app: &crate::App, caller: &Caller, app_id: &str) -> Result<Application> {
    require_app_admin(caller)?;
    let key = app_id.to_string();
    app.store.read(move |c| find_by_client_id(c, &key)).await?.ok_or_else(|| {
        Error::bad_request(
            "Request_BadRequest",
            format!("No application has the appId '{app_id}'; create the application first (POST /applications)."),
        )
        .with_target("appId")
    })
}

/// One user's assignment to an app role of a service principal (Graph's `appRoleAssignment`).
#[derive(Debug, Clone)]
pub struct AppRoleAssignment {
    pub id: String,
    pub app_role_id: String,
    pub principal_id: String,
    pub principal_display_name: Option<String>,
    pub resource_id: String,
    pub resource_display_name: Option<String>,
    pub created: DateTime<Utc>,
}

const ASSIGNMENT_SELECT: &str = "SELECT a.id, a.app_role_id, a.principal_id, u.display_name, a.resource_id, p.display_name, a.created_us \
     FROM app_role_assignments a LEFT JOIN users u ON u.id = a.principal_id LEFT JOIN applications p ON p.sp_id = a.resource_id";

fn assignments_where(c: &mut dyn Conn, filter: &str, key: &str) -> Result<Vec<AppRoleAssignment>> {
    c.query(&format!("{ASSIGNMENT_SELECT} WHERE {filter} ORDER BY a.seq"), &[Value::from(key)])?
        .iter()
        .map(|r| {
            Ok(AppRoleAssignment {
                id: r.text(0)?,
                app_role_id: r.text(1)?,
                principal_id: r.text(2)?,
                principal_display_name: r.opt_text(3)?,
                resource_id: r.text(4)?,
                resource_display_name: r.opt_text(5)?,
                created: time(r.int(6)?),
            })
        })
        .collect()
}

/// `GET /servicePrincipals/{id}/appRoleAssignedTo`.
pub async fn assigned_to(app: &crate::App, caller: &Caller, key: &str) -> Result<Vec<AppRoleAssignment>> {
    caller.require(perms::APPLICATION_READ)?;
    let key = key.to_string();
    app.store
        .read(move |c| {
            let found = require_by_id(c, &key)?;
            assignments_where(c, "a.resource_id = ?", &found.sp_id)
        })
        .await
}

/// `GET /users/{id}/appRoleAssignments`: the user's own, or anyone's with a user-read
/// permission.
pub async fn assignments_of_user(app: &crate::App, caller: &Caller, key: &str) -> Result<Vec<AppRoleAssignment>> {
    let key = key.to_string();
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let user = crate::directory::find_user(c, &key)?;
            let is_self =
                user.as_ref().is_some_and(|u| caller.user_id().is_some_and(|me| me.eq_ignore_ascii_case(&u.id)));
            if !is_self {
                caller.require(perms::USER_READ)?;
            }
            let user = user.ok_or_else(|| Error::not_found("user", &key))?;
            assignments_where(c, "a.principal_id = ?", &user.id)
        })
        .await
}

/// Records one more delivery of the app role to the user (the assignment is created when
/// new). Returns false when the service principal or the role no longer exists.
pub fn grant(c: &mut dyn Conn, now: DateTime<Utc>, sp_id: &str, app_role_id: &str, principal_id: &str) -> Result<bool> {
    let Some(found) = find_by_id(c, sp_id)? else { return Ok(false) };
    let known =
        app_role_id == DEFAULT_ACCESS_ROLE || found.app_roles.iter().any(|r| r.id == app_role_id && r.for_users());
    if !known {
        return Ok(false);
    }
    let new = !has_app_role(c, &found.sp_id, app_role_id, principal_id)?;
    c.execute(
        "INSERT INTO app_role_assignments (id, principal_id, resource_id, app_role_id, granted, created_us) VALUES (?, ?, ?, ?, 1, ?) \
         ON CONFLICT (principal_id, resource_id, app_role_id) DO UPDATE SET granted = app_role_assignments.granted + 1",
        &[
            Value::from(uuid_v4()),
            Value::from(principal_id),
            Value::from(&found.sp_id),
            Value::from(app_role_id),
            Value::Int(now.timestamp_micros()),
        ],
    )?;
    if new {
        crate::provisioning::on_grant(c, now, &found.sp_id, app_role_id, principal_id)?;
    }
    Ok(true)
}

/// Records that one delivery of the app role ended; the assignment goes with the last one.
/// A push to the application's provisioning target follows the assignment's removal.
pub fn revoke(c: &mut dyn Conn, now: DateTime<Utc>, sp_id: &str, app_role_id: &str, principal_id: &str) -> Result<()> {
    let key = [Value::from(principal_id), Value::from(sp_id), Value::from(app_role_id)];
    c.execute(
        "UPDATE app_role_assignments SET granted = granted - 1 WHERE principal_id = ? AND resource_id = ? AND app_role_id = ? AND granted > 0",
        &key,
    )?;
    let removed = c.execute(
        "DELETE FROM app_role_assignments WHERE principal_id = ? AND resource_id = ? AND app_role_id = ? AND granted <= 0",
        &key,
    )?;
    if removed > 0 {
        crate::provisioning::on_revoke(c, now, sp_id, app_role_id, principal_id)?;
    }
    Ok(())
}

/// Whether the user holds the app role of the service principal.
pub fn has_app_role(c: &mut dyn Conn, sp_id: &str, app_role_id: &str, principal_id: &str) -> Result<bool> {
    Ok(c.query_one(
        "SELECT 1 FROM app_role_assignments WHERE principal_id = ? AND resource_id = ? AND app_role_id = ?",
        &[Value::from(principal_id), Value::from(sp_id), Value::from(app_role_id)],
    )?
    .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_canonical_and_unknown_ones_refused() {
        let roles =
            canonical_roles(&["entitlementmanagement.read.all".into(), "EntitlementManagement.Read.All".into()]);
        assert_eq!(roles.unwrap(), vec!["EntitlementManagement.Read.All".to_string()]);
        let e = canonical_roles(&["Mail.Send".into()]).unwrap_err();
        assert!(e.message.contains("Mail.Send") && e.message.contains("EntitlementManagement.ReadWrite.All"));
    }

    #[test]
    fn ids_are_random_version_4_uuids() {
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, uuid_v4());
    }
}
