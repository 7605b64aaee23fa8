//! Administration builders: create a catalog and add groups and applications to it, create
//! an access package, grant its resource roles and mark packages incompatible, and write
//! an assignment policy in a form.
//!
//! Forms are turned into the same inputs the Graph API builds from a request body (the
//! policy form into a Graph `accessPackageAssignmentPolicy` body, read by the API's own
//! parser) and handed to the same use cases as the signed-in person, so validation,
//! messages and authorization are the API's. A refusal is shown next to the field whose
//! Graph property its `target` names.

use super::access::describe_policy;
use super::admin::require_admin;
use super::pickers;
use super::session::Signed;
use super::views::{self, Section, badge, when};
use super::{Form, check_csrf, see_other, viewer};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::PageRequest;
use grantry_core::catalogs::NewCatalog;
use grantry_core::listing::ListOptions;
use grantry_core::packages::{NewPackage, NewRoleScope};
use grantry_core::policies::PackageScope;
use grantry_core::resources::NewResourceRequest;
use grantry_domain::enums::{CatalogState, RequestType};
use grantry_domain::model::{AccessPackage, Catalog, Group, User};
use grantry_domain::{Error, ErrorKind};
use grantry_graph::{Body, Dialect};
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Field errors of a refused form, by form field name.
type FieldErrors = HashMap<String, String>;

/// How many catalog resources, resource roles and packages a page lists.
const PICKER: usize = 200;

/// Places an API refusal next to a form field: `fields` pairs a Graph property path with
/// the form field that edits it; the longest path the error's `target` starts with wins.
/// Anything else is shown at the top of the form.
fn place(e: &Error, fields: &[(&str, &str)]) -> (FieldErrors, String) {
    let target = e.target.clone().unwrap_or_default();
    let hit = fields
        .iter()
        .filter(|(path, _)| {
            target == *path
                || (target.len() > path.len()
                    && target.starts_with(path)
                    && matches!(target.as_bytes()[path.len()], b'.' | b'['))
        })
        .max_by_key(|(path, _)| path.len());
    match hit {
        Some((_, field)) => (
            HashMap::from([(field.to_string(), e.message.clone())]),
            "Some fields need attention; see the messages next to them.".into(),
        ),
        None => (HashMap::new(), e.message.clone()),
    }
}

fn error_id(name: &str) -> String {
    format!("{name}_error")
}

fn field_error(errors: &FieldErrors, name: &str) -> Markup {
    html! { @if let Some(e) = errors.get(name) { p.field-error id=(error_id(name)) { (e) } } }
}

fn text_input(name: &str, label: &str, hint: Option<&str>, value: &str, errors: &FieldErrors) -> Markup {
    let err = errors.contains_key(name);
    let hint_id = format!("{name}_hint");
    let described = match (hint.is_some(), err) {
        (true, true) => Some(format!("{hint_id} {}", error_id(name))),
        (true, false) => Some(hint_id.clone()),
        (false, true) => Some(error_id(name)),
        (false, false) => None,
    };
    html! {
        div.field {
            label for=(name) { (label) }
            @if let Some(h) = hint { span.hint id=(hint_id) { (h) } }
            input id=(name) type="text" name=(name) value=(value) aria-invalid=[err.then_some("true")] aria-describedby=[described];
            (field_error(errors, name))
        }
    }
}

fn select(name: &str, label: &str, options: &[(String, String)], selected: &str, errors: &FieldErrors) -> Markup {
    picker(name, label, None, options, selected, errors)
}

/// A select whose directory choices (`kind`: `users`, `groups` or `resources`) the page's
/// search box narrows ([`super::pickers`]).
fn picker(
    name: &str,
    label: &str,
    kind: Option<&str>,
    options: &[(String, String)],
    selected: &str,
    errors: &FieldErrors,
) -> Markup {
    let err = errors.contains_key(name);
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) data-picker=[kind] aria-invalid=[err.then_some("true")] aria-describedby=[err.then(|| error_id(name))] {
                @for (v, l) in options { option value=(v) selected[v == selected] { (l) } }
            }
            (field_error(errors, name))
        }
    }
}

fn checkbox(name: &str, label: &str, checked: bool) -> Markup {
    html! {
        div.choice {
            input id=(name) type="checkbox" name=(name) value="on" checked[checked];
            " "
            label for=(name) { (label) }
        }
    }
}

fn general_error(general: Option<&str>) -> Markup {
    html! { @if let Some(g) = general { p.error role="alert" { (g) } } }
}

/// The search box of a page's pickers: a `GET` form to `action` (`find`), which
/// `portal.js` also runs as the person types, refreshing the pickers of `kinds` in place.
fn picker_search(action: &str, label: &str, kinds: &str, find: Option<&str>) -> Markup {
    html! {
        form.row.picker-search method="get" action=(action) role="search" aria-label=(label) {
            div.field {
                label for="find" { (label) }
                span.hint id="find_hint" { "Lists show the first " (pickers::SHOWN) " matches; search by name, sign-in name or mail." }
                input #find type="search" name="find" value=[find] data-picker-search=(kinds) aria-describedby="find_hint" autocomplete="off";
            }
            div { button type="submit" { "Search" } }
        }
    }
}

fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.session.csrf); }
}

fn page(state: &AppState, signed: &Signed, title: &str, status: StatusCode, body: Markup) -> Response {
    views::respond(status, views::page(state, Some(&viewer(signed)), Section::Admin, title, body))
}

fn refused(state: &AppState, signed: &Signed, e: &Error) -> Response {
    views::error_page(state, Some(&viewer(signed)), e)
}

fn owned<'a>(form: &'a Form, name: &str) -> &'a str {
    form.get(name).map(str::trim).unwrap_or("")
}

fn optional(form: &Form, name: &str) -> Option<String> {
    Some(owned(form, name).to_string()).filter(|v| !v.is_empty())
}

fn on(form: &Form, name: &str) -> bool {
    form.get(name).is_some_and(|v| v == "on" || v == "true")
}

/// 303 back to the package's page at `anchor`, saying what changed (`change`: see
/// [`change_notice`]).
fn back_to_package(id: &str, anchor: &str, change: &str) -> Response {
    see_other(&format!("/admin/packages/{}?changed={change}#{anchor}", grantry_domain::ids::normalize(id)))
}

/// The notice of the package page after a change.
fn change_notice(change: &str) -> &'static str {
    match change {
        "policy-created" => "The policy was created.",
        "policy-saved" => "The policy was saved.",
        "policy-deleted" => "The policy was deleted.",
        _ => "The access package was changed.",
    }
}

/// Where a refusal of one of the package page's forms is shown: the form (`role`,
/// `incompatible`, `policy`), the field next to which the API's message goes, and the
/// values sent.
struct RefusalAt<'a> {
    form: &'a str,
    field: &'a str,
    values: &'a Form,
}

fn refusal_at<'a>(form: &'a str, field: &'a str, values: &'a Form) -> RefusalAt<'a> {
    RefusalAt { form, field, values }
}

/// The answer to a change made from the package page: back to the page at `anchor` when
/// it was made; when the API refused it for a reason the person can fix (400, 404, 409) and
/// the change came from a form, the page again with the message at the form's field;
/// otherwise the refusal's own page (403 and the like).
async fn package_change(
    state: &AppState,
    signed: &Signed,
    id: &str,
    result: grantry_domain::Result<()>,
    (anchor, change): (&str, &str),
    at: Option<RefusalAt<'_>>,
) -> Response {
    match (result, at) {
        (Ok(()), _) => back_to_package(id, anchor, change),
        (Err(e), Some(at)) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict | ErrorKind::NotFound) => {
            let errors = HashMap::from([(at.field.to_string(), e.message.clone())]);
            package_page(state, signed, id, &HashMap::new(), Some((at.form, at.values, &errors, &e.message))).await
        }
        (Err(e), _) => refused(state, signed, &e),
    }
}

// ---------------------------------------------------------------------------------------
// Catalogs

/// The new-catalog form (on the administration home page).
pub fn new_catalog_form(signed: &Signed, values: &Form, errors: &FieldErrors, general: Option<&str>) -> Markup {
    let states: Vec<(String, String)> = vec![
        ("published".into(), "Published: its packages can be requested".into()),
        ("unpublished".into(), "Unpublished".into()),
    ];
    html! {
        h2 #new-catalog { "New catalog" }
        (general_error(general))
        form.stack method="post" action="/admin/catalogs" novalidate aria-labelledby="new-catalog" {
            (csrf(signed))
            (text_input("displayName", "Name", None, owned(values, "displayName"), errors))
            (text_input("description", "Description", Some("Optional."), owned(values, "description"), errors))
            (select("state", "State", &states, values.get("state").unwrap_or("published"), errors))
            (checkbox("isExternallyVisible", "People outside the directory may request its packages", on(values, "isExternallyVisible")))
            div { button.primary type="submit" { "Create catalog" } }
        }
    }
}

/// `POST /admin/catalogs`: creates a catalog (the caller becomes its owner).
pub async fn create_catalog(State(state): State<AppState>, signed: Signed, form: Form) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let body = json!({
        "displayName": owned(&form, "displayName"),
        "description": optional(&form, "description"),
        "state": owned(&form, "state"),
        "isExternallyVisible": on(&form, "isExternallyVisible"),
    });
    let input = (|| -> grantry_domain::Result<NewCatalog> {
        let b = Body::root(&body)?;
        let display_name = b.required_str(&["displayName"])?;
        if display_name.trim().is_empty() {
            return Err(Error::invalid_property("displayName", "'displayName' must not be empty: name the catalog."));
        }
        Ok(NewCatalog {
            display_name,
            description: b.str(&["description"])?,
            is_externally_visible: b.bool(&["isExternallyVisible"])?,
            state: b.enumeration(&["state"], CatalogState::parse, &CatalogState::allowed())?,
            unique_name: None,
        })
    })();
    let created = match input {
        Ok(input) => grantry_core::catalogs::create_catalog(&state.app, &signed.caller, input).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(c) => see_other(&format!("/admin/catalogs/{}?created=1", c.id)),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            let (errors, general) =
                place(&e, &[("displayName", "displayName"), ("description", "description"), ("state", "state")]);
            super::admin::home_page(&state, &signed, None, Some((&form, &errors, &general))).await
        }
        Err(e) => refused(&state, &signed, &e),
    }
}

/// The groups and applications the catalog page's picker offers, narrowed by `find`.
async fn groups_and_apps(
    state: &AppState,
    signed: &Signed,
    find: Option<&str>,
) -> (Vec<Group>, Vec<grantry_core::applications::Application>) {
    let groups = pickers::groups(state, signed, find, &[]).await.unwrap_or_default();
    let apps = pickers::applications(state, signed, find).await.unwrap_or_default();
    (groups, apps)
}

/// `GET /admin/catalogs/{id}`: a catalog's resources and packages, with the forms that add
/// them.
pub async fn catalog(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    catalog_page(&state, &signed, &id, &q, None).await
}

/// A form that was refused: its values, field errors and the message for the top.
type Refusal<'a> = (&'a str, &'a Form, &'a FieldErrors, &'a str);

async fn catalog_page(
    state: &AppState,
    signed: &Signed,
    id: &str,
    q: &HashMap<String, String>,
    refusal: Option<Refusal<'_>>,
) -> Response {
    if let Some(r) = require_admin(state, signed) {
        return r;
    }
    let catalog: Catalog = match grantry_core::catalogs::get_catalog(&state.app, &signed.caller, id).await {
        Ok(c) => c,
        Err(e) => return refused(state, signed, &e),
    };
    let resources = grantry_core::resources::list_resources(
        &state.app,
        &signed.caller,
        Some(&catalog.id),
        ListOptions { size: PICKER, ..Default::default() },
    )
    .await
    .map(|l| l.items)
    .unwrap_or_default();
    let packages = grantry_core::catalogs::list_catalog_packages(
        &state.app,
        &signed.caller,
        &catalog.id,
        PageRequest { after_seq: q.get("after").and_then(|a| a.parse().ok()), size: 50 },
    )
    .await
    .unwrap_or_else(|_| grantry_core::Page::from(Vec::new()));
    let find = pickers::term(q, "find");
    let (groups, apps) = groups_and_apps(state, signed, find.as_deref()).await;
    let now = state.app.now();
    let empty = Form(Vec::new());
    let no_errors = FieldErrors::new();
    let (res_values, res_errors, res_general) = match &refusal {
        Some(("resource", f, e, g)) => (*f, *e, Some(*g)),
        _ => (&empty, &no_errors, None),
    };
    let (pkg_values, pkg_errors, pkg_general) = match &refusal {
        Some(("package", f, e, g)) => (*f, *e, Some(*g)),
        _ => (&empty, &no_errors, None),
    };
    let in_catalog: Vec<&str> = resources.iter().map(|r| r.origin_id.as_str()).collect();
    let mut choices: Vec<(String, String)> = vec![(String::new(), "Choose a group or application".into())];
    for g in groups.iter().filter(|g| !in_catalog.iter().any(|o| o.eq_ignore_ascii_case(&g.id))) {
        choices.push((format!("AadGroup:{}", g.id), format!("Group: {}", g.display_name)));
    }
    for a in apps.iter().filter(|a| !in_catalog.iter().any(|o| o.eq_ignore_ascii_case(&a.sp_id))) {
        choices.push((format!("AadApplication:{}", a.sp_id), format!("Application: {}", a.display_name)));
    }
    let status = if refusal.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let body = html! {
        @if q.contains_key("created") { p.notice role="status" { "The catalog was created; you are its owner." } }
        @if q.contains_key("added") { p.notice role="status" { "The resource was added to the catalog." } }
        dl.facts {
            dt { "State" } dd { (badge(catalog.state.v1())) }
            @if let Some(d) = catalog.description.as_ref().filter(|d| !d.is_empty()) { dt { "Description" } dd { (d) } }
            dt { "External requestors" } dd { @if catalog.is_externally_visible { "Allowed" } @else { "Not allowed" } }
            dt { "Created" } dd { (when(catalog.created_date_time, now)) }
        }
        h2 #resources { "Resources" }
        @if resources.is_empty() { div.empty { "No resources yet. Add the groups and applications this catalog's packages grant." } }
        @else {
            table {
                thead { tr { th scope="col" { "Resource" } th scope="col" { "Kind" } th scope="col" { "Added" } } }
                tbody {
                    @for r in &resources {
                        tr {
                            td { (r.display_name.clone().unwrap_or_else(|| r.origin_id.clone())) }
                            td { (r.origin_system) }
                            td { (when(r.created_date_time, now)) }
                        }
                    }
                }
            }
        }
        h3 #add-resource { "Add a resource" }
        (picker_search(&format!("/admin/catalogs/{}#add-resource", catalog.id), "Find groups and applications", "resources", find.as_deref()))
        (general_error(res_general))
        form.stack method="post" action={"/admin/catalogs/" (catalog.id) "/resources"} novalidate aria-labelledby="add-resource" {
            (csrf(signed))
            (picker("resource", "Group or application", Some("resources"), &choices, res_values.get("resource").unwrap_or(""), res_errors))
            div { button type="submit" { "Add to catalog" } }
        }
        h2 #packages { "Access packages" }
        @if packages.items.is_empty() { div.empty { "No access packages in this catalog yet." } }
        @else {
            ul {
                @for p in &packages.items {
                    li { a href={"/admin/packages/" (p.id)} { (p.display_name) } @if p.is_hidden { " " span.muted { "(hidden)" } } }
                }
            }
        }
        @if let Some(n) = packages.next_after_seq() { p.pager { a href={"/admin/catalogs/" (catalog.id) "?after=" (n)} { "More packages" } } }
        h3 #new-package { "New access package" }
        (general_error(pkg_general))
        form.stack method="post" action={"/admin/catalogs/" (catalog.id) "/packages"} novalidate aria-labelledby="new-package" {
            (csrf(signed))
            (text_input("displayName", "Name", None, owned(pkg_values, "displayName"), pkg_errors))
            (text_input("description", "Description", Some("What the package is for, shown to requestors."), owned(pkg_values, "description"), pkg_errors))
            (checkbox("isHidden", "Hidden: requestors need a direct link", on(pkg_values, "isHidden")))
            div { button.primary type="submit" { "Create access package" } }
        }
        p { a href="/admin" { "All catalogs" } }
    };
    page(state, signed, &format!("Catalog {}", catalog.display_name), status, body)
}

/// `POST /admin/catalogs/{id}/resources`: a resource request (adminAdd) for a group or an
/// application's service principal.
pub async fn add_resource(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let chosen = owned(&form, "resource");
    let (system, origin) = chosen.split_once(':').unwrap_or(("", ""));
    let input = NewResourceRequest {
        catalog_id: grantry_domain::ids::normalize(&id),
        request_type: Some(RequestType::AdminAdd),
        justification: Some("Added in the portal's administration".into()),
        resource_id: None,
        origin_id: Some(origin.to_string()).filter(|o| !o.is_empty()),
        origin_system: Some(system.to_string()).filter(|s| !s.is_empty()),
        display_name: None,
        description: None,
        resource_type: None,
        url: None,
        attributes: None,
        resource_property: "resource".into(),
        catalog_property: "catalog".into(),
    };
    match grantry_core::resources::create_resource_request(&state.app, &signed.caller, input).await {
        Ok(_) => see_other(&format!("/admin/catalogs/{}?added=1#resources", grantry_domain::ids::normalize(&id))),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            let (mut errors, general) = place(&e, &[("resource", "resource")]);
            if errors.is_empty() {
                errors.insert("resource".into(), general.clone());
            }
            catalog_page(&state, &signed, &id, &HashMap::new(), Some(("resource", &form, &errors, &general))).await
        }
        Err(e) => refused(&state, &signed, &e),
    }
}

/// `POST /admin/catalogs/{id}/packages`: creates an access package in the catalog.
pub async fn create_package(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let body = json!({
        "displayName": owned(&form, "displayName"),
        "description": optional(&form, "description"),
        "isHidden": on(&form, "isHidden"),
    });
    let input = (|| -> grantry_domain::Result<NewPackage> {
        let b = Body::root(&body)?;
        let display_name = b.required_str(&["displayName"])?;
        if display_name.trim().is_empty() {
            return Err(Error::invalid_property(
                "displayName",
                "'displayName' must not be empty: name the access package.",
            ));
        }
        Ok(NewPackage {
            catalog_id: grantry_domain::ids::normalize(&id),
            catalog_property: "catalog".into(),
            display_name,
            description: b.str(&["description"])?,
            is_hidden: b.bool(&["isHidden"])?,
            is_role_scopes_visible: None,
            unique_name: None,
        })
    })();
    let created = match input {
        Ok(input) => grantry_core::packages::create_package(&state.app, &signed.caller, input).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(p) => see_other(&format!("/admin/packages/{}?created=1", p.id)),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            let (errors, general) = place(&e, &[("displayName", "displayName"), ("description", "description")]);
            catalog_page(&state, &signed, &id, &HashMap::new(), Some(("package", &form, &errors, &general))).await
        }
        Err(e) => refused(&state, &signed, &e),
    }
}

// ---------------------------------------------------------------------------------------
// Access packages

/// `GET /admin/packages/{id}`: a package's resource roles, incompatible packages and
/// policies, with the forms that change them.
pub async fn package(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    package_page(&state, &signed, &id, &q, None).await
}

async fn package_page(
    state: &AppState,
    signed: &Signed,
    id: &str,
    q: &HashMap<String, String>,
    refusal: Option<Refusal<'_>>,
) -> Response {
    if let Some(r) = require_admin(state, signed) {
        return r;
    }
    let package: AccessPackage = match grantry_core::packages::get_package(&state.app, &signed.caller, id).await {
        Ok(p) => p,
        Err(e) => return refused(state, signed, &e),
    };
    let catalog = grantry_core::catalogs::get_catalog(&state.app, &signed.caller, &package.catalog_id).await.ok();
    let all = PageRequest { after_seq: None, size: PICKER };
    let role_scopes = grantry_core::packages::list_role_scopes(&state.app, &signed.caller, &package.id, all)
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let roles = grantry_core::resources::list_resource_roles(
        &state.app,
        &signed.caller,
        &package.catalog_id,
        None,
        ListOptions { size: PICKER, ..Default::default() },
    )
    .await
    .map(|l| l.items)
    .unwrap_or_default();
    let resources: HashMap<String, String> =
        grantry_core::resources::resources_by_ids(&state.app, roles.iter().map(|r| r.resource_id.clone()).collect())
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.id.clone(), r.display_name.unwrap_or(r.origin_id)))
            .collect();
    let incompatible = grantry_core::packages::list_incompatible_packages(&state.app, &signed.caller, &package.id, all)
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let others = grantry_core::packages::list_packages(
        &state.app,
        &signed.caller,
        ListOptions { size: PICKER, ..Default::default() },
    )
    .await
    .map(|l| l.items)
    .unwrap_or_default();
    let policies = grantry_core::policies::list_policies(
        &state.app,
        &signed.caller,
        ListOptions { size: 100, ..Default::default() },
        Some(PackageScope { access_package_id: package.id.clone(), catalog_id: None }),
    )
    .await
    .map(|l| l.items)
    .unwrap_or_default();
    let empty = Form(Vec::new());
    let no_errors = FieldErrors::new();
    let (role_values, role_errors, role_general) = match &refusal {
        Some(("role", f, e, g)) => (*f, *e, Some(*g)),
        _ => (&empty, &no_errors, None),
    };
    let (inc_values, inc_errors, inc_general) = match &refusal {
        Some(("incompatible", f, e, g)) => (*f, *e, Some(*g)),
        _ => (&empty, &no_errors, None),
    };
    let policy_errors = match &refusal {
        Some(("policy", _, e, _)) => *e,
        _ => &no_errors,
    };
    let role_label =
        |resource_id: &str, role: &str| format!("{} — {role}", resources.get(resource_id).cloned().unwrap_or_default());
    let granted: Vec<&str> = role_scopes.iter().map(|v| v.role_scope.role_id.as_str()).collect();
    let mut role_choices: Vec<(String, String)> = vec![(String::new(), "Choose a role of a catalog resource".into())];
    role_choices.extend(
        roles
            .iter()
            .filter(|r| !granted.contains(&r.id.as_str()))
            .map(|r| (r.id.clone(), role_label(&r.resource_id, &r.display_name))),
    );
    let linked: Vec<&str> = incompatible.iter().map(|p| p.id.as_str()).collect();
    let mut other_choices: Vec<(String, String)> = vec![(String::new(), "Choose an access package".into())];
    other_choices.extend(
        others
            .iter()
            .filter(|p| p.id != package.id && !linked.contains(&p.id.as_str()))
            .map(|p| (p.id.clone(), p.display_name.clone())),
    );
    let status = if refusal.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let body = html! {
        @if q.contains_key("created") { p.notice role="status" { "The access package was created. Grant its resource roles and add a policy so people can request it." } }
        @if let Some(change) = q.get("changed") { p.notice role="status" { (change_notice(change)) } }
        dl.facts {
            dt { "Catalog" } dd { @if let Some(c) = &catalog { a href={"/admin/catalogs/" (c.id)} { (c.display_name) } } @else { (package.catalog_id) } }
            @if let Some(d) = package.description.as_ref().filter(|d| !d.is_empty()) { dt { "Description" } dd { (d) } }
            dt { "Visibility" } dd { @if package.is_hidden { "Hidden (direct link only)" } @else { "Shown to people who may request it" } }
        }
        h2 #roles { "Resource roles" }
        @if role_scopes.is_empty() { div.empty { "This package grants nothing yet. Add a role of one of the catalog's resources." } }
        @else {
            table {
                thead { tr { th scope="col" { "Resource" } th scope="col" { "Role" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for v in &role_scopes {
                        @let role_name = v.role.as_ref().map(|r| r.display_name.clone()).unwrap_or_else(|| v.role_scope.role_id.clone());
                        @let resource_name = v.role.as_ref().and_then(|r| resources.get(&r.resource_id).cloned()).unwrap_or_default();
                        tr {
                            td { (resource_name) }
                            td { (role_name) }
                            td {
                                form method="post" action={"/admin/packages/" (package.id) "/roles/" (v.role_scope.id) "/remove"} {
                                    (csrf(signed))
                                    button.danger type="submit" aria-label={"Remove the role " (role_name) " of " (resource_name)} { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (general_error(role_general))
        form.row method="post" action={"/admin/packages/" (package.id) "/roles"} novalidate aria-label="Add a resource role" {
            (csrf(signed))
            (select("role", "Add a resource role", &role_choices, role_values.get("role").unwrap_or(""), role_errors))
            div { button type="submit" { "Add role" } }
        }
        @if roles.is_empty() { p.muted { "The catalog has no resources yet: " @if let Some(c) = &catalog { a href={"/admin/catalogs/" (c.id) "#add-resource"} { "add a group or application to it" } } " first." } }
        h2 #incompatible { "Incompatible access packages" }
        p.muted { "People who have one of these packages cannot request this one, and the other way round." }
        @if incompatible.is_empty() { div.empty { "No incompatible packages." } }
        @else {
            ul {
                @for p in &incompatible {
                    li.row {
                        span { (p.display_name) }
                        form method="post" action={"/admin/packages/" (package.id) "/incompatible/" (p.id) "/remove"} {
                            (csrf(signed))
                            button.danger type="submit" aria-label={"Make " (p.display_name) " compatible again"} { "Remove" }
                        }
                    }
                }
            }
        }
        (general_error(inc_general))
        form.row method="post" action={"/admin/packages/" (package.id) "/incompatible"} novalidate aria-label="Add an incompatible access package" {
            (csrf(signed))
            (select("other", "Add an incompatible access package", &other_choices, inc_values.get("other").unwrap_or(""), inc_errors))
            div { button type="submit" { "Add" } }
        }
        h2 #policies { "Policies" }
        @if policies.is_empty() { div.empty { "No policy yet: nobody can request or be assigned this package." } }
        @else {
            @for p in &policies {
                section.card aria-labelledby={"policy-" (p.id)} {
                    h3 id={"policy-" (p.id)} { (p.display_name) }
                    p.muted { "Who: " (scope_words(p)) }
                    (describe_policy(p))
                    @if let Some(e) = policy_errors.get(&p.id) { p.error role="alert" id={"policy-" (p.id) "_error"} { (e) } }
                    div.row {
                        a.button href={"/admin/packages/" (package.id) "/policies/" (p.id)} aria-label={"Edit the policy " (p.display_name)} { "Edit" }
                        form method="post" action={"/admin/packages/" (package.id) "/policies/" (p.id) "/delete"} {
                            (csrf(signed))
                            button.danger type="submit" aria-label={"Delete the policy " (p.display_name)} { "Delete" }
                        }
                    }
                }
            }
        }
        p { a.button.primary href={"/admin/packages/" (package.id) "/policies/new"} { "New policy" } }
    };
    page(state, signed, &format!("Access package {}", package.display_name), status, body)
}

fn scope_words(p: &grantry_domain::model::Policy) -> &'static str {
    use grantry_domain::enums::AllowedTargetScope as S;
    match p.allowed_target_scope {
        S::NotSpecified => "administrators assign directly",
        S::AllMemberUsers => "members of the directory may request",
        S::AllDirectoryUsers => "anyone in the directory, guests included, may request",
        S::SpecificDirectoryUsers => "specific people or groups may request",
        _ => "people from connected organizations may request",
    }
}

/// `POST /admin/packages/{id}/roles`: grants a catalog resource's role with the package.
pub async fn add_role(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let input = NewRoleScope {
        role_id: optional(&form, "role"),
        role_origin_id: None,
        role_origin_system: None,
        resource_id: None,
        scope_id: None,
        scope_origin_id: None,
        role_property: "role".into(),
        scope_property: "scope".into(),
        resource_property: "resource".into(),
    };
    let result = grantry_core::packages::add_role_scope(&state.app, &signed.caller, &id, input).await.map(|_| ());
    package_change(&state, &signed, &id, result, ("roles", "1"), Some(refusal_at("role", "role", &form))).await
}

/// `POST /admin/packages/{id}/roles/{roleScope}/remove`.
pub async fn remove_role(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, role_scope)): Path<(String, String)>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let result = grantry_core::packages::delete_role_scope(&state.app, &signed.caller, &id, &role_scope).await;
    package_change(&state, &signed, &id, result, ("roles", "1"), None).await
}

/// `POST /admin/packages/{id}/incompatible`.
pub async fn add_incompatible(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let other = owned(&form, "other").to_string();
    let result = if other.is_empty() {
        Err(Error::invalid_property("@odata.id", "Choose the access package that is incompatible with this one."))
    } else {
        grantry_core::packages::add_incompatible_package(&state.app, &signed.caller, &id, &other).await
    };
    package_change(
        &state,
        &signed,
        &id,
        result,
        ("incompatible", "1"),
        Some(refusal_at("incompatible", "other", &form)),
    )
    .await
}

/// `POST /admin/packages/{id}/incompatible/{other}/remove`.
pub async fn remove_incompatible(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, other)): Path<(String, String)>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let result = grantry_core::packages::remove_incompatible_package(&state.app, &signed.caller, &id, &other).await;
    package_change(&state, &signed, &id, result, ("incompatible", "1"), None).await
}

// ---------------------------------------------------------------------------------------
// Policies

/// Approval stages and questions the form offers.
const STAGES: usize = 3;
const QUESTIONS: usize = 3;

/// Where the API's refusals of a policy body are shown: Graph property path → form field.
fn policy_fields() -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = [
        ("displayName", "displayName"),
        ("description", "description"),
        ("allowedTargetScope", "allowedTargetScope"),
        ("specificAllowedTargets", "targetUser"),
        ("requestorSettings", "requestor"),
        ("requestApprovalSettings", "approval"),
        ("requestApprovalSettings.isRequestorJustificationRequired", "approval"),
        ("expiration", "expiration"),
        ("expiration.duration", "expirationDays"),
        ("expiration.endDateTime", "expirationDate"),
        ("questions", "questions"),
        ("reviewSettings", "review"),
        ("reviewSettings.schedule.startDateTime", "reviewStart"),
        ("reviewSettings.schedule.expiration", "reviewDays"),
        ("reviewSettings.primaryReviewers", "reviewers"),
        ("reviewSettings.schedule.recurrence", "reviewRecurrence"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    for i in 0..STAGES {
        let n = i + 1;
        f.push((format!("requestApprovalSettings.stages[{i}]"), format!("stage{n}")));
        f.push((format!("requestApprovalSettings.stages[{i}].primaryApprovers"), format!("stage{n}Approver")));
        f.push((format!("requestApprovalSettings.stages[{i}].durationBeforeAutomaticDenial"), format!("stage{n}Days")));
        f.push((
            format!("requestApprovalSettings.stages[{i}].durationBeforeEscalation"),
            format!("stage{n}EscalationDays"),
        ));
        f.push((format!("requestApprovalSettings.stages[{i}].escalationApprovers"), format!("stage{n}Escalation")));
    }
    for i in 0..QUESTIONS {
        let n = i + 1;
        f.push((format!("questions[{i}]"), format!("q{n}Text")));
        f.push((format!("questions[{i}].choices"), format!("q{n}Choices")));
        f.push((format!("questions[{i}].regexPattern"), format!("q{n}Pattern")));
    }
    f
}

/// A subject set chosen in a picker: `manager`, `user:{id}` or `group:{id}`.
fn subject(choice: &str) -> Option<Value> {
    match choice.split_once(':') {
        _ if choice == "manager" => {
            Some(json!({ "@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1 }))
        }
        Some(("user", id)) if !id.is_empty() => {
            Some(json!({ "@odata.type": "#microsoft.graph.singleUser", "userId": id }))
        }
        Some(("group", id)) if !id.is_empty() => {
            Some(json!({ "@odata.type": "#microsoft.graph.groupMembers", "groupId": id }))
        }
        _ => None,
    }
}

/// `N` days as an ISO 8601 duration; other text is passed on for the API to refuse.
fn days(v: &str) -> String {
    format!("P{}D", v.trim())
}

/// A `YYYY-MM-DD` date as midnight UTC; other text is passed on for the API to refuse.
fn date_time(v: &str) -> String {
    if chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").is_ok() {
        format!("{}T00:00:00Z", v.trim())
    } else {
        v.to_string()
    }
}

/// The Graph (v1.0) policy body the form describes.
pub fn policy_body(package_id: &str, f: &Form) -> Value {
    let mut body = json!({
        "displayName": owned(f, "displayName"),
        "accessPackage": { "id": package_id },
        "allowedTargetScope": owned(f, "allowedTargetScope"),
    });
    if let Some(d) = optional(f, "description") {
        body["description"] = json!(d);
    }
    if owned(f, "allowedTargetScope") == "specificDirectoryUsers" {
        let targets: Vec<Value> = ["targetUser", "targetGroup"].iter().filter_map(|k| subject(owned(f, k))).collect();
        body["specificAllowedTargets"] = json!(targets);
    }
    let on_behalf = on(f, "onBehalf");
    body["requestorSettings"] = json!({
        "enableTargetsToSelfAddAccess": on(f, "selfAdd"),
        "enableTargetsToSelfUpdateAccess": on(f, "selfExtend"),
        "enableTargetsToSelfRemoveAccess": on(f, "selfRemove"),
        "allowCustomAssignmentSchedule": on(f, "customSchedule"),
        "enableOnBehalfRequestorsToAddAccess": on_behalf,
        "onBehalfRequestors": if on_behalf { json!([{ "@odata.type": "#microsoft.graph.targetManager", "managerLevel": 1 }]) } else { json!([]) },
    });
    let mut stages = Vec::new();
    for n in 1..=STAGES {
        let approver = owned(f, &format!("stage{n}Approver"));
        if approver.is_empty() {
            continue;
        }
        let mut stage = json!({
            "isApproverJustificationRequired": on(f, &format!("stage{n}Justification")),
            "primaryApprovers": subject(approver).into_iter().collect::<Vec<_>>(),
            "isEscalationEnabled": false,
        });
        if let Some(d) = optional(f, &format!("stage{n}Days")) {
            stage["durationBeforeAutomaticDenial"] = json!(days(&d));
        }
        if let Some(esc) = subject(owned(f, &format!("stage{n}Escalation"))) {
            stage["isEscalationEnabled"] = json!(true);
            stage["escalationApprovers"] = json!([esc]);
            if let Some(d) = optional(f, &format!("stage{n}EscalationDays")) {
                stage["durationBeforeEscalation"] = json!(days(&d));
            }
        }
        stages.push(stage);
    }
    body["requestApprovalSettings"] = json!({
        "isApprovalRequiredForAdd": !stages.is_empty(),
        "isApprovalRequiredForUpdate": !stages.is_empty(),
        "isRequestorJustificationRequired": on(f, "justificationRequired"),
        "stages": stages,
    });
    let mut questions = Vec::new();
    for n in 1..=QUESTIONS {
        let text = owned(f, &format!("q{n}Text"));
        let choices: Vec<&str> =
            owned(f, &format!("q{n}Choices")).lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if text.is_empty() && choices.is_empty() {
            continue;
        }
        let mut q = json!({
            "sequence": n,
            "isRequired": on(f, &format!("q{n}Required")),
            "isAnswerEditable": true,
            "text": text,
        });
        if owned(f, &format!("q{n}Kind")) == "choice" {
            q["@odata.type"] = json!("#microsoft.graph.accessPackageMultipleChoiceQuestion");
            q["isMultipleSelectionAllowed"] = json!(on(f, &format!("q{n}Multiple")));
            q["choices"] = json!(choices.iter().map(|c| json!({ "actualValue": c, "text": c })).collect::<Vec<_>>());
        } else {
            q["@odata.type"] = json!("#microsoft.graph.accessPackageTextInputQuestion");
            q["isSingleLineQuestion"] = json!(true);
            if let Some(p) = optional(f, &format!("q{n}Pattern")) {
                q["regexPattern"] = json!(p);
            }
        }
        questions.push(q);
    }
    body["questions"] = json!(questions);
    body["expiration"] = match owned(f, "expiration") {
        "afterDuration" => json!({ "type": "afterDuration", "duration": days(owned(f, "expirationDays")) }),
        "afterDateTime" => json!({ "type": "afterDateTime", "endDateTime": date_time(owned(f, "expirationDate")) }),
        other => json!({ "type": if other.is_empty() { "noExpiration" } else { other } }),
    };
    if on(f, "reviewEnabled") {
        let (pattern, interval) = match owned(f, "reviewRecurrence") {
            "weekly" => ("weekly", 1),
            "monthly" => ("absoluteMonthly", 1),
            "annually" => ("absoluteMonthly", 12),
            _ => ("absoluteMonthly", 3),
        };
        let reviewers = owned(f, "reviewers");
        let mut schedule = json!({
            "expiration": { "type": "afterDuration", "duration": days(optional(f, "reviewDays").as_deref().unwrap_or("14")) },
            "recurrence": { "pattern": { "type": pattern, "interval": interval }, "range": { "type": "noEnd" } },
        });
        if let Some(start) = optional(f, "reviewStart") {
            schedule["startDateTime"] = json!(date_time(&start));
        }
        body["reviewSettings"] = json!({
            "isEnabled": true,
            "expirationBehavior": if owned(f, "reviewExpiration").is_empty() { "keepAccess" } else { owned(f, "reviewExpiration") },
            "isRecommendationEnabled": on(f, "reviewRecommendations"),
            "isReviewerJustificationRequired": on(f, "reviewJustification"),
            "isSelfReview": reviewers == "self",
            "schedule": schedule,
            "primaryReviewers": if reviewers == "self" { Vec::new() } else { subject(reviewers).into_iter().collect::<Vec<_>>() },
            "fallbackReviewers": [],
        });
    }
    body
}

/// `GET /admin/packages/{id}/policies/new`: the policy form.
pub async fn new_policy(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let defaults = Form(
        [
            ("allowedTargetScope", "allMemberUsers"),
            ("selfAdd", "on"),
            ("selfExtend", "on"),
            ("selfRemove", "on"),
            ("justificationRequired", "on"),
            ("stage1Approver", "manager"),
            ("stage1Days", "14"),
            ("expiration", "afterDuration"),
            ("expirationDays", "365"),
            ("reviewDays", "14"),
            ("reviewRecommendations", "on"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let find = pickers::term(&q, "find");
    let form = PolicyForm { values: &defaults, editing: None, find: find.as_deref() };
    policy_page(&state, &signed, &id, form, &HashMap::new(), None).await
}

/// `POST /admin/packages/{id}/policies`: creates the policy the form describes (the API's
/// parser and validation decide).
pub async fn create_policy(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let package = match grantry_core::packages::get_package(&state.app, &signed.caller, &id).await {
        Ok(p) => p,
        Err(e) => return refused(&state, &signed, &e),
    };
    let body = policy_body(&package.id, &form);
    let created = match Body::root(&body).and_then(|b| grantry_graph::policy::parse_policy(&b, Dialect::V1)) {
        Ok(input) => {
            grantry_core::policies::create_policy(
                &state.app,
                &signed.caller,
                input,
                Some(PackageScope { access_package_id: package.id.clone(), catalog_id: None }),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(_) => back_to_package(&package.id, "policies", "policy-created"),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            let (errors, general) = place_policy_refusal(&e);
            policy_page(&state, &signed, &id, PolicyForm::new(&form), &errors, Some(&general)).await
        }
        Err(e) => refused(&state, &signed, &e),
    }
}

/// A policy refusal's message next to the form field that edits its `target`.
fn place_policy_refusal(e: &Error) -> (FieldErrors, String) {
    let fields = policy_fields();
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    place(e, &pairs)
}

/// `GET /admin/packages/{id}/policies/{policy}`: the policy form filled with the policy.
pub async fn edit_policy(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, policy_id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = require_admin(&state, &signed) {
        return r;
    }
    let scope = PackageScope { access_package_id: grantry_domain::ids::normalize(&id), catalog_id: None };
    let policy = match grantry_core::policies::get_policy(&state.app, &signed.caller, &policy_id, Some(scope)).await {
        Ok(p) => p,
        Err(e) => return refused(&state, &signed, &e),
    };
    let values = policy_values(&policy);
    let find = pickers::term(&q, "find");
    let form = PolicyForm { values: &values, editing: Some(&policy.id), find: find.as_deref() };
    policy_page(&state, &signed, &id, form, &HashMap::new(), None).await
}

/// `POST /admin/packages/{id}/policies/{policy}`: replaces the policy with what the form
/// describes, keeping what the form does not show (custom extension stages, automatic
/// assignment rules, notification settings, connected organizations), through the API's
/// parser and `replace_policy`.
pub async fn update_policy(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, policy_id)): Path<(String, String)>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let scope = PackageScope { access_package_id: grantry_domain::ids::normalize(&id), catalog_id: None };
    let current = match grantry_core::policies::get_policy(&state.app, &signed.caller, &policy_id, Some(scope)).await {
        Ok(p) => p,
        Err(e) => return refused(&state, &signed, &e),
    };
    let body = edited_policy_body(&current, &form);
    let saved = match Body::root(&body).and_then(|b| grantry_graph::policy::parse_policy(&b, Dialect::V1)) {
        Ok(input) => grantry_core::policies::replace_policy(&state.app, &signed.caller, &current.id, input).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => back_to_package(&current.access_package_id, "policies", "policy-saved"),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            let (errors, general) = place_policy_refusal(&e);
            let form = PolicyForm { values: &form, editing: Some(&current.id), find: None };
            policy_page(&state, &signed, &id, form, &errors, Some(&general)).await
        }
        Err(e) => refused(&state, &signed, &e),
    }
}

/// `POST /admin/packages/{id}/policies/{policy}/delete`: deletes the policy; while
/// assignments were made through it the API refuses, and its message is shown at the
/// policy.
pub async fn delete_policy(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, policy_id)): Path<(String, String)>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let scope = PackageScope { access_package_id: grantry_domain::ids::normalize(&id), catalog_id: None };
    let result = match grantry_core::policies::get_policy(&state.app, &signed.caller, &policy_id, Some(scope)).await {
        Ok(p) => grantry_core::policies::delete_policy(&state.app, &signed.caller, &p.id).await,
        Err(e) => Err(e),
    };
    let field = grantry_domain::ids::normalize(&policy_id);
    package_change(
        &state,
        &signed,
        &id,
        result,
        ("policies", "policy-deleted"),
        Some(refusal_at("policy", &field, &form)),
    )
    .await
}

/// The stored policy as Graph v1.0 renders it, with the properties the form edits replaced
/// by the form's: what the form does not show is kept as it is.
fn edited_policy_body(current: &grantry_domain::model::Policy, form: &Form) -> Value {
    let view = grantry_graph::policy::PolicyView::new(current, Dialect::V1, &Default::default());
    let mut body = serde_json::to_value(&view).unwrap_or_else(|_| json!({}));
    let edited = policy_body(&current.access_package_id, form);
    if let (Some(out), Value::Object(from_form)) = (body.as_object_mut(), edited) {
        out.retain(|k, _| !k.starts_with('@'));
        let kept_targets = out.get("specificAllowedTargets").cloned();
        for (k, v) in from_form {
            out.insert(k, v);
        }
        match owned(form, "allowedTargetScope") {
            // Scopes the form builds targets for, or needs none for.
            "specificDirectoryUsers" => {}
            "allMemberUsers" | "allDirectoryUsers" | "notSpecified" => {
                out.insert("specificAllowedTargets".into(), json!([]));
            }
            // Connected organizations' scopes keep the organizations they name.
            _ => {
                if let Some(t) = kept_targets {
                    out.insert("specificAllowedTargets".into(), t);
                }
            }
        }
        if !on(form, "reviewEnabled")
            && let Some(review) = out.get_mut("reviewSettings").and_then(Value::as_object_mut)
        {
            review.insert("isEnabled".into(), json!(false));
        }
    }
    body
}

/// A subject set of a rendered policy as a picker's value (`manager`, `user:{id}`,
/// `group:{id}`).
fn subject_choice(v: &Value) -> Option<String> {
    let kind = v["@odata.type"].as_str().unwrap_or_default();
    if kind.ends_with("requestorManager") || kind.ends_with("targetManager") {
        Some("manager".into())
    } else if kind.ends_with("singleUser") {
        v["userId"].as_str().map(|id| format!("user:{id}"))
    } else if kind.ends_with("groupMembers") {
        v["groupId"].as_str().map(|id| format!("group:{id}"))
    } else {
        None
    }
}

/// An ISO 8601 duration as the form's whole days (`P14D` → 14; `PT36H` → 2).
fn in_days(v: &Value) -> Option<String> {
    let d = grantry_domain::duration::parse(v.as_str()?).ok()?;
    let seconds = d.num_seconds();
    Some(((seconds + 86_399) / 86_400).to_string())
}

/// The policy form's values for a stored policy (read from its Graph v1.0 rendering).
fn policy_values(p: &grantry_domain::model::Policy) -> Form {
    let view = grantry_graph::policy::PolicyView::new(p, Dialect::V1, &Default::default());
    let b = serde_json::to_value(&view).unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.push((k.to_string(), v));
        }
    };
    let text = |v: &Value| v.as_str().map(str::to_string);
    let flag = |v: &Value| v.as_bool().unwrap_or(false).then(|| "on".to_string());
    put("displayName", text(&b["displayName"]));
    put("description", text(&b["description"]));
    put("allowedTargetScope", text(&b["allowedTargetScope"]));
    for t in b["specificAllowedTargets"].as_array().into_iter().flatten() {
        match subject_choice(t) {
            Some(c) if c.starts_with("user:") => put("targetUser", Some(c)),
            Some(c) if c.starts_with("group:") => put("targetGroup", Some(c)),
            _ => {}
        }
    }
    let rs = &b["requestorSettings"];
    put("selfAdd", flag(&rs["enableTargetsToSelfAddAccess"]));
    put("selfExtend", flag(&rs["enableTargetsToSelfUpdateAccess"]));
    put("selfRemove", flag(&rs["enableTargetsToSelfRemoveAccess"]));
    put("customSchedule", flag(&rs["allowCustomAssignmentSchedule"]));
    put("onBehalf", flag(&rs["enableOnBehalfRequestorsToAddAccess"]));
    let ra = &b["requestApprovalSettings"];
    put("justificationRequired", flag(&ra["isRequestorJustificationRequired"]));
    for (i, stage) in ra["stages"].as_array().into_iter().flatten().take(STAGES).enumerate() {
        let n = i + 1;
        put(&format!("stage{n}Approver"), stage["primaryApprovers"].get(0).and_then(subject_choice));
        put(&format!("stage{n}Days"), in_days(&stage["durationBeforeAutomaticDenial"]));
        put(&format!("stage{n}Justification"), flag(&stage["isApproverJustificationRequired"]));
        if stage["isEscalationEnabled"].as_bool() == Some(true) {
            put(&format!("stage{n}Escalation"), stage["escalationApprovers"].get(0).and_then(subject_choice));
            put(&format!("stage{n}EscalationDays"), in_days(&stage["durationBeforeEscalation"]));
        }
    }
    for (i, q) in b["questions"].as_array().into_iter().flatten().take(QUESTIONS).enumerate() {
        let n = i + 1;
        put(&format!("q{n}Text"), text(&q["text"]));
        put(&format!("q{n}Required"), flag(&q["isRequired"]));
        if q["@odata.type"].as_str().is_some_and(|t| t.ends_with("MultipleChoiceQuestion")) {
            put(&format!("q{n}Kind"), Some("choice".into()));
            put(&format!("q{n}Multiple"), flag(&q["isMultipleSelectionAllowed"]));
            let choices: Vec<String> =
                q["choices"].as_array().into_iter().flatten().filter_map(|c| text(&c["actualValue"])).collect();
            put(&format!("q{n}Choices"), Some(choices.join("\n")));
        } else {
            put(&format!("q{n}Kind"), Some("text".into()));
            put(&format!("q{n}Pattern"), text(&q["regexPattern"]));
        }
    }
    let e = &b["expiration"];
    put("expiration", text(&e["type"]));
    put("expirationDays", in_days(&e["duration"]));
    put("expirationDate", text(&e["endDateTime"]).map(|d| d.chars().take(10).collect()));
    let r = &b["reviewSettings"];
    if r["isEnabled"].as_bool() == Some(true) {
        put("reviewEnabled", Some("on".into()));
        let pattern = &r["schedule"]["recurrence"]["pattern"];
        let every = match (pattern["type"].as_str().unwrap_or_default(), pattern["interval"].as_i64().unwrap_or(1)) {
            ("weekly", _) => "weekly",
            (_, 1) => "monthly",
            (_, 12) => "annually",
            _ => "quarterly",
        };
        put("reviewRecurrence", Some(every.into()));
        put("reviewDays", in_days(&r["schedule"]["expiration"]["duration"]));
        put("reviewStart", text(&r["schedule"]["startDateTime"]).map(|d| d.chars().take(10).collect()));
        let reviewer = if r["isSelfReview"].as_bool() == Some(true) {
            Some("self".to_string())
        } else {
            r["primaryReviewers"].get(0).and_then(subject_choice)
        };
        put("reviewers", reviewer);
        put("reviewExpiration", text(&r["expirationBehavior"]));
        put("reviewRecommendations", flag(&r["isRecommendationEnabled"]));
        put("reviewJustification", flag(&r["isReviewerJustificationRequired"]));
    }
    Form(out)
}

/// What the policy page shows: the form's values, the policy being edited (none for a new
/// one) and the pickers' search.
struct PolicyForm<'a> {
    values: &'a Form,
    editing: Option<&'a str>,
    find: Option<&'a str>,
}

impl<'a> PolicyForm<'a> {
    fn new(values: &'a Form) -> Self {
        PolicyForm { values, editing: None, find: None }
    }
}

async fn policy_page(
    state: &AppState,
    signed: &Signed,
    id: &str,
    form: PolicyForm<'_>,
    errors: &FieldErrors,
    general: Option<&str>,
) -> Response {
    if let Some(r) = require_admin(state, signed) {
        return r;
    }
    let package = match grantry_core::packages::get_package(&state.app, &signed.caller, id).await {
        Ok(p) => p,
        Err(e) => return refused(state, signed, &e),
    };
    let values = form.values;
    // People and groups already chosen stay among the choices whatever the search.
    let chosen = |prefix: &str| -> Vec<String> {
        values.0.iter().filter_map(|(_, v)| v.strip_prefix(prefix).map(str::to_string)).collect()
    };
    let (chosen_users, chosen_groups) = (chosen("user:"), chosen("group:"));
    let keep_users: Vec<&str> = chosen_users.iter().map(String::as_str).collect();
    let keep_groups: Vec<&str> = chosen_groups.iter().map(String::as_str).collect();
    let users: Vec<User> = pickers::users(state, signed, form.find, &keep_users).await.unwrap_or_default();
    let groups: Vec<Group> = pickers::groups(state, signed, form.find, &keep_groups).await.unwrap_or_default();
    let page_path = match form.editing {
        Some(p) => format!("/admin/packages/{}/policies/{p}", package.id),
        None => format!("/admin/packages/{}/policies/new", package.id),
    };
    let action = match form.editing {
        Some(p) => format!("/admin/packages/{}/policies/{p}", package.id),
        None => format!("/admin/packages/{}/policies", package.id),
    };
    let v = |k: &str| values.get(k).unwrap_or("").to_string();
    let user_choices = |none: &str, manager: Option<&str>| -> Vec<(String, String)> {
        let mut out = vec![(String::new(), none.to_string())];
        if let Some(m) = manager {
            out.push(("manager".into(), m.to_string()));
        }
        out.extend(users.iter().map(|u| (format!("user:{}", u.id), pickers::user_label(u))));
        out
    };
    let group_choices: Vec<(String, String)> = std::iter::once((String::new(), "No group".to_string()))
        .chain(groups.iter().map(|g| (format!("group:{}", g.id), g.display_name.clone())))
        .collect();
    let scopes: Vec<(String, String)> = [
        ("allMemberUsers", "Members of the directory (not guests)"),
        ("allDirectoryUsers", "Everyone in the directory, guests included"),
        ("specificDirectoryUsers", "Specific people or members of a group"),
        ("notSpecified", "Nobody: administrators assign directly"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let expirations: Vec<(String, String)> =
        [("afterDuration", "After a number of days"), ("afterDateTime", "On a date"), ("noExpiration", "Never")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    let recurrences: Vec<(String, String)> =
        [("weekly", "Weekly"), ("monthly", "Monthly"), ("quarterly", "Quarterly"), ("annually", "Annually")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    let review_ends: Vec<(String, String)> = [
        ("keepAccess", "Keep access"),
        ("removeAccess", "Remove access"),
        ("acceptAccessRecommendation", "Follow the recommendations"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let kinds: Vec<(String, String)> =
        vec![("text".into(), "Text".into()), ("choice".into(), "Multiple choice".into())];
    let status = if general.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let body = html! {
        p.muted { "For " a href={"/admin/packages/" (package.id)} { (package.display_name) } ". A policy decides who may request the package, who approves, what requestors answer, how long access lasts and how it is reviewed." }
        (picker_search(&page_path, "Find people and groups for the pickers", "users groups", form.find))
        (general_error(general))
        form.stack method="post" action=(action) novalidate {
            (csrf(signed))
            (text_input("displayName", "Name", None, &v("displayName"), errors))
            (text_input("description", "Description", Some("Optional; shown to requestors."), &v("description"), errors))
            fieldset {
                legend { "Who can request" }
                (select("allowedTargetScope", "Requestors", &scopes, &v("allowedTargetScope"), errors))
                (picker("targetUser", "Specific person (for specific requestors)", Some("users"), &user_choices("No person", None), &v("targetUser"), errors))
                (picker("targetGroup", "Members of a group (for specific requestors)", Some("groups"), &group_choices, &v("targetGroup"), errors))
            }
            fieldset aria-describedby=[errors.contains_key("requestor").then(|| error_id("requestor"))] {
                legend { "Requests" }
                (checkbox("selfAdd", "People may request it for themselves", on(values, "selfAdd")))
                (checkbox("selfExtend", "People may ask to extend their access", on(values, "selfExtend")))
                (checkbox("selfRemove", "People may remove their own access", on(values, "selfRemove")))
                (checkbox("customSchedule", "Requestors may choose when access starts and ends", on(values, "customSchedule")))
                (checkbox("onBehalf", "Managers may request it for their direct reports", on(values, "onBehalf")))
                (field_error(errors, "requestor"))
            }
            fieldset aria-describedby=[errors.contains_key("approval").then(|| error_id("approval"))] {
                legend { "Approval" }
                p.hint { "Each stage with an approver is one approval stage, in order. Leave all empty for no approval." }
                (checkbox("justificationRequired", "Requestors must say why they need access", on(values, "justificationRequired")))
                (field_error(errors, "approval"))
                @for n in 1..=STAGES {
                    fieldset aria-describedby=[errors.contains_key(&format!("stage{n}")).then(|| error_id(&format!("stage{n}")))] {
                        legend { "Stage " (n) }
                        (picker(&format!("stage{n}Approver"), "Approver", Some("users"), &user_choices("No stage", Some("The requestor's manager")), &v(&format!("stage{n}Approver")), errors))
                        (text_input(&format!("stage{n}Days"), "Days before the request is denied if undecided", None, &v(&format!("stage{n}Days")), errors))
                        (checkbox(&format!("stage{n}Justification"), "The approver must give a reason", on(values, &format!("stage{n}Justification"))))
                        (picker(&format!("stage{n}Escalation"), "Escalate to", Some("users"), &user_choices("No escalation", Some("The requestor's manager")), &v(&format!("stage{n}Escalation")), errors))
                        (text_input(&format!("stage{n}EscalationDays"), "Days before escalating", None, &v(&format!("stage{n}EscalationDays")), errors))
                        (field_error(errors, &format!("stage{n}")))
                    }
                }
            }
            fieldset aria-describedby=[errors.contains_key("questions").then(|| error_id("questions"))] {
                legend { "Questions for requestors" }
                (field_error(errors, "questions"))
                @for n in 1..=QUESTIONS {
                    fieldset {
                        legend { "Question " (n) }
                        (text_input(&format!("q{n}Text"), "Question", Some("Leave empty for no question."), &v(&format!("q{n}Text")), errors))
                        (select(&format!("q{n}Kind"), "Answer", &kinds, &v(&format!("q{n}Kind")), errors))
                        div.field {
                            label for=(format!("q{n}Choices")) { "Choices (one per line, for multiple choice)" }
                            textarea id=(format!("q{n}Choices")) name=(format!("q{n}Choices"))
                                aria-invalid=[errors.contains_key(&format!("q{n}Choices")).then_some("true")]
                                aria-describedby=[errors.contains_key(&format!("q{n}Choices")).then(|| error_id(&format!("q{n}Choices")))] { (v(&format!("q{n}Choices"))) }
                            (field_error(errors, &format!("q{n}Choices")))
                        }
                        (text_input(&format!("q{n}Pattern"), "Pattern the text must match", Some("Optional regular expression, e.g. [0-9]{4}."), &v(&format!("q{n}Pattern")), errors))
                        (checkbox(&format!("q{n}Required"), "An answer is required", on(values, &format!("q{n}Required"))))
                        (checkbox(&format!("q{n}Multiple"), "Several choices may be picked", on(values, &format!("q{n}Multiple"))))
                    }
                }
            }
            fieldset {
                legend { "Expiration" }
                (select("expiration", "Access ends", &expirations, &v("expiration"), errors))
                (text_input("expirationDays", "Days after it is granted", None, &v("expirationDays"), errors))
                div.field {
                    label for="expirationDate" { "Date (UTC)" }
                    input #expirationDate type="date" name="expirationDate" value=(v("expirationDate"))
                        aria-invalid=[errors.contains_key("expirationDate").then_some("true")]
                        aria-describedby=[errors.contains_key("expirationDate").then(|| error_id("expirationDate"))];
                    (field_error(errors, "expirationDate"))
                }
            }
            fieldset aria-describedby=[errors.contains_key("review").then(|| error_id("review"))] {
                legend { "Access reviews" }
                (checkbox("reviewEnabled", "Review assignments regularly", on(values, "reviewEnabled")))
                (select("reviewRecurrence", "How often", &recurrences, &v("reviewRecurrence"), errors))
                (text_input("reviewDays", "Days each review lasts", None, &v("reviewDays"), errors))
                (picker("reviewers", "Reviewers", Some("users"), &{
                    let mut r = vec![("self".to_string(), "People review their own access".to_string())];
                    r.extend(user_choices("", Some("The person's manager")).into_iter().skip(1));
                    r
                }, &v("reviewers"), errors))
                div.field {
                    label for="reviewStart" { "First review (UTC date)" }
                    input #reviewStart type="date" name="reviewStart" value=(v("reviewStart"))
                        aria-invalid=[errors.contains_key("reviewStart").then_some("true")]
                        aria-describedby=[errors.contains_key("reviewStart").then(|| error_id("reviewStart"))];
                    (field_error(errors, "reviewStart"))
                }
                (select("reviewExpiration", "If reviewers do not answer", &review_ends, &v("reviewExpiration"), errors))
                (checkbox("reviewRecommendations", "Show recommendations to reviewers", on(values, "reviewRecommendations")))
                (checkbox("reviewJustification", "Reviewers must give a reason", on(values, "reviewJustification")))
                (field_error(errors, "review"))
            }
            div.row {
                button.primary type="submit" { @if form.editing.is_some() { "Save policy" } @else { "Create policy" } }
                a href={"/admin/packages/" (package.id)} { "Cancel" }
            }
        }
        @if let Some(p) = form.editing {
            form method="post" action={"/admin/packages/" (package.id) "/policies/" (p) "/delete"} {
                (csrf(signed))
                button.danger type="submit" { "Delete this policy" }
            }
        }
    };
    let title = match form.editing {
        Some(_) => format!("Edit policy {}", v("displayName")),
        None => format!("New policy for {}", package.display_name),
    };
    page(state, signed, &title, status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn a_two_stage_policy_form_reads_as_the_apis_policy() {
        let f = form(&[
            ("displayName", "Two stages"),
            ("allowedTargetScope", "allMemberUsers"),
            ("selfAdd", "on"),
            ("stage1Approver", "manager"),
            ("stage1Days", "7"),
            ("stage2Approver", "user:5b8b1e5e-2b7c-4c1b-9a57-0b4b9b8c1d11"),
            ("q1Text", "Region"),
            ("q1Kind", "choice"),
            ("q1Choices", "emea\namer\n"),
            ("expiration", "afterDuration"),
            ("expirationDays", "30"),
        ]);
        let body = policy_body("9c8f4a5e-8a2e-4c1b-9a57-0b4b9b8c1d11", &f);
        let input = grantry_graph::policy::parse_policy(&Body::root(&body).unwrap(), Dialect::V1).unwrap();
        assert_eq!(input.approval.stages.len(), 2);
        assert_eq!(input.questions.len(), 1);
        assert!(input.requestor_settings.enable_targets_to_self_add_access);
    }

    #[test]
    fn a_refusal_lands_next_to_the_field_its_target_names() {
        let e = Error::invalid_property("requestApprovalSettings.stages[1].durationBeforeAutomaticDenial", "bad");
        let fields = policy_fields();
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (errors, _) = place(&e, &pairs);
        assert_eq!(errors.get("stage2Days").map(String::as_str), Some("bad"));
    }
}
