//! Custom extensions (`customCalloutExtension`): the outside workflows a policy calls at
//! stages of a request's or an assignment's life.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The derived type of a custom extension, which decides the stages it may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExtensionKind {
    /// `accessPackageAssignmentRequestWorkflowExtension`: request created, approved, granted,
    /// removed; may wait for a callback.
    AssignmentRequestWorkflow,
    /// `accessPackageAssignmentWorkflowExtension`: 14 days and 1 day before expiry.
    AssignmentWorkflow,
    /// Beta's deprecated `customAccessPackageWorkflowExtension`: any stage, never waits.
    CustomAccessPackageWorkflow,
}

impl ExtensionKind {
    pub const ALL: [ExtensionKind; 3] = [
        ExtensionKind::AssignmentRequestWorkflow,
        ExtensionKind::AssignmentWorkflow,
        ExtensionKind::CustomAccessPackageWorkflow,
    ];

    /// The Graph type name (without `#microsoft.graph.`).
    pub fn type_name(self) -> &'static str {
        match self {
            ExtensionKind::AssignmentRequestWorkflow => "accessPackageAssignmentRequestWorkflowExtension",
            ExtensionKind::AssignmentWorkflow => "accessPackageAssignmentWorkflowExtension",
            ExtensionKind::CustomAccessPackageWorkflow => "customAccessPackageWorkflowExtension",
        }
    }

    pub fn parse(type_name: &str) -> Option<ExtensionKind> {
        Self::ALL.into_iter().find(|k| k.type_name().eq_ignore_ascii_case(type_name))
    }

    /// Whether an extension of this kind can run at `stage`.
    pub fn serves(self, stage: crate::enums::CustomExtensionStage) -> bool {
        match self {
            ExtensionKind::AssignmentRequestWorkflow => stage.is_request_stage(),
            ExtensionKind::AssignmentWorkflow => !stage.is_request_stage(),
            ExtensionKind::CustomAccessPackageWorkflow => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomExtension {
    pub id: String,
    pub catalog_id: String,
    pub kind: ExtensionKind,
    pub display_name: String,
    pub description: Option<String>,
    /// `customExtensionEndpointConfiguration` as sent (with its `@odata.type`).
    pub endpoint_configuration: Option<serde_json::Value>,
    /// `customExtensionAuthenticationConfiguration` as sent (with its `@odata.type`).
    pub authentication_configuration: Option<serde_json::Value>,
    /// `customExtensionClientConfiguration` (`timeoutInMilliseconds`, `maximumRetries`).
    pub client_configuration: Option<serde_json::Value>,
    /// `callbackConfiguration.timeoutDuration`: set means the request waits for `resume`.
    #[serde(with = "super::serde_duration", default)]
    pub callback_timeout: Option<Duration>,
    /// The Standard Webhooks secret (`whsec_…`) every callout is signed with; shown once,
    /// in the answer to the create.
    pub signing_secret: String,
    pub created_by: Option<String>,
    pub last_modified_by: Option<String>,
    pub created_date_time: DateTime<Utc>,
    pub last_modified_date_time: DateTime<Utc>,
    /// Why Grantry no longer calls this extension (its endpoint answered `410 Gone`), and
    /// since when; cleared when an administrator changes the extension (PATCH or PUT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<ExtensionDisabled>,
}

/// An extension Grantry stopped calling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionDisabled {
    pub reason: String,
    pub date_time: DateTime<Utc>,
}

impl CustomExtension {
    /// The URL Grantry calls: `httpRequestEndpoint.targetUrl`. Logic App endpoints are
    /// stored but have no URL Grantry can reach.
    pub fn target_url(&self) -> Option<&str> {
        let e = self.endpoint_configuration.as_ref()?;
        let t = e.get("@odata.type")?.as_str()?;
        if !t.trim_start_matches('#').trim_start_matches("microsoft.graph.").eq_ignore_ascii_case("httpRequestEndpoint")
        {
            return None;
        }
        e.get("targetUrl")?.as_str()
    }
}

/// A create or update of a custom extension, as parsed from either dialect. `None` leaves a
/// property as it is (on create: absent); `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtensionInput {
    pub kind: Option<ExtensionKind>,
    pub display_name: Option<String>,
    pub description: Option<Option<String>>,
    pub endpoint_configuration: Option<Option<serde_json::Value>>,
    pub authentication_configuration: Option<Option<serde_json::Value>>,
    pub client_configuration: Option<Option<serde_json::Value>>,
    pub callback_timeout: Option<Option<Duration>>,
}
