//! `/backfill help`, and the answer to an unknown subcommand.

use crate::context::AppState;
use serde_json::{json, Value};

pub fn run(state: &AppState, unknown: Option<&str>) -> Value {
    match unknown {
        // The most common command, and the same for everyone: render it once.
        None => state.help.get_or_init(|| render(state, None)).clone(),
        Some(_) => render(state, unknown),
    }
}

fn render(state: &AppState, unknown: Option<&str>) -> Value {
    let data = json!({ "unknown": unknown, "runbook_url": state.config.runbook_url });
    match state.templates.render("help", &data) {
        Ok(v) => v,
        Err(e) => {
            // The help template is tested; if it still fails, say something useful.
            tracing::error!(error = %e, "help template failed");
            json!({
                "response_type": "ephemeral",
                "text": "Usage: /backfill status|impact|list|review|pause|resume|extend-deadline|silence|silences|unsilence|maintenance|help",
            })
        }
    }
}
