//! Connected organizations (`identityGovernance/entitlementManagement/connectedOrganizations`,
//! the same name under both roots) with their `internalSponsors` and `externalSponsors`
//! `$ref` collections, and the sponsors of users (`users/{id}/sponsors`).

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond;
use crate::routes::catalogs::em_route;
use crate::routes::users::ref_body;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get};
use grantry_core::connected::{self, NewOrganization, OrganizationPatch, Sponsor};
use grantry_core::listing::Listed;
use grantry_core::{Caller, PageRequest};
use grantry_domain::Error;
use grantry_domain::model::{ConnectedOrganization, SponsorList};
use grantry_graph::connected::{self as wire, ConnectedOrganizationView, SET};
use grantry_graph::directory::{self as dir, DirectoryObjectView};
use grantry_graph::{Body, Dialect};

const ITEM: &str = "connectedOrganizations/{id}";

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    r = em_route(r, SET, get(list).post(create));
    r = em_route(r, ITEM, get(read).patch(update).delete(remove));
    r = em_route(r, &format!("{ITEM}/[internalSponsors|externalSponsors]"), get(list_sponsors));
    r = em_route(
        r,
        &format!("{ITEM}/[internalSponsors|externalSponsors]/$ref"),
        get(list_sponsor_refs).post(add_sponsor).delete(remove_sponsor_by_query),
    );
    r = em_route(r, &format!("{ITEM}/[internalSponsors|externalSponsors]/{{sid}}/$ref"), delete(remove_sponsor));
    r.route("/users/{id}/sponsors", get(list_user_sponsors))
        .route(
            "/users/{id}/sponsors/$ref",
            get(list_user_sponsor_refs).post(add_user_sponsor).delete(remove_user_sponsor_by_query),
        )
        .route("/users/{id}/sponsors/{sid}/$ref", delete(remove_user_sponsor))
}

fn context() -> String {
    format!("{}/{SET}", crate::respond::EM)
}

/// Which of the two sponsor lists a request path names.
fn list_of(path: &str) -> SponsorList {
    if path.to_ascii_lowercase().contains("/externalsponsors") { SponsorList::External } else { SponsorList::Internal }
}

fn sponsor_view(s: &Sponsor) -> DirectoryObjectView<'_> {
    match s {
        Sponsor::User(u) => DirectoryObjectView::User(dir::user(u)),
        Sponsor::Group(g) => DirectoryObjectView::Group(dir::group(g)),
    }
}

/// `$expand` of an organization: `internalSponsors`, `externalSponsors`, or `*`.
#[derive(Default, Clone, Copy)]
struct Expand {
    internal: bool,
    external: bool,
}

fn expand_of(items: &[grantry_odata::ExpandItem]) -> Result<Expand, Error> {
    let mut x = Expand::default();
    for item in items {
        match item.path.join("/").to_ascii_lowercase().as_str() {
            "internalsponsors" => x.internal = true,
            "externalsponsors" => x.external = true,
            "*" => (x.internal, x.external) = (true, true),
            other => {
                return Err(Error::bad_request(
                    "BadRequest",
                    format!("$expand: '{other}' cannot be expanded on a connectedOrganization; use internalSponsors or externalSponsors."),
                )
                .with_target("$expand"));
            }
        }
    }
    Ok(x)
}

/// The sponsors `x` asks for, for each organization.
async fn sponsors_for(
    s: &AppState,
    caller: &Caller,
    orgs: &[ConnectedOrganization],
    x: Expand,
) -> ApiResult<Vec<(Option<Vec<Sponsor>>, Option<Vec<Sponsor>>)>> {
    let all = PageRequest { after_seq: None, size: grantry_core::page::MAX_PAGE_SIZE };
    let mut out = Vec::with_capacity(orgs.len());
    for o in orgs {
        let internal = if x.internal {
            Some(connected::list_sponsors(&s.app, caller, SponsorList::Internal, &o.id, all).await?.items)
        } else {
            None
        };
        let external = if x.external {
            Some(connected::list_sponsors(&s.app, caller, SponsorList::External, &o.id, all).await?.items)
        } else {
            None
        };
        out.push((internal, external));
    }
    Ok(out)
}

fn view<'a>(
    o: &'a ConnectedOrganization,
    d: Dialect,
    sponsors: &'a (Option<Vec<Sponsor>>, Option<Vec<Sponsor>>),
) -> ConnectedOrganizationView<'a> {
    ConnectedOrganizationView::new(o, d).with_sponsors(
        sponsors.0.as_ref().map(|v| v.iter().map(sponsor_view).collect()),
        sponsors.1.as_ref().map(|v| v.iter().map(sponsor_view).collect()),
    )
}

async fn create(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let input = NewOrganization {
        display_name: b.str(&["displayName"])?,
        description: b.str(&["description"])?,
        identity_sources: wire::identity_sources(&b)?,
        state: wire::state(&b)?,
    };
    b.refuse_undefined("connectedOrganization", |k| {
        ["id", "createdDateTime", "modifiedDateTime", "createdBy", "modifiedBy"].contains(&k)
    })?;
    let o = connected::create_organization(&s.app, &caller, input).await?;
    Ok(respond::created(&s, d, &context(), ConnectedOrganizationView::new(&o, d)))
}

async fn list(State(s): State<AppState>, Root(d): Root, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    let (options, expand) = q.list_options_and_expand()?;
    let x = expand_of(&expand)?;
    let listed = connected::list_organizations(&s.app, &caller, options).await?;
    let sponsors = sponsors_for(&s, &caller, &listed.items, x).await?;
    let items = listed.items.iter().zip(sponsors.iter()).map(|(o, sp)| view(o, d, sp)).collect();
    let listed = Listed { items, next: listed.next, count: listed.count };
    Ok(respond::collection(&s, d, &context(), listed, &q))
}

async fn read(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let (_, expand) = q.list_options_and_expand()?;
    let x = expand_of(&expand)?;
    let o = connected::get_organization(&s.app, &caller, &id).await?;
    let sponsors = sponsors_for(&s, &caller, std::slice::from_ref(&o), x).await?;
    Ok(respond::entity(&s, d, &context(), view(&o, d, &sponsors[0])))
}

/// PATCH answers 204, as beta documents (a v1.0 example shows 202 with no body).
async fn update(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let description = match b.get("description") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(_) => Some(b.str(&["description"])?),
    };
    let patch = OrganizationPatch {
        display_name: match b.get("displayName") {
            None => None,
            Some(_) => Some(b.str(&["displayName"])?.unwrap_or_default()),
        },
        description,
        state: wire::state(&b)?,
        identity_sources: b.has("identitySources"),
    };
    b.refuse_undefined("connectedOrganization", |k| {
        ["id", "createdDateTime", "modifiedDateTime", "createdBy", "modifiedBy"].contains(&k)
    })?;
    connected::update_organization(&s.app, &caller, &id, patch).await?;
    Ok(respond::no_content())
}

async fn remove(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    connected::delete_organization(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

async fn list_sponsors(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let list = list_of(&q.path);
    let page = connected::list_sponsors(&s.app, &caller, list, &id, q.page()?).await?;
    let items = page.items.iter().map(sponsor_view).collect();
    Ok(respond::collection(&s, d, "directoryObjects", Listed::after_seq(items, page.next_after_seq()), &q))
}

async fn add_sponsor(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let (set, sponsor) = ref_body(&json)?;
    connected::add_sponsor(&s.app, &caller, list_of(&q.path), &id, set, &sponsor).await?;
    Ok(respond::no_content())
}

async fn remove_sponsor(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((id, sid)): Path<(String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    connected::remove_sponsor(&s.app, &caller, list_of(&q.path), &id, &sid).await?;
    Ok(respond::no_content())
}

/// The object a `DELETE …/$ref?$id={url}` names (the SDKs send `@id`).
fn id_from_query(q: &RawQuery) -> Result<String, Error> {
    let url = q
        .pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$id") || k.eq_ignore_ascii_case("@id"))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            Error::bad_request(
                "BadRequest",
                "Name the sponsor to remove: DELETE …/{sponsorId}/$ref, or add ?$id=<URL of the user or group>.",
            )
            .with_target("$id")
        })?;
    dir::parse_odata_id(url).map(|(_, id)| id).ok_or_else(|| {
        Error::bad_request(
            "BadRequest",
            format!("$id must be the URL of a user or group ending in its id; got '{url}'."),
        )
        .with_target("$id")
    })
}

/// `GET …/$ref`: the sponsors as references (`@odata.id` of each directory object).
fn refs(s: &AppState, d: Dialect, page: &grantry_core::Page<Sponsor>, q: &RawQuery) -> Response {
    let base = format!("{}/{}/directoryObjects", s.config.public_base_url, d.root());
    let items = page.items.iter().map(|x| serde_json::json!({ "@odata.id": format!("{base}/{}", x.id()) })).collect();
    respond::collection(s, d, "Collection($ref)", Listed::after_seq(items, page.next_after_seq()), q)
}

async fn list_sponsor_refs(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = connected::list_sponsors(&s.app, &caller, list_of(&q.path), &id, q.page()?).await?;
    Ok(refs(&s, d, &page, &q))
}

async fn remove_sponsor_by_query(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let sponsor = id_from_query(&q)?;
    connected::remove_sponsor(&s.app, &caller, list_of(&q.path), &id, &sponsor).await?;
    Ok(respond::no_content())
}

async fn list_user_sponsor_refs(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = connected::list_sponsors(&s.app, &caller, SponsorList::User, &id, q.page()?).await?;
    Ok(refs(&s, d, &page, &q))
}

async fn remove_user_sponsor_by_query(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let sponsor = id_from_query(&q)?;
    connected::remove_sponsor(&s.app, &caller, SponsorList::User, &id, &sponsor).await?;
    Ok(respond::no_content())
}

async fn list_user_sponsors(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = connected::list_sponsors(&s.app, &caller, SponsorList::User, &id, q.page()?).await?;
    let items = page.items.iter().map(sponsor_view).collect();
    Ok(respond::collection(&s, d, "directoryObjects", Listed::after_seq(items, page.next_after_seq()), &q))
}

async fn add_user_sponsor(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let (set, sponsor) = ref_body(&json)?;
    connected::add_sponsor(&s.app, &caller, SponsorList::User, &id, set, &sponsor).await?;
    Ok(respond::no_content())
}

async fn remove_user_sponsor(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<Response> {
    connected::remove_sponsor(&s.app, &caller, SponsorList::User, &id, &sid).await?;
    Ok(respond::no_content())
}

pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    let path = em("connectedOrganizations");
    let item = em("connectedOrganizations/{id}");
    let mut docs = vec![
        list(path.clone(), "List connected organizations", "Object"),
        create(path, "Create a connected organization (one identity source)", "Object"),
        read(item.clone(), "Get a connected organization", "Object"),
        op(
            "patch",
            item.clone(),
            "Update a connected organization's name, description or state",
            Some("Object"),
            204,
            None,
        ),
        remove(item.clone(), "Delete a connected organization (refused while a policy names it)"),
    ];
    for list_name in ["internalSponsors", "externalSponsors"] {
        docs.push(crate::openapi::list(
            format!("{item}/{list_name}"),
            "Sponsors of a connected organization",
            "Object",
        ));
        docs.push(op(
            "post",
            format!("{item}/{list_name}/$ref"),
            "Add a sponsor (user or group)",
            Some("Reference"),
            204,
            None,
        ));
        docs.push(crate::openapi::remove(format!("{item}/{list_name}/{{sid}}/$ref"), "Remove a sponsor"));
        docs.push(crate::openapi::list(format!("{item}/{list_name}/$ref"), "Sponsors as references", "Object"));
        docs.push(crate::openapi::remove(format!("{item}/{list_name}/$ref"), "Remove a sponsor (?$id=)"));
    }
    docs.push(crate::openapi::list("/users/{id}/sponsors", "A user's sponsors", "Object"));
    docs.push(op("post", "/users/{id}/sponsors/$ref", "Add a sponsor to a user", Some("Reference"), 204, None));
    docs.push(crate::openapi::remove("/users/{id}/sponsors/{sid}/$ref", "Remove a user's sponsor"));
    docs.push(crate::openapi::list("/users/{id}/sponsors/$ref", "A user's sponsors as references", "Object"));
    docs.push(crate::openapi::remove("/users/{id}/sponsors/$ref", "Remove a user's sponsor (?$id=)"));
    docs
}
