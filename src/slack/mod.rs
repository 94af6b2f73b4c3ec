//! Everything that speaks Slack: outbound Web API calls, inbound routes,
//! request signatures and message rendering.

pub mod api;
pub mod inbound;
pub mod render;
pub mod verify;
