//! Grantry's own token signing keys: ES256 (P-256) key pairs kept as files in a key
//! directory, never in the database, so that read access to the database (a backup, a
//! read-only role, a leaked dump) does not let anyone mint tokens.
//!
//! Each key is one file `<kid>.json` (mode 0600, in a 0700 directory) holding its id, its
//! creation time, when it was retired (if it was) and the PKCS#8 private key. The newest
//! key that is not retired signs; every key in the directory verifies, so a rotated key
//! keeps verifying the tokens it signed until they expire. `grantry keys rotate` retires
//! the current key, adds a new one and deletes keys retired longer than [`RETAIN_RETIRED_SECS`]
//! (the longest lifetime Grantry gives a token).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use grantry_domain::{Error, Result};
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// How long a retired key stays to verify tokens signed before the rotation: the longest
/// token lifetime Grantry issues ([`MAX_TOKEN_LIFETIME_SECS`]).
pub const RETAIN_RETIRED_SECS: i64 = MAX_TOKEN_LIFETIME_SECS;
/// The longest lifetime of a token Grantry signs (`grantry token --expires-in` is capped).
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 30 * 86_400;

/// One key file, as stored.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    kid: String,
    alg: String,
    created: i64,
    #[serde(default)]
    retired: Option<i64>,
    /// PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    private_key: String,
}

/// One loaded key pair.
pub struct SigningKey {
    pub kid: String,
    pub created: i64,
    pub retired: Option<i64>,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    /// The public key's coordinates, base64url, for the JWKS.
    x: String,
    y: String,
}

impl SigningKey {
    fn from_file(file: KeyFile) -> std::result::Result<SigningKey, String> {
        if file.alg != "ES256" {
            return Err(format!("algorithm '{}' is not supported (only ES256)", file.alg));
        }
        let secret = p256::SecretKey::from_pkcs8_pem(&file.private_key)
            .map_err(|e| format!("the private key is not a PKCS#8 P-256 key: {e}"))?;
        let der = secret.to_pkcs8_der().map_err(|e| format!("cannot encode the private key: {e}"))?;
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err("the public key has no coordinates".into());
        };
        Ok(SigningKey {
            kid: file.kid,
            created: file.created,
            retired: file.retired,
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            decoding: DecodingKey::from_ec_der(point.as_bytes()),
            x: B64.encode(x),
            y: B64.encode(y),
        })
    }

    /// The public key as a JWK (RFC 7517), as published at `/discovery/v2.0/keys`.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "EC",
            crv: "P-256",
            use_: "sig",
            alg: "ES256",
            kid: self.kid.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
        }
    }
}

/// A public key as a JWK (RFC 7517).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    pub x: String,
    pub y: String,
}

/// A JWK set (RFC 7517 §5).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The RFC 7638 thumbprint of a P-256 public key: a stable key id that anyone holding the
/// JWK can recompute.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

/// The keys of one key directory, newest first.
pub struct KeySet {
    pub keys: Vec<SigningKey>,
}

impl KeySet {
    /// The key that signs: the newest one not retired.
    pub fn active(&self) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.retired.is_none())
    }

    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn jwks(&self) -> Jwks {
        Jwks { keys: self.keys.iter().map(SigningKey::jwk).collect() }
    }
}

fn key_error(dir: &Path, message: impl std::fmt::Display) -> Error {
    Error::internal(format!("signing keys in {}: {message}", dir.display()))
}

/// Reads every key file in `dir` (which may not exist yet: then there are no keys).
pub fn load(dir: &Path) -> Result<KeySet> {
    let mut keys = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeySet { keys }),
        Err(e) => return Err(key_error(dir, format!("cannot read the directory: {e}"))),
    };
    for entry in entries {
        let path = entry.map_err(|e| key_error(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        warn_if_readable_by_others(&path);
        let text = std::fs::read_to_string(&path).map_err(|e| key_error(dir, format!("{}: {e}", path.display())))?;
        let file: KeyFile = serde_json::from_str(&text)
            .map_err(|e| key_error(dir, format!("{} is not a key file: {e}", path.display())))?;
        keys.push(SigningKey::from_file(file).map_err(|e| key_error(dir, format!("{}: {e}", path.display())))?);
    }
    // Keys that sign come first, then the most recently retired (creation times are in
    // seconds, so a rotation may create a key in the same second as the one it retires).
    keys.sort_by(|a, b| {
        (a.retired.is_some(), std::cmp::Reverse(a.created), std::cmp::Reverse(a.retired), &a.kid).cmp(&(
            b.retired.is_some(),
            std::cmp::Reverse(b.created),
            std::cmp::Reverse(b.retired),
            &b.kid,
        ))
    });
    Ok(KeySet { keys })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "a token signing key file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// Loads the keys of `dir`, creating the directory and a first key when there is none.
pub fn load_or_create(dir: &Path, now: i64) -> Result<KeySet> {
    let set = load(dir)?;
    if set.active().is_some() {
        return Ok(set);
    }
    add_key(dir, now)?;
    load(dir)
}

/// Retires the signing key, adds a new one, and deletes keys retired longer than
/// [`RETAIN_RETIRED_SECS`]. Returns the new key's id.
pub fn rotate(dir: &Path, now: i64) -> Result<String> {
    let kid = add_key(dir, now)?;
    for path in key_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|e| key_error(dir, e))?;
        let mut file: KeyFile = serde_json::from_str(&text).map_err(|e| key_error(dir, e))?;
        if file.kid == kid {
            continue;
        }
        match file.retired {
            None => {
                file.retired = Some(now);
                write_key_file(dir, &file)?;
            }
            Some(at) if at + RETAIN_RETIRED_SECS < now => {
                std::fs::remove_file(&path).map_err(|e| key_error(dir, e))?;
            }
            Some(_) => {}
        }
    }
    sync_dir(dir)?;
    Ok(kid)
}

fn key_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| key_error(dir, e))? {
        let path = entry.map_err(|e| key_error(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            files.push(path);
        }
    }
    Ok(files)
}

/// Generates a P-256 key and writes it to `dir` (created 0700 when missing).
fn add_key(dir: &Path, now: i64) -> Result<String> {
    create_private_dir(dir)?;
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(key_error(dir, "a generated key has no coordinates"));
    };
    let kid = thumbprint(&B64.encode(x), &B64.encode(y));
    let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| key_error(dir, e))?;
    let file =
        KeyFile { kid: kid.clone(), alg: "ES256".into(), created: now, retired: None, private_key: pem.to_string() };
    write_key_file(dir, &file)?;
    sync_dir(dir)?;
    Ok(kid)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| key_error(dir, format!("cannot create the directory: {e}")))
}

/// Writes a key file atomically (temporary file, fsync, rename), readable by its owner only.
fn write_key_file(dir: &Path, file: &KeyFile) -> Result<()> {
    use std::io::Write;
    let path = dir.join(format!("{}.json", file.kid));
    let tmp = dir.join(format!(".{}.tmp", file.kid));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let text = serde_json::to_string_pretty(file).map_err(|e| key_error(dir, e))?;
    let mut out = options.open(&tmp).map_err(|e| key_error(dir, format!("cannot write {}: {e}", tmp.display())))?;
    out.write_all(text.as_bytes()).and_then(|_| out.sync_all()).map_err(|e| key_error(dir, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| key_error(dir, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| key_error(dir, e))
}

/// When the key directory last changed (a key added, retired or removed): the server
/// reloads its keys when this moves.
pub fn modified(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_old_key_for_verification_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let first = load_or_create(&keys, 1_000).unwrap();
        let first_kid = first.active().unwrap().kid.clone();
        // Loading again does not add a key.
        assert_eq!(load_or_create(&keys, 2_000).unwrap().keys.len(), 1);
        let second_kid = rotate(&keys, 3_000).unwrap();
        let set = load(&keys).unwrap();
        assert_eq!(set.active().unwrap().kid, second_kid);
        assert_eq!(set.by_kid(&first_kid).unwrap().retired, Some(3_000));
        assert_eq!(set.jwks().keys.len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file = keys.join(format!("{second_kid}.json"));
            assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
        }
        // Long after the rotation, the next rotation deletes the first key.
        rotate(&keys, 3_000 + RETAIN_RETIRED_SECS + 1).unwrap();
        let set = load(&keys).unwrap();
        assert!(set.by_kid(&first_kid).is_none());
        assert_eq!(set.by_kid(&second_kid).unwrap().retired, Some(3_000 + RETAIN_RETIRED_SECS + 1));
        assert_eq!(set.keys.len(), 2);
    }

    #[test]
    fn the_kid_is_the_jwk_thumbprint() {
        let dir = tempfile::tempdir().unwrap();
        let set = load_or_create(dir.path(), 1).unwrap();
        let jwk = set.active().unwrap().jwk();
        let kid = thumbprint(&jwk.x, &jwk.y);
        assert_eq!(jwk.kid, kid);
    }
}
