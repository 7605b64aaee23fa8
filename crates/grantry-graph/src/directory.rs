//! Users, groups and role assignments on the wire. These are the same in both dialects.

use crate::render::{object, odata_type, opt_str, ts};
use grantry_domain::model::{Group, RoleAssignment, User};
use serde_json::{Value, json};

pub fn user(u: &User) -> Value {
    object([
        ("@odata.type", odata_type("user")),
        ("id", json!(u.id)),
        ("displayName", json!(u.display_name)),
        ("userPrincipalName", json!(u.user_principal_name)),
        ("mail", opt_str(&u.mail)),
        ("givenName", opt_str(&u.given_name)),
        ("surname", opt_str(&u.surname)),
        ("jobTitle", opt_str(&u.job_title)),
        ("department", opt_str(&u.department)),
        ("mailNickname", opt_str(&u.mail_nickname)),
        ("userType", json!(u.user_type.v1())),
        ("accountEnabled", json!(u.account_enabled)),
        ("externalUserState", opt_str(&u.external_user_state)),
        ("createdDateTime", ts(u.created_date_time)),
    ])
}

pub fn group(g: &Group) -> Value {
    object([
        ("@odata.type", odata_type("group")),
        ("id", json!(g.id)),
        ("displayName", json!(g.display_name)),
        ("description", opt_str(&g.description)),
        ("mailNickname", opt_str(&g.mail_nickname)),
        ("mail", opt_str(&g.mail)),
        ("mailEnabled", json!(g.mail_enabled)),
        ("securityEnabled", json!(g.security_enabled)),
        ("groupTypes", json!(g.group_types)),
        ("visibility", opt_str(&g.visibility)),
        ("createdDateTime", ts(g.created_date_time)),
    ])
}

pub fn role_assignment(r: &RoleAssignment) -> Value {
    let mut v = object([
        ("id", json!(r.id)),
        ("principalId", json!(r.principal_id)),
        ("roleDefinitionId", json!(r.role_definition_id)),
        ("directoryScopeId", opt_str(&r.directory_scope_id)),
        ("appScopeId", opt_str(&r.app_scope_id)),
    ]);
    if let Value::Object(map) = &mut v {
        map.insert("@odata.type".into(), odata_type("unifiedRoleAssignment"));
    }
    v
}

/// `unifiedRoleDefinition` of a built-in role (id = template id).
pub fn role_definition(id: &str, display_name: &str, description: Option<&str>) -> Value {
    object([
        ("@odata.type", odata_type("unifiedRoleDefinition")),
        ("id", json!(id)),
        ("displayName", json!(display_name)),
        ("description", description.map(|d| json!(d)).unwrap_or(Value::Null)),
        ("isBuiltIn", json!(true)),
        ("isEnabled", json!(true)),
        ("templateId", json!(id)),
        ("version", json!("1")),
        ("rolePermissions", json!([])),
    ])
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
