//! Grantry's integration tests: one binary, each test starting the real server on port 0
//! with a fresh database and talking HTTP to it.

mod approvals;
mod assignments;
mod authz;
mod backup;
mod binary;
mod callouts;
mod catalogs;
mod compression;
mod conventions;
mod copy;
mod crash;
mod devclock;
mod extensions;
mod groups;
mod hardening;
mod helpers;
mod hostile;
mod idempotency;
mod identity;
mod invariants;
mod metrics;
mod model;
mod multinode;
mod oauth;
mod openapi;
mod packages;
mod policies;
mod query_options;
mod races;
mod rbac;
mod receiver;
mod requests;
mod shutdown;
mod users;
mod webhooks;
