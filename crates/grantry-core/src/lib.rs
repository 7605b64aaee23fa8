//! Grantry's use cases. Each public function takes the [`App`], the authenticated
//! [`Caller`] and validated input, checks authorization, and reads or writes through the
//! store. Nothing here knows about HTTP or JSON dialects.

pub mod access_history;
pub mod app;
pub mod applications;
pub mod approvals;
pub mod approvers;
pub mod assignments;
pub mod audit;
pub mod auth;
pub mod autoassign;
pub mod callouts;
pub mod catalogs;
pub mod connected;
pub mod delivery;
pub mod deprovision;
pub mod directory;
pub mod directory_audits;
pub mod expiry;
pub mod extensions;
pub mod filters;
pub mod generation;
pub mod groups;
pub mod idempotency;
pub mod jobs;
pub mod listing;
pub mod mail;
pub mod membership;
pub mod notify;
pub mod outbox;
pub mod packages;
pub mod page;
pub mod policies;
pub mod provisioning;
pub mod rbac;
pub mod related;
pub mod requests;
pub mod resources;
pub mod reviews;
pub mod scim;
pub mod webhooks;

pub use app::App;
pub use auth::{Caller, Principal, PrincipalKind};
pub use page::{Page, PageRequest};
