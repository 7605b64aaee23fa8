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
/// Job: revisits the guests the lifecycle blocked after the tenant settings changed
/// (entity: [`SETTINGS_ENTITY`]).
pub const JOB_REVISIT_GUESTS: &str = "guest.revisit";
const SETTINGS_ENTITY: &str = "em_settings";
/// Blocked guests revisited per run of `guest.revisit`, so a change touching many guests
/// never holds the writer long.
const REVISIT_CHUNK: usize = 200;

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

/// The keys an organization may hold for requestor key `key`, most specific first: the key
/// itself and, for a domain, each parent domain of at least two labels
/// (`eng.emea.contoso.com` → `emea.contoso.com` → `contoso.com`). Tenant ids and social
/// sources have no parents.
pub fn key_and_parents(key: &str) -> Vec<&str> {
    let mut out = vec![key];
    if key.contains(':') || uuid::Uuid::parse_str(key).is_ok() {
        return out;
    }
    let mut rest = key;
    while let Some((_, parent)) = rest.split_once('.') {
        if !parent.contains('.') {
            break;
        }
        out.push(parent);
        rest = parent;
    }
    out
}

/// The organization holding `key` or, for a domain, the nearest parent domain: a user at
/// `eng.contoso.com` belongs to the organization of `contoso.com` unless one holds
/// `eng.contoso.com` itself (the most specific organization wins).
fn owner_of_domain(c: &mut dyn Conn, key: &str) -> Result<Option<String>> {
    for k in key_and_parents(key) {
        if let Some(id) = owner_of_key(c, k)? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The connected organization of an external requestor, if one matches: the requestor's
/// keys are tried in order (tenant, federation issuer, home domain, mail domain), each as it
/// is and then by its parent domains.
pub(crate) fn organization_of(
    c: &mut dyn Conn,
    user: Option<&User>,
    email: Option<&str>,
) -> Result<Option<ConnectedOrganization>> {
    if user.is_some_and(|u| u.user_type != UserType::Guest) {
        return Ok(None);
    }
    for key in requestor_keys(user, email) {
        if let Some(id) = owner_of_domain(c, &key)? {
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
    if let Some(id) = owner_of_domain(c, &domain)?
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
// Subjects (`entitlementManagement/subjects/{id}` and `subjects(objectId='…')`)

/// How a call names a subject: by its id, or by Graph's alternate key, the directory
/// object id (`subjects(objectId='…')`).
#[derive(Debug, Clone)]
pub enum SubjectKey {
    Id(String),
    ObjectId(String),
}

/// A subject with what is shown beside it: its connected organization (recorded, or the
/// one its domain or tenant matches now) and, for a guest the external user lifecycle
/// blocked, when it is due for deletion (beta `cleanupScheduledDateTime`).
#[derive(Debug, Clone)]
pub struct SubjectRead {
    pub subject: Subject,
    pub organization: Option<ConnectedOrganization>,
    pub cleanup_scheduled: Option<DateTime<Utc>>,
}

/// A subject PATCH: `subjectLifecycle`, and (beta) the connected organization
/// (`Some(None)` clears the recorded one, so the domain decides again).
#[derive(Debug, Clone, Default)]
pub struct SubjectPatch {
    pub subject_lifecycle: Option<SubjectLifecycle>,
    pub connected_organization_id: Option<Option<String>>,
}

fn find_subject(c: &mut dyn Conn, key: &SubjectKey) -> Result<Subject> {
    let found = match key {
        SubjectKey::Id(id) => repo::get::<Subject>(c, &ids::normalize(id))?,
        SubjectKey::ObjectId(oid) => {
            repo::find_one::<Subject>(c, "object_id = ?", &[Value::from(ids::normalize(oid))])?
        }
    };
    found.ok_or_else(|| match key {
        SubjectKey::Id(id) => Error::not_found("access package subject", id),
        SubjectKey::ObjectId(oid) => Error::not_found("access package subject with objectId", oid),
    })
}

fn read_subject(c: &mut dyn Conn, subject: Subject) -> Result<SubjectRead> {
    let organization = match organization_id_of_subject(c, &subject)? {
        Some(id) => repo::get::<ConnectedOrganization>(c, &id)?,
        None => None,
    };
    let cleanup_scheduled = match &subject.object_id {
        Some(oid) => c
            .query_one("SELECT delete_due_us FROM guest_lifecycle WHERE user_id = ?", &[Value::from(oid)])?
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten()
            .and_then(DateTime::<Utc>::from_timestamp_micros),
        None => None,
    };
    Ok(SubjectRead { subject, organization, cleanup_scheduled })
}

/// GET of a subject: entitlement management readers (as for connected organizations).
pub async fn get_subject(app: &App, caller: &Caller, key: SubjectKey) -> Result<SubjectRead> {
    require_read(caller)?;
    app.store
        .read(move |c| {
            let subject = find_subject(c, &key)?;
            read_subject(c, subject)
        })
        .await
}

/// Who may change a subject: applications with ReadWrite and, delegated, Identity
/// Governance Administrator, Connected Organization Administrator or a catalog owner
/// (Entra names Catalog owner the least privileged role).
fn require_subject_write(caller: &Caller) -> Result<()> {
    caller.require(perms::EM_WRITE)?;
    let owns_a_catalog = caller.em_roles.iter().any(|(_, scope)| {
        scope
            .strip_prefix(em_roles::CATALOG_SCOPE_PREFIX)
            .is_some_and(|id| caller.catalog_right(id) == Some(crate::auth::CatalogRight::Own))
    });
    if caller.is_app()
        || caller.is_em_admin()
        || caller.has_tenant_em_role(em_roles::CONNECTED_ORGANIZATION_ADMINISTRATOR)
        || owns_a_catalog
    {
        return Ok(());
    }
    Err(Error::forbidden(
        "Changing a subject needs the Catalog owner, Connected Organization Administrator or Identity Governance Administrator role.",
    ))
}

/// PATCH of a subject. `subjectLifecycle` says whether the external user lifecycle
/// governs the guest: made `notGoverned` (or `notDefined`), a guest it blocked is released
/// (sign-in back, no deletion pending); made `governed`, the guest is blocked when their
/// last assignment ends. A connected organization given (beta) must exist; it is the
/// subject's organization from then on, whatever its domain.
pub async fn update_subject(app: &App, caller: &Caller, key: SubjectKey, patch: SubjectPatch) -> Result<SubjectRead> {
    require_subject_write(caller)?;
    let actor = caller.id().to_string();
    let now = app.now();
    let out = app
        .store
        .write(move |c| {
            let mut subject = find_subject(c, &key)?;
            let before = subject.clone();
            match &patch.connected_organization_id {
                Some(Some(org)) => {
                    let org = repo::get::<ConnectedOrganization>(c, &ids::normalize(org))?.ok_or_else(|| {
                        Error::invalid_property(
                            "connectedOrganizationId",
                            format!(
                                "Connected organization '{org}' does not exist; give the id of an existing one, or null."
                            ),
                        )
                    })?;
                    subject.connected_organization_id = Some(org.id);
                }
                Some(None) => subject.connected_organization_id = None,
                None => {}
            }
            if let Some(l) = patch.subject_lifecycle {
                subject.subject_lifecycle = l;
            }
            if subject == before {
                return read_subject(c, subject);
            }
            repo::update(c, &subject)?;
            if subject.subject_lifecycle != SubjectLifecycle::Governed
                && before.subject_lifecycle == SubjectLifecycle::Governed
                && let Some(oid) = &subject.object_id
            {
                release(c, now, oid, "subjectNotGoverned")?;
            }
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor),
                    entity_type: "accessPackageSubject",
                    entity_id: &subject.id,
                    action: "update",
                    detail: json!({
                        "objectId": subject.object_id,
                        "subjectLifecycle": subject.subject_lifecycle.v1(),
                        "connectedOrganizationId": subject.connected_organization_id,
                    }),
                },
            )?;
            read_subject(c, subject)
        })
        .await?;
    Ok(out)
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
    let delete_due = deletion_due(&settings, now.timestamp_micros());
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
    release(c, now, user_id, "assignmentDelivered")
}

/// Releases a guest the lifecycle blocked (if it did): no longer due for deletion, and
/// sign-in back, recorded with `reason`.
fn release(c: &mut dyn Conn, now: DateTime<Utc>, user_id: &str, reason: &str) -> Result<()> {
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
                detail: json!({ "reason": reason }),
            },
        )?;
    }
    Ok(())
}

/// Called in the transaction that changes the tenant settings: when the lifecycle action
/// or the time until deletion changed, the guests already blocked are revisited (in the
/// background, [`REVISIT_CHUNK`] at a time) so they follow the new settings.
pub(crate) fn settings_changed(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    before: &grantry_domain::model::Settings,
    after: &grantry_domain::model::Settings,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    crate::jobs::cancel(c, JOB_REVISIT_GUESTS, SETTINGS_ENTITY)?;
    crate::jobs::enqueue(c, JOB_REVISIT_GUESTS, SETTINGS_ENTITY, now, json!({}))
}

/// When a guest blocked at `blocked_us` is due for deletion under `settings` (none unless
/// the action is `blockSignInAndDelete`).
fn deletion_due(settings: &grantry_domain::model::Settings, blocked_us: i64) -> Option<DateTime<Utc>> {
    if settings.external_user_lifecycle_action != ExternalUserLifecycleAction::BlockSignInAndDelete {
        return None;
    }
    let blocked = DateTime::<Utc>::from_timestamp_micros(blocked_us)?;
    let after = settings.duration_until_external_user_deleted_after_blocked.unwrap_or_default();
    Some(blocked.checked_add_signed(after).unwrap_or(blocked))
}

/// Job `guest.revisit`: the blocked guests (after user id `after`) follow the current
/// settings. With `none` they are released (sign-in back, nothing pending); with
/// `blockSignIn` they stay blocked and are no longer due for deletion; with
/// `blockSignInAndDelete` their deletion falls due the new duration after they were
/// blocked (at once if that time has passed).
fn revisit_job(ctx: &crate::jobs::JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let settings = crate::catalogs::load_settings(c)?;
    let after = job.payload.get("after").and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
    let rows = c.query(
        &format!(
            "SELECT user_id, blocked_us, delete_due_us FROM guest_lifecycle WHERE user_id > ? ORDER BY user_id LIMIT {REVISIT_CHUNK}"
        ),
        &[Value::from(after)],
    )?;
    let mut last = None;
    for row in &rows {
        let (user_id, blocked_us, due_us) = (row.text(0)?, row.int(1)?, row.opt_int(2)?);
        last = Some(user_id.clone());
        if settings.external_user_lifecycle_action == ExternalUserLifecycleAction::None {
            release(c, ctx.now, &user_id, "lifecycleSettingsChanged")?;
            continue;
        }
        let due = deletion_due(&settings, blocked_us);
        if due.map(|d| d.timestamp_micros()) == due_us {
            continue;
        }
        c.execute(
            "UPDATE guest_lifecycle SET delete_due_us = ? WHERE user_id = ?",
            &[due.map(Value::from).unwrap_or(Value::Null), Value::from(&user_id)],
        )?;
        crate::jobs::cancel(c, JOB_DELETE_GUEST, &user_id)?;
        if let Some(due) = due {
            crate::jobs::enqueue(c, JOB_DELETE_GUEST, &user_id, due.max(ctx.now), json!({}))?;
        }
        audit::record(
            c,
            AuditEvent {
                at: ctx.now,
                actor_id: None,
                entity_type: "user",
                entity_id: &user_id,
                action: "guestDeletionRescheduled",
                detail: json!({
                    "reason": "lifecycleSettingsChanged",
                    "externalUserLifecycleAction": settings.external_user_lifecycle_action.v1(),
                    "deleteDateTime": due.map(|d| d.to_rfc3339()),
                }),
            },
        )?;
    }
    match last {
        Some(last) if rows.len() == REVISIT_CHUNK => {
            crate::jobs::enqueue(c, JOB_REVISIT_GUESTS, SETTINGS_ENTITY, ctx.now, json!({ "after": last }))
        }
        _ => Ok(()),
    }
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
        // The deletion moved later (the settings changed): wait for it.
        let at = DateTime::<Utc>::from_timestamp_micros(due).unwrap_or(ctx.now);
        return crate::jobs::enqueue(c, JOB_DELETE_GUEST, &job.entity_id, at, json!({}));
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
        JOB_REVISIT_GUESTS => Some(revisit_job),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::key_and_parents;

    #[test]
    fn a_domain_matches_itself_then_its_parents_but_never_a_bare_top_level_domain() {
        assert_eq!(
            key_and_parents("eng.emea.contoso.com"),
            ["eng.emea.contoso.com", "emea.contoso.com", "contoso.com"]
        );
        assert_eq!(key_and_parents("contoso.com"), ["contoso.com"]);
        assert_eq!(key_and_parents("contoso.co.uk"), ["contoso.co.uk", "co.uk"]);
        assert_eq!(key_and_parents("social:facebook"), ["social:facebook"]);
        let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert_eq!(key_and_parents(tenant), [tenant]);
    }
}
