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
use grantry_core::connected::{self, NewOrganization, OrganizationPatch, Sponsor, SubjectKey};
use grantry_core::listing::Listed;
use grantry_core::{Caller, PageRequest};
use grantry_domain::Error;
use grantry_domain::enums::SubjectLifecycle;
use grantry_domain::model::{ConnectedOrganization, SponsorList};
use grantry_graph::connected::{self as wire, ConnectedOrganizationView, SET};
use grantry_graph::directory::{self as dir, DirectoryObjectView};
use grantry_graph::request::SubjectView;
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
    r = em_route(r, "subjects/{id}", get(read_subject).patch(update_subject));
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

// ---------------------------------------------------------------------------------------
// Subjects: `subjects/{id}` and, by Graph's alternate key, `subjects(objectId='…')` (the
// path rewrite makes it `subjects/(objectId='…')`).

fn subject_key(segment: &str) -> Result<SubjectKey, Error> {
    let Some(inner) = segment.trim().strip_prefix('(').and_then(|x| x.strip_suffix(')')) else {
        return Ok(SubjectKey::Id(segment.trim().trim_matches('\'').to_string()));
    };
    match inner.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("objectId") => {
            let v = v.trim().trim_matches('\'').trim_matches('"').trim();
            if v.is_empty() {
                return Err(Error::bad_request("BadRequest", "subjects(objectId='…'): give the directory object id."));
            }
            Ok(SubjectKey::ObjectId(v.to_string()))
        }
        None => Ok(SubjectKey::Id(inner.trim().trim_matches('\'').to_string())),
        Some((k, _)) => Err(Error::bad_request(
            "BadRequest",
            format!(
                "'{}' is not a key of accessPackageSubject; use subjects/{{id}} or subjects(objectId='…').",
                k.trim()
            ),
        )),
    }
}

fn subjects_context() -> String {
    format!("{}/subjects", crate::respond::EM)
}

/// `$expand` of a subject: only `connectedOrganization`.
fn subject_expand(q: &RawQuery) -> ApiResult<bool> {
    let (_, expand) = q.list_options_and_expand()?;
    let mut organization = false;
    for item in &expand {
        match item.path.join("/").to_ascii_lowercase().as_str() {
            "connectedorganization" | "*" => organization = true,
            other => {
                return Err(Error::bad_request(
                    "BadRequest",
                    format!(
                        "$expand: '{other}' cannot be expanded on an accessPackageSubject; use connectedOrganization."
                    ),
                )
                .with_target("$expand")
                .into());
            }
        }
    }
    Ok(organization)
}

fn subject_view(r: &connected::SubjectRead, d: Dialect, expand: bool) -> SubjectView<'_> {
    SubjectView::new(&r.subject, d, expand.then_some(r.organization.as_ref()))
        .with_organization_id(r.organization.as_ref().map(|o| o.id.as_str()))
        .with_cleanup(r.cleanup_scheduled)
}

async fn read_subject(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = subject_expand(&q)?;
    let r = connected::get_subject(&s.app, &caller, subject_key(&id)?).await?;
    Ok(respond::entity(&s, d, &subjects_context(), subject_view(&r, d, expand)))
}

/// Properties of a subject a PATCH may send only unchanged (a client may send back what
/// it read).
const SUBJECT_READ_ONLY: &[&str] = &[
    "id",
    "objectId",
    "displayName",
    "email",
    "principalName",
    "onPremisesSecurityIdentifier",
    "subjectType",
    "type",
    "altSecId",
    "cleanupScheduledDateTime",
];

/// PATCH of a subject (204, as Graph answers): `subjectLifecycle` in both roots; beta also
/// the connected organization (`connectedOrganizationId`, or `connectedOrganization` with
/// an `id`; null clears it).
async fn update_subject(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    crate::schema::check(&b, d, "accessPackageSubject")?;
    let key = subject_key(&id)?;
    let current = connected::get_subject(&s.app, &caller, key.clone()).await?;
    let shown = serde_json::to_value(subject_view(&current, d, false)).unwrap_or_default();
    let unchanged = |sent: &serde_json::Value, now: &serde_json::Value| match (sent.as_str(), now.as_str()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => sent == now,
    };
    for k in SUBJECT_READ_ONLY {
        if let Some(v) = b.get(k)
            && !unchanged(v, &shown[*k])
        {
            return Err(Error::bad_request(
                "ReadOnlyProperty",
                format!(
                    "'{k}' of an access package subject cannot be changed; only 'subjectLifecycle'{} can.",
                    match d {
                        Dialect::V1 => "",
                        Dialect::Beta => " and the connected organization",
                    }
                ),
            )
            .with_target(*k)
            .into());
        }
    }
    let mut patch = connected::SubjectPatch {
        subject_lifecycle: b.enumeration(
            &["subjectLifecycle"],
            SubjectLifecycle::parse,
            "notDefined, notGoverned, governed",
        )?,
        connected_organization_id: None,
    };
    let organization = match (b.get("connectedOrganizationId"), b.get("connectedOrganization")) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_property(
                "connectedOrganization",
                "Send either 'connectedOrganizationId' or 'connectedOrganization', not both.",
            )
            .into());
        }
        (Some(v), None) => Some(("connectedOrganizationId", v.clone())),
        (None, Some(serde_json::Value::Object(o))) => {
            Some(("connectedOrganization", o.get("id").cloned().unwrap_or(serde_json::Value::Null)))
        }
        (None, Some(v)) => Some(("connectedOrganization", v.clone())),
        (None, None) => None,
    };
    if let Some((key, v)) = organization {
        if d == Dialect::V1 {
            return Err(Error::bad_request(
                "ReadOnlyProperty",
                "Under /v1.0 only 'subjectLifecycle' of an access package subject can be changed; the connected organization can be set under /beta.",
            )
            .with_target(key)
            .into());
        }
        patch.connected_organization_id = Some(match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(id) if !id.trim().is_empty() => Some(id.trim().to_string()),
            _ => {
                return Err(Error::invalid_property(
                    key,
                    format!("'{key}' must be the id of a connected organization (a string), or null."),
                )
                .into());
            }
        });
    }
    connected::update_subject(&s.app, &caller, key, patch).await?;
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
    docs.push(read(em("subjects/{id}"), "Get a subject (also subjects(objectId='…'))", "Object"));
    docs.push(op(
        "patch",
        em("subjects/{id}"),
        "Change a subject's lifecycle (beta also its connected organization)",
        Some("Object"),
        204,
        None,
    ));
    docs.push(crate::openapi::list("/users/{id}/sponsors", "A user's sponsors", "Object"));
    docs.push(op("post", "/users/{id}/sponsors/$ref", "Add a sponsor to a user", Some("Reference"), 204, None));
    docs.push(crate::openapi::remove("/users/{id}/sponsors/{sid}/$ref", "Remove a user's sponsor"));
    docs.push(crate::openapi::list("/users/{id}/sponsors/$ref", "A user's sponsors as references", "Object"));
    docs.push(crate::openapi::remove("/users/{id}/sponsors/$ref", "Remove a user's sponsor (?$id=)"));
    docs
}
