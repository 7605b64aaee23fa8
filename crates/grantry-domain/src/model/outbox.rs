//! The outbox: effects on other systems (custom extension callouts, event webhooks, mail), each
//! a row written in the same transaction as the change that causes it and delivered by a
//! background sender.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Attempts before a message is dead-lettered, unless its cause says otherwise (about three
/// days with the outbox's backoff).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Time one attempt may take, unless its cause says otherwise.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// What a message is; the sender dispatches its follow-up on this, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutboxKind {
    /// A custom extension callout at a stage of a request or assignment.
    Callout,
    /// A lifecycle event for a webhook subscription.
    Webhook,
    /// A notification mail to one person (SMTP, or kept for administrators to read when no
    /// SMTP server is configured).
    Mail,
    /// A push of one user's access to a downstream SCIM service provider (provisioning out):
    /// the user created or updated, a role granted or revoked, the user deactivated.
    Scim,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Callout => "callout",
            OutboxKind::Webhook => "webhook",
            OutboxKind::Mail => "mail",
            OutboxKind::Scim => "scim",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutboxState {
    /// Not yet delivered; sent when due (and when no older message with its key is pending).
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up (refused, or out of attempts): on the dead-letter list until replayed.
    Dead,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Dead => "dead",
        }
    }
}

/// Whose secret signs a message; looked up when sending, so no secret is copied into the
/// outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "id")]
pub enum SignedBy {
    CustomExtension(String),
    WebhookSubscription(String),
    /// Nothing signs it (mail).
    Unsigned,
    /// A SCIM push, authenticated with the bearer token of the provisioning target of this
    /// service principal.
    ProvisioningTarget(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxMessage {
    /// Stable across retries: the `webhook-id` header, the receiver's idempotency key.
    pub id: String,
    pub kind: OutboxKind,
    /// Messages with the same key are delivered one at a time, oldest first.
    pub ordering_key: String,
    pub state: OutboxState,
    pub url: String,
    /// The JSON body sent.
    pub payload: serde_json::Value,
    pub signed_by: SignedBy,
    /// How long one attempt may take.
    pub timeout_ms: u32,
    /// Attempts before the message is dead-lettered.
    pub max_attempts: u32,
    pub attempts: u32,
    pub next_attempt_date_time: DateTime<Utc>,
    /// Set while a sender holds the message.
    pub lease_until: Option<DateTime<Utc>>,
    pub created_date_time: DateTime<Utc>,
    pub finished_date_time: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// What the message is about, for its kind's follow-up (e.g. a callout's request and
    /// stage instance).
    pub context: serde_json::Value,
}

impl OutboxMessage {
    /// A new message to `url`, due at `now`, never attempted, with the default time and
    /// attempt limits and no context.
    pub fn pending(
        id: String,
        kind: OutboxKind,
        ordering_key: String,
        url: String,
        signed_by: SignedBy,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> OutboxMessage {
        OutboxMessage {
            id,
            kind,
            ordering_key,
            state: OutboxState::Pending,
            url,
            payload,
            signed_by,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            attempts: 0,
            next_attempt_date_time: now,
            lease_until: None,
            created_date_time: now,
            finished_date_time: None,
            last_status: None,
            last_error: None,
            context: serde_json::Value::Null,
        }
    }

    /// The same message with these limits per attempt and in all.
    pub fn with_limits(mut self, timeout_ms: u32, max_attempts: u32) -> OutboxMessage {
        self.timeout_ms = timeout_ms;
        self.max_attempts = max_attempts;
        self
    }

    /// The same message with `context` for its kind's follow-up.
    pub fn with_context(mut self, context: serde_json::Value) -> OutboxMessage {
        self.context = context;
        self
    }
}
