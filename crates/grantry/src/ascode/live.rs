//! Reading a server's governance configuration into a [`Document`], with the ids kept
//! aside in [`Live`] for `plan` and `apply`.

use super::client::Graph;
use super::document::*;
use anyhow::{Context, bail};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const EM: &str = "/identityGovernance/entitlementManagement";

#[derive(Debug, Clone)]
pub struct DirUser {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub user_type: String,
}

#[derive(Debug, Clone)]
pub struct DirGroup {
    pub id: String,
    pub name: String,
}

/// The users and groups of the server's directory, to name them in the file.
#[derive(Debug, Default)]
pub struct Directory {
    pub users: Vec<DirUser>,
    pub groups: Vec<DirGroup>,
    /// Connected organizations (id, display name), which policies name.
    pub organizations: Vec<DirGroup>,
}

impl Directory {
    pub async fn read(graph: &Graph) -> anyhow::Result<Directory> {
        let users = graph
            .list("/users")
            .await?
            .iter()
            .map(|u| DirUser {
                id: text(u, "id"),
                upn: text(u, "userPrincipalName"),
                display_name: text(u, "displayName"),
                user_type: u["userType"].as_str().unwrap_or("Member").to_string(),
            })
            .collect();
        let groups = graph
            .list("/groups")
            .await?
            .iter()
            .map(|g| DirGroup { id: text(g, "id"), name: text(g, "displayName") })
            .collect();
        Ok(Directory { users, groups, organizations: Vec::new() })
    }

    pub fn user(&self, id: &str) -> Option<&DirUser> {
        self.users.iter().find(|u| u.id.eq_ignore_ascii_case(id))
    }

    pub fn user_by_upn(&self, upn: &str) -> Option<&DirUser> {
        self.users.iter().find(|u| u.upn.eq_ignore_ascii_case(upn))
    }

    pub fn organization(&self, id: &str) -> Option<&DirGroup> {
        self.organizations.iter().find(|o| o.id.eq_ignore_ascii_case(id))
    }

    pub fn organization_by_name(&self, name: &str) -> Option<&DirGroup> {
        self.organizations.iter().find(|o| o.name == name)
    }

    /// The id of a sponsor the file names; `None` when no such user or group exists.
    pub fn sponsor_id(&self, s: &SponsorRef) -> Option<String> {
        match (&s.user, &s.group) {
            (Some(u), None) => self.user_by_upn(u).map(|u| u.id.clone()),
            (None, Some(g)) => self.group_by_name(g).ok().map(|g| g.id.clone()),
            _ => None,
        }
    }

    pub fn group(&self, id: &str) -> Option<&DirGroup> {
        self.groups.iter().find(|g| g.id.eq_ignore_ascii_case(id))
    }

    /// The group called `name`; an error when none or several are.
    pub fn group_by_name(&self, name: &str) -> Result<&DirGroup, String> {
        let found: Vec<&DirGroup> = self.groups.iter().filter(|g| g.name == name).collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(format!("there is no group named '{name}' in the directory")),
            _ => Err(format!("{} groups are named '{name}'; rename all but one so the name is unique", found.len())),
        }
    }

    /// How a user is shown in a plan.
    pub fn describe_user(&self, id: &str) -> String {
        match self.user(id) {
            Some(u) if !u.upn.is_empty() => u.upn.clone(),
            Some(u) => u.display_name.clone(),
            None => id.to_string(),
        }
    }
}

#[derive(Debug)]
pub struct LiveCatalog {
    pub id: String,
    /// The server's own catalog (Entra's "General", `serviceDefault`): never deleted.
    pub built_in: bool,
    /// Group name → resource id.
    pub resources: BTreeMap<String, String>,
    pub extensions: BTreeMap<String, String>,
    pub packages: BTreeMap<String, LivePackage>,
}

#[derive(Debug)]
pub struct LivePackage {
    pub id: String,
    pub role_scopes: BTreeMap<RoleScopeRef, String>,
    pub policies: BTreeMap<String, LivePolicy>,
}

#[derive(Debug)]
pub struct LivePolicy {
    pub id: String,
    /// The policy as the server rendered it, for restoring it if an apply fails.
    pub raw: Value,
}

/// A connected organization's id and its sponsors' ids.
#[derive(Debug)]
pub struct LiveOrganization {
    pub id: String,
    pub internal: BTreeMap<SponsorRef, String>,
    pub external: BTreeMap<SponsorRef, String>,
}

/// A server's configuration: the document and the ids behind its names.
#[derive(Debug)]
pub struct Live {
    pub doc: Document,
    pub dir: Directory,
    pub catalogs: BTreeMap<String, LiveCatalog>,
    pub organizations: BTreeMap<String, LiveOrganization>,
}

impl Live {
    pub fn package(&self, catalog: &str, package: &str) -> Option<&LivePackage> {
        self.catalogs.get(catalog).and_then(|c| c.packages.get(package))
    }

    pub fn policy(&self, catalog: &str, package: &str, policy: &str) -> Option<&LivePolicy> {
        self.package(catalog, package).and_then(|p| p.policies.get(policy))
    }

    /// Name → id of every catalog, package, policy and custom extension, as YAML.
    pub fn ids_yaml(&self) -> anyhow::Result<String> {
        let mut out: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
        for (on, o) in &self.organizations {
            out.entry("connectedOrganizations").or_default().insert(on.clone(), o.id.clone());
        }
        for (cn, c) in &self.catalogs {
            out.entry("catalogs").or_default().insert(cn.clone(), c.id.clone());
            for (en, id) in &c.extensions {
                out.entry("customExtensions").or_default().insert(format!("{cn} / {en}"), id.clone());
            }
            for (pn, p) in &c.packages {
                out.entry("accessPackages").or_default().insert(format!("{cn} / {pn}"), p.id.clone());
                for (qn, q) in &p.policies {
                    out.entry("policies").or_default().insert(format!("{cn} / {pn} / {qn}"), q.id.clone());
                }
            }
        }
        Ok(serde_yaml_ng::to_string(&out)?)
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

fn opt_text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Refuses two objects with one name where names are keys.
fn unique<'a>(kind: &str, within: &str, items: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for name in items {
        if !seen.insert(name) {
            bail!("two {kind} are named '{name}'{within}; names are the keys of the file, so rename one first");
        }
    }
    Ok(())
}

/// Reads the whole configuration (`progress` is told what is being read).
pub async fn read(graph: &Graph, progress: &dyn Fn(&str)) -> anyhow::Result<Live> {
    progress("reading the directory");
    let mut dir = Directory::read(graph).await?;
    let mut doc = Document::default();
    progress("reading connected organizations");
    let organizations = read_organizations(graph, &mut dir, &mut doc).await?;
    let mut catalogs = BTreeMap::new();
    let raw_catalogs = graph.list(&format!("{EM}/catalogs")).await?;
    unique("catalogs", "", raw_catalogs.iter().map(|c| c["displayName"].as_str().unwrap_or("")))?;
    for (i, rc) in raw_catalogs.iter().enumerate() {
        let cname = text(rc, "displayName");
        progress(&format!("reading catalog {}/{}: {cname}", i + 1, raw_catalogs.len()));
        let cid = text(rc, "id");
        let mut live = LiveCatalog {
            id: cid.clone(),
            built_in: rc["catalogType"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("serviceDefault")),
            resources: BTreeMap::new(),
            extensions: BTreeMap::new(),
            packages: BTreeMap::new(),
        };
        let mut catalog = Catalog {
            description: opt_text(rc, "description"),
            state: match rc["state"].as_str() {
                Some("unpublished") => Some(CatalogState::Unpublished),
                Some(_) => Some(CatalogState::Published),
                None => None,
            },
            is_externally_visible: rc["isExternallyVisible"].as_bool(),
            ..Catalog::default()
        };
        for r in graph.list(&format!("{EM}/catalogs/{cid}/resources")).await? {
            if !r["originSystem"].as_str().unwrap_or("").eq_ignore_ascii_case("AadGroup") {
                continue;
            }
            let gid = text(&r, "originId");
            let name = dir.group(&gid).map(|g| g.name.clone()).unwrap_or(gid);
            live.resources.insert(name.clone(), text(&r, "id"));
            catalog.resources.push(ResourceRef { group: name });
        }
        catalog.resources.sort();
        let raw_extensions = graph.list(&format!("{EM}/catalogs/{cid}/customWorkflowExtensions")).await?;
        unique(
            "custom extensions",
            &format!(" in catalog '{cname}'"),
            raw_extensions.iter().map(|e| e["displayName"].as_str().unwrap_or("")),
        )?;
        for e in raw_extensions {
            let Some(kind) = e["@odata.type"].as_str().and_then(ExtensionKind::from_odata_type) else { continue };
            let name = text(&e, "displayName");
            live.extensions.insert(name.clone(), text(&e, "id"));
            catalog.custom_extensions.insert(
                name,
                Extension {
                    kind,
                    description: opt_text(&e, "description"),
                    endpoint_configuration: non_null(&e["endpointConfiguration"]),
                    authentication_configuration: non_null(&e["authenticationConfiguration"]),
                    callback_configuration: non_null(&e["callbackConfiguration"]),
                },
            );
        }
        let raw_packages = graph.list(&format!("{EM}/catalogs/{cid}/accessPackages")).await?;
        unique(
            "access packages",
            &format!(" in catalog '{cname}'"),
            raw_packages.iter().map(|p| p["displayName"].as_str().unwrap_or("")),
        )?;
        for rp in raw_packages {
            let pid = text(&rp, "id");
            let pname = text(&rp, "displayName");
            let mut package = Package {
                description: opt_text(&rp, "description"),
                is_hidden: rp["isHidden"].as_bool(),
                ..Package::default()
            };
            let mut lp = LivePackage { id: pid.clone(), role_scopes: BTreeMap::new(), policies: BTreeMap::new() };
            for rs in graph.list(&format!("{EM}/accessPackages/{pid}/resourceRoleScopes?$expand=role,scope")).await? {
                let role_origin = rs["role"]["originId"].as_str().unwrap_or("");
                let (role, gid) = match role_origin.split_once('_') {
                    Some(("Member", g)) => (GroupRole::Member, g),
                    Some(("Owner", g)) => (GroupRole::Owner, g),
                    _ => continue,
                };
                let group = dir.group(gid).map(|g| g.name.clone()).unwrap_or_else(|| gid.to_string());
                let r = RoleScopeRef { group, role };
                lp.role_scopes.insert(r.clone(), text(&rs, "id"));
                package.role_scopes.push(r);
            }
            package.role_scopes.sort();
            for g in graph.list(&format!("{EM}/accessPackages/{pid}/incompatibleGroups")).await? {
                package.incompatible_groups.push(text(&g, "displayName"));
            }
            package.incompatible_groups.sort();
            // Incompatible packages are named once every package is known (below).
            for other in graph.list(&format!("{EM}/accessPackages/{pid}/incompatibleAccessPackages")).await? {
                package
                    .incompatible_access_packages
                    .push(PackageRef { catalog: None, access_package: text(&other, "id") });
            }
            let raw_policies = graph.list(&format!("{EM}/accessPackages/{pid}/assignmentPolicies")).await?;
            unique(
                "policies",
                &format!(" in access package '{pname}'"),
                raw_policies.iter().map(|p| p["displayName"].as_str().unwrap_or("")),
            )?;
            for raw in raw_policies {
                let name = text(&raw, "displayName");
                let policy = policy_from_wire(&raw, &dir, &live.extensions)?;
                lp.policies.insert(name.clone(), LivePolicy { id: text(&raw, "id"), raw });
                package.policies.insert(name, policy);
            }
            live.packages.insert(pname.clone(), lp);
            catalog.access_packages.insert(pname, package);
        }
        doc.catalogs.insert(cname.clone(), catalog);
        catalogs.insert(cname, live);
    }
    // Package ids → names, now that all are read.
    let mut names: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (cn, c) in &catalogs {
        for (pn, p) in &c.packages {
            names.insert(p.id.to_ascii_lowercase(), (cn.clone(), pn.clone()));
        }
    }
    for (cn, c) in doc.catalogs.iter_mut() {
        for p in c.access_packages.values_mut() {
            for r in p.incompatible_access_packages.iter_mut() {
                if let Some((ocn, opn)) = names.get(&r.access_package.to_ascii_lowercase()) {
                    r.catalog = (ocn != cn).then(|| ocn.clone());
                    r.access_package = opn.clone();
                }
            }
            p.incompatible_access_packages.sort();
        }
    }
    Ok(Live { doc, dir, catalogs, organizations })
}

/// The connected organizations with their sponsors, into `doc`; their names into `dir`.
async fn read_organizations(
    graph: &Graph,
    dir: &mut Directory,
    doc: &mut Document,
) -> anyhow::Result<BTreeMap<String, LiveOrganization>> {
    let raw = graph.list(&format!("{EM}/connectedOrganizations")).await?;
    unique("connected organizations", "", raw.iter().map(|o| o["displayName"].as_str().unwrap_or("")))?;
    let mut out = BTreeMap::new();
    for ro in raw {
        let (id, name) = (text(&ro, "id"), text(&ro, "displayName"));
        dir.organizations.push(DirGroup { id: id.clone(), name: name.clone() });
        let mut live = LiveOrganization { id: id.clone(), internal: BTreeMap::new(), external: BTreeMap::new() };
        let mut org = ConnectedOrganization {
            description: opt_text(&ro, "description"),
            state: match ro["state"].as_str() {
                Some(s) if s.eq_ignore_ascii_case("proposed") => Some(OrganizationState::Proposed),
                Some(_) => Some(OrganizationState::Configured),
                None => None,
            },
            identity_sources: ro["identitySources"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(strip)
                .collect(),
            ..ConnectedOrganization::default()
        };
        for (list, into, sponsors) in [
            ("internalSponsors", &mut live.internal, &mut org.internal_sponsors),
            ("externalSponsors", &mut live.external, &mut org.external_sponsors),
        ] {
            for s in graph.list(&format!("{EM}/connectedOrganizations/{id}/{list}")).await? {
                let sid = text(&s, "id");
                let r = if s["@odata.type"].as_str().is_some_and(|t| t.ends_with("group")) {
                    SponsorRef { user: None, group: Some(text(&s, "displayName")) }
                } else {
                    SponsorRef { user: Some(dir.describe_user(&sid)), group: None }
                };
                into.insert(r.clone(), sid);
                sponsors.push(r);
            }
            sponsors.sort();
        }
        doc.connected_organizations.insert(name.clone(), org);
        out.insert(name, live);
    }
    Ok(out)
}

fn non_null(v: &Value) -> Option<Value> {
    (!v.is_null()).then(|| strip(v.clone()))
}

/// Drops what is the server's, not the configuration's: ids and OData annotations other
/// than `@odata.type`; and unset (null) properties, which only make the file longer.
fn strip(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, v)| k != "id" && !v.is_null() && !(k.starts_with("@odata.") && k != "@odata.type"))
                .map(|(k, v)| (k, strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip).collect()),
        other => other,
    }
}

/// Subject sets name users and groups: `userId` → `user` (UPN), `groupId` → `group`.
fn name_subjects(v: Value, dir: &Directory) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                match (k.as_str(), val.as_str()) {
                    ("userId", Some(id)) if dir.user(id).is_some_and(|u| !u.upn.is_empty()) => {
                        out.insert("user".into(), Value::String(dir.describe_user(id)));
                    }
                    ("connectedOrganizationId", Some(id)) if dir.organization(id).is_some() => {
                        out.insert(
                            "connectedOrganization".into(),
                            Value::String(dir.organization(id).map(|o| o.name.clone()).unwrap_or_default()),
                        );
                    }
                    ("groupId", Some(id)) if dir.group(id).is_some() => {
                        out.insert(
                            "group".into(),
                            Value::String(dir.group(id).map(|g| g.name.clone()).unwrap_or_default()),
                        );
                    }
                    _ => {
                        out.insert(k, name_subjects(val, dir));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| name_subjects(x, dir)).collect()),
        other => other,
    }
}

/// A policy as the server renders it (v1.0) → the file's policy.
pub fn policy_from_wire(raw: &Value, dir: &Directory, extensions: &BTreeMap<String, String>) -> anyhow::Result<Policy> {
    let setting = |key: &str| non_null(&raw[key]).map(|v| name_subjects(v, dir));
    let array = |key: &str| setting(key).and_then(|v| v.as_array().cloned());
    let stage_settings = match raw["customExtensionStageSettings"].as_array() {
        None => None,
        Some(list) => {
            let mut out = Vec::new();
            for s in list {
                let id = s["customExtension"]["id"].as_str().unwrap_or("");
                let name = extensions
                    .iter()
                    .find(|(_, eid)| eid.eq_ignore_ascii_case(id))
                    .map(|(n, _)| n.clone())
                    .with_context(|| {
                        format!(
                            "policy '{}' uses custom extension {id}, which its catalog does not list",
                            text(raw, "displayName")
                        )
                    })?;
                out.push(StageSetting { stage: text(s, "stage"), custom_extension: name });
            }
            Some(out)
        }
    };
    Ok(Policy {
        description: opt_text(raw, "description"),
        allowed_target_scope: serde_json::from_value(raw["allowedTargetScope"].clone()).ok(),
        specific_allowed_targets: array("specificAllowedTargets"),
        expiration: setting("expiration"),
        requestor_settings: setting("requestorSettings"),
        request_approval_settings: setting("requestApprovalSettings"),
        review_settings: setting("reviewSettings"),
        questions: array("questions"),
        automatic_request_settings: setting("automaticRequestSettings"),
        custom_extension_stage_settings: stage_settings,
    })
}
