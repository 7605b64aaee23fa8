//! `$expand` as types: which navigation properties a response carries, read once from the
//! query, so core loads the related entities of a whole page in one read and the typed
//! views in `grantry-graph` render them; nothing edits a rendered body afterwards.

use crate::extract::RawQuery;
use grantry_core::packages::RoleScopeView as RoleScopeWithParts;
use grantry_core::related::{
    AssignmentRelated, AssignmentWanted, CatalogRelated, CatalogWanted, PackageRelated, PackageWanted, RequestRelated,
    RequestWanted, ResourceRelated, ResourceWanted,
};
use grantry_domain::model::{AccessPackage, Catalog, Resource};
use grantry_domain::{Error, Result};
use grantry_graph::Dialect;
use grantry_graph::assignment::{AssignmentNavs, AssignmentView, PolicySummaryView};
use grantry_graph::catalog::{
    self, CatalogView, PackageNavs, PackageView, ResourceRoleView, ResourceScopeView, ResourceView, RoleScopeView, nav,
};
use grantry_graph::policy::{PolicyExpand as PolicyExpandOf, PolicyView};
use grantry_graph::request::{RequestNavs, SubjectView};
use grantry_odata::ExpandItem;
use std::collections::HashMap;

/// The `$expand` items of `q` (none when absent).
pub fn items(q: &RawQuery) -> Result<Vec<ExpandItem>> {
    match q.get("$expand") {
        None => Ok(Vec::new()),
        Some(e) => grantry_odata::parse_expand(e)
            .map_err(|e| Error::bad_request("BadRequest", format!("$expand: {e}")).with_target("$expand")),
    }
}

pub fn unknown(name: &str, on: &str) -> Error {
    Error::bad_request(
        "BadRequest",
        format!(
            "$expand: '{name}' is not a navigation property of {on} that Grantry expands; use accessPackage, requestor, assignment (beta accessPackageAssignment) with target, accessPackage or assignmentPolicy."
        ),
    )
    .with_target("$expand")
}

fn name(item: &ExpandItem) -> String {
    item.path.join("/").to_ascii_lowercase()
}

/// A subject, with its own nested `$expand=connectedOrganization`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubjectExpand {
    connected_organization: bool,
}

impl SubjectExpand {
    fn parse(item: &ExpandItem) -> Result<Self> {
        let mut x = SubjectExpand::default();
        for sub in &item.options.expand {
            if !sub.path.join("/").eq_ignore_ascii_case("connectedOrganization") {
                return Err(Error::bad_request(
                    "BadRequest",
                    format!(
                        "$expand: '{}' cannot be expanded on a subject; use connectedOrganization.",
                        sub.path.join("/")
                    ),
                )
                .with_target("$expand"));
            }
            x.connected_organization = true;
        }
        Ok(x)
    }

    fn view<'a>(
        this: Option<SubjectExpand>,
        s: &'a Option<grantry_domain::model::Subject>,
        organizations: &'a HashMap<String, grantry_domain::model::ConnectedOrganization>,
        d: Dialect,
    ) -> Option<Option<SubjectView<'a>>> {
        this.map(|x| {
            s.as_ref().map(|s| {
                let org = s.connected_organization_id.as_ref().and_then(|id| organizations.get(id));
                SubjectView::new(s, d, x.connected_organization.then_some(org))
            })
        })
    }
}

/// `$expand` on an assignment: `target`, `accessPackage`, `assignmentPolicy` (beta
/// `accessPackageAssignmentPolicy`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AssignmentExpand {
    target: Option<SubjectExpand>,
    package: bool,
    policy: bool,
}

impl AssignmentExpand {
    /// `on` names the entity in the error for a name it does not have.
    pub fn parse(items: &[ExpandItem], on: &str) -> Result<Self> {
        let mut x = AssignmentExpand::default();
        for item in items {
            match name(item).as_str() {
                "target" => x.target = Some(SubjectExpand::parse(item)?),
                "accesspackage" => x.package = true,
                "assignmentpolicy" | "accesspackageassignmentpolicy" => x.policy = true,
                other => return Err(unknown(other, on)),
            }
        }
        Ok(x)
    }

    pub fn wanted(&self) -> AssignmentWanted {
        AssignmentWanted { target: self.target.is_some(), package: self.package, policy: self.policy }
    }

    pub fn navs<'a>(&self, d: Dialect, r: &'a AssignmentRelated) -> AssignmentNavs<'a> {
        AssignmentNavs {
            target: SubjectExpand::view(self.target, &r.target, &r.organizations, d),
            access_package: self.package.then(|| r.package.as_ref().map(|p| PackageView::new(p, d))),
            policy: self.policy.then(|| r.policy.as_ref().map(|p| PolicySummaryView::new(p, d))),
        }
    }
}

/// `$expand` on an assignment request: `accessPackage`, `requestor`, `target`, and
/// `assignment` (beta `accessPackageAssignment`) with its own expansions.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestExpand {
    package: bool,
    requestor: Option<SubjectExpand>,
    target: Option<SubjectExpand>,
    assignment: Option<AssignmentExpand>,
}

impl RequestExpand {
    pub fn parse(items: &[ExpandItem]) -> Result<Self> {
        let mut x = RequestExpand::default();
        for item in items {
            match name(item).as_str() {
                "accesspackage" => x.package = true,
                "requestor" => x.requestor = Some(SubjectExpand::parse(item)?),
                "target" => x.target = Some(SubjectExpand::parse(item)?),
                "assignment" | "accesspackageassignment" => {
                    x.assignment = Some(AssignmentExpand::parse(&item.options.expand, "assignment")?)
                }
                other => return Err(unknown(other, "accessPackageAssignmentRequest")),
            }
        }
        Ok(x)
    }

    pub fn wanted(&self) -> RequestWanted {
        RequestWanted {
            package: self.package,
            requestor: self.requestor.is_some(),
            target: self.target.is_some(),
            assignment: self.assignment.map(|a| a.wanted()),
        }
    }

    pub fn navs<'a>(&self, d: Dialect, r: &'a RequestRelated) -> RequestNavs<'a> {
        RequestNavs {
            access_package: self.package.then(|| r.package.as_ref().map(|p| PackageView::new(p, d))),
            requestor: SubjectExpand::view(self.requestor, &r.requestor, &r.organizations, d),
            target: SubjectExpand::view(self.target, &r.target, &r.organizations, d),
            assignment: self
                .assignment
                .map(|x| r.assignment.as_ref().map(|a| AssignmentView::new(a, d, x.navs(d, &r.assignment_related)))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Catalogs, access packages, resources

/// `$expand` below `identityGovernance/entitlementManagement` for catalogs, packages and
/// resources: none when absent or blank.
pub fn em_items(q: &RawQuery) -> Result<Vec<ExpandItem>> {
    match q.get("$expand") {
        Some(text) if !text.trim().is_empty() => grantry_odata::parse_expand(text)
            .map_err(|e| Error::bad_request("BadRequest", e.to_string()).with_target("$expand")),
        _ => Ok(Vec::new()),
    }
}

/// A navigation property the entity does not expand, with those it does.
pub fn unsupported(item: &ExpandItem, supported: &[&str]) -> Error {
    Error::bad_request(
        "BadRequest",
        format!(
            "$expand={} is not supported here; the navigation properties that can be expanded are: {}.",
            item.path.join("/"),
            supported.join(", ")
        ),
    )
    .with_target("$expand")
}

/// `$expand` on a catalog: `accessPackages`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogExpand {
    packages: bool,
}

impl CatalogExpand {
    pub fn parse(items: &[ExpandItem]) -> Result<Self> {
        let mut x = CatalogExpand::default();
        for item in items {
            match name(item).as_str() {
                "accesspackages" => x.packages = true,
                _ => return Err(unsupported(item, &["accessPackages"])),
            }
        }
        Ok(x)
    }

    pub fn wanted(&self) -> CatalogWanted {
        CatalogWanted { packages: self.packages }
    }

    pub fn view<'a>(&self, c: &'a Catalog, d: Dialect, r: &'a CatalogRelated) -> CatalogView<'a> {
        let v = CatalogView::new(c, d);
        if self.packages { v.with_packages(r.packages.iter().map(|p| PackageView::new(p, d)).collect()) } else { v }
    }
}

/// `$expand` on a role scope: `role` and `scope` (beta `accessPackageResourceRole`,
/// `accessPackageResourceScope`), or `*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoleScopeExpand {
    role: bool,
    scope: bool,
}

impl RoleScopeExpand {
    pub fn parse(d: Dialect, items: &[ExpandItem]) -> Result<Self> {
        let mut x = RoleScopeExpand::default();
        for item in items {
            match name(item).as_str() {
                "role" | "accesspackageresourcerole" => x.role = true,
                "scope" | "accesspackageresourcescope" => x.scope = true,
                "*" => (x.role, x.scope) = (true, true),
                _ => return Err(unsupported(item, &[catalog::name(d, nav::ROLE), catalog::name(d, nav::SCOPE)])),
            }
        }
        Ok(x)
    }

    /// Both, as a newly created role scope is answered.
    pub fn all() -> Self {
        RoleScopeExpand { role: true, scope: true }
    }

    pub fn view<'a>(&self, v: &'a RoleScopeWithParts, d: Dialect) -> RoleScopeView<'a> {
        RoleScopeView::new(
            &v.role_scope,
            d,
            v.role.as_ref().filter(|_| self.role),
            v.scope.as_ref().filter(|_| self.scope),
        )
    }
}

const PACKAGE_EXPANDS: &[&str] = &[
    "catalog (beta accessPackageCatalog)",
    "resourceRoleScopes (beta accessPackageResourceRoleScopes)",
    "incompatibleAccessPackages",
    "accessPackagesIncompatibleWith",
    "incompatibleGroups",
    "assignmentPolicies (beta accessPackageAssignmentPolicies)",
];

/// `$expand` on an access package.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackageExpand {
    catalog: bool,
    role_scopes: Option<RoleScopeExpand>,
    incompatible_packages: bool,
    incompatible_with: bool,
    incompatible_groups: bool,
    policies: bool,
}

impl PackageExpand {
    pub fn parse(d: Dialect, items: &[ExpandItem]) -> Result<Self> {
        let mut x = PackageExpand::default();
        for item in items {
            match name(item).as_str() {
                "catalog" | "accesspackagecatalog" => x.catalog = true,
                "resourcerolescopes" | "accesspackageresourcerolescopes" => {
                    x.role_scopes = Some(RoleScopeExpand::parse(d, &item.options.expand)?)
                }
                "incompatibleaccesspackages" => x.incompatible_packages = true,
                "accesspackagesincompatiblewith" => x.incompatible_with = true,
                "incompatiblegroups" => x.incompatible_groups = true,
                "assignmentpolicies" | "accesspackageassignmentpolicies" => x.policies = true,
                _ => return Err(unsupported(item, PACKAGE_EXPANDS)),
            }
        }
        Ok(x)
    }

    pub fn wanted(&self) -> PackageWanted {
        PackageWanted {
            catalog: self.catalog,
            role_scopes: self.role_scopes.is_some(),
            incompatible_packages: self.incompatible_packages,
            incompatible_with: self.incompatible_with,
            incompatible_groups: self.incompatible_groups,
            policies: self.policies,
        }
    }

    pub fn view<'a>(&self, p: &'a AccessPackage, d: Dialect, r: &'a PackageRelated) -> PackageView<'a> {
        let packages = |list: &'a [AccessPackage]| list.iter().map(|p| PackageView::new(p, d)).collect();
        let navs = PackageNavs {
            catalog: self.catalog.then(|| r.catalog.as_ref().map(|c| CatalogView::new(c, d))),
            role_scopes: self.role_scopes.map(|x| r.role_scopes.iter().map(|v| x.view(v, d)).collect()),
            incompatible_access_packages: self.incompatible_packages.then(|| packages(&r.incompatible_packages)),
            access_packages_incompatible_with: self.incompatible_with.then(|| packages(&r.incompatible_with)),
            incompatible_groups: self
                .incompatible_groups
                .then(|| r.incompatible_groups.iter().map(grantry_graph::directory::group).collect()),
            assignment_policies: self
                .policies
                .then(|| r.policies.iter().map(|p| PolicyView::new(p, d, &PolicyExpandOf::default())).collect()),
        };
        PackageView::with_navs(p, d, navs)
    }
}

/// `$expand` on a resource: `roles`, `scopes` (beta `accessPackageResourceRoles`,
/// `accessPackageResourceScopes`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceExpand {
    roles: bool,
    scopes: bool,
}

impl ResourceExpand {
    pub fn parse(d: Dialect, items: &[ExpandItem]) -> Result<Self> {
        let mut x = ResourceExpand::default();
        for item in items {
            match name(item).as_str() {
                "roles" | "accesspackageresourceroles" => x.roles = true,
                "scopes" | "accesspackageresourcescopes" => x.scopes = true,
                _ => return Err(unsupported(item, &[catalog::name(d, nav::ROLES), catalog::name(d, nav::SCOPES)])),
            }
        }
        Ok(x)
    }

    pub fn wanted(&self) -> ResourceWanted {
        ResourceWanted { roles: self.roles, scopes: self.scopes }
    }

    pub fn view<'a>(&self, res: &'a Resource, d: Dialect, r: &'a ResourceRelated) -> ResourceView<'a> {
        let mut v = ResourceView::new(res, d);
        if self.roles {
            v = v.with_roles(r.roles.iter().map(|x| ResourceRoleView::new(x, d)).collect());
        }
        if self.scopes {
            v = v.with_scopes(r.scopes.iter().map(|x| ResourceScopeView::new(x, d)).collect());
        }
        v
    }
}

/// `$expand` on a resource role, scope or resource request: `resource` (beta
/// `accessPackageResource`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ParentResourceExpand {
    pub resource: bool,
}

impl ParentResourceExpand {
    pub fn parse(d: Dialect, items: &[ExpandItem]) -> Result<Self> {
        let mut x = ParentResourceExpand::default();
        for item in items {
            match name(item).as_str() {
                "resource" | "accesspackageresource" => x.resource = true,
                _ => return Err(unsupported(item, &[catalog::name(d, nav::RESOURCE)])),
            }
        }
        Ok(x)
    }
}
