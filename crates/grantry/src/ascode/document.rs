//! The access-as-code file: governance configuration as YAML, names as keys (sorted), no
//! ids. Directory objects are named too: users by userPrincipalName, groups by display
//! name, so a file moves between servers whose directories hold the same people.
//!
//! Every struct refuses unknown keys, so a misspelt key is an error with its line, not a
//! setting silently ignored.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Document {
    #[serde(default)]
    pub catalogs: BTreeMap<String, Catalog>,
    /// Connected organizations by display name, with their sponsors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connected_organizations: BTreeMap<String, ConnectedOrganization>,
}

/// A connected organization: its one identity source (Graph's shape, with `@odata.type`),
/// state and sponsors. A policy names it as `connectedOrganization: NAME` in
/// `connectedOrganizationMembers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectedOrganization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<OrganizationState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_sources: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub internal_sponsors: Vec<SponsorRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_sponsors: Vec<SponsorRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OrganizationState {
    Configured,
    Proposed,
}

impl OrganizationState {
    pub fn wire(self) -> &'static str {
        match self {
            OrganizationState::Configured => "configured",
            OrganizationState::Proposed => "proposed",
        }
    }
}

/// A sponsor: a user (by userPrincipalName) or a group (by display name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SponsorRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl SponsorRef {
    pub fn describe(&self) -> String {
        match (&self.user, &self.group) {
            (Some(u), _) => format!("user '{u}'"),
            (None, Some(g)) => format!("group '{g}'"),
            (None, None) => "nobody".into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Catalog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CatalogState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_externally_visible: Option<bool>,
    /// Every resource of the catalog (a resource not listed is removed from it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceRef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_extensions: BTreeMap<String, Extension>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub access_packages: BTreeMap<String, Package>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CatalogState {
    Published,
    Unpublished,
}

impl CatalogState {
    pub fn wire(self) -> &'static str {
        match self {
            CatalogState::Published => "published",
            CatalogState::Unpublished => "unpublished",
        }
    }
}

/// A resource of a catalog: a group, by display name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceRef {
    pub group: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Extension {
    #[serde(rename = "type")]
    pub kind: ExtensionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_configuration: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExtensionKind {
    AccessPackageAssignmentRequestWorkflowExtension,
    AccessPackageAssignmentWorkflowExtension,
}

impl ExtensionKind {
    pub fn odata_type(self) -> &'static str {
        match self {
            ExtensionKind::AccessPackageAssignmentRequestWorkflowExtension => {
                "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension"
            }
            ExtensionKind::AccessPackageAssignmentWorkflowExtension => {
                "#microsoft.graph.accessPackageAssignmentWorkflowExtension"
            }
        }
    }

    pub fn from_odata_type(t: &str) -> Option<ExtensionKind> {
        match t.trim_start_matches("#microsoft.graph.") {
            "accessPackageAssignmentRequestWorkflowExtension" => {
                Some(ExtensionKind::AccessPackageAssignmentRequestWorkflowExtension)
            }
            "accessPackageAssignmentWorkflowExtension" => Some(ExtensionKind::AccessPackageAssignmentWorkflowExtension),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Package {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_hidden: Option<bool>,
    /// Every resource role the package grants (one not listed is removed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_scopes: Vec<RoleScopeRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incompatible_access_packages: Vec<PackageRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incompatible_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, Policy>,
}

/// A role of a group resource of the package's catalog (the group as a whole).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleScopeRef {
    pub group: String,
    pub role: GroupRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupRole {
    Member,
    Owner,
}

impl GroupRole {
    pub fn name(self) -> &'static str {
        match self {
            GroupRole::Member => "Member",
            GroupRole::Owner => "Owner",
        }
    }
}

/// Another access package: by name, in this catalog unless `catalog` is given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PackageRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    pub access_package: String,
}

/// An assignment policy. The settings keep Graph's v1.0 shapes, except that subjects name
/// users (`user: UPN`) and groups (`group: NAME`) instead of their ids, and stage settings
/// name custom extensions. A setting left out keeps the server's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_target_scope: Option<TargetScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specific_allowed_targets: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requestor_settings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_approval_settings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_settings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_request_settings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_extension_stage_settings: Option<Vec<StageSetting>>,
}

/// The Graph keys of [`Policy`]'s settings, as read from and sent to the server.
pub const POLICY_SETTINGS: &[&str] = &[
    "description",
    "allowedTargetScope",
    "specificAllowedTargets",
    "expiration",
    "requestorSettings",
    "requestApprovalSettings",
    "reviewSettings",
    "questions",
    "automaticRequestSettings",
    "customExtensionStageSettings",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StageSetting {
    pub stage: String,
    pub custom_extension: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetScope {
    NotSpecified,
    SpecificDirectoryUsers,
    SpecificConnectedOrganizationUsers,
    SpecificDirectoryServicePrincipals,
    AllMemberUsers,
    AllDirectoryUsers,
    AllDirectoryServicePrincipals,
    AllConfiguredConnectedOrganizationUsers,
    AllExternalUsers,
}

impl TargetScope {
    pub fn wire(self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Policy {
    /// The policy as Graph JSON settings (`description` … `customExtensionStageSettings`)
    /// in the file's naming; `None` for the settings left out.
    pub fn settings(&self) -> BTreeMap<&'static str, Value> {
        let mut m = BTreeMap::new();
        let mut put = |k: &'static str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k, v);
            }
        };
        put("description", self.description.clone().map(Value::String));
        put("allowedTargetScope", self.allowed_target_scope.map(TargetScope::wire));
        put("specificAllowedTargets", self.specific_allowed_targets.clone().map(Value::Array));
        put("expiration", self.expiration.clone());
        put("requestorSettings", self.requestor_settings.clone());
        put("requestApprovalSettings", self.request_approval_settings.clone());
        put("reviewSettings", self.review_settings.clone());
        put("questions", self.questions.clone().map(Value::Array));
        put("automaticRequestSettings", self.automatic_request_settings.clone());
        put(
            "customExtensionStageSettings",
            self.custom_extension_stage_settings.as_ref().map(|s| serde_json::to_value(s).unwrap_or(Value::Null)),
        );
        m
    }
}

pub const HEADER: &str = "\
# Grantry governance configuration (access as code).
# Review a change with `grantry plan FILE`, make it with `grantry apply FILE --plan ID`.
# Names are keys; users are named by userPrincipalName, groups and connected organizations
# by display name.
";

/// The file's text: a header, then the document with sorted names.
pub fn to_yaml(doc: &Document) -> anyhow::Result<String> {
    Ok(format!("{HEADER}{}", serde_yaml_ng::to_string(doc)?))
}
