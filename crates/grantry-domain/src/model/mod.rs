//! Entities. Each is stored as one row (indexed columns plus the serialized entity) and
//! rendered by `grantry-graph` in the dialect of the URL.

pub mod approval;
pub mod assignment;
pub mod catalog;
pub mod connected;
pub mod directory;
pub mod extension;
pub mod outbox;
pub mod policy;
pub mod review;
pub mod schedule;
pub mod webhook;

pub use approval::*;
pub use assignment::*;
pub use catalog::*;
pub use connected::*;
pub use directory::*;
pub use extension::*;
pub use outbox::*;
pub use policy::*;
pub use review::*;
pub use schedule::*;
pub use webhook::*;

/// Serde for `chrono::Duration` as ISO-8601 text.
pub mod serde_duration {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&crate::duration::format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| crate::duration::parse(&t).map_err(serde::de::Error::custom)).transpose()
    }
}
