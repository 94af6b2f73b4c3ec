//! Where Socket Mode stands, shared by the Socket Mode supervisor
//! ([`crate::edge::socket`]) and `/readyz`.

use std::sync::{Arc, Mutex};

/// Where Socket Mode stands, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketState {
    /// HTTP mode only.
    Disabled,
    /// Opening the first connection.
    Connecting,
    /// Slack said `hello` on the current connection.
    Connected,
    /// The connection was lost; opening a new one (with backoff).
    Reconnecting,
    /// Slack turned Socket Mode off for the app; the bot stopped reconnecting.
    LinkDisabled,
}

impl SocketState {
    pub fn as_str(self) -> &'static str {
        match self {
            SocketState::Disabled => "disabled",
            SocketState::Connecting => "connecting",
            SocketState::Connected => "connected",
            SocketState::Reconnecting => "reconnecting",
            SocketState::LinkDisabled => "link_disabled",
        }
    }
}

/// The Socket Mode state, shared with `/readyz`. Cheap to clone.
#[derive(Clone)]
pub struct SocketStatus(Arc<Mutex<SocketState>>);

impl SocketStatus {
    pub fn new(state: SocketState) -> Self {
        Self(Arc::new(Mutex::new(state)))
    }

    pub fn get(&self) -> SocketState {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set(&self, state: SocketState) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if *s != state {
            tracing::info!(from = s.as_str(), to = state.as_str(), "Socket Mode");
            *s = state;
        }
    }
}
