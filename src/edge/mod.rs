//! The inbound edge: what Slack sends the bot. The HTTP routes
//! ([`inbound`]) behind the signature layer ([`verify`]), Socket Mode
//! ([`socket`]), and the [`handlers`] both share, which hand each request to
//! a slash command ([`crate::commands`]) or a button ([`crate::actions`]).
//! The outbound client is [`crate::slack`].

pub mod handlers;
pub mod inbound;
pub mod socket;
pub mod verify;
