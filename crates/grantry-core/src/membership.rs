//! Group memberships and ownerships as delivered by access package assignments.
//!
//! A row of `group_links` exists while the link was made directly through the groups API
//! (`direct = 1`) or while at least one active assignment resource role delivers it
//! (`granted > 0`). Ending an assignment therefore removes a membership only when nothing
//! else still grants it, and never removes one an administrator made directly.

use grantry_domain::Result;
use grantry_domain::model::GroupRelation;
use grantry_store::{Conn, Value};

/// Adds one grant of `member_id`'s `relation` in `group_id`.
pub fn grant(c: &mut dyn Conn, group_id: &str, relation: GroupRelation, member_id: &str) -> Result<()> {
    c.execute(
        "INSERT INTO group_links (group_id, relation, member_id, direct, granted) VALUES (?, ?, ?, 0, 1) \
         ON CONFLICT (group_id, relation, member_id) DO UPDATE SET granted = group_links.granted + 1",
        &[Value::from(group_id), Value::from(relation.as_str()), Value::from(member_id)],
    )?;
    Ok(())
}

/// Removes one grant; the link goes when it was not made directly and no grant remains.
pub fn revoke(c: &mut dyn Conn, group_id: &str, relation: GroupRelation, member_id: &str) -> Result<()> {
    let params = [Value::from(group_id), Value::from(relation.as_str()), Value::from(member_id)];
    c.execute(
        "UPDATE group_links SET granted = CASE WHEN granted > 0 THEN granted - 1 ELSE 0 END \
         WHERE group_id = ? AND relation = ? AND member_id = ?",
        &params,
    )?;
    c.execute(
        "DELETE FROM group_links WHERE group_id = ? AND relation = ? AND member_id = ? AND direct = 0 AND granted <= 0",
        &params,
    )?;
    Ok(())
}

pub fn is_member(c: &mut dyn Conn, group_id: &str, member_id: &str) -> Result<bool> {
    Ok(c.query_one(
        "SELECT 1 FROM group_links WHERE group_id = ? AND relation = 'member' AND member_id = ?",
        &[Value::from(group_id), Value::from(member_id)],
    )?
    .is_some())
}

/// Direct members of `group_id` (user or group ids).
pub fn member_ids(c: &mut dyn Conn, group_id: &str) -> Result<Vec<String>> {
    c.query(
        "SELECT member_id FROM group_links WHERE group_id = ? AND relation = 'member' ORDER BY seq",
        &[Value::from(group_id)],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}
