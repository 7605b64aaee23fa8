//! Resolving a stage's approver subject sets to the users who may decide.
//!
//! The user whose access is requested is the "requestor" in Entra's approval vocabulary
//! (their manager approves a manager stage), and neither the person who asked nor the one
//! who would get access can ever approve: they are removed from every resolved set.

use crate::membership;
use grantry_domain::Result;
use grantry_domain::model::{SponsorList, SubjectSet, User};
use grantry_store::{Conn, Value, repo};

/// Whose request the approval is about.
pub struct Parties<'a> {
    /// The directory user who would get access (None for an external user not yet invited).
    pub target_user_id: Option<&'a str>,
    /// The directory user who asked (None for applications).
    pub requestor_user_id: Option<&'a str>,
    /// The connected organization of the target (an external user), whose sponsors
    /// `internalSponsors` and `externalSponsors` name.
    pub organization_id: Option<&'a str>,
}

fn enabled_user(c: &mut dyn Conn, id: &str) -> Result<Option<User>> {
    Ok(repo::get::<User>(c, id)?.filter(|u| u.account_enabled))
}

/// The manager `level` steps up from `user_id` (1 = direct manager).
pub fn manager_at(c: &mut dyn Conn, user_id: &str, level: i32) -> Result<Option<String>> {
    let mut current = user_id.to_string();
    for _ in 0..level.max(1) {
        match repo::get::<User>(c, &current)?.and_then(|u| u.manager_id) {
            Some(m) => current = m,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// The users `sets` resolve to, without the parties themselves, deduplicated, in order.
pub fn resolve(c: &mut dyn Conn, sets: &[SubjectSet], parties: &Parties<'_>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for set in sets {
        let candidates: Vec<String> = match set {
            SubjectSet::SingleUser { user_id: Some(id), .. } => vec![id.to_ascii_lowercase()],
            SubjectSet::ConnectedOrganizationMembers { .. } => Vec::new(),
            SubjectSet::GroupMembers { group_id: Some(gid), .. } => {
                membership::member_ids(c, &gid.to_ascii_lowercase())?
            }
            SubjectSet::RequestorManager { manager_level } => match parties.target_user_id {
                Some(t) => manager_at(c, t, *manager_level)?.into_iter().collect(),
                None => Vec::new(),
            },
            SubjectSet::InternalSponsors => match parties.organization_id {
                Some(o) => crate::connected::sponsor_user_ids(c, SponsorList::Internal, o)?,
                None => Vec::new(),
            },
            SubjectSet::ExternalSponsors => match parties.organization_id {
                Some(o) => crate::connected::sponsor_user_ids(c, SponsorList::External, o)?,
                None => Vec::new(),
            },
            SubjectSet::TargetUserSponsors => match parties.target_user_id {
                Some(t) => crate::connected::sponsor_user_ids(c, SponsorList::User, t)?,
                None => Vec::new(),
            },
            // What resolves to nobody leaves the stage to its fallback approvers.
            _ => Vec::new(),
        };
        for id in candidates {
            if Some(id.as_str()) == parties.target_user_id || Some(id.as_str()) == parties.requestor_user_id {
                continue;
            }
            if out.contains(&id) || enabled_user(c, &id)?.is_none() {
                continue;
            }
            out.push(id);
        }
    }
    Ok(out)
}

/// Approvals where `user_id` is an approver of a stage (for `filterByCurrentUser`).
pub fn approval_ids_for(c: &mut dyn Conn, user_id: &str) -> Result<Vec<String>> {
    c.query("SELECT DISTINCT approval_id FROM approval_approvers WHERE user_id = ?", &[Value::from(user_id)])?
        .iter()
        .map(|r| r.text(0))
        .collect()
}
