//! `grantry plan`: the file against the server — every change, and for each, who gains
//! and who loses access. Bad input is refused here, before anything is written.

use super::client::Graph;
use super::document::*;
use super::live::{self, EM, Live};
use super::locate::{Seg, key, locate};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A problem in the file, where it is and what to do about it.
#[derive(Debug, Clone)]
pub struct InputError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// All the problems of a file, one a line.
#[derive(Debug)]
pub struct InputErrors(pub Vec<InputError>);

impl std::fmt::Display for InputErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputErrors {}

/// Parses the file; syntax, unknown keys and type errors come with their line.
pub fn parse(file: &str, text: &str) -> Result<Document, InputErrors> {
    serde_yaml_ng::from_str::<Document>(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        let mut message = e.to_string();
        // The location is given as FILE:LINE instead.
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        if message.contains("unknown field") {
            message.push_str(" (remove the key or correct its spelling)");
        } else if message.contains("unknown variant") {
            message.push_str(" (use one of the values listed)");
        } else if message.contains("invalid type") {
            message.push_str(" (write a value of the expected type)");
        }
        InputErrors(vec![InputError { file: file.to_string(), line, message }])
    })
}

/// One change, in the order `apply` makes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    CreateOrganization {
        organization: String,
    },
    UpdateOrganization {
        organization: String,
        id: String,
        changed: Vec<String>,
    },
    AddSponsor {
        organization: String,
        /// `internalSponsors` or `externalSponsors`.
        list: &'static str,
        sponsor: SponsorRef,
        sponsor_id: String,
    },
    CreateCatalog {
        catalog: String,
    },
    UpdateCatalog {
        catalog: String,
        id: String,
        changed: Vec<String>,
    },
    AddResource {
        catalog: String,
        group: String,
        group_id: String,
    },
    CreateExtension {
        catalog: String,
        name: String,
    },
    UpdateExtension {
        catalog: String,
        name: String,
        id: String,
        changed: Vec<String>,
    },
    CreatePackage {
        catalog: String,
        package: String,
    },
    UpdatePackage {
        catalog: String,
        package: String,
        id: String,
        changed: Vec<String>,
    },
    AddRoleScope {
        catalog: String,
        package: String,
        scope: RoleScopeRef,
        group_id: String,
    },
    AddIncompatiblePackage {
        catalog: String,
        package: String,
        other: (String, String),
    },
    AddIncompatibleGroup {
        catalog: String,
        package: String,
        group: String,
        group_id: String,
    },
    CreatePolicy {
        catalog: String,
        package: String,
        policy: String,
    },
    ReplacePolicy {
        catalog: String,
        package: String,
        policy: String,
        id: String,
        changed: Vec<String>,
    },
    // Removals come last: `apply` cannot take them back once made.
    RemoveIncompatiblePackage {
        catalog: String,
        package: String,
        other: (String, String),
        other_id: String,
    },
    RemoveIncompatibleGroup {
        catalog: String,
        package: String,
        group: String,
        group_id: String,
    },
    RemoveRoleScope {
        catalog: String,
        package: String,
        scope: RoleScopeRef,
        id: String,
    },
    DeletePolicy {
        catalog: String,
        package: String,
        policy: String,
        id: String,
    },
    DeletePackage {
        catalog: String,
        package: String,
        id: String,
    },
    DeleteExtension {
        catalog: String,
        name: String,
        id: String,
    },
    RemoveResource {
        catalog: String,
        group: String,
        group_id: String,
        /// A package of the catalog is deleted in the same plan (its role scopes may use
        /// the resource), so this runs after that deletion and cannot be undone either.
        after_deletion: bool,
    },
    DeleteCatalog {
        catalog: String,
        id: String,
    },
    RemoveSponsor {
        organization: String,
        organization_id: String,
        list: &'static str,
        sponsor: SponsorRef,
        sponsor_id: String,
    },
    DeleteOrganization {
        organization: String,
        id: String,
    },
    /// An assignment the changed policy no longer allows.
    RemoveAssignment {
        catalog: String,
        package: String,
        policy: String,
        assignment_id: String,
        user: String,
    },
}

impl Step {
    /// Whether `apply` can undo this step if a later one fails: everything but the steps
    /// whose effect cannot be made again as it was (a deleted package, custom extension or
    /// catalog would come back with a new id, an extension with a new signing secret; a
    /// removed assignment is access taken away). Those run last, after every other step
    /// succeeded and their preconditions were checked again.
    pub fn reversible(&self) -> bool {
        !matches!(
            self,
            Step::DeletePackage { .. }
                | Step::DeleteExtension { .. }
                | Step::DeleteCatalog { .. }
                | Step::RemoveAssignment { .. }
                | Step::RemoveResource { after_deletion: true, .. }
                | Step::DeleteOrganization { .. }
        )
    }

    pub fn describe(&self) -> String {
        let list = |c: &[String]| c.join(", ");
        match self {
            Step::CreateOrganization { organization } => format!("+ connected organization '{organization}'"),
            Step::UpdateOrganization { organization, changed, .. } => {
                format!("~ connected organization '{organization}': {} changed", list(changed))
            }
            Step::AddSponsor { organization, list, sponsor, .. } => {
                format!("+ {list} of '{organization}': {}", sponsor.describe())
            }
            Step::RemoveSponsor { organization, list, sponsor, .. } => {
                format!("- {list} of '{organization}': {}", sponsor.describe())
            }
            Step::DeleteOrganization { organization, .. } => format!("- connected organization '{organization}'"),
            Step::CreateCatalog { catalog } => format!("+ catalog '{catalog}'"),
            Step::UpdateCatalog { catalog, changed, .. } => format!("~ catalog '{catalog}': {} changed", list(changed)),
            Step::AddResource { catalog, group, .. } => format!("+ resource: group '{group}' in catalog '{catalog}'"),
            Step::CreateExtension { catalog, name } => format!("+ custom extension '{catalog} / {name}'"),
            Step::UpdateExtension { catalog, name, changed, .. } => {
                format!("~ custom extension '{catalog} / {name}': {} changed", list(changed))
            }
            Step::CreatePackage { catalog, package } => format!("+ access package '{catalog} / {package}'"),
            Step::UpdatePackage { catalog, package, changed, .. } => {
                format!("~ access package '{catalog} / {package}': {} changed", list(changed))
            }
            Step::AddRoleScope { catalog, package, scope, .. } => {
                format!("+ role scope: '{catalog} / {package}' grants {} of group '{}'", scope.role.name(), scope.group)
            }
            Step::AddIncompatiblePackage { catalog, package, other, .. } => {
                format!("+ incompatible: '{catalog} / {package}' with access package '{} / {}'", other.0, other.1)
            }
            Step::AddIncompatibleGroup { catalog, package, group, .. } => {
                format!("+ incompatible: '{catalog} / {package}' with group '{group}'")
            }
            Step::CreatePolicy { catalog, package, policy } => format!("+ policy '{catalog} / {package} / {policy}'"),
            Step::ReplacePolicy { catalog, package, policy, changed, .. } => {
                format!("~ policy '{catalog} / {package} / {policy}': {} changed", list(changed))
            }
            Step::RemoveIncompatiblePackage { catalog, package, other, .. } => {
                format!("- incompatible: '{catalog} / {package}' with access package '{} / {}'", other.0, other.1)
            }
            Step::RemoveIncompatibleGroup { catalog, package, group, .. } => {
                format!("- incompatible: '{catalog} / {package}' with group '{group}'")
            }
            Step::RemoveRoleScope { catalog, package, scope, .. } => {
                format!(
                    "- role scope: '{catalog} / {package}' no longer grants {} of group '{}'",
                    scope.role.name(),
                    scope.group
                )
            }
            Step::DeletePolicy { catalog, package, policy, .. } => {
                format!("- policy '{catalog} / {package} / {policy}'")
            }
            Step::DeletePackage { catalog, package, .. } => format!("- access package '{catalog} / {package}'"),
            Step::DeleteExtension { catalog, name, .. } => format!("- custom extension '{catalog} / {name}'"),
            Step::RemoveResource { catalog, group, .. } => {
                format!("- resource: group '{group}' from catalog '{catalog}'")
            }
            Step::DeleteCatalog { catalog, .. } => format!("- catalog '{catalog}'"),
            Step::RemoveAssignment { catalog, package, user, .. } => {
                format!("- assignment of '{catalog} / {package}' to {user}")
            }
        }
    }
}

/// What a change does to people.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Impact {
    pub headline: String,
    pub gain: Vec<String>,
    pub lose: Vec<String>,
}

#[derive(Debug)]
pub struct Plan {
    pub file: String,
    pub desired: Document,
    pub steps: Vec<Step>,
    /// By index of the step it explains.
    pub impacts: BTreeMap<usize, Impact>,
    /// A digest of the server state the plan was made against and of the plan itself;
    /// `apply --plan` refuses when it no longer matches.
    pub id: String,
    pub live: Live,
}

/// Plans `text` (the file `file`) against the server.
pub async fn plan(graph: &Graph, file: &str, text: &str, progress: &dyn Fn(&str)) -> anyhow::Result<Plan> {
    let desired = parse(file, text)?;
    let live = live::read(graph, progress).await?;
    validate(file, text, &desired, &live)?;
    progress("comparing");
    let mut steps = diff(&desired, &live)?;
    let mut impacts = BTreeMap::new();
    let mut people = People::default();
    let mut extra = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::ReplacePolicy { catalog, package, policy, id, changed } => {
                let scope_changed = changed.iter().any(|c| c == "allowedTargetScope" || c == "specificAllowedTargets");
                let Some(lp) = live.policy(catalog, package, policy) else { continue };
                let Some(new) = desired.catalogs[catalog].access_packages[package].policies.get(policy) else {
                    continue;
                };
                let new_wire = policy_body(new, &live.dir, &lp.raw)?;
                let old = Scope::of(&lp.raw);
                let new = Scope::of(&new_wire);
                if !scope_changed || old == new {
                    continue;
                }
                let assigned = people.assignments(graph, id).await?;
                let mut lose = Vec::new();
                for (assignment_id, user) in &assigned {
                    if people.fits(graph, &live.dir, &new, user).await? == Some(false) {
                        let shown = live.dir.describe_user(user);
                        lose.push(shown.clone());
                        extra.push(Step::RemoveAssignment {
                            catalog: catalog.clone(),
                            package: package.clone(),
                            policy: policy.clone(),
                            assignment_id: assignment_id.clone(),
                            user: shown,
                        });
                    }
                }
                let mut gain = Vec::new();
                for u in &live.dir.users {
                    if people.fits(graph, &live.dir, &new, &u.id).await? == Some(true)
                        && people.fits(graph, &live.dir, &old, &u.id).await? == Some(false)
                    {
                        gain.push(live.dir.describe_user(&u.id));
                    }
                }
                lose.sort();
                gain.sort();
                let headline = match (lose.is_empty(), gain.is_empty()) {
                    (false, _) => format!("scope narrowed, {} assignment(s) would be removed", lose.len()),
                    (true, false) => format!("scope widened, {} more user(s) may request it", gain.len()),
                    (true, true) => "scope changed; nobody gains or loses access".to_string(),
                };
                impacts.insert(i, Impact { headline, gain, lose });
            }
            Step::AddRoleScope { catalog, package, scope, .. }
            | Step::RemoveRoleScope { catalog, package, scope, .. } => {
                let Some(lp) = live.package(catalog, package) else { continue };
                let mut holders: Vec<String> = people
                    .package_assignees(graph, &lp.id)
                    .await?
                    .iter()
                    .map(|u| live.dir.describe_user(u))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                holders.sort();
                let what = format!("{} of group '{}'", scope.role.name(), scope.group);
                let impact = if matches!(step, Step::AddRoleScope { .. }) {
                    Impact {
                        headline: format!("{} assignee(s) gain {what}", holders.len()),
                        gain: holders,
                        lose: vec![],
                    }
                } else {
                    Impact {
                        headline: format!("{} assignee(s) no longer get {what} through this package", holders.len()),
                        gain: vec![],
                        lose: holders,
                    }
                };
                impacts.insert(i, impact);
            }
            Step::DeletePolicy { catalog, package, policy, id } => {
                let n = people.assignments(graph, id).await?.len();
                if n > 0 {
                    return Err(refusal(
                        file,
                        text,
                        &[key("catalogs"), key(catalog), key("accessPackages"), key(package), key("policies")],
                        format!(
                            "policy '{catalog} / {package} / {policy}' is not in the file, but {n} active assignment(s) were made through it; keep it and set its allowedTargetScope to exclude them (apply removes those assignments), then delete it"
                        ),
                    ));
                }
            }
            Step::DeletePackage { catalog, package, id } => {
                let n = people.package_assignees(graph, id).await?.len();
                if n > 0 {
                    return Err(refusal(
                        file,
                        text,
                        &[key("catalogs"), key(catalog), key("accessPackages")],
                        format!(
                            "access package '{catalog} / {package}' is not in the file, but it has {n} active assignment(s); remove them first (narrow its policies and apply), then delete it"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    steps.extend(extra);
    // The steps apply cannot undo go last, in the order they had among themselves, so that
    // everything else has succeeded (and can still be undone) when the first of them runs.
    // Impacts follow their steps.
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&i| !steps[i].reversible());
    let impacts =
        impacts.into_iter().filter_map(|(i, imp)| order.iter().position(|&o| o == i).map(|n| (n, imp))).collect();
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    let steps: Vec<Step> = order.iter().filter_map(|&i| slots[i].take()).collect();
    let id = fingerprint(&live, &steps, &impacts)?;
    Ok(Plan { file: file.to_string(), desired, steps, impacts, id, live })
}

fn refusal(file: &str, text: &str, path: &[Seg], message: String) -> anyhow::Error {
    InputErrors(vec![InputError { file: file.to_string(), line: locate(text, path), message }]).into()
}

impl Plan {
    /// The plan as shown to a person.
    pub fn render(&self, server: &str) -> String {
        let mut out = String::new();
        if self.steps.is_empty() {
            out.push_str(&format!("{}: no changes; {server} matches the file.\n", self.file));
        } else {
            out.push_str(&format!("{}: {} change(s) to {server}:\n", self.file, self.steps.len()));
        }
        for (i, step) in self.steps.iter().enumerate() {
            out.push_str(&format!("  {}\n", step.describe()));
            if let Some(impact) = self.impacts.get(&i) {
                out.push_str(&format!("      {}\n", impact.headline));
                if !impact.lose.is_empty() {
                    out.push_str(&format!("      lose access: {}\n", impact.lose.join(", ")));
                }
                if !impact.gain.is_empty() {
                    out.push_str(&format!("      gain access: {}\n", impact.gain.join(", ")));
                }
            }
        }
        out.push_str(&format!("plan {}\n", self.id));
        out
    }
}

/// SHA-256 over the server's configuration, the assignments the plan counted and the
/// plan's steps: any change on the server since the plan changes it.
fn fingerprint(live: &Live, steps: &[Step], impacts: &BTreeMap<usize, Impact>) -> anyhow::Result<String> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(serde_json::to_string(&live.doc)?.as_bytes());
    for (on, o) in &live.organizations {
        ctx.update(format!("{on}={};", o.id).as_bytes());
    }
    for (cn, c) in &live.catalogs {
        ctx.update(format!("{cn}={};", c.id).as_bytes());
        for (pn, p) in &c.packages {
            ctx.update(format!("{pn}={};", p.id).as_bytes());
            for (qn, q) in &p.policies {
                ctx.update(format!("{qn}={}:{};", q.id, q.raw["modifiedDateTime"]).as_bytes());
            }
        }
    }
    for s in steps {
        ctx.update(format!("{s:?}\n").as_bytes());
    }
    for (i, m) in impacts {
        ctx.update(format!("{i}:{m:?}\n").as_bytes());
    }
    let digest = ctx.finish();
    Ok(digest.as_ref().iter().take(12).map(|b| format!("{b:02x}")).collect())
}

// ---------------------------------------------------------------------------------------
// Validation: every reference resolves, before anything is written.

fn validate(file: &str, text: &str, doc: &Document, live: &Live) -> Result<(), InputErrors> {
    let mut errors = Vec::new();
    let mut err = |path: Vec<Seg>, message: String| {
        errors.push(InputError { file: file.to_string(), line: locate(text, &path), message });
    };
    for (on, o) in &doc.connected_organizations {
        let at = |rest: &[Seg]| {
            let mut p = vec![key("connectedOrganizations"), key(on)];
            p.extend_from_slice(rest);
            p
        };
        match live.doc.connected_organizations.get(on) {
            Some(h) if !o.identity_sources.is_empty() && o.identity_sources != h.identity_sources => err(
                at(&[key("identitySources")]),
                format!(
                    "the identity source of connected organization '{on}' cannot change; give the organization with the new one another name"
                ),
            ),
            None if o.identity_sources.len() != 1 => err(
                at(&[key("identitySources")]),
                format!(
                    "connected organization '{on}' needs exactly one identity source, e.g. `- {{\"@odata.type\": \"#microsoft.graph.domainIdentitySource\", domainName: fabrikam.com}}`"
                ),
            ),
            _ => {}
        }
        for (list, sponsors) in [("internalSponsors", &o.internal_sponsors), ("externalSponsors", &o.external_sponsors)]
        {
            for (i, s) in sponsors.iter().enumerate() {
                let problem = match (&s.user, &s.group) {
                    (Some(u), None) => live
                        .dir
                        .user_by_upn(u)
                        .is_none()
                        .then(|| format!("there is no user with userPrincipalName '{u}' in the directory")),
                    (None, Some(g)) => live.dir.group_by_name(g).err(),
                    _ => Some("a sponsor is either `user: UPN` or `group: NAME`".to_string()),
                };
                if let Some(p) = problem {
                    err(at(&[key(list), Seg::Index(i)]), format!("sponsor: {p}"));
                }
            }
        }
    }
    for (cn, c) in &doc.catalogs {
        let at = |rest: &[Seg]| {
            let mut p = vec![key("catalogs"), key(cn)];
            p.extend_from_slice(rest);
            p
        };
        let groups_in_catalog: BTreeSet<&str> = c.resources.iter().map(|r| r.group.as_str()).collect();
        for (i, r) in c.resources.iter().enumerate() {
            if let Err(e) = live.dir.group_by_name(&r.group) {
                err(at(&[key("resources"), Seg::Index(i), key("group")]), format!("resource: {e}"));
            }
        }
        for (pn, p) in &c.access_packages {
            let pat = |rest: &[Seg]| {
                let mut v = at(&[key("accessPackages"), key(pn)]);
                v.extend_from_slice(rest);
                v
            };
            for (i, rs) in p.role_scopes.iter().enumerate() {
                if !groups_in_catalog.contains(rs.group.as_str()) {
                    err(
                        pat(&[key("roleScopes"), Seg::Index(i), key("group")]),
                        format!(
                            "role scope names group '{}', which is not a resource of catalog '{cn}'; add `- group: {}` to its resources",
                            rs.group, rs.group
                        ),
                    );
                }
            }
            for (i, r) in p.incompatible_access_packages.iter().enumerate() {
                let ocn = r.catalog.as_deref().unwrap_or(cn);
                if !doc.catalogs.get(ocn).is_some_and(|oc| oc.access_packages.contains_key(&r.access_package)) {
                    err(
                        pat(&[key("incompatibleAccessPackages"), Seg::Index(i), key("accessPackage")]),
                        format!("there is no access package '{}' in catalog '{ocn}' in this file", r.access_package),
                    );
                }
            }
            for (i, g) in p.incompatible_groups.iter().enumerate() {
                if let Err(e) = live.dir.group_by_name(g) {
                    err(pat(&[key("incompatibleGroups"), Seg::Index(i)]), format!("incompatible group: {e}"));
                }
            }
            for (qn, q) in &p.policies {
                let qat = |rest: &[Seg]| {
                    let mut v = pat(&[key("policies"), key(qn)]);
                    v.extend_from_slice(rest);
                    v
                };
                for (i, s) in q.custom_extension_stage_settings.iter().flatten().enumerate() {
                    if !c.custom_extensions.contains_key(&s.custom_extension) {
                        err(
                            qat(&[key("customExtensionStageSettings"), Seg::Index(i), key("customExtension")]),
                            format!(
                                "there is no custom extension '{}' in catalog '{cn}'; define it under customExtensions",
                                s.custom_extension
                            ),
                        );
                    }
                }
                let mut unknown_subjects = false;
                for (setting, value) in q.settings() {
                    let mut found = Vec::new();
                    subjects(&value, &mut Vec::new(), &mut found);
                    for (path, kind, name) in found {
                        let problem =
                            match kind {
                                "user" => live.dir.user_by_upn(&name).is_none().then(|| {
                                    format!("there is no user with userPrincipalName '{name}' in the directory")
                                }),
                                "connectedOrganization" => (!doc.connected_organizations.contains_key(&name)).then(|| {
                                    format!("there is no connected organization '{name}' in this file; define it under connectedOrganizations")
                                }),
                                _ => live.dir.group_by_name(&name).err(),
                            };
                        if let Some(p) = problem {
                            unknown_subjects = true;
                            let mut full = qat(&[key(setting)]);
                            full.extend(path);
                            full.push(key(kind));
                            err(full, p);
                        }
                    }
                }
                // The settings as the server will read them, checked by the server's own
                // rules, so that a bad nested value is refused here, not half-way through
                // `apply`.
                if !unknown_subjects
                    && let Err(e) = check_policy(qn, q, live.policy(cn, pn, qn).map(|p| &p.raw), &live.dir)
                {
                    let mut full = qat(&[]);
                    full.extend(target_path(e.target.as_deref().unwrap_or_default()));
                    let what = e.target.as_deref().map(|t| format!("{t}: ")).unwrap_or_default();
                    err(full, format!("policy '{cn} / {pn} / {qn}': {what}{}", e.message));
                }
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(InputErrors(errors)) }
}

/// Checks policy `name` of the file as the server will: the body `apply` sends (the
/// server's current settings overlaid with the file's) read by the server's parser and
/// checked by its rules. Subjects must resolve (checked before).
fn check_policy(
    name: &str,
    q: &Policy,
    current: Option<&Value>,
    dir: &live::Directory,
) -> Result<(), grantry_domain::Error> {
    let mut body = policy_body(q, dir, current.unwrap_or(&Value::Null))
        .map_err(|e| grantry_domain::Error::bad_request("InvalidPolicy", e.to_string()))?;
    // An organization the apply is to create has no id yet: any id checks the same.
    placeholder_organizations(&mut body);
    if let Value::Object(b) = &mut body {
        b.insert("displayName".into(), Value::String(name.to_string()));
        b.insert("accessPackage".into(), serde_json::json!({ "id": "00000000-0000-0000-0000-000000000000" }));
    }
    let input = grantry_graph::policy::parse_policy(&grantry_graph::Body::root(&body)?, grantry_graph::Dialect::V1)?;
    let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    input.into_policy(String::new(), String::new(), String::new(), None, now, now).validate(false)
}

/// `connectedOrganization: NAME` (an organization not yet on the server) → a placeholder
/// `connectedOrganizationId`.
fn placeholder_organizations(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.remove("connectedOrganization").is_some() {
                m.insert(
                    "connectedOrganizationId".into(),
                    Value::String("00000000-0000-0000-0000-000000000000".into()),
                );
            }
            m.values_mut().for_each(placeholder_organizations);
        }
        Value::Array(a) => a.iter_mut().for_each(placeholder_organizations),
        _ => {}
    }
}

/// The key path of an error target such as `requestApprovalSettings.stages[1].primaryApprovers`.
fn target_path(target: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in target.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            out.push(key(&rest[..open]));
            rest = &rest[open..];
            while let Some(close) = rest.find(']') {
                if let Ok(i) = rest[1..close].parse() {
                    out.push(Seg::Index(i));
                }
                rest = &rest[close + 1..];
                if !rest.starts_with('[') {
                    break;
                }
            }
        } else {
            match rest.parse() {
                Ok(i) => out.push(Seg::Index(i)),
                Err(_) => out.push(key(rest)),
            }
        }
    }
    out
}

/// Every `user:` / `group:` subject below `v`, with its path.
fn subjects(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, &'static str, String)>) {
    match v {
        Value::Object(m) => {
            for kind in ["user", "group", "connectedOrganization"] {
                if let Some(Value::String(name)) = m.get(kind) {
                    out.push((path.clone(), kind, name.clone()));
                }
            }
            for (k, child) in m {
                path.push(key(k));
                subjects(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                subjects(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Subject names back to ids (`user` → `userId`, `group` → `groupId`); validated before.
pub fn ids_of_subjects(v: Value, dir: &live::Directory) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, val) in m {
                match (k.as_str(), val.as_str()) {
                    ("user", Some(upn)) => {
                        let id = dir.user_by_upn(upn).map(|u| u.id.clone()).unwrap_or_default();
                        out.insert("userId".into(), Value::String(id));
                    }
                    ("group", Some(name)) => {
                        let id = dir.group_by_name(name).map(|g| g.id.clone()).unwrap_or_default();
                        out.insert("groupId".into(), Value::String(id));
                    }
                    // An organization the apply creates has no id yet; `apply` resolves it.
                    ("connectedOrganization", Some(name)) if dir.organization_by_name(name).is_some() => {
                        let id = dir.organization_by_name(name).map(|o| o.id.clone()).unwrap_or_default();
                        out.insert("connectedOrganizationId".into(), Value::String(id));
                    }
                    _ => {
                        out.insert(k, ids_of_subjects(val, dir));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| ids_of_subjects(x, dir)).collect()),
        other => other,
    }
}

/// The Graph body of `policy` (without display name, package or stage settings): the
/// server's current settings (`current`, or nothing for a new policy) overlaid with the
/// file's.
pub fn policy_body(policy: &Policy, dir: &live::Directory, current: &Value) -> anyhow::Result<Value> {
    let mut body = serde_json::Map::new();
    for k in POLICY_SETTINGS {
        if *k != "customExtensionStageSettings"
            && let Some(v) = current.get(*k).filter(|v| !v.is_null())
        {
            body.insert(k.to_string(), v.clone());
        }
    }
    for (k, v) in policy.settings() {
        if k != "customExtensionStageSettings" {
            body.insert(k.to_string(), ids_of_subjects(v, dir));
        }
    }
    Ok(Value::Object(body))
}

// ---------------------------------------------------------------------------------------
// The difference between the file and the server.

fn changed_fields(pairs: &[(&str, Option<Value>, Option<Value>)]) -> Vec<String> {
    // A key left out of the file keeps the server's value.
    pairs.iter().filter(|(_, want, have)| want.is_some() && want != have).map(|(k, _, _)| k.to_string()).collect()
}

fn json<T: serde::Serialize>(v: &Option<T>) -> Option<Value> {
    v.as_ref().and_then(|v| serde_json::to_value(v).ok())
}

fn diff(want: &Document, live: &Live) -> anyhow::Result<Vec<Step>> {
    let have = &live.doc;
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    diff_organizations(want, live, &mut adds, &mut removes);
    for (cn, c) in &want.catalogs {
        let hc = have.catalogs.get(cn);
        let lc = live.catalogs.get(cn);
        match (hc, lc) {
            (Some(hc), Some(lc)) => {
                let changed = changed_fields(&[
                    ("description", json(&c.description), json(&hc.description)),
                    ("state", json(&c.state), json(&hc.state)),
                    ("isExternallyVisible", json(&c.is_externally_visible), json(&hc.is_externally_visible)),
                ]);
                if !changed.is_empty() {
                    adds.push(Step::UpdateCatalog { catalog: cn.clone(), id: lc.id.clone(), changed });
                }
            }
            _ => adds.push(Step::CreateCatalog { catalog: cn.clone() }),
        }
        let empty = Catalog::default();
        let hc = hc.unwrap_or(&empty);
        for r in &c.resources {
            if !hc.resources.contains(r) {
                let group_id = live.dir.group_by_name(&r.group).map(|g| g.id.clone()).unwrap_or_default();
                adds.push(Step::AddResource { catalog: cn.clone(), group: r.group.clone(), group_id });
            }
        }
        for (en, e) in &c.custom_extensions {
            match (hc.custom_extensions.get(en), lc.and_then(|l| l.extensions.get(en))) {
                (Some(he), Some(id)) => {
                    if he.kind != e.kind {
                        anyhow::bail!(
                            "custom extension '{cn} / {en}' is a {:?} on the server and a {:?} in the file; a type cannot change: give the new one another name",
                            he.kind,
                            e.kind
                        );
                    }
                    let changed = changed_fields(&[
                        ("description", json(&e.description), json(&he.description)),
                        ("endpointConfiguration", e.endpoint_configuration.clone(), he.endpoint_configuration.clone()),
                        (
                            "authenticationConfiguration",
                            e.authentication_configuration.clone(),
                            he.authentication_configuration.clone(),
                        ),
                        ("callbackConfiguration", e.callback_configuration.clone(), he.callback_configuration.clone()),
                    ]);
                    if !changed.is_empty() {
                        adds.push(Step::UpdateExtension {
                            catalog: cn.clone(),
                            name: en.clone(),
                            id: id.clone(),
                            changed,
                        });
                    }
                }
                _ => adds.push(Step::CreateExtension { catalog: cn.clone(), name: en.clone() }),
            }
        }
        for (pn, p) in &c.access_packages {
            let hp = hc.access_packages.get(pn);
            let lp = lc.and_then(|l| l.packages.get(pn));
            match (hp, lp) {
                (Some(hp), Some(lp)) => {
                    let changed = changed_fields(&[
                        ("description", json(&p.description), json(&hp.description)),
                        ("isHidden", json(&p.is_hidden), json(&hp.is_hidden)),
                    ]);
                    if !changed.is_empty() {
                        adds.push(Step::UpdatePackage {
                            catalog: cn.clone(),
                            package: pn.clone(),
                            id: lp.id.clone(),
                            changed,
                        });
                    }
                }
                _ => adds.push(Step::CreatePackage { catalog: cn.clone(), package: pn.clone() }),
            }
            let empty = Package::default();
            let hp = hp.unwrap_or(&empty);
            for rs in &p.role_scopes {
                if !hp.role_scopes.contains(rs) {
                    let group_id = live.dir.group_by_name(&rs.group).map(|g| g.id.clone()).unwrap_or_default();
                    adds.push(Step::AddRoleScope {
                        catalog: cn.clone(),
                        package: pn.clone(),
                        scope: rs.clone(),
                        group_id,
                    });
                }
            }
            for rs in &hp.role_scopes {
                if !p.role_scopes.contains(rs)
                    && let Some(id) = lp.and_then(|l| l.role_scopes.get(rs))
                {
                    removes.push(Step::RemoveRoleScope {
                        catalog: cn.clone(),
                        package: pn.clone(),
                        scope: rs.clone(),
                        id: id.clone(),
                    });
                }
            }
            let norm = |r: &PackageRef| (r.catalog.clone().unwrap_or_else(|| cn.clone()), r.access_package.clone());
            let want_inc: BTreeSet<(String, String)> = p.incompatible_access_packages.iter().map(norm).collect();
            let have_inc: BTreeSet<(String, String)> = hp.incompatible_access_packages.iter().map(norm).collect();
            for other in want_inc.difference(&have_inc) {
                adds.push(Step::AddIncompatiblePackage {
                    catalog: cn.clone(),
                    package: pn.clone(),
                    other: other.clone(),
                });
            }
            for other in have_inc.difference(&want_inc) {
                if let Some(o) = live.package(&other.0, &other.1) {
                    removes.push(Step::RemoveIncompatiblePackage {
                        catalog: cn.clone(),
                        package: pn.clone(),
                        other: other.clone(),
                        other_id: o.id.clone(),
                    });
                }
            }
            for g in &p.incompatible_groups {
                if !hp.incompatible_groups.contains(g) {
                    let group_id = live.dir.group_by_name(g).map(|g| g.id.clone()).unwrap_or_default();
                    adds.push(Step::AddIncompatibleGroup {
                        catalog: cn.clone(),
                        package: pn.clone(),
                        group: g.clone(),
                        group_id,
                    });
                }
            }
            for g in &hp.incompatible_groups {
                if !p.incompatible_groups.contains(g)
                    && let Ok(dg) = live.dir.group_by_name(g)
                {
                    removes.push(Step::RemoveIncompatibleGroup {
                        catalog: cn.clone(),
                        package: pn.clone(),
                        group: g.clone(),
                        group_id: dg.id.clone(),
                    });
                }
            }
            for (qn, q) in &p.policies {
                match (hp.policies.get(qn), lp.and_then(|l| l.policies.get(qn))) {
                    (Some(hq), Some(lq)) => {
                        let want = q.settings();
                        let have = hq.settings();
                        let changed: Vec<String> =
                            want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, _)| k.to_string()).collect();
                        if !changed.is_empty() {
                            adds.push(Step::ReplacePolicy {
                                catalog: cn.clone(),
                                package: pn.clone(),
                                policy: qn.clone(),
                                id: lq.id.clone(),
                                changed,
                            });
                        }
                    }
                    _ => adds.push(Step::CreatePolicy { catalog: cn.clone(), package: pn.clone(), policy: qn.clone() }),
                }
            }
            if let Some(lp) = lp {
                for (qn, lq) in &lp.policies {
                    if !p.policies.contains_key(qn) {
                        removes.push(Step::DeletePolicy {
                            catalog: cn.clone(),
                            package: pn.clone(),
                            policy: qn.clone(),
                            id: lq.id.clone(),
                        });
                    }
                }
            }
        }
        if let Some(lc) = lc {
            // A package or extension left out is deleted (with its policies and scopes).
            for (pn, lp) in &lc.packages {
                if !c.access_packages.contains_key(pn) {
                    removes.push(Step::DeletePackage { catalog: cn.clone(), package: pn.clone(), id: lp.id.clone() });
                }
            }
            for (en, id) in &lc.extensions {
                if !c.custom_extensions.contains_key(en) {
                    removes.push(Step::DeleteExtension { catalog: cn.clone(), name: en.clone(), id: id.clone() });
                }
            }
            for r in &hc.resources {
                if !c.resources.contains(r)
                    && let Ok(g) = live.dir.group_by_name(&r.group)
                {
                    removes.push(Step::RemoveResource {
                        catalog: cn.clone(),
                        group: r.group.clone(),
                        group_id: g.id.clone(),
                        after_deletion: false,
                    });
                }
            }
        }
    }
    for (cn, lc) in &live.catalogs {
        // The built-in catalog cannot be deleted; one left out of the file is left alone.
        if want.catalogs.contains_key(cn) || lc.built_in {
            continue;
        }
        for (pn, lp) in &lc.packages {
            removes.push(Step::DeletePackage { catalog: cn.clone(), package: pn.clone(), id: lp.id.clone() });
        }
        for (en, id) in &lc.extensions {
            removes.push(Step::DeleteExtension { catalog: cn.clone(), name: en.clone(), id: id.clone() });
        }
        for group in lc.resources.keys() {
            if let Some(g) = live.dir.groups.iter().find(|g| &g.name == group) {
                removes.push(Step::RemoveResource {
                    catalog: cn.clone(),
                    group: group.clone(),
                    group_id: g.id.clone(),
                    after_deletion: false,
                });
            }
        }
        removes.push(Step::DeleteCatalog { catalog: cn.clone(), id: lc.id.clone() });
    }
    // Removals run in dependency order: what uses a thing goes before the thing.
    let rank = |s: &Step| -> u8 {
        match s {
            Step::RemoveIncompatiblePackage { .. } | Step::RemoveIncompatibleGroup { .. } => 0,
            Step::RemoveRoleScope { .. } => 1,
            Step::DeletePolicy { .. } => 2,
            Step::DeletePackage { .. } => 3,
            Step::DeleteExtension { .. } => 4,
            Step::RemoveResource { .. } => 5,
            Step::RemoveSponsor { .. } => 7,
            Step::DeleteOrganization { .. } => 8,
            _ => 6,
        }
    };
    removes.sort_by_key(rank);
    // A deleted package takes its policies, scopes and incompatibilities with it.
    let deleted: BTreeSet<(String, String)> = removes
        .iter()
        .filter_map(|s| match s {
            Step::DeletePackage { catalog, package, .. } => Some((catalog.clone(), package.clone())),
            _ => None,
        })
        .collect();
    removes.retain(|s| match s {
        Step::RemoveIncompatiblePackage { catalog, package, .. }
        | Step::RemoveIncompatibleGroup { catalog, package, .. }
        | Step::RemoveRoleScope { catalog, package, .. }
        | Step::DeletePolicy { catalog, package, .. } => !deleted.contains(&(catalog.clone(), package.clone())),
        _ => true,
    });
    let deleting: BTreeSet<String> = deleted.iter().map(|(c, _)| c.clone()).collect();
    for s in &mut removes {
        if let Step::RemoveResource { catalog, after_deletion, .. } = s {
            *after_deletion = deleting.contains(catalog);
        }
    }
    // Additions in dependency order too: every package exists before any incompatibility
    // names it, every extension before a policy uses it (the sort keeps names' order).
    let rank = |s: &Step| -> u8 {
        match s {
            Step::CreateOrganization { .. } | Step::UpdateOrganization { .. } | Step::AddSponsor { .. } => 0,
            Step::CreateCatalog { .. } | Step::UpdateCatalog { .. } => 0,
            Step::AddResource { .. } => 1,
            Step::CreateExtension { .. } | Step::UpdateExtension { .. } => 2,
            Step::CreatePackage { .. } | Step::UpdatePackage { .. } => 3,
            Step::AddRoleScope { .. } => 4,
            Step::AddIncompatiblePackage { .. } | Step::AddIncompatibleGroup { .. } => 5,
            _ => 6,
        }
    };
    adds.sort_by_key(rank);
    adds.extend(removes);
    Ok(adds)
}

/// Connected organizations and their sponsors: additions first (before any policy names an
/// organization), removals after every policy change.
fn diff_organizations(want: &Document, live: &Live, adds: &mut Vec<Step>, removes: &mut Vec<Step>) {
    let have = &live.doc;
    for (on, o) in &want.connected_organizations {
        let lo = live.organizations.get(on);
        let empty = ConnectedOrganization::default();
        let ho = match (have.connected_organizations.get(on), lo) {
            (Some(ho), Some(lo)) => {
                let changed = changed_fields(&[
                    ("description", json(&o.description), json(&ho.description)),
                    ("state", json(&o.state), json(&ho.state)),
                ]);
                if !changed.is_empty() {
                    adds.push(Step::UpdateOrganization { organization: on.clone(), id: lo.id.clone(), changed });
                }
                ho
            }
            _ => {
                adds.push(Step::CreateOrganization { organization: on.clone() });
                &empty
            }
        };
        for (list, wanted, held, ids) in [
            ("internalSponsors", &o.internal_sponsors, &ho.internal_sponsors, lo.map(|l| &l.internal)),
            ("externalSponsors", &o.external_sponsors, &ho.external_sponsors, lo.map(|l| &l.external)),
        ] {
            for s in wanted {
                if !held.contains(s) {
                    let sponsor_id = live.dir.sponsor_id(s).unwrap_or_default();
                    adds.push(Step::AddSponsor { organization: on.clone(), list, sponsor: s.clone(), sponsor_id });
                }
            }
            if let (Some(lo), Some(ids)) = (lo, ids) {
                for s in held {
                    if !wanted.contains(s)
                        && let Some(sid) = ids.get(s)
                    {
                        removes.push(Step::RemoveSponsor {
                            organization: on.clone(),
                            organization_id: lo.id.clone(),
                            list,
                            sponsor: s.clone(),
                            sponsor_id: sid.clone(),
                        });
                    }
                }
            }
        }
    }
    for (on, lo) in &live.organizations {
        if !want.connected_organizations.contains_key(on) {
            removes.push(Step::DeleteOrganization { organization: on.clone(), id: lo.id.clone() });
        }
    }
}

// ---------------------------------------------------------------------------------------
// Who a policy lets in.

/// The part of a policy (wire form, with ids) that decides who may have it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    target: String,
    users: BTreeSet<String>,
    groups: BTreeSet<String>,
    /// Subject sets this tool cannot evaluate (managers, sponsors, connected organizations).
    other: bool,
}

impl Scope {
    pub fn of(policy: &Value) -> Scope {
        let mut s = Scope {
            target: policy["allowedTargetScope"].as_str().unwrap_or("notSpecified").to_string(),
            users: BTreeSet::new(),
            groups: BTreeSet::new(),
            other: false,
        };
        for t in policy["specificAllowedTargets"].as_array().into_iter().flatten() {
            match (t["@odata.type"].as_str().unwrap_or(""), t["userId"].as_str(), t["groupId"].as_str()) {
                ("#microsoft.graph.singleUser", Some(id), _) => {
                    s.users.insert(id.to_ascii_lowercase());
                }
                ("#microsoft.graph.groupMembers", _, Some(id)) => {
                    s.groups.insert(id.to_ascii_lowercase());
                }
                _ => s.other = true,
            }
        }
        s
    }
}

/// Assignments, group members and verdicts read once per plan.
#[derive(Default)]
struct People {
    members: HashMap<String, BTreeSet<String>>,
}

impl People {
    /// (assignment id, user id) of the delivered assignments made through a policy.
    async fn assignments(&mut self, graph: &Graph, policy_id: &str) -> anyhow::Result<Vec<(String, String)>> {
        let path = format!(
            "{EM}/assignments?$filter=assignmentPolicy/id eq '{policy_id}' and state eq 'delivered'&$expand=target"
        );
        Ok(graph
            .list(&path)
            .await?
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap_or_default().to_string(),
                    a["target"]["objectId"].as_str().unwrap_or_default().to_ascii_lowercase(),
                )
            })
            .collect())
    }

    async fn package_assignees(&mut self, graph: &Graph, package_id: &str) -> anyhow::Result<Vec<String>> {
        let path = format!(
            "{EM}/assignments?$filter=accessPackage/id eq '{package_id}' and state eq 'delivered'&$expand=target"
        );
        Ok(graph
            .list(&path)
            .await?
            .iter()
            .map(|a| a["target"]["objectId"].as_str().unwrap_or_default().to_ascii_lowercase())
            .collect())
    }

    /// Whether the policy's scope lets `user` have it; `None` when this tool cannot tell.
    async fn fits(
        &mut self,
        graph: &Graph,
        dir: &live::Directory,
        scope: &Scope,
        user: &str,
    ) -> anyhow::Result<Option<bool>> {
        let user_type = dir.user(user).map(|u| u.user_type.as_str()).unwrap_or("Member");
        Ok(match scope.target.as_str() {
            // Assigned by administrators only: the scope says nothing about who may hold it.
            "notSpecified" => Some(true),
            "allDirectoryUsers" => Some(true),
            "allMemberUsers" => Some(user_type.eq_ignore_ascii_case("Member")),
            "allExternalUsers" | "allConfiguredConnectedOrganizationUsers" => {
                Some(user_type.eq_ignore_ascii_case("Guest"))
            }
            "specificDirectoryUsers" => {
                if scope.users.contains(user) {
                    return Ok(Some(true));
                }
                for g in &scope.groups {
                    if !self.members.contains_key(g) {
                        let ids = graph
                            .list(&format!("/groups/{g}/members"))
                            .await?
                            .iter()
                            .filter_map(|m| m["id"].as_str().map(str::to_ascii_lowercase))
                            .collect();
                        self.members.insert(g.clone(), ids);
                    }
                    if self.members[g].contains(user) {
                        return Ok(Some(true));
                    }
                }
                if scope.other { None } else { Some(false) }
            }
            _ => None,
        })
    }
}
