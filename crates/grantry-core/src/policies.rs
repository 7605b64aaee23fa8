//! Access package assignment policies: create, read, list, replace, delete.
//!
//! Decisions where Entra is silent (recorded in docs/decisions.md):
//! - question ids and custom extension stage setting ids are assigned by the service on
//!   create; on replacement an id sent that matches one of the policy's current ids is kept
//!   (so answers already given stay linked), any other gets a new id.
//! - `customExtensionStageSettings` must name custom extensions of the policy's catalog whose
//!   type serves the stage (checked in the write that stores the policy), one per stage.
//! - stages kept while approval is not required are allowed and stored (not used); approval
//!   required with no stage is refused.
//! - a replacement may not move the policy to another access package.
//! - state one dialect cannot express (beta `acceptRequests: false`, `isBackup` on allowed
//!   requestors, `approvalMode: Parallel`) survives a replacement written in the other one.

use crate::audit::{self, AuditEvent};
use crate::auth::{CatalogRight, perms};
use crate::listing::{ListOptions, Listed};
use crate::{App, Caller};
use grantry_domain::model::{AccessPackage, Catalog, Policy, PolicyInput};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::query::{Field, Kind, Sql};
use grantry_store::{Conn, Value, repo};
use std::collections::HashMap;

/// Where a nested path put the request: `/accessPackages/{id}/…` or
/// `/catalogs/{catalog}/accessPackages/{id}/…`.
#[derive(Debug, Clone, Default)]
pub struct PackageScope {
    pub access_package_id: String,
    pub catalog_id: Option<String>,
}

fn caller_name(caller: &Caller) -> Option<String> {
    Some(caller.principal.display_name.clone().unwrap_or_else(|| caller.id().to_string()))
}

/// The policies of one access package, in creation order (for the package's
/// `$expand=assignmentPolicies`).
pub fn policies_for_package(c: &mut dyn Conn, access_package_id: &str) -> Result<Vec<Policy>> {
    repo::find_all(c, "access_package_id = ?", &[Value::from(access_package_id)])
}

/// Loads the package named by a nested path, checking it is in the path's catalog.
async fn scoped_package(app: &App, scope: &PackageScope) -> Result<AccessPackage> {
    let id = ids::normalize(&scope.access_package_id);
    let package: Option<AccessPackage> = {
        let id = id.clone();
        app.store.read(move |c| repo::get(c, &id)).await?
    };
    match package {
        Some(p) if scope.catalog_id.as_deref().is_none_or(|c| ids::normalize(c) == p.catalog_id) => Ok(p),
        _ => Err(Error::not_found("access package", &scope.access_package_id)),
    }
}

fn invalid_package(target: &str, message: impl Into<String>) -> Error {
    Error::bad_request("InvalidAccessPackage", message).with_target(target)
}

/// Gives every question and stage setting an id: kept when it is one of `existing`'s,
/// otherwise new.
fn assign_ids(policy: &mut Policy, existing: Option<&Policy>) {
    let keep_q: Vec<&str> = existing.map(|e| e.questions.iter().map(|q| q.id.as_str()).collect()).unwrap_or_default();
    for q in &mut policy.questions {
        if q.id.is_empty() || !keep_q.contains(&q.id.as_str()) {
            q.id = ids::new_id();
        }
    }
    let keep_s: Vec<&str> =
        existing.map(|e| e.custom_extension_stage_settings.iter().map(|s| s.id.as_str()).collect()).unwrap_or_default();
    for s in &mut policy.custom_extension_stage_settings {
        if s.id.is_empty() || !keep_s.contains(&s.id.as_str()) {
            s.id = ids::new_id();
        }
    }
}

pub async fn create_policy(
    app: &App,
    caller: &Caller,
    input: PolicyInput,
    scope: Option<PackageScope>,
) -> Result<Policy> {
    caller.require(perms::EM_WRITE)?;
    let package = match (&scope, &input.access_package) {
        (Some(scope), body) => {
            let package = scoped_package(app, scope).await?;
            if let Some((id, prop)) = body
                && *id != package.id
            {
                return Err(invalid_package(
                    prop,
                    format!(
                        "'{prop}' is '{id}' but the URL creates the policy in access package '{}'; omit '{prop}' or make them agree.",
                        package.id
                    ),
                ));
            }
            package
        }
        (None, Some((id, prop))) => {
            let key = id.clone();
            let found: Option<AccessPackage> = app.store.read(move |c| repo::get(c, &key)).await?;
            found.ok_or_else(|| {
                invalid_package(prop, format!("'{prop}' is '{id}', but no access package with that id exists."))
            })?
        }
        (None, None) => {
            return Err(invalid_package(
                "accessPackage",
                "A policy belongs to an access package: send \"accessPackage\": {\"id\": \"…\"} (beta: \"accessPackageId\").",
            ));
        }
    };
    caller.require_in_catalog(&package.catalog_id, CatalogRight::ManagePackages)?;
    let beta = input.beta_names;
    let now = app.now();
    let mut policy =
        input.into_policy(ids::new_id(), package.id.clone(), package.catalog_id.clone(), caller_name(caller), now, now);
    assign_ids(&mut policy, None);
    policy.validate(beta)?;
    let saved = policy.clone();
    let actor = caller.id().to_string();
    app.store
        .write(move |c| {
            // The package may have gone since the check above.
            if repo::get::<AccessPackage>(c, &saved.access_package_id)?.is_none() {
                return Err(Error::not_found("access package", &saved.access_package_id));
            }
            crate::extensions::check_stage_settings(
                c,
                &saved.catalog_id,
                &saved.custom_extension_stage_settings,
                "customExtensionStageSettings",
            )?;
            check_one_automatic(c, &saved)?;
            crate::connected::check_policy_organizations(c, &saved)?;
            repo::insert(c, &saved)?;
            crate::reviews::sync_for_policy(c, saved.created_date_time, &saved)?;
            crate::autoassign::sync_for_policy(c, saved.created_date_time, &saved)?;
            audit::record(
                c,
                AuditEvent {
                    at: saved.created_date_time,
                    actor_id: Some(&actor),
                    entity_type: "accessPackageAssignmentPolicy",
                    entity_id: &saved.id,
                    action: "create",
                    detail: serde_json::json!({ "accessPackageId": saved.access_package_id, "displayName": saved.display_name }),
                },
            )
        })
        .await?;
    Ok(policy)
}

/// A package has at most one automatic assignment policy.
fn check_one_automatic(c: &mut dyn Conn, policy: &Policy) -> Result<()> {
    if crate::autoassign::automatic_rule(policy).is_none() {
        return Ok(());
    }
    match crate::autoassign::other_automatic_policy(c, &policy.access_package_id, &policy.id)? {
        Some(other) => Err(Error::bad_request(
            "InvalidPolicy",
            format!(
                "Access package '{}' already has an automatic assignment policy ('{other}'); a package has at most one. Change that policy's rule instead.",
                policy.access_package_id
            ),
        )
        .with_target("automaticRequestSettings")),
        None => Ok(()),
    }
}

async fn load(app: &App, id: &str) -> Result<Policy> {
    let key = ids::normalize(id);
    app.store
        .read(move |c| repo::get::<Policy>(c, &key))
        .await?
        .ok_or_else(|| Error::not_found("access package assignment policy", id))
}

/// Reads one policy; with `scope`, it must belong to that package (and catalog).
pub async fn get_policy(app: &App, caller: &Caller, id: &str, scope: Option<PackageScope>) -> Result<Policy> {
    caller.require(perms::EM_READ)?;
    let policy = load(app, id).await?;
    if let Some(scope) = scope {
        let package = scoped_package(app, &scope).await?;
        if package.id != policy.access_package_id {
            return Err(Error::not_found("access package assignment policy", id));
        }
    }
    caller.require_in_catalog(&policy.catalog_id, CatalogRight::Read)?;
    Ok(policy)
}

fn allowed_scope(s: &str) -> Option<&'static str> {
    grantry_domain::enums::AllowedTargetScope::parse_lenient(s).map(|v| v.v1())
}

/// Filterable and sortable policy properties.
pub const POLICY_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field { names: &["description"], sql: "json_extract(body, '$.description')", kind: Kind::TextIgnoreCase },
    Field { names: &["accessPackage/id", "accessPackageId"], sql: "access_package_id", kind: Kind::Id },
    Field { names: &["catalog/id", "accessPackageCatalog/id", "catalogId"], sql: "catalog_id", kind: Kind::Id },
    Field {
        names: &["allowedTargetScope", "requestorSettings/scopeType"],
        sql: "allowed_target_scope",
        kind: Kind::Enum { normalize: allowed_scope, allowed: grantry_domain::enums::AllowedTargetScope::allowed },
    },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field { names: &["modifiedDateTime"], sql: "modified_us", kind: Kind::Time },
];

/// Lists policies the caller may read: all of them for tenant-wide readers, those in the
/// caller's catalogs otherwise. `scope` restricts to one package (read right on its catalog
/// needed).
pub async fn list_policies(
    app: &App,
    caller: &Caller,
    options: ListOptions,
    scope: Option<PackageScope>,
) -> Result<Listed<Policy>> {
    caller.require(perms::EM_READ)?;
    let conditions = match &scope {
        Some(scope) => {
            let package = scoped_package(app, scope).await?;
            caller.require_in_catalog(&package.catalog_id, CatalogRight::Read)?;
            vec![Sql { text: "access_package_id = ?".into(), params: vec![Value::from(package.id)] }]
        }
        None => crate::catalogs::readable_scope(caller, "catalog_id"),
    };
    app.store.read(move |c| crate::listing::list(c, POLICY_FIELDS, conditions, &options)).await
}

/// The packages and catalogs of `policies`, for `$expand`.
pub async fn related(
    app: &App,
    policies: &[Policy],
) -> Result<(HashMap<String, AccessPackage>, HashMap<String, Catalog>)> {
    let mut package_ids: Vec<String> = policies.iter().map(|p| p.access_package_id.clone()).collect();
    package_ids.sort();
    package_ids.dedup();
    let mut catalog_ids: Vec<String> = policies.iter().map(|p| p.catalog_id.clone()).collect();
    catalog_ids.sort();
    catalog_ids.dedup();
    app.store
        .read(move |c| {
            let mut packages = HashMap::new();
            for id in package_ids {
                if let Some(p) = repo::get::<AccessPackage>(c, &id)? {
                    packages.insert(id, p);
                }
            }
            let mut catalogs = HashMap::new();
            for id in catalog_ids {
                if let Some(cat) = repo::get::<Catalog>(c, &id)? {
                    catalogs.insert(id, cat);
                }
            }
            Ok((packages, catalogs))
        })
        .await
}

/// Full replacement (PUT). The access package cannot change.
pub async fn replace_policy(app: &App, caller: &Caller, id: &str, input: PolicyInput) -> Result<Policy> {
    caller.require(perms::EM_WRITE)?;
    let current = load(app, id).await?;
    caller.require_in_catalog(&current.catalog_id, CatalogRight::ManagePackages)?;
    if let Some((pkg, prop)) = &input.access_package
        && *pkg != current.access_package_id
    {
        return Err(invalid_package(
            prop,
            format!(
                "'{prop}' is '{pkg}', but this policy belongs to access package '{}'; a policy cannot move to another package (create a new policy there instead).",
                current.access_package_id
            ),
        ));
    }
    let beta = input.beta_names;
    let accept_given = input.accept_requests_given;
    let mut policy = input.into_policy(
        current.id.clone(),
        current.access_package_id.clone(),
        current.catalog_id.clone(),
        current.created_by.clone(),
        current.created_date_time,
        app.now(),
    );
    policy.modified_by = caller_name(caller);
    if !accept_given {
        policy.requestor_settings.rejects_new_requests = current.requestor_settings.rejects_new_requests;
    }
    // Beta has no automaticRequestSettings: a beta replacement keeps the policy's.
    if beta && policy.automatic_request_settings.is_none() {
        policy.automatic_request_settings = current.automatic_request_settings.clone();
    }
    if !beta {
        for (k, v) in &current.beta_extra {
            policy.beta_extra.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    assign_ids(&mut policy, Some(&current));
    policy.validate(beta)?;
    let saved = policy.clone();
    let before = current.custom_extension_stage_settings.clone();
    let actor = caller.id().to_string();
    app.store
        .write(move |c| {
            crate::extensions::check_stage_settings(
                c,
                &saved.catalog_id,
                &saved.custom_extension_stage_settings,
                "customExtensionStageSettings",
            )?;
            check_one_automatic(c, &saved)?;
            crate::connected::check_policy_organizations(c, &saved)?;
            if !repo::update(c, &saved)? {
                return Err(Error::not_found("access package assignment policy", &saved.id));
            }
            crate::reviews::sync_for_policy(c, saved.modified_date_time, &saved)?;
            crate::autoassign::sync_for_policy(c, saved.modified_date_time, &saved)?;
            if crate::callouts::gains_pre_expiry(&before, &saved.custom_extension_stage_settings) {
                crate::callouts::backfill_pre_expiry(c, saved.modified_date_time, &saved.id)?;
            }
            audit::record(
                c,
                AuditEvent {
                    at: saved.modified_date_time,
                    actor_id: Some(&actor),
                    entity_type: "accessPackageAssignmentPolicy",
                    entity_id: &saved.id,
                    action: "replace",
                    detail: serde_json::json!({ "displayName": saved.display_name }),
                },
            )
        })
        .await?;
    Ok(policy)
}

/// Deletes a policy; refused while an active assignment was made through it.
pub async fn delete_policy(app: &App, caller: &Caller, id: &str) -> Result<()> {
    caller.require(perms::EM_WRITE)?;
    let current = load(app, id).await?;
    caller.require_in_catalog(&current.catalog_id, CatalogRight::ManagePackages)?;
    let actor = caller.id().to_string();
    let at = app.now();
    app.store
        .write(move |c| {
            let active =
                repo::count(c, "assignments", "policy_id = ? AND active = 1", &[Value::from(&current.id)])?;
            if active > 0 {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "PolicyHasAssignments",
                    format!(
                        "The policy still has {active} active assignment(s); remove them (adminRemove requests) before deleting the policy."
                    ),
                ));
            }
            if !repo::delete::<Policy>(c, &current.id)? {
                return Err(Error::not_found("access package assignment policy", &current.id));
            }
            crate::reviews::remove_for_policy(c, &current.id)?;
            crate::autoassign::remove_for_policy(c, &current.id)?;
            audit::record(
                c,
                AuditEvent {
                    at,
                    actor_id: Some(&actor),
                    entity_type: "accessPackageAssignmentPolicy",
                    entity_id: &current.id,
                    action: "delete",
                    detail: serde_json::json!({ "accessPackageId": current.access_package_id }),
                },
            )
        })
        .await
}
