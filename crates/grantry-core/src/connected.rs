//! Connected organizations and the people around external users: the organizations'
//! CRUD and their internal and external sponsors, the sponsors of users, which
//! organization a requestor belongs to (by their domain or tenant), the `proposed`
//! organizations created for requestors of unknown domains, and the external user
//! lifecycle (a governed guest whose last assignment ended is blocked, then deleted).
//!
//! Authorization follows Entra: reading needs `EntitlementManagement.Read.All` (or
//! ReadWrite) and, for a delegated caller, an entitlement management role or a reader
//! directory role; changing needs `EntitlementManagement.ReadWrite.All` and, delegated,
//! Identity Governance Administrator (or Global Administrator) or the tenant-wide
//! Connected Organization Administrator role.

use crate::audit::{self, AuditEvent};
use crate::auth::perms;
use crate::listing::{ListOptions, Listed};
use crate::{App, Caller, Page, PageRequest};
use chrono::{DateTime, Utc};
use grantry_domain::enums::{ConnectedOrganizationState, ExternalUserLifecycleAction, SubjectLifecycle, UserType};
use grantry_domain::model::{ConnectedOrganization, Group, IdentitySource, SponsorList, Subject, User, em_roles};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::query::{Field, Kind};
use grantry_store::{Conn, Value, repo};
use serde_json::json;

/// Job: deletes a guest blocked by the external user lifecycle once its time has come.
pub const JOB_DELETE_GUEST: &str = "guest.delete";

/// Entra's limit of connected organizations per tenant.
pub const MAX_ORGANIZATIONS: i64 = 2500;

/// Input for a new connected organization (already shaped by the wire layer).
#[derive(Debug, Clone, Default)]
pub struct NewOrganization {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub identity_sources: Vec<IdentitySource>,
    pub state: Option<ConnectedOrganizationState>,
}

/// A PATCH: `None` leaves a property; `description: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct OrganizationPatch {
    pub display_name: Option<String>,
    pub description: Option<Option<String>>,
    pub state: Option<ConnectedOrganizationState>,
    /// Present when the body named `identitySources` (refused: they are fixed at creation).
    pub identity_sources: bool,
}

fn require_read(caller: &Caller) -> Result<()> {
    caller.require(perms::EM_READ)?;
    if caller.is_app()
        || caller.is_em_tenant_reader()
        || caller.has_tenant_em_role(em_roles::CONNECTED_ORGANIZATION_ADMINISTRATOR)
        || !caller.em_roles.is_empty()
    {
        return Ok(());
    }
    Err(Error::forbidden(
        "Reading connected organizations needs an entitlement management role (Connected Organization Administrator, a catalog role) or Identity Governance Administrator.",
    ))
}

fn require_write(caller: &Caller) -> Result<()> {
    caller.require(perms::EM_WRITE)?;
    if caller.is_app()
        || caller.is_em_admin()
        || caller.has_tenant_em_role(em_roles::CONNECTED_ORGANIZATION_ADMINISTRATOR)
    {
        return Ok(());
    }
    Err(Error::forbidden(
        "Changing connected organizations and their sponsors needs the Connected Organization Administrator or Identity Governance Administrator role.",
    ))
}

fn load(c: &mut dyn Conn, id: &str) -> Result<ConnectedOrganization> {
    repo::get::<ConnectedOrganization>(c, &ids::normalize(id))?
        .ok_or_else(|| Error::not_found("connected organization", id))
}

/// A domain name as Entra accepts one: labels of letters, digits and hyphens, at least two.
fn valid_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn check_sources(sources: &[IdentitySource]) -> Result<()> {
    if sources.len() != 1 {
        return Err(Error::invalid_property(
            "identitySources",
            format!(
                "'identitySources' must hold exactly one identity source (domainIdentitySource, azureActiveDirectoryTenant, externalDomainFederation or socialIdentitySource); it holds {}.",
                sources.len()
            ),
        ));
    }
    for (i, s) in sources.iter().enumerate() {
        match s {
            IdentitySource::Domain { domain_name, .. }
            | IdentitySource::ExternalDomainFederation { domain_name, .. } => {
                if !valid_domain(domain_name.trim()) {
                    return Err(Error::invalid_property(
                        &format!("identitySources[{i}].domainName"),
                        format!("'{domain_name}' is not a domain name; give one like fabrikam.com."),
                    ));
                }
            }
            IdentitySource::AzureActiveDirectoryTenant { tenant_id, .. } => {
                if uuid::Uuid::parse_str(tenant_id.trim()).is_err() {
                    return Err(Error::invalid_property(
                        &format!("identitySources[{i}].tenantId"),
                        format!("'{tenant_id}' is not a tenant id; give the tenant's GUID."),
                    ));
                }
            }
            IdentitySource::Social { .. } => {}
        }
        if let IdentitySource::ExternalDomainFederation { issuer_uri: Some(uri), .. } = s
            && !(uri.starts_with("https://") || uri.starts_with("http://"))
        {
            return Err(Error::invalid_property(
                &format!("identitySources[{i}].issuerUri"),
                format!("'{uri}' is not an absolute URL; give the federation's issuer URI."),
            ));
        }
    }
    Ok(())
}

/// The organization that holds `key` (a lower-case domain or tenant id), if any.
fn owner_of_key(c: &mut dyn Conn, key: &str) -> Result<Option<String>> {
    c.query_one("SELECT organization_id FROM connected_organization_keys WHERE key_lower = ?", &[Value::from(key)])?
        .map(|r| r.text(0))
        .transpose()
}

fn check_keys_free(c: &mut dyn Conn, org: &ConnectedOrganization) -> Result<()> {
    for s in &org.identity_sources {
        if let Some(other) = owner_of_key(c, &s.key())?
            && other != org.id
        {
            return Err(Error::conflict(
                "ConnectedOrganizationAlreadyExists",
                format!(
                    "Connected organization '{other}' already has the identity source '{}'; update or delete that organization instead.",
                    s.key()
                ),
            )
            .with_target("identitySources"));
        }
    }
    Ok(())
}

fn insert_org(c: &mut dyn Conn, org: &ConnectedOrganization) -> Result<()> {
    check_keys_free(c, org)?;
    repo::insert(c, org)?;
    for s in &org.identity_sources {
        c.execute(
            "INSERT INTO connected_organization_keys (key_lower, organization_id) VALUES (?, ?)",
            &[Value::from(s.key()), Value::from(&org.id)],
        )?;
    }
    Ok(())
}

fn audit_org(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    actor: Option<&str>,
    org: &ConnectedOrganization,
    action: &str,
) -> Result<()> {
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: actor,
            entity_type: "connectedOrganization",
            entity_id: &org.id,
            action,
            detail: json!({
                "displayName": org.display_name,
                "state": org.state.v1(),
                "identitySources": org.identity_sources.iter().map(|s| s.key()).collect::<Vec<_>>(),
            }),
        },
    )
}

pub async fn create_organization(app: &App, caller: &Caller, input: NewOrganization) -> Result<ConnectedOrganization> {
    require_write(caller)?;
    let display_name = input.display_name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
        Error::invalid_property("displayName", "'displayName' is required and must be a non-empty string.")
    })?;
    check_sources(&input.identity_sources)?;
    let actor = crate::catalogs::actor_name(app, caller).await?;
    let now = app.now();
    let org = ConnectedOrganization {
        id: ids::new_id(),
        display_name,
        description: input.description,
        identity_sources: input.identity_sources,
        state: input.state.unwrap_or(ConnectedOrganizationState::Configured),
        created_by: Some(actor.clone()),
        modified_by: Some(actor),
        created_date_time: now,
        modified_date_time: now,
    };
    let saved = org.clone();
    let actor_id = caller.id().to_string();
    app.store
        .write(move |c| {
            if repo::count(c, "connected_organizations", "1 = 1", &[])? >= MAX_ORGANIZATIONS {
                return Err(Error::bad_request(
                    "QuotaExceeded",
                    format!("A tenant may have at most {MAX_ORGANIZATIONS} connected organizations; delete one first."),
                ));
            }
            insert_org(c, &saved)?;
            audit_org(c, now, Some(&actor_id), &saved, "create")
        })
        .await?;
    Ok(org)
}

pub async fn get_organization(app: &App, caller: &Caller, id: &str) -> Result<ConnectedOrganization> {
    require_read(caller)?;
    let key = id.to_string();
    app.store.read(move |c| load(c, &key)).await
}

fn state_value(s: &str) -> Option<&'static str> {
    ConnectedOrganizationState::parse(s).map(|v| v.v1())
}

/// Filterable and sortable properties.
pub const ORGANIZATION_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field { names: &["description"], sql: "json_extract(body, '$.description')", kind: Kind::TextIgnoreCase },
    Field {
        names: &["state"],
        sql: "state",
        kind: Kind::Enum { normalize: state_value, allowed: ConnectedOrganizationState::allowed },
    },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field { names: &["modifiedDateTime"], sql: "modified_us", kind: Kind::Time },
];

pub async fn list_organizations(
    app: &App,
    caller: &Caller,
    options: ListOptions,
) -> Result<Listed<ConnectedOrganization>> {
    require_read(caller)?;
    app.store.read(move |c| crate::listing::list(c, ORGANIZATION_FIELDS, Vec::new(), &options)).await
}

/// The organizations with the given ids (for `$expand` of a subject), without
/// authorization: the caller may already read what names them.
pub async fn organizations_by_ids(app: &App, ids: Vec<String>) -> Result<Vec<ConnectedOrganization>> {
    crate::listing::find_in(app, "id", ids).await
}

pub async fn update_organization(
    app: &App,
    caller: &Caller,
    id: &str,
    patch: OrganizationPatch,
) -> Result<ConnectedOrganization> {
    require_write(caller)?;
    if patch.identity_sources {
        return Err(Error::invalid_property(
            "identitySources",
            "The identity sources of a connected organization cannot change after it is created; create another organization instead.",
        ));
    }
    if let Some(n) = &patch.display_name
        && n.trim().is_empty()
    {
        return Err(Error::invalid_property("displayName", "'displayName' must be a non-empty string."));
    }
    let actor = crate::catalogs::actor_name(app, caller).await?;
    let (key, now, actor_id) = (id.to_string(), app.now(), caller.id().to_string());
    app.store
        .write(move |c| {
            let mut org = load(c, &key)?;
            if let Some(n) = patch.display_name {
                org.display_name = n;
            }
            if let Some(d) = patch.description {
                org.description = d;
            }
            if let Some(s) = patch.state {
                org.state = s;
            }
            org.modified_by = Some(actor);
            org.modified_date_time = now;
            repo::update(c, &org)?;
            audit_org(c, now, Some(&actor_id), &org, "update")?;
            Ok(org)
        })
        .await
}

/// Deletes an organization with its sponsors. Refused while a policy names it in
/// `connectedOrganizationMembers` (remove it from the policy first).
pub async fn delete_organization(app: &App, caller: &Caller, id: &str) -> Result<()> {
    require_write(caller)?;
    let (key, now, actor_id) = (id.to_string(), app.now(), caller.id().to_string());
    app.store
        .write(move |c| {
            let org = load(c, &key)?;
            let pattern = format!("%{}%", org.id);
            let used = c.query_one("SELECT id FROM policies WHERE body LIKE ?", &[Value::from(pattern)])?;
            if let Some(row) = used {
                return Err(Error::conflict(
                    "ConnectedOrganizationInUse",
                    format!(
                        "Policy '{}' names connected organization '{}' in its connectedOrganizationMembers; remove it from the policy before deleting the organization.",
                        row.text(0)?,
                        org.id
                    ),
                ));
            }
            let oid = Value::from(&org.id);
            c.execute("DELETE FROM connected_organization_keys WHERE organization_id = ?", std::slice::from_ref(&oid))?;
            c.execute(
                "DELETE FROM sponsors WHERE owner_kind IN ('internal', 'external') AND owner_id = ?",
                std::slice::from_ref(&oid),
            )?;
            repo::delete::<ConnectedOrganization>(c, &org.id)?;
            audit_org(c, now, Some(&actor_id), &org, "delete")
        })
        .await
}

// ---------------------------------------------------------------------------------------
// Sponsors

/// A sponsor: a user or a group of this directory.
#[derive(Debug, Clone)]
pub enum Sponsor {
    User(User),
    Group(Group),
}

impl Sponsor {
    pub fn id(&self) -> &str {
        match self {
            Sponsor::User(u) => &u.id,
            Sponsor::Group(g) => &g.id,
        }
    }
}

/// The directory object `id` names, constrained by the entity set of its `@odata.id`
/// (`users`, `groups`, or `directoryObjects`/none for either).
fn directory_object(c: &mut dyn Conn, set: Option<&str>, id: &str, users_only: bool) -> Result<Sponsor> {
    let id = ids::normalize(id);
    let set = set.map(str::to_ascii_lowercase);
    let want_user = set.as_deref().is_none_or(|s| s == "users" || s == "directoryobjects");
    let want_group = !users_only && set.as_deref().is_none_or(|s| s == "groups" || s == "directoryobjects");
    if want_user && let Some(u) = repo::get::<User>(c, &id)? {
        return Ok(Sponsor::User(u));
    }
    if want_group && let Some(g) = repo::get::<Group>(c, &id)? {
        return Ok(Sponsor::Group(g));
    }
    let what = if users_only { "user" } else { "user or group" };
    Err(Error::new(
        ErrorKind::NotFound,
        "Request_ResourceNotFound",
        format!("No {what} with id '{id}' exists in the directory; '@odata.id' must name one."),
    )
    .with_target("@odata.id"))
}

fn owner_exists(c: &mut dyn Conn, list: SponsorList, owner_id: &str) -> Result<String> {
    match list {
        SponsorList::User => {
            crate::directory::find_user(c, owner_id)?.map(|u| u.id).ok_or_else(|| Error::not_found("user", owner_id))
        }
        _ => load(c, owner_id).map(|o| o.id),
    }
}

fn sponsors_property(list: SponsorList) -> &'static str {
    match list {
        SponsorList::Internal => "internalSponsors",
        SponsorList::External => "externalSponsors",
        SponsorList::User => "sponsors",
    }
}

fn require_sponsor_write(caller: &Caller, list: SponsorList) -> Result<()> {
    match list {
        SponsorList::User => crate::directory::require_user_admin(caller),
        _ => require_write(caller),
    }
}

fn require_sponsor_read(caller: &Caller, list: SponsorList) -> Result<()> {
    match list {
        SponsorList::User => caller.require(perms::USER_READ),
        _ => require_read(caller),
    }
}

/// Adds a sponsor (`POST …/$ref`). A user's sponsors are users or groups; so are an
/// organization's. A sponsor already present is refused as Graph refuses duplicate links.
pub async fn add_sponsor(
    app: &App,
    caller: &Caller,
    list: SponsorList,
    owner_id: &str,
    set: Option<String>,
    sponsor_id: &str,
) -> Result<()> {
    require_sponsor_write(caller, list)?;
    let (owner, sponsor, now, actor_id) =
        (owner_id.to_string(), sponsor_id.to_string(), app.now(), caller.id().to_string());
    app.store
        .write(move |c| {
            let owner = owner_exists(c, list, &owner)?;
            let sponsor = directory_object(c, set.as_deref(), &sponsor, false)?;
            if list == SponsorList::User && sponsor.id() == owner {
                return Err(Error::invalid_property("@odata.id", "A user cannot be their own sponsor."));
            }
            let exists = c.query_one(
                "SELECT 1 FROM sponsors WHERE owner_kind = ? AND owner_id = ? AND sponsor_id = ?",
                &[Value::from(list.as_str()), Value::from(&owner), Value::from(sponsor.id())],
            )?;
            if exists.is_some() {
                return Err(Error::bad_request(
                    "Request_BadRequest",
                    format!(
                        "One or more added object references already exist for the following modified properties: '{}'.",
                        sponsors_property(list)
                    ),
                )
                .with_target("@odata.id"));
            }
            let kind = if matches!(sponsor, Sponsor::User(_)) { "user" } else { "group" };
            c.execute(
                "INSERT INTO sponsors (owner_kind, owner_id, sponsor_id, sponsor_type) VALUES (?, ?, ?, ?)",
                &[Value::from(list.as_str()), Value::from(&owner), Value::from(sponsor.id()), Value::from(kind)],
            )?;
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: if list == SponsorList::User { "user" } else { "connectedOrganization" },
                    entity_id: &owner,
                    action: "addSponsor",
                    detail: json!({ "list": sponsors_property(list), "sponsorId": sponsor.id(), "sponsorType": kind }),
                },
            )
        })
        .await
}

/// Removes a sponsor (`DELETE …/{id}/$ref`).
pub async fn remove_sponsor(
    app: &App,
    caller: &Caller,
    list: SponsorList,
    owner_id: &str,
    sponsor_id: &str,
) -> Result<()> {
    require_sponsor_write(caller, list)?;
    let (owner, sponsor, now, actor_id) =
        (owner_id.to_string(), ids::normalize(sponsor_id), app.now(), caller.id().to_string());
    app.store
        .write(move |c| {
            let owner = owner_exists(c, list, &owner)?;
            let n = c.execute(
                "DELETE FROM sponsors WHERE owner_kind = ? AND owner_id = ? AND sponsor_id = ?",
                &[Value::from(list.as_str()), Value::from(&owner), Value::from(&sponsor)],
            )?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    "Request_ResourceNotFound",
                    format!("'{sponsor}' is not among the {} of '{owner}'.", sponsors_property(list)),
                ));
            }
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: if list == SponsorList::User { "user" } else { "connectedOrganization" },
                    entity_id: &owner,
                    action: "removeSponsor",
                    detail: json!({ "list": sponsors_property(list), "sponsorId": sponsor }),
                },
            )
        })
        .await
}

/// The sponsors in `list` of `owner_id`, one keyset page, as the users and groups they are.
pub async fn list_sponsors(
    app: &App,
    caller: &Caller,
    list: SponsorList,
    owner_id: &str,
    page: PageRequest,
) -> Result<Page<Sponsor>> {
    require_sponsor_read(caller, list)?;
    let owner = owner_id.to_string();
    app.store
        .read(move |c| {
            let owner = owner_exists(c, list, &owner)?;
            let rows = c.query(
                &format!(
                    "SELECT seq, sponsor_id, sponsor_type FROM sponsors WHERE owner_kind = ? AND owner_id = ? AND seq > ? ORDER BY seq LIMIT {}",
                    page.size + 1
                ),
                &[Value::from(list.as_str()), Value::from(&owner), Value::from(page.after_seq.unwrap_or(0))],
            )?;
            let mut out = Vec::new();
            for r in rows {
                let (seq, id, kind) = (r.int(0)?, r.text(1)?, r.text(2)?);
                let found = if kind == "group" {
                    repo::get::<Group>(c, &id)?.map(Sponsor::Group)
                } else {
                    repo::get::<User>(c, &id)?.map(Sponsor::User)
                };
                if let Some(s) = found {
                    out.push((seq, s));
                }
            }
            Ok(Page::from_rows(out, page.size))
        })
        .await
}

/// The users `list` of `owner_id` resolves to (groups expanded to their members), in order.
pub(crate) fn sponsor_user_ids(c: &mut dyn Conn, list: SponsorList, owner_id: &str) -> Result<Vec<String>> {
    let rows = c.query(
        "SELECT sponsor_id, sponsor_type FROM sponsors WHERE owner_kind = ? AND owner_id = ? ORDER BY seq",
        &[Value::from(list.as_str()), Value::from(owner_id)],
    )?;
    let mut out = Vec::new();
    for r in rows {
        let (id, kind) = (r.text(0)?, r.text(1)?);
        if kind == "group" {
            out.extend(crate::membership::member_ids(c, &id)?);
        } else {
            out.push(id);
        }
    }
    Ok(out)
}

/// Drops every sponsor link to or from a deleted user or group.
pub(crate) fn forget_directory_object(c: &mut dyn Conn, id: &str) -> Result<()> {
    c.execute("DELETE FROM sponsors WHERE sponsor_id = ?", &[Value::from(id)])?;
    c.execute("DELETE FROM sponsors WHERE owner_kind = 'user' AND owner_id = ?", &[Value::from(id)])?;
    c.execute("DELETE FROM guest_lifecycle WHERE user_id = ?", &[Value::from(id)])?;
    Ok(())
}

/// Refuses a policy whose `connectedOrganizationMembers` name an organization that does
/// not exist.
pub(crate) fn check_policy_organizations(c: &mut dyn Conn, policy: &grantry_domain::model::Policy) -> Result<()> {
    for (i, s) in policy.specific_allowed_targets.iter().enumerate() {
        if let grantry_domain::model::SubjectSet::ConnectedOrganizationMembers {
            connected_organization_id: Some(id),
            ..
        } = s
            && repo::get::<ConnectedOrganization>(c, &ids::normalize(id))?.is_none()
        {
            return Err(Error::invalid_property(
                &format!("specificAllowedTargets[{i}].connectedOrganizationId"),
                format!("No connected organization with id '{id}' exists; create it first or name an existing one."),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Which organization a requestor belongs to

/// The home domain of an external user: from a guest's `…#EXT#@…` user principal name
/// (`adele_fabrikam.com#EXT#@contoso.com` → `fabrikam.com`), else their mail's domain, else
/// their user principal name's.
pub fn home_domain(user: &User) -> Option<String> {
    let upn = user.user_principal_name.to_ascii_lowercase();
    if let Some((local, _)) = upn.split_once("#ext#")
        && let Some((_, domain)) = local.rsplit_once('_')
        && !domain.is_empty()
    {
        return Some(domain.to_string());
    }
    user.mail.as_deref().and_then(email_domain).or_else(|| email_domain(&user.user_principal_name))
}

/// The domain of an email address, lower case.
pub fn email_domain(email: &str) -> Option<String> {
    email.trim().rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).filter(|d| !d.is_empty())
}

/// What identifies where an external requestor comes from: their home domain and, from
/// the issuers of their identities, a tenant id or a federation domain.
pub fn requestor_keys(user: Option<&User>, email: Option<&str>) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(u) = user {
        for issuer in u.profile.identity_issuers() {
            let issuer = issuer.trim().to_ascii_lowercase();
            // An Entra issuer names the tenant: https://login.microsoftonline.com/{tid}/v2.0 or sts.windows.net/{tid}/.
            let tenant = issuer.split('/').find(|p| uuid::Uuid::parse_str(p).is_ok());
            match tenant {
                Some(t) => keys.push(t.to_string()),
                None if issuer == "facebook.com" => keys.push("social:facebook".into()),
                None => {
                    let host = issuer.trim_start_matches("https://").trim_start_matches("http://");
                    let host = host.split('/').next().unwrap_or_default();
                    if !host.is_empty() {
                        keys.push(host.to_string());
                    }
                }
            }
        }
        keys.extend(home_domain(u));
    }
    if let Some(d) = email.and_then(email_domain) {
        keys.push(d);
    }
    keys.dedup();
    keys
}

/// The connected organization of an external requestor, if one matches.
pub(crate) fn organization_of(
    c: &mut dyn Conn,
    user: Option<&User>,
    email: Option<&str>,
) -> Result<Option<ConnectedOrganization>> {
    if user.is_some_and(|u| u.user_type != UserType::Guest) {
        return Ok(None);
    }
    for key in requestor_keys(user, email) {
        if let Some(id) = owner_of_key(c, &key)? {
            return repo::get::<ConnectedOrganization>(c, &id);
        }
    }
    Ok(None)
}

/// The organization of the subject a request is for: the one recorded on the subject, or
/// the one its user or email matches now.
pub(crate) fn organization_id_of_subject(c: &mut dyn Conn, subject: &Subject) -> Result<Option<String>> {
    if let Some(id) = &subject.connected_organization_id
        && repo::get::<ConnectedOrganization>(c, id)?.is_some()
    {
        return Ok(Some(id.clone()));
    }
    let user = match &subject.object_id {
        Some(o) => repo::get::<User>(c, o)?,
        None => None,
    };
    Ok(organization_of(c, user.as_ref(), subject.email.as_deref())?.map(|o| o.id))
}

/// Creates the `proposed` organization for a requestor of an unknown domain (Entra does so
/// when such a user requests under a policy for all external users).
pub(crate) fn propose(c: &mut dyn Conn, now: DateTime<Utc>, domain: &str) -> Result<ConnectedOrganization> {
    let domain = domain.to_ascii_lowercase();
    if let Some(id) = owner_of_key(c, &domain)?
        && let Some(org) = repo::get::<ConnectedOrganization>(c, &id)?
    {
        return Ok(org);
    }
    let org = ConnectedOrganization {
        id: ids::new_id(),
        display_name: domain.clone(),
        description: Some(format!("Proposed when a user of {domain} requested access.")),
        identity_sources: vec![IdentitySource::Domain {
            domain_name: domain.clone(),
            display_name: Some(domain.clone()),
        }],
        state: ConnectedOrganizationState::Proposed,
        created_by: Some("Entitlement management".into()),
        modified_by: Some("Entitlement management".into()),
        created_date_time: now,
        modified_date_time: now,
    };
    insert_org(c, &org)?;
    audit_org(c, now, None, &org, "propose")?;
    Ok(org)
}

// ---------------------------------------------------------------------------------------
// External user lifecycle

/// Called in the transaction that ends an assignment: when the target is a governed guest
/// with no active assignment left and the tenant settings say so, the guest is blocked from
/// signing in now and, with `blockSignInAndDelete`, deleted when the settings' duration has
/// passed (a `guest.delete` job).
pub(crate) fn assignment_ended(c: &mut dyn Conn, now: DateTime<Utc>, subject_id: &str) -> Result<()> {
    let settings = crate::catalogs::load_settings(c)?;
    if settings.external_user_lifecycle_action == ExternalUserLifecycleAction::None {
        return Ok(());
    }
    let Some(subject) = repo::get::<Subject>(c, subject_id)? else { return Ok(()) };
    if subject.subject_lifecycle != SubjectLifecycle::Governed {
        return Ok(());
    }
    let Some(mut user) = subject.object_id.as_deref().map(|o| repo::get::<User>(c, o)).transpose()?.flatten() else {
        return Ok(());
    };
    if user.user_type != UserType::Guest || holds_access(c, &user.id)? {
        return Ok(());
    }
    let delete_due = match settings.external_user_lifecycle_action {
        ExternalUserLifecycleAction::BlockSignInAndDelete => {
            let after = settings.duration_until_external_user_deleted_after_blocked.unwrap_or_default();
            Some(now.checked_add_signed(after).unwrap_or(now))
        }
        _ => None,
    };
    if user.account_enabled {
        user.account_enabled = false;
        repo::update(c, &user)?;
        crate::autoassign::user_changed(c, now, &user.id)?;
    }
    c.execute("DELETE FROM guest_lifecycle WHERE user_id = ?", &[Value::from(&user.id)])?;
    c.execute(
        "INSERT INTO guest_lifecycle (user_id, blocked_us, delete_due_us) VALUES (?, ?, ?)",
        &[Value::from(&user.id), Value::from(now), delete_due.map(Value::from).unwrap_or(Value::Null)],
    )?;
    crate::jobs::cancel(c, JOB_DELETE_GUEST, &user.id)?;
    if let Some(due) = delete_due {
        crate::jobs::enqueue(c, JOB_DELETE_GUEST, &user.id, due, json!({}))?;
    }
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: None,
            entity_type: "user",
            entity_id: &user.id,
            action: "guestBlocked",
            detail: json!({
                "reason": "lastAssignmentEnded",
                "externalUserLifecycleAction": settings.external_user_lifecycle_action.v1(),
                "deleteDateTime": delete_due.map(|d| d.to_rfc3339()),
            }),
        },
    )
}

/// Called when an assignment is delivered: a guest that the lifecycle blocked gets their
/// sign-in back and is no longer due for deletion.
pub(crate) fn assignment_delivered(c: &mut dyn Conn, now: DateTime<Utc>, user_id: &str) -> Result<()> {
    let n = c.execute("DELETE FROM guest_lifecycle WHERE user_id = ?", &[Value::from(user_id)])?;
    if n == 0 {
        return Ok(());
    }
    crate::jobs::cancel(c, JOB_DELETE_GUEST, user_id)?;
    if let Some(mut user) = repo::get::<User>(c, user_id)?
        && !user.account_enabled
    {
        user.account_enabled = true;
        repo::update(c, &user)?;
        crate::autoassign::user_changed(c, now, user_id)?;
        audit::record(
            c,
            AuditEvent {
                at: now,
                actor_id: None,
                entity_type: "user",
                entity_id: user_id,
                action: "guestUnblocked",
                detail: json!({ "reason": "assignmentDelivered" }),
            },
        )?;
    }
    Ok(())
}

/// Whether any subject of `user_id` holds an active assignment.
fn holds_access(c: &mut dyn Conn, user_id: &str) -> Result<bool> {
    Ok(c
        .query_one(
            "SELECT 1 FROM assignments a JOIN subjects s ON s.id = a.target_subject_id WHERE s.object_id = ? AND a.active = 1",
            &[Value::from(user_id)],
        )?
        .is_some())
}

fn delete_guest_job(ctx: &crate::jobs::JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let row =
        c.query_one("SELECT delete_due_us FROM guest_lifecycle WHERE user_id = ?", &[Value::from(&job.entity_id)])?;
    let Some(row) = row else { return Ok(()) };
    let due = row.opt_int(0)?;
    let Some(due) = due else { return Ok(()) };
    if due > ctx.now.timestamp_micros() {
        return Ok(());
    }
    let Some(user) = repo::get::<User>(c, &job.entity_id)? else {
        c.execute("DELETE FROM guest_lifecycle WHERE user_id = ?", &[Value::from(&job.entity_id)])?;
        return Ok(());
    };
    // An administrator who re-enabled the guest, or access granted since, keeps them.
    if user.account_enabled || holds_access(c, &user.id)? {
        c.execute("DELETE FROM guest_lifecycle WHERE user_id = ?", &[Value::from(&user.id)])?;
        return Ok(());
    }
    audit::record(
        c,
        AuditEvent {
            at: ctx.now,
            actor_id: None,
            entity_type: "user",
            entity_id: &user.id,
            action: "guestDeleted",
            detail: json!({ "reason": "externalUserLifecycle", "userPrincipalName": user.user_principal_name }),
        },
    )?;
    crate::directory::delete_user_rows(c, ctx.now, &user)
}

pub(crate) fn handler(kind: &str) -> Option<crate::jobs::Handler> {
    match kind {
        JOB_DELETE_GUEST => Some(delete_guest_job),
        _ => None,
    }
}
