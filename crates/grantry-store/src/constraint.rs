//! Constraint violations by name. A write that breaks a uniqueness rule fails with a
//! [`grantry_domain::Error`] of kind `Conflict` that carries the violated constraint's name;
//! use cases match it with [`Constraint::of`] instead of reading the message.
//!
//! PostgreSQL reports the constraint's name. SQLite reports the table and columns
//! (`UNIQUE constraint failed: requests.target_subject_id, …`), so they are mapped to the
//! same name here: the named unique indexes by their columns, and every other unique
//! constraint by PostgreSQL's default name, `{table}_{column}[_{column}…]_key`.

use grantry_domain::{Error, ErrorKind};

/// The unique constraints use cases tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    /// `requests_one_open`: one open request per person, access package and kind (add or
    /// remove).
    RequestsOneOpen,
    /// `assignments_one_active`: one active assignment per person and access package.
    AssignmentsOneActive,
}

impl Constraint {
    const ALL: [Constraint; 2] = [Constraint::RequestsOneOpen, Constraint::AssignmentsOneActive];

    /// The constraint's name in the database.
    pub fn name(self) -> &'static str {
        match self {
            Constraint::RequestsOneOpen => "requests_one_open",
            Constraint::AssignmentsOneActive => "assignments_one_active",
        }
    }

    /// The table and the indexed columns, in the index's order.
    fn columns(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Constraint::RequestsOneOpen => ("requests", &["target_subject_id", "access_package_id", "open_kind"]),
            Constraint::AssignmentsOneActive => ("assignments", &["target_subject_id", "access_package_id"]),
        }
    }

    /// The constraint `e` reports broken, when it is one of these.
    pub fn of(e: &Error) -> Option<Constraint> {
        if e.kind != ErrorKind::Conflict {
            return None;
        }
        let name = e.constraint.as_deref()?;
        Constraint::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The error for a violated constraint: `name` as the database knows it, `table` when known.
pub(crate) fn conflict(name: Option<String>, table: Option<&str>, detail: &str) -> Error {
    let what = match (&name, table) {
        (Some(n), Some(t)) => format!("{t}.{n}"),
        (Some(n), None) => n.clone(),
        (None, Some(t)) => format!("{t}."),
        (None, None) => "constraint".to_string(),
    };
    let mut e = Error::new(
        ErrorKind::Conflict,
        "Conflict",
        format!("The change conflicts with existing data ({what}: {detail})."),
    );
    e.constraint = name;
    e
}

/// The constraint a SQLite message names (`UNIQUE constraint failed: t.a, t.b`), with its
/// table.
pub(crate) fn from_sqlite(message: &str) -> (Option<String>, Option<String>) {
    let Some(list) = message.strip_prefix("UNIQUE constraint failed: ") else {
        return (None, None);
    };
    let mut table = None;
    let mut columns = Vec::new();
    for part in list.split(',') {
        let Some((t, c)) = part.trim().split_once('.') else { return (None, None) };
        if table.is_some_and(|known| known != t) {
            return (None, None);
        }
        table = Some(t);
        columns.push(c);
    }
    let Some(table) = table else { return (None, None) };
    let named = Constraint::ALL.into_iter().find(|c| c.columns() == (table, columns.as_slice()));
    let name = match named {
        Some(c) => c.name().to_string(),
        None => format!("{table}_{}_key", columns.join("_")),
    };
    (Some(name), Some(table.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_messages_map_to_the_constraint_names_postgres_reports() {
        let (name, table) = from_sqlite(
            "UNIQUE constraint failed: requests.target_subject_id, requests.access_package_id, requests.open_kind",
        );
        assert_eq!((name.as_deref(), table.as_deref()), (Some("requests_one_open"), Some("requests")));
        let (name, _) =
            from_sqlite("UNIQUE constraint failed: assignments.target_subject_id, assignments.access_package_id");
        assert_eq!(name.as_deref(), Some("assignments_one_active"));
        let (name, _) = from_sqlite("UNIQUE constraint failed: catalogs.unique_name");
        assert_eq!(name.as_deref(), Some("catalogs_unique_name_key"));
        assert_eq!(from_sqlite("NOT NULL constraint failed: catalogs.id"), (None, None));
        let e = conflict(Some("assignments_one_active".into()), Some("assignments"), "x");
        assert_eq!(Constraint::of(&e), Some(Constraint::AssignmentsOneActive));
        assert_eq!(Constraint::of(&conflict(None, Some("assignments"), "x")), None);
    }
}
