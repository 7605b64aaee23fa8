//! SCIM PATCH (RFC 7644 §3.5.2) applied to a rendered resource, in the forms Entra's and
//! Okta's provisioning clients send: `op` in any case, path-less replace with an object
//! whose keys may themselves be paths, `members[value eq "…"]` paths and removal of
//! listed members. The patched resource is then read back like a PUT body, inside the
//! transaction that saves it.

use super::ScimError;
use super::filter::{ENTERPRISE_USER, Path, get_ci, matches, parse_patch_path};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Add,
    Replace,
    Remove,
}

pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Applies the PatchOp `body` to `resource`, all operations or none.
pub fn apply(resource: &mut Value, body: &Value) -> Result<(), ScimError> {
    let ops = get_ci(body, "Operations").and_then(Value::as_array).ok_or_else(|| {
        ScimError::bad(
            "invalidSyntax",
            "A PATCH body needs an 'Operations' array (schema urn:ietf:params:scim:api:messages:2.0:PatchOp).",
        )
    })?;
    let mut work = resource.clone();
    for (i, operation) in ops.iter().enumerate() {
        let name = get_ci(operation, "op").and_then(Value::as_str).unwrap_or("");
        let op = match name.to_ascii_lowercase().as_str() {
            "add" => Op::Add,
            "replace" => Op::Replace,
            "remove" => Op::Remove,
            _ => {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    format!("Operations[{i}].op is '{name}'; it must be add, replace or remove."),
                ));
            }
        };
        let value = get_ci(operation, "value").cloned();
        match get_ci(operation, "path").and_then(Value::as_str).filter(|p| !p.trim().is_empty()) {
            Some(path) => {
                let parsed = parse_patch_path(path)
                    .map_err(|e| ScimError::bad("invalidPath", format!("Operations[{i}].path: {e}.")))?;
                apply_one(&mut work, op, &parsed, value, i)?;
            }
            None if op == Op::Remove => {
                return Err(ScimError::bad("noTarget", format!("Operations[{i}]: a remove needs a 'path'.")));
            }
            None => {
                let Some(Value::Object(fields)) = value else {
                    return Err(ScimError::bad(
                        "invalidValue",
                        format!("Operations[{i}]: without a 'path', 'value' must be an object of attributes."),
                    ));
                };
                // Keys may be paths themselves (Entra: "name.givenName", "urn:…:User:department").
                for (key, v) in fields {
                    if key.eq_ignore_ascii_case(ENTERPRISE_USER) {
                        if let Value::Object(ext) = v {
                            for (k, v) in ext {
                                let parsed = parse_patch_path(&format!("{ENTERPRISE_USER}:{k}")).map_err(|e| {
                                    ScimError::bad("invalidPath", format!("Operations[{i}].value: {e}."))
                                })?;
                                apply_one(&mut work, op, &parsed, Some(v), i)?;
                            }
                        }
                        continue;
                    }
                    let parsed = parse_patch_path(&key)
                        .map_err(|e| ScimError::bad("invalidPath", format!("Operations[{i}].value: {e}.")))?;
                    apply_one(&mut work, op, &parsed, Some(v), i)?;
                }
            }
        }
    }
    *resource = work;
    Ok(())
}

/// The key under which `obj` holds `name` (its existing spelling), or `name` itself.
fn key_in(obj: &Map<String, Value>, name: &str) -> String {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_string())
}

fn object_mut<'a>(parent: &'a mut Map<String, Value>, name: &str) -> &'a mut Map<String, Value> {
    let key = key_in(parent, name);
    let slot = parent.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

/// Whether `value` names the same element as `item` (by its `value` sub-attribute).
fn same_value(item: &Value, value: &Value) -> bool {
    match (get_ci(item, "value"), get_ci(value, "value")) {
        (Some(a), Some(b)) => a == b,
        _ => item == value,
    }
}

fn apply_one(resource: &mut Value, op: Op, path: &Path, value: Option<Value>, i: usize) -> Result<(), ScimError> {
    if op != Op::Remove && value.is_none() {
        return Err(ScimError::bad("invalidValue", format!("Operations[{i}] needs a 'value'.")));
    }
    let root = resource.as_object_mut().ok_or_else(|| ScimError::internal("the resource is not an object"))?;
    let holder = match &path.extension {
        Some(urn) => object_mut(root, urn),
        None => root,
    };
    let key = key_in(holder, &path.attr);
    match (&path.filter, &path.sub) {
        (None, None) => match op {
            Op::Remove => match (holder.get_mut(&key), value) {
                // Entra without aadOptscim062020: remove the listed members.
                (Some(Value::Array(items)), Some(Value::Array(gone))) => {
                    items.retain(|item| !gone.iter().any(|g| same_value(item, g)));
                }
                _ => {
                    holder.remove(&key);
                }
            },
            Op::Add => {
                let value = value.unwrap_or(Value::Null);
                match (holder.get_mut(&key), value) {
                    (Some(Value::Array(items)), Value::Array(more)) => {
                        for v in more {
                            if !items.iter().any(|item| same_value(item, &v)) {
                                items.push(v);
                            }
                        }
                    }
                    (Some(Value::Array(items)), v) => {
                        if !items.iter().any(|item| same_value(item, &v)) {
                            items.push(v);
                        }
                    }
                    (Some(Value::Object(existing)), Value::Object(more)) => {
                        for (k, v) in more {
                            let k2 = key_in(existing, &k);
                            existing.insert(k2, v);
                        }
                    }
                    (_, v) => {
                        holder.insert(key, v);
                    }
                }
            }
            Op::Replace => {
                let value = value.unwrap_or(Value::Null);
                match (holder.get_mut(&key), value) {
                    // Replacing a complex attribute sets the sub-attributes given.
                    (Some(Value::Object(existing)), Value::Object(more)) => {
                        for (k, v) in more {
                            let k2 = key_in(existing, &k);
                            existing.insert(k2, v);
                        }
                    }
                    (_, v) => {
                        holder.insert(key, v);
                    }
                }
            }
        },
        (None, Some(sub)) => {
            let inner = object_mut(holder, &path.attr);
            let sub_key = key_in(inner, sub);
            match op {
                Op::Remove => {
                    inner.remove(&sub_key);
                }
                _ => {
                    inner.insert(sub_key, value.unwrap_or(Value::Null));
                }
            }
        }
        (Some(filter), sub) => {
            let slot = holder.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if slot.is_null() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else {
                return Err(ScimError::bad(
                    "invalidPath",
                    format!("Operations[{i}].path: '{}' is not multi-valued, so it takes no [filter].", path.attr),
                ));
            };
            let hits: Vec<usize> = (0..items.len()).filter(|&n| matches(filter, &items[n])).collect();
            match (op, sub) {
                (Op::Remove, None) => {
                    let mut n = 0;
                    items.retain(|_| {
                        let keep = !hits.contains(&n);
                        n += 1;
                        keep
                    });
                }
                (Op::Remove, Some(sub)) => {
                    for &n in &hits {
                        if let Value::Object(o) = &mut items[n] {
                            let k = key_in(o, sub);
                            o.remove(&k);
                        }
                    }
                }
                (_, sub) if hits.is_empty() => {
                    // `emails[type eq "work"].value` on a user without one: make the element
                    // the filter describes (Entra adds addresses this way).
                    let seed = match filter.as_ref() {
                        super::filter::Filter::Compare(p, super::filter::Op::Eq, v)
                            if p.filter.is_none() && p.sub.is_none() && p.extension.is_none() =>
                        {
                            let mut o = Map::new();
                            o.insert(p.attr.clone(), v.clone());
                            o
                        }
                        _ => {
                            return Err(ScimError::bad(
                                "noTarget",
                                format!("Operations[{i}].path: no value of '{}' matches the filter.", path.attr),
                            ));
                        }
                    };
                    let mut element = seed;
                    match (sub, value.unwrap_or(Value::Null)) {
                        (Some(sub), v) => {
                            element.insert(sub.clone(), v);
                        }
                        (None, Value::Object(more)) => element.extend(more),
                        (None, _) => {
                            return Err(ScimError::bad(
                                "invalidValue",
                                format!("Operations[{i}].value must be an object for '{}'.", path.attr),
                            ));
                        }
                    }
                    items.push(Value::Object(element));
                }
                (_, Some(sub)) => {
                    let v = value.unwrap_or(Value::Null);
                    for &n in &hits {
                        if let Value::Object(o) = &mut items[n] {
                            let k = key_in(o, sub);
                            o.insert(k, v.clone());
                        }
                    }
                }
                (_, None) => {
                    let v = value.unwrap_or(Value::Null);
                    for &n in &hits {
                        match (&mut items[n], &v) {
                            (Value::Object(o), Value::Object(more)) => {
                                for (k, x) in more {
                                    let k2 = key_in(o, k);
                                    o.insert(k2, x.clone());
                                }
                            }
                            (item, v) => *item = v.clone(),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(resource: Value, ops: Value) -> Value {
        let mut r = resource;
        apply(&mut r, &json!({"schemas": [PATCH_OP], "Operations": ops})).unwrap();
        r
    }

    #[test]
    fn entra_and_okta_forms() {
        let user = json!({"userName": "a@b.c", "active": true, "name": {"givenName": "A"}, "emails": []});
        let r = patched(user.clone(), json!([{"op": "Replace", "path": "active", "value": "False"}]));
        assert_eq!(r["active"], "False");
        let r = patched(user.clone(), json!([{"op": "replace", "value": {"active": false}}]));
        assert_eq!(r["active"], false);
        let r = patched(
            user.clone(),
            json!([{"op": "replace", "value": {
                "name.givenName": "B",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales"
            }}]),
        );
        assert_eq!(r["name"]["givenName"], "B");
        assert_eq!(r[ENTERPRISE_USER]["department"], "Sales");
        let r = patched(user, json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "a@b.c"}]));
        assert_eq!(r["emails"], json!([{"type": "work", "value": "a@b.c"}]));

        let group = json!({"displayName": "G", "members": [{"value": "u1"}, {"value": "u2"}]});
        let r = patched(group.clone(), json!([{"op": "remove", "path": "members[value eq \"u1\"]"}]));
        assert_eq!(r["members"], json!([{"value": "u2"}]));
        let r = patched(group.clone(), json!([{"op": "Remove", "path": "members", "value": [{"value": "u2"}]}]));
        assert_eq!(r["members"], json!([{"value": "u1"}]));
        let r =
            patched(group.clone(), json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u3"}]}]));
        assert_eq!(r["members"].as_array().unwrap().len(), 3);
        let r = patched(group, json!([{"op": "replace", "value": {"id": "x", "displayName": "H"}}]));
        assert_eq!(r["displayName"], "H");
    }

    #[test]
    fn bad_operations_change_nothing() {
        let mut r = json!({"displayName": "G"});
        let body = json!({"Operations": [
            {"op": "replace", "path": "displayName", "value": "H"},
            {"op": "move", "path": "displayName"}
        ]});
        assert_eq!(apply(&mut r, &body).unwrap_err().scim_type, Some("invalidSyntax"));
        assert_eq!(r["displayName"], "G");
        let err = apply(&mut r, &json!({"Operations": [{"op": "remove"}]})).unwrap_err();
        assert_eq!(err.scim_type, Some("noTarget"));
    }
}
