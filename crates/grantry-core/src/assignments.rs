//! Assignments (read-only except through requests), their delivered resource roles, and
//! the end-user questions "what may I request, and how".

use crate::auth::{CatalogRight, perms};
use crate::listing::{ListOptions, Listed};
use crate::requests::{self, Mine, Target, caller_subject_id, visibility};
use crate::{App, Caller, Page, PageRequest};
use grantry_domain::enums::RequestType;
use grantry_domain::model::*;
use grantry_domain::{Error, Result, ids};
use grantry_store::query::Sql;
use grantry_store::{Conn, Value, repo};

pub(crate) fn may_read(c: &mut dyn Conn, caller: &Caller, a: &Assignment) -> Result<bool> {
    if caller.has_permission(perms::EM_READ) && caller.may_in_catalog(&a.catalog_id, CatalogRight::Read) {
        return Ok(true);
    }
    let me = caller_subject_id(c, caller)?;
    Ok(me.as_deref() == Some(a.target_subject_id.as_str()) && caller.has_permission(perms::EM_SUBJECT_READ))
}

pub async fn get_assignment(app: &App, caller: &Caller, id: &str) -> Result<Assignment> {
    caller.require(perms::EM_SUBJECT_READ)?;
    let id = ids::normalize(id);
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let a = repo::get::<Assignment>(c, &id)?.ok_or_else(|| Error::not_found("accessPackageAssignment", &id))?;
            if may_read(c, &caller, &a)? { Ok(a) } else { Err(Error::not_found("accessPackageAssignment", &id)) }
        })
        .await
}

pub async fn list_assignments(
    app: &App,
    caller: &Caller,
    mine: Mine,
    options: ListOptions,
    extra: Option<Sql>,
) -> Result<Listed<Assignment>> {
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let (text, params) = visibility(c, &caller, mine, "assignments")?;
            let mut scope = if text.trim().is_empty() { Vec::new() } else { vec![Sql { text, params }] };
            scope.extend(extra);
            crate::listing::list(c, crate::filters::ASSIGNMENT_FIELDS, scope, &options)
        })
        .await
}

/// `additionalAccess(accessPackageId='a',incompatibleAccessPackageId='b')`: active
/// assignments to `a` whose target also holds `b`.
pub async fn additional_access(
    app: &App,
    caller: &Caller,
    package_id: &str,
    incompatible_id: &str,
    options: ListOptions,
) -> Result<Listed<Assignment>> {
    let (a, b) = (ids::normalize(package_id), ids::normalize(incompatible_id));
    if a.is_empty() || b.is_empty() {
        return Err(Error::bad_request(
            "BadRequest",
            "additionalAccess needs accessPackageId='…' and incompatibleAccessPackageId='…'.",
        ));
    }
    if a == b {
        return Err(Error::bad_request(
            "BadRequest",
            "additionalAccess: accessPackageId and incompatibleAccessPackageId must differ.",
        ));
    }
    let extra = Sql {
        text: "access_package_id = ? AND active = 1 AND target_subject_id IN (SELECT target_subject_id FROM assignments WHERE access_package_id = ? AND active = 1)"
            .to_string(),
        params: vec![Value::from(a), Value::from(b)],
    };
    list_assignments(app, caller, Mine::All, options, Some(extra)).await
}

/// `POST assignments/{id}/reprocess`: re-grants a delivered assignment's memberships.
pub async fn reprocess_assignment(app: &App, caller: &Caller, id: &str) -> Result<()> {
    caller.require(perms::EM_WRITE)?;
    let id = ids::normalize(id);
    let now = app.now();
    let caller = caller.clone();
    app.store
        .write(move |c| {
            let a = repo::get::<Assignment>(c, &id)?.ok_or_else(|| Error::not_found("accessPackageAssignment", &id))?;
            if !may_read(c, &caller, &a)? {
                return Err(Error::not_found("accessPackageAssignment", &id));
            }
            caller.require_in_catalog(&a.catalog_id, CatalogRight::ManageAssignments)?;
            if a.state != grantry_domain::enums::AssignmentState::Delivered {
                return Err(Error::bad_request(
                    "InvalidRequestState",
                    format!(
                        "Assignment '{}' is {}; only a delivered assignment can be reprocessed.",
                        a.id,
                        a.state.v1()
                    ),
                ));
            }
            crate::delivery::reenforce(c, now, &a)
        })
        .await
}

/// The assignment's related entities for `$expand`: target, package, policy.
pub async fn assignment_related(
    app: &App,
    a: &Assignment,
) -> Result<(Option<Subject>, Option<AccessPackage>, Option<Policy>)> {
    let a = a.clone();
    app.store
        .read(move |c| {
            Ok((
                repo::get::<Subject>(c, &a.target_subject_id)?,
                repo::get::<AccessPackage>(c, &a.access_package_id)?,
                repo::get::<Policy>(c, &a.policy_id)?,
            ))
        })
        .await
}

/// Which related entities of a page of assignments to load (those `$expand` names).
#[derive(Debug, Clone, Copy, Default)]
pub struct RelatedWanted {
    pub target: bool,
    pub package: bool,
    pub policy: bool,
}

/// The related entities of every assignment of a page, in one read: each kind that is
/// wanted is loaded with one query for all its distinct ids (a page of one package's
/// assignments shares its package and policy), not one query per row.
pub async fn assignments_related(
    app: &App,
    items: &[Assignment],
    wanted: RelatedWanted,
) -> Result<Vec<(Option<Subject>, Option<AccessPackage>, Option<Policy>)>> {
    let keys: Vec<(String, String, String)> =
        items.iter().map(|a| (a.target_subject_id.clone(), a.access_package_id.clone(), a.policy_id.clone())).collect();
    app.store
        .read(move |c| {
            let subjects = crate::listing::by_id::<Subject>(c, wanted.target, keys.iter().map(|k| &k.0))?;
            let packages = crate::listing::by_id::<AccessPackage>(c, wanted.package, keys.iter().map(|k| &k.1))?;
            let policies = crate::listing::by_id::<Policy>(c, wanted.policy, keys.iter().map(|k| &k.2))?;
            Ok(keys
                .iter()
                .map(|(s, p, pol)| (subjects.get(s).cloned(), packages.get(p).cloned(), policies.get(pol).cloned()))
                .collect())
        })
        .await
}

pub async fn list_resource_roles(
    app: &App,
    caller: &Caller,
    mine: bool,
    page: PageRequest,
) -> Result<Page<AssignmentResourceRole>> {
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let (vsql, params) = visibility(c, &caller, if mine { Mine::Target } else { Mine::All }, "assignments")?;
            let where_sql = if vsql.is_empty() {
                String::new()
            } else {
                format!("assignment_id IN (SELECT id FROM assignments WHERE {vsql})")
            };
            Ok(Page::from_rows(repo::list(c, &where_sql, &params, page.after_seq, page.size + 1)?, page.size))
        })
        .await
}

pub async fn get_resource_role(app: &App, caller: &Caller, id: &str) -> Result<AssignmentResourceRole> {
    let id = ids::normalize(id);
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let r = repo::get::<AssignmentResourceRole>(c, &id)?
                .ok_or_else(|| Error::not_found("accessPackageAssignmentResourceRole", &id))?;
            let a = repo::get::<Assignment>(c, &r.assignment_id)?;
            match a {
                Some(a) if may_read(c, &caller, &a)? => Ok(r),
                _ => Err(Error::not_found("accessPackageAssignmentResourceRole", &id)),
            }
        })
        .await
}

/// The policies of `package` through which the signed-in caller may request access for
/// themselves.
fn requestable_policies(c: &mut dyn Conn, caller: &Caller, package: &AccessPackage) -> Result<Vec<Policy>> {
    let Some(uid) = caller.user_id() else { return Ok(Vec::new()) };
    let Some(catalog) = repo::get::<Catalog>(c, &package.catalog_id)? else { return Ok(Vec::new()) };
    if catalog.state != grantry_domain::enums::CatalogState::Published {
        return Ok(Vec::new());
    }
    let user = repo::get::<User>(c, uid)?;
    let target = Target {
        subject: requests::subject_by_object_id(c, uid)?,
        email: user.as_ref().and_then(|u| u.mail.clone()),
        display_name: user.as_ref().map(|u| u.display_name.clone()),
        user,
    };
    let policies: Vec<Policy> = repo::find_all(c, "access_package_id = ?", &[Value::from(&package.id)])?;
    let mut out = Vec::new();
    for p in policies {
        if p.is_admin_only() || !p.requestor_settings.enable_targets_to_self_add_access {
            continue;
        }
        if requests::in_scope(c, &p, &catalog, &target, Some(uid))? {
            out.push(p);
        }
    }
    Ok(out)
}

/// `POST accessPackages/{id}/getApplicablePolicyRequirements`.
pub async fn applicable_policy_requirements(app: &App, caller: &Caller, package_id: &str) -> Result<Vec<Policy>> {
    if caller.is_app() {
        return Err(Error::forbidden(
            "getApplicablePolicyRequirements answers for the signed-in user; call it with a delegated token.",
        ));
    }
    caller.require(perms::EM_SUBJECT)?;
    let id = ids::normalize(package_id);
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let package = repo::get::<AccessPackage>(c, &id)?.ok_or_else(|| Error::not_found("accessPackage", &id))?;
            requestable_policies(c, &caller, &package)
        })
        .await
}

/// `GET accessPackages/filterByCurrentUser(on='allowedRequestor')`.
pub async fn requestable_packages(app: &App, caller: &Caller, page: PageRequest) -> Result<Page<AccessPackage>> {
    if caller.is_app() {
        return Err(Error::forbidden("filterByCurrentUser is for signed-in users; call it with a delegated token."));
    }
    caller.require(perms::EM_SUBJECT_READ)?;
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let mut rows = Vec::new();
            let mut after = page.after_seq;
            // Walk packages in order until a page of requestable ones is found.
            loop {
                let batch: Vec<(i64, AccessPackage)> = repo::list(c, "", &[], after, 200)?;
                if batch.is_empty() {
                    break;
                }
                for (seq, p) in &batch {
                    if !requestable_policies(c, &caller, p)?.is_empty() {
                        rows.push((*seq, p.clone()));
                    }
                    if rows.len() > page.size {
                        break;
                    }
                }
                if rows.len() > page.size {
                    break;
                }
                after = batch.last().map(|(s, _)| *s);
            }
            Ok(Page::from_rows(rows, page.size))
        })
        .await
}

/// Request types that put an item under the caller, for `createdBy` views.
pub fn is_client_type(t: RequestType) -> bool {
    t.is_admin() || t.is_user()
}
