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
//! - beta output carries only beta properties: a duration that is not whole days reads
//!   back in beta as `durationInDays` rounded up (exactly under v1.0's `expiration`).
//! - fallback approvers are beta approvers with `isBackup: true` and the reverse.
//! - questions and customExtensionStageSettings are returned inline in both dialects.

use crate::assignment::PackageView;
use crate::body::Body;
use crate::extension::ExtensionView;
use crate::render::Dialect;
use crate::request::ExpirationView;
use crate::wire::Ts;
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
use serde::{Serialize, Serializer};
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

/// A policy as a `Value`, for merging a PATCH body into the current policy.
pub fn render_policy(p: &Policy, d: Dialect) -> Value {
    serde_json::to_value(PolicyView::new(p, d, &PolicyExpand::default())).unwrap_or(Value::Null)
}

/// An assignment policy in the dialect of the URL, with the navigation properties `$expand`
/// named.
#[derive(Serialize)]
#[serde(untagged)]
pub enum PolicyView<'a> {
    V1(Box<PolicyV1<'a>>),
    Beta(Box<PolicyBeta<'a>>),
}

impl<'a> PolicyView<'a> {
    pub fn new(p: &'a Policy, d: Dialect, expand: &PolicyExpand<'a>) -> Self {
        let access_package = expand.access_package.map(|pkg| PackageView::new(pkg, d));
        let catalog = expand.catalog.map(|c| CatalogStub::new(c, d));
        match d {
            Dialect::V1 => {
                PolicyView::V1(Box::new(PolicyV1::new(p, access_package, catalog, expand.custom_extensions)))
            }
            Dialect::Beta => PolicyView::Beta(Box::new(PolicyBeta::new(
                p,
                access_package,
                catalog,
                expand.custom_extension_handlers,
                expand.custom_extensions,
            ))),
        }
    }
}

/// v1.0 `accessPackageAssignmentPolicy`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyV1<'a> {
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    allowed_target_scope: &'static str,
    specific_allowed_targets: SubjectSets<'a>,
    expiration: ExpirationView,
    requestor_settings: RequestorSettingsV1<'a>,
    request_approval_settings: ApprovalSettingsV1<'a>,
    review_settings: Option<ReviewV1<'a>>,
    automatic_request_settings: Option<AutomaticRequestV1>,
    notification_settings: Option<&'a Value>,
    questions: Vec<QuestionView<'a>>,
    custom_extension_stage_settings: Vec<StageSettingView<'a>>,
    created_date_time: Ts,
    modified_date_time: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_package: Option<PackageView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog: Option<CatalogStub<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestorSettingsV1<'a> {
    enable_targets_to_self_add_access: bool,
    enable_targets_to_self_update_access: bool,
    enable_targets_to_self_remove_access: bool,
    allow_custom_assignment_schedule: bool,
    enable_on_behalf_requestors_to_add_access: bool,
    enable_on_behalf_requestors_to_update_access: bool,
    enable_on_behalf_requestors_to_remove_access: bool,
    on_behalf_requestors: SubjectSets<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalSettingsV1<'a> {
    is_approval_required_for_add: bool,
    is_approval_required_for_update: bool,
    is_requestor_justification_required: bool,
    stages: Vec<StageV1<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AutomaticRequestV1 {
    request_access_for_allowed_targets: bool,
    remove_access_when_target_leaves_allowed_targets: bool,
    grace_period_before_access_removal: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StageSettingView<'a> {
    id: &'a str,
    stage: &'static str,
    custom_extension: ExtensionIn<'a>,
}

/// The extension a stage setting names: an `{id}` stub, or the whole extension when
/// `$expand` asked for it and it was found.
#[derive(Serialize)]
#[serde(untagged)]
enum ExtensionIn<'a> {
    Stub { id: &'a str },
    Whole(Box<ExtensionView<'a>>),
}

fn stage_settings<'a>(
    p: &'a Policy,
    d: Dialect,
    extensions: Option<&'a [CustomExtension]>,
) -> Vec<StageSettingView<'a>> {
    p.custom_extension_stage_settings
        .iter()
        .map(|s| {
            let id = ids::normalize(&s.custom_extension_id);
            let whole = extensions.and_then(|all| all.iter().find(|e| e.id == id));
            StageSettingView {
                id: &s.id,
                stage: s.stage.v1(),
                custom_extension: match whole {
                    Some(e) => ExtensionIn::Whole(Box::new(ExtensionView::new(e, d))),
                    None => ExtensionIn::Stub { id: &s.custom_extension_id },
                },
            }
        })
        .collect()
}

impl<'a> PolicyV1<'a> {
    fn new(
        p: &'a Policy,
        access_package: Option<PackageView<'a>>,
        catalog: Option<CatalogStub<'a>>,
        extensions: Option<&'a [CustomExtension]>,
    ) -> Self {
        let r = &p.requestor_settings;
        PolicyV1 {
            id: &p.id,
            display_name: &p.display_name,
            description: p.description.as_deref(),
            allowed_target_scope: p.allowed_target_scope.v1(),
            specific_allowed_targets: SubjectSets::v1(&p.specific_allowed_targets),
            expiration: ExpirationView::new(&p.expiration),
            requestor_settings: RequestorSettingsV1 {
                enable_targets_to_self_add_access: r.enable_targets_to_self_add_access,
                enable_targets_to_self_update_access: r.enable_targets_to_self_update_access,
                enable_targets_to_self_remove_access: r.enable_targets_to_self_remove_access,
                allow_custom_assignment_schedule: r.allow_custom_assignment_schedule,
                enable_on_behalf_requestors_to_add_access: r.enable_on_behalf_requestors_to_add_access,
                enable_on_behalf_requestors_to_update_access: r.enable_on_behalf_requestors_to_update_access,
                enable_on_behalf_requestors_to_remove_access: r.enable_on_behalf_requestors_to_remove_access,
                on_behalf_requestors: SubjectSets::v1(&r.on_behalf_requestors),
            },
            request_approval_settings: ApprovalSettingsV1 {
                is_approval_required_for_add: p.approval.is_approval_required_for_add,
                is_approval_required_for_update: p.approval.is_approval_required_for_update,
                is_requestor_justification_required: p.approval.is_requestor_justification_required,
                stages: p.approval.stages.iter().map(StageV1::new).collect(),
            },
            review_settings: p.review_settings.as_ref().map(ReviewV1::new),
            automatic_request_settings: p.automatic_request_settings.as_ref().map(|a| AutomaticRequestV1 {
                request_access_for_allowed_targets: a.request_access_for_allowed_targets,
                remove_access_when_target_leaves_allowed_targets: a.remove_access_when_target_leaves_allowed_targets,
                grace_period_before_access_removal: dur(a.grace_period_before_access_removal),
            }),
            notification_settings: p.notification_settings.as_ref(),
            questions: p.questions.iter().map(|q| QuestionView::new(q, Dialect::V1)).collect(),
            custom_extension_stage_settings: stage_settings(p, Dialect::V1, extensions),
            created_date_time: Ts(p.created_date_time),
            modified_date_time: Ts(p.modified_date_time),
            access_package,
            catalog,
        }
    }
}

/// beta `accessPackageAssignmentPolicy`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyBeta<'a> {
    id: &'a str,
    access_package_id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    can_extend: bool,
    duration_in_days: i64,
    expiration_date_time: Option<Ts>,
    created_by: Option<&'a str>,
    created_date_time: Ts,
    modified_by: Option<&'a str>,
    modified_date_time: Ts,
    requestor_settings: RequestorSettingsBeta<'a>,
    request_approval_settings: ApprovalSettingsBeta<'a>,
    access_review_settings: Option<ReviewBeta<'a>>,
    questions: Vec<QuestionView<'a>>,
    access_package_notification_settings: Option<&'a Value>,
    verifiable_credential_settings: Option<&'a Value>,
    custom_extension_stage_settings: Vec<StageSettingView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_package: Option<PackageView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_package_catalog: Option<CatalogStub<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_extension_handlers: Option<Vec<StageSettingView<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestorSettingsBeta<'a> {
    scope_type: ScopeType<'a>,
    accept_requests: bool,
    allowed_requestors: SubjectSets<'a>,
}

/// Beta `scopeType`: as sent for connected-organization scopes, else from the v1.0 scope.
#[derive(Serialize)]
#[serde(untagged)]
enum ScopeType<'a> {
    Kept(&'a Value),
    Derived(&'static str),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalSettingsBeta<'a> {
    is_approval_required: bool,
    is_approval_required_for_extension: bool,
    is_requestor_justification_required: bool,
    approval_mode: &'a str,
    approval_stages: Vec<StageBeta<'a>>,
}

impl<'a> PolicyBeta<'a> {
    fn new(
        p: &'a Policy,
        access_package: Option<PackageView<'a>>,
        catalog: Option<CatalogStub<'a>>,
        custom_extension_handlers: bool,
        extensions: Option<&'a [CustomExtension]>,
    ) -> Self {
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
            Some(m @ "Parallel") | Some(m @ "Serial") if n >= 2 => m,
            Some(m @ "SingleStage") if n == 1 => m,
            Some(m @ "NoApproval") if n == 0 => m,
            _ => derived_mode,
        };
        let (duration_in_days, expiration_date_time) = match p.expiration.kind {
            ExpirationType::AfterDuration => (p.expiration.duration.map(ceil_days).unwrap_or(0), None),
            ExpirationType::AfterDateTime => {
                (p.expiration.duration.map(ceil_days).unwrap_or(0), p.expiration.end_date_time.map(Ts))
            }
            _ => (0, None),
        };
        let scope_type = match p.beta_extra.get("scopeType") {
            Some(t) if p.allowed_target_scope == AllowedTargetScope::AllConfiguredConnectedOrganizationUsers => {
                ScopeType::Kept(t)
            }
            _ => ScopeType::Derived(p.allowed_target_scope.beta()),
        };
        PolicyBeta {
            id: &p.id,
            access_package_id: &p.access_package_id,
            display_name: &p.display_name,
            description: p.description.as_deref(),
            can_extend: r.enable_targets_to_self_update_access,
            duration_in_days,
            expiration_date_time,
            created_by: p.created_by.as_deref(),
            created_date_time: Ts(p.created_date_time),
            modified_by: p.modified_by.as_deref(),
            modified_date_time: Ts(p.modified_date_time),
            requestor_settings: RequestorSettingsBeta {
                scope_type,
                accept_requests: open && !r.rejects_new_requests,
                allowed_requestors: SubjectSets::beta(&p.specific_allowed_targets, backups),
            },
            request_approval_settings: ApprovalSettingsBeta {
                is_approval_required: p.approval.is_approval_required_for_add,
                is_approval_required_for_extension: p.approval.is_approval_required_for_update,
                is_requestor_justification_required: p.approval.is_requestor_justification_required,
                approval_mode: mode,
                approval_stages: p.approval.stages.iter().map(StageBeta::new).collect(),
            },
            access_review_settings: p.review_settings.as_ref().map(ReviewBeta::new),
            questions: p.questions.iter().map(|q| QuestionView::new(q, Dialect::Beta)).collect(),
            access_package_notification_settings: p.notification_settings.as_ref(),
            verifiable_credential_settings: p.verifiable_credential_settings.as_ref(),
            custom_extension_stage_settings: stage_settings(p, Dialect::Beta, extensions),
            access_package,
            access_package_catalog: catalog,
            custom_extension_handlers: custom_extension_handlers.then(|| stage_settings(p, Dialect::Beta, extensions)),
        }
    }
}

fn ceil_days(d: Duration) -> i64 {
    let ms = d.num_milliseconds();
    (ms + 86_400_000 - 1).div_euclid(86_400_000).max(0)
}

fn dur(d: Option<Duration>) -> Option<String> {
    d.map(grantry_domain::duration::format)
}

/// Subject sets in the dialect; beta sets carry `isBackup`.
struct SubjectSets<'a> {
    sets: Vec<(&'a SubjectSet, bool)>,
    dialect: Dialect,
}

impl<'a> SubjectSets<'a> {
    fn v1(sets: &'a [SubjectSet]) -> Self {
        SubjectSets { sets: sets.iter().map(|s| (s, false)).collect(), dialect: Dialect::V1 }
    }

    /// Beta sets with `isBackup` from `backups` by position (false where absent).
    fn beta(sets: &'a [SubjectSet], backups: Vec<bool>) -> Self {
        let sets = sets.iter().enumerate().map(|(i, s)| (s, backups.get(i).copied().unwrap_or(false))).collect();
        SubjectSets { sets, dialect: Dialect::Beta }
    }

    /// Primary sets (`isBackup: false`) then fallbacks (`isBackup: true`), beta style.
    fn with_backups(primary: &'a [SubjectSet], fallback: &'a [SubjectSet]) -> Self {
        let sets = primary.iter().map(|s| (s, false)).chain(fallback.iter().map(|s| (s, true))).collect();
        SubjectSets { sets, dialect: Dialect::Beta }
    }
}

impl Serialize for SubjectSets<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.sets.iter().map(|(set, is_backup)| SubjectSetView {
            set,
            dialect: self.dialect,
            is_backup: *is_backup,
        }))
    }
}

/// One subject set: v1.0 names (`userId`, …) or beta names (`id`, `isBackup`). Written by
/// hand: the properties depend on the set's `@odata.type`, and a type Grantry does not
/// model is sent back with the properties it came with.
pub struct SubjectSetView<'a> {
    pub set: &'a SubjectSet,
    pub dialect: Dialect,
    pub is_backup: bool,
}

impl Serialize for SubjectSetView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let beta = self.dialect.is_beta();
        let mut m = s.serialize_map(None)?;
        let (name, id) = match self.set {
            SubjectSet::SingleUser { user_id, description } => ("singleUser", Some(("userId", user_id, description))),
            SubjectSet::GroupMembers { group_id, description } => {
                ("groupMembers", Some(("groupId", group_id, description)))
            }
            SubjectSet::ConnectedOrganizationMembers { connected_organization_id, description } => (
                "connectedOrganizationMembers",
                Some(("connectedOrganizationId", connected_organization_id, description)),
            ),
            SubjectSet::SingleServicePrincipal { service_principal_id, description } => {
                ("singleServicePrincipal", Some(("servicePrincipalId", service_principal_id, description)))
            }
            SubjectSet::RequestorManager { .. } => ("requestorManager", None),
            SubjectSet::TargetManager { .. } => ("targetManager", None),
            SubjectSet::InternalSponsors => ("internalSponsors", None),
            SubjectSet::ExternalSponsors => ("externalSponsors", None),
            SubjectSet::TargetUserSponsors => ("targetUserSponsors", None),
            SubjectSet::TargetApplicationOwners => ("targetApplicationOwners", None),
            SubjectSet::TargetAgentIdentitySponsorsOrOwners => ("targetAgentIdentitySponsorsOrOwners", None),
            SubjectSet::AttributeRuleMembers { .. } => ("attributeRuleMembers", None),
            SubjectSet::Other { odata_type, properties } => {
                // The properties as sent win over the annotations written here.
                if !properties.contains_key("@odata.type") {
                    m.serialize_entry("@odata.type", odata_type)?;
                }
                if beta && !properties.contains_key("isBackup") {
                    m.serialize_entry("isBackup", &self.is_backup)?;
                }
                for (k, v) in properties {
                    m.serialize_entry(k, v)?;
                }
                return m.end();
            }
        };
        m.serialize_entry("@odata.type", &format_args!("#microsoft.graph.{name}"))?;
        if beta {
            m.serialize_entry("isBackup", &self.is_backup)?;
        }
        if let Some((v1_name, id, description)) = id {
            m.serialize_entry(if beta { "id" } else { v1_name }, id)?;
            m.serialize_entry("description", description)?;
        }
        match self.set {
            SubjectSet::RequestorManager { manager_level } | SubjectSet::TargetManager { manager_level } => {
                m.serialize_entry("managerLevel", manager_level)?;
            }
            SubjectSet::AttributeRuleMembers { membership_rule, description } => {
                m.serialize_entry("membershipRule", membership_rule)?;
                m.serialize_entry("description", description)?;
            }
            _ => {}
        }
        m.end()
    }
}

/// `@odata.type` of a dynamic approval stage; absent on a plain one.
fn dynamic_stage(s: &ApprovalStage) -> Option<&'static str> {
    s.is_dynamic.then_some("#microsoft.graph.accessPackageDynamicApprovalStage")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StageV1<'a> {
    #[serde(rename = "@odata.type", skip_serializing_if = "Option::is_none")]
    odata_type: Option<&'static str>,
    duration_before_automatic_denial: Option<String>,
    is_approver_justification_required: bool,
    is_escalation_enabled: bool,
    duration_before_escalation: Option<String>,
    primary_approvers: SubjectSets<'a>,
    fallback_primary_approvers: SubjectSets<'a>,
    escalation_approvers: SubjectSets<'a>,
    fallback_escalation_approvers: SubjectSets<'a>,
    approver_information_visibility: &'static str,
}

impl<'a> StageV1<'a> {
    fn new(s: &'a ApprovalStage) -> Self {
        StageV1 {
            odata_type: dynamic_stage(s),
            duration_before_automatic_denial: dur(s.duration_before_automatic_denial),
            is_approver_justification_required: s.is_approver_justification_required,
            is_escalation_enabled: s.is_escalation_enabled,
            duration_before_escalation: dur(s.duration_before_escalation),
            primary_approvers: SubjectSets::v1(&s.primary_approvers),
            fallback_primary_approvers: SubjectSets::v1(&s.fallback_primary_approvers),
            escalation_approvers: SubjectSets::v1(&s.escalation_approvers),
            fallback_escalation_approvers: SubjectSets::v1(&s.fallback_escalation_approvers),
            approver_information_visibility: s.approver_information_visibility.v1(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StageBeta<'a> {
    #[serde(rename = "@odata.type", skip_serializing_if = "Option::is_none")]
    odata_type: Option<&'static str>,
    approval_stage_time_out_in_days: Option<i64>,
    is_approver_justification_required: bool,
    is_escalation_enabled: bool,
    escalation_time_in_minutes: i64,
    primary_approvers: SubjectSets<'a>,
    escalation_approvers: SubjectSets<'a>,
    /// A CSDL enum in beta too, so its members keep their camelCase names.
    approver_information_visibility: &'static str,
}

impl<'a> StageBeta<'a> {
    fn new(s: &'a ApprovalStage) -> Self {
        StageBeta {
            odata_type: dynamic_stage(s),
            approval_stage_time_out_in_days: s.duration_before_automatic_denial.map(ceil_days),
            is_approver_justification_required: s.is_approver_justification_required,
            is_escalation_enabled: s.is_escalation_enabled,
            escalation_time_in_minutes: s.duration_before_escalation.map(|d| d.num_minutes()).unwrap_or(0),
            primary_approvers: SubjectSets::with_backups(&s.primary_approvers, &s.fallback_primary_approvers),
            escalation_approvers: SubjectSets::with_backups(&s.escalation_approvers, &s.fallback_escalation_approvers),
            approver_information_visibility: s.approver_information_visibility.v1(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScheduleV1<'a> {
    start_date_time: Option<Ts>,
    expiration: ExpirationView,
    recurrence: Option<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewV1<'a> {
    is_enabled: bool,
    expiration_behavior: Option<&'static str>,
    is_recommendation_enabled: Option<bool>,
    is_reviewer_justification_required: Option<bool>,
    is_self_review: Option<bool>,
    schedule: Option<ScheduleV1<'a>>,
    primary_reviewers: SubjectSets<'a>,
    fallback_reviewers: SubjectSets<'a>,
}

impl<'a> ReviewV1<'a> {
    fn new(r: &'a ReviewSettings) -> Self {
        ReviewV1 {
            is_enabled: r.is_enabled,
            expiration_behavior: r.expiration_behavior.map(|e| e.v1()),
            is_recommendation_enabled: r.is_recommendation_enabled,
            is_reviewer_justification_required: r.is_reviewer_justification_required,
            is_self_review: r.is_self_review,
            schedule: r.schedule.as_ref().map(|s| ScheduleV1 {
                start_date_time: s.start_date_time.map(Ts),
                expiration: ExpirationView::new(&s.expiration),
                recurrence: s.recurrence.as_ref(),
            }),
            primary_reviewers: SubjectSets::v1(&r.primary_reviewers),
            fallback_reviewers: SubjectSets::v1(&r.fallback_reviewers),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewBeta<'a> {
    is_enabled: bool,
    recurrence_type: Option<KeptOr<'a>>,
    reviewer_type: &'a str,
    start_date_time: Option<Ts>,
    duration_in_days: Option<i64>,
    reviewers: SubjectSets<'a>,
    access_review_timeout_behavior: Option<&'static str>,
    is_access_recommendation_enabled: Option<bool>,
    is_approval_justification_required: Option<bool>,
    is_agentic_experience_enabled: KeptOr<'a>,
}

/// A value kept as a beta body sent it, or one Grantry derives.
#[derive(Serialize)]
#[serde(untagged)]
enum KeptOr<'a> {
    Kept(&'a Value),
    Str(&'static str),
    Bool(bool),
}

impl<'a> ReviewBeta<'a> {
    fn new(r: &'a ReviewSettings) -> Self {
        let only_manager =
            matches!(r.primary_reviewers.as_slice(), [SubjectSet::RequestorManager { manager_level: 1 }]);
        let reviewer_type = match r.beta_extra.get("reviewerType").and_then(Value::as_str) {
            Some(t) => t,
            None if r.is_self_review == Some(true) => "Self",
            None if only_manager => "Manager",
            None => "Reviewers",
        };
        let primary: &'a [SubjectSet] =
            if reviewer_type == "Manager" && only_manager { &[] } else { &r.primary_reviewers };
        let recurrence_type = r.beta_extra.get("recurrenceType").map(KeptOr::Kept).or_else(|| {
            r.schedule.as_ref().and_then(|s| s.recurrence.as_ref()).and_then(recurrence_type_of).map(KeptOr::Str)
        });
        let (start_date_time, duration_in_days) = match &r.schedule {
            None => (None, None),
            Some(schedule) => (
                schedule.start_date_time.map(Ts),
                match schedule.expiration.kind {
                    ExpirationType::AfterDuration => schedule.expiration.duration.map(ceil_days),
                    _ => None,
                },
            ),
        };
        ReviewBeta {
            is_enabled: r.is_enabled,
            recurrence_type,
            reviewer_type,
            start_date_time,
            duration_in_days,
            reviewers: SubjectSets::with_backups(primary, &r.fallback_reviewers),
            access_review_timeout_behavior: r.expiration_behavior.map(|e| e.v1()),
            is_access_recommendation_enabled: r.is_recommendation_enabled,
            is_approval_justification_required: r.is_reviewer_justification_required,
            is_agentic_experience_enabled: r
                .beta_extra
                .get("isAgenticExperienceEnabled")
                .map(KeptOr::Kept)
                .unwrap_or(KeptOr::Bool(false)),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LocalizedView<'a> {
    language_code: &'a str,
    text: Option<&'a str>,
}

fn localized(l: &[LocalizedText]) -> Vec<LocalizedView<'_>> {
    l.iter().map(|l| LocalizedView { language_code: &l.language_code, text: l.text.as_deref() }).collect()
}

/// Beta `text {defaultText, localizedTexts}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TextBeta<'a> {
    default_text: Option<&'a str>,
    localized_texts: Vec<LocalizedView<'a>>,
}

/// A question in the dialect: v1.0 `text` + `localizations`, beta `text {defaultText,
/// localizedTexts}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionView<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    id: &'a str,
    sequence: i32,
    is_required: bool,
    is_answer_editable: bool,
    text: TextIn<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    localizations: Option<Vec<LocalizedView<'a>>>,
    #[serde(flatten)]
    kind: QuestionKindView<'a>,
}

/// Text in the dialect's shape.
#[derive(Serialize)]
#[serde(untagged)]
enum TextIn<'a> {
    V1(Option<&'a str>),
    Beta(TextBeta<'a>),
}

#[derive(Serialize)]
#[serde(untagged)]
enum QuestionKindView<'a> {
    #[serde(rename_all = "camelCase")]
    TextInput { is_single_line_question: bool, regex_pattern: Option<&'a str> },
    MultipleChoiceV1 {
        #[serde(rename = "isMultipleSelectionAllowed")]
        is_multiple_selection_allowed: bool,
        choices: Vec<ChoiceView<'a>>,
    },
    MultipleChoiceBeta {
        #[serde(rename = "allowsMultipleSelection")]
        allows_multiple_selection: bool,
        choices: Vec<ChoiceView<'a>>,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChoiceView<'a> {
    actual_value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    localizations: Option<Vec<LocalizedView<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_value: Option<TextBeta<'a>>,
}

impl<'a> QuestionView<'a> {
    pub fn new(q: &'a Question, d: Dialect) -> Self {
        let text = |t: &'a Option<String>, l: &'a [LocalizedText]| match d {
            Dialect::V1 => (TextIn::V1(t.as_deref()), Some(localized(l))),
            Dialect::Beta => {
                (TextIn::Beta(TextBeta { default_text: t.as_deref(), localized_texts: localized(l) }), None)
            }
        };
        let (odata_type, kind) = match &q.kind {
            QuestionKind::MultipleChoice { choices, is_multiple_selection_allowed } => {
                let choices = choices
                    .iter()
                    .map(|c| match text(&c.text, &c.localizations) {
                        (TextIn::V1(t), l) => ChoiceView {
                            actual_value: &c.actual_value,
                            text: Some(t),
                            localizations: l,
                            display_value: None,
                        },
                        (TextIn::Beta(t), _) => ChoiceView {
                            actual_value: &c.actual_value,
                            text: None,
                            localizations: None,
                            display_value: Some(t),
                        },
                    })
                    .collect();
                let kind = match d {
                    Dialect::V1 => QuestionKindView::MultipleChoiceV1 {
                        is_multiple_selection_allowed: *is_multiple_selection_allowed,
                        choices,
                    },
                    Dialect::Beta => QuestionKindView::MultipleChoiceBeta {
                        allows_multiple_selection: *is_multiple_selection_allowed,
                        choices,
                    },
                };
                ("#microsoft.graph.accessPackageMultipleChoiceQuestion", kind)
            }
            QuestionKind::TextInput { is_single_line_question, regex_pattern } => (
                "#microsoft.graph.accessPackageTextInputQuestion",
                QuestionKindView::TextInput {
                    is_single_line_question: *is_single_line_question,
                    regex_pattern: regex_pattern.as_deref(),
                },
            ),
        };
        let (text, localizations) = text(&q.text, &q.localizations);
        QuestionView {
            odata_type,
            id: &q.id,
            sequence: q.sequence,
            is_required: q.is_required,
            is_answer_editable: q.is_answer_editable,
            text,
            localizations,
            kind,
        }
    }
}

/// A minimal rendering of the policy's catalog for `$expand=catalog` (beta `accessPackageCatalog`).
#[derive(Serialize)]
#[serde(untagged)]
pub enum CatalogStub<'a> {
    V1 {
        id: &'a str,
        #[serde(rename = "displayName")]
        display_name: &'a str,
        description: Option<&'a str>,
        #[serde(rename = "catalogType")]
        catalog_type: &'static str,
        state: &'static str,
        #[serde(rename = "isExternallyVisible")]
        is_externally_visible: bool,
        #[serde(rename = "createdDateTime")]
        created_date_time: Ts,
        #[serde(rename = "modifiedDateTime")]
        modified_date_time: Ts,
    },
    Beta {
        id: &'a str,
        #[serde(rename = "displayName")]
        display_name: &'a str,
        description: Option<&'a str>,
        #[serde(rename = "catalogType")]
        catalog_type: &'static str,
        #[serde(rename = "catalogStatus")]
        catalog_status: &'static str,
        #[serde(rename = "isExternallyVisible")]
        is_externally_visible: bool,
        #[serde(rename = "uniqueName")]
        unique_name: Option<&'a str>,
        #[serde(rename = "createdBy")]
        created_by: Option<&'a str>,
        #[serde(rename = "modifiedBy")]
        modified_by: Option<&'a str>,
        #[serde(rename = "createdDateTime")]
        created_date_time: Ts,
        #[serde(rename = "modifiedDateTime")]
        modified_date_time: Ts,
    },
}

impl<'a> CatalogStub<'a> {
    pub fn new(c: &'a Catalog, d: Dialect) -> Self {
        match d {
            Dialect::V1 => CatalogStub::V1 {
                id: &c.id,
                display_name: &c.display_name,
                description: c.description.as_deref(),
                catalog_type: c.catalog_type.v1(),
                state: c.state.v1(),
                is_externally_visible: c.is_externally_visible,
                created_date_time: Ts(c.created_date_time),
                modified_date_time: Ts(c.modified_date_time),
            },
            Dialect::Beta => CatalogStub::Beta {
                id: &c.id,
                display_name: &c.display_name,
                description: c.description.as_deref(),
                catalog_type: c.catalog_type.beta(),
                catalog_status: c.state.beta(),
                is_externally_visible: c.is_externally_visible,
                unique_name: c.unique_name.as_deref(),
                created_by: c.created_by.as_deref(),
                modified_by: c.modified_by.as_deref(),
                created_date_time: Ts(c.created_date_time),
                modified_date_time: Ts(c.modified_date_time),
            },
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
