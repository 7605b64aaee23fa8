//! Online backup of the embedded database.
//!
//! `VACUUM INTO` runs inside one read transaction of its own connection, so the copy is
//! the database as of one instant (every write committed before it began, none after)
//! while the server keeps reading and writing: in WAL mode a reader never blocks the
//! writer, and the writer never blocks it. The copy is written under a temporary name
//! beside the target, synced, checked and only then linked to the target name, which
//! fails if the target exists: a file at the target name is always a complete backup, and
//! an existing file is never overwritten.

use crate::sqlite::{self, map_err};
use grantry_domain::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub bytes: u64,
    /// Rows per table, by table name.
    pub rows: Vec<(String, i64)>,
}

fn refused(message: String) -> Error {
    Error::new(ErrorKind::BadRequest, "BadRequest", message)
}

/// Copies the SQLite database at `source` into a new file `out`, consistent as of one
/// instant, while other processes may be writing to `source`. Refuses an existing `out`.
pub fn backup_sqlite(source: &Path, out: &Path) -> Result<BackupSummary> {
    if !source.is_file() {
        return Err(refused(format!("there is no database at {}", source.display())));
    }
    if out.exists() {
        return Err(refused(format!("{} already exists; choose a new file name for the backup", out.display())));
    }
    let dir = match out.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(refused(format!("the directory {} of the backup does not exist", dir.display())));
    }
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
    let partial = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_file(&partial);
    let result = write_and_check(source, &partial).and_then(|summary| {
        // A hard link never replaces an existing file, unlike a rename.
        std::fs::hard_link(&partial, out).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                refused(format!("{} already exists; choose a new file name for the backup", out.display()))
            } else {
                Error::internal(format!("cannot create {}: {e}", out.display()))
            }
        })?;
        sync_dir(&dir)?;
        Ok(summary)
    });
    let _ = std::fs::remove_file(&partial);
    result
}

fn write_and_check(source: &Path, partial: &Path) -> Result<BackupSummary> {
    let conn = sqlite::open(source, true, true)?;
    let target = partial.to_str().ok_or_else(|| refused(format!("{} is not a UTF-8 path", partial.display())))?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(map_err)?;
    drop(conn);
    let file = std::fs::File::open(partial)
        .map_err(|e| Error::internal(format!("cannot open the backup {}: {e}", partial.display())))?;
    file.sync_all().map_err(|e| Error::internal(format!("cannot sync the backup {}: {e}", partial.display())))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let copy = sqlite::open(partial, true, true)?;
    let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(map_err)?;
    if check != "ok" {
        return Err(Error::internal(format!("the backup failed SQLite's integrity check: {check}")));
    }
    let tables: Vec<String> = copy
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(map_err)?;
    let mut rows = Vec::with_capacity(tables.len());
    for table in tables {
        let count: i64 = copy
            .query_row(&format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\"")), [], |r| r.get(0))
            .map_err(map_err)?;
        rows.push((table, count));
    }
    Ok(BackupSummary { bytes, rows })
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::internal(format!("cannot sync the directory {}: {e}", dir.display())))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreOptions, Value};

    #[tokio::test]
    async fn a_backup_is_a_consistent_copy_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("grantry.db");
        let store = Store::open_sqlite(&source, StoreOptions::default()).unwrap();
        store
            .write(|c| {
                c.execute("INSERT INTO meta (key, value) VALUES (?, ?)", &[Value::from("backup-test"), "1".into()])
            })
            .await
            .unwrap();
        let out = dir.path().join("copy.db");
        let summary = backup_sqlite(&source, &out).unwrap();
        assert!(summary.bytes > 0);
        assert!(summary.rows.iter().any(|(t, n)| t == "meta" && *n >= 1), "{:?}", summary.rows);
        let copy = rusqlite::Connection::open(&out).unwrap();
        let value: String =
            copy.query_row("SELECT value FROM meta WHERE key = 'backup-test'", [], |r| r.get(0)).unwrap();
        assert_eq!(value, "1");
        drop(copy);

        let before = std::fs::read(&out).unwrap();
        let e = backup_sqlite(&source, &out).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(e.message.contains("already exists"), "{}", e.message);
        assert_eq!(std::fs::read(&out).unwrap(), before, "an existing file is left alone");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "no partial file is left behind");

        let e = backup_sqlite(&dir.path().join("missing.db"), &dir.path().join("x.db")).unwrap_err();
        assert!(e.message.contains("no database"), "{}", e.message);
    }
}
