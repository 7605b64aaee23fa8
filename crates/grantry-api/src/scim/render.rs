//! SCIM resources as typed structs (RFC 7643 §4). A resource is rendered once, then filters,
//! PATCH and attribute projection work on its JSON form.

use super::ScimError;
use super::filter::{CORE_GROUP, CORE_USER, ENTERPRISE_USER};
use chrono::{DateTime, SecondsFormat, Utc};
use grantry_core::scim::{ScimGroup, ScimUser};
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    pub schemas: [&'static str; 1],
    pub total_results: usize,
    pub start_index: usize,
    pub items_per_page: usize,
    #[serde(rename = "Resources")]
    pub resources: Vec<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub resource_type: &'static str,
    pub created: String,
    pub last_modified: String,
    pub location: String,
    pub version: String,
}

fn meta(resource_type: &'static str, location: String, created: DateTime<Utc>, modified: DateTime<Utc>) -> Meta {
    Meta {
        resource_type,
        created: created.to_rfc3339_opts(SecondsFormat::Millis, true),
        last_modified: modified.to_rfc3339_opts(SecondsFormat::Millis, true),
        location,
        version: format!("W/\"{}\"", modified.timestamp_micros()),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserResource<'a> {
    schemas: Vec<&'static str>,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    user_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Name<'a>>,
    display_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    active: bool,
    emails: Vec<Email<'a>>,
    #[serde(
        rename = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        skip_serializing_if = "Option::is_none"
    )]
    enterprise: Option<Enterprise<'a>>,
    meta: Meta,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Name<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<&'a str>,
}

#[derive(Serialize)]
struct Email<'a> {
    value: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    primary: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Enterprise<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manager: Option<Manager>,
}

#[derive(Serialize)]
struct Manager {
    value: String,
    #[serde(rename = "$ref")]
    reference: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupResource<'a> {
    schemas: [&'static str; 1],
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    display_name: &'a str,
    members: Vec<Member<'a>>,
    meta: Meta,
}

#[derive(Serialize)]
struct Member<'a> {
    value: &'a str,
    #[serde(rename = "$ref")]
    reference: String,
    display: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

fn to_value<T: Serialize>(t: &T) -> Result<Value, ScimError> {
    serde_json::to_value(t).map_err(|e| ScimError::internal(format!("cannot render a SCIM resource: {e}")))
}

pub fn user(base: &str, u: &ScimUser) -> Result<Value, ScimError> {
    let user = &u.user;
    // Absent attributes are left out (a removed name or extension reads back as removed).
    let name = (user.given_name.is_some() || user.surname.is_some())
        .then_some(Name { given_name: user.given_name.as_deref(), family_name: user.surname.as_deref() });
    let enterprise = (user.department.is_some() || user.manager_id.is_some()).then(|| Enterprise {
        department: user.department.as_deref(),
        manager: user.manager_id.as_ref().map(|m| Manager { value: m.clone(), reference: format!("{base}/Users/{m}") }),
    });
    let schemas = if enterprise.is_some() { vec![CORE_USER, ENTERPRISE_USER] } else { vec![CORE_USER] };
    to_value(&UserResource {
        schemas,
        id: &user.id,
        external_id: u.external_id.as_deref(),
        user_name: &u.user_name,
        name,
        display_name: &user.display_name,
        title: user.job_title.as_deref(),
        active: user.account_enabled,
        emails: user.mail.as_deref().map(|m| Email { value: m, kind: "work", primary: true }).into_iter().collect(),
        enterprise,
        meta: meta("User", format!("{base}/Users/{}", user.id), user.created_date_time, u.last_modified),
    })
}

pub fn group(base: &str, g: &ScimGroup) -> Result<Value, ScimError> {
    let group = &g.group;
    to_value(&GroupResource {
        schemas: [CORE_GROUP],
        id: &group.id,
        external_id: g.external_id.as_deref(),
        display_name: &group.display_name,
        members: g
            .members
            .iter()
            .map(|m| Member {
                value: &m.id,
                reference: format!("{base}/{}s/{}", m.kind, m.id),
                display: &m.display,
                kind: m.kind,
            })
            .collect(),
        meta: meta("Group", format!("{base}/Groups/{}", group.id), group.created_date_time, g.last_modified),
    })
}
