//! Microsoft Graph wire formats for Grantry.
//!
//! Parsing is lenient the way real clients need (reference §13.2): enum values in any case,
//! booleans and integers sent as strings, `@odata.type` with or without `#`, beta property
//! names on v1.0 and the reverse where documented. Rendering is strict: v1.0 names and
//! camelCase enums under `/v1.0`, beta names and PascalCase strings under `/beta`.

pub mod approval;
pub mod assignment;
pub mod body;
pub mod catalog;
pub mod connected;
pub mod directory;
pub mod extension;
pub mod policy;
pub mod render;
pub mod request;
pub mod review;
pub mod wire;

pub use body::Body;
pub use render::Dialect;
pub use wire::Ts;
