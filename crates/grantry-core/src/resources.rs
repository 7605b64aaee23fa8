//! Resources enter and leave catalogs through resource requests, which complete at once.
//! A group resource has two roles (`Member`, `Owner`) and one root scope.

use crate::auth::{CatalogRight, perms};
use crate::catalogs::{actor_name, join_where, load_catalog, may_manage_group};
use crate::listing::{ListOptions, Listed};
use crate::{App, Caller, audit};
use grantry_domain::enums::{RequestState, RequestType};
use grantry_domain::model::{Group, Resource, ResourceRequest, ResourceRole, ResourceScope, origin_system};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::query::{Field, Kind, Sql};
use grantry_store::{Conn, Value, repo};

/// A resource request as the wire layer read it (either dialect's body).
#[derive(Debug, Clone, Default)]
pub struct NewResourceRequest {
    pub catalog_id: String,
    pub request_type: Option<RequestType>,
    pub justification: Option<String>,
    /// `resource.id` (used by removals and updates).
    pub resource_id: Option<String>,
    pub origin_id: Option<String>,
    pub origin_system: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub resource_type: Option<String>,
    pub url: Option<String>,
    pub attributes: Option<Vec<serde_json::Value>>,
    /// The body property that held the resource (`resource` or `accessPackageResource`),
    /// for error messages.
    pub resource_property: String,
    /// The body property that held the catalog (`catalog` or `catalogId`).
    pub catalog_property: String,
}

fn unsupported_origin(system: &str, property: &str) -> Error {
    Error::bad_request(
        "UnsupportedOriginSystem",
        format!(
            "Resources with originSystem '{system}' are not supported by this server; groups ('{}') and applications ('{}') can be added to a catalog.",
            origin_system::AAD_GROUP,
            origin_system::AAD_APPLICATION
        ),
    )
    .with_target(format!("{property}.originSystem"))
}

fn canonical_origin_system(system: &str, property: &str) -> Result<&'static str> {
    if system.eq_ignore_ascii_case(origin_system::AAD_GROUP) {
        Ok(origin_system::AAD_GROUP)
    } else if system.eq_ignore_ascii_case(origin_system::AAD_APPLICATION) {
        Ok(origin_system::AAD_APPLICATION)
    } else {
        Err(unsupported_origin(system, property))
    }
}

/// The roles and root scope of a group resource.
fn group_children(resource: &Resource) -> (Vec<ResourceRole>, ResourceScope) {
    let gid = &resource.origin_id;
    let role = |name: &str| ResourceRole {
        id: ids::new_id(),
        resource_id: resource.id.clone(),
        catalog_id: resource.catalog_id.clone(),
        origin_id: format!("{name}_{gid}"),
        origin_system: origin_system::AAD_GROUP.into(),
        display_name: name.into(),
        description: None,
    };
    let scope = ResourceScope {
        id: ids::new_id(),
        resource_id: resource.id.clone(),
        catalog_id: resource.catalog_id.clone(),
        origin_id: gid.clone(),
        origin_system: origin_system::AAD_GROUP.into(),
        display_name: Some("Root".into()),
        description: Some("Root Scope".into()),
        is_root_scope: true,
    };
    (vec![role("Member"), role("Owner")], scope)
}

/// The roles and root scope of an application resource: one role per app role users may
/// hold (its originId the app role's id), or "Default Access" when it defines none.
fn application_children(
    resource: &Resource,
    app: &crate::applications::Application,
) -> (Vec<ResourceRole>, ResourceScope) {
    let role = |origin_id: &str, name: &str, description: Option<String>| ResourceRole {
        id: ids::new_id(),
        resource_id: resource.id.clone(),
        catalog_id: resource.catalog_id.clone(),
        origin_id: origin_id.to_string(),
        origin_system: origin_system::AAD_APPLICATION.into(),
        display_name: name.into(),
        description,
    };
    let mut roles: Vec<ResourceRole> = app
        .app_roles
        .iter()
        .filter(|r| r.for_users())
        .map(|r| role(&r.id, &r.display_name, r.description.clone()))
        .collect();
    if roles.is_empty() {
        roles.push(role(crate::applications::DEFAULT_ACCESS_ROLE, "Default Access", None));
    }
    let scope = ResourceScope {
        id: ids::new_id(),
        resource_id: resource.id.clone(),
        catalog_id: resource.catalog_id.clone(),
        origin_id: app.sp_id.clone(),
        origin_system: origin_system::AAD_APPLICATION.into(),
        display_name: Some("Root".into()),
        description: Some("Root Scope".into()),
        is_root_scope: true,
    };
    (roles, scope)
}

/// Brings the roles of every catalog resource for `app`'s service principal in line with
/// its app roles: new user-assignable roles are added, changed names and descriptions
/// follow, and roles gone from the application are removed unless an access package still
/// delivers them (`applications::update_for` refuses to remove those).
pub(crate) fn refresh_application_roles(c: &mut dyn Conn, app: &crate::applications::Application) -> Result<()> {
    let resources: Vec<Resource> = repo::find_all(
        c,
        "origin_system = ? AND origin_id = ?",
        &[Value::from(origin_system::AAD_APPLICATION), Value::from(&app.sp_id)],
    )?;
    for resource in resources {
        let (wanted, _) = application_children(&resource, app);
        let existing: Vec<ResourceRole> = repo::find_all(c, "resource_id = ?", &[Value::from(&resource.id)])?;
        for role in &wanted {
            match existing.iter().find(|r| r.origin_id == role.origin_id) {
                Some(old) if old.display_name != role.display_name || old.description != role.description => {
                    let mut changed = old.clone();
                    changed.display_name = role.display_name.clone();
                    changed.description = role.description.clone();
                    repo::update(c, &changed)?;
                }
                Some(_) => {}
                None => repo::insert(c, role)?,
            }
        }
        for old in existing.iter().filter(|r| !wanted.iter().any(|w| w.origin_id == r.origin_id)) {
            let used = c.query_one("SELECT 1 FROM role_scopes WHERE role_id = ?", &[Value::from(&old.id)])?.is_some();
            if !used {
                repo::delete::<ResourceRole>(c, &old.id)?;
            }
        }
    }
    Ok(())
}

fn already_onboarded(origin_id: &str) -> Error {
    Error::conflict(
        "ResourceAlreadyOnboarded",
        format!("The resource with originId '{origin_id}' is already in this catalog."),
    )
}

/// Finds the catalog resource a removal or update names, by `id` or by origin.
fn find_target(c: &mut dyn Conn, input: &NewResourceRequest) -> Result<Resource> {
    let prop = &input.resource_property;
    if let Some(rid) = &input.resource_id {
        let found: Option<Resource> = repo::get(c, &ids::normalize(rid))?;
        return match found {
            Some(r) if r.catalog_id == input.catalog_id => Ok(r),
            _ => Err(Error::bad_request(
                "ResourceNotFound",
                format!("The catalog '{}' has no resource with id '{rid}'.", input.catalog_id),
            )
            .with_target(format!("{prop}.id"))),
        };
    }
    let Some(origin_id) = &input.origin_id else {
        return Err(Error::invalid_property(
            prop,
            format!("'{prop}' must name the resource by 'id' or by 'originId' and 'originSystem'."),
        ));
    };
    let mut sql = "catalog_id = ? AND LOWER(origin_id) = ?".to_string();
    let mut params = vec![Value::from(&input.catalog_id), Value::from(origin_id.to_lowercase())];
    if let Some(system) = &input.origin_system {
        sql.push_str(" AND LOWER(origin_system) = ?");
        params.push(Value::from(system.to_lowercase()));
    }
    repo::find_one(c, &sql, &params)?.ok_or_else(|| {
        Error::bad_request(
            "ResourceNotFound",
            format!("The catalog '{}' has no resource with originId '{origin_id}'.", input.catalog_id),
        )
        .with_target(format!("{prop}.originId"))
    })
}

pub async fn create_resource_request(app: &App, caller: &Caller, input: NewResourceRequest) -> Result<ResourceRequest> {
    caller.require(perms::EM_WRITE)?;
    let request_type = input.request_type.ok_or_else(|| {
        Error::invalid_property("requestType", "'requestType' is required: one of adminAdd, adminUpdate, adminRemove.")
    })?;
    if !matches!(request_type, RequestType::AdminAdd | RequestType::AdminUpdate | RequestType::AdminRemove) {
        return Err(Error::invalid_property(
            "requestType",
            format!(
                "'requestType' of a resource request must be adminAdd, adminUpdate or adminRemove (got '{}').",
                request_type.v1()
            ),
        ));
    }
    let catalog = {
        let key = input.catalog_id.clone();
        let prop = input.catalog_property.clone();
        app.store
            .read(move |c| match load_catalog(c, &key) {
                Err(e) if e.kind == ErrorKind::NotFound => Err(Error::bad_request(
                    "CatalogNotFound",
                    format!("No catalog with id '{key}' exists; '{prop}' must name an existing catalog."),
                )
                .with_target(prop)),
                other => other,
            })
            .await?
    };
    caller.require_in_catalog(&catalog.id, CatalogRight::Own)?;
    let mut input = input;
    input.catalog_id = catalog.id.clone();
    let actor = actor_name(app, caller).await?;
    let now = app.now();
    let prop = input.resource_property.clone();

    if request_type == RequestType::AdminAdd {
        let system = input.origin_system.clone().ok_or_else(|| {
            Error::invalid_property(
                &format!("{prop}.originSystem"),
                format!("'{prop}.originSystem' is required; use '{}' for a group.", origin_system::AAD_GROUP),
            )
        })?;
        let system = canonical_origin_system(&system, &prop)?;
        let origin_id = input.origin_id.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            Error::invalid_property(
                &format!("{prop}.originId"),
                format!("'{prop}.originId' is required: the object id of the group or service principal to add."),
            )
        })?;
        if system == origin_system::AAD_APPLICATION {
            return add_application(app, caller, &input, &catalog.id, &origin_id, actor, now).await;
        }
        let group_id = ids::normalize(&origin_id);
        if caller.is_app() {
            caller.require(perms::GROUP_WRITE)?;
        }
        let (group, may, exists) = {
            let (gid, cid, caller2) = (group_id.clone(), catalog.id.clone(), caller.clone());
            app.store
                .read(move |c| {
                    let group: Option<Group> = repo::get(c, &gid)?;
                    let may = may_manage_group(c, &caller2, &gid)?;
                    let exists = repo::count(
                        c,
                        "resources",
                        "catalog_id = ? AND origin_system = ? AND origin_id = ?",
                        &[Value::from(cid), Value::from(origin_system::AAD_GROUP), Value::from(gid)],
                    )? > 0;
                    Ok((group, may, exists))
                })
                .await?
        };
        let group = group.ok_or_else(|| {
            Error::bad_request("ResourceNotFound", format!("No group with id '{origin_id}' exists in the directory."))
                .with_target(format!("{prop}.originId"))
        })?;
        if !may {
            return Err(Error::forbidden(format!(
                "Adding the group '{}' to a catalog needs ownership of the group or the Groups Administrator, User Administrator or Global Administrator role.",
                group.id
            )));
        }
        if exists {
            return Err(already_onboarded(&group.id));
        }
        let resource = Resource {
            id: ids::new_id(),
            catalog_id: catalog.id.clone(),
            origin_id: group.id.clone(),
            origin_system: system.to_string(),
            display_name: input.display_name.clone().or_else(|| Some(group.display_name.clone())),
            description: input.description.clone().or_else(|| group.description.clone()),
            resource_type: Some(
                if group.group_types.iter().any(|t| t.eq_ignore_ascii_case("Unified")) {
                    "O365 Group"
                } else {
                    "Security Group"
                }
                .into(),
            ),
            url: input.url.clone(),
            attributes: input.attributes.clone().unwrap_or_default(),
            added_by: Some(actor.clone()),
            created_date_time: now,
            modified_date_time: now,
        };
        let request = ResourceRequest {
            id: ids::new_id(),
            catalog_id: catalog.id.clone(),
            resource_id: Some(resource.id.clone()),
            request_type,
            state: RequestState::Delivered,
            justification: input.justification.clone(),
            requestor_id: Some(caller.id().to_string()),
            resource: Some(resource.clone()),
            created_date_time: now,
        };
        let (roles, scope) = group_children(&resource);
        let saved = request.clone();
        let actor_id = caller.id().to_string();
        let gid = group.id.clone();
        app.store
            .write(move |c| {
                repo::insert(c, &resource)?;
                for role in &roles {
                    repo::insert(c, role)?;
                }
                repo::insert(c, &scope)?;
                repo::insert(c, &saved)?;
                audit::record(
                    c,
                    audit::AuditEvent {
                        at: now,
                        actor_id: Some(&actor_id),
                        entity_type: "resource",
                        entity_id: &resource.id,
                        action: "add",
                        detail: serde_json::json!({ "catalogId": resource.catalog_id, "originId": resource.origin_id }),
                    },
                )
            })
            .await
            .map_err(|e| if e.kind == ErrorKind::Conflict { already_onboarded(&gid) } else { e })?;
        return Ok(request);
    }

    // adminUpdate / adminRemove act on a resource already in the catalog.
    let actor_id = caller.id().to_string();
    let requestor = caller.id().to_string();
    app.store
        .write(move |c| {
            let mut resource = find_target(c, &input)?;
            if request_type == RequestType::AdminRemove {
                let in_use = repo::count(
                    c,
                    "role_scopes",
                    "role_id IN (SELECT id FROM resource_roles WHERE resource_id = ?) OR scope_id IN (SELECT id FROM resource_scopes WHERE resource_id = ?)",
                    &[Value::from(&resource.id), Value::from(&resource.id)],
                )?;
                if in_use > 0 {
                    return Err(Error::conflict(
                        "ResourceInUse",
                        format!(
                            "The resource '{}' is still used by {in_use} access package role scope(s); remove its roles from those access packages first.",
                            resource.id
                        ),
                    ));
                }
                c.execute("DELETE FROM resource_roles WHERE resource_id = ?", &[Value::from(&resource.id)])?;
                c.execute("DELETE FROM resource_scopes WHERE resource_id = ?", &[Value::from(&resource.id)])?;
                repo::delete::<Resource>(c, &resource.id)?;
            } else {
                if let Some(v) = &input.display_name {
                    resource.display_name = Some(v.clone());
                }
                if let Some(v) = &input.description {
                    resource.description = Some(v.clone());
                }
                if let Some(v) = &input.attributes {
                    resource.attributes = v.clone();
                }
                if let Some(v) = &input.url {
                    resource.url = Some(v.clone());
                }
                resource.modified_date_time = now;
                repo::update(c, &resource)?;
            }
            let request = ResourceRequest {
                id: ids::new_id(),
                catalog_id: input.catalog_id.clone(),
                resource_id: Some(resource.id.clone()),
                request_type,
                state: RequestState::Delivered,
                justification: input.justification.clone(),
                requestor_id: Some(requestor),
                resource: Some(resource.clone()),
                created_date_time: now,
            };
            repo::insert(c, &request)?;
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "resource",
                    entity_id: &resource.id,
                    action: if request_type == RequestType::AdminRemove { "remove" } else { "update" },
                    detail: serde_json::json!({ "catalogId": resource.catalog_id, "by": actor }),
                },
            )?;
            Ok(request)
        })
        .await
}

/// `adminAdd` of a service principal (by its id or appId): its app roles become the
/// resource's roles. Applications are managed by application administrators, so a
/// signed-in caller needs Global Administrator and an application caller an application
/// permission.
async fn add_application(
    app: &App,
    caller: &Caller,
    input: &NewResourceRequest,
    catalog_id: &str,
    origin_id: &str,
    actor: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ResourceRequest> {
    use grantry_domain::model::directory_roles as dr;
    let prop = input.resource_property.clone();
    if caller.is_app() {
        caller.require(perms::APPLICATION_READ)?;
    } else if !caller.has_directory_role(dr::GLOBAL_ADMINISTRATOR) {
        return Err(Error::forbidden("Adding an application to a catalog needs the Global Administrator role."));
    }
    let key = origin_id.to_string();
    let found = app.store.read(move |c| crate::applications::find_by_id(c, &key)).await?;
    let found = found.ok_or_else(|| {
        Error::bad_request(
            "ResourceNotFound",
            format!("No service principal with id '{origin_id}' exists; create it with POST /servicePrincipals."),
        )
        .with_target(format!("{prop}.originId"))
    })?;
    let resource = Resource {
        id: ids::new_id(),
        catalog_id: catalog_id.to_string(),
        origin_id: found.sp_id.clone(),
        origin_system: origin_system::AAD_APPLICATION.into(),
        display_name: input.display_name.clone().or_else(|| Some(found.display_name.clone())),
        description: input.description.clone(),
        resource_type: Some("Application".into()),
        url: input.url.clone(),
        attributes: input.attributes.clone().unwrap_or_default(),
        added_by: Some(actor),
        created_date_time: now,
        modified_date_time: now,
    };
    let request = ResourceRequest {
        id: ids::new_id(),
        catalog_id: catalog_id.to_string(),
        resource_id: Some(resource.id.clone()),
        request_type: RequestType::AdminAdd,
        state: RequestState::Delivered,
        justification: input.justification.clone(),
        requestor_id: Some(caller.id().to_string()),
        resource: Some(resource.clone()),
        created_date_time: now,
    };
    let (roles, scope) = application_children(&resource, &found);
    let saved = request.clone();
    let actor_id = caller.id().to_string();
    let sp_id = found.sp_id.clone();
    app.store
        .write(move |c| {
            let exists = repo::count(
                c,
                "resources",
                "catalog_id = ? AND origin_system = ? AND origin_id = ?",
                &[Value::from(&resource.catalog_id), Value::from(origin_system::AAD_APPLICATION), Value::from(&resource.origin_id)],
            )? > 0;
            if exists {
                return Err(already_onboarded(&resource.origin_id));
            }
            repo::insert(c, &resource)?;
            for role in &roles {
                repo::insert(c, role)?;
            }
            repo::insert(c, &scope)?;
            repo::insert(c, &saved)?;
            audit::record(
                c,
                audit::AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "resource",
                    entity_id: &resource.id,
                    action: "add",
                    detail: serde_json::json!({ "catalogId": resource.catalog_id, "originId": resource.origin_id, "originSystem": origin_system::AAD_APPLICATION }),
                },
            )
        })
        .await
        .map_err(|e| if e.kind == ErrorKind::Conflict { already_onboarded(&sp_id) } else { e })?;
    Ok(request)
}

pub async fn get_resource_request(app: &App, caller: &Caller, id: &str) -> Result<ResourceRequest> {
    caller.require(perms::EM_READ)?;
    let key = ids::normalize(id);
    let shown = id.to_string();
    let request: ResourceRequest = app
        .store
        .read(move |c| repo::get(c, &key))
        .await?
        .ok_or_else(|| Error::not_found("resource request", &shown))?;
    caller.require_in_catalog(&request.catalog_id, CatalogRight::Read)?;
    Ok(request)
}

pub const RESOURCE_REQUEST_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["catalog/id", "catalogId"], sql: "catalog_id", kind: Kind::Id },
    Field {
        names: &["requestType"],
        sql: "request_type",
        kind: Kind::Enum { normalize: |s| RequestType::parse(s).map(|v| v.v1()), allowed: RequestType::allowed },
    },
    Field {
        names: &["state", "requestState"],
        sql: "state",
        kind: Kind::Enum { normalize: |s| RequestState::parse(s).map(|v| v.v1()), allowed: RequestState::allowed },
    },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
];

pub async fn list_resource_requests(
    app: &App,
    caller: &Caller,
    options: ListOptions,
) -> Result<Listed<ResourceRequest>> {
    caller.require(perms::EM_READ)?;
    let scope = crate::catalogs::readable_scope(caller, "catalog_id");
    app.store.read(move |c| crate::listing::list(c, RESOURCE_REQUEST_FIELDS, scope, &options)).await
}

/// Resources of one catalog, or of every catalog the caller can read when `catalog_id` is
/// `None`.
pub const RESOURCE_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["originId"], sql: "origin_id", kind: Kind::Text },
    Field { names: &["originSystem"], sql: "origin_system", kind: Kind::TextIgnoreCase },
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field { names: &["description"], sql: "json_extract(body, '$.description')", kind: Kind::TextIgnoreCase },
    Field { names: &["resourceType"], sql: "json_extract(body, '$.resourceType')", kind: Kind::TextIgnoreCase },
    Field { names: &["catalog/id", "catalogId"], sql: "catalog_id", kind: Kind::Id },
    Field { names: &["createdDateTime", "addedOn"], sql: "created_us", kind: Kind::Time },
];

pub async fn list_resources(
    app: &App,
    caller: &Caller,
    catalog_id: Option<&str>,
    options: ListOptions,
) -> Result<Listed<Resource>> {
    caller.require(perms::EM_READ)?;
    let scope = match catalog_id {
        Some(cid) => {
            let key = cid.to_string();
            let catalog = app.store.read(move |c| load_catalog(c, &key)).await?;
            caller.require_in_catalog(&catalog.id, CatalogRight::Read)?;
            vec![Sql { text: "catalog_id = ?".into(), params: vec![Value::from(catalog.id)] }]
        }
        None => crate::catalogs::readable_scope(caller, "catalog_id"),
    };
    app.store.read(move |c| crate::listing::list(c, RESOURCE_FIELDS, scope, &options)).await
}

/// One resource; with `catalog_id`, it must belong to that catalog.
pub async fn get_resource(app: &App, caller: &Caller, catalog_id: Option<&str>, id: &str) -> Result<Resource> {
    caller.require(perms::EM_READ)?;
    let cid = match catalog_id {
        Some(cid) => {
            let key = cid.to_string();
            Some(app.store.read(move |c| load_catalog(c, &key)).await?.id)
        }
        None => None,
    };
    let key = ids::normalize(id);
    let shown = id.to_string();
    let resource: Resource = app
        .store
        .read(move |c| repo::get::<Resource>(c, &key))
        .await?
        .filter(|r| cid.as_ref().is_none_or(|c| *c == r.catalog_id))
        .ok_or_else(|| Error::not_found("resource", &shown))?;
    caller.require_in_catalog(&resource.catalog_id, CatalogRight::Read)?;
    Ok(resource)
}

/// The roles of the given resources (for `$expand`); the caller must already have been
/// allowed to read the resources.
pub async fn roles_of(app: &App, resource_ids: Vec<String>) -> Result<Vec<ResourceRole>> {
    crate::listing::find_in(app, "resource_id", resource_ids).await
}

pub async fn scopes_of(app: &App, resource_ids: Vec<String>) -> Result<Vec<ResourceScope>> {
    crate::listing::find_in(app, "resource_id", resource_ids).await
}

pub async fn resources_by_ids(app: &App, ids: Vec<String>) -> Result<Vec<Resource>> {
    crate::listing::find_in(app, "id", ids).await
}

pub async fn roles_by_ids(app: &App, ids: Vec<String>) -> Result<Vec<ResourceRole>> {
    crate::listing::find_in(app, "id", ids).await
}

pub async fn scopes_by_ids(app: &App, ids: Vec<String>) -> Result<Vec<ResourceScope>> {
    crate::listing::find_in(app, "id", ids).await
}

/// Roles of a catalog's resources (`/catalogs/{id}/resourceRoles`), optionally of one
/// resource (`/catalogs/{id}/resources/{rid}/roles`).
pub const RESOURCE_ROLE_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["originId"], sql: "origin_id", kind: Kind::Text },
    Field { names: &["originSystem"], sql: "origin_system", kind: Kind::TextIgnoreCase },
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field { names: &["resource/id", "accessPackageResource/id"], sql: "resource_id", kind: Kind::Id },
];

pub async fn list_resource_roles(
    app: &App,
    caller: &Caller,
    catalog_id: &str,
    resource_id: Option<&str>,
    options: ListOptions,
) -> Result<Listed<ResourceRole>> {
    let (clauses, params) = child_scope(app, caller, catalog_id, resource_id).await?;
    let scope = vec![Sql { text: join_where(&clauses), params }];
    app.store.read(move |c| crate::listing::list(c, RESOURCE_ROLE_FIELDS, scope, &options)).await
}

pub const RESOURCE_SCOPE_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["originId"], sql: "origin_id", kind: Kind::Text },
    Field { names: &["originSystem"], sql: "origin_system", kind: Kind::TextIgnoreCase },
    Field { names: &["displayName"], sql: "json_extract(body, '$.displayName')", kind: Kind::TextIgnoreCase },
    Field { names: &["resource/id", "accessPackageResource/id"], sql: "resource_id", kind: Kind::Id },
];

pub async fn list_resource_scopes(
    app: &App,
    caller: &Caller,
    catalog_id: &str,
    resource_id: Option<&str>,
    options: ListOptions,
) -> Result<Listed<ResourceScope>> {
    let (clauses, params) = child_scope(app, caller, catalog_id, resource_id).await?;
    let scope = vec![Sql { text: join_where(&clauses), params }];
    app.store.read(move |c| crate::listing::list(c, RESOURCE_SCOPE_FIELDS, scope, &options)).await
}

async fn child_scope(
    app: &App,
    caller: &Caller,
    catalog_id: &str,
    resource_id: Option<&str>,
) -> Result<(Vec<String>, Vec<Value>)> {
    caller.require(perms::EM_READ)?;
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    match resource_id {
        Some(rid) => {
            let resource = get_resource(app, caller, Some(catalog_id), rid).await?;
            clauses.push("resource_id = ?".to_string());
            params.push(Value::from(resource.id));
        }
        None => {
            let key = catalog_id.to_string();
            let catalog = app.store.read(move |c| load_catalog(c, &key)).await?;
            caller.require_in_catalog(&catalog.id, CatalogRight::Read)?;
            clauses.push("catalog_id = ?".to_string());
            params.push(Value::from(catalog.id));
        }
    }
    Ok((clauses, params))
}
