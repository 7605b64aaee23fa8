//! The related entities `$expand` names, loaded for a whole page in one read: each kind that
//! is wanted is loaded with one query for all its distinct ids (a page of one package's
//! assignments shares its package and policy), not one query per row.

use crate::App;
use crate::listing::by_id;
use grantry_domain::Result;
use grantry_domain::model::{AccessPackage, Assignment, AssignmentRequest, Policy, Subject};
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
    Ok(items
        .iter()
        .map(|a| AssignmentRelated {
            target: subjects.get(&a.target_subject_id).cloned(),
            package: packages.get(&a.access_package_id).cloned(),
            policy: policies.get(&a.policy_id).cloned(),
        })
        .collect())
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
                    RequestRelated {
                        package: packages.get(&r.access_package_id).cloned(),
                        requestor: r.requestor_subject_id.as_ref().and_then(|s| subjects.get(s)).cloned(),
                        target: subjects.get(&r.target_subject_id).cloned(),
                        assignment,
                        assignment_related,
                    }
                })
                .collect())
        })
        .await
}
