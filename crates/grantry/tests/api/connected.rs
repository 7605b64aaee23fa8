//! Connected organizations and external users: the organizations' CRUD in both roots with
//! their identity sources and sponsors, users' sponsors, the requestor scopes for external
//! users told apart by domain or tenant, `proposed` organizations, sponsors as approvers,
//! and the external user lifecycle on the clock.

use crate::helpers::*;
use grantry_domain::enums::AllowedTargetScope;
use grantry_domain::model::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const COA: &str = "e65cf63f-9cc2-4b48-8871-cb667e9d90f0";

fn orgs(root: &str) -> String {
    em(root, "connectedOrganizations")
}

fn domain_org(name: &str, domain: &str) -> Value {
    json!({
        "displayName": name,
        "description": format!("Users of {domain}"),
        "identitySources": [{ "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": domain, "displayName": name }],
        "state": "configured"
    })
}

async fn create_org(app: &TestApp, body: Value) -> String {
    let (status, o) = app.post(&app.admin, &orgs("v1.0"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{o}");
    o["id"].as_str().unwrap().to_string()
}

/// A guest user invited from `email`'s domain, as Entra names them.
async fn create_guest(app: &TestApp, email: &str) -> String {
    let upn = format!("{}#EXT#@contoso.onmicrosoft.com", email.replace('@', "_"));
    let (status, u) = app
        .post(
            &app.admin,
            "/v1.0/users",
            json!({ "displayName": email, "userPrincipalName": upn, "mail": email, "userType": "Guest" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    u["id"].as_str().unwrap().to_string()
}

async fn add_ref(app: &TestApp, path: &str, set: &str, id: &str) -> (StatusCode, Value) {
    app.post(&app.admin, path, json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{set}/{id}") })).await
}

fn self_add(p: &mut Policy) {
    p.requestor_settings.enable_targets_to_self_add_access = true;
}

fn org_members(id: &str) -> SubjectSet {
    SubjectSet::ConnectedOrganizationMembers { connected_organization_id: Some(id.to_string()), description: None }
}

async fn user_add(app: &TestApp, user: &str, f: &Fixture, policy: &str) -> (StatusCode, Value) {
    let token = app.user_token(user, SUBJECT_SCOPES);
    app.post(
        &token,
        &em("v1.0", "assignmentRequests"),
        json!({ "requestType": "userAdd", "justification": "partner work",
                "assignment": { "accessPackageId": f.package_id, "assignmentPolicyId": policy } }),
    )
    .await
}

#[tokio::test]
async fn connected_organizations_are_created_read_changed_and_deleted_in_both_roots() {
    let app = TestApp::spawn().await;
    let (status, created) = app.post(&app.admin, &orgs("v1.0"), domain_org("Fabrikam", "fabrikam.com")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["state"], "configured");
    assert_eq!(created["identitySources"][0]["@odata.type"], "#microsoft.graph.domainIdentitySource");
    assert_eq!(created["identitySources"][0]["domainName"], "fabrikam.com");
    assert!(created.get("createdBy").is_none(), "v1.0 has no createdBy: {created}");

    let (status, beta) = app.get(&app.admin, &format!("{}/{id}", orgs("beta"))).await;
    assert_eq!(status, StatusCode::OK, "{beta}");
    assert_eq!(beta["displayName"], "Fabrikam");
    assert_eq!(beta["state"], "configured");
    assert!(beta["createdBy"].is_string(), "{beta}");

    // The other identity sources.
    let tenant = grantry_domain::ids::new_id();
    for source in [
        json!({ "@odata.type": "#microsoft.graph.azureActiveDirectoryTenant", "tenantId": tenant, "displayName": "Woodgrove" }),
        json!({ "@odata.type": "microsoft.graph.externalDomainFederation", "domainName": "litware.com", "issuerUri": "https://sts.litware.com/adfs/services/trust", "displayName": "Litware" }),
        json!({ "@odata.type": "#microsoft.graph.socialIdentitySource", "socialIdentitySourceType": "facebook", "displayName": "Facebook" }),
    ] {
        let (status, o) = app
            .post(
                &app.admin,
                &orgs("beta"),
                json!({ "displayName": "Other", "identitySources": [source.clone()], "state": "proposed" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{o}");
        assert_eq!(o["state"], "proposed");
        assert_eq!(
            o["identitySources"][0]["@odata.type"],
            format!(
                "#microsoft.graph.{}",
                source["@odata.type"].as_str().unwrap().trim_start_matches('#').trim_start_matches("microsoft.graph.")
            )
        );
    }

    let (status, list) = app.get(&app.admin, &format!("{}?$filter=displayName eq 'Fabrikam'", orgs("v1.0"))).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids_of(&list), vec![id.clone()]);
    let (_, list) = app.get(&app.admin, &format!("{}?$filter=state eq 'proposed'&$count=true", orgs("v1.0"))).await;
    assert_eq!(list["@odata.count"], 3, "{list}");

    let (status, body) = app
        .patch(&app.admin, &format!("{}/{id}", orgs("v1.0")), json!({ "description": "Partner", "state": "proposed" }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, o) = app.get(&app.admin, &format!("{}/{id}", orgs("v1.0"))).await;
    assert_eq!(o["description"], "Partner");
    assert_eq!(o["state"], "proposed");
    assert_eq!(o["displayName"], "Fabrikam");

    let (status, body) = app.delete(&app.admin, &format!("{}/{id}", orgs("v1.0"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.get(&app.admin, &format!("{}/{id}", orgs("v1.0"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The domain is free again.
    create_org(&app, domain_org("Fabrikam again", "fabrikam.com")).await;
}

fn ids_of(body: &Value) -> Vec<String> {
    TestApp::ids_of(body)
}

#[tokio::test]
async fn bad_connected_organizations_get_the_graph_envelope() {
    let app = TestApp::spawn().await;
    let id = create_org(&app, domain_org("Fabrikam", "fabrikam.com")).await;
    let cases = [
        (json!({ "displayName": "No source" }), "identitySources"),
        (
            json!({ "identitySources": [{ "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "a.com" }] }),
            "displayName",
        ),
        (
            json!({ "displayName": "Two", "identitySources": [
                { "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "a.com" },
                { "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "b.com" }] }),
            "identitySources",
        ),
        (
            json!({ "displayName": "Bad", "identitySources": [{ "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "not a domain" }] }),
            "identitySources[0].domainName",
        ),
        (
            json!({ "displayName": "Bad", "identitySources": [{ "@odata.type": "#microsoft.graph.azureActiveDirectoryTenant", "tenantId": "contoso" }] }),
            "identitySources[0].tenantId",
        ),
        (
            json!({ "displayName": "Bad", "identitySources": [{ "@odata.type": "#microsoft.graph.samlIdentitySource", "domainName": "a.com" }] }),
            "identitySources[0].@odata.type",
        ),
        (
            json!({ "displayName": "Bad", "identitySources": [{ "domainName": "a.com" }] }),
            "identitySources[0].@odata.type",
        ),
        (
            json!({ "displayName": "Bad", "state": "sleeping", "identitySources": [{ "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "a.com" }] }),
            "state",
        ),
        (
            json!({ "displayName": "Bad", "colour": "blue", "identitySources": [{ "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "a.com" }] }),
            "colour",
        ),
    ];
    for (body, target) in cases {
        let (status, e) = app.post(&app.admin, &orgs("v1.0"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {e}");
        assert!(e["error"]["code"].is_string(), "{e}");
        assert_eq!(e["error"]["target"], target, "{body} → {e}");
    }
    // A domain belongs to one organization.
    let (status, e) = app.post(&app.admin, &orgs("v1.0"), domain_org("Copy", "FABRIKAM.com")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_error(&e, "ConnectedOrganizationAlreadyExists");
    // Identity sources are fixed; names cannot be emptied.
    let item = format!("{}/{id}", orgs("v1.0"));
    let (status, e) = app
        .patch(&app.admin, &item, json!({ "identitySources": [{ "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "b.com" }] }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["target"], "identitySources");
    let (status, e) = app.patch(&app.admin, &item, json!({ "displayName": "" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, e) = app.get(&app.admin, &format!("{}/{}", orgs("v1.0"), grantry_domain::ids::new_id())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    assert!(e["error"]["code"].is_string());
    let (status, e) = app.get(&app.admin, &format!("{item}?$expand=owners")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");

    // An organization a policy names cannot be deleted.
    let f = app.seed_package_with_group().await;
    let (status, p) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentPolicies"),
            json!({ "displayName": "Partners", "description": "", "allowedTargetScope": "specificConnectedOrganizationUsers",
                    "specificAllowedTargets": [{ "@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": id }],
                    "accessPackage": { "id": f.package_id }, "requestorSettings": { "enableTargetsToSelfAddAccess": true } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let (status, e) = app.delete(&app.admin, &item).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_error(&e, "ConnectedOrganizationInUse");
    // And a policy cannot name an organization that does not exist.
    let (status, e) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentPolicies"),
            json!({ "displayName": "Nobody", "description": "", "allowedTargetScope": "specificConnectedOrganizationUsers",
                    "specificAllowedTargets": [{ "@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": grantry_domain::ids::new_id() }],
                    "accessPackage": { "id": f.package_id }, "requestorSettings": { "enableTargetsToSelfAddAccess": true } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["target"], "specificAllowedTargets[0].connectedOrganizationId");
}

#[tokio::test]
async fn sponsors_are_added_listed_and_removed_by_ref() {
    let app = TestApp::spawn().await;
    let id = create_org(&app, domain_org("Fabrikam", "fabrikam.com")).await;
    let alice = app.create_user("alice").await;
    let group = app.create_group("Partner managers").await;
    let item = format!("{}/{id}", orgs("v1.0"));

    let (status, body) = add_ref(&app, &format!("{item}/internalSponsors/$ref"), "users", &alice).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = add_ref(&app, &format!("{item}/internalSponsors/$ref"), "directoryObjects", &group).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = add_ref(&app, &format!("{item}/externalSponsors/$ref"), "users", &alice).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, list) = app.get(&app.admin, &format!("{item}/internalSponsors")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let types: Vec<&str> =
        list["value"].as_array().unwrap().iter().map(|v| v["@odata.type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["#microsoft.graph.user", "#microsoft.graph.group"]);
    assert_eq!(ids_of(&list), vec![alice.clone(), group.clone()]);
    let (_, list) = app.get(&app.admin, &format!("{}/{id}/externalSponsors", orgs("beta"))).await;
    assert_eq!(ids_of(&list), vec![alice.clone()]);
    let (_, o) = app.get(&app.admin, &format!("{item}?$expand=internalSponsors,externalSponsors")).await;
    assert_eq!(o["internalSponsors"].as_array().unwrap().len(), 2, "{o}");
    assert_eq!(o["externalSponsors"][0]["id"], alice.as_str(), "{o}");

    // Twice is refused; so is someone who does not exist.
    let (status, e) = add_ref(&app, &format!("{item}/internalSponsors/$ref"), "users", &alice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, e) =
        add_ref(&app, &format!("{item}/internalSponsors/$ref"), "users", &grantry_domain::ids::new_id()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    let (status, e) = add_ref(&app, &format!("{item}/internalSponsors/$ref"), "users", &group).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a group is not under /users: {e}");
    let (status, e) = app.post(&app.admin, &format!("{item}/internalSponsors/$ref"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["target"], "@odata.id");

    let (status, body) = app.delete(&app.admin, &format!("{item}/internalSponsors/{alice}/$ref")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.delete(&app.admin, &format!("{item}/internalSponsors/{alice}/$ref")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, list) = app.get(&app.admin, &format!("{item}/internalSponsors")).await;
    assert_eq!(ids_of(&list), vec![group.clone()]);
    // The references, and removal by `$id` (the form the SDKs' collection builders send).
    let (status, refs) = app.get(&app.admin, &format!("{item}/internalSponsors/$ref")).await;
    assert_eq!(status, StatusCode::OK, "{refs}");
    let url = refs["value"][0]["@odata.id"].as_str().unwrap_or_else(|| panic!("{refs}")).to_string();
    assert!(url.ends_with(&format!("/directoryObjects/{group}")), "{url}");
    let (status, body) = app.delete(&app.admin, &format!("{item}/internalSponsors/$ref?@id={url}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, list) = app.get(&app.admin, &format!("{item}/internalSponsors")).await;
    assert!(ids_of(&list).is_empty(), "{list}");
    let (status, e) = app.delete(&app.admin, &format!("{item}/internalSponsors/$ref")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["target"], "$id");

    // Users have sponsors too.
    let guest = create_guest(&app, "gus@fabrikam.com").await;
    let (status, body) = add_ref(&app, &format!("/v1.0/users/{guest}/sponsors/$ref"), "users", &alice).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, list) = app.get(&app.admin, &format!("/beta/users/{guest}/sponsors")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids_of(&list), vec![alice.clone()]);
    let (status, e) = add_ref(&app, &format!("/v1.0/users/{guest}/sponsors/$ref"), "users", &guest).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    // A deleted sponsor leaves every list.
    let (status, _) = app.delete(&app.admin, &format!("/v1.0/users/{alice}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = app.get(&app.admin, &format!("/v1.0/users/{guest}/sponsors")).await;
    assert!(ids_of(&list).is_empty(), "{list}");
    let (_, list) = app.get(&app.admin, &format!("{item}/externalSponsors")).await;
    assert!(ids_of(&list).is_empty(), "{list}");
}

#[tokio::test]
async fn connected_organizations_need_the_roles_graph_documents() {
    let app = TestApp::spawn().await;
    let id = create_org(&app, domain_org("Fabrikam", "fabrikam.com")).await;
    let item = format!("{}/{id}", orgs("v1.0"));
    let body = domain_org("Tailspin", "tailspin.com");

    let reader = app.app_token(&["EntitlementManagement.Read.All"]);
    let (status, _) = app.get(&reader, &item).await;
    assert_eq!(status, StatusCode::OK);
    let (status, e) = app.post(&reader, &orgs("v1.0"), body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_error(&e, "accessDenied");
    let none = app.app_token(&["User.Read.All"]);
    let (status, _) = app.get(&none, &item).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A delegated user without a role may do nothing; a catalog owner may read; a
    // Connected Organization Administrator may change organizations and sponsors.
    let plain = app.create_user("plain").await;
    let token = app.user_token_default(&plain);
    let (status, _) = app.get(&token, &orgs("v1.0")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let owner = app.create_user("owner").await;
    let catalog = app.create_catalog("Partners").await;
    app.make_catalog_owner(&owner, &catalog).await;
    let token = app.user_token_default(&owner);
    let (status, _) = app.get(&token, &orgs("v1.0")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.patch(&token, &item, json!({ "state": "proposed" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let coa = app.create_user("coa").await;
    app.grant_tenant_em_role(&coa, COA).await;
    let token = app.user_token_default(&coa);
    let (status, o) = app.post(&token, &orgs("v1.0"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{o}");
    let (status, _) = app.patch(&token, &item, json!({ "state": "proposed" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let sponsor = app.create_user("sponsor").await;
    let (status, e) = app
        .post(
            &token,
            &format!("{item}/internalSponsors/$ref"),
            json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{sponsor}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{e}");
    // Read scope alone is not enough to write, whatever the role.
    let token = app.user_token(&coa, &["EntitlementManagement.Read.All"]);
    let (status, _) = app.delete(&token, &item).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let iga = app.create_user("iga").await;
    app.make_iga(&iga).await;
    let token = app.user_token_default(&iga);
    let (status, body) = app.delete(&token, &item).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn requestor_scopes_for_external_users_follow_their_organization() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let fabrikam = create_org(&app, domain_org("Fabrikam", "fabrikam.com")).await;
    create_org(&app, domain_org("Litware", "litware.com")).await;
    let mut proposed = domain_org("Tailspin", "tailspin.com");
    proposed["state"] = json!("proposed");
    create_org(&app, proposed).await;
    let tenant = grantry_domain::ids::new_id();
    let woodgrove = create_org(
        &app,
        json!({ "displayName": "Woodgrove", "identitySources": [{ "@odata.type": "#microsoft.graph.azureActiveDirectoryTenant", "tenantId": tenant }] }),
    )
    .await;

    let specific = {
        let (a, b) = (fabrikam.clone(), woodgrove.clone());
        app.seed_policy(&f, AllowedTargetScope::SpecificConnectedOrganizationUsers, move |p| {
            self_add(p);
            p.specific_allowed_targets = vec![org_members(&a), org_members(&b)];
        })
        .await
    };
    let configured = app.seed_policy(&f, AllowedTargetScope::AllConfiguredConnectedOrganizationUsers, self_add).await;
    let external = app.seed_policy(&f, AllowedTargetScope::AllExternalUsers, self_add).await;

    let ann = create_guest(&app, "ann@fabrikam.com").await;
    let lee = create_guest(&app, "lee@litware.com").await;
    let tom = create_guest(&app, "tom@tailspin.com").await;
    let una = create_guest(&app, "una@unknown-partner.org").await;
    let member = app.create_user("mia").await;
    // A guest known by the tenant their identity comes from, whatever their mail says.
    let (status, wes) = app
        .post(
            &app.admin,
            "/v1.0/users",
            json!({ "displayName": "Wes", "userPrincipalName": "wes_gmail.com#EXT#@contoso.onmicrosoft.com", "mail": "wes@gmail.com", "userType": "Guest",
                    "identities": [{ "signInType": "federated", "issuer": format!("https://login.microsoftonline.com/{tenant}/v2.0"), "issuerAssignedId": "wes" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wes}");
    assert_eq!(wes["identities"][0]["signInType"], "federated");
    let wes = wes["id"].as_str().unwrap().to_string();

    let in_scope = |s: StatusCode, b: &Value| assert_eq!(s, StatusCode::CREATED, "expected in scope: {b}");
    let out_of_scope = |s: StatusCode, b: &Value| {
        assert_eq!(s, StatusCode::BAD_REQUEST, "expected out of scope: {b}");
        assert_error(b, "RequestorNotInPolicyScope");
    };

    // Specific organizations: Fabrikam and Woodgrove, not Litware.
    let (s, b) = user_add(&app, &ann, &f, &specific).await;
    in_scope(s, &b);
    let (s, b) = user_add(&app, &wes, &f, &specific).await;
    in_scope(s, &b);
    let (s, b) = user_add(&app, &lee, &f, &specific).await;
    out_of_scope(s, &b);
    let (s, b) = user_add(&app, &member, &f, &specific).await;
    out_of_scope(s, &b);
    // All configured organizations: Litware, not the proposed Tailspin nor an unknown domain.
    let (s, b) = user_add(&app, &lee, &f, &configured).await;
    in_scope(s, &b);
    let (s, b) = user_add(&app, &tom, &f, &configured).await;
    out_of_scope(s, &b);
    let (s, b) = user_add(&app, &una, &f, &configured).await;
    out_of_scope(s, &b);
    let (s, b) = user_add(&app, &member, &f, &configured).await;
    out_of_scope(s, &b);
    // All external users: anyone from outside, and an unknown domain brings a proposed
    // organization into being.
    let (s, b) = user_add(&app, &tom, &f, &external).await;
    in_scope(s, &b);
    let (_, before) =
        app.get(&app.admin, &format!("{}?$filter=displayName eq 'unknown-partner.org'", orgs("v1.0"))).await;
    assert!(ids_of(&before).is_empty());
    let (s, b) = user_add(&app, &una, &f, &external).await;
    in_scope(s, &b);
    let (_, after) =
        app.get(&app.admin, &format!("{}?$filter=displayName eq 'unknown-partner.org'", orgs("v1.0"))).await;
    let proposed = &after["value"][0];
    assert_eq!(proposed["state"], "proposed", "{after}");
    assert_eq!(proposed["identitySources"][0]["domainName"], "unknown-partner.org");
    let (s, b) = user_add(&app, &member, &f, &external).await;
    out_of_scope(s, &b);
    // The request's subject names its organization (beta shows the id).
    let (_, list) =
        app.get(&app.admin, &format!("{}?$expand=requestor", em("beta", "accessPackageAssignmentRequests"))).await;
    let una_request =
        list["value"].as_array().unwrap().iter().find(|r| r["requestor"]["objectId"] == una.as_str()).cloned();
    let una_request = una_request.unwrap_or_else(|| panic!("no request by una: {list}"));
    assert_eq!(una_request["requestor"]["connectedOrganizationId"], proposed["id"], "{una_request}");
    assert_eq!(una_request["requestor"]["type"], "User");
    // Expanded, the requestor's organization is the whole entity (as Entra's beta examples
    // ask for it); a member's is null.
    let (status, list) = app
        .get(
            &app.admin,
            &format!(
                "{}?$expand=requestor($expand=connectedOrganization)",
                em("beta", "accessPackageAssignmentRequests")
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let una_request =
        list["value"].as_array().unwrap().iter().find(|r| r["requestor"]["objectId"] == una.as_str()).unwrap();
    assert_eq!(
        una_request["requestor"]["connectedOrganization"]["displayName"], "unknown-partner.org",
        "{una_request}"
    );
    assert_eq!(una_request["requestor"]["connectedOrganization"]["state"], "proposed");
    let (_, list) = app
        .get(&app.admin, &format!("{}?$expand=target($expand=connectedOrganization)", em("v1.0", "assignments")))
        .await;
    let ann_assignment =
        list["value"].as_array().unwrap().iter().find(|a| a["target"]["objectId"] == ann.as_str()).unwrap();
    assert_eq!(ann_assignment["target"]["connectedOrganization"]["id"], fabrikam.as_str(), "{ann_assignment}");
}

/// A policy whose one approval stage is `approvers` (with a fallback that never applies).
async fn sponsor_policy(
    app: &TestApp,
    f: &Fixture,
    scope: AllowedTargetScope,
    orgs: Vec<String>,
    approvers: SubjectSet,
) -> String {
    app.seed_policy(f, scope, move |p| {
        self_add(p);
        p.specific_allowed_targets = orgs.iter().map(|o| org_members(o)).collect();
        p.approval.is_approval_required_for_add = true;
        p.approval.stages = vec![ApprovalStage {
            duration_before_automatic_denial: Some(chrono::Duration::days(14)),
            duration_before_escalation: None,
            is_approver_justification_required: false,
            is_escalation_enabled: false,
            primary_approvers: vec![approvers],
            fallback_primary_approvers: vec![],
            escalation_approvers: vec![],
            fallback_escalation_approvers: vec![],
            approver_information_visibility: grantry_domain::enums::ApproverInformationVisibility::Default,
            is_dynamic: false,
        }];
    })
    .await
}

/// Requests, checks the request waits for approval, and returns its id.
async fn pending_request(app: &TestApp, user: &str, f: &Fixture, policy: &str) -> String {
    let (status, r) = user_add(app, user, f, policy).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    let id = r["id"].as_str().unwrap().to_string();
    let (_, r) = app.get(&app.admin, &format!("{}/{id}", em("v1.0", "assignmentRequests"))).await;
    assert_eq!(r["state"], "pendingApproval", "{r}");
    id
}

/// Whether `user` is an approver of request `id` (through `filterByCurrentUser`).
async fn approves(app: &TestApp, user: &str, id: &str) -> bool {
    let token = app.user_token(user, SUBJECT_SCOPES);
    let (status, list) =
        app.get(&token, &format!("{}/filterByCurrentUser(on='approver')", em("v1.0", "assignmentRequests"))).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    ids_of(&list).contains(&id.to_string())
}

#[tokio::test]
async fn sponsors_approve_for_their_organization_and_their_users() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let org = create_org(&app, domain_org("Fabrikam", "fabrikam.com")).await;
    let other = create_org(&app, domain_org("Litware", "litware.com")).await;
    let inside = app.create_user("inside").await;
    let group = app.create_group("Fabrikam contacts").await;
    let contact = create_guest(&app, "carl@fabrikam.com").await;
    app.add_member(&group, &contact).await;
    let item = format!("{}/{org}", orgs("v1.0"));
    add_ref(&app, &format!("{item}/internalSponsors/$ref"), "users", &inside).await;
    add_ref(&app, &format!("{item}/externalSponsors/$ref"), "groups", &group).await;
    let stranger = app.create_user("stranger").await;
    add_ref(&app, &format!("{}/{other}/internalSponsors/$ref", orgs("v1.0")), "users", &stranger).await;

    let scope = AllowedTargetScope::SpecificConnectedOrganizationUsers;
    let internal =
        sponsor_policy(&app, &f, scope, vec![org.clone(), other.clone()], SubjectSet::InternalSponsors).await;
    let ann = create_guest(&app, "ann@fabrikam.com").await;
    let id = pending_request(&app, &ann, &f, &internal).await;
    assert!(approves(&app, &inside, &id).await);
    assert!(!approves(&app, &stranger, &id).await, "another organization's sponsor");
    assert!(!approves(&app, &contact, &id).await, "an external sponsor is not an internal one");
    // The internal sponsor's approval delivers.
    let (_, approval) = app.get(&app.admin, &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{id}")).await;
    let stage = approval["stages"][0]["id"].as_str().unwrap_or_else(|| panic!("{approval}")).to_string();
    let token = app.user_token(&inside, SUBJECT_SCOPES);
    let (status, body) = app
        .patch(
            &token,
            &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{id}/stages/{stage}"),
            json!({ "reviewResult": "Approve", "justification": "known partner" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    assert!(app.is_member(&f.group_id, &ann).await);

    // External sponsors: the members of the group named.
    let f2 = app.seed_package_with_group().await;
    let external = sponsor_policy(&app, &f2, scope, vec![org.clone()], SubjectSet::ExternalSponsors).await;
    let id = pending_request(&app, &ann, &f2, &external).await;
    assert!(approves(&app, &contact, &id).await);
    assert!(!approves(&app, &inside, &id).await);

    // The target's own sponsors.
    let f3 = app.seed_package_with_group().await;
    let mentor = app.create_user("mentor").await;
    add_ref(&app, &format!("/v1.0/users/{ann}/sponsors/$ref"), "users", &mentor).await;
    let own = sponsor_policy(&app, &f3, scope, vec![org.clone()], SubjectSet::TargetUserSponsors).await;
    let id = pending_request(&app, &ann, &f3, &own).await;
    assert!(approves(&app, &mentor, &id).await);
    assert!(!approves(&app, &inside, &id).await);
}

/// Assigns `user` directly through a policy for all external users (admin-only policies
/// do not take guests); returns the assignment id once delivered.
async fn assign_external(app: &TestApp, f: &Fixture, user: &str) -> String {
    let policy = app.seed_policy(f, AllowedTargetScope::AllExternalUsers, |_| {}).await;
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentRequests"),
            json!({ "requestType": "adminAdd", "assignment": { "targetId": user, "assignmentPolicyId": policy, "accessPackageId": f.package_id } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    let id = body["id"].as_str().unwrap();
    let (_, r) = app.get(&app.admin, &format!("{}/{id}?$expand=assignment", em("v1.0", "assignmentRequests"))).await;
    assert_eq!(r["state"], "delivered", "{r}");
    r["assignment"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_guest_whose_last_assignment_ends_is_blocked_then_deleted_on_the_clock() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let f2 = app.seed_package_with_group().await;
    let (status, body) = app
        .patch(
            &app.admin,
            &em("v1.0", "settings"),
            json!({ "externalUserLifecycleAction": "blockSignInAndDelete", "durationUntilExternalUserDeletedAfterBlocked": "P10D" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let guest = create_guest(&app, "gina@fabrikam.com").await;
    let first = assign_external(&app, &f, &guest).await;
    let second = assign_external(&app, &f2, &guest).await;
    let member = app.create_user("morgan").await;
    let (_, member_assignment) = app.admin_assign(&f, &member).await;

    let remove = |a: String| {
        let app = &app;
        async move {
            let (status, r) = app
                .post(
                    &app.admin,
                    &em("v1.0", "assignmentRequests"),
                    json!({ "requestType": "adminRemove", "assignment": { "id": a } }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{r}");
            app.drain().await;
        }
    };
    // One assignment left: still enabled.
    remove(first).await;
    let (_, u) = app.get(&app.admin, &format!("/v1.0/users/{guest}")).await;
    assert_eq!(u["accountEnabled"], true, "{u}");
    // The last one ends: blocked now, deleted after ten days.
    remove(second).await;
    let (_, u) = app.get(&app.admin, &format!("/v1.0/users/{guest}")).await;
    assert_eq!(u["accountEnabled"], false, "{u}");
    // Members are never touched.
    remove(member_assignment).await;
    let (_, u) = app.get(&app.admin, &format!("/v1.0/users/{member}")).await;
    assert_eq!(u["accountEnabled"], true, "{u}");

    let (status, _) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P9D" })).await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    let (status, _) = app.get(&app.admin, &format!("/v1.0/users/{guest}")).await;
    assert_eq!(status, StatusCode::OK, "not yet");
    let (status, _) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P2D" })).await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    let (status, _) = app.get(&app.admin, &format!("/v1.0/users/{guest}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the guest is deleted");
    let (_, audits) = app.get(&app.admin, &format!("/_grantry/audit?entityId={guest}")).await;
    let text = audits.to_string();
    assert!(text.contains("guestBlocked") && text.contains("guestDeleted"), "{text}");

    // A guest given access again while blocked gets their sign-in back and stays.
    let hal = create_guest(&app, "hal@fabrikam.com").await;
    let a = assign_external(&app, &f, &hal).await;
    remove(a).await;
    let (_, u) = app.get(&app.admin, &format!("/v1.0/users/{hal}")).await;
    assert_eq!(u["accountEnabled"], false);
    assign_external(&app, &f2, &hal).await;
    let (_, u) = app.get(&app.admin, &format!("/v1.0/users/{hal}")).await;
    assert_eq!(u["accountEnabled"], true, "{u}");
    let (status, _) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P30D" })).await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    let (status, _) = app.get(&app.admin, &format!("/v1.0/users/{hal}")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn block_sign_in_only_keeps_the_guest_and_none_does_nothing() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let guest = create_guest(&app, "ivy@fabrikam.com").await;
    // `none` (the default): nothing happens.
    let a = assign_external(&app, &f, &guest).await;
    let (status, r) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentRequests"),
            json!({ "requestType": "adminRemove", "assignment": { "id": a } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    let (_, u) = app.get(&app.admin, &format!("/v1.0/users/{guest}")).await;
    assert_eq!(u["accountEnabled"], true, "{u}");

    let (status, _) =
        app.patch(&app.admin, &em("beta", "settings"), json!({ "externalUserLifecycleAction": "BlockSignIn" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let a = assign_external(&app, &f, &guest).await;
    // An expiry ends the assignment as a removal does.
    let (status, r) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentRequests"),
            json!({ "requestType": "adminRemove", "assignment": { "id": a } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    let (_, u) = app.get(&app.admin, &format!("/v1.0/users/{guest}")).await;
    assert_eq!(u["accountEnabled"], false, "{u}");
    let (status, _) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P400D" })).await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    let (status, _) = app.get(&app.admin, &format!("/v1.0/users/{guest}")).await;
    assert_eq!(status, StatusCode::OK, "blockSignIn never deletes");
}

#[tokio::test]
async fn a_subdomain_belongs_to_the_most_specific_organization_of_its_domains() {
    let app = TestApp::spawn().await;
    // One package per policy, so no request waits behind another for the same package.
    let (fa, fb, fc) =
        (app.seed_package_with_group().await, app.seed_package_with_group().await, app.seed_package_with_group().await);
    let contoso = create_org(&app, domain_org("Contoso partners", "contoso-partners.com")).await;
    let emea = create_org(&app, domain_org("Contoso partners EMEA", "emea.contoso-partners.com")).await;
    let only_emea = {
        let emea = emea.clone();
        app.seed_policy(&fa, AllowedTargetScope::SpecificConnectedOrganizationUsers, move |p| {
            self_add(p);
            p.specific_allowed_targets = vec![org_members(&emea)];
        })
        .await
    };
    let only_contoso = {
        let contoso = contoso.clone();
        app.seed_policy(&fb, AllowedTargetScope::SpecificConnectedOrganizationUsers, move |p| {
            self_add(p);
            p.specific_allowed_targets = vec![org_members(&contoso)];
        })
        .await
    };
    let external = app.seed_policy(&fc, AllowedTargetScope::AllExternalUsers, self_add).await;

    // eng.contoso-partners.com has no organization of its own: the parent domain's holds it.
    let eve = create_guest(&app, "eve@eng.contoso-partners.com").await;
    // paris.emea.contoso-partners.com: the EMEA organization is nearer than the parent's.
    let pia = create_guest(&app, "pia@paris.emea.contoso-partners.com").await;
    // A domain that merely ends with the same letters is not a subdomain.
    let oz = create_guest(&app, "oz@notcontoso-partners.com").await;

    let (s, b) = user_add(&app, &eve, &fb, &only_contoso).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = user_add(&app, &eve, &fa, &only_emea).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = user_add(&app, &pia, &fa, &only_emea).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = user_add(&app, &pia, &fb, &only_contoso).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "the most specific organization wins: {b}");
    let (s, b) = user_add(&app, &oz, &fb, &only_contoso).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

    // Under all external users, a subdomain of a known organization proposes no new one; an
    // unrelated domain does.
    let (s, b) = user_add(&app, &eve, &fc, &external).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = user_add(&app, &oz, &fc, &external).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, all) = app.get(&app.admin, &orgs("v1.0")).await;
    let names: Vec<&str> = all["value"].as_array().unwrap().iter().filter_map(|o| o["displayName"].as_str()).collect();
    assert!(!names.contains(&"eng.contoso-partners.com"), "{names:?}");
    assert!(names.contains(&"notcontoso-partners.com"), "{names:?}");
    let (_, list) =
        app.get(&app.admin, &format!("{}?$expand=requestor", em("beta", "accessPackageAssignmentRequests"))).await;
    let org_of = |user: &str| {
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["requestor"]["objectId"] == user)
            .map(|r| r["requestor"]["connectedOrganizationId"].clone())
            .unwrap_or_else(|| panic!("no request by {user}: {list}"))
    };
    assert_eq!(org_of(&eve), json!(contoso));
    assert_eq!(org_of(&pia), json!(emea));
}

/// Sets the tenant's external user lifecycle settings (v1.0 names).
async fn lifecycle(app: &TestApp, action: &str, days: Option<u32>) {
    let mut body = json!({ "externalUserLifecycleAction": action });
    if let Some(d) = days {
        body["durationUntilExternalUserDeletedAfterBlocked"] = json!(format!("P{d}D"));
    }
    let (status, b) = app.patch(&app.admin, &em("v1.0", "settings"), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{b}");
    app.drain().await;
}

async fn advance_days(app: &TestApp, days: u32) {
    let (status, b) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": format!("P{days}D") })).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    app.drain().await;
}

/// Whether the user exists, and whether they may sign in.
async fn account(app: &TestApp, id: &str) -> Option<bool> {
    let (status, u) = app.get(&app.admin, &format!("/v1.0/users/{id}")).await;
    (status == StatusCode::OK).then(|| u["accountEnabled"].as_bool().unwrap())
}

#[tokio::test]
async fn changed_lifecycle_settings_move_the_deletion_of_blocked_guests_and_none_releases_them() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let end = |a: String| {
        let app = &app;
        async move {
            let (status, r) = app
                .post(
                    &app.admin,
                    &em("v1.0", "assignmentRequests"),
                    json!({ "requestType": "adminRemove", "assignment": { "id": a } }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{r}");
            app.drain().await;
        }
    };
    lifecycle(&app, "blockSignInAndDelete", Some(3)).await;
    let gus = create_guest(&app, "gus@fabrikam.com").await;
    let a = assign_external(&app, &f, &gus).await;
    end(a).await;
    assert_eq!(account(&app, &gus).await, Some(false), "blocked on day 0, due on day 3");

    // A longer duration: gus is now due on day 20, and is still there on day 4.
    lifecycle(&app, "blockSignInAndDelete", Some(20)).await;
    advance_days(&app, 4).await;
    assert_eq!(account(&app, &gus).await, Some(false), "the deletion moved to day 20");

    // ray is blocked on day 4; a shorter duration (6 days) makes gus due on day 6 and ray
    // on day 10.
    let ray = create_guest(&app, "ray@fabrikam.com").await;
    let a = assign_external(&app, &f, &ray).await;
    end(a).await;
    lifecycle(&app, "blockSignInAndDelete", Some(6)).await;
    advance_days(&app, 3).await;
    assert_eq!(account(&app, &gus).await, None, "deleted on day 6");
    assert_eq!(account(&app, &ray).await, Some(false), "due on day 10");

    // Turning the lifecycle off releases the guests still blocked: sign-in back, never deleted.
    lifecycle(&app, "none", None).await;
    assert_eq!(account(&app, &ray).await, Some(true));
    advance_days(&app, 30).await;
    assert_eq!(account(&app, &ray).await, Some(true));
    let (_, audits) = app.get(&app.admin, &format!("/_grantry/audit?entityId={ray}")).await;
    let text = audits.to_string();
    assert!(text.contains("guestDeletionRescheduled") && text.contains("lifecycleSettingsChanged"), "{text}");
    assert!(text.contains("guestUnblocked"), "{text}");

    // blockSignIn keeps a blocked guest blocked but no longer due for deletion.
    lifecycle(&app, "blockSignInAndDelete", Some(2)).await;
    let sue = create_guest(&app, "sue@fabrikam.com").await;
    let a = assign_external(&app, &f, &sue).await;
    end(a).await;
    lifecycle(&app, "blockSignIn", None).await;
    advance_days(&app, 10).await;
    assert_eq!(account(&app, &sue).await, Some(false), "blocked, not deleted");
}

#[tokio::test]
async fn a_subject_is_read_by_object_id_and_its_lifecycle_and_organization_are_patched() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let fabrikam = create_org(&app, domain_org("Fabrikam", "fabrikam.com")).await;
    let litware = create_org(&app, domain_org("Litware", "litware.com")).await;
    lifecycle(&app, "blockSignInAndDelete", Some(10)).await;
    let gina = create_guest(&app, "gina@fabrikam.com").await;
    let a = assign_external(&app, &f, &gina).await;
    let by_oid = |root: &str| format!("{}(objectId='{gina}')", em(root, "subjects"));

    // Read by the alternate key in both roots, and by id.
    let (status, v1) = app.get(&app.admin, &by_oid("v1.0")).await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert_eq!((v1["objectId"].as_str(), v1["subjectLifecycle"].as_str()), (Some(gina.as_str()), Some("governed")));
    assert_eq!(v1["subjectType"], "user", "{v1}");
    assert!(v1.get("connectedOrganizationId").is_none(), "not a v1.0 property: {v1}");
    assert!(v1["@odata.context"].as_str().unwrap().contains("entitlementManagement/subjects"), "{v1}");
    let (status, beta) = app.get(&app.admin, &by_oid("beta")).await;
    assert_eq!(status, StatusCode::OK, "{beta}");
    assert_eq!(beta["connectedOrganizationId"], fabrikam.as_str(), "{beta}");
    assert_eq!(beta["cleanupScheduledDateTime"], Value::Null);
    let sid = v1["id"].as_str().unwrap().to_string();
    let (status, got) = app.get(&app.admin, &em("v1.0", &format!("subjects/{sid}"))).await;
    assert_eq!((status, got["objectId"].as_str()), (StatusCode::OK, Some(gina.as_str())), "{got}");
    let (status, got) = app.get(&app.admin, &format!("{}?$expand=connectedOrganization", by_oid("v1.0"))).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["connectedOrganization"]["displayName"], "Fabrikam", "{got}");
    let (status, body) =
        app.get(&app.admin, &format!("{}(objectId='{}')", em("v1.0", "subjects"), grantry_domain::ids::new_id())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Blocked when the assignment ends: beta shows when the guest will be deleted.
    let (status, r) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentRequests"),
            json!({ "requestType": "adminRemove", "assignment": { "id": a } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    assert_eq!(account(&app, &gina).await, Some(false));
    let (_, beta) = app.get(&app.admin, &by_oid("beta")).await;
    let due = (app.now() + chrono::Duration::days(10)).format("%Y-%m-%d").to_string();
    assert!(beta["cleanupScheduledDateTime"].as_str().is_some_and(|t| t.starts_with(&due)), "{beta}");

    // Bad PATCHes change nothing.
    for (root, body, code) in [
        ("v1.0", json!({ "subjectLifecycle": "managed" }), "InvalidRequestBody"),
        ("v1.0", json!({ "displayName": "Someone else" }), "ReadOnlyProperty"),
        ("v1.0", json!({ "connectedOrganizationId": litware }), ""),
        ("v1.0", json!({ "connectedOrganization": { "id": litware } }), "ReadOnlyProperty"),
        ("beta", json!({ "connectedOrganizationId": grantry_domain::ids::new_id() }), "InvalidRequestBody"),
        ("beta", json!({ "connectedOrganizationId": 7 }), "InvalidRequestBody"),
    ] {
        let (status, b) = app.patch(&app.admin, &by_oid(root), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{root} {body}: {b}");
        if !code.is_empty() {
            assert_eq!(
                b["error"]["code"].as_str().map(str::to_ascii_lowercase),
                Some(code.to_ascii_lowercase()),
                "{b}"
            );
        }
    }
    // Only administrators (and catalog owners) change subjects.
    let someone = app.create_user("someone").await;
    let token = app.user_token(&someone, &["EntitlementManagement.ReadWrite.All"]);
    let (status, b) = app.patch(&token, &by_oid("v1.0"), json!({ "subjectLifecycle": "notGoverned" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{b}");
    let (_, now) = app.get(&app.admin, &by_oid("beta")).await;
    assert_eq!(now["subjectLifecycle"], "governed", "an enum member of the beta schema: {now}");

    // Not governed any more: the lifecycle lets go of the guest (sign-in back, no deletion).
    // A client may send back what it read.
    let mut sent = v1.clone();
    sent.as_object_mut().unwrap().retain(|k, _| !k.starts_with('@'));
    sent["subjectLifecycle"] = json!("notGoverned");
    let (status, b) = app.patch(&app.admin, &by_oid("v1.0"), sent).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{b}");
    app.drain().await;
    assert_eq!(account(&app, &gina).await, Some(true));
    let (_, beta) = app.get(&app.admin, &by_oid("beta")).await;
    assert_eq!(
        (beta["subjectLifecycle"].as_str(), &beta["cleanupScheduledDateTime"]),
        (Some("notGoverned"), &Value::Null)
    );
    advance_days(&app, 20).await;
    assert_eq!(account(&app, &gina).await, Some(true), "never deleted");

    // Beta sets the organization (either spelling) and null returns it to the domain's.
    let (status, b) = app.patch(&app.admin, &by_oid("beta"), json!({ "connectedOrganizationId": litware })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{b}");
    let (_, beta) = app.get(&app.admin, &format!("{}?$expand=connectedOrganization", by_oid("beta"))).await;
    assert_eq!(beta["connectedOrganizationId"], litware.as_str(), "{beta}");
    assert_eq!(beta["connectedOrganization"]["displayName"], "Litware", "{beta}");
    let (status, b) = app.patch(&app.admin, &by_oid("beta"), json!({ "connectedOrganization": null })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{b}");
    let (_, beta) = app.get(&app.admin, &by_oid("beta")).await;
    assert_eq!(beta["connectedOrganizationId"], fabrikam.as_str(), "{beta}");

    // Governed again: the lifecycle blocks the guest when their next assignment ends.
    let (status, b) =
        app.patch(&app.admin, &em("beta", &format!("subjects/{sid}")), json!({ "subjectLifecycle": "governed" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{b}");
    let a = assign_external(&app, &f, &gina).await;
    let (status, r) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentRequests"),
            json!({ "requestType": "adminRemove", "assignment": { "id": a } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    assert_eq!(account(&app, &gina).await, Some(false));
    let (_, audits) = app.get(&app.admin, &format!("/_grantry/audit?entityId={sid}")).await;
    assert!(audits.to_string().contains("accessPackageSubject"), "{audits}");
}
