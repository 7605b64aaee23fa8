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
