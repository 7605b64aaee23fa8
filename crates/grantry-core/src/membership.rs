//! Group links as access package delivery sees them.
//!
//! A row of `group_links` exists while `direct = 1` (the link was made through the groups
//! API) or `granted > 0` (that many active assignment resource roles deliver it). Delivery
//! calls [`grant`] and [`revoke`]; the groups API sets and clears `direct`. The two are
//! independent, so ending an assignment never removes a membership an administrator made,
//! and removing a membership through the API never takes away access an assignment gives.

use grantry_domain::Result;
use grantry_domain::model::GroupRelation;
use grantry_store::{Conn, Value};

/// Records one more delivery of the link (inserting it with `direct = 0` if it is new).
pub fn grant(c: &mut dyn Conn, group_id: &str, relation: GroupRelation, member_id: &str) -> Result<()> {
    c.execute(
        "INSERT INTO group_links (group_id, relation, member_id, direct, granted) VALUES (?, ?, ?, 0, 1) \
         ON CONFLICT (group_id, relation, member_id) DO UPDATE SET granted = group_links.granted + 1",
        &[Value::from(group_id), Value::from(relation.as_str()), Value::from(member_id)],
    )?;
    Ok(())
}

/// [`grant`] if group `group_id` exists, in one statement; returns whether it does (and the
/// link was granted).
pub fn grant_if_group(c: &mut dyn Conn, group_id: &str, relation: GroupRelation, member_id: &str) -> Result<bool> {
    let n = c.execute(
        "INSERT INTO group_links (group_id, relation, member_id, direct, granted) \
         SELECT ?, ?, ?, 0, 1 WHERE EXISTS (SELECT 1 FROM groups WHERE id = ?) \
         ON CONFLICT (group_id, relation, member_id) DO UPDATE SET granted = group_links.granted + 1",
        &[Value::from(group_id), Value::from(relation.as_str()), Value::from(member_id), Value::from(group_id)],
    )?;
    Ok(n > 0)
}

/// Records that one delivery of the link ended; the link goes when nothing else holds it.
pub fn revoke(c: &mut dyn Conn, group_id: &str, relation: GroupRelation, member_id: &str) -> Result<()> {
    let key = [Value::from(group_id), Value::from(relation.as_str()), Value::from(member_id)];
    c.execute(
        "UPDATE group_links SET granted = granted - 1 WHERE group_id = ? AND relation = ? AND member_id = ? AND granted > 0",
        &key,
    )?;
    c.execute(
        "DELETE FROM group_links WHERE group_id = ? AND relation = ? AND member_id = ? AND direct = 0 AND granted <= 0",
        &key,
    )?;
    Ok(())
}

/// [`revoke`] for many links at once: each `((group, relation, member), n)` loses `n`
/// deliveries, and links nothing else holds go. Two statements per chunk of links.
pub fn revoke_many(c: &mut dyn Conn, links: &[((String, &'static str, String), i64)]) -> Result<()> {
    let mut rest = links;
    while !rest.is_empty() {
        // Power-of-two chunks: a few statement shapes, each prepared once.
        let mut chunk = 64;
        while chunk > rest.len() {
            chunk /= 2;
        }
        let (now, later) = rest.split_at(chunk);
        let tuples = vec!["(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT))"; chunk].join(", ");
        let mut params = Vec::with_capacity(chunk * 4);
        for ((g, r, m), n) in now {
            params.extend([Value::from(g), Value::from(*r), Value::from(m), Value::Int(*n)]);
        }
        let n_of = "(SELECT v.n FROM v WHERE v.g = group_links.group_id AND v.r = group_links.relation \
                    AND v.m = group_links.member_id)";
        c.execute(
            &format!(
                "WITH v (g, r, m, n) AS (VALUES {tuples}) \
                 UPDATE group_links SET granted = CASE WHEN granted > {n_of} THEN granted - {n_of} ELSE 0 END \
                 WHERE (group_id, relation, member_id) IN (SELECT g, r, m FROM v) AND granted > 0"
            ),
            &params,
        )?;
        let key_tuples = vec!["(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT))"; chunk].join(", ");
        let keys: Vec<Value> =
            now.iter().flat_map(|((g, r, m), _)| [Value::from(g), Value::from(*r), Value::from(m)]).collect();
        c.execute(
            &format!(
                "WITH v (g, r, m) AS (VALUES {key_tuples}) DELETE FROM group_links \
                 WHERE (group_id, relation, member_id) IN (SELECT g, r, m FROM v) AND direct = 0 AND granted <= 0"
            ),
            &keys,
        )?;
        rest = later;
    }
    Ok(())
}

/// Whether `member_id` is a member of `group_id` (direct links only, not nested groups).
pub fn is_member(c: &mut dyn Conn, group_id: &str, member_id: &str) -> Result<bool> {
    has_link(c, group_id, GroupRelation::Member, member_id)
}

/// Whether the link exists, however it was made.
pub fn has_link(c: &mut dyn Conn, group_id: &str, relation: GroupRelation, member_id: &str) -> Result<bool> {
    Ok(c.query_one(
        "SELECT 1 FROM group_links WHERE group_id = ? AND relation = ? AND member_id = ? AND (direct = 1 OR granted > 0)",
        &[Value::from(group_id), Value::from(relation.as_str()), Value::from(member_id)],
    )?
    .is_some())
}

/// The users that are members of `group_id`, in the order they were linked (direct
/// members only; members of nested groups are not included).
pub fn member_ids(c: &mut dyn Conn, group_id: &str) -> Result<Vec<String>> {
    c.query(
        "SELECT l.member_id FROM group_links l JOIN users u ON u.id = l.member_id \
         WHERE l.group_id = ? AND l.relation = ? AND (l.direct = 1 OR l.granted > 0) ORDER BY l.seq",
        &[Value::from(group_id), Value::from(GroupRelation::Member.as_str())],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}
