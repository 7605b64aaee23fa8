//! Field registries of the request and assignment collections: the properties clients
//! filter and sort on, under both dialects' names, and the SQL behind each. The generic
//! query layer (`crate::listing`) turns `$filter`/`$orderby`/`$search` into SQL with them.

use grantry_domain::enums::{AssignmentState, RequestState, RequestType};
use grantry_store::query::{Field, Kind};

fn request_state(s: &str) -> Option<&'static str> {
    RequestState::parse(s).map(|v| v.v1())
}
fn request_type(s: &str) -> Option<&'static str> {
    RequestType::parse(s).map(|v| v.v1())
}
fn assignment_state(s: &str) -> Option<&'static str> {
    AssignmentState::parse(s).map(|v| v.v1())
}

pub const REQUEST_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["accessPackage/id", "accessPackageId"], sql: "access_package_id", kind: Kind::Id },
    Field {
        names: &["assignmentPolicy/id", "accessPackageAssignmentPolicy/id", "assignmentPolicyId"],
        sql: "policy_id",
        kind: Kind::Id,
    },
    Field { names: &["assignment/id", "accessPackageAssignment/id"], sql: "assignment_id", kind: Kind::Id },
    Field { names: &["catalog/id", "catalogId", "accessPackage/catalog/id"], sql: "catalog_id", kind: Kind::Id },
    Field {
        names: &["state", "requestState"],
        sql: "state",
        kind: Kind::Enum { normalize: request_state, allowed: RequestState::allowed },
    },
    Field { names: &["status", "requestStatus"], sql: "status", kind: Kind::TextIgnoreCase },
    Field {
        names: &["requestType"],
        sql: "request_type",
        kind: Kind::Enum { normalize: request_type, allowed: RequestType::allowed },
    },
    Field {
        names: &["target/objectId"],
        sql: "(SELECT object_id FROM subjects WHERE subjects.id = requests.target_subject_id)",
        kind: Kind::Id,
    },
    Field {
        names: &["target/email"],
        sql: "(SELECT email_lower FROM subjects WHERE subjects.id = requests.target_subject_id)",
        kind: Kind::TextIgnoreCase,
    },
    Field { names: &["target/id", "targetId"], sql: "target_subject_id", kind: Kind::Id },
    Field {
        names: &["requestor/objectId"],
        sql: "(SELECT object_id FROM subjects WHERE subjects.id = requests.requestor_subject_id)",
        kind: Kind::Id,
    },
    Field { names: &["requestor/id"], sql: "requestor_subject_id", kind: Kind::Id },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field { names: &["completedDateTime", "completedDate"], sql: "completed_us", kind: Kind::Time },
];

pub const ASSIGNMENT_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["accessPackage/id", "accessPackageId"], sql: "access_package_id", kind: Kind::Id },
    Field {
        names: &["assignmentPolicy/id", "accessPackageAssignmentPolicy/id", "assignmentPolicyId"],
        sql: "policy_id",
        kind: Kind::Id,
    },
    Field { names: &["catalog/id", "catalogId", "accessPackage/catalog/id"], sql: "catalog_id", kind: Kind::Id },
    Field {
        names: &["state", "assignmentState"],
        sql: "state",
        kind: Kind::Enum { normalize: assignment_state, allowed: AssignmentState::allowed },
    },
    Field { names: &["status", "assignmentStatus"], sql: "status", kind: Kind::TextIgnoreCase },
    Field {
        names: &["target/objectId"],
        sql: "(SELECT object_id FROM subjects WHERE subjects.id = assignments.target_subject_id)",
        kind: Kind::Id,
    },
    Field {
        names: &["target/email"],
        sql: "(SELECT email_lower FROM subjects WHERE subjects.id = assignments.target_subject_id)",
        kind: Kind::TextIgnoreCase,
    },
    Field { names: &["target/id", "targetId"], sql: "target_subject_id", kind: Kind::Id },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field { names: &["expiredDateTime"], sql: "expired_us", kind: Kind::Time },
];
