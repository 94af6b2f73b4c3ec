//! Everything that speaks Slack: outbound Web API calls, what the bot does
//! with Slack's requests ([`handlers`]) and the signed HTTP routes they
//! arrive on ([`inbound`], behind [`verify`]), and message rendering.

pub mod api;
pub mod handlers;
pub mod inbound;
pub mod render;
pub mod verify;
