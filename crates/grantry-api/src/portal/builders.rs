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

/// How many directory objects a picker offers.
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
    let err = errors.contains_key(name);
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) aria-invalid=[err.then_some("true")] aria-describedby=[err.then(|| error_id(name))] {
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

async fn groups_and_apps(
    state: &AppState,
    signed: &Signed,
) -> (Vec<Group>, Vec<grantry_core::applications::Application>) {
    let groups = grantry_core::groups::list_groups(
        &state.app,
        &signed.caller,
        ListOptions { size: PICKER, ..Default::default() },
    )
    .await
    .map(|l| l.items)
    .unwrap_or_default();
    let apps = grantry_core::applications::list_for(&state.app, &signed.caller).await.unwrap_or_default();
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
    let (groups, apps) = groups_and_apps(state, signed).await;
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
        (general_error(res_general))
        form.stack method="post" action={"/admin/catalogs/" (catalog.id) "/resources"} novalidate aria-labelledby="add-resource" {
            (csrf(signed))
            (select("resource", "Group or application", &choices, res_values.get("resource").unwrap_or(""), res_errors))
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
        @if q.contains_key("policy") { p.notice role="status" { "The policy was created." } }
        @if q.contains_key("changed") { p.notice role="status" { "The access package was changed." } }
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
                section.card {
                    h3 { (p.display_name) }
                    p.muted { "Who: " (scope_words(p)) }
                    (describe_policy(p))
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
    match grantry_core::packages::add_role_scope(&state.app, &signed.caller, &id, input).await {
        Ok(_) => see_other(&format!("/admin/packages/{}?changed=1#roles", grantry_domain::ids::normalize(&id))),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            let general = e.message.clone();
            let errors = HashMap::from([("role".to_string(), e.message.clone())]);
            package_page(&state, &signed, &id, &HashMap::new(), Some(("role", &form, &errors, &general))).await
        }
        Err(e) => refused(&state, &signed, &e),
    }
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
    match grantry_core::packages::delete_role_scope(&state.app, &signed.caller, &id, &role_scope).await {
        Ok(()) => see_other(&format!("/admin/packages/{}?changed=1#roles", grantry_domain::ids::normalize(&id))),
        Err(e) => refused(&state, &signed, &e),
    }
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
    match result {
        Ok(()) => see_other(&format!("/admin/packages/{}?changed=1#incompatible", grantry_domain::ids::normalize(&id))),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict | ErrorKind::NotFound) => {
            let general = e.message.clone();
            let errors = HashMap::from([("other".to_string(), e.message.clone())]);
            package_page(&state, &signed, &id, &HashMap::new(), Some(("incompatible", &form, &errors, &general))).await
        }
        Err(e) => refused(&state, &signed, &e),
    }
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
    match grantry_core::packages::remove_incompatible_package(&state.app, &signed.caller, &id, &other).await {
        Ok(()) => see_other(&format!("/admin/packages/{}?changed=1#incompatible", grantry_domain::ids::normalize(&id))),
        Err(e) => refused(&state, &signed, &e),
    }
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
pub async fn new_policy(State(state): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
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
    policy_page(&state, &signed, &id, &defaults, &HashMap::new(), None).await
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
        Ok(_) => see_other(&format!("/admin/packages/{}?policy=created#policies", package.id)),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            let fields = policy_fields();
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let (errors, general) = place(&e, &pairs);
            policy_page(&state, &signed, &id, &form, &errors, Some(&general)).await
        }
        Err(e) => refused(&state, &signed, &e),
    }
}

async fn people(state: &AppState, signed: &Signed) -> Vec<User> {
    grantry_core::directory::list_users(&state.app, &signed.caller, ListOptions { size: PICKER, ..Default::default() })
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

async fn policy_page(
    state: &AppState,
    signed: &Signed,
    id: &str,
    values: &Form,
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
    let users = people(state, signed).await;
    let (groups, _) = groups_and_apps(state, signed).await;
    let v = |k: &str| values.get(k).unwrap_or("").to_string();
    let user_choices = |none: &str, manager: Option<&str>| -> Vec<(String, String)> {
        let mut out = vec![(String::new(), none.to_string())];
        if let Some(m) = manager {
            out.push(("manager".into(), m.to_string()));
        }
        out.extend(
            users.iter().map(|u| (format!("user:{}", u.id), format!("{} ({})", u.display_name, u.user_principal_name))),
        );
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
        (general_error(general))
        form.stack method="post" action={"/admin/packages/" (package.id) "/policies"} novalidate {
            (csrf(signed))
            (text_input("displayName", "Name", None, &v("displayName"), errors))
            (text_input("description", "Description", Some("Optional; shown to requestors."), &v("description"), errors))
            fieldset {
                legend { "Who can request" }
                (select("allowedTargetScope", "Requestors", &scopes, &v("allowedTargetScope"), errors))
                (select("targetUser", "Specific person (for specific requestors)", &user_choices("No person", None), &v("targetUser"), errors))
                (select("targetGroup", "Members of a group (for specific requestors)", &group_choices, &v("targetGroup"), errors))
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
                        (select(&format!("stage{n}Approver"), "Approver", &user_choices("No stage", Some("The requestor's manager")), &v(&format!("stage{n}Approver")), errors))
                        (text_input(&format!("stage{n}Days"), "Days before the request is denied if undecided", None, &v(&format!("stage{n}Days")), errors))
                        (checkbox(&format!("stage{n}Justification"), "The approver must give a reason", on(values, &format!("stage{n}Justification"))))
                        (select(&format!("stage{n}Escalation"), "Escalate to", &user_choices("No escalation", Some("The requestor's manager")), &v(&format!("stage{n}Escalation")), errors))
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
                (select("reviewers", "Reviewers", &{
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
                button.primary type="submit" { "Create policy" }
                a href={"/admin/packages/" (package.id)} { "Cancel" }
            }
        }
    };
    page(state, signed, &format!("New policy for {}", package.display_name), status, body)
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
