//! Governance policies: policy-as-code in Rego with versions, evaluation, violations,
//! templates and the compliance controls they implement.

pub mod bulk;
pub mod compliance;
pub mod engine;
pub mod evaluate;
pub mod facts;
pub mod model;
pub mod recorder;
pub mod rego;
pub mod service;
pub mod store;
pub mod templates;
