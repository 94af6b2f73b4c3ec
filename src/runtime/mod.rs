//! The ground floor's machinery: injected time ([`clock`]), the metrics
//! registry served at `/metrics` ([`metrics`]), and worker supervision
//! ([`supervise`]). Depends on nothing else in the crate.

pub mod clock;
pub mod metrics;
pub mod supervise;
