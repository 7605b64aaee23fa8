//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` (RFC 7643 §5-7). The schemas
//! publish only the attributes Grantry stores, because clients (and `scim2-tester`) write
//! what is published and expect to read it back.

use super::filter::{CORE_GROUP, CORE_USER, ENTERPRISE_USER};
use super::{LIST_SCHEMA, MAX_COUNT, ScimError, authorize, base_url, scim_json};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

#[derive(Serialize)]
struct Supported {
    supported: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bulk {
    supported: bool,
    max_operations: u32,
    max_payload_size: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FilterSupport {
    supported: bool,
    max_results: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthScheme {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    description: &'static str,
    primary: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DocMeta {
    resource_type: &'static str,
    location: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceProviderConfig {
    schemas: [&'static str; 1],
    patch: Supported,
    bulk: Bulk,
    filter: FilterSupport,
    change_password: Supported,
    sort: Supported,
    etag: Supported,
    authentication_schemes: Vec<AuthScheme>,
    meta: DocMeta,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SchemaExtension {
    schema: &'static str,
    required: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceType {
    schemas: [&'static str; 1],
    id: &'static str,
    name: &'static str,
    endpoint: &'static str,
    description: &'static str,
    schema: &'static str,
    schema_extensions: Vec<SchemaExtension>,
    meta: DocMeta,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attribute {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    multi_valued: bool,
    description: &'static str,
    required: bool,
    case_exact: bool,
    mutability: &'static str,
    returned: &'static str,
    uniqueness: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sub_attributes: Vec<Attribute>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reference_types: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    canonical_values: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Schema {
    schemas: [&'static str; 1],
    id: &'static str,
    name: &'static str,
    description: &'static str,
    attributes: Vec<Attribute>,
    meta: DocMeta,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<T> {
    schemas: [&'static str; 1],
    total_results: usize,
    start_index: usize,
    items_per_page: usize,
    #[serde(rename = "Resources")]
    resources: Vec<T>,
}

fn list<T: Serialize>(items: Vec<T>) -> Response {
    let n = items.len();
    scim_json(
        StatusCode::OK,
        &List { schemas: [LIST_SCHEMA], total_results: n, start_index: 1, items_per_page: n, resources: items },
    )
}

pub async fn service_provider_config(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ScimError> {
    authorize(&state, &headers).await?;
    let body = ServiceProviderConfig {
        schemas: [SPC_SCHEMA],
        patch: Supported { supported: true },
        bulk: Bulk { supported: false, max_operations: 0, max_payload_size: 0 },
        filter: FilterSupport { supported: true, max_results: MAX_COUNT },
        change_password: Supported { supported: false },
        sort: Supported { supported: false },
        etag: Supported { supported: false },
        authentication_schemes: vec![AuthScheme {
            kind: "oauthbearertoken",
            name: "Bearer token",
            description: "A token made with `grantry scim token create NAME`, sent as 'Authorization: Bearer <token>'.",
            primary: true,
        }],
        meta: DocMeta {
            resource_type: "ServiceProviderConfig",
            location: format!("{}/ServiceProviderConfig", base_url(&state)),
        },
    };
    Ok(scim_json(StatusCode::OK, &body))
}

fn resource_type_docs(base: &str) -> Vec<ResourceType> {
    vec![
        ResourceType {
            schemas: [RESOURCE_TYPE_SCHEMA],
            id: "User",
            name: "User",
            endpoint: "/Users",
            description: "A user of Grantry's directory",
            schema: CORE_USER,
            schema_extensions: vec![SchemaExtension { schema: ENTERPRISE_USER, required: false }],
            meta: DocMeta { resource_type: "ResourceType", location: format!("{base}/ResourceTypes/User") },
        },
        ResourceType {
            schemas: [RESOURCE_TYPE_SCHEMA],
            id: "Group",
            name: "Group",
            endpoint: "/Groups",
            description: "A security group of Grantry's directory",
            schema: CORE_GROUP,
            schema_extensions: Vec::new(),
            meta: DocMeta { resource_type: "ResourceType", location: format!("{base}/ResourceTypes/Group") },
        },
    ]
}

pub async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ScimError> {
    authorize(&state, &headers).await?;
    Ok(list(resource_type_docs(&base_url(&state))))
}

pub async fn resource_type(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    authorize(&state, &headers).await?;
    let doc = resource_type_docs(&base_url(&state)).into_iter().find(|d| d.id.eq_ignore_ascii_case(&id));
    match doc {
        Some(d) => Ok(scim_json(StatusCode::OK, &d)),
        None => Err(ScimError::not_found(format!("No resource type '{id}'; there are User and Group."))),
    }
}

/// A readWrite, returned-by-default, non-unique string attribute (the most common kind).
fn text(name: &'static str, description: &'static str) -> Attribute {
    Attribute {
        name,
        kind: "string",
        multi_valued: false,
        description,
        required: false,
        case_exact: false,
        mutability: "readWrite",
        returned: "default",
        uniqueness: "none",
        sub_attributes: Vec::new(),
        reference_types: Vec::new(),
        canonical_values: Vec::new(),
    }
}

fn schema_docs(base: &str) -> Vec<Schema> {
    let id = Attribute {
        case_exact: true,
        mutability: "readOnly",
        returned: "always",
        uniqueness: "server",
        ..text("id", "The object id, assigned by Grantry")
    };
    let external_id =
        || Attribute { case_exact: true, ..text("externalId", "The client's identifier of the resource") };
    let user = Schema {
        schemas: [SCHEMA_SCHEMA],
        id: CORE_USER,
        name: "User",
        description: "User Account",
        attributes: vec![
            id,
            external_id(),
            Attribute {
                required: true,
                uniqueness: "server",
                ..text("userName", "Unique identifier (the userPrincipalName, alias@domain)")
            },
            Attribute {
                kind: "complex",
                sub_attributes: vec![text("givenName", "Given name"), text("familyName", "Family name")],
                ..text("name", "The user's name")
            },
            text("displayName", "The name shown for the user"),
            text("title", "Job title"),
            Attribute { kind: "boolean", ..text("active", "Whether the user may sign in") },
            Attribute {
                kind: "complex",
                multi_valued: true,
                sub_attributes: vec![
                    text("value", "Email address"),
                    Attribute { canonical_values: vec!["work"], ..text("type", "Kind of address (work)") },
                    Attribute { kind: "boolean", ..text("primary", "The address Grantry keeps") },
                ],
                ..text("emails", "Email addresses; Grantry keeps the primary one")
            },
        ],
        meta: DocMeta { resource_type: "Schema", location: format!("{base}/Schemas/{CORE_USER}") },
    };
    let group = Schema {
        schemas: [SCHEMA_SCHEMA],
        id: CORE_GROUP,
        name: "Group",
        description: "Group",
        attributes: vec![
            Attribute {
                case_exact: true,
                mutability: "readOnly",
                returned: "always",
                uniqueness: "server",
                ..text("id", "The object id, assigned by Grantry")
            },
            external_id(),
            Attribute { required: true, uniqueness: "server", ..text("displayName", "The group's name, unique") },
            Attribute {
                kind: "complex",
                multi_valued: true,
                sub_attributes: vec![
                    Attribute { mutability: "immutable", ..text("value", "The member's id") },
                    Attribute {
                        kind: "reference",
                        mutability: "immutable",
                        reference_types: vec!["User", "Group"],
                        ..text("$ref", "The member's URI")
                    },
                    Attribute { mutability: "readOnly", ..text("display", "The member's display name") },
                    Attribute {
                        mutability: "immutable",
                        canonical_values: vec!["User", "Group"],
                        ..text("type", "User or Group")
                    },
                ],
                ..text("members", "Direct members (users and groups)")
            },
        ],
        meta: DocMeta { resource_type: "Schema", location: format!("{base}/Schemas/{CORE_GROUP}") },
    };
    let enterprise = Schema {
        schemas: [SCHEMA_SCHEMA],
        id: ENTERPRISE_USER,
        name: "EnterpriseUser",
        description: "Enterprise User",
        attributes: vec![
            text("department", "Department"),
            Attribute {
                kind: "complex",
                sub_attributes: vec![
                    text("value", "The manager's id"),
                    Attribute { kind: "reference", reference_types: vec!["User"], ..text("$ref", "The manager's URI") },
                ],
                ..text("manager", "The user's manager (a user of the directory)")
            },
        ],
        meta: DocMeta { resource_type: "Schema", location: format!("{base}/Schemas/{ENTERPRISE_USER}") },
    };
    vec![user, group, enterprise]
}

pub async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ScimError> {
    authorize(&state, &headers).await?;
    Ok(list(schema_docs(&base_url(&state))))
}

pub async fn schema(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    authorize(&state, &headers).await?;
    let doc = schema_docs(&base_url(&state)).into_iter().find(|d| d.id.eq_ignore_ascii_case(&id));
    match doc {
        Some(d) => Ok(scim_json(StatusCode::OK, &d)),
        None => Err(ScimError::not_found(format!("No schema '{id}'."))),
    }
}
