//! An incident channel's lines (issue 38): while an alert's incident
//! channel is open, each note in the alert's thread is also a line there,
//! written in the same transaction as the note (by `effects.rs` and
//! `outbox.rs`, which insert what [`incident_lines`] returns).

use super::NewOutboxMessage;

/// The ordering key of an incident channel's posts: its card first, then
/// its lines in the order they were written, its archive last.
pub fn incident_channel_order(alert_id: &str) -> String {
    format!("incident-channel:{alert_id}")
}

/// Whether an outbox row is a note in an alert's thread that the alert's
/// incident channel also gets as a line: a post in the thread (not an
/// edit, not a check-in, not the channel's own notes).
pub(crate) fn is_line(msg: &NewOutboxMessage) -> bool {
    let key = msg.dedup_key.as_deref().unwrap_or("");
    msg.method == "chat.postMessage"
        && msg.thread_field.as_deref() == Some("thread_ts")
        && msg
            .thread_alert_id
            .as_deref()
            .is_some_and(|a| !a.contains(':'))
        && !key.is_empty()
        && !key.starts_with("monitor:")
        && !key.starts_with("ended-ask:")
        && !key.starts_with("incident")
}

/// The line a thread note makes in the incident channel `channel`.
pub fn line_for(msg: &NewOutboxMessage, channel: &str) -> NewOutboxMessage {
    let alert = msg.thread_alert_id.clone().unwrap_or_default();
    let mut payload = msg.payload.clone();
    if let Some(o) = payload.as_object_mut() {
        o.remove("thread_ts");
        o.remove("reply_broadcast");
    }
    payload["channel"] = channel.into();
    NewOutboxMessage {
        dedup_key: Some(format!(
            "incident-line:{}",
            msg.dedup_key.as_deref().unwrap_or("")
        )),
        method: "chat.postMessage".into(),
        payload,
        ordering_key: Some(incident_channel_order(&alert)),
        thread_alert_id: None,
        thread_field: None,
        link_kind: None,
        link_id: None,
        not_before: msg.not_before,
    }
}

/// The lines, for the open transaction `$tx`, of the thread notes among
/// `$msgs` whose alert has a live incident channel: the caller writes them
/// with the notes.
macro_rules! incident_lines {
    ($tx:ident, $msgs:expr) => {{
        let msgs: &[$crate::store::NewOutboxMessage] = $msgs;
        let mut lines: Vec<$crate::store::NewOutboxMessage> = Vec::new();
        let mut seen: std::collections::HashMap<String, Option<String>> =
            std::collections::HashMap::new();
        for m in msgs
            .iter()
            .filter(|m| $crate::store::incident_lines::is_line(m))
        {
            let alert = m.thread_alert_id.clone().unwrap_or_default();
            if !seen.contains_key(&alert) {
                let channel: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT channel FROM incident_channels \
                     WHERE alert_id = $1 AND channel IS NOT NULL AND archived_at_ms IS NULL",
                )
                .bind(&alert)
                .fetch_optional(&mut *$tx)
                .await?;
                seen.insert(alert.clone(), channel.flatten());
            }
            if let Some(Some(channel)) = seen.get(&alert) {
                lines.push($crate::store::incident_lines::line_for(m, channel));
            }
        }
        lines
    }};
}
pub(crate) use incident_lines;
