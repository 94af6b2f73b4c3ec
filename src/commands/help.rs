//! `/backfill help`, and the answer to an unknown subcommand.

use crate::app::AppState;
use serde_json::{json, Value};

pub fn run(state: &AppState, unknown: Option<&str>) -> Value {
    let data = json!({ "unknown": unknown, "runbook_url": state.config.runbook_url });
    match state.templates.render("help", &data) {
        Ok(v) => v,
        Err(e) => {
            // The help template is tested; if it still fails, say something useful.
            tracing::error!(error = %e, "help template failed");
            json!({
                "response_type": "ephemeral",
                "text": "Usage: /backfill status|list|pause|resume|extend-deadline|help",
            })
        }
    }
}
