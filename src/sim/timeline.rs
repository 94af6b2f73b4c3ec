//! Turns what the bot sent to Slack into a timeline people can read: where it
//! went (channel, thread or DM), what it said with mentions, date tokens and
//! links resolved, and its buttons as `[Label]`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What kind of thing happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A new message (in a channel, a thread or a DM).
    Message,
    /// An existing message edited in place.
    Edit,
    /// Something only one person sees (an ephemeral message or a response_url reply).
    Ephemeral,
    /// A dialog (modal) opened for someone.
    Dialog,
    /// A person acts: a click, a slash command, a dialog submission.
    Action,
    /// Servo changed (by the bot, or by itself: started, completed...).
    Servo,
    /// Slack refused a call.
    Refused,
}

/// One line of the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    /// Minutes since the scenario's start.
    pub minute: i64,
    pub kind: Kind,
    /// `#channel`, `#channel › thread`, `DM @person`, `Servo`, ...
    pub place: String,
    /// Who acted or who sees it, when that is one person (a Slack user id).
    pub who: Option<String>,
    /// The text, made readable (may span lines).
    pub text: String,
    /// Button labels, in order.
    pub buttons: Vec<String>,
}

/// Names for ids, used to make text readable.
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub people: BTreeMap<String, String>,
    pub channels: BTreeMap<String, String>,
    /// Job ids to the scenario's job names.
    pub jobs: BTreeMap<String, String>,
}

impl Names {
    /// `@Dana` for a person the scenario names `"Dana, on-call engineer"`; `@U123` otherwise.
    pub fn person(&self, id: &str) -> String {
        match self.people.get(id) {
            Some(name) => format!("@{}", name.split(',').next().unwrap_or(name).trim()),
            None => format!("@{id}"),
        }
    }

    pub fn channel(&self, id: &str) -> String {
        if let Some(user) = id.strip_prefix('D').filter(|u| u.starts_with(['U', 'W'])) {
            return format!("DM {}", self.person(user));
        }
        match self.channels.get(id) {
            Some(name) => format!("#{}", name.trim_start_matches('#')),
            None => format!("#{id}"),
        }
    }
}

/// Slack's mrkdwn made plain: `<@U1>`, `<!subteam^S1|@team>`, `<!date^…|…>`,
/// `<url|label>`, `<#C1>`, and the three escapes.
pub fn readable(text: &str, names: &Names) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &rest[open + 1..open + close];
        out.push_str(&token(inner, names));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    let mut s = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    for (id, name) in &names.jobs {
        s = s.replace(id, name);
    }
    s
}

fn token(inner: &str, names: &Names) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(l)),
        None => (inner, None),
    };
    if let Some(user) = target.strip_prefix('@') {
        return names.person(user);
    }
    if let Some(channel) = target.strip_prefix('#') {
        return names.channel(channel);
    }
    if let Some(group) = target.strip_prefix("!subteam^") {
        return label
            .map(str::to_string)
            .unwrap_or_else(|| format!("@{group}"));
    }
    if let Some(date) = target.strip_prefix("!date^") {
        let secs = date.split('^').next().and_then(|s| s.parse::<i64>().ok());
        return match secs.and_then(|s| Utc.timestamp_opt(s, 0).single()) {
            Some(t) => t.format("%a %H:%M UTC").to_string(),
            None => label.unwrap_or(inner).to_string(),
        };
    }
    if let Some(special) = target.strip_prefix('!') {
        return format!("@{special}");
    }
    label.unwrap_or(target).to_string()
}

/// The text of a text object or string.
fn text_of(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("text").and_then(|t| t.as_str()))
}

/// The readable lines of a list of blocks.
fn block_lines(blocks: &Value, names: &Names, lines: &mut Vec<String>, buttons: &mut Vec<String>) {
    for block in blocks.as_array().into_iter().flatten() {
        match block.get("type").and_then(Value::as_str).unwrap_or("") {
            "header" | "section" => {
                if let Some(t) = block.get("text").and_then(text_of) {
                    lines.push(readable(t, names));
                }
                let fields: Vec<String> = block
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(text_of)
                    .map(|f| readable(f, names).replace('\n', ": "))
                    .collect();
                if !fields.is_empty() {
                    lines.push(fields.join(" · "));
                }
                if let Some(acc) = block.get("accessory") {
                    collect_buttons(acc, buttons);
                }
            }
            "context" => {
                let parts: Vec<String> = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(text_of)
                    .map(|t| readable(t, names))
                    .collect();
                if !parts.is_empty() {
                    lines.push(parts.join(" "));
                }
            }
            "input" => {
                let label = block.get("label").and_then(text_of).unwrap_or("");
                lines.push(format!("field `{}`: {label}", block_id(block)));
            }
            "actions" => collect_buttons(block, buttons),
            _ => {}
        }
    }
}

fn block_id(block: &Value) -> &str {
    block.get("block_id").and_then(Value::as_str).unwrap_or("?")
}

fn collect_buttons(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some("button") {
                if let Some(label) = m.get("text").and_then(text_of) {
                    out.push(label.to_string());
                }
                return;
            }
            // An overflow menu's options are clicked like buttons: listed too.
            if m.get("type").and_then(Value::as_str) == Some("overflow") {
                let options = m.get("options").and_then(Value::as_array);
                for o in options.into_iter().flatten() {
                    if let Some(label) = o.get("text").and_then(text_of) {
                        out.push(label.to_string());
                    }
                }
                return;
            }
            m.values().for_each(|x| collect_buttons(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_buttons(x, out)),
        _ => {}
    }
}

/// A message body's readable text and buttons: its blocks (and its
/// attachments' blocks), or its `text` when it has none.
pub fn content(body: &Value, names: &Names) -> (String, Vec<String>) {
    let mut lines = Vec::new();
    let mut buttons = Vec::new();
    if let Some(blocks) = body.get("blocks") {
        block_lines(blocks, names, &mut lines, &mut buttons);
    }
    for a in body
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(blocks) = a.get("blocks") {
            block_lines(blocks, names, &mut lines, &mut buttons);
        }
    }
    if lines.is_empty() {
        if let Some(t) = body.get("text").and_then(Value::as_str) {
            lines.push(readable(t, names));
        }
    }
    (lines.join("\n").trim().to_string(), buttons)
}

/// What an edit changed: the new lines that were not there before, and the
/// buttons when they changed. Empty when nothing visible changed.
pub fn changed(
    before: &str,
    after: &str,
    buttons_before: &[String],
    buttons_after: &[String],
) -> (String, Vec<String>) {
    let old: std::collections::HashSet<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().filter(|l| !old.contains(l)).collect();
    let buttons = if buttons_before == buttons_after {
        Vec::new()
    } else {
        buttons_after.to_vec()
    };
    (new.join("\n"), buttons)
}

/// `+1:25`: the time since the start.
pub fn offset(d: Duration) -> String {
    let m = d.num_minutes();
    let sign = if m < 0 { "-" } else { "+" };
    format!("{sign}{}:{:02}", m.abs() / 60, m.abs() % 60)
}

/// One event as terminal lines.
pub fn format_event(e: &Event, start: DateTime<Utc>) -> String {
    let mut head = format!(
        "{} {:>6}  {:<34} ",
        e.at.format("%H:%M"),
        offset(e.at - start),
        truncate(&e.place, 34)
    );
    let indent = " ".repeat(head.chars().count());
    let mut lines = e.text.lines();
    head.push_str(lines.next().unwrap_or(""));
    let mut out = head;
    for l in lines {
        let _ = write!(out, "\n{indent}{l}");
    }
    if !e.buttons.is_empty() {
        let b: Vec<String> = e.buttons.iter().map(|b| format!("[{b}]")).collect();
        let _ = write!(out, "\n{indent}{}", b.join(" "));
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> Names {
        Names {
            people: [("U1".to_string(), "Dana, on call".to_string())].into(),
            channels: [("C1".to_string(), "acme-alerts".to_string())].into(),
            jobs: [("5e7f-1".to_string(), "orders".to_string())].into(),
        }
    }

    #[test]
    fn mentions_dates_links_and_job_ids_read_plainly() {
        let t = readable(
            "<@U1> <!subteam^S9|@oncall> <!date^1772442000^{time}|x> <https://r|Runbook> job `5e7f-1` &lt;b&gt; <#C1>",
            &names(),
        );
        assert_eq!(
            t,
            "@Dana @oncall Mon 09:00 UTC Runbook job `orders` <b> #acme-alerts"
        );
    }

    #[test]
    fn attachments_blocks_and_buttons_are_shown() {
        let body = json!({
            "text": "fallback",
            "attachments": [{ "blocks": [
                { "type": "section", "text": { "type": "mrkdwn", "text": "*High*" },
                  "fields": [{ "type": "mrkdwn", "text": "*ETA*\nsoon" }] },
                { "type": "actions", "elements": [
                    { "type": "button", "text": { "type": "plain_text", "text": "Acknowledge" }, "action_id": "a" }
                ] }
            ] }]
        });
        let (text, buttons) = content(&body, &names());
        assert_eq!(text, "*High*\n*ETA*: soon");
        assert_eq!(buttons, vec!["Acknowledge"]);
        let (text, _) = content(&json!({ "text": "just <@U1>" }), &names());
        assert_eq!(text, "just @Dana");
        assert_eq!(names().channel("DU1"), "DM @Dana");
    }
}
