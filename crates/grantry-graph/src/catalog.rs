//! Catalogs, resources (roles, scopes, requests), access packages, role scopes and the
//! tenant settings in the v1.0 and beta shapes.
//!
//! Each entity is one `#[derive(Serialize)]` view borrowing from the model. A property only
//! one dialect has is an `Option` left out (`None`) under the other root; where it may be
//! `null` in its own dialect it is `Option<Option<_>>`. Navigation properties whose name
//! differs by dialect are two fields, of which the view fills the one of its dialect.

use crate::directory::GroupView;
use crate::policy::PolicyView;
use crate::render::Dialect;
use crate::wire::{Nav, Null, Ts};
use grantry_domain::enums::RequestState;
use grantry_domain::model::{
    AccessPackage, Catalog, Resource, ResourceRequest, ResourceRole, ResourceScope, RoleScope, Settings,
};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

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

/// Skips a dialect-only property under the other root.
fn absent<T>(v: &Option<T>) -> bool {
    v.is_none()
}

/// In the dialect's field: `(v1, beta)`, one of them `None`.
fn by_dialect<T>(d: Dialect, v: Option<T>) -> (Option<T>, Option<T>) {
    match d {
        Dialect::V1 => (v, None),
        Dialect::Beta => (None, v),
    }
}

/// `accessPackageCatalog`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogView<'a> {
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    is_externally_visible: bool,
    created_date_time: Ts,
    modified_date_time: Ts,
    catalog_type: &'static str,
    #[serde(skip_serializing_if = "absent")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "absent")]
    catalog_status: Option<&'static str>,
    #[serde(skip_serializing_if = "absent")]
    created_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    modified_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    unique_name: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    privilege_level: Option<Null>,
    #[serde(skip_serializing_if = "absent")]
    access_packages: Option<Vec<PackageView<'a>>>,
}

impl<'a> CatalogView<'a> {
    pub fn new(c: &'a Catalog, d: Dialect) -> Self {
        let beta = d.is_beta();
        CatalogView {
            id: &c.id,
            display_name: &c.display_name,
            description: c.description.as_deref(),
            is_externally_visible: c.is_externally_visible,
            created_date_time: Ts(c.created_date_time),
            modified_date_time: Ts(c.modified_date_time),
            catalog_type: if beta { c.catalog_type.beta() } else { c.catalog_type.v1() },
            state: (!beta).then(|| c.state.v1()),
            catalog_status: beta.then(|| c.state.beta()),
            created_by: beta.then_some(c.created_by.as_deref()),
            modified_by: beta.then_some(c.modified_by.as_deref()),
            unique_name: beta.then_some(c.unique_name.as_deref()),
            privilege_level: beta.then_some(Null),
            access_packages: None,
        }
    }

    /// With the expanded `accessPackages`.
    pub fn with_packages(mut self, packages: Vec<PackageView<'a>>) -> Self {
        self.access_packages = Some(packages);
        self
    }
}

/// v1.0 `accessPackageResourceAttribute` names ↔ beta names.
const ATTRIBUTE_RENAMES: &[(&str, &str)] =
    &[("name", "attributeName"), ("source", "attributeSource"), ("destination", "attributeDestination")];

/// Normalises an attribute from either dialect to the v1.0 names (the stored form).
pub fn attribute_to_v1(a: &Value) -> Value {
    match a {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let name = ATTRIBUTE_RENAMES.iter().find(|(_, b)| b == k).map(|(v1, _)| *v1);
                    (name.map(str::to_string).unwrap_or_else(|| k.clone()), v.clone())
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A stored attribute (v1.0 names) in the dialect's names.
pub struct AttributeView<'a> {
    value: &'a Value,
    dialect: Dialect,
}

impl Serialize for AttributeView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.dialect, self.value) {
            (Dialect::Beta, Value::Object(m)) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    let name = ATTRIBUTE_RENAMES.iter().find(|(v1, _)| v1 == k).map_or(k.as_str(), |(_, b)| *b);
                    map.serialize_entry(name, v)?;
                }
                map.end()
            }
            (_, v) => v.serialize(s),
        }
    }
}

/// `accessPackageResource`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceView<'a> {
    id: &'a str,
    display_name: Option<&'a str>,
    description: Option<&'a str>,
    origin_id: &'a str,
    origin_system: &'a str,
    attributes: Vec<AttributeView<'a>>,
    #[serde(skip_serializing_if = "absent")]
    created_date_time: Option<Ts>,
    #[serde(skip_serializing_if = "absent")]
    modified_date_time: Option<Ts>,
    #[serde(skip_serializing_if = "absent")]
    resource_type: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    url: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    is_pending_onboarding: Option<bool>,
    #[serde(skip_serializing_if = "absent")]
    added_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    added_on: Option<Ts>,
    #[serde(skip_serializing_if = "absent")]
    roles: Option<Vec<ResourceRoleView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_resource_roles: Option<Vec<ResourceRoleView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    scopes: Option<Vec<ResourceScopeView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_resource_scopes: Option<Vec<ResourceScopeView<'a>>>,
    #[serde(skip)]
    dialect: Dialect,
}

impl<'a> ResourceView<'a> {
    pub fn new(r: &'a Resource, d: Dialect) -> Self {
        let (v1, beta) = (!d.is_beta(), d.is_beta());
        ResourceView {
            id: &r.id,
            display_name: r.display_name.as_deref(),
            description: r.description.as_deref(),
            origin_id: &r.origin_id,
            origin_system: &r.origin_system,
            attributes: r.attributes.iter().map(|value| AttributeView { value, dialect: d }).collect(),
            created_date_time: v1.then_some(Ts(r.created_date_time)),
            modified_date_time: v1.then_some(Ts(r.modified_date_time)),
            resource_type: beta.then_some(r.resource_type.as_deref()),
            url: beta.then_some(r.url.as_deref()),
            is_pending_onboarding: beta.then_some(false),
            added_by: beta.then_some(r.added_by.as_deref()),
            added_on: beta.then_some(Ts(r.created_date_time)),
            roles: None,
            access_package_resource_roles: None,
            scopes: None,
            access_package_resource_scopes: None,
            dialect: d,
        }
    }

    /// With the expanded `roles` (beta `accessPackageResourceRoles`).
    pub fn with_roles(mut self, roles: Vec<ResourceRoleView<'a>>) -> Self {
        (self.roles, self.access_package_resource_roles) = by_dialect(self.dialect, Some(roles));
        self
    }

    /// With the expanded `scopes` (beta `accessPackageResourceScopes`).
    pub fn with_scopes(mut self, scopes: Vec<ResourceScopeView<'a>>) -> Self {
        (self.scopes, self.access_package_resource_scopes) = by_dialect(self.dialect, Some(scopes));
        self
    }
}

/// `accessPackageResourceRole`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRoleView<'a> {
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    origin_id: &'a str,
    origin_system: &'a str,
    #[serde(skip_serializing_if = "absent")]
    resource: Nav<ResourceView<'a>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_resource: Nav<ResourceView<'a>>,
    #[serde(skip)]
    dialect: Dialect,
}

impl<'a> ResourceRoleView<'a> {
    pub fn new(r: &'a ResourceRole, d: Dialect) -> Self {
        ResourceRoleView {
            id: &r.id,
            display_name: &r.display_name,
            description: r.description.as_deref(),
            origin_id: &r.origin_id,
            origin_system: &r.origin_system,
            resource: None,
            access_package_resource: None,
            dialect: d,
        }
    }

    /// With the expanded `resource` (beta `accessPackageResource`); `None` sends `null`.
    pub fn with_resource(mut self, resource: Option<ResourceView<'a>>) -> Self {
        (self.resource, self.access_package_resource) = by_dialect(self.dialect, Some(resource));
        self
    }
}

/// `accessPackageResourceScope`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceScopeView<'a> {
    id: &'a str,
    display_name: Option<&'a str>,
    description: Option<&'a str>,
    origin_id: &'a str,
    origin_system: &'a str,
    is_root_scope: bool,
    #[serde(skip_serializing_if = "absent")]
    role_origin_id: Option<Null>,
    #[serde(skip_serializing_if = "absent")]
    url: Option<Null>,
    #[serde(skip_serializing_if = "absent")]
    resource: Nav<ResourceView<'a>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_resource: Nav<ResourceView<'a>>,
    #[serde(skip)]
    dialect: Dialect,
}

impl<'a> ResourceScopeView<'a> {
    pub fn new(s: &'a ResourceScope, d: Dialect) -> Self {
        ResourceScopeView {
            id: &s.id,
            display_name: s.display_name.as_deref(),
            description: s.description.as_deref(),
            origin_id: &s.origin_id,
            origin_system: &s.origin_system,
            is_root_scope: s.is_root_scope,
            role_origin_id: d.is_beta().then_some(Null),
            url: d.is_beta().then_some(Null),
            resource: None,
            access_package_resource: None,
            dialect: d,
        }
    }

    /// With the expanded `resource` (beta `accessPackageResource`); `None` sends `null`.
    pub fn with_resource(mut self, resource: Option<ResourceView<'a>>) -> Self {
        (self.resource, self.access_package_resource) = by_dialect(self.dialect, Some(resource));
        self
    }
}

/// `accessPackageResourceRequest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequestView<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "absent")]
    catalog_id: Option<&'a str>,
    request_type: &'static str,
    #[serde(skip_serializing_if = "absent")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "absent")]
    created_date_time: Option<Ts>,
    #[serde(skip_serializing_if = "absent")]
    request_state: Option<&'static str>,
    #[serde(skip_serializing_if = "absent")]
    request_status: Option<&'static str>,
    #[serde(skip_serializing_if = "absent")]
    justification: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    is_validation_only: Option<bool>,
    #[serde(skip_serializing_if = "absent")]
    execute_immediately: Option<bool>,
    #[serde(skip_serializing_if = "absent")]
    expiration_date_time: Option<Null>,
    #[serde(skip_serializing_if = "absent")]
    resource: Nav<ResourceView<'a>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_resource: Nav<ResourceView<'a>>,
    #[serde(skip)]
    dialect: Dialect,
}

impl<'a> ResourceRequestView<'a> {
    pub fn new(r: &'a ResourceRequest, d: Dialect) -> Self {
        let (v1, beta) = (!d.is_beta(), d.is_beta());
        ResourceRequestView {
            id: &r.id,
            catalog_id: beta.then_some(r.catalog_id.as_str()),
            request_type: if beta { r.request_type.beta() } else { r.request_type.v1() },
            state: v1.then(|| r.state.v1()),
            created_date_time: v1.then_some(Ts(r.created_date_time)),
            request_state: beta.then(|| r.state.beta()),
            request_status: beta.then_some(if r.state == RequestState::Delivered { "Fulfilled" } else { "Failed" }),
            justification: beta.then_some(r.justification.as_deref()),
            is_validation_only: beta.then_some(false),
            execute_immediately: beta.then_some(false),
            expiration_date_time: beta.then_some(Null),
            resource: None,
            access_package_resource: None,
            dialect: d,
        }
    }

    /// With the expanded `resource` (beta `accessPackageResource`): the snapshot the request
    /// recorded, or `null`.
    pub fn with_resource(mut self, r: &'a ResourceRequest) -> Self {
        let resource = r.resource.as_ref().map(|x| ResourceView::new(x, self.dialect));
        (self.resource, self.access_package_resource) = by_dialect(self.dialect, Some(resource));
        self
    }
}

/// The navigation properties of an access package that `$expand` named; `None` leaves one
/// out.
#[derive(Default)]
pub struct PackageNavs<'a> {
    pub catalog: Nav<CatalogView<'a>>,
    pub role_scopes: Option<Vec<RoleScopeView<'a>>>,
    pub incompatible_access_packages: Option<Vec<PackageView<'a>>>,
    pub access_packages_incompatible_with: Option<Vec<PackageView<'a>>>,
    pub incompatible_groups: Option<Vec<GroupView<'a>>>,
    pub assignment_policies: Option<Vec<PolicyView<'a>>>,
}

/// `accessPackage`, also as an expanded navigation property of other entities.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageView<'a> {
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    is_hidden: bool,
    created_date_time: Ts,
    modified_date_time: Ts,
    #[serde(skip_serializing_if = "absent")]
    catalog_id: Option<&'a str>,
    #[serde(skip_serializing_if = "absent")]
    is_role_scopes_visible: Option<bool>,
    #[serde(skip_serializing_if = "absent")]
    unique_name: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    created_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    modified_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    catalog: Nav<CatalogView<'a>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_catalog: Nav<CatalogView<'a>>,
    #[serde(skip_serializing_if = "absent")]
    resource_role_scopes: Option<Vec<RoleScopeView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_resource_role_scopes: Option<Vec<RoleScopeView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    incompatible_access_packages: Option<Vec<PackageView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    access_packages_incompatible_with: Option<Vec<PackageView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    incompatible_groups: Option<Vec<GroupView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    assignment_policies: Option<Vec<PolicyView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_assignment_policies: Option<Vec<PolicyView<'a>>>,
}

impl<'a> PackageView<'a> {
    pub fn new(p: &'a AccessPackage, d: Dialect) -> Self {
        let beta = d.is_beta();
        PackageView {
            id: &p.id,
            display_name: &p.display_name,
            description: p.description.as_deref(),
            is_hidden: p.is_hidden,
            created_date_time: Ts(p.created_date_time),
            modified_date_time: Ts(p.modified_date_time),
            catalog_id: beta.then_some(p.catalog_id.as_str()),
            is_role_scopes_visible: beta.then_some(p.is_role_scopes_visible),
            unique_name: beta.then_some(p.unique_name.as_deref()),
            created_by: beta.then_some(p.created_by.as_deref()),
            modified_by: beta.then_some(p.modified_by.as_deref()),
            catalog: None,
            access_package_catalog: None,
            resource_role_scopes: None,
            access_package_resource_role_scopes: None,
            incompatible_access_packages: None,
            access_packages_incompatible_with: None,
            incompatible_groups: None,
            assignment_policies: None,
            access_package_assignment_policies: None,
        }
    }

    /// With the navigation properties `$expand` named, under the dialect's names.
    pub fn with_navs(p: &'a AccessPackage, d: Dialect, navs: PackageNavs<'a>) -> Self {
        let mut v = PackageView::new(p, d);
        (v.catalog, v.access_package_catalog) = by_dialect(d, navs.catalog);
        (v.resource_role_scopes, v.access_package_resource_role_scopes) = by_dialect(d, navs.role_scopes);
        (v.assignment_policies, v.access_package_assignment_policies) = by_dialect(d, navs.assignment_policies);
        v.incompatible_access_packages = navs.incompatible_access_packages;
        v.access_packages_incompatible_with = navs.access_packages_incompatible_with;
        v.incompatible_groups = navs.incompatible_groups;
        v
    }
}

/// `accessPackageResourceRoleScope`; `role` and `scope` (beta `accessPackageResourceRole`,
/// `accessPackageResourceScope`) are included when given (expanded or just created).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleScopeView<'a> {
    id: &'a str,
    created_date_time: Ts,
    #[serde(skip_serializing_if = "absent")]
    created_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    modified_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    modified_date_time: Option<Ts>,
    #[serde(skip_serializing_if = "absent")]
    role: Option<ResourceRoleView<'a>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_resource_role: Option<ResourceRoleView<'a>>,
    #[serde(skip_serializing_if = "absent")]
    scope: Option<ResourceScopeView<'a>>,
    #[serde(skip_serializing_if = "absent")]
    access_package_resource_scope: Option<ResourceScopeView<'a>>,
}

impl<'a> RoleScopeView<'a> {
    pub fn new(
        rs: &'a RoleScope,
        d: Dialect,
        role: Option<&'a ResourceRole>,
        scope: Option<&'a ResourceScope>,
    ) -> Self {
        let beta = d.is_beta();
        let mut v = RoleScopeView {
            id: &rs.id,
            created_date_time: Ts(rs.created_date_time),
            created_by: beta.then_some(rs.created_by.as_deref()),
            modified_by: beta.then_some(rs.created_by.as_deref()),
            modified_date_time: beta.then_some(Ts(rs.created_date_time)),
            role: None,
            access_package_resource_role: None,
            scope: None,
            access_package_resource_scope: None,
        };
        (v.role, v.access_package_resource_role) = by_dialect(d, role.map(|r| ResourceRoleView::new(r, d)));
        (v.scope, v.access_package_resource_scope) = by_dialect(d, scope.map(|s| ResourceScopeView::new(s, d)));
        v
    }
}

/// `entitlementManagementSettings`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    #[serde(skip_serializing_if = "absent")]
    id: Option<&'static str>,
    external_user_lifecycle_action: &'static str,
    #[serde(skip_serializing_if = "absent")]
    duration_until_external_user_deleted_after_blocked: Option<Option<String>>,
    #[serde(skip_serializing_if = "absent")]
    days_until_external_user_deleted_after_blocked: Option<Option<i64>>,
}

impl SettingsView {
    pub fn new(s: &Settings, d: Dialect) -> Self {
        let after = s.duration_until_external_user_deleted_after_blocked;
        match d {
            Dialect::V1 => SettingsView {
                id: Some("singleton"),
                external_user_lifecycle_action: s.external_user_lifecycle_action.v1(),
                duration_until_external_user_deleted_after_blocked: Some(after.map(grantry_domain::duration::format)),
                days_until_external_user_deleted_after_blocked: None,
            },
            Dialect::Beta => SettingsView {
                id: None,
                external_user_lifecycle_action: s.external_user_lifecycle_action.beta(),
                duration_until_external_user_deleted_after_blocked: None,
                days_until_external_user_deleted_after_blocked: Some(after.map(|x| x.num_days())),
            },
        }
    }
}
