//! Connected organizations: external directories and domains whose users may request
//! access packages, with the sponsors who vouch for them.

use crate::enums::{ConnectedOrganizationState, SocialIdentitySourceType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `connectedOrganization`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedOrganization {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub identity_sources: Vec<IdentitySource>,
    pub state: ConnectedOrganizationState,
    pub created_by: Option<String>,
    pub modified_by: Option<String>,
    pub created_date_time: DateTime<Utc>,
    pub modified_date_time: DateTime<Utc>,
}

/// One `identitySource` of a connected organization: how its users are recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum IdentitySource {
    /// `domainIdentitySource`: users whose email domain is `domain_name`.
    #[serde(rename_all = "camelCase")]
    Domain { domain_name: String, display_name: Option<String> },
    /// `azureActiveDirectoryTenant`: users of the Entra tenant `tenant_id`.
    #[serde(rename_all = "camelCase")]
    AzureActiveDirectoryTenant { tenant_id: String, display_name: Option<String> },
    /// `externalDomainFederation`: users of `domain_name` signing in through `issuer_uri`.
    #[serde(rename_all = "camelCase")]
    ExternalDomainFederation { domain_name: String, issuer_uri: Option<String>, display_name: Option<String> },
    /// `socialIdentitySource`: users of a social identity provider.
    #[serde(rename_all = "camelCase")]
    Social { social_identity_source_type: SocialIdentitySourceType, display_name: Option<String> },
}

impl IdentitySource {
    /// The Graph type name (`@odata.type` without the namespace).
    pub fn type_name(&self) -> &'static str {
        match self {
            IdentitySource::Domain { .. } => "domainIdentitySource",
            IdentitySource::AzureActiveDirectoryTenant { .. } => "azureActiveDirectoryTenant",
            IdentitySource::ExternalDomainFederation { .. } => "externalDomainFederation",
            IdentitySource::Social { .. } => "socialIdentitySource",
        }
    }

    /// What a requestor is matched on, lower case: a domain name, a tenant id, or for a
    /// social provider its type (`social:facebook`).
    pub fn key(&self) -> String {
        match self {
            IdentitySource::Domain { domain_name, .. }
            | IdentitySource::ExternalDomainFederation { domain_name, .. } => domain_name.trim().to_ascii_lowercase(),
            IdentitySource::AzureActiveDirectoryTenant { tenant_id, .. } => tenant_id.trim().to_ascii_lowercase(),
            IdentitySource::Social { social_identity_source_type, .. } => {
                format!("social:{}", social_identity_source_type.v1())
            }
        }
    }
}

/// Which sponsors a `$ref` collection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SponsorList {
    /// `connectedOrganization.internalSponsors`: people of this directory who vouch for
    /// the organization and may approve for its users.
    Internal,
    /// `connectedOrganization.externalSponsors`: people of the organization itself.
    External,
    /// `user.sponsors`: who is responsible for a (guest) user.
    User,
}

impl SponsorList {
    pub fn as_str(self) -> &'static str {
        match self {
            SponsorList::Internal => "internal",
            SponsorList::External => "external",
            SponsorList::User => "user",
        }
    }
}
