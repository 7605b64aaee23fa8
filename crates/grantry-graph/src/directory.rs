//! Users, groups and role assignments on the wire. These are the same in both dialects.

use crate::wire::{EmptyList, Nav, Ts};
use grantry_domain::model::{Group, RoleAssignment, User, UserProfile};
use serde::Serialize;

/// `user`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    id: &'a str,
    display_name: &'a str,
    user_principal_name: &'a str,
    mail: Option<&'a str>,
    given_name: Option<&'a str>,
    surname: Option<&'a str>,
    job_title: Option<&'a str>,
    department: Option<&'a str>,
    mail_nickname: Option<&'a str>,
    user_type: &'static str,
    account_enabled: bool,
    external_user_state: Option<&'a str>,
    created_date_time: Ts,
    identities: &'a [grantry_domain::model::ObjectIdentity],
    #[serde(flatten)]
    profile: Profile<'a>,
}

/// The user's profile attributes (`companyName`, `country`, …), each present, `null` when
/// unset.
pub struct Profile<'a>(&'a UserProfile);

impl Serialize for Profile<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self.0.fields();
        let mut m = s.serialize_map(Some(fields.len()))?;
        for (name, value) in fields {
            m.serialize_entry(name, value)?;
        }
        m.end()
    }
}

pub fn user(u: &User) -> UserView<'_> {
    UserView {
        odata_type: "#microsoft.graph.user",
        id: &u.id,
        display_name: &u.display_name,
        user_principal_name: &u.user_principal_name,
        mail: u.mail.as_deref(),
        given_name: u.given_name.as_deref(),
        surname: u.surname.as_deref(),
        job_title: u.job_title.as_deref(),
        department: u.department.as_deref(),
        mail_nickname: u.mail_nickname.as_deref(),
        user_type: u.user_type.v1(),
        account_enabled: u.account_enabled,
        external_user_state: u.external_user_state.as_deref(),
        created_date_time: Ts(u.created_date_time),
        identities: &u.profile.identities,
        profile: Profile(&u.profile),
    }
}

/// `group`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    mail_nickname: Option<&'a str>,
    mail: Option<&'a str>,
    mail_enabled: bool,
    security_enabled: bool,
    group_types: &'a [String],
    visibility: Option<&'a str>,
    created_date_time: Ts,
}

pub fn group(g: &Group) -> GroupView<'_> {
    GroupView {
        odata_type: "#microsoft.graph.group",
        id: &g.id,
        display_name: &g.display_name,
        description: g.description.as_deref(),
        mail_nickname: g.mail_nickname.as_deref(),
        mail: g.mail.as_deref(),
        mail_enabled: g.mail_enabled,
        security_enabled: g.security_enabled,
        group_types: &g.group_types,
        visibility: g.visibility.as_deref(),
        created_date_time: Ts(g.created_date_time),
    }
}

/// A `directoryObject`: a user or a group, each with its `@odata.type`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum DirectoryObjectView<'a> {
    User(UserView<'a>),
    Group(GroupView<'a>),
}

/// `unifiedRoleAssignment`, with the navigation properties `$expand` named.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentView<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    id: &'a str,
    principal_id: &'a str,
    role_definition_id: &'a str,
    directory_scope_id: Option<&'a str>,
    app_scope_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Nav<UserView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_definition: Nav<RoleDefinitionView<'a>>,
}

pub fn role_assignment(r: &RoleAssignment) -> RoleAssignmentView<'_> {
    RoleAssignmentView {
        odata_type: "#microsoft.graph.unifiedRoleAssignment",
        id: &r.id,
        principal_id: &r.principal_id,
        role_definition_id: &r.role_definition_id,
        directory_scope_id: r.directory_scope_id.as_deref(),
        app_scope_id: r.app_scope_id.as_deref(),
        principal: None,
        role_definition: None,
    }
}

impl<'a> RoleAssignmentView<'a> {
    /// With the expanded `principal` (`None` sends `null`).
    pub fn with_principal(mut self, principal: Option<UserView<'a>>) -> Self {
        self.principal = Some(principal);
        self
    }

    /// With the expanded `roleDefinition` (`None` sends `null`).
    pub fn with_role_definition(mut self, definition: Option<RoleDefinitionView<'a>>) -> Self {
        self.role_definition = Some(definition);
        self
    }
}

/// `unifiedRoleDefinition` of a built-in role (id = template id).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinitionView<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    is_built_in: bool,
    is_enabled: bool,
    template_id: &'a str,
    version: &'static str,
    role_permissions: EmptyList,
}

pub fn role_definition<'a>(id: &'a str, display_name: &'a str, description: Option<&'a str>) -> RoleDefinitionView<'a> {
    RoleDefinitionView {
        odata_type: "#microsoft.graph.unifiedRoleDefinition",
        id,
        display_name,
        description,
        is_built_in: true,
        is_enabled: true,
        template_id: id,
        version: "1",
        role_permissions: EmptyList,
    }
}

/// The target of an `@odata.id` reference such as
/// `https://graph.microsoft.com/v1.0/directoryObjects/{id}`, `…/users/{id}`,
/// `…/groups('{id}')` or a bare id: the entity set named before the key (lower-cased, when
/// there is one) and the key. Any base URL is accepted.
pub fn parse_odata_id(reference: &str) -> Option<(Option<String>, String)> {
    let path = reference.trim();
    let path = path.split(['?', '#']).next().unwrap_or("").trim_end_matches('/');
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.pop()?;
    let (set, key) = match last.find('(') {
        Some(open) if last.ends_with(')') => {
            let inner = &last[open + 1..last.len() - 1];
            (Some(&last[..open]), inner.trim().trim_matches('\'').trim())
        }
        _ => (segments.last().copied(), last),
    };
    let key = percent_decode(key);
    // A URL that ends in an entity set (`…/users/`) names no object.
    let is_set_name =
        ["users", "groups", "directoryObjects", "servicePrincipals"].iter().any(|n| n.eq_ignore_ascii_case(&key));
    if key.is_empty() || is_set_name || key.contains(['/', '(', ')', '\'', ' ']) {
        return None;
    }
    let set = set.filter(|s| !s.contains(':')).map(|s| s.to_ascii_lowercase());
    Some((set, key))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::parse_odata_id;

    #[test]
    fn odata_id_forms() {
        let id = "5f4e0a5c-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
        assert_eq!(
            parse_odata_id(&format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")),
            Some((Some("directoryobjects".into()), id.into()))
        );
        assert_eq!(
            parse_odata_id(&format!("http://localhost:8080/beta/users/{id}/")),
            Some((Some("users".into()), id.into()))
        );
        assert_eq!(parse_odata_id(&format!("https://x/v1.0/groups('{id}')")), Some((Some("groups".into()), id.into())));
        assert_eq!(parse_odata_id(id), Some((None, id.into())));
        assert_eq!(parse_odata_id("https://graph.microsoft.com/"), Some((None, "graph.microsoft.com".into())));
        assert_eq!(parse_odata_id(""), None);
        assert_eq!(parse_odata_id("https://x/users/a%20b"), None);
        assert_eq!(parse_odata_id("https://x/v1.0/users/"), None);
    }
}
