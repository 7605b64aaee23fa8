//! Assignment requests: creating them (every rule a request must pass), reading, listing,
//! cancelling, deleting and reprocessing them. Processing and delivery are in `delivery`.
//!
//! A new request is evaluated on a read first, so refusals never wait for the writer;
//! the write evaluates again (cheaply, on the writer's consistent view) and inserts. The
//! database also enforces one open add/update/remove request per target and package and one
//! active assignment per target and package.

use crate::audit::{self, AuditEvent};
use crate::auth::{CatalogRight, perms};
use crate::delivery;
use crate::{App, Caller};
use chrono::{DateTime, Utc};
use grantry_domain::enums::{
    AllowedTargetScope, ExpirationType, RequestState, RequestStatus, RequestType, SubjectLifecycle, SubjectType,
    UserType,
};
use grantry_domain::model::*;
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::query::Sql;
use grantry_store::{Conn, Value, repo};
use serde_json::json;

/// Job kinds of this module.
pub const JOB_PROCESS: &str = "request.process";
pub const JOB_START: &str = "request.start";

/// How long after completion a failed request may be reprocessed.
pub const REPROCESS_WINDOW_DAYS: i64 = 14;

/// Who the request is for, as resolved from the directory and the subjects table.
#[derive(Debug, Clone)]
pub struct Target {
    pub subject: Option<Subject>,
    pub user: Option<User>,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

impl Target {
    pub fn object_id(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.id.as_str()).or(self.subject.as_ref().and_then(|s| s.object_id.as_deref()))
    }
    /// Not a member of this directory: not in it at all, or a guest.
    pub fn is_external(&self) -> bool {
        self.user.as_ref().is_none_or(|u| u.user_type == UserType::Guest)
    }
}

/// A request that passed every rule, with what it resolved to.
#[derive(Debug, Clone)]
pub struct Plan {
    pub package: AccessPackage,
    pub catalog: Catalog,
    pub policy: Policy,
    pub target: Target,
    pub assignment: Option<Assignment>,
    /// The evaluation read group memberships, which other requests' deliveries change
    /// without touching the evaluation token: the writer must evaluate again.
    pub reads_memberships: bool,
}

fn err(kind: ErrorKind, code: &str, message: impl Into<String>) -> Error {
    Error::new(kind, code, message)
}

fn bad(code: &str, message: impl Into<String>) -> Error {
    Error::bad_request(code, message)
}

pub(crate) fn subject_by_object_id(c: &mut dyn Conn, object_id: &str) -> Result<Option<Subject>> {
    repo::find_one(c, "object_id = ?", &[Value::from(ids::normalize(object_id))])
}

fn user_by_email(c: &mut dyn Conn, email: &str) -> Result<Option<User>> {
    let e = email.to_lowercase();
    repo::find_one(c, "mail_lower = ? OR upn_lower = ?", &[Value::from(&e), Value::from(&e)])
}

/// The subject id of a delegated caller, if they have one yet.
pub(crate) fn caller_subject_id(c: &mut dyn Conn, caller: &Caller) -> Result<Option<String>> {
    match caller.user_id() {
        Some(uid) => Ok(subject_by_object_id(c, uid)?.map(|s| s.id)),
        None => Ok(None),
    }
}

/// Whether `user_id` is a member of `group_id` (directly).
fn is_member(c: &mut dyn Conn, group_id: &str, user_id: &str) -> Result<bool> {
    crate::generation::looked_at_memberships();
    crate::membership::is_member(c, &ids::normalize(group_id), user_id)
}

/// Whether `caller_id` is `target`'s manager at `level` (1: direct manager; 2: the
/// manager's manager; both are accepted for level 2).
fn is_manager_of(c: &mut dyn Conn, caller_id: &str, target: Option<&User>, level: i32) -> Result<bool> {
    let mut current = target.and_then(|u| u.manager_id.clone());
    for _ in 0..level.clamp(1, 5) {
        let Some(m) = current else { return Ok(false) };
        if m.eq_ignore_ascii_case(caller_id) {
            return Ok(true);
        }
        current = repo::get::<User>(c, &m)?.and_then(|u| u.manager_id);
    }
    Ok(false)
}

/// Whether the requestor `caller_id` is in one of `sets` for a request about `target`.
fn requestor_matches(c: &mut dyn Conn, sets: &[SubjectSet], caller_id: &str, target: &Target) -> Result<bool> {
    for s in sets {
        let hit = match s {
            SubjectSet::SingleUser { user_id: Some(u), .. } => u.eq_ignore_ascii_case(caller_id),
            SubjectSet::GroupMembers { group_id: Some(g), .. } => is_member(c, g, caller_id)?,
            SubjectSet::TargetManager { manager_level } => {
                is_manager_of(c, caller_id, target.user.as_ref(), *manager_level)?
            }
            _ => false,
        };
        if hit {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `target` is in one of the policy's `specificAllowedTargets`.
fn target_in_sets(c: &mut dyn Conn, sets: &[SubjectSet], target: &Target, requestor: Option<&str>) -> Result<bool> {
    let Some(uid) = target.object_id().map(str::to_string) else { return Ok(false) };
    for s in sets {
        let hit = match s {
            SubjectSet::SingleUser { user_id: Some(u), .. } => u.eq_ignore_ascii_case(&uid),
            SubjectSet::GroupMembers { group_id: Some(g), .. } => is_member(c, g, &uid)?,
            SubjectSet::RequestorManager { manager_level } => match requestor {
                Some(r) => {
                    let requestor_user = repo::get::<User>(c, r)?;
                    is_manager_of(c, &uid, requestor_user.as_ref(), *manager_level)?
                }
                None => false,
            },
            // The rule of an automatic policy also decides who may request through it.
            SubjectSet::AttributeRuleMembers { membership_rule: Some(rule), .. } => match &target.user {
                Some(u) => grantry_domain::membership_rule::Rule::parse(rule).is_ok_and(|r| r.matches(u)),
                None => false,
            },
            _ => false,
        };
        if hit {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the policy's scope admits `target` (not counting the admin-only exception).
pub fn in_scope(
    c: &mut dyn Conn,
    policy: &Policy,
    catalog: &Catalog,
    target: &Target,
    requestor: Option<&str>,
) -> Result<bool> {
    use AllowedTargetScope as S;
    if target.user.is_none() || target.is_external() {
        let external_scope = matches!(
            policy.allowed_target_scope,
            S::AllExternalUsers | S::AllConfiguredConnectedOrganizationUsers | S::SpecificConnectedOrganizationUsers
        );
        if external_scope {
            return Ok(catalog.is_externally_visible && external_in_scope(c, policy, target)?);
        }
        if target.user.is_none() {
            return Ok(false);
        }
    }
    Ok(match policy.allowed_target_scope {
        S::AllMemberUsers => target.user.as_ref().is_some_and(|u| u.user_type == UserType::Member),
        S::AllDirectoryUsers => target.user.is_some(),
        S::SpecificDirectoryUsers => target_in_sets(c, &policy.specific_allowed_targets, target, requestor)?,
        _ => false,
    })
}

/// The connected organization of an external target: the one recorded on its subject,
/// else the one its domain or tenant matches.
pub(crate) fn target_organization(c: &mut dyn Conn, target: &Target) -> Result<Option<ConnectedOrganization>> {
    if let Some(s) = &target.subject
        && let Some(id) = crate::connected::organization_id_of_subject(c, s)?
    {
        return repo::get::<ConnectedOrganization>(c, &id);
    }
    crate::connected::organization_of(c, target.user.as_ref(), target.email.as_deref())
}

/// Whether an external target is in a policy for external users: any external user for
/// `allExternalUsers`, users of a `configured` connected organization for
/// `allConfiguredConnectedOrganizationUsers`, users of the organizations the policy names
/// (`connectedOrganizationMembers`) for `specificConnectedOrganizationUsers`.
fn external_in_scope(c: &mut dyn Conn, policy: &Policy, target: &Target) -> Result<bool> {
    use AllowedTargetScope as S;
    if policy.allowed_target_scope == S::AllExternalUsers {
        return Ok(true);
    }
    let Some(org) = target_organization(c, target)? else { return Ok(false) };
    Ok(match policy.allowed_target_scope {
        S::AllConfiguredConnectedOrganizationUsers => {
            org.state == grantry_domain::enums::ConnectedOrganizationState::Configured
        }
        S::SpecificConnectedOrganizationUsers => policy.specific_allowed_targets.iter().any(|s| {
            matches!(s, SubjectSet::ConnectedOrganizationMembers { connected_organization_id: Some(id), .. }
                if id.eq_ignore_ascii_case(&org.id))
        }),
        _ => false,
    })
}

/// Priority category of a policy when the client names none (§9.3.5); lower is preferred.
fn category(policy: &Policy, admin: bool) -> Option<u8> {
    use AllowedTargetScope as S;
    match policy.allowed_target_scope {
        S::NotSpecified if admin => Some(0),
        S::SpecificDirectoryUsers | S::SpecificConnectedOrganizationUsers => Some(1),
        S::AllMemberUsers => Some(2),
        S::AllDirectoryUsers => Some(3),
        S::AllConfiguredConnectedOrganizationUsers | S::AllExternalUsers => Some(4),
        _ => None,
    }
}

fn kind_word(t: RequestType) -> &'static str {
    if t.is_add() {
        "add"
    } else if t.is_update() {
        "update"
    } else {
        "remove"
    }
}

/// Checks that `policy` takes a request of type `t` from this caller for this target:
/// request type enabled, requestor allowed, target in scope.
fn check_policy(
    c: &mut dyn Conn,
    caller: &Caller,
    t: RequestType,
    policy: &Policy,
    catalog: &Catalog,
    target: &Target,
) -> Result<()> {
    let on_behalf = t.is_user() && target.object_id() != caller.user_id();
    if t.is_user() {
        let rs = &policy.requestor_settings;
        if on_behalf {
            let enabled = if t.is_add() {
                rs.enable_on_behalf_requestors_to_add_access
            } else if t.is_update() {
                rs.enable_on_behalf_requestors_to_update_access
            } else {
                rs.enable_on_behalf_requestors_to_remove_access
            };
            let caller_id = caller.user_id().unwrap_or_default();
            if !enabled || !requestor_matches(c, &rs.on_behalf_requestors, caller_id, target)? {
                return Err(err(
                    ErrorKind::Forbidden,
                    "RequestorNotAllowed",
                    format!(
                        "You may not {} access for another user through policy '{}': it does not let you request on their behalf (onBehalfRequestors / enableOnBehalfRequestorsTo{}Access).",
                        kind_word(t),
                        policy.id,
                        capitalize(kind_word(t))
                    ),
                ));
            }
        }
        if policy.is_admin_only() {
            return Err(bad(
                "RequestTypeNotAllowed",
                format!(
                    "Policy '{}' is for direct assignment by administrators only; users cannot request through it.",
                    policy.id
                ),
            ));
        }
        if !on_behalf {
            let enabled = if t.is_add() {
                rs.enable_targets_to_self_add_access
            } else if t.is_update() {
                rs.enable_targets_to_self_update_access
            } else {
                rs.enable_targets_to_self_remove_access
            };
            if !enabled {
                return Err(bad(
                    "RequestTypeNotAllowed",
                    format!(
                        "Policy '{}' does not let users {} their own access (requestorSettings.enableTargetsToSelf{}Access is false).",
                        policy.id,
                        kind_word(t),
                        capitalize(kind_word(t))
                    ),
                ));
            }
        }
    }
    if !t.is_remove() {
        let admin_only_exemption = t.is_admin() && policy.is_admin_only() && !target.is_external();
        if !admin_only_exemption && !in_scope(c, policy, catalog, target, caller.user_id())? {
            let who = target
                .object_id()
                .map(|o| format!("user '{o}'"))
                .or(target.email.as_ref().map(|e| format!("external user '{e}'")))
                .unwrap_or_else(|| "the target".into());
            let extra = if target.user.is_none() && !catalog.is_externally_visible {
                " (external users also need the catalog to be externally visible)"
            } else {
                ""
            };
            return Err(bad(
                "RequestorNotInPolicyScope",
                format!(
                    "The {who} is not in the scope of policy '{}' (allowedTargetScope {}){extra}.",
                    policy.id,
                    policy.allowed_target_scope.v1()
                ),
            ));
        }
    }
    Ok(())
}

fn capitalize(s: &str) -> String {
    let mut out = s.to_string();
    if let Some(f) = out.get_mut(0..1) {
        f.make_ascii_uppercase();
    }
    out
}

fn check_answers(policy: &Policy, input: &NewRequest, require_all: bool, admin: bool) -> Result<()> {
    for (i, a) in input.answers.iter().enumerate() {
        let target = format!("answers[{i}]");
        let Some(q) = policy.questions.iter().find(|q| q.id.eq_ignore_ascii_case(&a.question_id)) else {
            return Err(bad(
                "AnswerInvalid",
                format!(
                    "answers[{i}] answers question '{}', which policy '{}' does not ask.",
                    a.question_id, policy.id
                ),
            )
            .with_target(target));
        };
        if input.request_type.is_update() && !admin && !q.is_answer_editable {
            return Err(bad(
                "AnswerInvalid",
                format!(
                    "The answer to question '{}' cannot be changed after the request (isAnswerEditable is false).",
                    q.id
                ),
            )
            .with_target(target));
        }
        let value = a.value.clone().unwrap_or_default();
        match &q.kind {
            QuestionKind::TextInput { regex_pattern: Some(p), .. } if !p.is_empty() => {
                // A stored pattern that no longer compiles (accepted before patterns were
                // validated as enforced) refuses the answer instead of letting it through.
                let matched = grantry_domain::answer_pattern::matches(p, &value).map_err(|why| {
                    bad(
                        "InvalidPolicy",
                        format!(
                            "The pattern of question '{}' of policy '{}' cannot be enforced ({why}); an administrator must correct the policy.",
                            q.id, policy.id
                        ),
                    )
                    .with_target(target.clone())
                })?;
                if !matched {
                    return Err(bad(
                        "AnswerInvalid",
                        format!(
                            "The answer to question '{}' must match the pattern {}; got '{}'.",
                            q.id,
                            grantry_domain::limits::excerpt(p),
                            grantry_domain::limits::excerpt(&value)
                        ),
                    )
                    .with_target(target));
                }
            }
            QuestionKind::MultipleChoice { choices, is_multiple_selection_allowed } => {
                let parts: Vec<&str> = if *is_multiple_selection_allowed {
                    value.split(',').map(str::trim).collect()
                } else {
                    vec![value.trim()]
                };
                for part in parts {
                    if !choices.iter().any(|ch| ch.actual_value.eq_ignore_ascii_case(part)) {
                        let allowed: Vec<&str> = choices.iter().map(|ch| ch.actual_value.as_str()).collect();
                        return Err(bad(
                            "AnswerInvalid",
                            format!(
                                "'{}' is not a choice of question '{}'; send one of the choices' actualValue: {}.",
                                grantry_domain::limits::excerpt(part),
                                q.id,
                                allowed.join(", ")
                            ),
                        )
                        .with_target(target));
                    }
                }
            }
            _ => {}
        }
    }
    if require_all {
        for q in policy.questions.iter().filter(|q| q.is_required) {
            let answered = input.answers.iter().any(|a| {
                a.question_id.eq_ignore_ascii_case(&q.id) && a.value.as_deref().is_some_and(|v| !v.trim().is_empty())
            });
            if !answered {
                return Err(bad(
                    "AnswerRequired",
                    format!(
                        "Question '{}' ({}) of policy '{}' is required; answer it in 'answers' with answeredQuestion.id '{}'.",
                        q.id,
                        q.text.clone().unwrap_or_default(),
                        policy.id,
                        q.id
                    ),
                )
                .with_target("answers"));
            }
        }
    }
    Ok(())
}

fn check_schedule(policy: &Policy, input: &NewRequest, now: DateTime<Utc>) -> Result<()> {
    let Some(s) = &input.schedule else { return Ok(()) };
    if input.request_type.is_remove() {
        return Ok(());
    }
    if input.request_type.is_user() && !policy.requestor_settings.allow_custom_assignment_schedule {
        return Err(bad(
            "CustomScheduleNotAllowed",
            format!(
                "Policy '{}' does not let requestors choose their own schedule (allowCustomAssignmentSchedule is false); omit 'schedule'.",
                policy.id
            ),
        )
        .with_target("schedule"));
    }
    let start = s.start_date_time.unwrap_or(now);
    let end = s.expiration.end_for(start);
    if let Some(e) = end
        && e <= start
    {
        return Err(Error::invalid_property(
            "schedule.expiration",
            "The schedule must end after it starts: check schedule.expiration.endDateTime / duration.",
        ));
    }
    if policy.expiration.kind == ExpirationType::AfterDateTime
        && let Some(fixed) = policy.expiration.end_date_time
    {
        let exceeds = match s.expiration.kind {
            ExpirationType::NoExpiration => true,
            ExpirationType::NotSpecified => false,
            _ => end.is_some_and(|e| e > fixed),
        };
        if exceeds {
            return Err(bad(
                "ScheduleExceedsPolicy",
                format!(
                    "Policy '{}' ends all access at {}; request an end no later than that.",
                    policy.id,
                    fixed.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
            )
            .with_target("schedule.expiration"));
        }
    }
    Ok(())
}

pub(crate) fn check_incompatible(c: &mut dyn Conn, package_id: &str, target: &Target) -> Result<()> {
    if let Some(subject) = &target.subject {
        let row = c.query_one(
            "SELECT access_package_id FROM assignments WHERE target_subject_id = ? AND active = 1 AND access_package_id IN \
             (SELECT other_id FROM incompatible_packages WHERE access_package_id = ? \
              UNION SELECT access_package_id FROM incompatible_packages WHERE other_id = ?)",
            &[Value::from(&subject.id), Value::from(package_id), Value::from(package_id)],
        )?;
        if let Some(row) = row {
            return Err(bad(
                "IncompatibleAccess",
                format!(
                    "The target holds access package '{}', which is incompatible with access package '{package_id}'.",
                    row.text(0)?
                ),
            ));
        }
    }
    if let Some(uid) = target.object_id() {
        let row = c.query_one(
            "SELECT g.group_id FROM incompatible_groups g JOIN group_links l ON l.group_id = g.group_id \
             WHERE g.access_package_id = ? AND l.relation = 'member' AND l.member_id = ?",
            &[Value::from(package_id), Value::from(uid)],
        )?;
        if let Some(row) = row {
            return Err(bad(
                "IncompatibleAccess",
                format!(
                    "The target is a member of group '{}', which is incompatible with access package '{package_id}'.",
                    row.text(0)?
                ),
            ));
        }
    }
    Ok(())
}

pub(crate) fn existing_open_request(e: &str) -> Error {
    err(
        ErrorKind::Conflict,
        "ExistingOpenRequest",
        format!(
            "The target already has an open {e} request for this access package; wait for it to finish or cancel it."
        ),
    )
}

fn already_assigned() -> Error {
    err(
        ErrorKind::Conflict,
        "TargetAlreadyAssigned",
        "The target already has an active assignment to this access package; use an update request to change it.",
    )
}

fn resolve_policy(
    c: &mut dyn Conn,
    caller: &Caller,
    input: &NewRequest,
    package: &AccessPackage,
    catalog: &Catalog,
    target: &Target,
) -> Result<Policy> {
    if let Some(pid) = &input.policy_id {
        let policy = repo::get::<Policy>(c, pid)?.filter(|p| p.access_package_id == package.id).ok_or_else(|| {
            bad("InvalidPolicy", format!("No assignment policy '{pid}' exists for access package '{}'.", package.id))
                .with_target("assignmentPolicyId")
        })?;
        check_policy(c, caller, input.request_type, &policy, catalog, target)?;
        return Ok(policy);
    }
    let admin = input.request_type.is_admin();
    let mut candidates: Vec<(u8, Policy)> =
        repo::find_all::<Policy>(c, "access_package_id = ?", &[Value::from(&package.id)])?
            .into_iter()
            .filter_map(|p| category(&p, admin).map(|k| (k, p)))
            .collect();
    // Stable: policies come in creation order, so the oldest of a category wins.
    candidates.sort_by_key(|(k, _)| *k);
    let mut top: Option<u8> = None;
    let mut first_error: Option<Error> = None;
    for (k, p) in candidates {
        if top.is_some_and(|t| k > t) {
            break;
        }
        let admin_only_ok = admin && p.is_admin_only() && !target.is_external();
        if !admin_only_ok && !in_scope(c, &p, catalog, target, caller.user_id())? {
            continue;
        }
        top = Some(k);
        match check_policy(c, caller, input.request_type, &p, catalog, target) {
            Ok(()) => return Ok(p),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| {
        bad(
            "RequestorNotInPolicyScope",
            format!(
                "No assignment policy of access package '{}' has the target in its scope; name a policy with 'assignmentPolicyId'.",
                package.id
            ),
        )
    }))
}

/// Every rule a new request must pass, in order; returns what it resolved to.
///
/// An update or remove naming an assignment the caller may not read answers as if the
/// assignment did not exist: refusals and state errors would otherwise tell an outsider
/// which ids exist and whether they are still active.
pub fn evaluate(c: &mut dyn Conn, caller: &Caller, input: &NewRequest, now: DateTime<Utc>) -> Result<Plan> {
    check_sender(caller, input.request_type)?;
    let hidden = match (&input.assignment_id, input.request_type.is_add()) {
        (Some(id), false) => match repo::get::<Assignment>(c, id)? {
            Some(a) => !crate::assignments::may_read(c, caller, &a)?,
            None => false,
        },
        _ => false,
    };
    let lookups = crate::generation::membership_lookups();
    evaluate_rules(c, caller, input, now)
        .map(|mut plan| {
            plan.reads_memberships = crate::generation::membership_lookups() != lookups;
            plan
        })
        .map_err(|e| match (&input.assignment_id, hidden) {
            (Some(id), true) if matches!(e.kind, ErrorKind::Forbidden | ErrorKind::BadRequest) => {
                Error::not_found("accessPackageAssignment", id)
            }
            _ => e,
        })
}

/// The request type must be one clients send, by the kind of caller and with the token
/// permission it needs.
fn check_sender(caller: &Caller, t: RequestType) -> Result<()> {
    if !t.is_admin() && !t.is_user() {
        return Err(bad("RequestTypeNotAllowed", format!("Clients cannot create '{}' requests.", t.v1()))
            .with_target("requestType"));
    }
    if t.is_admin() {
        caller.require(perms::EM_WRITE)?;
    } else {
        if caller.is_app() {
            return Err(err(
                ErrorKind::Forbidden,
                "RequestorNotAllowed",
                format!(
                    "'{}' requests are made by a signed-in user; an application sends admin request types (adminAdd, adminUpdate, adminRemove).",
                    t.v1()
                ),
            ));
        }
        caller.require(perms::EM_SUBJECT)?;
    }
    Ok(())
}

fn evaluate_rules(c: &mut dyn Conn, caller: &Caller, input: &NewRequest, now: DateTime<Utc>) -> Result<Plan> {
    let t = input.request_type;
    check_sender(caller, t)?;

    // The assignment an update or remove concerns.
    let assignment = if t.is_add() {
        None
    } else {
        let found = match &input.assignment_id {
            Some(id) => {
                Some(repo::get::<Assignment>(c, id)?.ok_or_else(|| Error::not_found("accessPackageAssignment", id))?)
            }
            None => {
                let package_id = input.access_package_id.clone().ok_or_else(|| {
                    Error::invalid_property(
                        "assignment.id",
                        format!("A '{}' request must name the assignment: assignment.id (or accessPackageId for your own assignment).", t.v1()),
                    )
                })?;
                let object_id = match input.target.as_ref().and_then(|x| x.object_id.clone()) {
                    Some(o) => Some(o),
                    None => caller.user_id().map(str::to_string),
                };
                let subject = match object_id {
                    Some(o) => subject_by_object_id(c, &o)?,
                    None => None,
                };
                let mut where_sql = "access_package_id = ? AND active = 1 AND target_subject_id = ?".to_string();
                let mut params = vec![Value::from(&package_id), Value::from(subject.map(|s| s.id).unwrap_or_default())];
                if let Some(p) = &input.policy_id {
                    where_sql.push_str(" AND policy_id = ?");
                    params.push(Value::from(p));
                }
                Some(repo::find_one::<Assignment>(c, &where_sql, &params)?.ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        "ResourceNotFound",
                        format!(
                            "The target has no active assignment to access package '{package_id}' to {}.",
                            kind_word(t)
                        ),
                    )
                })?)
            }
        };
        let a = found.ok_or_else(|| Error::internal("assignment lookup"))?;
        if !a.state.is_active() {
            return Err(bad(
                "AssignmentNotActive",
                format!(
                    "Assignment '{}' is {}; only an active assignment can be updated or removed.",
                    a.id,
                    a.state.v1()
                ),
            ));
        }
        Some(a)
    };

    // Package and catalog.
    let package_id = match (&assignment, &input.access_package_id, &input.policy_id) {
        (Some(a), _, _) => a.access_package_id.clone(),
        (None, Some(p), _) => p.clone(),
        (None, None, Some(pid)) => repo::get::<Policy>(c, pid)?.map(|p| p.access_package_id).ok_or_else(|| {
            bad("InvalidPolicy", format!("No assignment policy '{pid}' exists.")).with_target("assignmentPolicyId")
        })?,
        (None, None, None) => {
            return Err(Error::invalid_property(
                "assignment.accessPackageId",
                "Name the access package: assignment.accessPackageId (or accessPackage {\"id\": …}).",
            ));
        }
    };
    let package = repo::get::<AccessPackage>(c, &package_id)?.ok_or_else(|| {
        bad("InvalidAccessPackage", format!("No access package '{package_id}' exists.")).with_target("accessPackageId")
    })?;
    let catalog = repo::get::<Catalog>(c, &package.catalog_id)?
        .ok_or_else(|| Error::internal(format!("catalog of package {} is missing", package.id)))?;
    if !t.is_remove() && catalog.state != grantry_domain::enums::CatalogState::Published {
        return Err(bad(
            "InvalidAccessPackage",
            format!(
                "Access package '{}' is in catalog '{}', which is not published; publish the catalog first.",
                package.id, catalog.id
            ),
        ));
    }

    // Target.
    let target = match &assignment {
        Some(a) => {
            let subject = repo::get::<Subject>(c, &a.target_subject_id)?;
            let user = match subject.as_ref().and_then(|s| s.object_id.clone()) {
                Some(o) => repo::get::<User>(c, &o)?,
                None => None,
            };
            Target {
                email: subject.as_ref().and_then(|s| s.email.clone()),
                display_name: subject.as_ref().and_then(|s| s.display_name.clone()),
                subject,
                user,
            }
        }
        None => {
            let named = input.target.clone().filter(|x| x.object_id.is_some() || x.email.is_some());
            let named = match named {
                Some(n) => n,
                None if t.is_user() => {
                    TargetRef { object_id: caller.user_id().map(str::to_string), ..Default::default() }
                }
                None => {
                    return Err(Error::invalid_property(
                        "assignment.targetId",
                        "An adminAdd request must name the target: assignment.targetId, or target {\"objectId\": …} / {\"email\": …}.",
                    ));
                }
            };
            if let Some(oid) = &named.object_id {
                let user = repo::get::<User>(c, oid)?.ok_or_else(|| {
                    bad("InvalidTarget", format!("No user with object id '{oid}' exists in the directory."))
                        .with_target("assignment.targetId")
                })?;
                Target {
                    subject: subject_by_object_id(c, oid)?,
                    email: user.mail.clone(),
                    display_name: Some(user.display_name.clone()),
                    user: Some(user),
                }
            } else {
                let email = named.email.clone().unwrap_or_default();
                if !email.contains('@') {
                    return Err(Error::invalid_property(
                        "assignment.target.email",
                        format!("'{email}' is not an email address."),
                    ));
                }
                match user_by_email(c, &email)? {
                    Some(user) => Target {
                        subject: subject_by_object_id(c, &user.id)?,
                        email: Some(email),
                        display_name: Some(user.display_name.clone()),
                        user: Some(user),
                    },
                    None => Target {
                        subject: repo::find_one(
                            c,
                            "email_lower = ? AND object_id IS NULL",
                            &[Value::from(email.to_lowercase())],
                        )?,
                        email: Some(email),
                        display_name: named.display_name.clone(),
                        user: None,
                    },
                }
            }
        }
    };

    // Caller authorization for admin types.
    if t.is_admin() {
        caller.require_in_catalog(&catalog.id, CatalogRight::ManageAssignments)?;
    }

    // Policy.
    let policy = match &assignment {
        Some(a) => {
            let policy = repo::get::<Policy>(c, &a.policy_id)?.ok_or_else(|| {
                bad("InvalidPolicy", format!("The policy '{}' of assignment '{}' no longer exists.", a.policy_id, a.id))
            })?;
            check_policy(c, caller, t, &policy, &catalog, &target)?;
            policy
        }
        None => resolve_policy(c, caller, input, &package, &catalog, &target)?,
    };

    if t.is_user()
        && !t.is_remove()
        && policy.approval.is_requestor_justification_required
        && input.justification.is_none()
    {
        return Err(bad(
            "JustificationRequired",
            format!("Policy '{}' requires a justification; add 'justification' to the request.", policy.id),
        )
        .with_target("justification"));
    }
    if !t.is_remove() {
        check_answers(&policy, input, t == RequestType::UserAdd, t.is_admin())?;
    }
    check_schedule(&policy, input, now)?;
    if t.is_add() {
        check_incompatible(c, &package.id, &target)?;
    }
    if let Some(subject) = &target.subject {
        if !t.is_remove() {
            let open = c.query_one(
                "SELECT 1 FROM requests WHERE target_subject_id = ? AND access_package_id = ? AND open_kind = ?",
                &[Value::from(&subject.id), Value::from(&package.id), Value::from(kind_word(t))],
            )?;
            if open.is_some() {
                return Err(existing_open_request(kind_word(t)));
            }
        }
        if t.is_add() {
            let active = c.query_one(
                "SELECT 1 FROM assignments WHERE target_subject_id = ? AND access_package_id = ? AND active = 1",
                &[Value::from(&subject.id), Value::from(&package.id)],
            )?;
            if active.is_some() {
                return Err(already_assigned());
            }
        }
    }
    Ok(Plan { package, catalog, policy, target, assignment, reads_memberships: false })
}

/// The subject for a directory user, created on first use. A directory user's subject id
/// is their object id.
pub(crate) fn ensure_user_subject(c: &mut dyn Conn, user: &User, now: DateTime<Utc>) -> Result<Subject> {
    ensure_user_subject_found(c, user, now).map(|(s, _)| s)
}

/// [`ensure_user_subject`], also saying whether the subject existed already.
fn ensure_user_subject_found(c: &mut dyn Conn, user: &User, now: DateTime<Utc>) -> Result<(Subject, bool)> {
    let object_id = ids::normalize(&user.id);
    // The user's subject, or another subject already holding the id a new one would get.
    let rows = c.query(
        "SELECT body FROM subjects WHERE object_id = ? OR id = ? ORDER BY seq",
        &[Value::from(&object_id), Value::from(&user.id)],
    )?;
    let mut id_taken = false;
    for row in rows {
        let s: Subject = repo::from_body(&row.text(0)?)?;
        if s.object_id.as_deref().is_some_and(|o| ids::normalize(o) == object_id) {
            return Ok((s, true));
        }
        id_taken = true;
    }
    let id = if id_taken { ids::new_id() } else { user.id.clone() };
    let s = Subject {
        id,
        object_id: Some(user.id.clone()),
        email: user.mail.clone(),
        display_name: Some(user.display_name.clone()),
        principal_name: Some(user.user_principal_name.clone()),
        subject_type: SubjectType::User,
        subject_lifecycle: if user.user_type == UserType::Guest {
            SubjectLifecycle::Governed
        } else {
            SubjectLifecycle::NotDefined
        },
        connected_organization_id: None,
        created_date_time: now,
    };
    repo::insert_later(c, &s)?;
    Ok((s, false))
}

/// The target's subject, created on first use; also says whether it existed already.
fn ensure_target_subject(c: &mut dyn Conn, target: &Target, now: DateTime<Utc>) -> Result<(Subject, bool)> {
    if let Some(s) = &target.subject {
        return Ok((s.clone(), true));
    }
    if let Some(user) = &target.user {
        return ensure_user_subject_found(c, user, now);
    }
    let s = Subject {
        id: ids::new_id(),
        object_id: None,
        email: target.email.clone(),
        display_name: target.display_name.clone(),
        principal_name: target.email.clone(),
        subject_type: SubjectType::User,
        subject_lifecycle: SubjectLifecycle::Governed,
        connected_organization_id: None,
        created_date_time: now,
    };
    repo::insert_later(c, &s)?;
    Ok((s, false))
}

/// Records the connected organization of an external target on its subject; under a policy
/// for all external users, a requestor whose domain no organization knows yet brings a
/// `proposed` organization into being (as in Entra).
fn record_organization(c: &mut dyn Conn, now: DateTime<Utc>, plan: &Plan, subject: &mut Subject) -> Result<()> {
    let mut org = target_organization(c, &plan.target)?;
    if org.is_none() && plan.policy.allowed_target_scope == AllowedTargetScope::AllExternalUsers {
        let domain = plan
            .target
            .user
            .as_ref()
            .and_then(crate::connected::home_domain)
            .or_else(|| plan.target.email.as_deref().and_then(crate::connected::email_domain));
        if let Some(d) = domain {
            org = Some(crate::connected::propose(c, now, &d)?);
        }
    }
    let id = org.map(|o| o.id);
    if id.is_some() && subject.connected_organization_id != id {
        subject.connected_organization_id = id;
        repo::update(c, subject)?;
    }
    Ok(())
}

fn build_request(
    caller: &Caller,
    input: &NewRequest,
    plan: &Plan,
    target_subject_id: String,
    requestor_subject_id: Option<String>,
    now: DateTime<Utc>,
) -> AssignmentRequest {
    AssignmentRequest {
        id: ids::new_id(),
        request_type: input.request_type,
        state: RequestState::Submitted,
        status: RequestStatus::Accepted,
        access_package_id: plan.package.id.clone(),
        catalog_id: plan.catalog.id.clone(),
        policy_id: Some(plan.policy.id.clone()),
        assignment_id: plan.assignment.as_ref().map(|a| a.id.clone()),
        target_subject_id,
        requestor_subject_id,
        created_by: caller.id().to_string(),
        justification: input.justification.clone(),
        answers: input.answers.clone(),
        schedule: input.schedule.clone().unwrap_or_default(),
        is_validation_only: input.is_validation_only,
        created_date_time: now,
        completed_date_time: None,
        custom_extension_callout_instances: Vec::new(),
    }
}

/// Creates an assignment request (201 as submitted/Accepted); processing follows in the
/// background. With `isValidationOnly` the request is checked and echoed, not stored.
pub async fn create_request(app: &App, caller: &Caller, input: NewRequest) -> Result<AssignmentRequest> {
    create_request_recorded(app, caller, input, None).await
}

/// [`create_request`], also recording the rendered response under an idempotency key in
/// the same transaction as the request (see [`crate::idempotency`]).
pub async fn create_request_recorded(
    app: &App,
    caller: &Caller,
    input: NewRequest,
    save: Option<crate::idempotency::Save<AssignmentRequest>>,
) -> Result<AssignmentRequest> {
    let now = app.now();
    let (c2, i2) = (caller.clone(), input.clone());
    let (plan, token, requestor) = app
        .store
        .read(move |c| {
            let plan = evaluate(c, &c2, &i2, now)?;
            if i2.is_validation_only {
                return Ok((plan, None, None));
            }
            // Whether the writer may rely on this evaluation (see `reusable`), and the
            // requestor's directory entry and subject, which the writer needs too.
            if !reusable(c, &i2, &plan)? {
                return Ok((plan, None, None));
            }
            let token = Some(crate::generation::token(c)?);
            let requestor = match c2.user_id() {
                Some(uid) => match repo::get::<User>(c, uid)? {
                    Some(u) => {
                        let subject = subject_by_object_id(c, &u.id)?;
                        Some((u, subject))
                    }
                    None => None,
                },
                None => None,
            };
            Ok((plan, token, requestor))
        })
        .await?;
    if input.is_validation_only {
        let target_id =
            plan.target.subject.as_ref().map(|s| s.id.clone()).or(plan.target.object_id().map(str::to_string));
        return Ok(build_request(caller, &input, &plan, target_id.unwrap_or_default(), None, now));
    }
    let caller = caller.clone();
    let request_type = input.request_type;
    let request = app
        .store
        .write(move |c| {
            let current = crate::generation::token(c)?;
            let (plan, target, requestor) = match token {
                // Nothing the evaluation read has changed since: only what concurrent
                // requests change is checked again.
                Some(t) if t == current => {
                    let (target, existed) = ensure_target_subject(c, &plan.target, now)?;
                    if existed && input.request_type.is_add() {
                        let active = c.query_one(
                            "SELECT 1 FROM assignments WHERE target_subject_id = ? AND access_package_id = ? AND active = 1",
                            &[Value::from(&target.id), Value::from(&plan.package.id)],
                        )?;
                        if active.is_some() {
                            return Err(already_assigned());
                        }
                    }
                    let requestor = match requestor {
                        Some((_, Some(subject))) => Some(subject.id),
                        Some((user, None)) => Some(ensure_user_subject(c, &user, now)?.id),
                        None => None,
                    };
                    (plan, target, requestor)
                }
                _ => {
                    let plan = evaluate(c, &caller, &input, now)?;
                    let (target, _) = ensure_target_subject(c, &plan.target, now)?;
                    let requestor = match caller.user_id() {
                        Some(uid) => match repo::get::<User>(c, uid)? {
                            Some(u) => Some(ensure_user_subject(c, &u, now)?.id),
                            None => None,
                        },
                        None => None,
                    };
                    (plan, target, requestor)
                }
            };
            let mut target = target;
            if plan.target.is_external() && !input.request_type.is_remove() {
                record_organization(c, now, &plan, &mut target)?;
            }
            crate::generation::with_known(current, || {
                let r = build_request(&caller, &input, &plan, target.id.clone(), requestor, now);
                // Sent with the next statement; a second open request is refused there by the
                // database (mapped below).
                repo::insert_later(c, &r)?;
                audit::record(
                    c,
                    AuditEvent {
                        at: now,
                        actor_id: Some(caller.id()),
                        entity_type: "accessPackageAssignmentRequest",
                        entity_id: &r.id,
                        action: "submitted",
                        detail: json!({ "requestType": r.request_type.v1(), "accessPackageId": r.access_package_id,
                                        "targetSubjectId": r.target_subject_id, "justification": r.justification }),
                    },
                )?;
                if let Some(save) = save {
                    save.record(c, &r, now)?;
                }
                crate::webhooks::request_event(c, now, "created", &r)?;
                process_in_place(c, now, &r, &delivery::Checked { policy: &plan.policy, subject: &target })?;
                Ok(r)
            })
        })
        .await
        .map_err(|e| match grantry_store::Constraint::of(&e) {
            Some(grantry_store::Constraint::RequestsOneOpen) => existing_open_request(kind_word(request_type)),
            _ => e,
        })?;
    app.work_signal.notify_one();
    app.outbox_signal.notify_one();
    Ok(request)
}

/// Whether the writer may reuse a read-side evaluation when the evaluation token has not
/// changed: adds only (updates and removes concern an assignment other requests may end),
/// for a directory user (an external target's subject is found by mail, which another
/// request may create meanwhile), whose evaluation read no group membership, for a package
/// without incompatibilities (separation of duties depends on the target's other
/// assignments, which other requests change).
fn reusable(c: &mut dyn Conn, input: &NewRequest, plan: &Plan) -> Result<bool> {
    if !input.request_type.is_add() || plan.reads_memberships || plan.target.user.is_none() {
        return Ok(false);
    }
    let package = Value::from(&plan.package.id);
    let incompatible = c.query_one(
        "SELECT 1 FROM incompatible_packages WHERE access_package_id = ? OR other_id = ? \
         UNION ALL SELECT 1 FROM incompatible_groups WHERE access_package_id = ?",
        &[package.clone(), package.clone(), package],
    )?;
    Ok(incompatible.is_none())
}

/// Processes a just-submitted request in its own transaction (approval, schedule or
/// delivery), so that access needing no approval exists once the POST is acknowledged. The
/// caller still receives the request as submitted, as Graph answers. Should processing fail
/// (e.g. a database error), only its part is undone and a `request.process` job retries it.
fn process_in_place(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    submitted: &AssignmentRequest,
    checked: &delivery::Checked,
) -> Result<()> {
    let mut r = submitted.clone();
    // The created-stage callout belongs to the submission itself (not to processing, which
    // a job may repeat); when its extension waits for a callback, processing waits too.
    if crate::callouts::fire_and_maybe_hold_with(
        c,
        now,
        grantry_domain::enums::CustomExtensionStage::AssignmentRequestCreated,
        &mut r,
        Some(checked.policy),
    )? {
        return Ok(());
    }
    match crate::jobs::in_savepoint(c, |c| delivery::process_checked(c, now, &mut r, checked))? {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::warn!(request = %r.id, error = %e, "processing a new request failed; a job will retry it");
            crate::jobs::enqueue(c, JOB_PROCESS, &submitted.id, now, json!({}))
        }
    }
}

/// Whether the caller may read `r`: catalog readers (and applications with read
/// permission) see all of a catalog; anyone sees requests they are the target or requestor of.
fn may_read(caller: &Caller, catalog_id: &str, own: bool) -> bool {
    (caller.has_permission(perms::EM_READ) && caller.may_in_catalog(catalog_id, CatalogRight::Read))
        || (own && caller.has_permission(perms::EM_SUBJECT_READ))
}

pub async fn get_request(app: &App, caller: &Caller, id: &str) -> Result<AssignmentRequest> {
    caller.require(perms::EM_SUBJECT_READ)?;
    let id = ids::normalize(id);
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let r = repo::get::<AssignmentRequest>(c, &id)?
                .ok_or_else(|| Error::not_found("accessPackageAssignmentRequest", &id))?;
            let me = caller_subject_id(c, &caller)?;
            let own =
                me.is_some() && (me.as_deref() == Some(r.target_subject_id.as_str()) || me == r.requestor_subject_id);
            if may_read(&caller, &r.catalog_id, own) {
                Ok(r)
            } else {
                Err(Error::not_found("accessPackageAssignmentRequest", &id))
            }
        })
        .await
}

/// The audit trail of one request, oldest first, for whoever may read the request.
pub async fn history(app: &App, caller: &Caller, id: &str) -> Result<Vec<audit::StoredEvent>> {
    let request = get_request(app, caller, id).await?;
    app.store.read(move |c| audit::of_entity(c, &request.id)).await
}

/// Which of the caller's own items a list is restricted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mine {
    /// No restriction beyond visibility.
    All,
    /// `filterByCurrentUser(on='target')`.
    Target,
    /// `filterByCurrentUser(on='createdBy')`.
    CreatedBy,
    /// `filterByCurrentUser(on='approver')`: pending approvals awaiting the caller.
    Approver,
    /// `My()`: target or requestor.
    Mine,
}

impl Mine {
    /// Parses the `(on='…')` segment of `filterByCurrentUser`.
    pub fn parse_on(args: &str, allowed: &[Mine]) -> Result<Mine> {
        let inner = args.trim().trim_start_matches('(').trim_end_matches(')');
        let value = inner.split_once('=').map(|(_, v)| v).unwrap_or(inner).trim().trim_matches('\'').trim_matches('"');
        let m = match value.to_ascii_lowercase().as_str() {
            "target" => Mine::Target,
            "createdby" => Mine::CreatedBy,
            "approver" => Mine::Approver,
            _ => Mine::All,
        };
        if m == Mine::All || !allowed.contains(&m) {
            let names: Vec<&str> = allowed
                .iter()
                .map(|m| match m {
                    Mine::Target => "'target'",
                    Mine::CreatedBy => "'createdBy'",
                    Mine::Approver => "'approver'",
                    _ => "",
                })
                .collect();
            return Err(bad(
                "BadRequest",
                format!("filterByCurrentUser: 'on' must be one of {}; got '{value}'.", names.join(", ")),
            )
            .with_target("on"));
        }
        Ok(m)
    }
}

/// The visibility clause and the `Mine` restriction, for `requests` or `assignments`.
pub(crate) fn visibility(c: &mut dyn Conn, caller: &Caller, mine: Mine, table: &str) -> Result<(String, Vec<Value>)> {
    let me = caller_subject_id(c, caller)?.unwrap_or_else(|| "-".into());
    if mine != Mine::All && caller.is_app() {
        return Err(Error::forbidden(
            "filterByCurrentUser and My() are for signed-in users; applications list the collection instead.",
        ));
    }
    if mine != Mine::All {
        caller.require(perms::EM_SUBJECT_READ)?;
    }
    let own_requestor = if table == "requests" { " OR requestor_subject_id = ?" } else { "" };
    match mine {
        Mine::Target => return Ok(("target_subject_id = ?".into(), vec![Value::from(me)])),
        Mine::CreatedBy => {
            let caller_id = Value::from(caller.id());
            return Ok(if table == "requests" {
                ("created_by = ?".into(), vec![caller_id])
            } else {
                (
                    "id IN (SELECT assignment_id FROM requests WHERE created_by = ? AND assignment_id IS NOT NULL)"
                        .into(),
                    vec![caller_id],
                )
            });
        }
        Mine::Approver => {
            return Ok(crate::approvals::id_in("id", &crate::approvals::awaiting_ids(c, caller.id())?));
        }
        Mine::Mine => {
            let mut p = vec![Value::from(&me)];
            if table == "requests" {
                p.push(Value::from(&me));
            }
            return Ok((format!("(target_subject_id = ?{own_requestor})"), p));
        }
        Mine::All => {}
    }
    if !caller.has_permission(perms::EM_READ) {
        caller.require(perms::EM_SUBJECT_READ)?;
        let mut p = vec![Value::from(&me)];
        if table == "requests" {
            p.push(Value::from(&me));
        }
        return Ok((format!("(target_subject_id = ?{own_requestor})"), p));
    }
    match caller.readable_catalogs() {
        None => Ok((String::new(), vec![])),
        Some(cats) => {
            let mut params: Vec<Value> = cats.iter().map(Value::from).collect();
            let marks = if cats.is_empty() { "''".to_string() } else { vec!["?"; cats.len()].join(", ") };
            params.push(Value::from(&me));
            if table == "requests" {
                params.push(Value::from(&me));
            }
            Ok((format!("(catalog_id IN ({marks}) OR target_subject_id = ?{own_requestor})"), params))
        }
    }
}

pub async fn list_requests(
    app: &App,
    caller: &Caller,
    mine: Mine,
    options: crate::listing::ListOptions,
) -> Result<crate::listing::Listed<AssignmentRequest>> {
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let (text, params) = visibility(c, &caller, mine, "requests")?;
            let scope = if text.trim().is_empty() { Vec::new() } else { vec![Sql { text, params }] };
            crate::listing::list(c, crate::filters::REQUEST_FIELDS, scope, &options)
        })
        .await
}

/// Loads a request for a write and checks the caller may act on it with `right`, or (when
/// `own_ok`) is its target or requestor.
fn load_for_action(c: &mut dyn Conn, caller: &Caller, id: &str, own_ok: bool) -> Result<AssignmentRequest> {
    // A token without any permission that could allow this is refused before the lookup.
    caller.require(if own_ok { perms::EM_SUBJECT } else { perms::EM_WRITE })?;
    let r =
        repo::get::<AssignmentRequest>(c, id)?.ok_or_else(|| Error::not_found("accessPackageAssignmentRequest", id))?;
    let me = caller_subject_id(c, caller)?;
    let own = me.is_some() && (me.as_deref() == Some(r.target_subject_id.as_str()) || me == r.requestor_subject_id);
    if caller.has_permission(perms::EM_WRITE) && caller.may_in_catalog(&r.catalog_id, CatalogRight::ManageAssignments) {
        return Ok(r);
    }
    if own_ok && own && caller.has_permission(perms::EM_SUBJECT) {
        return Ok(r);
    }
    if may_read(caller, &r.catalog_id, own) {
        return Err(Error::forbidden(format!(
            "Acting on request '{id}' needs the Access package assignment manager role on its catalog{}.",
            if own_ok { " (or being its requestor or target)" } else { "" }
        )));
    }
    Err(Error::not_found("accessPackageAssignmentRequest", id))
}

fn invalid_state(r: &AssignmentRequest, what: &str, allowed: &str) -> Error {
    bad(
        "InvalidRequestState",
        format!("Request '{}' is {} ({}); it can be {what} only when it is {allowed}.", r.id, r.state.v1(), r.status),
    )
}

pub async fn cancel_request(app: &App, caller: &Caller, id: &str) -> Result<()> {
    let id = ids::normalize(id);
    let now = app.now();
    let caller = caller.clone();
    app.store
        .write(move |c| {
            let mut r = load_for_action(c, &caller, &id, true)?;
            if !matches!(r.state, RequestState::Submitted | RequestState::PendingApproval | RequestState::Scheduled) {
                return Err(invalid_state(&r, "canceled", "submitted, pendingApproval or scheduled"));
            }
            cancel_open(c, now, &mut r, Some(caller.id()), json!({}))?;
            // Canceled by someone other than the people it is about: tell them.
            let (target, requestor) = crate::approvals::parties_of(c, &r)?;
            let own = caller.user_id().is_some_and(|u| Some(u) == target.as_deref() || Some(u) == requestor.as_deref());
            if !own {
                let actor = match caller.user_id() {
                    Some(u) => crate::approvals::user_name(c, u)?.unwrap_or_else(|| u.to_string()),
                    None => "an application".to_string(),
                };
                crate::notify::request_canceled(c, now, &r, &actor)?;
            }
            Ok(())
        })
        .await
}

/// Cancels an open request: its approval is closed, its pending jobs dropped, and the
/// change announced and audited (`actor_id` `None` when the service itself cancels it).
pub(crate) fn cancel_open(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    actor_id: Option<&str>,
    detail: serde_json::Value,
) -> Result<()> {
    if r.state == RequestState::PendingApproval {
        crate::approvals::cancel(c, &r.id)?;
    }
    r.state = RequestState::Canceled;
    r.status = RequestStatus::Canceled;
    r.completed_date_time = Some(now);
    repo::update(c, r)?;
    crate::webhooks::request_event(c, now, "canceled", r)?;
    crate::jobs::cancel(c, JOB_PROCESS, &r.id)?;
    crate::jobs::cancel(c, JOB_START, &r.id)?;
    crate::jobs::cancel(c, crate::callouts::JOB_CALLBACK_TIMEOUT, &r.id)?;
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id,
            entity_type: "accessPackageAssignmentRequest",
            entity_id: &r.id,
            action: "canceled",
            detail,
        },
    )
}

pub async fn delete_request(app: &App, caller: &Caller, id: &str) -> Result<()> {
    let id = ids::normalize(id);
    let now = app.now();
    let caller = caller.clone();
    app.store
        .write(move |c| {
            let r = load_for_action(c, &caller, &id, false)?;
            if r.state.is_open() {
                return Err(invalid_state(
                    &r,
                    "deleted",
                    "finished (delivered, denied, canceled, deliveryFailed or partiallyDelivered)",
                ));
            }
            repo::delete::<AssignmentRequest>(c, &r.id)?;
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(caller.id()),
                    entity_type: "accessPackageAssignmentRequest",
                    entity_id: &r.id,
                    action: "deleted",
                    detail: json!({}),
                },
            )
        })
        .await
}

pub async fn reprocess_request(app: &App, caller: &Caller, id: &str) -> Result<()> {
    let id = ids::normalize(id);
    let now = app.now();
    let caller = caller.clone();
    app.store
        .write(move |c| {
            let mut r = load_for_action(c, &caller, &id, false)?;
            if !matches!(r.state, RequestState::DeliveryFailed | RequestState::PartiallyDelivered) {
                return Err(invalid_state(&r, "reprocessed", "deliveryFailed or partiallyDelivered"));
            }
            if r.completed_date_time.is_some_and(|t| now - t > chrono::Duration::days(REPROCESS_WINDOW_DAYS)) {
                return Err(bad(
                    "InvalidRequestState",
                    format!("Request '{}' completed more than {REPROCESS_WINDOW_DAYS} days ago and can no longer be reprocessed; submit a new request.", r.id),
                ));
            }
            audit::record(
                c,
                AuditEvent { at: now, actor_id: Some(caller.id()), entity_type: "accessPackageAssignmentRequest", entity_id: &r.id, action: "reprocess", detail: json!({}) },
            )?;
            delivery::redeliver(c, now, &mut r)
        })
        .await?;
    // Pushes to provisioning targets put back in line go now.
    app.outbox_signal.notify_one();
    Ok(())
}

/// The request's related entities for `$expand`.
pub async fn request_related(
    app: &App,
    r: &AssignmentRequest,
) -> Result<(Option<AccessPackage>, Option<Subject>, Option<Assignment>, Option<Subject>)> {
    let r = r.clone();
    app.store
        .read(move |c| {
            let package = repo::get::<AccessPackage>(c, &r.access_package_id)?;
            let requestor = match &r.requestor_subject_id {
                Some(s) => repo::get::<Subject>(c, s)?,
                None => None,
            };
            let assignment = match &r.assignment_id {
                Some(a) => repo::get::<Assignment>(c, a)?,
                None => None,
            };
            let target = repo::get::<Subject>(c, &r.target_subject_id)?;
            Ok((package, requestor, assignment, target))
        })
        .await
}

/// Treats a conflict with the one-open-request or one-active-assignment index as the
/// matching 409.
pub fn map_conflict(e: Error) -> Error {
    match grantry_store::Constraint::of(&e) {
        Some(grantry_store::Constraint::AssignmentsOneActive) => already_assigned(),
        Some(grantry_store::Constraint::RequestsOneOpen) => existing_open_request("add"),
        None => e,
    }
}

/// `resume`: the answer of a custom extension the request waits for (Access package
/// assignment manager on the request's catalog, as Entra requires of the workflow's
/// identity). Refused, with nothing changed, for an unknown stage instance, a request that is
/// finished or not waiting, or a callout already answered.
pub async fn resume_request(app: &App, caller: &Caller, id: &str, input: crate::callouts::Resume) -> Result<()> {
    let id = ids::normalize(id);
    let now = app.now();
    let caller = caller.clone();
    app.store
        .write(move |c| {
            let mut r = load_for_action(c, &caller, &id, false)?;
            crate::callouts::resume(c, now, &mut r, &input, caller.id())
        })
        .await?;
    app.work_signal.notify_one();
    app.outbox_signal.notify_one();
    Ok(())
}
