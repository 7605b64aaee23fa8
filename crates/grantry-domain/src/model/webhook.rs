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
}

impl WebhookSubscription {
    /// Whether events of `event_type` go to this subscription.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty()
            || self.event_types.iter().any(|t| match t.strip_suffix(".*") {
                Some(prefix) => event_type.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')),
                None => t == event_type,
            })
    }
}
