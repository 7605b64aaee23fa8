//! Rendering helpers shared by every entity.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// The dialect of the URL root: `/v1.0` or `/beta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    V1,
    Beta,
}

impl Dialect {
    /// The URL root segment.
    pub fn root(self) -> &'static str {
        match self {
            Dialect::V1 => "v1.0",
            Dialect::Beta => "beta",
        }
    }
    pub fn is_beta(self) -> bool {
        self == Dialect::Beta
    }
    /// Chooses between the v1.0 and beta spelling of a name.
    pub fn pick(self, v1: &'static str, beta: &'static str) -> &'static str {
        match self {
            Dialect::V1 => v1,
            Dialect::Beta => beta,
        }
    }
}

/// Graph timestamp: UTC with a `Z` suffix and only as many fractional digits as needed.
pub fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub fn ts_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map(ts).unwrap_or(Value::Null)
}

/// `#microsoft.graph.{name}`.
pub fn odata_type(name: &str) -> Value {
    Value::String(format!("#microsoft.graph.{name}"))
}

pub fn opt_str(s: &Option<String>) -> Value {
    s.as_ref().map(|s| Value::String(s.clone())).unwrap_or(Value::Null)
}

/// Builds a JSON object from key/value pairs, keeping insertion order of the pairs.
pub fn object<I: IntoIterator<Item = (&'static str, Value)>>(pairs: I) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.to_string(), v);
    }
    Value::Object(map)
}
