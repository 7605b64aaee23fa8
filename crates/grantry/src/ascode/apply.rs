//! `grantry apply`: makes exactly the planned changes, all or nothing. Everything is
//! validated by `plan` first. Every step that can be taken back is recorded with how to
//! undo it (a removed incompatibility, role scope or resource is added again, a deleted
//! policy is created again with the same settings); if one fails, the ones made are undone
//! in reverse order. The steps that cannot be taken back (deleting a package, a custom
//! extension or a catalog; removing an assignment) come last: before the first of them,
//! their preconditions are checked again on the server, and a failure there undoes
//! everything, so they run only once everything else succeeded.

use super::client::Graph;
use super::document::*;
use super::live::EM;
use super::plan::{Plan, Step, policy_body};
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Applied {
    pub done: Vec<String>,
    /// What the person must know, e.g. the signing secret of a custom extension created
    /// (shown only in the answer to the create).
    pub notes: Vec<String>,
}

/// How to take back one step.
enum Undo {
    Delete(String),
    Patch(String, Value),
    Put(String, Value),
    Post(String, Value),
    /// Grant a group role through a package again (the resource's id is looked up then:
    /// the resource may itself have been added again by an undo).
    RoleScope {
        package_id: String,
        catalog_id: String,
        group_id: String,
        role: String,
    },
}

impl Undo {
    async fn run(&self, graph: &Graph) -> anyhow::Result<Value> {
        match self {
            Undo::Delete(path) => graph.call(Method::DELETE, path, None).await,
            Undo::Patch(path, body) => graph.call(Method::PATCH, path, Some(body)).await,
            Undo::Put(path, body) => graph.call(Method::PUT, path, Some(body)).await,
            Undo::Post(path, body) => graph.call(Method::POST, path, Some(body)).await,
            Undo::RoleScope { package_id, catalog_id, group_id, role } => {
                add_role_scope(graph, package_id, catalog_id, group_id, role).await
            }
        }
    }
}

/// Grants `role` (`Member`, `Owner`) of group `group_id` through package `package_id`.
async fn add_role_scope(
    graph: &Graph,
    package_id: &str,
    catalog_id: &str,
    group_id: &str,
    role: &str,
) -> anyhow::Result<Value> {
    let resources =
        graph.list(&format!("{EM}/catalogs/{catalog_id}/resources?$filter=originId eq '{group_id}'")).await?;
    let resource_id = resources
        .first()
        .and_then(|r| r["id"].as_str())
        .with_context(|| format!("group '{group_id}' is not a resource of the catalog '{catalog_id}'"))?;
    let body = json!({
        "role": { "originId": format!("{role}_{group_id}"), "originSystem": "AadGroup", "resource": { "id": resource_id } },
        "scope": { "originId": group_id, "originSystem": "AadGroup" }
    });
    graph.call(Method::POST, &format!("{EM}/accessPackages/{package_id}/resourceRoleScopes"), Some(&body)).await
}

/// Checks again, just before the first step that cannot be undone, what the server would
/// refuse those steps for: each object to delete or assignment to remove is still there,
/// and no package to delete has gained an assignment since the plan.
async fn recheck(graph: &Graph, finals: &[&Step]) -> anyhow::Result<()> {
    for step in finals {
        match step {
            Step::DeletePackage { catalog, package, id } => {
                graph
                    .get(&format!("{EM}/accessPackages/{id}"))
                    .await
                    .with_context(|| format!("access package '{catalog} / {package}' is no longer on the server"))?;
                let held = graph
                    .list(&format!(
                        "{EM}/assignments?$filter=accessPackage/id eq '{id}' and state eq 'delivered'&$select=id"
                    ))
                    .await?;
                if !held.is_empty() {
                    bail!(
                        "access package '{catalog} / {package}' has {} active assignment(s) now (it had none when planned); remove them first, then plan again",
                        held.len()
                    );
                }
            }
            Step::DeleteExtension { catalog, name, id } => {
                let cid = graph
                    .list(&format!("{EM}/catalogs?$filter=displayName eq '{}'&$select=id", catalog.replace('\'', "''")))
                    .await?
                    .first()
                    .and_then(|c| c["id"].as_str().map(str::to_string))
                    .with_context(|| format!("catalog '{catalog}' is no longer on the server"))?;
                graph
                    .get(&format!("{EM}/catalogs/{cid}/customWorkflowExtensions/{id}"))
                    .await
                    .with_context(|| format!("custom extension '{catalog} / {name}' is no longer on the server"))?;
            }
            Step::DeleteCatalog { catalog, id } => {
                graph
                    .get(&format!("{EM}/catalogs/{id}"))
                    .await
                    .with_context(|| format!("catalog '{catalog}' is no longer on the server"))?;
            }
            Step::DeleteOrganization { organization, id } => {
                graph
                    .get(&format!("{EM}/connectedOrganizations/{id}"))
                    .await
                    .with_context(|| format!("connected organization '{organization}' is no longer on the server"))?;
            }
            Step::RemoveAssignment { user, assignment_id, package, .. } => {
                let a = graph
                    .get(&format!("{EM}/assignments/{assignment_id}"))
                    .await
                    .with_context(|| format!("the assignment of '{package}' to {user} is no longer on the server"))?;
                if a["state"].as_str() != Some("delivered") {
                    bail!("the assignment of '{package}' to {user} is no longer active; plan again");
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Ids of the catalogs, packages, extensions and resources by name, filled as objects are
/// created.
#[derive(Default)]
struct Ids {
    catalogs: HashMap<String, String>,
    packages: HashMap<(String, String), String>,
    extensions: HashMap<(String, String), String>,
    organizations: HashMap<String, String>,
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    v["id"].as_str().map(str::to_string).context("the server answered a create without an id")
}

fn put_opt(body: &mut Value, key: &str, v: Option<Value>) {
    if let (Value::Object(m), Some(v)) = (body, v) {
        m.insert(key.to_string(), v);
    }
}

/// Applies `plan`. `expected` is the plan id the person reviewed: the plan is made again
/// and must have the same id, or nothing is written.
pub async fn apply(
    graph: &Graph,
    plan: &Plan,
    expected: Option<&str>,
    progress: &dyn Fn(&str),
) -> anyhow::Result<Applied> {
    if let Some(expected) = expected
        && plan.id != expected.trim()
    {
        bail!(
            "the server changed since plan {expected} was made (it is now plan {}); nothing was changed. Review the new plan with `grantry plan {}`, or pass --force to apply without a reviewed plan",
            plan.id,
            plan.file
        );
    }
    let mut ids = Ids::default();
    for (on, o) in &plan.live.organizations {
        ids.organizations.insert(on.clone(), o.id.clone());
    }
    for (cn, c) in &plan.live.catalogs {
        ids.catalogs.insert(cn.clone(), c.id.clone());
        for (pn, p) in &c.packages {
            ids.packages.insert((cn.clone(), pn.clone()), p.id.clone());
        }
        for (en, e) in &c.extensions {
            ids.extensions.insert((cn.clone(), en.clone()), e.clone());
        }
    }
    let mut undo: Vec<Undo> = Vec::new();
    let mut applied = Applied::default();
    let total = plan.steps.len();
    let mut rechecked = false;
    for (i, step) in plan.steps.iter().enumerate() {
        progress(&format!("{}/{total} {}", i + 1, step.describe()));
        let outcome = if !step.reversible() && !rechecked {
            rechecked = true;
            let finals: Vec<&Step> = plan.steps[i..].iter().filter(|s| !s.reversible()).collect();
            match recheck(graph, &finals).await {
                Ok(()) => run(graph, plan, step, &mut ids, &mut applied.notes).await,
                Err(e) => Err(e.context("checking the removals that cannot be undone before making them")),
            }
        } else {
            run(graph, plan, step, &mut ids, &mut applied.notes).await
        };
        match outcome {
            Ok(u) => {
                undo.extend(u);
                applied.done.push(step.describe());
            }
            Err(e) => {
                let finals_made: Vec<&String> =
                    applied.done.iter().zip(&plan.steps).filter(|(_, s)| !s.reversible()).map(|(d, _)| d).collect();
                if !finals_made.is_empty() {
                    // Part of what cannot be undone is done; what it depended on stays.
                    bail!(
                        "{} failed: {e:#}\nevery other change had been made and stays; these {} change(s) that cannot be undone were made before it:\n  {}",
                        step.describe(),
                        finals_made.len(),
                        finals_made.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
                    );
                }
                let mut failed_undo = Vec::new();
                while let Some(u) = undo.pop() {
                    if let Err(ue) = u.run(graph).await {
                        failed_undo.push(ue.to_string());
                    }
                }
                if failed_undo.is_empty() {
                    bail!(
                        "{} failed: {e:#}\nthe {} change(s) made before it were undone; the server is as it was",
                        step.describe(),
                        applied.done.len()
                    );
                }
                bail!(
                    "{} failed: {e:#}\nundoing the changes made before it failed too:\n  {}",
                    step.describe(),
                    failed_undo.join("\n  ")
                );
            }
        }
    }
    Ok(applied)
}

async fn run(
    graph: &Graph,
    plan: &Plan,
    step: &Step,
    ids: &mut Ids,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<Undo>> {
    let want = &plan.desired;
    let dir = &plan.live.dir;
    let cat_id = |ids: &Ids, c: &str| ids.catalogs.get(c).cloned().with_context(|| format!("catalog '{c}' has no id"));
    let pkg_id = |ids: &Ids, c: &str, p: &str| {
        ids.packages
            .get(&(c.to_string(), p.to_string()))
            .cloned()
            .with_context(|| format!("access package '{c} / {p}' has no id"))
    };
    let org_path = |ids: &Ids, o: &str| {
        ids.organizations
            .get(o)
            .map(|id| format!("{EM}/connectedOrganizations/{id}"))
            .with_context(|| format!("connected organization '{o}' has no id"))
    };
    Ok(match step {
        Step::CreateOrganization { organization } => {
            let o = &want.connected_organizations[organization];
            let mut body = json!({ "displayName": organization, "identitySources": o.identity_sources });
            put_opt(&mut body, "description", o.description.clone().map(Value::String));
            put_opt(&mut body, "state", o.state.map(|s| json!(s.wire())));
            let created = graph.call(Method::POST, &format!("{EM}/connectedOrganizations"), Some(&body)).await?;
            let id = id_of(&created)?;
            ids.organizations.insert(organization.clone(), id.clone());
            vec![Undo::Delete(format!("{EM}/connectedOrganizations/{id}"))]
        }
        Step::UpdateOrganization { organization, id, .. } => {
            let o = &want.connected_organizations[organization];
            let h = &plan.live.doc.connected_organizations[organization];
            let (mut body, mut before) = (json!({}), json!({}));
            put_opt(&mut body, "description", o.description.clone().map(Value::String));
            put_opt(&mut before, "description", Some(json!(h.description.clone())));
            put_opt(&mut body, "state", o.state.map(|s| json!(s.wire())));
            put_opt(&mut before, "state", h.state.map(|s| json!(s.wire())));
            let path = format!("{EM}/connectedOrganizations/{id}");
            graph.call(Method::PATCH, &path, Some(&body)).await?;
            vec![Undo::Patch(path, before)]
        }
        Step::AddSponsor { organization, list, sponsor, sponsor_id } => {
            let set = if sponsor.group.is_some() { "groups" } else { "users" };
            let path = org_path(ids, organization)?;
            let body = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{set}/{sponsor_id}") });
            graph.call(Method::POST, &format!("{path}/{list}/$ref"), Some(&body)).await?;
            vec![Undo::Delete(format!("{path}/{list}/{sponsor_id}/$ref"))]
        }
        Step::RemoveSponsor { organization_id, list, sponsor, sponsor_id, .. } => {
            let path = format!("{EM}/connectedOrganizations/{organization_id}/{list}");
            graph.call(Method::DELETE, &format!("{path}/{sponsor_id}/$ref"), None).await?;
            let set = if sponsor.group.is_some() { "groups" } else { "users" };
            let body = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{set}/{sponsor_id}") });
            vec![Undo::Post(format!("{path}/$ref"), body)]
        }
        Step::DeleteOrganization { id, .. } => {
            graph.call(Method::DELETE, &format!("{EM}/connectedOrganizations/{id}"), None).await?;
            vec![]
        }
        Step::CreateCatalog { catalog } => {
            let c = &want.catalogs[catalog];
            let mut body = json!({ "displayName": catalog, "description": c.description.clone().unwrap_or_default() });
            put_opt(&mut body, "state", c.state.map(|s| json!(s.wire())));
            put_opt(&mut body, "isExternallyVisible", c.is_externally_visible.map(Value::Bool));
            let created = graph.call(Method::POST, &format!("{EM}/catalogs"), Some(&body)).await?;
            let id = id_of(&created)?;
            ids.catalogs.insert(catalog.clone(), id.clone());
            vec![Undo::Delete(format!("{EM}/catalogs/{id}"))]
        }
        Step::UpdateCatalog { catalog, id, .. } => {
            let c = &want.catalogs[catalog];
            let h = &plan.live.doc.catalogs[catalog];
            let mut body = json!({});
            let mut before = json!({});
            put_opt(&mut body, "description", c.description.clone().map(Value::String));
            put_opt(&mut before, "description", Some(json!(h.description.clone().unwrap_or_default())));
            put_opt(&mut body, "state", c.state.map(|s| json!(s.wire())));
            put_opt(&mut before, "state", h.state.map(|s| json!(s.wire())));
            put_opt(&mut body, "isExternallyVisible", c.is_externally_visible.map(Value::Bool));
            put_opt(&mut before, "isExternallyVisible", h.is_externally_visible.map(Value::Bool));
            let path = format!("{EM}/catalogs/{id}");
            graph.call(Method::PATCH, &path, Some(&body)).await?;
            vec![Undo::Patch(path, before)]
        }
        Step::AddResource { catalog, group_id, .. } => {
            let cid = cat_id(ids, catalog)?;
            let body = |t: &str| json!({ "requestType": t, "resource": { "originId": group_id, "originSystem": "AadGroup" }, "catalog": { "id": cid } });
            let path = format!("{EM}/resourceRequests");
            graph.call(Method::POST, &path, Some(&body("adminAdd"))).await?;
            vec![Undo::Post(path, body("adminRemove"))]
        }
        Step::CreateExtension { catalog, name } => {
            let e = &want.catalogs[catalog].custom_extensions[name];
            let cid = cat_id(ids, catalog)?;
            let body = extension_body(name, e);
            let created =
                graph.call(Method::POST, &format!("{EM}/catalogs/{cid}/customWorkflowExtensions"), Some(&body)).await?;
            let id = id_of(&created)?;
            if let Some(secret) = created["@grantry.signingSecret"].as_str() {
                notes.push(format!(
                    "custom extension '{catalog} / {name}' signs its calls with the secret {secret} (shown only now: give it to the receiver)"
                ));
            }
            ids.extensions.insert((catalog.clone(), name.clone()), id.clone());
            vec![Undo::Delete(format!("{EM}/catalogs/{cid}/customWorkflowExtensions/{id}"))]
        }
        Step::UpdateExtension { catalog, name, id, .. } => {
            let cid = cat_id(ids, catalog)?;
            let path = format!("{EM}/catalogs/{cid}/customWorkflowExtensions/{id}");
            let before = graph.get(&path).await?;
            let mut body = extension_body(name, &want.catalogs[catalog].custom_extensions[name]);
            // Keys left out of the file keep the server's value.
            if let (Value::Object(b), Value::Object(old)) = (&mut body, &before) {
                for k in
                    ["description", "endpointConfiguration", "authenticationConfiguration", "callbackConfiguration"]
                {
                    if !b.contains_key(k)
                        && let Some(v) = old.get(k).filter(|v| !v.is_null())
                    {
                        b.insert(k.to_string(), v.clone());
                    }
                }
            }
            graph.call(Method::PATCH, &path, Some(&body)).await?;
            vec![Undo::Patch(
                path,
                restore_of(
                    &before,
                    &[
                        "displayName",
                        "description",
                        "endpointConfiguration",
                        "authenticationConfiguration",
                        "callbackConfiguration",
                    ],
                ),
            )]
        }
        Step::CreatePackage { catalog, package } => {
            let p = &want.catalogs[catalog].access_packages[package];
            let cid = cat_id(ids, catalog)?;
            let mut body = json!({ "displayName": package, "catalog": { "id": cid } });
            put_opt(&mut body, "description", p.description.clone().map(Value::String));
            put_opt(&mut body, "isHidden", p.is_hidden.map(Value::Bool));
            let created = graph.call(Method::POST, &format!("{EM}/accessPackages"), Some(&body)).await?;
            let id = id_of(&created)?;
            ids.packages.insert((catalog.clone(), package.clone()), id.clone());
            vec![Undo::Delete(format!("{EM}/accessPackages/{id}"))]
        }
        Step::UpdatePackage { catalog, package, id, .. } => {
            let p = &want.catalogs[catalog].access_packages[package];
            let h = &plan.live.doc.catalogs[catalog].access_packages[package];
            let mut body = json!({});
            let mut before = json!({});
            put_opt(&mut body, "description", p.description.clone().map(Value::String));
            put_opt(&mut before, "description", Some(json!(h.description.clone().unwrap_or_default())));
            put_opt(&mut body, "isHidden", p.is_hidden.map(Value::Bool));
            put_opt(&mut before, "isHidden", h.is_hidden.map(Value::Bool));
            let path = format!("{EM}/accessPackages/{id}");
            graph.call(Method::PATCH, &path, Some(&body)).await?;
            vec![Undo::Patch(path, before)]
        }
        Step::AddRoleScope { catalog, package, scope, group_id } => {
            let cid = cat_id(ids, catalog)?;
            let pid = pkg_id(ids, catalog, package)?;
            let resources =
                graph.list(&format!("{EM}/catalogs/{cid}/resources?$filter=originId eq '{group_id}'")).await?;
            let resource_id = resources
                .first()
                .and_then(|r| r["id"].as_str())
                .with_context(|| format!("group '{}' is not a resource of catalog '{catalog}'", scope.group))?;
            let body = json!({
                "role": { "originId": format!("{}_{group_id}", scope.role.name()), "originSystem": "AadGroup", "resource": { "id": resource_id } },
                "scope": { "originId": group_id, "originSystem": "AadGroup" }
            });
            let created =
                graph.call(Method::POST, &format!("{EM}/accessPackages/{pid}/resourceRoleScopes"), Some(&body)).await?;
            vec![Undo::Delete(format!("{EM}/accessPackages/{pid}/resourceRoleScopes/{}", id_of(&created)?))]
        }
        Step::AddIncompatiblePackage { catalog, package, other } => {
            let pid = pkg_id(ids, catalog, package)?;
            let oid = pkg_id(ids, &other.0, &other.1)?;
            let body = json!({ "@odata.id": format!("{}/v1.0{EM}/accessPackages/{oid}", graph.base()) });
            graph
                .call(Method::POST, &format!("{EM}/accessPackages/{pid}/incompatibleAccessPackages/$ref"), Some(&body))
                .await?;
            vec![Undo::Delete(format!("{EM}/accessPackages/{pid}/incompatibleAccessPackages/{oid}/$ref"))]
        }
        Step::AddIncompatibleGroup { catalog, package, group_id, .. } => {
            let pid = pkg_id(ids, catalog, package)?;
            let body = json!({ "@odata.id": format!("{}/v1.0/groups/{group_id}", graph.base()) });
            graph
                .call(Method::POST, &format!("{EM}/accessPackages/{pid}/incompatibleGroups/$ref"), Some(&body))
                .await?;
            vec![Undo::Delete(format!("{EM}/accessPackages/{pid}/incompatibleGroups/{group_id}/$ref"))]
        }
        Step::CreatePolicy { catalog, package, policy } => {
            let q = &want.catalogs[catalog].access_packages[package].policies[policy];
            let pid = pkg_id(ids, catalog, package)?;
            let mut body = policy_body(q, dir, &Value::Null)?;
            finish_policy(&mut body, policy, &pid, q, catalog, ids)?;
            let created = graph.call(Method::POST, &format!("{EM}/assignmentPolicies"), Some(&body)).await?;
            vec![Undo::Delete(format!("{EM}/assignmentPolicies/{}", id_of(&created)?))]
        }
        Step::ReplacePolicy { catalog, package, policy, id, .. } => {
            let q = &want.catalogs[catalog].access_packages[package].policies[policy];
            let pid = pkg_id(ids, catalog, package)?;
            let live = plan.live.policy(catalog, package, policy).context("the policy is gone")?;
            let mut body = policy_body(q, dir, &live.raw)?;
            finish_policy(&mut body, policy, &pid, q, catalog, ids)?;
            if q.custom_extension_stage_settings.is_none()
                && let Value::Object(b) = &mut body
            {
                b.insert("customExtensionStageSettings".into(), live.raw["customExtensionStageSettings"].clone());
            }
            let path = format!("{EM}/assignmentPolicies/{id}");
            graph.call(Method::PUT, &path, Some(&body)).await?;
            let mut before = restore_of(&live.raw, POLICY_SETTINGS);
            if let Value::Object(b) = &mut before {
                b.insert("displayName".into(), live.raw["displayName"].clone());
            }
            vec![Undo::Put(path, before)]
        }
        Step::RemoveIncompatiblePackage { catalog, package, other_id, .. } => {
            let pid = pkg_id(ids, catalog, package)?;
            graph
                .call(
                    Method::DELETE,
                    &format!("{EM}/accessPackages/{pid}/incompatibleAccessPackages/{other_id}/$ref"),
                    None,
                )
                .await?;
            let again = json!({ "@odata.id": format!("{}/v1.0{EM}/accessPackages/{other_id}", graph.base()) });
            vec![Undo::Post(format!("{EM}/accessPackages/{pid}/incompatibleAccessPackages/$ref"), again)]
        }
        Step::RemoveIncompatibleGroup { catalog, package, group_id, .. } => {
            let pid = pkg_id(ids, catalog, package)?;
            graph
                .call(Method::DELETE, &format!("{EM}/accessPackages/{pid}/incompatibleGroups/{group_id}/$ref"), None)
                .await?;
            let again = json!({ "@odata.id": format!("{}/v1.0/groups/{group_id}", graph.base()) });
            vec![Undo::Post(format!("{EM}/accessPackages/{pid}/incompatibleGroups/$ref"), again)]
        }
        Step::RemoveRoleScope { catalog, package, id, scope } => {
            let pid = pkg_id(ids, catalog, package)?;
            let cid = cat_id(ids, catalog)?;
            graph.call(Method::DELETE, &format!("{EM}/accessPackages/{pid}/resourceRoleScopes/{id}"), None).await?;
            match dir.group_by_name(&scope.group) {
                Ok(g) => vec![Undo::RoleScope {
                    package_id: pid,
                    catalog_id: cid,
                    group_id: g.id.clone(),
                    role: scope.role.name().to_string(),
                }],
                Err(_) => vec![],
            }
        }
        Step::DeletePolicy { catalog, package, policy, id } => {
            let pid = pkg_id(ids, catalog, package)?;
            let live = plan.live.policy(catalog, package, policy).context("the policy is gone")?;
            let mut again = restore_of(&live.raw, POLICY_SETTINGS);
            if let Value::Object(b) = &mut again {
                b.insert("displayName".into(), json!(policy));
                b.insert("accessPackage".into(), json!({ "id": pid }));
            }
            graph.call(Method::DELETE, &format!("{EM}/assignmentPolicies/{id}"), None).await?;
            vec![Undo::Post(format!("{EM}/assignmentPolicies"), again)]
        }
        Step::DeletePackage { id, .. } => {
            graph.call(Method::DELETE, &format!("{EM}/accessPackages/{id}"), None).await?;
            vec![]
        }
        Step::DeleteExtension { catalog, id, .. } => {
            let cid = cat_id(ids, catalog)?;
            graph.call(Method::DELETE, &format!("{EM}/catalogs/{cid}/customWorkflowExtensions/{id}"), None).await?;
            vec![]
        }
        Step::RemoveResource { catalog, group_id, .. } => {
            let cid = cat_id(ids, catalog)?;
            let body = |t: &str| json!({ "requestType": t, "resource": { "originId": group_id, "originSystem": "AadGroup" }, "catalog": { "id": cid } });
            let path = format!("{EM}/resourceRequests");
            graph.call(Method::POST, &path, Some(&body("adminRemove"))).await?;
            vec![Undo::Post(path, body("adminAdd"))]
        }
        Step::DeleteCatalog { id, .. } => {
            graph.call(Method::DELETE, &format!("{EM}/catalogs/{id}"), None).await?;
            vec![]
        }
        Step::RemoveAssignment { assignment_id, .. } => {
            let body = json!({ "requestType": "adminRemove", "assignment": { "id": assignment_id } });
            graph.call(Method::POST, &format!("{EM}/assignmentRequests"), Some(&body)).await?;
            vec![]
        }
    })
}

fn extension_body(name: &str, e: &Extension) -> Value {
    let mut body = json!({ "@odata.type": e.kind.odata_type(), "displayName": name });
    put_opt(&mut body, "description", e.description.clone().map(Value::String));
    put_opt(&mut body, "endpointConfiguration", e.endpoint_configuration.clone());
    put_opt(&mut body, "authenticationConfiguration", e.authentication_configuration.clone());
    put_opt(&mut body, "callbackConfiguration", e.callback_configuration.clone());
    body
}

/// `connectedOrganization: NAME` left by [`super::plan::ids_of_subjects`] for organizations
/// created by this apply → `connectedOrganizationId`.
fn resolve_organizations(v: &mut Value, ids: &HashMap<String, String>) -> anyhow::Result<()> {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(name)) = m.remove("connectedOrganization") {
                let id = ids.get(&name).with_context(|| format!("connected organization '{name}' has no id"))?;
                m.insert("connectedOrganizationId".into(), Value::String(id.clone()));
            }
            for child in m.values_mut() {
                resolve_organizations(child, ids)?;
            }
        }
        Value::Array(a) => {
            for child in a {
                resolve_organizations(child, ids)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The keys of `before` to send back to restore it.
fn restore_of(before: &Value, keys: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for k in keys {
        if let Some(v) = before.get(*k).filter(|v| !v.is_null()) {
            out.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// Display name, package and the stage settings' custom extensions by id.
fn finish_policy(
    body: &mut Value,
    name: &str,
    package_id: &str,
    q: &Policy,
    catalog: &str,
    ids: &Ids,
) -> anyhow::Result<()> {
    resolve_organizations(body, &ids.organizations)?;
    let Value::Object(b) = body else { return Ok(()) };
    b.insert("displayName".into(), json!(name));
    b.insert("accessPackage".into(), json!({ "id": package_id }));
    if let Some(settings) = &q.custom_extension_stage_settings {
        let mut out = Vec::new();
        for s in settings {
            let id = ids
                .extensions
                .get(&(catalog.to_string(), s.custom_extension.clone()))
                .with_context(|| format!("custom extension '{catalog} / {}' has no id", s.custom_extension))?;
            out.push(json!({ "stage": s.stage, "customExtension": { "id": id } }));
        }
        b.insert("customExtensionStageSettings".into(), Value::Array(out));
    }
    Ok(())
}
