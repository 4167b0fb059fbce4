//! Black-box API tests: a real server on a random port with its own database, on SQLite and
//! on PostgreSQL.

mod helpers;

mod access;
mod alerts;
mod api_keys;
mod audit;
mod audit_exports;
mod auth;
mod bad_input;
mod conventions;
mod datasets;
mod metrics;
mod otlp;
mod pii;
mod pii_exports;
mod policies;
mod policy_eval;
mod route_permissions;
mod streams;
mod uploads;
mod users;
mod webhooks;
