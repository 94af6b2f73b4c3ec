//! `/backfill help`, and the answer to an unknown subcommand.

use crate::context::AppState;
use bytes::Bytes;
use serde_json::{json, Value};

pub fn run(state: &AppState, unknown: Option<&str>) -> Value {
    match unknown {
        // The most common command, and the same for everyone: render it once.
        None => state.help.get_or_init(|| render(state, None)).clone(),
        Some(_) => render(state, unknown),
    }
}

/// Stands for the unknown word in the answer rendered once: letters and
/// digits only, so no escaping changes it.
const WORD: &str = "Zq7UnknownSubcommandStandIn7qZ";

/// The answer to an unknown subcommand, as the bytes [`run`] would give
/// serialised: rendered once with a stand-in for the word, which each answer
/// replaces with the word as the template writes it (Slack's `& < >`
/// escaped, then as a JSON string).
pub fn unknown_body(state: &AppState, word: &str) -> Bytes {
    let pieces = state.help_unknown.get_or_init(|| {
        let body = serde_json::to_vec(&render(state, Some(WORD))).ok()?;
        let text = String::from_utf8(body).ok()?;
        let pieces: Vec<String> = text.split(WORD).map(str::to_string).collect();
        (pieces.len() > 1).then_some(pieces)
    });
    let Some(pieces) = pieces else {
        // The template no longer names the word: render as before.
        return serde_json::to_vec(&render(state, Some(word)))
            .unwrap_or_default()
            .into();
    };
    let quoted = serde_json::to_string(&crate::domain::text::escape_slack(word))
        .unwrap_or_else(|_| "\"\"".into());
    let written = &quoted[1..quoted.len() - 1];
    let mut out = String::with_capacity(pieces.iter().map(String::len).sum::<usize>() + 64);
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            out.push_str(written);
        }
        out.push_str(p);
    }
    out.into()
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
