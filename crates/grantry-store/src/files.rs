//! Access to the embedded database's files: they hold every entitlement, request and audit
//! record, and whoever can write them can grant themselves anything. The data directory is
//! created readable by its owner only (0700) and the database files 0600. Directories and
//! files that already exist are left as they are, but a start-up warning names each one
//! other local users can reach.

use grantry_domain::{Error, Result};
use std::path::{Path, PathBuf};

/// Creates `dir` (and missing parents) readable by the owner only.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::internal(format!("cannot create the data directory {}: {e}", dir.display())))
}

/// Creates the empty database file `path` readable by the owner only, unless it exists.
/// SQLite creates the `-wal` and `-shm` files with the database file's permissions.
pub(crate) fn create_private_file(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::internal(format!("cannot create the database file {}: {e}", path.display()))),
    }
}

/// One warning per path of the database at `path` (its directory, the file, its `-wal`
/// and `-shm` files) that users other than its owner may read or enter.
pub fn permission_warnings(path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut with = |p: PathBuf, wanted: u32| {
            if let Ok(meta) = std::fs::metadata(&p) {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    out.push(format!(
                        "{} has mode {mode:03o}: other local users can read or change the database; run chmod {wanted:03o} on it",
                        p.display()
                    ));
                }
            }
        };
        with(dir.to_path_buf(), 0o700);
        with(path.to_path_buf(), 0o600);
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            with(PathBuf::from(name), 0o600);
        }
    }
    out
}
