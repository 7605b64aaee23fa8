//! The directory that access is granted to and delivered into: users, groups and their
//! memberships, and role assignments (directory roles and entitlement management roles).

use crate::enums::UserType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub mail_nickname: Option<String>,
    pub user_type: UserType,
    pub account_enabled: bool,
    pub manager_id: Option<String>,
    /// Set when the user was created by delivering an assignment to an external email.
    pub external_user_state: Option<String>,
    pub created_date_time: DateTime<Utc>,
    /// Further directory attributes (those membership rules test), stored flat.
    /// (Boxed: most users carry few of them, and `User` travels inside enums.)
    #[serde(flatten, default)]
    pub profile: Box<UserProfile>,
}

/// The user's organisational and location attributes beyond the core ones.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    /// `identities`: how the user signs in (for a guest, their home tenant or domain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<ObjectIdentity>,
}

/// `objectIdentity`: a sign-in identity of a user.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIdentity {
    pub sign_in_type: Option<String>,
    pub issuer: Option<String>,
    pub issuer_assigned_id: Option<String>,
}

impl UserProfile {
    /// The issuers of the user's identities.
    pub fn identity_issuers(&self) -> impl Iterator<Item = &str> {
        self.identities.iter().filter_map(|i| i.issuer.as_deref())
    }

    /// (Graph property name, value) of every attribute.
    pub fn fields(&self) -> [(&'static str, &Option<String>); 11] {
        [
            ("companyName", &self.company_name),
            ("country", &self.country),
            ("city", &self.city),
            ("state", &self.state),
            ("streetAddress", &self.street_address),
            ("postalCode", &self.postal_code),
            ("officeLocation", &self.office_location),
            ("employeeType", &self.employee_type),
            ("employeeId", &self.employee_id),
            ("usageLocation", &self.usage_location),
            ("preferredLanguage", &self.preferred_language),
        ]
    }

    /// The attribute named `name` (Graph's camelCase), for writing.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "companyName" => &mut self.company_name,
            "country" => &mut self.country,
            "city" => &mut self.city,
            "state" => &mut self.state,
            "streetAddress" => &mut self.street_address,
            "postalCode" => &mut self.postal_code,
            "officeLocation" => &mut self.office_location,
            "employeeType" => &mut self.employee_type,
            "employeeId" => &mut self.employee_id,
            "usageLocation" => &mut self.usage_location,
            "preferredLanguage" => &mut self.preferred_language,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
    pub mail: Option<String>,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub group_types: Vec<String>,
    pub visibility: Option<String>,
    pub created_date_time: DateTime<Utc>,
}

/// A group membership or ownership link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupRelation {
    Member,
    Owner,
}

impl GroupRelation {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupRelation::Member => "member",
            GroupRelation::Owner => "owner",
        }
    }
}

/// `unifiedRoleAssignment` of either provider: `/roleManagement/directory` (Entra roles,
/// `directoryScopeId` "/") or `/roleManagement/entitlementManagement` (catalog-scoped
/// roles with `appScopeId` "/AccessPackageCatalog/{id}", or "/" for tenant-wide ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub id: String,
    pub provider: RoleProvider,
    pub principal_id: String,
    pub role_definition_id: String,
    pub directory_scope_id: Option<String>,
    pub app_scope_id: Option<String>,
    pub created_date_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RoleProvider {
    Directory,
    EntitlementManagement,
}

impl RoleProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleProvider::Directory => "directory",
            RoleProvider::EntitlementManagement => "entitlementManagement",
        }
    }
}

/// Directory role template ids, as in Entra.
pub mod directory_roles {
    pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
    pub const IDENTITY_GOVERNANCE_ADMINISTRATOR: &str = "45d8d3c5-c802-45c6-b32a-1d70b5e1e86e";
    pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
    pub const GROUPS_ADMINISTRATOR: &str = "fdd7a751-b60b-444a-984c-02652fe8fa1c";
    pub const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
    pub const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";
    pub const SECURITY_ADMINISTRATOR: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
    pub const COMPLIANCE_ADMINISTRATOR: &str = "17315797-102d-40b4-93e0-432062caca18";
    pub const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

    /// (template id, display name) of every directory role Grantry knows.
    pub const ALL: &[(&str, &str)] = &[
        (GLOBAL_ADMINISTRATOR, "Global Administrator"),
        (IDENTITY_GOVERNANCE_ADMINISTRATOR, "Identity Governance Administrator"),
        (USER_ADMINISTRATOR, "User Administrator"),
        (GROUPS_ADMINISTRATOR, "Groups Administrator"),
        (GLOBAL_READER, "Global Reader"),
        (SECURITY_READER, "Security Reader"),
        (SECURITY_ADMINISTRATOR, "Security Administrator"),
        (COMPLIANCE_ADMINISTRATOR, "Compliance Administrator"),
        (PRIVILEGED_ROLE_ADMINISTRATOR, "Privileged Role Administrator"),
    ];
}

/// Entitlement management role definition ids (reference §11.3).
pub mod em_roles {
    pub const CATALOG_CREATOR: &str = "ba92d953-d8e0-4e39-a797-0cbedb0a89e8";
    /// Entra's documentation prints this id with 31 hex digits; Grantry uses the printed
    /// prefix padded with a trailing zero so that it is a well-formed GUID.
    pub const CONNECTED_ORGANIZATION_ADMINISTRATOR: &str = "e65cf63f-9cc2-4b48-8871-cb667e9d90f0";
    pub const CATALOG_OWNER: &str = "ae79f266-94d4-4dab-b730-feca7e132178";
    pub const CATALOG_READER: &str = "44272f93-9762-48e8-af59-1b5351b1d6b3";
    pub const ACCESS_PACKAGE_MANAGER: &str = "7f480852-ebdc-47d4-87de-0d8498384a83";
    pub const ACCESS_PACKAGE_ASSIGNMENT_MANAGER: &str = "e2182095-804a-4656-ae11-64734e9b7ae5";

    /// (id, display name, description, catalog-scoped?)
    pub const ALL: &[(&str, &str, &str, bool)] = &[
        (CATALOG_CREATOR, "Catalog creator", "Create catalogs and become their first owner.", false),
        (
            CONNECTED_ORGANIZATION_ADMINISTRATOR,
            "Connected Organization Administrator",
            "Create, update and delete connected organizations and their sponsors.",
            false,
        ),
        (
            CATALOG_OWNER,
            "Catalog owner",
            "Edit and delete the catalog, manage its resources, owners and everything in it.",
            true,
        ),
        (CATALOG_READER, "Catalog reader", "Read everything in the catalog.", true),
        (
            ACCESS_PACKAGE_MANAGER,
            "Access package manager",
            "Manage access packages and their policies in the catalog.",
            true,
        ),
        (
            ACCESS_PACKAGE_ASSIGNMENT_MANAGER,
            "Access package assignment manager",
            "View and manage assignments and requests of the catalog's access packages.",
            true,
        ),
    ];

    pub const CATALOG_SCOPE_PREFIX: &str = "/AccessPackageCatalog/";
}
