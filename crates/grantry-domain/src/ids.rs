//! Identifiers. Graph ids are GUID strings; clients send them in any case, so they are
//! normalised to lower case at the edge.

/// A new id: a time-ordered GUID (RFC 9562 version 7). Ids made one after another sort
/// together, so every index keyed by an id grows at its right edge instead of touching a
/// random page per insert; under load that is most of the difference in what a commit
/// writes. The embedded millisecond is the wall clock's and is never read back as a time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Lower-cases an id taken from a URL or body so lookups are case-insensitive.
pub fn normalize(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

pub fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}
