//! Role assignments of the two `roleManagement` providers Grantry serves:
//! `directory` (Entra directory roles, scope "/") and `entitlementManagement` (catalog roles
//! scoped "/AccessPackageCatalog/{id}", tenant roles scoped "/").

use crate::audit::{self, AuditEvent};
use crate::auth::{CatalogRight, perms};
use crate::{App, Caller, Page, PageRequest};
use chrono::{DateTime, Utc};
use grantry_domain::model::{RoleAssignment, RoleProvider, User, directory_roles as dr, em_roles};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_odata::ast::{BinaryOp, Expr, Literal};
use grantry_store::{Conn, Value, repo};

/// Input for a role assignment. `scope` is `directoryScopeId` (directory provider) or
/// `appScopeId` (entitlement management provider) as sent.
#[derive(Debug, Clone)]
pub struct NewRoleAssignment {
    pub principal_id: String,
    pub role_definition_id: String,
    pub scope: Option<String>,
}

/// A built-in role definition.
#[derive(Debug, Clone)]
pub struct RoleDefinition {
    pub id: &'static str,
    pub display_name: &'static str,
    pub description: Option<&'static str>,
    /// Tenant-wide ("/") or catalog-scoped.
    pub catalog_scoped: bool,
}

/// A role assignment with what `$expand` asked for.
#[derive(Debug, Clone)]
pub struct AssignmentView {
    pub assignment: RoleAssignment,
    /// Present when `$expand=principal` was asked for and the principal exists.
    pub principal: Option<User>,
}

/// Navigation properties a role assignment can expand.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expand {
    pub principal: bool,
    pub role_definition: bool,
}

/// Parses `$expand` for role assignments: `principal` and `roleDefinition` are supported.
pub fn parse_expand(text: Option<&str>) -> Result<Expand> {
    let mut out = Expand::default();
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else { return Ok(out) };
    let items = grantry_odata::parse_expand(text)
        .map_err(|e| Error::bad_request("BadRequest", format!("Invalid $expand: {e}")).with_target("$expand"))?;
    for item in items {
        match item.path.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            [p] if p.eq_ignore_ascii_case("principal") => out.principal = true,
            [p] if p.eq_ignore_ascii_case("roleDefinition") => out.role_definition = true,
            [p] if *p == "*" => {
                out.principal = true;
                out.role_definition = true;
            }
            _ => {
                return Err(Error::bad_request(
                    "BadRequest",
                    format!(
                        "$expand of '{}' is not supported on role assignments; expand 'principal' or 'roleDefinition'.",
                        item.path.join("/")
                    ),
                )
                .with_target("$expand"));
            }
        }
    }
    Ok(out)
}

pub fn directory_role_definitions(caller: &Caller) -> Result<Vec<RoleDefinition>> {
    caller.require(perms::ROLE_READ)?;
    Ok(dr::ALL
        .iter()
        .map(|(id, name)| RoleDefinition { id, display_name: name, description: None, catalog_scoped: false })
        .collect())
}

pub fn em_role_definitions(caller: &Caller) -> Result<Vec<RoleDefinition>> {
    caller.require(perms::EM_ROLE_READ)?;
    Ok(em_roles::ALL
        .iter()
        .map(|(id, name, description, scoped)| RoleDefinition {
            id,
            display_name: name,
            description: Some(description),
            catalog_scoped: *scoped,
        })
        .collect())
}

fn find_definition(definitions: Vec<RoleDefinition>, id: &str) -> Result<RoleDefinition> {
    let key = ids::normalize(id);
    definitions.into_iter().find(|d| d.id == key).ok_or_else(|| Error::not_found("role definition", id))
}

pub fn directory_role_definition(caller: &Caller, id: &str) -> Result<RoleDefinition> {
    find_definition(directory_role_definitions(caller)?, id)
}

pub fn em_role_definition(caller: &Caller, id: &str) -> Result<RoleDefinition> {
    find_definition(em_role_definitions(caller)?, id)
}

/// The display name of a role of either provider.
pub fn role_name(role_definition_id: &str) -> Option<&'static str> {
    dr::ALL
        .iter()
        .find(|(id, _)| *id == role_definition_id)
        .map(|(_, n)| *n)
        .or_else(|| em_roles::ALL.iter().find(|(id, ..)| *id == role_definition_id).map(|(_, n, ..)| *n))
}

// ---------------------------------------------------------------------------------------
// Filters

/// A `$filter` restricted to `eq` on the given properties joined by `and`, as SQL
/// conditions on `role_assignments`.
fn filter_sql(filter: Option<&str>, provider: RoleProvider) -> Result<(Vec<String>, Vec<Value>)> {
    let mut clauses = vec!["provider = ?".to_string()];
    let mut params = vec![Value::from(provider.as_str())];
    let Some(text) = filter.filter(|t| !t.trim().is_empty()) else { return Ok((clauses, params)) };
    let scope_property = match provider {
        RoleProvider::Directory => "directoryScopeId",
        RoleProvider::EntitlementManagement => "appScopeId",
    };
    let expr = grantry_odata::parse_filter(text)
        .map_err(|e| Error::bad_request("BadRequest", format!("Invalid $filter: {e}")).with_target("$filter"))?;
    let mut terms = Vec::new();
    collect_eq_terms(&expr, &mut terms, scope_property)?;
    for (property, value) in terms {
        let (column, value) = if property.eq_ignore_ascii_case("principalId") {
            ("principal_id", ids::normalize(&value))
        } else if property.eq_ignore_ascii_case("roleDefinitionId") {
            ("role_definition_id", ids::normalize(&value))
        } else {
            ("scope", normalize_filter_scope(&value))
        };
        clauses.push(format!("{column} = ?"));
        params.push(Value::from(value));
    }
    Ok((clauses, params))
}

fn unsupported_filter(scope_property: &str) -> Error {
    Error::bad_request(
        "BadRequest",
        format!(
            "This $filter is not supported on role assignments: use only 'eq' on principalId, roleDefinitionId or \
             {scope_property}, combined with 'and', e.g. principalId eq '<id>' and roleDefinitionId eq '<id>'."
        ),
    )
    .with_target("$filter")
}

fn collect_eq_terms(expr: &Expr, out: &mut Vec<(String, String)>, scope_property: &str) -> Result<()> {
    match expr {
        Expr::Binary { op: BinaryOp::And, left, right } => {
            collect_eq_terms(left, out, scope_property)?;
            collect_eq_terms(right, out, scope_property)
        }
        Expr::Binary { op: BinaryOp::Eq, left, right } => {
            let (path, literal) = match (left.as_ref(), right.as_ref()) {
                (Expr::Path(p), Expr::Literal(l)) | (Expr::Literal(l), Expr::Path(p)) => (p, l),
                _ => return Err(unsupported_filter(scope_property)),
            };
            let [property] = path.as_slice() else { return Err(unsupported_filter(scope_property)) };
            let known = ["principalId", "roleDefinitionId", scope_property];
            if !known.iter().any(|k| k.eq_ignore_ascii_case(property)) {
                return Err(unsupported_filter(scope_property));
            }
            let value = match literal {
                Literal::String(s) | Literal::Guid(s) => s.clone(),
                _ => {
                    return Err(Error::bad_request(
                        "BadRequest",
                        format!(
                            "In $filter, '{property}' must be compared with a quoted string, e.g. {property} eq '<id>'."
                        ),
                    )
                    .with_target("$filter"));
                }
            };
            out.push((property.clone(), value));
            Ok(())
        }
        _ => Err(unsupported_filter(scope_property)),
    }
}

fn normalize_filter_scope(value: &str) -> String {
    match parse_app_scope(value) {
        Ok(Some(catalog)) => catalog_scope(&catalog),
        _ => value.trim().to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Scopes

/// `"/"` → `None`; `"/AccessPackageCatalog/{id}"` (prefix in any case) → the catalog id.
fn parse_app_scope(scope: &str) -> Result<Option<String>> {
    let s = scope.trim();
    if s == "/" {
        return Ok(None);
    }
    let prefix = em_roles::CATALOG_SCOPE_PREFIX;
    let catalog = s
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
        .map(|id| id.trim_end_matches('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'));
    match catalog {
        Some(id) => Ok(Some(ids::normalize(id))),
        None => Err(Error::invalid_property(
            "appScopeId",
            format!(
                "'appScopeId' must be '/' (tenant-wide roles) or '/AccessPackageCatalog/{{catalogId}}' (catalog roles); got '{s}'."
            ),
        )),
    }
}

pub fn catalog_scope(catalog_id: &str) -> String {
    format!("{}{}", em_roles::CATALOG_SCOPE_PREFIX, ids::normalize(catalog_id))
}

fn catalog_of_scope(scope: &str) -> Option<&str> {
    scope.strip_prefix(em_roles::CATALOG_SCOPE_PREFIX)
}

// ---------------------------------------------------------------------------------------
// Authorization

fn require_directory_role_admin(caller: &Caller) -> Result<()> {
    caller.require(perms::ROLE_WRITE)?;
    if caller.is_app()
        || caller.has_directory_role(dr::GLOBAL_ADMINISTRATOR)
        || caller.has_directory_role(dr::PRIVILEGED_ROLE_ADMINISTRATOR)
    {
        Ok(())
    } else {
        Err(Error::forbidden(
            "Assigning or removing directory roles needs the Privileged Role Administrator or Global Administrator role.",
        ))
    }
}

/// Who may assign or remove an entitlement management role at `catalog` (None: tenant-wide).
fn require_em_role_admin(caller: &Caller, catalog: Option<&str>) -> Result<()> {
    caller.require(perms::EM_ROLE_WRITE)?;
    if caller.is_app() || caller.is_em_admin() {
        return Ok(());
    }
    match catalog {
        Some(catalog_id) => caller.require_in_catalog(catalog_id, CatalogRight::Own),
        None => Err(Error::forbidden(
            "Assigning or removing tenant-wide entitlement management roles needs the Identity Governance \
             Administrator or Global Administrator role.",
        )),
    }
}

/// Whether a delegated caller may see an entitlement management assignment.
fn em_visible(caller: &Caller, a: &RoleAssignment) -> bool {
    if caller.is_app() || caller.is_em_tenant_reader() || caller.user_id() == Some(a.principal_id.as_str()) {
        return true;
    }
    let scope = a.app_scope_id.as_deref().unwrap_or("/");
    catalog_of_scope(scope).is_some_and(|catalog| caller.may_in_catalog(catalog, CatalogRight::Read))
}

// ---------------------------------------------------------------------------------------
// Use cases

fn require_principal(c: &mut dyn Conn, principal_id: &str) -> Result<User> {
    repo::get::<User>(c, principal_id)?.ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            "ResourceNotFound",
            format!("No user with id '{principal_id}' exists; a role can only be assigned to an existing user."),
        )
        .with_target("principalId")
    })
}

fn exists(c: &mut dyn Conn, a: &RoleAssignment) -> Result<bool> {
    let scope = a.app_scope_id.clone().or_else(|| a.directory_scope_id.clone()).unwrap_or_else(|| "/".into());
    Ok(c.query_one(
        "SELECT 1 FROM role_assignments WHERE provider = ? AND principal_id = ? AND role_definition_id = ? AND scope = ?",
        &[
            Value::from(a.provider.as_str()),
            Value::from(&a.principal_id),
            Value::from(&a.role_definition_id),
            Value::from(scope),
        ],
    )?
    .is_some())
}

fn duplicate(a: &RoleAssignment) -> Error {
    let scope = a.app_scope_id.as_deref().or(a.directory_scope_id.as_deref()).unwrap_or("/");
    Error::conflict(
        "Request_MultipleObjectsWithSameKeyValue",
        format!(
            "The principal '{}' already has the role '{}' at scope '{scope}'.",
            a.principal_id,
            role_name(&a.role_definition_id).unwrap_or(&a.role_definition_id)
        ),
    )
}

/// Checks and inserts `a` in the caller's transaction (the principal and, for catalog
/// roles, the catalog must exist; duplicates are refused).
fn insert_assignment(c: &mut dyn Conn, a: &RoleAssignment, actor: Option<&str>) -> Result<()> {
    require_principal(c, &a.principal_id)?;
    if let Some(catalog_id) = a.app_scope_id.as_deref().and_then(catalog_of_scope) {
        let found = c.query_one("SELECT 1 FROM catalogs WHERE id = ?", &[Value::from(catalog_id)])?.is_some();
        if !found {
            return Err(Error::not_found("catalog", catalog_id).with_target("appScopeId"));
        }
    }
    if exists(c, a)? {
        return Err(duplicate(a));
    }
    repo::insert(c, a).map_err(|e| if e.kind == ErrorKind::Conflict { duplicate(a) } else { e })?;
    audit::record(
        c,
        AuditEvent {
            at: a.created_date_time,
            actor_id: actor,
            entity_type: "roleAssignment",
            entity_id: &a.id,
            action: "create",
            detail: serde_json::to_value(a).unwrap_or_default(),
        },
    )
}

async fn create(app: &App, caller: &Caller, a: RoleAssignment) -> Result<RoleAssignment> {
    let checked = a.clone();
    // Validate on a read first so refusals do not queue behind writes.
    app.store
        .read(move |c| {
            require_principal(c, &checked.principal_id)?;
            if let Some(catalog_id) = checked.app_scope_id.as_deref().and_then(catalog_of_scope) {
                let found = c.query_one("SELECT 1 FROM catalogs WHERE id = ?", &[Value::from(catalog_id)])?.is_some();
                if !found {
                    return Err(Error::not_found("catalog", catalog_id).with_target("appScopeId"));
                }
            }
            if exists(c, &checked)? { Err(duplicate(&checked)) } else { Ok(()) }
        })
        .await?;
    let saved = a.clone();
    let actor = caller.id().to_string();
    app.store.write(move |c| insert_assignment(c, &saved, Some(&actor))).await?;
    Ok(a)
}

fn principal_key(principal_id: &str) -> Result<String> {
    let id = ids::normalize(principal_id);
    if id.is_empty() {
        return Err(Error::invalid_property("principalId", "'principalId' is required: the id of the user to assign."));
    }
    Ok(id)
}

pub async fn create_directory_assignment(
    app: &App,
    caller: &Caller,
    input: NewRoleAssignment,
) -> Result<RoleAssignment> {
    require_directory_role_admin(caller)?;
    let role = ids::normalize(&input.role_definition_id);
    if !dr::ALL.iter().any(|(id, _)| *id == role) {
        let known: Vec<String> = dr::ALL.iter().map(|(id, name)| format!("{id} ({name})")).collect();
        return Err(Error::invalid_property(
            "roleDefinitionId",
            format!(
                "'roleDefinitionId' '{}' is not a directory role Grantry knows; use one of: {}.",
                input.role_definition_id,
                known.join(", ")
            ),
        ));
    }
    let scope = input.scope.as_deref().map(str::trim).unwrap_or("/");
    if scope != "/" {
        return Err(Error::invalid_property(
            "directoryScopeId",
            format!(
                "'directoryScopeId' must be '/' (the whole tenant); got '{scope}'. Administrative units are not supported."
            ),
        ));
    }
    let a = RoleAssignment {
        id: ids::new_id(),
        provider: RoleProvider::Directory,
        principal_id: principal_key(&input.principal_id)?,
        role_definition_id: role,
        directory_scope_id: Some("/".into()),
        app_scope_id: None,
        created_date_time: app.now(),
    };
    create(app, caller, a).await
}

pub async fn create_em_assignment(app: &App, caller: &Caller, input: NewRoleAssignment) -> Result<RoleAssignment> {
    caller.require(perms::EM_ROLE_WRITE)?;
    let role = ids::normalize(&input.role_definition_id);
    let Some((_, name, _, catalog_role)) = em_roles::ALL.iter().find(|(id, ..)| *id == role) else {
        let known: Vec<String> = em_roles::ALL.iter().map(|(id, name, ..)| format!("{id} ({name})")).collect();
        return Err(Error::invalid_property(
            "roleDefinitionId",
            format!(
                "'roleDefinitionId' '{}' is not an entitlement management role; use one of: {}.",
                input.role_definition_id,
                known.join(", ")
            ),
        ));
    };
    let Some(scope) = input.scope.as_deref() else {
        return Err(Error::invalid_property(
            "appScopeId",
            "'appScopeId' is required: '/AccessPackageCatalog/{catalogId}' for catalog roles, or '/' for tenant-wide roles.",
        ));
    };
    let catalog = parse_app_scope(scope)?;
    match (&catalog, catalog_role) {
        (Some(_), false) => {
            return Err(Error::invalid_property(
                "appScopeId",
                format!("'{name}' is a tenant-wide role: its 'appScopeId' must be '/'."),
            ));
        }
        (None, true) => {
            return Err(Error::invalid_property(
                "appScopeId",
                format!("'{name}' is a catalog role: its 'appScopeId' must be '/AccessPackageCatalog/{{catalogId}}'."),
            ));
        }
        _ => {}
    }
    require_em_role_admin(caller, catalog.as_deref())?;
    let a = RoleAssignment {
        id: ids::new_id(),
        provider: RoleProvider::EntitlementManagement,
        principal_id: principal_key(&input.principal_id)?,
        role_definition_id: role,
        directory_scope_id: None,
        app_scope_id: Some(catalog.as_deref().map(catalog_scope).unwrap_or_else(|| "/".into())),
        created_date_time: app.now(),
    };
    create(app, caller, a).await
}

/// Makes `principal_id` an owner of `catalog_id`, in the caller's transaction: the creator
/// of a catalog becomes its first owner. Does nothing when the assignment already exists.
pub fn grant_catalog_owner(c: &mut dyn Conn, now: DateTime<Utc>, principal_id: &str, catalog_id: &str) -> Result<()> {
    let a = RoleAssignment {
        id: ids::new_id(),
        provider: RoleProvider::EntitlementManagement,
        principal_id: ids::normalize(principal_id),
        role_definition_id: em_roles::CATALOG_OWNER.to_string(),
        directory_scope_id: None,
        app_scope_id: Some(catalog_scope(catalog_id)),
        created_date_time: now,
    };
    if exists(c, &a)? {
        return Ok(());
    }
    repo::insert(c, &a)?;
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: Some(&a.principal_id),
            entity_type: "roleAssignment",
            entity_id: &a.id,
            action: "create",
            detail: serde_json::to_value(&a).unwrap_or_default(),
        },
    )
}

fn with_principals(c: &mut dyn Conn, items: Vec<RoleAssignment>, expand: Expand) -> Result<Vec<AssignmentView>> {
    items
        .into_iter()
        .map(|a| {
            let principal = if expand.principal { repo::get::<User>(c, &a.principal_id)? } else { None };
            Ok(AssignmentView { assignment: a, principal })
        })
        .collect()
}

pub async fn list_assignments(
    app: &App,
    caller: &Caller,
    provider: RoleProvider,
    filter: Option<&str>,
    expand: Expand,
    page: PageRequest,
) -> Result<Page<AssignmentView>> {
    caller.require(match provider {
        RoleProvider::Directory => perms::ROLE_READ,
        RoleProvider::EntitlementManagement => perms::EM_ROLE_READ,
    })?;
    let (mut clauses, mut params) = filter_sql(filter, provider)?;
    if provider == RoleProvider::EntitlementManagement
        && let Some(catalogs) = caller.readable_catalogs()
    {
        // A delegated caller without a tenant-wide role sees the assignments of the
        // catalogs they can read, and their own.
        let mut visible = vec!["principal_id = ?".to_string()];
        params.push(Value::from(caller.id()));
        for catalog in catalogs {
            visible.push("scope = ?".into());
            params.push(Value::from(catalog_scope(&catalog)));
        }
        clauses.push(format!("({})", visible.join(" OR ")));
    }
    let where_sql = clauses.join(" AND ");
    app.store
        .read(move |c| {
            let rows = repo::list::<RoleAssignment>(c, &where_sql, &params, page.after_seq, page.size + 1)?;
            let page = Page::from_rows(rows, page.size);
            Ok(Page { items: with_principals(c, page.items, expand)?, next: page.next, count: None })
        })
        .await
}

async fn load(app: &App, provider: RoleProvider, id: &str) -> Result<RoleAssignment> {
    let key = ids::normalize(id);
    app.store
        .read(move |c| repo::get::<RoleAssignment>(c, &key))
        .await?
        .filter(|a| a.provider == provider)
        .ok_or_else(|| Error::not_found("role assignment", id))
}

pub async fn get_assignment(
    app: &App,
    caller: &Caller,
    provider: RoleProvider,
    id: &str,
    expand: Expand,
) -> Result<AssignmentView> {
    caller.require(match provider {
        RoleProvider::Directory => perms::ROLE_READ,
        RoleProvider::EntitlementManagement => perms::EM_ROLE_READ,
    })?;
    let a = load(app, provider, id).await?;
    if provider == RoleProvider::EntitlementManagement && !em_visible(caller, &a) {
        return Err(Error::not_found("role assignment", id));
    }
    app.store
        .read(move |c| with_principals(c, vec![a], expand))
        .await?
        .pop()
        .ok_or_else(|| Error::internal("role assignment vanished while expanding"))
}

pub async fn delete_assignment(app: &App, caller: &Caller, provider: RoleProvider, id: &str) -> Result<()> {
    match provider {
        RoleProvider::Directory => require_directory_role_admin(caller)?,
        RoleProvider::EntitlementManagement => caller.require(perms::EM_ROLE_WRITE)?,
    }
    let a = load(app, provider, id).await?;
    if provider == RoleProvider::EntitlementManagement {
        if !em_visible(caller, &a) {
            return Err(Error::not_found("role assignment", id));
        }
        require_em_role_admin(caller, a.app_scope_id.as_deref().and_then(catalog_of_scope))?;
    }
    let (key, actor, at) = (a.id.clone(), caller.id().to_string(), app.now());
    app.store
        .write(move |c| {
            if !repo::delete::<RoleAssignment>(c, &key)? {
                return Err(Error::not_found("role assignment", &key));
            }
            audit::record(
                c,
                AuditEvent {
                    at,
                    actor_id: Some(&actor),
                    entity_type: "roleAssignment",
                    entity_id: &key,
                    action: "delete",
                    detail: serde_json::to_value(&a).unwrap_or_default(),
                },
            )
        })
        .await
}
