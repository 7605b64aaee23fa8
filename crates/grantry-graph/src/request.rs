//! Assignment requests on the wire: the create body in every shape real clients send
//! (reference §9.2, §13.2; Python SDK shapes A, B and C), and the v1.0 / beta renderings.

use crate::body::{Body, short_type_name};
use crate::render::{Dialect, object, opt_str, ts, ts_opt};
use grantry_domain::enums::{ExpirationType, RequestType};
use grantry_domain::model::{Answer, AssignmentRequest, Expiration, NewRequest, Schedule, Subject, TargetRef};
use grantry_domain::{Error, Result, ids};
use serde_json::{Value, json};

/// Request types a client may send.
pub const CLIENT_REQUEST_TYPES: &[RequestType] = &[
    RequestType::AdminAdd,
    RequestType::AdminUpdate,
    RequestType::AdminRemove,
    RequestType::UserAdd,
    RequestType::UserUpdate,
    RequestType::UserExtend,
    RequestType::UserRemove,
];

fn allowed_types() -> String {
    CLIENT_REQUEST_TYPES.iter().map(|t| t.v1()).collect::<Vec<_>>().join(", ")
}

/// Reads a create-request body. `assignment` and `accessPackageAssignment` are accepted on
/// both roots; ids may be flat (`targetId`, `target_id`), nested (`target{objectId}`,
/// `assignmentPolicy{id}`) or at the request level.
pub fn parse_new_request(json: &Value) -> Result<NewRequest> {
    parse_new_request_body(&Body::root(json)?)
}

/// As [`parse_new_request`], from a [`Body`] the caller checks afterwards.
pub fn parse_new_request_body(b: &Body<'_>) -> Result<NewRequest> {
    let request_type = match b.str(&["requestType", "request_type"])? {
        None => {
            return Err(Error::invalid_property(
                "requestType",
                format!("'requestType' is required; use one of: {}.", allowed_types()),
            ));
        }
        Some(s) => match RequestType::parse(&s) {
            None => {
                return Err(Error::invalid_property(
                    "requestType",
                    format!(
                        "'requestType' has the value '{s}', which is not one of the allowed values: {}.",
                        allowed_types()
                    ),
                ));
            }
            Some(t) if !CLIENT_REQUEST_TYPES.contains(&t) => {
                return Err(Error::bad_request(
                    "RequestTypeNotAllowed",
                    format!(
                        "Clients cannot create '{}' requests (the service creates system requests itself); use one of: {}.",
                        t.v1(),
                        allowed_types()
                    ),
                )
                .with_target("requestType"));
            }
            Some(t) => t,
        },
    };
    let assignment = b.object(&["assignment", "accessPackageAssignment", "access_package_assignment"])?;
    let scopes: Vec<&Body<'_>> = assignment.iter().chain(std::iter::once(b)).collect();

    let mut target: Option<TargetRef> = None;
    let mut policy_id = None;
    let mut access_package_id = None;
    let mut schedule = None;
    for s in &scopes {
        if target.is_none() {
            if let Some(id) = s.str(&["targetId", "target_id"])? {
                target = Some(TargetRef { object_id: Some(ids::normalize(&id)), ..Default::default() });
            } else if let Some(t) = s.object(&["target"])? {
                let object_id = t.str(&["objectId", "object_id", "id"])?.map(|s| ids::normalize(&s));
                let email = t.str(&["email", "mail"])?.map(|e| e.trim().to_string());
                if object_id.is_none() && email.is_none() {
                    return Err(Error::invalid_property(
                        &t.path_of("objectId"),
                        format!(
                            "'{}' must carry 'objectId' (a directory user) or 'email' (an external user).",
                            t.path_of("")
                        ),
                    ));
                }
                target = Some(TargetRef { object_id, email, display_name: t.str(&["displayName"])? });
            }
        }
        if policy_id.is_none() {
            policy_id = s.bound_id(
                &["assignmentPolicy", "accessPackageAssignmentPolicy"],
                &["assignmentPolicyId", "assignment_policy_id", "accessPackageAssignmentPolicyId"],
            )?;
        }
        if access_package_id.is_none() {
            access_package_id = s.bound_id(&["accessPackage"], &["accessPackageId", "access_package_id"])?;
        }
        if schedule.is_none() {
            schedule = parse_schedule(s)?;
        }
    }
    let assignment_id = match &assignment {
        Some(a) => a.str(&["id"])?.map(|s| ids::normalize(&s)),
        None => None,
    };
    let mut answers = Vec::new();
    for a in b.objects(&["answers"])? {
        answers.push(parse_answer(&a)?);
    }
    Ok(NewRequest {
        request_type,
        assignment_id,
        target,
        policy_id,
        access_package_id,
        schedule,
        answers,
        justification: b.str(&["justification"])?.filter(|j| !j.trim().is_empty()),
        is_validation_only: b.bool(&["isValidationOnly", "is_validation_only"])?.unwrap_or(false),
    })
}

/// `schedule` (v1 `entitlementManagementSchedule`, beta `requestSchedule`) under `b`, if it
/// says anything. An undeclared `stopDateTime` is read as an end date.
fn parse_schedule(b: &Body<'_>) -> Result<Option<Schedule>> {
    let Some(s) = b.object(&["schedule"])? else { return Ok(None) };
    let start = s.datetime(&["startDateTime"])?;
    let mut expiration = Expiration::default();
    if let Some(e) = s.object(&["expiration"])? {
        expiration.end_date_time = e.datetime(&["endDateTime"])?;
        expiration.duration = e.duration(&["duration"])?;
        expiration.kind = e.enumeration(&["type"], ExpirationType::parse, &ExpirationType::allowed())?.unwrap_or(
            if expiration.end_date_time.is_some() {
                ExpirationType::AfterDateTime
            } else if expiration.duration.is_some() {
                ExpirationType::AfterDuration
            } else {
                ExpirationType::NotSpecified
            },
        );
        if expiration.kind == ExpirationType::AfterDateTime && expiration.end_date_time.is_none() {
            return Err(Error::invalid_property(
                &e.path_of("endDateTime"),
                "An expiration of type afterDateTime needs 'endDateTime'.",
            ));
        }
        if expiration.kind == ExpirationType::AfterDuration && expiration.duration.is_none() {
            return Err(Error::invalid_property(
                &e.path_of("duration"),
                "An expiration of type afterDuration needs 'duration' (ISO-8601, e.g. P30D).",
            ));
        }
    }
    if expiration.kind == ExpirationType::NotSpecified
        && let Some(stop) = s.datetime(&["stopDateTime"])?
    {
        expiration = Expiration { kind: ExpirationType::AfterDateTime, end_date_time: Some(stop), duration: None };
    }
    let recurrence = s.raw(&["recurrence"]).map(|(v, _)| v.clone());
    if start.is_none() && expiration.kind == ExpirationType::NotSpecified {
        return Ok(None);
    }
    Ok(Some(Schedule { start_date_time: start, expiration, recurrence }))
}

fn parse_answer(a: &Body<'_>) -> Result<Answer> {
    let question = a.object(&["answeredQuestion", "question"])?.ok_or_else(|| {
        Error::invalid_property(
            &a.path_of("answeredQuestion"),
            format!(
                "'{}' is required: name the question answered as {{\"id\": \"…\"}}.",
                a.path_of("answeredQuestion")
            ),
        )
    })?;
    let question_id = ids::normalize(&question.required_str(&["id"])?);
    let value = match a.raw(&["value"]) {
        None => None,
        Some((Value::String(s), k)) => {
            a.check_length(k, s)?;
            Some(s.clone())
        }
        Some((Value::Number(n), _)) => Some(n.to_string()),
        Some((Value::Bool(v), _)) => Some(v.to_string()),
        Some(_) => return Err(Error::invalid_property(&a.path_of("value"), "An answer's 'value' must be a string.")),
    };
    Ok(Answer {
        question_id,
        question_type: question.odata_type().map(|t| format!("#microsoft.graph.{t}")),
        value,
        display_value: a.str(&["displayValue"])?,
    })
}

pub fn schedule(s: &Schedule) -> Value {
    json!({
        "startDateTime": ts_opt(s.start_date_time),
        "recurrence": s.recurrence.clone().unwrap_or(Value::Null),
        "expiration": {
            "endDateTime": ts_opt(s.expiration.end_date_time),
            "duration": s.expiration.duration.map(|d| Value::String(grantry_domain::duration::format(d))).unwrap_or(Value::Null),
            "type": s.expiration.kind.v1(),
        }
    })
}

pub fn answer(a: &Answer) -> Value {
    let qtype = a
        .question_type
        .as_deref()
        .map(|t| format!("#microsoft.graph.{}", short_type_name(t)))
        .unwrap_or_else(|| "#microsoft.graph.accessPackageQuestion".into());
    json!({
        "@odata.type": "#microsoft.graph.accessPackageAnswerString",
        "value": a.value,
        "displayValue": a.display_value,
        "answeredQuestion": { "@odata.type": qtype, "id": a.question_id },
    })
}

/// An assignment request in the dialect of the URL.
pub fn request(r: &AssignmentRequest, d: Dialect) -> Value {
    let answers: Vec<Value> = r.answers.iter().map(answer).collect();
    match d {
        Dialect::V1 => object([
            ("id", json!(r.id)),
            ("requestType", json!(r.request_type.v1_wire())),
            ("state", json!(r.state.v1())),
            ("status", json!(r.status)),
            ("createdDateTime", ts(r.created_date_time)),
            ("completedDateTime", ts_opt(r.completed_date_time)),
            ("justification", opt_str(&r.justification)),
            ("schedule", schedule(&r.schedule)),
            ("answers", Value::Array(answers)),
            ("customExtensionCalloutInstances", json!(r.custom_extension_callout_instances)),
        ]),
        Dialect::Beta => object([
            ("id", json!(r.id)),
            ("requestType", json!(r.request_type.beta())),
            ("requestState", json!(r.state.beta())),
            ("requestStatus", json!(r.status)),
            ("createdDateTime", ts(r.created_date_time)),
            ("completedDate", ts_opt(r.completed_date_time)),
            ("justification", opt_str(&r.justification)),
            ("isValidationOnly", json!(r.is_validation_only)),
            ("expirationDateTime", Value::Null),
            ("schedule", schedule(&r.schedule)),
            ("answers", Value::Array(answers)),
            ("verifiedCredentialsData", json!([])),
            ("customExtensionHandlerInstances", json!([])),
            ("customExtensionCalloutInstances", json!(r.custom_extension_callout_instances)),
        ]),
    }
}

/// `accessPackageSubject`: v1 `subjectType` enum, beta `type` string.
pub fn subject(s: &Subject, d: Dialect) -> Value {
    let mut v = object([
        ("id", json!(s.id)),
        ("objectId", opt_str(&s.object_id)),
        ("displayName", opt_str(&s.display_name)),
        ("email", opt_str(&s.email)),
        ("principalName", opt_str(&s.principal_name)),
        ("onPremisesSecurityIdentifier", Value::Null),
    ]);
    if let Value::Object(m) = &mut v {
        match d {
            Dialect::V1 => {
                m.insert("subjectType".into(), json!(s.subject_type.v1()));
                m.insert("subjectLifecycle".into(), json!(s.subject_lifecycle.v1()));
            }
            Dialect::Beta => {
                m.insert("type".into(), json!(s.subject_type.beta()));
                m.insert("subjectLifecycle".into(), json!(s.subject_lifecycle.beta()));
                m.insert("altSecId".into(), Value::Null);
                m.insert("connectedOrganizationId".into(), opt_str(&s.connected_organization_id));
                m.insert("cleanupScheduledDateTime".into(), Value::Null);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_client_shape() {
        let shapes = [
            json!({"requestType":"adminAdd","assignment":{"targetId":"T","assignmentPolicyId":"P","accessPackageId":"A"}}),
            json!({"requestType":"AdminAdd","accessPackageAssignment":{"target":{"objectId":"T"},"assignmentPolicy":{"id":"P"},"accessPackage":{"id":"A"}}}),
            json!({"requestType":"ADMINADD","assignment":{"target_id":"T","assignment_policy_id":"P","access_package_id":"A"}}),
        ];
        for s in shapes {
            let r = parse_new_request(&s).unwrap();
            assert_eq!(r.request_type, RequestType::AdminAdd);
            assert_eq!(r.target.unwrap().object_id.as_deref(), Some("t"));
            assert_eq!(r.policy_id.as_deref(), Some("p"));
            assert_eq!(r.access_package_id.as_deref(), Some("a"));
        }
    }

    #[test]
    fn refuses_bad_and_system_request_types() {
        let e = parse_new_request(&json!({"requestType":"Request Type value"})).unwrap_err();
        assert_eq!((e.code.as_str(), e.target.as_deref()), ("InvalidRequestBody", Some("requestType")));
        assert!(e.message.contains("adminAdd"));
        let e = parse_new_request(&json!({})).unwrap_err();
        assert_eq!(e.target.as_deref(), Some("requestType"));
        let e = parse_new_request(&json!({"requestType":"systemRemove"})).unwrap_err();
        assert_eq!(e.code, "RequestTypeNotAllowed");
    }

    #[test]
    fn empty_schedule_with_stop_date_time_is_no_schedule() {
        let r = parse_new_request(&json!({"requestType":"UserAdd","assignment":{"accessPackageId":"A","schedule":{"startDateTime":null,"stopDateTime":null}}}))
            .unwrap();
        assert!(r.schedule.is_none());
        let r = parse_new_request(&json!({"requestType":"UserAdd","assignment":{"accessPackageId":"A","schedule":{"stopDateTime":"2030-01-01T00:00:00Z"}}}))
            .unwrap();
        assert_eq!(r.schedule.unwrap().expiration.kind, ExpirationType::AfterDateTime);
    }
}
