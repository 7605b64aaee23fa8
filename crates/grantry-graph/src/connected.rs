//! Connected organizations in the v1.0 and beta shapes, and the bodies that create and
//! change them. Beta adds `createdBy` and `modifiedBy`; both roots use the same names
//! otherwise.

use crate::Body;
use crate::render::Dialect;
use crate::wire::Ts;
use grantry_domain::enums::{ConnectedOrganizationState, SocialIdentitySourceType};
use grantry_domain::model::{ConnectedOrganization, IdentitySource};
use grantry_domain::{Error, Result};
use serde::Serialize;

/// The entity set below `identityGovernance/entitlementManagement` (same in both roots).
pub const SET: &str = "connectedOrganizations";

fn absent<T>(v: &Option<T>) -> bool {
    v.is_none()
}

/// `connectedOrganization`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedOrganizationView<'a> {
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    identity_sources: Vec<IdentitySourceView<'a>>,
    state: &'static str,
    created_date_time: Ts,
    modified_date_time: Ts,
    #[serde(skip_serializing_if = "absent")]
    created_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    modified_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    internal_sponsors: Option<Vec<crate::directory::DirectoryObjectView<'a>>>,
    #[serde(skip_serializing_if = "absent")]
    external_sponsors: Option<Vec<crate::directory::DirectoryObjectView<'a>>>,
}

impl<'a> ConnectedOrganizationView<'a> {
    pub fn new(o: &'a ConnectedOrganization, d: Dialect) -> Self {
        let beta = d.is_beta();
        ConnectedOrganizationView {
            id: &o.id,
            display_name: &o.display_name,
            description: o.description.as_deref(),
            identity_sources: o.identity_sources.iter().map(IdentitySourceView::new).collect(),
            state: if beta { o.state.beta() } else { o.state.v1() },
            created_date_time: Ts(o.created_date_time),
            modified_date_time: Ts(o.modified_date_time),
            created_by: beta.then_some(o.created_by.as_deref()),
            modified_by: beta.then_some(o.modified_by.as_deref()),
            internal_sponsors: None,
            external_sponsors: None,
        }
    }

    /// With the expanded sponsors (`$expand=internalSponsors,externalSponsors`).
    pub fn with_sponsors(
        mut self,
        internal: Option<Vec<crate::directory::DirectoryObjectView<'a>>>,
        external: Option<Vec<crate::directory::DirectoryObjectView<'a>>>,
    ) -> Self {
        self.internal_sponsors = internal;
        self.external_sponsors = external;
        self
    }
}

/// One `identitySource`, with its `@odata.type`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySourceView<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: String,
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "absent")]
    domain_name: Option<&'a str>,
    #[serde(skip_serializing_if = "absent")]
    tenant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "absent")]
    issuer_uri: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "absent")]
    social_identity_source_type: Option<&'static str>,
}

impl<'a> IdentitySourceView<'a> {
    pub fn new(s: &'a IdentitySource) -> Self {
        let mut v = IdentitySourceView {
            odata_type: format!("#microsoft.graph.{}", s.type_name()),
            display_name: None,
            domain_name: None,
            tenant_id: None,
            issuer_uri: None,
            social_identity_source_type: None,
        };
        match s {
            IdentitySource::Domain { domain_name, display_name } => {
                v.domain_name = Some(domain_name);
                v.display_name = display_name.as_deref();
            }
            IdentitySource::AzureActiveDirectoryTenant { tenant_id, display_name } => {
                v.tenant_id = Some(tenant_id);
                v.display_name = display_name.as_deref();
            }
            IdentitySource::ExternalDomainFederation { domain_name, issuer_uri, display_name } => {
                v.domain_name = Some(domain_name);
                v.issuer_uri = Some(issuer_uri.as_deref());
                v.display_name = display_name.as_deref();
            }
            IdentitySource::Social { social_identity_source_type, display_name } => {
                v.social_identity_source_type = Some(social_identity_source_type.v1());
                v.display_name = display_name.as_deref();
            }
        }
        v
    }
}

const SOURCE_TYPES: &str =
    "domainIdentitySource, azureActiveDirectoryTenant, externalDomainFederation, socialIdentitySource";

/// Parses `identitySources`: each element names its type with `@odata.type`.
pub fn identity_sources(b: &Body<'_>) -> Result<Vec<IdentitySource>> {
    let mut out = Vec::new();
    for (i, s) in b.objects(&["identitySources"])?.into_iter().enumerate() {
        let at = format!("identitySources[{i}]");
        let Some(t) = s.odata_type() else {
            return Err(Error::invalid_property(
                &format!("{at}.@odata.type"),
                format!("Each identity source must name its type in '@odata.type': one of {SOURCE_TYPES}."),
            ));
        };
        let display_name = s.str(&["displayName"])?;
        let required = |key: &str| -> Result<String> {
            s.str(&[key])?
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::invalid_property(&format!("{at}.{key}"), format!("A {t} needs '{key}'.")))
        };
        let source = match t.to_ascii_lowercase().as_str() {
            "domainidentitysource" => IdentitySource::Domain { domain_name: required("domainName")?, display_name },
            "azureactivedirectorytenant" => {
                IdentitySource::AzureActiveDirectoryTenant { tenant_id: required("tenantId")?, display_name }
            }
            "externaldomainfederation" => IdentitySource::ExternalDomainFederation {
                domain_name: required("domainName")?,
                issuer_uri: s.str(&["issuerUri"])?,
                display_name,
            },
            "socialidentitysource" => IdentitySource::Social {
                social_identity_source_type: s
                    .enumeration(
                        &["socialIdentitySourceType"],
                        SocialIdentitySourceType::parse,
                        &SocialIdentitySourceType::allowed(),
                    )?
                    .unwrap_or(SocialIdentitySourceType::Facebook),
                display_name,
            },
            _ => {
                return Err(Error::invalid_property(
                    &format!("{at}.@odata.type"),
                    format!("'{t}' is not an identity source Grantry supports; use one of {SOURCE_TYPES}."),
                ));
            }
        };
        s.refuse_undefined(source.type_name(), |_| false)?;
        out.push(source);
    }
    Ok(out)
}

/// The state property, when present.
pub fn state(b: &Body<'_>) -> Result<Option<ConnectedOrganizationState>> {
    b.enumeration(&["state"], ConnectedOrganizationState::parse, &ConnectedOrganizationState::allowed())
}
