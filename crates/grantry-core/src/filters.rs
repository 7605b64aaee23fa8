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

#[cfg(test)]
mod tests {
    //! Snapshots of the SQL generated for the filters Graph documents and clients send. The
    //! same text runs on SQLite and PostgreSQL (the PostgreSQL connection only renumbers
    //! `?` placeholders to `$n`).

    use super::*;
    use grantry_store::Value;
    use grantry_store::query::{parse_error, translate_filter};

    fn sql(fields: &[Field], filter: &str) -> (String, Vec<Value>) {
        let expr = grantry_odata::parse_filter(filter).map_err(parse_error).unwrap();
        let s = translate_filter(&expr, fields).unwrap();
        (s.text, s.params)
    }

    #[test]
    fn documented_assignment_filters() {
        let cases: &[(&str, &str)] = &[
            ("state eq 'Delivered'", "state = ?"),
            (
                "accessPackage/id eq 'A914B616-E04E-476B-AA37-91038F0B165B' and state eq 'delivered'",
                "(access_package_id = ? AND state = ?)",
            ),
            (
                "target/objectid eq '7deff43e-1f17-44ef-9e5f-d516b0ba11d4'",
                "(SELECT object_id FROM subjects WHERE subjects.id = assignments.target_subject_id) = ?",
            ),
            ("assignmentPolicy/id eq '2264bf65-76ba-417b-a27d-54d291f0cbc8'", "policy_id = ?"),
            ("assignmentState in ('Delivered','Expired')", "state IN (?, ?)"),
        ];
        for (filter, expected) in cases {
            assert_eq!(sql(ASSIGNMENT_FIELDS, filter).0, *expected, "{filter}");
        }
        assert_eq!(
            sql(
                ASSIGNMENT_FIELDS,
                "accessPackage/id eq 'A914B616-E04E-476B-AA37-91038F0B165B' and state eq 'Delivered'"
            )
            .1,
            vec![Value::from("a914b616-e04e-476b-aa37-91038f0b165b"), Value::from("delivered")]
        );
    }

    #[test]
    fn documented_request_filters() {
        let cases: &[(&str, &str)] = &[
            ("(requestState eq 'PendingApproval')", "state = ?"),
            ("accessPackage/id eq 'x' and requestType eq 'AdminAdd'", "(access_package_id = ? AND request_type = ?)"),
            (
                "createdDateTime ge 2024-01-01T00:00:00Z and not (state eq 'denied')",
                "(created_us >= ? AND (NOT state = ?))",
            ),
            (
                "requestor/objectId eq 'u'",
                "(SELECT object_id FROM subjects WHERE subjects.id = requests.requestor_subject_id) = ?",
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(sql(REQUEST_FIELDS, filter).0, *expected, "{filter}");
        }
        assert_eq!(sql(REQUEST_FIELDS, "requestType eq 'AdminAdd'").1, vec![Value::from("adminAdd")]);
    }
}
