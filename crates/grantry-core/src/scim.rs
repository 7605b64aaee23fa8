//! SCIM 2.0 inbound provisioning (RFC 7643/7644): identity providers push users and groups.
//!
//! SCIM users and groups are the directory's own users and groups, so a provisioned user
//! can at once request access, approve and manage. What SCIM adds (the client's
//! `externalId` and the time of the last SCIM change) lives in `scim_resources`. Every
//! change is one write: a PATCH is applied to the stored resource inside the transaction
//! that saves it, so concurrent changes never interleave and a failed one writes nothing.
//!
//! Errors carry the SCIM `scimType` as their code (`invalidValue`, `uniqueness`, ...).
//! SCIM clients authenticate with tokens of their own ([`create_token`]), separate from
//! Graph permissions: a SCIM token can manage the directory and nothing else.

use crate::App;
use chrono::{DateTime, Utc};
use grantry_domain::enums::UserType;
use grantry_domain::model::{Group, GroupRelation, User};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::{Conn, Store, Value, repo};
use sha2::{Digest, Sha256};

pub const USER: &str = "User";
pub const GROUP: &str = "Group";

/// The domain of the userPrincipalName given to a SCIM user whose userName has none.
pub const USER_NAME_DOMAIN: &str = "grantry.local";

/// A directory user as SCIM sees it.
#[derive(Debug, Clone)]
pub struct ScimUser {
    pub user: User,
    /// The userName: as the client sent it while it still names the user's
    /// userPrincipalName, else the userPrincipalName (changed through Graph since).
    pub user_name: String,
    pub external_id: Option<String>,
    pub last_modified: DateTime<Utc>,
}

/// A member of a group: its id, display name and SCIM type (`User` or `Group`).
#[derive(Debug, Clone)]
pub struct ScimMember {
    pub id: String,
    pub display: String,
    pub kind: &'static str,
}

/// A directory group as SCIM sees it.
#[derive(Debug, Clone)]
pub struct ScimGroup {
    pub group: Group,
    pub external_id: Option<String>,
    pub last_modified: DateTime<Utc>,
    pub members: Vec<ScimMember>,
}

/// Everything a SCIM client may set on a user (a create, a replace, or the result of a
/// PATCH). `None` means absent: on replace, absent attributes are cleared.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub user_name: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub formatted_name: Option<String>,
    pub mail: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub manager_id: Option<String>,
    pub external_id: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Default)]
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    /// Member object ids (users or groups), in the order given.
    pub members: Vec<String>,
}

pub fn invalid_value(message: impl Into<String>) -> Error {
    Error::bad_request("invalidValue", message)
}

fn uniqueness(message: impl Into<String>) -> Error {
    Error::conflict("uniqueness", message)
}

fn not_found(kind: &str, id: &str) -> Error {
    Error::new(ErrorKind::NotFound, "notFound", format!("{kind} '{id}' not found."))
}

/// What SCIM keeps beside a directory object: externalId, last change, userName as sent.
struct Extra {
    external_id: Option<String>,
    modified_us: i64,
    user_name: Option<String>,
}

fn extra(c: &mut dyn Conn, id: &str) -> Result<Option<Extra>> {
    c.query_one("SELECT external_id, modified_us, user_name FROM scim_resources WHERE id = ?", &[Value::from(id)])?
        .map(|r| Ok(Extra { external_id: r.opt_text(0)?, modified_us: r.int(1)?, user_name: r.opt_text(2)? }))
        .transpose()
}

fn save_extra(
    c: &mut dyn Conn,
    id: &str,
    kind: &str,
    external_id: &Option<String>,
    user_name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    c.execute("DELETE FROM scim_resources WHERE id = ?", &[Value::from(id)])?;
    c.execute(
        "INSERT INTO scim_resources (id, resource_type, external_id, modified_us, user_name) VALUES (?, ?, ?, ?, ?)",
        &[
            Value::from(id),
            Value::from(kind),
            external_id.clone().into(),
            Value::from(now),
            user_name.map(str::to_string).into(),
        ],
    )?;
    Ok(())
}

/// The userPrincipalName a SCIM userName gives: the userName itself when it looks like
/// alias@domain, else `userName@grantry.local` (identity providers may send a login name
/// with no domain). A userName with whitespace or an empty part is refused.
pub fn upn_for(user_name: &str) -> Result<String> {
    let refuse = || {
        invalid_value(format!(
            "'userName' must be a login name without spaces (e.g. adele) or look like alias@domain (e.g. adele@contoso.com); got '{user_name}'."
        ))
    };
    if user_name.trim().is_empty() || user_name.chars().any(char::is_whitespace) {
        return Err(refuse());
    }
    let upn = if user_name.contains('@') { user_name.to_string() } else { format!("{user_name}@{USER_NAME_DOMAIN}") };
    crate::directory::check_upn(&upn).map_err(|_| refuse())?;
    Ok(upn)
}

fn from_us(us: i64, fallback: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(fallback)
}

fn load_user(c: &mut dyn Conn, user: User) -> Result<ScimUser> {
    let Extra { external_id, modified_us, user_name } = extra(c, &user.id)?.unwrap_or(Extra {
        external_id: None,
        modified_us: user.created_date_time.timestamp_micros(),
        user_name: None,
    });
    let last_modified = from_us(modified_us, user.created_date_time);
    let user_name = user_name
        .filter(|n| upn_for(n).is_ok_and(|upn| upn.eq_ignore_ascii_case(&user.user_principal_name)))
        .unwrap_or_else(|| user.user_principal_name.clone());
    Ok(ScimUser { user, user_name, external_id, last_modified })
}

fn load_group(c: &mut dyn Conn, group: Group) -> Result<ScimGroup> {
    let Extra { external_id, modified_us, .. } = extra(c, &group.id)?.unwrap_or(Extra {
        external_id: None,
        modified_us: group.created_date_time.timestamp_micros(),
        user_name: None,
    });
    let last_modified = from_us(modified_us, group.created_date_time);
    let rows = c.query(
        "SELECT member_id FROM group_links WHERE group_id = ? AND relation = ? AND direct = 1 ORDER BY seq",
        &[Value::from(&group.id), Value::from(GroupRelation::Member.as_str())],
    )?;
    let mut members = Vec::new();
    for row in rows {
        let id = row.text(0)?;
        if let Some(u) = repo::get::<User>(c, &id)? {
            members.push(ScimMember { id, display: u.display_name, kind: USER });
        } else if let Some(g) = repo::get::<Group>(c, &id)? {
            members.push(ScimMember { id, display: g.display_name, kind: GROUP });
        }
    }
    Ok(ScimGroup { group, external_id, last_modified, members })
}

fn require_user(c: &mut dyn Conn, id: &str) -> Result<User> {
    repo::get::<User>(c, &ids::normalize(id))?.ok_or_else(|| not_found(USER, id))
}

fn require_group(c: &mut dyn Conn, id: &str) -> Result<Group> {
    repo::get::<Group>(c, &ids::normalize(id))?.ok_or_else(|| not_found(GROUP, id))
}

/// The display name a user without one gets: the formatted name, then given and family
/// name, then the userName (Graph requires a display name, SCIM does not).
fn display_name_of(input: &UserInput) -> String {
    let joined = [input.given_name.as_deref(), input.family_name.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    input
        .display_name
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| input.formatted_name.clone().filter(|s| !s.trim().is_empty()))
        .or_else(|| (!joined.is_empty()).then_some(joined))
        .unwrap_or_else(|| input.user_name.clone())
}

/// Applies `input` to `user` (a new one or the stored one), checking uniqueness and the
/// manager.
fn apply_user(c: &mut dyn Conn, mut user: User, input: &UserInput) -> Result<User> {
    if input.user_name.trim().is_empty() {
        return Err(invalid_value("'userName' is required and must not be empty."));
    }
    let upn = upn_for(&input.user_name)?;
    if crate::directory::upn_owner(c, &upn)?.is_some_and(|owner| owner != user.id) {
        return Err(uniqueness(format!("Another user already has the userName '{}'.", input.user_name)));
    }
    user.display_name = display_name_of(input);
    user.user_principal_name = upn;
    user.given_name = input.given_name.clone();
    user.surname = input.family_name.clone();
    user.mail = input.mail.clone();
    user.job_title = input.title.clone();
    user.department = input.department.clone();
    user.account_enabled = input.active;
    match &input.manager_id {
        None => user.manager_id = None,
        Some(m) if user.manager_id.as_deref() == Some(ids::normalize(m).as_str()) => {}
        Some(m) => {
            if repo::get::<User>(c, &ids::normalize(m))?.is_none() {
                return Err(invalid_value(format!("The manager '{m}' is not a user of this directory.")));
            }
            user = crate::directory::with_manager(c, user, &ids::normalize(m))
                .map_err(|e| if e.kind == ErrorKind::BadRequest { invalid_value(e.message) } else { e })?;
        }
    }
    Ok(user)
}

pub async fn create_user(app: &App, input: UserInput) -> Result<ScimUser> {
    let now = app.now();
    app.store
        .write(move |c| {
            let blank = User {
                id: ids::new_id(),
                display_name: String::new(),
                user_principal_name: String::new(),
                mail: None,
                given_name: None,
                surname: None,
                job_title: None,
                department: None,
                mail_nickname: None,
                user_type: UserType::Member,
                account_enabled: true,
                manager_id: None,
                external_user_state: None,
                profile: Default::default(),
                created_date_time: now,
            };
            let user = apply_user(c, blank, &input)?;
            repo::insert(c, &user)?;
            crate::autoassign::user_changed(c, now, &user.id)?;
            save_extra(c, &user.id, USER, &input.external_id, Some(&input.user_name), now)?;
            load_user(c, user)
        })
        .await
        .map_err(conflict_as_uniqueness)
}

/// A unique index that caught a race the check before it missed.
fn conflict_as_uniqueness(e: Error) -> Error {
    if e.kind == ErrorKind::Conflict && e.code != "uniqueness" { uniqueness(e.message) } else { e }
}

pub async fn get_user(app: &App, id: &str) -> Result<ScimUser> {
    let id = id.to_string();
    app.store
        .read(move |c| {
            let user = require_user(c, &id)?;
            load_user(c, user)
        })
        .await
}

/// A SQL condition that every match of a SCIM filter meets (and maybe more rows): over the
/// resource's table as `t` and its `scim_resources` row as `s`. Lists read only the rows
/// it admits, in chunks, and test each against the filter itself.
#[derive(Debug, Clone)]
pub struct Narrowing {
    pub sql: String,
    pub params: Vec<Value>,
}

/// The exact test of a listed resource against the client's filter.
pub type Keep<R> = std::sync::Arc<dyn Fn(&R) -> bool + Send + Sync>;

/// Users and groups as SCIM lists them: a table with `seq` order, and how a row becomes the
/// SCIM resource.
pub trait ScimResource: Sized + Send + 'static {
    /// The directory table (`users` or `groups`).
    const TABLE: &'static str;
    fn load(c: &mut dyn Conn, body: &str) -> Result<Self>;
}

impl ScimResource for ScimUser {
    const TABLE: &'static str = "users";
    fn load(c: &mut dyn Conn, body: &str) -> Result<Self> {
        let user: User = repo::from_body(body)?;
        load_user(c, user)
    }
}

impl ScimResource for ScimGroup {
    const TABLE: &'static str = "groups";
    fn load(c: &mut dyn Conn, body: &str) -> Result<Self> {
        let group: Group = repo::from_body(body)?;
        load_group(c, group)
    }
}

/// Rows read per step of a list.
const SCAN_CHUNK: usize = 200;

/// One page of a SCIM list: the resources admitted by `narrowing` and kept by `keep`, in
/// creation order, from the `start`th (1-based) at most `count`, and how many match in
/// all. Rows are read in chunks of [`SCAN_CHUNK`]; only the page is kept in memory.
pub async fn page<R: ScimResource>(
    app: &App,
    narrowing: Option<Narrowing>,
    keep: Keep<R>,
    start: usize,
    count: usize,
) -> Result<(usize, Vec<R>)> {
    app.store
        .read(move |c| {
            let (cond, cond_params) = match &narrowing {
                Some(n) => (format!(" AND ({})", n.sql), n.params.clone()),
                None => (String::new(), Vec::new()),
            };
            let sql = format!(
                "SELECT t.seq, t.body FROM {} t LEFT JOIN scim_resources s ON s.id = t.id \
                 WHERE t.seq > ?{cond} ORDER BY t.seq LIMIT {SCAN_CHUNK}",
                R::TABLE
            );
            let (mut after, mut total, mut page) = (0i64, 0usize, Vec::new());
            loop {
                let mut params = vec![Value::Int(after)];
                params.extend(cond_params.iter().cloned());
                let rows = c.query(&sql, &params)?;
                let n = rows.len();
                for row in rows {
                    after = row.int(0)?;
                    let resource = R::load(c, &row.text(1)?)?;
                    if keep(&resource) {
                        total += 1;
                        if total >= start && page.len() < count {
                            page.push(resource);
                        }
                    }
                }
                if n < SCAN_CHUNK {
                    break;
                }
            }
            Ok((total, page))
        })
        .await
}

/// Replaces the user with what `change` makes of the stored one (a PUT or a PATCH), in one
/// write. A user this change deactivates (`active` from true to false) loses their access
/// in the same write ([`crate::deprovision::end_access`]).
pub async fn update_user<F>(app: &App, id: &str, change: F) -> Result<ScimUser>
where
    F: FnOnce(&ScimUser) -> Result<UserInput> + Send + 'static,
{
    let (id, now) = (id.to_string(), app.now());
    app.store
        .write(move |c| {
            let stored = require_user(c, &id)?;
            let current = load_user(c, stored.clone())?;
            let input = change(&current)?;
            let before = stored.clone();
            let user = apply_user(c, stored, &input)?;
            if before.account_enabled && !user.account_enabled {
                crate::deprovision::end_access(c, now, &user.id, crate::deprovision::Reason::Deactivated)?;
            }
            repo::update(c, &user)?;
            crate::provisioning::user_changed(c, now, &before, &user)?;
            crate::autoassign::user_changed(c, now, &user.id)?;
            save_extra(c, &user.id, USER, &input.external_id, Some(&input.user_name), now)?;
            load_user(c, user)
        })
        .await
        .map_err(conflict_as_uniqueness)
}

pub async fn delete_user(app: &App, id: &str) -> Result<()> {
    let (id, now) = (id.to_string(), app.now());
    app.store
        .write(move |c| {
            let user = require_user(c, &id)?;
            crate::directory::delete_user_rows(c, now, &user)
        })
        .await
}

fn apply_group(c: &mut dyn Conn, mut group: Group, input: &GroupInput) -> Result<Group> {
    if input.display_name.trim().is_empty() {
        return Err(invalid_value("'displayName' is required and must not be empty."));
    }
    // Identity providers match groups by displayName, so SCIM keeps it unique.
    let same_name = c.query(
        "SELECT id FROM groups WHERE LOWER(display_name) = ? AND id <> ?",
        &[Value::from(input.display_name.to_lowercase()), Value::from(&group.id)],
    )?;
    if !same_name.is_empty() {
        return Err(uniqueness(format!("Another group already has the displayName '{}'.", input.display_name)));
    }
    group.display_name = input.display_name.clone();
    Ok(group)
}

/// Makes the group's direct members exactly `wanted` (links that assignments deliver stay).
fn set_members(c: &mut dyn Conn, group_id: &str, wanted: &[String]) -> Result<()> {
    let mut normalized = Vec::new();
    for id in wanted {
        let id = ids::normalize(id);
        if id == group_id {
            return Err(invalid_value("A group cannot be a member of itself."));
        }
        let exists = repo::get::<User>(c, &id)?.is_some() || repo::get::<Group>(c, &id)?.is_some();
        if !exists {
            return Err(invalid_value(format!("The member '{id}' is not a user or group of this directory.")));
        }
        if !normalized.contains(&id) {
            normalized.push(id);
        }
    }
    let member = GroupRelation::Member.as_str();
    let current: Vec<String> = c
        .query(
            "SELECT member_id FROM group_links WHERE group_id = ? AND relation = ? AND direct = 1",
            &[Value::from(group_id), Value::from(member)],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<_>>()?;
    for gone in current.iter().filter(|id| !normalized.contains(id)) {
        let key = [Value::from(group_id), Value::from(member), Value::from(gone)];
        c.execute("UPDATE group_links SET direct = 0 WHERE group_id = ? AND relation = ? AND member_id = ?", &key)?;
        c.execute(
            "DELETE FROM group_links WHERE group_id = ? AND relation = ? AND member_id = ? AND direct = 0 AND granted <= 0",
            &key,
        )?;
    }
    for new in normalized.iter().filter(|id| !current.contains(id)) {
        c.execute(
            "INSERT INTO group_links (group_id, relation, member_id, direct, granted) VALUES (?, ?, ?, 1, 0) \
             ON CONFLICT (group_id, relation, member_id) DO UPDATE SET direct = 1",
            &[Value::from(group_id), Value::from(member), Value::from(new)],
        )?;
    }
    Ok(())
}

pub async fn create_group(app: &App, input: GroupInput) -> Result<ScimGroup> {
    let now = app.now();
    app.store
        .write(move |c| {
            let blank = Group {
                id: ids::new_id(),
                display_name: String::new(),
                description: None,
                mail_nickname: None,
                mail: None,
                mail_enabled: false,
                security_enabled: true,
                group_types: Vec::new(),
                visibility: None,
                created_date_time: now,
            };
            let group = apply_group(c, blank, &input)?;
            repo::insert(c, &group)?;
            set_members(c, &group.id, &input.members)?;
            save_extra(c, &group.id, GROUP, &input.external_id, None, now)?;
            load_group(c, group)
        })
        .await
        .map_err(conflict_as_uniqueness)
}

pub async fn get_group(app: &App, id: &str) -> Result<ScimGroup> {
    let id = id.to_string();
    app.store
        .read(move |c| {
            let group = require_group(c, &id)?;
            load_group(c, group)
        })
        .await
}

pub async fn update_group<F>(app: &App, id: &str, change: F) -> Result<ScimGroup>
where
    F: FnOnce(&ScimGroup) -> Result<GroupInput> + Send + 'static,
{
    let (id, now) = (id.to_string(), app.now());
    app.store
        .write(move |c| {
            let stored = require_group(c, &id)?;
            let current = load_group(c, stored.clone())?;
            let input = change(&current)?;
            let group = apply_group(c, stored, &input)?;
            repo::update(c, &group)?;
            set_members(c, &group.id, &input.members)?;
            save_extra(c, &group.id, GROUP, &input.external_id, None, now)?;
            load_group(c, group)
        })
        .await
        .map_err(conflict_as_uniqueness)
}

pub async fn delete_group(app: &App, id: &str) -> Result<()> {
    let id = id.to_string();
    app.store
        .write(move |c| {
            let group = require_group(c, &id)?;
            crate::groups::delete_group_rows(c, &group)
        })
        .await
}

/// A SCIM client's bearer token, as listed (the token itself is never stored).
#[derive(Debug, Clone)]
pub struct ScimToken {
    pub id: String,
    pub name: String,
    /// The first characters of the token, to recognise it by.
    pub hint: String,
    pub created: DateTime<Utc>,
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a token named `name`; returns it with the token, which is shown only now.
pub async fn create_token(store: &Store, now: DateTime<Utc>, name: &str) -> Result<(ScimToken, String)> {
    use base64::Engine;
    if name.trim().is_empty() {
        return Err(Error::bad_request("BadRequest", "A SCIM token needs a name, e.g. entra-provisioning."));
    }
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let secret = format!("scim_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let token =
        ScimToken { id: ids::new_id(), name: name.trim().to_string(), hint: secret[..9].to_string(), created: now };
    let (saved, hash) = (token.clone(), sha256_hex(&secret));
    store
        .write(move |c| {
            let taken = c.query_one("SELECT 1 FROM scim_tokens WHERE name = ?", &[Value::from(&saved.name)])?.is_some();
            if taken {
                return Err(Error::conflict(
                    "Conflict",
                    format!("A SCIM token named '{}' exists; revoke it first or choose another name.", saved.name),
                ));
            }
            c.execute(
                "INSERT INTO scim_tokens (id, name, token_sha256, hint, created_us) VALUES (?, ?, ?, ?, ?)",
                &[
                    Value::from(&saved.id),
                    Value::from(&saved.name),
                    Value::from(hash),
                    Value::from(&saved.hint),
                    Value::from(saved.created),
                ],
            )?;
            Ok(())
        })
        .await?;
    Ok((token, secret))
}

pub async fn list_tokens(store: &Store) -> Result<Vec<ScimToken>> {
    store
        .read(|c| {
            c.query("SELECT id, name, hint, created_us FROM scim_tokens ORDER BY created_us, name", &[])?
                .iter()
                .map(|r| {
                    Ok(ScimToken {
                        id: r.text(0)?,
                        name: r.text(1)?,
                        hint: r.text(2)?,
                        created: DateTime::from_timestamp_micros(r.int(3)?).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .await
}

/// Revokes the token with this name or id; requests bearing it are refused from now on.
pub async fn revoke_token(store: &Store, name_or_id: &str) -> Result<()> {
    let key = name_or_id.to_string();
    store
        .write(move |c| {
            let n =
                c.execute("DELETE FROM scim_tokens WHERE name = ? OR id = ?", &[Value::from(&key), Value::from(&key)])?;
            if n == 0 {
                return Err(Error::new(ErrorKind::NotFound, "NotFound", format!("No SCIM token is named '{key}'.")));
            }
            Ok(())
        })
        .await
}

/// Whether `token` is a live SCIM token.
pub async fn authenticate(store: &Store, token: &str) -> Result<bool> {
    let hash = sha256_hex(token);
    store
        .read(move |c| {
            Ok(c.query_one("SELECT 1 FROM scim_tokens WHERE token_sha256 = ?", &[Value::from(hash)])?.is_some())
        })
        .await
}
