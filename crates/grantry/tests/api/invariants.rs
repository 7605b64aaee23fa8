//! The database invariants every reliability test checks: each is a query counting the
//! rows that break it (0 when it holds). Portable SQL, run through the store (in-process
//! tests) or straight on the database file (the crash test).

use crate::helpers::TestApp;

/// (what must hold, query counting violations).
pub const CHECKS: &[(&str, &str)] = &[
    (
        "every request's assignment exists",
        "SELECT COUNT(*) FROM requests r WHERE r.assignment_id IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.id = r.assignment_id)",
    ),
    (
        "every assignment has the request that made it",
        "SELECT COUNT(*) FROM assignments a WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.assignment_id = a.id)",
    ),
    (
        "at most one open add request per target and package",
        "SELECT COUNT(*) FROM (SELECT target_subject_id, access_package_id FROM requests \
         WHERE state IN ('submitted', 'pendingApproval', 'delivering', 'scheduled') \
         AND request_type IN ('adminAdd', 'userAdd', 'systemAdd') \
         GROUP BY target_subject_id, access_package_id HAVING COUNT(*) > 1) x",
    ),
    (
        "at most one active assignment per target and package",
        "SELECT COUNT(*) FROM (SELECT target_subject_id, access_package_id FROM assignments \
         WHERE state IN ('delivering', 'partiallyDelivered', 'delivered') \
         GROUP BY target_subject_id, access_package_id HAVING COUNT(*) > 1) x",
    ),
    (
        "every add request delivered made exactly one assignment",
        "SELECT COUNT(*) FROM requests r WHERE r.state = 'delivered' \
         AND r.request_type IN ('adminAdd', 'userAdd', 'systemAdd') AND r.assignment_id IS NULL",
    ),
    (
        "an assignment is made by one add request",
        "SELECT COUNT(*) FROM (SELECT assignment_id FROM requests \
         WHERE request_type IN ('adminAdd', 'userAdd', 'systemAdd') AND assignment_id IS NOT NULL \
         GROUP BY assignment_id HAVING COUNT(*) > 1) x",
    ),
    (
        "every delivered assignment's group memberships exist",
        "SELECT COUNT(*) FROM assignments a \
         JOIN subjects s ON s.id = a.target_subject_id \
         JOIN assignment_resource_roles arr ON arr.assignment_id = a.id AND arr.status = 'Fulfilled' \
         WHERE a.state = 'delivered' AND NOT EXISTS (SELECT 1 FROM group_links g \
           WHERE g.member_id = s.object_id AND g.granted > 0 \
           AND arr.origin_id = (CASE g.relation WHEN 'owner' THEN 'Owner_' ELSE 'Member_' END) || g.group_id)",
    ),
    (
        "every granted membership is held by as many active assignments as it counts",
        "SELECT COUNT(*) FROM group_links g WHERE g.granted <> (SELECT COUNT(*) FROM assignment_resource_roles arr \
           JOIN assignments a ON a.id = arr.assignment_id \
           JOIN subjects s ON s.id = a.target_subject_id \
           WHERE arr.status = 'Fulfilled' AND a.active = 1 AND s.object_id = g.member_id \
           AND arr.origin_id = (CASE g.relation WHEN 'owner' THEN 'Owner_' ELSE 'Member_' END) || g.group_id)",
    ),
    (
        "every ended assignment's memberships are released",
        "SELECT COUNT(*) FROM assignment_resource_roles arr JOIN assignments a ON a.id = arr.assignment_id \
         WHERE a.active IS NULL AND arr.status = 'Fulfilled'",
    ),
    (
        "every submitted request has its processing job",
        "SELECT COUNT(*) FROM requests r WHERE r.state = 'submitted' \
         AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.entity_id = r.id AND j.kind = 'request.process')",
    ),
    (
        "every request pending approval has a pending approval",
        "SELECT COUNT(*) FROM requests r WHERE r.state = 'pendingApproval' \
         AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.id = r.id AND a.state = 'pending')",
    ),
    (
        "every pending approval belongs to a request pending approval",
        "SELECT COUNT(*) FROM approvals a WHERE a.state = 'pending' \
         AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = a.id AND r.state = 'pendingApproval')",
    ),
    (
        "every add request delivered is delivered once (audit trail)",
        "SELECT COUNT(*) FROM (SELECT entity_id FROM audit_events WHERE entity_type = 'accessPackageAssignmentRequest' \
         AND action = 'delivered' GROUP BY entity_id HAVING COUNT(*) > 1) x",
    ),
];

/// The violated invariants, with their counts, given a way to run a counting query.
pub fn violations(mut count: impl FnMut(&str) -> i64) -> Vec<String> {
    CHECKS
        .iter()
        .filter_map(|(what, sql)| {
            let n = count(sql);
            (n != 0).then(|| format!("{what}: {n} violation(s)"))
        })
        .collect()
}

/// Checks every invariant on a running in-process server's database.
pub async fn assert_holds(app: &TestApp, context: &str) {
    let found = app
        .read(|c| {
            let mut err = None;
            let v = violations(|sql| match c.query_one(sql, &[]).and_then(|r| r.map(|r| r.int(0)).transpose()) {
                Ok(n) => n.unwrap_or(0),
                Err(e) => {
                    err = Some(e);
                    -1
                }
            });
            match err {
                Some(e) => Err(e),
                None => Ok(v),
            }
        })
        .await;
    assert!(found.is_empty(), "{context}: invariants broken: {found:#?}");
}
