//! `$expand` as types: which navigation properties a response carries, read once from the
//! query, so core loads the related entities of a whole page in one read and the typed
//! views in `grantry-graph` render them; nothing edits a rendered body afterwards.

use crate::extract::RawQuery;
use grantry_core::related::{AssignmentRelated, AssignmentWanted, RequestRelated, RequestWanted};
use grantry_domain::{Error, Result};
use grantry_graph::Dialect;
use grantry_graph::assignment::{AssignmentNavs, AssignmentView, PackageView, PolicySummaryView};
use grantry_graph::request::{RequestNavs, SubjectView};
use grantry_odata::ExpandItem;

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

/// A subject, with its own nested `$expand=connectedOrganization`. Connected organizations
/// are not modelled yet, so that navigation is always null.
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
        d: Dialect,
    ) -> Option<Option<SubjectView<'a>>> {
        this.map(|x| s.as_ref().map(|s| SubjectView::new(s, d, x.connected_organization)))
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
            target: SubjectExpand::view(self.target, &r.target, d),
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
            requestor: SubjectExpand::view(self.requestor, &r.requestor, d),
            target: SubjectExpand::view(self.target, &r.target, d),
            assignment: self
                .assignment
                .map(|x| r.assignment.as_ref().map(|a| AssignmentView::new(a, d, x.navs(d, &r.assignment_related)))),
        }
    }
}
