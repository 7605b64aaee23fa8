//! Who is calling and what they may do.
//!
//! Two layers are checked on every operation, as in Entra: the Graph permission carried by
//! the token (delegated `scp` or application `roles`), and, for delegated callers, the
//! signed-in user's directory roles and entitlement management roles (catalog-scoped or
//! tenant-wide). Roles are read from the database on each request, so a revoked role takes
//! effect at once, whatever the token says.

use grantry_domain::model::{directory_roles as dr, em_roles};
use grantry_domain::{Error, Result};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Delegated: a signed-in user.
    User,
    /// Application (client credentials).
    App,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// User object id, or the application's id.
    pub id: String,
    pub display_name: Option<String>,
    /// Delegated scopes or application roles, lower-cased.
    pub permissions: BTreeSet<String>,
}

/// The authenticated caller, with the roles the directory gives a delegated user.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub directory_roles: BTreeSet<String>,
    /// (role definition id, scope) pairs; scope is "/" or "/AccessPackageCatalog/{id}".
    pub em_roles: Vec<(String, String)>,
}

/// Graph permissions, by what they allow.
pub mod perms {
    pub const EM_READ: &[&str] = &["EntitlementManagement.Read.All", "EntitlementManagement.ReadWrite.All"];
    pub const EM_WRITE: &[&str] = &["EntitlementManagement.ReadWrite.All"];
    /// End-user operations: self-service requests, own cancel, applicable requirements.
    pub const EM_SUBJECT: &[&str] = &["EntitlementMgmt-SubjectAccess.ReadWrite", "EntitlementManagement.ReadWrite.All"];
    pub const EM_SUBJECT_READ: &[&str] = &[
        "EntitlementMgmt-SubjectAccess.ReadWrite",
        "EntitlementManagement.Read.All",
        "EntitlementManagement.ReadWrite.All",
    ];
    pub const USER_READ: &[&str] =
        &["User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
    pub const USER_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
    pub const SELF_READ: &[&str] = &[
        "User.Read",
        "User.ReadWrite",
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ];
    pub const GROUP_READ: &[&str] = &[
        "Group.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ];
    pub const GROUP_WRITE: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
    pub const GROUP_MEMBER_WRITE: &[&str] =
        &["GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"];
    pub const ROLE_READ: &[&str] = &[
        "RoleManagement.Read.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ];
    pub const ROLE_WRITE: &[&str] = &["RoleManagement.ReadWrite.Directory"];
    pub const EM_ROLE_READ: &[&str] = &[
        "EntitlementManagement.Read.All",
        "EntitlementManagement.ReadWrite.All",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
    ];
    pub const APPLICATION_READ: &[&str] =
        &["Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
    pub const EM_ROLE_WRITE: &[&str] = &["EntitlementManagement.ReadWrite.All", "RoleManagement.ReadWrite.Directory"];
    pub const APPLICATION_WRITE: &[&str] = &["Application.ReadWrite.All", "Directory.ReadWrite.All"];
}

/// What a caller may do within one catalog, in increasing order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CatalogRight {
    /// Catalog reader: read everything in the catalog.
    Read,
    /// Access package assignment manager: admin requests, cancel, reprocess.
    ManageAssignments,
    /// Access package manager: packages, role scopes, policies.
    ManagePackages,
    /// Catalog owner: the catalog itself and its resources.
    Own,
}

impl CatalogRight {
    fn of_role(role_definition_id: &str) -> Option<CatalogRight> {
        match role_definition_id {
            em_roles::CATALOG_READER => Some(CatalogRight::Read),
            em_roles::ACCESS_PACKAGE_ASSIGNMENT_MANAGER => Some(CatalogRight::ManageAssignments),
            em_roles::ACCESS_PACKAGE_MANAGER => Some(CatalogRight::ManagePackages),
            em_roles::CATALOG_OWNER => Some(CatalogRight::Own),
            _ => None,
        }
    }
    fn describe(self) -> &'static str {
        match self {
            CatalogRight::Read => "Catalog reader",
            CatalogRight::ManageAssignments => "Access package assignment manager",
            CatalogRight::ManagePackages => "Access package manager",
            CatalogRight::Own => "Catalog owner",
        }
    }
}

impl Caller {
    pub fn is_app(&self) -> bool {
        self.principal.kind == PrincipalKind::App
    }

    pub fn id(&self) -> &str {
        &self.principal.id
    }

    /// The user id of a delegated caller.
    pub fn user_id(&self) -> Option<&str> {
        (self.principal.kind == PrincipalKind::User).then_some(self.principal.id.as_str())
    }

    pub fn has_permission(&self, any_of: &[&str]) -> bool {
        any_of.iter().any(|p| self.principal.permissions.contains(&p.to_ascii_lowercase()))
    }

    /// Refuses unless the token carries one of `any_of`.
    pub fn require(&self, any_of: &[&str]) -> Result<()> {
        if self.has_permission(any_of) {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "The token lacks the permission this operation needs; grant one of: {}.",
                any_of.join(", ")
            )))
        }
    }

    pub fn has_directory_role(&self, template_id: &str) -> bool {
        self.directory_roles.contains(template_id)
    }

    /// Global Administrator or Identity Governance Administrator: everything in entitlement
    /// management.
    pub fn is_em_admin(&self) -> bool {
        self.has_directory_role(dr::GLOBAL_ADMINISTRATOR)
            || self.has_directory_role(dr::IDENTITY_GOVERNANCE_ADMINISTRATOR)
    }

    /// Directory roles that may read all of entitlement management.
    pub fn is_em_tenant_reader(&self) -> bool {
        self.is_em_admin()
            || [dr::GLOBAL_READER, dr::SECURITY_READER, dr::SECURITY_ADMINISTRATOR, dr::COMPLIANCE_ADMINISTRATOR]
                .iter()
                .any(|r| self.has_directory_role(r))
    }

    pub fn has_tenant_em_role(&self, role_definition_id: &str) -> bool {
        self.em_roles.iter().any(|(r, scope)| r == role_definition_id && scope == "/")
    }

    /// The highest right the caller's entitlement management roles give in `catalog_id`.
    pub fn catalog_right(&self, catalog_id: &str) -> Option<CatalogRight> {
        let scope = format!("{}{}", em_roles::CATALOG_SCOPE_PREFIX, catalog_id);
        self.em_roles
            .iter()
            .filter(|(_, s)| s.eq_ignore_ascii_case(&scope))
            .filter_map(|(r, _)| CatalogRight::of_role(r))
            .max()
    }

    /// Whether the caller may act with `right` in `catalog_id`, given the token permission
    /// has already been checked. Applications act tenant-wide, as in Entra.
    pub fn may_in_catalog(&self, catalog_id: &str, right: CatalogRight) -> bool {
        if self.is_app() || self.is_em_admin() {
            return true;
        }
        if right == CatalogRight::Read && self.is_em_tenant_reader() {
            return true;
        }
        self.catalog_right(catalog_id).is_some_and(|have| have >= right)
    }

    /// Checks the token permission and the catalog right together.
    pub fn require_in_catalog(&self, catalog_id: &str, right: CatalogRight) -> Result<()> {
        self.require(if right == CatalogRight::Read { perms::EM_READ } else { perms::EM_WRITE })?;
        if self.may_in_catalog(catalog_id, right) {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "This operation needs the {} role on catalog '{catalog_id}' (or Identity Governance Administrator).",
                right.describe()
            )))
        }
    }

    /// Catalogs a delegated caller may read through catalog roles; `None` means all of them.
    pub fn readable_catalogs(&self) -> Option<Vec<String>> {
        if self.is_app() || self.is_em_tenant_reader() {
            return None;
        }
        let mut ids: Vec<String> = self
            .em_roles
            .iter()
            .filter(|(r, _)| CatalogRight::of_role(r).is_some())
            .filter_map(|(_, s)| s.strip_prefix(em_roles::CATALOG_SCOPE_PREFIX).map(|id| id.to_ascii_lowercase()))
            .collect();
        ids.sort();
        ids.dedup();
        Some(ids)
    }
}

/// Completes an authenticated principal into a [`Caller`]: a delegated user must still
/// exist and be enabled, and their current roles are loaded.
pub async fn load_caller(app: &crate::App, principal: Principal) -> Result<Caller> {
    if principal.kind == PrincipalKind::App {
        return Ok(Caller { principal, directory_roles: BTreeSet::new(), em_roles: Vec::new() });
    }
    let user_id = principal.id.clone();
    let (enabled, roles) = app
        .store
        .read(move |c| {
            use grantry_store::Value;
            let enabled = c
                .query_one("SELECT account_enabled FROM users WHERE id = ?", &[Value::from(&user_id)])?
                .map(|r| r.int(0))
                .transpose()?;
            let roles = c.query(
                "SELECT provider, role_definition_id, scope FROM role_assignments WHERE principal_id = ?",
                &[Value::from(&user_id)],
            )?;
            let roles = roles.iter().map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?))).collect::<Result<Vec<_>>>()?;
            Ok((enabled, roles))
        })
        .await?;
    match enabled {
        None => return Err(Error::unauthorized("The user this token was issued to no longer exists.")),
        Some(0) => {
            return Err(Error::unauthorized(
                "The user this token was issued to is disabled (accountEnabled is false).",
            ));
        }
        Some(_) => {}
    }
    let mut directory_roles = BTreeSet::new();
    let mut em_roles = Vec::new();
    for (provider, role, scope) in roles {
        if provider == "directory" {
            directory_roles.insert(role);
        } else {
            em_roles.push((role, scope));
        }
    }
    Ok(Caller { principal, directory_roles, em_roles })
}
