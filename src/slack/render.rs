//! Block Kit messages from handlebars templates (`templates/*.hbs`), one per
//! message kind. Templates are compiled into the binary, registered in strict
//! mode (a missing field is an error, not an empty string) and escaped for a
//! JSON string plus Slack's `& < >`.

use handlebars::{Handlebars, RenderErrorReason};
use serde::Serialize;
use serde_json::Value;
use slack_morphism::prelude::SlackBlock;

/// Every template, by name. Adding a message kind means adding a line here.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("help", include_str!("../../templates/help.hbs")),
    ("alert", include_str!("../../templates/alert.hbs")),
    (
        "thread_note",
        include_str!("../../templates/thread_note.hbs"),
    ),
    ("job_card", include_str!("../../templates/job_card.hbs")),
    ("job_list", include_str!("../../templates/job_list.hbs")),
    (
        "approval_request",
        include_str!("../../templates/approval_request.hbs"),
    ),
    ("notice", include_str!("../../templates/notice.hbs")),
    ("review", include_str!("../../templates/review.hbs")),
    ("rollup", include_str!("../../templates/rollup.hbs")),
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {0}: {1}")]
    Template(String, String),
    #[error("template {0} produced invalid JSON: {1}")]
    Json(String, String),
    #[error("template {0} produced a block Slack would not recognise: {1}")]
    Block(String, String),
}

/// Escapes text for the inside of a JSON string, and Slack's control
/// characters `& < >` so user text cannot forge mentions or links.
pub fn escape_json_and_slack(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            other => push_json_char(&mut out, other),
        }
    }
    out
}

/// Escapes for a JSON string only: for text that is already Slack markup
/// (mentions, date tokens, links) built by the bot itself.
pub fn escape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_json_char(&mut out, c);
    }
    out
}

fn push_json_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

/// The compiled templates.
pub struct Templates {
    hb: Handlebars<'static>,
}

impl Templates {
    pub fn load() -> Result<Self, RenderError> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(escape_json_and_slack);
        // `{{slack x}}`: a value that is already Slack markup, JSON-escaped only.
        hb.register_helper(
            "slack",
            Box::new(
                |h: &handlebars::Helper,
                 _: &Handlebars,
                 _: &handlebars::Context,
                 _: &mut handlebars::RenderContext,
                 out: &mut dyn handlebars::Output|
                 -> handlebars::HelperResult {
                    let v = h
                        .param(0)
                        .ok_or(RenderErrorReason::ParamNotFoundForIndex("slack", 0))?;
                    let s = match v.value() {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    out.write(&escape_json(&s))?;
                    Ok(())
                },
            ),
        );
        for (name, text) in TEMPLATES {
            hb.register_template_string(name, *text)
                .map_err(|e| RenderError::Template(name.to_string(), e.to_string()))?;
        }
        Ok(Self { hb })
    }

    /// Renders a message kind to its JSON, and checks that every block is one
    /// slack-morphism (and so Slack) recognises.
    pub fn render(&self, name: &str, data: &impl Serialize) -> Result<Value, RenderError> {
        let text = self
            .hb
            .render(name, data)
            .map_err(|e| RenderError::Template(name.to_string(), e.to_string()))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| RenderError::Json(name.to_string(), e.to_string()))?;
        if let Some(blocks) = value.get("blocks") {
            check_blocks(blocks).map_err(|e| RenderError::Block(name.to_string(), e))?;
        }
        if let Some(attachments) = value.get("attachments").and_then(Value::as_array) {
            for a in attachments {
                if let Some(blocks) = a.get("blocks") {
                    check_blocks(blocks).map_err(|e| RenderError::Block(name.to_string(), e))?;
                }
            }
        }
        Ok(value)
    }
}

/// `SlackBlock` has a catch-all `Unknown` case, so a malformed known block
/// silently deserialises as Unknown: treat that as the error it is.
pub fn check_blocks(blocks: &Value) -> Result<(), String> {
    let arr = blocks.as_array().ok_or("blocks is not an array")?;
    for (i, b) in arr.iter().enumerate() {
        let parsed: SlackBlock = serde_json::from_value(b.clone())
            .map_err(|e| format!("block {i} does not parse: {e}"))?;
        if matches!(parsed, SlackBlock::Unknown(_)) {
            return Err(format!("block {i} is not a known Block Kit block: {b}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::text::{date_token, duration_words};
    use serde_json::json;

    #[test]
    fn user_text_cannot_break_json_or_forge_mentions() {
        assert_eq!(
            escape_json_and_slack("a \"q\" <!channel> & \\ \n"),
            "a \\\"q\\\" &lt;!channel&gt; &amp; \\\\ \\n"
        );
        assert_eq!(escape_json("<@U1> \"x\""), "<@U1> \\\"x\\\"");
    }

    #[test]
    fn help_renders_for_known_and_unknown_subcommands() {
        let t = Templates::load().unwrap();
        let v = t
            .render(
                "help",
                &json!({"unknown": null, "runbook_url": "https://r.example/x"}),
            )
            .unwrap();
        assert!(v["text"].as_str().unwrap().starts_with("Usage"));
        let v = t
            .render(
                "help",
                &json!({"unknown": "frobnicate <!here>", "runbook_url": "https://r"}),
            )
            .unwrap();
        let first = v["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(first.contains("frobnicate &lt;!here&gt;"), "{first}");
    }

    #[test]
    fn strict_mode_refuses_missing_fields() {
        let t = Templates::load().unwrap();
        assert!(t.render("help", &json!({"unknown": null})).is_err());
    }

    #[test]
    fn date_tokens_render_in_the_readers_zone_with_a_utc_fallback() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-28T14:20:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            date_token(t),
            "<!date^1795875600^{date_short_pretty} at {time}|2026-11-28 14:20 UTC>"
        );
    }

    #[test]
    fn durations_read_in_words() {
        let m = chrono::Duration::minutes;
        assert_eq!(
            duration_words(chrono::Duration::seconds(20)),
            "under a minute"
        );
        assert_eq!(duration_words(m(54)), "54 min");
        assert_eq!(duration_words(m(130)), "2 h 10 min");
        assert_eq!(duration_words(m(120)), "2 h");
        assert_eq!(duration_words(m(27 * 60 + 5)), "1 d 3 h");
        assert_eq!(duration_words(m(48 * 60)), "2 d");
        assert_eq!(duration_words(-m(54)), "54 min");
    }

    #[test]
    fn an_unknown_block_is_an_error() {
        assert!(check_blocks(
            &json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}])
        )
        .is_ok());
        assert!(check_blocks(&json!([{"type": "carousel"}])).is_err());
    }
}
