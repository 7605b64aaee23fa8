//! Grantry's internal model.
//!
//! One model serves both Graph dialects: the `grantry-graph` crate renders it in the
//! v1.0 or beta shape. Nothing here performs I/O; time comes from [`clock::Clock`].

pub mod answer_pattern;
pub mod clock;
pub mod duration;
pub mod enums;
pub mod error;
pub mod ids;
pub mod limits;
pub mod membership_rule;
pub mod metrics;
pub mod model;

pub use error::{Error, ErrorKind, Result};
