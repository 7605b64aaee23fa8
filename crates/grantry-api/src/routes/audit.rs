//! The audit trail: Graph's `GET /{root}/auditLogs/directoryAudits[/{id}]` (every change
//! Grantry records, in `directoryAudit`'s shape, filterable and paged like Graph's), and
//! Grantry's own `GET /_grantry/audit[?entityId=…]` (the raw records, newest first) and
//! `GET /_grantry/accessAt?at=…` (who held which access package, and which groups, at an
//! instant), for administrators.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::RawQuery;
use crate::respond::{self, NoHead, next_link};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use grantry_core::audit::StoredEvent;
use grantry_core::directory_audits::AuditQuery;
use grantry_domain::Error;
use grantry_graph::Dialect;
use grantry_graph::wire::Ts;
use serde::Serialize;

/// Grantry's own routes, outside the Graph roots.
pub fn routes() -> Router<AppState> {
    Router::new().route("/_grantry/audit", get(list)).route("/_grantry/accessAt", get(access_at))
}

/// The routes under each Graph root.
pub fn graph_routes() -> Router<AppState> {
    Router::new()
        .route("/auditLogs/directoryAudits", get(directory_audits))
        .route("/auditLogs/directoryAudits/{id}", get(directory_audit))
}

/// The answer of `/_grantry/accessAt` before its page of holdings: the instant.
#[derive(Serialize)]
struct AccessAt {
    at: Ts,
}

/// One audit event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventView<'a> {
    id: &'a str,
    at: Ts,
    actor_id: Option<&'a str>,
    entity_type: &'a str,
    entity_id: &'a str,
    action: &'a str,
    detail: &'a serde_json::Value,
}

fn render(e: &StoredEvent) -> EventView<'_> {
    EventView {
        id: &e.id,
        at: Ts(e.at),
        actor_id: e.actor_id.as_deref(),
        entity_type: &e.entity_type,
        entity_id: &e.entity_id,
        action: &e.action,
        detail: &e.detail,
    }
}

async fn list(State(s): State<AppState>, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    let entity = q.get("entityId").map(str::to_string).filter(|e| !e.trim().is_empty());
    let page = grantry_core::audit::list(&s.app, &caller, entity, q.page()?).await?;
    // A page of the trail (no `@odata.context`: it is not a Graph entity set).
    let items: Vec<EventView<'_>> = page.items.iter().map(render).collect();
    Ok(respond::values_page(&NoHead {}, &items, page.next.as_ref().map(|cursor| next_link(&s, &q, cursor))))
}

/// `$filter`, `$orderby` (`activityDateTime` only, newest first by default), `$top` and
/// `$skiptoken` of a directory audit list.
fn audit_query(q: &RawQuery) -> ApiResult<AuditQuery> {
    if q.get("$search").is_some() {
        return Err(Error::bad_request("BadRequest", "$search is not supported on directory audits.")
            .with_target("$search")
            .into());
    }
    let filter = match q.get("$filter").map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => Some(grantry_odata::parse_filter(f).map_err(grantry_store::query::parse_error)?),
        None => None,
    };
    let ascending = match q.get("$orderby").map(str::trim).filter(|o| !o.is_empty()) {
        None => false,
        Some(o) => {
            let mut words = o.split_whitespace();
            let property = words.next().unwrap_or("");
            let direction = words.next().unwrap_or("asc").to_ascii_lowercase();
            if !property.eq_ignore_ascii_case("activityDateTime") || words.next().is_some() {
                return Err(Error::bad_request(
                    "BadRequest",
                    format!("Directory audits can be ordered by activityDateTime only (asc or desc); got '{o}'."),
                )
                .with_target("$orderby")
                .into());
            }
            match direction.as_str() {
                "asc" => true,
                "desc" => false,
                other => {
                    return Err(Error::bad_request(
                        "BadRequest",
                        format!("$orderby direction must be asc or desc; got '{other}'."),
                    )
                    .with_target("$orderby")
                    .into());
                }
            }
        }
    };
    Ok(AuditQuery { filter, ascending, page: q.page_with_own_filter()? })
}

async fn directory_audits(
    State(s): State<AppState>,
    Extension(dialect): Extension<Dialect>,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let query = audit_query(&q)?;
    let page = grantry_core::directory_audits::list(&s.app, &caller, query).await?;
    Ok(respond::collection(&s, dialect, "auditLogs/directoryAudits", page, &q))
}

async fn directory_audit(
    State(s): State<AppState>,
    Extension(dialect): Extension<Dialect>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let entry = grantry_core::directory_audits::get(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, dialect, "auditLogs/directoryAudits", entry))
}

/// `GET /_grantry/accessAt?at=…[&accessPackageId=…][&userId=…][&groupId=…]`.
async fn access_at(State(s): State<AppState>, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    let at = q.get("at").map(str::trim).filter(|a| !a.is_empty()).ok_or_else(|| {
        Error::bad_request("BadRequest", "Name the instant with ?at=, e.g. ?at=2026-01-31T12:00:00Z.").with_target("at")
    })?;
    let at = chrono::DateTime::parse_from_rfc3339(at)
        .map_err(|_| {
            Error::bad_request(
                "BadRequest",
                format!("'at' must be a date-time with an offset, such as 2026-01-31T12:00:00Z; got '{at}'."),
            )
            .with_target("at")
        })?
        .with_timezone(&chrono::Utc);
    let text = |name: &str| q.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let query = grantry_core::access_history::AccessAtQuery {
        at,
        access_package_id: text("accessPackageId"),
        user_id: text("userId"),
        group_id: text("groupId"),
        page: q.page()?,
    };
    let page = grantry_core::access_history::access_at(&s.app, &caller, query).await?;
    let next = page.next.as_ref().map(|cursor| next_link(&s, &q, cursor));
    Ok(respond::values_page(&AccessAt { at: Ts(at) }, &page.items, next))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    vec![
        crate::openapi::list("/_grantry/audit", "The audit trail (?entityId=)", "Object"),
        crate::openapi::list(
            "/_grantry/accessAt",
            "Who held which access package and groups at an instant (?at=, &accessPackageId=, &userId=, &groupId=)",
            "Object",
        ),
    ]
}

/// The operations `graph_routes()` serves, for the OpenAPI document.
pub fn describe_graph() -> Vec<crate::openapi::RouteDoc> {
    vec![
        crate::openapi::list("/auditLogs/directoryAudits", "Directory audits: every change Grantry records", "Object"),
        crate::openapi::read("/auditLogs/directoryAudits/{id}", "One directory audit", "Object"),
    ]
}
