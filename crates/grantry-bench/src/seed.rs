//! Seeds a benchmark dataset straight through the store (bulk `repo::insert` in large
//! write batches) and records the ids the scenarios need in `manifest.json`.
//!
//! Shape: one published catalog; `groups` security groups, each a catalog resource with its
//! Member role; `packages` access packages, package `i` granting Member of group `i % groups`,
//! each with one admin-only policy. Users `0..assigned` have an assignment to package 0 (the
//! "hot" package, used for deep paging) plus a few more; users `assigned..users` ("fresh") have
//! none and are the targets of new requests. A slice of the extra assignments expires at
//! `expire_at` (with its `assignment.expire` job), for the mass-expiry scenario.
//!
//! For B3 every package also has a self-service policy: all member users may request it,
//! with one approval stage whose approver is one of `APPROVERS` dedicated approver users
//! (package `i` is approved by approver `i % APPROVERS`).
//!
//! The database is SQLite at `dir/grantry.db`, or the PostgreSQL database given with
//! `--database-url` (which must hold no dataset yet); the manifest stays in `dir`.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use grantry_domain::enums::*;
use grantry_domain::model::*;
use grantry_store::{Conn, Location, Store, StoreOptions, Value, repo};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// Sizes of a dataset.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Sizes {
    pub users: usize,
    pub packages: usize,
    pub assignments: usize,
    pub groups: usize,
    /// Users with no assignment, the targets of new requests.
    pub fresh_users: usize,
    /// Assignments that all expire at the same moment.
    pub expiring: usize,
}

impl Sizes {
    /// The large dataset (1,000,000 assignments, 20,000 packages, 300,000 users) times `scale`.
    pub fn scaled(scale: f64) -> Sizes {
        let s = |n: f64| ((n * scale).round() as usize).max(1);
        let users = s(300_000.0).max(100);
        let packages = s(20_000.0).max(10);
        let assignments = s(1_000_000.0).max(users);
        Sizes {
            users,
            packages,
            assignments,
            groups: packages.clamp(1, 100),
            fresh_users: (users / 10).max(50),
            expiring: assignments / 20,
        }
    }

    pub fn named(name: &str) -> anyhow::Result<Sizes> {
        Ok(match name {
            "small" => Sizes::scaled(0.01),
            "medium" => Sizes::scaled(0.1),
            "large" => Sizes::scaled(1.0),
            other => anyhow::bail!("unknown dataset '{other}': use small, medium or large (or --scale)"),
        })
    }
}

/// Dedicated approver users of the self-service (approval) policies.
pub const APPROVERS: usize = 8;

/// Version of `manifest.json`. 2: self-service approval policies and approvers (B3), and
/// the database the dataset lives in.
pub const MANIFEST_FORMAT: u32 = 2;

/// What the scenarios need to know about a seeded database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Where the dataset was seeded (`sqlite:PATH` or the PostgreSQL URL without password).
    pub database: String,
    pub sizes: Sizes,
    pub catalog_id: String,
    pub group_ids: Vec<String>,
    pub package_ids: Vec<String>,
    /// The admin-only policy of each package (same order as `package_ids`).
    pub policy_ids: Vec<String>,
    /// The self-service policy of each package, with one approval stage (same order).
    pub approval_policy_ids: Vec<String>,
    /// The approver users; package `i`'s approver is `approver_ids[i % APPROVERS]`.
    pub approver_ids: Vec<String>,
    pub user_ids: Vec<String>,
    /// When the expiring slice of assignments ends.
    pub expire_at: DateTime<Utc>,
    /// Fresh (user, package) pairs already used by earlier runs on this database.
    pub pairs_used: u64,
    pub seed_secs: f64,
    pub rows: u64,
}

impl Manifest {
    pub fn fresh_count(&self) -> usize {
        self.sizes.fresh_users
    }
    pub fn assigned_count(&self) -> usize {
        self.sizes.users - self.sizes.fresh_users
    }
    /// The `n`th never-assigned (user, package index) pair.
    pub fn fresh_pair(&self, n: u64) -> (&str, usize) {
        let f = self.fresh_count() as u64;
        let user = &self.user_ids[self.assigned_count() + (n % f) as usize];
        let package = ((n / f) % self.package_ids.len() as u64) as usize;
        (user, package)
    }
    /// Packages of assigned user `u` besides the hot package 0.
    pub fn extra_packages(&self, u: usize) -> impl Iterator<Item = usize> + use<> {
        let assigned = self.assigned_count();
        let extra_total = self.sizes.assignments.saturating_sub(assigned);
        let per = extra_total / assigned.max(1);
        let k = per + usize::from(u < extra_total % assigned.max(1));
        let k = k.min(self.package_ids.len() - 1);
        let p = self.package_ids.len() - 1;
        (0..k).map(move |j| 1 + (u.wrapping_mul(13) + j) % p)
    }
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::write(dir.join("manifest.json"), serde_json::to_vec(self)?).context("write manifest")
    }
    pub fn read(dir: &Path) -> anyhow::Result<Option<Manifest>> {
        let path = dir.join("manifest.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let doc: serde_json::Value =
            serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", path.display()))?;
        let format = doc.get("format").and_then(|f| f.as_u64()).unwrap_or(1);
        if format != u64::from(MANIFEST_FORMAT) {
            anyhow::bail!(
                "{} describes a dataset in format {format}, but this grantry-bench needs format {MANIFEST_FORMAT} \
                 (it adds the approval policies and approvers B3 uses); seed again into a fresh --data-dir \
                 (and a fresh database with --database-url)",
                path.display()
            );
        }
        let m = serde_json::from_value(doc).with_context(|| format!("{} is not a valid manifest", path.display()))?;
        Ok(Some(m))
    }
}

pub fn id_n(prefix: u32, n: usize) -> String {
    // Deterministic, UUID-shaped ids: readable in logs and cheap to make.
    format!("{prefix:08x}-0000-4000-8000-{n:012x}")
}

const BATCH: usize = 5_000;

/// Inserts `items` in write batches of `BATCH`, `make` turning one into its rows.
async fn bulk<T, F>(store: &Store, items: Vec<T>, make: F) -> anyhow::Result<u64>
where
    T: Send + 'static,
    F: Fn(&mut dyn Conn, T) -> grantry_domain::Result<u64> + Send + Sync + Clone + 'static,
{
    let mut rows = 0;
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<T> = it.by_ref().take(BATCH).collect();
        let make = make.clone();
        rows += store
            .write(move |c| {
                let mut n = 0;
                for x in chunk {
                    n += make(c, x)?;
                }
                Ok(n)
            })
            .await
            .map_err(|e| anyhow::anyhow!("seeding failed: {}", e.message))?;
    }
    Ok(rows)
}

/// Creates the dataset in `location` (SQLite: a new file; PostgreSQL: a database holding no
/// dataset yet) and writes its manifest into `dir`; returns the manifest.
pub async fn seed(dir: &Path, location: &Location, sizes: Sizes) -> anyhow::Result<Manifest> {
    let started = Instant::now();
    let store = Store::open_location(location, StoreOptions::default())
        .map_err(|e| anyhow::anyhow!("open {}: {}", location.describe(), e.message))?;
    let existing = store
        .read(|c| Ok(c.query_one("SELECT COUNT(*) FROM catalogs", &[])?.map(|r| r.int(0)).transpose()?.unwrap_or(0)))
        .await
        .map_err(|e| anyhow::anyhow!("read {}: {}", location.describe(), e.message))?;
    if existing > 0 {
        anyhow::bail!(
            "{} already holds data ({existing} catalogs) but {} has no manifest of it; seed into an empty database \
             (e.g. createdb a new one) or pass the --data-dir it was seeded with",
            location.describe(),
            dir.display()
        );
    }
    #[allow(clippy::disallowed_methods)] // the dataset is dated by the wall clock it is made at
    let now = grantry_domain::clock::truncate_micros(Utc::now());
    let expire_at = now + Duration::days(30);
    let catalog_id = id_n(0xca7a1, 0);
    let group_ids: Vec<String> = (0..sizes.groups).map(|g| id_n(0x6e0, g)).collect();
    let package_ids: Vec<String> = (0..sizes.packages).map(|p| id_n(0xacc, p)).collect();
    let policy_ids: Vec<String> = (0..sizes.packages).map(|p| id_n(0x9011c, p)).collect();
    let approval_policy_ids: Vec<String> = (0..sizes.packages).map(|p| id_n(0xa9901c, p)).collect();
    let approver_ids: Vec<String> = (0..APPROVERS).map(|a| id_n(0xa99e, a)).collect();
    let user_ids: Vec<String> = (0..sizes.users).map(|u| id_n(0x05e7, u)).collect();
    let mut manifest = Manifest {
        format: MANIFEST_FORMAT,
        database: location.describe(),
        sizes,
        catalog_id: catalog_id.clone(),
        group_ids: group_ids.clone(),
        package_ids: package_ids.clone(),
        policy_ids: policy_ids.clone(),
        approval_policy_ids,
        approver_ids: approver_ids.clone(),
        user_ids: user_ids.clone(),
        expire_at,
        pairs_used: 0,
        seed_secs: 0.0,
        rows: 0,
    };
    let mut rows = 0u64;

    // Catalog, groups and their catalog resources.
    let cat = catalog_id.clone();
    let groups: Vec<(usize, String)> = group_ids.iter().cloned().enumerate().collect();
    let approvers = approver_ids.clone();
    rows += store
        .write(move |c| {
            repo::insert(
                c,
                &Catalog {
                    id: cat.clone(),
                    display_name: "Benchmark".into(),
                    description: Some("Benchmark dataset".into()),
                    is_externally_visible: false,
                    state: CatalogState::Published,
                    catalog_type: CatalogType::UserManaged,
                    unique_name: None,
                    created_by: None,
                    modified_by: None,
                    created_date_time: now,
                    modified_date_time: now,
                },
            )?;
            let mut n = 1;
            for (a, id) in approvers.iter().enumerate() {
                let upn = format!("approver{a}@bench.example");
                repo::insert(
                    c,
                    &User {
                        id: id.clone(),
                        display_name: format!("Approver {a}"),
                        user_principal_name: upn.clone(),
                        mail: Some(upn),
                        given_name: None,
                        surname: None,
                        job_title: None,
                        department: None,
                        mail_nickname: Some(format!("approver{a}")),
                        user_type: UserType::Member,
                        account_enabled: true,
                        manager_id: None,
                        external_user_state: None,
                        profile: Default::default(),
                        created_date_time: now,
                    },
                )?;
                n += 1;
            }
            for (g, gid) in groups {
                repo::insert(
                    c,
                    &Group {
                        id: gid.clone(),
                        display_name: format!("Group {g}"),
                        description: None,
                        mail_nickname: Some(format!("group{g}")),
                        mail: None,
                        mail_enabled: false,
                        security_enabled: true,
                        group_types: vec![],
                        visibility: None,
                        created_date_time: now,
                    },
                )?;
                repo::insert(
                    c,
                    &Resource {
                        id: id_n(0x7e5, g),
                        catalog_id: cat.clone(),
                        origin_id: gid.clone(),
                        origin_system: "AadGroup".into(),
                        display_name: Some(format!("Group {g}")),
                        description: None,
                        resource_type: Some("Security Group".into()),
                        url: None,
                        attributes: vec![],
                        added_by: None,
                        created_date_time: now,
                        modified_date_time: now,
                    },
                )?;
                repo::insert(
                    c,
                    &ResourceRole {
                        id: id_n(0x701e, g),
                        resource_id: id_n(0x7e5, g),
                        catalog_id: cat.clone(),
                        origin_id: format!("Member_{gid}"),
                        origin_system: "AadGroup".into(),
                        display_name: "Member".into(),
                        description: None,
                    },
                )?;
                repo::insert(
                    c,
                    &ResourceScope {
                        id: id_n(0x5c0, g),
                        resource_id: id_n(0x7e5, g),
                        catalog_id: cat.clone(),
                        origin_id: gid.clone(),
                        origin_system: "AadGroup".into(),
                        display_name: None,
                        description: None,
                        is_root_scope: true,
                    },
                )?;
                n += 4;
            }
            Ok(n)
        })
        .await
        .map_err(|e| anyhow::anyhow!("seeding failed: {}", e.message))?;

    // Packages, their role scope and policy.
    let groups_n = sizes.groups;
    let cat = catalog_id.clone();
    let items: Vec<usize> = (0..sizes.packages).collect();
    rows += bulk(&store, items, move |c, p| {
        let package_id = id_n(0xacc, p);
        repo::insert(
            c,
            &AccessPackage {
                id: package_id.clone(),
                catalog_id: cat.clone(),
                display_name: format!("Package {p}"),
                description: Some(format!("Benchmark package {p}")),
                is_hidden: false,
                is_role_scopes_visible: false,
                unique_name: None,
                created_by: None,
                modified_by: None,
                created_date_time: now,
                modified_date_time: now,
            },
        )?;
        let g = p % groups_n;
        let (role_id, scope_id) = (id_n(0x701e, g), id_n(0x5c0, g));
        repo::insert(
            c,
            &RoleScope {
                id: RoleScope::make_id(&role_id, &scope_id),
                access_package_id: package_id.clone(),
                role_id,
                scope_id,
                created_by: None,
                created_date_time: now,
            },
        )?;
        repo::insert(c, &admin_policy(&id_n(0x9011c, p), &package_id, &cat, now))?;
        let approver = id_n(0xa99e, p % APPROVERS);
        repo::insert(c, &approval_policy(&id_n(0xa9901c, p), &package_id, &cat, &approver, now))?;
        Ok(4)
    })
    .await?;

    // Users (and, for assigned users, their subject: a directory user's subject id is
    // their object id).
    let assigned = sizes.users - sizes.fresh_users;
    let items: Vec<usize> = (0..sizes.users).collect();
    rows += bulk(&store, items, move |c, u| {
        let id = id_n(0x05e7, u);
        let upn = format!("user{u}@bench.example");
        repo::insert(
            c,
            &User {
                id: id.clone(),
                display_name: format!("User {u}"),
                user_principal_name: upn.clone(),
                mail: Some(upn.clone()),
                given_name: None,
                surname: None,
                job_title: None,
                department: Some(format!("Dept {}", u % 50)),
                mail_nickname: Some(format!("user{u}")),
                user_type: UserType::Member,
                account_enabled: true,
                manager_id: None,
                external_user_state: None,
                profile: Default::default(),
                created_date_time: now,
            },
        )?;
        if u < assigned {
            repo::insert(
                c,
                &Subject {
                    id: id.clone(),
                    object_id: Some(id),
                    email: Some(upn.clone()),
                    display_name: Some(format!("User {u}")),
                    principal_name: Some(upn),
                    subject_type: SubjectType::User,
                    subject_lifecycle: SubjectLifecycle::NotDefined,
                    connected_organization_id: None,
                    created_date_time: now,
                },
            )?;
            return Ok(2);
        }
        Ok(1)
    })
    .await?;

    // Assignments with their delivered resource role; memberships counted per (group, user).
    let mut work: Vec<(usize, usize, bool)> = Vec::with_capacity(sizes.assignments);
    for u in 0..assigned {
        work.push((u, 0, false));
        for p in manifest.extra_packages(u) {
            work.push((u, p, false));
        }
    }
    // The expiring slice: every 20th extra assignment (spread over users and packages), or,
    // when more are asked for (`--expiring`), that many spread evenly over all of them.
    let mut expiring = 0;
    let total = work.len().max(1);
    let default_slice = sizes.expiring <= sizes.assignments / 20;
    for (i, w) in work.iter_mut().enumerate() {
        let pick = if default_slice { w.1 != 0 && i % 20 == 7 } else { (i * sizes.expiring) % total < sizes.expiring };
        if pick && expiring < sizes.expiring {
            w.2 = true;
            expiring += 1;
        }
    }
    let mut links: HashMap<(usize, usize), i64> = HashMap::new();
    for (u, p, _) in &work {
        *links.entry((p % groups_n, *u)).or_default() += 1;
    }
    let cat = catalog_id.clone();
    let items: Vec<(usize, (usize, usize, bool))> = work.into_iter().enumerate().collect();
    rows += bulk(&store, items, move |c, (i, (u, p, expires))| {
        let g = p % groups_n;
        let assignment_id = id_n(0xa551, i);
        let subject_id = id_n(0x05e7, u);
        let package_id = id_n(0xacc, p);
        let mut schedule = Schedule { start_date_time: Some(now), ..Default::default() };
        schedule.expiration = if expires {
            Expiration { kind: ExpirationType::AfterDateTime, end_date_time: Some(expire_at), duration: None }
        } else {
            Expiration::never()
        };
        let a = Assignment {
            id: assignment_id.clone(),
            access_package_id: package_id.clone(),
            catalog_id: cat.clone(),
            policy_id: id_n(0x9011c, p),
            target_subject_id: subject_id.clone(),
            state: AssignmentState::Delivered,
            status: "Delivered".into(),
            schedule,
            answers: vec![],
            is_extended: false,
            expired_date_time: None,
            created_date_time: now,
            custom_extension_callout_instances: vec![],
        };
        repo::insert(c, &a)?;
        let gid = id_n(0x6e0, g);
        repo::insert(
            c,
            &AssignmentResourceRole {
                id: id_n(0xa22, i),
                assignment_id: assignment_id.clone(),
                access_package_id: package_id,
                subject_id,
                role_id: id_n(0x701e, g),
                scope_id: id_n(0x5c0, g),
                origin_system: "AadGroup".into(),
                origin_id: format!("Member_{gid}"),
                status: "Fulfilled".into(),
                created_date_time: now,
            },
        )?;
        if expires {
            grantry_core::jobs::enqueue(
                c,
                grantry_core::delivery::JOB_EXPIRE,
                &assignment_id,
                expire_at,
                json_empty(),
            )?;
            return Ok(3);
        }
        Ok(2)
    })
    .await?;
    let items: Vec<((usize, usize), i64)> = links.into_iter().collect();
    rows += bulk(&store, items, move |c, ((g, u), granted)| {
        c.execute(
            "INSERT INTO group_links (group_id, relation, member_id, direct, granted) VALUES (?, 'member', ?, 0, ?)",
            &[Value::from(id_n(0x6e0, g)), Value::from(id_n(0x05e7, u)), Value::Int(granted)],
        )?;
        Ok(1)
    })
    .await?;
    store.write(|c| c.execute("ANALYZE", &[]).map(|_| ())).await.map_err(|e| anyhow::anyhow!(e.message))?;
    drop(store);
    manifest.seed_secs = started.elapsed().as_secs_f64();
    manifest.rows = rows;
    manifest.write(dir)?;
    Ok(manifest)
}

fn json_empty() -> serde_json::Value {
    serde_json::json!({})
}

/// All member users may ask for the package themselves; one approval stage, decided by
/// `approver` (automatic denial after 14 days).
fn approval_policy(id: &str, package_id: &str, catalog_id: &str, approver: &str, now: DateTime<Utc>) -> Policy {
    let mut p = admin_policy(id, package_id, catalog_id, now);
    p.display_name = "Self-service with approval".into();
    p.description = Some("Member users request; one approval stage".into());
    p.allowed_target_scope = AllowedTargetScope::AllMemberUsers;
    p.requestor_settings.enable_targets_to_self_add_access = true;
    p.requestor_settings.enable_targets_to_self_update_access = true;
    p.requestor_settings.enable_targets_to_self_remove_access = true;
    p.approval = ApprovalSettings {
        is_approval_required_for_add: true,
        is_approval_required_for_update: true,
        is_requestor_justification_required: false,
        stages: vec![ApprovalStage {
            duration_before_automatic_denial: Some(Duration::days(14)),
            duration_before_escalation: None,
            is_approver_justification_required: false,
            is_escalation_enabled: false,
            primary_approvers: vec![SubjectSet::SingleUser { user_id: Some(approver.to_string()), description: None }],
            fallback_primary_approvers: vec![],
            escalation_approvers: vec![],
            fallback_escalation_approvers: vec![],
            approver_information_visibility: ApproverInformationVisibility::Default,
            is_dynamic: false,
        }],
    };
    p
}

fn admin_policy(id: &str, package_id: &str, catalog_id: &str, now: DateTime<Utc>) -> Policy {
    Policy {
        id: id.to_string(),
        access_package_id: package_id.to_string(),
        catalog_id: catalog_id.to_string(),
        display_name: "Direct assignments".into(),
        description: Some("Administrators assign; no approval".into()),
        allowed_target_scope: AllowedTargetScope::NotSpecified,
        specific_allowed_targets: vec![],
        expiration: Expiration::never(),
        requestor_settings: RequestorSettings::default(),
        approval: ApprovalSettings::default(),
        review_settings: None,
        questions: vec![],
        automatic_request_settings: None,
        notification_settings: None,
        verifiable_credential_settings: None,
        custom_extension_stage_settings: vec![],
        beta_extra: Default::default(),
        created_by: None,
        modified_by: None,
        created_date_time: now,
        modified_date_time: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_of_an_older_format_is_refused_with_a_message() {
        let dir = tempfile::tempdir().expect("temporary directory");
        assert!(Manifest::read(dir.path()).expect("no manifest is not an error").is_none());
        std::fs::write(dir.path().join("manifest.json"), r#"{"sizes": {"users": 1}, "catalog_id": "x"}"#)
            .expect("write");
        let e = Manifest::read(dir.path()).expect_err("format 1 is refused").to_string();
        assert!(e.contains("format 1") && e.contains("seed again"), "{e}");
    }

    #[test]
    fn a_manifest_round_trips() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let m = Manifest {
            format: MANIFEST_FORMAT,
            database: "sqlite:/x/grantry.db".into(),
            sizes: Sizes::named("small").expect("small"),
            catalog_id: id_n(0xca7a1, 0),
            group_ids: vec![id_n(0x6e0, 0)],
            package_ids: vec![id_n(0xacc, 0)],
            policy_ids: vec![id_n(0x9011c, 0)],
            approval_policy_ids: vec![id_n(0xa9901c, 0)],
            approver_ids: (0..APPROVERS).map(|a| id_n(0xa99e, a)).collect(),
            user_ids: vec![id_n(0x05e7, 0)],
            expire_at: DateTime::<Utc>::UNIX_EPOCH,
            pairs_used: 7,
            seed_secs: 1.0,
            rows: 10,
        };
        m.write(dir.path()).expect("write");
        let back = Manifest::read(dir.path()).expect("read").expect("present");
        assert_eq!(back.approval_policy_ids, m.approval_policy_ids);
        assert_eq!(back.pairs_used, 7);
    }
}
