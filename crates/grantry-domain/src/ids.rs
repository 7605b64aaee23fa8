//! Identifiers. Graph ids are GUID strings; clients send them in any case, so they are
//! normalised to lower case at the edge.

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Lower-cases an id taken from a URL or body so lookups are case-insensitive.
pub fn normalize(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

pub fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}
