//! `entitlementManagementSchedule` (beta `requestSchedule`) and `expirationPattern`.

use crate::enums::ExpirationType;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiration {
    #[serde(rename = "type")]
    pub kind: ExpirationType,
    pub end_date_time: Option<DateTime<Utc>>,
    #[serde(with = "super::serde_duration", default)]
    pub duration: Option<Duration>,
}

impl Default for Expiration {
    fn default() -> Self {
        Expiration { kind: ExpirationType::NotSpecified, end_date_time: None, duration: None }
    }
}

impl Expiration {
    pub fn never() -> Self {
        Expiration { kind: ExpirationType::NoExpiration, ..Default::default() }
    }

    /// When access granted at `start` under this pattern ends; `None` for never or unspecified.
    pub fn end_for(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.kind {
            ExpirationType::AfterDateTime => self.end_date_time,
            ExpirationType::AfterDuration => self.duration.and_then(|d| start.checked_add_signed(d)),
            ExpirationType::NoExpiration | ExpirationType::NotSpecified => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub start_date_time: Option<DateTime<Utc>>,
    pub expiration: Expiration,
    /// `patternedRecurrence`, only meaningful for review schedules; kept as sent.
    pub recurrence: Option<serde_json::Value>,
}
