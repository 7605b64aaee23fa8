//! Users: create, read, update, delete, managers and direct reports, group memberships.
//! Groups live in [`crate::groups`], role assignments in [`crate::rbac`].

use crate::auth::perms;
use crate::listing::{ListOptions, Listed};
use crate::{App, Caller, Page, PageRequest};
use grantry_domain::enums::UserType;
use grantry_domain::model::{Group, GroupRelation, User, UserProfile};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::query::{Field, Kind};
use grantry_store::{Conn, Value, repo};

/// Input for creating a user (already validated for shape by the wire layer).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub mail_nickname: Option<String>,
    pub user_type: UserType,
    pub account_enabled: bool,
    pub profile: UserProfile,
}

/// A PATCH of a user. `None` leaves a property unchanged; for the nullable properties
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<Option<String>>,
    pub given_name: Option<Option<String>>,
    pub surname: Option<Option<String>>,
    pub job_title: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub account_enabled: Option<bool>,
    pub user_type: Option<UserType>,
    /// Profile attributes to set (`None` clears one), by Graph name.
    pub profile: Vec<(&'static str, Option<String>)>,
    /// Replaces the user's `identities` when present.
    pub identities: Option<Vec<grantry_domain::model::ObjectIdentity>>,
}

/// Directory writes by a delegated caller need an administrator role, as in Entra.
pub(crate) fn require_user_admin(caller: &Caller) -> Result<()> {
    use grantry_domain::model::directory_roles as dr;
    caller.require(perms::USER_WRITE)?;
    if caller.is_app()
        || caller.has_directory_role(dr::GLOBAL_ADMINISTRATOR)
        || caller.has_directory_role(dr::USER_ADMINISTRATOR)
    {
        Ok(())
    } else {
        Err(Error::forbidden("Creating or changing users needs the User Administrator or Global Administrator role."))
    }
}

/// Whether the delegated caller is reading their own user object.
fn is_self(caller: &Caller, user_id: &str) -> bool {
    caller.user_id().is_some_and(|me| me.eq_ignore_ascii_case(user_id))
}

/// Guests may read the objects they name, but not enumerate the directory (Entra's default
/// guest restrictions).
pub(crate) fn refuse_guest_enumeration(c: &mut dyn Conn, caller: &Caller, what: &str) -> Result<()> {
    let Some(me) = caller.user_id() else { return Ok(()) };
    let guest = c
        .query_one("SELECT user_type FROM users WHERE id = ?", &[Value::from(me)])?
        .map(|r| r.text(0))
        .transpose()?
        .is_some_and(|t| t.eq_ignore_ascii_case(UserType::Guest.v1()));
    if guest {
        return Err(Error::forbidden(format!(
            "Guest users may not list {what}; read a specific object by its id instead."
        )));
    }
    Ok(())
}

pub(crate) fn check_upn(upn: &str) -> Result<()> {
    let valid = upn.split_once('@').is_some_and(|(alias, domain)| {
        !alias.is_empty() && !domain.is_empty() && !domain.contains('@') && !upn.chars().any(char::is_whitespace)
    });
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_property(
            "userPrincipalName",
            "'userPrincipalName' must look like alias@domain, e.g. adele@contoso.com.",
        ))
    }
}

pub async fn create_user(app: &App, caller: &Caller, input: NewUser) -> Result<User> {
    require_user_admin(caller)?;
    check_upn(&input.user_principal_name)?;
    let user = User {
        id: ids::new_id(),
        display_name: input.display_name,
        user_principal_name: input.user_principal_name,
        mail: input.mail,
        given_name: input.given_name,
        surname: input.surname,
        job_title: input.job_title,
        department: input.department,
        mail_nickname: input.mail_nickname,
        user_type: input.user_type,
        account_enabled: input.account_enabled,
        manager_id: None,
        external_user_state: None,
        profile: Box::new(input.profile),
        created_date_time: app.now(),
    };
    let upn = user.user_principal_name.clone();
    let taken = {
        let upn = upn.clone();
        app.store.read(move |c| upn_owner(c, &upn)).await?.is_some()
    };
    if taken {
        return Err(upn_taken(&user.user_principal_name));
    }
    let saved = user.clone();
    app.store
        .write(move |c| {
            repo::insert(c, &saved)?;
            crate::autoassign::user_changed(c, saved.created_date_time, &saved.id)
        })
        .await
        .map_err(|e| if e.kind == ErrorKind::Conflict { upn_taken(&upn) } else { e })?;
    Ok(user)
}

/// A user to create for a subject of a trusted identity provider seen for the first time.
#[derive(Debug, Clone)]
pub struct ProvisionedUser {
    pub user_principal_name: String,
    pub display_name: String,
    pub mail: Option<String>,
}

/// Creates a member user on sign-in (an issuer's `auto_provision`); no caller, since the
/// operator's configuration authorizes it. When another sign-in created the same user
/// meanwhile, that user is returned.
pub async fn provision_user(app: &App, input: ProvisionedUser) -> Result<User> {
    check_upn(&input.user_principal_name).map_err(|_| {
        Error::forbidden(format!(
            "The token's user '{}' cannot become a userPrincipalName (alias@domain); it has no email claim either.",
            input.user_principal_name
        ))
    })?;
    let user = User {
        id: ids::new_id(),
        display_name: input.display_name,
        user_principal_name: input.user_principal_name,
        mail: input.mail,
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
        created_date_time: app.now(),
    };
    let saved = user.clone();
    app.store
        .write(move |c| match upn_owner(c, &saved.user_principal_name)? {
            Some(id) => repo::get::<User>(c, &id)?.ok_or_else(|| Error::internal("a user vanished while read")),
            None => {
                repo::insert(c, &saved)?;
                crate::autoassign::user_changed(c, saved.created_date_time, &saved.id)?;
                Ok(saved)
            }
        })
        .await
}

/// The id of the user holding `upn` (compared case-insensitively), if any.
pub(crate) fn upn_owner(c: &mut dyn Conn, upn: &str) -> Result<Option<String>> {
    c.query_one("SELECT id FROM users WHERE upn_lower = ?", &[Value::from(upn.to_lowercase())])?
        .map(|r| r.text(0))
        .transpose()
}

fn upn_taken(upn: &str) -> Error {
    Error::conflict(
        "Request_MultipleObjectsWithSameKeyValue",
        format!("Another user already has the userPrincipalName '{upn}'; choose a different one."),
    )
}

/// Resolves a user by object id or userPrincipalName. Any caller may read themselves;
/// reading others needs a user-read permission.
pub async fn get_user(app: &App, caller: &Caller, id_or_upn: &str) -> Result<User> {
    let key = id_or_upn.to_string();
    let user = app.store.read(move |c| find_user(c, &key)).await?;
    match user {
        Some(u) if is_self(caller, &u.id) => Ok(u),
        found => {
            caller.require(perms::USER_READ)?;
            found.ok_or_else(|| Error::not_found("user", id_or_upn))
        }
    }
}

/// The delegated caller's own user (`/me`).
pub async fn me(app: &App, caller: &Caller) -> Result<User> {
    let Some(me) = caller.user_id().map(str::to_string) else {
        return Err(Error::bad_request(
            "BadRequest",
            "/me is only valid with a delegated token (a signed-in user); an application token has no user. \
             Use /users/{id} instead.",
        ));
    };
    let id = me.clone();
    app.store.read(move |c| repo::get::<User>(c, &id)).await?.ok_or_else(|| Error::not_found("user", &me))
}

pub fn find_user(c: &mut dyn Conn, id_or_upn: &str) -> Result<Option<User>> {
    if id_or_upn.contains('@') {
        repo::find_one(c, "upn_lower = ?", &[Value::from(id_or_upn.trim().to_lowercase())])
    } else {
        repo::get(c, &ids::normalize(id_or_upn))
    }
}

/// Filterable and sortable user properties.
pub const USER_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field { names: &["userPrincipalName"], sql: "upn_lower", kind: Kind::TextIgnoreCase },
    Field { names: &["mail"], sql: "mail_lower", kind: Kind::TextIgnoreCase },
    Field {
        names: &["userType"],
        sql: "user_type",
        kind: Kind::Enum { normalize: |s| UserType::parse(s).map(|t| t.v1()), allowed: UserType::allowed },
    },
    Field { names: &["accountEnabled"], sql: "account_enabled", kind: Kind::Bool },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field { names: &["manager/id"], sql: "manager_id", kind: Kind::Id },
];

pub async fn list_users(app: &App, caller: &Caller, options: ListOptions) -> Result<Listed<User>> {
    caller.require(perms::USER_READ)?;
    let caller = caller.clone();
    app.store
        .read(move |c| {
            refuse_guest_enumeration(c, &caller, "users")?;
            crate::listing::list(c, USER_FIELDS, Vec::new(), &options)
        })
        .await
}

fn require_user(c: &mut dyn Conn, id_or_upn: &str) -> Result<User> {
    find_user(c, id_or_upn)?.ok_or_else(|| Error::not_found("user", id_or_upn))
}

/// Loads the user and applies `patch`, checking what the change must respect.
fn patched(c: &mut dyn Conn, id_or_upn: &str, patch: &UserPatch) -> Result<User> {
    let mut user = require_user(c, id_or_upn)?;
    if let Some(upn) = &patch.user_principal_name {
        check_upn(upn)?;
        if upn_owner(c, upn)?.is_some_and(|owner| owner != user.id) {
            return Err(upn_taken(upn));
        }
        user.user_principal_name = upn.clone();
    }
    if let Some(v) = &patch.display_name {
        user.display_name = v.clone();
    }
    if let Some(v) = &patch.mail {
        user.mail = v.clone();
    }
    if let Some(v) = &patch.given_name {
        user.given_name = v.clone();
    }
    if let Some(v) = &patch.surname {
        user.surname = v.clone();
    }
    if let Some(v) = &patch.job_title {
        user.job_title = v.clone();
    }
    if let Some(v) = &patch.department {
        user.department = v.clone();
    }
    if let Some(v) = patch.account_enabled {
        user.account_enabled = v;
    }
    if let Some(v) = patch.user_type {
        user.user_type = v;
    }
    for (name, value) in &patch.profile {
        if let Some(slot) = user.profile.field_mut(name) {
            *slot = value.clone();
        }
    }
    if let Some(identities) = &patch.identities {
        user.profile.identities = identities.clone();
    }
    Ok(user)
}

pub async fn update_user(app: &App, caller: &Caller, id_or_upn: &str, patch: UserPatch) -> Result<()> {
    require_user_admin(caller)?;
    let (key, p) = (id_or_upn.to_string(), patch.clone());
    app.store.read(move |c| patched(c, &key, &p).map(|_| ())).await?;
    let key = id_or_upn.to_string();
    let upn = patch.user_principal_name.clone().unwrap_or_default();
    let now = app.now();
    app.store
        .write(move |c| {
            let user = patched(c, &key, &patch)?;
            let before = repo::get::<User>(c, &user.id)?;
            repo::update(c, &user)?;
            if let Some(before) = &before {
                crate::provisioning::user_changed(c, now, before, &user)?;
            }
            crate::autoassign::user_changed(c, now, &user.id)
        })
        .await
        .map_err(|e| if e.kind == ErrorKind::Conflict { upn_taken(&upn) } else { e })
}

/// Deletes a user with everything that refers to them, in one write: their open access
/// package requests (canceled) and assignments (removed by `systemRemove` requests), their
/// group links (memberships and ownerships, however made), their role assignments, and the
/// manager link of their direct reports.
pub async fn delete_user(app: &App, caller: &Caller, id_or_upn: &str) -> Result<()> {
    require_user_admin(caller)?;
    let key = id_or_upn.to_string();
    app.store.read(move |c| require_user(c, &key).map(|_| ())).await?;
    let (key, now) = (id_or_upn.to_string(), app.now());
    app.store
        .write(move |c| {
            let user = require_user(c, &key)?;
            delete_user_rows(c, now, &user)
        })
        .await
}

/// Removes the user and every row that refers to them (see [`delete_user`]), after ending
/// the access Grantry gave them ([`crate::deprovision::end_access`]).
pub(crate) fn delete_user_rows(c: &mut dyn Conn, now: chrono::DateTime<chrono::Utc>, user: &User) -> Result<()> {
    crate::deprovision::end_access(c, now, &user.id, crate::deprovision::Reason::Deleted)?;
    let id = Value::from(&user.id);
    for mut report in repo::find_all::<User>(c, "manager_id = ?", std::slice::from_ref(&id))? {
        report.manager_id = None;
        repo::update(c, &report)?;
    }
    c.execute("DELETE FROM group_links WHERE member_id = ?", std::slice::from_ref(&id))?;
    c.execute("DELETE FROM role_assignments WHERE principal_id = ?", std::slice::from_ref(&id))?;
    c.execute("DELETE FROM app_role_assignments WHERE principal_id = ?", std::slice::from_ref(&id))?;
    c.execute("DELETE FROM scim_resources WHERE id = ?", std::slice::from_ref(&id))?;
    crate::connected::forget_directory_object(c, &user.id)?;
    repo::delete::<User>(c, &user.id)?;
    crate::autoassign::user_changed(c, now, &user.id)
}

/// Reads about a user that its owner may always make; others need a user-read permission.
fn require_read_about(caller: &Caller, user: &User) -> Result<()> {
    if is_self(caller, &user.id) { Ok(()) } else { caller.require(perms::USER_READ) }
}

pub async fn get_manager(app: &App, caller: &Caller, id_or_upn: &str) -> Result<User> {
    let key = id_or_upn.to_string();
    let (user, manager) = app
        .store
        .read(move |c| {
            let user = find_user(c, &key)?;
            let manager = match user.as_ref().and_then(|u| u.manager_id.clone()) {
                Some(m) => repo::get::<User>(c, &m)?,
                None => None,
            };
            Ok((user, manager))
        })
        .await?;
    let Some(user) = user else {
        caller.require(perms::USER_READ)?;
        return Err(Error::not_found("user", id_or_upn));
    };
    require_read_about(caller, &user)?;
    manager.ok_or_else(no_manager)
}

fn no_manager() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "Request_ResourceNotFound",
        "Resource 'manager' does not exist: this user has no manager. Set one with PUT /users/{id}/manager/$ref.",
    )
}

/// Sets the manager of a user. A user cannot manage themselves, directly or through a chain.
pub async fn set_manager(app: &App, caller: &Caller, id_or_upn: &str, manager_id: &str) -> Result<()> {
    require_user_admin(caller)?;
    let (key, manager) = (id_or_upn.to_string(), ids::normalize(manager_id));
    app.store.read(move |c| manager_change(c, &key, &manager).map(|_| ())).await?;
    let (key, manager) = (id_or_upn.to_string(), ids::normalize(manager_id));
    app.store
        .write(move |c| {
            let user = manager_change(c, &key, &manager)?;
            repo::update(c, &user)?;
            Ok(())
        })
        .await
}

/// The user with its manager set to `manager_id`, after checking the manager exists and
/// that no cycle results.
fn manager_change(c: &mut dyn Conn, id_or_upn: &str, manager_id: &str) -> Result<User> {
    let user = require_user(c, id_or_upn)?;
    with_manager(c, user, manager_id)
}

/// `user` with its manager set to `manager_id`, after the checks of [`manager_change`].
pub(crate) fn with_manager(c: &mut dyn Conn, mut user: User, manager_id: &str) -> Result<User> {
    let manager = find_user(c, manager_id)?.ok_or_else(|| Error::not_found("user", manager_id))?;
    // Walk up from the new manager: reaching the user means the change would close a cycle.
    let mut seen = std::collections::BTreeSet::new();
    let mut current = Some(manager.clone());
    while let Some(u) = current {
        if u.id == user.id {
            let message = if manager.id == user.id {
                "A user cannot be their own manager.".to_string()
            } else {
                format!(
                    "Making '{}' the manager of '{}' would create a management cycle: '{}' already reports to '{}', directly or indirectly.",
                    manager.user_principal_name,
                    user.user_principal_name,
                    manager.user_principal_name,
                    user.user_principal_name
                )
            };
            return Err(Error::bad_request("Request_BadRequest", message).with_target("@odata.id"));
        }
        if !seen.insert(u.id.clone()) {
            break;
        }
        current = match u.manager_id {
            Some(m) => repo::get::<User>(c, &m)?,
            None => None,
        };
    }
    user.manager_id = Some(manager.id);
    Ok(user)
}

pub async fn remove_manager(app: &App, caller: &Caller, id_or_upn: &str) -> Result<()> {
    require_user_admin(caller)?;
    let key = id_or_upn.to_string();
    app.store
        .write(move |c| {
            let mut user = require_user(c, &key)?;
            if user.manager_id.take().is_none() {
                return Err(no_manager());
            }
            repo::update(c, &user)?;
            Ok(())
        })
        .await
}

/// Users whose manager is the given user.
pub async fn direct_reports(app: &App, caller: &Caller, id_or_upn: &str, page: PageRequest) -> Result<Page<User>> {
    let key = id_or_upn.to_string();
    let user = app.store.read(move |c| find_user(c, &key)).await?;
    let Some(user) = user else {
        caller.require(perms::USER_READ)?;
        return Err(Error::not_found("user", id_or_upn));
    };
    require_read_about(caller, &user)?;
    app.store
        .read(move |c| {
            let rows = repo::list(c, "manager_id = ?", &[Value::from(&user.id)], page.after_seq, page.size + 1)?;
            Ok(Page::from_rows(rows, page.size))
        })
        .await
}

/// Groups the user is a member of (directly, however the membership was made).
pub async fn member_of(app: &App, caller: &Caller, id_or_upn: &str, page: PageRequest) -> Result<Page<Group>> {
    let key = id_or_upn.to_string();
    let user = app.store.read(move |c| find_user(c, &key)).await?;
    let Some(user) = user else {
        caller.require(perms::USER_READ)?;
        return Err(Error::not_found("user", id_or_upn));
    };
    require_read_about(caller, &user)?;
    app.store
        .read(move |c| {
            let rows = repo::list(
                c,
                "id IN (SELECT group_id FROM group_links WHERE member_id = ? AND relation = ? AND (direct = 1 OR granted > 0))",
                &[Value::from(&user.id), Value::from(GroupRelation::Member.as_str())],
                page.after_seq,
                page.size + 1,
            )?;
            Ok(Page::from_rows(rows, page.size))
        })
        .await
}
