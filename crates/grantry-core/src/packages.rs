//! Access packages, the resource role scopes they grant, and their incompatibilities.

use crate::auth::{CatalogRight, perms};
use crate::catalogs::{actor_name, join_where, load_catalog, readable_clause};
use crate::listing::{ListOptions, Listed};
use crate::{App, Caller, Page, PageRequest, audit};
use grantry_domain::model::{
    AccessPackage, Assignment, AssignmentRequest, Catalog, Group, Policy, Resource, ResourceRole, ResourceScope,
    RoleScope,
};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::query::{Field, Kind};
use grantry_store::{Conn, Value, repo};

#[derive(Debug, Clone, Default)]
pub struct NewPackage {
    pub catalog_id: String,
    /// The body property that named the catalog (`catalog` or `catalogId`).
    pub catalog_property: String,
    pub display_name: String,
    pub description: Option<String>,
    pub is_hidden: Option<bool>,
    pub is_role_scopes_visible: Option<bool>,
    pub unique_name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PackagePatch {
    pub display_name: Option<String>,
    pub description: Option<Option<String>>,
    pub is_hidden: Option<bool>,
    pub is_role_scopes_visible: Option<bool>,
    /// The catalog the body names, with the property that named it. A PATCH does not move
    /// a package: naming another catalog is refused rather than ignored.
    pub catalog: Option<(String, String)>,
}

fn unique_name_taken(name: &str) -> Error {
    Error::conflict(
        "UniqueNameAlreadyExists",
        format!("Another access package already has the uniqueName '{name}'; choose a different one."),
    )
    .with_target("uniqueName")
}

fn body_catalog(c: &mut dyn Conn, id: &str, property: &str) -> Result<Catalog> {
    match load_catalog(c, id) {
        Err(e) if e.kind == ErrorKind::NotFound => Err(Error::bad_request(
            "CatalogNotFound",
            format!("No catalog with id '{id}' exists; '{property}' must name an existing catalog."),
        )
        .with_target(property)),
        other => other,
    }
}

pub async fn create_package(app: &App, caller: &Caller, input: NewPackage) -> Result<AccessPackage> {
    caller.require(perms::EM_WRITE)?;
    let catalog = {
        let (id, prop) = (input.catalog_id.clone(), input.catalog_property.clone());
        app.store.read(move |c| body_catalog(c, &id, &prop)).await?
    };
    caller.require_in_catalog(&catalog.id, CatalogRight::ManagePackages)?;
    let actor = actor_name(app, caller).await?;
    let now = app.now();
    let package = AccessPackage {
        id: ids::new_id(),
        catalog_id: catalog.id.clone(),
        display_name: input.display_name,
        description: input.description,
        is_hidden: input.is_hidden.unwrap_or(false),
        is_role_scopes_visible: input.is_role_scopes_visible.unwrap_or(false),
        unique_name: input.unique_name,
        created_by: Some(actor.clone()),
        modified_by: Some(actor),
        created_date_time: now,
        modified_date_time: now,
    };
    let saved = package.clone();
    let actor_id = caller.id().to_string();
    let unique = package.unique_name.clone();
    app.store
        .write(move |c| {
            repo::insert(c, &saved)?;
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "accessPackage",
                    entity_id: &saved.id,
                    action: "create",
                    detail: serde_json::json!({ "catalogId": saved.catalog_id, "displayName": saved.display_name }),
                },
            )
        })
        .await
        .map_err(|e| match (&e.kind, unique) {
            (ErrorKind::Conflict, Some(u)) => unique_name_taken(&u),
            _ => e,
        })?;
    Ok(package)
}

pub(crate) fn load_package(c: &mut dyn Conn, id: &str) -> Result<AccessPackage> {
    repo::get(c, &ids::normalize(id))?.ok_or_else(|| Error::not_found("access package", id))
}

/// Loads a package and checks the caller's right in its catalog.
async fn package_with_right(app: &App, caller: &Caller, id: &str, right: CatalogRight) -> Result<AccessPackage> {
    caller.require(if right == CatalogRight::Read { perms::EM_READ } else { perms::EM_WRITE })?;
    let key = id.to_string();
    let package = app.store.read(move |c| load_package(c, &key)).await?;
    caller.require_in_catalog(&package.catalog_id, right)?;
    Ok(package)
}

pub async fn get_package(app: &App, caller: &Caller, id: &str) -> Result<AccessPackage> {
    package_with_right(app, caller, id, CatalogRight::Read).await
}

pub const PACKAGE_FILTER_COLUMNS: &[(&str, &str)] = &[
    ("displayName", "display_name"),
    ("id", "id"),
    ("catalog/id", "catalog_id"),
    ("catalogId", "catalog_id"),
    ("accessPackageCatalog/id", "catalog_id"),
    ("uniqueName", "unique_name"),
];

/// Filterable and sortable access package properties.
pub const PACKAGE_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field { names: &["description"], sql: "json_extract(body, '$.description')", kind: Kind::TextIgnoreCase },
    Field { names: &["isHidden"], sql: "is_hidden", kind: Kind::Bool },
    Field { names: &["catalog/id", "catalogId", "accessPackageCatalog/id"], sql: "catalog_id", kind: Kind::Id },
    Field { names: &["uniqueName"], sql: "unique_name", kind: Kind::TextIgnoreCase },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field { names: &["modifiedDateTime"], sql: "modified_us", kind: Kind::Time },
];

/// Packages the caller can read, across catalogs.
pub async fn list_packages(app: &App, caller: &Caller, options: ListOptions) -> Result<Listed<AccessPackage>> {
    caller.require(perms::EM_READ)?;
    let scope = crate::catalogs::readable_scope(caller, "catalog_id");
    app.store.read(move |c| crate::listing::list(c, PACKAGE_FIELDS, scope, &options)).await
}

pub async fn packages_by_ids(app: &App, ids: Vec<String>) -> Result<Vec<AccessPackage>> {
    crate::listing::find_in(app, "id", ids).await
}

pub async fn update_package(app: &App, caller: &Caller, id: &str, patch: PackagePatch) -> Result<()> {
    let mut package = package_with_right(app, caller, id, CatalogRight::ManagePackages).await?;
    if let Some((property, catalog_id)) = &patch.catalog
        && !catalog_id.eq_ignore_ascii_case(&package.catalog_id)
    {
        return Err(Error::bad_request(
            "CatalogChangeNotSupported",
            format!(
                "'{property}' names catalog '{catalog_id}', but a PATCH cannot move access package '{}' out of catalog '{}'; move it with POST accessPackages/{}/moveToCatalog {{\"catalogId\": \"{catalog_id}\"}}.",
                package.id, package.catalog_id, package.id
            ),
        )
        .with_target(property.as_str()));
    }
    if let Some(v) = patch.display_name {
        package.display_name = v;
    }
    if let Some(v) = patch.description {
        package.description = v;
    }
    if let Some(v) = patch.is_hidden {
        package.is_hidden = v;
    }
    if let Some(v) = patch.is_role_scopes_visible {
        package.is_role_scopes_visible = v;
    }
    package.modified_by = Some(actor_name(app, caller).await?);
    let now = app.now();
    package.modified_date_time = now;
    let actor_id = caller.id().to_string();
    app.store
        .write(move |c| {
            if !repo::update(c, &package)? {
                return Err(Error::not_found("access package", &package.id));
            }
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "accessPackage",
                    entity_id: &package.id,
                    action: "update",
                    detail: serde_json::json!({}),
                },
            )
        })
        .await
}

/// Deletes a package with its policies, role scopes and incompatibilities. Refused while
/// any assignment of it is active.
pub async fn delete_package(app: &App, caller: &Caller, id: &str) -> Result<()> {
    let package = package_with_right(app, caller, id, CatalogRight::ManagePackages).await?;
    let actor_id = caller.id().to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            let pid = Value::from(&package.id);
            let active =
                repo::count(c, "assignments", "access_package_id = ? AND active = 1", std::slice::from_ref(&pid))?;
            if active > 0 {
                return Err(Error::conflict(
                    "AccessPackageHasAssignments",
                    format!(
                        "The access package '{}' still has {active} active assignment(s); remove them before deleting the package.",
                        package.id
                    ),
                ));
            }
            for policy in crate::policies::policies_for_package(c, &package.id)? {
                crate::reviews::remove_for_policy(c, &policy.id)?;
            }
            for sql in [
                "DELETE FROM policies WHERE access_package_id = ?",
                "DELETE FROM role_scopes WHERE access_package_id = ?",
                "DELETE FROM incompatible_groups WHERE access_package_id = ?",
                "DELETE FROM incompatible_packages WHERE access_package_id = ?",
                "DELETE FROM incompatible_packages WHERE other_id = ?",
            ] {
                c.execute(sql, std::slice::from_ref(&pid))?;
            }
            if !repo::delete::<AccessPackage>(c, &package.id)? {
                return Err(Error::not_found("access package", &package.id));
            }
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "accessPackage",
                    entity_id: &package.id,
                    action: "delete",
                    detail: serde_json::json!({ "displayName": package.display_name }),
                },
            )
        })
        .await
}

/// Beta `moveToCatalog`: the caller needs Access package manager in both catalogs, and
/// every resource the package grants must already be in the target catalog.
pub async fn move_to_catalog(app: &App, caller: &Caller, id: &str, target_catalog_id: &str) -> Result<()> {
    let mut package = package_with_right(app, caller, id, CatalogRight::ManagePackages).await?;
    let target = {
        let key = target_catalog_id.to_string();
        app.store.read(move |c| body_catalog(c, &key, "catalogId")).await?
    };
    caller.require_in_catalog(&target.id, CatalogRight::ManagePackages)?;
    if target.id == package.catalog_id {
        return Ok(());
    }
    let now = app.now();
    package.modified_by = Some(actor_name(app, caller).await?);
    package.modified_date_time = now;
    let actor_id = caller.id().to_string();
    app.store
        .write(move |c| {
            let foreign = repo::count(
                c,
                "role_scopes",
                "access_package_id = ? AND role_id IN (SELECT id FROM resource_roles WHERE catalog_id <> ?)",
                &[Value::from(&package.id), Value::from(&target.id)],
            )?;
            if foreign > 0 {
                return Err(Error::bad_request(
                    "ResourceNotInCatalog",
                    format!(
                        "The access package grants {foreign} resource role(s) whose resources are not in the catalog '{}'; add those resources to it (or remove the roles from the package) first.",
                        target.id
                    ),
                )
                .with_target("catalogId"));
            }
            let from = package.catalog_id.clone();
            package.catalog_id = target.id.clone();
            repo::update(c, &package)?;
            let pid = [Value::from(&package.id)];
            for mut p in repo::find_all::<Policy>(c, "access_package_id = ?", &pid)? {
                p.catalog_id = target.id.clone();
                repo::update(c, &p)?;
            }
            for mut r in repo::find_all::<AssignmentRequest>(c, "access_package_id = ?", &pid)? {
                r.catalog_id = target.id.clone();
                repo::update(c, &r)?;
            }
            for mut a in repo::find_all::<Assignment>(c, "access_package_id = ?", &pid)? {
                a.catalog_id = target.id.clone();
                repo::update(c, &a)?;
            }
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "accessPackage",
                    entity_id: &package.id,
                    action: "moveToCatalog",
                    detail: serde_json::json!({ "from": from, "to": target.id }),
                },
            )
        })
        .await
}

// ---------------------------------------------------------------------------------------
// Resource role scopes

/// A role and scope named in a POST body, by id or by origin.
#[derive(Debug, Clone, Default)]
pub struct NewRoleScope {
    pub role_id: Option<String>,
    pub role_origin_id: Option<String>,
    pub role_origin_system: Option<String>,
    pub resource_id: Option<String>,
    pub scope_id: Option<String>,
    pub scope_origin_id: Option<String>,
    /// Body property names, for messages (`role` / `accessPackageResourceRole`, …).
    pub role_property: String,
    pub scope_property: String,
    pub resource_property: String,
}

/// A role scope with its role and scope.
#[derive(Debug, Clone)]
pub struct RoleScopeView {
    pub role_scope: RoleScope,
    pub role: Option<ResourceRole>,
    pub scope: Option<ResourceScope>,
}

fn resolve_role_scope(
    c: &mut dyn Conn,
    package: &AccessPackage,
    input: &NewRoleScope,
) -> Result<(ResourceRole, ResourceScope)> {
    let rp = &input.role_property;
    // The role, by id first (when it exists), else by (resource, originId).
    // Roles and resources of other catalogs are treated as if they did not exist: the
    // answer must not tell which ids exist elsewhere.
    let by_id: Option<ResourceRole> = match &input.role_id {
        Some(id) => repo::get::<ResourceRole>(c, &ids::normalize(id))?.filter(|r| r.catalog_id == package.catalog_id),
        None => None,
    };
    if let (Some(id), None, None) = (&input.role_id, &by_id, &input.resource_id) {
        return Err(Error::bad_request(
            "ResourceRoleNotFound",
            format!(
                "No resource role with id '{id}' is in the catalog '{}' of this access package.",
                package.catalog_id
            ),
        )
        .with_target(format!("{rp}.id")));
    }
    let role = match by_id {
        Some(r) => r,
        None => {
            let resource_id = input.resource_id.clone().ok_or_else(|| {
                Error::invalid_property(
                    &format!("{rp}.{}.id", input.resource_property),
                    format!(
                        "'{rp}.{}.id' is required: the id of the catalog resource whose role is added.",
                        input.resource_property
                    ),
                )
            })?;
            let resource: Resource = repo::get::<Resource>(c, &ids::normalize(&resource_id))?
                .filter(|r| r.catalog_id == package.catalog_id)
                .ok_or_else(|| {
                    Error::bad_request(
                        "ResourceNotInCatalog",
                        format!(
                            "No resource with id '{resource_id}' is in the catalog '{}' of this access package.",
                            package.catalog_id
                        ),
                    )
                    .with_target(format!("{rp}.{}.id", input.resource_property))
                })?;
            let origin_id = input.role_origin_id.clone().ok_or_else(|| {
                Error::invalid_property(
                    &format!("{rp}.originId"),
                    format!("'{rp}.originId' is required (for a group: Member_{{groupId}} or Owner_{{groupId}})."),
                )
            })?;
            repo::find_one(
                c,
                "resource_id = ? AND LOWER(origin_id) = ?",
                &[Value::from(&resource.id), Value::from(origin_id.to_lowercase())],
            )?
            .ok_or_else(|| {
                Error::bad_request(
                    "ResourceRoleNotFound",
                    format!("The resource '{}' has no role with originId '{origin_id}'.", resource.id),
                )
                .with_target(format!("{rp}.originId"))
            })?
        }
    };
    if role.catalog_id != package.catalog_id {
        return Err(not_in_catalog(&role.resource_id, package, rp));
    }
    if let (Some(rid), Some(given)) = (&input.resource_id, &input.role_id)
        && ids::normalize(rid) != role.resource_id
        && ids::normalize(given) == role.id
    {
        return Err(Error::invalid_property(
            &format!("{rp}.{}.id", input.resource_property),
            format!("The role '{}' belongs to resource '{}', not '{rid}'.", role.id, role.resource_id),
        ));
    }
    let sp = &input.scope_property;
    let by_id: Option<ResourceScope> = match &input.scope_id {
        Some(id) => repo::get::<ResourceScope>(c, &ids::normalize(id))?.filter(|s| s.resource_id == role.resource_id),
        None => None,
    };
    let scope = match by_id {
        Some(s) => s,
        None => match &input.scope_origin_id {
            Some(origin_id) => repo::find_one(
                c,
                "resource_id = ? AND LOWER(origin_id) = ?",
                &[Value::from(&role.resource_id), Value::from(origin_id.to_lowercase())],
            )?
            .ok_or_else(|| {
                Error::bad_request(
                    "ResourceScopeNotFound",
                    format!("The resource '{}' has no scope with originId '{origin_id}'.", role.resource_id),
                )
                .with_target(format!("{sp}.originId"))
            })?,
            // No scope given: the resource's root scope.
            None => repo::find_one(c, "resource_id = ?", &[Value::from(&role.resource_id)])?.ok_or_else(|| {
                Error::invalid_property(sp, format!("'{sp}' is required: the scope (originId) of the role to add."))
            })?,
        },
    };
    Ok((role, scope))
}

fn not_in_catalog(resource_id: &str, package: &AccessPackage, target: &str) -> Error {
    Error::bad_request(
        "ResourceNotInCatalog",
        format!(
            "The resource '{resource_id}' is not in the catalog '{}' of the access package; add it to that catalog with a resource request first.",
            package.catalog_id
        ),
    )
    .with_target(target)
}

pub async fn add_role_scope(
    app: &App,
    caller: &Caller,
    package_id: &str,
    input: NewRoleScope,
) -> Result<RoleScopeView> {
    let package = package_with_right(app, caller, package_id, CatalogRight::ManagePackages).await?;
    let actor = actor_name(app, caller).await?;
    let now = app.now();
    let actor_id = caller.id().to_string();
    app.store
        .write(move |c| {
            let (role, scope) = resolve_role_scope(c, &package, &input)?;
            let rs = RoleScope {
                id: RoleScope::make_id(&role.id, &scope.id),
                access_package_id: package.id.clone(),
                role_id: role.id.clone(),
                scope_id: scope.id.clone(),
                created_by: Some(actor),
                created_date_time: now,
            };
            let exists = repo::count(
                c,
                "role_scopes",
                "access_package_id = ? AND id = ?",
                &[Value::from(&package.id), Value::from(&rs.id)],
            )?;
            if exists > 0 {
                return Err(role_scope_exists(&rs.id));
            }
            repo::insert(c, &rs)
                .map_err(|e| if e.kind == ErrorKind::Conflict { role_scope_exists(&rs.id) } else { e })?;
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "accessPackage",
                    entity_id: &package.id,
                    action: "addResourceRoleScope",
                    detail: serde_json::json!({ "roleId": role.id, "scopeId": scope.id }),
                },
            )?;
            Ok(RoleScopeView { role_scope: rs, role: Some(role), scope: Some(scope) })
        })
        .await
}

fn role_scope_exists(id: &str) -> Error {
    Error::conflict(
        "RoleScopeAlreadyExists",
        format!("The access package already grants this role and scope (resource role scope '{id}')."),
    )
}

pub async fn delete_role_scope(app: &App, caller: &Caller, package_id: &str, role_scope_id: &str) -> Result<()> {
    let package = package_with_right(app, caller, package_id, CatalogRight::ManagePackages).await?;
    let rsid = ids::normalize(role_scope_id);
    let shown = role_scope_id.to_string();
    let actor_id = caller.id().to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            let n = c.execute(
                "DELETE FROM role_scopes WHERE access_package_id = ? AND id = ?",
                &[Value::from(&package.id), Value::from(&rsid)],
            )?;
            if n == 0 {
                return Err(Error::not_found("resource role scope", &shown));
            }
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "accessPackage",
                    entity_id: &package.id,
                    action: "removeResourceRoleScope",
                    detail: serde_json::json!({ "id": rsid }),
                },
            )
        })
        .await
}

fn attach(c: &mut dyn Conn, scopes: Vec<(i64, RoleScope)>) -> Result<Vec<(i64, RoleScopeView)>> {
    let mut out = Vec::with_capacity(scopes.len());
    for (seq, rs) in scopes {
        let role = repo::get(c, &rs.role_id)?;
        let scope = repo::get(c, &rs.scope_id)?;
        out.push((seq, RoleScopeView { role_scope: rs, role, scope }));
    }
    Ok(out)
}

/// Role scopes of one package.
pub async fn list_role_scopes(
    app: &App,
    caller: &Caller,
    package_id: &str,
    page: PageRequest,
) -> Result<Page<RoleScopeView>> {
    let package = get_package(app, caller, package_id).await?;
    app.store
        .read(move |c| {
            let rows =
                repo::list(c, "access_package_id = ?", &[Value::from(&package.id)], page.after_seq, page.size + 1)?;
            Ok(Page::from_rows(attach(c, rows)?, page.size))
        })
        .await
}

/// Role scopes of several packages (for `$expand`), with the package each belongs to; the
/// caller must already have been allowed to read the packages.
pub async fn role_scopes_of(app: &App, package_ids: Vec<String>) -> Result<Vec<RoleScopeView>> {
    if package_ids.is_empty() {
        return Ok(Vec::new());
    }
    app.store
        .read(move |c| {
            let sql = format!("access_package_id IN ({})", vec!["?"; package_ids.len()].join(", "));
            let params: Vec<Value> = package_ids.into_iter().map(Value::from).collect();
            let rows = repo::list(c, &sql, &params, None, usize::MAX >> 1)?;
            Ok(attach(c, rows)?.into_iter().map(|(_, v)| v).collect())
        })
        .await
}

/// Every role scope of every package the caller can read (tenant-level collection).
pub async fn list_all_role_scopes(app: &App, caller: &Caller, page: PageRequest) -> Result<Page<RoleScopeView>> {
    caller.require(perms::EM_READ)?;
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    let mut inner = Vec::new();
    readable_clause(caller, "catalog_id", &mut inner, &mut params);
    if !inner.is_empty() {
        clauses.push(format!("access_package_id IN (SELECT id FROM access_packages WHERE {})", join_where(&inner)));
    }
    let sql = join_where(&clauses);
    app.store
        .read(move |c| {
            let rows = repo::list(c, &sql, &params, page.after_seq, page.size + 1)?;
            Ok(Page::from_rows(attach(c, rows)?, page.size))
        })
        .await
}

// ---------------------------------------------------------------------------------------
// Incompatibilities

/// A page of `R` related to a package the caller may read: the rows whose id
/// `related_ids` (a subquery on the package id) selects.
/// `catalog_column` names the related rows' catalog, when they belong to one: rows of
/// catalogs the caller may not read are left out (a link reaches into another catalog
/// only for callers who may read both ends).
async fn related_page<R: grantry_store::records::Record>(
    app: &App,
    caller: &Caller,
    package_id: &str,
    related_ids: &'static str,
    catalog_column: Option<&'static str>,
    page: PageRequest,
) -> Result<Page<R>> {
    let package = get_package(app, caller, package_id).await?;
    let mut clauses = vec![format!("id IN ({related_ids})")];
    let mut params = vec![Value::from(&package.id)];
    if let Some(column) = catalog_column {
        readable_clause(caller, column, &mut clauses, &mut params);
    }
    let where_sql = join_where(&clauses);
    app.store
        .read(move |c| {
            let rows = repo::list(c, &where_sql, &params, page.after_seq, page.size + 1)?;
            Ok(Page::from_rows(rows, page.size))
        })
        .await
}

pub async fn list_incompatible_packages(
    app: &App,
    caller: &Caller,
    package_id: &str,
    page: PageRequest,
) -> Result<Page<AccessPackage>> {
    related_page(
        app,
        caller,
        package_id,
        "SELECT other_id FROM incompatible_packages WHERE access_package_id = ?",
        Some("catalog_id"),
        page,
    )
    .await
}

/// Packages that list this one as incompatible (read-only reverse navigation).
pub async fn list_packages_incompatible_with(
    app: &App,
    caller: &Caller,
    package_id: &str,
    page: PageRequest,
) -> Result<Page<AccessPackage>> {
    related_page(
        app,
        caller,
        package_id,
        "SELECT access_package_id FROM incompatible_packages WHERE other_id = ?",
        Some("catalog_id"),
        page,
    )
    .await
}

pub async fn list_incompatible_groups(
    app: &App,
    caller: &Caller,
    package_id: &str,
    page: PageRequest,
) -> Result<Page<Group>> {
    // Groups are directory objects, not a catalog's: whoever may read the package sees them.
    related_page(
        app,
        caller,
        package_id,
        "SELECT group_id FROM incompatible_groups WHERE access_package_id = ?",
        None,
        page,
    )
    .await
}

/// For `$expand`: the incompatible packages / groups of several packages, as
/// (package id, item) pairs; packages of catalogs the caller may not read are left out.
pub async fn incompatible_packages_of(
    app: &App,
    caller: &Caller,
    package_ids: Vec<String>,
) -> Result<Vec<(String, AccessPackage)>> {
    let pairs: Vec<(String, AccessPackage)> = expand_links(
        app,
        package_ids,
        "SELECT access_package_id, other_id FROM incompatible_packages",
        "access_package_id",
    )
    .await?;
    Ok(pairs.into_iter().filter(|(_, p)| caller.may_in_catalog(&p.catalog_id, CatalogRight::Read)).collect())
}

/// For `$expand=accessPackagesIncompatibleWith`: the packages that name each of several
/// packages incompatible, as (package id, other package) pairs; packages of catalogs the
/// caller may not read are left out.
pub async fn packages_incompatible_with_of(
    app: &App,
    caller: &Caller,
    package_ids: Vec<String>,
) -> Result<Vec<(String, AccessPackage)>> {
    let pairs: Vec<(String, AccessPackage)> =
        expand_links(app, package_ids, "SELECT other_id, access_package_id FROM incompatible_packages", "other_id")
            .await?;
    Ok(pairs.into_iter().filter(|(_, p)| caller.may_in_catalog(&p.catalog_id, CatalogRight::Read)).collect())
}

pub async fn incompatible_groups_of(app: &App, package_ids: Vec<String>) -> Result<Vec<(String, Group)>> {
    expand_links(app, package_ids, "SELECT access_package_id, group_id FROM incompatible_groups", "access_package_id")
        .await
}

/// `select` yields (package id, linked id) pairs; `key` is the column holding the package id.
async fn expand_links<R: grantry_store::records::Record>(
    app: &App,
    package_ids: Vec<String>,
    select: &'static str,
    key: &'static str,
) -> Result<Vec<(String, R)>> {
    if package_ids.is_empty() {
        return Ok(Vec::new());
    }
    app.store
        .read(move |c| {
            let sql = format!("{select} WHERE {key} IN ({})", vec!["?"; package_ids.len()].join(", "));
            let params: Vec<Value> = package_ids.into_iter().map(Value::from).collect();
            let mut out = Vec::new();
            for row in c.query(&sql, &params)? {
                let (pid, other) = (row.text(0)?, row.text(1)?);
                if let Some(item) = repo::get::<R>(c, &other)? {
                    out.push((pid, item));
                }
            }
            Ok(out)
        })
        .await
}

pub async fn add_incompatible_package(app: &App, caller: &Caller, package_id: &str, other_id: &str) -> Result<()> {
    let package = package_with_right(app, caller, package_id, CatalogRight::ManagePackages).await?;
    let other = ids::normalize(other_id);
    if other == package.id {
        return Err(Error::invalid_property(
            "@odata.id",
            "An access package cannot be incompatible with itself; '@odata.id' must name another access package.",
        ));
    }
    let shown = other_id.to_string();
    // The link changes who may obtain the other package too: the caller needs the same
    // right in its catalog, and one they may not read is answered as if it did not exist.
    let found = {
        let key = other.clone();
        app.store.read(move |c| repo::get::<AccessPackage>(c, &key)).await?
    };
    match found {
        Some(p) if caller.may_in_catalog(&p.catalog_id, CatalogRight::Read) => {
            caller.require_in_catalog(&p.catalog_id, CatalogRight::ManagePackages)?;
        }
        _ => return Err(Error::not_found("access package", &shown)),
    }
    let pid = package.id.clone();
    link(app, caller, &pid, move |c| {
        if repo::get::<AccessPackage>(c, &other)?.is_none() {
            return Err(Error::not_found("access package", &shown));
        }
        c.execute(
            "INSERT INTO incompatible_packages (access_package_id, other_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            &[Value::from(&package.id), Value::from(&other)],
        )?;
        Ok(())
    })
    .await
}

pub async fn add_incompatible_group(app: &App, caller: &Caller, package_id: &str, group_id: &str) -> Result<()> {
    let package = package_with_right(app, caller, package_id, CatalogRight::ManagePackages).await?;
    let gid = ids::normalize(group_id);
    let shown = group_id.to_string();
    let pid = package.id.clone();
    link(app, caller, &pid, move |c| {
        if repo::get::<Group>(c, &gid)?.is_none() {
            return Err(Error::not_found("group", &shown));
        }
        c.execute(
            "INSERT INTO incompatible_groups (access_package_id, group_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            &[Value::from(&package.id), Value::from(&gid)],
        )?;
        Ok(())
    })
    .await
}

pub async fn remove_incompatible_package(app: &App, caller: &Caller, package_id: &str, other_id: &str) -> Result<()> {
    let package = package_with_right(app, caller, package_id, CatalogRight::ManagePackages).await?;
    let other = ids::normalize(other_id);
    let shown = other_id.to_string();
    let not_linked = {
        let (pid, shown) = (package.id.clone(), shown.clone());
        move || {
            Error::new(
                ErrorKind::NotFound,
                "ResourceNotFound",
                format!("The access package '{pid}' is not marked incompatible with '{shown}'."),
            )
        }
    };
    // As for adding: removing the link changes the other package's rules too. A link to a
    // package that no longer exists can always be removed.
    let found = {
        let key = other.clone();
        app.store.read(move |c| repo::get::<AccessPackage>(c, &key)).await?
    };
    if let Some(p) = found {
        if !caller.may_in_catalog(&p.catalog_id, CatalogRight::Read) {
            return Err(not_linked());
        }
        caller.require_in_catalog(&p.catalog_id, CatalogRight::ManagePackages)?;
    }
    let pid = package.id.clone();
    link(app, caller, &pid, move |c| {
        let n = c.execute(
            "DELETE FROM incompatible_packages WHERE access_package_id = ? AND other_id = ?",
            &[Value::from(&package.id), Value::from(&other)],
        )?;
        if n == 0 {
            return Err(not_linked());
        }
        Ok(())
    })
    .await
}

pub async fn remove_incompatible_group(app: &App, caller: &Caller, package_id: &str, group_id: &str) -> Result<()> {
    let package = package_with_right(app, caller, package_id, CatalogRight::ManagePackages).await?;
    let gid = ids::normalize(group_id);
    let shown = group_id.to_string();
    let pid = package.id.clone();
    link(app, caller, &pid, move |c| {
        let n = c.execute(
            "DELETE FROM incompatible_groups WHERE access_package_id = ? AND group_id = ?",
            &[Value::from(&package.id), Value::from(&gid)],
        )?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::NotFound,
                "ResourceNotFound",
                format!("The group '{shown}' is not an incompatible group of the access package '{}'.", package.id),
            ));
        }
        Ok(())
    })
    .await
}

async fn link<F>(app: &App, caller: &Caller, package_id: &str, work: F) -> Result<()>
where
    F: FnOnce(&mut dyn Conn) -> Result<()> + Send + 'static,
{
    let actor_id = caller.id().to_string();
    let pid = package_id.to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            work(c)?;
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "accessPackage",
                    entity_id: &pid,
                    action: "updateIncompatibilities",
                    detail: serde_json::json!({}),
                },
            )
        })
        .await
}

/// Packages of several catalogs (for a catalog's `$expand=accessPackages`); the caller
/// must already have been allowed to read the catalogs.
pub async fn packages_of_catalogs(app: &App, catalog_ids: Vec<String>) -> Result<Vec<AccessPackage>> {
    if catalog_ids.is_empty() {
        return Ok(Vec::new());
    }
    app.store
        .read(move |c| {
            let sql = format!("catalog_id IN ({})", vec!["?"; catalog_ids.len()].join(", "));
            let params: Vec<Value> = catalog_ids.into_iter().map(Value::from).collect();
            repo::find_all(c, &sql, &params)
        })
        .await
}
