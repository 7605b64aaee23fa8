//! Catalogs, resources (roles, scopes, requests), access packages, role scopes and the
//! tenant settings in the v1.0 and beta shapes.

use crate::render::{Dialect, object, opt_str, ts};
use grantry_domain::model::{
    AccessPackage, Catalog, Resource, ResourceRequest, ResourceRole, ResourceScope, RoleScope, Settings,
};
use serde_json::{Value, json};

/// Entity-set names below `identityGovernance/entitlementManagement`, by dialect.
pub mod sets {
    pub const CATALOGS: (&str, &str) = ("catalogs", "accessPackageCatalogs");
    pub const PACKAGES: (&str, &str) = ("accessPackages", "accessPackages");
    pub const RESOURCES: (&str, &str) = ("resources", "accessPackageResources");
    pub const RESOURCE_ROLES: (&str, &str) = ("resourceRoles", "accessPackageResourceRoles");
    pub const RESOURCE_SCOPES: (&str, &str) = ("resourceScopes", "accessPackageResourceScopes");
    pub const RESOURCE_REQUESTS: (&str, &str) = ("resourceRequests", "accessPackageResourceRequests");
    pub const ROLE_SCOPES: (&str, &str) = ("resourceRoleScopes", "accessPackageResourceRoleScopes");
}

/// Navigation property names, by dialect.
pub mod nav {
    pub const CATALOG: (&str, &str) = ("catalog", "accessPackageCatalog");
    pub const ROLE_SCOPES: (&str, &str) = ("resourceRoleScopes", "accessPackageResourceRoleScopes");
    pub const ROLE: (&str, &str) = ("role", "accessPackageResourceRole");
    pub const SCOPE: (&str, &str) = ("scope", "accessPackageResourceScope");
    pub const ROLES: (&str, &str) = ("roles", "accessPackageResourceRoles");
    pub const SCOPES: (&str, &str) = ("scopes", "accessPackageResourceScopes");
    pub const RESOURCE: (&str, &str) = ("resource", "accessPackageResource");
    pub const POLICIES: (&str, &str) = ("assignmentPolicies", "accessPackageAssignmentPolicies");
}

pub fn name(d: Dialect, pair: (&'static str, &'static str)) -> &'static str {
    d.pick(pair.0, pair.1)
}

pub fn catalog(c: &Catalog, d: Dialect) -> Value {
    let mut v = object([
        ("id", json!(c.id)),
        ("displayName", json!(c.display_name)),
        ("description", opt_str(&c.description)),
        ("isExternallyVisible", json!(c.is_externally_visible)),
        ("createdDateTime", ts(c.created_date_time)),
        ("modifiedDateTime", ts(c.modified_date_time)),
    ]);
    match d {
        Dialect::V1 => {
            extend(&mut v, vec![("catalogType", json!(c.catalog_type.v1())), ("state", json!(c.state.v1()))]);
        }
        Dialect::Beta => extend(
            &mut v,
            vec![
                ("catalogType", json!(c.catalog_type.beta())),
                ("catalogStatus", json!(c.state.beta())),
                ("createdBy", opt_str(&c.created_by)),
                ("modifiedBy", opt_str(&c.modified_by)),
                ("uniqueName", opt_str(&c.unique_name)),
                ("privilegeLevel", Value::Null),
            ],
        ),
    }
    v
}

/// Adds properties to an object built with [`object`].
fn extend(v: &mut Value, pairs: Vec<(&'static str, Value)>) {
    if let Value::Object(m) = v {
        for (k, x) in pairs {
            m.insert(k.to_string(), x);
        }
    }
}

/// v1.0 `accessPackageResourceAttribute` names ↔ beta names.
const ATTRIBUTE_RENAMES: &[(&str, &str)] =
    &[("name", "attributeName"), ("source", "attributeSource"), ("destination", "attributeDestination")];

/// Normalises an attribute from either dialect to the v1.0 names (the stored form).
pub fn attribute_to_v1(a: &Value) -> Value {
    rename_keys(a, |k| ATTRIBUTE_RENAMES.iter().find(|(_, b)| *b == k).map(|(v, _)| *v))
}

fn attribute_out(a: &Value, d: Dialect) -> Value {
    match d {
        Dialect::V1 => a.clone(),
        Dialect::Beta => rename_keys(a, |k| ATTRIBUTE_RENAMES.iter().find(|(v, _)| *v == k).map(|(_, b)| *b)),
    }
}

fn rename_keys(a: &Value, f: impl Fn(&str) -> Option<&'static str>) -> Value {
    match a {
        Value::Object(m) => Value::Object(
            m.iter().map(|(k, v)| (f(k).map(str::to_string).unwrap_or_else(|| k.clone()), v.clone())).collect(),
        ),
        other => other.clone(),
    }
}

pub fn resource(r: &Resource, d: Dialect) -> Value {
    let mut v = object([
        ("id", json!(r.id)),
        ("displayName", opt_str(&r.display_name)),
        ("description", opt_str(&r.description)),
        ("originId", json!(r.origin_id)),
        ("originSystem", json!(r.origin_system)),
        ("attributes", Value::Array(r.attributes.iter().map(|a| attribute_out(a, d)).collect())),
    ]);
    match d {
        Dialect::V1 => extend(
            &mut v,
            vec![("createdDateTime", ts(r.created_date_time)), ("modifiedDateTime", ts(r.modified_date_time))],
        ),
        Dialect::Beta => extend(
            &mut v,
            vec![
                ("resourceType", opt_str(&r.resource_type)),
                ("url", opt_str(&r.url)),
                ("isPendingOnboarding", json!(false)),
                ("addedBy", opt_str(&r.added_by)),
                ("addedOn", ts(r.created_date_time)),
            ],
        ),
    }
    v
}

pub fn resource_role(r: &ResourceRole, _d: Dialect) -> Value {
    object([
        ("id", json!(r.id)),
        ("displayName", json!(r.display_name)),
        ("description", opt_str(&r.description)),
        ("originId", json!(r.origin_id)),
        ("originSystem", json!(r.origin_system)),
    ])
}

pub fn resource_scope(s: &ResourceScope, d: Dialect) -> Value {
    let mut v = object([
        ("id", json!(s.id)),
        ("displayName", opt_str(&s.display_name)),
        ("description", opt_str(&s.description)),
        ("originId", json!(s.origin_id)),
        ("originSystem", json!(s.origin_system)),
        ("isRootScope", json!(s.is_root_scope)),
    ]);
    if d.is_beta() {
        extend(&mut v, vec![("roleOriginId", Value::Null), ("url", Value::Null)]);
    }
    v
}

pub fn resource_request(r: &ResourceRequest, d: Dialect) -> Value {
    match d {
        Dialect::V1 => object([
            ("id", json!(r.id)),
            ("requestType", json!(r.request_type.v1())),
            ("state", json!(r.state.v1())),
            ("createdDateTime", ts(r.created_date_time)),
        ]),
        Dialect::Beta => object([
            ("id", json!(r.id)),
            ("catalogId", json!(r.catalog_id)),
            ("requestType", json!(r.request_type.beta())),
            ("requestState", json!(r.state.beta())),
            (
                "requestStatus",
                json!(if r.state == grantry_domain::enums::RequestState::Delivered { "Fulfilled" } else { "Failed" }),
            ),
            ("justification", opt_str(&r.justification)),
            ("isValidationOnly", json!(false)),
            ("executeImmediately", json!(false)),
            ("expirationDateTime", Value::Null),
        ]),
    }
}

pub fn access_package(p: &AccessPackage, d: Dialect) -> Value {
    let mut v = object([
        ("id", json!(p.id)),
        ("displayName", json!(p.display_name)),
        ("description", opt_str(&p.description)),
        ("isHidden", json!(p.is_hidden)),
        ("createdDateTime", ts(p.created_date_time)),
        ("modifiedDateTime", ts(p.modified_date_time)),
    ]);
    if d.is_beta() {
        extend(
            &mut v,
            vec![
                ("catalogId", json!(p.catalog_id)),
                ("isRoleScopesVisible", json!(p.is_role_scopes_visible)),
                ("uniqueName", opt_str(&p.unique_name)),
                ("createdBy", opt_str(&p.created_by)),
                ("modifiedBy", opt_str(&p.modified_by)),
            ],
        );
    }
    v
}

/// A role scope; `role` and `scope` are included when given (expanded or just created).
pub fn role_scope(rs: &RoleScope, d: Dialect, role: Option<&ResourceRole>, scope: Option<&ResourceScope>) -> Value {
    let mut v = object([("id", json!(rs.id)), ("createdDateTime", ts(rs.created_date_time))]);
    if d.is_beta() {
        extend(
            &mut v,
            vec![
                ("createdBy", opt_str(&rs.created_by)),
                ("modifiedBy", opt_str(&rs.created_by)),
                ("modifiedDateTime", ts(rs.created_date_time)),
            ],
        );
    }
    if let Some(r) = role {
        extend(&mut v, vec![(name(d, nav::ROLE), resource_role(r, d))]);
    }
    if let Some(s) = scope {
        extend(&mut v, vec![(name(d, nav::SCOPE), resource_scope(s, d))]);
    }
    v
}

pub fn settings(s: &Settings, d: Dialect) -> Value {
    match d {
        Dialect::V1 => object([
            ("id", json!("singleton")),
            ("externalUserLifecycleAction", json!(s.external_user_lifecycle_action.v1())),
            (
                "durationUntilExternalUserDeletedAfterBlocked",
                s.duration_until_external_user_deleted_after_blocked
                    .map(|x| json!(grantry_domain::duration::format(x)))
                    .unwrap_or(Value::Null),
            ),
        ]),
        Dialect::Beta => object([
            ("externalUserLifecycleAction", json!(s.external_user_lifecycle_action.beta())),
            (
                "daysUntilExternalUserDeletedAfterBlocked",
                s.duration_until_external_user_deleted_after_blocked
                    .map(|x| json!(x.num_days()))
                    .unwrap_or(Value::Null),
            ),
        ]),
    }
}
