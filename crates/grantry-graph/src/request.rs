//! Assignment requests on the wire: the create body in every shape real clients send
//! (reference §9.2, §13.2; Python SDK shapes A, B and C), and the v1.0 / beta renderings.

use crate::assignment::{AssignmentView, PackageView};
use crate::body::{Body, short_type_name};
use crate::connected::ConnectedOrganizationView;
use crate::render::Dialect;
use crate::wire::{EmptyList, Nav, Null, Ts, ts_opt};
use grantry_domain::enums::{ExpirationType, RequestType};
use grantry_domain::model::{Answer, AssignmentRequest, Expiration, NewRequest, Schedule, Subject, TargetRef};
use grantry_domain::{Error, Result, ids};
use serde::Serialize;
use serde_json::Value;

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

/// `entitlementManagementSchedule` (beta `requestSchedule`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView<'a> {
    start_date_time: Option<Ts>,
    recurrence: Option<&'a Value>,
    expiration: ExpirationView,
}

impl<'a> ScheduleView<'a> {
    pub fn new(s: &'a Schedule) -> Self {
        ScheduleView {
            start_date_time: ts_opt(s.start_date_time),
            recurrence: s.recurrence.as_ref(),
            expiration: ExpirationView::new(&s.expiration),
        }
    }
}

/// `expirationPattern`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpirationView {
    end_date_time: Option<Ts>,
    duration: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl ExpirationView {
    pub fn new(e: &Expiration) -> Self {
        ExpirationView {
            end_date_time: ts_opt(e.end_date_time),
            duration: e.duration.map(grantry_domain::duration::format),
            kind: e.kind.v1(),
        }
    }
}

/// `accessPackageAnswerString`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerView<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    value: Option<&'a str>,
    display_value: Option<&'a str>,
    answered_question: QuestionRef<'a>,
}

#[derive(Serialize)]
struct QuestionRef<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: String,
    id: &'a str,
}

impl<'a> AnswerView<'a> {
    pub fn new(a: &'a Answer) -> Self {
        let odata_type = a
            .question_type
            .as_deref()
            .map(|t| format!("#microsoft.graph.{}", short_type_name(t)))
            .unwrap_or_else(|| "#microsoft.graph.accessPackageQuestion".into());
        AnswerView {
            odata_type: "#microsoft.graph.accessPackageAnswerString",
            value: a.value.as_deref(),
            display_value: a.display_value.as_deref(),
            answered_question: QuestionRef { odata_type, id: &a.question_id },
        }
    }
}

/// An assignment request in the dialect of the URL, with the navigation properties
/// `$expand` named.
#[derive(Serialize)]
#[serde(untagged)]
pub enum RequestView<'a> {
    V1(RequestV1<'a>),
    Beta(RequestBeta<'a>),
}

/// The related entities of a request that `$expand` asked for; `None` leaves the navigation
/// property out, `Some(None)` sends `null`.
#[derive(Default)]
pub struct RequestNavs<'a> {
    pub access_package: Nav<PackageView<'a>>,
    pub requestor: Nav<SubjectView<'a>>,
    pub target: Nav<SubjectView<'a>>,
    pub assignment: Nav<AssignmentView<'a>>,
}

/// v1.0 `accessPackageAssignmentRequest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestV1<'a> {
    id: &'a str,
    request_type: &'static str,
    state: &'static str,
    status: &'a str,
    created_date_time: Ts,
    completed_date_time: Option<Ts>,
    justification: Option<&'a str>,
    schedule: ScheduleView<'a>,
    answers: Vec<AnswerView<'a>>,
    custom_extension_callout_instances: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    access_package: Nav<PackageView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requestor: Nav<SubjectView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Nav<SubjectView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignment: Nav<AssignmentView<'a>>,
}

/// beta `accessPackageAssignmentRequest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestBeta<'a> {
    id: &'a str,
    request_type: &'static str,
    request_state: &'static str,
    request_status: &'a str,
    created_date_time: Ts,
    completed_date: Option<Ts>,
    justification: Option<&'a str>,
    is_validation_only: bool,
    expiration_date_time: Null,
    schedule: ScheduleView<'a>,
    answers: Vec<AnswerView<'a>>,
    verified_credentials_data: EmptyList,
    custom_extension_handler_instances: EmptyList,
    custom_extension_callout_instances: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    access_package: Nav<PackageView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requestor: Nav<SubjectView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Nav<SubjectView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_package_assignment: Nav<AssignmentView<'a>>,
}

impl<'a> RequestView<'a> {
    pub fn new(r: &'a AssignmentRequest, d: Dialect, navs: RequestNavs<'a>) -> Self {
        let answers = r.answers.iter().map(AnswerView::new).collect();
        match d {
            Dialect::V1 => RequestView::V1(RequestV1 {
                id: &r.id,
                request_type: r.request_type.v1_wire(),
                state: r.state.v1(),
                status: r.status.as_str(),
                created_date_time: Ts(r.created_date_time),
                completed_date_time: ts_opt(r.completed_date_time),
                justification: r.justification.as_deref(),
                schedule: ScheduleView::new(&r.schedule),
                answers,
                custom_extension_callout_instances: &r.custom_extension_callout_instances,
                access_package: navs.access_package,
                requestor: navs.requestor,
                target: navs.target,
                assignment: navs.assignment,
            }),
            Dialect::Beta => RequestView::Beta(RequestBeta {
                id: &r.id,
                request_type: r.request_type.beta(),
                request_state: r.state.beta(),
                request_status: r.status.as_str(),
                created_date_time: Ts(r.created_date_time),
                completed_date: ts_opt(r.completed_date_time),
                justification: r.justification.as_deref(),
                is_validation_only: r.is_validation_only,
                expiration_date_time: Null,
                schedule: ScheduleView::new(&r.schedule),
                answers,
                verified_credentials_data: EmptyList,
                custom_extension_handler_instances: EmptyList,
                custom_extension_callout_instances: &r.custom_extension_callout_instances,
                access_package: navs.access_package,
                requestor: navs.requestor,
                target: navs.target,
                access_package_assignment: navs.assignment,
            }),
        }
    }
}

/// `accessPackageSubject`: v1 `subjectType` enum, beta `type` string.
#[derive(Serialize)]
#[serde(untagged)]
pub enum SubjectView<'a> {
    V1(SubjectV1<'a>),
    Beta(SubjectBeta<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectV1<'a> {
    id: &'a str,
    object_id: Option<&'a str>,
    display_name: Option<&'a str>,
    email: Option<&'a str>,
    principal_name: Option<&'a str>,
    on_premises_security_identifier: Null,
    subject_type: &'static str,
    subject_lifecycle: &'static str,
    /// Expanded: the subject's connected organization, `null` for one of this directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_organization: Option<Option<ConnectedOrganizationView<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectBeta<'a> {
    id: &'a str,
    object_id: Option<&'a str>,
    display_name: Option<&'a str>,
    email: Option<&'a str>,
    principal_name: Option<&'a str>,
    on_premises_security_identifier: Null,
    #[serde(rename = "type")]
    subject_type: &'static str,
    subject_lifecycle: &'static str,
    alt_sec_id: Null,
    connected_organization_id: Option<&'a str>,
    cleanup_scheduled_date_time: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_organization: Option<Option<ConnectedOrganizationView<'a>>>,
}

impl<'a> SubjectView<'a> {
    /// `s` in dialect `d`; `connected_organization` (`Some`) when `$expand` named that
    /// navigation, holding the organization if the subject has one.
    pub fn new(
        s: &'a Subject,
        d: Dialect,
        connected_organization: Option<Option<&'a grantry_domain::model::ConnectedOrganization>>,
    ) -> Self {
        let connected_organization = connected_organization.map(|o| o.map(|o| ConnectedOrganizationView::new(o, d)));
        match d {
            Dialect::V1 => SubjectView::V1(SubjectV1 {
                id: &s.id,
                object_id: s.object_id.as_deref(),
                display_name: s.display_name.as_deref(),
                email: s.email.as_deref(),
                principal_name: s.principal_name.as_deref(),
                on_premises_security_identifier: Null,
                subject_type: s.subject_type.v1(),
                subject_lifecycle: s.subject_lifecycle.v1(),
                connected_organization,
            }),
            Dialect::Beta => SubjectView::Beta(SubjectBeta {
                id: &s.id,
                object_id: s.object_id.as_deref(),
                display_name: s.display_name.as_deref(),
                email: s.email.as_deref(),
                principal_name: s.principal_name.as_deref(),
                on_premises_security_identifier: Null,
                subject_type: s.subject_type.beta(),
                subject_lifecycle: s.subject_lifecycle.beta(),
                alt_sec_id: Null,
                connected_organization_id: s.connected_organization_id.as_deref(),
                cleanup_scheduled_date_time: None,
                connected_organization,
            }),
        }
    }

    /// With beta's `cleanupScheduledDateTime`: when the external user lifecycle deletes the
    /// guest (v1.0 has no such property).
    pub fn with_cleanup(mut self, at: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        if let SubjectView::Beta(b) = &mut self {
            b.cleanup_scheduled_date_time = at.map(Ts);
        }
        self
    }

    /// With the organization the subject belongs to now (recorded, or matched by domain or
    /// tenant), for beta's `connectedOrganizationId` when none is recorded.
    pub fn with_organization_id(mut self, id: Option<&'a str>) -> Self {
        if let SubjectView::Beta(b) = &mut self
            && b.connected_organization_id.is_none()
        {
            b.connected_organization_id = id;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
