//! The alert menu's silences (issue 35): the quick choices (1 hour, 4
//! hours, until 09:00 tomorrow in the clicker's zone), the *Silence…*
//! dialog and *Lift silence*. Operators only, like `/backfill silence`;
//! what a silence decides is in [`crate::flows::silences`].

use super::dialog::open_dialog;
use super::mitigations::authorise;
use super::{tell, Click};
use crate::context::AppState;
use crate::domain::text::{date_token, escape_slack};
use crate::domain::zone::UserZone;
use crate::flows::silences::{SilenceRefused, SilenceRequest};
use crate::store::{Alert, Scope, Silence};
use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde_json::{json, Value};

/// The callback id of the *Silence…* dialog.
pub const SILENCE_VIEW: &str = "alert_silence";

/// When a choice of the menu or the dialog ends, for someone in `zone`
/// (`None`: Slack did not say; UTC then). "Tomorrow" is the day after the
/// clicker's today, and its 09:00 is in the offset that day has there.
pub fn until_of(choice: &str, now: DateTime<Utc>, zone: Option<UserZone>) -> Option<DateTime<Utc>> {
    match choice {
        "1h" => Some(now + Duration::hours(1)),
        "4h" => Some(now + Duration::hours(4)),
        "morning" => {
            let zone = zone.unwrap_or_else(UserZone::utc);
            let tomorrow = zone.date_at(now).succ_opt()?;
            zone.at(tomorrow, NaiveTime::from_hms_opt(9, 0, 0)?)
        }
        _ => None,
    }
}

/// A typed end: a duration (`90m`, `2d`) from now, or an RFC 3339 time.
fn typed_until(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(d) = crate::config::parse_duration(text) {
        if !d.is_zero() {
            return Ok(now + Duration::from_std(d).unwrap_or_default());
        }
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            "Give a duration such as `90m` or `2d`, or a time such as `2026-12-08T09:00:00Z`."
                .to_string()
        })
}

/// What the clicker is told once a silence is in force.
fn silenced_words(s: &Silence, zone_note: &str) -> String {
    format!(
        ":mute: Silenced {} *{}* until {}{zone_note} (id `{}`). The alert still updates; nothing pages{}. *Lift silence* in its menu or `/backfill unsilence {}` ends it.",
        s.scope.as_str(),
        escape_slack(&s.target),
        date_token(s.ends_at),
        s.id,
        if s.through_breach {
            ", not even a breach"
        } else {
            " unless the job breaches its deadline"
        },
        s.id
    )
}

/// A choice of the alert's menu: a quick silence of the job, or the dialog.
pub async fn run(state: &AppState, click: &Click) {
    let Some((alert_id, choice)) = click.value.rsplit_once(':') else {
        tell(
            state,
            click,
            "That menu entry is malformed; nothing was silenced.",
        )
        .await;
        return;
    };
    let Some((alert, _)) = authorise(state, &click.user, alert_id, "silence", Some(click)).await
    else {
        return;
    };
    if !alert.is_open() {
        tell(
            state,
            click,
            "This alert has resolved; there is nothing to silence.",
        )
        .await;
        return;
    }
    if choice == "ask" {
        open_dialog(state, click, dialog(&alert, click)).await;
        return;
    }
    let now = state.clock.now();
    let zone = match choice {
        "morning" => state.directory.zone(&click.user).await,
        _ => None,
    };
    let Some(until) = until_of(choice, now, zone) else {
        tell(
            state,
            click,
            "That menu entry is not one the bot knows; nothing was silenced.",
        )
        .await;
        return;
    };
    // A second click on a stale copy of the menu: the first one holds.
    if let (_, Some(id)) = crate::flows::quiet::alert_note(state, &alert).await {
        if let Ok(Some(s)) = state.store.get_silence(&id).await {
            let text = format!(
                "Already silenced by <@{}> until {} (id `{}`); nothing changed. *Lift silence* first to set another.",
                s.created_by,
                date_token(s.ends_at),
                s.id
            );
            tell(state, click, &text).await;
            return;
        }
    }
    let zone_note = if choice == "morning" && zone.is_none() {
        " (UTC: Slack did not say your time zone)"
    } else {
        ""
    };
    let req = SilenceRequest {
        tenant: alert.tenant_id.clone(),
        scope: Scope::Job,
        target: alert.job_id.clone(),
        until,
        reason: None,
        by: click.user.clone(),
        through_breach: false,
        // A double click within the minute makes one silence.
        dedup_key: format!("menu:{}:{choice}:{}", alert.id, now.timestamp() / 60),
    };
    let text = decide(state, req, zone_note).await;
    tell(state, click, &text).await;
}

async fn decide(state: &AppState, req: SilenceRequest, zone_note: &str) -> String {
    match crate::flows::silences::silence(state, req).await {
        Ok(Ok((s, _))) => silenced_words(&s, zone_note),
        Ok(Err(refused)) => format!(":warning: Not silenced: {refused}."),
        Err(e) => {
            tracing::error!(error = %e, "could not silence");
            ":warning: The bot's store did not answer, so nothing was silenced. Try again in a moment.".into()
        }
    }
}

fn option(value: &str, text: &str) -> Value {
    json!({ "text": { "type": "plain_text", "text": text }, "value": value })
}

/// The *Silence…* dialog: for how long, what it covers, why, and whether
/// a breach breaks through.
fn dialog(alert: &Alert, click: &Click) -> Value {
    let asset = alert.asset_name();
    let short_asset: String = asset.chars().take(40).collect();
    let durations = [
        option("1h", "1 hour"),
        option("4h", "4 hours"),
        option("morning", "Until 09:00 tomorrow (your time)"),
        option("other", "Until the time below"),
    ];
    let scopes = [
        option("job", "This job"),
        option("asset", &format!("Asset {short_asset}, its later jobs too")),
        option("tenant", &format!("All of tenant {}", alert.tenant_id)),
    ];
    json!({
        "type": "modal",
        "callback_id": SILENCE_VIEW,
        "private_metadata": json!({ "alert_id": alert.id, "channel": click.channel }).to_string(),
        "title": { "type": "plain_text", "text": "Silence" },
        "submit": { "type": "plain_text", "text": "Silence" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": format!(
                "While silenced, *{}*'s alert still updates in place and says who silenced it; nothing pages and nothing is broadcast. An escalation under way stops.",
                escape_slack(&asset)) } },
            { "type": "input", "block_id": "for", "label": { "type": "plain_text", "text": "For how long" },
              "element": { "type": "radio_buttons", "action_id": "value", "options": durations, "initial_option": durations[0] } },
            { "type": "input", "block_id": "until", "optional": true,
              "label": { "type": "plain_text", "text": "Until (for \"Until the time below\")" },
              "hint": { "type": "plain_text", "text": "A duration such as 90m or 2d, or a time such as 2026-12-08T09:00:00Z." },
              "element": { "type": "plain_text_input", "action_id": "value", "max_length": 40 } },
            { "type": "input", "block_id": "scope", "label": { "type": "plain_text", "text": "What it covers" },
              "element": { "type": "radio_buttons", "action_id": "value", "options": scopes, "initial_option": scopes[0] } },
            { "type": "input", "block_id": "reason", "optional": true, "label": { "type": "plain_text", "text": "Reason" },
              "element": { "type": "plain_text_input", "action_id": "value", "max_length": 200 } },
            { "type": "input", "block_id": "breach", "optional": true, "label": { "type": "plain_text", "text": "A breach" },
              "element": { "type": "checkboxes", "action_id": "value", "options": [
                  option("hold", "Holds through a breach too (by default a breach pages)") ] } }
        ]
    })
}

fn picked(payload: &Value, block: &str) -> Option<String> {
    payload
        .pointer(&format!(
            "/view/state/values/{block}/value/selected_option/value"
        ))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn typed(payload: &Value, block: &str) -> Option<String> {
    payload
        .pointer(&format!("/view/state/values/{block}/value/value"))
        .and_then(Value::as_str)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn field_error(block: &str, text: &str) -> Option<Value> {
    Some(json!({ "response_action": "errors", "errors": { block: text } }))
}

/// The *Silence…* dialog submitted: field errors keep it open; else the
/// silence is made (once per dialog, however often Slack retries) and the
/// clicker is told in the channel.
pub async fn submit(
    state: &AppState,
    user: &str,
    metadata: &Value,
    payload: &Value,
) -> Option<Value> {
    let user = user.to_string();
    let alert_id = metadata.get("alert_id").and_then(Value::as_str)?;
    let click = Click::submitted(&user, SILENCE_VIEW, alert_id, metadata);
    let (alert, tenant) = authorise(state, &user, alert_id, "silence", Some(&click)).await?;
    let now = state.clock.now();
    let choice = picked(payload, "for").unwrap_or_else(|| "1h".into());
    // An end typed beside another choice is not silently dropped.
    if choice != "other" && typed(payload, "until").is_some() {
        return field_error(
            "until",
            "Pick *Other* above to silence until this, or clear it to use the choice above.",
        );
    }
    let mut zone_note = "";
    let until = match choice.as_str() {
        "other" => match typed(payload, "until") {
            None => {
                return field_error(
                    "until",
                    "Say until when: a duration such as 90m, or a time.",
                )
            }
            Some(t) => match typed_until(&t, now) {
                Ok(u) => u,
                Err(e) => return field_error("until", &e),
            },
        },
        c => {
            let zone = match c {
                "morning" => state.directory.zone(&user).await,
                _ => None,
            };
            if c == "morning" && zone.is_none() {
                zone_note = " (UTC: Slack did not say your time zone)";
            }
            until_of(c, now, zone)?
        }
    };
    let max = Duration::from_std(state.config.quiet.silence_max).unwrap_or_default();
    if until <= now {
        return field_error(
            "until",
            &format!("{}.", SilenceRefused::Past(until.to_rfc3339())),
        );
    }
    if until - now > max {
        let words = crate::domain::text::duration_words(max);
        return field_error("until", &format!("{}.", SilenceRefused::TooLong(words)));
    }
    let (scope, target) = match picked(payload, "scope").as_deref() {
        Some("asset") => (Scope::Asset, alert.asset_name()),
        Some("tenant") => (Scope::Tenant, tenant.id.clone()),
        _ => (Scope::Job, alert.job_id.clone()),
    };
    let through_breach = payload
        .pointer("/view/state/values/breach/value/selected_options")
        .and_then(Value::as_array)
        .is_some_and(|o| !o.is_empty());
    let view_id = payload
        .pointer("/view/id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{alert_id}:{user}:{}", until.timestamp()));
    let req = SilenceRequest {
        tenant: tenant.id.clone(),
        scope,
        target,
        until,
        reason: typed(payload, "reason"),
        by: user,
        through_breach,
        dedup_key: format!("view:{view_id}"),
    };
    let text = decide(state, req, zone_note).await;
    tell(state, &click, &text).await;
    None
}

/// *Lift silence* in the alert's menu: ends the silence that holds it.
pub async fn lift(state: &AppState, click: &Click) {
    let silence = match state.store.get_silence(&click.value).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            tell(
                state,
                click,
                "That silence no longer exists; nothing changed.",
            )
            .await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read the silence");
            tell(state, click, ":warning: The bot's store did not answer, so the silence stands. Try again in a moment.").await;
            return;
        }
    };
    let Some(tenant) = state.config.tenant(&silence.tenant_id) else {
        tell(
            state,
            click,
            "This silence's tenant is no longer configured.",
        )
        .await;
        return;
    };
    match state
        .directory
        .is_among(&click.user, &tenant.operators)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            crate::flows::silences::audit_refused(
                state,
                tenant,
                &click.user,
                "silence_end",
                &silence.id,
            )
            .await;
            let text = format!(
                ":no_entry: Only the operators of tenant `{}` can lift silences ({}).",
                tenant.id,
                tenant.operator_mentions()
            );
            tell(state, click, &text).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check operator membership");
            tell(state, click, "I could not check your membership with Slack just now; nothing changed. Try again in a moment.").await;
            return;
        }
    }
    let text = match crate::flows::silences::end_silence(state, &silence.id, Some(&click.user)).await {
        Ok(Some(_)) => format!(
            ":bell: Lifted the silence `{}` on {} *{}*. A job still at risk pages again from the first tier.",
            silence.id,
            silence.scope.as_str(),
            escape_slack(&silence.target)
        ),
        Ok(None) => format!("The silence `{}` has already ended; nothing changed.", silence.id),
        Err(e) => {
            tracing::error!(error = %e, "could not end the silence");
            ":warning: The bot's store did not answer, so the silence stands. Try again in a moment.".into()
        }
    };
    tell(state, click, &text).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn nine_tomorrow_is_in_the_clickers_zone_and_utc_when_unknown() {
        let now = at("2026-12-07T22:30:00Z");
        let zone = |name: &str| UserZone::from_slack(Some(name), None);
        // Berlin (UTC+1): it is 23:30 on the 7th there; 09:00 on the 8th is 08:00Z.
        assert_eq!(
            until_of("morning", now, zone("Europe/Berlin")),
            Some(at("2026-12-08T08:00:00Z"))
        );
        // Tokyo (UTC+9): it is already 07:30 on the 8th; tomorrow is the 9th.
        assert_eq!(
            until_of("morning", now, zone("Asia/Tokyo")),
            Some(at("2026-12-09T00:00:00Z"))
        );
        // Only an offset known: that offset.
        assert_eq!(
            until_of("morning", now, UserZone::from_slack(None, Some(3600))),
            Some(at("2026-12-08T08:00:00Z"))
        );
        assert_eq!(
            until_of("morning", now, None),
            Some(at("2026-12-08T09:00:00Z"))
        );
        assert_eq!(until_of("4h", now, None), Some(at("2026-12-08T02:30:00Z")));
        assert_eq!(until_of("soon", now, None), None);
    }

    #[test]
    fn nine_tomorrow_across_a_clock_change_is_nine_on_the_new_clock() {
        // Saturday 24 October 2026, 20:00 in Berlin (summer time, UTC+2);
        // the clocks go back that night, so 09:00 on Sunday is 08:00Z, not
        // the 07:00Z Saturday's offset would give.
        let now = at("2026-10-24T18:00:00Z");
        assert_eq!(
            until_of(
                "morning",
                now,
                UserZone::from_slack(Some("Europe/Berlin"), Some(7200))
            ),
            Some(at("2026-10-25T08:00:00Z"))
        );
    }

    #[test]
    fn a_typed_end_is_a_duration_or_an_rfc3339_time() {
        let now = at("2026-12-07T10:00:00Z");
        assert_eq!(typed_until("90m", now), Ok(at("2026-12-07T11:30:00Z")));
        assert_eq!(
            typed_until("2026-12-08T09:00:00+01:00", now),
            Ok(at("2026-12-08T08:00:00Z"))
        );
        assert!(typed_until("tomorrow", now)
            .unwrap_err()
            .contains("duration"));
    }
}
