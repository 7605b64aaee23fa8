//! Groups and their members and owners.
//!
//! Links are stored in `group_links` (see [`crate::membership`]): the groups API sets and
//! clears `direct`, access package delivery counts `granted`.

use crate::auth::perms;
use crate::directory::refuse_guest_enumeration;
use crate::membership;
use crate::{App, Caller, Page, PageRequest};
use grantry_domain::model::{Group, GroupRelation, User, directory_roles as dr};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::{Conn, Value, repo};

/// Input for creating a group (already validated for shape by the wire layer).
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
    pub mail_enabled: Option<bool>,
    pub security_enabled: Option<bool>,
    pub group_types: Vec<String>,
    pub visibility: Option<String>,
    /// `members@odata.bind`.
    pub members: Vec<ObjectRef>,
    /// `owners@odata.bind`.
    pub owners: Vec<ObjectRef>,
}

/// A PATCH of a group; `None` leaves a property unchanged, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    pub display_name: Option<String>,
    pub description: Option<Option<String>>,
    pub mail_nickname: Option<Option<String>>,
    pub mail_enabled: Option<bool>,
    pub security_enabled: Option<bool>,
    pub group_types: Option<Vec<String>>,
    pub visibility: Option<Option<String>>,
}

/// What kind of object an `@odata.id` reference names, from its entity set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `directoryObjects/{id}`: a user or a group.
    Any,
    User,
    Group,
}

/// A reference to a directory object, parsed from `@odata.id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub kind: RefKind,
    pub id: String,
}

/// A member or owner of a group.
#[derive(Debug, Clone)]
pub enum DirectoryObject {
    User(User),
    Group(Group),
}

const GROUP_TYPES: &[&str] = &["Unified", "DynamicMembership"];
const VISIBILITIES: &[&str] = &["Public", "Private", "HiddenMembership"];

fn canonical(value: &str, allowed: &[&'static str], property: &str) -> Result<String> {
    allowed.iter().find(|a| a.eq_ignore_ascii_case(value.trim())).map(|a| a.to_string()).ok_or_else(|| {
        Error::invalid_property(
            property,
            format!(
                "'{property}' has the value '{value}', which is not one of the allowed values: {}.",
                allowed.join(", ")
            ),
        )
    })
}

fn canonical_group_types(types: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        let c = canonical(t, GROUP_TYPES, "groupTypes")?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

fn is_group_admin(caller: &Caller) -> bool {
    caller.is_app()
        || [dr::GLOBAL_ADMINISTRATOR, dr::GROUPS_ADMINISTRATOR, dr::USER_ADMINISTRATOR]
            .iter()
            .any(|r| caller.has_directory_role(r))
}

/// Creating, changing and deleting groups: the permission, and for a delegated caller an
/// administrator role.
fn require_group_admin(caller: &Caller) -> Result<()> {
    caller.require(perms::GROUP_WRITE)?;
    if is_group_admin(caller) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "Creating, changing or deleting groups needs the Groups Administrator, User Administrator or Global Administrator role.",
        ))
    }
}

/// Changing members or owners: the permission, and for a delegated caller an administrator
/// role or ownership of the group.
fn require_membership_right(c: &mut dyn Conn, caller: &Caller, group_id: &str) -> Result<()> {
    caller.require(perms::GROUP_MEMBER_WRITE)?;
    if is_group_admin(caller) {
        return Ok(());
    }
    if let Some(me) = caller.user_id()
        && membership::has_link(c, group_id, GroupRelation::Owner, me)?
    {
        return Ok(());
    }
    Err(Error::forbidden(
        "Changing the members or owners of this group needs ownership of the group, or the Groups Administrator, \
         User Administrator or Global Administrator role.",
    ))
}

fn require_group(c: &mut dyn Conn, id: &str) -> Result<Group> {
    repo::get::<Group>(c, &ids::normalize(id))?.ok_or_else(|| Error::not_found("group", id))
}

pub async fn create_group(app: &App, caller: &Caller, input: NewGroup) -> Result<Group> {
    require_group_admin(caller)?;
    if !input.members.is_empty() || !input.owners.is_empty() {
        caller.require(perms::GROUP_MEMBER_WRITE)?;
    }
    let group = Group {
        id: ids::new_id(),
        display_name: input.display_name,
        description: input.description,
        mail_nickname: input.mail_nickname,
        mail: None,
        mail_enabled: input.mail_enabled.unwrap_or(false),
        security_enabled: input.security_enabled.unwrap_or(true),
        group_types: canonical_group_types(&input.group_types)?,
        visibility: input.visibility.as_deref().map(|v| canonical(v, VISIBILITIES, "visibility")).transpose()?,
        created_date_time: app.now(),
    };
    let links: Vec<(GroupRelation, ObjectRef)> = input
        .members
        .into_iter()
        .map(|r| (GroupRelation::Member, r))
        .chain(input.owners.into_iter().map(|r| (GroupRelation::Owner, r)))
        .collect();
    let checked = links.clone();
    app.store
        .read(move |c| {
            for (relation, r) in &checked {
                resolve_linkable(c, *relation, r, None)?;
            }
            Ok(())
        })
        .await?;
    let saved = group.clone();
    app.store
        .write(move |c| {
            repo::insert(c, &saved)?;
            for (relation, r) in &links {
                let object_id = resolve_linkable(c, *relation, r, None)?;
                set_direct(c, &saved.id, *relation, &object_id)?;
            }
            Ok(())
        })
        .await?;
    Ok(group)
}

pub async fn get_group(app: &App, caller: &Caller, id: &str) -> Result<Group> {
    caller.require(perms::GROUP_READ)?;
    let key = id.to_string();
    app.store.read(move |c| require_group(c, &key)).await
}

/// Filterable and sortable group properties (`displayName`, `description` and `mail` are
/// kept in the stored body; `displayName` also has its own column).
pub const GROUP_FIELDS: &[grantry_store::query::Field] = {
    use grantry_store::query::{Field, Kind};
    &[
        crate::listing::ID,
        Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
        Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    ]
};

pub async fn list_groups(
    app: &App,
    caller: &Caller,
    options: crate::listing::ListOptions,
) -> Result<crate::listing::Listed<Group>> {
    caller.require(perms::GROUP_READ)?;
    let caller = caller.clone();
    app.store
        .read(move |c| {
            refuse_guest_enumeration(c, &caller, "groups")?;
            crate::listing::list(c, GROUP_FIELDS, Vec::new(), &options)
        })
        .await
}

pub async fn update_group(app: &App, caller: &Caller, id: &str, patch: GroupPatch) -> Result<()> {
    require_group_admin(caller)?;
    let group_types = patch.group_types.as_deref().map(canonical_group_types).transpose()?;
    let visibility = match &patch.visibility {
        Some(Some(v)) => Some(Some(canonical(v, VISIBILITIES, "visibility")?)),
        Some(None) => Some(None),
        None => None,
    };
    let key = id.to_string();
    app.store
        .write(move |c| {
            let mut g = require_group(c, &key)?;
            if let Some(v) = patch.display_name {
                g.display_name = v;
            }
            if let Some(v) = patch.description {
                g.description = v;
            }
            if let Some(v) = patch.mail_nickname {
                g.mail_nickname = v;
            }
            if let Some(v) = patch.mail_enabled {
                g.mail_enabled = v;
            }
            if let Some(v) = patch.security_enabled {
                g.security_enabled = v;
            }
            if let Some(v) = group_types {
                g.group_types = v;
            }
            if let Some(v) = visibility {
                g.visibility = v;
            }
            repo::update(c, &g)?;
            Ok(())
        })
        .await
}

/// Deletes a group with its links: its own members and owners, and its membership of
/// other groups.
pub async fn delete_group(app: &App, caller: &Caller, id: &str) -> Result<()> {
    require_group_admin(caller)?;
    let key = id.to_string();
    app.store
        .write(move |c| {
            let g = require_group(c, &key)?;
            delete_group_rows(c, &g)
        })
        .await
}

/// Removes the group, its links both ways and what SCIM kept about it.
pub(crate) fn delete_group_rows(c: &mut dyn Conn, g: &Group) -> Result<()> {
    let gid = Value::from(&g.id);
    c.execute("DELETE FROM group_links WHERE group_id = ? OR member_id = ?", &[gid.clone(), gid.clone()])?;
    crate::connected::forget_directory_object(c, &g.id)?;
    c.execute("DELETE FROM scim_resources WHERE id = ?", &[gid])?;
    repo::delete::<Group>(c, &g.id)?;
    Ok(())
}

/// Members (users and groups) or owners (users) of a group, in the order they were linked.
pub async fn list_links(
    app: &App,
    caller: &Caller,
    group_id: &str,
    relation: GroupRelation,
    page: PageRequest,
) -> Result<Page<DirectoryObject>> {
    caller.require(perms::GROUP_READ)?;
    let key = group_id.to_string();
    app.store
        .read(move |c| {
            let g = require_group(c, &key)?;
            let mut params = vec![Value::from(&g.id), Value::from(relation.as_str())];
            let mut sql = "SELECT seq, member_id FROM group_links WHERE group_id = ? AND relation = ? \
                           AND (direct = 1 OR granted > 0)"
                .to_string();
            if let Some(after) = page.after_seq {
                sql.push_str(" AND seq > ?");
                params.push(Value::Int(after));
            }
            sql.push_str(&format!(" ORDER BY seq LIMIT {}", page.size + 1));
            let rows = c.query(&sql, &params)?;
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                let (seq, member_id) = (row.int(0)?, row.text(1)?);
                if let Some(object) = find_object(c, &member_id, RefKind::Any)? {
                    items.push((seq, object));
                }
            }
            Ok(Page::from_rows(items, page.size))
        })
        .await
}

fn find_object(c: &mut dyn Conn, id: &str, kind: RefKind) -> Result<Option<DirectoryObject>> {
    if kind != RefKind::Group
        && let Some(u) = repo::get::<User>(c, id)?
    {
        return Ok(Some(DirectoryObject::User(u)));
    }
    if kind != RefKind::User
        && let Some(g) = repo::get::<Group>(c, id)?
    {
        return Ok(Some(DirectoryObject::Group(g)));
    }
    Ok(None)
}

/// Checks that `r` names an object that may hold `relation` in `group_id` (when known) and
/// returns its id.
fn resolve_linkable(
    c: &mut dyn Conn,
    relation: GroupRelation,
    r: &ObjectRef,
    group_id: Option<&str>,
) -> Result<String> {
    let id = ids::normalize(&r.id);
    let what = match r.kind {
        RefKind::Any => "directory object",
        RefKind::User => "user",
        RefKind::Group => "group",
    };
    let object = find_object(c, &id, r.kind)?.ok_or_else(|| Error::not_found(what, &id))?;
    match (relation, &object) {
        (GroupRelation::Owner, DirectoryObject::Group(_)) => {
            Err(Error::bad_request("Request_BadRequest", format!("'{id}' is a group; a group's owners must be users."))
                .with_target("@odata.id"))
        }
        (GroupRelation::Member, DirectoryObject::Group(_)) if group_id == Some(id.as_str()) => {
            Err(Error::bad_request("Request_BadRequest", "A group cannot be a member of itself.")
                .with_target("@odata.id"))
        }
        _ => Ok(id),
    }
}

/// Marks the link as made through the API (inserting it if needed).
fn set_direct(c: &mut dyn Conn, group_id: &str, relation: GroupRelation, member_id: &str) -> Result<()> {
    c.execute(
        "INSERT INTO group_links (group_id, relation, member_id, direct, granted) VALUES (?, ?, ?, 1, 0) \
         ON CONFLICT (group_id, relation, member_id) DO UPDATE SET direct = 1",
        &[Value::from(group_id), Value::from(relation.as_str()), Value::from(member_id)],
    )?;
    Ok(())
}

fn is_direct(c: &mut dyn Conn, group_id: &str, relation: GroupRelation, member_id: &str) -> Result<bool> {
    Ok(c.query_one(
        "SELECT 1 FROM group_links WHERE group_id = ? AND relation = ? AND member_id = ? AND direct = 1",
        &[Value::from(group_id), Value::from(relation.as_str()), Value::from(member_id)],
    )?
    .is_some())
}

fn relation_property(relation: GroupRelation) -> &'static str {
    match relation {
        GroupRelation::Member => "members",
        GroupRelation::Owner => "owners",
    }
}

/// Checks an add of `r` to the group; returns (group id, object id).
fn check_add(
    c: &mut dyn Conn,
    caller: &Caller,
    group_id: &str,
    relation: GroupRelation,
    r: &ObjectRef,
) -> Result<(String, String)> {
    let g = require_group(c, group_id)?;
    require_membership_right(c, caller, &g.id)?;
    let object_id = resolve_linkable(c, relation, r, Some(&g.id))?;
    if is_direct(c, &g.id, relation, &object_id)? {
        return Err(Error::bad_request(
            "Request_BadRequest",
            format!(
                "One or more added object references already exist for the following modified properties: '{}'. \
                 '{object_id}' is already in the group's {}.",
                relation_property(relation),
                relation_property(relation)
            ),
        ));
    }
    Ok((g.id, object_id))
}

/// Adds a member or owner (`POST /groups/{id}/members/$ref`). An object that already holds
/// the link only through an access package assignment becomes a direct member, so the link
/// then outlives the assignment.
pub async fn add_link(app: &App, caller: &Caller, group_id: &str, relation: GroupRelation, r: ObjectRef) -> Result<()> {
    caller.require(perms::GROUP_MEMBER_WRITE)?;
    let (key, caller2, r2) = (group_id.to_string(), caller.clone(), r.clone());
    app.store.read(move |c| check_add(c, &caller2, &key, relation, &r2).map(|_| ())).await?;
    let (key, caller) = (group_id.to_string(), caller.clone());
    app.store
        .write(move |c| {
            let (gid, object_id) = check_add(c, &caller, &key, relation, &r)?;
            set_direct(c, &gid, relation, &object_id)
        })
        .await
}

/// Removes a member or owner (`DELETE /groups/{id}/members/{memberId}/$ref`).
///
/// This clears the link's `direct` flag. When an access package assignment also delivers
/// the link (`granted > 0`), the membership stays until that assignment ends, and the
/// request still succeeds: the administrator's own link is gone. Entra has no such
/// concept (there, a group membership has one origin); Grantry keeps both so that
/// neither side can silently undo the other.
pub async fn remove_link(
    app: &App,
    caller: &Caller,
    group_id: &str,
    relation: GroupRelation,
    member_id: &str,
) -> Result<()> {
    caller.require(perms::GROUP_MEMBER_WRITE)?;
    let (key, member, caller) = (group_id.to_string(), ids::normalize(member_id), caller.clone());
    app.store
        .write(move |c| {
            let g = require_group(c, &key)?;
            require_membership_right(c, &caller, &g.id)?;
            if !membership::has_link(c, &g.id, relation, &member)? {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    "Request_ResourceNotFound",
                    format!("'{member}' is not in the {} of group '{}'.", relation_property(relation), g.id),
                ));
            }
            let params = [Value::from(&g.id), Value::from(relation.as_str()), Value::from(&member)];
            c.execute("UPDATE group_links SET direct = 0 WHERE group_id = ? AND relation = ? AND member_id = ?", &params)?;
            c.execute(
                "DELETE FROM group_links WHERE group_id = ? AND relation = ? AND member_id = ? AND direct = 0 AND granted <= 0",
                &params,
            )?;
            Ok(())
        })
        .await
}
