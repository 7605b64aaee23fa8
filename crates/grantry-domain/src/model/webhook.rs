//! Event webhook subscriptions (beyond Entra): where Grantry sends lifecycle events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSubscription {
    pub id: String,
    pub url: String,
    /// Event types delivered (exact names, or a prefix ending in `.*`); empty means all.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// The Standard Webhooks secret (`whsec_…`) events are signed with; shown once.
    pub signing_secret: String,
    pub created_by: Option<String>,
    pub created_date_time: DateTime<Utc>,
    /// False once the receiver answered 410 Gone (or an administrator paused it): no events
    /// are written for it until it is enabled again.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Why it was disabled.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<DateTime<Utc>>,
}

fn enabled_by_default() -> bool {
    true
}

impl WebhookSubscription {
    /// Whether events of `event_type` go to this subscription.
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && self.wants_type(event_type)
    }

    /// Whether `event_type` is among the subscribed types (enabled or not).
    pub fn wants_type(&self, event_type: &str) -> bool {
        self.event_types.is_empty()
            || self.event_types.iter().any(|t| match t.strip_suffix(".*") {
                Some(prefix) => event_type.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
                None => t == event_type,
            })
    }
}
