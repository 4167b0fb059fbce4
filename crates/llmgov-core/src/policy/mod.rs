//! Governance policies: policy-as-code in Rego with versions, evaluation, violations,
//! templates and the compliance controls they implement.

pub mod compliance;
pub mod model;
pub mod rego;
pub mod templates;
