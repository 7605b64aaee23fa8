//! Catalogs, the built-in "General" catalog, and the tenant's entitlement management
//! settings.

use crate::auth::{CatalogRight, perms};
use crate::listing::{ListOptions, Listed};
use crate::{App, Caller, Page, PageRequest, audit};
use grantry_domain::enums::{CatalogState, CatalogType};
use grantry_domain::model::{
    AccessPackage, Catalog, RoleAssignment, RoleProvider, Settings, User, directory_roles as dr, em_roles,
};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::query::{Field, Kind, Sql};
use grantry_store::{Conn, Value, repo};

/// Adds `catalog_column IN (...)` for the catalogs a delegated caller may read.
pub(crate) fn readable_clause(
    caller: &Caller,
    catalog_column: &str,
    clauses: &mut Vec<String>,
    params: &mut Vec<Value>,
) {
    if let Some(ids) = caller.readable_catalogs() {
        if ids.is_empty() {
            clauses.push("1 = 0".into());
        } else {
            clauses.push(format!("{catalog_column} IN ({})", vec!["?"; ids.len()].join(", ")));
            params.extend(ids.into_iter().map(Value::from));
        }
    }
}

pub(crate) fn join_where(clauses: &[String]) -> String {
    clauses.iter().filter(|c| !c.trim().is_empty()).map(|c| format!("({c})")).collect::<Vec<_>>().join(" AND ")
}

/// The name recorded in `createdBy` / `modifiedBy`: a user's principal name, an
/// application's display name (or id).
pub(crate) async fn actor_name(app: &App, caller: &Caller) -> Result<String> {
    match caller.user_id() {
        Some(id) => {
            let id = id.to_string();
            let fallback = id.clone();
            let user: Option<User> = app.store.read(move |c| repo::get(c, &id)).await?;
            Ok(user.map(|u| u.user_principal_name).unwrap_or(fallback))
        }
        None => Ok(caller.principal.display_name.clone().unwrap_or_else(|| caller.id().to_string())),
    }
}

pub const GENERAL_CATALOG_NAME: &str = "General";

/// Creates the built-in "General" catalog (`serviceDefault`) when the tenant has none.
pub async fn ensure_defaults(app: &App) -> Result<()> {
    let now = app.now();
    app.store
        .write(move |c| {
            let existing =
                repo::count(c, "catalogs", "catalog_type = ?", &[Value::from(CatalogType::ServiceDefault.v1())])?;
            if existing > 0 {
                return Ok(());
            }
            let general = Catalog {
                id: ids::new_id(),
                display_name: GENERAL_CATALOG_NAME.into(),
                description: Some("Built-in catalog.".into()),
                is_externally_visible: true,
                state: CatalogState::Published,
                catalog_type: CatalogType::ServiceDefault,
                unique_name: None,
                created_by: None,
                modified_by: None,
                created_date_time: now,
                modified_date_time: now,
            };
            repo::insert(c, &general)
        })
        .await
}

#[derive(Debug, Clone, Default)]
pub struct NewCatalog {
    pub display_name: String,
    pub description: Option<String>,
    pub is_externally_visible: Option<bool>,
    pub state: Option<CatalogState>,
    pub unique_name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CatalogPatch {
    pub display_name: Option<String>,
    pub description: Option<Option<String>>,
    pub is_externally_visible: Option<bool>,
    pub state: Option<CatalogState>,
    pub unique_name: Option<Option<String>>,
}

fn unique_name_taken(name: &str) -> Error {
    Error::conflict(
        "UniqueNameAlreadyExists",
        format!("Another object already has the uniqueName '{name}'; choose a different one."),
    )
    .with_target("uniqueName")
}

/// Who may create catalogs: applications with ReadWrite, and delegated Identity Governance
/// or Global Administrators and holders of the tenant-wide Catalog creator role.
fn require_catalog_creator(caller: &Caller) -> Result<()> {
    caller.require(perms::EM_WRITE)?;
    if caller.is_app() || caller.is_em_admin() || caller.has_tenant_em_role(em_roles::CATALOG_CREATOR) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "Creating a catalog needs the Catalog creator role (or Identity Governance Administrator).",
        ))
    }
}

pub async fn create_catalog(app: &App, caller: &Caller, input: NewCatalog) -> Result<Catalog> {
    require_catalog_creator(caller)?;
    let actor = actor_name(app, caller).await?;
    let now = app.now();
    let catalog = Catalog {
        id: ids::new_id(),
        display_name: input.display_name,
        description: input.description,
        is_externally_visible: input.is_externally_visible.unwrap_or(false),
        state: input.state.unwrap_or(CatalogState::Published),
        catalog_type: CatalogType::UserManaged,
        unique_name: input.unique_name,
        created_by: Some(actor.clone()),
        modified_by: Some(actor),
        created_date_time: now,
        modified_date_time: now,
    };
    let owner = caller.user_id().map(|user_id| RoleAssignment {
        id: ids::new_id(),
        provider: RoleProvider::EntitlementManagement,
        principal_id: user_id.to_string(),
        role_definition_id: em_roles::CATALOG_OWNER.to_string(),
        directory_scope_id: None,
        app_scope_id: Some(format!("{}{}", em_roles::CATALOG_SCOPE_PREFIX, catalog.id)),
        created_date_time: now,
    });
    let saved = catalog.clone();
    let actor_id = caller.id().to_string();
    let unique = catalog.unique_name.clone();
    app.store
        .write(move |c| {
            repo::insert(c, &saved)?;
            if let Some(owner) = &owner {
                repo::insert(c, owner)?;
            }
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "catalog",
                    entity_id: &saved.id,
                    action: "create",
                    detail: serde_json::json!({ "displayName": saved.display_name }),
                },
            )
        })
        .await
        .map_err(|e| match (&e.kind, unique) {
            (ErrorKind::Conflict, Some(u)) => unique_name_taken(&u),
            _ => e,
        })?;
    Ok(catalog)
}

pub(crate) fn load_catalog(c: &mut dyn Conn, id: &str) -> Result<Catalog> {
    repo::get(c, &ids::normalize(id))?.ok_or_else(|| Error::not_found("catalog", id))
}

pub async fn get_catalog(app: &App, caller: &Caller, id: &str) -> Result<Catalog> {
    caller.require(perms::EM_READ)?;
    let key = id.to_string();
    let catalog = app.store.read(move |c| load_catalog(c, &key)).await?;
    caller.require_in_catalog(&catalog.id, CatalogRight::Read)?;
    Ok(catalog)
}

/// Several catalogs by id (for `$expand`), without authorization: the caller has already
/// been allowed to read the objects that point at them.
pub async fn catalogs_by_ids(app: &App, ids: Vec<String>) -> Result<Vec<Catalog>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    app.store
        .read(move |c| {
            let sql = format!("id IN ({})", vec!["?"; ids.len()].join(", "));
            let params: Vec<Value> = ids.into_iter().map(Value::from).collect();
            repo::find_all(c, &sql, &params)
        })
        .await
}

fn catalog_state(s: &str) -> Option<&'static str> {
    CatalogState::parse(s).map(|v| v.v1())
}
fn catalog_type(s: &str) -> Option<&'static str> {
    CatalogType::parse(s).map(|v| v.v1())
}

/// Filterable and sortable catalog properties.
pub const CATALOG_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field { names: &["description"], sql: "json_extract(body, '$.description')", kind: Kind::TextIgnoreCase },
    Field {
        names: &["state", "catalogStatus"],
        sql: "state",
        kind: Kind::Enum { normalize: catalog_state, allowed: CatalogState::allowed },
    },
    Field {
        names: &["catalogType"],
        sql: "catalog_type",
        kind: Kind::Enum { normalize: catalog_type, allowed: CatalogType::allowed },
    },
    Field { names: &["uniqueName"], sql: "unique_name", kind: Kind::TextIgnoreCase },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field { names: &["modifiedDateTime"], sql: "modified_us", kind: Kind::Time },
];

/// The catalogs a delegated caller may read, as a scope condition on `catalog_column`.
pub(crate) fn readable_scope(caller: &Caller, catalog_column: &str) -> Vec<Sql> {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    readable_clause(caller, catalog_column, &mut clauses, &mut params);
    clauses.into_iter().map(|text| Sql { text, params: std::mem::take(&mut params) }).collect()
}

pub async fn list_catalogs(app: &App, caller: &Caller, options: ListOptions) -> Result<Listed<Catalog>> {
    caller.require(perms::EM_READ)?;
    let scope = readable_scope(caller, "id");
    app.store.read(move |c| crate::listing::list(c, CATALOG_FIELDS, scope, &options)).await
}

pub async fn update_catalog(app: &App, caller: &Caller, id: &str, patch: CatalogPatch) -> Result<()> {
    caller.require(perms::EM_WRITE)?;
    let key = id.to_string();
    let mut catalog = app.store.read(move |c| load_catalog(c, &key)).await?;
    caller.require_in_catalog(&catalog.id, CatalogRight::Own)?;
    if catalog.catalog_type != CatalogType::UserManaged && patch.unique_name.is_some() {
        return Err(Error::bad_request("BadRequest", "The uniqueName of a built-in catalog cannot be changed."));
    }
    if let Some(v) = patch.display_name {
        catalog.display_name = v;
    }
    if let Some(v) = patch.description {
        catalog.description = v;
    }
    if let Some(v) = patch.is_externally_visible {
        catalog.is_externally_visible = v;
    }
    if let Some(v) = patch.state {
        catalog.state = v;
    }
    if let Some(v) = patch.unique_name {
        catalog.unique_name = v;
    }
    catalog.modified_by = Some(actor_name(app, caller).await?);
    catalog.modified_date_time = app.now();
    let unique = catalog.unique_name.clone();
    let actor_id = caller.id().to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            if !repo::update(c, &catalog)? {
                return Err(Error::not_found("catalog", &catalog.id));
            }
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "catalog",
                    entity_id: &catalog.id,
                    action: "update",
                    detail: serde_json::json!({}),
                },
            )
        })
        .await
        .map_err(|e| match (&e.kind, unique) {
            (ErrorKind::Conflict, Some(u)) => unique_name_taken(&u),
            _ => e,
        })
}

/// Deletes a catalog. Refused while it holds access packages; its resources (with their
/// roles and scopes), resource requests and catalog-scoped role assignments go with it.
pub async fn delete_catalog(app: &App, caller: &Caller, id: &str) -> Result<()> {
    caller.require(perms::EM_WRITE)?;
    let key = id.to_string();
    let catalog = app.store.read(move |c| load_catalog(c, &key)).await?;
    caller.require_in_catalog(&catalog.id, CatalogRight::Own)?;
    if catalog.catalog_type == CatalogType::ServiceDefault {
        return Err(Error::bad_request("BuiltInCatalog", "The built-in General catalog cannot be deleted."));
    }
    let actor_id = caller.id().to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            let cid = Value::from(&catalog.id);
            let packages = repo::count(c, "access_packages", "catalog_id = ?", std::slice::from_ref(&cid))?;
            if packages > 0 {
                return Err(Error::conflict(
                    "CatalogNotEmpty",
                    format!(
                        "The catalog '{}' still holds {packages} access package(s); delete them (or move them to another catalog) first.",
                        catalog.id
                    ),
                ));
            }
            for table in ["resource_roles", "resource_scopes", "resources", "resource_requests", "custom_extensions"] {
                c.execute(&format!("DELETE FROM {table} WHERE catalog_id = ?"), std::slice::from_ref(&cid))?;
            }
            c.execute(
                "DELETE FROM role_assignments WHERE provider = ? AND scope = ?",
                &[
                    Value::from(RoleProvider::EntitlementManagement.as_str()),
                    Value::from(format!("{}{}", em_roles::CATALOG_SCOPE_PREFIX, catalog.id)),
                ],
            )?;
            if !repo::delete::<Catalog>(c, &catalog.id)? {
                return Err(Error::not_found("catalog", &catalog.id));
            }
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "catalog",
                    entity_id: &catalog.id,
                    action: "delete",
                    detail: serde_json::json!({ "displayName": catalog.display_name }),
                },
            )
        })
        .await
}

/// Access packages of one catalog (`/catalogs/{id}/accessPackages`).
pub async fn list_catalog_packages(
    app: &App,
    caller: &Caller,
    catalog_id: &str,
    page: PageRequest,
) -> Result<Page<AccessPackage>> {
    let catalog = get_catalog(app, caller, catalog_id).await?;
    app.store
        .read(move |c| {
            Ok(Page::from_rows(
                repo::list(c, "catalog_id = ?", &[Value::from(&catalog.id)], page.after_seq, page.size + 1)?,
                page.size,
            ))
        })
        .await
}

// ---------------------------------------------------------------------------------------
// Tenant settings

const SETTINGS_META: &str = "em_settings";

pub async fn get_settings(app: &App, caller: &Caller) -> Result<Settings> {
    caller.require(perms::EM_READ)?;
    app.store.read(load_settings).await
}

pub fn load_settings(c: &mut dyn Conn) -> Result<Settings> {
    match repo::meta_get(c, SETTINGS_META)? {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| Error::internal(format!("stored entitlement management settings are unreadable: {e}"))),
        None => Ok(Settings::default()),
    }
}

#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    pub external_user_lifecycle_action: Option<grantry_domain::enums::ExternalUserLifecycleAction>,
    pub duration_until_external_user_deleted_after_blocked: Option<chrono::Duration>,
}

/// Updates the tenant settings; needs an application with ReadWrite or a delegated
/// Identity Governance (or Global) Administrator.
pub async fn update_settings(app: &App, caller: &Caller, patch: SettingsPatch) -> Result<()> {
    caller.require(perms::EM_WRITE)?;
    if !caller.is_app() && !caller.is_em_admin() {
        return Err(Error::forbidden(
            "Changing entitlement management settings needs the Identity Governance Administrator role.",
        ));
    }
    if let Some(d) = patch.duration_until_external_user_deleted_after_blocked
        && (d < chrono::Duration::zero() || d > chrono::Duration::days(3650))
    {
        return Err(Error::invalid_property(
            "durationUntilExternalUserDeletedAfterBlocked",
            "'durationUntilExternalUserDeletedAfterBlocked' must be between 0 days and 10 years.",
        ));
    }
    let actor_id = caller.id().to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            let before = load_settings(c)?;
            let mut settings = before.clone();
            if let Some(a) = patch.external_user_lifecycle_action {
                settings.external_user_lifecycle_action = a;
            }
            if let Some(d) = patch.duration_until_external_user_deleted_after_blocked {
                settings.duration_until_external_user_deleted_after_blocked = Some(d);
            }
            let text = serde_json::to_string(&settings)
                .map_err(|e| Error::internal(format!("cannot serialize settings: {e}")))?;
            repo::meta_put(c, SETTINGS_META, &text)?;
            crate::connected::settings_changed(c, now, &before, &settings)?;
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "settings",
                    entity_id: "em_settings",
                    action: "update",
                    detail: serde_json::to_value(&settings).unwrap_or_default(),
                },
            )
        })
        .await?;
    // Guests already blocked follow the new settings (`guest.revisit`).
    app.work_signal.notify_one();
    Ok(())
}

/// Whether a delegated caller may add `group_id` as a resource: owner of the group, or a
/// Groups, User or Global Administrator.
pub(crate) fn may_manage_group(c: &mut dyn Conn, caller: &Caller, group_id: &str) -> Result<bool> {
    let Some(user_id) = caller.user_id() else { return Ok(true) };
    if [dr::GLOBAL_ADMINISTRATOR, dr::GROUPS_ADMINISTRATOR, dr::USER_ADMINISTRATOR]
        .iter()
        .any(|r| caller.has_directory_role(r))
    {
        return Ok(true);
    }
    let owners = repo::count(
        c,
        "group_links",
        "group_id = ? AND relation = ? AND member_id = ? AND (direct = 1 OR granted > 0)",
        &[Value::from(group_id), Value::from("owner"), Value::from(user_id)],
    )?;
    Ok(owners > 0)
}
