//! The properties each entity and complex type defines, read from the `$metadata` documents
//! served for each root, so a request body can be checked against its type as Graph does.

use grantry_domain::Result;
use grantry_graph::{Body, Dialect};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// Properties and navigation properties every type has through `graph.entity`, which the
/// documents do not include.
const ENTITY: &[&str] = &["id"];

struct Types {
    /// Type name → (base type name, its own properties).
    types: HashMap<String, (Option<String>, Vec<String>)>,
}

impl Types {
    /// Reads `<EntityType>` and `<ComplexType>` elements: their names, base types, and
    /// `<Property>` / `<NavigationProperty>` names. The documents are ours and regular, so
    /// a scan of the text is enough.
    fn parse(csdl: &str) -> Types {
        let mut types = HashMap::new();
        let mut rest = csdl;
        while let Some(start) = [rest.find("<EntityType "), rest.find("<ComplexType ")].into_iter().flatten().min() {
            let after = &rest[start..];
            let element = if after.starts_with("<EntityType ") { "EntityType" } else { "ComplexType" };
            let head_end = after.find('>').unwrap_or(after.len());
            let head = &after[..head_end];
            let name = attribute(head, "Name").unwrap_or_default();
            let base = attribute(head, "BaseType").map(|b| b.trim_start_matches("graph.").to_string());
            let (body, end) = if head.ends_with('/') {
                ("", head_end)
            } else {
                let end = after.find(&format!("</{element}>")).unwrap_or(after.len());
                (&after[head_end..end], end)
            };
            let mut properties = Vec::new();
            for tag in ["<Property ", "<NavigationProperty "] {
                for piece in body.split(tag).skip(1) {
                    properties.extend(attribute(&format!(" {piece}"), "Name"));
                }
            }
            types.insert(name, (base, properties));
            // `end` is past the element's start, so the scan always moves on.
            rest = &after[end.max(1)..];
        }
        Types { types }
    }

    fn defines(&self, type_name: &str, property: &str) -> bool {
        let mut current = Some(type_name.to_string());
        let mut hops = 0;
        while let Some(t) = current {
            if t == "entity" {
                return ENTITY.contains(&property);
            }
            let Some((base, properties)) = self.types.get(&t) else { return false };
            if properties.iter().any(|p| p == property) {
                return true;
            }
            current = base.clone();
            hops += 1;
            if hops > 16 {
                return false;
            }
        }
        false
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_string())
}

fn types(d: Dialect) -> &'static Types {
    static V1: OnceLock<Types> = OnceLock::new();
    static BETA: OnceLock<Types> = OnceLock::new();
    match d {
        Dialect::V1 => V1.get_or_init(|| Types::parse(crate::routes::metadata_document(Dialect::V1))),
        Dialect::Beta => BETA.get_or_init(|| Types::parse(crate::routes::metadata_document(Dialect::Beta))),
    }
}

/// Whether `type_name` (e.g. `accessPackage`) of root `d` defines `property`, itself or
/// through its base types.
pub fn defines(d: Dialect, type_name: &str, property: &str) -> bool {
    types(d).defines(type_name, property)
}

/// The properties that clients known to Grantry send although the target type does not
/// define them; accepted and ignored (listed in docs/decisions.md).
pub const TOLERATED: &[&str] = &[];

/// Refuses a property of `body` (at the top level) that neither Grantry's reader asked for
/// nor `type_name` defines in root `d`'s `$metadata`: 400 `RequestBodyRead`, as Graph.
pub fn check(body: &Body<'_>, d: Dialect, type_name: &str) -> Result<()> {
    body.refuse_undefined(type_name, |p| TOLERATED.contains(&p) || defines(d, type_name, p))
}

/// As [`check`], for a body merged from the client's properties (`sent`) and others.
pub fn check_sent(body: &Body<'_>, d: Dialect, type_name: &str, sent: &[String]) -> Result<()> {
    body.refuse_undefined(type_name, |p| {
        !sent.iter().any(|s| s == p) || TOLERATED.contains(&p) || defines(d, type_name, p)
    })
}

/// The type names the document of root `d` defines.
pub fn known_types(d: Dialect) -> HashSet<String> {
    types(d).types.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_know_their_own_and_inherited_properties() {
        assert!(defines(Dialect::V1, "accessPackage", "displayName"));
        assert!(defines(Dialect::V1, "accessPackage", "catalog"));
        assert!(defines(Dialect::V1, "accessPackage", "id"));
        assert!(!defines(Dialect::V1, "accessPackage", "displayname"));
        assert!(defines(Dialect::V1, "accessPackageTextInputQuestion", "isRequired"));
        assert!(defines(Dialect::Beta, "accessPackageAssignmentRequest", "accessPackageAssignment"));
        assert!(!defines(Dialect::V1, "noSuchType", "id"));
        assert!(known_types(Dialect::V1).len() > 90, "{}", known_types(Dialect::V1).len());
    }
}
