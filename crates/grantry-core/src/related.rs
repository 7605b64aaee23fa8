//! The related entities `$expand` names, loaded for a whole page in one read: each kind that
//! is wanted is loaded with one query for all its distinct ids (a page of one package's
//! assignments shares its package and policy), not one query per row.

use crate::listing::by_id;
use crate::packages::{self, RoleScopeView};
use crate::{App, Caller};
use grantry_domain::Result;
use grantry_domain::model::{
    AccessPackage, Assignment, AssignmentRequest, Catalog, ConnectedOrganization, Group, Policy, Resource,
    ResourceRole, ResourceScope, Subject,
};
use grantry_store::Conn;
use std::collections::HashMap;

/// Which related entities of an assignment to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssignmentWanted {
    pub target: bool,
    pub package: bool,
    pub policy: bool,
}

/// An assignment's related entities; `None` where not wanted or not found.
#[derive(Debug, Clone, Default)]
pub struct AssignmentRelated {
    pub target: Option<Subject>,
    pub package: Option<AccessPackage>,
    pub policy: Option<Policy>,
    /// The connected organizations of the subjects loaded, by id.
    pub organizations: HashMap<String, ConnectedOrganization>,
}

/// Which related entities of an assignment request to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestWanted {
    pub package: bool,
    pub requestor: bool,
    pub target: bool,
    /// The request's assignment, and what of its own related entities.
    pub assignment: Option<AssignmentWanted>,
}

/// An assignment request's related entities; `None` where not wanted or not found.
#[derive(Debug, Clone, Default)]
pub struct RequestRelated {
    pub package: Option<AccessPackage>,
    pub requestor: Option<Subject>,
    pub target: Option<Subject>,
    pub assignment: Option<Assignment>,
    pub assignment_related: AssignmentRelated,
    /// The connected organizations of the subjects loaded, by id.
    pub organizations: HashMap<String, ConnectedOrganization>,
}

/// The related entities of every assignment of a page, in the page's order.
pub async fn assignments_related(
    app: &App,
    items: &[Assignment],
    wanted: AssignmentWanted,
) -> Result<Vec<AssignmentRelated>> {
    if !(wanted.target || wanted.package || wanted.policy) {
        return Ok(vec![AssignmentRelated::default(); items.len()]);
    }
    let items = items.to_vec();
    app.store.read(move |c| assignments_related_conn(c, &items, wanted)).await
}

fn assignments_related_conn(
    c: &mut dyn Conn,
    items: &[Assignment],
    wanted: AssignmentWanted,
) -> Result<Vec<AssignmentRelated>> {
    let subjects = by_id::<Subject>(c, wanted.target, items.iter().map(|a| &a.target_subject_id))?;
    let packages = by_id::<AccessPackage>(c, wanted.package, items.iter().map(|a| &a.access_package_id))?;
    let policies = by_id::<Policy>(c, wanted.policy, items.iter().map(|a| &a.policy_id))?;
    let organizations = organizations_of(c, subjects.values())?;
    Ok(items
        .iter()
        .map(|a| {
            let target = subjects.get(&a.target_subject_id).cloned();
            AssignmentRelated {
                organizations: only_of(&organizations, [&target]),
                target,
                package: packages.get(&a.access_package_id).cloned(),
                policy: policies.get(&a.policy_id).cloned(),
            }
        })
        .collect())
}

/// The connected organizations of `subjects`, by id.
fn organizations_of<'a>(
    c: &mut dyn Conn,
    subjects: impl Iterator<Item = &'a Subject>,
) -> Result<HashMap<String, ConnectedOrganization>> {
    let ids: Vec<&String> = subjects.filter_map(|s| s.connected_organization_id.as_ref()).collect();
    by_id::<ConnectedOrganization>(c, !ids.is_empty(), ids.into_iter())
}

/// The organizations of the given subjects only.
fn only_of<const N: usize>(
    all: &HashMap<String, ConnectedOrganization>,
    subjects: [&Option<Subject>; N],
) -> HashMap<String, ConnectedOrganization> {
    subjects
        .iter()
        .filter_map(|s| s.as_ref().and_then(|s| s.connected_organization_id.as_ref()))
        .filter_map(|id| all.get(id).map(|o| (id.clone(), o.clone())))
        .collect()
}

/// The related entities of every request of a page, in the page's order.
pub async fn requests_related(
    app: &App,
    items: &[AssignmentRequest],
    wanted: RequestWanted,
) -> Result<Vec<RequestRelated>> {
    if !(wanted.package || wanted.requestor || wanted.target || wanted.assignment.is_some()) {
        return Ok(vec![RequestRelated::default(); items.len()]);
    }
    let items = items.to_vec();
    app.store
        .read(move |c| {
            let packages = by_id::<AccessPackage>(c, wanted.package, items.iter().map(|r| &r.access_package_id))?;
            let subject_ids = items.iter().flat_map(|r| {
                let requestor = r.requestor_subject_id.as_ref().filter(|_| wanted.requestor);
                let target = Some(&r.target_subject_id).filter(|_| wanted.target);
                requestor.into_iter().chain(target)
            });
            let subjects = by_id::<Subject>(c, wanted.requestor || wanted.target, subject_ids)?;
            let organizations = organizations_of(c, subjects.values())?;
            let assignments: HashMap<String, Assignment> = by_id::<Assignment>(
                c,
                wanted.assignment.is_some(),
                items.iter().filter_map(|r| r.assignment_id.as_ref()),
            )?;
            let mut found: Vec<Assignment> = assignments.values().cloned().collect();
            found.sort_by(|a, b| a.id.cmp(&b.id));
            let nested = assignments_related_conn(c, &found, wanted.assignment.unwrap_or_default())?;
            let nested: HashMap<&str, AssignmentRelated> = found.iter().map(|a| a.id.as_str()).zip(nested).collect();
            Ok(items
                .iter()
                .map(|r| {
                    let assignment = r.assignment_id.as_ref().and_then(|id| assignments.get(id)).cloned();
                    let assignment_related =
                        assignment.as_ref().and_then(|a| nested.get(a.id.as_str()).cloned()).unwrap_or_default();
                    let requestor = r.requestor_subject_id.as_ref().and_then(|s| subjects.get(s)).cloned();
                    let target = subjects.get(&r.target_subject_id).cloned();
                    RequestRelated {
                        organizations: only_of(&organizations, [&requestor, &target]),
                        package: packages.get(&r.access_package_id).cloned(),
                        requestor,
                        target,
                        assignment,
                        assignment_related,
                    }
                })
                .collect())
        })
        .await
}

/// Groups `pairs` of (owner id, item) by owner, keeping their order, into one list per id
/// of `owners`.
fn grouped<T>(owners: &[&str], pairs: impl IntoIterator<Item = (String, T)>) -> Vec<Vec<T>> {
    let mut by_owner: HashMap<String, Vec<T>> = HashMap::new();
    for (owner, item) in pairs {
        by_owner.entry(owner).or_default().push(item);
    }
    owners.iter().map(|id| by_owner.remove(*id).unwrap_or_default()).collect()
}

/// Which related entities of a catalog to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogWanted {
    pub packages: bool,
}

/// A catalog's related entities; empty where not wanted.
#[derive(Debug, Clone, Default)]
pub struct CatalogRelated {
    pub packages: Vec<AccessPackage>,
}

/// The related entities of every catalog of a page (the caller could read the catalogs),
/// in the page's order.
pub async fn catalogs_related(app: &App, items: &[Catalog], wanted: CatalogWanted) -> Result<Vec<CatalogRelated>> {
    if !wanted.packages {
        return Ok(vec![CatalogRelated::default(); items.len()]);
    }
    let ids: Vec<&str> = items.iter().map(|c| c.id.as_str()).collect();
    let packages = crate::packages::packages_of_catalogs(app, ids.iter().map(|s| s.to_string()).collect()).await?;
    let packages = grouped(&ids, packages.into_iter().map(|p| (p.catalog_id.clone(), p)));
    Ok(packages.into_iter().map(|packages| CatalogRelated { packages }).collect())
}

/// Which related entities of an access package to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackageWanted {
    pub catalog: bool,
    pub role_scopes: bool,
    pub incompatible_packages: bool,
    pub incompatible_with: bool,
    pub incompatible_groups: bool,
    pub policies: bool,
}

/// An access package's related entities; empty where not wanted.
#[derive(Debug, Clone, Default)]
pub struct PackageRelated {
    pub catalog: Option<Catalog>,
    pub role_scopes: Vec<RoleScopeView>,
    pub incompatible_packages: Vec<AccessPackage>,
    pub incompatible_with: Vec<AccessPackage>,
    pub incompatible_groups: Vec<Group>,
    pub policies: Vec<Policy>,
}

/// The related entities of every package of a page (the caller could read the packages,
/// and with them their catalogs, role scopes and policies; related packages in catalogs the
/// caller may not read are left out), each kind loaded once for the whole page.
pub async fn packages_related(
    app: &App,
    caller: &Caller,
    items: &[AccessPackage],
    wanted: PackageWanted,
) -> Result<Vec<PackageRelated>> {
    let mut out = vec![PackageRelated::default(); items.len()];
    let ids: Vec<&str> = items.iter().map(|p| p.id.as_str()).collect();
    let owned = || ids.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    if wanted.catalog {
        let mut catalog_ids: Vec<String> = items.iter().map(|p| p.catalog_id.clone()).collect();
        catalog_ids.sort_unstable();
        catalog_ids.dedup();
        let found: HashMap<String, Catalog> =
            crate::catalogs::catalogs_by_ids(app, catalog_ids).await?.into_iter().map(|c| (c.id.clone(), c)).collect();
        for (r, p) in out.iter_mut().zip(items) {
            r.catalog = found.get(&p.catalog_id).cloned();
        }
    }
    if wanted.role_scopes {
        let views = packages::role_scopes_of(app, owned()).await?;
        let views = grouped(&ids, views.into_iter().map(|v| (v.role_scope.access_package_id.clone(), v)));
        for (r, v) in out.iter_mut().zip(views) {
            r.role_scopes = v;
        }
    }
    if wanted.incompatible_packages {
        let pairs = grouped(&ids, packages::incompatible_packages_of(app, caller, owned()).await?);
        for (r, v) in out.iter_mut().zip(pairs) {
            r.incompatible_packages = v;
        }
    }
    if wanted.incompatible_with {
        let pairs = grouped(&ids, packages::packages_incompatible_with_of(app, caller, owned()).await?);
        for (r, v) in out.iter_mut().zip(pairs) {
            r.incompatible_with = v;
        }
    }
    if wanted.incompatible_groups {
        let pairs = grouped(&ids, packages::incompatible_groups_of(app, owned()).await?);
        for (r, v) in out.iter_mut().zip(pairs) {
            r.incompatible_groups = v;
        }
    }
    if wanted.policies && !ids.is_empty() {
        let policies: Vec<Policy> = crate::listing::find_in(app, "access_package_id", owned()).await?;
        let policies = grouped(&ids, policies.into_iter().map(|p| (p.access_package_id.clone(), p)));
        for (r, v) in out.iter_mut().zip(policies) {
            r.policies = v;
        }
    }
    Ok(out)
}

/// Which related entities of a resource to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceWanted {
    pub roles: bool,
    pub scopes: bool,
}

/// A resource's related entities; empty where not wanted.
#[derive(Debug, Clone, Default)]
pub struct ResourceRelated {
    pub roles: Vec<ResourceRole>,
    pub scopes: Vec<ResourceScope>,
}

/// The roles and scopes of every resource of a page (the caller could read the resources).
pub async fn resources_related(app: &App, items: &[Resource], wanted: ResourceWanted) -> Result<Vec<ResourceRelated>> {
    let mut out = vec![ResourceRelated::default(); items.len()];
    let ids: Vec<&str> = items.iter().map(|r| r.id.as_str()).collect();
    let owned = || ids.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    if wanted.roles {
        let roles = crate::resources::roles_of(app, owned()).await?;
        for (r, v) in out.iter_mut().zip(grouped(&ids, roles.into_iter().map(|x| (x.resource_id.clone(), x)))) {
            r.roles = v;
        }
    }
    if wanted.scopes {
        let scopes = crate::resources::scopes_of(app, owned()).await?;
        for (r, v) in out.iter_mut().zip(grouped(&ids, scopes.into_iter().map(|x| (x.resource_id.clone(), x)))) {
            r.scopes = v;
        }
    }
    Ok(out)
}

/// The resource of each of `resource_ids` (a page of roles or scopes), in order; `None`
/// where it no longer exists.
pub async fn parent_resources(app: &App, resource_ids: &[&str]) -> Result<Vec<Option<Resource>>> {
    let mut unique: Vec<String> = resource_ids.iter().map(|s| s.to_string()).collect();
    unique.sort_unstable();
    unique.dedup();
    let found: HashMap<String, Resource> =
        crate::resources::resources_by_ids(app, unique).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
    Ok(resource_ids.iter().map(|id| found.get(*id).cloned()).collect())
}
