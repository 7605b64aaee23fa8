//! Custom extension callouts: at each stage a policy names (`customExtensionStageSettings`),
//! a callout instance is recorded on the request (or, before expiry, on the assignment) and
//! an outbox message carrying Entra's documented payload is written, in the transaction of
//! the transition that reached the stage. The outbox delivers it (signed, retried with
//! backoff); [`after_delivery`] records the outcome on the instance.
//!
//! The payload is Entra's flat PascalCase body (integrations reference §2.3–2.4), so a
//! workflow written for Entra can be pointed at Grantry. The stage instance id is also the
//! message's `webhook-id`: a retry after a lost answer carries the same id.

use crate::audit::{self, AuditEvent};
use crate::outbox::{self, Attempt};
use chrono::{DateTime, Utc};
use grantry_domain::enums::{CustomExtensionStage, RequestStatus};
use grantry_domain::model::*;
use grantry_domain::{Result, ids};
use grantry_store::{Conn, repo};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a callout message is about (its outbox `context`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalloutContext {
    pub request_id: Option<String>,
    pub assignment_id: Option<String>,
    pub instance_id: String,
    pub custom_extension_id: String,
    pub stage: CustomExtensionStage,
}

/// The resume path Entra puts in `CallbackUriPath` (below the version root; Grantry routes
/// it under `/v1.0` and `/beta`).
pub fn callback_path(request_id: &str) -> String {
    format!("/identityGovernance/entitlementManagement/accessPackageAssignmentRequests/{request_id}/resume")
}

fn named(id: &str, display_name: &str, description: &Option<String>) -> Value {
    json!({ "Id": id, "DisplayName": display_name, "Description": description })
}

fn subject_json(s: Option<&Subject>) -> Value {
    match s {
        None => Value::Null,
        Some(s) => json!({
            "Id": s.id,
            "ObjectId": s.object_id,
            "DisplayName": s.display_name,
            "Email": s.email,
            "ConnectedOrganization": s.connected_organization_id.as_ref().map(|id| json!({ "Id": id })),
        }),
    }
}

fn answers_json(answers: &[Answer]) -> Value {
    Value::Array(
        answers
            .iter()
            .map(|a| {
                json!({
                    "@odata.type": a.question_type.clone().unwrap_or_else(|| "#microsoft.graph.accessPackageAnswerString".into()),
                    "value": a.value,
                    "displayValue": a.display_value,
                    "answeredQuestion": { "id": a.question_id },
                })
            })
            .collect(),
    )
}

/// The stage setting of `policy` for `stage` and its extension, if the policy has one.
fn setting_for(
    c: &mut dyn Conn,
    policy_id: Option<&str>,
    stage: CustomExtensionStage,
    known: Option<&Policy>,
) -> Result<Option<(Policy, CustomExtension)>> {
    let Some(policy_id) = policy_id else { return Ok(None) };
    // The policy the caller holds (read in this transaction) saves looking it up again.
    if let Some(p) = known.filter(|p| p.id == policy_id)
        && !p.custom_extension_stage_settings.iter().any(|s| s.stage == stage)
    {
        return Ok(None);
    }
    let Some(policy) = repo::get::<Policy>(c, policy_id)? else { return Ok(None) };
    let Some(setting) = policy.custom_extension_stage_settings.iter().find(|s| s.stage == stage) else {
        return Ok(None);
    };
    let Some(extension) = repo::get::<CustomExtension>(c, &ids::normalize(&setting.custom_extension_id))? else {
        return Ok(None);
    };
    Ok(Some((policy, extension)))
}

/// The audience of the bearer token a callout to `url` carries, if the extension's
/// `authenticationConfiguration` asks for a token: `azureAdTokenAuthentication` names it
/// in `resourceId`; `azureAdPopTokenAuthentication` (Entra's proof-of-possession tokens,
/// which only Entra can mint) gets a plain bearer token whose audience is the origin of the
/// URL called (`scheme://host[:port]`), as does a `resourceId` left empty.
pub fn bearer_audience(e: &CustomExtension, url: &str) -> Option<String> {
    let config = e.authentication_configuration.as_ref()?;
    let kind = config.get("@odata.type")?.as_str()?.trim_start_matches('#').trim_start_matches("microsoft.graph.");
    let resource = config.get("resourceId").and_then(Value::as_str).map(str::trim).filter(|r| !r.is_empty());
    match (kind.to_ascii_lowercase().as_str(), resource) {
        ("azureadtokenauthentication", Some(resource)) => Some(resource.to_string()),
        ("azureadtokenauthentication", None) | ("azureadpoptokenauthentication", _) => origin_of(url),
        _ => None,
    }
}

/// `scheme://host[:port]` of an absolute URL (the port only when it is not the default).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    Some(format!("{scheme}://{}", authority.strip_suffix(default_port).unwrap_or(&authority)))
}

fn client_settings(e: &CustomExtension) -> (u32, u32) {
    let cfg = e.client_configuration.as_ref();
    let timeout = cfg
        .and_then(|c| c.get("timeoutInMilliseconds"))
        .and_then(Value::as_u64)
        .map(|t| t as u32)
        .unwrap_or(outbox::DEFAULT_TIMEOUT_MS);
    let attempts = cfg
        .and_then(|c| c.get("maximumRetries"))
        .and_then(Value::as_u64)
        .map(|r| r as u32 + 1)
        .unwrap_or(outbox::DEFAULT_MAX_ATTEMPTS);
    (timeout, attempts)
}

/// Records a callout instance and writes its outbox message. Without a URL Grantry can call
/// (a Logic App endpoint), the instance is recorded as failed with the reason.
#[allow(clippy::too_many_arguments)]
fn write_callout(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    extension: &CustomExtension,
    stage: CustomExtensionStage,
    context: CalloutContext,
    ordering_key: &str,
    payload: Value,
    instances: &mut Vec<Value>,
) -> Result<()> {
    let mut instance = json!({
        "id": context.instance_id,
        "customExtensionId": extension.id,
        "status": Value::Null,
        "detail": "Queued for delivery.",
        "externalCorrelationId": Value::Null,
    });
    let subject_id = context.request_id.clone().or_else(|| context.assignment_id.clone()).unwrap_or_default();
    match extension.target_url() {
        Some(_) if extension.disabled.is_some() => {
            instance["status"] = json!("calloutFailed");
            instance["detail"] = json!(format!(
                "Not called: the extension is disabled ({}) until an administrator updates it.",
                extension.disabled.as_ref().map(|d| d.reason.as_str()).unwrap_or_default()
            ));
        }
        Some(url) => {
            let (timeout_ms, max_attempts) = client_settings(extension);
            let message = OutboxMessage::pending(
                context.instance_id.clone(),
                OutboxKind::Callout,
                ordering_key.to_string(),
                url.to_string(),
                SignedBy::CustomExtension(extension.id.clone()),
                payload,
                now,
            )
            .with_limits(timeout_ms, max_attempts)
            .with_context(serde_json::to_value(&context).unwrap_or(Value::Null));
            outbox::enqueue(c, &message)?;
        }
        None => {
            instance["status"] = json!("calloutFailed");
            instance["detail"] = json!(
                "The extension's endpoint is not an httpRequestEndpoint; Grantry can only call httpRequestEndpoint.targetUrl."
            );
        }
    }
    instances.push(instance);
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: None,
            entity_type: "customExtensionCalloutInstance",
            entity_id: &context.instance_id,
            action: "created",
            detail: json!({
                "customExtensionId": extension.id,
                "stage": stage.v1(),
                "subjectId": subject_id,
            }),
        },
    )
}

/// Fires the callout of `stage` for request `r`, if its policy names one. `r` is updated in
/// place and stored.
pub fn fire_for_request(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    stage: CustomExtensionStage,
    r: &mut AssignmentRequest,
) -> Result<()> {
    fire_for_request_with(c, now, stage, r, None)
}

/// [`fire_for_request`] with the request's policy at hand, if the caller has it.
pub fn fire_for_request_with(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    stage: CustomExtensionStage,
    r: &mut AssignmentRequest,
    policy: Option<&Policy>,
) -> Result<()> {
    if r.is_validation_only {
        return Ok(());
    }
    let Some((policy, extension)) = setting_for(c, r.policy_id.as_deref(), stage, policy)? else { return Ok(()) };
    let instance_id = ids::new_id();
    let package = repo::get::<AccessPackage>(c, &r.access_package_id)?;
    let catalog = repo::get::<Catalog>(c, &r.catalog_id)?;
    let target = repo::get::<Subject>(c, &r.target_subject_id)?;
    let requestor = match &r.requestor_subject_id {
        Some(id) => repo::get::<Subject>(c, id)?,
        None => None,
    };
    let assignment = match &r.assignment_id {
        Some(id) => repo::get::<Assignment>(c, id)?,
        None => None,
    };
    let mut payload = json!({
        "AccessPackageAssignmentRequestId": r.id,
        "CustomExtensionStageInstanceId": instance_id,
        "Stage": stage.v1(),
        "CallbackUriPath": callback_path(&r.id),
        "RequestType": r.request_type.beta(),
        "State": r.state.beta(),
        "Status": r.status,
        "Answers": answers_json(&r.answers),
        "AccessPackage": package.map(|p| named(&p.id, &p.display_name, &p.description)),
        "AccessPackageCatalog": catalog.map(|k| named(&k.id, &k.display_name, &k.description)),
        "Assignment": {
            "Id": assignment.as_ref().map(|a| a.id.clone()),
            "State": assignment.as_ref().map(|a| a.state.beta()),
            "Status": assignment.as_ref().map(|a| a.status.clone()),
            "Schedule": assignment.as_ref().map(|a| json!({
                "StartDateTime": a.schedule.start_date_time,
                "EndDateTime": crate::delivery::assignment_end(a),
            })),
            "Target": subject_json(target.as_ref()),
            "AssignmentPolicy": { "Id": policy.id, "DisplayName": policy.display_name },
        },
        "Requestor": subject_json(requestor.as_ref()),
    });
    if let Some(t) = extension.callback_timeout {
        payload["CallbackConfiguration"] = json!({ "DurationBeforeTimeout": grantry_domain::duration::format(t) });
    }
    let context = CalloutContext {
        request_id: Some(r.id.clone()),
        assignment_id: None,
        instance_id,
        custom_extension_id: extension.id.clone(),
        stage,
    };
    let key = r.assignment_id.clone().unwrap_or_else(|| r.id.clone());
    write_callout(c, now, &extension, stage, context, &key, payload, &mut r.custom_extension_callout_instances)?;
    repo::update(c, r)?;
    Ok(())
}

/// Fires a pre-expiry callout (`assignmentFourteenDaysBeforeExpiration` /
/// `assignmentOneDayBeforeExpiration`) for assignment `a`, if its policy names one.
pub fn fire_for_assignment(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    stage: CustomExtensionStage,
    a: &mut Assignment,
) -> Result<()> {
    let Some((policy, extension)) = setting_for(c, Some(&a.policy_id), stage, None)? else { return Ok(()) };
    let instance_id = ids::new_id();
    let package = repo::get::<AccessPackage>(c, &a.access_package_id)?;
    let catalog = repo::get::<Catalog>(c, &a.catalog_id)?;
    let target = repo::get::<Subject>(c, &a.target_subject_id)?;
    // The request that made the assignment, as Entra names it in this payload.
    let request = repo::find_all::<AssignmentRequest>(c, "assignment_id = ?", &[grantry_store::Value::from(&a.id)])?
        .into_iter()
        .min_by_key(|r| r.created_date_time);
    let requestor = match request.as_ref().and_then(|r| r.requestor_subject_id.clone()) {
        Some(id) => repo::get::<Subject>(c, &id)?,
        None => None,
    };
    let payload = json!({
        "AccessPackageAssignmentRequestId": request.as_ref().map(|r| r.id.clone()),
        "CustomExtensionStageInstanceId": instance_id,
        "Stage": stage.v1(),
        "AccessPackage": package.map(|p| named(&p.id, &p.display_name, &p.description)),
        "AccessPackageCatalog": catalog.map(|k| named(&k.id, &k.display_name, &k.description)),
        "Assignment": {
            "Id": a.id,
            "State": a.state.beta(),
            "Status": a.status,
            "Schedule": { "StartDateTime": a.schedule.start_date_time, "EndDateTime": crate::delivery::assignment_end(a) },
            "Target": subject_json(target.as_ref()),
            "AssignmentPolicy": { "Id": policy.id, "DisplayName": policy.display_name },
        },
        "Requestor": subject_json(requestor.as_ref()),
    });
    let context = CalloutContext {
        request_id: None,
        assignment_id: Some(a.id.clone()),
        instance_id,
        custom_extension_id: extension.id.clone(),
        stage,
    };
    let key = a.id.clone();
    write_callout(c, now, &extension, stage, context, &key, payload, &mut a.custom_extension_callout_instances)?;
    repo::update(c, a)?;
    Ok(())
}

/// Sets an instance's status unless a resume already answered it (a receiver may resume
/// before Grantry has recorded that its call was delivered).
fn set_instance(instances: &mut [Value], id: &str, status: &str, detail: &str) {
    if let Some(i) = instances.iter_mut().find(|i| i["id"].as_str() == Some(id))
        && i["status"].as_str() != Some("callbackReceived")
    {
        i["status"] = json!(status);
        i["detail"] = json!(detail);
    }
}

/// The `Stage` of the call Entra makes when an extension is created, to check that its
/// endpoint answers (integrations reference §2.5); receivers answer 2xx and do nothing.
pub const CONNECTION_TEST_STAGE: &str = "CustomExtensionConnectionTest";

/// Writes the connection-test call of a newly created extension that Grantry can call
/// (an `httpRequestEndpoint`): signed and authenticated like every callout, tried once, its
/// outcome recorded in the audit trail. It changes nothing else.
pub(crate) fn connection_test(c: &mut dyn Conn, now: DateTime<Utc>, extension: &CustomExtension) -> Result<()> {
    let Some(url) = extension.target_url() else { return Ok(()) };
    let id = ids::new_id();
    let (timeout_ms, _) = client_settings(extension);
    let message = OutboxMessage::pending(
        id.clone(),
        OutboxKind::Callout,
        extension.id.clone(),
        url.to_string(),
        SignedBy::CustomExtension(extension.id.clone()),
        json!({
            "Stage": CONNECTION_TEST_STAGE,
            "CustomExtensionStageInstanceId": id,
            "CustomExtensionId": extension.id,
            "AccessPackageCatalog": { "Id": extension.catalog_id },
        }),
        now,
    )
    .with_limits(timeout_ms, 1)
    .with_context(json!({ "connectionTest": true, "customExtensionId": extension.id }));
    outbox::enqueue(c, &message)
}

/// Records a connection test's outcome in the audit trail.
fn after_connection_test(c: &mut dyn Conn, m: &OutboxMessage, attempt: &Attempt, now: DateTime<Utc>) -> Result<()> {
    let extension_id = m.context["customExtensionId"].as_str().unwrap_or_default();
    let (action, detail) = match attempt {
        Attempt::Delivered { status, .. } => ("connectionTestSucceeded", format!("The endpoint answered {status}.")),
        Attempt::Retry { error, .. } | Attempt::Refused { error, .. } => ("connectionTestFailed", error.clone()),
    };
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: None,
            entity_type: "customCalloutExtension",
            entity_id: extension_id,
            action,
            detail: json!({ "detail": detail, "httpStatus": m.last_status }),
        },
    )
}

/// Records a callout's delivery (or its failure) on its instance and in the audit trail.
pub(crate) fn after_delivery(c: &mut dyn Conn, m: &OutboxMessage, attempt: &Attempt, now: DateTime<Utc>) -> Result<()> {
    if m.context.get("connectionTest").and_then(Value::as_bool) == Some(true) {
        return after_connection_test(c, m, attempt, now);
    }
    let Ok(ctx) = serde_json::from_value::<CalloutContext>(m.context.clone()) else { return Ok(()) };
    if matches!(attempt, Attempt::Refused { status: Some(410), .. }) {
        disable_extension(c, now, &ctx.custom_extension_id, &m.id)?;
    }
    let waiting = match &ctx.request_id {
        Some(rid) => repo::get::<AssignmentRequest>(c, rid)?.is_some_and(|r| r.status == WAITING_FOR_CALLBACK),
        None => false,
    };
    let (status, detail) = match attempt {
        Attempt::Delivered { status, .. } if waiting => {
            ("waitingForCallback", format!("Delivered (the receiver answered {status}); waiting for resume."))
        }
        Attempt::Delivered { status, .. } => ("calloutSent", format!("Delivered: the receiver answered {status}.")),
        Attempt::Retry { error, .. } | Attempt::Refused { error, .. } => {
            ("calloutFailed", format!("Not delivered after {} attempt(s): {error}", m.attempts))
        }
    };
    if let Some(rid) = &ctx.request_id
        && let Some(mut r) = repo::get::<AssignmentRequest>(c, rid)?
    {
        set_instance(&mut r.custom_extension_callout_instances, &ctx.instance_id, status, &detail);
        if status == "calloutFailed" && waiting && instance_waiting(&r, &ctx.instance_id) == Some(false) {
            // The request waited for an answer that can never come: it fails, as on a timeout.
            crate::jobs::cancel(c, JOB_CALLBACK_TIMEOUT, &r.id)?;
            fail_waiting(c, now, &mut r, &ctx.instance_id, "calloutFailed")?;
        } else {
            repo::update(c, &r)?;
        }
    }
    if let Some(aid) = &ctx.assignment_id
        && let Some(mut a) = repo::get::<Assignment>(c, aid)?
    {
        set_instance(&mut a.custom_extension_callout_instances, &ctx.instance_id, status, &detail);
        repo::update(c, &a)?;
    }
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: None,
            entity_type: "customExtensionCalloutInstance",
            entity_id: &ctx.instance_id,
            action: status,
            detail: json!({
                "customExtensionId": ctx.custom_extension_id,
                "stage": ctx.stage.v1(),
                "requestId": ctx.request_id,
                "assignmentId": ctx.assignment_id,
                "attempts": m.attempts,
                "httpStatus": m.last_status,
            }),
        },
    )
}

/// The extension's endpoint answered `410 Gone` (Standard Webhooks: the endpoint is gone
/// for good): Grantry stops calling it until an administrator changes the extension. The
/// callouts it still owes are dead-lettered; later stages record a failed callout.
fn disable_extension(c: &mut dyn Conn, now: DateTime<Utc>, extension_id: &str, message_id: &str) -> Result<()> {
    let Some(mut e) = repo::get::<CustomExtension>(c, extension_id)? else { return Ok(()) };
    if e.disabled.is_some() {
        return Ok(());
    }
    let reason = format!("its endpoint answered 410 Gone to callout '{message_id}'");
    e.disabled = Some(ExtensionDisabled { reason: reason.clone(), date_time: now });
    repo::update(c, &e)?;
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: None,
            entity_type: "customCalloutExtension",
            entity_id: extension_id,
            action: "disabled",
            detail: json!({ "reason": reason, "calloutId": message_id }),
        },
    )?;
    let owed: Vec<OutboxMessage> = repo::find_all(
        c,
        "kind = 'callout' AND state = 'pending' AND id <> ?",
        &[grantry_store::Value::from(message_id)],
    )?;
    for mut p in owed.into_iter().filter(|p| p.signed_by == SignedBy::CustomExtension(extension_id.to_string())) {
        p.state = OutboxState::Dead;
        p.lease_until = None;
        p.finished_date_time = Some(now);
        p.last_error = Some("Not sent: the extension was disabled (its endpoint answered 410 Gone).".into());
        repo::update(c, &p)?;
        let attempt = Attempt::Refused { status: None, error: p.last_error.clone().unwrap_or_default() };
        after_delivery(c, &p, &attempt, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extension(auth: Option<Value>) -> CustomExtension {
        CustomExtension {
            id: "e".into(),
            catalog_id: "k".into(),
            kind: ExtensionKind::AssignmentRequestWorkflow,
            display_name: "x".into(),
            description: None,
            endpoint_configuration: None,
            authentication_configuration: auth,
            client_configuration: None,
            callback_timeout: None,
            signing_secret: String::new(),
            created_by: None,
            last_modified_by: None,
            created_date_time: chrono::DateTime::UNIX_EPOCH,
            last_modified_date_time: chrono::DateTime::UNIX_EPOCH,
            disabled: None,
        }
    }

    #[test]
    fn the_bearer_audience_follows_the_authentication_configuration() {
        let url = "HTTPS://Hooks.Example.com:443/path?q=1";
        assert_eq!(bearer_audience(&extension(None), url), None);
        let token =
            json!({ "@odata.type": "#microsoft.graph.azureAdTokenAuthentication", "resourceId": "api://receiver" });
        assert_eq!(bearer_audience(&extension(Some(token)), url).as_deref(), Some("api://receiver"));
        let empty = json!({ "@odata.type": "#microsoft.graph.azureAdTokenAuthentication", "resourceId": " " });
        assert_eq!(bearer_audience(&extension(Some(empty)), url).as_deref(), Some("https://hooks.example.com"));
        let pop = json!({ "@odata.type": "#microsoft.graph.azureAdPopTokenAuthentication" });
        assert_eq!(
            bearer_audience(&extension(Some(pop)), "http://127.0.0.1:8080/x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }
}

// ---------------------------------------------------------------------------------------
// Waiting for the callback, and resume

/// Job: a waiting callout's `callbackConfiguration.timeoutDuration` has passed.
pub const JOB_CALLBACK_TIMEOUT: &str = "callout.callbackTimeout";
/// Job: an assignment's pre-expiry stage has come (payload `stage`).
pub const JOB_PRE_EXPIRY: &str = "callout.preExpiry";

/// The request status while a callout holds it, as Entra shows it.
pub const WAITING_FOR_CALLBACK: RequestStatus = RequestStatus::WaitingForCallback;

/// Whether the request lifecycle waits at `stage` for a resume. Only the stages that come
/// before delivery hold the request; granted and removed are already done when they fire.
pub fn holds_at(stage: CustomExtensionStage) -> bool {
    matches!(
        stage,
        CustomExtensionStage::AssignmentRequestCreated
            | CustomExtensionStage::AssignmentRequestApproved
            | CustomExtensionStage::AssignmentRequestDeterminingApprovalRequirements
    )
}

/// Fires the callout of `stage` for `r` and, when the extension waits for a callback at a
/// stage that holds the request, marks the request as waiting and schedules the timeout.
/// Returns whether the request now waits (the caller must not continue its lifecycle).
pub fn fire_and_maybe_hold(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    stage: CustomExtensionStage,
    r: &mut AssignmentRequest,
) -> Result<bool> {
    fire_and_maybe_hold_with(c, now, stage, r, None)
}

/// [`fire_and_maybe_hold`] with the request's policy at hand, if the caller has it.
pub fn fire_and_maybe_hold_with(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    stage: CustomExtensionStage,
    r: &mut AssignmentRequest,
    policy: Option<&Policy>,
) -> Result<bool> {
    let before = r.custom_extension_callout_instances.len();
    fire_for_request_with(c, now, stage, r, policy)?;
    let Some(instance) = r.custom_extension_callout_instances.get(before).cloned() else { return Ok(false) };
    if !holds_at(stage) {
        return Ok(false);
    }
    let Some(extension) = instance["customExtensionId"]
        .as_str()
        .and_then(|id| repo::get::<CustomExtension>(c, id).transpose())
        .transpose()?
    else {
        return Ok(false);
    };
    let Some(timeout) = extension.callback_timeout else { return Ok(false) };
    let instance_id = instance["id"].as_str().unwrap_or_default().to_string();
    if instance["status"].as_str() == Some("calloutFailed") {
        if extension.disabled.is_some() {
            // The workflow this stage waits for is gone: the request fails, as when its
            // callout fails, rather than going on without the workflow's answer.
            fail_waiting(c, now, r, &instance_id, "calloutFailed")?;
            return Ok(true);
        }
        return Ok(false);
    }
    crate::jobs::enqueue(c, JOB_CALLBACK_TIMEOUT, &r.id, now + timeout, json!({ "instanceId": instance_id }))?;
    let state = r.state;
    crate::delivery::set_state_by(
        c,
        now,
        r,
        state,
        WAITING_FOR_CALLBACK,
        None,
        json!({ "customExtensionStageInstanceId": instance_id, "stage": stage.v1() }),
    )?;
    Ok(true)
}

/// The instance of `r` with `id`, if any, and whether it still waits for its callback.
fn instance_waiting(r: &AssignmentRequest, id: &str) -> Option<bool> {
    let i = r
        .custom_extension_callout_instances
        .iter()
        .find(|i| i["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))?;
    Some(matches!(i["status"].as_str(), None | Some("waitingForCallback") | Some("calloutSent")))
}

/// The stage of a callout instance (from its outbox message).
fn stage_of_instance(c: &mut dyn Conn, instance_id: &str) -> Result<Option<CalloutContext>> {
    Ok(repo::get::<OutboxMessage>(c, instance_id)?.and_then(|m| serde_json::from_value(m.context).ok()))
}

/// What a resume asks.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub instance_id: String,
    pub stage: Option<CustomExtensionStage>,
    pub detail: Option<String>,
    /// `denied` or `canceled` end the request.
    pub end_state: Option<grantry_domain::enums::RequestState>,
    /// `data.state: "approved"`: the workflow approves the approval stage it was asked
    /// about (a dynamic first stage), as `denied` denies it.
    pub approved: bool,
    pub source: Option<String>,
    /// `data.approvalStage` (`assignmentRequestApprovalStageCallbackData`): the first
    /// approval stage, as the workflow determined it, for a policy whose first stage is
    /// dynamic.
    pub approval_stage: Option<ApprovalStage>,
}

/// Applies a resume to request `r` (loaded in this write): checks it answers the callout the
/// request waits for, records it, and continues (or ends) the lifecycle.
pub fn resume(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    input: &Resume,
    actor_id: &str,
) -> Result<()> {
    use grantry_domain::Error;
    use grantry_domain::enums::RequestState;
    let target = "data.customExtensionStageInstanceId";
    let waiting = instance_waiting(r, &input.instance_id).ok_or_else(|| {
        Error::bad_request(
            "UnknownCustomExtensionStageInstance",
            format!("The request '{}' has no custom extension callout '{}'; send the CustomExtensionStageInstanceId of the callout you answer.", r.id, input.instance_id),
        )
        .with_target(target)
    })?;
    let id = ids::normalize(&input.instance_id);
    if r.state.is_final() {
        return Err(Error::conflict(
            "RequestNotWaitingForCallback",
            format!("The request '{}' is finished ({}); there is nothing to resume.", r.id, r.state.v1()),
        ));
    }
    if !waiting || r.status != WAITING_FOR_CALLBACK {
        return Err(Error::conflict(
            "CalloutAlreadyAnswered",
            format!(
                "The callout '{}' of request '{}' is not waiting for a callback (it was answered, timed out or failed).",
                input.instance_id, r.id
            ),
        ));
    }
    let ctx = stage_of_instance(c, &id)?;
    if let (Some(asked), Some(ctx)) = (input.stage, &ctx)
        && asked != ctx.stage
    {
        return Err(Error::invalid_property(
            "data.stage",
            format!(
                "'data.stage' is '{}' but the callout '{}' was made at '{}'.",
                asked.v1(),
                input.instance_id,
                ctx.stage.v1()
            ),
        ));
    }
    let stage = ctx.map(|x| x.stage).unwrap_or(CustomExtensionStage::AssignmentRequestCreated);
    let determining = stage == CustomExtensionStage::AssignmentRequestDeterminingApprovalRequirements;
    if input.approval_stage.is_some() && !determining {
        return Err(Error::invalid_property(
            "data.approvalStage",
            format!(
                "'data.approvalStage' answers a callout made at assignmentRequestDeterminingApprovalRequirements; the callout '{}' was made at '{}'.",
                input.instance_id,
                stage.v1()
            ),
        ));
    }
    if input.approved && !determining {
        return Err(Error::invalid_property(
            "data.state",
            format!(
                "'data.state': \"approved\" decides the approval stage a callout made at assignmentRequestDeterminingApprovalRequirements asks about; the callout '{}' was made at '{}'. Omit 'data.state' to continue, or send \"denied\" or \"canceled\" to end the request.",
                input.instance_id,
                stage.v1()
            ),
        ));
    }
    if determining && input.approval_stage.is_none() && input.end_state.is_none() && !input.approved {
        return Err(Error::invalid_property(
            "data.approvalStage",
            "This callout asks the workflow for the approval stage: send 'data.approvalStage' (an accessPackageApprovalStage with primaryApprovers) in an assignmentRequestApprovalStageCallbackData, or decide the stage with 'data.state': \"approved\" or \"denied\".",
        ));
    }
    if input.approved && input.approval_stage.is_some() {
        return Err(Error::invalid_property(
            "data.state",
            "Send either 'data.approvalStage' (approvers decide the stage) or 'data.state': \"approved\" (the workflow decides it), not both.",
        ));
    }
    let detail = input.detail.clone().unwrap_or_else(|| "Callback received.".into());
    if let Some(i) = r.custom_extension_callout_instances.iter_mut().find(|i| i["id"].as_str() == Some(id.as_str())) {
        i["status"] = json!("callbackReceived");
        i["detail"] = json!(detail);
    }
    crate::jobs::cancel(c, JOB_CALLBACK_TIMEOUT, &r.id)?;
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: Some(actor_id),
            entity_type: "customExtensionCalloutInstance",
            entity_id: &id,
            action: "callbackReceived",
            detail: json!({
                "requestId": r.id,
                "stage": stage.v1(),
                "detail": detail,
                "state": input.end_state.map(|s| s.v1()),
                "source": input.source,
            }),
        },
    )?;
    if determining && (input.approved || input.end_state == Some(RequestState::Denied)) {
        // The workflow decides the stage itself: the approval records its decision.
        let policy_id = r.policy_id.clone().unwrap_or_default();
        let policy = repo::get::<Policy>(c, &policy_id)?.ok_or_else(|| {
            Error::conflict(
                "PolicyNotFound",
                format!("The policy '{policy_id}' of request '{}' no longer exists.", r.id),
            )
        })?;
        let decision = crate::approvals::Decision {
            approver_id: actor_id,
            approver_name: Some(input.source.clone().unwrap_or_else(|| "Custom extension".into())),
            approve: input.approved,
            justification: Some(detail.clone()),
        };
        let outcome = crate::approvals::decide_first_by_workflow(c, now, r, &policy, decision)?;
        return crate::approvals::continue_after(
            c,
            now,
            r,
            outcome,
            actor_id,
            json!({ "approvalId": r.id, "customExtensionStageInstanceId": id, "justification": detail }),
        );
    }
    match input.end_state {
        Some(end) => {
            let status = if end == RequestState::Denied { RequestStatus::Denied } else { RequestStatus::Canceled };
            crate::delivery::set_state_by(
                c,
                now,
                r,
                end,
                status,
                Some(actor_id),
                json!({ "customExtensionStageInstanceId": id }),
            )
        }
        None => {
            r.status = match r.state {
                RequestState::PendingApproval => RequestStatus::PendingApproval,
                _ => RequestStatus::Accepted,
            };
            repo::update(c, r)?;
            match (stage, &input.approval_stage) {
                (CustomExtensionStage::AssignmentRequestCreated, _) => crate::delivery::process(c, now, r),
                (CustomExtensionStage::AssignmentRequestDeterminingApprovalRequirements, Some(determined)) => {
                    start_determined_approval(c, now, r, determined)
                }
                _ => crate::delivery::advance(c, now, r),
            }
        }
    }
}

/// Starts the approval of `r` with `determined` as its first stage (the policy's dynamic
/// stage, as the workflow answered it); later stages are the policy's.
fn start_determined_approval(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    determined: &ApprovalStage,
) -> Result<()> {
    let policy_id = r.policy_id.clone().unwrap_or_default();
    let Some(mut policy) = repo::get::<Policy>(c, &policy_id)? else {
        return Err(grantry_domain::Error::conflict(
            "PolicyNotFound",
            format!("The policy '{policy_id}' of request '{}' no longer exists.", r.id),
        ));
    };
    let first = ApprovalStage { is_dynamic: true, ..determined.clone() };
    match policy.approval.stages.first_mut() {
        Some(stage) => *stage = first,
        None => policy.approval.stages.push(first),
    }
    crate::approvals::start_for_request(c, now, r, &policy)
}

/// Whether `policy`'s first approval stage is dynamic and a callout determines it: fires
/// that callout and holds `r` until the workflow answers. Returns whether `r` now waits.
pub fn determine_approval(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    policy: &Policy,
) -> Result<bool> {
    if !policy.approval.stages.first().is_some_and(|s| s.is_dynamic) {
        return Ok(false);
    }
    fire_and_maybe_hold(c, now, CustomExtensionStage::AssignmentRequestDeterminingApprovalRequirements, r)
}

/// Job [`JOB_CALLBACK_TIMEOUT`]: no resume came in time. The callout is `callbackTimedOut`
/// and the request fails, as Entra documents ("considered a failure").
pub fn callback_timeout_job(ctx: &crate::jobs::JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let Some(mut r) = repo::get::<AssignmentRequest>(c, &job.entity_id)? else { return Ok(()) };
    let Some(instance_id) = job.payload.get("instanceId").and_then(Value::as_str) else { return Ok(()) };
    if r.state.is_final() || r.status != WAITING_FOR_CALLBACK || instance_waiting(&r, instance_id) != Some(true) {
        return Ok(());
    }
    set_instance(
        &mut r.custom_extension_callout_instances,
        instance_id,
        "callbackTimedOut",
        "No resume arrived before the callback timeout.",
    );
    fail_waiting(c, ctx.now, &mut r, instance_id, "callbackTimedOut")
}

fn fail_waiting(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    instance_id: &str,
    why: &str,
) -> Result<()> {
    crate::delivery::set_state_by(
        c,
        now,
        r,
        grantry_domain::enums::RequestState::DeliveryFailed,
        RequestStatus::DeliveryFailed,
        None,
        json!({ "customExtensionStageInstanceId": instance_id, "reason": why }),
    )
}

/// Job [`JOB_PRE_EXPIRY`]: 14 days or 1 day before an assignment's end, emits the
/// `accessPackageAssignment.expiring` webhook event (with `daysLeft`) and fires the stage's
/// callout if the policy names one; only if the assignment is still active and its end is
/// still where the job was scheduled for.
pub fn pre_expiry_job(ctx: &crate::jobs::JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let Some(mut a) = repo::get::<Assignment>(c, &job.entity_id)? else { return Ok(()) };
    if !a.state.is_active() {
        return Ok(());
    }
    let Some(stage) = job.payload.get("stage").and_then(Value::as_str).and_then(CustomExtensionStage::parse) else {
        return Ok(());
    };
    let Some(end) = crate::delivery::assignment_end(&a) else { return Ok(()) };
    if end - lead_time(stage) > ctx.now + chrono::Duration::minutes(1) {
        // Extended since: fire at the new time instead.
        return crate::jobs::enqueue(c, JOB_PRE_EXPIRY, &a.id, end - lead_time(stage), job.payload.clone());
    }
    crate::webhooks::assignment_event_with(
        c,
        ctx.now,
        "expiring",
        &a,
        json!({ "daysLeft": lead_time(stage).num_days(), "stage": stage.v1() }),
    )?;
    crate::notify::assignment_expiring(c, ctx.now, &a, end, lead_time(stage).num_days())?;
    fire_for_assignment(c, ctx.now, stage, &mut a)
}

fn lead_time(stage: CustomExtensionStage) -> chrono::Duration {
    match stage {
        CustomExtensionStage::AssignmentFourteenDaysBeforeExpiration => chrono::Duration::days(14),
        _ => chrono::Duration::days(1),
    }
}

/// Schedules the pre-expiry stages of a newly delivered assignment that has an end, at 14
/// days and 1 day before it (those still in the future): each emits a webhook event, and a
/// callout where the policy names one.
pub fn schedule_pre_expiry(c: &mut dyn Conn, now: DateTime<Utc>, a: &Assignment) -> Result<()> {
    let Some(end) = crate::delivery::assignment_end(a) else { return Ok(()) };
    for stage in [
        CustomExtensionStage::AssignmentFourteenDaysBeforeExpiration,
        CustomExtensionStage::AssignmentOneDayBeforeExpiration,
    ] {
        let due = end - lead_time(stage);
        if due > now {
            crate::jobs::enqueue(c, JOB_PRE_EXPIRY, &a.id, due, json!({ "stage": stage.v1() }))?;
        }
    }
    Ok(())
}

/// Whether `settings` name a pre-expiry stage that `before` did not.
pub fn gains_pre_expiry(before: &[CustomExtensionStageSetting], settings: &[CustomExtensionStageSetting]) -> bool {
    let pre = |s: &&CustomExtensionStageSetting| {
        matches!(
            s.stage,
            CustomExtensionStage::AssignmentFourteenDaysBeforeExpiration
                | CustomExtensionStage::AssignmentOneDayBeforeExpiration
        )
    };
    settings.iter().filter(pre).any(|s| !before.iter().any(|b| b.stage == s.stage))
}

/// A policy gained a pre-expiry stage setting: every active assignment made through it gets
/// the pre-expiry points still ahead of it scheduled, if they are not already (assignments
/// that came from a copy or an older version may lack them). A point already passed is not
/// fired late: "14 days before" has no meaning 10 days before.
pub fn backfill_pre_expiry(c: &mut dyn Conn, now: DateTime<Utc>, policy_id: &str) -> Result<usize> {
    let active: Vec<Assignment> =
        repo::find_all(c, "policy_id = ? AND active = 1", &[grantry_store::Value::from(policy_id)])?;
    let mut added = 0;
    for a in &active {
        let Some(end) = crate::delivery::assignment_end(a) else { continue };
        for stage in [
            CustomExtensionStage::AssignmentFourteenDaysBeforeExpiration,
            CustomExtensionStage::AssignmentOneDayBeforeExpiration,
        ] {
            let due = end - lead_time(stage);
            if due <= now {
                continue;
            }
            let scheduled = c
                .query_one(
                    "SELECT 1 FROM jobs WHERE kind = ? AND entity_id = ? AND payload LIKE ?",
                    &[
                        grantry_store::Value::from(JOB_PRE_EXPIRY),
                        grantry_store::Value::from(&a.id),
                        grantry_store::Value::from(format!("%{}%", stage.v1())),
                    ],
                )?
                .is_some();
            if !scheduled {
                crate::jobs::enqueue(c, JOB_PRE_EXPIRY, &a.id, due, json!({ "stage": stage.v1() }))?;
                added += 1;
            }
        }
    }
    Ok(added)
}

/// Job kinds handled here, for the runner's table.
pub fn handler(kind: &str) -> Option<crate::jobs::Handler> {
    match kind {
        JOB_CALLBACK_TIMEOUT => Some(callback_timeout_job),
        JOB_PRE_EXPIRY => Some(pre_expiry_job),
        _ => None,
    }
}
