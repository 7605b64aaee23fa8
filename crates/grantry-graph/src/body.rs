//! A lenient reader over a JSON request body, producing errors that name the property.

use chrono::{DateTime, Utc};
use grantry_domain::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// A JSON object from a request body (or a nested object within it). `path` is the
/// property path used in error messages, e.g. `assignment.target`. Every property name a
/// reader asks for is remembered (shared by the nested objects of one body), so that
/// [`Body::unread`] can name what no reader recognised.
#[derive(Debug, Clone)]
pub struct Body<'a> {
    map: &'a Map<String, Value>,
    path: String,
    asked: Arc<Mutex<BTreeSet<String>>>,
}

impl<'a> Body<'a> {
    /// The top-level body; it must be a JSON object.
    pub fn root(value: &'a Value) -> Result<Body<'a>> {
        match value {
            Value::Object(map) => Ok(Body { map, path: String::new(), asked: Default::default() }),
            _ => Err(Error::bad_request("InvalidRequestBody", "The request body must be a JSON object.")),
        }
    }

    /// The whole object: every property in it counts as read.
    pub fn map(&self) -> &'a Map<String, Value> {
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        for k in self.map.keys() {
            asked.insert(self.path_of(k));
        }
        self.map
    }

    fn nested(&self, map: &'a Map<String, Value>, path: String) -> Body<'a> {
        Body { map, path, asked: self.asked.clone() }
    }

    fn note(&self, keys: &[&str]) {
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            asked.insert(self.path_of(k));
        }
    }

    /// The properties of this object that no reader asked for, in order, leaving out OData
    /// annotations (`@odata.type`, `x@odata.bind` …), which belong to the protocol.
    pub fn unread(&self) -> Vec<&'a str> {
        let asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        self.map.keys().filter(|k| !k.contains('@') && !asked.contains(&self.path_of(k))).map(String::as_str).collect()
    }

    /// Refuses a property of this object that no reader asked for and that `defined` does
    /// not know, as Graph refuses a property its type does not define: 400
    /// `RequestBodyRead` naming the property and the type.
    pub fn refuse_undefined(&self, type_name: &str, defined: impl Fn(&str) -> bool) -> Result<()> {
        match self.unread().into_iter().find(|&k| !defined(k)) {
            None => Ok(()),
            Some(k) => Err(Error::bad_request(
                "RequestBodyRead",
                format!(
                    "The property '{k}' does not exist on type 'microsoft.graph.{type_name}'. Make sure to only use property names that are defined by the type or mark the type as open type."
                ),
            )
            .with_target(self.path_of(k))),
        }
    }

    /// The full path of `key`, for messages.
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    /// The first of `keys` that is present and not null.
    pub fn raw<'k>(&self, keys: &[&'k str]) -> Option<(&'a Value, &'k str)> {
        self.note(keys);
        keys.iter().find_map(|k| match self.map.get(*k) {
            Some(Value::Null) | None => None,
            Some(v) => Some((v, *k)),
        })
    }

    /// The value of `key` as sent, null included.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.note(&[key]);
        self.map.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.note(&[key]);
        self.map.contains_key(key)
    }

    pub fn object(&self, keys: &[&str]) -> Result<Option<Body<'a>>> {
        match self.raw(keys) {
            None => Ok(None),
            Some((Value::Object(map), k)) => Ok(Some(self.nested(map, self.path_of(k)))),
            Some((_, k)) => {
                Err(Error::invalid_property(&self.path_of(k), format!("'{}' must be a JSON object.", self.path_of(k))))
            }
        }
    }

    pub fn array(&self, keys: &[&str]) -> Result<Option<(&'a Vec<Value>, String)>> {
        match self.raw(keys) {
            None => Ok(None),
            Some((Value::Array(items), k)) => Ok(Some((items, self.path_of(k)))),
            Some((_, k)) => {
                Err(Error::invalid_property(&self.path_of(k), format!("'{}' must be a JSON array.", self.path_of(k))))
            }
        }
    }

    /// The objects of an array property, each as a [`Body`].
    pub fn objects(&self, keys: &[&str]) -> Result<Vec<Body<'a>>> {
        let Some((items, path)) = self.array(keys)? else { return Ok(Vec::new()) };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok(self.nested(map, format!("{path}[{i}]"))),
                _ => Err(Error::invalid_property(&path, format!("Each element of '{path}' must be a JSON object."))),
            })
            .collect()
    }

    /// A string, at most as long as [`grantry_domain::limits::max_chars`] allows for its key.
    pub fn str(&self, keys: &[&str]) -> Result<Option<String>> {
        match self.raw(keys) {
            None => Ok(None),
            Some((Value::String(s), k)) => {
                self.check_length(k, s)?;
                Ok(Some(s.clone()))
            }
            Some((_, k)) => {
                Err(Error::invalid_property(&self.path_of(k), format!("'{}' must be a string.", self.path_of(k))))
            }
        }
    }

    /// Refuses a text longer than its property allows (400 naming the property and the limit).
    pub fn check_length(&self, key: &str, value: &str) -> Result<()> {
        grantry_domain::limits::check(&self.path_of(key), key, value)
    }

    pub fn required_str(&self, keys: &[&str]) -> Result<String> {
        match self.str(keys)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(Error::invalid_property(
                &self.path_of(keys[0]),
                format!("'{}' is required and must be a non-empty string.", self.path_of(keys[0])),
            )),
        }
    }

    /// A boolean; `"true"`/`"false"` strings are accepted (a v1.0 docs example sends them).
    pub fn bool(&self, keys: &[&str]) -> Result<Option<bool>> {
        match self.raw(keys) {
            None => Ok(None),
            Some((Value::Bool(b), _)) => Ok(Some(*b)),
            Some((Value::String(s), _)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some((Value::String(s), _)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some((_, k)) => {
                Err(Error::invalid_property(&self.path_of(k), format!("'{}' must be true or false.", self.path_of(k))))
            }
        }
    }

    /// A 32-bit integer; numeric strings are accepted.
    pub fn i32(&self, keys: &[&str]) -> Result<Option<i32>> {
        let bad = |k: &str| {
            Error::invalid_property(&self.path_of(k), format!("'{}' must be a whole number.", self.path_of(k)))
        };
        match self.raw(keys) {
            None => Ok(None),
            Some((Value::Number(n), k)) => {
                n.as_i64().and_then(|v| i32::try_from(v).ok()).map(Some).ok_or_else(|| bad(k))
            }
            Some((Value::String(s), k)) => s.trim().parse::<i32>().map(Some).map_err(|_| bad(k)),
            Some((_, k)) => Err(bad(k)),
        }
    }

    /// A DateTimeOffset; any RFC 3339 offset is accepted and converted to UTC. A value
    /// without an offset is read as UTC.
    pub fn datetime(&self, keys: &[&str]) -> Result<Option<DateTime<Utc>>> {
        match self.raw(keys) {
            None => Ok(None),
            Some((Value::String(s), k)) => parse_datetime(s).map(Some).ok_or_else(|| {
                Error::invalid_property(
                    &self.path_of(k),
                    format!(
                        "'{}' must be an ISO-8601 date and time such as 2024-05-01T10:00:00Z; got '{}'.",
                        self.path_of(k),
                        grantry_domain::limits::excerpt(s)
                    ),
                )
            }),
            Some((_, k)) => Err(Error::invalid_property(
                &self.path_of(k),
                format!("'{}' must be a date-time string.", self.path_of(k)),
            )),
        }
    }

    /// An `Edm.Duration` (ISO-8601, or the Python SDK's `str(timedelta)` form).
    pub fn duration(&self, keys: &[&str]) -> Result<Option<chrono::Duration>> {
        match self.str(keys)? {
            None => Ok(None),
            Some(s) => grantry_domain::duration::parse(&s).map(Some).map_err(|m| {
                Error::invalid_property(&self.path_of(keys[0]), format!("'{}': {m}", self.path_of(keys[0])))
            }),
        }
    }

    /// An enum value parsed case-insensitively by `parse`; the error lists the allowed values.
    pub fn enumeration<T>(&self, keys: &[&str], parse: impl Fn(&str) -> Option<T>, allowed: &str) -> Result<Option<T>> {
        match self.str(keys)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(|| {
                Error::invalid_property(
                    &self.path_of(keys[0]),
                    format!(
                        "'{}' has the value '{}', which is not one of the allowed values: {allowed}.",
                        self.path_of(keys[0]),
                        grantry_domain::limits::excerpt(&s)
                    ),
                )
            }),
        }
    }

    /// The derived type named by `@odata.type`, without `#` and namespace prefix
    /// (`#microsoft.graph.singleUser` → `singleUser`).
    pub fn odata_type(&self) -> Option<String> {
        match self.map.get("@odata.type") {
            Some(Value::String(t)) => Some(short_type_name(t)),
            _ => None,
        }
    }

    /// An id given as `{"id": …}` under one of `keys`, or as a scalar under `scalar_keys`.
    pub fn bound_id(&self, nested: &[&str], scalar_keys: &[&str]) -> Result<Option<String>> {
        if let Some(s) = self.str(scalar_keys)? {
            return Ok(Some(grantry_domain::ids::normalize(&s)));
        }
        match self.object(nested)? {
            Some(obj) => Ok(obj.str(&["id"])?.map(|s| grantry_domain::ids::normalize(&s))),
            None => Ok(None),
        }
    }
}

/// `#microsoft.graph.singleUser`, `microsoft.graph.singleUser` and `singleUser` all give
/// `singleUser`.
pub fn short_type_name(t: &str) -> String {
    let t = t.trim().trim_start_matches('#');
    t.strip_prefix("microsoft.graph.").unwrap_or(t).to_string()
}

pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(grantry_domain::clock::truncate_micros(t.with_timezone(&Utc)));
    }
    // No offset: read as UTC (Graph treats DateTimeOffset values without offset as UTC).
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(grantry_domain::clock::truncate_micros(t.and_utc()));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    None
}
