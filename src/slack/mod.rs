//! Everything that speaks Slack: outbound Web API calls, what the bot does
//! with Slack's requests ([`handlers`]) and the two ways they arrive (signed
//! HTTP routes in [`inbound`] behind [`verify`], or Socket Mode envelopes in
//! [`socket`]), message rendering, and file uploads ([`upload`]).

pub mod api;
pub mod charts;
pub mod directory;
pub mod limits;
pub mod render;
pub mod upload;
