//! Custom extensions (`customWorkflowExtensions`, beta `accessPackageCustomWorkflowExtensions`
//! and the deprecated `customAccessPackageWorkflowExtensions`) in a catalog: create, read,
//! list, update, delete, and the check that a policy's stage settings name extensions that
//! exist in its catalog and fit their stage.
//!
//! Authorization follows the catalog's other objects: reading needs a role on the catalog,
//! writing needs Catalog owner (Entra's rule for custom extensions).

use crate::audit::{self, AuditEvent};
use crate::auth::{CatalogRight, perms};
use crate::listing::{ListOptions, Listed};
use crate::{App, Caller};
use grantry_domain::model::{CustomExtension, CustomExtensionStageSetting, ExtensionInput, ExtensionKind, Policy};
use grantry_domain::{Error, Result, ids};
use grantry_store::query::{Field, Kind, Sql};
use grantry_store::{Conn, Value, repo};

/// Entra's bounds for `callbackConfiguration.timeoutDuration` in entitlement management.
pub const MIN_CALLBACK_TIMEOUT_MINUTES: i64 = 5;
pub const MAX_CALLBACK_TIMEOUT_DAYS: i64 = 14;

/// A Standard Webhooks secret: `whsec_` and 32 random bytes in standard base64.
pub(crate) fn new_signing_secret() -> String {
    use base64::Engine as _;
    let mut bytes = Vec::with_capacity(32);
    // Version 4 UUIDs come from the operating system's random source.
    while bytes.len() < 32 {
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    bytes.truncate(32);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&bytes))
}

fn check_callback(kind: ExtensionKind, timeout: Option<chrono::Duration>) -> Result<()> {
    let Some(t) = timeout else { return Ok(()) };
    if kind != ExtensionKind::AssignmentRequestWorkflow {
        return Err(Error::invalid_property(
            "callbackConfiguration",
            format!(
                "Only an accessPackageAssignmentRequestWorkflowExtension can wait for a callback; remove 'callbackConfiguration' from this {}.",
                kind.type_name()
            ),
        ));
    }
    let min = chrono::Duration::minutes(MIN_CALLBACK_TIMEOUT_MINUTES);
    let max = chrono::Duration::days(MAX_CALLBACK_TIMEOUT_DAYS);
    if t < min || t > max {
        return Err(Error::invalid_property(
            "callbackConfiguration.timeoutDuration",
            format!(
                "'callbackConfiguration.timeoutDuration' is {}; it must lie between PT5M and P14D.",
                grantry_domain::duration::format(t)
            ),
        ));
    }
    Ok(())
}

fn load(c: &mut dyn Conn, catalog_id: &str, id: &str) -> Result<CustomExtension> {
    match repo::get::<CustomExtension>(c, &ids::normalize(id))? {
        Some(e) if e.catalog_id == ids::normalize(catalog_id) => Ok(e),
        _ => Err(Error::not_found("custom extension", id)),
    }
}

pub async fn create_extension(
    app: &App,
    caller: &Caller,
    catalog_id: &str,
    input: ExtensionInput,
    default_kind: Option<ExtensionKind>,
) -> Result<CustomExtension> {
    caller.require(perms::EM_WRITE)?;
    let key = catalog_id.to_string();
    let catalog = app.store.read(move |c| crate::catalogs::load_catalog(c, &key)).await?;
    caller.require_in_catalog(&catalog.id, CatalogRight::Own)?;
    let kind = input.kind.or(default_kind).ok_or_else(|| {
        Error::invalid_property(
            "@odata.type",
            format!(
                "Say which kind of custom extension this is: \"@odata.type\": \"#microsoft.graph.{}\" (request stages) or \"#microsoft.graph.{}\" (before expiry).",
                ExtensionKind::AssignmentRequestWorkflow.type_name(),
                ExtensionKind::AssignmentWorkflow.type_name()
            ),
        )
    })?;
    let display_name = input.display_name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
        Error::invalid_property("displayName", "'displayName' is required and must be a non-empty string.")
    })?;
    let callback_timeout = input.callback_timeout.flatten();
    check_callback(kind, callback_timeout)?;
    let actor = crate::catalogs::actor_name(app, caller).await?;
    let now = app.now();
    let extension = CustomExtension {
        id: ids::new_id(),
        catalog_id: catalog.id.clone(),
        kind,
        display_name,
        description: input.description.flatten(),
        endpoint_configuration: input.endpoint_configuration.flatten(),
        authentication_configuration: input.authentication_configuration.flatten(),
        client_configuration: input.client_configuration.flatten(),
        callback_timeout,
        signing_secret: new_signing_secret(),
        created_by: Some(actor.clone()),
        last_modified_by: Some(actor),
        created_date_time: now,
        last_modified_date_time: now,
        disabled: None,
    };
    let saved = extension.clone();
    let actor_id = caller.id().to_string();
    app.store
        .write(move |c| {
            // The catalog may have gone since the check above.
            crate::catalogs::load_catalog(c, &saved.catalog_id)?;
            repo::insert(c, &saved)?;
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor_id),
                    entity_type: "customCalloutExtension",
                    entity_id: &saved.id,
                    action: "create",
                    detail: serde_json::json!({
                        "catalogId": saved.catalog_id,
                        "displayName": saved.display_name,
                        "type": saved.kind.type_name(),
                    }),
                },
            )?;
            crate::callouts::connection_test(c, now, &saved)
        })
        .await?;
    app.outbox_signal.notify_one();
    Ok(extension)
}

pub async fn get_extension(app: &App, caller: &Caller, catalog_id: &str, id: &str) -> Result<CustomExtension> {
    caller.require(perms::EM_READ)?;
    let (catalog_key, key) = (catalog_id.to_string(), id.to_string());
    let catalog = app.store.read(move |c| crate::catalogs::load_catalog(c, &catalog_key)).await?;
    caller.require_in_catalog(&catalog.id, CatalogRight::Read)?;
    app.store.read(move |c| load(c, &catalog.id, &key)).await
}

fn kind_value(s: &str) -> Option<&'static str> {
    let s = s.trim().trim_start_matches('#');
    ExtensionKind::parse(s.strip_prefix("microsoft.graph.").unwrap_or(s)).map(|k| k.type_name())
}
fn kinds_allowed() -> String {
    ExtensionKind::ALL.iter().map(|k| k.type_name()).collect::<Vec<_>>().join(", ")
}

/// Filterable and sortable extension properties.
pub const EXTENSION_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field { names: &["description"], sql: "json_extract(body, '$.description')", kind: Kind::TextIgnoreCase },
    Field { names: &["@odata.type"], sql: "kind", kind: Kind::Enum { normalize: kind_value, allowed: kinds_allowed } },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field { names: &["lastModifiedDateTime"], sql: "modified_us", kind: Kind::Time },
];

pub async fn list_extensions(
    app: &App,
    caller: &Caller,
    catalog_id: &str,
    options: ListOptions,
) -> Result<Listed<CustomExtension>> {
    caller.require(perms::EM_READ)?;
    let key = catalog_id.to_string();
    let catalog = app.store.read(move |c| crate::catalogs::load_catalog(c, &key)).await?;
    caller.require_in_catalog(&catalog.id, CatalogRight::Read)?;
    let scope = vec![Sql { text: "catalog_id = ?".into(), params: vec![Value::from(catalog.id)] }];
    app.store.read(move |c| crate::listing::list(c, EXTENSION_FIELDS, scope, &options)).await
}

/// The extensions with the given ids (for a policy's `$expand`), without authorization: the
/// caller has already been allowed to read the policy that names them.
pub async fn extensions_by_ids(app: &App, ids: Vec<String>) -> Result<Vec<CustomExtension>> {
    crate::listing::find_in(app, "id", ids).await
}

/// Updates what `input` names (PATCH, and PUT as Entra's examples send it: the properties
/// to change with the `@odata.type`). The kind cannot change.
pub async fn update_extension(
    app: &App,
    caller: &Caller,
    catalog_id: &str,
    id: &str,
    input: ExtensionInput,
) -> Result<CustomExtension> {
    caller.require(perms::EM_WRITE)?;
    let (catalog_key, key) = (catalog_id.to_string(), id.to_string());
    let catalog = app.store.read(move |c| crate::catalogs::load_catalog(c, &catalog_key)).await?;
    caller.require_in_catalog(&catalog.id, CatalogRight::Own)?;
    let current = {
        let catalog_id = catalog.id.clone();
        app.store.read(move |c| load(c, &catalog_id, &key)).await?
    };
    if let Some(kind) = input.kind
        && kind != current.kind
    {
        return Err(Error::invalid_property(
            "@odata.type",
            format!(
                "This custom extension is a {}; its type cannot change to {} (create a new extension instead).",
                current.kind.type_name(),
                kind.type_name()
            ),
        ));
    }
    let mut next = current.clone();
    if let Some(name) = input.display_name {
        if name.trim().is_empty() {
            return Err(Error::invalid_property("displayName", "'displayName' must be a non-empty string."));
        }
        next.display_name = name;
    }
    if let Some(v) = input.description {
        next.description = v;
    }
    if let Some(v) = input.endpoint_configuration {
        next.endpoint_configuration = v;
    }
    if let Some(v) = input.authentication_configuration {
        next.authentication_configuration = v;
    }
    if let Some(v) = input.client_configuration {
        next.client_configuration = v;
    }
    if let Some(v) = input.callback_timeout {
        next.callback_timeout = v;
    }
    check_callback(next.kind, next.callback_timeout)?;
    // An administrator's change is the answer to a disabled extension: Grantry calls it again.
    let enabled_again = next.disabled.take().map(|d| d.reason);
    next.last_modified_by = Some(crate::catalogs::actor_name(app, caller).await?);
    next.last_modified_date_time = app.now();
    let saved = next.clone();
    let actor_id = caller.id().to_string();
    app.store
        .write(move |c| {
            if !repo::update(c, &saved)? {
                return Err(Error::not_found("custom extension", &saved.id));
            }
            audit::record(
                c,
                AuditEvent {
                    at: saved.last_modified_date_time,
                    actor_id: Some(&actor_id),
                    entity_type: "customCalloutExtension",
                    entity_id: &saved.id,
                    action: "update",
                    detail: serde_json::json!({ "displayName": saved.display_name, "enabledAgain": enabled_again }),
                },
            )
        })
        .await?;
    Ok(next)
}

/// The policies of a catalog whose stage settings name `extension_id`.
fn policies_using(c: &mut dyn Conn, catalog_id: &str, extension_id: &str) -> Result<Vec<Policy>> {
    // A cheap text match narrows the candidates; the decoded settings decide.
    let candidates: Vec<Policy> = repo::find_all(
        c,
        "catalog_id = ? AND body LIKE ?",
        &[Value::from(catalog_id), Value::from(format!("%{extension_id}%"))],
    )?;
    Ok(candidates
        .into_iter()
        .filter(|p| {
            p.custom_extension_stage_settings.iter().any(|s| ids::normalize(&s.custom_extension_id) == extension_id)
        })
        .collect())
}

/// Deletes an extension; refused while a policy's stage settings name it.
pub async fn delete_extension(app: &App, caller: &Caller, catalog_id: &str, id: &str) -> Result<()> {
    caller.require(perms::EM_WRITE)?;
    let (catalog_key, key) = (catalog_id.to_string(), id.to_string());
    let catalog = app.store.read(move |c| crate::catalogs::load_catalog(c, &catalog_key)).await?;
    caller.require_in_catalog(&catalog.id, CatalogRight::Own)?;
    let actor_id = caller.id().to_string();
    let at = app.now();
    app.store
        .write(move |c| {
            let current = load(c, &catalog.id, &key)?;
            let users = policies_using(c, &catalog.id, &current.id)?;
            if let Some(first) = users.first() {
                return Err(Error::conflict(
                    "CustomExtensionInUse",
                    format!(
                        "The custom extension '{}' is used by {} policy(ies), e.g. '{}' ({}); remove it from their customExtensionStageSettings first.",
                        current.id,
                        users.len(),
                        first.display_name,
                        first.id
                    ),
                ));
            }
            repo::delete::<CustomExtension>(c, &current.id)?;
            audit::record(
                c,
                AuditEvent {
                    at,
                    actor_id: Some(&actor_id),
                    entity_type: "customCalloutExtension",
                    entity_id: &current.id,
                    action: "delete",
                    detail: serde_json::json!({ "catalogId": current.catalog_id }),
                },
            )
        })
        .await
}

/// Checks a policy's stage settings inside the write that stores it: each names an
/// extension of the policy's catalog whose type serves the stage, and no stage appears twice.
pub(crate) fn check_stage_settings(
    c: &mut dyn Conn,
    catalog_id: &str,
    settings: &[CustomExtensionStageSetting],
    property: &str,
) -> Result<()> {
    let mut seen = Vec::new();
    for (i, s) in settings.iter().enumerate() {
        let target = format!("{property}[{i}].customExtension.id");
        if seen.contains(&s.stage) {
            return Err(Error::invalid_property(
                &format!("{property}[{i}].stage"),
                format!(
                    "The stage '{}' appears more than once in '{property}'; name one extension per stage.",
                    s.stage.v1()
                ),
            ));
        }
        seen.push(s.stage);
        let ext = match repo::get::<CustomExtension>(c, &ids::normalize(&s.custom_extension_id))? {
            Some(e) if e.catalog_id == catalog_id => e,
            _ => {
                return Err(Error::bad_request(
                    "InvalidCustomExtension",
                    format!(
                        "'{target}' is '{}', but the policy's catalog '{catalog_id}' has no custom extension with that id; create it under catalogs/{catalog_id}/customWorkflowExtensions first.",
                        s.custom_extension_id
                    ),
                )
                .with_target(target));
            }
        };
        if !ext.kind.serves(s.stage) {
            return Err(Error::bad_request(
                "InvalidCustomExtension",
                format!(
                    "The custom extension '{}' is a {}, which cannot run at stage '{}'; request stages need an {} and the expiry stages an {}.",
                    ext.id,
                    ext.kind.type_name(),
                    s.stage.v1(),
                    ExtensionKind::AssignmentRequestWorkflow.type_name(),
                    ExtensionKind::AssignmentWorkflow.type_name()
                ),
            )
            .with_target(target));
        }
    }
    Ok(())
}
