//! Assignment policies on the wire (reference §2, §3, §5, §13.1).
//!
//! Input is read by the properties present, not by the URL root: a body may use the v1.0
//! shape (`allowedTargetScope`, `expiration`, `requestApprovalSettings.stages`, …), the beta
//! shape (`requestorSettings.scopeType`, `durationInDays`, `approvalStages`, `isBackup`
//! approvers, …) or a mix of both where that is unambiguous. Both map onto the v1-shaped
//! internal [`Policy`]. Output follows the root: [`render_policy`] emits only v1.0 names
//! under `/v1.0` and the beta shape under `/beta`.
//!
//! Choices where Entra is silent (each also recorded in docs/decisions.md):
//! - beta `acceptRequests: true` enables self-add and self-remove for every scope except
//!   `NoSubjects`; `acceptRequests: false` is kept (`rejects_new_requests`). A beta body with
//!   `scopeType` but no `acceptRequests` is read as `acceptRequests: true`.
//! - beta `canExtend` is `enableTargetsToSelfUpdateAccess`; when a body has both, `canExtend`
//!   wins.
//! - beta `durationInDays` together with `expirationDateTime`: the date decides (type
//!   `afterDateTime`) and the day count is kept as the pattern's `duration`, so both read back.
//! - beta output also carries `expiration` (the beta docs' own PUT example does), so a
//!   duration that is not whole days is not lost; `durationInDays` is rounded up.
//! - fallback approvers are beta approvers with `isBackup: true` and the reverse.
//! - questions and customExtensionStageSettings are returned inline in both dialects.

use crate::body::Body;
use crate::render::{Dialect, object, odata_type, opt_str, ts, ts_opt};
use chrono::Duration;
use grantry_domain::enums::{
    AllowedTargetScope, ApproverInformationVisibility, CustomExtensionStage, ExpirationType, ReviewExpirationBehavior,
};
use grantry_domain::model::{
    AccessPackage, AnswerChoice, ApprovalSettings, ApprovalStage, AutomaticRequestSettings, Catalog, CustomExtension,
    CustomExtensionStageSetting, Expiration, LocalizedText, Policy, PolicyInput, Question, QuestionKind,
    RequestorSettings, ReviewSettings, Schedule, SubjectSet,
};
use grantry_domain::{Error, Result, ids};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------
// Small beta pseudo-enums (String-typed in the beta CSDL, PascalCase on the wire).

const APPROVAL_MODES: &[&str] = &["NoApproval", "SingleStage", "Serial", "Parallel"];
const REVIEWER_TYPES: &[&str] = &["Self", "Reviewers", "Manager"];
const RECURRENCE_TYPES: &[&str] = &["weekly", "monthly", "quarterly", "halfyearly", "annual"];

fn pick(allowed: &'static [&'static str], s: &str) -> Option<&'static str> {
    allowed.iter().copied().find(|a| a.eq_ignore_ascii_case(s.trim()))
}

fn scope_allowed_v1() -> String {
    AllowedTargetScope::allowed()
}

fn scope_allowed_beta() -> String {
    let mut v: Vec<&str> = AllowedTargetScope::ALL.iter().map(|s| s.beta()).collect();
    v.push("AllExistingConnectedOrganizationSubjects");
    v.join(", ")
}

fn conflict(path: &str, message: impl Into<String>) -> Error {
    Error::invalid_property(path, message)
}

// ---------------------------------------------------------------------------------------
// Parsing

/// Reads a policy body in either dialect (see the module docs). `dialect` is the URL root;
/// it only decides which names error messages use when the body does not tell.
pub fn parse_policy(b: &Body, dialect: Dialect) -> Result<PolicyInput> {
    let rs = b.object(&["requestorSettings"])?;
    let ra = b.object(&["requestApprovalSettings"])?;
    let beta_names = uses_beta_names(b, rs.as_ref(), ra.as_ref(), dialect);
    let mut beta_extra = Map::new();

    let access_package = parse_access_package(b)?;
    let display_name = b.required_str(&["displayName"])?;
    let description = b.str(&["description"])?;
    let id = b.str(&["id"])?.map(|s| ids::normalize(&s));

    // Who may be assigned.
    let scope_v1 = b.enumeration(&["allowedTargetScope"], AllowedTargetScope::parse_lenient, &scope_allowed_v1())?;
    let scope_beta = match &rs {
        Some(rs) => rs.enumeration(&["scopeType"], AllowedTargetScope::parse_lenient, &scope_allowed_beta())?,
        None => None,
    };
    let allowed_target_scope = match (scope_v1, scope_beta) {
        (Some(a), Some(s)) if a != s => {
            return Err(conflict(
                "requestorSettings.scopeType",
                format!(
                    "'allowedTargetScope' ('{}') and 'requestorSettings.scopeType' ('{}') disagree; send one of them.",
                    a.v1(),
                    s.beta()
                ),
            ));
        }
        (Some(a), _) => a,
        (None, Some(s)) => s,
        (None, None) => AllowedTargetScope::NotSpecified,
    };
    // Beta's second spelling of the configured-organizations scope reads back as sent.
    if let Some(rs) = &rs
        && let Some(t) = rs.str(&["scopeType"])?
        && t.trim().eq_ignore_ascii_case("AllExistingConnectedOrganizationSubjects")
    {
        beta_extra.insert("scopeType".into(), json!("AllExistingConnectedOrganizationSubjects"));
    }
    let top_targets = b.array(&["specificAllowedTargets"])?.is_some_and(|(a, _)| !a.is_empty());
    let beta_targets = match &rs {
        Some(r) => r.array(&["allowedRequestors"])?.is_some_and(|(a, _)| !a.is_empty()),
        None => false,
    };
    let (specific_allowed_targets, backups) = if top_targets {
        if beta_targets {
            return Err(conflict(
                "requestorSettings.allowedRequestors",
                "Send either 'specificAllowedTargets' (v1.0) or 'requestorSettings.allowedRequestors' (beta), not both.",
            ));
        }
        parse_subject_sets(b, &["specificAllowedTargets"])?
    } else if let Some(rs) = &rs {
        parse_subject_sets(rs, &["allowedRequestors"])?
    } else {
        (Vec::new(), Vec::new())
    };
    if backups.iter().any(|b| *b) {
        beta_extra.insert("allowedRequestorsIsBackup".into(), json!(backups));
    }

    // Requestor settings.
    let requestor_settings = {
        let get =
            |k: &str| -> Result<Option<bool>> { rs.as_ref().map(|r| r.bool(&[k])).transpose().map(Option::flatten) };
        let accept_given = get("acceptRequests")?;
        let scope_given = rs.as_ref().is_some_and(|r| r.raw(&["scopeType"]).is_some());
        let accept = accept_given.or(scope_given.then_some(true));
        let open = allowed_target_scope != AllowedTargetScope::NotSpecified;
        let can_extend = b.bool(&["canExtend"])?;
        RequestorSettings {
            enable_targets_to_self_add_access: get("enableTargetsToSelfAddAccess")?
                .or(accept.map(|a| a && open))
                .unwrap_or(false),
            enable_targets_to_self_update_access: can_extend
                .or(get("enableTargetsToSelfUpdateAccess")?)
                .unwrap_or(false),
            enable_targets_to_self_remove_access: get("enableTargetsToSelfRemoveAccess")?
                .or(accept.map(|a| a && open))
                .unwrap_or(false),
            allow_custom_assignment_schedule: get("allowCustomAssignmentSchedule")?.unwrap_or(false),
            enable_on_behalf_requestors_to_add_access: get("enableOnBehalfRequestorsToAddAccess")?
                .or(get("isOnBehalfAllowed")?)
                .unwrap_or(false),
            enable_on_behalf_requestors_to_update_access: get("enableOnBehalfRequestorsToUpdateAccess")?
                .unwrap_or(false),
            enable_on_behalf_requestors_to_remove_access: get("enableOnBehalfRequestorsToRemoveAccess")?
                .unwrap_or(false),
            on_behalf_requestors: match &rs {
                Some(r) => parse_subject_sets(r, &["onBehalfRequestors"])?.0,
                None => Vec::new(),
            },
            rejects_new_requests: accept_given == Some(false),
        }
    };
    let accept_requests_given = rs.as_ref().is_some_and(|r| r.raw(&["acceptRequests"]).is_some());

    let expiration = parse_policy_expiration(b)?;
    let approval = match &ra {
        Some(ra) => parse_approval(ra, &mut beta_extra)?,
        None => ApprovalSettings::default(),
    };
    let review_settings = parse_review_settings(b)?;
    let questions = parse_questions(b)?;
    let automatic_request_settings = match b.object(&["automaticRequestSettings"])? {
        Some(a) => Some(AutomaticRequestSettings {
            request_access_for_allowed_targets: a.bool(&["requestAccessForAllowedTargets"])?.unwrap_or(false),
            remove_access_when_target_leaves_allowed_targets: a
                .bool(&["removeAccessWhenTargetLeavesAllowedTargets"])?
                .unwrap_or(false),
            grace_period_before_access_removal: a.duration(&["gracePeriodBeforeAccessRemoval"])?,
        }),
        None => None,
    };
    let notification_settings = match b.object(&["notificationSettings", "accessPackageNotificationSettings"])? {
        Some(n) => {
            let mut m = Map::new();
            m.insert(
                "isAssignmentNotificationDisabled".into(),
                json!(n.bool(&["isAssignmentNotificationDisabled"])?.unwrap_or(false)),
            );
            Some(Value::Object(m))
        }
        None => None,
    };
    let verifiable_credential_settings =
        b.object(&["verifiableCredentialSettings"])?.map(|v| Value::Object(strip_odata_type(v.map())));
    let mut custom_extension_stage_settings = parse_stage_settings(b, "customExtensionStageSettings")?;
    custom_extension_stage_settings.extend(parse_stage_settings(b, "customExtensionHandlers")?);

    Ok(PolicyInput {
        access_package,
        id,
        display_name,
        description,
        allowed_target_scope,
        specific_allowed_targets,
        expiration,
        requestor_settings,
        approval,
        review_settings,
        questions,
        automatic_request_settings,
        notification_settings,
        verifiable_credential_settings,
        custom_extension_stage_settings,
        beta_extra,
        accept_requests_given,
        beta_names,
    })
}

/// Whether the body speaks beta (for error messages): beta-only names present and no
/// v1.0-only ones; a body with neither follows the URL root.
fn uses_beta_names(b: &Body, rs: Option<&Body>, ra: Option<&Body>, dialect: Dialect) -> bool {
    let beta = ["accessPackageId", "durationInDays", "expirationDateTime", "canExtend", "accessReviewSettings"]
        .iter()
        .any(|k| b.has(k))
        || rs.is_some_and(|r| ["scopeType", "acceptRequests", "allowedRequestors"].iter().any(|k| r.has(k)))
        || ra.is_some_and(|r| ["approvalStages", "isApprovalRequired", "approvalMode"].iter().any(|k| r.has(k)));
    let v1 = ["allowedTargetScope", "specificAllowedTargets", "reviewSettings", "automaticRequestSettings"]
        .iter()
        .any(|k| b.has(k))
        || ra.is_some_and(|r| ["stages", "isApprovalRequiredForAdd"].iter().any(|k| r.has(k)));
    match (beta, v1) {
        (true, false) => true,
        (false, true) => false,
        _ => dialect.is_beta(),
    }
}

fn parse_access_package(b: &Body) -> Result<Option<(String, String)>> {
    let scalar = b.str(&["accessPackageId"])?.map(|s| (ids::normalize(&s), "accessPackageId".to_string()));
    let nested = match b.object(&["accessPackage"])? {
        Some(o) => o.str(&["id"])?.map(|s| (ids::normalize(&s), "accessPackage.id".to_string())),
        None => None,
    };
    let bound = b.str(&["accessPackage@odata.bind"])?.map(|s| (bind_id(&s), "accessPackage@odata.bind".to_string()));
    let found: Vec<(String, String)> = [scalar, nested, bound].into_iter().flatten().collect();
    if let (Some(first), Some(other)) = (found.first(), found.iter().find(|(id, _)| *id != found[0].0)) {
        return Err(conflict(
            &other.1,
            format!("'{}' ('{}') and '{}' ('{}') name different access packages.", first.1, first.0, other.1, other.0),
        ));
    }
    Ok(found.into_iter().next())
}

/// The id at the end of an `@odata.bind` URL: `…/accessPackages/{id}` or `…/accessPackages('{id}')`.
pub fn bind_id(s: &str) -> String {
    let last = s.trim().trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let last = match (last.find('('), last.ends_with(')')) {
        (Some(open), true) => &last[open + 1..last.len() - 1],
        _ => last,
    };
    ids::normalize(last.trim_matches('\''))
}

fn strip_odata_type(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter().filter(|(k, _)| !k.starts_with("@odata.")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn days(n: i32) -> Duration {
    Duration::days(i64::from(n))
}

fn parse_expiration(e: &Body) -> Result<Expiration> {
    let end_date_time = e.datetime(&["endDateTime"])?;
    let duration = e.duration(&["duration"])?;
    let kind = e.enumeration(&["type"], ExpirationType::parse, &ExpirationType::allowed())?.unwrap_or(
        if end_date_time.is_some() {
            ExpirationType::AfterDateTime
        } else if duration.is_some() {
            ExpirationType::AfterDuration
        } else {
            ExpirationType::NoExpiration
        },
    );
    Ok(Expiration { kind, end_date_time, duration })
}

/// v1.0 `expiration`, else beta `expirationDateTime` / `durationInDays`, else no expiration.
fn parse_policy_expiration(b: &Body) -> Result<Expiration> {
    if let Some(e) = b.object(&["expiration"])? {
        return parse_expiration(&e);
    }
    let end = b.datetime(&["expirationDateTime"])?;
    let n = b.i32(&["durationInDays"])?;
    if let Some(n) = n
        && n < 0
    {
        return Err(Error::invalid_property(
            "durationInDays",
            format!("'durationInDays' must be zero (no expiration) or a positive number of days; got {n}."),
        ));
    }
    let duration = n.filter(|n| *n > 0).map(days);
    Ok(match (end, duration) {
        (Some(end), duration) => Expiration { kind: ExpirationType::AfterDateTime, end_date_time: Some(end), duration },
        (None, Some(d)) => Expiration { kind: ExpirationType::AfterDuration, end_date_time: None, duration: Some(d) },
        (None, None) => Expiration::never(),
    })
}

const DOCUMENTED_UNMODELLED_SETS: &[&str] =
    &["identityGovernance.groupBasedSubjectSet", "identityGovernance.ruleBasedSubjectSet"];

const SUBJECT_SET_TYPES: &str = "singleUser, groupMembers, connectedOrganizationMembers, requestorManager, targetManager, internalSponsors, externalSponsors, targetUserSponsors, targetApplicationOwners, targetAgentIdentitySponsorsOrOwners, singleServicePrincipal, attributeRuleMembers";

/// One `subjectSet` (v1.0) / `userSet` (beta), with its beta `isBackup` flag.
pub fn parse_subject_set(b: &Body) -> Result<(SubjectSet, bool)> {
    let path = b.path_of("@odata.type");
    let Some(kind) = b.odata_type() else {
        return Err(Error::invalid_property(
            &path,
            format!(
                "'{path}' is required on a subject set, e.g. '#microsoft.graph.singleUser'; one of: {SUBJECT_SET_TYPES}."
            ),
        ));
    };
    let is_backup = b.bool(&["isBackup"])?.unwrap_or(false);
    let id = |v1: &str| -> Result<Option<String>> { Ok(b.str(&[v1, "id"])?.map(|s| ids::normalize(&s))) };
    let description = b.str(&["description"])?;
    let level = || -> Result<i32> { Ok(b.i32(&["managerLevel"])?.unwrap_or(1)) };
    let set = match kind.to_ascii_lowercase().as_str() {
        "singleuser" => SubjectSet::SingleUser { user_id: id("userId")?, description },
        "groupmembers" => SubjectSet::GroupMembers { group_id: id("groupId")?, description },
        "connectedorganizationmembers" => SubjectSet::ConnectedOrganizationMembers {
            connected_organization_id: id("connectedOrganizationId")?,
            description,
        },
        "requestormanager" => SubjectSet::RequestorManager { manager_level: level()? },
        "targetmanager" => SubjectSet::TargetManager { manager_level: level()? },
        "internalsponsors" => SubjectSet::InternalSponsors,
        "externalsponsors" => SubjectSet::ExternalSponsors,
        "targetusersponsors" => SubjectSet::TargetUserSponsors,
        "targetapplicationowners" => SubjectSet::TargetApplicationOwners,
        "targetagentidentitysponsorsorowners" => SubjectSet::TargetAgentIdentitySponsorsOrOwners,
        "singleserviceprincipal" => {
            SubjectSet::SingleServicePrincipal { service_principal_id: id("servicePrincipalId")?, description }
        }
        "attributerulemembers" => {
            SubjectSet::AttributeRuleMembers { membership_rule: b.str(&["membershipRule"])?, description }
        }
        _ => match DOCUMENTED_UNMODELLED_SETS.iter().find(|t| t.eq_ignore_ascii_case(&kind)) {
            Some(t) => {
                let mut properties = strip_odata_type(b.map());
                properties.remove("isBackup");
                SubjectSet::Other { odata_type: format!("#microsoft.graph.{t}"), properties }
            }
            None => {
                return Err(Error::invalid_property(
                    &path,
                    format!("'{path}' is '{kind}', which is not a subject set type; use one of: {SUBJECT_SET_TYPES}."),
                ));
            }
        },
    };
    Ok((set, is_backup))
}

fn parse_subject_sets(b: &Body, keys: &[&str]) -> Result<(Vec<SubjectSet>, Vec<bool>)> {
    let mut sets = Vec::new();
    let mut backups = Vec::new();
    for o in b.objects(keys)? {
        let (s, backup) = parse_subject_set(&o)?;
        sets.push(s);
        backups.push(backup);
    }
    Ok((sets, backups))
}

/// Approvers from `primary_keys` split by `isBackup`, plus the v1.0 fallback list.
fn parse_approvers(b: &Body, primary: &str, fallback: &str) -> Result<(Vec<SubjectSet>, Vec<SubjectSet>)> {
    let (sets, backups) = parse_subject_sets(b, &[primary])?;
    let mut main = Vec::new();
    let mut fallbacks = Vec::new();
    for (s, backup) in sets.into_iter().zip(backups) {
        if backup { fallbacks.push(s) } else { main.push(s) }
    }
    fallbacks.extend(parse_subject_sets(b, &[fallback])?.0);
    Ok((main, fallbacks))
}

fn parse_approval(ra: &Body, beta_extra: &mut Map<String, Value>) -> Result<ApprovalSettings> {
    if ra.raw(&["stages"]).is_some() && ra.raw(&["approvalStages"]).is_some() {
        return Err(conflict(
            &ra.path_of("approvalStages"),
            "Send either 'stages' (v1.0) or 'approvalStages' (beta), not both.",
        ));
    }
    let mode = match ra.str(&["approvalMode"])? {
        None => None,
        Some(m) => Some(pick(APPROVAL_MODES, &m).ok_or_else(|| {
            Error::invalid_property(
                &ra.path_of("approvalMode"),
                format!(
                    "'{}' has the value '{m}', which is not one of the allowed values: {}.",
                    ra.path_of("approvalMode"),
                    APPROVAL_MODES.join(", ")
                ),
            )
        })?),
    };
    let stages = ra.objects(&["stages", "approvalStages"])?.iter().map(parse_stage).collect::<Result<Vec<_>>>()?;
    let add = ra.bool(&["isApprovalRequiredForAdd", "isApprovalRequired"])?;
    if let Some(mode) = mode {
        let n = stages.len();
        let ok = match mode {
            "NoApproval" => n == 0 && add != Some(true),
            "SingleStage" => n == 1,
            "Serial" | "Parallel" => (2..=grantry_domain::model::MAX_APPROVAL_STAGES).contains(&n),
            _ => true,
        };
        if !ok {
            let path = ra.path_of("approvalMode");
            let stages_name = ra.path_of("approvalStages");
            return Err(Error::bad_request(
                "InvalidPolicy",
                match mode {
                    "NoApproval" => format!(
                        "'{path}' is 'NoApproval' but the policy has {n} approval stage(s) or requires approval; send 'isApprovalRequired': false and no stages, or choose 'SingleStage'/'Serial'."
                    ),
                    "SingleStage" => format!("'{path}' is 'SingleStage', which needs exactly one entry in '{stages_name}'; got {n}."),
                    _ => format!("'{path}' is '{mode}', which needs 2 or 3 entries in '{stages_name}'; got {n}."),
                },
            )
            .with_target(path));
        }
        beta_extra.insert("approvalMode".into(), json!(mode));
    }
    Ok(ApprovalSettings {
        is_approval_required_for_add: add.or(mode.map(|m| m != "NoApproval")).unwrap_or(false),
        is_approval_required_for_update: ra
            .bool(&["isApprovalRequiredForUpdate", "isApprovalRequiredForExtension"])?
            .unwrap_or(false),
        is_requestor_justification_required: ra.bool(&["isRequestorJustificationRequired"])?.unwrap_or(false),
        stages,
    })
}

/// An `accessPackageApprovalStage` (v1.0 names, with the beta ones accepted), e.g. the
/// `approvalStage` of a dynamic-approval resume.
pub fn parse_approval_stage(s: &Body) -> Result<ApprovalStage> {
    parse_stage(s)
}

fn parse_stage(s: &Body) -> Result<ApprovalStage> {
    let is_dynamic = s.odata_type().is_some_and(|t| t.eq_ignore_ascii_case("accessPackageDynamicApprovalStage"));
    let denial = match s.duration(&["durationBeforeAutomaticDenial"])? {
        Some(d) => Some(d),
        None => match s.i32(&["approvalStageTimeOutInDays"])? {
            Some(n) if n < 1 => {
                let p = s.path_of("approvalStageTimeOutInDays");
                return Err(Error::invalid_property(&p, format!("'{p}' must be at least 1 day; got {n}.")));
            }
            n => n.map(days),
        },
    };
    let escalation = match s.duration(&["durationBeforeEscalation"])? {
        Some(d) => Some(d),
        None => match s.i32(&["escalationTimeInMinutes"])? {
            Some(n) if n < 0 => {
                let p = s.path_of("escalationTimeInMinutes");
                return Err(Error::invalid_property(&p, format!("'{p}' must not be negative; got {n}.")));
            }
            n => n.map(|m| Duration::minutes(i64::from(m))),
        },
    };
    let (primary_approvers, fallback_primary_approvers) =
        parse_approvers(s, "primaryApprovers", "fallbackPrimaryApprovers")?;
    let (escalation_approvers, fallback_escalation_approvers) =
        parse_approvers(s, "escalationApprovers", "fallbackEscalationApprovers")?;
    Ok(ApprovalStage {
        duration_before_automatic_denial: denial,
        duration_before_escalation: escalation,
        is_approver_justification_required: s.bool(&["isApproverJustificationRequired"])?.unwrap_or(false),
        is_escalation_enabled: s.bool(&["isEscalationEnabled"])?.unwrap_or(false),
        primary_approvers,
        fallback_primary_approvers,
        escalation_approvers,
        fallback_escalation_approvers,
        approver_information_visibility: s
            .enumeration(
                &["approverInformationVisibility"],
                ApproverInformationVisibility::parse,
                &ApproverInformationVisibility::allowed(),
            )?
            .unwrap_or(ApproverInformationVisibility::Default),
        is_dynamic,
    })
}

/// The recurrence a beta `recurrenceType` stands for.
fn recurrence_for(kind: &str) -> Value {
    let (pattern, interval) = match kind {
        "weekly" => ("weekly", 1),
        "monthly" => ("absoluteMonthly", 1),
        "quarterly" => ("absoluteMonthly", 3),
        "halfyearly" => ("absoluteMonthly", 6),
        _ => ("absoluteYearly", 1),
    };
    json!({ "pattern": { "type": pattern, "interval": interval }, "range": { "type": "noEnd" } })
}

/// The beta `recurrenceType` a recurrence corresponds to, if any.
fn recurrence_type_of(r: &Value) -> Option<&'static str> {
    let pattern = &r["pattern"];
    let kind = pattern["type"].as_str()?.to_ascii_lowercase();
    let interval = pattern["interval"].as_i64().unwrap_or(1);
    match (kind.as_str(), interval) {
        ("weekly", 1) => Some("weekly"),
        ("absolutemonthly" | "relativemonthly", 1) => Some("monthly"),
        ("absolutemonthly" | "relativemonthly", 3) => Some("quarterly"),
        ("absolutemonthly" | "relativemonthly", 6) => Some("halfyearly"),
        ("absoluteyearly" | "relativeyearly", 1) | ("absolutemonthly" | "relativemonthly", 12) => Some("annual"),
        _ => None,
    }
}

fn parse_review_settings(b: &Body) -> Result<Option<ReviewSettings>> {
    let Some(r) = b.object(&["reviewSettings", "accessReviewSettings"])? else { return Ok(None) };
    let mut beta_extra = Map::new();
    let beta_enum = |key: &str, allowed: &'static [&'static str]| -> Result<Option<&'static str>> {
        match r.str(&[key])? {
            None => Ok(None),
            Some(v) => pick(allowed, &v).map(Some).ok_or_else(|| {
                Error::invalid_property(
                    &r.path_of(key),
                    format!(
                        "'{}' has the value '{v}', which is not one of the allowed values: {}.",
                        r.path_of(key),
                        allowed.join(", ")
                    ),
                )
            }),
        }
    };
    let reviewer_type = beta_enum("reviewerType", REVIEWER_TYPES)?;
    let recurrence_type = beta_enum("recurrenceType", RECURRENCE_TYPES)?;
    if let Some(t) = reviewer_type {
        beta_extra.insert("reviewerType".into(), json!(t));
    }
    if let Some(t) = recurrence_type {
        beta_extra.insert("recurrenceType".into(), json!(t));
    }
    if let Some(v) = r.bool(&["isAgenticExperienceEnabled"])? {
        beta_extra.insert("isAgenticExperienceEnabled".into(), json!(v));
    }
    let (mut primary_reviewers, mut fallback_reviewers) = parse_approvers(&r, "reviewers", "fallbackReviewers")?;
    let (v1_primary, v1_fallback) = parse_approvers(&r, "primaryReviewers", "fallbackReviewers")?;
    if !v1_primary.is_empty() || r.has("primaryReviewers") {
        primary_reviewers.extend(v1_primary);
        fallback_reviewers = v1_fallback;
    }
    if reviewer_type == Some("Manager") && primary_reviewers.is_empty() {
        primary_reviewers.push(SubjectSet::RequestorManager { manager_level: 1 });
    }
    let is_self_review = r.bool(&["isSelfReview"])?.or(reviewer_type.map(|t| t == "Self"));
    let schedule = match r.object(&["schedule"])? {
        Some(s) => Some(Schedule {
            start_date_time: s.datetime(&["startDateTime"])?,
            expiration: match s.object(&["expiration"])? {
                Some(e) => parse_expiration(&e)?,
                None => Expiration::default(),
            },
            recurrence: s.object(&["recurrence"])?.map(|x| Value::Object(strip_odata_type(x.map()))),
        }),
        None => {
            let start = r.datetime(&["startDateTime"])?;
            let n = r.i32(&["durationInDays"])?;
            if let Some(n) = n
                && n < 0
            {
                let p = r.path_of("durationInDays");
                return Err(Error::invalid_property(&p, format!("'{p}' must not be negative; got {n}.")));
            }
            if start.is_none() && n.is_none() && recurrence_type.is_none() {
                None
            } else {
                Some(Schedule {
                    start_date_time: start,
                    expiration: match n.filter(|n| *n > 0) {
                        Some(n) => Expiration {
                            kind: ExpirationType::AfterDuration,
                            end_date_time: None,
                            duration: Some(days(n)),
                        },
                        None => Expiration::default(),
                    },
                    recurrence: recurrence_type.map(recurrence_for),
                })
            }
        }
    };
    Ok(Some(ReviewSettings {
        is_enabled: r.bool(&["isEnabled"])?.unwrap_or(false),
        expiration_behavior: r.enumeration(
            &["expirationBehavior", "accessReviewTimeoutBehavior"],
            ReviewExpirationBehavior::parse,
            &ReviewExpirationBehavior::allowed(),
        )?,
        is_recommendation_enabled: r.bool(&["isRecommendationEnabled", "isAccessRecommendationEnabled"])?,
        is_reviewer_justification_required: r
            .bool(&["isReviewerJustificationRequired", "isApprovalJustificationRequired"])?,
        is_self_review,
        primary_reviewers,
        fallback_reviewers,
        schedule,
        beta_extra,
    }))
}

/// `String` (v1.0) or `accessPackageLocalizedContent` (beta) text, plus v1.0 `localizations`.
fn parse_text(b: &Body, key: &str) -> Result<(Option<String>, Vec<LocalizedText>)> {
    let mut localizations = Vec::new();
    let text = match b.raw(&[key]) {
        None => None,
        Some((Value::String(s), k)) => {
            b.check_length(k, s)?;
            Some(s.clone())
        }
        Some((Value::Object(_), _)) => match b.object(&[key])? {
            Some(content) => {
                localizations.extend(parse_localized(&content, "localizedTexts")?);
                content.str(&["defaultText"])?
            }
            None => None,
        },
        Some(_) => {
            let p = b.path_of(key);
            return Err(Error::invalid_property(
                &p,
                format!("'{p}' must be a string or an object {{\"defaultText\", \"localizedTexts\"}}."),
            ));
        }
    };
    localizations.extend(parse_localized(b, "localizations")?);
    Ok((text, localizations))
}

fn parse_localized(b: &Body, key: &str) -> Result<Vec<LocalizedText>> {
    b.objects(&[key])?
        .iter()
        .map(|l| {
            Ok(LocalizedText { language_code: l.str(&["languageCode"])?.unwrap_or_default(), text: l.str(&["text"])? })
        })
        .collect()
}

fn parse_questions(b: &Body) -> Result<Vec<Question>> {
    let mut out = Vec::new();
    for (i, q) in b.objects(&["questions"])?.iter().enumerate() {
        let kind_name = match q.odata_type() {
            Some(t) => t,
            None if q.has("choices") => "accessPackageMultipleChoiceQuestion".into(),
            None => "accessPackageTextInputQuestion".into(),
        };
        let kind = if kind_name.eq_ignore_ascii_case("accessPackageMultipleChoiceQuestion") {
            let mut choices = Vec::new();
            for c in q.objects(&["choices"])? {
                let actual_value = match c.raw(&["actualValue"]) {
                    Some((Value::Number(n), _)) => n.to_string(),
                    _ => c.str(&["actualValue"])?.unwrap_or_default(),
                };
                let (text, localizations) =
                    if c.has("displayValue") { parse_text(&c, "displayValue")? } else { parse_text(&c, "text")? };
                choices.push(AnswerChoice { actual_value, text, localizations });
            }
            QuestionKind::MultipleChoice {
                choices,
                is_multiple_selection_allowed: q
                    .bool(&["isMultipleSelectionAllowed", "allowsMultipleSelection"])?
                    .unwrap_or(false),
            }
        } else if kind_name.eq_ignore_ascii_case("accessPackageTextInputQuestion") {
            let regex_pattern = q.str(&["regexPattern"])?.filter(|p| !p.is_empty());
            if let Some(p) = &regex_pattern
                && let Err(why) = grantry_domain::answer_pattern::compile(p)
            {
                let path = q.path_of("regexPattern");
                return Err(Error::bad_request(
                    "InvalidPolicy",
                    format!("'{path}' cannot be enforced as a regular expression: {why}"),
                )
                .with_target(path));
            }
            QuestionKind::TextInput {
                is_single_line_question: q.bool(&["isSingleLineQuestion"])?.unwrap_or(false),
                regex_pattern,
            }
        } else {
            let path = q.path_of("@odata.type");
            return Err(Error::invalid_property(
                &path,
                format!(
                    "'{path}' is '{kind_name}'; a question is '#microsoft.graph.accessPackageMultipleChoiceQuestion' or '#microsoft.graph.accessPackageTextInputQuestion'."
                ),
            ));
        };
        let (text, localizations) = parse_text(q, "text")?;
        out.push(Question {
            id: q.str(&["id"])?.map(|s| ids::normalize(&s)).unwrap_or_default(),
            text,
            localizations,
            is_required: q.bool(&["isRequired"])?.unwrap_or(false),
            is_answer_editable: q.bool(&["isAnswerEditable"])?.unwrap_or(false),
            sequence: q.i32(&["sequence"])?.unwrap_or(i as i32 + 1),
            kind,
        });
    }
    Ok(out)
}

fn parse_stage_settings(b: &Body, key: &str) -> Result<Vec<CustomExtensionStageSetting>> {
    let mut out = Vec::new();
    for s in b.objects(&[key])? {
        let stage = s
            .enumeration(&["stage"], CustomExtensionStage::parse, &CustomExtensionStage::allowed())?
            .ok_or_else(|| {
                let p = s.path_of("stage");
                Error::invalid_property(&p, format!("'{p}' is required; one of: {}.", CustomExtensionStage::allowed()))
            })?;
        let ext = match s.str(&["customExtensionId"])? {
            Some(id) => Some(ids::normalize(&id)),
            None => match s.object(&["customExtension"])? {
                Some(o) => o.str(&["id"])?.map(|id| ids::normalize(&id)),
                None => s.str(&["customExtension@odata.bind"])?.map(|u| bind_id(&u)),
            },
        };
        let Some(custom_extension_id) = ext.filter(|e| !e.is_empty()) else {
            let p = s.path_of("customExtension");
            return Err(Error::invalid_property(
                &p,
                format!("'{p}' must name the custom extension: {{\"id\": \"…\"}}."),
            ));
        };
        out.push(CustomExtensionStageSetting {
            id: s.str(&["id"])?.map(|s| ids::normalize(&s)).unwrap_or_default(),
            stage,
            custom_extension_id,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Rendering

/// Navigation properties to include, loaded by the caller.
#[derive(Debug, Default, Clone, Copy)]
pub struct PolicyExpand<'a> {
    pub access_package: Option<&'a AccessPackage>,
    pub catalog: Option<&'a Catalog>,
    /// Beta `customExtensionHandlers` (the older name of the stage settings).
    pub custom_extension_handlers: bool,
    /// `customExtensionStageSettings($expand=customExtension)`: the extensions the stage
    /// settings name, rendered whole in place of their `{id}` stubs.
    pub custom_extensions: Option<&'a [CustomExtension]>,
}

pub fn render_policy(p: &Policy, d: Dialect) -> Value {
    render_policy_with(p, d, &PolicyExpand::default())
}

pub fn render_policy_with(p: &Policy, d: Dialect, expand: &PolicyExpand<'_>) -> Value {
    let mut v = match d {
        Dialect::V1 => render_v1(p),
        Dialect::Beta => render_beta(p),
    };
    if let Value::Object(map) = &mut v {
        if let Some(pkg) = expand.access_package {
            map.insert("accessPackage".into(), render_package_stub(pkg, d));
        }
        if let Some(cat) = expand.catalog {
            map.insert(d.pick("catalog", "accessPackageCatalog").into(), render_catalog_stub(cat, d));
        }
        if expand.custom_extension_handlers && d.is_beta() {
            map.insert("customExtensionHandlers".into(), stage_settings(p));
        }
        if let Some(extensions) = expand.custom_extensions {
            for key in ["customExtensionStageSettings", "customExtensionHandlers"] {
                if let Some(Value::Array(settings)) = map.get_mut(key) {
                    expand_extensions(settings, extensions, d);
                }
            }
        }
    }
    v
}

/// Replaces each setting's `customExtension` stub with the extension it names (when found).
fn expand_extensions(settings: &mut [Value], extensions: &[CustomExtension], d: Dialect) {
    for setting in settings {
        let id = setting["customExtension"]["id"].as_str().map(ids::normalize);
        if let Some(e) = id.and_then(|id| extensions.iter().find(|e| e.id == id)) {
            setting["customExtension"] = crate::extension::extension(e, d);
        }
    }
}

fn render_v1(p: &Policy) -> Value {
    let r = &p.requestor_settings;
    object([
        ("id", json!(p.id)),
        ("displayName", json!(p.display_name)),
        ("description", opt_str(&p.description)),
        ("allowedTargetScope", json!(p.allowed_target_scope.v1())),
        ("specificAllowedTargets", subject_sets(&p.specific_allowed_targets, Dialect::V1, None)),
        ("expiration", expiration(&p.expiration)),
        (
            "requestorSettings",
            object([
                ("enableTargetsToSelfAddAccess", json!(r.enable_targets_to_self_add_access)),
                ("enableTargetsToSelfUpdateAccess", json!(r.enable_targets_to_self_update_access)),
                ("enableTargetsToSelfRemoveAccess", json!(r.enable_targets_to_self_remove_access)),
                ("allowCustomAssignmentSchedule", json!(r.allow_custom_assignment_schedule)),
                ("enableOnBehalfRequestorsToAddAccess", json!(r.enable_on_behalf_requestors_to_add_access)),
                ("enableOnBehalfRequestorsToUpdateAccess", json!(r.enable_on_behalf_requestors_to_update_access)),
                ("enableOnBehalfRequestorsToRemoveAccess", json!(r.enable_on_behalf_requestors_to_remove_access)),
                ("onBehalfRequestors", subject_sets(&r.on_behalf_requestors, Dialect::V1, None)),
            ]),
        ),
        (
            "requestApprovalSettings",
            object([
                ("isApprovalRequiredForAdd", json!(p.approval.is_approval_required_for_add)),
                ("isApprovalRequiredForUpdate", json!(p.approval.is_approval_required_for_update)),
                ("isRequestorJustificationRequired", json!(p.approval.is_requestor_justification_required)),
                ("stages", Value::Array(p.approval.stages.iter().map(stage_v1).collect())),
            ]),
        ),
        ("reviewSettings", p.review_settings.as_ref().map(review_v1).unwrap_or(Value::Null)),
        (
            "automaticRequestSettings",
            p.automatic_request_settings
                .as_ref()
                .map(|a| {
                    object([
                        ("requestAccessForAllowedTargets", json!(a.request_access_for_allowed_targets)),
                        (
                            "removeAccessWhenTargetLeavesAllowedTargets",
                            json!(a.remove_access_when_target_leaves_allowed_targets),
                        ),
                        ("gracePeriodBeforeAccessRemoval", dur(a.grace_period_before_access_removal)),
                    ])
                })
                .unwrap_or(Value::Null),
        ),
        ("notificationSettings", p.notification_settings.clone().unwrap_or(Value::Null)),
        ("questions", Value::Array(p.questions.iter().map(|q| question(q, Dialect::V1)).collect())),
        ("customExtensionStageSettings", stage_settings(p)),
        ("createdDateTime", ts(p.created_date_time)),
        ("modifiedDateTime", ts(p.modified_date_time)),
    ])
}

fn render_beta(p: &Policy) -> Value {
    let r = &p.requestor_settings;
    let backups: Vec<bool> = p
        .beta_extra
        .get("allowedRequestorsIsBackup")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .filter(|v: &Vec<bool>| v.len() == p.specific_allowed_targets.len())
        .unwrap_or_default();
    let open = p.allowed_target_scope == AllowedTargetScope::NotSpecified
        || r.enable_targets_to_self_add_access
        || r.enable_targets_to_self_update_access
        || r.enable_targets_to_self_remove_access
        || r.enable_on_behalf_requestors_to_add_access;
    let n = p.approval.stages.len();
    let derived_mode = match n {
        0 => "NoApproval",
        1 => "SingleStage",
        _ => "Serial",
    };
    let mode = match p.beta_extra.get("approvalMode").and_then(Value::as_str) {
        Some(m @ "Parallel") | Some(m @ "Serial") if n >= 2 => m.to_string(),
        Some(m @ "SingleStage") if n == 1 => m.to_string(),
        Some(m @ "NoApproval") if n == 0 => m.to_string(),
        _ => derived_mode.to_string(),
    };
    let (duration_in_days, expiration_date_time) = match p.expiration.kind {
        ExpirationType::AfterDuration => (p.expiration.duration.map(ceil_days).unwrap_or(0), Value::Null),
        ExpirationType::AfterDateTime => {
            (p.expiration.duration.map(ceil_days).unwrap_or(0), ts_opt(p.expiration.end_date_time))
        }
        _ => (0, Value::Null),
    };
    object([
        ("id", json!(p.id)),
        ("accessPackageId", json!(p.access_package_id)),
        ("displayName", json!(p.display_name)),
        ("description", opt_str(&p.description)),
        ("canExtend", json!(r.enable_targets_to_self_update_access)),
        ("durationInDays", json!(duration_in_days)),
        ("expirationDateTime", expiration_date_time),
        ("expiration", expiration(&p.expiration)),
        ("createdBy", opt_str(&p.created_by)),
        ("createdDateTime", ts(p.created_date_time)),
        ("modifiedBy", opt_str(&p.modified_by)),
        ("modifiedDateTime", ts(p.modified_date_time)),
        (
            "requestorSettings",
            object([
                (
                    "scopeType",
                    match p.beta_extra.get("scopeType") {
                        Some(t)
                            if p.allowed_target_scope
                                == AllowedTargetScope::AllConfiguredConnectedOrganizationUsers =>
                        {
                            t.clone()
                        }
                        _ => json!(p.allowed_target_scope.beta()),
                    },
                ),
                ("acceptRequests", json!(open && !r.rejects_new_requests)),
                ("allowedRequestors", subject_sets(&p.specific_allowed_targets, Dialect::Beta, Some(&backups))),
            ]),
        ),
        (
            "requestApprovalSettings",
            object([
                ("isApprovalRequired", json!(p.approval.is_approval_required_for_add)),
                ("isApprovalRequiredForExtension", json!(p.approval.is_approval_required_for_update)),
                ("isRequestorJustificationRequired", json!(p.approval.is_requestor_justification_required)),
                ("approvalMode", json!(mode)),
                ("approvalStages", Value::Array(p.approval.stages.iter().map(stage_beta).collect())),
            ]),
        ),
        ("accessReviewSettings", p.review_settings.as_ref().map(review_beta).unwrap_or(Value::Null)),
        ("questions", Value::Array(p.questions.iter().map(|q| question(q, Dialect::Beta)).collect())),
        ("accessPackageNotificationSettings", p.notification_settings.clone().unwrap_or(Value::Null)),
        ("verifiableCredentialSettings", p.verifiable_credential_settings.clone().unwrap_or(Value::Null)),
        ("customExtensionStageSettings", stage_settings(p)),
    ])
}

fn ceil_days(d: Duration) -> i64 {
    let ms = d.num_milliseconds();
    (ms + 86_400_000 - 1).div_euclid(86_400_000).max(0)
}

fn dur(d: Option<Duration>) -> Value {
    d.map(|d| json!(grantry_domain::duration::format(d))).unwrap_or(Value::Null)
}

fn expiration(e: &Expiration) -> Value {
    object([("type", json!(e.kind.v1())), ("endDateTime", ts_opt(e.end_date_time)), ("duration", dur(e.duration))])
}

fn stage_settings(p: &Policy) -> Value {
    Value::Array(
        p.custom_extension_stage_settings
            .iter()
            .map(|s| {
                object([
                    ("id", json!(s.id)),
                    ("stage", json!(s.stage.v1())),
                    ("customExtension", json!({ "id": s.custom_extension_id })),
                ])
            })
            .collect(),
    )
}

/// Subject sets in the dialect; beta sets carry `isBackup` (from `backups` by position, or
/// false).
fn subject_sets(sets: &[SubjectSet], d: Dialect, backups: Option<&[bool]>) -> Value {
    Value::Array(
        sets.iter()
            .enumerate()
            .map(|(i, s)| subject_set(s, d, backups.and_then(|b| b.get(i).copied()).unwrap_or(false)))
            .collect(),
    )
}

/// One subject set: v1.0 names (`userId`, …) or beta names (`id`, `isBackup`).
pub fn subject_set(s: &SubjectSet, d: Dialect, is_backup: bool) -> Value {
    let mut m = Map::new();
    let beta = d.is_beta();
    let put_id = |m: &mut Map<String, Value>, v1: &str, id: &Option<String>, description: &Option<String>| {
        m.insert(if beta { "id".into() } else { v1.to_string() }, opt_str(id));
        m.insert("description".into(), opt_str(description));
    };
    let name = match s {
        SubjectSet::SingleUser { user_id, description } => {
            put_id(&mut m, "userId", user_id, description);
            "singleUser"
        }
        SubjectSet::GroupMembers { group_id, description } => {
            put_id(&mut m, "groupId", group_id, description);
            "groupMembers"
        }
        SubjectSet::ConnectedOrganizationMembers { connected_organization_id, description } => {
            put_id(&mut m, "connectedOrganizationId", connected_organization_id, description);
            "connectedOrganizationMembers"
        }
        SubjectSet::SingleServicePrincipal { service_principal_id, description } => {
            put_id(&mut m, "servicePrincipalId", service_principal_id, description);
            "singleServicePrincipal"
        }
        SubjectSet::RequestorManager { manager_level } => {
            m.insert("managerLevel".into(), json!(manager_level));
            "requestorManager"
        }
        SubjectSet::TargetManager { manager_level } => {
            m.insert("managerLevel".into(), json!(manager_level));
            "targetManager"
        }
        SubjectSet::InternalSponsors => "internalSponsors",
        SubjectSet::ExternalSponsors => "externalSponsors",
        SubjectSet::TargetUserSponsors => "targetUserSponsors",
        SubjectSet::TargetApplicationOwners => "targetApplicationOwners",
        SubjectSet::TargetAgentIdentitySponsorsOrOwners => "targetAgentIdentitySponsorsOrOwners",
        SubjectSet::AttributeRuleMembers { membership_rule, description } => {
            m.insert("membershipRule".into(), opt_str(membership_rule));
            m.insert("description".into(), opt_str(description));
            "attributeRuleMembers"
        }
        SubjectSet::Other { odata_type, properties } => {
            let mut out = Map::new();
            out.insert("@odata.type".into(), json!(odata_type));
            if beta {
                out.insert("isBackup".into(), json!(is_backup));
            }
            out.extend(properties.clone());
            return Value::Object(out);
        }
    };
    let mut out = Map::new();
    out.insert("@odata.type".into(), odata_type(name));
    if beta {
        out.insert("isBackup".into(), json!(is_backup));
    }
    out.extend(m);
    Value::Object(out)
}

/// Primary sets (`isBackup: false`) then fallbacks (`isBackup: true`), beta style.
fn with_backups(primary: &[SubjectSet], fallback: &[SubjectSet]) -> Value {
    Value::Array(
        primary
            .iter()
            .map(|s| subject_set(s, Dialect::Beta, false))
            .chain(fallback.iter().map(|s| subject_set(s, Dialect::Beta, true)))
            .collect(),
    )
}

fn stage_v1(s: &ApprovalStage) -> Value {
    let mut v = object([
        ("durationBeforeAutomaticDenial", dur(s.duration_before_automatic_denial)),
        ("isApproverJustificationRequired", json!(s.is_approver_justification_required)),
        ("isEscalationEnabled", json!(s.is_escalation_enabled)),
        ("durationBeforeEscalation", dur(s.duration_before_escalation)),
        ("primaryApprovers", subject_sets(&s.primary_approvers, Dialect::V1, None)),
        ("fallbackPrimaryApprovers", subject_sets(&s.fallback_primary_approvers, Dialect::V1, None)),
        ("escalationApprovers", subject_sets(&s.escalation_approvers, Dialect::V1, None)),
        ("fallbackEscalationApprovers", subject_sets(&s.fallback_escalation_approvers, Dialect::V1, None)),
        ("approverInformationVisibility", json!(s.approver_information_visibility.v1())),
    ]);
    if s.is_dynamic
        && let Value::Object(m) = &mut v
    {
        m.insert("@odata.type".into(), odata_type("accessPackageDynamicApprovalStage"));
    }
    v
}

fn stage_beta(s: &ApprovalStage) -> Value {
    let mut v = object([
        (
            "approvalStageTimeOutInDays",
            s.duration_before_automatic_denial.map(|d| json!(ceil_days(d))).unwrap_or(Value::Null),
        ),
        ("isApproverJustificationRequired", json!(s.is_approver_justification_required)),
        ("isEscalationEnabled", json!(s.is_escalation_enabled)),
        ("escalationTimeInMinutes", json!(s.duration_before_escalation.map(|d| d.num_minutes()).unwrap_or(0))),
        ("primaryApprovers", with_backups(&s.primary_approvers, &s.fallback_primary_approvers)),
        ("escalationApprovers", with_backups(&s.escalation_approvers, &s.fallback_escalation_approvers)),
        // A CSDL enum in beta too, so its members keep their camelCase names.
        ("approverInformationVisibility", json!(s.approver_information_visibility.v1())),
    ]);
    if s.is_dynamic
        && let Value::Object(m) = &mut v
    {
        m.insert("@odata.type".into(), odata_type("accessPackageDynamicApprovalStage"));
    }
    v
}

fn schedule_v1(s: &Schedule) -> Value {
    object([
        ("startDateTime", ts_opt(s.start_date_time)),
        ("expiration", expiration(&s.expiration)),
        ("recurrence", s.recurrence.clone().unwrap_or(Value::Null)),
    ])
}

fn review_v1(r: &ReviewSettings) -> Value {
    object([
        ("isEnabled", json!(r.is_enabled)),
        ("expirationBehavior", r.expiration_behavior.map(|e| json!(e.v1())).unwrap_or(Value::Null)),
        ("isRecommendationEnabled", json!(r.is_recommendation_enabled)),
        ("isReviewerJustificationRequired", json!(r.is_reviewer_justification_required)),
        ("isSelfReview", json!(r.is_self_review)),
        ("schedule", r.schedule.as_ref().map(schedule_v1).unwrap_or(Value::Null)),
        ("primaryReviewers", subject_sets(&r.primary_reviewers, Dialect::V1, None)),
        ("fallbackReviewers", subject_sets(&r.fallback_reviewers, Dialect::V1, None)),
    ])
}

fn review_beta(r: &ReviewSettings) -> Value {
    let only_manager = matches!(r.primary_reviewers.as_slice(), [SubjectSet::RequestorManager { manager_level: 1 }]);
    let reviewer_type = match r.beta_extra.get("reviewerType").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None if r.is_self_review == Some(true) => "Self".into(),
        None if only_manager => "Manager".into(),
        None => "Reviewers".into(),
    };
    let primary: Vec<SubjectSet> =
        if reviewer_type == "Manager" && only_manager { Vec::new() } else { r.primary_reviewers.clone() };
    let recurrence_type = r
        .beta_extra
        .get("recurrenceType")
        .cloned()
        .or_else(|| {
            r.schedule.as_ref().and_then(|s| s.recurrence.as_ref()).and_then(recurrence_type_of).map(|t| json!(t))
        })
        .unwrap_or(Value::Null);
    let schedule = r.schedule.clone().unwrap_or_default();
    object([
        ("isEnabled", json!(r.is_enabled)),
        ("recurrenceType", recurrence_type),
        ("reviewerType", json!(reviewer_type)),
        ("startDateTime", ts_opt(schedule.start_date_time)),
        (
            "durationInDays",
            match schedule.expiration.kind {
                ExpirationType::AfterDuration => {
                    schedule.expiration.duration.map(|d| json!(ceil_days(d))).unwrap_or(Value::Null)
                }
                _ => Value::Null,
            },
        ),
        ("reviewers", with_backups(&primary, &r.fallback_reviewers)),
        ("accessReviewTimeoutBehavior", r.expiration_behavior.map(|e| json!(e.v1())).unwrap_or(Value::Null)),
        ("isAccessRecommendationEnabled", json!(r.is_recommendation_enabled)),
        ("isApprovalJustificationRequired", json!(r.is_reviewer_justification_required)),
        ("isAgenticExperienceEnabled", r.beta_extra.get("isAgenticExperienceEnabled").cloned().unwrap_or(json!(false))),
    ])
}

fn localized(l: &[LocalizedText]) -> Value {
    Value::Array(l.iter().map(|l| json!({ "languageCode": l.language_code, "text": l.text })).collect())
}

/// A question in the dialect: v1.0 `text` + `localizations`, beta `text {defaultText,
/// localizedTexts}`.
pub fn question(q: &Question, d: Dialect) -> Value {
    let text = |t: &Option<String>, l: &[LocalizedText]| -> (Value, Option<Value>) {
        match d {
            Dialect::V1 => (opt_str(t), Some(localized(l))),
            Dialect::Beta => (json!({ "defaultText": t, "localizedTexts": localized(l) }), None),
        }
    };
    let mut m = Map::new();
    let (kind, extra): (&str, Vec<(&str, Value)>) = match &q.kind {
        QuestionKind::MultipleChoice { choices, is_multiple_selection_allowed } => (
            "accessPackageMultipleChoiceQuestion",
            vec![
                (d.pick("isMultipleSelectionAllowed", "allowsMultipleSelection"), json!(is_multiple_selection_allowed)),
                (
                    "choices",
                    Value::Array(
                        choices
                            .iter()
                            .map(|c| {
                                let (t, l) = text(&c.text, &c.localizations);
                                let mut cm = Map::new();
                                cm.insert("actualValue".into(), json!(c.actual_value));
                                match l {
                                    Some(l) => {
                                        cm.insert("text".into(), t);
                                        cm.insert("localizations".into(), l);
                                    }
                                    None => {
                                        cm.insert("displayValue".into(), t);
                                    }
                                }
                                Value::Object(cm)
                            })
                            .collect(),
                    ),
                ),
            ],
        ),
        QuestionKind::TextInput { is_single_line_question, regex_pattern } => (
            "accessPackageTextInputQuestion",
            vec![("isSingleLineQuestion", json!(is_single_line_question)), ("regexPattern", opt_str(regex_pattern))],
        ),
    };
    m.insert("@odata.type".into(), odata_type(kind));
    m.insert("id".into(), json!(q.id));
    m.insert("sequence".into(), json!(q.sequence));
    m.insert("isRequired".into(), json!(q.is_required));
    m.insert("isAnswerEditable".into(), json!(q.is_answer_editable));
    let (t, l) = text(&q.text, &q.localizations);
    m.insert("text".into(), t);
    if let Some(l) = l {
        m.insert("localizations".into(), l);
    }
    for (k, v) in extra {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// A minimal rendering of the policy's access package for `$expand=accessPackage`.
fn render_package_stub(p: &AccessPackage, d: Dialect) -> Value {
    let mut v = object([
        ("id", json!(p.id)),
        ("displayName", json!(p.display_name)),
        ("description", opt_str(&p.description)),
        ("isHidden", json!(p.is_hidden)),
        ("createdDateTime", ts(p.created_date_time)),
        ("modifiedDateTime", ts(p.modified_date_time)),
    ]);
    if d.is_beta()
        && let Value::Object(m) = &mut v
    {
        m.insert("catalogId".into(), json!(p.catalog_id));
        m.insert("isRoleScopesVisible".into(), json!(p.is_role_scopes_visible));
        m.insert("uniqueName".into(), opt_str(&p.unique_name));
        m.insert("createdBy".into(), opt_str(&p.created_by));
        m.insert("modifiedBy".into(), opt_str(&p.modified_by));
    }
    v
}

/// A minimal rendering of the policy's catalog for `$expand=catalog` (beta `accessPackageCatalog`).
fn render_catalog_stub(c: &Catalog, d: Dialect) -> Value {
    match d {
        Dialect::V1 => object([
            ("id", json!(c.id)),
            ("displayName", json!(c.display_name)),
            ("description", opt_str(&c.description)),
            ("catalogType", json!(c.catalog_type.v1())),
            ("state", json!(c.state.v1())),
            ("isExternallyVisible", json!(c.is_externally_visible)),
            ("createdDateTime", ts(c.created_date_time)),
            ("modifiedDateTime", ts(c.modified_date_time)),
        ]),
        Dialect::Beta => object([
            ("id", json!(c.id)),
            ("displayName", json!(c.display_name)),
            ("description", opt_str(&c.description)),
            ("catalogType", json!(c.catalog_type.beta())),
            ("catalogStatus", json!(c.state.beta())),
            ("isExternallyVisible", json!(c.is_externally_visible)),
            ("uniqueName", opt_str(&c.unique_name)),
            ("createdBy", opt_str(&c.created_by)),
            ("modifiedBy", opt_str(&c.modified_by)),
            ("createdDateTime", ts(c.created_date_time)),
            ("modifiedDateTime", ts(c.modified_date_time)),
        ]),
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
