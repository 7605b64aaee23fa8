//! Event webhooks (beyond Entra): administrators subscribe a URL to lifecycle events
//! (`/_grantry/webhooks`); each event is an outbox message per subscription, written in the
//! transaction of the change, delivered signed (Standard Webhooks), at least once, in order
//! per assignment (target and access package) and subscription, with a dead-letter list
//! administrators can read and replay.
//!
//! Event types: `accessPackageAssignmentRequest.created`, `accessPackageAssignmentRequest.<state>`
//! for every state a request moves to (`pendingApproval`, `delivered`, `deliveryFailed`,
//! `denied`, `canceled`, `scheduled`, …), `accessPackageAssignment.added`,
//! `accessPackageAssignment.removed`. The body is `{"type", "timestamp", "data"}`; the
//! event id is the `webhook-id` header.

use crate::audit::{self, AuditEvent};
use crate::auth::perms;
use crate::outbox;
use crate::{App, Caller};
use chrono::{DateTime, Utc};
use grantry_domain::model::*;
use grantry_domain::{Error, Result, ids};
use grantry_store::{Conn, Value, repo};
use serde_json::json;

/// Who manages subscriptions and dead letters: applications with
/// `EntitlementManagement.ReadWrite.All`, and Identity Governance or Global Administrators.
fn require_admin(caller: &Caller, write: bool) -> Result<()> {
    caller.require(if write { perms::EM_WRITE } else { perms::EM_READ })?;
    if caller.is_app() || caller.is_em_admin() {
        Ok(())
    } else {
        Err(Error::forbidden(
            "Webhooks are for administrators: an application with EntitlementManagement permissions, or an Identity Governance Administrator or Global Administrator.",
        ))
    }
}

/// Known event-type families, for validating subscriptions.
const FAMILIES: &[&str] = &["accessPackageAssignmentRequest", "accessPackageAssignment"];

#[derive(Debug, Clone, Default)]
pub struct NewSubscription {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

fn check_event_types(event_types: &[String]) -> Result<()> {
    for (i, t) in event_types.iter().enumerate() {
        let family = t.split('.').next().unwrap_or_default();
        if !FAMILIES.contains(&family) || !t.contains('.') {
            return Err(Error::invalid_property(
                &format!("eventTypes[{i}]"),
                format!(
                    "'{t}' is not an event type; use e.g. accessPackageAssignmentRequest.delivered, accessPackageAssignment.* (families: {}).",
                    FAMILIES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

pub async fn create(app: &App, caller: &Caller, input: NewSubscription) -> Result<WebhookSubscription> {
    require_admin(caller, true)?;
    check_event_types(&input.event_types)?;
    let now = app.now();
    let s = WebhookSubscription {
        id: ids::new_id(),
        url: input.url,
        event_types: input.event_types,
        description: input.description,
        signing_secret: crate::extensions::new_signing_secret(),
        created_by: Some(crate::catalogs::actor_name(app, caller).await?),
        created_date_time: now,
        enabled: true,
        disabled_reason: None,
        last_modified_date_time: None,
    };
    let saved = s.clone();
    let actor = caller.id().to_string();
    app.store
        .write(move |c| {
            repo::insert(c, &saved)?;
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor),
                    entity_type: "webhookSubscription",
                    entity_id: &saved.id,
                    action: "create",
                    detail: json!({ "url": saved.url, "eventTypes": saved.event_types }),
                },
            )
        })
        .await?;
    Ok(s)
}

pub async fn list(app: &App, caller: &Caller) -> Result<Vec<WebhookSubscription>> {
    require_admin(caller, false)?;
    app.store.read(|c| repo::find_all(c, "1 = 1", &[])).await
}

pub async fn get(app: &App, caller: &Caller, id: &str) -> Result<WebhookSubscription> {
    require_admin(caller, false)?;
    let key = ids::normalize(id);
    let shown = id.to_string();
    app.store
        .read(move |c| {
            repo::get::<WebhookSubscription>(c, &key)?.ok_or_else(|| Error::not_found("webhook subscription", &shown))
        })
        .await
}

/// A change to a subscription: `None` leaves a property as it is.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    /// `true` resumes a subscription disabled by a 410 (or paused), `false` pauses it.
    pub enabled: Option<bool>,
}

/// Changes a subscription. Events already written keep the URL they were written for;
/// dead-lettered ones can be replayed once the receiver is back.
pub async fn update(app: &App, caller: &Caller, id: &str, change: SubscriptionChange) -> Result<WebhookSubscription> {
    require_admin(caller, true)?;
    if let Some(types) = &change.event_types {
        check_event_types(types)?;
    }
    let key = ids::normalize(id);
    let shown = id.to_string();
    let actor = caller.id().to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            let mut s = repo::get::<WebhookSubscription>(c, &key)?
                .ok_or_else(|| Error::not_found("webhook subscription", &shown))?;
            if let Some(url) = &change.url {
                s.url = url.clone();
            }
            if let Some(types) = &change.event_types {
                s.event_types = types.clone();
            }
            if let Some(description) = &change.description {
                s.description = description.clone();
            }
            if let Some(enabled) = change.enabled {
                s.enabled = enabled;
                s.disabled_reason = (!enabled).then(|| "Paused by an administrator.".to_string());
            }
            s.last_modified_date_time = Some(now);
            repo::update(c, &s)?;
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor),
                    entity_type: "webhookSubscription",
                    entity_id: &s.id,
                    action: "update",
                    detail: json!({ "url": s.url, "eventTypes": s.event_types, "enabled": s.enabled }),
                },
            )?;
            Ok(s)
        })
        .await
}

/// Follow-up of a webhook event the receiver refused: a `410 Gone` disables the
/// subscription (Standard Webhooks: the endpoint is gone), and its other undelivered events
/// are dead-lettered with it, to be replayed once it is enabled again.
pub(crate) fn after_delivery(
    c: &mut dyn Conn,
    m: &OutboxMessage,
    attempt: &outbox::Attempt,
    now: DateTime<Utc>,
) -> Result<()> {
    if !matches!(attempt, outbox::Attempt::Refused { status: Some(410), .. }) {
        return Ok(());
    }
    let SignedBy::WebhookSubscription(id) = &m.signed_by else { return Ok(()) };
    let Some(mut s) = repo::get::<WebhookSubscription>(c, id)? else { return Ok(()) };
    if s.enabled {
        s.enabled = false;
        s.disabled_reason = Some(format!("The receiver answered 410 Gone to event '{}'.", m.id));
        s.last_modified_date_time = Some(now);
        repo::update(c, &s)?;
        audit::record(
            c,
            AuditEvent {
                at: now,
                actor_id: None,
                entity_type: "webhookSubscription",
                entity_id: &s.id,
                action: "disabled",
                detail: json!({ "reason": s.disabled_reason, "eventId": m.id }),
            },
        )?;
    }
    let pending: Vec<OutboxMessage> = repo::find_all(
        c,
        "kind = 'webhook' AND state = 'pending' AND ordering_key LIKE ?",
        &[Value::from(format!("{}:%", s.id))],
    )?;
    for mut p in pending {
        p.state = OutboxState::Dead;
        p.lease_until = None;
        p.last_error = Some("Not sent: the subscription was disabled (the receiver answered 410 Gone).".into());
        p.finished_date_time = Some(now);
        repo::update(c, &p)?;
    }
    Ok(())
}

/// Deletes a subscription; its undelivered events are dropped with it.
pub async fn delete(app: &App, caller: &Caller, id: &str) -> Result<()> {
    require_admin(caller, true)?;
    let key = ids::normalize(id);
    let shown = id.to_string();
    let actor = caller.id().to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            if !repo::delete::<WebhookSubscription>(c, &key)? {
                return Err(Error::not_found("webhook subscription", &shown));
            }
            c.execute(
                "DELETE FROM outbox WHERE kind = 'webhook' AND state <> 'delivered' AND ordering_key LIKE ?",
                &[Value::from(format!("{key}:%"))],
            )?;
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor),
                    entity_type: "webhookSubscription",
                    entity_id: &key,
                    action: "delete",
                    detail: json!({}),
                },
            )
        })
        .await
}

/// The secret of subscription `id`, for the outbox signer.
pub(crate) fn secret_of(c: &mut dyn Conn, id: &str) -> Result<Option<String>> {
    Ok(repo::get::<WebhookSubscription>(c, id)?.map(|s| s.signing_secret))
}

/// Writes event `event_type` for every subscription that wants it, in the transaction under
/// way. `subject` orders the events: one target's assignment of one package.
pub fn emit(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    event_type: &str,
    subject: (&str, &str),
    data: serde_json::Value,
) -> Result<()> {
    emit_with(c, now, event_type, subject, || data)
}

/// [`emit`], building the event's data only when some subscription wants it.
fn emit_with(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    event_type: &str,
    subject: (&str, &str),
    data: impl FnOnce() -> serde_json::Value,
) -> Result<()> {
    let subscriptions = crate::generation::subscriptions(c)?;
    let mut wanted = subscriptions.iter().filter(|s| s.wants(event_type)).peekable();
    if wanted.peek().is_none() {
        return Ok(());
    }
    let data = data();
    for s in wanted {
        let message = OutboxMessage::pending(
            ids::new_id(),
            OutboxKind::Webhook,
            format!("{}:{}:{}", s.id, subject.0, subject.1),
            s.url.clone(),
            SignedBy::WebhookSubscription(s.id.clone()),
            json!({
                "type": event_type,
                "timestamp": grantry_domain::clock::truncate_micros(now).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "data": data,
            }),
            now,
        )
        .with_context(json!({ "subscriptionId": s.id }));
        outbox::enqueue(c, &message)?;
    }
    Ok(())
}

/// The data of a request event.
pub fn request_data(r: &AssignmentRequest) -> serde_json::Value {
    json!({
        "id": r.id,
        "requestType": r.request_type.v1(),
        "state": r.state.v1(),
        "status": r.status,
        "accessPackageId": r.access_package_id,
        "catalogId": r.catalog_id,
        "assignmentPolicyId": r.policy_id,
        "assignmentId": r.assignment_id,
        "targetSubjectId": r.target_subject_id,
        "requestorSubjectId": r.requestor_subject_id,
    })
}

/// Emits `accessPackageAssignmentRequest.<suffix>` for `r`.
pub fn request_event(c: &mut dyn Conn, now: DateTime<Utc>, suffix: &str, r: &AssignmentRequest) -> Result<()> {
    if r.is_validation_only {
        return Ok(());
    }
    emit_with(
        c,
        now,
        &format!("accessPackageAssignmentRequest.{suffix}"),
        (&r.target_subject_id, &r.access_package_id),
        || request_data(r),
    )
}

/// Emits `accessPackageAssignment.<suffix>` for `a`.
pub fn assignment_event(c: &mut dyn Conn, now: DateTime<Utc>, suffix: &str, a: &Assignment) -> Result<()> {
    assignment_event_with(c, now, suffix, a, json!({}))
}

/// Emits `accessPackageAssignment.<suffix>` for `a`, with `extra` members in its data.
pub fn assignment_event_with(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    suffix: &str,
    a: &Assignment,
    extra: serde_json::Value,
) -> Result<()> {
    let data = || {
        let mut data = json!({
            "id": a.id,
            "state": a.state.v1(),
            "status": a.status,
            "accessPackageId": a.access_package_id,
            "catalogId": a.catalog_id,
            "assignmentPolicyId": a.policy_id,
            "targetSubjectId": a.target_subject_id,
            "startDateTime": a.schedule.start_date_time,
            "endDateTime": crate::delivery::assignment_end(a),
        });
        if let (Some(data), serde_json::Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        data
    };
    emit_with(c, now, &format!("accessPackageAssignment.{suffix}"), (&a.target_subject_id, &a.access_package_id), data)
}

/// Dead-lettered events, newest first (at most 200).
pub async fn dead_letters(app: &App, caller: &Caller) -> Result<Vec<OutboxMessage>> {
    require_admin(caller, false)?;
    app.store.read(|c| outbox::dead_letters(c, OutboxKind::Webhook, 200)).await
}

/// Sends a dead-lettered event again (same event id).
pub async fn replay(app: &App, caller: &Caller, id: &str) -> Result<()> {
    require_admin(caller, true)?;
    let key = ids::normalize(id);
    let actor = caller.id().to_string();
    let now = app.now();
    app.store
        .write(move |c| {
            match repo::get::<OutboxMessage>(c, &key)? {
                Some(m) if m.kind == OutboxKind::Webhook => {}
                _ => return Err(Error::not_found("dead-lettered event", &key)),
            }
            outbox::replay(c, &key, now)?;
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(&actor),
                    entity_type: "webhookEvent",
                    entity_id: &key,
                    action: "replay",
                    detail: json!({}),
                },
            )
        })
        .await?;
    app.outbox_signal.notify_one();
    Ok(())
}
