//! What the bot does with a slash command, an interaction or an event once
//! it has been parsed, whichever way it arrived: an HTTP request
//! ([`crate::edge::inbound`], after the signature layer) or a Socket Mode envelope
//! ([`crate::edge::socket`]). Both are thin adapters around these three functions,
//! so the two modes answer the same input with the same [`Ack`].

use crate::commands::{self, Command, Parsed, SlashCommand, SlashForm};
use crate::context::AppState;
use bytes::Bytes;
use serde_json::{json, Value};
use std::time::Duration;

/// Slack shows an error if the answer takes more than 3 s; answer from here
/// on and send the real answer to `response_url` when it is ready.
const ACK_BUDGET: Duration = Duration::from_millis(2_500);

/// How to acknowledge one request. HTTP mode turns it into the response;
/// Socket Mode into the envelope's ack.
#[derive(Clone, Debug, PartialEq)]
pub enum Ack {
    /// Nothing to say: an empty 200, or `{"envelope_id"}` alone.
    Empty,
    /// The 200's JSON body, or the ack's `payload`.
    Body(Value),
    /// The same, serialised once and shared (help, answered from memory).
    Bytes(Bytes),
    /// The request itself is wrong, so a retry would be too: HTTP 400 with
    /// this text; Socket Mode acks it with nothing and logs the text.
    Malformed(String),
    /// Not handled now, on our side: Slack should send it again later
    /// (HTTP 503; Socket Mode withholds the ack).
    Retry,
}

impl Ack {
    /// The payload as JSON text, for a Socket Mode ack (`None`: no payload).
    pub fn payload_text(&self) -> Option<String> {
        match self {
            Ack::Body(v) => Some(v.to_string()),
            Ack::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Ack::Empty | Ack::Malformed(_) | Ack::Retry => None,
        }
    }
}

/// `/backfill ...`: answered within Slack's 3 seconds; slower work answers
/// through `response_url`.
pub async fn slash_command(state: &AppState, cmd: SlashCommand) -> Ack {
    tracing::info!(user = %cmd.user_id, channel = %cmd.channel_id, text = %cmd.text, "slash command");
    let parsed = Command::parse(&cmd.text);
    if let Some(ack) = at_once(state, &parsed, &cmd.channel_id, &cmd.user_id).await {
        return ack;
    }
    run(state, parsed, cmd).await
}

/// The same for a form read in place (HTTP): the answers given at once read
/// three of its fields, and only a command that runs on copies them all.
pub async fn slash_form(state: &AppState, form: &SlashForm<'_>) -> Ack {
    let (text, user, channel) = (form.text(), form.user_id(), form.channel_id());
    tracing::info!(user = %user, channel = %channel, text = %text, "slash command");
    let parsed = Command::parse(&text);
    if let Some(ack) = at_once(state, &parsed, &channel, &user).await {
        return ack;
    }
    run(state, parsed, form.to_command()).await
}

/// The answers that are bytes already: help, the same for everyone, and a
/// status card asked for again within seconds (after the same tenant
/// resolution as a fresh one).
async fn at_once(state: &AppState, parsed: &Parsed, channel: &str, user: &str) -> Option<Ack> {
    match &parsed.command {
        Command::Help => Some(Ack::Bytes(
            state
                .help_body
                .get_or_init(|| {
                    serde_json::to_vec(&commands::help::run(state, None))
                        .unwrap_or_default()
                        .into()
                })
                .clone(),
        )),
        Command::Status(crate::domain::job_id::JobRef::Id(id)) => {
            commands::status::status_from_memory(
                state,
                *id,
                parsed.tenant.as_deref(),
                channel,
                user,
            )
            .await
            .map(Ack::Bytes)
        }
        _ => None,
    }
}

async fn run(state: &AppState, parsed: Parsed, cmd: SlashCommand) -> Ack {
    // Mistakes are answered from memory too: no task, no timeout; an
    // unknown subcommand's usage is bytes rendered once.
    match &parsed.command {
        Command::Unknown(word) => return Ack::Bytes(commands::help::unknown_body(state, word)),
        Command::Invalid(_) => return Ack::Body(fitted(commands::run(state, parsed, &cmd).await)),
        _ => {}
    }
    let response_url = cmd.response_url.clone();
    let task_state = state.clone();
    let mut task = tokio::spawn(async move { commands::run(&task_state, parsed, &cmd).await });
    match tokio::time::timeout(ACK_BUDGET, &mut task).await {
        Ok(Ok(answer)) => Ack::Body(fitted(answer)),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "slash command task failed");
            Ack::Body(json!({
                "response_type": "ephemeral",
                "text": ":warning: Something went wrong on our side; nothing was changed. Try again, and tell the bot's operators if it persists."
            }))
        }
        Err(_) => {
            // Too slow for Slack's 3 s: acknowledge now, answer later.
            let slack = state.slack.clone();
            tokio::spawn(async move {
                match task.await {
                    Ok(answer) if !response_url.is_empty() => {
                        if let Err(e) = slack.respond(&response_url, &answer).await {
                            tracing::warn!(error = %e, "could not deliver a late slash command answer");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "slash command task failed"),
                }
            });
            Ack::Body(json!({
                "response_type": "ephemeral",
                "text": ":hourglass_flowing_sand: Working on it; the answer follows in a moment."
            }))
        }
    }
}

/// An answer cut to Slack's limits, whatever went into it.
fn fitted(mut answer: Value) -> Value {
    crate::slack::limits::fit_message(&mut answer);
    answer
}

/// A button click or a modal submission: the JSON object Slack sends as the
/// `payload` form field over HTTP, and as the envelope's payload over the socket.
pub async fn interaction(state: &AppState, payload: Value) -> Ack {
    if !payload.is_object() {
        return Ack::Malformed("the interaction payload is not a JSON object".into());
    }
    match crate::actions::handle(state, payload).await {
        Ok(Some(body)) => Ack::Body(body),
        Ok(None) => Ack::Empty,
        Err(e) => Ack::Malformed(e.to_string()),
    }
}

/// An Events API body: `url_verification` is echoed; each `event_callback`
/// is handled once however often Slack retries it.
pub async fn event(state: &AppState, event: Value) -> Ack {
    if !event.is_object() {
        return Ack::Malformed("an event must be a JSON object".into());
    }
    match event.get("type").and_then(Value::as_str) {
        Some("url_verification") => match event.get("challenge").and_then(Value::as_str) {
            Some(challenge) => Ack::Body(json!({ "challenge": challenge })),
            None => Ack::Malformed("url_verification without a challenge".into()),
        },
        Some("event_callback") => {
            let Some(id) = event.get("event_id").and_then(Value::as_str) else {
                return Ack::Malformed("event_callback without an event_id".into());
            };
            // Slack retries events it thinks we missed: handle each once.
            match state
                .store
                .first_delivery(&format!("event:{id}"), state.clock.now())
                .await
            {
                Ok(true) => {
                    tracing::info!(event_id = id, "Slack event received");
                    on_event(state, event.get("event").cloned().unwrap_or(Value::Null));
                    Ack::Empty
                }
                Ok(false) => {
                    tracing::info!(event_id = id, "Slack event already handled (a retry)");
                    Ack::Empty
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not record a Slack event");
                    // Asking Slack to retry later is what we want.
                    Ack::Retry
                }
            }
        }
        _ => Ack::Empty,
    }
}

/// What an event asks of the bot, done after the ack (Slack wants it
/// within 3 seconds and retries otherwise).
fn on_event(state: &AppState, event: Value) {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tab = event.get("tab").and_then(Value::as_str).unwrap_or("home");
    let user = event
        .get("user")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let ("app_home_opened", "home", Some(user)) = (kind, tab, user) {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::flows::home::opened(&state, &user).await {
                tracing::warn!(error = %e, "could not publish a Home");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodies_become_a_socket_payload() {
        assert_eq!(
            Ack::Body(json!({"text": "hi"})).payload_text().as_deref(),
            Some(r#"{"text":"hi"}"#)
        );
        assert_eq!(
            Ack::Bytes(Bytes::from_static(b"{\"a\":1}"))
                .payload_text()
                .as_deref(),
            Some("{\"a\":1}")
        );
        for ack in [Ack::Empty, Ack::Malformed("x".into()), Ack::Retry] {
            assert_eq!(ack.payload_text(), None, "{ack:?}");
        }
    }
}
