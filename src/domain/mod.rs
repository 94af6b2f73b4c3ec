//! The ground floor's vocabulary: the types and pure computations every
//! layer speaks, with no dependency on any other module of the crate
//! except [`crate::runtime`]. Ids ([`ids`], [`job_id`]), a requested
//! deadline ([`deadline`]), the runbook's words ([`risk`]: band, SLA tier,
//! job state), [`secret`], the Slack text helpers ([`text`]), the risk
//! assessment ([`assessment`]: ETA, severity, band, bottlenecks) and the
//! P50/P90 forecaster ([`forecast`]), and Servo's lineage with what a late
//! job means downstream ([`lineage`]); what each mitigation bought before
//! ([`bought`]); a person's time zone as Slack says it ([`zone`]).

pub mod assessment;
pub mod bought;
pub mod deadline;
pub mod forecast;
pub mod ids;
pub mod job_id;
pub mod lineage;
pub mod risk;
pub mod rotation;
pub mod secret;
pub mod text;
pub mod zone;
