//! Catalogs, their resources (with roles and scopes), resource requests, access packages
//! and the resource role scopes that packages grant.

use crate::enums::{CatalogState, CatalogType, RequestType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub is_externally_visible: bool,
    pub state: CatalogState,
    pub catalog_type: CatalogType,
    pub unique_name: Option<String>,
    pub created_by: Option<String>,
    pub modified_by: Option<String>,
    pub created_date_time: DateTime<Utc>,
    pub modified_date_time: DateTime<Utc>,
}

/// Origin systems Grantry can deliver into.
pub mod origin_system {
    pub const AAD_GROUP: &str = "AadGroup";
    pub const AAD_APPLICATION: &str = "AadApplication";
    pub const SHAREPOINT_ONLINE: &str = "SharePointOnline";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    pub catalog_id: String,
    pub origin_id: String,
    pub origin_system: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// Beta `resourceType`, e.g. "Security Group".
    pub resource_type: Option<String>,
    pub url: Option<String>,
    /// `accessPackageResourceAttribute[]`, kept as sent (v1.0 shape).
    pub attributes: Vec<serde_json::Value>,
    pub added_by: Option<String>,
    pub created_date_time: DateTime<Utc>,
    pub modified_date_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRole {
    pub id: String,
    pub resource_id: String,
    pub catalog_id: String,
    /// Groups: `Member_{groupId}` / `Owner_{groupId}`.
    pub origin_id: String,
    pub origin_system: String,
    pub display_name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceScope {
    pub id: String,
    pub resource_id: String,
    pub catalog_id: String,
    pub origin_id: String,
    pub origin_system: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub is_root_scope: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequest {
    pub id: String,
    pub catalog_id: String,
    pub resource_id: Option<String>,
    pub request_type: RequestType,
    /// `delivered` or `deliveryFailed`: resource requests complete synchronously.
    pub state: crate::enums::RequestState,
    pub justification: Option<String>,
    pub requestor_id: Option<String>,
    /// Snapshot of the resource as it was added or removed, for rendering.
    pub resource: Option<Resource>,
    pub created_date_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPackage {
    pub id: String,
    pub catalog_id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub is_hidden: bool,
    pub is_role_scopes_visible: bool,
    pub unique_name: Option<String>,
    pub created_by: Option<String>,
    pub modified_by: Option<String>,
    pub created_date_time: DateTime<Utc>,
    pub modified_date_time: DateTime<Utc>,
}

/// A (role, scope) pair granted by an access package; id `{roleId}_{scopeId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleScope {
    pub id: String,
    pub access_package_id: String,
    pub role_id: String,
    pub scope_id: String,
    pub created_by: Option<String>,
    pub created_date_time: DateTime<Utc>,
}

impl RoleScope {
    pub fn make_id(role_id: &str, scope_id: &str) -> String {
        format!("{role_id}_{scope_id}")
    }
}

/// Tenant-wide entitlement management settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub external_user_lifecycle_action: crate::enums::ExternalUserLifecycleAction,
    #[serde(with = "super::serde_duration")]
    pub duration_until_external_user_deleted_after_blocked: Option<chrono::Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            external_user_lifecycle_action: crate::enums::ExternalUserLifecycleAction::None,
            duration_until_external_user_deleted_after_blocked: Some(chrono::Duration::days(30)),
        }
    }
}
