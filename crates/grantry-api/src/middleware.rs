//! Layers that run around routing.

use crate::error::{ApiError, REQUEST_IDS, RequestIds};
use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use grantry_domain::{Error, ErrorKind};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use std::time::Duration;

/// The path as the client sent it, before normalisation (used to build nextLinks).
#[derive(Debug, Clone)]
pub struct OriginalPath(pub String);

/// Every static path segment Grantry routes, in its canonical spelling. Graph treats
/// segment names case-insensitively (`Cancel` and `cancel`), so incoming segments that
/// match one of these ignoring case are rewritten to it before routing.
pub const SEGMENTS: &[&str] = &[
    "applications",
    "servicePrincipals",
    "appRoleAssignedTo",
    "appRoleAssignments",
    "identityGovernance",
    "entitlementManagement",
    "catalogs",
    "accessPackageCatalogs",
    "accessPackages",
    "assignmentPolicies",
    "accessPackageAssignmentPolicies",
    "assignmentRequests",
    "accessPackageAssignmentRequests",
    "assignments",
    "accessPackageAssignments",
    "accessPackageAssignmentResourceRoles",
    "accessPackageAssignmentApprovals",
    "stages",
    "steps",
    "pendingSteps",
    "completedSteps",
    "resourceRequests",
    "accessPackageResourceRequests",
    "resources",
    "accessPackageResources",
    "resourceRoleScopes",
    "accessPackageResourceRoleScopes",
    "resourceEnvironments",
    "accessPackageResourceEnvironments",
    "resourceRoles",
    "accessPackageResourceRoles",
    "resourceScopes",
    "accessPackageResourceScopes",
    "roles",
    "scopes",
    "environment",
    "customWorkflowExtensions",
    "accessPackageCustomWorkflowExtensions",
    "customAccessPackageWorkflowExtensions",
    "catalog",
    "accessPackageCatalog",
    "connectedOrganizations",
    "internalSponsors",
    "externalSponsors",
    "settings",
    "subjects",
    "accessPackageSuggestions",
    "availableAccessPackages",
    "controlConfigurations",
    "incompatibleAccessPackages",
    "incompatibleGroups",
    "accessPackagesIncompatibleWith",
    "questions",
    "customExtensionStageSettings",
    "customExtensionHandlers",
    "target",
    "requestor",
    "accessPackage",
    "assignmentPolicy",
    "assignment",
    "accessPackageAssignment",
    "filterByCurrentUser",
    "additionalAccess",
    "getApplicablePolicyRequirements",
    "cancel",
    "reprocess",
    "resume",
    "refresh",
    "moveToCatalog",
    "My",
    "Search",
    "users",
    "groups",
    "members",
    "owners",
    "manager",
    "directReports",
    "me",
    "memberOf",
    "roleManagement",
    "directory",
    "roleAssignments",
    "roleDefinitions",
    "principal",
    "roleDefinition",
    "$ref",
    "$count",
    "$metadata",
    "$batch",
    "_grantry",
    "clock",
    "advance",
    "audit",
    "auditLogs",
    "directoryAudits",
    "accessAt",
    "health",
    "ready",
    "openapi.json",
    "connectedOrganization",
    "accessPackageAssignmentPolicy",
    "accessPackageAssignmentRequests",
    "accessPackageResourceRole",
    "accessPackageResourceScope",
    "accessPackageResource",
    "accessPackageSubject",
    "role",
    "scope",
    "resource",
    "accessReviews",
    "definitions",
    "instances",
    "decisions",
    "contactedReviewers",
    "stages",
    "stop",
    "applyDecisions",
    "resetDecisions",
    "acceptRecommendations",
    "sendReminder",
    "batchRecordDecisions",
    "recordAllDecisions",
];

const SEGMENT_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%')
    .add(b'/');

fn canonical(segment: &str) -> &str {
    SEGMENTS.iter().find(|s| s.eq_ignore_ascii_case(segment)).copied().unwrap_or(segment)
}

/// Rewrites OData URL forms into plain segments the router understands:
/// - `Cancel` → `cancel` (known segment names, any case);
/// - `accessPackages('id')` or `accessPackages(id)` → `accessPackages/id`;
/// - `subjects(objectId='x')`, `filterByCurrentUser(on='target')`, `My()` →
///   `subjects/(objectId='x')`, `filterByCurrentUser/(on='target')`, `My/()`: the
///   parenthesised part becomes one segment the handler parses.
pub fn normalize_path(path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for raw in path.split('/') {
        let decoded = percent_decode_str(raw).decode_utf8_lossy().into_owned();
        match decoded.find('(') {
            Some(open) if open > 0 && decoded.ends_with(')') => {
                let name = canonical(&decoded[..open]).to_string();
                let args = &decoded[open..];
                let inner = &args[1..args.len() - 1];
                out.push(name);
                if inner.contains('=') || inner.is_empty() {
                    out.push(args.to_string());
                } else {
                    out.push(inner.trim().trim_matches('\'').to_string());
                }
            }
            _ => out.push(canonical(&decoded).to_string()),
        }
    }
    out.iter().map(|s| utf8_percent_encode(s, SEGMENT_ENCODE).to_string()).collect::<Vec<_>>().join("/")
}

/// Applied before routing (outside the router) so rewritten paths are what gets routed.
pub fn rewrite_request(mut req: Request) -> Request {
    let original = req.uri().path().to_string();
    let mut normalized = normalize_path(&original);
    req.extensions_mut().insert(OriginalPath(original.clone()));
    let mut query = req.uri().query().map(str::to_string);
    // `/collection/$count`: query the collection with $count=true; the response layer
    // turns the answer into the bare number.
    if let Some(parent) = normalized.strip_suffix("/%24count").or_else(|| normalized.strip_suffix("/$count")) {
        normalized = parent.to_string();
        req.extensions_mut().insert(CountSegment);
        let kept = query.unwrap_or_default();
        query = Some(if kept.is_empty() { "$count=true&$top=1".into() } else { format!("{kept}&$count=true&$top=1") });
    }
    if normalized != original || req.extensions().get::<CountSegment>().is_some() {
        let pq = match &query {
            Some(q) => format!("{normalized}?{q}"),
            None => normalized,
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// The content codings Grantry decodes on request bodies, as a 415 names them in
/// `Accept-Encoding`.
pub const REQUEST_ENCODINGS: &str = "gzip, deflate, br";

/// Set on a request whose body arrived compressed (the coding's name), so a body that fails
/// to decode is reported as such.
#[derive(Debug, Clone, Copy)]
pub struct DecodedFrom(pub &'static str);

/// Prepares `Content-Encoding` for the decompression layer that runs inside this one, which
/// matches the header byte for byte: codings are case-insensitive (`GZIP`), `x-gzip` is
/// gzip, `identity` means no coding, and an empty body has nothing to decode. Anything else
/// (an unknown coding, or codings stacked on one another) is refused here with 415 in
/// Graph's envelope and `Accept-Encoding` naming what is supported, the status on which
/// clients that compress by default (the Kiota-based Graph SDKs) resend uncompressed.
pub async fn request_encoding(mut req: Request, next: Next) -> Response {
    use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH};
    let Some(value) = req.headers().get(CONTENT_ENCODING) else { return next.run(req).await };
    let sent = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
    let lowered = sent.to_ascii_lowercase();
    let codings: Vec<&str> = lowered.split(',').map(str::trim).filter(|c| !c.is_empty() && *c != "identity").collect();
    let empty_body = req.headers().get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0");
    let coding = match codings.as_slice() {
        [] => None,
        _ if empty_body => None,
        ["gzip" | "x-gzip"] => Some("gzip"),
        ["deflate"] => Some("deflate"),
        ["br"] => Some("br"),
        _ => {
            let mut response = ApiError(Error::new(
                ErrorKind::UnsupportedMediaType,
                "UnsupportedContentEncoding",
                format!(
                    "The request body's Content-Encoding '{sent}' is not supported; send the body uncompressed or \
                     compressed with one of: {REQUEST_ENCODINGS}."
                ),
            ))
            .into_response();
            response.headers_mut().insert(ACCEPT_ENCODING, HeaderValue::from_static(REQUEST_ENCODINGS));
            return response;
        }
    };
    match coding {
        Some(coding) => {
            req.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
            req.extensions_mut().insert(DecodedFrom(coding));
        }
        None => {
            req.headers_mut().remove(CONTENT_ENCODING);
        }
    }
    next.run(req).await
}

/// Longest time one request may take before the client gets an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Assigns `request-id`, echoes `client-request-id`, and bounds the request's duration.
pub async fn request_ids(req: Request, next: Next) -> Response {
    let client_request_id =
        req.headers().get("client-request-id").and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or_default();
    let ids = RequestIds { request_id: grantry_domain::ids::new_id(), client_request_id };
    let scoped = ids.clone();
    let mut response = REQUEST_IDS
        .scope(scoped, async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
                Ok(r) => r,
                Err(_) => ApiError(Error::new(
                    ErrorKind::Unavailable,
                    "timeout",
                    "The request took too long and was abandoned; retry it.",
                ))
                .into_response(),
            }
        })
        .await;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ids.request_id) {
        headers.insert("request-id", v);
    }
    if !ids.client_request_id.is_empty()
        && let Ok(v) = HeaderValue::from_str(&ids.client_request_id)
    {
        headers.insert("client-request-id", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    #[test]
    fn normalizes_odata_url_forms() {
        assert_eq!(
            normalize_path("/beta/x/accessPackageAssignmentRequests/abc/Cancel"),
            "/beta/x/accessPackageAssignmentRequests/abc/cancel"
        );
        assert_eq!(normalize_path("/v1.0/x/accessPackages('A1')"), "/v1.0/x/accessPackages/A1");
        assert_eq!(
            normalize_path("/v1.0/x/assignments/filterByCurrentUser(on='target')"),
            "/v1.0/x/assignments/filterByCurrentUser/(on='target')"
        );
        assert_eq!(normalize_path("/v1.0/x/subjects(objectId='u1')"), "/v1.0/x/subjects/(objectId='u1')");
        assert_eq!(normalize_path("/beta/x/accessPackageAssignments/My()"), "/beta/x/accessPackageAssignments/My/()");
        assert_eq!(
            normalize_path("/v1.0/x/accessPackages/filterByCurrentUser(on=%27allowedRequestor%27)"),
            "/v1.0/x/accessPackages/filterByCurrentUser/(on='allowedRequestor')"
        );
    }
}

/// Set on requests whose path ended in `/$count`: the collection is queried with
/// `$count=true` and the number is returned as text, as Graph does.
#[derive(Debug, Clone, Copy)]
pub struct CountSegment;

/// Parses the options that shape any JSON response the same way, for every route, once:
/// `$select` (keep only the named properties, plus `id` and annotations) and the `/$count`
/// segment. They are handed to the response helpers in [`crate::respond`], which apply them
/// while serializing; no response is parsed again.
pub async fn odata_response(req: Request, next: Next) -> Response {
    use axum::http::Method;
    let counting = req.extensions().get::<CountSegment>().is_some();
    let select = if req.method() == Method::GET {
        req.uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| {
                let k = percent_decode_str(k).decode_utf8_lossy();
                k.trim_start_matches('$').eq_ignore_ascii_case("select")
            })
            .map(|(_, v)| percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
    } else {
        None
    };
    if !counting && select.is_none() {
        return next.run(req).await;
    }
    let select = match select.map(|s| grantry_odata::parse_select(&s)).transpose() {
        Ok(s) => s,
        Err(e) => return ApiError(grantry_store::query::parse_error(e)).into_response(),
    };
    let shape = crate::respond::Shape {
        select: select.as_deref().and_then(grantry_graph::wire::Select::from_paths),
        count_segment: counting,
    };
    crate::respond::SHAPE.scope(shape, next.run(req)).await
}
