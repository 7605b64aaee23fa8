//! The OpenAPI 3.1 document of everything Grantry serves, built from the route modules'
//! `describe()` lists (each next to its `routes()`), served at `GET /openapi.json` and
//! committed as `docs/openapi.json`.
//!
//! Paths under `/identityGovernance/entitlementManagement` are listed with their v1.0
//! segment names; the beta names (`accessPackageCatalogs`, `accessPackageAssignmentRequests`,
//! …) are routed as aliases under both roots and not repeated here. The schemas are
//! deliberately minimal: the properties clients send and read most, with
//! `additionalProperties` left open.

use serde_json::{Map, Value, json};

/// One operation of the route table.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    pub method: &'static str,
    /// Path template relative to the root it is mounted under (`{id}` for parameters).
    pub path: String,
    pub summary: &'static str,
    /// The schema (in `components.schemas`) of the JSON request body, if it takes one.
    pub body: Option<&'static str>,
    /// The status of a success.
    pub status: u16,
    /// The schema of a success body (`None` for no content).
    pub response: Option<&'static str>,
}

/// A described operation.
pub fn op(
    method: &'static str,
    path: impl Into<String>,
    summary: &'static str,
    body: Option<&'static str>,
    status: u16,
    response: Option<&'static str>,
) -> RouteDoc {
    RouteDoc { method, path: path.into(), summary, body, status, response }
}

/// Shorthands for the common shapes.
pub fn list(path: impl Into<String>, summary: &'static str, item: &'static str) -> RouteDoc {
    op("get", path, summary, None, 200, Some(item)).collection()
}
pub fn read(path: impl Into<String>, summary: &'static str, schema: &'static str) -> RouteDoc {
    op("get", path, summary, None, 200, Some(schema))
}
pub fn create(path: impl Into<String>, summary: &'static str, schema: &'static str) -> RouteDoc {
    op("post", path, summary, Some(schema), 201, Some(schema))
}
pub fn update(path: impl Into<String>, summary: &'static str, schema: &'static str) -> RouteDoc {
    op("patch", path, summary, Some(schema), 204, None)
}
pub fn remove(path: impl Into<String>, summary: &'static str) -> RouteDoc {
    op("delete", path, summary, None, 204, None)
}
pub fn action(path: impl Into<String>, summary: &'static str) -> RouteDoc {
    op("post", path, summary, Some("Object"), 204, None)
}

impl RouteDoc {
    fn collection(mut self) -> RouteDoc {
        self.summary = self.summary.trim();
        self.response = self.response.map(|r| match r {
            "Catalog" => "CatalogCollection",
            "AccessPackage" => "AccessPackageCollection",
            "Policy" => "PolicyCollection",
            "Request" => "RequestCollection",
            "Assignment" => "AssignmentCollection",
            "Approval" => "ApprovalCollection",
            "User" => "UserCollection",
            "Group" => "GroupCollection",
            "RoleAssignment" => "RoleAssignmentCollection",
            "AccessReviewScheduleDefinition" => "AccessReviewScheduleDefinitionCollection",
            "AccessReviewInstance" => "AccessReviewInstanceCollection",
            "AccessReviewInstanceDecisionItem" => "AccessReviewInstanceDecisionItemCollection",
            "AccessReviewReviewer" => "AccessReviewReviewerCollection",
            "AccessReviewStage" => "AccessReviewStageCollection",
            _ => "Collection",
        });
        self
    }
}

/// `/identityGovernance/entitlementManagement/{rest}`.
pub fn em(rest: &str) -> String {
    if rest.is_empty() { format!("/{}", crate::respond::EM) } else { format!("/{}/{rest}", crate::respond::EM) }
}

fn entity(props: &[(&str, &str)]) -> Value {
    let mut properties = Map::new();
    for (name, kind) in props {
        let schema = match *kind {
            "string" => json!({ "type": ["string", "null"] }),
            "id" => json!({ "type": "string" }),
            "bool" => json!({ "type": ["boolean", "null"] }),
            "int" => json!({ "type": ["integer", "null"] }),
            "date" => json!({ "type": ["string", "null"], "format": "date-time" }),
            "ref" => json!({ "type": ["object", "null"], "properties": { "id": { "type": "string" } } }),
            "array" => json!({ "type": ["array", "null"] }),
            _ => json!({ "type": ["object", "null"] }),
        };
        properties.insert(name.to_string(), schema);
    }
    json!({ "type": "object", "properties": properties, "additionalProperties": true })
}

fn collection_of(item: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            "@odata.context": { "type": "string" },
            "@odata.nextLink": { "type": "string" },
            "value": { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } }
        },
        "required": ["value"]
    })
}

fn schemas() -> Value {
    let mut s = Map::new();
    s.insert("Object".into(), json!({ "type": "object", "additionalProperties": true }));
    s.insert("Collection".into(), collection_of("Object"));
    s.insert(
        "TokenRequest".into(),
        json!({
            "type": "object",
            "description": "Client credentials grant (RFC 6749 §4.4); the client may authenticate with HTTP Basic instead of client_id and client_secret.",
            "properties": {
                "grant_type": { "type": "string", "enum": ["client_credentials"] },
                "client_id": { "type": "string" },
                "client_secret": { "type": "string" },
                "scope": { "type": "string", "examples": ["https://graph.microsoft.com/.default"] }
            },
            "required": ["grant_type", "scope"]
        }),
    );
    s.insert(
        "Error".into(),
        json!({
            "type": "object",
            "description": "Graph's error envelope.",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": { "type": "string" },
                        "message": { "type": "string" },
                        "target": { "type": "string" },
                        "details": { "type": "array" },
                        "innerError": {
                            "type": "object",
                            "properties": { "request-id": { "type": "string" }, "date": { "type": "string" } }
                        }
                    },
                    "required": ["code", "message"]
                }
            },
            "required": ["error"]
        }),
    );
    let entities: [(&str, Value); 17] = [
        (
            "Catalog",
            entity(&[
                ("id", "id"),
                ("displayName", "string"),
                ("description", "string"),
                ("state", "string"),
                ("catalogType", "string"),
                ("isExternallyVisible", "bool"),
                ("createdDateTime", "date"),
            ]),
        ),
        (
            "AccessPackage",
            entity(&[
                ("id", "id"),
                ("displayName", "string"),
                ("description", "string"),
                ("isHidden", "bool"),
                ("catalog", "ref"),
                ("createdDateTime", "date"),
            ]),
        ),
        (
            "Policy",
            entity(&[
                ("id", "id"),
                ("displayName", "string"),
                ("description", "string"),
                ("allowedTargetScope", "string"),
                ("specificAllowedTargets", "array"),
                ("expiration", "object"),
                ("requestorSettings", "object"),
                ("requestApprovalSettings", "object"),
                ("questions", "array"),
                ("accessPackage", "ref"),
            ]),
        ),
        (
            "Request",
            entity(&[
                ("id", "id"),
                ("requestType", "string"),
                ("state", "string"),
                ("status", "string"),
                ("justification", "string"),
                ("assignment", "object"),
                ("schedule", "object"),
                ("answers", "array"),
                ("createdDateTime", "date"),
            ]),
        ),
        (
            "Assignment",
            entity(&[
                ("id", "id"),
                ("state", "string"),
                ("status", "string"),
                ("schedule", "object"),
                ("accessPackage", "ref"),
                ("assignmentPolicy", "ref"),
                ("target", "object"),
            ]),
        ),
        ("Approval", entity(&[("id", "id"), ("stages", "array")])),
        (
            "ApprovalStage",
            entity(&[("id", "id"), ("reviewResult", "string"), ("justification", "string"), ("status", "string")]),
        ),
        (
            "User",
            entity(&[
                ("id", "id"),
                ("displayName", "string"),
                ("userPrincipalName", "string"),
                ("mail", "string"),
                ("accountEnabled", "bool"),
                ("userType", "string"),
            ]),
        ),
        (
            "Group",
            entity(&[
                ("id", "id"),
                ("displayName", "string"),
                ("mailNickname", "string"),
                ("mailEnabled", "bool"),
                ("securityEnabled", "bool"),
                ("description", "string"),
            ]),
        ),
        (
            "RoleAssignment",
            entity(&[
                ("id", "id"),
                ("principalId", "string"),
                ("roleDefinitionId", "string"),
                ("directoryScopeId", "string"),
                ("appScopeId", "string"),
            ]),
        ),
        (
            "Reference",
            json!({ "type": "object", "properties": { "@odata.id": { "type": "string" } }, "required": ["@odata.id"] }),
        ),
        (
            "ResourceRequest",
            entity(&[("id", "id"), ("requestType", "string"), ("resource", "object"), ("catalog", "ref")]),
        ),
        (
            "AccessReviewScheduleDefinition",
            entity(&[
                ("id", "id"),
                ("displayName", "string"),
                ("status", "string"),
                ("scope", "object"),
                ("reviewers", "array"),
                ("fallbackReviewers", "array"),
                ("settings", "object"),
                ("createdDateTime", "date"),
            ]),
        ),
        (
            "AccessReviewInstance",
            entity(&[
                ("id", "id"),
                ("startDateTime", "date"),
                ("endDateTime", "date"),
                ("status", "string"),
                ("scope", "object"),
                ("reviewers", "array"),
            ]),
        ),
        (
            "AccessReviewInstanceDecisionItem",
            entity(&[
                ("id", "id"),
                ("accessReviewId", "string"),
                ("decision", "string"),
                ("justification", "string"),
                ("recommendation", "string"),
                ("applyResult", "string"),
                ("principal", "object"),
                ("resource", "object"),
                ("reviewedBy", "object"),
                ("reviewedDateTime", "date"),
            ]),
        ),
        (
            "AccessReviewStage",
            entity(&[
                ("id", "id"),
                ("startDateTime", "date"),
                ("endDateTime", "date"),
                ("status", "string"),
                ("reviewers", "array"),
                ("fallbackReviewers", "array"),
            ]),
        ),
        (
            "AccessReviewReviewer",
            entity(&[
                ("id", "id"),
                ("displayName", "string"),
                ("userPrincipalName", "string"),
                ("createdDateTime", "date"),
            ]),
        ),
    ];
    for (name, schema) in entities {
        s.insert(name.into(), schema);
    }
    for item in [
        "Catalog",
        "AccessPackage",
        "Policy",
        "Request",
        "Assignment",
        "Approval",
        "User",
        "Group",
        "RoleAssignment",
        "AccessReviewScheduleDefinition",
        "AccessReviewInstance",
        "AccessReviewInstanceDecisionItem",
        "AccessReviewReviewer",
        "AccessReviewStage",
    ] {
        s.insert(format!("{item}Collection"), collection_of(item));
    }
    Value::Object(s)
}

fn odata_parameters() -> Value {
    let p =
        |name: &str, kind: &str| json!({ "name": name, "in": "query", "required": false, "schema": { "type": kind } });
    json!([
        p("$filter", "string"),
        p("$select", "string"),
        p("$expand", "string"),
        p("$orderby", "string"),
        p("$top", "integer"),
        p("$count", "boolean")
    ])
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn operation(r: &RouteDoc, root: &str) -> Value {
    let mut o = Map::new();
    o.insert("summary".into(), json!(r.summary));
    o.insert(
        "operationId".into(),
        json!(format!("{} {}{}", r.method, root, r.path).replace(['/', '{', '}', ' ', '$', '.', '(', ')', '\''], "_")),
    );
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    if r.method == "get" && r.response.is_some_and(|s| s.ends_with("Collection")) {
        params.extend(odata_parameters().as_array().cloned().unwrap_or_default());
    }
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    if let Some(body) = r.body {
        // The OAuth token endpoint takes a form, as RFC 6749 says; everything else JSON.
        let media = if body == "TokenRequest" { "application/x-www-form-urlencoded" } else { "application/json" };
        o.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { media: { "schema": { "$ref": format!("#/components/schemas/{body}") } } } }),
        );
    }
    let mut responses = Map::new();
    let success = match r.response {
        Some(schema) => {
            json!({ "description": "Success.", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
        }
        None => json!({ "description": "Success." }),
    };
    responses.insert(r.status.to_string(), success);
    responses.insert("4XX".into(), error_response("Graph's error envelope: the request was refused."));
    o.insert("responses".into(), Value::Object(responses));
    if r.path.starts_with("/_grantry") || root.is_empty() && r.path == "/openapi.json" {
        o.insert("tags".into(), json!(["grantry"]));
    }
    Value::Object(o)
}

/// The document, from the route table's descriptions.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut add = |root: &str, r: &RouteDoc, public: bool| {
        let key = format!("{root}{}", r.path);
        let entry = paths.entry(key).or_insert_with(|| json!({}));
        let mut op = operation(r, root);
        if public && let Some(o) = op.as_object_mut() {
            o.insert("security".into(), json!([]));
        }
        if let Some(m) = entry.as_object_mut() {
            m.insert(r.method.to_string(), op);
        }
    };
    for root in ["/v1.0", "/beta"] {
        for r in crate::routes::describe_graph() {
            add(root, &r, r.path == "/$metadata" || r.path.is_empty());
        }
    }
    for r in crate::routes::describe_root() {
        let public =
            matches!(r.path.as_str(), "/" | "/health" | "/ready" | "/openapi.json") || r.path.starts_with("/{tenant}/");
        add("", &r, public);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Grantry",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Entitlement management speaking the Microsoft Graph API under /v1.0 and /beta. Generated from the route table (crates/grantry-api/src/openapi.rs)."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        },
        "security": [{ "bearer": [] }]
    })
}

/// The document as committed: pretty JSON with a final newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}
