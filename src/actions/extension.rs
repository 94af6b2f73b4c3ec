//! The extension buttons and their modals:
//! - **Request extension** on an alert opens a modal asking for the new
//!   deadline and a reason; an invalid value is shown as a field error.
//! - **Approve** in the request message decides at once (after Slack's confirm dialog).
//! - **Reject** opens a modal for an optional reason; submitting it decides.

use super::dialog::open_dialog;
use super::{tell, Click};
use crate::context::AppState;
use crate::domain::deadline::DeadlineSpec;
use crate::domain::deadline::DEADLINE_EXAMPLES;
use crate::domain::job_id::JobId;
use crate::domain::zone::UserZone;
use crate::flows::approvals;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::flows::ids::REQUEST_EXTENSION_ACTION as REQUEST_ACTION;
pub const REQUEST_VIEW: &str = "extension_request";
pub const REJECT_VIEW: &str = "extension_reject";

fn modal(callback_id: &str, title: &str, submit: &str, metadata: &Value, blocks: Value) -> Value {
    json!({
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata.to_string(),
        "title": { "type": "plain_text", "text": title },
        "submit": { "type": "plain_text", "text": submit },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": blocks,
    })
}

/// The quick choices' buttons in the request modal (value `+1h`, `+2h`,
/// `+4h` or `eod`): each sets the date-and-time picker.
pub const QUICK_ACTION: &str = "extension_quick";
/// The picker's block: `deadline_at.<n>`, a new `n` each time a quick choice
/// sets it (Slack keeps what the user picked in a block it already showed).
const PICKER_BLOCK: &str = "deadline_at";
/// The quick choices, as (button value, label).
const QUICK: &[(&str, &str)] = &[
    ("+1h", "+1 h"),
    ("+2h", "+2 h"),
    ("+4h", "+4 h"),
    ("eod", "End of day"),
];

/// What the request modal shows.
struct RequestForm<'a> {
    alert: &'a crate::store::Alert,
    channel: Option<&'a str>,
    /// The requester's time zone.
    zone: UserZone,
    /// The picker's block version, and the value to put in it.
    version: u32,
    picker: Option<DateTime<Utc>>,
    /// The band under the chosen deadline, once one is chosen.
    preview: Option<String>,
    /// What the extensions approved before bought (issue 38).
    history: Option<String>,
}

fn request_view(f: &RequestForm) -> Value {
    let metadata = json!({
        "alert_id": f.alert.id,
        "channel": f.channel,
        "tz": f.zone.name(),
        "tz_offset": match f.zone {
            UserZone::Named(_) => None,
            UserZone::Fixed(o) => Some(o.local_minus_utc()),
        },
        "v": f.version,
    });
    let current = f
        .alert
        .deadline
        .map(crate::domain::text::date_token)
        .unwrap_or_else(|| "none".into());
    let quick: Vec<Value> = QUICK
        .iter()
        .map(|(value, label)| {
            let text = if *value == "eod" {
                format!("{label} (23:59 {})", f.zone.label())
            } else {
                label.to_string()
            };
            json!({ "type": "button", "action_id": format!("{QUICK_ACTION}_{}", value.trim_start_matches('+')),
                    "value": value, "text": { "type": "plain_text", "text": text } })
        })
        .collect();
    let mut picker = json!({ "type": "datetimepicker", "action_id": "value" });
    if let Some(at) = f.picker {
        picker["initial_date_time"] = json!(at.timestamp());
    }
    let preview = f.preview.clone().unwrap_or_else(|| {
        "Pick a new deadline to see the band the job would have under it.".to_string()
    });
    let blocks = json!([
        { "type": "section", "text": { "type": "mrkdwn", "text": format!(
            "*{}*: {} {} now; the deadline is {current}. A stakeholder approves or rejects the request in the alert's thread; nothing changes in Servo until then.{}",
            crate::domain::text::escape_slack(&f.alert.asset_name()),
            f.alert.band.emoji(),
            f.alert.band.label(),
            f.history.as_ref().map(|h| format!("\n{h}")).unwrap_or_default()) } },
        { "type": "actions", "block_id": "quick", "elements": quick },
        { "type": "input", "block_id": format!("{PICKER_BLOCK}.{}", f.version), "optional": true,
          "dispatch_action": true,
          "label": { "type": "plain_text", "text": "New deadline" },
          "hint": { "type": "plain_text", "text": "In your time zone. The quick choices above set it." },
          "element": picker },
        { "type": "input", "block_id": "deadline", "optional": true,
          "dispatch_action": true,
          "label": { "type": "plain_text", "text": "Or type it" },
          "hint": { "type": "plain_text", "text": "+90m, +4h, +1d from the current deadline, or a time like 2026-12-01T18:00:00Z. Wins over the picker." },
          "element": { "type": "plain_text_input", "action_id": "value", "placeholder": { "type": "plain_text", "text": "+4h" },
                       "dispatch_action_config": { "trigger_actions_on": ["on_enter_pressed"] } } },
        { "type": "input", "block_id": "reason", "optional": true, "label": { "type": "plain_text", "text": "Reason" },
          "element": { "type": "plain_text_input", "action_id": "value", "multiline": true, "max_length": 1000 } },
        { "type": "context", "block_id": "preview", "elements": [ { "type": "mrkdwn", "text": preview } ] }
    ]);
    modal(
        REQUEST_VIEW,
        "Extend the deadline",
        "Request",
        &metadata,
        blocks,
    )
}

/// A quick choice as a time: a step from the current deadline (from now
/// when there is none), or 23:59 of the requester's day of the current
/// deadline (the next day's, if that is not later).
fn quick_time(
    choice: &str,
    current: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    zone: UserZone,
) -> Option<DateTime<Utc>> {
    let base = current.unwrap_or(now);
    match choice {
        "+1h" => Some(base + chrono::Duration::hours(1)),
        "+2h" => Some(base + chrono::Duration::hours(2)),
        "+4h" => Some(base + chrono::Duration::hours(4)),
        "eod" => {
            let from = base.max(now);
            let end =
                |d: chrono::NaiveDate| zone.at(d, chrono::NaiveTime::from_hms_opt(23, 59, 0)?);
            let today = end(zone.date_at(from))?;
            if today > base {
                Some(today)
            } else {
                end(zone.date_at(from).succ_opt()?)
            }
        }
        _ => None,
    }
}

/// The deadline a request modal's state asks for: what was typed wins,
/// else the picker. `Ok(None)`: nothing chosen yet.
fn chosen(
    values: &Value,
    current: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<(DeadlineSpec, DateTime<Utc>)>, String> {
    let typed = values
        .pointer("/deadline/value/value")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let spec = match typed {
        Some(text) => DeadlineSpec::parse(text)?,
        None => {
            let picked = values
                .as_object()
                .into_iter()
                .flatten()
                .find_map(|(block, v)| {
                    block
                        .starts_with(PICKER_BLOCK)
                        .then(|| {
                            v.pointer("/value/selected_date_time")
                                .and_then(Value::as_i64)
                        })
                        .flatten()
                });
            let Some(secs) = picked else {
                return Ok(None);
            };
            let at = DateTime::<Utc>::from_timestamp(secs, 0)
                .ok_or_else(|| format!("That time is out of range. {DEADLINE_EXAMPLES}"))?;
            DeadlineSpec::At(at.fixed_offset())
        }
    };
    let base = current.unwrap_or(now);
    let at = spec.resolve(base, now)?;
    Ok(Some((spec, at)))
}

/// Request extension (on an alert, or the message shortcut): opens the
/// request modal, with quick choices set in the requester's time zone.
pub async fn open_request(state: &AppState, click: &Click) {
    let alert = match state.store.get_alert(&click.value).await {
        Ok(Some(a)) => a,
        Ok(None) => return tell(state, click, "This alert no longer exists.").await,
        Err(e) => {
            tracing::error!(error = %e, "reading an alert failed");
            return tell(
                state,
                click,
                ":warning: Something went wrong on our side; try again.",
            )
            .await;
        }
    };
    let zone = state
        .directory
        .zone(&click.user)
        .await
        .unwrap_or_else(UserZone::utc);
    let form = RequestForm {
        alert: &alert,
        channel: click.channel.as_deref(),
        zone,
        version: 0,
        picker: None,
        preview: None,
        history: crate::flows::bought::extension_note(state, &alert).await,
    };
    open_dialog(state, click, request_view(&form)).await;
}

/// A quick choice, the picker or the typed deadline changed in an open
/// request modal: shows the band the job would have under the deadline now
/// chosen (`views.update`), before anything is requested.
pub async fn preview(state: &AppState, payload: &Value) {
    let str_at = |p: &str| payload.pointer(p).and_then(Value::as_str);
    let (Some(view_id), Some(hash)) = (str_at("/view/id"), str_at("/view/hash")) else {
        return;
    };
    let metadata = super::view_metadata(payload);
    let Some(alert_id) = metadata.get("alert_id").and_then(Value::as_str) else {
        return;
    };
    let alert = match state.store.get_alert(alert_id).await {
        Ok(Some(a)) => a,
        _ => return,
    };
    let zone = UserZone::from_slack(
        metadata.get("tz").and_then(Value::as_str),
        metadata.get("tz_offset").and_then(Value::as_i64),
    )
    .unwrap_or_else(UserZone::utc);
    let mut version = metadata.get("v").and_then(Value::as_u64).unwrap_or(0) as u32;
    let now = state.clock.now();
    let action = payload
        .pointer("/actions/0")
        .cloned()
        .unwrap_or(Value::Null);
    let mut picker = None;
    let mut values = payload
        .pointer("/view/state/values")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let choice = match action.get("block_id").and_then(Value::as_str) {
        Some("quick") => {
            let value = action.get("value").and_then(Value::as_str).unwrap_or("");
            match quick_time(value, alert.deadline, now, zone) {
                Some(at) => {
                    // The quick choice sets the picker, in a new block so Slack shows it.
                    version += 1;
                    picker = Some(at);
                    if let Some(v) = values.as_object_mut() {
                        v.retain(|block, _| !block.starts_with(PICKER_BLOCK));
                        v.insert(
                            format!("{PICKER_BLOCK}.{version}"),
                            json!({ "value": { "type": "datetimepicker", "selected_date_time": at.timestamp() } }),
                        );
                    }
                    if values
                        .pointer("/deadline/value/value")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.trim().is_empty())
                    {
                        // A typed deadline would win over the quick choice: say so.
                        Err("You typed a deadline too, and what is typed wins. Clear it to use the picker.".to_string())
                    } else {
                        chosen(&values, alert.deadline, now)
                    }
                }
                None => return,
            }
        }
        _ => chosen(&values, alert.deadline, now),
    };
    let text = match choice {
        Ok(Some((_, at))) => band_under(state, &alert, at).await,
        Ok(None) => "Pick a new deadline to see the band the job would have under it.".to_string(),
        Err(why) => format!(":warning: {}", why.replace('`', "")),
    };
    let form = RequestForm {
        alert: &alert,
        channel: metadata.get("channel").and_then(Value::as_str),
        zone,
        version,
        picker,
        preview: Some(text),
        history: crate::flows::bought::extension_note(state, &alert).await,
    };
    let update = json!({ "view_id": view_id, "hash": hash, "view": request_view(&form) });
    if let Err(e) = state.slack.call("views.update", &update).await {
        // A newer change of the same modal is on its way (hash_conflict), or
        // the modal was closed: nothing to show.
        tracing::info!(error = %e, "the request preview could not be shown");
    }
}

/// What the job would show under a new deadline: its band and ETA, from a
/// fresh read of the job, next to what it shows now.
async fn band_under(state: &AppState, alert: &crate::store::Alert, at: DateTime<Utc>) -> String {
    let new = crate::domain::text::date_token(at);
    let (Some(tenant), Ok(id)) = (
        state.config.tenant(&alert.tenant_id),
        JobId::parse(&alert.job_id),
    ) else {
        return format!("New deadline {new}.");
    };
    match crate::flows::poll::job(state, tenant, id).await {
        Ok(Some((mut job, now_assessed, _, _))) => {
            job.sla_deadline_at = Some(at);
            let thresholds = state.config.risk.thresholds();
            let under = crate::domain::assessment::assess(
                &job.snapshot(),
                state.clock.now(),
                &thresholds,
                None,
            );
            let eta = under
                .eta
                .map(crate::domain::text::date_token)
                .unwrap_or_else(|| "unknown".into());
            let stale = still_stale(state, tenant, &mut job, at).await;
            format!(
                "Under {new} the job would be {} *{}* (ETA {eta}); it is {} {} now.{stale}",
                under.band.emoji(),
                under.band.label(),
                now_assessed.band.emoji(),
                now_assessed.band.label()
            )
        }
        Ok(None) => format!("New deadline {new}. The job is no longer active in Servo."),
        Err(_) => format!(
            "New deadline {new}. Servo cannot be read just now, so the band under it is unknown."
        ),
    }
}

/// The scheduled downstream runs a job done by `deadline` would still leave
/// stale (issue 37): those before it, as a line to add to the preview; empty
/// when none (or the lineage cannot be read: the preview goes on without it).
async fn still_stale(
    state: &AppState,
    tenant: &crate::config::Tenant,
    job: &mut crate::servo::Job,
    deadline: DateTime<Utc>,
) -> String {
    let now = state.clock.now();
    let lineage = match state.servo.lineage(&tenant.id, now).await {
        Ok(l) => l,
        Err(e) => {
            tracing::info!(error = %e, "the lineage could not be read for the request preview");
            return String::new();
        }
    };
    job.attach_impact(
        &lineage,
        state.config.lineage.depth,
        now,
        &state.config.risk.thresholds(),
    );
    let Some(impact) = job.impact.as_ref() else {
        return String::new();
    };
    let runs: Vec<String> = impact
        .stale_before(deadline)
        .iter()
        .map(|r| {
            format!(
                "`{}` ({})",
                crate::domain::text::escape_slack(&r.workflow),
                crate::domain::text::date_token(r.at)
            )
        })
        .collect();
    if runs.is_empty() {
        return "\nNo scheduled downstream run comes before it.".into();
    }
    format!(
        "\n:calendar: Done by then, it would still leave these downstream runs reading stale data: {}",
        crate::slack::limits::join_capped(&runs, ", ", 1_200, |n| format!("…and {n} more"))
    )
}

/// Reject: checks the clicker may decide, then asks for an optional reason.
pub async fn open_reject(state: &AppState, click: &Click) {
    let approval = match state.store.get_approval(&click.value).await {
        Ok(Some(a)) => a,
        Ok(None) => return tell(state, click, "This request no longer exists.").await,
        Err(e) => {
            tracing::error!(error = %e, "reading a request failed");
            return tell(
                state,
                click,
                ":warning: Something went wrong on our side; try again.",
            )
            .await;
        }
    };
    match approvals::refusal(state, &click.user, &approval).await {
        Ok(None) => {}
        Ok(Some(why)) => {
            crate::flows::approvals::audit_refusal(state, &click.user, &approval, &why).await;
            return tell(state, click, &why).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check the decider");
            return tell(
                state,
                click,
                "I could not check your membership with Slack just now; try again in a moment.",
            )
            .await;
        }
    }
    let metadata = json!({ "approval_id": approval.id, "channel": click.channel });
    let blocks = json!([
        { "type": "input", "block_id": "reason", "optional": true, "label": { "type": "plain_text", "text": "Reason (shown in the thread)" },
          "element": { "type": "plain_text_input", "action_id": "value", "multiline": true, "max_length": 1000 } }
    ]);
    open_dialog(
        state,
        click,
        modal(
            REJECT_VIEW,
            "Reject the extension",
            "Reject",
            &metadata,
            blocks,
        ),
    )
    .await;
}

fn input(payload: &Value, block: &str) -> Option<String> {
    payload
        .pointer(&format!("/view/state/values/{block}/value/value"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn field_error(block: &str, message: &str) -> Value {
    // Slack shows field errors under the input; keep them short and plain.
    let plain: String = message
        .replace(":warning: ", "")
        .chars()
        .take(300)
        .collect();
    json!({ "response_action": "errors", "errors": { block: plain } })
}

/// A `view_submission` for one of our modals. `Some(body)` answers the
/// submission (field errors keep the modal open); `None` closes it.
pub async fn submit(state: &AppState, payload: &Value) -> Option<Value> {
    let callback = payload
        .pointer("/view/callback_id")
        .and_then(Value::as_str)?;
    let user = payload
        .pointer("/user/id")
        .and_then(Value::as_str)?
        .to_string();
    let metadata = super::view_metadata(payload);
    let channel = metadata
        .get("channel")
        .and_then(Value::as_str)
        .map(str::to_string);
    match callback {
        REQUEST_VIEW => {
            let Some(alert_id) = metadata.get("alert_id").and_then(Value::as_str) else {
                return Some(field_error(
                    "deadline",
                    "This dialog lost track of its alert; open it again from the alert.",
                ));
            };
            let alert = match state.store.get_alert(alert_id).await {
                Ok(Some(a)) => a,
                _ => return Some(field_error("deadline", "This alert no longer exists.")),
            };
            let values = payload
                .pointer("/view/state/values")
                .cloned()
                .unwrap_or(Value::Null);
            let spec = match chosen(&values, alert.deadline, state.clock.now()) {
                Ok(Some((spec, _))) => spec,
                Ok(None) => {
                    return Some(field_error(
                        "deadline",
                        &format!("Pick a new deadline, or type one. {DEADLINE_EXAMPLES}"),
                    ))
                }
                Err(e) => return Some(field_error("deadline", &e.replace('`', ""))),
            };
            let Some(tenant) = state.config.tenant(&alert.tenant_id) else {
                return Some(field_error(
                    "deadline",
                    "This alert's tenant is no longer configured.",
                ));
            };
            let Ok(job) = JobId::parse(&alert.job_id) else {
                return Some(field_error("deadline", "This alert's job id is not valid."));
            };
            let reason = input(payload, "reason");
            match crate::flows::extension_decisions::request(
                state, tenant, job, spec, reason, &user, "modal",
            )
            .await
            {
                Ok(confirmation) => {
                    if let Some(channel) = channel {
                        let click = Click {
                            user,
                            action_id: REQUEST_ACTION.into(),
                            value: alert.id.clone(),
                            channel: Some(channel),
                            message_ts: None,
                            response_url: None,
                            trigger_id: None,
                        };
                        tell(state, &click, &confirmation).await;
                    }
                    None
                }
                Err(why) => Some(field_error(
                    "deadline",
                    &why.replace('`', "").replace(":no_entry: ", ""),
                )),
            }
        }
        REJECT_VIEW => {
            let approval_id = metadata
                .get("approval_id")
                .and_then(Value::as_str)?
                .to_string();
            let click = Click {
                user,
                action_id: crate::flows::ids::REJECT_ACTION.into(),
                value: approval_id,
                channel,
                message_ts: None,
                response_url: None,
                trigger_id: None,
            };
            decide(state, &click, false, input(payload, "reason")).await;
            None
        }
        _ => None,
    }
}

/// Approve or Reject, clicked in the thread (a rejection may carry a reason,
/// given in the Reject modal).
pub async fn decide(state: &AppState, click: &Click, approve: bool, reason: Option<String>) {
    match crate::flows::extension_decisions::decide(
        state,
        &click.value,
        &click.user,
        approve,
        reason,
    )
    .await
    {
        Ok(None) => {}
        Ok(Some(text)) => tell(state, click, &text).await,
        Err(e) => {
            tracing::error!(error = %e, "extension decision failed");
            tell(
                state,
                click,
                ":warning: The decision could not be recorded; nothing changed. Try again in a moment.",
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn end_of_day_is_2359_on_the_deadlines_day_in_the_offset_that_day_has() {
        let berlin = UserZone::from_slack(Some("Europe/Berlin"), None).unwrap();
        // Asked on Saturday 24 October 2026 (summer time, UTC+2) about a
        // deadline on Monday the 26th (winter time, UTC+1): 23:59 on the
        // 26th is 22:59Z, not the 21:59Z Saturday's offset would give.
        let now = at("2026-10-24T10:00:00Z");
        let deadline = at("2026-10-26T12:00:00Z");
        assert_eq!(
            quick_time("eod", Some(deadline), now, berlin),
            Some(at("2026-10-26T22:59:00Z"))
        );
        // A deadline already at 23:59 there: the next day's.
        assert_eq!(
            quick_time("eod", Some(at("2026-10-26T22:59:00Z")), now, berlin),
            Some(at("2026-10-27T22:59:00Z"))
        );
        // Only an offset known, and no deadline: today's 23:59 in it.
        let fixed = UserZone::from_slack(None, Some(-5 * 3600)).unwrap();
        assert_eq!(
            quick_time("eod", None, now, fixed),
            Some(at("2026-10-25T04:59:00Z"))
        );
    }
}
